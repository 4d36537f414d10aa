//! The edge with recording fake services: requests signed by real botocore (the SigV4
//! fixtures) and by our signer, routed, refused and rendered per protocol.

use std::sync::Mutex;

use serde_json::json;

use super::*;
use crate::service::{JsonProtocol, QueryProtocol, ServiceInfo};
use crate::sigv4::{sign, Credentials, ToSign};

const KEY: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const NOW: i64 = 1_714_564_800;

/// What a fake service saw of a call.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    operation: String,
    protocol: Protocol,
    region: String,
    input: Value,
}

struct Fake {
    info: ServiceInfo,
    answer: Result<Value, AwsError>,
    seen: Mutex<Vec<Seen>>,
}

impl Fake {
    fn new(info: ServiceInfo, answer: Result<Value, AwsError>) -> Arc<Self> {
        Arc::new(Self {
            info,
            answer,
            seen: Mutex::new(Vec::new()),
        })
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl AwsService for Fake {
    fn info(&self) -> &ServiceInfo {
        &self.info
    }

    fn call(&self, call: &Call<'_>) -> Result<Value, AwsError> {
        let input = match call.input {
            Input::Json(b"") => json!({}),
            // Bad JSON is the service's to refuse, as Berth's services do.
            Input::Json(body) => {
                serde_json::from_slice(body).map_err(|e| AwsError::serialization(e.to_string()))?
            }
            Input::Query(q) => q.to_value()?,
        };
        self.seen.lock().unwrap().push(Seen {
            operation: call.operation.to_owned(),
            protocol: call.protocol,
            region: call.region.to_owned(),
            input,
        });
        self.answer.clone()
    }
}

fn ecs_info() -> ServiceInfo {
    ServiceInfo {
        signing_name: "ecs",
        json: Some(JsonProtocol {
            target_prefix: "AmazonEC2ContainerServiceV20141113",
            version: JsonVersion::V1_1,
            query_compatible: false,
        }),
        query: None,
    }
}

fn elb_info(version: &'static str) -> ServiceInfo {
    ServiceInfo {
        signing_name: "elasticloadbalancing",
        json: None,
        query: Some(QueryProtocol {
            version,
            xmlns: "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/",
        }),
    }
}

fn monitoring_info() -> ServiceInfo {
    ServiceInfo {
        signing_name: "monitoring",
        json: Some(JsonProtocol {
            target_prefix: "GraniteServiceVersion20100801",
            version: JsonVersion::V1_0,
            query_compatible: true,
        }),
        query: Some(QueryProtocol {
            version: "2010-08-01",
            xmlns: "http://monitoring.amazonaws.com/doc/2010-08-01/",
        }),
    }
}

fn edge(services: Vec<Arc<dyn AwsService>>) -> Edge {
    Edge::new(services, |k| (k == KEY).then(|| SECRET.to_owned()))
}

/// A request as it arrived, owned.
struct Wired {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Vec<u8>,
    now: i64,
}

impl Wired {
    /// A botocore-signed request from the SigV4 fixtures.
    fn fixture(text: &str) -> Self {
        let f: Value = serde_json::from_str(text).unwrap();
        let mut headers = HeaderMap::new();
        for h in f["headers"].as_array().unwrap() {
            headers.append(
                HeaderName::from_bytes(h[0].as_str().unwrap().as_bytes()).unwrap(),
                HeaderValue::from_str(h[1].as_str().unwrap()).unwrap(),
            );
        }
        let query = f["query"].as_str().unwrap();
        let path = f["path"].as_str().unwrap();
        let uri = if query.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{query}")
        };
        Self {
            method: f["method"].as_str().unwrap().parse().unwrap(),
            uri: uri.parse().unwrap(),
            headers,
            body: f["body"].as_str().unwrap().as_bytes().to_vec(),
            now: f["now_unix"].as_i64().unwrap(),
        }
    }

    /// A `POST /` signed by our signer for `service` in `region`.
    fn signed(region: &str, service: &str, headers: &[(&str, &str)], body: &[u8]) -> Self {
        let mut to_sign = vec![("host", "127.0.0.1:8500")];
        to_sign.extend_from_slice(headers);
        let creds = Credentials {
            access_key_id: KEY.into(),
            secret_access_key: SECRET.into(),
        };
        let signature = sign(
            &ToSign {
                method: "POST",
                path: "/",
                query: "",
                headers: &to_sign,
                body,
            },
            &creds,
            region,
            service,
            NOW,
        );
        let mut map = HeaderMap::new();
        for (n, v) in &to_sign {
            map.insert(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map.insert(
            "x-amz-date",
            HeaderValue::from_str(&signature.amz_date).unwrap(),
        );
        map.insert(
            "authorization",
            HeaderValue::from_str(&signature.authorization).unwrap(),
        );
        Self {
            method: Method::POST,
            uri: "/".parse().unwrap(),
            headers: map,
            body: body.to_vec(),
            now: NOW,
        }
    }

    fn send(&self, edge: &Edge) -> Response<Vec<u8>> {
        let req = HttpRequest {
            method: &self.method,
            uri: &self.uri,
            headers: &self.headers,
            body: &self.body,
        };
        edge.handle(&req, "req-1", self.now)
    }
}

fn header<'r>(r: &'r Response<Vec<u8>>, name: &str) -> Option<&'r str> {
    r.headers().get(name).map(|v| v.to_str().unwrap())
}

fn json_body(r: &Response<Vec<u8>>) -> Value {
    serde_json::from_slice(r.body()).unwrap()
}

fn text(r: &Response<Vec<u8>>) -> &str {
    std::str::from_utf8(r.body()).unwrap()
}

const ECS_LIST_CLUSTERS: &str = include_str!("../../fixtures/sigv4_boto3_list_clusters.json");
const ELB_DESCRIBE: &str = include_str!("../../fixtures/sigv4_query_elbv2.json");
const CW_LIST_METRICS: &str = include_str!("../../fixtures/sigv4_json10_cloudwatch.json");

#[test]
fn json_11_routes_by_target_prefix_with_the_signed_region() {
    let ecs = Fake::new(ecs_info(), Ok(json!({"clusterArns": []})));
    let other = Fake::new(monitoring_info(), Ok(json!({})));
    let edge = edge(vec![other.clone(), ecs.clone()]);
    let r = Wired::fixture(ECS_LIST_CLUSTERS).send(&edge);
    assert_eq!(r.status(), 200, "{}", text(&r));
    assert_eq!(
        header(&r, "content-type"),
        Some("application/x-amz-json-1.1")
    );
    assert_eq!(header(&r, "x-amzn-requestid"), Some("req-1"));
    assert_eq!(json_body(&r), json!({"clusterArns": []}));
    assert_eq!(
        ecs.seen(),
        vec![Seen {
            operation: "ListClusters".into(),
            protocol: Protocol::Json(JsonVersion::V1_1),
            region: "us-east-1".into(),
            input: json!({}),
        }]
    );
    assert!(other.seen().is_empty());
}

#[test]
fn query_routes_by_scope_and_version_and_answers_in_xml() {
    let elb = Fake::new(
        elb_info("2015-12-01"),
        Ok(json!({"LoadBalancers": [{"LoadBalancerName": "web"}]})),
    );
    let classic = Fake::new(elb_info("2012-06-01"), Ok(json!({})));
    let edge = edge(vec![classic.clone(), elb.clone()]);
    let r = Wired::fixture(ELB_DESCRIBE).send(&edge);
    assert_eq!(r.status(), 200, "{}", text(&r));
    assert_eq!(header(&r, "content-type"), Some("text/xml"));
    assert!(
        text(&r).contains(concat!(
            r#"<DescribeLoadBalancersResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/">"#,
            "<DescribeLoadBalancersResult><LoadBalancers><member><LoadBalancerName>web</LoadBalancerName>",
            "</member></LoadBalancers></DescribeLoadBalancersResult>",
            "<ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata>"
        )),
        "{}",
        text(&r)
    );
    assert_eq!(
        elb.seen(),
        vec![Seen {
            operation: "DescribeLoadBalancers".into(),
            protocol: Protocol::Query,
            region: "eu-west-1".into(),
            input: json!({"Names": ["web", "api"]}),
        }]
    );
    assert!(classic.seen().is_empty());
}

#[test]
fn a_query_service_not_served_is_invalid_action_in_xml_naming_it() {
    let edge = edge(vec![Fake::new(ecs_info(), Ok(json!({})))]);
    let r = Wired::fixture(ELB_DESCRIBE).send(&edge);
    assert_eq!(r.status(), 400);
    assert_eq!(header(&r, "content-type"), Some("text/xml"));
    let body = text(&r);
    assert!(
        body.contains("<Type>Sender</Type><Code>InvalidAction</Code>"),
        "{body}"
    );
    assert!(
        body.contains("Berth does not serve the AWS service &apos;elasticloadbalancing&apos;"),
        "{body}"
    );
    assert!(body.contains("<RequestId>req-1</RequestId>"), "{body}");

    // Served, but at another API version (classic ELB shares the signing name).
    let edge = self::edge(vec![Fake::new(elb_info("2012-06-01"), Ok(json!({})))]);
    let body = Wired::fixture(ELB_DESCRIBE).send(&edge).into_body();
    let body = String::from_utf8(body).unwrap();
    assert!(body.contains("<Code>InvalidAction</Code>"), "{body}");
    assert!(
        body.contains("2012-06-01, not Version &apos;2015-12-01&apos;"),
        "{body}"
    );
}

#[test]
fn a_json_service_not_served_is_unknown_operation_with_the_query_code_when_asked() {
    let edge = edge(vec![Fake::new(ecs_info(), Ok(json!({})))]);
    let r = Wired::fixture(CW_LIST_METRICS).send(&edge);
    assert_eq!(r.status(), 400);
    assert_eq!(
        header(&r, "content-type"),
        Some("application/x-amz-json-1.0")
    );
    assert_eq!(
        header(&r, "x-amzn-query-error"),
        Some("InvalidAction;Sender")
    );
    let body = json_body(&r);
    assert_eq!(body["__type"], "UnknownOperationException");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.starts_with("Berth does not serve the AWS service 'monitoring'"),
        "{message}"
    );
    assert!(message.ends_with("It serves ecs."), "{message}");

