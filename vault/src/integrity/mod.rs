//! Row integrity: every row that drives a decision carries an HMAC-SHA256, under a key the
//! data key derives for this purpose alone (HKDF, label `row-mac`), over a canonical
//! encoding of its columns, its id and its parents' ids.
//!
//! One specification per table names the columns; sealing and checking read them with the
//! same SQL, so they cannot disagree. A row changed outside certvault (one `sqlite3 UPDATE`
//! pointing a deployment at another entry, a version moved under another entry, a foreign
//! ARN written into a deployment) no longer matches its MAC: whatever needs the passphrase
//! checks the rows it acts on first and refuses, naming the row.
//!
//! Rows of a vault made before schema 5 are sealed once, at the first unlock after the
//! upgrade (audited), and only if nothing the file cannot forge (its audit log, its keys)
//! shows that it had MACs already (see [`had_macs`]): deleting the header's marker or
//! setting the schema version back does not get a changed row sealed. From then on a row
//! without a MAC is a row that was tampered with.
//!
//! Beside the row MACs: the hash-chained audit log (`audit`) and the ledger that binds
//! what only grows to it (`ledger`).

pub(crate) mod audit;
pub(crate) mod ledger;

pub use self::audit::{AuditEvent, AuditProblem, AuditReport};

use rusqlite::{Connection, OptionalExtension, params_from_iter, types::ValueRef};

use crate::{
    crypto::Key,
    error::{Error, Result},
};

/// The header key that says every row is sealed (and keys use the v2 AAD).
pub(crate) const SEALED_META: &str = "row_integrity";
/// Its value for this format.
pub(crate) const SEALED_V1: &str = "v1";

/// What a table's MAC covers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spec {
    /// The table.
    pub(crate) table: &'static str,
    /// How a row is named in messages (an SQL expression).
    pub(crate) name: &'static str,
    /// What identifies a row for an UPDATE (an SQL expression compared with `?1`).
    pub(crate) key: &'static str,
    /// The columns (SQL expressions) the MAC covers, in order.
    pub(crate) fields: &'static str,
}

/// Entries: the name, the source, and which version is current.
pub(crate) const ENTRIES: Spec = Spec {
    table: "entries",
    name: "id",
    key: "id",
    fields: "id, name, source, current_version",
};

/// Versions: the entry they belong to, the certificate and everything read from it, the
/// sealed key, and the chain (each certificate of it, in order).
pub(crate) const VERSIONS: Spec = Spec {
    table: "versions",
    name: "id",
    key: "id",
    fields: "id, entry_id, version, cert_der, fingerprint, subject, common_name, issuer, serial, sans,
        not_before, not_after, key_algorithm, is_ca, key_sealed,
        (SELECT group_concat(hex(c.cert_der) || ':' || c.subject || ':' || c.issuer || ':' ||
                c.fingerprint || ':' || c.not_after, '|')
           FROM (SELECT * FROM chain_certs c WHERE c.version_id = versions.id ORDER BY c.position) c)",
};

/// Tags: entry, key, value.
pub(crate) const TAGS: Spec = Spec {
    table: "tags",
    name: "entry_id || '/' || key",
    key: "rowid",
    fields: "entry_id, key, value",
};

/// Deployments: which entry goes where (target, region, account, ARN), its options, and
/// what was last deployed there.
pub(crate) const DEPLOYMENTS: Spec = Spec {
    table: "deployments",
    name: "id",
    key: "id",
    fields: "id, entry_id, target, region, account, arn, replace_existing, auto_redeploy,
        deployed_fingerprint, deployed_chain, imported_at, import_started_at",
};

/// What discovery saw at an ARN: where, what kind, what it held, which entry it feeds.
pub(crate) const ACM: Spec = Spec {
    table: "acm_certificates",
    name: "arn",
    key: "arn",
    fields: "arn, target, account, region, kind, status, domain, sans, key_algorithm, in_use,
        in_use_by, renewal_eligibility, validation_method, validation_records, failure_reason,
        not_before, not_after, imported_at, issued_at, created_at, fingerprint, entry_id, gone_at",
};

/// CAs: the entry holding the certificate and key, the parent, the limits, the state (and
/// deletion date), the CRL number, how many revocations it recorded, and the audit event
/// that last changed it (see `ledger`).
pub(crate) const CAS: Spec = Spec {
    table: "cas",
    name: "name",
    key: "id",
    fields:
        "id, name, parent_id, key_type, path_len, permitted_dns, state, deletion_at, crl_number,
        revoked_count, audit_seq",
};

