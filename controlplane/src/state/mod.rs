//! The control plane's state machine: commands in, validated changes written
//! through the store, then applied in memory. API and agent sessions are thin
//! callers of these methods.

mod account_settings;
mod attributes;
mod capacity_providers;
pub(crate) mod client_tokens;
mod clusters;
mod instance_admin;
mod instances;
mod tags;
mod task_definitions;
pub(crate) mod tasks;
#[cfg(test)]
mod upgrade_tests;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{de::DeserializeOwned, Serialize};
use tokio::sync::watch;

use crate::model::{
    ArnContext, CapacityProvider, Cluster, ContainerInstance, Service, Task, TaskDefinition,
};
use crate::store::{Store, StoreError, Table, Write};

pub use account_settings::Setting;
pub use capacity_providers::{CapacityProviderSpec, ClusterCapacity};
pub use clusters::{ClusterCounts, ClusterSpec, ClusterUpdate};
pub use instance_admin::DEREGISTERED_REASON;
pub use instances::{InstanceView, Registration as InstanceRegistration};
pub use tags::TagChange;
pub use task_definitions::{FamilyFilter, TaskDefinitionFilter};
pub use tasks::{
    Capacity, ContainerOverride, RunTask, RunTaskOutcome, StartTask, TaskFilter, TaskLaunch,
};

/// The clock, injected so state transitions are testable.
pub trait Clock: Send + Sync + 'static {
    fn now_ms(&self) -> i64;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
    }
}

/// Failures of control-plane commands. The API maps each to one ECS error type.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "Cluster not found: '{0}'. Create it with CreateCluster, or check the name and region."
    )]
    ClusterNotFound(String),
    #[error("{0}")]
    InvalidParameter(String),
    #[error("Cluster '{cluster}' has {count} registered container instance(s): deregister them with DeregisterContainerInstance before deleting the cluster.")]
    ClusterContainsContainerInstances { cluster: String, count: usize },
    #[error("Cluster '{cluster}' has {count} active service(s): scale them to 0 and delete them before deleting the cluster.")]
    ClusterContainsServices { cluster: String, count: usize },
    #[error("Cluster '{cluster}' has {count} task(s) that have not stopped: stop them with StopTask before deleting the cluster.")]
    ClusterContainsTasks { cluster: String, count: usize },
    #[error("Service not found: '{0}'. Check the name and cluster with ListServices.")]
    ServiceNotFound(String),
    #[error("Service was not ACTIVE: '{0}' is being deleted or was deleted.")]
    ServiceNotActive(String),
    #[error("{0}")]
    TargetNotFound(String),
    #[error("{0}")]
    TaskSetNotFound(String),
    #[error("{0}")]
    AttributeLimitExceeded(String),
    #[error("{0}")]
    ResourceNotFound(String),
    #[error("{0}")]
    ResourceInUse(String),
    #[error("{0}")]
    Client(String),
    /// A client token reused for another request.
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("corrupt record {key} in {table:?}: {message}")]
    Corrupt {
        table: Table,
        key: String,
        message: String,
    },
}

/// A failure entry as ECS returns it beside results (`failures`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemFailure {
    pub arn: String,
    pub reason: String,
    pub detail: Option<String>,
}

/// The in-memory state behind the lock (every write went through the store first).
#[derive(Default)]
pub(crate) struct State {
    pub(crate) clusters: BTreeMap<String, Cluster>,
    /// Keyed by (family, revision).
    pub(crate) task_definitions: BTreeMap<(String, u32), TaskDefinition>,
    /// Keyed by task id.
    pub(crate) tasks: BTreeMap<String, Task>,
    /// Keyed by container-instance ARN.
    pub(crate) instances: BTreeMap<String, ContainerInstance>,
    /// Keyed by `cluster/name`.
    pub(crate) services: BTreeMap<String, Service>,
    /// Named capacity providers (host pools), by name. FARGATE and
    /// `FARGATE_SPOT` are built in and never stored.
    pub(crate) capacity_providers: BTreeMap<String, CapacityProvider>,
    /// Open agent sessions, by container-instance ARN: bumped when the
    /// instance's desired task set changes.
    pub(crate) sessions: HashMap<String, watch::Sender<u64>>,
    /// When each agent was last heard from (any message), by ARN. Kept in
    /// memory only: after a restart every instance is first seen at `started_at_ms`.
    pub(crate) last_seen: HashMap<String, i64>,
    /// `RunTask` client tokens, by `client_tokens::key`.
    pub(crate) client_tokens: BTreeMap<String, client_tokens::TokenRecord>,
    /// Account settings' values, by `principal|name`.
    pub(crate) account_settings: BTreeMap<String, String>,
}

