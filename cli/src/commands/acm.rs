//! `certvault acm ...`: acting on certificates in ACM itself.

use std::io::IsTerminal;

use anyhow::{Result, bail};
use serde_json::json;

use super::Ctx;
use crate::{
    Status, UsageError,
    cli::{AcmAction, AcmArgs, AcmDeleteArgs, AcmExportKeyArgs},
    output::note,
};

pub(crate) fn acm(ctx: &Ctx, args: AcmArgs) -> Result<Status> {
    match args.action {
        AcmAction::Delete(a) => delete(ctx, a),
        AcmAction::ExportKey(a) => export_key(ctx, a),
    }
}

fn export_key(ctx: &Ctx, args: AcmExportKeyArgs) -> Result<Status> {
    let config = ctx.config()?;
    let mut v = ctx.unlock_writer("acm export-key")?;
    let chosen = choose(
        &v,
        &args.certificate,
        args.region.as_deref(),
        args.target.as_deref(),
    )?;
    let what = match &chosen.seen {
        Some((domain, kind)) => format!("{} ({domain}, {kind})", chosen.arn),
        None => chosen.arn.clone(),
    };
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            return Err(UsageError(format!(
                "exporting the key of {what} is charged by AWS (ExportCertificate); add --yes to confirm"
            ))
            .into());
        }
        note(&format!(
            "This exports the private key of {what} from ACM ({}, account {}); AWS charges for each export. The key is sealed in the vault at once.",
            chosen.region, chosen.account
        ));
        note("Type 'export' to confirm:");
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if answer.trim() != "export" {
            bail!("not confirmed; nothing was exported");
        }
    }
    let target = config
        .select(
            Some(&chosen.target),
            Some(std::slice::from_ref(&chosen.region)),
        )?
        .remove(0);
    // Made in memory for this one export, never shown, wiped on drop.
    let passphrase = vault::Passphrase::random(64)?;
    let req = agent::ExportKeyRequest {
        target: &target,
        arn: &chosen.arn,
        account: chosen.recorded.then_some(chosen.account.as_str()),
        passphrase: &passphrase,
    };
    let (exported, _) =
        match ctx
            .runtime()?
            .block_on(agent::acm_export_key(&ctx.connector(), &config, req))
        {
            Ok(x) => x,
            Err(e) => bail!("cannot export the key of {}: {e}", chosen.arn),
        };
    let kind = chosen
        .seen
        .as_ref()
        .map_or("PRIVATE", |(_, k)| k.as_str())
        .to_owned();
    let name = match (&chosen.entry, &chosen.seen) {
        (Some((_, n)), _) => n.clone(),
        (None, Some((domain, _))) => domain.clone(),
        (None, None) => chosen
            .arn
            .rsplit('/')
            .next()
            .unwrap_or("exported")
            .to_owned(),
    };
    let outcome = v.record_exported_key(
        &chosen.arn,
        &kind,
        &name,
        &exported.pem.certificate,
        exported.pem.chain.as_deref(),
        exported.encrypted_key.expose_secret(),
        &passphrase,
    )?;
    let (id, ename, how) = match &outcome {
        vault::ImportOutcome::Created { id, name } => (id, name, "a new entry, with its key"),
        vault::ImportOutcome::NewVersion { id, name, .. } => {
            (id, name, "a new version, with its key")
        }
        vault::ImportOutcome::KeyAdded { id, name, .. } => (id, name, "its key added"),
        vault::ImportOutcome::KeyReplaced { id, name, .. } => {
            (id, name, "its key replaced (the one held did not work)")
        }
        vault::ImportOutcome::ChainUpdated { id, name, .. }
        | vault::ImportOutcome::AlreadyPresent { id, name, .. } => {
            (id, name, "already with its key")
        }
    };
    if ctx.printer.json {
        ctx.printer.json(&json!({
            "arn": chosen.arn,
            "entry": { "id": id, "name": ename },
            "outcome": how,
        }))?;
    } else {
        ctx.printer
            .line(&format!("{ename}: {how} (exported from {})", chosen.arn))?;
    }
    Ok(Status::Ok)
}

