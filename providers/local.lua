-- providers/local.lua: this machine is machine 0. No instance is launched
-- and no SSH is used: the production phase-2 script runs here, as the
-- invoking user, with every path under root-dir (default JUJU_HOME/<env>);
-- storage is root-dir/storage; the state store defaults to SQLite; the
-- agent runs under a restart loop (or systemd when asked and available).
-- Destroy stops what it started (after checking each pid is this
-- environment's process) and removes what the environment created in
-- root-dir, never the user's files (issue 14.1): root-dir may not be /,
-- HOME, JUJU_HOME or hold them, nor files it did not create; root-dir's
-- `.juju-local` marker records the environment and what it created.
local fs = require("juju.fs")
local sys = require("juju.sys")
local storage_mod = require("juju.storage")
local common = require("juju.provider_common")
local initialize = require("juju.lazy")("juju.state.initialize")
local state = require("juju.lazy")("juju.state")
local agentconf = require("juju.lazy")("juju.agentconf")
local dqlite_agent = require("juju.lazy")("juju.agent.dqlitenode")

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

P.MARKER = ".juju-local"
-- What the bootstrap creates in root-dir (the marker lists what it found
-- after the bootstrap script too; destroy removes the union, nothing else).
P.OWNED = { "agents", "blobs", "cloud-init-output.log", "init", "locks", "log", "shared-secret",
  "state.db", "state.db-shm", "state.db-wal", "state.db-journal", "storage", "system-identity", "tools",
  "nonce.txt", "server.pem", "dqlite", "machines" }

-- path made absolute, with ".", ".." and repeated "/" resolved lexically,
-- then symlinks resolved in its deepest existing ancestor.
local function canonical(path)
  local parts = {}
  for seg in path:gmatch("[^/]+") do
    if seg == ".." then parts[#parts] = nil elseif seg ~= "." then parts[#parts + 1] = seg end
  end
  local rest = {}
  while true do
    local head = "/" .. table.concat(parts, "/")
    local real = fs.realpath(head)
    if real then
      local out = real:gsub("/$", "")
      for i = #rest, 1, -1 do out = out .. "/" .. rest[i] end
      return out == "" and "/" or out
    end
    rest[#rest + 1] = table.remove(parts)
  end
end

local function read_marker(root)
  local text = fs.read_file(root .. "/" .. P.MARKER, { max_size = 1 << 16 })
  if not text then return nil end
  local m = { entries = {} }
  for line in text:gmatch("[^\n]+") do
    local k, v = line:match("^([%w-]+):%s*(.-)%s*$")
    if k == "entry" then m.entries[#m.entries + 1] = v elseif k then m[k] = v end
  end
  return m
end

local function write_marker(root, m)
  local lines = { "# juju local provider: what environment " .. m.environment .. " created here",
    "environment: " .. m.environment, "created-root: " .. m["created-root"] }
  for _, e in ipairs(m.entries) do lines[#lines + 1] = "entry: " .. e end
  return fs.write_atomic(root .. "/" .. P.MARKER, table.concat(lines, "\n") .. "\n", "0600")
end

-- root-dir may be neither a place whose removal hurts the user nor a
-- directory holding what this environment did not make.
local function check_root(ctx, cfg, given)
  local root = cfg["root-dir"]
  local function refuse(why)
    return nil, string.format("root-dir %q %s: choose a new or empty directory of its own, e.g. %s/%s",
      given, why, assert(ctx:juju_home()), cfg.name)
  end
  if not root:match("^/") then return refuse("is not an absolute path (or ~/...)") end
  local real = canonical(root)
  local protected = { { "/", "is the root directory" } }
  local home = ctx:getenv("HOME")
  if home and home ~= "" then protected[#protected + 1] = { canonical(home), "is your home directory" } end
  protected[#protected + 1] = { canonical(assert(ctx:juju_home())), "is JUJU_HOME" }
  for _, p in ipairs(protected) do
    if real == p[1] then return refuse(p[2]) end
    if p[1] ~= "/" and p[1]:sub(1, #real + 1) == real .. "/" then
      return refuse("holds " .. p[1] .. " (" .. p[2]:gsub("^is ", "") .. ")")
    end
  end
  local st = fs.lstat(real)
  if st then
    if st.type ~= "dir" then return refuse("is not a directory") end
    local m = read_marker(real)
    if m and m.environment ~= cfg.name then return refuse("belongs to environment " .. tostring(m.environment)) end
    if not m then
      local names = fs.list(real) or {}
      if #names > 0 then
        return refuse(string.format("already holds files this environment did not create (%s%s)",
          table.concat(names, ", ", 1, math.min(#names, 3)), #names > 3 and ", ..." or ""))
      end
    end
  end
  cfg["root-dir"] = real
  return true
end

function P.prepare_for_bootstrap(ctx, cfg)
  if cfg["bootstrap-ip"] then return nil, "bootstrap-ip must not be specified" end
  local root = cfg["root-dir"]
  if not root or root == "" then
    root = assert(ctx:juju_home()) .. "/" .. cfg.name
  end
  local given = root
  cfg["root-dir"] = ctx:expand_home(root)
  local ok, err = check_root(ctx, cfg, given)
  if not ok then return nil, err end
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

-- Marks root-dir as this environment's before anything is written there,
-- recording whether it made the directory itself.
local function claim_root(env)
  if read_marker(env.root) then return true end
  local created = not fs.exists(env.root)
  local ok, err = fs.mkdir_p(env.root, tonumber("755", 8))
  if not ok then return nil, err end
  return write_marker(env.root, { environment = env.cfg.name, ["created-root"] = created and "yes" or "no", entries = {} })
end

function P.storage(env)
  local ok, err = claim_root(env)
  if not ok then return nil, "cannot claim root-dir " .. env.root .. ": " .. tostring(err) end
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

-- Another state server (juju ensure-availability) is another machine agent
-- on this host, under root-dir/machines/<id> with its own service.
-- Machine ids (numbers) only: they become paths.
local function valid_machine_id(id) return type(id) == "string" and id:match("^%d+$") ~= nil end
local function machine_dir(env, id) return env.root .. "/machines/" .. id end
local function machine_instance_id(env, id) return env.cfg.namespace .. "-machine-" .. id end

function P.instance_defaults(env, p)
  local root, cfg = env.root, env.cfg
  local id = p and p.machine_id or "0"
  if id ~= "0" then
    local dir = machine_dir(env, id)
    return {
      data_dir = dir, log_dir = dir .. "/log", cloud_init_output_log = dir .. "/cloud-init-output.log",
      service_name = service_name(env) .. "-machine-" .. id, jobs = { "JobManageEnviron" },
      instance_id = machine_instance_id(env, id),
      agent_env = { NAMESPACE = cfg.namespace, STORAGE_DIR = root .. "/storage", PROVIDER_TYPE = "local" },
      agent_start = cfg["agent-start"],
    }
  end
  return {
    data_dir = root, log_dir = root .. "/log", cloud_init_output_log = root .. "/cloud-init-output.log",
    service_name = service_name(env), jobs = { "JobManageEnviron" }, instance_id = "localhost",
    agent_env = { NAMESPACE = cfg.namespace, STORAGE_DIR = root .. "/storage", PROVIDER_TYPE = "local" },
    agent_start = cfg["agent-start"],
  }
end

-- Nothing is launched: this machine is the instance (of every state server).
function P.start_instance(env, params)
  local id = params.machine_id or "0"
  return { id = id == "0" and "localhost" or machine_instance_id(env, id), status = "running", addresses = { common.address("127.0.0.1", "machine-local") },
    hardware = host_hardware(sys.arch() or params.tools[1].arch) }
end

-- The phase-2 script, run here. Its progress lines (fd 9) become ours.
-- Records in the marker every entry of root-dir (all the bootstrap's:
-- prepare refused foreign files).
local function record_entries(env)
  local m = read_marker(env.root)
  if not m then return end
  local seen = {}
  for _, e in ipairs(m.entries) do seen[e] = true end
  for _, n in ipairs(fs.list(env.root) or {}) do
    if n ~= P.MARKER and not seen[n] then m.entries[#m.entries + 1] = n end
  end
  write_marker(env.root, m)
end

-- Keeps a failed bootstrap's log where the cleanup does not reach:
-- JUJU_HOME/environments/<name>.bootstrap-failure.log, 0600 (issue 14.11).
local function keep_failure_log(env, log)
  local home = env.ctx:juju_home()
  if not home or not fs.exists(log) then return log end
  local kept = home .. "/environments/" .. env.cfg.name .. ".bootstrap-failure.log"
  if fs.mkdir_p(home .. "/environments", tonumber("700", 8)) and fs.copy_file(log, kept, "0600") then
    return kept
  end
  return log
end

function P.finalize(env, _, params)
  local root = env.root
  local okc, cerr = claim_root(env)
  if not okc then return nil, "cannot claim root-dir " .. root .. ": " .. tostring(cerr) end
  local r, err = sys.run({ "bash", "-s" }, {
    stdin = params.script, env = env.ctx.environ, timeout = env.cfg["bootstrap-timeout"] or 600,
  })
  record_entries(env)
  if not r then return nil, "cannot run the bootstrap script: " .. tostring(err) end
  local progress, tail = {}, {}
  for line in (r.stderr or ""):gmatch("[^\n]+") do progress[#progress + 1] = line end
  if r.code ~= 0 then
    for i = math.max(1, #progress - 20), #progress do tail[#tail + 1] = progress[i] end
    return nil, string.format("the bootstrap script failed (exit %d); last output:\n%s\n(full log: %s)",
      r.code, table.concat(tail, "\n"), keep_failure_log(env, root .. "/cloud-init-output.log"))
  end
  for _, line in ipairs(progress) do env.ctx:infof("%s", line) end
  return true
end

--- Where a state server's Dqlite node listens: this host, dqlite-port plus
--- the machine number (every machine is here).
function P.state_server_address(env, _, id)
  local port = math.tointeger(env.cfg["dqlite-port"]) or 17666
  return string.format("127.0.0.1:%d", port + math.tointeger(tonumber(id)))
end

--- Where the client reads state (juju status, wait_agent).
function P.state_info(env)
  if env.cfg["state-store"] == "dqlite" then
    -- Machine 0 is this host: the client reads its agent.conf (root-dir is
    -- this user's) for the servers and the TLS material.
    local path = env.root .. "/agents/machine-0/agent.conf"
    local text = fs.read_file(path)
    if not text then return nil, "no agent configuration at " .. path .. " yet", "ENOENT" end
    local conf, err = agentconf.parse(text)
    if not conf then return nil, path .. ": " .. tostring(err), "EINVAL" end
    return dqlite_agent.client_store_options(conf)
  end
  return { kind = "sqlite", path = env.root .. "/state.db" }
end

function P.wait_agent(env)
  local info = P.state_info(env)
  local timeout = env.cfg["bootstrap-timeout"] or 600
  return env.ctx:wait("for the machine agent's first heartbeat", timeout, function()
    info = info or P.state_info(env)
    if not info then return nil, "no agent configuration yet" end
    if info.path and not fs.exists(info.path) then return nil, "no state database yet" end
    local store = state.open(info.kind, info)
    if not store then return nil, "state database not readable yet" end
    local st = initialize.machine_status(store, env.cfg.uuid, "0", sys.time())
    store:close()
    if st and st.agent_state == "started" then return true end
    return nil, "machine 0 has not reported yet"
  end, 0.2)
end

--- Whether pid is this environment's process (issue 14.2: a stale pid file
--- may name anyone's process): one of its arguments is root-dir or a path
--- under it (the restart loop runs init/<service>/exec-start.sh, jujud has
--- --data-dir root-dir). Returns mine, group (true when pid leads its own
--- process group) or false, why.
local function is_environment_process(env, pid)
  local cmdline = fs.read_file("/proc/" .. pid .. "/cmdline", { max_size = 1 << 20 })
  if not cmdline then return false, "no such process" end
  local root = env.root
  local mine = false
  for arg in cmdline:gmatch("[^%z]+") do
    if arg == root or arg:sub(1, #root + 1) == root .. "/" then mine = true break end
  end
  if not mine then return false, "its command line does not name " .. root end
  local stat = fs.read_file("/proc/" .. pid .. "/stat", { max_size = 4096 }) or ""
  local pgrp = stat:match("%) %a (%d+) (%d+)")
  return true, tonumber(pgrp) == pid
end

-- Stops the agent's restart loop (its own process group) and the agent
-- of machine id (default 0).
local function stop_agent(env, id)
  id = id or "0"
  local name = service_name(env) .. (id == "0" and "" or ("-machine-" .. id))
  local data_dir = id == "0" and env.root or machine_dir(env, id)
  local init_dir = data_dir .. "/init/" .. name
  if fs.exists("/run/systemd/system") and fs.exists(init_dir .. "/" .. name .. ".service")
    and env.cfg["agent-start"] == "systemd" then
    sys.run({ "systemctl", "disable", "--now", name .. ".service" }, {})
  end
  local lg = env.ctx:log_for("juju.provider.local")
  for _, pid_file in ipairs({ init_dir .. "/" .. name .. ".pid", data_dir .. "/agents/machine-" .. id .. "/jujud.pid" }) do
    local text = fs.read_file(pid_file, { max_size = 64 })
    local pid = text and math.tointeger(tonumber(text:match("%d+")))
    if pid and pid > 1 then
      local mine, group = is_environment_process(env, pid)
      if not mine then
        lg:warningf("pid %d in %s is not this environment's process (%s): not signalled", pid, pid_file, group)
      else
        if group then sys.kill(-pid, "TERM") end -- the loop's process group
        sys.kill(pid, "TERM")
        for _ = 1, 50 do
          if not sys.kill(pid, 0) then break end
          sys.sleep(0.05)
        end
        if group then sys.kill(-pid, "KILL") end
        sys.kill(pid, "KILL")
      end
    end
  end
end

--- The instance is this machine: releasing it stops the agent (another
--- state server's: its agent, and its directory goes). The engine removes
--- storage objects itself; nothing else is created.
function P.release(env, resource)
  if resource.kind ~= "instance" then return true end
  local id = resource.machine
  if id == nil or id == "0" then
    stop_agent(env)
    return true
  end
  if not valid_machine_id(id) then return nil, "bad machine id " .. tostring(id) end
  stop_agent(env, id)
  local dir = machine_dir(env, id)
  if fs.exists(dir) then
    local ok, err = fs.remove_tree(dir)
    if not ok then return nil, "cannot remove " .. dir .. ": " .. tostring(err) end
  end
  return true
end

--- Stops the agent and removes what the environment created in root-dir
--- (the marker's entries and P.OWNED); root-dir itself only when the
--- environment made it and nothing else is left in it.
function P.destroy(env)
  for _, id in ipairs(fs.list(env.root .. "/machines") or {}) do
    if valid_machine_id(id) then stop_agent(env, id) end
  end
  stop_agent(env)
  local root = env.root
  if not fs.exists(root) then return true end
  local m = read_marker(root)
  local names, seen = {}, {}
  for _, list in ipairs({ P.OWNED, m and m.entries or {} }) do
    for _, n in ipairs(list) do
      if not seen[n] and not n:find("/", 1, true) and n ~= ".." and n ~= "." then
        seen[n] = true
        names[#names + 1] = n
      end
    end
  end
  for _, n in ipairs(names) do
    local ok, err = fs.remove_tree(root .. "/" .. n)
    if not ok then return nil, "cannot remove " .. root .. "/" .. n .. ": " .. tostring(err) end
  end
  if m then fs.remove(root .. "/" .. P.MARKER) end
  local left = fs.list(root) or {}
  if m and m["created-root"] == "yes" and #left == 0 then return fs.remove_tree(root) end
  if #left > 0 then
    env.ctx:log_for("juju.provider.local"):infof("root-dir %s kept: it holds files the environment did not create (%s)",
      root, table.concat(left, ", "))
  end
  return true
end

P.internal = { is_environment_process = is_environment_process, canonical = canonical }

return P
