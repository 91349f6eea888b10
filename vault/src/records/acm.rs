//! What the vault remembers about certificates seen in ACM (and IAM): one row per ARN, the
//! entry it holds (if its certificate could be read), and when it was last seen or found gone.
//!
//! The vault knows nothing of AWS: the agent hands it plain observations. Merging a scan
//! into entries is `entries::discovered`; this module holds the records and their SQL.

use std::collections::BTreeMap;

use rusqlite::{OptionalExtension, Transaction, params};
use serde::Serialize;
use time::OffsetDateTime;

use super::{CertificateStatus, CertificateType, ValidationMethod};
use crate::{
    error::{Error, Result},
    integrity::{self, audit},
    store::{Vault, now_unix},
};

/// Where certificates were looked for: a named target (account, profile or role) and a region.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Location {
    /// The target's name from the configuration (`default` without one).
    pub target: String,
    /// The AWS account id.
    pub account: String,
    /// The region (`global` for IAM).
    pub region: String,
}

/// A DNS record ACM asks for to validate a domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct DnsRecord {
    /// The domain being validated.
    pub domain: String,
    /// Record name.
    pub name: String,
    /// Record type (CNAME).
    #[serde(rename = "type")]
    pub record_type: String,
    /// Record value.
    pub value: String,
}

/// What a listing says about one certificate (cheap: no Describe or Get).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AcmSummary {
    /// The certificate's ARN.
    pub arn: String,
    /// `IMPORTED`, `AMAZON_ISSUED`, `PRIVATE`, or `IAM`.
    pub kind: CertificateType,
    /// `ISSUED`, `PENDING_VALIDATION`, `EXPIRED`, `FAILED`, ...
    pub status: CertificateStatus,
    /// Main domain name.
    pub domain: String,
    /// Subject alternative names, as far as known.
    pub sans: Vec<String>,
    /// Key algorithm in ACM's naming.
    pub key_algorithm: Option<String>,
    /// Whether anything uses it.
    pub in_use: Option<bool>,
    /// `ELIGIBLE` or `INELIGIBLE`.
    pub renewal_eligibility: Option<String>,
    /// Start of validity.
    #[serde(with = "time::serde::rfc3339::option")]
    pub not_before: Option<OffsetDateTime>,
    /// End of validity.
    #[serde(with = "time::serde::rfc3339::option")]
    pub not_after: Option<OffsetDateTime>,
    /// When it was (re)imported.
    #[serde(with = "time::serde::rfc3339::option")]
    pub imported_at: Option<OffsetDateTime>,
    /// When Amazon issued it.
    #[serde(with = "time::serde::rfc3339::option")]
    pub issued_at: Option<OffsetDateTime>,
    /// When the ARN was created.
    #[serde(with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
}

/// What a Describe call adds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AcmDetail {
    /// ARNs of what uses the certificate (load balancers, distributions, ...).
    pub in_use_by: Vec<String>,
    /// `DNS` or `EMAIL` (of the first domain), for Amazon-issued certificates.
    pub validation_method: Option<ValidationMethod>,
    /// DNS validation records.
    pub validation_records: Vec<DnsRecord>,
    /// Why issuance failed, if it did.
    pub failure_reason: Option<String>,
    /// Per name: how it is validated and how far (from the latest Describe; not stored).
    #[serde(skip)]
    pub names: Vec<NameValidation>,
    /// The serial number as ACM gives it (`0a:1b:...`; not stored).
    #[serde(skip)]
    pub serial: Option<String>,
    /// The AWS Private CA that issued it, for a private certificate (not stored).
    #[serde(skip)]
    pub ca_arn: Option<String>,
}

/// How one name of a requested certificate is validated, and how far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NameValidation {
    /// The name.
    pub domain: String,
    /// `DNS` or `EMAIL`.
    pub method: Option<ValidationMethod>,
    /// `PENDING_VALIDATION`, `SUCCESS` or `FAILED`.
    pub status: Option<String>,
}

/// The vault's record of one ARN: the latest summary and detail, and where it lives.
#[derive(Debug, Clone, Serialize)]
pub struct AcmRecord {
    /// Where it lives.
    #[serde(flatten)]
    pub location: Location,
    /// The latest summary.
    #[serde(flatten)]
    pub summary: AcmSummary,
    /// The latest detail.
    #[serde(flatten)]
    pub detail: AcmDetail,
    /// SHA-256 of the certificate last read from it.
    pub fingerprint_sha256: Option<String>,
    /// The vault entry holding that certificate.
    pub entry_id: Option<crate::ids::EntryId>,
    /// When it was first seen.
    #[serde(with = "time::serde::rfc3339")]
    pub first_seen: OffsetDateTime,
    /// When it was last seen.
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen: OffsetDateTime,
    /// When a complete scan of its region no longer found it.
    #[serde(with = "time::serde::rfc3339::option")]
    pub gone_at: Option<OffsetDateTime>,
}

