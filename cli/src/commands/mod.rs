//! One module per `berth` command; each takes its parsed arguments and does the job.

pub mod exec;
pub mod instance;
pub mod join_token;
pub mod logs;
pub mod repo;
pub mod services;
pub mod tasks;
pub mod wait;
pub mod wait_service;

/// The wall clock, for the tables' ages.
fn now_unix() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
