#!/usr/bin/env python3
"""Capacity providers, cluster capacity, RunTask strategies and tags, driven
with boto3 (the real client) against a running Berth.

usage: capacity_boto3.py    (env: AWS_ENDPOINT_URL, keys, region from aws.env;
                             BERTH_DEMO_IMAGE; BERTH_FARGATE_INSTANCE, the ARN
                             of the harness agent's instance, in the FARGATE pool)
Every check is an assert; on success prints {"checked": [...operations...]}.
"""
import json
import os
import time

import boto3
from botocore.exceptions import ClientError

ecs = boto3.client("ecs")
checked = set()
ASG = {
    "autoScalingGroupArn": "arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:1:autoScalingGroupName/pool",
    "managedScaling": {"status": "DISABLED"},
    "managedTerminationProtection": "DISABLED",
}


def call(op, **kw):
    checked.add(op)
    return getattr(ecs, op)(**kw)


def fails(code, needle, op, **kw):
    """Calls op, which must fail with `code`; the message must mention `needle`."""
    try:
        out = call(op, **kw)
    except ClientError as e:
        err = e.response["Error"]
        assert err["Code"] == code, f"{op}: expected {code}, got {err}"
        assert needle in err["Message"], f"{op}: {needle!r} not in {err['Message']!r}"
        return err["Message"]
    raise AssertionError(f"{op}({kw}) succeeded: {out}")


def describe_all(**kw):
    """Every page of DescribeCapacityProviders."""
    items, token, pages = [], None, 0
    while True:
        args = dict(kw)
        if token:
            args["nextToken"] = token
        out = call("describe_capacity_providers", **args)
        items += out["capacityProviders"]
        pages += 1
        token = out.get("nextToken")
        if not token:
            return items, pages


def wait_task(cluster, arn, status, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        t = ecs.describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0]
        if t["lastStatus"] == status:
            return t
        time.sleep(0.2)
    raise AssertionError(f"task {arn} not {status} after {timeout}s: {t}")


def capacity_providers():
    names = [p["name"] for p in call("describe_capacity_providers")["capacityProviders"]]
    assert names[:2] == ["FARGATE", "FARGATE_SPOT"], names
    builtin = ecs.describe_capacity_providers(capacityProviders=["FARGATE"])["capacityProviders"][0]
    assert builtin["type"] == "FARGATE" and builtin["status"] == "ACTIVE", builtin

    created = call("create_capacity_provider", name="pool-a", autoScalingGroupProvider=ASG,
                   tags=[{"key": "team", "value": "blue"}])["capacityProvider"]
    assert created["status"] == "ACTIVE" and created["type"] == "EC2_AUTOSCALING", created
    assert created["capacityProviderArn"].endswith(":capacity-provider/pool-a"), created
    assert created["autoScalingGroupProvider"]["autoScalingGroupArn"] == ASG["autoScalingGroupArn"]
    for name in ["pool-b", "pool-c", "pool-d"]:
        ecs.create_capacity_provider(name=name, autoScalingGroupProvider=ASG)
    fails("ClientException", "already exists", "create_capacity_provider",
          name="pool-a", autoScalingGroupProvider=ASG)
    fails("InvalidParameterException", "fargate", "create_capacity_provider",
          name="fargate-x", autoScalingGroupProvider=ASG)
    fails("InvalidParameterException", "autoScalingGroupProvider", "create_capacity_provider",
          name="no-asg")

    # Pagination: 6 providers, 4 pages of at most 2 (the last one empty of token).
    items, pages = describe_all(maxResults=2, include=["TAGS"])
    assert [p["name"] for p in items] == ["FARGATE", "FARGATE_SPOT", "pool-a", "pool-b", "pool-c", "pool-d"], items
    assert pages == 3, pages
    assert items[2]["tags"] == [{"key": "team", "value": "blue"}], items[2]
    assert "tags" not in ecs.describe_capacity_providers(capacityProviders=["pool-a"])["capacityProviders"][0]
    fails("InvalidParameterException", "maxResults", "describe_capacity_providers", maxResults=11)
    fails("InvalidParameterException", "nextToken", "describe_capacity_providers", nextToken="zz")
    out = ecs.describe_capacity_providers(capacityProviders=[created["capacityProviderArn"], "ghost"])
    assert [p["name"] for p in out["capacityProviders"]] == ["pool-a"], out
    assert out["failures"][0]["reason"] == "MISSING" and out["failures"][0]["arn"].endswith("/ghost"), out

    upd = call("update_capacity_provider", name="pool-a",
               autoScalingGroupProvider={"managedTerminationProtection": "ENABLED"})["capacityProvider"]
    assert upd["autoScalingGroupProvider"]["managedTerminationProtection"] == "ENABLED", upd
    assert upd["updateStatus"] == "UPDATE_COMPLETE", upd
    fails("ClientException", "reserved", "update_capacity_provider", name="FARGATE",
          autoScalingGroupProvider={"managedTerminationProtection": "ENABLED"})
    fails("ClientException", "does not exist", "update_capacity_provider", name="ghost",
          autoScalingGroupProvider={"managedTerminationProtection": "ENABLED"})

    gone = call("delete_capacity_provider", capacityProvider="pool-d")["capacityProvider"]
    assert gone["status"] == "INACTIVE", gone
    again = ecs.describe_capacity_providers(capacityProviders=["pool-d"])["capacityProviders"][0]
    assert again["status"] == "INACTIVE", again
    assert "pool-d" not in [p["name"] for p in describe_all()[0]]
    fails("ClientException", "reserved", "delete_capacity_provider", capacityProvider="FARGATE_SPOT")
    fails("ClientException", "does not exist", "delete_capacity_provider", capacityProvider="pool-d")


