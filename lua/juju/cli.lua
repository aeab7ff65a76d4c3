-- juju.cli: the juju command line. Parses the global and per-command flags
-- (global ones may also come before the command, as in Juju 1.25), sets up
-- logging, runs one command or a juju-NAME plugin from PATH, and turns the
-- outcome into Juju 1.x's exit codes: 0 success (and --help); 2 flag or
-- argument errors, printed as "error: ..."; 1 run-time failures, printed as
-- "ERROR ..."; a plugin's own exit code passed through.
local jfs = require("juju.lazy")("juju.fs") -- only for --log-file: `juju version` maps no fs.so
local flags = require("juju.flags")
local log = require("juju.log")
local context = require("juju.context")

local M = {}

M.COMMANDS = { "bootstrap", "destroy-environment", "ensure-availability", "help", "init", "lua", "status", "switch", "version" }

-- What `juju help commands` prints of each command, without loading its
-- module (issue 17.4); tests/spec/cli_spec.lua checks it against the
-- modules' own purpose and aliases.
M.SUMMARIES = {
  bootstrap = { purpose = "start up an environment from scratch" },
  ["destroy-environment"] = { purpose = "terminate all machines and other associated resources for an environment",
    aliases = { "destroy-env" } },
  ["ensure-availability"] = { purpose = "ensure the availability of Juju state servers" },
  help = { purpose = "show help on a command or other topic" },
  init = { purpose = "generate boilerplate configuration for juju environments", aliases = { "generate-config" } },
  lua = { purpose = "run a Lua script with the engine's modules (scenarios, tests)" },
  status = { purpose = "output status information about an environment", aliases = { "stat" } },
  switch = { purpose = "show or change the default juju environment name", aliases = { "env" } },
  version = { purpose = "print the current version" },
}

local aliases = {}
for name, s in pairs(M.SUMMARIES) do
  for _, a in ipairs(s.aliases or {}) do aliases[a] = name end
end

--- The command module of a command name or alias, or nil.
function M.load_command(name)
  name = aliases[name] or name
  if not M.SUMMARIES[name] then return nil end
  return require("juju.commands." .. name:gsub("%-", "_"))
end

-- juju/cmd's global flags (the help texts are 1.25's).
function M.add_global_flags(fs)
  fs:add { names = { "debug" }, kind = "bool", global = true,
    help = "equivalent to --show-log --log-config=<root>=DEBUG" }
  fs:add { names = { "h", "help" }, kind = "bool", global = true, help = "show help on a command or other topic" }
  fs:add { names = { "log-file" }, global = true, help = "path to write log to" }
  fs:add { names = { "logging-config" }, global = true, help = "specify log levels for modules" }
  fs:add { names = { "q", "quiet" }, kind = "bool", global = true, help = "show no informational output" }
  fs:add { names = { "show-log" }, kind = "bool", global = true, help = "if set, write the log file to stderr" }
  fs:add { names = { "v", "verbose" }, kind = "bool", global = true, help = "show more verbose output" }
end

function M.flagset(cmd)
  local fs = flags.new()
  if cmd.flags then cmd.flags(fs) end
  M.add_global_flags(fs)
  return fs
end

