//! Reconcile: which entries may be deployed (`deployable`), deployments forgotten
//! (`undeploy`), and one pass: observe (the vault's deployments, ACM's listings) → [`plan`] (pure)
//! → apply (idempotent steps), regions and targets in parallel, each (account, region)
//! under its own rate limiters. The vault is read and written on the calling task only;
//! region tasks report over a channel.
//!
//! Promises kept here (see the module docs of `plan`, `observe` and `apply` for the rest):
//! - failures stay local: one deployment's, certificate's or region's error becomes that
//!   deployment's `failed` state; every other step is applied and recorded, nothing in
//!   flight elsewhere is cancelled;
//! - results are recorded as they come: an import's ARN at once, the rest at least every
//!   `sync.commit_every` steps;
//! - a stop (SIGTERM) lets calls in flight finish (up to `sync.stop_grace_s`), records
//!   everything, and starts nothing new; the next pass resumes without duplicates.

pub(crate) mod apply;
mod deployable;
pub(crate) mod observe;
pub(crate) mod plan;
mod undeploy;

pub use deployable::{DeployChoice, Deployable, deployable};
pub use plan::{
    Action, Desired, Observed, ObservedCert, PlanOptions, State, account_problem, plan,
};
pub use undeploy::{UndeployError, UndeployRequest, UndeployStep, undeploy};

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::Arc,
    time::{Duration, Instant},
};

use futures_util::{StreamExt, stream};
use serde::Serialize;
use time::OffsetDateTime;
use tokio::{
    sync::{Semaphore, mpsc},
    task::JoinSet,
};
use tokio_util::sync::CancellationToken;
use vault::{
    Vault,
    records::{Deployment, DeploymentUpdate, ImportMaterial},
};

use crate::{
    aws::retry::{CallCounts, CallStats, Idempotence, LimiterPool, RegionLimits, Scope},
    aws::{AcmApi, AcmWrite, Connector, StsApi, connect_within},
    config::{Config, Target},
    error::{ApiError, ErrorKind, Refusal, Result},
    reconcile::{
        apply::{Applier, Event},
        observe::{Observation, observe_region},
    },
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

/// ImportCertificate's limits on what it is sent (bytes, PEM).
pub const ACM_MAX_CERTIFICATE: usize = 32_768;
/// See [`ACM_MAX_CERTIFICATE`].
pub const ACM_MAX_PRIVATE_KEY: usize = 5_120;
/// See [`ACM_MAX_CERTIFICATE`].
pub const ACM_MAX_CHAIN: usize = 2_097_152;

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
    /// Cancel to stop the pass between steps (SIGTERM): calls in flight finish, results
    /// are recorded, nothing new is started.
    pub stop: CancellationToken,
    /// How long to wait for the writer lock if this pass must take it.
    pub lock_timeout: Duration,
    /// An audit anchor kept outside the vault (`N`, `DIGEST`): nothing is pushed unless
    /// the log still holds event N with that digest (the vault was not rolled back).
    pub expect_head: Option<(i64, String)>,
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
    /// End of validity of what is deployed (else of the vault's current certificate).
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// Why it is not in sync, or what was done.
    pub detail: Option<String>,
    /// The step planned (dry run) or taken.
    pub action: Option<String>,
    /// When it was last reconciled.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_synced: Option<OffsetDateTime>,
    /// The AWS error that failed it in this pass, as `{kind, operation, region, code,
    /// message, attempts, request_id}` (`detail` says it in words).
    pub error: Option<ApiError>,
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
    /// Why the pass ended before every step ran (stopped, or the vault could not be
    /// written); the steps not run keep their state.
    pub halted: Option<String>,
    /// Deployments no step reached because the pass halted: their rows keep the stored
    /// state (what changed for them is not known).
    #[serde(skip)]
    pub not_reached: BTreeSet<i64>,
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
            vault::text::timestamp(not_before),
            vault::text::timestamp(not_after)
        ));
    }
    None
}

