"""Calls a berth-aws edge (fake services, see botocore.rs) with real boto3 clients and prints
what botocore parsed: if the XML or the error shapes were off, botocore would say so here."""

import json
import os

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

ENDPOINT = os.environ["EDGE_ENDPOINT"]
session = boto3.session.Session(
    aws_access_key_id="AKIDEXAMPLE",
    aws_secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    region_name="eu-west-1",
)
config = Config(retries={"max_attempts": 1})
out = {}


def error(call):
    try:
        call()
    except ClientError as e:
        return {
            "code": e.response["Error"]["Code"],
            "message": e.response["Error"]["Message"],
            "status": e.response["ResponseMetadata"]["HTTPStatusCode"],
            "request_id": e.response["ResponseMetadata"].get("RequestId"),
            "type": e.response["Error"].get("Type"),
        }
    raise SystemExit("expected an error")


elb = session.client("elbv2", endpoint_url=ENDPOINT, config=config)
lbs = elb.describe_load_balancers(Names=["web"])
out["load_balancers"] = [
    {
        "name": lb["LoadBalancerName"],
        "created": lb["CreatedTime"].isoformat(),
        "zones": [z["ZoneName"] for z in lb["AvailabilityZones"]],
        "port_count": lb.get("IpAddressType"),
    }
    for lb in lbs["LoadBalancers"]
]
out["elb_request_id"] = lbs["ResponseMetadata"]["RequestId"]
out["elb_error"] = error(lambda: elb.delete_load_balancer(LoadBalancerArn="arn:x"))

cw = session.client("cloudwatch", endpoint_url=ENDPOINT, config=config)
out["cloudwatch_error"] = error(lambda: cw.list_metrics(Namespace="AWS/ECS"))

logs = session.client("logs", endpoint_url=ENDPOINT, config=config)
out["logs_error"] = error(lambda: logs.describe_log_groups())

print(json.dumps(out))
