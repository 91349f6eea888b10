//! `certvault rotate OLD NEW` and `certvault acm migrate-validation`: every load balancer
//! listener serving one certificate moved to another without interrupting traffic, and
//! email-validated certificates replaced by DNS-validated ones, listeners and all.

use std::io::IsTerminal;

use anyhow::{Result, bail};
use serde_json::json;

use super::Ctx;
use crate::{
    Status, UsageError,
    args::{MigrateValidationArgs, RotateArgs},
    output::{cell, note},
};

/// One pair to rotate: where, through which target.
struct Pair {
    target: String,
    region: String,
    old: String,
    new: String,
}

/// Every ARN where an entry has a certificate in ACM, with its (target, region): its
/// deployments' ARNs, then what discovery found (a copy imported by hand, say), each ARN once.
fn arns_of(v: &vault::Vault, id: &str) -> Result<Vec<(String, String, String)>> {
    let mut out: Vec<(String, String, String)> = Vec::new();
    for d in v.deployments()?.into_iter().filter(|d| d.entry_id == id) {
        if let Some(arn) = d.arn
            && !out.iter().any(|(_, _, a)| *a == arn)
        {
            out.push((d.target, d.region, arn));
        }
    }
    for r in v.acm_records_of(id)? {
        if r.gone_at.is_none() && !out.iter().any(|(_, _, a)| *a == r.summary.arn) {
            out.push((r.location.target, r.location.region, r.summary.arn));
        }
    }
    Ok(out)
}

/// The account an ACM ARN names.
fn account_of(arn: &str) -> Option<&str> {
    agent::arn_location(arn).map(|(account, _)| account)
}

/// Where a certificate named by ARN was recorded (its target), if the vault knows it.
fn recorded_target(v: &vault::Vault, arn: &str) -> Result<Option<String>> {
    if let Some(d) = v
        .deployments()?
        .into_iter()
        .find(|d| d.arn.as_deref() == Some(arn))
    {
        return Ok(Some(d.target));
    }
    Ok(v.acm_record(arn)?.map(|r| r.location.target))
}

fn pairs(
    v: &vault::Vault,
    config: &agent::Config,
    args: &RotateArgs,
    skipped: &mut Vec<String>,
) -> Result<Vec<Pair>> {
    let regions = if args.regions.is_empty() {
        None
    } else {
        Some(agent::expand_regions(&args.regions, &config.extra_regions)?)
    };
    let in_regions = |r: &str| regions.as_ref().is_none_or(|rs| rs.iter().any(|x| x == r));
    let is_arn = |s: &str| s.starts_with("arn:");
    let default_target = |region: &str| -> Result<String> {
        Ok(super::acm::one_target(config, args.target.as_deref(), region)?.name)
    };
    match (is_arn(&args.old), is_arn(&args.new)) {
        (true, true) => {
            let Some((_, region)) = agent::arn_location(&args.old) else {
                return Err(UsageError(format!("{}: not an ACM certificate ARN", args.old)).into());
            };
            if !in_regions(region) {
                return Err(
                    UsageError(format!("{} is in {region}, not in --regions", args.old)).into(),
                );
            }
            let target = match (&args.target, recorded_target(v, &args.old)?) {
                (Some(t), _) => t.clone(),
                (None, Some(t)) => t,
                (None, None) => default_target(region)?,
            };
            Ok(vec![Pair {
                target,
                region: region.to_owned(),
                old: args.old.clone(),
                new: args.new.clone(),
            }])
        }
        (old_arn, new_arn) => {
            let side = |s: &str, arn: bool| -> Result<Vec<(String, String, String)>> {
                if arn {
                    let Some((_, region)) = agent::arn_location(s) else {
                        return Err(UsageError(format!("{s}: not an ACM certificate ARN")).into());
                    };
                    let target = match recorded_target(v, s)? {
                        Some(t) => t,
                        None => default_target(region)?,
                    };
                    Ok(vec![(target, region.to_owned(), s.to_owned())])
                } else {
                    let (id, _) = v.resolve(s)?;
                    arns_of(v, &id)
                }
            };
            // Every ARN of OLD (an entry can be in ACM more than once in a region: its
            // deployment and a copy discovery found), each paired with NEW's ARN in the same
            // account and region (its deployment first).
            let olds = side(&args.old, old_arn)?;
            let news = side(&args.new, new_arn)?;
            let mut out = Vec::new();
            for (target, region, old) in olds {
                if !in_regions(&region) || args.target.as_deref().is_some_and(|t| t != target) {
                    continue;
                }
                match news
                    .iter()
                    .find(|(_, r, n)| *r == region && account_of(n) == account_of(&old))
                {
                    Some((_, _, new)) => out.push(Pair {
                        target,
                        region,
                        old,
                        new: new.clone(),
                    }),
                    None => {
                        let why = format!(
                            "{region} (target {target}): {} is not in ACM there; deploy it first (`certvault deploy {} --regions {region}`)",
                            args.new, args.new
                        );
                        if !skipped.contains(&why) {
                            skipped.push(why);
                        }
                    }
                }
            }
            if out.is_empty() && skipped.is_empty() {
                bail!(
                    "{} is in ACM nowhere the vault knows of{}: give ARNs, or run `certvault discover`",
                    args.old,
                    if regions.is_some() {
                        " in those regions"
                    } else {
                        ""
                    }
                );
            }
            Ok(out)
        }
    }
}

