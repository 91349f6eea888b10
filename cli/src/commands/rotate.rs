//! `certvault rotate OLD NEW` and `certvault acm migrate-validation`: every load balancer
//! listener serving one certificate moved to another without interrupting traffic, and
//! email-validated certificates replaced by DNS-validated ones, listeners and all. The
//! workflows are the agent's (`agent::elb`); this module asks, prints and says what to do.

use crate::output::{self, Confirmation};
use anyhow::{Result, anyhow, bail};
use serde::Serialize;

use super::Ctx;
use crate::{
    Status, UsageError,
    args::{MigrateValidationArgs, RotateArgs},
    output::{cell, note},
};
use agent::elb::{
    Elsewhere, MigrateEvent, Migration, MigrationNote, PlanOutcome, Records, RotationPlan,
    SelectError, Swap,
};

fn confirm(what: &str, yes: bool, dry_run: bool) -> Result<()> {
    output::confirm(
        yes || dry_run,
        Confirmation {
            without_terminal: format!(
                "{what}: add --yes to confirm (or --dry-run to see the plan only)"
            ),
            lines: vec![format!("{what}. Type 'rotate' to go on:")],
            answer: "rotate",
            refused: "not confirmed; nothing was changed",
        },
    )
}

fn short(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// Prints a JSON document with its keys in order, as the documents built with `json!`
/// were printed (serde_json's map is sorted).
fn print_json<T: Serialize>(ctx: &Ctx, value: &T) -> Result<()> {
    ctx.printer.json(&serde_json::to_value(value)?)
}

/// What to do about a user of OLD that `rotate` does not move.
fn what_to_do(region: &str, new: &str, user: &str) -> String {
    match agent::aws::service_of(user) {
        "cloudfront" => {
            let id = user.rsplit('/').next().unwrap_or(user);
            format!(
                "a CloudFront distribution: `aws cloudfront get-distribution-config --id {id}`, set ViewerCertificate.ACMCertificateArn to {new} (a certificate in us-east-1), then `aws cloudfront update-distribution --id {id} --if-match ETAG --distribution-config file://config.json`"
            )
        }
        "apigateway" => {
            let name = user.rsplit('/').next().unwrap_or(user);
            format!(
                "an API Gateway custom domain name: `aws apigateway update-domain-name --region {region} --domain-name {name} --patch-operations op=replace,path=/regionalCertificateArn,value={new}` (for an edge-optimized domain, path=/certificateArn and a certificate in us-east-1)"
            )
        }
        _ => agent::acm::delete::what_to_do(region, "", new, user),
    }
}

/// A user of OLD in the JSON plan.
#[derive(Serialize)]
struct ElsewhereJson {
    user: String,
    what_to_do: String,
}

/// A plan in JSON: the agent's plan, with what to do about the users it does not move.
#[derive(Serialize)]
struct PlanJson<'a> {
    region: &'a str,
    account: &'a str,
    old: &'a str,
    new: &'a str,
    swaps: &'a [Swap],
    elsewhere: Vec<ElsewhereJson>,
}

fn plan_json(p: &RotationPlan) -> PlanJson<'_> {
    PlanJson {
        region: &p.region,
        account: &p.account,
        old: &p.old,
        new: &p.new,
        swaps: &p.swaps,
        elsewhere: p
            .elsewhere
            .iter()
            .map(|e: &Elsewhere| ElsewhereJson {
                user: e.user.clone(),
                what_to_do: what_to_do(&p.region, &p.new, &e.user),
            })
            .collect(),
    }
}

/// The outcome of one swap (or of a plan none of whose swaps was tried).
#[derive(Serialize)]
struct ResultJson<'a> {
    region: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    lb_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    listener: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<agent::elb::SwapKind>,
    old: &'a str,
    new: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    moved: Option<bool>,
    error: Option<String>,
}

fn results_json(outcomes: &[PlanOutcome]) -> Vec<ResultJson<'_>> {
    let mut out = Vec::new();
    for o in outcomes {
        let p = &o.plan;
        match &o.swaps {
            Err(e) => out.push(ResultJson {
                region: &p.region,
                resource: None,
                lb_type: None,
                listener: None,
                kind: None,
                old: &p.old,
                new: &p.new,
                moved: None,
                error: Some(e.to_string()),
            }),
            Ok(swaps) => out.extend(swaps.iter().map(|(s, r)| ResultJson {
                region: &p.region,
                resource: Some(&s.resource),
                lb_type: Some(&s.lb_type),
                listener: Some(&s.listener),
                kind: Some(s.kind),
                old: &s.old,
                new: &s.new,
                moved: Some(r.is_ok()),
                error: r.as_ref().err().map(|e| e.to_string()),
            })),
        }
    }
    out
}

