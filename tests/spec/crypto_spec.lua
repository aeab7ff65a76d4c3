-- crypto_spec.lua: the juju.crypto binding, checked against independent
-- tools (openssl, sha256sum, ssh-keygen) wherever one exists.
local crypto = require("juju.crypto")

local function sh_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- Runs a shell command; returns its combined output and whether it succeeded.
local function run(cmd)
  local p = assert(io.popen(cmd .. " 2>&1", "r"))
  local out = p:read("a")
  local ok = p:close()
  return out, ok == true
end

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function count(s, pattern)
  local n = 0
  for _ in s:gmatch(pattern) do n = n + 1 end
  return n
end

local tmp

local function path(name) return tmp .. "/" .. name end

describe("juju.crypto", function()
  setup(function()
    tmp = os.tmpname()
    os.remove(tmp)
    assert(os.execute("mkdir -m 700 " .. sh_quote(tmp)))
  end)

  teardown(function()
    if tmp and tmp:match("^/tmp/") then os.execute("rm -rf " .. sh_quote(tmp)) end
  end)

  after_each(function()
    collectgarbage()
    collectgarbage()
  end)

  describe("random_bytes", function()
    it("returns n random bytes", function()
      assert.equal(0, #crypto.random_bytes(0))
      local a, b = crypto.random_bytes(32), crypto.random_bytes(32)
      assert.equal(32, #a)
      assert.are_not.equal(a, b)
      assert.equal(100000, #crypto.random_bytes(100000))
    end)

    it("raises on misuse", function()
      assert.has_error(function() crypto.random_bytes(-1) end)
      assert.has_error(function() crypto.random_bytes("x") end)
    end)
  end)

  describe("hex and base64", function()
    it("round-trips hex", function()
      assert.equal("00ff7f41", crypto.hex("\0\255\127A"))
      assert.equal("\0\255\127A", crypto.unhex("00FF7f41"))
      local all = {}
      for i = 0, 255 do all[#all + 1] = string.char(i) end
      all = table.concat(all)
      assert.equal(all, crypto.unhex(crypto.hex(all)))
      assert.equal("", crypto.hex(""))
    end)

    it("rejects bad hex with EINVAL", function()
      for _, bad in ipairs({ "abc", "zz", "0x00" }) do
        local v, msg, code = crypto.unhex(bad)
        assert.is_nil(v)
        assert.is_string(msg)
        assert.equal("EINVAL", code)
      end
    end)

    it("matches the RFC 4648 vectors", function()
      local vectors = { [""] = "", f = "Zg==", fo = "Zm8=", foo = "Zm9v", foob = "Zm9vYg==",
        fooba = "Zm9vYmE=", foobar = "Zm9vYmFy" }
      for plain, enc in pairs(vectors) do
        assert.equal(enc, crypto.base64(plain))
        assert.equal(plain, crypto.unbase64(enc))
        assert.equal(plain, crypto.unbase64((enc:gsub("=", ""))))
      end
    end)

    it("base64 has no newlines and agrees with openssl", function()
      local data = crypto.random_bytes(300)
      local enc = crypto.base64(data)
      assert.is_nil(enc:find("\n"))
      write(path("b64.bin"), data)
      local out = run("openssl base64 -A -in " .. sh_quote(path("b64.bin")))
      assert.equal(enc, out)
      -- wrapped input (as openssl writes by default) decodes too
      local wrapped = run("openssl base64 -in " .. sh_quote(path("b64.bin")))
      assert.truthy(wrapped:find("\n"))
      assert.equal(data, crypto.unbase64(wrapped))
    end)

    it("rejects bad base64 with EINVAL", function()
      for _, bad in ipairs({ "Z", "Zg=", "Zm9v!", "Zg==Zg==", "Zh==" }) do
        local v, msg, code = crypto.unbase64(bad)
        assert.is_nil(v, bad)
        assert.is_string(msg)
        assert.equal("EINVAL", code)
      end
    end)
  end)

  describe("digests", function()
    it("matches FIPS vectors", function()
      assert.equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", crypto.sha256("abc"))
      assert.equal("ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
        .. "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f", crypto.sha512("abc"))
    end)

    it("streams through a hasher", function()
      local data = crypto.random_bytes(70000)
      for _, alg in ipairs({ "sha256", "sha512" }) do
        local h = crypto.hasher(alg)
        local i = 1
        while i <= #data do
          assert.equal(h, h:update(data:sub(i, i + 999)))
          i = i + 1000
        end
        assert.equal(crypto[alg](data), h:hexdigest())
        assert.equal(crypto.unhex(crypto[alg](data)), h:digest())
        h:close()
        h:close() -- idempotent
        assert.has_error(function() h:update("x") end)
        assert.has_error(function() h:hexdigest() end)
      end
    end)

    it("closes a hasher with <close>", function()
      local h
      do
        local hh <close> = crypto.hasher("sha256")
        h = hh
        hh:update("abc")
      end
      assert.has_error(function() h:digest() end)
      assert.matches("closed", tostring(h))
    end)

    it("raises for an unknown algorithm", function()
      assert.has_error(function() crypto.hasher("md5") end)
    end)

    it("sha256_file agrees with sha256sum", function()
      local p = path("data.bin")
      local data = crypto.random_bytes(300000)
      write(p, data)
      local hex, size = crypto.sha256_file(p)
      assert.equal(#data, size)
      assert.equal(crypto.sha256(data), hex)
      local out = run("sha256sum " .. sh_quote(p))
      assert.equal(out:match("^(%x+)"), hex)
    end)

    it("sha256_file reports a missing file", function()
      local v, msg, code = crypto.sha256_file(path("missing"))
      assert.is_nil(v)
      assert.matches("missing", msg)
      assert.equal("ENOENT", code)
    end)
  end)

  describe("passwords", function()
    it("pbkdf2_sha512 matches the known vector", function()
      assert.equal("867f70cf1ade02cff3752599a3a53dc4af34c7a669815ae5d513554e1c8cf252"
        .. "c02d470a285a0501bad999bfe943c08f050235d7d68b1da55e63f73b60a57fce",
        crypto.hex(crypto.pbkdf2_sha512("password", "salt", 1, 64)))
      assert.has_error(function() crypto.pbkdf2_sha512("p", "s", 0, 18) end)
    end)

    it("COMPAT_SALT is Juju's four bytes", function()
      assert.equal("\x75\x82\x81\xca", crypto.COMPAT_SALT)
    end)

    it("user_password_hash agrees with openssl kdf", function()
      local pw = "s3cret-Pass_word"
      local hash = crypto.user_password_hash(pw, crypto.COMPAT_SALT)
      assert.equal(24, #hash)
      local out, ok = run("openssl kdf -keylen 18 -kdfopt digest:SHA512 -kdfopt pass:" .. pw
        .. " -kdfopt hexsalt:758281ca -kdfopt iter:8192 PBKDF2")
      assert.is_true(ok, out)
      local hex = out:gsub("[:%s]", "")
      assert.equal(36, #hex)
      assert.equal(crypto.base64(crypto.unhex(hex)), hash)
      assert.are_not.equal(hash, crypto.user_password_hash(pw, "other salt"))
    end)

    it("agent_password_hash is base64 of 18 bytes of SHA-512", function()
      local h = crypto.agent_password_hash("agent-pw")
      assert.equal(24, #h)
      assert.equal(crypto.base64(crypto.unhex(crypto.sha512("agent-pw")):sub(1, 18)), h)
    end)

    it("random_password and admin_secret have Juju's shapes", function()
      local p1, p2 = crypto.random_password(), crypto.random_password()
      assert.equal(24, #p1)
      assert.equal(18, #crypto.unbase64(p1))
      assert.are_not.equal(p1, p2)
      local s = crypto.admin_secret()
      assert.matches("^[0-9a-f]+$", s)
      assert.equal(32, #s)
      assert.are_not.equal(s, crypto.admin_secret())
    end)

    it("constant_time_equal compares strings", function()
      assert.is_true(crypto.constant_time_equal("abc", "abc"))
      assert.is_false(crypto.constant_time_equal("abc", "abd"))
      assert.is_false(crypto.constant_time_equal("abc", "ab"))
      assert.is_true(crypto.constant_time_equal("", ""))
      assert.has_error(function() crypto.constant_time_equal("a", nil) end)
    end)
  end)

  describe("uuids", function()
    it("uuid4 is a lowercase RFC 4122 v4", function()
      local seen = {}
      for _ = 1, 20 do
        local u = crypto.uuid4()
        assert.matches("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$", u)
        assert.equal(u:lower(), u)
        assert.is_true(crypto.is_uuid(u))
        assert.is_nil(seen[u])
        seen[u] = true
      end
    end)

    it("is_uuid rejects non-uuids", function()
      assert.is_false(crypto.is_uuid("not-a-uuid"))
      assert.is_false(crypto.is_uuid(""))
      assert.is_false(crypto.is_uuid(42))
      assert.is_false(crypto.is_uuid("6ba7b810-9dad-11d1-80b4-00c04fd430c8 "))
      assert.is_true(crypto.is_uuid("6BA7B810-9DAD-11D1-80B4-00C04FD430C8"))
    end)
  end)

  describe("certificates", function()
    local ca, ca_key, srv, srv_key

    setup(function()
      ca, ca_key = assert(crypto.new_ca("testenv"))
      srv, srv_key = assert(crypto.new_server_cert(ca, ca_key, { hostnames = { "10.0.0.7", "api.example.com" } }))
      write(path("ca.pem"), ca)
      write(path("ca.key"), ca_key)
      write(path("srv.pem"), srv)
      write(path("srv.key"), srv_key)
    end)

    it("makes a CA that openssl describes as Juju's", function()
      assert.matches("^%-%-%-%-%-BEGIN CERTIFICATE%-%-%-%-%-\n", ca)
      assert.matches("^%-%-%-%-%-BEGIN PRIVATE KEY%-%-%-%-%-\n", ca_key)
      local text, ok = run("openssl x509 -noout -text -nameopt RFC2253 -in " .. sh_quote(path("ca.pem")))
      assert.is_true(ok, text)
      assert.truthy(text:find('Subject: CN=juju-generated CA for environment \\"testenv\\",O=juju', 1, true), text)
      assert.truthy(text:find("X509v3 Basic Constraints: critical\n%s*CA:TRUE"), text)
      assert.truthy(text:find("X509v3 Key Usage: critical\n%s*Digital Signature, Certificate Sign, CRL Sign"), text)
      assert.truthy(text:find("X509v3 Subject Key Identifier"), text)
      assert.truthy(text:find("ecdsa%-with%-SHA256"), text)
      assert.truthy(text:find("NIST CURVE: P%-256"), text)
    end)

    it("makes a server certificate that openssl verifies against the CA", function()
      local out = run("openssl verify -CAfile " .. sh_quote(path("ca.pem")) .. " " .. sh_quote(path("srv.pem")))
      assert.matches(": OK\n$", out)
      local text = run("openssl x509 -noout -text -nameopt RFC2253 -in " .. sh_quote(path("srv.pem")))
      assert.truthy(text:find("Subject: CN=*,O=juju", 1, true), text)
      assert.truthy(text:find("DNS:*, DNS:juju-apiserver, DNS:juju-mongodb, DNS:localhost, "
        .. "IP Address:10.0.0.7, DNS:api.example.com", 1, true), text)
      assert.truthy(text:find("TLS Web Server Authentication, TLS Web Client Authentication", 1, true), text)
      assert.truthy(text:find("Digital Signature, Key Agreement", 1, true), text)
      assert.truthy(text:find("X509v3 Authority Key Identifier", 1, true), text)
      -- the key belongs to the certificate
      local m1 = run("openssl x509 -noout -pubkey -in " .. sh_quote(path("srv.pem")))
      local m2 = run("openssl pkey -pubout -in " .. sh_quote(path("srv.key")))
      assert.equal(m1, m2)
    end)

    it("uses fresh random serials", function()
      local s1 = crypto.cert_info(ca).serial
      local s2 = crypto.cert_info(srv).serial
      assert.are_not.equal(s1, s2)
      local out = run("openssl x509 -noout -serial -in " .. sh_quote(path("srv.pem")))
      assert.equal(out:match("serial=(%x+)"):lower():gsub("^0+", ""), s2)
    end)

    it("cert_info describes a certificate", function()
      local info = assert(crypto.cert_info(srv))
      assert.equal("CN=*,O=juju", info.subject)
      assert.equal(crypto.cert_info(ca).subject, info.issuer)
      assert.is_false(info.is_ca)
      assert.is_true(crypto.cert_info(ca).is_ca)
      assert.equal("EC", info.key_type)
      assert.equal(256, info.key_bits)
      assert.same({ "*", "juju-apiserver", "juju-mongodb", "localhost", "10.0.0.7", "api.example.com" }, info.sans)
      local now = os.time()
      assert.is_true(math.abs(info.not_before - (now - 7 * 86400)) < 120)
      assert.is_true(info.not_after - now > 3650 * 86400 - 120)
      local fp = run("openssl x509 -noout -fingerprint -sha256 -in " .. sh_quote(path("srv.pem")))
      assert.equal(fp:match("=([%x:]+)"), info.fingerprint_sha256)
      local v, msg, code = crypto.cert_info("garbage")
      assert.is_nil(v)
      assert.is_string(msg)
      assert.equal("EINVAL", code)
    end)

    it("honours opts.key, opts.years and opts.now", function()
      local c, k = assert(crypto.new_ca("rsa-env", { key = "rsa2048", years = 2, now = 1700000000 }))
      local info = crypto.cert_info(c)
      assert.equal("RSA", info.key_type)
      assert.equal(2048, info.key_bits)
      assert.equal(1700000000 - 7 * 86400, info.not_before)
      -- 1700000000 is 2023-11-14T22:13:20Z; two calendar years later spans 2024's leap day
      assert.equal(1700000000 + 731 * 86400, info.not_after)
      assert.is_true(crypto.check_ca_pair(c, k))
      -- a CA valid today, to sign with
      c, k = assert(crypto.new_ca("rsa-env", { key = "rsa2048", years = 2 }))
      local s = assert(crypto.new_server_cert(c, k, { key = "rsa2048" }))
      write(path("rsa-ca.pem"), c)
      write(path("rsa-srv.pem"), s)
      local text = run("openssl x509 -noout -text -in " .. sh_quote(path("rsa-srv.pem")))
      assert.truthy(text:find("Digital Signature, Key Encipherment", 1, true), text)
      assert.truthy(text:find("sha256WithRSAEncryption", 1, true), text)
      local out = run("openssl verify -CAfile " .. sh_quote(path("rsa-ca.pem")) .. " " .. sh_quote(path("rsa-srv.pem")))
      assert.matches(": OK\n$", out)
    end)

    it("reports bad options", function()
      local v, msg, code = crypto.new_ca("x", { key = "dsa" })
      assert.is_nil(v)
      assert.matches("dsa", msg)
      assert.equal("EINVAL", code)
      v, msg, code = crypto.new_ca("x", { years = 0 })
      assert.is_nil(v)
      assert.matches("years", msg)
      assert.equal("EINVAL", code)
      v, msg, code = crypto.new_server_cert(ca, ca_key, { hostnames = { "bad host" } })
      assert.is_nil(v)
      assert.matches("bad host", msg)
      assert.equal("EINVAL", code)
      assert.has_error(function() crypto.new_ca("x", { years = "ten" }) end)
      assert.has_error(function() crypto.new_ca("x", { hostnames = "a" }) end)
      assert.has_error(function() crypto.new_server_cert(ca, ca_key, { hostnames = { 1 } }) end)
      assert.has_error(function() crypto.new_ca(nil) end)
      assert.has_error(function() crypto.new_ca("a\0b") end)
    end)

    it("check_ca_pair accepts the pair and refuses a mismatch", function()
      assert.is_true(crypto.check_ca_pair(ca, ca_key))
      local _, other_key = crypto.new_ca("other")
      local v, msg, code = crypto.check_ca_pair(ca, other_key)
      assert.is_nil(v)
      assert.matches("^bad CA certificate/key in configuration: ", msg)
      assert.matches("does not match", msg)
      assert.equal("EINVAL", code)
      v, msg, code = crypto.new_server_cert(ca, other_key)
      assert.is_nil(v)
      assert.matches("does not match", msg)
      assert.equal("EINVAL", code)
    end)

    it("refuses a CA that is not a CA, or two of them", function()
      local v, msg, code = crypto.new_server_cert(srv, srv_key)
      assert.is_nil(v)
      assert.equal("CA certificate is not a valid CA", msg)
      assert.equal("EINVAL", code)
      v, msg = crypto.check_ca_pair(srv, srv_key)
      assert.is_nil(v)
      assert.equal("bad CA certificate/key in configuration: CA certificate is not a valid CA", msg)
      v, msg, code = crypto.new_server_cert(ca .. ca, ca_key)
      assert.is_nil(v)
      assert.equal("more than one certificate for CA", msg)
      assert.equal("EINVAL", code)
      v, msg = crypto.check_ca_pair(ca, "")
      assert.is_nil(v)
      assert.matches("private key", msg)
    end)

    describe("a user-supplied RSA CA from openssl req", function()
      local user_ca, user_key

      setup(function()
        local out, ok = run("openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj '/O=me/CN=user CA'"
          .. " -keyout " .. sh_quote(path("user.key")) .. " -out " .. sh_quote(path("user.pem")))
        assert(ok, out)
        user_ca, user_key = read(path("user.pem")), read(path("user.key"))
      end)

      it("passes check_ca_pair as PKCS#8 and as PKCS#1", function()
        assert.matches("BEGIN PRIVATE KEY", user_key)
        assert.is_true(crypto.check_ca_pair(user_ca, user_key))
        local out, ok = run("openssl rsa -traditional -in " .. sh_quote(path("user.key"))
          .. " -out " .. sh_quote(path("user1.key")))
        assert.is_true(ok, out)
        local pkcs1 = read(path("user1.key"))
        assert.matches("BEGIN RSA PRIVATE KEY", pkcs1)
        assert.is_true(crypto.check_ca_pair(user_ca, pkcs1))
      end)

      it("signs a server certificate that openssl verifies", function()
        local s = assert(crypto.new_server_cert(user_ca, user_key, { hostnames = { "::1" } }))
        write(path("user-srv.pem"), s)
        local out = run("openssl verify -CAfile " .. sh_quote(path("user.pem")) .. " " .. sh_quote(path("user-srv.pem")))
        assert.matches(": OK\n$", out)
        local info = crypto.cert_info(s)
        assert.equal("CN=user CA,O=me", info.issuer)
        assert.equal("::1", info.sans[#info.sans])
      end)

      it("refuses a mismatched EC key", function()
        local out, ok = run("openssl ecparam -name prime256v1 -genkey -noout -out " .. sh_quote(path("ec.key")))
        assert.is_true(ok, out)
        local ec = read(path("ec.key"))
        assert.matches("BEGIN EC PRIVATE KEY", ec)
        local v, msg, code = crypto.check_ca_pair(user_ca, ec)
        assert.is_nil(v)
        assert.matches("does not match", msg)
        assert.equal("EINVAL", code)
      end)
    end)
  end)

  describe("ssh keys", function()
    it("ssh_keygen_ed25519 makes a key ssh-keygen reads back", function()
      local priv, pub = crypto.ssh_keygen_ed25519("juju-client-key")
      assert.matches("^%-%-%-%-%-BEGIN OPENSSH PRIVATE KEY%-%-%-%-%-\n", priv)
      assert.matches("\n%-%-%-%-%-END OPENSSH PRIVATE KEY%-%-%-%-%-\n$", priv)
      for line in priv:gmatch("[^\n]+") do assert.is_true(#line <= 70) end
      assert.matches("^ssh%-ed25519 [%w+/=]+ juju%-client%-key$", pub)
      local key = path("id_ed25519")
      write(key, priv)
      write(key .. ".pub", pub .. "\n")
      assert(os.execute("chmod 600 " .. sh_quote(key)))
      local out, ok = run("ssh-keygen -y -f " .. sh_quote(key))
      assert.is_true(ok, out)
      assert.equal(pub .. "\n", out)
      assert.equal(pub, crypto.ssh_public_from_private(priv))
    end)

    it("ssh_fingerprint agrees with ssh-keygen -l (sha256 and md5)", function()
      local _, pub = crypto.ssh_keygen_ed25519("fp test")
      local p = path("fp.pub")
      write(p, pub .. "\n")
      local out = run("ssh-keygen -l -E sha256 -f " .. sh_quote(p))
      assert.equal(out:match("^%d+ (SHA256:%S+)"), crypto.ssh_fingerprint(pub))
      out = run("ssh-keygen -l -E md5 -f " .. sh_quote(p))
      assert.equal(out:match("^%d+ MD5:(%S+)"), crypto.ssh_fingerprint_md5(pub))
    end)

    it("fingerprints and reads RSA and ECDSA keys made by ssh-keygen", function()
      for _, t in ipairs({ { "rsa", "-b 2048" }, { "ecdsa", "-b 256" } }) do
        local key = path("k_" .. t[1])
        local out, ok = run("ssh-keygen -q -N '' -C 'c " .. t[1] .. "' -t " .. t[1] .. " " .. t[2]
          .. " -f " .. sh_quote(key))
        assert.is_true(ok, out)
        local pub = read(key .. ".pub")
        local fp = run("ssh-keygen -l -E sha256 -f " .. sh_quote(key .. ".pub"))
        assert.equal(fp:match("^%d+ (SHA256:%S+)"), crypto.ssh_fingerprint(pub))
        local md5 = run("ssh-keygen -l -E md5 -f " .. sh_quote(key .. ".pub"))
        assert.equal(md5:match("^%d+ MD5:(%S+)"), crypto.ssh_fingerprint_md5(pub))
        -- OpenSSH format private key: public line with comment
        assert.equal((pub:gsub("\n$", "")), crypto.ssh_public_from_private(read(key)))
        local parsed = assert(crypto.ssh_parse_public(pub))
        assert.equal(pub:match("^(%S+)"), parsed.type)
        assert.equal("c " .. t[1], parsed.comment)
        assert.equal(crypto.unbase64(pub:match("^%S+ (%S+)")), parsed.blob)
      end
    end)

    it("ssh_public_from_private reads PEM RSA and EC keys like ssh-keygen -y", function()
      local out, ok = run("openssl genrsa -traditional -out " .. sh_quote(path("pem_rsa")) .. " 2048"
        .. " && openssl ecparam -name prime256v1 -genkey -noout -out " .. sh_quote(path("pem_ec"))
        .. " && chmod 600 " .. sh_quote(path("pem_rsa")) .. " " .. sh_quote(path("pem_ec")))
      assert.is_true(ok, out)
      for _, name in ipairs({ "pem_rsa", "pem_ec" }) do
        local want = run("ssh-keygen -y -f " .. sh_quote(path(name)))
        assert.equal((want:gsub("%s+$", "")), crypto.ssh_public_from_private(read(path(name))))
      end
      local v, msg, code = crypto.ssh_public_from_private("not a key")
      assert.is_nil(v)
      assert.is_string(msg)
      assert.equal("EINVAL", code)
    end)

    it("ssh_parse_public splits a line", function()
      local _, pub = crypto.ssh_keygen_ed25519("a comment with spaces")
      local k = assert(crypto.ssh_parse_public(pub .. "\n"))
      assert.equal("ssh-ed25519", k.type)
      assert.equal("a comment with spaces", k.comment)
      assert.equal(51, #k.blob)
      local _, nocomment = crypto.ssh_keygen_ed25519()
      assert.equal("", assert(crypto.ssh_parse_public(nocomment)).comment)
    end)

    it("rejects bad public keys with EINVAL", function()
      for _, bad in ipairs({ "", "ssh-ed25519", "ssh-ed25519 ***", "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAICihq6H84DPRJAZ4cF/hWTA2y9TS5I7UHv7SJM7bX0Ot" }) do
        for _, fn in ipairs({ crypto.ssh_fingerprint, crypto.ssh_fingerprint_md5, crypto.ssh_parse_public }) do
          local v, msg, code = fn(bad)
          assert.is_nil(v)
          assert.is_string(msg)
          assert.equal("EINVAL", code)
        end
      end
      assert.has_error(function() crypto.ssh_fingerprint(nil) end)
    end)

    it("refuses a comment with a newline", function()
      local v, _, code = crypto.ssh_keygen_ed25519("a\nb")
      assert.is_nil(v)
      assert.equal("EINVAL", code)
    end)
  end)

  it("survives many objects and a full collection", function()
    for _ = 1, 200 do
      local h = crypto.hasher("sha512")
      h:update("x")
      if math.random() < 0.5 then h:close() end
    end
    collectgarbage()
    assert.equal(3, count(crypto.hex("abc"), "%x%x"))
  end)
end)