pub struct ControlPlane {
    pub(crate) store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    /// The account of every ARN, and the region of those no request names one for (the
    /// `default` cluster an agent's registration makes).
    pub default_arns: ArnContext,
    state: Mutex<State>,
    /// When service tasks on an out-of-contact instance are replaced.
    pub(crate) lost_policy: crate::services::hosts::LostPolicy,
    /// The load balancers' target groups, for services' `loadBalancers`.
    pub(crate) target_groups:
        std::sync::OnceLock<Arc<dyn crate::services::load_balancers::TargetGroups>>,
}

fn decode<T: DeserializeOwned>(table: Table, key: &str, bytes: &[u8]) -> Result<T, StateError> {
    serde_json::from_slice(bytes).map_err(|e| StateError::Corrupt {
        table,
        key: key.into(),
        message: e.to_string(),
    })
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("domain types always serialize")
}

impl ControlPlane {
    /// Loads all state from the store.
    pub fn open(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        default_arns: ArnContext,
    ) -> Result<Self, StateError> {
        let mut state = State::default();
        for (k, v) in store.load(Table::Clusters)? {
            let c: Cluster = decode(Table::Clusters, &k, &v)?;
            state.clusters.insert(c.name.clone(), c);
        }
        for (k, v) in store.load(Table::TaskDefinitions)? {
            let td: TaskDefinition = decode(Table::TaskDefinitions, &k, &v)?;
            state
                .task_definitions
                .insert((td.family.clone(), td.revision), td);
        }
        for (k, v) in store.load(Table::Tasks)? {
            let t: Task = decode(Table::Tasks, &k, &v)?;
            state.tasks.insert(t.id.clone(), t);
        }
        for (k, v) in store.load(Table::ContainerInstances)? {
            let ci: ContainerInstance = decode(Table::ContainerInstances, &k, &v)?;
            state.instances.insert(ci.arn.clone(), ci);
        }
        for (k, v) in store.load(Table::Services)? {
            let s: Service = decode(Table::Services, &k, &v)?;
            state.services.insert(s.key(), s);
        }
        for (k, v) in store.load(Table::ClientTokens)? {
            let r: client_tokens::TokenRecord = decode(Table::ClientTokens, &k, &v)?;
            state.client_tokens.insert(k, r);
        }
        for (k, v) in store.load(Table::AccountSettings)? {
            state
                .account_settings
                .insert(k, String::from_utf8_lossy(&v).into_owned());
        }
        for (k, v) in store.load(Table::CapacityProviders)? {
            let p: CapacityProvider = decode(Table::CapacityProviders, &k, &v)?;
            state.capacity_providers.insert(p.name.clone(), p);
        }
        let lost_policy = crate::services::hosts::LostPolicy {
            lost_after_ms: crate::services::hosts::DEFAULT_LOST_AFTER_MS,
            started_at_ms: clock.now_ms(),
        };
        Ok(Self {
            store,
            clock,
            default_arns,
            state: Mutex::new(state),
            lost_policy,
            target_groups: std::sync::OnceLock::new(),
        })
    }

