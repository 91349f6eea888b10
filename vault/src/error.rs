//! The vault's one error type.

use std::path::PathBuf;

/// What went wrong inside the vault library.
///
/// Every variant names the thing it is about (a file, an entry, a row) so the CLI can print
/// it as is. No variant ever carries secret material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// There is no vault file at the path.
    #[error("no vault at {}", path.display())]
    NoVault {
        /// Where the vault was looked for.
        path: PathBuf,
    },
    /// `init` was asked to create a vault where a file already exists.
    #[error("a file already exists at {}: refusing to overwrite it", path.display())]
    VaultExists {
        /// The existing file.
        path: PathBuf,
    },
    /// The file exists but is not a certvault vault, or is damaged.
    #[error("{} is not a usable certvault vault: {reason}", path.display())]
    NotAVault {
        /// The file.
        path: PathBuf,
        /// Why it was rejected.
        reason: String,
    },
    /// The vault file has more than one name (hard links): refused, as a vault must have
    /// one.
    #[error("{} is not a usable certvault vault: it has {links} hard links; a vault must have one name", path.display())]
    HardLinked {
        /// The file.
        path: PathBuf,
        /// How many names it has.
        links: u64,
    },
    /// The vault was written by a newer certvault.
    #[error(
        "{} has schema version {found}, newer than this certvault understands ({supported}): upgrade certvault",
        path.display()
    )]
    TooNew {
        /// The vault file.
        path: PathBuf,
        /// Schema version found in the file.
        found: u32,
        /// Newest schema version this build knows.
        supported: u32,
    },
    /// A file-system operation failed.
    #[error("{action} {}", path.display())]
    Io {
        /// What was being done ("cannot read", "cannot create").
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The writer lock's path is not a file certvault made (a symlink, another file's
    /// hard link, not a regular file, someone else's): it is not opened for writing.
    #[error("the writer lock {} is not used: {reason}", path.display())]
    UnsafeLockFile {
        /// The lock file.
        path: PathBuf,
        /// What it is instead.
        reason: String,
    },
    /// SQLite failed.
    #[error("vault database error while {context}")]
    Sqlite {
        /// What the vault was doing.
        context: &'static str,
        /// The underlying error.
        #[source]
        source: rusqlite::Error,
    },
    /// A row holds a value certvault never writes (a malformed entry id or serial): it was
    /// changed outside certvault.
    #[error(
        "a row read while {context} holds what certvault never writes ({what}): it was changed outside certvault, so nothing is done from it"
    )]
    MalformedRow {
        /// What the vault was doing.
        context: &'static str,
        /// The value and what is wrong with it.
        what: String,
    },
    /// The passphrase does not open the vault.
    #[error("wrong passphrase: it does not unlock this vault (nothing was changed)")]
    WrongPassphrase,
    /// A passphrase was refused before use.
    #[error("unusable passphrase: {reason}")]
    BadPassphrase {
        /// Why it was refused.
        reason: &'static str,
    },
    /// An operation that needs the data key was called on a locked vault.
    #[error("the vault is locked: this operation needs the passphrase")]
    Locked,
    /// A sealed secret failed authentication.
    #[error(
        "the sealed {column} in {table} row {row} does not open: it was altered, copied from another row, or its certificate was swapped"
    )]
    Tampered {
        /// Table of the row.
        table: &'static str,
        /// Row id.
        row: i64,
        /// Column holding the sealed value.
        column: &'static str,
    },
    /// A row failed its integrity check: it was changed outside certvault.
    #[error(
        "{table} row {row} fails its integrity check: it was changed outside certvault, so it is not acted on (nothing was sent to AWS)"
    )]
    RowTampered {
        /// The table.
        table: &'static str,
        /// The row.
        row: String,
    },
    /// The audit log does not verify (an event edited, removed, or the newest ones cut).
    #[error(
        "the audit log does not verify ({what}): nothing is acted on over it, and nothing more is written to it; restore the vault from a backup"
    )]
    AuditTampered {
        /// What is wrong, and at which event.
        what: String,
    },
    /// The vault is behind an audit anchor kept outside it: rolled back to an older copy.
    #[error(
        "the vault's audit log is behind the anchor {anchor} kept outside it ({what}): nothing is done from it"
    )]
    RolledBack {
        /// The anchor (`N:DIGEST`).
        anchor: String,
        /// What differs.
        what: String,
    },
    /// `verify` was asked to check a vault whose schema is older than this build's: it
    /// writes nothing, so it does not upgrade it.
    #[error(
        "{} is at schema {found}, older than this certvault's {supported}: checking it writes nothing, so it does not upgrade it",
        path.display()
    )]
    SchemaNotUpgraded {
        /// The file.
        path: PathBuf,
        /// Its schema.
        found: u32,
        /// This build's.
        supported: u32,
    },
    /// An input file could not be used.
    #[error("{source_name}: {problem}")]
    Input {
        /// The file (or `--key`, `stdin`, ...) the problem is in.
        source_name: String,
        /// What is wrong with it.
        problem: InputProblem,
    },
    /// The private key does not belong to the certificate.
    #[error(
        "the private key from {key_source} does not match the certificate {subject} from {cert_source}"
    )]
    KeyMismatch {
        /// Where the key came from.
        key_source: String,
        /// Where the certificate came from.
        cert_source: String,
        /// The certificate's subject.
        subject: String,
    },
    /// No entry has that id or name.
    #[error("no entry with id or name '{query}'{}", match hint {
        NotFoundHint::ShortPrefix => ": an id prefix needs at least 4 hex digits".to_owned(),
        NotFoundHint::NoneNamesIt => ": no certificate names it either".to_owned(),
        NotFoundHint::InCertificateOf { name, id } => format!(
            ": it is a name in the certificate of {name} ({id}): give that entry's name or id"
        ),
        NotFoundHint::InCertificatesOf(n) => {
            format!(": it is a name in the certificates of {n} entries")
        }
        NotFoundHint::Nothing | NotFoundHint::NotSearched => String::new(),
    })]
    NotFound {
        /// What the user asked for.
        query: String,
        /// What the vault found that may help (the CLI says what to run).
        hint: NotFoundHint,
    },
    /// The entry has no such version.
    #[error("{name} has no version {version}: it has {versions}")]
    NoSuchVersion {
        /// The entry's name.
        name: String,
        /// The version asked for.
        version: u32,
        /// The versions it has: `1` or `1 to 3`.
        versions: String,
    },
    /// No deployment has that number (it was removed meanwhile).
    #[error("deployment {id} is not in the vault (removed meanwhile?)")]
    NoSuchDeployment {
        /// The deployment's number.
        id: i64,
    },
    /// An id prefix matches several entries.
    #[error(
        "'{query}' matches several entries ({candidates}); give more of the id or the full name"
    )]
    Ambiguous {
        /// What the user asked for.
        query: String,
        /// The matching ids, comma separated.
        candidates: String,
    },
    /// A name or tag was refused.
    #[error("invalid {what} '{value}': {reason}")]
    InvalidLabel {
        /// "name", "tag".
        what: &'static str,
        /// The offending value.
        value: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// An export could not be produced.
    #[error("cannot export {name}: {reason}")]
    Export {
        /// The entry.
        name: String,
        /// Why.
        reason: String,
    },
    /// The data key was rotated by another process after this one unlocked.
    #[error(
        "the data key of {} was rotated after this process unlocked it, so nothing was written with the old one: run the command again (restart a running agent) to unlock with the new key",
        path.display()
    )]
    DataKeyRotated {
        /// The vault file.
        path: PathBuf,
    },
    /// Another process wrote to the vault between the checks of a change and its write: what
    /// was checked may no longer be what would be sealed, so nothing was written.
    #[error(
        "another process wrote to the vault {} while this command checked what it acts on, so nothing was written (what was checked might no longer be what is there): run the command again",
        path.display()
    )]
    ChangedMeanwhile {
        /// The vault file.
        path: PathBuf,
    },
    /// Another process is writing to the vault (deploy, sync, discover, the agent).
    #[error(
        "the vault {} is busy: {holder} is working on it (waited {:.1} s; --lock-timeout waits longer)",
        path.display(),
        waited.as_secs_f64()
    )]
    Busy {
        /// The vault file.
        path: PathBuf,
        /// Who holds the writer lock.
        holder: String,
        /// How long this process waited.
        waited: std::time::Duration,
    },
    /// The random number generator failed.
    #[error("the system random number generator failed")]
    Random,
    /// No CA has that name or id.
    #[error("no CA named '{query}'")]
    NoSuchCa {
        /// What the user asked for.
        query: String,
    },
    /// A CA cannot do what was asked.
    #[error("CA {ca}: {problem}")]
    Ca {
        /// The CA.
        ca: String,
        /// What is wrong.
        problem: String,
        /// What a person can do about it, if something.
        remedy: Option<Box<Remedy>>,
    },
    /// A CA that is not enabled was asked to sign.
    #[error("CA {ca} is {state}: it cannot {doing}{}", match deletion_on {
        Some(on) => format!(" (it is scheduled for deletion on {on})"),
        None if *state == "deleted" => " (its key is destroyed)".to_owned(),
        None => String::new(),
    })]
    CaState {
        /// The CA.
        ca: String,
        /// Its state.
        state: &'static str,
        /// What was refused ("issue", "make a CRL").
        doing: String,
        /// When its key is destroyed, for a CA pending deletion.
        deletion_on: Option<String>,
    },
    /// A subject given with `--subject` cannot be used.
    #[error("invalid subject '{subject}': {reason}")]
    BadSubject {
        /// What was given.
        subject: String,
        /// Why it was refused.
        reason: String,
    },
    /// A name is outside a CA's name constraints.
    #[error("{name} is outside the names CA {ca} may issue for ({permitted})")]
    NameNotPermitted {
        /// The name.
        name: String,
        /// The CA.
        ca: String,
        /// What it may issue for.
        permitted: String,
    },
    /// A certificate would outlive the CA that signs it.
    #[error(
        "a certificate valid until {asked} would outlive CA {ca}, which ends {ca_end}: ask for a shorter validity"
    )]
    ValidityBeyondCa {
        /// The CA.
        ca: String,
        /// The end asked for.
        asked: String,
        /// The CA's own end.
        ca_end: String,
    },
    /// A CSR cannot be signed.
    #[error("{source_name}: {reason}")]
    BadCsr {
        /// The file.
        source_name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The entry was not issued by the vault's CA (renew, revoke).
    #[error("{name} was not issued by a CA of this vault")]
    NotIssued {
        /// The entry.
        name: String,
    },
}

