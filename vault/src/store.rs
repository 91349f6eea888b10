//! The vault file: schema, migrations, unlock, and every operation on entries.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
};

use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, params};
use time::{Duration, OffsetDateTime};

use crate::{
    audit::{self, AuditEvent, AuditReport},
    crypto::{KdfParams, Key, fill_random, sha256_hex},
    error::{Error, Result},
    export::{self, ExportFormat, Exported},
    import::Bundle,
    model::{ChainCert, EntryDetail, EntrySummary, Source, VersionDetail},
    secret::{Passphrase, SecretBytes},
};

/// The newest schema this build writes; see [`MIGRATIONS`].
pub const SCHEMA_VERSION: u32 = 4;

/// Forward migrations: `MIGRATIONS[n]` takes a vault from version `n` to `n + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    "CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) STRICT;
    CREATE TABLE entries (
        id              TEXT PRIMARY KEY,
        name            TEXT NOT NULL UNIQUE COLLATE NOCASE,
        source          TEXT NOT NULL,
        current_version INTEGER,
        created_at      INTEGER NOT NULL,
        updated_at      INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX entries_current ON entries(current_version);
    CREATE TABLE versions (
        id            INTEGER PRIMARY KEY,
        entry_id      TEXT NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
        version       INTEGER NOT NULL,
        cert_der      BLOB NOT NULL,
        fingerprint   TEXT NOT NULL UNIQUE,
        subject       TEXT NOT NULL,
        common_name   TEXT,
        issuer        TEXT NOT NULL,
        serial        TEXT NOT NULL,
        sans          TEXT NOT NULL,
        not_before    INTEGER NOT NULL,
        not_after     INTEGER NOT NULL,
        key_algorithm TEXT NOT NULL,
        is_ca         INTEGER NOT NULL,
        key_sealed    BLOB,
        created_at    INTEGER NOT NULL,
        UNIQUE (entry_id, version)
    ) STRICT;
    CREATE INDEX versions_not_after ON versions(not_after);
    CREATE TABLE chain_certs (
        version_id  INTEGER NOT NULL REFERENCES versions(id) ON DELETE CASCADE,
        position    INTEGER NOT NULL,
        cert_der    BLOB NOT NULL,
        subject     TEXT NOT NULL,
        issuer      TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        not_after   INTEGER NOT NULL,
        PRIMARY KEY (version_id, position)
    ) STRICT;
    CREATE TABLE tags (
        entry_id TEXT NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
        key      TEXT NOT NULL,
        value    TEXT NOT NULL,
        PRIMARY KEY (entry_id, key)
    ) STRICT;
    CREATE TABLE audit (
        seq        INTEGER PRIMARY KEY,
        at_us      INTEGER NOT NULL,
        actor      TEXT NOT NULL,
        action     TEXT NOT NULL,
        entry_id   TEXT,
        entry_name TEXT,
        detail     TEXT NOT NULL,
        mac        BLOB NOT NULL
    ) STRICT;",
    // 2: certificates seen in ACM and IAM, one row per ARN.
    "CREATE TABLE acm_certificates (
        arn                 TEXT PRIMARY KEY,
        target              TEXT NOT NULL,
        account             TEXT NOT NULL,
        region              TEXT NOT NULL,
        kind                TEXT NOT NULL,
        status              TEXT NOT NULL,
        domain              TEXT NOT NULL,
        sans                TEXT NOT NULL,
        key_algorithm       TEXT,
        in_use              INTEGER,
        in_use_by           TEXT NOT NULL DEFAULT '[]',
        renewal_eligibility TEXT,
        validation_method   TEXT,
        validation_records  TEXT NOT NULL DEFAULT '[]',
        failure_reason      TEXT,
        not_before          INTEGER,
        not_after           INTEGER,
        imported_at         INTEGER,
        issued_at           INTEGER,
        created_at          INTEGER,
        fingerprint         TEXT,
        entry_id            TEXT REFERENCES entries(id) ON DELETE SET NULL,
        first_seen          INTEGER NOT NULL,
        last_seen           INTEGER NOT NULL,
        gone_at             INTEGER
    ) STRICT;
    CREATE INDEX acm_by_location ON acm_certificates(target, region);
    CREATE INDEX acm_by_entry ON acm_certificates(entry_id);",
    // 3: deployments of entries to ACM: what should be where, and what was done.
    "CREATE TABLE deployments (
        id                   INTEGER PRIMARY KEY,
        entry_id             TEXT NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
        target               TEXT NOT NULL,
        region               TEXT NOT NULL,
        account              TEXT,
        arn                  TEXT,
        deployed_fingerprint TEXT,
        imported_at          INTEGER,
        replace_existing     INTEGER NOT NULL,
        auto_redeploy        INTEGER NOT NULL,
        state                TEXT NOT NULL DEFAULT 'pending',
        detail               TEXT,
        acm_fingerprint      TEXT,
        last_synced          INTEGER,
        created_at           INTEGER NOT NULL,
        UNIQUE (entry_id, target, region)
    ) STRICT;
    CREATE INDEX deployments_by_location ON deployments(target, region);",
    // 4: the chain last deployed (so a corrected chain is re-imported), the start of a first
    // import whose answer has not come back (so it is looked for, not repeated), and chains
    // rebuilt by signature (see `normalize_chains`).
    "ALTER TABLE deployments ADD COLUMN deployed_chain TEXT;
    ALTER TABLE deployments ADD COLUMN import_started_at INTEGER;
    CREATE INDEX deployments_by_arn ON deployments(arn);",
];

