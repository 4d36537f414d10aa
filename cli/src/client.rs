//! The ECS API over HTTP: AWS JSON 1.1, `POST /`, SigV4-signed; ECS errors come back as
//! [`ApiError`] (their `__type` and message).

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Context, Result};
use serde_json::{json, Value};

use berth_aws::sigv4::{self, ToSign};
use berth_ecs::DesiredStatus;

use crate::config::AwsEnv;

const TARGET_PREFIX: &str = "AmazonEC2ContainerServiceV20141113.";
/// Berth's own operations on the same endpoint (join tokens).
const ADMIN_TARGET_PREFIX: &str = "BerthAdmin.";
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// An error the API answered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The ECS error type, e.g. `ClusterNotFoundException`.
    pub error_type: String,
    pub message: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error_type, self.message)
    }
}

impl std::error::Error for ApiError {}

impl ApiError {
    /// Reads an AWS JSON 1.1 error body; `__type` may carry a `namespace#` prefix.
    pub fn from_body(status: u16, body: &[u8]) -> Self {
        let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let error_type = v["__type"].as_str().map_or_else(
            || format!("HTTP {status}"),
            |t| t.rsplit('#').next().unwrap_or(t).to_owned(),
        );
        let message = v["message"]
            .as_str()
            .or_else(|| v["Message"].as_str())
            .map_or_else(
                || String::from_utf8_lossy(body).trim().to_owned(),
                str::to_owned,
            );
        Self {
            error_type,
            message,
        }
    }
}

pub struct EcsClient {
    env: AwsEnv,
    host: String,
    http: reqwest::Client,
}

impl EcsClient {
    /// The certificates that verify the API (`AWS_CA_BUNDLE`), if any.
    pub fn ca_bundle(&self) -> Option<&std::path::Path> {
        self.env.ca_bundle.as_deref()
    }

    pub fn new(env: AwsEnv) -> Result<Self> {
        let url = reqwest::Url::parse(&env.endpoint)
            .with_context(|| format!("AWS_ENDPOINT_URL {:?} is not a URL", env.endpoint))?;
        anyhow::ensure!(
            matches!(url.scheme(), "http" | "https"),
            "AWS_ENDPOINT_URL {}: not an http or https URL",
            env.endpoint
        );
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            _ => anyhow::bail!("AWS_ENDPOINT_URL {} has no host", env.endpoint),
        };
        let mut builder = reqwest::Client::builder();
        if let Some(bundle) = &env.ca_bundle {
            // As botocore reads AWS_CA_BUNDLE: these certificates, instead of the system's.
            let pem = std::fs::read(bundle)
                .with_context(|| format!("AWS_CA_BUNDLE {}", bundle.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).with_context(|| {
                format!(
                    "AWS_CA_BUNDLE {} holds no PEM certificate",
                    bundle.display()
                )
            })?;
            builder = builder.tls_certs_only(certs);
        }
        let http = builder
            // Our own control plane: a proxy from the environment would only be in the way.
            .no_proxy()
            .connect_timeout(std::time::Duration::from_secs(5))
            .timeout(std::time::Duration::from_secs(30))
            .build()?;
        Ok(Self { env, host, http })
    }

    /// Calls one ECS operation, e.g. `call("ListTasks", json!({...}))`.
    pub async fn call(&self, operation: &str, input: &Value) -> Result<Value> {
        self.call_target(TARGET_PREFIX, operation, input).await
    }

    /// Calls one of Berth's own operations (`BerthAdmin.<operation>`).
    pub async fn admin(&self, operation: &str, input: &Value) -> Result<Value> {
        self.call_target(ADMIN_TARGET_PREFIX, operation, input)
            .await
    }

    async fn call_target(&self, prefix: &str, operation: &str, input: &Value) -> Result<Value> {
        let body = serde_json::to_vec(input)?;
        let target = format!("{prefix}{operation}");
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let signed = [
            ("host", self.host.as_str()),
            ("content-type", CONTENT_TYPE),
            ("x-amz-target", target.as_str()),
        ];
        let signature = sigv4::sign(
            &ToSign {
                method: "POST",
                path: "/",
                query: "",
                headers: &signed,
                body: &body,
            },
            &self.env.credentials,
            &self.env.region,
            "ecs",
            now,
        );
        let resp = self
            .http
            .post(format!("{}/", self.env.endpoint))
            .header("host", &self.host)
            .header("content-type", CONTENT_TYPE)
            .header("x-amz-target", &target)
            .header("x-amz-date", signature.amz_date)
            .header("authorization", signature.authorization)
            .body(body)
            .send()
            .await
            .with_context(|| format!("{operation}: cannot reach {}", self.env.endpoint))?;
        let status = resp.status();
        let bytes = resp.bytes().await?;
        if !status.is_success() {
            return Err(ApiError::from_body(status.as_u16(), &bytes).into());
        }
        serde_json::from_slice(&bytes).map_err(|e| anyhow!("{operation}: bad response ({e})"))
    }

