-- juju status: the environment's machines in Juju 1.x's format, read from
-- the state store the client can reach (the provider's state_info: the
-- local provider's SQLite file) or from a dump the provider fetches from
-- machine 0 (its state_dump: the manual provider runs `jujud state-dump`
-- over SSH). agent-state comes from the machine agent's heartbeat, judged
-- by the clock of the machine that reports it.
local yaml = require("juju.yaml")
local sys = require("juju.sys")
local state = require("juju.state")
local initialize = require("juju.state.initialize")
local configstore = require("juju.environs.configstore")
local prepare = require("juju.environs.prepare")
local envconfig = require("juju.environs.config")
local bootstrap_cmd = require("juju.commands.bootstrap")
local state_dump = require("juju.agent.state_dump")
local statusformat = require("juju.statusformat")

local M = {
  name = "status",
  args = "[options] [pattern ...]",
  purpose = "output status information about an environment",
  aliases = { "stat" },
}

function M.flags(fs)
  fs:add { names = { "e", "environment" }, help = "juju environment to operate in" }
  -- A formatter value, as 1.25's cmd.Output: shown `(= yaml)`, checked when parsed.
  fs:add { names = { "format" }, default = "yaml",
    help = "specify output format (json|line|oneline|short|summary|tabular|yaml)",
    parse = function(v)
      if statusformat.FORMATS[v] then return v end
      return nil, string.format("unknown format %q", v)
    end }
  fs:add { names = { "o", "output" }, help = "specify an output file" }
  fs:add { names = { "utc" }, kind = "bool", help = "display time as UTC in RFC3339 format" }
end

-- Patterns are accepted (and, with no services to filter, change nothing).
function M.init() return nil end

-- 1.25's connectionError, with the cause under "Error details:".
local function unable(name, details)
  return string.format("Unable to connect to environment %q.\nPlease check your credentials or use 'juju bootstrap' "
    .. "to create a new environment.\n\nError details:\n%s\n", name, details)
end

--- The status document of a bootstrapped environment: table or nil, message.
function M.collect(ctx, home, name)
  local store_, serr = configstore.open(ctx, home)
  if not store_ then return nil, serr end
  local info, _, rcode = store_:read(name)
  if not info and rcode == "ENOENT" then return nil, unable(name, string.format("environment %q not found", name)) end
  if not info or type(info["bootstrap-config"]) ~= "table" or #(info["state-servers"] or {}) == 0 then
    return nil, unable(name, "environment is not bootstrapped")
  end
  local bc = info["bootstrap-config"]
  local provider, perr = prepare.provider_for(home, name, bc.type, ctx)
  if not provider then return nil, perr end
  local cfg, cerr = envconfig.from_prepared(ctx, bc, { provider = provider, file = info.path })
  if not cfg then return nil, cerr end
  envconfig.register_secrets(ctx, cfg, provider)
  local env, oerr = provider.open(ctx, cfg)
  if not env then return nil, oerr end
  -- A store to read (get, find, close) and the time to judge heartbeats by.
  local st, now
  if provider.state_info then
    local where = provider.state_info(env)
    local err
    st, err = state.open(where.kind, where)
    if not st then return nil, unable(name, tostring(err)) end
    now = sys.time()
  elseif provider.state_dump then
    local dump, err = provider.state_dump(env)
    if not dump then return nil, unable(name, tostring(err)) end
    st, now = state_dump.view(dump), tonumber(dump.now) or sys.time()
  else
    return nil, string.format("juju status cannot reach the state of %q environments from this client", provider.name)
  end
  local machines = {}
  local uuid = cfg.uuid
  for _, m in ipairs(st:find("machines") or {}) do
    local id = m.machineid
    local idata = st:get("instanceData", uuid .. ":" .. id) or {}
    -- A heartbeat is stale after three of the agent's own intervals.
    local beat = st:get("presence", uuid .. ":m#" .. id)
    local interval = beat and tonumber(beat.interval) or 10
    local status = initialize.machine_status(st, uuid, id, now, math.max(3 * interval, 3))
    local addrs = m.addresses or {}
    local hw = {}
    for _, k in ipairs({ "arch", "cpucores", "cpupower", "mem", "rootdisk" }) do
      local v = idata[k]
      if v ~= nil and v ~= yaml.null then
        local key = ({ cpucores = "cpu-cores", cpupower = "cpu-power", rootdisk = "root-disk" })[k] or k
        hw[#hw + 1] = string.format("%s=%s%s", key, tostring(v), (k == "mem" or k == "rootdisk") and "M" or "")
      end
    end
    local entry = {
      ["agent-state"] = status.agent_state,
      ["agent-version"] = status.agent_version and (status.agent_version:match("^([^-]+)") or status.agent_version),
      ["dns-name"] = addrs[1] and (addrs[1].value or addrs[1]) or nil,
      ["instance-id"] = idata.instanceid,
      series = m.series,
      hardware = #hw > 0 and table.concat(hw, " ") or nil,
    }
    machines[id] = yaml.ordered(entry, { "agent-state", "agent-version", "dns-name", "instance-id", "series", "hardware" })
  end
  st:close()
  return yaml.ordered({ environment = name, machines = machines, services = {} },
    { "environment", "machines", "services" })
end

--- The provider type of a prepared environment (for 1.25's conventions).
function M.provider_type(ctx, home, name)
  local store_ = configstore.open(ctx, home)
  local info = store_ and store_:read(name)
  return info and type(info["bootstrap-config"]) == "table" and info["bootstrap-config"].type or nil
end

function M.run(_, ctx, opts)
  local home, herr = ctx:juju_home()
  if not home then return nil, herr end
  local name, nerr = bootstrap_cmd.environment_name(ctx, home, opts.environment)
  if not name then return nil, nerr end
  local doc, err = M.collect(ctx, home, name)
  if not doc then return nil, err end
  local text = statusformat.format(statusformat.normalize(doc, M.provider_type(ctx, home, name)), opts.format)
  if opts.output then
    local ok, werr = require("juju.fs").write_atomic(opts.output, text, tonumber("644", 8))
    if not ok then return nil, werr end
    return true
  end
  ctx:write_stdout(text)
  return true
end

return M
