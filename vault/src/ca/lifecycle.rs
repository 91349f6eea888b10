//! A CA key's lifecycle, after AWS KMS's key-deletion rules: enabled, disabled, pending
//! deletion within a 7 to 30 day window, cancelled back to disabled, purged (its key
//! destroyed) only after the window.

#[allow(clippy::wildcard_imports)]
use super::*;
use crate::error::Remedy;

/// Destroys a CA's key material (every version's sealed key) and marks it deleted.
pub(super) fn destroy_key(
    tx: &Transaction<'_>,
    keys: &Keys,
    ca: &CaRow,
    audit_seq: i64,
) -> Result<()> {
    let rows: Vec<i64> = {
        let mut stmt = tx
            .prepare_cached("SELECT id FROM versions WHERE entry_id = ?1")
            .map_err(Error::sqlite("purging"))?;
        let rows = stmt
            .query_map([&ca.id], |r| r.get(0))
            .map_err(Error::sqlite("purging"))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(Error::sqlite("purging"))?
    };
    for row in rows {
        tx.execute("UPDATE versions SET key_sealed = NULL WHERE id = ?1", [row])
            .map_err(Error::sqlite("purging"))?;
        integrity::seal_one(tx, &keys.rows, &integrity::VERSIONS, &row)?;
    }
    tx.execute(
        "UPDATE cas SET state = 'deleted', audit_seq = ?2 WHERE id = ?1",
        params![ca.id, audit_seq],
    )
    .map_err(Error::sqlite("purging"))?;
    integrity::seal_one(tx, &keys.rows, &integrity::CAS, &ca.id)?;
    Ok(())
}

impl Vault {
    /// `ca disable`: the CA signs nothing until enabled again.
    pub(crate) fn ca_disable(&mut self, query: &str) -> Result<CaState> {
        self.ca_transition(query, "disable", |s| match s {
            CaState::Enabled | CaState::Disabled => Ok((CaState::Disabled, None)),
            CaState::PendingDeletion => Err(Refused::with(
                "it is pending-deletion",
                Remedy::CaCancelDeletion { ca: None },
            )),
            CaState::Deleted => Err("it is deleted: its key is destroyed".into()),
        })
    }

    /// `ca enable`: a disabled CA signs again.
    pub(crate) fn ca_enable(&mut self, query: &str) -> Result<CaState> {
        self.ca_transition(query, "enable", |s| match s {
            CaState::Enabled | CaState::Disabled => Ok((CaState::Enabled, None)),
            CaState::PendingDeletion => Err(Refused::with(
                "it is pending deletion",
                Remedy::CaCancelDeletion { ca: None },
            )),
            CaState::Deleted => Err("its key is destroyed".into()),
        })
    }

    /// `ca schedule-deletion`: pending deletion for `window_days` (7 to 30), after which
    /// its key is destroyed. The certificates it issued that are still in date.
    pub(crate) fn ca_schedule_deletion(
        &mut self,
        query: &str,
        window_days: u32,
    ) -> Result<(OffsetDateTime, Vec<String>)> {
        if !PENDING_WINDOW_DAYS.contains(&window_days) {
            return Err(ca_error(
                query,
                format!("--pending-window-days {window_days} is outside 7 to 30 (KMS's rule)"),
            ));
        }
        let at = now_unix() + i64::from(window_days) * 86_400;
        self.ca_transition(query, "schedule-deletion", |s| match s {
            CaState::Enabled | CaState::Disabled => Ok((CaState::PendingDeletion, Some(at))),
            CaState::PendingDeletion => Err(Refused::with(
                "it is pending deletion already",
                Remedy::CaDeletionDate,
            )),
            CaState::Deleted => Err("its key is destroyed already".into()),
        })?;
        let live = self.ca_live_certificates(query)?;
        Ok((from_unix(at), live))
    }

    /// `ca cancel-deletion`: back to disabled.
    pub(crate) fn ca_cancel_deletion(&mut self, query: &str) -> Result<CaState> {
        self.ca_transition(query, "cancel-deletion", |s| match s {
            CaState::PendingDeletion => Ok((CaState::Disabled, None)),
            other => Err(format!("it is {other}, not pending deletion").into()),
        })
    }

