//! The agent's errors: what AWS said, classified so retries and messages can act on it.

/// How an AWS error is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Request rate too high: retried with backoff.
    Throttled,
    /// Network trouble, a timeout or a 5xx: retried with backoff.
    Transient,
    /// No permission, bad or missing credentials: not retried.
    AccessDenied,
    /// The request was invalid: not retried.
    Validation,
    /// An account quota is used up (`LimitExceededException`): not retried.
    QuotaExceeded,
    /// The resource does not exist.
    NotFound,
    /// The resource is in use (deleting an attached certificate).
    InUse,
    /// Anything else: not retried.
    Other,
    /// Not sent: the pass was stopped (SIGTERM) before this call went out.
    Stopped,
    /// Not sent: no credentials could be found or loaded for the target (no profile, no
    /// environment variables, no instance role). Not retried.
    NoCredentials,
}

impl ErrorKind {
    /// Whether a call failing this way is worth repeating.
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorKind::Throttled | ErrorKind::Transient)
    }

    /// Classifies an AWS error code (and HTTP status, when there is one).
    pub fn from_code(code: &str, status: Option<u16>) -> ErrorKind {
        match code {
            "ThrottlingException"
            | "Throttling"
            | "TooManyRequestsException"
            | "RequestLimitExceeded"
            | "SlowDown"
            | "RequestThrottled"
            | "RequestThrottledException"
            | "ProvisionedThroughputExceededException" => ErrorKind::Throttled,
            "AccessDeniedException"
            | "AccessDenied"
            | "UnrecognizedClientException"
            | "InvalidClientTokenId"
            | "ExpiredToken"
            | "ExpiredTokenException"
            | "AuthFailure"
            | "SignatureDoesNotMatch"
            | "MissingAuthenticationToken"
            | "UnauthorizedOperation"
            | "InvalidSignatureException" => ErrorKind::AccessDenied,
            "ValidationException"
            | "InvalidParameterException"
            | "InvalidArnException"
            | "InvalidArgsException"
            | "InvalidDomainValidationOptionsException"
            | "InvalidTagException"
            | "InvalidStateException"
            | "InvalidRequestException"
            | "MalformedCertificate"
            | "MalformedPolicyDocument"
            | "InvalidInput" => ErrorKind::Validation,
            // ACM's quota error is not throttling: the SDK would retry it; we must not.
            "LimitExceededException" | "LimitExceeded" | "TooManyTagsException" => {
                ErrorKind::QuotaExceeded
            }
            "ResourceNotFoundException" | "NoSuchEntity" | "RequestInProgressException" => {
                ErrorKind::NotFound
            }
            "ResourceInUseException" | "DeleteConflict" => ErrorKind::InUse,
            "InternalFailure"
            | "InternalError"
            | "ServiceUnavailable"
            | "ServiceUnavailableException" => ErrorKind::Transient,
            _ => match status {
                Some(429) => ErrorKind::Throttled,
                Some(s) if s >= 500 => ErrorKind::Transient,
                _ => ErrorKind::Other,
            },
        }
    }
}

/// One failed AWS call (after retries).
#[derive(Debug, Clone, thiserror::Error, serde::Serialize)]
#[error("{operation} in {region}: {code}: {message}{}", self.particulars())]
pub struct ApiError {
    /// How it was classified.
    pub kind: ErrorKind,
    /// The operation (`ListCertificates`, ...).
    pub operation: &'static str,
    /// The region (`global` for IAM and STS).
    pub region: String,
    /// AWS's error code, or a short description of a transport failure.
    pub code: String,
    /// AWS's message.
    pub message: String,
    /// How many attempts were made.
    pub attempts: u32,
    /// AWS's request id, when the service answered (boxed: an error stays small enough to
    /// return by value).
    pub request_id: Option<Box<str>>,
    /// Why the agent itself refused or stopped, when it did (nothing was sent, or it gave
    /// up waiting): what `kind`, `code` and `message` were derived from. See
    /// [`ApiError::refusal`].
    #[serde(skip)]
    pub refusal: Option<Box<Refusal>>,
}

