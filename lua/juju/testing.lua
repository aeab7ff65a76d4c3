-- juju.testing: the scenario API. A scenario is an isolated JUJU_HOME made
-- from a Lua table, in which `juju` commands run in-process (exit code,
-- stdout and stderr captured) on a virtual clock, with faults injected by
-- step ID or provider operation, and the dummy provider's world, operation
-- log, user-data and scripts open to inspection. See docs/scenarios.md.
local fs = require("juju.fs")
local sys = require("juju.sys")
local json = require("juju.json")
local yaml = require("juju.yaml")
local cli = require("juju.cli")
local context = require("juju.context")
local providers = require("juju.providers")
local bootstrap = require("juju.bootstrap")

local M = {}

--- The step IDs of the orchestrator and the provider contract's operations,
--- read at run time (a new step or operation shows up here by itself).
function M.step_ids() return bootstrap.step_ids() end
function M.operation_names()
  local out = {}
  for _, op in ipairs(providers.OPERATIONS) do out[#out + 1] = op.name end
  return out
end

--- A virtual clock: sleeping advances time instantly.
function M.virtual_clock(start)
  local t = start or 1700000000
  local mono = 0
  return {
    time = function() return t + mono end,
    monotonic = function() return mono end,
    sleep = function(s) mono = mono + (s or 0); return true end,
    advance = function(s) mono = mono + s end,
  }
end

local Scenario = {}
Scenario.__index = Scenario

-- Attribute values may refer to the scenario's root: "${root}" in a
-- string, or a function(root) returning the attributes.
local function with_root(attrs, root)
  if type(attrs) == "function" then attrs = attrs(root) end
  local out = {}
  for k, v in pairs(attrs) do
    out[k] = type(v) == "string" and (v:gsub("%${root}", function() return root end)) or v
  end
  return out
end

local function environments_yaml(spec, root)
  local doc = { environments = {} }
  for name, attrs in pairs(spec.environments or {}) do doc.environments[name] = with_root(attrs, root) end
  if spec.default then doc.default = spec.default end
  return yaml.encode(yaml.ordered(doc, { "default", "environments" }))
end

--- Creates a scenario. spec: environments (name -> attrs table), default,
--- files (relative path in JUJU_HOME -> content), env (extra variables),
--- real_clock (bool).
function M.new(spec)
  spec = spec or {}
  local root = assert(fs.mkdtemp("/tmp/juju-scenario-"))
  local self = setmetatable({
    root = root, home = root .. "/juju", faults = {}, observers = {}, called = {}, rendered = {},
    log_path = root .. "/dummy-ops.log",
  }, Scenario)
  assert(fs.mkdir_p(self.home, tonumber("700", 8)))
  assert(fs.mkdir_p(root .. "/user/.ssh", tonumber("700", 8)))
  self.env = { HOME = root .. "/user", JUJU_HOME = self.home, PATH = sys.getenv("PATH"),
    JUJU_DUMMY_LOG = self.log_path }
  for k, v in pairs(spec.env or {}) do self.env[k] = v end
  if spec.environments then
    assert(fs.write_atomic(self.home .. "/environments.yaml", environments_yaml(spec, root), tonumber("600", 8)))
  end
  for rel, content in pairs(spec.files or {}) do
    local path = self.home .. "/" .. rel
    assert(fs.mkdir_p(path:match("^(.*)/[^/]*$"), tonumber("700", 8)))
    assert(fs.write_atomic(path, content, tonumber("600", 8)))
  end
  self.clock = spec.real_clock and { time = sys.time, monotonic = sys.monotonic, sleep = sys.sleep }
    or M.virtual_clock()
  return self
end

function Scenario:hooks()
  local s = self
  return {
    step = function(id, phase, run)
      -- What the engine rendered for machine 0, whatever the provider.
      if phase == "after" and run and run.name then
        local r = s.rendered[run.name] or {}
        r.userdata, r.script = run.userdata or r.userdata, run.script or r.script
        r.instance = run.instance or r.instance
        s.rendered[run.name] = r
      end
      local f = s.faults["step:" .. id]
      if f and f.when == phase then
        -- A step timeout runs the real step against a deadline on the clock.
        if f.kind == "timeout" then return { timeout = f.seconds or 600 } end
        return s:apply(f)
      end
      return true
    end,
    op = function(name, args)
      s.called[#s.called + 1] = name
      local obs = s.observers[name]
      if obs then obs(table.unpack(args, 1, args.n)) end
      local f = s.faults["op:" .. name]
      if f then return s:apply(f) end
      return true
    end,
  }
end

-- Carries out one injected fault.
function Scenario:apply(f)
  if f.kind == "error" then return nil, f.message, "INJECTED" end
  if f.kind == "timeout" then
    self.clock.sleep(f.seconds or 600)
    return nil, string.format("timed out after %s (injected)", bootstrap.duration(f.seconds or 600)), "TIMEOUT"
  end
  if f.kind == "interrupt" then
    sys.raise(f.signal or "INT")
    return true
  end
  if f.kind == "delay" then
    self.clock.sleep(f.seconds)
    return true
  end
  if f.kind == "call" then return f.fn() end
  error("unknown fault kind " .. tostring(f.kind), 2)
end

--- Runs `juju args...` in-process; returns {code=, stdout=, stderr=}.
function Scenario:juju(...)
  local args = { ... }
  if type(args[1]) == "table" then args = args[1] end
  local out, err = {}, {}
  local stdin
  if self.stdin_text then
    local path = self.root .. "/stdin"
    assert(fs.write_atomic(path, self.stdin_text))
    stdin = assert(io.open(path))
  end
  local ctx = context.new {
    env = self.env, clock = self.clock, hooks = self:hooks(), stdin = stdin,
    stdout = function(s) out[#out + 1] = s end,
    stderr = function(s) err[#err + 1] = s end,
  }
  local code = cli.run(ctx, args)
  if stdin then stdin:close() end
  self.last = { code = code, stdout = table.concat(out), stderr = table.concat(err) }
  return self.last
end

--- Runs the real juju executable in this scenario's environment.
function Scenario:juju_process(args, opts)
  opts = opts or {}
  local exe = opts.exe or (require("juju_site").bin_dir .. "/juju")
  local argv = { exe }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  local env = {}
  for k, v in pairs(self.env) do env[k] = v end
  for k, v in pairs(opts.env or {}) do env[k] = v end
  if opts.spawn then return sys.spawn(argv, { env = env, stdout = "pipe", stderr = "pipe" }) end
  return sys.run(argv, { env = env, timeout = opts.timeout })
end

-- Faults ------------------------------------------------------------------

function Scenario:fail_step(id, message, when)
  self.faults["step:" .. id] = { kind = "error", message = message or ("injected failure at " .. id), when = when or "before" }
  return self
end
function Scenario:timeout_step(id, seconds)
  self.faults["step:" .. id] = { kind = "timeout", seconds = seconds, when = "before" }
  return self
end
function Scenario:interrupt_step(id, signal)
  self.faults["step:" .. id] = { kind = "interrupt", signal = signal, when = "after" }
  return self
end
function Scenario:fail_op(name, message)
  self.faults["op:" .. name] = { kind = "error", message = message or ("injected failure in " .. name) }
  return self
end
function Scenario:timeout_op(name, seconds)
  self.faults["op:" .. name] = { kind = "timeout", seconds = seconds }
  return self
end
function Scenario:interrupt_op(name, signal)
  self.faults["op:" .. name] = { kind = "interrupt", signal = signal }
  return self
end
function Scenario:delay_op(name, seconds)
  self.faults["op:" .. name] = { kind = "delay", seconds = seconds }
  return self
end
function Scenario:on_op(name, fn)
  self.observers[name] = fn
  return self
end
function Scenario:clear_faults()
  self.faults, self.observers, self.called = {}, {}, {}
  return self
end

-- Inspection --------------------------------------------------------------

--- The provider operations called through the orchestrator, in order.
function Scenario:operations_called() return self.called end

--- The dummy provider's operation log: array of {op=, args=, error=}.
function Scenario:ops()
  local text = fs.read_file(self.log_path)
  local out = {}
  for line in (text or ""):gmatch("[^\n]+") do out[#out + 1] = assert(json.decode(line)) end
  return out
end

--- The .jenv of an environment, parsed (nil when absent).
function Scenario:jenv(name)
  local text = fs.read_file(self.home .. "/environments/" .. name .. ".jenv")
  return text and yaml.decode(text) or nil
end

--- The dummy world directory of environment name (needs its .jenv or uuid).
function Scenario:world(name, uuid)
  if not uuid then
    local j = self:jenv(name)
    uuid = j and j["environ-uuid"]
  end
  if not uuid then return nil end
  return self.home .. "/dummy/" .. uuid
end

-- A world directory, or the world of the environment of that name.
function Scenario:resolve_world(world)
  if world and not world:match("^/") then return self:world(world) end
  return world or self:world(self:environment_names()[1])
end

function Scenario:environment_names()
  local out = {}
  for _, f in ipairs(fs.list(self.home .. "/environments") or {}) do
    local n = f:match("^(.+)%.jenv$")
    if n then out[#out + 1] = n end
  end
  return out
end

-- Opens a prepared environment of this scenario (any provider).
function Scenario:open_environment(name)
  name = name or self:environment_names()[1]
  local ctx = context.new { env = self.env, clock = self.clock, stdout = function() end, stderr = function() end }
  return require("juju.environs.open").open(ctx, self.home, name)
end

--- The instance ids of an environment, through the provider's
--- all_instances (any provider); a dummy world directory also works.
function Scenario:instances(name)
  if name and name:match("^/") then
    local out = {}
    for _, f in ipairs(fs.list(name .. "/instances") or {}) do out[#out + 1] = (f:gsub("%.yaml$", "")) end
    return out
  end
  local o, err = self:open_environment(name)
  if not o then
    if self:world(name or "") == nil then return {} end
    error(err, 2)
  end
  if not o.provider.all_instances then error("provider " .. o.provider.name .. " has no all_instances", 2) end
  local out = {}
  for _, inst in ipairs(assert(o.provider.all_instances(o.env))) do out[#out + 1] = inst.id end
  table.sort(out)
  return out
end

--- The phase-1 user-data and phase-2 script the engine rendered for
--- machine 0 of an environment (any provider), in this scenario.
--- (A dummy world directory, or a bootstrap run by juju_process, is read
--- from the dummy's world.)
local function rendered(self, name, what, dir)
  if name and name:match("^/") then return fs.read_file(name .. "/" .. dir .. "/dummy-0") end
  name = name or self:environment_names()[1] or next(self.rendered)
  local r = self.rendered[name]
  if r and r[what] then return r[what] end
  local world = name and self:world(name)
  return world and fs.read_file(world .. "/" .. dir .. "/dummy-0") or nil
end
function Scenario:userdata(name) return rendered(self, name, "userdata", "userdata") end
function Scenario:script(name) return rendered(self, name, "script", "scripts") end

--- A snapshot of JUJU_HOME (or dir): relative path -> "type mode size".
function Scenario:snapshot(dir)
  return (fs.tree_snapshot(dir or self.home))
end

--- Differences between two snapshots: array of "+ path", "- path", "~ path".
function M.diff(a, b)
  local out = {}
  for p, v in pairs(b) do
    if a[p] == nil then out[#out + 1] = "+ " .. p elseif a[p] ~= v then out[#out + 1] = "~ " .. p end
  end
  for p in pairs(a) do if b[p] == nil then out[#out + 1] = "- " .. p end end
  table.sort(out)
  return out
end

--- Destroys every environment the scenario prepared (stopping what they
--- started), then removes the scenario's directory.
function Scenario:close()
  if self.closed then return end
  self.closed = true
  self.faults, self.observers = {}, {}
  for _, name in ipairs(self:environment_names()) do
    pcall(self.juju, self, "destroy-environment", "-y", "--force", name)
  end
  fs.remove_tree(self.root)
end
Scenario.__close = Scenario.close

return M
