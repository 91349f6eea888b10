//! `acm request` and `acm requests`: certificates requested from ACM (public ones validated
//! by DNS or email), followed until they are issued.

use crate::aws::{CertificateStatus, CertificateType, ValidationMethod};
use std::time::Duration;

use vault::{entries::AcmObservation, records::AcmSummary};

use crate::{
    aws::retry::{Idempotence, Scope},
    aws::{AcmApi, AcmWrite, CertRequest, Connector, arn_location},
    config::{Config, Target},
    error::{ApiError, Refusal},
    route53::{PlaceError, PlacedRecord, place_validation_records},
};

/// RequestCertificate in one region of a target: the new certificate's ARN, and the account.
pub async fn acm_request<C: Connector>(
    connector: &C,
    config: &Config,
    target: &Target,
    region: &str,
    req: &CertRequest,
) -> Result<(String, String), ApiError> {
    let (global, session, account) = crate::aws::open(connector, config.retry, target).await?;
    // A private certificate comes from a CA of this account only.
    if let Some(ca) = &req.ca_arn
        && crate::pca::pca_arn_location(ca).map(|(a, _)| a) != Some(account.as_str())
    {
        return Err(ApiError::refused(
            "RequestCertificate",
            region,
            Refusal::CaOfAnotherAccount {
                ca: ca.to_owned(),
                account,
                target: target.name.clone(),
            },
        ));
    }
    let acm = connector.acm(&session, region);
    // Safe to repeat: the idempotency token makes a repeated call the same request.
    let arn = global
        .in_region(region)
        .call(None, "RequestCertificate", Idempotence::Safe, || {
            acm.request_certificate(req)
        })
        .await?;
    if arn_location(&arn).map(|(a, _)| a) != Some(account.as_str()) {
        return Err(ApiError::refused(
            "RequestCertificate",
            region,
            Refusal::UnexpectedArn { arn, account },
        ));
    }
    Ok((arn, account))
}

/// The account a target's credentials resolve to (GetCallerIdentity): what `deploy` asks
/// before it records anything, so a deployment that could never reach AWS (no credentials,
/// no network) is not recorded. A failure says why; `NoCredentials` when none were found.
pub async fn target_account<C: Connector>(
    connector: &C,
    config: &Config,
    target: &Target,
) -> Result<String, ApiError> {
    let (_, _, account) = crate::aws::open(connector, config.retry, target).await?;
    Ok(account)
}

/// What ACM says of a certificate now (DescribeCertificate; GetCertificate once issued),
/// asked only of the account its ARN names.
pub async fn acm_observe<C: Connector>(
    connector: &C,
    config: &Config,
    target: &Target,
    arn: &str,
) -> Result<(AcmObservation, String), ApiError> {
    let (account, mut seen) = acm_observe_many(
        connector,
        config,
        target,
        std::slice::from_ref(&arn.to_owned()),
        None,
    )
    .await?;
    Ok((seen.remove(0)?, account))
}

/// What ACM says of a certificate now, DescribeCertificate only (its status, names, users,
/// validation): for a question that needs no PEM. Asked only of the account its ARN names.
pub async fn acm_describe<C: Connector>(
    connector: &C,
    config: &Config,
    target: &Target,
    arn: &str,
) -> Result<(AcmObservation, String), ApiError> {
    let (global, session, account) = crate::aws::open(connector, config.retry, target).await?;
    let obs = describe_with(connector, &global, &session, &account, target, arn, false).await?;
    Ok((obs, account))
}

/// The same for several certificates of one target: its credentials are resolved once, and
/// one certificate's failure is its own (the others are still observed). The account, and a
/// result per ARN, in order. With a `deadline`, nothing is asked after it and a call still
/// unanswered at it is given up (that certificate fails with `Timeout`): the whole work
/// ends by then, however slowly AWS answers.
pub async fn acm_observe_many<C: Connector>(
    connector: &C,
    config: &Config,
    target: &Target,
    arns: &[String],
    deadline: Option<tokio::time::Instant>,
) -> Result<(String, Vec<Result<AcmObservation, ApiError>>), ApiError> {
    let timed_out = |operation: &'static str, region: &str, refusal: Refusal| {
        ApiError::refused(operation, region, refusal)
    };
    let far = tokio::time::Instant::now() + std::time::Duration::from_secs(100 * 365 * 86_400);
    let deadline_or_far = deadline.unwrap_or(far);
    let (global, session, account) = tokio::time::timeout_at(
        deadline_or_far,
        crate::aws::open(connector, config.retry, target),
    )
    .await
    .map_err(|_| timed_out("GetCallerIdentity", "global", Refusal::NoAnswerInTime))??;
    let mut out = Vec::with_capacity(arns.len());
    for arn in arns {
        let region = arn_location(arn).map_or("global", |(_, r)| r);
        if tokio::time::Instant::now() >= deadline_or_far {
            out.push(Err(timed_out(
                "DescribeCertificate",
                region,
                Refusal::NotAskedInTime,
            )));
            continue;
        }
        out.push(
            tokio::time::timeout_at(
                deadline_or_far,
                observe_with(connector, &global, &session, &account, target, arn),
            )
            .await
            .unwrap_or_else(|_| {
                Err(timed_out(
                    "DescribeCertificate",
                    region,
                    Refusal::NoAnswerInTime,
                ))
            }),
        );
    }
    Ok((account, out))
}