/// What the agent refuses on its own, before anything is sent (or instead of going on): the
/// typed reason inside an [`ApiError`], as rustls nests its error kinds. Its `Display` is
/// the error's message, [`Refusal::code`] its code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// A target's credentials resolve to another account than the one the work is for.
    #[error(
        "{what} account {expected}, but target '{target}' resolves to account {found}: nothing was sent ({operation})"
    )]
    AccountMismatch {
        /// The account the work is for.
        expected: String,
        /// The account the target's credentials resolve to.
        found: String,
        /// The target.
        target: String,
        /// What the expected account is of (`the plan is for`, `the audit was of`).
        what: String,
        /// The call that was not sent.
        operation: &'static str,
    },
    /// Resolving a target's credentials took longer than allowed.
    #[error("resolving the credentials of target '{target}' took more than {seconds}s")]
    Timeout {
        /// The target.
        target: String,
        /// The time allowed, in seconds.
        seconds: u64,
    },
    /// Not sent: the pass was stopped (SIGTERM) before the call went out.
    #[error("not sent: the pass was stopped")]
    Stopped,
    /// A listing went on for more pages than it may (the server's tokens are not trusted).
    #[error("more than {pages} pages")]
    TooManyPages {
        /// The most pages read.
        pages: usize,
    },
    /// A private key would go to ACM over plain HTTP to another machine.
    #[error(
        "the ACM endpoint {endpoint} is plain HTTP on a host that is not this machine: no private key is sent there (use https, or --allow-insecure-endpoint if you mean it)"
    )]
    InsecureKeyEndpoint {
        /// The endpoint.
        endpoint: String,
    },
    /// A certificate would be asked of AWS Private CA over plain HTTP to another machine.
    #[error(
        "the AWS Private CA endpoint {endpoint} is plain HTTP on a host that is not this machine: a certificate from it could be anyone's, so none is requested there (use https, or --allow-insecure-endpoint if you mean it)"
    )]
    InsecureCaEndpoint {
        /// The endpoint.
        endpoint: String,
    },
    /// STS answered GetCallerIdentity without an account.
    #[error("STS did not say which account the credentials belong to")]
    NoAccount,
    /// A target's credentials resolve to another account than the one something is of, in
    /// the words of the workflow that checked (`{what} account {expected}, but target ...`).
    #[error(
        "{what} account {expected}, but target '{target}' {}resolves to account {found}: {nothing}",
        if *.now { "now " } else { "" }
    )]
    AccountDiffers {
        /// What the expected account is of (`the CA belongs to`, `the ARN belongs to`).
        what: String,
        /// The account expected.
        expected: String,
        /// The target.
        target: String,
        /// The account the target's credentials resolve to.
        found: String,
        /// Whether they resolve there *now* (they were resolved before, or recorded).
        now: bool,
        /// What was not done (`nothing was deleted`).
        nothing: &'static str,
    },
    /// A private CA named for an ACM request is not of the target's account.
    #[error(
        "the CA {ca} is not one of account {account}, which target '{target}' resolves to: nothing was requested"
    )]
    CaOfAnotherAccount {
        /// The CA's ARN.
        ca: String,
        /// The target's account.
        account: String,
        /// The target.
        target: String,
    },
    /// A string that is not an ACM certificate ARN.
    #[error("{arn} is not an ACM certificate ARN")]
    InvalidArn {
        /// What was given.
        arn: String,
    },
    /// A string that is not an AWS Private CA ARN, where a CA is to issue.
    #[error(
        "{arn} is not an AWS Private CA ARN (arn:aws:acm-pca:REGION:ACCOUNT:certificate-authority/ID)"
    )]
    InvalidCaArn {
        /// What was given.
        arn: String,
    },
    /// A string that is not an AWS Private CA ARN, where a certificate is to be revoked.
    #[error("{arn} is not an AWS Private CA ARN: nothing was revoked")]
    InvalidCaArnToRevoke {
        /// What was given.
        arn: String,
    },
    /// The two certificates of a rotation are not both ACM certificate ARNs.
    #[error("{old} and {new} must both be ACM certificate ARNs")]
    InvalidArns {
        /// The certificate rotated from.
        old: String,
        /// The certificate rotated to.
        new: String,
    },
    /// The two certificates of a rotation are in different regions or accounts.
    #[error(
        "{old} is in {old_region} of account {old_account}, {new} in {new_region} of account {new_account}: a listener can only take a certificate of its own region and account"
    )]
    DifferentPlaces {
        /// The certificate rotated from.
        old: String,
        /// Its region.
        old_region: String,
        /// Its account.
        old_account: String,
        /// The certificate rotated to.
        new: String,
        /// Its region.
        new_region: String,
        /// Its account.
        new_account: String,
    },
    /// A rotation from a certificate to itself.
    #[error("OLD and NEW are the same certificate")]
    SameCertificate,
    /// The certificate rotated to is not issued.
    #[error("{arn} is {status}, not issued: nothing is moved to it")]
    NotIssued {
        /// The certificate.
        arn: String,
        /// ACM's status.
        status: vault::records::CertificateStatus,
    },
    /// The certificate rotated to does not cover names the old one serves.
    #[error(
        "{new} does not cover {} that {old} serves: clients asking for them would be refused; nothing is moved",
        .uncovered.join(", ")
    )]
    NamesDiffer {
        /// The certificate rotated to.
        new: String,
        /// The certificate rotated from.
        old: String,
        /// The names it does not cover.
        uncovered: Vec<String>,
    },
    /// A listener's default certificate changed since the plan.
    #[error(
        "the default certificate of {listener} is {} now, not {planned} as planned: it was changed since the plan, and is left as it is",
        .now.as_deref().unwrap_or("none")
    )]
    ListenerChanged {
        /// The listener.
        listener: String,
        /// Its default certificate now.
        now: Option<String>,
        /// The one the plan saw.
        planned: String,
    },
    /// ACM answered a request with an ARN of another account.
    #[error("ACM answered with {arn}, not an ARN of account {account}")]
    UnexpectedArn {
        /// What ACM answered.
        arn: String,
        /// The account asked in.
        account: String,
    },
    /// A call was still unanswered when the time given ran out.
    #[error("no answer before the time given ran out")]
    NoAnswerInTime,
    /// A call was not asked: the time given had run out.
    #[error("not asked: the time given ran out before the time given ran out")]
    NotAskedInTime,
    /// A certificate ACM returned could not be read.
    #[error("{arn}: {reason}")]
    UnreadableCertificate {
        /// The certificate.
        arn: String,
        /// Why.
        reason: String,
    },
    /// The vault row of a discovery was tampered with (the vault's words).
    #[error("{reason}")]
    RowTampered {
        /// The vault's error.
        reason: String,
    },
    /// A target named by the vault is not in the configuration.
    #[error("target '{target}' is not in the configuration; nothing was sent to AWS")]
    UnknownTarget {
        /// The target.
        target: String,
    },
    /// An ACM listing did not end.
    #[error("the listing did not end after {pages} pages")]
    ListingDidNotEnd {
        /// The most pages read.
        pages: usize,
    },
    /// More pages of hosted zones than may be read.
    #[error("more than {pages} pages of hosted zones named {name}")]
    TooManyZones {
        /// The name looked up.
        name: String,
        /// The most pages read.
        pages: usize,
    },
    /// More validation records than are written at once.
    #[error("{count} validation records: at most {max}; nothing was written to Route 53")]
    TooManyRecords {
        /// How many were asked for.
        count: usize,
        /// The most.
        max: usize,
    },
    /// The vault could not record an import before it was sent.
    #[error("not sent: the vault could not record the import first ({why})")]
    NotRecorded {
        /// Why.
        why: String,
    },
    /// A private CA that is not ACTIVE (nor PENDING_CERTIFICATE) was asked to issue.
    #[error("the CA {ca} is {status}: it issues only when ACTIVE; nothing was issued")]
    CaNotActive {
        /// The CA.
        ca: String,
        /// Its status.
        status: String,
    },
    /// A private CA whose key algorithm certvault cannot sign with.
    #[error(
        "the CA {ca} has key algorithm {}, which certvault does not know how to sign with",
        .algorithm.as_deref().unwrap_or("(none)")
    )]
    UnknownKeyAlgorithm {
        /// The CA.
        ca: String,
        /// Its key algorithm, if it has one.
        algorithm: Option<String>,
    },
    /// A certificate ACM will not renew on request.
    #[error(
        "{arn} is {kind} and {}: ACM renews only eligible private certificates on request; nothing was asked",
        .eligibility.as_deref().unwrap_or("of unknown eligibility")
    )]
    NotEligible {
        /// The certificate.
        arn: String,
        /// Its type (`IMPORTED`, `AMAZON_ISSUED`, `PRIVATE`).
        kind: vault::records::CertificateType,
        /// Its renewal eligibility, if ACM said.
        eligibility: Option<String>,
    },
    /// A certificate tagged with an entry id that this command may not delete under: a copy
    /// of an entry deployed in the region (its agent would adopt it), or an entry this vault
    /// never held (another vault's deployment).
    #[error(
        "{arn} is tagged {}={tag}{}",
        crate::tags::ENTRY_TAG,
        match deployed {
            Some((name, region)) => format!(": a copy of {name}, which is deployed in {region}; its agent would adopt or import it again, so nothing was deleted"),
            None => ", an entry this vault never held: it is another certvault vault's deployment, and that vault's agent would import it again under a new ARN, so nothing was deleted".to_owned(),
        }
    )]
    AnotherVaultsCertificate {
        /// The certificate.
        arn: String,
        /// Its `certvault:entry-id` tag.
        tag: String,
        /// The entry of this vault deployed in the region under that id, and the region;
        /// `None` for an id this vault never held.
        deployed: Option<(String, String)>,
    },
    /// A certificate AWS Private CA was still issuing when the wait ended: the agent's own
    /// stop after its calls (not a refusal before one), with AWS's code
    /// (`RequestInProgressException`). Nothing was stored, and the key made for it is gone.
    #[error(
        "{certificate} was still being issued after {waited_s} s ({polls} GetCertificate calls); nothing was stored, and the key made for it is gone, so that certificate can never be used: revoke it (`aws acm-pca revoke-certificate --certificate-authority-arn {ca} --certificate-serial SERIAL --revocation-reason SUPERSEDED`)"
    )]
    StillIssuing {
        /// The certificate's ARN.
        certificate: String,
        /// The CA's ARN.
        ca: String,
        /// How long it was waited for, in seconds.
        waited_s: u64,
        /// How many GetCertificate calls were made.
        polls: u32,
    },
    /// A certificate that is neither tagged with the entry nor holds one of its
    /// certificates.
    #[error(
        "{arn} holds certificate {} and is tagged {}: it is not this entry's, so nothing was deleted",
        .held.as_deref().map_or("(unreadable)", |f| &f[..16]),
        .tag.as_ref().map_or_else(
            || format!("without {}", crate::tags::ENTRY_TAG),
            |t| format!("{}={t}", crate::tags::ENTRY_TAG)
        )
    )]
    NotThisEntry {
        /// The certificate.
        arn: String,
        /// The fingerprint of the certificate it holds, if readable.
        held: Option<String>,
        /// Its entry tag, if any.
        tag: Option<String>,
    },
    /// A certificate still in use: each user, with what to do about it.
    #[error(
        "{arn} is in use; nothing was deleted. Detach it from each of these first:\n{}",
        .users.iter().map(|(u, todo)| format!("  - {u}\n    {todo}")).collect::<Vec<_>>().join("\n")
    )]
    InUse {
        /// The certificate.
        arn: String,
        /// Each user (from `InUseBy`) and what to do about it.
        users: Vec<(String, String)>,
    },
}