    /// All task ARNs of `cluster` with the given desired status, across pages.
    pub async fn list_tasks(
        &self,
        cluster: &str,
        desired_status: DesiredStatus,
    ) -> Result<Vec<String>> {
        let mut arns = vec![];
        let mut token: Option<String> = None;
        loop {
            let mut input = json!({ "cluster": cluster, "desiredStatus": desired_status });
            if let Some(t) = &token {
                input["nextToken"] = json!(t);
            }
            let out = self.call("ListTasks", &input).await?;
            arns.extend(strings(&out["taskArns"]));
            match out["nextToken"].as_str() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => return Ok(arns),
            }
        }
    }

    /// Describes tasks (ids or ARNs), 100 per call as ECS allows. Missing tasks are an error.
    pub async fn describe_tasks(&self, cluster: &str, tasks: &[String]) -> Result<Vec<Value>> {
        let mut found = vec![];
        for chunk in tasks.chunks(100) {
            let out = self
                .call(
                    "DescribeTasks",
                    &json!({ "cluster": cluster, "tasks": chunk }),
                )
                .await?;
            if let Some(f) = out["failures"].as_array().and_then(|f| f.first()) {
                anyhow::bail!(
                    "task {} in cluster {cluster}: {}",
                    f["arn"].as_str().unwrap_or("?"),
                    f["reason"].as_str().unwrap_or("not found")
                );
            }
            found.extend(out["tasks"].as_array().cloned().unwrap_or_default());
        }
        Ok(found)
    }

    /// All service ARNs of `cluster`, across pages.
    pub async fn list_services(&self, cluster: &str) -> Result<Vec<String>> {
        let mut arns = vec![];
        let mut token: Option<String> = None;
        loop {
            let mut input = json!({ "cluster": cluster });
            if let Some(t) = &token {
                input["nextToken"] = json!(t);
            }
            let out = self.call("ListServices", &input).await?;
            arns.extend(strings(&out["serviceArns"]));
            match out["nextToken"].as_str() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => return Ok(arns),
            }
        }
    }

    /// Describes services (names or ARNs), 10 per call as ECS allows. A missing service is
    /// an error carrying the API's reason (`MISSING`).
    pub async fn describe_services(
        &self,
        cluster: &str,
        services: &[String],
    ) -> Result<Vec<Value>> {
        let mut found = vec![];
        for chunk in services.chunks(10) {
            let out = self
                .call(
                    "DescribeServices",
                    &json!({ "cluster": cluster, "services": chunk }),
                )
                .await?;
            if let Some(f) = out["failures"].as_array().and_then(|f| f.first()) {
                anyhow::bail!(
                    "service {} in cluster {cluster}: {}",
                    f["arn"].as_str().unwrap_or("?"),
                    f["reason"].as_str().unwrap_or("not found")
                );
            }
            found.extend(out["services"].as_array().cloned().unwrap_or_default());
        }
        Ok(found)
    }

    /// One service by name or ARN.
    pub async fn describe_service(&self, cluster: &str, service: &str) -> Result<Value> {
        self.describe_services(cluster, &[service.to_owned()])
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| anyhow!("service {service} not found in cluster {cluster}"))
    }

    /// One task by id or ARN.
    pub async fn describe_task(&self, cluster: &str, task: &str) -> Result<Value> {
        self.describe_tasks(cluster, &[task.to_owned()])
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| anyhow!("task {task} not found in cluster {cluster}"))
    }
}

fn strings(v: &Value) -> impl Iterator<Item = String> + '_ {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
}

/// The cluster and task id named by `task`: an ARN (`...:task/<cluster>/<id>`) names its
/// own cluster; a bare id is in `cluster`.
pub fn task_ref<'a>(task: &'a str, cluster: &'a str) -> (&'a str, &'a str) {
    arn_ref("task", task, cluster)
}

/// The cluster and name of `service`, the way [`task_ref`] reads tasks
/// (`...:service/<cluster>/<name>`).
pub fn service_ref<'a>(service: &'a str, cluster: &'a str) -> (&'a str, &'a str) {
    arn_ref("service", service, cluster)
}

fn arn_ref<'a>(kind: &str, name: &'a str, cluster: &'a str) -> (&'a str, &'a str) {
    let Some((_, rest)) = name
        .strip_prefix("arn:")
        .and_then(|_| name.split_once(&format!(":{kind}/")))
    else {
        return (cluster, name);
    };
    match rest.split_once('/') {
        Some((c, id)) => (c, id),
        // Old-style ARN without the cluster.
        None => (cluster, rest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_carry_the_ecs_type_and_message() {
        let e = ApiError::from_body(
            400,
            br#"{"__type":"ClusterNotFoundException","message":"Cluster not found."}"#,
        );
        assert_eq!(
            e.to_string(),
            "ClusterNotFoundException: Cluster not found."
        );
        let e = ApiError::from_body(
            400,
            br#"{"__type":"com.amazonaws.ecs#InvalidParameterException","Message":"bad"}"#,
        );
        assert_eq!(e.error_type, "InvalidParameterException");
        assert_eq!(e.message, "bad");
        let e = ApiError::from_body(502, b"Bad Gateway\n");
        assert_eq!(e.to_string(), "HTTP 502: Bad Gateway");
    }

    #[test]
    fn task_refs_take_the_cluster_from_an_arn() {
        assert_eq!(
            task_ref(
                "arn:aws:ecs:us-east-1:123456789012:task/prod/abc",
                "default"
            ),
            ("prod", "abc")
        );
        assert_eq!(
            task_ref("arn:aws:ecs:us-east-1:123456789012:task/abc", "c"),
            ("c", "abc")
        );
        assert_eq!(task_ref("abc", "default"), ("default", "abc"));
        assert_eq!(
            service_ref("arn:aws:ecs:us-east-1:123456789012:service/prod/web", "c"),
            ("prod", "web")
        );
        assert_eq!(service_ref("web", "c"), ("c", "web"));
    }
}
