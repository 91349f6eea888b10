//! Plans for the pairs a selection gives (per target, its credentials resolved once and
//! each region's listeners read once), and the moves of approved plans, each move audited
//! in the vault as it is known.

use std::collections::BTreeMap;

use vault::Vault;

use crate::{
    aws::Connector,
    config::Config,
    elb::{
        rotate::{RotationPlan, Swap, rotation_apply, rotation_plans},
        select::Pair,
    },
    error::ApiError,
};

/// Plans for `pairs`: a result per pair, in order. A target that cannot be reached, or a
/// region whose listeners cannot be read, fails each of its pairs; nothing is changed.
pub async fn plan_pairs<C: Connector>(
    connector: &C,
    config: &Config,
    pairs: &[Pair],
) -> crate::Result<Vec<Result<RotationPlan, ApiError>>> {
    let mut out: Vec<Option<Result<RotationPlan, ApiError>>> = vec![None; pairs.len()];
    let mut by_target: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, p) in pairs.iter().enumerate() {
        by_target.entry(p.target.as_str()).or_default().push(i);
    }
    for (name, idx) in by_target {
        let mut regions: Vec<String> = idx.iter().map(|&i| pairs[i].region.clone()).collect();
        regions.sort();
        regions.dedup();
        let target = config.select(Some(name), Some(&regions))?.remove(0);
        let asked: Vec<(String, String)> = idx
            .iter()
            .map(|&i| (pairs[i].old.clone(), pairs[i].new.clone()))
            .collect();
        match rotation_plans(connector, config, &target, &asked).await {
            Ok(results) => {
                for (&i, r) in idx.iter().zip(results) {
                    out[i] = Some(r);
                }
            }
            Err(e) => {
                for &i in &idx {
                    out[i] = Some(Err(e.clone()));
                }
            }
        }
    }
    // Every index is in exactly one target's group.
    Ok(out.into_iter().flatten().collect())
}

/// Each swap of a plan, with its outcome.
pub type SwapOutcomes = Vec<(Swap, Result<(), ApiError>)>;

/// What became of one approved plan.
#[derive(Debug, Clone)]
pub struct PlanOutcome {
    /// The plan.
    pub plan: RotationPlan,
    /// Each swap's outcome, in order; or why none was tried (the target's account could
    /// not be confirmed).
    pub swaps: Result<SwapOutcomes, ApiError>,
}

impl PlanOutcome {
    /// How many of its listeners were not moved.
    pub fn failed(&self) -> usize {
        match &self.swaps {
            Ok(s) => s.iter().filter(|(_, r)| r.is_err()).count(),
            Err(_) => self.plan.swaps.len(),
        }
    }
}

/// The audit text of one move.
fn what(plan: &RotationPlan, s: &Swap) -> String {
    format!(
        "{} listener {} of {} ({}) in {}, account {}: {} -> {}",
        s.kind.words(),
        s.listener,
        s.resource,
        s.lb_type,
        plan.region,
        plan.account,
        s.old,
        s.new
    )
}

/// Applies approved plans (`(target name, plan)`), in order: each swap audited in the vault
/// (`rotate`, or `rotate-failed` with why). A failed swap or plan stops only itself; a
/// vault that cannot record stops everything (what was moved by then is in AWS, and a
/// new run finds it moved).
pub async fn apply_plans<C: Connector>(
    connector: &C,
    v: &mut Vault,
    config: &Config,
    plans: &[(String, RotationPlan)],
) -> crate::Result<Vec<PlanOutcome>> {
    let mut out = Vec::with_capacity(plans.len());
    for (target_name, plan) in plans {
        let target = config
            .select(Some(target_name), Some(std::slice::from_ref(&plan.region)))?
            .remove(0);
        let mut outcomes: SwapOutcomes = Vec::new();
        let applied = rotation_apply(connector, config, &target, plan, &mut |s, r| {
            outcomes.push((s.clone(), r.clone()))
        })
        .await;
        if let Err(e) = applied {
            out.push(PlanOutcome {
                plan: plan.clone(),
                swaps: Err(e),
            });
            continue;
        }
        for (s, r) in &outcomes {
            let what = what(plan, s);
            match r {
                Ok(()) => v.record_event("rotate", None, &format!("moved the {what}"))?,
                Err(e) => v.record_event(
                    "rotate-failed",
                    None,
                    &format!("could not move the {what}: {e}"),
                )?,
            }
        }
        out.push(PlanOutcome {
            plan: plan.clone(),
            swaps: Ok(outcomes),
        });
    }
    Ok(out)
}
