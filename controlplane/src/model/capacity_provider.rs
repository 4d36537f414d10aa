//! Capacity providers: the built-in `FARGATE` and `FARGATE_SPOT` pools and
//! the named host pools an operator creates.
//!
//! In ECS a named capacity provider wraps an EC2 Auto Scaling group. Berth
//! has no Auto Scaling groups: a host joins a pool by its agent's config
//! (`--capacity-provider NAME`). `CreateCapacityProvider` still takes the
//! `autoScalingGroupProvider` member ECS requires; Berth records it (and
//! echoes it back) but never acts on it.

use serde::{Deserialize, Serialize};

pub use berth_ecs::{FARGATE, FARGATE_SPOT};

/// Whether `name` is one of the built-in Fargate providers, which exist in
/// every account, serve every cluster and cannot be created or deleted.
pub fn is_fargate(name: &str) -> bool {
    name == FARGATE || name == FARGATE_SPOT
}

/// One entry of a `capacityProviderStrategy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapacityProviderShare {
    pub provider: String,
    /// Tasks this provider runs before any weight applies (0-100000).
    pub base: u32,
    /// Its share of the tasks beyond the bases (0-1000).
    pub weight: u32,
}

/// A named host pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapacityProvider {
    pub name: String,
    pub arn: String,
    /// INACTIVE once deleted (still describable by name, as in ECS).
    pub status: super::CapacityProviderStatus,
    /// ECS's `updateStatus`; None for the built-in providers. (Records from before it
    /// was an enum stored "" for none.)
    #[serde(deserialize_with = "update_status_or_empty")]
    pub update_status: Option<super::CapacityProviderUpdateStatus>,
    /// `autoScalingGroupProvider` as the user sent it (its
    /// `autoScalingGroupArn` is required). Recorded and echoed only: Berth
    /// hosts join the pool by agent config, not through an Auto Scaling group.
    pub auto_scaling_group_provider: serde_json::Value,
    pub tags: Vec<(String, String)>,
    pub created_at_ms: i64,
}

fn update_status_or_empty<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<super::CapacityProviderUpdateStatus>, D::Error> {
    match Option::<String>::deserialize(d)?.as_deref() {
        None | Some("") => Ok(None),
        Some(s) => super::CapacityProviderUpdateStatus::parse(s)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown updateStatus '{s}'"))),
    }
}

/// ECS's rules for capacity provider names: 1-255 letters, digits,
/// underscores and hyphens, not starting with `aws`, `ecs` or `fargate`.
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 255 {
        return Err(format!(
            "The capacity provider name must be 1-255 characters, got {}.",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(format!(
            "The capacity provider name may contain only letters, digits, underscores and hyphens; found {c:?}."
        ));
    }
    let lower = name.to_ascii_lowercase();
    if let Some(p) = ["aws", "ecs", "fargate"]
        .iter()
        .find(|p| lower.starts_with(*p))
    {
        return Err(format!(
            "The capacity provider name '{name}' is not valid: names cannot start with \"{p}\" (\"aws\", \"ecs\" and \"fargate\" are reserved)."
        ));
    }
    Ok(())
}

/// The provider a host's agent asked to join: FARGATE, `FARGATE_SPOT`, or a
/// name a named pool could have.
pub fn validate_host_provider(name: &str) -> Result<(), String> {
    if is_fargate(name) {
        Ok(())
    } else {
        validate_name(name)
    }
}

/// Checks `autoScalingGroupProvider` as ECS does: an object with an
/// `autoScalingGroupArn`.
pub fn validate_auto_scaling_group_provider(v: &serde_json::Value) -> Result<(), String> {
    match v.get("autoScalingGroupArn").and_then(serde_json::Value::as_str) {
        Some(arn) if !arn.is_empty() => Ok(()),
        _ => Err(
            "autoScalingGroupProvider.autoScalingGroupArn is required. (Berth records it only: hosts join the pool with the agent's --capacity-provider.)"
                .into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("pool-a_1").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("a b").unwrap_err().contains("' '"));
        for reserved in ["awsPool", "ECS-x", "fargate2", "FARGATE"] {
            assert!(validate_name(reserved).is_err(), "{reserved}");
        }
        assert!(validate_host_provider("FARGATE").is_ok());
        assert!(validate_host_provider("FARGATE_SPOT").is_ok());
        assert!(validate_host_provider("fargate").is_err());
        assert!(validate_host_provider("gpu").is_ok());
    }

    #[test]
    fn auto_scaling_group_arn_is_required() {
        assert!(validate_auto_scaling_group_provider(
            &serde_json::json!({"autoScalingGroupArn": "arn:aws:autoscaling:x"})
        )
        .is_ok());
        assert!(validate_auto_scaling_group_provider(&serde_json::json!({})).is_err());
    }
}
