//! `certvault acm ...`: acting on certificates in ACM itself. The workflows are the agent's
//! (`agent::acm`); this module parses, asks and prints.

use crate::output::{Confirmation, confirm};
use agent::aws::{CertificateStatus, ValidationMethod};
use anyhow::Result;
use serde::Serialize;

use super::{
    Ctx,
    common::{choose, explain, one_target, place_records, print_json, submit},
};
use crate::{
    Status, UsageError,
    args::{
        AcmAction, AcmArgs, AcmDeleteArgs, AcmExportKeyArgs, AcmKeyArg, AcmRequestArgs,
        AcmRequestPrivateArgs, AcmRequestsArgs, ValidationArg,
    },
    output::{cell, note},
};
use agent::acm::{
    delete::DeletePlan,
    export_key::ExportPlan,
    request::validation_addresses,
    requests::{FollowOptions, RequestRow, placement_words, status_words},
};

pub(crate) fn acm(ctx: &Ctx, args: AcmArgs) -> Result<Status> {
    match args.action {
        AcmAction::Request(a) => request(ctx, a),
        AcmAction::Requests(a) => requests(ctx, a),
        AcmAction::RequestPrivate(a) => request_private(ctx, a),
        AcmAction::Delete(a) => delete(ctx, a),
        AcmAction::ExportKey(a) => export_key(ctx, a),
        AcmAction::Renew(a) => super::acm_lifecycle::renew(ctx, a),
        AcmAction::Revoke(a) => super::acm_lifecycle::revoke(ctx, a),
        AcmAction::MigrateValidation(a) => super::rotate::migrate_validation(ctx, a),
    }
}

/// What `acm export-key --output json` prints.
#[derive(Serialize)]
struct ExportedOut<'a> {
    arn: &'a str,
    entry: EntryRef<'a>,
    outcome: &'a str,
}

/// An entry, by id and name.
#[derive(Serialize)]
struct EntryRef<'a> {
    id: &'a str,
    name: &'a str,
}

fn export_key(ctx: &Ctx, args: AcmExportKeyArgs) -> Result<Status> {
    let config = ctx.config()?;
    let mut v = ctx.unlock_writer("acm export-key")?;
    let chosen = choose(
        &v,
        &args.certificate,
        args.place.region.as_deref(),
        args.place.target.as_deref(),
    )?;
    let chosen = match agent::acm::export_key::plan_export(&v, chosen).map_err(explain)? {
        ExportPlan::AlreadyHeld {
            arn,
            entry,
            version,
        } => {
            note(&format!(
                "{entry}: the vault holds the key of the certificate at {arn} already (version {version}); nothing was exported (AWS charges each export). If ACM renewed it since, run `certvault discover` first"
            ));
            return Ok(Status::Ok);
        }
        ExportPlan::Export(chosen) => chosen,
    };
    let what = chosen.what();
    confirm(
        args.yes,
        Confirmation::word(
            "export",
            format!(
                "exporting the key of {what} is charged by AWS (ExportCertificate); add --yes to confirm"
            ),
            format!(
                "This exports the private key of {what} from ACM ({}, account {}); AWS charges for each export. The key is sealed in the vault at once.",
                chosen.region, chosen.account
            ),
            "not confirmed; nothing was exported",
        ),
    )?;
    let exported = ctx
        .runtime()?
        .block_on(agent::acm::export_key::export_chosen(
            &ctx.connector(),
            &mut v,
            &config,
            &chosen,
        ))
        .map_err(explain)?;
    let (id, name, how) = exported.entry_and_words();
    if ctx.printer.json {
        print_json(
            ctx,
            &ExportedOut {
                arn: &exported.arn,
                entry: EntryRef { id, name },
                outcome: how,
            },
        )?;
    } else {
        ctx.printer
            .line(&format!("{name}: {how} (exported from {})", exported.arn))?;
    }
    Ok(Status::Ok)
}

