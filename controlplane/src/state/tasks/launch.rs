//! Creating tasks: `RunTask` (the scheduler picks instances) and
//! `StartTask` (the caller names them) share one path from request to
//! stored task.

use std::collections::HashMap;

use super::super::{client_tokens, encode, ControlPlane, ItemFailure, State, StateError};
use super::capacity::{plan, Pool};
use super::prepare::{prepare, task_group, Prepared};
pub use super::prepare::{ContainerOverride, RunTask, RunTaskOutcome, StartTask, TaskLaunch};
use crate::model::ports::HostPort;
use crate::model::{
    arn, ContainerStatus, DesiredStatus, HealthStatus, InstanceStatus, LaunchType, Resources, Task,
    TaskContainer, TaskStatus,
};
use crate::scheduler::{self, Candidate, TaskToPlace};
use crate::store::{Table, Write};

impl ControlPlane {
    pub fn run_task(&self, req: &RunTask) -> Result<RunTaskOutcome, StateError> {
        if !(1..=10).contains(&req.count) {
            return Err(StateError::InvalidParameter(format!(
                "count must be between 1 and 10, got {}.",
                req.count
            )));
        }
        let mut state = self.lock();
        let cluster = Self::cluster(&state, &req.launch.cluster)?.clone();
        let now_ms = self.now_ms();
        let token_key = req
            .client_token
            .as_ref()
            .map(|t| client_tokens::key("RunTask", &cluster.arn, &t.token));
        if let (Some(key), Some(token)) = (&token_key, &req.client_token) {
            if let Some(first) = client_tokens::replay(&state, key, token, now_ms)? {
                return Ok(first);
            }
        }
        let count = u32::try_from(req.count).unwrap_or(10);
        let shares = plan(&cluster, &req.capacity, count).map_err(StateError::InvalidParameter)?;
        let mut tasks = Vec::new();
        let mut failures = Vec::new();
        for (pool, n) in shares {
            let mut p = prepare(&state, &req.launch, pool.launch_type())?;
            p.capacity_provider = pool.provider().map(str::to_owned);
            // Shares go to disjoint host sets (a host is in one pool), so
            // each share's candidates see everything placed before it.
            let candidates = Self::candidates(&state, &cluster.name, &pool);
            if candidates.is_empty()
                && matches!(
                    pool,
                    Pool::LaunchType(LaunchType::Ec2 | LaunchType::External)
                )
            {
                return Err(StateError::InvalidParameter(format!(
                    "No Container Instances were found in your cluster '{}'. Start a berth-agent for it.",
                    cluster.name
                )));
            }
            let wanted = vec![
                TaskToPlace {
                    need: p.need,
                    group: task_group(&p, &req.launch),
                    host_ports: p.host_ports.clone(),
                };
                n as usize
            ];
            let placed = scheduler::place(
                &wanted,
                &candidates,
                &req.launch.placement_strategy,
                &req.launch.placement_constraints,
                &mut rand::rng(),
            );
            for placed in placed {
                match placed {
                    Ok(i) => tasks.push(self.new_task(&p, &req.launch, candidates[i].arn.clone())),
                    Err(fs) if fs.is_empty() => failures.push(ItemFailure {
                        arn: cluster.arn.clone(),
                        reason: "RESOURCE".into(),
                        detail: Some(match pool.provider() {
                            Some(provider) => format!(
                                "No container instance of capacity provider '{provider}' can run the task now."
                            ),
                            None => format!(
                                "No container instance can run {} tasks now.",
                                p.launch_type.as_str()
                            ),
                        }),
                    }),
                    Err(fs) => failures.extend(fs.into_iter().map(|f| ItemFailure {
                        arn: f.arn,
                        reason: f.reason.into(),
                        detail: None,
                    })),
                }
            }
        }
        match (token_key, &req.client_token) {
            (Some(key), Some(token)) => {
                let ids = tasks.iter().map(|t| t.id.clone()).collect();
                let (rec, writes) =
                    client_tokens::record(&state, &key, token, ids, &failures, now_ms);
                self.commit_tasks_with(&mut state, &tasks, writes)?;
                client_tokens::remember(&mut state, key, rec, now_ms);
            }
            _ => self.commit_tasks(&mut state, &tasks)?,
        }
        Ok(RunTaskOutcome { tasks, failures })
    }

