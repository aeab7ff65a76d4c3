-- ec2.instancetypes: Juju 1.25's EC2 instance types (provider/ec2/
-- instancetypes.go) and their on-demand Linux prices per region (USD per
-- hour in thousandths, as Juju kept them), and the choice Juju made
-- (environs/instances.FindInstanceSpec): the cheapest type that fits the
-- constraints, preferring >= 1 GiB of memory without a mem constraint, and
-- cpu-power >= 100 without instance-type or cpu-power (no t1.micro-class
-- types for a state server).
local M = {}

local AMD64, BOTH = { "amd64" }, { "amd64", "i386" }
local PV, HVM, ANY = { "pv" }, { "hvm" }, { "hvm", "pv" }

-- name, arches, cpu-cores, mem (MiB), cpu-power, virt types
local TYPES = {
  { "m1.small", BOTH, 1, 1740, 100, PV }, { "m1.medium", BOTH, 1, 3840, 200, PV },
  { "m1.large", AMD64, 2, 7680, 400, PV }, { "m1.xlarge", AMD64, 4, 15360, 800, PV },
  { "m3.medium", AMD64, 1, 3840, 300, ANY }, { "m3.large", AMD64, 2, 7680, 650, ANY },
  { "m3.xlarge", AMD64, 4, 15360, 1300, ANY }, { "m3.2xlarge", AMD64, 8, 30720, 2600, ANY },
  { "c1.medium", BOTH, 2, 1740, 500, PV }, { "c1.xlarge", AMD64, 8, 7168, 2000, PV },
  { "c3.large", AMD64, 2, 3840, 700, ANY }, { "c3.xlarge", AMD64, 4, 7680, 1400, ANY },
  { "c3.2xlarge", AMD64, 8, 15360, 2800, ANY }, { "c3.4xlarge", AMD64, 16, 30720, 5500, ANY },
  { "c3.8xlarge", AMD64, 32, 61440, 10800, ANY },
  { "c4.large", AMD64, 2, 3840, 800, HVM }, { "c4.xlarge", AMD64, 4, 7680, 1600, HVM },
  { "c4.2xlarge", AMD64, 8, 15360, 3100, HVM },
  { "m2.xlarge", AMD64, 2, 17408, 650, PV }, { "m2.2xlarge", AMD64, 4, 34816, 1300, PV },
  { "m2.4xlarge", AMD64, 8, 69632, 2600, PV },
  { "r3.large", AMD64, 2, 15616, 650, HVM }, { "r3.xlarge", AMD64, 4, 31232, 1300, HVM },
  { "r3.2xlarge", AMD64, 8, 62464, 2600, HVM },
  { "i2.xlarge", AMD64, 4, 31232, 1400, HVM },
  { "t1.micro", BOTH, 1, 613, 20, PV },
  { "t2.micro", AMD64, 1, 1024, 10, HVM }, { "t2.small", AMD64, 1, 2048, 20, HVM },
  { "t2.medium", AMD64, 2, 4096, 40, HVM },
}

M.TYPES = {}
for _, t in ipairs(TYPES) do
  M.TYPES[#M.TYPES + 1] = { name = t[1], arches = t[2], ["cpu-cores"] = t[3], mem = t[4], ["cpu-power"] = t[5],
    virt = t[6] }
end