/// `rotate --output json`.
#[derive(Serialize)]
struct RotateJson<'a> {
    plans: Vec<PlanJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    results: Option<Vec<ResultJson<'a>>>,
    skipped: &'a [String],
    applied: bool,
}

fn print_plans(ctx: &Ctx, plans: &[(String, RotationPlan)]) -> Result<()> {
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
                what_to_do(&p.region, &p.new, &e.user)
            ));
        }
    }
    Ok(())
}

/// A selection refused, in the words (and exit code) the user gets.
fn select_error(e: SelectError) -> anyhow::Error {
    match e {
        e if e.is_usage() => UsageError(e.to_string()).into(),
        SelectError::Nowhere { .. } => {
            anyhow!("{e}: give ARNs, or run `certvault discover`")
        }
        SelectError::TwoNews { .. } => anyhow!("{e}: give the ARNs; nothing was changed"),
        SelectError::Config(e) => e.into(),
        SelectError::Vault(e) => e.into(),
        e => anyhow!(e),
    }
}

/// The places skipped, in words.
fn skipped_words(skipped: &[agent::elb::Skipped], new: &str) -> Vec<String> {
    skipped
        .iter()
        .map(|s| {
            format!(
                "{} (target {}): {new} is not in ACM there; deploy it first (`certvault deploy {new} --regions {}`)",
                s.region, s.target, s.region
            )
        })
        .collect()
}

/// Plans, each with the name of the target that moves it.
type Plans = Vec<(String, RotationPlan)>;

/// The pairs `rotate` moves, planned: every plan (with its target), and the places
/// skipped. Anything refused or unreadable: an error, and nothing is changed anywhere.
fn planned(
    ctx: &Ctx,
    v: &vault::Vault,
    config: &agent::Config,
    args: &RotateArgs,
) -> Result<(Plans, Vec<String>)> {
    let regions = if args.regions.is_empty() {
        None
    } else {
        Some(agent::config::expand_regions(
            &args.regions,
            &config.extra_regions,
        )?)
    };
    let req = agent::elb::RotateRequest {
        old: &args.old,
        new: &args.new,
        target: args.target.as_deref(),
        regions: regions.as_deref(),
    };
    let selection = agent::elb::select_pairs(v, config, &req).map_err(select_error)?;
    let skipped = skipped_words(&selection.skipped, &args.new);
    let found = ctx.runtime()?.block_on(agent::elb::plan_pairs(
        &ctx.connector(),
        config,
        &selection.pairs,
    ))?;
    let mut plans = Vec::new();
    let mut refused = Vec::new();
    for (p, planned) in selection.pairs.iter().zip(found) {
        match planned {
            Ok(plan) => plans.push((p.target.clone(), plan)),
            Err(e) => refused.push(format!("{} (target {}): {e}", p.region, p.target)),
        }
    }
    if !refused.is_empty() {
        for s in &skipped {
            note(&format!("skipped {s}"));
        }
        bail!("{}; nothing was changed", refused.join("; "));
    }
    Ok((plans, skipped))
}

fn attention_if(skipped: &[String]) -> Status {
    if skipped.is_empty() {
        Status::Ok
    } else {
        Status::Attention
    }
}

pub(crate) fn rotate(ctx: &Ctx, args: RotateArgs) -> Result<Status> {
    if ctx.printer.json && !args.confirm.yes && !args.dry_run {
        return Err(UsageError(
            "with --output json, give --dry-run to see the plan, or --yes to apply it".into(),
        )
        .into());
    }
    let config = ctx.config()?;
    let mut v = ctx.unlock_writer("rotate")?;
    let (plans, skipped) = planned(ctx, &v, &config, &args)?;
    let swaps: usize = plans.iter().map(|(_, p)| p.swaps.len()).sum();
    let json = |results: Option<Vec<ResultJson<'_>>>, applied: bool| {
        let plans = plans.iter().map(|(_, p)| plan_json(p)).collect();
        print_json(
            ctx,
            &RotateJson {
                plans,
                results,
                skipped: &skipped,
                applied,
            },
        )
    };
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
            json(None, false)?;
        } else if args.dry_run && swaps > 0 {
            note("--dry-run: nothing was changed");
        }
        return Ok(attention_if(&skipped));
    }
    confirm(
        &format!("This moves {swaps} listener(s) to the new certificate"),
        args.confirm.yes,
        false,
    )?;
    if !ctx.printer.json {
        note(
            "an ALB may close long-lived connections while its certificate changes; an NLB does not; a classic listener keeps running",
        );
    }
    let outcomes = ctx.runtime()?.block_on(agent::elb::apply_plans(
        &ctx.connector(),
        &mut v,
        &config,
        &plans,
    ))?;
    let failed: usize = outcomes.iter().map(PlanOutcome::failed).sum();
    if ctx.printer.json {
        json(Some(results_json(&outcomes)), true)?;
    } else {
        print_moved(ctx, &outcomes, swaps, failed)?;
    }
    if failed > 0 {
        bail!(
            "{failed} listener(s) could not be moved (see above and `certvault log`): run the same command again; it resumes where this one stopped"
        );
    }
    Ok(attention_if(&skipped))
}

