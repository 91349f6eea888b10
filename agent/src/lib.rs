//! certvault's AWS side: configuration of targets, the AWS boundary (traits over
//! aws-sdk-rust, so an in-process fake can stand in), rate limits and retries, and
//! discovery of every certificate in ACM and IAM.
//!
//! ```no_run
//! # async fn run(vault: &mut vault::Vault) -> Result<(), agent::Error> {
//! use agent::{
//!     Config, SdkConnector,
//!     discover::{DiscoverOptions, discover},
//! };
//! let config = Config::default();
//! let targets = config.select(None, Some(&["us-east-1".to_owned(), "eu-west-1".to_owned()]))?;
//! let report = discover(&SdkConnector::default(), vault, &config, &targets, DiscoverOptions::default(), &|_| {}).await?;
//! println!("{} certificates, {} API calls", report.total, report.api_calls.total);
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod acm;
pub mod aws;
pub mod config;
pub mod daemon;
pub mod discover;
pub mod elb;
mod error;
pub mod pca;
mod pem;
pub mod rds;
pub mod reconcile;
pub mod regions;
pub mod route53;
mod tags;

pub use tokio_util::sync::CancellationToken;

pub use crate::{
    aws::{Connector, SdkConnector},
    config::{Config, Target},
    error::{ApiError, Error, ErrorKind, Refusal, Remedy, Result},
};
