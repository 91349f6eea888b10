//! Observing one region of one target for a reconcile pass.
//!
//! A no-op pass costs ListCertificates pages only. Beyond them:
//! - a deployed ARN the listing left out is described: `ResourceNotFound` is the only thing
//!   that makes it gone (listings lag and page);
//! - a deployed ARN whose ImportedAt or NotAfter moved (or every one, with `deep`) is read
//!   with GetCertificate, leaf and chain;
//! - when a deployment needs an import (first deploy, or its ARN is gone and it is to be
//!   re-created: auto-redeploy, or an explicit deploy), the region's imported certificates
//!   for its names have their tags read, to adopt a copy an earlier import left unrecorded.
//!   A gone ARN the plan only flags `missing`, or a revoked certificate, searches nothing.
//!
//! A call about one certificate that fails marks that certificate unreadable; it never
//! fails the region. Only the listing itself failing does.

use crate::aws::CertificateType;
use std::collections::{BTreeMap, BTreeSet};

use futures_util::{StreamExt, stream};
use time::OffsetDateTime;
use vault::records::AcmSummary;

use crate::{
    aws::retry::{Idempotence, RegionLimits, Scope},
    aws::{AcmApi, AcmWrite, ENTRY_TAG, MAX_LIST_PAGES},
    error::{ApiError, ErrorKind, Refusal},
    reconcile::plan::{Desired, Observed, ObservedCert},
};

/// What observing a region gives: the plan's input and the listing's summaries.
#[derive(Debug, Default)]
pub(crate) struct Observation {
    pub(crate) observed: Observed,
    pub(crate) summaries: BTreeMap<String, AcmSummary>,
}

/// Sorted, de-duplicated names of a summary.
pub(crate) fn names(domain: &str, sans: &[String]) -> Vec<String> {
    let mut d: Vec<String> = std::iter::once(domain.to_owned())
        .chain(sans.iter().cloned())
        .filter(|n| !n.is_empty())
        .collect();
    d.sort();
    d.dedup();
    d
}

/// Lists every certificate of a region (every key type, every page).
pub(crate) async fn list_all<A: AcmApi>(
    acm: &A,
    scope: &Scope,
    limits: &RegionLimits,
) -> Result<BTreeMap<String, AcmSummary>, ApiError> {
    let mut summaries = BTreeMap::new();
    let mut token = None;
    for _ in 0..MAX_LIST_PAGES {
        let page = scope
            .call(
                Some(&limits.list),
                "ListCertificates",
                Idempotence::Safe,
                || acm.list_certificates(token.clone()),
            )
            .await?;
        for s in page.summaries {
            summaries.insert(s.arn.clone(), s);
        }
        token = page.next_token.filter(|t| !t.is_empty());
        if token.is_none() {
            return Ok(summaries);
        }
    }
    Err(ApiError::refused(
        "ListCertificates",
        &scope.region,
        Refusal::ListingDidNotEnd {
            pages: MAX_LIST_PAGES,
        },
    ))
}

fn served(pem: &crate::aws::CertificatePem) -> Option<vault::formats::ServedIdentity> {
    vault::formats::served_identity(&pem.certificate, pem.chain.as_deref())
}

/// What to find out about one ARN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    /// A deployed ARN the listing left out: does it still exist?
    Describe,
    /// A deployed ARN that changed: what does it hold?
    Read,
    /// A possible earlier import: whose is it (tags), and what does it hold?
    Candidate { read: bool, describe: bool },
}

enum Found {
    Described(Box<AcmSummary>),
    Gone,
    Read {
        fingerprint: Option<String>,
        chain: Option<String>,
    },
    Candidate {
        tag: Option<String>,
        fingerprint: Option<String>,
        chain: Option<String>,
        domains: Option<Vec<String>>,
    },
    Unreadable(String),
}

