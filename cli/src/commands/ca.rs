//! `certvault ca ...` (the vault's own private CA) and `certvault renew`.

use std::io::IsTerminal;

use crate::output::{Confirmation, confirm};
use anyhow::{Context, Result, bail};
use serde::Serialize;
use vault::ca::{CsrRequest, NewCa, NewLeaf};

use super::{Ctx, export::write_public_file};
use crate::{
    Status, UsageError,
    args::{
        CaAction, CaArgs, CaBundleArgs, CaCreateArgs, CaCrlArgs, CaIssueArgs, CaRevokeArgs,
        CaScheduleArgs, CaSignArgs, CrlFormat, RenewArgs,
    },
    output::{cell, date, expiry_cell, expiry_date_cell, note, relative, write_stdout},
};

pub(crate) fn ca(ctx: &Ctx, args: CaArgs) -> Result<Status> {
    match args.action {
        CaAction::Create(a) => create(ctx, a),
        CaAction::List => list(ctx),
        CaAction::Issue(a) if a.from_file.is_some() => issue_from_file(ctx, a),
        CaAction::Issue(a) => issue(ctx, a),
        CaAction::Sign(a) => sign(ctx, a),
        CaAction::Revoke(a) => revoke(ctx, a),
        CaAction::Crl(a) => crl(ctx, a),
        CaAction::ExportBundle(a) => bundle(ctx, a),
        CaAction::Disable(a) => {
            let mut v = ctx.unlock_writer("ca disable")?;
            let s = v.ca(&a.ca)?.disable()?;
            state_changed(ctx, &a.ca, s)
        }
        CaAction::Enable(a) => {
            let mut v = ctx.unlock_writer("ca enable")?;
            let s = v.ca(&a.ca)?.enable()?;
            state_changed(ctx, &a.ca, s)
        }
        CaAction::CancelDeletion(a) => {
            let mut v = ctx.unlock_writer("ca cancel-deletion")?;
            let s = v.ca(&a.ca)?.cancel_deletion()?;
            state_changed(ctx, &a.ca, s)
        }
        CaAction::ScheduleDeletion(a) => schedule_deletion(ctx, a),
        CaAction::Purge(a) => {
            let mut v = ctx.unlock_writer("ca purge")?;
            let line = if v.ca(&a.ca)?.purge()? {
                format!("CA {}: its key is destroyed", a.ca)
            } else {
                format!("CA {}: its key was destroyed already", a.ca)
            };
            ctx.printer.line(&line)?;
            Ok(Status::Ok)
        }
    }
}

fn create(ctx: &Ctx, a: CaCreateArgs) -> Result<Status> {
    let mut v = ctx.unlock_writer("ca create")?;
    let ca = v.create_ca(&NewCa {
        name: a.name,
        subject: a.subject,
        key_type: a.key_type.into(),
        validity: a.validity,
        parent: a.parent,
        path_len: a.path_len,
        permit_dns: a.permit_dns,
    })?;
    if ctx.printer.json {
        ctx.printer.json(&ca)?;
    } else {
        ctx.printer.line(&format!(
            "created {} CA {} ({}): {}, {}, valid until {}",
            if ca.parent.is_some() {
                "intermediate"
            } else {
                "root"
            },
            ca.name,
            ca.id,
            ca.subject,
            ca.key_type,
            date(ca.not_after)
        ))?;
        let name = vault::text::shell_word(&ca.name);
        note(&format!(
            "next: `certvault ca issue {name} --dns NAME` issues a certificate; `certvault ca export-bundle {name}` writes the trust bundle for clients"
        ));
    }
    Ok(Status::Ok)
}

