//! Service commands: create, describe, list, update, delete. The reconciler
//! (`reconcile`, applied by `apply`) does the rest from the stored service.

use crate::model::placement::{PlacementConstraint, PlacementStrategy};
use crate::model::service::{
    self, validate_service_name, Deployment, DeploymentConfiguration, SchedulingStrategy,
    ServiceStatus,
};
use crate::model::TaskDefinitionStatus;
use crate::model::{arn, Cluster, LaunchType, NetworkMode, Service, TaskDefinition};
use crate::scheduler::{validate_strategy, CapacityProviderShare};
use crate::state::tasks::Pool;
use crate::state::{client_tokens, encode, Capacity, ControlPlane, ItemFailure, State, StateError};
use crate::store::{Table, Write};

/// A validated `CreateService` request.
#[derive(Debug, Clone)]
pub struct ServiceSpec {
    pub cluster: String,
    pub name: String,
    pub task_definition: String,
    pub desired_count: u32,
    /// A launch type, a strategy, or neither (the cluster's default).
    pub capacity: Capacity,
    pub placement_strategy: Vec<PlacementStrategy>,
    pub placement_constraints: Vec<PlacementConstraint>,
    pub deployment_configuration: DeploymentConfiguration,
    pub health_check_grace_period_seconds: Option<u32>,
    pub enable_execute_command: bool,
    pub tags: Vec<(String, String)>,
    /// `clientToken`: a retry of the same request gets the service it created.
    pub client_token: Option<client_tokens::ClientToken>,
    /// Fields kept and shown as given (`Service::kept`).
    pub kept: serde_json::Map<String, serde_json::Value>,
    pub scheduling_strategy: crate::model::service::SchedulingStrategy,
}

/// What a DAEMON service cannot be updated with: the count and placement follow its
/// instances.
fn daemon_update(u: &ServiceUpdate) -> Result<(), StateError> {
    let refused = if u.desired_count.is_some_and(|n| n != 0) {
        Some("desiredCount")
    } else if u.placement_strategy.as_ref().is_some_and(|p| !p.is_empty()) {
        Some("a placement strategy")
    } else if u.capacity_provider_strategy.is_some() {
        Some("a capacity provider strategy")
    } else {
        None
    };
    match refused {
        Some(what) => Err(StateError::InvalidParameter(format!(
            "{what} is not supported with the DAEMON scheduling strategy: the service runs one task on each container instance that meets its placement constraints."
        ))),
        None => Ok(()),
    }
}

/// What a service an external controller drives cannot be updated with: its deployments
/// are its task sets.
fn external_update(u: &ServiceUpdate) -> Result<(), StateError> {
    let refused = if u.task_definition.is_some() {
        Some("a task definition")
    } else if u.force_new_deployment {
        Some("forceNewDeployment")
    } else if u.capacity_provider_strategy.is_some()
        || u.placement_strategy.is_some()
        || u.placement_constraints.is_some()
    {
        Some("placement or capacity")
    } else {
        None
    };
    match refused {
        Some(what) => Err(StateError::InvalidParameter(format!(
            "{what} cannot be updated on a service with the EXTERNAL deployment controller: deploy through its task sets (CreateTaskSet, UpdateTaskSet, UpdateServicePrimaryTaskSet)."
        ))),
        None => Ok(()),
    }
}

/// A validated `UpdateService` request: `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct ServiceUpdate {
    pub cluster: String,
    pub service: String,
    pub task_definition: Option<String>,
    pub desired_count: Option<u32>,
    pub force_new_deployment: bool,
    pub deployment_configuration: Option<DeploymentConfiguration>,
    pub health_check_grace_period_seconds: Option<u32>,
    pub enable_execute_command: Option<bool>,
    /// Each of these, when given, replaces the current one and starts a
    /// new deployment, as ECS documents for `UpdateService`.
    pub capacity_provider_strategy: Option<Vec<CapacityProviderShare>>,
    pub placement_strategy: Option<Vec<PlacementStrategy>>,
    pub placement_constraints: Option<Vec<PlacementConstraint>>,
    /// Kept fields given: each replaces the service's (`Service::kept`).
    pub kept: serde_json::Map<String, serde_json::Value>,
}

