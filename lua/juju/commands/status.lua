-- juju status: the environment's machines in Juju 1.x's format, read from
-- the state store the client can reach (the provider's state_info: the
-- local provider's SQLite file) or from a dump the provider fetches from
-- machine 0 (its state_dump: the manual provider runs `jujud state-dump`
-- over SSH). agent-state comes from the machine agent's heartbeat, judged
-- by the clock of the machine that reports it.
local yaml = require("juju.yaml")
local json = require("juju.json")
local envopen = require("juju.environs.open")

local M = {
  name = "status",
  args = "[options] [pattern ...]",
  purpose = "output status information about an environment",
  aliases = { "stat" },
}

function M.flags(fs)
  fs:add { names = { "e", "environment" }, help = "juju environment to operate in" }
  fs:add { names = { "format" }, default = "yaml", help = "specify output format (json|yaml)" }
  fs:add { names = { "o", "output" }, help = "specify an output file" }
end

function M.init(_, opts)
  if opts.format ~= "yaml" and opts.format ~= "json" then
    return string.format("invalid value %q for flag --format: unknown format %q", opts.format, opts.format)
  end
  return nil
end

--- The status document of a bootstrapped environment: table or nil, message.
M.collect = require("juju.environs.status").collect

function M.run(_, ctx, opts)
  local home, herr = ctx:juju_home()
  if not home then return nil, herr end
  local name, nerr = envopen.environment_name(ctx, home, opts.environment)
  if not name then return nil, nerr end
  local doc, err = M.collect(ctx, home, name)
  if not doc then return nil, err end
  local text = opts.format == "json" and (json.encode(doc) .. "\n") or yaml.encode(doc)
  if opts.output then
    local ok, werr = require("juju.fs").write_atomic(opts.output, text, tonumber("644", 8))
    if not ok then return nil, werr end
    return true
  end
  ctx:write_stdout(text)
  return true
end

return M