/// Plans for (target, region, OLD, NEW) items: per target, its credentials resolved once and
/// each region's listeners read once. A result per item, in order.
fn plan_all(
    config: &agent::Config,
    runtime: &tokio::runtime::Runtime,
    connector: &agent::SdkConnector,
    items: &[(String, String, String, String)],
) -> Result<Vec<Result<agent::RotationPlan, String>>> {
    let mut out: Vec<Option<Result<agent::RotationPlan, String>>> = vec![None; items.len()];
    let mut by_target: std::collections::BTreeMap<&str, Vec<usize>> = Default::default();
    for (i, (t, ..)) in items.iter().enumerate() {
        by_target.entry(t.as_str()).or_default().push(i);
    }
    for (name, idx) in by_target {
        let mut regions: Vec<String> = idx.iter().map(|&i| items[i].1.clone()).collect();
        regions.sort();
        regions.dedup();
        let target = config.select(Some(name), Some(&regions))?.remove(0);
        let pairs: Vec<(String, String)> = idx
            .iter()
            .map(|&i| (items[i].2.clone(), items[i].3.clone()))
            .collect();
        match runtime.block_on(agent::rotation_plans(connector, config, &target, &pairs)) {
            Ok(results) => {
                for (&i, r) in idx.iter().zip(results) {
                    out[i] = Some(r.map_err(|e| e.to_string()));
                }
            }
            Err(e) => {
                for &i in &idx {
                    out[i] = Some(Err(e.to_string()));
                }
            }
        }
    }
    Ok(out
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err("not planned".into())))
        .collect())
}

fn confirm(what: &str, yes: bool, dry_run: bool) -> Result<()> {
    if yes || dry_run {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(UsageError(format!(
            "{what}: add --yes to confirm (or --dry-run to see the plan only)"
        ))
        .into());
    }
    note(&format!("{what}. Type 'rotate' to go on:"));
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    if answer.trim() != "rotate" {
        bail!("not confirmed; nothing was changed");
    }
    Ok(())
}

