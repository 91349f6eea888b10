//! The configuration file: targets (accounts as a profile or a role to assume, each with
//! its regions), request-rate quotas, retry policy and concurrency.
//!
//! ```toml
//! [[targets]]
//! name = "prod"
//! profile = "prod-readonly"                                  # optional
//! role_arn = "arn:aws:iam::111111111111:role/certvault"      # optional, assumed from the profile
//! regions = ["us-east-1", "eu-west-1"]                       # or ["all"]
//!
//! [quotas]            # requests per second, per account and region
//! import_certificate = 1
//!
//! [retry]
//! total_timeout_s = 120
//! ```

use std::path::Path;

use serde::Deserialize;

pub use crate::aws::{
    Target,
    retry::{Quotas, RetryPolicy},
};
use crate::{
    error::{Error, Result},
    regions,
};

/// How much to do at once.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Concurrency {
    /// Regions (across all targets) worked on at the same time.
    pub regions: usize,
    /// Calls in flight within one region.
    pub per_region: usize,
}

impl Default for Concurrency {
    fn default() -> Self {
        Concurrency {
            regions: 16,
            per_region: 4,
        }
    }
}

/// How a reconcile pass behaves.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyncSettings {
    /// After an ImportCertificate whose answer was lost (or a crash while it was under
    /// way), how long to keep looking for the copy it may have made before importing again:
    /// ACM's listing can lag behind an import.
    pub import_settle_s: u64,
    /// Resolving a target's credentials and account gives up after this long.
    pub connect_timeout_s: u64,
    /// Results are recorded at least every this many steps.
    pub commit_every: usize,
    /// On SIGTERM, calls in flight get this long to finish before they are abandoned (an
    /// abandoned import is looked for on the next pass, never repeated blindly).
    pub stop_grace_s: u64,
}

