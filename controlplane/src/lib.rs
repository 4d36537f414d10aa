//! berth-controlplane: cluster state, the ECS-compatible API and agent sessions.

pub mod acm;
pub mod agent_tls;
pub mod agents;
pub mod api;
pub mod api_tls;
pub mod cluster_tls;
pub mod exec;
#[cfg(test)]
mod fuzz_tests;
pub mod join_tokens;
pub mod lb;
pub mod logs;
pub mod model;
pub mod parameters;
pub mod pki;
pub mod scheduler;
pub mod sealing;
pub mod secrets;
pub mod services;
pub mod state;
pub mod store;
pub mod tls_accept;
