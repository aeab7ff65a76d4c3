#!/usr/bin/python3
"""An EC2 client this project did not write, for checking the fake:
botocore's own EC2 client (its serializer, SigV4 signer and XML parser).

  botoclient.py sequence ENDPOINT CREDS.json   run the whole provider-like sequence,
                                               print one JSON report, exit 0 only if it held
  botoclient.py call ENDPOINT CREDS.json OPERATION PARAMS.json
                                               one call through botocore's client (OPERATION
                                               in botocore's snake_case); prints the parsed
                                               answer, or {"Error": {"Code", "Message"}}, as JSON
  botoclient.py sign CREDS.json REQ.json       sign a raw request with botocore's
                                               SigV4Auth and print its headers as JSON
  botoclient.py serve HOST PORT ENDPOINT CREDS.json
                                               the same three over HTTP (one process for a
                                               whole spec): POST /sequence, POST /call
                                               {"operation", "params"}, POST /sign {"request",
                                               "secret"?, "access_key"?}; JSON answers

CREDS.json: {"access_key": ..., "secret_key": ..., "region": ...} (a file, so
the secret is never on a command line). REQ.json: {"method", "url",
"body", "headers", "time" (unix seconds to sign at, default now)}."""

import datetime
import gzip
import json
import sys
import urllib.request
import uuid
from unittest import mock

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError


def load(path):
    with open(path) as f:
        return json.load(f)


def client(endpoint, creds):
    s = botocore.session.get_session()
    return s.create_client("ec2", region_name=creds["region"], endpoint_url=endpoint,
                           aws_access_key_id=creds["access_key"], aws_secret_access_key=creds["secret_key"],
                           config=Config(retries={"max_attempts": 1}))


def code_of(fn, **kw):
    try:
        fn(**kw)
    except ClientError as e:
        return e.response["Error"]["Code"]
    return None


def settle(endpoint):
    # The fake's test control: wait until its launchers have answered, so
    # the DescribeInstances calls below count state changes deterministically.
    with urllib.request.urlopen(endpoint + "/_admin/settle?timeout=60", timeout=90) as r:
        r.read()


def check(report, name, ok, detail=None):
    report["checks"].append({"name": name, "ok": bool(ok), "detail": detail})
    if not ok:
        report["ok"] = False


