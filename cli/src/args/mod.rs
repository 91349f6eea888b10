//! Command-line arguments: clap's definition of every command, one file per noun
//! (`args/acm.rs` for `certvault acm ...`), the value parsers in `args/parse.rs`. Nothing
//! here reads a file, the environment or the vault: the commands do.

mod acm;
mod ca;
mod common;
mod deploy;
mod discover;
mod entries;
mod parse;
mod pca;
mod rds;
mod rotate;
mod shell;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub(crate) use self::{
    acm::*, ca::*, deploy::*, discover::*, entries::*, parse::*, pca::*, rds::*, rotate::*,
    shell::*,
};

/// An encrypted vault of TLS certificates, their private keys and CA keys.
///
/// Passphrases come from a prompt, an environment variable or a file: never from arguments.
#[derive(Debug, Parser)]
#[command(name = "certvault", version, about, long_about = None, propagate_version = true)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub(crate) struct Global {
    /// The vault file [env: CERTVAULT_PATH; default: $XDG_DATA_HOME/certvault/vault.db]
    // The variables are read by hand, not with clap's `env`: clap would show an option set
    // from the environment in every usage line, as if it had to be given.
    #[arg(long, global = true, value_name = "PATH")]
    pub(crate) vault: Option<PathBuf>,
    /// Output format [env: CERTVAULT_OUTPUT; default: table]
    #[arg(long, global = true, value_enum)]
    pub(crate) output: Option<Output>,
    /// Tables show every value in full, however wide (on a terminal, the widest columns
    /// are otherwise shortened with … to fit)
    #[arg(long, global = true)]
    pub(crate) wide: bool,
    /// Read the vault passphrase from this file (else $CERTVAULT_PASSPHRASE, else a prompt)
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) passphrase_file: Option<PathBuf>,
    /// Configuration file: AWS targets, quotas, retries [env: CERTVAULT_CONFIG; default:
    /// $XDG_CONFIG_HOME/certvault/config.toml]
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// How long a command that writes on AWS's behalf (deploy, undeploy, sync, discover,
    /// each agent pass) waits for another one to finish before giving up (0s: do not wait)
    #[arg(long, global = true, value_name = "PERIOD", default_value = "30s", value_parser = parse_period)]
    pub(crate) lock_timeout: time::Duration,
    /// Send private keys to a plain-http ACM endpoint that is not this machine (for a test
    /// setup you trust; never needed with AWS)
    #[arg(long, global = true)]
    pub(crate) allow_insecure_endpoint: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Output {
    /// Tables for people
    Table,
    /// One JSON document, for scripts
    Json,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create a new vault
    Init,
    /// Change the vault passphrase (rewraps the data key only)
    Passwd(PasswdArgs),
    /// Import certificates (PEM, DER, PKCS#12), with their chains and keys
    Import(ImportArgs),
    /// List entries
    List(ListArgs),
    /// Show one entry with all its versions
    Show(ShowArgs),
    /// Export a certificate (and, on request, its key)
    Export(ExportArgs),
    /// Remove an entry from the vault (never from AWS)
    Remove(RemoveArgs),
    /// Show the audit log, or verify it
    Log(LogArgs),
    /// Check every row of the vault and the audit log for changes made outside certvault;
    /// exit 1 naming each bad row
    Verify,
    /// Write a consistent copy of the vault (safe while the agent runs)
    Backup(BackupArgs),
    /// Find every certificate in ACM (and IAM) in the chosen regions and accounts
    Discover(DiscoverArgs),
    /// Deploy entries to ACM regions and keep them there
    Deploy(DeployArgs),
    /// Forget deployments (and, with --delete-from-acm, delete the certificates from ACM)
    Undeploy(UndeployArgs),
    /// Show every deployment's state, checked against ACM; exit 3 if any is not in sync
    Status(StatusArgs),
    /// One reconcile pass over every deployment
    Sync(SyncArgs),
    /// Keep ACM in sync: a reconcile pass every interval, until SIGTERM or SIGINT
    Agent(AgentArgs),
    /// The vault's own private CA: create, issue, sign, revoke, CRL, key lifecycle
    Ca(CaArgs),
    /// Renew an entry issued by the vault's CA: a new version, same names and key type
    Renew(RenewArgs),
    /// Act on certificates in ACM itself (request, requests, request-private, renew, revoke,
    /// delete, export-key, migrate-validation)
    Acm(AcmArgs),
    /// AWS Private CA: list its CAs; issue a certificate for a key made in the vault
    Pca(PcaArgs),
    /// Move every load balancer listener that serves one certificate to another, without
    /// interrupting traffic (plan first; --dry-run; resumes after a failure)
    Rotate(RotateArgs),
    /// RDS, Aurora and DocumentDB: the server CA each instance pins
    Rds(RdsArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish)
    Completions(CompletionsArgs),
    /// Print the manual page, or write one page per command into a folder
    Man(ManArgs),
}

#[cfg(test)]
mod tests;
