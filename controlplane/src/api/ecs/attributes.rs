//! `PutAttributes`, `DeleteAttributes`, `ListAttributes`.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{page, render, ApiError};
use crate::model::Attribute;
use crate::state::ControlPlane;

const TARGET_TYPE: &str = "container-instance";

fn target_type(t: Option<&str>) -> Result<(), ApiError> {
    match t {
        None | Some(TARGET_TYPE) => Ok(()),
        Some(other) => Err(ApiError::invalid(format!(
            "targetType '{other}' is not valid; attributes apply only to '{TARGET_TYPE}'."
        ))),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AttributeInput {
    name: String,
    value: Option<String>,
    target_type: Option<String>,
    target_id: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct ChangeInput {
    cluster: Option<String>,
    attributes: Vec<AttributeInput>,
}

fn attributes_in(req: ChangeInput) -> Result<(String, Vec<Attribute>), ApiError> {
    if req.attributes.is_empty() || req.attributes.len() > 10 {
        return Err(ApiError::invalid(format!(
            "attributes must hold 1 to 10 attributes, got {}.",
            req.attributes.len()
        )));
    }
    let attributes = req
        .attributes
        .into_iter()
        .map(|a| {
            target_type(a.target_type.as_deref())?;
            let target_id = a.target_id.ok_or_else(|| {
                ApiError::invalid(format!(
                    "Attribute '{}' needs a targetId: the container instance's id or ARN.",
                    a.name
                ))
            })?;
            Ok(Attribute {
                name: a.name,
                value: a.value,
                target_id,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok((req.cluster.unwrap_or_else(|| "default".into()), attributes))
}

fn answer(attributes: &[Attribute]) -> Value {
    json!({ "attributes": attributes.iter().map(render::attribute).collect::<Vec<_>>() })
}

pub(super) fn put(cp: &ControlPlane, req: ChangeInput) -> Result<Value, ApiError> {
    let (cluster, attributes) = attributes_in(req)?;
    Ok(answer(&cp.put_attributes(&cluster, &attributes)?))
}

pub(super) fn delete(cp: &ControlPlane, req: ChangeInput) -> Result<Value, ApiError> {
    let (cluster, attributes) = attributes_in(req)?;
    Ok(answer(&cp.delete_attributes(&cluster, &attributes)?))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ListInput {
    cluster: Option<String>,
    target_type: String,
    attribute_name: Option<String>,
    attribute_value: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

pub(super) fn list(cp: &ControlPlane, req: ListInput) -> Result<Value, ApiError> {
    target_type(Some(&req.target_type))?;
    if req.attribute_value.is_some() && req.attribute_name.is_none() {
        return Err(ApiError::invalid(
            "attributeValue needs attributeName: name the attribute whose value to match.",
        ));
    }
    let cluster = req.cluster.unwrap_or_else(|| "default".into());
    let found = cp.list_attributes(
        &cluster,
        req.attribute_name.as_deref(),
        req.attribute_value.as_deref(),
    )?;
    let rendered: Vec<Value> = found.iter().map(render::attribute).collect();
    page(
        &rendered,
        req.max_results,
        req.next_token.as_deref(),
        "attributes",
    )
}

#[cfg(test)]
mod tests {
    use crate::api::ecs::dispatch;
    use crate::api::error::ErrorType;
    use crate::state::test_support::fleet;

    #[test]
    fn put_list_delete_through_the_api() {
        let (cp, arn) = fleet();
        let body = format!(
            r#"{{"attributes":[{{"name":"stack","value":"prod","targetType":"container-instance","targetId":"{arn}"}}]}}"#
        );
        let out = dispatch(&cp, "us-east-1", "PutAttributes", body.as_bytes()).unwrap();
        assert_eq!(out["attributes"][0]["targetId"], arn.as_str());
        let out = dispatch(&cp, "us-east-1",
            "ListAttributes",
            br#"{"targetType":"container-instance","attributeName":"stack","attributeValue":"prod"}"#,
        )
        .unwrap();
        assert_eq!(out["attributes"][0]["value"], "prod");
        assert_eq!(out["attributes"][0]["targetType"], "container-instance");
        let out = dispatch(
            &cp,
            "us-east-1",
            "ListAttributes",
            br#"{"targetType":"container-instance","maxResults":1}"#,
        )
        .unwrap();
        assert_eq!(out["attributes"].as_array().unwrap().len(), 1);
        assert!(out["nextToken"].is_string());
        let out = dispatch(
            &cp,
            "us-east-1",
            "DescribeContainerInstances",
            format!(r#"{{"containerInstances":["{arn}"]}}"#).as_bytes(),
        )
        .unwrap();
        let attrs = out["containerInstances"][0]["attributes"]
            .as_array()
            .unwrap();
        assert!(attrs
            .iter()
            .any(|a| a["name"] == "stack" && a["value"] == "prod"));
        assert!(attrs
            .iter()
            .any(|a| a["name"] == "ecs.capability.task-eni" && a.get("value").is_none()));

        let body = format!(r#"{{"attributes":[{{"name":"stack","targetId":"{arn}"}}]}}"#);
        dispatch(&cp, "us-east-1", "DeleteAttributes", body.as_bytes()).unwrap();
        let out = dispatch(
            &cp,
            "us-east-1",
            "ListAttributes",
            br#"{"targetType":"container-instance","attributeName":"stack"}"#,
        )
        .unwrap();
        assert_eq!(out["attributes"], serde_json::json!([]));
    }

    #[test]
    fn attribute_errors() {
        let (cp, _) = fleet();
        let e = dispatch(
            &cp,
            "us-east-1",
            "PutAttributes",
            br#"{"attributes":[{"name":"a","targetId":"ghost"}]}"#,
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorType::TargetNotFound);
        let e = dispatch(
            &cp,
            "us-east-1",
            "PutAttributes",
            br#"{"attributes":[{"name":"a"}]}"#,
        )
        .unwrap_err();
        assert!(e.message.contains("targetId"), "{}", e.message);
        let e = dispatch(
            &cp,
            "us-east-1",
            "PutAttributes",
            br#"{"attributes":[{"name":"a","targetType":"task","targetId":"x"}]}"#,
        )
        .unwrap_err();
        assert!(e.message.contains("'task'"), "{}", e.message);
        let e = dispatch(
            &cp,
            "us-east-1",
            "ListAttributes",
            br#"{"targetType":"service"}"#,
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorType::InvalidParameter);
        let e = dispatch(
            &cp,
            "us-east-1",
            "ListAttributes",
            br#"{"targetType":"container-instance","attributeValue":"x"}"#,
        )
        .unwrap_err();
        assert!(e.message.contains("attributeName"));
    }
}