/// What `acm request --output json` prints.
#[derive(Serialize)]
struct RequestedOut<'a> {
    account: &'a str,
    arn: &'a str,
    emails: &'a [String],
    entry: Option<&'a str>,
    failure_reason: Option<&'a str>,
    names: &'a [vault::records::NameValidation],
    records: &'a [vault::records::DnsRecord],
    region: &'a str,
    route53: Option<&'a [agent::route53::PlacedRecord]>,
    status: &'a CertificateStatus,
    validation: ValidationMethod,
}

/// The one region a request is for.
fn one_region(config: &agent::Config, region: &str) -> Result<String> {
    let regions = agent::config::expand_regions(&[region.to_owned()], &config.extra_regions)?;
    let [region] = regions.as_slice() else {
        return Err(UsageError(format!(
            "--region {region}: one region (a request is for one region; request again for another)"
        ))
        .into());
    };
    Ok(region.clone())
}

fn request(ctx: &Ctx, args: AcmRequestArgs) -> Result<Status> {
    let config = ctx.config()?;
    let region = one_region(&config, &args.region)?;
    let names = checked_names(&args.domain, &args.san)?;
    let validation = match args.validation {
        ValidationArg::Dns => ValidationMethod::Dns,
        ValidationArg::Email => ValidationMethod::Email,
    };
    if args.route53 && validation != ValidationMethod::Dns {
        return Err(UsageError(
            "--route53 creates DNS validation records: it goes with --validation dns".into(),
        )
        .into());
    }
    let target = one_target(&config, args.target.as_deref(), &region)?;
    let mut v = ctx.unlock_writer("acm request")?;
    let req = public_request(&args, &target, &region, &names, &validation);
    let exportable = if args.export_enabled {
        ", exportable"
    } else {
        ""
    };
    let audit = format!("{} ({validation} validation{exportable})", names.join(", "));
    let wait = std::time::Duration::try_from(args.wait_records).unwrap_or_default();
    let s = submit(ctx, &mut v, &config, &target, &region, &req, &audit, wait)?;
    let records = &s.detail.validation_records;
    // The records in Route 53, asked: whether ACM has issued already or not (a DNS-validated
    // certificate renews by itself only while they stay).
    let placed = if args.route53 && !records.is_empty() {
        Some(place_records(
            ctx, &mut v, &config, &target, &s.account, &s.arn, records,
        )?)
    } else {
        None
    };
    let emails: Vec<String> = if validation == ValidationMethod::Email {
        names.iter().flat_map(|n| validation_addresses(n)).collect()
    } else {
        Vec::new()
    };
    let out = RequestedOut {
        account: &s.account,
        arn: &s.arn,
        emails: &emails,
        entry: s.entry.as_deref(),
        failure_reason: s.detail.failure_reason.as_deref(),
        names: &s.detail.names,
        records,
        region: &region,
        route53: placed.as_deref(),
        status: &s.status,
        validation,
    };
    print_requested(ctx, &out, args.route53)?;
    let by_hand = placed.as_ref().is_some_and(|p| {
        p.iter()
            .any(|r| !matches!(r.placement, agent::route53::Placement::InPlace { .. }))
    });
    Ok(
        if by_hand
            || matches!(
                s.status,
                CertificateStatus::Failed | CertificateStatus::ValidationTimedOut
            )
        {
            Status::Attention
        } else {
            Status::Ok
        },
    )
}

/// What RequestCertificate is asked for a public certificate, with its idempotency token
/// (the same request twice is one certificate).
fn public_request(
    args: &AcmRequestArgs,
    target: &agent::Target,
    region: &str,
    names: &[String],
    validation: &ValidationMethod,
) -> agent::aws::CertRequest {
    let key_algorithm = args.key_algorithm.map(key_algorithm_name);
    let token = vault::records::idempotency_token(&[
        "acm-request",
        &target.name,
        region,
        &names[0],
        &names[1..].join(","),
        validation.as_str(),
        key_algorithm.unwrap_or(""),
        if args.export_enabled { "export" } else { "" },
    ]);
    agent::aws::CertRequest {
        domain: names[0].clone(),
        sans: names[1..].to_vec(),
        validation: Some(validation.clone()),
        key_algorithm: key_algorithm.map(str::to_owned),
        export: args.export_enabled,
        ca_arn: None,
        token,
    }
}

