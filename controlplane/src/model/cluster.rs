//! A cluster: a named group of container instances and tasks.

use serde::{Deserialize, Serialize};

use super::capacity_provider::CapacityProviderShare;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cluster {
    pub name: String,
    pub arn: String,
    /// INACTIVE once deleted (still describable, as in ECS).
    pub status: super::ClusterStatus,
    pub created_at_ms: i64,
    pub tags: Vec<(String, String)>,
    /// Cluster settings by name; ECS knows only `containerInsights`.
    #[serde(default = "default_settings")]
    pub settings: Vec<(String, String)>,
    /// `configuration` (execute-command settings) as the user sent it:
    /// recorded and echoed, not acted on.
    #[serde(default)]
    pub configuration: Option<serde_json::Value>,
    /// Capacity providers associated with the cluster
    /// (`PutClusterCapacityProviders`), in the order given.
    #[serde(default)]
    pub capacity_providers: Vec<String>,
    /// Used by `RunTask` when it names neither a strategy nor a launch type.
    #[serde(default)]
    pub default_capacity_provider_strategy: Vec<CapacityProviderShare>,
}

pub const CONTAINER_INSIGHTS: &str = "containerInsights";

fn default_settings() -> Vec<(String, String)> {
    vec![(CONTAINER_INSIGHTS.into(), "disabled".into())]
}

impl Cluster {
    /// Merges settings into the cluster's; later values win, as in `UpdateClusterSettings`.
    pub fn apply_settings(&mut self, settings: &[(String, String)]) {
        merge_settings(&mut self.settings, settings);
    }
}

fn merge_settings(into: &mut Vec<(String, String)>, settings: &[(String, String)]) {
    for (name, value) in settings {
        match into.iter_mut().find(|(n, _)| n == name) {
            Some(s) => s.1.clone_from(value),
            None => into.push((name.clone(), value.clone())),
        }
    }
}

/// A new cluster's settings: ECS's defaults, then the requested ones.
pub fn initial_settings(requested: &[(String, String)]) -> Vec<(String, String)> {
    let mut c = default_settings();
    merge_settings(&mut c, requested);
    c
}

/// Validates one cluster setting as ECS does: only `containerInsights`,
/// with `enabled`, `enhanced` or `disabled`.
pub fn validate_setting(name: &str, value: &str) -> Result<(), String> {
    if name != CONTAINER_INSIGHTS {
        return Err(format!(
            "Cluster setting '{name}' is not valid; the only setting is '{CONTAINER_INSIGHTS}'."
        ));
    }
    if !matches!(value, "enabled" | "enhanced" | "disabled") {
        return Err(format!(
            "Cluster setting '{CONTAINER_INSIGHTS}' must be enabled, enhanced or disabled, got '{value}'."
        ));
    }
    Ok(())
}

/// ECS cluster names: up to 255 letters, digits, hyphens and underscores.
pub fn validate_cluster_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 255 {
        return Err(format!(
            "clusterName must be 1-255 characters, got {}.",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(format!(
            "clusterName may contain only letters, digits, hyphens and underscores; found {c:?}."
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_names() {
        assert!(validate_cluster_name("my-cluster_1").is_ok());
        assert!(validate_cluster_name("").is_err());
        assert!(validate_cluster_name("a/b").unwrap_err().contains("'/'"));
        assert!(validate_cluster_name(&"x".repeat(256)).is_err());
    }

    #[test]
    fn settings_merge_and_validate() {
        let mut s = initial_settings(&[]);
        assert_eq!(
            s,
            vec![(CONTAINER_INSIGHTS.to_string(), "disabled".to_string())]
        );
        s = initial_settings(&[(CONTAINER_INSIGHTS.into(), "enabled".into())]);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].1, "enabled");
        assert!(validate_setting(CONTAINER_INSIGHTS, "enhanced").is_ok());
        assert!(validate_setting(CONTAINER_INSIGHTS, "on")
            .unwrap_err()
            .contains("'on'"));
        assert!(validate_setting("fancy", "enabled")
            .unwrap_err()
            .contains("'fancy'"));
    }

    #[test]
    fn old_records_get_default_settings() {
        let c: Cluster = serde_json::from_str(
            r#"{"name":"a","arn":"x","status":"ACTIVE","created_at_ms":1,"tags":[]}"#,
        )
        .unwrap();
        assert_eq!(c.settings, initial_settings(&[]));
        assert!(c.configuration.is_none());
        assert!(c.capacity_providers.is_empty());
        assert!(c.default_capacity_provider_strategy.is_empty());
    }
}