-- Prices (thousandths of USD per hour). A type missing from a region's
-- table is not offered there.
local US_EAST_1 = {
  ["m1.small"] = 44, ["m1.medium"] = 87, ["m1.large"] = 175, ["m1.xlarge"] = 350,
  ["m3.medium"] = 70, ["m3.large"] = 140, ["m3.xlarge"] = 280, ["m3.2xlarge"] = 560,
  ["c1.medium"] = 130, ["c1.xlarge"] = 520,
  ["c3.large"] = 105, ["c3.xlarge"] = 210, ["c3.2xlarge"] = 420, ["c3.4xlarge"] = 840, ["c3.8xlarge"] = 1680,
  ["c4.large"] = 116, ["c4.xlarge"] = 232, ["c4.2xlarge"] = 464,
  ["m2.xlarge"] = 245, ["m2.2xlarge"] = 490, ["m2.4xlarge"] = 980,
  ["r3.large"] = 175, ["r3.xlarge"] = 350, ["r3.2xlarge"] = 700, ["i2.xlarge"] = 853,
  ["t1.micro"] = 20, ["t2.micro"] = 13, ["t2.small"] = 26, ["t2.medium"] = 52,
}
local EU_WEST_1 = {
  ["m1.small"] = 47, ["m1.medium"] = 95, ["m1.large"] = 190, ["m1.xlarge"] = 379,
  ["m3.medium"] = 77, ["m3.large"] = 154, ["m3.xlarge"] = 308, ["m3.2xlarge"] = 616,
  ["c1.medium"] = 148, ["c1.xlarge"] = 592,
  ["c3.large"] = 120, ["c3.xlarge"] = 239, ["c3.2xlarge"] = 478, ["c3.4xlarge"] = 956, ["c3.8xlarge"] = 1912,
  ["c4.large"] = 132, ["c4.xlarge"] = 264, ["c4.2xlarge"] = 528,
  ["m2.xlarge"] = 275, ["m2.2xlarge"] = 550, ["m2.4xlarge"] = 1100,
  ["r3.large"] = 195, ["r3.xlarge"] = 390, ["r3.2xlarge"] = 780, ["i2.xlarge"] = 938,
  ["t1.micro"] = 20, ["t2.micro"] = 14, ["t2.small"] = 28, ["t2.medium"] = 56,
}
M.COSTS = { ["us-east-1"] = US_EAST_1, ["eu-west-1"] = EU_WEST_1 }

--- The price table of a region: its own, else us-east-1's (the order of
--- the types is what matters for the choice; regions without a table of
--- their own here are priced as us-east-1).
function M.costs(region)
  return M.COSTS[region] or US_EAST_1
end

function M.find(name)
  for _, t in ipairs(M.TYPES) do if t.name == name then return t end end
end

local function has(list, v)
  for _, x in ipairs(list) do if x == v then return true end end
  return false
end

-- Whether type t fits constraints c (a parsed juju.constraints table) on
-- an image of arch/virt.
local function fits(t, c, arch, virt)
  if not has(t.arches, arch) or not has(t.virt, virt) then return false end
  if c["instance-type"] and c["instance-type"] ~= t.name then return false end
  if c["cpu-cores"] and t["cpu-cores"] < c["cpu-cores"] then return false end
  if c["cpu-power"] and t["cpu-power"] < c["cpu-power"] then return false end
  if c.mem and t.mem < c.mem then return false end
  return true
end

--- The cheapest (type, image) pair for constraints c among images
--- ({id, arch, virt, ...}, in preference order): spec, or nil, message
--- naming the constraints. spec = {type = t, image = img, cost = n}.
function M.choose(region, c, images)
  c = c or {}
  local costs = M.costs(region)
  local eff = {}
  for k, v in pairs(c) do if v ~= "" then eff[k] = v end end
  if eff["instance-type"] == nil and eff["cpu-power"] == nil then eff["cpu-power"] = 100 end
  local function candidates(want_mem)
    local out = {}
    for _, t in ipairs(M.TYPES) do
      local cost = costs[t.name]
      if cost and (not want_mem or t.mem >= want_mem) then
        for rank, img in ipairs(images) do
          if fits(t, eff, img.arch, img.virt) then
            out[#out + 1] = { type = t, image = img, cost = cost, rank = rank }
            break
          end
        end
      end
    end
    table.sort(out, function(a, b)
      if a.cost ~= b.cost then return a.cost < b.cost end
      if a.type.mem ~= b.type.mem then return a.type.mem < b.type.mem end
      if (a.image.arch == "amd64") ~= (b.image.arch == "amd64") then return a.image.arch == "amd64" end
      if a.rank ~= b.rank then return a.rank < b.rank end
      return a.type.name < b.type.name
    end)
    return out
  end
  local list = candidates(eff.mem == nil and 1024 or nil)
  if #list == 0 and eff.mem == nil then list = candidates(nil) end
  if #list == 0 then return nil end
  return list[1]
end

return M
