//! The Secrets Manager operations ECS tasks rely on, on the same endpoint and
//! `SigV4` credentials as the ECS API, so `aws secretsmanager ... --endpoint-url`
//! and boto3's `secretsmanager` client work unchanged. Secret values are
//! `SecretString` only; deletion is immediate (no recovery window).

use std::sync::Arc;

use berth_aws::{AwsError, AwsService, Call, JsonProtocol, JsonVersion, ServiceInfo};
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::{ApiError, ErrorType};
use crate::secrets::{Secret, SecretError, Secrets};

/// AWS Secrets Manager (the part tasks use), as the edge routes to it.
pub struct SecretsManager {
    secrets: Arc<Secrets>,
}

impl SecretsManager {
    pub fn new(secrets: Arc<Secrets>) -> Self {
        Self { secrets }
    }
}

const INFO: ServiceInfo = ServiceInfo {
    signing_name: "secretsmanager",
    json: Some(JsonProtocol {
        target_prefix: "secretsmanager",
        version: JsonVersion::V1_1,
        query_compatible: false,
    }),
    query: None,
};

impl AwsService for SecretsManager {
    fn info(&self) -> &ServiceInfo {
        &INFO
    }

    fn call(&self, call: &Call<'_>) -> Result<Value, AwsError> {
        Ok(dispatch(
            &self.secrets,
            call.region,
            call.operation,
            call.json_body()?,
        )?)
    }
}

const PAGE_MAX: usize = 100;

