//! berth-agent: runs the tasks the control plane places on this host.

pub mod awslogs;
pub mod cgroups;
pub mod clock;
pub mod config;
pub mod engine;
pub mod exec;
pub mod firelens;
pub mod ipam;
pub mod local_state;
pub mod log_driver;
pub mod metadata;
pub mod model;
pub mod network;
pub mod runtime;
pub mod session;
pub mod tasks;
pub mod tls;
