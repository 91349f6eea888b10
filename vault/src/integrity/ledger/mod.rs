//! What only grows — revocations, a CA's CRL number and state — bound to the audit log.
//!
//! A row's MAC shows that certvault wrote the row, not that it is the newest one: a row put
//! back from an older copy of the vault (with its own, valid MAC) or a revocation deleted
//! outright would pass it. So every change of a CA's row, every revocation and every
//! revocation by AWS Private CA is an audit event written in the same transaction, and the
//! row carries (in its MAC) that event's number:
//!
//! - a CA's row carries the number of the newest event that changed it (one of
//!   [`CA_ROW_ACTIONS`], written under the CA's entry id, so found through the
//!   `audit_by_entry` index): an older copy of the row carries an older number;
//! - a CA's revocations are as many as its row (so checked) counts: a deleted one is missing;
//! - every `aws-revoke` event of an entry has its row, carrying the event's number.
//!
//! Before a CA's row is trusted, the chain is checked from the row's event (or the newest
//! event found, if older) to the newest event and the header's head, once per process and
//! stretch: an event edited, removed from the middle or cut from the end to hide a later
//! change fails there. What the file alone cannot show is a consistent older copy of the
//! whole file (rows and log rolled back together): an anchor kept outside the vault does
//! (`certvault log head`, `log verify --expect-head`, `sync --expect-head`, the agent's
//! anchor file).

use rusqlite::{Connection, OptionalExtension, params};

use crate::{
    crypto::Keys,
    error::{Error, Result},
    integrity::{self, BadRow, audit},
};

/// The actions that change a CA's row, written under the CA's entry id in the transaction
/// that changes it (`ca-bind`: a row of schema 7 bound at the upgrade).
pub(crate) const CA_ROW_ACTIONS: &[&str] = &[
    "ca-create",
    "ca-revoke",
    "ca-crl",
    "ca-disable",
    "ca-enable",
    "ca-schedule-deletion",
    "ca-cancel-deletion",
    "ca-purge",
    "bench-seed",
    "ca-bind",
];

/// The event of the binding of schema 7's rows (once per vault).
pub(crate) const BIND_ACTION: &str = "integrity-bind";

fn in_list(actions: &[&str]) -> String {
    actions
        .iter()
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The newest event that changed the CA `id`'s row.
pub(crate) fn newest_ca_event(conn: &Connection, id: &str) -> Result<Option<i64>> {
    conn.prepare_cached(&format!(
        "SELECT seq FROM audit WHERE entry_id = ?1 AND action IN ({}) ORDER BY seq DESC LIMIT 1",
        in_list(CA_ROW_ACTIONS)
    ))
    .and_then(|mut s| s.query_row([id], |r| r.get(0)).optional())
    .map_err(Error::sqlite("reading the audit log"))
}

/// The refusal of a CA row that is not the newest one.
pub(crate) fn stale(name: &str, newest: Option<i64>, row: Option<i64>) -> BadRow {
    let newest = newest.map_or_else(
        || "no audit event records a change of it".to_owned(),
        |n| format!("the audit log changed it last at event #{n}"),
    );
    let row = row.map_or_else(
        || "this copy is bound to no event".to_owned(),
        |r| format!("this copy is from event #{r}"),
    );
    BadRow {
        table: "cas",
        row: format!("{name} (an older copy: {newest}, {row})"),
    }
}

fn miscounted(name: &str, rows: i64, recorded: i64) -> BadRow {
    BadRow {
        table: "revocations",
        row: format!("of CA {name} ({rows} rows, {recorded} recorded: rows were deleted or added)"),
    }
}

/// `aws-revoke` events (of `entry`, or all) whose row is gone.
pub(crate) fn missing_aws_revocations(
    conn: &Connection,
    entry: Option<&str>,
) -> Result<Vec<BadRow>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT a.seq, coalesce(a.entry_name, a.entry_id, '?'), a.detail FROM audit a
             WHERE a.action = 'aws-revoke' AND (?1 IS NULL OR a.entry_id = ?1)
               AND NOT EXISTS (SELECT 1 FROM aws_revocations r
                               WHERE r.entry_id = a.entry_id
                                 AND (r.audit_seq = a.seq
                                      -- a row of schema 7 not bound yet (its MAC decides)
                                      OR (r.audit_seq IS NULL
                                          AND instr(a.detail, ': serial ' || r.serial || ', ') > 0)))
             ORDER BY a.seq",
        )
        .map_err(Error::sqlite("reading revocations"))?;
    let rows = stmt
        .query_map([entry], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .map_err(Error::sqlite("reading revocations"))?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, name, detail) = row.map_err(Error::sqlite("reading revocations"))?;
        let serial = detail
            .split_once("serial ")
            .and_then(|(_, s)| s.split([',', ' ']).next())
            .unwrap_or("?")
            .to_owned();
        out.push(BadRow {
            table: "aws_revocations",
            row: format!(
                "for serial {serial} of {name} (audit event #{seq} records its revocation; the row is gone)"
            ),
        });
    }
    Ok(out)
}

