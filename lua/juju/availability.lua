-- juju.availability: `juju ensure-availability`, the orchestrator (it runs
-- the bootstrap's steps for each new state server, so it sits with
-- juju.bootstrap on top of the libraries). The plan, the vocabulary and the
-- backends are juju.ha, juju.ha.dqlite and juju.ha.mongodb.
--
-- Each new state server is a machine started through the provider as
-- machine 0 was (bootstrap's find-tools, start-instance, select-tools and
-- finalize steps, with the machine's own id and the join script instead of
-- bootstrap-state); its agent joins the replicated store and the command
-- waits, on the run's clock, until it has. A machine that does not join is
-- taken out of the cluster, released and forgotten, so no half-member is
-- left; the ones that joined stay. The .jenv's state-servers list is
-- rewritten with every state server once the set changed.
local sys = require("juju.sys")
local ha = require("juju.ha")

local M = {}

local function fail(fmt, ...) return nil, string.format(fmt, ...) end

--- The steps each new state server goes through (the fault matrix's rows).
M.STEP_IDS = { "find-tools", "start-instance", "select-tools", "finalize", "join", "vote" }

-- Takes a machine out again: its membership (the backend's leave), its
-- instance through the provider, its documents; what cannot be undone stays
-- in the journal for destroy-environment. A voter leaves while it still
-- runs (removing a stopped voter from two would need the vote it no longer
-- gives); anything else is stopped first, so it cannot join after leave.
local function undo(b, backend, o, st, machine_id)
  local problems = {}
  local voter = backend.is_voter and backend.is_voter(o, st, machine_id)
  local function leave()
    local ok, err = backend.leave(o, st, machine_id)
    if not ok then problems[#problems + 1] = err end
  end
  if voter then leave() end
  for _, r in ipairs(b.journal:resources("instance")) do
    if r.machine == machine_id and b.provider.release then
      local pok, res, rerr = pcall(b.provider.release, b.env, r)
      if pok and res then
        b.journal:forget("instance", r.id or r.name)
      else
        problems[#problems + 1] = string.format("cannot release instance %s: %s", tostring(r.id or r.name),
          tostring(pok and rerr or res))
      end
    end
  end
  if not voter then leave() end
  local uuid = b.cfg.uuid
  for _, key in ipairs({ { "machines", machine_id }, { "instanceData", machine_id }, { "constraints", "m#" .. machine_id },
    { "statuses", "m#" .. machine_id }, { "presence", "m#" .. machine_id } }) do
    st:remove(key[1], uuid .. ":" .. key[2])
  end
  if #problems > 0 then return nil, table.concat(problems, "; ") end
  return true
end

-- A step of b through juju.bootstrap.run_step (hooks: faults, timings,
-- deadlines, interrupts): true or nil, message.
local function step(b, id, fn, what)
  local ok, res, err = pcall(require("juju.bootstrap").run_step, b, { id = id, fn = fn, what = what })
  if not ok then return nil, type(res) == "table" and res.message or tostring(res) end
  if not res then return nil, err end
  return true
end

--- Adds state server machine_id through the provider, as machine 0 was
--- (the steps find-tools, start-instance, select-tools, finalize with the
--- join script), then the step join (backend.wait_joined: a member without
--- a vote). Returns the machine's run (for the vote and for undo) or nil,
--- message, after undoing what it did. opts.signals: the command's.
function M.add_machine(ctx, o, st, machine_id, opts, backend)
  local bootstrap = require("juju.bootstrap")
  local journal = require("juju.journal")
  local initialize = require("juju.state.initialize")
  local cfg = o.cfg
  if opts.series then
    local c = {}
    for k, v in pairs(cfg) do c[k] = v end
    c["default-series"] = opts.series
    cfg = c
  end
  local b = bootstrap.new_run(ctx, o.home, cfg.name, o.store, { constraints = opts.constraints or {},
    placement = opts.placement })
  b.provider, b.env, b.cfg, b.info, b.pc = o.provider, o.env, cfg, o.info, o.ctx
  b.journal = journal.open(o.store, cfg.name, o.info)
  b.pc.journal = b.journal
  b.machine_id, b.join = machine_id, true
  b.signals = opts.signals
  -- The new machine runs what machine 0 runs: tools this client uploaded
  -- at bootstrap (journaled storage objects under tools/) are uploaded
  -- again from the same cached build (the same object), not looked up.
  local uploaded = false
  for _, r in ipairs(b.journal:resources("storage")) do
    if tostring(r.id or ""):match("^tools/") then uploaded = true end
  end
  if o.provider.force_upload_tools or uploaded then b.params.upload_tools = true end
  local function finish(ok, err)
    for _, d in ipairs(b.tmpdirs) do require("juju.fs").remove_tree(d) end
    b.tmpdirs = {}
    return ok, err
  end
  local function failed(msg)
    local _, uerr = undo(b, backend, o, st, machine_id)
    return finish(nil, msg .. (uerr and ("; and undoing it: " .. uerr) or ""))
  end
  local s = bootstrap.steps
  local ok, err = step(b, "find-tools", s.find_tools, "looking for agent tools")
  if not ok then return finish(nil, err) end
  ok, err = step(b, "start-instance", s.start_instance, "starting machine " .. machine_id)
  if not ok then return failed(err) end
  local inst = b.instance
  -- The documents first: the agent's heartbeat and status find its machine.
  local docs, derr = initialize.state_server_documents({
    env_uuid = cfg.uuid, now = sys.time(), constraints = opts.constraints or {},
    machine = { id = machine_id, series = b.series, nonce = b.icfg.nonce, jobs = ha.STATE_JOBS,
      addresses = bootstrap.instance_addresses(inst), instance_id = inst.id, hardware = inst.hardware or {},
      hasvote = false },
  })
  if not docs then return failed(derr) end
  for _, e in ipairs(docs) do
    local r, ierr = st:ensure(e[1], e[2])
    if not r then return failed("cannot record machine " .. machine_id .. ": " .. tostring(ierr)) end
  end
  local values, verr = backend.agent_env(o, st, machine_id, inst)
  if not values then return failed(verr) end
  for k, v in pairs(values) do b.icfg.agent_env[k] = v end
  ok, err = step(b, "select-tools", s.select_tools, "selecting agent tools for machine " .. machine_id)
  if not ok then return failed(err) end
  ok, err = step(b, "finalize", s.finalize, "installing the state server agent on machine " .. machine_id)
  if not ok then return failed(err) end
  ok, err = step(b, "join", function()
    return backend.wait_joined(o, st, machine_id, tonumber(cfg["bootstrap-timeout"]) or 600)
  end, "waiting for machine " .. machine_id .. " to join the state servers")
  if not ok then return failed(err) end
  finish(true)
  return b
end

-- Undoes the machines of runs (newest first): nil or a message of what
-- could not be undone.
local function undo_all(runs, backend, o, st)
  local problems = {}
  for i = #runs, 1, -1 do
    local _, err = undo(runs[i], backend, o, st, runs[i].machine_id)
    if err then problems[#problems + 1] = "machine " .. runs[i].machine_id .. ": " .. err end
  end
  if #problems == 0 then return nil end
  return table.concat(problems, "; ")
end

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

function M.ensure_opened(ctx, o, opts)
  local kind = ha.store_kind(o)
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
  local current, next_id = ha.state_servers(machines)
  local plan, perr = ha.plan(current, next_id, opts.n or 0)
  if not plan then st:close(); return nil, perr end
  if opts.to and #opts.to < #plan.added then
    st:close()
    return fail("--to names %d host(s) but %d new state server(s) are needed", #opts.to, #plan.added)
  end
  -- All or nothing: every new machine joins without a vote first; then
  -- they get their votes one after the other (the cluster spends the least
  -- time with an even number of voters). Any failure undoes every machine
  -- this command added, so no half-member stays.
  local signals = sys.signals({ "INT", "TERM", "HUP" })
  local runs = {}
  local function abort(fmt, ...)
    local msg = string.format(fmt, ...)
    local uerr = undo_all(runs, backend, o, st)
    signals:close()
    st:close()
    if uerr then msg = msg .. "\nand undoing the new state servers failed: " .. uerr end
    return nil, msg
  end
  for i, id in ipairs(plan.added) do
    local b, aerr = M.add_machine(ctx, o, st, id, {
      series = opts.series, constraints = opts.constraints, placement = opts.to and opts.to[i], signals = signals,
    }, backend)
    if not b then return abort("cannot add state server machine %s: %s", id, tostring(aerr)) end
    runs[#runs + 1] = b
  end
  for _, b in ipairs(runs) do
    local id = b.machine_id
    local ok, verr = step(b, "vote", function()
      return backend.promote(o, st, id, tonumber(o.cfg["bootstrap-timeout"]) or 600)
    end, "giving machine " .. id .. " a vote")
    if ok then ok, verr = st:update("machines", o.cfg.uuid .. ":" .. id, { hasvote = true }) end
    if not ok then return abort("cannot add state server machine %s: %s", id, tostring(verr)) end
    ctx:infof("machine %s is a state server", id)
  end
  signals:close()
  if #plan.added > 0 then
    local ok, uerr = backend.record_servers(ctx, o, st)
    if not ok then st:close(); return nil, uerr end
  end
  st:close()
  return plan
end

return M
