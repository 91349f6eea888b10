//! `certvault rds ca-audit`: the server CA of every RDS, Aurora and DocumentDB instance in
//! every selected region, and (`--apply`) each moved to the expected one, one at a time.

use crate::output::{self, Confirmation};
use anyhow::{Result, anyhow, bail};
use serde::Serialize;

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

fn print_audits(ctx: &Ctx, audits: &[(agent::Target, agent::rds::RegionAudit)]) -> Result<()> {
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

/// `rds ca-audit --output json`.
#[derive(Serialize)]
struct AuditJson<'a> {
    regions: Vec<&'a agent::rds::RegionAudit>,
    failures: &'a [String],
    same_account: &'a [agent::rds::SameAccount],
    applied: &'a [agent::rds::RdsOutcome],
    stopped: Option<StoppedJson<'a>>,
}

#[derive(Serialize)]
struct StoppedJson<'a> {
    why: &'a str,
    not_reached: usize,
}

/// The periods `--apply` waits: (the wait for one instance, the restart settle).
fn waits(args: &RdsCaAuditArgs) -> Result<(std::time::Duration, std::time::Duration)> {
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
    Ok((wait_timeout, restart_settle))
}

/// What `--apply` tells while it waits, and once an instance is done.
fn tell(p: &agent::rds::RdsProgress<'_>, no_restart: bool) {
    match p {
        agent::rds::RdsProgress::Waiting {
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
            } else if *instance == step.instance {
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
        }
        agent::rds::RdsProgress::Available(m) => note(&format!(
            "{} ({}): now {}{}",
            m.instance,
            m.region,
            m.to,
            if no_restart {
                " (at its next restart)"
            } else {
                ", available again"
            }
        )),
        _ => {}
    }
}

/// `--apply`: the confirmed moves made, each audited by the agent.
fn apply(
    ctx: &Ctx,
    args: &RdsCaAuditArgs,
    config: &agent::Config,
    audits: &[(agent::Target, agent::rds::RegionAudit)],
    opts: agent::rds::RdsApplyOptions,
) -> Result<agent::rds::RdsRun> {
    let (moves, refused) = agent::rds::rds_moves(audits);
    if moves.is_empty() {
        return Ok(agent::rds::RdsRun::refused(&refused));
    }
    confirm(args, moves.len())?;
    let mut v = ctx.unlock_writer("rds ca-audit --apply")?;
    let no_restart = args.no_restart;
    let run = ctx
        .runtime()?
        .block_on(agent::rds::apply_and_record(
            &ctx.connector(),
            &mut v,
            config,
            &moves,
            &refused,
            opts,
            &mut |p| tell(p, no_restart),
        ))
        .map_err(|e| {
            anyhow!("the vault could not record the change: {e}; nothing further was changed")
        })?;
    Ok(run)
}

fn print_outcomes(run: &agent::rds::RdsRun, needing: usize, apply: bool) {
    for a in &run.outcomes {
        if let Some(e) = &a.error {
            note(&format!(
                "{} ({}): {}: {e}",
                a.instance,
                a.region,
                if a.applied == Some(true) {
                    "changed, but"
                } else {
                    "not changed"
                }
            ));
        }
    }
    if needing > 0 {
        note(if apply {
            "clients must trust the new CA too: give them AWS's CA bundle for the region (https://truststore.pki.rds.amazonaws.com) before the instances restart"
        } else {
            "`--apply` moves each instance to the expected CA, one at a time, waiting for each to be available again (with `--no-restart`, the CA takes effect at its next restart); clients must trust the new CA bundle too"
        });
    }
}

fn ca_audit(ctx: &Ctx, args: RdsCaAuditArgs) -> Result<Status> {
    let (wait_timeout, restart_settle) = waits(&args)?;
    let config = ctx.config()?;
    let regions = agent::config::expand_regions(&args.scan.regions, &config.extra_regions)?;
    let targets = config.select(args.scan.target.as_deref(), Some(&regions))?;
    // Each (account, region) once, whatever the number of targets that reach it.
    let found = ctx.runtime()?.block_on(agent::rds::rds_ca_audits(
        &ctx.connector(),
        &config,
        &targets,
        args.expected_ca.as_deref(),
    ));
    let failures: Vec<String> = found
        .failures
        .iter()
        .map(|(t, region, e)| format!("{region} (target {t}): {e}"))
        .collect();
    let needing = found.needing_rotation();
    if !ctx.printer.json {
        print_audits(ctx, &found.audits)?;
        for f in &failures {
            note(&format!("could not audit {f}"));
        }
    }
    for s in &found.same_account {
        note(&format!(
            "target {} resolves to account {} like target {}: {} is audited (and moved) once, through target {}",
            s.target, s.account, s.audited_by, s.region, s.audited_by
        ));
    }
    let opts = agent::rds::RdsApplyOptions {
        no_restart: args.no_restart,
        wait_timeout,
        restart_settle,
    };
    let run = if args.apply && needing > 0 {
        apply(ctx, &args, &config, &found.audits, opts)?
    } else {
        agent::rds::RdsRun::default()
    };
    if ctx.printer.json {
        ctx.printer.json(&serde_json::to_value(AuditJson {
            regions: found.audits.iter().map(|(_, a)| a).collect(),
            failures: &failures,
            same_account: &found.same_account,
            applied: &run.outcomes,
            stopped: run.stopped.as_ref().map(|(why, left)| StoppedJson {
                why,
                not_reached: *left,
            }),
        })?)?;
    } else {
        print_outcomes(&run, needing, args.apply);
    }
    status(&run, &failures, needing, args.apply)
}

fn status(
    run: &agent::rds::RdsRun,
    failures: &[String],
    needing: usize,
    apply: bool,
) -> Result<Status> {
    if let Some((why, left)) = &run.stopped {
        bail!(
            "{why} ({left} instance(s) not reached): run the same command again once it is available; it moves only what is left"
        );
    }
    if run.any_failed() {
        bail!(
            "some instances could not be moved (see above and `certvault log`): run the same command again"
        );
    }
    if !failures.is_empty() {
        return Ok(Status::Attention);
    }
    Ok(if needing > 0 && !apply {
        Status::Attention
    } else {
        Status::Ok
    })
}

fn confirm(args: &RdsCaAuditArgs, n: usize) -> Result<()> {
    let restart = if args.no_restart {
        " (taking effect at their next restart)"
    } else {
        " (each restarts to take it)"
    };
    output::confirm(
        args.confirm.yes,
        Confirmation {
            without_terminal: format!(
                "--apply changes the CA of {n} DB instance(s): add --yes to confirm"
            ),
            lines: vec![format!(
                "This changes the server CA of {n} DB instance(s), one at a time, each waited for until it is available again{restart}. Type 'apply' to go on:"
            )],
            answer: "apply",
            refused: "not confirmed; nothing was changed",
        },
    )
}
