//! Services, in one tree: keep N copies of a task definition running and roll
//! deployments. `reconcile` decides (pure: a service, its tasks and the fleet in, steps
//! out), `hosts` says which instances are lost or draining, `commands` holds the API's
//! create/describe/update/delete, and `apply` carries the reconciler's steps out through
//! the store and the `RunTask` path (placement of service tasks included).

mod apply;
mod commands;
pub mod hosts;
pub mod load_balancers;
mod notes;
mod reconcile;
mod rollback;
mod task_sets;

#[cfg(test)]
mod placement_tests;
#[cfg(test)]
mod test_support;

pub use commands::{ServiceSpec, ServiceUpdate};
pub use hosts::{Fleet, InstanceCondition};
pub use reconcile::{
    apply_to_service, is_healthy, reconcile, refresh_counts, started, steady_state, throttled,
    unable_to_place, Step, SCHEDULER_STOP_CODE,
};
pub use task_sets::TaskSetSpec;
