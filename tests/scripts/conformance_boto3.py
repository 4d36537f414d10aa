#!/usr/bin/env python3
"""Response conformance: drives a scenario through boto3 (ECS, Secrets Manager, SSM,
CloudWatch Logs, ACM, ELBv2) and checks every raw response Berth sends against the
output shape of the operation in botocore's own model: no member the model lacks, every
value of the model's type (timestamps as epoch numbers in AWS JSON, ISO 8601 in the
query protocol's XML), enums within the model's values, required members present.

usage: conformance_boto3.py   (env: AWS_ENDPOINT_URL, keys, region from aws.env;
                               BERTH_DEMO_IMAGE)
Prints {"checked": [...operations...], "violations": [...]}; exits 1 on violations.
"""
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

import boto3

checked = set()
violations = []


def check(shape, value, path):
    """Appends a violation for each way `value` departs from botocore's `shape`."""
    if value is None:
        return
    t = shape.type_name
    if t == "structure":
        if not isinstance(value, dict):
            violations.append(f"{path}: {type(value).__name__}, not an object")
            return
        for k, v in value.items():
            member = shape.members.get(k)
            if member is None:
                violations.append(f"{path}.{k}: not a member of {shape.name}")
            else:
                check(member, v, f"{path}.{k}")
        for r in shape.required_members:
            if r not in value:
                violations.append(f"{path}: required member {r} of {shape.name} missing")
    elif t == "list":
        if not isinstance(value, list):
            violations.append(f"{path}: {type(value).__name__}, not a list")
            return
        for i, v in enumerate(value):
            check(shape.member, v, f"{path}[{i}]")
    elif t == "map":
        if not isinstance(value, dict):
            violations.append(f"{path}: {type(value).__name__}, not a map")
            return
        for k, v in value.items():
            check(shape.value, v, f"{path}[{k!r}]")
    elif t == "string":
        if not isinstance(value, str):
            violations.append(f"{path}: {value!r} is not a string")
        elif shape.enum and value not in shape.enum:
            violations.append(f"{path}: {value!r} not in {shape.name}'s values {shape.enum}")
    elif t in ("integer", "long"):
        if not isinstance(value, int) or isinstance(value, bool):
            violations.append(f"{path}: {value!r} is not an integer")
    elif t in ("double", "float"):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            violations.append(f"{path}: {value!r} is not a number")
    elif t == "boolean":
        if not isinstance(value, bool):
            violations.append(f"{path}: {value!r} is not a boolean")
    elif t == "timestamp":
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            violations.append(f"{path}: {value!r} is not an epoch timestamp")
    elif t == "blob":
        if not isinstance(value, str):
            violations.append(f"{path}: {value!r} is not base64 text")


def local(tag):
    """An XML element's name without its namespace."""
    return tag.rsplit("}", 1)[-1]


def check_xml(shape, element, path):
    """`check` for the query protocol: `element` holds the members of `shape`."""
    t = shape.type_name
    text = (element.text or "").strip()
    if t == "structure":
        seen = set()
        for child in element:
            name = local(child.tag)
            seen.add(name)
            member = shape.members.get(name)
            if member is None:
                violations.append(f"{path}.{name}: not a member of {shape.name}")
            else:
                check_xml(member, child, f"{path}.{name}")
        for r in shape.required_members:
            if r not in seen:
                violations.append(f"{path}: required member {r} of {shape.name} missing")
    elif t == "list":
        for i, child in enumerate(element):
            if local(child.tag) != "member":
                violations.append(f"{path}[{i}]: <{local(child.tag)}>, not <member>")
            check_xml(shape.member, child, f"{path}[{i}]")
    elif t == "string":
        if shape.enum and text not in shape.enum:
            violations.append(f"{path}: {text!r} not in {shape.name}'s values {shape.enum}")
    elif t in ("integer", "long"):
        try:
            int(text)
        except ValueError:
            violations.append(f"{path}: {text!r} is not an integer")
    elif t == "boolean":
        if text not in ("true", "false"):
            violations.append(f"{path}: {text!r} is not a boolean")
    elif t == "timestamp":
        if "T" not in text or not text.endswith("Z"):
            violations.append(f"{path}: {text!r} is not an ISO 8601 timestamp")


