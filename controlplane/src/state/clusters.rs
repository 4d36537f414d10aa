//! Cluster commands: create, describe (with counts and statistics), list,
//! update settings and configuration, delete.

use super::{encode, ControlPlane, ItemFailure, State, StateError};
use crate::model::cluster::{initial_settings, validate_cluster_name, validate_setting};
use crate::model::{Cluster, LaunchType};
use crate::model::{ClusterStatus, InstanceStatus, TaskStatus};
use crate::store::{Table, Write};

/// Task, service and instance counts shown by `DescribeClusters`, with the
/// per-launch-type split its `STATISTICS` include reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClusterCounts {
    /// ACTIVE and DRAINING instances (INACTIVE ones are deregistered).
    pub registered_instances: usize,
    pub running_tasks: usize,
    pub pending_tasks: usize,
    /// ACTIVE and DRAINING services: `DeleteCluster` waits for both.
    pub active_services: usize,
    pub running_ec2_tasks: usize,
    pub running_fargate_tasks: usize,
    pub pending_ec2_tasks: usize,
    pub pending_fargate_tasks: usize,
}

/// A `CreateCluster` request, validated by `create_cluster_with`.
#[derive(Debug, Clone, Default)]
pub struct ClusterSpec {
    pub name: String,
    pub tags: Vec<(String, String)>,
    pub settings: Vec<(String, String)>,
    pub configuration: Option<serde_json::Value>,
    /// `capacityProviders` and `defaultCapacityProviderStrategy`.
    pub capacity: super::ClusterCapacity,
}

/// `UpdateCluster` / `UpdateClusterSettings`: settings to merge in, and a
/// configuration to replace the current one (`None` keeps it).
#[derive(Debug, Clone, Default)]
pub struct ClusterUpdate {
    pub settings: Vec<(String, String)>,
    pub configuration: Option<serde_json::Value>,
}

fn validate_settings(settings: &[(String, String)]) -> Result<(), StateError> {
    settings
        .iter()
        .try_for_each(|(n, v)| validate_setting(n, v))
        .map_err(StateError::InvalidParameter)
}

impl ControlPlane {
    /// Creates a cluster; like ECS, creating an existing ACTIVE cluster returns it.
    pub fn create_cluster(
        &self,
        name: &str,
        tags: Vec<(String, String)>,
    ) -> Result<Cluster, StateError> {
        self.create_cluster_with(
            &self.default_arns.region,
            &ClusterSpec {
                name: name.into(),
                tags,
                ..ClusterSpec::default()
            },
        )
    }

    /// Creates a cluster with settings and configuration, its ARN in `region`. A deleted
    /// (INACTIVE) cluster of the same name is replaced by a fresh one.
    pub fn create_cluster_with(
        &self,
        region: &str,
        spec: &ClusterSpec,
    ) -> Result<Cluster, StateError> {
        validate_cluster_name(&spec.name).map_err(StateError::InvalidParameter)?;
        validate_settings(&spec.settings)?;
        let mut state = self.lock();
        if let Some(c) = state
            .clusters
            .get(&spec.name)
            .filter(|c| c.status == ClusterStatus::Active)
        {
            return Ok(c.clone());
        }
        Self::check_cluster_capacity(&state, &spec.name, &spec.capacity)?;
        let cluster = Cluster {
            name: spec.name.clone(),
            arn: self.arns_in(region).cluster(&spec.name),
            status: ClusterStatus::Active,
            created_at_ms: self.now_ms(),
            tags: spec.tags.clone(),
            settings: initial_settings(&spec.settings),
            configuration: spec.configuration.clone(),
            capacity_providers: spec.capacity.capacity_providers.clone(),
            default_capacity_provider_strategy: spec.capacity.default_strategy.clone(),
        };
        self.put_cluster(&mut state, &cluster)?;
        Ok(cluster)
    }

    fn put_cluster(&self, state: &mut State, cluster: &Cluster) -> Result<(), StateError> {
        self.store.apply(&[Write::put(
            Table::Clusters,
            cluster.name.clone(),
            encode(cluster),
        )])?;
        state.clusters.insert(cluster.name.clone(), cluster.clone());
        Ok(())
    }

