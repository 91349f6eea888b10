//! The ACM workflows of `certvault acm`: requesting certificates and following the requests
//! until they are issued ([`request`], [`requests`]), renewing and revoking private ones
//! ([`lifecycle`]), deleting one from ACM ([`delete`]) and bringing an exportable one's key
//! into the vault ([`export_key`]).
//!
//! Each workflow takes its inputs (and, where something cannot be undone, a plan the caller
//! approves before passing it back), talks to AWS only in the account the vault recorded
//! or the ARN names, writes its own audit events in the vault, waits with tokio time, and
//! returns a typed result: the CLI only parses, asks and prints. Refusals are typed
//! values, so the words (and hints naming `certvault` commands) stay with the CLI.

pub mod delete;
pub mod export_key;
pub mod lifecycle;
pub mod renew;
pub mod request;
pub mod requests;
pub mod revoke;

use vault::Vault;

use crate::{
    aws::{CertificateType, arn_location},
    config::{Config, Target},
    error::ApiError,
};

/// What the ACM workflows refuse or fail with. Each refusal carries its facts; the words a
/// user reads about what to run next are the caller's.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The vault refused something.
    #[error(transparent)]
    Vault(Box<vault::Error>),
    /// The configuration (a target, a region) refused something.
    #[error(transparent)]
    Agent(Box<crate::Error>),
    /// What was given is not an ACM certificate ARN.
    #[error("{arn} is not an ACM certificate ARN (arn:aws:acm:REGION:ACCOUNT:certificate/ID)")]
    NotAnAcmArn {
        /// What was given.
        arn: String,
    },
    /// A region was given, but the ARN names another.
    #[error("region {given} was given, but {arn} is in {region}")]
    RegionMismatch {
        /// The region given.
        given: String,
        /// The ARN.
        arn: String,
        /// Its region.
        region: String,
    },
    /// A target was given, but discovery found the ARN under another.
    #[error("target {given} was given, but {arn} was found under target {recorded}")]
    TargetMismatch {
        /// The target given.
        given: String,
        /// The ARN.
        arn: String,
        /// The target discovery found it under.
        recorded: String,
    },
    /// The vault knows of no ACM certificate of the entry (where asked, when `narrowed`).
    #[error("the vault knows of no certificate of {name} in ACM")]
    NotInAcm {
        /// The entry's name.
        name: String,
        /// Whether a region or target narrowed the search.
        narrowed: bool,
    },
    /// The entry is in ACM several times: (ARN, region, target) of each.
    #[error("{name} is in ACM {} times", candidates.len())]
    Ambiguous {
        /// The entry's name.
        name: String,
        /// Where it is.
        candidates: Vec<(String, String, String)>,
    },
    /// The vault's record of the ARN disappeared between two reads.
    #[error("{arn}: the vault's record of it disappeared; nothing was deleted")]
    RecordGone {
        /// The ARN.
        arn: String,
    },
    /// The vault has no entry for the ARN (discovery has not read its certificate).
    #[error("the vault has no entry for {arn}; nothing was exported")]
    NotDiscovered {
        /// The ARN.
        arn: String,
        /// Its region.
        region: String,
    },
    /// ExportCertificate failed.
    #[error("cannot export the key of {arn}")]
    ExportFailed {
        /// The ARN.
        arn: String,
        /// What AWS (or the agent) said.
        #[source]
        source: Box<ApiError>,
    },
    /// A deployment row failed its check: whether the ARN is a deployment's is unknown.
    #[error("cannot tell whether {arn} is a deployment's, so nothing was deleted")]
    Tampered {
        /// The ARN.
        arn: String,
        /// The row's check failed.
        #[source]
        source: Box<vault::Error>,
    },
    /// The ARN is a deployment's: its agent would import it again.
    #[error("{arn} is where {name} is deployed ({target}/{region}); nothing was deleted")]
    Deployed {
        /// The ARN.
        arn: String,
        /// The deployed entry's name.
        name: String,
        /// The deployment's target.
        target: String,
        /// The deployment's region.
        region: String,
    },
    /// DeleteCertificate failed or was refused.
    #[error("cannot delete {arn} from ACM")]
    DeleteFailed {
        /// The ARN.
        arn: String,
        /// What AWS (or the agent) said.
        #[source]
        source: Box<ApiError>,
    },
    /// RequestCertificate failed or was refused.
    #[error("nothing was requested")]
    NotRequested(#[source] Box<ApiError>),
    /// Route 53 could not be written (the request itself is made and recorded).
    #[error("the request is made and recorded, but no record was written to Route 53")]
    NotPlaced(#[source] Box<ApiError>),
    /// The vault has no entry for the ARN named (renew, revoke).
    #[error("the vault has no entry for {arn}; nothing was asked of AWS")]
    NoEntry {
        /// The ARN.
        arn: String,
        /// Its region.
        region: String,
    },
    /// The entry is not a certificate AWS issued: AWS neither renews nor revokes it here.
    #[error("{name} is not a certificate AWS issued ({origin:?}); nothing was asked of AWS")]
    NotIssuedByAws {
        /// The entry's name.
        name: String,
        /// Where it came from.
        origin: vault::entries::Source,
        /// What was asked.
        doing: lifecycle::Doing,
    },
    /// Keeping the key is only for entries `pca issue` made (their key is in the vault).
    #[error("the same key is kept only for certificates `pca issue` made; {name} is not one")]
    ReuseKeyNotPca {
        /// The entry's name.
        name: String,
    },
    /// The certificate is revoked: it is not renewed.
    #[error("{name}: the certificate at {arn} is revoked; it is not renewed")]
    Revoked {
        /// The entry's name.
        name: String,
        /// The ARN.
        arn: String,
        /// How the vault knows.
        because: lifecycle::RevokedBecause,
    },
    /// ACM could not be asked about the certificate.
    #[error("cannot read {arn} from ACM: {error}; nothing was {}", if *doing == lifecycle::Doing::Renew { "renewed" } else { "revoked" })]
    Unreadable {
        /// The ARN.
        arn: String,
        /// What AWS (or the agent) said.
        error: Box<ApiError>,
        /// What was asked.
        doing: lifecycle::Doing,
    },
    /// A public certificate: only ACM renews it.
    #[error("{arn} is a public certificate: only ACM renews it")]
    PublicCertificate {
        /// The ARN.
        arn: String,
        /// Whether ACM will.
        renewal: lifecycle::PublicRenewal,
    },
    /// Imported into ACM: ACM never renews it.
    #[error("{arn} was imported into ACM: ACM never renews an imported certificate")]
    ImportedCertificate {
        /// The ARN.
        arn: String,
    },
    /// Of a kind ACM does not renew.
    #[error("{arn} is of kind {kind}: ACM does not renew it")]
    OtherKind {
        /// The ARN.
        arn: String,
        /// Its kind.
        kind: CertificateType,
    },
    /// ACM says it is not eligible for renewal on request.
    #[error("ACM says {arn} is {} for renewal; nothing was asked", eligibility.as_deref().unwrap_or("not eligible"))]
    NotEligible {
        /// The ARN.
        arn: String,
        /// What ACM said.
        eligibility: Option<String>,
    },
    /// RenewCertificate (or the wait after it) failed.
    #[error("{arn}: {error}")]
    RenewFailed {
        /// The ARN.
        arn: String,
        /// What AWS (or the agent) said.
        error: Box<ApiError>,
    },
    /// A target other than the one an entry `pca issue` made was issued through.
    #[error("target {given} was given, but {name} was issued through target {target}")]
    IssuedThrough {
        /// The target given.
        given: String,
        /// The entry's name.
        name: String,
        /// The target it was issued through.
        target: String,
    },
    /// A region other than its CA's.
    #[error("region {given} was given, but the CA of {name} is in {region}")]
    CaElsewhere {
        /// The region given.
        given: String,
        /// The entry's name.
        name: String,
        /// The CA's region.
        region: String,
    },
    /// AWS Private CA did not issue it again.
    #[error("nothing was stored")]
    NotStored(#[source] Box<ApiError>),
    /// An ARN names what ACM holds there, which may be older than what an entry `pca issue`
    /// made holds: the entry is to be named.
    #[error(
        "{arn} holds a certificate of {name}, which `pca issue` made: name the entry to revoke its current certificate (serial {serial})"
    )]
    NameTheEntry {
        /// The ARN given.
        arn: String,
        /// The entry's name.
        name: String,
        /// Its current certificate's serial.
        serial: vault::formats::Serial,
    },
    /// Only private certificates are revoked, by the Private CA that issued them.
    #[error("{arn} is {}: only private certificates are revoked here, by the AWS Private CA that issued them{}; nothing was revoked", match kind { CertificateType::AmazonIssued => "a public certificate", CertificateType::Imported => "imported into ACM", other => other.as_str() }, if *kind == CertificateType::Imported { " (revoke an imported one with the CA that issued it)" } else { "" })]
    NotPrivate {
        /// The ARN.
        arn: String,
        /// Its kind.
        kind: CertificateType,
    },
    /// ACM gives neither the certificate nor its CA.
    #[error(
        "ACM does not give the certificate at {arn} or the CA that issued it (is it issued?); nothing was revoked"
    )]
    NoCaOrCertificate {
        /// The ARN.
        arn: String,
    },
    /// The vault does not hold the certificate ACM has now.
    #[error("the vault does not hold the certificate ACM has at {arn} now; nothing was revoked")]
    NotInVault {
        /// The ARN.
        arn: String,
    },
    /// RevokeCertificate failed or was refused.
    #[error("nothing was revoked")]
    NotRevoked(#[source] Box<ApiError>),
}

