-- juju bootstrap: flag validation (spec step 2), environment selection
-- (step 1), prepare (steps 3-4) and the "already bootstrapped?" check
-- (step 5); the rest of the sequence is lua/juju/bootstrap.
local constraints = require("juju.constraints")
local version = require("juju.version")
local environments = require("juju.environs.environments")

local M = {
  name = "bootstrap",
  args = "[options]",
  purpose = "start up an environment from scratch",
  doc = [[
bootstrap starts a new environment of the current type (it will return an
error if the environment has already been bootstrapped). Bootstrapping an
environment will provision a new machine in the environment and run the juju
state server on that machine.

If constraints are specified in the bootstrap command, they will apply to the
machine provisioned for the juju state server. They will also be set as
default constraints on the environment for all future machines, exactly as if
the constraints were set with juju set-constraints.

Bootstrap initializes the cloud environment synchronously and displays
information about the current installation steps. On failure, everything the
bootstrap created is destroyed unless --keep-broken is given.]],
}

local function parse_series_list(v)
  local out = {}
  for s in v:gmatch("[^,]+") do
    s = s:match("^%s*(.-)%s*$")
    if not version.valid_series_name(s) then return nil, string.format("invalid series name %q", s) end
    out[#out + 1] = s
  end
  return out
end

function M.flags(fs)
  fs:add { names = { "e", "environment" }, help = "juju environment to operate in" }
  fs:add { names = { "constraints" }, help = "set environment constraints", parse = constraints.parse }
  fs:add { names = { "upload-tools" }, kind = "bool", help = "upload local version of tools before bootstrapping" }
  fs:add { names = { "upload-series" }, help = "upload tools for supplied comma-separated series list (OBSOLETE)", parse = parse_series_list }
  fs:add { names = { "series" }, help = "see --upload-series (OBSOLETE)", parse = parse_series_list }
  fs:add { names = { "metadata-source" }, help = "local path to use as tools and/or metadata source" }
  fs:add { names = { "to" }, key = "placement", help = "a placement directive indicating an instance to bootstrap" }
  fs:add { names = { "keep-broken" }, kind = "bool", help = "do not destroy the environment if bootstrap fails" }
  fs:add { names = { "no-auto-upgrade" }, kind = "bool", help = "do not upgrade to newer tools on first bootstrap" }
  fs:add { names = { "agent-version" }, help = "the version of tools to initially use for Juju agents" }
end

--- Validates flag combinations (spec step 2, in order); returns a message
--- (exit 2) or nil, and fills opts.requested_version.
function M.init(_, opts, args)
  if opts["upload-series"] and not opts["upload-tools"] then return "--upload-series requires --upload-tools" end
  if opts.series and not opts["upload-tools"] then return "--series requires --upload-tools" end
  if opts["upload-series"] and opts.series then return "--upload-series and --series can't be used together" end
  if opts["agent-version"] and opts["upload-tools"] then return "--agent-version and --upload-tools can't be used together" end
  if opts["agent-version"] and opts["no-auto-upgrade"] then return "--agent-version and --no-auto-upgrade can't be used together" end
  if opts.placement and opts.placement:find(":", 1, true) then
    return string.format("unsupported bootstrap placement directive %q", opts.placement)
  end
  if opts["no-auto-upgrade"] then
    opts.requested_version = version.current
  elseif opts["agent-version"] then
    local b = version.parse_binary(opts["agent-version"])
    local n = b and b.number or version.parse(opts["agent-version"])
    if not n then return string.format("invalid version %q", opts["agent-version"]) end
    opts.requested_version = n
  end
  if opts.requested_version then
    local v = opts.requested_version
    if v.major ~= version.current.major or v.minor ~= version.current.minor then
      return "requested agent version major.minor mismatch"
    end
  end
  if #args > 0 then
    local q = {}
    for _, a in ipairs(args) do q[#q + 1] = string.format("%q", a) end
    return string.format("unrecognized args: [%s]", table.concat(q, " "))
  end
  return nil
end

--- Picks the environment name (step 1); nil, message when none.
M.environment_name = require("juju.environs.open").environment_name

function M.run(_, ctx, opts)
  if opts["upload-series"] then
    ctx:infof("Use of --upload-series is obsolete. --upload-tools now expands to all supported series of the same operating system.")
  elseif opts.series then
    ctx:infof("Use of --series is obsolete. --upload-tools now expands to all supported series of the same operating system.")
  end
  local home, herr = ctx:juju_home()
  if not home then return nil, herr end
  local name, nerr = M.environment_name(ctx, home, opts.environment)
  if not name then return nil, nerr end

  -- 1.25 made the bootstrapped environment current ("old -> new") before
  -- "Bootstrap complete".
  opts.on_bootstrapped = function() return M.make_current(ctx, home, name) end
  return require("juju.bootstrap").run(ctx, home, name, opts)
end

--- Makes name the current environment, printing "old -> name" (or
--- "-> name") as juju switch and 1.25's bootstrap did.
function M.make_current(ctx, home, name)
  local old = environments.read_current(home)
  if not old then
    local envs = environments.read(home)
    old = envs and envs.default
  end
  local ok, err = environments.write_current(home, name)
  if not ok then
    ctx:log_for("juju.cmd.juju"):warningf("cannot write current-environment: %s", tostring(err))
    return
  end
  if old then ctx:infof("%s -> %s", old, name) else ctx:infof("-> %s", name) end
end

return M
