//! A secret reference as task definitions write it (`secrets[].valueFrom`,
//! `repositoryCredentials.credentialsParameter`), checked at registration and resolved by
//! `crate::secrets` when a task is handed to its agent.

/// What a `valueFrom` names: the secret (ARN or name) and, optionally, one
/// JSON key of its value, a version stage and a version id, as ECS writes it:
/// `arn:aws:secretsmanager:region:account:secret:name-AbCdEf:json-key:version-stage:version-id`.
#[derive(Debug, PartialEq, Eq)]
pub struct SecretRef<'a> {
    pub secret_id: String,
    pub json_key: Option<&'a str>,
    pub version_stage: Option<&'a str>,
    pub version_id: Option<&'a str>,
}

/// Splits a `valueFrom` / `credentialsParameter`. Names that are not Secrets
/// Manager ARNs are taken as secret names (ECS would read them as SSM
/// parameters; Berth serves no parameter store).
pub fn parse_ref(value_from: &str) -> Result<SecretRef<'_>, String> {
    fn non_empty(s: Option<&str>) -> Option<&str> {
        s.filter(|s| !s.is_empty())
    }
    if !value_from.starts_with("arn:") {
        if value_from.is_empty() {
            return Err("the secret reference is empty".into());
        }
        return Ok(SecretRef {
            secret_id: value_from.to_owned(),
            json_key: None,
            version_stage: None,
            version_id: None,
        });
    }
    let parts: Vec<&str> = value_from.split(':').collect();
    if parts.len() < 7 || parts[2] != "secretsmanager" || parts[5] != "secret" || parts.len() > 10 {
        return Err(format!(
            "'{value_from}' is not a Secrets Manager secret ARN \
             (arn:aws:secretsmanager:<region>:<account>:secret:<name>[:json-key:version-stage:version-id]); \
             Berth resolves secrets from its own Secrets Manager API only"
        ));
    }
    Ok(SecretRef {
        secret_id: parts[..7].join(":"),
        json_key: non_empty(parts.get(7).copied()),
        version_stage: non_empty(parts.get(8).copied()),
        version_id: non_empty(parts.get(9).copied()),
    })
}
