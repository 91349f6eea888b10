//! The vault's own private CA: roots and intermediates whose keys stay sealed in the vault
//! (the same key hierarchy and row MACs as leaf keys), leaf issuance (the key generated in
//! the vault, or a CSR signed), renewal, revocation as one recorded row, CRLs built when
//! asked, and a key lifecycle that follows AWS KMS's rules for deleting keys.
//!
//! A CA is an entry (its certificate, its sealed key) plus a row in `cas` (state, limits,
//! the CRL number). What it issues are ordinary entries with source `issued` and a row in
//! `issued` (which CA, key type, validity, when to renew), so they deploy like any other.

pub(crate) mod pca;

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
    entries::{Arrival, ImportOutcome, import_bundle, model::Source, validate_name},
    error::{Error, Result},
    formats::{
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
/// notBefore is set this far in the past, for clocks that lag.
const BACKDATE: Duration = Duration::minutes(1);
/// At most this many names in one certificate (bounded work on any input).
pub(crate) const MAX_NAMES: usize = 100;

/// A key type the CA can generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyType {
    /// ECDSA on P-256, signing with SHA-256 (the default).
    EcP256,
    /// ECDSA on P-384, signing with SHA-384.
    EcP384,
    /// RSA 2048 bits, PKCS#1 v1.5 with SHA-256.
    Rsa2048,
    /// RSA 3072 bits.
    Rsa3072,
    /// RSA 4096 bits.
    Rsa4096,
}

impl KeyType {
    /// Every key type, as written on the command line.
    pub const ALL: [KeyType; 5] = [
        KeyType::EcP256,
        KeyType::EcP384,
        KeyType::Rsa2048,
        KeyType::Rsa3072,
        KeyType::Rsa4096,
    ];

    /// The name on the command line and in the vault.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::EcP256 => "ec-p256",
            KeyType::EcP384 => "ec-p384",
            KeyType::Rsa2048 => "rsa-2048",
            KeyType::Rsa3072 => "rsa-3072",
            KeyType::Rsa4096 => "rsa-4096",
        }
    }

    /// Reads a name written by [`KeyType::as_str`].
    pub fn parse(s: &str) -> Option<KeyType> {
        KeyType::ALL.into_iter().find(|k| k.as_str() == s)
    }

    fn algorithm(self) -> &'static SignatureAlgorithm {
        match self {
            KeyType::EcP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyType::EcP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => &rcgen::PKCS_RSA_SHA256,
        }
    }

    fn is_rsa(self) -> bool {
        matches!(self, KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096)
    }

    /// A new leaf key, generated here: the PKCS#8 DER to seal and the public half for the
    /// certificate. The CA signs a leaf, so an EC leaf key is not parsed back into a
    /// signing key (that costs a second point multiplication, a third of a P-256 issuance);
    /// its public point is read from the PKCS#8 ring wrote.
    fn generate_leaf(self) -> Result<(SecretBytes, LeafPublic)> {
        let ring_alg = match self {
            KeyType::EcP256 => &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            KeyType::EcP384 => &ring::signature::ECDSA_P384_SHA384_ASN1_SIGNING,
            KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => {
                let (pkcs8, kp) = self.generate()?;
                return Ok((pkcs8, LeafPublic::of(&kp)));
            }
        };
        let doc = ring::signature::EcdsaKeyPair::generate_pkcs8(
            ring_alg,
            &ring::rand::SystemRandom::new(),
        )
        .map_err(|_| Error::Random)?;
        let pkcs8 = SecretBytes::new(doc.as_ref().to_vec());
        match public_key_of_pkcs8(pkcs8.expose_secret()) {
            Ok(crate::formats::cert::PublicKeyId::Ec { point, .. }) => Ok((
                pkcs8,
                LeafPublic {
                    der: point,
                    alg: self.algorithm(),
                },
            )),
            // ring always writes the point; were it absent, the key is parsed after all.
            _ => {
                let public = LeafPublic::of(&key_pair(pkcs8.expose_secret(), self)?);
                Ok((pkcs8, public))
            }
        }
    }

    /// A new private key, generated here (PKCS#8 DER to seal, and ready to sign): ring for
    /// EC, aws-lc for RSA (ring signs with RSA keys but does not make them).
    pub(crate) fn generate(self) -> Result<(SecretBytes, KeyPair)> {
        let der = match self {
            KeyType::EcP256 | KeyType::EcP384 => {
                let kp = KeyPair::generate_for(self.algorithm()).map_err(|_| Error::Random)?;
                return Ok((SecretBytes::new(kp.serialize_der()), kp));
            }
            KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => {
                use aws_lc_rs::{encoding::AsDer, rsa::KeySize, signature::RsaKeyPair};
                let size = match self {
                    KeyType::Rsa2048 => KeySize::Rsa2048,
                    KeyType::Rsa3072 => KeySize::Rsa3072,
                    _ => KeySize::Rsa4096,
                };
                let kp = RsaKeyPair::generate(size).map_err(|_| Error::Random)?;
                let doc = kp.as_der().map_err(|_| Error::Random)?;
                SecretBytes::new(doc.as_ref().to_vec())
            }
        };
        let key = key_pair(der.expose_secret(), self)?;
        Ok((der, key))
    }
}

impl std::fmt::Display for KeyType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

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
    pub id: String,
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
    pub id: String,
    /// The entry's name.
    pub name: String,
    /// The version made.
    pub version: u32,
    /// The issuing CA.
    pub ca: String,
    /// The serial (hex).
    pub serial: String,
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
    pub serial: String,
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
    }
}

/// Parses `CN=...,O=...` (RFC 4514 order, `\,` escapes a comma) into rcgen's name.
pub fn parse_subject(subject: &str) -> Result<DistinguishedName> {
    let bad = |reason: String| Error::BadSubject {
        subject: subject.to_owned(),
        reason,
    };
    if subject.len() > 1024 {
        return Err(bad("longer than 1024 characters".into()));
    }
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut escaped = false;
    for c in subject.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ',' {
            parts.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    parts.push(cur);
    let mut dn = DistinguishedName::new();
    let mut has_cn = false;
    for part in parts {
        let Some((k, v)) = part.split_once('=') else {
            return Err(bad(format!("'{}' is not KEY=value", part.trim())));
        };
        let (k, v) = (k.trim(), v.trim());
        if v.is_empty() {
            return Err(bad(format!("{k} has no value")));
        }
        if v.chars().any(char::is_control) {
            return Err(bad(format!("{k} holds a control character")));
        }
        let ty = match k.to_ascii_uppercase().as_str() {
            "CN" => {
                has_cn = true;
                DnType::CommonName
            }
            "O" => DnType::OrganizationName,
            "OU" => DnType::OrganizationalUnitName,
            "C" => {
                if v.len() != 2 || !v.chars().all(|c| c.is_ascii_uppercase()) {
                    return Err(bad(format!(
                        "C={v}: a country is two capital letters (ISO 3166)"
                    )));
                }
                DnType::CountryName
            }
            "ST" => DnType::StateOrProvinceName,
            "L" => DnType::LocalityName,
            other => {
                return Err(bad(format!(
                    "unknown attribute '{other}' (use CN, O, OU, C, ST, L)"
                )));
            }
        };
        dn.push(ty, v);
    }
    if !has_cn {
        return Err(bad("it has no CN=".into()));
    }
    Ok(dn)
}

/// 20 random bytes, top bit clear (a positive INTEGER of at most 20 octets, RFC 5280).
fn new_serial() -> Result<SerialNumber> {
    let mut b = [0u8; 20];
    fill_random(&mut b)?;
    b[0] &= 0x7f;
    if b[0] == 0 {
        b[0] = 0x01;
    }
    Ok(SerialNumber::from_slice(&b))
}

/// Checks a DNS name for a certificate: lower-case letters, digits, hyphens and dots, an
/// optional leading `*.`; at most 253 characters. The name, lower-cased.
pub fn check_dns(name: &str) -> std::result::Result<String, String> {
    let n = name.trim_end_matches('.').to_ascii_lowercase();
    if n.is_empty() || n.len() > 253 {
        return Err(format!("'{name}' is not a DNS name (1 to 253 characters)"));
    }
    let body = n.strip_prefix("*.").unwrap_or(&n);
    for label in body.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !ok {
            return Err(format!(
                "'{name}' is not a DNS name (labels of letters, digits and hyphens, a leading '*.' at most)"
            ));
        }
    }
    Ok(n)
}

/// The smallest RSA key a CSR may hold (CA/Browser Forum baseline requirements).
const MIN_RSA_BITS: usize = 2048;

/// Whether the wildcard `*.base` covers a public suffix of the ICANN section of the Public
/// Suffix List (`*.com`, `*.co.uk`, `*.kawasaki.jp`, whose every label is a suffix):
/// browsers refuse such a certificate. Private-section suffixes (`*.github.io`) and names
/// under no known suffix (`*.corp`) are accepted, as browsers accept them.
fn wildcard_over_public_suffix(base: &str) -> Option<String> {
    let icann_suffix = |n: &str| {
        psl::suffix(n.as_bytes()).is_some_and(|s| {
            s.is_known() && s.typ() == Some(psl::Type::Icann) && s.as_bytes().len() == n.len()
        })
    };
    if icann_suffix(base) {
        return Some(base.to_owned());
    }
    // A label no list names: a rule `*.base` makes it a suffix too.
    let probe = format!("certvault-probe.{base}");
    icann_suffix(&probe).then(|| format!("every name under {base}"))
}

/// Whether `name` is within one of the permitted DNS subtrees (RFC 5280: the name itself or
/// a name under it). No constraint permits every name.
fn permitted(name: &str, permitted: &[String]) -> bool {
    if permitted.is_empty() {
        return true;
    }
    let name = name.strip_prefix("*.").unwrap_or(name);
    permitted.iter().any(|p| {
        let p = p.trim_start_matches('.');
        name == p || name.ends_with(&format!(".{p}"))
    })
}

