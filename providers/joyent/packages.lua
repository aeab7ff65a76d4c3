-- joyent.packages: the instance type for constraints from the account's
-- CloudAPI packages (GET /<user>/packages: name, memory MiB, disk MiB,
-- vcpus), as Juju 1.24's joyent provider chose: arch amd64 only; virt type
-- kvm when the package has vcpus, else smartmachine; instance-type names a
-- package; mem, cpu-cores (default >= 1) and root-disk are minimums;
-- without a mem constraint a package of at least 1 GiB is preferred; the
-- cheapest (smallest) fitting package wins.
local M = {}

M.PREFERRED_MEM = 1024

--- The packages of a GET /<user>/packages answer as {name, mem, cpu_cores,
--- root_disk (MiB), virt}.
function M.parse(doc)
  local out = {}
  for _, p in ipairs(type(doc) == "table" and doc or {}) do
    if type(p) == "table" and type(p.name) == "string" then
      local vcpus = tonumber(p.vcpus) or 0
      out[#out + 1] = { name = p.name, mem = tonumber(p.memory) or 0, cpu_cores = vcpus,
        root_disk = tonumber(p.disk) or 0, virt = vcpus > 0 and "kvm" or "smartmachine" }
    end
  end
  return out
end

local function fits(p, c)
  if c["instance-type"] and c["instance-type"] ~= "" and p.name ~= c["instance-type"] then return false end
  if c.arch and c.arch ~= "" and c.arch ~= "amd64" then return false end
  local mem, cores, disk = tonumber(c.mem), tonumber(c["cpu-cores"]) or 1, tonumber(c["root-disk"])
  if mem and p.mem < mem then return false end
  if p.cpu_cores < cores then return false end
  if disk and p.root_disk < disk then return false end
  return true
end

local function cheaper(a, b)
  if a.mem ~= b.mem then return a.mem < b.mem end
  if a.cpu_cores ~= b.cpu_cores then return a.cpu_cores < b.cpu_cores end
  if a.root_disk ~= b.root_disk then return a.root_disk < b.root_disk end
  return a.name < b.name
end

--- The package for constraints c, or nil.
function M.choose(list, c)
  c = c or {}
  local fitting = {}
  for _, p in ipairs(list) do if fits(p, c) then fitting[#fitting + 1] = p end end
  table.sort(fitting, cheaper)
  if c.mem == nil and (c["instance-type"] == nil or c["instance-type"] == "") then
    for _, p in ipairs(fitting) do if p.mem >= M.PREFERRED_MEM then return p end end
  end
  return fitting[1]
end

--- "Micro (512 MiB, 1 core), ...": for messages.
function M.describe(list)
  local parts = {}
  for _, p in ipairs(list) do
    parts[#parts + 1] = string.format("%s (%d MiB, %d core%s)", p.name, p.mem, p.cpu_cores,
      p.cpu_cores == 1 and "" or "s")
  end
  return #parts > 0 and table.concat(parts, ", ") or "none"
end

return M
