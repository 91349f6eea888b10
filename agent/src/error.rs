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
    /// Why the agent itself refused, when it did (nothing was sent): what `kind`, `code` and
    /// `message` were derived from. See [`ApiError::refusal`].
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
        }
    }

    /// How it is handled: a timeout may be worth another try; the rest are not retried.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Refusal::AccountMismatch { .. }
            | Refusal::InsecureKeyEndpoint { .. }
            | Refusal::InsecureCaEndpoint { .. } => ErrorKind::Validation,
            Refusal::Timeout { .. } => ErrorKind::Transient,
            Refusal::Stopped => ErrorKind::Stopped,
            Refusal::TooManyPages { .. } | Refusal::NoAccount => ErrorKind::Other,
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

    /// Why the agent refused, when it was the agent and not AWS.
    pub fn refusal(&self) -> Option<&Refusal> {
        self.refusal.as_deref()
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
        // What AWS said is no refusal; nor is the JSON of an error any different.
        let aws = ApiError::local(ErrorKind::Other, "X", "r", "C", "m".into());
        assert!(aws.refusal().is_none());
        assert!(!serde_json::to_string(&e).unwrap().contains("refusal"));
    }
}
