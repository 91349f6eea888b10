//! Printing: JSON for scripts, tables for people, colours only on a terminal without NO_COLOR.

use std::io::{IsTerminal, Write};

use anyhow::Result;
use serde::Serialize;
use time::OffsetDateTime;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use crate::cli::Output;

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

/// A terminal colour for a cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Color {
    Red,
    Yellow,
    Green,
}

impl Color {
    fn ansi(self) -> &'static str {
        match self {
            Color::Red => "31",
            Color::Yellow => "33",
            Color::Green => "32",
        }
    }
}

/// One cell: its text (made safe to show) and colour.
#[derive(Debug, Clone)]
pub(crate) struct Cell {
    text: String,
    color: Option<Color>,
    /// What to show instead when the table does not fit the terminal (a date for a
    /// timestamp): a column of cells that have one takes it before anything is cut.
    short: Option<String>,
}

impl Cell {
    /// The same cell, showing `short` instead on a terminal too narrow for the table.
    pub(crate) fn or_short(mut self, short: impl std::fmt::Display) -> Cell {
        self.short = Some(clean(&short.to_string()).into_owned());
        self
    }

    /// The text shown: the short form when its column takes it.
    fn shown(&self, short: bool) -> &str {
        match (&self.short, short) {
            (Some(s), true) => s,
            _ => &self.text,
        }
    }

    /// The same cell in `color` (on a terminal without NO_COLOR).
    pub(crate) fn fg(mut self, color: Color) -> Cell {
        self.color = Some(color);
        self
    }
}

/// Where a column too wide for the terminal loses characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shorten {
    /// `www.example.c…`: names, messages.
    End,
    /// `arn:aws:acm:…/5f3e-9b1c`: identifiers whose end tells them apart.
    Middle,
    /// Like `End`, but gives its room first (down to its minimum), before any other
    /// column is cut: what repeats another column (the names beside an entry's name).
    EndFirst,
    /// Never: timestamps, states, counts.
    Never,
    /// `690dd3a1`: entry ids, cut to a prefix (never under 8 characters) without `…`, so
    /// what is shown still names the entry (a unique prefix of 4 or more is accepted).
    Prefix,
}

/// A table for people: fitted to the terminal (the widest columns shortened with `…`),
/// full width anywhere else. Plain string building: `list` prints 100,000 rows of it.
pub(crate) struct Table {
    header: Vec<&'static str>,
    columns: Vec<Shorten>,
    rows: Vec<Vec<Cell>>,
    color: bool,
    width: Option<usize>,
}

/// Columns are never shortened below this many characters (or their header's width).
const MIN_COLUMN: usize = 6;
/// An id column keeps at least this much of each id.
const MIN_ID: usize = 8;
/// A column shortened in its middle (ARNs) keeps at least this much: its start and end.
const MIN_MIDDLE: usize = 20;

impl Table {
    /// Column `i` is shortened in its middle (ARNs, fingerprints), not at its end.
    pub(crate) fn shorten_middle(&mut self, i: usize) -> &mut Table {
        if let Some(c) = self.columns.get_mut(i) {
            *c = Shorten::Middle;
        }
        self
    }

    /// Column `i` holds entry ids: cut to a usable prefix, never with `…`.
    pub(crate) fn id_column(&mut self, i: usize) -> &mut Table {
        if let Some(c) = self.columns.get_mut(i) {
            *c = Shorten::Prefix;
        }
        self
    }

    /// Column `i` gives its room first when the table is too wide (see [`Shorten::EndFirst`]).
    pub(crate) fn yield_first(&mut self, i: usize) -> &mut Table {
        if let Some(c) = self.columns.get_mut(i) {
            *c = Shorten::EndFirst;
        }
        self
    }

    /// Columns never shortened: timestamps, states, counts (a cut one is useless).
    pub(crate) fn keep(&mut self, columns: &[usize]) -> &mut Table {
        for &i in columns {
            if let Some(c) = self.columns.get_mut(i) {
                *c = Shorten::Never;
            }
        }
        self
    }

    pub(crate) fn add_row(&mut self, cells: Vec<Cell>) {
        if self.columns.len() < cells.len() {
            self.columns.resize(cells.len(), Shorten::End);
        }
        self.rows.push(cells);
    }

