//! `certvault rds ca-audit`: the server CA of every RDS, Aurora and DocumentDB instance in
//! every selected region, and (`--apply`) each moved to the expected one.

use std::io::IsTerminal;

use anyhow::{Result, bail};
use serde_json::json;

use super::Ctx;
use crate::{
    Status, UsageError,
    cli::{RdsAction, RdsArgs, RdsCaAuditArgs},
    output::{cell, date, note},
};

pub(crate) fn rds(ctx: &Ctx, args: RdsArgs) -> Result<Status> {
    match args.action {
        RdsAction::CaAudit(a) => ca_audit(ctx, a),
    }
}

fn ca_audit(ctx: &Ctx, args: RdsCaAuditArgs) -> Result<Status> {
    if args.no_restart && !args.apply {
        return Err(UsageError("--no-restart goes with --apply".into()).into());
    }
    let config = ctx.config()?;
    let regions = agent::expand_regions(&args.regions, &config.extra_regions)?;
    let targets = config.select(args.target.as_deref(), Some(&regions))?;
    let runtime = ctx.runtime()?;
    let connector = ctx.connector();
    let mut audits: Vec<(agent::Target, agent::RegionAudit)> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    for t in &targets {
        for region in &t.regions {
            match runtime.block_on(agent::rds_ca_audit(
                &connector,
                &config,
                t,
                region,
                args.expected_ca.as_deref(),
            )) {
                Ok(a) => audits.push((t.clone(), a)),
                Err(e) => failures.push(format!("{region} (target {}): {e}", t.name)),
            }
        }
    }
    let needing: usize = audits
        .iter()
        .map(|(_, a)| a.instances.iter().filter(|i| i.needs_rotation).count())
        .sum();
    let mut applied: Vec<serde_json::Value> = Vec::new();
    if args.apply && needing > 0 {
        if !args.yes {
            if !std::io::stdin().is_terminal() {
                return Err(UsageError(format!(
                    "--apply changes the CA of {needing} DB instance(s): add --yes to confirm"
                ))
                .into());
            }
            note(&format!(
                "This changes the server CA of {needing} DB instance(s){}. Type 'apply' to go on:",
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
        }
        let mut v = ctx.unlock_writer("rds ca-audit --apply")?;
        for (t, a) in &audits {
            for f in a.instances.iter().filter(|i| i.needs_rotation) {
                if let Some(problem) = &a.expected_problem {
                    applied.push(json!({"instance": f.instance.id, "region": a.region, "error": format!("not moved: {problem}")}));
                    continue;
                }
                let Some(ca) = a.expected.clone() else {
                    applied.push(json!({"instance": f.instance.id, "region": a.region, "error": "no expected CA (give --expected-ca)"}));
                    continue;
                };
                if f.instance.ca.as_deref() == Some(ca.as_str()) {
                    // The expected CA itself ends soon: nothing to move to.
                    applied.push(json!({"instance": f.instance.id, "region": a.region, "error": format!("it pins {ca} already ({}): give --expected-ca another", f.why)}));
                    continue;
                }
                // One instance at a time, each audited.
                let r = runtime.block_on(agent::rds_set_ca(
                    &connector,
                    &config,
                    t,
                    &a.account,
                    &a.region,
                    &f.instance.id,
                    &ca,
                    args.no_restart,
                ));
                let what = format!(
                    "DB instance {} ({}) in {}, account {}: CA {} -> {ca}{}",
                    f.instance.id,
                    f.instance.engine,
                    a.region,
                    a.account,
                    f.instance.ca.as_deref().unwrap_or("none"),
                    if args.no_restart {
                        " (at its next restart)"
                    } else {
                        ""
                    }
                );
                match &r {
                    Ok(()) => v.record_event("rds-ca", None, &format!("moved {what}"))?,
                    Err(e) => v.record_event(
                        "rds-ca-failed",
                        None,
                        &format!("could not move {what}: {e}"),
                    )?,
                }
                applied.push(json!({
                    "instance": f.instance.id,
                    "region": a.region,
                    "ca": ca,
                    "applied": r.is_ok(),
                    "error": r.err().map(|e| e.to_string()),
                }));
            }
        }
    }
    if ctx.printer.json {
        ctx.printer.json(&json!({
            "regions": audits.iter().map(|(_, a)| a).collect::<Vec<_>>(),
            "failures": failures,
            "applied": applied,
        }))?;
    } else {
        for (_, a) in &audits {
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
        for f in &failures {
            note(&format!("could not audit {f}"));
        }
        for a in &applied {
            match a["error"].as_str() {
                None => note(&format!(
                    "{} ({}): now {}",
                    a["instance"].as_str().unwrap_or("-"),
                    a["region"].as_str().unwrap_or("-"),
                    a["ca"].as_str().unwrap_or("-")
                )),
                Some(e) => note(&format!(
                    "{} ({}): not changed: {e}",
                    a["instance"].as_str().unwrap_or("-"),
                    a["region"].as_str().unwrap_or("-")
                )),
            }
        }
        if needing > 0 {
            note(if args.apply {
                "clients must trust the new CA too: give them AWS's CA bundle for the region (https://truststore.pki.rds.amazonaws.com) before the instances restart"
            } else {
                "`--apply` moves each instance to the expected CA (with `--no-restart`, at its next restart); clients must trust the new CA bundle too"
            });
        }
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
