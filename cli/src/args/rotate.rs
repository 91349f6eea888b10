//! Arguments of `certvault rotate`.

use super::common::Yes;
use clap::Args;

#[derive(Debug, Args)]
pub(crate) struct RotateArgs {
    /// The certificate listeners serve now: an ACM ARN, or a vault entry (its ARN in each
    /// region)
    pub(crate) old: String,
    /// The certificate they will serve: an ACM ARN, or a vault entry in ACM in the same
    /// regions
    pub(crate) new: String,
    /// Only these regions (r1,r2 or `all`)
    #[arg(long, value_delimiter = ',', value_name = "REGIONS")]
    pub(crate) regions: Vec<String>,
    /// The target whose credentials to use [default: the one recorded]
    #[arg(long, value_name = "NAME")]
    pub(crate) target: Option<String>,
    /// Print the plan; change nothing
    #[arg(long)]
    pub(crate) dry_run: bool,
    #[command(flatten)]
    pub(crate) confirm: Yes,
}