/// What a CA's MAC covered before schema 8 (checked once, when its rows are bound).
pub(crate) const CAS_V7: Spec = Spec {
    fields:
        "id, name, parent_id, key_type, path_len, permitted_dns, state, deletion_at, crl_number,
        revoked_count",
    ..CAS
};

/// What a CA issued: which entry, which CA, how it is renewed.
pub(crate) const ISSUED: Spec = Spec {
    table: "issued",
    name: "entry_id",
    key: "entry_id",
    fields: "entry_id, ca_id, key_type, validity_s, auto_renew_before",
};

/// Revocations: which serial, by which CA, when, why, and the audit event that recorded it.
pub(crate) const REVOCATIONS: Spec = Spec {
    table: "revocations",
    name: "serial",
    key: "id",
    fields: "id, ca_id, serial, entry_id, version_id, revoked_at, reason, not_after, audit_seq",
};

/// What a revocation's MAC covered before schema 8.
pub(crate) const REVOCATIONS_V7: Spec = Spec {
    fields: "id, ca_id, serial, entry_id, version_id, revoked_at, reason, not_after",
    ..REVOCATIONS
};

/// Certificates from AWS Private CA: which version, how it came, which CA and ARN, where.
pub(crate) const AWS_PRIVATE: Spec = Spec {
    table: "aws_private",
    name: "version_id",
    key: "version_id",
    fields: "version_id, entry_id, via, ca_arn, certificate_arn, target, account, region, key_type,
        validity_s",
};

/// Revocations by AWS Private CA: which entry, version and serial, by which CA, when, why,
/// and the audit event that recorded it.
pub(crate) const AWS_REVOCATIONS: Spec = Spec {
    table: "aws_revocations",
    name: "serial",
    key: "id",
    fields: "id, version_id, entry_id, serial, via, ca_arn, certificate_arn, target, account,
        region, revoked_at, reason, audit_seq",
};

/// What a revocation by AWS Private CA's MAC covered before schema 8.
pub(crate) const AWS_REVOCATIONS_V7: Spec = Spec {
    fields: "id, version_id, entry_id, serial, via, ca_arn, certificate_arn, target, account,
        region, revoked_at, reason",
    ..AWS_REVOCATIONS
};

/// Every sealed table.
pub(crate) const ALL: [Spec; 10] = [
    ENTRIES,
    VERSIONS,
    TAGS,
    DEPLOYMENTS,
    ACM,
    CAS,
    ISSUED,
    REVOCATIONS,
    AWS_PRIVATE,
    AWS_REVOCATIONS,
];

/// What, in what the file cannot forge, shows that a vault had row MACs already, so that
/// a header asking for the one-time seal of a vault from before schema 5 (no marker, an
/// upgrade noted from schema 4) is not obeyed: a row carrying a MAC; an audit event only a
/// build with row MACs writes (`init` since schema 8, an upgrade from schema 5 or later, an
/// integrity event, anything of the private CA or AWS Private CA); a private key sealed
/// bound to its entry (the AAD of schema 5). `None`: a vault from before schema 5.
///
/// The audit events count only once the chain verifies (the caller checks it first).
pub(crate) fn had_macs(conn: &Connection, dek: &Key) -> Result<Option<String>> {
    let sql = |e| Error::sqlite("looking for row MACs")(e);
    // Without its first event nothing in the log can be trusted to tell (events deleted,
    // perhaps all of them): the vault is taken as one that had MACs.
    let first: Option<String> = conn
        .query_row("SELECT action FROM audit WHERE seq = 1", [], |r| r.get(0))
        .optional()
        .map_err(sql)?;
    if first.as_deref() != Some("init") {
        return Ok(Some(
            "its audit log does not start with the vault's init event: events were deleted".into(),
        ));
    }
    let events: Vec<(i64, String, String)> = {
        let mut stmt = conn
            .prepare(
                "SELECT seq, action, detail FROM audit
                 WHERE action IN ('init', 'schema-upgrade', 'integrity-upgrade', 'integrity-failure',
                                  'integrity-bind', 'aws-revoke')
                    OR action LIKE 'ca-%' OR action LIKE 'pca-%'
                 ORDER BY seq",
            )
            .map_err(sql)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(sql)?;
        rows.collect::<rusqlite::Result<_>>().map_err(sql)?
    };
    for (seq, action, detail) in events {
        let marks = match action.as_str() {
            "init" => detail.starts_with("vault created (schema "),
            "schema-upgrade" => detail
                .strip_prefix("vault schema upgraded from version ")
                .and_then(|d| d.split(' ').next())
                .and_then(|v| v.parse::<u32>().ok())
                .is_some_and(|v| v >= 5),
            _ => true,
        };
        if marks {
            return Ok(Some(format!(
                "audit event #{seq} ({action}) was written by a certvault with row MACs"
            )));
        }
    }
    for spec in &ALL {
        let any: bool = conn
            .query_row(
                &format!(
                    "SELECT EXISTS (SELECT 1 FROM {} WHERE mac IS NOT NULL)",
                    spec.table
                ),
                [],
                |r| r.get(0),
            )
            .map_err(sql)?;
        if any {
            return Ok(Some(format!("rows of {} carry MACs", spec.table)));
        }
    }
    let mut stmt = conn
        .prepare(
            "SELECT id, entry_id, cert_der, key_sealed FROM versions WHERE key_sealed IS NOT NULL",
        )
        .map_err(sql)?;
    let mut rows = stmt.query([]).map_err(sql)?;
    while let Some(r) = rows.next().map_err(sql)? {
        let (id, entry, der, sealed): (i64, String, Vec<u8>, Vec<u8>) = (
            r.get(0).map_err(sql)?,
            r.get(1).map_err(sql)?,
            r.get(2).map_err(sql)?,
            r.get(3).map_err(sql)?,
        );
        let aad = crate::crypto::key_aad(id, &entry, &crate::crypto::sha256_hex(&der));
        if dek.open(&aad, &sealed).is_some() {
            return Ok(Some(format!(
                "the private key of versions row {id} is sealed bound to its entry, as only a certvault with row MACs seals keys"
            )));
        }
    }
    Ok(None)
}