/// Rebuilds every stored chain by signature (schema 4): earlier versions ordered chains by
/// subject name and kept certificates that are not part of the chain after it.
fn normalize_chains(tx: &Transaction<'_>) -> Result<()> {
    use crate::{chain::order_chain, import::Cert, model::CertInfo};
    let versions: Vec<(i64, Vec<u8>)> = {
        let mut stmt = tx
            .prepare(
                "SELECT id, cert_der FROM versions WHERE id IN (SELECT DISTINCT version_id FROM chain_certs)",
            )
            .map_err(Error::sqlite("rebuilding chains"))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(Error::sqlite("rebuilding chains"))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(Error::sqlite("rebuilding chains"))?
    };
    let parse = |der: Vec<u8>| CertInfo::from_der(&der).ok().map(|info| Cert { der, info });
    for (id, der) in versions {
        let stored: Vec<Vec<u8>> = {
            let mut stmt = tx
                .prepare("SELECT cert_der FROM chain_certs WHERE version_id = ?1 ORDER BY position")
                .map_err(Error::sqlite("rebuilding chains"))?;
            let rows = stmt
                .query_map([id], |r| r.get(0))
                .map_err(Error::sqlite("rebuilding chains"))?;
            rows.collect::<rusqlite::Result<_>>()
                .map_err(Error::sqlite("rebuilding chains"))?
        };
        let Some(leaf) = parse(der) else { continue };
        let Some(certs) = stored.into_iter().map(parse).collect::<Option<Vec<Cert>>>() else {
            continue;
        };
        let before: Vec<String> = certs.iter().map(|c| c.info.fingerprint.clone()).collect();
        let (chain, _) = order_chain(&leaf, certs);
        let after: Vec<String> = chain.iter().map(|c| c.info.fingerprint.clone()).collect();
        if before != after {
            write_chain(tx, id, &chain)?;
        }
    }
    Ok(())
}

/// Replaces a version's chain.
pub(crate) fn write_chain(
    tx: &Transaction<'_>,
    version_row: i64,
    chain: &[crate::import::Cert],
) -> Result<()> {
    tx.execute(
        "DELETE FROM chain_certs WHERE version_id = ?1",
        [version_row],
    )
    .map_err(Error::sqlite("writing the chain"))?;
    for (pos, c) in chain.iter().enumerate() {
        tx.execute(
            "INSERT INTO chain_certs (version_id, position, cert_der, subject, issuer, fingerprint, not_after)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                version_row,
                pos as i64,
                c.der,
                c.info.subject,
                c.info.issuer,
                c.info.fingerprint,
                c.info.not_after.unix_timestamp()
            ],
        )
        .map_err(Error::sqlite("writing the chain"))?;
    }
    Ok(())
}

const FORMAT: &str = "certvault-vault";
const MIN_PASSPHRASE_CHARS: usize = 8;

/// How long to wait for another certvault process holding the vault.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

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

/// Options for [`Vault::import`].
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// The entry name (only meaningful for a single bundle); default: the certificate's CN.
    pub name: Option<String>,
    /// Labels to set on every entry imported.
    pub tags: Vec<(String, String)>,
}

/// What [`Vault::import`] did with one bundle.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum ImportOutcome {
    /// A new entry was created.
    Created {
        /// Entry id.
        id: String,
        /// Entry name.
        name: String,
    },
    /// A new version was added to an existing entry.
    NewVersion {
        /// Entry id.
        id: String,
        /// Entry name.
        name: String,
        /// The new version's number.
        version: u32,
    },
    /// The certificate was already there without its key; the key was added.
    KeyAdded {
        /// Entry id.
        id: String,
        /// Entry name.
        name: String,
        /// The version the key was added to.
        version: u32,
    },
    /// The certificate was already in the vault with another chain: the chain was replaced
    /// (and its deployments will be re-imported).
    ChainUpdated {
        /// Entry id.
        id: String,
        /// Entry name.
        name: String,
        /// The version whose chain changed.
        version: u32,
    },
    /// The certificate was already in the vault: nothing changed.
    AlreadyPresent {
        /// Entry id.
        id: String,
        /// Entry name.
        name: String,
        /// The version that holds it.
        version: u32,
    },
}

/// Which entries [`Vault::list`] returns.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only certificates whose current version expires within this long (expired ones included).
    pub expiring_within: Option<Duration>,
    /// Only entries from this source.
    pub source: Option<Source>,
    /// Only certificates with a name (CN or SAN) matching this pattern; `*` matches anything.
    pub domain: Option<String>,
    /// Only entries carrying all these tags.
    pub tags: Vec<(String, String)>,
}