pub(crate) fn ts(v: Option<i64>) -> Option<OffsetDateTime> {
    v.and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
}

pub(crate) fn unix(v: Option<OffsetDateTime>) -> Option<i64> {
    v.map(OffsetDateTime::unix_timestamp)
}

pub(crate) const RECORD_SELECT: &str = "SELECT arn, target, account, region, kind, status, domain, sans, key_algorithm, in_use,
        in_use_by, renewal_eligibility, validation_method, validation_records, failure_reason, not_before, not_after,
        imported_at, issued_at, created_at, fingerprint, entry_id, first_seen, last_seen, gone_at
    FROM acm_certificates";

pub(crate) fn record_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AcmRecord> {
    let json_vec = |s: String| serde_json::from_str(&s).unwrap_or_default();
    Ok(AcmRecord {
        summary: AcmSummary {
            arn: r.get(0)?,
            kind: r.get(4)?,
            status: r.get(5)?,
            domain: r.get(6)?,
            sans: json_vec(r.get(7)?),
            key_algorithm: r.get(8)?,
            in_use: r.get(9)?,
            renewal_eligibility: r.get(11)?,
            not_before: ts(r.get(15)?),
            not_after: ts(r.get(16)?),
            imported_at: ts(r.get(17)?),
            issued_at: ts(r.get(18)?),
            created_at: ts(r.get(19)?),
        },
        location: Location {
            target: r.get(1)?,
            account: r.get(2)?,
            region: r.get(3)?,
        },
        detail: AcmDetail {
            in_use_by: json_vec(r.get(10)?),
            validation_method: r.get(12)?,
            validation_records: serde_json::from_str(&r.get::<_, String>(13)?).unwrap_or_default(),
            failure_reason: r.get(14)?,
            ..Default::default()
        },
        fingerprint_sha256: r.get(20)?,
        entry_id: r.get(21)?,
        first_seen: ts(r.get(22)?).unwrap_or(OffsetDateTime::UNIX_EPOCH),
        last_seen: ts(r.get(23)?).unwrap_or(OffsetDateTime::UNIX_EPOCH),
        gone_at: ts(r.get(24)?),
    })
}

/// Marks the (checked) record of `arn` gone since `at`, sealed again.
pub(crate) fn mark_gone(
    tx: &Transaction<'_>,
    keys: &crate::crypto::Keys,
    arn: &str,
    at: i64,
) -> Result<()> {
    integrity::require(tx, &keys.rows, &integrity::ACM, &arn)?;
    tx.execute(
        "UPDATE acm_certificates SET gone_at = ?2 WHERE arn = ?1",
        params![arn, at],
    )
    .map_err(Error::sqlite("marking an ACM record gone"))?;
    integrity::seal_one(tx, &keys.rows, &integrity::ACM, &arn)
}

impl Vault {
    /// Every record of one target and region (gone ones included), keyed by ARN: what the
    /// agent compares a new listing with to decide what to Describe and Get.
    pub fn acm_records(&self, target: &str, region: &str) -> Result<BTreeMap<String, AcmRecord>> {
        self.records_by_arn("target = ?1 AND region = ?2", [target, region])
    }

    /// The records a `WHERE` clause selects, keyed by ARN.
    fn records_by_arn(&self, clause: &str, args: [&str; 2]) -> Result<BTreeMap<String, AcmRecord>> {
        let mut stmt = self
            .conn
            .prepare(&format!("{RECORD_SELECT} WHERE {clause}"))
            .map_err(Error::sqlite("reading ACM records"))?;
        let rows = stmt
            .query_map(args, record_from_row)
            .map_err(Error::sqlite("reading ACM records"))?;
        let mut out = BTreeMap::new();
        for r in rows {
            let r = r.map_err(Error::sqlite("reading ACM records"))?;
            out.insert(r.summary.arn.clone(), r);
        }
        Ok(out)
    }

    /// The ACM records of one account and region, by ARN, whichever target recorded them
    /// (two targets can reach one account).
    pub fn acm_records_in(
        &self,
        account: &str,
        region: &str,
    ) -> Result<BTreeMap<String, AcmRecord>> {
        self.records_by_arn("account = ?1 AND region = ?2", [account, region])
    }

