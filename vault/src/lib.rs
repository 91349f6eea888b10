//! certvault's encrypted local store: certificates (public, queryable without a passphrase),
//! their private keys (sealed with AES-256-GCM under a data key that an Argon2id-derived key
//! wraps), and a hash-chained audit log. No network.
//!
//! ```no_run
//! use vault::{Bundle, ImportOptions, InputPasswords, ListFilter, Passphrase, Vault};
//! # fn main() -> Result<(), vault::Error> {
//! let pass = Passphrase::new("correct horse battery staple".into());
//! let mut v = Vault::create("vault.db".as_ref(), &pass)?;
//! let bundle = Bundle::read_files("www.pem".as_ref(), None, None, InputPasswords::default())?;
//! v.import(vec![bundle], &ImportOptions::default())?;
//! for entry in v.list(&ListFilter::default())? {
//!     println!("{} expires {}", entry.name, entry.not_after);
//! }
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod ca;
mod crypto;
mod entries;
mod error;
mod formats;
mod integrity;
mod records;
mod sql;
mod store;
pub mod text;

pub use crate::{
    ca::check_dns as check_dns_name,
    ca::pca::{AwsPrivate, AwsRevocation, PcaPending, PcaRequest, PcaStored, serial_for_aws},
    ca::{
        Ca, CaState, CaSummary, Crl, CsrRequest, DEFAULT_CA_VALIDITY, DEFAULT_LEAF_VALIDITY,
        DEFAULT_PENDING_WINDOW_DAYS, IssuedCert, KeyType, NewCa, NewLeaf, PENDING_WINDOW_DAYS,
        Revocation, parse_subject,
    },
    crypto::idempotency_token,
    crypto::secret::{Passphrase, SecretBytes},
    entries::discovered::{AcmObservation, ScanOutcome, source_of_kind},
    entries::model::{ChainCert, EntryDetail, EntrySummary, Source, VersionDetail},
    entries::{ExportOptions, ImportOptions, ImportOutcome, ListFilter, parse_tag, validate_name},
    error::{Error, InputProblem, KdfCost, Result},
    formats::bundle::{Bundle, InputPasswords, MAX_INPUT_BYTES},
    formats::cert::MAX_CERTIFICATES,
    formats::chain::{ServedIdentity, chain_fingerprint, served_identity},
    formats::export::{ExportFormat, Exported, MIN_EXPORT_PASSPHRASE, check_export_passphrase},
    formats::pbe::{
        MAX_PBKDF2_ITERATIONS, MAX_PKCS12_ITERATIONS, MAX_SCRYPT_BYTES, MAX_SCRYPT_LOG_N,
    },
    formats::revocation::RevocationReason,
    integrity::BadRow,
    integrity::audit::{AuditEvent, AuditProblem, AuditReport},
    records::acm::{AcmDetail, AcmRecord, AcmSummary, DnsRecord, Location, NameValidation},
    records::deploy::{
        Deployment, DeploymentUpdate, ImportMaterial, Imported, pem_certificate_identity,
    },
    store::lock::LockHolder,
    store::schema::SCHEMA_VERSION,
    store::{Vault, VerifyReport},
};
