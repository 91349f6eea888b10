//! Arguments of `certvault ca ...` and `certvault renew`: the vault's own CA.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

use super::parse::{parse_period, parse_validity};

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

impl From<KeyTypeArg> for vault::ca::KeyType {
    fn from(k: KeyTypeArg) -> vault::ca::KeyType {
        match k {
            KeyTypeArg::EcP256 => vault::ca::KeyType::EcP256,
            KeyTypeArg::EcP384 => vault::ca::KeyType::EcP384,
            KeyTypeArg::Rsa2048 => vault::ca::KeyType::Rsa2048,
            KeyTypeArg::Rsa3072 => vault::ca::KeyType::Rsa3072,
            KeyTypeArg::Rsa4096 => vault::ca::KeyType::Rsa4096,
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

impl From<ReasonArg> for vault::formats::RevocationReason {
    fn from(r: ReasonArg) -> vault::formats::RevocationReason {
        use vault::formats::RevocationReason as R;
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
    #[arg(long, default_value_t = vault::ca::DEFAULT_PENDING_WINDOW_DAYS,
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