/// What `verify` adds to the rows' MACs (the chain is checked by the caller): every CA row
/// is the newest one and counts its revocations, every revocation by AWS Private CA has its
/// row. Rows of schema 7 not yet bound are left to their MAC check.
pub(crate) fn check_all(conn: &Connection) -> Result<Vec<BadRow>> {
    let cas: Vec<(String, String, Option<i64>, i64)> = {
        let mut stmt = conn
            .prepare("SELECT id, name, audit_seq, revoked_count FROM cas ORDER BY rowid")
            .map_err(Error::sqlite("reading CAs"))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .map_err(Error::sqlite("reading CAs"))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(Error::sqlite("reading CAs"))?
    };
    let mut bad = Vec::new();
    for (id, name, row_seq, recorded) in cas {
        if row_seq.is_some() {
            let newest = newest_ca_event(conn, &id)?;
            if newest != row_seq {
                bad.push(stale(&name, newest, row_seq));
            }
        }
        let rows = revocation_count(conn, &id)?;
        if rows != recorded {
            bad.push(miscounted(&name, rows, recorded));
        }
    }
    bad.extend(missing_aws_revocations(conn, None)?);
    bad.extend(missing_ca_rows(conn, None)?);
    bad.extend(missing_issued_rows(conn, None)?);
    Ok(bad)
}

/// Entries the vault's CA issued (source `issued`, and not a CA themselves) whose `issued`
/// row is gone: that row says which CA's revocations decide whether the certificate is
/// revoked, so without it a revocation would go unseen. Each is named.
pub(crate) fn missing_issued_rows(conn: &Connection, entry: Option<&str>) -> Result<Vec<BadRow>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT e.name FROM entries e
             WHERE e.source = 'issued' AND (?1 IS NULL OR e.id = ?1)
               AND NOT EXISTS (SELECT 1 FROM issued i WHERE i.entry_id = e.id)
               AND NOT EXISTS (SELECT 1 FROM cas c WHERE c.id = e.id)
               AND NOT EXISTS (SELECT 1 FROM audit a WHERE a.entry_id = e.id AND a.action = 'ca-create')
             ORDER BY e.name",
        )
        .map_err(Error::sqlite("reading what the CA issued"))?;
    let rows = stmt
        .query_map([entry], |r| r.get::<_, String>(0))
        .map_err(Error::sqlite("reading what the CA issued"))?;
    rows.map(|r| {
        r.map(|name| BadRow {
            table: "issued",
            row: format!("{name} (deleted: the vault's CA issued it, and this row says which CA's revocations apply)"),
        })
    })
    .collect::<rusqlite::Result<_>>()
    .map_err(Error::sqlite("reading what the CA issued"))
}

/// CAs the audit log created (`ca-create`, of `entry` or all) whose entry is still in the
/// vault but whose row is gone: deleted outside certvault, so that nothing would know the
/// entry's key is a CA's (its state, its limits). Each is named.
pub(crate) fn missing_ca_rows(conn: &Connection, entry: Option<&str>) -> Result<Vec<BadRow>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT min(a.seq), coalesce(e.name, a.entry_name, a.entry_id) FROM audit a
             JOIN entries e ON e.id = a.entry_id
             WHERE a.action = 'ca-create' AND (?1 IS NULL OR a.entry_id = ?1)
               AND NOT EXISTS (SELECT 1 FROM cas c WHERE c.id = a.entry_id)
             GROUP BY a.entry_id ORDER BY 1",
        )
        .map_err(Error::sqlite("reading CAs"))?;
    let rows = stmt
        .query_map([entry], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })
        .map_err(Error::sqlite("reading CAs"))?;
    rows.map(|r| {
        r.map(|(seq, name)| BadRow {
            table: "cas",
            row: format!("{name} (deleted: the audit log created it at event #{seq})"),
        })
    })
    .collect::<rusqlite::Result<_>>()
    .map_err(Error::sqlite("reading CAs"))
}

