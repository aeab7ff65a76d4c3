-- openstack.flavors: the instance type for constraints from the cloud's
-- own flavors (GET /flavors/detail: id, name, ram MiB, vcpus, disk GiB),
-- as Juju 1.25 chose: every flavor fits every arch; instance-type names a
-- flavor; mem, cpu-cores and root-disk are minimums; without a mem
-- constraint a flavor of at least 1 GiB is preferred; the smallest fitting
-- flavor wins (ram, then vcpus, then disk, then name).
local M = {}

M.PREFERRED_MEM = 1024

--- The flavors of a /flavors/detail answer as {id, name, mem, cpu_cores,
--- root_disk (MiB; nil when the flavor's disk is 0: the image's size)}.
function M.parse(doc)
  local out = {}
  for _, f in ipairs(type(doc) == "table" and type(doc.flavors) == "table" and doc.flavors or {}) do
    if type(f) == "table" and f.id ~= nil and type(f.name) == "string" then
      local disk = tonumber(f.disk) or 0
      out[#out + 1] = { id = tostring(f.id), name = f.name, mem = tonumber(f.ram) or 0,
        cpu_cores = tonumber(f.vcpus) or 0, root_disk = disk > 0 and disk * 1024 or nil }
    end
  end
  return out
end

local function fits(f, c)
  if c["instance-type"] and c["instance-type"] ~= "" and f.name ~= c["instance-type"] then return false end
  local mem, cores, disk = tonumber(c.mem), tonumber(c["cpu-cores"]), tonumber(c["root-disk"])
  if mem and f.mem < mem then return false end
  if cores and f.cpu_cores < cores then return false end
  if disk and (f.root_disk or 0) < disk then return false end
  return true
end

local function smaller(a, b)
  if a.mem ~= b.mem then return a.mem < b.mem end
  if a.cpu_cores ~= b.cpu_cores then return a.cpu_cores < b.cpu_cores end
  if (a.root_disk or 0) ~= (b.root_disk or 0) then return (a.root_disk or 0) < (b.root_disk or 0) end
  return a.name < b.name
end

--- The flavor for constraints c, or nil.
function M.choose(flavors, c)
  c = c or {}
  local fitting = {}
  for _, f in ipairs(flavors) do if fits(f, c) then fitting[#fitting + 1] = f end end
  table.sort(fitting, smaller)
  if c.mem == nil and (c["instance-type"] == nil or c["instance-type"] == "") then
    for _, f in ipairs(fitting) do if f.mem >= M.PREFERRED_MEM then return f end end
  end
  return fitting[1]
end

--- "m1.tiny (512 MiB, 1 core), m1.small (...)": for messages.
function M.describe(flavors)
  local parts = {}
  for _, f in ipairs(flavors) do
    parts[#parts + 1] = string.format("%s (%d MiB, %d core%s%s)", f.name, f.mem, f.cpu_cores,
      f.cpu_cores == 1 and "" or "s", f.root_disk and string.format(", %d GiB", f.root_disk // 1024) or "")
  end
  return #parts > 0 and table.concat(parts, ", ") or "none"
end

return M
