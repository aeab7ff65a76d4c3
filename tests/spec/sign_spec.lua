-- Specs for juju.sign: keys from ssh-keygen/openssl in every format
-- (OpenSSH, PKCS#1, SEC1, PKCS#8), signatures checked by the openssl CLI,
-- fingerprints checked against ssh-keygen -l, the Joyent rsa-sha256
-- vectors, and the refusals (encrypted keys, non-keys).
local sign = require("juju.sign")
local crypto = require("juju.crypto")
local json = require("juju.json")

local SHARED = os.getenv("JUJU_TEST_SHARED") or ((os.getenv("JUJU_TEST_SOURCE_DIR") or ".") .. "/../shared")

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok, _, status = p:close()
  assert(ok, ("command failed (%s): %s\n%s"):format(tostring(status), cmd, out))
  return out
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function write(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

describe("juju.sign", function()
  local dir
  setup(function()
    dir = sh("mktemp -d"):gsub("%s+$", "")
  end)
  teardown(function()
    sh("rm -rf '" .. dir .. "'")
  end)
  after_each(function()
    collectgarbage()
    collectgarbage()
  end)

  -- openssl verifies sig over data with key's public PEM
  local function openssl_verifies(key, data, sig, hash)
    write(dir .. "/pub.pem", key:public_pem())
    write(dir .. "/data", data)
    write(dir .. "/sig", sig)
    local cmd
    if key:info().type == "ed25519" then
      cmd = "openssl pkeyutl -verify -pubin -inkey '%s/pub.pem' -rawin -in '%s/data' -sigfile '%s/sig'"
      cmd = cmd:format(dir, dir, dir)
    else
      cmd = ("openssl dgst -%s -verify '%s/pub.pem' -signature '%s/sig' '%s/data'"):format(hash, dir, dir, dir)
    end
    local p = assert(io.popen(cmd .. " 2>&1"))
    local out = p:read("a")
    local ok = p:close()
    return ok == true and out:match("Verified") ~= nil
  end

  describe("reproduces the Joyent rsa-sha256 vectors", function()
    local v = json.decode(read(SHARED .. "/conformance/signing/joyent-httpsig-vectors.json"))
    local key = assert(sign.load_key(v.private_key_pem, "joyent test key"))
    local found = 0
    for _, c in ipairs(v.cases or v.vectors or {}) do
      if c.expected_authorization then
        found = found + 1
        it(c.test, function()
          local str = c.signing_string
          assert.are.equal(c.manta and ("date: " .. c.date_header) or c.date_header, str)
          local sig = crypto.base64(key:sign(str, { hash = "sha256" }))
          assert.truthy(c.expected_authorization:find(sig, 1, true), "signature " .. sig)
          assert.is_true(key:verify(str, crypto.unbase64(sig)))
        end)
      end
    end
    it("found the vectors", function()
      assert.is_true(found >= 2)
      assert.are.same({ type = "rsa", ssh_type = "ssh-rsa", bits = 2048 }, key:info())
    end)
  end)

  local kinds = {
    { t = "rsa", b = 2048, hashes = { "sha1", "sha256", "sha512" } },
    { t = "ecdsa", b = 256, curve = "P-256", hashes = { "sha256" } },
    { t = "ecdsa", b = 384, curve = "P-384", hashes = { "sha384" } },
    { t = "ecdsa", b = 521, curve = "P-521", hashes = { "sha512", "sha256" } },
    { t = "ed25519", b = 256, hashes = { "sha256" } },
  }
  local formats = { "openssh", "PEM", "PKCS8" }
  for _, k in ipairs(kinds) do
    for _, fmt in ipairs(formats) do
      if not (k.t == "ed25519" and fmt ~= "openssh") then
        it(("loads and signs with an ssh-keygen %s-%d key in %s format"):format(k.t, k.b, fmt), function()
          local path = ("%s/%s%d%s"):format(dir, k.t, k.b, fmt)
          local m = fmt == "openssh" and "" or (" -m " .. fmt)
          sh(("ssh-keygen -q -t %s -b %d -N '' -C c@x%s -f '%s'"):format(k.t, k.b, m, path))
          local text = read(path)
          if fmt == "openssh" then
            assert.truthy(text:find("BEGIN OPENSSH PRIVATE KEY", 1, true))
          end
          local key = assert(sign.load_key_file(path))
          local info = key:info()
          assert.are.equal(k.t, info.type)
          assert.are.equal(k.b, info.bits)
          assert.are.equal(k.curve, info.curve)
          local pub = read(path .. ".pub")
          assert.are.equal(pub:match("^(%S+ %S+)"), key:public_line())
          assert.are.equal(pub:gsub("%s+$", ""), key:public_line("c@x"))
          assert.are.equal(crypto.unbase64(pub:match("^%S+ (%S+)")), key:public_blob())
          local md5 = sh(("ssh-keygen -l -E md5 -f '%s.pub'"):format(path)):match("MD5:(%S+)")
          assert.are.equal(md5, key:fingerprint_md5())
          local sha = sh(("ssh-keygen -l -E sha256 -f '%s.pub'"):format(path)):match("(SHA256:%S+)")
          assert.are.equal(sha, key:fingerprint_sha256())
          assert.are.equal(crypto.ssh_fingerprint(pub), key:fingerprint_sha256())
          local data = "date: Thu, 05 Jan 2014 21:31:40 GMT"
          for _, h in ipairs(k.hashes) do
            local sig = key:sign(data, { hash = h })
            assert.is_true(openssl_verifies(key, data, sig, h), k.t .. " " .. h)
            assert.is_true(key:verify(data, sig, { hash = h }))
            assert.is_false(key:verify(data .. "x", sig, { hash = h }))
          end
          -- the same key read as text gives the same public key
          local again = assert(sign.load_key(text, "text"))
          assert.are.equal(key:public_blob(), again:public_blob())
          key:close()
          key:close()
          assert.has_error(function() key:sign("x") end, "attempt to use a closed juju.sign.Key")
        end)
      end
    end
  end

  it("gives ECDSA signatures as DER or as raw r||s padded to the curve size", function()
    local path = dir .. "/ecraw"
    sh(("ssh-keygen -q -t ecdsa -b 521 -N '' -f '%s'"):format(path))
    local key <close> = assert(sign.load_key_file(path))
    for _ = 1, 8 do
      local raw = key:sign("m", { hash = "sha512", ecdsa = "raw" })
      assert.are.equal(132, #raw)
      assert.is_true(key:verify("m", raw, { hash = "sha512", ecdsa = "raw" }))
      assert.is_false(key:verify("m", raw:sub(1, 131), { hash = "sha512", ecdsa = "raw" }))
    end
    local der = key:sign("m", { hash = "sha512" })
    assert.are.equal(0x30, der:byte(1))
    assert.is_true(key:verify("m", der, { hash = "sha512", ecdsa = "der" }))
    assert.has_error(function() key:sign("m", { ecdsa = "jws" }) end)
    assert.has_error(function() key:sign("m", { hash = "md5" }) end)
  end)

  it("loads PKCS#8 ed25519 keys from openssl", function()
    local path = dir .. "/ed.pem"
    sh(("openssl genpkey -algorithm ed25519 -out '%s'"):format(path))
    local key <close> = assert(sign.load_key_file(path))
    assert.are.equal("ed25519", key:info().type)
    local sig = key:sign("hello")
    assert.are.equal(64, #sig)
    assert.is_true(openssl_verifies(key, "hello", sig))
  end)

  it("refuses encrypted keys without prompting, naming the file", function()
    local path = dir .. "/enc"
    sh(("ssh-keygen -q -t ed25519 -N 'secret pass' -f '%s'"):format(path))
    local v, msg, code = sign.load_key_file(path)
    assert.is_nil(v)
    assert.are.equal("UNSUPPORTED", code)
    assert.matches("encrypted", msg)
    assert.truthy(msg:find(path, 1, true))
    sh(("openssl genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:1024 -aes256 -pass pass:x -out '%s.pem'"):format(path))
    v, msg, code = sign.load_key_file(path .. ".pem")
    assert.is_nil(v)
    assert.are.equal("UNSUPPORTED", code)
    assert.matches("encrypted", msg)
  end)

  it("reports non-keys, damaged keys and missing files", function()
    local v, msg, code = sign.load_key("hello", "cfg:private-key")
    assert.is_nil(v)
    assert.are.equal("EINVAL", code)
    assert.matches("^cfg:private%-key: not a private key", msg)
    local path = dir .. "/trunc"
    sh(("ssh-keygen -q -t rsa -b 2048 -N '' -f '%s'"):format(path))
    local lines = {}
    for l in read(path):gmatch("[^\n]+") do lines[#lines + 1] = l end
    local cut = table.concat({ lines[1], lines[2], lines[3], lines[#lines] }, "\n")
    v, msg, code = sign.load_key(cut, "trunc")
    assert.is_nil(v)
    assert.are.equal("EINVAL", code)
    assert.matches("^trunc: malformed OpenSSH private key", msg)
    v, msg, code = sign.load_key("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    assert.is_nil(v)
    assert.are.equal("EINVAL", code)
    assert.matches("^private key: cannot read the private key", msg)
    v, msg, code = sign.load_key_file(dir .. "/missing")
    assert.is_nil(v)
    assert.are.equal("ENOENT", code)
    assert.truthy(msg:find("missing", 1, true))
  end)
end)
