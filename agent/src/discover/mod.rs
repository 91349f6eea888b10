//! `certvault discover`: find every certificate in ACM (and IAM) across targets and regions
//! and bring it into the vault.
//!
//! Regions are scanned concurrently (bounded), each under its own rate limiters. A listing
//! that hasn't changed costs only ListCertificates pages: Describe and Get are called for
//! certificates that are new, changed (ImportedAt, IssuedAt, NotAfter, status) or never read,
//! or for all with `deep`. The vault is written on the calling task only, one transaction
//! per region, as results arrive.

use crate::aws::{CertificateStatus, CertificateType, ValidationMethod};
use std::{collections::BTreeMap, sync::Arc, time::Instant};

use futures_util::{StreamExt, stream};
use serde::Serialize;
use time::OffsetDateTime;
use tokio::{sync::Semaphore, task::JoinSet};
use tokio_util::sync::CancellationToken;
use vault::{
    Vault,
    entries::AcmObservation,
    records::{AcmDetail, AcmRecord, AcmSummary, Location},
};

use crate::{
    aws::retry::{CallCounts, CallStats, Idempotence, LimiterPool, RegionLimits, Scope},
    aws::{AcmApi, Connector, IamApi, MAX_LIST_PAGES, connect_within},
    config::{Config, Quotas, Target},
    error::{ApiError, ErrorKind, Refusal, Result},
    pem::bundle_from,
    regions,
};

/// Whether a certificate of this status can be read with GetCertificate.
fn readable(status: &CertificateStatus) -> bool {
    matches!(
        status,
        CertificateStatus::Issued
            | CertificateStatus::Expired
            | CertificateStatus::Inactive
            | CertificateStatus::Revoked
    )
}
/// Findings look this far ahead for expiry.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// Options for [`discover`].
#[derive(Debug, Clone, Copy, Default)]
pub struct DiscoverOptions {
    /// Also scan IAM server certificates.
    pub include_iam: bool,
    /// Describe and Get every certificate, changed or not.
    pub deep: bool,
}

/// Progress, for a progress bar.
#[derive(Debug, Clone)]
pub enum Progress {
    /// Scanning starts over this many locations.
    Started(usize),
    /// One location is done.
    Finished {
        /// `target/region`.
        location: String,
        /// Certificates found there.
        certificates: usize,
        /// Whether it failed.
        failed: bool,
    },
}

/// How one location went.
#[derive(Debug, Clone, Serialize)]
pub struct LocationReport {
    /// Target name.
    pub target: String,
    /// Account id, when credentials resolved.
    pub account: Option<String>,
    /// Region, or `global` for IAM.
    pub region: String,
    /// `ok`, `failed`, `skipped` (an opt-in region the account has not enabled), or
    /// `covered` (another target resolves to the same account: scanned once, through it).
    pub status: &'static str,
    /// For `covered`: the target it was scanned through.
    pub covered_by: Option<String>,
    /// Why it failed or was skipped.
    pub error: Option<ApiError>,
    /// Certificates listed.
    pub certificates: usize,
    /// Certificates by ACM type (`IMPORTED`, `AMAZON_ISSUED`, `PRIVATE`, `IAM`).
    pub by_type: BTreeMap<String, usize>,
    /// Certificates that could not be described or read (the rest were recorded).
    pub certificate_errors: Vec<ApiError>,
}

/// A certificate worth a look.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Its ARN.
    pub arn: String,
    /// Its domain.
    pub domain: String,
    /// Target name.
    pub target: String,
    /// Account.
    pub account: String,
    /// Region.
    pub region: String,
    /// ACM type.
    #[serde(rename = "type")]
    pub kind: CertificateType,
    /// ACM status.
    pub status: CertificateStatus,
    /// End of validity.
    #[serde(with = "time::serde::rfc3339::option")]
    pub not_after: Option<OffsetDateTime>,
    /// The vault entry, when the certificate was read.
    pub entry_id: Option<vault::entries::EntryId>,
}

/// What a security lead wants to read after a scan.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Findings {
    /// Expiring within 30 days.
    pub expiring: Vec<Finding>,
    /// Expired.
    pub expired: Vec<Finding>,
    /// Issued and attached to nothing (cost and clutter; often forgotten).
    pub unused: Vec<Finding>,
    /// Validated by email: renewals need a human to click a link (and since 2024 only
    /// admin@, administrator@, hostmaster@, postmaster@ and webmaster@ receive it). Move to DNS.
    pub email_validated: Vec<Finding>,
    /// Waiting for validation.
    pub pending_validation: Vec<Finding>,
    /// Failed, timed out or revoked.
    pub failed: Vec<Finding>,
}

