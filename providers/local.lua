-- providers/local.lua: this machine is machine 0. No instance is launched
-- and no SSH is used: the production phase-2 script runs here, as the
-- invoking user, with every path under root-dir (default JUJU_HOME/<env>);
-- storage is root-dir/storage; the state store defaults to SQLite; the
-- agent runs under a restart loop (or systemd when asked and available).
-- Destroy stops what it started and removes root-dir.
local fs = require("juju.fs")
local sys = require("juju.sys")
local storage_mod = require("juju.storage")
local common = require("juju.provider_common")
local initialize = require("juju.state.initialize")
local state = require("juju.state")

local P = {
  name = "local",
  api_version = 2,
  description = "this machine is machine 0: no cloud, no SSH",
  default_state_store = "sqlite",
  public_tools = false,
  force_upload_tools = true,
  config = {
    fields = {
      ["root-dir"] = { type = "string", description = "where the environment's state, storage and logs live (default JUJU_HOME/<name>)" },
      ["storage-port"] = { type = "int", default = 8040, description = "kept for compatibility; storage is a directory" },
      ["network-bridge"] = { type = "string", default = "lxcbr0", description = "bridge for containers (unused at bootstrap)" },
      container = { type = "string", values = { "lxc", "kvm" }, default = "lxc", description = "container type (unused at bootstrap)" },
      namespace = { type = "string", description = "<user>-<env>, set at prepare" },
      ["bootstrap-ip"] = { type = "string", description = "set by the provider; must not be given" },
      ["agent-start"] = { type = "string", values = { "auto", "systemd", "supervised" }, default = "supervised",
        description = "how the machine agent runs: a restart loop as the invoking user (default), or systemd" },
    },
  },
}

function P.prepare_for_bootstrap(ctx, cfg)
  if cfg["bootstrap-ip"] then return nil, "bootstrap-ip must not be specified" end
  local root = cfg["root-dir"]
  if not root or root == "" then
    root = assert(ctx:juju_home()) .. "/" .. cfg.name
  end
  cfg["root-dir"] = ctx:expand_home(root)
  if not cfg.namespace then cfg.namespace = sys.username() .. "-" .. cfg.name end
  cfg["proxy-ssh"] = false
  -- A local bootstrap neither refreshes, upgrades nor installs packages
  -- unless asked: this is the operator's own machine.
  for _, k in ipairs({ "enable-os-refresh-update", "enable-os-upgrade", "enable-package-install" }) do
    if cfg[k] == nil then cfg[k] = false end
  end
  return cfg
end

function P.open(ctx, cfg)
  return { ctx = ctx, cfg = cfg, root = cfg["root-dir"] }
end

function P.storage(env)
  return storage_mod.open_dir(env.root .. "/storage")
end

function P.state_server_instances(env)
  if not fs.exists(env.root .. "/storage/provider-state") then
    return nil, "environment is not bootstrapped", "NOT_BOOTSTRAPPED"
  end
  return common.state_server_instances(P.storage(env))
end

local function host_hardware(arch)
  local hw = { arch = arch }
  local meminfo = fs.read_file("/proc/meminfo") or ""
  local kb = meminfo:match("MemTotal:%s+(%d+)")
  if kb then hw.mem = math.floor(tonumber(kb) / 1024) end
  local cpuinfo = fs.read_file("/proc/cpuinfo") or ""
  local n = 0
  for _ in cpuinfo:gmatch("\nprocessor%s*:") do n = n + 1 end
  if cpuinfo:match("^processor%s*:") then n = n + 1 end
  if n > 0 then hw["cpu-cores"] = n end
  return hw
end

local function service_name(env) return "juju-agent-" .. env.cfg.namespace end

function P.instance_defaults(env)
  local root, cfg = env.root, env.cfg
  return {
    data_dir = root, log_dir = root .. "/log", cloud_init_output_log = root .. "/cloud-init-output.log",
    service_name = service_name(env), jobs = { "JobManageEnviron" }, instance_id = "localhost",
    agent_env = { NAMESPACE = cfg.namespace, STORAGE_DIR = root .. "/storage", PROVIDER_TYPE = "local" },
    agent_start = cfg["agent-start"],
  }
end

-- Nothing is launched: this machine is the instance.
function P.start_instance(_, params)
  return { id = "localhost", status = "running", addresses = { common.address("127.0.0.1", "machine-local") },
    hardware = host_hardware(sys.arch() or params.tools[1].arch) }
end

-- The phase-2 script, run here. Its progress lines (fd 9) become ours.
function P.finalize(env, _, params)
  local root = env.root
  assert(fs.mkdir_p(root, tonumber("755", 8)))
  local r, err = sys.run({ "bash", "-s" }, {
    stdin = params.script, env = env.ctx.environ, timeout = env.cfg["bootstrap-timeout"] or 600,
  })
  if not r then return nil, "cannot run the bootstrap script: " .. tostring(err) end
  local progress, tail = {}, {}
  for line in (r.stderr or ""):gmatch("[^\n]+") do progress[#progress + 1] = line end
  if r.code ~= 0 then
    for i = math.max(1, #progress - 20), #progress do tail[#tail + 1] = progress[i] end
    return nil, string.format("the bootstrap script failed (exit %d); last output:\n%s\n(full log: %s)",
      r.code, table.concat(tail, "\n"), root .. "/cloud-init-output.log")
  end
  for _, line in ipairs(progress) do env.ctx:infof("%s", line) end
  return true
end

--- Where the client reads state (juju status, wait_agent).
function P.state_info(env)
  return { kind = "sqlite", path = env.root .. "/state.db" }
end

function P.wait_agent(env)
  local info = P.state_info(env)
  local timeout = env.cfg["bootstrap-timeout"] or 600
  return env.ctx:wait("for the machine agent's first heartbeat", timeout, function()
    if not fs.exists(info.path) then return nil, "no state database yet" end
    local store = state.open(info.kind, info)
    if not store then return nil, "state database not readable yet" end
    local st = initialize.machine_status(store, env.cfg.uuid, "0", sys.time())
    store:close()
    if st and st.agent_state == "started" then return true end
    return nil, "machine 0 has not reported yet"
  end, 0.2)
end

-- Stops the agent's restart loop (its own process group) and the agent.
local function stop_agent(env)
  local name = service_name(env)
  local init_dir = env.root .. "/init/" .. name
  if fs.exists("/run/systemd/system") and fs.exists(init_dir .. "/" .. name .. ".service")
    and env.cfg["agent-start"] == "systemd" then
    sys.run({ "systemctl", "disable", "--now", name .. ".service" }, {})
  end
  for _, pid_file in ipairs({ init_dir .. "/" .. name .. ".pid", env.root .. "/agents/machine-0/jujud.pid" }) do
    local text = fs.read_file(pid_file)
    local pid = text and math.tointeger(tonumber(text:match("%d+")))
    if pid and pid > 1 then
      sys.kill(-pid, "TERM") -- the loop's process group
      sys.kill(pid, "TERM")
      for _ = 1, 50 do
        if not sys.kill(pid, 0) then break end
        sys.sleep(0.05)
      end
      sys.kill(-pid, "KILL")
      sys.kill(pid, "KILL")
    end
  end
end

--- The instance is this machine: releasing it stops the agent. The
--- engine removes storage objects itself; nothing else is created.
function P.release(env, resource)
  if resource.kind == "instance" then stop_agent(env) end
  return true
end

function P.destroy(env)
  stop_agent(env)
  return fs.remove_tree(env.root)
end

return P
