//! Elastic Load Balancing: every listener that serves one ACM certificate moved to
//! another (`rotate`), and email-validated certificates replaced by DNS-validated ones,
//! listeners and all (`migrate`). It owns the selection of what to move, the plan read
//! from AWS, the moves and their audit events; it promises that nothing is changed when
//! any part of a plan is refused or unreadable, and that a run after a failure resumes
//! where the last one stopped (every plan is read from AWS again).

mod migrate;
pub(crate) mod rotate;
mod run;
mod select;

pub use self::{
    migrate::{
        MigrateEvent, MigrateOptions, MigrateReport, Migration, MigrationNote, Records,
        find_migrations, migration_counts, run_migrations,
    },
    rotate::{
        Elsewhere, Listeners, RotationPlan, Swap, SwapKind, plan_swaps, rotation_apply,
        rotation_plan, rotation_plans,
    },
    run::{PlanOutcome, SwapOutcomes, apply_plans, plan_pairs},
    select::{Pair, RotateRequest, SelectError, Selection, Skipped, select_pairs},
};

#[cfg(test)]
mod tests;