fn print_moved(ctx: &Ctx, outcomes: &[PlanOutcome], swaps: usize, failed: usize) -> Result<()> {
    ctx.printer
        .line(&format!("moved {} of {swaps} listener(s)", swaps - failed))?;
    for r in results_json(outcomes) {
        if let Some(e) = &r.error {
            note(&format!(
                "not moved: {} {} ({}): {e}",
                r.resource.unwrap_or("-"),
                r.listener.unwrap_or("-"),
                r.region,
            ));
        }
    }
    Ok(())
}

/// A migration's note, in words.
fn note_words(m: &Migration, n: &MigrationNote) -> String {
    match n {
        MigrationNote::Dead { status } => format!(
            "{status}: not replaced (nothing can be served from it; `certvault acm delete {}` deletes it once nothing uses it)",
            m.old
        ),
        MigrationNote::NotRequested(e) => format!("nothing was requested: {e}"),
        MigrationNote::RequestFailed(e) => e.clone(),
        MigrationNote::Unreadable(e) | MigrationNote::Refused(e) => e.to_string(),
        MigrationNote::NewFailed { status } => {
            format!("the new certificate is {status}: nothing was moved")
        }
        MigrationNote::AsFor { lead, note } => {
            format!("as for {lead}: {}", note_words(m, note))
        }
        MigrationNote::NotIssuedYet => {
            "not issued yet: run this again once the records are in place (it finds this request)"
                .into()
        }
        MigrationNote::WouldMove(n) => format!("would move {n} listener(s)"),
    }
}

/// A migration's records, in words.
fn records_words(r: &Records) -> String {
    let join = |records: &[vault::records::DnsRecord],
                line: &dyn Fn(&vault::records::DnsRecord) -> String| {
        records.iter().map(line).collect::<Vec<_>>().join("; ")
    };
    match r {
        Records::WouldBeRequested => "would be requested".into(),
        Records::NotYetProduced => "not yet produced by ACM".into(),
        Records::InPlace => "in place (Route 53)".into(),
        Records::ByHand(records) => join(records, &|r| {
            format!("{} {} {}: create by hand", r.name, r.record_type, r.value)
        }),
        Records::NotPlaced(why) => why.clone(),
        Records::ToCreate(records) => join(records, &|r| format!("{} CNAME {}", r.name, r.value)),
        Records::Unknown => String::new(),
    }
}

/// One migration in `migrate-validation --output json`.
#[derive(Serialize)]
struct MigrationJson<'a> {
    old: &'a str,
    region: &'a str,
    target: &'a str,
    names: &'a [String],
    new: Option<&'a str>,
    requested_now: bool,
    shares_request_with: Option<&'a str>,
    dead: bool,
    records: String,
    issued: bool,
    listeners_moved: usize,
    listeners_failed: usize,
    old_unused: Option<bool>,
    note: Option<String>,
}

fn migration_json<'a>(work: &'a [Migration], m: &'a Migration) -> MigrationJson<'a> {
    MigrationJson {
        old: &m.old,
        region: &m.region,
        target: &m.target,
        names: &m.names,
        new: m.new.as_deref(),
        requested_now: m.requested_now,
        shares_request_with: m.shares.map(|l| work[l].old.as_str()),
        dead: m.dead.is_some(),
        records: records_words(&m.records),
        issued: m.issued,
        listeners_moved: m.moved,
        listeners_failed: m.failed,
        old_unused: m.unused,
        note: m.note.as_ref().map(|n| note_words(m, n)),
    }
}

