#!/usr/bin/python3
"""httpd.py: the HTTP server the juju.http tests talk to (stdlib only).

Binds 127.0.0.1 on a free port and prints that port on stdout (one line,
flushed), then serves until killed. With --port-file PATH the port is also
written there (atomically), for callers that cannot read a pipe line by line.
With --tls CERT KEY it speaks HTTPS instead. With --blackhole it serves
nothing: its listen queue is kept full, so connecting hangs until the
client's connect timeout (SYNs are dropped).

Routes (HTTP/1.1, keep-alive):
  GET|HEAD /file/<size>[?chunked=1]  <size> bytes, byte i = i % 251;
                                     chunked=1: no Content-Length
  *        /status/<code>            that status, body "status <code>\n"
  GET      /flaky/<n>[?...]          503 for the first n requests on this exact
                                     path+query, then 200 "ok after <n>\n"
  GET      /slow                     Content-Length 100, sends 10 bytes, stalls
  GET      /redirect                 302 to /file/10
  GET      /redirect-file            302 to file:///etc/hostname (must be refused)
  *        /echo                     JSON {method, path, headers, body, body_size,
                                     client_port}; two X-Dup response headers
Requests in absolute form (the server used as an HTTP proxy) are routed by
their path; /echo's "path" then shows the absolute URL.
  PUT      /store/<name>             stores the body; 201 JSON {size, sha256}
  GET|HEAD /store/<name>             the stored body, or 404
  DELETE   /store/<name>             204, or 404
"""
import hashlib
import http.server
import socket
import json
import os
import socketserver
import ssl
import sys
import threading
import time

PATTERN = bytes(range(251))
CHUNK = 64 * 1024 // 251 * 251  # a multiple of the pattern, so chunks line up


def pattern_chunks(size):
    block = PATTERN * (CHUNK // 251)
    while size > 0:
        n = min(size, len(block))
        yield block[:n]
        size -= n


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.flaky = {}
        self.store = {}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "juju-test-httpd"

    def log_message(self, fmt, *args):  # keep test output clean
        pass

    # --- helpers -------------------------------------------------------
    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while True:
                line = self.rfile.readline().strip()
                n = int(line.split(b";")[0], 16)
                if n == 0:
                    while self.rfile.readline().strip():
                        pass
                    break
                parts.append(self.rfile.read(n))
                self.rfile.readline()
            return b"".join(parts)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def send(self, code, body=b"", ctype="text/plain", extra=()):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def route(self):
        target = self.path
        if "://" in target.split("?")[0]:  # absolute form: we are being used as a proxy
            target = "/" + target.split("://", 1)[1].partition("/")[2]
        path, _, query = target.partition("?")
        parts = path.strip("/").split("/")
        return path, query, parts

    # --- dispatch ------------------------------------------------------
    def handle_any(self):
        body = self.read_body()
        path, query, parts = self.route()
        st = self.server.state
        head = parts[0] if parts else ""
        if head == "file" and len(parts) == 2 and parts[1].isdigit():
            return self.file(int(parts[1]), "chunked=1" in query)
        if head == "status" and len(parts) == 2 and parts[1].isdigit():
            code = int(parts[1])
            return self.send(code, ("status %d\n" % code).encode())
        if head == "flaky" and len(parts) == 2 and parts[1].isdigit():
            with st.lock:
                seen = st.flaky.get(self.path, 0)
                st.flaky[self.path] = seen + 1
            if seen < int(parts[1]):
                return self.send(503, b"try again\n")
            return self.send(200, ("ok after %s\n" % parts[1]).encode())
        if path == "/slow":
            return self.slow()
        if path == "/redirect":
            return self.send(302, b"", extra=[("Location", "/file/10")])
        if path == "/redirect-file":
            return self.send(302, b"", extra=[("Location", "file:///etc/hostname")])
        if path == "/echo":
            doc = {
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode("latin-1"),
                "body_size": len(body),
                "client_port": self.client_address[1],
            }
            return self.send(200, json.dumps(doc, sort_keys=True).encode(),
                             "application/json", [("X-Dup", "a"), ("X-Dup", "b")])
        if head == "store" and len(parts) == 2:
            return self.storage(parts[1], body)
        return self.send(404, b"no such route\n")

    def file(self, size, chunked):
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(size))
        self.end_headers()
        if self.command == "HEAD":
            return
        for c in pattern_chunks(size):
            if chunked:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(c), c))
            else:
                self.wfile.write(c)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")

    def slow(self):
        self.send_response(200)
        self.send_header("Content-Length", "100")
        self.end_headers()
        self.wfile.write(b"0123456789")
        self.wfile.flush()
        time.sleep(30)
        self.close_connection = True

    def storage(self, name, body):
        st = self.server.state
        with st.lock:
            if self.command == "PUT":
                st.store[name] = body
                doc = {"size": len(body), "sha256": hashlib.sha256(body).hexdigest()}
                return self.send(201, json.dumps(doc).encode(), "application/json")
            if self.command in ("GET", "HEAD"):
                if name not in st.store:
                    return self.send(404, b"not stored\n")
                return self.send(200, st.store[name], "application/octet-stream")
            if self.command == "DELETE":
                if st.store.pop(name, None) is None:
                    return self.send(404, b"not stored\n")
                return self.send(204)
        return self.send(405, b"method not allowed\n")

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = handle_any


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # Clients hanging up mid-transfer (aborts, timeouts, refused
        # certificates) are what the tests provoke: not worth a traceback.
        if isinstance(sys.exc_info()[1], (ConnectionError, ssl.SSLError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def blackhole():
    """A listener whose accept queue is full: connects to it never finish."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(0)
    fillers = []
    for _ in range(3):
        c = socket.socket()
        c.setblocking(False)
        try:
            c.connect(lsock.getsockname())
        except BlockingIOError:
            pass
        fillers.append(c)
    return lsock, fillers


def announce(port, port_file):
    if port_file:
        tmp = port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.rename(tmp, port_file)
    sys.stdout.write("%d\n" % port)
    sys.stdout.flush()


def main(argv):
    port_file = None
    tls = None
    hole = False
    i = 0
    while i < len(argv):
        if argv[i] == "--blackhole":
            hole = True
            i += 1
        elif argv[i] == "--port-file":
            port_file = argv[i + 1]
            i += 2
        elif argv[i] == "--tls":
            tls = (argv[i + 1], argv[i + 2])
            i += 3
        else:
            sys.stderr.write("usage: httpd.py [--port-file PATH] [--tls CERT KEY | --blackhole]\n")
            return 2
    if hole:
        lsock, _fillers = blackhole()
        announce(lsock.getsockname()[1], port_file)
        while True:
            time.sleep(3600)
    srv = Server(("127.0.0.1", 0), Handler)
    srv.state = State()
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tls[0], tls[1])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    announce(srv.server_address[1], port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