fn print_requested(ctx: &Ctx, out: &RequestedOut<'_>, route53: bool) -> Result<()> {
    if ctx.printer.json {
        return print_json(ctx, out);
    }
    ctx.printer.line(&format!(
        "requested {} ({}, account {}): {}",
        out.arn,
        out.region,
        out.account,
        status_words(out.status.as_str())
    ))?;
    if out.validation == ValidationMethod::Dns {
        if out.records.is_empty() {
            note(if route53 {
                "ACM has not produced the DNS records yet: `certvault acm requests --route53` shows them and creates them in Route 53 when it has"
            } else {
                "ACM has not produced the DNS records yet: `certvault acm requests` shows them when it has"
            });
        } else if let Some(placed) = out.route53 {
            print_placed(ctx, placed)?;
        } else {
            let mut t = ctx.printer.table(&["DOMAIN", "NAME", "TYPE", "VALUE"]);
            for r in out.records {
                t.add_row(vec![
                    cell(&r.domain),
                    cell(&r.name),
                    cell(&r.record_type),
                    cell(&r.value),
                ]);
            }
            t.keep(&[1, 2, 3]);
            t.print()?;
            note(
                "create these records in DNS: ACM validates within minutes of seeing them, and renews by itself for as long as they stay",
            );
        }
    } else {
        note(&format!(
            "ACM writes to {} (WHOIS contacts are not used since 2024); someone must approve, now and at every renewal: --validation dns needs nobody",
            out.emails.join(", ")
        ));
    }
    if let Some(name) = out.entry {
        note(&format!("issued already: it is the vault entry {name}"));
    }
    Ok(())
}

/// What `acm request-private --output json` prints.
#[derive(Serialize)]
struct RequestedPrivateOut<'a> {
    account: &'a str,
    arn: &'a str,
    ca_arn: &'a str,
    entry: Option<&'a str>,
    region: &'a str,
    status: &'a CertificateStatus,
}

fn request_private(ctx: &Ctx, args: AcmRequestPrivateArgs) -> Result<Status> {
    let config = ctx.config()?;
    let Some((_, region)) = agent::aws::pca_arn_location(&args.ca_arn) else {
        return Err(UsageError(format!(
            "--ca-arn {}: not an AWS Private CA ARN (arn:aws:acm-pca:REGION:ACCOUNT:certificate-authority/ID)",
            args.ca_arn
        ))
        .into());
    };
    let region = region.to_owned();
    let names = checked_names(&args.domain, &args.san)?;
    let key_algorithm = args.key_algorithm.map(key_algorithm_name);
    let target = one_target(&config, args.owner.target.as_deref(), &region)?;
    let mut v = ctx.unlock_writer("acm request-private")?;
    let token = vault::records::idempotency_token(&[
        "acm-request-private",
        &target.name,
        &region,
        &args.ca_arn,
        &names.join(","),
        key_algorithm.unwrap_or(""),
    ]);
    let req = agent::aws::CertRequest {
        domain: names[0].clone(),
        sans: names[1..].to_vec(),
        validation: None,
        key_algorithm: key_algorithm.map(str::to_owned),
        export: false,
        ca_arn: Some(args.ca_arn.clone()),
        token,
    };
    let audit = format!("private, from CA {}: {}", args.ca_arn, names.join(", "));
    let zero = std::time::Duration::ZERO;
    let s = submit(ctx, &mut v, &config, &target, &region, &req, &audit, zero)?;
    if ctx.printer.json {
        print_json(
            ctx,
            &RequestedPrivateOut {
                account: &s.account,
                arn: &s.arn,
                ca_arn: &args.ca_arn,
                entry: s.entry.as_deref(),
                region: &region,
                status: &s.status,
            },
        )?;
    } else {
        ctx.printer.line(&format!(
            "requested {} from {} ({region}): {}",
            s.arn,
            args.ca_arn,
            status_words(s.status.as_str())
        ))?;
        match &s.entry {
            Some(name) => note(&format!(
                "it is the vault entry {name} (ACM holds its key: `certvault acm export-key {}` brings it into the vault, charged by AWS)",
                vault::text::shell_word(name)
            )),
            None => note("`certvault acm requests` follows it until it is issued"),
        }
    }
    Ok(if s.status == CertificateStatus::Failed {
        Status::Attention
    } else {
        Status::Ok
    })
}