/// Why ImportCertificate would refuse this material (sizes), if it would; nothing is sent.
pub fn material_problem(m: &ImportMaterial) -> Option<String> {
    let mut why = Vec::new();
    if m.certificate.len() > ACM_MAX_CERTIFICATE {
        why.push(format!(
            "the certificate is {} bytes as PEM (ACM takes at most {ACM_MAX_CERTIFICATE})",
            m.certificate.len()
        ));
    }
    let key = m.private_key.expose_secret().len();
    if key > ACM_MAX_PRIVATE_KEY {
        why.push(format!(
            "the private key is {key} bytes as PEM (ACM takes at most {ACM_MAX_PRIVATE_KEY})"
        ));
    }
    if let Some(c) = &m.chain
        && c.len() > ACM_MAX_CHAIN
    {
        why.push(format!(
            "the chain is {} bytes as PEM (ACM takes at most {ACM_MAX_CHAIN})",
            c.len()
        ));
    }
    (!why.is_empty()).then(|| format!("{}; nothing was sent to AWS", why.join("; ")))
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
        entry_id: d.entry_id.to_string(),
        account: d.account.clone(),
        vault_fingerprint: d.vault_fingerprint.clone(),
        vault_chain: d.vault_chain.clone(),
        arn: d.arn.clone(),
        deployed_fingerprint: d.deployed_fingerprint.clone(),
        deployed_chain: d.deployed_chain.clone(),
        imported_at: d.imported_at.map(OffsetDateTime::unix_timestamp),
        deployed_not_after: d.deployed_not_after.map(OffsetDateTime::unix_timestamp),
        import_started: d.import_started_at.map(OffsetDateTime::unix_timestamp),
        replace_existing: d.replace_existing,
        auto_redeploy: d.auto_redeploy,
        domains: d.domains.clone(),
        blocked: blocked(d, now),
        expired: d.not_after <= now,
        revoked: d.revoked,
    }
}

/// A region's work: observe, then (unless a dry run) apply what the vault's task planned.
struct RegionJob<A, S> {
    acm: A,
    sts: S,
    scope: Scope,
    limits: Arc<RegionLimits>,
    account: String,
    desired: Vec<Desired>,
    deep: bool,
    /// An explicit deploy: gone ARNs are re-created (so their tagged copies are looked for).
    push: bool,
    per_region: usize,
    _slot: Option<tokio::sync::OwnedSemaphorePermit>,
}

type Events<A, S> = mpsc::UnboundedSender<Event<RegionJob<A, S>>>;

fn row_of(d: &Deployment) -> StatusRow {
    StatusRow {
        id: d.id,
        name: d.name.clone(),
        entry_id: d.entry_id.to_string(),
        target: d.target.clone(),
        account: d.account.clone(),
        region: d.region.clone(),
        arn: d.arn.clone(),
        state: State::parse(&d.state).unwrap_or(State::Pending),
        vault_fingerprint: d.vault_fingerprint.clone(),
        acm_fingerprint: d.acm_fingerprint.clone(),
        not_after: d.deployed_not_after.unwrap_or(d.not_after),
        detail: d.detail.clone(),
        action: None,
        last_synced: d.last_synced,
        error: None,
    }
}

/// A deployment failed before any step ran: `detail` is its reason (stable from one pass
/// to the next), `event` what the audit event says (with AWS's request id, if any).
fn failed_update(id: i64, detail: String, event: String) -> DeploymentUpdate {
    DeploymentUpdate {
        event: Some(("acm-error".into(), event)),
        ..DeploymentUpdate::new(id, State::Failed.as_str(), Some(detail))
    }
}

/// What the vault's task keeps while a pass runs.
struct Pass<'v> {
    vault: &'v mut Vault,
    by_id: HashMap<i64, Deployment>,
    rows: BTreeMap<i64, StatusRow>,
    pending: Vec<(Option<Action>, DeploymentUpdate)>,
    commit_every: usize,
    changes: usize,
    halted: Option<String>,
    stop: CancellationToken,
    /// ARNs owned by a deployment or claimed by a step of this pass: shared with the
    /// region tasks, so no two deployments ever take the same one.
    claimed: Arc<std::sync::Mutex<BTreeSet<String>>>,
    /// Consecutive batches the vault was too busy to take.
    busy: u32,
    /// Results that could not be recorded, with why.
    unrecorded: Vec<(i64, String)>,
    /// The AWS errors that failed deployments in this pass, for the report.
    errors: HashMap<i64, ApiError>,
}

