-- juju.providers: finding, loading and checking provider scripts.
--
-- A provider is a Lua script returning a table that obeys the contract in
-- providers/CONTRACT.md: a file NAME.lua, or a folder NAME/init.lua with
-- private modules beside it (required as "NAME.module", resolved inside the
-- folder only). $JUJU_HOME/providers/ is searched before the built-in
-- providers/. Each script runs in its own _ENV (reads fall through to the
-- standard globals; writes stay private), and is checked like a schema at
-- load time: a missing, mistyped, unknown or misspelt key is an error that
-- names the provider, its file and the key, with the nearest valid name.
local provider_list = require("juju.provider_list")
local fs = require("juju.fs")
local sys = require("juju.sys")

local M = {}

M.API_VERSION = 2

-- The operations of the contract, every one called by the engine. The fault
-- matrix and the scenario API enumerate this list at run time, so a new
-- operation gets covered by adding it here.
M.OPERATIONS = {
  { name = "prepare_for_bootstrap", required = true,
    doc = "(ctx, cfg) -> cfg: provider defaults, generated secrets, credential checks" },
  { name = "validate_config", required = false, doc = "(ctx, cfg) -> cfg | nil, msg: checks every opened config" },
  { name = "open", required = true, doc = "(ctx, cfg) -> env: a handle on the environment" },
  { name = "storage", required = true, doc = "(env) -> environ storage object" },
  { name = "state_server_instances", required = true, doc = "(env) -> ids | nil, msg, \"NOT_BOOTSTRAPPED\"" },
  { name = "constraints_validator", required = false, doc = "(env) -> constraints spec" },
  { name = "tools_sources", required = false, doc = "(env) -> {{url=, description=}...}" },
  { name = "instance_defaults", required = false,
    doc = "(env, {machine_id=}) -> {data_dir=, log_dir=, ...}: a state server's instance config overrides" },
  { name = "start_instance", required = true,
    doc = "(env, {instance_config=, userdata=, tools=, constraints=, placement=, host_keys=, name=, machine_id=}) -> Instance" },
  { name = "finalize", required = false,
    doc = "(env, instance, {instance_config=, script=, host_key=}) -> true: runs phase 2 (default: over SSH)" },
  { name = "wait_agent", required = false, doc = "(env, instance) -> true: machine 0's agent reports" },
  { name = "all_instances", required = false, doc = "(env) -> Instances tagged with the environment UUID" },
  { name = "release", required = false, doc = "(env, resource) -> true: removes one journaled resource" },
  { name = "destroy", required = true, doc = "(env) -> true | nil, msg: remove every resource of the environment" },
  { name = "state_info", required = false, doc = "(env) -> {kind=, path=...}: a state store this client opens" },
  { name = "state_dump", required = false,
    doc = "(env) -> {environment=, now=, machines=, instanceData=, presence=}: machine 0's status documents" },
  { name = "state_server_address", required = false,
    doc = "(env, instance, machine_id) -> \"host:port\": where that state server's Dqlite node listens" },
}

-- Declared (non-operation) fields: key -> {type, required, check}.
local STORES = { sqlite = true, mongodb = true, dqlite = true }
M.FIELDS = {
  name = { type = "string", required = true },
  api_version = { type = "number", required = true },
  description = { type = "string" },
  config = { type = "table", required = true },
  default_state_store = { type = "string", values = { "sqlite", "mongodb", "dqlite" } },
  constraints = { type = "table" },
  boilerplate = { type = "string" },
  public_tools = { type = "boolean" },
  force_upload_tools = { type = "boolean" },
  destroy_removes_storage = { type = "boolean" },
  internal = { type = "table" },
}
M.DEFAULT_STATE_STORE = "mongodb"

-- The keys of one config field definition and their types.
M.FIELD_KEYS = {
  type = "string", values = "table", default = "any", fillin = "any", required = "boolean", secret = "boolean",
  immutable = "boolean", allow_empty = "boolean", description = "string", group = "string",
}
local FIELD_TYPES = { string = true, bool = true, int = true, attrs = true, list = true }
local CONSTRAINT_KEYS = { unsupported = "table", conflicts = "table", vocab = "table" }

-- What contract version 1 had that version 2 does not.
local V1_NAMES = {
  bootstrap = "the engine now builds the instance config and calls start_instance itself",
  stop_instances = "journaled resources are removed one at a time by release(env, resource)",
  instances = "use all_instances (instances tagged with the environment UUID)",
  supported_architectures = "it was never called: the tools found decide the architecture",
}

