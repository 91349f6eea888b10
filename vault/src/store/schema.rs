//! The vault file's schema: numbered forward migrations tracked in `PRAGMA user_version`,
//! the connection settings, and the header (`meta`) table.

use std::path::Path;

use crate::sql::Cached as _;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, params};

use crate::error::{Error, Result};

/// The newest schema this build writes; see [`MIGRATIONS`].
pub const SCHEMA_VERSION: u32 = 8;

/// Forward migrations: `MIGRATIONS[n]` takes a vault from version `n` to `n + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[
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
    // 5: a MAC on every row that drives a decision (see `integrity`); sealed at the first
    // unlock after the upgrade.
    "ALTER TABLE entries ADD COLUMN mac BLOB;
    ALTER TABLE versions ADD COLUMN mac BLOB;
    ALTER TABLE tags ADD COLUMN mac BLOB;
    ALTER TABLE deployments ADD COLUMN mac BLOB;
    ALTER TABLE acm_certificates ADD COLUMN mac BLOB;",
    // 6: the vault's own private CA (see `ca`): CAs (their certificate and key are an
    // entry's), what they issued, and revocations (kept when an entry is removed: the CRL
    // still lists them). Every row MACed.
    "CREATE TABLE cas (
        id            TEXT PRIMARY KEY REFERENCES entries(id),
        name          TEXT NOT NULL UNIQUE COLLATE NOCASE,
        parent_id     TEXT REFERENCES cas(id),
        key_type      TEXT NOT NULL,
        path_len      INTEGER,
        permitted_dns TEXT NOT NULL,
        state         TEXT NOT NULL,
        deletion_at   INTEGER,
        crl_number    INTEGER NOT NULL,
        revoked_count INTEGER NOT NULL DEFAULT 0,
        created_at    INTEGER NOT NULL,
        mac           BLOB
    ) STRICT;
    CREATE TABLE issued (
        entry_id          TEXT PRIMARY KEY REFERENCES entries(id) ON DELETE CASCADE,
        ca_id             TEXT NOT NULL REFERENCES cas(id),
        key_type          TEXT,
        validity_s        INTEGER NOT NULL,
        auto_renew_before INTEGER,
        mac               BLOB
    ) STRICT;
    CREATE INDEX issued_by_ca ON issued(ca_id);
    CREATE TABLE revocations (
        id         INTEGER PRIMARY KEY,
        ca_id      TEXT NOT NULL REFERENCES cas(id),
        serial     TEXT NOT NULL,
        entry_id   TEXT,
        version_id INTEGER,
        revoked_at INTEGER NOT NULL,
        reason     TEXT NOT NULL,
        not_after  INTEGER NOT NULL,
        mac        BLOB,
        UNIQUE (ca_id, serial)
    ) STRICT;
    CREATE INDEX revocations_by_expiry ON revocations(ca_id, not_after);
    CREATE INDEX revocations_by_entry ON revocations(entry_id);
    -- The agent counts refused uses of a CA pending deletion at every pass.
    CREATE INDEX IF NOT EXISTS audit_by_action ON audit(action);",
    // 7: certificates from AWS Private CA, by version: `pca` (issued by `pca issue` for a
    // key made in the vault): which CA, which certificate ARN, through which target and
    // account; written once. Revocations by AWS Private CA are rows of their own, appended
    // and never changed (a revocation cannot be undone by putting back an older row), bound
    // to the entry, the version and its serial. MACed.
    "CREATE TABLE aws_private (
        version_id      INTEGER PRIMARY KEY REFERENCES versions(id) ON DELETE CASCADE,
        entry_id        TEXT NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
        via             TEXT NOT NULL,
        ca_arn          TEXT NOT NULL,
        certificate_arn TEXT NOT NULL,
        target          TEXT NOT NULL,
        account         TEXT NOT NULL,
        region          TEXT NOT NULL,
        key_type        TEXT,
        validity_s      INTEGER,
        mac             BLOB
    ) STRICT;
    CREATE INDEX aws_private_by_entry ON aws_private(entry_id);
    CREATE TABLE aws_revocations (
        id              INTEGER PRIMARY KEY,
        version_id      INTEGER NOT NULL,
        entry_id        TEXT NOT NULL,
        serial          TEXT NOT NULL,
        via             TEXT NOT NULL,
        ca_arn          TEXT NOT NULL,
        certificate_arn TEXT NOT NULL,
        target          TEXT NOT NULL,
        account         TEXT NOT NULL,
        region          TEXT NOT NULL,
        revoked_at      INTEGER NOT NULL,
        reason          TEXT NOT NULL,
        mac             BLOB,
        UNIQUE (entry_id, version_id, serial)
    ) STRICT;
    CREATE INDEX aws_revocations_by_entry ON aws_revocations(entry_id);",
    // 8: what only grows is bound to the audit log: a CA's row, each revocation and each
    // revocation by AWS Private CA carries (in its MAC) the number of the audit event written
    // with it, and the newest such event of a CA or an entry is found through its entry id,
    // so a row deleted or put back from an older copy disagrees with the log (see `ledger`).
    // Rows from before are bound at the first unlock after the upgrade, once checked.
    "ALTER TABLE cas ADD COLUMN audit_seq INTEGER;
    ALTER TABLE revocations ADD COLUMN audit_seq INTEGER;
    ALTER TABLE aws_revocations ADD COLUMN audit_seq INTEGER;
    CREATE INDEX IF NOT EXISTS audit_by_entry ON audit(entry_id);",
];