impl From<vault::Error> for Error {
    fn from(e: vault::Error) -> Error {
        Error::Vault(Box::new(e))
    }
}

impl From<crate::Error> for Error {
    fn from(e: crate::Error) -> Error {
        Error::Agent(Box::new(e))
    }
}

impl From<crate::pca::StoreError> for Error {
    fn from(e: crate::pca::StoreError) -> Error {
        match e {
            crate::pca::StoreError::Vault(e) => Error::Vault(Box::new(e)),
            crate::pca::StoreError::Agent(e) => Error::Agent(Box::new(e)),
            crate::pca::StoreError::NotStored(e) => Error::NotStored(Box::new(e)),
        }
    }
}

/// The ACM workflows' result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One ACM certificate a command acts on: its ARN, where it lives, and what the vault knows
/// of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    /// The ARN.
    pub arn: String,
    /// Its region.
    pub region: String,
    /// Its account.
    pub account: String,
    /// Whether the vault recorded the account (discovery), rather than read it off the ARN.
    pub recorded: bool,
    /// The target it is reached through.
    pub target: String,
    /// The entry it feeds (id, name), when the vault has one.
    pub entry: Option<(vault::entries::EntryId, String)>,
    /// What discovery last saw there (domain, kind), for the confirmation.
    pub seen: Option<(String, CertificateType)>,
}