/// Describes (and, once issued, gets) one certificate with credentials already resolved to
/// `account`, if its ARN names that account.
pub(crate) async fn observe_with<C: Connector>(
    connector: &C,
    global: &Scope,
    session: &C::Session,
    account: &str,
    target: &Target,
    arn: &str,
) -> Result<AcmObservation, ApiError> {
    describe_with(connector, global, session, account, target, arn, true).await
}

/// Describes one certificate (and with `read`, once issued, gets it), as [`observe_with`].
async fn describe_with<C: Connector>(
    connector: &C,
    global: &Scope,
    session: &C::Session,
    account: &str,
    target: &Target,
    arn: &str,
    read: bool,
) -> Result<AcmObservation, ApiError> {
    let (owner, region) = crate::aws::acm_location("DescribeCertificate", arn)?;
    if account != owner {
        return Err(ApiError::refused(
            "DescribeCertificate",
            region,
            Refusal::AccountDiffers {
                what: format!("{arn} belongs to"),
                expected: owner.to_owned(),
                target: target.name.clone(),
                found: account.to_owned(),
                now: true,
                nothing: "nothing was asked of ACM",
            },
        ));
    }
    let acm = connector.acm(session, region);
    let scope = global.in_region(region);
    let (summary, detail) = scope
        .call(None, "DescribeCertificate", Idempotence::Safe, || {
            acm.describe_certificate(arn)
        })
        .await?;
    let certificate = if read && summary.status == CertificateStatus::Issued {
        let pem = scope
            .call(None, "GetCertificate", Idempotence::Safe, || {
                acm.get_certificate(arn)
            })
            .await?;
        Some(crate::pem::bundle_from(arn, &pem).map_err(|e| {
            ApiError::refused(
                "GetCertificate",
                region,
                Refusal::UnreadableCertificate {
                    arn: arn.to_owned(),
                    reason: e.to_string(),
                },
            )
        })?)
    } else {
        None
    };
    Ok(AcmObservation {
        summary,
        detail: Some(detail),
        certificate,
    })
}

/// Describes a new request until ACM has produced its DNS validation records (or it is no
/// longer pending, or it is not DNS-validated), with backoff (1 s, doubling, at most 8 s),
/// for up to `wait`; credentials are resolved once.
pub async fn acm_wait_for_records<C: Connector>(
    connector: &C,
    config: &Config,
    target: &Target,
    arn: &str,
    names: usize,
    wait: Duration,
) -> Result<(AcmObservation, String), ApiError> {
    let (global, session, account) = crate::aws::open(connector, config.retry, target).await?;
    let started = tokio::time::Instant::now();
    let mut pause = Duration::from_secs(1);
    loop {
        let obs = observe_with(connector, &global, &session, &account, target, arn).await?;
        let detail = obs.detail.as_ref();
        let dns = detail.and_then(|d| d.validation_method.as_ref()) == Some(&ValidationMethod::Dns);
        let ready = obs.summary.status != CertificateStatus::PendingValidation
            || !dns
            || detail.is_some_and(|d| d.validation_records.len() >= names);
        if ready || started.elapsed() + pause > wait {
            return Ok((obs, account));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(8));
    }
}

/// A summary of a request just made, for the vault to record at once (before anything
/// else is asked of ACM).
pub fn requested_summary(arn: &str, req: &CertRequest) -> AcmSummary {
    AcmSummary {
        arn: arn.to_owned(),
        kind: if req.ca_arn.is_some() {
            CertificateType::Private
        } else {
            CertificateType::AmazonIssued
        },
        status: CertificateStatus::PendingValidation,
        domain: req.domain.clone(),
        sans: std::iter::once(req.domain.clone())
            .chain(req.sans.iter().cloned())
            .collect(),
        key_algorithm: req.key_algorithm.clone(),
        ..Default::default()
    }
}

