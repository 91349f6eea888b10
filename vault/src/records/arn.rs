//! Amazon Resource Names, account ids and region codes as types: one parser for each.
//!
//! `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`, as AWS writes them
//! (<https://docs.aws.amazon.com/IAM/latest/UserGuide/reference-arns.html>): the partition
//! is `aws` or one of its siblings (`aws-cn`, `aws-us-gov`, ...), the region and the account
//! may be empty (IAM and Route 53 are global; S3 buckets name no account), the resource is
//! everything after the fifth colon and may hold colons and slashes of its own. An ARN that
//! parses displays as the very text it was parsed from.
//!
//! Self-contained (std, serde and thiserror only): the vault's records and the agent's AWS
//! boundary (`agent::aws`, which re-exports these types) share it.

use std::{fmt, str::FromStr};

/// Why a text is not an ARN, an account id or a region code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArnError {
    /// It does not start with `arn:`.
    #[error("'{0}' is not an ARN (an ARN starts with arn:)")]
    NotAnArn(String),
    /// Fewer than six parts (`arn:partition:service:region:account:resource`).
    #[error("'{0}' is not an ARN: it needs arn:partition:service:region:account:resource")]
    TooFewParts(String),
    /// One part holds what it may not.
    #[error("'{text}' is not an ARN: its {part} '{value}' is not valid")]
    BadPart {
        /// The whole text.
        text: String,
        /// Which part (`partition`, `service`, ...).
        part: &'static str,
        /// What it holds.
        value: String,
    },
    /// Not twelve digits.
    #[error("'{0}' is not an AWS account id (twelve digits)")]
    BadAccountId(String),
    /// Not a region code such as `eu-west-1`.
    #[error("'{0}' is not an AWS region code (such as eu-west-1)")]
    BadRegion(String),
}

/// The five parts of an ARN, borrowed from its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArnParts<'a> {
    /// `aws`, `aws-cn`, `aws-us-gov`, ...
    pub partition: &'a str,
    /// `acm`, `acm-pca`, `iam`, `elasticloadbalancing`, ...
    pub service: &'a str,
    /// The region code, empty for a global service.
    pub region: &'a str,
    /// The account id, empty where the service names none (`aws` for AWS-managed ones).
    pub account: &'a str,
    /// What follows: `certificate/ID`, `role/NAME`, `loadbalancer/app/NAME/ID`, ...
    pub resource: &'a str,
}

/// Lower-case letters, digits and dashes (possibly none).
fn plain_word(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl<'a> ArnParts<'a> {
    /// Splits `text` into its parts, checking each: the one ARN parser.
    pub fn parse(text: &'a str) -> Result<ArnParts<'a>, ArnError> {
        let Some(rest) = text.strip_prefix("arn:") else {
            return Err(ArnError::NotAnArn(text.to_owned()));
        };
        let mut it = rest.splitn(5, ':');
        let mut next = || {
            it.next()
                .ok_or_else(|| ArnError::TooFewParts(text.to_owned()))
        };
        let parts = ArnParts {
            partition: next()?,
            service: next()?,
            region: next()?,
            account: next()?,
            resource: next()?,
        };
        let bad = |part: &'static str, value: &str| ArnError::BadPart {
            text: text.to_owned(),
            part,
            value: value.to_owned(),
        };
        if !parts.partition.starts_with("aws") || !plain_word(parts.partition) {
            return Err(bad("partition", parts.partition));
        }
        if parts.service.is_empty() || !plain_word(parts.service) {
            return Err(bad("service", parts.service));
        }
        if !plain_word(parts.region) {
            return Err(bad("region", parts.region));
        }
        if !plain_word(parts.account) {
            return Err(bad("account", parts.account));
        }
        if parts.resource.is_empty()
            || parts
                .resource
                .chars()
                .any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(bad("resource", parts.resource));
        }
        Ok(parts)
    }
}

/// Whether a command's argument names an ARN rather than a vault entry: the one rule, used
/// wherever an argument may be either. It only looks at the `arn:` prefix; whether the text
/// is a valid ARN is for [`ArnParts::parse`] (and `Arn`'s `FromStr`) to say, with an error
/// naming what is wrong.
pub fn names_an_arn(text: &str) -> bool {
    text.starts_with("arn:")
}

/// The account and region an AWS Private CA's ARN names
/// (`arn:aws:acm-pca:REGION:ACCOUNT:certificate-authority/ID`): the one rule for it.
pub fn pca_location(arn: &str) -> Option<(&str, &str)> {
    let p = ArnParts::parse(arn).ok()?;
    let id = p.resource.strip_prefix("certificate-authority/")?;
    (p.service == "acm-pca"
        && !p.region.is_empty()
        && p.account.parse::<AccountId>().is_ok()
        && !id.is_empty()
        && !id.contains('/'))
    .then_some((p.account, p.region))
}

