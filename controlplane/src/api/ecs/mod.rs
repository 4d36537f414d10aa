//! The ECS operations: AWS JSON 1.1 request bodies in, response bodies out.
//! Each handler parses its input into domain values, calls the state
//! machine, and renders ECS's response shape (botocore's ECS model).

mod account_settings;
mod attributes;
mod capacity_providers;
mod clusters;
mod execute_command;
mod instances;
mod protection;
pub(super) mod render;
mod service_deployments;
mod services;
mod tags;
mod task_definitions;
mod task_sets;
mod tasks;
mod unsupported;

use std::sync::Arc;

use berth_aws::{AwsError, AwsService, Call, JsonProtocol, JsonVersion, ServiceInfo};
use serde::Deserialize;
use serde_json::Value;

use super::error::{ApiError, ErrorType};
use super::json::parse;
use crate::exec::ExecSessions;
use crate::state::ControlPlane;
use berth_ecs::{names, EcsEnum};

/// Amazon ECS, as the edge routes to it.
pub struct Ecs {
    cp: Arc<ControlPlane>,
    exec: Arc<ExecSessions>,
}

impl Ecs {
    pub fn new(cp: Arc<ControlPlane>, exec: Arc<ExecSessions>) -> Self {
        Self { cp, exec }
    }
}

const INFO: ServiceInfo = ServiceInfo {
    signing_name: "ecs",
    json: Some(JsonProtocol {
        target_prefix: "AmazonEC2ContainerServiceV20141113",
        version: JsonVersion::V1_1,
        query_compatible: false,
    }),
    query: None,
};

impl AwsService for Ecs {
    fn info(&self) -> &ServiceInfo {
        &INFO
    }

    fn call(&self, call: &Call<'_>) -> Result<Value, AwsError> {
        if call.operation == "ExecuteCommand" {
            let body = call.json_body()?;
            return Ok(execute_command::execute(
                &self.cp,
                &self.exec,
                call.host,
                call.access_key_id,
                &parse(call.operation, body)?,
            )?);
        }
        Ok(dispatch(
            &self.cp,
            call.region,
            call.operation,
            call.json_body()?,
        )?)
    }
}

/// Runs one ECS operation signed for `region` (the region of the ARNs it creates).
/// Testable without HTTP.
pub fn dispatch(cp: &ControlPlane, region: &str, op: &str, body: &[u8]) -> Result<Value, ApiError> {
    match op {
        "ListServiceDeployments" => service_deployments::list(cp, &parse(op, body)?),
        "DescribeServiceDeployments" => service_deployments::describe(cp, &parse(op, body)?),
        "StopServiceDeployment" => service_deployments::stop(cp, &parse(op, body)?),
        "DescribeServiceRevisions" => service_deployments::revisions(cp, &parse(op, body)?),
        "UpdateTaskProtection" => protection::update(cp, &parse(op, body)?),
        "GetTaskProtection" => protection::get(cp, &parse(op, body)?),
        "PutAccountSetting" => account_settings::put(cp, &parse(op, body)?),
        "PutAccountSettingDefault" => account_settings::put_default(cp, &parse(op, body)?),
        "DeleteAccountSetting" => account_settings::delete(cp, &parse(op, body)?),
        "ListAccountSettings" => account_settings::list(cp, &parse(op, body)?),
        "CreateCluster" => clusters::create(cp, region, parse(op, body)?),
        "DescribeClusters" => clusters::describe(cp, region, parse(op, body)?),
        "ListClusters" => clusters::list(cp, &parse(op, body)?),
        "UpdateCluster" => clusters::update(cp, parse(op, body)?),
        "UpdateClusterSettings" => clusters::update_settings(cp, parse(op, body)?),
        "DeleteCluster" => clusters::delete(cp, &parse(op, body)?),
        "RegisterTaskDefinition" => task_definitions::register(cp, region, op, body),
        "DescribeTaskDefinition" => task_definitions::describe(cp, parse(op, body)?),
        "ListTaskDefinitions" => task_definitions::list(cp, parse(op, body)?),
        "DeregisterTaskDefinition" => task_definitions::deregister(cp, &parse(op, body)?),
        "ListTaskDefinitionFamilies" => task_definitions::list_families(cp, parse(op, body)?),
        "DeleteTaskDefinitions" => task_definitions::delete(cp, &parse(op, body)?),
        "RunTask" => tasks::run(cp, parse(op, body)?, body),
        "StartTask" => tasks::start(cp, parse(op, body)?, body),
        "DescribeTasks" => tasks::describe(cp, parse(op, body)?),
        "ListTasks" => tasks::list(cp, parse(op, body)?),
        "StopTask" => tasks::stop(cp, &parse(op, body)?),
        "ListContainerInstances" => instances::list(cp, parse(op, body)?),
        "DescribeContainerInstances" => instances::describe(cp, parse(op, body)?),
        "UpdateContainerInstancesState" => instances::update_state(cp, parse(op, body)?),
        "DeregisterContainerInstance" => instances::deregister(cp, parse(op, body)?),
        "CreateService" => services::create(cp, parse(op, body)?, body),
        "DescribeServices" => services::describe(cp, parse(op, body)?),
        "ListServices" => services::list(cp, &parse(op, body)?),
        "UpdateService" => services::update(cp, parse(op, body)?, body),
        "DeleteService" => services::delete(cp, &parse(op, body)?),
        "CreateTaskSet" => task_sets::create(cp, parse(op, body)?, body),
        "DescribeTaskSets" => task_sets::describe(cp, parse(op, body)?),
        "UpdateTaskSet" => task_sets::update(cp, parse(op, body)?),
        "DeleteTaskSet" => task_sets::delete(cp, &parse(op, body)?),
        "UpdateServicePrimaryTaskSet" => task_sets::make_primary(cp, &parse(op, body)?),
        "PutAttributes" => attributes::put(cp, parse(op, body)?),
        "DeleteAttributes" => attributes::delete(cp, parse(op, body)?),
        "ListAttributes" => attributes::list(cp, parse(op, body)?),
        "CreateCapacityProvider" => capacity_providers::create(cp, region, parse(op, body)?),
        "DescribeCapacityProviders" => capacity_providers::describe(cp, region, parse(op, body)?),
        "UpdateCapacityProvider" => capacity_providers::update(cp, parse(op, body)?),
        "DeleteCapacityProvider" => capacity_providers::delete(cp, &parse(op, body)?),
        "PutClusterCapacityProviders" => capacity_providers::put_cluster(cp, parse(op, body)?),
        "TagResource" => tags::tag(cp, parse(op, body)?),
        "UntagResource" => tags::untag(cp, parse(op, body)?),
        "ListTagsForResource" => tags::list(cp, &parse(op, body)?),
        _ => Err(match unsupported::reason(op) {
            Some(why) => ApiError::new(ErrorType::Client, why),
            None => ApiError::new(
                ErrorType::UnknownOperation,
                format!("Operation '{op}' is not supported by Berth's ECS API."),
            ),
        }),
    }
}