/// The five addresses ACM writes to for a domain (WHOIS contacts are not used since 2024).
pub fn validation_addresses(domain: &str) -> Vec<String> {
    let base = domain.strip_prefix("*.").unwrap_or(domain);
    [
        "admin",
        "administrator",
        "hostmaster",
        "postmaster",
        "webmaster",
    ]
    .iter()
    .map(|u| format!("{u}@{base}"))
    .collect()
}

/// One request to send: where, what, the words of its audit event, and how long to wait for
/// ACM's DNS records.
#[derive(Debug, Clone, Copy)]
pub struct Submission<'a> {
    /// The target whose credentials to use.
    pub target: &'a Target,
    /// The region.
    pub region: &'a str,
    /// What RequestCertificate is asked.
    pub request: &'a CertRequest,
    /// What the `acm-request` audit event says the request was.
    pub audit: &'a str,
    /// How long to wait for ACM's DNS validation records.
    pub wait: Duration,
}

/// A request sent, recorded, and followed once.
#[derive(Debug, Clone)]
pub struct Submitted {
    /// The new certificate's ARN.
    pub arn: String,
    /// The account it was requested in.
    pub account: String,
    /// What ACM said after the request (`PENDING_VALIDATION` when it could not be read).
    pub status: CertificateStatus,
    /// What ACM said of it (empty when it could not be read).
    pub detail: vault::records::AcmDetail,
    /// The entry an issued certificate became.
    pub entry: Option<String>,
    /// Why ACM's answer about it could not be read yet, if it could not (the request is
    /// made and recorded all the same).
    pub unread: Option<ApiError>,
}

/// Sends a request and records it in the vault at once (audited `acm-request`), then
/// describes it (waiting up to `wait` for DNS records) and records what ACM says: an issued
/// certificate becomes an entry.
pub async fn submit<C: Connector>(
    connector: &C,
    v: &mut vault::Vault,
    config: &Config,
    s: Submission<'_>,
) -> super::Result<Submitted> {
    let (target, region, req) = (s.target, s.region, s.request);
    let (arn, account) = acm_request(connector, config, target, region, req)
        .await
        .map_err(|e| super::Error::NotRequested(Box::new(e)))?;
    // Recorded at once: whatever happens next, the vault knows this request.
    let location = vault::records::Location {
        target: target.name.clone(),
        account: account.clone(),
        region: region.to_owned(),
    };
    v.record_acm_scan(
        &location,
        vec![AcmObservation {
            summary: requested_summary(&arn, req),
            // How it is validated is known from the request itself.
            detail: req.validation.as_ref().map(|m| vault::records::AcmDetail {
                validation_method: Some(m.clone()),
                ..Default::default()
            }),
            certificate: None,
        }],
        false,
    )?;
    v.record_event(
        "acm-request",
        None,
        &format!(
            "requested {arn} in {region}, account {account}: {}",
            s.audit
        ),
    )?;
    let names = 1 + req.sans.len();
    let observed = acm_wait_for_records(connector, config, target, &arn, names, s.wait).await;
    let (status, detail, entry, unread) = match observed {
        Ok((obs, _)) => {
            let status = obs.summary.status.clone();
            let detail = obs.detail.clone().unwrap_or_default();
            let outcome = v.record_acm_scan(&location, vec![obs], false)?;
            (status, detail, outcome.created.first().cloned(), None)
        }
        Err(e) => (
            CertificateStatus::PendingValidation,
            vault::records::AcmDetail::default(),
            None,
            Some(e),
        ),
    };
    Ok(Submitted {
        arn,
        account,
        status,
        detail,
        entry,
        unread,
    })
}

