-- juju destroy-environment NAME: destroys an environment through its
-- provider, then its .jenv.
local configstore = require("juju.environs.configstore")
local teardown = require("juju.environs.teardown")

local M = {
  name = "destroy-environment",
  args = "[options] <environment name>",
  purpose = "terminate all machines and other associated resources for an environment",
  aliases = { "destroy-env" },
  doc = "Destroys everything the environment owns, then removes its .jenv.\n"
    .. "--force removes the .jenv even when the provider cannot be reached or loaded.",
}

function M.flags(fs)
  fs:add { names = { "y", "yes" }, kind = "bool", key = "yes", help = "Do not ask for confirmation" }
  fs:add { names = { "force" }, kind = "bool", help = "Forcefully destroy the environment, directly through the environment provider" }
  fs:add { names = { "e", "environment" }, help = "juju environment to operate in" }
end

function M.init(_, opts, args, ctx)
  if opts.environment then
    ctx:log_for("juju.cmd.juju"):warningf("-e/--environment flag is deprecated in 1.18, "
      .. "please supply environment as a positional parameter")
    if #args > 0 then return "you cannot supply both -e and the envname as a positional argument" end
  end
  local name = args[1] or opts.environment
  if not name then return "no environment specified" end
  if #args > 1 then
    local q = {}
    for i = 2, #args do q[#q + 1] = string.format("%q", args[i]) end
    return string.format("unrecognized args: [%s]", table.concat(q, " "))
  end
  opts.name = name
  return nil
end

local function confirm(ctx, name, type_name)
  ctx:write_stdout(string.format("WARNING! this command will destroy the %q environment (type: %s)\n"
    .. "This includes all machines, services, data and other resources.\n\nContinue [y/N]? ", name, type_name))
  local line = ctx.stdin:read("l")
  return line and (line:lower() == "y" or line:lower() == "yes")
end

--- Destroys environment `name` (the command's work; a failed bootstrap
--- cleans up through juju.environs.teardown). Returns true or nil, message.
function M.destroy(ctx, home, name, force)
  -- Before any file is touched: "../x" must not reach JUJU_HOME/../x.jenv.
  local okn, nerr = configstore.check_name(name)
  if not okn then return nil, nerr end
  local store, serr = configstore.open(ctx, home)
  if not store then return nil, serr end
  local info, rerr, code = store:read(name)
  if not info then
    if code == "ENOENT" then
      return nil, string.format("cannot read environment info: environment %q not found", name), code
    end
    if not force then return nil, rerr .. "\nUse --force to remove it anyway." end
    ctx:log_for("juju.cmd"):warningf("%s; removing it (--force)", rerr)
  end
  -- Not while a bootstrap (or another destroy) of it runs (issue 14.4).
  local envlock <close>, eerr = store:env_lock(name, "destroy-environment")
  if not envlock then return nil, eerr end
  -- (--force on an unreadable .jenv: nothing to ask the provider.)
  if info and type(info["bootstrap-config"]) == "table" then
    local ok, derr = teardown.destroy_prepared(ctx, home, name, store, info)
    if not ok then
      if not force then
        return nil, string.format("cannot destroy environment %q: %s\nUse --force to remove its .jenv anyway.", name, tostring(derr))
      end
      ctx:log_for("juju.cmd"):warningf("cannot destroy through the provider: %s; removing the .jenv (--force)", tostring(derr))
    end
  end
  local lock <close>, lerr = store:lock("destroying")
  if not lock then return nil, lerr end
  local ok, err = store:remove(name)
  if not ok then return nil, err end
  lock:release()
  -- What the environment learned about its hosts goes with it; @revoked and
  -- hand-written lines stay (issue 14.3).
  require("juju.sshinit").forget_learned_host_keys(home, name)
  -- The environment is gone: so is its lock file (issue 14.12).
  envlock:remove()
  return true
end

function M.run(_, ctx, opts)
  local home, herr = ctx:juju_home()
  if not home then return nil, herr end
  local name = opts.name
  local okn, nerr = configstore.check_name(name)
  if not okn then return nil, nerr end
  if not opts.yes then
    local store = configstore.open(ctx, home)
    local info = store and store:read(name)
    local t = info and info["bootstrap-config"] and info["bootstrap-config"].type or "unknown"
    if not confirm(ctx, name, t) then return nil, "environment destruction aborted" end
  end
  local ok, err, code = M.destroy(ctx, home, name, opts.force)
  if not ok then return nil, err, code end
  return true
end

return M