fn print_migrations(ctx: &Ctx, work: &[Migration], dry_run: bool) -> Result<()> {
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
    for m in work {
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
            cell(records_words(&m.records)),
            cell(if m.issued { "yes" } else { "no" }),
            cell(m.moved.to_string()),
            cell(match m.unused {
                Some(true) => format!("unused: `certvault acm delete {}` deletes it", m.old),
                Some(false) => "still in use".into(),
                None => m.note.as_ref().map_or("-".into(), |n| note_words(m, n)),
            }),
        ]);
    }
    t.keep(&[0, 6, 7]);
    t.print()?;
    if dry_run {
        note("--dry-run: nothing was requested, written or moved");
    } else {
        note("nothing was deleted: the old certificates stay in ACM until you delete them");
    }
    Ok(())
}

fn tell(event: &MigrateEvent) {
    match event {
        MigrateEvent::Unanswered { arn, error } => note(&format!(
            "requested {arn}, but ACM's answer about it could not be read yet ({error}): `certvault acm requests` asks again"
        )),
        MigrateEvent::AlsoUsed {
            old,
            new,
            region,
            user,
        } => note(&format!(
            "{} also uses {old}: {}",
            user.user,
            what_to_do(region, new, &user.user)
        )),
    }
}

/// The email-validated certificates found, after the notes and confirmation that come
/// before any change; `None` when there is nothing to do (and that was said).
fn migrations_to_run(
    ctx: &Ctx,
    v: &vault::Vault,
    targets: &[agent::Target],
    args: &MigrateValidationArgs,
) -> Result<Option<Vec<Migration>>> {
    let work = agent::elb::find_migrations(v, targets)?;
    if work.is_empty() {
        if ctx.printer.json {
            ctx.printer.json(&Vec::<MigrationJson<'_>>::new())?;
        } else {
            note(
                "no email-validated certificate found (run `certvault discover` first): nothing to migrate",
            );
        }
        return Ok(None);
    }
    if work.iter().all(|m| m.dead.is_some()) && !ctx.printer.json {
        note(
            "every email-validated certificate found is dead (failed, expired...): nothing to replace",
        );
    }
    let (to_request, replacing) = agent::elb::migration_counts(&work);
    confirm(
        &format!(
            "This requests {to_request} DNS-validated certificate(s), waits for them, and moves every listener of {replacing} email-validated certificate(s) to them"
        ),
        args.confirm.yes,
        args.dry_run,
    )?;
    Ok(Some(work))
}

pub(crate) fn migrate_validation(ctx: &Ctx, args: MigrateValidationArgs) -> Result<Status> {
    if args.timeout > time::Duration::hours(72) {
        return Err(UsageError("--timeout: at most 72h".into()).into());
    }
    let config = ctx.config()?;
    let regions = agent::config::expand_regions(&args.scan.regions, &config.extra_regions)?;
    let targets = config.select(args.scan.target.as_deref(), Some(&regions))?;
    let mut v = ctx.unlock_writer("acm migrate-validation")?;
    let runtime = ctx.runtime()?;
    let Some(work) = migrations_to_run(ctx, &v, &targets, &args)? else {
        return Ok(Status::Ok);
    };
    let opts = agent::elb::MigrateOptions {
        route53: args.route53,
        dry_run: args.dry_run,
        timeout: std::time::Duration::try_from(args.timeout).unwrap_or_default(),
    };
    let report = runtime.block_on(agent::elb::run_migrations(
        &ctx.connector(),
        &mut v,
        &config,
        work,
        opts,
    ))?;
    report.events.iter().for_each(tell);
    if ctx.printer.json {
        let out: Vec<MigrationJson<'_>> = report
            .work
            .iter()
            .map(|m| migration_json(&report.work, m))
            .collect();
        print_json(ctx, &out)?;
    } else {
        print_migrations(ctx, &report.work, args.dry_run)?;
    }
    let failed = report.failed();
    if failed > 0 {
        bail!(
            "{failed} listener(s) could not be moved: run the same command again; it finds its requests and resumes"
        );
    }
    if report.errors > 0 {
        bail!(
            "{} certificate(s) could not be requested (see above)",
            report.errors
        );
    }
    Ok(if report.pending() > 0 {
        Status::Attention
    } else {
        Status::Ok
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloudfront_and_api_gateway_users_are_given_the_command_to_run() {
        let new = "arn:aws:acm:us-east-1:123456789012:certificate/new";
        let cf = what_to_do(
            "us-east-1",
            new,
            "arn:aws:cloudfront::123456789012:distribution/E2ABC",
        );
        assert!(cf.contains("--id E2ABC") && cf.contains(new), "{cf}");
        let api = what_to_do(
            "eu-west-1",
            new,
            "arn:aws:apigateway:eu-west-1::/domainnames/api.example.com",
        );
        assert!(
            api.contains("--region eu-west-1 --domain-name api.example.com")
                && api.contains(&format!("value={new}")),
            "{api}"
        );
    }
}
