//! Statuses as the ECS API reports them in JSON, read into ECS's vocabulary
//! (`berth_ecs`): None for a missing member or a value this CLI does not know.

use berth_ecs::{DesiredStatus, ServiceStatus, TaskStatus};
use serde_json::Value;

/// A task's `lastStatus`.
pub fn last_status(task: &Value) -> Option<TaskStatus> {
    task["lastStatus"].as_str().and_then(TaskStatus::parse)
}

/// A task's `desiredStatus`.
pub fn desired_status(task: &Value) -> Option<DesiredStatus> {
    task["desiredStatus"]
        .as_str()
        .and_then(DesiredStatus::parse)
}

/// A service's `status`.
pub fn service_status(service: &Value) -> Option<ServiceStatus> {
    service["status"].as_str().and_then(ServiceStatus::parse)
}
