//! A container instance: one agent's host, registered into one cluster.

use serde::{Deserialize, Serialize};

/// CPU units (1024 per core) and memory in MiB, as ECS counts them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    pub cpu: i64,
    pub memory_mib: i64,
}

impl Resources {
    pub fn saturating_sub(self, other: Resources) -> Resources {
        Resources {
            cpu: self.cpu - other.cpu,
            memory_mib: self.memory_mib - other.memory_mib,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerInstance {
    pub arn: String,
    pub id: String,
    pub cluster: String,
    pub hostname: String,
    pub registered: Resources,
    /// The host also runs FARGATE tasks of any cluster.
    pub serves_fargate: bool,
    /// ACTIVE, DRAINING or INACTIVE.
    pub status: String,
    pub agent_version: String,
    pub registered_at_ms: i64,
    pub attributes: Vec<(String, String)>,
    /// Bumped on every change, as ECS's `version` field.
    pub version: i64,
}
