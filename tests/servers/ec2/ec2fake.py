#!/usr/bin/python3
"""An offline EC2 Query API for tests (see README.md beside this file).

  /usr/bin/python3 ec2fake.py --host 127.0.0.1 --port 8773 --dir DIR --config FILE.json
                              [--launcher 'ARGV'] [--terminator 'ARGV']

Every request's SigV4 signature is re-computed with botocore's signer and its
parameters checked against botocore's EC2 model before the fake's cloud
(ec2cloud.py) sees it; answers are written from the model's output shapes.
Test control (faults, the call journal, state) is under /_admin/."""

import argparse
import datetime
import json
import os
import shlex
import signal
import socket
import struct
import sys
import threading
import time
import traceback
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

sys.dont_write_bytecode = True  # nothing written into the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import ec2auth  # noqa: E402
from ec2cloud import Cloud  # noqa: E402
from ec2launch import Launcher  # noqa: E402
from ec2model import ApiError, Model, error_xml  # noqa: E402

REDACTED_PARAMS = {"Signature", "X-Amz-Signature", "X-Amz-Security-Token", "X-Amz-Credential",
                   "AWSAccessKeyId"}
DEFAULT_STATUS = {"RequestLimitExceeded": 503, "Unavailable": 503, "ServiceUnavailable": 503,
                  "InternalError": 500, "InsufficientInstanceCapacity": 500, "AuthFailure": 401}
DEFAULT_MESSAGE = {"RequestLimitExceeded": "Request limit exceeded.",
                   "InsufficientInstanceCapacity": "We currently do not have sufficient capacity in the "
                                                   "Availability Zone you requested.",
                   "InternalError": "An internal error has occurred",
                   "Unavailable": "The server is overloaded and can't handle the request."}


def log(msg):
    sys.stdout.write("%s %s\n" % (datetime.datetime.utcnow().strftime("%H:%M:%S.%f")[:-3], msg))
    sys.stdout.flush()


