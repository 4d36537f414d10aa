//! `CreateCluster`, `DescribeClusters`, `ListClusters`.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{page, render, tags_in, ApiError, Tag};
use crate::state::ControlPlane;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CreateCluster {
    cluster_name: Option<String>,
    tags: Option<Vec<Tag>>,
}

pub(super) fn create(cp: &ControlPlane, req: CreateCluster) -> Result<Value, ApiError> {
    let name = req.cluster_name.unwrap_or_else(|| "default".into());
    let cluster = cp.create_cluster(&name, tags_in(req.tags)?)?;
    let (described, _) = cp.describe_clusters(std::slice::from_ref(&cluster.name));
    let counts = described.first().map(|(_, c)| *c).unwrap_or_default();
    Ok(json!({ "cluster": render::cluster(&cluster, counts, true) }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DescribeClusters {
    clusters: Option<Vec<String>>,
    include: Option<Vec<String>>,
}

pub(super) fn describe(cp: &ControlPlane, req: DescribeClusters) -> Value {
    let names = req.clusters.unwrap_or_else(|| vec!["default".into()]);
    let include = req.include.unwrap_or_default();
    let with_tags = include.iter().any(|i| i == "TAGS");
    let (found, failures) = cp.describe_clusters(&names);
    json!({
        "clusters": found.iter().map(|(c, n)| render::cluster(c, *n, with_tags)).collect::<Vec<_>>(),
        "failures": failures.iter().map(render::failure).collect::<Vec<_>>(),
    })
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
