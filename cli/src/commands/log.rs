//! `certvault log` and `certvault log verify`.

use anyhow::Result;
use vault::text::count;

use super::Ctx;
use crate::{
    Reported, Status,
    args::{LogAction, LogArgs},
    output::{cell, date},
};

pub(crate) fn log(ctx: &Ctx, args: LogArgs) -> Result<Status> {
    let p = &ctx.printer;
    match args.action {
        None => {
            let v = ctx.open()?;
            let events = v.audit_events()?;
            if p.json {
                p.json(&events)?;
            } else {
                let mut t = p.table(&["#", "WHEN", "WHO", "ACTION", "ENTRY", "DETAIL"]);
                for e in &events {
                    t.add_row(vec![
                        cell(e.seq),
                        cell(date(e.at)),
                        cell(&e.actor),
                        cell(&e.action),
                        cell(e.entry_name.as_deref().unwrap_or("")),
                        cell(&e.detail),
                    ]);
                }
                t.keep(&[0, 1, 3]);
                t.print()?;
            }
            Ok(Status::Ok)
        }
        Some(LogAction::Head) => {
            let v = ctx.open()?;
            match v.audit_anchor()? {
                Some((seq, digest)) => {
                    if p.json {
                        p.json(&Head {
                            anchor: format!("{seq}:{digest}"),
                            digest: &digest,
                            seq,
                        })?;
                    } else {
                        p.line(&format!("{seq}:{digest}"))?;
                    }
                    Ok(Status::Ok)
                }
                None => Err(Reported("the audit log is empty".into()).into()),
            }
        }
        Some(LogAction::Verify(a)) => {
            let v = ctx.unlock_read_only()?;
            let mut report = v.verify_audit()?;
            if report.problem.is_none()
                && let Some((seq, digest)) = &a.expect_head
                && let Some(what) = v.check_audit_anchor(*seq, digest)?
            {
                report.problem = Some(vault::integrity::AuditProblem { seq: *seq, what });
            }
            if p.json {
                p.json(&report)?;
            }
            match report.problem {
                None => {
                    if !p.json {
                        p.line(&format!(
                            "audit log intact: {} events verified{}",
                            report.events,
                            a.expect_head
                                .map(|(n, _)| format!(", event #{n} matches its anchor"))
                                .unwrap_or_default()
                        ))?;
                    }
                    Ok(Status::Ok)
                }
                Some(problem) => Err(Reported(format!(
                    "audit log verification FAILED at event #{}: {}",
                    problem.seq, problem.what
                ))
                .into()),
            }
        }
    }
}

/// `certvault verify`: every sealed row, what only grows, the header and the audit chain.
/// Writes nothing (the vault is opened `query_only`, and unlocking it upgrades nothing).
pub(crate) fn verify(ctx: &Ctx) -> Result<Status> {
    let p = &ctx.printer;
    let v = ctx.unlock_read_only()?;
    let report = v.verify()?;
    if p.json {
        p.json(&report)?;
    } else {
        for bad in &report.bad_rows {
            p.line(&format!(
                "BAD  {bad}: changed outside certvault (or never sealed)"
            ))?;
        }
        for what in &report.header {
            p.line(&format!("BAD  header: {what}"))?;
        }
        for what in &report.pending {
            p.line(&format!("NOT YET  {what}"))?;
        }
        if let Some(problem) = &report.audit.problem {
            p.line(&format!(
                "BAD  audit log at event #{}: {}",
                problem.seq, problem.what
            ))?;
        }
        p.line(&format!(
            "{} and {} checked; {}; audit log {}",
            count(report.rows, "row", "rows"),
            count(report.audit.events, "audit event", "audit events"),
            count(report.bad_rows.len(), "bad row", "bad rows"),
            if report.audit.problem.is_none() {
                "intact"
            } else {
                "NOT intact"
            }
        ))?;
    }
    if report.intact() {
        Ok(Status::Ok)
    } else {
        Err(Reported(format!(
            "the vault failed verification: {}{}{}{}",
            count(report.bad_rows.len(), "bad row", "bad rows"),
            if report.header.is_empty() {
                ""
            } else {
                ", a damaged header"
            },
            if report.pending.is_empty() {
                ""
            } else {
                ", rows not sealed yet (an upgrade waits for the next unlock)"
            },
            if report.audit.problem.is_some() {
                " and a broken audit log"
            } else {
                ""
            }
        ))
        .into())
    }
}

/// What `log head --output json` prints.
#[derive(serde::Serialize)]
struct Head<'a> {
    anchor: String,
    digest: &'a str,
    seq: i64,
}

/// What `backup --output json` prints.
#[derive(serde::Serialize)]
struct BackupWritten<'a> {
    audit_head: Option<&'a str>,
    path: &'a std::path::Path,
}

/// `certvault backup OUT`.
pub(crate) fn backup(ctx: &Ctx, args: crate::args::BackupArgs) -> Result<Status> {
    let p = &ctx.printer;
    let v = ctx.open()?;
    let anchor = v.backup(&args.out, args.force)?;
    let anchor = anchor.map(|(s, d)| format!("{s}:{d}"));
    if p.json {
        p.json(&BackupWritten {
            audit_head: anchor.as_deref(),
            path: &args.out,
        })?;
    } else {
        p.line(&format!(
            "backup written to {} (0600); its audit log ends at {}",
            args.out.display(),
            anchor.as_deref().unwrap_or("(empty)")
        ))?;
    }
    Ok(Status::Ok)
}
