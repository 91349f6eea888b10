//! The reconcile plan: a pure function from what the vault wants and what ACM holds to the
//! steps that make ACM match. No I/O, deterministic order (by deployment id), so it is
//! tested with tables and properties, without AWS.
//!
//! The rules that keep a sync trustworthy live here:
//! - a deployment is pinned to its account: credentials that resolve elsewhere, or an ARN
//!   of another account, fail the deployment with both accounts named; nothing is sent;
//! - an ARN is `missing` only when DescribeCertificate said it is gone, never because a
//!   listing left it out; a certificate that could not be read fails its own deployment;
//! - before any import (first deploy or re-create) a copy tagged with the entry id is
//!   adopted; after an import whose answer was lost, nothing is imported again until the
//!   copy it may have made had time to be listed;
//! - an ARN another deployment owns (in this plan or anywhere in the vault) is never taken;
//! - what ACM holds is compared leaf and chain.

use crate::aws::CertificateType;
use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

/// States a deployment can be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// ACM holds the vault's current certificate (and chain).
    InSync,
    /// The vault has a newer version (or a corrected chain) than ACM.
    Outdated,
    /// ACM holds a certificate that is not the vault's.
    Drifted,
    /// DescribeCertificate says the ARN is gone from ACM.
    Missing,
    /// The vault's current certificate has expired.
    Expired,
    /// Not deployed yet, or waiting to learn what an earlier import did.
    Pending,
    /// The last attempt failed (see detail).
    Failed,
    /// The vault's current certificate is revoked by its CA: never pushed again.
    Revoked,
}

impl State {
    /// Every state, in display order.
    pub const ALL: [State; 8] = [
        State::InSync,
        State::Outdated,
        State::Drifted,
        State::Missing,
        State::Expired,
        State::Pending,
        State::Failed,
        State::Revoked,
    ];

    /// The name shown and stored.
    pub fn as_str(self) -> &'static str {
        match self {
            State::InSync => "in-sync",
            State::Outdated => "outdated",
            State::Drifted => "drifted",
            State::Missing => "missing",
            State::Expired => "expired",
            State::Pending => "pending",
            State::Failed => "failed",
            State::Revoked => "revoked",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<State> {
        State::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// One deployment as the vault wants it.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    /// Deployment id.
    pub id: i64,
    /// Entry id (the tag on the first import).
    pub entry_id: String,
    /// The account the deployment is pinned to, once known.
    pub account: Option<String>,
    /// SHA-256 of the vault's current certificate.
    pub vault_fingerprint: String,
    /// Identity of its chain ([`vault::formats::chain_fingerprint`]).
    pub vault_chain: String,
    /// The ARN ACM gave it, if deployed.
    pub arn: Option<String>,
    /// What was last imported there.
    pub deployed_fingerprint: Option<String>,
    /// The chain last imported there (unknown for deployments older than chain tracking).
    pub deployed_chain: Option<String>,
    /// ACM's ImportedAt (seconds) after that import.
    pub imported_at: Option<i64>,
    /// NotAfter (seconds) of what was last imported.
    pub deployed_not_after: Option<i64>,
    /// When (seconds) an import was sent whose answer never came back, if one was.
    pub import_started: Option<i64>,
    /// Adopt an existing certificate on first deploy.
    pub replace_existing: bool,
    /// Re-import new versions (and re-create missing ones) by itself.
    pub auto_redeploy: bool,
    /// The vault's names for it (CN and SANs), sorted.
    pub domains: Vec<String>,
    /// Why it cannot be imported (no key, unsupported key type, not valid now, too large
    /// for ACM), if so.
    pub blocked: Option<String>,
    /// The current certificate has expired.
    pub expired: bool,
    /// The current certificate is revoked by the vault's CA: nothing is pushed.
    pub revoked: bool,
}

/// One ACM certificate as observed.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedCert {
    /// Its ARN.
    pub arn: String,
    /// `IMPORTED`, `AMAZON_ISSUED`, `PRIVATE`.
    pub kind: CertificateType,
    /// ImportedAt, seconds.
    pub imported_at: Option<i64>,
    /// Domain and SANs, sorted.
    pub domains: Vec<String>,
    /// Fingerprint, when it was read.
    pub fingerprint: Option<String>,
    /// Identity of the chain served with it, when it was read.
    pub chain: Option<String>,
    /// The `certvault:entry-id` tag, when tags were read.
    pub entry_tag: Option<String>,
}

/// One region of one target, as observed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    /// The account the target's credentials resolve to now.
    pub account: String,
    /// Now, in seconds (for the wait after a lost import answer).
    pub now: i64,
    /// Certificates listed (or, when a listing left a deployed ARN out, described), by ARN.
    pub certs: BTreeMap<String, ObservedCert>,
    /// Deployed ARNs that DescribeCertificate says are gone (ResourceNotFound).
    pub gone: BTreeSet<String>,
    /// ARNs whose state could not be read (Describe, Get or ListTags failed), with why.
    pub unreadable: BTreeMap<String, String>,
    /// ARNs that deployments outside this plan own (other targets, regions, the rest of
    /// the vault when only some deployments are planned): never taken over.
    pub claimed: BTreeSet<String>,
}

