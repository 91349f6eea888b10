//! Certificate and key formats, with no vault in sight: reading PEM, DER and PKCS#12 (with
//! their password-based encryption checked before any work is done) into a [`Bundle`],
//! writing PEM, DER, encrypted PKCS#8 and PKCS#12, the facts indexed of a certificate,
//! building a chain, checking that a key belongs to its certificate, the revocation
//! reasons of a CRL, and a certificate's serial number (in the vault's form and AWS's).
//!
//! Everything here is pure: it parses, checks and encodes bytes, and promises that nothing
//! it returns has been trusted without its check (a bundle's key matches its certificate,
//! an input's KDF cost is bounded before it is paid).

pub(crate) mod bundle;
pub(crate) mod cert;
pub(crate) mod chain;
pub(crate) mod export;
pub(crate) mod keycheck;
pub(crate) mod pbe;
pub(crate) mod revocation;
pub(crate) mod serial;

pub use self::{
    bundle::{Bundle, InputPasswords, MAX_INPUT_BYTES},
    cert::MAX_CERTIFICATES,
    chain::{ServedIdentity, chain_fingerprint, served_identity},
    export::{ExportFormat, Exported, MIN_EXPORT_PASSPHRASE, check_export_passphrase},
    pbe::{MAX_PBKDF2_ITERATIONS, MAX_PKCS12_ITERATIONS, MAX_SCRYPT_BYTES, MAX_SCRYPT_LOG_N},
    revocation::RevocationReason,
    serial::{Serial, SerialError},
};