    // Without x-amzn-query-mode a plain JSON client gets no query code.
    let r = Wired::signed(
        "eu-west-1",
        "logs",
        &[
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", "Logs_20140328.DescribeLogGroups"),
        ],
        b"{}",
    )
    .send(&edge);
    assert_eq!(r.status(), 400);
    assert_eq!(header(&r, "x-amzn-query-error"), None);
    assert!(json_body(&r)["message"]
        .as_str()
        .unwrap()
        .contains("'logs' (X-Amz-Target 'Logs_20140328.DescribeLogGroups')"));
}

#[test]
fn a_query_compatible_service_s_errors_carry_both_codes() {
    let error = AwsError::client("ResourceNotFoundException", "no such alarm")
        .with_query_code("ResourceNotFound");
    let cw = Fake::new(monitoring_info(), Err(error));
    let edge = edge(vec![cw.clone()]);
    let r = Wired::fixture(CW_LIST_METRICS).send(&edge);
    assert_eq!(r.status(), 400);
    assert_eq!(
        header(&r, "x-amzn-query-error"),
        Some("ResourceNotFound;Sender")
    );
    assert_eq!(
        json_body(&r),
        json!({"__type": "ResourceNotFoundException", "message": "no such alarm"})
    );
    assert_eq!(cw.seen()[0].protocol, Protocol::Json(JsonVersion::V1_0));
    assert_eq!(cw.seen()[0].input, json!({"Namespace": "AWS/ECS"}));

    // The same service over the query protocol answers with the query code in XML.
    let body = Wired::signed(
        "eu-west-1",
        "monitoring",
        &[(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )],
        b"Action=ListMetrics&Version=2010-08-01&Namespace=AWS%2FECS",
    )
    .send(&edge)
    .into_body();
    let body = String::from_utf8(body).unwrap();
    assert!(body.contains("<Code>ResourceNotFound</Code>"), "{body}");
    assert_eq!(cw.seen()[1].protocol, Protocol::Query);
}

