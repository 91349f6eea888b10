//! `certvault pca ...`: AWS Private CA.

use anyhow::Result;
use serde::Serialize;

use super::{Ctx, common::print_json};
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
    let (rows, failed) =
        ctx.runtime()?
            .block_on(agent::pca::list_all(&ctx.connector(), &config, &targets));
    for f in &failed {
        match &f.region {
            None => note(&format!("target {}: {}", f.target, f.error)),
            Some(region) => note(&format!("target {}, {region}: {}", f.target, f.error)),
        }
    }
    if ctx.printer.json {
        print_json(ctx, &rows)?;
    } else if rows.is_empty() {
        note("no AWS Private CAs in those regions");
    } else {
        print_cas(ctx, &rows)?;
    }
    Ok(if failed.is_empty() {
        Status::Ok
    } else {
        Status::Attention
    })
}

fn print_cas(ctx: &Ctx, rows: &[agent::pca::ListedCa]) -> Result<()> {
    let mut t = ctx.printer.table(&[
        "REGION", "STATE", "TYPE", "KEY", "SUBJECT", "EXPIRES", "", "ARN",
    ]);
    for agent::pca::ListedCa { region, ca, .. } in rows {
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
    t.print()
}

fn issue(ctx: &Ctx, args: PcaIssueArgs) -> Result<Status> {
    let config = ctx.config()?;
    let Some((_, region)) = agent::aws::pca_arn_location(&args.ca_arn) else {
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
    let target = super::common::one_target(&config, args.owner.target.as_deref(), region)?;
    let mut v = ctx.unlock_writer("pca issue")?;
    let pending = v.pca_prepare(&vault::ca::pca::PcaRequest {
        ca_arn: args.ca_arn.clone(),
        dns: args.dns,
        key_type: args.key_type.into(),
        name: args.name,
        target: target.name.clone(),
        validity_days: days,
    })?;
    let timeout = std::time::Duration::try_from(args.timeout).unwrap_or_default();
    let agent::pca::Stored {
        stored,
        polls,
        took,
    } = ctx
        .runtime()?
        .block_on(agent::pca::issue_and_store(
            &ctx.connector(),
            &mut v,
            &config,
            &target,
            pending,
            timeout,
        ))
        .map_err(stored_error)?;
    if ctx.printer.json {
        print_json(
            ctx,
            &IssuedOut {
                stored: &stored,
                get_certificate_calls: polls,
                seconds: took.as_secs_f64(),
            },
        )?;
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
            polls,
            if polls == 1 { "" } else { "s" }
        ));
    }
    Ok(Status::Ok)
}

/// What `pca issue --output json` prints: the stored certificate, and how it went.
#[derive(Serialize)]
struct IssuedOut<'a> {
    #[serde(flatten)]
    stored: &'a vault::ca::pca::PcaStored,
    get_certificate_calls: u32,
    seconds: f64,
}

/// A failure to issue or store, as the CLI says it (the vault's and configuration's errors
/// as themselves, so their exit codes hold).
pub(crate) fn stored_error(e: agent::pca::StoreError) -> anyhow::Error {
    match e {
        agent::pca::StoreError::Vault(e) => e.into(),
        agent::pca::StoreError::Agent(e) => e.into(),
        agent::pca::StoreError::NotStored(e) => {
            anyhow::anyhow!("nothing was stored: {}", crate::output::error_chain(e))
        }
        other => anyhow::anyhow!("{other}"),
    }
}
