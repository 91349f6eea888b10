//! The vault file: creating, opening and unlocking it, its key hierarchy, the writer lock,
//! the passphrase, and the audit log's entry points. What lives in it is in `entries`,
//! `deploy` and `acm`; how it is laid out is in `schema`.

use std::{
    fs,
    path::{Path, PathBuf},
};

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use time::OffsetDateTime;

use crate::{
    audit::{self, AuditEvent, AuditReport},
    crypto::{KdfParams, Key, fill_random},
    error::{Error, Result},
    schema::{SCHEMA_VERSION, meta, migrate, open_connection, set_meta},
    secret::Passphrase,
};

const FORMAT: &str = "certvault-vault";
const MIN_PASSPHRASE_CHARS: usize = 8;
/// The salt lengths a key header may have: Argon2's minimum, and far more than the 16 bytes
/// certvault writes.
const MIN_SALT_BYTES: usize = 8;
const MAX_SALT_BYTES: usize = 64;

pub(crate) struct Keys {
    pub(crate) dek: Key,
    pub(crate) audit: Key,
}

/// An open vault. Reading certificates needs no passphrase; anything that touches a
/// private key or changes the vault needs [`Vault::unlock`] first.
pub struct Vault {
    pub(crate) conn: Connection,
    path: PathBuf,
    vault_id: String,
    pub(crate) keys: Option<Keys>,
    pub(crate) actor: String,
    writer: Option<crate::lock::WriterLock>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("path", &self.path)
            .field("unlocked", &self.keys.is_some())
            .finish_non_exhaustive()
    }
}

pub(crate) fn now_unix() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

fn dek_aad(vault_id: &str, kdf: &str, salt_hex: &str) -> Vec<u8> {
    format!("certvault/v1\0dek\0{vault_id}\0{kdf}\0{salt_hex}").into_bytes()
}

pub(crate) fn random_hex(bytes: usize) -> Result<String> {
    let mut b = vec![0u8; bytes];
    fill_random(&mut b)?;
    Ok(hex::encode(b))
}

fn check_passphrase(p: &Passphrase) -> Result<()> {
    if p.expose_secret().chars().count() < MIN_PASSPHRASE_CHARS {
        return Err(Error::BadPassphrase {
            reason: "it must have at least 8 characters",
        });
    }
    Ok(())
}

#[cfg(unix)]
fn create_private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map(drop)
}

#[cfg(not(unix))]
fn create_private_file(path: &Path) -> std::io::Result<()> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map(drop)
}

#[cfg(unix)]
fn create_private_dirs(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dirs(dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)
}

fn remove_vault_files(path: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = fs::remove_file(PathBuf::from(p));
    }
}

