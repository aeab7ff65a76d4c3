-- juju.journal: what a bootstrap has created, written down the moment each
-- resource's ID is known, so cleanup and destroy-environment find it even
-- after kill -9. It lives in the .jenv (key "bootstrap-journal"), rewritten
-- atomically under the store lock, together with the bootstrap phase:
-- prepared -> instance-started -> agent-installed -> bootstrapped.
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
  return setmetatable({ store = store, name = name, info = info, data = j }, Journal)
end

function Journal:save()
  local lock, lerr = self.store:lock("writing")
  if not lock then return nil, lerr end
  local ok, err = self.store:write(self.name, self.info)
  lock:release()
  if not ok then return nil, "cannot record bootstrap progress: " .. err end
  return true
end

--- Marks the start of a bootstrap by this process.
function Journal:begin(clock_time)
  self.data.pid = sys.getpid()
  self.data.started = math.floor(clock_time)
  return self:save()
end

function Journal:set_phase(phase)
  self.data.phase = phase
  return self:save()
end

function Journal:phase() return self.data.phase end

--- Records a created resource ({kind=, id=, ...}) and saves at once.
function Journal:record(resource)
  local rs = self.data.resources
  rs[#rs + 1] = resource
  return self:save()
end

--- Removes a resource from the journal once it is gone.
function Journal:forget(kind, id)
  local rs = self.data.resources
  for i = #rs, 1, -1 do
    if rs[i].kind == kind and rs[i].id == id then table.remove(rs, i) end
  end
  return self:save()
end

--- Resources of a kind, in creation order.
function Journal:resources(kind)
  local out = {}
  for _, r in ipairs(self.data.resources) do
    if kind == nil or r.kind == kind then out[#out + 1] = r end
  end
  return out
end

return M
