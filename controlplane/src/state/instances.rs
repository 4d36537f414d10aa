//! Container instances: agent registration, sessions, reports, and the
//! `ListContainerInstances` / `DescribeContainerInstances` views.

use tokio::sync::watch;

use super::{encode, ControlPlane, ItemFailure, State, StateError};
use crate::model::capacity_provider::validate_host_provider;
use crate::model::query::Expression;
use crate::model::task::TaskReport;
use crate::model::{arn, ContainerInstance, Resources, Task};
use crate::model::{InstanceStatus, TaskStatus};
use crate::store::{Table, Write};

/// A container instance with the figures `DescribeContainerInstances` derives.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceView {
    pub instance: ContainerInstance,
    pub remaining: Resources,
    /// Reserved ports and the ports of the tasks on the instance.
    pub used_ports: std::collections::BTreeSet<crate::model::ports::HostPort>,
    pub agent_connected: bool,
    pub running_tasks: usize,
    pub pending_tasks: usize,
}

/// What an agent registers with.
#[derive(Debug, Clone)]
pub struct Registration {
    pub cluster: String,
    pub container_instance_arn: Option<String>,
    pub hostname: String,
    pub resources: Resources,
    /// FARGATE, `FARGATE_SPOT` or a named host pool; `None`: plain EC2.
    pub capacity_provider: Option<String>,
    pub agent_version: String,
    pub attributes: Vec<(String, String)>,
    pub reserved_ports: std::collections::BTreeSet<crate::model::ports::HostPort>,
}

impl ControlPlane {
    /// Registers a host, or refreshes a known instance (same ARN) after an
    /// agent restart. The `default` cluster is created on first use, as ECS does.
    /// An agent's ARN comes from its certificate, made at join: the first registration
    /// creates the instance under it. A deregistered instance stays deregistered: its
    /// certificate is revoked.
    pub fn register_instance(&self, reg: &Registration) -> Result<ContainerInstance, StateError> {
        // A named pool need not exist yet: hosts may start before the
        // operator creates it, and placement only uses pools associated
        // with the cluster.
        if let Some(p) = &reg.capacity_provider {
            validate_host_provider(p).map_err(|e| {
                StateError::InvalidParameter(format!("The agent's capacity provider: {e}"))
            })?;
        }
        if reg.cluster == "default" {
            // Returns the ACTIVE one if it exists; replaces a deleted one.
            self.create_cluster("default", vec![])?;
        }
        let mut state = self.lock();
        let cluster = Self::cluster(&state, &reg.cluster)?;
        let arns = self.arns_of(&cluster.arn);
        let cluster = cluster.name.clone();
        let existing = reg
            .container_instance_arn
            .as_ref()
            .and_then(|a| state.instances.get(a))
            .cloned();
        if let Some(i) = &existing {
            if i.status == InstanceStatus::Inactive {
                return Err(StateError::Client(format!(
                    "Container instance {} was deregistered, which revoked its agent's certificate. To bring the host back, remove the agent's pki directory and join again with a new token (`berth join-token create`).",
                    i.arn
                )));
            }
            if i.cluster != cluster {
                return Err(StateError::InvalidParameter(format!(
                    "This host is container instance {} of cluster '{}', not of '{cluster}'. To move it, deregister it, remove the agent's pki directory and join again.",
                    i.arn, i.cluster
                )));
            }
        }
        // The id the certificate was made for, if it belongs to this cluster.
        let bound_id = match &reg.container_instance_arn {
            Some(a) => {
                let id = arn::resource_id(a);
                if arns.container_instance(&cluster, id) != *a {
                    return Err(StateError::InvalidParameter(format!(
                        "This host joined as container instance {a}, which is not of cluster '{cluster}'. To move it, remove the agent's pki directory and join again with a token, naming cluster '{cluster}'."
                    )));
                }
                Some(id.to_owned())
            }
            None => None,
        };
        let instance = if let Some(mut i) = existing {
            i.hostname.clone_from(&reg.hostname);
            i.registered = reg.resources;
            i.capacity_provider.clone_from(&reg.capacity_provider);
            i.agent_version.clone_from(&reg.agent_version);
            i.attributes.clone_from(&reg.attributes);
            i.reserved_ports.clone_from(&reg.reserved_ports);
            i.version += 1;
            i
        } else {
            let id = bound_id.unwrap_or_else(arn::new_id);
            ContainerInstance {
                arn: arns.container_instance(&cluster, &id),
                id,
                cluster,
                hostname: reg.hostname.clone(),
                registered: reg.resources,
                capacity_provider: reg.capacity_provider.clone(),
                status: InstanceStatus::Active,
                agent_version: reg.agent_version.clone(),
                registered_at_ms: self.now_ms(),
                attributes: reg.attributes.clone(),
                custom_attributes: vec![],
                version: 1,
                tags: vec![],
                reserved_ports: reg.reserved_ports.clone(),
            }
        };
        self.store.apply(&[Write::put(
            Table::ContainerInstances,
            instance.arn.clone(),
            encode(&instance),
        )])?;
        state
            .instances
            .insert(instance.arn.clone(), instance.clone());
        Ok(instance)
    }

