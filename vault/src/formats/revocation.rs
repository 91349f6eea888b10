//! RFC 5280's CRL reason codes, as the command line and the vault name them.

use rcgen::RevocationReason as RcgenReason;
use serde::Serialize;

/// RFC 5280's revocation reasons that can be given (removeFromCRL is not one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RevocationReason {
    /// 0.
    Unspecified,
    /// 1.
    KeyCompromise,
    /// 2.
    CaCompromise,
    /// 3.
    AffiliationChanged,
    /// 4.
    Superseded,
    /// 5.
    CessationOfOperation,
    /// 6.
    CertificateHold,
    /// 9.
    PrivilegeWithdrawn,
}

impl RevocationReason {
    /// Every reason, as written on the command line.
    pub const ALL: [RevocationReason; 8] = [
        RevocationReason::Unspecified,
        RevocationReason::KeyCompromise,
        RevocationReason::CaCompromise,
        RevocationReason::AffiliationChanged,
        RevocationReason::Superseded,
        RevocationReason::CessationOfOperation,
        RevocationReason::CertificateHold,
        RevocationReason::PrivilegeWithdrawn,
    ];

    /// The name on the command line and in the vault.
    pub fn as_str(self) -> &'static str {
        match self {
            RevocationReason::Unspecified => "unspecified",
            RevocationReason::KeyCompromise => "key-compromise",
            RevocationReason::CaCompromise => "ca-compromise",
            RevocationReason::AffiliationChanged => "affiliation-changed",
            RevocationReason::Superseded => "superseded",
            RevocationReason::CessationOfOperation => "cessation-of-operation",
            RevocationReason::CertificateHold => "certificate-hold",
            RevocationReason::PrivilegeWithdrawn => "privilege-withdrawn",
        }
    }

    /// Reads a name written by [`RevocationReason::as_str`].
    pub fn parse(s: &str) -> Option<RevocationReason> {
        RevocationReason::ALL.into_iter().find(|r| r.as_str() == s)
    }

    pub(crate) fn rcgen(self) -> RcgenReason {
        match self {
            RevocationReason::Unspecified => RcgenReason::Unspecified,
            RevocationReason::KeyCompromise => RcgenReason::KeyCompromise,
            RevocationReason::CaCompromise => RcgenReason::CaCompromise,
            RevocationReason::AffiliationChanged => RcgenReason::AffiliationChanged,
            RevocationReason::Superseded => RcgenReason::Superseded,
            RevocationReason::CessationOfOperation => RcgenReason::CessationOfOperation,
            RevocationReason::CertificateHold => RcgenReason::CertificateHold,
            RevocationReason::PrivilegeWithdrawn => RcgenReason::PrivilegeWithdrawn,
        }
    }
}

impl std::fmt::Display for RevocationReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