fn requests(ctx: &Ctx, args: AcmRequestsArgs) -> Result<Status> {
    if args.timeout > time::Duration::hours(72) {
        return Err(UsageError(
            "--timeout: at most 72h (ACM gives up on a request after 72 hours)".into(),
        )
        .into());
    }
    let config = ctx.config()?;
    let mut v = ctx.unlock_writer("acm requests")?;
    let opts = FollowOptions {
        wait: args.wait,
        timeout: std::time::Duration::try_from(args.timeout).unwrap_or_default(),
        route53: args.route53,
    };
    let mut on_wait = |open: usize, pause: std::time::Duration| {
        note(&format!(
            "{open} still waiting; checking again in {} s",
            pause.as_secs()
        ));
    };
    let followed = ctx
        .runtime()?
        .block_on(agent::acm::requests::follow(
            &ctx.connector(),
            &mut v,
            &config,
            opts,
            &mut on_wait,
        ))
        .map_err(explain)?;
    if followed.rows.is_empty() {
        if ctx.printer.json {
            ctx.printer.json(&Vec::<RequestRow>::new())?;
        } else {
            note("no requests waiting: every certificate requested is issued");
        }
        return Ok(Status::Ok);
    }
    print_requests(ctx, &followed.rows)?;
    Ok(if followed.needs_attention(args.wait) {
        Status::Attention
    } else {
        Status::Ok
    })
}

fn print_requests(ctx: &Ctx, rows: &[RequestRow]) -> Result<()> {
    if ctx.printer.json {
        return print_json(ctx, &rows);
    }
    let mut t = ctx
        .printer
        .table(&["DOMAIN", "REGION", "STATUS", "DETAIL", "ARN"]);
    for r in rows {
        let status = if r.status == Some(CertificateStatus::PendingValidation)
            && r.records_in_place == Some(true)
        {
            "records in place".to_owned()
        } else {
            status_words(
                r.status
                    .as_ref()
                    .map_or("unknown", CertificateStatus::as_str),
            )
        };
        t.add_row(vec![
            cell(&r.domain),
            cell(&r.region),
            cell(status),
            cell(&r.detail),
            cell(&r.arn),
        ]);
    }
    t.keep(&[0, 2, 3]);
    t.print()
}

/// What `acm delete --output json` prints.
#[derive(Serialize)]
struct DeletedOut<'a> {
    account: &'a str,
    already_gone: bool,
    arn: &'a str,
    deleted: bool,
    entry: Option<EntryRef<'a>>,
    region: &'a str,
}

