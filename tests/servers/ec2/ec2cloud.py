"""The EC2 fake's cloud: security groups and their rules, instances and their
life (pending -> running -> shutting-down -> terminated, counted in
DescribeInstances calls, never in wall time), reservations and client tokens,
tags, zones, images, the account's attributes.

Each action is a method named after it, taking the input structure parsed by
ec2model.Model (botocore member names) and returning the output structure
(botocore member names too). Callers hold Cloud.lock around every call.
Launching and terminating real test hosts is the launcher's business
(ec2launch.Launcher): the cloud only asks it and reads what it answered."""

import base64
import binascii
import copy
import datetime
import fnmatch
import gzip
import ipaddress
import json
import os
import threading

from ec2model import ApiError, invalid

STATE_CODES = {"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48,
               "stopping": 64, "stopped": 80}
USER_DATA_LIMIT = 16384  # bytes, raw (before base64), as EC2 documents

DEFAULT_IMAGES = ["ami-26745463", "ami-26745464", "ami-36745463", "ami-442ea674",
                  "ami-442ea675", "ami-442ea684", "ami-442ea699"]

PROTOCOLS = {"tcp": "tcp", "6": "tcp", "udp": "udp", "17": "udp", "icmp": "icmp", "1": "icmp",
             "-1": "-1", "all": "-1"}


def not_found(code, message):
    return ApiError(400, code, message)


def now_utc():
    return datetime.datetime.now(datetime.timezone.utc)


def matches(patterns, value):
    """EC2 filter values: any of them, with * and ? wildcards."""
    if value is None:
        return False
    value = str(value)
    for p in patterns:
        if p == value or (("*" in p or "?" in p) and fnmatch.fnmatchcase(value, p.replace("[", "[[]"))):
            return True
    return False


def filters_of(params):
    out = []
    for f in params.get("Filters") or []:
        if "Name" not in f:
            raise ApiError(400, "MissingParameter", "The request must contain the parameter Filter.N.Name")
        out.append((f["Name"], f.get("Values") or []))
    return out


class Group:
    def __init__(self, gid, name, description, vpc_id, owner):
        self.id, self.name, self.description, self.vpc_id, self.owner = gid, name, description, vpc_id, owner
        self.rules = []  # atoms: (proto, from, to, "cidr"|"group", value), in order of authorisation


class Instance:
    def __init__(self, **kw):
        self.__dict__.update(kw)


