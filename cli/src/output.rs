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

    /// Prints a line of text (control characters from certificates or AWS escaped).
    pub(crate) fn line(&self, text: &str) -> Result<()> {
        write_stdout(format!("{}\n", clean_lines(text)).as_bytes())
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
        let cell = cell(text);
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
        self.rows.push(
            cells
                .into_iter()
                .map(|(t, c)| (clean(&t).into_owned(), c))
                .collect(),
        );
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

/// A line on stderr for people (progress, confirmations, errors), never data.
pub(crate) fn note(text: &str) {
    let _ = writeln!(std::io::stderr(), "{}", clean_lines(text));
}

/// Whether a character can drive a terminal (or reorder what it shows): C0 and C1 controls,
/// DEL, and the bidirectional overrides and isolates.
fn unsafe_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Text from certificates or AWS, made safe to show: every character that could drive a
/// terminal (escape sequences, a bell, a title change) or break a table (a newline) is
/// written as `\x1b` or `\u{202e}`.
pub(crate) fn clean(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            let n = c as u32;
            if n < 0x100 {
                out.push_str(&format!("\\x{n:02x}"));
            } else {
                out.push_str(&format!("\\u{{{n:x}}}"));
            }
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Like [`clean`], keeping the line breaks of a message of several lines.
pub(crate) fn clean_lines(text: &str) -> String {
    text.split('\n')
        .map(|l| clean(l).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A table cell of text from certificates or AWS.
pub(crate) fn cell(text: impl std::fmt::Display) -> Cell {
    Cell::new(clean(&text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_cannot_reach_the_terminal() {
        assert_eq!(clean("www.example.com"), "www.example.com");
        assert_eq!(clean("a\x1b]0;pwned\x07b"), "a\\x1b]0;pwned\\x07b");
        assert_eq!(clean("\x1b[2J"), "\\x1b[2J");
        assert_eq!(clean("evil\u{202e}moc.elgoog"), "evil\\u{202e}moc.elgoog");
        assert_eq!(clean("two\nlines"), "two\\x0alines");
        assert_eq!(
            clean_lines("first\nsecond \x1b[31m"),
            "first\nsecond \\x1b[31m"
        );
        assert_eq!(clean("\u{9b}31m"), "\\x9b31m");
    }
}
