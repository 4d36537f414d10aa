//! ARNs shaped like AWS's, so tools that parse them keep working.

use serde::{Deserialize, Serialize};

/// Region and account every ARN of this control plane carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArnContext {
    pub region: String,
    pub account: String,
}

impl ArnContext {
    fn prefix(&self) -> String {
        format!("arn:aws:ecs:{}:{}", self.region, self.account)
    }

    pub fn cluster(&self, name: &str) -> String {
        format!("{}:cluster/{name}", self.prefix())
    }

    pub fn task_definition(&self, family: &str, revision: u32) -> String {
        format!("{}:task-definition/{family}:{revision}", self.prefix())
    }

    pub fn task(&self, cluster: &str, id: &str) -> String {
        format!("{}:task/{cluster}/{id}", self.prefix())
    }

    pub fn container(&self, cluster: &str, task_id: &str, container_id: &str) -> String {
        format!(
            "{}:container/{cluster}/{task_id}/{container_id}",
            self.prefix()
        )
    }

    pub fn container_instance(&self, cluster: &str, id: &str) -> String {
        format!("{}:container-instance/{cluster}/{id}", self.prefix())
    }

    pub fn service(&self, cluster: &str, name: &str) -> String {
        format!("{}:service/{cluster}/{name}", self.prefix())
    }
}

/// The last path segment of an ARN (`.../task/c/abc` -> `abc`), or the input
/// itself when it is not an ARN.
pub fn resource_id(arn_or_id: &str) -> &str {
    if arn_or_id.starts_with("arn:") {
        arn_or_id.rsplit('/').next().unwrap_or(arn_or_id)
    } else {
        arn_or_id
    }
}

/// A cluster reference as ECS accepts it: a name or a cluster ARN.
pub fn cluster_name(name_or_arn: &str) -> &str {
    if let Some(rest) = name_or_arn.strip_prefix("arn:") {
        rest.rsplit_once(":cluster/")
            .map_or(name_or_arn, |(_, name)| name)
    } else {
        name_or_arn
    }
}

/// A fresh 32-hex-character id, as ECS uses for tasks and container instances.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_look_like_aws() {
        let ctx = ArnContext {
            region: "us-east-1".into(),
            account: "123456789012".into(),
        };
        assert_eq!(
            ctx.cluster("web"),
            "arn:aws:ecs:us-east-1:123456789012:cluster/web"
        );
        assert_eq!(
            ctx.task("web", "abc"),
            "arn:aws:ecs:us-east-1:123456789012:task/web/abc"
        );
        assert_eq!(
            ctx.task_definition("f", 3),
            "arn:aws:ecs:us-east-1:123456789012:task-definition/f:3"
        );
        assert_eq!(resource_id("arn:aws:ecs:us-east-1:1:task/web/abc"), "abc");
        assert_eq!(resource_id("abc"), "abc");
        assert_eq!(
            ctx.service("web", "api"),
            "arn:aws:ecs:us-east-1:123456789012:service/web/api"
        );
        assert_eq!(cluster_name("arn:aws:ecs:us-east-1:1:cluster/web"), "web");
        assert_eq!(cluster_name("web"), "web");
        assert_eq!(new_id().len(), 32);
    }
}
