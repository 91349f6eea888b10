//! Tables for people: fitted to the terminal, cells made safe to show, colours on request.

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use anyhow::Result;

use super::{clean, write_stdout};

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
    pub(super) header: Vec<&'static str>,
    pub(super) columns: Vec<Shorten>,
    pub(super) rows: Vec<Vec<Cell>>,
    pub(super) color: bool,
    pub(super) width: Option<usize>,
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
pub(super) fn fit(text: &str, width: usize, how: Shorten) -> std::borrow::Cow<'_, str> {
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

/// A table cell of text from certificates or AWS.
pub(crate) fn cell(text: impl std::fmt::Display) -> Cell {
    Cell {
        text: clean(&text.to_string()).into_owned(),
        color: None,
        short: None,
    }
}
