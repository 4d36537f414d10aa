//! ARNs shaped like AWS's, so tools that parse them keep working.

use serde::{Deserialize, Serialize};

/// The region and account an ARN carries. A request's ARNs carry the region it was signed
/// for; what is made inside a cluster (tasks, services, container instances) carries the
/// cluster's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArnContext {
    pub region: String,
    pub account: String,
}

impl ArnContext {
    /// The region and account of an existing ARN (`arn:aws:ecs:REGION:ACCOUNT:...`).
    pub fn of(arn: &str) -> Option<Self> {
        let mut parts = arn.splitn(6, ':');
        let (Some("arn"), Some(_partition), Some(_service), Some(region), Some(account)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        (!region.is_empty() && !account.is_empty()).then(|| Self {
            region: region.to_owned(),
            account: account.to_owned(),
        })
    }

    /// The same account in another region.
    #[must_use]
    pub fn in_region(&self, region: &str) -> Self {
        Self {
            region: region.to_owned(),
            account: self.account.clone(),
        }
    }

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

    /// A task set's ARN: its id (`ecs-svc/...`) under its service.
    pub fn task_set(&self, cluster: &str, service: &str, id: &str) -> String {
        format!("{}:task-set/{cluster}/{service}/{id}", self.prefix())
    }

    pub fn capacity_provider(&self, name: &str) -> String {
        format!("{}:capacity-provider/{name}", self.prefix())
    }
}

/// A taggable resource, as its ARN names it (`TagResource` and friends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceRef {
    Cluster(String),
    TaskDefinition { family: String, revision: u32 },
    Task { cluster: String, id: String },
    Service { cluster: String, name: String },
    ContainerInstance { cluster: String, id: String },
    CapacityProvider(String),
}

/// Parses an ECS ARN of a taggable resource. Region and account are not
/// checked: the control plane has one of each.
pub fn parse_resource_arn(arn: &str) -> Result<ResourceRef, String> {
    let bad = || {
        format!(
            "The ARN '{arn}' is not valid: expected arn:aws:ecs:REGION:ACCOUNT:TYPE/..., for a cluster, task definition, task, service, container instance or capacity provider."
        )
    };
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ["arn", _, "ecs", _, _, resource] = parts.as_slice() else {
        return Err(bad());
    };
    // A task definition's revision follows a second ':' in the resource part.
    let (kind, rest) = resource.split_once('/').ok_or_else(bad)?;
    let segs: Vec<&str> = rest.split('/').collect();
    let two = |f: fn(String, String) -> ResourceRef| match segs.as_slice() {
        [a, b] if !a.is_empty() && !b.is_empty() => Ok(f((*a).to_string(), (*b).to_string())),
        _ => Err(bad()),
    };
    match (kind, segs.as_slice()) {
        ("cluster", [name]) if !name.is_empty() => Ok(ResourceRef::Cluster((*name).to_string())),
        ("capacity-provider", [name]) if !name.is_empty() => {
            Ok(ResourceRef::CapacityProvider((*name).to_string()))
        }
        ("task-definition", [fr]) => {
            let (family, revision) = fr.rsplit_once(':').ok_or_else(bad)?;
            let revision = revision.parse().map_err(|_| bad())?;
            Ok(ResourceRef::TaskDefinition {
                family: family.to_string(),
                revision,
            })
        }
        ("task", _) => two(|cluster, id| ResourceRef::Task { cluster, id }),
        ("service", [_]) => Err(format!(
            "The service ARN '{arn}' is in the short format: tag services by their long ARN (arn:aws:ecs:REGION:ACCOUNT:service/CLUSTER/NAME)."
        )),
        ("service", _) => two(|cluster, name| ResourceRef::Service { cluster, name }),
        ("container-instance", _) => {
            two(|cluster, id| ResourceRef::ContainerInstance { cluster, id })
        }
        _ => Err(bad()),
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
        assert_eq!(
            ctx.capacity_provider("pool"),
            "arn:aws:ecs:us-east-1:123456789012:capacity-provider/pool"
        );
        assert_eq!(new_id().len(), 32);
    }

    #[test]
    fn region_and_account_come_back_out_of_an_arn() {
        let eu = ArnContext {
            region: "eu-west-1".into(),
            account: "210987654321".into(),
        };
        assert_eq!(ArnContext::of(&eu.task("web", "abc")), Some(eu.clone()));
        assert_eq!(
            ArnContext::of("arn:aws:secretsmanager:eu-west-1:210987654321:secret:db-AbCdEf"),
            Some(eu.clone())
        );
        assert_eq!(
            eu.in_region("ap-south-2").cluster("c"),
            "arn:aws:ecs:ap-south-2:210987654321:cluster/c"
        );
        for bad in [
            "",
            "web",
            "arn:aws:ecs",
            "arn:aws:ecs::1:cluster/x",
            "arn:aws:ecs:r::cluster/x",
        ] {
            assert_eq!(ArnContext::of(bad), None, "{bad}");
        }
    }
}

#[cfg(test)]
mod resource_tests {
    use super::*;

    #[test]
    fn resource_arns() {
        let p = "arn:aws:ecs:us-east-1:123456789012";
        assert_eq!(
            parse_resource_arn(&format!("{p}:cluster/web")),
            Ok(ResourceRef::Cluster("web".into()))
        );
        assert_eq!(
            parse_resource_arn(&format!("{p}:task-definition/web:3")),
            Ok(ResourceRef::TaskDefinition {
                family: "web".into(),
                revision: 3
            })
        );
        assert_eq!(
            parse_resource_arn(&format!("{p}:task/web/abc")),
            Ok(ResourceRef::Task {
                cluster: "web".into(),
                id: "abc".into()
            })
        );
        assert_eq!(
            parse_resource_arn(&format!("{p}:service/web/api")),
            Ok(ResourceRef::Service {
                cluster: "web".into(),
                name: "api".into()
            })
        );
        assert_eq!(
            parse_resource_arn(&format!("{p}:container-instance/web/ci")),
            Ok(ResourceRef::ContainerInstance {
                cluster: "web".into(),
                id: "ci".into()
            })
        );
        assert_eq!(
            parse_resource_arn(&format!("{p}:capacity-provider/pool")),
            Ok(ResourceRef::CapacityProvider("pool".into()))
        );
        assert!(parse_resource_arn(&format!("{p}:service/api"))
            .unwrap_err()
            .contains("long ARN"));
        for bad in [
            "web",
            "arn:aws:s3:::bucket/x",
            &format!("{p}:task-definition/web"),
            &format!("{p}:task/abc"),
            &format!("{p}:volume/x"),
        ] {
            assert!(parse_resource_arn(bad).is_err(), "{bad}");
        }
    }
}
