//! `ExecuteCommand`: opens an ECS Exec session on a running container of a task started
//! with `enableExecuteCommand`, answered as ECS does (`session` with `sessionId`,
//! `streamUrl` and `tokenValue`), with ECS's refusals.

use serde::Deserialize;
use serde_json::{json, Value};

use super::ApiError;
use crate::api::error::ErrorType;
use crate::exec::{audit, ExecSessions, ExecTarget};
use crate::state::ControlPlane;
use berth_ecs::{ContainerStatus, TaskStatus};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Input {
    cluster: Option<String>,
    container: Option<String>,
    command: String,
    interactive: bool,
    task: String,
}

/// ECS's words when the task cannot be reached by ECS Exec.
const NOT_ENABLED: &str = "The execute command failed because execute command was not enabled \
     when the task was run or the execute command agent isn't running. Wait and try again or \
     run a new task with execute command enabled and try again.";

pub(super) fn execute(
    cp: &ControlPlane,
    sessions: &ExecSessions,
    host: &str,
    caller: &str,
    req: &Input,
) -> Result<Value, ApiError> {
    if !req.interactive {
        return Err(ApiError::invalid(
            "Interactive is the only mode supported currently.",
        ));
    }
    let args = shlex::split(&req.command)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "The command {:?} is empty or has an unterminated quote.",
                req.command
            ))
        })?;
    let cluster = req.cluster.as_deref().unwrap_or("default");
    let (mut tasks, _) = cp.describe_tasks(cluster, std::slice::from_ref(&req.task))?;
    let task = tasks.pop().ok_or_else(|| {
        ApiError::invalid(format!(
            "The task {} was not found in cluster {cluster}.",
            req.task
        ))
    })?;
    if !task.enable_execute_command {
        return Err(ApiError::invalid(NOT_ENABLED));
    }
    if task.last_status != TaskStatus::Running {
        return Err(ApiError::invalid(format!(
            "The execute command failed because the task {} is {}, not RUNNING.",
            task.id, task.last_status
        )));
    }
    let container = match (&req.container, task.containers.as_slice()) {
        (None, [only]) => only,
        (None, _) => {
            return Err(ApiError::invalid(
                "The task has more than one container: name the container to run the command in.",
            ))
        }
        (Some(name), all) => all
            .iter()
            .find(|c| &c.definition.name == name)
            .ok_or_else(|| {
                ApiError::invalid(format!(
                    "The container {name} is not part of task {}.",
                    task.id
                ))
            })?,
    };
    if container.last_status != ContainerStatus::Running || container.runtime_id.is_none() {
        return Err(ApiError::invalid(format!(
            "The execute command failed because container {} is {}, not RUNNING.",
            container.definition.name, container.last_status
        )));
    }
    let instance_arn = task.container_instance_arn.clone().ok_or_else(|| {
        ApiError::new(
            ErrorType::Client,
            "The task is not placed on a container instance.",
        )
    })?;
    let (clusters, _) = cp.describe_clusters("", std::slice::from_ref(&task.cluster));
    let configuration = clusters.first().and_then(|(c, _)| c.configuration.as_ref());
    let log = audit::destination(
        configuration,
        container.definition.options.log_configuration.as_ref(),
    );
    let target = ExecTarget {
        cluster: task.cluster.clone(),
        cluster_arn: task.cluster_arn.clone(),
        task_arn: task.arn.clone(),
        task_id: task.id.clone(),
        container: container.definition.name.clone(),
        instance_arn,
        command: req.command.clone(),
        args,
        caller: caller.to_owned(),
        group: task.group.clone(),
        log,
    };
    let (session_id, token) = sessions.open(target);
    tracing::info!(target: "berth::audit", session = %session_id, caller, task = %task.arn, container = %container.definition.name, command = %req.command, "execute-command session opened");
    Ok(json!({
        "clusterArn": task.cluster_arn,
        "containerArn": container.arn,
        "containerName": container.definition.name,
        "interactive": true,
        "session": {
            "sessionId": session_id,
            "streamUrl": sessions.stream_url(host, &session_id),
            "tokenValue": token,
        },
        "taskArn": task.arn,
    }))
}
