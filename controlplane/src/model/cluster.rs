//! A cluster: a named group of container instances and tasks.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cluster {
    pub name: String,
    pub arn: String,
    /// ACTIVE or INACTIVE (deleted; still describable, as in ECS).
    pub status: String,
    pub created_at_ms: i64,
    pub tags: Vec<(String, String)>,
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
}
