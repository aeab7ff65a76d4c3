-- juju.providers: finding, loading and checking provider scripts.
--
-- A provider is a Lua file returning a table that obeys the contract in
-- providers/CONTRACT.md. $JUJU_HOME/providers/NAME.lua is found before the
-- built-in providers/NAME.lua. Each script runs in its own _ENV (reads fall
-- through to the standard globals; writes stay private), and is checked at
-- load time: a missing field is an error naming the provider and the field.
local site = require("juju_site")
local fs = require("juju.fs")

local M = {}

M.API_VERSION = 1

-- The operations of the contract. Every one is listed here, so the fault
-- matrix and the scenario API can enumerate them at run time.
M.OPERATIONS = {
  { name = "prepare_for_bootstrap", required = true, doc = "(ctx, cfg) -> cfg: provider defaults, credential checks" },
  { name = "open", required = true, doc = "(ctx, cfg) -> env: a handle on the environment" },
  { name = "state_server_instances", required = true, doc = "(env) -> ids | nil, msg, \"NOT_BOOTSTRAPPED\"" },
  { name = "bootstrap", required = true, doc = "(env, params) -> {arch=, series=, finalize=fn} | nil, msg" },
  { name = "destroy", required = true, doc = "(env) -> true | nil, msg: remove every resource of the environment" },
  { name = "storage", required = true, doc = "(env) -> environ storage object" },
  { name = "validate_config", required = false, doc = "(ctx, cfg, old) -> cfg | nil, msg" },
  { name = "start_instance", required = false, doc = "(env, params) -> {instance=, hardware=} | nil, msg" },
  { name = "stop_instances", required = false, doc = "(env, ids) -> true | nil, msg" },
  { name = "instances", required = false, doc = "(env, ids) -> instances | nil, msg" },
  { name = "all_instances", required = false, doc = "(env) -> instances | nil, msg" },
  { name = "supported_architectures", required = false, doc = "(env) -> {arch...}" },
  { name = "constraints_validator", required = false, doc = "(env) -> constraints spec" },
  { name = "tools_sources", required = false, doc = "(env) -> {{url=, description=}...}" },
  { name = "wait_agent", required = false, doc = "(env, run) -> true: machine 0's agent reports" },
  { name = "state_dump", required = false,
    doc = "(env) -> {environment=, now=, machines=, instanceData=, presence=}: machine 0's status documents (juju status)" },
}

-- Provider type aliases (spec 3.1 rule 11).
M.ALIASES = { null = "manual" }

-- Providers this engine ships or plans; used by `juju init`.
M.BUILTIN = { "local", "manual", "ec2", "openstack", "azure", "joyent", "maas", "dummy" }

local function search_dirs(home)
  local dirs = {}
  if home then dirs[#dirs + 1] = home .. "/providers" end
  dirs[#dirs + 1] = site.providers_dir
  return dirs
end

--- Where the script of provider `name` is, or nil.
function M.find(home, name)
  for _, d in ipairs(search_dirs(home)) do
    local p = d .. "/" .. name .. ".lua"
    if fs.exists(p) then return p end
  end
  return nil
end

--- Checks a loaded provider table against the contract.
function M.check(p, name, path)
  local function fail(fmt, ...)
    return nil, string.format("provider %q (%s): " .. fmt, name, path, ...)
  end
  if type(p) ~= "table" then return fail("the script must return a table, got %s", type(p)) end
  if p.name ~= name then
    return fail("field \"name\" must be %q, got %s", name, p.name == nil and "nothing" or string.format("%q", tostring(p.name)))
  end
  if p.api_version ~= M.API_VERSION then
    return fail("field \"api_version\" must be %d, got %s", M.API_VERSION, tostring(p.api_version))
  end
  if type(p.config) ~= "table" or type(p.config.fields) ~= "table" then
    return fail("missing field \"config\" (a table with a \"fields\" table: the provider's config schema)")
  end
  for _, op in ipairs(M.OPERATIONS) do
    local f = p[op.name]
    if op.required and type(f) ~= "function" then
      return fail("missing required operation %q (a function %s)", op.name, op.doc)
    end
    if f ~= nil and type(f) ~= "function" then
      return fail("field %q must be a function, got %s", op.name, type(f))
    end
  end
  return p
end

--- Wraps every contract operation of p so that hook(name, args) runs first:
--- it may return nil, message[, code] to make the operation fail, or a table
--- {delay = seconds, sleep = fn}. This is where scenarios inject faults and
--- observe calls, whatever the provider.
function M.instrument(p, hook)
  local proxy = setmetatable({}, { __index = p })
  for _, op in ipairs(M.OPERATIONS) do
    local fn = p[op.name]
    if type(fn) == "function" then
      proxy[op.name] = function(...)
        local verdict, msg, code = hook(op.name, table.pack(...))
        if verdict == nil and msg then return nil, msg, code end
        if type(verdict) == "table" and verdict.delay and verdict.sleep then verdict.sleep(verdict.delay) end
        return fn(...)
      end
    end
  end
  return proxy
end

--- Loads provider `type_name` (aliases resolved) for JUJU_HOME home.
--- Returns the checked provider table, or nil, message.
function M.load(home, type_name)
  local name = M.ALIASES[type_name] or type_name
  if type(name) ~= "string" or not name:match("^[%w_-]+$") then
    return nil, string.format("no registered provider for %q", tostring(type_name))
  end
  local path = M.find(home, name)
  if not path then
    return nil, string.format("no registered provider for %q (looked for %s.lua in %s)", name, name,
      table.concat(search_dirs(home), " and "))
  end
  local env = setmetatable({}, { __index = _G })
  local chunk, err = loadfile(path, "t", env)
  if not chunk then return nil, string.format("provider %q: cannot load %s", name, err) end
  local ok, p = pcall(chunk)
  if not ok then return nil, string.format("provider %q: error running %s: %s", name, path, tostring(p)) end
  local checked, cerr = M.check(p, name, path)
  if not checked then return nil, cerr end
  p.path = path
  return p
end

return M
