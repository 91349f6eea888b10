//! certvault's AWS side: configuration of targets, the AWS boundary (traits over
//! aws-sdk-rust, so an in-process fake can stand in), rate limits and retries, and
//! discovery of every certificate in ACM and IAM.
//!
//! ```no_run
//! # async fn run(vault: &mut vault::Vault) -> Result<(), agent::Error> {
//! use agent::{Config, DiscoverOptions, SdkConnector, discover};
//! let config = Config::default();
//! let targets = config.select(None, Some(&["us-east-1".to_owned(), "eu-west-1".to_owned()]))?;
//! let report = discover(&SdkConnector, vault, &config, &targets, DiscoverOptions::default(), &|_| {}).await?;
//! println!("{} certificates, {} API calls", report.total, report.api_calls.total);
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod aws;
mod config;
mod daemon;
mod discover;
mod error;
#[cfg(test)]
mod fake;
mod plan;
mod reconcile;
mod regions;
mod retry;

pub use crate::{
    aws::{
        AcmApi, AcmWrite, CertificatePem, Connector, ENTRY_TAG, IamApi, IamServerCertificate,
        ListPage, SdkConnector, all_key_types,
    },
    config::{Concurrency, Config, Quotas, Target, expand_regions},
    daemon::{Metrics, run as run_agent, serve_metrics},
    discover::{
        Changes, DiscoverOptions, DiscoveryReport, EXPIRY_WARNING_DAYS, Finding, Findings,
        LocationReport, Progress, discover,
    },
    error::{ApiError, Error, ErrorKind, Result},
    plan::{Action, Desired, Observed, ObservedCert, PlanOptions, State, plan},
    reconcile::{
        ACM_KEY_TYPES, StatusRow, SyncOptions, SyncReport, delete_from_acm, not_importable, sync,
    },
    regions::{ACM_REGIONS, AcmRegion, all_regions},
    retry::{CallCounts, CallStats, RateLimiter, RetryPolicy, with_retry},
};