/// What changed in the vault.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Changes {
    /// Entries created.
    pub created: Vec<String>,
    /// Entries that got a new version (renewed in ACM).
    pub new_versions: Vec<String>,
    /// ARNs found holding certificates the vault already had.
    pub linked: Vec<String>,
    /// ARNs gone from ACM (marked, not erased).
    pub gone: Vec<String>,
}

/// The outcome of a discovery.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DiscoveryReport {
    /// One row per target and region.
    pub locations: Vec<LocationReport>,
    /// Certificates found, by type.
    pub totals: BTreeMap<String, usize>,
    /// Certificates found in all.
    pub total: usize,
    /// What needs attention.
    pub findings: Findings,
    /// What changed in the vault.
    pub changes: Changes,
    /// AWS calls made.
    pub api_calls: CallCounts,
    /// Wall time.
    pub elapsed_ms: u128,
}

impl DiscoveryReport {
    /// Locations that failed.
    pub fn failures(&self) -> usize {
        self.locations
            .iter()
            .filter(|l| l.status == "failed")
            .count()
    }

    /// Whether anything needs attention (expiring, expired, failed, pending).
    pub fn needs_attention(&self) -> bool {
        let f = &self.findings;
        !(f.expiring.is_empty()
            && f.expired.is_empty()
            && f.failed.is_empty()
            && f.pending_validation.is_empty())
    }
}

/// Limits and counting for one location's calls.
struct Limits {
    scope: Scope,
    rates: Arc<RegionLimits>,
    per_region: usize,
    deep: bool,
}

impl Limits {
    /// Calls are counted under the target and region, and limited per (account, region):
    /// targets that resolve to one account share its quotas.
    fn new(config: &Config, pool: &LimiterPool, scope: Scope, account: &str, deep: bool) -> Limits {
        Limits {
            rates: pool.get(account, &scope.region),
            scope,
            per_region: config.concurrency.per_region,
            deep,
        }
    }
}

/// What one location's scan produced, before it is recorded.
struct Scan {
    location: Location,
    observations: Vec<AcmObservation>,
    /// The whole listing was read: missing ARNs are gone.
    complete: bool,
    error: Option<ApiError>,
    certificate_errors: Vec<ApiError>,
}

