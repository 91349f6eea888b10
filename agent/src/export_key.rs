//! `acm export-key`: the private key of a certificate ACM holds (a private certificate, or a
//! public one requested as exportable), brought into the vault.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::{
    aws::{AcmWrite, Connector, ExportedKey, arn_location},
    config::{Config, Target},
    error::{ApiError, ErrorKind},
    retry::{CallStats, Idempotence, Scope},
};

/// What to export.
#[derive(Debug, Clone, Copy)]
pub struct ExportKeyRequest<'a> {
    /// The target whose credentials to use.
    pub target: &'a Target,
    /// The certificate.
    pub arn: &'a str,
    /// The account the vault recorded for it, if it did.
    pub account: Option<&'a str>,
    /// The passphrase ACM encrypts the key with (used once, made in memory).
    pub passphrase: &'a vault::Passphrase,
}

/// Calls ExportCertificate, only in the account recorded for the certificate and named by
/// its ARN. Not retried after a lost answer: AWS charges for each export.
pub async fn acm_export_key<C: Connector>(
    connector: &C,
    config: &Config,
    req: ExportKeyRequest<'_>,
) -> Result<(ExportedKey, String), ApiError> {
    let Some((owner, region)) = arn_location(req.arn) else {
        return Err(ApiError::local(
            ErrorKind::Validation,
            "ExportCertificate",
            "global",
            "InvalidArn",
            format!("{} is not an ACM certificate ARN", req.arn),
        ));
    };
    let global = Scope::new(
        config.retry,
        Arc::new(CallStats::default()),
        &req.target.name,
        "global",
        CancellationToken::new(),
    );
    let (session, account) = global
        .call(None, "GetCallerIdentity", Idempotence::Safe, || {
            connector.connect(req.target)
        })
        .await?;
    for (what, expected) in [
        ("the vault recorded the certificate in", req.account),
        ("the ARN belongs to", Some(owner)),
    ] {
        if let Some(expected) = expected
            && expected != account
        {
            return Err(ApiError::local(
                ErrorKind::Validation,
                "ExportCertificate",
                region,
                "AccountMismatch",
                format!(
                    "{what} account {expected}, but target '{}' now resolves to account {account}: nothing was asked of ACM",
                    req.target.name
                ),
            ));
        }
    }
    let acm = connector.acm(&session, region);
    let exported = global
        .in_region(region)
        .call(None, "ExportCertificate", Idempotence::Unsafe, || {
            acm.export_certificate(req.arn, req.passphrase)
        })
        .await?;
    Ok((exported, account))
}
