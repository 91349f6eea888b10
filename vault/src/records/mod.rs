//! What the vault remembers of the world outside it: the ACM certificates it has seen (one
//! row per ARN) and its deployments (entry, target, ARN, state). Each table's SQL lives in
//! its module, every row is MACed, and every change is audited in its transaction.

pub(crate) mod acm;
pub(crate) mod deploy;

pub use self::{
    acm::{AcmDetail, AcmRecord, AcmSummary, DnsRecord, Location, NameValidation},
    deploy::{Deployment, DeploymentUpdate, ImportMaterial, Imported, pem_certificate_identity},
};
/// The idempotency token of a request to AWS that these records follow (ACM, Private CA).
pub use crate::crypto::idempotency_token;
