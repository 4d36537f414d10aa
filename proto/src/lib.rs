//! Generated protobuf types and gRPC stubs for the agent <-> control-plane API.

#[allow(clippy::pedantic, missing_docs)]
pub mod v1 {
    tonic::include_proto!("berth.agent.v1");
}

/// The version of `berth.agent.v1` this build speaks. Raised whenever an agent and a
/// control plane of different builds could misread each other; both refuse a peer of
/// another version at `Register`, before any task is sent, so a host keeps running what it
/// runs until the older side is upgraded.
/// - 1: statuses, stop codes, protocols and dependency conditions as strings (no field).
/// - 2: as enums.
pub const PROTOCOL_VERSION: u32 = 2;

pub mod agent_cert;
pub mod convert;
pub mod join_token;
