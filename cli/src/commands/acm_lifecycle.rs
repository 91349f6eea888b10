//! `certvault acm renew` and `acm revoke`: private certificates renewed through ACM or
//! issued again by AWS Private CA, and revoked by the Private CA that issued them. Anything
//! else is refused with the reason (and, for a public certificate, whether ACM will renew
//! it by itself).

use std::io::IsTerminal;

use anyhow::{Result, bail};
use serde_json::json;

use super::{
    Ctx,
    acm::{Chosen, choose},
};
use crate::{
    Status, UsageError,
    args::{AcmRenewArgs, AcmRevokeArgs, ReasonArg},
    output::{date, note},
};

/// The entry a command acts on, and the ACM certificate the user named, if an ARN.
fn entry_of(v: &vault::Vault, certificate: &str) -> Result<(String, String)> {
    if certificate.starts_with("arn:") {
        // A deployment's ARN: the entry deployed there.
        if let Some(d) = v
            .deployments()?
            .into_iter()
            .find(|d| d.arn.as_deref() == Some(certificate))
        {
            return Ok((d.entry_id, d.name));
        }
        let chosen = choose(v, certificate, None, None)?;
        match chosen.entry {
            Some(e) => Ok(e),
            None => bail!(
                "the vault has no entry for {certificate}: run `certvault discover --regions {}` first; nothing was asked of AWS",
                chosen.region
            ),
        }
    } else {
        Ok(v.resolve(certificate)?)
    }
}

/// Why an entry that is not a private certificate from AWS cannot be renewed or revoked
/// here, and what does it; `None` for one ACM holds (asked of ACM next).
fn not_ours(source: vault::Source, name: &str, doing: &str) -> Option<String> {
    use vault::Source as S;
    match source {
        S::Issued => Some(format!(
            "{name} was issued by the vault's own CA: {}",
            if doing == "renew" {
                format!("renew it with `certvault renew {name}`")
            } else {
                format!("revoke it with `certvault ca revoke {name}`")
            }
        )),
        S::Imported => Some(format!(
            "{name} was imported from a file: {} with the CA that issued it{}",
            doing,
            if doing == "renew" {
                ", then `certvault import` the new certificate (its deployments follow)"
            } else {
                ""
            }
        )),
        S::Iam => Some(format!(
            "{name} is an IAM server certificate: AWS neither renews nor revokes those; {doing} it with the CA that issued it"
        )),
        S::Pca => Some(format!(
            "{name} was issued by `pca issue` before the vault recorded its CA and certificate ARN (schema 7): issue a new one with `certvault pca issue`"
        )),
        S::AcmAmazonIssued | S::AcmPrivate | S::AcmImported => None,
        _ => Some(format!("{name} is not a certificate AWS issued")),
    }
}

/// Why the certificate the vault last saw at `arn` is revoked, if it is: by a revocation the
/// vault recorded (its rows checked), or because ACM said so at the last discovery.
fn revoked_at(v: &vault::Vault, entry_id: &str, arn: &str) -> Result<Option<String>> {
    let Some(record) = v.acm_record(arn)? else {
        return Ok(None);
    };
    if record.summary.status == "REVOKED" {
        return Ok(Some(format!(
            "ACM said at the last discovery that the certificate at {arn} is revoked"
        )));
    }
    let Some(fingerprint) = record.fingerprint_sha256.as_deref() else {
        return Ok(None);
    };
    let Some((version_id, serial)) = v.version_of_certificate(entry_id, fingerprint)? else {
        return Ok(None);
    };
    Ok(v.aws_revocation(entry_id, version_id, &serial)?
        .map(|(at, reason)| {
            format!(
                "the certificate at {arn} (serial {serial}) was revoked on {} ({reason})",
                date(at)
            )
        }))
}

/// The target recorded for `chosen`, configured for its region.
fn target_of(config: &agent::Config, chosen: &Chosen) -> Result<agent::Target> {
    Ok(config
        .select(
            Some(&chosen.target),
            Some(std::slice::from_ref(&chosen.region)),
        )?
        .remove(0))
}

