#!/usr/bin/env python3
"""Berth's Secrets Manager operations driven with boto3 (the real client, so
botocore parses every response by its service model).

usage: secrets_boto3.py    (env: AWS_ENDPOINT_URL, keys, region from aws.env)
Every check is an assert; on success prints {"checked": [...operations...]}.
"""
import datetime
import json

import boto3
from botocore.exceptions import ClientError

sm = boto3.client("secretsmanager")
checked = set()


def call(op, **kw):
    checked.add(op)
    return getattr(sm, op)(**kw)


def fails(code, op, **kw):
    try:
        out = call(op, **kw)
    except ClientError as e:
        err = e.response["Error"]
        assert err["Code"] == code, f"{op}: expected {code}, got {err}"
        return err["Message"]
    raise AssertionError(f"{op}({kw}) succeeded: {out}")


made = call("create_secret", Name="boto/db", SecretString='{"password":"pw1"}', Description="db")
arn = made["ARN"]
assert arn.startswith("arn:aws:secretsmanager:") and ":secret:boto/db-" in arn, made
fails("ResourceExistsException", "create_secret", Name="boto/db", SecretString="x")
msg = fails("InvalidParameterException", "create_secret", Name="bad name", SecretString="x")
assert "bad name" in msg, msg

got = call("get_secret_value", SecretId="boto/db")
assert got["SecretString"] == '{"password":"pw1"}', got
assert got["VersionId"] == made["VersionId"], got
assert got["VersionStages"] == ["AWSCURRENT"], got
assert isinstance(got["CreatedDate"], datetime.datetime), got

put = call("put_secret_value", SecretId=arn, SecretString='{"password":"pw2"}')
assert put["VersionId"] != made["VersionId"], put
assert call("get_secret_value", SecretId=arn)["SecretString"] == '{"password":"pw2"}'

d = call("describe_secret", SecretId=arn.rsplit("-", 1)[0])  # ARN without its suffix
assert d["Name"] == "boto/db" and d["Description"] == "db", d
assert isinstance(d["LastChangedDate"], datetime.datetime), d
assert d["VersionIdsToStages"] == {put["VersionId"]: ["AWSCURRENT"]}, d

for i in range(3):
    call("create_secret", Name=f"boto/page{i}", SecretString="v")
names = []
for page in sm.get_paginator("list_secrets").paginate(PaginationConfig={"PageSize": 2}):
    checked.add("list_secrets")
    assert len(page["SecretList"]) <= 2, page
    names += [s["Name"] for s in page["SecretList"]]
assert sorted(names) == ["boto/db", "boto/page0", "boto/page1", "boto/page2"], names

deleted = call("delete_secret", SecretId="boto/db", ForceDeleteWithoutRecovery=True)
assert deleted["ARN"] == arn and isinstance(deleted["DeletionDate"], datetime.datetime), deleted
fails("ResourceNotFoundException", "get_secret_value", SecretId=arn)
fails("ResourceNotFoundException", "delete_secret", SecretId="boto/db")

print(json.dumps({"checked": sorted(checked)}))
