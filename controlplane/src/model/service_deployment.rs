//! A service's deployments as ECS's service deployments and revisions show them
//! (`ListServiceDeployments`, `DescribeServiceDeployments`, `DescribeServiceRevisions`):
//! their ARNs, and the status ECS would give each. Pure.

use super::service::{Deployment, DeploymentStatus, RolloutState, Service};
pub use berth_ecs::ServiceDeploymentStatus;

/// `arn:...:service-deployment/<cluster>/<service>/<digits of the deployment id>`.
pub fn deployment_arn(service_arn: &str, deployment_id: &str) -> String {
    arn(service_arn, "service-deployment", deployment_id)
}

/// The revision a deployment deploys: `arn:...:service-revision/<cluster>/<service>/<digits>`.
pub fn revision_arn(service_arn: &str, deployment_id: &str) -> String {
    arn(service_arn, "service-revision", deployment_id)
}

fn arn(service_arn: &str, kind: &str, deployment_id: &str) -> String {
    let digits = deployment_id
        .strip_prefix("ecs-svc/")
        .unwrap_or(deployment_id);
    format!(
        "{}/{digits}",
        service_arn.replacen(":service/", &format!(":{kind}/"), 1)
    )
}

/// The service ARN and deployment id a service-deployment (or -revision) ARN names.
pub fn parse(arn: &str) -> Option<(String, String)> {
    let kind = [":service-deployment/", ":service-revision/"]
        .into_iter()
        .find(|k| arn.contains(k))?;
    let (service, digits) = arn.rsplit_once('/')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((
        service.replacen(kind, ":service/", 1),
        format!("ecs-svc/{digits}"),
    ))
}

/// The deployment and every other, current first, then past (newest first).
pub fn all(service: &Service) -> impl Iterator<Item = &Deployment> {
    service.deployments.iter().chain(&service.past_deployments)
}

/// ECS's status of a deployment, and why.
pub fn status(service: &Service, d: &Deployment) -> (ServiceDeploymentStatus, String) {
    let current_primary = d.status == DeploymentStatus::Primary
        && d.finished_at_ms.is_none()
        && service.deployments.iter().any(|c| c.id == d.id);
    // The deployment that went back from this one, if the circuit breaker rolled it back.
    let rollback = all(service).find(|r| r.is_rollback && r.replaced.contains(&d.id));
    match (d.rollout_state, rollback) {
        (RolloutState::Completed, _) => (
            ServiceDeploymentStatus::Successful,
            d.rollout_state_reason.clone(),
        ),
        (RolloutState::Failed, Some(r)) => (
            match r.rollout_state {
                RolloutState::Completed => ServiceDeploymentStatus::RollbackSuccessful,
                RolloutState::Failed => ServiceDeploymentStatus::RollbackFailed,
                RolloutState::InProgress => ServiceDeploymentStatus::RollbackInProgress,
            },
            d.rollout_state_reason.clone(),
        ),
        (RolloutState::Failed, None) => (
            ServiceDeploymentStatus::Stopped,
            d.rollout_state_reason.clone(),
        ),
        (RolloutState::InProgress, _) if current_primary => (
            ServiceDeploymentStatus::InProgress,
            d.rollout_state_reason.clone(),
        ),
        (RolloutState::InProgress, _) => match all(service).find(|n| n.replaced.contains(&d.id)) {
            Some(n) => (
                ServiceDeploymentStatus::Stopped,
                format!("Deployment {} replaced it before it completed.", n.id),
            ),
            None => (
                ServiceDeploymentStatus::Stopped,
                "The service was deleted.".into(),
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_name_the_service_and_the_deployment_and_parse_back() {
        let service = "arn:aws:ecs:eu-west-1:123456789012:service/prod/web";
        let id = "ecs-svc/1234567890123456789";
        let d = deployment_arn(service, id);
        assert_eq!(
            d,
            "arn:aws:ecs:eu-west-1:123456789012:service-deployment/prod/web/1234567890123456789"
        );
        assert_eq!(parse(&d), Some((service.to_owned(), id.to_owned())));
        let r = revision_arn(service, id);
        assert!(r.contains(":service-revision/prod/web/"));
        assert_eq!(parse(&r), Some((service.to_owned(), id.to_owned())));
        assert_eq!(parse(service), None);
        assert_eq!(
            parse("arn:aws:ecs:r:1:service-deployment/prod/web/abc"),
            None
        );
    }
}
