-- juju.ha: highly available state servers, the library part of `juju
-- ensure-availability` (the orchestrator is juju.availability): Juju
-- 1.25's plan (-n 0 keeps the number asked for before, at least 3; an even
-- number is refused; the count is never reduced), the
-- state-server-member-status vocabulary, machine <-> Dqlite node ids, and
-- the environment's state store kind. The backends are juju.ha.dqlite and
-- juju.ha.mongodb.
local yaml = require("juju.yaml")

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

--- The state store kind of an opened environment.
function M.store_kind(o)
  local kind = o.cfg["state-store"]
  if kind == nil or kind == yaml.null or kind == "" then
    kind = require("juju.providers").default_state_store(o.provider)
  end
  return kind
end

return M
