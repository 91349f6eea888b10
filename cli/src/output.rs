//! Printing: JSON for scripts, tables for people, colours only on a terminal without NO_COLOR.

use std::io::{IsTerminal, Write};

use anyhow::Result;
use comfy_table::{Cell, Color, ContentArrangement, Table, TableComponent, presets};
use serde::Serialize;
use time::OffsetDateTime;

use crate::cli::Output;

/// How to print.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Printer {
    pub(crate) json: bool,
    pub(crate) color: bool,
    /// stdout is a terminal: fit tables to its width (costly for thousands of rows).
    pub(crate) tty: bool,
}

impl Printer {
    pub(crate) fn new(output: Output) -> Printer {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let tty = std::io::stdout().is_terminal();
        Printer {
            json: output == Output::Json,
            color: tty && !no_color,
            tty,
        }
    }

    /// Prints one JSON document.
    pub(crate) fn json<T: Serialize + ?Sized>(&self, value: &T) -> Result<()> {
        let mut s = serde_json::to_string_pretty(value)?;
        s.push('\n');
        write_stdout(s.as_bytes())
    }

    /// Prints a line of text.
    pub(crate) fn line(&self, text: &str) -> Result<()> {
        write_stdout(format!("{text}\n").as_bytes())
    }

    /// A table in our house style.
    pub(crate) fn table(&self, header: &[&str]) -> Table {
        let mut t = Table::new();
        t.load_preset(presets::UTF8_HORIZONTAL_ONLY)
            .remove_style(TableComponent::HorizontalLines)
            .remove_style(TableComponent::MiddleIntersections)
            .remove_style(TableComponent::LeftBorderIntersections)
            .remove_style(TableComponent::RightBorderIntersections)
            .set_content_arrangement(if self.tty {
                ContentArrangement::Dynamic
            } else {
                ContentArrangement::Disabled
            });
        if !header.is_empty() {
            t.set_header(header.iter().map(Cell::new));
        }
        if self.color {
            t.enforce_styling();
        } else {
            t.force_no_tty();
        }
        t
    }

    pub(crate) fn print_table(&self, t: &Table) -> Result<()> {
        write_stdout(format!("{t}\n").as_bytes())
    }

    /// A cell coloured by how soon `not_after` comes: red when past, yellow within 30 days.
    pub(crate) fn expiry_cell(&self, text: String, not_after: OffsetDateTime) -> Cell {
        let cell = Cell::new(text);
        match expiry_state(not_after) {
            Expiry::Expired => cell.fg(Color::Red),
            Expiry::Soon => cell.fg(Color::Yellow),
            Expiry::Fine => cell,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Expiry {
    Expired,
    Soon,
    Fine,
}

pub(crate) fn expiry_state(not_after: OffsetDateTime) -> Expiry {
    let now = OffsetDateTime::now_utc();
    if not_after <= now {
        Expiry::Expired
    } else if not_after - now <= time::Duration::days(30) {
        Expiry::Soon
    } else {
        Expiry::Fine
    }
}

/// "in 12 days", "3 days ago".
pub(crate) fn relative(not_after: OffsetDateTime) -> String {
    let d = not_after - OffsetDateTime::now_utc();
    let days = d.whole_days();
    if d.is_negative() {
        format!("expired {} days ago", -days)
    } else if days == 0 {
        format!("in {} hours", d.whole_hours())
    } else {
        format!("in {days} days")
    }
}

pub(crate) fn date(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// Writes to stdout; a closed pipe (`certvault list | head`) is not an error.
pub(crate) fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// An error with its whole chain of causes, on one line.
pub(crate) fn error_chain(e: impl Into<anyhow::Error>) -> String {
    format!("{:#}", e.into())
}

/// A line on stderr for people (progress, confirmations), never data.
pub(crate) fn note(text: &str) {
    let _ = writeln!(std::io::stderr(), "{text}");
}
