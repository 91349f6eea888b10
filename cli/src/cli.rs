//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

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

#[derive(Debug, Args)]
pub(crate) struct AcmArgs {
    #[command(subcommand)]
    pub(crate) action: AcmAction,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AcmAction {
    /// Request a public certificate (DNS or email validation), recorded at once; prints the
    /// DNS records to create, or the addresses ACM writes to
    Request(AcmRequestArgs),
    /// The requests not yet issued, checked with ACM; an issued one becomes a vault entry
    Requests(AcmRequestsArgs),
    /// Request a private certificate from an AWS Private CA through ACM (ACM holds its key;
    /// exportable with `acm export-key`)
    RequestPrivate(AcmRequestPrivateArgs),
    /// Delete a certificate from ACM (any kind, Amazon-issued ones included): refused while
    /// anything uses it, naming each user and what to do; the vault keeps its entry
    Delete(AcmDeleteArgs),
    /// Bring the private key of a certificate ACM holds (private, or requested exportable)
    /// into the vault: ExportCertificate, which AWS charges for; the key is sealed at once
    ExportKey(AcmExportKeyArgs),
    /// Renew a private certificate: RenewCertificate for an eligible one ACM holds; issued
    /// again by its AWS Private CA for one `pca issue` made (a new key in the vault unless
    /// --reuse-key). Anything else is refused with the reason
    Renew(AcmRenewArgs),
    /// Revoke a private certificate with the AWS Private CA that issued it; the entry is
    /// marked revoked and its deployments flagged `revoked`. Anything else is refused
    Revoke(AcmRevokeArgs),
    /// Replace every email-validated certificate with a DNS-validated one for the same
    /// names, then move every listener to it (nothing is deleted)
    MigrateValidation(MigrateValidationArgs),
}

#[derive(Debug, Args)]
pub(crate) struct MigrateValidationArgs {
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
    /// Create the DNS validation records in Route 53 (as `acm request --route53`)
    #[arg(long)]
    pub(crate) route53: bool,
    /// Show what would be requested and moved; request, write and move nothing
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Do not ask for confirmation
    #[arg(long)]
    pub(crate) yes: bool,
    /// How long to wait for the new certificates to be issued (at most 72h)
    #[arg(long, value_name = "PERIOD", default_value = "30m", value_parser = parse_period)]
    pub(crate) timeout: time::Duration,
}

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
    /// Do not ask for confirmation
    #[arg(long)]
    pub(crate) yes: bool,
}

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
    /// Do not ask for confirmation
    #[arg(long)]
    pub(crate) yes: bool,
}

#[derive(Debug, Args)]
pub(crate) struct AcmRenewArgs {
    /// The certificate: a vault entry (id, id prefix or name), or its ARN in ACM
    pub(crate) certificate: String,
    /// Keep the current key (certificates `pca issue` made only)
    #[arg(long)]
    pub(crate) reuse_key: bool,
    /// The region, when the entry is in ACM in several
    #[arg(long, value_name = "REGION")]
    pub(crate) region: Option<String>,
    /// The target whose credentials to use [default: the one recorded]
    #[arg(long, value_name = "NAME")]
    pub(crate) target: Option<String>,
    /// How long to wait for the renewed certificate (at most 1h)
    #[arg(long, value_name = "PERIOD", default_value = "5m", value_parser = parse_period)]
    pub(crate) wait: time::Duration,
}