fn list(ctx: &Ctx) -> Result<Status> {
    let mut v = ctx.open()?;
    // A CA whose waiting window ended is purged by whoever notices (with the key).
    if v.cas_due_for_purge(time::OffsetDateTime::now_utc())? {
        v = ctx.unlock_writer("ca list")?;
        for name in v.purge_due_cas()? {
            note(&format!(
                "CA {name}: its waiting window ended; its key is now destroyed"
            ));
        }
    }
    let cas = v.cas()?;
    let p = &ctx.printer;
    if p.json {
        p.json(&cas)?;
    } else if cas.is_empty() {
        note("no CAs: `certvault ca create NAME --subject \"CN=...\"` creates one");
    } else {
        let mut t = p.table(&[
            "NAME", "STATE", "KEY", "SUBJECT", "EXPIRES", "", "ISSUED", "REVOKED", "PARENT",
        ]);
        for c in &cas {
            let state = match c.deletion_date {
                Some(d) => format!("{} (deleted {})", c.state, date(d)),
                None => c.state.to_string(),
            };
            t.add_row(vec![
                cell(&c.name),
                cell(state),
                cell(&c.key_type),
                cell(&c.subject),
                expiry_date_cell(c.not_after),
                expiry_cell(relative(c.not_after), c.not_after),
                cell(c.issued),
                cell(c.revoked),
                cell(c.parent.as_deref().unwrap_or("-")),
            ]);
        }
        t.keep(&[1, 2, 4, 5, 6, 7]);
        t.print()?;
    }
    Ok(Status::Ok)
}

/// The requests of `ca issue --from-file`: one line of names (DNS or IP) per certificate.
fn requests_from_file(a: &CaIssueArgs, file: &std::path::Path) -> Result<Vec<NewLeaf>> {
    let text = read_bounded(file, 4 << 20)?;
    let mut reqs = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if reqs.len() == 10_000 {
            bail!(
                "{}: more than 10,000 certificates in one file",
                file.display()
            );
        }
        let mut req = NewLeaf {
            validity: Some(a.validity),
            key_type: Some(a.key_type.into()),
            auto_renew_before: a.auto_renew_before,
            ..NewLeaf::default()
        };
        for word in line.split(|c: char| c.is_whitespace() || c == ',') {
            if word.is_empty() {
                continue;
            }
            match word.parse::<std::net::IpAddr>() {
                Ok(ip) => req.ips.push(ip),
                Err(_) => req.dns.push(word.to_owned()),
            }
        }
        if req.dns.is_empty() && req.ips.is_empty() {
            bail!("{}:{}: no names on this line", file.display(), n + 1);
        }
        reqs.push(req);
    }
    if reqs.is_empty() {
        bail!(
            "{}: no certificates to issue (one line of names per certificate)",
            file.display()
        );
    }
    Ok(reqs)
}

fn issue_from_file(ctx: &Ctx, a: CaIssueArgs) -> Result<Status> {
    let file = a.from_file.clone().unwrap_or_default();
    let reqs = requests_from_file(&a, &file)?;
    let mut v = ctx.unlock_writer("ca issue")?;
    let issued = v.ca(&a.ca)?.issue_many(&reqs)?;
    if ctx.printer.json {
        ctx.printer.json(&issued)?;
    } else {
        ctx.printer.line(&format!(
            "issued {} by CA {}, each a new entry with its key",
            vault::text::count(issued.len(), "certificate", "certificates"),
            issued.first().map(|c| c.ca.as_str()).unwrap_or(&a.ca)
        ))?;
    }
    Ok(Status::Ok)
}

fn issue(ctx: &Ctx, a: CaIssueArgs) -> Result<Status> {
    let mut v = ctx.unlock_writer("ca issue")?;
    let issued = v.ca(&a.ca)?.issue(&NewLeaf {
        dns: a.dns,
        ips: a.ip,
        validity: Some(a.validity),
        key_type: Some(a.key_type.into()),
        name: a.name,
        auto_renew_before: a.auto_renew_before,
    })?;
    print_issued(ctx, &issued, "issued")
}

fn sign(ctx: &Ctx, a: CaSignArgs) -> Result<Status> {
    let csr = std::fs::read(&a.csr).with_context(|| format!("cannot read {}", a.csr.display()))?;
    let mut v = ctx.unlock_writer("ca sign")?;
    let issued = v.ca(&a.ca)?.sign(&CsrRequest {
        source_name: a.csr.display().to_string(),
        csr,
        name: a.name,
        dns: a.dns,
        validity: Some(a.validity),
    })?;
    print_issued(ctx, &issued, "signed")
}