    pub(super) fn cluster_counts(state: &State, cluster: &str) -> ClusterCounts {
        let mut n = ClusterCounts {
            registered_instances: state
                .instances
                .values()
                .filter(|i| i.cluster == cluster && i.status != InstanceStatus::Inactive)
                .count(),
            active_services: state
                .services
                .values()
                .filter(|s| {
                    s.cluster == cluster
                        && s.status != crate::model::service::ServiceStatus::Inactive
                })
                .count(),
            ..ClusterCounts::default()
        };
        for t in state.tasks.values().filter(|t| t.cluster == cluster) {
            // EXTERNAL tasks run on registered hosts: ECS's statistics have
            // no EXTERNAL entries, so they count with EC2.
            let fargate = t.launch_type == LaunchType::Fargate;
            if t.last_status == TaskStatus::Running {
                n.running_tasks += 1;
                *if fargate {
                    &mut n.running_fargate_tasks
                } else {
                    &mut n.running_ec2_tasks
                } += 1;
            } else if t.is_pending() {
                n.pending_tasks += 1;
                *if fargate {
                    &mut n.pending_fargate_tasks
                } else {
                    &mut n.pending_ec2_tasks
                } += 1;
            }
        }
        n
    }

    /// Looks clusters up by name or ARN; INACTIVE (deleted) ones are found
    /// too, as ECS shows them. Missing ones are named in `region`.
    pub fn describe_clusters(
        &self,
        region: &str,
        names: &[String],
    ) -> (Vec<(Cluster, ClusterCounts)>, Vec<ItemFailure>) {
        let state = self.lock();
        let mut found = Vec::new();
        let mut failures = Vec::new();
        for n in names {
            let name = crate::model::arn::cluster_name(n);
            match state.clusters.get(name) {
                Some(c) => found.push((c.clone(), Self::cluster_counts(&state, &c.name))),
                None => failures.push(ItemFailure {
                    arn: self.arns_in(region).cluster(name),
                    reason: "MISSING".into(),
                    detail: None,
                }),
            }
        }
        (found, failures)
    }

    pub fn list_clusters(&self) -> Vec<String> {
        self.lock()
            .clusters
            .values()
            .filter(|c| c.status == ClusterStatus::Active)
            .map(|c| c.arn.clone())
            .collect()
    }

    /// Changes settings (merged by name) and/or the configuration.
    pub fn update_cluster(
        &self,
        cluster: &str,
        update: &ClusterUpdate,
    ) -> Result<Cluster, StateError> {
        validate_settings(&update.settings)?;
        let mut state = self.lock();
        let mut c = Self::cluster(&state, cluster)?.clone();
        c.apply_settings(&update.settings);
        if let Some(conf) = &update.configuration {
            c.configuration = Some(conf.clone());
        }
        self.put_cluster(&mut state, &c)?;
        Ok(c)
    }

