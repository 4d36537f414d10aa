//! `CreateCapacityProvider`, `DescribeCapacityProviders`,
//! `UpdateCapacityProvider`, `DeleteCapacityProvider`,
//! `PutClusterCapacityProviders`, and the strategy shape `RunTask` and
//! `CreateCluster` share.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{page_with, render, tags_in, ApiError, Tag};
use crate::scheduler::CapacityProviderShare;
use crate::state::{CapacityProviderSpec, ClusterCapacity, ControlPlane};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct StrategyItem {
    capacity_provider: String,
    weight: Option<i64>,
    base: Option<i64>,
}

/// A `capacityProviderStrategy`; ranges are checked here so a negative
/// number is refused by name rather than wrapped.
pub(super) fn strategy_in(
    member: &str,
    items: Vec<StrategyItem>,
) -> Result<Vec<CapacityProviderShare>, ApiError> {
    items
        .into_iter()
        .map(|i| {
            let num = |what: &str, v: Option<i64>, max: i64| match v.unwrap_or(0) {
                n if (0..=max).contains(&n) => Ok(u32::try_from(n).unwrap_or(0)),
                n => Err(ApiError::invalid(format!(
                    "{member}: the {what} of capacity provider '{}' must be between 0 and {max}, got {n}.",
                    i.capacity_provider
                ))),
            };
            Ok(CapacityProviderShare {
                weight: num("weight", i.weight, 1000)?,
                base: num("base", i.base, 100_000)?,
                provider: i.capacity_provider,
            })
        })
        .collect()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CreateInput {
    name: String,
    auto_scaling_group_provider: Option<Value>,
    managed_instances_provider: Option<Value>,
    tags: Option<Vec<Tag>>,
}

pub(super) fn create(cp: &ControlPlane, region: &str, req: CreateInput) -> Result<Value, ApiError> {
    if req.managed_instances_provider.is_some() {
        return Err(ApiError::invalid(
            "managedInstancesProvider is not supported by Berth: create a host pool with autoScalingGroupProvider and start agents with --capacity-provider NAME.",
        ));
    }
    let spec = CapacityProviderSpec {
        name: req.name,
        auto_scaling_group_provider: req.auto_scaling_group_provider.ok_or_else(|| {
            ApiError::invalid(
                "Missing required parameter in CreateCapacityProvider input: \"autoScalingGroupProvider\".",
            )
        })?,
        tags: tags_in(req.tags)?,
    };
    let p = cp.create_capacity_provider(region, &spec)?;
    Ok(json!({ "capacityProvider": render::capacity_provider(&p, true) }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DescribeInput {
    capacity_providers: Option<Vec<String>>,
    cluster: Option<String>,
    include: Option<Vec<String>>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

pub(super) fn describe(
    cp: &ControlPlane,
    region: &str,
    req: DescribeInput,
) -> Result<Value, ApiError> {
    let mut with_tags = false;
    for i in req.include.unwrap_or_default() {
        match i.as_str() {
            "TAGS" => with_tags = true,
            other => {
                return Err(ApiError::invalid(format!(
                    "include '{other}' is not valid; the only value is TAGS."
                )))
            }
        }
    }
    if req
        .capacity_providers
        .as_ref()
        .is_some_and(|n| n.len() > 100)
    {
        return Err(ApiError::invalid(
            "At most 100 capacity providers can be described at once.",
        ));
    }
    let (found, failures) = cp.describe_capacity_providers(
        region,
        req.capacity_providers.as_deref(),
        req.cluster.as_deref(),
    )?;
    let rendered: Vec<Value> = found
        .iter()
        .map(|p| render::capacity_provider(p, with_tags))
        .collect();
    // ECS pages this operation by 10 at most.
    let mut out = page_with(
        &rendered,
        req.max_results,
        req.next_token.as_deref(),
        "capacityProviders",
        10,
    )?;
    out["failures"] = Value::Array(failures.iter().map(render::failure).collect());
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct UpdateInput {
    name: String,
    auto_scaling_group_provider: Option<Map<String, Value>>,
}

pub(super) fn update(cp: &ControlPlane, req: UpdateInput) -> Result<Value, ApiError> {
    let update = req.auto_scaling_group_provider.ok_or_else(|| {
        ApiError::invalid(
            "UpdateCapacityProvider needs autoScalingGroupProvider (managedScaling, managedTerminationProtection or managedDraining).",
        )
    })?;
    if let Some(k) = update.keys().find(|k| {
        !matches!(
            k.as_str(),
            "managedScaling" | "managedTerminationProtection" | "managedDraining"
        )
    }) {
        return Err(ApiError::invalid(format!(
            "autoScalingGroupProvider.{k} cannot be updated; use managedScaling, managedTerminationProtection or managedDraining."
        )));
    }
    let p = cp.update_capacity_provider(&req.name, &update)?;
    Ok(json!({ "capacityProvider": render::capacity_provider(&p, true) }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DeleteInput {
    capacity_provider: String,
}

pub(super) fn delete(cp: &ControlPlane, req: &DeleteInput) -> Result<Value, ApiError> {
    let p = cp.delete_capacity_provider(&req.capacity_provider)?;
    Ok(json!({ "capacityProvider": render::capacity_provider(&p, true) }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PutClusterInput {
    cluster: String,
    capacity_providers: Vec<String>,
    default_capacity_provider_strategy: Vec<StrategyItem>,
}

pub(super) fn put_cluster(cp: &ControlPlane, req: PutClusterInput) -> Result<Value, ApiError> {
    let capacity = ClusterCapacity {
        capacity_providers: req.capacity_providers,
        default_strategy: strategy_in(
            "defaultCapacityProviderStrategy",
            req.default_capacity_provider_strategy,
        )?,
    };
    let cluster = cp.put_cluster_capacity_providers(&req.cluster, &capacity)?;
    Ok(super::clusters::with_counts(cp, &cluster))
}

#[cfg(test)]
mod tests {
    use crate::api::ecs::dispatch;
    use crate::api::error::ErrorType;
    use crate::state::test_support::control_plane;

    const ASG: &str = r#""autoScalingGroupProvider":{"autoScalingGroupArn":"arn:aws:autoscaling:us-east-1:1:autoScalingGroup:x:autoScalingGroupName/pool"}"#;

    #[test]
    fn create_describe_page_update_delete() {
        let (cp, _) = control_plane();
        for name in ["a", "b", "c"] {
            let body = format!(r#"{{"name":"{name}",{ASG},"tags":[{{"key":"k","value":"v"}}]}}"#);
            let out =
                dispatch(&cp, "us-east-1", "CreateCapacityProvider", body.as_bytes()).unwrap();
            assert_eq!(out["capacityProvider"]["type"], "EC2_AUTOSCALING");
            assert_eq!(out["capacityProvider"]["updateStatus"], "CREATE_COMPLETE");
        }
        let out = dispatch(
            &cp,
            "us-east-1",
            "DescribeCapacityProviders",
            br#"{"maxResults":2}"#,
        )
        .unwrap();
        let page: Vec<_> = out["capacityProviders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(page, vec!["FARGATE", "FARGATE_SPOT"]);
        assert_eq!(out["capacityProviders"][0]["type"], "FARGATE");
        let token = out["nextToken"].as_str().unwrap();
        let body = format!(r#"{{"maxResults":2,"nextToken":"{token}","include":["TAGS"]}}"#);
        let out = dispatch(
            &cp,
            "us-east-1",
            "DescribeCapacityProviders",
            body.as_bytes(),
        )
        .unwrap();
        assert_eq!(out["capacityProviders"][1]["name"], "b");
        assert_eq!(out["capacityProviders"][1]["tags"][0]["key"], "k");
        let e = dispatch(
            &cp,
            "us-east-1",
            "DescribeCapacityProviders",
            br#"{"maxResults":11}"#,
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorType::InvalidParameter);

        let out = dispatch(
            &cp,
            "us-east-1",
            "UpdateCapacityProvider",
            br#"{"name":"a","autoScalingGroupProvider":{"managedDraining":"DISABLED"}}"#,
        )
        .unwrap();
        assert_eq!(
            out["capacityProvider"]["autoScalingGroupProvider"]["managedDraining"],
            "DISABLED"
        );
        let out = dispatch(
            &cp,
            "us-east-1",
            "DeleteCapacityProvider",
            br#"{"capacityProvider":"a"}"#,
        )
        .unwrap();
        assert_eq!(out["capacityProvider"]["status"], "INACTIVE");
        let e = dispatch(
            &cp,
            "us-east-1",
            "CreateCapacityProvider",
            br#"{"name":"d"}"#,
        )
        .unwrap_err();
        assert!(
            e.message.contains("autoScalingGroupProvider"),
            "{}",
            e.message
        );
    }

    #[test]
    fn put_cluster_capacity_providers_shows_in_describe_clusters() {
        let (cp, _) = control_plane();
        dispatch(
            &cp,
            "us-east-1",
            "CreateCluster",
            br#"{"clusterName":"web","capacityProviders":["FARGATE"],
                "defaultCapacityProviderStrategy":[{"capacityProvider":"FARGATE","weight":1}]}"#,
        )
        .unwrap();
        let out = dispatch(
            &cp,
            "us-east-1",
            "DescribeClusters",
            br#"{"clusters":["web"]}"#,
        )
        .unwrap();
        assert_eq!(
            out["clusters"][0]["capacityProviders"],
            serde_json::json!(["FARGATE"])
        );
        assert_eq!(
            out["clusters"][0]["defaultCapacityProviderStrategy"],
            serde_json::json!([{"capacityProvider": "FARGATE", "weight": 1, "base": 0}])
        );
        let out = dispatch(&cp, "us-east-1",
            "PutClusterCapacityProviders",
            br#"{"cluster":"web","capacityProviders":["FARGATE","FARGATE_SPOT"],
                "defaultCapacityProviderStrategy":[{"capacityProvider":"FARGATE_SPOT","weight":2,"base":1}]}"#,
        )
        .unwrap();
        assert_eq!(
            out["cluster"]["capacityProviders"],
            serde_json::json!(["FARGATE", "FARGATE_SPOT"])
        );
        let e = dispatch(
            &cp,
            "us-east-1",
            "PutClusterCapacityProviders",
            br#"{"cluster":"web","capacityProviders":[],
                "defaultCapacityProviderStrategy":[{"capacityProvider":"FARGATE","weight":-1}]}"#,
        )
        .unwrap_err();
        assert!(e.message.contains("weight"), "{}", e.message);
        let e = dispatch(
            &cp,
            "us-east-1",
            "PutClusterCapacityProviders",
            br#"{"cluster":"web","capacityProviders":[]}"#,
        )
        .unwrap_err();
        assert!(
            e.message.contains("defaultCapacityProviderStrategy"),
            "{}",
            e.message
        );
    }
}
