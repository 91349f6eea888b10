//! `certvault pca ...`: AWS Private CA.

use anyhow::{Result, bail};

use super::Ctx;
use crate::{
    Status, UsageError,
    args::{PcaAction, PcaArgs, PcaIssueArgs, PcaListArgs},
    output::{cell, date, expiry_cell, expiry_date_cell, note, relative},
};

pub(crate) fn pca(ctx: &Ctx, args: PcaArgs) -> Result<Status> {
    match args.action {
        PcaAction::List(a) => list(ctx, a),
        PcaAction::Issue(a) => issue(ctx, a),
    }
}

fn list(ctx: &Ctx, args: PcaListArgs) -> Result<Status> {
    let config = ctx.config()?;
    let targets =
        super::targets_or_env_region(&config, args.target.as_deref(), args.regions.as_deref())?;
    if targets.iter().any(|t| t.regions.is_empty()) {
        return Err(UsageError(
            "no regions to look in: give --regions (or `all`), list them in the target's configuration, or set $AWS_REGION".into(),
        )
        .into());
    }
    let runtime = ctx.runtime()?;
    let mut rows = Vec::new();
    let mut failed = 0;
    for t in &targets {
        let found = match runtime.block_on(agent::pca_list(&ctx.connector(), &config, t)) {
            Ok(f) => f,
            Err(e) => {
                failed += 1;
                note(&format!("target {}: {e}", t.name));
                continue;
            }
        };
        for (region, cas) in found {
            match cas {
                Ok(cas) => rows.extend(
                    cas.into_iter()
                        .map(|ca| (t.name.clone(), region.clone(), ca)),
                ),
                Err(e) => {
                    failed += 1;
                    note(&format!("target {}, {region}: {e}", t.name));
                }
            }
        }
    }
    let p = &ctx.printer;
    if p.json {
        let out: Vec<serde_json::Value> = rows
            .iter()
            .map(|(target, region, ca)| {
                let mut v = serde_json::to_value(ca).unwrap_or_default();
                v["target"] = target.clone().into();
                v["region"] = region.clone().into();
                v
            })
            .collect();
        p.json(&out)?;
    } else if rows.is_empty() {
        note("no AWS Private CAs in those regions");
    } else {
        let mut t = p.table(&[
            "REGION", "STATE", "TYPE", "KEY", "SUBJECT", "EXPIRES", "", "ARN",
        ]);
        for (_, region, ca) in &rows {
            let state = match (ca.status.as_str(), ca.restorable_until) {
                ("DELETED", Some(until)) => format!("DELETED (restorable until {})", date(until)),
                ("DELETED", None) => "DELETED (restore deadline not given)".to_owned(),
                (s, _) => s.to_owned(),
            };
            let (end, rel) = match ca.not_after {
                Some(n) => (expiry_date_cell(n), expiry_cell(relative(n), n)),
                None => (cell("-"), cell("")),
            };
            t.add_row(vec![
                cell(region),
                cell(state),
                cell(&ca.kind),
                cell(ca.key_algorithm.as_deref().unwrap_or("-")),
                cell(
                    ca.common_name
                        .as_deref()
                        .map_or("-".to_owned(), |c| format!("CN={c}")),
                ),
                end,
                rel,
                cell(&ca.arn),
            ]);
        }
        t.keep(&[0, 1, 7]);
        t.print()?;
    }
    Ok(if failed > 0 {
        Status::Attention
    } else {
        Status::Ok
    })
}

fn issue(ctx: &Ctx, args: PcaIssueArgs) -> Result<Status> {
    let config = ctx.config()?;
    let Some((_, region)) = agent::pca_arn_location(&args.ca_arn) else {
        return Err(UsageError(format!(
            "--ca-arn {}: not an AWS Private CA ARN (arn:aws:acm-pca:REGION:ACCOUNT:certificate-authority/ID)",
            args.ca_arn
        ))
        .into());
    };
    let days = args.validity.whole_days();
    if days < 1 || args.validity != time::Duration::days(days) {
        return Err(UsageError(format!(
            "--validity: AWS Private CA counts in whole days; give a whole number of days, at least 1d ({} seconds given)",
            args.validity.whole_seconds()
        ))
        .into());
    }
    if args.timeout > time::Duration::hours(1) {
        return Err(UsageError(
            "--timeout: at most 1h (AWS Private CA issues within seconds)".into(),
        )
        .into());
    }
    let target = super::acm::one_target(&config, args.target.as_deref(), region)?;
    let mut v = ctx.unlock_writer("pca issue")?;
    let pending = v.pca_prepare(&vault::PcaRequest {
        ca_arn: args.ca_arn.clone(),
        dns: args.dns,
        key_type: args.key_type.into(),
        name: args.name,
        target: target.name.clone(),
        validity_days: days,
    })?;
    let req = agent::PcaIssueRequest {
        target: &target,
        ca_arn: &args.ca_arn,
        csr_pem: &pending.csr_pem,
        validity_days: days,
        idempotency_token: &pending.idempotency_token,
        timeout: std::time::Duration::try_from(args.timeout).unwrap_or_default(),
    };
    let started = std::time::Instant::now();
    let runtime = ctx.runtime()?;
    let issued = match runtime.block_on(agent::pca_issue(&ctx.connector(), &config, req)) {
        Ok(i) => i,
        Err(e) => bail!("nothing was stored: {e}"),
    };
    let stored = v.pca_store(
        pending,
        &issued.certificate_arn,
        &issued.pem.certificate,
        issued.pem.chain.as_deref(),
    )?;
    let took = started.elapsed();
    if ctx.printer.json {
        let mut out = serde_json::to_value(&stored)?;
        out["get_certificate_calls"] = issued.polls.into();
        out["seconds"] = took.as_secs_f64().into();
        ctx.printer.json(&out)?;
    } else {
        ctx.printer.line(&format!(
            "{}: issued by {} ({}), serial {}, valid until {}; its key was made in the vault and never left it",
            stored.name,
            stored.ca_arn,
            stored.certificate_arn,
            stored.serial,
            date(stored.not_after)
        ))?;
        note(&format!(
            "took {:.1} s, {} GetCertificate call{}",
            took.as_secs_f64(),
            issued.polls,
            if issued.polls == 1 { "" } else { "s" }
        ));
    }
    Ok(Status::Ok)
}
