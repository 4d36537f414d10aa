//! What the services tests share: a service spec, agents reaching a status, the service
//! as described.

use super::ServiceSpec;
use crate::model::service::DeploymentConfiguration;
use crate::model::task::TaskReport;
use crate::model::{LaunchType, Service};
use crate::state::{Capacity, ControlPlane};

/// A service `name` of `desired` `web` tasks on EC2 in `default`.
pub(crate) fn spec(name: &str, desired: u32) -> ServiceSpec {
    ServiceSpec {
        cluster: "default".into(),
        name: name.into(),
        task_definition: "web".into(),
        desired_count: desired,
        capacity: Capacity::LaunchType(LaunchType::Ec2),
        placement_strategy: vec![],
        placement_constraints: vec![],
        deployment_configuration: DeploymentConfiguration::default(),
        health_check_grace_period_seconds: None,
        enable_execute_command: false,
        tags: vec![],
        client_token: None,
        kept: serde_json::Map::new(),
        scheduling_strategy: crate::model::service::SchedulingStrategy::Replica,
    }
}

/// The agent of `instance` reaches `status` (RUNNING or STOPPED) for every task whose
/// desired status it is.
pub(crate) fn report_all(cp: &ControlPlane, instance: &str, status: &str) {
    for t in cp.desired_tasks(instance) {
        if t.desired_status == status {
            let report = TaskReport::new(&t.arn, status.into());
            cp.apply_report(instance, &report).unwrap();
        }
    }
}

/// `UpdateService` of `api` in `default` with `forceNewDeployment`.
pub(crate) fn redeploy(cp: &ControlPlane) -> Result<Service, crate::state::StateError> {
    cp.update_service(&super::ServiceUpdate {
        cluster: "default".into(),
        service: "api".into(),
        force_new_deployment: true,
        ..super::ServiceUpdate::default()
    })
}

/// The service `api` of `default`, as described.
pub(crate) fn service(cp: &ControlPlane) -> Service {
    cp.describe_services("default", &["api".into()]).unwrap().0[0].clone()
}
