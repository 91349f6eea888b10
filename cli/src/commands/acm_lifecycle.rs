//! `certvault acm renew` and `acm revoke`: private certificates renewed through ACM or
//! issued again by AWS Private CA, and revoked by the Private CA that issued them. The
//! workflows, and which kinds may be renewed or revoked, are the agent's
//! (`agent::acm::{renew, revoke}`); this module parses, asks and prints, and words the
//! refusals (with the command that does what was asked, where there is one).

use crate::output::{Confirmation, confirm};
use agent::acm::{
    Error as E,
    lifecycle::{Doing, PublicRenewal, RevokedBecause},
    renew::{RenewOutcome, RenewRequest},
    revoke::{RevokePlan, RevokeRequest},
};
use anyhow::{Result, anyhow};
use serde::Serialize;

use super::{
    Ctx,
    common::{explain, print_json},
};
use crate::{
    Status, UsageError,
    args::{AcmRenewArgs, AcmRevokeArgs, ReasonArg},
    output::{date, note},
};

/// Why an entry that is not a certificate AWS issued cannot be renewed or revoked here, and
/// what does it.
fn not_ours(source: vault::entries::Source, name: &str, doing: Doing) -> String {
    use vault::entries::Source as S;
    let renew = doing == Doing::Renew;
    let verb = if renew { "renew" } else { "revoke" };
    match source {
        S::Issued => format!(
            "{name} was issued by the vault's own CA: {}",
            if renew {
                format!("renew it with `certvault renew {name}`")
            } else {
                format!("revoke it with `certvault ca revoke {name}`")
            }
        ),
        S::Imported => format!(
            "{name} was imported from a file: {verb} with the CA that issued it{}",
            if renew {
                ", then `certvault import` the new certificate (its deployments follow)"
            } else {
                ""
            }
        ),
        S::Iam => format!(
            "{name} is an IAM server certificate: AWS neither renews nor revokes those; {verb} it with the CA that issued it"
        ),
        S::Pca => format!(
            "{name} was issued by `pca issue` before the vault recorded its CA and certificate ARN (schema 7): issue a new one with `certvault pca issue`"
        ),
        _ => format!("{name} is not a certificate AWS issued"),
    }
}

/// Whether ACM will renew a public certificate by itself, in words.
fn public_renewal(r: &PublicRenewal) -> String {
    let use_note = |ineligible: bool| {
        if ineligible {
            " (ACM says INELIGIBLE: it renews only certificates an AWS service uses, or exportable ones)"
        } else {
            ""
        }
    };
    match r {
        PublicRenewal::NotIssued { status } => format!(
            "it is {}: there is nothing to renew",
            status.as_str().to_lowercase().replace('_', " ")
        ),
        PublicRenewal::Email { ineligible } => format!(
            "ACM renews it by itself, but it is validated by email: at each renewal someone must approve the mail ACM sends to the domain's admin@, administrator@, hostmaster@, postmaster@ and webmaster@ addresses{}; a DNS-validated replacement (`certvault acm request --validation dns --route53`) renews without anyone",
            use_note(*ineligible)
        ),
        PublicRenewal::Dns {
            failing,
            ineligible,
        } if failing.is_empty() => format!(
            "ACM renews it by itself from 60 days before it expires, for as long as its DNS validation records stay in place: they validate now{}",
            use_note(*ineligible)
        ),
        PublicRenewal::Dns {
            failing,
            ineligible,
        } => format!(
            "validation does not hold for {}: ACM cannot renew it until their DNS validation records are in place again{}",
            failing.join(", "),
            use_note(*ineligible)
        ),
    }
}

