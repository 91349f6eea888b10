//! The vault file and its handle, [`Vault`]: creating, opening and unlocking it, its key
//! hierarchy, the writer lock (`lock`), the passphrase, the schema and its migrations
//! (`schema`), the [`Db`] through which every write transaction begins, and the audit
//! log's entry points. What lives in it is in `entries`, `records` and `ca`; how its rows
//! are proven is in `integrity`.
//!
//! It promises: one writer at a time, a write refused once the data key was rotated by
//! another process, a vault newer than this code refused, and nothing written before the
//! rows it acts on were checked.

mod checks;
pub(crate) mod lock;
pub(crate) mod schema;

pub use self::{lock::LockHolder, schema::SCHEMA_VERSION};

use std::{
    fs,
    path::{Path, PathBuf},
};

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use time::OffsetDateTime;

use crate::{
    crypto::{KdfParams, Key, Keys, Passphrase, fill_random},
    error::{Error, Result},
    integrity::audit::{self, AuditEvent, AuditReport},
    store::schema::{meta, migrate, open_connection, set_meta},
    text::count,
};

const FORMAT: &str = "certvault-vault";
/// Header key that changes whenever the data key is rotated.
const DEK_GENERATION: &str = "dek_generation";
const MIN_PASSPHRASE_CHARS: usize = 8;
/// The salt lengths a key header may have: Argon2's minimum, and far more than the 16 bytes
/// certvault writes.
const MIN_SALT_BYTES: usize = 8;
const MAX_SALT_BYTES: usize = 64;

/// What `certvault verify` found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VerifyReport {
    /// Rows checked.
    pub rows: u64,
    /// Rows that fail their check (changed outside certvault, unsealed, an older copy put
    /// back, revocations deleted).
    pub bad_rows: Vec<crate::integrity::BadRow>,
    /// The audit chain.
    pub audit: AuditReport,
    /// What is wrong with the vault's header (a removed integrity marker).
    pub header: Vec<String>,
    /// What an upgrade left to the next unlock (rows of an older schema not sealed or bound
    /// yet): not verified until then, because verify writes nothing.
    pub pending: Vec<String>,
}

impl VerifyReport {
    /// Whether everything checked out.
    pub fn intact(&self) -> bool {
        self.bad_rows.is_empty()
            && self.audit.problem.is_none()
            && self.header.is_empty()
            && self.pending.is_empty()
    }
}

/// The vault's SQLite connection. It reads like a [`Connection`] (it derefs to one), but a
/// write transaction is begun only through [`Db::write`]: `BEGIN IMMEDIATE`, so a writer
/// waits for another under the busy timeout instead of failing at its first write, and,
/// inside it, the data key's generation checked against the one this process unlocked
/// with. There is no `DerefMut`: `transaction()` cannot be called on it by mistake (nor is
/// `unchecked_transaction()` used anywhere).
pub(crate) struct Db {
    conn: Connection,
    path: PathBuf,
    /// The data key's generation (`meta.dek_generation`, absent before the first rotation)
    /// this process unlocked with; `None` while locked (nothing sealed or MACed can be
    /// written then).
    unlocked_generation: Option<Option<String>>,
}

impl std::ops::Deref for Db {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.conn
    }
}

impl Db {
    /// Begins a write transaction: `BEGIN IMMEDIATE` (waiting up to the busy timeout for
    /// another writer), then checks that the data key was not rotated since this process
    /// unlocked. A rotation bumps the generation in the transaction that seals everything
    /// again, so a writer either commits before it (and its rows are sealed again with the
    /// rest) or sees the new generation here and writes nothing.
    pub(crate) fn write(&mut self, doing: &'static str) -> Result<rusqlite::Transaction<'_>> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(Error::sqlite(doing))?;
        if let Some(unlocked) = &self.unlocked_generation
            && meta(&tx, DEK_GENERATION)? != *unlocked
        {
            return Err(Error::DataKeyRotated {
                path: self.path.clone(),
            });
        }
        Ok(tx)
    }

    /// A number that changes whenever another connection commits to the vault (`PRAGMA
    /// data_version`): taken before the checks of a change, and given to
    /// [`Db::write_unchanged`].
    pub(crate) fn data_version(&self) -> Result<i64> {
        self.conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .map_err(Error::sqlite("reading the vault"))
    }