def sequence(endpoint, creds):
    ec2 = client(endpoint, creds)
    r = {"ok": True, "checks": []}
    env = "juju-boto-" + uuid.uuid4().hex[:8]

    attrs = ec2.describe_account_attributes(AttributeNames=["default-vpc", "supported-platforms"])
    vals = {a["AttributeName"]: [v["AttributeValue"] for v in a["AttributeValues"]]
            for a in attrs["AccountAttributes"]}
    check(r, "account default-vpc none", vals.get("default-vpc") == ["none"], vals)
    check(r, "request id parsed", bool(attrs["ResponseMetadata"].get("RequestId")), attrs["ResponseMetadata"])

    zones = ec2.describe_availability_zones(Filters=[{"Name": "region-name", "Values": [creds["region"]]}])
    names = [z["ZoneName"] for z in zones["AvailabilityZones"] if z["State"] == "available"]
    check(r, "zones of the region", len(names) >= 1, names)
    regions = ec2.describe_regions()["Regions"]
    check(r, "regions", any(x["RegionName"] == creds["region"] for x in regions), regions)

    check(r, "no group yet: InvalidGroup.NotFound",
          code_of(ec2.describe_security_groups, GroupNames=[env]) == "InvalidGroup.NotFound")
    gid = ec2.create_security_group(GroupName=env, Description="juju group")["GroupId"]
    mid = ec2.create_security_group(GroupName=env + "-0", Description="juju group")["GroupId"]
    check(r, "group ids", gid.startswith("sg-") and mid.startswith("sg-") and gid != mid, [gid, mid])
    check(r, "create twice: InvalidGroup.Duplicate",
          code_of(ec2.create_security_group, GroupName=env, Description="juju group") == "InvalidGroup.Duplicate")
    perms = [
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {"IpProtocol": "tcp", "FromPort": 17070, "ToPort": 17070, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {"IpProtocol": "tcp", "FromPort": 0, "ToPort": 65535, "UserIdGroupPairs": [{"GroupId": gid}]},
        {"IpProtocol": "udp", "FromPort": 0, "ToPort": 65535, "UserIdGroupPairs": [{"GroupId": gid}]},
        {"IpProtocol": "icmp", "FromPort": -1, "ToPort": -1, "UserIdGroupPairs": [{"GroupId": gid}]},
    ]
    ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=perms)
    check(r, "authorize twice: InvalidPermission.Duplicate",
          code_of(ec2.authorize_security_group_ingress, GroupId=gid, IpPermissions=perms[:1])
          == "InvalidPermission.Duplicate")
    g = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [env]}])["SecurityGroups"]
    got = sorted((p["IpProtocol"], p.get("FromPort"), p.get("ToPort"),
                  tuple(x["CidrIp"] for x in p["IpRanges"]), tuple(x["GroupId"] for x in p["UserIdGroupPairs"]))
                 for p in g[0]["IpPermissions"]) if len(g) == 1 else None
    want = sorted((p["IpProtocol"], p["FromPort"], p["ToPort"],
                   tuple(x["CidrIp"] for x in p.get("IpRanges", [])),
                   tuple(x["GroupId"] for x in p.get("UserIdGroupPairs", []))) for p in perms)
    check(r, "rules read back", got == want, got)
    by_id = ec2.describe_security_groups(Filters=[{"Name": "group-id", "Values": [mid]}])["SecurityGroups"]
    check(r, "group-id filter", [x["GroupName"] for x in by_id] == [env + "-0"], by_id)

    user_data = gzip.compress(b"#cloud-config\nruncmd: [echo botoclient]\n")
    run = dict(ImageId="ami-26745463", InstanceType="m3.medium", MinCount=1, MaxCount=1,
               SecurityGroupIds=[gid, mid], UserData=user_data,
               ClientToken="boto-" + uuid.uuid4().hex,  # botocore base64-encodes UserData itself Placement={"AvailabilityZone": names[0]},
               BlockDeviceMappings=[{"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 8}}],
               TagSpecifications=[{"ResourceType": "instance", "Tags": [
                   {"Key": "Name", "Value": env + "-machine-0"}, {"Key": "juju-env-uuid", "Value": env}]}])
    first = ec2.run_instances(**run)
    again = ec2.run_instances(**run)
    iid = first["Instances"][0]["InstanceId"]
    check(r, "same client token, same reservation",
          first["ReservationId"] == again["ReservationId"] and again["Instances"][0]["InstanceId"] == iid,
          [first["ReservationId"], again["ReservationId"]])
    check(r, "pending at first", first["Instances"][0]["State"]["Name"] == "pending", first["Instances"][0]["State"])
    check(r, "tags at creation", {t["Key"]: t["Value"] for t in first["Instances"][0].get("Tags", [])}
          .get("Name") == env + "-machine-0", first["Instances"][0].get("Tags"))
    r["instance_id"] = iid
    r["reservation_id"] = first["ReservationId"]

    settle(endpoint)
    state, address, polls = None, None, 0
    while polls < 20:
        polls += 1
        res = ec2.describe_instances(InstanceIds=[iid], Filters=[
            {"Name": "instance-state-name", "Values": ["pending", "running"]},
            {"Name": "instance.group-id", "Values": [gid]}])
        inst = res["Reservations"][0]["Instances"][0]
        state = inst["State"]["Name"]
        address = inst.get("PrivateIpAddress")
        if state == "running":
            break
    check(r, "running with an address", state == "running" and address, [state, address, polls])
    r["address"] = address
    r["polls"] = polls

    ec2.create_tags(Resources=[iid], Tags=[{"Key": "juju-machine-id", "Value": "0"}])
    tagged = ec2.describe_instances(Filters=[{"Name": "tag:juju-env-uuid", "Values": [env]},
                                             {"Name": "tag-key", "Values": ["juju-machine-id"]}])
    ids = [i["InstanceId"] for res in tagged["Reservations"] for i in res["Instances"]]
    check(r, "tag filters", ids == [iid], ids)
    none = ec2.describe_instances(Filters=[{"Name": "tag:juju-env-uuid", "Values": ["other"]}])
    check(r, "tag filter excludes", none["Reservations"] == [], none["Reservations"])
    by_group = ec2.describe_instances(Filters=[{"Name": "instance.group-name", "Values": [env + "-0"]}])
    check(r, "instance.group-name filter", len(by_group["Reservations"]) == 1, by_group["Reservations"])
    tags = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [iid]}])["Tags"]
    check(r, "describe tags", sorted(t["Key"] for t in tags) == ["Name", "juju-env-uuid", "juju-machine-id"], tags)
    images = ec2.describe_images(ImageIds=["ami-26745463"])["Images"]
    check(r, "describe images", [i["ImageId"] for i in images] == ["ami-26745463"], images)
    check(r, "unknown instance: InvalidInstanceID.NotFound",
          code_of(ec2.describe_instances, InstanceIds=["i-0000000000000dead"]) == "InvalidInstanceID.NotFound")

    check(r, "group in use: DependencyViolation",
          code_of(ec2.delete_security_group, GroupId=mid) == "DependencyViolation")
    term = ec2.terminate_instances(InstanceIds=[iid])["TerminatingInstances"][0]
    check(r, "terminate: shutting-down", term["CurrentState"]["Name"] == "shutting-down"
          and term["PreviousState"]["Name"] == "running", term)
    settle(endpoint)
    polls = 0
    while polls < 20:
        polls += 1
        state = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["State"]["Name"]
        if state == "terminated":
            break
    check(r, "terminated", state == "terminated", [state, polls])
    live = ec2.describe_instances(Filters=[{"Name": "instance-state-name", "Values": ["pending", "running"]}])
    check(r, "none live", live["Reservations"] == [], live["Reservations"])
    ec2.delete_security_group(GroupId=mid)
    ec2.delete_security_group(GroupName=env)
    left = [x["GroupName"] for x in ec2.describe_security_groups()["SecurityGroups"]]
    check(r, "groups deleted", env not in left and env + "-0" not in left, left)
    return r


