//! The audit log: one event per change, written in the change's own transaction, chained
//! with an HMAC keyed from the data key so an edited, reordered or deleted event is found.
//!
//! `mac[n] = HMAC(K_audit, len-prefixed(seq, at, actor, action, entry_id, entry_name, detail, mac[n-1]))`,
//! and the vault header keeps `HMAC(K_audit, "head" || seq || mac[seq])` of the newest
//! event, so removing events from the end is found too. Rolling the whole file back to an
//! older copy is not detectable from inside the file; keep backups' hashes elsewhere.

use crate::sql::Cached as _;
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
    encode_into(
        &mut out,
        &Fields {
            seq: ev.seq,
            at_nanos: ev.at.unix_timestamp_nanos(),
            actor: ev.actor.as_bytes(),
            action: ev.action.as_bytes(),
            entry_id: ev.entry_id.as_deref().map(str::as_bytes),
            entry_name: ev.entry_name.as_deref().map(str::as_bytes),
            detail: ev.detail.as_bytes(),
        },
        prev_mac,
    );
    out
}

/// An event's columns as stored, borrowed from the row (walks of the whole log read them
/// without copying).
struct Fields<'a> {
    seq: i64,
    at_nanos: i128,
    actor: &'a [u8],
    action: &'a [u8],
    entry_id: Option<&'a [u8]>,
    entry_name: Option<&'a [u8]>,
    detail: &'a [u8],
}

impl<'a> Fields<'a> {
    /// Columns 0 to 6 of `SELECT seq, at_us, actor, action, entry_id, entry_name, detail`.
    fn of(r: &'a rusqlite::Row<'_>) -> rusqlite::Result<Fields<'a>> {
        let bad = |i: usize, e: rusqlite::types::FromSqlError| {
            rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
        };
        let text = |i: usize| -> rusqlite::Result<&'a [u8]> {
            r.get_ref(i)?.as_bytes().map_err(|e| bad(i, e))
        };
        let opt = |i: usize| -> rusqlite::Result<Option<&'a [u8]>> {
            r.get_ref(i)?.as_bytes_or_null().map_err(|e| bad(i, e))
        };
        let at_us: i64 = r.get(1)?;
        Ok(Fields {
            seq: r.get(0)?,
            // As `event_of` reads it (a time out of range reads as the epoch).
            at_nanos: OffsetDateTime::from_unix_timestamp_nanos(i128::from(at_us) * 1000)
                .map_or(0, |t| t.unix_timestamp_nanos()),
            actor: text(2)?,
            action: text(3)?,
            entry_id: opt(4)?,
            entry_name: opt(5)?,
            detail: text(6)?,
        })
    }
}

fn encode_into(out: &mut Vec<u8>, f: &Fields<'_>, prev_mac: &[u8]) {
    out.clear();
    let mut field = |b: &[u8]| {
        out.extend_from_slice(&(b.len() as u64).to_be_bytes());
        out.extend_from_slice(b);
    };
    field(&f.seq.to_be_bytes());
    field(&f.at_nanos.to_be_bytes());
    field(f.actor);
    field(f.action);
    field(f.entry_id.unwrap_or(b"\0none"));
    field(f.entry_name.unwrap_or(b"\0none"));
    field(f.detail);
    field(prev_mac);
}

fn head_input(seq: i64, mac: &[u8]) -> Vec<u8> {
    let mut v = b"head".to_vec();
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend_from_slice(mac);
    v
}