    /// Starts one task on each named instance. An instance that cannot take
    /// it (unknown, not ACTIVE, agent away, too full) becomes a failure.
    pub fn start_task(&self, req: &StartTask) -> Result<RunTaskOutcome, StateError> {
        if !(1..=10).contains(&req.container_instances.len()) {
            return Err(StateError::InvalidParameter(format!(
                "containerInstances must name 1 to 10 instances, got {}.",
                req.container_instances.len()
            )));
        }
        let mut state = self.lock();
        let p = prepare(&state, &req.launch, LaunchType::Ec2)?;
        // Later tasks see what earlier ones of this request reserved.
        let mut named: HashMap<String, Candidate> = HashMap::new();
        let wanted = [TaskToPlace {
            need: p.need,
            group: task_group(&p, &req.launch),
            host_ports: p.host_ports.clone(),
        }];
        let mut tasks = Vec::new();
        let mut failures = Vec::new();
        for r in &req.container_instances {
            let id = arn::resource_id(r);
            let Some(i) = state
                .instances
                .values()
                .find(|i| i.id == id && i.cluster == p.cluster.name)
            else {
                failures.push(ItemFailure {
                    arn: self
                        .arns_of(&p.cluster.arn)
                        .container_instance(&p.cluster.name, id),
                    reason: "MISSING".into(),
                    detail: Some(format!(
                        "No container instance '{id}' in cluster '{}'.",
                        p.cluster.name
                    )),
                });
                continue;
            };
            if i.status != InstanceStatus::Active {
                failures.push(ItemFailure {
                    arn: i.arn.clone(),
                    reason: i.status.to_string(),
                    detail: Some(format!(
                        "The container instance is {}: only ACTIVE instances take new tasks (UpdateContainerInstancesState).",
                        i.status
                    )),
                });
                continue;
            }
            if !state.sessions.contains_key(&i.arn) {
                failures.push(ItemFailure {
                    arn: i.arn.clone(),
                    reason: "AGENT".into(),
                    detail: Some("The container instance's agent is not connected.".into()),
                });
                continue;
            }
            let candidate = named
                .entry(i.arn.clone())
                .or_insert_with(|| Self::candidate(&state, i));
            // The caller chose the instance: strategies have nothing to
            // choose between, but constraints still hold.
            let placed = scheduler::place(
                &wanted,
                std::slice::from_ref(candidate),
                &[],
                &req.launch.placement_constraints,
                &mut rand::rng(),
            );
            match placed.into_iter().next().expect("one task, one answer") {
                Ok(_) => {
                    candidate.remaining = candidate.remaining.saturating_sub(p.need);
                    candidate.task_groups.push(wanted[0].group.clone());
                    candidate.used_ports.extend(p.host_ports.iter().copied());
                    tasks.push(self.new_task(&p, &req.launch, i.arn.clone()));
                }
                Err(fs) => failures.extend(fs.into_iter().map(|f| ItemFailure {
                    arn: f.arn,
                    reason: f.reason.into(),
                    detail: None,
                })),
            }
        }
        self.commit_tasks(&mut state, &tasks)?;
        Ok(RunTaskOutcome { tasks, failures })
    }

