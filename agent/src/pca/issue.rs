//! `pca issue`: a certificate issued by an AWS Private CA for a key that stays in the vault
//! (a CSR goes out, a certificate and chain come back), waited for with tokio time.

use std::{sync::Arc, time::Duration};

use tokio_util::sync::CancellationToken;

use super::{PcaApi, pca_arn_location};
use crate::{
    aws::retry::{CallStats, Idempotence, Scope},
    aws::{CertificatePem, Connector},
    config::{Config, Target},
    error::{ApiError, Refusal},
};

/// The signature algorithm for a CA's key algorithm.
pub fn signing_algorithm_for(key_algorithm: &str) -> Option<&'static str> {
    match key_algorithm {
        "EC_prime256v1" => Some("SHA256WITHECDSA"),
        "EC_secp384r1" => Some("SHA384WITHECDSA"),
        "EC_secp521r1" => Some("SHA512WITHECDSA"),
        k if k.starts_with("RSA_") => Some("SHA256WITHRSA"),
        _ => None,
    }
}

/// What `pca issue` asks for.
#[derive(Debug, Clone, Copy)]
pub struct PcaIssueRequest<'a> {
    /// The target whose credentials to use.
    pub target: &'a Target,
    /// The CA.
    pub ca_arn: &'a str,
    /// The CSR, PEM (the key stays in the vault).
    pub csr_pem: &'a str,
    /// Validity in days.
    pub validity_days: i64,
    /// Derived from the request: a retry can never make two certificates.
    pub idempotency_token: &'a str,
    /// How long to wait for the certificate.
    pub timeout: Duration,
}

/// What came back.
#[derive(Debug, Clone)]
pub struct PcaIssued {
    /// The certificate's ARN.
    pub certificate_arn: String,
    /// The certificate and chain.
    pub pem: CertificatePem,
    /// How many GetCertificate calls it took.
    pub polls: u32,
    /// The CA's account.
    pub account: String,
}