#[test]
fn signature_failures_are_rendered_in_the_request_s_protocol() {
    let edge = edge(vec![Fake::new(ecs_info(), Ok(json!({})))]);
    let mut elb = Wired::fixture(ELB_DESCRIBE);
    elb.body = b"Action=DeleteLoadBalancer&Version=2015-12-01".to_vec();
    let r = elb.send(&edge);
    assert_eq!(r.status(), 403);
    assert!(
        text(&r).contains("<Code>SignatureDoesNotMatch</Code>"),
        "{}",
        text(&r)
    );

    let mut ecs = Wired::fixture(ECS_LIST_CLUSTERS);
    ecs.now += 3600;
    let r = ecs.send(&edge);
    assert_eq!(r.status(), 403);
    let body = json_body(&r);
    assert_eq!(body["__type"], "InvalidSignatureException");
    assert!(body["message"]
        .as_str()
        .unwrap()
        .starts_with("Signature expired"));
}

#[test]
fn a_request_signed_for_another_service_is_refused() {
    let ecs = Fake::new(ecs_info(), Ok(json!({})));
    let edge = edge(vec![ecs.clone()]);
    let r = Wired::signed(
        "us-east-1",
        "logs",
        &[
            ("content-type", "application/x-amz-json-1.1"),
            (
                "x-amz-target",
                "AmazonEC2ContainerServiceV20141113.ListClusters",
            ),
        ],
        b"{}",
    )
    .send(&edge);
    assert_eq!(r.status(), 403);
    assert_eq!(
        json_body(&r),
        json!({
            "__type": "InvalidSignatureException",
            "message": "Credential should be scoped to correct service: 'ecs'."
        })
    );
    assert!(ecs.seen().is_empty());
}

