//! `certvault agent`: reconcile passes on an interval until told to stop, with a small HTTP
//! endpoint for Prometheus and health checks. The vault stays on this task; the endpoint
//! only reads a snapshot.
//!
//! Each pass takes the vault's writer lock (waiting up to the lock timeout for a CLI
//! command that holds it, else skipping the pass) and releases it after. SIGTERM or SIGINT
//! stops a pass between steps: calls in flight finish, results are recorded, and the agent
//! exits 0.

use std::{
    collections::{BTreeMap, HashMap},
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use time::OffsetDateTime;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
    sync::Semaphore,
};
use tokio_util::sync::CancellationToken;
use vault::Vault;

use crate::{
    aws::Connector,
    aws::retry::{CallCounts, jitter_unit},
    config::Config,
    error::Result,
    reconcile::plan::State,
    reconcile::{SyncOptions, SyncReport, sync},
};

/// How the agent runs.
#[derive(Debug, Clone, Default)]
pub struct AgentOptions {
    /// Time between passes (each wait is spread by ±10 %).
    pub interval: Duration,
    /// How long a pass waits for the writer lock before it is skipped.
    pub lock_timeout: Duration,
    /// Where the agent keeps the audit anchor it last saw, outside the vault: each pass
    /// first checks the vault against it and does nothing from a vault behind it (rolled
    /// back to an older copy); `None`: none is kept.
    pub anchor_file: Option<std::path::PathBuf>,
}

/// Upper bounds of the pass-duration histogram, in seconds.
const DURATION_BUCKETS: [f64; 12] = [
    0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];

/// How the last pass ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Outcome {
    /// No pass yet.
    #[default]
    None,
    /// Every deployment was checked or applied without failure.
    Ok,
    /// Some deployments failed (the others were applied).
    Failures,
    /// Stopped between steps (SIGTERM), or the vault could not be written.
    Halted,
    /// The writer lock was held by another process for the whole lock timeout.
    Busy,
    /// The pass could not run at all (the vault could not be read).
    Error,
}

impl Outcome {
    const ALL: [(Outcome, &'static str); 5] = [
        (Outcome::Ok, "ok"),
        (Outcome::Failures, "failures"),
        (Outcome::Halted, "halted"),
        (Outcome::Busy, "busy"),
        (Outcome::Error, "error"),
    ];
}

/// What the endpoint serves.
#[derive(Debug, Default, Clone)]
pub struct Metrics {
    /// Deployments by (target, region, state), from the last pass.
    pub deployments: BTreeMap<(String, String, String), u64>,
    /// End of validity of what each deployment serves: (entry, target, region) -> unix s.
    pub not_after: BTreeMap<(String, String, String), i64>,
    /// Last pass in which a (target, region) had no failure (unix seconds).
    pub last_success: BTreeMap<(String, String), i64>,
    /// AWS calls since start: (operation, target, region) -> (calls, errors, throttled).
    pub api: BTreeMap<(String, String, String), (u64, u64, u64)>,
    /// Reconcile passes since start.
    pub passes: u64,
    /// Passes that did not end `ok`.
    pub failed_passes: u64,
    /// Pass durations: counts per bucket of [`DURATION_BUCKETS`], then the sum and count.
    pub duration_buckets: [u64; DURATION_BUCKETS.len()],
    /// Sum of pass durations, seconds.
    pub duration_sum: f64,
    /// Passes that ran (and were timed).
    pub duration_count: u64,
    /// How the last pass ended.
    pub last_outcome: Outcome,
    /// Failed deployments in the last pass.
    pub last_failures: u64,
    /// When the last pass finished (unix seconds).
    pub last_pass_finished: Option<i64>,
    /// The vault is unlocked (the agent can act).
    pub unlocked: bool,
    /// Certificates the agent renewed (issued by the vault's CA) since start.
    pub renewals: u64,
    /// Renewals that failed since start.
    pub renewal_failures: u64,
    /// Uses of a CA pending deletion (refused, audited), as the audit log counts them.
    pub ca_use_while_pending: u64,
}

impl Metrics {
    fn absorb(&mut self, report: &SyncReport) {
        self.passes += 1;
        let secs = report.elapsed_ms as f64 / 1000.0;
        for (i, le) in DURATION_BUCKETS.iter().enumerate() {
            if secs <= *le {
                self.duration_buckets[i] += 1;
            }
        }
        self.duration_sum += secs;
        self.duration_count += 1;
        self.deployments.clear();
        self.not_after.clear();
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let mut failed_locations = std::collections::BTreeSet::new();
        for d in &report.deployments {
            *self
                .deployments
                .entry((d.target.clone(), d.region.clone(), d.state.as_str().into()))
                .or_default() += 1;
            self.not_after.insert(
                (d.name.clone(), d.target.clone(), d.region.clone()),
                d.not_after.unix_timestamp(),
            );
            if d.state == State::Failed {
                failed_locations.insert((d.target.clone(), d.region.clone()));
            }
        }
        if report.halted.is_none() {
            for d in &report.deployments {
                let key = (d.target.clone(), d.region.clone());
                if !failed_locations.contains(&key) {
                    self.last_success.insert(key, now);
                }
            }
        }
        self.last_failures = report.failures as u64;
        self.last_outcome = if report.halted.is_some() {
            Outcome::Halted
        } else if report.failures > 0 {
            Outcome::Failures
        } else {
            Outcome::Ok
        };
        if self.last_outcome != Outcome::Ok {
            self.failed_passes += 1;
        }
        self.last_pass_finished = Some(now);
        self.add_calls(&report.api_calls);
    }

