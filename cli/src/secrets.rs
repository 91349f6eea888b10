//! Where passphrases come from: a file, an environment variable, or a prompt. Never argv.
//!
//! Secret environment variables are taken out of the environment at start, before any
//! thread or child exists: the process reads them, then executes itself again without them
//! (handing their values over through a pipe), so no child process (a profile's
//! `credential_process`, say) ever sees them, and `/proc/PID/environ` no longer shows them.
//! No `unsafe` is needed for that, unlike removing variables in place.

use std::{
    collections::BTreeMap,
    ffi::OsString,
    io::{IsTerminal, Read, Write},
    path::Path,
    sync::OnceLock,
};

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
    if let Some(v) = secret_var(src.env) {
        let v = std::str::from_utf8(&v)
            .map_err(|_| anyhow::anyhow!("${} is not valid UTF-8", src.env))?
            .to_owned();
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

/// The environment variables that carry secrets.
pub(crate) const SECRET_VARS: [&str; 5] = [
    "CERTVAULT_PASSPHRASE",
    "CERTVAULT_NEW_PASSPHRASE",
    "CERTVAULT_EXPORT_PASSPHRASE",
    "CERTVAULT_KEY_PASSWORD",
    "CERTVAULT_P12_PASSWORD",
];

/// Names the pipe the values come through, as `PID:FD`: only the process this one became
/// by executing itself (same pid) reads it.
const HANDOFF: &str = "CERTVAULT_SECRETS_FD";

static SECRETS: OnceLock<BTreeMap<&'static str, Zeroizing<Vec<u8>>>> = OnceLock::new();

/// A secret variable's value, as it was when the process started.
pub(crate) fn secret_var(name: &str) -> Option<Zeroizing<Vec<u8>>> {
    SECRETS
        .get()
        .and_then(|m| m.get(name))
        .map(|v| Zeroizing::new(v.to_vec()))
}

/// Whether a secret variable was set when the process started.
pub(crate) fn has_secret_var(name: &str) -> bool {
    SECRETS.get().is_some_and(|m| m.contains_key(name))
}

/// Takes the secret variables out of the environment: call first thing in `main`. Either
/// executes the binary again without them (and does not return), or, in the process that
/// results, reads their values from the pipe. Fails closed: an error here stops the
/// command.
pub(crate) fn scrub_environment() -> Result<()> {
    let me = std::process::id();
    if let Some(handoff) = std::env::var_os(HANDOFF) {
        let handoff = handoff.to_string_lossy().into_owned();
        if let Some((pid, fd)) = handoff.split_once(':')
            && pid == me.to_string()
            && let Ok(fd) = fd.parse::<u32>()
        {
            let mut pipe = std::fs::File::open(format!("/proc/self/fd/{fd}"))
                .context("cannot read the secrets handed over at start")?;
            let mut all = Zeroizing::new(Vec::new());
            pipe.read_to_end(&mut all)
                .context("cannot read the secrets handed over at start")?;
            let mut found = BTreeMap::new();
            let mut fields = all.split(|b| *b == 0);
            while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
                if let Some(known) = SECRET_VARS.iter().find(|v| v.as_bytes() == name) {
                    found.insert(*known, Zeroizing::new(value.to_vec()));
                }
            }
            let _ = SECRETS.set(found);
            return Ok(());
        }
        // Someone else's handoff (a parent certvault's): not ours to read.
    }
    let present: Vec<(&'static str, OsString)> = SECRET_VARS
        .iter()
        .filter_map(|v| std::env::var_os(v).map(|value| (*v, value)))
        .collect();
    if present.is_empty() {
        let _ = SECRETS.set(BTreeMap::new());
        return Ok(());
    }
    let mut payload = Zeroizing::new(Vec::new());
    for (name, value) in &present {
        use std::os::unix::ffi::OsStrExt;
        if value.as_bytes().contains(&0) {
            bail!("${name} contains a NUL byte");
        }
        payload.extend_from_slice(name.as_bytes());
        payload.push(0);
        payload.extend_from_slice(value.as_bytes());
        payload.push(0);
    }
    if payload.len() > 60_000 {
        bail!("the secret environment variables hold more than 60 KB");
    }
    // A pipe holds 64 KiB without a reader: written whole before the exec.
    let (read, write) = rustix::pipe::pipe().context("cannot hand the secrets over")?;
    let mut write = std::fs::File::from(write);
    write
        .write_all(&payload)
        .context("cannot hand the secrets over")?;
    drop(write);
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_else(|| "certvault".into());
    let mut cmd = std::process::Command::new("/proc/self/exe");
    {
        use std::os::{fd::AsRawFd, unix::process::CommandExt};
        cmd.arg0(argv0).args(args);
        for (name, _) in &present {
            cmd.env_remove(name);
        }
        cmd.env(HANDOFF, format!("{me}:{}", read.as_raw_fd()));
        let err = cmd.exec();
        Err(anyhow::anyhow!(
            "cannot take the secret variables out of the environment (executing certvault again failed: {err})"
        ))
    }
}

/// Before the vault is unlocked: no core dump may write the keys this process will hold to
/// disk (RLIMIT_CORE 0), and the process is not dumpable (nor readable through
/// `/proc/PID/mem` by other processes of the same user).
pub(crate) fn no_core_dumps() -> Result<()> {
    use rustix::process::{DumpableBehavior, Resource, Rlimit, set_dumpable_behavior, setrlimit};
    setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    )
    .context("cannot turn core dumps off")?;
    set_dumpable_behavior(DumpableBehavior::NotDumpable)
        .context("cannot mark the process not dumpable")?;
    Ok(())
}
