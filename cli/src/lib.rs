//! The ECS API client the `berth` command is built on, also used by the
//! end-to-end benchmarks: `aws.env` loading, `SigV4` signing, JSON 1.1 calls.

pub mod client;
pub mod config;
pub mod exec_session;
pub mod status;
