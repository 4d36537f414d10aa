//! What a service module hands the edge: how clients reach it (`ServiceInfo`) and one entry
//! point (`AwsService::call`) that takes a decoded, authenticated call. A service never sees
//! HTTP, never checks a signature, and never renders an error document.

use serde_json::Value;

use crate::error::AwsError;
use crate::query::QueryParams;
use crate::sigv4::format_iso8601_ms;

/// AWS JSON's two versions: the same protocol, told apart by content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonVersion {
    V1_0,
    V1_1,
}

impl JsonVersion {
    pub fn content_type(self) -> &'static str {
        match self {
            Self::V1_0 => "application/x-amz-json-1.0",
            Self::V1_1 => "application/x-amz-json-1.1",
        }
    }
}

/// How a service is reached over AWS JSON: `X-Amz-Target: <target_prefix>.<Operation>`.
#[derive(Debug, Clone, Copy)]
pub struct JsonProtocol {
    pub target_prefix: &'static str,
    pub version: JsonVersion,
    /// A former query service (CloudWatch): errors also carry `x-amzn-query-error`.
    pub query_compatible: bool,
}

/// How a service is reached over the AWS query protocol: `Action=<Operation>&Version=..`,
/// routed by the service named in the request's SigV4 scope.
#[derive(Debug, Clone, Copy)]
pub struct QueryProtocol {
    /// The API version (`2015-12-01` for ELBv2).
    pub version: &'static str,
    /// The namespace of its XML responses.
    pub xmlns: &'static str,
}

/// A service as the edge routes to it.
#[derive(Debug, Clone, Copy)]
pub struct ServiceInfo {
    /// The name in the SigV4 credential scope (`ecs`, `elasticloadbalancing`, `monitoring`).
    pub signing_name: &'static str,
    pub json: Option<JsonProtocol>,
    pub query: Option<QueryProtocol>,
}

/// The protocol a call arrived in (and its answer goes out in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Json(JsonVersion),
    Query,
}

/// A call's input, as its protocol carries it.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// The raw JSON body (empty when the client sent none).
    Json(&'a [u8]),
    Query(&'a QueryParams),
}

/// One authenticated call to a service.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    pub operation: &'a str,
    pub protocol: Protocol,
    /// The region the client signed for; every ARN the call creates carries it.
    pub region: &'a str,
    pub access_key_id: &'a str,
    pub request_id: &'a str,
    /// The host the client addressed (`Host`, or HTTP/2's `:authority`).
    pub host: &'a str,
    pub input: Input<'a>,
}

impl<'a> Call<'a> {
    /// The JSON body of a call to a JSON-only service (the edge routes nothing else to it).
    pub fn json_body(&self) -> Result<&'a [u8], AwsError> {
        match self.input {
            Input::Json(body) => Ok(body),
            Input::Query(_) => Err(AwsError::serialization(format!(
                "{} is served over AWS JSON only, not the query protocol.",
                self.operation
            ))),
        }
    }

    /// A timestamp as this call's protocol writes it: epoch seconds in JSON, ISO 8601 in XML.
    pub fn timestamp(&self, unix_ms: i64) -> Value {
        match self.protocol {
            #[allow(clippy::cast_precision_loss)] // epoch milliseconds fit an f64 exactly
            Protocol::Json(_) => Value::from(unix_ms as f64 / 1000.0),
            Protocol::Query => Value::from(format_iso8601_ms(unix_ms)),
        }
    }
}

/// An AWS service Berth serves.
pub trait AwsService: Send + Sync {
    fn info(&self) -> &ServiceInfo;

    /// Runs one operation. The result is rendered in the call's protocol: a JSON body, or the
    /// members of the query protocol's `<OperationResult>`.
    fn call(&self, call: &Call<'_>) -> Result<Value, AwsError>;
}
