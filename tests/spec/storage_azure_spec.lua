-- storage_azure_spec.lua: juju.cloud.storage.azure against npm azurite
-- 3.35.0 (started once for the file, loopback only): the storage behaviour
-- suite, then what is Azure's own: List Blobs pagination, Put Block + Put
-- Block List for large files, a refused key (one AUTH error naming the
-- account setting and the endpoint, never the key), a tampered signature,
-- anonymous access refused while the SAS URL works and an expired SAS not.
local azure = require("juju.cloud.storage.azure")
local azurite = require("servers.azure-blob.azurite")
local crypto = require("juju.crypto")
local fs = require("juju.fs")
local http = require("juju.http")
local xml = require("juju.xml")

local az = azurite.start()
teardown(function() az.server:stop() end)

local function open(container, extra)
  local o = { account = az.account, key = az.key, container = container, endpoint = az.endpoint }
  for k, v in pairs(extra or {}) do o[k] = v end
  return azure.new(o)
end

require("spec.storage_contract").run(describe, it, assert, open, { kind = "azure" })

-- Asserts msg names no secret: the key (base64 or raw) or a SAS signature.
local function assert_no_secret(msg, key_b64, sig)
  assert.is_string(msg)
  assert.is_nil(msg:find(key_b64, 1, true), "message holds the key: " .. msg)
  assert.is_nil(msg:find(crypto.unbase64(key_b64), 1, true), "message holds the raw key")
  if sig then
    assert.is_nil(msg:find(sig, 1, true), "message holds the signature: " .. msg)
    assert.is_nil(msg:find(http.url_escape(sig), 1, true), "message holds the escaped signature: " .. msg)
  end
end

