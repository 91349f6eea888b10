//! `acm revoke`: a private certificate revoked by the AWS Private CA that issued it, in
//! the CA's account only. [`plan_revoke`] finds what is revoked (an entry `pca issue` made:
//! its current certificate; else the certificate ACM holds now, which must be the vault's)
//! and what was revoked already; the caller confirms; [`revoke_planned`] revokes and
//! records it (audited in the vault).

use crate::aws::CertificateType;
use vault::{Vault, formats::Serial};

use super::{
    Error, Result,
    lifecycle::{Doing, aws_issued, entry_of, issued_through, pca_revoke},
};
use crate::{
    aws::Connector,
    config::{Config, Target},
};

/// What `acm revoke` is asked.
#[derive(Debug, Clone, Copy)]
pub struct RevokeRequest<'a> {
    /// The entry, or an ARN.
    pub certificate: &'a str,
    /// The region, when the entry is in ACM in several.
    pub region: Option<&'a str>,
    /// The target, when the entry is in ACM under several.
    pub target: Option<&'a str>,
    /// The reason, as AWS Private CA names it (`KEY_COMPROMISE`, ...).
    pub reason: &'a str,
}

/// What revoking would do.
#[derive(Debug, Clone)]
pub enum RevokePlan {
    /// Revoked already: nothing to do.
    AlreadyRevoked {
        /// The entry's name.
        name: String,
        /// The certificate's serial.
        serial: Serial,
        /// Where ACM holds it (a certificate ACM holds), or `None` (an entry `pca issue`
        /// made).
        arn: Option<String>,
        /// When.
        at: time::OffsetDateTime,
        /// The reason recorded, if one was.
        reason: Option<String>,
    },
    /// Revoke this (after the caller's confirmation: it cannot be undone).
    Revoke(Box<PlannedRevocation>),
}

/// One revocation, checked and ready to be confirmed.
#[derive(Debug, Clone)]
pub struct PlannedRevocation {
    /// The entry's name.
    pub name: String,
    /// The certificate's serial.
    pub serial: Serial,
    /// The CA that issued it.
    pub ca_arn: String,
    /// Where ACM holds it, for a certificate ACM holds.
    pub at: Option<String>,
    target: Target,
    record: vault::ca::pca::AwsRevocation,
}

impl PlannedRevocation {
    /// What is revoked, in words (for the confirmation).
    pub fn what(&self) -> String {
        match &self.at {
            None => format!(
                "{} (serial {}, issued by {})",
                self.name, self.serial, self.ca_arn
            ),
            Some(arn) => format!(
                "{} (serial {}, at {arn}, issued by {})",
                self.name, self.serial, self.ca_arn
            ),
        }
    }
}

/// A revocation done and recorded (the JSON `acm revoke` prints).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Revoked {
    /// The CA that revoked it.
    pub ca_arn: String,
    /// The certificate's ARN.
    pub certificate_arn: String,
    /// Whether it was the entry's current certificate (its deployments are flagged).
    pub current: bool,
    /// The entry's name.
    pub entry: String,
    /// The reason given.
    pub reason: String,
    /// Always true.
    pub revoked: bool,
    /// The certificate's serial.
    pub serial: Serial,
}