/// Creates (UPSERT) a request's DNS validation records in Route 53 with `target`'s
/// credentials (only if they still resolve to the request's `account`); each zone written
/// is an audit event (`route53-records`, see [`place_validation_records`]). What became of
/// each record.
pub async fn place_records<C: Connector>(
    connector: &C,
    v: &mut vault::Vault,
    config: &Config,
    target: &Target,
    account: &str,
    arn: &str,
    records: &[vault::records::DnsRecord],
) -> super::Result<Vec<PlacedRecord>> {
    place_validation_records(connector, v, config, target, account, arn, records)
        .await
        .map_err(|e| match e {
            PlaceError::Route53(e) => super::Error::NotPlaced(Box::new(e)),
            PlaceError::Vault(e) => e.into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::fake::{ACCOUNT, Fake};

    fn target() -> Target {
        Target {
            name: "default".into(),
            regions: vec!["us-east-1".into()],
            ..Default::default()
        }
    }

    fn request(token: &str) -> CertRequest {
        CertRequest {
            domain: "www.example.com".into(),
            sans: vec!["example.com".into()],
            validation: Some("DNS".into()),
            token: token.into(),
            ..Default::default()
        }
    }

    /// What the emulator cannot do: a request that stays pending, then is issued, fails
    /// or times out (the emulator issues at once).
    #[tokio::test(start_paused = true)]
    async fn a_request_is_one_certificate_and_is_followed_to_its_end() {
        let fake = Fake::default();
        let t = target();
        let (arn, account) =
            acm_request(&fake, &Config::default(), &t, "us-east-1", &request("tok1"))
                .await
                .unwrap();
        assert_eq!(account, ACCOUNT);
        // The same token: the same certificate.
        let (again, _) = acm_request(&fake, &Config::default(), &t, "us-east-1", &request("tok1"))
            .await
            .unwrap();
        assert_eq!(again, arn);
        assert_eq!(fake.certs("us-east-1").len(), 1);

        let (obs, _) = acm_wait_for_records(
            &fake,
            &Config::default(),
            &t,
            &arn,
            2,
            Duration::from_secs(60),
        )
        .await
        .unwrap();
        assert_eq!(obs.summary.status, CertificateStatus::PendingValidation);
        let records = &obs.detail.as_ref().unwrap().validation_records;
        assert_eq!(records.len(), 2, "{records:?}");
        assert!(records.iter().all(|r| r.record_type == "CNAME"));
        let names: Vec<(&str, Option<&str>)> = obs
            .detail
            .as_ref()
            .unwrap()
            .names
            .iter()
            .map(|n| (n.domain.as_str(), n.status.as_deref()))
            .collect();
        assert_eq!(
            names,
            [
                ("www.example.com", Some("PENDING_VALIDATION")),
                ("example.com", Some("PENDING_VALIDATION"))
            ]
        );
        assert!(obs.certificate.is_none());

        for (status, reason) in [
            ("FAILED", Some("CAA_ERROR")),
            ("VALIDATION_TIMED_OUT", None),
        ] {
            fake.state
                .lock()
                .unwrap()
                .certs
                .get_mut("us-east-1")
                .unwrap()[0]
                .summary
                .status = status.into();
            fake.state
                .lock()
                .unwrap()
                .certs
                .get_mut("us-east-1")
                .unwrap()[0]
                .detail
                .failure_reason = reason.map(str::to_owned);
            let (obs, _) = acm_observe(&fake, &Config::default(), &t, &arn)
                .await
                .unwrap();
            assert_eq!(obs.summary.status.as_str(), status);
            assert_eq!(obs.detail.unwrap().failure_reason.as_deref(), reason);
        }

        // Several at once: one ARN that is not this account's (or not an ARN) fails alone.
        let foreign = arn.replace(ACCOUNT, "999999999999");
        let arns = [foreign, "not an arn".to_owned(), arn.clone()];
        let (account, seen) = acm_observe_many(&fake, &Config::default(), &t, &arns, None)
            .await
            .unwrap();
        assert_eq!(account, ACCOUNT);
        assert!(matches!(
            seen[0].as_ref().unwrap_err().refusal(),
            Some(crate::error::Refusal::AccountDiffers { .. })
        ));
        assert!(matches!(
            seen[1].as_ref().unwrap_err().refusal(),
            Some(crate::error::Refusal::InvalidArn { .. })
        ));
        assert_eq!(seen[2].as_ref().unwrap().summary.arn, arn);

        // Another account now behind the credentials: nothing is asked of ACM.
        fake.state.lock().unwrap().account = Some("999999999999".into());
        let describes = fake.calls("DescribeCertificate");
        let e = acm_observe(&fake, &Config::default(), &t, &arn)
            .await
            .unwrap_err();
        assert!(
            matches!(
                e.refusal(),
                Some(crate::error::Refusal::AccountDiffers { .. })
            ),
            "{e}"
        );
        assert_eq!(fake.calls("DescribeCertificate"), describes);
    }
}