#[derive(Debug, Deserialize)]
struct Tag {
    key: String,
    #[serde(default)]
    value: String,
}

fn tags_in(tags: Option<Vec<Tag>>) -> Result<Vec<(String, String)>, ApiError> {
    let tags = tags.unwrap_or_default();
    if tags.len() > 50 {
        return Err(ApiError::invalid(format!(
            "At most 50 tags are allowed, got {}.",
            tags.len()
        )));
    }
    tags.into_iter()
        .map(|t| {
            if t.key.is_empty() || t.key.len() > 128 {
                Err(ApiError::invalid(format!(
                    "Tag key '{}' must be 1-128 characters.",
                    t.key
                )))
            } else {
                Ok((t.key, t.value))
            }
        })
        .collect()
}

/// A request member that must be one of `allowed`'s ECS strings.
fn one_of<T: EcsEnum>(member: &str, value: &str, allowed: &[T]) -> Result<T, ApiError> {
    allowed
        .iter()
        .copied()
        .find(|v| v.as_str() == value)
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "{member} '{value}' is not valid; use {}.",
                names(allowed)
            ))
        })
}

/// Applies ECS's maxResults/nextToken paging to a list (ARNs, names or
/// objects). The token is the index of the next item.
fn page<T: serde::Serialize>(
    items: &[T],
    max_results: Option<i64>,
    next_token: Option<&str>,
    key: &str,
) -> Result<Value, ApiError> {
    page_with(items, max_results, next_token, key, 100)
}

/// `page` for operations whose pages hold at most (and by default) `limit`.
fn page_with<T: serde::Serialize>(
    items: &[T],
    max_results: Option<i64>,
    next_token: Option<&str>,
    key: &str,
    limit: usize,
) -> Result<Value, ApiError> {
    let start = match next_token {
        None | Some("") => 0,
        Some(t) => t.parse::<usize>().map_err(|_| {
            ApiError::invalid(format!(
                "nextToken '{t}' is not valid; pass the token from the previous response."
            ))
        })?,
    };
    let max = match max_results {
        None => limit,
        Some(n) if n >= 1 && usize::try_from(n).is_ok_and(|n| n <= limit) => {
            usize::try_from(n).unwrap_or(limit)
        }
        Some(n) => {
            return Err(ApiError::invalid(format!(
                "maxResults must be between 1 and {limit}, got {n}."
            )))
        }
    };
    let end = (start + max).min(items.len());
    let slice = items.get(start..end).unwrap_or_default();
    let mut out = serde_json::json!({ key: slice });
    if end < items.len() {
        out["nextToken"] = Value::String(end.to_string());
    }
    Ok(out)
}