/// Options for [`Vault::export`].
#[derive(Debug, Clone, Copy)]
pub struct ExportOptions<'a> {
    /// Output format.
    pub format: ExportFormat,
    /// Include the private key.
    pub with_key: bool,
    /// Write the key unencrypted (PEM only, explicit opt-in).
    pub unencrypted_key: bool,
    /// Passphrase for the exported key or PKCS#12 file.
    pub passphrase: Option<&'a Passphrase>,
    /// Version to export; default the current one.
    pub version: Option<u32>,
}

pub(crate) fn now_unix() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

fn ts(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn key_aad(row: i64, fingerprint: &str) -> Vec<u8> {
    format!("certvault/v1\0versions\0{row}\0key_sealed\0{fingerprint}").into_bytes()
}

fn dek_aad(vault_id: &str, kdf: &str, salt_hex: &str) -> Vec<u8> {
    format!("certvault/v1\0dek\0{vault_id}\0{kdf}\0{salt_hex}").into_bytes()
}

fn random_hex(bytes: usize) -> Result<String> {
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

/// Checks an entry name: printable, at most 200 characters.
pub fn validate_name(name: &str) -> Result<()> {
    let bad = |reason| Error::InvalidLabel {
        what: "name",
        value: name.chars().take(80).collect(),
        reason,
    };
    if name.trim().is_empty() {
        return Err(bad("it is empty"));
    }
    if name.chars().count() > 200 {
        return Err(bad("it is longer than 200 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(bad("it contains control characters"));
    }
    if name != name.trim() {
        return Err(bad("it starts or ends with white space"));
    }
    Ok(())
}

/// Parses a `key=value` tag.
pub fn parse_tag(s: &str) -> Result<(String, String)> {
    let bad = |reason| Error::InvalidLabel {
        what: "tag",
        value: s.chars().take(80).collect(),
        reason,
    };
    let (k, v) = s.split_once('=').ok_or_else(|| bad("expected key=value"))?;
    if k.is_empty()
        || k.len() > 128
        || !k
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-:/".contains(c))
    {
        return Err(bad("the key must be 1-128 of A-Z a-z 0-9 . _ - : /"));
    }
    if v.chars().count() > 256 || v.chars().any(char::is_control) {
        return Err(bad("the value must be at most 256 printable characters"));
    }
    Ok((k.to_owned(), v.to_owned()))
}

/// Case-insensitive glob match where `*` matches any run of characters.
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi] != '*' && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

fn open_connection(path: &Path, flags: OpenFlags) -> Result<Connection> {
    // Every failure here means the file cannot be used as a vault (not a database, damaged).
    let not_a_vault = |e: rusqlite::Error| Error::NotAVault {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let conn = Connection::open_with_flags(path, flags).map_err(not_a_vault)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(not_a_vault)?;
    conn.pragma_update(None, "foreign_keys", true)
        .map_err(not_a_vault)?;
    // Listing 100,000 entries touches rows spread over a large file: read it through a
    // memory map (pages are read in place, so the page cache can stay small: 8 MiB)
    // instead of one pread per page. (Per connection;
    // nothing is written.)
    conn.pragma_update(None, "mmap_size", 1i64 << 30)
        .map_err(not_a_vault)?;
    conn.pragma_update(None, "cache_size", -8_192)
        .map_err(not_a_vault)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection, from: u32) -> Result<()> {
    let tx = conn
        .transaction()
        .map_err(Error::sqlite("starting a migration"))?;
    for (n, sql) in MIGRATIONS.iter().enumerate().skip(from as usize) {
        tx.execute_batch(sql)
            .map_err(Error::sqlite("migrating the schema"))?;
        if n + 1 == 4 {
            normalize_chains(&tx)?;
        }
        tx.pragma_update(None, "user_version", (n + 1) as u32)
            .map_err(Error::sqlite("migrating the schema"))?;
    }
    tx.commit().map_err(Error::sqlite("migrating the schema"))
}

fn meta(conn: &Connection, key: &str) -> Result<Option<String>> {
    conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()
        .map_err(Error::sqlite("reading the vault header"))
}

fn set_meta(conn: &Connection, key: &str, value: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )
    .map_err(Error::sqlite("writing the vault header"))?;
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
    pub fn unlock(&mut self, passphrase: &Passphrase) -> Result<()> {
        let damaged = |what: &str| Error::NotAVault {
            path: self.path.clone(),
            reason: format!("its key header is damaged ({what})"),
        };
        let kdf_s = meta(&self.conn, "kdf")?.ok_or_else(|| damaged("no kdf"))?;
        let kdf = KdfParams::decode(&kdf_s).ok_or_else(|| damaged("unknown kdf parameters"))?;
        if !kdf.is_at_least_minimum() {
            return Err(damaged("kdf parameters below the minimum"));
        }
        let salt_hex = meta(&self.conn, "kdf_salt")?.ok_or_else(|| damaged("no salt"))?;
        let salt = hex::decode(&salt_hex).map_err(|_| damaged("bad salt"))?;
        let wrapped = meta(&self.conn, "dek_wrapped")?
            .and_then(|w| hex::decode(w).ok())
            .ok_or_else(|| damaged("no wrapped data key"))?;
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

    fn keys(&self) -> Result<&Keys> {
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

    /// Imports bundles in one transaction: all or nothing.
    pub fn import(
        &mut self,
        bundles: Vec<Bundle>,
        opts: &ImportOptions,
    ) -> Result<Vec<ImportOutcome>> {
        if let Some(n) = &opts.name {
            validate_name(n)?;
        }
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        let actor = self.actor.clone();
        let tx = self
            .conn
            .transaction()
            .map_err(Error::sqlite("starting the import"))?;
        let mut outcomes = Vec::with_capacity(bundles.len());
        for bundle in bundles {
            let name = opts.name.clone().unwrap_or_else(|| bundle.default_name());
            validate_name(&name)?;
            let origin = bundle.origin().to_owned();
            let outcome = import_bundle(
                &tx,
                keys,
                &actor,
                bundle,
                Arrival {
                    name: &name,
                    source: Source::Imported,
                    origin: &origin,
                    update_chain: true,
                },
            )?;
            let id = match &outcome {
                ImportOutcome::Created { id, .. }
                | ImportOutcome::NewVersion { id, .. }
                | ImportOutcome::KeyAdded { id, .. }
                | ImportOutcome::ChainUpdated { id, .. }
                | ImportOutcome::AlreadyPresent { id, .. } => id.clone(),
            };
            if !opts.tags.is_empty() {
                set_tags(&tx, keys, &actor, &id, &opts.tags)?;
            }
            outcomes.push(outcome);
        }
        tx.commit()
            .map_err(Error::sqlite("committing the import"))?;
        Ok(outcomes)
    }

    /// Finds an entry by id, name (case-insensitive) or unique id prefix (4+ characters).
    pub fn resolve(&self, query: &str) -> Result<(String, String)> {
        let by = |sql: &str| -> Result<Vec<(String, String)>> {
            let mut stmt = self
                .conn
                .prepare_cached(sql)
                .map_err(Error::sqlite("finding the entry"))?;
            let rows = stmt
                .query_map([query], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(Error::sqlite("finding the entry"))?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
                .map_err(Error::sqlite("finding the entry"))
        };
        let exact = by("SELECT id, name FROM entries WHERE id = ?1 OR name = ?1")?;
        if let Some(found) = exact.into_iter().next() {
            return Ok(found);
        }
        if query.len() >= 4 && query.chars().all(|c| c.is_ascii_hexdigit()) {
            let prefixed = by(
                "SELECT id, name FROM entries WHERE substr(id, 1, length(?1)) = lower(?1) LIMIT 6",
            )?;
            match prefixed.len() {
                0 => {}
                1 => return Ok(prefixed.into_iter().next().expect("one")),
                _ => {
                    return Err(Error::Ambiguous {
                        query: query.to_owned(),
                        candidates: prefixed
                            .iter()
                            .map(|(i, _)| i.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                    });
                }
            }
        }
        Err(Error::NotFound {
            query: query.to_owned(),
        })
    }

    /// Lists entries (their current versions) matching the filter.
    pub fn list(&self, filter: &ListFilter) -> Result<Vec<EntrySummary>> {
        let mut sql = String::from(SUMMARY_SELECT);
        sql.push_str(" WHERE 1 = 1");
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(d) = filter.expiring_within {
            args.push((now_unix() + d.whole_seconds()).into());
            sql.push_str(&format!(" AND v.not_after <= ?{}", args.len()));
        }
        if let Some(s) = filter.source {
            args.push(s.as_str().to_owned().into());
            sql.push_str(&format!(" AND e.source = ?{}", args.len()));
        }
        for (k, v) in &filter.tags {
            args.push(k.clone().into());
            args.push(v.clone().into());
            sql.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM tags t WHERE t.entry_id = e.id AND t.key = ?{} AND t.value = ?{})",
                args.len() - 1,
                args.len()
            ));
        }
        sql.push_str(if filter.expiring_within.is_some() {
            " ORDER BY v.not_after, e.name"
        } else {
            " ORDER BY e.name"
        });
        let mut stmt = self
            .conn
            .prepare(&sql)
            .map_err(Error::sqlite("listing entries"))?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args), summary_from_row)
            .map_err(Error::sqlite("listing entries"))?;
        let mut out = Vec::new();
        for row in rows {
            let s = row.map_err(Error::sqlite("listing entries"))?;
            if let Some(pattern) = &filter.domain {
                let names = s.common_name.iter().chain(s.sans.iter());
                if !names.into_iter().any(|n| glob_match(pattern, n)) {
                    continue;
                }
            }
            out.push(s);
        }
        Ok(out)
    }

    /// The entry with every version and its chain.
    pub fn show(&self, query: &str) -> Result<EntryDetail> {
        let (id, _) = self.resolve(query)?;
        let summary = self
            .conn
            .query_row(
                &format!("{SUMMARY_SELECT} WHERE e.id = ?1"),
                [&id],
                summary_from_row,
            )
            .map_err(Error::sqlite("reading the entry"))?;
        let current: Option<i64> = self
            .conn
            .query_row(
                "SELECT current_version FROM entries WHERE id = ?1",
                [&id],
                |r| r.get(0),
            )
            .map_err(Error::sqlite("reading the entry"))?;
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, version, subject, sans, issuer, serial, not_before, not_after, fingerprint,
                        key_algorithm, key_sealed IS NOT NULL, created_at
                 FROM versions WHERE entry_id = ?1 ORDER BY version DESC",
            )
            .map_err(Error::sqlite("reading versions"))?;
        let rows = stmt
            .query_map([&id], |r| {
                let row_id: i64 = r.get(0)?;
                let sans: String = r.get(3)?;
                Ok((
                    row_id,
                    VersionDetail {
                        version: r.get(1)?,
                        current: Some(row_id) == current,
                        subject: r.get(2)?,
                        sans: serde_json::from_str(&sans).unwrap_or_default(),
                        issuer: r.get(4)?,
                        serial: r.get(5)?,
                        not_before: ts(r.get(6)?),
                        not_after: ts(r.get(7)?),
                        fingerprint_sha256: r.get(8)?,
                        key_algorithm: r.get(9)?,
                        has_private_key: r.get(10)?,
                        chain: Vec::new(),
                        added_at: ts(r.get(11)?),
                    },
                ))
            })
            .map_err(Error::sqlite("reading versions"))?;
        let mut versions = Vec::new();
        for row in rows {
            let (row_id, mut v) = row.map_err(Error::sqlite("reading versions"))?;
            v.chain = self.chain_of(row_id)?;
            versions.push(v);
        }
        let acm = self.acm_records_of(&id)?;
        Ok(EntryDetail {
            summary,
            versions,
            acm,
        })
    }

    fn chain_of(&self, version_row: i64) -> Result<Vec<ChainCert>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT subject, issuer, fingerprint, not_after FROM chain_certs WHERE version_id = ?1 ORDER BY position",
            )
            .map_err(Error::sqlite("reading the chain"))?;
        let rows = stmt
            .query_map([version_row], |r| {
                Ok(ChainCert {
                    subject: r.get(0)?,
                    issuer: r.get(1)?,
                    fingerprint_sha256: r.get(2)?,
                    not_after: ts(r.get(3)?),
                })
            })
            .map_err(Error::sqlite("reading the chain"))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(Error::sqlite("reading the chain"))
    }

    fn version_row(&self, id: &str, name: &str, version: Option<u32>) -> Result<(i64, Vec<u8>)> {
        let found = match version {
            None => self
                .conn
                .query_row(
                    "SELECT v.id, v.cert_der FROM entries e JOIN versions v ON v.id = e.current_version WHERE e.id = ?1",
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional(),
            Some(n) => self
                .conn
                .query_row(
                    "SELECT id, cert_der FROM versions WHERE entry_id = ?1 AND version = ?2",
                    params![id, n],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional(),
        }
        .map_err(Error::sqlite("reading the version"))?;
        found.ok_or_else(|| Error::NotFound {
            query: match version {
                Some(n) => format!("{name} version {n}"),
                None => name.to_owned(),
            },
        })
    }

    pub(crate) fn chain_ders_of(&self, version_row: i64) -> Result<Vec<Vec<u8>>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT cert_der FROM chain_certs WHERE version_id = ?1 ORDER BY position",
            )
            .map_err(Error::sqlite("reading the chain"))?;
        let rows = stmt
            .query_map([version_row], |r| r.get(0))
            .map_err(Error::sqlite("reading the chain"))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(Error::sqlite("reading the chain"))
    }

    /// Opens the sealed private key of a version row. The AAD is rebuilt from the row id and
    /// the fingerprint of the certificate stored in that row now, so a moved key or a
    /// swapped certificate fails here.
    pub(crate) fn open_key_of(
        &self,
        version_row: i64,
        cert_der: &[u8],
    ) -> Result<Option<SecretBytes>> {
        let keys = self.keys()?;
        let sealed: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT key_sealed FROM versions WHERE id = ?1",
                [version_row],
                |r| r.get(0),
            )
            .map_err(Error::sqlite("reading the sealed key"))?;
        let Some(sealed) = sealed else {
            return Ok(None);
        };
        let aad = key_aad(version_row, &sha256_hex(cert_der));
        keys.dek
            .open(&aad, &sealed)
            .map(Some)
            .ok_or(Error::Tampered {
                table: "versions",
                row: version_row,
                column: "key_sealed",
            })
    }

    /// Exports an entry's version. Exporting a key needs the vault unlocked and is audited.
    pub fn export(&mut self, query: &str, opts: ExportOptions<'_>) -> Result<Exported> {
        let (id, name) = self.resolve(query)?;
        let fail = |reason: &str| Error::Export {
            name: name.clone(),
            reason: reason.to_owned(),
        };
        if let Some(p) = opts.passphrase {
            export::check_passphrase(p).map_err(fail)?;
        }
        match opts.format {
            ExportFormat::Der if opts.with_key => {
                return Err(fail(
                    "DER holds the certificate alone; use --format pem or p12 to export the key",
                ));
            }
            ExportFormat::Pkcs12 if opts.unencrypted_key => {
                return Err(fail(
                    "a PKCS#12 file is always encrypted; drop --unencrypted-key",
                ));
            }
            ExportFormat::Pkcs12 if opts.passphrase.is_none() => {
                return Err(fail("a PKCS#12 file needs an export passphrase"));
            }
            ExportFormat::Pem
                if opts.with_key && !opts.unencrypted_key && opts.passphrase.is_none() =>
            {
                return Err(fail(
                    "an exported key needs an export passphrase (or --unencrypted-key)",
                ));
            }
            _ if opts.unencrypted_key && !opts.with_key => {
                return Err(fail("--unencrypted-key only makes sense with --with-key"));
            }
            _ => {}
        }
        let (row, der) = self.version_row(&id, &name, opts.version)?;
        let chain = self.chain_ders_of(row)?;
        let key = if opts.with_key {
            let k = self
                .open_key_of(row, &der)?
                .ok_or_else(|| fail("the vault holds no private key for this certificate"))?;
            Some(k)
        } else {
            None
        };
        let key_unencrypted = opts.with_key && opts.unencrypted_key;
        let bytes = match opts.format {
            ExportFormat::Der => SecretBytes::new(der.clone()),
            ExportFormat::Pem => {
                let mut text = zeroize::Zeroizing::new(export::pem_cert(&der));
                for c in &chain {
                    text.push_str(&export::pem_cert(c));
                }
                if let Some(k) = &key {
                    let key_pem = if opts.unencrypted_key {
                        export::pkcs8_pem(k)
                    } else {
                        let pw = opts.passphrase.expect("checked above");
                        export::encrypted_pkcs8_pem(k, pw, &name)?
                    };
                    text.push_str(
                        std::str::from_utf8(key_pem.expose_secret()).expect("PEM is ASCII"),
                    );
                }
                SecretBytes::new(text.as_bytes().to_vec())
            }
            ExportFormat::Pkcs12 => {
                let pw = opts.passphrase.expect("checked above");
                let fp = sha256_hex(&der);
                SecretBytes::new(export::pkcs12(
                    &name,
                    &der,
                    &chain,
                    key.as_ref(),
                    pw,
                    &hex::decode(&fp[..40]).unwrap_or_default(),
                )?)
            }
        };
        if key.is_some() {
            let keys = self.keys.as_ref().ok_or(Error::Locked)?;
            let detail = format!(
                "private key exported as {} ({})",
                match opts.format {
                    ExportFormat::Pem => "PEM",
                    ExportFormat::Der => "DER",
                    ExportFormat::Pkcs12 => "PKCS#12",
                },
                if key_unencrypted {
                    "UNENCRYPTED"
                } else {
                    "encrypted"
                }
            );
            let tx = self
                .conn
                .transaction()
                .map_err(Error::sqlite("recording the export"))?;
            audit::append(
                &tx,
                &keys.audit,
                &self.actor,
                "export-key",
                Some((&id, &name)),
                &detail,
            )?;
            tx.commit().map_err(Error::sqlite("recording the export"))?;
        }
        Ok(Exported {
            bytes,
            contains_key: key.is_some(),
            key_unencrypted,
        })
    }

    /// Removes an entry, its versions and keys from the vault (never from AWS).
    pub fn remove(&mut self, query: &str) -> Result<(String, String)> {
        let (id, name) = self.resolve(query)?;
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        let tx = self
            .conn
            .transaction()
            .map_err(Error::sqlite("removing the entry"))?;
        let versions: i64 = tx
            .query_row(
                "SELECT count(*) FROM versions WHERE entry_id = ?1",
                [&id],
                |r| r.get(0),
            )
            .map_err(Error::sqlite("removing the entry"))?;
        tx.execute("DELETE FROM entries WHERE id = ?1", [&id])
            .map_err(Error::sqlite("removing the entry"))?;
        audit::append(
            &tx,
            &keys.audit,
            &self.actor,
            "remove",
            Some((&id, &name)),
            &format!("removed with {versions} version(s) and their keys"),
        )?;
        tx.commit().map_err(Error::sqlite("removing the entry"))?;
        Ok((id, name))
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

const SUMMARY_SELECT: &str = "SELECT e.id, e.name, e.source, v.subject, v.common_name, v.sans, v.issuer, v.serial,
        v.not_before, v.not_after, v.fingerprint, v.key_algorithm, v.key_sealed IS NOT NULL, v.version,
        (SELECT count(*) FROM versions c WHERE c.entry_id = e.id),
        (SELECT json_group_object(t.key, t.value) FROM tags t WHERE t.entry_id = e.id),
        (SELECT json_array(a.arn, a.region, a.account) FROM acm_certificates a
            WHERE a.entry_id = e.id AND a.gone_at IS NULL ORDER BY a.first_seen, a.arn LIMIT 1)
    FROM entries e JOIN versions v ON v.id = e.current_version";

fn summary_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<EntrySummary> {
    let source: String = r.get(2)?;
    let sans: String = r.get(5)?;
    let tags: Option<String> = r.get(15)?;
    let acm: Option<String> = r.get(16)?;
    let acm: Option<(String, String, String)> = acm.and_then(|a| serde_json::from_str(&a).ok());
    Ok(EntrySummary {
        id: r.get(0)?,
        name: r.get(1)?,
        source: Source::parse(&source).unwrap_or(Source::Imported),
        subject: r.get(3)?,
        common_name: r.get(4)?,
        sans: serde_json::from_str(&sans).unwrap_or_default(),
        issuer: r.get(6)?,
        serial: r.get(7)?,
        not_before: ts(r.get(8)?),
        not_after: ts(r.get(9)?),
        fingerprint_sha256: r.get(10)?,
        key_algorithm: r.get(11)?,
        has_private_key: r.get(12)?,
        version: r.get(13)?,
        version_count: r.get(14)?,
        tags: tags
            .and_then(|t| serde_json::from_str::<BTreeMap<String, String>>(&t).ok())
            .unwrap_or_default(),
        acm_arn: acm.as_ref().map(|a| a.0.clone()),
        region: acm.as_ref().map(|a| a.1.clone()),
        account: acm.map(|a| a.2),
    })
}

/// Adds one certificate (and key) under `name`: recognised by fingerprint, else a new
/// version of the entry of that name, else a new entry with `source`. Audited.
/// Where a bundle being imported comes from, and what it may change.
pub(crate) struct Arrival<'a> {
    /// The entry name it goes under (unless its certificate is known).
    pub(crate) name: &'a str,
    /// The source of a new entry.
    pub(crate) source: Source,
    /// For the audit log: the file, or the ARN and region.
    pub(crate) origin: &'a str,
    /// Whether a different chain for a known certificate replaces the stored one (explicit
    /// imports only: what ACM serves never rewrites the vault).
    pub(crate) update_chain: bool,
}

