-- storage_manta_spec.lua: the storage behaviour suite on Manta
-- (juju.cloud.storage.manta) against the Manta fake in tests/servers/manta,
-- which checks every request's HTTP Signature and every signed URL with
-- npm http-signature + sshpk; plus what only Manta has: wrong keys, expired
-- and tampered signed URLs, unsigned requests, directory paging, ECDSA.
local manta = require("juju.cloud.storage.manta")
local server = require("juju.testing.server")
local http = require("juju.http")
local sign = require("juju.sign")
local fs = require("juju.fs")
local harness = require("servers.manta.harness")

local USER = "jm"

local tmp = assert(fs.mkdtemp((os.getenv("TMPDIR") or "/tmp") .. "/juju-manta-spec-"))
local key_path = harness.keygen(tmp, "id_rsa", "rsa", 2048)
local other_path = harness.keygen(tmp, "id_other", "rsa", 2048)
local key = assert(sign.load_key_file(key_path))
local FP = key:fingerprint_md5()
fs.write_atomic(tmp .. "/user.pub", key:public_line("jm"))

local s = assert(server.start {
  name = "manta",
  argv = { "node", harness.dir .. "/server.js", "--host", "{host}", "--port", "{port}", "--dir", "{dir}",
           "--user", USER, "--key-id", "/" .. USER .. "/keys/" .. FP, "--public-key", tmp .. "/user.pub" },
  host = "127.0.0.1",
  env = { NODE_PATH = harness.node_path() },
})

teardown(function()
  s:stop()
  key:close()
  fs.remove_tree(tmp)
end)

local function open(name, extra)
  local o = { url = s.url, user = USER, key_file = key_path, root = "stor/" .. name }
  for k, v in pairs(extra or {}) do o[k] = v end
  return manta.new(o)
end

require("spec.storage_contract").run(describe, it, assert, open, { kind = "manta" })

