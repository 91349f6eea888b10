//! The vault's own private CA: roots and intermediates whose keys stay sealed in the vault
//! (the same key hierarchy and row MACs as leaf keys), leaf issuance (the key generated in
//! the vault, or a CSR signed), renewal, revocation as one recorded row, CRLs built when
//! asked, and a key lifecycle that follows AWS KMS's rules for deleting keys.
//!
//! A CA is an entry (its certificate, its sealed key) plus a row in `cas` (state, limits,
//! the CRL number). What it issues are ordinary entries with source `issued` and a row in
//! `issued` (which CA, key type, validity, when to renew), so they deploy like any other.

mod bench;
mod create;
mod handle;
mod issue;
mod keys;
mod lifecycle;
mod names;
pub mod pca;
mod pipeline;
mod revoke;
mod row;

pub use handle::Ca;
pub use keys::KeyType;
pub(crate) use keys::key_pair;
pub use names::{check_dns, parse_subject};

use crate::formats::revocation::RevocationReason;
use crate::sql::Cached as _;
use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, Issuer, KeyIdMethod, KeyPair,
    KeyUsagePurpose, NameConstraints, RevokedCertParams, SanType, SerialNumber, SignatureAlgorithm,
};
use rusqlite::{OptionalExtension, Transaction, params};
use serde::Serialize;
use time::{Duration, OffsetDateTime};

use crate::{
    crypto::{Keys, SecretBytes, fill_random},
    entries::{Arrival, EntryId, ImportOutcome, import_bundle, model::Source, validate_name},
    error::{Error, Result},
    formats::{
        Serial,
        bundle::{Bundle, PrivateKey, public_key_of_pkcs8},
        cert::{Cert, CertInfo},
    },
    integrity,
    integrity::audit,
    store::{Vault, now_unix},
};

/// How long a leaf is valid unless asked otherwise: 90 days.
pub const DEFAULT_LEAF_VALIDITY: Duration = Duration::days(90);
/// How long a CA is valid unless asked otherwise: 10 years.
pub const DEFAULT_CA_VALIDITY: Duration = Duration::days(3650);
/// KMS's waiting window before a key is deleted: 7 to 30 days, 30 by default.
pub const PENDING_WINDOW_DAYS: std::ops::RangeInclusive<u32> = 7..=30;
/// The default waiting window.
pub const DEFAULT_PENDING_WINDOW_DAYS: u32 = 30;
/// At most this many names in one certificate (bounded work on any input).
pub(crate) const MAX_NAMES: usize = 100;

/// Where a CA's key is in its lifecycle (AWS KMS's key states).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CaState {
    /// Signs.
    Enabled,
    /// Signs nothing until enabled again.
    Disabled,
    /// Signs nothing; its key is destroyed after the deletion date.
    PendingDeletion,
    /// Its key is destroyed.
    Deleted,
}

