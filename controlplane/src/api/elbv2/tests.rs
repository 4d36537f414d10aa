//! ELBv2's operations over a real configuration store, without HTTP: ELB's defaults,
//! its answers to repeated and conflicting calls, and its error codes.

use std::sync::Arc;

use berth_aws::{Call, Input, Protocol, QueryParams};
use serde_json::{json, Value};

use super::{dispatch, Ctx};
use crate::lb::{LbContext, LbError, LoadBalancers};
use crate::state::test_support::control_plane;
use crate::store::Store;

struct Fixture {
    lbs: LoadBalancers,
    store: Arc<dyn Store>,
}

fn fixture() -> Fixture {
    let (cp, store) = control_plane();
    let store: Arc<dyn Store> = store;

    let lbs = LoadBalancers::open(
        store.clone(),
        Arc::new(cp),
        Arc::new(crate::sealing::Sealer::ephemeral()),
        "127.0.0.1".parse().unwrap(),
        None,
    )
    .unwrap();
    Fixture { lbs, store }
}

impl Fixture {
    fn call(&self, op: &str, input: &Value) -> Result<Value, LbError> {
        let params = QueryParams::default();
        let call = Call {
            operation: op,
            protocol: Protocol::Query,
            region: "eu-west-1",
            access_key_id: "AKID",
            request_id: "r",
            host: "localhost",
            input: Input::Query(&params),
        };
        let ctx = Ctx {
            lbs: &self.lbs.config,
            dataplane: &self.lbs.dataplane,
            certificates: &self.lbs.certificates,
            lb: LbContext {
                region: "eu-west-1".into(),
                account: "123456789012".into(),
                dns_name: self.lbs.dns_name.clone(),
            },
            call: &call,
        };
        dispatch(&ctx, op, input)
    }

    fn ok(&self, op: &str, input: &Value) -> Value {
        self.call(op, input).unwrap_or_else(|e| panic!("{op}: {e}"))
    }

