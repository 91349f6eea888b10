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
    /// AWS's request id, when the service answered.
    pub request_id: Option<String>,
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

    /// A failure found before anything was sent (configuration, a stopped pass).
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
}