def watch(client):
    """Checks each successful raw response of `client` against its operation's shape."""

    def after_call(http_response, model, **_):
        checked.add(f"{client.meta.service_model.service_name}.{model.name}")
        if http_response.status_code >= 300 or model.output_shape is None:
            return
        body = http_response.content or b"{}"
        if client.meta.service_model.protocol == "query":
            try:
                root = ET.fromstring(body)
            except ET.ParseError:
                violations.append(f"{model.name}: the response is not XML: {body[:200]!r}")
                return
            result = root.find(f"{{*}}{model.name}Result")
            if local(root.tag) != f"{model.name}Response" or result is None:
                violations.append(f"{model.name}: no <{model.name}Response><{model.name}Result>: {body[:200]!r}")
                return
            check_xml(model.output_shape, result, model.name)
            return
        try:
            raw = json.loads(body)
        except ValueError:
            violations.append(f"{model.name}: the response is not JSON: {body[:200]!r}")
            return
        check(model.output_shape, raw, model.name)

    client.meta.events.register("after-call.*.*", after_call)
    return client


ecs = watch(boto3.client("ecs"))
sm = watch(boto3.client("secretsmanager"))
ssm = watch(boto3.client("ssm"))
logs = watch(boto3.client("logs"))
image = os.environ["BERTH_DEMO_IMAGE"]

# Clusters, settings, capacity providers, attributes, tags.
ecs.create_cluster(clusterName="conf", tags=[{"key": "team", "value": "a"}],
                   settings=[{"name": "containerInsights", "value": "disabled"}])
ecs.describe_clusters(clusters=["conf", "default", "missing"],
                      include=["ATTACHMENTS", "SETTINGS", "STATISTICS", "TAGS", "CONFIGURATIONS"])
ecs.list_clusters()
ecs.update_cluster_settings(cluster="conf", settings=[{"name": "containerInsights", "value": "enabled"}])
ecs.update_cluster(cluster="conf", configuration={"executeCommandConfiguration": {"logging": "DEFAULT"}})
ecs.put_account_setting(name="containerInstanceLongArnFormat", value="enabled")
ecs.list_account_settings(effectiveSettings=True)
ecs.list_container_instances()
instances = ecs.list_container_instances(cluster="default")["containerInstanceArns"]
ecs.describe_container_instances(cluster="default", containerInstances=instances, include=["TAGS"])
ecs.put_attributes(cluster="default", attributes=[{"name": "rack", "value": "r1", "targetId": instances[0]}])
ecs.list_attributes(cluster="default", targetType="container-instance")
ecs.describe_capacity_providers()

# Task definitions: one with most fields.
td = ecs.register_task_definition(
    family="conf-web", networkMode="awsvpc", cpu="256", memory="512",
    requiresCompatibilities=["FARGATE", "EC2"], tags=[{"key": "k", "value": "v"}],
    volumes=[{"name": "scratch"}],
    containerDefinitions=[{
        "name": "web", "image": image, "essential": True, "memory": 64, "cpu": 128,
        "portMappings": [{"containerPort": 80, "protocol": "tcp", "name": "http"}],
        "environment": [{"name": "A", "value": "1"}],
        "healthCheck": {"command": ["CMD-SHELL", "true"], "interval": 5, "timeout": 2, "retries": 2},
        "stopTimeout": 2, "dockerLabels": {"l": "v"}, "ulimits": [{"name": "nofile", "softLimit": 1024, "hardLimit": 2048}],
        "mountPoints": [{"sourceVolume": "scratch", "containerPath": "/scratch"}],
        "linuxParameters": {"initProcessEnabled": True},
    }],
)["taskDefinition"]
ecs.describe_task_definition(taskDefinition="conf-web", include=["TAGS"])
ecs.list_task_definitions(familyPrefix="conf-web")
ecs.list_task_definition_families()

# Tasks.
run = ecs.run_task(cluster="default", taskDefinition="conf-web", count=1, enableExecuteCommand=True,
                   tags=[{"key": "t", "value": "1"}], startedBy="conformance")