class Fake:
    def __init__(self, config, launcher):
        self.model = Model()
        self.config = config
        self.credentials = dict(config.get("credentials") or {})
        if config.get("access_key"):
            self.credentials[config["access_key"]] = config.get("secret_key", "")
        if not self.credentials:
            raise SystemExit("ec2fake: the config names no credentials (\"credentials\": {ACCESS: SECRET})")
        self.versions = set(config.get("versions") or ["2014-10-01", self.model.api_version])
        self.clock_offset = float(config.get("clock_offset", 0))
        self.signature_error = config.get("signature_error", "AuthFailure")
        self.launcher = launcher
        self.cloud = Cloud(config, launcher, config["dir"], log)
        types = self.model.service.shape_for("InstanceType").enum
        self.cloud.model_instance_types = set(types)
        self.journal = []
        self.faults = []
        self.fault_ids = 0
        self.calls = 0
        self.lock = threading.Lock()  # journal, faults, counters

    def now(self):
        return datetime.datetime.utcnow() + datetime.timedelta(seconds=self.clock_offset)

    # ---- faults ---------------------------------------------------------

    def add_fault(self, f):
        if not isinstance(f, dict):
            raise ValueError("a fault is a JSON object")
        known = {"action", "match", "skip", "count", "nth", "error", "message", "status", "delay",
                 "reset", "drop_response", "fate"}
        bad = sorted(set(f) - known)
        if bad:
            raise ValueError("unknown fault field %r (known: %s)" % (bad[0], ", ".join(sorted(known))))
        f = dict(f)
        if "nth" in f:
            f["skip"], f["count"] = int(f["nth"]) - 1, 1
            f.setdefault("action", "*")
        f.setdefault("action", "*")
        f.setdefault("skip", 0)
        f.setdefault("count", 1)
        if f.get("fate"):
            if f["fate"] != "terminated":
                raise ValueError("fate must be \"terminated\"")
            with self.cloud.lock:
                self.cloud.fates.extend(["terminated"] * max(int(f["count"]), 1))
            return None
        if not (f.get("error") or f.get("delay") or f.get("reset") or f.get("drop_response")):
            raise ValueError("a fault needs error, delay, reset, drop_response or fate")
        with self.lock:
            self.fault_ids += 1
            f["id"] = self.fault_ids
            f["hits"] = 0
            self.faults.append(f)
        return f["id"]

    def take_faults(self, action, params):
        """The faults that hit this call (each consumed once per hit)."""
        hit = []
        with self.lock:
            for f in self.faults:
                if f["action"] not in ("*", action):
                    continue
                if any(params.get(k) != str(v) for k, v in (f.get("match") or {}).items()):
                    continue
                if f["skip"] > 0:
                    f["skip"] -= 1
                    continue
                if f["count"] == 0:
                    continue
                if f["count"] > 0:
                    f["count"] -= 1
                f["hits"] += 1
                hit.append(f)
            self.faults = [f for f in self.faults if f["count"] != 0]
        return hit

    # ---- one API call ---------------------------------------------------

    def api_call(self, method, url, headers, body):
        """-> (status, body bytes, action-after: None | "reset" | "drop")"""
        rid = str(uuid.uuid4())
        split = urlsplit(url)
        params = dict(parse_qsl(split.query, keep_blank_values=True))
        ctype = next((v for k, v in headers if k.lower() == "content-type"), "")
        if body and ctype.startswith("application/x-www-form-urlencoded"):
            params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        action = params.get("Action", "")
        with self.lock:
            self.calls += 1
            entry = {"n": self.calls, "time": self.now().strftime("%Y-%m-%dT%H:%M:%SZ"), "method": method,
                     "action": action, "version": params.get("Version"), "params": self.redact(params),
                     "request_id": rid}
            self.journal.append(entry)
        after = None
        try:
            ec2auth.verify(method, url, headers, body, self.credentials, self.cloud.region, self.now(),
                           mismatch=self.signature_error)
            entry["authenticated"] = True
            if not action:
                raise ApiError(400, "MissingAction", "The request must contain the parameter Action")
            faults = self.take_faults(action, params)
            for f in faults:
                if f.get("delay"):
                    time.sleep(float(f["delay"]))
            for f in faults:
                entry.setdefault("faults", []).append(f["id"])
                if f.get("reset"):
                    entry.update(status=None, code="(connection reset)")
                    return None, None, "reset"
                if f.get("error"):
                    code = f["error"]
                    raise ApiError(int(f.get("status") or DEFAULT_STATUS.get(code, 400)), code,
                                   f.get("message") or DEFAULT_MESSAGE.get(code, "injected fault: " + code))
                if f.get("drop_response"):
                    after = "drop"
            version = params.get("Version")
            if not version:
                raise ApiError(400, "MissingParameter", "The request must contain the parameter Version")
            if version not in self.versions:
                raise ApiError(400, "NoSuchVersion",
                               "An invalid or unrecognized version was specified in the request: %s" % version)
            parsed = self.model.parse_input(action, params)
            if parsed.pop("DryRun", False):
                raise ApiError(412, "DryRunOperation", "Request would have succeeded, but DryRun flag is set.")
            handler = getattr(self.cloud, action, None)
            if handler is None or not action[0].isupper():
                raise ApiError(400, "UnsupportedOperation", "The EC2 fake does not implement %s" % action)
            with self.cloud.lock:
                if action in self.cloud.clock_actions:
                    self.cloud.advance()
                out = handler(parsed)
            data = self.model.response_xml(action, version, rid, out)
            entry.update(status=200, code=None)
            if after == "drop":
                entry["code"] = "(answer dropped)"
            return 200, data, after
        except ApiError as e:
            entry.update(status=e.status, code=e.code, message=e.message)
            log("call %d %s: %d %s: %s" % (entry["n"], action or "-", e.status, e.code, e.message))
            return e.status, error_xml(e.code, e.message, rid), None
        except Exception as e:  # a bug of the fake: loud in its log, a 500 to the client
            log("call %d %s: the fake failed:\n%s" % (entry["n"], action or "-", traceback.format_exc()))
            msg = "ec2fake bug (see its log): %s: %s" % (type(e).__name__, e)
            entry.update(status=500, code="InternalError", message=msg)
            return 500, error_xml("InternalError", msg, rid), None

    @staticmethod
    def redact(params):
        out = {}
        for k, v in params.items():
            if k in REDACTED_PARAMS:
                out[k] = "(redacted)"
            elif k == "UserData":
                out[k] = "(%d base64 characters)" % len(v)
            else:
                out[k] = v
        return out

    # ---- test control ---------------------------------------------------

    def admin(self, method, path, query, body):
        """-> (status, json-able or bytes)"""
        q = dict(parse_qsl(query))
        if path == "/_admin/health":
            return 200, {"ok": True}
        if path == "/_admin/calls":
            if method == "DELETE":
                with self.lock:
                    self.journal = []
                return 200, {"ok": True}
            with self.lock:
                calls = [c for c in self.journal if not q.get("action") or c["action"] == q["action"]]
                return 200, {"calls": json.loads(json.dumps(calls))}
        if path == "/_admin/state":
            with self.cloud.lock:
                return 200, json.loads(json.dumps(self.cloud.snapshot(), default=str))
        if path == "/_admin/leftovers":
            # What a destroy-environment must leave empty: instances not yet
            # terminated, and every security group.
            with self.cloud.lock:
                return 200, {"instances": [i.id for i in self.cloud.instances.values() if i.state != "terminated"],
                             "groups": sorted(g.name for g in self.cloud.groups.values())}
        if path.startswith("/_admin/user-data/"):
            iid = path[len("/_admin/user-data/"):]
            with self.cloud.lock:
                inst = self.cloud.instances.get(iid)
            if inst is None:
                return 404, {"error": "no instance %s" % iid}
            with open(inst.user_data_file, "rb") as f:
                return 200, f.read()
        if path == "/_admin/faults":
            if method == "GET":
                with self.lock:
                    return 200, {"faults": list(self.faults), "fates": list(self.cloud.fates)}
            if method == "DELETE":
                with self.lock:
                    self.faults = []
                with self.cloud.lock:
                    self.cloud.fates = []
                return 200, {"ok": True}
            req = json.loads(body or b"null")
            ids = [self.add_fault(f) for f in (req if isinstance(req, list) else [req])]
            return 200, {"ids": ids}
        if path == "/_admin/settle":
            # Until every launcher has answered and every terminator exited,
            # so a test's DescribeInstances calls count deterministically.
            deadline = time.monotonic() + float(q.get("timeout", 30))
            while time.monotonic() < deadline:
                busy = [j for j in self.launcher.jobs
                        if not j.done and not (j.kind == "launcher" and (j.address or j.failed))]
                if not busy:
                    return 200, {"settled": True}
                time.sleep(0.02)
            return 504, {"settled": False, "busy": [j.status() for j in busy]}
        if path == "/_admin/config" and method == "POST":
            req = json.loads(body or b"{}")
            if "clock_offset" in req:
                self.clock_offset = float(req["clock_offset"])
            if "signature_error" in req:
                self.signature_error = req["signature_error"]
            with self.cloud.lock:
                self.cloud.configure(req)
            return 200, {"ok": True}
        return 404, {"error": "unknown admin path %s %s" % (method, path)}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ec2fake"
    fake = None

    def log_message(self, fmt, *args):
        pass

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, status, data, ctype):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _reset(self):
        # An RST instead of an answer, as a dropped connection looks to a client.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.was_reset = True
        self.connection.close()

    def handle_one_request(self):
        self.was_reset = False
        try:
            super().handle_one_request()
        except (OSError, ValueError):
            if not self.was_reset:
                raise
            self.close_connection = True

    def finish(self):
        try:
            super().finish()
        except (OSError, ValueError):
            pass

    def _handle(self):
        body = self._body()
        split = urlsplit(self.path)
        if split.path.startswith("/_admin/"):
            try:
                status, out = self.fake.admin(self.command, split.path, split.query, body)
            except (ValueError, KeyError) as e:
                status, out = 400, {"error": str(e)}
            if isinstance(out, bytes):
                return self._send(status, out, "application/octet-stream")
            return self._send(status, json.dumps(out, indent=1, default=str).encode(), "application/json")
        url = "http://%s%s" % (self.headers.get("Host", "%s:%d" % self.server.server_address[:2]), self.path)
        status, data, after = self.fake.api_call(self.command, url, list(self.headers.items()), body)
        if after in ("reset", "drop"):
            return self._reset()
        self._send(status, data, "text/xml;charset=UTF-8")

    def do_GET(self):
        self._handle()

    def do_POST(self):
        self._handle()

    def do_DELETE(self):
        self._handle()


