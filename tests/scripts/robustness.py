#!/usr/bin/env python3
"""Malformed and hostile input at the API over HTTP, each request signed by botocore's
SigV4 signer (so it gets past authentication to the decoders): a body over the 2 MiB
limit, JSON nested 100,000 deep in a member kept as free-form JSON, invalid UTF-8, a wrong content type, an unknown
target; then IDLE connections that never start their TLS handshake (slowloris) while
signed ListClusters calls go on, timed against the same calls without them, until the
server has dropped every one of them.

usage: robustness.py IDLE   (env: AWS_ENDPOINT_URL, keys and region from aws.env)
Prints a JSON summary: the status and error code of each case, and the p50/p99 of
the timed calls before, during and after the idle connections.
"""
import json
import os
import selectors
import socket
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ENDPOINT = os.environ["AWS_ENDPOINT_URL"]
CREDS = Credentials(os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"])
REGION = os.environ["AWS_DEFAULT_REGION"]
# AWS_CA_BUNDLE (from aws.env) verifies the API's certificate, as botocore does.
TLS = ssl.create_default_context(cafile=os.environ.get("AWS_CA_BUNDLE"))


def send(op, body, content_type="application/x-amz-json-1.1"):
    """One signed ECS request; (status, error code or None)."""
    headers = {"X-Amz-Target": f"AmazonEC2ContainerServiceV20141113.{op}", "Content-Type": content_type}
    req = AWSRequest(method="POST", url=ENDPOINT + "/", data=body, headers=headers)
    SigV4Auth(CREDS, "ecs", REGION).add_auth(req)
    prepared = req.prepare()
    http_req = urllib.request.Request(prepared.url, data=body, headers=dict(prepared.headers), method="POST")
    try:
        with urllib.request.urlopen(http_req, timeout=30, context=TLS) as resp:
            status, text = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read()
    try:
        code = json.loads(text).get("__type")
    except ValueError:
        code = None
    return status, code


def timed_calls(n):
    ms = []
    for _ in range(n):
        t0 = time.perf_counter()
        status, _ = send("ListClusters", b"{}")
        assert status == 200, status
        ms.append((time.perf_counter() - t0) * 1000)
    ms.sort()
    return {"p50_ms": round(ms[len(ms) // 2], 2), "p99_ms": round(ms[int(len(ms) * 0.99) - 1], 2), "n": n}


idle = int(sys.argv[1])
cases = {
    "oversized": send("ListClusters", b'{"x":"' + b"a" * (3 << 20) + b'"}'),
    # Into a member kept as free-form JSON (a cluster's configuration): parsed, not ignored.
    "deep_json": send("UpdateCluster", b'{"cluster":"default","configuration":' + b'{"x":' * 100_000 + b"1" + b"}" * 100_001),
    "invalid_utf8": send("CreateCluster", b'{"clusterName":"\xff\xfe"}'),
    "wrong_content_type": send("ListClusters", b"{}", content_type="text/plain"),
    "unknown_target": send("NoSuchOperation", b"{}"),
    "not_json": send("ListClusters", b"{not json"),
}

before = timed_calls(200)
host, port = urllib.parse.urlsplit(ENDPOINT).netloc.split(":")
tls = ENDPOINT.startswith("https://")
held = []
t0 = time.perf_counter()
for _ in range(idle):
    s = socket.create_connection((host, int(port)), timeout=10)
    # Half a request, and nothing more; against TLS, not even a ClientHello.
    if not tls:
        s.sendall(b"POST / HTTP/1.1\r\nHost: " + host.encode() + b"\r\nContent-Length: 100\r\n")
    held.append(s)
opened_s = time.perf_counter() - t0
during = timed_calls(200)


# The server bounds them: a connection that never handshakes is dropped. Each socket
# turns readable when the server closes it (EOF, or a reset); wait for those events.
watch = selectors.DefaultSelector()
for s in held:
    s.setblocking(False)
    watch.register(s, selectors.EVENT_READ)
deadline = time.time() + 60
closed = 0
while closed < len(held) and time.time() < deadline:
    for key, _ in watch.select(timeout=max(0.0, deadline - time.time())):
        try:
            ended = key.fileobj.recv(1) == b""
        except BlockingIOError:
            ended = False
        except OSError:
            ended = True
        if ended:
            watch.unregister(key.fileobj)
            closed += 1
watch.close()
for s in held:
    s.close()
after = timed_calls(50)

print(json.dumps({
    "cases": {k: {"status": s, "code": c} for k, (s, c) in cases.items()},
    "idle_connections": idle,
    "idle_closed_by_server": closed,
    "seconds_to_open_idle": round(opened_s, 2),
    "before": before,
    "during": during,
    "after": after,
}))