/// A reconcile step.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    /// Import as a new certificate, tagged with the entry id (a first deploy, or the
    /// re-creation of one DescribeCertificate says is gone).
    Import {
        /// Deployment.
        id: i64,
    },
    /// Re-import into the same ARN (attachments follow).
    Reimport {
        /// Deployment.
        id: i64,
        /// The ARN.
        arn: String,
        /// Why.
        reason: String,
    },
    /// Take over an ARN that already holds this certificate (tagged with the entry id;
    /// nothing else sent to ACM).
    Adopt {
        /// Deployment.
        id: i64,
        /// The ARN.
        arn: String,
        /// Why.
        reason: String,
    },
    /// Record a state; nothing changes in ACM.
    Flag {
        /// Deployment.
        id: i64,
        /// The state.
        state: State,
        /// Why, for anything not in sync.
        detail: Option<String>,
    },
}

impl Action {
    /// The deployment this step is for.
    pub fn id(&self) -> i64 {
        match self {
            Action::Import { id }
            | Action::Reimport { id, .. }
            | Action::Adopt { id, .. }
            | Action::Flag { id, .. } => *id,
        }
    }

    /// Whether the step changes something (in ACM or in what the vault records as deployed).
    pub fn changes(&self) -> bool {
        !matches!(self, Action::Flag { .. })
    }
}

/// Options for [`plan`].
#[derive(Debug, Clone, Copy, Default)]
pub struct PlanOptions {
    /// Overwrite drifted certificates instead of flagging them.
    pub force: bool,
    /// Push outdated and re-create missing deployments as if they had auto-redeploy
    /// (an explicit `certvault deploy`).
    pub push: bool,
    /// After an import whose answer was lost, wait this many seconds for its copy to be
    /// listed before importing again.
    pub settle_secs: i64,
}

fn short(fp: &str) -> &str {
    &fp[..fp.len().min(16)]
}

/// The account an ACM ARN belongs to.
fn arn_account(arn: &str) -> Option<&str> {
    crate::aws::arn_location(arn).map(|(account, _)| account)
}

/// Why a deployment must not be touched with credentials of `account`, if so.
pub fn account_problem(d: &Desired, account: &str) -> Option<String> {
    if let Some(pinned) = d.account.as_deref()
        && pinned != account
    {
        return Some(format!(
            "this deployment is pinned to account {pinned}, but the target's credentials now resolve to account {account}: nothing was sent (fix the target's profile or role)"
        ));
    }
    if let Some(arn) = d.arn.as_deref()
        && let Some(owner) = arn_account(arn)
        && owner != account
    {
        return Some(format!(
            "{arn} belongs to account {owner}, but the target's credentials now resolve to account {account}: nothing was sent (fix the target's profile or role)"
        ));
    }
    None
}

/// What ACM holds at the deployment's ARN, as (leaf, chain), if it can be told: read this
/// pass, or unchanged since our import. The chain is `None` when unknown.
fn acm_material(d: &Desired, o: &ObservedCert) -> Option<(String, Option<String>)> {
    if let Some(fp) = &o.fingerprint {
        return Some((fp.clone(), o.chain.clone()));
    }
    (o.imported_at.is_some() && o.imported_at == d.imported_at)
        .then(|| {
            d.deployed_fingerprint
                .clone()
                .map(|fp| (fp, d.deployed_chain.clone()))
        })
        .flatten()
}