fn to_unix(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

fn from_unix(s: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(s).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Reads a CA row by name or entry id, checked against its MAC (not yet against the audit
/// log: [`Vault::read_ca`] does both).
fn read_ca_row(tx: &rusqlite::Connection, keys: &Keys, query: &str) -> Result<CaRow> {
    let row = tx
        .query_row(
            "SELECT id, name, key_type, permitted_dns, state, deletion_at, crl_number,
                    parent_id, path_len, revoked_count, audit_seq
             FROM cas WHERE id = ?1 OR name = ?1 COLLATE NOCASE ORDER BY id = ?1 DESC LIMIT 1",
            [query],
            |r| {
                Ok((
                    (
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, Option<i64>>(5)?,
                        r.get::<_, i64>(6)?,
                    ),
                    (
                        r.get::<_, Option<String>>(7)?,
                        r.get::<_, Option<i64>>(8)?,
                        r.get::<_, i64>(9)?,
                        r.get::<_, Option<i64>>(10)?,
                    ),
                ))
            },
        )
        .optional()
        .map_err(Error::sqlite("reading the CA"))?;
    let Some((
        (id, name, key_type, dns, state, deletion_at, crl_number),
        (parent_id, path_len, revoked_count, audit_seq),
    )) = row
    else {
        return Err(Error::NoSuchCa {
            query: query.to_owned(),
        });
    };
    integrity::require(tx, &keys.rows, &integrity::CAS, &id)?;
    let damaged = || Error::RowTampered {
        table: "cas",
        row: id.clone(),
    };
    Ok(CaRow {
        key_type: KeyType::parse(&key_type).ok_or_else(damaged)?,
        permitted_dns: serde_json::from_str(&dns).map_err(|_| damaged())?,
        state: CaState::parse(&state).ok_or_else(damaged)?,
        id,
        name,
        parent_id,
        path_len,
        deletion_at,
        crl_number,
        revoked_count,
        audit_seq,
    })
}

/// Every revocation row of `ca` checked: each row's MAC, and their number against the count
/// the CA's own (checked) row keeps, so a row added, changed or deleted outside certvault
/// stops whatever relies on revocations (a CRL, a push, a renewal).
fn check_revocations(conn: &rusqlite::Connection, keys: &Keys, ca: &CaRow) -> Result<()> {
    if let Some(b) = integrity::check(
        conn,
        &keys.rows,
        &integrity::REVOCATIONS,
        "ca_id = ?1",
        &[&ca.id],
    )?
    .into_iter()
    .next()
    {
        return Err(Error::RowTampered {
            table: b.table,
            row: b.row,
        });
    }
    let n: i64 = conn
        .query_row(
            "SELECT count(*) FROM revocations WHERE ca_id = ?1",
            [&ca.id],
            |r| r.get(0),
        )
        .map_err(Error::sqlite("reading revocations"))?;
    if n != ca.revoked_count {
        return Err(Error::RowTampered {
            table: "revocations",
            row: format!(
                "of CA {} ({n} rows, {} recorded: rows were deleted or added)",
                ca.name, ca.revoked_count
            ),
        });
    }
    Ok(())
}

/// The CA's current certificate (version row, DER) and its chain up to the root.
fn ca_cert(tx: &rusqlite::Connection, keys: &Keys, ca: &CaRow) -> Result<(i64, Vec<u8>)> {
    integrity::require(tx, &keys.rows, &integrity::ENTRIES, &ca.id)?;
    let (row, der): (i64, Vec<u8>) = tx
        .query_row(
            "SELECT v.id, v.cert_der FROM entries e JOIN versions v ON v.id = e.current_version
             WHERE e.id = ?1",
            [&ca.id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(Error::sqlite("reading the CA's certificate"))?;
    integrity::require(tx, &keys.rows, &integrity::VERSIONS, &row)?;
    Ok((row, der))
}

/// The CA's signing key, opened (its row checked first, by the caller's `ca_cert`).
fn ca_key(vault: &Vault, ca: &CaRow, row: i64, der: &[u8]) -> Result<KeyPair> {
    let pkcs8 = vault
        .open_key_of(row, der)?
        .ok_or_else(|| ca_error(&ca.name, "its key is destroyed"))?;
    key_pair(pkcs8.expose_secret(), ca.key_type)
}

pub(crate) fn key_pair(pkcs8: &[u8], key_type: KeyType) -> Result<KeyPair> {
    let kp = KeyPair::try_from(pkcs8).map_err(|e| Error::Export {
        name: "the key".into(),
        reason: format!("the sealed key cannot sign: {e}"),
    })?;
    if kp.algorithm() != key_type.algorithm() {
        return Err(Error::Export {
            name: "the key".into(),
            reason: format!("the sealed key is not {key_type}"),
        });
    }
    Ok(kp)
}

fn rcgen_error(ca: &str, doing: &str) -> impl Fn(rcgen::Error) -> Error + use<> {
    let (ca, doing) = (ca.to_owned(), doing.to_owned());
    move |e| ca_error(&ca, format!("{doing}: {e}"))
}

impl Vault {
    /// Reads a CA row by name or entry id, checked against its MAC and against the audit
    /// log: it must be the newest copy of the row (see `ledger`), so a row put back from an
    /// older copy of the vault (enabled again, an older CRL number, fewer revocations) is
    /// refused like a changed one.
    fn read_ca(&self, query: &str) -> Result<CaRow> {
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        let ca = read_ca_row(&self.conn, keys, query)?;
        self.require_ca_current(&ca.id, &ca.name, ca.audit_seq)?;
        Ok(ca)
    }

    /// Refuses, audits and counts a use of a CA that is not enabled; purges a CA whose
    /// waiting window is over. The caller's transaction is not used: the refusal must be
    /// recorded even though the operation fails.
    fn ca_usable(&mut self, ca: &CaRow, doing: &str) -> Result<()> {
        if ca.state == CaState::Enabled {
            return self.ancestors_usable(ca, doing);
        }
        if ca.state == CaState::PendingDeletion && ca.deletion_at.is_some_and(|at| at <= now_unix())
        {
            self.ca_purge(&ca.name)?;
            return Err(ca_error(
                &ca.name,
                format!("it cannot {doing}: its waiting window ended and its key is now destroyed"),
            ));
        }
        let hint = match ca.state {
            CaState::Disabled => format!(
                "`certvault ca enable {}` enables it",
                crate::text::shell_word(&ca.name)
            ),
            CaState::PendingDeletion => format!(
                "it is scheduled for deletion on {}; `certvault ca cancel-deletion {}` keeps it (disabled)",
                crate::text::timestamp(from_unix(ca.deletion_at.unwrap_or(0))),
                crate::text::shell_word(&ca.name)
            ),
            _ => "its key is destroyed".into(),
        };
        let state = ca.state;
        // A pending CA's use is told apart: it is what `certvault_ca_use_while_pending_total`
        // counts (the way a CloudWatch alarm on a pending KMS key warns that it is still used).
        self.record_event(
            if state == CaState::PendingDeletion {
                "ca-use-while-pending"
            } else {
                "ca-use-refused"
            },
            Some(&ca.id),
            &format!("CA {} is {state}: refused to {doing}", ca.name),
        )?;
        Err(Error::CaState {
            ca: ca.name.clone(),
            state: state.as_str(),
            doing: doing.to_owned(),
            hint,
        })
    }

    /// Before a CA's key is exported: like every other use of the key, only while the CA
    /// (and every CA above it) is enabled; a refusal is audited (`ca-use-while-pending` for
    /// a CA pending deletion), so no copy of a key made to be destroyed outlives it.
    pub(crate) fn ca_key_exportable(&mut self, entry_id: &str) -> Result<()> {
        if let Some(bad) = crate::integrity::ledger::missing_ca_rows(&self.conn, Some(entry_id))?
            .into_iter()
            .next()
        {
            return Err(Error::RowTampered {
                table: bad.table,
                row: bad.row,
            });
        }
        let ca = self.read_ca(entry_id)?;
        self.ca_usable(&ca, "export its key")
    }

    /// An enabled CA signs only while every CA above it is enabled and its own certificate
    /// is not revoked by its parent (each row read checked).
    fn ancestors_usable(&self, ca: &CaRow, doing: &str) -> Result<()> {
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        let mut child = self.read_ca(&ca.id)?;
        for _ in 0..32 {
            let Some(parent_id) = child.parent_id.clone() else {
                return Ok(());
            };
            let parent = self.read_ca(&parent_id)?;
            check_revocations(&self.conn, keys, &parent)?;
            if self.is_revoked(&child.id)? {
                return Err(ca_error(
                    &ca.name,
                    format!(
                        "it cannot {doing}: the certificate of CA {} is revoked by {}",
                        child.name, parent.name
                    ),
                ));
            }
            if parent.state != CaState::Enabled {
                return Err(ca_error(
                    &ca.name,
                    format!(
                        "it cannot {doing}: CA {} above it is {}",
                        parent.name, parent.state
                    ),
                ));
            }
            child = parent;
        }
        Err(ca_error(
            &ca.name,
            "its chain of parents is longer than 32 CAs",
        ))
    }

    /// `ca create`: a root, or an intermediate signed by `parent`. The key is generated
    /// here and sealed at once.
    pub fn ca_create(&mut self, req: &NewCa) -> Result<CaSummary> {
        let r = self.ca_create_checked(req);
        self.audit_refusal(r, "creating a CA")
    }

    fn ca_create_checked(&mut self, req: &NewCa) -> Result<CaSummary> {
        // Checked from here on; written only if nothing changed meanwhile.
        let seen = self.conn.data_version()?;
        validate_name(&req.name)?;
        let dn = parse_subject(&req.subject)?;
        let permit: Vec<String> = req
            .permit_dns
            .iter()
            .map(|d| {
                if d.contains('*') {
                    return Err(ca_error(
                        &req.name,
                        format!("--permit-dns {d}: a permitted subtree is a domain (it covers every name under it), not a wildcard"),
                    ));
                }
                check_dns(d).map_err(|e| ca_error(&req.name, format!("--permit-dns {e}")))
            })
            .collect::<Result<_>>()?;
        if req.validity <= Duration::ZERO {
            return Err(ca_error(&req.name, "the validity must be positive"));
        }
        if self.name_taken(&req.name)? {
            return Err(ca_error(
                &req.name,
                "an entry of that name exists already: choose another name",
            ));
        }
        // The parent, checked and usable, before any key is made.
        let parent = match &req.parent {
            Some(p) => {
                self.keys.as_ref().ok_or(Error::Locked)?;
                let ca = self.read_ca(p)?;
                self.ca_usable(&ca, "sign an intermediate")?;
                Some(ca)
            }
            None => None,
        };
        // Under a parent: its path length and its names bind the intermediate (a constrained
        // parent's names are inherited when none are given; a tighter list must fit in them).
        let mut path_len = req.path_len;
        let mut permit = permit;
        if let Some(p) = &parent {
            match p.path_len {
                Some(0) => {
                    return Err(ca_error(
                        &p.name,
                        "its path length is 0: it signs no intermediate CA, only certificates",
                    ));
                }
                Some(n) => {
                    let most = u8::try_from(n - 1).unwrap_or(u8::MAX);
                    match path_len {
                        Some(m) if m > most => {
                            return Err(ca_error(
                                &p.name,
                                format!(
                                    "its path length is {n}: an intermediate under it may have --path-len {most} at most"
                                ),
                            ));
                        }
                        None => path_len = Some(most),
                        Some(_) => {}
                    }
                }
                None => {}
            }
            if permit.is_empty() {
                permit = p.permitted_dns.clone();
            }
        }
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        let now = OffsetDateTime::now_utc();
        let not_after = now + req.validity;
        let (pkcs8, kp) = req.key_type.generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = dn;
        params.serial_number = Some(new_serial()?);
        params.not_before = now - BACKDATE;
        params.not_after = not_after;
        params.is_ca = IsCa::Ca(match path_len {
            Some(n) => BasicConstraints::Constrained(n),
            None => BasicConstraints::Unconstrained,
        });
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
        ];
        params.key_identifier_method = KeyIdMethod::Sha256;
        if !permit.is_empty() {
            params.name_constraints = Some(NameConstraints {
                permitted_subtrees: permit
                    .iter()
                    .map(|d| GeneralSubtree::DnsName(d.clone()))
                    .collect(),
                // DNS subtrees do not bind IP addresses: exclude them all, so validators
                // refuse an IP SAN as the vault does.
                excluded_subtrees: vec![
                    GeneralSubtree::IpAddress(rcgen::CidrSubnet::V4([0; 4], [0; 4])),
                    GeneralSubtree::IpAddress(rcgen::CidrSubnet::V6([0; 16], [0; 16])),
                ],
            });
        }
        let (der, chain, parent_name) = match &parent {
            None => {
                let cert = params
                    .self_signed(&kp)
                    .map_err(rcgen_error(&req.name, "cannot make the certificate"))?;
                (cert.der().to_vec(), Vec::new(), None)
            }
            Some(p) => {
                let (prow, pder) = ca_cert(&self.conn, keys, p)?;
                let parent_end = CertInfo::from_der(&pder)
                    .map_err(|e| ca_error(&p.name, e))?
                    .not_after;
                if not_after > parent_end {
                    return Err(beyond_ca(&p.name, not_after, parent_end));
                }
                // An intermediate's names must fit in its parent's.
                for d in &permit {
                    if !permitted(d, &p.permitted_dns) {
                        return Err(Error::NameNotPermitted {
                            name: d.clone(),
                            ca: p.name.clone(),
                            permitted: p.permitted_dns.join(", "),
                        });
                    }
                }
                let pkey = ca_key(self, p, prow, &pder)?;
                let issuer = Issuer::from_ca_cert_der(&pder.clone().into(), pkey)
                    .map_err(rcgen_error(&p.name, "cannot read the parent's certificate"))?;
                params.use_authority_key_identifier_extension = true;
                let cert = params
                    .signed_by(&kp, &issuer)
                    .map_err(rcgen_error(&req.name, "cannot sign the certificate"))?;
                let mut chain = vec![pder.clone()];
                chain.extend(self.chain_ders_of(prow)?);
                (cert.der().to_vec(), chain, Some(p.name.clone()))
            }
        };
        drop(kp);
        let bundle = bundle_of(der, chain, pkcs8, &format!("created as CA {}", req.name))?;
        let actor = self.actor.clone();
        let tx = self.conn.write_unchanged("creating the CA", seen)?;
        let id = match import_bundle(
            &tx,
            keys,
            &actor,
            bundle,
            Arrival {
                name: &req.name,
                source: Source::Issued,
                origin: &format!("the vault (CA {})", req.name),
                update_chain: false,
                // `ca-create` below says it all.
                audit: false,
            },
        )? {
            ImportOutcome::Created { id, .. } => id,
            _ => {
                return Err(ca_error(
                    &req.name,
                    "its certificate is in the vault already",
                ));
            }
        };
        // The event first: the row carries its number (see `ledger`).
        let seq = audit::append(
            &tx,
            &keys.audit,
            &actor,
            "ca-create",
            Some((&id, &req.name)),
            &format!(
                "{} CA {} ({}, {}), valid until {}{}{}",
                if parent_name.is_some() {
                    "intermediate"
                } else {
                    "root"
                },
                req.subject,
                req.key_type,
                match path_len {
                    Some(n) => format!("path length {n}"),
                    None => "no path length limit".into(),
                },
                crate::text::timestamp(not_after),
                parent_name
                    .map(|p| format!(", signed by {p}"))
                    .unwrap_or_default(),
                if permit.is_empty() {
                    String::new()
                } else {
                    format!(", permitted DNS: {}", permit.join(", "))
                }
            ),
        )?;
        tx.execute(
            "INSERT INTO cas (id, name, parent_id, key_type, path_len, permitted_dns, state,
                              deletion_at, crl_number, created_at, audit_seq)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'enabled', NULL, 1, ?7, ?8)",
            params![
                id,
                req.name,
                parent.as_ref().map(|p| p.id.clone()),
                req.key_type.as_str(),
                path_len.map(i64::from),
                serde_json::to_string(&permit).unwrap_or_else(|_| "[]".into()),
                now_unix(),
                seq
            ],
        )
        .map_err(Error::sqlite("creating the CA"))?;
        integrity::seal_one(&tx, &keys.rows, &integrity::CAS, &id)?;
        tx.commit().map_err(Error::sqlite("creating the CA"))?;
        self.ca_list()?
            .into_iter()
            .find(|c| c.id == id)
            .ok_or(Error::NoSuchCa { query: id })
    }

    /// `ca list`: every CA, oldest first. Needs no passphrase (the rows are public data).
    pub fn ca_list(&self) -> Result<Vec<CaSummary>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT c.id, c.name, v.subject, c.key_type, v.not_after, c.state, c.deletion_at,
                        (SELECT count(*) FROM issued i WHERE i.ca_id = c.id),
                        (SELECT count(*) FROM revocations r WHERE r.ca_id = c.id),
                        (SELECT p.name FROM cas p WHERE p.id = c.parent_id),
                        c.permitted_dns, c.crl_number
                 FROM cas c JOIN entries e ON e.id = c.id
                 JOIN versions v ON v.id = e.current_version
                 ORDER BY c.created_at, c.rowid",
            )
            .map_err(Error::sqlite("listing CAs"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(CaSummary {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    subject: r.get(2)?,
                    key_type: r.get(3)?,
                    not_after: from_unix(r.get(4)?),
                    state: CaState::parse(&r.get::<_, String>(5)?).unwrap_or(CaState::Disabled),
                    deletion_date: r.get::<_, Option<i64>>(6)?.map(from_unix),
                    issued: r.get::<_, i64>(7)? as u64,
                    revoked: r.get::<_, i64>(8)? as u64,
                    parent: r.get(9)?,
                    permitted_dns: serde_json::from_str(&r.get::<_, String>(10)?)
                        .unwrap_or_default(),
                    crl_number: r.get::<_, i64>(11)? as u64,
                })
            })
            .map_err(Error::sqlite("listing CAs"))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(Error::sqlite("listing CAs"))
    }

    /// The trust bundle of a CA: its certificate, then its parents' up to the root (DER).
    /// Needs the vault unlocked: what clients will trust is read from checked rows only (the
    /// CA's row, its entry, and its version, whose MAC covers the chain).
    pub fn ca_bundle(&self, query: &str) -> Result<(String, Vec<Vec<u8>>)> {
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        let ca = self.read_ca(query)?;
        let (row, der) = ca_cert(&self.conn, keys, &ca)?;
        let mut out = vec![der];
        out.extend(self.chain_ders_of(row)?);
        Ok((ca.name, out))
    }

    /// `ca issue`: a key generated here and a certificate for it, stored as a new entry
    /// (source `issued`) with its chain.
    pub fn ca_issue(&mut self, ca: &str, req: &NewLeaf) -> Result<IssuedCert> {
        let r = self.ca_issue_checked(ca, req);
        self.audit_refusal(r, "issuing a certificate")
    }

    fn ca_issue_checked(&mut self, ca: &str, req: &NewLeaf) -> Result<IssuedCert> {
        let mut one = self.ca_issue_many_checked(ca, std::slice::from_ref(req))?;
        one.pop().ok_or_else(|| ca_error(ca, "nothing was issued"))
    }

    /// `ca sign`: a certificate for the key of a CSR whose signature checks out. The key
    /// stays with its owner; the entry holds the certificate only.
    pub fn ca_sign(&mut self, ca: &str, req: &CsrRequest) -> Result<IssuedCert> {
        let r = self.ca_sign_checked(ca, req);
        self.audit_refusal(r, "signing a CSR")
    }

    fn ca_sign_checked(&mut self, ca: &str, req: &CsrRequest) -> Result<IssuedCert> {
        // Checked from here on; written only if nothing changed meanwhile.
        let seen = self.conn.data_version()?;
        self.keys.as_ref().ok_or(Error::Locked)?;
        let ca = self.read_ca(ca)?;
        let bad = |reason: String| Error::BadCsr {
            source_name: req.source_name.clone(),
            reason,
        };
        if req.csr.len() > 64 * 1024 {
            return Err(bad("larger than 64 KiB: not a CSR".into()));
        }
        let der = if req.csr.starts_with(b"-----") || req.csr.iter().take(64).any(|b| *b == b'-') {
            let text = std::str::from_utf8(&req.csr).map_err(|_| bad("not PEM text".into()))?;
            let block = pem::parse(text).map_err(|e| bad(format!("not PEM: {e}")))?;
            if block.tag() != "CERTIFICATE REQUEST" && block.tag() != "NEW CERTIFICATE REQUEST" {
                return Err(bad(format!(
                    "a PEM '{}' block, not a CERTIFICATE REQUEST",
                    block.tag()
                )));
            }
            block.contents().to_vec()
        } else {
            req.csr.clone()
        };
        // An RSA key under 2048 bits is refused for what it is, before its signature is
        // checked (the verifier refuses such keys outright, which would read as a forgery).
        use x509_parser::{
            certification_request::X509CertificationRequest, prelude::FromDer as _,
            public_key::PublicKey,
        };
        if let Ok((_, parsed)) = X509CertificationRequest::from_der(&der)
            && let Ok(PublicKey::RSA(rsa)) = parsed.certification_request_info.subject_pki.parsed()
        {
            let bits = crate::formats::cert::bit_length(rsa.modulus);
            if bits < MIN_RSA_BITS {
                return Err(bad(format!(
                    "key too small (RSA-{bits}; at least {MIN_RSA_BITS} bits)"
                )));
            }
        }
        let csr = rcgen::CertificateSigningRequestParams::from_der(&der.clone().into())
            .map_err(|e| match e {
                rcgen::Error::InvalidCertificationRequestSignature => {
                    bad("its signature does not check out: it was altered, or not made with the key it holds".into())
                }
                rcgen::Error::UnsupportedExtension => {
                    bad("it asks for an extension the CA does not copy (only subjectAltName, keyUsage, extendedKeyUsage)".into())
                }
                other => bad(format!("not a certificate request: {other}")),
            })?;
        let mut dns = req.dns.clone();
        let mut ips = Vec::new();
        if dns.is_empty() {
            for san in &csr.params.subject_alt_names {
                match san {
                    SanType::DnsName(d) => dns.push(d.as_str().to_owned()),
                    SanType::IpAddress(ip) => ips.push(*ip),
                    _ => {
                        return Err(bad(
                            "it asks for a name that is neither DNS nor IP (use --dns)".into(),
                        ));
                    }
                }
            }
            if dns.is_empty()
                && ips.is_empty()
                && let Some(cn) = csr
                    .params
                    .distinguished_name
                    .get(&DnType::CommonName)
                    .and_then(dn_value)
            {
                dns.push(cn);
            }
        }
        let names = leaf_names(&ca, &dns, &ips)?;
        let name = req.name.clone().unwrap_or_else(|| names_first(&names));
        validate_name(&name)?;
        if self.name_taken(&name)? {
            return Err(ca_error(
                &ca.name,
                format!("an entry named {name} exists already: choose another --name"),
            ));
        }
        self.ca_usable(&ca, "sign")?;
        let validity = req.validity.unwrap_or(DEFAULT_LEAF_VALIDITY);
        self.issue_into(
            &ca,
            &name,
            &names,
            validity,
            LeafKey::Csr(Box::new(csr)),
            IssuedRow {
                key_type: None,
                auto_renew_before: None,
            },
            "sign",
            seen,
        )
    }

    /// `renew`: a new version of an issued entry with the same names and key type (a new
    /// key unless `reuse_key`), which becomes current. Deployments with auto-redeploy
    /// follow on the next pass (same ARN).
    pub fn renew(&mut self, query: &str, reuse_key: bool) -> Result<IssuedCert> {
        let r = self.renew_checked(query, reuse_key);
        self.audit_refusal(r, "a renewal")
    }

    fn renew_checked(&mut self, query: &str, reuse_key: bool) -> Result<IssuedCert> {
        // Checked from here on; written only if nothing changed meanwhile.
        let seen = self.conn.data_version()?;
        let (id, name) = self.resolve(query)?;
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        integrity::require(&self.conn, &keys.rows, &integrity::ENTRIES, &id)?;
        let issued: Option<(String, Option<String>, i64, Option<i64>)> = self
            .conn
            .query_row(
                "SELECT ca_id, key_type, validity_s, auto_renew_before FROM issued WHERE entry_id = ?1",
                [&id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()
            .map_err(Error::sqlite("renewing"))?;
        let Some((ca_id, key_type, validity_s, auto)) = issued else {
            return Err(Error::NotIssued { name });
        };
        integrity::require(&self.conn, &keys.rows, &integrity::ISSUED, &id)?;
        let ca = self.read_ca(&ca_id)?;
        let (row, der, sans): (i64, Vec<u8>, String) = self
            .conn
            .query_row(
                "SELECT v.id, v.cert_der, v.sans FROM entries e
                 JOIN versions v ON v.id = e.current_version WHERE e.id = ?1",
                [&id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .map_err(Error::sqlite("renewing"))?;
        integrity::require(&self.conn, &keys.rows, &integrity::VERSIONS, &row)?;
        let sans: Vec<String> = serde_json::from_str(&sans).unwrap_or_default();
        let mut dns = Vec::new();
        let mut ips = Vec::new();
        for s in sans {
            match s.parse::<IpAddr>() {
                Ok(ip) => ips.push(ip),
                Err(_) => dns.push(s),
            }
        }
        let names = leaf_names(&ca, &dns, &ips)?;
        // No key type recorded: it was signed from a CSR, and its key is its owner's.
        let key_type = key_type.as_deref().and_then(KeyType::parse);
        check_revocations(&self.conn, keys, &ca)?;
        if self.is_revoked(&id)? {
            return Err(ca_error(
                &ca.name,
                format!(
                    "the current certificate of {name} is revoked: issue a new certificate (`certvault ca issue`), with a new key"
                ),
            ));
        }
        self.ca_usable(&ca, "renew")?;
        let validity = Duration::seconds(validity_s);
        let Some(kt) = key_type else {
            // A signed CSR: the key is its owner's.
            return Err(ca_error(
                &ca.name,
                format!(
                    "{name} was signed from a CSR: its key is with its owner; sign a new CSR with `certvault ca sign`"
                ),
            ));
        };
        let (pkcs8, leaf_key) = if reuse_key {
            let pkcs8 = self
                .open_key_of(row, &der)?
                .ok_or_else(|| ca_error(&ca.name, format!("{name} has no key to reuse")))?;
            let key = LeafPublic::of(&key_pair(pkcs8.expose_secret(), kt)?);
            (pkcs8, key)
        } else {
            kt.generate_leaf()?
        };
        self.issue_into(
            &ca,
            &name,
            &names,
            validity,
            LeafKey::Generated {
                key_type: kt,
                key: &leaf_key,
                pkcs8,
            },
            IssuedRow {
                key_type: Some(kt),
                auto_renew_before: auto.map(Duration::seconds),
            },
            "renew",
            seen,
        )
    }

    /// The issued entries whose current version has at most their `auto_renew_before` of
    /// validity left at `now`, and that are not revoked: what the agent renews.
    pub fn due_for_renewal(&self, now: OffsetDateTime) -> Result<Vec<(String, String)>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT e.id, e.name FROM issued i JOIN entries e ON e.id = i.entry_id
                 JOIN versions v ON v.id = e.current_version
                 JOIN cas c ON c.id = i.ca_id AND c.state = 'enabled'
                 WHERE i.auto_renew_before IS NOT NULL AND i.key_type IS NOT NULL
                   AND v.not_after - i.auto_renew_before <= ?1
                   AND NOT EXISTS (SELECT 1 FROM revocations r
                                   WHERE r.ca_id = i.ca_id AND r.serial = v.serial)
                 ORDER BY v.not_after",
            )
            .map_err(Error::sqlite("finding renewals"))?;
        let rows = stmt
            .query_map([to_unix(now)], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(Error::sqlite("finding renewals"))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(Error::sqlite("finding renewals"))
    }

    /// Signs and stores one leaf under `name` (a new entry, or a new version of it), in its
    /// own transaction.
    #[allow(clippy::too_many_arguments)]
    fn issue_into(
        &mut self,
        ca: &CaRow,
        name: &str,
        names: &[SanType],
        validity: Duration,
        leaf: LeafKey<'_>,
        issued: IssuedRow,
        doing: &str,
        seen: i64,
    ) -> Result<IssuedCert> {
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        let signer = Signer::new(self, ca)?;
        let signed = signer.sign(names, validity, leaf)?;
        let actor = self.actor.clone();
        let tx = self.conn.write_unchanged("issuing", seen)?;
        let mut events = audit::Appender::start(&tx, &keys.audit)?;
        let out = store_issued(
            &tx,
            keys,
            (&actor, &mut events),
            &signer,
            name,
            signed,
            &issued,
            validity,
            doing,
        )?;
        events.finish(&tx, &keys.audit)?;
        tx.commit().map_err(Error::sqlite("issuing"))?;
        Ok(out)
    }

    /// For the benchmark only: whether a batch issuance makes keys on a second thread (on by
    /// default), so that its rate on one thread can be measured too.
    #[doc(hidden)]
    pub fn set_issue_pipeline_for_benchmark(&mut self, on: bool) {
        self.issue_pipeline = on;
    }

    /// `ca issue --from-file`: several certificates from one CA, keys made in the vault, in
    /// one transaction (all or nothing). Each request is checked before anything is made.
    pub fn ca_issue_many(&mut self, ca: &str, reqs: &[NewLeaf]) -> Result<Vec<IssuedCert>> {
        let r = self.ca_issue_many_checked(ca, reqs);
        self.audit_refusal(r, "issuing certificates")
    }

    fn ca_issue_many_checked(&mut self, ca: &str, reqs: &[NewLeaf]) -> Result<Vec<IssuedCert>> {
        // Checked from here on; written only if nothing changed meanwhile.
        let version = self.conn.data_version()?;
        self.keys.as_ref().ok_or(Error::Locked)?;
        let ca = self.read_ca(ca)?;
        let mut planned = Vec::with_capacity(reqs.len());
        let mut seen = std::collections::BTreeSet::new();
        for req in reqs {
            let names = leaf_names(&ca, &req.dns, &req.ips)?;
            let name = req.name.clone().unwrap_or_else(|| names_first(&names));
            validate_name(&name)?;
            let validity = req.validity.unwrap_or(DEFAULT_LEAF_VALIDITY);
            if let Some(b) = req.auto_renew_before
                && (b <= Duration::ZERO || b >= validity)
            {
                return Err(ca_error(
                    &ca.name,
                    format!(
                        "{name}: --auto-renew-before must be positive and shorter than the validity ({} days): a renewal must not be due the moment it is made",
                        validity.whole_days()
                    ),
                ));
            }
            if self.name_taken(&name)? {
                return Err(ca_error(
                    &ca.name,
                    format!(
                        "an entry named {name} exists already: `certvault renew {}` renews it, or choose another --name; nothing was issued",
                        crate::text::shell_word(&name)
                    ),
                ));
            }
            if !seen.insert(name.to_lowercase()) {
                return Err(ca_error(
                    &ca.name,
                    format!("{name} is asked for twice: nothing was issued"),
                ));
            }
            planned.push((name, names, validity, req));
        }
        self.ca_usable(&ca, "issue")?;
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        let signer = Signer::new(self, &ca)?;
        let actor = self.actor.clone();
        let tx = self.conn.write_unchanged("issuing", version)?;
        // Making a key and signing (CPU) and storing (one SQLite writer) are separate steps:
        // for a batch, keys are made and signed on a second thread while this one stores what
        // is ready, so a 2-core machine does both at once. What one step hands the other is
        // in memory only (the key sealed before it is written), and a failure on either side
        // stops both: the transaction is dropped, nothing is stored.
        let make = |(_, names, validity, req): &(String, Vec<SanType>, Duration, &NewLeaf)| {
            let key_type = req.key_type.unwrap_or(KeyType::EcP256);
            let (pkcs8, key) = key_type.generate_leaf()?;
            signer.sign(
                names,
                *validity,
                LeafKey::Generated {
                    key_type,
                    key: &key,
                    pkcs8,
                },
            )
        };
        let mut events = audit::Appender::start(&tx, &keys.audit)?;
        let mut store = |tx: &Transaction<'_>,
                         (name, _, validity, req): (String, Vec<SanType>, Duration, &NewLeaf),
                         signed: Signed| {
            store_issued(
                tx,
                keys,
                (&actor, &mut events),
                &signer,
                &name,
                signed,
                &IssuedRow {
                    key_type: Some(req.key_type.unwrap_or(KeyType::EcP256)),
                    auto_renew_before: req.auto_renew_before,
                },
                validity,
                "issue",
            )
        };
        let mut out = Vec::with_capacity(planned.len());
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        if planned.len() < PIPELINE_FROM || threads < 2 || !self.issue_pipeline {
            for plan in planned {
                let signed = make(&plan)?;
                out.push(store(&tx, plan, signed)?);
            }
        } else {
            std::thread::scope(|scope| -> Result<()> {
                // Handed over a few at a time: one wake-up of the other thread per batch, not
                // per certificate.
                let (send, receive) = std::sync::mpsc::sync_channel::<Vec<Result<Signed>>>(4);
                let plans = &planned;
                scope.spawn(move || {
                    for chunk in plans.chunks(PIPELINE_CHUNK) {
                        let signed: Vec<Result<Signed>> = chunk.iter().map(make).collect();
                        // The receiver is gone when storing failed: stop making keys.
                        if send.send(signed).is_err() {
                            break;
                        }
                    }
                });
                let mut plans = planned.iter().cloned();
                while out.len() < planned.len() {
                    let signed = receive
                        .recv()
                        .map_err(|_| ca_error(&ca.name, "the thread making keys stopped early"))?;
                    for signed in signed {
                        let plan = plans.next().ok_or_else(|| {
                            ca_error(&ca.name, "more certificates signed than asked for")
                        })?;
                        out.push(store(&tx, plan, signed?)?);
                    }
                }
                Ok(())
            })?;
        }
        events.finish(&tx, &keys.audit)?;
        tx.commit().map_err(Error::sqlite("issuing"))?;
        Ok(out)
    }

    /// `ca revoke`: one recorded row (the CRL is built when asked). Revokes the entry's
    /// current version.
    pub fn ca_revoke(&mut self, query: &str, reason: RevocationReason) -> Result<Revocation> {
        let r = self.ca_revoke_checked(query, reason);
        self.audit_refusal(r, "a revocation")
    }

    fn ca_revoke_checked(&mut self, query: &str, reason: RevocationReason) -> Result<Revocation> {
        // Checked from here on; written only if nothing changed meanwhile.
        let seen = self.conn.data_version()?;
        let (id, name) = self.resolve(query)?;
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        integrity::require(&self.conn, &keys.rows, &integrity::ENTRIES, &id)?;
        let ca_id: Option<String> = self
            .conn
            .query_row("SELECT ca_id FROM issued WHERE entry_id = ?1", [&id], |r| {
                r.get(0)
            })
            .optional()
            .map_err(Error::sqlite("revoking"))?;
        let ca_id = match ca_id {
            Some(c) => {
                integrity::require(&self.conn, &keys.rows, &integrity::ISSUED, &id)?;
                c
            }
            None if self.is_ca(&id)? => {
                // A CA's own certificate: its parent revokes it (read from its checked row).
                match self.read_ca(&id)?.parent_id {
                    Some(p) => p,
                    None => return Err(Error::NotIssued { name }),
                }
            }
            None => return Err(Error::NotIssued { name }),
        };
        // The revocations are not all checked here (one revocation among 100,000 stays
        // cheap): the count this adds to is, and the CRL, pushes and renewals check them all.
        let ca = self.read_ca(&ca_id)?;
        let (row, serial, not_after, issuer): (i64, String, i64, String) = self
            .conn
            .query_row(
                "SELECT v.id, v.serial, v.not_after, v.issuer FROM entries e
                 JOIN versions v ON v.id = e.current_version WHERE e.id = ?1",
                [&id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .map_err(Error::sqlite("revoking"))?;
        integrity::require(&self.conn, &keys.rows, &integrity::VERSIONS, &row)?;
        // Only what this CA signed goes on its CRL (a version imported under the entry's
        // name from elsewhere is not its to revoke).
        let (_, ca_der) = ca_cert(&self.conn, keys, &ca)?;
        let ca_subject = CertInfo::from_der(&ca_der)
            .map_err(|e| ca_error(&ca.name, e))?
            .subject;
        if issuer != ca_subject {
            return Err(ca_error(
                &ca.name,
                format!("the current certificate of {name} was not issued by it (issuer {issuer})"),
            ));
        }
        let already: Option<String> = self
            .conn
            .query_row(
                "SELECT reason FROM revocations WHERE ca_id = ?1 AND serial = ?2",
                params![ca.id, serial],
                |r| r.get(0),
            )
            .optional()
            .map_err(Error::sqlite("revoking"))?;
        if let Some(r) = already {
            return Err(ca_error(
                &ca.name,
                format!("{name} (serial {serial}) is revoked already ({r})"),
            ));
        }
        let now = now_unix();
        let actor = self.actor.clone();
        let tx = self.conn.write_unchanged("revoking", seen)?;
        // The CA's event (its revocation list grows), written first: the revocation and the
        // CA's row carry its number, so neither can be deleted or put back older unseen.
        let seq = audit::append(
            &tx,
            &keys.audit,
            &actor,
            "ca-revoke",
            Some((&ca.id, &ca.name)),
            &format!("{name}: serial {serial} revoked ({reason})"),
        )?;
        tx.execute(
            "INSERT INTO revocations (ca_id, serial, entry_id, version_id, revoked_at, reason, not_after, audit_seq)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![ca.id, serial, id, row, now, reason.as_str(), not_after, seq],
        )
        .map_err(Error::sqlite("revoking"))?;
        let rowid = tx.last_insert_rowid();
        integrity::seal_one(&tx, &keys.rows, &integrity::REVOCATIONS, &rowid)?;
        tx.execute(
            "UPDATE cas SET revoked_count = revoked_count + 1, audit_seq = ?2 WHERE id = ?1",
            params![ca.id, seq],
        )
        .map_err(Error::sqlite("revoking"))?;
        integrity::seal_one(&tx, &keys.rows, &integrity::CAS, &ca.id)?;
        tx.execute(
            "UPDATE deployments SET state = 'revoked',
                 detail = 'the certificate is revoked: it is never pushed again'
             WHERE entry_id = ?1",
            [&id],
        )
        .map_err(Error::sqlite("revoking"))?;
        tx.commit().map_err(Error::sqlite("revoking"))?;
        Ok(Revocation {
            name,
            ca: ca.name,
            serial,
            reason,
            revoked_at: from_unix(now),
        })
    }

    /// Whether an entry's current certificate is revoked, with the revocations of the CA
    /// that issued it checked first (MACs and count): a revocation deleted outside certvault
    /// stops the push instead of un-revoking it. Entries the vault did not issue: false.
    pub(crate) fn revoked_checked(&self, entry_id: &str) -> Result<bool> {
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        let ca_id: Option<String> = self
            .conn
            .query_row(
                "SELECT ca_id FROM issued WHERE entry_id = ?1",
                [entry_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(Error::sqlite("reading revocations"))?;
        let Some(ca_id) = ca_id else {
            // An entry the vault's CA issued without the row that names the CA: refused (the
            // row decides whose revocations apply).
            if let Some(bad) =
                crate::integrity::ledger::missing_issued_rows(&self.conn, Some(entry_id))?
                    .into_iter()
                    .next()
            {
                return Err(Error::RowTampered {
                    table: bad.table,
                    row: bad.row,
                });
            }
            // From AWS Private CA: its rows' MACs checked first, and a `pca` entry without
            // its row is refused (the row is what says where to revoke it).
            return self.aws_revoked_checked(entry_id);
        };
        integrity::require(&self.conn, &keys.rows, &integrity::ISSUED, &entry_id)?;
        let ca = self.read_ca(&ca_id)?;
        check_revocations(&self.conn, keys, &ca)?;
        self.is_revoked(entry_id)
    }

    /// What is wrong, if anything, with what decides whether the certificates CA `ca_id`
    /// issued are revoked: its row (MAC, and the newest copy) and its revocations (MACs, and
    /// all there). For a pass to check each CA once, not once per deployment.
    pub(crate) fn ca_revocations_problem(&self, ca_id: &str) -> Result<Option<crate::BadRow>> {
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        let checked = self
            .read_ca(ca_id)
            .and_then(|ca| check_revocations(&self.conn, keys, &ca));
        match checked {
            Ok(()) => Ok(None),
            Err(Error::RowTampered { table, row }) => Ok(Some(crate::BadRow { table, row })),
            Err(e) => Err(e),
        }
    }

    /// Whether the current version of an entry is revoked (its serial recorded by the CA
    /// that issued it).
    pub fn is_revoked(&self, entry_id: &str) -> Result<bool> {
        self.conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM revocations r JOIN entries e ON e.id = ?1
                   JOIN versions v ON v.id = e.current_version
                   WHERE r.serial = v.serial AND (r.entry_id = e.id OR r.version_id = v.id))
                 OR EXISTS (SELECT 1 FROM aws_revocations a JOIN entries e ON e.id = ?1
                   JOIN versions v ON v.id = e.current_version
                   WHERE a.entry_id = e.id AND a.version_id = v.id AND a.serial = v.serial)",
                [entry_id],
                |r| r.get(0),
            )
            .map_err(Error::sqlite("reading revocations"))
    }

    /// `ca crl`: a CRL signed by the CA, numbered with a number that only increases,
    /// listing the revoked certificates that had not expired at thisUpdate.
    pub fn ca_crl(&mut self, query: &str, next_update: Duration) -> Result<Crl> {
        let r = self.ca_crl_checked(query, next_update);
        self.audit_refusal(r, "making a CRL")
    }

    fn ca_crl_checked(&mut self, query: &str, next_update: Duration) -> Result<Crl> {
        // Checked from here on; written only if nothing changed meanwhile.
        let seen = self.conn.data_version()?;
        self.keys.as_ref().ok_or(Error::Locked)?;
        let ca = self.read_ca(query)?;
        if next_update <= Duration::ZERO {
            return Err(ca_error(&ca.name, "--next-update must be positive"));
        }
        self.ca_usable(&ca, "make a CRL")?;
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        let this_update = OffsetDateTime::now_utc();
        let this_unix = to_unix(this_update);
        // Every revocation row of this CA is checked (MACs, and their count): a row added,
        // changed or deleted outside certvault could otherwise hide or add a certificate.
        check_revocations(&self.conn, keys, &ca)?;
        let revoked: Vec<RevokedCertParams> = {
            let mut stmt = self
                .conn
                .prepare_cached(
                    "SELECT serial, revoked_at, reason FROM revocations
                     WHERE ca_id = ?1 AND not_after >= ?2 ORDER BY revoked_at, serial",
                )
                .map_err(Error::sqlite("reading revocations"))?;
            let rows = stmt
                .query_map(params![ca.id, this_unix], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })
                .map_err(Error::sqlite("reading revocations"))?;
            let mut out = Vec::new();
            for row in rows {
                let (serial, at, reason) = row.map_err(Error::sqlite("reading revocations"))?;
                let bytes = hex::decode(&serial).map_err(|_| Error::RowTampered {
                    table: "revocations",
                    row: serial.clone(),
                })?;
                let reason = RevocationReason::parse(&reason).ok_or(Error::RowTampered {
                    table: "revocations",
                    row: serial.clone(),
                })?;
                out.push(RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&bytes),
                    revocation_time: from_unix(at),
                    reason_code: Some(reason.rcgen()),
                    invalidity_date: None,
                });
            }
            out
        };
        let entries = revoked.len();
        let number = ca.crl_number.max(1);
        let signer = Signer::new(self, &ca)?;
        let next = this_update + next_update;
        let params = CertificateRevocationListParams {
            this_update,
            next_update: next,
            crl_number: SerialNumber::from_slice(&minimal_be(number as u64)),
            issuing_distribution_point: None,
            revoked_certs: revoked,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let crl = params
            .signed_by(&signer.issuer)
            .map_err(rcgen_error(&ca.name, "cannot sign the CRL"))?;
        let der = crl.der().to_vec();
        let actor = self.actor.clone();
        let tx = self.conn.write_unchanged("recording the CRL", seen)?;
        // The number only ever increases, whatever happens to the file: the row carries the
        // event that set it, so an older copy of the row (an older number) is refused.
        let seq = audit::append(
            &tx,
            &keys.audit,
            &actor,
            "ca-crl",
            Some((&ca.id, &ca.name)),
            &format!(
                "CRL number {number}: {}, next update {}",
                crate::text::count(
                    entries as u64,
                    "revoked certificate",
                    "revoked certificates"
                ),
                crate::text::timestamp(next)
            ),
        )?;
        tx.execute(
            "UPDATE cas SET crl_number = ?2, audit_seq = ?3 WHERE id = ?1",
            params![ca.id, number + 1, seq],
        )
        .map_err(Error::sqlite("recording the CRL"))?;
        integrity::seal_one(&tx, &keys.rows, &integrity::CAS, &ca.id)?;
        tx.commit().map_err(Error::sqlite("recording the CRL"))?;
        Ok(Crl {
            der,
            number: number as u64,
            this_update,
            next_update: next,
            entries,
        })
    }

    /// `ca disable`: the CA signs nothing until enabled again.
    pub fn ca_disable(&mut self, query: &str) -> Result<CaState> {
        self.ca_transition(query, "disable", |s| match s {
            CaState::Enabled | CaState::Disabled => Ok((CaState::Disabled, None)),
            other => Err(format!(
                "it is {other}: {}",
                if other == CaState::PendingDeletion {
                    "`certvault ca cancel-deletion` returns it to disabled"
                } else {
                    "its key is destroyed"
                }
            )),
        })
    }

    /// `ca enable`: a disabled CA signs again.
    pub fn ca_enable(&mut self, query: &str) -> Result<CaState> {
        self.ca_transition(query, "enable", |s| match s {
            CaState::Enabled | CaState::Disabled => Ok((CaState::Enabled, None)),
            CaState::PendingDeletion => Err(
                "it is pending deletion: `certvault ca cancel-deletion` first (it returns to disabled)"
                    .into(),
            ),
            CaState::Deleted => Err("its key is destroyed".into()),
        })
    }

    /// `ca schedule-deletion`: pending deletion for `window_days` (7 to 30), after which
    /// its key is destroyed. The certificates it issued that are still in date.
    pub fn ca_schedule_deletion(
        &mut self,
        query: &str,
        window_days: u32,
    ) -> Result<(OffsetDateTime, Vec<String>)> {
        if !PENDING_WINDOW_DAYS.contains(&window_days) {
            return Err(ca_error(
                query,
                format!("--pending-window-days {window_days} is outside 7 to 30 (KMS's rule)"),
            ));
        }
        let at = now_unix() + i64::from(window_days) * 86_400;
        self.ca_transition(query, "schedule-deletion", |s| match s {
            CaState::Enabled | CaState::Disabled => Ok((CaState::PendingDeletion, Some(at))),
            CaState::PendingDeletion => {
                Err("it is pending deletion already (`certvault ca list` shows the date)".into())
            }
            CaState::Deleted => Err("its key is destroyed already".into()),
        })?;
        let live = self.ca_live_certificates(query)?;
        Ok((from_unix(at), live))
    }

    /// `ca cancel-deletion`: back to disabled.
    pub fn ca_cancel_deletion(&mut self, query: &str) -> Result<CaState> {
        self.ca_transition(query, "cancel-deletion", |s| match s {
            CaState::PendingDeletion => Ok((CaState::Disabled, None)),
            other => Err(format!("it is {other}, not pending deletion")),
        })
    }

    /// The names of the certificates a CA issued that are still in date and not revoked.
    pub fn ca_live_certificates(&self, query: &str) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT e.name FROM cas c JOIN issued i ON i.ca_id = c.id
                 JOIN entries e ON e.id = i.entry_id JOIN versions v ON v.id = e.current_version
                 WHERE (c.id = ?1 OR c.name = ?1 COLLATE NOCASE) AND v.not_after > ?2
                   AND NOT EXISTS (SELECT 1 FROM revocations r WHERE r.ca_id = c.id AND r.serial = v.serial)
                 ORDER BY e.name",
            )
            .map_err(Error::sqlite("listing certificates"))?;
        let rows = stmt
            .query_map(params![query, now_unix()], |r| r.get(0))
            .map_err(Error::sqlite("listing certificates"))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(Error::sqlite("listing certificates"))
    }

    /// `ca purge`: destroys the key of a CA whose waiting window is over (nothing before).
    /// Whether a key was destroyed.
    pub fn ca_purge(&mut self, query: &str) -> Result<bool> {
        self.ca_purge_at(query, now_unix())
    }

    /// [`Vault::ca_purge`] as if it were `now` (unix seconds): the waiting window is tested
    /// with a clock the test sets, not by waiting a week.
    pub fn ca_purge_at(&mut self, query: &str, now: i64) -> Result<bool> {
        let r = self.ca_purge_checked(query, now);
        self.audit_refusal(r, "destroying a CA's key")
    }

    fn ca_purge_checked(&mut self, query: &str, now: i64) -> Result<bool> {
        // Checked from here on; written only if nothing changed meanwhile.
        let seen = self.conn.data_version()?;
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        let ca = self.read_ca(query)?;
        match ca.state {
            CaState::Deleted => return Ok(false),
            CaState::PendingDeletion if ca.deletion_at.is_some_and(|at| at <= now) => {}
            CaState::PendingDeletion => {
                return Err(ca_error(
                    &ca.name,
                    format!(
                        "its waiting window ends on {}: its key is destroyed only after that",
                        crate::text::timestamp(from_unix(ca.deletion_at.unwrap_or(0)))
                    ),
                ));
            }
            other => {
                return Err(ca_error(
                    &ca.name,
                    format!("it is {other}: only a CA pending deletion is purged"),
                ));
            }
        }
        let actor = self.actor.clone();
        let tx = self.conn.write_unchanged("purging", seen)?;
        let seq = audit::append(
            &tx,
            &keys.audit,
            &actor,
            "ca-purge",
            Some((&ca.id, &ca.name)),
            "the CA's waiting window ended: its key is destroyed",
        )?;
        destroy_key(&tx, keys, &ca, seq)?;
        tx.commit().map_err(Error::sqlite("purging"))?;
        let _ = self.scrub();
        Ok(true)
    }

    /// Purges every CA whose waiting window is over (the agent and `ca list` call this).
    pub fn ca_purge_due(&mut self) -> Result<Vec<String>> {
        self.ca_purge_due_at(now_unix())
    }

    /// [`Vault::ca_purge_due`] as if it were `now` (unix seconds).
    pub fn ca_purge_due_at(&mut self, now: i64) -> Result<Vec<String>> {
        let due: Vec<String> = {
            let mut stmt = self
                .conn
                .prepare_cached(
                    "SELECT name FROM cas WHERE state = 'pending-deletion' AND deletion_at <= ?1",
                )
                .map_err(Error::sqlite("reading CAs"))?;
            let rows = stmt
                .query_map([now], |r| r.get(0))
                .map_err(Error::sqlite("reading CAs"))?;
            rows.collect::<rusqlite::Result<_>>()
                .map_err(Error::sqlite("reading CAs"))?
        };
        let mut done = Vec::new();
        // One CA that cannot be purged (a damaged row) does not keep the others' keys alive.
        let mut first_error = None;
        for name in due {
            match self.ca_purge_at(&name, now) {
                Ok(true) => done.push(name),
                Ok(false) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error
            && done.is_empty()
        {
            return Err(e);
        }
        Ok(done)
    }

    fn ca_transition(
        &mut self,
        query: &str,
        action: &str,
        next: impl FnOnce(CaState) -> std::result::Result<(CaState, Option<i64>), String>,
    ) -> Result<CaState> {
        let r = self.ca_transition_checked(query, action, next);
        self.audit_refusal(r, &format!("ca {action}"))
    }

    fn ca_transition_checked(
        &mut self,
        query: &str,
        action: &str,
        next: impl FnOnce(CaState) -> std::result::Result<(CaState, Option<i64>), String>,
    ) -> Result<CaState> {
        // Checked from here on; written only if nothing changed meanwhile.
        let seen = self.conn.data_version()?;
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        let ca = self.read_ca(query)?;
        let (state, at) =
            next(ca.state).map_err(|why| ca_error(&ca.name, format!("cannot {action}: {why}")))?;
        let actor = self.actor.clone();
        let tx = self.conn.write_unchanged("changing the CA", seen)?;
        let seq = audit::append(
            &tx,
            &keys.audit,
            &actor,
            &format!("ca-{action}"),
            Some((&ca.id, &ca.name)),
            &match at {
                Some(at) => format!(
                    "{} -> {state}; its key is destroyed after {}",
                    ca.state,
                    crate::text::timestamp(from_unix(at))
                ),
                None => format!("{} -> {state}", ca.state),
            },
        )?;
        tx.execute(
            "UPDATE cas SET state = ?2, deletion_at = ?3, audit_seq = ?4 WHERE id = ?1",
            params![ca.id, state.as_str(), at, seq],
        )
        .map_err(Error::sqlite("changing the CA"))?;
        integrity::seal_one(&tx, &keys.rows, &integrity::CAS, &ca.id)?;
        tx.commit().map_err(Error::sqlite("changing the CA"))?;
        Ok(state)
    }

    /// How many audit events of `action` the log holds (`ca-use-while-pending` for the
    /// agent's metric).
    pub fn count_audit_events(&self, action: &str) -> Result<u64> {
        self.conn
            .query_row(
                "SELECT count(*) FROM audit WHERE action = ?1",
                [action],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(Error::sqlite("reading the audit log"))
    }

    /// For benchmarks only: records `n` revocations of random serials under CA `query`, in
    /// one transaction, sealed as `ca revoke` seals them (so a CRL build checks them the
    /// same way). Not audited per row: one `bench-seed` event says what was done.
    #[doc(hidden)]
    pub fn seed_revocations_for_benchmark(&mut self, query: &str, n: usize) -> Result<()> {
        // Checked from here on; written only if nothing changed meanwhile.
        let seen = self.conn.data_version()?;
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        let ca = self.read_ca(query)?;
        let actor = self.actor.clone();
        let tx = self.conn.write_unchanged("seeding", seen)?;
        let seq = audit::append(
            &tx,
            &keys.audit,
            &actor,
            "bench-seed",
            Some((&ca.id, &ca.name)),
            &format!("{n} revocations of random serials, for a benchmark"),
        )?;
        let far = now_unix() + 365 * 86_400;
        for i in 0..n {
            let serial = hex::encode(new_serial()?.to_bytes());
            tx.execute(
                "INSERT INTO revocations (ca_id, serial, entry_id, version_id, revoked_at, reason, not_after, audit_seq)
                 VALUES (?1, ?2, NULL, NULL, ?3, ?4, ?5, ?6)",
                params![
                    ca.id,
                    serial,
                    now_unix(),
                    RevocationReason::ALL[i % RevocationReason::ALL.len()].as_str(),
                    far,
                    seq
                ],
            )
            .map_err(Error::sqlite("seeding"))?;
            let id = tx.last_insert_rowid();
            integrity::seal_one(&tx, &keys.rows, &integrity::REVOCATIONS, &id)?;
        }
        tx.execute(
            "UPDATE cas SET revoked_count = revoked_count + ?2, audit_seq = ?3 WHERE id = ?1",
            params![ca.id, n as i64, seq],
        )
        .map_err(Error::sqlite("seeding"))?;
        integrity::seal_one(&tx, &keys.rows, &integrity::CAS, &ca.id)?;
        tx.commit().map_err(Error::sqlite("seeding"))
    }

    /// Whether an entry has that name (names are unique, without regard to case).
    pub(crate) fn name_taken(&self, name: &str) -> Result<bool> {
        self.conn
            .row_cached(
                "SELECT count(*) > 0 FROM entries WHERE name = ?1 COLLATE NOCASE",
                [name],
                |r| r.get(0),
            )
            .map_err(Error::sqlite("reading entries"))
    }

    /// Whether an entry is a CA (which `remove` refuses: schedule its deletion instead; which
    /// is never deployed): it has a CA row, or the audit log created it as one (a row
    /// deleted outside certvault does not make its key an ordinary one).
    pub fn is_ca(&self, entry_id: &str) -> Result<bool> {
        self.conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM cas WHERE id = ?1)
                     OR EXISTS (SELECT 1 FROM audit WHERE entry_id = ?1 AND action = 'ca-create')",
                [entry_id],
                |r| r.get(0),
            )
            .map_err(Error::sqlite("reading CAs"))
    }
}

/// From how many certificates `ca issue --from-file` makes keys and signs on a second
/// thread while it stores (fewer are not worth a thread).
const PIPELINE_FROM: usize = 8;
/// How many signed certificates the key-making thread hands over at a time.
const PIPELINE_CHUNK: usize = 16;

/// A CA ready to sign: its certificate, chain and key, read and checked once.
struct Signer<'a> {
    ca: &'a CaRow,
    ca_info: CertInfo,
    issuer: Issuer<'static, KeyPair>,
    chain: Vec<Cert>,
}

/// A leaf signed, not yet stored.
struct Signed {
    bundle: Bundle,
    serial: String,
    sans: Vec<String>,
    not_after: OffsetDateTime,
}

impl<'a> Signer<'a> {
    fn new(vault: &Vault, ca: &'a CaRow) -> Result<Signer<'a>> {
        let keys = vault.keys()?;
        let (ca_row, ca_der) = ca_cert(&vault.conn, keys, ca)?;
        let ca_info = CertInfo::from_der(&ca_der).map_err(|e| ca_error(&ca.name, e))?;
        let key = ca_key(vault, ca, ca_row, &ca_der)?;
        let issuer = Issuer::from_ca_cert_der(&ca_der.clone().into(), key)
            .map_err(rcgen_error(&ca.name, "cannot read its certificate"))?;
        let mut chain = vec![Cert {
            der: ca_der,
            info: ca_info.clone(),
        }];
        for d in vault.chain_ders_of(ca_row)? {
            let info = CertInfo::from_der(&d).map_err(|e| ca_error(&ca.name, e))?;
            chain.push(Cert { der: d, info });
        }
        Ok(Signer {
            ca,
            ca_info,
            issuer,
            chain,
        })
    }

    /// Signs a leaf for `names`, valid from a minute ago for `validity` (never beyond the
    /// CA's own end).
    fn sign(&self, names: &[SanType], validity: Duration, leaf: LeafKey<'_>) -> Result<Signed> {
        let ca = self.ca;
        let now = OffsetDateTime::now_utc();
        let not_after = now + validity;
        if validity <= Duration::ZERO {
            return Err(ca_error(&ca.name, "the validity must be positive"));
        }
        if not_after > self.ca_info.not_after {
            return Err(beyond_ca(&ca.name, not_after, self.ca_info.not_after));
        }
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, names_first(names));
        params.distinguished_name = dn;
        params.subject_alt_names = names.to_vec();
        params.serial_number = Some(new_serial()?);
        params.not_before = now - BACKDATE;
        params.not_after = not_after;
        // basicConstraints CA:FALSE is written by hand: rcgen's `ExplicitNoCa` encodes the
        // cA BOOLEAN's DEFAULT (FALSE), which DER forbids and strict parsers (Python's
        // cryptography, hence the ACM emulator) refuse. An empty SEQUENCE says CA:FALSE.
        params.is_ca = IsCa::NoCa;
        let mut bc = rcgen::CustomExtension::from_oid_content(&[2, 5, 29, 19], vec![0x30, 0x00]);
        bc.set_criticality(true);
        params.custom_extensions.push(bc);
        params.use_authority_key_identifier_extension = true;
        params.key_identifier_method = KeyIdMethod::Sha256;
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let spki = match &leaf {
            LeafKey::Generated { key, .. } => rcgen::PublicKeyData::subject_public_key_info(*key),
            LeafKey::Csr(csr) => rcgen::PublicKeyData::subject_public_key_info(&csr.public_key),
        };
        params.custom_extensions.push(subject_key_identifier(&spki));
        let (der, pkcs8) = match leaf {
            LeafKey::Generated {
                key_type,
                key,
                pkcs8,
            } => {
                params.key_usages = key_usages(key_type.is_rsa());
                let cert = params
                    .signed_by(key, &self.issuer)
                    .map_err(rcgen_error(&ca.name, "cannot sign"))?;
                (cert.der().to_vec(), Some(pkcs8))
            }
            LeafKey::Csr(mut csr) => {
                let rsa = csr.public_key_is_rsa();
                params.key_usages = key_usages(rsa);
                csr.params = params;
                let cert = csr
                    .signed_by(&self.issuer)
                    .map_err(rcgen_error(&ca.name, "cannot sign"))?;
                (cert.der().to_vec(), None)
            }
        };
        let info = CertInfo::from_der(&der).map_err(|e| ca_error(&ca.name, e))?;
        let serial = info.serial.clone();
        let sans = info.sans.clone();
        let origin = format!("CA {}", ca.name);
        // The certificate was just made over this key's public half: it is the key's.
        let key = pkcs8.map(|pkcs8| PrivateKey {
            pkcs8,
            public: info.public_key.clone(),
        });
        Ok(Signed {
            bundle: Bundle {
                leaf: Cert { der, info },
                chain: self.chain.clone(),
                key,
                origin,
                notes: Vec::new(),
            },
            serial,
            sans,
            not_after,
        })
    }
}

/// Stores a signed leaf under `name` with its `issued` row, audited, in `tx`.
#[allow(clippy::too_many_arguments)]
fn store_issued(
    tx: &Transaction<'_>,
    keys: &Keys,
    (actor, events): (&str, &mut audit::Appender),
    signer: &Signer<'_>,
    name: &str,
    signed: Signed,
    issued: &IssuedRow,
    validity: Duration,
    doing: &str,
) -> Result<IssuedCert> {
    let ca = signer.ca;
    let Signed {
        bundle,
        serial,
        sans,
        not_after,
    } = signed;
    let origin = bundle.origin.clone();
    let outcome = import_bundle(
        tx,
        keys,
        actor,
        bundle,
        Arrival {
            name,
            source: Source::Issued,
            origin: &origin,
            update_chain: false,
            // The `ca-issue` / `ca-sign` / `ca-renew` event below says it all.
            audit: false,
        },
    )?;
    let (id, version) = match outcome {
        ImportOutcome::Created { id, .. } => (id, 1),
        ImportOutcome::NewVersion { id, version, .. } => (id, version),
        _ => {
            return Err(ca_error(
                &ca.name,
                "the new certificate is in the vault already",
            ));
        }
    };
    tx.exec_cached(
        "INSERT INTO issued (entry_id, ca_id, key_type, validity_s, auto_renew_before)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(entry_id) DO UPDATE SET ca_id = excluded.ca_id, key_type = excluded.key_type,
            validity_s = excluded.validity_s, auto_renew_before = excluded.auto_renew_before",
        params![
            id,
            ca.id,
            issued.key_type.map(KeyType::as_str),
            validity.whole_seconds(),
            issued.auto_renew_before.map(|d| d.whole_seconds())
        ],
    )
    .map_err(Error::sqlite("issuing"))?;
    integrity::seal_one(tx, &keys.rows, &integrity::ISSUED, &id)?;
    events.push(
        tx,
        &keys.audit,
        actor,
        &format!("ca-{doing}"),
        Some((&id, name)),
        &format!(
            "{} by CA {}: version {version}, serial {serial}, names {}, valid until {}",
            match doing {
                "renew" => "renewed",
                "sign" => "signed from a CSR",
                _ => "issued",
            },
            ca.name,
            sans.join(", "),
            crate::text::timestamp(not_after)
        ),
    )?;
    Ok(IssuedCert {
        id,
        name: name.to_owned(),
        version,
        ca: ca.name.clone(),
        serial,
        sans,
        not_after,
    })
}

/// Destroys a CA's key material (every version's sealed key) and marks it deleted.
fn destroy_key(tx: &Transaction<'_>, keys: &Keys, ca: &CaRow, audit_seq: i64) -> Result<()> {
    let rows: Vec<i64> = {
        let mut stmt = tx
            .prepare_cached("SELECT id FROM versions WHERE entry_id = ?1")
            .map_err(Error::sqlite("purging"))?;
        let rows = stmt
            .query_map([&ca.id], |r| r.get(0))
            .map_err(Error::sqlite("purging"))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(Error::sqlite("purging"))?
    };
    for row in rows {
        tx.execute("UPDATE versions SET key_sealed = NULL WHERE id = ?1", [row])
            .map_err(Error::sqlite("purging"))?;
        integrity::seal_one(tx, &keys.rows, &integrity::VERSIONS, &row)?;
    }
    tx.execute(
        "UPDATE cas SET state = 'deleted', audit_seq = ?2 WHERE id = ?1",
        params![ca.id, audit_seq],
    )
    .map_err(Error::sqlite("purging"))?;
    integrity::seal_one(tx, &keys.rows, &integrity::CAS, &ca.id)?;
    Ok(())
}

fn beyond_ca(ca: &str, asked: OffsetDateTime, ca_end: OffsetDateTime) -> Error {
    Error::ValidityBeyondCa {
        ca: ca.to_owned(),
        asked: crate::text::timestamp(asked),
        ca_end: crate::text::timestamp(ca_end),
    }
}

/// subjectKeyIdentifier: the first 160 bits of the SHA-256 of the SubjectPublicKeyInfo
/// (as rcgen derives the CA's, RFC 7093 method 1 style).
fn subject_key_identifier(spki: &[u8]) -> rcgen::CustomExtension {
    let digest = ring::digest::digest(&ring::digest::SHA256, spki);
    let mut value = vec![0x04, 20];
    value.extend_from_slice(&digest.as_ref()[..20]);
    rcgen::CustomExtension::from_oid_content(&[2, 5, 29, 14], value)
}

/// A positive integer as big-endian bytes without leading zeros (one byte for 0).
fn minimal_be(n: u64) -> Vec<u8> {
    let b = n.to_be_bytes();
    let first = b.iter().position(|&x| x != 0).unwrap_or(b.len() - 1);
    let mut out = b[first..].to_vec();
    if out[0] & 0x80 != 0 {
        out.insert(0, 0);
    }
    out
}

fn key_usages(rsa: bool) -> Vec<KeyUsagePurpose> {
    if rsa {
        vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ]
    } else {
        vec![KeyUsagePurpose::DigitalSignature]
    }
}