/// Discovers certificates in every target and region (and IAM), records them in the
/// vault (which must be unlocked) and reports.
pub async fn discover<C: Connector>(
    connector: &C,
    vault: &mut Vault,
    config: &Config,
    targets: &[Target],
    opts: DiscoverOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<DiscoveryReport> {
    let started = Instant::now();
    let stats = Arc::new(CallStats::default());
    let stop = CancellationToken::new();
    let acm_pool = LimiterPool::new(config.quotas);
    // IAM is global and has its own (lower) rate.
    let iam_pool = LimiterPool::new(Quotas {
        list_certificates: config.quotas.iam,
        describe_certificate: config.quotas.iam,
        get_certificate: config.quotas.iam,
        ..config.quotas
    });
    let mut report = DiscoveryReport::default();
    let region_slots = Arc::new(Semaphore::new(config.concurrency.regions));
    let mut tasks: JoinSet<Scan> = JoinSet::new();
    let mut planned = 0;
    // Each (account, region) is scanned once: a second target that resolves to an account
    // already scanned there is reported as covered by the first.
    let mut scanned: BTreeMap<(String, String), String> = BTreeMap::new();
    let covered = |target: &Target, account: &str, region: &str, by: &str| LocationReport {
        target: target.name.clone(),
        account: Some(account.to_owned()),
        region: region.to_owned(),
        status: "covered",
        covered_by: Some(by.to_owned()),
        error: None,
        certificates: 0,
        by_type: BTreeMap::new(),
        certificate_errors: Vec::new(),
    };

    if targets.iter().any(|t| t.regions.is_empty()) && !opts.include_iam {
        return Err(crate::error::Error::NoRegions);
    }
    for target in targets {
        let scope = Scope::new(
            config.retry,
            stats.clone(),
            &target.name,
            "global",
            stop.clone(),
        );
        let connected = connect_within(
            connector,
            target,
            &scope,
            std::time::Duration::from_secs(config.sync.connect_timeout_s),
        )
        .await;
        let (session, account) = match connected {
            Ok(c) => c,
            Err(e) => {
                // No credentials for this target: every one of its regions failed.
                for region in target
                    .regions
                    .iter()
                    .cloned()
                    .chain(opts.include_iam.then(|| "global".to_owned()))
                {
                    report.locations.push(LocationReport {
                        target: target.name.clone(),
                        account: None,
                        region,
                        status: "failed",
                        covered_by: None,
                        error: Some(e.clone()),
                        certificates: 0,
                        by_type: BTreeMap::new(),
                        certificate_errors: Vec::new(),
                    });
                }
                continue;
            }
        };
        for region in &target.regions {
            if let Some(by) = scanned.get(&(account.clone(), region.clone())) {
                report.locations.push(covered(target, &account, region, by));
                continue;
            }
            scanned.insert((account.clone(), region.clone()), target.name.clone());
            let location = Location {
                target: target.name.clone(),
                account: account.clone(),
                region: region.clone(),
            };
            // What the vault knows of this account and region, whichever target saw it.
            let known = vault.acm_records_in(&account, region)?;
            let acm = connector.acm(&session, region);
            let limits = Limits::new(
                config,
                &acm_pool,
                scope.in_region(region),
                &account,
                opts.deep,
            );
            let slots = region_slots.clone();
            planned += 1;
            tasks.spawn(async move {
                let _slot = slots.acquire_owned().await.expect("semaphore open");
                scan_acm(acm, location, known, limits).await
            });
        }
        if opts.include_iam
            && let Some(by) = scanned.get(&(account.clone(), "global".to_owned()))
        {
            report
                .locations
                .push(covered(target, &account, "global", by));
        } else if opts.include_iam {
            scanned.insert((account.clone(), "global".into()), target.name.clone());
            let location = Location {
                target: target.name.clone(),
                account: account.clone(),
                region: "global".into(),
            };
            let known = vault.acm_records_in(&account, "global")?;
            let iam = connector.iam(&session);
            let limits = Limits::new(config, &iam_pool, scope.clone(), &account, opts.deep);
            planned += 1;
            tasks.spawn(async move { scan_iam(iam, location, known, limits).await });
        }
    }
    progress(Progress::Started(planned));

    while let Some(joined) = tasks.join_next().await {
        let scan = joined.expect("scan tasks do not panic");
        let row = record_scan(vault, &mut report, scan)?;
        progress(Progress::Finished {
            location: format!("{}/{}", row.target, row.region),
            certificates: row.certificates,
            failed: row.status == "failed",
        });
        report.locations.push(row);
    }
    report
        .locations
        .sort_by(|a, b| (&a.target, &a.region).cmp(&(&b.target, &b.region)));
    sort_findings(&mut report.findings);
    report.api_calls = stats.snapshot();
    report.elapsed_ms = started.elapsed().as_millis();
    Ok(report)
}

/// One location's scan recorded in the vault (a failed scan records nothing), its
/// certificates counted and judged into `report`: its row. A location whose record is
/// refused (a row changed outside certvault) fails alone; another vault error stops all.
fn record_scan(
    vault: &mut Vault,
    report: &mut DiscoveryReport,
    scan: Scan,
) -> std::result::Result<LocationReport, vault::Error> {
    let failed = scan.error.is_some();
    let mut row = LocationReport {
        target: scan.location.target.clone(),
        account: Some(scan.location.account.clone()),
        region: scan.location.region.clone(),
        status: "ok",
        covered_by: None,
        error: scan.error.clone(),
        certificates: scan.observations.len(),
        by_type: BTreeMap::new(),
        certificate_errors: scan.certificate_errors,
    };
    if let Some(e) = &scan.error {
        row.status = if e.kind == ErrorKind::AccessDenied && regions::is_opt_in(&row.region) {
            "skipped"
        } else {
            "failed"
        };
    }
    let recorded = if failed {
        None
    } else {
        match vault.record_acm_scan(&scan.location, scan.observations, scan.complete) {
            Ok(o) => Some(o),
            // One location's record failing (a row changed outside certvault, say)
            // fails that location; the others are still recorded.
            Err(e @ vault::Error::RowTampered { .. }) => {
                row.status = "failed";
                row.error = Some(ApiError::refused(
                    "RecordDiscovery",
                    &row.region,
                    Refusal::RowTampered {
                        reason: e.to_string(),
                    },
                ));
                None
            }
            Err(e) => return Err(e),
        }
    };
    if let Some(outcome) = recorded {
        let live: Vec<&AcmRecord> = outcome
            .records
            .iter()
            .filter(|r| r.gone_at.is_none())
            .collect();
        for r in &live {
            *row.by_type.entry(r.summary.kind.to_string()).or_default() += 1;
            *report.totals.entry(r.summary.kind.to_string()).or_default() += 1;
            add_findings(&mut report.findings, r);
        }
        report.total += live.len();
        report.changes.created.extend(outcome.created);
        report.changes.new_versions.extend(outcome.new_versions);
        report.changes.linked.extend(outcome.linked);
        report.changes.gone.extend(outcome.gone);
    }
    Ok(row)
}

fn add_findings(f: &mut Findings, r: &AcmRecord) {
    let s = &r.summary;
    let finding = || Finding {
        arn: s.arn.clone(),
        domain: s.domain.clone(),
        target: r.location.target.clone(),
        account: r.location.account.clone(),
        region: r.location.region.clone(),
        kind: s.kind.clone(),
        status: s.status.clone(),
        not_after: s.not_after,
        entry_id: r.entry_id.clone(),
    };
    let now = OffsetDateTime::now_utc();
    let expired = s.status == CertificateStatus::Expired || s.not_after.is_some_and(|t| t <= now);
    if expired {
        f.expired.push(finding());
    } else if s
        .not_after
        .is_some_and(|t| t - now <= time::Duration::days(EXPIRY_WARNING_DAYS))
    {
        f.expiring.push(finding());
    }
    if s.status == CertificateStatus::Issued && s.in_use == Some(false) && !expired {
        f.unused.push(finding());
    }
    if r.detail.validation_method == Some(ValidationMethod::Email) {
        f.email_validated.push(finding());
    }
    if s.status == CertificateStatus::PendingValidation {
        f.pending_validation.push(finding());
    } else if s.status.is_failed() {
        f.failed.push(finding());
    }
}

fn sort_findings(f: &mut Findings) {
    for list in [
        &mut f.expiring,
        &mut f.expired,
        &mut f.unused,
        &mut f.email_validated,
        &mut f.pending_validation,
        &mut f.failed,
    ] {
        list.sort_by(|a, b| {
            (a.not_after, &a.domain, &a.arn).cmp(&(b.not_after, &b.domain, &b.arn))
        });
    }
}

/// Whether a listed certificate must be described and read again.
fn needs_detail(s: &AcmSummary, known: Option<&AcmRecord>, deep: bool) -> bool {
    let Some(k) = known else { return true };
    // The vault keeps whole seconds, as ACM reports them.
    let secs = |t: Option<OffsetDateTime>| t.map(OffsetDateTime::unix_timestamp);
    deep || k.gone_at.is_some()
        || secs(k.summary.imported_at) != secs(s.imported_at)
        || secs(k.summary.issued_at) != secs(s.issued_at)
        || secs(k.summary.not_after) != secs(s.not_after)
        || k.summary.status != s.status
        || (k.fingerprint_sha256.is_none() && readable(&s.status))
}

fn unreadable(operation: &'static str, region: &str, arn: &str, reason: String) -> ApiError {
    ApiError {
        kind: ErrorKind::Validation,
        operation,
        region: region.to_owned(),
        code: "UnreadableCertificate".into(),
        message: format!("{arn}: {reason}"),
        attempts: 1,
        request_id: None,
        refusal: None,
    }
}

async fn scan_acm<A: AcmApi>(
    acm: A,
    location: Location,
    known: BTreeMap<String, AcmRecord>,
    limits: Limits,
) -> Scan {
    let mut scan = Scan {
        location,
        observations: Vec::new(),
        complete: false,
        error: None,
        certificate_errors: Vec::new(),
    };
    let mut summaries = Vec::new();
    let mut token = None;
    for _ in 0..MAX_LIST_PAGES {
        let page = limits
            .scope
            .call(
                Some(&limits.rates.list),
                "ListCertificates",
                Idempotence::Safe,
                || acm.list_certificates(token.clone()),
            )
            .await;
        match page {
            Ok(p) => {
                summaries.extend(p.summaries);
                token = p.next_token.filter(|t| !t.is_empty());
                if token.is_none() {
                    scan.complete = true;
                    break;
                }
            }
            Err(e) => {
                scan.error = Some(e);
                return scan;
            }
        }
    }
    // A certificate listed twice (a server repeating a page) is taken once.
    summaries.sort_by(|a, b| a.arn.cmp(&b.arn));
    summaries.dedup_by(|a, b| a.arn == b.arn);

    let region = scan.location.region.clone();
    let results: Vec<(AcmObservation, Vec<ApiError>)> = stream::iter(summaries)
        .map(|s| {
            let refresh = needs_detail(&s, known.get(&s.arn), limits.deep);
            let (acm, limits, region) = (&acm, &limits, &region);
            async move {
                if !refresh {
                    return (
                        AcmObservation {
                            summary: s,
                            detail: None,
                            certificate: None,
                        },
                        Vec::new(),
                    );
                }
                observe_acm(acm, limits, region, s).await
            }
        })
        .buffer_unordered(limits.per_region)
        .collect()
        .await;
    for (obs, errors) in results {
        scan.observations.push(obs);
        scan.certificate_errors.extend(errors);
    }
    scan
}

/// Describes and reads one certificate; failures are reported, and the listing's summary
/// is recorded anyway.
async fn observe_acm<A: AcmApi>(
    acm: &A,
    limits: &Limits,
    region: &str,
    listed: AcmSummary,
) -> (AcmObservation, Vec<ApiError>) {
    let mut errors = Vec::new();
    let arn = listed.arn.clone();
    let (summary, detail) = match limits
        .scope
        .call(
            Some(&limits.rates.describe),
            "DescribeCertificate",
            Idempotence::Safe,
            || acm.describe_certificate(&arn),
        )
        .await
    {
        Ok((mut described, detail)) => {
            // The listing knows about use even when Describe's InUseBy is empty.
            described.in_use = listed.in_use.or(described.in_use);
            (described, Some(detail))
        }
        Err(e) => {
            errors.push(e);
            (listed, None)
        }
    };
    let mut certificate = None;
    if readable(&summary.status) {
        match limits
            .scope
            .call(
                Some(&limits.rates.get),
                "GetCertificate",
                Idempotence::Safe,
                || acm.get_certificate(&arn),
            )
            .await
        {
            Ok(pem) => match bundle_from(&arn, &pem) {
                Ok(b) => certificate = Some(b),
                Err(reason) => errors.push(unreadable("GetCertificate", region, &arn, reason)),
            },
            Err(e) if e.kind == ErrorKind::NotFound => {}
            Err(e) => errors.push(e),
        }
    }
    (
        AcmObservation {
            summary,
            detail,
            certificate,
        },
        errors,
    )
}

async fn scan_iam<I: IamApi>(
    iam: I,
    location: Location,
    known: BTreeMap<String, AcmRecord>,
    limits: Limits,
) -> Scan {
    let mut scan = Scan {
        location,
        observations: Vec::new(),
        complete: false,
        error: None,
        certificate_errors: Vec::new(),
    };
    let mut listed = Vec::new();
    let mut marker = None;
    for _ in 0..MAX_LIST_PAGES {
        match limits
            .scope
            .call(
                Some(&limits.rates.list),
                "ListServerCertificates",
                Idempotence::Safe,
                || iam.list_server_certificates(marker.clone()),
            )
            .await
        {
            Ok((certs, next)) => {
                listed.extend(certs);
                marker = next.filter(|m| !m.is_empty());
                if marker.is_none() {
                    scan.complete = true;
                    break;
                }
            }
            Err(e) => {
                scan.error = Some(e);
                return scan;
            }
        }
    }
    let now = OffsetDateTime::now_utc();
    for c in listed {
        let summary = AcmSummary {
            arn: c.arn.clone(),
            kind: CertificateType::Iam,
            status: if c.expiration.is_some_and(|t| t <= now) {
                CertificateStatus::Expired
            } else {
                CertificateStatus::Issued
            },
            domain: c.name.clone(),
            sans: Vec::new(),
            key_algorithm: None,
            in_use: None,
            renewal_eligibility: None,
            not_before: None,
            not_after: c.expiration,
            imported_at: c.uploaded,
            issued_at: None,
            created_at: c.uploaded,
        };
        let mut certificate = None;
        if needs_detail(&summary, known.get(&c.arn), limits.deep) {
            match limits
                .scope
                .call(
                    Some(&limits.rates.get),
                    "GetServerCertificate",
                    Idempotence::Safe,
                    || iam.get_server_certificate(&c.name),
                )
                .await
            {
                Ok(pem) => match bundle_from(&c.arn, &pem) {
                    Ok(b) => certificate = Some(b),
                    Err(reason) => scan.certificate_errors.push(unreadable(
                        "GetServerCertificate",
                        "global",
                        &c.arn,
                        reason,
                    )),
                },
                Err(e) => scan.certificate_errors.push(e),
            }
        }
        scan.observations.push(AcmObservation {
            summary,
            detail: Some(AcmDetail::default()).filter(|_| certificate.is_some()),
            certificate,
        });
    }
    scan
}

#[cfg(test)]
mod tests;
