#!/usr/bin/env python3
"""RunTask-to-RUNNING latency through the real API (boto3, in-process so the
aws CLI's start-up time is not measured). Each round runs one single-container
awsvpc task of a cached image, polls DescribeTasks every 10 ms until RUNNING,
then stops it and waits for STOPPED before the next round.

usage: runtask_latency.py IMAGE [N]   (reads aws.env variables from the environment)
"""
import statistics
import sys
import time

import boto3


def main():
    image, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 20
    ecs = boto3.client("ecs")
    ecs.register_task_definition(
        family="bench-latency",
        networkMode="awsvpc",
        containerDefinitions=[{
            "name": "main", "image": image, "memory": 32, "essential": True,
            "entryPoint": ["/bin/sh", "-c"],
            "command": ["trap 'exit 0' TERM; while true; do sleep 0.1; done"],
        }],
    )

    def wait(arn, status, deadline_s=60):
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            t = ecs.describe_tasks(tasks=[arn])["tasks"][0]
            if t["lastStatus"] == status:
                return t
            if t["lastStatus"] == "STOPPED":
                raise SystemExit(f"task stopped: {t.get('stoppedReason')}")
            time.sleep(0.01)
        raise SystemExit(f"timed out waiting for {status}")

    # One warm-up round pulls the image, so every measured round is cached.
    arn = ecs.run_task(taskDefinition="bench-latency")["tasks"][0]["taskArn"]
    wait(arn, "RUNNING")
    ecs.stop_task(task=arn)
    wait(arn, "STOPPED")

    start_ms, stop_ms = [], []
    for _ in range(n):
        t0 = time.monotonic()
        arn = ecs.run_task(taskDefinition="bench-latency")["tasks"][0]["taskArn"]
        wait(arn, "RUNNING")
        start_ms.append((time.monotonic() - t0) * 1000)
        t0 = time.monotonic()
        ecs.stop_task(task=arn)
        wait(arn, "STOPPED")
        stop_ms.append((time.monotonic() - t0) * 1000)
    fmt = lambda xs: f"median_ms={statistics.median(xs):.0f} min_ms={min(xs):.0f} max_ms={max(xs):.0f} n={len(xs)}"
    print(f"berth run-task->RUNNING {fmt(start_ms)}")
    print(f"berth stop-task->STOPPED {fmt(stop_ms)}")


if __name__ == "__main__":
    main()