fn dn_value(v: &rcgen::DnValue) -> Option<String> {
    match v {
        rcgen::DnValue::Utf8String(s) => Some(s.clone()),
        rcgen::DnValue::PrintableString(s) => Some(s.as_str().to_owned()),
        rcgen::DnValue::Ia5String(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

/// The names of a leaf: checked, within the CA's constraints, at least one, at most
/// [`MAX_NAMES`], no duplicates.
fn leaf_names(ca: &CaRow, dns: &[String], ips: &[IpAddr]) -> Result<Vec<SanType>> {
    if dns.is_empty() && ips.is_empty() {
        return Err(ca_error(
            &ca.name,
            "a certificate needs at least one --dns or --ip",
        ));
    }
    if dns.len() + ips.len() > MAX_NAMES {
        return Err(ca_error(
            &ca.name,
            format!("at most {MAX_NAMES} names in one certificate"),
        ));
    }
    let mut out: Vec<SanType> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for d in dns {
        let n = check_dns(d).map_err(|e| ca_error(&ca.name, e))?;
        if let Some(base) = n.strip_prefix("*.")
            && let Some(suffix) = wildcard_over_public_suffix(base)
        {
            return Err(ca_error(
                &ca.name,
                format!(
                    "'{n}' is a wildcard over a public suffix ({suffix}): browsers refuse it; name hosts under a registered domain (*.example.com)"
                ),
            ));
        }
        if !permitted(&n, &ca.permitted_dns) {
            return Err(Error::NameNotPermitted {
                name: n,
                ca: ca.name.clone(),
                permitted: ca.permitted_dns.join(", "),
            });
        }
        if seen.insert(n.clone()) {
            let ia5 = n
                .clone()
                .try_into()
                .map_err(|_| ca_error(&ca.name, format!("'{n}' is not ASCII")))?;
            out.push(SanType::DnsName(ia5));
        }
    }
    if !ca.permitted_dns.is_empty() && !ips.is_empty() {
        return Err(ca_error(
            &ca.name,
            "it may issue for DNS names only (--permit-dns): an --ip is outside its constraints",
        ));
    }
    for ip in ips {
        if seen.insert(ip.to_string()) {
            out.push(SanType::IpAddress(*ip));
        }
    }
    Ok(out)
}

fn names_first(names: &[SanType]) -> String {
    match names.first() {
        Some(SanType::DnsName(d)) => d.as_str().to_owned(),
        Some(SanType::IpAddress(ip)) => ip.to_string(),
        _ => "certificate".into(),
    }
}

/// How a leaf gets its key.
enum LeafKey<'a> {
    /// Generated here; sealed with the certificate.
    Generated {
        key_type: KeyType,
        key: &'a LeafPublic,
        pkcs8: SecretBytes,
    },
    /// A CSR's public key; the private key stays with its owner.
    Csr(Box<rcgen::CertificateSigningRequestParams>),
}

/// A leaf's public key, for its certificate.
struct LeafPublic {
    /// What rcgen writes in the SubjectPublicKeyInfo's BIT STRING (an EC point, or an RSA
    /// public key).
    der: Vec<u8>,
    alg: &'static SignatureAlgorithm,
}

impl LeafPublic {
    fn of(kp: &KeyPair) -> LeafPublic {
        LeafPublic {
            der: rcgen::PublicKeyData::der_bytes(kp).to_vec(),
            alg: rcgen::PublicKeyData::algorithm(kp),
        }
    }
}

impl rcgen::PublicKeyData for LeafPublic {
    fn der_bytes(&self) -> &[u8] {
        &self.der
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.alg
    }
}

/// The `issued` row's settings.
struct IssuedRow {
    key_type: Option<KeyType>,
    auto_renew_before: Option<Duration>,
}

trait PublicKeyKind {
    fn public_key_is_rsa(&self) -> bool;
}

impl PublicKeyKind for rcgen::CertificateSigningRequestParams {
    fn public_key_is_rsa(&self) -> bool {
        let alg = self.public_key.algorithm();
        [
            &rcgen::PKCS_RSA_SHA256,
            &rcgen::PKCS_RSA_SHA384,
            &rcgen::PKCS_RSA_SHA512,
        ]
        .contains(&alg)
    }
}

/// A bundle of a certificate the vault made, with its chain and key.
fn bundle_of(
    der: Vec<u8>,
    chain: Vec<Vec<u8>>,
    pkcs8: SecretBytes,
    origin: &str,
) -> Result<Bundle> {
    let bad = |e: String| Error::Export {
        name: origin.to_owned(),
        reason: e,
    };
    let info = CertInfo::from_der(&der).map_err(bad)?;
    let public = public_key_of_pkcs8(pkcs8.expose_secret()).map_err(|p| bad(p.to_string()))?;
    let chain = chain
        .into_iter()
        .map(|d| {
            CertInfo::from_der(&d)
                .map(|info| Cert { der: d, info })
                .map_err(bad)
        })
        .collect::<Result<_>>()?;
    Ok(Bundle {
        leaf: Cert { der, info },
        chain,
        key: Some(PrivateKey { pkcs8, public }),
        origin: origin.to_owned(),
        notes: Vec::new(),
    })
}

#[cfg(test)]
mod tests;