impl Pass<'_> {
    /// Keeps a step's outcome (and the AWS error that failed it), recording a batch when
    /// it is full.
    fn done(&mut self, action: Option<Action>, mut u: DeploymentUpdate, error: Option<ApiError>) {
        let Some(d) = self.by_id.get(&u.id) else {
            return;
        };
        if let Some(e) = error {
            self.errors.insert(u.id, e);
        }
        // A deployment that fails again for the same reason has not changed: it is not
        // audited again (nor logged: its state and reason are what they were).
        if u.state == State::Failed.as_str()
            && d.state == u.state
            && d.detail == u.detail
            && u.event.as_ref().is_some_and(|(a, _)| a == "acm-error")
        {
            u.event = None;
        }
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
        self.pending.push((action, u));
        if self.pending.len() >= self.commit_every {
            self.flush();
        }
    }

    /// Records what is pending, in one transaction. When another process holds the vault
    /// (busy), the batch waits for the next try; any other failure is retried row by row,
    /// so one bad row does not lose the others. Only what was recorded is reported as done.
    fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.pending);
        let written: Vec<(Option<Action>, DeploymentUpdate)> = match self
            .vault
            .update_deployments(batch.iter().map(|(_, u)| u))
        {
            Ok(()) => {
                self.busy = 0;
                batch
            }
            Err(e) if e.is_busy() => {
                self.busy += 1;
                tracing::warn!(error = %e, waiting = batch.len(), "the vault is busy; recording later");
                self.pending = batch;
                if self.busy >= 3 {
                    self.halt(format!(
                        "the vault stayed busy ({e}): another process holds it"
                    ));
                }
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "recording a batch failed; recording one by one");
                let mut ok = Vec::with_capacity(batch.len());
                for (a, u) in batch {
                    match self.vault.update_deployment(&u) {
                        Ok(()) => ok.push((a, u)),
                        Err(e) => {
                            self.halt(format!("the vault could not be written: {e}"));
                            self.unrecorded.push((u.id, e.to_string()));
                        }
                    }
                }
                ok
            }
        };
        let now = OffsetDateTime::now_utc();
        for (action, u) in written {
            let Some(d) = self.by_id.get(&u.id) else {
                continue;
            };
            let mut r = row_of(d);
            if u.deployed_fingerprint.as_deref() == Some(d.vault_fingerprint.as_str()) {
                r.not_after = d.not_after;
            }
            r.account = u.account.or(r.account);
            r.arn = u.arn.or(r.arn);
            r.acm_fingerprint = u.acm_fingerprint.or(r.acm_fingerprint);
            r.state = State::parse(&u.state).unwrap_or(State::Failed);
            r.detail = u.detail;
            r.error = self.errors.remove(&u.id);
            r.last_synced = Some(now);
            if let Some(a) = action
                && a.changes()
                && r.state != State::Failed
                && r.state != State::Pending
            {
                self.changes += 1;
                r.action = Some(action_name(&a).into());
            }
            self.rows.insert(u.id, r);
        }
    }

    fn halt(&mut self, why: String) {
        if self.halted.is_none() {
            tracing::error!(reason = %why, "stopping the pass");
            self.halted = Some(why);
        }
        self.stop.cancel();
    }
}

/// Runs one reconcile pass over the vault's deployments (or `opts.only`). Unless it is a
/// dry run, it needs the writer lock: taken here (waiting up to `opts.lock_timeout`) if
/// the caller does not hold it.
pub async fn sync<C: Connector>(
    connector: &C,
    vault: &mut Vault,
    config: &Config,
    opts: &SyncOptions,
) -> Result<SyncReport> {
    let took_lock = !opts.dry_run && !vault.holds_writer_lock();
    if took_lock {
        vault.lock_writer("sync", opts.lock_timeout)?;
    }
    if !opts.dry_run
        && let Err(e) = vault.ensure_data_key_current()
    {
        if took_lock {
            vault.release_writer();
        }
        return Err(e.into());
    }
    let result = run_pass(connector, vault, config, opts).await;
    if took_lock {
        vault.release_writer();
    }
    result
}