/// The launch type and strategy a service keeps: its launch type, its own
/// strategy, or (naming neither) the cluster's default strategy copied in,
/// as ECS does; EC2 when the cluster has none.
pub(super) fn service_capacity(
    cluster: &Cluster,
    capacity: &Capacity,
) -> Result<(LaunchType, Vec<CapacityProviderShare>), StateError> {
    let strategy = match capacity {
        Capacity::LaunchType(l) => return Ok((*l, vec![])),
        Capacity::ClusterDefault if cluster.default_capacity_provider_strategy.is_empty() => {
            return Ok((LaunchType::Ec2, vec![]))
        }
        Capacity::ClusterDefault => cluster.default_capacity_provider_strategy.clone(),
        Capacity::Strategy(s) => s.clone(),
    };
    checked_strategy(cluster, strategy)
}

/// A service's strategy: ECS's limits, providers of the cluster, and a
/// weight somewhere, since a service's count can always grow past the base.
fn checked_strategy(
    cluster: &Cluster,
    strategy: Vec<CapacityProviderShare>,
) -> Result<(LaunchType, Vec<CapacityProviderShare>), StateError> {
    if strategy.is_empty() {
        return Err(StateError::InvalidParameter(
            "capacityProviderStrategy must name at least one capacity provider.".into(),
        ));
    }
    validate_strategy(&strategy, &cluster.capacity_providers)
        .map_err(StateError::InvalidParameter)?;
    if strategy.iter().all(|s| s.weight == 0) {
        return Err(StateError::InvalidParameter(
            "A service's capacityProviderStrategy needs at least one capacity provider with a weight above 0.".into(),
        ));
    }
    let launch_type = Pool::Provider(strategy[0].provider.clone()).launch_type();
    Ok((launch_type, strategy))
}

/// The launch types a service's tasks run as.
pub(super) fn launch_types(
    launch_type: LaunchType,
    strategy: &[CapacityProviderShare],
) -> Vec<LaunchType> {
    if strategy.is_empty() {
        return vec![launch_type];
    }
    strategy
        .iter()
        .map(|s| Pool::Provider(s.provider.clone()).launch_type())
        .collect()
}

fn not_found_td(reference: &str) -> StateError {
    StateError::InvalidParameter(format!(
        "TaskDefinition not found: '{reference}'. Register it first, or check the family and revision."
    ))
}

/// The task definition a service may deploy: ACTIVE, and able to run with
/// each of the service's launch types.
pub(super) fn deployable<'a>(
    state: &'a State,
    reference: &str,
    launch_types: &[LaunchType],
) -> Result<&'a TaskDefinition, StateError> {
    let td = ControlPlane::resolve_task_definition(state, reference)
        .map_err(|_| not_found_td(reference))?;
    if td.status != TaskDefinitionStatus::Active {
        return Err(StateError::InvalidParameter(format!(
            "TaskDefinition is inactive: '{}' is {}; deploy an ACTIVE revision.",
            td.arn, td.status
        )));
    }
    if launch_types.contains(&LaunchType::Fargate)
        && (td.network_mode != NetworkMode::Awsvpc || td.cpu.zip(td.memory_mib).is_none())
    {
        return Err(StateError::InvalidParameter(
            "Task definition does not support launch_type FARGATE: it needs networkMode awsvpc and task-level cpu and memory.".into(),
        ));
    }
    Ok(td)
}

