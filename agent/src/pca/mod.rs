//! AWS Private CA: listing the CAs ([`list`]), and issuing a certificate for a key that
//! stays in the vault ([`issue`]: a CSR goes out, a certificate and chain come back, and the
//! vault stores them). Every call goes only to the account the CA's ARN names; a wait is
//! tokio time, bounded by the timeout asked for.

pub(crate) use crate::aws::{PcaApi, PrivateCa, pca_arn_location};

mod issue;
mod list;
#[cfg(test)]
mod tests;

pub use issue::{
    PcaIssueRequest, PcaIssued, StoreError, Stored, issue_and_store, pca_issue,
    signing_algorithm_for,
};
pub use list::{ListFailure, ListedCa, list_all, pca_list};
