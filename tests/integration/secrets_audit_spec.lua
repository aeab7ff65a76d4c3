-- The secrets audit: bootstrap with --debug and search everything a secret
-- must never reach (stdout, stderr, logs, provider-state, user-data,
-- storage, the command lines of every process while the bootstrap runs,
-- read from /proc), then check the mode of every file that holds one.
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

local function run_audit(env_attrs, extra_secrets, prepare_scenario)
  local s = testing.new { environments = { audit = env_attrs }, default = "audit", real_clock = true,
    env = { JUJU_AGENT_HEARTBEAT = "1" } }
  if prepare_scenario then prepare_scenario(s) end
  local p = s:juju_process({ "bootstrap", "--debug" }, { spawn = true })
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
end)
