//! The errors of the services Berth serves (ECS, Secrets Manager, its own admin calls): the
//! one place where a failure gets its AWS error code and HTTP status. The edge
//! (`berth_aws::AwsError`) renders them in each protocol.

use berth_aws::AwsError;

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
    TaskSetNotFound,
    AttributeLimitExceeded,
    ResourceNotFound,
    ResourceInUse,
    ResourceExists,
    ResourceAlreadyExists,
    TooManyTags,
    MalformedQuery,
    InvalidRequest,
    Server,
    Conflict,
    /// CloudWatch Logs' internal failure.
    ServiceUnavailable,
    UnknownOperation,
    Serialization,
    /// SSM Parameter Store's errors.
    ParameterNotFound,
    ParameterAlreadyExists,
    ParameterVersionNotFound,
    HierarchyLevelLimitExceeded,
    InvalidFilterKey,
    Validation,
    InternalServerError,
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
            Self::TaskSetNotFound => "TaskSetNotFoundException",
            Self::AttributeLimitExceeded => "AttributeLimitExceededException",
            Self::ResourceNotFound => "ResourceNotFoundException",
            Self::ResourceInUse => "ResourceInUseException",
            Self::ResourceExists => "ResourceExistsException",
            Self::ResourceAlreadyExists => "ResourceAlreadyExistsException",
            Self::TooManyTags => "TooManyTagsException",
            Self::MalformedQuery => "MalformedQueryException",
            Self::InvalidRequest => "InvalidRequestException",
            Self::Server => "ServerException",
            Self::Conflict => "ConflictException",
            Self::ServiceUnavailable => "ServiceUnavailableException",
            Self::UnknownOperation => "UnknownOperationException",
            Self::Serialization => "SerializationException",
            Self::ParameterNotFound => "ParameterNotFound",
            Self::ParameterAlreadyExists => "ParameterAlreadyExists",
            Self::ParameterVersionNotFound => "ParameterVersionNotFound",
            Self::HierarchyLevelLimitExceeded => "HierarchyLevelLimitExceededException",
            Self::InvalidFilterKey => "InvalidFilterKey",
            Self::Validation => "ValidationException",
            Self::InternalServerError => "InternalServerError",
        }
    }

    pub fn status(self) -> u16 {
        match self {
            Self::Server | Self::ServiceUnavailable | Self::InternalServerError => 500,
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
}

impl From<ApiError> for AwsError {
    fn from(e: ApiError) -> Self {
        AwsError::new(e.kind.name(), e.kind.status(), e.message)
    }
}

impl From<StateError> for ApiError {
    fn from(e: StateError) -> Self {
        let kind = match &e {
            StateError::ClusterNotFound(_) => ErrorType::ClusterNotFound,
            StateError::InvalidParameter(_) => ErrorType::InvalidParameter,
            StateError::Client(_) => ErrorType::Client,
            StateError::Conflict(_) => ErrorType::Conflict,
            StateError::ClusterContainsContainerInstances { .. } => {
                ErrorType::ClusterContainsContainerInstances
            }
            StateError::ClusterContainsServices { .. } => ErrorType::ClusterContainsServices,
            StateError::ClusterContainsTasks { .. } => ErrorType::ClusterContainsTasks,
            StateError::ServiceNotFound(_) => ErrorType::ServiceNotFound,
            StateError::ServiceNotActive(_) => ErrorType::ServiceNotActive,
            StateError::TargetNotFound(_) => ErrorType::TargetNotFound,
            StateError::TaskSetNotFound(_) => ErrorType::TaskSetNotFound,
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
        let e: AwsError = ApiError::from(StateError::Client("nope".into())).into();
        assert_eq!((e.code.as_ref(), e.status), ("ClientException", 400));
        let e: ApiError = StateError::ClusterContainsTasks {
            cluster: "web".into(),
            count: 2,
        }
        .into();
        assert_eq!(e.kind.name(), "ClusterContainsTasksException");
        assert!(e.message.contains("StopTask"), "{}", e.message);
        assert_eq!(ErrorType::Server.status(), 500);
    }
}
