//! certvault's AWS side: configuration of targets, the AWS boundary (traits over
//! aws-sdk-rust, so an in-process fake can stand in), rate limits and retries, and
//! discovery of every certificate in ACM and IAM.
//!
//! ```no_run
//! # async fn run(vault: &mut vault::Vault) -> Result<(), agent::Error> {
//! use agent::{Config, DiscoverOptions, SdkConnector, discover};
//! let config = Config::default();
//! let targets = config.select(None, Some(&["us-east-1".to_owned(), "eu-west-1".to_owned()]))?;
//! let report = discover(&SdkConnector::default(), vault, &config, &targets, DiscoverOptions::default(), &|_| {}).await?;
//! println!("{} certificates, {} API calls", report.total, report.api_calls.total);
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod aws;
mod config;
mod daemon;
mod delete;
mod discover;
pub mod elb;
mod error;
mod export_key;
#[cfg(test)]
mod fake;
mod lifecycle;
mod pca;
mod pem;
pub mod rds;
pub mod reconcile;
mod regions;
mod request;
mod retry;
mod route53;

pub use tokio_util::sync::CancellationToken;

// The old path of the ELB module, for the AWS boundary that still names it.
use crate::elb::rotate;

pub use crate::{
    aws::{
        AcmApi, AcmWrite, CertificatePem, Connector, ENTRY_TAG, ExportedKey, IamApi,
        IamServerCertificate, ListPage, MAX_LIST_PAGES, SdkConnector, StsApi, Written,
        all_key_types, arn_location, insecure_endpoint,
    },
    config::{Concurrency, Config, Quotas, SyncSettings, Target, expand_regions},
    daemon::{
        AgentOptions, Metrics, anchor_check, ca_maintenance, run as run_agent, serve_metrics,
    },
    delete::{DeleteRequest, Deleted, Owner, TagRule, delete_from_acm, what_to_do},
    discover::{
        Changes, DiscoverOptions, DiscoveryReport, EXPIRY_WARNING_DAYS, Finding, Findings,
        LocationReport, Progress, discover,
    },
    error::{ApiError, Error, ErrorKind, Result},
    export_key::{ExportKeyRequest, acm_export_key},
    lifecycle::{Renewed, acm_renew, pca_revoke},
    pca::{
        PcaApi, PcaIssueRequest, PcaIssued, PrivateCa, pca_arn_location, pca_issue, pca_list,
        signing_algorithm_for,
    },
    rds::{
        CA_WARNING_DAYS, CaFinding, DbCluster, DbInstance, RdsApi, RdsApplied, RdsApplyOptions,
        RdsAudits, RdsCa, RdsMove, RdsProgress, RdsRefusal, RegionAudit, SameAccount, judge,
        rds_apply, rds_ca_audit, rds_ca_audits, rds_moves,
    },
    reconcile::plan::{
        Action, Desired, Observed, ObservedCert, PlanOptions, State, account_problem, plan,
    },
    reconcile::{
        ACM_KEY_TYPES, ACM_MAX_CERTIFICATE, ACM_MAX_CHAIN, ACM_MAX_PRIVATE_KEY, StatusRow,
        SyncOptions, SyncReport, material_problem, not_importable, sync,
    },
    regions::{ACM_REGIONS, AcmRegion, all_regions},
    request::{
        CertRequest, acm_describe, acm_observe, acm_observe_many, acm_request,
        acm_wait_for_records, requested_summary, target_account,
    },
    retry::{
        CallCounts, CallStats, Idempotence, LimiterPool, LocationCalls, RateLimiter, RegionLimits,
        RetryPolicy, Scope,
    },
    rotate::{
        ClassicLb, ElbApi, ElbV2Api, Elsewhere, ListenerV2, Listeners, LoadBalancerV2, Page,
        RotationPlan, Swap, SwapKind, plan_swaps, rotation_apply, rotation_plan, rotation_plans,
    },
    route53::{
        HostedZone, PlaceError, PlacedRecord, Placement, Route53Api, ZonePage,
        place_validation_records, route53_place,
    },
};