class Cloud:
    def __init__(self, config, launcher, data_dir, log):
        self.lock = threading.RLock()
        self.log = log
        self.launcher = launcher
        self.data_dir = data_dir
        os.makedirs(os.path.join(data_dir, "user-data"), mode=0o700, exist_ok=True)
        self.counter = 0
        self.groups = {}
        self.instances = {}
        self.reservations = {}
        self.tokens = {}
        self.tags = {}
        self.fates = []  # what the next launched instances do instead of running
        self.launch_index = 0
        self.pool_used = 0
        self.launcher_on = True  # "launcher": false in the config: addresses from the pool instead
        self.configure(config)

    # ---- configuration -------------------------------------------------

    def configure(self, config):
        c = config
        self.region = c.get("region", getattr(self, "region", "us-east-1"))
        self.owner_id = str(c.get("owner_id", getattr(self, "owner_id", "123456789012")))
        if "zones" in c or not hasattr(self, "zones"):
            zones = c.get("zones") or [{"name": self.region + z} for z in ("a", "b", "c")]
            self.zones = [{"name": z["name"] if isinstance(z, dict) else z,
                           "state": (z.get("state", "available") if isinstance(z, dict) else "available"),
                           "message": (z.get("message") if isinstance(z, dict) else None)} for z in zones]
        if "regions" in c or not hasattr(self, "regions"):
            self.regions = c.get("regions") or [self.region]
        if "images" in c or not hasattr(self, "images"):
            imgs = c.get("images") or DEFAULT_IMAGES
            self.images = [self._image(i) for i in imgs]
        for key, default in (("pending_describes", 1), ("terminating_describes", 1),
                             ("max_instances", 20), ("default_vpc", None),
                             ("clock_actions", ["DescribeInstances", "DeleteSecurityGroup"]),
                             ("instance_types", None), ("accept_unknown_images", False)):
            if key in c or not hasattr(self, key):
                setattr(self, key, c.get(key, default))
        if "launcher" in c:
            self.launcher_on = bool(c["launcher"])
        if "launch_index" in c:  # the next instance gets launch_index + 1 (INSTANCE_INDEX)
            self.launch_index = int(c["launch_index"])
        if "address_pool" in c or not hasattr(self, "address_pool"):
            self.address_pool = c.get("address_pool") or ["127.0.100.%d" % i for i in range(1, 255)]

    def _image(self, i):
        if isinstance(i, str):
            i = {"ImageId": i}
        img = {"ImageId": i["ImageId"], "Name": i.get("Name", "ubuntu/images/" + i["ImageId"]),
               "State": i.get("State", "available"), "OwnerId": str(i.get("OwnerId", "099720109477")),
               "Public": i.get("Public", True), "Architecture": i.get("Architecture", "x86_64"),
               "ImageType": "machine", "RootDeviceType": i.get("RootDeviceType", "ebs"),
               "RootDeviceName": "/dev/sda1", "VirtualizationType": i.get("VirtualizationType", "hvm"),
               "Hypervisor": "xen"}
        img["ImageLocation"] = "%s/%s" % (img["OwnerId"], img["Name"])
        return img

    def next_id(self, prefix):
        self.counter += 1
        return "%s-%017x" % (prefix, self.counter)

    # ---- helpers -------------------------------------------------------

    def _tag_list(self, rid):
        return [{"Key": k, "Value": v} for k, v in sorted(self.tags.get(rid, {}).items())]

    def _tag_filter(self, name, values, rid):
        tags = self.tags.get(rid, {})
        if name.startswith("tag:"):
            k = name[4:]
            return k in tags and matches(values, tags[k])
        if name == "tag-key":
            return any(matches(values, k) for k in tags)
        if name == "tag-value":
            return any(matches(values, v) for v in tags.values())
        return None

    def _group_by_name(self, name):
        for g in self.groups.values():
            if g.name == name:
                return g
        return None

    def _group_missing(self, name=None, gid=None):
        if gid is not None:
            return not_found("InvalidGroup.NotFound", "The security group ID '%s' does not exist" % gid)
        where = " in default VPC '%s'" % self.default_vpc if self.default_vpc else ""
        return not_found("InvalidGroup.NotFound", "The security group '%s' does not exist%s" % (name, where))

    def _find_group(self, params):
        if params.get("GroupId"):
            g = self.groups.get(params["GroupId"])
            if g is None:
                raise self._group_missing(gid=params["GroupId"])
            return g
        if params.get("GroupName"):
            g = self._group_by_name(params["GroupName"])
            if g is None:
                raise self._group_missing(name=params["GroupName"])
            return g
        raise ApiError(400, "MissingParameter", "The request must contain the parameter GroupName or GroupId")

    def _check_filters(self, filters, known):
        for name, _ in filters:
            if name not in known and not name.startswith("tag:"):
                raise invalid("The filter '%s' is invalid" % name)

    # ---- account, regions, zones, images, VPCs -------------------------

    def DescribeAccountAttributes(self, p):
        platforms = ["VPC"] if self.default_vpc else ["EC2", "VPC"]
        attrs = {"supported-platforms": platforms,
                 "default-vpc": [self.default_vpc or "none"],
                 "max-instances": [str(self.max_instances)],
                 "vpc-max-security-groups-per-interface": ["5"],
                 "max-elastic-ips": ["5"], "vpc-max-elastic-ips": ["5"]}
        names = p.get("AttributeNames") or list(attrs)
        out = []
        for n in names:
            if n not in attrs:
                raise invalid("Value (%s) for parameter attributeName is invalid." % n)
            out.append({"AttributeName": n, "AttributeValues": [{"AttributeValue": v} for v in attrs[n]]})
        return {"AccountAttributes": out}

    def DescribeRegions(self, p):
        out = []
        for r in self.regions:
            name = r["name"] if isinstance(r, dict) else r
            ep = r.get("endpoint") if isinstance(r, dict) else None
            out.append({"RegionName": name, "Endpoint": ep or "ec2.%s.amazonaws.com" % name})
        names = p.get("RegionNames")
        filters = filters_of(p)
        self._check_filters(filters, {"region-name", "endpoint", "opt-in-status"})
        res = []
        for r in out:
            if names and r["RegionName"] not in names:
                continue
            ok = all(matches(v, r["RegionName"] if n == "region-name" else r["Endpoint"] if n == "endpoint"
                             else "opt-in-not-required") for n, v in filters)
            if ok:
                res.append(r)
        return {"Regions": res}

    def DescribeAvailabilityZones(self, p):
        filters = filters_of(p)
        self._check_filters(filters, {"region-name", "zone-name", "state", "zone-id", "message"})
        names = p.get("ZoneNames")
        for n in names or []:
            if not any(z["name"] == n for z in self.zones):
                raise invalid("Invalid availability zone: [%s]" % n)
        out = []
        for z in self.zones:
            fields = {"region-name": self.region, "zone-name": z["name"], "state": z["state"],
                      "zone-id": z["name"], "message": z["message"] or ""}
            if names and z["name"] not in names:
                continue
            if all(matches(v, fields[n]) for n, v in filters):
                out.append({"State": z["state"], "RegionName": self.region, "ZoneName": z["name"],
                            "ZoneId": z["name"], "ZoneType": "availability-zone",
                            "Messages": [{"Message": z["message"]}] if z["message"] else []})
        return {"AvailabilityZones": out}

    def DescribeImages(self, p):
        filters = filters_of(p)
        fmap = {"image-id": "ImageId", "name": "Name", "architecture": "Architecture", "state": "State",
                "root-device-type": "RootDeviceType", "virtualization-type": "VirtualizationType",
                "owner-id": "OwnerId", "is-public": "Public", "image-type": "ImageType"}
        self._check_filters(filters, set(fmap))
        ids = p.get("ImageIds")
        known = {i["ImageId"] for i in self.images}
        missing = [i for i in ids or [] if i not in known]
        if missing:
            raise not_found("InvalidAMIID.NotFound", "The image id '[%s]' does not exist" % ", ".join(missing))
        owners = [o for o in p.get("Owners") or [] if o.isdigit()]
        out = []
        for img in self.images:
            if ids and img["ImageId"] not in ids:
                continue
            if owners and img["OwnerId"] not in owners:
                continue
            vals = {k: (str(img[v]).lower() if isinstance(img[v], bool) else img[v]) for k, v in fmap.items()}
            if all(matches(v, vals[n]) if n in vals else self._tag_filter(n, v, img["ImageId"])
                   for n, v in filters):
                out.append(dict(img, Tags=self._tag_list(img["ImageId"])))
        return {"Images": out}

    def _vpcs(self):
        if not self.default_vpc:
            return [], []
        vpc = {"VpcId": self.default_vpc, "CidrBlock": "172.31.0.0/16", "State": "available",
               "IsDefault": True, "InstanceTenancy": "default", "OwnerId": self.owner_id,
               "DhcpOptionsId": "dopt-00000001"}
        subnets = []
        for i, z in enumerate(self.zones):
            subnets.append({"SubnetId": "subnet-%017x" % (i + 1), "VpcId": self.default_vpc,
                            "AvailabilityZone": z["name"], "CidrBlock": "172.31.%d.0/20" % (16 * i),
                            "State": "available", "DefaultForAz": True, "MapPublicIpOnLaunch": True,
                            "AvailableIpAddressCount": 4091, "OwnerId": self.owner_id})
        return [vpc], subnets

    def DescribeVpcs(self, p):
        vpcs, _ = self._vpcs()
        filters = filters_of(p)
        self._check_filters(filters, {"vpc-id", "isDefault", "is-default", "state", "cidr"})
        ids = p.get("VpcIds")
        for i in ids or []:
            if not any(v["VpcId"] == i for v in vpcs):
                raise not_found("InvalidVpcID.NotFound", "The vpc ID '%s' does not exist" % i)
        vals = lambda v: {"vpc-id": v["VpcId"], "isDefault": "true", "is-default": "true",
                          "state": v["State"], "cidr": v["CidrBlock"]}
        return {"Vpcs": [v for v in vpcs if (not ids or v["VpcId"] in ids)
                         and all(matches(fv, vals(v)[n]) for n, fv in filters)]}

    def DescribeSubnets(self, p):
        _, subnets = self._vpcs()
        filters = filters_of(p)
        self._check_filters(filters, {"vpc-id", "subnet-id", "availability-zone", "availabilityZone",
                                      "default-for-az", "defaultForAz", "state"})
        ids = p.get("SubnetIds")
        for i in ids or []:
            if not any(s["SubnetId"] == i for s in subnets):
                raise not_found("InvalidSubnetID.NotFound", "The subnet ID '%s' does not exist" % i)
        vals = lambda s: {"vpc-id": s["VpcId"], "subnet-id": s["SubnetId"], "availability-zone": s["AvailabilityZone"],
                          "availabilityZone": s["AvailabilityZone"], "default-for-az": "true",
                          "defaultForAz": "true", "state": s["State"]}
        return {"Subnets": [s for s in subnets if (not ids or s["SubnetId"] in ids)
                            and all(matches(fv, vals(s)[n]) for n, fv in filters)]}

    # ---- security groups -----------------------------------------------

    def CreateSecurityGroup(self, p):
        name = p["GroupName"]
        if name.startswith("sg-"):
            raise invalid("Group names may not be in the format sg-*")
        if self._group_by_name(name):
            raise ApiError(400, "InvalidGroup.Duplicate", "The security group '%s' already exists" % name)
        g = Group(self.next_id("sg"), name, p["Description"], p.get("VpcId") or self.default_vpc, self.owner_id)
        self.groups[g.id] = g
        for spec in p.get("TagSpecifications") or []:
            for t in spec.get("Tags") or []:
                self.tags.setdefault(g.id, {})[t["Key"]] = t.get("Value", "")
        return {"GroupId": g.id}

    def _atoms(self, p, group):
        perms = list(p.get("IpPermissions") or [])
        if p.get("IpProtocol"):
            legacy = {"IpProtocol": p["IpProtocol"], "FromPort": p.get("FromPort"), "ToPort": p.get("ToPort")}
            if p.get("CidrIp"):
                legacy["IpRanges"] = [{"CidrIp": p["CidrIp"]}]
            if p.get("SourceSecurityGroupName"):
                legacy["UserIdGroupPairs"] = [{"GroupName": p["SourceSecurityGroupName"]}]
            perms.append(legacy)
        if not perms:
            raise ApiError(400, "MissingParameter", "No IpPermissions given (IpPermissions.N.IpProtocol ...)")
        atoms = []
        for i, perm in enumerate(perms, 1):
            raw = str(perm.get("IpProtocol", ""))
            proto = PROTOCOLS.get(raw.lower())
            if proto is None:
                raise invalid("Invalid value '%s' for IP protocol. Unknown protocol." % raw)
            lo, hi = perm.get("FromPort"), perm.get("ToPort")
            if proto == "-1":
                lo = hi = None
            elif lo is None or hi is None:
                raise ApiError(400, "MissingParameter",
                               "IpPermissions.%d: FromPort and ToPort are required for protocol %s" % (i, proto))
            elif proto in ("tcp", "udp") and not (0 <= lo <= hi <= 65535):
                raise invalid("Invalid port range %s-%s for %s" % (lo, hi, proto))
            sources = []
            for r in perm.get("IpRanges") or []:
                cidr = r.get("CidrIp", "")
                try:
                    ipaddress.ip_network(cidr, strict=False)
                except ValueError:
                    raise invalid("CIDR block %s is malformed" % cidr) from None
                sources.append(("cidr", cidr))
            for pair in perm.get("UserIdGroupPairs") or []:
                if pair.get("GroupId"):
                    if pair["GroupId"] not in self.groups:
                        raise self._group_missing(gid=pair["GroupId"])
                    sources.append(("group", pair["GroupId"]))
                elif pair.get("GroupName"):
                    g = self._group_by_name(pair["GroupName"])
                    if g is None:
                        raise self._group_missing(name=pair["GroupName"])
                    sources.append(("group", g.id))
            if not sources:
                raise ApiError(400, "MissingParameter",
                               "IpPermissions.%d names no source (IpRanges or Groups)" % i)
            atoms.extend((proto, lo, hi, k, v) for k, v in sources)
        return atoms

    @staticmethod
    def _rule_text(a):
        peer = a[4]
        ports = "ALL" if a[0] == "-1" else "from port: %s, to port: %s" % (a[1], a[2])
        return 'peer: %s, %s, %s, ALLOW' % (peer, a[0].upper(), ports)

    def AuthorizeSecurityGroupIngress(self, p):
        g = self._find_group(p)
        atoms = self._atoms(p, g)
        for a in atoms:
            if a in g.rules:
                raise ApiError(400, "InvalidPermission.Duplicate",
                               'the specified rule "%s" already exists' % self._rule_text(a))
        if len(set(atoms)) != len(atoms):
            raise ApiError(400, "InvalidPermission.Duplicate", "the request lists one rule twice")
        g.rules.extend(atoms)
        return {"Return": True}

    def RevokeSecurityGroupIngress(self, p):
        g = self._find_group(p)
        atoms = self._atoms(p, g)
        for a in atoms:
            if a not in g.rules:
                raise ApiError(400, "InvalidPermission.NotFound",
                               "The specified rule does not exist in this security group.")
        g.rules = [r for r in g.rules if r not in atoms]
        return {"Return": True}

    def _group_out(self, g):
        perms = {}
        order = []
        for proto, lo, hi, kind, v in g.rules:
            key = (proto, lo, hi)
            if key not in perms:
                perms[key] = {"IpProtocol": proto, "IpRanges": [], "UserIdGroupPairs": [],
                              "Ipv6Ranges": [], "PrefixListIds": []}
                if lo is not None:
                    perms[key]["FromPort"], perms[key]["ToPort"] = lo, hi
                order.append(key)
            if kind == "cidr":
                perms[key]["IpRanges"].append({"CidrIp": v})
            else:
                src = self.groups.get(v)
                perms[key]["UserIdGroupPairs"].append(
                    {"GroupId": v, "GroupName": src.name if src else None, "UserId": self.owner_id})
        out = {"Description": g.description, "GroupName": g.name, "GroupId": g.id, "OwnerId": g.owner,
               "IpPermissions": [perms[k] for k in order], "Tags": self._tag_list(g.id)}
        if g.vpc_id:
            out["VpcId"] = g.vpc_id
            out["IpPermissionsEgress"] = [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
        return out

    def DescribeSecurityGroups(self, p):
        filters = filters_of(p)
        self._check_filters(filters, {"group-name", "group-id", "description", "vpc-id", "owner-id",
                                      "tag-key", "tag-value"})
        for n in p.get("GroupNames") or []:
            if not self._group_by_name(n):
                raise self._group_missing(name=n)
        for i in p.get("GroupIds") or []:
            if i not in self.groups:
                raise self._group_missing(gid=i)
        out = []
        for g in self.groups.values():
            if p.get("GroupNames") and g.name not in p["GroupNames"]:
                continue
            if p.get("GroupIds") and g.id not in p["GroupIds"]:
                continue
            vals = {"group-name": g.name, "group-id": g.id, "description": g.description,
                    "vpc-id": g.vpc_id, "owner-id": g.owner}
            if all(matches(v, vals[n]) if n in vals else self._tag_filter(n, v, g.id) for n, v in filters):
                out.append(self._group_out(g))
        return {"SecurityGroups": out}

    def DeleteSecurityGroup(self, p):
        g = self._find_group(p)
        for inst in self.instances.values():
            if inst.state != "terminated" and g.id in inst.groups:
                raise ApiError(400, "DependencyViolation", "resource %s has a dependent object" % g.id)
        for other in self.groups.values():
            if other is not g and any(r[3] == "group" and r[4] == g.id for r in other.rules):
                raise ApiError(400, "DependencyViolation",
                               "resource %s has a dependent object (a rule of %s)" % (g.id, other.id))
        del self.groups[g.id]
        self.tags.pop(g.id, None)
        return {}

    # ---- instances -----------------------------------------------------

    def _decode_user_data(self, raw):
        if raw is None:
            return b""
        try:
            data = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise invalid("Invalid BASE64 encoding of user data.") from None
        if len(data) > USER_DATA_LIMIT:
            raise invalid("User data is limited to %d bytes" % USER_DATA_LIMIT)
        if data[:2] == b"\x1f\x8b":
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError) as e:
                raise invalid("User data is gzip'd but does not decompress: %s" % e) from None
        return data

    def RunInstances(self, p):
        token = p.get("ClientToken")
        fingerprint = json.dumps({k: v for k, v in p.items() if k != "ClientToken"}, sort_keys=True, default=str)
        if token:
            if len(token) > 64:
                raise invalid("Value (%s) for parameter clientToken is invalid. Length exceeds 64" % token)
            if token in self.tokens:
                rid, fp = self.tokens[token]
                if fp != fingerprint:
                    raise ApiError(400, "IdempotentParameterMismatch",
                                   "Arguments on this idempotent request are inconsistent with arguments "
                                   "used in previous request(s).")
                return self._reservation_out(rid)
        image_id = p.get("ImageId")
        if not image_id:
            raise ApiError(400, "MissingParameter", "The request must contain the parameter ImageId")
        if not any(i["ImageId"] == image_id for i in self.images) and not self.accept_unknown_images:
            raise not_found("InvalidAMIID.NotFound", "The image id '[%s]' does not exist" % image_id)
        itype = p.get("InstanceType", "m1.small")
        allowed = self.instance_types or self.model_instance_types
        if itype not in allowed:
            raise invalid("Invalid value '%s' for InstanceType." % itype)
        lo, hi = p["MinCount"], p["MaxCount"]
        if lo < 1 or hi < lo:
            raise invalid("MinCount (%d) must be at least 1 and at most MaxCount (%d)" % (lo, hi))
        zone = (p.get("Placement") or {}).get("AvailabilityZone")
        if zone:
            z = next((z for z in self.zones if z["name"] == zone), None)
            if z is None:
                raise invalid("Invalid availability zone: [%s]" % zone)
            if z["state"] != "available":
                raise ApiError(500, "InsufficientInstanceCapacity",
                               "We currently do not have sufficient %s capacity in the Availability Zone "
                               "you requested (%s)." % (itype, zone))
        else:
            zone = next((z["name"] for z in self.zones if z["state"] == "available"), self.zones[0]["name"])
        groups = []
        for gid in p.get("SecurityGroupIds") or []:
            if gid not in self.groups:
                raise self._group_missing(gid=gid)
            groups.append(gid)
        for name in p.get("SecurityGroups") or []:
            g = self._group_by_name(name)
            if g is None:
                raise self._group_missing(name=name)
            groups.append(g.id)
        user_data = self._decode_user_data(p.get("UserData"))
        tags = {}
        for spec in p.get("TagSpecifications") or []:
            if spec.get("ResourceType") in (None, "instance"):
                for t in spec.get("Tags") or []:
                    tags[t["Key"]] = t.get("Value", "")
        live = sum(1 for i in self.instances.values() if i.state in ("pending", "running"))
        room = self.max_instances - live
        if room < lo:
            raise ApiError(400, "InstanceLimitExceeded",
                           "Your quota allows for %d more running instance(s). You requested at least %d"
                           % (max(room, 0), lo))
        count = min(hi, room)
        rid = self.next_id("r")
        ids = []
        for n in range(count):
            iid = self.next_id("i")
            self.launch_index += 1
            ud_file = os.path.join(self.data_dir, "user-data", iid)
            fd = os.open(ud_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(user_data)
            inst = Instance(
                id=iid, reservation=rid, image_id=image_id, type=itype, zone=zone, groups=list(groups),
                state="pending", reason="", state_reason=None, launch_time=now_utc(), ami_index=n,
                index=self.launch_index, token=token or "", user_data_file=ud_file,
                user_data_size=len(user_data), address=None, ticks=0, fate=self.fates.pop(0) if self.fates else None,
                launch=None, terminate=None, block_devices=copy.deepcopy(p.get("BlockDeviceMappings") or []),
                key_name=p.get("KeyName"))
            self.instances[iid] = inst
            if tags:
                self.tags[iid] = dict(tags)
            if self.launcher.enabled and self.launcher_on:
                inst.launch = self.launcher.launch(inst)
            else:
                inst.address = self._pool_address()
            ids.append(iid)
        self.reservations[rid] = {"ids": ids, "groups": list(groups)}
        if token:
            self.tokens[token] = (rid, fingerprint)
        self.log("RunInstances: reservation %s, instances %s in %s" % (rid, " ".join(ids), zone))
        return self._reservation_out(rid)

    def _pool_address(self):
        addr = self.address_pool[self.pool_used % len(self.address_pool)]
        self.pool_used += 1
        return addr

    def advance(self):
        """One tick of instance life (a call of clock_actions: DescribeInstances,
        and DeleteSecurityGroup, the other way a client waits for an instance
        to go: retrying DependencyViolation)."""
        for inst in self.instances.values():
            inst.ticks += 1
            if inst.state == "pending":
                if inst.launch is not None:
                    if inst.launch.failed:
                        self._terminated(inst, "Server.InternalError", "launcher failed: " + inst.launch.failed)
                        continue
                    if inst.launch.address:
                        inst.address = inst.launch.address
                if inst.ticks > self.pending_describes and inst.address:
                    if inst.fate == "terminated":
                        self._terminated(inst, "Server.InternalError", "Server.InternalError: Internal error on launch")
                        if self.launcher.enabled and inst.launch is not None:
                            inst.terminate = self.launcher.terminate(inst)
                    else:
                        inst.state = "running"
            elif inst.state == "shutting-down":
                done = inst.terminate is None or inst.terminate.done
                if done and inst.ticks > inst.term_tick + self.terminating_describes:
                    inst.state = "terminated"

    def _terminated(self, inst, code, message):
        inst.state = "terminated"
        inst.state_reason = {"Code": code, "Message": message}
        inst.reason = message

    def _instance_out(self, inst):
        running = inst.state in ("running", "stopping", "stopped") or (
            inst.state == "shutting-down" and inst.address)
        out = {"InstanceId": inst.id, "ImageId": inst.image_id, "InstanceType": inst.type,
               "State": {"Code": STATE_CODES[inst.state], "Name": inst.state},
               "StateTransitionReason": inst.reason, "AmiLaunchIndex": inst.ami_index,
               "LaunchTime": inst.launch_time, "Placement": {"AvailabilityZone": inst.zone, "Tenancy": "default"},
               "Monitoring": {"State": "disabled"}, "Architecture": "x86_64", "Hypervisor": "xen",
               "RootDeviceType": "ebs", "RootDeviceName": "/dev/sda1", "VirtualizationType": "hvm",
               "ClientToken": inst.token, "EbsOptimized": False, "PrivateDnsName": "", "PublicDnsName": "",
               "SecurityGroups": [{"GroupId": g, "GroupName": self.groups[g].name if g in self.groups else ""}
                                  for g in inst.groups],
               "Tags": self._tag_list(inst.id)}
        if inst.key_name:
            out["KeyName"] = inst.key_name
        if inst.state_reason:
            out["StateReason"] = inst.state_reason
        if running and inst.address:
            out["PrivateIpAddress"] = inst.address
            out["PublicIpAddress"] = inst.address
        devices = []
        for n, bd in enumerate(inst.block_devices):
            if bd.get("Ebs") is not None:
                devices.append({"DeviceName": bd.get("DeviceName", "/dev/sda1"),
                                "Ebs": {"VolumeId": "vol-%017x" % (int(inst.id[2:], 16) * 16 + n),
                                        "Status": "attached", "DeleteOnTermination": True,
                                        "AttachTime": inst.launch_time}})
        out["BlockDeviceMappings"] = devices
        return out

    def _reservation_out(self, rid):
        r = self.reservations[rid]
        return {"ReservationId": rid, "OwnerId": self.owner_id,
                "Groups": [{"GroupId": g, "GroupName": self.groups[g].name if g in self.groups else ""}
                           for g in r["groups"]],
                "Instances": [self._instance_out(self.instances[i]) for i in r["ids"]]}

    def _check_instance_ids(self, ids):
        for i in ids or []:
            if not (i.startswith("i-") and all(c in "0123456789abcdef" for c in i[2:]) and len(i) > 2):
                raise ApiError(400, "InvalidInstanceID.Malformed", 'Invalid id: "%s"' % i)
        missing = [i for i in ids or [] if i not in self.instances]
        if missing:
            raise not_found("InvalidInstanceID.NotFound",
                            "The instance ID%s '%s' do%s not exist" % ("s" if len(missing) > 1 else "",
                                                                      ", ".join(missing),
                                                                      "" if len(missing) > 1 else "es"))

    def DescribeInstances(self, p):
        ids = p.get("InstanceIds")
        self._check_instance_ids(ids)
        filters = filters_of(p)
        known = {"instance-state-name", "instance-state-code", "instance-id", "instance-type", "image-id",
                 "availability-zone", "reservation-id", "instance.group-name", "instance.group-id",
                 "group-name", "group-id", "tag-key", "tag-value", "client-token", "private-ip-address",
                 "ip-address"}
        self._check_filters(filters, known)
        by_res = {}
        order = []
        for inst in self.instances.values():
            if ids and inst.id not in ids:
                continue
            names = [self.groups[g].name for g in inst.groups if g in self.groups]
            addr = inst.address if inst.state in ("running", "shutting-down") else None
            vals = {"instance-state-name": [inst.state], "instance-state-code": [str(STATE_CODES[inst.state])],
                    "instance-id": [inst.id], "instance-type": [inst.type], "image-id": [inst.image_id],
                    "availability-zone": [inst.zone], "reservation-id": [inst.reservation],
                    "instance.group-name": names, "group-name": names, "instance.group-id": inst.groups,
                    "group-id": inst.groups, "client-token": [inst.token], "private-ip-address": [addr],
                    "ip-address": [addr]}
            ok = True
            for n, v in filters:
                if n in vals:
                    ok = any(matches(v, x) for x in vals[n])
                else:
                    ok = self._tag_filter(n, v, inst.id)
                if not ok:
                    break
            if ok:
                if inst.reservation not in by_res:
                    by_res[inst.reservation] = []
                    order.append(inst.reservation)
                by_res[inst.reservation].append(inst)
        out = []
        for rid in order:
            r = self._reservation_out(rid)
            keep = {i.id for i in by_res[rid]}
            r["Instances"] = [i for i in r["Instances"] if i["InstanceId"] in keep]
            out.append(r)
        return {"Reservations": out}

    def TerminateInstances(self, p):
        ids = p["InstanceIds"]
        self._check_instance_ids(ids)
        out = []
        for i in ids:
            inst = self.instances[i]
            prev = inst.state
            if inst.state not in ("shutting-down", "terminated"):
                inst.state = "shutting-down"
                inst.term_tick = inst.ticks
                inst.reason = "User initiated (%s)" % now_utc().strftime("%Y-%m-%d %H:%M:%S GMT")
                inst.state_reason = {"Code": "Client.UserInitiatedShutdown",
                                     "Message": "Client.UserInitiatedShutdown: User initiated shutdown"}
                if inst.launch is not None:
                    inst.terminate = self.launcher.terminate(inst)
            out.append({"InstanceId": i, "PreviousState": {"Code": STATE_CODES[prev], "Name": prev},
                        "CurrentState": {"Code": STATE_CODES[inst.state], "Name": inst.state}})
        return {"TerminatingInstances": out}

    # ---- tags ----------------------------------------------------------

    def _resource_type(self, rid):
        if rid in self.instances:
            return "instance"
        if rid in self.groups:
            return "security-group"
        if any(i["ImageId"] == rid for i in self.images):
            return "image"
        return None

    def CreateTags(self, p):
        for rid in p["Resources"]:
            if self._resource_type(rid) is None:
                if rid.startswith("i-"):
                    raise not_found("InvalidInstanceID.NotFound", "The instance ID '%s' does not exist" % rid)
                if rid.startswith("sg-"):
                    raise self._group_missing(gid=rid)
                raise invalid("The ID '%s' is not valid" % rid)
        for rid in p["Resources"]:
            for t in p["Tags"]:
                self.tags.setdefault(rid, {})[t["Key"]] = t.get("Value", "")
        return {}

    def DeleteTags(self, p):
        for rid in p["Resources"]:
            tags = self.tags.get(rid, {})
            for t in p.get("Tags") or [{"Key": k} for k in list(tags)]:
                if t["Key"] in tags and ("Value" not in t or tags[t["Key"]] == t["Value"]):
                    del tags[t["Key"]]
        return {}

    def DescribeTags(self, p):
        filters = filters_of(p)
        self._check_filters(filters, {"resource-id", "resource-type", "key", "value"})
        out = []
        for rid in sorted(self.tags):
            rtype = self._resource_type(rid)
            if rtype is None:
                continue
            for k, v in sorted(self.tags[rid].items()):
                vals = {"resource-id": rid, "resource-type": rtype, "key": k, "value": v}
                if all(matches(fv, vals[n]) if n in vals else False for n, fv in filters):
                    out.append({"ResourceId": rid, "ResourceType": rtype, "Key": k, "Value": v})
        return {"Tags": out}

    # ---- what the admin endpoint shows ---------------------------------

    def snapshot(self):
        return {
            "region": self.region,
            "groups": [dict(self._group_out(g), Rules=[list(r) for r in g.rules]) for g in self.groups.values()],
            "instances": [{
                "id": i.id, "state": i.state, "reservation": i.reservation, "image_id": i.image_id,
                "type": i.type, "zone": i.zone, "groups": i.groups, "address": i.address,
                "tags": self.tags.get(i.id, {}), "client_token": i.token, "user_data_file": i.user_data_file,
                "user_data_size": i.user_data_size, "index": i.index, "fate": i.fate,
                "block_devices": i.block_devices, "state_reason": i.state_reason,
                "launcher": i.launch.status() if i.launch else None,
                "terminator": i.terminate.status() if i.terminate else None,
            } for i in self.instances.values()],
            "client_tokens": {t: v[0] for t, v in self.tokens.items()},
            "tags": self.tags,
        }
