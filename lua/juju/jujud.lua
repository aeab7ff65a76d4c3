-- juju.jujud: the machine agent's command line.
--   jujud version                       the binary version (FORCE-VERSION wins)
--   jujud bootstrap-state --params FILE turn this host into machine 0
--   jujud machine --machine-id 0        run the machine agent
--   jujud state-dump                    print machine 0's status documents (JSON)
local flags = require("juju.flags")
local context = require("juju.context")
local log = require("juju.log")

local M = {}

local agent_version = require("juju.agent.version")
M.version_number = agent_version.number
M.binary_version = agent_version.binary

local COMMANDS = {
  ["bootstrap-state"] = function() return require("juju.agent.bootstrap_state") end,
  machine = function() return require("juju.agent.machine") end,
  ["state-dump"] = function() return require("juju.agent.state_dump") end,
}

local function common_flags(fs_)
  fs_:add { names = { "data-dir" }, default = "/var/lib/juju", help = "directory for juju data" }
  fs_:add { names = { "show-log" }, kind = "bool", help = "write the log to stderr" }
  fs_:add { names = { "debug" }, kind = "bool", help = "debug logging to stderr" }
  fs_:add { names = { "logging-config" }, help = "log levels for modules" }
end

--- Runs `jujud args...` in ctx; returns the exit code.
function M.run(ctx, args)
  local name = args[1]
  if name == "version" or name == "--version" then
    ctx:write_stdout(M.binary_version() .. "\n")
    return 0
  end
  local loader = COMMANDS[name or ""]
  if not loader then
    ctx:write_stderr(string.format("error: unrecognized command: jujud %s\n", tostring(name)))
    return 2
  end
  local cmd = loader()
  local fs_ = flags.new()
  common_flags(fs_)
  cmd.flags(fs_)
  if args[2] == "--help" or args[2] == "-h" then
    ctx:write_stdout(string.format("Usage: jujud %s [options]\n\nOptions:\n%s\n", name, fs_:usage()))
    return 0
  end
  local opts, pos = fs_:parse(table.move(args, 2, #args, 1, {}))
  if not opts then
    ctx:write_stderr("error: " .. pos .. "\n")
    return 2
  end
  if #pos > 0 then
    ctx:write_stderr(string.format("error: unrecognized args: [%q]\n", pos[1]))
    return 2
  end
  local spec = opts["logging-config"] or (opts.debug and "<root>=DEBUG") or "<root>=INFO"
  ctx.logger.config = assert(log.parse_config(spec))
  ctx.logger.show_log = opts["show-log"] or opts.debug or false
  local uerr = cmd.validate and cmd.validate(opts)
  if uerr then
    ctx:write_stderr("error: " .. uerr .. "\n")
    return 2
  end
  local ok, res, err = xpcall(cmd.run, debug.traceback, ctx, opts)
  if not ok then
    ctx:write_stderr("ERROR internal error: " .. tostring(res) .. "\n")
    return 1
  end
  if not res then
    ctx:write_stderr("ERROR " .. tostring(err) .. "\n")
    return 1
  end
  return 0
end

--- The process entry point (called by the C main).
function M.main(argv)
  local ctx = context.new()
  local args = {}
  for i = 1, #argv do args[i] = argv[i] end
  return M.run(ctx, args)
end

return M
