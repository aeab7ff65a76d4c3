-- juju.journal: what a bootstrap has created, written down the moment each
-- resource's ID is known, so cleanup and destroy-environment find it even
-- after kill -9. It lives in the .jenv (key "bootstrap-journal"), rewritten
-- atomically under the store lock, together with the bootstrap phase:
-- prepared -> instance-started -> agent-installed -> bootstrapped.
--
-- Durable at the points that matter, not on every change: an intent is
-- saved before its resource is created and a record the moment it is known,
-- but the changes made inside one batch() (a record and the phase it
-- completes, with nothing created in between) share one save, and begin()
-- and mark_phase() ride along with the next save.
local sys = require("juju.sys")
local yaml = require("juju.yaml")

local M = {}

local Journal = {}
Journal.__index = Journal

--- A journal over the .jenv of `name` in store; info is the .jenv content
--- already read (it is updated in place and rewritten on every change).
function M.open(store, name, info)
  local j = info["bootstrap-journal"]
  if type(j) ~= "table" then
    j = { phase = "prepared", resources = yaml.array({}) }
  end
  j.resources = yaml.array(j.resources or {})
  info["bootstrap-journal"] = j
  return setmetatable({ store = store, name = name, info = info, data = j, batching = 0, dirty = false }, Journal)
end

function Journal:save()
  if self.batching > 0 then
    self.dirty = true
    return true
  end
  self.dirty = false
  local lock, lerr = self.store:lock("writing")
  if not lock then return nil, lerr end
  local ok, err = self.store:write(self.name, self.info)
  lock:release()
  if not ok then return nil, "cannot record bootstrap progress: " .. err end
  return true
end

--- Calls fn(journal): the saves it asks for become one, made when it
--- returns (when anything changed). Returns true, or nil, message (fn's
--- own failure, nil, message, comes first; a raised error propagates
--- after the save).
function Journal:batch(fn)
  self.batching = self.batching + 1
  local done, ok, err = pcall(fn, self)
  self.batching = self.batching - 1
  local sok, serr = true, nil
  if self.batching == 0 and self.dirty then sok, serr = self:save() end
  if not done then error(ok, 0) end
  if ok == nil then return nil, err end
  if not sok then return nil, serr end
  return true
end

--- Marks the start of a bootstrap by this process; saved with the next
--- save (nothing is created before the first intent or record).
function Journal:begin(clock_time)
  self.data.pid = sys.getpid()
  self.data.started = math.floor(clock_time)
  self.dirty = true
  return true
end

--- Sets the phase and saves at once.
function Journal:set_phase(phase)
  self.data.phase = phase
  return self:save()
end

--- Sets the phase, saved with the next save: for a phase whose step
--- creates nothing before that save.
function Journal:mark_phase(phase)
  self.data.phase = phase
  self.dirty = true
  return true
end

--- Whether changes wait for the next save.
function Journal:pending() return self.dirty end

function Journal:phase() return self.data.phase end

--- Records the intent to create a resource of `kind` under the
--- client-chosen `name`, before the create call: a crash between the
--- create and record() still leaves a name to look for. Saved at once.
function Journal:intent(kind, name, attrs)
  if type(kind) ~= "string" or type(name) ~= "string" then error("journal:intent(kind, name[, attrs])", 2) end
  local r = { kind = kind, name = name, state = "intended" }
  for k, v in pairs(attrs or {}) do if r[k] == nil then r[k] = v end end
  local rs = self.data.resources
  rs[#rs + 1] = r
  return self:save()
end

--- Records a created resource of `kind` with provider id `id` and saves at
--- once. attrs.name completes the intent recorded under that name.
function Journal:record(kind, id, attrs)
  if type(kind) ~= "string" or id == nil then error("journal:record(kind, id[, attrs])", 2) end
  attrs = attrs or {}
  local rs = self.data.resources
  local r
  if attrs.name then
    for i = #rs, 1, -1 do
      if rs[i].kind == kind and rs[i].name == attrs.name and rs[i].state == "intended" then r = rs[i]; break end
    end
  end
  if not r then
    r = { kind = kind }
    rs[#rs + 1] = r
  end
  r.id, r.state = tostring(id), "created"
  for k, v in pairs(attrs) do if k ~= "kind" and k ~= "id" and k ~= "state" then r[k] = v end end
  return self:save()
end

--- Removes a resource (by id, or by name for an intent) once it is gone.
function Journal:forget(kind, id)
  local rs = self.data.resources
  for i = #rs, 1, -1 do
    if rs[i].kind == kind and (rs[i].id == id or (rs[i].id == nil and rs[i].name == id)) then table.remove(rs, i) end
  end
  return self:save()
end

--- Resources of a kind (all kinds when nil), in creation order.
function Journal:resources(kind)
  local out = {}
  for _, r in ipairs(self.data.resources) do
    if kind == nil or r.kind == kind then out[#out + 1] = r end
  end
  return out
end

--- A journal kept in memory only (a provider context outside a bootstrap).
function M.memory()
  local info = {}
  local j = M.open(nil, nil, info)
  j.save = function() return true end
  return j
end

return M