pub(crate) fn revocation_count(conn: &Connection, ca_id: &str) -> Result<i64> {
    conn.prepare_cached("SELECT count(*) FROM revocations WHERE ca_id = ?1")
        .and_then(|mut s| s.query_row([ca_id], |r| r.get(0)))
        .map_err(Error::sqlite("reading revocations"))
}

/// Whether rows of schema 7 may still be bound: the log records no binding, and the vault
/// was not made by a build of schema 8 or later.
pub(crate) fn binding_allowed(conn: &Connection) -> Result<bool> {
    let done: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM audit WHERE action = ?1)
                 OR EXISTS (SELECT 1 FROM audit WHERE action = 'init' AND detail LIKE 'vault created (schema %')
                 -- a log without its first event tells nothing: never bound
                 OR NOT EXISTS (SELECT 1 FROM audit WHERE seq = 1 AND action = 'init')",
            [BIND_ACTION],
            |r| r.get(0),
        )
        .map_err(Error::sqlite("reading the audit log"))?;
    Ok(!done)
}

/// Rows of schema 7 (audit_seq empty) whose old MAC verifies: they wait for their binding.
pub(crate) fn unbound(conn: &Connection, keys: &Keys) -> Result<(Vec<BadRow>, Vec<BadRow>)> {
    let mut waiting = Vec::new();
    let mut bad = Vec::new();
    for (spec, old) in [
        (&integrity::CAS, &integrity::CAS_V7),
        (&integrity::REVOCATIONS, &integrity::REVOCATIONS_V7),
        (&integrity::AWS_REVOCATIONS, &integrity::AWS_REVOCATIONS_V7),
    ] {
        let failing = integrity::check(conn, &keys.rows, old, "audit_seq IS NULL", &[])?;
        let all: Vec<String> = {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {} FROM {} WHERE audit_seq IS NULL",
                    spec.name, spec.table
                ))
                .map_err(Error::sqlite("checking rows"))?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(match r.get_ref(0)? {
                        rusqlite::types::ValueRef::Integer(i) => i.to_string(),
                        rusqlite::types::ValueRef::Text(t) => {
                            String::from_utf8_lossy(t).into_owned()
                        }
                        other => format!("{other:?}"),
                    })
                })
                .map_err(Error::sqlite("checking rows"))?;
            rows.collect::<rusqlite::Result<_>>()
                .map_err(Error::sqlite("checking rows"))?
        };
        for row in all {
            let b = BadRow {
                table: spec.table,
                row,
            };
            if failing.contains(&b) {
                bad.push(b);
            } else {
                waiting.push(b);
            }
        }
    }
    Ok((waiting, bad))
}

/// What the events of schema 6 and 7 say a CA's row must hold: (state, deletion date as
/// printed, next CRL number, revocations). Read from the log alone.
struct Expected {
    state: String,
    deletion: Option<String>,
    crl_number: i64,
    revocations: i64,
}

