#!/usr/bin/env python3
"""awslogs throughput through the real agent and control plane.

One task's container writes N identical lines of 99 bytes (then "finished") as fast
as busybox can. The script polls DescribeLogStreams until the stream's storedBytes
says every line is stored (each event counts its message plus 26 bytes, so the
count is exact), and reports MB/s and lines/s from the first line's timestamp to
that moment, the lines lost (must be 0), and the daemons' peak RSS.

usage: logs_throughput.py IMAGE N RUN_DIR   (reads aws.env variables from the environment)
"""
import sys
import time

import boto3

LINE = "x" * 99


def peak_rss_mib(pid_file):
    pid = open(pid_file).read().strip()
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main():
    image, n, run_dir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    ecs, logs = boto3.client("ecs"), boto3.client("logs")
    group = f"/bench/throughput-{int(time.time())}"
    ecs.register_task_definition(
        family="bench-logs",
        containerDefinitions=[{
            "name": "writer", "image": image, "memory": 64, "essential": True,
            "entryPoint": ["/bin/sh", "-c"],
            "command": [f"yes {LINE} | head -n {n}; echo finished"],
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": group, "awslogs-stream-prefix": "bench",
                "awslogs-create-group": "true", "awslogs-region": "us-east-1"}},
        }],
    )
    task = ecs.run_task(taskDefinition="bench-logs")["tasks"][0]
    stream = f"bench/writer/{task['taskArn'].rsplit('/', 1)[1]}"
    want = n * (len(LINE) + 26) + len("finished") + 26
    deadline = time.monotonic() + 600
    stored = 0
    while time.monotonic() < deadline:
        try:
            s = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=stream)["logStreams"]
        except logs.exceptions.ResourceNotFoundException:
            s = []
        stored = s[0].get("storedBytes", 0) if s else 0
        if stored >= want:
            break
        time.sleep(0.05)
    done_ms = time.time() * 1000
    first = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True, limit=1)["events"][0]
    last = logs.get_log_events(logGroupName=group, logStreamName=stream, limit=1)["events"][-1]
    secs = (done_ms - first["timestamp"]) / 1000
    mb = n * (len(LINE) + 1) / 1e6
    lost = (want - stored) // (len(LINE) + 26) if stored < want else 0
    print(f"awslogs: {n} lines ({mb:.0f} MB of stdout) stored in {secs:.2f} s from the first line: "
          f"{mb / secs:.1f} MB/s, {n / secs:,.0f} lines/s; lines lost: {lost}; "
          f"stored bytes {stored} of {want}; last event {last['message']!r}")
    wrote = (last["timestamp"] - first["timestamp"]) / 1000
    print(f"the container's own writing (first to last line through the log driver): {wrote:.2f} s, "
          f"{mb / max(wrote, 1e-3):.1f} MB/s")
    print(f"peak RSS: agent {peak_rss_mib(f'{run_dir}/agent.pid'):.1f} MiB, "
          f"control plane {peak_rss_mib(f'{run_dir}/controlplane.pid'):.1f} MiB")
    ecs.stop_task(task=task["taskArn"])
    if stored != want:
        sys.exit(f"not every line arrived exactly once: stored {stored} bytes, want {want}")


if __name__ == "__main__":
    main()
