//! Cluster commands.

use super::{encode, ControlPlane, ItemFailure, StateError};
use crate::model::cluster::validate_cluster_name;
use crate::model::Cluster;
use crate::store::{Table, Write};

/// Task and instance counts shown by `DescribeClusters`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClusterCounts {
    pub registered_instances: usize,
    pub running_tasks: usize,
    pub pending_tasks: usize,
}

impl ControlPlane {
    /// Creates a cluster; like ECS, creating an existing ACTIVE cluster returns it.
    pub fn create_cluster(
        &self,
        name: &str,
        tags: Vec<(String, String)>,
    ) -> Result<Cluster, StateError> {
        validate_cluster_name(name).map_err(StateError::InvalidParameter)?;
        let mut state = self.lock();
        if let Some(c) = state.clusters.get(name).filter(|c| c.status == "ACTIVE") {
            return Ok(c.clone());
        }
        let cluster = Cluster {
            name: name.to_string(),
            arn: self.arns.cluster(name),
            status: "ACTIVE".into(),
            created_at_ms: self.now(),
            tags,
        };
        self.store
            .apply(&[Write::put(Table::Clusters, name, encode(&cluster))])?;
        state.clusters.insert(name.to_string(), cluster.clone());
        Ok(cluster)
    }

    pub fn describe_clusters(
        &self,
        names: &[String],
    ) -> (Vec<(Cluster, ClusterCounts)>, Vec<ItemFailure>) {
        let state = self.lock();
        let mut found = Vec::new();
        let mut failures = Vec::new();
        for n in names {
            let name = crate::model::arn::cluster_name(n);
            match state.clusters.get(name) {
                Some(c) => {
                    let counts = ClusterCounts {
                        registered_instances: state
                            .instances
                            .values()
                            .filter(|i| i.cluster == c.name && i.status != "INACTIVE")
                            .count(),
                        running_tasks: state
                            .tasks
                            .values()
                            .filter(|t| t.cluster == c.name && t.last_status == "RUNNING")
                            .count(),
                        pending_tasks: state
                            .tasks
                            .values()
                            .filter(|t| {
                                t.cluster == c.name
                                    && matches!(
                                        t.last_status.as_str(),
                                        "PROVISIONING" | "PENDING" | "ACTIVATING"
                                    )
                            })
                            .count(),
                    };
                    found.push((c.clone(), counts));
                }
                None => failures.push(ItemFailure {
                    arn: self.arns.cluster(name),
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
            .filter(|c| c.status == "ACTIVE")
            .map(|c| c.arn.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::state::test_support::control_plane;
    use crate::state::StateError;

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
    fn bad_name_creates_nothing() {
        let (cp, store) = control_plane();
        assert!(matches!(
            cp.create_cluster("a b", vec![]),
            Err(StateError::InvalidParameter(_))
        ));
        assert!(store.batches.lock().unwrap().is_empty());
    }

    #[test]
    fn describe_reports_missing() {
        let (cp, _) = control_plane();
        cp.create_cluster("web", vec![]).unwrap();
        let (found, failures) = cp.describe_clusters(&["web".into(), "nope".into()]);
        assert_eq!(found.len(), 1);
        assert_eq!(failures[0].reason, "MISSING");
        assert!(failures[0].arn.ends_with("cluster/nope"));
    }
}
