-- storage_swift_spec.lua: the storage behaviour suite on Swift
-- (juju.cloud.storage.swift) against goose's Swift double behind Keystone v3
-- (tests/servers/goose), plus listing pagination, temp URLs (expired,
-- forged and tokenless requests refused) and Keystone v2 / static-token use.
local swift = require("juju.cloud.storage.swift")
local keystone = require("juju.cloud.keystone")
local fake = require("servers.goose.fake")
local http = require("juju.http")
local sys = require("juju.sys")

local C = fake.CREDS
local s = fake.start("127.0.0.22", "swift")
local ks3 = assert(keystone.new { auth_url = s.v3, username = C.username, password = C.password,
                                  tenant_name = C.tenant_name, domain_name = C.domain_name, region = "RegionOne" })
teardown(function() s:stop() end)

local function open(name, extra)
  local o = { keystone = ks3, container = name }
  for k, v in pairs(extra or {}) do o[k] = v end
  return swift.new(o)
end

-- Machine 0's fetch: no token, no retries.
local function fetch(url)
  local r, msg, code, eresp = http.get(url, { retries = 0, timeout = 10 })
  if not r then return nil, msg, code, eresp end
  return r.body
end

require("spec.storage_contract").run(describe, it, assert, open, { kind = "swift", fetch = fetch })