impl Default for SyncSettings {
    fn default() -> Self {
        SyncSettings {
            import_settle_s: 60,
            connect_timeout_s: 30,
            commit_every: 50,
            stop_grace_s: 8,
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Accounts and their regions.
    pub targets: Vec<Target>,
    /// Request-rate quotas.
    pub quotas: Quotas,
    /// Retry policy.
    pub retry: RetryPolicy,
    /// Concurrency limits.
    pub concurrency: Concurrency,
    /// Reconcile settings.
    pub sync: SyncSettings,
    /// Regions newer than this build's list (`regions = [...]` accepts them then).
    pub extra_regions: Vec<String>,
}

impl Config {
    /// Reads a configuration file. A missing file at the default location is an empty
    /// configuration; a missing file that was named explicitly is an error.
    pub fn load(path: &Path, explicit: bool) -> Result<Config> {
        let err = |reason: String| Error::Config {
            path: path.display().to_string(),
            reason,
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
                return Ok(Config::default());
            }
            Err(e) => return Err(err(e.to_string())),
        };
        let config: Config = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
        config.validate().map_err(err)?;
        Ok(config)
    }

    fn validate(&self) -> std::result::Result<(), String> {
        let mut names = std::collections::BTreeSet::new();
        for t in &self.targets {
            if t.name.trim().is_empty() {
                return Err("a target has no name".into());
            }
            if !names.insert(&t.name) {
                return Err(format!("two targets are named '{}'", t.name));
            }
            for r in &t.regions {
                if r != "all" && !regions::is_well_formed(r) {
                    return Err(format!("target '{}': '{r}' is not a region code", t.name));
                }
            }
            if let Err(e) = expand_regions(&t.regions, &self.extra_regions) {
                return Err(format!("target '{}': {e}", t.name));
            }
            if let Some(arn) = &t.role_arn
                && !arn
                    .parse::<crate::aws::Arn>()
                    .is_ok_and(|a| a.service() == "iam" && a.resource().starts_with("role/"))
            {
                return Err(format!("target '{}': '{arn}' is not a role ARN", t.name));
            }
        }
        for r in &self.extra_regions {
            if !regions::is_well_formed(r) {
                return Err(format!("extra_regions: '{r}' is not a region code"));
            }
        }
        let q = &self.quotas;
        for (name, v) in [
            ("list_certificates", q.list_certificates),
            ("describe_certificate", q.describe_certificate),
            ("get_certificate", q.get_certificate),
            ("import_certificate", q.import_certificate),
            ("add_tags_to_certificate", q.add_tags_to_certificate),
            ("list_tags_for_certificate", q.list_tags_for_certificate),
            ("delete_certificate", q.delete_certificate),
            ("iam", q.iam),
        ] {
            if !(v > 0.0 && v <= 10_000.0) {
                return Err(format!("quotas.{name} must be a rate above 0"));
            }
        }
        if self.concurrency.regions == 0 || self.concurrency.per_region == 0 {
            return Err("concurrency limits must be at least 1".into());
        }
        if self.sync.commit_every == 0 || self.sync.commit_every > 10_000 {
            return Err("sync.commit_every must be between 1 and 10000".into());
        }
        if self.sync.stop_grace_s > 300 {
            return Err("sync.stop_grace_s must be at most 300".into());
        }
        if self.sync.import_settle_s > 86_400 {
            return Err("sync.import_settle_s must be at most 86400 (a day)".into());
        }
        if self.sync.connect_timeout_s == 0 {
            return Err("sync.connect_timeout_s must be at least 1".into());
        }
        if self.retry.max_attempts == 0 {
            return Err("retry.max_attempts must be at least 1".into());
        }
        Ok(())
    }

    /// The targets to work on: the one named, else all configured, else the default
    /// credentials as target `default`. `regions` (from `--regions`) replaces each target's.
    pub fn select(&self, name: Option<&str>, regions: Option<&[String]>) -> Result<Vec<Target>> {
        let mut chosen: Vec<Target> = match name {
            Some(n) if self.targets.is_empty() && n == "default" => vec![default_target()],
            Some(n) => vec![
                self.targets
                    .iter()
                    .find(|t| t.name == n)
                    .cloned()
                    .ok_or_else(|| Error::UnknownTarget(n.to_owned()))?,
            ],
            None if self.targets.is_empty() => vec![default_target()],
            None => self.targets.clone(),
        };
        if let Some(r) = regions {
            for t in &mut chosen {
                t.regions = r.to_vec();
            }
        }
        for t in &mut chosen {
            t.regions = expand_regions(&t.regions, &self.extra_regions)?;
        }
        Ok(chosen)
    }
}

fn default_target() -> Target {
    Target {
        name: "default".into(),
        ..Target::default()
    }
}

/// Expands `all`, checks each code against the regions ACM is offered in (and
/// `extra_regions`), removes duplicates (keeping order). An unknown code is refused with
/// the closest known one: a typo must not become a deployment retried on every pass.
pub fn expand_regions(list: &[String], extra: &[String]) -> Result<Vec<String>> {
    let known: Vec<String> = regions::all_regions()
        .into_iter()
        .chain(
            regions::OTHER_PARTITION_REGIONS
                .iter()
                .map(|r| (*r).to_owned()),
        )
        .chain(extra.iter().cloned())
        .collect();
    let mut out: Vec<String> = Vec::new();
    for r in list {
        let r = r.trim();
        if r == "all" {
            for code in regions::all_regions() {
                if !out.contains(&code) {
                    out.push(code);
                }
            }
        } else if known.iter().any(|k| k == r) {
            if !out.iter().any(|x| x == r) {
                out.push(r.to_owned());
            }
        } else {
            let suggestion = known
                .iter()
                .map(|k| (strsim::levenshtein(k, r), k))
                .filter(|(d, _)| *d <= 3)
                .min()
                .map(|(_, k)| k.clone());
            return Err(Error::UnknownRegion {
                region: r.to_owned(),
                suggestion,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets_quotas_and_rejects_mistakes() {
        let c: Config = toml::from_str(
            r#"
            [[targets]]
            name = "prod"
            role_arn = "arn:aws:iam::111111111111:role/certvault"
            regions = ["us-east-1", "eu-west-1"]
            [[targets]]
            name = "dev"
            profile = "dev"
            regions = ["all"]
            [quotas]
            import_certificate = 0.5
            "#,
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.quotas.import_certificate, 0.5);
        assert_eq!(c.quotas.list_certificates, 8.0);
        let sel = c.select(Some("dev"), None).unwrap();
        assert_eq!(sel[0].regions.len(), regions::ACM_REGIONS.len());
        let sel = c.select(None, Some(&["ap-south-1".into()])).unwrap();
        assert!(sel.iter().all(|t| t.regions == ["ap-south-1"]));
        assert!(matches!(
            c.select(Some("nope"), None),
            Err(Error::UnknownTarget(_))
        ));

        let bad = |s: &str| {
            toml::from_str::<Config>(s)
                .map_err(|e| e.to_string())
                .and_then(|c| c.validate())
        };
        assert!(bad("[[targets]]\nname = \"a\"\nregions = [\"us_east_1\"]").is_err());
        assert!(bad("[[targets]]\nname = \"a\"\n[[targets]]\nname = \"a\"").is_err());
        assert!(bad("[[targets]]\nname = \"a\"\nrole_arn = \"nope\"").is_err());
        assert!(bad("[quotas]\nimport_certificate = 0").is_err());
        assert!(bad("[[targets]]\nname = \"a\"\nunknown = 1").is_err());
    }

    #[test]
    fn no_config_means_the_default_target() {
        let c = Config::default();
        let t = c
            .select(None, Some(&["us-east-1".into(), "us-east-1".into()]))
            .unwrap();
        assert_eq!(t[0].name, "default");
        assert_eq!(t[0].regions, ["us-east-1"]);
        assert!(matches!(
            expand_regions(&["moon-1".into()], &[]),
            Err(Error::UnknownRegion {
                suggestion: None,
                ..
            })
        ));
        match expand_regions(&["us-est-1".into()], &[]) {
            Err(Error::UnknownRegion { suggestion, .. }) => {
                assert_eq!(suggestion.as_deref(), Some("us-east-1"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            expand_regions(&["xx-new-1".into()], &["xx-new-1".into()]).unwrap(),
            ["xx-new-1"]
        );
    }
}
