//! Turning what the SDK answered into an [`ApiError`]: its code, message and request id,
//! classified ([`ErrorKind`]) so retries and messages can act on it; a transport failure in
//! words, never the SDK's `Debug` dump.

use aws_sdk_acm::{
    error::{ProvideErrorMetadata, SdkError},
    operation::RequestId,
};

use crate::error::{ApiError, ErrorKind};

/// Turns an SDK error into an [`ApiError`], classified.
pub(crate) fn classify<E: ProvideErrorMetadata + std::error::Error + 'static>(
    operation: &'static str,
    region: &str,
    err: SdkError<E>,
) -> ApiError {
    let (kind, code, message) = match &err {
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or("Unknown").to_owned();
            let status = se.raw().status().as_u16();
            (
                ErrorKind::from_code(&code, Some(status)),
                code,
                se.err().message().unwrap_or("").to_owned(),
            )
        }
        SdkError::TimeoutError(_) => (ErrorKind::Transient, "Timeout".into(), causes(&err)),
        // The SDK found no credentials to sign with: nothing was sent.
        SdkError::DispatchFailure(_) if loading_credentials_failed(&err) => (
            ErrorKind::NoCredentials,
            "NoCredentials".into(),
            causes(&err),
        ),
        SdkError::DispatchFailure(d) => {
            let kind = if d.is_io() || d.is_timeout() {
                ErrorKind::Transient
            } else {
                ErrorKind::Other
            };
            (kind, "DispatchFailure".into(), causes(&err))
        }
        SdkError::ResponseError(_) => (ErrorKind::Transient, "ResponseError".into(), causes(&err)),
        _ => (ErrorKind::Other, "ClientError".into(), causes(&err)),
    };
    ApiError {
        kind,
        operation,
        region: region.to_owned(),
        code,
        message,
        attempts: 1,
        request_id: err.request_id().map(Into::into),
        refusal: None,
    }
}

/// Whether an error comes from loading credentials (the SDK's credentials chain found none,
/// or the one it found failed) rather than from a request that was sent.
fn loading_credentials_failed(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = next {
        if e.is::<aws_credential_types::provider::error::CredentialsError>() {
            return true;
        }
        next = e.source();
    }
    false
}

/// An error and its causes, as words (`dispatch failure: io error: … Connection refused`),
/// each said once: never the SDK's `Debug` dump.
fn causes(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("dispatch failure")]
    struct Outer(#[source] Middle);
    #[derive(Debug, thiserror::Error)]
    #[error("io error: {0}")]
    struct Middle(#[source] std::io::Error);

    /// Issue "The first hour": a failure's detail was the SDK error's `Debug` dump.
    #[test]
    fn a_transport_failure_reads_as_words_each_said_once() {
        let e = Outer(Middle(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "Connection refused",
        )));
        assert_eq!(causes(&e), "dispatch failure: io error: Connection refused");
    }
}
