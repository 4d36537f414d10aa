//! Task metadata endpoint v4 (`ECS_CONTAINER_METADATA_URI_V4`): a registry the supervisors keep current, served over HTTP on the task bridge's gateway to each task alone.

mod registry;
mod render;
mod server;
mod stats;

#[cfg(test)]
mod tests;

pub use registry::{
    ContainerMetadata, HealthMetadata, Lookup, MetadataRegistry, TaskMetadata, TaskNetwork,
};
pub use server::{handle, start, Reply, Resource};
pub use stats::{read_cgroup, CgroupStats};

/// ECS's port for the task metadata endpoint.
pub const DEFAULT_PORT: u16 = 51679;

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// The endpoint's address could not be bound.
    #[error("could not listen on {addr} for the task metadata endpoint: {source}")]
    Bind {
        addr: std::net::SocketAddrV4,
        source: std::io::Error,
    },
}
