-- juju.context: everything a command may touch of the outside world, in one
-- object: environment variables, output streams, the logger, the clock, the
-- secrets to redact. Commands never read os.getenv or write io.stderr
-- directly, so the scenario API can run them in-process with captured output
-- and an isolated JUJU_HOME.
local log = require("juju.log")
local sys = require("juju.sys")

local M = {}

local Context = {}
Context.__index = Context

local function file_writer(f)
  return function(s) f:write(s); f:flush() end
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

return M
