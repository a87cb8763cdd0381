//! Errors from AWS calls, carrying the service error code and what kind of failure it is.
//!
//! A kind only says what an error *is* ([`ErrorClass`]); what to do about it (retry, look for
//! what the call may have made, give up) is decided by the engine's one retry policy
//! ([`crate::retry`]). The AWS SDK's own retries are switched off ([`super::Aws`]), so every
//! retry is counted, reported and bounded in one place.

use std::time::Duration;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_types::error::display::DisplayErrorContext;

/// What a failed call means for the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorClass {
    /// The resource does not exist (reads treat it as deleted). Right after a create it may
    /// only be not yet visible: the engine decides by context.
    NotFound,
    /// AWS refused the request because of its rate: it was not carried out.
    Throttled,
    /// A 5xx, a reset or lost connection, a timeout: the request may or may not have been
    /// carried out.
    Transient,
    /// Another change to the same thing is in progress: try again later.
    Conflict,
    /// Eventual consistency with a deadline: something just made is not usable yet (a new
    /// role not assumable by Lambda, a permission S3 cannot validate yet).
    Propagating,
    /// A creating call met a resource that exists already (maybe made by an earlier attempt).
    AlreadyExists,
    /// The request itself is wrong or forbidden: retrying cannot help.
    Fatal,
}

impl ErrorClass {
    /// True when the call may have been carried out although it failed.
    pub fn maybe_done(self) -> bool {
        matches!(self, ErrorClass::Transient)
    }
}

/// The code of [`ProviderError::invalid_attributes`].
const INVALID_ATTRIBUTES: &str = "InvalidAttributes";

/// A failed AWS call: which operation, the service's error code and message.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{operation} failed: {code}: {message}{}", retried(*attempts, *waited))]
pub struct ProviderError {
    pub operation: &'static str,
    /// The AWS error code (`NoSuchBucket`, `AccessDenied`, ...) or a transport failure name.
    pub code: String,
    pub message: String,
    pub class: ErrorClass,
    /// The HTTP status of the response, when there was one.
    pub status: Option<u16>,
    /// How many times the engine sent the call before giving up (1: not retried).
    pub attempts: u32,
    /// How long the engine waited between those attempts.
    pub waited: Duration,
}

fn retried(attempts: u32, waited: Duration) -> String {
    if attempts > 1 { format!(" (after {attempts} attempts over {:.1}s)", waited.as_secs_f64()) } else { String::new() }
}

/// Codes that mean "not there".
const NOT_FOUND_CODES: &[&str] =
    &["NoSuchBucket", "NotFound", "NotFoundException", "NoSuchEntity", "ResourceNotFoundException", "404"];

/// Codes that mean "too fast": the request was refused, not carried out.
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "SlowDown",
    "PriorRequestNotComplete",
    "BandwidthLimitExceeded",
    "429",
];

/// Codes AWS uses for its own failures, whatever HTTP status carries them.
const TRANSIENT_CODES: &[&str] = &[
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "InternalServerException",
    "ServiceException",
    "ServiceFailure",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "RequestTimeout",
    "RequestTimeoutException",
    // The engine's names for transport failures: no usable answer came back.
    "DispatchFailure",
    "Timeout",
    "ResponseError",
];

/// Codes that mean "something else is changing this; try again".
const CONFLICT_CODES: &[&str] = &[
    "ConcurrentModification",
    "ConcurrentModificationException",
    "ConcurrentAccess",
    "ConcurrentAccessException",
    "OperationAborted",
    // S3: another conditional write to the same key is in flight; the retry meets the
    // condition again (and a lost race then answers 412).
    "ConditionalRequestConflict",
];

/// Codes a creating call gets when the thing exists already.
const ALREADY_EXISTS_CODES: &[&str] = &[
    "EntityAlreadyExists",
    "BucketAlreadyOwnedByYou",
    "DistributionAlreadyExists",
    "OriginAccessControlAlreadyExists",
    "ResourceAlreadyExistsException",
];

impl ProviderError {
    pub fn new(operation: &'static str, code: impl Into<String>, message: impl Into<String>) -> Self {
        let (code, message) = (code.into(), message.into());
        let class = classify(&code, None, &message);
        Self { operation, code, message, class, status: None, attempts: 1, waited: Duration::ZERO }
    }

