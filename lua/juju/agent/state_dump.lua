-- juju.agent.state_dump: `jujud state-dump --data-dir D` prints, as one
-- JSON object, what `juju status` needs from machine 0's state store (the
-- environment's machines, instanceData and presence documents, and the
-- host's clock), read-only; the manual provider runs it over SSH. The
-- client side reads that object back with M.view / M.machine_status.
--
-- Output: {"environment": uuid, "store": "sqlite"|"mongodb", "now": seconds,
-- "machines": [...], "instanceData": [...], "presence": [...]}; password
-- hashes are left out.
local fs = require("juju.fs")
local json = require("juju.json")
local agentconf = require("juju.agentconf")
local state = require("juju.state")
local initialize = require("juju.state.initialize")

local M = {}

M.COLLECTIONS = { "machines", "instanceData", "presence" }
local DROPPED_FIELDS = { passwordhash = true }

function M.flags(_) end

local function fail(msg) return nil, "state-dump: " .. msg end

-- Opens the store named in agent.conf without creating anything.
local function open_store(data_dir, conf)
  local kind = conf.values and conf.values.STATE_STORE or "mongodb"
  if kind == "sqlite" then
    local path = data_dir .. "/state.db"
    if not fs.exists(path) then return nil, "no state database at " .. path end
    local store, err = state.open("sqlite", { path = path })
    if not store then return nil, err end
    return store, kind
  end
  if kind == "dqlite" then
    -- A client of the running agent's node (and of the other state
    -- servers'): the dump never starts a node of its own.
    local store, err = require("juju.agent.dqlitenode").open_store(conf, 10)
    return store, err or kind
  end
  local store, err = require("juju.agent.machine").open_store(data_dir, conf)
  return store, err or kind
end

function M.run(ctx, opts)
  local data_dir = opts["data-dir"]
  local text, err = fs.read_file(data_dir .. "/agents/machine-0/agent.conf")
  if not text then return fail("cannot read agent configuration: " .. err) end
  local conf, perr = agentconf.parse(text)
  if not conf then return fail("cannot read agent configuration: " .. perr) end
  local uuid = (conf.environment or ""):match("^environment%-(.+)$")
  if not uuid then return fail("agent configuration has no environment tag") end
  local store, kind = open_store(data_dir, conf)
  if not store then return fail("cannot open state: " .. tostring(kind)) end
  local out = { environment = uuid, store = kind, now = ctx.clock.time() }
  local prefix = uuid .. ":"
  for _, coll in ipairs(M.COLLECTIONS) do
    local docs, ferr = store:find(coll)
    if not docs then
      store:close()
      return fail(string.format("cannot read %s: %s", coll, tostring(ferr)))
    end
    local kept = json.array()
    for _, d in ipairs(docs) do
      if type(d._id) == "string" and d._id:sub(1, #prefix) == prefix then
        for k in pairs(DROPPED_FIELDS) do d[k] = nil end
        kept[#kept + 1] = d
      end
    end
    out[coll] = kept
  end
  store:close()
  local encoded, eerr = json.encode(json.ordered(out,
    { "environment", "store", "now", "machines", "instanceData", "presence" }))
  if not encoded then return fail(eerr) end
  ctx:write_stdout(encoded .. "\n")
  return true
end

--- A read-only store over a dump (get and find, as juju.state stores), so
--- the status code reads a dump and a store alike.
function M.view(dump)
  local by = {}
  for _, coll in ipairs(M.COLLECTIONS) do
    by[coll] = {}
    for _, d in ipairs(dump[coll] or {}) do by[coll][d._id] = d end
  end
  return {
    get = function(_, coll, id)
      local d = by[coll] and by[coll][id]
      if d then return d end
      return nil, string.format("state dump: %s/%s not found", coll, id), "ENOENT"
    end,
    find = function(_, coll)
      local out = {}
      for _, d in ipairs(dump[coll] or {}) do out[#out + 1] = d end
      return out
    end,
    close = function() end,
  }
end

--- initialize.machine_status of a machine from a dump, judged by the
--- host's clock (dump.now), with the staleness status uses: three of the
--- agent's heartbeat intervals.
function M.machine_status(dump, machine_id)
  local view = M.view(dump)
  local uuid = dump.environment
  if type(uuid) ~= "string" then return nil, "state dump without an environment" end
  local beat = view:get("presence", uuid .. ":m#" .. machine_id)
  local interval = beat and tonumber(beat.interval) or 10
  return initialize.machine_status(view, uuid, machine_id, tonumber(dump.now), math.max(3 * interval, 3))
end

return M
