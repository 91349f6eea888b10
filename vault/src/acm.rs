//! What the vault remembers about certificates seen in ACM (and IAM): one row per ARN, the
//! entry it holds (if its certificate could be read), and when it was last seen or found gone.
//!
//! The vault knows nothing of AWS: the agent hands it plain observations; this module only
//! merges them into the store, in one transaction with their audit events.

use std::collections::BTreeMap;

use rusqlite::{OptionalExtension, Transaction, params};
use serde::Serialize;
use time::OffsetDateTime;

use crate::{
    audit,
    entries::{Arrival, ImportOutcome, import_bundle},
    error::{Error, Result},
    import::Bundle,
    integrity,
    model::Source,
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
    pub kind: String,
    /// `ISSUED`, `PENDING_VALIDATION`, `EXPIRED`, `FAILED`, ...
    pub status: String,
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
    pub validation_method: Option<String>,
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
    pub method: Option<String>,
    /// `PENDING_VALIDATION`, `SUCCESS` or `FAILED`.
    pub status: Option<String>,
}

/// One certificate as observed in one scan.
#[derive(Debug)]
pub struct AcmObservation {
    /// From the listing.
    pub summary: AcmSummary,
    /// From Describe, when it was called.
    pub detail: Option<AcmDetail>,
    /// The certificate and chain, when they were fetched (not for pending ones).
    pub certificate: Option<Bundle>,
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
    pub entry_id: Option<String>,
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

/// What recording one scan changed.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ScanOutcome {
    /// Entries created for certificates new to the vault.
    pub created: Vec<String>,
    /// Entries that got a new version (renewed or re-imported in ACM).
    pub new_versions: Vec<String>,
    /// ARNs found holding a certificate the vault already had.
    pub linked: Vec<String>,
    /// ARNs seen before and missing now (marked gone, not erased).
    pub gone: Vec<String>,
    /// Deployed ARNs found holding a certificate the vault did not put there: recorded as
    /// drift, never as a version of the entry.
    pub drifted: Vec<String>,
    /// Every record of the location after the scan, gone ones included.
    pub records: Vec<AcmRecord>,
}

fn ts(v: Option<i64>) -> Option<OffsetDateTime> {
    v.and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
}

fn unix(v: Option<OffsetDateTime>) -> Option<i64> {
    v.map(OffsetDateTime::unix_timestamp)
}

/// The vault source of a certificate found in ACM or IAM.
pub fn source_of_kind(kind: &str) -> Source {
    match kind {
        "AMAZON_ISSUED" => Source::AcmAmazonIssued,
        "PRIVATE" => Source::AcmPrivate,
        "IAM" => Source::Iam,
        _ => Source::AcmImported,
    }
}

const RECORD_SELECT: &str = "SELECT arn, target, account, region, kind, status, domain, sans, key_algorithm, in_use,
        in_use_by, renewal_eligibility, validation_method, validation_records, failure_reason, not_before, not_after,
        imported_at, issued_at, created_at, fingerprint, entry_id, first_seen, last_seen, gone_at
    FROM acm_certificates";

