//! What people and scripts see: JSON documents, tables fitted to the terminal, dates, lines
//! on stderr, and the one typed confirmation every command that cannot be undone asks for.
//! Everything that reaches a terminal goes through [`clean`] (control characters from
//! certificates or AWS escaped); colours only on a terminal without NO_COLOR.

mod confirm;
mod hints;
mod table;
mod when;

pub(crate) use self::{
    confirm::{Confirmation, confirm},
    table::{Color, Shorten, Table, cell},
    when::{date, day, expiry_cell, expiry_date_cell, relative},
};

use std::io::{IsTerminal, Write};

use anyhow::Result;
use serde::Serialize;

use crate::args::Output;

/// How to print.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Printer {
    pub(crate) json: bool,
    pub(crate) color: bool,
    /// The width tables must fit in: the terminal's, when stdout is one and `--wide` was
    /// not given. `None`: nothing is shortened (a pipe or file gets every character).
    pub(crate) width: Option<usize>,
}

impl Printer {
    pub(crate) fn new(output: Output, wide: bool) -> Printer {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let tty = std::io::stdout().is_terminal();
        Printer {
            json: output == Output::Json,
            color: tty && !no_color,
            width: (tty && !wide).then(terminal_width),
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

    /// A table in our house style; an empty header makes a two-column "field value" table.
    pub(crate) fn table(&self, header: &[&'static str]) -> Table {
        Table {
            header: header.to_vec(),
            columns: vec![Shorten::End; header.len()],
            rows: Vec::new(),
            color: self.color,
            width: self.width,
        }
    }
}

/// The width of the terminal on stdout: what the terminal says, else `$COLUMNS`, else 80.
fn terminal_width() -> usize {
    rustix::termios::tcgetwinsize(std::io::stdout())
        .ok()
        .map(|w| usize::from(w.ws_col))
        .filter(|w| *w > 0)
        .or_else(|| {
            std::env::var("COLUMNS")
                .ok()
                .and_then(|c| c.parse().ok())
                .filter(|w| *w > 0)
        })
        .unwrap_or(80)
}

/// Writes to stdout; a closed pipe (`certvault list | head`) is not an error.
pub(crate) fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// An error with its whole chain of causes, on one line, and what to run about it when one
/// of certvault's commands helps (the libraries name no command: see `hints`).
pub(crate) fn error_chain(e: impl Into<anyhow::Error>) -> String {
    let e = e.into();
    let hint = hints::remedy_of(&e).map(|r| hints::words(&r));
    format!("{e:#}{}", hint.unwrap_or_default())
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

#[cfg(test)]
mod tests;
