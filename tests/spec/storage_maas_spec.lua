-- storage_maas_spec.lua: the storage behaviour suite on MAAS files
-- (juju.cloud.storage.maas) against gomaasapi's test server wrapped by
-- tests/servers/maas (a Go main that checks every request's OAuth PLAINTEXT
-- header and serves the anonymous get_by_key URLs), plus wrong and
-- malformed credentials.
local maas = require("juju.cloud.storage.maas")
local server = require("juju.testing.server")
local http = require("juju.http")

local SRC = os.getenv("JUJU_TEST_SOURCE_DIR") or "."
local OAUTH = "jmConsumerKey:jmTokenKey:jmTokenSecretXYZ"

local bin = assert(server.go_build("maas", SRC .. "/tests/servers/maas"))
local s = assert(server.start {
  name = "maas", argv = { bin, "-addr", "{host}:{port}" }, host = "127.0.0.1",
  env = { MAAS_TEST_OAUTH = OAUTH },
})
local SERVER = s.url .. "/MAAS"

teardown(function() s:stop() end)

local function open(name, extra)
  local o = { server = SERVER, oauth = OAUTH, prefix = name .. "-" }
  for k, v in pairs(extra or {}) do o[k] = v end
  return maas.new(o)
end

require("spec.storage_contract").run(describe, it, assert, open, { kind = "maas" })

describe("maas storage", function()
  after_each(function() collectgarbage() end)

  it("the server refuses requests without OAuth (the check can fail)", function()
    local r, _, _, eresp = http.get(SERVER .. "/api/1.0/files/?op=list", { timeout = 10 })
    assert.is_nil(r)
    assert.are.equal(401, eresp.status)
  end)

  it("reports wrong credentials as AUTH naming maas-oauth and the server, never the secret", function()
    for _, bad in ipairs({ "jmConsumerKey:jmTokenKey:wrongSecretABC", "otherConsumer:jmTokenKey:jmTokenSecretXYZ",
                           "jmConsumerKey:otherToken:jmTokenSecretXYZ" }) do
      local st = assert(open("wrong", { oauth = bad }))
      local ok, msg, code = st:put("provider-state", "x")
      assert.is_nil(ok)
      assert.are.equal("AUTH", code, msg)
      assert.is_truthy(msg:find("maas-oauth", 1, true), msg)
      assert.is_truthy(msg:find(SERVER, 1, true), msg)
      assert.is_falsy(msg:find("wrongSecretABC", 1, true), msg)
      assert.is_falsy(msg:find("jmTokenSecretXYZ", 1, true), msg)
      local _, lmsg, lcode = st:list()
      assert.are.equal("AUTH", lcode, lmsg)
      st:close()
    end
    local log = s:log_text()
    assert.is_falsy(log:find("jmTokenSecretXYZ", 1, true))
  end)

  it("refuses a malformed maas-oauth without echoing it", function()
    local st, msg, code = maas.new { server = SERVER, oauth = "consumer:secretPartOnly" }
    assert.is_nil(st)
    assert.are.equal("CONFIG", code)
    assert.matches("maas%-oauth", msg)
    assert.is_falsy(msg:find("secretPartOnly", 1, true))
  end)

  it("reports a 500 after an upload without retrying, leaving no staged form behind", function()
    local fs = require("juju.fs")
    local sys = require("juju.sys")
    local tmp = assert(fs.mkdtemp((os.getenv("TMPDIR") or "/tmp") .. "/juju-maas-spec-"))
    local old_tmpdir = os.getenv("TMPDIR")
    local ok, err = pcall(function()
      local src = tmp .. "/src"
      assert(fs.write_atomic(src, string.rep("x", 300000)))
      sys.setenv("TMPDIR", tmp)
      local st = assert(open("fault"))
      assert(http.request { url = s.url .. "/_fault?status=500&count=1", method = "POST", body = "", timeout = 10 })
      local r, msg, code = st:put_file("tools/big", src)
      assert.is_nil(r)
      assert.are.equal("HTTP", code, msg)
      assert.matches("500", msg)
      assert.is_falsy(msg:find("jmTokenSecretXYZ", 1, true))
      assert.are.same({ "src" }, fs.list(tmp))
      assert.is_false(st:exists("tools/big"))
      -- one fault, one attempt: the next upload goes through
      assert.are.equal(300000, assert(st:put_file("tools/big", src)))
      assert.are.same({ "src" }, fs.list(tmp))
      assert.are.equal(300000, st:size("tools/big"))
      assert.is_true(st:remove_all())
      st:close()
    end)
    sys.setenv("TMPDIR", old_tmpdir)
    fs.remove_tree(tmp)
    assert(ok, err)
  end)

  it("reports a truncated listing as INVALID", function()
    local st = assert(open("bad-listing"))
    assert.is_true(st:put("a", "1"))
    assert(http.request { url = s.url .. "/_fault?mode=listing", method = "POST", body = "", timeout = 10 })
    local names, msg, code = st:list()
    assert.is_nil(names)
    assert.are.equal("INVALID", code, msg)
    assert.matches("listing", msg)
    assert.are.same({ "a" }, st:list())
    assert.is_true(st:remove_all())
    st:close()
  end)

  it("stores nested names as flat MAAS filenames under the prefix", function()
    local st = assert(open("flat"))
    assert.is_true(st:put("tools/releases/juju.tgz", "T"))
    local other = assert(open("flatx"))
    assert.is_true(other:put("tools/releases/juju.tgz", "U"))
    assert.are.same({ "tools/releases/juju.tgz" }, st:list())
    assert.are.equal("T", st:get("tools/releases/juju.tgz"))
    local url = assert(st:url("tools/releases/juju.tgz"))
    assert.matches("op=get_by_key", url)
    assert.are.equal("T", assert(http.get(url, { timeout = 10 })).body)
    assert.is_true(st:remove_all())
    assert.are.same({ "tools/releases/juju.tgz" }, other:list())
    assert.is_true(other:remove_all())
    st:close()
    other:close()
  end)
end)
