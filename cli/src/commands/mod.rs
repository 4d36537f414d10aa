//! One module per `berth` command; each takes its parsed arguments and does the job.

pub mod join_token;
pub mod logs;
pub mod repo;
pub mod tasks;
pub mod wait;