def cluster_capacity():
    c = call("create_cluster", clusterName="cap", capacityProviders=["FARGATE", "pool-a"],
             defaultCapacityProviderStrategy=[{"capacityProvider": "pool-a", "weight": 1, "base": 1}])["cluster"]
    assert c["capacityProviders"] == ["FARGATE", "pool-a"], c
    assert c["defaultCapacityProviderStrategy"] == [{"capacityProvider": "pool-a", "weight": 1, "base": 1}], c
    d = call("describe_clusters", clusters=["cap"])["clusters"][0]
    assert d["capacityProviders"] == ["FARGATE", "pool-a"], d
    in_cap = [p["name"] for p in ecs.describe_capacity_providers(cluster="cap")["capacityProviders"]]
    assert in_cap == ["FARGATE", "pool-a"], in_cap
    fails("InvalidParameterException", "not associated", "create_cluster", clusterName="bad",
          capacityProviders=["FARGATE"],
          defaultCapacityProviderStrategy=[{"capacityProvider": "FARGATE_SPOT", "weight": 1}])

    out = call("put_cluster_capacity_providers", cluster="cap",
               capacityProviders=["FARGATE", "FARGATE_SPOT", "pool-a"],
               defaultCapacityProviderStrategy=[{"capacityProvider": "pool-a", "weight": 1}])["cluster"]
    assert out["capacityProviders"] == ["FARGATE", "FARGATE_SPOT", "pool-a"], out
    fails("InvalidParameterException", "not associated", "put_cluster_capacity_providers",
          cluster="cap", capacityProviders=["FARGATE"],
          defaultCapacityProviderStrategy=[{"capacityProvider": "pool-b", "weight": 1}])
    fails("InvalidParameterException", "does not exist", "put_cluster_capacity_providers",
          cluster="cap", capacityProviders=["ghost"], defaultCapacityProviderStrategy=[])
    fails("ClusterNotFoundException", "ghost", "put_cluster_capacity_providers",
          cluster="ghost", capacityProviders=[], defaultCapacityProviderStrategy=[])
    ecs.create_cluster(clusterName="cap2")
    fails("InvalidParameterException", "already associated", "put_cluster_capacity_providers",
          cluster="cap2", capacityProviders=["pool-a"], defaultCapacityProviderStrategy=[])
    fails("ClientException", "'cap'", "delete_capacity_provider", capacityProvider="pool-a")


def run_task_with_strategies(image):
    ecs.register_task_definition(
        family="cap-web", networkMode="awsvpc", cpu="256", memory="512",
        requiresCompatibilities=["FARGATE"],
        containerDefinitions=[{"name": "main", "image": image, "essential": True,
                               "entryPoint": ["/bin/sh", "-c"],
                               "command": ["trap 'exit 0' TERM; while true; do sleep 0.2; done"]}])
    fails("InvalidParameterException", "launch type and capacity provider strategy", "run_task",
          cluster="cap", taskDefinition="cap-web", launchType="FARGATE",
          capacityProviderStrategy=[{"capacityProvider": "FARGATE", "weight": 1}])
    fails("InvalidParameterException", "not associated", "run_task",
          cluster="cap2", taskDefinition="cap-web",
          capacityProviderStrategy=[{"capacityProvider": "FARGATE", "weight": 1}])
    fails("InvalidParameterException", "base", "run_task",
          cluster="cap", taskDefinition="cap-web",
          capacityProviderStrategy=[{"capacityProvider": "FARGATE", "weight": 1, "base": 1},
                                    {"capacityProvider": "FARGATE_SPOT", "weight": 1, "base": 1}])
    # Neither strategy nor launch type: the default strategy (pool-a), which
    # has no hosts: a failure, not a task on the FARGATE host.
    out = ecs.run_task(cluster="cap", taskDefinition="cap-web")
    assert out["tasks"] == [] and out["failures"][0]["reason"] == "RESOURCE", out
    assert "pool-a" in out["failures"][0]["detail"], out

    # FARGATE pool hosts serve every cluster: the harness agent (cluster default) runs it.
    out = ecs.run_task(cluster="cap", taskDefinition="cap-web", tags=[{"key": "k", "value": "v"}],
                       capacityProviderStrategy=[{"capacityProvider": "FARGATE", "weight": 1}])
    assert out["failures"] == [], out
    task = out["tasks"][0]
    assert task["capacityProviderName"] == "FARGATE" and task["launchType"] == "FARGATE", task
    assert task["containerInstanceArn"] == os.environ["BERTH_FARGATE_INSTANCE"], task
    wait_task("cap", task["taskArn"], "RUNNING")
    d = ecs.describe_tasks(cluster="cap", tasks=[task["taskArn"]], include=["TAGS"])["tasks"][0]
    assert d["capacityProviderName"] == "FARGATE" and d["tags"] == [{"key": "k", "value": "v"}], d
    fails("ResourceInUseException", "FARGATE", "put_cluster_capacity_providers",
          cluster="cap", capacityProviders=["pool-a"], defaultCapacityProviderStrategy=[])
    return task["taskArn"]


