//! berth-aws: the AWS edge the control plane and the `berth` CLI share. SigV4 (signing and
//! verification, one canonical request), the AWS protocols (JSON 1.0 and 1.1, query with
//! XML responses, JSON 1.0 in query-compatible mode), one error type rendered per protocol,
//! and the routing of a request to the service it is for. Each AWS service Berth serves is
//! an `AwsService` living in the control plane; adding one is a module and one line in its
//! list of services.

pub mod edge;
pub mod error;
pub mod query;
pub mod service;
pub mod sigv4;
pub mod ssm_channel;
mod xml;

pub use edge::{Edge, HttpRequest};
pub use error::AwsError;
pub use query::QueryParams;
pub use service::{
    AwsService, Call, Input, JsonProtocol, JsonVersion, Protocol, QueryProtocol, ServiceInfo,
};
