-- juju.flags: command-line flags with gnuflag's rules and messages, as Juju
-- 1.x used them: --long[=value], -s [value], bool flags without a value,
-- flags and arguments interspersed, "--" ends the flags.
local M = {}

local Set = {}
Set.__index = Set

function M.new()
  return setmetatable({ defs = {}, by_name = {}, order = {} }, Set)
end

--- Declares a flag. def: names (array, e.g. {"e", "environment"}), kind
--- ("bool"|"string"|"int"), key (result key; default: the longest name),
--- default, help, parse (optional function(value) -> value | nil, message).
function Set:add(def)
  assert(type(def.names) == "table" and #def.names > 0, "flag needs names")
  local key = def.key
  if not key then
    for _, n in ipairs(def.names) do if not key or #n > #key then key = n end end
  end
  def.key = key
  def.kind = def.kind or "string"
  for _, n in ipairs(def.names) do
    assert(not self.by_name[n], "flag defined twice: " .. n)
    self.by_name[n] = def
  end
  self.order[#self.order + 1] = def
  return self
end

local function dashed(n) return (#n == 1 and "-" or "--") .. n end

local function convert(def, raw, shown)
  local v = raw
  if def.kind == "bool" then
    if raw == "true" or raw == "1" or raw == "t" or raw == "T" or raw == "TRUE" or raw == "True" then
      v = true
    elseif raw == "false" or raw == "0" or raw == "f" or raw == "F" or raw == "FALSE" or raw == "False" then
      v = false
    else
      return nil, string.format("invalid value %q for flag %s: parse error", raw, shown)
    end
  elseif def.kind == "int" then
    v = math.tointeger(tonumber(raw))
    if not v then return nil, string.format("invalid value %q for flag %s: parse error", raw, shown) end
  end
  if def.parse then
    local parsed, err = def.parse(v)
    if parsed == nil then return nil, string.format("invalid value %q for flag %s: %s", raw, shown, err) end
    v = parsed
  end
  return v
end

--- Parses args (array); returns values (key -> value, defaults filled),
--- positional args (array) and the set of keys given explicitly; or nil,
--- message on a flag error.
function Set:parse(args)
  local values, given, rest = {}, {}, {}
  for _, def in ipairs(self.order) do
    if def.default ~= nil then values[def.key] = def.default end
  end
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "--" then
      for j = i + 1, #args do rest[#rest + 1] = args[j] end
      break
    elseif a:sub(1, 1) == "-" and #a > 1 then
      local name, value = a:match("^%-%-?([^=]+)=(.*)$")
      if not name then name = a:match("^%-%-?(.+)$") end
      local shown = a:match("^(%-%-?[^=]+)")
      local def = self.by_name[name]
      if not def then return nil, "flag provided but not defined: " .. shown end
      if def.kind == "bool" then
        if value == nil then value = "true" end
      elseif value == nil then
        i = i + 1
        value = args[i]
        if value == nil then return nil, "flag needs an argument: " .. shown end
      end
      local v, err = convert(def, value, shown)
      if v == nil then return nil, err end
      values[def.key] = v
      given[def.key] = true
    else
      rest[#rest + 1] = a
    end
    i = i + 1
  end
  return values, rest, given
end

--- Help text for the options, one flag per paragraph.
function Set:usage()
  local lines = {}
  for _, def in ipairs(self.order) do
    local names = {}
    for _, n in ipairs(def.names) do
      names[#names + 1] = dashed(n) .. (def.kind ~= "bool" and (#n == 1 and " " or "=") .. "<value>" or "")
    end
    local d = ""
    if def.default ~= nil and def.default ~= false and def.default ~= "" then
      d = string.format(" (= %s)", tostring(def.default))
    end
    lines[#lines + 1] = table.concat(names, ", ") .. d
    lines[#lines + 1] = "    " .. (def.help or "")
  end
  return table.concat(lines, "\n")
end

return M