async fn run_pass<C: Connector>(
    connector: &C,
    vault: &mut Vault,
    config: &Config,
    opts: &SyncOptions,
) -> Result<SyncReport> {
    let started = Instant::now();
    let now = OffsetDateTime::now_utc();
    let stats = Arc::new(CallStats::default());
    let stop = opts.stop.child_token();
    check_audit(vault, opts)?;
    let (chosen, every_arn, refused_rows) = choose(vault, opts)?;
    let mut groups: BTreeMap<(String, String), Vec<Desired>> = BTreeMap::new();
    for d in &chosen {
        groups
            .entry((d.target.clone(), d.region.clone()))
            .or_default()
            .push(desired_of(d, now));
    }
    let mut pass = Pass {
        by_id: chosen.into_iter().map(|d| (d.id, d)).collect(),
        vault,
        rows: BTreeMap::new(),
        pending: Vec::new(),
        commit_every: config.sync.commit_every.max(1),
        changes: 0,
        halted: None,
        stop: stop.clone(),
        claimed: Arc::new(std::sync::Mutex::new(every_arn.clone())),
        busy: 0,
        unrecorded: Vec::new(),
        errors: HashMap::new(),
    };

    let grace = Duration::from_secs(config.sync.stop_grace_s);
    // A stop while targets connect: calls in flight get the grace period, no more.
    let sessions = tokio::select! {
        s = connect_all(connector, config, &groups, &stats, &stop) => s,
        () = async {
            stop.cancelled().await;
            tokio::time::sleep(grace).await;
        } => BTreeMap::new(),
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let mut regions = Regions {
        tx,
        rx,
        tasks: JoinSet::new(),
        task_regions: HashMap::new(),
    };
    spawn_regions(
        connector,
        config,
        opts,
        &mut pass,
        groups,
        &sessions,
        &stats,
        &mut regions,
    );
    let plan_opts = PlanOptions {
        force: opts.force,
        push: opts.push,
        settle_secs: config.sync.import_settle_s as i64,
    };
    drive(&mut pass, opts, &plan_opts, &mut regions, grace).await;
    Ok(finish(pass, refused_rows, &stats, started))
}

/// Before anything is pushed: the whole audit log verifies (what decides whether a
/// certificate is revoked is bound to it), and, if an anchor kept outside the vault is
/// given, the vault is not behind it (rolled back to an older copy). A dry run checks
/// nothing (it sends nothing).
fn check_audit(vault: &mut Vault, opts: &SyncOptions) -> Result<()> {
    if opts.dry_run {
        return Ok(());
    }
    // Before anything is pushed: the whole audit log verifies (what decides whether a
    // certificate is revoked is bound to it), and, if an anchor kept outside the vault
    // is given, the vault is not behind it (rolled back to an older copy).
    let checked = vault
        .require_audit_intact()
        .and_then(|()| match &opts.expect_head {
            Some((seq, digest)) => vault.advance_audit_anchor(Some((*seq, digest))).map(drop),
            None => Ok(()),
        });
    if let Err(e) = checked {
        // Audited (when the log can still be written: not when its newest events were
        // cut), and nothing is done.
        let _ = vault.record_event(
            "integrity-failure",
            None,
            &format!("{e}; refused: a sync pass"),
        );
        return Err(e.into());
    }
    Ok(())
}

/// The deployments a pass works on (all, or `opts.only`), every ARN recorded, and the
/// rows refused: changed outside certvault (a deployment pointed at another entry, a
/// version moved under it), not acted on, named and audited. (A dry run, with the vault
/// locked, cannot check; it sends nothing.)
fn choose(
    vault: &mut Vault,
    opts: &SyncOptions,
) -> Result<(Vec<Deployment>, BTreeSet<String>, Vec<StatusRow>)> {
    let all = vault.deployments()?;
    let every_arn: BTreeSet<String> = all.iter().filter_map(|d| d.arn.clone()).collect();
    let chosen: Vec<Deployment> = all
        .into_iter()
        .filter(|d| opts.only.is_empty() || opts.only.contains(&d.id))
        .collect();
    // Rows changed outside certvault (a deployment pointed at another entry, a version
    // moved under it) are not acted on: refused, named, audited. (A dry run, with the vault
    // locked, cannot check; it sends nothing.)
    let tampered = if opts.dry_run {
        BTreeMap::new()
    } else {
        vault.deployment_problems()?
    };
    let mut refused_rows: Vec<StatusRow> = Vec::new();
    let chosen: Vec<Deployment> = chosen
        .into_iter()
        .filter(|d| match tampered.get(&d.id) {
            None => true,
            Some(bad) => {
                let mut r = row_of(d);
                r.state = State::Failed;
                r.detail = Some(
                    vault::Error::RowTampered {
                        table: bad.table,
                        row: bad.row.clone(),
                    }
                    .to_string(),
                );
                refused_rows.push(r);
                false
            }
        })
        .collect();
    for r in &refused_rows {
        if let Some(bad) = tampered.get(&r.id) {
            vault.record_integrity_failure(bad, &format!("reconciling deployment {}", r.id))?;
        }
    }
    Ok((chosen, every_arn, refused_rows))
}

/// The region tasks of a pass, and the channel they report on.
struct Regions<A, S> {
    tx: Events<A, S>,
    rx: mpsc::UnboundedReceiver<Event<RegionJob<A, S>>>,
    tasks: JoinSet<()>,
    task_regions: HashMap<tokio::task::Id, Vec<i64>>,
}

/// One task per (target, region) with deployments to observe, plan and apply: what cannot
/// start (the target did not connect, deployments pinned to another account, a second
/// deployment of an entry to one account and region) fails before anything is sent.
#[allow(clippy::too_many_arguments)]
fn spawn_regions<C: Connector>(
    connector: &C,
    config: &Config,
    opts: &SyncOptions,
    pass: &mut Pass<'_>,
    groups: BTreeMap<(String, String), Vec<Desired>>,
    sessions: &BTreeMap<String, std::result::Result<(C::Session, String), ApiError>>,
    stats: &Arc<CallStats>,
    regions: &mut Regions<C::Acm, C::Sts>,
) {
    let stop = &pass.stop.clone();
    let pool = LimiterPool::new(config.quotas);
    let slots = Arc::new(Semaphore::new(config.concurrency.regions.max(1)));
    // One deployment per entry, account and region: two targets that resolve to the same
    // account would otherwise keep two copies there.
    let mut placed: HashMap<(String, String, String), (i64, String)> = HashMap::new();
    for ((target, region), desired) in groups {
        let (session, account) = match sessions.get(&target) {
            Some(Ok(s)) => s.clone(),
            Some(Err(e)) if e.kind != ErrorKind::Stopped => {
                for d in &desired {
                    fail(
                        pass,
                        opts,
                        d.id,
                        format!("target {target}: {}", e.reason()),
                        Some(e),
                    );
                }
                continue;
            }
            // Stopped before this target was reached: its deployments keep their state.
            _ => continue,
        };
        // Deployments pinned to another account than the credentials resolve to: failed,
        // with both accounts named, and not even observed.
        let (desired, mismatched): (Vec<Desired>, Vec<Desired>) = desired
            .into_iter()
            .partition(|d| account_problem(d, &account).is_none());
        for d in &mismatched {
            let why = account_problem(d, &account).unwrap_or_default();
            fail(pass, opts, d.id, format!("target {target}: {why}"), None);
        }
        let mut unique = Vec::with_capacity(desired.len());
        for d in desired {
            match placed.get(&(d.entry_id.clone(), account.clone(), region.clone())) {
                Some((first, other)) => fail(
                    pass,
                    opts,
                    d.id,
                    format!(
                        "the entry is already deployed to account {account} in {region} through target {other} (deployment {first}); a second deployment there would be a second copy: undeploy one of them"
                    ),
                    None,
                ),
                None => {
                    placed.insert(
                        (d.entry_id.clone(), account.clone(), region.clone()),
                        (d.id, target.clone()),
                    );
                    unique.push(d);
                }
            }
        }
        let desired = unique;
        if desired.is_empty() {
            continue;
        }
        let scope = Scope::new(config.retry, stats.clone(), &target, &region, stop.clone());
        let ids: Vec<i64> = desired.iter().map(|d| d.id).collect();
        let job = RegionJob {
            acm: connector.acm(&session, &region),
            sts: connector.sts(&session),
            limits: pool.get(&account, &region),
            scope,
            account,
            desired,
            deep: opts.deep,
            push: opts.push,
            per_region: config.concurrency.per_region,
            _slot: None,
        };
        let tx = regions.tx.clone();
        let slots = slots.clone();
        let key = (target, region);
        let handle = regions.tasks.spawn(async move {
            let mut job = job;
            // At most `concurrency.regions` regions at once; the slot is held until the
            // region's steps are applied.
            job._slot = slots.acquire_owned().await.ok();
            let result = observe_region(
                &job.acm,
                &job.scope,
                &job.limits,
                &job.desired,
                &job.account,
                job.deep,
                job.push,
                job.per_region,
            )
            .await;
            let _ = tx.send(Event::Observed {
                key,
                result,
                job: Box::new(job),
            });
        });
        regions.task_regions.insert(handle.id(), ids);
    }
}

/// Takes what the region tasks report until every one has ended, recording as it goes
/// (at least every 2 s); a stop gives the calls in flight `grace`, then abandons them.
async fn drive<A: AcmApi + AcmWrite + 'static, S: StsApi + 'static>(
    pass: &mut Pass<'_>,
    opts: &SyncOptions,
    plan_opts: &PlanOptions,
    regions: &mut Regions<A, S>,
    grace: Duration,
) {
    let stop = pass.stop.clone();
    let Regions {
        tx,
        rx,
        tasks,
        task_regions,
    } = regions;
    let mut stop_deadline: Option<tokio::time::Instant> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if stop.is_cancelled() && stop_deadline.is_none() {
            stop_deadline = Some(tokio::time::Instant::now() + grace);
            if pass.halted.is_none() {
                pass.halted =
                    Some("stopped: calls in flight finished, nothing new was started".into());
            }
        }
        let deadline = async {
            match stop_deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            Some(ev) = rx.recv() => handle(pass, ev, opts, plan_opts, tx, tasks, task_regions),
            joined = tasks.join_next_with_id(), if !tasks.is_empty() => {
                if let Some(Err(e)) = joined
                    && e.is_panic()
                {
                    // A bug, not AWS: that region's deployments fail, the others go on.
                    for id in task_regions.remove(&e.id()).unwrap_or_default() {
                        if !pass.rows.contains_key(&id) {
                            fail(pass, opts, id, format!("internal error: the region's task panicked ({e}); nothing more was sent"), None);
                        }
                    }
                }
            }
            () = deadline => {
                tracing::warn!(grace_s = grace.as_secs(), "calls still in flight after the grace period: abandoned (an abandoned import is looked for on the next pass)");
                tasks.abort_all();
                while tasks.join_next().await.is_some() {}
                while let Ok(ev) = rx.try_recv() {
                    handle(pass, ev, opts, plan_opts, tx, tasks, task_regions);
                }
                tasks.abort_all();
                break;
            }
            _ = tick.tick() => pass.flush(),
            () = stop.cancelled(), if stop_deadline.is_none() => {}
        }
        if tasks.is_empty() {
            // Every task has ended: take what they said last.
            while let Ok(ev) = rx.try_recv() {
                handle(pass, ev, opts, plan_opts, tx, tasks, task_regions);
            }
            if tasks.is_empty() {
                break;
            }
        }
    }
}

