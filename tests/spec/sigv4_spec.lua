-- Specs for juju.cloud.sign.sigv4 over every case of both editions of the
-- AWS SigV4 test suite in ../shared/conformance/signing (canonical
-- request, string to sign and Authorization compared for each case; the
-- directories are walked, so a new case is picked up) and go-amz's SigV4
-- vectors (amz-sign-vectors.json: presigned URLs, S3 headers, signing key).
local sigv4 = require("juju.cloud.sign.sigv4")
local fs = require("juju.fs")
local json = require("juju.json")
local crypto = require("juju.crypto")

local SHARED = os.getenv("JUJU_TEST_SHARED") or ((os.getenv("JUJU_TEST_SOURCE_DIR") or ".") .. "/../shared")
local SIGNING = SHARED .. "/conformance/signing"
local SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

-- Cases of the 2011 edition that upstream ships without expected outputs
-- (only the .req file): nothing to compare against. The spec checks they
-- still lack them, so a fuller copy of the suite makes this list fail.
local INCOMPLETE_2011 = {
  ["get-header-value-multiline"] = "only the .req file upstream (no .creq/.sts/.authz to compare)",
}

local function read(path)
  return assert(fs.read_file(path))
end

local MONTHS = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8, Sep = 9, Oct = 10,
  Nov = 11, Dec = 12 }

-- "Mon, 09 Sep 2011 23:36:00 GMT" -> "20110909T233600Z"
local function http_date_to_amz(s)
  local d, mon, y, hh, mm, ss = s:match("^%a+, (%d%d) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT$")
  assert(d, "bad Date header " .. s)
  return string.format("%s%02d%sT%s%s%sZ", y, MONTHS[mon], d, hh, mm, ss)
end

