//! `acm migrate-validation`: every email-validated ACM certificate that discovery found is
//! replaced by a DNS-validated one for the same names (one request per set of names in an
//! account and region, found again by a later run), waited for with tokio time until it is
//! issued or the timeout ends, and every load balancer listener of the old one moved to
//! it. Nothing is deleted; a run after a stop resumes (it finds its requests).

use crate::aws::{CertificateStatus, CertificateType, ValidationMethod};
use std::{collections::BTreeMap, time::Duration};

use vault::{
    Vault,
    records::{AcmRecord, DnsRecord, Location},
};

use crate::{
    acm::request::{Submission, Submitted, acm_describe, acm_observe},
    aws::CertRequest,
    aws::Connector,
    config::{Config, Target},
    elb::{
        rotate::Elsewhere,
        run::{apply_plans, plan_pairs},
        select::Pair,
    },
    error::ApiError,
    route53::{Placement, place_validation_records},
};

/// How `migrate-validation` runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct MigrateOptions {
    /// Write the DNS validation records to Route 53.
    pub route53: bool,
    /// Request, write and move nothing: say what would be done.
    pub dry_run: bool,
    /// How long to wait for the new certificates to be issued.
    pub timeout: Duration,
}

/// What became of the validation records of a replacement.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Records {
    /// Not looked at (the old certificate is dead, or its request failed).
    #[default]
    Unknown,
    /// `--dry-run`: the replacement would be requested.
    WouldBeRequested,
    /// ACM has not produced them yet.
    NotYetProduced,
    /// Every one is in place in Route 53.
    InPlace,
    /// Those Route 53 could not take: to create by hand.
    ByHand(Vec<DnsRecord>),
    /// Route 53 (or the vault's record of it) failed: why.
    NotPlaced(String),
    /// What to create (without `--route53`).
    ToCreate(Vec<DnsRecord>),
}

/// Why a certificate was not (fully) migrated.
#[derive(Debug, Clone)]
pub enum MigrationNote {
    /// It is dead (failed, expired...): listed, not replaced.
    Dead {
        /// Its status (`EXPIRED` for an issued one past its end).
        status: CertificateStatus,
    },
    /// The target's credentials could not describe it: nothing was requested.
    NotRequested(ApiError),
    /// The request failed, or could not be recorded: why.
    RequestFailed(String),
    /// The replacement could not be read.
    Unreadable(ApiError),
    /// The replacement is failed or timed out: nothing was moved.
    NewFailed {
        /// Its status.
        status: CertificateStatus,
    },
    /// What the certificate whose replacement this one shares (`lead`) came to.
    AsFor {
        /// That certificate.
        lead: String,
        /// Its note.
        note: Box<MigrationNote>,
    },
    /// Not issued within the timeout: a later run finds the request.
    NotIssuedYet,
    /// `--dry-run`: this many listeners would move.
    WouldMove(usize),
    /// The listeners could not be planned: nothing of it was moved.
    Refused(ApiError),
}

/// What `migrate-validation` found or did for one email-validated certificate.
#[derive(Debug, Clone, Default)]
pub struct Migration {
    /// The email-validated certificate.
    pub old: String,
    /// Its region.
    pub region: String,
    /// The target it was found through.
    pub target: String,
    /// Its account.
    pub account: String,
    /// Its names (domain first, lower case).
    pub names: Vec<String>,
    /// Its DNS-validated replacement.
    pub new: Option<String>,
    /// Whether the replacement was requested by this run.
    pub requested_now: bool,
    /// Its validation records.
    pub records: Records,
    /// Whether the replacement is issued.
    pub issued: bool,
    /// Listeners moved.
    pub moved: usize,
    /// Listeners that could not be moved.
    pub failed: usize,
    /// Whether the old one is used by nothing now (when asked).
    pub unused: Option<bool>,
    /// Why it is not done.
    pub note: Option<MigrationNote>,
    /// Another email-validated certificate for the same names, in the same account and
    /// region, whose replacement this one shares (its index): one request per set of names.
    pub shares: Option<usize>,
    /// Its status, when it is dead (failed, expired, revoked...): listed, not replaced.
    pub dead: Option<CertificateStatus>,
}

