//! `TagResource`, `UntagResource`, `ListTagsForResource`.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{render, tags_in, ApiError, Tag};
use crate::state::{ControlPlane, TagChange};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct TagInput {
    resource_arn: String,
    tags: Vec<Tag>,
}

/// ECS reserves the `aws:` prefix (any case) for its own tags.
fn check_reserved(key: &str) -> Result<(), ApiError> {
    if key.len() >= 4 && key[..4].eq_ignore_ascii_case("aws:") {
        return Err(ApiError::invalid(format!(
            "Tag key '{key}' is not valid: the aws: prefix is reserved for AWS use."
        )));
    }
    Ok(())
}

pub(super) fn tag(cp: &ControlPlane, req: TagInput) -> Result<Value, ApiError> {
    let tags = tags_in(Some(req.tags))?;
    for (k, v) in &tags {
        check_reserved(k)?;
        if v.len() > 256 {
            return Err(ApiError::invalid(format!(
                "The value of tag '{k}' must be at most 256 characters."
            )));
        }
    }
    cp.change_tags(&req.resource_arn, &TagChange::Add(tags))?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct UntagInput {
    resource_arn: String,
    tag_keys: Vec<String>,
}

pub(super) fn untag(cp: &ControlPlane, req: UntagInput) -> Result<Value, ApiError> {
    cp.change_tags(&req.resource_arn, &TagChange::Remove(req.tag_keys))?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ListInput {
    resource_arn: String,
}

pub(super) fn list(cp: &ControlPlane, req: &ListInput) -> Result<Value, ApiError> {
    let tags = cp.list_tags_for_resource(&req.resource_arn)?;
    Ok(json!({ "tags": render::tags(&tags) }))
}

#[cfg(test)]
mod tests {
    use crate::api::ecs::dispatch;
    use crate::api::error::ErrorType;
    use crate::state::test_support::control_plane;

    #[test]
    fn tag_list_untag_a_cluster() {
        let (cp, _) = control_plane();
        dispatch(
            &cp,
            "us-east-1",
            "CreateCluster",
            br#"{"clusterName":"web"}"#,
        )
        .unwrap();
        let arn = cp.default_arns.cluster("web");
        let body = format!(r#"{{"resourceArn":"{arn}","tags":[{{"key":"team","value":"a"}}]}}"#);
        assert_eq!(
            dispatch(&cp, "us-east-1", "TagResource", body.as_bytes()).unwrap(),
            serde_json::json!({})
        );
        let list = format!(r#"{{"resourceArn":"{arn}"}}"#);
        let out = dispatch(&cp, "us-east-1", "ListTagsForResource", list.as_bytes()).unwrap();
        assert_eq!(
            out["tags"],
            serde_json::json!([{"key": "team", "value": "a"}])
        );
        let body = format!(r#"{{"resourceArn":"{arn}","tagKeys":["team"]}}"#);
        dispatch(&cp, "us-east-1", "UntagResource", body.as_bytes()).unwrap();
        let out = dispatch(&cp, "us-east-1", "ListTagsForResource", list.as_bytes()).unwrap();
        assert_eq!(out["tags"], serde_json::json!([]));
        let body = format!(r#"{{"resourceArn":"{arn}","tags":[{{"key":"AWS:x","value":"a"}}]}}"#);
        let e = dispatch(&cp, "us-east-1", "TagResource", body.as_bytes()).unwrap_err();
        assert!(e.message.contains("reserved"), "{}", e.message);
        let ghost = format!(
            r#"{{"resourceArn":"{}"}}"#,
            cp.default_arns.task("web", "0000")
        );
        let e = dispatch(&cp, "us-east-1", "ListTagsForResource", ghost.as_bytes()).unwrap_err();
        assert_eq!(e.kind, ErrorType::ResourceNotFound);
    }
}