/// Chains are equal, or one of them is not known (deployments older than chain tracking).
fn same_chain(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    }
}

/// Plans one region of one target.
pub fn plan(desired: &[Desired], observed: &Observed, opts: PlanOptions) -> Vec<Action> {
    let mut ds: Vec<&Desired> = desired.iter().collect();
    ds.sort_by_key(|d| d.id);
    // An ARN another deployment owns — here, elsewhere in the vault, or one a first deploy
    // claimed earlier in this plan — is never taken over.
    let mut owned: BTreeSet<String> = observed.claimed.clone();
    owned.extend(ds.iter().filter_map(|d| d.arn.clone()));
    let mut out = Vec::with_capacity(ds.len());
    for d in ds {
        let action = plan_one(d, observed, &owned, opts);
        if let Action::Adopt { arn, .. } | Action::Reimport { arn, .. } = &action {
            owned.insert(arn.clone());
        }
        out.push(action);
    }
    out
}

fn flag(d: &Desired, state: State, detail: impl Into<Option<String>>) -> Action {
    Action::Flag {
        id: d.id,
        state,
        detail: detail.into(),
    }
}

fn plan_one(
    d: &Desired,
    observed: &Observed,
    owned: &BTreeSet<String>,
    opts: PlanOptions,
) -> Action {
    // A revoked certificate is never pushed, whatever else holds.
    if d.revoked {
        return flag(
            d,
            State::Revoked,
            "the vault's current certificate is revoked: it is never pushed again (`certvault renew` or `certvault ca issue` makes a new one)".to_owned(),
        );
    }
    if let Some(why) = account_problem(d, &observed.account) {
        return flag(d, State::Failed, why);
    }
    let can_import = d.blocked.is_none();
    let Some(arn) = &d.arn else {
        return plan_import(d, observed, owned, opts, None);
    };
    let Some(o) = observed.certs.get(arn) else {
        if observed.gone.contains(arn) {
            return if d.auto_redeploy || opts.push {
                plan_import(d, observed, owned, opts, Some(arn))
            } else {
                flag(
                    d,
                    State::Missing,
                    format!("{arn} is gone from ACM (DescribeCertificate: not found)"),
                )
            };
        }
        let why = observed
            .unreadable
            .get(arn)
            .cloned()
            .unwrap_or_else(|| "it was not in the listing".into());
        return flag(
            d,
            State::Failed,
            format!("cannot tell whether {arn} is still in ACM: {why}"),
        );
    };
    let Some((acm, acm_chain)) = acm_material(d, o) else {
        return match observed.unreadable.get(arn) {
            Some(why) => flag(d, State::Failed, format!("cannot read {arn}: {why}")),
            None => flag(
                d,
                State::Pending,
                "ACM's copy has not been read yet".to_owned(),
            ),
        };
    };
    let leaf_current = acm == d.vault_fingerprint;
    let chain_current = same_chain(acm_chain.as_deref(), Some(&d.vault_chain));
    if leaf_current && chain_current {
        return if d.expired {
            flag(
                d,
                State::Expired,
                "the vault's current certificate has expired: renew it".to_owned(),
            )
        } else {
            flag(d, State::InSync, None)
        };
    }
    let ours = d.deployed_fingerprint.as_deref() == Some(acm.as_str())
        && same_chain(acm_chain.as_deref(), d.deployed_chain.as_deref());
    if !ours {
        let detail = if d.deployed_fingerprint.as_deref() == Some(acm.as_str()) || leaf_current {
            "ACM serves this entry's certificate with a chain the vault did not put there".into()
        } else {
            format!(
                "ACM holds certificate {} (SHA-256), which the vault did not put there",
                short(&acm)
            )
        };
        return if opts.force && can_import {
            Action::Reimport {
                id: d.id,
                arn: arn.clone(),
                reason: format!("overwriting drift ({detail})"),
            }
        } else {
            flag(d, State::Drifted, detail)
        };
    }
    let what = if leaf_current {
        "the vault's chain for it changed".to_owned()
    } else {
        format!(
            "renewed: the vault's certificate {} replaces {} in ACM (SHA-256)",
            short(&d.vault_fingerprint),
            short(&acm)
        )
    };
    if (d.auto_redeploy || opts.push) && can_import {
        Action::Reimport {
            id: d.id,
            arn: arn.clone(),
            reason: what,
        }
    } else {
        let why = d
            .blocked
            .clone()
            .unwrap_or_else(|| "run `certvault deploy` again or enable --auto-redeploy".into());
        flag(d, State::Outdated, format!("{what}: {why}"))
    }
}

