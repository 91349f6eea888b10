//! `certvault agent`: reconcile passes on an interval until told to stop, with a Prometheus
//! endpoint. The vault stays on this task; the metrics server only reads a snapshot.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use time::OffsetDateTime;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};
use vault::{ListFilter, Vault};

use crate::{
    aws::Connector,
    config::Config,
    error::Result,
    reconcile::{SyncOptions, SyncReport, sync},
    retry::CallCounts,
};

/// What the metrics endpoint serves.
#[derive(Debug, Default, Clone)]
pub struct Metrics {
    /// Deployments by state, from the last pass.
    pub deployments_by_state: BTreeMap<String, u64>,
    /// Vault certificates (current versions) expiring within 30 days, expired included.
    pub expiring_30d: u64,
    /// Last successful reconcile per region (unix seconds).
    pub last_success_by_region: BTreeMap<String, i64>,
    /// AWS calls since start, by operation.
    pub api_calls: BTreeMap<String, u64>,
    /// AWS errors since start, by operation.
    pub api_errors: BTreeMap<String, u64>,
    /// Throttled AWS calls since start.
    pub throttled: u64,
    /// Reconcile passes since start.
    pub passes: u64,
    /// Passes that failed outright.
    pub failed_passes: u64,
    /// Duration of the last pass, seconds.
    pub last_pass_seconds: f64,
}

impl Metrics {
    fn absorb(&mut self, report: &SyncReport, expiring: u64) {
        self.passes += 1;
        self.expiring_30d = expiring;
        self.last_pass_seconds = report.elapsed_ms as f64 / 1000.0;
        self.deployments_by_state.clear();
        for state in [
            "in-sync", "outdated", "drifted", "missing", "expired", "pending", "failed",
        ] {
            self.deployments_by_state.insert(state.to_owned(), 0);
        }
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let mut failed_regions = std::collections::BTreeSet::new();
        for d in &report.deployments {
            *self
                .deployments_by_state
                .entry(d.state.as_str().to_owned())
                .or_default() += 1;
            if d.state == crate::plan::State::Failed {
                failed_regions.insert(d.region.clone());
            }
        }
        for d in &report.deployments {
            if !failed_regions.contains(&d.region) {
                self.last_success_by_region.insert(d.region.clone(), now);
            }
        }
        self.add_calls(&report.api_calls);
    }

    fn add_calls(&mut self, c: &CallCounts) {
        for (op, n) in &c.calls {
            *self.api_calls.entry(op.clone()).or_default() += n;
        }
        for (op, n) in &c.errors {
            *self.api_errors.entry(op.clone()).or_default() += n;
        }
        self.throttled += c.throttled;
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
        let labelled = |label: &str, m: &BTreeMap<String, u64>| -> Vec<(String, String)> {
            m.iter()
                .map(|(k, v)| (format!("{{{label}=\"{k}\"}}"), v.to_string()))
                .collect()
        };
        family(
            "certvault_deployments",
            "gauge",
            "Deployments by state at the last reconcile.",
            labelled("state", &self.deployments_by_state),
        );
        family(
            "certvault_certificates_expiring_30d",
            "gauge",
            "Vault certificates expiring within 30 days (expired included).",
            vec![(String::new(), self.expiring_30d.to_string())],
        );
        family(
            "certvault_last_successful_reconcile_timestamp_seconds",
            "gauge",
            "Last reconcile of a region without failures.",
            self.last_success_by_region
                .iter()
                .map(|(r, t)| (format!("{{region=\"{r}\"}}"), t.to_string()))
                .collect(),
        );
        family(
            "certvault_aws_api_calls_total",
            "counter",
            "AWS calls by operation.",
            labelled("operation", &self.api_calls),
        );
        family(
            "certvault_aws_api_errors_total",
            "counter",
            "Failed AWS calls by operation.",
            labelled("operation", &self.api_errors),
        );
        family(
            "certvault_aws_throttled_total",
            "counter",
            "AWS calls answered with throttling.",
            vec![(String::new(), self.throttled.to_string())],
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
            "Passes that failed outright.",
            vec![(String::new(), self.failed_passes.to_string())],
        );
        family(
            "certvault_reconcile_duration_seconds",
            "gauge",
            "Duration of the last pass.",
            vec![(String::new(), self.last_pass_seconds.to_string())],
        );
        out
    }
}