/// The service an ARN names (`elasticloadbalancing`, `cloudfront`, ...), or `""` for a text
/// that is not an ARN (a load balancer's DNS name, as the emulator lists users).
pub fn service_of(text: &str) -> &str {
    ArnParts::parse(text).map_or("", |p| p.service)
}

/// An Amazon Resource Name, checked once when it is parsed.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Arn {
    text: String,
    /// Where the partition, service, region and account end in `text`.
    ends: [usize; 4],
}

impl Arn {
    /// The whole ARN.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Its parts, borrowed.
    pub fn parts(&self) -> ArnParts<'_> {
        let [p, s, r, a] = self.ends;
        ArnParts {
            partition: &self.text[4..p],
            service: &self.text[p + 1..s],
            region: &self.text[s + 1..r],
            account: &self.text[r + 1..a],
            resource: &self.text[a + 1..],
        }
    }

    /// `aws`, `aws-cn`, ...
    pub fn partition(&self) -> &str {
        self.parts().partition
    }

    /// `acm`, `acm-pca`, ...
    pub fn service(&self) -> &str {
        self.parts().service
    }

    /// The region code, empty for a global service.
    pub fn region(&self) -> &str {
        self.parts().region
    }

    /// The account, empty where the service names none.
    pub fn account(&self) -> &str {
        self.parts().account
    }

    /// The account as an [`AccountId`], when it is one (twelve digits).
    pub fn account_id(&self) -> Option<AccountId> {
        self.account().parse().ok()
    }

    /// The region as a [`Region`], when it is one.
    pub fn region_code(&self) -> Option<Region> {
        self.region().parse().ok()
    }

    /// What follows the account.
    pub fn resource(&self) -> &str {
        self.parts().resource
    }
}

impl FromStr for Arn {
    type Err = ArnError;

    fn from_str(text: &str) -> Result<Arn, ArnError> {
        let p = ArnParts::parse(text)?;
        let partition = 4 + p.partition.len();
        let service = partition + 1 + p.service.len();
        let region = service + 1 + p.region.len();
        let account = region + 1 + p.account.len();
        Ok(Arn {
            text: text.to_owned(),
            ends: [partition, service, region, account],
        })
    }
}

impl fmt::Display for Arn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Arn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Arn({:?})", self.text)
    }
}

impl AsRef<str> for Arn {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

impl serde::Serialize for Arn {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for Arn {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Arn, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// An AWS account id: twelve digits.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccountId(String);

impl AccountId {
    /// The twelve digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for AccountId {
    type Err = ArnError;

    fn from_str(s: &str) -> Result<AccountId, ArnError> {
        if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(AccountId(s.to_owned()))
        } else {
            Err(ArnError::BadAccountId(s.to_owned()))
        }
    }
}

/// A region code: three or more lower-case words joined by dashes, the last a number (`us-east-1`,
/// `us-gov-west-1`, `ap-southeast-7`). Whether AWS offers a service there is another
/// question (see the agent's region list).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Region(String);

impl Region {
    /// The code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Region {
    type Err = ArnError;

