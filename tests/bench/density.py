#!/usr/bin/env python3
"""Task density on one host: runs awsvpc tasks of one small container in
batches of 10 until MAX run at once (or a batch fails), and reports the
agent's RSS at 0 and 100 tasks and at the maximum, beside the containerd
shims' count and memory, and the host's available memory.

usage: density.py AGENT_PID NAMESPACE IMAGE [MAX]   (aws.env in the environment)
"""
import os
import sys
import time

import boto3


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def shims(namespace):
    """containerd shims serving this agent's namespace: (count, total RSS KiB)."""
    n, kib = 0, 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().split(b"\0")
        except OSError:
            continue
        if cmd and b"containerd-shim" in cmd[0] and namespace.encode() in cmd:
            n += 1
            kib += rss_kib(pid)
    return n, kib


def mem_available_mib():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) // 1024
    return 0


def main():
    agent_pid, namespace, image = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    limit = int(sys.argv[4]) if len(sys.argv) > 4 else 300
    ecs = boto3.client("ecs")

    def running_arns():
        arns = []
        for page in ecs.get_paginator("list_tasks").paginate(desiredStatus="RUNNING"):
            arns += page["taskArns"]
        return arns

    def describe(arns):
        out = []
        for i in range(0, len(arns), 100):
            out += ecs.describe_tasks(tasks=arns[i:i + 100])["tasks"]
        return out

    def stop_all():
        arns = running_arns()
        for a in arns:
            ecs.stop_task(task=a, reason="density bench")
        end = time.monotonic() + 300
        while arns and time.monotonic() < end:
            if all(t["lastStatus"] == "STOPPED" for t in describe(arns)):
                return
            time.sleep(0.5)

    def sample(label, n):
        count, shim_kib = shims(namespace)
        row = (label, n, rss_kib(agent_pid) / 1024, count, shim_kib / 1024, mem_available_mib())
        print("  %-8s tasks %4d | agent RSS %6.1f MiB | shims %4d, %7.1f MiB | host MemAvailable %6d MiB" % row,
              flush=True)
        return row

    stop_all()
    ecs.register_task_definition(
        family="bench-density",
        networkMode="awsvpc",
        containerDefinitions=[{
            "name": "main", "image": image, "memory": 16, "essential": True, "stopTimeout": 2,
            "entryPoint": ["/bin/sh", "-c"],
            "command": ["trap 'exit 0' TERM; while true; do sleep 3600 & wait; done"],
        }],
    )
    print(f"density: awsvpc tasks of one busybox container, batches of 10, up to {limit}")
    sample("idle", 0)
    running, why, t0 = [], f"reached the bench's limit of {limit}", time.monotonic()
    while len(running) < limit:
        out = ecs.run_task(taskDefinition="bench-density", count=min(10, limit - len(running)))
        batch = [t["taskArn"] for t in out["tasks"]]
        if out["failures"]:
            why = f"placement refused: {out['failures'][0]}"
        end, state = time.monotonic() + 180, None
        while batch and time.monotonic() < end:
            state = describe(batch)
            if all(t["lastStatus"] in ("RUNNING", "STOPPED") for t in state):
                break
            time.sleep(0.2)
        stopped = [t for t in state or [] if t["lastStatus"] != "RUNNING"]
        running += [t["taskArn"] for t in state or [] if t["lastStatus"] == "RUNNING"]
        if stopped:
            why = f"a task did not run: {stopped[0].get('stoppedReason') or stopped[0]['lastStatus']}"
            break
        if out["failures"]:
            break
        if len(running) == 100:
            sample("at 100", 100)
    elapsed = time.monotonic() - t0
    sample("maximum", len(running))
    print(f"  {len(running)} tasks running after {elapsed:.0f} s; stopped because: {why}")
    # All still running? (a task that died after starting would show here)
    alive = sum(1 for t in describe(running) if t["lastStatus"] == "RUNNING")
    print(f"  still RUNNING at the end: {alive} of {len(running)}")
    stop_all()


if __name__ == "__main__":
    main()
