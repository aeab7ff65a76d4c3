#!/usr/bin/python3
"""s3check: a signature-checking proxy in front of s3rver.

s3rver checks only the shape of a SigV4 request and the access key, not the
signature. This proxy re-signs every request it receives with Debian
python3-botocore's own SigV4 implementation (botocore.auth.S3SigV4Auth for
the Authorization header, S3SigV4QueryAuth for presigned URLs), using the
request's own X-Amz-Date and SignedHeaders, and compares: a mismatch is
answered 403 SignatureDoesNotMatch (as S3 does, with SignatureProvided in
the body, so a client that copies error bodies into messages is caught).
It also checks the payload hash (x-amz-content-sha256 against the body),
Content-MD5 (BadDigest),
the clock (15 minutes, RequestTimeTooSkewed) and, for presigned URLs,
X-Amz-Expires against its own clock (AccessDenied "Request has expired"),
and that a CreateBucket outside us-east-1 names its region in S3's
namespace (IllegalLocationConstraintException / MalformedXML).
Requests that pass are forwarded to the upstream s3rver unchanged. It
also serves as an HTTP proxy (absolute request targets), so virtual-hosted
bucket URLs under a made-up domain reach s3rver with their Host header.

Test controls (no auth; loopback only):
  POST /__s3check/inject?what=W[&times=N]    the next N (default 1) requests
      of the kind get a fault: malformed-list (a ListObjects answer replaced
      by malformed XML), error-500 (any checked request answered 500
      InternalError instead of forwarded), truncate-get (an object GET cut
      off after half its body, the connection closed)
  GET  /__s3check/stats                       {"checked": n, "rejected": n, "forwarded": n}

Usage: S3CHECK_SECRET_KEY=SK s3check.py --listen HOST:PORT
           --upstream http://HOST:PORT --access-key AK [--region R]...
(regions accepted, default us-east-1;
 the secret comes from the environment, never the command line)
"""
import argparse
import base64
import datetime
import hashlib
import http.client
import json
import os
import re
import sys
import threading
import urllib.parse
from xml.etree import ElementTree
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}
AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
    r"SignedHeaders=([a-z0-9;\-]+), Signature=([0-9a-f]{64})$")
SIGNATURE_RE = re.compile(r"(X-Amz-Signature=|Signature=)[0-9a-fA-F]+")
S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
MAX_SKEW = datetime.timedelta(minutes=15)


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.inject = {}
        self.stats = {"checked": 0, "rejected": 0, "forwarded": 0}

    def count(self, key):
        with self.lock:
            self.stats[key] += 1

    def take(self, what):
        with self.lock:
            n = self.inject.get(what, 0)
            if n > 0:
                self.inject[what] = n - 1
                return True
            return False


def error_xml(code, message, extra=""):
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code><Message>%s</Message>%s'
            '<RequestId>s3check</RequestId></Error>' % (code, message, extra)).encode()