impl Refusal {
    /// The error code it is reported with (`AccountMismatch`, ...), as before it was typed.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::AccountMismatch { .. } => "AccountMismatch",
            Refusal::Timeout { .. } => "Timeout",
            Refusal::Stopped => "Stopped",
            Refusal::TooManyPages { .. } => "TooManyPages",
            Refusal::InsecureKeyEndpoint { .. } | Refusal::InsecureCaEndpoint { .. } => {
                "InsecureEndpoint"
            }
            Refusal::NoAccount => "NoAccount",
            Refusal::AccountDiffers { .. } | Refusal::CaOfAnotherAccount { .. } => {
                "AccountMismatch"
            }
            Refusal::InvalidArn { .. }
            | Refusal::InvalidCaArn { .. }
            | Refusal::InvalidCaArnToRevoke { .. }
            | Refusal::InvalidArns { .. } => "InvalidArn",
            Refusal::DifferentPlaces { .. } => "DifferentPlaces",
            Refusal::SameCertificate => "SameCertificate",
            Refusal::NotIssued { .. } => "NotIssued",
            Refusal::NamesDiffer { .. } => "NamesDiffer",
            Refusal::ListenerChanged { .. } => "ListenerChanged",
            Refusal::UnexpectedArn { .. } => "UnexpectedArn",
            Refusal::NoAnswerInTime | Refusal::NotAskedInTime => "Timeout",
            Refusal::UnreadableCertificate { .. } => "UnreadableCertificate",
            Refusal::RowTampered { .. } => "RowTampered",
            Refusal::UnknownTarget { .. } => "UnknownTarget",
            Refusal::ListingDidNotEnd { .. } => "TooManyPages",
            Refusal::TooManyZones { .. } => "TooManyZones",
            Refusal::TooManyRecords { .. } => "TooManyRecords",
            Refusal::NotRecorded { .. } => "NotRecorded",
            Refusal::CaNotActive { .. } => "InvalidStateException",
            Refusal::UnknownKeyAlgorithm { .. } => "UnknownKeyAlgorithm",
            Refusal::NotEligible { .. } => "NotEligible",
            Refusal::AnotherVaultsCertificate { .. } => "AnotherVaultsCertificate",
            Refusal::StillIssuing { .. } => "RequestInProgressException",
            Refusal::NotThisEntry { .. } => "NotThisEntry",
            Refusal::InUse { .. } => "ResourceInUseException",
        }
    }

    /// How it is handled: a timeout may be worth another try; the rest are not retried.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Refusal::AccountMismatch { .. }
            | Refusal::InsecureKeyEndpoint { .. }
            | Refusal::InsecureCaEndpoint { .. }
            | Refusal::AccountDiffers { .. }
            | Refusal::CaOfAnotherAccount { .. }
            | Refusal::InvalidArn { .. }
            | Refusal::InvalidCaArn { .. }
            | Refusal::InvalidCaArnToRevoke { .. }
            | Refusal::InvalidArns { .. }
            | Refusal::DifferentPlaces { .. }
            | Refusal::SameCertificate
            | Refusal::NotIssued { .. }
            | Refusal::NamesDiffer { .. }
            | Refusal::ListenerChanged { .. }
            | Refusal::UnreadableCertificate { .. }
            | Refusal::UnknownTarget { .. }
            | Refusal::TooManyRecords { .. }
            | Refusal::CaNotActive { .. }
            | Refusal::UnknownKeyAlgorithm { .. }
            | Refusal::NotEligible { .. }
            | Refusal::AnotherVaultsCertificate { .. }
            | Refusal::NotThisEntry { .. } => ErrorKind::Validation,
            // What AWS's RequestInProgressException is classified as.
            Refusal::StillIssuing { .. } => ErrorKind::NotFound,
            Refusal::Timeout { .. } | Refusal::NoAnswerInTime | Refusal::NotAskedInTime => {
                ErrorKind::Transient
            }
            Refusal::Stopped => ErrorKind::Stopped,
            Refusal::InUse { .. } => ErrorKind::InUse,
            Refusal::TooManyPages { .. }
            | Refusal::NoAccount
            | Refusal::UnexpectedArn { .. }
            | Refusal::RowTampered { .. }
            | Refusal::ListingDidNotEnd { .. }
            | Refusal::TooManyZones { .. }
            | Refusal::NotRecorded { .. } => ErrorKind::Other,
        }
    }
}

