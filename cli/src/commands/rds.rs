//! `certvault rds ca-audit`: the server CA of every RDS, Aurora and DocumentDB instance in
//! every selected region, and (`--apply`) each moved to the expected one, one at a time.

use std::io::IsTerminal;

use anyhow::{Result, bail};
use serde_json::json;

use super::Ctx;
use crate::{
    Status, UsageError,
    args::{RdsAction, RdsArgs, RdsCaAuditArgs},
    output::{cell, date, note},
};

pub(crate) fn rds(ctx: &Ctx, args: RdsArgs) -> Result<Status> {
    match args.action {
        RdsAction::CaAudit(a) => ca_audit(ctx, a),
    }
}

fn print_audits(ctx: &Ctx, audits: &[(agent::Target, agent::RegionAudit)]) -> Result<()> {
    for (_, a) in audits {
        ctx.printer.line(&format!(
            "{} (account {}): expected CA {}{}",
            a.region,
            a.account,
            a.expected.as_deref().unwrap_or("unknown"),
            a.expected_problem
                .as_deref()
                .map(|p| format!(" ({p})"))
                .unwrap_or_default()
        ))?;
        if a.instances.is_empty() {
            note("no DB instances");
            continue;
        }
        let mut t = ctx
            .printer
            .table(&["INSTANCE", "ENGINE", "CA", "CA ENDS", "STATUS"]);
        for f in &a.instances {
            t.add_row(vec![
                cell(&f.instance.id),
                cell(&f.instance.engine),
                cell(f.instance.ca.as_deref().unwrap_or("-")),
                cell(f.ca_valid_till.map_or("-".to_owned(), date)),
                cell(if f.needs_rotation {
                    format!("needs rotation: {}", f.why)
                } else {
                    "ok".to_owned()
                }),
            ]);
        }
        t.keep(&[0, 4]);
        t.print()?;
    }
    Ok(())
}

