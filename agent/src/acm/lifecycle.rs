//! `acm renew` and `acm revoke`: renewing a private certificate ACM holds
//! (RenewCertificate), and revoking a private certificate with the AWS Private CA that
//! issued it (RevokeCertificate), each only in the account the vault recorded.

use crate::aws::{CertificateStatus, CertificateType, ValidationMethod};
use std::time::Duration;

use vault::entries::AcmObservation;

use crate::{
    acm::request::observe_with,
    aws::retry::Idempotence,
    aws::{AcmWrite, Connector},
    config::{Config, Target},
    error::{ApiError, Refusal},
    pca::{PcaApi, pca_arn_location},
};

/// RevokeCertificate: the certificate with `serial_hex` (colon-separated octets) issued by
/// `ca_arn`, with `target`'s credentials, only if they resolve to the CA's account. A
/// certificate revoked already counts as revoked. The account.
pub async fn pca_revoke<C: Connector>(
    connector: &C,
    config: &Config,
    target: &Target,
    ca_arn: &str,
    serial_hex: &str,
    reason: &str,
) -> Result<String, ApiError> {
    let Some((owner, region)) = pca_arn_location(ca_arn) else {
        return Err(ApiError::refused(
            "RevokeCertificate",
            "global",
            Refusal::InvalidCaArnToRevoke {
                arn: ca_arn.to_owned(),
            },
        ));
    };
    let global = crate::aws::scope_for(config.retry, target);
    let what = format!("the CA {ca_arn} belongs to");
    let (session, account) = crate::aws::connect_as(
        connector,
        &global,
        target,
        Some((owner, &what)),
        "RevokeCertificate",
        region,
    )
    .await?;
    let pca = connector.pca(&session, region);
    // Safe to repeat: a second revocation of the same serial is answered
    // RequestAlreadyProcessedException, which means it is revoked.
    match global
        .in_region(region)
        .call(None, "RevokeCertificate", Idempotence::Safe, || {
            pca.revoke(ca_arn, serial_hex, reason)
        })
        .await
    {
        Ok(()) => Ok(account),
        Err(e) if e.code == "RequestAlreadyProcessedException" => Ok(account),
        Err(e) => Err(e),
    }
}

/// What `acm renew` saw: the certificate before, and after (the same serial when ACM has
/// not renewed it within the wait).
#[derive(Debug)]
pub struct Renewed {
    /// Before RenewCertificate.
    pub before: AcmObservation,
    /// The last look after it.
    pub after: AcmObservation,
    /// The account.
    pub account: String,
}

/// RenewCertificate for a private certificate ACM holds (the caller checked it is
/// eligible), with `target`'s credentials, only in the account the ARN names; then
/// DescribeCertificate (and GetCertificate) with backoff until ACM holds a certificate with
/// another serial, for up to `wait`.
pub async fn acm_renew<C: Connector>(
    connector: &C,
    config: &Config,
    target: &Target,
    arn: &str,
    wait: Duration,
) -> Result<Renewed, ApiError> {
    let (_, region) = crate::aws::acm_location("RenewCertificate", arn)?;
    let (global, session, account) = crate::aws::open(connector, config.retry, target).await?;
    // Checks the ARN's account against the session's before anything is asked.
    let before = observe_with(connector, &global, &session, &account, target, arn).await?;
    if before.summary.kind != CertificateType::Private
        || before.summary.renewal_eligibility.as_deref() != Some("ELIGIBLE")
    {
        return Err(ApiError::refused(
            "RenewCertificate",
            region,
            Refusal::NotEligible {
                arn: arn.to_owned(),
                kind: before.summary.kind.clone(),
                eligibility: before.summary.renewal_eligibility.clone(),
            },
        ));
    }
    let serial = |o: &AcmObservation| o.detail.as_ref().and_then(|d| d.serial.clone());
    let acm = connector.acm(&session, region);
    // Safe to repeat: a renewal asked twice is one renewal.
    global
        .in_region(region)
        .call(None, "RenewCertificate", Idempotence::Safe, || {
            acm.renew_certificate(arn)
        })
        .await?;
    let started = tokio::time::Instant::now();
    let mut pause = Duration::from_secs(2);
    loop {
        let after = observe_with(connector, &global, &session, &account, target, arn).await?;
        let renewed = serial(&after) != serial(&before) && after.certificate.is_some();
        if renewed || started.elapsed() + pause > wait {
            return Ok(Renewed {
                before,
                after,
                account,
            });
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(15));
    }
}

