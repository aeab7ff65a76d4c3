-- The secrets audit: bootstrap with --debug and search everything a secret
-- must never reach (stdout, stderr, logs, provider-state, user-data,
-- storage, the command lines of every process while the bootstrap runs,
-- read from /proc), then check the mode of every file that holds one.
-- Emulated clouds are one entry each of CLOUDS (tests/clouds/<name>.lua):
-- their credentials also must never reach machine 0 (searched inside the
-- test host's own mount namespace).
local testing = require("juju.testing")
local fs = require("juju.fs")
local sys = require("juju.sys")
local crypto = require("juju.crypto")
local agentconf = require("juju.agentconf")

local ADMIN_SECRET = "audit-admin-" .. crypto.hex(crypto.random_bytes(8))
local PROVIDER_SECRET = "audit-provider-" .. crypto.hex(crypto.random_bytes(8))

-- Every command line on the machine, sampled until done() is true.
local function watch_cmdlines(done)
  local seen = {}
  repeat
    for _, pid in ipairs(fs.list("/proc") or {}) do
      if pid:match("^%d+$") then
        local cmd = fs.read_file("/proc/" .. pid .. "/cmdline")
        if cmd and cmd ~= "" then seen[cmd] = true end
      end
    end
    sys.sleep(0.002)
  until done()
  local out = {}
  for cmd in pairs(seen) do out[#out + 1] = cmd end
  return out
end

-- Regular files under dir (recursively), as absolute paths.
local function files_under(dir, out)
  out = out or {}
  for _, n in ipairs(fs.list(dir) or {}) do
    local p = dir .. "/" .. n
    local st = fs.lstat(p)
    if st and st.type == "dir" then files_under(p, out)
    elseif st and st.type == "file" then out[#out + 1] = p end
  end
  return out
end

-- What to search for: the secret itself, or for a PEM key a line from the
-- middle of its body (the first lines of OpenSSH keys are the same for
-- every key of a type).
local function needle_of(secret)
  local lines = {}
  for l in secret:gmatch("[^\n]+") do
    if not l:match("^%-%-%-%-%-") then lines[#lines + 1] = l end
  end
  if #lines > 1 then return lines[#lines // 2 + 1] end
  return secret
end

local function run_audit(env_attrs, extra_secrets, prepare_scenario, args)
  local s = testing.new { environments = { audit = env_attrs }, default = "audit", real_clock = true,
    env = { JUJU_AGENT_HEARTBEAT = "1" } }
  if prepare_scenario then prepare_scenario(s) end
  local p = s:juju_process(args or { "bootstrap", "--debug" }, { spawn = true })
  local finished = false
  local out, err
  local cmdlines = watch_cmdlines(function()
    local code = p:wait(0)
    if code ~= nil then finished = true end
    return finished
  end)
  out, err = p:read_all()
  local code = p:wait()
  assert.are.equal(0, code, err)
  local jenv = s:jenv("audit")
  local bc = jenv["bootstrap-config"]
  local secrets = {
    ["admin-secret"] = bc["admin-secret"],
    ["CA private key"] = bc["ca-private-key"],
    ["admin password hash"] = crypto.user_password_hash(bc["admin-secret"], crypto.COMPAT_SALT),
  }
  for k, v in pairs(extra_secrets(s, bc) or {}) do secrets[k] = v end
  assert.are.equal(ADMIN_SECRET, secrets["admin-secret"])
  local function search(where, text)
    for name, secret in pairs(secrets) do
      local needle = needle_of(secret)
      assert.is_nil(text:find(needle, 1, true), string.format("%s found in %s", name, where))
    end
  end
  search("stdout", out)
  search("stderr", err)
  for _, cmd in ipairs(cmdlines) do search("a command line", cmd) end
  return s, secrets, search, cmdlines
end

local function check_holders(search_roots, secrets, allowed_holders)
  local holders = {}
  for _, root in ipairs(search_roots) do
    for _, f in ipairs(files_under(root)) do
      local text = fs.read_file(f) or ""
      for name, secret in pairs(secrets) do
        local needle = needle_of(secret)
        if text:find(needle, 1, true) then
          local mode = fs.stat(f).mode
          assert.are.equal(0, mode & tonumber("077", 8), string.format("%s holds %s with mode %o", f, name, mode))
          holders[f:match("[^/]+$")] = true
        end
      end
    end
  end
  for name in pairs(holders) do
    -- environments.yaml is the user's own input (written 0600 by juju init).
    assert.is_truthy(name == "environments.yaml" or allowed_holders(name), "unexpected holder of a secret: " .. name)
  end
  return holders
end

describe("secrets audit", function()
  after_each(function() collectgarbage() end)

  it("dummy: no secret in output, provider-state, user-data, storage or command lines", function()
    local s, secrets, search, cmdlines = run_audit(
      { type = "dummy", ["admin-secret"] = ADMIN_SECRET, secret = PROVIDER_SECRET },
      function() return { ["provider secret"] = PROVIDER_SECRET } end)
    assert.is_true(#cmdlines > 0)
    local world = s:world("audit")
    search("provider-state", assert(fs.read_file(world .. "/storage/provider-state")))
    search("user-data", assert(s:userdata("audit")))
    for _, f in ipairs(files_under(world .. "/storage")) do search("storage " .. f, fs.read_file(f)) end
    check_holders({ s.home }, secrets, function(name)
      return name:match("%.jenv$") or name == "dummy-0" -- the phase-2 script (0600)
    end)
    assert.are.equal(0, s:juju("destroy-environment", "-y", "audit").code)
    s:close()
  end)

  it("local: no secret in output, logs, storage or command lines; holders are 0600", function()
    local s, secrets, search = run_audit({ type = "local", ["admin-secret"] = ADMIN_SECRET },
      function(sc, bc)
        local root = bc["root-dir"]
        local conf = agentconf.parse(assert(fs.read_file(root .. "/agents/machine-0/agent.conf")))
        return {
          ["agent password"] = conf.statepassword,
          ["mongo keyfile"] = assert(fs.read_file(root .. "/shared-secret")),
          ["server key"] = conf.stateserverkey,
          ["system identity"] = conf.systemidentity,
          _ = sc and nil,
        }
      end)
    local root = s:jenv("audit")["bootstrap-config"]["root-dir"]
    for _, f in ipairs(files_under(root .. "/log")) do search("log " .. f, fs.read_file(f)) end
    search("cloud-init-output.log", fs.read_file(root .. "/cloud-init-output.log") or "")
    search("provider-state", assert(fs.read_file(root .. "/storage/provider-state")))
    for _, f in ipairs(files_under(root .. "/storage")) do search("storage " .. f, fs.read_file(f)) end
    -- The running agent's command line, read now.
    for _, pid in ipairs(fs.list("/proc")) do
      local cmd = pid:match("^%d+$") and fs.read_file("/proc/" .. pid .. "/cmdline")
      if cmd and cmd:find(root, 1, true) then search("agent command line", cmd) end
    end
    local allowed = { ["audit.jenv"] = true, ["agent.conf"] = true, ["shared-secret"] = true,
      ["system-identity"] = true, ["state.db"] = true, ["state.db-wal"] = true, ["state.db-shm"] = true }
    check_holders({ s.home }, secrets, function(name) return allowed[name] end)
    assert.are.equal(0, s:juju("destroy-environment", "-y", "audit").code)
    s:close()
  end)

  it("manual over SSH: no secret in output, host logs, host storage or command lines", function()
    local sshd = require("juju.testing.sshd")
    local ok, why = sshd.available()
    if not ok then
      pending("needs a harness sshd: " .. tostring(why))
      return
    end
    local authkeys = require("juju.environs.authkeys")
    local server = assert(sshd.start { address_index = 41 })
    local attrs = {
      type = "manual", ["bootstrap-host"] = server.host .. ":" .. server.port, ["bootstrap-user"] = "root",
      ["bootstrap-host-key"] = server.host_key_pub, ["state-store"] = "sqlite", ["admin-secret"] = ADMIN_SECRET,
      ["enable-os-refresh-update"] = false, ["enable-os-upgrade"] = false, ["enable-package-install"] = false,
    }
    local function on_host(cmd)
      local r = assert(server.run({ "sh", "-c", cmd }))
      return r.stdout, r.code
    end
    local okrun, err = pcall(function()
      local s, secrets, search = run_audit(attrs, function()
        local conf = agentconf.parse(on_host("cat /var/lib/juju/agents/machine-0/agent.conf"))
        return {
          ["agent password"] = conf.statepassword,
          ["mongo keyfile"] = on_host("cat /var/lib/juju/shared-secret"),
          ["server key"] = conf.stateserverkey,
          ["system identity"] = conf.systemidentity,
        }
      end, function(sc)
        local _, pub = assert(authkeys.ensure_client_key(sc.home))
        assert(server.authorize(pub))
      end)
      -- Logs and storage on the host.
      search("host logs", on_host("cat /var/log/juju/* 2>/dev/null; true"))
      search("host storage", on_host("find /var/lib/juju/storage -type f -exec cat {} + 2>/dev/null; true"))
      -- Every file on the host holding a secret is 0600 (or stricter).
      for name, secret in pairs(secrets) do
        local listing = on_host(string.format(
          "grep -rlF -e %q /var/lib/juju /var/log/juju /home /etc 2>/dev/null | xargs -r stat -c '%%a %%n'",
          needle_of(secret)))
        for mode, file in listing:gmatch("(%d+) ([^\n]+)") do
          assert.is_truthy(mode == "600" or mode == "400", string.format("%s holds %s with mode %s", file, name, mode))
        end
        if name == "agent password" then
          assert.matches("600 /var/lib/juju/agents/machine%-0/agent%.conf", listing)
        end
      end
      check_holders({ s.home }, secrets, function(n) return n == "audit.jenv" end)
      assert.are.equal(0, s:juju("destroy-environment", "-y", "audit").code, s.last.stderr)
      s:close()
    end)
    server.stop()
    assert(okrun, err)
  end)

  -- Emulated clouds: one entry each (module = tests/clouds/<name>.lua;
  -- address_base/host_slots: the spec's test-host addresses).
  local CLOUDS = {
    { module = "clouds.ec2", address_base = 250, host_slots = 4 },
    { module = "clouds.openstack", address_base = 110, host_slots = 4 },
    -- secrets: maas-oauth's token secret; joyent: every line of the
    -- account's private key (private-key-path's file) and its key id
    { module = "clouds.maas", address_base = 72, host_slots = 3 }, -- server .72, hosts .73-.75
    { module = "clouds.joyent", address_base = 76, host_slots = 3 }, -- fakes .76, hosts .77-.79
    -- azure: every line of the management certificate's private key, the storage account key
    { module = "clouds.azure", address_base = 24, host_slots = 3 }, -- servers .24, hosts .25-.27 (.10-.20: boilerplate_spec)
  }
  -- Files in the test host (pid's mount namespace) under dirs holding any
  -- of needles; the needles go through stdin, never a command line.
  local function host_grep(pid, needles, dirs)
    local argv = { "nsenter", "--target", tostring(pid), "--mount", "--root", "--wd", "--", "grep", "-rlF", "-f", "/dev/stdin" }
    for _, d in ipairs(dirs) do argv[#argv + 1] = d end
    local r = assert(sys.run(argv, { stdin = table.concat(needles, "\n") .. "\n", timeout = 120 }))
    assert.is_true(r.code == 0 or r.code == 1, "grep in the host failed: " .. r.stderr)
    local out = {}
    for f in r.stdout:gmatch("[^\n]+") do out[#out + 1] = f end
    return out
  end
  for _, entry in ipairs(CLOUDS) do
    local cloud_mod = require(entry.module)
    it(cloud_mod.name .. ": no secret in output, logs, user-data, storage, provider-state, command lines"
      .. " or on machine 0", function()
      local c = cloud_mod.start { address_base = entry.address_base, host_slots = entry.host_slots,
        cloud_init = "emulated" }
      finally(function() c:stop() end)
      c:hosts(true)
      local attrs = c:environment { ["admin-secret"] = ADMIN_SECRET }
      local s, secrets, search = run_audit(attrs, function() return c.secrets end, function(sc)
        local kg = sys.run({ "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", sc.root .. "/user/.ssh/id_ed25519" }, {})
        assert.are.equal(0, kg.code, kg.stderr)
      end, { "bootstrap", "--debug", "--upload-tools" })
      -- user-data, storage objects (provider-state among them), as the emulators hold them
      local machines = c:machines()
      assert.are.equal(1, #machines)
      search("user-data", machines[1].user_data)
      local stored, state_seen = c:stored_files(), false
      for _, f in ipairs(stored) do
        search("storage " .. f, fs.read_file(f) or "")
        state_seen = state_seen or f:find("provider%-state") ~= nil
      end
      assert.is_true(state_seen, "no provider-state among the stored objects")
      -- machine 0: the cloud's credentials never reach it (its agent files, logs, cloud-init's copies)
      local dirs = { "/var/lib/juju", "/var/log", "/var/lib/cloud", "/home", "/root", "/etc", "/tmp", "/run" }
      local probe = host_grep(machines[1].pid, { "machine-0" }, { "/var/lib/juju/agents" })
      assert.is_true(#probe > 0, "machine 0's agent files not found in the host: the search is blind")
      local cloud_secrets = {}
      for _, v in pairs(c.secrets) do cloud_secrets[#cloud_secrets + 1] = needle_of(v) end
      assert.are.same({}, host_grep(machines[1].pid, cloud_secrets, dirs))
      -- issue 14.14: the host key the user-data carried is retired: no copy
      -- of its private half is left on machine 0, and the .jenv pins the
      -- key machine 0 made (its public half; neither private half is there)
      local ud = machines[1].user_data
      if ud:sub(1, 2) == "\31\139" then ud = assert(require("juju.gzip").gunzip(ud)) end
      local keys = assert(require("juju.yaml").decode((ud:gsub("^#cloud%-config\n", "")))).ssh_keys
      local lines = {}
      for l in keys.ed25519_private:gmatch("[^\n]+") do if not l:find("-", 1, true) then lines[#lines + 1] = l end end
      assert.are.same({}, host_grep(machines[1].pid, { assert(lines[3]) }, dirs))
      local jenv = assert(fs.read_file(s.home .. "/environments/audit.jenv"))
      assert.is_nil(jenv:find(lines[3], 1, true))
      assert.is_nil(jenv:find("OPENSSH PRIVATE KEY", 1, true))
      local pinned = assert(require("juju.yaml").decode(jenv))["bootstrap-config"]["bootstrap-host-key"]
      assert.is_string(pinned)
      assert.are_not.equal(keys.ed25519_public:match("^%S+ (%S+)"), pinned:match("^%S+ (%S+)"))
      check_holders({ s.home }, secrets, function(n) return n == "audit.jenv" end)
      local d = s:juju_process({ "destroy-environment", "-y", "audit" }, { timeout = 300 })
      assert.are.equal(0, d.code, d.stderr)
      search("destroy-environment output", d.stdout .. d.stderr)
      assert.are.same({}, c:leftovers())
      s:close()
    end)
  end
end)