/// Whether ACM will renew a public certificate by itself, in words.
fn public_renewal(obs: &vault::AcmObservation) -> String {
    let status = obs.summary.status.as_str();
    if status != "ISSUED" {
        return format!(
            "it is {}: there is nothing to renew",
            status.to_lowercase().replace('_', " ")
        );
    }
    let detail = obs.detail.clone().unwrap_or_default();
    let in_use = obs.summary.renewal_eligibility.as_deref() != Some("INELIGIBLE");
    let use_note = if in_use {
        ""
    } else {
        " (ACM says INELIGIBLE: it renews only certificates an AWS service uses, or exportable ones)"
    };
    match detail.validation_method.as_deref() {
        Some("EMAIL") => format!(
            "ACM renews it by itself, but it is validated by email: at each renewal someone must approve the mail ACM sends to the domain's admin@, administrator@, hostmaster@, postmaster@ and webmaster@ addresses{use_note}; a DNS-validated replacement (`certvault acm request --validation dns --route53`) renews without anyone"
        ),
        _ => {
            let failing: Vec<&str> = detail
                .names
                .iter()
                .filter(|n| n.status.as_deref().is_some_and(|s| s != "SUCCESS"))
                .map(|n| n.domain.as_str())
                .collect();
            if failing.is_empty() {
                format!(
                    "ACM renews it by itself from 60 days before it expires, for as long as its DNS validation records stay in place: they validate now{use_note}"
                )
            } else {
                format!(
                    "validation does not hold for {}: ACM cannot renew it until their DNS validation records are in place again{use_note}",
                    failing.join(", ")
                )
            }
        }
    }
}

pub(crate) fn renew(ctx: &Ctx, args: AcmRenewArgs) -> Result<Status> {
    if args.wait > time::Duration::hours(1) {
        return Err(UsageError("--wait: at most 1h".into()).into());
    }
    let wait = std::time::Duration::try_from(args.wait).unwrap_or_default();
    let config = ctx.config()?;
    let mut v = ctx.unlock_writer("acm renew")?;
    let (id, name) = entry_of(&v, &args.certificate)?;
    if let Some(aws) = v.aws_private(&id)?
        && aws.via == "pca"
    {
        return reissue(ctx, &mut v, &config, &args, &aws, wait);
    }
    if args.reuse_key {
        return Err(UsageError(format!(
            "--reuse-key: only for certificates `pca issue` made (their key is in the vault); {name} is not one"
        ))
        .into());
    }
    let source = v.show(&id)?.summary.source;
    if let Some(why) = not_ours(source, &name, "renew") {
        bail!("{why}; nothing was asked of AWS");
    }
    let chosen = choose(
        &v,
        if args.certificate.starts_with("arn:") {
            &args.certificate
        } else {
            &id
        },
        args.region.as_deref(),
        args.target.as_deref(),
    )?;
    // A revoked certificate is not renewed: refused from what the vault holds, before
    // anything is asked of AWS (ACM may well call it eligible).
    if let Some(why) = revoked_at(&v, &id, &chosen.arn)? {
        bail!(
            "{name}: {why}; it is not renewed (request a new certificate instead); nothing was asked of AWS"
        );
    }
    let target = target_of(&config, &chosen)?;
    let runtime = ctx.runtime()?;
    let connector = ctx.connector();
    let (obs, account) = match runtime.block_on(agent::acm_observe(
        &connector,
        &config,
        &target,
        &chosen.arn,
    )) {
        Ok(x) => x,
        Err(e) => bail!(
            "cannot read {} from ACM: {e}; nothing was renewed",
            chosen.arn
        ),
    };
    match obs.summary.kind.as_str() {
        "PRIVATE" => {}
        "AMAZON_ISSUED" => bail!(
            "{} is a public certificate: only ACM renews it; {}",
            chosen.arn,
            public_renewal(&obs)
        ),
        "IMPORTED" => bail!(
            "{} was imported into ACM: ACM never renews an imported certificate; renew it where it was issued (for a vault entry: `certvault renew`, or import the renewed certificate), and the agent re-imports it into the same ARN",
            chosen.arn
        ),
        other => bail!("{} is of kind {other}: ACM does not renew it", chosen.arn),
    }
    if obs.summary.renewal_eligibility.as_deref() != Some("ELIGIBLE") {
        bail!(
            "ACM says {} is {} for renewal: RenewCertificate renews private certificates that were exported (`certvault acm export-key`); ACM renews the ones AWS services use by itself before they expire. Nothing was asked",
            chosen.arn,
            obs.summary
                .renewal_eligibility
                .as_deref()
                .unwrap_or("not eligible")
        );
    }
    let renewed = match runtime.block_on(agent::acm_renew(
        &connector,
        &config,
        &target,
        &chosen.arn,
        wait,
    )) {
        Ok(r) => r,
        Err(e) => bail!("{}: {e}", chosen.arn),
    };
    v.record_event(
        "acm-renew",
        Some(&id),
        &format!(
            "RenewCertificate for {} ({}, account {account})",
            chosen.arn, chosen.region
        ),
    )?;
    let serial = |o: &vault::AcmObservation| o.detail.as_ref().and_then(|d| d.serial.clone());
    let done = serial(&renewed.after) != serial(&renewed.before);
    let location = vault::Location {
        target: chosen.target.clone(),
        account: renewed.account.clone(),
        region: chosen.region.clone(),
    };
    let outcome = v.record_acm_scan(&location, vec![renewed.after], false)?;
    let new_version = !outcome.new_versions.is_empty();
    if ctx.printer.json {
        ctx.printer.json(&json!({
            "arn": chosen.arn,
            "entry": name,
            "renewed": done,
            "new_version": new_version,
        }))?;
    } else if done {
        ctx.printer.line(&format!(
            "{name}: renewed by ACM in place ({}); the new certificate is {}",
            chosen.arn,
            if new_version {
                "a new version of the entry"
            } else {
                "in the vault"
            }
        ))?;
    } else {
        ctx.printer.line(&format!(
            "{name}: ACM accepted the renewal of {}, but had not issued it within {}s; `certvault discover` records it when it has",
            chosen.arn,
            wait.as_secs()
        ))?;
    }
    Ok(if done { Status::Ok } else { Status::Attention })
}