    /// Converts an SDK error, keeping the service's code or naming the transport failure.
    pub fn from_sdk<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let status = err.raw_response().map(|r| r.status().as_u16());
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
        e.status = status;
        e.class = match &err {
            // The request was never signed: no credentials, or a profile or SSO session that
            // cannot give any. Retrying cannot help; say what to set.
            _ if status.is_none() && no_credentials(&e.message) => {
                e.code = "NoCredentials".into();
                e.message = format!("{}. {NO_CREDENTIALS_HINT}", e.message);
                ErrorClass::Fatal
            }
            // No usable answer came back: the request may have been carried out.
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
                ErrorClass::Transient
            }
            _ => classify(&e.code, status, &e.message),
        };
        if CREDENTIAL_CODES.contains(&e.code.as_str()) {
            e.message = format!("{}. {BAD_CREDENTIALS_HINT}", e.message);
        }
        e
    }

    /// A value AWS returned that the engine cannot use.
    pub fn unexpected(operation: &'static str, message: impl Into<String>) -> Self {
        Self::new(operation, "UnexpectedResponse", message)
    }

    /// Attributes that do not fit the kind's model (an engine or state bug, never AWS's).
    pub fn invalid_attributes(kind: &str, message: impl std::fmt::Display) -> Self {
        let mut e = Self::new("DecodeAttributes", INVALID_ATTRIBUTES, format!("{kind}: {message}"));
        e.class = ErrorClass::Fatal;
        e
    }

    /// The same error with another class (a kind that knows better than the code alone).
    pub fn with_class(mut self, class: ErrorClass) -> Self {
        self.class = class;
        self
    }

    /// Whether the values handed to the kind do not read as its model (no AWS call was made).
    pub fn is_invalid_attributes(&self) -> bool {
        self.code == INVALID_ATTRIBUTES
    }

    pub fn is_not_found(&self) -> bool {
        self.class == ErrorClass::NotFound
    }
}

/// What to set when no credentials were found.
const NO_CREDENTIALS_HINT: &str = "No AWS credentials were found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or \
AWS_PROFILE (after `aws sso login` for an SSO profile), or run with a role (in GitHub Actions: \
aws-actions/configure-aws-credentials)";
/// What to do when AWS refuses the credentials themselves.
const BAD_CREDENTIALS_HINT: &str = "AWS refused the credentials themselves (expired, unknown, or the secret does not \
match the key id): get new ones (`aws sso login`, a new session token, or the right AWS_PROFILE) and run the command \
again";
/// Codes AWS answers when the credentials (not the permissions) are wrong.
const CREDENTIAL_CODES: &[&str] = &[
    "ExpiredToken",
    "ExpiredTokenException",
    "RequestExpired",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidSignatureException",
    "InvalidToken",
];

