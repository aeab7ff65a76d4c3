-- juju.environs.teardown: removing what an environment owns, shared by a
-- failed bootstrap's cleanup and `juju destroy-environment`.
--
-- The journaled resources are released in reverse order of creation, each
-- under pcall, so one failing release does not stop the others: storage
-- objects through the environment's storage (unless the provider's destroy,
-- which follows, removes its storage itself: destroy_removes_storage),
-- everything else through the provider's release(env, resource). An intent without an id (a crash
-- between create and record) is looked up by its name among all_instances.
-- Instances tagged with the environment that the journal does not know
-- (all_instances) are released too. Then, when asked, the provider's
-- destroy removes the rest; when it succeeds the journal is emptied. What
-- could not be removed stays in the journal for the next destroy.
local M = {}

local function call(fn, ...)
  local ok, res, err = pcall(fn, ...)
  if not ok then return nil, tostring(res) end
  if not res then return nil, tostring(err or "failed") end
  return res
end

local function describe(r)
  return string.format("%s %s", r.kind, r.id or (r.name and ("(intended) " .. r.name)) or "?")
end

--- provider, env: the opened environment; pc its provider context; j the
--- journal (juju.journal). opts.destroy: also call provider.destroy.
--- Returns true, or nil, message listing what is left.
function M.run(provider, env, pc, j, opts)
  opts = opts or {}
  local lg = pc.log
  local problems = {}
  local listed, list_err
  local function all_instances()
    if listed == nil and provider.all_instances then
      listed, list_err = call(provider.all_instances, env)
      if not listed then
        problems[#problems + 1] = "cannot list the environment's instances: " .. tostring(list_err)
        listed = false
      end
    end
    return listed or {}
  end
  local released = {}
  local rs = j and j:resources() or {}
  -- The releases' forget()s share one save at the end of the loop: a
  -- crash in between leaves entries for resources already gone, which the
  -- next teardown finds gone (storage) or releases again.
  local function release_journaled()
    for i = #rs, 1, -1 do
      local r = rs[i]
      local ok, err
      if r.kind == "storage" and opts.destroy and provider.destroy_removes_storage then
        -- Removed by the provider's destroy below (with the rest): kept in
        -- the journal until that succeeds.
        ok = "deferred"
      elseif r.kind == "storage" then
        local st, serr = pc:storage()
        if st then ok, err = call(st.remove, st, r.id) else ok, err = nil, serr end
        -- An object that is already gone is released.
        if not ok and st and not call(st.exists, st, r.id) then ok = true end
      elseif provider.release then
        if r.id == nil and r.kind == "instance" then
          for _, inst in ipairs(all_instances()) do
            if inst.name == r.name or inst.id == r.name then r.id = inst.id end
          end
        end
        if r.id == nil and r.kind == "instance" and listed then
          ok = true -- never created
        else
          if r.kind == "instance" then pc:infof("Stopping instance %s", tostring(r.id or r.name)) end
          ok, err = call(provider.release, env, r)
        end
      else
        ok, err = nil, "the provider has no release operation"
      end
      if ok == "deferred" then
        lg:debugf("%s: removed by the environment's destroy", describe(r))
      elseif ok then
        if r.id then released[r.kind .. ":" .. r.id] = true end
        if j then j:forget(r.kind, r.id or r.name) end
      else
        lg:debugf("cannot release %s: %s", describe(r), tostring(err))
        problems[#problems + 1] = string.format("cannot release %s: %s", describe(r), tostring(err))
      end
    end
    return true
  end
  if j then j:batch(release_journaled) else release_journaled() end
  if provider.release then
    for _, inst in ipairs(all_instances()) do
      if not released["instance:" .. inst.id] then
        local ok, err = call(provider.release, env, { kind = "instance", id = inst.id, name = inst.name })
        if not ok then problems[#problems + 1] = string.format("cannot release instance %s: %s", inst.id, err) end
      end
    end
  end
  if opts.destroy then
    local ok, err = call(provider.destroy, env)
    if ok then
      if j then
        j.data.resources = require("juju.yaml").array({})
        j:save()
      end
      for _, p in ipairs(problems) do lg:warningf("%s (the environment was destroyed anyway)", p) end
      return true
    end
    problems[#problems + 1] = "the environment could not be destroyed: " .. tostring(err)
  end
  if #problems > 0 then return nil, table.concat(problems, "; ") end
  return true
end

--- destroy-environment's provider part: opens the prepared environment
--- (store, info: its configstore and .jenv), releases what its journal
--- holds and destroys it. Returns true or nil, message.
function M.destroy_prepared(ctx, home, name, store, info)
  local journal = require("juju.journal")
  local j = journal.open(store, name, info)
  local o, err = require("juju.environs.open").open(ctx, home, name, { store = store, info = info, journal = j })
  if not o then return nil, err end
  return M.run(o.provider, o.env, o.ctx, j, { destroy = true })
end

return M