/// A renewal's or revocation's refusal in the CLI's words.
fn refusal(e: E) -> anyhow::Error {
    let usage = |m: String| anyhow::Error::from(UsageError(m));
    match e {
        E::NoEntry { arn, region } => anyhow!(
            "the vault has no entry for {arn}: run `certvault discover --regions {region}` first; nothing was asked of AWS"
        ),
        E::NotIssuedByAws {
            name,
            origin,
            doing,
        } => anyhow!(
            "{}; nothing was asked of AWS",
            not_ours(origin, &name, doing)
        ),
        E::ReuseKeyNotPca { name } => usage(format!(
            "--reuse-key: only for certificates `pca issue` made (their key is in the vault); {name} is not one"
        )),
        E::Revoked { name, arn, because } => {
            let why = match because {
                RevokedBecause::AcmSaid => format!(
                    "ACM said at the last discovery that the certificate at {arn} is revoked"
                ),
                RevokedBecause::Recorded { serial, at, reason } => format!(
                    "the certificate at {arn} (serial {serial}) was revoked on {} ({reason})",
                    date(at)
                ),
            };
            anyhow!(
                "{name}: {why}; it is not renewed (request a new certificate instead); nothing was asked of AWS"
            )
        }
        E::PublicCertificate { arn, renewal } => anyhow!(
            "{arn} is a public certificate: only ACM renews it; {}",
            public_renewal(&renewal)
        ),
        E::ImportedCertificate { arn } => anyhow!(
            "{arn} was imported into ACM: ACM never renews an imported certificate; renew it where it was issued (for a vault entry: `certvault renew`, or import the renewed certificate), and the agent re-imports it into the same ARN"
        ),
        E::NotEligible { arn, eligibility } => anyhow!(
            "ACM says {arn} is {} for renewal: RenewCertificate renews private certificates that were exported (`certvault acm export-key`); ACM renews the ones AWS services use by itself before they expire. Nothing was asked",
            eligibility.as_deref().unwrap_or("not eligible")
        ),
        E::IssuedThrough {
            given,
            name,
            target,
        } => usage(format!(
            "--target {given}, but {name} was issued through target {target}"
        )),
        E::CaElsewhere {
            given,
            name,
            region,
        } => usage(format!(
            "--region {given}, but the CA of {name} is in {region}"
        )),
        E::NameTheEntry { arn, name, serial } => usage(format!(
            "{arn} holds a certificate of {name}, which `pca issue` made: name the entry (`certvault acm revoke {name}`) to revoke its current certificate (serial {serial})"
        )),
        E::NotInVault { arn } => anyhow!(
            "the vault does not hold the certificate ACM has at {arn} now: run `certvault discover` first, so that what is revoked is in the vault; nothing was revoked"
        ),
        other => explain(other),
    }
}

/// What `acm renew --output json` prints for a certificate ACM renewed.
#[derive(Serialize)]
struct RenewedOut<'a> {
    arn: &'a str,
    entry: &'a str,
    new_version: bool,
    renewed: bool,
}

/// What `acm renew --output json` prints for an entry `pca issue` made.
#[derive(Serialize)]
struct ReissuedOut<'a> {
    #[serde(flatten)]
    stored: &'a vault::ca::pca::PcaStored,
    renewed: bool,
    reused_key: bool,
}

pub(crate) fn renew(ctx: &Ctx, args: AcmRenewArgs) -> Result<Status> {
    if args.wait > time::Duration::hours(1) {
        return Err(UsageError("--wait: at most 1h".into()).into());
    }
    let wait = std::time::Duration::try_from(args.wait).unwrap_or_default();
    let config = ctx.config()?;
    let mut v = ctx.unlock_writer("acm renew")?;
    let req = RenewRequest {
        certificate: &args.certificate,
        region: args.place.region.as_deref(),
        target: args.place.target.as_deref(),
        reuse_key: args.reuse_key,
        wait,
    };
    let outcome = ctx
        .runtime()?
        .block_on(agent::acm::renew::renew(
            &ctx.connector(),
            &mut v,
            &config,
            req,
        ))
        .map_err(refusal)?;
    match outcome {
        RenewOutcome::Reissued { stored, reused_key } => {
            print_reissued(ctx, &stored, reused_key)?;
            Ok(Status::Ok)
        }
        RenewOutcome::Renewed {
            arn,
            entry,
            done,
            new_version,
        } => {
            if ctx.printer.json {
                let renewed = done;
                print_json(
                    ctx,
                    &RenewedOut {
                        arn: &arn,
                        entry: &entry,
                        new_version,
                        renewed,
                    },
                )?;
            } else if done {
                let how = if new_version {
                    "a new version of the entry"
                } else {
                    "in the vault"
                };
                ctx.printer.line(&format!(
                    "{entry}: renewed by ACM in place ({arn}); the new certificate is {how}"
                ))?;
            } else {
                ctx.printer.line(&format!(
                    "{entry}: ACM accepted the renewal of {arn}, but had not issued it within {}s; `certvault discover` records it when it has",
                    wait.as_secs()
                ))?;
            }
            Ok(if done { Status::Ok } else { Status::Attention })
        }
    }
}

