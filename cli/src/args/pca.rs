//! Arguments of `certvault pca ...`: AWS Private CA.

use super::common::CaOwner;
use clap::{Args, Subcommand};

use super::ca::KeyTypeArg;

use super::parse::{parse_period, parse_validity};

#[derive(Debug, Args)]
pub(crate) struct PcaArgs {
    #[command(subcommand)]
    pub(crate) action: PcaAction,
}

#[derive(Debug, Subcommand)]
pub(crate) enum PcaAction {
    /// List the AWS Private CAs: state, type, key, end (a DELETED one with its restore
    /// deadline)
    List(PcaListArgs),
    /// Issue a certificate from an AWS Private CA for a key made in the vault: only a CSR
    /// leaves; the certificate and chain land next to the sealed key
    Issue(PcaIssueArgs),
}

#[derive(Debug, Args)]
pub(crate) struct PcaListArgs {
    /// Regions to look in (`all` for every region) [default: the target's, else $AWS_REGION]
    #[arg(long, value_delimiter = ',', value_name = "REGIONS")]
    pub(crate) regions: Option<Vec<String>>,
    /// The target whose credentials to use [default: every configured one]
    #[arg(long, value_name = "NAME")]
    pub(crate) target: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct PcaIssueArgs {
    /// The CA (arn:aws:acm-pca:REGION:ACCOUNT:certificate-authority/ID)
    #[arg(long, value_name = "ARN")]
    pub(crate) ca_arn: String,
    /// A DNS name; repeat for several (the first is the CN and the default entry name)
    #[arg(long, value_name = "NAME", required = true)]
    pub(crate) dns: Vec<String>,
    /// How long it is valid (whole days)
    #[arg(long, default_value = "90d", value_parser = parse_validity)]
    pub(crate) validity: time::Duration,
    /// Its key type
    #[arg(long, value_enum, default_value = "ec-p256")]
    pub(crate) key_type: KeyTypeArg,
    /// The entry's name (default: the first name)
    #[arg(long)]
    pub(crate) name: Option<String>,
    #[command(flatten)]
    pub(crate) owner: CaOwner,
    /// How long to wait for AWS Private CA to issue it
    #[arg(long, value_name = "PERIOD", default_value = "5m", value_parser = parse_period)]
    pub(crate) timeout: time::Duration,
}
