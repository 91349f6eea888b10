//! The AWS boundary: the one module that talks to the AWS SDK.
//!
//! It owns a small trait per service for what certvault asks of it ([`AcmApi`] and
//! [`AcmWrite`], [`IamApi`], [`StsApi`], [`PcaApi`], [`Route53Api`], [`ElbV2Api`] and
//! [`ElbApi`], [`RdsApi`]), the value types those traits speak in, their implementation over
//! aws-sdk-rust (`Sdk*`), the sessions that make the clients ([`Connector`],
//! [`SdkConnector`]), the classification of what AWS answered into an
//! [`ApiError`](crate::ApiError), client-side rate limits and retries ([`retry`]), paging
//! ([`paging`]) and, for tests, an in-process fake behind the same traits (`fake`).
//!
//! It promises: every call to AWS goes through these traits, so the fake can stand in for
//! what the emulator cannot do; nothing here names a workflow (the workflows import `aws`,
//! never the reverse); no private key goes to a plain-HTTP endpoint on another machine
//! unless the connector was told it may; an SDK error reads as
//! `Operation in region: Code: message`, never as a `Debug` dump.

mod acm;
mod classify;
mod connect;
mod elb;
#[cfg(test)]
pub(crate) mod fake;
mod iam;
pub(crate) mod paging;
mod pca;
mod rds;
pub mod retry;
mod route53;
mod sts;

use time::OffsetDateTime;

pub(crate) use self::{
    acm::SdkAcm,
    classify::classify,
    connect::{connect_as, connect_within, open, scope_for},
    elb::{SdkElb, SdkElbV2},
    iam::SdkIam,
    paging::all_pages,
    pca::SdkPca,
    rds::SdkRds,
    route53::SdkRoute53,
    route53::plain,
    sts::SdkSts,
};
/// The typed names of AWS (one parser), from the vault where the records use them.
pub use vault::records::{
    AccountId, Arn, ArnError, ArnParts, CertificateStatus, CertificateType, Region,
    ValidationMethod, names_an_arn, service_of,
};

pub use self::{
    acm::{
        AcmApi, AcmWrite, CertRequest, ENTRY_TAG, ExportedKey, Written, acm_location,
        all_key_types, arn_location,
    },
    connect::{Connector, SdkConnector, Target, insecure_endpoint},
    elb::{ClassicLb, ElbApi, ElbV2Api, ListenerV2, LoadBalancerV2},
    iam::{IamApi, IamServerCertificate},
    paging::{ListPage, MAX_LIST_PAGES, Page},
    pca::{PcaApi, PrivateCa, pca_arn_location},
    rds::{DbCluster, DbInstance, RdsApi, RdsCa},
    route53::{HostedZone, Route53Api, ZonePage},
    sts::StsApi,
};

/// A certificate and its chain as ACM, IAM or Private CA hand them out (PEM).
#[derive(Debug, Clone)]
pub struct CertificatePem {
    /// The certificate.
    pub certificate: String,
    /// The chain, if any.
    pub chain: Option<String>,
}

/// A time as the SDK gives it, to the second (`None` if absent or out of range).
fn time_of(t: Option<&aws_smithy_types::DateTime>) -> Option<OffsetDateTime> {
    t.and_then(|t| OffsetDateTime::from_unix_timestamp(t.secs()).ok())
}