/// What `acm renew` or `acm revoke` was asked to do (in refusals).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Doing {
    /// `acm renew`.
    Renew,
    /// `acm revoke`.
    Revoke,
}

/// How the vault knows a certificate is revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokedBecause {
    /// ACM said so at the last discovery.
    AcmSaid,
    /// The vault recorded its revocation.
    Recorded {
        /// The certificate's serial.
        serial: vault::formats::Serial,
        /// When.
        at: time::OffsetDateTime,
        /// The reason given.
        reason: String,
    },
}

/// Whether ACM will renew a public certificate by itself, as facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicRenewal {
    /// It is not issued (its status): there is nothing to renew.
    NotIssued {
        /// ACM's status.
        status: CertificateStatus,
    },
    /// Validated by email: someone must approve each renewal.
    Email {
        /// ACM says INELIGIBLE.
        ineligible: bool,
    },
    /// Validated by DNS; `failing` names the names whose validation does not hold.
    Dns {
        /// The names whose records are not in place.
        failing: Vec<String>,
        /// ACM says INELIGIBLE.
        ineligible: bool,
    },
}

impl PublicRenewal {
    /// What ACM says of a public certificate it holds.
    pub fn of(obs: &AcmObservation) -> PublicRenewal {
        if obs.summary.status != CertificateStatus::Issued {
            return PublicRenewal::NotIssued {
                status: obs.summary.status.clone(),
            };
        }
        let detail = obs.detail.clone().unwrap_or_default();
        let ineligible = obs.summary.renewal_eligibility.as_deref() == Some("INELIGIBLE");
        match detail.validation_method {
            Some(ValidationMethod::Email) => PublicRenewal::Email { ineligible },
            _ => PublicRenewal::Dns {
                failing: detail
                    .names
                    .iter()
                    .filter(|n| n.status.as_deref().is_some_and(|s| s != "SUCCESS"))
                    .map(|n| n.domain.clone())
                    .collect(),
                ineligible,
            },
        }
    }
}

/// The entry `certificate` names (an entry, or an ARN: the entry deployed there, else the
/// one the vault's record of it feeds).
pub(crate) fn entry_of(
    v: &vault::Vault,
    certificate: &str,
) -> super::Result<(vault::entries::EntryId, String)> {
    if !crate::aws::names_an_arn(certificate) {
        return Ok(v.resolve(certificate)?);
    }
    // A deployment's ARN: the entry deployed there.
    if let Some(d) = v
        .deployments()?
        .into_iter()
        .find(|d| d.arn.as_deref() == Some(certificate))
    {
        return Ok((d.entry_id, d.name));
    }
    let chosen = super::choose(v, certificate, None, None)?;
    chosen.entry.ok_or(super::Error::NoEntry {
        arn: certificate.to_owned(),
        region: chosen.region,
    })
}

/// Refuses an entry that is not a certificate AWS issued (the vault's own CA, a file, IAM,
/// an early `pca issue`); `Ok` for one ACM holds (asked of ACM next).
pub(crate) fn aws_issued(
    source: vault::entries::Source,
    name: &str,
    doing: Doing,
) -> super::Result<()> {
    use vault::entries::Source as S;
    match source {
        S::AcmAmazonIssued | S::AcmPrivate | S::AcmImported => Ok(()),
        _ => Err(super::Error::NotIssuedByAws {
            name: name.to_owned(),
            origin: source,
            doing,
        }),
    }
}

/// Why the certificate the vault last saw at `arn` is revoked, if it is: by a revocation the
/// vault recorded (its rows checked), or because ACM said so at the last discovery.
pub(crate) fn revoked_at(
    v: &vault::Vault,
    entry_id: &str,
    arn: &str,
) -> vault::Result<Option<RevokedBecause>> {
    let Some(record) = v.acm_record(arn)? else {
        return Ok(None);
    };
    if record.summary.status == CertificateStatus::Revoked {
        return Ok(Some(RevokedBecause::AcmSaid));
    }
    let Some(fingerprint) = record.fingerprint_sha256.as_deref() else {
        return Ok(None);
    };
    let Some((version_id, serial)) = v.version_of_certificate(entry_id, fingerprint)? else {
        return Ok(None);
    };
    Ok(v.aws_revocation(entry_id, version_id, &serial)?
        .map(|(at, reason)| RevokedBecause::Recorded { serial, at, reason }))
}