/// What is wrong with an input file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputProblem {
    /// The input is empty.
    #[error("the file is empty")]
    Empty,
    /// A directory where a file was expected.
    #[error("is a directory, not a certificate file; name the files in it")]
    IsDirectory,
    /// The input is larger than any certificate bundle could be.
    #[error("the file is {size} bytes, more than the {limit} bytes a certificate bundle may have")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Not PEM, DER or PKCS#12.
    #[error("not a certificate: neither PEM, DER nor PKCS#12")]
    Unrecognised,
    /// A PEM block could not be decoded.
    #[error("malformed PEM: {detail}")]
    BadPem {
        /// What the PEM decoder said, or which block is broken.
        detail: String,
    },
    /// Something other than a certificate where a certificate was expected.
    #[error("holds {found}, not a certificate{hint}")]
    NotACertificate {
        /// What it holds.
        found: &'static str,
        /// A hint on what to do, starting with "; " or empty.
        hint: &'static str,
    },
    /// A certificate that x509-parser refuses.
    #[error("certificate #{index} cannot be parsed: {detail}")]
    BadCertificate {
        /// 1-based position in the file.
        index: usize,
        /// Parser message.
        detail: String,
    },
    /// A private key that cannot be parsed.
    #[error("the private key cannot be parsed: {detail}")]
    BadKey {
        /// What is wrong.
        detail: String,
    },
    /// A PEM block the importer does not take.
    #[error("unexpected PEM block '{label}'")]
    UnexpectedBlock {
        /// The block's label.
        label: String,
    },
    /// More than one private key.
    #[error("holds more than one private key")]
    SeveralKeys,
    /// An encrypted key or PKCS#12 with no password given.
    #[error("{what} is encrypted: give its password with {flag}")]
    NeedsPassword {
        /// "the private key", "the PKCS#12 bundle".
        what: &'static str,
        /// The flag or variable to use.
        flag: &'static str,
    },
    /// The password did not decrypt it.
    #[error("wrong password for {what}, or the file is damaged")]
    WrongPassword {
        /// "the private key", "the PKCS#12 bundle".
        what: &'static str,
    },
    /// A PEM key in the legacy OpenSSL encrypted format.
    #[error(
        "the private key uses OpenSSL's legacy PEM encryption (Proc-Type: 4,ENCRYPTED); convert it with `openssl pkcs8 -topk8 -v2 aes-256-cbc`"
    )]
    LegacyEncryptedKey,
    /// A key algorithm the vault does not store.
    #[error("unsupported key algorithm {oid}")]
    UnsupportedKey {
        /// OID of the algorithm.
        oid: String,
    },
    /// More certificates than a certificate and its chain could have.
    #[error("holds {found} certificates; a certificate with its chain has at most {limit}")]
    TooManyCertificates {
        /// How many were found.
        found: usize,
        /// The limit.
        limit: usize,
    },
    /// A PKCS#12 with no certificate in it.
    #[error("the PKCS#12 bundle holds no certificate")]
    EmptyPkcs12,
    /// An encrypted key or PKCS#12 bundle asks for more key-derivation work or memory than
    /// is accepted; refused before any key is derived.
    #[error("{part} asks for {cost} ({} is accepted)", cost.accepted(*limit))]
    KdfTooCostly {
        /// The part of the file: "the private key's encryption", "the PKCS#12 bundle's MAC".
        part: &'static str,
        /// The parameter and the value the file asks for.
        cost: KdfCost,
        /// The most accepted for that parameter (iterations, N, or bytes).
        limit: u64,
    },
    /// A key derivation whose cost cannot be bounded because it is not known.
    #[error("{part} uses the key derivation {oid}, which is not supported")]
    UnknownKdf {
        /// The part of the file, as in [`InputProblem::KdfTooCostly`].
        part: &'static str,
        /// Its OID.
        oid: String,
    },
}