fn print_reissued(ctx: &Ctx, stored: &vault::ca::pca::PcaStored, reused_key: bool) -> Result<()> {
    if ctx.printer.json {
        return print_json(
            ctx,
            &ReissuedOut {
                stored,
                renewed: true,
                reused_key,
            },
        );
    }
    ctx.printer.line(&format!(
        "{}: issued again by {} ({}), serial {}, valid until {}; a new version, with {}",
        stored.name,
        stored.ca_arn,
        stored.certificate_arn,
        stored.serial,
        date(stored.not_after),
        if reused_key {
            "the same key"
        } else {
            "a new key made in the vault"
        }
    ))?;
    note("deployments with auto-redeploy take it at the next sync");
    Ok(())
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

pub(crate) fn revoke(ctx: &Ctx, args: AcmRevokeArgs) -> Result<Status> {
    let reason = aws_reason(args.reason)?;
    let config = ctx.config()?;
    let mut v = ctx.unlock_writer("acm revoke")?;
    let req = RevokeRequest {
        certificate: &args.certificate,
        region: args.place.region.as_deref(),
        target: args.place.target.as_deref(),
        reason,
    };
    let runtime = ctx.runtime()?;
    let connector = ctx.connector();
    let plan = runtime
        .block_on(agent::acm::revoke::plan_revoke(
            &connector, &v, &config, req,
        ))
        .map_err(refusal)?;
    let planned = match plan {
        RevokePlan::AlreadyRevoked {
            name,
            serial,
            arn,
            at,
            reason,
        } => {
            let why = reason.as_deref().unwrap_or("no reason recorded");
            note(&match arn {
                None => format!(
                    "{name} (serial {serial}) was revoked already, on {} ({why})",
                    date(at)
                ),
                Some(arn) => format!(
                    "the certificate at {arn} (serial {serial}) was revoked already, on {} ({why})",
                    date(at)
                ),
            });
            return Ok(Status::Ok);
        }
        RevokePlan::Revoke(planned) => planned,
    };
    let what = planned.what();
    confirm(
        args.yes,
        Confirmation::word(
            "revoke",
            format!("revoking {what} cannot be undone; add --yes to confirm"),
            format!(
                "This revokes {what} with AWS Private CA. A revocation cannot be undone: clients that check the CA's CRL or OCSP will refuse it."
            ),
            "not confirmed; nothing was revoked",
        ),
    )?;
    let done = runtime
        .block_on(agent::acm::revoke::revoke_planned(
            &connector, &mut v, &config, *planned,
        ))
        .map_err(refusal)?;
    if ctx.printer.json {
        print_json(ctx, &done)?;
    } else {
        ctx.printer.line(&format!(
            "{}: serial {} revoked by {} ({reason})",
            done.entry, done.serial, done.ca_arn
        ))?;
        note(if done.current {
            "the entry's current certificate is revoked: its deployments are flagged revoked and never pushed again"
        } else {
            "that was not the entry's current certificate: the current one and its deployments are unchanged"
        });
    }
    Ok(Status::Ok)
}