/// The pass's report: its last results recorded (a busy vault gets a few more tries),
/// what was done in ACM but not recorded said so, and the deployments no step reached
/// with their stored state.
fn finish(
    mut pass: Pass<'_>,
    refused_rows: Vec<StatusRow>,
    stats: &CallStats,
    started: Instant,
) -> SyncReport {
    // The last results: a busy vault gets a few more tries.
    for _ in 0..3 {
        pass.flush();
        if pass.pending.is_empty() {
            break;
        }
    }
    if !pass.pending.is_empty() {
        let left = std::mem::take(&mut pass.pending);
        pass.halt(format!(
            "{} could not be recorded: the vault stayed busy",
            vault::text::count(left.len(), "result", "results")
        ));
        for (_, u) in left {
            pass.unrecorded.push((u.id, "the vault stayed busy".into()));
        }
    }
    for (id, why) in std::mem::take(&mut pass.unrecorded) {
        if let Some(d) = pass.by_id.get(&id) {
            let mut r = row_of(d);
            r.detail = Some(format!(
                "done in ACM this pass but not recorded ({why}); the next pass finds it there"
            ));
            pass.rows.insert(id, r);
        }
    }

    for r in refused_rows {
        pass.rows.insert(r.id, r);
    }
    // Deployments no step reached keep their stored state.
    let mut report = SyncReport::default();
    for (id, d) in &pass.by_id {
        if !pass.rows.contains_key(id) {
            let mut r = row_of(d);
            if pass.halted.is_some() {
                r.detail = Some(format!(
                    "not reached this pass ({}); last known state kept",
                    pass.halted.as_deref().unwrap_or_default()
                ));
                report.not_reached.insert(*id);
            }
            pass.rows.insert(*id, r);
        }
    }
    report.deployments = std::mem::take(&mut pass.rows).into_values().collect();
    report
        .deployments
        .sort_by(|a, b| (&a.name, &a.target, &a.region).cmp(&(&b.name, &b.target, &b.region)));
    report.failures = report
        .deployments
        .iter()
        .filter(|d| d.state == State::Failed)
        .count();
    report.changes = pass.changes;
    report.halted = pass.halted.take();
    report.api_calls = stats.snapshot();
    report.elapsed_ms = started.elapsed().as_millis();
    report
}

