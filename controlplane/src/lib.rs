//! berth-controlplane: cluster state, the ECS-compatible API and agent sessions.

pub mod agents;
pub mod agent_tls;
pub mod api;
pub mod join_tokens;
pub mod model;
pub mod pki;
pub mod scheduler;
pub mod services;
pub mod state;
pub mod store;