/// `acm renew` of an entry `pca issue` made: issued again by its CA (the same names and
/// validity), with a new key made in the vault (or the same with --reuse-key), as a new
/// version.
fn reissue(
    ctx: &Ctx,
    v: &mut vault::Vault,
    config: &agent::Config,
    args: &AcmRenewArgs,
    aws: &vault::AwsPrivate,
    wait: std::time::Duration,
) -> Result<Status> {
    if let Some(t) = &args.target
        && *t != aws.target
    {
        return Err(UsageError(format!(
            "--target {t}, but {} was issued through target {}",
            aws.name, aws.target
        ))
        .into());
    }
    if let Some(r) = &args.region
        && *r != aws.region
    {
        return Err(UsageError(format!(
            "--region {r}, but the CA of {} is in {}",
            aws.name, aws.region
        ))
        .into());
    }
    let pending = v.pca_prepare_renewal(&aws.entry_id, args.reuse_key)?;
    let target = config
        .select(
            Some(pending.target()),
            Some(std::slice::from_ref(&aws.region)),
        )?
        .remove(0);
    let req = agent::PcaIssueRequest {
        target: &target,
        ca_arn: pending.ca_arn(),
        csr_pem: &pending.csr_pem,
        validity_days: pending.validity_days(),
        idempotency_token: &pending.idempotency_token,
        timeout: wait,
    };
    let issued = match ctx
        .runtime()?
        .block_on(agent::pca_issue(&ctx.connector(), config, req))
    {
        Ok(i) => i,
        Err(e) => bail!("nothing was stored: {e}"),
    };
    let stored = v.pca_store(
        pending,
        &issued.certificate_arn,
        &issued.pem.certificate,
        issued.pem.chain.as_deref(),
    )?;
    if ctx.printer.json {
        let mut out = serde_json::to_value(&stored)?;
        out["renewed"] = true.into();
        out["reused_key"] = args.reuse_key.into();
        ctx.printer.json(&out)?;
    } else {
        ctx.printer.line(&format!(
            "{}: issued again by {} ({}), serial {}, valid until {}; a new version, with {}",
            stored.name,
            stored.ca_arn,
            stored.certificate_arn,
            stored.serial,
            date(stored.not_after),
            if args.reuse_key {
                "the same key"
            } else {
                "a new key made in the vault"
            }
        ))?;
        note("deployments with auto-redeploy take it at the next sync");
    }
    Ok(Status::Ok)
}

