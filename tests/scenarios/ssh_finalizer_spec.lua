-- The SSH finalizer (juju.sshinit): the wait for an address and for SSH on
-- the virtual clock with a fake connection (Juju's waitSSH cases), and the
-- whole cloud path against a real sshd (root only): the host key generated
-- per bootstrap reaches the instance through the phase-1 user-data and is
-- the only key the finalizer accepts (W2); file:// tools travel by SFTP (W17).
local testing = require("juju.testing")
local context = require("juju.context")
local sshinit = require("juju.sshinit")
local fs = require("juju.fs")
local yaml = require("juju.yaml")
local ssh = require("juju.ssh")
local sshd = require("juju.testing.sshd")
local authkeys = require("juju.environs.authkeys")

-- A context on a virtual clock whose progress lines are collected.
local function fake_run()
  local lines = {}
  local clock = testing.virtual_clock()
  local ctx = context.new { env = { HOME = "/nonexistent" }, clock = clock,
    stderr = function(s) lines[#lines + 1] = s end, stdout = function() end }
  return { ctx = ctx }, lines, clock
end

local function fake_session(nonce_result)
  local s = { closed = false }
  function s:exec(_, opts)
    self.stdin = opts and opts.stdin
    if nonce_result then return nonce_result(self) end
    return { code = 0, stdout = "", stderr = "" }
  end
  function s:close() self.closed = true end
  return s
end

local function target(connect)
  return { user = "ubuntu", port = 22, identities = { "/dev/null/key" }, connect = connect }
end

describe("sshinit.wait_for_ssh (virtual clock)", function()
  it("times out without addresses, saying so, with a heartbeat on the way", function()
    local w, lines, clock = fake_run()
    local s, err, code = sshinit.wait_for_ssh(w, {
      target = target(function() error("must not connect") end),
      addresses = function() return {} end, timeout = 600, retry_delay = 5, addresses_delay = 10,
    })
    assert.is_nil(s)
    assert.are.equal("TIMEOUT", code)
    assert.are.equal("waited for 10m0s without getting any addresses", err)
    local out = table.concat(lines)
    assert.matches("^Waiting for address\n", out)
    assert.matches("Still waiting for SSH on an address %(30s of 10m0s; 0 attempts%)", out)
    assert.is_true(clock.monotonic() >= 600)
  end)

  it("re-reads addresses, tries every known one each round, and returns the first that answers", function()
    local w, lines = fake_run()
    local calls, tried = 0, {}
    local s, addr = sshinit.wait_for_ssh(w, {
      target = target(function(o)
        tried[#tried + 1] = o.host
        if o.host == "10.0.0.2" and #tried >= 5 then return fake_session() end
        return nil, "cannot connect to " .. o.host .. ":22: Connection refused", "SSH"
      end),
      addresses = function()
        calls = calls + 1
        if calls == 1 then return {} end
        if calls == 2 then return { "10.0.0.1" } end
        return { "10.0.0.1", "10.0.0.2" }
      end,
      timeout = 600, retry_delay = 5, addresses_delay = 10,
    })
    assert.is_table(s)
    assert.are.equal("10.0.0.2", addr)
    assert.are.same({ "10.0.0.1", "10.0.0.1", "10.0.0.1", "10.0.0.2", "10.0.0.1", "10.0.0.2" }, tried)
    local out = table.concat(lines)
    assert.are.equal(1, select(2, out:gsub("Attempting to connect to 10%.0%.0%.1:22\n", "")))
    assert.are.equal(1, select(2, out:gsub("Attempting to connect to 10%.0%.0%.2:22\n", "")))
  end)

  it("fails with the last error when nothing answers in time", function()
    local w = fake_run()
    local _, err, code = sshinit.wait_for_ssh(w, {
      target = target(function() return nil, "mock connection failure to 0.1.2.3", "SSH" end),
      addresses = function() return { "0.1.2.3" } end, timeout = 60, retry_delay = 5, addresses_delay = 10,
    })
    assert.are.equal("TIMEOUT", code)
    assert.are.equal("waited for 1m0s without being able to connect: mock connection failure to 0.1.2.3", err)
  end)

  it("gives up at once on a host key it must not accept", function()
    local w, _, clock = fake_run()
    local n = 0
    local _, err, code = sshinit.wait_for_ssh(w, {
      target = target(function()
        n = n + 1
        return nil, "HOST KEY MISMATCH for 10.0.0.1:22: ...", "SSH_HOSTKEY"
      end),
      addresses = function() return { "10.0.0.1" } end, timeout = 600,
    })
    assert.are.equal("SSH_HOSTKEY", code)
    assert.matches("HOST KEY MISMATCH", err)
    assert.are.equal(1, n)
    assert.are.equal(0, clock.monotonic())
  end)

  it("retries until the nonce is in place and closes the sessions it rejects", function()
    local w = fake_run()
    local sessions, n = {}, 0
    local s = sshinit.wait_for_ssh(w, {
      target = target(function()
        n = n + 1
        local sess = fake_session(function()
          if n < 3 then return { code = 1, stdout = "", stderr = "/var/lib/juju/nonce.txt does not exist\n" } end
          return { code = 0, stdout = "", stderr = "" }
        end)
        sessions[#sessions + 1] = sess
        return sess
      end),
      addresses = function() return { "10.0.0.1" } end, timeout = 600, retry_delay = 5,
      check = function(sess) return sshinit.check_nonce(sess, "/var/lib/juju", "user-admin:bootstrap:abc") end,
    })
    assert.are.equal(sessions[3], s)
    assert.is_true(sessions[1].closed and sessions[2].closed)
    assert.is_false(s.closed)
    -- The check runs on stdin and compares the whole file content.
    assert.matches("noncefile='/var/lib/juju/nonce.txt'", s.stdin)
    assert.matches("'user%-admin:bootstrap:abc'", s.stdin)
  end)

  it("reports a nonce mismatch as the last error", function()
    local w = fake_run()
    local _, err = sshinit.wait_for_ssh(w, {
      target = target(function()
        return fake_session(function()
          return { code = 1, stdout = "", stderr = "/var/lib/juju/nonce.txt contents do not match machine nonce\n" }
        end)
      end),
      addresses = function() return { "10.0.0.1" } end, timeout = 30, retry_delay = 5,
      check = function(sess) return sshinit.check_nonce(sess, "/var/lib/juju", "n") end,
    })
    assert.are.equal("waited for 30s without being able to connect: "
      .. "/var/lib/juju/nonce.txt contents do not match machine nonce", err)
  end)

  it("offers each identity in turn and names them all when every one is refused", function()
    local offered = {}
    local t = target(function(o)
      offered[#offered + 1] = o.private_key_file
      return nil, "authentication failed", "SSH_AUTH"
    end)
    t.identities = { "/k/one", "/k/two" }
    t.host = "h"
    local s, err, code = sshinit.connect(t)
    assert.is_nil(s)
    assert.are.equal("SSH_AUTH", code)
    assert.are.same({ "/k/one", "/k/two" }, offered)
    assert.matches("ubuntu@h:22 refused every key offered %(/k/one, /k/two%)", err)
  end)
end)

describe("sshinit helpers", function()
  it("parses bootstrap-host forms", function()
    assert.are.same({ "10.0.0.5" }, { sshinit.parse_host("10.0.0.5") })
    assert.are.same({ "host.example.com", 2222 }, { sshinit.parse_host("host.example.com:2222") })
    assert.are.same({ "::1", 22 }, { sshinit.parse_host("[::1]:22") })
    assert.are.same({ "fe80::1" }, { sshinit.parse_host("fe80::1") })
    assert.is_nil((sshinit.parse_host("host:99999")))
    assert.is_nil((sshinit.parse_host("bad host")))
    assert.is_nil((sshinit.parse_host("")))
    assert.are.equal("[::1]:2222", sshinit.hostport("::1", 2222))
  end)

  it("checks the nonce in the script's own exec, and returns the after command's output split off the script's", function()
    local run = fake_run()
    -- The host answers as the remote command would: the script's output,
    -- then the mark, the after command's output and its status.
    local function session(answer)
      local s = {}
      function s:exec(cmd, opts)
        self.cmd, self.stdin = cmd, opts.stdin
        local mark = cmd:match("juju%-after%-script%-%x+")
        local text, code = answer(self.stdin, mark)
        -- In small chunks, so the mark straddles two of them.
        for i = 1, #text, 7 do opts.on_stdout(text:sub(i, i + 6)) end
        return { code = code, stdout = "", stderr = "" }
      end
      return s
    end
    local opts = { user = "root", host = "10.0.0.9", port = 22, data_dir = "/var/lib/juju", nonce = "user-admin:n1",
      after = "echo state" }
    local s = session(function(stdin, mark)
      assert.matches("^noncefile='/var/lib/juju/nonce%.txt'\n", stdin)
      assert.is_truthy(stdin:find("'user-admin:n1'", 1, true))
      assert.is_truthy(stdin:find("the script\n", 1, true))
      assert.is_string(mark)
      return "line one\nline two\n" .. mark .. "\n{\"doc\": 1}\n0\n", 0
    end)
    local ok, after = sshinit.run_script(run, s, "the script\n", opts)
    assert.is_true(ok)
    assert.are.same({ code = 0, stdout = "{\"doc\": 1}", stderr = "" }, after)
    assert.is_truthy(s.cmd:find("echo state", 1, true))
    -- A nonce that does not match: named, code NONCE, the script never ran.
    s = session(function() return "/var/lib/juju/nonce.txt contents do not match machine nonce\n", 97 end)
    local nok, err, code = sshinit.run_script(run, s, "the script\n", opts)
    assert.is_nil(nok)
    assert.are.equal("NONCE", code)
    assert.matches("^root@10%.0%.0%.9:22: /var/lib/juju/nonce%.txt contents do not match machine nonce$", err)
    -- A failing script keeps its whole output tail (no mark ever came).
    s = session(function() return "boom at the end\n", 1 end)
    nok, err, code = sshinit.run_script(run, s, "the script\n", opts)
    assert.is_nil(nok)
    assert.are.equal("SCRIPT", code)
    assert.matches("last lines of its output:\nboom at the end", err)
  end)

  it("runs the script through sudo for other users, with fd 9 as the progress channel", function()
    local cmd = sshinit.root_command("ubuntu", "/var/lib/juju/bootstrap-script.pgid")
    assert.matches("^sudo %-n /bin/bash %-c ", cmd)
    assert.matches("exec 9>&2 2>&1", cmd)
    assert.matches("/bin/bash %-s", cmd)
    assert.matches("^/bin/bash %-c ", sshinit.root_command("root", "/d/p"))
  end)
end)

-- A provider without a finish of its own: the common bootstrap hooks the
-- SSH finalizer in; its instance never answers.
local NOFINISH = [[
local fs = require("juju.fs")
local storage = require("juju.storage")
local common = require("juju.provider_common")
local P = { name = "nofinish", api_version = 2, public_tools = false, default_state_store = "sqlite",
  config = { fields = { ["world-dir"] = { type = "string", required = true } } } }
function P.prepare_for_bootstrap(_, cfg) return cfg end
function P.open(ctx, cfg) return { ctx = ctx, cfg = cfg, dir = cfg["world-dir"] } end
function P.storage(env) return storage.open_dir(env.dir .. "/storage") end
function P.state_server_instances(env) return common.state_server_instances(P.storage(env)) end
function P.start_instance(env, params)
  assert(fs.mkdir_p(env.dir, "0700"))
  assert(fs.write_atomic(env.dir .. "/host_keys", params.host_keys.ed25519.public))
  return { id = "nf-0", addresses = { common.address("127.0.0.1", "public") }, ssh_port = 1,
    hardware = { arch = params.tools[1].arch } }
end
function P.release() return true end
function P.destroy(env) return fs.remove_tree(env.dir) end
return P
]]

describe("the common bootstrap without a finish", function()
  it("waits for SSH with the SSH finalizer, on the run's clock, and cleans up when it never answers", function()
    local s <close> = testing.new { files = { ["providers/nofinish.lua"] = NOFINISH } }
    assert(fs.write_atomic(s.home .. "/environments.yaml", yaml.encode({ default = "n", environments = { n = {
      type = "nofinish", ["world-dir"] = s.root .. "/world", ["bootstrap-timeout"] = 300 } } })))
    local t0 = s.clock.monotonic()
    local r = s:juju("--show-log", "bootstrap")
    assert.are.equal(1, r.code)
    assert.matches("Waiting for address\nAttempting to connect to 127%.0%.0%.1:1\n", r.stderr)
    assert.matches("Still waiting for SSH on 127%.0%.0%.1 %(30s of 5m0s", r.stderr)
    assert.matches("waited for 5m0s without being able to connect: .*127%.0%.0%.1:1", r.stderr)
    assert.matches('step "finalize"', r.stderr)
    assert.is_true(s.clock.monotonic() - t0 >= 300)
    assert.is_nil(s:jenv("n"))
    assert.is_false(fs.exists(s.root .. "/world"))
  end)
end)

-- A "cloud" whose instances are harness sshd hosts: start_instance does
-- what cloud-init would do with the phase-1 user-data (host key, ubuntu
-- user with sudo, nonce file) and gives no finish, so the SSH finalizer runs.
local PROVIDER = [[
local fs = require("juju.fs")
local yaml = require("juju.yaml")
local crypto = require("juju.crypto")
local shell = require("juju.shell")
local storage = require("juju.storage")
local common = require("juju.provider_common")
local cloudinit = require("juju.cloudinit")
local sshd = require("juju.testing.sshd")
local REG = require("sshcloud.registry")
local P = { name = "sshcloud", api_version = 2, public_tools = false, default_state_store = "sqlite",
  config = { fields = { ["world-dir"] = { type = "string", required = true },
    ["wrong-host-key"] = { type = "bool", default = false } } } }
function P.prepare_for_bootstrap(_, cfg) return cfg end
function P.open(ctx, cfg) return { ctx = ctx, cfg = cfg, dir = cfg["world-dir"] } end
function P.storage(env) return storage.open_dir(env.dir .. "/storage") end
function P.state_server_instances(env) return common.state_server_instances(P.storage(env)) end
function P.start_instance(env, params)
  local icfg = params.instance_config
  assert(fs.mkdir_p(env.dir, "0700"))
  local ud = params.userdata
  assert(fs.write_atomic(env.dir .. "/userdata", ud))
  local key = yaml.decode(ud).ssh_keys.ed25519_private
  if env.cfg["wrong-host-key"] then key = crypto.ssh_keygen_ed25519("impostor") end
  assert(fs.write_atomic(env.dir .. "/host_key", key, "0600"))
  local server, err = sshd.start { address_index = REG.index, host_key_types = { "ecdsa" },
    sshd_config = { "HostKey " .. env.dir .. "/host_key" }, authorized_keys = { REG.client_pub } }
  if not server then return nil, err end
  REG.server = server
  assert(server.add_user("ubuntu"))
  local r = server.run({ "sh", "-c", "printf 'ubuntu ALL=(ALL) NOPASSWD:ALL\\n' > /etc/sudoers.d/90-cloud"
    .. " && chmod 0440 /etc/sudoers.d/90-cloud && install -D -m 644 /dev/null /var/lib/juju/nonce.txt"
    .. " && printf '%s\\n' " .. shell.quote(icfg.nonce) .. " > /var/lib/juju/nonce.txt" })
  assert(r.code == 0, r.stderr)
  return { id = "cloud-0", addresses = { common.address(server.host, "public") }, ssh_port = server.port,
    hardware = { arch = params.tools[1].arch } }
end
local function stop()
  if REG.server then REG.server.stop() end
  REG.server = nil
  return true
end
function P.release() return stop() end
function P.destroy(env)
  stop()
  return fs.remove_tree(env.dir)
end
return P
]]

describe("the SSH finalizer on a cloud instance (real sshd)", function()
  local REG, s
  before_each(function()
    REG = { index = 61 }
    package.loaded["sshcloud.registry"] = REG
  end)
  after_each(function()
    if REG.server then REG.server.stop() end
    if s then s:close() end
    s = nil
    package.loaded["sshcloud.registry"] = nil
  end)

  local function cloud_scenario(extra)
    s = testing.new { files = { ["providers/sshcloud.lua"] = PROVIDER }, real_clock = true }
    local attrs = { type = "sshcloud", ["world-dir"] = s.root .. "/world", ["enable-os-refresh-update"] = false,
      ["enable-os-upgrade"] = false, ["enable-package-install"] = false, ["bootstrap-timeout"] = 60,
      ["bootstrap-retry-delay"] = 1 }
    for k, v in pairs(extra or {}) do attrs[k] = v end
    assert(fs.write_atomic(s.home .. "/environments.yaml",
      yaml.encode({ default = "c", environments = { c = attrs } })))
    local _, pub = assert(authkeys.ensure_client_key(s.home))
    REG.client_pub = pub
    return s
  end

  it("pins the generated host key, checks the nonce, uploads file:// tools by SFTP, runs the script", function()
    local ok, why = sshd.available()
    if not ok then
      pending("needs a harness sshd: " .. why)
      return
    end
    cloud_scenario()
    local r = s:juju("bootstrap")
    assert.are.equal(0, r.code, r.stderr)
    for _, line in ipairs({ "Launching instance", " - cloud-0", "Waiting for address",
      "Attempting to connect to " .. REG.server.host .. ":" .. REG.server.port,
      "Logging to /var/log/cloud-init-output.log on remote host", "Bootstrapping Juju machine agent",
      "Bootstrap agent installed" }) do
      assert.is_truthy(r.stderr:find(line, 1, true), "missing: " .. line .. "\n" .. r.stderr)
    end
    -- The key in the user-data was pinned for phase 2, then rotated (issue
    -- 14.14): the instance now presents the key the .jenv pins, and refuses
    -- to be the user-data's.
    local ud = yaml.decode(assert(fs.read_file(s.root .. "/world/userdata")))
    local pub = ud.ssh_keys.ed25519_public
    assert.is_truthy(r.stderr:find("Rotated machine 0's SSH host key", 1, true), r.stderr)
    local jenv = yaml.decode(assert(fs.read_file(s.home .. "/environments/c.jenv")))
    local new = jenv["bootstrap-config"]["bootstrap-host-key"]
    assert.is_string(new)
    local refused, _, code = ssh.connect(REG.server.connect_opts({ host_key = pub }))
    assert.is_nil(refused)
    assert.are.equal("SSH_HOSTKEY", code)
    local sess = assert(ssh.connect(REG.server.connect_opts({ host_key = new })))
    assert.are.equal("pinned", sess:host_key().verified)
    -- The tools came by SFTP into ubuntu's home and were removed after use;
    -- the script fetched them from there (W17: no base64 in it).
    local res = assert(sess:exec("ls -A /home/ubuntu; cat /var/lib/juju/tools/*/downloaded-tools.txt"))
    assert.is_nil(res.stdout:find("juju-tools-", 1, true), res.stdout)
    assert.matches('"url":"file://', res.stdout)
    sess:close()
    assert.are.equal(0, s:juju("destroy-environment", "-y", "c").code, s.last.stderr)
    assert.is_nil(REG.server)
  end)

  it("refuses an instance presenting another host key, at once, and cleans up", function()
    local ok, why = sshd.available()
    if not ok then
      pending("needs a harness sshd: " .. why)
      return
    end
    cloud_scenario({ ["wrong-host-key"] = true })
    local r = s:juju("--show-log", "bootstrap")
    assert.are.equal(1, r.code)
    assert.matches("HOST KEY MISMATCH", r.stderr)
    assert.matches('step "finalize"', r.stderr)
    assert.matches("Stopping instance", r.stderr)
    assert.is_nil(REG.server)
    assert.is_nil(s:jenv("c"))
    assert.is_false(fs.exists(s.root .. "/world"))
  end)
end)
