//! Arguments of the commands that keep ACM in step: deploy, undeploy, status, sync, agent.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::parse::{parse_anchor, parse_period};

#[derive(Debug, Args)]
pub(crate) struct DeployArgs {
    /// Entries (id, id prefix or name)
    #[arg(value_name = "ENTRY")]
    pub(crate) entries: Vec<String>,
    /// Every entry with a private key
    #[arg(long, conflicts_with = "entries")]
    pub(crate) all: bool,
    /// Every entry with this tag (repeatable)
    #[arg(long = "tag", value_name = "KEY=VALUE")]
    pub(crate) tags: Vec<String>,
    /// Regions: r1,r2 or `all`
    #[arg(long, value_delimiter = ',', required = true, value_name = "REGIONS")]
    pub(crate) regions: Vec<String>,
    /// Target from the configuration file [default: `default`, the ambient credentials]
    #[arg(long, value_name = "NAME")]
    pub(crate) target: Option<String>,
    /// Adopt the region's copy of the same certificate, or re-import into an imported
    /// certificate for the same names, instead of creating a second one
    #[arg(long)]
    pub(crate) replace_existing: bool,
    /// Re-import new versions (and re-create deleted ones) by itself, into the same ARN
    #[arg(long)]
    pub(crate) auto_redeploy: bool,
}

#[derive(Debug, Args)]
pub(crate) struct UndeployArgs {
    /// Entry (id, id prefix or name)
    pub(crate) entry: String,
    /// Only these regions [default: all of the entry's]
    #[arg(long, value_delimiter = ',', value_name = "REGIONS")]
    pub(crate) regions: Option<Vec<String>>,
    /// Only this target
    #[arg(long, value_name = "NAME")]
    pub(crate) target: Option<String>,
    /// Also delete the certificate from ACM: only if it carries this entry's tag or holds
    /// its certificate, and nothing uses it
    #[arg(long)]
    pub(crate) delete_from_acm: bool,
    /// While ACM says "in use" although nothing is listed as using it (it notices a detach
    /// only after minutes), keep trying this long
    #[arg(long, value_name = "PERIOD", default_value = "10m", value_parser = parse_period, requires = "delete_from_acm")]
    pub(crate) wait: time::Duration,
}

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// Only these regions
    #[arg(long, value_delimiter = ',', value_name = "REGIONS")]
    pub(crate) regions: Option<Vec<String>>,
    /// Only this entry (id, id prefix or name)
    #[arg(long, value_name = "ENTRY")]
    pub(crate) name: Option<String>,
    /// Read every deployed certificate from ACM, changed or not
    #[arg(long)]
    pub(crate) deep: bool,
}

#[derive(Debug, Args)]
pub(crate) struct SyncArgs {
    /// Print the plan; change nothing
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Read every deployed certificate from ACM, changed or not
    #[arg(long)]
    pub(crate) deep: bool,
    /// Overwrite drifted certificates instead of flagging them
    #[arg(long)]
    pub(crate) force: bool,
    /// An audit anchor kept outside the vault (`certvault log head`): nothing is pushed
    /// unless event N is still there with this digest (the vault was not rolled back)
    #[arg(long, value_name = "N:DIGEST", value_parser = parse_anchor)]
    pub(crate) expect_head: Option<(i64, String)>,
}

#[derive(Debug, Args)]
pub(crate) struct AgentArgs {
    /// Time between passes (30s, 5m, 1h)
    #[arg(long, default_value = "5m", value_parser = parse_period)]
    pub(crate) interval: time::Duration,
    /// Serve Prometheus metrics at http://ADDR/metrics
    #[arg(long, value_name = "ADDR")]
    pub(crate) metrics_addr: Option<std::net::SocketAddr>,
    /// Log format
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,
    /// Where to keep the audit anchor the agent last saw, outside the vault: a vault rolled
    /// back behind it is not acted on [default: $XDG_STATE_HOME/certvault/anchor-VAULT_ID,
    /// else ~/.local/state/certvault/anchor-VAULT_ID]
    #[arg(long, value_name = "FILE")]
    pub(crate) anchor_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines
    Text,
    /// One JSON object per line
    Json,
}
