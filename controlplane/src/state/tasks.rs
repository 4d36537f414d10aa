//! Task commands: run (with placement), describe, list, stop.

use super::{encode, ControlPlane, ItemFailure, State, StateError};
use crate::model::{
    arn, ContainerDefinition, LaunchType, Resources, Task, TaskContainer, TaskDefinition,
};
use crate::scheduler::{self, Candidate};
use crate::store::{Table, Write};

/// A validated `RunTask` request.
#[derive(Debug, Clone)]
pub struct RunTask {
    pub cluster: String,
    pub task_definition: String,
    pub count: usize,
    pub launch_type: LaunchType,
    pub started_by: Option<String>,
    pub group: Option<String>,
    /// Per-container overrides, already resolved: (name, apply fn inputs).
    pub container_overrides: Vec<ContainerOverride>,
    pub cpu: Option<i64>,
    pub memory_mib: Option<i64>,
    pub overrides: serde_json::Value,
    pub tags: Vec<(String, String)>,
    pub enable_execute_command: bool,
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

/// `ListTasks` filters.
#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    pub cluster: String,
    pub family: Option<String>,
    pub container_instance: Option<String>,
    pub started_by: Option<String>,
    /// RUNNING (the default) or STOPPED.
    pub desired_status: Option<String>,
    pub launch_type: Option<LaunchType>,
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

impl ControlPlane {
    #[allow(clippy::too_many_lines)] // validation, placement and the new task record, in order
    pub fn run_task(&self, req: &RunTask) -> Result<RunTaskOutcome, StateError> {
        if !(1..=10).contains(&req.count) {
            return Err(StateError::InvalidParameter(format!(
                "count must be between 1 and 10, got {}.",
                req.count
            )));
        }
        let mut state = self.lock();
        let cluster = Self::cluster(&state, &req.cluster)?.clone();
        let td = Self::resolve_task_definition(&state, &req.task_definition)
            .map_err(|_| {
                StateError::InvalidParameter(format!(
                    "TaskDefinition not found: '{}'. Register it first, or check the family and revision.",
                    req.task_definition
                ))
            })?
            .clone();
        if td.status != "ACTIVE" {
            return Err(StateError::InvalidParameter(format!(
                "TaskDefinition is inactive: '{}' is {}; run an ACTIVE revision.",
                td.arn, td.status
            )));
        }
        if !supports(&td, req.launch_type) {
            return Err(StateError::InvalidParameter(format!(
                "Task definition does not support launch_type {}: it needs networkMode awsvpc and task-level cpu and memory.",
                req.launch_type.as_str()
            )));
        }
        for o in &req.container_overrides {
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
            .map(|c| apply_override(c, req.container_overrides.iter().find(|o| o.name == c.name)))
            .collect();
        let cpu = req.cpu.or(td.cpu);
        let memory = req.memory_mib.or(td.memory_mib);
        let need = requirement(cpu, memory, &containers);

        let candidates = Self::candidates(&state, &cluster.name, req.launch_type);
        if candidates.is_empty() && req.launch_type != LaunchType::Fargate {
            return Err(StateError::InvalidParameter(format!(
                "No Container Instances were found in your cluster '{}'. Start a berth-agent for it.",
                cluster.name
            )));
        }
        let now = self.now();
        let mut tasks = Vec::new();
        let mut failures = Vec::new();
        for placed in scheduler::place(need, &candidates, req.count) {
            match placed {
                Ok(instance_arn) => {
                    let id = arn::new_id();
                    let task = Task {
                        arn: self.arns.task(&cluster.name, &id),
                        cluster: cluster.name.clone(),
                        cluster_arn: cluster.arn.clone(),
                        task_definition_arn: td.arn.clone(),
                        family: td.family.clone(),
                        revision: td.revision,
                        container_instance_arn: Some(instance_arn),
                        launch_type: req.launch_type,
                        network_mode: td.network_mode,
                        desired_status: "RUNNING".into(),
                        last_status: "PROVISIONING".into(),
                        cpu,
                        memory_mib: memory,
                        reserved: need,
                        containers: containers
                            .iter()
                            .map(|c| TaskContainer {
                                definition: c.clone(),
                                arn: self.arns.container(&cluster.name, &id, &arn::new_id()),
                                last_status: "PENDING".into(),
                                exit_code: None,
                                reason: None,
                                runtime_id: None,
                                image_digest: None,
                            })
                            .collect(),
                        started_by: req.started_by.clone(),
                        group: req
                            .group
                            .clone()
                            .or_else(|| Some(format!("family:{}", td.family))),
                        overrides: req.overrides.clone(),
                        tags: req.tags.clone(),
                        enable_execute_command: req.enable_execute_command,
                        created_at_ms: now,
                        pull_started_at_ms: None,
                        pull_stopped_at_ms: None,
                        started_at_ms: None,
                        stopping_at_ms: None,
                        stopped_at_ms: None,
                        execution_stopped_at_ms: None,
                        stop_code: None,
                        stopped_reason: None,
                        attachment_id: uuid::Uuid::new_v4().to_string(),
                        private_ipv4: None,
                        mac_address: None,
                        version: 1,
                        id,
                    };
                    tasks.push(task);
                }
                Err(fs) if fs.is_empty() => failures.push(ItemFailure {
                    arn: cluster.arn.clone(),
                    reason: "RESOURCE".into(),
                    detail: Some(format!(
                        "No container instance can run {} tasks now.",
                        req.launch_type.as_str()
                    )),
                }),
                Err(fs) => failures.extend(fs.into_iter().map(|f| ItemFailure {
                    arn: f.arn,
                    reason: f.reason.into(),
                    detail: None,
                })),
            }
        }
        let writes: Vec<Write> = tasks
            .iter()
            .map(|t| Write::put(Table::Tasks, t.id.clone(), encode(t)))
            .collect();
        if !writes.is_empty() {
            self.store.apply(&writes)?;
        }
        for t in &tasks {
            state.tasks.insert(t.id.clone(), t.clone());
        }
        Self::notify(
            &state,
            tasks
                .iter()
                .filter_map(|t| t.container_instance_arn.clone()),
        );
        Ok(RunTaskOutcome { tasks, failures })
    }

    /// Connected ACTIVE instances that may run a task of this cluster and launch type.
    fn candidates(state: &State, cluster: &str, launch_type: LaunchType) -> Vec<Candidate> {
        state
            .instances
            .values()
            .filter(|i| i.status == "ACTIVE" && state.sessions.contains_key(&i.arn))
            .filter(|i| match launch_type {
                LaunchType::Fargate => i.serves_fargate,
                LaunchType::Ec2 | LaunchType::External => i.cluster == cluster,
            })
            .map(|i| Candidate {
                arn: i.arn.clone(),
                remaining: Self::remaining(state, &i.arn, i.registered),
            })
            .collect()
    }

    pub(super) fn remaining(state: &State, instance_arn: &str, registered: Resources) -> Resources {
        state
            .tasks
            .values()
            .filter(|t| {
                t.container_instance_arn.as_deref() == Some(instance_arn) && !t.is_stopped()
            })
            .fold(registered, |left, t| left.saturating_sub(t.reserved))
    }

    /// Looks tasks up by id or ARN within a cluster.
    pub fn describe_tasks(
        &self,
        cluster: &str,
        tasks: &[String],
    ) -> Result<(Vec<Task>, Vec<ItemFailure>), StateError> {
        let state = self.lock();
        let cluster = Self::cluster(&state, cluster)?;
        let mut found = Vec::new();
        let mut failures = Vec::new();
        for t in tasks {
            let id = arn::resource_id(t);
            match state
                .tasks
                .get(id)
                .filter(|task| task.cluster == cluster.name)
            {
                Some(task) => found.push(task.clone()),
                None => failures.push(ItemFailure {
                    arn: if t.starts_with("arn:") {
                        t.clone()
                    } else {
                        self.arns.task(&cluster.name, id)
                    },
                    reason: "MISSING".into(),
                    detail: None,
                }),
            }
        }
        Ok((found, failures))
    }

    pub fn list_tasks(&self, filter: &TaskFilter) -> Result<Vec<String>, StateError> {
        let state = self.lock();
        let cluster = Self::cluster(&state, &filter.cluster)?;
        let desired = filter.desired_status.as_deref().unwrap_or("RUNNING");
        let mut tasks: Vec<&Task> = state
            .tasks
            .values()
            .filter(|t| t.cluster == cluster.name)
            .filter(|t| {
                if desired == "STOPPED" {
                    t.desired_status == "STOPPED"
                } else {
                    t.desired_status != "STOPPED"
                }
            })
            .filter(|t| filter.family.as_deref().is_none_or(|f| t.family == f))
            .filter(|t| {
                filter
                    .started_by
                    .as_deref()
                    .is_none_or(|s| t.started_by.as_deref() == Some(s))
            })
            .filter(|t| filter.launch_type.is_none_or(|l| t.launch_type == l))
            .filter(|t| {
                filter.container_instance.as_deref().is_none_or(|ci| {
                    t.container_instance_arn
                        .as_deref()
                        .is_some_and(|a| arn::resource_id(a) == arn::resource_id(ci))
                })
            })
            .collect();
        tasks.sort_by_key(|t| (t.created_at_ms, t.id.clone()));
        Ok(tasks.into_iter().map(|t| t.arn.clone()).collect())
    }

    /// Sets desired status STOPPED (stopCode `UserInitiated`) and wakes the agent.
    pub fn stop_task(
        &self,
        cluster: &str,
        task: &str,
        reason: Option<&str>,
    ) -> Result<Task, StateError> {
        let mut state = self.lock();
        let cluster = Self::cluster(&state, cluster)?.name.clone();
        let id = arn::resource_id(task).to_string();
        let mut t = state
            .tasks
            .get(&id)
            .filter(|t| t.cluster == cluster)
            .cloned()
            .ok_or_else(|| {
                StateError::InvalidParameter(format!(
                    "The referenced task was not found: '{task}' in cluster '{cluster}'."
                ))
            })?;
        let reason = reason
            .filter(|r| !r.is_empty())
            .unwrap_or("Task stopped by user");
        if t.request_stop("UserInitiated", reason, self.now()) {
            if t.container_instance_arn.is_none()
                || t.last_status == "PROVISIONING" && !Self::agent_connected(&state, &t)
            {
                // Never reached an agent: nothing runs, so it is stopped now.
                t.last_status = "STOPPED".into();
                t.stopped_at_ms = Some(self.now());
            }
            self.store
                .apply(&[Write::put(Table::Tasks, id.clone(), encode(&t))])?;
            state.tasks.insert(id, t.clone());
            Self::notify(&state, t.container_instance_arn.clone());
        }
        Ok(t)
    }

    fn agent_connected(state: &State, t: &Task) -> bool {
        t.container_instance_arn
            .as_ref()
            .is_some_and(|a| state.sessions.contains_key(a))
    }
}
