//! ECS API errors: the one place where failures become `__type`, message and
//! HTTP status, as AWS JSON 1.1 clients expect them.

use crate::state::StateError;

/// The ECS (and AWS protocol) error types Berth returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    Client,
    InvalidParameter,
    ClusterNotFound,
    ClusterContainsContainerInstances,
    ClusterContainsServices,
    ClusterContainsTasks,
    ServiceNotFound,
    ServiceNotActive,
    TargetNotFound,
    AttributeLimitExceeded,
    ResourceNotFound,
    ResourceInUse,
    ResourceExists,
    InvalidRequest,
    Server,
    UnknownOperation,
    Serialization,
    MissingAuthenticationToken,
    InvalidSignature,
    UnrecognizedClient,
    IncompleteSignature,
}

impl ErrorType {
    pub fn name(self) -> &'static str {
        match self {
            Self::Client => "ClientException",
            Self::InvalidParameter => "InvalidParameterException",
            Self::ClusterNotFound => "ClusterNotFoundException",
            Self::ClusterContainsContainerInstances => "ClusterContainsContainerInstancesException",
            Self::ClusterContainsServices => "ClusterContainsServicesException",
            Self::ClusterContainsTasks => "ClusterContainsTasksException",
            Self::ServiceNotFound => "ServiceNotFoundException",
            Self::ServiceNotActive => "ServiceNotActiveException",
            Self::TargetNotFound => "TargetNotFoundException",
            Self::AttributeLimitExceeded => "AttributeLimitExceededException",
            Self::ResourceNotFound => "ResourceNotFoundException",
            Self::ResourceInUse => "ResourceInUseException",
            Self::ResourceExists => "ResourceExistsException",
            Self::InvalidRequest => "InvalidRequestException",
            Self::Server => "ServerException",
            Self::UnknownOperation => "UnknownOperationException",
            Self::Serialization => "SerializationException",
            Self::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            Self::InvalidSignature => "InvalidSignatureException",
            Self::UnrecognizedClient => "UnrecognizedClientException",
            Self::IncompleteSignature => "IncompleteSignatureException",
        }
    }

    pub fn status(self) -> u16 {
        match self {
            Self::Server => 500,
            Self::MissingAuthenticationToken
            | Self::InvalidSignature
            | Self::UnrecognizedClient
            | Self::IncompleteSignature => 403,
            _ => 400,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub kind: ErrorType,
    pub message: String,
}

impl ApiError {
    pub fn new(kind: ErrorType, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorType::InvalidParameter, message)
    }

    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({ "__type": self.kind.name(), "message": self.message })
    }
}

impl From<StateError> for ApiError {
    fn from(e: StateError) -> Self {
        let kind = match &e {
            StateError::ClusterNotFound(_) => ErrorType::ClusterNotFound,
            StateError::InvalidParameter(_) => ErrorType::InvalidParameter,
            StateError::Client(_) => ErrorType::Client,
            StateError::ClusterContainsContainerInstances { .. } => {
                ErrorType::ClusterContainsContainerInstances
            }
            StateError::ClusterContainsServices { .. } => ErrorType::ClusterContainsServices,
            StateError::ClusterContainsTasks { .. } => ErrorType::ClusterContainsTasks,
            StateError::ServiceNotFound(_) => ErrorType::ServiceNotFound,
            StateError::ServiceNotActive(_) => ErrorType::ServiceNotActive,
            StateError::TargetNotFound(_) => ErrorType::TargetNotFound,
            StateError::AttributeLimitExceeded(_) => ErrorType::AttributeLimitExceeded,
            StateError::ResourceNotFound(_) => ErrorType::ResourceNotFound,
            StateError::ResourceInUse(_) => ErrorType::ResourceInUse,
            StateError::Store(_) | StateError::Corrupt { .. } => {
                tracing::error!(error = %e, "request failed inside the control plane");
                ErrorType::Server
            }
        };
        Self::new(kind, e.to_string())
    }
}

impl From<super::sigv4::SigV4Error> for ApiError {
    fn from(e: super::sigv4::SigV4Error) -> Self {
        let kind = match e.aws_error_type() {
            "MissingAuthenticationTokenException" => ErrorType::MissingAuthenticationToken,
            "UnrecognizedClientException" => ErrorType::UnrecognizedClient,
            "IncompleteSignatureException" => ErrorType::IncompleteSignature,
            _ => ErrorType::InvalidSignature,
        };
        Self::new(kind, e.message())
    }
}

/// Turns a request-body decoding failure into the error AWS gives: bad JSON is
/// a `SerializationException`, a missing or mistyped member an
/// `InvalidParameterException` naming the member.
pub fn from_json_error(op: &str, e: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => ApiError::new(
            ErrorType::Serialization,
            format!("The request body of {op} is not valid JSON: {e}."),
        ),
        Category::Data => {
            let text = e.to_string();
            let text = text.split(" at line ").next().unwrap_or(&text);
            let message = match text.strip_prefix("missing field `") {
                Some(rest) => format!(
                    "Missing required parameter in {op} input: \"{}\".",
                    rest.trim_end_matches('`')
                ),
                None => format!("Invalid {op} input: {text}."),
            };
            ApiError::invalid(message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_errors_map_to_ecs_types() {
        let e: ApiError = StateError::ClusterNotFound("x".into()).into();
        assert_eq!(
            (e.kind.name(), e.kind.status()),
            ("ClusterNotFoundException", 400)
        );
        assert!(e.message.contains("'x'"));
        let e: ApiError = StateError::Client("nope".into()).into();
        assert_eq!(e.body()["__type"], "ClientException");
        assert_eq!(ErrorType::InvalidSignature.status(), 403);
        let e: ApiError = StateError::ClusterContainsTasks {
            cluster: "web".into(),
            count: 2,
        }
        .into();
        assert_eq!(e.kind.name(), "ClusterContainsTasksException");
        assert!(e.message.contains("StopTask"), "{}", e.message);
        assert_eq!(ErrorType::Server.status(), 500);
    }

    #[test]
    fn json_errors_name_the_problem() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct In {
            family: String,
        }
        let e = serde_json::from_slice::<In>(b"{").unwrap_err();
        assert_eq!(from_json_error("Op", &e).kind, ErrorType::Serialization);
        let e = serde_json::from_slice::<In>(b"{}").unwrap_err();
        let api = from_json_error("RegisterTaskDefinition", &e);
        assert_eq!(api.kind, ErrorType::InvalidParameter);
        assert_eq!(
            api.message,
            "Missing required parameter in RegisterTaskDefinition input: \"family\"."
        );
        let e = serde_json::from_slice::<In>(br#"{"family": 3}"#).unwrap_err();
        assert!(from_json_error("Op", &e).message.contains("invalid type"));
    }
}
