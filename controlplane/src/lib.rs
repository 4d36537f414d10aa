//! berth-controlplane: cluster state, the ECS-compatible API and agent sessions.

pub mod agents;
pub mod api;
pub mod model;
pub mod scheduler;
pub mod services;
pub mod state;
pub mod store;