impl CaState {
    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            CaState::Enabled => "enabled",
            CaState::Disabled => "disabled",
            CaState::PendingDeletion => "pending-deletion",
            CaState::Deleted => "deleted",
        }
    }

    fn parse(s: &str) -> Option<CaState> {
        [
            CaState::Enabled,
            CaState::Disabled,
            CaState::PendingDeletion,
            CaState::Deleted,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

impl std::fmt::Display for CaState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What `ca create` asks for.
#[derive(Debug, Clone)]
pub struct NewCa {
    /// The CA's name (also its entry's name).
    pub name: String,
    /// `CN=...,O=...`.
    pub subject: String,
    /// Its key type.
    pub key_type: KeyType,
    /// How long it is valid.
    pub validity: Duration,
    /// The CA that signs it (an intermediate), or none (a root).
    pub parent: Option<String>,
    /// The basicConstraints path length.
    pub path_len: Option<u8>,
    /// DNS names it may issue for (name constraints); empty: no constraint.
    pub permit_dns: Vec<String>,
}

/// What `ca issue` asks for.
#[derive(Debug, Clone, Default)]
pub struct NewLeaf {
    /// The DNS names.
    pub dns: Vec<String>,
    /// The IP addresses.
    pub ips: Vec<IpAddr>,
    /// How long it is valid (default 90 days).
    pub validity: Option<Duration>,
    /// Its key type (default EC P-256).
    pub key_type: Option<KeyType>,
    /// The entry's name (default: the first name).
    pub name: Option<String>,
    /// The agent renews it when this much validity is left.
    pub auto_renew_before: Option<Duration>,
}

/// What `ca sign` asks for.
#[derive(Debug, Clone)]
pub struct CsrRequest {
    /// Where the CSR came from, for messages.
    pub source_name: String,
    /// The CSR (PEM or DER).
    pub csr: Vec<u8>,
    /// The entry's name (default: the first name).
    pub name: Option<String>,
    /// Names that replace the CSR's.
    pub dns: Vec<String>,
    /// How long it is valid (default 90 days).
    pub validity: Option<Duration>,
}

/// One CA, as `ca list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct CaSummary {
    /// The CA's entry id.
    pub id: EntryId,
    /// Its name.
    pub name: String,
    /// Its certificate's subject.
    pub subject: String,
    /// Its key type.
    pub key_type: String,
    /// When its certificate ends.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// Its state.
    pub state: CaState,
    /// When its key is destroyed (pending deletion).
    #[serde(with = "time::serde::rfc3339::option")]
    pub deletion_date: Option<OffsetDateTime>,
    /// How many certificates it issued.
    pub issued: u64,
    /// How many of them are revoked.
    pub revoked: u64,
    /// The CA that signed it, if it is an intermediate.
    pub parent: Option<String>,
    /// The DNS names it may issue for (empty: any).
    pub permitted_dns: Vec<String>,
    /// The next CRL's number.
    pub crl_number: u64,
}

/// A certificate the CA issued, as `ca issue`, `ca sign` and `renew` report it.
#[derive(Debug, Clone, Serialize)]
pub struct IssuedCert {
    /// The entry's id.
    pub id: EntryId,
    /// The entry's name.
    pub name: String,
    /// The version made.
    pub version: u32,
    /// The issuing CA.
    pub ca: String,
    /// The serial (hex).
    pub serial: Serial,
    /// The names in it.
    pub sans: Vec<String>,
    /// Its end.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
}

/// A revocation, as `ca revoke` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct Revocation {
    /// The entry.
    pub name: String,
    /// The CA.
    pub ca: String,
    /// The serial revoked (hex).
    pub serial: Serial,
    /// Why.
    pub reason: RevocationReason,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub revoked_at: OffsetDateTime,
}

/// A CRL that `ca crl` built.
#[derive(Debug, Clone)]
pub struct Crl {
    /// DER.
    pub der: Vec<u8>,
    /// Its number.
    pub number: u64,
    /// thisUpdate.
    pub this_update: OffsetDateTime,
    /// nextUpdate.
    pub next_update: OffsetDateTime,
    /// How many revoked certificates it lists.
    pub entries: usize,
}

/// A CA's row, read and checked.
struct CaRow {
    id: String,
    name: String,
    parent_id: Option<String>,
    key_type: KeyType,
    path_len: Option<i64>,
    permitted_dns: Vec<String>,
    state: CaState,
    deletion_at: Option<i64>,
    crl_number: i64,
    /// How many revocations the CA recorded (MACed with the row): a revocation row deleted
    /// outside certvault makes the count disagree.
    revoked_count: i64,
    /// The audit event that last changed the row (MACed with it; see `ledger`).
    audit_seq: Option<i64>,
}

fn ca_error(name: &str, problem: impl Into<String>) -> Error {
    Error::Ca {
        ca: name.to_owned(),
        problem: problem.into(),
        remedy: None,
    }
}

/// A CA's refusal with what a person can do about it.
fn ca_remedied(name: &str, problem: impl Into<String>, remedy: crate::error::Remedy) -> Error {
    Error::Ca {
        ca: name.to_owned(),
        problem: problem.into(),
        remedy: Some(Box::new(remedy)),
    }
}

fn to_unix(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

fn from_unix(s: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(s).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn rcgen_error(ca: &str, doing: &str) -> impl Fn(rcgen::Error) -> Error + use<> {
    let (ca, doing) = (ca.to_owned(), doing.to_owned());
    move |e| ca_error(&ca, format!("{doing}: {e}"))
}

#[cfg(test)]
mod tests;