impl ApiError {
    /// What failed, without what changes from one try to the next (AWS's request id, how
    /// many attempts were made): what a deployment records as its reason, so a region that
    /// keeps failing the same way is one change, not one per pass. The full text (with the
    /// request id) goes into the audit event that records the change.
    pub fn reason(&self) -> String {
        format!(
            "{} in {}: {}: {}",
            self.operation, self.region, self.code, self.message
        )
    }

    /// What this one try adds to [`ApiError::reason`]: how many attempts were made and
    /// AWS's request id (` (after 3 attempts) (request 1a2b…)`), or nothing.
    pub fn particulars(&self) -> String {
        let mut out = String::new();
        if self.attempts > 1 {
            out.push_str(&format!(" (after {} attempts)", self.attempts));
        }
        if let Some(r) = &self.request_id {
            out.push_str(&format!(" (request {r})"));
        }
        out
    }

    /// The agent refused `operation` in `region` (nothing was sent): kind, code and message
    /// come from `refusal`.
    pub fn refused(operation: &'static str, region: &str, refusal: Refusal) -> ApiError {
        ApiError {
            kind: refusal.kind(),
            operation,
            region: region.to_owned(),
            code: refusal.code().to_owned(),
            message: refusal.to_string(),
            attempts: 0,
            request_id: None,
            refusal: Some(Box::new(refusal)),
        }
    }

