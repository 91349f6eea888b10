//! The `cas` table: reading a CA's row (checked against its MAC and the audit log), its
//! certificate and key, listing CAs, and whether a CA may be used now (its state and its
//! parents').

use super::keys::{KeyType, key_pair};
#[allow(clippy::wildcard_imports)]
use super::*;

/// Reads a CA row by name or entry id, checked against its MAC (not yet against the audit
/// log: [`Vault::read_ca`] does both).
pub(super) fn read_ca_row(tx: &rusqlite::Connection, keys: &Keys, query: &str) -> Result<CaRow> {
    let row = tx
        .query_row(
            "SELECT id, name, key_type, permitted_dns, state, deletion_at, crl_number,
                    parent_id, path_len, revoked_count, audit_seq
             FROM cas WHERE id = ?1 OR name = ?1 COLLATE NOCASE ORDER BY id = ?1 DESC LIMIT 1",
            [query],
            |r| {
                Ok((
                    (
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, Option<i64>>(5)?,
                        r.get::<_, i64>(6)?,
                    ),
                    (
                        r.get::<_, Option<String>>(7)?,
                        r.get::<_, Option<i64>>(8)?,
                        r.get::<_, i64>(9)?,
                        r.get::<_, Option<i64>>(10)?,
                    ),
                ))
            },
        )
        .optional()
        .map_err(Error::sqlite("reading the CA"))?;
    let Some((
        (id, name, key_type, dns, state, deletion_at, crl_number),
        (parent_id, path_len, revoked_count, audit_seq),
    )) = row
    else {
        return Err(Error::NoSuchCa {
            query: query.to_owned(),
        });
    };
    integrity::require(tx, &keys.rows, &integrity::CAS, &id)?;
    let damaged = || Error::RowTampered {
        table: "cas",
        row: id.clone(),
    };
    Ok(CaRow {
        key_type: KeyType::parse(&key_type).ok_or_else(damaged)?,
        permitted_dns: serde_json::from_str(&dns).map_err(|_| damaged())?,
        state: CaState::parse(&state).ok_or_else(damaged)?,
        id,
        name,
        parent_id,
        path_len,
        deletion_at,
        crl_number,
        revoked_count,
        audit_seq,
    })
}

/// Every revocation row of `ca` checked: each row's MAC, and their number against the count
/// the CA's own (checked) row keeps, so a row added, changed or deleted outside certvault
/// stops whatever relies on revocations (a CRL, a push, a renewal).
pub(super) fn check_revocations(
    conn: &rusqlite::Connection,
    keys: &Keys,
    ca: &CaRow,
) -> Result<()> {
    if let Some(b) = integrity::check(
        conn,
        &keys.rows,
        &integrity::REVOCATIONS,
        "ca_id = ?1",
        &[&ca.id],
    )?
    .into_iter()
    .next()
    {
        return Err(Error::RowTampered {
            table: b.table,
            row: b.row,
        });
    }
    let n: i64 = conn
        .query_row(
            "SELECT count(*) FROM revocations WHERE ca_id = ?1",
            [&ca.id],
            |r| r.get(0),
        )
        .map_err(Error::sqlite("reading revocations"))?;
    if n != ca.revoked_count {
        return Err(Error::RowTampered {
            table: "revocations",
            row: format!(
                "of CA {} ({n} rows, {} recorded: rows were deleted or added)",
                ca.name, ca.revoked_count
            ),
        });
    }
    Ok(())
}