def main():
    ap = argparse.ArgumentParser(description="offline EC2 Query API for tests")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dir", required=True, help="the fake's private directory (user-data files)")
    ap.add_argument("--config", required=True, help="JSON: credentials, region, zones, images, ...")
    ap.add_argument("--launcher", help="program (shell-quoted argv) run per started instance")
    ap.add_argument("--terminator", help="program (shell-quoted argv) run per terminated instance")
    a = ap.parse_args()
    if not a.host.startswith("127."):
        raise SystemExit("ec2fake: bind a loopback address (127.x.y.z), not %s" % a.host)
    with open(a.config) as f:
        config = json.load(f)
    config["dir"] = a.dir
    launcher = Launcher(shlex.split(a.launcher) if a.launcher else None,
                        shlex.split(a.terminator) if a.terminator else None, log)
    Handler.fake = Fake(config, launcher)
    httpd = ThreadingHTTPServer((a.host, a.port), Handler)
    httpd.daemon_threads = True

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log("ec2fake listening on http://%s:%d (region %s, EC2 model %s)"
        % (a.host, a.port, Handler.fake.cloud.region, Handler.fake.model.api_version))
    try:
        httpd.serve_forever()
    finally:
        with Handler.fake.cloud.lock:
            instances = list(Handler.fake.cloud.instances.values())
        launcher.shutdown(instances, timeout=4)
        log("ec2fake stopped")


if __name__ == "__main__":
    main()
