-- juju.log: loggo-style logging with per-module levels, and the writers that
-- redact secrets from everything the engine prints.
--
-- Config syntax (as Juju's --logging-config): "<root>=WARNING;juju.environs=DEBUG".
local M = {}

M.levels = { TRACE = 1, DEBUG = 2, INFO = 3, WARNING = 4, ERROR = 5, CRITICAL = 6 }
local level_names = {}
for k, v in pairs(M.levels) do level_names[v] = k end

--- Parses a logging config; returns {["<root>"]=lvl, [module]=lvl} or nil, message.
function M.parse_config(spec)
  local out = { ["<root>"] = M.levels.WARNING }
  if spec == nil or spec == "" then return out end
  for item in spec:gmatch("[^;]+") do
    item = item:match("^%s*(.-)%s*$")
    if item ~= "" then
      local mod, lvl = item:match("^([^=]+)=(.+)$")
      if not mod then
        return nil, string.format("logger specification expected '=', found %q", item)
      end
      mod = mod:match("^%s*(.-)%s*$")
      local n = M.levels[lvl:upper():match("^%s*(.-)%s*$")]
      if not n then return nil, string.format("unknown severity level %q", lvl) end
      if mod == "" or mod == "root" then mod = "<root>" end
      out[mod] = n
    end
  end
  return out
end

function M.format_config(cfg)
  local keys = {}
  for k in pairs(cfg) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    if a == "<root>" then return b ~= "<root>" end
    if b == "<root>" then return false end
    return a < b
  end)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = k .. "=" .. level_names[cfg[k]] end
  return table.concat(parts, ";")
end

-- The effective level of a module: the most specific configured prefix.
local function effective_level(cfg, module)
  local m = module
  while m and m ~= "" do
    if cfg[m] then return cfg[m] end
    m = m:match("^(.*)%.[^.]*$")
  end
  return cfg["<root>"] or M.levels.WARNING
end

--- Replaces every registered secret in s (and any PEM private key block).
function M.redact(secrets, s)
  if s:find("PRIVATE KEY-----", 1, true) then
    s = s:gsub("%-%-%-%-%-BEGIN ([%u ]*)PRIVATE KEY%-%-%-%-%-.-%-%-%-%-%-END [%u ]*PRIVATE KEY%-%-%-%-%-",
      "[redacted private key]")
  end
  for _, secret in ipairs(secrets) do
    if #secret >= 6 then
      local i = 1
      while true do
        local a, b = s:find(secret, i, true)
        if not a then break end
        s = s:sub(1, a - 1) .. "[redacted]" .. s:sub(b + 1)
        i = a + #"[redacted]"
      end
    end
  end
  return s
end

local Logger = {}
Logger.__index = Logger

--- A logger writing through sink(line); opts: config (parsed), show_log (bool).
function M.new(sink, opts)
  opts = opts or {}
  return setmetatable({
    sink = sink,
    config = opts.config or M.parse_config(""),
    show_log = opts.show_log or false,
    clock = opts.clock or os.time,
  }, Logger)
end

function Logger:enabled(module, level)
  return level >= effective_level(self.config, module)
end

function Logger:log(module, level, fmt, ...)
  if not self:enabled(module, level) then return end
  local msg = select("#", ...) > 0 and string.format(fmt, ...) or fmt
  local line
  if self.show_log then
    local info = debug.getinfo(3, "Sl") -- 1 log, 2 the module view, 3 the caller
    local where = info and (info.short_src:match("[^/]*$") .. ":" .. (info.currentline or 0)) or "?"
    line = string.format("%s %s %s %s %s", os.date("!%Y-%m-%d %H:%M:%S", math.floor(self.clock())),
      level_names[level], module, where, msg)
  elseif level >= M.levels.WARNING then
    line = level_names[level] .. " " .. msg
  else
    return
  end
  self.sink(line .. "\n")
end

--- A module-scoped view: lg:debugf(...), lg:infof, lg:warningf, lg:errorf, lg:tracef.
function Logger:module(name)
  local parent = self
  local view = {}
  for lname, lvl in pairs(M.levels) do
    view[lname:lower() .. "f"] = function(_, fmt, ...) parent:log(name, lvl, fmt, ...) end
  end
  view.enabled = function(_, lvl) return parent:enabled(name, M.levels[lvl] or lvl) end
  return view
end

return M