fn ca_audit(ctx: &Ctx, args: RdsCaAuditArgs) -> Result<Status> {
    if args.no_restart && !args.apply {
        return Err(UsageError("--no-restart goes with --apply".into()).into());
    }
    let wait_timeout = std::time::Duration::try_from(args.wait_timeout).unwrap_or_default();
    if wait_timeout.is_zero() || args.wait_timeout > time::Duration::hours(24) {
        return Err(UsageError("--wait-timeout: more than 0s, at most 24h".into()).into());
    }
    // Watched within the wait, never longer than it.
    let restart_settle = std::time::Duration::try_from(args.restart_settle)
        .unwrap_or_default()
        .min(wait_timeout);
    let config = ctx.config()?;
    let regions = agent::expand_regions(&args.regions, &config.extra_regions)?;
    let targets = config.select(args.target.as_deref(), Some(&regions))?;
    let runtime = ctx.runtime()?;
    let connector = ctx.connector();
    // Each (account, region) once, whatever the number of targets that reach it.
    let found = runtime.block_on(agent::rds_ca_audits(
        &connector,
        &config,
        &targets,
        args.expected_ca.as_deref(),
    ));
    let audits = found.audits;
    let failures: Vec<String> = found
        .failures
        .iter()
        .map(|(t, region, e)| format!("{region} (target {t}): {e}"))
        .collect();
    let same: Vec<String> = found
        .same_account
        .iter()
        .map(|s| {
            format!(
                "target {} resolves to account {} like target {}: {} is audited (and moved) once, through target {}",
                s.target, s.account, s.audited_by, s.region, s.audited_by
            )
        })
        .collect();
    let needing: usize = audits
        .iter()
        .map(|(_, a)| a.instances.iter().filter(|i| i.needs_rotation).count())
        .sum();
    if !ctx.printer.json {
        print_audits(ctx, &audits)?;
        for f in &failures {
            note(&format!("could not audit {f}"));
        }
    }
    for s in &same {
        note(s);
    }
    let (moves, refused) = agent::rds_moves(&audits);
    let mut applied: Vec<serde_json::Value> = Vec::new();
    let mut stopped: Option<(String, usize)> = None;
    if args.apply && needing > 0 {
        for r in &refused {
            applied.push(json!({"instance": r.instance, "region": r.region, "error": r.why}));
        }
        if !moves.is_empty() {
            confirm(&args, moves.len())?;
            let mut v = ctx.unlock_writer("rds ca-audit --apply")?;
            let mut unrecorded: Option<String> = None;
            let mut changed: Vec<String> = Vec::new();
            let what = |m: &agent::RdsMove| {
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
                    if args.no_restart {
                        " (at its next restart)"
                    } else {
                        ""
                    }
                )
            };
            let mut progress = |p: agent::RdsProgress<'_>| -> bool {
                let recorded = match p {
                    agent::RdsProgress::Waiting {
                        step,
                        instance,
                        before,
                        what,
                    } => {
                        if !before {
                            note(&format!(
                                "waiting for DB instance {instance} ({}) to be available again: {what}",
                                step.region
                            ));
                        } else if instance == step.instance {
                            note(&format!(
                                "waiting for DB instance {instance} ({}) to be available before changing it: {what}",
                                step.region
                            ));
                        } else {
                            note(&format!(
                                "waiting for DB instance {instance} ({}), of the same cluster, to be available before changing {}: {what}",
                                step.region, step.instance
                            ));
                        }
                        Ok(())
                    }
                    agent::RdsProgress::Changed(m) => {
                        changed.push(m.instance.clone());
                        v.record_event("rds-ca", None, &format!("moved {}", what(m)))
                    }
                    agent::RdsProgress::Failed(m, e) => {
                        applied.push(json!({"instance": m.instance, "region": m.region, "ca": m.to, "applied": false, "error": e.to_string()}));
                        v.record_event(
                            "rds-ca-failed",
                            None,
                            &format!("could not move {}: {e}", what(m)),
                        )
                    }
                    agent::RdsProgress::Available(m) => {
                        note(&format!(
                            "{} ({}): now {}{}",
                            m.instance,
                            m.region,
                            m.to,
                            if args.no_restart {
                                " (at its next restart)"
                            } else {
                                ", available again"
                            }
                        ));
                        applied.push(json!({"instance": m.instance, "region": m.region, "ca": m.to, "applied": true, "error": null}));
                        Ok(())
                    }
                    agent::RdsProgress::Stopped(m, why) => {
                        // The instance waited for may have been changed already.
                        let was = changed.contains(&m.instance);
                        applied.push(json!({"instance": m.instance, "region": m.region, "ca": m.to, "applied": was, "error": why}));
                        v.record_event("rds-ca-stopped", None, why)
                    }
                };
                match recorded {
                    Ok(()) => true,
                    Err(e) => {
                        unrecorded = Some(e.to_string());
                        false
                    }
                }
            };
            let outcome = runtime.block_on(agent::rds_apply(
                &connector,
                &config,
                &moves,
                agent::RdsApplyOptions {
                    no_restart: args.no_restart,
                    wait_timeout,
                    restart_settle,
                },
                &mut progress,
            ));
            if let Some(e) = unrecorded {
                bail!("the vault could not record the change: {e}; nothing further was changed");
            }
            stopped = outcome.stopped;
        }
    }
    if ctx.printer.json {
        ctx.printer.json(&json!({
            "regions": audits.iter().map(|(_, a)| a).collect::<Vec<_>>(),
            "failures": failures,
            "same_account": found.same_account,
            "applied": applied,
            "stopped": stopped.as_ref().map(|(why, left)| json!({"why": why, "not_reached": left})),
        }))?;
    } else {
        for a in &applied {
            if let Some(e) = a["error"].as_str() {
                note(&format!(
                    "{} ({}): {}: {e}",
                    a["instance"].as_str().unwrap_or("-"),
                    a["region"].as_str().unwrap_or("-"),
                    if a["applied"] == true {
                        "changed, but"
                    } else {
                        "not changed"
                    }
                ));
            }
        }
        if needing > 0 {
            note(if args.apply {
                "clients must trust the new CA too: give them AWS's CA bundle for the region (https://truststore.pki.rds.amazonaws.com) before the instances restart"
            } else {
                "`--apply` moves each instance to the expected CA, one at a time, waiting for each to be available again (with `--no-restart`, the CA takes effect at its next restart); clients must trust the new CA bundle too"
            });
        }
    }
    if let Some((why, left)) = stopped {
        bail!(
            "{why} ({left} instance(s) not reached): run the same command again once it is available; it moves only what is left"
        );
    }
    let failed_apply = applied.iter().any(|a| !a["error"].is_null());
    if failed_apply {
        bail!(
            "some instances could not be moved (see above and `certvault log`): run the same command again"
        );
    }
    if !failures.is_empty() {
        return Ok(Status::Attention);
    }
    Ok(if needing > 0 && !args.apply {
        Status::Attention
    } else {
        Status::Ok
    })
}

fn confirm(args: &RdsCaAuditArgs, n: usize) -> Result<()> {
    if args.yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(UsageError(format!(
            "--apply changes the CA of {n} DB instance(s): add --yes to confirm"
        ))
        .into());
    }
    note(&format!(
        "This changes the server CA of {n} DB instance(s), one at a time, each waited for until it is available again{}. Type 'apply' to go on:",
        if args.no_restart {
            " (taking effect at their next restart)"
        } else {
            " (each restarts to take it)"
        }
    ));
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    if answer.trim() != "apply" {
        bail!("not confirmed; nothing was changed");
    }
    Ok(())
}
