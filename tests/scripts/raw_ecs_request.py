#!/usr/bin/env python3
"""Sends one raw ECS JSON 1.1 request, signed by botocore's SigV4 signer, so
tests can send what the aws CLI would refuse to (bad JSON, missing members,
unknown operations, bad signatures).

usage: raw_ecs_request.py OPERATION BODY [--unsigned | --bad-secret]
Reads AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION.
Prints {"status": N, "body": {...}} as JSON.
"""
import json
import os
import ssl
import sys
import urllib.error
import urllib.request

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def main():
    op, body = sys.argv[1], sys.argv[2].encode()
    mode = sys.argv[3] if len(sys.argv) > 3 else ""
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    headers = {
        "X-Amz-Target": f"AmazonEC2ContainerServiceV20141113.{op}",
        "Content-Type": "application/x-amz-json-1.1",
    }
    req = AWSRequest(method="POST", url=endpoint + "/", data=body, headers=headers)
    if mode != "--unsigned":
        secret = os.environ["AWS_SECRET_ACCESS_KEY"]
        if mode == "--bad-secret":
            # Another first character (a secret that starts with "x" stays wrong too).
            secret = ("y" if secret.startswith("x") else "x") + secret[1:]
        creds = Credentials(os.environ["AWS_ACCESS_KEY_ID"], secret)
        SigV4Auth(creds, "ecs", os.environ["AWS_DEFAULT_REGION"]).add_auth(req)
    prepared = req.prepare()
    http_req = urllib.request.Request(prepared.url, data=body, headers=dict(prepared.headers), method="POST")
    try:
        # AWS_CA_BUNDLE (from aws.env) verifies the API's certificate, as botocore does.
        ctx = ssl.create_default_context(cafile=os.environ.get("AWS_CA_BUNDLE"))
        with urllib.request.urlopen(http_req, timeout=10, context=ctx) as resp:
            status, text = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read()
    print(json.dumps({"status": status, "body": json.loads(text or b"null")}))


if __name__ == "__main__":
    main()
