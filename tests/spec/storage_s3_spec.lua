-- storage_s3_spec.lua: the S3 object store (juju.cloud.storage.s3) against
-- real parts: npm s3rver 3.7.1 for object semantics, behind s3check
-- (tests/servers/s3check), a proxy that re-signs every request with Debian
-- python3-botocore's SigV4 and refuses mismatches, so every request of the
-- storage behaviour suite is signature-checked by an independent signer.
-- Both servers start once for this file.
local server = require("juju.testing.server")
local s3 = require("juju.cloud.storage.s3")
local sigv4 = require("juju.cloud.sign.sigv4")
local api = require("juju.cloud.api")
local http = require("juju.http")
local json = require("juju.json")
local sys = require("juju.sys")
local fs = require("juju.fs")

local SRC = os.getenv("JUJU_TEST_SOURCE_DIR") or "."
local ACCESS, SECRET = "S3RVER", "S3RVER" -- s3rver's fixed test credentials
local REGION = "us-east-1"

local function npm_root()
  local r = sys.run({ "npm", "root", "-g" }, { timeout = 30 })
  assert(r and r.code == 0, "npm root -g failed: is npm installed? run scripts/install-deps.sh")
  return (r.stdout:gsub("%s+$", ""))
end

local NODE_PATH = npm_root()
local S3RVER_JS = NODE_PATH .. "/s3rver/bin/s3rver.js"
assert(fs.exists(S3RVER_JS), S3RVER_JS .. " not found: run scripts/install-deps.sh")

local s3rver = assert(server.start {
  name = "s3rver", host = "127.0.0.5",
  argv = { "node", S3RVER_JS, "--address", "{host}", "--port", "{port}", "--directory", "{dir}", "--silent",
           "--service-endpoint", "s3.test" },
  env = { NODE_PATH = NODE_PATH },
})
local checker = assert(server.start {
  name = "s3check", host = "127.0.0.6",
  argv = { "/usr/bin/python3", SRC .. "/tests/servers/s3check/s3check.py", "--listen", "{host}:{port}",
           "--upstream", s3rver.url, "--access-key", ACCESS, "--region", REGION, "--region", "eu-west-1" },
  env = { S3CHECK_SECRET_KEY = SECRET },
})
teardown(server.stop_all)

local function stats()
  local r = assert(http.get(checker.url .. "/__s3check/stats", { retries = 0 }))
  return assert(json.decode(r.body))
end

local function inject(what, times)
  assert(http.request { url = checker.url .. "/__s3check/inject?what=" .. what .. "&times=" .. (times or 1),
    method = "POST", retries = 0 })
end

local function open(bucket, extra)
  local o = { endpoint = checker.url, region = REGION, bucket = bucket, access_key = ACCESS, secret_key = SECRET }
  for k, v in pairs(extra or {}) do o[k] = v end
  return s3.new(o)
end

local function no_secret(msg)
  assert.is_string(msg)
  assert.is_nil(msg:find(SECRET .. "-", 1, true))
  assert.is_nil(msg:find("wrong-secret-key-42", 1, true), "secret in: " .. msg)
  assert.is_nil(msg:find("%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x"),
    "a signature-like hex string in: " .. msg)
end

-- The storage behaviour suite, every request through the checker.
local before = stats()
require("spec.storage_contract").run(describe, it, assert, open, { kind = "s3" })

