-- fresh_host_spec.lua (#integration): the manual provider end to end on a
-- host whose root is a minimal Debian 12 (scripts/fresh-root.sh: mmdebstrap
-- minbase + openssh-server + sudo, none of the build's libraries; a
-- copy-on-write overlay per test, juju.testing.sshd's fresh mode).
-- Bootstrap with the sqlite store, `juju status` shows machine 0 started,
-- destroy-environment leaves the root as it was (the overlay's upper layer
-- holds no change).
local testing = require("juju.testing")
local sshd = require("juju.testing.sshd")
local fs = require("juju.fs")
local sys = require("juju.sys")
local yaml = require("juju.yaml")
local authkeys = require("juju.environs.authkeys")
local helpers = require("helpers")

local function manual_attrs(server)
  return {
    type = "manual", ["bootstrap-host"] = server.host .. ":" .. server.port, ["bootstrap-user"] = "root",
    ["bootstrap-host-key"] = server.host_key_pub, ["state-store"] = "sqlite",
    ["enable-os-refresh-update"] = false, ["enable-os-upgrade"] = false, ["enable-package-install"] = false,
    ["bootstrap-timeout"] = 120, ["bootstrap-retry-delay"] = 1,
  }
end

-- Written by useradd and userdel (shadow's backups), not by the engine.
local SHADOW_BACKUPS = {
  ["/etc/passwd-"] = true, ["/etc/group-"] = true, ["/etc/shadow-"] = true, ["/etc/gshadow-"] = true,
  ["/etc/subuid-"] = true, ["/etc/subgid-"] = true,
}

local function wait_for(fn, seconds)
  local deadline = sys.monotonic() + seconds
  while sys.monotonic() < deadline do
    if fn() then return true end
    sys.sleep(0.1)
  end
  return false
end

-- Processes in the host's namespace other than its sshd.
local function host_processes(server)
  local out = {}
  for _, pid in ipairs(server.pids()) do
    local cmd = fs.read_file("/proc/" .. pid .. "/cmdline")
    if cmd and pid ~= server.pid then
      cmd = cmd:gsub("%z", " ")
      if not cmd:match("^sshd") and not cmd:match("^/usr/sbin/sshd") then out[#out + 1] = cmd end
    end
  end
  return out
end

describe("manual provider on a fresh Debian 12 host #integration", function()
  local server, s
  after_each(function()
    if s then
      s:juju("destroy-environment", "-y", "--force", "man")
      s:close()
    end
    if server then server.stop() end
    s, server = nil, nil
    helpers.cleanup()
  end)

  it("bootstraps it, shows machine 0 started, and destroy leaves the root as it was", function()
    server = assert(sshd.start { address_index = 63, fresh = true })
    -- Fresh indeed: none of the engine's libraries on the host.
    local r = assert(server.run({ "/bin/sh", "-c", "ls /usr/lib/*/liblua5.4.so.0 /usr/lib/*/libsqlite3.so.0" }))
    assert.are_not.equal(0, r.code, r.stdout)
    assert.are.same({}, assert(server.root_changes()))

    s = testing.new { environments = { man = manual_attrs(server) }, default = "man", real_clock = true,
      env = { JUJU_AGENT_HEARTBEAT = "1" } }
    assert(fs.copy_file(server.user_key.private, s.root .. "/user/.ssh/id_ed25519", "0600"))
    local _, pub = assert(authkeys.ensure_client_key(s.home))
    assert(server.authorize(pub))

    r = s:juju("bootstrap")
    assert.are.equal(0, r.code, r.stderr)
    assert.is_truthy(r.stderr:find("Bootstrap complete", 1, true), r.stderr)
    -- The agent runs from the tools unpacked on the host, with their own libraries.
    local code_out = assert(server.run({ "/bin/sh", "-c",
      "ls /var/lib/juju/tools/machine-0/lib/liblua5.4.so.0 && /var/lib/juju/tools/machine-0/jujud version" }))
    assert.are.equal(0, code_out.code, code_out.stdout .. code_out.stderr)
    assert.matches("%-bookworm%-", code_out.stdout)

    r = s:juju("status", "-e", "man")
    assert.are.equal(0, r.code, r.stderr)
    local doc = yaml.decode(r.stdout)
    local m = doc.machines["0"]
    assert.are.equal("started", m["agent-state"])
    assert.are.equal("bookworm", m.series)
    assert.are.equal("manual:" .. server.host, m["instance-id"])

    r = s:juju("destroy-environment", "-y", "man")
    assert.are.equal(0, r.code, r.stderr)
    assert.is_true(wait_for(function() return #host_processes(server) == 0 end, 10),
      table.concat(host_processes(server), "\n"))
    -- The root as it was: no file created, changed or removed, except the
    -- backups useradd/userdel themselves keep of the account files (the
    -- account files are back to their old bytes).
    local left = {}
    for _, c in ipairs(assert(server.root_changes())) do
      if not SHADOW_BACKUPS[c:match("^(%S+)")] then left[#left + 1] = c end
    end
    assert.are.same({}, left)
  end)
end)
