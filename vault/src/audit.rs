//! The audit log: one event per change, written in the change's own transaction, chained
//! with an HMAC keyed from the data key so an edited, reordered or deleted event is found.
//!
//! `mac[n] = HMAC(K_audit, len-prefixed(seq, at, actor, action, entry_id, entry_name, detail, mac[n-1]))`,
//! and the vault header keeps `HMAC(K_audit, "head" || seq || mac[seq])` of the newest
//! event, so removing events from the end is found too. Rolling the whole file back to an
//! older copy is not detectable from inside the file; keep backups' hashes elsewhere.

use crate::schema::Cached as _;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use time::OffsetDateTime;

use crate::{
    crypto::Key,
    error::{Error, Result},
};

/// One audit event.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEvent {
    /// Sequence number, from 1.
    pub seq: i64,
    /// When it happened.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Who did it (the operating-system user).
    pub actor: String,
    /// What was done (`init`, `import`, `renew`, `remove`, `export-key`, ...).
    pub action: String,
    /// The entry it concerns, if any.
    pub entry_id: Option<String>,
    /// The entry's name at the time.
    pub entry_name: Option<String>,
    /// Details (never secrets).
    pub detail: String,
}

/// The outcome of `log verify`.
#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    /// How many events were checked.
    pub events: i64,
    /// The first problem found, if any.
    pub problem: Option<AuditProblem>,
}

/// The first bad event.
#[derive(Debug, Clone, Serialize)]
pub struct AuditProblem {
    /// The event's sequence number (or where one is missing).
    pub seq: i64,
    /// What is wrong with it.
    pub what: String,
}

const HEAD_KEY: &str = "audit_head";

fn encode(ev: &AuditEvent, prev_mac: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    let mut field = |b: &[u8]| {
        out.extend_from_slice(&(b.len() as u64).to_be_bytes());
        out.extend_from_slice(b);
    };
    field(&ev.seq.to_be_bytes());
    field(&ev.at.unix_timestamp_nanos().to_be_bytes());
    field(ev.actor.as_bytes());
    field(ev.action.as_bytes());
    field(ev.entry_id.as_deref().unwrap_or("\0none").as_bytes());
    field(ev.entry_name.as_deref().unwrap_or("\0none").as_bytes());
    field(ev.detail.as_bytes());
    field(prev_mac);
    out
}

fn head_input(seq: i64, mac: &[u8]) -> Vec<u8> {
    let mut v = b"head".to_vec();
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend_from_slice(mac);
    v
}

/// Appends an event. Call inside the transaction that makes the change.
pub(crate) fn append(
    conn: &Connection,
    key: &Key,
    actor: &str,
    action: &str,
    entry: Option<(&str, &str)>,
    detail: &str,
) -> Result<()> {
    let mut events = Appender::start(conn)?;
    events.push(conn, key, actor, action, entry, detail)?;
    events.finish(conn, key)
}

/// Appends several events in one transaction (a batch issuance): the newest event is read
/// once, and the header's head written once, by [`Appender::finish`], which must run
/// before the commit (a head left behind reads as events deleted from the end).
#[must_use = "finish() writes the head; without it the log reads as trimmed"]
pub(crate) struct Appender {
    seq: i64,
    mac: Vec<u8>,
    pushed: bool,
}

