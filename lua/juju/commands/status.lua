-- juju status: the environment's machines in Juju 1.x's format, read from
-- the state store the client can reach (the provider's state_info: the
-- local provider's SQLite file) or from a dump the provider fetches from
-- machine 0 (its state_dump: the manual provider runs `jujud state-dump`
-- over SSH). agent-state comes from the machine agent's heartbeat, judged
-- by the clock of the machine that reports it.
local envopen = require("juju.environs.open")
local configstore = require("juju.environs.configstore")
local statusformat = require("juju.statusformat")

local M = {
  name = "status",
  args = "[options] [pattern ...]",
  purpose = "output status information about an environment",
  aliases = { "stat" },
}

function M.flags(fs)
  fs:add { names = { "e", "environment" }, help = "juju environment to operate in" }
  -- A formatter value, as 1.25's cmd.Output: shown `(= yaml)`, checked when parsed.
  fs:add { names = { "format" }, default = "yaml",
    help = "specify output format (json|line|oneline|short|summary|tabular|yaml)",
    parse = function(v)
      if statusformat.FORMATS[v] then return v end
      return nil, string.format("unknown format %q", v)
    end }
  fs:add { names = { "o", "output" }, help = "specify an output file" }
  fs:add { names = { "utc" }, kind = "bool", help = "display time as UTC in RFC3339 format" }
end

-- Patterns are accepted (and, with no services to filter, change nothing).
function M.init() return nil end

--- The status document of a bootstrapped environment: table or nil, message.
M.collect = require("juju.environs.status").collect

--- The provider type of a prepared environment (for 1.25's conventions).
function M.provider_type(ctx, home, name)
  local store_ = configstore.open(ctx, home)
  local info = store_ and store_:read(name)
  return info and type(info["bootstrap-config"]) == "table" and info["bootstrap-config"].type or nil
end

function M.run(_, ctx, opts)
  local home, herr = ctx:juju_home()
  if not home then return nil, herr end
  local name, nerr = envopen.environment_name(ctx, home, opts.environment)
  if not name then return nil, nerr end
  local doc, err = M.collect(ctx, home, name)
  if not doc then return nil, err end
  local text = statusformat.format(statusformat.normalize(doc, M.provider_type(ctx, home, name)), opts.format)
  if opts.output then
    local ok, werr = require("juju.fs").write_atomic(opts.output, text, tonumber("644", 8))
    if not ok then return nil, werr end
    return true
  end
  ctx:write_stdout(text)
  return true
end

return M
