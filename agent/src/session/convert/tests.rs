//! The session edge: what a protobuf task means, what is refused (and how
//! the refusal names the task and field), and how a report goes back.

use std::time::Duration;

use berth_proto::v1 as pb;

use super::InvalidTaskError;
use crate::model::{
    ContainerCondition, ContainerReport, ContainerStatus, DesiredStatus, HealthStatus,
    NetworkBinding, NetworkMode, Protocol, StopCode, TaskReport, TaskSpec, TaskStatus,
};

const ARN: &str = "arn:aws:ecs:us-east-1:000000000000:task/default/0123456789abcdef";

fn container(name: &str) -> pb::ContainerSpec {
    pb::ContainerSpec {
        name: name.into(),
        image: "registry.local/busybox:1".into(),
        essential: true,
        ..pb::ContainerSpec::default()
    }
}

fn task() -> pb::TaskSpec {
    pb::TaskSpec {
        task_arn: ARN.into(),
        task_id: "0123456789abcdef".into(),
        family: "web".into(),
        revision: 3,
        desired_status: pb::DesiredStatus::Running.into(),
        network_mode: pb::NetworkMode::Bridge.into(),
        containers: vec![container("web")],
        ..pb::TaskSpec::default()
    }
}

fn refused(t: pb::TaskSpec) -> InvalidTaskError {
    TaskSpec::try_from(t).expect_err("the task must be refused")
}

#[test]
fn a_task_converts_with_its_enums_and_defaults() {
    let mut t = task();
    t.desired_status = pb::DesiredStatus::Stopped.into();
    t.memory_mib = 256;
    let mut web = container("web");
    web.stop_timeout_secs = 7;
    web.depends_on = vec![pb::ContainerDependency {
        container_name: "db".into(),
        condition: pb::DependencyCondition::Healthy.into(),
    }];
    web.port_mappings = vec![pb::PortMapping {
        container_port: 80,
        host_port: 0,
        protocol: pb::Protocol::Udp.into(),
    }];
    web.health_check = Some(pb::HealthCheck {
        command: vec!["CMD-SHELL".into(), "wget -q localhost".into()],
        interval_secs: 10,
        timeout_secs: 2,
        retries: 3,
        start_period_secs: 0,
    });
    t.containers = vec![web, container("db")];
    let spec = TaskSpec::try_from(t).unwrap();
    assert_eq!(spec.desired_status, DesiredStatus::Stopped);
    assert_eq!(spec.network_mode, NetworkMode::Bridge);
    assert_eq!((spec.cpu, spec.memory_mib), (None, Some(256)));
    let web = &spec.containers[0];
    assert_eq!(web.stop_timeout, Some(Duration::from_secs(7)));
    assert_eq!(web.depends_on[0].condition, ContainerCondition::Healthy);
    assert_eq!(web.port_mappings[0].protocol, Protocol::Udp);
    assert_eq!(web.port_mappings[0].host_port, None);
    let hc = web.health_check.as_ref().unwrap();
    assert_eq!(hc.command, ["/bin/sh", "-c", "wget -q localhost"]);
    assert_eq!(
        spec.containers[1].stop_timeout, None,
        "0: the agent's default"
    );
}

#[test]
fn unspecified_desired_status_and_network_mode_are_refused() {
    let mut t = task();
    t.desired_status = pb::DesiredStatus::Unspecified.into();
    let e = refused(t);
    assert_eq!(
        e,
        InvalidTaskError::Unspecified {
            task: ARN.into(),
            field: "desiredStatus".into()
        }
    );
    assert_eq!(
        e.to_string(),
        format!("task {ARN}: desiredStatus is not set (UNSPECIFIED)")
    );

    let mut t = task();
    t.network_mode = pb::NetworkMode::Unspecified.into();
    assert!(matches!(
        refused(t),
        InvalidTaskError::Unspecified { field, .. } if field == "networkMode"
    ));
}