describe("azure storage", function()
  local tmp = assert(fs.mkdtemp((os.getenv("TMPDIR") or "/tmp") .. "/juju-azure-spec-"))
  teardown(function() fs.remove_tree(tmp) end)

  it("lists page by page through NextMarker", function()
    local st = assert(open("pages", { page_size = 2 }))
    local want = {}
    for i = 5, 1, -1 do
      assert.is_true(st:put("tools/obj-" .. i, tostring(i)))
      table.insert(want, 1, "tools/obj-" .. i)
    end
    assert.is_true(st:put("other", "x"))
    assert.are.same(want, st:list("tools/"))
    table.insert(want, 1, "other")
    assert.are.same(want, st:list())
    -- the server does split at maxresults=2: a NextMarker after two names
    local resp = assert(st.client:request { method = "GET", path = "/pages",
      query = { restype = "container", comp = "list", maxresults = 2 } })
    local root = assert(xml.decode(resp.body))
    local marker
    for _, c in ipairs(root.children) do
      if c.name == "NextMarker" then marker = c.text end
    end
    assert.is_string(marker)
    assert.are_not.equal("", marker)
    assert.is_true(st:remove_all())
    st:close()
  end)

  it("uploads a file larger than a block as Put Block + Put Block List", function()
    local st = assert(open("blocks", { block_size = 1024 * 1024 }))
    local src = tmp .. "/blocks-src"
    local size = 3 * 1024 * 1024 + 512 * 1024
    assert(fs.write_atomic(src, string.rep(crypto.random_bytes(4096), size // 4096)))
    assert.are.equal(size, assert(st:put_file("tools/big.tgz", src)))
    assert.are.equal(size, st:size("tools/big.tgz"))
    local dst = tmp .. "/blocks-dst"
    assert.are.equal(size, assert(st:get_to_file("tools/big.tgz", dst)))
    assert.are.equal((crypto.sha256_file(src)), (crypto.sha256_file(dst)))
    local resp = assert(st.client:request { method = "GET", path = "/blocks/tools/big.tgz",
      query = { comp = "blocklist", blocklisttype = "committed" } })
    local _, blocks = resp.body:gsub("<Block>", "")
    assert.are.equal(4, blocks)
    -- a file of exactly one block is one Put Blob
    assert(fs.write_atomic(src, string.rep("a", 1024 * 1024)))
    assert.are.equal(1024 * 1024, assert(st:put_file("one", src)))
    assert.are.equal(string.rep("a", 1024 * 1024), st:get("one"))
    assert.is_true(st:remove_all())
    st:close()
  end)

  it("creates the container idempotently and again after remove_all", function()
    local a = assert(open("twice"))
    local b = assert(open("twice"))
    assert.is_true(a:put("k", "v"))
    assert.are.equal("v", b:get("k"))
    assert.is_true(a:remove_all())
    assert.are.same({}, b:list())
    assert.is_false(b:exists("k"))
    assert.is_true(b:put("k", "again"))
    assert.are.equal("again", a:get("k"))
    assert.is_true(b:remove_all())
    a:close()
    b:close()
  end)

  it("refuses a wrong key with one AUTH error naming the setting and the endpoint, not the key", function()
    local wrong = crypto.base64(crypto.random_bytes(64))
    local st, msg, code = open("wrongkey", { key = wrong })
    assert.is_nil(st)
    assert.are.equal("AUTH", code, msg)
    assert.truthy(msg:find("storage-account-name", 1, true), msg)
    assert.truthy(msg:find('"devstoreaccount1"', 1, true), msg)
    assert.truthy(msg:find(az.endpoint, 1, true), msg)
    assert.truthy(msg:find("AuthorizationFailure", 1, true), msg)
    assert_no_secret(msg, wrong)
    -- without creating, each call fails the same way
    st = assert(open("wrongkey", { key = wrong, create = false, key_hint = "from the management API" }))
    local r
    r, msg, code = st:get("x")
    assert.is_nil(r)
    assert.are.equal("AUTH", code, msg)
    assert.truthy(msg:find("from the management API", 1, true), msg)
    assert_no_secret(msg, wrong)
    r, msg, code = st:list()
    assert.is_nil(r)
    assert.are.equal("AUTH", code, msg)
    st:close()
  end)

  it("maps a tampered signature to AUTH without showing it", function()
    local st = assert(open("tampered"))
    assert.is_true(st:put("k", "v"))
    local real_sign, sent = st.client.sign, nil
    st.client.sign = function(req)
      real_sign(req)
      local a, sig = req.headers.Authorization:match("^(SharedKey [^:]+:)(.*)$")
      sent = (sig:sub(1, 1) == "A" and "B" or "A") .. sig:sub(2)
      req.headers.Authorization = a .. sent
    end
    local r, msg, code = st:get("k")
    assert.is_nil(r)
    assert.are.equal("AUTH", code, msg)
    assert_no_secret(msg, az.key, sent)
    st.client.sign = real_sign
    assert.are.equal("v", st:get("k"))
    assert.is_true(st:remove_all())
    st:close()
  end)

  it("refuses anonymous reads; the SAS URL works until it expires", function()
    local st = assert(open("sas"))
    assert.is_true(st:put("tools/juju.tgz", "tools"))
    local plain = az.endpoint .. "/sas/tools/juju.tgz"
    local r, msg, _, eresp = http.get(plain, { retries = 0 })
    assert.is_nil(r)
    assert.are.equal(403, eresp.status, msg)
    local url = assert(st:url("tools/juju.tgz", { expires = 600 }))
    assert.truthy(url:find("sp=r", 1, true) and url:find("sr=b", 1, true) and url:find("sig=", 1, true), url)
    assert.are.equal("tools", assert(http.get(url, { retries = 0 })).body)
    -- the default validity is Juju's ten years
    local se = assert(st:url("tools/juju.tgz")):match("se=(%d%d%d%d)")
    assert.are.equal(tonumber(os.date("!%Y")) + 10, tonumber(se))
    -- read-only: the SAS cannot write
    r, msg, _, eresp = http.request({ url = url, method = "PUT", body = "evil", retries = 0,
      headers = { ["x-ms-blob-type"] = "BlockBlob" } })
    assert.is_nil(r)
    assert.are.equal(403, eresp.status, msg)
    local expired = assert(st:url("tools/juju.tgz", { expires = -3600 }))
    r, msg, _, eresp = http.get(expired, { retries = 0 })
    assert.is_nil(r)
    assert.are.equal(403, eresp.status)
    assert.is_nil(msg:find(expired:match("sig=([^&]+)"), 1, true), msg)
    assert.are.equal("tools", st:get("tools/juju.tgz"))
    assert.is_true(st:remove_all())
    st:close()
  end)

  it("signs and fetches names that need escaping", function()
    local st = assert(open("escaping"))
    local names = { "tools/juju 1.25+x.tgz", "a%20b", "caf\u{e9}/n\u{e4}me", "q?x=1&y#z" }
    for _, n in ipairs(names) do
      assert.is_true(st:put(n, "data:" .. n), n)
      assert.are.equal("data:" .. n, st:get(n), n)
      assert.are.equal(#("data:" .. n), st:size(n), n)
      assert.are.equal("data:" .. n, assert(http.get(assert(st:url(n)), { retries = 0 })).body, n)
    end
    table.sort(names)
    assert.are.same(names, st:list())
    for _, n in ipairs(names) do assert.is_true(st:remove(n)) end
    assert.are.same({}, st:list())
    assert.is_true(st:remove_all())
    st:close()
  end)

  it("works with gwacl's x-ms-version 2012-02-12 when told azurite's zero-length rule", function()
    -- real Azure signs a zero Content-Length as "0" for that version, azurite
    -- as "": creating the container (a zero-length PUT) shows the difference
    local st, msg, code = open("oldversion", { version = "2012-02-12" })
    assert.is_nil(st)
    assert.are.equal("AUTH", code, msg)
    st = assert(open("oldversion", { version = "2012-02-12", zero_length = "empty" }))
    assert.is_true(st:put("k", "v"))
    assert.is_true(st:put("empty", ""))
    assert.are.same({ "empty", "k" }, st:list())
    assert.are.equal("v", st:get("k"))
    local url = assert(st:url("k"))
    assert.truthy(url:find("sv=2019-12-12", 1, true), url)
    assert.are.equal("v", assert(http.get(url, { retries = 0 })).body)
    assert.is_true(st:remove_all())
    st:close()
  end)

  it("refuses bad options with EINVAL", function()
    local st, msg, code = open("Bad_Name")
    assert.is_nil(st)
    assert.are.equal("EINVAL", code, msg)
    st, msg, code = open("ok-name", { account = "Dev Store" })
    assert.is_nil(st)
    assert.are.equal("EINVAL", code)
    assert.truthy(msg:find("storage-account-name", 1, true), msg)
    st, msg, code = open("ok-name", { key = "not base64!" })
    assert.is_nil(st)
    assert.are.equal("EINVAL", code, msg)
    assert.is_nil(msg:find("not base64!", 1, true), msg)
    assert.has_error(function() azure.new() end)
  end)
end)

-- Faults: a proxy in front of the same azurite (tests/servers/azure-faults)
-- answers chosen requests itself; the rest pass through still signed.
describe("azure storage faults", function()
  local server = require("juju.testing.server")
  local json = require("juju.json")
  local src = os.getenv("JUJU_TEST_SOURCE_DIR") or "."
  local proxy = assert(server.start { name = "azure-faults", argv = { "/usr/bin/python3",
    src .. "/tests/servers/azure-faults/proxy.py", "{host}", "{port}", tostring(az.server.port) } })
  teardown(function() proxy:stop() end)
  local endpoint = proxy.url .. "/" .. az.account
  local tmp = assert(fs.mkdtemp((os.getenv("TMPDIR") or "/tmp") .. "/juju-azure-faults-"))
  teardown(function() fs.remove_tree(tmp) end)

  local function faults(rules)
    local r, msg = http.request { url = proxy.url .. "/__faults", method = "POST", retries = 0,
      body = assert(json.encode(json.array(rules))) }
    assert(r, msg)
  end
  local function seen()
    return assert(json.decode(assert(http.get(proxy.url .. "/__faults/log", { retries = 0 })).body))
  end
  local function count(log, pattern)
    local n = 0
    for _, l in ipairs(log) do if l:find(pattern, 1, true) then n = n + 1 end end
    return n
  end
  local function azure_error(code, message, detail)
    return "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>" .. code .. "</Code><Message>" .. message ..
      "\nRequestId:0f1e\nTime:2026-01-01T00:00:00Z</Message>" ..
      (detail and ("<AuthenticationErrorDetail>" .. detail .. "</AuthenticationErrorDetail>") or "") .. "</Error>"
  end
  local function via_proxy(container, extra)
    local o = { endpoint = endpoint }
    for k, v in pairs(extra or {}) do o[k] = v end
    faults({})
    return assert(open(container, o))
  end

  it("retries a 500 in the middle of a block upload; a lasting one fails it with nothing committed", function()
    local st = via_proxy("midupload", { block_size = 1024 * 1024 })
    local file = tmp .. "/mid"
    assert(fs.write_atomic(file, string.rep(crypto.random_bytes(4096), 3 * 256)))
    local second = "blockid=" .. http.url_escape(crypto.base64("juju-block-00000002"))
    local err500 = { method = "PUT", contains = second, status = 500, times = 1,
      headers = { ["x-ms-error-code"] = "InternalError" }, body = azure_error("InternalError", "Server error.") }
    faults({ err500 })
    assert.are.equal(3 * 1024 * 1024, assert(st:put_file("tools/a.tgz", file)))
    assert.are.equal(2, count(seen(), second))
    assert.are.equal((crypto.sha256_file(file)), crypto.sha256(st:get("tools/a.tgz")))
    err500.times = 100
    faults({ err500 })
    local r, msg, code = st:put_file("tools/b.tgz", file)
    assert.is_nil(r)
    assert.are.equal("HTTP", code, msg)
    assert.truthy(msg:find("InternalError", 1, true), msg)
    assert.truthy(msg:find("block 2 of 3", 1, true), msg)
    assert.are.equal(0, count(seen(), "comp=blocklist"))
    assert_no_secret(msg, az.key)
    faults({})
    assert.is_false(st:exists("tools/b.tgz"))
    assert.is_true(st:remove_all())
    st:close()
  end)

  it("reports a malformed List Blobs body as INVALID", function()
    local st = via_proxy("badxml")
    faults({ { method = "GET", contains = "comp=list", status = 200, times = 1,
      body = "<?xml version=\"1.0\"?><EnumerationResults><Blobs><Blob><Name>a</Name></Blo" } })
    local r, msg, code = st:list()
    assert.is_nil(r)
    assert.are.equal("INVALID", code, msg)
    assert.truthy(msg:find("List Blobs", 1, true), msg)
    faults({ { method = "GET", contains = "comp=list", status = 200, times = 1, body = "<html>proxy page</html>" } })
    r, msg, code = st:list()
    assert.is_nil(r)
    assert.are.equal("INVALID", code, msg)
    faults({})
    assert.are.same({}, st:list())
    st:close()
  end)

  it("fails a truncated download without leaving a file", function()
    local st = via_proxy("truncated")
    assert.is_true(st:put("k", string.rep("x", 1000)))
    faults({ { method = "GET", contains = "/truncated/k", status = 200, times = 10, length = 1000, body = "xxxx" } })
    local r, msg = st:get("k")
    assert.is_nil(r, "a truncated body must not be returned")
    assert.is_string(msg)
    r = st:get_to_file("k", tmp .. "/trunc")
    assert.is_nil(r)
    assert.is_false(fs.exists(tmp .. "/trunc"))
    faults({})
    assert.are.equal(string.rep("x", 1000), st:get("k"))
    assert.is_true(st:remove_all())
    st:close()
  end)

  it("says to check the clock when the request date is refused, and never echoes a signature", function()
    local st = via_proxy("skew")
    local forbidden = { ["x-ms-error-code"] = "AuthenticationFailed" }
    faults({ { method = "GET", contains = "/skew/k", status = 403, times = 1, headers = forbidden,
      body = azure_error("AuthenticationFailed", "Server failed to authenticate the request.",
        "Request date header too old: 'Fri, 26 Jun 2015 23:39:12 GMT'") } })
    local r, msg, code = st:get("k")
    assert.is_nil(r)
    assert.are.equal("CLOCK", code, msg)
    assert.truthy(msg:find("check this machine's clock", 1, true), msg)
    assert.truthy(msg:find("Request date header too old", 1, true), msg)
    local _, n = msg:gsub("check this machine's clock", "")
    assert.are.equal(1, n, "the advice once: " .. msg)
    -- real Azure quotes the request's MAC in the detail: it stays out
    local mac = "ZmFrZS1zaWduYXR1cmUtdmFsdWUtZm9yLXRoZS10ZXN0LTE="
    faults({ { method = "GET", contains = "/skew/k", status = 403, times = 1, headers = forbidden,
      body = azure_error("AuthenticationFailed", "Server failed to authenticate the request.",
        "The MAC signature found in the HTTP request '" .. mac .. "' is not the same as any computed signature. " ..
        "Server used following string to sign: 'GET\n\nx-ms-date:Fri, 26 Jun 2015 23:39:12 GMT'.") } })
    r, msg, code = st:get("k")
    assert.is_nil(r)
    assert.are.equal("AUTH", code, msg)
    assert.is_nil(msg:find(mac, 1, true), msg)
    assert.is_nil(msg:find("clock", 1, true), "a signature mismatch is not about the clock: " .. msg)
    faults({})
    st:close()
  end)
end)