fn short(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

fn print_plans(ctx: &Ctx, plans: &[(String, agent::RotationPlan)]) -> Result<()> {
    let mut t = ctx.printer.table(&[
        "REGION",
        "RESOURCE",
        "TYPE",
        "LISTENER",
        "KIND",
        "OLD → NEW",
    ]);
    for (_, p) in plans {
        for s in &p.swaps {
            t.add_row(vec![
                cell(&p.region),
                cell(&s.resource),
                cell(&s.lb_type),
                cell(if s.lb_type == "classic" {
                    s.listener.clone()
                } else {
                    format!("{} ({})", short(&s.listener), s.port)
                }),
                cell(s.kind.words()),
                cell(format!("{} → {}", short(&s.old), short(&s.new))),
            ]);
        }
    }
    t.keep(&[1, 3, 4]);
    t.print()?;
    for (_, p) in plans {
        for e in &p.elsewhere {
            note(&format!(
                "{} also uses {}: {}",
                e.user,
                short(&p.old),
                e.what_to_do
            ));
        }
    }
    Ok(())
}

/// Plans and (unless `dry_run`) applies rotations, each swap audited. The number of swaps
/// that failed.
fn run_rotations(
    ctx: &Ctx,
    v: &mut vault::Vault,
    config: &agent::Config,
    plans: &[(String, agent::RotationPlan)],
    results: &mut Vec<serde_json::Value>,
) -> Result<usize> {
    let runtime = ctx.runtime()?;
    let connector = ctx.connector();
    let mut failed = 0;
    for (target_name, plan) in plans {
        let target = config
            .select(Some(target_name), Some(std::slice::from_ref(&plan.region)))?
            .remove(0);
        let mut outcomes: Vec<(agent::Swap, Result<(), String>)> = Vec::new();
        let applied = runtime.block_on(agent::rotation_apply(
            &connector,
            config,
            &target,
            plan,
            &mut |s, r| outcomes.push((s.clone(), r.clone().map_err(|e| e.to_string()))),
        ));
        if let Err(e) = applied {
            failed += plan.swaps.len();
            results.push(json!({"region": plan.region, "old": plan.old, "new": plan.new, "error": e.to_string()}));
            continue;
        }
        for (s, r) in outcomes {
            let what = format!(
                "{} listener {} of {} ({}) in {}, account {}: {} -> {}",
                s.kind.words(),
                s.listener,
                s.resource,
                s.lb_type,
                plan.region,
                plan.account,
                s.old,
                s.new
            );
            match &r {
                Ok(()) => v.record_event("rotate", None, &format!("moved the {what}"))?,
                Err(e) => {
                    failed += 1;
                    v.record_event(
                        "rotate-failed",
                        None,
                        &format!("could not move the {what}: {e}"),
                    )?;
                }
            }
            results.push(json!({
                "region": plan.region,
                "resource": s.resource,
                "type": s.lb_type,
                "listener": s.listener,
                "kind": s.kind,
                "old": s.old,
                "new": s.new,
                "moved": r.is_ok(),
                "error": r.err(),
            }));
        }
    }
    Ok(failed)
}

pub(crate) fn rotate(ctx: &Ctx, args: RotateArgs) -> Result<Status> {
    if ctx.printer.json && !args.yes && !args.dry_run {
        return Err(UsageError(
            "with --output json, give --dry-run to see the plan, or --yes to apply it".into(),
        )
        .into());
    }
    let config = ctx.config()?;
    let mut v = ctx.unlock_writer("rotate")?;
    let mut skipped = Vec::new();
    let mut pairs = pairs(&v, &config, &args, &mut skipped)?;
    // One pair per OLD ARN (two targets may reach one account): two different NEW ARNs
    // for one OLD are refused.
    pairs.sort_by(|a, b| (&a.old, &a.new).cmp(&(&b.old, &b.new)));
    pairs.dedup_by(|a, b| a.old == b.old && a.new == b.new);
    if let Some(w) = pairs.windows(2).find(|w| w[0].old == w[1].old) {
        bail!(
            "{} would move to both {} and {}: give the ARNs; nothing was changed",
            w[0].old,
            w[0].new,
            w[1].new
        );
    }
    let runtime = ctx.runtime()?;
    let connector = ctx.connector();
    let mut plans = Vec::new();
    let mut refused = Vec::new();
    let items: Vec<(String, String, String, String)> = pairs
        .iter()
        .map(|p| {
            (
                p.target.clone(),
                p.region.clone(),
                p.old.clone(),
                p.new.clone(),
            )
        })
        .collect();
    for (p, planned) in pairs
        .iter()
        .zip(plan_all(&config, runtime, &connector, &items)?)
    {
        match planned {
            Ok(plan) => plans.push((p.target.clone(), plan)),
            Err(e) => refused.push(format!("{} (target {}): {e}", p.region, p.target)),
        }
    }
    // Anything refused or unreadable: nothing is changed anywhere.
    if !refused.is_empty() {
        for s in &skipped {
            note(&format!("skipped {s}"));
        }
        bail!("{}; nothing was changed", refused.join("; "));
    }
    let swaps: usize = plans.iter().map(|(_, p)| p.swaps.len()).sum();
    if !ctx.printer.json {
        if swaps == 0 {
            note(&format!(
                "no load balancer listener serves {} now: nothing to move",
                args.old
            ));
        } else {
            print_plans(ctx, &plans)?;
        }
        for s in &skipped {
            note(&format!("skipped {s}"));
        }
    }
    if args.dry_run || swaps == 0 {
        if ctx.printer.json {
            ctx.printer.json(&json!({"plans": plans.iter().map(|(_, p)| p).collect::<Vec<_>>(), "skipped": skipped, "applied": false}))?;
        } else if args.dry_run && swaps > 0 {
            note("--dry-run: nothing was changed");
        }
        return Ok(if skipped.is_empty() {
            Status::Ok
        } else {
            Status::Attention
        });
    }
    confirm(
        &format!("This moves {swaps} listener(s) to the new certificate"),
        args.yes,
        false,
    )?;
    if !ctx.printer.json {
        note(
            "an ALB may close long-lived connections while its certificate changes; an NLB does not; a classic listener keeps running",
        );
    }
    let mut results = Vec::new();
    let failed = run_rotations(ctx, &mut v, &config, &plans, &mut results)?;
    if ctx.printer.json {
        ctx.printer.json(&json!({"plans": plans.iter().map(|(_, p)| p).collect::<Vec<_>>(), "results": results, "skipped": skipped, "applied": true}))?;
    } else {
        ctx.printer
            .line(&format!("moved {} of {swaps} listener(s)", swaps - failed))?;
        for r in results.iter().filter(|r| r["error"].is_string()) {
            let text = |k: &str| r[k].as_str().unwrap_or("-").to_owned();
            note(&format!(
                "not moved: {} {} ({}): {}",
                text("resource"),
                text("listener"),
                text("region"),
                text("error")
            ));
        }
    }
    if failed > 0 {
        bail!(
            "{failed} listener(s) could not be moved (see above and `certvault log`): run the same command again; it resumes where this one stopped"
        );
    }
    Ok(if skipped.is_empty() {
        Status::Ok
    } else {
        Status::Attention
    })
}

/// What `migrate-validation` found or did for one email-validated certificate.
#[derive(Default)]
struct Migration {
    old: String,
    region: String,
    target: String,
    account: String,
    names: Vec<String>,
    new: Option<String>,
    requested_now: bool,
    records: String,
    issued: bool,
    moved: usize,
    failed: usize,
    unused: Option<bool>,
    note: Option<String>,
    /// Another email-validated certificate for the same names, in the same account and
    /// region, whose replacement this one shares (its index): one request per set of names.
    shares: Option<usize>,
    /// Its status, when it is dead (failed, expired, revoked...): listed, not replaced.
    dead: Option<String>,
}

/// Statuses of a certificate worth replacing: it serves, or it will.
fn alive(r: &vault::AcmRecord) -> bool {
    matches!(r.summary.status.as_str(), "ISSUED" | "PENDING_VALIDATION")
        && r.summary
            .not_after
            .is_none_or(|t| t > time::OffsetDateTime::now_utc())
}

fn names_of(r: &vault::AcmRecord) -> Vec<String> {
    let mut names = vec![r.summary.domain.to_ascii_lowercase()];
    for s in &r.summary.sans {
        let s = s.to_ascii_lowercase();
        if !names.contains(&s) {
            names.push(s);
        }
    }
    names
}

fn same_names(a: &[String], b: &[String]) -> bool {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort();
    b.sort();
    a == b
}

pub(crate) fn migrate_validation(ctx: &Ctx, args: MigrateValidationArgs) -> Result<Status> {
    if args.timeout > time::Duration::hours(72) {
        return Err(UsageError("--timeout: at most 72h".into()).into());
    }
    let config = ctx.config()?;
    let regions = agent::expand_regions(&args.regions, &config.extra_regions)?;
    let targets = config.select(args.target.as_deref(), Some(&regions))?;
    let mut v = ctx.unlock_writer("acm migrate-validation")?;
    let runtime = ctx.runtime()?;
    let connector = ctx.connector();
    // Every email-validated certificate discovery found, and a DNS-validated request for
    // the same names made earlier (by this command or by hand), if there is one.
    let mut work: Vec<Migration> = Vec::new();
    for t in &targets {
        for region in &t.regions {
            let records = v.acm_records(&t.name, region)?;
            for r in records.values() {
                let email = r.detail.validation_method.as_deref() == Some("EMAIL");
                if r.gone_at.is_some() || r.summary.kind != "AMAZON_ISSUED" || !email {
                    continue;
                }
                let names = names_of(r);
                if !alive(r) {
                    let status = if r.summary.status == "ISSUED" {
                        "EXPIRED".to_owned()
                    } else {
                        r.summary.status.clone()
                    };
                    work.push(Migration {
                        old: r.summary.arn.clone(),
                        region: region.clone(),
                        target: t.name.clone(),
                        account: r.location.account.clone(),
                        names,
                        note: Some(format!(
                            "{status}: not replaced (nothing can be served from it; `certvault acm delete {}` deletes it once nothing uses it)",
                            r.summary.arn
                        )),
                        dead: Some(status),
                        ..Default::default()
                    });
                    continue;
                }
                // One replacement per set of names in an account and region: a second
                // email-validated certificate for the same names shares the first's.
                let shares = work.iter().position(|m| {
                    m.dead.is_none()
                        && m.shares.is_none()
                        && m.account == r.location.account
                        && m.region == *region
                        && same_names(&m.names, &names)
                });
                // A DNS-validated certificate for the same names, in the same account,
                // issued or on its way (the issued one first, then the newest).
                let found = records
                    .values()
                    .filter(|c| {
                        c.gone_at.is_none()
                            && c.summary.arn != r.summary.arn
                            && c.location.account == r.location.account
                            && c.summary.kind == "AMAZON_ISSUED"
                            && c.detail.validation_method.as_deref() == Some("DNS")
                            && matches!(c.summary.status.as_str(), "ISSUED" | "PENDING_VALIDATION")
                            && same_names(&names_of(c), &names)
                    })
                    .max_by_key(|c| (c.summary.status == "ISSUED", c.first_seen))
                    .map(|c| c.summary.arn.clone());
                work.push(Migration {
                    old: r.summary.arn.clone(),
                    region: region.clone(),
                    target: t.name.clone(),
                    account: r.location.account.clone(),
                    names,
                    new: found,
                    shares,
                    ..Default::default()
                });
            }
        }
    }
    if work.is_empty() {
        if ctx.printer.json {
            ctx.printer.json(&Vec::<serde_json::Value>::new())?;
        } else {
            note(
                "no email-validated certificate found (run `certvault discover` first): nothing to migrate",
            );
        }
        return Ok(Status::Ok);
    }
    if work.iter().all(|m| m.dead.is_some()) && !ctx.printer.json {
        note(
            "every email-validated certificate found is dead (failed, expired...): nothing to replace",
        );
    }
    // The ones that lead: not dead, not sharing another's replacement.
    let leads = |m: &Migration| m.dead.is_none() && m.shares.is_none();
    let to_request = work.iter().filter(|m| leads(m) && m.new.is_none()).count();
    let replacing = work.iter().filter(|m| m.dead.is_none()).count();
    let mut errors = 0usize;
    confirm(
        &format!(
            "This requests {to_request} DNS-validated certificate(s), waits for them, and moves every listener of {replacing} email-validated certificate(s) to them"
        ),
        args.yes,
        args.dry_run,
    )?;
    // 1. Requests (or the earlier ones found), and their records: one per set of names.
    for m in work.iter_mut().filter(|m| leads(m)) {
        let target = config
            .select(Some(&m.target), Some(std::slice::from_ref(&m.region)))?
            .remove(0);
        // What the request just made said (recorded by it): not asked again.
        let mut just_requested: Option<(String, vault::AcmDetail, String)> = None;
        if m.new.is_none() {
            if args.dry_run {
                m.records = "would be requested".into();
                continue;
            }
            // Only with credentials of the account the old certificate is in (a Describe:
            // nothing of its PEM is needed).
            if let Err(e) =
                runtime.block_on(agent::acm_describe(&connector, &config, &target, &m.old))
            {
                m.note = Some(format!("nothing was requested: {e}"));
                errors += 1;
                continue;
            }
            // One request per set of names (not per old certificate): a retry, or a second
            // certificate for the same names, gets the same one.
            let mut sorted = m.names.clone();
            sorted.sort();
            let mut parts = vec!["migrate-validation", m.target.as_str(), m.region.as_str()];
            parts.extend(sorted.iter().map(String::as_str));
            let token = vault::idempotency_token(&parts);
            let req = agent::CertRequest {
                domain: m.names[0].clone(),
                sans: m.names[1..].to_vec(),
                validation: Some("DNS".into()),
                token,
                ..Default::default()
            };
            match super::acm::submit(
                ctx,
                &mut v,
                &config,
                &target,
                &m.region,
                &req,
                &format!(
                    "{} (DNS validation), to replace the email-validated {}",
                    m.names.join(", "),
                    m.old
                ),
                std::time::Duration::from_secs(60),
            ) {
                Ok(s) => {
                    m.new = Some(s.arn);
                    m.requested_now = true;
                    just_requested = Some((s.status, s.detail, s.account));
                }
                Err(e) => {
                    m.note = Some(format!("{e:#}"));
                    errors += 1;
                    continue;
                }
            }
        }
        let Some(new) = m.new.clone() else { continue };
        let (status, records, account, observed) = match just_requested {
            Some((status, detail, account)) => (status, detail.validation_records, account, None),
            None => {
                let observed =
                    runtime.block_on(agent::acm_observe(&connector, &config, &target, &new));
                let Ok((obs, account)) = observed else {
                    m.note = observed.err().map(|e| e.to_string());
                    continue;
                };
                let records = obs
                    .detail
                    .as_ref()
                    .map(|d| d.validation_records.clone())
                    .unwrap_or_default();
                (obs.summary.status.clone(), records, account, Some(obs))
            }
        };
        m.account = account.clone();
        m.records = if records.is_empty() {
            "not yet produced by ACM".into()
        } else if args.route53 && !args.dry_run {
            match super::acm::place_records(ctx, &mut v, &config, &target, &account, &new, &records)
            {
                Ok(p)
                    if p.iter()
                        .all(|r| matches!(r.placement, agent::Placement::InPlace { .. })) =>
                {
                    "in place (Route 53)".into()
                }
                Ok(p) => p
                    .iter()
                    .filter(|r| !matches!(r.placement, agent::Placement::InPlace { .. }))
                    .map(|r| {
                        format!(
                            "{} {} {}: create by hand",
                            r.record.name, r.record.record_type, r.record.value
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
                Err(e) => format!("{e:#}"),
            }
        } else {
            records
                .iter()
                .map(|r| format!("{} CNAME {}", r.name, r.value))
                .collect::<Vec<_>>()
                .join("; ")
        };
        let location = vault::Location {
            target: m.target.clone(),
            account,
            region: m.region.clone(),
        };
        m.issued = status == "ISSUED";
        if let Some(obs) = observed
            && !args.dry_run
        {
            v.record_acm_scan(&location, vec![obs], false)?;
        }
    }
    // 2. Wait for each to be issued.
    let timeout = std::time::Duration::try_from(args.timeout).unwrap_or_default();
    let started = std::time::Instant::now();
    let mut pause = std::time::Duration::from_secs(2);
    let waiting = |m: &Migration| leads(m) && m.new.is_some() && !m.issued && m.note.is_none();
    while !args.dry_run && work.iter().any(waiting) && started.elapsed() + pause <= timeout {
        std::thread::sleep(pause);
        pause = (pause * 2).min(std::time::Duration::from_secs(30));
        for m in work.iter_mut().filter(|m| waiting(m)) {
            let target = config
                .select(Some(&m.target), Some(std::slice::from_ref(&m.region)))?
                .remove(0);
            let new = m.new.clone().unwrap_or_default();
            if let Ok((obs, account)) =
                runtime.block_on(agent::acm_observe(&connector, &config, &target, &new))
            {
                let status = obs.summary.status.clone();
                let location = vault::Location {
                    target: m.target.clone(),
                    account,
                    region: m.region.clone(),
                };
                v.record_acm_scan(&location, vec![obs], false)?;
                match status.as_str() {
                    "ISSUED" => m.issued = true,
                    "FAILED" | "VALIDATION_TIMED_OUT" => {
                        m.note = Some(format!(
                            "the new certificate is {status}: nothing was moved"
                        ))
                    }
                    _ => {}
                }
            }
        }
    }
    // Those sharing a replacement have what its lead found or requested.
    for i in 0..work.len() {
        if let Some(l) = work[i].shares {
            let (new, issued, records, account, lead_note, lead_old) = {
                let lead = &work[l];
                (
                    lead.new.clone(),
                    lead.issued,
                    lead.records.clone(),
                    lead.account.clone(),
                    lead.note.clone(),
                    lead.old.clone(),
                )
            };
            let m = &mut work[i];
            m.new = new;
            m.issued = issued;
            m.records = records;
            m.account = account;
            if let Some(n) = lead_note {
                m.note = Some(format!("as for {lead_old}: {n}"));
            }
        }
    }
    // 3. Listeners moved from old to new, for the issued ones: every plan read first (each
    // region's listeners once), then applied.
    let mut results = Vec::new();
    let ready: Vec<usize> = (0..work.len())
        .filter(|&i| work[i].new.is_some() && work[i].issued)
        .collect();
    let items: Vec<(String, String, String, String)> = ready
        .iter()
        .map(|&i| {
            let m = &work[i];
            (
                m.target.clone(),
                m.region.clone(),
                m.old.clone(),
                m.new.clone().unwrap_or_default(),
            )
        })
        .collect();
    let mut planned: std::collections::BTreeMap<usize, Result<agent::RotationPlan, String>> = ready
        .iter()
        .copied()
        .zip(plan_all(&config, runtime, &connector, &items)?)
        .collect();
    for (i, m) in work.iter_mut().enumerate() {
        if m.dead.is_some() {
            continue;
        }
        let (Some(_), true) = (m.new.clone(), m.issued) else {
            if m.note.is_none() && !args.dry_run {
                m.note = Some("not issued yet: run this again once the records are in place (it finds this request)".into());
            }
            continue;
        };
        let target = config
            .select(Some(&m.target), Some(std::slice::from_ref(&m.region)))?
            .remove(0);
        let plan = match planned.remove(&i) {
            Some(Ok(p)) => p,
            Some(Err(e)) => {
                m.note = Some(e);
                continue;
            }
            None => continue,
        };
        if args.dry_run {
            m.moved = 0;
            m.note = Some(format!("would move {} listener(s)", plan.swaps.len()));
            continue;
        }
        let swaps = plan.swaps.len();
        let failed = run_rotations(
            ctx,
            &mut v,
            &config,
            &[(m.target.clone(), plan.clone())],
            &mut results,
        )?;
        m.moved = swaps - failed;
        m.failed = failed;
        for e in &plan.elsewhere {
            note(&format!("{} also uses {}: {}", e.user, m.old, e.what_to_do));
        }
        // Whether the old one is used by anything now (ACM may take minutes to notice).
        if let Ok((obs, _)) =
            runtime.block_on(agent::acm_describe(&connector, &config, &target, &m.old))
        {
            m.unused = Some(obs.detail.is_none_or(|d| d.in_use_by.is_empty()));
        }
    }
    let failed: usize = work.iter().map(|m| m.failed).sum();
    let pending = work
        .iter()
        .filter(|m| m.dead.is_none() && (!m.issued || m.note.is_some()))
        .count();
    let lead_old = |m: &Migration| m.shares.map(|l| work[l].old.clone());
    if ctx.printer.json {
        let out: Vec<serde_json::Value> = work
            .iter()
            .map(|m| {
                json!({
                    "old": m.old,
                    "region": m.region,
                    "target": m.target,
                    "names": m.names,
                    "new": m.new,
                    "requested_now": m.requested_now,
                    "shares_request_with": lead_old(m),
                    "dead": m.dead.is_some(),
                    "records": m.records,
                    "issued": m.issued,
                    "listeners_moved": m.moved,
                    "listeners_failed": m.failed,
                    "old_unused": m.unused,
                    "note": m.note,
                })
            })
            .collect();
        ctx.printer.json(&out)?;
    } else {
        let mut t = ctx.printer.table(&[
            "OLD",
            "REGION",
            "NAMES",
            "NEW",
            "REQUESTED",
            "RECORDS",
            "ISSUED",
            "MOVED",
            "OLD NOW",
        ]);
        for m in &work {
            t.add_row(vec![
                cell(short(&m.old)),
                cell(&m.region),
                cell(m.names.join(", ")),
                cell(m.new.as_deref().map_or("-", short)),
                cell(match (&m.new, m.requested_now, &m.shares) {
                    (None, _, _) if m.dead.is_some() => "no (dead)".to_owned(),
                    (None, _, _) => "no".to_owned(),
                    (Some(_), _, Some(l)) => format!("shared with {}", short(&work[*l].old)),
                    (Some(_), true, None) => "now".to_owned(),
                    (Some(_), false, None) => "earlier (found)".to_owned(),
                }),
                cell(&m.records),
                cell(if m.issued { "yes" } else { "no" }),
                cell(m.moved.to_string()),
                cell(match m.unused {
                    Some(true) => format!("unused: `certvault acm delete {}` deletes it", m.old),
                    Some(false) => "still in use".into(),
                    None => m.note.clone().unwrap_or_else(|| "-".into()),
                }),
            ]);
        }
        t.keep(&[0, 6, 7]);
        t.print()?;
        if args.dry_run {
            note("--dry-run: nothing was requested, written or moved");
        } else {
            note("nothing was deleted: the old certificates stay in ACM until you delete them");
        }
    }
    if failed > 0 {
        bail!(
            "{failed} listener(s) could not be moved: run the same command again; it finds its requests and resumes"
        );
    }
    if errors > 0 {
        bail!("{errors} certificate(s) could not be requested (see above)");
    }
    Ok(if pending > 0 {
        Status::Attention
    } else {
        Status::Ok
    })
}