fn delete(ctx: &Ctx, args: AcmDeleteArgs) -> Result<Status> {
    let config = ctx.config()?;
    let mut v = ctx.unlock_writer("acm delete")?;
    let chosen = choose(
        &v,
        &args.certificate,
        args.place.region.as_deref(),
        args.place.target.as_deref(),
    )?;
    // A deployment's ARN is the agent's to keep; the deployment rows are checked first.
    let plan = agent::acm::delete::plan_delete(&mut v, chosen).map_err(explain)?;
    confirm_delete(&plan, args.confirm.yes)?;
    let wait = std::time::Duration::try_from(args.wait).unwrap_or_default();
    let outcome = ctx
        .runtime()?
        .block_on(agent::acm::delete::delete_planned(
            &ctx.connector(),
            &mut v,
            &config,
            &plan,
            wait,
        ))
        .map_err(explain)?;
    let already_gone = outcome == agent::acm::delete::Deleted::AlreadyGone;
    let c = &plan.chosen;
    let entry_name = c.entry.as_ref().map(|(_, n)| n.as_str());
    if ctx.printer.json {
        print_json(
            ctx,
            &DeletedOut {
                account: &c.account,
                already_gone,
                arn: &c.arn,
                deleted: !already_gone,
                entry: c.entry.as_ref().map(|(id, name)| EntryRef { id, name }),
                region: &c.region,
            },
        )?;
    } else {
        ctx.printer.line(&format!(
            "{} {} from ACM ({}){}",
            if already_gone {
                "already gone:"
            } else {
                "deleted"
            },
            c.arn,
            c.region,
            entry_name.map_or(String::new(), |n| format!("; the vault keeps {n}"))
        ))?;
    }
    Ok(Status::Ok)
}

fn confirm_delete(plan: &DeletePlan, yes: bool) -> Result<()> {
    let c = &plan.chosen;
    let (what, region, account) = (c.what(), &c.region, &c.account);
    let keeps = match &c.entry {
        Some((_, n)) => format!("; the vault keeps the entry {n}"),
        None => String::new(),
    };
    confirm(
        yes,
        Confirmation::word(
            "delete",
            format!(
                "deleting {what} from ACM ({region}, account {account}) cannot be undone; add --yes to confirm"
            ),
            format!(
                "This deletes {what} from ACM in {region}, account {account}. It cannot be undone{keeps}."
            ),
            "not confirmed; nothing was deleted",
        ),
    )
}

fn key_algorithm_name(k: AcmKeyArg) -> &'static str {
    match k {
        AcmKeyArg::Rsa2048 => "RSA_2048",
        AcmKeyArg::EcPrime256v1 => "EC_prime256v1",
        AcmKeyArg::EcSecp384r1 => "EC_secp384r1",
    }
}

fn checked_names(domain: &str, sans: &[String]) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for n in std::iter::once(domain).chain(sans.iter().map(String::as_str)) {
        let n = vault::ca::check_dns(n).map_err(|e| UsageError(format!("--domain/--san: {e}")))?;
        if !names.contains(&n) {
            names.push(n);
        }
    }
    if names.len() > 100 {
        return Err(UsageError(
            "at most 100 names in one request (ACM's default quota is 10)".into(),
        )
        .into());
    }
    Ok(names)
}

fn print_placed(ctx: &Ctx, placed: &[agent::route53::PlacedRecord]) -> Result<()> {
    let mut t = ctx
        .printer
        .table(&["DOMAIN", "NAME", "TYPE", "VALUE", "ROUTE 53"]);
    for p in placed {
        t.add_row(vec![
            cell(&p.record.domain),
            cell(&p.record.name),
            cell(&p.record.record_type),
            cell(&p.record.value),
            cell(placement_words(&p.placement)),
        ]);
    }
    t.keep(&[1, 2, 3, 4]);
    t.print()?;
    let by_hand = placed
        .iter()
        .filter(|p| !matches!(p.placement, agent::route53::Placement::InPlace { .. }))
        .count();
    note(&if by_hand == 0 {
        "every record is in Route 53: ACM validates within minutes, and renews by itself for as long as they stay".to_owned()
    } else {
        format!(
            "{by_hand} record{} to create by hand (see above); the others are in Route 53",
            if by_hand == 1 { "" } else { "s" }
        )
    });
    Ok(())
}