    /// Marks the cluster INACTIVE. Refused, as ECS does, while it still has
    /// registered instances, active services or tasks that have not stopped.
    pub fn delete_cluster(&self, cluster: &str) -> Result<Cluster, StateError> {
        let mut state = self.lock();
        let mut c = Self::cluster(&state, cluster)?.clone();
        let counts = Self::cluster_counts(&state, &c.name);
        if counts.registered_instances > 0 {
            return Err(StateError::ClusterContainsContainerInstances {
                cluster: c.name,
                count: counts.registered_instances,
            });
        }
        if counts.active_services > 0 {
            return Err(StateError::ClusterContainsServices {
                cluster: c.name,
                count: counts.active_services,
            });
        }
        let live = state
            .tasks
            .values()
            .filter(|t| t.cluster == c.name && !t.is_stopped())
            .count();
        if live > 0 {
            return Err(StateError::ClusterContainsTasks {
                cluster: c.name,
                count: live,
            });
        }
        c.status = ClusterStatus::Inactive;
        self.put_cluster(&mut state, &c)?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::cluster::CONTAINER_INSIGHTS;
    use crate::model::task::TaskReport;
    use crate::model::LaunchType;
    use crate::state::test_support::{control_plane, fleet};

    #[test]
    fn create_is_idempotent_and_persisted() {
        let (cp, store) = control_plane();
        let a = cp.create_cluster("web", vec![]).unwrap();
        let b = cp.create_cluster("web", vec![]).unwrap();
        assert_eq!(a, b);
        assert_eq!(store.batches.lock().unwrap().len(), 1);
        assert_eq!(
            cp.list_clusters(),
            vec!["arn:aws:ecs:us-east-1:123456789012:cluster/web".to_string()]
        );
    }

    #[test]
    fn bad_name_or_setting_creates_nothing() {
        let (cp, store) = control_plane();
        assert!(matches!(
            cp.create_cluster("a b", vec![]),
            Err(StateError::InvalidParameter(_))
        ));
        let spec = ClusterSpec {
            name: "web".into(),
            settings: vec![(CONTAINER_INSIGHTS.into(), "maybe".into())],
            ..ClusterSpec::default()
        };
        assert!(matches!(
            cp.create_cluster_with("us-east-1", &spec),
            Err(StateError::InvalidParameter(m)) if m.contains("'maybe'")
        ));
        assert!(store.batches.lock().unwrap().is_empty());
    }

    #[test]
    fn describe_reports_missing() {
        let (cp, _) = control_plane();
        cp.create_cluster("web", vec![]).unwrap();
        let (found, failures) = cp.describe_clusters("us-east-1", &["web".into(), "nope".into()]);
        assert_eq!(found.len(), 1);
        assert_eq!(failures[0].reason, "MISSING");
        assert!(failures[0].arn.ends_with("cluster/nope"));
    }

    #[test]
    fn update_merges_settings_and_keeps_configuration() {
        let (cp, _) = control_plane();
        cp.create_cluster("web", vec![]).unwrap();
        let conf = serde_json::json!({"executeCommandConfiguration": {"logging": "NONE"}});
        let c = cp
            .update_cluster(
                "web",
                &ClusterUpdate {
                    settings: vec![],
                    configuration: Some(conf.clone()),
                },
            )
            .unwrap();
        assert_eq!(c.configuration, Some(conf.clone()));
        let c = cp
            .update_cluster(
                "web",
                &ClusterUpdate {
                    settings: vec![(CONTAINER_INSIGHTS.into(), "enabled".into())],
                    configuration: None,
                },
            )
            .unwrap();
        assert_eq!(
            c.settings,
            vec![(CONTAINER_INSIGHTS.into(), "enabled".into())]
        );
        assert_eq!(c.configuration, Some(conf));
        assert!(matches!(
            cp.update_cluster("ghost", &ClusterUpdate::default()),
            Err(StateError::ClusterNotFound(_))
        ));
    }

    #[test]
    fn delete_leaves_an_inactive_describable_cluster() {
        let (cp, _) = control_plane();
        cp.create_cluster("web", vec![("team".into(), "a".into())])
            .unwrap();
        let c = cp.delete_cluster("web").unwrap();
        assert_eq!(c.status, "INACTIVE");
        assert!(cp.list_clusters().is_empty());
        let (found, _) = cp.describe_clusters("us-east-1", &["web".into()]);
        assert_eq!(found[0].0.status, "INACTIVE");
        assert!(matches!(
            cp.delete_cluster("web"),
            Err(StateError::ClusterNotFound(_))
        ));
        // Creating it again gives a fresh ACTIVE cluster.
        assert_eq!(cp.create_cluster("web", vec![]).unwrap().status, "ACTIVE");
    }

    #[test]
    fn delete_is_refused_with_instances_or_live_tasks() {
        let (cp, instance) = fleet();
        assert!(matches!(
            cp.delete_cluster("default"),
            Err(StateError::ClusterContainsContainerInstances { count: 1, .. })
        ));
        // A FARGATE task of another cluster runs on the default cluster's host.
        cp.create_cluster("other", vec![]).unwrap();
        let task = cp
            .run_task(&crate::state::test_support::run(
                "other",
                LaunchType::Fargate,
                1,
            ))
            .unwrap()
            .tasks
            .remove(0);
        assert!(matches!(
            cp.delete_cluster("other"),
            Err(StateError::ClusterContainsTasks { count: 1, .. })
        ));
        let stopped = TaskReport {
            task_arn: task.arn.clone(),
            last_status: "STOPPED".into(),
            ..TaskReport::default()
        };
        cp.apply_report(&instance, &stopped).unwrap();
        assert_eq!(cp.delete_cluster("other").unwrap().status, "INACTIVE");
    }

    #[test]
    fn counts_split_by_launch_type() {
        let (cp, instance) = fleet();
        let run = crate::state::test_support::run;
        let ec2 = cp.run_task(&run("default", LaunchType::Ec2, 1)).unwrap();
        cp.run_task(&run("default", LaunchType::Fargate, 1))
            .unwrap();
        let running = TaskReport {
            task_arn: ec2.tasks[0].arn.clone(),
            last_status: "RUNNING".into(),
            ..TaskReport::default()
        };
        cp.apply_report(&instance, &running).unwrap();
        let (found, _) = cp.describe_clusters("us-east-1", &["default".into()]);
        let n = found[0].1;
        assert_eq!(n.registered_instances, 1);
        assert_eq!((n.running_tasks, n.pending_tasks), (1, 1));
        assert_eq!((n.running_ec2_tasks, n.running_fargate_tasks), (1, 0));
        assert_eq!((n.pending_ec2_tasks, n.pending_fargate_tasks), (0, 1));
    }
}
