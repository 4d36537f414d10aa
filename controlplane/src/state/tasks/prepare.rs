//! A launch request (`RunTask`, `StartTask`, a service's tasks) checked against its
//! cluster and task definition, overrides applied: what each of its tasks is made from.

use super::super::{ControlPlane, State, StateError};
use super::capacity::Capacity;
use crate::model::placement::{PlacementConstraint, PlacementStrategy};
use crate::model::ports::{self, HostPort};
use crate::model::{
    Cluster, ContainerDefinition, LaunchType, Resources, Task, TaskDefinition, TaskDefinitionStatus,
};
use crate::state::ItemFailure;

/// What every new task is made from, however it is placed.
#[derive(Debug, Clone)]
pub struct TaskLaunch {
    pub cluster: String,
    pub task_definition: String,
    pub started_by: Option<String>,
    pub group: Option<String>,
    pub container_overrides: Vec<ContainerOverride>,
    pub cpu: Option<i64>,
    pub memory_mib: Option<i64>,
    /// `overrides` as given, echoed back by `DescribeTasks`.
    pub overrides: serde_json::Value,
    pub tags: Vec<(String, String)>,
    pub enable_execute_command: bool,
    /// Applied in order, as ECS chains them; empty: spread by memory.
    pub placement_strategy: Vec<PlacementStrategy>,
    pub placement_constraints: Vec<PlacementConstraint>,
    /// `propagateTags` `TASK_DEFINITION`: the task also gets its task definition's tags
    /// (those given with the launch win).
    pub propagate_task_definition_tags: bool,
    /// `enableECSManagedTags`: the task gets `aws:ecs:clusterName`.
    pub ecs_managed_tags: bool,
}

/// A validated `RunTask` request.
#[derive(Debug, Clone)]
pub struct RunTask {
    pub launch: TaskLaunch,
    pub count: usize,
    pub capacity: Capacity,
    /// `clientToken`: a retry of the same request gets the same tasks.
    pub client_token: Option<crate::state::client_tokens::ClientToken>,
}

/// A validated `StartTask` request: one task per named instance.
#[derive(Debug, Clone)]
pub struct StartTask {
    pub launch: TaskLaunch,
    /// Container-instance ids or ARNs, in the cluster of `launch`.
    pub container_instances: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct ContainerOverride {
    pub name: String,
    pub command: Option<Vec<String>>,
    pub environment: Vec<(String, String)>,
    pub cpu: Option<i64>,
    pub memory_mib: Option<i64>,
    pub memory_reservation_mib: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct RunTaskOutcome {
    pub tasks: Vec<Task>,
    pub failures: Vec<ItemFailure>,
}

fn apply_override(def: &ContainerDefinition, o: Option<&ContainerOverride>) -> ContainerDefinition {
    let mut c = def.clone();
    if let Some(o) = o {
        if let Some(cmd) = &o.command {
            c.command.clone_from(cmd);
        }
        for (k, v) in &o.environment {
            c.environment.retain(|(ek, _)| ek != k);
            c.environment.push((k.clone(), v.clone()));
        }
        c.cpu = o.cpu.unwrap_or(c.cpu);
        c.memory_mib = o.memory_mib.or(c.memory_mib);
        c.memory_reservation_mib = o.memory_reservation_mib.or(c.memory_reservation_mib);
    }
    c
}

/// What a task reserves on its instance: the task-level size when set, else
/// the sum over containers.
fn requirement(
    cpu: Option<i64>,
    memory: Option<i64>,
    containers: &[ContainerDefinition],
) -> Resources {
    Resources {
        cpu: cpu.unwrap_or_else(|| containers.iter().map(|c| c.cpu).sum()),
        memory_mib: memory.unwrap_or_else(|| {
            containers
                .iter()
                .map(ContainerDefinition::reserved_memory_mib)
                .sum()
        }),
    }
}

fn supports(td: &TaskDefinition, launch_type: LaunchType) -> bool {
    match launch_type {
        LaunchType::Ec2 | LaunchType::External => true,
        LaunchType::Fargate => {
            td.network_mode == crate::model::NetworkMode::Awsvpc
                && td.cpu.zip(td.memory_mib).is_some()
        }
    }
}

/// The group `spread` and `distinctInstance` count a task in: the caller's
/// `group`, else `family:NAME` as in ECS.
pub(super) fn task_group(p: &Prepared, launch: &TaskLaunch) -> String {
    launch
        .group
        .clone()
        .unwrap_or_else(|| format!("family:{}", p.td.family))
}

/// A launch checked against the cluster and task definition, with
/// overrides applied: ready to become tasks.
pub(super) struct Prepared {
    pub(super) cluster: Cluster,
    pub(super) td: TaskDefinition,
    pub(super) containers: Vec<ContainerDefinition>,
    pub(super) cpu: Option<i64>,
    pub(super) memory_mib: Option<i64>,
    pub(super) need: Resources,
    /// Static host ports the task takes on its instance.
    pub(super) host_ports: Vec<HostPort>,
    pub(super) launch_type: LaunchType,
    /// Set when a capacity provider strategy placed the task.
    pub(super) capacity_provider: Option<String>,
}

pub(super) fn prepare(
    state: &State,
    launch: &TaskLaunch,
    launch_type: LaunchType,
) -> Result<Prepared, StateError> {
    let cluster = ControlPlane::cluster(state, &launch.cluster)?.clone();
    let td = ControlPlane::resolve_task_definition(state, &launch.task_definition)
        .map_err(|_| {
            StateError::InvalidParameter(format!(
                "TaskDefinition not found: '{}'. Register it first, or check the family and revision.",
                launch.task_definition
            ))
        })?
        .clone();
    if td.status != TaskDefinitionStatus::Active {
        return Err(StateError::InvalidParameter(format!(
            "TaskDefinition is inactive: '{}' is {}; run an ACTIVE revision.",
            td.arn, td.status
        )));
    }
    if !supports(&td, launch_type) {
        return Err(StateError::InvalidParameter(format!(
            "Task definition does not support launch_type {}: it needs networkMode awsvpc and task-level cpu and memory.",
            launch_type.as_str()
        )));
    }
    for o in &launch.container_overrides {
        if !td.containers.iter().any(|c| c.name == o.name) {
            return Err(StateError::InvalidParameter(format!(
                "containerOverrides names container '{}', which is not in task definition {}.",
                o.name, td.arn
            )));
        }
    }
    let containers: Vec<ContainerDefinition> = td
        .containers
        .iter()
        .map(|c| {
            apply_override(
                c,
                launch.container_overrides.iter().find(|o| o.name == c.name),
            )
        })
        .collect();
    let cpu = launch.cpu.or(td.cpu);
    let memory_mib = launch.memory_mib.or(td.memory_mib);
    let need = requirement(cpu, memory_mib, &containers);
    let host_ports = ports::static_host_ports(&containers, td.network_mode);
    Ok(Prepared {
        cluster,
        td,
        containers,
        cpu,
        memory_mib,
        need,
        host_ports,
        launch_type,
        capacity_provider: None,
    })
}
