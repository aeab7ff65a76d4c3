-- juju help [TOPIC]: Juju 1.25's help: the basics, one command's help, the
-- topics (commands, global-options, glossary, constraints, placement,
-- plugins, providers, NAME-provider from each provider's own description)
-- and a plugin's own --help.
local M = { name = "help", args = "[topic]", purpose = "show help on a command or other topic" }

local function providers_of(ctx)
  return require("juju.provider_list").available(ctx:juju_home())
end

local function provider_lines(ctx)
  local list, longest = providers_of(ctx), 0
  for _, p in ipairs(list) do longest = math.max(longest, #p.name + #"-provider") end
  local out = {}
  for _, p in ipairs(list) do
    out[#out + 1] = string.format("  juju help %-" .. longest .. "s  %s", p.name .. "-provider", p.description or "")
  end
  return table.concat(out, "\n")
end

local function basics(ctx)
  return [[
Juju -- devops distilled
https://juju.ubuntu.com/

juju provides easy, intelligent service orchestration on top of cloud
infrastructure providers such as Amazon EC2, OpenStack, MAAS, or your
local machine. This engine implements `juju bootstrap` and the commands
around it, with providers written as Lua scripts.

Basic commands:
  juju init             generate boilerplate configuration for juju environments
  juju bootstrap        start up an environment from scratch
  juju status           display the current status of an environment
  juju switch           show or change the default juju environment name
  juju destroy-environment NAME   terminate all machines and other associated resources

  juju help bootstrap   more help on e.g. bootstrap command
  juju help commands    list all commands
  juju help glossary    glossary of terms
  juju help topics      list all help topics

Provider information:
]] .. provider_lines(ctx) .. "\n"
end

local function commands_topic()
  local cli = require("juju.cli")
  local rows = {}
  for _, name in ipairs(cli.COMMANDS) do
    local cmd = cli.SUMMARIES[name]
    rows[#rows + 1] = { name, cmd.purpose or "" }
    for _, a in ipairs(cmd.aliases or {}) do rows[#rows + 1] = { a, string.format("alias for '%s'", name) } end
  end
  table.sort(rows, function(a, b) return a[1] < b[1] end)
  local longest = 0
  for _, r in ipairs(rows) do longest = math.max(longest, #r[1]) end
  local out = {}
  for _, r in ipairs(rows) do out[#out + 1] = string.format("%-" .. longest .. "s  %s", r[1], r[2]) end
  return table.concat(out, "\n") .. "\n"
end

local function global_options()
  local flags = require("juju.flags")
  local fs = flags.new()
  require("juju.cli").add_global_flags(fs)
  return "Global Options\n\nThese options may be used with any command, and may appear in front of any\ncommand.\n\n"
    .. fs:usage() .. "\n"
end

local GLOSSARY = [[
Juju glossary

bootstrap
    To boot the first machine of an environment and start its state
    server, so that the environment can be managed.

constraints
    Requirements (memory, cores, architecture, ...) a machine must meet;
    see `juju help constraints`.

environment
    A configured place to run juju: a provider type plus its settings,
    named in environments.yaml; prepared into environments/NAME.jenv.

machine
    A computer (instance, container or existing host) the environment
    manages; machine 0 runs the state server.

provider
    The code that talks to one kind of cloud or host. Here a Lua script:
    built in, or yours in $JUJU_HOME/providers.

state server
    The machine agent on machine 0 that holds the environment's state
    and serves its API.

tools
    The juju agent binaries (jujud) a machine runs, chosen by version,
    series and architecture.
]]

local CONSTRAINTS = [[
Constraints

Constraints say what a machine must have; `juju bootstrap --constraints`
applies them to machine 0 and keeps them as the environment's defaults.
They are written as space-separated key=value pairs:

    juju bootstrap --constraints "mem=4G cpu-cores=2 arch=amd64"

arch          architecture: amd64, i386, armhf, arm64, ppc64el, s390x
container     the container type the machine must be (lxc, kvm)
cpu-cores     the minimum number of effective cores
cpu-power     the minimum abstract CPU power (100 is one core of a
              2007-era server)
instance-type a provider-specific instance type name
mem           the minimum memory: a number with an optional M, G, T or P
              suffix (megabytes by default)
root-disk     the minimum root disk size, as mem
tags          comma-separated tags the machine must have (MAAS)
spaces        comma-separated network spaces; ^space excludes one
networks      comma-separated networks; ^net excludes one

A key given with no value (mem=) clears that constraint.
]]

local PLACEMENT = [[
Placement directives

A placement directive tells bootstrap where machine 0 must be, with
--to. What it may say depends on the provider: a MAAS node name
(--to node1.maas), an availability zone (--to zone=us-east-1a), ...
Bootstrap refuses directives naming machines or containers (lxc:0).
]]

local TOPICS = {
  { "basics", "Basic commands" },
  { "commands", "Basic help for all commands" },
  { "constraints", "How to use commands with constraints" },
  { "global-options", "Options common to all commands" },
  { "glossary", "Glossary of terms" },
  { "placement", "How to use placement directives" },
  { "plugins", "Show Juju plugins" },
  { "providers", "The providers this engine has" },
  { "topics", "Topic list" },
}

local function all_topics(ctx)
  local rows = {}
  for _, t in ipairs(TOPICS) do rows[#rows + 1] = t end
  for _, p in ipairs(providers_of(ctx)) do
    rows[#rows + 1] = { p.name .. "-provider", p.description or ("the " .. p.name .. " provider") }
  end
  table.sort(rows, function(a, b) return a[1] < b[1] end)
  return rows
end

local function topics_topic(ctx)
  local rows, longest = all_topics(ctx), 0
  for _, r in ipairs(rows) do longest = math.max(longest, #r[1]) end
  local out = {}
  for _, r in ipairs(rows) do out[#out + 1] = string.format("%-" .. longest .. "s  %s", r[1], r[2]) end
  return table.concat(out, "\n") .. "\n"
end

local function provider_topic(ctx, name)
  for _, p in ipairs(providers_of(ctx)) do
    if p.name == name then
      local p_full = require("juju.providers").load(ctx:juju_home(), name)
      local out = { string.format("The %s provider: %s", name, p.description or ""), "",
        string.format("In environments.yaml:  type: %s", name) }
      local fields = p_full and p_full.config and p_full.config.fields or {}
      local keys = {}
      for k in pairs(fields) do keys[#keys + 1] = k end
      table.sort(keys)
      if #keys > 0 then out[#out + 1] = "\nSettings:" end
      for _, k in ipairs(keys) do
        local f = fields[k]
        local d = f.default ~= nil and string.format(" (default %s)", tostring(f.default)) or ""
        out[#out + 1] = string.format("  %s%s\n      %s", k, d, f.description or "")
      end
      return table.concat(out, "\n") .. "\n"
    end
  end
  return nil
end

local function providers_topic(ctx)
  local list, longest = providers_of(ctx), 0
  for _, p in ipairs(list) do longest = math.max(longest, #p.name) end
  local out = { "Providers (see juju help NAME-provider):", "" }
  for _, p in ipairs(list) do out[#out + 1] = string.format("%-" .. longest .. "s  %s", p.name, p.description or "") end
  return table.concat(out, "\n") .. "\n"
end

function M.init(_, _, args)
  if #args > 1 then return "unrecognized args: [\"" .. table.concat(args, "\" \"", 2) .. "\"]" end
  return nil
end

--- The text of a topic, or nil.
function M.topic(ctx, topic)
  if topic == nil or topic == "basics" then return basics(ctx) end
  if topic == "commands" then return commands_topic() end
  if topic == "topics" then return topics_topic(ctx) end
  if topic == "global-options" then return global_options() end
  if topic == "glossary" then return GLOSSARY end
  if topic == "constraints" then return CONSTRAINTS end
  if topic == "placement" then return PLACEMENT end
  if topic == "plugins" then return require("juju.plugins").help_topic(ctx) end
  if topic == "providers" then return providers_topic(ctx) end
  local pname = topic:match("^(.+)%-provider$")
  if pname then return provider_topic(ctx, pname) end
  return nil
end

function M.run(_, ctx, _, args)
  local cli = require("juju.cli")
  local topic = args[1]
  local cmd = topic and cli.load_command(topic)
  if cmd then
    ctx:write_stdout(cli.command_help(cmd))
    return true
  end
  local text = M.topic(ctx, topic)
  if text then
    ctx:write_stdout(text)
    return true
  end
  local plugins = require("juju.plugins")
  local path = plugins.find(ctx, topic)
  if path then return plugins.run(ctx, path, { "--help" }) end
  return nil, string.format("unknown command or topic for %s", topic)
end

return M
