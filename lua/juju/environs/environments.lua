-- juju.environs.environments: reading environments.yaml (spec 2.1) and
-- choosing an environment (spec step 1; users-and-cli 2.3). Loading and
-- listing never needs the providers: an unknown type matters only on use.
local yaml = require("juju.yaml")
local fs = require("juju.fs")

local M = {}

local Environs = {}
Environs.__index = Environs

local function position(marks, tbl, key)
  local m = marks and marks[tbl] and marks[tbl][key]
  if m then return string.format(":%d:%d", m.line, m.column) end
  return ""
end

--- Parses environments.yaml text; path names it in messages.
function M.parse(text, path)
  local doc, marks = yaml.decode(text, path, { marks = true })
  if doc == nil then
    return nil, string.format("%s\nFix the YAML syntax of %s and try again.", marks, path)
  end
  if doc == yaml.null then doc = {} end
  if type(doc) ~= "table" or yaml.is_array(doc) then
    return nil, string.format("%s: expected a mapping with an \"environments\" key", path)
  end
  local envs = doc.environments
  if envs == nil or envs == yaml.null then envs = {} end
  if type(envs) ~= "table" or (yaml.is_array(envs) and #envs > 0) then
    return nil, string.format("%s%s: \"environments\" must be a mapping of environment names to settings",
      path, position(marks, doc, "environments"))
  end
  local self = setmetatable({ path = path, raw = envs, marks = marks, entries = {} }, Environs)
  for name, attrs in pairs(envs) do
    if type(name) ~= "string" then name = tostring(name) end
    if attrs == yaml.null then attrs = {} end
    if type(attrs) ~= "table" or (yaml.is_array(attrs) and #attrs > 0) then
      return nil, string.format("%s%s: environment %q: expected a mapping of settings, got %s", path,
        position(marks, envs, name), name, type(attrs) == "table" and "a list" or type(attrs))
    end
    self.entries[name] = attrs
  end
  local default = doc.default
  if default ~= nil and default ~= yaml.null then
    default = tostring(default)
    if not self.entries[default] then
      return nil, string.format("%s%s: default environment %q does not exist", path,
        position(marks, doc, "default"), default)
    end
    self.default = default
  end
  return self
end

--- Reads JUJU_HOME/environments.yaml; returns Environs, or nil, message, code
--- (code "ENOENT" when the file does not exist).
function M.read(home)
  local path = home .. "/environments.yaml"
  -- Regular files only, bounded: /dev/zero or a FIFO is an error, not a hang.
  local text, err, code = fs.read_file(path, { max_size = 16 * 1024 * 1024 })
  if not text then return nil, err, code end
  return M.parse(text, path)
end

function Environs:names()
  local out = {}
  for n in pairs(self.entries) do out[#out + 1] = n end
  table.sort(out)
  return out
end

--- The raw attributes of one environment (a copy, with `name` injected),
--- plus the marks table for the returned copy (for positions in errors).
function Environs:attrs(name)
  local e = self.entries[name]
  if not e then return nil end
  local copy, marks = {}, {}
  local m = self.marks and self.marks[e]
  for k, v in pairs(e) do copy[k] = v end
  copy.name = name
  -- "type: null" (the manual provider's old name) reads as a YAML null.
  if copy.type == yaml.null then copy.type = "null" end
  marks[copy] = m
  return copy, marks
end

--- Where the entry for name starts ("path:line:col"), for messages.
function Environs:where(name)
  return self.path .. position(self.marks, self.raw, name)
end

--- The environment name to use (spec step 1): -e, JUJU_ENV, current-environment,
--- default:, the only one. Returns name, source ("flag", "JUJU_ENV", "current",
--- "default", "only") or nil.
function M.choose(ctx, home, flag_name, environs)
  if flag_name and flag_name ~= "" then return flag_name, "flag" end
  local e = ctx:getenv("JUJU_ENV")
  if e then return e, "JUJU_ENV" end
  local cur = M.read_current(home)
  if cur then return cur, "current" end
  if environs then
    if environs.default then return environs.default, "default" end
    local names = environs:names()
    if #names == 1 then return names[1], "only" end
  end
  return nil
end

function M.read_current(home)
  local text = fs.read_file(home .. "/current-environment", { max_size = 64 * 1024 })
  if not text then return nil end
  text = text:match("^%s*(.-)%s*$")
  if text == "" then return nil end
  return text
end

--- Writes current-environment (durably), unless it already says exactly
--- that with its mode: every bootstrap makes its environment current, and
--- an unchanged file costs no rewrite and no fsyncs (issue 17.3).
function M.write_current(home, name)
  local path = home .. "/current-environment"
  local st = fs.lstat(path)
  if st and st.type == "file" and st.mode == tonumber("644", 8)
    and fs.read_file(path, { max_size = 64 * 1024 }) == name .. "\n" then
    return true
  end
  return fs.write_atomic(path, name .. "\n", tonumber("644", 8))
end

return M
