//! One reconcile pass: observe (the vault's deployments, ACM's listings) → [`plan`] (pure)
//! → apply (idempotent steps), regions and targets in parallel, each region under its own
//! rate limiters. The vault is read and written on the calling task only.
//!
//! A no-op pass reads ListCertificates pages only: GetCertificate is called for a deployed
//! ARN only when its ImportedAt moved (or with `deep`), and tags and details only for
//! first deployments looking for something to adopt.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::Arc,
    time::Instant,
};

use serde::Serialize;
use time::OffsetDateTime;
use tokio::task::JoinSet;
use vault::{Deployment, DeploymentUpdate, ImportMaterial, Vault};

use crate::{
    aws::{AcmApi, AcmWrite, Connector, ENTRY_TAG},
    config::{Config, Target},
    error::{ApiError, ErrorKind, Result},
    plan::{Action, Desired, Observed, ObservedCert, PlanOptions, State, plan},
    retry::{CallCounts, CallStats, RateLimiter, with_retry},
};

/// Key types ACM imports.
pub const ACM_KEY_TYPES: &[&str] = &[
    "RSA_1024",
    "RSA_2048",
    "RSA_3072",
    "RSA_4096",
    "EC_prime256v1",
    "EC_secp384r1",
    "EC_secp521r1",
];

/// Options for [`sync`].
#[derive(Debug, Clone, Default)]
pub struct SyncOptions {
    /// Plan only: change nothing in ACM or the vault.
    pub dry_run: bool,
    /// Read every deployed certificate, changed or not.
    pub deep: bool,
    /// Overwrite drifted certificates.
    pub force: bool,
    /// Push outdated and missing deployments even without auto-redeploy.
    pub push: bool,
    /// Only these deployments (all when empty).
    pub only: BTreeSet<i64>,
}

/// One deployment after the pass, as `status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct StatusRow {
    /// Deployment id.
    pub id: i64,
    /// Entry name.
    pub name: String,
    /// Entry id.
    pub entry_id: String,
    /// Target name.
    pub target: String,
    /// Account.
    pub account: Option<String>,
    /// Region.
    pub region: String,
    /// ARN in ACM.
    pub arn: Option<String>,
    /// State.
    pub state: State,
    /// The vault's current certificate.
    pub vault_fingerprint: String,
    /// What ACM holds, when known.
    pub acm_fingerprint: Option<String>,
    /// Why it is not in sync, or what was done.
    pub detail: Option<String>,
    /// The step planned (dry run) or taken.
    pub action: Option<String>,
    /// When it was last reconciled.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_synced: Option<OffsetDateTime>,
}

/// The outcome of a pass.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncReport {
    /// One row per deployment.
    pub deployments: Vec<StatusRow>,
    /// Steps planned or taken that change something.
    pub changes: usize,
    /// Deployments whose step failed, or whose region could not be read.
    pub failures: usize,
    /// AWS calls made.
    pub api_calls: CallCounts,
    /// Wall time.
    pub elapsed_ms: u128,
}

impl SyncReport {
    /// Whether every deployment is in sync.
    pub fn all_in_sync(&self) -> bool {
        self.deployments.iter().all(|d| d.state == State::InSync)
    }
}

/// Why a certificate cannot be imported into ACM, if it cannot: no private key, a key type
/// ACM does not take, or not valid at `now`. Checked by `deploy` before anything is
/// recorded, and by every pass before any AWS call.
pub fn not_importable(
    has_private_key: bool,
    key_algorithm: &str,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    now: OffsetDateTime,
) -> Option<String> {
    if !has_private_key {
        return Some("the vault holds no private key for it: import the key first".into());
    }
    if !ACM_KEY_TYPES.contains(&key_algorithm) {
        return Some(format!(
            "ACM does not import {key_algorithm} keys (RSA 1024-4096 and EC P-256/P-384/P-521 only); nothing was sent to AWS"
        ));
    }
    if not_before > now || not_after <= now {
        return Some(format!(
            "the certificate is not valid now (valid {} to {}); ACM refuses it",
            not_before.date(),
            not_after.date()
        ));
    }
    None
}

