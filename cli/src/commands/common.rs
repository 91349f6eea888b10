//! What several commands share: choosing the one target a command acts through, the typed
//! confirmation of what cannot be undone, the ACM workflows' calls that more than one
//! command makes (a request, its records in Route 53), and the words of the ACM
//! workflows' refusals, hints naming `certvault` commands included.

use anyhow::{Result, anyhow};
use serde::Serialize;

use super::Ctx;
use crate::{UsageError, output::note};

/// The target a command acts through in `region`: the one named, else the only one
/// configured (or `default` without a configuration); several need --target.
pub(crate) fn one_target(
    config: &agent::Config,
    name: Option<&str>,
    region: &str,
) -> Result<agent::Target> {
    let regions = [region.to_owned()];
    let mut all = config.select(name, Some(&regions))?;
    if all.len() != 1 {
        let names: Vec<&str> = all.iter().map(|t| t.name.as_str()).collect();
        return Err(UsageError(format!(
            "several targets are configured ({}): choose one with --target",
            names.join(", ")
        ))
        .into());
    }
    Ok(all.remove(0))
}

/// Prints `value` as the one JSON document, its object keys in order (as every document
/// of these commands has been).
pub(crate) fn print_json<T: Serialize>(ctx: &Ctx, value: &T) -> Result<()> {
    ctx.printer.json(&serde_json::to_value(value)?)
}

/// Sends a request and records it (audited `acm-request`, with `audit`), waiting up to
/// `wait` for its DNS records: `agent::acm::request::submit`, with the note when ACM's
/// answer could not be read yet.
#[allow(clippy::too_many_arguments)]
pub(crate) fn submit(
    ctx: &Ctx,
    v: &mut vault::Vault,
    config: &agent::Config,
    target: &agent::Target,
    region: &str,
    request: &agent::aws::CertRequest,
    audit: &str,
    wait: std::time::Duration,
) -> Result<agent::acm::request::Submitted> {
    let submission = agent::acm::request::Submission {
        target,
        region,
        request,
        audit,
        wait,
    };
    let submitted = ctx
        .runtime()?
        .block_on(agent::acm::request::submit(
            &ctx.connector(),
            v,
            config,
            submission,
        ))
        .map_err(explain)?;
    if let Some(e) = &submitted.unread {
        note(&format!(
            "requested {}, but ACM's answer about it could not be read yet ({e}): `certvault acm requests` asks again",
            submitted.arn
        ));
    }
    Ok(submitted)
}

/// Creates (UPSERT) a request's DNS validation records in Route 53 (audited per zone).
pub(crate) fn place_records(
    ctx: &Ctx,
    v: &mut vault::Vault,
    config: &agent::Config,
    target: &agent::Target,
    account: &str,
    arn: &str,
    records: &[vault::records::DnsRecord],
) -> Result<Vec<agent::route53::PlacedRecord>> {
    ctx.runtime()?
        .block_on(agent::acm::request::place_records(
            &ctx.connector(),
            v,
            config,
            target,
            account,
            arn,
            records,
        ))
        .map_err(explain)
}

/// The ARN the user means (`agent::acm::choose`), in the CLI's words when it cannot tell.
pub(crate) fn choose(
    v: &vault::Vault,
    certificate: &str,
    region: Option<&str>,
    target: Option<&str>,
) -> Result<agent::acm::Chosen> {
    agent::acm::choose(v, certificate, region, target).map_err(explain)
}

/// An ACM workflow's error as the CLI says it: usage errors for what was given wrongly,
/// hints naming the `certvault` command to run next, and the vault's and configuration's
/// errors as themselves (so their exit codes hold).
pub(crate) fn explain(e: agent::acm::Error) -> anyhow::Error {
    use agent::acm::Error as E;
    let usage = |m: String| anyhow::Error::from(UsageError(m));
    match e {
        E::Vault(e) => (*e).into(),
        E::Agent(e) => (*e).into(),
        E::RegionMismatch { given, arn, region } => {
            usage(format!("--region {given}, but {arn} is in {region}"))
        }
        E::TargetMismatch {
            given,
            arn,
            recorded,
        } => usage(format!(
            "--target {given}, but {arn} was found under target {recorded}"
        )),
        E::NotAnAcmArn { .. } => usage(e.to_string()),
        E::NotInAcm { name, narrowed } => anyhow!(
            "the vault knows of no certificate of {name} in ACM{}: run `certvault discover`, or give the ARN",
            if narrowed { " there" } else { "" }
        ),
        E::Ambiguous { name, candidates } => {
            let list: Vec<String> = candidates
                .iter()
                .map(|(arn, region, target)| format!("  {arn} ({region}, target {target})"))
                .collect();
            usage(format!(
                "{name} is in ACM {} times:\n{}\nchoose one with --region (and --target), or give the ARN",
                candidates.len(),
                list.join("\n")
            ))
        }
        E::NotDiscovered { arn, region } => anyhow!(
            "the vault has no entry for {arn}: run `certvault discover --regions {region}` first, so that its certificate is in the vault; nothing was exported"
        ),
        E::Deployed {
            arn,
            name,
            target,
            region,
        } => anyhow!(
            "{arn} is where {name} is deployed ({target}/{region}): deleted here, the agent would import it again. `certvault undeploy {} --target {} --regions {region} --delete-from-acm` deletes it and forgets the deployment; nothing was deleted",
            vault::text::shell_word(&name),
            vault::text::shell_word(&target),
        ),
        // The rest say it all, their causes (and a hint) after them.
        other => anyhow!(crate::output::error_chain(other)),
    }
}