/// The reason as AWS Private CA names it.
fn aws_reason(r: ReasonArg) -> Result<&'static str> {
    Ok(match r {
        ReasonArg::Unspecified => "UNSPECIFIED",
        ReasonArg::KeyCompromise => "KEY_COMPROMISE",
        ReasonArg::CaCompromise => "CERTIFICATE_AUTHORITY_COMPROMISE",
        ReasonArg::AffiliationChanged => "AFFILIATION_CHANGED",
        ReasonArg::Superseded => "SUPERSEDED",
        ReasonArg::CessationOfOperation => "CESSATION_OF_OPERATION",
        ReasonArg::PrivilegeWithdrawn => "PRIVILEGE_WITHDRAWN",
        ReasonArg::CertificateHold => {
            return Err(UsageError(
                "--reason certificate-hold: AWS Private CA does not put certificates on hold (a revocation is final)"
                    .into(),
            )
            .into());
        }
    })
}

fn confirm(what: &str, yes: bool) -> Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(UsageError(format!(
            "revoking {what} cannot be undone; add --yes to confirm"
        ))
        .into());
    }
    note(&format!(
        "This revokes {what} with AWS Private CA. A revocation cannot be undone: clients that check the CA's CRL or OCSP will refuse it."
    ));
    note("Type 'revoke' to confirm:");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    if answer.trim() != "revoke" {
        bail!("not confirmed; nothing was revoked");
    }
    Ok(())
}