    /// The widths each column gets, and which columns show their short forms: each
    /// column as wide as its widest cell; if the table is wider than the terminal, the
    /// columns that have short forms (dates for timestamps) take them, id columns are cut
    /// to the shortest prefix that tells their ids apart (never under 8), then the widest
    /// columns are narrowed until it fits (or every column is at its minimum).
    fn widths(&self) -> (Vec<usize>, Vec<bool>) {
        let n = self.columns.len().max(self.header.len());
        let natural = |short: &[bool]| {
            let mut width: Vec<usize> = (0..n)
                .map(|i| self.header.get(i).map_or(0, |h| h.width()))
                .collect();
            for r in &self.rows {
                for (i, c) in r.iter().enumerate() {
                    width[i] = width[i].max(c.shown(short[i]).width());
                }
            }
            width
        };
        let total = |w: &[usize]| w.iter().sum::<usize>() + 2 * w.len();
        let mut short = vec![false; n];
        let mut width = natural(&short);
        let Some(limit) = self.width else {
            return (width, short);
        };
        for i in 0..n {
            if total(&width) <= limit {
                break;
            }
            if self
                .rows
                .iter()
                .any(|r| r.get(i).is_some_and(|c| c.short.is_some()))
            {
                short[i] = true;
                width = natural(&short);
            }
        }
        let floor: Vec<usize> = (0..n)
            .map(|i| {
                let header = self.header.get(i).map_or(0, |h| h.width());
                let min = match self.columns.get(i) {
                    Some(Shorten::Never) => return width[i],
                    Some(Shorten::Prefix) => MIN_ID.max(self.unique_prefix(i)),
                    Some(Shorten::Middle) => MIN_MIDDLE,
                    _ => MIN_COLUMN,
                };
                width[i].min(min.max(header))
            })
            .collect();
        let mut excess = total(&width).saturating_sub(limit);
        // Ids first (a unique prefix names the entry as well as the whole id), then what
        // repeats another column.
        for first in [Shorten::Prefix, Shorten::EndFirst] {
            for i in 0..n {
                if self.columns.get(i) == Some(&first) && excess > 0 {
                    let give = (width[i] - floor[i]).min(excess);
                    width[i] -= give;
                    excess -= give;
                }
            }
        }
        while excess > 0 {
            // The widest column that can still give a character.
            let Some(i) = (0..n)
                .filter(|&i| width[i] > floor[i])
                .max_by_key(|&i| (width[i], std::cmp::Reverse(i)))
            else {
                break;
            };
            // Down to the next widest (or as far as needed), in one step; columns of equal
            // width lose one character in turn, so they are cut evenly.
            let next = (0..n)
                .filter(|&j| j != i && width[j] <= width[i] && width[j] > floor[j])
                .map(|j| width[j])
                .max()
                .unwrap_or(0)
                .max(floor[i]);
            let give = (width[i] - next).clamp(1, excess);
            width[i] -= give;
            excess -= give;
        }
        (width, short)
    }

    /// The shortest prefix length that tells apart every value of column `i`.
    fn unique_prefix(&self, i: usize) -> usize {
        let mut ids: Vec<&str> = self
            .rows
            .iter()
            .filter_map(|r| r.get(i).map(|c| c.text.as_str()))
            .collect();
        ids.sort_unstable();
        ids.windows(2)
            .map(|w| {
                w[0].chars()
                    .zip(w[1].chars())
                    .take_while(|(a, b)| a == b)
                    .count()
                    + 1
            })
            .max()
            .unwrap_or(0)
    }

    /// The table as text, ending with a newline.
    pub(crate) fn render(&self) -> String {
        let (width, short) = self.widths();
        let total: usize = width.iter().sum::<usize>() + 2 * width.len();
        let mut out = String::with_capacity((self.rows.len() + 4) * (total + 16));
        let line = |out: &mut String, cells: &mut dyn Iterator<Item = (&str, Option<Color>)>| {
            for (i, (text, color)) in cells.enumerate() {
                let text = fit(text, width[i], self.columns[i]);
                let pad = width[i].saturating_sub(text.width());
                out.push(' ');
                match color.filter(|_| self.color) {
                    Some(c) => {
                        out.push_str(&format!("\x1b[{}m{text}\x1b[0m", c.ansi()));
                    }
                    None => out.push_str(&text),
                }
                out.extend(std::iter::repeat_n(' ', pad + 1));
            }
            // No trailing blanks: a line is as long as what it shows.
            let kept = out.trim_end_matches(' ').len();
            out.truncate(kept);
            out.push('\n');
        };
        out.push_str(&"─".repeat(total));
        out.push('\n');
        if !self.header.is_empty() {
            line(&mut out, &mut self.header.iter().map(|h| (*h, None)));
            out.push_str(&"═".repeat(total));
            out.push('\n');
        }
        for r in &self.rows {
            line(
                &mut out,
                &mut r
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (c.shown(short[i]), c.color)),
            );
        }
        out.push_str(&"─".repeat(total));
        out.push('\n');
        out
    }

    pub(crate) fn print(&self) -> Result<()> {
        write_stdout(self.render().as_bytes())
    }
}

