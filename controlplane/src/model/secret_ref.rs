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

/// Whether a reference names an SSM parameter by ARN
/// (`arn:aws:ssm:<region>:<account>:parameter/<name>`).
pub fn is_parameter_arn(value_from: &str) -> bool {
    let parts: Vec<&str> = value_from.splitn(6, ':').collect();
    parts.len() == 6 && parts[0] == "arn" && parts[2] == "ssm" && parts[5].starts_with("parameter/")
}

/// Checks a reference at registration: an SSM parameter ARN, a Secrets Manager ARN, or a
/// name (a parameter's, or a secret's), as ECS takes them.
pub fn check_ref(value_from: &str) -> Result<(), String> {
    if is_parameter_arn(value_from) {
        return Ok(());
    }
    parse_ref(value_from).map(|_| ())
}

/// Splits a `valueFrom` / `credentialsParameter` naming a Secrets Manager secret. Names
/// that are not ARNs are taken as secret names (when no SSM parameter has that name).
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
             (arn:aws:secretsmanager:<region>:<account>:secret:<name>[:json-key:version-stage:version-id]) \
             or SSM parameter ARN (arn:aws:ssm:<region>:<account>:parameter/<name>)"
        ));
    }
    Ok(SecretRef {
        secret_id: parts[..7].join(":"),
        json_key: non_empty(parts.get(7).copied()),
        version_stage: non_empty(parts.get(8).copied()),
        version_id: non_empty(parts.get(9).copied()),
    })
}
