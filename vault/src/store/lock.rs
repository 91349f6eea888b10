//! One writer at a time: an operating-system lock on a file beside the vault
//! (`vault.db.lock`), taken by everything that talks to AWS on the vault's behalf (deploy,
//! undeploy, sync, discover, each agent pass). The kernel releases it when the holder exits,
//! however it exits, so a crash never leaves the vault locked. Readers never take it.
//!
//! The holder writes who it is (pid, host, command, since) into the file, so a refused
//! writer can say whom it waited for.

use std::{
    fs::{File, TryLockError},
    io::{Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{Error, Result};

/// Who holds the writer lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    /// Process id.
    pub pid: u32,
    /// Host name.
    pub host: String,
    /// The command (`deploy`, `sync`, `agent`, ...).
    pub command: String,
    /// When it took the lock.
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
}

impl std::fmt::Display for LockHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`certvault {}` (pid {} on {}, since {})",
            self.command,
            self.pid,
            self.host,
            crate::text::timestamp(self.since)
        )
    }
}

/// A held writer lock; dropping it releases the lock.
#[derive(Debug)]
pub(crate) struct WriterLock {
    _file: File,
}

pub(crate) fn lock_path(vault: &Path) -> PathBuf {
    let mut p = vault.as_os_str().to_owned();
    p.push(".lock");
    PathBuf::from(p)
}

fn host_name() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

/// Opens (or creates, 0600) the lock file, never through a symlink, and refuses anything
/// but a regular file of ours with one name: the holder's name is written into it, so a
/// lock path pointing elsewhere (a symlink or hard link to another file, a device) would
/// have that file overwritten.
#[cfg(unix)]
fn open(path: &Path) -> Result<File> {
    use rustix::fs::{Mode, OFlags};
    use std::os::unix::fs::MetadataExt;
    let refuse = |reason: String| Error::UnsafeLockFile {
        path: path.to_owned(),
        reason,
    };
    let fd = rustix::fs::open(
        path,
        OFlags::RDWR
            | OFlags::CREATE
            | OFlags::NOFOLLOW
            | OFlags::CLOEXEC
            | OFlags::NOCTTY
            | OFlags::NONBLOCK,
        Mode::from_raw_mode(0o600),
    )
    .map_err(|e| {
        if e == rustix::io::Errno::LOOP {
            refuse(
                "it is a symbolic link; certvault makes the lock file itself (remove the link)"
                    .into(),
            )
        } else {
            Error::Io {
                action: "cannot open the writer lock",
                path: path.to_owned(),
                source: e.into(),
            }
        }
    })?;
    let file = File::from(fd);
    let m = file.metadata().map_err(|source| Error::Io {
        action: "cannot read the writer lock",
        path: path.to_owned(),
        source,
    })?;
    if !m.file_type().is_file() {
        return Err(refuse("it is not a regular file".into()));
    }
    if m.nlink() != 1 {
        return Err(refuse(format!(
            "it has {} hard links: it is another file's name too",
            m.nlink()
        )));
    }
    let me = rustix::process::geteuid().as_raw();
    if m.uid() != me {
        return Err(refuse(format!(
            "it belongs to uid {}, not to you (uid {me})",
            m.uid()
        )));
    }
    Ok(file)
}

#[cfg(not(unix))]
fn open(path: &Path) -> Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|source| Error::Io {
            action: "cannot open the writer lock",
            path: path.to_owned(),
            source,
        })
}

fn read_holder(file: &mut File) -> Option<LockHolder> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.take(4096).read_to_string(&mut text).ok()?;
    serde_json::from_str(text.trim()).ok()
}

/// Tries once: `Ok(Ok(lock))`, or `Ok(Err(holder))` when another process holds it (the
/// holder is `None` if it has not written its name yet).
pub(crate) fn try_lock(
    vault: &Path,
    command: &str,
) -> Result<std::result::Result<WriterLock, Option<LockHolder>>> {
    let path = lock_path(vault);
    let mut file = open(&path)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Ok(Err(read_holder(&mut file))),
        Err(TryLockError::Error(source)) => {
            return Err(Error::Io {
                action: "cannot take the writer lock",
                path,
                source,
            });
        }
    }
    let me = LockHolder {
        pid: std::process::id(),
        host: host_name(),
        command: command.to_owned(),
        since: OffsetDateTime::now_utc(),
    };
    let text = serde_json::to_string(&me).expect("holder serialises");
    // Only now, the lock held on a file checked to be ours alone, is it rewritten.
    let written = file
        .set_len(0)
        .and_then(|()| file.seek(SeekFrom::Start(0)))
        .and_then(|_| file.write_all(text.as_bytes()))
        .and_then(|()| file.flush());
    written.map_err(|source| Error::Io {
        action: "cannot write the writer lock",
        path,
        source,
    })?;
    Ok(Ok(WriterLock { _file: file }))
}

