//! The workflow of `rds ca-audit --apply` once the caller has confirmed the moves: each
//! instance moved ([`rds_apply`]), each change, failure and stop audited in the vault as
//! it happens, and a row per instance that needed rotation saying what became of it.

use serde::Serialize;
use vault::Vault;

use super::audit::{
    RdsApplyOptions, RdsAudits, RdsMove, RdsProgress, RdsRefusal, RegionAudit, rds_apply,
};
use crate::{
    aws::Connector,
    config::{Config, Target},
};

/// What became of one instance that needed rotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RdsOutcome {
    /// The instance.
    pub instance: String,
    /// Its region.
    pub region: String,
    /// The CA it was moved to (absent for one refused before anything was tried).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
    /// Whether it was changed (absent for one refused before anything was tried).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied: Option<bool>,
    /// Why it was not (fully) moved.
    pub error: Option<String>,
}

/// What `--apply` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RdsRun {
    /// The refused instances first, then one row per instance tried, in order.
    pub outcomes: Vec<RdsOutcome>,
    /// Why it stopped, and how many moves were not reached.
    pub stopped: Option<(String, usize)>,
}

impl RdsRun {
    /// A run of nothing but the instances refused before anything was tried.
    pub fn refused(refused: &[RdsRefusal]) -> RdsRun {
        RdsRun {
            outcomes: refused
                .iter()
                .map(|r| RdsOutcome {
                    instance: r.instance.clone(),
                    region: r.region.clone(),
                    ca: None,
                    applied: None,
                    error: Some(r.why.clone()),
                })
                .collect(),
            stopped: None,
        }
    }

    /// Whether any instance could not be moved.
    pub fn any_failed(&self) -> bool {
        self.outcomes.iter().any(|o| o.error.is_some())
    }
}

/// How many audited instances need rotation.
pub fn needing_rotation(audits: &[(Target, RegionAudit)]) -> usize {
    audits
        .iter()
        .map(|(_, a)| a.instances.iter().filter(|i| i.needs_rotation).count())
        .sum()
}

impl RdsAudits {
    /// How many audited instances need rotation.
    pub fn needing_rotation(&self) -> usize {
        needing_rotation(&self.audits)
    }
}

/// The audit text of one move.
fn what(m: &RdsMove, no_restart: bool) -> String {
    format!(
        "DB instance {} ({}{}) in {}, account {}: CA {} -> {}{}",
        m.instance,
        m.engine,
        match (&m.cluster, m.writer) {
            (Some(c), true) => format!(", writer of cluster {c}"),
            (Some(c), false) => format!(", reader of cluster {c}"),
            (None, _) => String::new(),
        },
        m.region,
        m.account,
        m.from.as_deref().unwrap_or("none"),
        m.to,
        if no_restart {
            " (at its next restart)"
        } else {
            ""
        }
    )
}