describe("s3check (the botocore signature check)", function()
  it("checked the behaviour suite's requests and rejected none", function()
    local now = stats()
    assert.is_true(now.checked - before.checked > 50, "only " .. (now.checked - before.checked) .. " requests checked")
    assert.are.equal(before.rejected, now.rejected, "the checker rejected requests; its log:\n" .. checker:log_text())
  end)

  -- A client that signs correctly, then tampers with the request.
  local function client(tamper, secret)
    return api.new{ name = "s3", endpoint = checker.url, sign = function(req)
      local sign = sigv4.signer{ access_key = ACCESS, secret_key = secret or SECRET, region = REGION, service = "s3" }
      sign(req)
      if tamper then tamper(req) end
    end }
  end

  local function make_bucket(name)
    assert(open(name))
    return name
  end

  it("accepts a correctly signed request", function()
    local b = make_bucket("check-ok")
    local r = assert(client():request{ method = "PUT", path = "/" .. b .. "/k", body = "hello",
      headers = { ["x-amz-meta-note"] = "a" } })
    assert.are.equal(200, r.status)
  end)

  it("refuses a request whose signed header changed after signing", function()
    local b = make_bucket("check-tamper")
    local r, msg, code = client(function(req) req.headers["x-amz-meta-note"] = "b" end):request{
      method = "PUT", path = "/" .. b .. "/k", body = "hello", headers = { ["x-amz-meta-note"] = "a" } }
    assert.is_nil(r)
    assert.are.equal("AUTH", code, msg)
    assert.matches("403", msg)
  end)

  it("refuses a request whose path changed after signing", function()
    local b = make_bucket("check-tamper-path")
    local r, _, code = client(function(req) req.url = req.url:gsub("/k1$", "/k2") end):request{
      method = "PUT", path = "/" .. b .. "/k1", body = "hello" }
    assert.is_nil(r)
    assert.are.equal("AUTH", code)
  end)

  it("refuses a body with one byte changed after signing", function()
    local b = make_bucket("check-tamper-body")
    local r, _, _, resp = client(function(req) req.body = "hellp" end):request{
      method = "PUT", path = "/" .. b .. "/k", body = "hello" }
    assert.is_nil(r)
    assert.are.equal(400, resp.status)
    assert.matches("XAmzContentSHA256Mismatch", resp.body)
  end)

  it("refuses a Content-MD5 that does not match the body (signed, so only the digest is wrong)", function()
    local b = make_bucket("check-md5")
    local r, _, _, resp = client():request{ method = "PUT", path = "/" .. b .. "/k", body = "hello",
      headers = { ["Content-MD5"] = "XrY7u+Ae7tCTyyK7j1rNww==" } } -- MD5 of "hello world"
    assert.is_nil(r)
    assert.are.equal(400, resp.status)
    assert.matches("BadDigest", resp.body)
  end)

  it("keeps signatures out of its log", function()
    local st = assert(open("check-log"))
    assert(st:put("k", "v"))
    assert(http.get(assert(st:url("k")), { retries = 0 }))
    local log = checker:log_text()
    assert.matches("X%-Amz%-Signature=REDACTED", log)
    assert.is_nil(log:find("X-Amz-Signature=%x"), "a signature in the checker's log")
    assert(st:remove_all())
  end)

  it("refuses a wrong secret key", function()
    local b = make_bucket("check-secret")
    local r, _, code, resp = client(nil, "wrong-secret-key-42"):request{ method = "GET", path = "/" .. b .. "/k" }
    assert.is_nil(r)
    assert.are.equal("AUTH", code)
    assert.matches("SignatureDoesNotMatch", resp.body)
  end)

  it("refuses a CreateBucket whose location constraint is not the signed region", function()
    local c = api.new{ name = "s3", endpoint = checker.url,
      sign = sigv4.signer{ access_key = ACCESS, secret_key = SECRET, region = "eu-west-1", service = "s3" } }
    local body = '<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' ..
      '<LocationConstraint>us-west-2</LocationConstraint></CreateBucketConfiguration>'
    local r, _, _, resp = c:request{ method = "PUT", path = "/check-location", body = body }
    assert.is_nil(r)
    assert.matches("IllegalLocationConstraintException", resp.body)
    local r2, _, _, resp2 = c:request{ method = "PUT", path = "/check-location" }
    assert.is_nil(r2)
    assert.matches("IllegalLocationConstraintException", resp2.body)
  end)

  it("refuses an anonymous request", function()
    local r = http.get(checker.url .. "/check-ok/k", { retries = 0 })
    assert.is_nil(r)
  end)
end)

