"""Checks an EC2 request's AWS Signature Version 4 by re-signing it with
botocore's own signer (botocore.auth.SigV4Auth), so the fake's verdict does
not depend on this project's signing code.

The canonical request is rebuilt from what arrived: the method, the path, the
query (decoded and re-encoded the canonical way), exactly the headers the
client listed in SignedHeaders, and the body (hashed by botocore)."""

import datetime
import hashlib
import hmac
from urllib.parse import parse_qsl, urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials

from ec2model import ApiError

MAX_SKEW = datetime.timedelta(minutes=5)


def auth_failure():
    return ApiError(401, "AuthFailure", "AWS was not able to validate the provided access credentials")


def parse_authorization(value):
    """'AWS4-HMAC-SHA256 Credential=AK/scope, SignedHeaders=a;b, Signature=hex'
    -> (access_key, [date, region, service, 'aws4_request'], [headers], signature)."""
    if not value:
        raise ApiError(401, "AuthFailure", "The request has no Authorization header (AWS Signature Version 4 required)")
    alg, _, rest = value.strip().partition(" ")
    if alg != "AWS4-HMAC-SHA256":
        raise ApiError(400, "IncompleteSignature",
                       "Unsupported Authorization algorithm %r: only AWS4-HMAC-SHA256" % alg)
    fields = {}
    for part in rest.split(","):
        k, eq, v = part.strip().partition("=")
        if eq:
            fields[k] = v
    for k in ("Credential", "SignedHeaders", "Signature"):
        if not fields.get(k):
            raise ApiError(400, "IncompleteSignature",
                           "Authorization header requires '%s' parameter" % k)
    cred = fields["Credential"].split("/")
    if len(cred) != 5 or cred[4] != "aws4_request":
        raise ApiError(400, "IncompleteSignature",
                       "Credential must have the form ACCESS_KEY/yyyymmdd/region/service/aws4_request")
    return cred[0], cred[1:], fields["SignedHeaders"].split(";"), fields["Signature"]


def verify(method, url, headers, body, credentials, region, now, service="ec2", mismatch="AuthFailure"):
    """headers: list of (name, value) as received. credentials: {access_key:
    secret_key}. now: datetime (UTC, naive) of the fake's clock. mismatch:
    the code for a wrong signature: "AuthFailure" (401, what EC2 answers a
    wrong secret) or "SignatureDoesNotMatch" (403).
    Returns the access key on success, raises ApiError otherwise."""
    hmap = {}
    for name, value in headers:
        hmap.setdefault(name.lower(), []).append(value)
    access_key, scope, signed, signature = parse_authorization((hmap.get("authorization") or [""])[0])
    secret = credentials.get(access_key)
    if secret is None:
        raise auth_failure()
    amz_date = (hmap.get("x-amz-date") or [""])[0]
    try:
        when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ")
    except ValueError:
        raise ApiError(400, "IncompleteSignature",
                       "X-Amz-Date header missing or not yyyymmddTHHMMSSZ: %r" % amz_date) from None
    if abs(now - when) > MAX_SKEW:
        raise ApiError(400, "RequestExpired",
                       "Request has expired. Timestamp date is %s, the server's clock is %s"
                       % (amz_date, now.strftime("%Y%m%dT%H%M%SZ")))
    if scope[0] != amz_date[:8]:
        raise auth_failure()
    if scope[1] != region or scope[2] != service:
        raise ApiError(401, "AuthFailure",
                       "Credential should be scoped to region '%s' and service '%s', not '%s'/'%s'"
                       % (region, service, scope[1], scope[2]))
    if "host" not in signed:
        raise ApiError(400, "IncompleteSignature", "SignedHeaders must include host")
    signed_headers = HTTPHeaders()
    for name in signed:
        if name not in hmap:
            raise ApiError(400, "IncompleteSignature", "Signed header %s is not in the request" % name)
        for v in hmap[name]:
            signed_headers[name] = v
    declared = (hmap.get("x-amz-content-sha256") or [None])[0]
    if declared is not None and declared != hashlib.sha256(body or b"").hexdigest():
        raise ApiError(400, "XAmzContentSHA256Mismatch",
                       "The provided x-amz-content-sha256 header does not match the body")
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    req = AWSRequest(method=method, url="%s://%s%s" % (parts.scheme, parts.netloc, parts.path),
                     headers=signed_headers, data=body or b"", params=query)
    req.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(access_key, secret), service, region)
    canonical = signer.canonical_request(req)
    expected = signer.signature(signer.string_to_sign(req, canonical), req)
    if not hmac.compare_digest(expected, signature):
        if mismatch == "SignatureDoesNotMatch":
            raise ApiError(403, "SignatureDoesNotMatch",
                           "The request signature we calculated does not match the signature you provided. "
                           "Check your AWS Secret Access Key and signing method.")
        raise auth_failure()
    return access_key