    /// The ARN a host joining `cluster` will register under (its certificate is bound to
    /// it): in the cluster's region and account, or the default ones for a cluster not
    /// made yet.
    pub fn new_instance_arn(&self, cluster: &str) -> String {
        let state = self.lock();
        let arns = Self::cluster(&state, cluster)
            .map_or_else(|_| self.arns_of(""), |c| self.arns_of(&c.arn));
        arns.container_instance(cluster, &arn::new_id())
    }

    /// Opens a session for a registered instance. The receiver changes
    /// whenever the instance's desired task set does.
    pub fn open_session(&self, instance_arn: &str) -> Result<watch::Receiver<u64>, StateError> {
        let mut state = self.lock();
        match state.instances.get(instance_arn) {
            None => {
                return Err(StateError::Client(format!(
                    "Unknown container instance '{instance_arn}': register before opening a session."
                )))
            }
            Some(i) if i.status == InstanceStatus::Inactive => {
                return Err(StateError::Client(format!(
                    "Container instance {instance_arn} was deregistered, which revoked its agent's certificate."
                )))
            }
            Some(_) => {}
        }
        let (tx, rx) = watch::channel(0);
        // A newer session replaces an older one of the same instance.
        state.sessions.insert(instance_arn.to_string(), tx);
        state
            .last_seen
            .insert(instance_arn.to_string(), self.now_ms());
        Ok(rx)
    }

    /// Whether the instance was deregistered, which revokes its agent's certificate.
    /// Instance records are never deleted, so a revoked one stays revoked.
    pub fn instance_revoked(&self, instance_arn: &str) -> bool {
        self.lock()
            .instances
            .get(instance_arn)
            .is_some_and(|i| i.status == InstanceStatus::Inactive)
    }

    /// A message came from the instance's agent: it is alive now.
    pub fn agent_seen(&self, instance_arn: &str) {
        let now = self.now_ms();
        self.lock().last_seen.insert(instance_arn.to_string(), now);
    }

    /// Closes the session, unless a newer one of the same instance replaced it.
    pub fn close_session(&self, instance_arn: &str, rx: &watch::Receiver<u64>) {
        let mut state = self.lock();
        if state
            .sessions
            .get(instance_arn)
            .is_some_and(|tx| tx.subscribe().same_channel(rx))
        {
            state.sessions.remove(instance_arn);
        }
    }

    /// Tasks the instance should hold: every task placed on it that has not stopped.
    pub fn desired_tasks(&self, instance_arn: &str) -> Vec<Task> {
        self.map_desired_tasks(instance_arn, Task::clone)
    }

    /// `f` of each task the instance should hold, without copying the tasks
    /// (a session turns them straight into its message).
    pub fn map_desired_tasks<T>(&self, instance_arn: &str, f: impl FnMut(&Task) -> T) -> Vec<T> {
        self.lock()
            .tasks
            .values()
            .filter(|t| {
                t.container_instance_arn.as_deref() == Some(instance_arn) && !t.is_stopped()
            })
            .map(f)
            .collect()
    }

