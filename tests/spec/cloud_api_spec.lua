-- cloud_api_spec.lua: juju.cloud.api against the scripted server
-- (tests/servers/scripted): retries, throttling and backoff on a virtual
-- clock, signing per attempt and per redirect, every error dialect, faults
-- (truncated, slow, silent servers), the credential and clock messages,
-- redaction, and the proxy settings.
local api = require("juju.cloud.api")
local crypto = require("juju.crypto")
local scripted = require("servers.scripted.control")

local SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
local ACCESS = "AKIDEXAMPLE"

local function virtual_clock()
  local c = { t = 0, sleeps = {} }
  c.monotonic = function() return c.t end
  c.time = function() return 1700000000 + c.t end
  c.sleep = function(d)
    c.sleeps[#c.sleeps + 1] = d
    c.t = c.t + d
    return true
  end
  return c
end

-- A logger collecting lines, as juju.log's module views are used.
local function capture_log()
  local lines = {}
  local function add(_, fmt, ...) lines[#lines + 1] = string.format(fmt, ...) end
  return { debugf = add, infof = add, lines = lines }
end

-- A toy signer: the signature covers the secret, the method, the URL and
-- the date, so a re-signed attempt or redirect carries a different one.
local signed = {}
local function sign_with(clock)
  return function(req)
    local date = string.format("%.3f", clock.t)
    req.headers["X-Date"] = date
    req.headers["Authorization"] = "TOY " .. ACCESS .. ":" ..
      crypto.sha256(SECRET .. req.method .. req.url .. date .. req.attempt)
    signed[#signed + 1] = { url = req.url, attempt = req.attempt, redirects = req.redirects,
                            auth = req.headers["Authorization"] }
  end
end

local function esc(s) return (s:gsub("%p", "%%%0")) end

describe("juju.cloud.api", function()
  local s, proxy, clock, lg

  setup(function()
    s = scripted.start { host = "127.0.0.31", name = "scripted-origin" }
    proxy = scripted.start { host = "127.0.0.32", name = "scripted-proxy" }
  end)

  teardown(function()
    if s then s:stop() end
    if proxy then proxy:stop() end
  end)

  before_each(function()
    s:reset()
    proxy:reset()
    signed = {}
    clock = virtual_clock()
    lg = capture_log()
  end)

  local function client(extra)
    local o = { name = "toy", endpoint = s.url, sign = sign_with(clock), clock = clock, log = lg,
                secrets = { SECRET }, credential_keys = { "access-key", "secret-key" } }
    for k, v in pairs(extra or {}) do o[k] = v end
    return api.new(o)
  end

  describe("retries", function()
    it("retries an idempotent call after a 500", function()
      s:script("/i", { { status = 500, body = "oops" }, { status = 200, body = "fine" } })
      local r = assert(client():request { path = "/i", idempotent = true })
      assert.are.equal("fine", r.body)
      assert.are.equal(2, r.attempts)
      assert.are.equal(2, #s:requests())
      assert.are.equal(1, #clock.sleeps)
    end)

    it("never retries a call that is neither idempotent nor carries a client token", function()
      s:script("/n", { { status = 500, body = "oops" }, { status = 200 } })
      local r, msg, code = client():request { method = "POST", path = "/n", body = "x" }
      assert.is_nil(r)
      assert.are.equal("HTTP", code)
      assert.matches("^toy: POST " .. esc(s.url) .. "/n: 500 Internal Server Error: oops$", msg)
      assert.are.equal(1, #s:requests())
      assert.are.same({}, clock.sleeps)
    end)

    it("does not retry a throttled unsafe call, and says why", function()
      s:script("/t", { { status = 429 } })
      local r, msg, code = client():request { method = "POST", path = "/t" }
      assert.is_nil(r)
      assert.are.equal("THROTTLED", code)
      assert.matches("not retried: the call is neither idempotent nor carries a client token", msg)
      assert.are.equal(1, #s:requests())
    end)

    it("retries a call carrying a client token", function()
      s:script("/", { { status = 503 }, { status = 200, body = "<RunInstancesResponse/>" } })
      local r = assert(client():request { method = "POST", path = "/",
        query = { Action = "RunInstances", ClientToken = "tok-1" }, client_token = "tok-1" })
      assert.are.equal(2, r.attempts)
      local seen = s:requests()
      assert.are.equal(2, #seen)
      assert.matches("ClientToken=tok%-1", seen[2].query)
    end)

    it("retries a truncated response (Content-Length larger than sent)", function()
      s:script("/trunc", { { status = 200, body = "partial", truncate = 100 }, { status = 200, body = "whole" } })
      local r = assert(client():request { path = "/trunc", idempotent = true })
      assert.are.equal("whole", r.body)
      s:script("/trunc2", { { status = 200, body = "partial", truncate = 100 } })
      local r2, msg, code = client():request { method = "POST", path = "/trunc2" }
      assert.is_nil(r2)
      assert.are.equal("HTTP", code)
      assert.matches("^toy: POST " .. esc(s.url) .. "/trunc2: ", msg)
    end)

    it("does not retry other 4xx answers", function()
      s:script("/bad", { { status = 400, body = "<Error><Code>InvalidParameterValue</Code><Message>bad</Message></Error>" } })
      local r, _, code = client():request { path = "/bad", idempotent = true }
      assert.is_nil(r)
      assert.are.equal("INVALID", code)
      assert.are.equal(1, #s:requests())
    end)

    it("gives up after the attempts, naming how many", function()
      s:script("/down", { { status = 502 } })
      local r, msg, code = client { attempts = 4 }:request { path = "/down", idempotent = true }
      assert.is_nil(r)
      assert.are.equal("HTTP", code)
      assert.matches("gave up after 4 attempts", msg)
      assert.are.equal(4, #s:requests())
      assert.are.equal(3, #clock.sleeps)
    end)
  end)

  describe("throttling", function()
    it("honours Retry-After in seconds on the clock", function()
      s:script("/ra", { { status = 503, headers = { ["Retry-After"] = "7" } }, { status = 200 } })
      assert(client():request { path = "/ra", idempotent = true })
      assert.are.same({ 7 }, clock.sleeps)
    end)

    it("honours Retry-After as an HTTP-date", function()
      local date = os.date("!%a, %d %b %Y %H:%M:%S GMT", clock.time() + 12)
      s:script("/rd", { { status = 429, headers = { ["Retry-After"] = date } }, { status = 200 } })
      assert(client():request { path = "/rd", idempotent = true })
      assert.are.same({ 12 }, clock.sleeps)
    end)

    it("maps EC2's RequestLimitExceeded and Throttling to THROTTLED and retries them", function()
      local ec2 = '<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.'
        .. '</Message></Error></Errors><RequestID>r-1</RequestID></Response>'
      local throttling = '<ErrorResponse><Error><Code>Throttling</Code><Message>Rate exceeded</Message>'
        .. '</Error></ErrorResponse>'
      s:script("/ec2", { { status = 503, body = ec2 }, { status = 400, body = throttling }, { status = 200, body = "ok" } })
      local r = assert(client():request { path = "/ec2", idempotent = true })
      assert.are.equal(3, r.attempts)
      s:script("/ec2b", { { status = 503, body = ec2 } })
      local r2, msg, code = client { attempts = 1 }:request { path = "/ec2b", idempotent = true }
      assert.is_nil(r2)
      assert.are.equal("THROTTLED", code)
      assert.matches("RequestLimitExceeded: Request limit exceeded%.", msg)
    end)

    it("stops rather than wait past the deadline", function()
      s:script("/long", { { status = 503, headers = { ["Retry-After"] = "600" } }, { status = 200 } })
      local r, msg, code = client { deadline = 60 }:request { path = "/long", idempotent = true }
      assert.is_nil(r)
      assert.are.equal("THROTTLED", code)
      assert.matches("the Retry%-After of 600 s would pass the request's deadline of 60 s", msg)
      assert.are.same({}, clock.sleeps)
      assert.are.equal(1, #s:requests())
    end)

    it("backs off exponentially, capped, jittered by the random source", function()
      s:script("/busy", { { status = 500 } })
      local rs = { 0, 1, 0.5, 0.25, 0, 1, 0 }
      local i = 0
      local c = client { attempts = 8, backoff = { base = 1, cap = 10, jitter = 0.5 },
                         random = function() i = i + 1; return rs[i] end, deadline = 1000 }
      assert.is_nil(c:request { path = "/busy", idempotent = true })
      -- min(10, 2^(n-1)) * (1 - 0.5 * r)
      assert.are.same({ 1, 1, 3, 7, 10, 5, 10 }, clock.sleeps)
    end)

    it("jitters with the default random source and never exceeds the cap", function()
      s:script("/busy2", { { status = 503 } })
      local c = client { attempts = 12, deadline = 10000 }
      assert.is_nil(c:request { path = "/busy2", idempotent = true })
      assert.are.equal(11, #clock.sleeps)
      local distinct = {}
      for n, d in ipairs(clock.sleeps) do
        local full = math.min(api.BACKOFF_CAP, api.BACKOFF_BASE * 2 ^ (n - 1))
        assert.is_true(d <= full and d >= full * (1 - api.BACKOFF_JITTER), "pause " .. n .. " = " .. d)
        distinct[d] = true
      end
      local count = 0
      for _ in pairs(distinct) do count = count + 1 end
      assert.is_true(count > 5)
    end)
  end)

  describe("signing", function()
    it("signs every attempt afresh: the server sees different signatures and dates", function()
      s:script("/s", { { status = 503 }, { status = 503 }, { status = 200 } })
      assert(client():request { path = "/s", idempotent = true })
      local seen = s:requests()
      assert.are.equal(3, #seen)
      assert.are.equal(3, #signed)
      assert.are_not.equal(seen[1].headers.authorization, seen[2].headers.authorization)
      assert.are_not.equal(seen[2].headers.authorization, seen[3].headers.authorization)
      assert.are_not.equal(seen[1].headers["x-date"], seen[2].headers["x-date"])
      for n = 1, 3 do
        assert.are.equal(n, signed[n].attempt)
        assert.are.equal(signed[n].auth, seen[n].headers.authorization)
      end
    end)

    it("signs a redirect afresh, for its new URL", function()
      s:script("/old", { { status = 307, headers = { Location = s.url .. "/new?x=1" } } })
      s:script("/new", { { status = 200, body = "moved" } })
      local r = assert(client():request { method = "PUT", path = "/old", body = "data", idempotent = true })
      assert.are.equal("moved", r.body)
      assert.are.equal(2, #signed)
      assert.are.equal(s.url .. "/new?x=1", signed[2].url)
      assert.are.equal(1, signed[2].redirects)
      local seen = s:requests()
      assert.are.equal("/new", seen[2].path)
      assert.are.equal("PUT", seen[2].method)
      assert.are.equal("data", seen[2].body)
      assert.are.equal(signed[2].auth, seen[2].headers.authorization)
    end)

    it("downloads to_file through a redirect, the file holding only the final body", function()
      local fs = require("juju.fs")
      local dir = assert(fs.mkdtemp((os.getenv("TMPDIR") or "/tmp") .. "/juju-cloud-api-dl-"))
      s:script("/obj", { { status = 307, headers = { Location = "/real-obj" }, body = "go away" } })
      s:script("/real-obj", { { status = 200, body = "the object" } })
      local r = assert(client():request { path = "/obj", to_file = dir .. "/obj", idempotent = true })
      assert.are.equal(200, r.status)
      local content = fs.read_file(dir .. "/obj")
      fs.remove_tree(dir)
      assert.are.equal("the object", content)
      assert.are.equal(2, #signed)
    end)

    it("stops a redirect loop, and a redirect without a Location", function()
      s:script("/loop", { { status = 302, headers = { Location = "/loop" } } })
      local r, msg, code = client():request { path = "/loop", idempotent = true }
      assert.is_nil(r)
      assert.are.equal("HTTP", code)
      assert.matches("302 Found: too many redirects$", msg)
      assert.are.equal(api.MAX_REDIRECTS + 1, #s:requests())
      s:script("/noloc", { { status = 301 } })
      r, msg, code = client():request { path = "/noloc" }
      assert.is_nil(r)
      assert.are.equal("HTTP", code)
      assert.matches("301 Moved Permanently: a redirect without a usable Location$", msg)
    end)

    it("checks the body sent against the hash that was signed", function()
      local r = assert(client():request { method = "PUT", path = "/h", body = "abc",
        body_sha256 = crypto.sha256("abc") })
      assert.are.equal(crypto.sha256("abc"), r.body_sha256)
      local r2, msg, code = client():request { method = "PUT", path = "/h", body = "abd",
        body_sha256 = crypto.sha256("abc") }
      assert.is_nil(r2)
      assert.are.equal("ECHECKSUM", code)
      assert.matches("is not the one signed", msg)
    end)
  end)

  describe("error bodies", function()
    local cases = {
      { "EC2 XML", 400, '<?xml version="1.0"?><Response><Errors><Error><Code>InvalidInstanceID.NotFound</Code>'
        .. '<Message>The instance ID \'i-1\' does not exist</Message></Error></Errors><RequestID>x</RequestID></Response>',
        "NOT_FOUND", "InvalidInstanceID.NotFound", "The instance ID 'i%-1' does not exist" },
      { "EC2 quota", 400, '<Response><Errors><Error><Code>InstanceLimitExceeded</Code><Message>Your quota allows'
        .. ' for 0 more running instance(s).</Message></Error></Errors></Response>',
        "QUOTA", "InstanceLimitExceeded", "Your quota allows for 0 more running instance%(s%)%." },
      { "EC2 duplicate", 400, '<Response><Errors><Error><Code>InvalidGroup.Duplicate</Code><Message>The security'
        .. ' group \'juju-env\' already exists</Message></Error></Errors></Response>',
        "CONFLICT", "InvalidGroup.Duplicate", "already exists" },
      { "S3 XML", 404, '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchBucket</Code><Message>The '
        .. 'specified bucket does not exist</Message><BucketName>b</BucketName></Error>',
        "NOT_FOUND", "NoSuchBucket", "The specified bucket does not exist" },
      { "S3 conflict", 409, '<Error><Code>BucketAlreadyOwnedByYou</Code><Message>Your previous request to create'
        .. ' the named bucket succeeded</Message></Error>', "CONFLICT", "BucketAlreadyOwnedByYou", "succeeded" },
      { "Azure XML", 404, '<?xml version="1.0" encoding="utf-8"?><Error xmlns="http://schemas.microsoft.com/'
        .. 'windowsazure"><Code>ResourceNotFound</Code><Message>The hosted service does not exist.</Message></Error>',
        "NOT_FOUND", "ResourceNotFound", "The hosted service does not exist%." },
      { "Azure blob", 409, '\239\187\191<?xml version="1.0" encoding="utf-8"?><Error><Code>ContainerAlreadyExists'
        .. '</Code><Message>The specified container already exists.\nRequestId:1</Message></Error>',
        "CONFLICT", "ContainerAlreadyExists", "The specified container already exists%. RequestId:1" },
      { "OpenStack JSON", 404, '{"itemNotFound": {"message": "Instance could not be found", "code": 404}}',
        "NOT_FOUND", "itemNotFound", "Instance could not be found" },
      { "OpenStack badRequest", 400, '{"badRequest": {"message": "Invalid flavorRef provided.", "code": 400}}',
        "INVALID", "badRequest", "Invalid flavorRef provided%." },
      { "Keystone JSON", 401, '{"error": {"message": "The request you have made requires authentication.",'
        .. ' "code": 401, "title": "Unauthorized"}}', "AUTH", "Unauthorized", "requires authentication" },
      { "OpenStack overLimit", 413, '{"overLimit": {"message": "This request was rate-limited.", "code": 413}}',
        "THROTTLED", "overLimit", "rate%-limited" },
      { "Joyent JSON", 404, '{"code":"ResourceNotFound","message":"VM not found"}',
        "NOT_FOUND", "ResourceNotFound", "VM not found" },
      { "Joyent invalid", 409, '{"code":"InvalidArgument","message":"name is invalid"}',
        "INVALID", "InvalidArgument", "name is invalid" },
      { "MAAS text", 404, "No matching node found.\n", "NOT_FOUND", nil, "No matching node found%." },
      { "MAAS conflict", 409, "Node cannot be acquired: it is already allocated.", "CONFLICT", nil, "already allocated" },
    }
    for _, case in ipairs(cases) do
      local what, status, body, stable, cloud, text = table.unpack(case, 1, 6)
      it("maps " .. what .. " to " .. stable .. ", keeping the cloud's message", function()
        s:script("/e", { { status = status, body = body } })
        local r, msg, code, eresp = client():request { path = "/e" }
        assert.is_nil(r)
        assert.are.equal(stable, code)
        assert.matches(text, msg)
        assert.are.equal(status, eresp.status)
        assert.are.equal(cloud, eresp.cloud_code)
        if cloud and code ~= "AUTH" then assert.matches(esc(cloud) .. ": ", msg) end
      end)
    end

    it("falls back to the status for malformed XML and JSON, quoting a snippet", function()
      s:script("/mx", { { status = 404, body = "<Error><Code>NoSuchKey</Code><Message>oops</Error>" } })
      local r, msg, code = client():request { path = "/mx" }
      assert.is_nil(r)
      assert.are.equal("NOT_FOUND", code)
      assert.matches("unparseable XML error body: <Error><Code>NoSuchKey", msg)
      s:script("/mj", { { status = 409, body = '{"conflictingRequest": {"message": "busy"' } })
      r, msg, code = client():request { path = "/mj" }
      assert.is_nil(r)
      assert.are.equal("CONFLICT", code)
      assert.matches("unparseable JSON error body: {\"conflictingRequest\"", msg)
      s:script("/empty", { { status = 500 } })
      r, msg, code = client():request { path = "/empty" }
      assert.is_nil(r)
      assert.are.equal("HTTP", code)
      assert.matches(": 500 Internal Server Error$", msg)
      s:script("/html", { { status = 502, body = "<html><body><h1>502 Bad Gateway</h1></body></html>" } })
      r, msg = client():request { path = "/html" }
      assert.is_nil(r)
      assert.matches("502 Bad Gateway: 502 Bad Gateway$", msg)
    end)

    it("uses a named parser or the caller's own", function()
      s:script("/own", { { status = 400, body = "weird" } })
      local r, msg, code = client { errors = function(resp) return "QUOTA", "custom: " .. resp.body end }
        :request { path = "/own" }
      assert.is_nil(r)
      assert.are.equal("QUOTA", code)
      assert.matches("custom: weird", msg)
      code = select(3, client { errors = function() return "LimitExceeded" end }:request { path = "/own" })
      assert.are.equal("QUOTA", code)
      code = select(3, client { errors = "maas" }:request { path = "/own" })
      assert.are.equal("INVALID", code)
      assert.has_error(function() api.new { endpoint = s.url, errors = "nope" } end)
    end)
  end)

  describe("credentials and clocks", function()
    it("gives one AUTH error naming the credential keys and the endpoint, never the secret", function()
      s:script("/", { { status = 401, body = '<Response><Errors><Error><Code>AuthFailure</Code><Message>AWS was '
        .. 'not able to validate the provided access credentials</Message></Error></Errors></Response>' } })
      local r, msg, code = client():request { path = "/", query = { Action = "DescribeInstances" }, idempotent = true }
      assert.is_nil(r)
      assert.are.equal("AUTH", code)
      assert.matches("^toy: the credentials were refused by " .. esc(s.url) .. " %(GET " .. esc(s.url)
        .. "/%?Action=DescribeInstances: 401 Unauthorized: AuthFailure: AWS was not able to validate the"
        .. " provided access credentials%); check the environment's access%-key, secret%-key settings$", msg)
      assert.is_nil(msg:find(SECRET, 1, true))
      assert.are.equal(1, #s:requests())
    end)

    local skews = {
      { "S3 RequestTimeTooSkewed", 403, "<Error><Code>RequestTimeTooSkewed</Code><Message>The difference between "
        .. "the request time and the current time is too large.</Message></Error>" },
      { "EC2 RequestExpired", 400, "<Response><Errors><Error><Code>RequestExpired</Code><Message>Request has "
        .. "expired.</Message></Error></Errors></Response>" },
      { "SigV4 Signature expired", 403, "<ErrorResponse><Error><Code>SignatureDoesNotMatch</Code><Message>Signature "
        .. "expired: 20130524T000000Z is now earlier than 20130524T000500Z</Message></Error></ErrorResponse>" },
      { "Azure date too old", 403, '<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthenticationFailed</Code>'
        .. "<Message>Server failed to authenticate the request. Request date header too old: 'Fri, 01 Jan 2010 "
        .. "00:00:00 GMT'</Message></Error>" },
    }
    for _, case in ipairs(skews) do
      it("says to check the clock on " .. case[1], function()
        s:script("/skew", { { status = case[2], body = case[3] } })
        local r, msg, code = client():request { path = "/skew", idempotent = true }
        assert.is_nil(r)
        assert.are.equal("CLOCK", code)
        assert.matches("rejected the request's time", msg)
        assert.matches("check this machine's clock", msg)
        assert.are.equal(1, #s:requests())
      end)
    end

    it("keeps an expired token an AUTH error", function()
      s:script("/tok", { { status = 400, body = "<Response><Errors><Error><Code>ExpiredToken</Code><Message>The "
        .. "security token included in the request is expired</Message></Error></Errors></Response>" } })
      local _, _, code = client { errors = function(resp)
        local c, m = api.parse_error(resp)
        return c == "ExpiredToken" and "AUTH" or c, m
      end }:request { path = "/tok" }
      assert.are.equal("AUTH", code)
    end)
  end)

  describe("faults", function()
    it("survives a slow server", function()
      s:script("/slow", { { status = 200, body = string.rep("x", 4000), trickle = { 4, 0.2 } } })
      local r = assert(client():request { path = "/slow", idempotent = true })
      assert.are.equal(string.rep("x", 4000), r.body)
    end)

    it("gives HTTP_TIMEOUT naming the URL when the server stops answering", function()
      s:script("/silent", { { hang = true } })
      local r, msg, code = client { deadline = 1 }:request { path = "/silent", idempotent = true }
      assert.is_nil(r)
      assert.are.equal("HTTP_TIMEOUT", code)
      assert.matches("^toy: GET " .. esc(s.url) .. "/silent: .*deadline of 1 seconds", msg)
      assert.are.equal(1, #s:requests())
    end)
  end)

  describe("redaction", function()
    local function assert_clean(text)
      assert.is_nil(text:find(SECRET, 1, true), text)
      for _, sg in ipairs(signed) do
        local sig = sg.auth:match(":(%x+)$")
        assert.is_nil(text:find(sig, 1, true), text)
      end
      assert.is_nil(text:find("c2lnbmF0dXJl", 1, true), text)
      assert.is_nil(text:find("tok-secret-1", 1, true), text)
      assert.is_nil(text:find("sessiontoken9", 1, true), text)
    end

    it("keeps credentials and signatures out of every log line and message", function()
      local echo = "<Error><Code>SignatureDoesNotMatch</Code><Message>We calculated a different signature; "
        .. "yours was in Authorization: whatever; the string to sign used " .. SECRET
        .. " and https://x/?X-Amz-Signature=c2lnbmF0dXJl&sig=c2lnbmF0dXJl</Message></Error>"
      s:script("/red", { { status = 503 }, { status = 403, body = echo } })
      local c = client { attempts = 2 }
      local r, msg, code = c:request { path = "/red", idempotent = true,
        query = { ["X-Amz-Signature"] = "c2lnbmF0dXJl", sig = "c2lnbmF0dXJl", keep = "visible" },
        headers = { ["X-Auth-Token"] = "tok-secret-1", ["x-amz-security-token"] = "sessiontoken9" } }
      assert.is_nil(r)
      assert.are.equal("AUTH", code)
      assert_clean(msg)
      assert.matches("X%-Amz%-Signature=REDACTED", msg)
      assert.matches("keep=visible", msg)
      assert.is_nil(msg:find("Authorization: whatever", 1, true))
      assert.matches("Authorization: REDACTED", msg)
      assert.is_true(#lg.lines >= 4)
      local all = table.concat(lg.lines, "\n")
      assert_clean(all)
      assert.matches("Authorization: REDACTED", all)
      assert.matches("X%-Auth%-Token: REDACTED", all)
      assert.matches("retrying in", all)
      -- The server did get them: the test checks the real thing.
      local seen = s:requests()
      assert.are.equal("tok-secret-1", seen[1].headers["x-auth-token"])
    end)

    it("redacts SAS sig= and OAuth signatures in messages and logs", function()
      s:script("/sas", { { status = 404, body = "see https://acct.blob/c/b?sv=2015&sig=c2lnbmF0dXJl and "
        .. 'OAuth oauth_signature="%26' .. SECRET .. '", oauth_token="tok-secret-1"' } })
      local r, msg = client():request { path = "/sas", query = { sig = "c2lnbmF0dXJl" } }
      assert.is_nil(r)
      assert_clean(msg)
      assert.matches("sig=REDACTED", msg)
      assert.matches('oauth_token="REDACTED"', msg)
      assert_clean(table.concat(lg.lines, "\n"))
    end)
  end)

  describe("proxy and CA settings", function()
    it("maps the environment config to juju.http options", function()
      local env = {}
      local getenv = function(k) return env[k] end
      assert.are.same({}, api.http_options({}, getenv))
      assert.are.same({ proxy = { http = "http://p:3128", https = "http://ps:3129", no_proxy = "localhost,.internal" } },
        api.http_options({ ["http-proxy"] = "http://p:3128", ["https-proxy"] = "http://ps:3129",
                           ["no-proxy"] = "localhost,.internal" }, getenv))
      assert.are.same({ proxy = { https = "http://ps:3129" } }, api.http_options({ ["https-proxy"] = "http://ps:3129",
        ["http-proxy"] = "" }, getenv))
      assert.are.same({ ca_file = "/etc/cloud-ca.pem", insecure = true },
        api.http_options({ ["cloud-ca-bundle-path"] = "/etc/cloud-ca.pem", ["ssl-hostname-verification"] = false }, getenv))
      env.SSL_CERT_FILE = "/env/ca.pem"
      assert.are.same({ ca_file = "/env/ca.pem" }, api.http_options({}, getenv))
      assert.are.same({ ca_file = "/cfg.pem" }, api.http_options({ ["cloud-ca-bundle-path"] = "/cfg.pem" }, getenv))
      env.SSL_CERT_FILE = nil
      assert.are.same({ deadline = 7 }, api.http_options({ ["cloud-request-timeout"] = 7 }, getenv))
      assert.are.same({}, api.http_options({ ["cloud-request-timeout"] = 0 }, getenv))
    end)

    it("gives up an attempt after cloud-request-timeout, naming the URL", function()
      s:script("/silent2", { { hang = true } })
      local r, msg, code = client { http = api.http_options { ["cloud-request-timeout"] = 1 } }:request {
        path = "/silent2", idempotent = true }
      assert.is_nil(r)
      assert.are.equal("HTTP_TIMEOUT", code)
      assert.matches("^toy: GET " .. esc(s.url) .. "/silent2: .*deadline of 1 seconds", msg)
      assert.are.equal(1, #s:requests())
    end)

    it("sends the calls through http-proxy", function()
      local c = client { http = api.http_options { ["http-proxy"] = proxy.url } }
      s:script("/via", { { status = 200, body = "through" } })
      local r = assert(c:request { path = "/via", idempotent = true })
      assert.are.equal("through", r.body)
      assert.are.equal("1.1 juju-scripted-proxy", r.headers.via)
      local through = proxy:requests()
      assert.are.equal(1, #through)
      assert.is_true(through[1].proxied)
      assert.are.equal(s.url .. "/via", through[1].target)
      assert.are.equal(signed[1].auth, through[1].headers.authorization)
      assert.are.equal(1, #s:requests())
    end)

    -- The tools and image metadata fetcher follows the same rule as the
    -- cloud API calls (juju.agenttools.fetcher uses http_options).
    it("sends simplestreams metadata fetches through http-proxy too", function()
      s:script("/streams/v1/index.json", { { status = 200, body = "{}" } })
      local fetch = require("juju.agenttools").fetcher { ["http-proxy"] = proxy.url }
      assert.are.equal("{}", assert(fetch(s.url .. "/streams/v1/index.json")))
      local through = proxy:requests()
      assert.are.equal(1, #through)
      assert.are.equal(s.url .. "/streams/v1/index.json", through[1].target)
      local direct = require("juju.agenttools").fetcher { ["http-proxy"] = proxy.url, ["no-proxy"] = s.host }
      s:script("/streams/v1/index.json", { { status = 200, body = "{}" } })
      assert.are.equal("{}", assert(direct(s.url .. "/streams/v1/index.json")))
      assert.are.equal(1, #proxy:requests())
    end)

    it("goes direct to hosts in no-proxy", function()
      local c = client { http = api.http_options { ["http-proxy"] = proxy.url, ["no-proxy"] = s.host } }
      local r = assert(c:request { path = "/direct", idempotent = true })
      assert.is_nil(r.headers.via)
      assert.are.equal(0, #proxy:requests())
      assert.are.equal(1, #s:requests())
    end)

    it("trusts the configured CA bundle (and fails without it)", function()
      local fs = require("juju.fs")
      local dir = assert(fs.mkdtemp((os.getenv("TMPDIR") or "/tmp") .. "/juju-cloud-api-ca-"))
      local ok = os.execute("cd '" .. dir .. "' && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1"
        .. " -nodes -days 2 -subj /CN=127.0.0.33 -addext subjectAltName=IP:127.0.0.33 -keyout key.pem -out cert.pem"
        .. " >/dev/null 2>&1")
      assert(ok, "openssl could not make a test certificate")
      local tls = scripted.start { host = "127.0.0.33", name = "scripted-tls-ca", tls = { dir .. "/cert.pem", dir .. "/key.pem" } }
      local okr, err = pcall(function()
        local c = client { endpoint = tls.url, http = api.http_options({ ["cloud-ca-bundle-path"] = dir .. "/cert.pem" },
          function() return nil end) }
        local r = assert(c:request { path = "/x", idempotent = true })
        assert.are.equal(200, r.status)
        local c2 = client { endpoint = tls.url, http = api.http_options({}, function() return nil end) }
        local r2, msg, code = c2:request { path = "/x" }
        assert.is_nil(r2)
        assert.are.equal("HTTP", code)
        assert.matches("^toy: GET " .. esc(tls.url) .. "/x: ", msg)
      end)
      tls:stop()
      fs.remove_tree(dir)
      assert(okr, err)
    end)
  end)

  describe("helpers", function()
    it("parses HTTP-dates", function()
      assert.are.equal(784111777, api.parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"))
      assert.are.equal(951782400, api.parse_http_date("Tue, 29 Feb 2000 00:00:00 GMT"))
      assert.is_nil(api.parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"))
    end)

    it("maps cloud codes by name and by suffix", function()
      assert.are.equal("NOT_FOUND", api.map_cloud_code("InvalidAMIID.NotFound"))
      assert.are.equal("INVALID", api.map_cloud_code("InvalidAMIID.Malformed"))
      assert.are.equal("QUOTA", api.map_cloud_code("VolumeLimitExceeded"))
      assert.are.equal("THROTTLED", api.map_cloud_code("RequestLimitExceeded"))
      assert.are.equal("AUTH", api.map_cloud_code("InvalidAccessKeyId"))
      assert.are.equal("CLOCK", api.map_cloud_code("AccessDenied", "Request has expired"))
      assert.are.equal("AUTH", api.map_cloud_code("AccessDenied", "Access Denied"))
      assert.is_nil(api.map_cloud_code("SomethingElse"))
    end)
  end)
end)