    /// The names of the certificates a CA issued that are still in date and not revoked.
    pub(crate) fn ca_live_certificates(&self, query: &str) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT e.name FROM cas c JOIN issued i ON i.ca_id = c.id
                 JOIN entries e ON e.id = i.entry_id JOIN versions v ON v.id = e.current_version
                 WHERE (c.id = ?1 OR c.name = ?1 COLLATE NOCASE) AND v.not_after > ?2
                   AND NOT EXISTS (SELECT 1 FROM revocations r WHERE r.ca_id = c.id AND r.serial = v.serial)
                 ORDER BY e.name",
            )
            .map_err(Error::sqlite("listing certificates"))?;
        let rows = stmt
            .query_map(params![query, now_unix()], |r| r.get(0))
            .map_err(Error::sqlite("listing certificates"))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(Error::sqlite("listing certificates"))
    }

    /// `ca purge`: destroys the key of a CA whose waiting window is over (nothing before).
    /// Whether a key was destroyed.
    pub(crate) fn ca_purge(&mut self, query: &str) -> Result<bool> {
        self.ca_purge_at(query, now_unix())
    }

    /// [`Vault::ca_purge`] as if it were `now` (unix seconds): the waiting window is tested
    /// with a clock the test sets, not by waiting a week.
    pub(crate) fn ca_purge_at(&mut self, query: &str, now: i64) -> Result<bool> {
        let r = self.ca_purge_checked(query, now);
        self.audit_refusal(r, "destroying a CA's key")
    }

    pub(super) fn ca_purge_checked(&mut self, query: &str, now: i64) -> Result<bool> {
        // Checked from here on; written only if nothing changed meanwhile.
        let seen = self.conn.data_version()?;
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        let ca = self.read_ca(query)?;
        match ca.state {
            CaState::Deleted => return Ok(false),
            CaState::PendingDeletion if ca.deletion_at.is_some_and(|at| at <= now) => {}
            CaState::PendingDeletion => {
                return Err(ca_error(
                    &ca.name,
                    format!(
                        "its waiting window ends on {}: its key is destroyed only after that",
                        crate::text::timestamp(from_unix(ca.deletion_at.unwrap_or(0)))
                    ),
                ));
            }
            other => {
                return Err(ca_error(
                    &ca.name,
                    format!("it is {other}: only a CA pending deletion is purged"),
                ));
            }
        }
        let actor = self.actor.clone();
        let tx = self.conn.write_unchanged("purging", seen)?;
        let seq = audit::append(
            &tx,
            &keys.audit,
            &actor,
            "ca-purge",
            Some((&ca.id, &ca.name)),
            "the CA's waiting window ended: its key is destroyed",
        )?;
        destroy_key(&tx, keys, &ca, seq)?;
        tx.commit().map_err(Error::sqlite("purging"))?;
        let _ = self.scrub();
        Ok(true)
    }

    /// Purges every CA whose waiting window is over (the agent and `ca list` call this).
    pub(crate) fn ca_purge_due(&mut self) -> Result<Vec<String>> {
        self.ca_purge_due_at(now_unix())
    }

    /// [`Vault::ca_purge_due`] as if it were `now` (unix seconds).
    pub(crate) fn ca_purge_due_at(&mut self, now: i64) -> Result<Vec<String>> {
        let due: Vec<String> = {
            let mut stmt = self
                .conn
                .prepare_cached(
                    "SELECT name FROM cas WHERE state = 'pending-deletion' AND deletion_at <= ?1",
                )
                .map_err(Error::sqlite("reading CAs"))?;
            let rows = stmt
                .query_map([now], |r| r.get(0))
                .map_err(Error::sqlite("reading CAs"))?;
            rows.collect::<rusqlite::Result<_>>()
                .map_err(Error::sqlite("reading CAs"))?
        };
        let mut done = Vec::new();
        // One CA that cannot be purged (a damaged row) does not keep the others' keys alive.
        let mut first_error = None;
        for name in due {
            match self.ca_purge_at(&name, now) {
                Ok(true) => done.push(name),
                Ok(false) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error
            && done.is_empty()
        {
            return Err(e);
        }
        Ok(done)
    }

    pub(super) fn ca_transition(
        &mut self,
        query: &str,
        action: &str,
        next: impl FnOnce(CaState) -> std::result::Result<(CaState, Option<i64>), Refused>,
    ) -> Result<CaState> {
        let r = self.ca_transition_checked(query, action, next);
        self.audit_refusal(r, &format!("ca {action}"))
    }

    pub(super) fn ca_transition_checked(
        &mut self,
        query: &str,
        action: &str,
        next: impl FnOnce(CaState) -> std::result::Result<(CaState, Option<i64>), Refused>,
    ) -> Result<CaState> {
        // Checked from here on; written only if nothing changed meanwhile.
        let seen = self.conn.data_version()?;
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        let ca = self.read_ca(query)?;
        let (state, at) = next(ca.state).map_err(|why| Error::Ca {
            ca: ca.name.clone(),
            problem: format!("cannot {action}: {}", why.why),
            remedy: why.remedy.map(Box::new),
        })?;
        let actor = self.actor.clone();
        let tx = self.conn.write_unchanged("changing the CA", seen)?;
        let seq = audit::append(
            &tx,
            &keys.audit,
            &actor,
            &format!("ca-{action}"),
            Some((&ca.id, &ca.name)),
            &match at {
                Some(at) => format!(
                    "{} -> {state}; its key is destroyed after {}",
                    ca.state,
                    crate::text::timestamp(from_unix(at))
                ),
                None => format!("{} -> {state}", ca.state),
            },
        )?;
        tx.execute(
            "UPDATE cas SET state = ?2, deletion_at = ?3, audit_seq = ?4 WHERE id = ?1",
            params![ca.id, state.as_str(), at, seq],
        )
        .map_err(Error::sqlite("changing the CA"))?;
        integrity::seal_one(&tx, &keys.rows, &integrity::CAS, &ca.id)?;
        tx.commit().map_err(Error::sqlite("changing the CA"))?;
        Ok(state)
    }
}

/// Why a CA cannot change state, and what a person can do about it.
pub(super) struct Refused {
    why: String,
    remedy: Option<Remedy>,
}

impl Refused {
    fn with(why: &str, remedy: Remedy) -> Refused {
        Refused {
            why: why.to_owned(),
            remedy: Some(remedy),
        }
    }
}

impl From<&str> for Refused {
    fn from(why: &str) -> Refused {
        Refused {
            why: why.to_owned(),
            remedy: None,
        }
    }
}

impl From<String> for Refused {
    fn from(why: String) -> Refused {
        Refused { why, remedy: None }
    }
}