fn revoke(ctx: &Ctx, a: CaRevokeArgs) -> Result<Status> {
    let mut v = ctx.unlock_writer("ca revoke")?;
    let r = v.revoke(&a.entry, a.reason.into())?;
    if ctx.printer.json {
        ctx.printer.json(&r)?;
    } else {
        ctx.printer.line(&format!(
            "revoked {} (serial {}) by CA {}: {}, at {}",
            r.name,
            r.serial,
            r.ca,
            r.reason,
            date(r.revoked_at)
        ))?;
        note(&format!(
            "its deployments are flagged revoked and never pushed again; `certvault ca crl {}` writes the CRL that lists it",
            vault::text::shell_word(&r.ca)
        ));
    }
    Ok(Status::Ok)
}

/// Asks for the CA's name to be typed (unless `--yes`); refuses without a terminal.
fn confirm_deletion(a: &CaScheduleArgs) -> Result<()> {
    confirm(
        a.yes,
        Confirmation {
            without_terminal: format!(
                "scheduling the deletion of CA {} destroys its key after {} days; add --yes to confirm",
                a.ca, a.pending_window_days
            ),
            lines: vec![
                format!(
                    "CA {}: its key will be destroyed in {} days, after which it can never sign again.",
                    a.ca, a.pending_window_days
                ),
                "Type the CA's name to confirm:".into(),
            ],
            answer: &a.ca,
            refused: "not confirmed; nothing was changed",
        },
    )
}

/// What `ca schedule-deletion --output json` prints.
#[derive(Serialize)]
struct DeletionScheduled<'a> {
    ca: &'a str,
    deletion_date: String,
    in_date: &'a [String],
    state: vault::ca::CaState,
}

fn schedule_deletion(ctx: &Ctx, a: CaScheduleArgs) -> Result<Status> {
    let live = ctx.open()?.ca(&a.ca)?.live_certificates()?;
    confirm_deletion(&a)?;
    let mut v = ctx.unlock_writer("ca schedule-deletion")?;
    let (at, _) = v.ca(&a.ca)?.schedule_deletion(a.pending_window_days)?;
    if !live.is_empty() {
        note(&format!(
            "warning: CA {} issued {} still in date: {}",
            a.ca,
            vault::text::count(live.len(), "certificate", "certificates"),
            live.join(", ")
        ));
    }
    if ctx.printer.json {
        ctx.printer.json(&DeletionScheduled {
            ca: &a.ca,
            deletion_date: vault::text::timestamp(at),
            in_date: &live,
            state: vault::ca::CaState::PendingDeletion,
        })?;
    } else {
        ctx.printer.line(&format!(
            "CA {} is pending deletion: its key is destroyed on {} (`certvault ca cancel-deletion {}` keeps it, disabled)",
            a.ca,
            date(at),
            vault::text::shell_word(&a.ca)
        ))?;
    }
    Ok(Status::Ok)
}

/// A text file of at most `limit` bytes.
fn read_bounded(path: &std::path::Path, limit: u64) -> Result<String> {
    use std::io::Read;
    let f = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut text = String::new();
    f.take(limit + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("cannot read {} (is it text?)", path.display()))?;
    if text.len() as u64 > limit {
        bail!("{}: larger than {} MiB", path.display(), limit >> 20);
    }
    Ok(text)
}

/// What a change of a CA's state prints with `--output json`.
#[derive(Serialize)]
struct StateChanged<'a> {
    ca: &'a str,
    state: vault::ca::CaState,
}

fn state_changed(ctx: &Ctx, ca: &str, state: vault::ca::CaState) -> Result<Status> {
    if ctx.printer.json {
        ctx.printer.json(&StateChanged { ca, state })?;
    } else {
        ctx.printer.line(&format!("CA {ca} is {state}"))?;
    }
    Ok(Status::Ok)
}