    /// Every ACM record of an entry.
    pub fn acm_records_of(&self, entry_id: &str) -> Result<Vec<AcmRecord>> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "{RECORD_SELECT} WHERE entry_id = ?1 ORDER BY first_seen, arn"
            ))
            .map_err(Error::sqlite("reading ACM records"))?;
        let rows = stmt
            .query_map([entry_id], record_from_row)
            .map_err(Error::sqlite("reading ACM records"))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(Error::sqlite("reading ACM records"))
    }

    /// The vault's record of one ARN, its MAC checked (needs the passphrase): where
    /// `acm delete` takes the target and account it may act in.
    pub fn acm_record(&self, arn: &str) -> Result<Option<AcmRecord>> {
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        let record = self
            .conn
            .query_row(
                &format!("{RECORD_SELECT} WHERE arn = ?1"),
                [arn],
                record_from_row,
            )
            .optional()
            .map_err(Error::sqlite("reading ACM records"))?;
        if record.is_some() {
            integrity::require(&self.conn, &keys.rows, &integrity::ACM, &arn)?;
        }
        Ok(record)
    }

    /// The id of every entry this vault holds or has held (removed entries are named by
    /// the audit log): a `certvault:entry-id` tag outside this set is another vault's.
    pub fn entry_ids_ever_held(&self) -> Result<std::collections::HashSet<String>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id FROM entries UNION SELECT entry_id FROM audit WHERE entry_id IS NOT NULL",
            )
            .map_err(Error::sqlite("reading entry ids"))?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(Error::sqlite("reading entry ids"))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(Error::sqlite("reading entry ids"))
    }

    /// The requests (Amazon-issued or private certificates) not yet issued: pending
    /// validation, failed or timed out, and not gone. Each row's MAC is checked (the target
    /// and ARN decide where `acm requests` asks).
    pub fn acm_requests(&self) -> Result<Vec<AcmRecord>> {
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        let mut stmt = self
            .conn
            .prepare(&format!(
                "{RECORD_SELECT} WHERE kind IN ('AMAZON_ISSUED', 'PRIVATE')
                   AND status IN ('PENDING_VALIDATION', 'VALIDATION_TIMED_OUT', 'FAILED')
                   AND gone_at IS NULL
                 ORDER BY first_seen, arn"
            ))
            .map_err(Error::sqlite("reading ACM records"))?;
        let rows = stmt
            .query_map([], record_from_row)
            .map_err(Error::sqlite("reading ACM records"))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(Error::sqlite("reading ACM records"))?;
        for r in &rows {
            integrity::require(&self.conn, &keys.rows, &integrity::ACM, &r.summary.arn)?;
        }
        Ok(rows)
    }

    /// After `acm delete` (or finding the certificate gone already): the ARN's record (if the
    /// vault has one) is marked gone, and the deletion is audited, against its entry when it
    /// feeds one. The entry itself stays.
    pub fn record_acm_deleted(
        &mut self,
        arn: &str,
        region: &str,
        account: &str,
        request_id: Option<&str>,
        already_gone: bool,
    ) -> Result<()> {
        let r = self.record_acm_deleted_checked(arn, region, account, request_id, already_gone);
        self.audit_refusal(r, "recording a deletion from ACM")
    }

    fn record_acm_deleted_checked(
        &mut self,
        arn: &str,
        region: &str,
        account: &str,
        request_id: Option<&str>,
        already_gone: bool,
    ) -> Result<()> {
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        let actor = self.actor.clone();
        let tx = self.conn.write("recording a deletion from ACM")?;
        let entry: Option<Option<String>> = tx
            .query_row(
                "SELECT entry_id FROM acm_certificates WHERE arn = ?1",
                [arn],
                |r| r.get(0),
            )
            .optional()
            .map_err(Error::sqlite("recording a deletion from ACM"))?;
        if entry.is_some() {
            mark_gone(&tx, keys, arn, now_unix())?;
        }
        let entry = entry.flatten();
        let name = entry_name(&tx, entry.as_deref())?;
        audit::append(
            &tx,
            &keys.audit,
            &actor,
            "acm-delete",
            entry.as_deref().zip(name.as_deref()),
            &format!(
                "{} {arn} from ACM ({region}, account {account}){}",
                if already_gone {
                    "asked to delete, found gone already:"
                } else {
                    "deleted"
                },
                request_id
                    .map(|r| format!(" (request {r})"))
                    .unwrap_or_default()
            ),
        )?;
        tx.commit()
            .map_err(Error::sqlite("recording a deletion from ACM"))
    }
}

pub(crate) fn entry_name(tx: &Transaction<'_>, id: Option<&str>) -> Result<Option<String>> {
    let Some(id) = id else { return Ok(None) };
    tx.query_row("SELECT name FROM entries WHERE id = ?1", [id], |r| r.get(0))
        .optional()
        .map_err(Error::sqlite("reading the entry"))
}
