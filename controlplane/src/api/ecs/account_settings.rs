//! `PutAccountSetting`, `PutAccountSettingDefault`, `DeleteAccountSetting`,
//! `ListAccountSettings`, shaped as botocore's model has them.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{page_with, ApiError};
use crate::state::{ControlPlane, Setting};

fn render(s: &Setting) -> Value {
    json!({"name": s.name, "value": s.value, "principalArn": s.principal_arn, "type": s.kind})
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PutInput {
    name: String,
    value: String,
    principal_arn: Option<String>,
}

pub(super) fn put(cp: &ControlPlane, req: &PutInput) -> Result<Value, ApiError> {
    let s = cp.put_account_setting(&req.name, &req.value, req.principal_arn.as_deref())?;
    Ok(json!({ "setting": render(&s) }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PutDefaultInput {
    name: String,
    value: String,
}

pub(super) fn put_default(cp: &ControlPlane, req: &PutDefaultInput) -> Result<Value, ApiError> {
    let s = cp.put_account_setting(&req.name, &req.value, None)?;
    Ok(json!({ "setting": render(&s) }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DeleteInput {
    name: String,
    principal_arn: Option<String>,
}

pub(super) fn delete(cp: &ControlPlane, req: &DeleteInput) -> Result<Value, ApiError> {
    let s = cp.delete_account_setting(&req.name, req.principal_arn.as_deref())?;
    Ok(json!({ "setting": render(&s) }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ListInput {
    name: Option<String>,
    value: Option<String>,
    principal_arn: Option<String>,
    effective_settings: Option<bool>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

/// ECS pages account settings 10 at a time by default.
const PAGE: usize = 10;

pub(super) fn list(cp: &ControlPlane, req: &ListInput) -> Result<Value, ApiError> {
    if req.value.is_some() && req.name.is_none() {
        return Err(ApiError::invalid(
            "value filters settings of one name: give name with it.",
        ));
    }
    let settings: Vec<Value> = cp
        .account_settings(
            req.principal_arn.as_deref(),
            req.effective_settings.unwrap_or(false),
        )?
        .iter()
        .filter(|s| req.name.as_ref().is_none_or(|n| *n == s.name))
        .filter(|s| req.value.as_ref().is_none_or(|v| *v == s.value))
        .map(render)
        .collect();
    page_with(
        &settings,
        req.max_results,
        req.next_token.as_deref(),
        "settings",
        PAGE,
    )
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use crate::api::ecs::dispatch;
    use crate::api::error::ErrorType;
    use crate::state::test_support::fleet;
    use crate::state::ControlPlane;

    fn call(
        cp: &ControlPlane,
        op: &str,
        body: &Value,
    ) -> Result<Value, crate::api::error::ApiError> {
        dispatch(cp, "us-east-1", op, body.to_string().as_bytes())
    }

    fn names_values(out: &Value) -> Vec<(String, String, String)> {
        out["settings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let f = |k: &str| s[k].as_str().unwrap().to_owned();
                (f("name"), f("value"), f("type"))
            })
            .collect()
    }

    #[test]
    fn settings_for_a_principal_fall_back_to_the_default_then_to_ecs() {
        let (cp, _) = fleet();
        let root = "arn:aws:iam::123456789012:root";
        let role = "arn:aws:iam::123456789012:role/deployer";
        let out = call(
            &cp,
            "PutAccountSettingDefault",
            &json!({"name": "containerInsights", "value": "enhanced"}),
        )
        .unwrap();
        assert_eq!(
            out["setting"],
            json!({"name": "containerInsights", "value": "enhanced", "principalArn": root, "type": "user"})
        );
        call(
            &cp,
            "PutAccountSetting",
            &json!({"name": "awsvpcTrunking", "value": "enabled", "principalArn": role}),
        )
        .unwrap();
        assert_eq!(cp.account_default("containerInsights"), "enhanced");
        assert_eq!(cp.account_default("defaultLogDriverMode"), "blocking");
        // Set for the role: only its own.
        let own = call(&cp, "ListAccountSettings", &json!({"principalArn": role})).unwrap();
        assert_eq!(
            names_values(&own),
            [("awsvpcTrunking".into(), "enabled".into(), "user".into())]
        );
        // Effective for the role: its own, the default, and ECS's, ten to a page.
        let eff = call(
            &cp,
            "ListAccountSettings",
            &json!({"principalArn": role, "effectiveSettings": true}),
        )
        .unwrap();
        let first = names_values(&eff);
        assert_eq!(first.len(), 10);
        assert!(first.contains(&("awsvpcTrunking".into(), "enabled".into(), "user".into())));
        assert!(first.contains(&("containerInsights".into(), "enhanced".into(), "user".into())));
        assert!(first.contains(&(
            "taskLongArnFormat".into(),
            "enabled".into(),
            "aws_managed".into()
        )));
        let rest = call(
            &cp,
            "ListAccountSettings",
            &json!({"principalArn": role, "effectiveSettings": true, "nextToken": eff["nextToken"]}),
        )
        .unwrap();
        assert_eq!(names_values(&rest).len(), 1, "eleven settings in all");
        let one = call(
            &cp,
            "ListAccountSettings",
            &json!({"name": "defaultLogDriverMode", "effectiveSettings": true}),
        )
        .unwrap();
        assert_eq!(one["settings"][0]["value"], "blocking");
        // Deleted, the role's setting falls back to ECS's default.
        let gone = call(
            &cp,
            "DeleteAccountSetting",
            &json!({"name": "awsvpcTrunking", "principalArn": role}),
        )
        .unwrap();
        assert_eq!(gone["setting"]["value"], "enabled");
        let eff = call(
            &cp,
            "ListAccountSettings",
            &json!({"principalArn": role, "effectiveSettings": true, "name": "awsvpcTrunking"}),
        )
        .unwrap();
        assert_eq!(eff["settings"][0]["value"], "disabled");
        assert_eq!(eff["settings"][0]["type"], "aws_managed");
    }

    #[test]
    fn bad_names_values_and_principals_are_refused() {
        let (cp, _) = fleet();
        for (op, body, needle) in [
            (
                "PutAccountSetting",
                json!({"name": "nope", "value": "enabled"}),
                "not an account setting",
            ),
            (
                "PutAccountSetting",
                json!({"name": "containerInsights", "value": "on"}),
                "enabled or disabled or enhanced",
            ),
            (
                "PutAccountSetting",
                json!({"name": "taskLongArnFormat", "value": "disabled"}),
                "long ARN format",
            ),
            (
                "PutAccountSetting",
                json!({"name": "awsvpcTrunking", "value": "enabled", "principalArn": "arn:aws:iam::999999999999:root"}),
                "principalArn",
            ),
            (
                "DeleteAccountSetting",
                json!({"name": "awsvpcTrunking"}),
                "nothing to delete",
            ),
            (
                "ListAccountSettings",
                json!({"value": "enabled"}),
                "give name",
            ),
        ] {
            let e = call(&cp, op, &body).unwrap_err();
            assert_eq!(e.kind, ErrorType::InvalidParameter, "{op} {body}");
            assert!(e.message.contains(needle), "{op} {body}: {}", e.message);
        }
    }
}