M.V1_MESSAGE = "is written for provider contract version 1; this engine speaks version 2.\n"
  .. "What changed: operations get a narrow provider context (ctx.home, ctx.env_name, ctx.clock, ctx.log, "
  .. "ctx.cfg, ctx.journal, ctx:storage(), ctx:wait(), ctx:check_interrupt()) instead of the orchestrator's run; "
  .. "`bootstrap(env, params)` is gone: the engine builds machine 0's instance config and user-data once and calls "
  .. "start_instance(env, {instance_config, userdata, tools, constraints, placement, host_keys}), which returns an "
  .. "Instance {id, status, addresses = {{value, type, scope}}, ssh_port, hardware}; a custom phase 2 is "
  .. "`finalize(env, instance, {instance_config, script, host_key})`; `stop_instances` became "
  .. "release(env, resource); state_info and state_dump are contract operations.\n"
  .. "Set api_version = 2 after updating the script (see providers/CONTRACT.md)."

-- Provider type aliases (spec 3.1 rule 11).
M.ALIASES = { null = "manual" }

-- Providers this engine ships or plans; used by `juju init`.
M.BUILTIN = { "local", "manual", "ec2", "openstack", "azure", "joyent", "maas", "dummy" }

local search_dirs = provider_list.search_dirs

--- Where the script of provider `name` is (NAME.lua, else NAME/init.lua,
--- in $JUJU_HOME/providers then the built-in folder), or nil.
M.find = provider_list.find

--- Every provider that exists: {{name=, description=, boilerplate=, path=,
--- error=}...} sorted by name; a user's provider hides a built-in one of
--- the same name. A provider that does not load has error set. Runs every
--- script: juju.provider_list lists them cheaply.
function M.list(home)
  local out = {}
  for _, s in ipairs(provider_list.scripts(home)) do
    local p, err = M.load(home, s.name)
    out[#out + 1] = { name = s.name, path = p and p.path or s.path,
      description = p and p.description or "", boilerplate = p and p.boilerplate or nil, error = err }
  end
  return out
end

