//! `ListContainerInstances`, `DescribeContainerInstances`.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{page, render, ApiError};
use crate::state::ControlPlane;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ListInput {
    cluster: Option<String>,
    status: Option<String>,
    filter: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

pub(super) fn list(cp: &ControlPlane, req: ListInput) -> Result<Value, ApiError> {
    if req.filter.is_some() {
        return Err(ApiError::invalid(
            "The cluster query language 'filter' is not supported yet; filter by 'status' instead.",
        ));
    }
    let cluster = req.cluster.unwrap_or_else(|| "default".into());
    let arns = cp.list_container_instances(&cluster, req.status.as_deref())?;
    page(
        &arns,
        req.max_results,
        req.next_token.as_deref(),
        "containerInstanceArns",
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DescribeInput {
    cluster: Option<String>,
    container_instances: Vec<String>,
}

pub(super) fn describe(cp: &ControlPlane, req: DescribeInput) -> Result<Value, ApiError> {
    let cluster = req.cluster.unwrap_or_else(|| "default".into());
    let (found, failures) = cp.describe_container_instances(&cluster, &req.container_instances)?;
    Ok(json!({
        "containerInstances": found.iter().map(render::container_instance).collect::<Vec<_>>(),
        "failures": failures.iter().map(render::failure).collect::<Vec<_>>(),
    }))
}