/// `text` in at most `width` columns, shortened with `…` where `how` says.
fn fit(text: &str, width: usize, how: Shorten) -> std::borrow::Cow<'_, str> {
    if text.width() <= width {
        return std::borrow::Cow::Borrowed(text);
    }
    if width == 0 {
        return std::borrow::Cow::Borrowed("");
    }
    let room = width - 1;
    let take = |chars: &mut dyn Iterator<Item = char>, room: usize| {
        let mut kept = String::new();
        let mut used = 0;
        for c in chars {
            let w = c.width().unwrap_or(0);
            if used + w > room {
                break;
            }
            used += w;
            kept.push(c);
        }
        kept
    };
    let out = match how {
        Shorten::Prefix => take(&mut text.chars(), width),
        Shorten::End | Shorten::EndFirst | Shorten::Never => {
            format!("{}…", take(&mut text.chars(), room))
        }
        Shorten::Middle => {
            let tail_room = room / 2;
            let head = take(&mut text.chars(), room - tail_room);
            let tail: String = take(&mut text.chars().rev(), tail_room)
                .chars()
                .rev()
                .collect();
            format!("{head}…{tail}")
        }
    };
    std::borrow::Cow::Owned(out)
}

/// The colour for a certificate expiring at `not_after`: red when past, yellow within 30
/// days.
pub(crate) fn expiry_color(not_after: OffsetDateTime) -> Option<Color> {
    match expiry_state(not_after) {
        Expiry::Expired => Some(Color::Red),
        Expiry::Soon => Some(Color::Yellow),
        Expiry::Fine => None,
    }
}

/// When `not_after` is, coloured by how soon it comes; on a narrow terminal only its day
/// (`2027-01-13`), so names are not cut to make room for the time of day.
pub(crate) fn expiry_date_cell(not_after: OffsetDateTime) -> Cell {
    expiry_cell(date(not_after), not_after).or_short(day(not_after))
}

/// The day of a moment, in UTC: `2027-01-13`.
pub(crate) fn day(t: OffsetDateTime) -> String {
    date(t).get(..10).unwrap_or_default().to_owned()
}

