//! A container instance: one agent's host, registered into one cluster.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::capacity_provider::{is_fargate, FARGATE};
use super::ports::{HostPort, Protocol, ECS_RESERVED_TCP_PORTS};

/// CPU units (1024 per core) and memory in MiB, as ECS counts them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    pub cpu: i64,
    pub memory_mib: i64,
}

impl Resources {
    pub fn saturating_sub(self, other: Resources) -> Resources {
        Resources {
            cpu: self.cpu - other.cpu,
            memory_mib: self.memory_mib - other.memory_mib,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerInstance {
    pub arn: String,
    pub id: String,
    pub cluster: String,
    pub hostname: String,
    pub registered: Resources,
    /// The capacity provider the host joined by its agent config: FARGATE
    /// or `FARGATE_SPOT` (a pool that serves every cluster) or a named host
    /// pool of its cluster; `None` for a plain EC2 container instance.
    /// Records from before capacity providers carry a `serves_fargate` flag
    /// instead: true reads as FARGATE.
    #[serde(
        default,
        alias = "serves_fargate",
        deserialize_with = "provider_or_legacy_flag"
    )]
    pub capacity_provider: Option<String>,
    pub status: super::InstanceStatus,
    pub agent_version: String,
    pub registered_at_ms: i64,
    /// Attributes the agent registers with (replaced on re-registration).
    pub attributes: Vec<(String, String)>,
    /// Attributes set with `PutAttributes`; they survive agent restarts.
    #[serde(default)]
    pub custom_attributes: Vec<(String, Option<String>)>,
    /// Bumped on every change, as ECS's `version` field.
    pub version: i64,
    /// `TagResource` tags.
    #[serde(default)]
    pub tags: Vec<(String, String)>,
    /// Host ports no task may take (the agent's reserved ports).
    #[serde(default = "default_reserved_ports")]
    pub reserved_ports: BTreeSet<HostPort>,
}

/// ECS's reserved ports, for agents that name none.
pub fn default_reserved_ports() -> BTreeSet<HostPort> {
    ECS_RESERVED_TCP_PORTS
        .iter()
        .map(|p| (Protocol::Tcp, *p))
        .collect()
}

fn provider_or_legacy_flag<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Stored {
        Provider(Option<String>),
        LegacyServesFargate(bool),
    }
    Ok(match Stored::deserialize(d)? {
        Stored::Provider(p) => p,
        Stored::LegacyServesFargate(true) => Some(FARGATE.into()),
        Stored::LegacyServesFargate(false) => None,
    })
}

/// At most this many `PutAttributes` attributes per instance, as in ECS.
pub const MAX_CUSTOM_ATTRIBUTES: usize = 10;

/// An attribute of a container instance, as `PutAttributes` and
/// `ListAttributes` name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub name: String,
    pub value: Option<String>,
    /// The container instance's id or ARN (answers carry the ARN).
    pub target_id: String,
}

impl ContainerInstance {
    /// Whether the host is in the FARGATE pool (`launchType: FARGATE`).
    pub fn serves_fargate(&self) -> bool {
        self.capacity_provider.as_deref() == Some(FARGATE)
    }

    /// Whether the host may run a task that `provider` places in `cluster`:
    /// Fargate pools serve every cluster, a named pool only its own.
    pub fn serves_provider(&self, provider: &str, cluster: &str) -> bool {
        self.capacity_provider.as_deref() == Some(provider)
            && (is_fargate(provider) || self.cluster == cluster)
    }

    /// Every attribute placement and filters see: the agent's, the ones
    /// Berth derives, then custom ones (which win on a name clash).
    pub fn all_attributes(&self) -> Vec<(String, Option<String>)> {
        let mut all: Vec<(String, Option<String>)> = self
            .attributes
            .iter()
            .map(|(k, v)| (k.clone(), Some(v.clone())))
            .collect();
        all.push(("ecs.os-type".into(), Some("linux".into())));
        all.push(("ecs.capability.task-eni".into(), None));
        if self.serves_fargate() {
            all.push(("berth.fargate-pool".into(), None));
        }
        if let Some(p) = &self.capacity_provider {
            all.push(("berth.capacity-provider".into(), Some(p.clone())));
        }
        all.retain(|(n, _)| !self.custom_attributes.iter().any(|(c, _)| c == n));
        all.extend(self.custom_attributes.iter().cloned());
        all
    }
}

/// ECS's rules for attribute names (1-128 of letters, digits, `-_./\\`)
/// and values (up to 128 of those plus `@:` and inner spaces).
pub fn validate_attribute(name: &str, value: Option<&str>) -> Result<(), String> {
    let name_ok = |c: char| c.is_ascii_alphanumeric() || "-_./\\".contains(c);
    if name.is_empty() || name.len() > 128 || !name.chars().all(name_ok) {
        return Err(format!(
            "Attribute name '{name}' is not valid: use 1-128 letters, digits, hyphens, underscores, periods and slashes."
        ));
    }
    if let Some(v) = value {
        let value_ok = |c: char| name_ok(c) || "@: ".contains(c);
        if v.is_empty() || v.len() > 128 || v.trim() != v || !v.chars().all(value_ok) {
            return Err(format!(
                "Value '{v}' of attribute '{name}' is not valid: use 1-128 letters, digits, spaces (not at either end) and -_./\\@:."
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(json_provider: &str) -> ContainerInstance {
        serde_json::from_str(&format!(
            r#"{{"arn":"a","id":"i","cluster":"c","hostname":"h","registered":{{"cpu":1,"memory_mib":1}},
                {json_provider}"status":"ACTIVE","agent_version":"0","registered_at_ms":0,
                "attributes":[],"version":1}}"#
        ))
        .unwrap()
    }

    #[test]
    fn old_records_keep_their_fargate_pool() {
        assert_eq!(
            instance(r#""serves_fargate":true,"#)
                .capacity_provider
                .as_deref(),
            Some("FARGATE")
        );
        assert_eq!(
            instance(r#""serves_fargate":false,"#).capacity_provider,
            None
        );
        assert_eq!(instance("").capacity_provider, None);
        let pool = instance(r#""capacity_provider":"gpu","#);
        assert_eq!(pool.capacity_provider.as_deref(), Some("gpu"));
        // What is written now reads back the same.
        let again: ContainerInstance =
            serde_json::from_slice(&serde_json::to_vec(&pool).unwrap()).unwrap();
        assert_eq!(again, pool);
    }

    #[test]
    fn fargate_pools_serve_every_cluster_named_pools_one() {
        let mut i = instance(r#""capacity_provider":"FARGATE_SPOT","#);
        assert!(i.serves_provider("FARGATE_SPOT", "any"));
        assert!(!i.serves_provider("FARGATE", "c"));
        assert!(!i.serves_fargate());
        i.capacity_provider = Some("gpu".into());
        assert!(i.serves_provider("gpu", "c"));
        assert!(!i.serves_provider("gpu", "other"));
        assert!(i
            .all_attributes()
            .contains(&("berth.capacity-provider".into(), Some("gpu".into()))));
    }

    #[test]
    fn attribute_rules() {
        assert!(validate_attribute("stack", Some("prod")).is_ok());
        assert!(validate_attribute("a/b.c-d_e", None).is_ok());
        assert!(validate_attribute("", None).is_err());
        assert!(validate_attribute("has space", None)
            .unwrap_err()
            .contains("'has space'"));
        assert!(validate_attribute("x", Some(" lead")).is_err());
        assert!(validate_attribute("x", Some("a b@c:d")).is_ok());
        assert!(validate_attribute(&"n".repeat(129), None).is_err());
    }
}
