#!/usr/bin/python3
"""server.py: a scripted HTTP(S) test server for juju.http and juju.cloud.api.

A spec tells it, per path, which answers to give, then reads back what it
received: the faults a cloud API can produce (throttling, error documents in
each cloud's dialect, truncated and slow bodies, a server that stops
answering, a 500 in the middle of an upload) without a real cloud. Standard
library only; run with /usr/bin/python3.

  server.py --host H --port P [--tls CERT KEY [--client-ca CA]]

Control (JSON bodies and answers):
  POST /_script    {"path": "/p", "responses": [answer, ...]}: queued for
                   requests whose path (without query) is /p; each request
                   takes the next answer, the last one repeats.
  POST /_reset     forgets every script and every recorded request.
  GET  /_requests  the requests received so far (control requests excepted):
                   [{method, target, path, query, headers (lower-case names),
                     body_size, body_sha256, body (when short text), proxied}]
An answer: {"status": 200, "headers": {...}, "body": "...",
  "delay": s          wait before answering,
  "trickle": [n, s]   send the body in n pieces, s seconds apart,
  "truncate": n       announce n more bytes than are sent, then close,
  "hang": true        never answer (until the client goes, or 60 s),
  "fail_after": n     read only n bytes of the request body, answer, close,
  "builtin": true     answer as the built-in route would (no script)}
Built-in routes (when no script matches):
  /_multipart      parses a multipart/form-data body with Python's email
                   package: {"parts": [{name, filename, content_type, size,
                   sha256}]}
  /_whoami         {"client_cn": <CN of the TLS client certificate or null>}
  anything else    200 {"method", "path", "headers"}
A request in absolute form (http://host:port/path) makes the server an HTTP
proxy: it records the request (proxied = true) and forwards it.
"""
import argparse
import email.parser
import email.policy
import hashlib
import http.client
import http.server
import json
import select
import socketserver
import ssl
import sys
import threading
import time
import urllib.parse


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.scripts = {}
        self.requests = []


STATE = State()


def read_body(handler, limit=None):
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        parts = []
        while True:
            line = handler.rfile.readline().strip()
            n = int(line.split(b";")[0], 16)
            if n == 0:
                while handler.rfile.readline().strip():
                    pass
                break
            parts.append(handler.rfile.read(n))
            handler.rfile.readline()
        return b"".join(parts)
    n = int(handler.headers.get("Content-Length") or 0)
    if limit is not None:
        n = min(n, limit)
    return handler.rfile.read(n) if n else b""


def parse_multipart(content_type, body):
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    if not msg.is_multipart():
        raise ValueError("not a multipart body")
    parts = []
    for part in msg.iter_parts():
        data = part.get_payload(decode=True) or b""
        parts.append({
            "name": part.get_param("name", header="content-disposition"),
            "filename": part.get_filename(),
            "content_type": part.get("Content-Type") and part.get_content_type(),
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "text": data.decode() if len(data) < 256 and data.isascii() else None,
        })
    return parts


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "juju-scripted"

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))

    def send_json(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def record(self, body, proxied):
        u = urllib.parse.urlsplit(self.path)
        text = None
        if len(body) <= 4096:
            try:
                text = body.decode()
            except UnicodeDecodeError:
                pass
        entry = {
            "method": self.command, "target": self.path, "path": u.path, "query": u.query,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body_size": len(body), "body_sha256": hashlib.sha256(body).hexdigest(),
            "body": text, "proxied": proxied,
        }
        with STATE.lock:
            STATE.requests.append(entry)

    def next_answer(self, path):
        with STATE.lock:
            queue = STATE.scripts.get(path)
            if not queue:
                return None
            return queue.pop(0) if len(queue) > 1 else queue[0]

    def wait_for_client_to_go(self, limit):
        end = time.monotonic() + limit
        while time.monotonic() < end:
            r, _, _ = select.select([self.connection], [], [], 0.2)
            if r:
                try:
                    if not self.connection.recv(4096, 0):
                        return
                except OSError:
                    return

    def answer(self, a, body):
        if a.get("delay"):
            time.sleep(a["delay"])
        if a.get("hang"):
            self.close_connection = True
            self.wait_for_client_to_go(60)
            return
        data = a.get("body", "").encode()
        status = a.get("status", 200)
        self.send_response(status)
        headers = a.get("headers", {})
        for k, v in headers.items():
            self.send_header(k, v)
        if "fail_after" in a or "truncate" in a:
            self.close_connection = True
            self.send_header("Connection", "close")
        self.send_header("Content-Length", str(len(data) + a.get("truncate", 0)))
        self.end_headers()
        if self.command == "HEAD":
            return
        trickle = a.get("trickle")
        if trickle:
            n, gap = trickle
            step = max(1, -(-len(data) // n))
            for i in range(0, len(data), step):
                self.wfile.write(data[i:i + step])
                self.wfile.flush()
                time.sleep(gap)
        else:
            self.wfile.write(data)

    def proxy(self):
        body = read_body(self)
        self.record(body, True)
        u = urllib.parse.urlsplit(self.path)
        conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=30)
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("proxy-connection", "connection", "keep-alive")}
        target = u.path + ("?" + u.query if u.query else "")
        conn.request(self.command, target, body=body or None, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(k, v)
        self.send_header("Via", "1.1 juju-scripted-proxy")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        conn.close()

    def control(self, path):
        body = read_body(self)
        if path == "/_script" and self.command == "POST":
            spec = json.loads(body)
            with STATE.lock:
                STATE.scripts.setdefault(spec["path"], []).extend(spec["responses"])
            return self.send_json(200, {"ok": True})
        if path == "/_reset" and self.command == "POST":
            with STATE.lock:
                STATE.scripts.clear()
                STATE.requests.clear()
            return self.send_json(200, {"ok": True})
        if path == "/_requests":
            with STATE.lock:
                return self.send_json(200, list(STATE.requests))
        return self.send_json(404, {"error": "no such control route"})

    def handle_any(self):
        if self.path.startswith("http://"):
            return self.proxy()
        path = urllib.parse.urlsplit(self.path).path
        if path in ("/_script", "/_reset", "/_requests"):
            return self.control(path)
        a = self.next_answer(path)
        if a is not None and a.get("builtin"):
            a = None
        if a is not None and "fail_after" in a:
            body = read_body(self, a["fail_after"])
            self.record(body, False)
            return self.answer(a, body)
        body = read_body(self)
        self.record(body, False)
        if a is not None:
            return self.answer(a, body)
        if path == "/_multipart":
            try:
                parts = parse_multipart(self.headers.get("Content-Type", ""), body)
            except (ValueError, TypeError) as e:
                return self.send_json(400, {"error": str(e)})
            return self.send_json(200, {"parts": parts})
        if path == "/_whoami":
            cn = None
            if hasattr(self.connection, "getpeercert"):
                cert = self.connection.getpeercert()
                for rdn in (cert or {}).get("subject", ()):
                    for k, v in rdn:
                        if k == "commonName":
                            cn = v
            return self.send_json(200, {"client_cn": cn})
        return self.send_json(200, {"method": self.command, "path": self.path,
                                    "headers": {k.lower(): v for k, v in self.headers.items()}})

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = do_OPTIONS = handle_any


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--client-ca")
    args = p.parse_args()
    srv = Server((args.host, args.port), Handler)
    if args.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls[0], args.tls[1])
        if args.client_ca:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(args.client_ca)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    sys.stderr.write("scripted server on %s:%d\n" % (args.host, args.port))
    sys.stderr.flush()
    srv.serve_forever()


if __name__ == "__main__":
    main()