/// Issues a certificate from an AWS Private CA for a CSR, only in the account the CA's ARN
/// names, and waits for it: GetCertificate is polled with backoff (0.2 s, doubling, at
/// most 5 s) while it answers RequestInProgressException, up to the timeout.
pub async fn pca_issue<C: Connector>(
    connector: &C,
    config: &Config,
    req: PcaIssueRequest<'_>,
) -> Result<PcaIssued, ApiError> {
    let Some((owner, region)) = pca_arn_location(req.ca_arn) else {
        return Err(ApiError::refused(
            "IssueCertificate",
            "global",
            Refusal::InvalidCaArn {
                arn: req.ca_arn.to_owned(),
            },
        ));
    };
    let stats = Arc::new(CallStats::default());
    let global = Scope::new(
        config.retry,
        stats,
        &req.target.name,
        "global",
        CancellationToken::new(),
    );
    let (session, account) = global
        .call(None, "GetCallerIdentity", Idempotence::Safe, || {
            connector.connect(req.target)
        })
        .await?;
    if account != owner {
        return Err(ApiError::refused(
            "IssueCertificate",
            region,
            Refusal::AccountDiffers {
                what: "the CA belongs to".into(),
                expected: owner.to_owned(),
                target: req.target.name.clone(),
                found: account,
                now: false,
                nothing: "nothing was asked of it",
            },
        ));
    }
    let pca = connector.pca(&session, region);
    let scope = global.in_region(region);
    let ca = scope
        .call(
            None,
            "DescribeCertificateAuthority",
            Idempotence::Safe,
            || pca.describe_ca(req.ca_arn),
        )
        .await?;
    // A CA that cannot sign is told apart before anything is sent (AWS would answer
    // InvalidStateException). PENDING_CERTIFICATE is let through: the emulator leaves a
    // new CA there and signs all the same; AWS refuses it with its own words.
    if !matches!(ca.status.as_str(), "ACTIVE" | "PENDING_CERTIFICATE") {
        return Err(ApiError::refused(
            "IssueCertificate",
            region,
            Refusal::CaNotActive {
                ca: req.ca_arn.to_owned(),
                status: ca.status.clone(),
            },
        ));
    }
    let Some(signing) = ca.key_algorithm.as_deref().and_then(signing_algorithm_for) else {
        return Err(ApiError::refused(
            "IssueCertificate",
            region,
            Refusal::UnknownKeyAlgorithm {
                ca: req.ca_arn.to_owned(),
                algorithm: ca.key_algorithm.clone(),
            },
        ));
    };
    // Safe to repeat: the idempotency token returns the same certificate.
    let certificate_arn = scope
        .call(None, "IssueCertificate", Idempotence::Safe, || {
            pca.issue(
                req.ca_arn,
                req.csr_pem,
                signing,
                req.validity_days,
                req.idempotency_token,
            )
        })
        .await?;
    let started = tokio::time::Instant::now();
    let mut pause = Duration::from_millis(200);
    let mut polls = 0;
    loop {
        polls += 1;
        match scope
            .call(None, "GetCertificate", Idempotence::Safe, || {
                pca.get(req.ca_arn, &certificate_arn)
            })
            .await
        {
            Ok(pem) => {
                return Ok(PcaIssued {
                    certificate_arn,
                    pem,
                    polls,
                    account,
                });
            }
            Err(e) if e.code == "RequestInProgressException" => {
                if started.elapsed() + pause > req.timeout {
                    let refused = ApiError::refused(
                        e.operation,
                        &e.region,
                        Refusal::StillIssuing {
                            certificate: certificate_arn,
                            ca: req.ca_arn.to_owned(),
                            waited_s: started.elapsed().as_secs(),
                            polls,
                        },
                    );
                    return Err(ApiError {
                        attempts: e.attempts,
                        request_id: e.request_id,
                        ..refused
                    });
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(e),
        }
    }
}

/// What storing a certificate from AWS Private CA can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The vault refused something.
    #[error(transparent)]
    Vault(#[from] vault::Error),
    /// The configuration (a target, a region) refused something.
    #[error(transparent)]
    Agent(#[from] crate::Error),
    /// AWS Private CA did not issue it (or it was refused before anything was sent).
    #[error("nothing was stored")]
    NotStored(#[source] ApiError),
}

/// A certificate issued by AWS Private CA and stored in the vault with the key made there.
#[derive(Debug, Clone)]
pub struct Stored {
    /// What the vault stored.
    pub stored: vault::ca::pca::PcaStored,
    /// How many GetCertificate calls it took.
    pub polls: u32,
    /// How long it took, from the first call (tokio time).
    pub took: Duration,
}

/// Sends the CSR of `pending` (a key made in the vault by `pca_prepare` or
/// `pca_prepare_renewal`) to its CA through `target`, waits for the certificate up to
/// `timeout`, and stores it in the vault (audited there) as the entry's new version.
pub async fn issue_and_store<C: Connector>(
    connector: &C,
    v: &mut vault::Vault,
    config: &Config,
    target: &Target,
    pending: vault::ca::pca::PcaPending,
    timeout: Duration,
) -> Result<Stored, StoreError> {
    let started = tokio::time::Instant::now();
    let req = PcaIssueRequest {
        target,
        ca_arn: pending.ca_arn(),
        csr_pem: &pending.csr_pem,
        validity_days: pending.validity_days(),
        idempotency_token: &pending.idempotency_token,
        timeout,
    };
    let issued = pca_issue(connector, config, req)
        .await
        .map_err(StoreError::NotStored)?;
    let stored = v.pca_store(
        pending,
        &issued.certificate_arn,
        &issued.pem.certificate,
        issued.pem.chain.as_deref(),
    )?;
    Ok(Stored {
        stored,
        polls: issued.polls,
        took: started.elapsed(),
    })
}

impl StoreError {
    /// What a person can do about it, if something (see [`crate::Remedy`]).
    pub fn remedy(&self) -> Option<crate::Remedy> {
        match self {
            StoreError::Vault(e) => e.remedy().map(crate::Remedy::Vault),
            StoreError::Agent(e) => e.remedy(),
            _ => None,
        }
    }
}
