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

mod acm;
mod audit;
mod ca;
mod chain;
mod crypto;
mod deploy;
mod entries;
mod error;
mod export;
mod import;
mod integrity;
mod keycheck;
mod ledger;
mod lock;
mod model;
mod pbe;
mod pca;
mod schema;
mod secret;
mod store;
pub mod text;

pub use crate::{
    acm::{
        AcmDetail, AcmObservation, AcmRecord, AcmSummary, DnsRecord, Location, NameValidation,
        ScanOutcome, source_of_kind,
    },
    audit::{AuditEvent, AuditProblem, AuditReport},
    ca::check_dns as check_dns_name,
    ca::{
        CaState, CaSummary, Crl, CsrRequest, DEFAULT_CA_VALIDITY, DEFAULT_LEAF_VALIDITY,
        DEFAULT_PENDING_WINDOW_DAYS, IssuedCert, KeyType, NewCa, NewLeaf, PENDING_WINDOW_DAYS,
        Revocation, RevocationReason, parse_subject,
    },
    chain::{ServedIdentity, chain_fingerprint, served_identity},
    crypto::idempotency_token,
    deploy::{Deployment, DeploymentUpdate, ImportMaterial, Imported, pem_certificate_identity},
    entries::{ExportOptions, ImportOptions, ImportOutcome, ListFilter, parse_tag, validate_name},
    error::{Error, InputProblem, KdfCost, Result},
    export::{ExportFormat, Exported, MIN_EXPORT_PASSPHRASE, check_export_passphrase},
    import::{Bundle, InputPasswords, MAX_CERTIFICATES, MAX_INPUT_BYTES},
    integrity::BadRow,
    lock::LockHolder,
    model::{ChainCert, EntryDetail, EntrySummary, Source, VersionDetail},
    pbe::{MAX_PBKDF2_ITERATIONS, MAX_PKCS12_ITERATIONS, MAX_SCRYPT_BYTES, MAX_SCRYPT_LOG_N},
    pca::{AwsPrivate, AwsRevocation, PcaPending, PcaRequest, PcaStored, serial_for_aws},
    schema::SCHEMA_VERSION,
    secret::{Passphrase, SecretBytes},
    store::{Vault, VerifyReport},
};
