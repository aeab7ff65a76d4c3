-- The local provider, for real: machine 0 is this machine. Bootstraps run
-- the production phase-2 script here, start a real machine agent, and
-- `juju status` reads its heartbeat from the SQLite state store.
local testing = require("juju.testing")
local fs = require("juju.fs")
local sys = require("juju.sys")
local yaml = require("juju.yaml")
local cloudinit = require("juju.cloudinit")

local function scenario()
  return testing.new { environments = { loc = { type = "local" } }, default = "loc", real_clock = true,
    env = { JUJU_AGENT_HEARTBEAT = "1" } }
end

local function status(s)
  local r = s:juju("status")
  assert.are.equal(0, r.code, r.stderr)
  return yaml.decode(r.stdout), r.stdout
end

local function wait_for(fn, seconds)
  local deadline = sys.monotonic() + seconds
  while sys.monotonic() < deadline do
    if fn() then return true end
    sys.sleep(0.1)
  end
  return false
end

-- Processes whose command line mentions dir (the agents of a scenario).
local function processes_under(dir)
  local out = {}
  for _, pid in ipairs(fs.list("/proc") or {}) do
    if pid:match("^%d+$") then
      local cmd = fs.read_file("/proc/" .. pid .. "/cmdline")
      if cmd and cmd:find(dir, 1, true) then out[#out + 1] = pid end
    end
  end
  return out
end

describe("local provider", function()
  local s
  after_each(function()
    if s then
      s:juju("destroy-environment", "-y", "--force", "loc")
      s:close()
    end
    s = nil
    collectgarbage()
  end)

  it("bootstraps, shows machine 0 started, destroys, twice in a row", function()
    s = scenario()
    for round = 1, 2 do
      local r = s:juju("bootstrap")
      assert.are.equal(0, r.code, r.stderr)
      assert.matches("Starting Juju machine agent %(juju%-agent%-[%w_-]+%-loc%)", r.stderr)
      assert.matches("Bootstrap complete", r.stderr)
      local doc = status(s)
      assert.are.equal("loc", doc.environment)
      local m = doc.machines["0"]
      assert.are.equal("started", m["agent-state"], "round " .. round)
      assert.are.equal("localhost", m["instance-id"])
      assert.are.equal(require("juju.version").host_series(sys), m.series)
      -- 1.25's local provider: dns-name localhost, no hardware line (issue 15).
      assert.is_nil(m.hardware)
      assert.are.equal("localhost", m["dns-name"])
      assert.are.equal("has-vote", m["state-server-member-status"])
      assert.are.same({ "127.0.0.1:17070" }, s:jenv("loc")["state-servers"])
      local root = s:jenv("loc")["bootstrap-config"]["root-dir"]
      assert.are.equal(tonumber("600", 8), fs.stat(root .. "/agents/machine-0/agent.conf").mode)
      assert.are.equal(tonumber("600", 8), fs.stat(root .. "/system-identity").mode)
      assert.are.equal(tonumber("600", 8), fs.stat(root .. "/shared-secret").mode)
      assert.are.equal(tonumber("600", 8), fs.stat(root .. "/state.db").mode)
      assert.are.equal(tonumber("600", 8), fs.stat(root .. "/cloud-init-output.log").mode)
      assert.is_false(fs.exists(root .. "/bootstrap-params"))
      r = s:juju("destroy-environment", "-y", "loc")
      assert.are.equal(0, r.code, r.stderr)
      assert.is_false(fs.exists(root))
      assert.are.same({}, processes_under(s.root))
    end
  end)

  it("needs no root: an unprivileged user bootstraps, sees status, destroys", function()
    if sys.geteuid() ~= 0 or not fs.exists("/usr/sbin/runuser") then
      pending("needs root to switch to the nobody user")
      return
    end
    local home = assert(fs.mkdtemp("/tmp/juju-nobody-"))
    assert(fs.chmod(home, "0755"))
    assert.are.equal(0, sys.run({ "chown", "nobody", home }, {}).code)
    local juju = require("helpers").juju_exe
    local script = table.concat({ juju .. " init", juju .. " bootstrap", juju .. " status",
      juju .. " destroy-environment -y local" }, " && ")
    local r = sys.run({ "/usr/sbin/runuser", "-u", "nobody", "--", "env", "HOME=" .. home,
      "JUJU_HOME=" .. home .. "/.juju", "PATH=" .. sys.getenv("PATH"), "ASAN_OPTIONS=detect_leaks=0",
      "JUJU_AGENT_HEARTBEAT=1", "bash", "-c", script }, { timeout = 120 })
    fs.remove_tree(home)
    assert.are.equal(0, r.code, r.stderr)
    assert.matches("agent%-state: started", r.stdout)
    assert.matches("Starting Juju machine agent %(juju%-agent%-nobody%-local%)", r.stderr)
    assert.are.same({}, processes_under(home))
  end)

  it("reports the agent down once it stops", function()
    s = scenario()
    assert.are.equal(0, s:juju("bootstrap").code, s.last.stderr)
    local root = s:jenv("loc")["bootstrap-config"]["root-dir"]
    local pid = tonumber(fs.read_file(root .. "/agents/machine-0/jujud.pid"))
    assert.is_number(pid)
    assert(sys.kill(pid, "TERM"))
    assert.is_true(wait_for(function() return status(s).machines["0"]["agent-state"] == "down" end, 10))
  end)

  it("reports the agent down when it dies without a word", function()
    s = scenario()
    assert.are.equal(0, s:juju("bootstrap").code, s.last.stderr)
    local root = s:jenv("loc")["bootstrap-config"]["root-dir"]
    local init = root .. "/init"
    local svc = fs.list(init)[1]
    local loop = tonumber(fs.read_file(init .. "/" .. svc .. "/" .. svc .. ".pid"))
    local pid = tonumber(fs.read_file(root .. "/agents/machine-0/jujud.pid"))
    sys.kill(-loop, "KILL")
    sys.kill(pid, "KILL")
    assert.is_true(wait_for(function() return status(s).machines["0"]["agent-state"] == "down" end, 10))
  end)

  -- Issue 14.1: destroy used to remove all of root-dir.
  it("refuses a root-dir that is /, HOME, JUJU_HOME, holds them or holds foreign files", function()
    local function try(root_dir, pattern)
      local t = testing.new { environments = { loc = { type = "local", ["root-dir"] = root_dir } }, default = "loc" }
      local yaml_before = fs.read_file(t.home .. "/environments.yaml")
      assert(fs.write_atomic(t.root .. "/user/keep.txt", "mine\n"))
      assert(fs.mkdir_p(t.root .. "/foreign", "0755"))
      assert(fs.write_atomic(t.root .. "/foreign/notes.txt", "mine\n"))
      local r = t:juju("bootstrap")
      assert.are.equal(1, r.code, root_dir)
      assert.matches(pattern, r.stderr)
      assert.matches("choose a new or empty directory of its own", r.stderr)
      assert.are.equal(yaml_before, fs.read_file(t.home .. "/environments.yaml"))
      assert.are.equal("mine\n", fs.read_file(t.root .. "/user/keep.txt"))
      assert.are.equal("mine\n", fs.read_file(t.root .. "/foreign/notes.txt"))
      assert.is_nil(t:jenv("loc"))
      t:close()
    end
    try("/", "is the root directory")
    try("~", "is your home directory")
    try("${root}/user/../user/./", "is your home directory")
    try("${root}/juju", "is JUJU_HOME")
    try("${root}//juju/sub/..", "is JUJU_HOME")
    try("${root}", "holds /tmp/juju%-scenario%-%w+/user %(your home directory%)")
    try("${root}/juju/..", "holds /tmp/juju%-scenario%-%w+/user")
    try("${root}/foreign", "already holds files this environment did not create %(notes%.txt%)")
    try("relative/dir", "is not an absolute path")
  end)

  it("destroys only what the environment created in root-dir", function()
    s = testing.new { environments = { loc = { type = "local", ["root-dir"] = "${root}/envroot" } }, default = "loc",
      real_clock = true, env = { JUJU_AGENT_HEARTBEAT = "1" } }
    local r = s:juju("bootstrap")
    assert.are.equal(0, r.code, r.stderr)
    local root = s.root .. "/envroot"
    assert.are.equal(tonumber("600", 8), fs.stat(root .. "/.juju-local").mode)
    -- The user keeps a file there after the bootstrap: it survives destroy.
    assert(fs.write_atomic(root .. "/my-notes.txt", "mine\n"))
    r = s:juju("destroy-environment", "-y", "loc")
    assert.are.equal(0, r.code, r.stderr)
    assert.are.same({ "my-notes.txt" }, fs.list(root))
    assert.are.same({}, processes_under(s.root))
  end)

  -- Issue 14.2: a stale pid file used to make destroy kill whatever ran there.
  it("never signals a process a stale pid file names", function()
    s = scenario()
    assert.are.equal(0, s:juju("bootstrap").code, s.last.stderr)
    local root = s:jenv("loc")["bootstrap-config"]["root-dir"]
    local init = root .. "/init"
    local svc = fs.list(init)[1]
    local loop_pid_file = init .. "/" .. svc .. "/" .. svc .. ".pid"
    local loop = tonumber(fs.read_file(loop_pid_file))
    local pid = tonumber(fs.read_file(root .. "/agents/machine-0/jujud.pid"))
    sys.kill(-loop, "KILL")
    sys.kill(pid, "KILL")
    assert.is_true(wait_for(function() return not sys.kill(pid, 0) end, 10))
    -- An unrelated process now has a pid the files name.
    local other = assert(sys.spawn({ "sleep", "60" }, { stdout = "null" }))
    assert(fs.write_atomic(loop_pid_file, tostring(other:pid()) .. "\n"))
    assert(fs.write_atomic(root .. "/agents/machine-0/jujud.pid", tostring(other:pid()) .. "\n"))
    local r = s:juju("--debug", "destroy-environment", "-y", "loc")
    assert.are.equal(0, r.code, r.stderr)
    assert.matches("is not this environment's process", r.stderr)
    assert.is_true(sys.kill(other:pid(), 0))
    other:kill("KILL")
    other:wait(10)
    other:close()
  end)

  -- Issue 14.11: the error pointed at a log its own cleanup deleted.
  it("keeps a failed bootstrap's log under JUJU_HOME, 0600, and points there", function()
    s = scenario()
    s.faults["step:finalize"] = { kind = "call", when = "before", fn = function()
      -- A file where the script makes a directory.
      local jenv = s:jenv("loc")
      local root = jenv and jenv["bootstrap-config"]["root-dir"] or (s.home .. "/loc")
      assert(fs.mkdir_p(root, "0755"))
      assert(fs.write_atomic(root .. "/locks", "not a directory\n"))
      return true
    end }
    local r = s:juju("bootstrap")
    assert.are.equal(1, r.code)
    local kept = s.home .. "/environments/loc.bootstrap-failure.log"
    assert.is_truthy(r.stderr:find("(full log: " .. kept .. ")", 1, true), r.stderr)
    assert.are.equal(tonumber("600", 8), fs.stat(kept).mode)
    assert.matches("locks", fs.read_file(kept))
    assert.is_nil(s:jenv("loc"))
  end)

  it("leaves nothing behind when the bootstrap is interrupted", function()
    s = scenario()
    assert.are.equal(0, s:juju("bootstrap").code, s.last.stderr)
    assert.are.equal(0, s:juju("destroy-environment", "-y", "loc").code)
    local before = s:snapshot()
    s:interrupt_step("finalize")
    local r = s:juju("bootstrap")
    assert.are.equal(1, r.code)
    assert.matches("interrupted", r.stderr)
    assert.are.same({}, testing.diff(before, s:snapshot()))
    assert.is_true(wait_for(function() return #processes_under(s.root) == 0 end, 5))
  end)

  it("runs the production script, different only in its variable lines", function()
    s = scenario()
    assert.are.equal(0, s:juju("bootstrap").code, s.last.stderr)
    local run = require("juju.bootstrap").last_run
    local icfg = run.icfg
    -- The production rendering of the same machine: Juju's paths and names.
    local prod = {}
    for k, v in pairs(icfg) do prod[k] = v end
    prod.data_dir, prod.log_dir = "/var/lib/juju", "/var/log/juju"
    prod.cloud_init_output_log, prod.service_name = "/var/log/cloud-init-output.log", "jujud-machine-0"
    prod.agent_start = nil
    local production = assert(cloudinit.script(prod, {}))
    local ran = run.script
    local function body(text)
      local out = {}
      for line in text:gmatch("[^\n]*") do
        -- Variable lines, and the agent.conf lines that carry their values.
        if not line:match("^[A-Z_]+=") and not line:match("^datadir: ") and not line:match("^logdir: ")
          and not line:match("^  AGENT_SERVICE_NAME: ") then
          out[#out + 1] = line
        end
      end
      return table.concat(out, "\n")
    end
    local variables = {}
    for line in ran:gmatch("[^\n]*") do
      local name = line:match("^([A-Z_]+)=")
      if name then variables[#variables + 1] = name end
    end
    -- The documented variables (docs/cloudinit.md) are the only difference.
    local doc = fs.read_file(require("helpers").source_dir .. "/docs/cloudinit.md")
    for _, name in ipairs(variables) do
      assert.is_truthy(doc:find(name, 1, true), name .. " is not documented in docs/cloudinit.md")
    end
    assert.are.equal(body(production), body(ran))
    assert.are_not.equal(production, ran)
  end)
end)
