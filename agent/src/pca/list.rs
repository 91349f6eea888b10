//! `pca list`: every Private CA of a target, region by region.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{PcaApi, PrivateCa};
use crate::{
    aws::Connector,
    aws::retry::{CallStats, Idempotence, Scope},
    config::{Config, Target},
    error::ApiError,
};

/// Every Private CA of a target in its regions, region by region: a region that fails is
/// reported and does not stop the others.
pub async fn pca_list<C: Connector>(
    connector: &C,
    config: &Config,
    target: &Target,
) -> Result<Vec<(String, Result<Vec<PrivateCa>, ApiError>)>, ApiError> {
    let global = Scope::new(
        config.retry,
        Arc::new(CallStats::default()),
        &target.name,
        "global",
        CancellationToken::new(),
    );
    let (session, _account) = global
        .call(None, "GetCallerIdentity", Idempotence::Safe, || {
            connector.connect(target)
        })
        .await?;
    let mut out = Vec::new();
    for region in &target.regions {
        let pca = connector.pca(&session, region);
        let scope = global.in_region(region);
        let mut token = None;
        let mut cas = Vec::new();
        let mut failed = None;
        for _ in 0..crate::aws::MAX_LIST_PAGES {
            match scope
                .call(
                    None,
                    "ListCertificateAuthorities",
                    Idempotence::Safe,
                    || pca.list_cas(token.clone()),
                )
                .await
            {
                Ok(page) => {
                    cas.extend(page.cas);
                    match page.next_token {
                        Some(t) if Some(&t) != token.as_ref() => token = Some(t),
                        _ => break,
                    }
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        out.push((region.clone(), failed.map_or(Ok(cas), Err)));
    }
    Ok(out)
}

/// One CA of the listing, with where it was found (the JSON `pca list` prints).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ListedCa {
    /// The CA.
    #[serde(flatten)]
    pub ca: PrivateCa,
    /// The target it was found through.
    pub target: String,
    /// Its region.
    pub region: String,
}

/// A target (or one of its regions, when `region` is given) that could not be listed.
#[derive(Debug, Clone)]
pub struct ListFailure {
    /// The target.
    pub target: String,
    /// The region, when only it failed.
    pub region: Option<String>,
    /// Why.
    pub error: ApiError,
}

/// Every Private CA of every target, in their regions: a target or region that fails is a
/// failure of its own and does not stop the others.
pub async fn list_all<C: Connector>(
    connector: &C,
    config: &Config,
    targets: &[Target],
) -> (Vec<ListedCa>, Vec<ListFailure>) {
    let (mut rows, mut failed) = (Vec::new(), Vec::new());
    for t in targets {
        let found = match pca_list(connector, config, t).await {
            Ok(f) => f,
            Err(error) => {
                failed.push(ListFailure {
                    target: t.name.clone(),
                    region: None,
                    error,
                });
                continue;
            }
        };
        for (region, cas) in found {
            match cas {
                Ok(cas) => rows.extend(cas.into_iter().map(|ca| ListedCa {
                    ca,
                    target: t.name.clone(),
                    region: region.clone(),
                })),
                Err(error) => failed.push(ListFailure {
                    target: t.name.clone(),
                    region: Some(region),
                    error,
                }),
            }
        }
    }
    (rows, failed)
}
