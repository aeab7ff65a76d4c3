#!/usr/bin/env python3
"""A Service Management API ("classic" Azure) test server for the azure
provider (providers.md 7; README.md beside this file). HTTPS with a test CA;
a client certificate is required and must be the subscription's management
certificate. Request bodies are checked by azure.servicemanagement (Debian
python3-azure) in smcheck.py: a body it cannot read the same way is a 400
naming why. Deployments are real test hosts (the -launcher/-terminator
programs of tests/servers/goose, env INSTANCE_ID, USER_DATA_FILE,
INSTANCE_INDEX, INSTANCE_NAME). /_test/ is the control API (plain JSON,
the same client certificate)."""

import argparse
import base64
import gzip
import hashlib
import json
import os
import socket
import ssl
import struct
import sys
import threading
import time
import uuid
import xml.sax.saxutils as su
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "ec2"))
import smcheck  # noqa: E402
import ec2launch  # noqa: E402

NS = "http://schemas.microsoft.com/windowsazure"
LOCK = threading.RLock()


def esc(s):
    return su.escape(str(s))


def b64(s):
    return base64.b64encode(s.encode()).decode()


class Inst:
    """What ec2launch.Launcher needs of an instance."""

    def __init__(self, iid, index, name, user_data_file):
        self.id, self.index, self.ami_index, self.name = iid, index, 0, name
        self.user_data_file = user_data_file
        self.address = None
        self.launch = None
        self.terminate = None
        self.state = "pending"


class Launcher(ec2launch.Launcher):
    def _env(self, inst):
        env = super()._env(inst)
        env["INSTANCE_NAME"] = inst.name
        return env


class State:
    def __init__(self, a):
        self.a = a
        self.groups = {}        # name -> dict
        self.services = {}      # name -> dict (deployments: name -> dict)
        self.netconf = None     # bytes or None (404)
        self.seeded_sites = set()
        self.ops = {}           # id -> {status, polls, done(fn) or None, error}
        self.calls = []
        self.faults = []
        self.race = None        # bytes put in place just before the next network PUT (or GET)
        self.race_at = "put"
        self.race_skip = 0
        self.index = 0
        self.insts = []
        self.launcher = Launcher(a.launcher, a.terminator, self.log)
        self.launcher_on = True
        self.pool = ["127.0.100.%d" % i for i in range(1, 255)]
        self.pool_used = 0

    def pool_address(self):
        addr = self.pool[self.pool_used % len(self.pool)]
        self.pool_used += 1
        return addr

    def log(self, line):
        sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def netconf_etag(self):
        return '"%s"' % hashlib.sha256(self.netconf).hexdigest()[:16] if self.netconf is not None else None


class PoolJob:
    """A role's "launch" with launcher off: a pool address, no host."""

    def __init__(self, address):
        self.address, self.failed, self.done, self.code = address, None, True, 0

    def status(self):
        return {"pid": None, "address": self.address, "failed": None, "done": True, "exit_code": 0,
                "output": [], "pool": True}


