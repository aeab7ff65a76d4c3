-- providers/dummy.lua: the test provider, after Juju's. Its world (instances,
-- storage, an operation log, the rendered user-data and scripts) lives in a
-- directory, JUJU_HOME/dummy/<environment uuid> by default, so separate juju
-- commands see the same world. `broken: "Bootstrap Destroy"` makes those
-- operations fail with "dummy.<Method> is broken", as in Juju; the
-- JUJU_DUMMY_DELAY environment variable ("start_instance=2 destroy=1") makes
-- operations slow, for interrupt and kill tests. It implements every
-- operation of the contract, so the fault matrix reaches each one.
local fs = require("juju.fs")
local json = require("juju.json")
local yaml = require("juju.yaml")
local storage_mod = require("juju.storage")
local common = require("juju.provider_common")

local P = {
  name = "dummy",
  api_version = 2,
  description = "test provider: instances and storage in a directory under JUJU_HOME",
  default_state_store = "sqlite",
  public_tools = false,
  config = {
    fields = {
      ["state-server"] = { type = "bool", default = true, description = "whether the environment runs a state server" },
      broken = { type = "string", default = "", allow_empty = true,
        description = "space-separated operation names that fail (Bootstrap, StartInstance, Destroy, ...)" },
      secret = { type = "string", default = "pork", secret = true, description = "a secret attribute, for redaction tests" },
      ["state-id"] = { type = "string", group = "juju", description = "set by the provider" },
      ["dummy-root"] = { type = "string", description = "directory holding the dummy world (default JUJU_HOME/dummy)" },
    },
  },
  constraints = { conflicts = { { "instance-type", { "mem", "cpu-cores", "cpu-power" } } }, unsupported = { "tags" } },
}