impl ControlPlane {
    pub(super) fn service_ref<'a>(
        state: &'a State,
        cluster: &str,
        service: &str,
    ) -> Result<&'a Service, StateError> {
        let name = arn::resource_id(service);
        state
            .services
            .get(&service::key(cluster, name))
            .ok_or_else(|| StateError::ServiceNotFound(name.to_string()))
    }

    /// Writes the service through the store, then keeps it in memory.
    pub(super) fn put_service(&self, state: &mut State, s: &Service) -> Result<(), StateError> {
        self.store
            .apply(&[Write::put(Table::Services, s.key(), encode(s))])?;
        state.services.insert(s.key(), s.clone());
        Ok(())
    }

    /// Creates a service with its first deployment; the reconciler starts
    /// its tasks. An ACTIVE or DRAINING service of that name is refused, as
    /// ECS refuses it; an INACTIVE one is replaced.
    pub fn create_service(&self, spec: &ServiceSpec) -> Result<Service, StateError> {
        validate_service_name(&spec.name).map_err(StateError::InvalidParameter)?;
        spec.deployment_configuration
            .validate()
            .map_err(StateError::InvalidParameter)?;
        let mut state = self.lock();
        let cluster = Self::cluster(&state, &spec.cluster)?.clone();
        let now = self.now_ms();
        let token_key = spec
            .client_token
            .as_ref()
            .map(|t| client_tokens::key("CreateService", &cluster.arn, &t.token));
        if let (Some(key), Some(token)) = (&token_key, &spec.client_token) {
            let not_idempotent = |_| {
                StateError::InvalidParameter(format!(
                    "Creation of service was not idempotent: the clientToken '{}' was already used for a different CreateService request.",
                    token.token
                ))
            };
            let first = client_tokens::find(&state, key, token, now).map_err(not_idempotent)?;
            if let Some(s) = first
                .and_then(|r| r.ids.first())
                .and_then(|k| state.services.get(k))
            {
                return Ok(s.clone());
            }
        }
        if state
            .services
            .get(&service::key(&cluster.name, &spec.name))
            .is_some_and(|s| s.status != ServiceStatus::Inactive)
        {
            return Err(StateError::InvalidParameter(
                "Creation of service was not idempotent.".into(),
            ));
        }
        let (launch_type, strategy) = service_capacity(&cluster, &spec.capacity)?;
        // An external controller deploys through task sets: no task definition yet.
        let external = service::is_external(&spec.kept);
        let td = if external {
            String::new()
        } else {
            let td = deployable(
                &state,
                &spec.task_definition,
                &launch_types(launch_type, &strategy),
            )?;
            let lbs =
                crate::lb::targets::of_service(&spec.kept).map_err(StateError::InvalidParameter)?;
            self.check_load_balancers(&lbs, td)?;
            td.arn.clone()
        };
        let mut s = Service {
            name: spec.name.clone(),
            arn: self
                .arns_of(&cluster.arn)
                .service(&cluster.name, &spec.name),
            cluster: cluster.name.clone(),
            cluster_arn: cluster.arn.clone(),
            task_definition: td.clone(),
            desired_count: spec.desired_count,
            launch_type,
            status: ServiceStatus::Active,
            deployment_configuration: spec.deployment_configuration,
            health_check_grace_period_seconds: spec.health_check_grace_period_seconds,
            enable_execute_command: spec.enable_execute_command,
            tags: spec.tags.clone(),
            deployments: vec![],
            events: vec![],
            last_completed: None,
            counted_failures: vec![],
            throttle: crate::model::service::RestartThrottle::default(),
            created_at_ms: now,
            capacity_provider_strategy: strategy.clone(),
            placement_strategy: spec.placement_strategy.clone(),
            placement_constraints: spec.placement_constraints.clone(),
            past_deployments: vec![],
            kept: spec.kept.clone(),
            scheduling_strategy: spec.scheduling_strategy,
            task_sets: vec![],
        };
        if !external {
            s.start_deployment(
                Deployment::new(&td, spec.desired_count, launch_type, now)
                    .with_capacity_provider_strategy(strategy),
            );
        }
        match (token_key, &spec.client_token) {
            (Some(key), Some(token)) => {
                let (rec, writes) =
                    client_tokens::record(&state, &key, token, vec![s.key()], &[], now);
                self.store.apply(
                    &std::iter::once(Write::put(Table::Services, s.key(), encode(&s)))
                        .chain(writes)
                        .collect::<Vec<_>>(),
                )?;
                state.services.insert(s.key(), s.clone());
                client_tokens::remember(&mut state, key, rec, now);
            }
            _ => self.put_service(&mut state, &s)?,
        }
        Ok(s)
    }

    /// Services by name or ARN; unknown ones are `MISSING` failures.
    pub fn describe_services(
        &self,
        cluster: &str,
        services: &[String],
    ) -> Result<(Vec<Service>, Vec<ItemFailure>), StateError> {
        let state = self.lock();
        let cluster = Self::cluster(&state, cluster)?;
        let arns = self.arns_of(&cluster.arn);
        let cluster = cluster.name.clone();
        let mut found = Vec::new();
        let mut failures = Vec::new();
        for s in services {
            match Self::service_ref(&state, &cluster, s) {
                Ok(svc) => found.push(svc.clone()),
                Err(_) => failures.push(ItemFailure {
                    arn: if s.starts_with("arn:") {
                        s.clone()
                    } else {
                        arns.service(&cluster, s)
                    },
                    reason: "MISSING".into(),
                    detail: None,
                }),
            }
        }
        Ok((found, failures))
    }

    /// ARNs of the cluster's ACTIVE and DRAINING services, by name.
    pub fn list_services(
        &self,
        cluster: &str,
        launch_type: Option<LaunchType>,
        strategy: Option<SchedulingStrategy>,
    ) -> Result<Vec<String>, StateError> {
        let state = self.lock();
        let cluster = Self::cluster(&state, cluster)?.name.clone();
        Ok(state
            .services
            .values()
            .filter(|s| s.cluster == cluster && s.status != ServiceStatus::Inactive)
            .filter(|s| launch_type.is_none_or(|l| s.launch_type == l))
            .filter(|s| strategy.is_none_or(|k| s.scheduling_strategy == k))
            .map(|s| s.arn.clone())
            .collect())
    }

    /// Changes the desired count and settings; a new task definition, or
    /// `forceNewDeployment`, starts a new PRIMARY deployment.
    pub fn update_service(&self, u: &ServiceUpdate) -> Result<Service, StateError> {
        if let Some(c) = &u.deployment_configuration {
            c.validate().map_err(StateError::InvalidParameter)?;
        }
        let mut state = self.lock();
        let cluster = Self::cluster(&state, &u.cluster)?.name.clone();
        let mut s = Self::service_ref(&state, &cluster, &u.service)?.clone();
        if s.status != ServiceStatus::Active {
            return Err(StateError::ServiceNotActive(s.name));
        }
        if s.scheduling_strategy == SchedulingStrategy::Daemon {
            daemon_update(u)?;
        }
        if s.is_external() {
            external_update(u)?;
        }
        let now = self.now_ms();
        let mut placement_changed = false;
        if let Some(strategy) = &u.capacity_provider_strategy {
            if strategy.is_empty() {
                // ECS keeps a service on the strategy it has.
                return Err(StateError::InvalidParameter(
                    "capacityProviderStrategy must name at least one capacity provider: a service cannot be updated to use the cluster's default capacity provider strategy.".into(),
                ));
            }
            let cluster = Self::cluster(&state, &cluster)?;
            (s.launch_type, s.capacity_provider_strategy) =
                checked_strategy(cluster, strategy.clone())?;
            placement_changed = true;
        }
        if let Some(p) = &u.placement_strategy {
            s.placement_strategy.clone_from(p);
            placement_changed = true;
        }
        if let Some(p) = &u.placement_constraints {
            s.placement_constraints.clone_from(p);
            placement_changed = true;
        }
        let td = match &u.task_definition {
            Some(r) => deployable(
                &state,
                r,
                &launch_types(s.launch_type, &s.capacity_provider_strategy),
            )?
            .arn
            .clone(),
            None => s.task_definition.clone(),
        };
        if u.kept.contains_key("loadBalancers") || u.task_definition.is_some() {
            let kept = if u.kept.contains_key("loadBalancers") {
                &u.kept
            } else {
                &s.kept
            };
            if let Some(def) = state.task_definitions.values().find(|d| d.arn == td) {
                let lbs =
                    crate::lb::targets::of_service(kept).map_err(StateError::InvalidParameter)?;
                self.check_load_balancers(&lbs, def)?;
            }
        }
        if let Some(n) = u.desired_count {
            s.desired_count = n;
        }
        if let Some(c) = u.deployment_configuration {
            s.deployment_configuration = c;
        }
        if let Some(g) = u.health_check_grace_period_seconds {
            s.health_check_grace_period_seconds = Some(g);
        }
        if let Some(e) = u.enable_execute_command {
            s.enable_execute_command = e;
        }
        s.kept.extend(u.kept.clone());
        if td != s.task_definition || u.force_new_deployment || placement_changed {
            s.start_deployment(
                Deployment::new(&td, s.desired_count, s.launch_type, now)
                    .with_capacity_provider_strategy(s.capacity_provider_strategy.clone()),
            );
        } else if let Some(d) = s.deployments.first_mut() {
            if d.desired_count != s.desired_count {
                d.desired_count = s.desired_count;
                d.updated_at_ms = now;
            }
        }
        self.put_service(&mut state, &s)?;
        Ok(s)
    }

    /// Marks the service DRAINING with no desired tasks; the reconciler stops
    /// them and then makes it INACTIVE. Without `force`, refused while the
    /// service still wants tasks, as ECS refuses it.
    pub fn delete_service(
        &self,
        cluster: &str,
        service: &str,
        force: bool,
    ) -> Result<Service, StateError> {
        let mut state = self.lock();
        let cluster = Self::cluster(&state, cluster)?.name.clone();
        let mut s = Self::service_ref(&state, &cluster, service)?.clone();
        if s.status != ServiceStatus::Active {
            return Err(StateError::ServiceNotActive(s.name));
        }
        // A daemon is never scaled by hand, so it needs no force (as in ECS).
        let daemon = s.scheduling_strategy == SchedulingStrategy::Daemon;
        if s.desired_count > 0 && !force && !daemon {
            return Err(StateError::InvalidParameter(
                "The service cannot be stopped while it is scaled above 0.".into(),
            ));
        }
        s.status = ServiceStatus::Draining;
        s.desired_count = 0;
        for d in &mut s.deployments {
            d.desired_count = 0;
        }
        self.put_service(&mut state, &s)?;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::test_support::spec;
    use crate::state::test_support::{control_plane, fleet};

    #[test]
    fn create_describe_list_and_persist() {
        let (cp, _) = fleet();
        let s = cp.create_service(&spec("api", 2)).unwrap();
        assert_eq!(
            s.arn,
            "arn:aws:ecs:us-east-1:123456789012:service/default/api"
        );
        assert_eq!(s.deployments.len(), 1);
        assert!(s.task_definition.ends_with(":task-definition/web:1"));
        assert!(matches!(
            cp.create_service(&spec("api", 1)),
            Err(StateError::InvalidParameter(m)) if m == "Creation of service was not idempotent."
        ));
        let (found, failures) = cp
            .describe_services("default", &[s.arn.clone(), "ghost".into()])
            .unwrap();
        assert_eq!(found[0].name, "api");
        assert_eq!(failures[0].reason, "MISSING");
        assert!(failures[0].arn.ends_with(":service/default/ghost"));
        assert_eq!(
            cp.list_services("default", None, None).unwrap(),
            vec![s.arn]
        );
        assert!(matches!(
            cp.list_services("nope", None, None),
            Err(StateError::ClusterNotFound(_))
        ));
    }

    #[test]
    fn bad_requests_create_nothing() {
        let (cp, store) = control_plane();
        let mut bad = spec("a b", 1);
        assert!(cp.create_service(&bad).is_err());
        bad.name = "ok".into();
        assert!(matches!(
            cp.create_service(&bad),
            Err(StateError::ClusterNotFound(_))
        ));
        cp.create_cluster("default", vec![]).unwrap();
        let writes = store.batches.lock().unwrap().len();
        assert!(matches!(
            cp.create_service(&bad),
            Err(StateError::InvalidParameter(m)) if m.contains("TaskDefinition not found")
        ));
        assert_eq!(store.batches.lock().unwrap().len(), writes);
    }

    #[test]
    fn update_starts_a_deployment_only_when_the_definition_changes_or_forced() {
        let (cp, _) = fleet();
        cp.create_service(&spec("api", 2)).unwrap();
        let update = |u: ServiceUpdate| {
            cp.update_service(&ServiceUpdate {
                cluster: "default".into(),
                service: "api".into(),
                ..u
            })
            .unwrap()
        };
        let s = update(ServiceUpdate {
            desired_count: Some(3),
            ..ServiceUpdate::default()
        });
        assert_eq!(s.deployments.len(), 1);
        assert_eq!(s.deployments[0].desired_count, 3);
        let s = update(ServiceUpdate {
            force_new_deployment: true,
            ..ServiceUpdate::default()
        });
        assert_eq!(s.deployments.len(), 2);
        assert_eq!(s.deployments[0].status.as_str(), "PRIMARY");
        assert_eq!(s.deployments[1].status.as_str(), "ACTIVE");
        let s = update(ServiceUpdate {
            task_definition: Some("web:1".into()),
            ..ServiceUpdate::default()
        });
        assert_eq!(s.deployments.len(), 2, "same definition: no new deployment");
    }

    #[test]
    fn delete_needs_force_above_zero_and_blocks_cluster_deletion() {
        let (cp, _) = control_plane();
        cp.create_cluster("default", vec![]).unwrap();
        crate::state::test_support::register_web(&cp);
        cp.create_service(&spec("api", 1)).unwrap();
        assert!(matches!(
            cp.delete_cluster("default"),
            Err(StateError::ClusterContainsServices { count: 1, .. })
        ));
        assert!(matches!(
            cp.delete_service("default", "api", false),
            Err(StateError::InvalidParameter(m)) if m == "The service cannot be stopped while it is scaled above 0."
        ));
        let s = cp.delete_service("default", "api", true).unwrap();
        assert_eq!(s.status, ServiceStatus::Draining);
        assert!(matches!(
            cp.update_service(&ServiceUpdate {
                cluster: "default".into(),
                service: "api".into(),
                ..ServiceUpdate::default()
            }),
            Err(StateError::ServiceNotActive(_))
        ));
        assert!(matches!(
            cp.delete_service("default", "ghost", true),
            Err(StateError::ServiceNotFound(_))
        ));
        // No tasks: the reconciler finishes the deletion.
        cp.reconcile_services().unwrap();
        let (found, _) = cp.describe_services("default", &["api".into()]).unwrap();
        assert_eq!(found[0].status, ServiceStatus::Inactive);
        assert!(cp.list_services("default", None, None).unwrap().is_empty());
        cp.delete_cluster("default").unwrap();
    }
}
