//! `acm renew`: a private certificate ACM holds renewed through ACM (RenewCertificate, then
//! waited for with tokio time), or an entry `pca issue` made issued again by its CA with a
//! key made in the vault. Anything else is refused with the facts of why (a public
//! certificate: whether ACM renews it by itself), before anything is asked of AWS where the
//! vault can tell.

use crate::aws::CertificateType;
use std::time::Duration;

use vault::{Vault, entries::AcmObservation};

use super::{
    Error, Result,
    lifecycle::{Doing, acm_renew, aws_issued, entry_of, issued_through, revoked_at},
};
use crate::{aws::Connector, config::Config};

/// What `acm renew` is asked.
#[derive(Debug, Clone, Copy)]
pub struct RenewRequest<'a> {
    /// The entry, or an ARN.
    pub certificate: &'a str,
    /// The region, when the entry is in ACM in several.
    pub region: Option<&'a str>,
    /// The target, when the entry is in ACM under several.
    pub target: Option<&'a str>,
    /// Keep the key (entries `pca issue` made only).
    pub reuse_key: bool,
    /// How long to wait for the renewed certificate.
    pub wait: Duration,
}

/// What came of it.
#[derive(Debug, Clone)]
pub enum RenewOutcome {
    /// An entry `pca issue` made, issued again by its CA as a new version.
    Reissued {
        /// What the vault stored.
        stored: vault::ca::pca::PcaStored,
        /// Whether the key was kept.
        reused_key: bool,
    },
    /// ACM was asked to renew a private certificate it holds.
    Renewed {
        /// The certificate.
        arn: String,
        /// The entry's name.
        entry: String,
        /// Whether ACM issued the renewed certificate within the wait.
        done: bool,
        /// Whether it became a new version of the entry.
        new_version: bool,
    },
}

/// Renews what `req` names, audited (`acm-renew`, or the vault's record of a certificate
/// issued again), and records what ACM holds afterwards.
pub async fn renew<C: Connector>(
    connector: &C,
    v: &mut Vault,
    config: &Config,
    req: RenewRequest<'_>,
) -> Result<RenewOutcome> {
    let (id, name) = entry_of(v, req.certificate)?;
    if let Some(aws) = v.aws_private(&id)?
        && aws.via == "pca"
    {
        issued_through(&aws, &aws.name, req.target, req.region)?;
        return reissue(connector, v, config, &aws, req).await;
    }
    if req.reuse_key {
        return Err(Error::ReuseKeyNotPca { name });
    }
    aws_issued(v.show(&id)?.summary.source, &name, Doing::Renew)?;
    let by_arn = crate::aws::names_an_arn(req.certificate);
    let chosen = super::choose(
        v,
        if by_arn { req.certificate } else { &id },
        req.region,
        req.target,
    )?;
    // A revoked certificate is not renewed: refused from what the vault holds, before
    // anything is asked of AWS (ACM may well call it eligible).
    if let Some(because) = revoked_at(v, &id, &chosen.arn)? {
        return Err(Error::Revoked {
            name,
            arn: chosen.arn,
            because,
        });
    }
    let target = chosen.target_in(config)?;
    let (obs, account) = super::request::acm_observe(connector, config, &target, &chosen.arn)
        .await
        .map_err(|error| Error::Unreadable {
            arn: chosen.arn.clone(),
            error: Box::new(error),
            doing: Doing::Renew,
        })?;
    renewable(&chosen.arn, &obs)?;
    let arn = chosen.arn.clone();
    let renewed = acm_renew(connector, config, &target, &arn, req.wait)
        .await
        .map_err(|error| Error::RenewFailed {
            arn: arn.clone(),
            error: Box::new(error),
        })?;
    v.record_event(
        "acm-renew",
        Some(&id),
        &format!(
            "RenewCertificate for {arn} ({}, account {account})",
            chosen.region
        ),
    )?;
    let serial = |o: &AcmObservation| o.detail.as_ref().and_then(|d| d.serial.clone());
    let done = serial(&renewed.after) != serial(&renewed.before);
    let location = vault::records::Location {
        target: chosen.target.clone(),
        account: renewed.account.clone(),
        region: chosen.region.clone(),
    };
    let outcome = v.record_acm_scan(&location, vec![renewed.after], false)?;
    Ok(RenewOutcome::Renewed {
        arn,
        entry: name,
        done,
        new_version: !outcome.new_versions.is_empty(),
    })
}

/// Refuses what RenewCertificate does not renew: a public certificate (only ACM renews it),
/// an imported one, one of another kind, or one ACM does not call eligible.
fn renewable(arn: &str, obs: &AcmObservation) -> Result<()> {
    let arn = arn.to_owned();
    match &obs.summary.kind {
        CertificateType::Private => {}
        CertificateType::AmazonIssued => {
            return Err(Error::PublicCertificate {
                arn,
                renewal: super::lifecycle::PublicRenewal::of(obs),
            });
        }
        CertificateType::Imported => return Err(Error::ImportedCertificate { arn }),
        other => {
            return Err(Error::OtherKind {
                arn,
                kind: other.clone(),
            });
        }
    }
    if obs.summary.renewal_eligibility.as_deref() != Some("ELIGIBLE") {
        return Err(Error::NotEligible {
            arn,
            eligibility: obs.summary.renewal_eligibility.clone(),
        });
    }
    Ok(())
}