impl Appender {
    pub(crate) fn start(conn: &Connection) -> Result<Appender> {
        let last: Option<(i64, Vec<u8>)> = conn
            .row_cached(
                "SELECT seq, mac FROM audit ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(Error::sqlite("reading the audit log"))?;
        let (seq, mac) = last.unwrap_or((0, Vec::new()));
        Ok(Appender {
            seq,
            mac,
            pushed: false,
        })
    }

    /// Writes one event, chained to the one before.
    pub(crate) fn push(
        &mut self,
        conn: &Connection,
        key: &Key,
        actor: &str,
        action: &str,
        entry: Option<(&str, &str)>,
        detail: &str,
    ) -> Result<()> {
        let now = OffsetDateTime::now_utc();
        // Stored with microsecond precision; MAC the stored value.
        let at =
            OffsetDateTime::from_unix_timestamp_nanos(now.unix_timestamp_nanos() / 1000 * 1000)
                .expect("in range");
        let ev = AuditEvent {
            seq: self.seq + 1,
            at,
            actor: actor.to_owned(),
            action: action.to_owned(),
            entry_id: entry.map(|e| e.0.to_owned()),
            entry_name: entry.map(|e| e.1.to_owned()),
            detail: detail.to_owned(),
        };
        let mac = key.mac(&encode(&ev, &self.mac));
        conn.exec_cached(
            "INSERT INTO audit (seq, at_us, actor, action, entry_id, entry_name, detail, mac)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                ev.seq,
                (ev.at.unix_timestamp_nanos() / 1000) as i64,
                ev.actor,
                ev.action,
                ev.entry_id,
                ev.entry_name,
                ev.detail,
                &mac[..]
            ],
        )
        .map_err(Error::sqlite("writing the audit log"))?;
        self.seq = ev.seq;
        self.mac = mac.to_vec();
        self.pushed = true;
        Ok(())
    }

    /// Writes the head for the newest event pushed.
    pub(crate) fn finish(self, conn: &Connection, key: &Key) -> Result<()> {
        if !self.pushed {
            return Ok(());
        }
        // Nothing else may have appended meanwhile: the head is for the newest event.
        let newest: i64 = conn
            .row_cached("SELECT coalesce(max(seq), 0) FROM audit", [], |r| r.get(0))
            .map_err(Error::sqlite("reading the audit log"))?;
        if newest != self.seq {
            return Err(Error::Sqlite {
                context: "writing the audit log (an event was appended outside the batch)",
                source: rusqlite::Error::InvalidQuery,
            });
        }
        let head = key.mac(&head_input(self.seq, &self.mac));
        conn.exec_cached(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![HEAD_KEY, format!("{}:{}", self.seq, hex::encode(head))],
        )
        .map_err(Error::sqlite("writing the audit log"))?;
        Ok(())
    }
}

fn read_all(conn: &Connection) -> Result<Vec<(AuditEvent, Vec<u8>)>> {
    let mut stmt = conn
        .prepare("SELECT seq, at_us, actor, action, entry_id, entry_name, detail, mac FROM audit ORDER BY seq")
        .map_err(Error::sqlite("reading the audit log"))?;
    let rows = stmt
        .query_map([], |r| {
            let at_us: i64 = r.get(1)?;
            Ok((
                AuditEvent {
                    seq: r.get(0)?,
                    at: OffsetDateTime::from_unix_timestamp_nanos(i128::from(at_us) * 1000)
                        .unwrap_or(OffsetDateTime::UNIX_EPOCH),
                    actor: r.get(2)?,
                    action: r.get(3)?,
                    entry_id: r.get(4)?,
                    entry_name: r.get(5)?,
                    detail: r.get(6)?,
                },
                r.get::<_, Vec<u8>>(7)?,
            ))
        })
        .map_err(Error::sqlite("reading the audit log"))?;
    rows.collect::<rusqlite::Result<Vec<_>>>()
        .map_err(Error::sqlite("reading the audit log"))
}

