//! Which (target, region, OLD ARN, NEW ARN) pairs `rotate OLD NEW` moves: OLD and NEW are
//! ARNs or vault entries; an entry stands for every ARN where it is in ACM (its
//! deployments, then what discovery found), each OLD paired with NEW's ARN in the same
//! account and region. Read from the vault only: nothing is asked of AWS here.

use vault::Vault;

use crate::{
    aws::{arn_location, names_an_arn},
    config::Config,
};

/// What `rotate` is asked to move.
#[derive(Debug, Clone, Copy)]
pub struct RotateRequest<'a> {
    /// The certificate listeners serve now: an ACM ARN, or a vault entry (id or name).
    pub old: &'a str,
    /// The one they will serve: an ACM ARN, or a vault entry.
    pub new: &'a str,
    /// Only through this target.
    pub target: Option<&'a str>,
    /// Only in these regions (expanded), or wherever OLD is.
    pub regions: Option<&'a [String]>,
}

/// One pair to rotate: where, through which target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    /// The target whose credentials reach the certificates.
    pub target: String,
    /// Their region.
    pub region: String,
    /// The certificate listeners serve now.
    pub old: String,
    /// The one they will serve.
    pub new: String,
}

/// A place where OLD is in ACM but NEW is not: nothing can move there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The region.
    pub region: String,
    /// The target OLD was found through.
    pub target: String,
}

/// The pairs to move, and the places skipped.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// One pair per OLD ARN, sorted by (OLD, NEW).
    pub pairs: Vec<Pair>,
    /// Where OLD is and NEW is not, each place once, in the order found.
    pub skipped: Vec<Skipped>,
}

/// Why no selection could be made. Nothing was read from AWS or changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SelectError {
    /// A string that starts like an ARN but is not an ACM certificate's (a usage error).
    #[error("{0}: not an ACM certificate ARN")]
    NotAnArn(String),
    /// OLD, an ARN, is outside the regions asked for (a usage error).
    #[error("{arn} is in {region}, not in --regions")]
    OutsideRegions {
        /// OLD.
        arn: String,
        /// Its region.
        region: String,
    },
    /// Several targets could reach the certificate, and none was chosen (a usage error).
    #[error("several targets are configured ({}): choose one with --target", .0.join(", "))]
    SeveralTargets(Vec<String>),
    /// OLD is an entry that the vault knows in ACM nowhere (in those regions).
    #[error("{old} is in ACM nowhere the vault knows of{}", if *.in_regions { " in those regions" } else { "" })]
    Nowhere {
        /// OLD, as given.
        old: String,
        /// Whether regions were given.
        in_regions: bool,
    },
    /// One OLD ARN would move to two NEW ARNs (two entries' copies in one account).
    #[error("{old} would move to both {first} and {second}")]
    TwoNews {
        /// The OLD ARN.
        old: String,
        /// One NEW ARN.
        first: String,
        /// The other.
        second: String,
    },
    /// The configuration named no such target, or a region is unknown.
    #[error(transparent)]
    Config(#[from] crate::Error),
    /// The vault could not be read, or an entry is unknown.
    #[error(transparent)]
    Vault(#[from] vault::Error),
}

impl SelectError {
    /// Whether it is a mistake in how the command was called.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            SelectError::NotAnArn(_)
                | SelectError::OutsideRegions { .. }
                | SelectError::SeveralTargets(_)
        )
    }
}

/// (target, region, ARN) of every place an entry's certificate is in ACM: its deployments'
/// ARNs, then what discovery found (a copy imported by hand, say), each ARN once.
pub(crate) fn arns_of(v: &Vault, id: &str) -> vault::Result<Vec<(String, String, String)>> {
    let mut out: Vec<(String, String, String)> = Vec::new();
    for d in v.deployments()?.into_iter().filter(|d| d.entry_id == id) {
        if let Some(arn) = d.arn
            && !out.iter().any(|(_, _, a)| *a == arn)
        {
            out.push((d.target, d.region, arn));
        }
    }
    for r in v.acm_records_of(id)? {
        if r.gone_at.is_none() && !out.iter().any(|(_, _, a)| *a == r.summary.arn) {
            out.push((r.location.target, r.location.region, r.summary.arn));
        }
    }
    Ok(out)
}

/// Where a certificate named by ARN was recorded (its target), if the vault knows it.
fn recorded_target(v: &Vault, arn: &str) -> vault::Result<Option<String>> {
    if let Some(d) = v
        .deployments()?
        .into_iter()
        .find(|d| d.arn.as_deref() == Some(arn))
    {
        return Ok(Some(d.target));
    }
    Ok(v.acm_record(arn)?.map(|r| r.location.target))
}