    fn new_task(&self, p: &Prepared, launch: &TaskLaunch, instance_arn: String) -> Task {
        let id = arn::new_id();
        let arns = self.arns_of(&p.cluster.arn);
        Task {
            arn: arns.task(&p.cluster.name, &id),
            cluster: p.cluster.name.clone(),
            cluster_arn: p.cluster.arn.clone(),
            task_definition_arn: p.td.arn.clone(),
            family: p.td.family.clone(),
            revision: p.td.revision,
            container_instance_arn: Some(instance_arn),
            launch_type: p.launch_type,
            capacity_provider_name: p.capacity_provider.clone(),
            network_mode: p.td.network_mode,
            desired_status: DesiredStatus::Running,
            last_status: TaskStatus::Provisioning,
            cpu: p.cpu,
            memory_mib: p.memory_mib,
            reserved: p.need,
            containers: p
                .containers
                .iter()
                .map(|c| TaskContainer {
                    definition: c.clone(),
                    arn: arns.container(&p.cluster.name, &id, &arn::new_id()),
                    last_status: ContainerStatus::Pending,
                    exit_code: None,
                    reason: None,
                    runtime_id: None,
                    image_digest: None,
                    health_status: c.health_check.as_ref().map(|_| HealthStatus::Unknown),
                    network_bindings: vec![],
                })
                .collect(),
            started_by: launch.started_by.clone(),
            group: Some(task_group(p, launch)),
            placement_strategy: launch.placement_strategy.clone(),
            placement_constraints: launch.placement_constraints.clone(),
            overrides: launch.overrides.clone(),
            tags: task_tags(p, launch),
            enable_execute_command: launch.enable_execute_command,
            created_at_ms: self.now_ms(),
            protected_until_ms: None,
            drain_until_ms: None,
            target_health: None,
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
            health_status: Some(HealthStatus::Unknown),
            volumes: p.td.volumes.clone(),
            id,
        }
    }

    /// Stores new tasks in one batch, then wakes the agents that run them.
    fn commit_tasks(&self, state: &mut State, tasks: &[Task]) -> Result<(), StateError> {
        self.commit_tasks_with(state, tasks, Vec::new())
    }

    /// Stores the tasks with `also` in one commit, then makes them known.
    fn commit_tasks_with(
        &self,
        state: &mut State,
        tasks: &[Task],
        also: Vec<Write>,
    ) -> Result<(), StateError> {
        let writes: Vec<Write> = tasks
            .iter()
            .map(|t| Write::put(Table::Tasks, t.id.clone(), encode(t)))
            .chain(also)
            .collect();
        if !writes.is_empty() {
            self.store.apply(&writes)?;
        }
        for t in tasks {
            state.tasks.insert(t.id.clone(), t.clone());
        }
        Self::notify(
            state,
            tasks
                .iter()
                .filter_map(|t| t.container_instance_arn.clone()),
        );
        Ok(())
    }

    /// Connected ACTIVE instances of the pool that may run a task of this
    /// cluster. DRAINING and INACTIVE instances get no new tasks.
    fn candidates(state: &State, cluster: &str, pool: &Pool) -> Vec<Candidate> {
        let mut candidates: Vec<Candidate> = state
            .instances
            .values()
            .filter(|i| i.status == InstanceStatus::Active && state.sessions.contains_key(&i.arn))
            .filter(|i| match pool {
                Pool::LaunchType(LaunchType::Fargate) => i.serves_fargate(),
                // Every instance of the cluster, whatever pool it is in, as
                // ECS places EC2 tasks on any registered instance.
                Pool::LaunchType(LaunchType::Ec2 | LaunchType::External) => i.cluster == cluster,
                Pool::Provider(p) => i.serves_provider(p, cluster),
            })
            .map(|i| Candidate {
                arn: i.arn.clone(),
                remaining: i.registered,
                attributes: i.all_attributes(),
                task_groups: Vec::new(),
                used_ports: i.reserved_ports.clone(),
            })
            .collect();
        // One pass over the tasks for every candidate's load.
        let index: HashMap<&str, usize> = candidates
            .iter()
            .enumerate()
            .map(|(n, c)| (c.arn.as_str(), n))
            .collect();
        let mut load: Vec<(Resources, Vec<String>, Vec<HostPort>)> =
            vec![(Resources::default(), Vec::new(), Vec::new()); candidates.len()];
        for t in state.tasks.values().filter(|t| !t.is_stopped()) {
            if let Some(&n) = t
                .container_instance_arn
                .as_deref()
                .and_then(|a| index.get(a))
            {
                load[n].0.cpu += t.reserved.cpu;
                load[n].0.memory_mib += t.reserved.memory_mib;
                load[n].1.extend(t.group.clone());
                load[n].2.extend(t.host_ports());
            }
        }
        for (c, (used, groups, ports)) in candidates.iter_mut().zip(load) {
            c.remaining = c.remaining.saturating_sub(used);
            c.task_groups = groups;
            c.used_ports.extend(ports);
        }
        candidates
    }