describe("swift storage", function()
  it("lists every page (marker pagination) in order", function()
    local st = assert(open("pages", { page_size = 2 }))
    local names = { "e", "a", "c/1", "b", "d" }
    for _, n in ipairs(names) do assert.is_true(st:put(n, n)) end
    local before = s:stats().swift
    assert.are.same({ "a", "b", "c/1", "d", "e" }, st:list())
    assert.are.equal(4, s:stats().swift - before) -- 2 + 2 + 1 + the empty page
    before = s:stats().swift
    assert.is_true(st:remove("e"))
    assert.are.same({ "a", "b", "c/1", "d" }, st:list())
    assert.are.equal(1 + 3, s:stats().swift - before) -- the delete, then 2 + 2 + an empty page
    assert.are.same({ "c/1" }, st:list("c"))
    -- A cloud whose pages are shorter than asked for: still every name.
    s:config { list_cap = 1 }
    local capped = assert(open("pages"))
    local ok, names_or_err = pcall(capped.list, capped)
    s:config { list_cap = 0 }
    assert(ok, names_or_err)
    assert.are.same({ "a", "b", "c/1", "d" }, names_or_err)
    capped:close()
    assert.is_true(st:remove_all())
    assert.are.same({}, st:list())
    st:close()
  end)

  it("gives temp URLs that expire, and refuses forged, expired and tokenless fetches", function()
    local st = assert(open("tempurl"))
    assert.is_true(st:put("tools/t.tgz", "tarball"))
    assert.is_true(st:put("provider-state", "secret-ish"))
    local url = assert(st:url("tools/t.tgz", { expires = 600 }))
    assert.matches("^" .. s.url:gsub("%p", "%%%0") .. "/swift/v1/tempurl/tools/t%.tgz%?temp_url_sig=%x+&temp_url_expires=%d+$", url)
    assert.are.equal("tarball", assert(fetch(url)))
    local before = s:stats().tempurl_refused
    -- Forged: another signature, or this one on another object.
    local forged = url:gsub("temp_url_sig=(%x)", function(c) return "temp_url_sig=" .. (c == "0" and "1" or "0") end)
    local body, msg, _, eresp = fetch(forged)
    assert.is_nil(body)
    assert.are.equal(401, eresp.status, msg)
    body, _, _, eresp = fetch((url:gsub("tools/t%.tgz", "provider-state")))
    assert.is_nil(body)
    assert.are.equal(401, eresp.status)
    -- Expired: signed an hour ago for ten minutes.
    local past = assert(open("tempurl", { clock = { time = function() return sys.time() - 3600 end } }))
    body, _, _, eresp = fetch(assert(past:url("tools/t.tgz", { expires = 600 })))
    assert.is_nil(body)
    assert.are.equal(401, eresp.status)
    assert.are.equal(3, s:stats().tempurl_refused - before)
    -- No signature and no token: refused.
    body, _, _, eresp = fetch(s.url .. "/swift/v1/tempurl/tools/t.tgz")
    assert.is_nil(body)
    assert.are.equal(401, eresp.status)
    -- Names that need escaping: the signature is over the unescaped path, the URL escaped.
    assert.is_true(st:put("tools/a b+c%d.txt", "odd name"))
    local odd = assert(st:url("tools/a b+c%d.txt", { expires = 60 }))
    assert.matches("/tools/a%%20b%%2Bc%%25d%.txt%?", odd)
    assert.are.equal("odd name", assert(fetch(odd)))
    assert.are.same({ "provider-state", "tools/a b+c%d.txt", "tools/t.tgz" }, st:list())
    -- The URL is not the key: a second store reuses the account's key.
    local other = assert(open("tempurl"))
    assert.are.equal("tarball", assert(fetch(assert(other:url("tools/t.tgz", { expires = 60 })))))
    assert.is_true(st:remove_all())
    st:close()
    past:close()
    other:close()
  end)

  it("works through Keystone v2.0 (access keys), RegionTwo and the internal endpoint", function()
    local ks2 = assert(keystone.new { auth_url = s.v2, auth_mode = "keypair", access_key = C.access_key,
                                      secret_key = C.secret_key, tenant_name = C.tenant_name,
                                      region = "RegionTwo", endpoint_type = "internalURL" })
    local st = assert(swift.new { keystone = ks2, container = "v2-store" })
    assert.are.equal(s.url .. "/internal/swift/v1r2", st.endpoint)
    local before = s:stats().via_internal
    assert.is_true(st:put("a", "in region two"))
    assert.are.equal("in region two", st:get("a"))
    assert.is_true(s:stats().via_internal > before)
    -- RegionOne's store does not see it.
    local one = assert(open("v2-store"))
    assert.is_false(one:exists("a"))
    assert.is_true(st:remove_all())
    st:close()
    one:close()
  end)

  it("re-authenticates when the token is revoked between calls", function()
    local st = assert(open("revoked"))
    assert.is_true(st:put("x", "1"))
    local n = ks3.auth_count
    s:revoke()
    assert.are.equal("1", st:get("x"))
    assert.are.equal(n + 1, ks3.auth_count)
    assert.is_true(st:remove_all())
    st:close()
  end)

  it("takes a static endpoint and token; a bad one is AUTH without the token in the message", function()
    local token = assert(ks3:token())
    local st = assert(swift.new { endpoint = s.url .. "/swift/v1", token = token, container = "static" })
    assert.is_true(st:put("k", "v"))
    assert.are.equal("v", st:get("k"))
    assert.is_true(st:remove_all())
    local bad = assert(swift.new { endpoint = s.url .. "/swift/v1", token = "not-" .. token, container = "static" })
    local r, msg, code = bad:put("k", "v")
    assert.is_nil(r)
    assert.are.equal("AUTH", code)
    assert.is_nil(msg:find(token, 1, true))
    assert.has_error(function() swift.new { container = "x" } end)
  end)

  it("refuses a bad container name and reports a missing object-store region", function()
    local st, msg, code = swift.new { keystone = ks3, container = "a/b" }
    assert.is_nil(st)
    assert.are.equal("EINVAL", code)
    assert.matches("container name", msg)
    st, msg, code = swift.new { keystone = ks3, container = "ok", region = "Nowhere" }
    assert.is_nil(st)
    assert.are.equal("NOT_FOUND", code)
    assert.matches('region "Nowhere"', msg)
    for _, secret in ipairs({ C.password, C.secret_key }) do assert.is_nil(msg:find(secret, 1, true)) end
  end)

  it("with create = false, writes only into an existing container", function()
    local st = assert(open("premade", { create = false }))
    local r, msg, code = st:put("a", "1")
    assert.is_nil(r)
    assert.are.equal("NOT_FOUND", code)
    assert.matches("premade/a", msg)
    local maker = assert(open("premade"))
    assert.is_true(maker:put("b", "2"))
    assert.is_true(st:put("a", "1"))
    assert.are.same({ "a", "b" }, st:list())
    assert.is_true(maker:remove_all())
    st:close()
    maker:close()
  end)

  it("sends the object's MD5 as ETag, which Swift checks", function()
    local st = assert(open("etag"))
    local before = s:stats().etag_mismatch
    assert.is_true(st:put("a", "some data"))
    assert.are.equal(before, s:stats().etag_mismatch)
    assert.is_true(st:remove_all())
    st:close()
  end)
end)
