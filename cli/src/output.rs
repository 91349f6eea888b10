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

/// A plain column table for long listings: comfy-table spends ~10 µs per row on layout,
/// which for `list` over 100,000 entries is most of the command's time (see bench/).
pub(crate) struct Columns {
    header: Vec<&'static str>,
    rows: Vec<Vec<(String, Option<&'static str>)>>,
    color: bool,
}

impl Columns {
    pub(crate) fn new(p: &Printer, header: &[&'static str]) -> Columns {
        Columns {
            header: header.to_vec(),
            rows: Vec::new(),
            color: p.color,
        }
    }

    /// Adds a row of (text, ANSI colour code) cells.
    pub(crate) fn row(&mut self, cells: Vec<(String, Option<&'static str>)>) {
        self.rows.push(cells);
    }

    /// The colour code for a certificate expiring at `not_after`.
    pub(crate) fn expiry_color(not_after: OffsetDateTime) -> Option<&'static str> {
        match expiry_state(not_after) {
            Expiry::Expired => Some("31"),
            Expiry::Soon => Some("33"),
            Expiry::Fine => None,
        }
    }

    pub(crate) fn print(&self) -> Result<()> {
        let mut width: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (i, (text, _)) in r.iter().enumerate() {
                width[i] = width[i].max(text.chars().count());
            }
        }
        let total: usize = width.iter().sum::<usize>() + 2 * width.len();
        let mut out = String::with_capacity((self.rows.len() + 3) * (total + 16));
        let line = |out: &mut String, cells: &mut dyn Iterator<Item = (&str, Option<&str>)>| {
            for (i, (text, color)) in cells.enumerate() {
                let pad = width[i] - text.chars().count();
                match color.filter(|_| self.color) {
                    Some(c) => out.push_str(&format!(" \x1b[{c}m{text}\x1b[0m{:pad$} ", "")),
                    None => {
                        out.push(' ');
                        out.push_str(text);
                        out.extend(std::iter::repeat_n(' ', pad + 1));
                    }
                }
            }
            out.push('\n');
        };
        out.push_str(&"─".repeat(total));
        out.push('\n');
        line(&mut out, &mut self.header.iter().map(|h| (*h, None)));
        out.push_str(&"═".repeat(total));
        out.push('\n');
        for r in &self.rows {
            line(&mut out, &mut r.iter().map(|(t, c)| (t.as_str(), *c)));
        }
        out.push_str(&"─".repeat(total));
        out.push('\n');
        write_stdout(out.as_bytes())
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
