-- juju.context: everything a command may touch of the outside world, in one
-- object: environment variables, output streams, the logger, the clock, the
-- secrets to redact. Commands never read os.getenv or write io.stderr
-- directly, so the scenario API can run them in-process with captured output
-- and an isolated JUJU_HOME.
local log = require("juju.log")
local sys = require("juju.sys")
-- juju.wait only when a provider waits: `juju version` and `juju help` never do.
local wait = require("juju.lazy")("juju.wait")

local M = {}

local Context = {}
Context.__index = Context

-- A stream that fails (a closed pipe: EPIPE, SIGPIPE being ignored) is
-- not written to again: the run goes on, silently on that stream (14.8).
local function file_writer(f)
  local closed = false
  return function(s)
    if closed then return end
    if not f:write(s) or not f:flush() then closed = true end
  end
end

--- opts: env (table, default: process environment), stdout, stderr (functions
--- taking a string), stdin (file), clock ({time=, monotonic=, sleep=}).
function M.new(opts)
  opts = opts or {}
  local self = setmetatable({
    env = opts.env or sys.environ(),
    raw_stdout = opts.stdout or file_writer(io.stdout),
    raw_stderr = opts.stderr or file_writer(io.stderr),
    stdin = opts.stdin or io.stdin,
    clock = opts.clock or { time = sys.time, monotonic = sys.monotonic, sleep = sys.sleep },
    secrets = {},
    quiet = false,
    verbose = false,
    hooks = opts.hooks or {},
  }, Context)
  self.logger = log.new(function(line) self:write_stderr(line) end, { clock = self.clock.time })
  return self
end

function Context:getenv(name)
  local v = self.env[name]
  if v == "" then return nil end
  return v
end

--- Registers a secret: it is redacted from all output from now on.
function Context:add_secret(s)
  if type(s) ~= "string" or #s < 6 then return end
  for _, x in ipairs(self.secrets) do if x == s then return end end
  self.secrets[#self.secrets + 1] = s
  -- Longest first, so a secret containing another is replaced whole.
  table.sort(self.secrets, function(a, b) return #a > #b end)
end

function Context:write_stdout(s) self.raw_stdout(log.redact(self.secrets, s)) end
function Context:write_stderr(s) self.raw_stderr(log.redact(self.secrets, s)) end

--- Prints a line of command output on stdout.
function Context:printf(fmt, ...)
  self:write_stdout(string.format(fmt, ...) .. "\n")
end

--- Progress ("Infof") line on stderr unless --quiet.
function Context:infof(fmt, ...)
  if self.quiet then return end
  self:write_stderr((select("#", ...) > 0 and string.format(fmt, ...) or fmt) .. "\n")
end

function Context:log_for(module)
  return self.logger:module(module)
end

--- JUJU_HOME: $JUJU_HOME, else $HOME/.juju.
function Context:juju_home()
  local h = self:getenv("JUJU_HOME")
  if h then
    return h
  end
  local home = self:getenv("HOME")
  if not home then
    return nil, "cannot determine juju home, required environment variables are not set"
  end
  return home .. "/.juju"
end

--- Expands a leading ~ with $HOME.
function Context:expand_home(path)
  if path:sub(1, 1) == "~" then
    local home = self:getenv("HOME") or sys.home_dir()
    return home .. path:sub(2)
  end
  return path
end

-- ------------------------------------------------------ provider context --

local ProviderContext = {}
ProviderContext.__index = ProviderContext

--- A read-only view of a config table: reads, pairs and # go to cfg;
--- writes raise (a provider changes its config only by returning it from
--- prepare_for_bootstrap or validate_config).
function M.read_only(cfg, what)
  return setmetatable({}, {
    __index = cfg,
    __newindex = function(_, k)
      error(string.format("%s is read-only (key %q): return a changed config from prepare_for_bootstrap "
        .. "or validate_config instead", what or "the provider config", tostring(k)), 2)
    end,
    __pairs = function() return next, cfg, nil end,
    __len = function() return #cfg end,
  })
end

--- The narrow context a provider's operations get (providers/CONTRACT.md):
--- home, env_name, clock, log, cfg (read-only), journal, storage(),
--- wait(), check_interrupt(), infof(), getenv(), environ, add_secret(),
--- expand_home(). ctx is the command's context; opts: home, env_name, cfg,
--- provider_name, journal.
function M.provider(ctx, opts)
  local self = setmetatable({
    home = opts.home, env_name = opts.env_name, clock = ctx.clock, environ = ctx.env,
    log = ctx:log_for("juju.provider." .. tostring(opts.provider_name or "provider")),
    cfg = opts.cfg and M.read_only(opts.cfg) or nil,
    journal = opts.journal or require("juju.journal").memory(),
    heartbeat = opts.heartbeat,
    _ctx = ctx,
  }, ProviderContext)
  return self
end

function ProviderContext:getenv(name) return self._ctx:getenv(name) end
function ProviderContext:infof(...) return self._ctx:infof(...) end
function ProviderContext:add_secret(s) return self._ctx:add_secret(s) end
function ProviderContext:expand_home(path) return self._ctx:expand_home(path) end
function ProviderContext:log_for(module) return self._ctx:log_for(module) end
function ProviderContext:juju_home() return self.home end

--- The environment's storage (the provider's storage operation, opened
--- once): storage or nil, message.
function ProviderContext:storage()
  if self._storage then return self._storage end
  if not self._open_storage then return nil, "the environment is not open yet" end
  local st, err = self._open_storage()
  if not st then return nil, err end
  self._storage = st
  return st
end

--- Raises the engine's interrupt failure when SIGINT/SIGTERM arrived
--- during a bootstrap; a no-op elsewhere.
function ProviderContext:check_interrupt()
  if self._check_interrupt then self._check_interrupt() end
end

--- A duration in Go's format (juju.wait's).
function M.duration(s) return wait.duration(s) end

--- Waits until poll() returns a true value, calling it every `interval`
--- seconds (default 1) up to `timeout` seconds, on the context's clock,
--- with a "Still waiting" line every heartbeat (10 s), through juju.wait's
--- poller. The engine may cut the wait short (a step deadline). poll may
--- return nil, err (kept as the last error) or false, err, code (stop).
--- Returns poll's value, or nil, message, "TIMEOUT".
function ProviderContext:wait(what, timeout, poll, interval)
  if type(poll) == "number" and type(interval) == "function" then poll, interval = interval, poll end
  if type(what) ~= "string" or type(timeout) ~= "number" or type(poll) ~= "function" then
    error("ctx:wait(what, timeout, poll[, interval])", 2)
  end
  return wait.poll {
    what = what, timeout = timeout, interval = interval or 1, clock = self.clock,
    poll = poll,
    heartbeat = self.heartbeat or wait.HEARTBEAT, deadline = self._deadline,
    say = function(line) self:infof("%s", line) end,
    check_interrupt = function() self:check_interrupt() end,
  }
end

return M
