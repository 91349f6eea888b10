//! Certificates found in ACM (and IAM) become entries: one scan of a location merged in one
//! transaction with its audit events (new entries, new versions, links, drift, gone
//! records), and a key exported from ACM joining the version holding its certificate.
//!
//! The vault knows nothing of AWS: the agent hands it plain observations.

use rusqlite::{OptionalExtension, Transaction, params};
use serde::Serialize;

use super::{Arrival, ImportOutcome, import_bundle, model::Source};
use crate::{
    error::{Error, Result},
    formats::bundle::Bundle,
    integrity::{self, audit},
    records::CertificateType,
    records::acm::{
        AcmDetail, AcmRecord, AcmSummary, Location, RECORD_SELECT, entry_name, mark_gone,
        record_from_row, unix,
    },
    store::{Vault, now_unix},
};

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

/// The vault source of a certificate found in ACM or IAM.
pub fn source_of_kind(kind: &CertificateType) -> Source {
    match kind {
        CertificateType::AmazonIssued => Source::AcmAmazonIssued,
        CertificateType::Private => Source::AcmPrivate,
        CertificateType::Iam => Source::Iam,
        CertificateType::Imported | CertificateType::Other(_) => Source::AcmImported,
    }
}

impl Vault {
    /// After `acm export-key`: the certificate ACM exported and its key (encrypted PKCS#8,
    /// opened here with the passphrase of the export, then sealed like any key). The key
    /// joins the version holding that certificate (an entry named `name` with the source of
    /// its kind is made when the vault has none). Audited `acm-export-key`.
    #[allow(clippy::too_many_arguments)]
    pub fn record_exported_key(
        &mut self,
        arn: &str,
        kind: &CertificateType,
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
            crate::formats::InputPasswords {
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
        kind: &CertificateType,
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
    keys: &crate::crypto::Keys,
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
    keys: &crate::crypto::Keys,
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
mod tests;