pub(crate) fn import_bundle(
    tx: &Transaction<'_>,
    keys: &Keys,
    actor: &str,
    bundle: Bundle,
    arrival: Arrival<'_>,
) -> Result<ImportOutcome> {
    let Arrival {
        name,
        source,
        origin,
        update_chain,
    } = arrival;
    let sq = Error::sqlite("importing");
    let fp = bundle.leaf.info.fingerprint.clone();
    let existing: Option<(i64, String, String, u32, bool)> = tx
        .query_row(
            "SELECT v.id, e.id, e.name, v.version, v.key_sealed IS NOT NULL
             FROM versions v JOIN entries e ON e.id = v.entry_id WHERE v.fingerprint = ?1",
            [&fp],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .optional()
        .map_err(Error::sqlite("importing"))?;
    if let Some((row, id, ename, version, has_key)) = existing {
        // A corrected chain for a certificate the vault holds (explicit imports only: what
        // ACM serves never rewrites the vault's chain).
        let mut chain_updated = false;
        if update_chain && !bundle.chain.is_empty() {
            let stored: Vec<String> = {
                let mut stmt = tx
                    .prepare_cached(
                        "SELECT fingerprint FROM chain_certs WHERE version_id = ?1 ORDER BY position",
                    )
                    .map_err(Error::sqlite("importing"))?;
                let rows = stmt
                    .query_map([row], |r| r.get(0))
                    .map_err(Error::sqlite("importing"))?;
                rows.collect::<rusqlite::Result<_>>()
                    .map_err(Error::sqlite("importing"))?
            };
            let new: Vec<String> = bundle
                .chain
                .iter()
                .map(|c| c.info.fingerprint.clone())
                .collect();
            if stored != new {
                write_chain(tx, row, &bundle.chain)?;
                let short = |v: &[String]| {
                    if v.is_empty() {
                        "none".to_owned()
                    } else {
                        v.iter().map(|f| &f[..16]).collect::<Vec<_>>().join(" > ")
                    }
                };
                audit::append(
                    tx,
                    &keys.audit,
                    actor,
                    "chain-updated",
                    Some((&id, &ename)),
                    &format!(
                        "chain of version {version} from {origin}: was {}, now {}",
                        short(&stored),
                        short(&new)
                    ),
                )?;
                chain_updated = true;
            }
        }
        if let (Some(key), false) = (&bundle.key, has_key) {
            store_key(tx, keys, row, &fp, key.pkcs8.expose_secret())?;
            audit::append(
                tx,
                &keys.audit,
                actor,
                "add-key",
                Some((&id, &ename)),
                &format!("private key added to version {version} ({fp})"),
            )?;
            return Ok(ImportOutcome::KeyAdded {
                id,
                name: ename,
                version,
            });
        }
        if chain_updated {
            return Ok(ImportOutcome::ChainUpdated {
                id,
                name: ename,
                version,
            });
        }
        return Ok(ImportOutcome::AlreadyPresent {
            id,
            name: ename,
            version,
        });
    }

    let now = now_unix();
    let entry: Option<(String, String)> = tx
        .query_row(
            "SELECT id, name FROM entries WHERE name = ?1",
            [name],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(Error::sqlite("importing"))?;
    let (id, ename, version, created) = match entry {
        Some((id, ename)) => {
            let max: u32 = tx
                .query_row(
                    "SELECT max(version) FROM versions WHERE entry_id = ?1",
                    [&id],
                    |r| r.get(0),
                )
                .map_err(Error::sqlite("importing"))?;
            (id, ename, max + 1, false)
        }
        None => {
            let id = random_hex(8)?;
            tx.execute(
                "INSERT INTO entries (id, name, source, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)",
                params![id, name, source.as_str(), now],
            )
            .map_err(Error::sqlite("importing"))?;
            (id, name.to_owned(), 1, true)
        }
    };
    let info = &bundle.leaf.info;
    tx.execute(
        "INSERT INTO versions (entry_id, version, cert_der, fingerprint, subject, common_name, issuer, serial, sans,
                               not_before, not_after, key_algorithm, is_ca, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        params![
            id,
            version,
            bundle.leaf.der,
            fp,
            info.subject,
            info.common_name,
            info.issuer,
            info.serial,
            serde_json::to_string(&info.sans).expect("strings serialise"),
            info.not_before.unix_timestamp(),
            info.not_after.unix_timestamp(),
            info.key_algorithm.name(),
            info.is_ca,
            now
        ],
    )
    .map_err(Error::sqlite("importing"))?;
    let row = tx.last_insert_rowid();
    if let Some(key) = &bundle.key {
        store_key(tx, keys, row, &fp, key.pkcs8.expose_secret())?;
    }
    write_chain(tx, row, &bundle.chain)?;
    // The current version is the newest certificate: latest expiry, then latest added.
    tx.execute(
        "UPDATE entries SET updated_at = ?2, current_version =
            (SELECT id FROM versions WHERE entry_id = ?1 ORDER BY not_after DESC, version DESC LIMIT 1)
         WHERE id = ?1",
        params![id, now],
    )
    .map_err(sq)?;
    let detail = format!(
        "{} version {version} from {}: {} (serial {}, expires {}){}",
        if created { "imported" } else { "added" },
        origin,
        info.subject,
        info.serial,
        info.not_after.date(),
        if bundle.key.is_some() {
            ", with private key"
        } else {
            ""
        }
    );
    audit::append(
        tx,
        &keys.audit,
        actor,
        if created { "import" } else { "new-version" },
        Some((&id, &ename)),
        &detail,
    )?;
    Ok(if created {
        ImportOutcome::Created { id, name: ename }
    } else {
        ImportOutcome::NewVersion {
            id,
            name: ename,
            version,
        }
    })
}

fn store_key(
    tx: &Transaction<'_>,
    keys: &Keys,
    row: i64,
    fingerprint: &str,
    pkcs8: &[u8],
) -> Result<()> {
    let sealed = keys.dek.seal(&key_aad(row, fingerprint), pkcs8)?;
    tx.execute(
        "UPDATE versions SET key_sealed = ?2 WHERE id = ?1",
        params![row, sealed],
    )
    .map_err(Error::sqlite("storing the sealed key"))?;
    Ok(())
}

fn set_tags(
    tx: &Transaction<'_>,
    keys: &Keys,
    actor: &str,
    id: &str,
    tags: &[(String, String)],
) -> Result<()> {
    let mut changed = Vec::new();
    for (k, v) in tags {
        let old: Option<String> = tx
            .query_row(
                "SELECT value FROM tags WHERE entry_id = ?1 AND key = ?2",
                [id, k],
                |r| r.get(0),
            )
            .optional()
            .map_err(Error::sqlite("tagging"))?;
        if old.as_deref() != Some(v) {
            tx.execute(
                "INSERT INTO tags (entry_id, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT(entry_id, key) DO UPDATE SET value = excluded.value",
                [id, k, v],
            )
            .map_err(Error::sqlite("tagging"))?;
            changed.push(format!("{k}={v}"));
        }
    }
    if !changed.is_empty() {
        let name: String = tx
            .query_row("SELECT name FROM entries WHERE id = ?1", [id], |r| r.get(0))
            .map_err(Error::sqlite("tagging"))?;
        audit::append(
            tx,
            &keys.audit,
            actor,
            "tag",
            Some((id, &name)),
            &changed.join(", "),
        )?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