fn expected_of(conn: &Connection, id: &str, name: &str) -> Result<Expected> {
    let events: Vec<(String, String)> = {
        let mut stmt = conn
            .prepare(
                "SELECT action, detail FROM audit WHERE entry_id = ?1 AND action LIKE 'ca-%'
                 ORDER BY seq",
            )
            .map_err(Error::sqlite("reading the audit log"))?;
        let rows = stmt
            .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(Error::sqlite("reading the audit log"))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(Error::sqlite("reading the audit log"))?
    };
    let mut e = Expected {
        state: "enabled".into(),
        deletion: None,
        crl_number: 1,
        revocations: 0,
    };
    for (action, detail) in &events {
        match action.as_str() {
            "ca-create" => {
                e.state = "enabled".into();
                e.deletion = None;
            }
            "ca-purge" => e.state = "deleted".into(),
            "ca-crl" => {
                if let Some(n) = detail
                    .strip_prefix("CRL number ")
                    .and_then(|d| d.split(':').next())
                    .and_then(|n| n.parse::<i64>().ok())
                {
                    e.crl_number = n + 1;
                }
            }
            "ca-disable" | "ca-enable" | "ca-schedule-deletion" | "ca-cancel-deletion" => {
                // "{old} -> {new}" or "{old} -> {new}; its key is destroyed after {date}"
                let after = detail.split_once(" -> ").map_or("", |(_, a)| a);
                let (state, date) = match after.split_once("; its key is destroyed after ") {
                    Some((s, d)) => (s, Some(d.to_owned())),
                    None => (after, None),
                };
                e.state = state.to_owned();
                e.deletion = date;
            }
            _ => {}
        }
    }
    // Revocations of schema 6 and 7: one `ca-revoke` event under the revoked entry, naming
    // the CA ("serial S revoked by CA NAME: REASON"); benchmark seeds under the CA.
    let details: Vec<String> = {
        let mut stmt = conn
            .prepare("SELECT detail FROM audit WHERE action = 'ca-revoke'")
            .map_err(Error::sqlite("reading the audit log"))?;
        let rows = stmt
            .query_map([], |r| r.get(0))
            .map_err(Error::sqlite("reading the audit log"))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(Error::sqlite("reading the audit log"))?
    };
    let revokes = details
        .iter()
        .filter(|d| {
            crate::formats::revocation::RevocationReason::ALL
                .iter()
                .any(|r| {
                    d.strip_suffix(r.as_str())
                        .and_then(|d| d.strip_suffix(": "))
                        .and_then(|d| d.split_once(" revoked by CA "))
                        .is_some_and(|(serial, ca)| serial.starts_with("serial ") && ca == name)
                })
        })
        .count() as i64;
    let seeded: Vec<String> = {
        let mut stmt = conn
            .prepare("SELECT detail FROM audit WHERE entry_id = ?1 AND action = 'bench-seed'")
            .map_err(Error::sqlite("reading the audit log"))?;
        let rows = stmt
            .query_map([id], |r| r.get(0))
            .map_err(Error::sqlite("reading the audit log"))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(Error::sqlite("reading the audit log"))?
    };
    let seeded: i64 = seeded
        .iter()
        .filter_map(|d| d.split(' ').next()?.parse::<i64>().ok())
        .sum();
    e.revocations = revokes + seeded;
    Ok(e)
}

