//! SSM Parameter Store operations (`AmazonSSM`, JSON 1.1) on the same endpoint and
//! credentials as the ECS API: `aws ssm put-parameter / get-parameter(s) /
//! get-parameters-by-path / describe-parameters / get-parameter-history /
//! delete-parameter(s)` and boto3's `ssm` client work unchanged.

use std::sync::Arc;

use berth_aws::{AwsError, AwsService, Call, JsonProtocol, JsonVersion, ServiceInfo};
use serde::Deserialize;
use serde_json::{json, Value};

use super::ecs::render::epoch;
use super::error::{ApiError, ErrorType};
use crate::parameters::{
    Parameter, ParameterError, ParameterType, ParameterVersion, Parameters, PutInput,
};

pub struct Ssm {
    parameters: Arc<Parameters>,
}

impl Ssm {
    pub fn new(parameters: Arc<Parameters>) -> Self {
        Self { parameters }
    }
}

const INFO: ServiceInfo = ServiceInfo {
    signing_name: "ssm",
    json: Some(JsonProtocol {
        target_prefix: "AmazonSSM",
        version: JsonVersion::V1_1,
        query_compatible: false,
    }),
    query: None,
};

impl AwsService for Ssm {
    fn info(&self) -> &ServiceInfo {
        &INFO
    }

    fn call(&self, call: &Call<'_>) -> Result<Value, AwsError> {
        Ok(dispatch(
            &self.parameters,
            call.region,
            call.access_key_id,
            call.operation,
            call.json_body()?,
        )?)
    }
}