#[test]
fn unknown_enum_values_are_refused_not_defaulted() {
    let mut t = task();
    t.desired_status = 42;
    assert_eq!(
        refused(t).to_string(),
        format!("task {ARN}: desiredStatus has the unknown value 42")
    );
    let mut t = task();
    t.network_mode = 9;
    assert!(matches!(
        refused(t),
        InvalidTaskError::UnknownValue { field, value: 9, .. } if field == "networkMode"
    ));
}

#[test]
fn container_enum_fields_name_the_container() {
    let mut t = task();
    t.containers[0].depends_on = vec![pb::ContainerDependency {
        container_name: "db".into(),
        condition: pb::DependencyCondition::Unspecified.into(),
    }];
    assert_eq!(
        refused(t).to_string(),
        format!("task {ARN}: container 'web' dependsOn 'db' condition is not set (UNSPECIFIED)")
    );

    let mut t = task();
    t.containers[0].port_mappings = vec![pb::PortMapping {
        container_port: 8080,
        host_port: 0,
        protocol: 7,
    }];
    assert_eq!(
        refused(t).to_string(),
        format!("task {ARN}: container 'web' portMappings 8080 protocol has the unknown value 7")
    );
}

#[test]
fn ports_ids_and_health_commands_are_checked() {
    let mut t = task();
    t.containers[0].port_mappings = vec![pb::PortMapping {
        container_port: 70_000,
        host_port: 0,
        protocol: pb::Protocol::Tcp.into(),
    }];
    assert!(matches!(
        refused(t),
        InvalidTaskError::NotAPort { value: 70_000, .. }
    ));

    let mut t = task();
    t.task_id = "../etc".into();
    assert!(matches!(refused(t), InvalidTaskError::TaskId { .. }));

    let mut t = task();
    t.task_arn = String::new();
    t.containers[0].health_check = Some(pb::HealthCheck {
        command: vec!["NONE".into()],
        ..pb::HealthCheck::default()
    });
    assert_eq!(
        refused(t).to_string(),
        "task 0123456789abcdef: container 'web' healthCheck command [\"NONE\"] is not CMD or CMD-SHELL",
        "without an ARN the error names the task id"
    );
}

#[test]
fn reports_go_back_as_enums() {
    let report = TaskReport {
        task_arn: ARN.into(),
        last_status: TaskStatus::Deprovisioning,
        containers: vec![
            ContainerReport {
                name: "web".into(),
                last_status: ContainerStatus::Stopped,
                exit_code: Some(137),
                health_status: Some(HealthStatus::Unhealthy),
                network_bindings: vec![NetworkBinding {
                    bind_ip: "0.0.0.0".into(),
                    container_port: 80,
                    host_port: 32768,
                    protocol: Protocol::Tcp,
                }],
                ..ContainerReport::default()
            },
            ContainerReport {
                name: "side".into(),
                ..ContainerReport::default()
            },
        ],
        stop_code: Some(StopCode::EssentialContainerExited),
        stopped_reason: Some("Essential container in task exited".into()),
        execution_stopped_at_ms: Some(5),
        health_status: Some(HealthStatus::Unhealthy),
        ..TaskReport::default()
    };
    let s = pb::TaskStatus::from(report);
    assert_eq!(s.last_status(), pb::TaskState::Deprovisioning);
    assert_eq!(s.stop_code(), pb::StopCode::EssentialContainerExited);
    assert_eq!(s.health_status(), pb::HealthStatus::Unhealthy);
    assert_eq!(s.execution_stopped_at_ms, 5);
    assert_eq!((s.started_at_ms, s.pull_started_at_ms), (0, 0));
    let web = &s.containers[0];
    assert_eq!(web.last_status(), pb::ContainerState::Stopped);
    assert_eq!(web.health_status(), pb::HealthStatus::Unhealthy);
    assert_eq!(web.network_bindings[0].protocol(), pb::Protocol::Tcp);
    let side = &s.containers[1];
    assert_eq!(side.last_status(), pb::ContainerState::Pending);
    assert_eq!(
        side.health_status(),
        pb::HealthStatus::Unspecified,
        "no health check"
    );
}