/// Binds the rows of schema 6 and 7 to the audit log, once (the caller checked the whole
/// chain first, and that no binding was done before): each CA row whose old MAC verifies and
/// whose state, deletion date, CRL number and revocations agree with what its events say
/// gets a `ca-bind` event and carries it (with its revocations); each revocation by AWS
/// Private CA carries the `aws-revoke` event that recorded it. A row that fails is left as it
/// is (it fails its check from then on) and named. Returns (bound rows, refused).
pub(crate) fn bind_legacy(
    conn: &Connection,
    keys: &Keys,
    actor: &str,
    from: &str,
) -> Result<(u64, Vec<String>)> {
    use crate::text::{count, timestamp};
    let mut bound = 0u64;
    let mut refused = Vec::new();
    let cas: Vec<(String, String, String, Option<i64>, i64, i64)> = {
        let mut stmt = conn
            .prepare(
                "SELECT id, name, state, deletion_at, crl_number, revoked_count FROM cas
                 WHERE audit_seq IS NULL ORDER BY rowid",
            )
            .map_err(Error::sqlite("binding rows"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })
            .map_err(Error::sqlite("binding rows"))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(Error::sqlite("binding rows"))?
    };
    for (id, name, state, deletion_at, crl_number, recorded) in cas {
        let bad_row =
            !integrity::check(conn, &keys.rows, &integrity::CAS_V7, "id = ?1", &[&id])?.is_empty();
        let bad_revocations = integrity::check(
            conn,
            &keys.rows,
            &integrity::REVOCATIONS_V7,
            "ca_id = ?1 AND audit_seq IS NULL",
            &[&id],
        )?;
        let rows = revocation_count(conn, &id)?;
        let e = expected_of(conn, &id, &name)?;
        let deletion = deletion_at
            .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
            .map(timestamp);
        let mut why = Vec::new();
        if bad_row {
            why.push("its MAC does not verify".to_owned());
        }
        if let Some(b) = bad_revocations.first() {
            why.push(format!("revocations row {} fails its MAC", b.row));
        }
        if state != e.state {
            why.push(format!("it is {state}, its events say {}", e.state));
        }
        if e.state == "pending-deletion" && deletion != e.deletion {
            why.push(format!(
                "its key is destroyed after {}, its events say {}",
                deletion.as_deref().unwrap_or("never"),
                e.deletion.as_deref().unwrap_or("never")
            ));
        }
        if crl_number != e.crl_number {
            why.push(format!(
                "its next CRL number is {crl_number}, its events say {}",
                e.crl_number
            ));
        }
        if rows != recorded || recorded != e.revocations {
            why.push(format!(
                "it has {rows} revocations and counts {recorded}, its events record {}",
                e.revocations
            ));
        }
        if !why.is_empty() {
            refused.push(format!("cas row {name}: {}", why.join("; ")));
            continue;
        }
        let seq = audit::append(
            conn,
            &keys.audit,
            actor,
            "ca-bind",
            Some((&id, &name)),
            &format!(
                "schema {from} to 8: {state}, next CRL number {crl_number}, {} bound to the audit log",
                count(rows, "revocation", "revocations")
            ),
        )?;
        conn.execute(
            "UPDATE cas SET audit_seq = ?2 WHERE id = ?1",
            params![id, seq],
        )
        .map_err(Error::sqlite("binding rows"))?;
        integrity::seal_one(conn, &keys.rows, &integrity::CAS, &id)?;
        conn.execute(
            "UPDATE revocations SET audit_seq = ?2 WHERE ca_id = ?1 AND audit_seq IS NULL",
            params![id, seq],
        )
        .map_err(Error::sqlite("binding rows"))?;
        integrity::seal(
            conn,
            &keys.rows,
            &integrity::REVOCATIONS,
            "ca_id = ?1",
            &[&id],
        )?;
        bound += 1 + rows as u64;
    }
    let aws: Vec<(i64, String, String)> = {
        let mut stmt = conn
            .prepare(
                "SELECT id, entry_id, serial FROM aws_revocations WHERE audit_seq IS NULL ORDER BY id",
            )
            .map_err(Error::sqlite("binding rows"))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(Error::sqlite("binding rows"))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(Error::sqlite("binding rows"))?
    };
    for (id, entry, serial) in aws {
        if !integrity::check(
            conn,
            &keys.rows,
            &integrity::AWS_REVOCATIONS_V7,
            "id = ?1",
            &[&id],
        )?
        .is_empty()
        {
            refused.push(format!(
                "aws_revocations row {serial}: its MAC does not verify"
            ));
            continue;
        }
        // "revoked by AWS Private CA {ca} ({certificate}): serial {serial}, account ..."
        let event: Option<i64> = conn
            .query_row(
                "SELECT seq FROM audit WHERE entry_id = ?1 AND action = 'aws-revoke'
                   AND instr(detail, ?2) > 0
                   AND NOT EXISTS (SELECT 1 FROM aws_revocations r WHERE r.audit_seq = audit.seq)
                 ORDER BY seq LIMIT 1",
                params![entry, format!(": serial {serial}, ")],
                |r| r.get(0),
            )
            .optional()
            .map_err(Error::sqlite("binding rows"))?;
        let Some(seq) = event else {
            refused.push(format!(
                "aws_revocations row {serial}: no aws-revoke event records it"
            ));
            continue;
        };
        conn.execute(
            "UPDATE aws_revocations SET audit_seq = ?2 WHERE id = ?1",
            params![id, seq],
        )
        .map_err(Error::sqlite("binding rows"))?;
        integrity::seal_one(conn, &keys.rows, &integrity::AWS_REVOCATIONS, &id)?;
        bound += 1;
    }
    Ok((bound, refused))
}

#[cfg(test)]
mod tests;
