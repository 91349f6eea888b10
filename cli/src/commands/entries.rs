//! `certvault list`, `show` and `remove`.

use crate::output::{Confirmation, confirm};
use agent::aws::ValidationMethod;
use anyhow::Result;
use serde::Serialize;
use vault::entries::ListFilter;

use super::Ctx;
use crate::{
    Status,
    args::{ListArgs, RemoveArgs, ShowArgs},
    output::{Printer, cell, date, expiry_cell, expiry_date_cell, note, relative, write_stdout},
};

pub(crate) fn list(ctx: &Ctx, args: ListArgs) -> Result<Status> {
    let tags = super::tags(&args.tags)?;
    let v = ctx.open()?;
    let entries = v.list(&ListFilter {
        expiring_within: args.expiring_within,
        source: args.source,
        domain: args.domain,
        tags,
    })?;
    let p = &ctx.printer;
    if p.json {
        p.json(&entries)?;
    } else if entries.is_empty() {
        note("no entries match");
    } else {
        let mut t = p.table(&["ID", "NAME", "SOURCE", "EXPIRES", "", "KEY", "VER", "NAMES"]);
        for e in &entries {
            let names = if e.sans.is_empty() {
                e.common_name.clone().unwrap_or_default()
            } else if e.sans.len() > 3 {
                format!("{}, … (+{})", e.sans[..3].join(", "), e.sans.len() - 3)
            } else {
                e.sans.join(", ")
            };
            t.add_row(vec![
                cell(&e.id),
                cell(&e.name),
                cell(e.source),
                expiry_date_cell(e.not_after),
                expiry_cell(relative(e.not_after), e.not_after),
                cell(if e.has_private_key { "yes" } else { "-" }),
                cell(format!("{}/{}", e.version, e.version_count)),
                cell(names),
            ]);
        }
        t.keep(&[3, 4, 5, 6]).id_column(0).yield_first(7);
        t.print()?;
    }
    // `--expiring-within` is a question: exit 3 says "yes, some are".
    Ok(if args.expiring_within.is_some() && !entries.is_empty() {
        Status::Attention
    } else {
        Status::Ok
    })
}

pub(crate) fn show(ctx: &Ctx, args: ShowArgs) -> Result<Status> {
    let mut v = ctx.open()?;
    if args.pem {
        let out = v.export(
            &args.entry,
            vault::entries::ExportOptions {
                format: vault::formats::ExportFormat::Pem,
                with_key: false,
                unencrypted_key: false,
                passphrase: None,
                version: None,
            },
        )?;
        write_stdout(out.bytes.expose_secret())?;
        return Ok(Status::Ok);
    }
    let d = v.show(&args.entry)?;
    let p = &ctx.printer;
    if p.json {
        p.json(&d)?;
        return Ok(Status::Ok);
    }
    print_head(p, &d.summary)?;
    print_versions(p, &d.versions)?;
    if !d.acm.is_empty() {
        print_acm(p, &d.acm)?;
    }
    Ok(Status::Ok)
}

/// The facts of an entry's current version, one per line.
fn print_head(p: &Printer, s: &vault::entries::EntrySummary) -> Result<()> {
    let mut head = p.table(&[]);
    let tags = s
        .tags
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ");
    for (k, val) in [
        ("id", s.id.to_string()),
        ("name", s.name.clone()),
        ("source", s.source.to_string()),
        ("subject", s.subject.clone()),
        ("names", s.sans.join(", ")),
        ("issuer", s.issuer.clone()),
        ("serial", s.serial.to_string()),
        ("valid from", date(s.not_before)),
    ] {
        head.add_row(vec![cell(k), cell(val)]);
    }
    head.add_row(vec![
        cell("valid until"),
        expiry_cell(
            format!("{} ({})", date(s.not_after), relative(s.not_after)),
            s.not_after,
        ),
    ]);
    for (k, val) in [
        (
            "key",
            format!(
                "{} ({})",
                s.key_algorithm,
                if s.has_private_key {
                    "private key in the vault"
                } else {
                    "no private key"
                }
            ),
        ),
        ("sha-256", s.fingerprint_sha256.clone()),
        ("tags", tags),
    ] {
        head.add_row(vec![cell(k), cell(val)]);
    }
    head.keep(&[0]);
    head.print()?;
    Ok(())
}

fn print_versions(p: &Printer, versions: &[vault::entries::VersionDetail]) -> Result<()> {
    let mut t = p.table(&["VER", "", "SERIAL", "NOT AFTER", "KEY", "CHAIN", "SHA-256"]);
    for ver in versions {
        let chain = if ver.chain.is_empty() {
            "-".to_owned()
        } else {
            ver.chain
                .iter()
                .map(|c| c.subject.as_str())
                .collect::<Vec<_>>()
                .join(" → ")
        };
        t.add_row(vec![
            cell(ver.version),
            cell(if ver.current { "current" } else { "" }),
            cell(&ver.serial),
            expiry_cell(date(ver.not_after), ver.not_after),
            cell(if ver.has_private_key { "yes" } else { "-" }),
            cell(chain),
            cell(&ver.fingerprint_sha256[..16]),
        ]);
    }
    t.keep(&[0, 1, 3, 4, 6]).shorten_middle(2);
    t.print()?;
    Ok(())
}

/// Where the entry's certificate was found in ACM or IAM.
fn print_acm(p: &Printer, records: &[vault::records::AcmRecord]) -> Result<()> {
    let mut t = p.table(&[
        "ACCOUNT",
        "REGION",
        "TYPE",
        "STATUS",
        "IN USE BY",
        "VALIDATION",
        "ARN",
    ]);
    for a in records {
        let status = match a.gone_at {
            Some(_) => "GONE from AWS".to_owned(),
            None => a.summary.status.to_string(),
        };
        t.add_row(vec![
            cell(&a.location.account),
            cell(&a.location.region),
            cell(&a.summary.kind),
            cell(status),
            cell(a.detail.in_use_by.len()),
            cell(
                a.detail
                    .validation_method
                    .as_ref()
                    .map_or("-", ValidationMethod::as_str),
            ),
            cell(&a.summary.arn),
        ]);
    }
    t.keep(&[0, 1, 2, 3, 4, 5]).shorten_middle(6);
    t.print()?;
    Ok(())
}

/// What `remove --output json` prints.
#[derive(Serialize)]
struct Removed<'a> {
    id: &'a str,
    name: &'a str,
    removed: bool,
}

pub(crate) fn remove(ctx: &Ctx, args: RemoveArgs) -> Result<Status> {
    let mut v = ctx.open()?;
    let (id, name) = v.resolve(&args.entry)?;
    confirm(
        args.yes,
        Confirmation {
            without_terminal: format!(
                "removing {name} deletes its certificates and private keys from the vault for good; add --yes to confirm"
            ),
            lines: vec![
                format!(
                    "This deletes {name} ({id}), all its versions and private keys from the vault (ACM is not touched)."
                ),
                "Type the entry name to confirm:".into(),
            ],
            answer: &name,
            refused: "not confirmed; nothing was removed",
        },
    )?;
    ctx.unlock_opened(&mut v)?;
    let (id, name) = v.remove(&id)?;
    if !v.wal_emptied() {
        note(
            "note: another process is reading the vault, so its write-ahead log still holds the removed rows; they are gone from it at the next checkpoint, when that process lets go",
        );
    }
    if ctx.printer.json {
        ctx.printer.json(&Removed {
            id: &id,
            name: &name,
            removed: true,
        })?;
    } else {
        ctx.printer
            .line(&format!("removed {name} ({id}) from the vault"))?;
    }
    Ok(Status::Ok)
}