describe("s3 storage", function()
  it("lists across pages (max-keys 2) with markers", function()
    local st = assert(open("paged", { page_size = 2 }))
    local names = { "e", "a", "tools/c", "b", "tools/d" }
    for _, n in ipairs(names) do assert(st:put(n, n)) end
    local c0 = stats().checked
    assert.are.same({ "a", "b", "e", "tools/c", "tools/d" }, assert(st:list()))
    assert.is_true(stats().checked - c0 >= 3, "the listing did not paginate")
    assert.are.same({ "tools/c", "tools/d" }, assert(st:list("tools/")))
    assert(st:remove_all())
    st:close()
  end)

  it("refuses a wrong secret key with one AUTH error naming secret-key and the endpoint, not the secret", function()
    local st, msg, code = open("wrong-secret", { secret_key = "wrong-secret-key-42" })
    assert.is_nil(st)
    assert.are.equal("AUTH", code)
    assert.matches("secret%-key", msg)
    assert.truthy(msg:find(checker.url, 1, true), msg)
    assert.matches("SignatureDoesNotMatch", msg)
    no_secret(msg)
    -- The same through an object operation of a store made without create.
    local st2 = assert(open("wrong-secret", { secret_key = "wrong-secret-key-42", create = false }))
    local r, msg2, code2 = st2:put("x", "y")
    assert.is_nil(r)
    assert.are.equal("AUTH", code2)
    no_secret(msg2)
  end)

  it("refuses an unknown access key with AUTH naming access-key", function()
    local st, msg, code = open("wrong-access", { access_key = "AKIDUNKNOWN" })
    assert.is_nil(st)
    assert.are.equal("AUTH", code)
    assert.matches("InvalidAccessKeyId", msg)
    assert.matches("access%-key", msg)
    no_secret(msg)
  end)

  it("says to check the clock when the server refuses the request time", function()
    local st, msg, code = open("skewed", { clock = function() return os.time() - 3600 end })
    assert.is_nil(st)
    assert.are.equal("CLOCK", code)
    assert.matches("RequestTimeTooSkewed", msg)
    local _, n = msg:gsub("check this machine's clock", "")
    assert.are.equal(1, n, "the advice once: " .. msg)
  end)

  it("reports a malformed ListObjects body as CORRUPT, naming the bucket and endpoint", function()
    local st = assert(open("malformed"))
    assert(st:put("a", "1"))
    inject("malformed-list")
    local r, msg, code = st:list()
    assert.is_nil(r)
    assert.are.equal("CORRUPT", code)
    assert.matches("ListObjects", msg)
    assert.truthy(msg:find(checker.url, 1, true), msg)
    assert.are.same({ "a" }, assert(st:list())) -- the next answer is the real one
    assert(st:remove_all())
  end)

  it("gives presigned URLs that the checker verifies, and refuses expired or tampered ones", function()
    local st = assert(open("presigned"))
    assert(st:put("tools/x.tgz", "payload"))
    local url = assert(st:url("tools/x.tgz", { expires = 600 }))
    assert.matches("X%-Amz%-Expires=600", url)
    assert.are.equal("payload", assert(http.get(url, { retries = 0 })).body)
    -- Signed two hours ago for one minute: expired by the checker's clock.
    local old = assert(open("presigned", { clock = function() return os.time() - 7200 end, create = false }))
    local expired = assert(old:url("tools/x.tgz", { expires = 60 }))
    local r, msg, _, resp = http.get(expired, { retries = 0 })
    assert.is_nil(r)
    assert.matches("403", msg)
    assert.matches("Request has expired", resp.body)
    local tampered = url:gsub("tools/x%.tgz", "tools/y.tgz")
    assert.is_nil((http.get(tampered, { retries = 0 })))
    assert.is_nil(st:url("x", { expires = 0 }))
    assert(st:remove_all())
  end)

  it("signs names with spaces and reserved characters as botocore does", function()
    local st = assert(open("odd-names"))
    local names = { "tools/a b.tgz", "x+y=z&w", "semi;colon,comma:(1)~!*'", "caf\xc3\xa9/%41" }
    for _, n in ipairs(names) do
      assert(st:put(n, n))
      assert.are.equal(n, assert(st:get(n)))
      assert.are.equal(n, assert(http.get(assert(st:url(n)), { retries = 0 })).body)
    end
    table.sort(names)
    assert.are.same(names, assert(st:list()))
    assert(st:remove_all())
  end)

  it("works in a region other than us-east-1 (LocationConstraint, scope)", function()
    local st = assert(open("in-eu", { region = "eu-west-1" }))
    assert(st:put("a", "1"))
    assert.are.equal("1", assert(st:get("a")))
    assert.truthy(assert(st:url("a")):find("%2Feu-west-1%2Fs3%2F", 1, true))
    assert.are.equal("1", assert(http.get(assert(st:url("a")), { retries = 0 })).body)
    assert(st:remove_all())
  end)

  it("put_file of a missing file or a directory fails naming it, and uploads nothing", function()
    local st = assert(open("put-file-errors"))
    local r, msg, code = st:put_file("x", "/nonexistent/juju-src")
    assert.is_nil(r)
    assert.are.equal("ENOENT", code)
    assert.matches("/nonexistent/juju%-src", msg)
    local r2, _, code2 = st:put_file("x", "/tmp")
    assert.is_nil(r2)
    assert.are.equal("EIO", code2)
    assert.is_false(st:exists("x"))
    assert(st:remove_all())
  end)

  it("retries a 500, signing the retry afresh", function()
    local st = assert(open("retry-500"))
    local r0 = stats().rejected
    inject("error-500")
    assert.is_true(st:put("a", "after a 500"))
    assert.are.equal("after a 500", assert(st:get("a")))
    assert.are.equal(r0, stats().rejected)
    inject("error-500", 3) -- every attempt fails: the error says so
    local r, msg, code = st:put("b", "never")
    assert.is_nil(r)
    assert.are.equal("HTTP", code)
    assert.matches("500", msg)
    assert.matches("InternalError", msg)
    assert(st:remove_all())
  end)

  it("retries a truncated download, and leaves no partial file when every attempt is cut", function()
    local st = assert(open("truncated"))
    local tmp = assert(fs.mkdtemp((os.getenv("TMPDIR") or "/tmp") .. "/juju-s3-trunc-"))
    local data = string.rep("0123456789abcdef", 8192)
    assert(st:put("obj", data))
    inject("truncate-get")
    assert.are.equal(#data, assert(st:get_to_file("obj", tmp .. "/one")))
    assert.are.equal(data, assert(fs.read_file(tmp .. "/one")))
    inject("truncate-get", 3)
    local r, msg = st:get_to_file("obj", tmp .. "/two")
    assert.is_nil(r)
    assert.is_string(msg)
    assert.are.same({ "one" }, assert(fs.list(tmp)))
    fs.remove_tree(tmp)
    assert(st:remove_all())
  end)

  it("creates the bucket idempotently", function()
    assert(open("twice"))
    local st = assert(open("twice"))
    assert(st:remove_all())
  end)

  it("works with virtual-hosted buckets (path_style false) through an HTTP proxy", function()
    local st = assert(open("vhosted", { endpoint = "http://s3.test", path_style = false,
      http = { proxy = { http = checker.url } } }))
    assert(st:put("tools/a b.tgz", "vh"))
    assert.are.equal("vh", assert(st:get("tools/a b.tgz")))
    assert.are.same({ "tools/a b.tgz" }, assert(st:list()))
    local url = assert(st:url("tools/a b.tgz"))
    assert.truthy(url:find("^http://vhosted%.s3%.test/tools/a%%20b%.tgz%?"), url)
    assert.are.equal("vh", assert(http.get(url, { retries = 0, proxy = { http = checker.url } })).body)
    assert(st:remove_all())
    -- The same bucket seen path-style: gone with remove_all.
    assert.are.same({}, assert(assert(open("vhosted", { create = false })):list()))
  end)

  it("builds virtual-hosted URLs when path_style is false", function()
    local st = assert(s3.new{ endpoint = "https://s3.example.com", region = "eu-west-1", bucket = "juju-x",
      access_key = "AK", secret_key = "SK", path_style = false, create = false, clock = function() return 0 end })
    local url = assert(st:url("tools/a b.tgz"))
    assert.truthy(url:find("^https://juju%-x%.s3%.example%.com/tools/a%%20b%.tgz%?"), url)
    assert.truthy(url:find("X-Amz-Credential=AK%2F19700101%2Feu-west-1%2Fs3%2Faws4_request", 1, true), url)
  end)

  it("refuses a bucket name S3 would refuse, with EINVAL naming it", function()
    for _, b in ipairs({ "ab", "Upper", "-lead", "trail-", "a..b", "192.168.1.1", "under_score", ("x"):rep(64) }) do
      local st, msg, code = open(b)
      assert.is_nil(st, b)
      assert.are.equal("EINVAL", code)
      assert.truthy(msg:find(string.format("%q", b), 1, true), msg)
    end
    assert.is_true(s3.check_bucket_name("juju-0123.abc"))
  end)

  it("raises on misuse: missing options, use after close", function()
    assert.has_error(function() s3.new{ endpoint = checker.url, region = REGION, bucket = "b", access_key = "a" } end)
    assert.has_error(function()
      s3.new{ endpoint = "ftp://x", region = REGION, bucket = "b", access_key = "a", secret_key = "s", create = false }
    end)
    local st = assert(open("closing", { create = false }))
    st:close()
    assert.has_error(function() st:get("a") end)
  end)
end)