class Fail(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_xml(code, message):
    return ('<Error xmlns="%s" xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><Code>%s</Code>'
            '<Message>%s</Message></Error>' % (NS, esc(code), esc(message))).encode()


def call_key(method, rel):
    """A call's key with its names generalised: the cloud service (juju-ENV-xxxx)
    as {svc}, an operation id as {id}, an affinity group as {ag}."""
    parts = rel.split("/")
    out = []
    for i, p in enumerate(parts):
        prev = parts[i - 1] if i > 0 else ""
        if prev == "operations" and p != "isavailable":
            p = "{id}"
        elif prev in ("hostedservices", "isavailable") and p != "operations":
            p = "{svc}"
        elif prev == "deployments":
            p = "{dep}"
        elif prev == "affinitygroups":
            p = "{ag}"
        elif prev == "storageservices":
            p = "{account}"
        out.append(p)
    return method + " " + "/".join(out)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "azure-mgmt-test"

    def log_message(self, fmt, *args):
        ST.log("%s %s" % (self.address_string(), fmt % args))

    def _send(self, status, body=b"", ctype="application/xml; charset=utf-8", headers=None):
        call = getattr(self, "_call", None)
        if call is not None:  # the journal's entry of this request: answered
            with LOCK:
                call["status"], call["pending"] = status, False
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-ms-request-id", (headers or {}).pop("x-ms-request-id", None) or uuid.uuid4().hex)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _client_ok(self):
        der = self.connection.getpeercert(binary_form=True)
        return der is not None and der == ST.a.client_der

    def _dispatch(self):
        self._call = None
        path, _, query = self.path.partition("?")
        body = self._body()
        if path.startswith("/_test/"):
            return self._control(path[len("/_test/"):], body)
        if not self._client_ok():
            return self._send(403, error_xml("ForbiddenError", "The server failed to authenticate the request. "
                                             "Verify that the certificate is valid and is associated with this "
                                             "subscription."))
        parts = [p for p in path.split("/") if p]
        if not parts or parts[0] != ST.a.subscription:
            return self._send(403, error_xml("ForbiddenError", "The subscription is not associated with the "
                                             "management certificate."))
        rel = "/" + "/".join(parts[1:])
        # journaled on arrival (pending, no status) so a held call is seen
        call = {"method": self.command, "path": rel, "query": query, "x-ms-version": self.headers.get("x-ms-version"),
                "status": None, "pending": True, "fault": None}
        with LOCK:
            ST.calls.append(call)
            fault = None
            for f in ST.faults:
                if f["count"] != 0 and self._fault_matches(f, self.command, rel):
                    if f.get("skip", 0) > 0:
                        f["skip"] -= 1
                        continue
                    if f["count"] > 0:
                        f["count"] -= 1
                    fault = f
                    break
            if fault:
                call["fault"] = fault["kind"]
        self._call = call
        if fault:
            kind = fault["kind"]
            if kind == "delay":
                time.sleep(float(fault.get("seconds", 5)))
            if kind == "reset" or (kind == "delay" and fault.get("reset")):
                with LOCK:
                    call["pending"] = False
                self.close_connection = True
                # a TCP reset (SO_LINGER 0), not an orderly close
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
                return
            if kind == "delay":
                pass
            elif kind == "throttle":
                return self._send(503, error_xml("ServerBusy", "The server is busy (test fault)"))
            elif kind == "error":
                return self._send(int(fault.get("status", 500)),
                                  error_xml(fault.get("code") or "InternalError",
                                            fault.get("message") or "test fault on " + rel))
        if not self.headers.get("x-ms-version"):
            return self._send(400, error_xml("MissingOrIncorrectVersionHeader", "The versioning header is not "
                                             "specified or was specified incorrectly."))
        try:
            with LOCK:
                return self._route(self.command, parts[1:], query, body)
        except smcheck.BodyError as e:
            return self._send(400, error_xml("BadRequest", "azure.servicemanagement cannot read the body: %s" % e))
        except Fail as e:
            return self._send(e.status, error_xml(e.code, e.message))

    @staticmethod
    def _fault_matches(f, method, rel):
        """op: an exact "METHOD template" key (calls' keys: ids as {svc},
        {id}); match: a substring of "METHOD path"."""
        if f.get("op"):
            return f["op"] == call_key(method, rel)
        return f["match"] in (method + " " + rel)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = lambda self: self._dispatch()

    # -------------------------------------------------------------- ops --
    def _async(self, done=None, polls=None, error=None, wait=None):
        oid = uuid.uuid4().hex
        ST.ops[oid] = {"polls": ST.a.op_polls if polls is None else polls, "done": done, "error": error,
                       "wait": wait, "status": "InProgress"}
        self._send(202, b"", headers={"x-ms-request-id": oid})

    def _operation(self, oid):
        op = ST.ops.get(oid)
        if op is None:
            raise Fail(404, "ResourceNotFound", "The operation %s was not found." % oid)
        if op["status"] == "InProgress":
            waiting = op["wait"] and op["wait"]()
            if op["polls"] > 0:
                op["polls"] -= 1
            elif not waiting:
                if op["error"]:
                    op["status"] = "Failed"
                else:
                    op["status"] = "Succeeded"
                    if op["done"]:
                        op["done"]()
            if isinstance(waiting, str):  # a failure reason
                op["status"], op["error"] = "Failed", ("InternalError", waiting)
        err = ""
        code = 200
        if op["status"] == "Failed":
            code = 500
            err = "<Error><Code>%s</Code><Message>%s</Message></Error>" % (esc(op["error"][0]), esc(op["error"][1]))
        doc = ('<Operation xmlns="%s" xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><ID>%s</ID>'
               '<Status>%s</Status><HttpStatusCode>%d</HttpStatusCode>%s</Operation>'
               % (NS, oid, op["status"], code, err))
        assert smcheck.self_check_operation(doc) == op["status"]
        self._send(200, doc.encode())

    # ------------------------------------------------------------ route --
    def _route(self, m, p, query, body):
        if p == ["locations"] and m == "GET":
            items = "".join("<Location><Name>%s</Name><DisplayName>%s</DisplayName><AvailableServices>"
                            "<AvailableService>Compute</AvailableService></AvailableServices>"
                            "<ComputeCapabilities><VirtualMachinesRoleSizes><RoleSize>Small</RoleSize>"
                            "<RoleSize>Medium</RoleSize></VirtualMachinesRoleSizes></ComputeCapabilities></Location>"
                            % (esc(n), esc(n)) for n in ST.a.locations)
            return self._send(200, ('<Locations xmlns="%s">%s</Locations>' % (NS, items)).encode())
        if p[:1] == ["operations"] and len(p) == 2 and m == "GET":
            return self._operation(p[1])
        if p[:1] == ["affinitygroups"]:
            return self._affinity(m, p[1:], body)
        if p[:3] == ["services", "networking", "media"]:
            return self._netconf(m, body)
        if p[:3] == ["services", "storageservices", ST.a.storage_account] and p[3:] == ["keys"] and m == "GET":
            return self._send(200, ('<StorageService xmlns="%s"><Url>https://management.core.windows.net/%s/'
                                    'services/storageservices/%s</Url><StorageServiceKeys><Primary>%s</Primary>'
                                    '<Secondary>%s</Secondary></StorageServiceKeys></StorageService>'
                                    % (NS, ST.a.subscription, esc(ST.a.storage_account), ST.a.storage_key,
                                       ST.a.storage_key)).encode())
        if p[:2] == ["services", "hostedservices"]:
            return self._services(m, p[2:], query, body)
        raise Fail(404, "ResourceNotFound", "The requested resource %s %s does not exist." % (m, "/".join(p)))

    def _affinity(self, m, rest, body):
        if m == "POST" and not rest:
            g = smcheck.affinity_group(body)
            if g["location"] not in ST.a.locations:
                raise Fail(400, "BadRequest", "The location constraint is not valid")
            if g["name"] in ST.groups:
                raise Fail(409, "ConflictError", "An affinity group with the name %s already exists." % g["name"])
            ST.groups[g["name"]] = g
            return self._send(201)
        if len(rest) == 1 and m == "DELETE":
            name = rest[0]
            if name not in ST.groups:
                raise Fail(404, "ResourceNotFound", "The affinity group does not exist.")
            if any(s["affinity_group"] == name for s in ST.services.values()):
                raise Fail(400, "BadRequest", "The affinity group %s has hosted services." % name)
            del ST.groups[name]
            return self._send(200)
        if len(rest) == 1 and m == "GET":
            g = ST.groups.get(rest[0])
            if not g:
                raise Fail(404, "ResourceNotFound", "The affinity group does not exist.")
            return self._send(200, ('<AffinityGroup xmlns="%s"><Name>%s</Name><Label>%s</Label><Location>%s'
                                    '</Location></AffinityGroup>' % (NS, esc(g["name"]), b64(g["label"]),
                                                                     esc(g["location"]))).encode())
        raise Fail(404, "ResourceNotFound", "no such affinity group operation")

    def _netconf(self, m, body):
        if m == "GET":
            if ST.race is not None and ST.race_at == "get":
                if ST.race_skip == 0:  # another writer between the client's read and re-read
                    ST.netconf, ST.race = ST.race, None
                else:
                    ST.race_skip -= 1
            if ST.netconf is None:
                raise Fail(404, "ResourceNotFound", "The network configuration does not exist.")
            return self._send(200, ST.netconf, ctype="application/octet-stream",
                              headers={"ETag": ST.netconf_etag()})
        if m == "PUT":
            sites = smcheck.network_configuration(body)
            for name, s in sites.items():
                if s["location"] and s["location"] not in ST.a.locations:
                    raise Fail(400, "BadRequest", "The location %s of virtual network %s is not valid."
                               % (s["location"], name))
            if ST.race is not None and ST.race_at == "put":  # another writer got there first
                ST.netconf, ST.race = ST.race, None
            want = self.headers.get("If-Match")
            if want and want != ST.netconf_etag():
                raise Fail(412, "ConditionNotMet", "The network configuration changed since it was read.")
            old = smcheck.network_configuration(ST.netconf) if ST.netconf is not None else {}
            for name in old:
                if name not in sites and any(d.get("virtual_network") == name for s in ST.services.values()
                                             for d in s["deployments"].values()):
                    raise Fail(400, "BadRequest", "The virtual network %s is currently in use." % name)
            new = body

            def apply():
                ST.netconf = new
            return self._async(done=apply)
        raise Fail(405, "MethodNotAllowed", "network configuration: GET or PUT")

    def _service_xml(self, s, detail):
        deps = ""
        if detail:
            deps = "<Deployments>%s</Deployments>" % "".join(self._deployment_xml(s, d)
                                                              for d in s["deployments"].values())
        return ('<HostedService xmlns="%s"><Url>https://management.core.windows.net/%s/services/hostedservices/%s'
                '</Url><ServiceName>%s</ServiceName><HostedServiceProperties><Description>%s</Description>'
                '<AffinityGroup>%s</AffinityGroup><Label>%s</Label><Status>Created</Status>'
                '</HostedServiceProperties>%s</HostedService>'
                % (NS, ST.a.subscription, esc(s["name"]), esc(s["name"]), esc(s["description"] or ""),
                   esc(s["affinity_group"] or ""), b64(s["label"]), deps))

    def _deployment_xml(self, s, d, root=False):
        inst = d["inst"]
        addr = inst.launch.address if inst.launch is not None else None
        status = "Running" if addr else "Provisioning"
        ip = "<IPAddress>%s</IPAddress>" % addr if addr else ""
        eps = "".join("<InstanceEndpoint><Name>%s</Name>%s<PublicPort>%d</PublicPort><LocalPort>%d</LocalPort>"
                      "<Protocol>%s</Protocol></InstanceEndpoint>"
                      % (esc(e["name"]), "<Vip>%s</Vip>" % addr if addr else "", e["port"], e["local_port"],
                         esc(e["protocol"])) for e in d["endpoints"])
        vips = "<VirtualIPs><VirtualIP><Address>%s</Address></VirtualIP></VirtualIPs>" % addr if addr else ""
        return ('<Deployment%s><Name>%s</Name><DeploymentSlot>%s</DeploymentSlot><Status>%s</Status>'
                '<Label>%s</Label><Url>http://%s.cloudapp.net/</Url><RoleInstanceList><RoleInstance>'
                '<RoleName>%s</RoleName><InstanceName>%s</InstanceName><InstanceStatus>%s</InstanceStatus>'
                '<InstanceSize>%s</InstanceSize>%s<InstanceEndpoints>%s</InstanceEndpoints>'
                '<PowerState>%s</PowerState><HostName>%s</HostName></RoleInstance></RoleInstanceList>'
                '<RoleList><Role><RoleName>%s</RoleName><RoleType>PersistentVMRole</RoleType></Role></RoleList>'
                '<VirtualNetworkName>%s</VirtualNetworkName>%s</Deployment>'
                % (' xmlns="%s"' % NS if root else "", esc(d["name"]), esc(d["slot"]), status, esc(d["label"] or ""),
                   esc(s["name"]), esc(d["role"]), esc(d["role"]), "ReadyRole" if addr else "Provisioning",
                   esc(d["role_size"]), ip, eps, "Started" if addr else "Starting", esc(d["host_name"] or ""),
                   esc(d["role"]), esc(d["virtual_network"] or ""), vips))

    def _services(self, m, rest, query, body):
        if rest[:2] == ["operations", "isavailable"] and len(rest) == 3 and m == "GET":
            free = rest[2] not in ST.services
            return self._send(200, ('<AvailabilityResponse xmlns="%s"><Result>%s</Result></AvailabilityResponse>'
                                    % (NS, "true" if free else "false")).encode())
        if not rest and m == "POST":
            s = smcheck.hosted_service(body)
            if s["name"] in ST.services:
                raise Fail(409, "ConflictError", "The specified DNS name is already taken.")
            if s["affinity_group"] and s["affinity_group"] not in ST.groups:
                raise Fail(400, "BadRequest", "The affinity group name is empty or was not specified.")
            s["deployments"] = {}
            ST.services[s["name"]] = s
            return self._send(201)
        if not rest and m == "GET":
            items = "".join(self._service_xml(s, False).replace(' xmlns="%s"' % NS, "")
                            for s in ST.services.values())
            return self._send(200, ('<HostedServices xmlns="%s">%s</HostedServices>' % (NS, items)).encode())
        if not rest:
            raise Fail(405, "MethodNotAllowed", "hosted services")
        s = ST.services.get(rest[0])
        if s is None:
            raise Fail(404, "ResourceNotFound", "The hosted service %s does not exist." % rest[0])
        if len(rest) == 1:
            if m == "GET":
                return self._send(200, self._service_xml(s, "embed-detail=true" in query).encode())
            if m == "DELETE":
                if s["deployments"] and "comp=media" not in query:
                    raise Fail(409, "ConflictError", "The hosted service has deployments.")
                for d in list(s["deployments"].values()):
                    self._terminate(d)
                del ST.services[s["name"]]
                if "comp=media" in query:
                    return self._async()
                return self._send(200)
        if rest[1:2] == ["deployments"]:
            if len(rest) == 2 and m == "POST":
                return self._create_deployment(s, body)
            d = s["deployments"].get(rest[2]) if len(rest) == 3 else None
            if d is None:
                raise Fail(404, "ResourceNotFound", "No deployment %s." % "/".join(rest[2:]))
            if m == "GET":
                return self._send(200, self._deployment_xml(s, d, True).encode())
            if m == "DELETE":
                job = self._terminate(d)
                del s["deployments"][d["name"]]
                return self._async(wait=lambda: job is not None and not job.done)
        raise Fail(404, "ResourceNotFound", "no such hosted service operation")

    def _create_deployment(self, s, body):
        d = smcheck.deployment(body)
        if s["deployments"]:
            raise Fail(409, "ConflictError", "A deployment already exists in the production slot.")
        if d["virtual_network"]:
            sites = smcheck.network_configuration(ST.netconf) if ST.netconf is not None else {}
            if d["virtual_network"] not in sites:
                raise Fail(400, "BadRequest", "The virtual network %s does not exist." % d["virtual_network"])
        try:
            ud = gzip.decompress(d["custom_data"])
        except Exception:
            raise Fail(400, "BadRequest", "CustomData is not base64(gzip(...)) (Juju's encoding)")
        ST.index += 1
        iid = "%s-%s" % (s["name"], d["role"])
        f = os.path.join(ST.a.dir, "userdata-%d" % ST.index)
        fd = os.open(f, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(ud)
        inst = Inst(iid, ST.index, d["role"], f)
        d["inst"] = inst
        d["user_data"] = ud.decode("utf-8", "replace")
        s["deployments"][d["name"]] = d
        ST.insts.append(inst)
        if ST.launcher.enabled and ST.launcher_on:
            inst.launch = ST.launcher.launch(inst)
        elif not ST.launcher_on:  # an address nobody listens on: running at once
            inst.launch = PoolJob(ST.pool_address())

        def waiting():
            j = inst.launch
            if j is None:
                return False
            if j.failed:
                return "the role failed to start: " + j.failed
            return j.address is None
        return self._async(wait=waiting)

    def _terminate(self, d):
        inst = d["inst"]
        if inst.terminate is None and inst.launch is not None and not isinstance(inst.launch, PoolJob):
            inst.address = inst.launch.address
            inst.terminate = ST.launcher.terminate(inst)
        inst.state = "terminated"
        return inst.terminate

    # ---------------------------------------------------------- control --
    def _json(self, v, status=200):
        self._send(status, json.dumps(v).encode(), ctype="application/json")

    def _leftovers(self):
        sites = smcheck.network_configuration(ST.netconf) if ST.netconf is not None else {}
        return {"affinity_groups": sorted(ST.groups), "hosted_services": sorted(ST.services),
                "deployments": sorted(d["name"] for s in ST.services.values() for d in s["deployments"].values()),
                "networks": sorted(n for n in sites if n not in ST.seeded_sites)}

    def _control(self, what, body):
        req = json.loads(body or b"{}")
        with LOCK:
            if what == "state":
                return self._json({"affinity_groups": ST.groups, "services": {
                    n: {"affinity_group": s["affinity_group"], "label": s["label"], "deployments": {
                        dn: {"role": d["role"], "user_data": d["user_data"], "endpoints": d["endpoints"],
                             "role_size": d["role_size"], "image": d["image"], "user_name": d["user_name"],
                             "virtual_network": d["virtual_network"],
                             "launch": d["inst"].launch.status() if d["inst"].launch else None}
                        for dn, d in s["deployments"].items()}} for n, s in ST.services.items()},
                    "netconf": ST.netconf.decode() if ST.netconf is not None else None,
                    "hosts": [{"id": i.id, "launch": i.launch.status() if i.launch else None,
                               "terminate": i.terminate.status() if i.terminate else None} for i in ST.insts]})
            if what == "leftovers":
                return self._json(self._leftovers())
            if what == "calls":
                return self._json([dict(c, key=call_key(c["method"], c["path"])) for c in ST.calls])
            if what == "clear_calls":
                ST.calls = []
                return self._json({})
            if what == "fault":
                ST.faults.append({"match": req.get("match"), "op": req.get("op"), "kind": req.get("kind", "error"),
                                  "reset": bool(req.get("reset")), "skip": int(req.get("skip", 0)),
                                  "count": int(req.get("count", 1)), "status": req.get("status", 500),
                                  "code": req.get("code"), "message": req.get("message"),
                                  "seconds": req.get("seconds", 5)})
                return self._json({})
            if what == "clear_faults":
                ST.faults = []
                return self._json({})
            if what == "netconf":  # seed the document (its sites are not leftovers)
                doc = req.get("doc")
                ST.netconf = doc.encode() if doc is not None else None
                ST.seeded_sites = set(smcheck.network_configuration(ST.netconf)) if ST.netconf else set()
                return self._json({})
            if what == "race":  # the document another writer puts just before our next PUT,
                # or (at = "get") before the answer to the GET after the next one
                ST.race = req["doc"].encode()
                ST.race_at = req.get("at", "put")
                ST.race_skip = 1
                ST.seeded_sites |= set(smcheck.network_configuration(ST.race))
                return self._json({})
            if what == "config":
                if "op_polls" in req:
                    ST.a.op_polls = int(req["op_polls"])
                if "launcher" in req:
                    ST.launcher_on = bool(req["launcher"])
                if req.get("address_pool"):
                    ST.pool, ST.pool_used = list(req["address_pool"]), 0
                return self._json({})
            if what == "reset":
                ST.groups, ST.services, ST.ops, ST.faults, ST.race = {}, {}, {}, [], None
                return self._json({})
        if what == "settle":  # every terminator done
            deadline = time.time() + float(req.get("timeout", 30))
            while time.time() < deadline:
                with LOCK:
                    busy = [i for i in ST.insts if i.terminate is not None and not i.terminate.done]
                if not busy:
                    return self._json({"settled": True})
                time.sleep(0.2)
            return self._json({"settled": False})
        return self._json({"error": "unknown control " + what}, 404)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--subscription", required=True)
    ap.add_argument("--server-cert", required=True)
    ap.add_argument("--server-key", required=True)
    ap.add_argument("--client-cert", required=True, help="the subscription's management certificate (PEM)")
    ap.add_argument("--trust", action="append", default=[],
                    help="another client certificate the TLS layer accepts (then refused with 403, as Azure does)")
    ap.add_argument("--storage-account", default="devstoreaccount1")
    ap.add_argument("--storage-key", default=os.environ.get("AZURE_MGMT_STORAGE_KEY", ""),
                    help="default $AZURE_MGMT_STORAGE_KEY (a command line is readable by every user)")
    ap.add_argument("--location", action="append", dest="locations")
    ap.add_argument("--op-polls", type=int, default=1)
    ap.add_argument("--launcher", default="", help="shell command line run per deployment's role")
    ap.add_argument("--terminator", default="", help="shell command line run when it is deleted")
    a = ap.parse_args()
    a.launcher = ["/bin/sh", "-c", "exec " + a.launcher] if a.launcher else None
    a.terminator = ["/bin/sh", "-c", "exec " + a.terminator] if a.terminator else None
    a.locations = a.locations or ["West US", "East US"]
    with open(a.client_cert) as f:
        pem = f.read()
    end = "-----END CERTIFICATE-----"
    a.client_der = ssl.PEM_cert_to_DER_cert(pem[pem.index("-----BEGIN CERTIFICATE-----"):pem.index(end) + len(end)])
    global ST
    ST = State(a)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.server_cert, a.server_key)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(a.client_cert)
    for t in a.trust:
        ctx.load_verify_locations(t)
    srv = ThreadingHTTPServer((a.host, a.port), Handler)
    srv.daemon_threads = True
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    try:
        srv.serve_forever()
    finally:
        ST.launcher.shutdown(ST.insts)


ST = None
if __name__ == "__main__":
    main()
