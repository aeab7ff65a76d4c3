-- keystone_spec.lua: juju.cloud.keystone against goose's Keystone v2/v3
-- doubles (tests/servers/goose): password and access-key auth, refused
-- credentials, the token cache, re-authentication on 401, expiry on the
-- virtual clock, catalog selection by region and endpoint type.
local keystone = require("juju.cloud.keystone")
local api = require("juju.cloud.api")
local fake = require("servers.goose.fake")
local testing = require("juju.testing")
local sys = require("juju.sys")

local C = fake.CREDS
local SECRETS = { C.password, C.secret_key }

describe("juju.cloud.keystone", function()
  local s
  setup(function() s = fake.start("127.0.0.21", "keystone") end)
  teardown(function() if s then s:stop() end end)
  before_each(function() s:config { ttl = 3600, reject = false, fault = "" } end)

  -- A message must name no password, secret key or token.
  local function assert_clean(msg, token)
    assert.is_string(msg)
    for _, secret in ipairs(SECRETS) do assert.is_nil(msg:find(secret, 1, true), "secret in: " .. msg) end
    if token then assert.is_nil(msg:find(token, 1, true), "token in: " .. msg) end
  end

  local function v2(extra)
    local o = { auth_url = s.v2, username = C.username, password = C.password,
                tenant_name = C.tenant_name, region = "RegionOne" }
    for k, v in pairs(extra or {}) do o[k] = v end
    return assert(keystone.new(o))
  end

  -- v3's options: the v3 auth-url and the domain, then extra.
  local function v3opts(extra)
    local o = { auth_url = s.v3, domain_name = C.domain_name }
    for k, v in pairs(extra or {}) do o[k] = v end
    return o
  end

  local function v3(extra) return v2(v3opts(extra)) end

  local function swift_client(ks, opts)
    local url = assert(ks:endpoint("object-store", opts))
    return api.new { name = "swift", endpoint = url, sign = function(req) ks:sign(req) end }
  end

  it("authenticates with Keystone v2.0 username and password", function()
    local before = s:stats().auth_v2_password
    local ks = v2()
    assert.is_true(ks:authenticate())
    assert.are.equal("2", ks.version)
    assert.matches("^%x+$", assert(ks:token()))
    assert.are.equal(s.url .. "/swift/v1", ks:endpoint("object-store"))
    assert.are.equal(s.url .. "/v2/1", ks:endpoint("compute"))
    assert.are.equal("1", ks.project_id)
    assert.are.equal(before + 1, s:stats().auth_v2_password)
    local resp = assert(ks:request(swift_client(ks), { method = "HEAD", path = "/" }))
    assert.are.equal(204, resp.status)
    -- goose's Nova behind the same token.
    local nova = api.new { name = "nova", endpoint = ks:endpoint("compute"), sign = function(req) ks:sign(req) end }
    resp = assert(ks:request(nova, { method = "GET", path = "/flavors" }))
    assert.matches('"m1%.tiny"', resp.body)
  end)

  it("authenticates with Keystone v2.0 access-key credentials (auth-mode keypair)", function()
    local before = s:stats().auth_v2_accesskey
    local ks = assert(keystone.new { auth_url = s.v2, auth_mode = "keypair", access_key = C.access_key,
                                     secret_key = C.secret_key, tenant_name = C.tenant_name, region = "RegionOne" })
    assert.is_true(ks:authenticate())
    assert.are.equal(before + 1, s:stats().auth_v2_accesskey)
    assert.are.equal(204, assert(ks:request(swift_client(ks), { method = "HEAD", path = "/" })).status)
  end)

  it("authenticates with Keystone v3 (user and project domains, token from X-Subject-Token)", function()
    local before = s:stats().auth_v3
    local ks = v3()
    assert.are.equal("3", ks.version)
    local token = assert(ks:token())
    assert.matches("^%x+$", token)
    assert.are.equal(before + 1, s:stats().auth_v3)
    assert.are.equal(s.url .. "/swift/v1", ks:endpoint("object-store"))
    assert.are.equal(204, assert(ks:request(swift_client(ks), { method = "HEAD", path = "/" })).status)
  end)

  it("refuses a wrong password (v2 and v3) with AUTH naming the keys and the auth-url, not the secret", function()
    for _, ks in ipairs({ v2 { password = "wrong-" .. C.password }, v3 { password = "wrong-" .. C.password } }) do
      local ok, msg, code = ks:authenticate()
      assert.is_nil(ok)
      assert.are.equal("AUTH", code)
      assert.matches("authentication failed", msg)
      assert.matches("username and password", msg)
      assert.matches("tenant%-name", msg)
      assert.is_truthy(msg:find(ks.auth_url, 1, true), msg)
      assert_clean(msg)
      assert.is_nil(msg:find("wrong-", 1, true))
      -- Through request() too: no token, the same error, no request sent.
      local _, msg2, code2 = ks:request(api.new { endpoint = s.url .. "/swift/v1" }, { path = "/" })
      assert.are.equal("AUTH", code2)
      assert_clean(msg2)
    end
  end)

  it("refuses a wrong secret key naming access-key and secret-key", function()
    local ks = assert(keystone.new { auth_url = s.v2, auth_mode = "keypair", access_key = C.access_key,
                                     secret_key = "bad-" .. C.secret_key, tenant_name = C.tenant_name })
    local ok, msg, code = ks:authenticate()
    assert.is_nil(ok)
    assert.are.equal("AUTH", code)
    assert.matches("access%-key and secret%-key", msg)
    assert_clean(msg)
  end)

  it("refuses a wrong tenant-name (v2) and project or domain (v3)", function()
    for _, ks in ipairs({ v2 { tenant_name = "other" }, v3 { tenant_name = "other" },
                          v3 { domain_name = "other-domain" } }) do
      local ok, msg, code = ks:authenticate()
      assert.is_nil(ok)
      assert.are.equal("AUTH", code)
      assert.matches("tenant%-name %(the OpenStack project name%)", msg)
      assert_clean(msg)
    end
    -- v3 without a domain scopes to Keystone's default domain, which is not fred's.
    local ks = assert(keystone.new { auth_url = s.v3, username = C.username, password = C.password,
                                     tenant_name = C.tenant_name })
    local _, msg, code = ks:authenticate()
    assert.are.equal("AUTH", code)
    assert.matches("domain%-name", msg)
  end)

  it("uses one token for many calls (v2 and v3)", function()
    for _, ks in ipairs({ v2(), v3() }) do
      local c = swift_client(ks)
      local before = s:stats()
      local b_auth = before.auth_v2_password + before.auth_v3
      for _ = 1, 5 do assert(ks:request(c, { method = "HEAD", path = "/" })) end
      local after = s:stats()
      assert.are.equal(b_auth, after.auth_v2_password + after.auth_v3) -- endpoint() already authenticated
      assert.are.equal(before.swift + 5, after.swift)
      assert.are.equal(1, ks.auth_count)
    end
  end)

  it("re-authenticates once on a 401 (token revoked) and goes on", function()
    for _, ks in ipairs({ v2(), v3() }) do
      local c = swift_client(ks)
      local t1 = assert(ks:token())
      assert(ks:request(c, { method = "HEAD", path = "/" }))
      s:revoke()
      local before = s:stats()
      local resp = assert(ks:request(c, { method = "HEAD", path = "/" }))
      assert.are.equal(204, resp.status)
      local after = s:stats()
      assert.are.equal(1, after.swift_unauthorized - before.swift_unauthorized)
      assert.are.equal(1, (after.auth_v2_password + after.auth_v3) - (before.auth_v2_password + before.auth_v3))
      assert.are_not.equal(t1, ks:token())
      assert.are.equal(2, ks.auth_count)
    end
  end)

  it("fails with AUTH when the cloud refuses the fresh token too, after one re-authentication", function()
    local ks = v3()
    local c = swift_client(ks)
    local token = assert(ks:token())
    s:config { reject = true }
    local before = s:stats()
    local resp, msg, code = ks:request(c, { method = "HEAD", path = "/", idempotent = true })
    assert.is_nil(resp)
    assert.are.equal("AUTH", code)
    assert.matches("re%-authenticating", msg)
    assert_clean(msg, token)
    assert_clean(msg, ks:token())
    local after = s:stats()
    assert.are.equal(1, after.auth_v3 - before.auth_v3)
    assert.are.equal(2, after.swift - before.swift)
  end)

  it("re-authenticates before the token expires, on the run's clock (skew-free)", function()
    s:config { ttl = 300 }
    -- Years away from the server's clock: the token's lifetime counts, not its absolute expiry.
    local clock = testing.virtual_clock(math.floor(sys.time()) - 5 * 365 * 86400)
    local ks = v2 { clock = clock }
    local t0 = assert(ks:token())
    assert.are.equal(1, ks.auth_count)
    clock.advance(200) -- 100 s left: still good
    assert.are.equal(t0, assert(ks:token()))
    assert.are.equal(1, ks.auth_count)
    clock.advance(50) -- 50 s left, inside the margin
    assert(ks:token())
    assert.are.equal(2, ks.auth_count)
    clock.advance(10)
    assert(ks:token())
    assert.are.equal(2, ks.auth_count)
  end)

  it("selects the endpoint by region (exact or suffix) and endpoint type", function()
    for _, make in ipairs({ v2, v3 }) do
      local ks = make { region = "RegionTwo" }
      assert.are.equal(s.url .. "/swift/v1r2", ks:endpoint("object-store"))
      assert.are.equal(s.url .. "/swift/v1", ks:endpoint("object-store", { region = "RegionOne" }))
      assert.are.equal(s.url .. "/swift/v1r2", make { region = "az-1.RegionTwo" }:endpoint("object-store"))
      local ki = make { endpoint_type = "internalURL" }
      assert.are.equal(s.url .. "/internal/swift/v1", ki:endpoint("object-store"))
      assert.are.equal(s.url .. "/admin/swift/v1", ki:endpoint("object-store", { endpoint_type = "adminURL" }))
      assert.are.equal(s.url .. "/admin/swift/v1", make { endpoint_type = "admin" }:endpoint("object-store"))
      -- The chosen endpoint is the one the requests go to.
      local before = s:stats().via_internal
      assert(ki:request(swift_client(ki), { method = "HEAD", path = "/" }))
      assert.are.equal(before + 1, s:stats().via_internal)
    end
  end)

  it("names the missing service, or region, and lists what the catalog has", function()
    for _, make in ipairs({ v2, v3 }) do
      local ks = make()
      local url, msg, code = ks:endpoint("volume")
      assert.is_nil(url)
      assert.are.equal("NOT_FOUND", code)
      assert.matches('no "volume" service', msg)
      assert.matches("compute %(RegionOne%), object%-store %(RegionOne, RegionTwo%)", msg)
      url, msg, code = make { region = "Nowhere" }:endpoint("object-store")
      assert.is_nil(url)
      assert.are.equal("NOT_FOUND", code)
      assert.matches('region "Nowhere"', msg)
      assert.matches("object%-store is in: RegionOne, RegionTwo", msg)
      assert.is_nil(make { region = "Nowhere" }:endpoint("compute"))
      url, msg = make { region = "" }:endpoint("object-store")
      assert.is_nil(url)
      assert.matches("region is not set", msg)
      -- One region offers compute: no region needed.
      assert.are.equal(s.url .. "/v2/1", make { region = "" }:endpoint("compute"))
      assert_clean(msg)
    end
  end)

  it("checks its configuration, naming the keys", function()
    local cases = {
      { {}, "auth%-url is not set" },
      { { auth_url = "keystone:5000" }, "scheme and a host" },
      { { auth_url = s.url }, "must end with the Keystone version, /v2%.0 or /v3" },
      { { auth_url = s.v2, password = C.password, tenant_name = "t" }, "needs username and password" },
      { { auth_url = s.v2, username = "u", password = C.password }, "tenant%-name" },
      { { auth_url = s.v2, auth_mode = "keypair", access_key = "a", tenant_name = "t" }, "access%-key and secret%-key" },
      { v3opts { auth_mode = "keypair", access_key = "a", secret_key = C.secret_key, tenant_name = "t" },
        "keypair needs a Keystone v2%.0 auth%-url" },
      { { auth_url = s.v2, auth_mode = "ec2" }, 'auth%-mode "ec2"' },
      { { auth_url = s.url, auth_mode = "legacy", username = "u" }, "needs username and password" },
      { { auth_url = s.v2, username = "u", password = C.password, tenant_name = "t", endpoint_type = "x" },
        "endpoint type" },
    }
    for _, case in ipairs(cases) do
      local ks, msg, code = keystone.new(case[1])
      assert.is_nil(ks)
      assert.are.equal("EINVAL", code)
      assert.matches(case[2], msg)
      assert_clean(msg)
    end
    assert.has_error(function() keystone.new() end)
    -- A trailing slash and an explicit version are fine.
    assert.are.equal("3", assert(keystone.new(v3opts { auth_url = s.v3 .. "/", username = "u", password = "p",
                                                       tenant_name = "t" })).version)
    assert.are.equal("2", assert(keystone.new { auth_url = s.url .. "/identity", version = 2, username = "u",
                                                password = "p", tenant_name = "t" }).version)
  end)

  it("reports an unreachable auth-url with the transport's code and no secret", function()
    local ks = assert(keystone.new { auth_url = "http://127.0.0.21:1/v2.0", username = C.username,
                                     password = C.password, tenant_name = C.tenant_name,
                                     http = { connect_timeout = 2, timeout = 5 } })
    local ok, msg, code = ks:authenticate()
    assert.is_nil(ok)
    assert.is_string(code)
    assert.are_not.equal("AUTH", code)
    assert_clean(msg)
  end)

  it("authenticates with legacy (v1.0) auth: token and service URLs from the headers", function()
    local before = s:stats().auth_legacy
    local ks = assert(keystone.new { auth_url = s.url .. "/auth/v1.0", auth_mode = "legacy", username = C.username,
                                     password = C.password, region = "RegionOne" })
    assert.is_true(ks:authenticate())
    assert.are.equal(before + 1, s:stats().auth_legacy)
    assert.are.equal(s.url .. "/swift/v1", ks:endpoint("object-store"))
    assert.are.equal(s.url .. "/v2/1", ks:endpoint("compute", { endpoint_type = "internalURL" }))
    assert.are.equal(204, assert(ks:request(swift_client(ks), { method = "HEAD", path = "/" })).status)
    s:revoke()
    assert.are.equal(204, assert(ks:request(swift_client(ks), { method = "HEAD", path = "/" })).status)
    assert.are.equal(2, ks.auth_count)
    local bad = assert(keystone.new { auth_url = s.url .. "/auth/v1.0", auth_mode = "legacy", username = C.username,
                                      password = "x" .. C.password })
    local ok, msg, code = bad:authenticate()
    assert.is_nil(ok)
    assert.are.equal("AUTH", code)
    assert.matches("legacy auth at " .. s.url:gsub("%p", "%%%0"), msg)
    assert.matches("check username and password", msg)
    assert_clean(msg)
  end)

  it("reports a malformed, tokenless or failed token response, naming the auth-url", function()
    local legacy = function()
      return assert(keystone.new { auth_url = s.url .. "/auth/v1.0", auth_mode = "legacy",
                                   username = C.username, password = C.password })
    end
    for _, make in ipairs({ v2, v3, legacy }) do
      local ks = make()
      s:config { fault = "badjson" }
      local ok, msg, code = ks:authenticate()
      if ks.version ~= "legacy" then -- legacy reads headers, not the body
        assert.is_nil(ok)
        assert.are.equal("HTTP", code)
        assert.matches("malformed token response from Keystone v[23%.0]+ at ", msg)
        assert_clean(msg)
      end
      s:config { fault = "notoken" }
      ok, msg, code = make():authenticate()
      assert.is_nil(ok)
      assert.are.equal("HTTP", code)
      assert.matches("no token", msg:gsub("no X%-Auth%-Token", "no token"))
      assert.is_truthy(msg:find(ks.auth_url, 1, true), msg)
      s:config { fault = "500" }
      local before = s:stats()
      ok, msg, code = make():authenticate()
      assert.is_nil(ok)
      assert.are.equal("HTTP", code)
      assert.matches("500", msg)
      assert_clean(msg)
      local after = s:stats()
      local tries = (after.auth_v2_password + after.auth_v3 + after.auth_legacy) -
        (before.auth_v2_password + before.auth_v3 + before.auth_legacy)
      assert.are.equal(3, tries) -- authentication is safe to repeat: the api client's attempts
      s:config { fault = "" }
      assert.is_true(make():authenticate())
    end
  end)

  it("reads catalogs shaped as real Keystone writes them (extra keys, null regions, odd entries)", function()
    local json = require("juju.json")
    -- v3: one entry per interface, region_id and the older region side by side.
    local v3cat = assert(json.decode([[ [
      {"id": "a1", "type": "object-store", "name": "swift", "endpoints": [
        {"id": "e1", "interface": "public", "region": "RegionOne", "region_id": "RegionOne", "url": "https://swift.example/v1/AUTH_p"},
        {"id": "e2", "interface": "internal", "region_id": "RegionOne", "url": "http://10.0.0.5:8080/v1/AUTH_p"},
        {"id": "e3", "interface": "admin", "region": null, "region_id": null, "url": "http://10.0.0.5:8080/v1"},
        {"id": "e4", "interface": "bogus", "region_id": "RegionOne", "url": "http://x"},
        "not an endpoint"]},
      {"id": "a2", "type": "identity", "endpoints": []},
      {"id": "a3", "name": "no type"},
      null] ]]))
    assert.are.same({
      { type = "object-store", name = "swift", endpoints = {
        { region = "RegionOne", public = "https://swift.example/v1/AUTH_p", internal = "http://10.0.0.5:8080/v1/AUTH_p" },
        { region = "", admin = "http://10.0.0.5:8080/v1" } } },
      { type = "identity", endpoints = {} },
    }, keystone.normalize_catalog("3", v3cat))
    -- v2: the id and tenantId keys real Keystone adds, a missing internalURL.
    local v2cat = assert(json.decode([[ [
      {"type": "compute", "name": "nova", "endpoints_links": [], "endpoints": [
        {"id": "x", "tenantId": "t", "region": "RegionOne", "publicURL": "https://nova/v2/t", "adminURL": "https://nova-admin/v2/t"}]},
      {"type": "image", "endpoints": null}] ]]))
    assert.are.same({
      { type = "compute", name = "nova", endpoints = {
        { region = "RegionOne", public = "https://nova/v2/t", admin = "https://nova-admin/v2/t" } } },
      { type = "image", endpoints = {} },
    }, keystone.normalize_catalog("2", v2cat))
  end)

  it("parses Keystone's expiry times as UTC", function()
    assert.are.equal(0, keystone.parse_time("1970-01-01T00:00:00Z"))
    assert.are.equal(1329334341, keystone.parse_time("2012-02-15T19:32:21"))
    assert.are.equal(1329334341, keystone.parse_time("2012-02-15T19:32:21.000000Z"))
    assert.are.equal(1329334341, keystone.parse_time("2012-02-15T20:32:21+01:00"))
    assert.are.equal(1709251200, keystone.parse_time("2024-03-01T00:00:00Z")) -- after a leap day
    assert.is_nil(keystone.parse_time("tomorrow"))
    assert.is_nil(keystone.parse_time("2012-02-15T19:32:21 PST"))
    assert.is_nil(keystone.parse_time(nil))
    assert.are.equal(1329334341, keystone.parse_http_date("Wed, 15 Feb 2012 19:32:21 GMT"))
    assert.is_nil(keystone.parse_http_date("Wed, 15 Foo 2012 19:32:21 GMT"))
  end)
end)