/// Appends an event and returns its number. Call inside the transaction that makes the
/// change (a row that records what only grows carries this number in its MAC).
pub(crate) fn append(
    conn: &Connection,
    key: &Key,
    actor: &str,
    action: &str,
    entry: Option<(&str, &str)>,
    detail: &str,
) -> Result<i64> {
    let mut events = Appender::start(conn, key)?;
    let seq = events.push(conn, key, actor, action, entry, detail)?;
    events.finish(conn, key)?;
    Ok(seq)
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
    /// Starts after the newest event, once the header's head is checked against it: a log
    /// whose newest events were removed is not written to (an event appended after them
    /// would write a head that hides the removal).
    pub(crate) fn start(conn: &Connection, key: &Key) -> Result<Appender> {
        let last: Option<(i64, Vec<u8>)> = conn
            .row_cached(
                "SELECT seq, mac FROM audit ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(Error::sqlite("reading the audit log"))?;
        let (seq, mac) = last.unwrap_or((0, Vec::new()));
        if let Some(what) = head_problem(conn, key, seq, &mac)? {
            return Err(Error::AuditTampered { what });
        }
        Ok(Appender {
            seq,
            mac,
            pushed: false,
        })
    }

    /// Writes one event, chained to the one before; its number.
    pub(crate) fn push(
        &mut self,
        conn: &Connection,
        key: &Key,
        actor: &str,
        action: &str,
        entry: Option<(&str, &str)>,
        detail: &str,
    ) -> Result<i64> {
        let now = OffsetDateTime::now_utc();
        // Stored with microsecond precision; MAC the stored value.
        let at =
            OffsetDateTime::from_unix_timestamp_nanos(now.unix_timestamp_nanos() / 1000 * 1000)
                .expect("in range");
        // Every vault's log starts with its `init` event, written when it is made: an empty
        // log later is one whose events were all deleted, and a new chain started on it
        // would hide that.
        if self.seq == 0 && action != "init" {
            return Err(Error::AuditTampered {
                what: "the audit log is empty (every vault's log starts with its init event): its events were deleted".into(),
            });
        }
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
        Ok(ev.seq)
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
        .query_map([], event_of)
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
    let mut stmt = conn
        .prepare_cached(
            "SELECT seq, at_us, actor, action, entry_id, entry_name, detail FROM audit
             WHERE seq <= ?1 ORDER BY seq",
        )
        .map_err(Error::sqlite("reading the audit log"))?;
    let mut rows = stmt
        .query([upto.unwrap_or(i64::MAX)])
        .map_err(Error::sqlite("reading the audit log"))?;
    let mut buf = Vec::with_capacity(512);
    while let Some(r) = rows
        .next()
        .map_err(Error::sqlite("reading the audit log"))?
    {
        let f = Fields::of(r).map_err(Error::sqlite("reading the audit log"))?;
        encode_into(&mut buf, &f, &[]);
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(b"certvault/audit-anchor/v1\0");
        ctx.update(&h);
        ctx.update(&buf);
        h.copy_from_slice(ctx.finish().as_ref());
        found = Some(f.seq);
        if upto == Some(f.seq) {
            break;
        }
    }
    let found = found.map(|seq| (seq, hex::encode(h)));
    Ok(match (upto, found) {
        (Some(n), Some((seq, d))) if seq == n => Some((seq, d)),
        (Some(_), _) => None,
        (None, f) => f,
    })
}

/// An anchor: an event's number and the digest chained up to it.
pub(crate) type Anchor = (i64, String);

/// The digest of event `at` (if the log holds it) and the newest anchor, in one walk (the
/// agent checks the anchor it kept and keeps the newest).
pub(crate) fn anchors(conn: &Connection, at: i64) -> Result<(Option<String>, Option<Anchor>)> {
    anchors_from(conn, (0, [0u8; 32]), at)
}

/// [`anchors`], the chain taken up after event `start.0`, whose digest is `start.1` (the
/// caller knows it holds; event 0 and zeros: from the start).
pub(crate) fn anchors_from(
    conn: &Connection,
    start: (i64, [u8; 32]),
    at: i64,
) -> Result<(Option<String>, Option<Anchor>)> {
    let mut h = start.1;
    let (mut at_digest, mut last) = (None, (start.0 > 0).then_some(start.0));
    let mut stmt = conn
        .prepare_cached(
            "SELECT seq, at_us, actor, action, entry_id, entry_name, detail FROM audit
             WHERE seq > ?1 ORDER BY seq",
        )
        .map_err(Error::sqlite("reading the audit log"))?;
    let mut rows = stmt
        .query([start.0])
        .map_err(Error::sqlite("reading the audit log"))?;
    let mut buf = Vec::with_capacity(512);
    while let Some(r) = rows
        .next()
        .map_err(Error::sqlite("reading the audit log"))?
    {
        let f = Fields::of(r).map_err(Error::sqlite("reading the audit log"))?;
        encode_into(&mut buf, &f, &[]);
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(b"certvault/audit-anchor/v1\0");
        ctx.update(&h);
        ctx.update(&buf);
        h.copy_from_slice(ctx.finish().as_ref());
        if f.seq == at {
            at_digest = Some(hex::encode(h));
        }
        last = Some(f.seq);
    }
    Ok((at_digest, last.map(|seq| (seq, hex::encode(h)))))
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

/// What is wrong with the header's head, given the newest event (`last_seq` 0: the log is
/// empty), if anything.
pub(crate) fn head_problem(
    conn: &Connection,
    key: &Key,
    last_seq: i64,
    last_mac: &[u8],
) -> Result<Option<String>> {
    let head: Option<String> = conn
        .row_cached("SELECT value FROM meta WHERE key = ?1", [HEAD_KEY], |r| {
            r.get(0)
        })
        .optional()
        .map_err(Error::sqlite("reading the audit log"))?;
    if last_seq == 0 && head.is_none() {
        return Ok(None);
    }
    let head_ok = head
        .as_deref()
        .and_then(|h| h.split_once(':'))
        .and_then(|(seq, tag)| Some((seq.parse::<i64>().ok()?, hex::decode(tag).ok()?)))
        .filter(|(seq, _)| *seq == last_seq)
        .is_some_and(|(seq, tag)| key.verify_mac(&head_input(seq, last_mac), &tag));
    if head_ok {
        return Ok(None);
    }
    let recorded = head
        .as_deref()
        .and_then(|h| h.split_once(':'))
        .map(|(s, _)| s.to_owned())
        .unwrap_or_else(|| "nothing".into());
    Ok(Some(format!(
        "the log ends at event #{last_seq} but the vault header records #{recorded}: events were removed from the end, or the header was altered"
    )))
}

/// The end of a checked stretch of the chain: the newest event's number and MAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Checked {
    /// The newest event's number (0: the log is empty).
    pub(crate) seq: i64,
    /// Its MAC.
    pub(crate) mac: Vec<u8>,
}

/// Checks the chain from event `from` to the newest one, and the header's head: each
/// event's number follows the one before and its MAC verifies, the first against `prev`
/// (the MAC stored before it when `None`). Streams the events: memory does not grow with
/// the log.
pub(crate) fn verify_from(
    conn: &Connection,
    key: &Key,
    from: i64,
    prev: Option<Vec<u8>>,
) -> Result<std::result::Result<Checked, AuditProblem>> {
    let from = from.max(1);
    let mut prev_mac = match prev {
        Some(p) => p,
        None if from == 1 => Vec::new(),
        None => {
            let stored: Option<Vec<u8>> = conn
                .row_cached("SELECT mac FROM audit WHERE seq = ?1", [from - 1], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(Error::sqlite("reading the audit log"))?;
            match stored {
                Some(m) => m,
                None => {
                    return Ok(Err(AuditProblem {
                        seq: from - 1,
                        what: format!("event #{} is missing", from - 1),
                    }));
                }
            }
        }
    };
    let mut stmt = conn
        .prepare_cached(
            "SELECT seq, at_us, actor, action, entry_id, entry_name, detail, mac FROM audit
             WHERE seq >= ?1 ORDER BY seq",
        )
        .map_err(Error::sqlite("reading the audit log"))?;
    let mut rows = stmt
        .query([from])
        .map_err(Error::sqlite("reading the audit log"))?;
    let mut expected = from;
    let hmac = key.hmac_key();
    let mut buf = Vec::with_capacity(512);
    while let Some(r) = rows
        .next()
        .map_err(Error::sqlite("reading the audit log"))?
    {
        let f = Fields::of(r).map_err(Error::sqlite("reading the audit log"))?;
        if f.seq == 1 && f.action != b"init" {
            return Ok(Err(AuditProblem {
                seq: 1,
                what: format!(
                    "event #1 is {}, not the vault's init: the log was started again after its events were deleted",
                    String::from_utf8_lossy(f.action)
                ),
            }));
        }
        if f.seq != expected {
            return Ok(Err(AuditProblem {
                seq: expected,
                what: format!(
                    "event #{expected} is missing (the log jumps from #{} to #{})",
                    expected - 1,
                    f.seq
                ),
            }));
        }
        let mac: &[u8] = match r
            .get_ref(7)
            .map_err(Error::sqlite("reading the audit log"))?
        {
            rusqlite::types::ValueRef::Blob(b) => b,
            _ => &[],
        };
        encode_into(&mut buf, &f, &prev_mac);
        if ring::hmac::verify(&hmac, &buf, mac).is_err() {
            return Ok(Err(AuditProblem {
                seq: f.seq,
                what: format!(
                    "event #{} ({}) was altered: its MAC does not verify",
                    f.seq,
                    String::from_utf8_lossy(f.action)
                ),
            }));
        }
        prev_mac.clear();
        prev_mac.extend_from_slice(mac);
        expected += 1;
    }
    let last_seq = expected - 1;
    if last_seq == 0 {
        return Ok(Err(AuditProblem {
            seq: 1,
            what: "the audit log is empty (every vault's log starts with its init event): its events were deleted".into(),
        }));
    }
    if let Some(what) = head_problem(conn, key, last_seq, &prev_mac)? {
        return Ok(Err(AuditProblem {
            seq: last_seq + 1,
            what,
        }));
    }
    Ok(Ok(Checked {
        seq: last_seq,
        mac: prev_mac,
    }))
}

fn event_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<(AuditEvent, Vec<u8>)> {
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
}

/// Walks the chain and reports the first event that does not verify.
pub(crate) fn verify(conn: &Connection, key: &Key) -> Result<AuditReport> {
    let events: i64 = conn
        .query_row("SELECT count(*) FROM audit", [], |r| r.get(0))
        .map_err(Error::sqlite("reading the audit log"))?;
    Ok(AuditReport {
        events,
        problem: verify_from(conn, key, 1, Some(Vec::new()))?.err(),
    })
}
