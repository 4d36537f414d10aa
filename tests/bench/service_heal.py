#!/usr/bin/env python3
"""Service benchmarks through the real API (boto3, in-process, DescribeServices
polled every 20 ms). Driven by tests/examples/bench_services.rs, which runs
the daemons and restarts agents between rounds.

usage: service_heal.py setup IMAGE COUNT     create service "bench" of COUNT
       service_heal.py roll IMAGE COUNT      UpdateService to a new revision:
                                             ms until steady
       service_heal.py lose PID SIGNAL COUNT kill/stop the agent PID: ms until
                                             COUNT tasks run on other instances
(reads aws.env variables from the environment)
"""
import os
import signal
import sys
import time
import uuid

import boto3

ecs = boto3.client("ecs")
SERVE = "trap 'exit 0' TERM; while true; do sleep 0.2; done"


def register(image):
    """A new revision (a fresh env value) with a health check at ECS's
    shortest interval, 5 s: the first check runs one interval after start."""
    td = ecs.register_task_definition(
        family="bench-svc",
        containerDefinitions=[{
            "name": "app", "image": image, "memory": 16, "essential": True,
            "stopTimeout": 2, "entryPoint": ["/bin/sh", "-c"], "command": [SERVE],
            "environment": [{"name": "REV", "value": uuid.uuid4().hex}],
            "healthCheck": {"command": ["CMD-SHELL", "true"], "interval": 5,
                            "timeout": 2, "retries": 1},
        }],
    )
    return td["taskDefinition"]["taskDefinitionArn"]


def steady(count, deadline_s=120):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        s = ecs.describe_services(services=["bench"])["services"][0]
        ds = s["deployments"]
        if (len(ds) == 1 and ds[0]["rolloutState"] == "COMPLETED"
                and s["runningCount"] == count and s["pendingCount"] == 0):
            return
        time.sleep(0.02)
    raise SystemExit("timed out waiting for a steady state")


def setup(image, count):
    ecs.create_service(serviceName="bench", taskDefinition=register(image),
                       desiredCount=count)
    steady(count)


def roll(image, count):
    td = register(image)
    t0 = time.monotonic()
    ecs.update_service(service="bench", taskDefinition=td)
    steady(count)
    print(f"{(time.monotonic() - t0) * 1000:.0f}")


def running_elsewhere(instance):
    arns = ecs.list_tasks(serviceName="bench")["taskArns"]
    if not arns:
        return 0
    tasks = ecs.describe_tasks(tasks=arns)["tasks"]
    return sum(1 for t in tasks if t["lastStatus"] == "RUNNING"
               and t["containerInstanceArn"] != instance)


def lose(pid, sig, count, instance, deadline_s=60):
    os.kill(pid, getattr(signal, sig))
    t0 = time.monotonic()
    end = t0 + deadline_s
    while time.monotonic() < end:
        if running_elsewhere(instance) >= count:
            print(f"{(time.monotonic() - t0) * 1000:.0f}")
            return
        time.sleep(0.02)
    raise SystemExit("timed out waiting for the tasks to come back")


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "setup":
        setup(sys.argv[2], int(sys.argv[3]))
    elif cmd == "roll":
        roll(sys.argv[2], int(sys.argv[3]))
    elif cmd == "lose":
        lose(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5])
    else:
        raise SystemExit(__doc__)
