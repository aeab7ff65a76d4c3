-- Specs for juju.mac: digests and HMACs, streaming, files, and the HMAC
-- chain of AWS SigV4 over every case of both AWS suites in
-- ../shared/conformance/signing (string to sign -> Authorization signature).
local mac = require("juju.mac")
local crypto = require("juju.crypto")

local SHARED = os.getenv("JUJU_TEST_SHARED") or ((os.getenv("JUJU_TEST_SOURCE_DIR") or ".") .. "/../shared")
local SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- The .sts/.authz pairs of one suite, as {name, sts, authz, creq}.
local function cases(dir)
  local out = {}
  local p = assert(io.popen("find '" .. dir .. "' -name '*.sts' | sort"))
  for sts in p:lines() do
    local base = sts:sub(1, -5)
    local ok, authz = pcall(read, base .. ".authz")
    if ok then
      out[#out + 1] = { name = base:match("[^/]+$"), sts = read(sts), authz = authz, creq = read(base .. ".creq") }
    end
  end
  p:close()
  return out
end

local function sigv4(sts)
  local date, scope = sts:match("^AWS4%-HMAC%-SHA256\n[^\n]+\n(%d+)/([^\n]+)\n")
  local region, service = scope:match("^([^/]+)/([^/]+)/aws4_request$")
  local k = mac.hmac("sha256", "AWS4" .. SECRET, date)
  k = mac.hmac("sha256", k, region)
  k = mac.hmac("sha256", k, service)
  k = mac.hmac("sha256", k, "aws4_request")
  return crypto.hex(mac.hmac("sha256", k, sts))
end

describe("juju.mac", function()
  after_each(function()
    collectgarbage()
    collectgarbage()
  end)

  it("computes digests and HMACs as raw bytes", function()
    assert.are.equal("900150983cd24fb0d6963f7d28e17f72", crypto.hex(mac.digest("md5", "abc")))
    assert.are.equal("1B2M2Y8AsgTpgAmY7PhCfg==", crypto.base64(mac.digest("md5", ""))) -- Content-MD5 of ""
    assert.are.equal("effcdf6ae5eb2fa2d27416d5f184df9c259a7c79",
      crypto.hex(mac.hmac("sha1", "Jefe", "what do ya want for nothing?")))
    assert.are.equal("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
      crypto.hex(mac.hmac("sha256", "Jefe", "what do ya want for nothing?")))
    assert.are.equal(64, #mac.hmac("sha512", "k", "d"))
  end)

  it("streams, and digest() does not end the stream", function()
    local m <close> = mac.new("sha256", "Jefe")
    assert.are.equal(m, m:update("what do ya "):update("want for nothing?"))
    assert.are.equal("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", m:hexdigest())
    assert.are.equal(m:hexdigest(), crypto.hex(m:digest()))
    local d = mac.new("md5")
    d:update("a"):update("bc")
    assert.are.equal("900150983cd24fb0d6963f7d28e17f72", d:hexdigest())
    d:close()
    d:close()
    assert.has_error(function() d:update("x") end, "attempt to use a closed juju.mac.Mac")
  end)

  it("hashes files in a stream and reports missing ones", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "wb"))
    f:write(string.rep("x", 100000))
    f:close()
    local d, size = mac.file("sha256", path)
    assert.are.equal(100000, size)
    assert.are.equal(mac.digest("sha256", string.rep("x", 100000)), d)
    assert.are.equal(mac.hmac("sha1", "k", string.rep("x", 100000)), (mac.file("sha1", path, "k")))
    os.remove(path)
    local v, msg, code = mac.file("md5", path)
    assert.is_nil(v)
    assert.are.equal("ENOENT", code)
    assert.matches(path, msg, 1, true)
  end)

  it("raises on unknown algorithms", function()
    assert.has_error(function() mac.digest("sha3", "x") end)
    assert.has_error(function() mac.new("crc32") end)
  end)

  for _, suite in ipairs({ "aws-sig-v4-test-suite", "aws4_testsuite-2011" }) do
    describe("the SigV4 HMAC chain over " .. suite, function()
      local all = cases(SHARED .. "/conformance/signing/" .. suite)
      it("finds the suite's cases", function()
        assert.is_true(#all >= 25, "found " .. #all .. " cases")
      end)
      for _, c in ipairs(all) do
        it(c.name, function()
          assert.are.equal(c.sts:match("([0-9a-f]+)%s*$"), crypto.hex(mac.digest("sha256", c.creq)))
          assert.are.equal(c.authz:match("Signature=([0-9a-f]+)"), sigv4(c.sts))
        end)
      end
    end)
  end
end)