    fn code(&self, op: &str, input: &Value) -> &'static str {
        self.call(op, input).expect_err(op).code
    }

    fn target_group(&self, name: &str) -> String {
        let tg = self.ok(
            "CreateTargetGroup",
            &json!({"Name": name, "Protocol": "HTTP", "Port": "80", "VpcId": "vpc-1", "TargetType": "ip"}),
        );
        tg["TargetGroups"][0]["TargetGroupArn"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn load_balancer(&self, name: &str) -> String {
        let lb = self.ok(
            "CreateLoadBalancer",
            &json!({"Name": name, "Subnets": ["s-1"]}),
        );
        lb["LoadBalancers"][0]["LoadBalancerArn"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn listener(&self, lb: &str, port: u16, tg: &str) -> String {
        let l = self.ok(
            "CreateListener",
            &json!({"LoadBalancerArn": lb, "Protocol": "HTTP", "Port": port.to_string(),
                    "DefaultActions": [{"Type": "forward", "TargetGroupArn": tg}]}),
        );
        l["Listeners"][0]["ListenerArn"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

#[test]
fn target_groups_take_elbs_defaults_and_repeat_creates_return_the_same_group() {
    let f = fixture();
    let out = f.ok(
        "CreateTargetGroup",
        &json!({"Name": "web", "Protocol": "HTTP", "Port": "80", "VpcId": "vpc-1", "TargetType": "ip"}),
    );
    let tg = &out["TargetGroups"][0];
    assert!(tg["TargetGroupArn"]
        .as_str()
        .unwrap()
        .starts_with("arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web/"));
    assert_eq!(
        (
            &tg["HealthCheckIntervalSeconds"],
            &tg["HealthCheckTimeoutSeconds"],
            &tg["HealthyThresholdCount"],
            &tg["UnhealthyThresholdCount"],
            &tg["Matcher"]["HttpCode"],
            &tg["HealthCheckPath"],
        ),
        (
            &json!(30),
            &json!(5),
            &json!(5),
            &json!(2),
            &json!("200"),
            &json!("/")
        )
    );
    assert_eq!(f.target_group("web"), tg["TargetGroupArn"]);
    assert_eq!(
        f.code(
            "CreateTargetGroup",
            &json!({"Name": "web", "Protocol": "HTTP", "Port": "8080", "TargetType": "ip"})
        ),
        "DuplicateTargetGroupName"
    );
    let attrs = f.ok(
        "DescribeTargetGroupAttributes",
        &json!({"TargetGroupArn": tg["TargetGroupArn"]}),
    );
    assert!(attrs["Attributes"]
        .as_array()
        .unwrap()
        .contains(&json!({"Key": "deregistration_delay.timeout_seconds", "Value": "300"})));
}

#[test]
fn bad_settings_are_refused_with_elbs_codes() {
    let f = fixture();
    let base = json!({"Name": "web", "Protocol": "HTTP", "Port": "80", "TargetType": "ip"});
    let with = |k: &str, v: &str| {
        let mut x = base.clone();
        x[k] = json!(v);
        x
    };
    assert_eq!(
        f.code(
            "CreateTargetGroup",
            &with("HealthCheckTimeoutSeconds", "30")
        ),
        "ValidationError"
    );
    assert_eq!(
        f.code("CreateTargetGroup", &with("HealthCheckPath", "health")),
        "ValidationError"
    );
    assert_eq!(
        f.code("CreateTargetGroup", &with("Port", "http")),
        "ValidationError"
    );
    assert_eq!(
        f.code("CreateTargetGroup", &with("Protocol", "TCP")),
        "UnsupportedProtocol"
    );
    assert_eq!(
        f.code("CreateTargetGroup", &with("Name", "-web")),
        "ValidationError"
    );
    let tg = f.target_group("web");
    assert_eq!(
        f.code(
            "RegisterTargets",
            &json!({"TargetGroupArn": tg, "Targets": [{"Id": "i-0abc"}]})
        ),
        "InvalidTarget"
    );
    assert_eq!(
        f.code(
            "ModifyTargetGroupAttributes",
            &json!({"TargetGroupArn": tg, "Attributes": [{"Key": "nope", "Value": "1"}]})
        ),
        "ValidationError"
    );
    let lb = f.load_balancer("web");
    assert_eq!(
        f.code(
            "CreateListener",
            &json!({"LoadBalancerArn": lb, "Port": "80",
                    "DefaultActions": [{"Type": "forward", "TargetGroupArn": "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/x/0"}]})
        ),
        "TargetGroupNotFound"
    );
    assert_eq!(
        f.code("DescribeLoadBalancers", &json!({"Names": ["nope"]})),
        "LoadBalancerNotFound"
    );
    assert_eq!(
        f.code(
            "CreateLoadBalancer",
            &json!({"Name": "x", "Type": "network"})
        ),
        "InvalidConfigurationRequest"
    );
}

#[test]
fn rules_keep_priorities_unique_and_describe_lists_the_default_last() {
    let f = fixture();
    let tg = f.target_group("web");
    let lb = f.load_balancer("web");
    let listener = f.listener(&lb, 8080, &tg);
    let rule = |priority: &str, path: &str| {
        json!({"ListenerArn": listener, "Priority": priority,
               "Conditions": [{"Field": "path-pattern", "Values": [path]}],
               "Actions": [{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}]})
    };
    let r10 = f.ok("CreateRule", &rule("10", "/api/*"))["Rules"][0]["RuleArn"].clone();
    assert_eq!(
        f.code("CreateRule", &rule("10", "/other/*")),
        "PriorityInUse"
    );
    assert_eq!(
        f.code("CreateRule", &rule("50001", "/x")),
        "ValidationError"
    );
    let r20 = f.ok("CreateRule", &rule("20", "/img/*"))["Rules"][0]["RuleArn"].clone();
    let rules = f.ok("DescribeRules", &json!({"ListenerArn": listener}))["Rules"].clone();
    let priorities: Vec<&Value> = rules
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["Priority"])
        .collect();
    assert_eq!(priorities, [&json!("10"), &json!("20"), &json!("default")]);
    // Swapping two priorities in one call is allowed; a clash is not.
    f.ok(
        "SetRulePriorities",
        &json!({"RulePriorities": [{"RuleArn": r10, "Priority": "20"}, {"RuleArn": r20, "Priority": "10"}]}),
    );
    assert_eq!(
        f.code(
            "SetRulePriorities",
            &json!({"RulePriorities": [{"RuleArn": r10, "Priority": "10"}]})
        ),
        "PriorityInUse"
    );
    // A target group a listener forwards to cannot be deleted; the load balancer can,
    // and takes its listeners and rules with it.
    assert_eq!(
        f.code("DeleteTargetGroup", &json!({"TargetGroupArn": tg})),
        "ResourceInUse"
    );
    f.ok("DeleteLoadBalancer", &json!({"LoadBalancerArn": lb}));
    assert_eq!(
        f.code("DescribeRules", &json!({"ListenerArn": listener})),
        "ListenerNotFound"
    );
    f.ok("DeleteTargetGroup", &json!({"TargetGroupArn": tg}));
    assert!(f.lbs.config.snapshot().rules.is_empty());
}

#[test]
fn a_listener_port_serves_one_listener() {
    let f = fixture();
    let tg = f.target_group("web");
    let a = f.load_balancer("a");
    let b = f.load_balancer("b");
    let first = f.listener(&a, 8080, &tg);
    assert_eq!(
        f.listener(&a, 8080, &tg),
        first,
        "the same listener again is no conflict"
    );
    let clash = json!({"LoadBalancerArn": b, "Port": "8080",
                       "DefaultActions": [{"Type": "forward", "TargetGroupArn": tg}]});
    assert_eq!(f.code("CreateListener", &clash), "DuplicateListener");
    let https = json!({"LoadBalancerArn": a, "Protocol": "HTTPS", "Port": "8443",
                       "DefaultActions": [{"Type": "forward", "TargetGroupArn": tg}]});
    assert_eq!(
        f.code("CreateListener", &https),
        "ValidationError",
        "no certificate"
    );
    let mut unknown = https.clone();
    unknown["Certificates"] =
        json!([{"CertificateArn": "arn:aws:acm:eu-west-1:123456789012:certificate/nope"}]);
    assert_eq!(f.code("CreateListener", &unknown), "CertificateNotFound");
    let tcp = json!({"LoadBalancerArn": a, "Protocol": "TCP", "Port": "8444",
                     "DefaultActions": [{"Type": "forward", "TargetGroupArn": tg}]});
    assert_eq!(f.code("CreateListener", &tcp), "UnsupportedProtocol");
}

#[test]
fn the_configuration_survives_a_restart() {
    let f = fixture();
    let tg = f.target_group("web");
    let lb = f.load_balancer("web");
    let listener = f.listener(&lb, 8080, &tg);
    f.ok(
        "RegisterTargets",
        &json!({"TargetGroupArn": tg, "Targets": [{"Id": "10.0.0.5", "Port": "8000"}]}),
    );
    f.ok(
        "AddTags",
        &json!({"ResourceArns": [lb], "Tags": [{"Key": "team", "Value": "web"}]}),
    );
    let reopened = crate::lb::LoadBalancing::open(f.store.clone()).unwrap();
    assert_eq!(*reopened.snapshot(), *f.lbs.config.snapshot());
    let config = reopened.snapshot();
    assert_eq!(config.target_groups[&tg].targets[0].port, 8000);
    assert_eq!(config.listeners[&listener].port, 8080);
    assert_eq!(
        config.load_balancers[&lb].tags,
        [("team".to_string(), "web".to_string())]
    );
    let health = f.ok("DescribeTargetHealth", &json!({"TargetGroupArn": tg}));
    assert_eq!(
        health["TargetHealthDescriptions"][0]["TargetHealth"]["State"], "initial",
        "registered, not yet checked"
    );
}

#[test]
fn describes_find_what_they_name_by_arn_or_name_and_refuse_what_is_missing() {
    let f = fixture();
    let a = f.load_balancer("a");
    f.load_balancer("b");
    let names = |v: &Value| -> Vec<String> {
        v["LoadBalancers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["LoadBalancerName"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        names(&f.ok("DescribeLoadBalancers", &json!({}))),
        ["a", "b"]
    );
    // By ARN and by name in one call: either names an item.
    let both = f.ok(
        "DescribeLoadBalancers",
        &json!({"LoadBalancerArns": [a], "Names": ["b"]}),
    );
    assert_eq!(names(&both), ["a", "b"]);
    // Naming one twice is no missing one.
    assert_eq!(
        names(&f.ok("DescribeLoadBalancers", &json!({"Names": ["a", "a"]}))),
        ["a"]
    );
    assert_eq!(
        f.code("DescribeLoadBalancers", &json!({"Names": ["a", "nope"]})),
        "LoadBalancerNotFound"
    );
}
