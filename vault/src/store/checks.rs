//! The checks a change makes before it acts, on the vault's handle: the audit chain from a
//! row's newest event (remembered for this process), a CA row being the newest one, and
//! every AWS revocation of an entry still having its row.

use rusqlite::OptionalExtension;

use super::Vault;
use crate::{
    error::{Error, Result},
    integrity::{
        audit,
        ledger::{missing_aws_revocations, newest_ca_event, stale},
    },
};

impl Vault {
    /// Checks the audit chain from event `from` to the newest one and the header's head. A
    /// stretch checked stays checked for this process (it is extended, not walked again)
    /// until the writer lock is taken again.
    pub(crate) fn require_audit_from(&self, from: i64) -> Result<()> {
        let keys = self.keys()?;
        let from = from.max(1);
        let mut memo = self.audit_checked.borrow_mut();
        if let Some((f, c)) = memo.as_ref()
            && *f <= from
        {
            let stored: Option<Vec<u8>> = if c.seq == 0 {
                Some(Vec::new())
            } else {
                self.conn
                    .prepare_cached("SELECT mac FROM audit WHERE seq = ?1")
                    .and_then(|mut s| s.query_row([c.seq], |r| r.get(0)).optional())
                    .map_err(Error::sqlite("reading the audit log"))?
            };
            if stored.as_deref() == Some(c.mac.as_slice()) {
                let f = *f;
                let next =
                    audit::verify_from(&self.conn, &keys.audit, c.seq + 1, Some(c.mac.clone()))?;
                return match next {
                    Ok(end) => {
                        *memo = Some((f, end));
                        Ok(())
                    }
                    Err(p) => {
                        *memo = None;
                        Err(Error::AuditTampered { what: p.what })
                    }
                };
            }
        }
        match audit::verify_from(&self.conn, &keys.audit, from, None)? {
            Ok(end) => {
                *memo = Some((from, end));
                Ok(())
            }
            Err(p) => {
                *memo = None;
                Err(Error::AuditTampered { what: p.what })
            }
        }
    }

    /// Forgets what this process checked of the audit chain.
    pub(crate) fn forget_audit_checks(&self) {
        *self.audit_checked.borrow_mut() = None;
    }

    /// Fails unless CA `id`'s row (its MAC checked by the caller) is the newest one: it
    /// carries the newest event that changed it, and the chain verifies from there.
    pub(crate) fn require_ca_current(&self, id: &str, name: &str, row: Option<i64>) -> Result<()> {
        let newest = newest_ca_event(&self.conn, id)?;
        let from = match (row, newest) {
            (Some(r), Some(n)) => r.min(n),
            (Some(x), None) | (None, Some(x)) => x,
            (None, None) => 1,
        };
        self.require_audit_from(from)?;
        if row.is_none() || newest != row {
            let b = stale(name, newest, row);
            return Err(Error::RowTampered {
                table: b.table,
                row: b.row,
            });
        }
        Ok(())
    }

    /// Fails when an `aws-revoke` event of `entry` has no row (deleted), the whole chain
    /// checked first.
    pub(crate) fn require_aws_revocations(&self, entry: &str) -> Result<()> {
        self.require_audit_from(1)?;
        if let Some(b) = missing_aws_revocations(&self.conn, Some(entry))?
            .into_iter()
            .next()
        {
            return Err(Error::RowTampered {
                table: b.table,
                row: b.row,
            });
        }
        Ok(())
    }
}