/// The anchor of event `upto` (the newest when `None`): its number and a SHA-256 chained
/// over every event's content up to it (the MACs left out, so rotating the data key, which
/// re-keys the MACs, keeps anchors valid). Kept outside the vault (a ticket, journald), it
/// shows a trimmed or rolled-back log: `log verify --expect-head N:DIGEST`.
pub(crate) fn anchor(conn: &Connection, upto: Option<i64>) -> Result<Option<(i64, String)>> {
    let mut h = [0u8; 32];
    let mut found = None;
    for (ev, _) in read_all(conn)? {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(b"certvault/audit-anchor/v1\0");
        ctx.update(&h);
        ctx.update(&encode(&ev, &[]));
        h.copy_from_slice(ctx.finish().as_ref());
        found = Some((ev.seq, hex::encode(h)));
        if upto == Some(ev.seq) {
            break;
        }
    }
    Ok(match (upto, found) {
        (Some(n), Some((seq, d))) if seq == n => Some((seq, d)),
        (Some(_), _) => None,
        (None, f) => f,
    })
}

/// MACs every event again under `key` (after the data key was rotated), in order.
pub(crate) fn rekey(conn: &Connection, key: &Key) -> Result<()> {
    let mut prev: Vec<u8> = Vec::new();
    let mut last = 0;
    for (ev, _) in read_all(conn)? {
        let mac = key.mac(&encode(&ev, &prev));
        conn.execute(
            "UPDATE audit SET mac = ?2 WHERE seq = ?1",
            params![ev.seq, &mac[..]],
        )
        .map_err(Error::sqlite("re-keying the audit log"))?;
        prev = mac.to_vec();
        last = ev.seq;
    }
    let head = key.mac(&head_input(last, &prev));
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![HEAD_KEY, format!("{last}:{}", hex::encode(head))],
    )
    .map_err(Error::sqlite("re-keying the audit log"))?;
    Ok(())
}

/// Every event, oldest first (no verification).
pub(crate) fn events(conn: &Connection) -> Result<Vec<AuditEvent>> {
    Ok(read_all(conn)?.into_iter().map(|(e, _)| e).collect())
}

/// Walks the chain and reports the first event that does not verify.
pub(crate) fn verify(conn: &Connection, key: &Key) -> Result<AuditReport> {
    let all = read_all(conn)?;
    let mut prev_mac: Vec<u8> = Vec::new();
    let mut expected_seq = 1;
    let count = all.len() as i64;
    for (ev, mac) in &all {
        if ev.seq != expected_seq {
            return Ok(AuditReport {
                events: count,
                problem: Some(AuditProblem {
                    seq: expected_seq,
                    what: format!(
                        "event #{expected_seq} is missing (the log jumps from #{} to #{})",
                        expected_seq - 1,
                        ev.seq
                    ),
                }),
            });
        }
        if !key.verify_mac(&encode(ev, &prev_mac), mac) {
            return Ok(AuditReport {
                events: count,
                problem: Some(AuditProblem {
                    seq: ev.seq,
                    what: format!(
                        "event #{} ({}) was altered: its MAC does not verify",
                        ev.seq, ev.action
                    ),
                }),
            });
        }
        prev_mac.clone_from(mac);
        expected_seq += 1;
    }
    let head: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [HEAD_KEY], |r| {
            r.get(0)
        })
        .optional()
        .map_err(Error::sqlite("reading the audit log"))?;
    let last_seq = expected_seq - 1;
    let head_ok = head
        .as_deref()
        .and_then(|h| h.split_once(':'))
        .and_then(|(seq, tag)| Some((seq.parse::<i64>().ok()?, hex::decode(tag).ok()?)))
        .filter(|(seq, _)| *seq == last_seq)
        .is_some_and(|(seq, tag)| key.verify_mac(&head_input(seq, &prev_mac), &tag));
    if !head_ok {
        let recorded = head
            .as_deref()
            .and_then(|h| h.split_once(':'))
            .map(|(s, _)| s.to_owned())
            .unwrap_or_else(|| "nothing".into());
        return Ok(AuditReport {
            events: count,
            problem: Some(AuditProblem {
                seq: last_seq + 1,
                what: format!(
                    "the log ends at event #{last_seq} but the vault header records #{recorded}: events were removed from the end, or the header was altered"
                ),
            }),
        });
    }
    Ok(AuditReport {
        events: count,
        problem: None,
    })
}
