//! The one error type of every AWS service Berth serves, and the codes the edge itself
//! answers with. Each protocol renders it its own way (`edge::render`, `xml`).

use std::borrow::Cow;

use crate::sigv4::SigV4Error;

/// An AWS error: the code clients match on, a message a person can act on, and the HTTP
/// status. `query_code` is the code a query-compatible JSON service (CloudWatch) also sends
/// in `x-amzn-query-error`, for clients that still match on the query protocol's code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    pub code: Cow<'static, str>,
    pub message: String,
    pub status: u16,
    pub query_code: Option<Cow<'static, str>>,
}

impl std::fmt::Display for AwsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for AwsError {}

impl AwsError {
    pub fn new(
        code: impl Into<Cow<'static, str>>,
        status: u16,
        message: impl Into<String>,
    ) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            status,
            query_code: None,
        }
    }

    /// A 400 error: the caller's request is at fault.
    pub fn client(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(code, 400, message)
    }

    #[must_use]
    pub fn with_query_code(mut self, code: impl Into<Cow<'static, str>>) -> Self {
        self.query_code = Some(code.into());
        self
    }

    /// The code the query protocol carries.
    pub fn code_for_query(&self) -> &str {
        self.query_code.as_deref().unwrap_or(&self.code)
    }

    /// `Sender` or `Receiver`, as the query protocol's `<Type>` says whose fault it is.
    pub fn fault(&self) -> &'static str {
        if self.status >= 500 {
            "Receiver"
        } else {
            "Sender"
        }
    }

    /// A JSON-protocol operation the service does not have.
    pub fn unknown_operation(message: impl Into<String>) -> Self {
        Self::client("UnknownOperationException", message).with_query_code("InvalidAction")
    }

    /// A query-protocol action the service does not have.
    pub fn invalid_action(message: impl Into<String>) -> Self {
        Self::client("InvalidAction", message)
    }

    /// A request body that is not what the protocol says it is.
    pub fn serialization(message: impl Into<String>) -> Self {
        Self::client("SerializationException", message)
    }

    /// Something failed inside Berth; the message says what, without the caller's fault.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new("InternalFailure", 500, message)
    }
}

impl From<SigV4Error> for AwsError {
    fn from(e: SigV4Error) -> Self {
        // Query services (ELB, CloudWatch, STS) name the same failures differently.
        let query_code = match &e {
            SigV4Error::Missing => "MissingAuthenticationToken",
            SigV4Error::IncompleteSignature(_) => "IncompleteSignature",
            SigV4Error::UnknownAccessKey(_) => "InvalidClientTokenId",
            SigV4Error::SignatureMismatch | SigV4Error::Expired { .. } => "SignatureDoesNotMatch",
        };
        Self::new(e.aws_error_type(), 403, e.to_string()).with_query_code(query_code)
    }
}