fn blocked(d: &Deployment, now: OffsetDateTime) -> Option<String> {
    not_importable(
        d.has_private_key,
        &d.key_algorithm,
        d.not_before,
        d.not_after,
        now,
    )
}

fn desired_of(d: &Deployment, now: OffsetDateTime) -> Desired {
    Desired {
        id: d.id,
        entry_id: d.entry_id.clone(),
        vault_fingerprint: d.vault_fingerprint.clone(),
        arn: d.arn.clone(),
        deployed_fingerprint: d.deployed_fingerprint.clone(),
        imported_at: d.imported_at.map(OffsetDateTime::unix_timestamp),
        deployed_not_after: d.deployed_not_after.map(OffsetDateTime::unix_timestamp),
        replace_existing: d.replace_existing,
        auto_redeploy: d.auto_redeploy,
        domains: d.domains.clone(),
        blocked: blocked(d, now),
        expired: d.not_after <= now,
    }
}

/// Per-region limiters for a pass.
struct RegionLimits {
    list: RateLimiter,
    get: RateLimiter,
    describe: RateLimiter,
    import: RateLimiter,
    tags: RateLimiter,
    list_tags: RateLimiter,
}

impl RegionLimits {
    fn new(config: &Config) -> RegionLimits {
        let q = &config.quotas;
        RegionLimits {
            list: RateLimiter::per_second(q.list_certificates),
            get: RateLimiter::per_second(q.get_certificate),
            describe: RateLimiter::per_second(q.describe_certificate),
            import: RateLimiter::per_second(q.import_certificate),
            tags: RateLimiter::per_second(q.add_tags_to_certificate),
            list_tags: RateLimiter::per_second(q.list_tags_for_certificate),
        }
    }
}

/// What observing one region gives back: its key, what was seen (or why not), and the job
/// to apply the plan with.
type Observation<A> = (
    (String, String),
    Result<(Observed, BTreeMap<String, vault::AcmSummary>), ApiError>,
    RegionJob<A>,
);

/// A region's work: observe, and (unless dry run) apply what the main task planned.
struct RegionJob<A> {
    acm: A,
    region: String,
    desired: Vec<Desired>,
    limits: RegionLimits,
    config: Config,
    stats: Arc<CallStats>,
    deep: bool,
}

fn fingerprint_of_pem(pem_text: &str) -> Option<String> {
    vault::pem_certificate_identity(pem_text).map(|(fp, _)| fp)
}