impl Vault {
    /// Creates a new vault at `path` (file 0600; missing parent folders are made 0700) and
    /// returns it unlocked.
    pub fn create(path: &Path, passphrase: &Passphrase) -> Result<Vault> {
        check_passphrase(passphrase)?;
        if path.exists() {
            return Err(Error::VaultExists {
                path: path.to_owned(),
            });
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
            && !parent.exists()
        {
            create_private_dirs(parent).map_err(|source| Error::Io {
                action: "cannot create the folder",
                path: parent.to_owned(),
                source,
            })?;
        }
        create_private_file(path).map_err(|source| Error::Io {
            action: "cannot create",
            path: path.to_owned(),
            source,
        })?;
        let path = &fs::canonicalize(path).map_err(|source| Error::Io {
            action: "cannot resolve",
            path: path.to_owned(),
            source,
        })?;
        match Vault::initialise(path, passphrase) {
            Ok(v) => Ok(v),
            Err(e) => {
                remove_vault_files(path);
                Err(e)
            }
        }
    }

    fn initialise(path: &Path, passphrase: &Passphrase) -> Result<Vault> {
        let mut conn = open_connection(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(Error::sqlite("enabling WAL"))?;
        migrate(&mut conn, 0)?;
        let vault_id = random_hex(16)?;
        let kdf = KdfParams::DEFAULT;
        let mut salt = [0u8; 16];
        fill_random(&mut salt)?;
        let salt_hex = hex::encode(salt);
        let kek = kdf.derive_kek(passphrase, &salt)?;
        let dek = Key::random()?;
        let wrapped = kek.wrap(&dek_aad(&vault_id, &kdf.encode(), &salt_hex), &dek)?;
        let keys = Keys {
            audit: dek.derive(b"audit-log"),
            dek,
        };
        let mut vault = Vault {
            conn,
            path: path.to_owned(),
            vault_id: vault_id.clone(),
            keys: None,
            actor: default_actor(),
            writer: None,
        };
        let tx = vault
            .conn
            .transaction()
            .map_err(Error::sqlite("creating the vault"))?;
        for (k, v) in [
            ("format", FORMAT.to_owned()),
            ("vault_id", vault_id),
            ("kdf", kdf.encode()),
            ("kdf_salt", salt_hex),
            ("dek_wrapped", hex::encode(wrapped)),
            ("created_at", now_unix().to_string()),
        ] {
            set_meta(&tx, k, &v)?;
        }
        audit::append(
            &tx,
            &keys.audit,
            &vault.actor,
            "init",
            None,
            "vault created",
        )?;
        tx.commit().map_err(Error::sqlite("creating the vault"))?;
        vault.keys = Some(keys);
        Ok(vault)
    }

    /// Opens an existing vault, locked. Upgrades an older schema; refuses a newer one.
    pub fn open(path: &Path) -> Result<Vault> {
        match fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NoVault {
                    path: path.to_owned(),
                });
            }
            Err(source) => {
                return Err(Error::Io {
                    action: "cannot read",
                    path: path.to_owned(),
                    source,
                });
            }
            Ok(m) if m.is_dir() => {
                return Err(Error::NotAVault {
                    path: path.to_owned(),
                    reason: "it is a directory".into(),
                });
            }
            Ok(m) => {
                // Under two names, SQLite's journal and the writer lock would each be kept
                // twice, and two writers could run at once.
                #[cfg(unix)]
                {
                    use std::os::unix::fs::MetadataExt;
                    if m.nlink() > 1 {
                        return Err(Error::NotAVault {
                            path: path.to_owned(),
                            reason: format!(
                                "it has {} hard links; a vault must have one name (copy it with `certvault backup` instead of linking it)",
                                m.nlink()
                            ),
                        });
                    }
                }
                let _ = m;
            }
        }
        // One name for the file however it was reached (a symlink, `..`): the writer lock
        // lives beside the real file.
        let path = &fs::canonicalize(path).map_err(|source| Error::Io {
            action: "cannot resolve",
            path: path.to_owned(),
            source,
        })?;
        let not_a_vault = |reason: String| Error::NotAVault {
            path: path.to_owned(),
            reason,
        };
        let mut conn = open_connection(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        let version: u32 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| not_a_vault(e.to_string()))?;
        if version == 0 {
            return Err(not_a_vault("it has no certvault schema".into()));
        }
        if version > SCHEMA_VERSION {
            return Err(Error::TooNew {
                path: path.to_owned(),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        if version < SCHEMA_VERSION {
            migrate(&mut conn, version)?;
        }
        let format = meta(&conn, "format").map_err(|e| not_a_vault(e.to_string()))?;
        if format.as_deref() != Some(FORMAT) {
            return Err(not_a_vault(
                "its header does not identify a certvault vault".into(),
            ));
        }
        let vault_id = meta(&conn, "vault_id")?
            .ok_or_else(|| not_a_vault("its header has no vault id".into()))?;
        Ok(Vault {
            conn,
            path: path.to_owned(),
            vault_id,
            keys: None,
            actor: default_actor(),
            writer: None,
        })
    }

    /// Unlocks the vault with its passphrase. A wrong passphrase changes nothing.
    ///
    /// The key header is checked before the passphrase is tried: a header no passphrase
    /// could open, or one asking Argon2 for less than 64 MiB and 3 passes or for more than
    /// 4 GiB, 64 passes or 64 lanes, is reported as damaged.
    pub fn unlock(&mut self, passphrase: &Passphrase) -> Result<()> {
        let damaged = |what: &str| Error::NotAVault {
            path: self.path.clone(),
            reason: format!("its key header is damaged ({what})"),
        };
        let kdf_s = meta(&self.conn, "kdf")?.ok_or_else(|| damaged("no kdf"))?;
        let kdf = KdfParams::decode(&kdf_s).map_err(|e| damaged(&e))?;
        kdf.check().map_err(|e| damaged(&e))?;
        let salt_hex = meta(&self.conn, "kdf_salt")?.ok_or_else(|| damaged("no salt"))?;
        let salt = hex::decode(&salt_hex).map_err(|_| damaged("bad salt"))?;
        if !(MIN_SALT_BYTES..=MAX_SALT_BYTES).contains(&salt.len()) {
            return Err(damaged(&format!(
                "the salt has {} bytes; {MIN_SALT_BYTES} to {MAX_SALT_BYTES} are accepted",
                salt.len()
            )));
        }
        let wrapped = meta(&self.conn, "dek_wrapped")?
            .and_then(|w| hex::decode(w).ok())
            .ok_or_else(|| damaged("no wrapped data key"))?;
        Key::check_wrapped_shape(&wrapped).map_err(|e| damaged(&e))?;
        let kek = kdf.derive_kek(passphrase, &salt)?;
        let dek = kek
            .unwrap(&dek_aad(&self.vault_id, &kdf_s, &salt_hex), &wrapped)
            .ok_or(Error::WrongPassphrase)?;
        self.keys = Some(Keys {
            audit: dek.derive(b"audit-log"),
            dek,
        });
        Ok(())
    }

    /// Sets who is recorded as the actor of audit events (default: `$USER`).
    pub fn set_actor(&mut self, actor: impl Into<String>) {
        self.actor = actor.into();
    }

    /// How long a write waits for another process's write transaction (default 10 s). A
    /// long-running process that must stay responsive (the agent) sets it shorter.
    pub fn set_busy_timeout(&self, wait: std::time::Duration) -> Result<()> {
        self.conn
            .busy_timeout(wait)
            .map_err(Error::sqlite("configuring the vault connection"))
    }

    /// For a long-running process (the agent): read the file through SQLite's own 8 MiB
    /// page cache instead of a memory map, so the pages it touched do not stay resident.
    /// Listing is a little slower; the agent reads each deployment once per pass.
    pub fn without_memory_map(&self) -> Result<()> {
        self.conn
            .pragma_update(None, "mmap_size", 0i64)
            .map_err(Error::sqlite("configuring the vault connection"))
    }

    /// Takes the writer lock for `command`, waiting up to `timeout` for another writer
    /// (deploy, sync, discover, the agent) to finish; then fails naming it. Released by
    /// [`Vault::release_writer`], on drop, or by the kernel when the process dies.
    pub fn lock_writer(&mut self, command: &str, timeout: std::time::Duration) -> Result<()> {
        if self.writer.is_none() {
            self.writer = Some(crate::lock::lock(&self.path, command, timeout)?);
        }
        Ok(())
    }

    /// Takes the writer lock if it is free: `Ok(None)` when taken (or already held),
    /// `Ok(Some(holder))` when another process holds it. For callers that wait without
    /// blocking a thread.
    pub fn try_lock_writer(&mut self, command: &str) -> Result<Option<String>> {
        if self.writer.is_some() {
            return Ok(None);
        }
        match crate::lock::try_lock(&self.path, command)? {
            Ok(l) => {
                self.writer = Some(l);
                Ok(None)
            }
            Err(holder) => Ok(Some(holder.map_or_else(
                || "another certvault process".to_owned(),
                |h| h.to_string(),
            ))),
        }
    }

    /// Releases the writer lock, if held.
    pub fn release_writer(&mut self) {
        self.writer = None;
    }

    /// Whether this process holds the writer lock.
    pub fn holds_writer_lock(&self) -> bool {
        self.writer.is_some()
    }

    /// The vault file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn keys(&self) -> Result<&Keys> {
        self.keys.as_ref().ok_or(Error::Locked)
    }

    /// Changes the passphrase: a new salt, a new KEK, the same DEK rewrapped. Nothing else
    /// in the file changes.
    pub fn change_passphrase(&mut self, new: &Passphrase) -> Result<()> {
        check_passphrase(new)?;
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        let kdf = KdfParams::DEFAULT;
        let mut salt = [0u8; 16];
        fill_random(&mut salt)?;
        let salt_hex = hex::encode(salt);
        let kek = kdf.derive_kek(new, &salt)?;
        let wrapped = kek.wrap(
            &dek_aad(&self.vault_id, &kdf.encode(), &salt_hex),
            &keys.dek,
        )?;
        let tx = self
            .conn
            .transaction()
            .map_err(Error::sqlite("changing the passphrase"))?;
        set_meta(&tx, "kdf", &kdf.encode())?;
        set_meta(&tx, "kdf_salt", &salt_hex)?;
        set_meta(&tx, "dek_wrapped", &hex::encode(wrapped))?;
        audit::append(
            &tx,
            &keys.audit,
            &self.actor,
            "passwd",
            None,
            "passphrase changed; data key rewrapped",
        )?;
        tx.commit()
            .map_err(Error::sqlite("changing the passphrase"))
    }

    /// Writes an audit event for something done outside the vault on its behalf (deleting
    /// a certificate from ACM, say).
    pub fn record_event(&mut self, action: &str, entry: Option<&str>, detail: &str) -> Result<()> {
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        let tx = self
            .conn
            .transaction()
            .map_err(Error::sqlite("recording an event"))?;
        let named: Option<(String, String)> = match entry {
            Some(id) => tx
                .query_row("SELECT id, name FROM entries WHERE id = ?1", [id], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()
                .map_err(Error::sqlite("recording an event"))?,
            None => None,
        };
        audit::append(
            &tx,
            &keys.audit,
            &self.actor,
            action,
            named.as_ref().map(|(a, b)| (a.as_str(), b.as_str())),
            detail,
        )?;
        tx.commit().map_err(Error::sqlite("recording an event"))
    }

    /// Every audit event, oldest first. Needs no passphrase; [`Vault::verify_audit`] does.
    pub fn audit_events(&self) -> Result<Vec<AuditEvent>> {
        audit::events(&self.conn)
    }

    /// Checks the audit chain and reports the first bad event.
    pub fn verify_audit(&self) -> Result<AuditReport> {
        audit::verify(&self.conn, &self.keys()?.audit)
    }
}

fn default_actor() -> String {
    if let Ok(u) = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")) {
        return u;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let Ok(m) = fs::metadata("/proc/self") {
            return format!("uid {}", m.uid());
        }
    }
    "unknown".into()
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