task = run["tasks"][0]["taskArn"]
# botocore's own waiter polls DescribeTasks (each call checked too) until the task runs.
ecs.get_waiter("tasks_running").wait(cluster="default", tasks=[task], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
ecs.describe_tasks(cluster="default", tasks=[task], include=["TAGS"])
ecs.list_tasks(cluster="default")
ecs.update_task_protection(cluster="default", tasks=[task], protectionEnabled=True, expiresInMinutes=5)
ecs.get_task_protection(cluster="default", tasks=[task])
ecs.update_task_protection(cluster="default", tasks=[task], protectionEnabled=False)
ecs.tag_resource(resourceArn=task, tags=[{"key": "x", "value": "y"}])
ecs.list_tags_for_resource(resourceArn=task)
ecs.untag_resource(resourceArn=task, tagKeys=["x"])
ecs.execute_command(cluster="default", task=task, container="web", command="true", interactive=True)
ecs.stop_task(cluster="default", task=task, reason="conformance")

# Services and their deployments.
svc = ecs.create_service(cluster="default", serviceName="conf-svc", taskDefinition="conf-web", desiredCount=1,
                         deploymentConfiguration={"deploymentCircuitBreaker": {"enable": True, "rollback": True},
                                                  "maximumPercent": 200, "minimumHealthyPercent": 50},
                         tags=[{"key": "s", "value": "1"}], enableExecuteCommand=True)["service"]
ecs.describe_services(cluster="default", services=["conf-svc", "missing"], include=["TAGS"])
ecs.list_services(cluster="default")
ecs.update_service(cluster="default", service="conf-svc", desiredCount=0)
deployments = ecs.list_service_deployments(cluster="default", service="conf-svc")
arns = [d["serviceDeploymentArn"] for d in deployments["serviceDeployments"]]
if arns:
    ecs.describe_service_deployments(serviceDeploymentArns=arns)
ecs.describe_service_revisions(serviceRevisionArns=[svc["deployments"][0].get("serviceRevisionArn", svc["serviceArn"])])
ecs.delete_service(cluster="default", service="conf-svc", force=True)

# Task sets, for a service an external controller drives; and a DAEMON service.
ecs.create_service(cluster="default", serviceName="conf-ext", desiredCount=1,
                   deploymentController={"type": "EXTERNAL"})
ts = ecs.create_task_set(cluster="default", service="conf-ext", taskDefinition="conf-web", externalId="e1",
                         scale={"value": 50.0, "unit": "PERCENT"}, tags=[{"key": "t", "value": "1"}])["taskSet"]
ecs.describe_task_sets(cluster="default", service="conf-ext", taskSets=[ts["id"], "ecs-svc/1"], include=["TAGS"])
ecs.update_task_set(cluster="default", service="conf-ext", taskSet=ts["id"], scale={"value": 0.0, "unit": "PERCENT"})
ecs.update_service_primary_task_set(cluster="default", service="conf-ext", primaryTaskSet=ts["id"])
ecs.describe_services(cluster="default", services=["conf-ext"])
ecs.delete_task_set(cluster="default", service="conf-ext", taskSet=ts["id"], force=True)
ecs.delete_service(cluster="default", service="conf-ext", force=True)
ecs.create_service(cluster="default", serviceName="conf-daemon", taskDefinition="conf-web", schedulingStrategy="DAEMON")
ecs.list_services(cluster="default", schedulingStrategy="DAEMON")
ecs.delete_service(cluster="default", service="conf-daemon")
ecs.deregister_task_definition(taskDefinition=td["taskDefinitionArn"])
ecs.describe_task_definition(taskDefinition=td["taskDefinitionArn"])
ecs.delete_task_definitions(taskDefinitions=[td["taskDefinitionArn"]])

# Secrets Manager and SSM.
sm.create_secret(Name="conf/db", SecretString='{"p":"x"}', Description="d")
sm.get_secret_value(SecretId="conf/db")
sm.put_secret_value(SecretId="conf/db", SecretString='{"p":"y"}')
sm.describe_secret(SecretId="conf/db")
sm.list_secrets()
sm.delete_secret(SecretId="conf/db", ForceDeleteWithoutRecovery=True)
ssm.put_parameter(Name="/conf/a", Value="1", Type="String", Description="d")
ssm.put_parameter(Name="/conf/s", Value="2", Type="SecureString")
ssm.get_parameter(Name="/conf/s", WithDecryption=True)
ssm.get_parameters(Names=["/conf/a", "/nope"])
ssm.get_parameters_by_path(Path="/conf", Recursive=True)
ssm.describe_parameters(ParameterFilters=[{"Key": "Path", "Option": "Recursive", "Values": ["/conf"]}])
ssm.get_parameter_history(Name="/conf/a")
ssm.delete_parameters(Names=["/conf/a", "/conf/s"])

# CloudWatch Logs.
logs.create_log_group(logGroupName="/conf/app", tags={"a": "b"})
logs.put_retention_policy(logGroupName="/conf/app", retentionInDays=7)
logs.create_log_stream(logGroupName="/conf/app", logStreamName="s1")
now = int(time.time() * 1000)
logs.put_log_events(logGroupName="/conf/app", logStreamName="s1",
                    logEvents=[{"timestamp": now, "message": "hello"}, {"timestamp": now + 1, "message": '{"level":"error"}'}])
logs.describe_log_groups(logGroupNamePrefix="/conf")
logs.describe_log_streams(logGroupName="/conf/app")
logs.get_log_events(logGroupName="/conf/app", logStreamName="s1", startFromHead=True)
logs.filter_log_events(logGroupName="/conf/app", filterPattern="hello")
q = logs.start_query(logGroupName="/conf/app", startTime=now // 1000 - 60, endTime=now // 1000 + 60,
                     queryString="fields @timestamp, @message | limit 5")
# Its shape is checked in whatever state the query is (the logs tests check its rows).
logs.get_query_results(queryId=q["queryId"])
logs.describe_queries(logGroupName="/conf/app")
logs.list_tags_for_resource(resourceArn=logs.describe_log_groups(logGroupNamePrefix="/conf")["logGroups"][0]["arn"].rstrip("*").rstrip(":"))
logs.delete_log_group(logGroupName="/conf/app")

# ACM and ELBv2: an imported certificate, a load balancer with an HTTPS listener, a rule.
acm = watch(boto3.client("acm"))
elb = watch(boto3.client("elbv2"))
with tempfile.TemporaryDirectory() as d:
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", f"{d}/key.pem", "-out", f"{d}/cert.pem", "-days", "2",
                    "-subj", "/CN=conf.example.test"], check=True, capture_output=True)
    pem = lambda name: open(f"{d}/{name}", "rb").read()
    cert = acm.import_certificate(Certificate=pem("cert.pem"), PrivateKey=pem("key.pem"))["CertificateArn"]