/// Waits up to `timeout` for the lock, checking every 100 ms.
pub(crate) fn lock(vault: &Path, command: &str, timeout: Duration) -> Result<WriterLock> {
    let start = Instant::now();
    loop {
        match try_lock(vault, command)? {
            Ok(l) => return Ok(l),
            Err(holder) if start.elapsed() >= timeout => {
                return Err(Error::Busy {
                    path: vault.to_owned(),
                    holder: holder.map_or_else(
                        || "another certvault process (it has not said which yet)".to_owned(),
                        |h| h.to_string(),
                    ),
                    waited: start.elapsed(),
                });
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100).min(timeout)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_writer_is_refused_naming_the_first_and_a_release_lets_it_in() {
        let dir = tempfile::tempdir().unwrap();
        let vault = dir.path().join("v.db");
        let first = lock(&vault, "sync", Duration::ZERO).unwrap();
        let err = lock(&vault, "deploy", Duration::from_millis(250)).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("`certvault sync`"), "{msg}");
        assert!(
            msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        assert!(msg.contains("since"), "{msg}");
        drop(first);
        lock(&vault, "deploy", Duration::ZERO).unwrap();
    }

    /// Issue 16, item 12: the lock file followed a symlink and truncated its target (the
    /// holder's name written over it). A link, a hard link or another kind of file is
    /// refused, and what it points at is left as it was.
    #[test]
    fn a_lock_path_that_is_not_our_own_file_is_refused_and_its_target_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let vault = dir.path().join("v.db");
        let precious = dir.path().join("precious.txt");
        std::fs::write(&precious, "keep me").unwrap();
        std::os::unix::fs::symlink(&precious, lock_path(&vault)).unwrap();
        let err = lock(&vault, "sync", Duration::ZERO)
            .unwrap_err()
            .to_string();
        assert!(err.contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read_to_string(&precious).unwrap(), "keep me");
        std::fs::remove_file(lock_path(&vault)).unwrap();
        std::fs::hard_link(&precious, lock_path(&vault)).unwrap();
        let err = lock(&vault, "sync", Duration::ZERO)
            .unwrap_err()
            .to_string();
        assert!(err.contains("hard links"), "{err}");
        assert_eq!(std::fs::read_to_string(&precious).unwrap(), "keep me");
        std::fs::remove_file(lock_path(&vault)).unwrap();
        std::fs::create_dir(lock_path(&vault)).unwrap();
        assert!(lock(&vault, "sync", Duration::ZERO).is_err());
        std::fs::remove_dir(lock_path(&vault)).unwrap();
        // Its own file, made afresh, works.
        drop(lock(&vault, "sync", Duration::ZERO).unwrap());
        lock(&vault, "sync", Duration::ZERO).unwrap();
    }

    /// Review finding: the same vault reached through a symlink had a second lock file,
    /// so two writers could run at once.
    #[test]
    fn a_vault_reached_through_a_symlink_shares_its_lock_and_hard_links_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("vault.db");
        let pass = crate::Passphrase::new("correct horse battery staple".into());
        drop(crate::Vault::create(&real, &pass).unwrap());
        let link = dir.path().join("elsewhere.db");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let mut a = crate::Vault::open(&real).unwrap();
        let mut b = crate::Vault::open(&link).unwrap();
        a.lock_writer("agent", Duration::ZERO).unwrap();
        let err = b.lock_writer("deploy", Duration::ZERO).unwrap_err();
        assert!(err.to_string().contains("`certvault agent`"), "{err}");
        let hard = dir.path().join("hard.db");
        std::fs::hard_link(&real, &hard).unwrap();
        let err = crate::Vault::open(&hard).unwrap_err().to_string();
        assert!(err.contains("hard links"), "{err}");
    }
}