/// The one target that reaches `region` (`name`, or the only one configured).
pub(crate) fn one_target(
    config: &Config,
    name: Option<&str>,
    region: &str,
) -> Result<crate::config::Target, SelectError> {
    let regions = [region.to_owned()];
    let mut all = config.select(name, Some(&regions))?;
    if all.len() != 1 {
        return Err(SelectError::SeveralTargets(
            all.iter().map(|t| t.name.clone()).collect(),
        ));
    }
    Ok(all.remove(0))
}

fn account_of(arn: &str) -> Option<&str> {
    arn_location(arn).map(|(account, _)| account)
}

/// The pairs `rotate` moves (see the module's doc), one per OLD ARN: two NEW ARNs for one
/// OLD are refused.
pub fn select_pairs(
    v: &Vault,
    config: &Config,
    req: &RotateRequest<'_>,
) -> Result<Selection, SelectError> {
    let mut selection = if names_an_arn(req.old) && names_an_arn(req.new) {
        both_arns(v, config, req)?
    } else {
        by_entries(v, config, req)?
    };
    let pairs = &mut selection.pairs;
    pairs.sort_by(|a, b| (&a.old, &a.new).cmp(&(&b.old, &b.new)));
    pairs.dedup_by(|a, b| a.old == b.old && a.new == b.new);
    if let Some(w) = pairs.windows(2).find(|w| w[0].old == w[1].old) {
        return Err(SelectError::TwoNews {
            old: w[0].old.clone(),
            first: w[0].new.clone(),
            second: w[1].new.clone(),
        });
    }
    Ok(selection)
}

fn in_regions(req: &RotateRequest<'_>, region: &str) -> bool {
    req.regions.is_none_or(|rs| rs.iter().any(|x| x == region))
}

fn both_arns(
    v: &Vault,
    config: &Config,
    req: &RotateRequest<'_>,
) -> Result<Selection, SelectError> {
    let Some((_, region)) = arn_location(req.old) else {
        return Err(SelectError::NotAnArn(req.old.to_owned()));
    };
    if !in_regions(req, region) {
        return Err(SelectError::OutsideRegions {
            arn: req.old.to_owned(),
            region: region.to_owned(),
        });
    }
    let target = match (req.target, recorded_target(v, req.old)?) {
        (Some(t), _) => t.to_owned(),
        (None, Some(t)) => t,
        (None, None) => one_target(config, req.target, region)?.name,
    };
    Ok(Selection {
        pairs: vec![Pair {
            target,
            region: region.to_owned(),
            old: req.old.to_owned(),
            new: req.new.to_owned(),
        }],
        skipped: Vec::new(),
    })
}

/// (target, region, ARN) of one side: the ARN given, or every ARN of the entry.
fn side(
    v: &Vault,
    config: &Config,
    req: &RotateRequest<'_>,
    s: &str,
) -> Result<Vec<(String, String, String)>, SelectError> {
    if !names_an_arn(s) {
        let (id, _) = v.resolve(s)?;
        return Ok(arns_of(v, &id)?);
    }
    let Some((_, region)) = arn_location(s) else {
        return Err(SelectError::NotAnArn(s.to_owned()));
    };
    let target = match recorded_target(v, s)? {
        Some(t) => t,
        None => one_target(config, req.target, region)?.name,
    };
    Ok(vec![(target, region.to_owned(), s.to_owned())])
}

/// Every ARN of OLD (an entry can be in ACM more than once in a region: its deployment and
/// a copy discovery found), each paired with NEW's ARN in the same account and region (its
/// deployment first).
fn by_entries(
    v: &Vault,
    config: &Config,
    req: &RotateRequest<'_>,
) -> Result<Selection, SelectError> {
    let olds = side(v, config, req, req.old)?;
    let news = side(v, config, req, req.new)?;
    let mut out = Selection::default();
    for (target, region, old) in olds {
        if !in_regions(req, &region) || req.target.is_some_and(|t| t != target) {
            continue;
        }
        match news
            .iter()
            .find(|(_, r, n)| *r == region && account_of(n) == account_of(&old))
        {
            Some((_, _, new)) => out.pairs.push(Pair {
                target,
                region,
                old,
                new: new.clone(),
            }),
            None => {
                let skip = Skipped { region, target };
                if !out.skipped.contains(&skip) {
                    out.skipped.push(skip);
                }
            }
        }
    }
    if out.pairs.is_empty() && out.skipped.is_empty() {
        return Err(SelectError::Nowhere {
            old: req.old.to_owned(),
            in_regions: req.regions.is_some(),
        });
    }
    Ok(out)
}

impl SelectError {
    /// What a person can do about it, if something (see [`crate::Remedy`]).
    pub fn remedy(&self) -> Option<crate::Remedy> {
        match self {
            SelectError::Vault(e) => e.remedy().map(crate::Remedy::Vault),
            SelectError::Config(e) => e.remedy(),
            _ => None,
        }
    }
}