describe("manta storage", function()
  after_each(function() collectgarbage() end)

  it("the fake refuses unsigned requests (the signature check can fail)", function()
    local r, msg, code, eresp = http.get(s.url .. "/" .. USER .. "/stor/x", { timeout = 10 })
    assert.is_nil(r, msg)
    assert.is_string(code)
    assert.are.equal(401, eresp.status)
    assert.matches('"code":"AuthorizationRequired"', eresp.body)
  end)

  it("reports a wrong key as AUTH naming the config keys and the URL, never the key", function()
    local st = assert(open("wrong-key", { key_file = other_path, key_id = FP }))
    local ok, msg, code = st:put("provider-state", "x")
    assert.is_nil(ok)
    assert.are.equal("AUTH", code, msg)
    for _, want in ipairs({ "manta-user", "manta-key-id", "private-key-path", s.url, "InvalidSignature" }) do
      assert.is_truthy(msg:find(want, 1, true), "message lacks " .. want .. ": " .. msg)
    end
    local pem = fs.read_file(other_path)
    local body = pem:match("KEY%-%-%-%-%-\n(.-)\n")
    assert.is_falsy(msg:find(body, 1, true))
    assert.is_falsy(msg:find("PRIVATE", 1, true))
    assert.is_falsy(msg:find("signature=", 1, true))
    local _, lmsg, lcode = st:list()
    assert.are.equal("AUTH", lcode, lmsg)
    st:close()
    -- an unknown key id is refused too
    local st2 = assert(open("wrong-key-id", { key_id = "00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff" }))
    local _, msg2, code2 = st2:put("a", "b")
    assert.are.equal("AUTH", code2, msg2)
    st2:close()
  end)

  it("says to check the clock when Manta refuses the Date as skewed", function()
    local st = assert(open("skewed", { now = function() return os.time() - 3600 end }))
    local ok, msg, code = st:put("a", "b")
    assert.is_nil(ok)
    assert.are.equal("CLOCK", code, msg)
    assert.matches("RequestExpired", msg)
    local _, n = msg:gsub("check this machine's clock", "")
    assert.are.equal(1, n, "the advice once: " .. msg)
    st:close()
  end)

  it("names private-key-path when the key file does not load", function()
    local st, msg, code = manta.new { url = s.url, user = USER, key_file = tmp .. "/missing" }
    assert.is_nil(st)
    assert.are.equal("ENOENT", code)
    assert.matches("private%-key%-path", msg)
    local st2, msg2 = manta.new { url = s.url, user = USER, key = "not a key" }
    assert.is_nil(st2)
    assert.matches("private%-key", msg2)
  end)

  it("refuses expired and tampered signed URLs, and the log has no signatures", function()
    local st = assert(open("signed-urls"))
    assert.is_true(st:put("tools/a", "A"))
    assert.is_true(st:put("tools/b", "B"))
    local good = assert(st:url("tools/a", { expires = 60 }))
    assert.matches("algorithm=RSA%-SHA256&expires=%d+&keyId=%%2Fjm%%2Fkeys%%2F", good)
    assert.are.equal("A", assert(http.get(good, { timeout = 10 })).body)
    local expired = assert(st:url("tools/a", { expires = -10 }))
    local r, _, _, eresp = http.get(expired, { timeout = 10 })
    assert.is_nil(r)
    assert.are.equal(403, eresp.status)
    assert.matches("request expired", eresp.body)
    local moved = good:gsub("tools/a%?", "tools/b?")
    r, _, _, eresp = http.get(moved, { timeout = 10 })
    assert.is_nil(r)
    assert.are.equal(403, eresp.status)
    assert.matches("InvalidQueryStringAuthentication", eresp.body)
    assert.is_true(st:remove_all())
    st:close()
    local log = s:log_text()
    assert.matches("GET /jm/stor/signed%-urls/tools/a 200", log)
    assert.is_falsy(log:find("signature=", 1, true))
    assert.is_falsy(log:find("Signature keyId", 1, true))
  end)

  it("signs (request-target), host and date when asked, and reports a directory as EISDIR", function()
    local st = assert(open("request-target", { sign_headers = { "(request-target)", "host", "date" } }))
    assert.is_true(st:put("d/x y", "1"))
    assert.are.equal("1", st:get("d/x y"))
    assert.are.same({ "d/x y" }, st:list("d"))
    local _, msg, code = st:remove("d")
    assert.are.equal("EISDIR", code, msg)
    assert.is_true(st:remove_all())
    st:close()
  end)

  it("retries a PUT that fails mid-upload (signed afresh), and reports one that keeps failing", function()
    local st = assert(open("faults"))
    local src = tmp .. "/fault-src"
    assert(fs.write_atomic(src, string.rep("0123456789abcdef", 64 * 1024)))
    assert.is_true(st:put("warm", "up"))
    local function fault(count)
      assert(http.request { url = s.url .. "/_fault?status=500&count=" .. count, method = "POST", body = "", timeout = 10 })
    end
    fault(1)
    assert.are.equal(1024 * 1024, assert(st:put_file("tools/big", src)))
    assert.are.equal(1024 * 1024, st:size("tools/big"))
    fault(5)
    local ok, msg, code = st:put_file("tools/big2", src)
    assert.is_nil(ok)
    assert.are.equal("HTTP", code, msg)
    assert.matches("500", msg)
    assert.matches("InternalError", msg)
    assert.is_falsy(msg:find("Signature", 1, true))
    assert.is_false(st:exists("tools/big2"))
    assert(http.request { url = s.url .. "/_fault?count=0", method = "POST", body = "", timeout = 10 })
    assert.is_true(st:remove_all())
    st:close()
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

  it("pages directory listings (limit and marker)", function()
    local st = assert(open("paging", { page_size = 2 }))
    local want = {}
    for i = 1, 7 do
      local n = string.format("d/o%d", i)
      want[#want + 1] = n
      assert.is_true(st:put(n, tostring(i)))
    end
    assert.is_true(st:put("top", "t"))
    want[#want + 1] = "top"
    assert.are.same(want, st:list())
    assert.are.same({ "d/o1", "d/o2", "d/o3", "d/o4", "d/o5", "d/o6", "d/o7" }, st:list("d/"))
    assert.is_true(st:remove_all())
    assert.are.same({}, st:list())
    st:close()
  end)

  it("signs with an ECDSA key too, requests and signed URLs", function()
    local ec_path = harness.keygen(tmp, "id_ecdsa", "ecdsa", 256)
    local ec = assert(sign.load_key_file(ec_path))
    local pub = tmp .. "/ec.pub"
    fs.write_atomic(pub, ec:public_line("ec"))
    local s2 = assert(server.start {
      name = "manta-ecdsa",
      argv = { "node", harness.dir .. "/server.js", "--host", "{host}", "--port", "{port}", "--dir", "{dir}",
               "--user", USER, "--key-id", "/" .. USER .. "/keys/" .. ec:fingerprint_md5(), "--public-key", pub },
      env = { NODE_PATH = harness.node_path() },
    })
    local ok, err = pcall(function()
      local st = assert(manta.new { url = s2.url, user = USER, key = ec, root = "stor/ec" })
      assert.is_true(st:put("x/y", "ecdsa"))
      assert.are.equal("ecdsa", st:get("x/y"))
      local url = assert(st:url("x/y"))
      assert.matches("algorithm=ECDSA%-SHA256", url)
      assert.are.equal("ecdsa", assert(http.get(url, { timeout = 10 })).body)
      assert.is_true(st:remove_all())
      st:close()
    end)
    s2:stop()
    ec:close()
    assert(ok, err)
  end)
end)