/// A row that fails its check.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BadRow {
    /// The table.
    pub table: &'static str,
    /// The row (its id, or `entry/key` for tags, or the ARN).
    pub row: String,
}

impl std::fmt::Display for BadRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} row {}", self.table, self.row)
    }
}

/// The canonical encoding a row's MAC covers: the table, then each value with its type.
fn encode<'v>(table: &str, values: impl Iterator<Item = ValueRef<'v>>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"certvault/row/v1\0");
    out.extend_from_slice(table.as_bytes());
    out.push(0);
    for v in values {
        let (tag, bytes): (u8, &[u8]) = match v {
            ValueRef::Null => (0, &[]),
            ValueRef::Integer(n) => {
                push_value(&mut out, 1, &n.to_be_bytes());
                continue;
            }
            ValueRef::Real(r) => {
                push_value(&mut out, 2, &r.to_be_bytes());
                continue;
            }
            ValueRef::Text(t) => (3, t),
            ValueRef::Blob(b) => (4, b),
        };
        push_value(&mut out, tag, bytes);
    }
    out
}

fn push_value(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    out.push(tag);
    out.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// The SQL function that computes a row's MAC inside the UPDATE that stores it (one
/// statement per seal instead of a SELECT and an UPDATE).
const MAC_FUNCTION: &str = "certvault_row_mac";

thread_local! {
    /// The row-MAC key, present only while [`seal`] runs its UPDATE on this thread (SQLite
    /// calls the function on the thread that steps the statement).
    static SEALING: std::cell::RefCell<Option<Key>> = const { std::cell::RefCell::new(None) };
}

/// Clears [`SEALING`] when the seal ends, however it ends.
struct Sealing;

impl Sealing {
    fn with(key: &Key) -> Sealing {
        SEALING.with(|s| *s.borrow_mut() = Some(key.duplicate()));
        Sealing
    }
}

impl Drop for Sealing {
    fn drop(&mut self) {
        SEALING.with(|s| *s.borrow_mut() = None);
    }
}

/// Registers the MAC function on a vault's connection. It is DIRECTONLY: a trigger or view
/// planted in the vault file cannot call it (SQLite refuses), so nothing but certvault's own
/// `seal` statements can MAC a row, and only while one runs (it knows no key otherwise).
pub(crate) fn register(conn: &Connection) -> rusqlite::Result<()> {
    use rusqlite::functions::FunctionFlags;
    conn.create_scalar_function(
        MAC_FUNCTION,
        -1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DIRECTONLY,
        |ctx| {
            SEALING.with(|s| {
                let key = s.borrow();
                let key = key.as_ref().ok_or_else(|| {
                    rusqlite::Error::UserFunctionError(
                        format!("{MAC_FUNCTION} is called only by certvault while it seals a row")
                            .into(),
                    )
                })?;
                let table = ctx
                    .get_raw(0)
                    .as_str()
                    .map_err(|e| rusqlite::Error::UserFunctionError(Box::new(e)))?;
                let values = (1..ctx.len()).map(|i| ctx.get_raw(i));
                Ok(key.mac(&encode(table, values)).to_vec())
            })
        },
    )
}

fn field_count(spec: &Spec) -> usize {
    // Top-level commas only (the chain sub-select has its own).
    let mut depth = 0i32;
    let mut n = 1;
    let mut quoted = false;
    for c in spec.fields.chars() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => n += 1,
            _ => {}
        }
    }
    n
}

