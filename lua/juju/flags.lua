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

local function shown_default(def)
  if def.kind == "bool" then return string.format("  (= %s)", tostring(def.default or false)) end
  if def.kind == "int" then return string.format("  (= %s)", tostring(def.default or 0)) end
  if def.parse then return string.format("  (= %s)", def.default ~= nil and tostring(def.default) or "") end
  return string.format(" (= %q)", def.default ~= nil and tostring(def.default) or "")
end

local function sorted_names(def)
  local names = table.move(def.names, 1, #def.names, 1, {})
  table.sort(names, function(a, b)
    if #a ~= #b and (#a == 1 or #b == 1) then return #a < #b end
    return a < b
  end)
  return names
end

--- Help text for the options as gnuflag printed them in Juju 1.25: sorted
--- by name, aliases together, `(= "default")` for strings. opts.only_own
--- leaves out the global flags (declared with global = true).
function Set:usage(opts)
  opts = opts or {}
  local entries = {}
  for _, def in ipairs(self.order) do
    if not (opts.only_own and def.global) then
      local names = sorted_names(def)
      local shown = {}
      for i, n in ipairs(names) do shown[i] = dashed(n) end
      entries[#entries + 1] = { key = names[1], text = table.concat(shown, ", ") .. shown_default(def)
        .. "\n    " .. (def.help or "") }
    end
  end
  table.sort(entries, function(a, b) return a.key < b.key end)
  local lines = {}
  for _, e in ipairs(entries) do lines[#lines + 1] = e.text end
  return table.concat(lines, "\n")
end

return M