    /// Folds an agent's report into its task. Reports about tasks that are not
    /// on this instance are refused (the desired set tells the agent to drop them):
    /// an agent speaks for its own instance only.
    pub fn apply_report(&self, instance_arn: &str, report: &TaskReport) -> Result<(), StateError> {
        let mut state = self.lock();
        let id = arn::resource_id(&report.task_arn).to_string();
        let Some(mut task) = state.tasks.get(&id).cloned() else {
            return Ok(());
        };
        if task.container_instance_arn.as_deref() != Some(instance_arn) {
            tracing::warn!(container_instance = %instance_arn, task = %report.task_arn, "refused a report on a task of another instance");
            return Ok(());
        }
        if task.apply_report(report, self.now_ms()) {
            self.store
                .apply(&[Write::put(Table::Tasks, id.clone(), encode(&task))])?;
            let stopped = task.is_stopped();
            state.tasks.insert(id, task);
            if stopped {
                Self::notify(&state, [instance_arn.to_string()]);
            }
        }
        Ok(())
    }

    /// Instances of the cluster by status (default: all but INACTIVE) that
    /// match the cluster-query-language `filter`, if any.
    pub fn list_container_instances(
        &self,
        cluster: &str,
        status: Option<InstanceStatus>,
        filter: Option<&Expression>,
    ) -> Result<Vec<String>, StateError> {
        let state = self.lock();
        let cluster = Self::cluster(&state, cluster)?;
        Ok(state
            .instances
            .values()
            .filter(|i| i.cluster == cluster.name)
            .filter(|i| status.map_or(i.status != InstanceStatus::Inactive, |s| i.status == s))
            .filter(|i| filter.is_none_or(|f| f.eval(&Self::candidate(&state, i))))
            .map(|i| i.arn.clone())
            .collect())
    }

    /// The instance as `DescribeContainerInstances` shows it.
    pub(super) fn instance_view(state: &State, i: &ContainerInstance) -> InstanceView {
        let on_it = || {
            state
                .tasks
                .values()
                .filter(|t| t.container_instance_arn.as_deref() == Some(i.arn.as_str()))
        };
        InstanceView {
            instance: i.clone(),
            remaining: Self::remaining(state, &i.arn, i.registered),
            used_ports: Self::used_ports(state, i),
            agent_connected: state.sessions.contains_key(&i.arn),
            running_tasks: on_it()
                .filter(|t| t.last_status == TaskStatus::Running)
                .count(),
            pending_tasks: on_it().filter(|t| t.is_pending()).count(),
        }
    }

