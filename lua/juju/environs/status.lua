-- juju.environs.status: the status document of a bootstrapped environment
-- (Juju 1.x's machines section), for `juju status` and the scenario API.
-- It reads the state store the client can reach (the provider's
-- state_info: the local provider's SQLite file) or a dump the provider
-- fetches from machine 0 (its state_dump, e.g. `jujud state-dump` over SSH
-- through juju.sshinit.state_dump). agent-state comes from the machine
-- agent's heartbeat, judged by the clock of the machine that reports it.
local yaml = require("juju.yaml")
local sys = require("juju.sys")
local state = require("juju.state")
local initialize = require("juju.state.initialize")
local envopen = require("juju.environs.open")
local configstore = require("juju.environs.configstore")
local state_dump = require("juju.agent.state_dump")

local M = {}

-- 1.25's connectionError, with the cause under "Error details:".
local function unable(name, details)
  return string.format("Unable to connect to environment %q.\nPlease check your credentials or use 'juju bootstrap' "
    .. "to create a new environment.\n\nError details:\n%s\n", name, details)
end

--- The status document of a bootstrapped environment: table or nil, message.
function M.collect(ctx, home, name)
  local store, serr = configstore.open(ctx, home)
  if not store then return nil, serr end
  local info, _, rcode = store:read(name)
  if not info and rcode == "ENOENT" then return nil, unable(name, string.format("environment %q not found", name)) end
  if not info or type(info["bootstrap-config"]) ~= "table" or #(info["state-servers"] or {}) == 0 then
    return nil, unable(name, "environment is not bootstrapped")
  end
  local o, oerr = envopen.open(ctx, home, name, { store = store, info = info })
  if not o then return nil, oerr end
  local provider, env, cfg = o.provider, o.env, o.cfg
  -- A store to read (get, find, close) and the time to judge heartbeats by:
  -- state_info (a store this client opens) unless it answers UNAVAILABLE,
  -- else state_dump (documents fetched from machine 0).
  local st, now
  local where, werr, wcode
  local ha = require("juju.ha")
  local dq = ha.store_kind(o) == "dqlite"
  if dq then
    -- Every state server is a Dqlite node this client dials (mutual TLS):
    -- any one of them that is up leads it to the leader.
    where, werr = require("juju.ha.dqlite").state_spec(cfg, o.info)
    if not where then return nil, unable(name, tostring(werr)) end
  elseif provider.state_info then
    where, werr, wcode = provider.state_info(env)
    if not where and wcode ~= "UNAVAILABLE" then return nil, unable(name, tostring(werr)) end
  end
  if where then
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
  -- Cluster members by node id (machine number + 1), for
  -- state-server-member-status.
  local members
  if dq and st.members then
    members = {}
    for _, m in ipairs(st:members() or {}) do members[m.id] = m end
  end
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
    local n = math.tointeger(tonumber(id))
    if members and n then
      local wants = m.novote ~= true and ha.manages(m)
      if wants or members[n + 1] then entry["state-server-member-status"] = ha.member_status(wants, members[n + 1]) end
    end
    machines[id] = yaml.ordered(entry, { "agent-state", "agent-version", "dns-name", "instance-id", "series", "hardware",
      "state-server-member-status" })
  end
  st:close()
  return yaml.ordered({ environment = name, machines = machines, services = {} },
    { "environment", "machines", "services" })
end

return M