/// A key-derivation parameter an encrypted input sets, with the value it asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KdfCost {
    /// PBKDF2 iterations (`None`: more than 2^64).
    Pbkdf2Iterations(Option<u64>),
    /// Iterations of the PKCS#12 key derivation, for a MAC or a legacy PBE (`None`: more
    /// than 2^64).
    Pkcs12Iterations(Option<u64>),
    /// scrypt's cost parameter N.
    ScryptN(u64),
    /// scrypt's memory work, 128 · r · N · p bytes.
    ScryptWork {
        /// N.
        n: u64,
        /// r.
        r: u16,
        /// p.
        p: u16,
    },
    /// The PBKDF2 and PKCS#12 KDF derivations of a PKCS#12 bundle together.
    TotalIterations {
        /// How many derivations.
        derivations: u32,
        /// Their iterations in all.
        iterations: u64,
    },
    /// The scrypt derivations of a PKCS#12 bundle together.
    TotalScryptWork {
        /// How many derivations.
        derivations: u32,
        /// Their memory work in all, in bytes.
        bytes: u64,
    },
}

impl KdfCost {
    /// What is accepted, in words, given the limit.
    fn accepted(&self, limit: u64) -> String {
        match self {
            KdfCost::Pbkdf2Iterations(_)
            | KdfCost::Pkcs12Iterations(_)
            | KdfCost::TotalIterations { .. } => format!("at most {limit}"),
            KdfCost::ScryptN(n) if *n > limit => format!("at most {}", power_of_two(limit)),
            KdfCost::ScryptN(_) => format!("a power of two from 2 to {}", power_of_two(limit)),
            KdfCost::ScryptWork { .. } | KdfCost::TotalScryptWork { .. } => {
                format!("at most {} MiB", limit >> 20)
            }
        }
    }
}

