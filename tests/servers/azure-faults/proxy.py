#!/usr/bin/python3
"""azure-faults: a fault-injecting HTTP proxy in front of azurite, for the
Azure storage spec. Every request is forwarded unchanged (so SharedKey
signatures still verify), except those matching a rule, which get a canned
answer instead. Rules are set by the test through the proxy itself:

  POST /__faults  body: JSON list of rules, each
      {"method": "PUT", "contains": "comp=block", "times": 1,
       "status": 500, "headers": {...}, "body": "...", "length": n}
  GET  /__faults/log   -> JSON list of "METHOD path?query" seen so far

"contains" is matched against the request's path and query; "times" is how
many matching requests get the answer (then the rule is spent); "length"
promises that many bytes, sends the body and hangs up (a truncated answer).
Standard library only; loopback only (argv: host port upstream_port).
"""
import http.client
import http.server
import json
import sys
import threading

HOST, PORT, UPSTREAM = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
lock = threading.Lock()
rules = []
seen = []


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("azure-faults: " + (fmt % args) + "\n")

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, status, headers, body, length=None):
        self.send_response(status)
        length = str(len(body) if length is None else length)
        for k, v in headers.items():
            if k.lower() == "content-length" and self.command == "HEAD":
                length = v  # HEAD answers the object's length, with no body
            elif k.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(k, v)
        self.send_header("Content-Length", length)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _handle(self):
        body = self._body()
        if self.path == "/__faults" and self.command == "POST":
            with lock:
                rules[:] = json.loads(body or b"[]")
                seen.clear()
            return self._send(204, {}, b"")
        if self.path == "/__faults/log":
            with lock:
                out = json.dumps(seen).encode()
            return self._send(200, {"Content-Type": "application/json"}, out)
        with lock:
            seen.append(self.command + " " + self.path)
            rule = None
            for r in rules:
                if r.get("times", 1) > 0 and r.get("method", self.command) == self.command \
                        and r.get("contains", "") in self.path:
                    r["times"] = r.get("times", 1) - 1
                    rule = r
                    break
        if rule is not None:
            if "length" in rule:  # a truncated answer: promise more, send less, hang up
                self.close_connection = True
            return self._send(rule.get("status", 500), rule.get("headers", {}),
                              rule.get("body", "").encode(), rule.get("length"))
        conn = http.client.HTTPConnection("127.0.0.1", UPSTREAM, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
        conn.request(self.command, self.path, body=body if body else None, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        self._send(resp.status, dict(resp.getheaders()), data)
        conn.close()

    do_GET = do_PUT = do_DELETE = do_HEAD = do_POST = _handle


http.server.ThreadingHTTPServer.allow_reuse_address = True
http.server.ThreadingHTTPServer((HOST, PORT), Handler).serve_forever()
