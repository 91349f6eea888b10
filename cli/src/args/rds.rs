//! Arguments of `certvault rds ...`.

use super::common::{Scan, Yes};
use clap::{Args, Subcommand};

use super::parse::parse_period;

#[derive(Debug, Args)]
pub(crate) struct RdsArgs {
    #[command(subcommand)]
    pub(crate) action: RdsAction,
}

#[derive(Debug, Subcommand)]
pub(crate) enum RdsAction {
    /// Every DB instance's server CA, whether it is the expected one and when it ends
    /// (exit 3 when any needs rotation); --apply moves each to the expected CA
    CaAudit(RdsCaAuditArgs),
}

#[derive(Debug, Args)]
pub(crate) struct RdsCaAuditArgs {
    #[command(flatten)]
    pub(crate) scan: Scan,
    /// The CA every instance should pin [default: each region's default for new instances]
    #[arg(long, value_name = "ID")]
    pub(crate) expected_ca: Option<String>,
    /// Move each instance that needs it to the expected CA (ModifyDBInstance), one at a time,
    /// each waited for until it is available again, a cluster's readers before its writer
    #[arg(long)]
    pub(crate) apply: bool,
    /// With --apply: the new CA takes effect at each instance's next restart
    /// (CertificateRotationRestart=false)
    #[arg(long)]
    pub(crate) no_restart: bool,
    /// With --apply: how long to wait for each instance to be available again (and, before
    /// it is changed, for it and its cluster's members); past it, nothing further is changed
    #[arg(long, value_name = "PERIOD", default_value = "30m", value_parser = parse_period)]
    pub(crate) wait_timeout: time::Duration,
    /// With --apply: after a change that restarts an instance, how long one that still reads
    /// available is watched for its restart to begin before it is taken as done
    #[arg(long, value_name = "PERIOD", default_value = "60s", value_parser = parse_period)]
    pub(crate) restart_settle: time::Duration,
    #[command(flatten)]
    pub(crate) confirm: Yes,
}
