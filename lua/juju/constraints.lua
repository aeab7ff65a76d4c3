-- juju.constraints: Juju 1.x constraint syntax ("mem=4G cpu-cores=2"),
-- canonical formatting, and validation against a provider's vocabulary.
local version = require("juju.version")

local M = {}

-- Canonical order, as Juju prints constraints.
M.keys = { "arch", "container", "cpu-cores", "cpu-power", "instance-type", "mem", "root-disk",
  "tags", "spaces", "networks" }
local known = {}
for _, k in ipairs(M.keys) do known[k] = true end

local containers = { lxc = true, kvm = true, none = true }
local multipliers = { M = 1, G = 1024, T = 1024 * 1024, P = 1024 * 1024 * 1024 }

local function bad(key, msg) return nil, string.format("bad %q constraint: %s", key, msg) end

local parsers = {}
parsers.arch = function(v)
  if v == "" or version.valid_arch(v) then return v end
  return bad("arch", string.format("%q not recognized", v))
end
parsers.container = function(v)
  if v == "" or containers[v] then return v end
  return bad("container", string.format("invalid container type %q", v))
end
local function uint(key)
  return function(v)
    if v == "" then return v end
    local n = v:match("^%d+$") and math.tointeger(tonumber(v))
    if not n then return bad(key, "must be a non-negative integer") end
    -- Juju keeps "0" and "" alike (a set, zero value): one form here.
    if n == 0 then return "" end
    return n
  end
end
parsers["cpu-cores"] = uint("cpu-cores")
parsers["cpu-power"] = uint("cpu-power")
local function size(key)
  return function(v)
    if v == "" then return v end
    local num, suffix = v:match("^(%d*%.?%d+)([MGTP]?)$")
    local n = num and tonumber(num)
    if not n then return bad(key, "must be a non-negative float with optional M/G/T/P suffix") end
    -- In floats: an integer product could wrap around.
    local megabytes = math.ceil((n + 0.0) * multipliers[suffix ~= "" and suffix or "M"])
    if math.type(megabytes) ~= "integer" then return bad(key, "value too large") end
    if megabytes == 0 then return "" end
    return megabytes
  end
end
parsers.mem = size("mem")
parsers["root-disk"] = size("root-disk")
-- Comma-separated, as Go's strings.Split: "a,,b" has an empty item.
local function split_list(v)
  local out = {}
  if v == "" then return out end
  for item in (v .. ","):gmatch("([^,]*),") do out[#out + 1] = item end
  return out
end
parsers.tags = split_list
-- juju/names: a space is lower-case words joined by "-"; a network name
-- letters, digits, "_" and "-". "^name" excludes it.
local function is_space_name(s)
  if not s:match("^[a-z0-9%-]+$") then return false end
  for word in (s .. "-"):gmatch("([^-]*)-") do if word == "" then return false end end
  return true
end
local function names_list(key, valid, what)
  return function(v)
    local out = split_list(v)
    for _, item in ipairs(out) do
      local n = item:gsub("^%^", "")
      if not valid(n) then return bad(key, string.format("%q is not a valid %s name", n, what)) end
    end
    return out
  end
end
parsers.spaces = names_list("spaces", is_space_name, "space")
parsers.networks = names_list("networks", function(n) return n:match("^[%w_%-]+$") ~= nil end, "network")
parsers["instance-type"] = function(v) return v end

--- Parses "k=v k2=v2"; returns a constraints table (key -> value) or nil, message.
function M.parse(s)
  local out = {}
  for item in (s or ""):gmatch("%S+") do
    local k, v = item:match("^([^=]*)=(.*)$")
    if not k or k == "" then return nil, string.format("malformed constraint %q", item) end
    if not known[k] then return nil, string.format("unknown constraint %q", k) end
    if out[k] ~= nil then return bad(k, "already set") end
    local val, err = parsers[k](v)
    if val == nil then return nil, err end
    out[k] = val
  end
  return out
end

--- Canonical text form; "" for no constraints.
function M.format(c)
  local parts = {}
  for _, k in ipairs(M.keys) do
    local v = c[k]
    if v ~= nil then
      -- As Juju's String(): a zero number prints as nothing ("mem=").
      if v == 0 then v = "" end
      if type(v) == "table" then v = table.concat(v, ",")
      elseif (k == "mem" or k == "root-disk") and v ~= "" then v = tostring(v) .. "M" end
      parts[#parts + 1] = k .. "=" .. tostring(v)
    end
  end
  return table.concat(parts, " ")
end

--- Validates c against a provider's constraint description:
--- spec.unsupported (array of keys), spec.conflicts (array of {key, {keys...}}),
--- spec.vocab (key -> array of allowed values). Returns the array of
--- unsupported keys that were given (a warning, as in Juju) or nil, message.
function M.validate(c, spec)
  spec = spec or {}
  for _, pair in ipairs(spec.conflicts or {}) do
    local a, others = pair[1], pair[2]
    if c[a] ~= nil and c[a] ~= "" then
      for _, b in ipairs(others) do
        if c[b] ~= nil and c[b] ~= "" then
          return nil, string.format("ambiguous constraints: %q overlaps with %q", a, b)
        end
      end
    end
  end
  local keys = {}
  for key in pairs(spec.vocab or {}) do keys[#keys + 1] = key end
  table.sort(keys)
  for _, key in ipairs(keys) do
    local allowed, v = spec.vocab[key], c[key]
    -- A list constraint (tags=a,b) is checked element by element.
    local values = type(v) == "table" and v or { v }
    for _, one in ipairs((v ~= nil and v ~= "") and values or {}) do
      local ok = false
      for _, x in ipairs(allowed) do if tostring(x) == tostring(one) then ok = true end end
      if not ok then
        local vals = {}
        for _, x in ipairs(allowed) do vals[#vals + 1] = tostring(x) end
        return nil, string.format("invalid constraint value: %s=%s\nvalid values are: [%s]", key,
          tostring(one), table.concat(vals, " "))
      end
    end
  end
  local unsupported = {}
  for _, k in ipairs(spec.unsupported or {}) do
    if c[k] ~= nil then unsupported[#unsupported + 1] = k end
  end
  return unsupported
end

return M