local DIR_MODE = tonumber("700", 8)
-- The dummy's world stands for a cloud: its operation log, instance
-- records, user-data, scripts and storage are the cloud's state, whose
-- durability is the cloud's, not the client's. They are written atomically
-- but not fsynced (issue 17.3: 15 of a pair's ~39 fsyncs); the client's own
-- promises (the .jenv journal, tests/scenarios/durability_spec.lua) stay.
local NOT_DURABLE = { durable = false }

-- Juju's method names, for `broken`.
local METHOD = {
  prepare_for_bootstrap = "PrepareForBootstrap", open = "Open", state_server_instances = "StateServerInstances",
  start_instance = "StartInstance", release = "StopInstances",
  destroy = "Destroy", storage = "Storage", all_instances = "AllInstances",
  finalize = "FinalizeBootstrap", wait_agent = "WaitAgent", state_dump = "StateDump",
}

-- Juju's Environ.Bootstrap is the engine's sequence now; the provider's
-- part of it is start_instance, so `broken: Bootstrap` breaks that.
local ALIAS = { Bootstrap = "start_instance" }

local function broken(cfg, op)
  for m in (cfg.broken or ""):gmatch("%S+") do
    if m == METHOD[op] or m == op then return string.format("dummy.%s is broken", METHOD[op] or op) end
    if ALIAS[m] == op then return string.format("dummy.%s is broken", m) end
  end
  return nil
end

local function delay(ctx, op)
  local spec = ctx and ctx:getenv("JUJU_DUMMY_DELAY")
  if not spec then return end
  for name, secs in spec:gmatch("([%w_]+)=([%d.]+)") do
    if name == op then ctx.clock.sleep(tonumber(secs)) end
  end
end

local function world_dir(ctx, cfg)
  local root = cfg["dummy-root"]
  if not root or root == "" then root = assert(ctx:juju_home()) .. "/dummy" end
  return root .. "/" .. cfg.uuid
end

-- Appends one operation to the log (JSON lines; no secrets in arguments):
-- $JUJU_DUMMY_LOG when set (scenarios keep it outside the world, so it
-- survives destroy), else ops.log in the world directory.
local function log_op(env, op, args)
  local path = env.ctx and env.ctx:getenv("JUJU_DUMMY_LOG")
  if not path then
    if not fs.mkdir_p(env.dir, DIR_MODE) then return end
    path = env.dir .. "/ops.log"
  end
  local rec = { op = op, env = env.cfg.name }
  for k, v in pairs(args or {}) do rec[k] = v end
  fs.append_sync(path, json.encode(rec) .. "\n", nil, NOT_DURABLE)
end

-- Every operation starts here: broken check, delay, log.
local function enter(env, op, args)
  local err = broken(env.cfg, op)
  log_op(env, op, { args = args, error = err })
  if err then return nil, err end
  delay(env.ctx, op)
  return true
end

function P.prepare_for_bootstrap(ctx, cfg)
  local err = broken(cfg, "prepare_for_bootstrap")
  if err then return nil, err end
  local _ = ctx
  if not cfg["state-id"] then cfg["state-id"] = "1" end
  return cfg
end

function P.open(ctx, cfg)
  return { ctx = ctx, cfg = cfg, dir = world_dir(ctx, cfg) }
end

function P.storage(env)
  if not env.storage then
    local s, err = storage_mod.open_dir(env.dir .. "/storage", { durable = false })
    if not s then error("dummy storage: " .. err) end
    env.storage = s
  end
  return env.storage
end

function P.state_server_instances(env)
  local err = broken(env.cfg, "state_server_instances")
  if err then return nil, err end
  if not fs.exists(env.dir .. "/storage") then return nil, "environment is not bootstrapped", "NOT_BOOTSTRAPPED" end
  return common.state_server_instances(P.storage(env))
end

local function instance_path(env, id) return env.dir .. "/instances/" .. id .. ".yaml" end

local function instance_object(id, rec)
  return { id = id, name = rec and rec.name, status = rec and rec.state or "running",
    addresses = { common.address("localhost", "machine-local") },
    hardware = rec and { arch = rec.arch, ["cpu-cores"] = 1, mem = 1024 } or nil }
end

local function read_instance(env, id)
  local text = fs.read_file(instance_path(env, id))
  return text and yaml.decode(text) or nil
end

function P.validate_config(ctx, cfg)
  local _ = ctx
  if cfg.broken ~= nil and type(cfg.broken) ~= "string" then return nil, "broken must be a string" end
  return cfg
end

function P.constraints_validator(_) return P.constraints end

function P.tools_sources(_) return {} end

function P.instance_defaults(env)
  local ok, err = enter(env, "instance_defaults", {})
  if not ok then return nil, err end
  return {}
end

function P.start_instance(env, params)
  local icfg = params.instance_config
  local ok, err = enter(env, "start_instance", {
    machine_id = icfg.machine_id, series = icfg.series, placement = params.placement, name = params.name,
    tools = #params.tools, constraints = require("juju.constraints").format(params.constraints or {}),
  })
  if not ok then return nil, err end
  if not icfg.nonce or icfg.nonce == "" then return nil, "cannot start instance: missing machine nonce" end
  if icfg.series:match("^unknown") then return nil, "cannot start instance: unknown series" end
  local n = #(fs.list(env.dir .. "/instances") or {})
  local id = string.format("dummy-%d", n)
  assert(fs.mkdir_p(env.dir .. "/instances", DIR_MODE))
  local arch = params.tools[1].arch
  local rec = { id = id, name = params.name, series = icfg.series, arch = arch, state = "running" }
  local wok, werr = fs.write_atomic(instance_path(env, id), yaml.encode(rec), nil, NOT_DURABLE)
  if not wok then return nil, werr end
  -- The phase-1 user-data a cloud would receive (rendered by the engine).
  assert(fs.mkdir_p(env.dir .. "/userdata", DIR_MODE))
  fs.write_atomic(env.dir .. "/userdata/" .. id, params.userdata, nil, NOT_DURABLE)
  return instance_object(id, rec)
end

-- No SSH: the dummy records the phase-2 script that would run on machine 0.
function P.finalize(env, inst, params)
  local ok, err = enter(env, "finalize", { instance = inst.id, tools = params.instance_config.tools.version })
  if not ok then return nil, err end
  assert(fs.mkdir_p(env.dir .. "/scripts", DIR_MODE))
  return fs.write_atomic(env.dir .. "/scripts/" .. inst.id, params.script, tonumber("600", 8), NOT_DURABLE)
end

-- The agent "reports" once its script is recorded.
function P.wait_agent(env, inst)
  local ok, err = enter(env, "wait_agent", { instance = inst.id })
  if not ok then return nil, err end
  return env.ctx:wait("for the dummy agent", 10, function()
    return fs.exists(env.dir .. "/scripts/" .. inst.id) or nil, "no script recorded"
  end, 1)
end

function P.all_instances(env)
  local out = {}
  for _, f in ipairs(fs.list(env.dir .. "/instances") or {}) do
    local id = f:gsub("%.yaml$", "")
    out[#out + 1] = instance_object(id, read_instance(env, id))
  end
  return out
end

function P.release(env, resource)
  local ok, err = enter(env, "release", { kind = resource.kind, id = resource.id })
  if not ok then return nil, err end
  if resource.kind == "instance" then
    fs.remove(instance_path(env, resource.id))
    return true
  end
  return nil, string.format("dummy: unknown resource kind %q", tostring(resource.kind))
end

--- Where a state server's Dqlite node would listen (state-store: dqlite):
--- this host, dqlite-port plus the machine number.
function P.state_server_address(env, _, machine_id)
  local ok, err = enter(env, "state_server_address", { machine_id = machine_id })
  if not ok then return nil, err end
  local port = math.tointeger(env.cfg["dqlite-port"]) or 17666
  return string.format("127.0.0.1:%d", port + (math.tointeger(tonumber(machine_id)) or 0))
end

-- The dummy keeps no state store of its own: status uses state_dump.
function P.state_info(_)
  return nil, "the dummy provider has no state store", "UNAVAILABLE"
end

-- Machine 0's status documents, made from the world: a started agent
-- for every recorded script.
function P.state_dump(env)
  local ok, err = enter(env, "state_dump", {})
  if not ok then return nil, err end
  local now = env.ctx.clock.time()
  local doc = { environment = env.cfg.uuid, now = now, machines = {}, instanceData = {}, presence = {} }
  for i, inst in ipairs(P.all_instances(env)) do
    local id = tostring(i - 1)
    local rec = read_instance(env, inst.id) or {}
    doc.machines[#doc.machines + 1] = { _id = env.cfg.uuid .. ":" .. id, machineid = id, series = rec.series,
      addresses = { { value = "localhost" } } }
    doc.instanceData[#doc.instanceData + 1] = { _id = env.cfg.uuid .. ":" .. id, instanceid = inst.id,
      arch = rec.arch, cpucores = 1, mem = 1024 }
    if fs.exists(env.dir .. "/scripts/" .. inst.id) then
      doc.presence[#doc.presence + 1] = { _id = env.cfg.uuid .. ":m#" .. id, time = now, interval = 10,
        stopped = false, agent_version = env.cfg["agent-version"] }
    end
  end
  return doc
end

function P.destroy(env)
  local ok, err = enter(env, "destroy", {})
  if not ok then return nil, err end
  return fs.remove_tree(env.dir)
end

return P