    /// [`Db::write`], for a change whose rows were checked before it began (with their
    /// MACs, against the audit log): refused when another process committed anything since
    /// `seen` (the checks began). Under the write lock nothing changes afterwards, so what
    /// the change seals is what was checked; a row changed between the checks and the write
    /// is never sealed over.
    pub(crate) fn write_unchanged(
        &mut self,
        doing: &'static str,
        seen: i64,
    ) -> Result<rusqlite::Transaction<'_>> {
        let path = self.path.clone();
        let tx = self.write(doing)?;
        let now: i64 = tx
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .map_err(Error::sqlite(doing))?;
        if now != seen {
            return Err(Error::ChangedMeanwhile { path });
        }
        Ok(tx)
    }
}

/// An open vault. Reading certificates needs no passphrase; anything that touches a
/// private key or changes the vault needs [`Vault::unlock`] first.
pub struct Vault {
    pub(crate) conn: Db,
    path: PathBuf,
    vault_id: String,
    pub(crate) keys: Option<Keys>,
    pub(crate) actor: String,
    writer: Option<crate::store::lock::WriterLock>,
    /// A removal's write-ahead log could not be emptied yet.
    wal_dirty: bool,
    /// Whether a batch issuance makes keys on a second thread (see `ca_issue_many`).
    pub(crate) issue_pipeline: bool,
    /// Opened to be checked only (`verify`): SQLite refuses every write (`query_only`), and
    /// unlocking upgrades, seals and binds nothing.
    read_only: bool,
    /// The stretch of the audit chain this process checked: from which event, and where it
    /// ended (see `ledger`).
    pub(crate) audit_checked: std::cell::RefCell<Option<(i64, audit::Checked)>>,
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
        let keys = Keys::from_dek(dek);
        let mut vault = Vault {
            conn: Db {
                conn,
                path: path.to_owned(),
                unlocked_generation: None,
            },
            path: path.to_owned(),
            vault_id: vault_id.clone(),
            keys: None,
            actor: default_actor(),
            writer: None,
            wal_dirty: false,
            issue_pipeline: true,
            read_only: false,
            audit_checked: Default::default(),
        };
        let tx = vault.conn.write("creating the vault")?;
        for (k, v) in [
            ("format", FORMAT.to_owned()),
            ("vault_id", vault_id),
            ("kdf", kdf.encode()),
            ("kdf_salt", salt_hex),
            ("dek_wrapped", hex::encode(wrapped)),
            ("created_at", now_unix().to_string()),
            (
                crate::integrity::SEALED_META,
                crate::integrity::SEALED_V1.to_owned(),
            ),
        ] {
            set_meta(&tx, k, &v)?;
        }
        audit::append(
            &tx,
            &keys.audit,
            &vault.actor,
            "init",
            None,
            // Says, in the log no one can rewrite, that this vault had row MACs from the start
            // (see `integrity::had_macs`).
            &format!("vault created (schema {SCHEMA_VERSION}, every row MACed)"),
        )?;
        tx.commit().map_err(Error::sqlite("creating the vault"))?;
        vault.keys = Some(keys);
        vault.conn.unlocked_generation = Some(None);
        Ok(vault)
    }

    /// Opens an existing vault, locked. Upgrades an older schema; refuses a newer one.
    pub fn open(path: &Path) -> Result<Vault> {
        Vault::open_as(path, false)
    }

    /// Opens an existing vault to check it only (`certvault verify`): nothing is written,
    /// whatever happens (SQLite's `query_only`); unlocking it upgrades, seals and binds
    /// nothing (a verify that sealed rows first would vouch for whatever they hold). A vault
    /// of an older schema is refused (upgrading it is a write).
    pub fn open_read_only(path: &Path) -> Result<Vault> {
        Vault::open_as(path, true)
    }

    fn open_as(path: &Path, read_only: bool) -> Result<Vault> {
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
                        return Err(Error::HardLinked {
                            path: path.to_owned(),
                            links: m.nlink(),
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
        if version < SCHEMA_VERSION && read_only {
            return Err(Error::SchemaNotUpgraded {
                path: path.to_owned(),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        if read_only {
            conn.pragma_update(None, "query_only", true)
                .map_err(Error::sqlite("opening the vault to check it"))?;
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
            conn: Db {
                conn,
                path: path.to_owned(),
                unlocked_generation: None,
            },
            path: path.to_owned(),
            vault_id,
            keys: None,
            actor: default_actor(),
            writer: None,
            wal_dirty: false,
            issue_pipeline: true,
            read_only,
            audit_checked: Default::default(),
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
        // The key header and its generation in one statement, so from one snapshot: read
        // apart, a rotation committed between them would pair the old data key with the
        // new generation, and the writes of this process would pass its check.
        let mut header = self.key_header()?;
        let mut take = |key: &str| header.remove(key);
        let kdf_s = take("kdf").ok_or_else(|| damaged("no kdf"))?;
        let salt_hex = take("kdf_salt").ok_or_else(|| damaged("no salt"))?;
        let wrapped = take("dek_wrapped");
        let generation = take(DEK_GENERATION);
        let kdf = KdfParams::decode(&kdf_s).map_err(|e| damaged(&e))?;
        kdf.check().map_err(|e| damaged(&e))?;
        let salt = hex::decode(&salt_hex).map_err(|_| damaged("bad salt"))?;
        if !(MIN_SALT_BYTES..=MAX_SALT_BYTES).contains(&salt.len()) {
            return Err(damaged(&format!(
                "the salt has {} bytes; {MIN_SALT_BYTES} to {MAX_SALT_BYTES} are accepted",
                salt.len()
            )));
        }
        let wrapped = wrapped
            .and_then(|w| hex::decode(w).ok())
            .ok_or_else(|| damaged("no wrapped data key"))?;
        Key::check_wrapped_shape(&wrapped).map_err(|e| damaged(&e))?;
        let kek = kdf.derive_kek(passphrase, &salt)?;
        let dek = kek
            .unwrap(&dek_aad(&self.vault_id, &kdf_s, &salt_hex), &wrapped)
            .ok_or(Error::WrongPassphrase)?;
        self.keys = Some(Keys::from_dek(dek));
        self.conn.unlocked_generation = Some(generation);
        if !self.read_only {
            self.upgrade()?;
        }
        Ok(())
    }

    /// Fails when another process rotated the data key since this one unlocked: what it
    /// holds in memory would no longer open or seal anything (a long-running agent must be
    /// restarted to unlock again).
    ///
    /// Every write checks it again inside its transaction (see [`Db::write`]); this is for
    /// a process about to act outside the vault (AWS) on what it holds.
    pub fn ensure_data_key_current(&self) -> Result<()> {
        if let Some(unlocked) = &self.conn.unlocked_generation
            && meta(&self.conn, DEK_GENERATION)? != *unlocked
        {
            return Err(Error::DataKeyRotated {
                path: self.path.clone(),
            });
        }
        Ok(())
    }

    /// The key header's values (`kdf`, `kdf_salt`, `dek_wrapped`, `dek_generation`), read
    /// in one statement.
    fn key_header(&self) -> Result<std::collections::HashMap<String, String>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT key, value FROM meta
                 WHERE key IN ('kdf', 'kdf_salt', 'dek_wrapped', 'dek_generation')",
            )
            .map_err(Error::sqlite("reading the vault header"))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(Error::sqlite("reading the vault header"))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(Error::sqlite("reading the vault header"))
    }

    /// What a schema upgrade leaves to the first unlock (the process that upgraded the
    /// schema may not have held the key), in one transaction, audited:
    ///
    /// - the upgrade itself is recorded (`schema-upgrade`);
    /// - a vault from before schema 5 has its rows sealed with MACs and its keys bound to
    ///   their entries, once (`integrity-upgrade`) — only if nothing it cannot forge shows it
    ///   had MACs already (`integrity::had_macs`): the header's marker and schema version are
    ///   in the file, so removing one must not get a changed row sealed. Otherwise nothing is
    ///   sealed, and the refusal is audited (`integrity-failure`);
    /// - rows of schema 6 and 7 (a CA's row, revocations) are bound to the audit log, once,
    ///   each checked first (see `ledger::bind_legacy`).
    ///
    /// Nothing is sealed or bound over an audit log that does not verify: the commands that
    /// use the rows refuse them, and `verify` names what is wrong.
    fn upgrade(&mut self) -> Result<()> {
        use crate::integrity::{SEALED_META, SEALED_V1};
        let pending = meta(&self.conn, crate::store::schema::PENDING_UPGRADE)?;
        if pending.is_none() && meta(&self.conn, SEALED_META)?.as_deref() == Some(SEALED_V1) {
            return Ok(());
        }
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        let tx = self.conn.write("upgrading the vault")?;
        // Another process may have done it meanwhile.
        let pending = meta(&tx, crate::store::schema::PENDING_UPGRADE)?;
        let sealed = meta(&tx, SEALED_META)?.as_deref() == Some(SEALED_V1);
        if pending.is_none() && sealed {
            return Ok(());
        }
        if audit::verify_from(&tx, &keys.audit, 1, Some(Vec::new()))?.is_err() {
            return Ok(());
        }
        let from: Option<u32> = pending.as_deref().and_then(|p| p.parse().ok());
        if !sealed {
            let evidence = match from {
                Some(f) if f < 5 => crate::integrity::had_macs(&tx, &keys.dek)?,
                _ => Some(format!(
                    "its schema ({}) has had row MACs since it was made",
                    from.map_or_else(|| SCHEMA_VERSION.to_string(), |f| f.to_string())
                )),
            };
            match evidence {
                None => seal_before_schema_5(&tx, keys, &self.actor)?,
                Some(why) => {
                    audit::append(
                        &tx,
                        &keys.audit,
                        &self.actor,
                        "integrity-failure",
                        None,
                        &format!(
                            "the vault header asks for the one-time seal of a vault from before row MACs (its marker is gone{}), but this vault had row MACs: {why}. Nothing was sealed again; every row is checked against the MAC it has",
                            from.filter(|f| *f < 5)
                                .map(|f| format!(", an upgrade from schema {f} is noted"))
                                .unwrap_or_default()
                        ),
                    )?;
                }
            }
            set_meta(&tx, SEALED_META, SEALED_V1)?;
        }
        if let Some(p) = &pending {
            audit::append(
                &tx,
                &keys.audit,
                &self.actor,
                "schema-upgrade",
                None,
                &format!("vault schema upgraded from version {p} to {SCHEMA_VERSION}"),
            )?;
        }
        if from.is_some_and(|f| (6..8).contains(&f)) {
            if crate::integrity::ledger::binding_allowed(&tx)? {
                let (bound, refused) = crate::integrity::ledger::bind_legacy(
                    &tx,
                    keys,
                    &self.actor,
                    pending.as_deref().unwrap_or("7"),
                )?;
                for r in &refused {
                    audit::append(
                        &tx,
                        &keys.audit,
                        &self.actor,
                        "integrity-failure",
                        None,
                        &format!("{r}; it is not bound to the audit log and is not acted on"),
                    )?;
                }
                audit::append(
                    &tx,
                    &keys.audit,
                    &self.actor,
                    crate::integrity::ledger::BIND_ACTION,
                    None,
                    &format!(
                        "schema 8: {} of CAs and revocations bound to the audit log{}",
                        count(bound, "row", "rows"),
                        if refused.is_empty() {
                            String::new()
                        } else {
                            format!("; {} refused", count(refused.len(), "row", "rows"))
                        }
                    ),
                )?;
            } else {
                audit::append(
                    &tx,
                    &keys.audit,
                    &self.actor,
                    "integrity-failure",
                    None,
                    "the vault header asks to bind rows of schema 7 to the audit log, but they were bound already: nothing was bound again",
                )?;
            }
        }
        tx.execute(
            "DELETE FROM meta WHERE key = ?1",
            [crate::store::schema::PENDING_UPGRADE],
        )
        .map_err(Error::sqlite("upgrading the vault"))?;
        tx.commit().map_err(Error::sqlite("upgrading the vault"))
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
            self.writer = Some(crate::store::lock::lock(&self.path, command, timeout)?);
            // What was checked before is checked again under the lock.
            self.forget_audit_checks();
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
        match crate::store::lock::try_lock(&self.path, command)? {
            Ok(l) => {
                self.writer = Some(l);
                self.forget_audit_checks();
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

    /// The vault's id (random, made with it; bound to its key header).
    pub fn vault_id(&self) -> &str {
        &self.vault_id
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
        let tx = self.conn.write("changing the passphrase")?;
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
            .map_err(Error::sqlite("changing the passphrase"))?;
        // The data key wrapped under the old passphrase survives nowhere.
        self.scrub().map(drop)
    }

    /// Folds the write-ahead log into the file and empties it, so what a change deleted or
    /// replaced survives nowhere (with `secure_delete`, deleted content is zeroed in the
    /// file). Waits up to 5 s for readers (the agent between two reads); `false` when one
    /// still holds on (the log is emptied by a later checkpoint; `wal_emptied` says so).
    pub(crate) fn scrub(&mut self) -> Result<bool> {
        for _ in 0..50 {
            let (busy, _, _): (i64, i64, i64) = self
                .conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .map_err(Error::sqlite("emptying the write-ahead log"))?;
            if busy == 0 {
                self.wal_dirty = false;
                return Ok(true);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        self.wal_dirty = true;
        Ok(false)
    }

    /// Whether the write-ahead log was emptied after the last removal (another process
    /// reading the vault can hold it for a while).
    pub fn wal_emptied(&self) -> bool {
        !self.wal_dirty
    }

    /// Rotates the data key: a new random one, every private key sealed again under it,
    /// every row and the audit log MACed again under the keys it derives, and the new key
    /// wrapped under `passphrase` — in one transaction, after checking every row and the
    /// audit log. An old copy of the vault and the passphrase it had open nothing added
    /// afterwards. Returns how many keys and rows were sealed again.
    pub fn rotate_data_key(&mut self, passphrase: &Passphrase) -> Result<(u64, u64)> {
        check_passphrase(passphrase)?;
        let old = self.keys.as_ref().ok_or(Error::Locked)?;
        let new = Keys::from_dek(Key::random()?);
        let kdf = KdfParams::DEFAULT;
        let mut salt = [0u8; 16];
        fill_random(&mut salt)?;
        let salt_hex = hex::encode(salt);
        let wrapped = kdf
            .derive_kek(passphrase, &salt)?
            .wrap(&dek_aad(&self.vault_id, &kdf.encode(), &salt_hex), &new.dek)?;
        // Checked inside the transaction that seals everything again: a row written (or
        // changed) between a check outside it and the re-sealing would be sealed unseen.
        let tx = self.conn.write("rotating the data key")?;
        let report = verify_with(&tx, old)?;
        if let Some(bad) = report.bad_rows.first() {
            return Err(Error::RowTampered {
                table: bad.table,
                row: bad.row.clone(),
            });
        }
        if let Some(what) = report.header.first().or(report.pending.first()) {
            return Err(Error::NotAVault {
                path: self.path.clone(),
                reason: format!("{what}; the data key is not rotated over it"),
            });
        }
        if let Some(p) = &report.audit.problem {
            return Err(Error::NotAVault {
                path: self.path.clone(),
                reason: format!(
                    "its audit log does not verify (event #{}: {}); the data key is not rotated over it",
                    p.seq, p.what
                ),
            });
        }
        let sealed_keys: Vec<(i64, String, Vec<u8>, Vec<u8>)> = {
            let mut stmt = tx
                .prepare(
                    "SELECT id, entry_id, cert_der, key_sealed FROM versions WHERE key_sealed IS NOT NULL",
                )
                .map_err(Error::sqlite("rotating the data key"))?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .map_err(Error::sqlite("rotating the data key"))?;
            rows.collect::<rusqlite::Result<_>>()
                .map_err(Error::sqlite("rotating the data key"))?
        };
        let mut resealed = 0;
        for (row, entry, der, sealed) in sealed_keys {
            let aad = crate::crypto::key_aad(row, &entry, &crate::crypto::sha256_hex(&der));
            let plain = old.dek.open(&aad, &sealed).ok_or(Error::Tampered {
                table: "versions",
                row,
                column: "key_sealed",
            })?;
            let again = new.dek.seal(&aad, plain.expose_secret())?;
            tx.execute(
                "UPDATE versions SET key_sealed = ?2 WHERE id = ?1",
                rusqlite::params![row, again],
            )
            .map_err(Error::sqlite("rotating the data key"))?;
            resealed += 1;
        }
        let rows = crate::integrity::seal_all(&tx, &new.rows)?;
        audit::rekey(&tx, &new.audit)?;
        set_meta(&tx, "kdf", &kdf.encode())?;
        set_meta(&tx, "kdf_salt", &salt_hex)?;
        set_meta(&tx, "dek_wrapped", &hex::encode(wrapped))?;
        let generation = random_hex(8)?;
        set_meta(&tx, DEK_GENERATION, &generation)?;
        audit::append(
            &tx,
            &new.audit,
            &self.actor,
            "passwd",
            None,
            &format!(
                "data key rotated: {} and {} sealed again, the audit log re-keyed; passphrase set",
                count(resealed, "private key", "private keys"),
                count(rows, "row", "rows")
            ),
        )?;
        tx.commit()
            .map_err(Error::sqlite("rotating the data key"))?;
        self.keys = Some(new);
        self.conn.unlocked_generation = Some(Some(generation));
        self.forget_audit_checks();
        self.scrub()?;
        Ok((resealed, rows))
    }

    /// Writes a consistent copy of the vault to `out` with SQLite's online backup (safe
    /// while an agent writes), file mode 0600, through a temporary file renamed into place;
    /// an existing `out` is replaced only with `force`. Returns the audit anchor the copy
    /// holds. Needs no passphrase: the copy is as encrypted as the vault.
    pub fn backup(&self, out: &Path, force: bool) -> Result<Option<(i64, String)>> {
        if out.exists() && !force {
            return Err(Error::Io {
                action: "refusing to overwrite (add --force)",
                path: out.to_owned(),
                source: std::io::Error::from(std::io::ErrorKind::AlreadyExists),
            });
        }
        let dir = out
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let tmp = dir.join(format!(
            ".{}.certvault-backup-{}",
            out.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            random_hex(4)?
        ));
        create_private_file(&tmp).map_err(|source| Error::Io {
            action: "cannot create",
            path: tmp.clone(),
            source,
        })?;
        let copied = (|| -> Result<Option<(i64, String)>> {
            {
                let mut dest =
                    Connection::open(&tmp).map_err(Error::sqlite("writing the backup"))?;
                let b = rusqlite::backup::Backup::new(&self.conn, &mut dest)
                    .map_err(Error::sqlite("writing the backup"))?;
                b.run_to_completion(256, std::time::Duration::from_millis(5), None)
                    .map_err(Error::sqlite("writing the backup"))?;
            }
            // The copy is a vault of its own: one file, no write-ahead log beside it.
            let dest = Connection::open(&tmp).map_err(Error::sqlite("writing the backup"))?;
            dest.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                .map_err(Error::sqlite("writing the backup"))?;
            let anchor = audit::anchor(&dest, None)?;
            drop(dest);
            Ok(anchor)
        })();
        let anchor = match copied {
            Ok(a) => a,
            Err(e) => {
                remove_vault_files(&tmp);
                return Err(e);
            }
        };
        fs::rename(&tmp, out).map_err(|source| Error::Io {
            action: "cannot move the backup to",
            path: out.to_owned(),
            source,
        })?;
        remove_vault_files(&tmp);
        Ok(anchor)
    }

    /// The audit log's anchor: the newest event's number and digest (see `log head`).
    pub fn audit_anchor(&self) -> Result<Option<(i64, String)>> {
        audit::anchor(&self.conn, None)
    }

    /// Checks the audit log against an anchor kept outside the vault: event `seq` must be
    /// there and hash to `digest`. A trimmed or rolled-back log fails, naming what differs.
    pub fn check_audit_anchor(&self, seq: i64, digest: &str) -> Result<Option<String>> {
        Ok(match audit::anchor(&self.conn, Some(seq))? {
            Some((_, d)) if d.eq_ignore_ascii_case(digest) => None,
            Some(_) => Some(format!(
                "event #{seq} is not the one anchored: the log was rewritten or rolled back"
            )),
            None => {
                let newest = audit::anchor(&self.conn, None)?.map_or(0, |(s, _)| s);
                Some(format!(
                    "the log ends at event #{newest}, before the anchored #{seq}: events were removed from the end, or the vault was rolled back to an older copy"
                ))
            }
        })
    }

    /// For a process that keeps the audit anchor outside the vault (the agent): checks that
    /// the log still holds the anchored event with the same digest, and returns the newest
    /// anchor, in one walk of the log. A vault rolled back to an older copy (or whose newest
    /// events were cut) fails with [`Error::RolledBack`], naming what differs.
    pub fn advance_audit_anchor(&self, kept: Option<(i64, &str)>) -> Result<Option<(i64, String)>> {
        let (at_digest, newest) = audit::anchors(&self.conn, kept.map_or(0, |(s, _)| s))?;
        if let Some((seq, digest)) = kept {
            let what = match at_digest {
                Some(d) if d.eq_ignore_ascii_case(digest) => None,
                Some(_) => Some(format!(
                    "event #{seq} is not the one anchored: the log was rewritten or rolled back"
                )),
                None => Some(format!(
                    "the log ends at event #{}, before the anchored #{seq}: events were removed from the end, or the vault was rolled back to an older copy",
                    newest.as_ref().map_or(0, |(s, _)| *s)
                )),
            };
            if let Some(what) = what {
                return Err(Error::RolledBack {
                    anchor: format!("{seq}:{digest}"),
                    what,
                });
            }
        }
        Ok(newest)
    }

    /// The newest audit anchor, the chain taken up after an anchor this process checked a
    /// moment ago ([`Vault::advance_audit_anchor`]): only the events after it are read.
    pub fn audit_anchor_from(&self, seq: i64, digest: &str) -> Result<Option<(i64, String)>> {
        let mut h = [0u8; 32];
        match hex::decode(digest) {
            Ok(d) if d.len() == 32 => h.copy_from_slice(&d),
            _ => return audit::anchor(&self.conn, None),
        }
        Ok(audit::anchors_from(&self.conn, (seq, h), -1)?.1)
    }

    /// Checks the whole audit chain and its head before anything is pushed from the vault
    /// (a sync pass): an edited, removed or cut event fails with [`Error::AuditTampered`].
    /// Checked once per process and writer lock; what is appended later is checked as it
    /// comes.
    pub fn require_audit_intact(&self) -> Result<()> {
        self.require_audit_from(1)
    }

    /// Writes an audit event for something done outside the vault on its behalf (deleting
    /// a certificate from ACM, say).
    pub fn record_event(&mut self, action: &str, entry: Option<&str>, detail: &str) -> Result<()> {
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        let tx = self.conn.write("recording an event")?;
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

    /// Checks every row of every sealed table, that what only grows was not undone (every
    /// CA row is the newest one, no revocation is missing: see `ledger`), the header, and the
    /// audit chain. Needs the passphrase. Writes nothing.
    pub fn verify(&self) -> Result<VerifyReport> {
        verify_with(&self.conn, self.keys()?)
    }

    /// For tests only: MACs every row again as it is now (as someone holding the row-MAC key
    /// but not the data key could), to test what lies under the row MACs (a sealed key's
    /// AAD) or rows of an older shape. Not audited; certvault itself never seals rows it has
    /// not checked.
    #[doc(hidden)]
    #[cfg(any(test, feature = "test-util"))]
    pub fn seal_every_row_for_tests(&mut self) -> Result<u64> {
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        let tx = self.conn.write("sealing rows")?;
        let n = crate::integrity::seal_all(&tx, &keys.rows)?;
        tx.commit().map_err(Error::sqlite("sealing rows"))?;
        Ok(n)
    }

    /// Passes `r` on; a refusal because a row failed its integrity check is audited first
    /// (in its own transaction: the refused one was rolled back).
    pub(crate) fn audit_refusal<T>(&mut self, r: Result<T>, doing: &str) -> Result<T> {
        // Rows that no longer check out under the keys this process holds because another
        // one rotated the data key are not tampered with: that is what is said.
        if matches!(r, Err(Error::RowTampered { .. } | Error::Tampered { .. }))
            && let Err(rotated) = self.ensure_data_key_current()
        {
            return Err(rotated);
        }
        match &r {
            Err(Error::RowTampered { table, row }) => {
                let bad = crate::integrity::BadRow {
                    table,
                    row: row.clone(),
                };
                let _ = self.record_integrity_failure(&bad, doing);
            }
            // Not written when the newest events were cut: an event appended now would
            // write a head that hides it (the append refuses).
            Err(Error::AuditTampered { what }) => {
                let _ = self.record_event(
                    "integrity-failure",
                    None,
                    &format!("the audit log does not verify ({what}); refused: {doing}"),
                );
            }
            _ => {}
        }
        r
    }

    /// Records that rows failed their integrity check when something was about to act on
    /// them (the refusal itself is the caller's).
    pub fn record_integrity_failure(
        &mut self,
        bad: &crate::integrity::BadRow,
        refused: &str,
    ) -> Result<()> {
        self.record_event(
            "integrity-failure",
            None,
            &format!("{bad} fails its integrity check; refused: {refused}"),
        )
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

/// Seals every row of a vault made before schema 5 and binds each sealed key to its entry
/// (a key that does not open under the old AAD is left as it is), audited. Only for a vault
/// that never had MACs (see `Vault::upgrade`).
fn seal_before_schema_5(tx: &Connection, keys: &Keys, actor: &str) -> Result<()> {
    let sealed_keys: Vec<(i64, String, Vec<u8>, Vec<u8>)> = {
        let mut stmt = tx
                .prepare(
                    "SELECT id, entry_id, cert_der, key_sealed FROM versions WHERE key_sealed IS NOT NULL",
                )
                .map_err(Error::sqlite("sealing the vault's rows"))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .map_err(Error::sqlite("sealing the vault's rows"))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(Error::sqlite("sealing the vault's rows"))?
    };
    let (mut rebound, mut unopenable) = (0, 0);
    for (row, entry, der, sealed) in sealed_keys {
        let fp = crate::crypto::sha256_hex(&der);
        match keys.dek.open(&crate::crypto::key_aad_v1(row, &fp), &sealed) {
            Some(plain) => {
                let resealed = keys.dek.seal(
                    &crate::crypto::key_aad(row, &entry, &fp),
                    plain.expose_secret(),
                )?;
                tx.execute(
                    "UPDATE versions SET key_sealed = ?2 WHERE id = ?1",
                    rusqlite::params![row, resealed],
                )
                .map_err(Error::sqlite("sealing the vault's rows"))?;
                rebound += 1;
            }
            // Already unusable (tampered): it stays as it is and keeps failing to open.
            None => unopenable += 1,
        }
    }
    let rows = crate::integrity::seal_all(tx, &keys.rows)?;
    audit::append(
        tx,
        &keys.audit,
        actor,
        "integrity-upgrade",
        None,
        &format!(
            "schema 5: {} sealed with MACs; {} bound to their entries{}",
            count(rows, "row", "rows"),
            count(rebound, "private key", "private keys"),
            if unopenable > 0 {
                format!(
                    "; {} that did not open left as they were",
                    count(unopenable, "key", "keys")
                )
            } else {
                String::new()
            }
        ),
    )?;
    Ok(())
}

/// Checks every row of every sealed table, the rows bound to the audit log, the header, and
/// the audit chain, on `conn` (the vault's connection, or a transaction of it).
fn verify_with(conn: &Connection, keys: &Keys) -> Result<VerifyReport> {
    use crate::integrity::{SEALED_META, SEALED_V1};
    let (rows, mut bad_rows) = crate::integrity::check_all(conn, &keys.rows)?;
    let audit = audit::verify(conn, &keys.audit)?;
    let (mut header, mut pending) = (Vec::new(), Vec::new());
    let upgraded_from: Option<u32> =
        meta(conn, crate::store::schema::PENDING_UPGRADE)?.and_then(|p| p.parse().ok());
    if meta(conn, SEALED_META)?.as_deref() != Some(SEALED_V1) {
        let evidence = match upgraded_from {
            Some(f) if f < 5 => crate::integrity::had_macs(conn, &keys.dek)?,
            _ => Some(format!(
                "its schema ({}) has had row MACs since it was made",
                upgraded_from.unwrap_or(SCHEMA_VERSION)
            )),
        };
        match (evidence, upgraded_from) {
            (None, Some(f)) => {
                // Nothing has a MAC yet: there is nothing to check the rows against.
                bad_rows.clear();
                if audit.problem.is_none() {
                    pending.push(format!(
                        "{} of a vault from schema {f} (before row MACs) are not sealed yet: the next command that unlocks the vault to use it (not verify) seals them, audited",
                        count(rows, "row", "rows")
                    ));
                } else {
                    header.push(format!(
                        "the rows of this vault from schema {f} (before row MACs) are not sealed, and they will not be: its audit log does not verify"
                    ));
                }
            }
            (why, _) => header.push(format!(
                "the header's row-integrity marker is gone, but this vault had row MACs: {}; nothing will be sealed again over what the rows hold now",
                why.unwrap_or_default()
            )),
        }
    }
    bad_rows.extend(crate::integrity::ledger::check_all(conn)?);
    if upgraded_from.is_some_and(|f| (6..8).contains(&f))
        && crate::integrity::ledger::binding_allowed(conn)?
    {
        let (waiting, _) = crate::integrity::ledger::unbound(conn, keys)?;
        if !waiting.is_empty() {
            bad_rows.retain(|b| !waiting.contains(b));
            pending.push(format!(
                "{} of CAs and revocations from schema {} are not bound to the audit log yet: the next command that unlocks the vault to use it (not verify) checks and binds them, audited",
                count(waiting.len(), "row", "rows"),
                upgraded_from.unwrap_or(7)
            ));
        }
    }
    Ok(VerifyReport {
        rows,
        bad_rows,
        audit,
        header,
        pending,
    })
}

/// Who acts, as the operating system knows it (not `$USER`, which anyone can set): the
/// real user's name and uid, and the host: `alice (uid 1000) on build-7`.
fn default_actor() -> String {
    let uid = rustix::process::getuid().as_raw();
    let name = user_name(uid);
    let host = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    match name {
        Some(n) => format!("{n} (uid {uid}) on {host}"),
        None => format!("uid {uid} on {host}"),
    }
}

/// The name of `uid` in /etc/passwd, if it has one.
fn user_name(uid: u32) -> Option<String> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let _ = f.next()?;
        (f.next()?.parse::<u32>().ok()? == uid).then(|| name.to_owned())
    })
}

#[cfg(test)]
mod tests;