    /// How long an instance's agent may be out of contact before its
    /// service tasks are replaced elsewhere (default
    /// `services::hosts::DEFAULT_LOST_AFTER_MS`).
    #[must_use]
    pub fn with_lost_after_ms(mut self, ms: i64) -> Self {
        self.lost_policy.lost_after_ms = ms;
        self
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The control plane's clock, in Unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// ARNs for what a request signed for `region` creates.
    pub fn arns_in(&self, region: &str) -> ArnContext {
        self.default_arns.in_region(region)
    }

    /// ARNs for what is made inside the resource `arn` names (a cluster's tasks): its region
    /// and account.
    pub fn arns_of(&self, arn: &str) -> ArnContext {
        ArnContext::of(arn).unwrap_or_else(|| self.default_arns.clone())
    }

    /// A persisted value from the meta table (e.g. the API credentials).
    pub fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self
            .store
            .load(Table::Meta)?
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v))
    }

    pub fn set_meta(&self, key: &str, value: Vec<u8>) -> Result<(), StateError> {
        Ok(self.store.apply(&[Write::put(Table::Meta, key, value)])?)
    }

    pub(crate) fn cluster<'a>(
        state: &'a State,
        name_or_arn: &str,
    ) -> Result<&'a Cluster, StateError> {
        let name = crate::model::arn::cluster_name(name_or_arn);
        state
            .clusters
            .get(name)
            .filter(|c| c.status == crate::model::ClusterStatus::Active)
            .ok_or_else(|| StateError::ClusterNotFound(name.to_string()))
    }

    /// Wakes the sessions of the given instances: their desired task set changed.
    pub(crate) fn notify(state: &State, instance_arns: impl IntoIterator<Item = String>) {
        for arn in instance_arns {
            if let Some(tx) = state.sessions.get(&arn) {
                tx.send_modify(|v| *v += 1);
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use std::sync::atomic::{AtomicI64, Ordering};

    use super::*;
    use crate::model::task_definition::tests_support::container;
    use crate::model::task_definition::Registration as TdRegistration;
    use crate::model::{LaunchType, Resources};
    use crate::store::MemoryStore;

    pub struct FixedClock(pub AtomicI64);

    impl FixedClock {
        pub fn advance_ms(&self, ms: i64) {
            self.0.fetch_add(ms, Ordering::SeqCst);
        }
    }

    impl Clock for FixedClock {
        fn now_ms(&self) -> i64 {
            self.0.load(Ordering::SeqCst)
        }
    }

    pub fn control_plane() -> (ControlPlane, Arc<MemoryStore>) {
        let (cp, store, _) = control_plane_with_clock();
        (cp, store)
    }

    /// A control plane whose clock the test moves.
    pub fn control_plane_with_clock() -> (ControlPlane, Arc<MemoryStore>, Arc<FixedClock>) {
        let store = Arc::new(MemoryStore::default());
        let clock = Arc::new(FixedClock(AtomicI64::new(1_700_000_000_000)));
        let cp = ControlPlane::open(
            store.clone(),
            clock.clone(),
            ArnContext {
                region: "us-east-1".into(),
                account: "123456789012".into(),
            },
        )
        .unwrap();
        (cp, store, clock)
    }

    /// An agent registration: 2048 CPU units, 1024 MiB.
    pub fn registration(cluster: &str, fargate: bool) -> InstanceRegistration {
        InstanceRegistration {
            cluster: cluster.into(),
            container_instance_arn: None,
            hostname: "host1".into(),
            resources: Resources {
                cpu: 2048,
                memory_mib: 1024,
            },
            capacity_provider: fargate.then(|| "FARGATE".to_string()),
            agent_version: "0.1.0".into(),
            attributes: vec![],
            reserved_ports: crate::model::container_instance::default_reserved_ports(),
        }
    }

    /// A `RunTask` of the `web` family (256 CPU, 512 MiB).
    pub fn run(cluster: &str, launch_type: LaunchType, count: usize) -> RunTask {
        RunTask {
            launch: TaskLaunch {
                cluster: cluster.into(),
                task_definition: "web".into(),
                started_by: None,
                group: None,
                container_overrides: vec![],
                cpu: None,
                memory_mib: None,
                overrides: serde_json::json!({}),
                tags: vec![],
                enable_execute_command: false,
                placement_strategy: vec![],
                placement_constraints: vec![],
                propagate_task_definition_tags: false,
                ecs_managed_tags: false,
            },
            count,
            capacity: Capacity::LaunchType(launch_type),
            client_token: None,
        }
    }

    /// Registers the FARGATE-compatible `web` family (256 CPU, 512 MiB).
    pub fn register_web(cp: &ControlPlane) {
        let mut c = container("web");
        c.memory_mib = Some(400);
        let td = TdRegistration {
            family: "web".into(),
            containers: vec![c],
            cpu: Some("256".into()),
            memory: Some("512".into()),
            requires_compatibilities: vec!["FARGATE".into()],
            ..TdRegistration::default()
        };
        cp.register_task_definition("us-east-1", &td, serde_json::json!({}), vec![])
            .unwrap();
    }

    /// The `web` family and one connected instance in `default` that also
    /// serves FARGATE; returns its ARN.
    pub fn fleet() -> (ControlPlane, String) {
        let (cp, _) = control_plane();
        let arn = add_instance(&cp, "default");
        (cp, arn)
    }

    /// Registers and connects one more instance in `cluster`.
    pub fn add_instance(cp: &ControlPlane, cluster: &str) -> String {
        if cp.describe_task_definition("web").is_err() {
            register_web(cp);
        }
        let ci = cp.register_instance(&registration(cluster, true)).unwrap();
        // The receiver may go: the session stays open until closed.
        let _rx = cp.open_session(&ci.arn).unwrap();
        ci.arn
    }
}