    /// One instance as placement (and the query language) sees it.
    pub(crate) fn candidate(state: &State, i: &crate::model::ContainerInstance) -> Candidate {
        let on_it = || {
            state.tasks.values().filter(|t| {
                t.container_instance_arn.as_deref() == Some(i.arn.as_str()) && !t.is_stopped()
            })
        };
        Candidate {
            arn: i.arn.clone(),
            remaining: Self::remaining(state, &i.arn, i.registered),
            attributes: i.all_attributes(),
            task_groups: on_it().filter_map(|t| t.group.clone()).collect(),
            used_ports: Self::used_ports(state, i),
        }
    }
}

/// A new task's tags: the launch's, then (if asked) its task definition's and the tags
/// ECS manages, as ECS adds them.
fn task_tags(p: &Prepared, launch: &TaskLaunch) -> Vec<(String, String)> {
    let mut tags = launch.tags.clone();
    if launch.propagate_task_definition_tags {
        for (k, v) in &p.td.tags {
            if !tags.iter().any(|(have, _)| have == k) {
                tags.push((k.clone(), v.clone()));
            }
        }
    }
    if launch.ecs_managed_tags {
        tags.push((MANAGED_CLUSTER_TAG.to_owned(), p.cluster.name.clone()));
    }
    tags
}