impl std::fmt::Display for KdfCost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count =
            |n: &Option<u64>| n.map_or_else(|| "more than 2^64".to_owned(), |n| n.to_string());
        match self {
            KdfCost::Pbkdf2Iterations(n) => write!(f, "PBKDF2 with iterations = {}", count(n)),
            KdfCost::Pkcs12Iterations(n) => {
                write!(f, "PKCS#12 key derivation with iterations = {}", count(n))
            }
            KdfCost::ScryptN(n) => write!(f, "scrypt with N = {}", power_of_two(*n)),
            KdfCost::ScryptWork { n, r, p } => {
                let bytes = 128 * u128::from(*r) * u128::from(*n) * u128::from(*p);
                write!(
                    f,
                    "scrypt with 128·r·N·p = {} MiB (N = {}, r = {r}, p = {p})",
                    bytes.div_ceil(1 << 20),
                    power_of_two(*n)
                )
            }
            KdfCost::TotalIterations {
                derivations,
                iterations,
            } => write!(
                f,
                "{derivations} key derivations with {iterations} iterations in all"
            ),
            KdfCost::TotalScryptWork { derivations, bytes } => write!(
                f,
                "{derivations} scrypt derivations with {} MiB of memory work in all",
                bytes.div_ceil(1 << 20)
            ),
        }
    }
}