/// `clientToken` (1 to `max` ASCII characters from `!` to `~`: 64 for `RunTask`, 36
/// for `CreateService`, as ECS takes them) with a digest of the rest of the request,
/// which a retry must repeat.
fn client_token(
    token: String,
    max: usize,
    body: &[u8],
) -> Result<crate::state::client_tokens::ClientToken, ApiError> {
    use sha2::Digest as _;
    if !(1..=max).contains(&token.len()) || !token.bytes().all(|b| (33..=126).contains(&b)) {
        return Err(ApiError::invalid(format!(
            "clientToken '{token}' must be 1 to {max} ASCII characters from '!' to '~'."
        )));
    }
    let mut request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    if let Some(fields) = request.as_object_mut() {
        fields.remove("clientToken");
    }
    // Object keys serialize sorted: the same request digests the same however it is sent.
    let digest = sha2::Sha256::digest(request.to_string().as_bytes());
    Ok(crate::state::client_tokens::ClientToken {
        token,
        request: hex::encode(digest),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::test_support::control_plane;

    #[test]
    fn unknown_operation() {
        let (cp, _) = control_plane();
        let e = dispatch(&cp, "us-east-1", "LaunchRockets", b"{}").unwrap_err();
        assert_eq!(e.kind, ErrorType::UnknownOperation);
        assert!(e.message.contains("LaunchRockets"));
    }

    #[test]
    fn malformed_json_is_a_serialization_error() {
        let (cp, _) = control_plane();
        assert_eq!(
            dispatch(&cp, "us-east-1", "CreateCluster", b"{nope")
                .unwrap_err()
                .kind,
            ErrorType::Serialization
        );
    }

    #[test]
    fn paging() {
        let items: Vec<String> = (0..5).map(|i| i.to_string()).collect();
        let p = page(&items, Some(2), None, "x").unwrap();
        assert_eq!(p["x"], serde_json::json!(["0", "1"]));
        assert_eq!(p["nextToken"], "2");
        let p = page(&items, Some(2), Some("4"), "x").unwrap();
        assert_eq!(p["x"], serde_json::json!(["4"]));
        assert!(p.get("nextToken").is_none());
        assert!(page(&items, Some(0), None, "x").is_err());
    }

    #[test]
    fn cluster_round_trip() {
        let (cp, _) = control_plane();
        let out = dispatch(
            &cp,
            "us-east-1",
            "CreateCluster",
            br#"{"clusterName":"web","tags":[{"key":"team","value":"a"}]}"#,
        )
        .unwrap();
        assert_eq!(out["cluster"]["clusterName"], "web");
        assert_eq!(out["cluster"]["status"], "ACTIVE");
        let out = dispatch(
            &cp,
            "us-east-1",
            "DescribeClusters",
            br#"{"clusters":["web","nope"],"include":["TAGS"]}"#,
        )
        .unwrap();
        assert_eq!(out["clusters"][0]["tags"][0]["key"], "team");
        assert_eq!(out["failures"][0]["reason"], "MISSING");
        let out = dispatch(&cp, "us-east-1", "ListClusters", b"").unwrap();
        assert_eq!(out["clusterArns"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn register_and_describe_task_definition_echoes_every_field() {
        let (cp, _) = control_plane();
        let body = br#"{"family":"web","networkMode":"awsvpc","cpu":"256","memory":"512",
            "containerDefinitions":[{"name":"web","image":"busybox","portMappings":[{"containerPort":80}],
            "logConfiguration":{"logDriver":"awslogs","options":{"awslogs-group":"g"}}}]}"#;
        let out = dispatch(&cp, "us-east-1", "RegisterTaskDefinition", body).unwrap();
        let td = &out["taskDefinition"];
        assert_eq!(td["revision"], 1);
        assert_eq!(td["containerDefinitions"][0]["essential"], true);
        assert_eq!(
            td["containerDefinitions"][0]["logConfiguration"]["logDriver"],
            "awslogs"
        );
        assert_eq!(
            td["compatibilities"],
            serde_json::json!(["EC2", "EXTERNAL", "FARGATE"])
        );
        let out = dispatch(
            &cp,
            "us-east-1",
            "DescribeTaskDefinition",
            br#"{"taskDefinition":"web:1"}"#,
        )
        .unwrap();
        assert_eq!(out["taskDefinition"]["family"], "web");
    }

    #[test]
    fn register_task_definition_errors_name_the_field() {
        let (cp, store) = control_plane();
        let e = dispatch(
            &cp,
            "us-east-1",
            "RegisterTaskDefinition",
            br#"{"containerDefinitions":[]}"#,
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorType::InvalidParameter);
        assert!(e.message.contains("\"family\""), "{}", e.message);
        let e = dispatch(
            &cp,
            "us-east-1",
            "RegisterTaskDefinition",
            br#"{"family":"f","containerDefinitions":[{"name":"a"}]}"#,
        )
        .unwrap_err();
        assert!(e.message.contains("image"), "{}", e.message);
        assert!(store.batches.lock().unwrap().is_empty());
    }

    #[test]
    fn run_task_errors() {
        let (cp, _) = control_plane();
        let e = dispatch(
            &cp,
            "us-east-1",
            "RunTask",
            br#"{"cluster":"ghost","taskDefinition":"web"}"#,
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorType::ClusterNotFound);
        dispatch(&cp, "us-east-1", "CreateCluster", br#"{"clusterName":"c"}"#).unwrap();
        let e = dispatch(
            &cp,
            "us-east-1",
            "RunTask",
            br#"{"cluster":"c","taskDefinition":"ghost"}"#,
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorType::InvalidParameter);
        assert!(e.message.contains("ghost"));
        let e = dispatch(&cp, "us-east-1", "RunTask", br#"{"cluster":"c"}"#).unwrap_err();
        assert!(e.message.contains("\"taskDefinition\""));
        // Describing nothing is an error on ECS, not an empty answer.
        for (op, body) in [
            ("DescribeTasks", br#"{"cluster":"c","tasks":[]}"#.as_slice()),
            (
                "DescribeContainerInstances",
                br#"{"cluster":"c","containerInstances":[]}"#,
            ),
        ] {
            let e = dispatch(&cp, "us-east-1", op, body).unwrap_err();
            assert_eq!(e.kind, ErrorType::InvalidParameter, "{op}");
            assert!(e.message.contains("cannot be empty"), "{op}: {}", e.message);
        }
    }

    #[test]
    fn arns_carry_the_region_the_request_was_signed_for() {
        let (cp, _) = control_plane();
        let eu = "eu-west-1";
        let arn = |v: &Value| v.as_str().unwrap().to_owned();
        let out = dispatch(&cp, eu, "CreateCluster", br#"{"clusterName":"web"}"#).unwrap();
        assert_eq!(
            arn(&out["cluster"]["clusterArn"]),
            "arn:aws:ecs:eu-west-1:123456789012:cluster/web"
        );
        let body = br#"{"family":"web","containerDefinitions":[{"name":"web","image":"busybox","memory":64}]}"#;
        let td = dispatch(&cp, eu, "RegisterTaskDefinition", body).unwrap();
        assert_eq!(
            arn(&td["taskDefinition"]["taskDefinitionArn"]),
            "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:1"
        );
        crate::state::test_support::add_instance(&cp, "web");
        let run = r#"{"cluster":"web","taskDefinition":"web"}"#;
        let out = dispatch(&cp, eu, "RunTask", run.as_bytes()).unwrap();
        let task = &out["tasks"][0];
        let in_eu = "arn:aws:ecs:eu-west-1:123456789012:";
        for made in [
            &task["taskArn"],
            &task["clusterArn"],
            &task["containerInstanceArn"],
            &task["containers"][0]["containerArn"],
        ] {
            assert!(arn(made).starts_with(in_eu), "{made}");
        }
        // What is made inside the cluster keeps the cluster's region, whoever asks.
        let out = dispatch(
            &cp,
            "us-east-1",
            "CreateService",
            br#"{"cluster":"web","serviceName":"api","taskDefinition":"web","desiredCount":0}"#,
        )
        .unwrap();
        assert!(arn(&out["service"]["serviceArn"]).starts_with(in_eu));
        // What is missing is named in the asker's region.
        let out = dispatch(
            &cp,
            "ap-south-2",
            "DescribeClusters",
            br#"{"clusters":["nope"]}"#,
        )
        .unwrap();
        assert_eq!(
            arn(&out["failures"][0]["arn"]),
            "arn:aws:ecs:ap-south-2:123456789012:cluster/nope"
        );
        let out = dispatch(
            &cp,
            "ap-south-2",
            "DescribeCapacityProviders",
            br#"{"capacityProviders":["FARGATE"]}"#,
        )
        .unwrap();
        assert_eq!(
            arn(&out["capacityProviders"][0]["capacityProviderArn"]),
            "arn:aws:ecs:ap-south-2:123456789012:capacity-provider/FARGATE"
        );
    }
}
