//! Where passphrases come from: a file, an environment variable, or a prompt. Never argv.

use std::{io::IsTerminal, path::Path};

use anyhow::{Context, Result, bail};
use vault::Passphrase;
use zeroize::Zeroizing;

/// How one kind of passphrase is looked for.
pub(crate) struct Source<'a> {
    /// What it is, for prompts and messages ("vault passphrase").
    pub(crate) what: &'a str,
    /// The `--...-file` flag's value, if given.
    pub(crate) file: Option<&'a Path>,
    /// The flag's name, for messages.
    pub(crate) flag: &'a str,
    /// The environment variable.
    pub(crate) env: &'a str,
    /// Ask twice at a prompt (for a new passphrase).
    pub(crate) confirm: bool,
}

fn read_file(path: &Path, what: &str) -> Result<Passphrase> {
    if path.is_dir() {
        bail!(
            "{} is a directory, not a file holding the {what}",
            path.display()
        );
    }
    let bytes = Zeroizing::new(
        std::fs::read(path)
            .with_context(|| format!("cannot read the {what} from {}", path.display()))?,
    );
    let text = Zeroizing::new(
        std::str::from_utf8(&bytes)
            .map_err(|_| anyhow::anyhow!("the {what} in {} is not UTF-8 text", path.display()))?
            .to_owned(),
    );
    let p = Passphrase::from_file_contents(text);
    if p.is_empty() {
        bail!("{} is empty: it should hold the {what}", path.display());
    }
    Ok(p)
}

/// Finds the passphrase: the file, else the environment variable, else a prompt.
pub(crate) fn obtain(src: &Source<'_>) -> Result<Passphrase> {
    if let Some(path) = src.file {
        return read_file(path, src.what);
    }
    if let Some(v) = std::env::var_os(src.env) {
        let v = v
            .into_string()
            .map_err(|_| anyhow::anyhow!("${} is not valid UTF-8", src.env))?;
        let p = Passphrase::new(v);
        if p.is_empty() {
            bail!("${} is set but empty", src.env);
        }
        return Ok(p);
    }
    if !std::io::stdin().is_terminal() && !std::io::stderr().is_terminal() {
        bail!(
            "no {what}: give it with {flag} FILE or ${env}, or run certvault in a terminal to be asked",
            what = src.what,
            flag = src.flag,
            env = src.env
        );
    }
    let first = prompt(&format!("{}: ", capitalise(src.what)))?;
    if first.is_empty() {
        bail!("the {} cannot be empty", src.what);
    }
    if src.confirm {
        let second = prompt(&format!("{} again: ", capitalise(src.what)))?;
        if first.expose_secret() != second.expose_secret() {
            bail!("the two {}s differ; nothing was changed", src.what);
        }
    }
    Ok(first)
}

fn prompt(text: &str) -> Result<Passphrase> {
    rpassword::prompt_password(text)
        .map(Passphrase::new)
        .context("cannot read a passphrase from the terminal")
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}