impl Migration {
    /// Whether it leads: not dead, not sharing another's replacement.
    pub fn leads(&self) -> bool {
        self.dead.is_none() && self.shares.is_none()
    }
}

/// Something to tell as it happened.
#[derive(Debug, Clone)]
pub enum MigrateEvent {
    /// A request was made and recorded, but ACM's answer about it could not be read yet.
    Unanswered {
        /// The request.
        arn: String,
        /// Why.
        error: ApiError,
    },
    /// Something else uses an old certificate whose listeners were moved.
    AlsoUsed {
        /// The old certificate.
        old: String,
        /// Its replacement.
        new: String,
        /// The region.
        region: String,
        /// The user.
        user: Elsewhere,
    },
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct MigrateReport {
    /// One per email-validated certificate found, in the order found.
    pub work: Vec<Migration>,
    /// What happened on the way, in order.
    pub events: Vec<MigrateEvent>,
    /// Certificates whose replacement could not be requested.
    pub errors: usize,
}

impl MigrateReport {
    /// Listeners that could not be moved.
    pub fn failed(&self) -> usize {
        self.work.iter().map(|m| m.failed).sum()
    }

    /// Live certificates not done yet (not issued, or with a note).
    pub fn pending(&self) -> usize {
        self.work
            .iter()
            .filter(|m| m.dead.is_none() && (!m.issued || m.note.is_some()))
            .count()
    }
}

/// Statuses of a certificate worth replacing: it serves, or it will.
fn alive(r: &AcmRecord) -> bool {
    matches!(
        r.summary.status,
        CertificateStatus::Issued | CertificateStatus::PendingValidation
    ) && r
        .summary
        .not_after
        .is_none_or(|t| t > time::OffsetDateTime::now_utc())
}

fn names_of(r: &AcmRecord) -> Vec<String> {
    let mut names = vec![r.summary.domain.to_ascii_lowercase()];
    for s in &r.summary.sans {
        let s = s.to_ascii_lowercase();
        if !names.contains(&s) {
            names.push(s);
        }
    }
    names
}

fn same_names(a: &[String], b: &[String]) -> bool {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort();
    b.sort();
    a == b
}

/// Every email-validated certificate discovery recorded for `targets` (their regions),
/// with a DNS-validated request for the same names made earlier (by this command or by
/// hand), if there is one. Read from the vault only.
pub fn find_migrations(v: &Vault, targets: &[Target]) -> vault::Result<Vec<Migration>> {
    let mut work: Vec<Migration> = Vec::new();
    for t in targets {
        for region in &t.regions {
            let records = v.acm_records(&t.name, region)?;
            for r in records.values() {
                let email = r.detail.validation_method == Some(ValidationMethod::Email);
                if r.gone_at.is_some() || r.summary.kind != CertificateType::AmazonIssued || !email
                {
                    continue;
                }
                let m = found(&work, &records, r, &t.name, region);
                work.push(m);
            }
        }
    }
    Ok(work)
}

/// One email-validated certificate, as found (see [`find_migrations`]).
fn found(
    work: &[Migration],
    records: &BTreeMap<String, AcmRecord>,
    r: &AcmRecord,
    target: &str,
    region: &str,
) -> Migration {
    let names = names_of(r);
    let base = Migration {
        old: r.summary.arn.clone(),
        region: region.to_owned(),
        target: target.to_owned(),
        account: r.location.account.clone(),
        ..Default::default()
    };
    if !alive(r) {
        let status = if r.summary.status == CertificateStatus::Issued {
            CertificateStatus::Expired
        } else {
            r.summary.status.clone()
        };
        return Migration {
            names,
            note: Some(MigrationNote::Dead {
                status: status.clone(),
            }),
            dead: Some(status),
            ..base
        };
    }
    // One replacement per set of names in an account and region: a second
    // email-validated certificate for the same names shares the first's.
    let shares = work.iter().position(|m| {
        m.leads()
            && m.account == r.location.account
            && m.region == region
            && same_names(&m.names, &names)
    });
    // A DNS-validated certificate for the same names, in the same account, issued or on
    // its way (the issued one first, then the newest).
    let new = records
        .values()
        .filter(|c| {
            c.gone_at.is_none()
                && c.summary.arn != r.summary.arn
                && c.location.account == r.location.account
                && c.summary.kind == CertificateType::AmazonIssued
                && c.detail.validation_method == Some(ValidationMethod::Dns)
                && matches!(
                    c.summary.status,
                    CertificateStatus::Issued | CertificateStatus::PendingValidation
                )
                && same_names(&names_of(c), &names)
        })
        .max_by_key(|c| (c.summary.status == CertificateStatus::Issued, c.first_seen))
        .map(|c| c.summary.arn.clone());
    Migration {
        names,
        new,
        shares,
        ..base
    }
}

/// How many replacements a run would request, and how many certificates it replaces:
/// what the caller asks to confirm.
pub fn migration_counts(work: &[Migration]) -> (usize, usize) {
    let to_request = work.iter().filter(|m| m.leads() && m.new.is_none()).count();
    let replacing = work.iter().filter(|m| m.dead.is_none()).count();
    (to_request, replacing)
}

fn target_of(config: &Config, m: &Migration) -> crate::Result<Target> {
    Ok(config
        .select(Some(&m.target), Some(std::slice::from_ref(&m.region)))?
        .remove(0))
}

/// Runs the migrations [`find_migrations`] found (after the caller confirmed
/// [`migration_counts`]): 1. requests (or the earlier ones found) and their records, 2. a
/// wait (tokio time: 2 s, doubling, at most 30 s between reads) until each is issued or
/// `timeout` would pass, 3. every listener of each old certificate moved to its issued
/// replacement. Each request, record written and move is audited; one certificate's
/// failure is its own. A vault that cannot record stops everything.
pub async fn run_migrations<C: Connector>(
    connector: &C,
    v: &mut Vault,
    config: &Config,
    work: Vec<Migration>,
    opts: MigrateOptions,
) -> crate::Result<MigrateReport> {
    let mut report = MigrateReport {
        work,
        ..Default::default()
    };
    request_all(connector, v, config, &mut report, opts).await?;
    if !opts.dry_run {
        wait_issued(connector, v, config, &mut report.work, opts.timeout).await?;
    }
    share_leads(&mut report.work);
    move_listeners(connector, v, config, &mut report, opts.dry_run).await?;
    Ok(report)
}

/// The token of the one request per (target, region, set of names).
fn token_for(m: &Migration) -> String {
    let mut sorted = m.names.clone();
    sorted.sort();
    let mut parts = vec!["migrate-validation", m.target.as_str(), m.region.as_str()];
    parts.extend(sorted.iter().map(String::as_str));
    vault::records::idempotency_token(&parts)
}

/// An error and its sources, as `{:#}` of anyhow shows them.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Sends a DNS-validated request through `acm request`'s own workflow
/// ([`crate::acm::request::submit`]: recorded in the vault at once, audited `acm-request`,
/// then described, waiting up to a minute for DNS records, and recorded again). Why not, in
/// words.
async fn submit<C: Connector>(
    connector: &C,
    v: &mut Vault,
    config: &Config,
    target: &Target,
    m: &Migration,
    events: &mut Vec<MigrateEvent>,
) -> Result<Submitted, String> {
    let req = CertRequest {
        domain: m.names[0].clone(),
        sans: m.names[1..].to_vec(),
        validation: Some(ValidationMethod::Dns),
        token: token_for(m),
        ..Default::default()
    };
    let audit = format!(
        "{} (DNS validation), to replace the email-validated {}",
        m.names.join(", "),
        m.old
    );
    let submission = Submission {
        target,
        region: &m.region,
        request: &req,
        audit: &audit,
        wait: Duration::from_secs(60),
    };
    let mut submitted = crate::acm::request::submit(connector, v, config, submission)
        .await
        .map_err(|e| chain(&e))?;
    if let Some(error) = submitted.unread.take() {
        events.push(MigrateEvent::Unanswered {
            arn: submitted.arn.clone(),
            error,
        });
    }
    Ok(submitted)
}

/// Step 1: a request for each lead without a replacement (after a Describe of the old one with
/// the target's credentials: only its account's are used), and the records of each.
async fn request_all<C: Connector>(
    connector: &C,
    v: &mut Vault,
    config: &Config,
    report: &mut MigrateReport,
    opts: MigrateOptions,
) -> crate::Result<()> {
    for i in 0..report.work.len() {
        if !report.work[i].leads() {
            continue;
        }
        let m = &mut report.work[i];
        let target = target_of(config, m)?;
        // What the request just made said (recorded by it): not asked again.
        let mut just_requested: Option<Submitted> = None;
        if m.new.is_none() {
            if opts.dry_run {
                m.records = Records::WouldBeRequested;
                continue;
            }
            if let Err(e) = acm_describe(connector, config, &target, &m.old).await {
                m.note = Some(MigrationNote::NotRequested(e));
                report.errors += 1;
                continue;
            }
            match submit(connector, v, config, &target, m, &mut report.events).await {
                Ok(s) => {
                    m.new = Some(s.arn.clone());
                    m.requested_now = true;
                    just_requested = Some(s);
                }
                Err(e) => {
                    m.note = Some(MigrationNote::RequestFailed(e));
                    report.errors += 1;
                    continue;
                }
            }
        }
        records_of(connector, v, config, &target, m, just_requested, opts).await?;
    }
    Ok(())
}

/// The status and validation records of a lead's replacement (from its request just made,
/// or read now and recorded), placed in Route 53 when asked.
async fn records_of<C: Connector>(
    connector: &C,
    v: &mut Vault,
    config: &Config,
    target: &Target,
    m: &mut Migration,
    just_requested: Option<Submitted>,
    opts: MigrateOptions,
) -> crate::Result<()> {
    let Some(new) = m.new.clone() else {
        return Ok(());
    };
    let (status, records, account, observed) = match just_requested {
        Some(s) => (s.status, s.detail.validation_records, s.account, None),
        None => match acm_observe(connector, config, target, &new).await {
            Err(e) => {
                m.note = Some(MigrationNote::Unreadable(e));
                return Ok(());
            }
            Ok((obs, account)) => {
                let records = obs
                    .detail
                    .as_ref()
                    .map(|d| d.validation_records.clone())
                    .unwrap_or_default();
                (obs.summary.status.clone(), records, account, Some(obs))
            }
        },
    };
    m.account = account.clone();
    m.records = if records.is_empty() {
        Records::NotYetProduced
    } else if opts.route53 && !opts.dry_run {
        match place_validation_records(connector, v, config, target, &account, &new, &records).await
        {
            Ok(p)
                if p.iter()
                    .all(|r| matches!(r.placement, Placement::InPlace { .. })) =>
            {
                Records::InPlace
            }
            Ok(p) => Records::ByHand(
                p.into_iter()
                    .filter(|r| !matches!(r.placement, Placement::InPlace { .. }))
                    .map(|r| r.record)
                    .collect(),
            ),
            Err(e) => Records::NotPlaced(chain(&e)),
        }
    } else {
        Records::ToCreate(records)
    };
    m.issued = status == CertificateStatus::Issued;
    if let Some(obs) = observed
        && !opts.dry_run
    {
        let location = Location {
            target: m.target.clone(),
            account,
            region: m.region.clone(),
        };
        v.record_acm_scan(&location, vec![obs], false)?;
    }
    Ok(())
}

/// Whether a lead's replacement is still waited for.
fn waiting(m: &Migration) -> bool {
    m.leads() && m.new.is_some() && !m.issued && m.note.is_none()
}

/// Step 2: reads each replacement not issued yet, pausing 2 s, doubling, at most 30 s, until
/// every one is issued (or failed), or the next pause would end after `timeout`.
async fn wait_issued<C: Connector>(
    connector: &C,
    v: &mut Vault,
    config: &Config,
    work: &mut [Migration],
    timeout: Duration,
) -> crate::Result<()> {
    let started = tokio::time::Instant::now();
    let mut pause = Duration::from_secs(2);
    while work.iter().any(waiting) && started.elapsed() + pause <= timeout {
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(30));
        for m in work.iter_mut().filter(|m| waiting(m)) {
            let target = target_of(config, m)?;
            let new = m.new.clone().unwrap_or_default();
            let Ok((obs, account)) = acm_observe(connector, config, &target, &new).await else {
                continue;
            };
            let status = obs.summary.status.clone();
            let location = Location {
                target: m.target.clone(),
                account,
                region: m.region.clone(),
            };
            v.record_acm_scan(&location, vec![obs], false)?;
            match status {
                CertificateStatus::Issued => m.issued = true,
                CertificateStatus::Failed | CertificateStatus::ValidationTimedOut => {
                    m.note = Some(MigrationNote::NewFailed { status })
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// Those sharing a replacement get what its lead found or requested.
fn share_leads(work: &mut [Migration]) {
    for i in 0..work.len() {
        let Some(l) = work[i].shares else { continue };
        let lead = work[l].clone();
        let m = &mut work[i];
        m.new = lead.new;
        m.issued = lead.issued;
        m.records = lead.records;
        m.account = lead.account;
        if let Some(n) = lead.note {
            m.note = Some(MigrationNote::AsFor {
                lead: lead.old,
                note: Box::new(n),
            });
        }
    }
}

/// Step 3: listeners moved from old to new, for the issued ones: every plan read first (each
/// region's listeners once), then applied; then whether the old one is still used.
async fn move_listeners<C: Connector>(
    connector: &C,
    v: &mut Vault,
    config: &Config,
    report: &mut MigrateReport,
    dry_run: bool,
) -> crate::Result<()> {
    let work = &mut report.work;
    let ready: Vec<usize> = (0..work.len())
        .filter(|&i| work[i].new.is_some() && work[i].issued)
        .collect();
    let pairs: Vec<Pair> = ready
        .iter()
        .map(|&i| Pair {
            target: work[i].target.clone(),
            region: work[i].region.clone(),
            old: work[i].old.clone(),
            new: work[i].new.clone().unwrap_or_default(),
        })
        .collect();
    let mut planned: BTreeMap<usize, _> = ready
        .iter()
        .copied()
        .zip(plan_pairs(connector, config, &pairs).await?)
        .collect();
    for (i, m) in work.iter_mut().enumerate() {
        if m.dead.is_some() {
            continue;
        }
        if !(m.new.is_some() && m.issued) {
            if m.note.is_none() && !dry_run {
                m.note = Some(MigrationNote::NotIssuedYet);
            }
            continue;
        }
        let target = target_of(config, m)?;
        let plan = match planned.remove(&i) {
            Some(Ok(p)) => p,
            Some(Err(e)) => {
                m.note = Some(MigrationNote::Refused(e));
                continue;
            }
            None => continue,
        };
        if dry_run {
            m.moved = 0;
            m.note = Some(MigrationNote::WouldMove(plan.swaps.len()));
            continue;
        }
        let swaps = plan.swaps.len();
        let applied =
            apply_plans(connector, v, config, &[(m.target.clone(), plan.clone())]).await?;
        let failed: usize = applied.iter().map(|o| o.failed()).sum();
        m.moved = swaps - failed;
        m.failed = failed;
        for e in &plan.elsewhere {
            report.events.push(MigrateEvent::AlsoUsed {
                old: m.old.clone(),
                new: plan.new.clone(),
                region: plan.region.clone(),
                user: e.clone(),
            });
        }
        // Whether the old one is used by anything now (ACM may take minutes to notice).
        if let Ok((obs, _)) = acm_describe(connector, config, &target, &m.old).await {
            m.unused = Some(obs.detail.is_none_or(|d| d.in_use_by.is_empty()));
        }
    }
    Ok(())
}
