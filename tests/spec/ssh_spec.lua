-- ssh_spec.lua: juju.ssh. The known_hosts format and the host-key policy are
-- checked on their own; everything else runs against a real OpenSSH server
-- from juju.testing.sshd (root only: mount namespaces), tagged #integration.
local ssh = require("juju.ssh")
local fs = require("juju.fs")
local sys = require("juju.sys")
local crypto = require("juju.crypto")
local sshd = require("juju.testing.sshd")

local made = {}
local function tmpdir()
  local d = assert(fs.mkdtemp("/tmp/juju-ssh-spec-"))
  made[#made + 1] = d
  return d
end

local function cleanup()
  for _, d in ipairs(made) do fs.remove_tree(d) end
  made = {}
end

local function new_key(comment)
  local pem, pub = assert(crypto.ssh_keygen_ed25519(comment or "spec"))
  return pub, pem
end

local function fp(line) return assert(crypto.ssh_fingerprint(line)) end

local function mode_of(path) return assert(fs.stat(path)).mode & tonumber("777", 8) end

-- A deterministic pseudo-random payload of n bytes (not a repeating short
-- pattern, so a lost or duplicated chunk changes the digest).
local function payload(n)
  local parts, block = {}, {}
  local x = 12345
  for i = 1, 4096 do
    x = (x * 1103515245 + 12345) % 2147483648
    block[i] = string.char(x % 256)
  end
  block = table.concat(block)
  local i = 0
  while i * #block < n do
    i = i + 1
    parts[i] = block:sub(1 + i % 7) .. string.char(i % 256, (i >> 8) % 256)
  end
  return table.concat(parts):sub(1, n)
end

describe("juju.ssh known_hosts", function()
  after_each(function()
    cleanup()
    collectgarbage()
  end)

  local k1, k2 = new_key("one"), new_key("two")

  it("matches plain, wildcard and negated patterns, host case-insensitively", function()
    local text = table.concat({
      "# comment",
      "",
      "web1.example.com,10.0.0.1 " .. k1,
      "*.example.com,!bad.example.com " .. k2 .. " a comment",
      "[10.0.0.1]:2222 " .. k2,
    }, "\n")
    local e = assert(ssh.known_hosts_parse(text, "WEB1.example.com"))
    assert.are.equal(2, #e)
    assert.are.equal(3, e[1].lineno)
    assert.are.equal(k1:match("^(%S+ %S+)"), e[1].key)
    assert.are.equal(4, e[2].lineno)
    assert.are.equal(0, #assert(ssh.known_hosts_parse(text, "bad.example.com")))
    local p = assert(ssh.known_hosts_parse(text, "10.0.0.1", 2222))
    assert.are.equal(1, #p)
    assert.are.equal(5, p[1].lineno)
    assert.are.equal("[10.0.0.1]:2222 " .. k2, p[1].line)
    assert.are.equal(1, #assert(ssh.known_hosts_parse(text, "10.0.0.1", 22)))
    assert.are.equal(3, #assert(ssh.known_hosts_parse(text)))
  end)

  it("matches hashed names and reads markers", function()
    -- |1|salt|HMAC-SHA1(salt, name), as ssh-keygen -H writes it.
    local dir = tmpdir()
    local f = dir .. "/kh"
    assert(fs.write_atomic(f, "[h.example]:2200 " .. k1 .. "\n@revoked old.example " .. k2 .. "\n"))
    local r = sys.run({ "ssh-keygen", "-H", "-f", f }, { timeout = 20 })
    assert.are.equal(0, r.code, r.stderr)
    local text = assert(fs.read_file(f))
    assert.truthy(text:find("|1|", 1, true))
    assert.are.equal(1, #assert(ssh.known_hosts_lookup(f, "h.example", 2200)))
    assert.are.equal(0, #assert(ssh.known_hosts_lookup(f, "h.example", 22)))
    local rev = assert(ssh.known_hosts_parse("@revoked old.example " .. k2 .. "\n", "old.example"))
    assert.are.equal("revoked", rev[1].marker)
  end)

  it("names the file and line of a malformed entry", function()
    local dir = tmpdir()
    local f = dir .. "/known_hosts"
    assert(fs.write_atomic(f, "a " .. k1 .. "\nb ssh-ed25519\n"))
    local v, msg, code = ssh.known_hosts_lookup(f, "a")
    assert.is_nil(v)
    assert.are.equal("CORRUPT", code)
    assert.truthy(msg:find(f .. ":2:", 1, true), msg)
    v, msg, code = ssh.known_hosts_parse("x ssh-ed25519 AAAA\n", "x", 22, "kh")
    assert.is_nil(v)
    assert.are.equal("CORRUPT", code)
    assert.truthy(msg:find("kh:1:", 1, true), msg)
    v, msg = ssh.known_hosts_parse("@nope x " .. k1 .. "\n")
    assert.is_nil(v)
    assert.truthy(msg:find("unknown marker", 1, true), msg)
  end)

  it("treats a missing file as empty and adds entries 0600 in a 0700 directory", function()
    local dir = tmpdir()
    local f = dir .. "/env/ssh/known_hosts"
    assert.are.same({}, assert(ssh.known_hosts_lookup(f, "10.1.1.1")))
    assert.is_true(ssh.known_hosts_add(f, "10.1.1.1", 22, k1))
    assert.is_true(ssh.known_hosts_add(f, "10.1.1.1", 2222, k2))
    assert.are.equal(tonumber("600", 8), mode_of(f))
    assert.are.equal(tonumber("700", 8), mode_of(dir .. "/env/ssh"))
    local text = assert(fs.read_file(f))
    assert.are.equal("10.1.1.1 " .. k1:match("^(%S+ %S+)") .. "\n[10.1.1.1]:2222 "
      .. k2:match("^(%S+ %S+)") .. "\n", text)
    assert.are.equal(1, #assert(ssh.known_hosts_lookup(f, "10.1.1.1", 2222)))
    local _, msg, code = ssh.known_hosts_add(f, "bad host", 22, k1)
    assert.are.equal("EINVAL", code)
    assert.truthy(msg:find("invalid host", 1, true))
    _, _, code = ssh.known_hosts_add(f, "h", 22, "ssh-ed25519 nonsense")
    assert.are.equal("EINVAL", code)
  end)

  it("adds on a fresh line when the file lacks a final newline", function()
    local f = tmpdir() .. "/kh"
    assert(fs.write_atomic(f, "a " .. k1))
    assert(ssh.known_hosts_add(f, "b", 22, k2))
    assert.are.equal(1, #assert(ssh.known_hosts_lookup(f, "b")))
    assert.are.equal(1, #assert(ssh.known_hosts_lookup(f, "a")))
  end)
end)

describe("juju.ssh host key policy", function()
  after_each(function()
    cleanup()
    collectgarbage()
  end)

  local presented, other = new_key("server"), new_key("impostor")

  it("accepts a matching pin and refuses another key showing both fingerprints", function()
    assert.are.equal("pinned", ssh.check_host_key { host = "h", key = presented, host_key = presented })
    local v, msg, code = ssh.check_host_key { host = "h", port = 2222, key = presented, host_key = other }
    assert.is_nil(v)
    assert.are.equal("SSH_HOSTKEY", code)
    assert.truthy(msg:find("h:2222", 1, true), msg)
    assert.truthy(msg:find(fp(presented), 1, true), msg)
    assert.truthy(msg:find(fp(other), 1, true), msg)
  end)

  it("checks the pin first, whatever known_hosts says", function()
    local f = tmpdir() .. "/kh"
    assert(ssh.known_hosts_add(f, "h", 22, other))
    assert.are.equal("pinned", ssh.check_host_key { host = "h", key = presented, host_key = presented,
      known_hosts = f })
  end)

  it("refuses an unknown key with its fingerprint and how to trust it", function()
    local f = tmpdir() .. "/kh"
    local v, msg, code = ssh.check_host_key { host = "10.2.2.2", key = presented, known_hosts = f }
    assert.is_nil(v)
    assert.are.equal("SSH_HOSTKEY", code)
    assert.truthy(msg:find("10.2.2.2:22", 1, true), msg)
    assert.truthy(msg:find(fp(presented), 1, true), msg)
    assert.truthy(msg:find("trust_on_first_use", 1, true), msg)
    assert.is_false(fs.exists(f))
    -- Without any reference at all, nothing is trusted either.
    v, msg, code = ssh.check_host_key { host = "10.2.2.2", key = presented }
    assert.is_nil(v)
    assert.are.equal("SSH_HOSTKEY", code)
    assert.truthy(msg:find("no pinned key", 1, true), msg)
  end)

  it("records a key on first use and then knows it", function()
    local f = tmpdir() .. "/kh"
    assert.are.equal("added", ssh.check_host_key { host = "h", port = 2200, key = presented, known_hosts = f,
      trust_on_first_use = true })
    assert.are.equal("known_hosts", ssh.check_host_key { host = "h", port = 2200, key = presented,
      known_hosts = f })
    assert.are.equal(1, #assert(ssh.known_hosts_lookup(f, "h", 2200)))
  end)

  it("always refuses a changed key, naming both fingerprints and the line", function()
    local f = tmpdir() .. "/kh"
    assert(fs.write_atomic(f, "# first line\nh " .. other .. "\n"))
    for _, tofu in ipairs { false, true } do
      local v, msg, code = ssh.check_host_key { host = "h", key = presented, known_hosts = f,
        trust_on_first_use = tofu }
      assert.is_nil(v)
      assert.are.equal("SSH_HOSTKEY", code)
      assert.truthy(msg:find("CHANGED", 1, true), msg)
      assert.truthy(msg:find(fp(other), 1, true), msg)
      assert.truthy(msg:find(fp(presented), 1, true), msg)
      assert.truthy(msg:find(f .. " line 2", 1, true), msg)
    end
    assert.are.equal(1, #assert(ssh.known_hosts_lookup(f, "h")))
  end)

  it("refuses a key marked @revoked", function()
    local f = tmpdir() .. "/kh"
    assert(fs.write_atomic(f, "@revoked h " .. presented .. "\n"))
    local v, msg, code = ssh.check_host_key { host = "h", key = presented, known_hosts = f,
      trust_on_first_use = true }
    assert.is_nil(v)
    assert.are.equal("SSH_HOSTKEY", code)
    assert.truthy(msg:find("@revoked", 1, true), msg)
  end)

  it("raises on misuse", function()
    assert.has_error(function() ssh.check_host_key { host = "h" } end)
    assert.has_error(function() ssh.check_host_key { host = "h", key = presented, bogus = 1 } end)
    assert.has_error(function() ssh.connect { host = "h", user = "u" } end)
    assert.has_error(function() ssh.connect { host = "h", user = "u", private_key_file = "k", port = 0 } end)
    assert.has_error(function() ssh.connect { host = "h", user = "u", private_key_file = "k", colour = 1 } end)
    assert.has_error(function()
      ssh.connect { host = "h", user = "u", private_key_file = "k", trust_on_first_use = true }
    end)
  end)
end)

local available, why = sshd.available()

describe("juju.ssh against a real sshd #integration", function()
  if not available then
    pending("skipped: " .. why)
    return
  end

  local server, s

  setup(function()
    server = assert(sshd.start { address_index = 7 })
  end)

  teardown(function()
    if server then server.stop() end
  end)

  before_each(function()
    s = assert(ssh.connect(server.connect_opts()))
  end)

  after_each(function()
    if s then s:close() end
    s = nil
    cleanup()
    collectgarbage()
  end)

  it("runs a command and returns its output and exit status", function()
    local r = assert(s:exec("echo out; echo err >&2; exit 7"))
    assert.are.equal(7, r.code)
    assert.are.equal("out\n", r.stdout)
    assert.are.equal("err\n", r.stderr)
    assert.is_nil(r.signal)
    r = assert(s:exec("true"))
    assert.are.equal(0, r.code)
    assert.are.equal("", r.stdout)
  end)

  it("reports a command killed by a signal", function()
    local r = assert(s:exec("kill -KILL $$"))
    assert.are.equal("KILL", r.signal)
    assert.are.equal(137, r.code)
  end)

  it("streams 10 MB of stdin through sha256sum", function()
    local data = payload(10 * 1024 * 1024)
    local r = assert(s:exec("sha256sum", { stdin = data }))
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal(crypto.sha256(data), r.stdout:match("^(%x+)"))
    -- and from a file, through cat, comparing byte for byte
    local f = tmpdir() .. "/in"
    assert(fs.write_atomic(f, data))
    r = assert(s:exec("cat", { stdin_file = f }))
    assert.are.equal(#data, #r.stdout)
    assert.is_true(r.stdout == data)
  end)

  it("stops feeding stdin when the command does not read it", function()
    local r = assert(s:exec("echo done", { stdin = payload(4 * 1024 * 1024), timeout = 20 }))
    assert.are.equal("done\n", r.stdout)
  end)

  it("hands output to callbacks, and collects nothing when asked", function()
    local out, err = {}, {}
    local r = assert(s:exec("for i in 1 2 3; do echo o$i; echo e$i >&2; sleep 0.05; done", {
      on_stdout = function(chunk) out[#out + 1] = chunk end,
      on_stderr = function(chunk) err[#err + 1] = chunk end,
      collect = false,
    }))
    assert.are.equal(0, r.code)
    assert.is_nil(r.stdout)
    assert.is_nil(r.stderr)
    assert.are.equal("o1\no2\no3\n", table.concat(out))
    assert.are.equal("e1\ne2\ne3\n", table.concat(err))
  end)

  it("re-raises an error from on_stdout and leaves the session usable and closable", function()
    local calls = 0
    local ok, e = pcall(s.exec, s, "echo first; sleep 0.2; echo second; sleep 5", {
      on_stdout = function() calls = calls + 1; error("boom from callback") end,
    })
    assert.is_false(ok)
    assert.truthy(tostring(e):find("boom from callback", 1, true))
    assert.are.equal(1, calls)
    local r = assert(s:exec("echo still here"))
    assert.are.equal("still here\n", r.stdout)
    assert.is_true(s:close())
    assert.is_true(s:close()) -- idempotent
    assert.has_error(function() s:exec("true") end)
  end)

  it("times out a command and the session survives", function()
    local t0 = sys.monotonic()
    local r, msg, code = s:exec("sleep 30", { timeout = 1 })
    local elapsed = sys.monotonic() - t0
    assert.is_nil(r)
    assert.are.equal("TIMEOUT", code)
    assert.truthy(msg:find(server.host .. ":" .. server.port, 1, true), msg)
    assert.is_true(elapsed < 4, "took " .. elapsed)
    assert.are.equal("ok\n", assert(s:exec("echo ok")).stdout)
  end)

  it("declares a frozen server dead after three unanswered keepalives", function()
    local k = assert(ssh.connect(server.connect_opts { keepalive = 1, timeout = 60 }))
    local frozen = {}
    local t0
    local r, msg, code = k:exec("echo started; sleep 30", {
      on_stdout = function()
        for _, pid in ipairs(server.pids()) do
          if pid ~= server.pid then
            sys.kill(pid, "STOP")
            frozen[#frozen + 1] = pid
          end
        end
        t0 = sys.monotonic()
      end,
    })
    local elapsed = sys.monotonic() - (t0 or 0)
    for _, pid in ipairs(frozen) do sys.kill(pid, "CONT") end
    k:close()
    assert.is_true(#frozen > 0)
    assert.is_nil(r)
    assert.are.equal("TIMEOUT", code)
    assert.truthy(msg:find("keepalive", 1, true), msg)
    assert.is_true(elapsed > 2.5 and elapsed < 8, "took " .. elapsed)
  end)

  it("gives up an upload to a frozen server after the session timeout, then closes", function()
    local k = assert(ssh.connect(server.connect_opts { timeout = 2 }))
    local f = tmpdir() .. "/big"
    assert(fs.write_atomic(f, payload(20 * 1024 * 1024)))
    local frozen = {}
    local ok, n, msg, code = pcall(k.upload, k, f, "/home/frozen-upload", {
      on_progress = function(done)
        if done > 0 and #frozen == 0 then
          for _, pid in ipairs(server.pids()) do
            if pid ~= server.pid then
              sys.kill(pid, "STOP")
              frozen[#frozen + 1] = pid
            end
          end
        end
      end,
    })
    for _, pid in ipairs(frozen) do sys.kill(pid, "CONT") end
    assert.is_true(ok)
    assert.is_nil(n)
    assert.are.equal("TIMEOUT", code)
    assert.truthy(msg:find("no progress for 2 s", 1, true), msg)
    local _, msg2, code2 = k:exec("true")
    assert.are.equal("SSH", code2)
    assert.truthy(msg2:find("connect again", 1, true), msg2)
    assert.is_true(k:close())
  end)

  it("uploads 50 MB by SFTP, checked on the server", function()
    local data = payload(50 * 1024 * 1024)
    local f = tmpdir() .. "/tools.tgz"
    assert(fs.write_atomic(f, data))
    local seen = {}
    local n = assert(s:upload(f, "/var/lib/juju/tools.tgz", {
      mode = "0640",
      on_progress = function(done, total) seen[#seen + 1] = { done, total } end,
    }))
    assert.are.equal(#data, n)
    assert.are.same({ #data, #data }, seen[#seen])
    assert.is_true(#seen > 10)
    local r = assert(s:exec("sha256sum /var/lib/juju/tools.tgz; stat -c %a /var/lib/juju/tools.tgz; ls /var/lib/juju"))
    local lines = {}
    for l in r.stdout:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.are.equal(crypto.sha256(data), lines[1]:match("^(%x+)"))
    assert.are.equal("640", lines[2])
    assert.are.equal("tools.tgz", lines[3]) -- no temp file left
    assert.is_nil(lines[4])
  end)

  it("replaces an existing remote file and downloads it back", function()
    local dir = tmpdir()
    local data = payload(3 * 1024 * 1024 + 17)
    assert(fs.write_atomic(dir .. "/a", "old content"))
    assert(fs.write_atomic(dir .. "/b", data))
    assert(s:upload(dir .. "/a", "/var/lib/juju/f"))
    assert(s:upload(dir .. "/b", "/var/lib/juju/f"))
    assert.are.equal(#data, assert(s:download("/var/lib/juju/f", dir .. "/back")))
    assert.is_true(assert(fs.read_file(dir .. "/back")) == data)
    assert.are.equal(tonumber("600", 8), mode_of(dir .. "/back"))
    local _, _, code = s:download("/var/lib/juju/missing", dir .. "/x")
    assert.are.equal("ENOENT", code)
    assert.is_false(fs.exists(dir .. "/x"))
    _, _, code = s:upload(dir .. "/missing", "/var/lib/juju/x")
    assert.are.equal("ENOENT", code)
  end)

  it("makes missing parent directories over SFTP with parents (mkdir -p, no command), only when asked", function()
    local f = tmpdir() .. "/obj"
    assert(fs.write_atomic(f, "object"))
    local _, _, code = s:upload(f, "/var/lib/juju/p/q/r/obj")
    assert.are.equal("ENOENT", code)
    assert.are.equal(6, assert(s:upload(f, "/var/lib/juju/p/q/r/obj", { mode = "0600", parents = "0700" })))
    -- An existing tree is fine too (a second object beside the first).
    assert.are.equal(6, assert(s:upload(f, "/var/lib/juju/p/q/other", { parents = "0700" })))
    local r = assert(s:exec("cat /var/lib/juju/p/q/r/obj; echo; stat -c '%a' /var/lib/juju/p /var/lib/juju/p/q/r "
      .. "/var/lib/juju/p/q/r/obj; ls -A /var/lib/juju/p/q"))
    assert.are.equal("object\n700\n700\n600\nother\nr\n", r.stdout)
  end)

  it("re-raises an error from on_progress and removes the remote temp file", function()
    local f = tmpdir() .. "/big"
    assert(fs.write_atomic(f, payload(3 * 1024 * 1024)))
    local ok, e = pcall(s.upload, s, f, "/var/lib/juju/aborted", {
      on_progress = function(done) if done > 0 then error("stop uploading") end end,
    })
    assert.is_false(ok)
    assert.truthy(tostring(e):find("stop uploading", 1, true))
    local r = assert(s:exec("ls -A /var/lib/juju | grep aborted || true"))
    assert.are.equal("", r.stdout)
  end)

  it("describes the verified host key", function()
    local hk = s:host_key()
    assert.are.equal("ssh-ed25519", hk.type)
    assert.are.equal(server.host_fingerprint, hk.fingerprint)
    assert.are.equal(server.host_key_pub:match("^(%S+ %S+)"), hk.line)
    assert.are.equal("pinned", hk.verified)
    assert.truthy(tostring(s):find("root@" .. server.host, 1, true))
  end)

  it("negotiates the pinned or known key type when the server offers several", function()
    local ecdsa = server.host_keys.ecdsa
    local e = assert(ssh.connect(server.connect_opts { host_key = ecdsa }))
    assert.are.equal("ecdsa-sha2-nistp256", e:host_key().type)
    assert.are.equal(fp(ecdsa), e:host_key().fingerprint)
    e:close()
    -- the same for a type recorded in known_hosts
    local kh = tmpdir() .. "/known_hosts"
    assert(ssh.known_hosts_add(kh, server.host, server.port, ecdsa))
    local k = assert(ssh.connect(server.connect_opts { host_key = false, known_hosts = kh }))
    assert.are.equal("ecdsa-sha2-nistp256", k:host_key().type)
    assert.are.equal("known_hosts", k:host_key().verified)
    k:close()
  end)

  it("refuses a wrong pinned key", function()
    local v, msg, code = ssh.connect(server.connect_opts { host_key = new_key("wrong") })
    assert.is_nil(v)
    assert.are.equal("SSH_HOSTKEY", code)
    assert.truthy(msg:find(server.host_fingerprint, 1, true), msg)
  end)

  it("refuses an unknown host key with its fingerprint, then trusts it on first use", function()
    local kh = tmpdir() .. "/env/known_hosts"
    local v, msg, code = ssh.connect(server.connect_opts { host_key = false, known_hosts = kh })
    assert.is_nil(v)
    assert.are.equal("SSH_HOSTKEY", code)
    assert.truthy(msg:find(server.host_fingerprint, 1, true), msg)
    assert.truthy(msg:find(server.host .. ":" .. server.port, 1, true), msg)
    assert.is_false(fs.exists(kh))

    local t = assert(ssh.connect(server.connect_opts { host_key = false, known_hosts = kh,
      trust_on_first_use = true }))
    assert.are.equal("added", t:host_key().verified)
    t:close()
    local entries = assert(ssh.known_hosts_lookup(kh, server.host, server.port))
    assert.are.equal(1, #entries)
    assert.are.equal(server.host_key_pub:match("^(%S+ %S+)"), entries[1].key)
    assert.are.equal(tonumber("600", 8), mode_of(kh))

    local k = assert(ssh.connect(server.connect_opts { host_key = false, known_hosts = kh }))
    assert.are.equal("known_hosts", k:host_key().verified)
    k:close()
  end)

  it("refuses a changed host key even with trust_on_first_use", function()
    local kh = tmpdir() .. "/known_hosts"
    local old = new_key("old machine")
    assert(ssh.known_hosts_add(kh, server.host, server.port, old))
    local v, msg, code = ssh.connect(server.connect_opts { host_key = false, known_hosts = kh,
      trust_on_first_use = true })
    assert.is_nil(v)
    assert.are.equal("SSH_HOSTKEY", code)
    assert.truthy(msg:find(fp(old), 1, true), msg)
    assert.truthy(msg:find(server.host_fingerprint, 1, true), msg)
    assert.truthy(msg:find("line 1", 1, true), msg)
  end)

  it("refuses a user key the server does not know", function()
    local dir = tmpdir()
    local _, pem = new_key("stranger")
    assert(fs.write_atomic(dir .. "/id", pem))
    local v, msg, code = ssh.connect(server.connect_opts { private_key_file = dir .. "/id" })
    assert.is_nil(v)
    assert.are.equal("SSH_AUTH", code)
    assert.truthy(msg:find("ssh-ed25519", 1, true), msg)
    assert.truthy(msg:find("root", 1, true), msg)
  end)

  it("explains why an RSA user key is refused", function()
    local dir = tmpdir()
    local r = sys.run({ "ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-m", "PEM", "-N", "", "-f",
      dir .. "/id_rsa" }, { timeout = 60 })
    assert.are.equal(0, r.code, r.stderr)
    assert(server.authorize((assert(fs.read_file(dir .. "/id_rsa.pub")):gsub("%s+$", ""))))
    local v, msg, code = ssh.connect(server.connect_opts { private_key_file = dir .. "/id_rsa" })
    assert.is_nil(v)
    assert.are.equal("SSH_AUTH", code)
    assert.truthy(msg:find("ssh-rsa", 1, true), msg)
    assert.truthy(msg:find("SHA-1", 1, true), msg)
  end)

  it("reports a missing private key file before connecting", function()
    local _, msg, code = ssh.connect(server.connect_opts { private_key_file = "/nonexistent/key" })
    assert.are.equal("ENOENT", code)
    assert.truthy(msg:find("/nonexistent/key", 1, true), msg)
  end)

  it("names host:port when nothing listens", function()
    local silent = assert(sshd.silent_server(server.host))
    local port = silent.port
    silent.stop() -- the port is now closed
    local v, msg, code = ssh.connect(server.connect_opts { port = port })
    assert.is_nil(v)
    assert.are.equal("SSH", code)
    assert.truthy(msg:find(server.host .. ":" .. port, 1, true), msg)
  end)

  it("times out on a server that never speaks", function()
    local silent = assert(sshd.silent_server(server.host))
    local t0 = sys.monotonic()
    local v, msg, code = ssh.connect(server.connect_opts { port = silent.port, connect_timeout = 1 })
    local elapsed = sys.monotonic() - t0
    silent.stop()
    assert.is_nil(v)
    assert.are.equal("TIMEOUT", code)
    assert.truthy(msg:find(server.host .. ":" .. silent.port, 1, true), msg)
    assert.is_true(elapsed >= 0.9 and elapsed < 3, "took " .. elapsed)
  end)

  it("works as a to-be-closed variable", function()
    local inner
    do
      local c <close> = assert(ssh.connect(server.connect_opts()))
      inner = c
      assert.are.equal("x\n", assert(c:exec("echo x")).stdout)
    end
    assert.truthy(tostring(inner):find("closed", 1, true))
    assert.has_error(function() inner:host_key() end)
  end)

  it("keeps the namespace private: files, users and /etc stay inside", function()
    local marker = "/var/lib/juju/isolation-" .. crypto.hex(crypto.random_bytes(6))
    assert.are.equal(0, assert(s:exec("echo secret > " .. marker)).code)
    assert.is_false(fs.exists(marker))
    local inside = assert(server.run({ "cat", marker }))
    assert.are.equal("secret\n", inside.stdout)
    assert.is_nil(assert(fs.read_file("/etc/passwd")):find("^jujuspec:") )
    assert(server.add_user("jujuspec"))
    assert.is_nil(assert(fs.read_file("/etc/passwd")):find("jujuspec", 1, true))
    assert.is_false(fs.exists("/home/jujuspec"))
    -- the new user logs in with the server's authorized keys
    local u = assert(ssh.connect(server.connect_opts { user = "jujuspec" }))
    local r = assert(u:exec("id -un; echo $HOME"))
    assert.are.equal("jujuspec\n/home/jujuspec\n", r.stdout)
    u:close()
  end)
end)
