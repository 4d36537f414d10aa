//! Validated domain types for cluster state: what the API, scheduler and agent
//! sessions agree on. No wire types here.

pub mod arn;
pub mod capacity_provider;
pub mod cluster;
pub mod container_instance;
pub mod container_options;
pub mod firelens;
pub mod placement;
pub mod ports;
pub mod query;
pub mod secret_ref;
pub mod service;
pub mod service_deployment;
pub mod task;
pub mod task_definition;
pub mod task_set;

pub use arn::ArnContext;
pub use berth_ecs::{
    CapacityProviderStatus, CapacityProviderUpdateStatus, ClusterStatus, Connectivity,
    ContainerStatus, DesiredStatus, HealthStatus, InstanceStatus, StopCode, TaskDefinitionStatus,
    TaskStatus,
};
pub use capacity_provider::CapacityProvider;
pub use cluster::Cluster;
pub use container_instance::{Attribute, ContainerInstance, Resources};
pub use service::Service;
pub use task::{LaunchType, Task, TaskContainer};
pub use task_definition::{ContainerDefinition, NetworkMode, TaskDefinition, TaskDefinitionError};