    /// Finds a cluster's instance by id or ARN.
    pub(super) fn find_instance<'a>(
        state: &'a State,
        cluster: &str,
        reference: &str,
    ) -> Option<&'a ContainerInstance> {
        let id = arn::resource_id(reference);
        state
            .instances
            .values()
            .find(|i| i.id == id && i.cluster == cluster)
    }

    pub fn describe_container_instances(
        &self,
        cluster: &str,
        refs: &[String],
    ) -> Result<(Vec<InstanceView>, Vec<ItemFailure>), StateError> {
        let state = self.lock();
        let cluster = Self::cluster(&state, cluster)?;
        let mut found = Vec::new();
        let mut failures = Vec::new();
        for r in refs {
            let id = arn::resource_id(r);
            let Some(i) = Self::find_instance(&state, &cluster.name, r) else {
                failures.push(ItemFailure {
                    arn: if r.starts_with("arn:") {
                        r.clone()
                    } else {
                        self.arns_of(&cluster.arn)
                            .container_instance(&cluster.name, id)
                    },
                    reason: "MISSING".into(),
                    detail: None,
                });
                continue;
            };
            found.push(Self::instance_view(&state, i));
        }
        Ok((found, failures))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::LaunchType;
    use crate::state::test_support::{control_plane, register_web, registration, run};

    fn setup() -> (ControlPlane, String) {
        let (cp, _) = control_plane();
        register_web(&cp);
        let ci = cp
            .register_instance(&registration("default", true))
            .unwrap();
        (cp, ci.arn)
    }

    #[test]
    fn tasks_go_only_to_connected_instances() {
        let (cp, arn) = setup();
        let err = cp
            .run_task(&run("default", LaunchType::Ec2, 1))
            .unwrap_err();
        assert!(err.to_string().contains("No Container Instances"), "{err}");
        let mut rx = cp.open_session(&arn).unwrap();
        let out = cp.run_task(&run("default", LaunchType::Ec2, 1)).unwrap();
        assert_eq!(out.tasks.len(), 1);
        assert!(rx.has_changed().unwrap());
        rx.mark_unchanged();
        assert_eq!(cp.desired_tasks(&arn).len(), 1);
    }

    #[test]
    fn memory_runs_out_with_ecs_failure_reason() {
        let (cp, arn) = setup();
        let _rx = cp.open_session(&arn).unwrap();
        let out = cp.run_task(&run("default", LaunchType::Ec2, 3)).unwrap();
        assert_eq!(out.tasks.len(), 2);
        assert_eq!(out.failures.len(), 1);
        assert_eq!(out.failures[0].reason, "RESOURCE:MEMORY");
        assert_eq!(out.failures[0].arn, arn);
    }

    #[test]
    fn filter_by_task_group_sees_the_tasks_on_each_instance() {
        let (cp, arn) = setup();
        let _rx = cp.open_session(&arn).unwrap();
        let idle = cp
            .register_instance(&registration("default", false))
            .unwrap();
        let web = Expression::parse("task:group == family:web").unwrap();
        assert!(cp
            .list_container_instances("default", None, Some(&web))
            .unwrap()
            .is_empty());
        cp.run_task(&run("default", LaunchType::Ec2, 1)).unwrap();
        assert_eq!(
            cp.list_container_instances("default", None, Some(&web))
                .unwrap(),
            vec![arn.clone()]
        );
        let not_web = Expression::parse("not task:group == family:web").unwrap();
        assert_eq!(
            cp.list_container_instances("default", None, Some(&not_web))
                .unwrap(),
            vec![idle.arn]
        );
    }

    #[test]
    fn fargate_pool_serves_any_cluster() {
        let (cp, arn) = setup();
        let _rx = cp.open_session(&arn).unwrap();
        cp.create_cluster("my-cluster", vec![]).unwrap();
        let out = cp
            .run_task(&run("my-cluster", LaunchType::Fargate, 1))
            .unwrap();
        assert_eq!(
            out.tasks[0].container_instance_arn.as_deref(),
            Some(arn.as_str())
        );
        assert!(out.tasks[0].arn.contains(":task/my-cluster/"));
        // EC2 tasks of my-cluster have no instance there.
        assert!(cp.run_task(&run("my-cluster", LaunchType::Ec2, 1)).is_err());
    }

    #[test]
    fn reports_and_stop_flow() {
        let (cp, arn) = setup();
        let mut rx = cp.open_session(&arn).unwrap();
        let task = cp
            .run_task(&run("default", LaunchType::Ec2, 1))
            .unwrap()
            .tasks
            .remove(0);
        let report = TaskReport {
            task_arn: task.arn.clone(),
            last_status: "RUNNING".into(),
            ..TaskReport::default()
        };
        cp.apply_report(&arn, &report).unwrap();
        let (views, _) = cp
            .describe_container_instances("default", std::slice::from_ref(&arn))
            .unwrap();
        assert_eq!(views[0].running_tasks, 1);
        assert_eq!(
            views[0].remaining,
            Resources {
                cpu: 2048 - 256,
                memory_mib: 1024 - 512
            }
        );
        rx.mark_unchanged();
        let stopped = cp.stop_task("default", &task.id, Some("done")).unwrap();
        assert_eq!(stopped.stop_code, Some("UserInitiated".into()));
        assert!(rx.has_changed().unwrap());
        let report = TaskReport {
            task_arn: task.arn.clone(),
            last_status: "STOPPED".into(),
            ..TaskReport::default()
        };
        cp.apply_report(&arn, &report).unwrap();
        assert!(cp.desired_tasks(&arn).is_empty());
        let (views, _) = cp
            .describe_container_instances("default", std::slice::from_ref(&arn))
            .unwrap();
        assert_eq!(
            views[0].remaining,
            Resources {
                cpu: 2048,
                memory_mib: 1024
            }
        );
    }

    #[test]
    fn reregistration_keeps_the_arn() {
        let (cp, arn) = setup();
        let mut r = registration("default", true);
        r.container_instance_arn = Some(arn.clone());
        assert_eq!(cp.register_instance(&r).unwrap().arn, arn);
        assert_eq!(
            cp.list_container_instances("default", None, None)
                .unwrap()
                .len(),
            1
        );
    }
}
