//! `certvault acm ...`: acting on certificates in ACM itself.

use std::io::IsTerminal;

use anyhow::{Result, bail};
use serde_json::json;

use super::Ctx;
use crate::{
    Status, UsageError,
    cli::{AcmAction, AcmArgs, AcmDeleteArgs},
    output::note,
};

pub(crate) fn acm(ctx: &Ctx, args: AcmArgs) -> Result<Status> {
    match args.action {
        AcmAction::Delete(a) => delete(ctx, a),
    }
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
    let chosen = choose(&v, &args)?;
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
fn choose(v: &vault::Vault, args: &AcmDeleteArgs) -> Result<Chosen> {
    if args.certificate.starts_with("arn:") {
        let arn = args.certificate.clone();
        let Some((account, region)) = agent::arn_location(&arn) else {
            return Err(UsageError(format!(
                "{arn} is not an ACM certificate ARN (arn:aws:acm:REGION:ACCOUNT:certificate/ID)"
            ))
            .into());
        };
        let (account, region) = (account.to_owned(), region.to_owned());
        if let Some(r) = &args.region
            && *r != region
        {
            return Err(UsageError(format!("--region {r}, but {arn} is in {region}")).into());
        }
        let record = v.acm_record(&arn)?;
        let target = match (&record, &args.target) {
            (Some(rec), Some(t)) if *t != rec.location.target => {
                return Err(UsageError(format!(
                    "--target {t}, but {arn} was found under target {}",
                    rec.location.target
                ))
                .into());
            }
            (Some(rec), _) => rec.location.target.clone(),
            (None, Some(t)) => t.clone(),
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
    let (id, name) = v.resolve(&args.certificate)?;
    let candidates: Vec<vault::AcmRecord> = v
        .acm_records_of(&id)?
        .into_iter()
        .filter(|r| r.gone_at.is_none())
        .filter(|r| args.region.as_ref().is_none_or(|x| *x == r.location.region))
        .filter(|r| args.target.as_ref().is_none_or(|x| *x == r.location.target))
        .collect();
    let one = match candidates.as_slice() {
        [] => bail!(
            "the vault knows of no certificate of {name} in ACM{}: run `certvault discover`, or give the ARN",
            match (&args.region, &args.target) {
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
