//! The regions where ACM is offered (commercial partition), kept current in this one place.

/// A region ACM is offered in.
#[derive(Debug, Clone, Copy)]
pub struct AcmRegion {
    /// Region code.
    pub code: &'static str,
    /// Opt-in regions answer "invalid token" until an account enables them.
    pub opt_in: bool,
}

const fn r(code: &'static str, opt_in: bool) -> AcmRegion {
    AcmRegion { code, opt_in }
}

/// Every commercial region ACM is offered in (checked against the AWS regional services list).
pub const ACM_REGIONS: &[AcmRegion] = &[
    r("us-east-1", false),
    r("us-east-2", false),
    r("us-west-1", false),
    r("us-west-2", false),
    r("af-south-1", true),
    r("ap-east-1", true),
    r("ap-east-2", true),
    r("ap-south-1", false),
    r("ap-south-2", true),
    r("ap-southeast-1", false),
    r("ap-southeast-2", false),
    r("ap-southeast-3", true),
    r("ap-southeast-4", true),
    r("ap-southeast-5", true),
    r("ap-southeast-7", true),
    r("ap-northeast-1", false),
    r("ap-northeast-2", false),
    r("ap-northeast-3", false),
    r("ca-central-1", false),
    r("ca-west-1", true),
    r("eu-central-1", false),
    r("eu-central-2", true),
    r("eu-west-1", false),
    r("eu-west-2", false),
    r("eu-west-3", false),
    r("eu-south-1", true),
    r("eu-south-2", true),
    r("eu-north-1", false),
    r("il-central-1", true),
    r("me-south-1", true),
    r("me-central-1", true),
    r("mx-central-1", true),
    r("sa-east-1", false),
];

/// Regions of the other AWS partitions (GovCloud, China, ISO): accepted when named (their
/// accounts and credentials are their own), never part of `all`.
pub(crate) const OTHER_PARTITION_REGIONS: &[&str] = &[
    "us-gov-east-1",
    "us-gov-west-1",
    "cn-north-1",
    "cn-northwest-1",
    "us-iso-east-1",
    "us-iso-west-1",
    "us-isob-east-1",
    "us-isof-south-1",
    "us-isof-east-1",
    "eu-isoe-west-1",
];

/// Every region code.
pub fn all_regions() -> Vec<String> {
    ACM_REGIONS.iter().map(|r| r.code.to_owned()).collect()
}

/// Whether `code` is an opt-in region.
pub(crate) fn is_opt_in(code: &str) -> bool {
    ACM_REGIONS.iter().any(|r| r.code == code && r.opt_in)
}

/// Whether `code` looks like a region code (`xx-name-N`); unknown but well-formed codes are
/// accepted so a new region works before this list learns it.
pub(crate) fn is_well_formed(code: &str) -> bool {
    code.parse::<crate::aws::Region>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_is_well_formed_and_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for r in ACM_REGIONS {
            assert!(is_well_formed(r.code), "{}", r.code);
            assert!(seen.insert(r.code), "duplicate {}", r.code);
        }
        assert!(!is_well_formed("us_east_1"));
        assert!(!is_well_formed("useast1"));
        assert!(!is_well_formed("us-east-"));
        assert!(is_opt_in("af-south-1") && !is_opt_in("us-east-1"));
    }
}