/// What `acm delete` acts on: one ARN, where it lives, and what the vault knows of it.
struct Chosen {
    arn: String,
    region: String,
    account: String,
    /// Whether the vault recorded the account (discovery), rather than read it off the ARN.
    recorded: bool,
    target: String,
    /// The entry it feeds, when the vault has one.
    entry: Option<(String, String)>,
    /// What discovery last saw there (domain, kind), for the confirmation.
    seen: Option<(String, String)>,
}

fn delete(ctx: &Ctx, args: AcmDeleteArgs) -> Result<Status> {
    let config = ctx.config()?;
    let mut v = ctx.unlock_writer("acm delete")?;
    let chosen = choose(
        &v,
        &args.certificate,
        args.region.as_deref(),
        args.target.as_deref(),
    )?;
    let Chosen {
        arn,
        region,
        account,
        recorded,
        target,
        entry,
        seen,
    } = chosen;
    let entry_name = entry.as_ref().map(|(_, n)| n.clone());

    // A deployment's ARN is the agent's to keep: deleting it here would only make the agent
    // import it again. `undeploy --delete-from-acm` forgets the deployment and deletes it.
    // The deployment rows are checked first: one changed outside certvault could hide it.
    if let Some(bad) = v.deployment_problems()?.values().next().cloned() {
        v.record_integrity_failure(&bad, "deleting from ACM")?;
        bail!(
            "cannot tell whether {arn} is a deployment's, so nothing was deleted: {}",
            vault::Error::RowTampered {
                table: bad.table,
                row: bad.row
            }
        );
    }
    if let Some(d) = v
        .deployments()?
        .into_iter()
        .find(|d| d.arn.as_deref() == Some(arn.as_str()))
    {
        bail!(
            "{arn} is where {} is deployed ({}/{}): deleted here, the agent would import it again. `certvault undeploy {} --target {} --regions {} --delete-from-acm` deletes it and forgets the deployment; nothing was deleted",
            d.name,
            d.target,
            d.region,
            vault::text::shell_word(&d.name),
            vault::text::shell_word(&d.target),
            d.region
        );
    }

    let what = match &seen {
        Some((domain, kind)) => format!("{arn} ({domain}, {kind})"),
        None => arn.clone(),
    };
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            return Err(UsageError(format!(
                "deleting {what} from ACM ({region}, account {account}) cannot be undone; add --yes to confirm"
            ))
            .into());
        }
        note(&format!(
            "This deletes {what} from ACM in {region}, account {account}. It cannot be undone{}.",
            match &entry_name {
                Some(n) => format!("; the vault keeps the entry {n}"),
                None => String::new(),
            }
        ));
        note("Type 'delete' to confirm:");
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if answer.trim() != "delete" {
            bail!("not confirmed; nothing was deleted");
        }
    }

    let target = config
        .select(Some(&target), Some(std::slice::from_ref(&region)))?
        .remove(0);
    let req = agent::DeleteRequest {
        target: &target,
        region: &region,
        arn: &arn,
        // The ARN's own account is checked in any case; the recorded one too, when known.
        account: recorded.then_some(account.as_str()),
        owner: None,
        wait: std::time::Duration::try_from(args.wait).unwrap_or_default(),
    };
    let runtime = ctx.runtime()?;
    let outcome = runtime.block_on(agent::delete_from_acm(&ctx.connector(), &config, req));
    let already_gone = match outcome {
        Ok(agent::Deleted::Deleted { request_id }) => {
            v.record_acm_deleted(&arn, &region, &account, request_id.as_deref(), false)?;
            false
        }
        Ok(agent::Deleted::AlreadyGone) => {
            v.record_acm_deleted(&arn, &region, &account, None, true)?;
            true
        }
        Err(e) => bail!("cannot delete {arn} from ACM: {e}"),
    };
    if ctx.printer.json {
        ctx.printer.json(&json!({
            "arn": arn,
            "region": region,
            "account": account,
            "deleted": !already_gone,
            "already_gone": already_gone,
            "entry": entry.as_ref().map(|(id, name)| json!({ "id": id, "name": name })),
        }))?;
    } else {
        ctx.printer.line(&format!(
            "{} {arn} from ACM ({region}){}",
            if already_gone {
                "already gone:"
            } else {
                "deleted"
            },
            match &entry_name {
                Some(n) => format!("; the vault keeps {n}"),
                None => String::new(),
            }
        ))?;
    }
    Ok(Status::Ok)
}