fn record_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AcmRecord> {
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
fn mark_gone(tx: &Transaction<'_>, keys: &crate::store::Keys, arn: &str, at: i64) -> Result<()> {
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
        let mut stmt = self
            .conn
            .prepare(&format!(
                "{RECORD_SELECT} WHERE target = ?1 AND region = ?2"
            ))
            .map_err(Error::sqlite("reading ACM records"))?;
        let rows = stmt
            .query_map([target, region], record_from_row)
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
        let mut stmt = self
            .conn
            .prepare(&format!(
                "{RECORD_SELECT} WHERE account = ?1 AND region = ?2"
            ))
            .map_err(Error::sqlite("reading ACM records"))?;
        let rows = stmt
            .query_map([account, region], record_from_row)
            .map_err(Error::sqlite("reading ACM records"))?;
        let mut out = BTreeMap::new();
        for r in rows {
            let r = r.map_err(Error::sqlite("reading ACM records"))?;
            out.insert(r.summary.arn.clone(), r);
        }
        Ok(out)
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

    /// After `acm export-key`: the certificate ACM exported and its key (encrypted PKCS#8,
    /// opened here with the passphrase of the export, then sealed like any key). The key
    /// joins the version holding that certificate (an entry named `name` with the source of
    /// its kind is made when the vault has none). Audited `acm-export-key`.
    #[allow(clippy::too_many_arguments)]
    pub fn record_exported_key(
        &mut self,
        arn: &str,
        kind: &str,
        name: &str,
        certificate_pem: &str,
        chain_pem: Option<&str>,
        encrypted_key_pem: &[u8],
        passphrase: &crate::Passphrase,
    ) -> Result<ImportOutcome> {
        let bundle = Bundle::from_bytes(
            arn,
            certificate_pem.as_bytes(),
            Some(("the key ACM exported", encrypted_key_pem)),
            chain_pem.map(|c| ("the chain ACM exported", c.as_bytes())),
            crate::InputPasswords {
                pkcs12: None,
                key: Some(passphrase),
            },
        )?;
        let r = self.record_exported_key_checked(arn, kind, name, bundle);
        self.audit_refusal(r, "storing a key exported from ACM")
    }

    fn record_exported_key_checked(
        &mut self,
        arn: &str,
        kind: &str,
        name: &str,
        bundle: Bundle,
    ) -> Result<ImportOutcome> {
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        let actor = self.actor.clone();
        let tx = self.conn.write("storing a key exported from ACM")?;
        let fingerprint = bundle.fingerprint().to_owned();
        // The key joins the certificate the vault read from ACM. A certificate it has not
        // seen (renewed in ACM since discovery) becomes a new version only of an entry that
        // follows ACM; an entry the vault owns (imported, issued) never takes a version from
        // ACM.
        let known: bool = tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM versions WHERE fingerprint = ?1)",
                [&fingerprint],
                |r| r.get(0),
            )
            .map_err(Error::sqlite("storing a key exported from ACM"))?;
        if !known {
            let source: Option<String> = tx
                .query_row("SELECT source FROM entries WHERE name = ?1", [name], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(Error::sqlite("storing a key exported from ACM"))?;
            if source.is_some_and(|s| !s.starts_with("acm-")) {
                return Err(Error::Export {
                    name: name.to_owned(),
                    reason: format!(
                        "ACM holds a certificate at {arn} that is not one of this entry's versions, and the entry is the vault's own (not one that follows ACM): nothing was stored"
                    ),
                });
            }
        }
        let outcome = import_bundle(
            &tx,
            keys,
            &actor,
            bundle,
            Arrival {
                name,
                source: source_of_kind(kind),
                origin: arn,
                update_chain: false,
                audit: true,
            },
        )?;
        let (id, ename) = match &outcome {
            ImportOutcome::Created { id, name }
            | ImportOutcome::NewVersion { id, name, .. }
            | ImportOutcome::KeyAdded { id, name, .. }
            | ImportOutcome::KeyReplaced { id, name, .. }
            | ImportOutcome::ChainUpdated { id, name, .. }
            | ImportOutcome::AlreadyPresent { id, name, .. } => (id.clone(), name.clone()),
        };
        audit::append(
            &tx,
            &keys.audit,
            &actor,
            "acm-export-key",
            Some((&id, &ename)),
            &format!(
                "exported from ACM {arn} (AWS charges for each export): certificate {}, its private key sealed in the vault",
                &fingerprint[..16]
            ),
        )?;
        tx.commit()
            .map_err(Error::sqlite("storing a key exported from ACM"))?;
        Ok(outcome)
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

    /// Records one scan of a location in one transaction: upserts every observation,
    /// creates or renews entries for certificates read, and — when `complete` (the whole
    /// listing was read) — marks records no longer listed as gone. Audited.
    pub fn record_acm_scan(
        &mut self,
        location: &Location,
        observations: Vec<AcmObservation>,
        complete: bool,
    ) -> Result<ScanOutcome> {
        let r = self.record_acm_scan_checked(location, observations, complete);
        self.audit_refusal(r, "recording a discovery")
    }

    fn record_acm_scan_checked(
        &mut self,
        location: &Location,
        observations: Vec<AcmObservation>,
        complete: bool,
    ) -> Result<ScanOutcome> {
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        let actor = self.actor.clone();
        let now = now_unix();
        let tx = self.conn.write("recording a scan")?;
        let mut outcome = ScanOutcome::default();
        let mut seen = Vec::with_capacity(observations.len());
        for obs in observations {
            seen.push(obs.summary.arn.clone());
            record_one(&tx, keys, &actor, location, obs, now, &mut outcome)?;
        }
        if complete {
            // A complete listing of an account and region: what it left out is gone, whichever
            // target recorded it.
            let mut stmt = tx
                .prepare("SELECT arn, entry_id FROM acm_certificates WHERE account = ?1 AND region = ?2 AND gone_at IS NULL")
                .map_err(Error::sqlite("recording a scan"))?;
            let listed: Vec<(String, Option<String>)> = stmt
                .query_map([&location.account, &location.region], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .map_err(Error::sqlite("recording a scan"))?
                .collect::<rusqlite::Result<_>>()
                .map_err(Error::sqlite("recording a scan"))?;
            drop(stmt);
            for (arn, entry) in listed.into_iter().filter(|(arn, _)| !seen.contains(arn)) {
                mark_gone(&tx, keys, &arn, now)?;
                let name = entry_name(&tx, entry.as_deref())?;
                audit::append(
                    &tx,
                    &keys.audit,
                    &actor,
                    "acm-gone",
                    entry.as_deref().zip(name.as_deref()),
                    &format!(
                        "{arn} is no longer in {} ({})",
                        location.region, location.account
                    ),
                )?;
                outcome.gone.push(arn);
            }
        }
        let mut stmt = tx
            .prepare(&format!(
                "{RECORD_SELECT} WHERE target = ?1 AND region = ?2 ORDER BY domain, arn"
            ))
            .map_err(Error::sqlite("recording a scan"))?;
        outcome.records = stmt
            .query_map([&location.target, &location.region], record_from_row)
            .map_err(Error::sqlite("recording a scan"))?
            .collect::<rusqlite::Result<_>>()
            .map_err(Error::sqlite("recording a scan"))?;
        drop(stmt);
        tx.commit().map_err(Error::sqlite("recording a scan"))?;
        Ok(outcome)
    }
}

fn entry_name(tx: &Transaction<'_>, id: Option<&str>) -> Result<Option<String>> {
    let Some(id) = id else { return Ok(None) };
    tx.query_row("SELECT name FROM entries WHERE id = ?1", [id], |r| r.get(0))
        .optional()
        .map_err(Error::sqlite("reading the entry"))
}

/// A name no other entry has: the certificate's own, else qualified by region, else by ARN.
fn free_name(tx: &Transaction<'_>, base: &str, region: &str, arn: &str) -> Result<String> {
    let tail: String = arn
        .rsplit(['/', ':'])
        .next()
        .unwrap_or(arn)
        .chars()
        .take(8)
        .collect();
    for candidate in [
        base.to_owned(),
        format!("{base} ({region})"),
        format!("{base} ({region}, {tail})"),
    ] {
        let taken: bool = tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM entries WHERE name = ?1)",
                [&candidate],
                |r| r.get(0),
            )
            .map_err(Error::sqlite("naming an entry"))?;
        if !taken {
            return Ok(candidate);
        }
    }
    Ok(format!("{base} ({arn})"))
}