-- A .req file as {method, path, query, headers = {{name, value}...}, body}.
-- The two editions' harnesses read the request line differently: 2015
-- takes everything between the method and " HTTP/1.1" (get-space has a raw
-- space in its path); 2011 takes the second space-separated token (its
-- post-vanilla-query-space and -nonunreserved expectations were made that
-- way). A continuation line (leading whitespace) is one more value of the
-- header above it, which is how the 2015 multiline case's ',' join arises.
local function parse_req(text, edition)
  local head, body = text:match("^(.-)\n\n(.*)$")
  if not head then head, body = text, "" end
  local lines = {}
  for l in (head .. "\n"):gmatch("(.-)\n") do lines[#lines + 1] = l end
  local method, target
  if edition == 2015 then
    method, target = lines[1]:match("^(%S+) (.*) HTTP/1%.1$")
  else
    method, target = lines[1]:match("^(%S+) (%S+)")
  end
  assert(method, "bad request line: " .. lines[1])
  local path, query = target:match("^([^?]*)%?(.*)$")
  if not path then path, query = target, "" end
  local headers = {}
  for i = 2, #lines do
    local l = lines[i]
    if l:match("^[ \t]") then
      headers[#headers + 1] = { headers[#headers][1], l }
    elseif l ~= "" then
      local n, v = l:match("^([^:]+):(.*)$")
      assert(n, "bad header line: " .. l)
      headers[#headers + 1] = { n, v }
    end
  end
  return { method = method, path = path, query = query, headers = headers, body = body }
end

-- Every case of a suite: {name, dir, base} for each <case>.req, recursively.
local function find_cases(dir)
  local out = {}
  local function walk(d, rel)
    for _, n in ipairs(assert(fs.list(d))) do
      local p = d .. "/" .. n
      local st = assert(fs.stat(p))
      if st.type == "dir" then
        walk(p, rel .. n .. "/")
      elseif n:match("%.req$") then
        out[#out + 1] = { name = rel .. n:sub(1, -5), base = p:sub(1, -5) }
      end
    end
  end
  walk(dir, "")
  return out
end

local function run_case(c, edition)
  local r = parse_req(read(c.base .. ".req"), edition)
  local creds = { access_key = "AKIDEXAMPLE", secret_key = SECRET, region = "us-east-1",
    service = edition == 2015 and "service" or "host" }
  local opts = {}
  if edition == 2011 then
    local date
    for _, h in ipairs(r.headers) do if h[1]:lower() == "date" then date = h[2] end end
    creds.time = http_date_to_amz(date)
    opts.add_date = false
    opts.sort_values = true
  end
  local _, out = sigv4.sign(r, creds, opts)
  assert.are.equal(read(c.base .. ".creq"), out.creq, c.name .. ": canonical request")
  assert.are.equal(read(c.base .. ".sts"), out.sts, c.name .. ": string to sign")
  assert.are.equal(read(c.base .. ".authz"), out.authorization, c.name .. ": Authorization")
  local sreq = read(c.base .. ".sreq")
  assert.truthy(sreq:find("Authorization: " .. out.authorization, 1, true), c.name .. ": signed request")
end

describe("sigv4 over the AWS SigV4 test suite (2015 edition)", function()
  local cases = find_cases(SIGNING .. "/aws-sig-v4-test-suite")
  it("finds the suite's cases", function()
    assert.is_true(#cases >= 31, "found only " .. #cases .. " cases in " .. SIGNING)
  end)
  for _, c in ipairs(cases) do
    it(c.name, function() run_case(c, 2015) end)
  end
end)

describe("sigv4 over the AWS SigV4 test suite (2011 edition)", function()
  local cases = find_cases(SIGNING .. "/aws4_testsuite-2011")
  it("finds the suite's cases", function()
    assert.is_true(#cases >= 31, "found only " .. #cases .. " cases in " .. SIGNING)
  end)
  for _, c in ipairs(cases) do
    if INCOMPLETE_2011[c.name] then
      it(c.name .. " has no expected outputs upstream (" .. INCOMPLETE_2011[c.name] .. ")", function()
        for _, ext in ipairs({ ".creq", ".sts", ".authz" }) do
          assert.is_false(fs.exists(c.base .. ext), c.base .. ext .. " exists now: take the case off INCOMPLETE_2011")
        end
        -- It still parses and signs.
        local r = parse_req(read(c.base .. ".req"), 2011)
        local _, out = sigv4.sign(r, { access_key = "AKIDEXAMPLE", secret_key = SECRET, region = "us-east-1",
          service = "host", time = "20110909T233600Z" }, { add_date = false })
        assert.truthy(out.authorization:find("SignedHeaders=date;host;p,", 1, true))
      end)
    else
      it(c.name, function() run_case(c, 2011) end)
    end
  end
end)

describe("sigv4 over go-amz's vectors (amz-sign-vectors.json)", function()
  local doc = assert(json.decode(read(SIGNING .. "/amz-sign-vectors.json")))
  local vectors = doc.sigv4_vectors
  it("finds the vectors", function() assert.is_true(#vectors >= 7) end)
  for _, v in ipairs(vectors) do
    it(v.test, function()
      if v.kind == "presigned URL (SignV4URL)" then
        local url = sigv4.presign{ access_key = v.access_key, secret_key = v.secret_key, region = v.region,
          service = v.service, method = v.method, url = v.url, expires = v.expires_seconds,
          time = http_date_to_amz(v.date_header) }
        assert.are.equal(v.expected_url, url)
      elseif v.kind == "string to sign" then
        local t = v.time:gsub("[-:]", "")
        assert.are.equal(v.credential_scope, sigv4.scope(t, "us-east-1", "iam"))
        local sts = table.concat({ sigv4.ALGORITHM, t, v.credential_scope, v.canonical_request_hash }, "\n")
        assert.are.equal(v.expected, sts)
      elseif v.kind == "Authorization header (SignV4)" then
        local r = { method = v.method, url = v.url, headers = {} }
        for k, val in pairs(v.headers) do r.headers[k] = val end
        local _, out = sigv4.sign(r, { access_key = v.access_key, secret_key = v.secret_key,
          region = v.region, service = v.service })
        assert.are.equal(v.expected_authorization, out.authorization)
        assert.are.equal(sigv4.EMPTY_SHA256, r.headers["x-amz-content-sha256"])
      elseif v.kind == "canonical request" then
        local r = { method = v.method, url = v.url, headers = v.headers, body = v.body }
        local creq = sigv4.canonical_request(r, { service = "iam" })
        assert.are.equal(v.expected_canonical_request, creq)
        assert.are.equal(v.expected_hash, crypto.sha256(creq))
      elseif v.kind == "signing key" then
        assert.are.equal(v.expected_hex,
          crypto.hex(sigv4.signing_key(v.secret_key_that_produces_it, v.date, v.region, v.service)))
      elseif v.kind == "Authorization header" then
        -- Written in amz without the ", " separators the AWS suite uses.
        local r = { method = v.method, url = v.url, headers = {} }
        local date
        for k, val in pairs(v.headers) do
          r.headers[k] = val
          if k:lower() == "date" then date = val end
        end
        local _, out = sigv4.sign(r, { access_key = v.access_key, secret_key = v.secret_key,
          region = v.region, service = v.service, time = http_date_to_amz(date) }, { add_date = false })
        assert.are.equal(v.expected_authorization_as_written, (out.authorization:gsub(", ", ",")))
      else
        error("unknown vector kind " .. tostring(v.kind) .. ": teach this spec about it")
      end
    end)
  end
end)

describe("sigv4 details", function()
  local creds = { access_key = "AK", secret_key = "SECRETKEY", region = "us-east-1", service = "s3",
    time = 1700000000 }

  it("adds X-Amz-Date, Host and x-amz-content-sha256 for S3, from the time passed in", function()
    local r = { method = "PUT", url = "http://127.0.0.1:9000/bucket/a%20b", headers = {}, body = "data" }
    local _, out = sigv4.sign(r, creds)
    assert.are.equal("20231114T221320Z", r.headers["X-Amz-Date"])
    assert.are.equal("127.0.0.1:9000", r.headers.Host)
    assert.are.equal(crypto.sha256("data"), r.headers["x-amz-content-sha256"])
    assert.are.equal("host;x-amz-content-sha256;x-amz-date", out.signed_headers)
    -- S3 paths are not normalised: // and dot segments are kept.
    local r2 = { method = "GET", url = "http://h/b/a//./x", headers = {} }
    local _, out2 = sigv4.sign(r2, creds)
    assert.truthy(out2.creq:find("\n/b/a//./x\n", 1, true))
  end)

  it("signs UNSIGNED-PAYLOAD when told to", function()
    local r = { method = "PUT", url = "http://h/b/k", headers = {}, payload_hash = sigv4.UNSIGNED_PAYLOAD }
    local _, out = sigv4.sign(r, creds)
    assert.are.equal("UNSIGNED-PAYLOAD", r.headers["x-amz-content-sha256"])
    assert.truthy(out.creq:match("\nUNSIGNED%-PAYLOAD$"))
  end)

  it("a different time, secret or byte gives a different signature", function()
    local function sig(c, body)
      local _, out = sigv4.sign({ method = "PUT", url = "http://h/b/k", headers = {}, body = body }, c)
      return out.signature
    end
    local base = sig(creds, "x")
    assert.are_not.equal(base, sig(creds, "y"))
    assert.are_not.equal(base, sig({ access_key = "AK", secret_key = "other", region = "us-east-1",
      service = "s3", time = 1700000000 }, "x"))
    assert.are_not.equal(base, sig({ access_key = "AK", secret_key = "SECRETKEY", region = "us-east-1",
      service = "s3", time = 1700000001 }, "x"))
  end)

  it("presigns with X-Amz-Expires and keeps the URL's own query", function()
    local url = sigv4.presign{ access_key = "AK", secret_key = "SECRETKEY", region = "us-east-1",
      service = "s3", url = "http://127.0.0.1:9000/b/tools/x.tgz?versionId=3", expires = 60, time = 0 }
    assert.truthy(url:find("^http://127%.0%.0%.1:9000/b/tools/x%.tgz%?"))
    assert.truthy(url:find("X-Amz-Expires=60&", 1, true))
    assert.truthy(url:find("versionId=3", 1, true))
    assert.truthy(url:find("X%-Amz%-Signature=%x+"))
    assert.has_error(function()
      sigv4.presign{ access_key = "AK", secret_key = "S", region = "r", service = "s3", url = "http://h/b", time = 0,
        expires = 604801 }
    end)
  end)

  it("raises on misuse: missing credentials or time", function()
    assert.has_error(function() sigv4.sign({ url = "http://h/" }, { secret_key = "s", region = "r", service = "s" }) end)
    assert.has_error(function()
      sigv4.sign({ url = "http://h/", headers = {} }, { access_key = "a", secret_key = "s", region = "r", service = "s" })
    end)
    assert.has_error(function() sigv4.amz_date("yesterday") end)
  end)

  it("the api signer hashes memory bodies and leaves files UNSIGNED-PAYLOAD without a hash", function()
    local sign = sigv4.signer{ access_key = "AK", secret_key = "S", region = "us-east-1", service = "s3",
      clock = function() return 0 end }
    local req = { method = "PUT", url = "http://h/b/k", headers = {}, body = "abc" }
    sign(req)
    assert.are.equal(crypto.sha256("abc"), req.headers["x-amz-content-sha256"])
    assert.are.equal("19700101T000000Z", req.headers["X-Amz-Date"])
    local req2 = { method = "PUT", url = "http://h/b/k", headers = {}, body_file = "/nonexistent" }
    sign(req2)
    assert.are.equal("UNSIGNED-PAYLOAD", req2.headers["x-amz-content-sha256"])
    local req3 = { method = "PUT", url = "http://h/b/k", headers = {}, body_file = "/x", body_sha256 = ("a"):rep(64) }
    sign(req3)
    assert.are.equal(("a"):rep(64), req3.headers["x-amz-content-sha256"])
  end)
end)