/// The ARN the user means: given as such, or the one ACM certificate the vault has
/// recorded for an entry (in `--region`, under `--target`, when there are several).
fn choose(
    v: &vault::Vault,
    certificate: &str,
    region_arg: Option<&str>,
    target_arg: Option<&str>,
) -> Result<Chosen> {
    if certificate.starts_with("arn:") {
        let arn = certificate.to_owned();
        let Some((account, region)) = agent::arn_location(&arn) else {
            return Err(UsageError(format!(
                "{arn} is not an ACM certificate ARN (arn:aws:acm:REGION:ACCOUNT:certificate/ID)"
            ))
            .into());
        };
        let (account, region) = (account.to_owned(), region.to_owned());
        if let Some(r) = region_arg
            && r != region
        {
            return Err(UsageError(format!("--region {r}, but {arn} is in {region}")).into());
        }
        let record = v.acm_record(&arn)?;
        let target = match (&record, target_arg) {
            (Some(rec), Some(t)) if t != rec.location.target => {
                return Err(UsageError(format!(
                    "--target {t}, but {arn} was found under target {}",
                    rec.location.target
                ))
                .into());
            }
            (Some(rec), _) => rec.location.target.clone(),
            (None, Some(t)) => t.to_owned(),
            (None, None) => "default".to_owned(),
        };
        let entry = match record.as_ref().and_then(|r| r.entry_id.clone()) {
            Some(id) => Some(v.resolve(&id)?),
            None => None,
        };
        let recorded = record.as_ref().map(|r| r.location.account.clone());
        let seen = record.map(|r| (r.summary.domain, r.summary.kind));
        return Ok(Chosen {
            arn,
            region,
            account: recorded.clone().unwrap_or(account),
            recorded: recorded.is_some(),
            target,
            entry,
            seen,
        });
    }
    let (id, name) = v.resolve(certificate)?;
    let candidates: Vec<vault::AcmRecord> = v
        .acm_records_of(&id)?
        .into_iter()
        .filter(|r| r.gone_at.is_none())
        .filter(|r| region_arg.is_none_or(|x| x == r.location.region))
        .filter(|r| target_arg.is_none_or(|x| x == r.location.target))
        .collect();
    let one = match candidates.as_slice() {
        [] => bail!(
            "the vault knows of no certificate of {name} in ACM{}: run `certvault discover`, or give the ARN",
            match (region_arg, target_arg) {
                (None, None) => String::new(),
                _ => " there".to_owned(),
            }
        ),
        [one] => one.summary.arn.clone(),
        many => {
            let list: Vec<String> = many
                .iter()
                .map(|r| {
                    format!(
                        "  {} ({}, target {})",
                        r.summary.arn, r.location.region, r.location.target
                    )
                })
                .collect();
            return Err(UsageError(format!(
                "{name} is in ACM {} times:\n{}\nchoose one with --region (and --target), or give the ARN",
                many.len(),
                list.join("\n")
            ))
            .into());
        }
    };
    // Read again, its MAC checked: the target and account come from this row.
    let Some(rec) = v.acm_record(&one)? else {
        bail!("{one}: the vault's record of it disappeared; nothing was deleted");
    };
    Ok(Chosen {
        arn: rec.summary.arn.clone(),
        region: rec.location.region.clone(),
        account: rec.location.account.clone(),
        recorded: true,
        target: rec.location.target.clone(),
        entry: Some((id, name)),
        seen: Some((rec.summary.domain, rec.summary.kind)),
    })
}