/// The CA's current certificate (version row, DER) and its chain up to the root.
pub(super) fn ca_cert(
    tx: &rusqlite::Connection,
    keys: &Keys,
    ca: &CaRow,
) -> Result<(i64, Vec<u8>)> {
    integrity::require(tx, &keys.rows, &integrity::ENTRIES, &ca.id)?;
    let (row, der): (i64, Vec<u8>) = tx
        .query_row(
            "SELECT v.id, v.cert_der FROM entries e JOIN versions v ON v.id = e.current_version
             WHERE e.id = ?1",
            [&ca.id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(Error::sqlite("reading the CA's certificate"))?;
    integrity::require(tx, &keys.rows, &integrity::VERSIONS, &row)?;
    Ok((row, der))
}

/// The CA's signing key, opened (its row checked first, by the caller's `ca_cert`).
pub(super) fn ca_key(vault: &Vault, ca: &CaRow, row: i64, der: &[u8]) -> Result<KeyPair> {
    let pkcs8 = vault
        .open_key_of(row, der)?
        .ok_or_else(|| ca_error(&ca.name, "its key is destroyed"))?;
    key_pair(pkcs8.expose_secret(), ca.key_type)
}

impl Vault {
    /// Reads a CA row by name or entry id, checked against its MAC and against the audit
    /// log: it must be the newest copy of the row (see `ledger`), so a row put back from an
    /// older copy of the vault (enabled again, an older CRL number, fewer revocations) is
    /// refused like a changed one.
    pub(super) fn read_ca(&self, query: &str) -> Result<CaRow> {
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        let ca = read_ca_row(&self.conn, keys, query)?;
        self.require_ca_current(&ca.id, &ca.name, ca.audit_seq)?;
        Ok(ca)
    }

    /// Refuses, audits and counts a use of a CA that is not enabled; purges a CA whose
    /// waiting window is over. The caller's transaction is not used: the refusal must be
    /// recorded even though the operation fails.
    pub(super) fn ca_usable(&mut self, ca: &CaRow, doing: &str) -> Result<()> {
        if ca.state == CaState::Enabled {
            return self.ancestors_usable(ca, doing);
        }
        if ca.state == CaState::PendingDeletion && ca.deletion_at.is_some_and(|at| at <= now_unix())
        {
            self.ca_purge(&ca.name)?;
            return Err(ca_error(
                &ca.name,
                format!("it cannot {doing}: its waiting window ended and its key is now destroyed"),
            ));
        }
        let deletion_on = (ca.state == CaState::PendingDeletion)
            .then(|| crate::text::timestamp(from_unix(ca.deletion_at.unwrap_or(0))));
        let state = ca.state;
        // A pending CA's use is told apart: it is what `certvault_ca_use_while_pending_total`
        // counts (the way a CloudWatch alarm on a pending KMS key warns that it is still used).
        self.record_event(
            if state == CaState::PendingDeletion {
                "ca-use-while-pending"
            } else {
                "ca-use-refused"
            },
            Some(&ca.id),
            &format!("CA {} is {state}: refused to {doing}", ca.name),
        )?;
        Err(Error::CaState {
            ca: ca.name.clone(),
            state: state.as_str(),
            doing: doing.to_owned(),
            deletion_on,
        })
    }

    /// Before a CA's key is exported: like every other use of the key, only while the CA
    /// (and every CA above it) is enabled; a refusal is audited (`ca-use-while-pending` for
    /// a CA pending deletion), so no copy of a key made to be destroyed outlives it.
    pub(crate) fn ca_key_exportable(&mut self, entry_id: &str) -> Result<()> {
        if let Some(bad) = crate::integrity::ledger::missing_ca_rows(&self.conn, Some(entry_id))?
            .into_iter()
            .next()
        {
            return Err(Error::RowTampered {
                table: bad.table,
                row: bad.row,
            });
        }
        let ca = self.read_ca(entry_id)?;
        self.ca_usable(&ca, "export its key")
    }

    /// An enabled CA signs only while every CA above it is enabled and its own certificate
    /// is not revoked by its parent (each row read checked).
    pub(super) fn ancestors_usable(&self, ca: &CaRow, doing: &str) -> Result<()> {
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        let mut child = self.read_ca(&ca.id)?;
        for _ in 0..32 {
            let Some(parent_id) = child.parent_id.clone() else {
                return Ok(());
            };
            let parent = self.read_ca(&parent_id)?;
            check_revocations(&self.conn, keys, &parent)?;
            if self.is_revoked(&child.id)? {
                return Err(ca_error(
                    &ca.name,
                    format!(
                        "it cannot {doing}: the certificate of CA {} is revoked by {}",
                        child.name, parent.name
                    ),
                ));
            }
            if parent.state != CaState::Enabled {
                return Err(ca_error(
                    &ca.name,
                    format!(
                        "it cannot {doing}: CA {} above it is {}",
                        parent.name, parent.state
                    ),
                ));
            }
            child = parent;
        }
        Err(ca_error(
            &ca.name,
            "its chain of parents is longer than 32 CAs",
        ))
    }

    /// `ca list`: every CA, oldest first. Needs no passphrase (the rows are public data).
    pub(crate) fn ca_list(&self) -> Result<Vec<CaSummary>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT c.id, c.name, v.subject, c.key_type, v.not_after, c.state, c.deletion_at,
                        (SELECT count(*) FROM issued i WHERE i.ca_id = c.id),
                        (SELECT count(*) FROM revocations r WHERE r.ca_id = c.id),
                        (SELECT p.name FROM cas p WHERE p.id = c.parent_id),
                        c.permitted_dns, c.crl_number
                 FROM cas c JOIN entries e ON e.id = c.id
                 JOIN versions v ON v.id = e.current_version
                 ORDER BY c.created_at, c.rowid",
            )
            .map_err(Error::sqlite("listing CAs"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(CaSummary {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    subject: r.get(2)?,
                    key_type: r.get(3)?,
                    not_after: from_unix(r.get(4)?),
                    state: CaState::parse(&r.get::<_, String>(5)?).unwrap_or(CaState::Disabled),
                    deletion_date: r.get::<_, Option<i64>>(6)?.map(from_unix),
                    issued: r.get::<_, i64>(7)? as u64,
                    revoked: r.get::<_, i64>(8)? as u64,
                    parent: r.get(9)?,
                    permitted_dns: serde_json::from_str(&r.get::<_, String>(10)?)
                        .unwrap_or_default(),
                    crl_number: r.get::<_, i64>(11)? as u64,
                })
            })
            .map_err(Error::sqlite("listing CAs"))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(Error::sqlite("listing CAs"))
    }

    /// The trust bundle of a CA: its certificate, then its parents' up to the root (DER).
    /// Needs the vault unlocked: what clients will trust is read from checked rows only (the
    /// CA's row, its entry, and its version, whose MAC covers the chain).
    pub(crate) fn ca_bundle(&self, query: &str) -> Result<(String, Vec<Vec<u8>>)> {
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        let ca = self.read_ca(query)?;
        let (row, der) = ca_cert(&self.conn, keys, &ca)?;
        let mut out = vec![der];
        out.extend(self.chain_ders_of(row)?);
        Ok((ca.name, out))
    }

    /// Whether an entry has that name (names are unique, without regard to case).
    pub(crate) fn name_taken(&self, name: &str) -> Result<bool> {
        self.conn
            .row_cached(
                "SELECT count(*) > 0 FROM entries WHERE name = ?1 COLLATE NOCASE",
                [name],
                |r| r.get(0),
            )
            .map_err(Error::sqlite("reading entries"))
    }

    /// Whether an entry is a CA (which `remove` refuses: schedule its deletion instead; which
    /// is never deployed): it has a CA row, or the audit log created it as one (a row
    /// deleted outside certvault does not make its key an ordinary one).
    pub fn is_ca(&self, entry_id: &str) -> Result<bool> {
        self.conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM cas WHERE id = ?1)
                     OR EXISTS (SELECT 1 FROM audit WHERE entry_id = ?1 AND action = 'ca-create')",
                [entry_id],
                |r| r.get(0),
            )
            .map_err(Error::sqlite("reading CAs"))
    }
}
