//! Arguments of `certvault acm ...`: certificates in ACM itself.

use super::common::{CaOwner, Recorded, RecordedForArn, Scan, Yes};
use clap::{Args, Subcommand};

use super::{ca::ReasonArg, parse::parse_period};

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
    #[command(flatten)]
    pub(crate) owner: CaOwner,
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
pub(crate) struct AcmDeleteArgs {
    /// The certificate: its ARN, or a vault entry (id, id prefix or name) that discovery
    /// found in ACM
    pub(crate) certificate: String,
    #[command(flatten)]
    pub(crate) place: RecordedForArn,
    /// While ACM says "in use" although nothing is listed as using it (it notices a detach
    /// only after minutes), keep trying this long
    #[arg(long, value_name = "PERIOD", default_value = "10m", value_parser = parse_period)]
    pub(crate) wait: time::Duration,
    #[command(flatten)]
    pub(crate) confirm: Yes,
}

#[derive(Debug, Args)]
pub(crate) struct AcmExportKeyArgs {
    /// The certificate: its ARN, or a vault entry (id, id prefix or name) that discovery
    /// found in ACM
    pub(crate) certificate: String,
    #[command(flatten)]
    pub(crate) place: RecordedForArn,
    /// Do not ask for confirmation (AWS charges for each export)
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
    #[command(flatten)]
    pub(crate) place: Recorded,
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
    #[command(flatten)]
    pub(crate) place: Recorded,
    /// Do not ask for confirmation (a revocation cannot be undone)
    #[arg(long)]
    pub(crate) yes: bool,
}

#[derive(Debug, Args)]
pub(crate) struct MigrateValidationArgs {
    #[command(flatten)]
    pub(crate) scan: Scan,
    /// Create the DNS validation records in Route 53 (as `acm request --route53`)
    #[arg(long)]
    pub(crate) route53: bool,
    /// Show what would be requested and moved; request, write and move nothing
    #[arg(long)]
    pub(crate) dry_run: bool,
    #[command(flatten)]
    pub(crate) confirm: Yes,
    /// How long to wait for the new certificates to be issued (at most 72h)
    #[arg(long, value_name = "PERIOD", default_value = "30m", value_parser = parse_period)]
    pub(crate) timeout: time::Duration,
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