    /// Why the agent refused (or stopped waiting), when it was the agent and not AWS.
    pub fn refusal(&self) -> Option<&Refusal> {
        self.refusal.as_deref()
    }

    /// What a person can do about it, when the agent refused (see [`Remedy`]).
    pub fn remedy(&self) -> Option<Remedy> {
        self.refusal().and_then(Refusal::remedy)
    }

    /// A failure found before anything was sent (configuration, a stopped pass), not yet
    /// typed as a [`Refusal`].
    pub(crate) fn local(
        kind: ErrorKind,
        operation: &'static str,
        region: &str,
        code: &str,
        message: String,
    ) -> ApiError {
        ApiError {
            kind,
            operation,
            region: region.to_owned(),
            code: code.to_owned(),
            message,
            attempts: 0,
            request_id: None,
            refusal: None,
        }
    }

    /// Whether the call may have been carried out although no answer said so: a timeout,
    /// a 5xx, a dropped connection. A non-idempotent call that fails this way is never
    /// repeated blindly; the caller looks first.
    pub fn outcome_unknown(&self) -> bool {
        self.kind == ErrorKind::Transient
            || (self.kind == ErrorKind::Other && self.code == "DispatchFailure")
    }
}

/// What a person can do about an error of the agent, as data: the CLI says it in its own
/// words and with its own command names (the library names no command), as rage adds its
/// hints on top of age's errors.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Remedy {
    /// What the vault says can be done.
    Vault(vault::error::Remedy),
    /// Undeploy the deployment (that deletes its certificate from ACM).
    Undeploy,
    /// Undeploy it from the vault whose deployment it is.
    UndeployInThatVault,
    /// Issue the certificate again.
    PcaIssueAgain,
}

