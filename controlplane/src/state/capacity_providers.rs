//! Capacity provider commands: create, describe, update and delete named
//! host pools, and associate providers (with a default strategy) with a
//! cluster. FARGATE and `FARGATE_SPOT` are built in: never stored, always
//! described, never created, updated or deleted.

use super::{encode, ControlPlane, ItemFailure, State, StateError};
use crate::model::capacity_provider::{
    is_fargate, validate_auto_scaling_group_provider, validate_name, FARGATE, FARGATE_SPOT,
};
use crate::model::{arn, CapacityProvider, Cluster};
use crate::model::{CapacityProviderStatus, CapacityProviderUpdateStatus, ClusterStatus};
use crate::scheduler::{validate_strategy, CapacityProviderShare};
use crate::store::{Table, Write};

/// A `CreateCapacityProvider` request.
#[derive(Debug, Clone, Default)]
pub struct CapacityProviderSpec {
    pub name: String,
    /// `autoScalingGroupProvider` as sent: recorded, not acted on.
    pub auto_scaling_group_provider: serde_json::Value,
    pub tags: Vec<(String, String)>,
}

/// What a cluster's capacity looks like: its providers and default strategy
/// (`CreateCluster`, `PutClusterCapacityProviders`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterCapacity {
    pub capacity_providers: Vec<String>,
    pub default_strategy: Vec<CapacityProviderShare>,
}

/// The name a provider reference (name or ARN) stands for.
fn provider_name(name_or_arn: &str) -> &str {
    if name_or_arn.starts_with("arn:") {
        arn::resource_id(name_or_arn)
    } else {
        name_or_arn
    }
}

fn not_found(name: &str) -> StateError {
    StateError::Client(format!(
        "The specified capacity provider '{name}' does not exist. Specify a valid name or ARN and try again."
    ))
}

fn reserved(name: &str, what: &str) -> StateError {
    StateError::Client(format!(
        "The '{name}' capacity provider is reserved and cannot be {what}: FARGATE and FARGATE_SPOT are built in."
    ))
}

impl ControlPlane {
    /// FARGATE or `FARGATE_SPOT`, as a request in `region` sees it.
    fn builtin(&self, region: &str, name: &str) -> CapacityProvider {
        CapacityProvider {
            name: name.into(),
            arn: self.arns_in(region).capacity_provider(name),
            status: CapacityProviderStatus::Active,
            update_status: None,
            auto_scaling_group_provider: serde_json::Value::Null,
            tags: vec![],
            created_at_ms: 0,
        }
    }

    fn put_capacity_provider(
        &self,
        state: &mut State,
        p: &CapacityProvider,
    ) -> Result<(), StateError> {
        self.store.apply(&[Write::put(
            Table::CapacityProviders,
            p.name.clone(),
            encode(p),
        )])?;
        state.capacity_providers.insert(p.name.clone(), p.clone());
        Ok(())
    }