--- The names of the providers that exist (for messages).
function M.names(home)
  local out = {}
  for _, e in ipairs(M.list(home)) do out[#out + 1] = e.name end
  return out
end

-- Levenshtein distance, for "did you mean".
local function distance(a, b)
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = { [0] = i }
    for j = 1, #b do
      local cost = a:sub(i, i) == b:sub(j, j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev = cur
  end
  return prev[#b]
end

--- The candidate nearest to word, or nil when none is close.
function M.nearest(word, candidates)
  local best, best_d
  for _, c in ipairs(candidates) do
    local d = distance(word, c)
    if not best_d or d < best_d or (d == best_d and c < best) then best, best_d = c, d end
  end
  if best and best_d <= math.max(2, #word // 3) then return best end
  return nil
end

local function suggestion(word, candidates)
  local n = M.nearest(word, candidates)
  return n and string.format(" (did you mean %s?)", n) or ""
end

local function top_level_names()
  local out = {}
  for k in pairs(M.FIELDS) do out[#out + 1] = k end
  for _, op in ipairs(M.OPERATIONS) do out[#out + 1] = op.name end
  table.sort(out)
  return out
end

local function sorted_keys(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = k end
  table.sort(out)
  return out
end

local function check_field_def(fail, key, def)
  if type(key) ~= "string" then return fail("config.fields: a field name must be a string, got %s", type(key)) end
  if type(def) ~= "table" then
    return fail("config field %q: the definition must be a table, got %s", key, type(def))
  end
  local names = sorted_keys(M.FIELD_KEYS)
  for _, k in ipairs(sorted_keys(def)) do
    local want = M.FIELD_KEYS[k]
    if not want then
      return fail("config field %q: unknown key %q%s", key, tostring(k), suggestion(tostring(k), names))
    end
    if want ~= "any" and type(def[k]) ~= want then
      return fail("config field %q: key %q must be a %s, got %s", key, k, want, type(def[k]))
    end
  end
  if def.type == nil then return fail("config field %q: missing key \"type\" (string, bool, int, attrs or list)", key) end
  if not FIELD_TYPES[def.type] then
    return fail("config field %q: type %q is not one of string, bool, int, attrs, list%s", key, def.type,
      suggestion(def.type, sorted_keys(FIELD_TYPES)))
  end
  if def.group ~= nil and def.group ~= "environ" and def.group ~= "juju" then
    return fail("config field %q: group must be \"environ\" or \"juju\", got %q", key, def.group)
  end
  return true
end

--- Checks a loaded provider table against the contract, like a schema.
--- Returns p, or nil, message naming the provider, its file and the key.
function M.check(p, name, path)
  local function fail(fmt, ...)
    return nil, string.format("provider %q (%s): " .. fmt, name, path, ...)
  end
  if type(p) ~= "table" then return fail("the script must return a table, got %s", type(p)) end
  if p.api_version == 1 then return nil, string.format("provider %q (%s) %s", name, path, M.V1_MESSAGE) end
  if p.api_version ~= M.API_VERSION then
    return fail("field \"api_version\" must be %d, got %s", M.API_VERSION, tostring(p.api_version))
  end
  if p.name ~= name then
    return fail("field \"name\" must be %q, got %s", name, p.name == nil and "nothing" or string.format("%q", tostring(p.name)))
  end
  local ops = {}
  for _, op in ipairs(M.OPERATIONS) do ops[op.name] = op end
  local all = top_level_names()
  for _, k in ipairs(sorted_keys(p)) do
    if type(k) ~= "string" then return fail("unknown key %s", tostring(k)) end
    -- UPPER_CASE keys are the provider's own constants.
    if not M.FIELDS[k] and not ops[k] and not k:match("^[A-Z][A-Z0-9_]*$") then
      if V1_NAMES[k] then
        return fail("%q is not an operation of contract version 2: %s", k, V1_NAMES[k])
      end
      local near = M.nearest(k, all)
      local near_v1 = M.nearest(k, sorted_keys(V1_NAMES))
      if near_v1 and (not near or distance(k, near_v1) < distance(k, near)) then
        return fail("unknown key %q (did you mean %s? it is not in contract version 2: %s)", k, near_v1,
          V1_NAMES[near_v1])
      end
      return fail("unknown key %q%s (private values go in the \"internal\" table or in UPPER_CASE constants)",
        k, near and string.format(" (did you mean %s?)", near) or "")
    end
  end
  for _, k in ipairs(sorted_keys(M.FIELDS)) do
    local spec, v = M.FIELDS[k], p[k]
    if v == nil then
      if spec.required then
        if k == "config" then
          return fail("missing field \"config\" (a table with a \"fields\" table: the provider's config schema)")
        end
        return fail("missing field %q (a %s)", k, spec.type)
      end
    elseif type(v) ~= spec.type then
      return fail("field %q must be a %s, got %s", k, spec.type, type(v))
    end
  end
  if p.default_state_store ~= nil and not STORES[p.default_state_store] then
    return fail("field \"default_state_store\" must be \"sqlite\", \"mongodb\" or \"dqlite\", got %q%s",
      p.default_state_store, suggestion(p.default_state_store, { "dqlite", "mongodb", "sqlite" }))
  end
  for _, k in ipairs(sorted_keys(p.config)) do
    if k ~= "fields" then return fail("config: unknown key %q%s", tostring(k), suggestion(tostring(k), { "fields" })) end
  end
  if type(p.config.fields) ~= "table" then
    return fail("missing field \"config\" (a table with a \"fields\" table: the provider's config schema)")
  end
  for _, key in ipairs(sorted_keys(p.config.fields)) do
    local ok, err = check_field_def(fail, key, p.config.fields[key])
    if not ok then return nil, err end
  end
  for _, k in ipairs(sorted_keys(p.constraints or {})) do
    local want = CONSTRAINT_KEYS[k]
    if not want then
      return fail("constraints: unknown key %q%s", tostring(k), suggestion(tostring(k), sorted_keys(CONSTRAINT_KEYS)))
    end
    if type(p.constraints[k]) ~= want then
      return fail("constraints: key %q must be a %s, got %s", k, want, type(p.constraints[k]))
    end
  end
  for _, op in ipairs(M.OPERATIONS) do
    local f = p[op.name]
    if op.required and f == nil then
      return fail("missing required operation %q (a function %s)", op.name, op.doc)
    end
    if f ~= nil and type(f) ~= "function" then
      return fail("field %q must be a function, got %s", op.name, type(f))
    end
  end
  return p
end

--- The default state store of a provider.
function M.default_state_store(p) return p.default_state_store or M.DEFAULT_STATE_STORE end

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

-- A require for the script's private modules: "NAME.x" is NAME/x.lua in
-- the provider's folder, loaded into the same _ENV; anything else is the
-- global require (engine libraries).
local function private_require(name, dir, env)
  local loaded = {}
  return function(mod)
    local rel = type(mod) == "string" and mod:match("^" .. name:gsub("%-", "%%-") .. "%.(.+)$")
    if not rel or not dir then return require(mod) end
    if loaded[rel] == nil then
      local file = dir .. "/" .. rel:gsub("%.", "/") .. ".lua"
      local chunk, err = loadfile(file, "t", env)
      if not chunk then error(string.format("provider %q: cannot load module %q: %s", name, mod, err), 2) end
      local v = chunk(mod)
      loaded[rel] = v == nil and true or v
    end
    return loaded[rel]
  end
end

-- Built-in provider scripts run from bytecode kept in
-- $JUJU_HOME/cache/bytecode (issue 17.4: compiling dummy.lua is a tenth of
-- a warm dummy bootstrap's Lua): one file per script, a header line with the
-- engine version, the script's path and its size and mtime, then
-- string.dump of the compiled chunk (debug information kept: errors and
-- tracebacks name the script's file and lines). A script edited since (its
-- size or mtime changed) is compiled from its text again and the cache
-- rewritten; a cache that does not load is ignored. $JUJU_HOME/providers
-- scripts are always loaded as text. The file is a cache: written without
-- fsync, a torn one only costs a compile.
M.BYTECODE_DIR = "cache/bytecode"

local function bytecode_header(path, st)
  return string.format("juju-provider-bytecode %s %s %d:%.17g\n", require("juju_site").version, path, st.size,
    st.mtime)
end

--- The compiled chunk of script `path` with _ENV env, from cache_file when
--- it holds this script as it is now, else compiled from the text (and
--- cache_file rewritten). cache_file nil: text only. Returns chunk or nil, message.
function M.load_chunk(path, env, cache_file)
  local st = cache_file and fs.stat(path)
  if not st then return loadfile(path, "t", env) end
  local header = bytecode_header(path, st)
  local cached = fs.read_file(cache_file)
  if cached and cached:sub(1, #header) == header then
    local chunk = load(cached:sub(#header + 1), "@" .. path, "b", env)
    if chunk then return chunk end
  end
  local chunk, err = loadfile(path, "t", env)
  if not chunk then return nil, err end
  local dir = cache_file:match("^(.*)/[^/]*$")
  if dir and fs.mkdir_p(dir, tonumber("700", 8)) then
    local tmp = string.format("%s.%d.tmp", cache_file, sys.getpid())
    local f = io.open(tmp, "wb")
    if f then
      local ok = f:write(header, string.dump(chunk))
      ok = f:close() and ok
      if not (ok and os.rename(tmp, cache_file)) then os.remove(tmp) end
    end
  end
  return chunk
end

-- The bytecode cache file of a built-in script, or nil (not built in, no
-- JUJU_HOME).
local function bytecode_file(home, path)
  local builtin = require("juju_site").providers_dir
  if not home or path:sub(1, #builtin + 1) ~= builtin .. "/" then return nil end
  local rel = path:sub(#builtin + 2):gsub("/", "%%")
  return string.format("%s/%s/%s", home, M.BYTECODE_DIR, rel)
end

--- Loads provider `type_name` (aliases resolved) for JUJU_HOME home.
--- Returns the checked provider table, or nil, message. opts.log (a
--- logger) gets a debug line naming the file loaded.
function M.load(home, type_name, opts)
  local name = M.ALIASES[type_name] or type_name
  if type(name) ~= "string" or not name:match("^[%w_-]+$") then
    return nil, string.format("no registered provider for %q", tostring(type_name))
  end
  local path = M.find(home, name)
  if not path then
    return nil, string.format("no registered provider for %q (looked for %s.lua and %s/init.lua in %s)", name, name,
      name, table.concat(search_dirs(home), " and "))
  end
  local env = setmetatable({}, { __index = _G })
  local dir = path:match("^(.*)/init%.lua$")
  env.require = private_require(name, dir, env)
  local chunk, err = M.load_chunk(path, env, bytecode_file(home, path))
  if not chunk then return nil, string.format("provider %q: cannot load %s", name, err) end
  local ok, p = pcall(chunk)
  if not ok then return nil, string.format("provider %q: error running %s: %s", name, path, tostring(p)) end
  local checked, cerr = M.check(p, name, path)
  if not checked then return nil, cerr end
  if opts and opts.log then opts.log:debugf("provider %q loaded from %s", name, path) end
  p.path = path -- set after the check: the engine's, not the script's
  return p
end

return M