#[test]
fn requests_that_name_no_operation_are_refused_clearly() {
    let edge = edge(vec![Fake::new(ecs_info(), Ok(json!({})))]);
    let none = Wired::signed(
        "us-east-1",
        "ecs",
        &[("content-type", "application/json")],
        b"{}",
    )
    .send(&edge);
    assert_eq!(none.status(), 400);
    let body = json_body(&none);
    assert_eq!(body["__type"], "UnknownOperationException");
    assert!(body["message"].as_str().unwrap().contains("X-Amz-Target"));

    let no_dot = Wired::signed(
        "us-east-1",
        "ecs",
        &[("x-amz-target", "ListClusters")],
        b"{}",
    )
    .send(&edge);
    assert!(json_body(&no_dot)["message"]
        .as_str()
        .unwrap()
        .contains("<TargetPrefix>.<Operation>"));

    let missing = Wired::signed(
        "us-east-1",
        "elasticloadbalancing",
        &[("content-type", "application/x-www-form-urlencoded")],
        b"Version=2015-12-01",
    )
    .send(&edge);
    assert_eq!(missing.status(), 400);
    assert!(text(&missing).contains("<Code>MissingAction</Code>"));
}

#[test]
fn a_service_s_error_and_timestamps_follow_the_protocol() {
    let call = |protocol| Call {
        operation: "X",
        protocol,
        region: "r",
        access_key_id: "k",
        request_id: "i",
        host: "h",
        input: Input::Json(b""),
    };
    assert_eq!(
        call(Protocol::Json(JsonVersion::V1_1)).timestamp(1_714_564_800_250),
        json!(1_714_564_800.25)
    );
    assert_eq!(
        call(Protocol::Query).timestamp(1_714_564_800_250),
        json!("2024-05-01T12:00:00.250Z")
    );
    let failing = Fake::new(ecs_info(), Err(AwsError::internal("disk full")));
    let r = Wired::fixture(ECS_LIST_CLUSTERS).send(&edge(vec![failing]));
    assert_eq!(r.status(), 500);
    assert_eq!(
        json_body(&r),
        json!({"__type": "InternalFailure", "message": "disk full"})
    );
}

#[test]
#[should_panic(expected = "AmazonEC2ContainerServiceV20141113 twice")]
fn two_services_cannot_claim_one_target_prefix() {
    let _ = edge(vec![
        Fake::new(ecs_info(), Ok(json!({}))),
        Fake::new(ecs_info(), Ok(json!({}))),
    ]);
}

#[test]
fn a_region_that_could_not_be_an_arn_s_is_refused() {
    let ecs = Fake::new(ecs_info(), Ok(json!({})));
    let edge = edge(vec![ecs.clone()]);
    let target = [
        ("content-type", "application/x-amz-json-1.1"),
        (
            "x-amz-target",
            "AmazonEC2ContainerServiceV20141113.CreateCluster",
        ),
    ];
    let r = Wired::signed("us:east", "ecs", &target, b"{}").send(&edge);
    assert_eq!(r.status(), 403);
    assert_eq!(
        json_body(&r)["message"],
        "Credential should be scoped to a valid region, not 'us:east'."
    );
    assert!(ecs.seen().is_empty());
    let ok = Wired::signed("ap-southeast-4", "ecs", &target, b"{}").send(&edge);
    assert_eq!(ok.status(), 200);
}