/// A cell coloured by how soon `not_after` comes.
pub(crate) fn expiry_cell(text: impl std::fmt::Display, not_after: OffsetDateTime) -> Cell {
    let c = cell(text);
    match expiry_color(not_after) {
        Some(color) => c.fg(color),
        None => c,
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

/// When a certificate expires, from now: "in 12 days", "expired 1 day ago".
pub(crate) fn relative(not_after: OffsetDateTime) -> String {
    let now = OffsetDateTime::now_utc();
    let r = vault::text::relative_to(not_after, now);
    if not_after <= now {
        format!("expired {r}")
    } else {
        r
    }
}

/// A moment for people: RFC 3339, whole seconds, UTC (as every command prints it).
pub(crate) fn date(t: OffsetDateTime) -> String {
    vault::text::timestamp(t)
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
    Cell {
        text: clean(&text.to_string()).into_owned(),
        color: None,
        short: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(width: Option<usize>) -> Table {
        let p = Printer {
            json: false,
            color: false,
            width,
        };
        let mut t = p.table(&["ID", "WHEN", "ARN", "DETAIL"]);
        t.add_row(vec![
            cell("690dd7b27d7f7070"),
            cell("2026-12-01T17:34:01Z"),
            cell("arn:aws:acm:eu-west-1:123456789012:certificate/5f3e9b1c-0000-4000-8000-00000000abcd"),
            cell("ImportCertificate in eu-west-1: AccessDenied: User is not authorized to perform acm:ImportCertificate"),
        ]);
        t.keep(&[1]).shorten_middle(2);
        t
    }

    /// Issue "The first hour": tables ignored the terminal's width.
    #[test]
    fn a_table_fits_the_terminal_and_shortens_its_widest_columns() {
        for width in [60, 80, 100, 132] {
            let text = table(Some(width)).render();
            for line in text.lines() {
                assert!(
                    line.width() <= width,
                    "{width}: {line:?} is {} wide",
                    line.width()
                );
            }
            // The kept column is whole; the ARN keeps its end.
            assert!(text.contains("2026-12-01T17:34:01Z"), "{text}");
            assert!(text.contains("abcd"), "{text}");
            assert!(text.contains('…'), "{text}");
        }
    }

    /// Review finding: at 80 columns `list` cut entry ids to `690dd…` (unusable) and two
    /// equally wide columns were not cut evenly.
    #[test]
    fn regression_ids_stay_usable_prefixes_and_ties_are_cut_evenly() {
        let printer = Printer {
            json: false,
            color: false,
            width: Some(40),
        };
        let mut t = printer.table(&["ID", "A", "B"]);
        t.add_row(vec![
            cell("690dd3a1b2c3d4e5"),
            cell("aaaaaaaaaaaaaaaaaaaa"),
            cell("bbbbbbbbbbbbbbbbbbbb"),
        ]);
        t.id_column(0);
        let text = t.render();
        let row = text.lines().nth(3).unwrap();
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert!(
            cells[0].starts_with("690dd3a1") && !cells[0].contains('…'),
            "{row}"
        );
        let (a, b) = (cells[1].width(), cells[2].width());
        assert!(a.abs_diff(b) <= 1, "uneven: {row}");
        assert!(row.width() <= 40, "{row}");
    }

    /// Review finding (issue 16): at 80 columns `list` cut names to `api.e…` while its
    /// EXPIRES columns kept 35; at 100 ids were cut while names were too. On a narrow
    /// terminal expiry shows its day, ids their shortest unique prefix (never under 8),
    /// and names what room is left.
    #[test]
    fn regression_a_narrow_list_shows_the_day_and_keeps_the_names() {
        let printer = Printer {
            json: false,
            color: false,
            width: Some(80),
        };
        let when = time::macros::datetime!(2027-01-13 20:45:17 UTC);
        let mut t = printer.table(&["ID", "NAME", "SOURCE", "EXPIRES", "", "KEY", "VER", "NAMES"]);
        for (id, name) in [
            ("94a8babd0dccd67d", "api1.example.com"),
            ("94a8babe0dce0000", "api2.example.com"),
        ] {
            t.add_row(vec![
                cell(id),
                cell(name),
                cell("imported"),
                expiry_date_cell(when),
                cell("in 39 days"),
                cell("yes"),
                cell("1/1"),
                cell(format!("{name}, www.{name}")),
            ]);
        }
        t.keep(&[3, 4, 5, 6]).id_column(0).yield_first(7);
        let text = t.render();
        assert!(text.lines().all(|l| l.width() <= 80), "{text}");
        assert!(text.contains(" 2027-01-13  in 39 days"), "{text}");
        assert!(!text.contains("20:45:17"), "{text}");
        assert!(text.contains(" api1.example.com "), "{text}");
        assert!(text.contains(" 94a8babd "), "{text}");
        // Ids that share 11 characters keep 12.
        let mut t = printer.table(&["ID", "NAME"]);
        for id in ["94a8babd0dccd67d", "94a8babd0dce0000"] {
            t.add_row(vec![cell(id), cell("x".repeat(100))]);
        }
        t.id_column(0);
        let ids = t.render();
        assert!(
            ids.contains(" 94a8babd0dcc ") && ids.contains(" 94a8babd0dce "),
            "{ids}"
        );
        // Wide enough, everything in full.
        let mut wide =
            printer.table(&["ID", "NAME", "SOURCE", "EXPIRES", "", "KEY", "VER", "NAMES"]);
        wide.add_row(vec![
            cell("94a8babd0dccd67d"),
            cell("a"),
            cell("imported"),
            expiry_date_cell(when),
        ]);
        wide.width = Some(200);
        let text = wide.render();
        assert!(text.contains("2027-01-13T20:45:17Z") && text.contains("94a8babd0dccd67d"));
    }

    #[test]
    fn off_a_terminal_nothing_is_cut() {
        let text = table(None).render();
        assert!(!text.contains('…'));
        assert!(text.contains("perform acm:ImportCertificate"));
        assert!(text.contains("certificate/5f3e9b1c-0000-4000-8000-00000000abcd"));
    }

    #[test]
    fn shortening_counts_columns_not_bytes() {
        assert_eq!(fit("www.example.com", 8, Shorten::End), "www.exa…");
        assert_eq!(fit("abcdefghij", 7, Shorten::Middle), "abc…hij");
        assert_eq!(fit("bücher.example", 7, Shorten::End), "bücher…");
        // Wide characters take two columns each.
        assert_eq!(fit("日本語ドメイン", 7, Shorten::End), "日本語…");
        assert_eq!(fit("short", 8, Shorten::End), "short");
    }

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