/// Records a failure found before anything was sent (a dry run only reports it).
fn fail(
    pass: &mut Pass<'_>,
    opts: &SyncOptions,
    id: i64,
    detail: String,
    error: Option<&ApiError>,
) {
    if opts.dry_run {
        if let Some(d) = pass.by_id.get(&id) {
            let mut r = row_of(d);
            r.state = State::Failed;
            r.detail = Some(detail);
            r.error = error.cloned();
            pass.rows.insert(id, r);
        }
        return;
    }
    let event = match error {
        Some(e) => format!("{detail}{}", e.particulars()),
        None => detail.clone(),
    };
    pass.done(None, failed_update(id, detail, event), error.cloned());
}

/// Resolves every target's credentials and account, concurrently, each under a timeout.
async fn connect_all<C: Connector>(
    connector: &C,
    config: &Config,
    groups: &BTreeMap<(String, String), Vec<Desired>>,
    stats: &Arc<CallStats>,
    stop: &CancellationToken,
) -> BTreeMap<String, std::result::Result<(C::Session, String), ApiError>> {
    let names: BTreeSet<String> = groups.keys().map(|(t, _)| t.clone()).collect();
    let timeout = Duration::from_secs(config.sync.connect_timeout_s);
    stream::iter(names)
        .map(|name| async move {
            // Only `default` means the ambient credentials. A deployment whose target has
            // left the configuration must fail, not fall back to whatever account is ambient.
            let target = match config.targets.iter().find(|t| t.name == name) {
                Some(t) => t.clone(),
                None if name == "default" => Target {
                    name: name.clone(),
                    ..Target::default()
                },
                None => {
                    let e = ApiError::refused(
                        "Configuration",
                        "global",
                        Refusal::UnknownTarget {
                            target: name.clone(),
                        },
                    );
                    return (name, Err(e));
                }
            };
            let scope = Scope::new(config.retry, stats.clone(), &name, "global", stop.clone());
            let connected = connect_within(connector, &target, &scope, timeout).await;
            (name, connected)
        })
        .buffer_unordered(config.concurrency.regions.max(1))
        .collect()
        .await
}