impl<A: AcmApi + AcmWrite> RegionJob<A> {
    async fn observe(&self) -> Result<(Observed, BTreeMap<String, vault::AcmSummary>), ApiError> {
        let policy = &self.config.retry;
        let mut summaries = BTreeMap::new();
        let mut token = None;
        loop {
            let page = with_retry(
                policy,
                Some(&self.limits.list),
                &self.stats,
                "ListCertificates",
                || self.acm.list_certificates(token.clone()),
            )
            .await?;
            for s in page.summaries {
                summaries.insert(s.arn.clone(), s);
            }
            token = page.next_token.filter(|t| !t.is_empty());
            if token.is_none() {
                break;
            }
        }
        let mut observed = Observed::default();
        let deployed: BTreeMap<&str, &Desired> = self
            .desired
            .iter()
            .filter_map(|d| d.arn.as_deref().map(|a| (a, d)))
            .collect();
        let first_domains: BTreeSet<&str> = self
            .desired
            .iter()
            .filter(|d| d.arn.is_none())
            .flat_map(|d| d.domains.iter().map(String::as_str))
            .collect();
        for (arn, s) in &summaries {
            let imported_at = s.imported_at.map(OffsetDateTime::unix_timestamp);
            let mut cert = ObservedCert {
                arn: arn.clone(),
                kind: s.kind.clone(),
                imported_at,
                domains: {
                    let mut d: Vec<String> = std::iter::once(s.domain.clone())
                        .chain(s.sans.iter().cloned())
                        .collect();
                    d.sort();
                    d.dedup();
                    d
                },
                fingerprint: None,
                entry_tag: None,
            };
            // ImportedAt has one-second precision: a different NotAfter also means ACM no
            // longer holds what we imported.
            let not_after = s.not_after.map(OffsetDateTime::unix_timestamp);
            let ours_changed = deployed.get(arn.as_str()).is_some_and(|d| {
                self.deep
                    || d.imported_at != imported_at
                    || (d.deployed_not_after.is_some()
                        && not_after.is_some()
                        && d.deployed_not_after != not_after)
            });
            let candidate = s.kind == "IMPORTED"
                && !deployed.contains_key(arn.as_str())
                && first_domains.contains(s.domain.as_str());
            if candidate {
                let tags = with_retry(
                    policy,
                    Some(&self.limits.list_tags),
                    &self.stats,
                    "ListTagsForCertificate",
                    || self.acm.list_tags(arn),
                )
                .await?;
                cert.entry_tag = tags
                    .into_iter()
                    .find(|(k, _)| k == ENTRY_TAG)
                    .map(|(_, v)| v);
                let (described, _) = with_retry(
                    policy,
                    Some(&self.limits.describe),
                    &self.stats,
                    "DescribeCertificate",
                    || self.acm.describe_certificate(arn),
                )
                .await?;
                let mut d: Vec<String> = std::iter::once(described.domain)
                    .chain(described.sans)
                    .collect();
                d.sort();
                d.dedup();
                cert.domains = d;
            }
            if ours_changed || candidate {
                let pem = with_retry(
                    policy,
                    Some(&self.limits.get),
                    &self.stats,
                    "GetCertificate",
                    || self.acm.get_certificate(arn),
                )
                .await?;
                cert.fingerprint = fingerprint_of_pem(&pem.certificate);
            }
            observed.certs.insert(arn.clone(), cert);
        }
        Ok((observed, summaries))
    }