fn print_issued(ctx: &Ctx, c: &vault::ca::IssuedCert, how: &str) -> Result<Status> {
    if ctx.printer.json {
        ctx.printer.json(c)?;
    } else {
        ctx.printer.line(&format!(
            "{how} {} ({}, version {}) by CA {}: serial {}, names {}, valid until {}",
            c.name,
            c.id,
            c.version,
            c.ca,
            c.serial,
            c.sans.join(", "),
            date(c.not_after)
        ))?;
    }
    Ok(Status::Ok)
}

fn pem_block(tag: &str, der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new(tag, der.to_vec()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

/// What `ca crl --out FILE --output json` prints.
#[derive(Serialize)]
struct CrlWritten<'a> {
    ca: &'a str,
    entries: usize,
    next_update: String,
    number: u64,
    out: &'a std::path::Path,
    this_update: String,
}

fn crl(ctx: &Ctx, a: CaCrlArgs) -> Result<Status> {
    if a.format == CrlFormat::Der && a.out.is_none() && std::io::stdout().is_terminal() {
        return Err(UsageError("a DER CRL is binary: add --out FILE (or pipe it)".into()).into());
    }
    if let Some(out) = &a.out
        && out.exists()
        && !a.force
    {
        bail!(
            "{} exists; nothing was written (add --force to replace it)",
            out.display()
        );
    }
    let mut v = ctx.unlock_writer("ca crl")?;
    let crl = v.ca(&a.ca)?.crl(a.next_update)?;
    let bytes = match a.format {
        CrlFormat::Pem => pem_block("X509 CRL", &crl.der).into_bytes(),
        CrlFormat::Der => crl.der.clone(),
    };
    match &a.out {
        Some(out) => {
            write_public_file(out, &bytes, a.force)?;
            let summary = format!(
                "wrote CRL number {} of CA {} to {}: {}, next update {}",
                crl.number,
                a.ca,
                out.display(),
                vault::text::count(crl.entries, "revoked certificate", "revoked certificates"),
                date(crl.next_update)
            );
            if ctx.printer.json {
                ctx.printer.json(&CrlWritten {
                    ca: &a.ca,
                    entries: crl.entries,
                    next_update: vault::text::timestamp(crl.next_update),
                    number: crl.number,
                    out,
                    this_update: vault::text::timestamp(crl.this_update),
                })?;
            } else {
                ctx.printer.line(&summary)?;
            }
        }
        None => write_stdout(&bytes)?,
    }
    Ok(Status::Ok)
}

fn bundle(ctx: &Ctx, a: CaBundleArgs) -> Result<Status> {
    // Unlocked: the rows the bundle comes from are checked before clients are told to
    // trust it.
    let mut v = ctx.unlock()?;
    let (name, ders) = v.ca(&a.ca)?.bundle()?;
    let text: String = ders.iter().map(|d| pem_block("CERTIFICATE", d)).collect();
    match &a.out {
        Some(out) => {
            if out.exists() && !a.force {
                bail!(
                    "{} exists; nothing was written (add --force to replace it)",
                    out.display()
                );
            }
            write_public_file(out, text.as_bytes(), a.force)?;
            ctx.printer.line(&format!(
                "wrote the trust bundle of CA {name} to {}: {}",
                out.display(),
                vault::text::count(ders.len(), "certificate", "certificates")
            ))?;
        }
        None => write_stdout(text.as_bytes())?,
    }
    Ok(Status::Ok)
}

pub(crate) fn renew(ctx: &Ctx, args: RenewArgs) -> Result<Status> {
    let mut v = ctx.unlock_writer("renew")?;
    let issued = v.renew(&args.entry, args.reuse_key)?;
    print_issued(ctx, &issued, "renewed")?;
    if !ctx.printer.json {
        note(&format!(
            "version {} is current; deployments with auto-redeploy get it on the next pass (same ARN)",
            issued.version
        ));
    }
    Ok(Status::Ok)
}
