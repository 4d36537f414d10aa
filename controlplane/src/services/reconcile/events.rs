//! The service events' wording, as ECS writes them.

pub fn unable_to_place(service: &str) -> String {
    format!("(service {service}) was unable to place a task because no container instance met all of its requirements. Reason: No Container Instances were found in your cluster. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide.")
}

pub fn started(service: &str, task_ids: &[String]) -> String {
    let list: Vec<String> = task_ids.iter().map(|id| format!("(task {id})")).collect();
    format!(
        "(service {service}) has started {} tasks: {}.",
        task_ids.len(),
        list.join(" ")
    )
}

pub fn steady_state(service: &str) -> String {
    format!("(service {service}) has reached a steady state.")
}

/// ECS's event when its service throttle holds restarts back.
pub fn throttled(service: &str) -> String {
    format!("(service {service}) is unable to consistently start tasks successfully.")
}