/// Finds what `req` revokes, checking what the vault and ACM hold (nothing is changed).
pub async fn plan_revoke<C: Connector>(
    connector: &C,
    v: &Vault,
    config: &Config,
    req: RevokeRequest<'_>,
) -> Result<RevokePlan> {
    let (id, name) = entry_of(v, req.certificate)?;
    if let Some(aws) = v.aws_private(&id)?
        && aws.via == "pca"
    {
        return plan_pca(config, req, name, aws);
    }
    aws_issued(v.show(&id)?.summary.source, &name, Doing::Revoke)?;
    let by_arn = crate::aws::names_an_arn(req.certificate);
    let chosen = super::choose(
        v,
        if by_arn { req.certificate } else { &id },
        req.region,
        req.target,
    )?;
    let target = chosen.target_in(config)?;
    let (obs, _) = super::request::acm_observe(connector, config, &target, &chosen.arn)
        .await
        .map_err(|error| Error::Unreadable {
            arn: chosen.arn.clone(),
            error: Box::new(error),
            doing: Doing::Revoke,
        })?;
    if obs.summary.kind != CertificateType::Private {
        return Err(Error::NotPrivate {
            arn: chosen.arn,
            kind: obs.summary.kind,
        });
    }
    let detail = obs.detail.clone().unwrap_or_default();
    let (Some(ca_arn), Some(cert)) = (detail.ca_arn, obs.certificate.as_ref()) else {
        return Err(Error::NoCaOrCertificate { arn: chosen.arn });
    };
    // What is revoked is the certificate ACM holds now, and it must be the vault's.
    let Some((version_id, serial)) = v.version_of_certificate(&id, cert.fingerprint())? else {
        return Err(Error::NotInVault { arn: chosen.arn });
    };
    if let Some((at, why)) = v.aws_revocation(&id, version_id, &serial)? {
        return Ok(RevokePlan::AlreadyRevoked {
            name,
            serial,
            arn: Some(chosen.arn),
            at,
            reason: Some(why),
        });
    }
    let region = crate::pca::pca_arn_location(&ca_arn)
        .map(|(_, r)| r.to_owned())
        .unwrap_or_else(|| chosen.region.clone());
    let record = vault::ca::pca::AwsRevocation {
        entry_id: id,
        version_id,
        via: "acm".into(),
        ca_arn: ca_arn.clone(),
        certificate_arn: chosen.arn.clone(),
        target: chosen.target.clone(),
        account: String::new(),
        region,
        reason: req.reason.into(),
    };
    Ok(RevokePlan::Revoke(Box::new(PlannedRevocation {
        name,
        serial,
        ca_arn,
        at: Some(chosen.arn),
        target,
        record,
    })))
}

/// An entry `pca issue` made: its current certificate, through the target it was issued
/// through.
fn plan_pca(
    config: &Config,
    req: RevokeRequest<'_>,
    name: String,
    aws: vault::ca::pca::AwsPrivate,
) -> Result<RevokePlan> {
    // An ARN names what ACM holds there, which may be an older version than the one the
    // entry's record describes: only the entry itself names what is revoked.
    if crate::aws::names_an_arn(req.certificate) {
        return Err(Error::NameTheEntry {
            arn: req.certificate.to_owned(),
            name,
            serial: aws.serial,
        });
    }
    if let Some(at) = aws.revoked_at {
        return Ok(RevokePlan::AlreadyRevoked {
            name,
            serial: aws.serial,
            arn: None,
            at,
            reason: aws.revoke_reason,
        });
    }
    issued_through(&aws, &name, req.target, req.region)?;
    let target = config
        .select(Some(&aws.target), Some(std::slice::from_ref(&aws.region)))?
        .remove(0);
    let record = vault::ca::pca::AwsRevocation {
        entry_id: aws.entry_id.clone(),
        version_id: aws.version_id,
        via: "pca".into(),
        ca_arn: aws.ca_arn.clone(),
        certificate_arn: aws.certificate_arn.clone(),
        target: aws.target.clone(),
        account: String::new(),
        region: aws.region.clone(),
        reason: req.reason.into(),
    };
    Ok(RevokePlan::Revoke(Box::new(PlannedRevocation {
        name,
        serial: aws.serial,
        ca_arn: aws.ca_arn,
        at: None,
        target,
        record,
    })))
}

/// Revokes what `plan` names (RevokeCertificate, only in the CA's account; a second
/// revocation counts as done) and records it in the vault (audited; the entry's
/// deployments are flagged revoked when it was its current certificate).
pub async fn revoke_planned<C: Connector>(
    connector: &C,
    v: &mut Vault,
    config: &Config,
    plan: PlannedRevocation,
) -> Result<Revoked> {
    let PlannedRevocation {
        name,
        serial,
        ca_arn,
        target,
        mut record,
        ..
    } = plan;
    record.account = pca_revoke(
        connector,
        config,
        &target,
        &ca_arn,
        &serial.aws_form(),
        &record.reason,
    )
    .await
    .map_err(|e| Error::NotRevoked(Box::new(e)))?;
    let current = v.show(&record.entry_id)?.summary.serial == serial;
    v.record_aws_revocation(&record)?;
    Ok(Revoked {
        ca_arn,
        certificate_arn: record.certificate_arn.clone(),
        current,
        entry: name,
        reason: record.reason.clone(),
        revoked: true,
        serial,
    })
}
