//! AWS Private CA: listing the CAs, and issuing a certificate for a key that stays in the
//! vault (a CSR goes out, a certificate and chain come back).

use std::{sync::Arc, time::Duration};

use tokio_util::sync::CancellationToken;

pub(crate) use crate::aws::{PcaApi, pca_arn_location};
use crate::{
    aws::{CertificatePem, Connector, PrivateCa},
    config::{Config, Target},
    error::{ApiError, ErrorKind},
    retry::{CallStats, Idempotence, Scope},
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

fn refuse(region: &str, operation: &'static str, code: &str, message: String) -> ApiError {
    ApiError::local(ErrorKind::Validation, operation, region, code, message)
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
        return Err(refuse(
            "global",
            "IssueCertificate",
            "InvalidArn",
            format!(
                "{} is not an AWS Private CA ARN (arn:aws:acm-pca:REGION:ACCOUNT:certificate-authority/ID)",
                req.ca_arn
            ),
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
        return Err(refuse(
            region,
            "IssueCertificate",
            "AccountMismatch",
            format!(
                "the CA belongs to account {owner}, but target '{}' resolves to account {account}: nothing was asked of it",
                req.target.name
            ),
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
        return Err(refuse(
            region,
            "IssueCertificate",
            "InvalidStateException",
            format!(
                "the CA {} is {}: it issues only when ACTIVE; nothing was issued",
                req.ca_arn, ca.status
            ),
        ));
    }
    let Some(signing) = ca.key_algorithm.as_deref().and_then(signing_algorithm_for) else {
        return Err(refuse(
            region,
            "IssueCertificate",
            "UnknownKeyAlgorithm",
            format!(
                "the CA {} has key algorithm {}, which certvault does not know how to sign with",
                req.ca_arn,
                ca.key_algorithm.as_deref().unwrap_or("(none)")
            ),
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
                    return Err(ApiError {
                        message: format!(
                            "{certificate_arn} was still being issued after {} s ({polls} GetCertificate calls); nothing was stored, and the key made for it is gone, so that certificate can never be used: revoke it (`aws acm-pca revoke-certificate --certificate-authority-arn {} --certificate-serial SERIAL --revocation-reason SUPERSEDED`) and run `certvault pca issue` again",
                            started.elapsed().as_secs(),
                            req.ca_arn
                        ),
                        ..e
                    });
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Every Private CA of a target in its regions, region by region: a region that fails is
/// reported and does not stop the others.
pub async fn pca_list<C: Connector>(
    connector: &C,
    config: &Config,
    target: &Target,
) -> Result<Vec<(String, Result<Vec<PrivateCa>, ApiError>)>, ApiError> {
    let global = Scope::new(
        config.retry,
        Arc::new(CallStats::default()),
        &target.name,
        "global",
        CancellationToken::new(),
    );
    let (session, _account) = global
        .call(None, "GetCallerIdentity", Idempotence::Safe, || {
            connector.connect(target)
        })
        .await?;
    let mut out = Vec::new();
    for region in &target.regions {
        let pca = connector.pca(&session, region);
        let scope = global.in_region(region);
        let mut token = None;
        let mut cas = Vec::new();
        let mut failed = None;
        for _ in 0..crate::aws::MAX_LIST_PAGES {
            match scope
                .call(
                    None,
                    "ListCertificateAuthorities",
                    Idempotence::Safe,
                    || pca.list_cas(token.clone()),
                )
                .await
            {
                Ok(page) => {
                    cas.extend(page.cas);
                    match page.next_token {
                        Some(t) if Some(&t) != token.as_ref() => token = Some(t),
                        _ => break,
                    }
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        out.push((region.clone(), failed.map_or(Ok(cas), Err)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::{ACCOUNT, Fake};

    fn target() -> Target {
        Target {
            name: "default".into(),
            regions: vec!["us-east-1".into()],
            ..Default::default()
        }
    }

    fn csr() -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        rcgen::CertificateParams::new(vec!["svc.internal".to_owned()])
            .unwrap()
            .serialize_request(&key)
            .unwrap()
            .pem()
            .unwrap()
    }

    fn req<'a>(t: &'a Target, ca: &'a str, csr: &'a str, token: &'a str) -> PcaIssueRequest<'a> {
        PcaIssueRequest {
            target: t,
            ca_arn: ca,
            csr_pem: csr,
            validity_days: 90,
            idempotency_token: token,
            timeout: Duration::from_secs(300),
        }
    }

    /// What the emulator cannot do: GetCertificate answering RequestInProgressException.
    #[tokio::test(start_paused = true)]
    async fn get_certificate_is_polled_with_backoff_until_it_is_issued() {
        let fake = Fake::default();
        let ca = fake.add_pca("us-east-1", "ACTIVE");
        fake.state.lock().unwrap().pca_in_progress = 3;
        let (t, csr) = (target(), csr());
        let start = tokio::time::Instant::now();
        let issued = pca_issue(&fake, &Config::default(), req(&t, &ca, &csr, "token-1"))
            .await
            .unwrap();
        assert_eq!(issued.polls, 4);
        assert_eq!(issued.account, ACCOUNT);
        assert!(start.elapsed() >= Duration::from_millis(200 + 400 + 800));
        assert!(issued.pem.certificate.contains("BEGIN CERTIFICATE"));
        assert!(issued.pem.chain.is_some());
        // The same token: the same certificate, not a second one.
        let again = pca_issue(&fake, &Config::default(), req(&t, &ca, &csr, "token-1"))
            .await
            .unwrap();
        assert_eq!(again.certificate_arn, issued.certificate_arn);
        assert_eq!(fake.state.lock().unwrap().pca_issued.len(), 1);

        // Never ready: given up at the timeout, saying it was issued.
        fake.state.lock().unwrap().pca_in_progress = 1_000;
        let e = pca_issue(
            &fake,
            &Config::default(),
            PcaIssueRequest {
                timeout: Duration::from_secs(20),
                ..req(&t, &ca, &csr, "token-2")
            },
        )
        .await
        .unwrap_err();
        assert_eq!(e.code, "RequestInProgressException");
        assert!(e.message.contains("still being issued"), "{e}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_ca_of_another_account_in_another_state_or_not_an_arn_is_refused() {
        let fake = Fake::default();
        let ca = fake.add_pca("us-east-1", "ACTIVE");
        let (t, csr) = (target(), csr());
        fake.state.lock().unwrap().account = Some("999999999999".into());
        let e = pca_issue(&fake, &Config::default(), req(&t, &ca, &csr, "t"))
            .await
            .unwrap_err();
        assert_eq!(e.code, "AccountMismatch", "{e}");
        assert!(e.message.contains(ACCOUNT) && e.message.contains("999999999999"));
        assert_eq!(fake.calls("DescribeCertificateAuthority"), 0);
        fake.state.lock().unwrap().account = None;

        let disabled = fake.add_pca("us-east-1", "DISABLED");
        let e = pca_issue(&fake, &Config::default(), req(&t, &disabled, &csr, "t"))
            .await
            .unwrap_err();
        assert!(e.message.contains("is DISABLED"), "{e}");
        assert_eq!(fake.calls("IssueCertificate"), 0);

        for bad in [
            "arn:aws:acm:us-east-1:123456789012:certificate/x",
            "arn:aws:acm-pca:us-east-1:12345:certificate-authority/x",
            "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/x/certificate/y",
            "arn:aws:acm-pca:us east 1:123456789012:certificate-authority/x",
            "xrn:aws:acm-pca:us-east-1:123456789012:certificate-authority/x",
            "not an arn",
        ] {
            let e = pca_issue(&fake, &Config::default(), req(&t, bad, &csr, "t"))
                .await
                .unwrap_err();
            assert_eq!(e.code, "InvalidArn", "{bad}: {e}");
        }
        assert_eq!(fake.calls("IssueCertificate"), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn the_list_holds_every_ca_of_each_region() {
        let fake = Fake::default();
        let a = fake.add_pca("us-east-1", "ACTIVE");
        let b = fake.add_pca("eu-west-1", "DELETED");
        let t = Target {
            regions: vec!["us-east-1".into(), "eu-west-1".into()],
            ..target()
        };
        let cas = pca_list(&fake, &Config::default(), &t).await.unwrap();
        let got: Vec<(&str, &str, &str)> = cas
            .iter()
            .flat_map(|(r, c)| {
                c.as_ref()
                    .unwrap()
                    .iter()
                    .map(|c| (r.as_str(), c.arn.as_str(), c.status.as_str()))
            })
            .collect();
        assert_eq!(
            got,
            [
                ("us-east-1", a.as_str(), "ACTIVE"),
                ("eu-west-1", b.as_str(), "DELETED")
            ]
        );
    }
}
