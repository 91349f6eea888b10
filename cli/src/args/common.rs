//! Argument groups that several commands share word for word (`#[command(flatten)]`), so
//! each says the same and means the same wherever it appears.

use clap::Args;

/// `--yes`, for a command that asks before it acts.
#[derive(Debug, Args)]
pub(crate) struct Yes {
    /// Do not ask for confirmation
    #[arg(long)]
    pub(crate) yes: bool,
}

/// `--regions` (every region unless told) and `--target` (every target unless told): what a
/// scan over the configured accounts covers.
#[derive(Debug, Args)]
pub(crate) struct Scan {
    /// Regions: r1,r2 or `all`
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "REGIONS",
        default_value = "all"
    )]
    pub(crate) regions: Vec<String>,
    /// Only this target from the configuration file
    #[arg(long, value_name = "NAME")]
    pub(crate) target: Option<String>,
}

/// `--region` and `--target` for an entry already in ACM, the target defaulting to the
/// one recorded with it.
#[derive(Debug, Args)]
pub(crate) struct Recorded {
    /// The region, when the entry is in ACM in several
    #[arg(long, value_name = "REGION")]
    pub(crate) region: Option<String>,
    /// The target whose credentials to use [default: the one recorded]
    #[arg(long, value_name = "NAME")]
    pub(crate) target: Option<String>,
}

/// `--region` and `--target` for a certificate named by ARN or entry, the target defaulting
/// to the one recorded for the ARN.
#[derive(Debug, Args)]
pub(crate) struct RecordedForArn {
    /// The region, when the entry is in ACM in several
    #[arg(long, value_name = "REGION")]
    pub(crate) region: Option<String>,
    /// The target whose credentials to use [default: the one recorded for the ARN, or
    /// `default` for an ARN the vault has not seen]
    #[arg(long, value_name = "NAME")]
    pub(crate) target: Option<String>,
}

/// `--target` for a certificate a Private CA issues: the account that owns the CA.
#[derive(Debug, Args)]
pub(crate) struct CaOwner {
    /// The target whose credentials to use (its account must own the CA) [default: the only
    /// one configured, or `default` without a configuration]
    #[arg(long, value_name = "NAME")]
    pub(crate) target: Option<String>,
}