/// Observes one region for `desired` (deployments pinned to this account). `push`: an
/// explicit deploy, which re-creates gone ARNs as auto-redeploy does.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn observe_region<A: AcmApi + AcmWrite>(
    acm: &A,
    scope: &Scope,
    limits: &RegionLimits,
    desired: &[Desired],
    account: &str,
    deep: bool,
    push: bool,
    per_region: usize,
) -> Result<Observation, ApiError> {
    let mut summaries = list_all(acm, scope, limits).await?;
    let deployed: BTreeMap<&str, &Desired> = desired
        .iter()
        .filter_map(|d| d.arn.as_deref().map(|a| (a, d)))
        .collect();

    // Deployed ARNs the listing left out: only DescribeCertificate can say they are gone.
    let unlisted: Vec<String> = deployed
        .keys()
        .filter(|a| !summaries.contains_key(**a))
        .map(|a| (*a).to_owned())
        .collect();
    let mut gone = BTreeSet::new();
    let mut unreadable = BTreeMap::new();
    let results = run_all(
        acm,
        scope,
        limits,
        unlisted.into_iter().map(|a| (a, Need::Describe)).collect(),
        per_region,
    )
    .await?;
    for (arn, found) in results {
        match found {
            Found::Described(s) => {
                summaries.insert(arn, *s);
            }
            Found::Gone => {
                gone.insert(arn);
            }
            Found::Unreadable(why) => {
                unreadable.insert(arn, why);
            }
            _ => {}
        }
    }

    // Deployments that need an import look for an earlier, unrecorded copy by their names:
    // a first deploy, or a gone ARN that the plan re-creates. Nothing is searched for what
    // the plan cannot use (a gone ARN it only flags missing, a revoked certificate).
    let importing: Vec<&Desired> = desired
        .iter()
        .filter(|d| !d.revoked)
        .filter(|d| match &d.arn {
            None => true,
            Some(a) => gone.contains(a) && (d.auto_redeploy || push),
        })
        .collect();
    let wanted_names: BTreeSet<&str> = importing
        .iter()
        .flat_map(|d| d.domains.iter().map(String::as_str))
        .collect();
    let replacing = importing.iter().any(|d| d.replace_existing);
    let mut needs: Vec<(String, Need)> = Vec::new();
    for (arn, s) in &summaries {
        let imported_at = s.imported_at.map(OffsetDateTime::unix_timestamp);
        let not_after = s.not_after.map(OffsetDateTime::unix_timestamp);
        if let Some(d) = deployed.get(arn.as_str()) {
            // ImportedAt has one-second precision: a different NotAfter also means ACM no
            // longer holds what we imported.
            // Read it, too, when what is there is not known for sure: no ImportedAt on
            // either side, or a deployment from before the vault tracked chains.
            let changed = deep
                || d.imported_at.is_none()
                || imported_at.is_none()
                || d.deployed_chain.is_none()
                || d.imported_at != imported_at
                || (d.deployed_not_after.is_some()
                    && not_after.is_some()
                    && d.deployed_not_after != not_after);
            if changed {
                needs.push((arn.clone(), Need::Read));
            }
        } else if s.kind == CertificateType::Imported
            && names(&s.domain, &s.sans)
                .iter()
                .any(|n| wanted_names.contains(n.as_str()))
        {
            needs.push((
                arn.clone(),
                Need::Candidate {
                    read: true,
                    describe: replacing,
                },
            ));
        }
    }
    let results = run_all(acm, scope, limits, needs, per_region).await?;

    let mut observed = Observed {
        account: account.to_owned(),
        now: OffsetDateTime::now_utc().unix_timestamp(),
        gone,
        unreadable,
        ..Observed::default()
    };
    let mut found: BTreeMap<String, Found> = results.into_iter().collect();
    for (arn, s) in &summaries {
        let mut cert = ObservedCert {
            arn: arn.clone(),
            kind: s.kind.clone(),
            imported_at: s.imported_at.map(OffsetDateTime::unix_timestamp),
            domains: names(&s.domain, &s.sans),
            fingerprint: None,
            chain: None,
            entry_tag: None,
        };
        match found.remove(arn) {
            Some(Found::Read { fingerprint, chain }) => {
                cert.fingerprint = fingerprint;
                cert.chain = chain;
            }
            Some(Found::Candidate {
                tag,
                fingerprint,
                chain,
                domains,
            }) => {
                cert.entry_tag = tag;
                cert.fingerprint = fingerprint;
                cert.chain = chain;
                if let Some(d) = domains {
                    cert.domains = d;
                }
            }
            Some(Found::Unreadable(why)) => {
                observed.unreadable.insert(arn.clone(), why);
            }
            _ => {}
        }
        observed.certs.insert(arn.clone(), cert);
    }
    Ok(Observation {
        observed,
        summaries,
    })
}

