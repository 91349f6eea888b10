//! `undeploy`: an entry's deployments forgotten (those of a target, or of some regions),
//! each deleted from ACM first when asked. A deployment whose row fails its integrity
//! check, whose ARN another deployment shares, or whose certificate ACM would not delete
//! is kept, and nothing after it is touched.

use std::time::Duration;

use vault::{Vault, records::Deployment};

use crate::{
    acm::delete::{DeleteRequest, Deleted, Owner, delete_from_acm},
    aws::Connector,
    config::Config,
    error::ApiError,
};

/// What `undeploy` is asked.
#[derive(Debug, Clone, Copy)]
pub struct UndeployRequest<'a> {
    /// The entry (id or name).
    pub entry: &'a str,
    /// Only its deployments through this target.
    pub target: Option<&'a str>,
    /// Only those in these regions (expanded).
    pub regions: Option<&'a [String]>,
    /// Delete each certificate from ACM before forgetting its deployment.
    pub delete_from_acm: bool,
    /// How long to keep trying while ACM says "in use" with nothing listed as using it.
    pub wait: Duration,
}

/// One step of `undeploy`, as it happens.
#[derive(Debug, Clone, Copy)]
pub enum UndeployStep<'a> {
    /// A deployment's certificate was deleted from ACM now (`true`), or was gone already.
    Deleted {
        /// The deployment.
        deployment: &'a Deployment,
        /// Its ARN.
        arn: &'a str,
        /// Deleted now, or gone already.
        now: bool,
    },
    /// A deployment was forgotten.
    Forgotten(&'a Deployment),
}

/// Why `undeploy` stopped. Every deployment before the one named was forgotten (and
/// reported); it and those after it are kept.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UndeployError {
    /// The entry has no deployment matching the request.
    #[error("{name} has no deployment matching that")]
    NoMatch {
        /// The entry's name.
        name: String,
    },
    /// The deployment's row failed its integrity check (recorded in the audit log).
    #[error(
        "{name}: cannot delete from ACM, so the deployment to {target}/{region} is kept: {error}"
    )]
    Tampered {
        /// The entry's name.
        name: String,
        /// The deployment's target.
        target: String,
        /// Its region.
        region: String,
        /// What the check found.
        error: vault::Error,
    },
    /// Another deployment records the same ARN.
    #[error(
        "{name}: {arn} is also recorded for {other} ({other_target}/{other_region}): nothing was deleted and the deployment is kept"
    )]
    Shared {
        /// The entry's name.
        name: String,
        /// The ARN.
        arn: String,
        /// The other deployment's entry name.
        other: String,
        /// Its target.
        other_target: String,
        /// Its region.
        other_region: String,
    },
    /// ACM did not delete the certificate.
    #[error(
        "{name}: cannot delete from ACM, so the deployment to {target}/{region} is kept: {error}"
    )]
    NotDeleted {
        /// The entry's name.
        name: String,
        /// The deployment's target.
        target: String,
        /// Its region.
        region: String,
        /// Why.
        error: ApiError,
    },
    /// The configuration names no such target, or a region is unknown.
    #[error(transparent)]
    Config(#[from] crate::Error),
    /// The vault could not be read or written.
    #[error(transparent)]
    Vault(#[from] vault::Error),
}

/// Forgets the deployments `req` names, in order, each deleted from ACM first with
/// `req.delete_from_acm` (audited `acm-delete`); `done` hears each step as it happens.
/// Returns the entry's name.
pub async fn undeploy<C: Connector>(
    connector: &C,
    v: &mut Vault,
    config: &Config,
    req: UndeployRequest<'_>,
    done: &mut (dyn FnMut(UndeployStep<'_>) + Send),
) -> Result<String, UndeployError> {
    let (id, name) = v.resolve(req.entry)?;
    let fingerprints = v.entry_fingerprints(&id)?;
    let chosen: Vec<Deployment> = v
        .deployments()?
        .into_iter()
        .filter(|d| d.entry_id == id)
        .filter(|d| req.target.is_none_or(|t| t == d.target))
        .filter(|d| req.regions.is_none_or(|r| r.contains(&d.region)))
        .collect();
    if chosen.is_empty() {
        return Err(UndeployError::NoMatch { name });
    }
    let tampered = if req.delete_from_acm {
        v.deployment_problems()?
    } else {
        Default::default()
    };
    for d in chosen {
        let kept = |error| UndeployError::NotDeleted {
            name: name.clone(),
            target: d.target.clone(),
            region: d.region.clone(),
            error,
        };
        if req.delete_from_acm
            && let Some(bad) = tampered.get(&d.id)
        {
            v.record_integrity_failure(bad, "deleting from ACM")?;
            return Err(UndeployError::Tampered {
                name: name.clone(),
                target: d.target.clone(),
                region: d.region.clone(),
                error: vault::Error::RowTampered {
                    table: bad.table,
                    row: bad.row.clone(),
                },
            });
        }
        if req.delete_from_acm
            && let Some(arn) = &d.arn
        {
            if let Some(other) = v
                .deployments()?
                .into_iter()
                .find(|o| o.id != d.id && o.arn.as_deref() == Some(arn.as_str()))
            {
                return Err(UndeployError::Shared {
                    name: name.clone(),
                    arn: arn.clone(),
                    other: other.name,
                    other_target: other.target,
                    other_region: other.region,
                });
            }
            let target = config
                .select(Some(&d.target), Some(std::slice::from_ref(&d.region)))?
                .remove(0);
            let del = DeleteRequest {
                target: &target,
                region: &d.region,
                arn,
                account: d.account.as_deref(),
                owner: Some(Owner {
                    entry_id: &id,
                    fingerprints: &fingerprints,
                }),
                tags: None,
                wait: req.wait,
            };
            match delete_from_acm(connector, config, del)
                .await
                .map_err(kept)?
            {
                Deleted::Deleted { request_id } => {
                    v.record_event(
                        "acm-delete",
                        Some(&id),
                        &format!(
                            "deleted {arn} from ACM ({}){}",
                            d.region,
                            request_id
                                .map(|r| format!(" (request {r})"))
                                .unwrap_or_default()
                        ),
                    )?;
                    done(UndeployStep::Deleted {
                        deployment: &d,
                        arn,
                        now: true,
                    });
                }
                Deleted::AlreadyGone => done(UndeployStep::Deleted {
                    deployment: &d,
                    arn,
                    now: false,
                }),
            }
        }
        v.remove_deployment(d.id)?;
        done(UndeployStep::Forgotten(&d));
    }
    Ok(name)
}

impl UndeployError {
    /// What a person can do about it, if something (see [`crate::Remedy`]).
    pub fn remedy(&self) -> Option<crate::Remedy> {
        match self {
            UndeployError::Vault(e) | UndeployError::Tampered { error: e, .. } => {
                e.remedy().map(crate::Remedy::Vault)
            }
            UndeployError::Config(e) => e.remedy(),
            _ => None,
        }
    }
}
