-- juju help [COMMAND]: general help or one command's help.
local M = { name = "help", args = "[topic]", purpose = "show help on a command or other topic" }

M.BANNER = [[
juju provides easy, intelligent service orchestration on top of cloud
infrastructure providers such as Amazon EC2, OpenStack, MAAS, or your
local machine. This engine implements `juju bootstrap` and the commands
around it, with providers written as Lua scripts.

Basic commands:
  juju init             generate boilerplate configuration for juju environments
  juju bootstrap        start up an environment from scratch
  juju status           display the current status of an environment
  juju destroy-environment NAME   terminate all machines and other associated resources

]]

function M.init(_, _, args)
  if #args > 1 then return "unrecognized args: [\"" .. table.concat(args, "\" \"", 2) .. "\"]" end
  return nil
end

function M.run(_, ctx, _, args)
  local cli = require("juju.cli")
  local topic = args[1]
  if topic and topic ~= "commands" and topic ~= "topics" then
    local cmd = cli.load_command(topic)
    if not cmd then return nil, string.format("unknown command or topic for %s", topic) end
    ctx:write_stdout(cli.command_help(cmd))
    return true
  end
  local out = { topic == nil and M.BANNER or "" }
  for _, name in ipairs(cli.COMMANDS) do
    local cmd = cli.load_command(name)
    out[#out + 1] = string.format("%-20s %s", name, cmd.purpose or "")
  end
  ctx:write_stdout(table.concat(out, "\n") .. "\n")
  return true
end

return M