acm.describe_certificate(CertificateArn=cert)
acm.list_certificates()
acm.get_certificate(CertificateArn=cert)
tg = elb.create_target_group(Name="conf-tg", Protocol="HTTP", Port=80, VpcId="vpc-1", TargetType="ip",
                             HealthCheckPath="/health", Matcher={"HttpCode": "200-299"},
                             Tags=[{"Key": "k", "Value": "v"}])["TargetGroups"][0]["TargetGroupArn"]
lb = elb.create_load_balancer(Name="conf-lb", Subnets=["subnet-a"], SecurityGroups=["sg-1"],
                              Scheme="internal")["LoadBalancers"][0]["LoadBalancerArn"]
listener = elb.create_listener(LoadBalancerArn=lb, Protocol="HTTPS", Port=int(os.environ.get("CONF_LB_PORT", "18443")),
                               Certificates=[{"CertificateArn": cert}], SslPolicy="ELBSecurityPolicy-TLS13-1-2-2021-06",
                               DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])["Listeners"][0]["ListenerArn"]
rule = elb.create_rule(ListenerArn=listener, Priority=10,
                       Conditions=[{"Field": "path-pattern", "Values": ["/api/*"]},
                                   {"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "X-Env", "Values": ["a*"]}}],
                       Actions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404", "MessageBody": "no"}}])["Rules"][0]["RuleArn"]
elb.modify_rule(RuleArn=rule, Actions=[{"Type": "redirect", "RedirectConfig": {"Protocol": "HTTPS", "StatusCode": "HTTP_302"}}])
elb.set_rule_priorities(RulePriorities=[{"RuleArn": rule, "Priority": 20}])
elb.describe_rules(ListenerArn=listener)
elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": "10.9.9.9", "Port": 8080}])
elb.describe_target_health(TargetGroupArn=tg)
elb.modify_target_group(TargetGroupArn=tg, HealthCheckIntervalSeconds=10)
elb.modify_target_group_attributes(TargetGroupArn=tg, Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "5"}])
elb.describe_target_group_attributes(TargetGroupArn=tg)
elb.describe_load_balancers(Names=["conf-lb"])
elb.describe_load_balancer_attributes(LoadBalancerArn=lb)
elb.describe_target_groups(LoadBalancerArn=lb)
elb.describe_listeners(LoadBalancerArn=lb)
elb.modify_listener(ListenerArn=listener, DefaultActions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": tg, "Weight": 10}]}}])
elb.add_tags(ResourceArns=[lb, tg], Tags=[{"Key": "team", "Value": "web"}])
elb.describe_tags(ResourceArns=[lb, tg, listener, rule])
elb.remove_tags(ResourceArns=[lb], TagKeys=["team"])
elb.deregister_targets(TargetGroupArn=tg, Targets=[{"Id": "10.9.9.9", "Port": 8080}])
elb.delete_rule(RuleArn=rule)
elb.delete_listener(ListenerArn=listener)
elb.delete_load_balancer(LoadBalancerArn=lb)
elb.delete_target_group(TargetGroupArn=tg)
acm.delete_certificate(CertificateArn=cert)

print(json.dumps({"checked": sorted(checked), "violations": violations}))
sys.exit(1 if violations else 0)