/// Rebuilds every stored chain by signature (schema 4): earlier versions ordered chains by
/// subject name and kept certificates that are not part of the chain after it.
fn normalize_chains(tx: &Transaction<'_>) -> Result<()> {
    use crate::formats::{
        cert::{Cert, CertInfo},
        chain::order_chain,
    };
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

/// How long to wait for another certvault process holding the vault.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

pub(crate) fn open_connection(path: &Path, flags: OpenFlags) -> Result<Connection> {
    // Every failure here means the file cannot be used as a vault (not a database, damaged).
    let not_a_vault = |e: rusqlite::Error| Error::NotAVault {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let conn = Connection::open_with_flags(path, flags).map_err(not_a_vault)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(not_a_vault)?;
    conn.pragma_update(None, "foreign_keys", true)
        .map_err(not_a_vault)?;
    // What is deleted (a removed entry's sealed key, an old wrapped data key) is overwritten
    // with zeros, not left in a free page.
    conn.pragma_update(None, "secure_delete", true)
        .map_err(not_a_vault)?;
    // Listing 100,000 entries touches rows spread over a large file: read it through a
    // memory map (pages are read in place, so the page cache can stay small: 8 MiB)
    // instead of one pread per page. (Per connection;
    // nothing is written.)
    conn.pragma_update(None, "mmap_size", 1i64 << 30)
        .map_err(not_a_vault)?;
    conn.pragma_update(None, "cache_size", -8_192)
        .map_err(not_a_vault)?;
    // Statements are prepared once and reused (see `Cached`): room for all of them, so a
    // bulk import or issuance does not parse and plan its SQL again for every row.
    conn.set_prepared_statement_cache_capacity(256);
    // Nothing the file's schema holds (a trigger or view planted by whoever could write the
    // file) may call a function that is not harmless; certvault's own row-MAC function may
    // not be called from the schema at all (see `integrity::register`).
    conn.pragma_update(None, "trusted_schema", false)
        .map_err(not_a_vault)?;
    crate::integrity::register(&conn).map_err(not_a_vault)?;
    // certvault makes tables and indexes only. A trigger or view in the file was put there
    // by someone who could write it: a trigger runs inside certvault's own statements and
    // could change a row after it is written and before it is sealed, or while a seal walks
    // a table; a view can stand in for a table. Such a file is not used at all.
    let planted: Vec<String> = {
        let mut stmt = conn
            .prepare("SELECT type || ' ' || quote(name) FROM sqlite_schema WHERE type NOT IN ('table', 'index') ORDER BY name")
            .map_err(not_a_vault)?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(not_a_vault)?;
        rows.collect::<rusqlite::Result<_>>().map_err(not_a_vault)?
    };
    if !planted.is_empty() {
        return Err(Error::NotAVault {
            path: path.to_owned(),
            reason: format!(
                "it holds {} that certvault never makes: the file was changed outside certvault (restore a backup, or check it with sqlite3)",
                planted.join(", ")
            ),
        });
    }
    Ok(conn)
}

/// Takes the schema to [`SCHEMA_VERSION`] from the version it has; `_seen` is the one the
/// caller read before, outside the write lock.
pub(crate) fn migrate(conn: &mut Connection, _seen: u32) -> Result<()> {
    // IMMEDIATE: two processes opening an old vault at once wait for each other, and the
    // second finds the schema upgraded already (the version is read again under the lock).
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(Error::sqlite("starting a migration"))?;
    let from: u32 = tx
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(Error::sqlite("starting a migration"))?;
    if from >= SCHEMA_VERSION {
        return Ok(());
    }
    for (n, sql) in MIGRATIONS.iter().enumerate().skip(from as usize) {
        tx.execute_batch(sql)
            .map_err(Error::sqlite("migrating the schema"))?;
        if n + 1 == 4 {
            normalize_chains(&tx)?;
        }
        tx.pragma_update(None, "user_version", (n + 1) as u32)
            .map_err(Error::sqlite("migrating the schema"))?;
    }
    // Whoever opened the file may not hold the key to audit with: the first unlock does,
    // from this note (the earliest version is kept if several upgrades wait).
    if from > 0 {
        tx.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO NOTHING",
            params![PENDING_UPGRADE, from.to_string()],
        )
        .map_err(Error::sqlite("migrating the schema"))?;
    }
    tx.commit().map_err(Error::sqlite("migrating the schema"))
}

/// Header key noting a schema upgrade not yet in the audit log.
pub(crate) const PENDING_UPGRADE: &str = "schema_upgraded_from";

pub(crate) fn meta(conn: &Connection, key: &str) -> Result<Option<String>> {
    conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()
        .map_err(Error::sqlite("reading the vault header"))
}

pub(crate) fn set_meta(conn: &Connection, key: &str, value: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )
    .map_err(Error::sqlite("writing the vault header"))?;
    Ok(())
}

/// Replaces a version's chain.
pub(crate) fn write_chain(
    tx: &Transaction<'_>,
    version_row: i64,
    chain: &[crate::formats::cert::Cert],
) -> Result<()> {
    tx.exec_cached(
        "DELETE FROM chain_certs WHERE version_id = ?1",
        [version_row],
    )
    .map_err(Error::sqlite("writing the chain"))?;
    for (pos, c) in chain.iter().enumerate() {
        tx.exec_cached(
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