/// Refuses a `--target` or `--region` other than those an entry `pca issue` made was issued
/// through.
pub(crate) fn issued_through(
    aws: &vault::ca::pca::AwsPrivate,
    name: &str,
    target: Option<&str>,
    region: Option<&str>,
) -> super::Result<()> {
    if let Some(t) = target
        && t != aws.target
    {
        return Err(super::Error::IssuedThrough {
            given: t.to_owned(),
            name: name.to_owned(),
            target: aws.target.clone(),
        });
    }
    if let Some(r) = region
        && r != aws.region
    {
        return Err(super::Error::CaElsewhere {
            given: r.to_owned(),
            name: name.to_owned(),
            region: aws.region.clone(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::fake::{ACCOUNT, Fake, FakeCert};

    fn target() -> Target {
        Target {
            name: "default".into(),
            regions: vec!["us-east-1".into()],
            ..Default::default()
        }
    }

    /// What the emulator cannot do: RenewCertificate (it answers 500), and a renewal that
    /// comes later than the call.
    #[tokio::test(start_paused = true)]
    async fn renew_asks_only_for_an_eligible_private_certificate_of_this_account_and_waits() {
        let fake = Fake::default();
        let ca = fake.add_pca("us-east-1", "ACTIVE");
        let mut cert = FakeCert::private_issued_by(&fake, &ca, "svc.internal");
        cert.summary.renewal_eligibility = Some("ELIGIBLE".into());
        let arn = cert.summary.arn.clone();
        fake.add("us-east-1", cert);
        fake.state.lock().unwrap().renew_after = 2;
        let r = acm_renew(
            &fake,
            &Config::default(),
            &target(),
            &arn,
            Duration::from_secs(120),
        )
        .await
        .unwrap();
        assert_eq!(r.account, ACCOUNT);
        let serial = |o: &AcmObservation| o.detail.as_ref().unwrap().serial.clone().unwrap();
        assert_ne!(serial(&r.before), serial(&r.after), "renewed: a new serial");
        assert!(r.after.certificate.is_some());
        assert_eq!(fake.calls("RenewCertificate"), 1);

        // Not eligible: nothing is asked.
        fake.state
            .lock()
            .unwrap()
            .certs
            .get_mut("us-east-1")
            .unwrap()[0]
            .summary
            .renewal_eligibility = Some("INELIGIBLE".into());
        let e = acm_renew(
            &fake,
            &Config::default(),
            &target(),
            &arn,
            Duration::from_secs(1),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(e.refusal(), Some(crate::error::Refusal::NotEligible { .. })),
            "{e}"
        );
        assert_eq!(fake.calls("RenewCertificate"), 1);

        // Another account behind the credentials: nothing is asked either.
        fake.state.lock().unwrap().account = Some("999999999999".into());
        let e = acm_renew(
            &fake,
            &Config::default(),
            &target(),
            &arn,
            Duration::from_secs(1),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(
                e.refusal(),
                Some(crate::error::Refusal::AccountDiffers { .. })
            ),
            "{e}"
        );
        assert_eq!(fake.calls("RenewCertificate"), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn revoke_goes_only_to_the_cas_account_and_a_second_revocation_is_not_an_error() {
        let fake = Fake::default();
        let ca = fake.add_pca("us-east-1", "ACTIVE");
        let account = pca_revoke(
            &fake,
            &Config::default(),
            &target(),
            &ca,
            "0a:1b",
            "KEY_COMPROMISE",
        )
        .await
        .unwrap();
        assert_eq!(account, ACCOUNT);
        assert_eq!(
            fake.state.lock().unwrap().pca_revoked,
            [(ca.clone(), "0a:1b".to_owned(), "KEY_COMPROMISE".to_owned())]
        );
        // Again: AWS answers RequestAlreadyProcessedException; it is revoked.
        pca_revoke(
            &fake,
            &Config::default(),
            &target(),
            &ca,
            "0a:1b",
            "KEY_COMPROMISE",
        )
        .await
        .unwrap();
        assert_eq!(fake.state.lock().unwrap().pca_revoked.len(), 1);

        fake.state.lock().unwrap().account = Some("999999999999".into());
        let calls = fake.calls("RevokeCertificate");
        let e = pca_revoke(
            &fake,
            &Config::default(),
            &target(),
            &ca,
            "0c",
            "KEY_COMPROMISE",
        )
        .await
        .unwrap_err();
        assert!(
            matches!(
                e.refusal(),
                Some(crate::error::Refusal::AccountMismatch { .. })
            ),
            "{e}"
        );
        assert_eq!(fake.calls("RevokeCertificate"), calls);
    }
}
