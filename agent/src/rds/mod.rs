//! RDS, Aurora and DocumentDB server CAs: which CA each instance pins, whether it is the
//! one expected and how long it lasts (`audit`), and the workflow of `rds ca-audit
//! [--apply]` (`ca_audit`): the audit of every selected region, which instances move, the
//! confirmation, the moves one at a time (each waited for with tokio time) and their audit
//! events. It promises that nothing changes in AWS unless the caller confirms, and that a
//! stopped run says what it did not reach.

mod audit;
mod ca_audit;

pub use audit::*;
pub use ca_audit::{RdsOutcome, RdsRun, apply_and_record, needing_rotation};
