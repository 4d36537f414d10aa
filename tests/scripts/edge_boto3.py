#!/usr/bin/env python3
"""The AWS edge as boto3 clients see it: ARNs in the region the client signed for, and a
protocol-correct error, naming the service, for each AWS service Berth does not serve.

usage: edge_boto3.py    (env: AWS_ENDPOINT_URL and keys from aws.env; the region is set here)
Every check is an assert; on success prints {"checked": [...], "arns": {...}}.
"""
import json

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

session = boto3.session.Session(region_name="eu-west-1")
config = Config(retries={"max_attempts": 1})
checked = []
arns = {}


def client(name):
    return session.client(name, config=config)


def fails(code, service, op, **kw):
    checked.append(f"{service}.{op}")
    try:
        out = getattr(client(service), op)(**kw)
    except ClientError as e:
        err = e.response["Error"]
        assert err["Code"] == code, f"{service}.{op}: expected {code}, got {err}"
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 400, e.response
        assert e.response["ResponseMetadata"].get("RequestId"), e.response
        return err["Message"]
    raise AssertionError(f"{service}.{op} succeeded: {out}")


ecs = client("ecs")
checked.append("ecs.create_cluster")
arns["cluster"] = ecs.create_cluster(clusterName="edge-eu")["cluster"]["clusterArn"]
checked.append("ecs.register_task_definition")
td = ecs.register_task_definition(
    family="edge-eu", containerDefinitions=[{"name": "main", "image": "busybox", "memory": 32}]
)
arns["task_definition"] = td["taskDefinition"]["taskDefinitionArn"]
sm = client("secretsmanager")
checked.append("secretsmanager.create_secret")
arns["secret"] = sm.create_secret(Name="edge/eu", SecretString="x")["ARN"]
sm.delete_secret(SecretId="edge/eu", ForceDeleteWithoutRecovery=True)

logs = client("logs")
checked.append("logs.create_log_group")
logs.create_log_group(logGroupName="/edge/eu")
arns["log_group"] = logs.describe_log_groups(logGroupNamePrefix="/edge/eu")["logGroups"][0]["logGroupArn"]

# Not served: each in its own protocol, each naming the service.
# Classic ELB signs as elasticloadbalancing too, at an API version Berth does not serve.
msg = fails("InvalidAction", "elb", "describe_load_balancers")  # query, XML errors
assert "'elasticloadbalancing' at API version 2015-12-01, not Version '2012-06-01'" in msg, msg
# JSON 1.0 in query-compatible mode: botocore reports the query code it reads from
# x-amzn-query-error.
msg = fails("InvalidAction", "cloudwatch", "list_metrics")
assert "'monitoring'" in msg, msg
msg = fails("UnknownOperationException", "ecr", "describe_repositories")  # JSON 1.1
assert "'ecr'" in msg, msg
msg = fails("UnknownOperationException", "application-autoscaling", "describe_scalable_targets",
            ServiceNamespace="ecs")
assert "'application-autoscaling'" in msg, msg
msg = fails("InvalidAction", "cloudformation", "list_stacks")  # query
assert "'cloudformation'" in msg, msg

print(json.dumps({"checked": checked, "arns": arns}))