impl Chosen {
    /// The certificate in words: the ARN, with what discovery saw there.
    pub fn what(&self) -> String {
        match &self.seen {
            Some((domain, kind)) => format!("{} ({domain}, {kind})", self.arn),
            None => self.arn.clone(),
        }
    }

    /// The configured target it is reached through, for its region.
    pub fn target_in(&self, config: &Config) -> Result<Target> {
        Ok(config
            .select(Some(&self.target), Some(std::slice::from_ref(&self.region)))?
            .remove(0))
    }
}

/// The ACM certificate the user means by `certificate`: an ARN, or the one ACM certificate
/// the vault has recorded for an entry (in `region`, under `target`, when there are several).
pub fn choose(
    v: &Vault,
    certificate: &str,
    region: Option<&str>,
    target: Option<&str>,
) -> Result<Chosen> {
    if crate::aws::names_an_arn(certificate) {
        return choose_arn(v, certificate, region, target);
    }
    let (id, name) = v.resolve(certificate)?;
    let candidates: Vec<vault::records::AcmRecord> = v
        .acm_records_of(&id)?
        .into_iter()
        .filter(|r| r.gone_at.is_none())
        .filter(|r| region.is_none_or(|x| x == r.location.region))
        .filter(|r| target.is_none_or(|x| x == r.location.target))
        .collect();
    let one = match candidates.as_slice() {
        [] => {
            return Err(Error::NotInAcm {
                name,
                narrowed: region.is_some() || target.is_some(),
            });
        }
        [one] => one.summary.arn.clone(),
        many => {
            return Err(Error::Ambiguous {
                name,
                candidates: many
                    .iter()
                    .map(|r| {
                        (
                            r.summary.arn.clone(),
                            r.location.region.clone(),
                            r.location.target.clone(),
                        )
                    })
                    .collect(),
            });
        }
    };
    // Read again, its MAC checked: the target and account come from this row.
    let Some(rec) = v.acm_record(&one)? else {
        return Err(Error::RecordGone { arn: one });
    };
    Ok(Chosen {
        arn: rec.summary.arn.clone(),
        region: rec.location.region.clone(),
        account: rec.location.account.clone(),
        recorded: true,
        target: rec.location.target.clone(),
        entry: Some((id, name)),
        seen: Some((rec.summary.domain, rec.summary.kind)),
    })
}

fn choose_arn(
    v: &Vault,
    arn: &str,
    region_arg: Option<&str>,
    target_arg: Option<&str>,
) -> Result<Chosen> {
    let arn = arn.to_owned();
    let Some((account, region)) = arn_location(&arn) else {
        return Err(Error::NotAnAcmArn { arn });
    };
    let (account, region) = (account.to_owned(), region.to_owned());
    if let Some(r) = region_arg
        && r != region
    {
        return Err(Error::RegionMismatch {
            given: r.to_owned(),
            arn,
            region,
        });
    }
    let record = v.acm_record(&arn)?;
    let target = match (&record, target_arg) {
        (Some(rec), Some(t)) if t != rec.location.target => {
            return Err(Error::TargetMismatch {
                given: t.to_owned(),
                arn,
                recorded: rec.location.target.clone(),
            });
        }
        (Some(rec), _) => rec.location.target.clone(),
        (None, Some(t)) => t.to_owned(),
        (None, None) => "default".to_owned(),
    };
    let entry = match record.as_ref().and_then(|r| r.entry_id.clone()) {
        Some(id) => Some(v.resolve(&id)?),
        None => None,
    };
    let recorded = record.as_ref().map(|r| r.location.account.clone());
    let seen = record.map(|r| (r.summary.domain, r.summary.kind));
    Ok(Chosen {
        arn,
        region,
        account: recorded.clone().unwrap_or(account),
        recorded: recorded.is_some(),
        target,
        entry,
        seen,
    })
}

impl Error {
    /// What a person can do about it, if something (see [`crate::Remedy`]).
    pub fn remedy(&self) -> Option<crate::Remedy> {
        match self {
            Error::Vault(e) => e.remedy().map(crate::Remedy::Vault),
            Error::Agent(e) => e.remedy(),
            _ => None,
        }
    }
}
