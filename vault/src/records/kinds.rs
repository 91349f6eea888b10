//! ACM's words for a certificate's type, status and validation method, as enums.
//!
//! AWS adds values to these lists over time (ACM's status gained `REVOKED`, its types
//! `PRIVATE`), and the vault stores what AWS said: a value this version does not know is
//! kept, word for word, as `Other` rather than refused or lost, and it reads back as the
//! same text. Each enum is written as ACM writes it (`AMAZON_ISSUED`, `PENDING_VALIDATION`,
//! `DNS`) wherever it is shown, stored or serialized, so JSON and the stored rows (and their
//! MACs) are the same as when these were plain strings.

use std::fmt;

use rusqlite::types::{FromSql, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

/// A word an enum of this module does not know, exactly as it was read. Only made by
/// parsing, so it never holds a word the enum has a variant for (and two values compare
/// equal exactly when their texts do).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Unrecognized(String);

impl Unrecognized {
    /// The text, as read.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! acm_words {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A value this version does not know, kept as it was read.
            Other(Unrecognized),
        }

        impl $name {
            /// The word as ACM writes it.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $text, )*
                    Self::Other(u) => u.as_str(),
                }
            }

            /// Reads ACM's word (any text: an unknown one is kept as [`Self::Other`]).
            pub fn parse(text: &str) -> Self {
                match text {
                    $( $text => Self::$variant, )*
                    other => Self::Other(Unrecognized(other.to_owned())),
                }
            }
        }

        impl Default for $name {
            /// The empty word (what a record holds before anything was read).
            fn default() -> Self {
                Self::Other(Unrecognized(String::new()))
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                Self::parse(text)
            }
        }

        impl From<String> for $name {
            fn from(text: String) -> Self {
                Self::parse(&text)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl fmt::Debug for $name {
            /// As the word's text (what these printed as when they were strings).
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self.as_str(), f)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Ok(Self::parse(&String::deserialize(d)?))
            }
        }

        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::Borrowed(ValueRef::Text(self.as_str().as_bytes())))
            }
        }

        impl FromSql for $name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                String::column_result(value).map(|s| Self::parse(&s))
            }
        }
    };
}

acm_words! {
    /// What kind of certificate an ARN holds: ACM's `Type`, plus `IAM` for IAM server
    /// certificates (which discovery records beside ACM's).
    CertificateType {
        /// Imported into ACM (`IMPORTED`): only an import renews it.
        Imported = "IMPORTED",
        /// Public, issued and renewed by Amazon (`AMAZON_ISSUED`).
        AmazonIssued = "AMAZON_ISSUED",
        /// Private, issued by an AWS Private CA (`PRIVATE`).
        Private = "PRIVATE",
        /// An IAM server certificate (`IAM`).
        Iam = "IAM",
    }
}

acm_words! {
    /// ACM's `Status` of a certificate.
    CertificateStatus {
        /// Requested, waiting for its names to be validated.
        PendingValidation = "PENDING_VALIDATION",
        /// Issued (or imported): usable.
        Issued = "ISSUED",
        /// Not in use any more (ACM's word for a certificate it stopped managing).
        Inactive = "INACTIVE",
        /// Past its end of validity.
        Expired = "EXPIRED",
        /// Not validated within 72 hours of the request.
        ValidationTimedOut = "VALIDATION_TIMED_OUT",
        /// Revoked.
        Revoked = "REVOKED",
        /// The request failed (`FailureReason` says why).
        Failed = "FAILED",
    }
}

acm_words! {
    /// How ACM validates a name of a public certificate.
    ValidationMethod {
        /// A CNAME record in the name's DNS zone.
        Dns = "DNS",
        /// Mail to the domain's contacts, approved by a person.
        Email = "EMAIL",
        /// An HTTP file (CloudFront-served names).
        Http = "HTTP",
    }
}

impl CertificateStatus {
    /// Whether ACM has given up on it: nothing will come of waiting (failed, timed out,
    /// revoked).
    pub fn is_failed(&self) -> bool {
        matches!(
            self,
            Self::Failed | Self::ValidationTimedOut | Self::Revoked
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_word_reads_back_as_itself() {
        for word in ["IMPORTED", "AMAZON_ISSUED", "PRIVATE", "IAM"] {
            let t = CertificateType::parse(word);
            assert!(!matches!(t, CertificateType::Other(_)), "{word}");
            assert_eq!(t.as_str(), word);
        }
        for word in [
            "PENDING_VALIDATION",
            "ISSUED",
            "INACTIVE",
            "EXPIRED",
            "VALIDATION_TIMED_OUT",
            "REVOKED",
            "FAILED",
        ] {
            let s = CertificateStatus::parse(word);
            assert!(!matches!(s, CertificateStatus::Other(_)), "{word}");
            assert_eq!(s.to_string(), word);
        }
        assert_eq!(ValidationMethod::parse("DNS"), ValidationMethod::Dns);
        assert_eq!(ValidationMethod::parse("EMAIL"), ValidationMethod::Email);
    }

    #[test]
    fn an_unknown_word_is_kept_as_read_and_equal_only_to_itself() {
        let s = CertificateStatus::parse("PENDING_AUTOMATIC_RENEWAL");
        assert!(matches!(s, CertificateStatus::Other(_)));
        assert_eq!(s.as_str(), "PENDING_AUTOMATIC_RENEWAL");
        assert_eq!(s, CertificateStatus::from("PENDING_AUTOMATIC_RENEWAL"));
        assert_ne!(s, CertificateStatus::Issued);
        // Case matters, as it does to ACM: `issued` is not `ISSUED`.
        assert!(matches!(
            CertificateStatus::parse("issued"),
            CertificateStatus::Other(_)
        ));
        assert_eq!(CertificateType::default().as_str(), "");
    }

    #[test]
    fn json_and_debug_are_the_words_themselves() {
        let v =
            serde_json::to_string(&(CertificateType::AmazonIssued, ValidationMethod::Dns)).unwrap();
        assert_eq!(v, r#"["AMAZON_ISSUED","DNS"]"#);
        assert_eq!(format!("{:?}", CertificateStatus::Issued), r#""ISSUED""#);
        let back: CertificateStatus = serde_json::from_str(r#""EXPIRED""#).unwrap();
        assert_eq!(back, CertificateStatus::Expired);
    }

    #[test]
    fn stored_and_read_back_through_sqlite_as_text() {
        let db = rusqlite::Connection::open_in_memory().unwrap();
        let (a, b): (String, CertificateStatus) = db
            .query_row(
                "SELECT ?1, ?2",
                rusqlite::params![CertificateStatus::Revoked, "SOMETHING_NEW"],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(a, "REVOKED");
        assert_eq!(b.as_str(), "SOMETHING_NEW");
    }
}