    fn add_calls(&mut self, c: &CallCounts) {
        for l in &c.by_location {
            let e = self
                .api
                .entry((l.operation.clone(), l.target.clone(), l.region.clone()))
                .or_default();
            e.0 += l.calls;
            e.1 += l.errors;
            e.2 += l.throttled;
        }
    }

    fn ended_without_pass(&mut self, outcome: Outcome) {
        self.passes += 1;
        self.failed_passes += 1;
        self.last_outcome = outcome;
    }

    /// Whether the agent is ready: unlocked, and a pass has finished.
    pub fn ready(&self) -> bool {
        self.unlocked && self.last_pass_finished.is_some()
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let mut family = |name: &str, kind: &str, help: &str, samples: Vec<(String, String)>| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        family(
            "certvault_deployments",
            "gauge",
            "Deployments by target, region and state at the last pass.",
            self.deployments
                .iter()
                .map(|((t, r, s), n)| {
                    (
                        labels(&[("target", t), ("region", r), ("state", s)]),
                        n.to_string(),
                    )
                })
                .collect(),
        );
        family(
            "certvault_certificate_not_after_timestamp_seconds",
            "gauge",
            "End of validity of the certificate each deployment serves (alert on time() minus this).",
            self.not_after
                .iter()
                .map(|((e, t, r), v)| {
                    (
                        labels(&[("entry", e), ("target", t), ("region", r)]),
                        v.to_string(),
                    )
                })
                .collect(),
        );
        family(
            "certvault_last_successful_reconcile_timestamp_seconds",
            "gauge",
            "Last pass in which a target and region had no failure.",
            self.last_success
                .iter()
                .map(|((t, r), v)| (labels(&[("target", t), ("region", r)]), v.to_string()))
                .collect(),
        );
        let api = |i: usize| -> Vec<(String, String)> {
            self.api
                .iter()
                .map(|((o, t, r), c)| {
                    let v = [c.0, c.1, c.2][i];
                    (
                        labels(&[("operation", o), ("target", t), ("region", r)]),
                        v.to_string(),
                    )
                })
                .collect()
        };
        family(
            "certvault_aws_api_calls_total",
            "counter",
            "AWS calls (every attempt) by operation, target and region.",
            api(0),
        );
        family(
            "certvault_aws_api_errors_total",
            "counter",
            "Failed AWS calls by operation, target and region.",
            api(1),
        );
        family(
            "certvault_aws_throttled_total",
            "counter",
            "AWS calls answered with throttling, by operation, target and region.",
            api(2),
        );
        family(
            "certvault_reconcile_passes_total",
            "counter",
            "Reconcile passes.",
            vec![(String::new(), self.passes.to_string())],
        );
        family(
            "certvault_reconcile_failed_passes_total",
            "counter",
            "Passes that did not end ok (failures, halted, busy, error).",
            vec![(String::new(), self.failed_passes.to_string())],
        );
        let mut buckets: Vec<(String, String)> = DURATION_BUCKETS
            .iter()
            .zip(self.duration_buckets)
            .map(|(le, n)| (format!("_bucket{{le=\"{le}\"}}"), n.to_string()))
            .collect();
        buckets.push((
            "_bucket{le=\"+Inf\"}".into(),
            self.duration_count.to_string(),
        ));
        buckets.push(("_sum".into(), self.duration_sum.to_string()));
        buckets.push(("_count".into(), self.duration_count.to_string()));
        let _ = writeln!(
            out,
            "# HELP certvault_reconcile_duration_seconds Duration of reconcile passes.\n# TYPE certvault_reconcile_duration_seconds histogram"
        );
        for (suffix, v) in buckets {
            let _ = writeln!(out, "certvault_reconcile_duration_seconds{suffix} {v}");
        }
        let mut family = |name: &str, kind: &str, help: &str, samples: Vec<(String, String)>| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        family(
            "certvault_last_reconcile_outcome",
            "gauge",
            "How the last pass ended: 1 for the outcome that applies, 0 for the others.",
            Outcome::ALL
                .iter()
                .map(|(o, name)| {
                    (
                        labels(&[("outcome", name)]),
                        u8::from(*o == self.last_outcome).to_string(),
                    )
                })
                .collect(),
        );
        family(
            "certvault_last_reconcile_failures",
            "gauge",
            "Deployments that failed in the last pass.",
            vec![(String::new(), self.last_failures.to_string())],
        );
        family(
            "certvault_agent_ready",
            "gauge",
            "1 when the vault is unlocked and a pass has finished.",
            vec![(String::new(), u8::from(self.ready()).to_string())],
        );
        family(
            "certvault_renewals_total",
            "counter",
            "Certificates from the vault's CA the agent renewed by itself since start.",
            vec![(String::new(), self.renewals.to_string())],
        );
        family(
            "certvault_renewal_failures_total",
            "counter",
            "Renewals by the agent that failed since start.",
            vec![(String::new(), self.renewal_failures.to_string())],
        );
        family(
            "certvault_ca_use_while_pending_total",
            "counter",
            "Attempts to use a CA pending deletion (each refused and audited), as the audit log counts them.",
            vec![(String::new(), self.ca_use_while_pending.to_string())],
        );
        out
    }
}

/// `{k="v",...}` with Prometheus escaping of the values.
fn labels(pairs: &[(&str, &str)]) -> String {
    let body: Vec<String> = pairs
        .iter()
        .map(|(k, v)| {
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{k}=\"{v}\"")
        })
        .collect();
    format!("{{{}}}", body.join(","))
}