impl From<SecretError> for ApiError {
    fn from(e: SecretError) -> Self {
        let kind = match &e {
            SecretError::NotFound(_) | SecretError::OtherVersion { .. } => {
                ErrorType::ResourceNotFound
            }
            SecretError::Exists(_) => ErrorType::ResourceExists,
            SecretError::Invalid(_) => ErrorType::InvalidParameter,
            SecretError::Store(_) => {
                tracing::error!(error = %e, "secret request failed inside the control plane");
                ErrorType::Server
            }
        };
        Self::new(kind, e.to_string())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateSecret {
    name: String,
    secret_string: Option<String>,
    secret_binary: Option<String>,
    description: Option<String>,
    #[allow(dead_code)] // accepted for idempotent retries; every create is new here
    client_request_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SecretIdOnly {
    secret_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetSecretValue {
    secret_id: String,
    version_id: Option<String>,
    version_stage: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
#[allow(clippy::struct_field_names)] // Secrets Manager's member names
struct PutSecretValue {
    secret_id: String,
    secret_string: Option<String>,
    secret_binary: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteSecret {
    secret_id: String,
    #[allow(dead_code)] // deletion is immediate either way
    force_delete_without_recovery: Option<bool>,
    #[allow(dead_code)]
    recovery_window_in_days: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListSecrets {
    max_results: Option<usize>,
    next_token: Option<String>,
}

/// Runs one operation signed for `region` (the region of the ARNs it creates).
pub fn dispatch(secrets: &Secrets, region: &str, op: &str, body: &[u8]) -> Result<Value, ApiError> {
    match op {
        "CreateSecret" => {
            let r: CreateSecret = super::json::parse(op, body)?;
            let value = string_only(r.secret_string, r.secret_binary.as_ref())?;
            let s = secrets.create(region, &r.name, value, r.description)?;
            Ok(json!({"ARN": s.arn, "Name": s.name, "VersionId": s.version_id}))
        }
        "GetSecretValue" => {
            let r: GetSecretValue = super::json::parse(op, body)?;
            let s = secrets.version(
                &r.secret_id,
                r.version_stage.as_deref(),
                r.version_id.as_deref(),
            )?;
            Ok(json!({
                "ARN": s.arn,
                "Name": s.name,
                "VersionId": s.version_id,
                "SecretString": s.secret_string,
                "VersionStages": ["AWSCURRENT"],
                "CreatedDate": seconds(s.changed_at_ms),
            }))
        }
        "PutSecretValue" => {
            let r: PutSecretValue = super::json::parse(op, body)?;
            let value = string_only(r.secret_string, r.secret_binary.as_ref())?;
            let s = secrets.put_value(&r.secret_id, value)?;
            Ok(json!({
                "ARN": s.arn,
                "Name": s.name,
                "VersionId": s.version_id,
                "VersionStages": ["AWSCURRENT"],
            }))
        }
        "DescribeSecret" => {
            let r: SecretIdOnly = super::json::parse(op, body)?;
            Ok(describe(&secrets.get(&r.secret_id)?, "VersionIdsToStages"))
        }
        "ListSecrets" => {
            let r: ListSecrets = super::json::parse(op, body)?;
            list(secrets, &r)
        }
        "DeleteSecret" => {
            let r: DeleteSecret = super::json::parse(op, body)?;
            let s = secrets.delete(&r.secret_id)?;
            Ok(json!({"ARN": s.arn, "Name": s.name, "DeletionDate": seconds(secrets.now_ms())}))
        }
        _ => Err(ApiError::new(
            ErrorType::UnknownOperation,
            format!(
                "Operation 'secretsmanager.{op}' is not served: Berth implements CreateSecret, GetSecretValue, PutSecretValue, DescribeSecret, ListSecrets and DeleteSecret."
            ),
        )),
    }
}

fn string_only(value: Option<String>, binary: Option<&String>) -> Result<String, ApiError> {
    if binary.is_some() {
        return Err(ApiError::invalid(
            "SecretBinary is not supported: Berth stores SecretString values only.",
        ));
    }
    value.ok_or_else(|| {
        ApiError::new(
            ErrorType::InvalidRequest,
            "You must provide SecretString: Berth stores SecretString values only.",
        )
    })
}

#[allow(clippy::cast_precision_loss)] // epoch milliseconds fit an f64 exactly
fn seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

/// A secret's metadata; `versions` names its version map, which `DescribeSecret` calls
/// `VersionIdsToStages` and a `ListSecrets` entry `SecretVersionsToStages`.
fn describe(s: &Secret, versions: &str) -> Value {
    let mut v = json!({
        "ARN": s.arn,
        "Name": s.name,
        "Description": s.description,
        "CreatedDate": seconds(s.created_at_ms),
        "LastChangedDate": seconds(s.changed_at_ms),
    });
    v[versions] = json!({ s.version_id.clone(): ["AWSCURRENT"] });
    v
}

fn list(secrets: &Secrets, r: &ListSecrets) -> Result<Value, ApiError> {
    let max = r.max_results.unwrap_or(PAGE_MAX);
    if !(1..=PAGE_MAX).contains(&max) {
        return Err(ApiError::invalid(format!(
            "MaxResults must be between 1 and {PAGE_MAX}, got {max}."
        )));
    }
    let all = secrets.list();
    let start = match r.next_token.as_deref() {
        None | Some("") => 0,
        Some(t) => all
            .iter()
            .position(|s| s.name.as_str() > t)
            .unwrap_or(all.len()),
    };
    let page: Vec<&Secret> = all[start..].iter().take(max).collect();
    let entries: Vec<Value> = page
        .iter()
        .map(|s| describe(s, "SecretVersionsToStages"))
        .collect();
    let mut out = json!({ "SecretList": entries });
    if start + page.len() < all.len() {
        if let Some(last) = page.last() {
            out["NextToken"] = json!(last.name);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::model::ArnContext;
    use crate::state::SystemClock;
    use crate::store::MemoryStore;

    fn secrets() -> Secrets {
        Secrets::open(
            Arc::new(MemoryStore::default()),
            Arc::new(SystemClock),
            ArnContext {
                region: "us-east-1".into(),
                account: "123456789012".into(),
            },
            Arc::new(crate::sealing::Sealer::ephemeral()),
        )
        .unwrap()
    }

    fn call(s: &Secrets, op: &str, body: &Value) -> Result<Value, ApiError> {
        dispatch(s, "us-east-1", op, body.to_string().as_bytes())
    }

    #[test]
    fn operations_and_their_errors() {
        let s = secrets();
        let made = call(
            &s,
            "CreateSecret",
            &json!({"Name": "db", "SecretString": "pw"}),
        )
        .unwrap();
        let err = call(
            &s,
            "CreateSecret",
            &json!({"Name": "db", "SecretString": "x"}),
        )
        .unwrap_err();
        assert_eq!(err.kind, ErrorType::ResourceExists);
        let err = call(
            &s,
            "CreateSecret",
            &json!({"Name": "b", "SecretBinary": "eA=="}),
        )
        .unwrap_err();
        assert_eq!(err.kind, ErrorType::InvalidParameter);
        let err = call(&s, "CreateSecret", &json!({"Name": "b"})).unwrap_err();
        assert_eq!(err.kind, ErrorType::InvalidRequest);

        let got = call(&s, "GetSecretValue", &json!({"SecretId": made["ARN"]})).unwrap();
        assert_eq!(got["SecretString"], "pw");
        assert_eq!(got["VersionId"], made["VersionId"]);
        let err = call(
            &s,
            "GetSecretValue",
            &json!({"SecretId": "db", "VersionStage": "AWSPREVIOUS"}),
        )
        .unwrap_err();
        assert_eq!(err.kind, ErrorType::ResourceNotFound);

        let put = call(
            &s,
            "PutSecretValue",
            &json!({"SecretId": "db", "SecretString": "pw2"}),
        )
        .unwrap();
        assert_ne!(put["VersionId"], made["VersionId"]);
        let d = call(&s, "DescribeSecret", &json!({"SecretId": "db"})).unwrap();
        assert_eq!(
            d["VersionIdsToStages"][put["VersionId"].as_str().unwrap()][0],
            "AWSCURRENT"
        );

        call(
            &s,
            "DeleteSecret",
            &json!({"SecretId": "db", "ForceDeleteWithoutRecovery": true}),
        )
        .unwrap();
        let err = call(&s, "GetSecretValue", &json!({"SecretId": "db"})).unwrap_err();
        assert_eq!(err.kind, ErrorType::ResourceNotFound);
        assert_eq!(err.kind.name(), "ResourceNotFoundException");
        let err = call(&s, "RotateSecret", &json!({})).unwrap_err();
        assert_eq!(err.kind, ErrorType::UnknownOperation);
    }

    #[test]
    fn list_pages() {
        let s = secrets();
        for n in ["a", "b", "c"] {
            call(&s, "CreateSecret", &json!({"Name": n, "SecretString": "v"})).unwrap();
        }
        let first = call(&s, "ListSecrets", &json!({"MaxResults": 2})).unwrap();
        assert_eq!(first["SecretList"].as_array().unwrap().len(), 2);
        let next = call(
            &s,
            "ListSecrets",
            &json!({"MaxResults": 2, "NextToken": first["NextToken"]}),
        )
        .unwrap();
        assert_eq!(next["SecretList"][0]["Name"], "c");
        assert!(next.get("NextToken").is_none());
        assert!(call(&s, "ListSecrets", &json!({"MaxResults": 0})).is_err());
    }
}