def parse_amz_date(s):
    return datetime.datetime.strptime(s, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "s3check"

    def log_message(self, fmt, *args):
        # Presigned URLs carry signatures: never into the log.
        line = SIGNATURE_RE.sub(r"\1REDACTED", fmt % args)
        sys.stderr.write("s3check: %s\n" % line)
        sys.stderr.flush()

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def reply(self, status, body, headers=None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if not headers or "Content-Type" not in headers:
            self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def reject(self, status, code, message, why, extra=""):
        self.server.state.count("rejected")
        self.log_message("REJECT %s %s: %s: %s", self.command, self.path.split("?")[0], code, why)
        self.reply(status, error_xml(code, message, extra))

    # The botocore signer over the received request: signed headers only,
    # the request's own timestamp, the path as received (S3 is not
    # normalised).
    def botocore_request(self, url, signed, body):
        headers = {}
        for name in signed:
            values = self.headers.get_all(name) or []
            headers[name] = ",".join(values)
        req = AWSRequest(method=self.command, url=url, headers=headers, data=body)
        return req

    def check_header_auth(self, body):
        st = self.server.state
        m = AUTH_RE.match(self.headers.get("Authorization", ""))
        if not m:
            return self.reject(400, "AuthorizationHeaderMalformed", "The authorization header is malformed.",
                               "Authorization not in the SigV4 shape")
        ak, date8, region, service, signed_list, provided = m.groups()
        if ak != st.args.access_key:
            return self.reject(403, "InvalidAccessKeyId",
                               "The AWS Access Key Id you provided does not exist in our records.", "access key")
        if service != "s3" or region not in st.args.regions:
            return self.reject(400, "AuthorizationHeaderMalformed", "Wrong region or service in the credential.",
                               "scope %s/%s" % (region, service))
        amz_date = self.headers.get("X-Amz-Date")
        if not amz_date or amz_date[:8] != date8:
            return self.reject(403, "AccessDenied", "X-Amz-Date missing or not the credential's date.", "date")
        try:
            when = parse_amz_date(amz_date)
        except ValueError:
            return self.reject(403, "AccessDenied", "Bad X-Amz-Date.", "date format")
        now = datetime.datetime.now(datetime.timezone.utc)
        if abs(now - when) > MAX_SKEW:
            return self.reject(403, "RequestTimeTooSkewed",
                               "The difference between the request time and the current time is too large.",
                               "skew %s" % (now - when))
        signed = signed_list.split(";")
        present = {k.lower() for k in self.headers.keys()}
        for must in ("host", "x-amz-date", "x-amz-content-sha256"):
            if must not in signed:
                return self.reject(403, "AccessDenied", "%s must be signed." % must, "unsigned " + must)
        for name in present:
            if (name.startswith("x-amz-") or name == "content-md5") and name not in signed:
                return self.reject(403, "AccessDenied", "%s must be signed." % name, "unsigned " + name)
        for name in signed:
            if name not in present:
                return self.reject(403, "AccessDenied", "Signed header %s missing." % name, "missing " + name)
        content_sha = self.headers.get("X-Amz-Content-SHA256")
        if content_sha != "UNSIGNED-PAYLOAD" and content_sha != hashlib.sha256(body).hexdigest():
            return self.reject(400, "XAmzContentSHA256Mismatch",
                               "The provided 'x-amz-content-sha256' header does not match what was computed.",
                               "payload hash")
        md5 = self.headers.get("Content-MD5")
        if md5 is not None and md5 != base64.b64encode(hashlib.md5(body).digest()).decode():
            return self.reject(400, "BadDigest", "The Content-MD5 you specified did not match what we received.",
                               "Content-MD5")
        url = "http://%s%s" % (self.headers.get("Host"), self.path)
        req = self.botocore_request(url, signed, body)
        req.context["timestamp"] = amz_date
        auth = S3SigV4Auth(Credentials(st.args.access_key, st.args.secret_key), "s3", region)
        creq = auth.canonical_request(req)
        sts = auth.string_to_sign(req, creq)
        expected = auth.signature(sts, req)
        if expected != provided:
            return self.reject(403, "SignatureDoesNotMatch",
                               "The request signature we calculated does not match the signature you provided. "
                               "Check your key and signing method.", "signature",
                               "<SignatureProvided>%s</SignatureProvided>" % provided)
        return self.check_location(region, body)

    # CreateBucket outside us-east-1 must name the region it is sent to, in
    # S3's namespace (S3: IllegalLocationConstraintException otherwise).
    def check_location(self, region, body):
        path = urllib.parse.urlsplit(self.path).path.strip("/")
        if self.command != "PUT" or not path or "/" in path:
            return True
        want = None if region == "us-east-1" else region
        got = None
        if body:
            try:
                root = ElementTree.fromstring(body)
            except ElementTree.ParseError as e:
                return self.reject(400, "MalformedXML", "The XML you provided was not well-formed.", str(e))
            el = root.find("{%s}LocationConstraint" % S3_NS)
            if root.tag != "{%s}CreateBucketConfiguration" % S3_NS or el is None:
                return self.reject(400, "MalformedXML", "Not a CreateBucketConfiguration in the S3 namespace.",
                                   root.tag)
            got = el.text
        if got != want:
            return self.reject(400, "IllegalLocationConstraintException",
                               "The %s location constraint is incompatible for the region specific endpoint "
                               "this request was sent to." % (got or "unspecified"), "location %s" % got)
        return True

    def check_query_auth(self, body):
        st = self.server.state
        split = urllib.parse.urlsplit(self.path)
        pairs = urllib.parse.parse_qsl(split.query, keep_blank_values=True)
        q = dict(pairs)
        try:
            cred = q["X-Amz-Credential"].split("/")
            amz_date, expires = q["X-Amz-Date"], int(q["X-Amz-Expires"])
            provided, signed = q["X-Amz-Signature"], q["X-Amz-SignedHeaders"].split(";")
        except (KeyError, ValueError):
            return self.reject(400, "AuthorizationQueryParametersError", "Presigned URL parameters missing.",
                               "query parameters")
        if q.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256" or len(cred) != 5 or cred[0] != st.args.access_key:
            return self.reject(403, "InvalidAccessKeyId", "Bad credential.", "credential")
        if cred[2] not in st.args.regions or cred[3] != "s3" or cred[1] != amz_date[:8]:
            return self.reject(400, "AuthorizationQueryParametersError", "Bad credential scope.", "scope")
        try:
            when = parse_amz_date(amz_date)
        except ValueError:
            return self.reject(403, "AccessDenied", "Bad X-Amz-Date.", "date format")
        now = datetime.datetime.now(datetime.timezone.utc)
        if now > when + datetime.timedelta(seconds=expires):
            return self.reject(403, "AccessDenied", "Request has expired", "expired %s ago" %
                               (now - when - datetime.timedelta(seconds=expires)))
        if when - now > MAX_SKEW:
            return self.reject(403, "AccessDenied", "Request is not valid yet", "from the future")
        # The URL without X-Amz-Signature, as S3SigV4QueryAuth signs it.
        rest = "&".join(p for p in split.query.split("&") if not p.startswith("X-Amz-Signature="))
        url = "http://%s%s?%s" % (self.headers.get("Host"), split.path, rest)
        req = self.botocore_request(url, signed, body)
        req.context["timestamp"] = amz_date
        auth = S3SigV4QueryAuth(Credentials(st.args.access_key, st.args.secret_key), "s3", cred[2],
                                expires=expires)
        creq = auth.canonical_request(req)
        sts = auth.string_to_sign(req, creq)
        expected = auth.signature(sts, req)
        if expected != provided:
            return self.reject(403, "SignatureDoesNotMatch",
                               "The request signature we calculated does not match the signature you provided.",
                               "presigned signature")
        return True

    def control(self):
        st = self.server.state
        split = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(split.query))
        if split.path == "/__s3check/inject" and self.command == "POST":
            with st.lock:
                what = q.get("what", "")
                st.inject[what] = st.inject.get(what, 0) + int(q.get("times", "1"))
            return self.reply(200, b"ok\n", {"Content-Type": "text/plain"})
        if split.path == "/__s3check/stats":
            with st.lock:
                body = json.dumps(st.stats).encode()
            return self.reply(200, body, {"Content-Type": "application/json"})
        return self.reply(404, b"no such control\n", {"Content-Type": "text/plain"})

    def handle_any(self):
        st = self.server.state
        body = self.read_body()
        # Used as an HTTP proxy (virtual-hosted buckets under a made-up
        # domain): the request target is absolute; the Host header names
        # the bucket's host, and s3rver (--service-endpoint) reads it.
        if self.path.startswith("http://"):
            absolute = urllib.parse.urlsplit(self.path)
            self.path = absolute.path + ("?" + absolute.query if absolute.query else "")
        if self.path.startswith("/__s3check/"):
            return self.control()
        st.count("checked")
        if "X-Amz-Signature=" in self.path:
            ok = self.check_query_auth(body)
        elif "Authorization" in self.headers:
            ok = self.check_header_auth(body)
        else:
            ok = self.reject(403, "AccessDenied", "Anonymous access is refused.", "anonymous")
        if ok is not True:
            return
        split = urllib.parse.urlsplit(self.path)
        is_list = (self.command == "GET" and split.path.strip("/").count("/") == 0 and split.path.strip("/")
                   and "X-Amz-Signature=" not in self.path)
        if is_list:
            if st.take("malformed-list"):
                self.log_message("INJECT malformed ListObjects body")
                return self.reply(200, b'<?xml version="1.0"?><ListBucketResult><Contents><Key>a</Key></Contents'
                                       b'><IsTruncated>false</ListBucketResult>')
        if st.take("error-500"):
            self.log_message("INJECT 500")
            return self.reply(500, error_xml("InternalError", "We encountered an internal error. Please try again."))
        is_object_get = self.command == "GET" and split.path.strip("/").count("/") >= 1
        self.forward(body, truncate=is_object_get and st.take("truncate-get"))

    def forward(self, body, truncate=False):
        st = self.server.state
        up = urllib.parse.urlsplit(st.args.upstream)
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["Content-Length"] = str(len(body))
        try:
            conn.request(self.command, self.path, body=body if body or self.command in ("PUT", "POST") else None,
                         headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except OSError as e:
            return self.reply(502, error_xml("BadGateway", "upstream: %s" % e))
        finally:
            conn.close()
        st.count("forwarded")
        self.send_response(resp.status, resp.reason)
        length_sent = False
        for k, v in resp.getheaders():
            lk = k.lower()
            if lk in HOP_BY_HOP or lk in ("date", "server"):
                continue
            if lk == "content-length":
                length_sent = True
            self.send_header(k, v)
        if not length_sent and self.command != "HEAD":
            self.send_header("Content-Length", str(len(data)))
        elif not length_sent:
            self.send_header("Content-Length", "0")
        self.end_headers()
        if truncate:
            self.log_message("INJECT truncated body (%d of %d bytes)", len(data) // 2, len(data))
            self.wfile.write(data[:len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--access-key", required=True)
    ap.add_argument("--region", action="append", help="a region the checker accepts (repeatable)")
    args = ap.parse_args()
    args.regions = args.region or ["us-east-1"]
    args.secret_key = os.environ.get("S3CHECK_SECRET_KEY")
    if not args.secret_key:
        sys.exit("s3check: S3CHECK_SECRET_KEY is not set")
    host, port = args.listen.rsplit(":", 1)
    srv = ThreadingHTTPServer((host, int(port)), Handler)
    srv.daemon_threads = True
    srv.state = State(args)
    sys.stderr.write("s3check: listening on %s, upstream %s\n" % (args.listen, args.upstream))
    sys.stderr.flush()
    srv.serve_forever()


if __name__ == "__main__":
    main()