#[derive(Debug, Args)]
pub(crate) struct AcmRevokeArgs {
    /// The certificate: a vault entry (id, id prefix or name), or its ARN in ACM
    pub(crate) certificate: String,
    /// Why (AWS Private CA takes every RFC 5280 reason but certificate-hold)
    #[arg(long, value_enum)]
    pub(crate) reason: ReasonArg,
    /// The region, when the entry is in ACM in several
    #[arg(long, value_name = "REGION")]
    pub(crate) region: Option<String>,
    /// The target whose credentials to use [default: the one recorded]
    #[arg(long, value_name = "NAME")]
    pub(crate) target: Option<String>,
    /// Do not ask for confirmation (a revocation cannot be undone)
    #[arg(long)]
    pub(crate) yes: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ValidationArg {
    /// A CNAME per name: renewals need nobody (recommended)
    Dns,
    /// Mail to admin@, administrator@, hostmaster@, postmaster@, webmaster@ of the domain:
    /// someone approves at every renewal
    Email,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum AcmKeyArg {
    #[value(name = "RSA_2048")]
    Rsa2048,
    #[value(name = "EC_prime256v1")]
    EcPrime256v1,
    #[value(name = "EC_secp384r1")]
    EcSecp384r1,
}

#[derive(Debug, Args)]
pub(crate) struct AcmRequestArgs {
    /// The main domain name
    #[arg(long, value_name = "NAME")]
    pub(crate) domain: String,
    /// Another name; repeat for several
    #[arg(long, value_name = "NAME")]
    pub(crate) san: Vec<String>,
    /// How ACM checks that the names are yours
    #[arg(long, value_enum)]
    pub(crate) validation: ValidationArg,
    /// The region
    #[arg(long, value_name = "REGION")]
    pub(crate) region: String,
    /// The target whose credentials to use [default: the only one configured, or
    /// `default` without a configuration]
    #[arg(long, value_name = "NAME")]
    pub(crate) target: Option<String>,
    /// Allow exporting the certificate and its key later (`acm export-key`; charged by AWS)
    #[arg(long)]
    pub(crate) export_enabled: bool,
    /// The key algorithm [default: ACM's, RSA_2048]
    #[arg(long, value_enum)]
    pub(crate) key_algorithm: Option<AcmKeyArg>,
    /// How long to wait for ACM to produce the DNS records
    #[arg(long, value_name = "PERIOD", default_value = "2m", value_parser = parse_period)]
    pub(crate) wait_records: time::Duration,
    /// Create the DNS validation records (UPSERT) in the Route 53 public hosted zone that
    /// holds each name (the target's account); names with no zone are listed to create by
    /// hand
    #[arg(long)]
    pub(crate) route53: bool,
}

#[derive(Debug, Args)]
pub(crate) struct AcmRequestPrivateArgs {
    /// The CA (arn:aws:acm-pca:REGION:ACCOUNT:certificate-authority/ID); the request goes to
    /// ACM in the CA's region
    #[arg(long, value_name = "ARN")]
    pub(crate) ca_arn: String,
    /// The main domain name
    #[arg(long, value_name = "NAME")]
    pub(crate) domain: String,
    /// Another name; repeat for several
    #[arg(long, value_name = "NAME")]
    pub(crate) san: Vec<String>,
    /// The key algorithm [default: ACM's, RSA_2048]
    #[arg(long, value_enum)]
    pub(crate) key_algorithm: Option<AcmKeyArg>,
    /// The target whose credentials to use (its account must own the CA) [default: the only
    /// one configured, or `default` without a configuration]
    #[arg(long, value_name = "NAME")]
    pub(crate) target: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct AcmRequestsArgs {
    /// Keep checking (with backoff) until each request is issued, failed or timed out
    #[arg(long)]
    pub(crate) wait: bool,
    /// How long --wait keeps checking
    #[arg(long, value_name = "PERIOD", default_value = "30m", value_parser = parse_period, requires = "wait")]
    pub(crate) timeout: time::Duration,
    /// Create the DNS validation records of pending requests (UPSERT) in Route 53, as
    /// `acm request --route53` does
    #[arg(long)]
    pub(crate) route53: bool,
}

#[derive(Debug, Args)]
pub(crate) struct AcmExportKeyArgs {
    /// The certificate: its ARN, or a vault entry (id, id prefix or name) that discovery
    /// found in ACM
    pub(crate) certificate: String,
    /// The region, when the entry is in ACM in several
    #[arg(long, value_name = "REGION")]
    pub(crate) region: Option<String>,
    /// The target whose credentials to use [default: the one recorded for the ARN, or
    /// `default` for an ARN the vault has not seen]
    #[arg(long, value_name = "NAME")]
    pub(crate) target: Option<String>,
    /// Do not ask for confirmation (AWS charges for each export)
    #[arg(long)]
    pub(crate) yes: bool,
}

#[derive(Debug, Args)]
pub(crate) struct AcmDeleteArgs {
    /// The certificate: its ARN, or a vault entry (id, id prefix or name) that discovery
    /// found in ACM
    pub(crate) certificate: String,
    /// The region, when the entry is in ACM in several
    #[arg(long, value_name = "REGION")]
    pub(crate) region: Option<String>,
    /// The target whose credentials to use [default: the one recorded for the ARN, or
    /// `default` for an ARN the vault has not seen]
    #[arg(long, value_name = "NAME")]
    pub(crate) target: Option<String>,
    /// While ACM says "in use" although nothing is listed as using it (it notices a detach
    /// only after minutes), keep trying this long
    #[arg(long, value_name = "PERIOD", default_value = "10m", value_parser = parse_period)]
    pub(crate) wait: time::Duration,
    /// Do not ask for confirmation
    #[arg(long)]
    pub(crate) yes: bool,
}

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
    /// The target whose credentials to use (its account must own the CA) [default: the only
    /// one configured, or `default` without a configuration]
    #[arg(long, value_name = "NAME")]
    pub(crate) target: Option<String>,
    /// How long to wait for AWS Private CA to issue it
    #[arg(long, value_name = "PERIOD", default_value = "5m", value_parser = parse_period)]
    pub(crate) timeout: time::Duration,
}

#[derive(Debug, Args)]
pub(crate) struct CaArgs {
    #[command(subcommand)]
    pub(crate) action: CaAction,
}

#[derive(Debug, Subcommand)]
pub(crate) enum CaAction {
    /// Create a root CA, or an intermediate signed by --parent (the key is made in the vault)
    Create(CaCreateArgs),
    /// List the CAs: state, key type, end, issued and revoked counts
    List,
    /// Issue a certificate: its key is made in the vault; the result is a normal entry
    Issue(CaIssueArgs),
    /// Sign a CSR (its key stays with its owner)
    Sign(CaSignArgs),
    /// Revoke the current certificate of an entry the CA issued (one recorded row)
    Revoke(CaRevokeArgs),
    /// Write a CRL signed by the CA
    Crl(CaCrlArgs),
    /// Write the CA's trust bundle (its certificate, then its parents' up to the root)
    ExportBundle(CaBundleArgs),
    /// Disable a CA: it signs nothing until enabled
    Disable(CaNameArg),
    /// Enable a disabled CA
    Enable(CaNameArg),
    /// Schedule the destruction of a CA's key after a waiting window (7 to 30 days)
    ScheduleDeletion(CaScheduleArgs),
    /// Cancel a scheduled deletion (the CA returns to disabled)
    CancelDeletion(CaNameArg),
    /// Destroy the key of a CA whose waiting window is over
    Purge(CaNameArg),
}

/// Key types the CA makes.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum KeyTypeArg {
    /// ECDSA P-256 with SHA-256 (default)
    #[value(name = "ec-p256")]
    EcP256,
    /// ECDSA P-384 with SHA-384
    #[value(name = "ec-p384")]
    EcP384,
    /// RSA 2048
    #[value(name = "rsa-2048")]
    Rsa2048,
    /// RSA 3072
    #[value(name = "rsa-3072")]
    Rsa3072,
    /// RSA 4096
    #[value(name = "rsa-4096")]
    Rsa4096,
}

impl From<KeyTypeArg> for vault::KeyType {
    fn from(k: KeyTypeArg) -> vault::KeyType {
        match k {
            KeyTypeArg::EcP256 => vault::KeyType::EcP256,
            KeyTypeArg::EcP384 => vault::KeyType::EcP384,
            KeyTypeArg::Rsa2048 => vault::KeyType::Rsa2048,
            KeyTypeArg::Rsa3072 => vault::KeyType::Rsa3072,
            KeyTypeArg::Rsa4096 => vault::KeyType::Rsa4096,
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct CaCreateArgs {
    /// The CA's name (also its entry's name)
    pub(crate) name: String,
    /// Its subject: CN=...,O=...,OU=...,C=..,ST=...,L=...
    #[arg(long)]
    pub(crate) subject: String,
    /// Its key type
    #[arg(long, value_enum, default_value = "ec-p256")]
    pub(crate) key_type: KeyTypeArg,
    /// How long it is valid (10y, 5y, 365d)
    #[arg(long, default_value = "10y", value_parser = parse_validity)]
    pub(crate) validity: time::Duration,
    /// The CA that signs it (makes an intermediate)
    #[arg(long, value_name = "CA")]
    pub(crate) parent: Option<String>,
    /// How many intermediates may follow it (basicConstraints pathLenConstraint)
    #[arg(long, value_name = "N")]
    pub(crate) path_len: Option<u8>,
    /// A DNS name (and everything under it) it may issue for; repeat for several
    #[arg(long, value_name = "DOMAIN")]
    pub(crate) permit_dns: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct CaIssueArgs {
    /// The issuing CA
    pub(crate) ca: String,
    /// A DNS name; repeat for several (the first is the CN and the default entry name)
    #[arg(long, value_name = "NAME")]
    pub(crate) dns: Vec<String>,
    /// An IP address; repeat for several
    #[arg(long, value_name = "ADDR")]
    pub(crate) ip: Vec<std::net::IpAddr>,
    /// How long it is valid (never beyond the CA's own end)
    #[arg(long, default_value = "90d", value_parser = parse_validity)]
    pub(crate) validity: time::Duration,
    /// Its key type
    #[arg(long, value_enum, default_value = "ec-p256")]
    pub(crate) key_type: KeyTypeArg,
    /// The entry's name (default: the first name)
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// The agent renews it (and redeploys it) when this much validity is left
    #[arg(long, value_name = "PERIOD", value_parser = parse_period)]
    pub(crate) auto_renew_before: Option<time::Duration>,
    /// Issue one certificate per line of FILE (its names, separated by blanks or commas;
    /// `#` starts a comment), all in one transaction
    #[arg(long, value_name = "FILE", conflicts_with_all = ["dns", "ip", "name"])]
    pub(crate) from_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct CaSignArgs {
    /// The signing CA
    pub(crate) ca: String,
    /// The CSR (PEM or DER)
    #[arg(long, value_name = "FILE")]
    pub(crate) csr: PathBuf,
    /// The entry's name (default: the first name)
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// DNS names that replace the CSR's; repeat for several
    #[arg(long, value_name = "NAME")]
    pub(crate) dns: Vec<String>,
    /// How long it is valid (never beyond the CA's own end)
    #[arg(long, default_value = "90d", value_parser = parse_validity)]
    pub(crate) validity: time::Duration,
}

/// RFC 5280 revocation reasons (removeFromCRL is not one you can give).
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum ReasonArg {
    /// unspecified (0)
    Unspecified,
    /// keyCompromise (1)
    KeyCompromise,
    /// cACompromise (2)
    CaCompromise,
    /// affiliationChanged (3)
    AffiliationChanged,
    /// superseded (4)
    Superseded,
    /// cessationOfOperation (5)
    CessationOfOperation,
    /// certificateHold (6)
    CertificateHold,
    /// privilegeWithdrawn (9)
    PrivilegeWithdrawn,
}

impl From<ReasonArg> for vault::RevocationReason {
    fn from(r: ReasonArg) -> vault::RevocationReason {
        use vault::RevocationReason as R;
        match r {
            ReasonArg::Unspecified => R::Unspecified,
            ReasonArg::KeyCompromise => R::KeyCompromise,
            ReasonArg::CaCompromise => R::CaCompromise,
            ReasonArg::AffiliationChanged => R::AffiliationChanged,
            ReasonArg::Superseded => R::Superseded,
            ReasonArg::CessationOfOperation => R::CessationOfOperation,
            ReasonArg::CertificateHold => R::CertificateHold,
            ReasonArg::PrivilegeWithdrawn => R::PrivilegeWithdrawn,
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct CaRevokeArgs {
    /// Entry id, id prefix, or name (its current certificate is revoked)
    pub(crate) entry: String,
    /// Why
    #[arg(long, value_enum)]
    pub(crate) reason: ReasonArg,
}

/// Encodings of a CRL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum CrlFormat {
    /// PEM (-----BEGIN X509 CRL-----)
    Pem,
    /// DER
    Der,
}

#[derive(Debug, Args)]
pub(crate) struct CaCrlArgs {
    /// The CA
    pub(crate) ca: String,
    /// Write it here (default: stdout, PEM only)
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,
    /// Its encoding
    #[arg(long, value_enum, default_value = "pem")]
    pub(crate) format: CrlFormat,
    /// When clients should fetch the next one
    #[arg(long, default_value = "7d", value_parser = parse_period)]
    pub(crate) next_update: time::Duration,
    /// Replace FILE if it exists
    #[arg(long)]
    pub(crate) force: bool,
}

#[derive(Debug, Args)]
pub(crate) struct CaBundleArgs {
    /// The CA
    pub(crate) ca: String,
    /// Write it here (default: stdout)
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,
    /// Replace FILE if it exists
    #[arg(long)]
    pub(crate) force: bool,
}

#[derive(Debug, Args)]
pub(crate) struct CaNameArg {
    /// The CA
    pub(crate) ca: String,
}

#[derive(Debug, Args)]
pub(crate) struct CaScheduleArgs {
    /// The CA
    pub(crate) ca: String,
    /// Days before its key is destroyed (7 to 30, as AWS KMS)
    #[arg(long, default_value_t = vault::DEFAULT_PENDING_WINDOW_DAYS,
          value_parser = clap::value_parser!(u32).range(7..=30))]
    pub(crate) pending_window_days: u32,
    /// Do not ask for confirmation
    #[arg(long, short = 'y')]
    pub(crate) yes: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RenewArgs {
    /// Entry id, id prefix, or name
    pub(crate) entry: String,
    /// Keep the current key pair (default: a new key)
    #[arg(long)]
    pub(crate) reuse_key: bool,
}

#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell
    #[arg(value_enum)]
    pub(crate) shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub(crate) struct ManArgs {
    /// Write certvault.1 and certvault-COMMAND.1 here instead of printing certvault.1
    #[arg(long, value_name = "DIR")]
    pub(crate) out_dir: Option<PathBuf>,
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
    pub(crate) source: Option<vault::Source>,
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

fn parse_anchor(s: &str) -> Result<(i64, String), String> {
    let (n, d) = s.split_once(':').ok_or_else(|| {
        format!("'{s}' is not an anchor: expected N:DIGEST, as `certvault log head` prints")
    })?;
    let n: i64 = n
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("'{n}' is not an event number"))?;
    if d.len() != 64 || !d.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!("'{d}' is not a digest (64 hex digits)"));
    }
    Ok((n, d.to_ascii_lowercase()))
}

/// Parses `30s`, `90m`, `12h`, `30d` or `2w`. A bare number is refused: `--interval 5`
/// once meant five days.
pub(crate) fn parse_period(s: &str) -> Result<time::Duration, String> {
    parse_span(s, false)
}

/// A certificate's validity: a period, or years (`10y` is 3,650 days).
pub(crate) fn parse_validity(s: &str) -> Result<time::Duration, String> {
    parse_span(s, true)
}

/// A number with a unit: s, m, h, d, w (and y, 365 days, when `years`). A bare number is
/// refused with the likely meanings spelled out.
fn parse_span(s: &str, years: bool) -> Result<time::Duration, String> {
    let (units, names) = if years {
        (
            ["s", "m", "h", "d", "w", "y"].as_slice(),
            "seconds, minutes, hours, days, weeks, years",
        )
    } else {
        (
            ["s", "m", "h", "d", "w"].as_slice(),
            "seconds, minutes, hours, days, weeks",
        )
    };
    let (last, rest) = units.split_last().unwrap_or((&"d", &[]));
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None if !s.is_empty() => {
            let written: Vec<String> = rest.iter().map(|u| format!("{s}{u}")).collect();
            return Err(format!(
                "'{s}' has no unit: write {} or {s}{last} ({names})",
                written.join(", ")
            ));
        }
        None => return Err("an empty period: use a number with a unit, like 30d".into()),
    };
    let list = format!("{} or {last}", rest.join(", "));
    let n: i64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a period: use a number with {list}, like 30d"))?;
    if n > 100_000 || (unit == "y" && n > 100) {
        return Err(format!("'{s}' is too long a period"));
    }
    match unit {
        "s" => Ok(time::Duration::seconds(n)),
        "m" => Ok(time::Duration::minutes(n)),
        "h" => Ok(time::Duration::hours(n)),
        "d" => Ok(time::Duration::days(n)),
        "w" => Ok(time::Duration::weeks(n)),
        "y" if years => Ok(time::Duration::days(365 * n)),
        _ => Err(format!(
            "unknown unit '{unit}' in '{s}': use {list} ({names})"
        )),
    }
}

fn parse_source(s: &str) -> Result<vault::Source, String> {
    vault::Source::parse(s).ok_or_else(|| {
        let all: Vec<&str> = vault::Source::ALL.iter().map(|s| s.as_str()).collect();
        format!("unknown source '{s}': one of {}", all.join(", "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods() {
        assert_eq!(parse_period("30d").unwrap(), time::Duration::days(30));
        let bare = parse_period("30").unwrap_err();
        assert!(bare.contains("no unit") && bare.contains("30d"), "{bare}");
        assert_eq!(parse_period("45s").unwrap(), time::Duration::seconds(45));
        assert_eq!(parse_period("2w").unwrap(), time::Duration::weeks(2));
        assert_eq!(parse_period("12h").unwrap(), time::Duration::hours(12));
        assert!(parse_period("x").is_err());
        assert!(parse_period("3y").is_err());
        assert!(parse_period("99999999999999999999d").is_err());
    }

    #[test]
    fn validities_take_years_and_say_so() {
        assert_eq!(parse_validity("10y").unwrap(), time::Duration::days(3650));
        assert_eq!(parse_validity("90d").unwrap(), time::Duration::days(90));
        let bare = parse_validity("5").unwrap_err();
        assert_eq!(
            bare,
            "'5' has no unit: write 5s, 5m, 5h, 5d, 5w or 5y (seconds, minutes, hours, days, weeks, years)"
        );
        let unit = parse_validity("5q").unwrap_err();
        assert!(unit.contains("use s, m, h, d, w or y"), "{unit}");
        assert!(parse_validity("101y").is_err());
        assert_eq!(
            parse_period("5").unwrap_err(),
            "'5' has no unit: write 5s, 5m, 5h, 5d or 5w (seconds, minutes, hours, days, weeks)"
        );
    }

    #[test]
    fn clap_definition_is_valid() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