impl Refusal {
    /// What a person can do about the refusal, if something.
    pub fn remedy(&self) -> Option<Remedy> {
        match self {
            Refusal::AnotherVaultsCertificate { deployed, .. } => Some(if deployed.is_some() {
                Remedy::Undeploy
            } else {
                Remedy::UndeployInThatVault
            }),
            Refusal::StillIssuing { .. } => Some(Remedy::PcaIssueAgain),
            _ => None,
        }
    }
}

/// What can go wrong in the agent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An AWS call failed.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The vault refused something.
    #[error(transparent)]
    Vault(#[from] vault::Error),
    /// The configuration file is unusable.
    #[error("configuration {path}: {reason}")]
    Config {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A region code that is not one of the regions ACM is offered in.
    #[error(
        "unknown region '{region}'{}; if it is a real region that this certvault does not know yet, add it with `extra_regions = [\"...\"]` in the configuration",
        suggestion.as_deref().map(|s| format!(" (did you mean {s}?)")).unwrap_or_default()
    )]
    UnknownRegion {
        /// What was given.
        region: String,
        /// The closest known region, if one is close.
        suggestion: Option<String>,
    },
    /// No region to work on.
    #[error(
        "no regions to scan: pass --regions r1,r2 (or all), set AWS_REGION, or list regions for the target in the config file"
    )]
    NoRegions,
    /// `--target` named nothing.
    #[error("no target named '{0}' in the configuration")]
    UnknownTarget(String),
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// What a person can do about it, if something (see [`Remedy`]).
    pub fn remedy(&self) -> Option<Remedy> {
        match self {
            Error::Api(e) => e.remedy(),
            Error::Vault(e) => e.remedy().map(Remedy::Vault),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        assert_eq!(
            ErrorKind::from_code("ThrottlingException", Some(400)),
            ErrorKind::Throttled
        );
        assert_eq!(
            ErrorKind::from_code("LimitExceededException", Some(400)),
            ErrorKind::QuotaExceeded
        );
        assert!(
            !ErrorKind::QuotaExceeded.is_retryable(),
            "quota errors fail fast"
        );
        assert_eq!(
            ErrorKind::from_code("AccessDeniedException", Some(400)),
            ErrorKind::AccessDenied
        );
        assert!(!ErrorKind::AccessDenied.is_retryable());
        assert!(!ErrorKind::Validation.is_retryable());
        assert_eq!(
            ErrorKind::from_code("Whatever", Some(503)),
            ErrorKind::Transient
        );
        assert_eq!(
            ErrorKind::from_code("Whatever", Some(429)),
            ErrorKind::Throttled
        );
        assert_eq!(
            ErrorKind::from_code("Whatever", Some(400)),
            ErrorKind::Other
        );
    }

    #[test]
    fn an_aws_error_reads_as_operation_region_code_message() {
        let mut e = ApiError::local(
            ErrorKind::AccessDenied,
            "ImportCertificate",
            "eu-west-1",
            "AccessDenied",
            "not allowed".into(),
        );
        assert_eq!(
            e.to_string(),
            "ImportCertificate in eu-west-1: AccessDenied: not allowed"
        );
        e.attempts = 3;
        e.request_id = Some("r-1".into());
        assert_eq!(
            e.to_string(),
            "ImportCertificate in eu-west-1: AccessDenied: not allowed (after 3 attempts) (request r-1)"
        );
    }

    /// A refusal is typed, and reads (code, kind, message) as the untyped error it replaces.
    #[test]
    fn a_refusal_reads_as_before_and_keeps_its_variant() {
        let e = ApiError::refused(
            "ModifyDBInstance",
            "eu-west-1",
            Refusal::AccountMismatch {
                expected: "111111111111".into(),
                found: "222222222222".into(),
                target: "prod".into(),
                what: "the audit was of".into(),
                operation: "ModifyDBInstance",
            },
        );
        assert_eq!(
            e.to_string(),
            "ModifyDBInstance in eu-west-1: AccountMismatch: the audit was of account 111111111111, but target 'prod' resolves to account 222222222222: nothing was sent (ModifyDBInstance)"
        );
        assert_eq!((e.kind, e.attempts), (ErrorKind::Validation, 0));
        assert!(matches!(
            e.refusal(),
            Some(Refusal::AccountMismatch { found, .. }) if found == "222222222222"
        ));
        let stopped = ApiError::refused("ListCertificates", "us-east-1", Refusal::Stopped);
        assert_eq!(
            stopped.reason(),
            "ListCertificates in us-east-1: Stopped: not sent: the pass was stopped"
        );
        assert_eq!(stopped.kind, ErrorKind::Stopped);
        let t = ApiError::refused(
            "GetCallerIdentity",
            "global",
            Refusal::Timeout {
                target: "prod".into(),
                seconds: 30,
            },
        );
        assert_eq!(
            t.to_string(),
            "GetCallerIdentity in global: Timeout: resolving the credentials of target 'prod' took more than 30s"
        );
        assert!(t.outcome_unknown(), "a timeout may have been carried out");
        // Every other refusal: the code, kind and message the untyped error had.
        let s = |v: &str| v.to_owned();
        let cases: Vec<(Refusal, &str, ErrorKind, &str)> = vec![
            (
                Refusal::AccountDiffers {
                    what: s("the ARN belongs to"),
                    expected: s("111"),
                    target: s("prod"),
                    found: s("222"),
                    now: true,
                    nothing: "nothing was deleted",
                },
                "AccountMismatch",
                ErrorKind::Validation,
                "the ARN belongs to account 111, but target 'prod' now resolves to account 222: nothing was deleted",
            ),
            (
                Refusal::AccountDiffers {
                    what: s("the CA belongs to"),
                    expected: s("111"),
                    target: s("prod"),
                    found: s("222"),
                    now: false,
                    nothing: "nothing was asked of it",
                },
                "AccountMismatch",
                ErrorKind::Validation,
                "the CA belongs to account 111, but target 'prod' resolves to account 222: nothing was asked of it",
            ),
            (
                Refusal::CaOfAnotherAccount {
                    ca: s("ca"),
                    account: s("111"),
                    target: s("prod"),
                },
                "AccountMismatch",
                ErrorKind::Validation,
                "the CA ca is not one of account 111, which target 'prod' resolves to: nothing was requested",
            ),
            (
                Refusal::InvalidArn { arn: s("x") },
                "InvalidArn",
                ErrorKind::Validation,
                "x is not an ACM certificate ARN",
            ),
            (
                Refusal::InvalidCaArn { arn: s("x") },
                "InvalidArn",
                ErrorKind::Validation,
                "x is not an AWS Private CA ARN (arn:aws:acm-pca:REGION:ACCOUNT:certificate-authority/ID)",
            ),
            (
                Refusal::InvalidCaArnToRevoke { arn: s("x") },
                "InvalidArn",
                ErrorKind::Validation,
                "x is not an AWS Private CA ARN: nothing was revoked",
            ),
            (
                Refusal::InvalidArns {
                    old: s("o"),
                    new: s("n"),
                },
                "InvalidArn",
                ErrorKind::Validation,
                "o and n must both be ACM certificate ARNs",
            ),
            (
                Refusal::DifferentPlaces {
                    old: s("o"),
                    old_region: s("r1"),
                    old_account: s("a1"),
                    new: s("n"),
                    new_region: s("r2"),
                    new_account: s("a2"),
                },
                "DifferentPlaces",
                ErrorKind::Validation,
                "o is in r1 of account a1, n in r2 of account a2: a listener can only take a certificate of its own region and account",
            ),
            (
                Refusal::SameCertificate,
                "SameCertificate",
                ErrorKind::Validation,
                "OLD and NEW are the same certificate",
            ),
            (
                Refusal::NotIssued {
                    arn: s("n"),
                    status: "PENDING_VALIDATION".into(),
                },
                "NotIssued",
                ErrorKind::Validation,
                "n is PENDING_VALIDATION, not issued: nothing is moved to it",
            ),
            (
                Refusal::NamesDiffer {
                    new: s("n"),
                    old: s("o"),
                    uncovered: vec![s("a.example"), s("b.example")],
                },
                "NamesDiffer",
                ErrorKind::Validation,
                "n does not cover a.example, b.example that o serves: clients asking for them would be refused; nothing is moved",
            ),
            (
                Refusal::ListenerChanged {
                    listener: s("l"),
                    now: None,
                    planned: s("o"),
                },
                "ListenerChanged",
                ErrorKind::Validation,
                "the default certificate of l is none now, not o as planned: it was changed since the plan, and is left as it is",
            ),
            (
                Refusal::UnexpectedArn {
                    arn: s("x"),
                    account: s("111"),
                },
                "UnexpectedArn",
                ErrorKind::Other,
                "ACM answered with x, not an ARN of account 111",
            ),
            (
                Refusal::NoAnswerInTime,
                "Timeout",
                ErrorKind::Transient,
                "no answer before the time given ran out",
            ),
            (
                Refusal::NotAskedInTime,
                "Timeout",
                ErrorKind::Transient,
                "not asked: the time given ran out before the time given ran out",
            ),
            (
                Refusal::UnreadableCertificate {
                    arn: s("x"),
                    reason: s("bad PEM"),
                },
                "UnreadableCertificate",
                ErrorKind::Validation,
                "x: bad PEM",
            ),
            (
                Refusal::RowTampered { reason: s("why") },
                "RowTampered",
                ErrorKind::Other,
                "why",
            ),
            (
                Refusal::UnknownTarget { target: s("t") },
                "UnknownTarget",
                ErrorKind::Validation,
                "target 't' is not in the configuration; nothing was sent to AWS",
            ),
            (
                Refusal::ListingDidNotEnd { pages: 7 },
                "TooManyPages",
                ErrorKind::Other,
                "the listing did not end after 7 pages",
            ),
            (
                Refusal::TooManyPages { pages: 7 },
                "TooManyPages",
                ErrorKind::Other,
                "more than 7 pages",
            ),
            (
                Refusal::TooManyZones {
                    name: s("example.com"),
                    pages: 7,
                },
                "TooManyZones",
                ErrorKind::Other,
                "more than 7 pages of hosted zones named example.com",
            ),
            (
                Refusal::TooManyRecords { count: 9, max: 8 },
                "TooManyRecords",
                ErrorKind::Validation,
                "9 validation records: at most 8; nothing was written to Route 53",
            ),
            (
                Refusal::NotRecorded { why: s("full") },
                "NotRecorded",
                ErrorKind::Other,
                "not sent: the vault could not record the import first (full)",
            ),
            (
                Refusal::CaNotActive {
                    ca: s("ca"),
                    status: s("DISABLED"),
                },
                "InvalidStateException",
                ErrorKind::Validation,
                "the CA ca is DISABLED: it issues only when ACTIVE; nothing was issued",
            ),
            (
                Refusal::UnknownKeyAlgorithm {
                    ca: s("ca"),
                    algorithm: None,
                },
                "UnknownKeyAlgorithm",
                ErrorKind::Validation,
                "the CA ca has key algorithm (none), which certvault does not know how to sign with",
            ),
            (
                Refusal::NotEligible {
                    arn: s("x"),
                    kind: "IMPORTED".into(),
                    eligibility: None,
                },
                "NotEligible",
                ErrorKind::Validation,
                "x is IMPORTED and of unknown eligibility: ACM renews only eligible private certificates on request; nothing was asked",
            ),
            (
                Refusal::AnotherVaultsCertificate {
                    arn: s("x"),
                    tag: s("e1"),
                    deployed: Some((s("www"), s("eu-west-1"))),
                },
                "AnotherVaultsCertificate",
                ErrorKind::Validation,
                "x is tagged certvault:entry-id=e1: a copy of www, which is deployed in eu-west-1; its agent would adopt or import it again, so nothing was deleted",
            ),
            (
                Refusal::AnotherVaultsCertificate {
                    arn: s("x"),
                    tag: s("e2"),
                    deployed: None,
                },
                "AnotherVaultsCertificate",
                ErrorKind::Validation,
                "x is tagged certvault:entry-id=e2, an entry this vault never held: it is another certvault vault's deployment, and that vault's agent would import it again under a new ARN, so nothing was deleted",
            ),
            (
                Refusal::NotThisEntry {
                    arn: s("x"),
                    held: Some(s("0123456789abcdef0123")),
                    tag: None,
                },
                "NotThisEntry",
                ErrorKind::Validation,
                "x holds certificate 0123456789abcdef and is tagged without certvault:entry-id: it is not this entry's, so nothing was deleted",
            ),
            (
                Refusal::NotThisEntry {
                    arn: s("x"),
                    held: None,
                    tag: Some(s("e1")),
                },
                "NotThisEntry",
                ErrorKind::Validation,
                "x holds certificate (unreadable) and is tagged certvault:entry-id=e1: it is not this entry's, so nothing was deleted",
            ),
            (
                Refusal::InUse {
                    arn: s("x"),
                    users: vec![(s("u1"), s("do 1")), (s("u2"), s("do 2"))],
                },
                "ResourceInUseException",
                ErrorKind::InUse,
                "x is in use; nothing was deleted. Detach it from each of these first:\n  - u1\n    do 1\n  - u2\n    do 2",
            ),
        ];
        for (refusal, code, kind, message) in cases {
            let e = ApiError::refused("Op", "r", refusal.clone());
            assert_eq!(
                (e.code.as_str(), e.kind, e.message.as_str()),
                (code, kind, message)
            );
            assert_eq!(e.refusal(), Some(&refusal));
        }
        // What AWS said is no refusal; nor is the JSON of an error any different.
        let aws = ApiError::local(ErrorKind::Other, "X", "r", "C", "m".into());
        assert!(aws.refusal().is_none());
        assert!(!serde_json::to_string(&e).unwrap().contains("refusal"));
    }
}