pub(crate) fn revoke(ctx: &Ctx, args: AcmRevokeArgs) -> Result<Status> {
    let reason = aws_reason(args.reason)?;
    let config = ctx.config()?;
    let mut v = ctx.unlock_writer("acm revoke")?;
    let (id, name) = entry_of(&v, &args.certificate)?;
    let runtime = ctx.runtime()?;
    let connector = ctx.connector();
    let revocation = if let Some(aws) = v.aws_private(&id)?
        && aws.via == "pca"
    {
        // An ARN names what ACM holds there, which may be an older version than the one the
        // entry's record describes: only the entry itself names what is revoked.
        if args.certificate.starts_with("arn:") {
            return Err(UsageError(format!(
                "{} holds a certificate of {name}, which `pca issue` made: name the entry (`certvault acm revoke {name}`) to revoke its current certificate (serial {})",
                args.certificate, aws.serial
            ))
            .into());
        }
        if let Some(at) = aws.revoked_at {
            note(&format!(
                "{name} (serial {}) was revoked already, on {} ({})",
                aws.serial,
                date(at),
                aws.revoke_reason.as_deref().unwrap_or("no reason recorded")
            ));
            return Ok(Status::Ok);
        }
        if let Some(t) = &args.target
            && *t != aws.target
        {
            return Err(UsageError(format!(
                "--target {t}, but {name} was issued through target {}",
                aws.target
            ))
            .into());
        }
        if let Some(r) = &args.region
            && *r != aws.region
        {
            return Err(UsageError(format!(
                "--region {r}, but the CA of {name} is in {}",
                aws.region
            ))
            .into());
        }
        confirm(
            &format!("{name} (serial {}, issued by {})", aws.serial, aws.ca_arn),
            args.yes,
        )?;
        let target = config
            .select(Some(&aws.target), Some(std::slice::from_ref(&aws.region)))?
            .remove(0);
        let account = match runtime.block_on(agent::pca_revoke(
            &connector,
            &config,
            &target,
            &aws.ca_arn,
            &vault::serial_for_aws(&aws.serial),
            reason,
        )) {
            Ok(a) => a,
            Err(e) => bail!("nothing was revoked: {e}"),
        };
        (
            vault::AwsRevocation {
                entry_id: id.clone(),
                version_id: aws.version_id,
                via: "pca".into(),
                ca_arn: aws.ca_arn.clone(),
                certificate_arn: aws.certificate_arn.clone(),
                target: aws.target.clone(),
                account,
                region: aws.region.clone(),
                reason: reason.into(),
            },
            aws.serial.clone(),
        )
    } else {
        let source = v.show(&id)?.summary.source;
        if let Some(why) = not_ours(source, &name, "revoke") {
            bail!("{why}; nothing was asked of AWS");
        }
        let chosen = choose(
            &v,
            if args.certificate.starts_with("arn:") {
                &args.certificate
            } else {
                &id
            },
            args.region.as_deref(),
            args.target.as_deref(),
        )?;
        let target = target_of(&config, &chosen)?;
        let (obs, _) = match runtime.block_on(agent::acm_observe(
            &connector,
            &config,
            &target,
            &chosen.arn,
        )) {
            Ok(x) => x,
            Err(e) => bail!(
                "cannot read {} from ACM: {e}; nothing was revoked",
                chosen.arn
            ),
        };
        if obs.summary.kind != "PRIVATE" {
            bail!(
                "{} is {}: only private certificates are revoked here, by the AWS Private CA that issued them{}; nothing was revoked",
                chosen.arn,
                match obs.summary.kind.as_str() {
                    "AMAZON_ISSUED" => "a public certificate",
                    "IMPORTED" => "imported into ACM",
                    other => other,
                },
                if obs.summary.kind == "IMPORTED" {
                    " (revoke an imported one with the CA that issued it)"
                } else {
                    ""
                }
            );
        }
        let detail = obs.detail.clone().unwrap_or_default();
        let (Some(ca_arn), Some(cert)) = (detail.ca_arn, obs.certificate.as_ref()) else {
            bail!(
                "ACM does not give the certificate at {} or the CA that issued it (is it issued?); nothing was revoked",
                chosen.arn
            );
        };
        // What is revoked is the certificate ACM holds now, and it must be the vault's.
        let Some((version_id, serial)) = v.version_of_certificate(&id, cert.fingerprint())? else {
            bail!(
                "the vault does not hold the certificate ACM has at {} now: run `certvault discover` first, so that what is revoked is in the vault; nothing was revoked",
                chosen.arn
            );
        };
        if let Some((at, why)) = v.aws_revocation(&id, version_id, &serial)? {
            note(&format!(
                "the certificate at {} (serial {serial}) was revoked already, on {} ({why})",
                chosen.arn,
                date(at)
            ));
            return Ok(Status::Ok);
        }
        confirm(
            &format!(
                "{name} (serial {serial}, at {}, issued by {ca_arn})",
                chosen.arn
            ),
            args.yes,
        )?;
        let account = match runtime.block_on(agent::pca_revoke(
            &connector,
            &config,
            &target,
            &ca_arn,
            &vault::serial_for_aws(&serial),
            reason,
        )) {
            Ok(a) => a,
            Err(e) => bail!("nothing was revoked: {e}"),
        };
        let region = agent::pca_arn_location(&ca_arn)
            .map(|(_, r)| r.to_owned())
            .unwrap_or_else(|| chosen.region.clone());
        (
            vault::AwsRevocation {
                entry_id: id.clone(),
                version_id,
                via: "acm".into(),
                ca_arn,
                certificate_arn: chosen.arn.clone(),
                target: chosen.target.clone(),
                account,
                region,
                reason: reason.into(),
            },
            serial,
        )
    };
    let (rec, serial) = revocation;
    let current = v.show(&id)?.summary.serial == serial;
    v.record_aws_revocation(&rec)?;
    if ctx.printer.json {
        ctx.printer.json(&json!({
            "entry": name,
            "serial": serial,
            "ca_arn": rec.ca_arn,
            "certificate_arn": rec.certificate_arn,
            "reason": reason,
            "revoked": true,
            "current": current,
        }))?;
    } else {
        ctx.printer.line(&format!(
            "{name}: serial {serial} revoked by {} ({reason})",
            rec.ca_arn
        ))?;
        if current {
            note(
                "the entry's current certificate is revoked: its deployments are flagged revoked and never pushed again",
            );
        } else {
            note(
                "that was not the entry's current certificate: the current one and its deployments are unchanged",
            );
        }
    }
    Ok(Status::Ok)
}
