//! `certvault discover`.

use std::io::IsTerminal;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use vault::text::count;

use super::Ctx;
use crate::{
    Reported, Status,
    args::DiscoverArgs,
    output::{Color, Printer, cell, date, day, expiry_cell, relative},
};

pub(crate) fn discover(ctx: &Ctx, args: DiscoverArgs) -> Result<Status> {
    let config = ctx.config()?;
    let targets =
        super::targets_or_env_region(&config, args.target.as_deref(), args.regions.as_deref())?;
    let mut vault = ctx.unlock_writer("discover")?;
    let runtime = ctx.runtime()?;

    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("{spinner} scanning [{bar:30}] {pos}/{len} locations {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let progress = |p: agent::discover::Progress| match p {
        agent::discover::Progress::Started(n) => bar.set_length(n as u64),
        agent::discover::Progress::Finished { location, .. } => {
            bar.set_message(location);
            bar.inc(1);
        }
    };
    let opts = agent::discover::DiscoverOptions {
        include_iam: args.include_iam,
        deep: args.deep,
    };
    let report = runtime.block_on(agent::discover::discover(
        &ctx.connector(),
        &mut vault,
        &config,
        &targets,
        opts,
        &progress,
    ))?;
    bar.finish_and_clear();

    let p = &ctx.printer;
    if p.json {
        p.json(&report)?;
    } else {
        print_report(p, &report)?;
    }
    let failed = report.failures();
    if failed > 0 {
        return Err(Reported(super::deploy::failed_of(
            failed,
            report.locations.len(),
            ("location", "locations"),
            "could not be scanned",
            "the others were recorded",
        ))
        .into());
    }
    Ok(if report.needs_attention() {
        Status::Attention
    } else {
        Status::Ok
    })
}

fn print_report(p: &Printer, r: &agent::discover::DiscoveryReport) -> Result<()> {
    let accounts: std::collections::BTreeSet<_> = r
        .locations
        .iter()
        .filter_map(|l| l.account.as_deref())
        .collect();
    let scanned = r.locations.iter().filter(|l| l.status != "covered").count();
    p.line(&format!(
        "Scanned {} in {} in {:.1} s with {}{}: {}.",
        count(scanned, "location", "locations"),
        count(accounts.len(), "account", "accounts"),
        r.elapsed_ms as f64 / 1000.0,
        count(r.api_calls.total, "API call", "API calls"),
        if r.api_calls.throttled > 0 {
            format!(" ({} throttled and retried)", r.api_calls.throttled)
        } else {
            String::new()
        },
        count(r.total, "certificate", "certificates")
    ))?;
    print_locations(p, r)?;
    let c = &r.changes;
    p.line(&format!(
        "Vault: {}, {}, {} already held, {} gone from AWS (kept in the vault).",
        count(c.created.len(), "new entry", "new entries"),
        count(c.new_versions.len(), "new version", "new versions"),
        c.linked.len(),
        c.gone.len()
    ))?;

    print_findings(p, &r.findings)?;
    print_errors(p, r)
}

/// Each location scanned: its status and how many certificates of each type.
fn print_locations(p: &Printer, r: &agent::discover::DiscoveryReport) -> Result<()> {
    let types = ["IMPORTED", "AMAZON_ISSUED", "PRIVATE", "IAM"];
    let mut t = p.table(&[
        "TARGET", "ACCOUNT", "REGION", "STATUS", "CERTS", "IMPORTED", "AMAZON", "PRIVATE", "IAM",
    ]);
    for l in &r.locations {
        let status = match &l.covered_by {
            Some(by) => cell(format!("covered (same account as target {by})")),
            None => cell(l.status),
        };
        let status = match l.status {
            "failed" => status.fg(Color::Red),
            "skipped" => status.fg(Color::Yellow),
            _ => status,
        };
        let mut row = vec![
            cell(&l.target),
            cell(l.account.as_deref().unwrap_or("-")),
            cell(&l.region),
            status,
            cell(l.certificates),
        ];
        row.extend(
            types
                .iter()
                .map(|k| cell(l.by_type.get(*k).copied().unwrap_or(0))),
        );
        t.add_row(row);
    }
    t.keep(&[1, 2, 3, 4, 5, 6, 7, 8]);
    t.print()?;

    Ok(())
}

/// What needs attention, one section per kind, with what to do.
fn print_findings(p: &Printer, f: &agent::discover::Findings) -> Result<()> {
    let sections: [(&str, &Vec<agent::discover::Finding>, &str); 6] = [
        (
            "Expired",
            &f.expired,
            "replace or delete them; anything still using them is failing TLS",
        ),
        ("Expiring within 30 days", &f.expiring, "renew them now"),
        (
            "Failed validation or revoked",
            &f.failed,
            "request them again or delete them",
        ),
        (
            "Pending validation",
            &f.pending_validation,
            "create the DNS records shown by `certvault --output json discover`",
        ),
        (
            "Validated by email",
            &f.email_validated,
            "renewal needs someone to approve an email, and since 2024 only admin@, administrator@, hostmaster@, postmaster@ and webmaster@ receive it: move to DNS validation so renewals need no human",
        ),
        (
            "In use by nothing",
            &f.unused,
            "delete them if nothing will use them",
        ),
    ];
    for (title, list, advice) in sections {
        if list.is_empty() {
            continue;
        }
        p.line(&format!("\n{title} ({}): {advice}.", list.len()))?;
        let mut t = p.table(&[
            "DOMAIN", "TARGET", "REGION", "TYPE", "STATUS", "EXPIRES", "ARN",
        ]);
        for x in list {
            let expires = match x.not_after {
                Some(na) => expiry_cell(format!("{} ({})", date(na), relative(na)), na)
                    .or_short(format!("{} ({})", day(na), relative(na))),
                None => cell("-"),
            };
            t.add_row(vec![
                cell(&x.domain),
                cell(&x.target),
                cell(&x.region),
                cell(&x.kind),
                cell(&x.status),
                expires,
                cell(&x.arn),
            ]);
        }
        t.keep(&[2, 3, 4, 5]).shorten_middle(6);
        t.print()?;
    }
    Ok(())
}

/// Every location's errors.
fn print_errors(p: &Printer, r: &agent::discover::DiscoveryReport) -> Result<()> {
    let errors: Vec<_> = r
        .locations
        .iter()
        .flat_map(|l| {
            l.error
                .iter()
                .chain(l.certificate_errors.iter())
                .map(move |e| (l, e))
        })
        .collect();
    if !errors.is_empty() {
        p.line(&format!("\nErrors ({}):", errors.len()))?;
        for (l, e) in errors {
            p.line(&format!("  {}/{}: {e}", l.target, l.region))?;
        }
    }
    Ok(())
}