    /// The ACTIVE cluster a named provider is associated with, if any.
    fn associated_cluster<'a>(state: &'a State, provider: &str) -> Option<&'a Cluster> {
        state.clusters.values().find(|c| {
            c.status == ClusterStatus::Active && c.capacity_providers.iter().any(|p| p == provider)
        })
    }

    /// Creates a named host pool, its ARN in `region`.
    pub fn create_capacity_provider(
        &self,
        region: &str,
        spec: &CapacityProviderSpec,
    ) -> Result<CapacityProvider, StateError> {
        validate_name(&spec.name).map_err(StateError::InvalidParameter)?;
        validate_auto_scaling_group_provider(&spec.auto_scaling_group_provider)
            .map_err(StateError::InvalidParameter)?;
        let mut state = self.lock();
        if state
            .capacity_providers
            .get(&spec.name)
            .is_some_and(|p| p.status == CapacityProviderStatus::Active)
        {
            return Err(StateError::Client(format!(
                "The specified capacity provider '{}' already exists. To change the configuration of an existing capacity provider, update the capacity provider.",
                spec.name
            )));
        }
        let p = CapacityProvider {
            name: spec.name.clone(),
            arn: self.arns_in(region).capacity_provider(&spec.name),
            status: CapacityProviderStatus::Active,
            update_status: Some(CapacityProviderUpdateStatus::CreateComplete),
            auto_scaling_group_provider: spec.auto_scaling_group_provider.clone(),
            tags: spec.tags.clone(),
            created_at_ms: self.now_ms(),
        };
        self.put_capacity_provider(&mut state, &p)?;
        Ok(p)
    }

    /// With no names: FARGATE, `FARGATE_SPOT`, then every ACTIVE named pool
    /// (only those associated with `cluster`, when given). With names (or
    /// ARNs): those, INACTIVE ones included; unknown ones become failures.
    /// Providers by name or ARN (all, without names); built-in and missing ones are named
    /// in `region`.
    pub fn describe_capacity_providers(
        &self,
        region: &str,
        names: Option<&[String]>,
        cluster: Option<&str>,
    ) -> Result<(Vec<CapacityProvider>, Vec<ItemFailure>), StateError> {
        let state = self.lock();
        let associated = match cluster {
            Some(c) => Some(Self::cluster(&state, c)?.capacity_providers.clone()),
            None => None,
        };
        let wanted = |name: &str| {
            associated
                .as_ref()
                .is_none_or(|a| a.iter().any(|p| p == name))
        };
        let mut found = Vec::new();
        let mut failures = Vec::new();
        match names {
            None => {
                found.extend(
                    [FARGATE, FARGATE_SPOT]
                        .into_iter()
                        .filter(|n| wanted(n))
                        .map(|n| self.builtin(region, n)),
                );
                found.extend(
                    state
                        .capacity_providers
                        .values()
                        .filter(|p| p.status == CapacityProviderStatus::Active && wanted(&p.name))
                        .cloned(),
                );
            }
            Some(names) => {
                for r in names {
                    let name = provider_name(r);
                    let p = if is_fargate(name) {
                        Some(self.builtin(region, name))
                    } else {
                        state.capacity_providers.get(name).cloned()
                    };
                    match p.filter(|p| wanted(&p.name)) {
                        Some(p) => found.push(p),
                        None => failures.push(ItemFailure {
                            arn: self.arns_in(region).capacity_provider(name),
                            reason: "MISSING".into(),
                            detail: None,
                        }),
                    }
                }
            }
        }
        Ok((found, failures))
    }

    /// Merges an `autoScalingGroupProvider` update (managedScaling,
    /// managedTerminationProtection, managedDraining) into the record.
    pub fn update_capacity_provider(
        &self,
        name_or_arn: &str,
        update: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<CapacityProvider, StateError> {
        let name = provider_name(name_or_arn);
        if is_fargate(name) {
            return Err(reserved(name, "updated"));
        }
        let mut state = self.lock();
        let mut p = state
            .capacity_providers
            .get(name)
            .filter(|p| p.status == CapacityProviderStatus::Active)
            .cloned()
            .ok_or_else(|| not_found(name))?;
        if let Some(asg) = p.auto_scaling_group_provider.as_object_mut() {
            for (k, v) in update {
                asg.insert(k.clone(), v.clone());
            }
        }
        p.update_status = Some(CapacityProviderUpdateStatus::UpdateComplete);
        self.put_capacity_provider(&mut state, &p)?;
        Ok(p)
    }

    /// Deletes a named pool: it turns INACTIVE (still describable by name).
    /// Refused while a cluster has it among its capacity providers, as ECS
    /// does: disassociate it with `PutClusterCapacityProviders` first.
    pub fn delete_capacity_provider(
        &self,
        name_or_arn: &str,
    ) -> Result<CapacityProvider, StateError> {
        let name = provider_name(name_or_arn);
        if is_fargate(name) {
            return Err(reserved(name, "deleted"));
        }
        let mut state = self.lock();
        let mut p = state
            .capacity_providers
            .get(name)
            .filter(|p| p.status == CapacityProviderStatus::Active)
            .cloned()
            .ok_or_else(|| not_found(name))?;
        if let Some(c) = Self::associated_cluster(&state, name) {
            return Err(StateError::Client(format!(
                "The specified capacity provider '{name}' is in use and cannot be removed: it is associated with cluster '{}'. Remove it from the cluster with PutClusterCapacityProviders, or delete the cluster, and try again.",
                c.name
            )));
        }
        p.status = CapacityProviderStatus::Inactive;
        p.update_status = Some(CapacityProviderUpdateStatus::DeleteComplete);
        self.put_capacity_provider(&mut state, &p)?;
        Ok(p)
    }

    /// Checks a cluster's new providers and default strategy: every named
    /// pool exists, is ACTIVE and belongs to no other cluster; the strategy
    /// uses only these providers.
    pub(super) fn check_cluster_capacity(
        state: &State,
        cluster: &str,
        capacity: &ClusterCapacity,
    ) -> Result<(), StateError> {
        for (n, p) in capacity.capacity_providers.iter().enumerate() {
            if capacity.capacity_providers[..n].contains(p) {
                return Err(StateError::InvalidParameter(format!(
                    "capacityProviders names '{p}' more than once."
                )));
            }
            if is_fargate(p) {
                continue;
            }
            if state
                .capacity_providers
                .get(p)
                .is_none_or(|cp| cp.status != CapacityProviderStatus::Active)
            {
                return Err(StateError::InvalidParameter(format!(
                    "The specified capacity provider '{p}' does not exist. Create it with CreateCapacityProvider, or use FARGATE or FARGATE_SPOT."
                )));
            }
            if let Some(other) = Self::associated_cluster(state, p).filter(|c| c.name != cluster) {
                return Err(StateError::InvalidParameter(format!(
                    "The specified capacity provider '{p}' is already associated with cluster '{}': a host pool serves one cluster.",
                    other.name
                )));
            }
        }
        validate_strategy(&capacity.default_strategy, &capacity.capacity_providers)
            .map_err(StateError::InvalidParameter)
    }

    /// Replaces a cluster's capacity providers and default strategy. A
    /// provider still used by tasks that have not stopped cannot be removed.
    pub fn put_cluster_capacity_providers(
        &self,
        cluster: &str,
        capacity: &ClusterCapacity,
    ) -> Result<Cluster, StateError> {
        let mut state = self.lock();
        let mut c = Self::cluster(&state, cluster)?.clone();
        Self::check_cluster_capacity(&state, &c.name, capacity)?;
        for removed in c
            .capacity_providers
            .iter()
            .filter(|p| !capacity.capacity_providers.contains(p))
        {
            let in_use = state.tasks.values().any(|t| {
                t.cluster == c.name
                    && !t.is_stopped()
                    && t.capacity_provider_name.as_deref() == Some(removed.as_str())
            });
            if in_use {
                return Err(StateError::ResourceInUse(format!(
                    "The specified capacity provider '{removed}' is in use and cannot be removed: tasks of cluster '{}' run on it. Stop them first.",
                    c.name
                )));
            }
        }
        c.capacity_providers
            .clone_from(&capacity.capacity_providers);
        c.default_capacity_provider_strategy
            .clone_from(&capacity.default_strategy);
        self.store
            .apply(&[Write::put(Table::Clusters, c.name.clone(), encode(&c))])?;
        state.clusters.insert(c.name.clone(), c.clone());
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::test_support::control_plane;

    fn pool(name: &str) -> CapacityProviderSpec {
        CapacityProviderSpec {
            name: name.into(),
            auto_scaling_group_provider: serde_json::json!({"autoScalingGroupArn": "arn:aws:autoscaling:us-east-1:1:autoScalingGroup:x"}),
            tags: vec![("team".into(), "a".into())],
        }
    }

    fn share(p: &str, weight: u32, base: u32) -> CapacityProviderShare {
        CapacityProviderShare {
            provider: p.into(),
            weight,
            base,
        }
    }

    fn capacity(providers: &[&str], strategy: Vec<CapacityProviderShare>) -> ClusterCapacity {
        ClusterCapacity {
            capacity_providers: providers.iter().map(|p| (*p).to_string()).collect(),
            default_strategy: strategy,
        }
    }

    #[test]
    fn create_describe_and_refuse_duplicates() {
        let (cp, store) = control_plane();
        let p = cp
            .create_capacity_provider("us-east-1", &pool("gpu"))
            .unwrap();
        assert_eq!(
            p.arn,
            "arn:aws:ecs:us-east-1:123456789012:capacity-provider/gpu"
        );
        assert_eq!(store.batches.lock().unwrap().len(), 1, "written through");
        assert!(matches!(
            cp.create_capacity_provider("us-east-1", &pool("gpu")),
            Err(StateError::Client(m)) if m.contains("already exists")
        ));
        assert!(matches!(
            cp.create_capacity_provider("us-east-1", &pool("fargate-x")),
            Err(StateError::InvalidParameter(_))
        ));
        let no_asg = CapacityProviderSpec {
            auto_scaling_group_provider: serde_json::json!({}),
            ..pool("cpu")
        };
        assert!(matches!(
            cp.create_capacity_provider("us-east-1", &no_asg),
            Err(StateError::InvalidParameter(m)) if m.contains("autoScalingGroupArn")
        ));
        let (all, _) = cp
            .describe_capacity_providers("us-east-1", None, None)
            .unwrap();
        let names: Vec<_> = all.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, vec!["FARGATE", "FARGATE_SPOT", "gpu"]);
        let (found, failures) = cp
            .describe_capacity_providers("us-east-1", Some(&[p.arn.clone(), "ghost".into()]), None)
            .unwrap();
        assert_eq!(found[0].name, "gpu");
        assert_eq!(failures[0].reason, "MISSING");
        assert!(failures[0].arn.ends_with("capacity-provider/ghost"));
    }

    #[test]
    fn associate_then_delete_only_after_removal() {
        let (cp, _) = control_plane();
        cp.create_capacity_provider("us-east-1", &pool("gpu"))
            .unwrap();
        cp.create_cluster("web", vec![]).unwrap();
        let c = cp
            .put_cluster_capacity_providers(
                "web",
                &capacity(&["gpu", "FARGATE"], vec![share("gpu", 1, 1)]),
            )
            .unwrap();
        assert_eq!(c.capacity_providers, vec!["gpu", "FARGATE"]);
        let (in_web, _) = cp
            .describe_capacity_providers("us-east-1", None, Some("web"))
            .unwrap();
        let names: Vec<_> = in_web.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, vec!["FARGATE", "gpu"]);
        assert!(matches!(
            cp.delete_capacity_provider("gpu"),
            Err(StateError::Client(m)) if m.contains("'web'")
        ));
        // A pool serves one cluster.
        cp.create_cluster("other", vec![]).unwrap();
        assert!(matches!(
            cp.put_cluster_capacity_providers("other", &capacity(&["gpu"], vec![])),
            Err(StateError::InvalidParameter(m)) if m.contains("already associated")
        ));
        cp.put_cluster_capacity_providers("web", &capacity(&[], vec![]))
            .unwrap();
        let gone = cp.delete_capacity_provider("gpu").unwrap();
        assert_eq!(gone.status, "INACTIVE");
        let (found, _) = cp
            .describe_capacity_providers("us-east-1", Some(&["gpu".into()]), None)
            .unwrap();
        assert_eq!(found[0].status, "INACTIVE");
        assert!(matches!(
            cp.delete_capacity_provider("gpu"),
            Err(StateError::Client(m)) if m.contains("does not exist")
        ));
        assert!(matches!(
            cp.delete_capacity_provider("FARGATE"),
            Err(StateError::Client(m)) if m.contains("reserved")
        ));
    }

    #[test]
    fn strategy_must_use_associated_providers() {
        let (cp, store) = control_plane();
        cp.create_cluster("web", vec![]).unwrap();
        let before = store.batches.lock().unwrap().len();
        assert!(matches!(
            cp.put_cluster_capacity_providers(
                "web",
                &capacity(&["FARGATE"], vec![share("FARGATE_SPOT", 1, 0)])
            ),
            Err(StateError::InvalidParameter(m)) if m.contains("not associated")
        ));
        assert!(matches!(
            cp.put_cluster_capacity_providers("web", &capacity(&["ghost"], vec![])),
            Err(StateError::InvalidParameter(m)) if m.contains("does not exist")
        ));
        assert!(matches!(
            cp.put_cluster_capacity_providers("nope", &capacity(&[], vec![])),
            Err(StateError::ClusterNotFound(_))
        ));
        assert_eq!(
            store.batches.lock().unwrap().len(),
            before,
            "nothing written"
        );
    }

    #[test]
    fn update_merges_into_the_recorded_group() {
        let (cp, _) = control_plane();
        cp.create_capacity_provider("us-east-1", &pool("gpu"))
            .unwrap();
        let mut update = serde_json::Map::new();
        update.insert("managedTerminationProtection".into(), "DISABLED".into());
        let p = cp.update_capacity_provider("gpu", &update).unwrap();
        assert_eq!(p.update_status, Some("UPDATE_COMPLETE".into()));
        assert_eq!(
            p.auto_scaling_group_provider["managedTerminationProtection"],
            "DISABLED"
        );
        assert!(p.auto_scaling_group_provider["autoScalingGroupArn"].is_string());
        assert!(matches!(
            cp.update_capacity_provider("FARGATE_SPOT", &update),
            Err(StateError::Client(_))
        ));
        assert!(matches!(
            cp.update_capacity_provider("ghost", &update),
            Err(StateError::Client(_))
        ));
    }
}