impl From<ParameterError> for ApiError {
    fn from(e: ParameterError) -> Self {
        let kind = match &e {
            ParameterError::NotFound(_) => ErrorType::ParameterNotFound,
            ParameterError::Exists => ErrorType::ParameterAlreadyExists,
            ParameterError::VersionNotFound { .. } => ErrorType::ParameterVersionNotFound,
            ParameterError::HierarchyLevels(_) => ErrorType::HierarchyLevelLimitExceeded,
            ParameterError::Name(_) | ParameterError::Validation(_) => ErrorType::Validation,
            ParameterError::Store(_) => {
                tracing::error!(error = %e, "parameter request failed inside the control plane");
                ErrorType::InternalServerError
            }
        };
        Self::new(kind, e.to_string())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Put {
    name: String,
    value: String,
    #[serde(rename = "Type")]
    kind: Option<String>,
    description: Option<String>,
    key_id: Option<String>,
    #[serde(default)]
    overwrite: bool,
    allowed_pattern: Option<String>,
    tier: Option<String>,
    data_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Get {
    name: String,
    #[serde(default)]
    with_decryption: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetMany {
    names: Vec<String>,
    #[serde(default)]
    with_decryption: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ByPath {
    path: String,
    #[serde(default)]
    recursive: bool,
    #[serde(default)]
    with_decryption: bool,
    max_results: Option<usize>,
    next_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Filter {
    key: String,
    option: Option<String>,
    #[serde(default)]
    values: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Describe {
    #[serde(default)]
    parameter_filters: Vec<Filter>,
    max_results: Option<usize>,
    next_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct History {
    name: String,
    #[serde(default)]
    with_decryption: bool,
    max_results: Option<usize>,
    next_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteMany {
    names: Vec<String>,
}

fn parse<T: serde::de::DeserializeOwned>(op: &str, body: &[u8]) -> Result<T, ApiError> {
    super::json::parse(op, body)
}

/// A parameter as `GetParameter` shapes it.
fn shown(
    ps: &Parameters,
    p: &Parameter,
    v: &ParameterVersion,
    decrypt: bool,
    selector: Option<&str>,
) -> Value {
    let mut out = json!({
        "Name": p.name,
        "Type": v.kind.as_str(),
        "Value": ps.shown(p, v, decrypt),
        "Version": v.version,
        "LastModifiedDate": epoch(v.modified_at_ms),
        "ARN": p.arn,
        "DataType": v.data_type,
    });
    if let Some(s) = selector.filter(|s| s.contains(':') && !s.starts_with("arn:")) {
        out["Selector"] = json!(format!(":{}", s.rsplit_once(':').map_or("", |(_, v)| v)));
    }
    out
}

/// A version's metadata, as a history entry shapes it (with its value and labels added);
/// `DescribeParameters` adds the parameter's ARN, which a history entry lacks.
fn metadata(p: &Parameter, v: &ParameterVersion) -> Value {
    let mut out = json!({
        "Name": p.name,
        "Type": v.kind.as_str(),
        "LastModifiedDate": epoch(v.modified_at_ms),
        "LastModifiedUser": v.modified_by,
        "Version": v.version,
        "Tier": v.tier,
        "Policies": [],
        "DataType": v.data_type,
    });
    for (key, value) in [
        ("KeyId", &v.key_id),
        ("Description", &v.description),
        ("AllowedPattern", &v.allowed_pattern),
    ] {
        if let Some(value) = value {
            out[key] = json!(value);
        }
    }
    out
}

/// One page of `items` from `next_token` (an offset), at most `max` long.
fn page<T>(
    items: Vec<T>,
    max: usize,
    next_token: Option<&str>,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let start: usize = match next_token {
        Some(t) => t
            .parse()
            .map_err(|_| ApiError::new(ErrorType::Validation, "The NextToken is not valid."))?,
        None => 0,
    };
    let more = items.len() > start + max;
    let items: Vec<T> = items.into_iter().skip(start).take(max).collect();
    Ok((items, more.then(|| (start + max).to_string())))
}

fn max_results(asked: Option<usize>, limit: usize) -> Result<usize, ApiError> {
    match asked {
        None => Ok(limit),
        Some(n) if (1..=limit).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::new(
            ErrorType::Validation,
            format!("1 validation error detected: Value '{n}' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to {limit}"),
        )),
    }
}

/// Whether `name` lies under `path` (directly, or anywhere below when `recursive`).
fn under(name: &str, path: &str, recursive: bool) -> bool {
    let prefix = if path.ends_with('/') {
        path.to_owned()
    } else {
        format!("{path}/")
    };
    match name.strip_prefix(prefix.as_str()) {
        Some(rest) => !rest.is_empty() && (recursive || !rest.contains('/')),
        None => false,
    }
}

fn matches(p: &Parameter, f: &Filter) -> Result<bool, ApiError> {
    let v = p.current();
    let option = f.option.as_deref().unwrap_or("Equals");
    Ok(match (f.key.as_str(), option) {
        ("Name", "Equals") => f.values.contains(&p.name),
        ("Name", "BeginsWith") => f.values.iter().any(|x| p.name.starts_with(x.as_str())),
        ("Name", "Contains") => f.values.iter().any(|x| p.name.contains(x.as_str())),
        ("Type", "Equals") => f.values.iter().any(|x| x == v.kind.as_str()),
        ("KeyId", "Equals") => f.values.iter().any(|x| Some(x) == v.key_id.as_ref()),
        ("Path", "OneLevel" | "Recursive") => {
            f.values.iter().any(|x| under(&p.name, x, option == "Recursive"))
        }
        (key, option) => {
            return Err(ApiError::new(
                ErrorType::InvalidFilterKey,
                format!("The filter {key} with option {option} is not supported by Berth (Name: Equals, BeginsWith, Contains; Type, KeyId: Equals; Path: OneLevel, Recursive)."),
            ))
        }
    })
}

/// Runs one operation; parameters created get ARNs in `region`.
pub fn dispatch(
    ps: &Parameters,
    region: &str,
    caller: &str,
    op: &str,
    body: &[u8],
) -> Result<Value, ApiError> {
    match op {
        "PutParameter" => {
            let r: Put = parse(op, body)?;
            let kind = r.kind.as_deref().map(ParameterType::parse).transpose()?;
            let p = ps.put(region, caller, PutInput {
                name: r.name,
                value: r.value,
                kind,
                description: r.description,
                key_id: r.key_id,
                overwrite: r.overwrite,
                allowed_pattern: r.allowed_pattern,
                tier: r.tier,
                data_type: r.data_type,
            })?;
            Ok(json!({"Version": p.current().version, "Tier": p.current().tier}))
        }
        "GetParameter" => {
            let r: Get = parse(op, body)?;
            let (p, v) = ps.get(&r.name)?;
            Ok(json!({"Parameter": shown(ps, &p, &v, r.with_decryption, Some(&r.name))}))
        }
        "GetParameters" => {
            let r: GetMany = parse(op, body)?;
            let (mut found, mut invalid) = (Vec::new(), Vec::new());
            for name in &r.names {
                match ps.get(name) {
                    Ok((p, v)) => found.push(shown(ps, &p, &v, r.with_decryption, Some(name))),
                    Err(_) => invalid.push(name.clone()),
                }
            }
            Ok(json!({"Parameters": found, "InvalidParameters": invalid}))
        }
        "GetParametersByPath" => {
            let r: ByPath = parse(op, body)?;
            let max = max_results(r.max_results, 10)?;
            let all: Vec<Parameter> = ps.list().into_iter().filter(|p| under(&p.name, &r.path, r.recursive)).collect();
            let (items, next) = page(all, max, r.next_token.as_deref())?;
            let shown: Vec<Value> = items.iter().map(|p| shown(ps, p, p.current(), r.with_decryption, None)).collect();
            Ok(json!({"Parameters": shown, "NextToken": next}))
        }
        "DescribeParameters" => {
            let r: Describe = parse(op, body)?;
            let max = max_results(r.max_results, 50)?;
            let mut all = Vec::new();
            for p in ps.list() {
                if r.parameter_filters.iter().try_fold(true, |ok, f| Ok::<_, ApiError>(ok && matches(&p, f)?))? {
                    all.push(p);
                }
            }
            let (items, next) = page(all, max, r.next_token.as_deref())?;
            let shown: Vec<Value> = items
                .iter()
                .map(|p| {
                    let mut m = metadata(p, p.current());
                    m["ARN"] = json!(p.arn);
                    m
                })
                .collect();
            Ok(json!({"Parameters": shown, "NextToken": next}))
        }
        "GetParameterHistory" => {
            let r: History = parse(op, body)?;
            let max = max_results(r.max_results, 50)?;
            let (p, _) = ps.get(&r.name)?;
            let (items, next) = page(p.versions.clone(), max, r.next_token.as_deref())?;
            let shown: Vec<Value> = items
                .iter()
                .map(|v| {
                    let mut m = metadata(&p, v);
                    m["Value"] = json!(ps.shown(&p, v, r.with_decryption));
                    m["Labels"] = json!([]);
                    m
                })
                .collect();
            Ok(json!({"Parameters": shown, "NextToken": next}))
        }
        "DeleteParameter" => {
            let r: Get = parse(op, body)?;
            ps.delete(&r.name)?;
            Ok(json!({}))
        }
        "DeleteParameters" => {
            let r: DeleteMany = parse(op, body)?;
            let (mut deleted, mut invalid) = (Vec::new(), Vec::new());
            for name in r.names {
                match ps.delete(&name) {
                    Ok(()) => deleted.push(name),
                    Err(_) => invalid.push(name),
                }
            }
            Ok(json!({"DeletedParameters": deleted, "InvalidParameters": invalid}))
        }
        _ => Err(ApiError::new(
            ErrorType::UnknownOperation,
            format!("Operation '{op}' is not supported by Berth's SSM API (Parameter Store: PutParameter, GetParameter(s), GetParametersByPath, DescribeParameters, GetParameterHistory, DeleteParameter(s))."),
        )),
    }
}
