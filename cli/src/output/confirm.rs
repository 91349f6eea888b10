//! The one confirmation prompt: a person types a word (or a name) to go on; off a terminal,
//! only `--yes` goes on. Every command that cannot be undone, or that AWS charges for, asks
//! through [`confirm`], so each asks the same way and says the same when it is refused.

use std::io::IsTerminal;

use anyhow::{Result, bail};

use super::note;
use crate::UsageError;

/// What one confirmation says and asks.
pub(crate) struct Confirmation<'a> {
    /// Off a terminal without `--yes`: the usage error (exit 2), which says to add `--yes`.
    pub(crate) without_terminal: String,
    /// The lines printed on stderr before the answer is read; the last one asks.
    pub(crate) lines: Vec<String>,
    /// What must be typed (surrounding spaces ignored).
    pub(crate) answer: &'a str,
    /// The error when something else is typed: it says that nothing was done.
    pub(crate) refused: &'static str,
}

impl<'a> Confirmation<'a> {
    /// The usual form: `explain`, then "Type 'WORD' to confirm:".
    pub(crate) fn word(
        answer: &'a str,
        without_terminal: String,
        explain: String,
        refused: &'static str,
    ) -> Confirmation<'a> {
        Confirmation {
            without_terminal,
            lines: vec![explain, format!("Type '{answer}' to confirm:")],
            answer,
            refused,
        }
    }
}

/// Goes on with `yes`; else asks on a terminal and goes on only if the answer is typed.
pub(crate) fn confirm(yes: bool, c: Confirmation<'_>) -> Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(UsageError(c.without_terminal).into());
    }
    for line in &c.lines {
        note(line);
    }
    let mut typed = String::new();
    std::io::stdin().read_line(&mut typed)?;
    if typed.trim() != c.answer {
        bail!("{}", c.refused);
    }
    Ok(())
}
