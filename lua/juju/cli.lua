-- juju.cli: the juju command line. Parses the global and per-command flags,
-- sets up logging, runs one command, and turns its outcome into Juju 1.x's
-- exit codes: 0 success (and --help); 2 flag or argument errors, printed as
-- "error: ..."; 1 run-time failures, printed as "ERROR ...".
local flags = require("juju.flags")
local log = require("juju.log")
local context = require("juju.context")

local M = {}

M.COMMANDS = { "bootstrap", "destroy-environment", "help", "init", "lua", "status", "switch", "version" }

local aliases = { ["generate-config"] = "init", env = "switch", ["destroy-env"] = "destroy-environment",
  stat = "status" }

function M.load_command(name)
  name = aliases[name] or name
  for _, c in ipairs(M.COMMANDS) do
    if c == name then return require("juju.commands." .. name:gsub("%-", "_")) end
  end
  return nil
end

local function add_global_flags(fs)
  fs:add { names = { "debug" }, kind = "bool", help = "equivalent to --show-log --logging-config=<root>=DEBUG" }
  fs:add { names = { "show-log" }, kind = "bool", help = "if set, write the log file to stderr" }
  fs:add { names = { "logging-config" }, help = "specify log levels for modules" }
  fs:add { names = { "log-file" }, help = "path to write log to" }
  fs:add { names = { "v", "verbose" }, kind = "bool", help = "show more verbose output" }
  fs:add { names = { "q", "quiet" }, kind = "bool", help = "show no informational output" }
  fs:add { names = { "h", "help" }, kind = "bool", help = "show help on a command or other topic" }
end

function M.flagset(cmd)
  local fs = flags.new()
  if cmd.flags then cmd.flags(fs) end
  add_global_flags(fs)
  return fs
end

--- The help text of a command.
function M.command_help(cmd)
  local lines = {
    string.format("usage: juju %s %s", cmd.name, cmd.args or "[options]"),
    "purpose: " .. (cmd.purpose or ""),
    "",
    "options:",
    M.flagset(cmd):usage(),
  }
  if cmd.doc then lines[#lines + 1] = "\n" .. cmd.doc end
  if cmd.aliases then lines[#lines + 1] = "\naliases: " .. table.concat(cmd.aliases, ", ") end
  return table.concat(lines, "\n") .. "\n"
end

local function setup_logging(ctx, opts)
  local spec = opts["logging-config"] or ctx:getenv("JUJU_LOGGING_CONFIG")
  if opts.debug then
    spec = "<root>=DEBUG"
    opts["show-log"] = true
  end
  local cfg, err = log.parse_config(spec)
  if not cfg then return nil, "invalid --logging-config: " .. err end
  ctx.logger.config = cfg
  ctx.logger.show_log = opts["show-log"] or false
  if opts.verbose and opts.quiet then
    return nil, "\"verbose\" and \"quiet\" flags clash, please use one or the other, not both"
  end
  ctx.quiet = opts.quiet or false
  ctx.verbose = opts.verbose or false
  if opts["log-file"] then
    local f, ferr = io.open(opts["log-file"], "a")
    if not f then return nil, "cannot open log file: " .. ferr end
    local old = ctx.logger.sink
    ctx.logger.sink = function(line)
      f:write(log.redact(ctx.secrets, line)); f:flush()
      if ctx.logger.show_log then old(line) end
    end
    ctx.logger.show_log = true
  end
  return true
end

-- Commands report flag and argument errors from init (exit 2) and run-time
-- failures as nil, message from run (exit 1).
--- Runs `juju <args>` in ctx; returns the exit code.
function M.run(ctx, args)
  local name = args[1]
  if name == nil or name == "--help" or name == "-h" then
    name = "help"
  end
  if name == "--version" then name = "version" end
  local cmd = M.load_command(name)
  if not cmd then
    if name:sub(1, 1) == "-" then
      ctx:write_stderr(string.format("error: flag provided but not defined: %s\n", name))
    else
      ctx:write_stderr(string.format("error: unrecognized command: juju %s\n", name))
    end
    return 2
  end
  local rest = table.move(args, 2, #args, 1, {})
  if cmd.raw_args then
    local ok, err = cmd.run(cmd, ctx, rest)
    if ok == nil and err then ctx:write_stderr("ERROR " .. tostring(err) .. "\n"); return 1 end
    return type(ok) == "number" and ok or 0
  end
  local fs = M.flagset(cmd)
  local opts, pos = fs:parse(rest)
  if not opts then
    ctx:write_stderr("error: " .. pos .. "\n")
    return 2
  end
  if opts.help then
    ctx:write_stdout(M.command_help(cmd))
    return 0
  end
  local ok, err = setup_logging(ctx, opts)
  if not ok then
    ctx:write_stderr("error: " .. err .. "\n")
    return 2
  end
  ctx:log_for("juju.cmd"):infof("running juju [%s]", require("juju.version").current and
    tostring(require("juju.version").current) or "?")
  if cmd.init then
    local ierr = cmd.init(cmd, opts, pos, ctx)
    if ierr then
      ctx:write_stderr("error: " .. tostring(ierr) .. "\n")
      return 2
    end
  elseif #pos > 0 then
    local quoted = {}
    for _, a in ipairs(pos) do quoted[#quoted + 1] = string.format("%q", a) end
    ctx:write_stderr(string.format("error: unrecognized args: [%s]\n", table.concat(quoted, " ")))
    return 2
  end
  local traceback
  local pok, res, rerr = xpcall(cmd.run, function(e)
    traceback = debug.traceback(tostring(e), 2)
    return e
  end, cmd, ctx, opts, pos)
  if not pok then
    ctx:write_stderr("ERROR internal error: " .. tostring(res) .. "\n")
    ctx:log_for("juju.cmd"):debugf("%s", traceback or "")
    return 1
  end
  if res == nil and rerr ~= nil then
    ctx:write_stderr("ERROR " .. tostring(rerr) .. "\n")
    return 1
  end
  return type(res) == "number" and res or 0
end

--- The process entry point (called by the C main).
function M.main(argv)
  local ctx = context.new()
  local args = {}
  for i = 1, #argv do args[i] = argv[i] end
  ctx.program = argv[0]
  return M.run(ctx, args)
end

return M