#[test]
fn a_served_service_is_never_said_to_be_unserved() {
    let edge = edge(vec![Fake::new(ecs_info(), Ok(json!({})))]);
    // An unknown target prefix, signed for a service Berth serves.
    let r = Wired::signed(
        "us-east-1",
        "ecs",
        &[(
            "x-amz-target",
            "AmazonEC2ContainerServiceV20990101.ListClusters",
        )],
        b"{}",
    )
    .send(&edge);
    let message = json_body(&r)["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("names no operation Berth serves for 'ecs'")
            && message.contains("AmazonEC2ContainerServiceV20141113"),
        "{message}"
    );
    // The query protocol for a service Berth serves over JSON only.
    let r = Wired::signed(
        "us-east-1",
        "ecs",
        &[("content-type", "application/x-www-form-urlencoded")],
        b"Action=ListClusters&Version=2014-11-13",
    )
    .send(&edge);
    let body = text(&r).to_owned();
    assert!(body.contains("<Code>InvalidAction</Code>"), "{body}");
    assert!(
        body.contains(
            "Berth serves &apos;ecs&apos; over AWS JSON (X-Amz-Target), not the AWS query protocol"
        ),
        "{body}"
    );
}

/// Generated input at the edge (`scripts/fuzz-nightly.sh` runs these with many more
/// cases): whatever arrives, the edge answers (a result or an AWS error), never panics,
/// and never answers a request that is not correctly signed with anything but an error.
mod fuzz {
    use proptest::prelude::*;

    use super::*;

    fn every_protocol() -> Edge {
        edge(vec![
            Fake::new(ecs_info(), Ok(json!({"ok": true}))),
            Fake::new(elb_info("2015-12-01"), Ok(json!({"ok": true}))),
            Fake::new(monitoring_info(), Ok(json!({"ok": true}))),
        ])
    }

    fn header_pairs() -> impl Strategy<Value = Vec<(String, String)>> {
        let names = prop::sample::select(vec![
            "authorization",
            "x-amz-date",
            "x-amz-target",
            "content-type",
            "host",
            "x-amz-content-sha256",
            "x-amz-security-token",
            "x-other",
        ]);
        prop::collection::vec((names.prop_map(str::to_owned), "[ -~]{0,120}"), 0..8)
    }

    proptest! {
        #[test]
        fn arbitrary_requests_are_refused_without_panicking(
            method in prop::sample::select(vec!["GET", "POST", "PUT", "DELETE"]),
            path in "/[!-~]{0,40}",
            headers in header_pairs(),
            body in prop::collection::vec(any::<u8>(), 0..512),
        ) {
            let mut map = HeaderMap::new();
            for (n, v) in &headers {
                if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(n.as_bytes()), HeaderValue::from_str(v)) {
                    map.append(n, v);
                }
            }
            let Ok(uri) = path.parse::<Uri>() else { return Ok(()) };
            let w = Wired { method: method.parse().unwrap(), uri, headers: map, body, now: NOW };
            let r = w.send(&every_protocol());
            prop_assert!(r.status().is_client_error(), "{}: {}", r.status(), String::from_utf8_lossy(r.body()));
        }

        #[test]
        fn signed_json_bodies_of_any_shape_are_answered(
            target in prop::sample::select(vec![
                "AmazonEC2ContainerServiceV20141113.ListClusters",
                "AmazonEC2ContainerServiceV20141113.",
                "GraniteServiceVersion20100801.ListMetrics",
                "Nope.Op", "",
            ]),
            content_type in prop::sample::select(vec![
                "application/x-amz-json-1.1", "application/x-amz-json-1.0",
                "application/json", "text/plain", "",
            ]),
            body in prop::collection::vec(any::<u8>(), 0..1024),
        ) {
            let service = if target.starts_with("Granite") { "monitoring" } else { "ecs" };
            let w = Wired::signed("us-east-1", service, &[("x-amz-target", target), ("content-type", content_type)], &body);
            let r = w.send(&every_protocol());
            prop_assert!(r.status().as_u16() < 500, "{}: {}", r.status(), String::from_utf8_lossy(r.body()));
        }

        #[test]
        fn signed_query_forms_of_any_text_are_answered(form in "[ -~]{0,400}") {
            let w = Wired::signed(
                "us-east-1",
                "elasticloadbalancing",
                &[("content-type", "application/x-www-form-urlencoded; charset=utf-8")],
                form.as_bytes(),
            );
            let r = w.send(&every_protocol());
            prop_assert!(r.status().as_u16() < 500, "{}: {}", r.status(), String::from_utf8_lossy(r.body()));
        }
    }
}
