-- juju.ha: highly available state servers (`juju ensure-availability`).
--
-- The plan is Juju 1.25's: -n 0 keeps the number asked for before, at
-- least 3; an even number is refused; the count is never reduced here.
-- Each new state server is a machine started through the provider as
-- machine 0 was (bootstrap's start-instance, select-tools and finalize
-- steps, with the machine's own id and the join script instead of
-- bootstrap-state); its agent joins the replicated store (a Dqlite voter,
-- or a replica-set member with a vote) and the command waits, on the run's
-- clock, until it has. A machine that does not join is taken out of the
-- cluster, released and forgotten, so no half-member is left; the ones
-- that joined stay. The .jenv's state-servers list is rewritten with every
-- state server once the set changed.
local yaml = require("juju.yaml")
local sys = require("juju.sys")
local state = require("juju.state")

local M = {}

M.STATE_JOBS = { "JobHostUnits", "JobManageEnviron" }

local function numeric_ids(list)
  table.sort(list, function(a, b)
    local na, nb = tonumber(a), tonumber(b)
    if na and nb and na ~= nb then return na < nb end
    return a < b
  end)
  return list
end

-- Jobs are stored as state.MachineJob codes (juju.state.initialize).
local function has_job(m, job)
  local code = require("juju.state.initialize").JOB_CODES[job]
  for _, j in ipairs(m.jobs or {}) do if j == job or j == code then return true end end
  return false
end

--- Whether machine document m manages the environment (a state server).
function M.manages(m) return has_job(m, "JobManageEnviron") end

--- The machines that manage the environment (their ids, sorted), and
--- the next free machine number.
function M.state_servers(machines)
  local ids, next_id = {}, 0
  for _, m in ipairs(machines) do
    local n = math.tointeger(tonumber(m.machineid))
    if n and n >= next_id then next_id = n + 1 end
    if has_job(m, "JobManageEnviron") and m.life ~= 2 and m.life ~= "dead" then ids[#ids + 1] = m.machineid end
  end
  return numeric_ids(ids), next_id
end

--- Juju 1.25's EnsureAvailability plan: {maintained=, added=} or nil,
--- message. n = 0 means "at least 3, or the number asked for before"
--- (the state servers that exist).
function M.plan(current, next_id, n)
  if n < 0 or (n % 2 ~= 1 and n ~= 0) then
    return nil, "must specify a number of state servers odd and non-negative"
  end
  local want = n
  if want == 0 then want = math.max(3, #current) end
  if want < #current then
    return nil, string.format("cannot reduce state server count (%d state servers, %d asked for): "
      .. "remove a state server with juju destroy-machine", #current, want)
  end
  local added = {}
  for i = 1, want - #current do added[i] = tostring(next_id + i - 1) end
  local maintained = {}
  for i, id in ipairs(current) do maintained[i] = id end
  return { maintained = maintained, added = added, removed = {}, promoted = {}, demoted = {} }
end

--- `state-server-member-status` of a machine that wants (or not) a vote,
--- given its cluster member ({role=}) or nil when it is not one.
function M.member_status(wants_vote, member)
  if not member then return "no-vote" end
  if member.role == "voter" then return wants_vote and "has-vote" or "removing-vote" end
  return wants_vote and "adding-vote" or "no-vote"
end

--- The Dqlite node id of a machine: its number plus one (node 1, machine
--- 0, bootstraps the cluster).
function M.node_id(machine_id)
  local n = math.tointeger(tonumber(machine_id))
  if not n or n < 0 then error("ha.node_id: machine id must be a number, got " .. tostring(machine_id), 2) end
  return n + 1
end

-- ------------------------------------------------------------- ensure --

local function fail(fmt, ...) return nil, string.format(fmt, ...) end

local function bootstrapped(info)
  local j = info and info["bootstrap-journal"]
  local phase = type(j) == "table" and j.phase or nil
  return info and type(info["bootstrap-config"]) == "table" and #(info["state-servers"] or {}) > 0
    and (phase == nil or phase == "bootstrapped")
end

--- Runs `juju ensure-availability` for environment name: opts.n,
--- opts.series, opts.constraints, opts.to (hosts). Returns the result
--- ({maintained=, added=, ...} of machine ids) or nil, message.
function M.ensure(ctx, home, name, opts)
  local configstore = require("juju.environs.configstore")
  local envopen = require("juju.environs.open")
  local store, serr = configstore.open(ctx, home)
  if not store then return nil, serr end
  local info, rerr, rcode = store:read(name)
  if not info then
    if rcode == "ENOENT" then return fail("environment %q is not bootstrapped (no %s): run juju bootstrap -e %s first",
      name, store:path(name), name) end
    return nil, rerr
  end
  if not bootstrapped(info) then
    return fail("environment %q is not bootstrapped: run juju bootstrap -e %s first", name, name)
  end
  local lock, lerr = store:env_lock(name, "ensure-availability")
  if not lock then return nil, lerr end
  local o, oerr = envopen.open(ctx, home, name, { store = store, info = info })
  if not o then lock:release(); return nil, oerr end
  o.home = home
  local res, err = M.ensure_opened(ctx, o, opts)
  lock:release()
  return res, err
end

--- The state store kind of an opened environment.
function M.store_kind(o)
  local kind = o.cfg["state-store"]
  if kind == nil or kind == yaml.null or kind == "" then
    kind = require("juju.providers").default_state_store(o.provider)
  end
  return kind
end

function M.ensure_opened(ctx, o, opts)
  local kind = M.store_kind(o)
  if kind == "sqlite" then
    return fail("environment %q keeps its state in one SQLite file (state-store: sqlite), which cannot be replicated; "
      .. "ensure-availability needs state-store: dqlite (or mongodb), chosen at bootstrap", o.cfg.name)
  end
  local backend = kind == "dqlite" and require("juju.ha.dqlite") or kind == "mongodb" and require("juju.ha.mongodb")
  if not backend then return fail("unknown state store %q", tostring(kind)) end
  local st, werr = backend.open_state(ctx, o)
  if not st then return fail("cannot connect to the state servers of %q: %s", o.cfg.name, tostring(werr)) end
  local machines, ferr = st:find("machines")
  if not machines then st:close(); return nil, ferr end
  local current, next_id = M.state_servers(machines)
  local plan, perr = M.plan(current, next_id, opts.n or 0)
  if not plan then st:close(); return nil, perr end
  if opts.to and #opts.to < #plan.added then
    st:close()
    return fail("--to names %d host(s) but %d new state server(s) are needed", #opts.to, #plan.added)
  end
  for i, id in ipairs(plan.added) do
    local ok, aerr = backend.add_state_server(ctx, o, st, id, {
      series = opts.series, constraints = opts.constraints, placement = opts.to and opts.to[i],
    })
    if not ok then
      st:close()
      return fail("cannot add state server machine %s: %s", id, tostring(aerr))
    end
  end
  if #plan.added > 0 then
    local ok, uerr = backend.record_servers(ctx, o, st)
    if not ok then st:close(); return nil, uerr end
  end
  st:close()
  return plan
end

M.clock_time = sys.time
M.open_store = state.open

return M
