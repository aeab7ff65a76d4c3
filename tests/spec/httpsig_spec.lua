-- Specs for juju.cloud.sign.httpsig: gosign's rsa-sha256 vectors (CloudAPI
-- and Manta forms) byte for byte, and every key type ssh-keygen makes
-- (RSA in OpenSSH format, ECDSA P-256/384/521, ed25519) checked by an
-- independent verifier (npm http-signature + sshpk, tests/servers/manta/
-- verify.js) that is shown to refuse tampered headers and wrong keys.
local hs = require("juju.cloud.sign.httpsig")
local sign = require("juju.sign")
local json = require("juju.json")
local fs = require("juju.fs")
local harness = require("servers.manta.harness")

local SHARED = os.getenv("JUJU_TEST_SHARED") or ((os.getenv("JUJU_TEST_SOURCE_DIR") or ".") .. "/../shared")
local VECTORS = SHARED .. "/conformance/signing/joyent-httpsig-vectors.json"

local NOW = 1381776569 -- Mon, 14 Oct 2013 18:49:29 GMT

describe("juju.cloud.sign.httpsig", function()
  local dir
  setup(function()
    dir = assert(fs.mkdtemp((os.getenv("TMPDIR") or "/tmp") .. "/juju-httpsig-"))
  end)
  teardown(function() fs.remove_tree(dir) end)

  it("formats RFC 1123 dates", function()
    assert.are.equal("Mon, 14 Oct 2013 18:49:29 GMT", hs.http_date(NOW))
    assert.are.equal("Thu, 01 Jan 1970 00:00:00 GMT", hs.http_date(0))
    assert.are.equal("/u/keys/aa:bb", hs.key_id("u", "aa:bb"))
  end)

  describe("gosign vectors", function()
    local doc = assert(json.decode(assert(fs.read_file(VECTORS)), VECTORS))
    local key = assert(sign.load_key(doc.private_key_pem, "gosign test key"))
    assert.is_true(#doc.vectors >= 2)
    for _, v in ipairs(doc.vectors) do
      it(v.test, function()
        assert.are.equal("rsa-sha256", v.algorithm)
        local req = { method = "GET", url = "https://example.com/" .. v.user .. "/stor",
                      headers = { Date = v.date_header } }
        local auth = hs.sign(req, { key = key, key_id = hs.key_id(v.user, v.key_id),
          algorithm = v.algorithm, form = (not v.manta) and "cloudapi" or nil })
        assert.are.equal(v.expected_authorization, auth)
        assert.are.equal(auth, req.headers.Authorization)
        assert.are.equal(v.date_header, req.headers.Date)
        if v.manta then assert.are.equal(v.signing_string, hs.signing_string(req, { "date" })) end
      end)
    end
  end)

  it("adds Date from now and Host for the request-target form", function()
    local doc = assert(json.decode(assert(fs.read_file(VECTORS)), VECTORS))
    local key = assert(sign.load_key(doc.private_key_pem))
    local req = { method = "PUT", url = "http://127.0.0.1:8080/u/stor/a%20b?limit=2", headers = {} }
    local auth = hs.sign(req, { key = key, key_id = "/u/keys/k", now = NOW,
      headers = { "(request-target)", "host", "date" } })
    assert.are.equal("Mon, 14 Oct 2013 18:49:29 GMT", req.headers.Date)
    assert.are.equal("127.0.0.1:8080", req.headers.Host)
    assert.matches('^Signature keyId="/u/keys/k",algorithm="rsa%-sha256",headers="%(request%-target%) host date",signature="[%w+/=]+"$', auth)
    assert.are.equal("(request-target): put /u/stor/a%20b?limit=2\nhost: 127.0.0.1:8080\ndate: Mon, 14 Oct 2013 18:49:29 GMT",
      hs.signing_string(req, { "(request-target)", "host", "date" }))
  end)

  it("refuses an algorithm that does not fit the key, and a request without a date", function()
    local path = harness.keygen(dir, "mismatch", "ed25519")
    local key = assert(sign.load_key_file(path))
    assert.has_error(function() hs.sign({ url = "http://h/", headers = {} },
      { key = key, key_id = "/u/keys/k", now = NOW, algorithm = "rsa-sha256" }) end)
    assert.has_error(function() hs.sign({ url = "http://h/", headers = {} },
      { key = key, key_id = "/u/keys/k", now = NOW, algorithm = "rsa-sha224" }) end)
    assert.has_error(function() hs.sign({ url = "http://h/", headers = {} },
      { key = key, key_id = "/u/keys/k" }) end)
  end)

  describe("independent verifier (http-signature + sshpk)", function()
    local KEYS = {
      { "rsa", 2048, "rsa-sha256" }, { "ecdsa", 256, "ecdsa-sha256" }, { "ecdsa", 384, "ecdsa-sha384" },
      { "ecdsa", 521, "ecdsa-sha512" }, { "ed25519", nil, "ed25519-sha512" },
    }
    for _, k in ipairs(KEYS) do
      local ktype, bits, alg = k[1], k[2], k[3]
      it(alg .. " with an ssh-keygen " .. ktype .. (bits and (" " .. bits) or "") .. " key", function()
        local path, pub = harness.keygen(dir, ktype .. (bits or ""), ktype, bits)
        local _, other_pub = harness.keygen(dir, ktype .. (bits or "") .. "-other", ktype, bits)
        assert.matches("OPENSSH PRIVATE KEY", fs.read_file(path))
        local key = assert(sign.load_key_file(path))
        assert.are.equal(alg, hs.default_algorithm(key))
        local key_id = hs.key_id("jm", key:fingerprint_md5())
        local function request(headers, url)
          local req = { method = "GET", url = url or "http://127.0.0.1:1234/jm/stor/x?limit=5",
                        headers = { Accept = "application/json" } }
          hs.sign(req, { key = key, key_id = key_id, now = NOW, headers = headers })
          return { method = req.method, url = req.url:gsub("^http://[^/]*", ""), headers = req.headers,
                   key_id = key_id }
        end
        local plain = request()
        local full = request({ "(request-target)", "host", "date" })
        local tampered = request()
        tampered.headers.Date = "Tue, 15 Oct 2013 18:49:29 GMT"
        local moved = request({ "(request-target)", "host", "date" })
        moved.url = "/jm/stor/y?limit=5"
        local res = harness.verify(pub, { plain, full, tampered, moved })
        assert.is_true(res[1].ok, res[1].reason)
        assert.is_true(res[2].ok, res[2].reason)
        assert.are.equal("date: Mon, 14 Oct 2013 18:49:29 GMT", res[1].signing_string)
        assert.is_false(res[3].ok)
        assert.are.equal("InvalidSignature", res[3].code)
        assert.is_false(res[4].ok)
        local wrong = harness.verify(other_pub, { plain, full })
        assert.is_false(wrong[1].ok)
        assert.is_false(wrong[2].ok)
        key:close()
      end)
    end

    it("checks the clock skew as Manta does", function()
      local doc = assert(json.decode(assert(fs.read_file(VECTORS)), VECTORS))
      local key = assert(sign.load_key(doc.private_key_pem))
      local req = { method = "GET", url = "http://h/u/stor", headers = {} }
      hs.sign(req, { key = key, key_id = "/u/keys/k", now = NOW })
      local pub = key:public_line()
      local res = harness.verify(pub, { { method = "GET", url = "/u/stor", headers = req.headers } }, 300)
      assert.is_false(res[1].ok)
      assert.are.equal("RequestExpired", res[1].code)
    end)
  end)
end)