/// Seals the rows of `spec` that `filter` (an SQL condition on the table, with `?` params)
/// selects: one UPDATE that reads the fields with the same SQL [`check`] reads them with.
pub(crate) fn seal(
    conn: &Connection,
    key: &Key,
    spec: &Spec,
    filter: &str,
    args: &[&dyn rusqlite::ToSql],
) -> Result<()> {
    let sql = format!(
        "UPDATE {table} SET mac = {MAC_FUNCTION}('{table}', {fields}) WHERE {filter}",
        fields = spec.fields,
        table = spec.table,
    );
    let mut stmt = conn
        .prepare_cached(&sql)
        .map_err(Error::sqlite("sealing rows"))?;
    let _sealing = Sealing::with(key);
    stmt.execute(params_from_iter(args.iter()))
        .map_err(Error::sqlite("sealing rows"))?;
    Ok(())
}

/// Seals one row of `spec`, identified by its key column.
pub(crate) fn seal_one(
    conn: &Connection,
    key: &Key,
    spec: &Spec,
    id: &dyn rusqlite::ToSql,
) -> Result<()> {
    seal(conn, key, spec, &format!("{} = ?1", spec.key), &[id])
}

/// Fails naming the row when one row of `spec` does not pass its check.
pub(crate) fn require(
    conn: &Connection,
    key: &Key,
    spec: &Spec,
    id: &dyn rusqlite::ToSql,
) -> Result<()> {
    match check(conn, key, spec, &format!("{} = ?1", spec.key), &[id])?
        .into_iter()
        .next()
    {
        None => Ok(()),
        Some(bad) => Err(Error::RowTampered {
            table: bad.table,
            row: bad.row,
        }),
    }
}

/// Seals every row of every table.
pub(crate) fn seal_all(conn: &Connection, key: &Key) -> Result<u64> {
    let mut n = 0;
    for spec in &ALL {
        seal(conn, key, spec, "1 = 1", &[])?;
        n += conn
            .query_row(&format!("SELECT count(*) FROM {}", spec.table), [], |r| {
                r.get::<_, i64>(0)
            })
            .map_err(Error::sqlite("sealing rows"))? as u64;
    }
    Ok(n)
}

/// The rows of `spec` selected by `filter` that fail their check (a missing MAC fails).
pub(crate) fn check(
    conn: &Connection,
    key: &Key,
    spec: &Spec,
    filter: &str,
    args: &[&dyn rusqlite::ToSql],
) -> Result<Vec<BadRow>> {
    let n = field_count(spec);
    let sql = format!(
        "SELECT {name}, mac, {fields} FROM {table} WHERE {filter}",
        name = spec.name,
        fields = spec.fields,
        table = spec.table,
    );
    let mut stmt = conn
        .prepare_cached(&sql)
        .map_err(Error::sqlite("checking rows"))?;
    let mut rows = stmt
        .query(params_from_iter(args.iter()))
        .map_err(Error::sqlite("checking rows"))?;
    let mut bad = Vec::new();
    while let Some(row) = rows.next().map_err(Error::sqlite("checking rows"))? {
        let name: String = match row.get_ref(0).map_err(Error::sqlite("checking rows"))? {
            ValueRef::Integer(i) => i.to_string(),
            ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
            other => format!("{other:?}"),
        };
        let mac: Option<Vec<u8>> = row.get(1).map_err(Error::sqlite("checking rows"))?;
        let ok = match mac {
            Some(m) => {
                let values = (2..2 + n)
                    .map(|i| row.get_ref(i))
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .map_err(Error::sqlite("checking rows"))?;
                key.verify_mac(&encode(spec.table, values.into_iter()), &m)
            }
            None => false,
        };
        if !ok {
            bad.push(BadRow {
                table: spec.table,
                row: name,
            });
        }
    }
    Ok(bad)
}

/// Checks every row of every table.
pub(crate) fn check_all(conn: &Connection, key: &Key) -> Result<(u64, Vec<BadRow>)> {
    let mut bad = Vec::new();
    let mut n = 0;
    for spec in &ALL {
        bad.extend(check(conn, key, spec, "1 = 1", &[])?);
        n += conn
            .query_row(&format!("SELECT count(*) FROM {}", spec.table), [], |r| {
                r.get::<_, i64>(0)
            })
            .map_err(Error::sqlite("checking rows"))? as u64;
    }
    Ok((n, bad))
}

#[cfg(test)]
mod tests;