/// Serves `GET /metrics` (Prometheus text) on `addr` until the runtime stops.
pub async fn serve_metrics(
    addr: SocketAddr,
    metrics: Arc<Mutex<Metrics>>,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                continue;
            };
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let n =
                    match tokio::time::timeout(Duration::from_secs(5), sock.read(&mut buf)).await {
                        Ok(Ok(n)) => n,
                        _ => return,
                    };
                let request = String::from_utf8_lossy(&buf[..n]);
                let (status, body) = if request.starts_with("GET /metrics ")
                    || request.starts_with("GET /metrics?")
                {
                    ("200 OK", metrics.lock().expect("metrics lock").render())
                } else {
                    ("404 Not Found", "only /metrics is served here\n".to_owned())
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

/// Reconcile passes every `interval` until `shutdown` resolves; a pass in flight finishes
/// first. Failures of a pass are logged and retried at the next one.
pub async fn run<C: Connector>(
    connector: &C,
    vault: &mut Vault,
    config: &Config,
    interval: Duration,
    metrics: Arc<Mutex<Metrics>>,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    tokio::pin!(shutdown);
    loop {
        let opts = SyncOptions::default();
        match sync(connector, vault, config, &opts).await {
            Ok(report) => {
                let expiring = vault
                    .list(&ListFilter {
                        expiring_within: Some(time::Duration::days(30)),
                        ..Default::default()
                    })
                    .map(|l| l.len() as u64)
                    .unwrap_or(0);
                for d in &report.deployments {
                    if d.action.is_some() || d.state != crate::plan::State::InSync {
                        tracing::info!(
                            entry = %d.name, target = %d.target, region = %d.region, state = d.state.as_str(),
                            action = d.action.as_deref().unwrap_or("none"), arn = d.arn.as_deref().unwrap_or(""),
                            detail = d.detail.as_deref().unwrap_or(""), "deployment"
                        );
                    }
                }
                tracing::info!(
                    deployments = report.deployments.len(),
                    changes = report.changes,
                    failures = report.failures,
                    api_calls = report.api_calls.total,
                    throttled = report.api_calls.throttled,
                    elapsed_ms = report.elapsed_ms as u64,
                    "reconcile pass"
                );
                metrics
                    .lock()
                    .expect("metrics lock")
                    .absorb(&report, expiring);
            }
            Err(e) => {
                tracing::error!(error = %e, "reconcile pass failed");
                metrics.lock().expect("metrics lock").failed_passes += 1;
            }
        }
        tokio::select! {
            () = &mut shutdown => {
                tracing::info!("stopping: the last pass has finished");
                return Ok(());
            }
            () = tokio::time::sleep(interval) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_render_as_prometheus_text() {
        let mut m = Metrics::default();
        m.deployments_by_state.insert("in-sync".into(), 3);
        m.api_calls.insert("ListCertificates".into(), 7);
        m.last_success_by_region
            .insert("us-east-1".into(), 1_800_000_000);
        let text = m.render();
        assert!(text.contains("certvault_deployments{state=\"in-sync\"} 3"));
        assert!(text.contains("certvault_aws_api_calls_total{operation=\"ListCertificates\"} 7"));
        assert!(text.contains(
            "certvault_last_successful_reconcile_timestamp_seconds{region=\"us-east-1\"} 1800000000"
        ));
        assert!(text.contains("# TYPE certvault_aws_throttled_total counter"));
        assert_eq!(text.matches("# HELP certvault_deployments ").count(), 1);
    }
}