--- The help text of a command: only its own flags, sorted, in 1.25's style.
function M.command_help(cmd)
  local lines = {
    string.format("usage: juju %s %s", cmd.name, cmd.args or "[options]"),
    "purpose: " .. (cmd.purpose or ""),
  }
  local opts = M.flagset(cmd):usage { only_own = true }
  if opts ~= "" then
    lines[#lines + 1] = ""
    lines[#lines + 1] = "options:"
    lines[#lines + 1] = opts
  end
  if cmd.doc then lines[#lines + 1] = "\n" .. cmd.doc end
  if cmd.aliases then lines[#lines + 1] = "\naliases: " .. table.concat(cmd.aliases, ", ") end
  return table.concat(lines, "\n") .. "\n"
end

local function setup_logging(ctx, opts)
  local spec = opts["logging-config"] or ctx:getenv("JUJU_LOGGING_CONFIG")
  if opts.verbose and opts.quiet then
    return nil, "\"verbose\" and \"quiet\" flags clash, please use one or the other, not both"
  end
  local cfg, err = log.parse_config(spec)
  if not cfg then return nil, "invalid --logging-config: " .. err end
  -- 1.25: --show-log (and the deprecated -v) log at INFO, --debug at DEBUG.
  if opts.debug then
    cfg["<root>"] = log.levels.DEBUG
  elseif (opts["show-log"] or opts.verbose) and cfg["<root>"] > log.levels.INFO then
    cfg["<root>"] = log.levels.INFO
  end
  ctx.logger.config = cfg
  ctx.logger.show_log = (opts["show-log"] or opts.debug or opts.verbose) and true or false
  ctx.quiet = opts.quiet or false
  ctx.verbose = opts.verbose or false
  if opts["log-file"] then
    -- A log file this run creates is 0600 (issue 14.13: logs are the user's
    -- alone, even redacted); an existing one keeps the mode its owner gave it.
    if not jfs.exists(opts["log-file"]) then
      local okc, cerr = jfs.append_sync(opts["log-file"], "", tonumber("600", 8))
      if not okc then return nil, "cannot open log file: " .. tostring(cerr) end
    end
    local f, ferr = io.open(opts["log-file"], "a")
    if not f then return nil, "cannot open log file: " .. ferr end
    local old, show = ctx.logger.sink, ctx.logger.show_log
    ctx.logger.sink = function(line)
      f:write(log.redact(ctx.secrets, line)); f:flush()
      if show then old(line) end
    end
    ctx.logger.show_log = true
  end
  return true
end

-- Splits the global flags written before the command name off args:
-- returns the flags (as given), the command name and the rest; or nil,
-- message for a flag that is not global.
local function split_leading_flags(args)
  local gfs = flags.new()
  M.add_global_flags(gfs)
  local lead, i = {}, 1
  while args[i] and args[i]:sub(1, 1) == "-" and #args[i] > 1 do
    local a = args[i]
    if a == "--version" then break end
    local name, value = a:match("^%-%-?([^=]+)(=?)")
    local def = gfs.by_name[name]
    if not def then return nil, "flag provided but not defined: " .. a:match("^(%-%-?[^=]+)") end
    lead[#lead + 1] = a
    if def.kind ~= "bool" and value == "" then
      i = i + 1
      if args[i] == nil then return nil, "flag needs an argument: " .. a end
      lead[#lead + 1] = args[i]
    end
    i = i + 1
  end
  return lead, args[i], table.move(args, i + 1, #args, 1, {})
end

local function run_parsed(ctx, cmd, args)
  local fs = M.flagset(cmd)
  local opts, pos = fs:parse(args)
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
  local lg = ctx:log_for("juju.cmd")
  if lg:enabled("INFO") then lg:infof("running juju [%s]", require("juju.commands.version").client_binary()) end
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
    lg:debugf("%s", traceback or "")
    return 1
  end
  if res == nil and rerr ~= nil then
    ctx:write_stderr("ERROR " .. tostring(rerr) .. "\n")
    return 1
  end
  lg:infof("command finished")
  return type(res) == "number" and res or 0
end

-- Commands report flag and argument errors from init (exit 2) and run-time
-- failures as nil, message from run (exit 1).
--- Runs `juju <args>` in ctx; returns the exit code.
function M.run(ctx, args)
  local lead, name, rest = split_leading_flags(args)
  if not lead then
    ctx:write_stderr("error: " .. name .. "\n")
    return 2
  end
  if name == "--version" then name = "version" end
  if name == nil then
    -- `juju`, `juju --help`, `juju --debug`: the general help.
    name = "help"
    local kept = {}
    for _, a in ipairs(lead) do if a ~= "-h" and a ~= "--help" then kept[#kept + 1] = a end end
    lead = kept
  end
  local cmd = M.load_command(name)
  if not cmd then
    local plugins = require("juju.plugins")
    local path = plugins.find(ctx, name)
    if not path then
      ctx:write_stderr(string.format("ERROR unrecognized command: juju %s\n", name))
      return 1
    end
    return plugins.run(ctx, path, rest)
  end
  if cmd.raw_args then
    local ok, err = cmd.run(cmd, ctx, rest)
    if ok == nil and err then ctx:write_stderr("ERROR " .. tostring(err) .. "\n"); return 1 end
    return type(ok) == "number" and ok or 0
  end
  table.move(rest, 1, #rest, #lead + 1, lead)
  return run_parsed(ctx, cmd, lead)
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
