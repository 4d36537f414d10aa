//! `CreateCluster`, `DescribeClusters`, `ListClusters`, `UpdateCluster`,
//! `UpdateClusterSettings`, `DeleteCluster`.

use serde::Deserialize;
use serde_json::{json, Value};

use super::capacity_providers::{strategy_in, StrategyItem};
use super::render::ClusterInclude;
use super::{page, render, tags_in, ApiError, Tag};
use crate::model::Cluster;
use crate::state::{ClusterCapacity, ClusterSpec, ClusterUpdate, ControlPlane};

#[derive(Deserialize)]
pub(super) struct Setting {
    name: Option<String>,
    value: Option<String>,
}

/// `settings` as (name, value); both members are required by ECS.
fn settings_in(settings: Option<Vec<Setting>>) -> Result<Vec<(String, String)>, ApiError> {
    settings
        .unwrap_or_default()
        .into_iter()
        .map(|s| match (s.name, s.value) {
            (Some(n), Some(v)) => Ok((n, v)),
            _ => Err(ApiError::invalid(
                "Each cluster setting needs a name and a value, e.g. {\"name\": \"containerInsights\", \"value\": \"enabled\"}.",
            )),
        })
        .collect()
}

/// The cluster with its current counts, as mutating operations return it.
pub(super) fn with_counts(cp: &ControlPlane, cluster: &Cluster) -> Value {
    let region = cp.arns_of(&cluster.arn).region;
    let (described, _) = cp.describe_clusters(&region, std::slice::from_ref(&cluster.name));
    let counts = described.first().map(|(_, c)| *c).unwrap_or_default();
    json!({ "cluster": render::cluster(cluster, counts, ClusterInclude::MUTATION) })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CreateCluster {
    cluster_name: Option<String>,
    tags: Option<Vec<Tag>>,
    settings: Option<Vec<Setting>>,
    configuration: Option<Value>,
    capacity_providers: Option<Vec<String>>,
    default_capacity_provider_strategy: Option<Vec<StrategyItem>>,
}

pub(super) fn create(
    cp: &ControlPlane,
    region: &str,
    req: CreateCluster,
) -> Result<Value, ApiError> {
    let spec = ClusterSpec {
        name: req.cluster_name.unwrap_or_else(|| "default".into()),
        tags: tags_in(req.tags)?,
        settings: settings_in(req.settings)?,
        configuration: req.configuration,
        capacity: ClusterCapacity {
            capacity_providers: req.capacity_providers.unwrap_or_default(),
            default_strategy: strategy_in(
                "defaultCapacityProviderStrategy",
                req.default_capacity_provider_strategy.unwrap_or_default(),
            )?,
        },
    };
    let cluster = cp.create_cluster_with(region, &spec)?;
    Ok(with_counts(cp, &cluster))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DescribeClusters {
    clusters: Option<Vec<String>>,
    include: Option<Vec<String>>,
}

fn include_in(include: Option<Vec<String>>) -> Result<ClusterInclude, ApiError> {
    let mut out = ClusterInclude::default();
    for i in include.unwrap_or_default() {
        match i.as_str() {
            "TAGS" => out.tags = true,
            "SETTINGS" => out.settings = true,
            "STATISTICS" => out.statistics = true,
            "CONFIGURATIONS" => out.configurations = true,
            // Berth has no cluster attachments: nothing to add.
            "ATTACHMENTS" => {}
            other => {
                return Err(ApiError::invalid(format!(
                    "include '{other}' is not valid; use ATTACHMENTS, CONFIGURATIONS, SETTINGS, STATISTICS or TAGS."
                )))
            }
        }
    }
    Ok(out)
}

pub(super) fn describe(
    cp: &ControlPlane,
    region: &str,
    req: DescribeClusters,
) -> Result<Value, ApiError> {
    let names = req.clusters.unwrap_or_else(|| vec!["default".into()]);
    if names.len() > 100 {
        return Err(ApiError::invalid(format!(
            "At most 100 clusters can be described at once, got {}.",
            names.len()
        )));
    }
    let include = include_in(req.include)?;
    let (found, failures) = cp.describe_clusters(region, &names);
    Ok(json!({
        "clusters": found.iter().map(|(c, n)| render::cluster(c, *n, include)).collect::<Vec<_>>(),
        "failures": failures.iter().map(render::failure).collect::<Vec<_>>(),
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ListClusters {
    max_results: Option<i64>,
    next_token: Option<String>,
}

pub(super) fn list(cp: &ControlPlane, req: &ListClusters) -> Result<Value, ApiError> {
    page(
        &cp.list_clusters(),
        req.max_results,
        req.next_token.as_deref(),
        "clusterArns",
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct UpdateCluster {
    cluster: String,
    settings: Option<Vec<Setting>>,
    configuration: Option<Value>,
}

pub(super) fn update(cp: &ControlPlane, req: UpdateCluster) -> Result<Value, ApiError> {
    let update = ClusterUpdate {
        settings: settings_in(req.settings)?,
        configuration: req.configuration,
    };
    let cluster = cp.update_cluster(&req.cluster, &update)?;
    Ok(with_counts(cp, &cluster))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct UpdateClusterSettings {
    cluster: String,
    settings: Vec<Setting>,
}

pub(super) fn update_settings(
    cp: &ControlPlane,
    req: UpdateClusterSettings,
) -> Result<Value, ApiError> {
    if req.settings.is_empty() {
        return Err(ApiError::invalid(
            "settings must name at least one setting, e.g. containerInsights.",
        ));
    }
    let update = ClusterUpdate {
        settings: settings_in(Some(req.settings))?,
        configuration: None,
    };
    let cluster = cp.update_cluster(&req.cluster, &update)?;
    Ok(with_counts(cp, &cluster))
}

#[derive(Deserialize)]
pub(super) struct DeleteCluster {
    cluster: String,
}

pub(super) fn delete(cp: &ControlPlane, req: &DeleteCluster) -> Result<Value, ApiError> {
    let cluster = cp.delete_cluster(&req.cluster)?;
    Ok(with_counts(cp, &cluster))
}

#[cfg(test)]
mod tests {
    use crate::api::ecs::dispatch;
    use crate::api::error::ErrorType;
    use crate::state::test_support::{control_plane, fleet};

    #[test]
    fn describe_include_statistics_settings_tags() {
        let (cp, _) = fleet();
        let out = dispatch(
            &cp,
            "us-east-1",
            "DescribeClusters",
            br#"{"clusters":["default"],"include":["STATISTICS","SETTINGS"]}"#,
        )
        .unwrap();
        let c = &out["clusters"][0];
        assert_eq!(c["registeredContainerInstancesCount"], 1);
        assert_eq!(c["settings"][0]["name"], "containerInsights");
        assert_eq!(c["settings"][0]["value"], "disabled");
        let stats = c["statistics"].as_array().unwrap();
        assert_eq!(stats.len(), 8);
        assert!(stats
            .iter()
            .any(|s| s["name"] == "runningFargateTasksCount" && s["value"] == "0"));
        // Without include, the optional parts are empty.
        let out = dispatch(
            &cp,
            "us-east-1",
            "DescribeClusters",
            br#"{"clusters":["default"]}"#,
        )
        .unwrap();
        assert_eq!(out["clusters"][0]["statistics"], serde_json::json!([]));
        assert_eq!(out["clusters"][0]["settings"], serde_json::json!([]));
        let e = dispatch(
            &cp,
            "us-east-1",
            "DescribeClusters",
            br#"{"include":["EVERYTHING"]}"#,
        )
        .unwrap_err();
        assert!(e.message.contains("EVERYTHING"), "{}", e.message);
    }

    #[test]
    fn update_settings_and_configuration() {
        let (cp, _) = control_plane();
        dispatch(&cp, "us-east-1",
            "CreateCluster",
            br#"{"clusterName":"web","settings":[{"name":"containerInsights","value":"enhanced"}]}"#,
        )
        .unwrap();
        let out = dispatch(
            &cp,
            "us-east-1",
            "UpdateClusterSettings",
            br#"{"cluster":"web","settings":[{"name":"containerInsights","value":"enabled"}]}"#,
        )
        .unwrap();
        assert_eq!(out["cluster"]["settings"][0]["value"], "enabled");
        let out = dispatch(&cp, "us-east-1",
            "UpdateCluster",
            br#"{"cluster":"web","configuration":{"executeCommandConfiguration":{"logging":"DEFAULT"}}}"#,
        )
        .unwrap();
        assert_eq!(
            out["cluster"]["configuration"]["executeCommandConfiguration"]["logging"],
            "DEFAULT"
        );
        assert_eq!(out["cluster"]["settings"][0]["value"], "enabled");
        let e = dispatch(
            &cp,
            "us-east-1",
            "UpdateClusterSettings",
            br#"{"cluster":"web","settings":[{"name":"containerInsights"}]}"#,
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorType::InvalidParameter);
        let e = dispatch(
            &cp,
            "us-east-1",
            "UpdateClusterSettings",
            br#"{"cluster":"web"}"#,
        )
        .unwrap_err();
        assert!(e.message.contains("\"settings\""), "{}", e.message);
        let e = dispatch(
            &cp,
            "us-east-1",
            "UpdateCluster",
            br#"{"cluster":"ghost","settings":[]}"#,
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorType::ClusterNotFound);
    }

    #[test]
    fn delete_cluster_refusals_and_inactive_result() {
        let (cp, _) = fleet();
        let e = dispatch(
            &cp,
            "us-east-1",
            "DeleteCluster",
            br#"{"cluster":"default"}"#,
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorType::ClusterContainsContainerInstances);
        assert!(
            e.message.contains("DeregisterContainerInstance"),
            "{}",
            e.message
        );
        dispatch(
            &cp,
            "us-east-1",
            "CreateCluster",
            br#"{"clusterName":"empty"}"#,
        )
        .unwrap();
        let out = dispatch(&cp, "us-east-1", "DeleteCluster", br#"{"cluster":"empty"}"#).unwrap();
        assert_eq!(out["cluster"]["status"], "INACTIVE");
        let out = dispatch(
            &cp,
            "us-east-1",
            "DescribeClusters",
            br#"{"clusters":["empty"]}"#,
        )
        .unwrap();
        assert_eq!(out["clusters"][0]["status"], "INACTIVE");
        let e = dispatch(&cp, "us-east-1", "DeleteCluster", br#"{"cluster":"empty"}"#).unwrap_err();
        assert_eq!(e.kind, ErrorType::ClusterNotFound);
    }
}
