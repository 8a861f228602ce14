//! Error kinds that decide the exit code, and readable messages for AWS SDK errors.
//!
//! Exit codes (documented in the README):
//! - 0: success (including "nothing to change")
//! - 1: the operation failed (AWS said no, a stack failed, a resource is missing)
//! - 2: usage error (bad flags, bad input files): nothing was sent to AWS
//! - 130: interrupted with Ctrl-C

use std::fmt;

use aws_sdk_cloudformation::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// Bad input from the user: detected before any change, exit code 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// The user pressed Ctrl-C while bbbctl waited: exit code 130.
#[derive(Debug)]
pub struct Interrupted(pub String);

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Interrupted {}

/// Shorthand for returning a usage error.
pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(msg.into()))
}

/// Maps an error to the process exit code.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if err.downcast_ref::<UsageError>().is_some() {
        2
    } else if err.downcast_ref::<Interrupted>().is_some() {
        130
    } else {
        1
    }
}

/// The AWS error code of a service error (`ValidationError`, `Throttling`, …), if it is one.
pub fn aws_code<E, R>(err: &SdkError<E, R>) -> Option<&str>
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::ServiceError(se) => se.err().code(),
        _ => None,
    }
}

/// The AWS error message of a service error, if it is one.
pub fn aws_message<E, R>(err: &SdkError<E, R>) -> Option<&str>
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::ServiceError(se) => se.err().message(),
        _ => None,
    }
}

/// Turns an SDK error into a one-line, human message: the service's own code and message when
/// AWS answered, what went wrong on the way when it did not (never the SDK's debug dump; `-l
/// DEBUG` logs that).
pub fn describe<E, R>(err: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: fmt::Debug,
{
    let full = DisplayErrorContext(err).to_string();
    tracing::debug!("AWS SDK error: {full}");
    if let SdkError::ServiceError(se) = err {
        let e = se.err();
        let text = match (e.code(), e.message()) {
            (Some(code), Some(msg)) => format!("{code}: {msg}"),
            (Some(code), None) => code.to_string(),
            (None, Some(msg)) => msg.to_string(),
            (None, None) => not_aws(&full),
        };
        return match e.code().and_then(hint) {
            Some(hint) => format!("{text}. {hint}"),
            None => text,
        };
    }
    let lower = full.to_ascii_lowercase();
    match err {
        _ if lower.contains("credential") => {
            "no usable AWS credentials were found (-l DEBUG shows where bbbctl looked). Pass -p/--profile \
             with a profile from ~/.aws/credentials, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
                .to_string()
        }
        SdkError::TimeoutError(_) => {
            "no answer in time. Check your network, --region and --endpoint-url".to_string()
        }
        SdkError::DispatchFailure(_) => {
            let why = if lower.contains("dns") || lower.contains("lookup") || lower.contains("resolve")
            {
                "the endpoint's name does not resolve (a region that does not exist, or no network)"
            } else if lower.contains("refused") {
                "nothing listens at the endpoint (connection refused)"
            } else if lower.contains("timed out") || lower.contains("timeout") {
                "the endpoint did not answer in time"
            } else if lower.contains("certificate") || lower.contains("tls") {
                "the TLS connection to the endpoint failed"
            } else {
                "the request could not be sent"
            };
            format!("{why}. Check your network, --region and --endpoint-url")
        }
        SdkError::ResponseError(_) => not_aws(&full),
        _ => first_line(&full).to_string(),
    }
}

/// An answer that is not an AWS API answer (e.g. a web server that is not AWS, or an emulator
/// without the service).
fn not_aws(full: &str) -> String {
    let status = regex::Regex::new(r"status: (\d{3})|StatusCode\((\d{3})\)")
        .ok()
        .and_then(|re| re.captures(full))
        .and_then(|c| c.get(1).or_else(|| c.get(2)))
        .map(|m| format!(" (HTTP {})", m.as_str()))
        .unwrap_or_default();
    format!(
        "the endpoint's answer{status} is not an AWS API answer. Check --endpoint-url (and that the service runs there) and --region"
    )
}

/// What to do about the error codes a user can fix.
fn hint(code: &str) -> Option<&'static str> {
    match code {
        "ExpiredToken" | "ExpiredTokenException" | "RequestExpired" | "TokenRefreshRequired" => {
            Some(
                "Your AWS credentials have expired: refresh them (e.g. `aws sso login --profile NAME`) and run the command again",
            )
        }
        "InvalidClientTokenId"
        | "UnrecognizedClientException"
        | "InvalidAccessKeyId"
        | "SignatureDoesNotMatch"
        | "AuthFailure" => {
            Some("AWS does not accept these credentials: check -p/--profile and the keys it holds")
        }
        "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" => Some(
            "The credentials lack a permission: deploy with a profile that may manage CloudFormation, IAM, EC2, S3 and Secrets Manager",
        ),
        _ => None,
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

/// Adds `context: <AWS message>` to SDK results.
pub trait AwsContext<T> {
    fn aws_context(self, what: impl fmt::Display) -> anyhow::Result<T>;
}

impl<T, E, R> AwsContext<T> for Result<T, SdkError<E, R>>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: fmt::Debug + Send + Sync + 'static,
{
    fn aws_context(self, what: impl fmt::Display) -> anyhow::Result<T> {
        self.map_err(|e| anyhow::anyhow!("{what}: {}", describe(&e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An SDK error without an AWS answer reads as one line that says what to check.
    #[test]
    fn unreachable_endpoints_read_as_one_line() {
        use aws_sdk_cloudformation::operation::describe_stacks::DescribeStacksError;
        use aws_smithy_runtime_api::client::result::ConnectorError;
        use aws_smithy_runtime_api::http::{Response, StatusCode};
        use aws_smithy_types::body::SdkBody;
        type E = SdkError<DescribeStacksError, Response>;
        let io = |msg: &str| -> E {
            SdkError::dispatch_failure(ConnectorError::io(Box::new(std::io::Error::other(
                msg.to_string(),
            ))))
        };
        let dns = describe(&io(
            "dns error: failed to lookup address information: Name or service not known",
        ));
        assert!(
            dns.starts_with("the endpoint's name does not resolve (a region that does not exist"),
            "{dns}"
        );
        let refused = describe(&io("tcp connect error: Connection refused (os error 111)"));
        assert!(
            refused.starts_with("nothing listens at the endpoint"),
            "{refused}"
        );
        let timeout: E = SdkError::timeout_error("operation timed out");
        assert!(describe(&timeout).starts_with("no answer in time"));
        // A web server that is not AWS: HTTP 404 with an HTML body.
        let raw = Response::new(StatusCode::try_from(404).unwrap(), SdkBody::from("<html/>"));
        let not_aws: E = SdkError::service_error(
            DescribeStacksError::generic(
                aws_sdk_cloudformation::error::ErrorMetadata::builder().build(),
            ),
            raw,
        );
        let text = describe(&not_aws);
        assert!(text.contains("is not an AWS API answer"), "{text}");
        for t in [dns, refused, text] {
            assert!(!t.contains("DispatchFailure") && !t.contains('\n'), "{t}");
        }
    }

    #[test]
    fn exit_codes() {
        assert_eq!(exit_code(&usage("bad")), 2);
        assert_eq!(exit_code(&anyhow::Error::new(Interrupted("x".into()))), 130);
        assert_eq!(exit_code(&anyhow::anyhow!("failed")), 1);
        // context keeps the kind
        let e = usage("bad").context("while reading");
        assert_eq!(exit_code(&e), 2);
    }
}
