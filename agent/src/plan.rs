//! The reconcile plan: a pure function from what the vault wants and what ACM holds to the
//! steps that make ACM match. No I/O, deterministic order (by deployment id), so it is
//! tested with tables and properties, without AWS.

use std::collections::BTreeMap;

use serde::Serialize;

/// States a deployment can be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// ACM holds the vault's current certificate.
    InSync,
    /// The vault has a newer version than ACM.
    Outdated,
    /// ACM holds a certificate that is not the vault's.
    Drifted,
    /// The ARN is gone from ACM.
    Missing,
    /// The vault's current certificate has expired.
    Expired,
    /// Not deployed yet.
    Pending,
    /// The last attempt failed (see detail).
    Failed,
}

impl State {
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
        }
    }
}

/// One deployment as the vault wants it.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    /// Deployment id.
    pub id: i64,
    /// Entry id (the tag on the first import).
    pub entry_id: String,
    /// SHA-256 of the vault's current certificate.
    pub vault_fingerprint: String,
    /// The ARN ACM gave it, if deployed.
    pub arn: Option<String>,
    /// What was last imported there.
    pub deployed_fingerprint: Option<String>,
    /// ACM's ImportedAt (seconds) after that import.
    pub imported_at: Option<i64>,
    /// NotAfter (seconds) of what was last imported.
    pub deployed_not_after: Option<i64>,
    /// Adopt an existing certificate on first deploy.
    pub replace_existing: bool,
    /// Re-import new versions (and re-create missing ones) by itself.
    pub auto_redeploy: bool,
    /// The vault's names for it (CN and SANs), sorted.
    pub domains: Vec<String>,
    /// Why it cannot be imported (no key, unsupported key type, not valid now), if so.
    pub blocked: Option<String>,
    /// The current certificate has expired.
    pub expired: bool,
}

/// One ACM certificate as observed.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedCert {
    /// Its ARN.
    pub arn: String,
    /// `IMPORTED`, `AMAZON_ISSUED`, `PRIVATE`.
    pub kind: String,
    /// ImportedAt, seconds.
    pub imported_at: Option<i64>,
    /// Domain and SANs, sorted.
    pub domains: Vec<String>,
    /// Fingerprint, when it was read.
    pub fingerprint: Option<String>,
    /// The `certvault:entry-id` tag, when tags were read.
    pub entry_tag: Option<String>,
}

/// One region of one target, as observed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    /// By ARN.
    pub certs: BTreeMap<String, ObservedCert>,
}

/// A reconcile step.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    /// Import as a new certificate, tagged with the entry id.
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
    /// Take over an ARN that already holds this certificate (nothing sent to ACM).
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
}

fn short(fp: &str) -> &str {
    &fp[..fp.len().min(16)]
}

/// What ACM holds at `arn`, if it can be told: read, or unchanged since our import.
fn acm_fingerprint(d: &Desired, o: &ObservedCert) -> Option<String> {
    o.fingerprint.clone().or_else(|| {
        (o.imported_at.is_some() && o.imported_at == d.imported_at)
            .then(|| d.deployed_fingerprint.clone())
            .flatten()
    })
}

/// Plans one region of one target.
pub fn plan(desired: &[Desired], observed: &Observed, opts: PlanOptions) -> Vec<Action> {
    let mut ds: Vec<&Desired> = desired.iter().collect();
    ds.sort_by_key(|d| d.id);
    // An ARN another deployment owns, or one a first deploy claimed earlier in this plan,
    // is never taken over by a first deploy.
    let mut owned: std::collections::BTreeSet<String> =
        ds.iter().filter_map(|d| d.arn.clone()).collect();
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
    owned: &std::collections::BTreeSet<String>,
    opts: PlanOptions,
) -> Action {
    let can_import = d.blocked.is_none();
    let Some(arn) = &d.arn else {
        return plan_first(d, observed, owned);
    };
    let Some(o) = observed.certs.get(arn) else {
        return if (d.auto_redeploy || opts.push) && can_import {
            Action::Import { id: d.id }
        } else {
            flag(d, State::Missing, format!("{arn} is no longer in ACM"))
        };
    };
    let Some(acm) = acm_fingerprint(d, o) else {
        return flag(
            d,
            State::Pending,
            "ACM's copy has not been read yet".to_owned(),
        );
    };
    if acm == d.vault_fingerprint {
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
    let ours = d.deployed_fingerprint.as_deref() == Some(acm.as_str());
    if !ours {
        let detail = format!(
            "ACM holds {} which the vault did not put there",
            short(&acm)
        );
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
    if (d.auto_redeploy || opts.push) && can_import {
        Action::Reimport {
            id: d.id,
            arn: arn.clone(),
            reason: format!(
                "renewed: {} replaces {}",
                short(&d.vault_fingerprint),
                short(&acm)
            ),
        }
    } else {
        let why = d
            .blocked
            .clone()
            .unwrap_or_else(|| "run `certvault deploy` again or enable --auto-redeploy".into());
        flag(
            d,
            State::Outdated,
            format!(
                "ACM has {}, the vault {}: {why}",
                short(&acm),
                short(&d.vault_fingerprint)
            ),
        )
    }
}

/// A deployment without an ARN: adopt what a crash left behind, or what
/// `--replace-existing` allows, else import.
fn plan_first(
    d: &Desired,
    observed: &Observed,
    owned: &std::collections::BTreeSet<String>,
) -> Action {
    let free = || observed.certs.values().filter(|o| !owned.contains(&o.arn));
    // A certificate tagged with our entry id is ours: imported just before a crash. One that
    // already holds the vault's certificate is preferred over one holding something else.
    let ours = |o: &&ObservedCert| o.entry_tag.as_deref() == Some(d.entry_id.as_str());
    let tagged = free()
        .filter(ours)
        .find(|o| o.fingerprint.as_deref() == Some(d.vault_fingerprint.as_str()))
        .or_else(|| free().find(ours));
    if let Some(o) = tagged {
        return match &o.fingerprint {
            Some(fp) if *fp == d.vault_fingerprint => Action::Adopt {
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
    // --replace-existing never takes a certificate tagged with another entry: certvault put
    // it there for that entry (perhaps from another vault sharing the account).
    let free = || free().filter(|o| o.entry_tag.is_none());
    if d.replace_existing {
        if let Some(o) =
            free().find(|o| o.fingerprint.as_deref() == Some(d.vault_fingerprint.as_str()))
        {
            return Action::Adopt {
                id: d.id,
                arn: o.arn.clone(),
                reason: "the region already holds this certificate".into(),
            };
        }
        if d.blocked.is_none()
            && let Some(o) = free()
                .find(|o| o.kind == "IMPORTED" && !d.domains.is_empty() && o.domains == d.domains)
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
        Some(why) => flag(d, State::Failed, why.clone()),
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