/// Finds out what `needs` asks, `per_region` calls at a time. A stopped pass ends it.
async fn run_all<A: AcmApi + AcmWrite>(
    acm: &A,
    scope: &Scope,
    limits: &RegionLimits,
    needs: Vec<(String, Need)>,
    per_region: usize,
) -> Result<Vec<(String, Found)>, ApiError> {
    let results: Vec<(String, Result<Found, ApiError>)> = stream::iter(needs)
        .map(|(arn, need)| async move {
            let found = find(acm, scope, limits, &arn, need).await;
            (arn, found)
        })
        .buffer_unordered(per_region.max(1))
        .collect()
        .await;
    let mut out = Vec::with_capacity(results.len());
    for (arn, r) in results {
        match r {
            Ok(f) => out.push((arn, f)),
            Err(e) if e.kind == ErrorKind::Stopped => return Err(e),
            Err(e) => out.push((arn, Found::Unreadable(e.reason()))),
        }
    }
    Ok(out)
}

async fn find<A: AcmApi + AcmWrite>(
    acm: &A,
    scope: &Scope,
    limits: &RegionLimits,
    arn: &str,
    need: Need,
) -> Result<Found, ApiError> {
    let describe = || {
        scope.call(
            Some(&limits.describe),
            "DescribeCertificate",
            Idempotence::Safe,
            || acm.describe_certificate(arn),
        )
    };
    let get = || {
        scope.call(
            Some(&limits.get),
            "GetCertificate",
            Idempotence::Safe,
            || acm.get_certificate(arn),
        )
    };
    match need {
        Need::Describe => match describe().await {
            Ok((s, _)) => Ok(Found::Described(Box::new(s))),
            Err(e) if e.kind == ErrorKind::NotFound && e.code == "ResourceNotFoundException" => {
                Ok(Found::Gone)
            }
            Err(e) => Err(e),
        },
        Need::Read => {
            let pem = get().await?;
            match served(&pem) {
                Some(id) => Ok(Found::Read {
                    fingerprint: Some(id.fingerprint),
                    chain: Some(id.chain_fingerprint),
                }),
                None => Ok(Found::Unreadable(format!(
                    "GetCertificate in {} returned a certificate that does not parse",
                    scope.region
                ))),
            }
        }
        Need::Candidate { read, describe: d } => {
            // The tag decides whether it could be ours: failing to read it makes the
            // certificate unreadable (and blocks imports for its names).
            let tags = scope
                .call(
                    Some(&limits.list_tags),
                    "ListTagsForCertificate",
                    Idempotence::Safe,
                    || acm.list_tags(arn),
                )
                .await?;
            let tag = tags
                .into_iter()
                .find(|(k, _)| k == ENTRY_TAG)
                .map(|(_, v)| v);
            let (mut fingerprint, mut chain) = (None, None);
            if read {
                // What it holds only matters for adoption; failing to read it is not fatal.
                if let Ok(pem) = get().await
                    && let Some(id) = served(&pem)
                {
                    fingerprint = Some(id.fingerprint);
                    chain = Some(id.chain_fingerprint);
                }
            }
            let mut domains = None;
            if d && let Ok((s, _)) = describe().await {
                domains = Some(names(&s.domain, &s.sans));
            }
            Ok(Found::Candidate {
                tag,
                fingerprint,
                chain,
                domains,
            })
        }
    }
}
