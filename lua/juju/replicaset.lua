-- juju.replicaset: the MongoDB replica set of the state servers, as Juju
-- 1.x's replicaset package and peergrouper worker managed it.
--
-- The primitives talk to one server through a juju.mongo Client:
-- initiate, current_config (replSetGetConfig, falling back to
-- local.system.replset on servers without that command), current_status
-- (replSetGetStatus), is_master, add / remove / set (replSetReconfig with
-- the version bumped). plan() is the peergrouper's decision, pure: which
-- members the set should have and which of them vote, keeping the number of
-- voters odd and giving a new member its vote only once it is SECONDARY.
-- ensure() runs plan and apply until the set matches the machines, waiting
-- (juju.wait, on the caller's clock) for new members to catch up, retrying
-- a reconfiguration the server is not ready for, and moving to the primary
-- named by isMaster when the server it talks to is not the primary.
--
-- Members are Lua tables in the server's own field names (_id, host,
-- priority, tags, votes ...). Unlike Juju, which left votes and priority
-- unset on voters (the server's defaults, 1), every member written here
-- says votes and priority explicitly, so a conversation shows both.
--
-- Errors are nil, message, code [, server code] with the message naming
-- the command and the member(s) concerned.
local yaml = require("juju.yaml")
local wait = require("juju.wait")

local M = {}

M.NAME = "juju"
M.MACHINE_TAG = "juju-machine-id"
M.MAX_PEERS = 7
M.WAIT_TIMEOUT = 300    -- seconds for a new member to reach SECONDARY
M.RETRY_TIMEOUT = 60    -- seconds to retry a reconfig the server is busy with

M.STATES = {
  [0] = "STARTUP", "PRIMARY", "SECONDARY", "RECOVERING", "FATAL", "STARTUP2", "UNKNOWN", "ARBITER",
  "DOWN", "ROLLBACK", "REMOVED",
}

-- Server error codes.
local COMMAND_NOT_FOUND = 59
local NOT_YET_INITIALIZED = 94
local ALREADY_INITIALIZED = 23
local CONFIGURATION_IN_PROGRESS = 109
local CURRENT_CONFIG_NOT_COMMITTED = 370
local NOT_PRIMARY = { [10107] = true, [13435] = true, [13436] = true, [189] = true, [11602] = true }

local MEMBER_ORDER = { "_id", "host", "arbiterOnly", "buildIndexes", "hidden", "priority", "tags",
  "slaveDelay", "secondaryDelaySecs", "votes" }
local CONFIG_ORDER = { "_id", "version", "protocolVersion", "members", "settings" }

-- ---- documents ------------------------------------------------------------------

local function ordered(t, order)
  local keys, seen = {}, {}
  for _, k in ipairs(order) do
    if t[k] ~= nil then
      keys[#keys + 1] = k
      seen[k] = true
    end
  end
  local rest = {}
  for k in pairs(t) do
    if not seen[k] then rest[#rest + 1] = k end
  end
  table.sort(rest)
  for _, k in ipairs(rest) do keys[#keys + 1] = k end
  return yaml.ordered(t, keys)
end

local function copy(t)
  if type(t) ~= "table" then return t end
  local out = {}
  for k, v in pairs(t) do out[k] = copy(v) end
  return out
end

--- A member document in Juju's field order.
function M.member(fields)
  local m = copy(fields)
  if m.tags then m.tags = ordered(m.tags, {}) end
  return ordered(m, MEMBER_ORDER)
end

--- Whether a member votes (votes absent means the server's default, 1).
function M.is_voting(member)
  return member.votes == nil or member.votes > 0
end

local function set_voting(member, voting)
  if voting then
    member.votes, member.priority = 1, 1.0
  else
    member.votes, member.priority = 0, 0.0
  end
end

local function member_names(members)
  local out = {}
  for _, m in ipairs(members) do
    local id = m.tags and m.tags[M.MACHINE_TAG]
    out[#out + 1] = id and string.format("%s (machine %s)", m.host, id) or tostring(m.host)
  end
  return table.concat(out, ", ")
end

local function is_not_primary(msg, server_code)
  if server_code and NOT_PRIMARY[server_code] then return true end
  local text = tostring(msg or ""):lower()
  return text:find("not master", 1, true) ~= nil or text:find("not primary", 1, true) ~= nil
end

local function is_busy(msg, server_code)
  if server_code == CONFIGURATION_IN_PROGRESS or server_code == CURRENT_CONFIG_NOT_COMMITTED then
    return true
  end
  local text = tostring(msg or ""):lower()
  return text:find("reconfig", 1, true) ~= nil and text:find("in progress", 1, true) ~= nil
end

-- ---- reading the set ---------------------------------------------------------------

local function normalise_config(doc)
  local cfg = copy(doc)
  local members = {}
  for _, m in ipairs(doc.members or {}) do members[#members + 1] = copy(m) end
  table.sort(members, function(a, b) return (a._id or 0) < (b._id or 0) end)
  cfg.members = members
  cfg.term = nil -- the server's, never ours to send back
  return cfg
end

--- The replica set configuration: {_id=, version=, members={...}, ...}
--- with members sorted by _id, or nil, msg, code ("ENOENT" when the set
--- was never initiated).
function M.current_config(client)
  local r, msg, code, server_code = client:command("admin", { replSetGetConfig = 1 })
  if r then return normalise_config(r.config or {}) end
  if server_code == NOT_YET_INITIALIZED then
    return nil, "replSetGetConfig: replica set not initiated: " .. tostring(msg), "ENOENT", server_code
  end
  if server_code ~= COMMAND_NOT_FOUND then
    return nil, "cannot get replica set config: " .. tostring(msg), code, server_code
  end
  -- mongod before 3.0 keeps it only in local.system.replset.
  local doc, fmsg, fcode = client:find_one("local", "system.replset")
  if not doc then
    if fcode == "ENOENT" then return nil, "local.system.replset: replica set not initiated", "ENOENT" end
    return nil, "cannot get replica set config from local.system.replset: " .. tostring(fmsg), fcode
  end
  return normalise_config(doc)
end

--- replSetGetStatus as {name=, members={{id=, address=, self=, healthy=,
--- state= (number), state_name= ("PRIMARY" ...), errmsg=}}} or nil, msg, code.
function M.current_status(client)
  local r, msg, code, server_code = client:command("admin", { replSetGetStatus = 1 })
  if not r then return nil, "cannot get replica set status: " .. tostring(msg), code, server_code end
  local out = { name = r.set, members = {} }
  for _, m in ipairs(r.members or {}) do
    out.members[#out.members + 1] = {
      id = m._id, address = m.name, self = m.self == true, healthy = m.health == 1 or m.health == true,
      state = m.state, state_name = m.stateStr or M.STATES[m.state] or "INVALID_MEMBER_STATE",
      errmsg = m.errmsg,
    }
  end
  return out
end

--- isMaster as {is_master=, secondary=, address= (me), primary=, hosts=,
--- set_name=} or nil, msg, code.
function M.is_master(client)
  local r, msg, code = client:command("admin", { isMaster = 1 })
  if not r then return nil, "isMaster: " .. tostring(msg), code end
  return {
    is_master = r.ismaster == true or r.isWritablePrimary == true, secondary = r.secondary == true,
    address = r.me, primary = r.primary, hosts = r.hosts or {}, set_name = r.setName,
  }
end

-- ---- changing the set --------------------------------------------------------------

local function config_doc(cfg)
  local doc = copy(cfg)
  local members = {}
  for i, m in ipairs(cfg.members) do members[i] = M.member(m) end
  doc.members = yaml.array(members)
  return ordered(doc, CONFIG_ORDER)
end

-- Sends replSetReconfig with cfg (its version already bumped), retrying
-- while the server is busy with an earlier one. what: the change, for
-- messages ("adding 10.0.0.2:37017 (machine 1)").
local function reconfig(client, cfg, what, opts)
  local r, msg, code, server_code
  local result, werr, wcode = wait.poll {
    what = string.format("to reconfigure the replica set (version %d, %s)", cfg.version, what),
    timeout = opts.retry_timeout or M.RETRY_TIMEOUT, interval = 1, backoff = 2, max_interval = 10,
    clock = opts.clock, say = opts.say,
    cancel = opts.cancel, check_interrupt = opts.check_interrupt, deadline = opts.deadline,
    poll = function()
      r, msg, code, server_code = client:command("admin", { replSetReconfig = config_doc(cfg) })
      if r then return true end
      if is_busy(msg, server_code) then return nil, msg end
      if code == "TIMEOUT" then
        -- A reconfig that changes the primary drops every connection (Juju
        -- saw io.EOF): whether it was applied is in the config itself.
        local now = M.current_config(client)
        if now and now.version >= cfg.version then return true end
        if now then return nil, msg end
      end
      return false, msg, code
    end,
  }
  if result then return true end
  local prefix = string.format("replSetReconfig (version %d, %s)", cfg.version, what)
  if wcode == "TIMEOUT" then return nil, prefix .. ": " .. tostring(werr), "TIMEOUT", server_code end
  if is_not_primary(msg, server_code) then
    return nil, prefix .. ": not the primary: " .. tostring(msg), "NOT_PRIMARY", server_code
  end
  return nil, prefix .. " refused: " .. tostring(msg), wcode or code, server_code
end

local function max_id(members, more)
  local n = 0
  for _, list in ipairs({ members, more or {} }) do
    for _, m in ipairs(list) do
      if (m._id or 0) > n then n = m._id end
    end
  end
  return n
end

--- Adds members (tables with host and optionally _id, tags, votes,
--- priority); hosts already in the set are skipped, missing ids follow the
--- highest one. true | nil, msg, code.
function M.add(client, members, opts)
  opts = opts or {}
  local cfg, msg, code = M.current_config(client)
  if not cfg then return nil, msg, code end
  local n = max_id(cfg.members, members)
  local added = {}
  for _, new in ipairs(members) do
    local present = false
    for _, m in ipairs(cfg.members) do
      if m.host == new.host then present = true end
    end
    if not present then
      local m = copy(new)
      if not m._id or m._id < 1 then
        n = n + 1
        m._id = n
      end
      cfg.members[#cfg.members + 1] = m
      added[#added + 1] = m
    end
  end
  if #added == 0 then return true end
  cfg.version = cfg.version + 1
  return reconfig(client, cfg, "adding " .. member_names(added), opts)
end

--- Removes the members with these host addresses (absent ones are not an
--- error). true | nil, msg, code.
function M.remove(client, addresses, opts)
  opts = opts or {}
  local cfg, msg, code = M.current_config(client)
  if not cfg then return nil, msg, code end
  local drop = {}
  for _, a in ipairs(addresses) do drop[a] = true end
  local kept, removed = {}, {}
  for _, m in ipairs(cfg.members) do
    if drop[m.host] then removed[#removed + 1] = m else kept[#kept + 1] = m end
  end
  if #removed == 0 then return true end
  cfg.members = kept
  cfg.version = cfg.version + 1
  return reconfig(client, cfg, "removing " .. member_names(removed), opts)
end

--- Replaces the members with `members` (ids kept by host, new ones after
--- the highest). One reconfiguration. true | nil, msg, code.
function M.set(client, members, opts)
  opts = opts or {}
  local cfg, msg, code = M.current_config(client)
  if not cfg then return nil, msg, code end
  local ids = {}
  for _, m in ipairs(cfg.members) do ids[m.host] = m._id end
  local n = max_id(cfg.members, members)
  local out = {}
  for i, m in ipairs(members) do
    out[i] = copy(m)
    if ids[m.host] then
      out[i]._id = ids[m.host]
    elseif not out[i]._id or out[i]._id < 1 then
      n = n + 1
      out[i]._id = n
    end
  end
  table.sort(out, function(a, b) return a._id < b._id end)
  cfg.members = out
  cfg.version = cfg.version + 1
  return reconfig(client, cfg, "members " .. member_names(out), opts)
end

--- Initiates the set with one member, as Juju did: replSetInitiate up to
--- 10 times 0.1 s apart (mongod refuses while it cannot yet reach itself
--- at the member address), then replSetGetStatus until the set lists its
--- member. opts: address (host:port, required), name (M.NAME), tags,
--- clock, timeout (25 s for the status). true | nil, msg, code [, server
--- code] (23, AlreadyInitialized, is not retried).
function M.initiate(client, opts)
  if type(opts) ~= "table" or type(opts.address) ~= "string" then
    error("replicaset.initiate(client, {address=})", 2)
  end
  local member = M.member({ _id = 1, host = opts.address, tags = opts.tags })
  local cfg = ordered({ _id = opts.name or M.NAME, version = 1, members = yaml.array({ member }) }, CONFIG_ORDER)
  local msg, code, server_code
  local ok = wait.poll {
    what = "to initiate the replica set", timeout = 10, interval = 0.1, clock = opts.clock,
    poll = function(st)
      local r
      r, msg, code, server_code = client:command("admin", { replSetInitiate = cfg })
      if r then return true end
      if server_code == ALREADY_INITIALIZED or st.attempt >= 10 then return false, msg, code end
      return nil, msg
    end,
  }
  if not ok then
    return nil, string.format("replSetInitiate (member %s): %s", opts.address, tostring(msg)), code, server_code
  end
  local st, werr, wcode = wait.poll {
    what = "for the replica set to list its member " .. opts.address, timeout = opts.timeout or 25,
    interval = 0.5, clock = opts.clock,
    poll = function()
      local s, err = M.current_status(client)
      if s and #s.members > 0 then return s end
      return nil, err or "no members yet"
    end,
  }
  if not st then return nil, "replSetInitiate (member " .. opts.address .. "): " .. tostring(werr), wcode end
  return true
end

-- ---- the peergrouper's decision ------------------------------------------------------

--- juju status's state-server-member-status for a state server: has_vote
--- is a bool or the machine's replica-set member document (nil: not a
--- member, so no vote); wants_vote is the machine's wish.
function M.member_status(has_vote, wants_vote)
  if type(has_vote) == "table" then has_vote = M.is_voting(has_vote) end
  if has_vote then return wants_vote and "has-vote" or "removing-vote" end
  return wants_vote and "adding-vote" or "no-vote"
end

--- 1.25's check of ensure-availability -n: nil, msg when refused (0 means
--- the default, 3).
function M.check_state_server_count(n)
  if math.type(n) ~= "integer" or n < 0 or (n % 2 ~= 1 and n ~= 0) then
    return nil, "must specify a number of state servers odd and non-negative"
  end
  return true
end

local function numeric_order(a, b)
  local na, nb = tonumber(a), tonumber(b)
  if na and nb and na ~= nb then return na < nb end
  if (na ~= nil) ~= (nb ~= nil) then return na ~= nil end
  return a < b
end

local function is_ready(st)
  return st ~= nil and st.healthy and (st.state == 1 or st.state == 2)
end

--- What the set should be. machines: {{id="0", address="10.0.0.1:37017",
--- wants_vote=true}, ...}; config: current_config's; status:
--- current_status's (may be nil: nobody is then ready). Returns
--- {members= (sorted by _id), voting= {[machine id]=bool}, changed=bool,
--- added= {machine ids}, votes_added=, votes_removed=, waiting= {machine
--- ids that want a vote but are not yet ready}} or nil, msg.
function M.plan(machines, config, status)
  local by_machine, extra = {}, {}
  local wanted = {}
  for _, m in ipairs(machines) do wanted[m.id] = m end
  local statuses = {}
  for _, st in ipairs((status or {}).members or {}) do statuses[st.id] = st end
  local top = 0
  for _, m in ipairs(config.members) do
    local id = m.tags and m.tags[M.MACHINE_TAG]
    if id and wanted[id] then by_machine[id] = copy(m) else extra[#extra + 1] = m end
    if m._id > top then top = m._id end
  end
  local changed = false
  for _, m in ipairs(extra) do
    if M.is_voting(m) then
      return nil, string.format("voting non-machine member %s found in peer group", member_names({ m }))
    end
    changed = true
  end
  local ids = {}
  for id in pairs(wanted) do ids[#ids + 1] = id end
  table.sort(ids, numeric_order)
  local primary_of = function(id)
    local m = by_machine[id]
    return m and statuses[m._id] and statuses[m._id].state == 1
  end
  local keep_voting, add_vote, remove_vote, create, waiting = {}, {}, {}, {}, {}
  for _, id in ipairs(ids) do
    local member = by_machine[id]
    local voting = member ~= nil and M.is_voting(member)
    local wants = wanted[id].wants_vote ~= false
    if wants and voting then
      keep_voting[#keep_voting + 1] = id
    elseif wants then
      if member and is_ready(statuses[member._id]) then
        add_vote[#add_vote + 1] = id
      else
        if not member then create[#create + 1] = id end
        waiting[#waiting + 1] = id
      end
    elseif voting then
      remove_vote[#remove_vote + 1] = id
    elseif not member then
      create[#create + 1] = id
    end
  end
  local voters = #keep_voting
  if voters == 0 and #remove_vote > 0 then
    -- Removing every voter is impossible: keep the primary's vote for now.
    local kept = {}
    for _, id in ipairs(remove_vote) do
      if primary_of(id) then keep_voting[#keep_voting + 1] = id else kept[#kept + 1] = id end
    end
    remove_vote = kept
    voters = #keep_voting
  end
  if (voters + #add_vote) % 2 == 0 then
    if #add_vote > 0 then
      add_vote[#add_vote] = nil
    else
      for i, id in ipairs(keep_voting) do
        if not primary_of(id) then
          remove_vote[#remove_vote + 1] = id
          table.remove(keep_voting, i)
          break
        end
      end
    end
  end
  for _, id in ipairs(create) do
    top = top + 1
    by_machine[id] = { _id = top, host = wanted[id].address, tags = { [M.MACHINE_TAG] = id } }
    set_voting(by_machine[id], false)
  end
  for _, id in ipairs(add_vote) do set_voting(by_machine[id], true) end
  for _, id in ipairs(remove_vote) do set_voting(by_machine[id], false) end
  for id, m in pairs(by_machine) do
    if m.host ~= wanted[id].address then
      m.host = wanted[id].address
      changed = true
    end
  end
  local members, voting = {}, {}
  for id, m in pairs(by_machine) do
    members[#members + 1] = m
    voting[id] = M.is_voting(m)
  end
  table.sort(members, function(a, b) return a._id < b._id end)
  if #members > M.MAX_PEERS then
    return nil, string.format("%d state servers asked for; a replica set has at most %d members", #members, M.MAX_PEERS)
  end
  return {
    members = members, voting = voting, added = create, votes_added = add_vote, votes_removed = remove_vote,
    waiting = waiting, changed = changed or #create > 0 or #add_vote > 0 or #remove_vote > 0,
  }
end

-- ---- applying a plan ------------------------------------------------------------------

-- Applies plan.members to cfg: first one reconfiguration with every change
-- that moves no vote (new non-voting members, dropped non-voters, new
-- addresses), then one per member whose vote changes (MongoDB 4.4 refuses
-- more than one voter change at a time). Returns the last config applied.
local function apply_plan(client, cfg, plan, opts)
  local current = {}
  for _, m in ipairs(cfg.members) do current[m._id] = m end
  local step = copy(cfg)
  step.members = {}
  local vote_changes = {}
  local added, dropped = {}, {}
  for _, want in ipairs(plan.members) do
    local have = current[want._id]
    if not have then
      step.members[#step.members + 1] = copy(want)
      added[#added + 1] = want
    else
      local m = copy(have)
      m.host, m.tags = want.host, want.tags or m.tags
      step.members[#step.members + 1] = m
      if M.is_voting(have) ~= M.is_voting(want) then vote_changes[#vote_changes + 1] = want end
    end
  end
  local wanted_ids = {}
  for _, m in ipairs(plan.members) do wanted_ids[m._id] = true end
  for _, m in ipairs(cfg.members) do
    if not wanted_ids[m._id] then dropped[#dropped + 1] = m end
  end
  table.sort(step.members, function(a, b) return a._id < b._id end)
  local first_needed = #added > 0 or #dropped > 0
  if not first_needed then
    for _, m in ipairs(step.members) do
      if m.host ~= current[m._id].host then first_needed = true end
    end
  end
  if first_needed then
    step.version = step.version + 1
    local what = {}
    if #added > 0 then what[#what + 1] = "adding " .. member_names(added) end
    if #dropped > 0 then what[#what + 1] = "removing " .. member_names(dropped) end
    if #what == 0 then what[1] = "updating addresses" end
    local ok, msg, code, sc = reconfig(client, step, table.concat(what, ", "), opts)
    if not ok then return nil, msg, code, sc end
  end
  for _, want in ipairs(vote_changes) do
    for _, m in ipairs(step.members) do
      if m._id == want._id then set_voting(m, M.is_voting(want)) end
    end
    step.version = step.version + 1
    local ok, msg, code, sc = reconfig(client, step,
      (M.is_voting(want) and "giving a vote to " or "taking the vote from ") .. member_names({ want }), opts)
    if not ok then return nil, msg, code, sc end
  end
  return step
end

-- Polls replSetGetStatus until the members with these _ids are SECONDARY
-- (or PRIMARY). Returns the last status, or nil, msg naming the members
-- that did not get there.
local function wait_secondary(client, members, opts)
  local last, pending
  local result, msg, code = wait.poll {
    what = "for replica set member(s) " .. member_names(members) .. " to become SECONDARY",
    timeout = opts.timeout or M.WAIT_TIMEOUT, interval = opts.interval or 1, backoff = 2,
    max_interval = opts.max_interval or 30, clock = opts.clock, say = opts.say,
    cancel = opts.cancel, check_interrupt = opts.check_interrupt, deadline = opts.deadline,
    poll = function()
      local st, err = M.current_status(client)
      if not st then return nil, err end
      last = st
      local by_id = {}
      for _, s in ipairs(st.members) do by_id[s.id] = s end
      pending = {}
      for _, m in ipairs(members) do
        if not is_ready(by_id[m._id]) then
          pending[#pending + 1] = string.format("%s (%s)", member_names({ m }),
            by_id[m._id] and by_id[m._id].state_name or "not in replSetGetStatus")
        end
      end
      if #pending == 0 then return st end
      return nil, "still " .. table.concat(pending, ", ")
    end,
  }
  if result then return result end
  if code == "TIMEOUT" and pending and #pending > 0 then
    return nil, string.format("replica set member %s never reached SECONDARY (waited %s)",
      table.concat(pending, ", "), wait.duration(opts.timeout or M.WAIT_TIMEOUT)), "TIMEOUT", last
  end
  return nil, msg, code
end

--- Makes the replica set match machines (see plan), as the peergrouper
--- would, in rounds: read the config (and status), plan, apply, wait for
--- the members still catching up, until nothing changes and nobody waits.
--- It talks to client and, when that server is not the primary, to the
--- primary its isMaster names (opts.connect(address) -> client is then
--- required). opts: clock, say, timeout (M.WAIT_TIMEOUT, for new members
--- to become SECONDARY), retry_timeout, connect, and wait.poll's cancel,
--- check_interrupt and deadline. Members this call added that never become
--- SECONDARY are removed again before the error returns, so no half-member
--- stays. Returns {config=, voting=, client= (the one that did the work)}
--- or nil, msg, code.
function M.ensure(client, machines, opts)
  opts = opts or {}
  local status
  local added_here = {} -- machine ids this call added to the set
  for _ = 1, 10 do
    local cfg, msg, code = M.current_config(client)
    if not cfg then return nil, msg, code end
    if not status then
      status, msg, code = M.current_status(client)
      if not status then return nil, msg, code end
    end
    local plan, perr = M.plan(machines, cfg, status)
    if not plan then return nil, perr, "EINVAL" end
    if not plan.changed and #plan.waiting == 0 then
      return { config = cfg, voting = plan.voting, client = client }
    end
    local applied, sc
    applied, msg, code, sc = apply_plan(client, cfg, plan, opts)
    if applied then
      for _, id in ipairs(plan.added) do added_here[id] = true end
    end
    if not applied and code == "NOT_PRIMARY" then
      local im = M.is_master(client)
      if not (im and im.primary) then return nil, msg .. "; isMaster names no primary", code, sc end
      if not opts.connect then return nil, msg .. "; the primary is " .. im.primary, code, sc end
      local primary, cerr, ccode = opts.connect(im.primary)
      if not primary then
        return nil, string.format("cannot connect to the primary %s: %s", im.primary, tostring(cerr)), ccode
      end
      client, status = primary, nil
    elseif not applied then
      return nil, msg, code, sc
    else
      local waiting = {}
      for _, id in ipairs(plan.waiting) do
        for _, m in ipairs(plan.members) do
          if m.tags and m.tags[M.MACHINE_TAG] == id then waiting[#waiting + 1] = m end
        end
      end
      if #waiting == 0 then return { config = applied, voting = plan.voting, client = client } end
      local st, werr, wcode = wait_secondary(client, waiting, opts)
      if not st then
        -- Members this call added go again; ones that were there before stay.
        local hosts = {}
        for _, m in ipairs(waiting) do
          if added_here[m.tags[M.MACHINE_TAG]] then hosts[#hosts + 1] = m.host end
        end
        if #hosts > 0 then
          local ok, rmsg = M.remove(client, hosts, opts)
          if not ok then werr = werr .. "; and removing the new members again failed: " .. tostring(rmsg) end
        end
        return nil, werr, wcode
      end
      status = st
    end
  end
  return nil, "the replica set did not settle after 10 reconfigurations", "EAGAIN"
end

return M