def sign(creds, req):
    headers = dict(req.get("headers") or {})
    body = req.get("body") or ""
    ar = AWSRequest(method=req["method"], url=req["url"], data=body.encode(), headers=headers)
    when = datetime.datetime.utcfromtimestamp(req.get("time") or datetime.datetime.utcnow().timestamp())
    signer = SigV4Auth(Credentials(creds["access_key"], creds["secret_key"]), "ec2", creds["region"])
    with mock.patch("botocore.auth.datetime") as dt:
        dt.datetime.utcnow.return_value = when
        signer.add_auth(ar)
    return {k: v for k, v in ar.headers.items()}


def serve(host, port, endpoint, creds):
    from http.server import BaseHTTPRequestHandler, HTTPServer

    ec2 = client(endpoint, creds)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt, *args):
            pass

        def do_POST(self):
            req = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            try:
                if self.path == "/sequence":
                    try:
                        out = sequence(endpoint, creds)
                    except ClientError as e:
                        out = {"ok": False, "error": str(e), "response": e.response}
                elif self.path == "/call":
                    try:
                        out = getattr(ec2, req["operation"])(**req.get("params", {}))
                    except ClientError as e:
                        out = {"Error": e.response["Error"]}
                elif self.path == "/sign":
                    c = dict(creds)
                    c["secret_key"] = req.get("secret", c["secret_key"])
                    c["access_key"] = req.get("access_key", c["access_key"])
                    out = sign(c, req["request"])
                else:
                    out = {"error": "unknown path " + self.path}
                status = 200
            except Exception as e:  # the spec shows it
                status, out = 500, {"error": "%s: %s" % (type(e).__name__, e)}
            data = json.dumps(out, default=str).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    HTTPServer((host, int(port)), Handler).serve_forever()


def main():
    if len(sys.argv) == 6 and sys.argv[1] == "serve":
        serve(sys.argv[2], sys.argv[3], sys.argv[4], load(sys.argv[5]))
        return
    if len(sys.argv) == 4 and sys.argv[1] == "sequence":
        try:
            r = sequence(sys.argv[2], load(sys.argv[3]))
        except ClientError as e:
            r = {"ok": False, "error": str(e), "response": e.response}
        print(json.dumps(r, indent=1, default=str))
        sys.exit(0 if r["ok"] else 1)
    if len(sys.argv) == 6 and sys.argv[1] == "call":
        ec2 = client(sys.argv[2], load(sys.argv[3]))
        try:
            out = getattr(ec2, sys.argv[4])(**load(sys.argv[5]))
        except ClientError as e:
            out = {"Error": e.response["Error"]}
        print(json.dumps(out, default=str))
        return
    if len(sys.argv) == 4 and sys.argv[1] == "sign":
        print(json.dumps(sign(load(sys.argv[2]), load(sys.argv[3]))))
        return
    sys.exit(__doc__)


if __name__ == "__main__":
    main()