    fn from_str(s: &str) -> Result<Region, ArnError> {
        let words: Vec<&str> = s.split('-').collect();
        let ok = words.len() >= 3
            && words.iter().all(|w| !w.is_empty())
            && words.iter().all(|w| {
                w.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            })
            && words[words.len() - 1].bytes().all(|b| b.is_ascii_digit());
        if ok {
            Ok(Region(s.to_owned()))
        } else {
            Err(ArnError::BadRegion(s.to_owned()))
        }
    }
}

/// `Display`, `Debug`, `AsRef<str>` and serde as a string, for the newtypes over a checked
/// string.
macro_rules! string_newtype {
    ($t:ident) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($t), self.0)
            }
        }
        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<$t, D::Error> {
                let text = String::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
string_newtype!(AccountId);
string_newtype!(Region);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_acm_arn_has_its_five_parts() {
        let s = "arn:aws:acm:eu-west-1:123456789012:certificate/0a1b-2c3d";
        let arn: Arn = s.parse().unwrap();
        assert_eq!(arn.partition(), "aws");
        assert_eq!(arn.service(), "acm");
        assert_eq!(arn.region(), "eu-west-1");
        assert_eq!(arn.account(), "123456789012");
        assert_eq!(arn.resource(), "certificate/0a1b-2c3d");
        assert_eq!(arn.account_id().unwrap().as_str(), "123456789012");
        assert_eq!(arn.region_code().unwrap().as_str(), "eu-west-1");
        assert_eq!(arn.to_string(), s);
        assert_eq!(serde_json::to_string(&arn).unwrap(), format!("\"{s}\""));
        let back: Arn = serde_json::from_str(&format!("\"{s}\"")).unwrap();
        assert_eq!(back, arn);
    }

    #[test]
    fn global_services_and_resources_with_colons_parse() {
        let role: Arn = "arn:aws:iam::111111111111:role/certvault".parse().unwrap();
        assert_eq!((role.region(), role.resource()), ("", "role/certvault"));
        assert!(role.region_code().is_none());
        let bucket: Arn = "arn:aws-cn:s3:::my-bucket".parse().unwrap();
        assert_eq!((bucket.partition(), bucket.account()), ("aws-cn", ""));
        assert!(bucket.account_id().is_none());
        let listener = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2";
        assert_eq!(listener.parse::<Arn>().unwrap().to_string(), listener);
        let lambda: Arn = "arn:aws:lambda:us-east-1:123456789012:function:f:1"
            .parse()
            .unwrap();
        assert_eq!(lambda.resource(), "function:f:1");
    }

    #[test]
    fn what_is_not_an_arn_says_why() {
        for (s, why) in [
            ("", "starts with arn:"),
            ("certificate/abc", "starts with arn:"),
            ("arn:aws:acm:us-east-1", "needs arn:partition"),
            ("arn:aws:acm:us-east-1:123456789012", "needs arn:partition"),
            ("arn:aws:acm:us-east-1:123456789012:", "resource"),
            (
                "arn:gcp:acm:us-east-1:123456789012:certificate/x",
                "partition",
            ),
            ("arn:aws::us-east-1:123456789012:certificate/x", "service"),
            (
                "arn:aws:ACM:us-east-1:123456789012:certificate/x",
                "service",
            ),
            ("arn:aws:acm:us east 1:123456789012:certificate/x", "region"),
            ("arn:aws:acm:us-east-1:1234 5:certificate/x", "account"),
            (
                "arn:aws:acm:us-east-1:123456789012:certificate/x\n",
                "resource",
            ),
        ] {
            let e = s.parse::<Arn>().unwrap_err().to_string();
            assert!(e.contains(why), "{s:?}: {e}");
        }
    }

    #[test]
    fn account_ids_are_twelve_digits() {
        assert!("123456789012".parse::<AccountId>().is_ok());
        for bad in ["", "12345678901", "1234567890123", "12345678901a", "aws"] {
            assert!(bad.parse::<AccountId>().is_err(), "{bad}");
        }
        let id: AccountId = serde_json::from_str("\"210987654321\"").unwrap();
        assert_eq!(id.to_string(), "210987654321");
        assert!(serde_json::from_str::<AccountId>("\"21098765432\"").is_err());
    }

    #[test]
    fn region_codes() {
        for ok in ["us-east-1", "us-gov-west-1", "ap-southeast-7", "cn-north-1"] {
            assert_eq!(ok.parse::<Region>().unwrap().as_str(), ok);
        }
        for bad in [
            "",
            "global",
            "us-east",
            "us--east-1",
            "US-EAST-1",
            "us-east-1a",
            "-1",
        ] {
            assert!(bad.parse::<Region>().is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        /// Display(parse(s)) == s for every valid ARN.
        #[test]
        fn a_valid_arn_displays_as_it_was_written(
            partition in "aws(-[a-z]{2,4}){0,2}",
            service in "[a-z][a-z0-9-]{0,20}",
            region in "([a-z]{2}-[a-z]{4,9}-[0-9])?",
            account in "([0-9]{12})?",
            resource in "[A-Za-z0-9/:._+=@-]{1,60}",
        ) {
            let s = format!("arn:{partition}:{service}:{region}:{account}:{resource}");
            let arn: Arn = s.parse().unwrap();
            proptest::prop_assert_eq!(arn.to_string(), s.clone());
            proptest::prop_assert_eq!(arn.parts(), ArnParts::parse(&s).unwrap());
            proptest::prop_assert_eq!(
                (arn.partition(), arn.service(), arn.region(), arn.account(), arn.resource()),
                (partition.as_str(), service.as_str(), region.as_str(), account.as_str(), resource.as_str())
            );
        }

        /// Any text: no panic, and what parses displays as itself.
        #[test]
        fn any_text_parses_or_is_refused_without_panic(s in "\\PC*|arn:[a-z:-]{0,30}.{0,20}") {
            if let Ok(arn) = s.parse::<Arn>() {
                proptest::prop_assert_eq!(arn.to_string(), s.clone());
            }
            let _ = s.parse::<AccountId>();
            let _ = s.parse::<Region>();
        }
    }
}
