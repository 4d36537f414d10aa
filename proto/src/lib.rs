//! Generated protobuf types and gRPC stubs for the agent <-> control-plane API.

#[allow(clippy::pedantic, missing_docs)]
pub mod v1 {
    tonic::include_proto!("berth.agent.v1");
}

pub mod convert;
pub mod join_token;
