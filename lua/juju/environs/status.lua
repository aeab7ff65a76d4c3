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

local HARDWARE_FIELDS = { "arch", "cpucores", "cpupower", "mem", "rootdisk" }
local HARDWARE_NAMES = { cpucores = "cpu-cores", cpupower = "cpu-power", rootdisk = "root-disk" }
local HARDWARE_MEGABYTES = { mem = true, rootdisk = true }
local MACHINE_ORDER = { "agent-state", "agent-version", "dns-name", "instance-id", "series", "hardware",
  "state-server-member-status" }

-- One machine's entry from its documents (by: {coll = {[_id] = doc}});
-- members: a replicated store's cluster by node id (juju.ha), or nil.
local function machine_entry(by, uuid, m, now, members)
  local id = m.machineid
  local local_id = uuid .. ":" .. id
  local idata = by.instanceData[local_id]
  -- A heartbeat is stale after three of the agent's own intervals.
  local beat = by.presence[uuid .. ":m#" .. id]
  local interval = beat and tonumber(beat.interval) or 10
  local status = initialize.status_of(id, by.machines[local_id], idata, beat, now, math.max(3 * interval, 3))
  idata = idata or {}
  local addrs = m.addresses or {}
  local hw, n = {}, 0
  for _, k in ipairs(HARDWARE_FIELDS) do
    local v = idata[k]
    if v ~= nil and v ~= yaml.null then
      n = n + 1
      hw[n] = (HARDWARE_NAMES[k] or k) .. "=" .. tostring(v) .. (HARDWARE_MEGABYTES[k] and "M" or "")
    end
  end
  local entry = {
    ["agent-state"] = status.agent_state,
    ["agent-version"] = status.agent_version and (status.agent_version:match("^([^-]+)") or status.agent_version),
    ["dns-name"] = addrs[1] and (addrs[1].value or addrs[1]) or nil,
    ["instance-id"] = idata.instanceid,
    series = m.series,
    hardware = n > 0 and table.concat(hw, " ") or nil,
  }
  local num = members and math.tointeger(tonumber(id))
  if num then
    local ha = require("juju.ha")
    local wants = m.novote ~= true and ha.manages(m)
    if wants or members[num + 1] then entry["state-server-member-status"] = ha.member_status(wants, members[num + 1]) end
  end
  return id, yaml.ordered(entry, MACHINE_ORDER)
end

--- The machines section ({[id] = entry}) from an open store or a dump's
--- view (anything with find, as juju.state stores), with heartbeats judged
--- at `now`. Each collection is read once (three queries, whatever the
--- number of machines) and indexed by _id for every machine's lookups.
--- members (optional): the cluster of a replicated store by node id, for
--- state-server-member-status. Returns the table or nil, message.
function M.machines(st, uuid, now, members)
  local docs, by = {}, {}
  for _, coll in ipairs(state_dump.COLLECTIONS) do
    local found, err = st:find(coll)
    if not found then return nil, string.format("cannot read %s: %s", coll, tostring(err)) end
    local index = {}
    for _, d in ipairs(found) do index[d._id] = d end
    docs[coll], by[coll] = found, index
  end
  local machines = {}
  for _, m in ipairs(docs.machines) do
    local id, entry = machine_entry(by, uuid, m, now, members)
    machines[id] = entry
  end
  return machines
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
  -- Cluster members by node id (machine number + 1), for
  -- state-server-member-status.
  local members
  if dq and st.members then
    members = {}
    for _, m in ipairs(st:members() or {}) do members[m.id] = m end
  end
  local machines, merr = M.machines(st, cfg.uuid, now, members)
  st:close()
  if not machines then return nil, unable(name, tostring(merr)) end
  return yaml.ordered({ environment = name, machines = machines, services = {} },
    { "environment", "machines", "services" })
end

return M