/// A deployment without a live ARN (a first deploy, or `gone` was its ARN): adopt a copy
/// tagged with its entry (an import that was not recorded), or what `--replace-existing`
/// allows; wait if an import's outcome is still unknown; else import.
fn plan_import(
    d: &Desired,
    observed: &Observed,
    owned: &BTreeSet<String>,
    opts: PlanOptions,
    gone: Option<&str>,
) -> Action {
    let free = || observed.certs.values().filter(|o| !owned.contains(&o.arn));
    // A certificate tagged with our entry id is ours: imported before a crash or a lost
    // answer. One that already holds the vault's certificate is preferred.
    let ours = |o: &&ObservedCert| o.entry_tag.as_deref() == Some(d.entry_id.as_str());
    let tagged = free()
        .filter(ours)
        .find(|o| o.fingerprint.as_deref() == Some(d.vault_fingerprint.as_str()))
        .or_else(|| free().find(ours));
    if let Some(o) = tagged {
        let chain_current = same_chain(o.chain.as_deref(), Some(&d.vault_chain));
        return match &o.fingerprint {
            Some(fp) if *fp == d.vault_fingerprint && chain_current => Action::Adopt {
                id: d.id,
                arn: o.arn.clone(),
                reason: "found tagged with this entry (an earlier import was not recorded)".into(),
            },
            _ if d.blocked.is_none() => Action::Reimport {
                id: d.id,
                arn: o.arn.clone(),
                reason: "found tagged with this entry, holding another certificate".into(),
            },
            _ => flag(d, State::Failed, d.blocked.clone()),
        };
    }
    // A certificate for our names whose tags could not be read may be an earlier import of
    // this entry: importing now could make a second copy.
    if let Some((arn, why)) = free()
        .filter(|o| o.domains.iter().any(|n| d.domains.contains(n)))
        .find_map(|o| observed.unreadable.get(&o.arn).map(|w| (&o.arn, w)))
    {
        return flag(
            d,
            State::Failed,
            format!(
                "{arn} is for the same names and could not be read ({why}); it may be an earlier import of this entry, so nothing was imported: the next pass looks again"
            ),
        );
    }
    if let Some(started) = d.import_started {
        let until = started + opts.settle_secs;
        if observed.now < until {
            return flag(
                d,
                State::Pending,
                format!(
                    "an import sent {}s ago got no answer; no copy tagged for this entry is listed yet, so nothing is imported again for {}s more",
                    (observed.now - started).max(0),
                    until - observed.now
                ),
            );
        }
    }
    // --replace-existing never takes a certificate tagged with another entry: certvault put
    // it there for that entry (perhaps from another vault sharing the account); nor one
    // whose tags could not be read.
    let untagged =
        || free().filter(|o| o.entry_tag.is_none() && !observed.unreadable.contains_key(&o.arn));
    if d.replace_existing {
        if let Some(o) = untagged().find(|o| {
            o.fingerprint.as_deref() == Some(d.vault_fingerprint.as_str())
                && same_chain(o.chain.as_deref(), Some(&d.vault_chain))
        }) {
            return Action::Adopt {
                id: d.id,
                arn: o.arn.clone(),
                reason: "the region already holds this certificate".into(),
            };
        }
        if d.blocked.is_none()
            && let Some(o) = untagged().find(|o| {
                o.kind == CertificateType::Imported
                    && !d.domains.is_empty()
                    && o.domains == d.domains
            })
        {
            return Action::Reimport {
                id: d.id,
                arn: o.arn.clone(),
                reason: "replacing an imported certificate for the same names".into(),
            };
        }
    }
    match &d.blocked {
        None => Action::Import { id: d.id },
        Some(why) => match gone {
            Some(arn) => flag(
                d,
                State::Missing,
                format!("{arn} is gone from ACM and cannot be re-created: {why}"),
            ),
            None => flag(d, State::Failed, why.clone()),
        },
    }
}

#[cfg(test)]
mod tests;