def tags(task_arn):
    instance = os.environ["BERTH_FARGATE_INSTANCE"]
    svc = ecs.create_service(cluster="default", serviceName="cap-svc", taskDefinition="cap-web",
                             desiredCount=0)["service"]["serviceArn"]
    td = ecs.describe_task_definition(taskDefinition="cap-web")["taskDefinition"]["taskDefinitionArn"]
    pool = ecs.describe_capacity_providers(capacityProviders=["pool-b"])["capacityProviders"][0]["capacityProviderArn"]
    cluster = ecs.describe_clusters(clusters=["cap"])["clusters"][0]["clusterArn"]
    for arn in [cluster, td, task_arn, svc, instance, pool]:
        call("tag_resource", resourceArn=arn, tags=[{"key": "a", "value": "1"}, {"key": "b", "value": "2"}])
        ecs.tag_resource(resourceArn=arn, tags=[{"key": "a", "value": "3"}])
        call("untag_resource", resourceArn=arn, tagKeys=["b"])
        got = call("list_tags_for_resource", resourceArn=arn)["tags"]
        want = [{"key": "a", "value": "3"}]
        if arn == task_arn:
            want = [{"key": "k", "value": "v"}] + want
        assert got == want, (arn, got)
    ci = ecs.describe_container_instances(containerInstances=[instance], include=["TAGS"])["containerInstances"][0]
    assert ci["tags"] == [{"key": "a", "value": "3"}] and ci["capacityProviderName"] == "FARGATE", ci
    p = ecs.describe_capacity_providers(capacityProviders=["pool-b"], include=["TAGS"])["capacityProviders"][0]
    assert p["tags"] == [{"key": "a", "value": "3"}], p
    prefix = cluster.rsplit(":", 1)[0]
    fails("ResourceNotFoundException", "0000", "tag_resource", resourceArn=f"{prefix}:task/cap/0000",
          tags=[{"key": "a", "value": "1"}])
    fails("ResourceNotFoundException", "ghost", "untag_resource", resourceArn=f"{prefix}:capacity-provider/ghost",
          tagKeys=["a"])
    fails("ResourceNotFoundException", "nope:9", "list_tags_for_resource", resourceArn=f"{prefix}:task-definition/nope:9")
    fails("ClusterNotFoundException", "ghost", "list_tags_for_resource", resourceArn=f"{prefix}:cluster/ghost")
    fails("InvalidParameterException", "not valid", "list_tags_for_resource", resourceArn="arn:aws:s3:::bucket")
    fails("InvalidParameterException", "long ARN", "tag_resource", resourceArn=f"{prefix}:service/cap-svc",
          tags=[{"key": "a", "value": "1"}])
    fails("InvalidParameterException", "reserved", "tag_resource", resourceArn=cluster,
          tags=[{"key": "aws:x", "value": "1"}])
    ecs.delete_service(cluster="default", service="cap-svc")


def main():
    capacity_providers()
    cluster_capacity()
    task_arn = run_task_with_strategies(os.environ["BERTH_DEMO_IMAGE"])
    tags(task_arn)
    ecs.stop_task(cluster="cap", task=task_arn, reason="done")
    wait_task("cap", task_arn, "STOPPED")
    # Stopped: FARGATE may leave the cluster, then pool-a may go.
    call("put_cluster_capacity_providers", cluster="cap", capacityProviders=[],
         defaultCapacityProviderStrategy=[])
    assert ecs.delete_capacity_provider(capacityProvider="pool-a")["capacityProvider"]["status"] == "INACTIVE"
    print(json.dumps({"checked": sorted(checked)}))


if __name__ == "__main__":
    main()