fn record_one(
    tx: &Transaction<'_>,
    keys: &crate::store::Keys,
    actor: &str,
    location: &Location,
    obs: AcmObservation,
    now: i64,
    outcome: &mut ScanOutcome,
) -> Result<()> {
    let arn = obs.summary.arn.clone();
    merge_one(tx, keys, actor, location, obs, now, outcome)?;
    integrity::seal_one(tx, &keys.rows, &integrity::ACM, &arn)
}

fn merge_one(
    tx: &Transaction<'_>,
    keys: &crate::store::Keys,
    actor: &str,
    location: &Location,
    obs: AcmObservation,
    now: i64,
    outcome: &mut ScanOutcome,
) -> Result<()> {
    let s = &obs.summary;
    let existing: Option<(Option<String>, Option<String>)> = tx
        .query_row(
            "SELECT entry_id, fingerprint FROM acm_certificates WHERE arn = ?1",
            [&s.arn],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(Error::sqlite("recording a scan"))?;
    // What the vault remembers of this ARN decides what the observation becomes: it must
    // be what certvault wrote.
    if existing.is_some() {
        integrity::require(tx, &keys.rows, &integrity::ACM, &s.arn)?;
    }
    tx.execute(
        "INSERT INTO acm_certificates (arn, target, account, region, kind, status, domain, sans, key_algorithm, in_use,
            renewal_eligibility, not_before, not_after, imported_at, issued_at, created_at, first_seen, last_seen)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?17)
         ON CONFLICT(arn) DO UPDATE SET target = excluded.target, account = excluded.account,
            region = excluded.region, kind = excluded.kind, status = excluded.status, domain = excluded.domain,
            sans = CASE WHEN excluded.sans = '[]' THEN sans ELSE excluded.sans END,
            key_algorithm = excluded.key_algorithm, in_use = excluded.in_use,
            renewal_eligibility = coalesce(excluded.renewal_eligibility, renewal_eligibility),
            not_before = excluded.not_before, not_after = excluded.not_after, imported_at = excluded.imported_at,
            issued_at = excluded.issued_at, created_at = excluded.created_at, last_seen = excluded.last_seen,
            gone_at = NULL",
        params![
            s.arn,
            location.target,
            location.account,
            location.region,
            s.kind,
            s.status,
            s.domain,
            serde_json::to_string(&s.sans).expect("strings serialise"),
            s.key_algorithm,
            s.in_use,
            s.renewal_eligibility,
            unix(s.not_before),
            unix(s.not_after),
            unix(s.imported_at),
            unix(s.issued_at),
            unix(s.created_at),
            now
        ],
    )
    .map_err(Error::sqlite("recording a scan"))?;
    if let Some(d) = &obs.detail {
        tx.execute(
            "UPDATE acm_certificates SET in_use_by = ?2, validation_method = ?3, validation_records = ?4,
                failure_reason = ?5 WHERE arn = ?1",
            params![
                s.arn,
                serde_json::to_string(&d.in_use_by).expect("strings serialise"),
                d.validation_method,
                serde_json::to_string(&d.validation_records).expect("records serialise"),
                d.failure_reason
            ],
        )
        .map_err(Error::sqlite("recording a scan"))?;
    }
    let (known_entry, known_fp) = existing.clone().unwrap_or((None, None));
    if existing.is_none() {
        audit::append(
            tx,
            &keys.audit,
            actor,
            "acm-seen",
            None,
            &format!(
                "{} {} ({}, {}) in {} ({})",
                s.kind, s.domain, s.status, s.arn, location.region, location.account
            ),
        )?;
    }
    let Some(bundle) = obs.certificate else {
        return Ok(());
    };
    let fp = bundle.fingerprint().to_owned();
    // A deployed ARN: only the deployment's own certificate links to its entry; anything
    // else there is drift, recorded as such and never made a version of the entry.
    let deployed: Option<(i64, String)> = tx
        .query_row(
            "SELECT id, entry_id FROM deployments WHERE arn = ?1 ORDER BY id LIMIT 1",
            [&s.arn],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(Error::sqlite("recording a scan"))?;
    if let Some((deployment, owner)) = deployed {
        let ours: bool = tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM versions WHERE entry_id = ?1 AND fingerprint = ?2)",
                params![owner, fp],
                |r| r.get(0),
            )
            .map_err(Error::sqlite("recording a scan"))?;
        let first_sight = known_fp.as_deref() != Some(fp.as_str());
        tx.execute(
            "UPDATE acm_certificates SET entry_id = ?2, fingerprint = ?3 WHERE arn = ?1",
            params![s.arn, owner, fp],
        )
        .map_err(Error::sqlite("recording a scan"))?;
        if ours {
            if known_entry.is_none() {
                outcome.linked.push(s.arn.clone());
            }
        } else if first_sight {
            let detail = format!(
                "ACM holds {} (SHA-256), which the vault did not put there (found by discover)",
                &fp[..16]
            );
            tx.execute(
                "UPDATE deployments SET state = 'drifted', detail = ?2, acm_fingerprint = ?3 WHERE id = ?1",
                params![deployment, detail, fp],
            )
            .map_err(Error::sqlite("recording a scan"))?;
            let name = entry_name(tx, Some(&owner))?;
            audit::append(
                tx,
                &keys.audit,
                actor,
                "acm-drift",
                name.as_deref().map(|n| (owner.as_str(), n)),
                &format!(
                    "{} in {} ({}) holds {fp}, not a version of this entry: flagged drifted",
                    s.arn, location.region, location.account
                ),
            )?;
            outcome.drifted.push(s.arn.clone());
        }
        return Ok(());
    }
    if known_fp.as_deref() == Some(fp.as_str()) && known_entry.is_some() {
        return Ok(());
    }
    // Which entry: one holding this very certificate (imported locally, or deployed from the
    // vault); else the discovered entry this ARN feeds (ACM renewed it); else a new one. An
    // entry the vault owns (imported, issued) never takes a version from ACM.
    let holder: Option<String> = tx
        .query_row(
            "SELECT entry_id FROM versions WHERE fingerprint = ?1",
            [&fp],
            |r| r.get(0),
        )
        .optional()
        .map_err(Error::sqlite("recording a scan"))?;
    let follows: Option<String> = match &known_entry {
        Some(id) => tx
            .query_row("SELECT source FROM entries WHERE id = ?1", [id], |r| {
                r.get::<_, String>(0)
            })
            .optional()
            .map_err(Error::sqlite("recording a scan"))?
            .and_then(|src| Source::parse(&src))
            .filter(|src| src.is_discovered())
            .map(|_| id.clone()),
        None => None,
    };
    let target_entry = holder.or(follows);
    let name = match &target_entry {
        Some(id) => entry_name(tx, Some(id))?.unwrap_or_else(|| bundle.default_name()),
        None => free_name(tx, &bundle.default_name(), &location.region, &s.arn)?,
    };
    let origin = format!("{} ({})", s.arn, location.region);
    let result = import_bundle(
        tx,
        keys,
        actor,
        bundle,
        Arrival {
            name: &name,
            source: source_of_kind(&s.kind),
            origin: &origin,
            update_chain: false,
            audit: true,
        },
    )?;
    let entry_id = match result {
        ImportOutcome::Created { id, name } => {
            outcome.created.push(name);
            id
        }
        ImportOutcome::NewVersion { id, name, .. } => {
            outcome.new_versions.push(name);
            id
        }
        ImportOutcome::KeyAdded { id, .. }
        | ImportOutcome::KeyReplaced { id, .. }
        | ImportOutcome::ChainUpdated { id, .. }
        | ImportOutcome::AlreadyPresent { id, .. } => {
            if known_entry.is_none() {
                outcome.linked.push(s.arn.clone());
            }
            id
        }
    };
    tx.execute(
        "UPDATE acm_certificates SET entry_id = ?2, fingerprint = ?3 WHERE arn = ?1",
        params![s.arn, entry_id, fp],
    )
    .map_err(Error::sqlite("recording a scan"))?;
    Ok(())
}

#[cfg(test)]
#[path = "acm_tests.rs"]
mod tests;