/// Handles one event from a region task.
fn handle<A: AcmApi + AcmWrite + 'static, S: StsApi + 'static>(
    pass: &mut Pass<'_>,
    ev: Event<RegionJob<A, S>>,
    opts: &SyncOptions,
    plan_opts: &PlanOptions,
    tx: &Events<A, S>,
    tasks: &mut JoinSet<()>,
    task_regions: &mut HashMap<tokio::task::Id, Vec<i64>>,
) {
    match ev {
        Event::ImportStarting { id, ack } => {
            let r = pass
                .vault
                .record_import_started(id, OffsetDateTime::now_utc())
                .map_err(|e| e.to_string());
            if let Err(why) = &r {
                pass.halt(format!("the vault could not be written: {why}"));
            }
            let _ = ack.send(r);
        }
        Event::ImportAbandoned { id } => {
            if let Err(e) = pass.vault.clear_import_started(id) {
                tracing::warn!(error = %e, "could not forget an import that was not sent; the next pass waits before importing");
            }
        }
        Event::Imported(rec) => {
            pass.claimed
                .lock()
                .expect("claims lock")
                .insert(rec.arn.clone());
            if let Err(e) = pass.vault.record_imported(&rec) {
                // The certificate is in ACM, tagged with its entry: the next pass adopts it.
                pass.halt(format!(
                    "the vault could not record {} ({e}); the next pass adopts it by its tag",
                    rec.arn
                ));
            }
        }
        Event::Done(b) => {
            let (action, u, error) = *b;
            pass.done(Some(action), u, error);
        }
        Event::Observed { key, result, job } => {
            let (target, _region) = key;
            match result {
                Ok(observation) => plan_region(
                    pass,
                    *job,
                    observation,
                    opts,
                    plan_opts,
                    tx,
                    tasks,
                    task_regions,
                ),
                Err(e) if e.kind == ErrorKind::Stopped => {}
                Err(e) => {
                    for d in &job.desired {
                        fail(
                            pass,
                            opts,
                            d.id,
                            format!("target {target}: {}", e.reason()),
                            Some(&e),
                        );
                    }
                }
            }
        }
    }
}