/// `2^k` for a power of two, the number otherwise.
fn power_of_two(n: u64) -> String {
    if n.is_power_of_two() {
        format!("2^{}", n.trailing_zeros())
    } else {
        n.to_string()
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether another process holds the database (SQLite busy or locked): worth trying
    /// again later, unlike a damaged file.
    pub fn is_busy(&self) -> bool {
        matches!(
            self,
            Error::Sqlite {
                source: rusqlite::Error::SqliteFailure(e, _),
                ..
            } if matches!(
                e.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            )
        )
    }

    pub(crate) fn sqlite(context: &'static str) -> impl FnOnce(rusqlite::Error) -> Error {
        move |source| match source {
            // A stored value its type refuses (an entry id, a serial): certvault never
            // writes one, so the row was changed outside it.
            rusqlite::Error::FromSqlConversionFailure(_, _, e) => Error::MalformedRow {
                context,
                what: e.to_string(),
            },
            source => Error::Sqlite { context, source },
        }
    }

    pub(crate) fn input(source_name: impl Into<String>, problem: InputProblem) -> Error {
        Error::Input {
            source_name: source_name.into(),
            problem,
        }
    }

    /// What a person can do about this error, as data: the CLI says it in its own words,
    /// with its own command names (the libraries name no command), as rage adds its hints
    /// on top of age's errors.
    pub fn remedy(&self) -> Option<Remedy> {
        Some(match self {
            Error::NoVault { .. } => Remedy::Init,
            Error::RowTampered { .. } | Error::MalformedRow { .. } => Remedy::Verify,
            Error::AuditTampered { .. } => Remedy::LogVerify,
            Error::SchemaNotUpgraded { .. } => Remedy::UpgradeFirst,
            Error::NoSuchCa { .. } => Remedy::CaList,
            Error::NotIssued { .. } => Remedy::IssuedHereOnly,
            Error::HardLinked { .. } => Remedy::Backup,
            Error::NotFound { query, hint } => Remedy::FindEntry {
                query: query.clone(),
                hint: hint.clone(),
            },
            // The state's words (`CaState::as_str`): the error module names no other.
            Error::CaState { ca, state, .. } => match *state {
                "disabled" => Remedy::CaEnable { ca: ca.clone() },
                "pending-deletion" => Remedy::CaCancelDeletion {
                    ca: Some(ca.clone()),
                },
                _ => return None,
            },
            Error::Ca { remedy, .. } => return remedy.as_deref().cloned(),
            _ => return None,
        })
    }
}

/// What the vault found when a query named no entry: what the CLI's hint builds on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotFoundHint {
    /// Nothing more to say (a lookup by exact name).
    Nothing,
    /// Fewer than 4 hex digits: too short for an id prefix.
    ShortPrefix,
    /// Not a plain DNS-like name: nothing was searched.
    NotSearched,
    /// A DNS-like name that no certificate holds.
    NoneNamesIt,
    /// A name the certificate of one entry holds.
    InCertificateOf {
        /// That entry's name.
        name: String,
        /// Its id.
        id: String,
    },
    /// A name held by the certificates of this many entries.
    InCertificatesOf(usize),
}

/// What a person can do about an error (see [`Error::remedy`]): which step helps, never
/// how a program spells it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Remedy {
    /// Create a vault there.
    Init,
    /// List every row that fails its check.
    Verify,
    /// Find where the audit log breaks.
    LogVerify,
    /// Any command that writes upgrades the vault first (a listing needs no passphrase).
    UpgradeFirst,
    /// List the CAs.
    CaList,
    /// Copy a vault rather than link it.
    Backup,
    /// Find the entry meant.
    FindEntry {
        /// What was asked for.
        query: String,
        /// What the vault found.
        hint: NotFoundHint,
    },
    /// Enable the CA.
    CaEnable {
        /// The CA.
        ca: String,
    },
    /// Cancel the CA's deletion (it returns to disabled).
    CaCancelDeletion {
        /// The CA, when it is named.
        ca: Option<String>,
    },
    /// The CA list shows the date of its deletion.
    CaDeletionDate,
    /// Schedule the CA's deletion (its key is destroyed after a waiting window).
    CaScheduleDeletion,
    /// Give clients the CA's trust bundle.
    CaExportBundle,
    /// Issue a new certificate from the vault's CA (with a new key).
    CaIssue,
    /// Sign a new CSR.
    CaSign,
    /// Renew the entry of that name, or choose another name.
    RenewOrRename {
        /// The entry.
        name: String,
    },
    /// Issue a new certificate from AWS Private CA.
    PcaIssue,
    /// Only what the vault's CAs issued or signed is renewed or revoked by it.
    IssuedHereOnly,
}
