//! Errors from AWS calls, carrying the service error code and how the engine should react.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_types::error::display::DisplayErrorContext;

/// How a failed call should be treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// The resource does not exist (reads treat it as deleted).
    NotFound,
    /// Worth retrying after a pause: throttling, 5xx, eventual consistency.
    Retryable,
    /// The request itself is wrong or forbidden: retrying cannot help.
    Fatal,
}

/// A failed AWS call: which operation, the service's error code and message.
#[derive(Debug, thiserror::Error)]
#[error("{operation} failed: {code}: {message}")]
pub struct ProviderError {
    pub operation: &'static str,
    /// The AWS error code (`NoSuchBucket`, `AccessDenied`, ...) or a transport failure name.
    pub code: String,
    pub message: String,
    pub class: ErrorClass,
}

const NOT_FOUND_CODES: &[&str] =
    &["NoSuchBucket", "NotFound", "NotFoundException", "NoSuchEntity", "ResourceNotFoundException", "404"];
const RETRYABLE_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "SlowDown",
    "InternalError",
    "ServiceUnavailable",
    "OperationAborted",
];

impl ProviderError {
    pub fn new(operation: &'static str, code: impl Into<String>, message: impl Into<String>) -> Self {
        let code = code.into();
        let class = classify(&code);
        Self { operation, code, message: message.into(), class }
    }

    /// Converts an SDK error, keeping the service's code or naming the transport failure.
    pub fn from_sdk<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let (code, message) = match &err {
            SdkError::ServiceError(service) => {
                let e = service.err();
                // S3 HEAD errors have no body and so no code: the HTTP status stands in.
                let code = e.code().map_or_else(|| service.raw().status().as_u16().to_string(), str::to_string);
                (code, e.message().map_or_else(|| DisplayErrorContext(e).to_string(), str::to_string))
            }
            SdkError::TimeoutError(_) => ("Timeout".to_string(), causes(&err)),
            SdkError::DispatchFailure(_) => ("DispatchFailure".to_string(), causes(&err)),
            SdkError::ResponseError(_) => ("ResponseError".to_string(), causes(&err)),
            _ => ("SdkError".to_string(), causes(&err)),
        };
        let mut e = Self::new(operation, code, message);
        if matches!(err, SdkError::TimeoutError(_) | SdkError::DispatchFailure(_)) {
            e.class = ErrorClass::Retryable;
        }
        e
    }

    /// A value AWS returned that the engine cannot use.
    pub fn unexpected(operation: &'static str, message: impl Into<String>) -> Self {
        Self::new(operation, "UnexpectedResponse", message)
    }

    pub fn is_not_found(&self) -> bool {
        self.class == ErrorClass::NotFound
    }
}

/// The error and its causes, each once, without the SDK's debug dumps.
fn causes(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

fn classify(code: &str) -> ErrorClass {
    if NOT_FOUND_CODES.contains(&code) || code.starts_with("NoSuch") || code.ends_with("NotFound") {
        ErrorClass::NotFound
    } else if RETRYABLE_CODES.contains(&code) || code.starts_with('5') {
        ErrorClass::Retryable
    } else {
        ErrorClass::Fatal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_classified_by_what_the_engine_should_do() {
        // Missing resources, throttling and validation errors each get their own class.
        assert_eq!(classify("NoSuchBucket"), ErrorClass::NotFound);
        assert_eq!(classify("NotFound"), ErrorClass::NotFound);
        assert_eq!(classify("ThrottlingException"), ErrorClass::Retryable);
        assert_eq!(classify("503"), ErrorClass::Retryable);
        assert_eq!(classify("InvalidParameter"), ErrorClass::Fatal);
        assert_eq!(classify("BucketAlreadyExists"), ErrorClass::Fatal);
    }
}