#[test]
fn a_report_without_a_stop_code_sends_unspecified() {
    let s = pb::TaskStatus::from(TaskReport::default());
    assert_eq!(s.last_status(), pb::TaskState::Provisioning);
    assert_eq!(s.stop_code(), pb::StopCode::Unspecified);
    assert_eq!(s.health_status(), pb::HealthStatus::Unspecified);
}

#[test]
fn firelens_senders_wait_for_their_router_as_ecs_orders_them() {
    let sender = |name: &str| {
        let mut c = container(name);
        c.log_configuration = Some(pb::LogConfiguration {
            log_driver: "awsfirelens".into(),
            options: [("Name".to_owned(), "forward".to_owned())].into(),
        });
        c
    };
    let mut router = container("log_router");
    router.firelens_configuration = Some(pb::FirelensConfiguration {
        r#type: "fluentbit".into(),
        options: [("enable-ecs-log-metadata".to_owned(), "false".to_owned())].into(),
    });
    let mut own = sender("own");
    own.depends_on = vec![pb::ContainerDependency {
        container_name: "log_router".into(),
        condition: pb::DependencyCondition::Complete.into(),
    }];
    let mut t = task();
    t.containers = vec![router.clone(), sender("app"), own, container("plain")];
    let spec = TaskSpec::try_from(t.clone()).unwrap();
    let deps = |i: usize| -> Vec<(String, ContainerCondition)> {
        spec.containers[i]
            .depends_on
            .iter()
            .map(|d| (d.container.clone(), d.condition))
            .collect()
    };
    assert_eq!(
        deps(1),
        [("log_router".to_owned(), ContainerCondition::Start)]
    );
    assert_eq!(
        deps(2),
        [("log_router".to_owned(), ContainerCondition::Complete)],
        "a dependency the definition gives is kept"
    );
    assert!(
        deps(3).is_empty(),
        "a container that does not route is left alone"
    );
    let r = spec.containers[0].options.firelens_router.as_ref().unwrap();
    assert!(!r.ecs_log_metadata);
    assert_eq!(
        spec.containers[1]
            .options
            .firelens_route
            .as_ref()
            .unwrap()
            .output,
        "forward"
    );

    // A router with a health check is waited for until healthy.
    router.health_check = Some(pb::HealthCheck {
        command: vec!["CMD".into(), "true".into()],
        ..pb::HealthCheck::default()
    });
    t.containers[0] = router;
    let spec = TaskSpec::try_from(t).unwrap();
    assert_eq!(
        spec.containers[1].depends_on[0].condition,
        ContainerCondition::Healthy
    );
}

/// Generated control-plane messages (`scripts/fuzz-nightly.sh` runs more): any bytes on
/// the session decode or are refused by protobuf, and any task that decodes becomes a
/// `TaskSpec` or an `InvalidTaskError`, never a panic.
mod fuzz {
    use proptest::prelude::*;
    use prost::Message;

    use super::*;

    proptest! {
        #[test]
        fn any_session_bytes_decode_or_are_refused(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
            if let Ok(m) = pb::ControlMessage::decode(bytes.as_slice()) {
                if let Some(pb::control_message::Kind::DesiredTasks(d)) = m.kind {
                    for t in d.tasks {
                        let _ = TaskSpec::try_from(t);
                    }
                }
            }
        }

        #[test]
        fn damaged_real_tasks_convert_or_are_refused(
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let mut task = pb::TaskSpec {
                task_arn: ARN.into(),
                task_id: "0123456789abcdef".into(),
                containers: vec![container("web"), container("side")],
                ..pb::TaskSpec::default()
            };
            task.containers[1].depends_on.push(pb::ContainerDependency {
                container_name: "web".into(),
                condition: 1,
            });
            let mut bytes = task.encode_to_vec();
            let i = at.index(bytes.len());
            bytes[i] = byte;
            if let Ok(t) = pb::TaskSpec::decode(bytes.as_slice()) {
                let _ = TaskSpec::try_from(t);
            }
        }
    }
}
