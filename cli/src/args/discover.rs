//! Arguments of `certvault discover`.

use clap::Args;

#[derive(Debug, Args)]
pub(crate) struct DiscoverArgs {
    /// Regions to scan: r1,r2 or `all` [default: the targets' regions, else $AWS_REGION]
    #[arg(long, value_delimiter = ',', value_name = "REGIONS")]
    pub(crate) regions: Option<Vec<String>>,
    /// Only this target from the configuration file
    #[arg(long, value_name = "NAME")]
    pub(crate) target: Option<String>,
    /// Also bring in IAM server certificates
    #[arg(long)]
    pub(crate) include_iam: bool,
    /// Describe and read every certificate, not only new or changed ones
    #[arg(long)]
    pub(crate) deep: bool,
}