/// Whether an error that carries no response is the SDK finding no credentials to sign with.
fn no_credentials(causes: &str) -> bool {
    let text = causes.to_ascii_lowercase();
    text.contains("credentials")
        && (text.contains("no credentials")
            || text.contains("failed to load")
            || text.contains("provider was not enabled")
            || text.contains("could not load")
            || text.contains("loading credentials")
            || text.contains("credential provider"))
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

/// The class of an error from its code, HTTP status and message.
pub fn classify(code: &str, status: Option<u16>, message: &str) -> ErrorClass {
    let message = message.to_ascii_lowercase();
    if THROTTLING_CODES.contains(&code) || status == Some(429) {
        ErrorClass::Throttled
    } else if TRANSIENT_CODES.contains(&code) || status.is_some_and(|s| s >= 500) || code.starts_with('5') {
        ErrorClass::Transient
    } else if CONFLICT_CODES.contains(&code) || is_try_again_conflict(code, &message) {
        ErrorClass::Conflict
    } else if ALREADY_EXISTS_CODES.contains(&code) || is_already_exists(code, &message) {
        ErrorClass::AlreadyExists
    } else if NOT_FOUND_CODES.contains(&code) || code.starts_with("NoSuch") || code.ends_with("NotFound") {
        ErrorClass::NotFound
    } else {
        ErrorClass::Fatal
    }
}

/// API Gateway's and Lambda's conflicts that clear by themselves: "concurrent modification
/// ... try again later", "an update is in progress", and Lambda's refusal while a new function
/// is still being made ("currently in the following state: Pending").
fn is_try_again_conflict(code: &str, message: &str) -> bool {
    matches!(code, "ConflictException" | "ResourceConflictException" | "ResourceInUseException")
        && (message.contains("try again")
            || message.contains("concurrent modification")
            || message.contains("in progress")
            || message.contains("following state: pending"))
}

/// Conflicts that mean "it exists": Lambda's "Function already exist", API Gateway's "Route
/// with key ... already exists", SNS's "already exists with different tags".
fn is_already_exists(code: &str, message: &str) -> bool {
    matches!(code, "ConflictException" | "ResourceConflictException" | "InvalidParameter" | "BadRequestException")
        && (message.contains("already exist") || message.contains("must be unique"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_classified_by_what_the_engine_should_do() {
        // Each class the retry policy tells apart, from the codes AWS services send.
        let c = |code: &str| classify(code, None, "");
        for code in ["NoSuchBucket", "NotFound", "NoSuchEntity", "ResourceNotFoundException", "NoSuchDistribution"] {
            assert_eq!(c(code), ErrorClass::NotFound, "{code}");
        }
        for code in [
            "Throttling",
            "ThrottlingException",
            "TooManyRequestsException",
            "RequestLimitExceeded",
            "SlowDown",
            "PriorRequestNotComplete",
        ] {
            assert_eq!(c(code), ErrorClass::Throttled, "{code}");
        }
        for code in ["InternalError", "InternalFailure", "ServiceException", "ServiceFailure", "RequestTimeout", "503"]
        {
            assert_eq!(c(code), ErrorClass::Transient, "{code}");
        }
        for code in ["ConcurrentModification", "ConcurrentAccess", "OperationAborted"] {
            assert_eq!(c(code), ErrorClass::Conflict, "{code}");
        }
        for code in ["EntityAlreadyExists", "BucketAlreadyOwnedByYou", "DistributionAlreadyExists"] {
            assert_eq!(c(code), ErrorClass::AlreadyExists, "{code}");
        }
        for code in ["InvalidParameter", "BucketAlreadyExists", "AccessDenied", "LimitExceededException"] {
            assert_eq!(c(code), ErrorClass::Fatal, "{code}");
        }
    }

    #[test]
    fn any_5xx_is_transient_and_any_429_is_throttling_whatever_the_code() {
        // A service that answers 500 with a validation-looking code is still failing itself.
        assert_eq!(classify("ValidationError", Some(500), ""), ErrorClass::Transient);
        assert_eq!(classify("ValidationError", Some(503), ""), ErrorClass::Transient);
        assert_eq!(classify("Whatever", Some(429), ""), ErrorClass::Throttled);
        assert_eq!(classify("ValidationError", Some(400), ""), ErrorClass::Fatal);
    }

    #[test]
    fn conflicts_are_told_apart_by_their_message() {
        // The same code means "wait" or "it exists" depending on what AWS says.
        let conflict = "Unable to complete operation due to concurrent modification. Please try again later.";
        assert_eq!(classify("ConflictException", Some(409), conflict), ErrorClass::Conflict);
        let exists = "Route with key POST /avatars/key_upload already exists for this API";
        assert_eq!(classify("ConflictException", Some(409), exists), ErrorClass::AlreadyExists);
        let updating = "The operation cannot be performed at this time. An update is in progress for resource";
        assert_eq!(classify("ResourceConflictException", Some(409), updating), ErrorClass::Conflict);
        let pending =
            "The operation cannot be performed at this time. The function is currently in the following state: Pending";
        assert_eq!(classify("ResourceConflictException", Some(409), pending), ErrorClass::Conflict);
        let function = "Function already exist: cruddur-thumbnailer";
        assert_eq!(classify("ResourceConflictException", Some(409), function), ErrorClass::AlreadyExists);
        assert_eq!(classify("ConflictException", Some(409), "something else"), ErrorClass::Fatal);
        let racing = "A conflicting conditional operation is currently in progress against this resource. Try again.";
        assert_eq!(classify("ConditionalRequestConflict", Some(409), racing), ErrorClass::Conflict);
    }

    #[test]
    fn a_retried_error_says_how_long_it_was_retried() {
        // The message a user reads includes the engine's retries.
        let mut e = ProviderError::new("CreateRole", "Throttling", "Rate exceeded");
        assert_eq!(e.to_string(), "CreateRole failed: Throttling: Rate exceeded");
        e.attempts = 4;
        e.waited = Duration::from_millis(3500);
        assert_eq!(e.to_string(), "CreateRole failed: Throttling: Rate exceeded (after 4 attempts over 3.5s)");
    }
}
