//! Arguments of the commands on the vault alone: passwd, import, list, show, export, remove, log, backup.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

use super::parse::{parse_anchor, parse_period, parse_source};

#[derive(Debug, Args)]
pub(crate) struct PasswdArgs {
    /// Read the new passphrase from this file (else $CERTVAULT_NEW_PASSPHRASE, else a prompt)
    #[arg(long, value_name = "FILE")]
    pub(crate) new_passphrase_file: Option<PathBuf>,
    /// Also replace the data key: every private key sealed again and every row MACed again
    /// under a new one, so an old copy of the vault and its passphrase open nothing added
    /// afterwards (a running agent must be restarted)
    #[arg(long)]
    pub(crate) rotate_data_key: bool,
}

#[derive(Debug, Args)]
pub(crate) struct BackupArgs {
    /// Where to write the copy (0600)
    pub(crate) out: PathBuf,
    /// Replace OUT if it exists
    #[arg(long)]
    pub(crate) force: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// Files to import: each makes (or renews) one entry
    #[arg(required = true, value_name = "FILE")]
    pub(crate) files: Vec<PathBuf>,
    /// The private key, when it is in a separate file (one FILE only)
    #[arg(long, value_name = "FILE")]
    pub(crate) key: Option<PathBuf>,
    /// Intermediate and root certificates, when they are in a separate file
    #[arg(long, value_name = "FILE")]
    pub(crate) chain: Option<PathBuf>,
    /// Entry name (one FILE only); default: the certificate's common name or first SAN.
    /// An existing name gets a new version.
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// Label the entries: key=value (repeatable)
    #[arg(long = "tag", value_name = "KEY=VALUE")]
    pub(crate) tags: Vec<String>,
    /// Password of PKCS#12 files (else $CERTVAULT_P12_PASSWORD)
    #[arg(long, value_name = "FILE")]
    pub(crate) p12_password_file: Option<PathBuf>,
    /// Password of an encrypted PKCS#8 key (else $CERTVAULT_KEY_PASSWORD)
    #[arg(long, value_name = "FILE")]
    pub(crate) key_password_file: Option<PathBuf>,
    /// Say what happened to every file (several files otherwise get one summary line)
    #[arg(long, short = 'v')]
    pub(crate) verbose: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Only certificates expiring within this period (30d, 12h, 2w; expired included); exit 3 if any
    #[arg(long, value_name = "PERIOD", value_parser = parse_period)]
    pub(crate) expiring_within: Option<time::Duration>,
    /// Only entries from this source
    #[arg(long, value_parser = parse_source)]
    pub(crate) source: Option<vault::entries::Source>,
    /// Only certificates with a name (CN or SAN) matching this pattern; `*` is a wildcard
    #[arg(long, value_name = "PATTERN")]
    pub(crate) domain: Option<String>,
    /// Only entries with this tag (repeatable)
    #[arg(long = "tag", value_name = "KEY=VALUE")]
    pub(crate) tags: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ShowArgs {
    /// Entry id, id prefix, or name
    pub(crate) entry: String,
    /// Print the current certificate and its chain as PEM
    #[arg(long)]
    pub(crate) pem: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// Certificate and chain; with --with-key an encrypted PKCS#8 key
    Pem,
    /// The certificate alone
    Der,
    /// PKCS#12 (AES-256-CBC, PBKDF2-SHA256), readable by OpenSSL 3 and Java
    P12,
}

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// Entry id, id prefix, or name
    pub(crate) entry: String,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Pem)]
    pub(crate) format: Format,
    /// Write here (0600) instead of standard output
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,
    /// Include the private key (encrypted with the export passphrase)
    #[arg(long)]
    pub(crate) with_key: bool,
    /// Write the key unencrypted (PEM only; needs --out)
    #[arg(long, requires = "with_key")]
    pub(crate) unencrypted_key: bool,
    /// Read the export passphrase from this file (else $CERTVAULT_EXPORT_PASSPHRASE, else a prompt)
    #[arg(long, value_name = "FILE")]
    pub(crate) export_passphrase_file: Option<PathBuf>,
    /// Replace --out if it exists
    #[arg(long)]
    pub(crate) force: bool,
    /// Export this version instead of the current one
    #[arg(long, value_name = "N")]
    pub(crate) cert_version: Option<u32>,
}

#[derive(Debug, Args)]
pub(crate) struct RemoveArgs {
    /// Entry id, id prefix, or name
    pub(crate) entry: String,
    /// Do not ask for confirmation
    #[arg(long, short = 'y')]
    pub(crate) yes: bool,
}

#[derive(Debug, Args)]
pub(crate) struct LogArgs {
    #[command(subcommand)]
    pub(crate) action: Option<LogAction>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum LogAction {
    /// Verify the audit log's hash chain; exit 1 naming the first bad event
    Verify(LogVerifyArgs),
    /// Print the newest event's number and digest, to keep outside the vault
    Head,
}

#[derive(Debug, Args)]
pub(crate) struct LogVerifyArgs {
    /// An anchor kept outside the vault (`log head`): event N must be there with this
    /// digest, or the log was trimmed or rolled back
    #[arg(long, value_name = "N:DIGEST", value_parser = parse_anchor)]
    pub(crate) expect_head: Option<(i64, String)>,
}
