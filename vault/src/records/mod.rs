//! What the vault remembers of the world outside it: the ACM certificates it has seen (one
//! row per ARN) and its deployments (entry, target, ARN, state). Each table's SQL lives in
//! its module, every row is MACed, and every change is audited in its transaction. The
//! names these records hold are typed here too: [`Arn`] (the one ARN parser), [`AccountId`],
//! [`Region`].

pub(crate) mod acm;
mod arn;
pub(crate) mod deploy;
mod kinds;

pub use self::{
    acm::{AcmDetail, AcmRecord, AcmSummary, DnsRecord, Location, NameValidation},
    arn::{AccountId, Arn, ArnError, ArnParts, Region, names_an_arn, pca_location, service_of},
    deploy::{Deployment, DeploymentUpdate, ImportMaterial, Imported, pem_certificate_identity},
    kinds::{CertificateStatus, CertificateType, Unrecognized, ValidationMethod},
};
/// The idempotency token of a request to AWS that these records follow (ACM, Private CA).
pub use crate::crypto::idempotency_token;