/// At most this many connections to the endpoint at once.
const MAX_CONNECTIONS: usize = 64;

/// Serves `GET /metrics` (Prometheus text), `/healthz` (the process is alive) and
/// `/readyz` (unlocked, and a pass has finished) on `addr` until the runtime stops.
pub async fn serve_metrics(
    addr: SocketAddr,
    metrics: Arc<Mutex<Metrics>>,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(50);
        loop {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let (mut sock, _) = match listener.accept().await {
                Ok(c) => {
                    backoff = Duration::from_millis(50);
                    c
                }
                Err(e) => {
                    // Out of file descriptors, say: back off instead of spinning.
                    tracing::warn!(error = %e, "metrics endpoint: accept failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            };
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let _slot = slot;
                let mut buf = [0u8; 2048];
                let n =
                    match tokio::time::timeout(Duration::from_secs(5), sock.read(&mut buf)).await {
                        Ok(Ok(n)) => n,
                        _ => return,
                    };
                let request = String::from_utf8_lossy(&buf[..n]);
                let path = request
                    .strip_prefix("GET ")
                    .and_then(|r| r.split_whitespace().next())
                    .map(|p| p.split('?').next().unwrap_or(p))
                    .unwrap_or("");
                let (status, body) = match path {
                    "/metrics" => ("200 OK", metrics.lock().expect("metrics lock").render()),
                    "/healthz" => ("200 OK", "ok\n".to_owned()),
                    "/readyz" => {
                        if metrics.lock().expect("metrics lock").ready() {
                            ("200 OK", "ready\n".to_owned())
                        } else {
                            (
                                "503 Service Unavailable",
                                "not ready: no pass has finished yet, or the vault is locked\n"
                                    .to_owned(),
                            )
                        }
                    }
                    _ => (
                        "404 Not Found",
                        "served here: /metrics, /healthz, /readyz\n".to_owned(),
                    ),
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(response.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    Ok(bound)
}

/// Takes the writer lock, waiting up to `timeout` (or until `stop`): `Err(holder)` if busy.
async fn take_lock(
    vault: &mut Vault,
    timeout: Duration,
    stop: &CancellationToken,
) -> Result<std::result::Result<(), String>> {
    let start = tokio::time::Instant::now();
    loop {
        match vault.try_lock_writer("agent")? {
            None => return Ok(Ok(())),
            Some(holder) if start.elapsed() >= timeout || stop.is_cancelled() => {
                return Ok(Err(holder));
            }
            Some(_) => {
                tokio::select! {
                    () = stop.cancelled() => {}
                    () = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
        }
    }
}

/// Reconcile passes every `interval` (±10 %) until `shutdown` resolves. A shutdown during
/// a pass stops it between steps; a failed pass is logged and tried again at the next.
pub async fn run<C: Connector>(
    connector: &C,
    vault: &mut Vault,
    config: &Config,
    opts: AgentOptions,
    metrics: Arc<Mutex<Metrics>>,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    tokio::pin!(shutdown);
    let stop = CancellationToken::new();
    let mut shutting_down = false;
    // The last state logged per deployment: a change is logged once, when it happens.
    let mut known: HashMap<i64, (State, Option<String>)> = HashMap::new();
    // A vault behind the kept anchor is said once, not at every pass.
    let mut behind_said = false;
    metrics.lock().expect("metrics lock").unlocked = true;
    loop {
        let locked = {
            let taking = take_lock(vault, opts.lock_timeout, &stop);
            tokio::pin!(taking);
            loop {
                tokio::select! {
                    r = &mut taking => break r,
                    () = &mut shutdown, if !shutting_down => {
                        shutting_down = true;
                        stop.cancel();
                    }
                }
            }
        };
        // Before anything (a purge, a renewal, a push): the vault against the audit anchor
        // this agent kept outside it. A vault behind it was rolled back to an older copy.
        let (checked, behind) = match (&locked, &opts.anchor_file) {
            (Ok(Ok(())), Some(path)) => match anchor_check(vault, path) {
                Ok(a) => (a, None),
                Err(why) => (None, Some(why)),
            },
            _ => (None, None),
        };
        match locked {
            Ok(Ok(())) if behind.is_some() => {
                vault.release_writer();
                if !behind_said {
                    tracing::error!(
                        problem = behind.as_deref().unwrap_or_default(),
                        "the vault was rolled back behind the audit anchor this agent kept: nothing is done from it until it is restored (or the anchor file is removed, which accepts it)"
                    );
                    behind_said = true;
                }
                metrics
                    .lock()
                    .expect("metrics lock")
                    .ended_without_pass(Outcome::Error);
            }
            Ok(Ok(())) => {
                // Rotated under us (checked once the lock is held: a rotation takes it too),
                // before anything acts on the vault or AWS with a key that opens nothing.
                if let Err(e) = vault.ensure_data_key_current() {
                    vault.release_writer();
                    let e = crate::error::Error::from(e);
                    tracing::error!(error = %e, "stopping");
                    return Err(e);
                }
                behind_said = false;
                // The vault's own CA first: keys whose waiting window ended are destroyed,
                // and what is due is renewed, so this pass deploys the renewals.
                let (renewed, failed) = ca_maintenance(vault, time::OffsetDateTime::now_utc());
                {
                    let mut m = metrics.lock().expect("metrics lock");
                    m.renewals += renewed;
                    m.renewal_failures += failed;
                    if let Ok(n) = vault.count_audit_events("ca-use-while-pending") {
                        m.ca_use_while_pending = n;
                    }
                }
                let sync_opts = SyncOptions {
                    stop: stop.child_token(),
                    ..SyncOptions::default()
                };
                let result = {
                    let pass = sync(connector, vault, config, &sync_opts);
                    tokio::pin!(pass);
                    loop {
                        tokio::select! {
                            r = &mut pass => break r,
                            () = &mut shutdown, if !shutting_down => {
                                shutting_down = true;
                                tracing::info!("stopping: finishing the calls in flight and recording them");
                                stop.cancel();
                            }
                        }
                    }
                };
                // The newest anchor is kept, unless the pass found the log itself wrong.
                let log_refused = matches!(
                    result,
                    Err(crate::error::Error::Vault(
                        vault::Error::AuditTampered { .. } | vault::Error::RolledBack { .. }
                    ))
                );
                if let Some(path) = &opts.anchor_file
                    && !log_refused
                    && let Err(e) = anchor_keep(vault, path, checked.as_ref())
                {
                    tracing::warn!(error = %e, path = %path.display(), "cannot keep the audit anchor");
                }
                vault.release_writer();
                // Rotated under us: what this process holds no longer opens anything.
                if let Err(e @ crate::error::Error::Vault(vault::Error::DataKeyRotated { .. })) =
                    result
                {
                    tracing::error!(error = %e, "stopping");
                    return Err(e);
                }
                match result {
                    Ok(report) => {
                        log_pass(&report, &mut known);
                        metrics.lock().expect("metrics lock").absorb(&report);
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "reconcile pass failed");
                        metrics
                            .lock()
                            .expect("metrics lock")
                            .ended_without_pass(Outcome::Error);
                    }
                }
            }
            Ok(Err(holder)) if !shutting_down => {
                tracing::warn!(%holder, "vault busy: this pass is skipped");
                metrics
                    .lock()
                    .expect("metrics lock")
                    .ended_without_pass(Outcome::Busy);
            }
            Ok(Err(_)) => {}
            Err(e) => {
                tracing::error!(error = %e, "cannot take the vault's writer lock");
                metrics
                    .lock()
                    .expect("metrics lock")
                    .ended_without_pass(Outcome::Error);
            }
        }
        if shutting_down {
            tracing::info!("stopped");
            return Ok(());
        }
        let wait = opts.interval.mul_f64((1.0 + 0.1 * jitter_unit()).max(0.0));
        tokio::select! {
            () = &mut shutdown => {
                tracing::info!("stopped");
                return Ok(());
            }
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Purges the CAs whose waiting window ended, then renews every issued certificate that
/// is due (`--auto-renew-before`). One failure is logged and the rest go on. Returns
/// (renewed, failed).
pub fn ca_maintenance(vault: &mut Vault, now: time::OffsetDateTime) -> (u64, u64) {
    match vault.purge_due_cas() {
        Ok(purged) => {
            for ca in purged {
                tracing::warn!(ca = %ca, "the CA's waiting window ended: its key is destroyed");
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot purge CAs"),
    }
    let due = match vault.due_for_renewal(now) {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %e, "cannot read what is due for renewal");
            return (0, 1);
        }
    };
    let (mut renewed, mut failed) = (0, 0);
    for (id, name) in due {
        match vault.renew(&id, false) {
            Ok(c) => {
                renewed += 1;
                tracing::info!(
                    entry = %name,
                    version = c.version,
                    ca = %c.ca,
                    not_after = %vault::text::timestamp(c.not_after),
                    "renewed by the agent"
                );
            }
            Err(e) => {
                failed += 1;
                tracing::error!(entry = %name, error = %e, "renewal failed");
            }
        }
    }
    (renewed, failed)
}

/// Checks the vault against the audit anchor kept in `path` (`VAULT_ID N:DIGEST`, written
/// by [`anchor_keep`] after each pass): the log must still hold event N with that digest.
/// No file yet: nothing to check (the first pass keeps one). A vault rolled back to an older
/// copy, or whose newest events were cut, fails, saying what differs; so does an anchor file
/// that cannot be read, or that is another vault's. The vault's newest anchor when it holds.
pub fn anchor_check(
    vault: &Vault,
    path: &std::path::Path,
) -> std::result::Result<Option<(i64, String)>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(format!(
                "the anchor file {} cannot be read: {e}",
                path.display()
            ));
        }
    };
    let parsed = text.trim().split_once(' ').and_then(|(id, a)| {
        let (seq, digest) = a.split_once(':')?;
        Some((id, seq.parse::<i64>().ok()?, digest))
    });
    let Some((id, seq, digest)) = parsed else {
        return Err(format!(
            "the anchor file {} is not `VAULT_ID N:DIGEST`",
            path.display()
        ));
    };
    if id != vault.vault_id() {
        return Err(format!(
            "the anchor file {} is for vault {id}, not this one ({})",
            path.display(),
            vault.vault_id()
        ));
    }
    vault
        .advance_audit_anchor(Some((seq, digest)))
        .map_err(|e| format!("{e} (anchor kept in {})", path.display()))
}

/// Keeps the vault's newest audit anchor in `path` (read on from `checked`, the anchor
/// checked before the pass, if any): written to a temporary file (0600) and renamed over
/// it, its folder made (0700) if missing.
fn anchor_keep(
    vault: &Vault,
    path: &std::path::Path,
    checked: Option<&(i64, String)>,
) -> std::io::Result<()> {
    use std::io::Write as _;
    let newest = match checked {
        Some((seq, digest)) => vault.audit_anchor_from(*seq, digest),
        None => vault.audit_anchor(),
    };
    let Some((seq, digest)) = newest.map_err(|e| std::io::Error::other(e.to_string()))? else {
        return Ok(());
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        open.mode(0o600);
    }
    let mut f = open.open(&tmp)?;
    writeln!(f, "{} {seq}:{digest}", vault.vault_id())?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)
}

/// What a pass changed, to be logged: deployments acted on, and those whose state or
/// reason differs from the last pass. At the first pass an agent sees, only deployments not
/// in sync; deployments a halted pass did not reach are not news (their state is the one
/// stored). Updates `known` to this pass.
fn changes_to_log<'r>(
    report: &'r SyncReport,
    known: &mut HashMap<i64, (State, Option<String>)>,
) -> Vec<&'r crate::reconcile::StatusRow> {
    let first = known.is_empty();
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for d in &report.deployments {
        seen.insert(d.id);
        if report.not_reached.contains(&d.id) {
            continue;
        }
        let now = (d.state, d.detail.clone());
        let changed = match known.get(&d.id) {
            Some(before) => *before != now,
            None => !(first && d.state == State::InSync),
        };
        if d.action.is_some() || changed {
            out.push(d);
        }
        known.insert(d.id, now);
    }
    known.retain(|id, _| seen.contains(id));
    out
}

fn log_pass(report: &SyncReport, known: &mut HashMap<i64, (State, Option<String>)>) {
    for d in changes_to_log(report, known) {
        let level_warn = !matches!(d.state, State::InSync | State::Pending);
        let (entry, target, region) = (&d.name, &d.target, &d.region);
        let action = d.action.as_deref().unwrap_or("none");
        let arn = d.arn.as_deref().unwrap_or("");
        let detail = d.detail.as_deref().unwrap_or("");
        if level_warn {
            tracing::warn!(%entry, %target, %region, state = d.state.as_str(), %action, %arn, %detail, "deployment state changed");
        } else {
            tracing::info!(%entry, %target, %region, state = d.state.as_str(), %action, %arn, %detail, "deployment state changed");
        }
    }
    tracing::info!(
        deployments = report.deployments.len(),
        changes = report.changes,
        failures = report.failures,
        halted = report.halted.as_deref().unwrap_or(""),
        api_calls = report.api_calls.total,
        throttled = report.api_calls.throttled,
        elapsed_ms = report.elapsed_ms as u64,
        "reconcile pass"
    );
}

#[cfg(test)]
mod tests;
