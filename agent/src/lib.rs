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

pub mod acm;
mod aws;
mod config;
mod daemon;
mod discover;
pub mod elb;
mod error;
pub mod pca;
mod pem;
pub mod rds;
pub mod reconcile;
mod regions;
mod route53;

pub use tokio_util::sync::CancellationToken;

pub use crate::{
    acm::delete::{DeleteRequest, Deleted, Owner, TagRule, delete_from_acm, what_to_do},
    acm::export_key::{ExportKeyRequest, acm_export_key},
    acm::lifecycle::{Renewed, acm_renew, pca_revoke},
    acm::request::{
        acm_describe, acm_observe, acm_observe_many, acm_request, acm_wait_for_records,
        requested_summary, target_account,
    },
    aws::{
        AccountId, AcmApi, AcmWrite, Arn, ArnError, ArnParts, CertRequest, CertificatePem,
        ClassicLb, Connector, DbCluster, DbInstance, ENTRY_TAG, ElbApi, ElbV2Api, ExportedKey,
        HostedZone, IamApi, IamServerCertificate, ListPage, ListenerV2, LoadBalancerV2,
        MAX_LIST_PAGES, Page, PcaApi, PrivateCa, RdsApi, RdsCa, Region, Route53Api, SdkConnector,
        StsApi, Written, ZonePage, all_key_types, arn_location, insecure_endpoint,
        pca_arn_location,
        retry::{
            CallCounts, CallStats, Idempotence, LimiterPool, LocationCalls, RateLimiter,
            RegionLimits, Scope,
        },
    },
    config::{Concurrency, Config, Quotas, RetryPolicy, SyncSettings, Target, expand_regions},
    daemon::{
        AgentOptions, Metrics, anchor_check, ca_maintenance, run as run_agent, serve_metrics,
    },
    discover::{
        Changes, DiscoverOptions, DiscoveryReport, EXPIRY_WARNING_DAYS, Finding, Findings,
        LocationReport, Progress, discover,
    },
    elb::rotate::{
        Elsewhere, Listeners, RotationPlan, Swap, SwapKind, plan_swaps, rotation_apply,
        rotation_plan, rotation_plans,
    },
    error::{ApiError, Error, ErrorKind, Refusal, Result},
    pca::{PcaIssueRequest, PcaIssued, pca_issue, pca_list, signing_algorithm_for},
    rds::{
        CA_WARNING_DAYS, CaFinding, RdsApplied, RdsApplyOptions, RdsAudits, RdsMove, RdsProgress,
        RdsRefusal, RegionAudit, SameAccount, judge, rds_apply, rds_ca_audit, rds_ca_audits,
        rds_moves,
    },
    reconcile::plan::{
        Action, Desired, Observed, ObservedCert, PlanOptions, State, account_problem, plan,
    },
    reconcile::{
        ACM_KEY_TYPES, ACM_MAX_CERTIFICATE, ACM_MAX_CHAIN, ACM_MAX_PRIVATE_KEY, StatusRow,
        SyncOptions, SyncReport, material_problem, not_importable, sync,
    },
    regions::{ACM_REGIONS, AcmRegion, all_regions},
    route53::{PlaceError, PlacedRecord, Placement, place_validation_records, route53_place},
};
