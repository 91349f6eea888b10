//! What the vault stores: entries, their versions, and where they came from.

use serde::Serialize;
use time::OffsetDateTime;

/// Where an entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Source {
    /// Imported from a file.
    Imported,
    /// Issued by the vault's own CA.
    Issued,
    /// Discovered in ACM, issued by Amazon.
    AcmAmazonIssued,
    /// Discovered in ACM, issued by a private CA.
    AcmPrivate,
    /// Discovered in ACM, imported there.
    AcmImported,
    /// Discovered in IAM.
    Iam,
    /// Issued by AWS Private CA.
    Pca,
}

impl Source {
    /// Every source, in display order.
    pub const ALL: [Source; 7] = [
        Source::Imported,
        Source::Issued,
        Source::AcmAmazonIssued,
        Source::AcmPrivate,
        Source::AcmImported,
        Source::Iam,
        Source::Pca,
    ];

    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Imported => "imported",
            Source::Issued => "issued",
            Source::AcmAmazonIssued => "acm-amazon-issued",
            Source::AcmPrivate => "acm-private",
            Source::AcmImported => "acm-imported",
            Source::Iam => "iam",
            Source::Pca => "pca",
        }
    }

    /// Whether entries from this source were found in AWS (they follow their ARN: an ACM
    /// renewal becomes a version) rather than held by the vault (imported or issued).
    pub fn is_discovered(self) -> bool {
        matches!(
            self,
            Source::AcmAmazonIssued | Source::AcmPrivate | Source::AcmImported | Source::Iam
        )
    }

    /// Parses a stored or typed name.
    pub fn parse(s: &str) -> Option<Source> {
        Source::ALL.into_iter().find(|src| src.as_str() == s)
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One logical certificate with the facts of its current version, as `list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct EntrySummary {
    /// Stable random id (16 lowercase hex digits).
    pub id: super::EntryId,
    /// Unique name.
    pub name: String,
    /// Where it came from.
    pub source: Source,
    /// Subject of the current version.
    pub subject: String,
    /// Common name of the current version, if any.
    pub common_name: Option<String>,
    /// Subject alternative names of the current version.
    pub sans: Vec<String>,
    /// Issuer of the current version.
    pub issuer: String,
    /// Serial number, lowercase hex.
    pub serial: crate::formats::Serial,
    /// Start of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    /// End of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// SHA-256 of the current certificate's DER, lowercase hex.
    pub fingerprint_sha256: String,
    /// Key algorithm, as ACM names them (`RSA_2048`, `EC_prime256v1`, ...).
    pub key_algorithm: String,
    /// Whether the vault holds the current version's private key.
    pub has_private_key: bool,
    /// Number of the current version (1-based).
    pub version: u32,
    /// How many versions the entry has.
    pub version_count: u32,
    /// Labels.
    pub tags: std::collections::BTreeMap<String, String>,
    /// ARN of the certificate in ACM (the first location it was found in), if any.
    pub acm_arn: Option<String>,
    /// That ARN's region.
    pub region: Option<String>,
    /// That ARN's account.
    pub account: Option<String>,
}

/// One certificate of a chain.
#[derive(Debug, Clone, Serialize)]
pub struct ChainCert {
    /// Subject.
    pub subject: String,
    /// Issuer.
    pub issuer: String,
    /// SHA-256 fingerprint, lowercase hex.
    pub fingerprint_sha256: String,
    /// End of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
}

/// One version of an entry, as `show` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct VersionDetail {
    /// Version number (1-based).
    pub version: u32,
    /// Whether this is the entry's current version.
    pub current: bool,
    /// Subject.
    pub subject: String,
    /// Subject alternative names.
    pub sans: Vec<String>,
    /// Issuer.
    pub issuer: String,
    /// Serial, lowercase hex.
    pub serial: crate::formats::Serial,
    /// Start of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    /// End of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// SHA-256 fingerprint, lowercase hex.
    pub fingerprint_sha256: String,
    /// Key algorithm.
    pub key_algorithm: String,
    /// Whether the vault holds this version's private key.
    pub has_private_key: bool,
    /// The chain, leaf's issuer first.
    pub chain: Vec<ChainCert>,
    /// When the version was added.
    #[serde(with = "time::serde::rfc3339")]
    pub added_at: OffsetDateTime,
}

/// An entry with all its versions, as `show` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct EntryDetail {
    /// The entry and its current version.
    #[serde(flatten)]
    pub summary: EntrySummary,
    /// Every version, newest first.
    pub versions: Vec<VersionDetail>,
    /// Where the certificate was found in ACM or IAM (gone ones included).
    pub acm: Vec<crate::records::acm::AcmRecord>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_names_round_trip() {
        for s in Source::ALL {
            assert_eq!(Source::parse(s.as_str()), Some(s));
        }
        assert_eq!(Source::parse("nope"), None);
    }
}