/// Moves the confirmed `moves` (see [`rds_apply`]) and audits each step: `rds-ca` for a
/// change accepted, `rds-ca-failed` for one refused, `rds-ca-stopped` when everything
/// stops. `progress` hears every step as it happens (to tell the waits). A vault that
/// cannot record stops the run at once (nothing further is changed): that error.
pub async fn apply_and_record<C: Connector>(
    connector: &C,
    v: &mut Vault,
    config: &Config,
    moves: &[RdsMove],
    refused: &[RdsRefusal],
    opts: RdsApplyOptions,
    progress: &mut (dyn FnMut(&RdsProgress<'_>) + Send),
) -> Result<RdsRun, vault::Error> {
    let mut run = RdsRun::refused(refused);
    if moves.is_empty() {
        return Ok(run);
    }
    let mut unrecorded: Option<vault::Error> = None;
    let mut changed: Vec<String> = Vec::new();
    let row = |m: &RdsMove, applied: bool, error: Option<String>| RdsOutcome {
        instance: m.instance.clone(),
        region: m.region.clone(),
        ca: Some(m.to.clone()),
        applied: Some(applied),
        error,
    };
    let mut hear = |p: RdsProgress<'_>| -> bool {
        progress(&p);
        let recorded = match p {
            RdsProgress::Waiting { .. } => Ok(()),
            RdsProgress::Changed(m) => {
                changed.push(m.instance.clone());
                let what = what(m, opts.no_restart);
                v.record_event("rds-ca", None, &format!("moved {what}"))
            }
            RdsProgress::Failed(m, e) => {
                run.outcomes.push(row(m, false, Some(e.to_string())));
                let what = what(m, opts.no_restart);
                v.record_event(
                    "rds-ca-failed",
                    None,
                    &format!("could not move {what}: {e}"),
                )
            }
            RdsProgress::Available(m) => {
                run.outcomes.push(row(m, true, None));
                Ok(())
            }
            RdsProgress::Stopped(m, why) => {
                // The instance waited for may have been changed already.
                let was = changed.contains(&m.instance);
                run.outcomes.push(row(m, was, Some(why.to_owned())));
                v.record_event("rds-ca-stopped", None, why)
            }
        };
        match recorded {
            Ok(()) => true,
            Err(e) => {
                unrecorded = Some(e);
                false
            }
        }
    };
    let applied = rds_apply(connector, config, moves, opts, &mut hear).await;
    if let Some(e) = unrecorded {
        return Err(e);
    }
    run.stopped = applied.stopped;
    Ok(run)
}

#[cfg(test)]
mod tests {
    use std::{sync::Arc, time::Duration};

    use time::OffsetDateTime;
    use vault::Passphrase;

    use super::*;
    use crate::{
        aws::RdsCa,
        aws::fake::{Fake, FakeDb, Hook},
        rds::{rds_ca_audits, rds_moves},
    };

    fn fleet(fake: &Fake, ids: &[&str]) {
        let now = OffsetDateTime::now_utc();
        let mut s = fake.state.lock().unwrap();
        s.rds_cas = vec![
            RdsCa {
                id: "rds-ca-2019".into(),
                valid_from: None,
                valid_till: Some(now + time::Duration::days(30)),
            },
            RdsCa {
                id: "rds-ca-rsa2048-g1".into(),
                valid_from: None,
                valid_till: Some(now + time::Duration::days(3000)),
            },
        ];
        s.rds_default = Some("rds-ca-rsa2048-g1".into());
        let db = |id: &str| FakeDb {
            id: id.into(),
            engine: "postgres".into(),
            ca: "rds-ca-2019".into(),
            status: "available".into(),
            cluster: None,
            writer: false,
            busy_after_change: 2,
            busy_left: 0,
            quiet_after_change: 0,
            quiet_left: 0,
        };
        s.dbs
            .insert("us-east-1".into(), ids.iter().map(|id| db(id)).collect());
    }

    /// The `nth` ModifyDBInstance (from 1) fails; the others go through.
    fn fail_modify(fake: &Fake, nth: usize) {
        let state = fake.state.clone();
        let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let hook = move |op: &'static str| {
            if op != "ModifyDBInstance" {
                return;
            }
            let n = seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            let mut s = state.lock().unwrap();
            let f = s.faults.entry("us-east-1".into()).or_default();
            if n == nth {
                f.fail_ops
                    .insert("ModifyDBInstance", "InvalidParameterCombination");
            } else {
                f.fail_ops.remove("ModifyDBInstance");
            }
        };
        fake.state.lock().unwrap().hook = Hook(Some(Arc::new(hook)));
    }

    fn target() -> Vec<Target> {
        vec![Target {
            name: "default".into(),
            regions: vec!["us-east-1".into()],
            ..Default::default()
        }]
    }

    fn opts(wait: u64) -> RdsApplyOptions {
        RdsApplyOptions {
            no_restart: false,
            wait_timeout: Duration::from_secs(wait),
            restart_settle: Duration::from_secs(60),
        }
    }

    /// Issue 17: `rds ca-audit --apply`'s audit events are the agent's. One instance's
    /// failed change is its own (audited `rds-ca-failed`, a row saying it was not
    /// changed); the others are changed, waited for (paused clock) and audited `rds-ca`.
    #[tokio::test(start_paused = true)]
    async fn each_change_is_audited_and_a_failed_one_stops_only_itself() {
        let fake = Fake::default();
        fleet(&fake, &["pg-0", "pg-1", "pg-2"]);
        fail_modify(&fake, 2);
        let dir = tempfile::tempdir().unwrap();
        let mut v = Vault::create(
            &dir.path().join("v.db"),
            &Passphrase::new("correct horse battery".into()),
        )
        .unwrap();
        let config = Config::default();
        let audits = rds_ca_audits(&fake, &config, &target(), None).await;
        assert_eq!(audits.needing_rotation(), 3);
        let (moves, refused) = rds_moves(&audits.audits);
        let mut heard = Vec::new();
        let started = tokio::time::Instant::now();
        let run = apply_and_record(
            &fake,
            &mut v,
            &config,
            &moves,
            &refused,
            opts(600),
            &mut |p| heard.push(matches!(p, RdsProgress::Waiting { .. })),
        )
        .await
        .unwrap();
        // Each changed instance was read until available again: 1 + 2 s of waiting (busy
        // twice), then available; two of them.
        assert!(
            started.elapsed() >= Duration::from_secs(2 * 3),
            "{:?}",
            started.elapsed()
        );
        assert!(heard.iter().any(|w| *w), "the waits were told");
        assert!(run.stopped.is_none(), "{run:?}");
        let row = |id: &str| run.outcomes.iter().find(|o| o.instance == id).unwrap();
        assert_eq!(row("pg-0").applied, Some(true));
        assert_eq!(row("pg-0").error, None);
        assert_eq!(row("pg-1").applied, Some(false));
        assert!(
            row("pg-1")
                .error
                .as_deref()
                .is_some_and(|e| e.contains("InvalidParameterCombination")),
            "{run:?}"
        );
        assert_eq!(row("pg-2").applied, Some(true));
        assert!(run.any_failed());
        let actions: Vec<String> = v
            .audit_events()
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .filter(|a| a.starts_with("rds-"))
            .collect();
        assert_eq!(actions, ["rds-ca", "rds-ca-failed", "rds-ca"]);
    }

    /// An instance that is not available again within the wait stops everything: audited
    /// `rds-ca-stopped`, its row says it was changed, and the moves not reached are counted.
    #[tokio::test(start_paused = true)]
    async fn a_wait_that_times_out_stops_the_run_and_is_audited() {
        let fake = Fake::default();
        fleet(&fake, &["pg-0", "pg-1"]);
        fake.state.lock().unwrap().dbs.get_mut("us-east-1").unwrap()[0].busy_after_change = 1000;
        let dir = tempfile::tempdir().unwrap();
        let mut v = Vault::create(
            &dir.path().join("v.db"),
            &Passphrase::new("correct horse battery".into()),
        )
        .unwrap();
        let config = Config::default();
        let audits = rds_ca_audits(&fake, &config, &target(), None).await;
        let (moves, refused) = rds_moves(&audits.audits);
        let started = tokio::time::Instant::now();
        let run = apply_and_record(
            &fake,
            &mut v,
            &config,
            &moves,
            &refused,
            opts(120),
            &mut |_| {},
        )
        .await
        .unwrap();
        assert!(started.elapsed() <= Duration::from_secs(120 + 15));
        let (why, left) = run.stopped.clone().expect("stopped");
        assert_eq!(left, 1, "{why}");
        assert_eq!(run.outcomes.len(), 1, "{run:?}");
        assert_eq!(run.outcomes[0].instance, "pg-0");
        assert_eq!(run.outcomes[0].applied, Some(true));
        let actions: Vec<String> = v
            .audit_events()
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .filter(|a| a.starts_with("rds-"))
            .collect();
        assert_eq!(actions, ["rds-ca", "rds-ca-stopped"]);
        assert_eq!(fake.state.lock().unwrap().rds_changes.len(), 1);
    }
}