/// The tags `enableECSManagedTags` adds (ECS's names).
pub const MANAGED_CLUSTER_TAG: &str = "aws:ecs:clusterName";
pub const MANAGED_SERVICE_TAG: &str = "aws:ecs:serviceName";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::test_support::{add_instance, control_plane, fleet, register_web, run};

    fn start(instances: &[&str]) -> StartTask {
        StartTask {
            launch: run("default", LaunchType::Ec2, 1).launch,
            container_instances: instances.iter().map(|s| (*s).to_string()).collect(),
        }
    }

    #[test]
    fn a_task_gets_its_definition_s_tags_and_ecs_s_when_asked() {
        let (cp, _) = fleet();
        let td = crate::model::task_definition::Registration {
            family: "tagged".into(),
            containers: vec![crate::model::task_definition::tests_support::container(
                "app",
            )],
            ..Default::default()
        };
        let td_tags = vec![("team".into(), "a".into()), ("env".into(), "td".into())];
        cp.register_task_definition("us-east-1", &td, serde_json::json!({}), td_tags)
            .unwrap();
        let mut run = run("default", LaunchType::Ec2, 1);
        run.launch.task_definition = "tagged".into();
        run.launch.tags = vec![("env".into(), "run".into())];
        let plain = cp.run_task(&run).unwrap().tasks.remove(0);
        assert_eq!(plain.tags, run.launch.tags, "nothing added unless asked");
        run.launch.propagate_task_definition_tags = true;
        run.launch.ecs_managed_tags = true;
        let t = cp.run_task(&run).unwrap().tasks.remove(0);
        let want: Vec<(String, String)> = [
            ("env", "run"),
            ("team", "a"),
            ("aws:ecs:clusterName", "default"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        assert_eq!(t.tags, want, "the launch's own tags win");
    }

    #[test]
    fn start_task_places_on_each_named_instance() {
        let (cp, a) = fleet();
        let b = add_instance(&cp, "default");
        let out = cp.start_task(&start(&[&a, arn::resource_id(&b)])).unwrap();
        assert!(out.failures.is_empty(), "{:?}", out.failures);
        let on: Vec<_> = out
            .tasks
            .iter()
            .map(|t| t.container_instance_arn.clone().unwrap())
            .collect();
        assert_eq!(on, vec![a.clone(), b]);
        assert_eq!(out.tasks[0].launch_type, LaunchType::Ec2);
        assert_eq!(cp.desired_tasks(&a).len(), 1);
    }

    #[test]
    fn start_task_failures_name_the_instance_and_reason() {
        let (cp, a) = fleet();
        // 1024 MiB, 512 per task: the third request for `a` does not fit.
        let out = cp
            .start_task(&start(&[&a, &a, &a, "0123456789abcdef"]))
            .unwrap();
        assert_eq!(out.tasks.len(), 2);
        let reasons: Vec<_> = out.failures.iter().map(|f| f.reason.as_str()).collect();
        assert_eq!(reasons, vec!["RESOURCE:MEMORY", "MISSING"]);
        assert!(out.failures[1].arn.ends_with("/default/0123456789abcdef"));

        // An instance whose agent is away.
        let ci = cp
            .register_instance(&crate::state::test_support::registration("default", false))
            .unwrap();
        let out = cp.start_task(&start(&[&ci.arn])).unwrap();
        assert_eq!(out.failures[0].reason, "AGENT");
        assert!(matches!(
            cp.start_task(&start(&[])),
            Err(StateError::InvalidParameter(m)) if m.contains("1 to 10")
        ));
    }

    #[test]
    fn start_and_run_share_validation() {
        let (cp, _) = control_plane();
        register_web(&cp);
        let mut bad = start(&["x"]);
        bad.launch.task_definition = "ghost".into();
        assert!(matches!(
            cp.start_task(&bad),
            Err(StateError::ClusterNotFound(_))
        ));
        let a = add_instance(&cp, "default");
        let mut bad = start(&[&a]);
        bad.launch.container_overrides = vec![ContainerOverride {
            name: "nope".into(),
            ..ContainerOverride::default()
        }];
        assert!(matches!(
            cp.start_task(&bad),
            Err(StateError::InvalidParameter(m)) if m.contains("'nope'")
        ));
    }

    fn register_published(cp: &ControlPlane, family: &str, host_port: u16) {
        let mut c = crate::model::task_definition::tests_support::container("web");
        c.port_mappings = vec![crate::model::ports::PortMapping {
            container_port: 80,
            host_port: Some(host_port),
            protocol: crate::model::ports::Protocol::Tcp,
        }];
        let td = crate::model::task_definition::Registration {
            family: family.into(),
            network_mode: Some("bridge".into()),
            containers: vec![c],
            ..crate::model::task_definition::Registration::default()
        };
        cp.register_task_definition("us-east-1", &td, serde_json::json!({}), vec![])
            .unwrap();
    }

    #[test]
    fn static_host_ports_are_refused_where_taken() {
        let (cp, a) = fleet();
        register_published(&cp, "pub8080", 8080);
        register_published(&cp, "pub22", 22);
        let mut req = run("default", LaunchType::Ec2, 2);
        req.launch.task_definition = "pub8080".into();
        let out = cp.run_task(&req).unwrap();
        assert_eq!(out.tasks.len(), 1, "one instance, one port 8080");
        let reasons: Vec<_> = out.failures.iter().map(|f| f.reason.as_str()).collect();
        assert_eq!(reasons, ["RESOURCE:PORTS"]);
        assert_eq!(out.failures[0].arn, a);
        // The reserved SSH port is never handed out.
        req.launch.task_definition = "pub22".into();
        req.count = 1;
        let out = cp.run_task(&req).unwrap();
        assert!(out.tasks.is_empty());
        assert_eq!(out.failures[0].reason, "RESOURCE:PORTS");
        // StartTask checks the named instance the same way.
        let mut start = start(&[&a]);
        start.launch.task_definition = "pub8080".into();
        let out = cp.start_task(&start).unwrap();
        assert_eq!(out.failures[0].reason, "RESOURCE:PORTS");
        // The instance shows the port as taken until the task stops.
        let state = cp.lock();
        let used = ControlPlane::used_ports(&state, &state.instances[&a]);
        assert!(used.contains(&(crate::model::ports::Protocol::Tcp, 8080)));
        assert!(used.contains(&(crate::model::ports::Protocol::Tcp, 51679)));
    }
}
