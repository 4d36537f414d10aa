//! `UpdateTaskProtection` and `GetTaskProtection`, shaped as botocore's model has them
//! (`protectedTasks`: `taskArn`, `protectionEnabled`, `expirationDate`).

use serde::Deserialize;
use serde_json::{json, Value};

use super::{render, ApiError};
use crate::model::Task;
use crate::state::{ControlPlane, ItemFailure};

fn protected(t: &Task, now_ms: i64) -> Value {
    let mut v = json!({"taskArn": t.arn, "protectionEnabled": t.is_protected(now_ms)});
    if let Some(until) = t.protected_until_ms.filter(|_| t.is_protected(now_ms)) {
        v["expirationDate"] = render::epoch(until);
    }
    v
}

fn answer(cp: &ControlPlane, (tasks, failures): (Vec<Task>, Vec<ItemFailure>)) -> Value {
    let now = cp.now_ms();
    json!({
        "protectedTasks": tasks.iter().map(|t| protected(t, now)).collect::<Vec<_>>(),
        "failures": failures.iter().map(render::failure).collect::<Vec<_>>(),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct UpdateInput {
    cluster: String,
    tasks: Vec<String>,
    protection_enabled: bool,
    expires_in_minutes: Option<i64>,
}

pub(super) fn update(cp: &ControlPlane, req: &UpdateInput) -> Result<Value, ApiError> {
    let out = cp.update_task_protection(
        &req.cluster,
        &req.tasks,
        req.protection_enabled,
        req.expires_in_minutes,
    )?;
    Ok(answer(cp, out))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct GetInput {
    cluster: String,
    tasks: Option<Vec<String>>,
}

pub(super) fn get(cp: &ControlPlane, req: &GetInput) -> Result<Value, ApiError> {
    Ok(answer(
        cp,
        cp.task_protection(&req.cluster, req.tasks.as_deref())?,
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::api::ecs::dispatch;
    use crate::api::error::ErrorType;
    use crate::state::test_support::fleet;

    #[test]
    fn a_task_is_protected_until_it_expires_or_is_unprotected() {
        let (cp, _) = fleet();
        let run = dispatch(&cp, "us-east-1", "RunTask", br#"{"taskDefinition":"web"}"#).unwrap();
        let arn = run["tasks"][0]["taskArn"].as_str().unwrap().to_owned();
        let call = |op: &str, body: serde_json::Value| {
            dispatch(&cp, "us-east-1", op, body.to_string().as_bytes())
        };
        let out = call(
            "UpdateTaskProtection",
            json!({"cluster": "default", "tasks": [arn, "feedface"], "protectionEnabled": true, "expiresInMinutes": 60}),
        )
        .unwrap();
        let p = &out["protectedTasks"][0];
        assert_eq!(p["taskArn"], arn.as_str());
        assert_eq!(p["protectionEnabled"], true);
        let expires = p["expirationDate"].as_f64().unwrap();
        let now = f64::from(u32::try_from(cp.now_ms() / 1000).unwrap());
        assert!((expires - now - 3600.0).abs() < 2.0, "{expires} vs {now}");
        assert_eq!(out["failures"][0]["reason"], "MISSING");
        let got = call("GetTaskProtection", json!({"cluster": "default"})).unwrap();
        assert_eq!(got["protectedTasks"][0]["taskArn"], arn.as_str());
        call(
            "UpdateTaskProtection",
            json!({"cluster": "default", "tasks": [arn], "protectionEnabled": false}),
        )
        .unwrap();
        let got = call(
            "GetTaskProtection",
            json!({"cluster": "default", "tasks": [arn]}),
        )
        .unwrap();
        assert_eq!(got["protectedTasks"][0]["protectionEnabled"], false);
        let e = call(
            "UpdateTaskProtection",
            json!({"cluster": "default", "tasks": [arn], "protectionEnabled": true, "expiresInMinutes": 2881}),
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorType::InvalidParameter);
    }
}
