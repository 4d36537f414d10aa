//! `RegisterTaskDefinition`, `DescribeTaskDefinition`, `ListTaskDefinitions`,
//! `ListTaskDefinitionFamilies`, `DeregisterTaskDefinition`,
//! `DeleteTaskDefinitions`.

use serde::Deserialize;
use serde_json::{json, Value};

mod container;

pub(super) use container::{environment, KeyValue};

use self::container::ContainerInput;
use super::{one_of, page, parse, render, tags_in, ApiError, Tag};
use crate::model::container_options::Volume;
use crate::model::task_definition::Registration;
use crate::model::{LaunchType, TaskDefinitionStatus};
use crate::state::{ControlPlane, FamilyFilter, TaskDefinitionFilter};
use berth_ecs::{EcsEnum, TaskDefinitionFamilyStatus};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RegisterInput {
    family: String,
    container_definitions: Vec<ContainerInput>,
    network_mode: Option<String>,
    cpu: Option<String>,
    memory: Option<String>,
    requires_compatibilities: Option<Vec<String>>,
    tags: Option<Vec<Tag>>,
    volumes: Option<Vec<VolumeInput>>,
    ephemeral_storage: Option<EphemeralStorageInput>,
}

/// `ephemeralStorage`: validated as ECS does, recorded, not enforced (the
/// overlayfs snapshotter has no per-snapshot size limit without project quotas).
#[derive(Deserialize)]
struct EphemeralStorageInput {
    #[serde(rename = "sizeInGiB")]
    size_in_gib: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VolumeInput {
    name: String,
    host: Option<HostInput>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HostInput {
    source_path: Option<String>,
}

pub(super) fn register(
    cp: &ControlPlane,
    region: &str,
    op: &str,
    body: &[u8],
) -> Result<Value, ApiError> {
    let document: Value = parse(op, body)?;
    let input: RegisterInput = serde_json::from_value(document.clone())
        .map_err(|e| crate::api::json::from_json_error(op, &e))?;
    let reg = Registration {
        family: input.family,
        network_mode: input.network_mode,
        cpu: input.cpu,
        memory: input.memory,
        volumes: input
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| Volume {
                name: v.name,
                host_source_path: v.host.and_then(|h| h.source_path),
            })
            .collect(),
        requires_compatibilities: input
            .requires_compatibilities
            .unwrap_or_default()
            .iter()
            .map(|c| one_of("requiresCompatibilities", c, LaunchType::ALL))
            .collect::<Result<_, _>>()?,
        containers: input
            .container_definitions
            .into_iter()
            .map(TryInto::try_into)
            .collect::<Result<_, _>>()?,
    };
    if let Some(size) = input.ephemeral_storage.map(|e| e.size_in_gib) {
        if !(21..=200).contains(&size) {
            return Err(ApiError::new(
                crate::api::error::ErrorType::Client,
                format!("ephemeralStorage.sizeInGiB must be between 21 and 200 GiB, got {size}."),
            ));
        }
    }
    let tags = tags_in(input.tags)?;
    let td = cp.register_task_definition(region, &reg, document, tags)?;
    Ok(json!({ "taskDefinition": render::task_definition(&td), "tags": render::tags(&td.tags) }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DescribeInput {
    task_definition: String,
    include: Option<Vec<String>>,
}

pub(super) fn describe(cp: &ControlPlane, req: DescribeInput) -> Result<Value, ApiError> {
    let td = cp.describe_task_definition(&req.task_definition)?;
    let mut out = json!({ "taskDefinition": render::task_definition(&td) });
    if req.include.unwrap_or_default().iter().any(|i| i == "TAGS") {
        out["tags"] = render::tags(&td.tags);
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ListInput {
    family_prefix: Option<String>,
    status: Option<String>,
    sort: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

pub(super) fn list(cp: &ControlPlane, req: ListInput) -> Result<Value, ApiError> {
    let descending = match req.sort.as_deref() {
        None | Some("ASC") => false,
        Some("DESC") => true,
        Some(s) => {
            return Err(ApiError::invalid(format!(
                "sort '{s}' is not valid; use ASC or DESC."
            )))
        }
    };
    let filter = TaskDefinitionFilter {
        family_prefix: req.family_prefix,
        status: req
            .status
            .as_deref()
            .map(|s| one_of("status", s, TaskDefinitionStatus::ALL))
            .transpose()?,
        descending,
    };
    page(
        &cp.list_task_definitions(&filter),
        req.max_results,
        req.next_token.as_deref(),
        "taskDefinitionArns",
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DeregisterInput {
    task_definition: String,
}

pub(super) fn deregister(cp: &ControlPlane, req: &DeregisterInput) -> Result<Value, ApiError> {
    let td = cp.deregister_task_definition(&req.task_definition)?;
    Ok(json!({ "taskDefinition": render::task_definition(&td) }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct FamiliesInput {
    family_prefix: Option<String>,
    status: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

pub(super) fn list_families(cp: &ControlPlane, req: FamiliesInput) -> Result<Value, ApiError> {
    let filter = FamilyFilter {
        family_prefix: req.family_prefix,
        status: req
            .status
            .as_deref()
            .map(|s| one_of("status", s, TaskDefinitionFamilyStatus::ALL))
            .transpose()?,
    };
    page(
        &cp.list_task_definition_families(&filter),
        req.max_results,
        req.next_token.as_deref(),
        "families",
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DeleteInput {
    task_definitions: Vec<String>,
}

pub(super) fn delete(cp: &ControlPlane, req: &DeleteInput) -> Result<Value, ApiError> {
    if req.task_definitions.is_empty() || req.task_definitions.len() > 10 {
        return Err(ApiError::invalid(format!(
            "taskDefinitions must name 1 to 10 revisions, got {}.",
            req.task_definitions.len()
        )));
    }
    let (deleted, failures) = cp.delete_task_definitions(&req.task_definitions)?;
    Ok(json!({
        "taskDefinitions": deleted.iter().map(render::task_definition).collect::<Vec<_>>(),
        "failures": failures.iter().map(render::failure).collect::<Vec<_>>(),
    }))
}

#[cfg(test)]
mod tests {
    use crate::api::ecs::dispatch;
    use crate::state::test_support::control_plane;

    fn register(cp: &crate::state::ControlPlane, family: &str) {
        let body = format!(
            r#"{{"family":"{family}","containerDefinitions":[{{"name":"a","image":"busybox","memory":32}}]}}"#
        );
        dispatch(cp, "us-east-1", "RegisterTaskDefinition", body.as_bytes()).unwrap();
    }

    #[test]
    fn ephemeral_storage_is_checked_against_ecss_range() {
        let (cp, _) = control_plane();
        let body = |size: i64| {
            format!(
                r#"{{"family":"big","ephemeralStorage":{{"sizeInGiB":{size}}},"containerDefinitions":[{{"name":"a","image":"busybox","memory":32}}]}}"#
            )
        };
        for bad in [20, 201] {
            let e = dispatch(
                &cp,
                "us-east-1",
                "RegisterTaskDefinition",
                body(bad).as_bytes(),
            )
            .unwrap_err();
            assert_eq!(e.kind, crate::api::error::ErrorType::Client);
            assert!(e.message.contains("between 21 and 200"), "{}", e.message);
        }
        let out = dispatch(
            &cp,
            "us-east-1",
            "RegisterTaskDefinition",
            body(30).as_bytes(),
        )
        .unwrap();
        assert_eq!(out["taskDefinition"]["ephemeralStorage"]["sizeInGiB"], 30);
    }

    #[test]
    fn families_are_listed_and_paged() {
        let (cp, _) = control_plane();
        for f in ["web", "worker", "db"] {
            register(&cp, f);
        }
        let out = dispatch(
            &cp,
            "us-east-1",
            "ListTaskDefinitionFamilies",
            br#"{"familyPrefix":"w","maxResults":1}"#,
        )
        .unwrap();
        assert_eq!(out["families"], serde_json::json!(["web"]));
        let token = out["nextToken"].as_str().unwrap().to_string();
        let body = format!(r#"{{"familyPrefix":"w","nextToken":"{token}"}}"#);
        let out = dispatch(
            &cp,
            "us-east-1",
            "ListTaskDefinitionFamilies",
            body.as_bytes(),
        )
        .unwrap();
        assert_eq!(out["families"], serde_json::json!(["worker"]));
        let e = dispatch(
            &cp,
            "us-east-1",
            "ListTaskDefinitionFamilies",
            br#"{"status":"GONE"}"#,
        )
        .unwrap_err();
        assert!(e.message.contains("GONE"));
    }

    #[test]
    fn list_task_definitions_family_prefix_is_the_whole_family_as_on_ecs() {
        let (cp, _) = control_plane();
        for f in ["web", "webhook", "web"] {
            register(&cp, f);
        }
        let out = dispatch(
            &cp,
            "us-east-1",
            "ListTaskDefinitions",
            br#"{"familyPrefix":"web"}"#,
        )
        .unwrap();
        let arns = out["taskDefinitionArns"].as_array().unwrap();
        assert_eq!(arns.len(), 2, "{out}");
        assert!(arns
            .iter()
            .all(|a| a.as_str().unwrap().contains(":task-definition/web:")));
    }

    #[test]
    fn delete_task_definitions_shape() {
        let (cp, _) = control_plane();
        register(&cp, "web");
        register(&cp, "web");
        dispatch(
            &cp,
            "us-east-1",
            "DeregisterTaskDefinition",
            br#"{"taskDefinition":"web:1"}"#,
        )
        .unwrap();
        let out = dispatch(
            &cp,
            "us-east-1",
            "DeleteTaskDefinitions",
            br#"{"taskDefinitions":["web:1","web:2"]}"#,
        )
        .unwrap();
        assert_eq!(out["taskDefinitions"][0]["status"], "DELETE_IN_PROGRESS");
        assert!(out["taskDefinitions"][0]["deleteRequestedAt"].is_number());
        assert!(out["failures"][0]["arn"]
            .as_str()
            .unwrap()
            .ends_with("task-definition/web:2"));
        // Describe with TAGS still works on a revision being deleted.
        let out = dispatch(
            &cp,
            "us-east-1",
            "DescribeTaskDefinition",
            br#"{"taskDefinition":"web:1","include":["TAGS"]}"#,
        )
        .unwrap();
        assert_eq!(out["taskDefinition"]["status"], "DELETE_IN_PROGRESS");
        assert_eq!(out["tags"], serde_json::json!([]));
        let e = dispatch(
            &cp,
            "us-east-1",
            "DeleteTaskDefinitions",
            br#"{"taskDefinitions":[]}"#,
        )
        .unwrap_err();
        assert!(e.message.contains("1 to 10"));
    }
}