    /// Applies one step; returns what to record.
    async fn apply(
        &self,
        action: &Action,
        desired: &Desired,
        material: Option<&ImportMaterial>,
        summaries: &BTreeMap<String, vault::AcmSummary>,
        observed: &Observed,
    ) -> DeploymentUpdate {
        let mut u = DeploymentUpdate {
            id: desired.id,
            state: State::InSync.as_str().into(),
            detail: None,
            account: None,
            arn: None,
            deployed_fingerprint: None,
            imported_at: None,
            acm_fingerprint: None,
            event: None,
        };
        let result: Result<(), ApiError> = async {
            match action {
                Action::Flag { state, detail, .. } => {
                    u.state = state.as_str().into();
                    u.detail = detail.clone();
                    if *state == State::InSync {
                        u.acm_fingerprint = Some(desired.vault_fingerprint.clone());
                        // A re-import by someone else with our certificate: remember its time.
                        u.imported_at = desired
                            .arn
                            .as_ref()
                            .and_then(|a| summaries.get(a))
                            .and_then(|s| s.imported_at);
                    } else if let Some(o) = desired.arn.as_ref().and_then(|a| observed.certs.get(a)) {
                        u.acm_fingerprint = o.fingerprint.clone();
                    }
                }
                Action::Adopt { arn, reason, .. } => {
                    let o = &observed.certs[arn];
                    u.arn = Some(arn.clone());
                    u.deployed_fingerprint = o.fingerprint.clone();
                    u.acm_fingerprint = o.fingerprint.clone();
                    u.imported_at = summaries.get(arn).and_then(|s| s.imported_at);
                    u.event = Some(("acm-adopt".into(), format!("adopted {arn} in {}: {reason}", self.region)));
                }
                Action::Import { .. } | Action::Reimport { .. } => {
                    let m = material.expect("material prepared for imports");
                    let (target_arn, reason) = match action {
                        Action::Reimport { arn, reason, .. } => (Some(arn.as_str()), reason.clone()),
                        _ => (None, "first import".to_owned()),
                    };
                    if let Some(arn) = target_arn
                        && let Some(s) = summaries.get(arn)
                        && let Some(theirs) = &s.key_algorithm
                        && m.key_algorithm != *theirs
                    {
                        u.state = State::Failed.as_str().into();
                        u.detail = Some(format!(
                            "the key type changed ({theirs} in ACM, {} in the vault): ACM cannot re-import into the same ARN; undeploy and deploy again to get a new one",
                            m.key_algorithm
                        ));
                        return Ok(());
                    }
                    let tags = vec![(ENTRY_TAG.to_owned(), desired.entry_id.clone())];
                    let policy = &self.config.retry;
                    let arn = with_retry(policy, Some(&self.limits.import), &self.stats, "ImportCertificate", || {
                        self.acm.import_certificate(m, target_arn, &tags)
                    })
                    .await?;
                    if target_arn.is_some() {
                        // Re-imports cannot carry tags; keep ours on it for adoption.
                        with_retry(policy, Some(&self.limits.tags), &self.stats, "AddTagsToCertificate", || {
                            self.acm.add_tags(&arn, &tags)
                        })
                        .await?;
                    }
                    let (described, _) = with_retry(policy, Some(&self.limits.describe), &self.stats, "DescribeCertificate", || {
                        self.acm.describe_certificate(&arn)
                    })
                    .await?;
                    u.arn = Some(arn.clone());
                    u.deployed_fingerprint = Some(m.fingerprint.clone());
                    u.acm_fingerprint = Some(m.fingerprint.clone());
                    u.imported_at = described.imported_at;
                    let verb = if target_arn.is_some() { "acm-reimport" } else { "acm-import" };
                    u.event = Some((verb.into(), format!("{arn} in {}: {reason}", self.region)));
                }
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            u.state = State::Failed.as_str().into();
            u.detail = Some(e.to_string());
            u.event = Some(("acm-error".into(), e.to_string()));
        }
        u
    }
}

/// Runs one reconcile pass over the vault's deployments (or `opts.only`).
pub async fn sync<C: Connector>(
    connector: &C,
    vault: &mut Vault,
    config: &Config,
    opts: &SyncOptions,
) -> Result<SyncReport> {
    let started = Instant::now();
    let now = OffsetDateTime::now_utc();
    let stats = Arc::new(CallStats::default());
    let all = vault.deployments()?;
    let chosen: Vec<Deployment> = all
        .into_iter()
        .filter(|d| opts.only.is_empty() || opts.only.contains(&d.id))
        .collect();
    // Group by target and region; resolve each target once.
    let mut groups: BTreeMap<(String, String), Vec<Desired>> = BTreeMap::new();
    for d in &chosen {
        groups
            .entry((d.target.clone(), d.region.clone()))
            .or_default()
            .push(desired_of(d, now));
    }
    let by_id: HashMap<i64, Deployment> = chosen.into_iter().map(|d| (d.id, d)).collect();
    let mut report = SyncReport::default();
    let mut rows: BTreeMap<i64, StatusRow> = BTreeMap::new();
    let row_of = |d: &Deployment| StatusRow {
        id: d.id,
        name: d.name.clone(),
        entry_id: d.entry_id.clone(),
        target: d.target.clone(),
        account: d.account.clone(),
        region: d.region.clone(),
        arn: d.arn.clone(),
        state: State::Pending,
        vault_fingerprint: d.vault_fingerprint.clone(),
        acm_fingerprint: d.acm_fingerprint.clone(),
        detail: None,
        action: None,
        last_synced: d.last_synced,
    };

    let targets: Vec<String> = groups
        .keys()
        .map(|(t, _)| t.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut sessions: BTreeMap<String, Result<(C::Session, String), ApiError>> = BTreeMap::new();
    for name in targets {
        // Only `default` means the ambient credentials. A deployment whose target has left
        // the configuration must fail, not fall back to whatever account is ambient.
        let target = match config.targets.iter().find(|t| t.name == name) {
            Some(t) => t.clone(),
            None if name == "default" => Target {
                name: name.clone(),
                ..Target::default()
            },
            None => {
                sessions.insert(
                    name.clone(),
                    Err(ApiError {
                        kind: ErrorKind::Validation,
                        operation: "Configuration",
                        region: "global".into(),
                        code: "UnknownTarget".into(),
                        message: format!(
                            "target '{name}' is not in the configuration; nothing was sent to AWS"
                        ),
                        attempts: 0,
                    }),
                );
                continue;
            }
        };
        let connected = with_retry(&config.retry, None, &stats, "GetCallerIdentity", || {
            connector.connect(&target)
        })
        .await;
        sessions.insert(name, connected);
    }

    // Observe every region concurrently.
    let mut observing: JoinSet<Observation<C::Acm>> = JoinSet::new();
    for ((target, region), desired) in groups {
        let session = match &sessions[&target] {
            Ok((s, _)) => s.clone(),
            Err(e) => {
                for d in &desired {
                    let mut r = row_of(&by_id[&d.id]);
                    r.state = State::Failed;
                    r.detail = Some(format!("target {target}: {e}"));
                    rows.insert(d.id, r);
                }
                continue;
            }
        };
        let job = RegionJob {
            acm: connector.acm(&session, &region),
            region: region.clone(),
            desired,
            limits: RegionLimits::new(config),
            config: config.clone(),
            stats: stats.clone(),
            deep: opts.deep,
        };
        observing.spawn(async move {
            let observed = job.observe().await;
            ((target, region), observed, job)
        });
    }

    let mut applying: JoinSet<Vec<(Action, DeploymentUpdate)>> = JoinSet::new();
    while let Some(joined) = observing.join_next().await {
        let ((target, _region), observed, job) = joined.expect("observe tasks do not panic");
        let account = sessions[&target].as_ref().ok().map(|(_, a)| a.clone());
        let (observed, summaries) = match observed {
            Ok(o) => o,
            Err(e) => {
                for d in &job.desired {
                    let mut r = row_of(&by_id[&d.id]);
                    r.state = State::Failed;
                    r.detail = Some(e.to_string());
                    rows.insert(d.id, r);
                }
                continue;
            }
        };
        let actions = plan(
            &job.desired,
            &observed,
            PlanOptions {
                force: opts.force,
                push: opts.push,
            },
        );
        if opts.dry_run {
            for a in &actions {
                let d = &by_id[&a.id()];
                let mut r = row_of(d);
                r.account = account.clone().or(r.account);
                describe_action(&mut r, a, &observed);
                if a.changes() {
                    report.changes += 1;
                }
                rows.insert(a.id(), r);
            }
            continue;
        }
        // Key material for imports is opened here, on the vault's task, and moved into
        // the region's task; it never leaves memory except to ACM.
        let mut materials: BTreeMap<i64, ImportMaterial> = BTreeMap::new();
        for a in &actions {
            if matches!(a, Action::Import { .. } | Action::Reimport { .. }) {
                materials.insert(a.id(), vault.import_material(&by_id[&a.id()].entry_id)?);
            }
        }
        applying.spawn(async move {
            let mut out = Vec::with_capacity(actions.len());
            let desired: HashMap<i64, &Desired> = job.desired.iter().map(|d| (d.id, d)).collect();
            for a in actions {
                let d = desired[&a.id()];
                let mut u = job
                    .apply(&a, d, materials.get(&a.id()), &summaries, &observed)
                    .await;
                u.account = account.clone();
                out.push((a, u));
            }
            out
        });
    }
    while let Some(joined) = applying.join_next().await {
        let mut done = joined.expect("apply tasks do not panic");
        for (_, u) in &mut done {
            let d = &by_id[&u.id];
            // A state change is worth an audit event even when ACM was not touched.
            if u.event.is_none() && u.state != d.state {
                u.event = Some((
                    "deployment-state".into(),
                    format!(
                        "{}/{}: {} -> {}{}",
                        d.target,
                        d.region,
                        d.state,
                        u.state,
                        u.detail
                            .as_ref()
                            .map(|x| format!(" ({x})"))
                            .unwrap_or_default()
                    ),
                ));
            }
        }
        vault.update_deployments(done.iter().map(|(_, u)| u))?;
        for (action, u) in done {
            let d = &by_id[&u.id];
            let mut r = row_of(d);
            r.account = u.account.or(r.account);
            r.arn = u.arn.or(r.arn);
            r.acm_fingerprint = u.acm_fingerprint.or(r.acm_fingerprint);
            r.state = parse_state(&u.state);
            r.detail = u.detail;
            r.last_synced = Some(OffsetDateTime::now_utc());
            if action.changes() && r.state != State::Failed {
                report.changes += 1;
                r.action = Some(action_name(&action).into());
            }
            rows.insert(u.id, r);
        }
    }
    report.deployments = rows.into_values().collect();
    report
        .deployments
        .sort_by(|a, b| (&a.name, &a.target, &a.region).cmp(&(&b.name, &b.target, &b.region)));
    report.failures = report
        .deployments
        .iter()
        .filter(|d| d.state == State::Failed)
        .count();
    report.api_calls = stats.snapshot();
    report.elapsed_ms = started.elapsed().as_millis();
    Ok(report)
}

fn parse_state(s: &str) -> State {
    [
        State::InSync,
        State::Outdated,
        State::Drifted,
        State::Missing,
        State::Expired,
        State::Pending,
        State::Failed,
    ]
    .into_iter()
    .find(|x| x.as_str() == s)
    .unwrap_or(State::Failed)
}

fn action_name(a: &Action) -> &'static str {
    match a {
        Action::Import { .. } => "import",
        Action::Reimport { .. } => "re-import",
        Action::Adopt { .. } => "adopt",
        Action::Flag { .. } => "none",
    }
}

/// Fills a dry-run row: the state now, and what the pass would do.
fn describe_action(r: &mut StatusRow, a: &Action, observed: &Observed) {
    match a {
        Action::Flag { state, detail, .. } => {
            r.state = *state;
            r.detail = detail.clone();
            if let Some(fp) = r
                .arn
                .as_ref()
                .and_then(|a| observed.certs.get(a))
                .and_then(|o| o.fingerprint.clone())
            {
                r.acm_fingerprint = Some(fp);
            }
            if *state == State::Missing {
                r.acm_fingerprint = None;
            }
        }
        Action::Import { .. } => {
            r.state = if r.arn.is_some() {
                State::Missing
            } else {
                State::Pending
            };
            r.action = Some("import".into());
            r.detail = Some("would import as a new certificate".into());
        }
        Action::Reimport { arn, reason, .. } => {
            r.state = if r.arn.is_some() {
                State::Outdated
            } else {
                State::Pending
            };
            if reason.starts_with("overwriting drift") {
                r.state = State::Drifted;
            }
            r.action = Some("re-import".into());
            r.detail = Some(format!("would re-import into {arn}: {reason}"));
            r.acm_fingerprint = observed
                .certs
                .get(arn)
                .and_then(|o| o.fingerprint.clone())
                .or(r.acm_fingerprint.take());
        }
        Action::Adopt { arn, reason, .. } => {
            r.state = State::Pending;
            r.action = Some("adopt".into());
            r.detail = Some(format!("would adopt {arn}: {reason}"));
        }
    }
}

/// Deletes a deployment's certificate from ACM after checking nothing uses it.
pub async fn delete_from_acm<C: Connector>(
    connector: &C,
    config: &Config,
    target: &Target,
    region: &str,
    arn: &str,
) -> std::result::Result<(), ApiError> {
    let stats = CallStats::default();
    let (session, _) = with_retry(&config.retry, None, &stats, "GetCallerIdentity", || {
        connector.connect(target)
    })
    .await?;
    let acm = connector.acm(&session, region);
    let (_, detail) = with_retry(&config.retry, None, &stats, "DescribeCertificate", || {
        acm.describe_certificate(arn)
    })
    .await?;
    if !detail.in_use_by.is_empty() {
        return Err(ApiError {
            kind: ErrorKind::InUse,
            operation: "DeleteCertificate",
            region: region.to_owned(),
            code: "ResourceInUseException".into(),
            message: format!(
                "{arn} is in use by {}: detach it there first (load balancer listeners, CloudFront distributions, API Gateway domains, Nitro Enclaves role associations); ACM can take minutes to notice",
                detail.in_use_by.join(", ")
            ),
            attempts: 1,
        });
    }
    with_retry(&config.retry, None, &stats, "DeleteCertificate", || {
        acm.delete_certificate(arn)
    })
    .await
}

#[cfg(test)]
#[path = "reconcile_tests.rs"]
mod tests;
