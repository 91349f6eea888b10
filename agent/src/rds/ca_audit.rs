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