/// Plans a region that was observed; a dry run reports, anything else starts applying.
#[allow(clippy::too_many_arguments)]
fn plan_region<A: AcmApi + AcmWrite + 'static, S: StsApi + 'static>(
    pass: &mut Pass<'_>,
    job: RegionJob<A, S>,
    observation: Observation,
    opts: &SyncOptions,
    plan_opts: &PlanOptions,
    tx: &Events<A, S>,
    tasks: &mut JoinSet<()>,
    task_regions: &mut HashMap<tokio::task::Id, Vec<i64>>,
) {
    let Observation {
        mut observed,
        summaries,
    } = observation;
    let mine: BTreeSet<&str> = job
        .desired
        .iter()
        .filter_map(|d| d.arn.as_deref())
        .collect();
    observed.claimed = pass
        .claimed
        .lock()
        .expect("claims lock")
        .iter()
        .filter(|a| !mine.contains(a.as_str()))
        .cloned()
        .collect();
    let mut actions = plan(&job.desired, &observed, *plan_opts);
    // Regions are planned one at a time, here: what this plan takes, no later plan can.
    {
        let mut claimed = pass.claimed.lock().expect("claims lock");
        for a in &actions {
            if let Action::Adopt { arn, .. } | Action::Reimport { arn, .. } = a {
                claimed.insert(arn.clone());
            }
        }
    }
    if opts.dry_run {
        for a in &actions {
            let Some(d) = pass.by_id.get(&a.id()) else {
                continue;
            };
            let mut r = row_of(d);
            r.account = Some(job.account.clone());
            describe_action(&mut r, a, &observed);
            if a.changes() {
                pass.changes += 1;
            }
            pass.rows.insert(a.id(), r);
        }
        return;
    }
    // Key material is opened here, on the vault's task, and moved into the region's task;
    // it never leaves memory except to ACM. A key that cannot be opened, or material ACM
    // would refuse, fails that deployment alone.
    let mut materials: BTreeMap<i64, ImportMaterial> = BTreeMap::new();
    for a in &mut actions {
        if !matches!(a, Action::Import { .. } | Action::Reimport { .. }) {
            continue;
        }
        let id = a.id();
        let Some(d) = pass.by_id.get(&id) else {
            continue;
        };
        let problem = match pass.vault.import_material(&d.entry_id) {
            Ok(m) => match material_problem(&m) {
                None => {
                    materials.insert(id, m);
                    None
                }
                Some(why) => Some(why),
            },
            Err(e) => {
                if let vault::Error::RowTampered { table, row } = &e {
                    let bad = vault::integrity::BadRow {
                        table,
                        row: row.clone(),
                    };
                    let _ = pass
                        .vault
                        .record_integrity_failure(&bad, &format!("sending deployment {id}"));
                }
                Some(format!("{e}; nothing was sent to AWS"))
            }
        };
        if let Some(why) = problem {
            *a = Action::Flag {
                id,
                state: State::Failed,
                detail: Some(why),
            };
        }
    }
    let claimed = pass.claimed.clone();
    let tx = tx.clone();
    let ids: Vec<i64> = job.desired.iter().map(|d| d.id).collect();
    let handle = tasks.spawn(async move {
        let job = job;
        let mut actions = actions;
        let desired: HashMap<i64, &Desired> = job.desired.iter().map(|d| (d.id, d)).collect();
        // Just before any key leaves: are these still the account's credentials?
        if actions.iter().any(|a| matches!(a, Action::Import { .. } | Action::Reimport { .. })) {
            let who = job
                .scope
                .call(None, "GetCallerIdentity", Idempotence::Safe, || {
                    job.sts.account()
                })
                .await;
            let refusal = match who {
                Ok(a) if a == job.account => None,
                Ok(a) => Some(format!(
                    "the target's credentials now resolve to account {a}, not {} as when the pass began: nothing was sent",
                    job.account
                )),
                Err(e) if e.kind == ErrorKind::Stopped => return,
                Err(e) => Some(format!(
                    "cannot confirm the account before sending keys ({}): nothing was sent", e.reason()
                )),
            };
            if let Some(why) = refusal {
                for a in &mut actions {
                    if matches!(a, Action::Import { .. } | Action::Reimport { .. }) {
                        *a = Action::Flag {
                            id: a.id(),
                            state: State::Failed,
                            detail: Some(why.clone()),
                        };
                    }
                }
            }
        }
        let applier = Applier {
            acm: &job.acm,
            scope: &job.scope,
            limits: &job.limits,
            account: &job.account,
            tx: &tx,
            summaries: &summaries,
            observed: &observed,
            claimed: &claimed,
        };
        stream::iter(actions)
            .for_each_concurrent(job.per_region.max(1), |a| {
                let d = desired[&a.id()];
                let m = materials.get(&a.id());
                let applier = &applier;
                let tx = &tx;
                async move {
                    if applier.scope.stop.is_cancelled() && a.changes() {
                        return;
                    }
                    if let Some((u, error)) = applier.apply(&a, d, m).await {
                        let _ = tx.send(Event::Done(Box::new((a, u, error))));
                    }
                }
            })
            .await;
    });
    task_regions.insert(handle.id(), ids);
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

#[cfg(test)]
mod tests;
