//! The edge as real boto3 clients see it: a query service's XML parsed by botocore against
//! ELBv2's model, and the error shapes of each protocol read back as the right codes.

use std::process::Command;
use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Uri};
use berth_aws::{
    AwsError, AwsService, Call, Edge, HttpRequest, JsonProtocol, JsonVersion, QueryProtocol,
    ServiceInfo,
};
use serde_json::{json, Value};

struct FakeElb;

impl AwsService for FakeElb {
    fn info(&self) -> &ServiceInfo {
        &ServiceInfo {
            signing_name: "elasticloadbalancing",
            json: None,
            query: Some(QueryProtocol {
                version: "2015-12-01",
                xmlns: "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/",
            }),
        }
    }

    fn call(&self, call: &Call<'_>) -> Result<Value, AwsError> {
        match call.operation {
            "DescribeLoadBalancers" => Ok(json!({
                "LoadBalancers": [{
                    "LoadBalancerName": "web",
                    "CreatedTime": call.timestamp(1_714_564_800_250),
                    "AvailabilityZones": [{"ZoneName": "eu-west-1a"}, {"ZoneName": "eu-west-1b"}],
                    "IpAddressType": "ipv4",
                }],
            })),
            op => Err(AwsError::client(
                "LoadBalancerNotFound",
                format!("{op}: load balancer 'arn:x' not found"),
            )),
        }
    }
}

struct FakeCloudWatch;

impl AwsService for FakeCloudWatch {
    fn info(&self) -> &ServiceInfo {
        &ServiceInfo {
            signing_name: "monitoring",
            json: Some(JsonProtocol {
                target_prefix: "GraniteServiceVersion20100801",
                version: JsonVersion::V1_0,
                query_compatible: true,
            }),
            query: None,
        }
    }

    fn call(&self, _: &Call<'_>) -> Result<Value, AwsError> {
        Err(
            AwsError::client("InvalidParameterValueException", "bad namespace")
                .with_query_code("InvalidParameterValue"),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_parses_what_the_edge_renders() {
    let edge = Arc::new(Edge::new(
        vec![Arc::new(FakeElb), Arc::new(FakeCloudWatch)],
        |k| (k == "AKIDEXAMPLE").then(|| "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_owned()),
    ));
    let app = axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let edge = edge.clone();
            async move {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                let req = HttpRequest {
                    method: &method,
                    uri: &uri,
                    headers: &headers,
                    body: &body,
                };
                edge.handle(&req, "edge-req-1", i64::try_from(now).unwrap())
                    .map(axum::body::Body::from)
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/botocore_parses.py");
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .env("EDGE_ENDPOINT", endpoint)
            .env_remove("AWS_PROFILE")
            .output()
            .expect("python3 with boto3 (scripts/install-deps.sh installs it)")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "botocore_parses.py failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        got["load_balancers"],
        json!([{
            "name": "web",
            "created": "2024-05-01T12:00:00.250000+00:00",
            "zones": ["eu-west-1a", "eu-west-1b"],
            "port_count": "ipv4",
        }])
    );
    assert_eq!(got["elb_request_id"], "edge-req-1");
    assert_eq!(
        got["elb_error"],
        json!({
            "code": "LoadBalancerNotFound",
            "message": "DeleteLoadBalancer: load balancer 'arn:x' not found",
            "status": 400,
            "request_id": "edge-req-1",
            "type": "Sender",
        })
    );
    // Query-compatible JSON: botocore reports the query code from x-amzn-query-error.
    assert_eq!(got["cloudwatch_error"]["code"], "InvalidParameterValue");
    assert_eq!(got["cloudwatch_error"]["type"], "Sender");
    assert_eq!(got["cloudwatch_error"]["message"], "bad namespace");
    // A JSON 1.1 service Berth doesn't serve.
    assert_eq!(got["logs_error"]["code"], "UnknownOperationException");
    assert_eq!(got["logs_error"]["status"], 400);
    let message = got["logs_error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("Berth does not serve the AWS service 'logs'"),
        "{message}"
    );
}