/// An entry `pca issue` made: issued again by its CA (the same names and validity), with a
/// new key made in the vault (or the same), as a new version.
async fn reissue<C: Connector>(
    connector: &C,
    v: &mut Vault,
    config: &Config,
    aws: &vault::ca::pca::AwsPrivate,
    req: RenewRequest<'_>,
) -> Result<RenewOutcome> {
    let pending = v.pca_prepare_renewal(&aws.entry_id, req.reuse_key)?;
    let target = config
        .select(
            Some(pending.target()),
            Some(std::slice::from_ref(&aws.region)),
        )?
        .remove(0);
    let stored =
        crate::pca::issue_and_store(connector, v, config, &target, pending, req.wait).await?;
    Ok(RenewOutcome::Reissued {
        stored: stored.stored,
        reused_key: req.reuse_key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        acm::revoke::{RevokePlan, RevokeRequest, plan_revoke, revoke_planned},
        aws::fake::{Fake, FakeCert},
        config::Target,
        discover::{DiscoverOptions, discover},
    };

    fn target() -> Target {
        Target {
            name: "default".into(),
            regions: vec!["us-east-1".into()],
            ..Default::default()
        }
    }

    /// A vault that has discovered one eligible private certificate ACM holds (and its
    /// CA): the ARN.
    async fn discovered(fake: &Fake) -> (tempfile::TempDir, Vault, String) {
        let dir = tempfile::tempdir().unwrap();
        let mut v = Vault::create(
            &dir.path().join("v.db"),
            &vault::Passphrase::new("correct horse battery".into()),
        )
        .unwrap();
        let ca = fake.add_pca("us-east-1", "ACTIVE");
        let mut cert = FakeCert::private_issued_by(fake, &ca, "svc.internal");
        cert.summary.renewal_eligibility = Some("ELIGIBLE".into());
        let arn = cert.summary.arn.clone();
        fake.add("us-east-1", cert);
        let config = Config::default();
        discover(
            fake,
            &mut v,
            &config,
            &[target()],
            DiscoverOptions::default(),
            &|_| {},
        )
        .await
        .unwrap();
        (dir, v, arn)
    }

    fn renewing(certificate: &str, wait: u64) -> RenewRequest<'_> {
        RenewRequest {
            certificate,
            region: None,
            target: None,
            reuse_key: false,
            wait: Duration::from_secs(wait),
        }
    }

    fn revoking(certificate: &str) -> RevokeRequest<'_> {
        RevokeRequest {
            certificate,
            region: None,
            target: None,
            reason: "KEY_COMPROMISE",
        }
    }

    /// Renewed through ACM, waited for with tokio time, recorded as a new version; then
    /// revoked (planned, then done) by its CA; then a second revocation is planned as done
    /// already, and a renewal of the revoked certificate is refused before ACM is asked.
    #[tokio::test(start_paused = true)]
    async fn renew_then_revoke_then_both_refuse_what_is_done() {
        let fake = Fake::default();
        let (_dir, mut v, arn) = discovered(&fake).await;
        let config = Config::default();
        fake.state.lock().unwrap().renew_after = 2;
        let start = tokio::time::Instant::now();
        let got = renew(&fake, &mut v, &config, renewing(&arn, 120))
            .await
            .unwrap();
        let RenewOutcome::Renewed {
            arn: renewed,
            done,
            new_version,
            ..
        } = got
        else {
            panic!("{got:?}")
        };
        assert_eq!(renewed, arn);
        assert!(done && new_version);
        assert!(start.elapsed() >= Duration::from_secs(2), "it waited");
        assert_eq!(fake.calls("RenewCertificate"), 1);

        // --reuse-key is for `pca issue` entries only: refused before anything is asked.
        let e = renew(
            &fake,
            &mut v,
            &config,
            RenewRequest {
                reuse_key: true,
                ..renewing(&arn, 1)
            },
        )
        .await
        .unwrap_err();
        assert!(matches!(e, Error::ReuseKeyNotPca { .. }), "{e}");

        let plan = plan_revoke(&fake, &v, &config, revoking(&arn))
            .await
            .unwrap();
        let RevokePlan::Revoke(planned) = plan else {
            panic!("{plan:?}")
        };
        assert!(planned.what().contains(&arn), "{}", planned.what());
        assert!(
            fake.state.lock().unwrap().pca_revoked.is_empty(),
            "planning sends nothing"
        );
        let done = revoke_planned(&fake, &mut v, &config, *planned)
            .await
            .unwrap();
        assert!(done.current && done.revoked);
        assert_eq!(fake.state.lock().unwrap().pca_revoked.len(), 1);

        let again = plan_revoke(&fake, &v, &config, revoking(&arn))
            .await
            .unwrap();
        assert!(
            matches!(&again, RevokePlan::AlreadyRevoked { reason: Some(r), .. } if r == "KEY_COMPROMISE"),
            "{again:?}"
        );
        let e = renew(&fake, &mut v, &config, renewing(&arn, 1))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Revoked { .. }), "{e}");
        assert_eq!(fake.calls("RenewCertificate"), 1);
    }

    /// A public certificate is never renewed on request: the refusal carries whether ACM
    /// renews it by itself.
    #[tokio::test(start_paused = true)]
    async fn a_public_certificate_is_refused_with_how_acm_renews_it() {
        let fake = Fake::default();
        let (_dir, mut v, arn) = discovered(&fake).await;
        {
            let mut s = fake.state.lock().unwrap();
            let cert = &mut s.certs.get_mut("us-east-1").unwrap()[0];
            cert.summary.kind = "AMAZON_ISSUED".into();
            cert.detail.validation_method = Some("EMAIL".into());
        }
        let e = renew(&fake, &mut v, &Config::default(), renewing(&arn, 1))
            .await
            .unwrap_err();
        assert!(
            matches!(
                &e,
                Error::PublicCertificate {
                    renewal: crate::acm::lifecycle::PublicRenewal::Email { ineligible: false },
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(fake.calls("RenewCertificate"), 0);
    }
}
