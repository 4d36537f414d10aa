//! Records written by the control plane before ECS's vocabulary was enums (the build that
//! spoke protocol version 1) load after an upgrade and mean what they meant. The fixture,
//! `testdata/store-protocol-1.json`, was written by that build's own code through its API:
//! a cluster, task definitions (one deregistered), a running and a provisioning task,
//! container instances (one draining), a capacity provider and a service mid-deployment.

use std::sync::atomic::AtomicI64;
use std::sync::Arc;

use serde_json::Value;

use super::test_support::FixedClock;
use super::{ControlPlane, TaskFilter};
use crate::model::ports::Protocol;
use crate::model::service::{DeploymentStatus, RolloutState, ServiceStatus};
use crate::model::task_definition::ContainerCondition;
use crate::model::{
    ArnContext, CapacityProviderUpdateStatus, ContainerStatus, DesiredStatus, HealthStatus,
    InstanceStatus, LaunchType, NetworkMode, StopCode, Task, TaskDefinitionStatus, TaskStatus,
};
use crate::store::{MemoryStore, Store, Table, Write};

fn old_store() -> Arc<MemoryStore> {
    let fixture: Value =
        serde_json::from_str(include_str!("../../testdata/store-protocol-1.json")).unwrap();
    let store = Arc::new(MemoryStore::default());
    for table in Table::ALL {
        // A table newer than the fixture (client tokens) was empty then.
        for row in fixture[format!("{table:?}")]
            .as_array()
            .into_iter()
            .flatten()
        {
            let (key, value) = (row[0].as_str().unwrap(), &row[1]);
            store
                .apply(&[Write::put(
                    table,
                    key.to_owned(),
                    serde_json::to_vec(value).unwrap(),
                )])
                .unwrap();
        }
    }
    store
}

fn open(store: Arc<MemoryStore>) -> ControlPlane {
    let clock = Arc::new(FixedClock(AtomicI64::new(1_800_000_000_000)));
    let arns = ArnContext {
        region: "us-east-1".into(),
        account: "123456789012".into(),
    };
    ControlPlane::open(store, clock, arns).expect("the old records load")
}

fn tasks(cp: &ControlPlane, desired_status: Option<DesiredStatus>) -> Vec<Task> {
    let filter = TaskFilter {
        cluster: "web".into(),
        desired_status,
        ..TaskFilter::default()
    };
    cp.describe_tasks("web", &cp.list_tasks(&filter).unwrap())
        .unwrap()
        .0
}

#[test]
fn records_from_before_the_enums_load_and_mean_what_they_meant() {
    let store = old_store();
    let cp = open(store.clone());

    let live = tasks(&cp, None);
    let running = live
        .iter()
        .find(|t| t.last_status == TaskStatus::Running)
        .expect("the running task");
    assert!(live
        .iter()
        .any(|t| t.last_status == TaskStatus::Provisioning && t.is_pending()));
    assert_eq!(
        (
            running.desired_status,
            running.last_status,
            running.launch_type
        ),
        (DesiredStatus::Running, TaskStatus::Running, LaunchType::Ec2)
    );
    assert_eq!(running.network_mode, NetworkMode::Bridge);
    assert_eq!(running.health_status, Some(HealthStatus::Healthy));
    let web = &running.containers[1];
    assert_eq!(web.last_status, ContainerStatus::Running);
    assert_eq!(
        web.definition.depends_on,
        [("init".to_owned(), ContainerCondition::Success)]
    );
    let protocols: Vec<Protocol> = web
        .definition
        .port_mappings
        .iter()
        .map(|m| m.protocol)
        .collect();
    assert_eq!(protocols, [Protocol::Tcp, Protocol::Udp]);
    assert_eq!(web.network_bindings[0].protocol, Protocol::Udp);

    let service = &cp.describe_services("web", &["api".into()]).unwrap().0[0];
    assert_eq!(service.status, ServiceStatus::Active);
    assert_eq!(service.launch_type, LaunchType::Ec2);
    assert_eq!(
        (
            service.deployments[0].status,
            service.deployments[0].rollout_state
        ),
        (DeploymentStatus::Primary, RolloutState::InProgress)
    );
    assert_eq!(
        cp.describe_task_definition("app:1").unwrap().status,
        TaskDefinitionStatus::Inactive
    );
    let instances = cp.list_container_instances("web", None, None).unwrap();
    let (views, _) = cp.describe_container_instances("web", &instances).unwrap();
    let statuses: Vec<InstanceStatus> = views.iter().map(|v| v.instance.status).collect();
    assert!(statuses.contains(&InstanceStatus::Draining), "{statuses:?}");
    assert!(views
        .iter()
        .all(|v| v.instance.reserved_ports.contains(&(Protocol::Tcp, 22))));

    let (gpu, _) = cp
        .describe_capacity_providers("us-east-1", Some(&["gpu".into()]), None)
        .unwrap();
    assert_eq!(
        gpu[0].update_status,
        Some(CapacityProviderUpdateStatus::UpdateComplete)
    );

    // What this build writes over an old record reads back after a restart.
    cp.stop_task("web", &running.id, Some("upgraded")).unwrap();
    drop(cp);
    let again = open(store);
    let stopping = tasks(&again, Some(DesiredStatus::Stopped));
    let task = stopping.iter().find(|t| t.id == running.id).unwrap();
    assert_eq!(task.stop_code, Some(StopCode::UserInitiated));
    assert_eq!(task.stopped_reason.as_deref(), Some("upgraded"));
}
