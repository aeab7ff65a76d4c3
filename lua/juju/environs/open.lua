-- juju.environs.open: opening an environment through its provider, in one
-- place. `open` opens an environment that has a .jenv (bootstrap,
-- status, destroy-environment); `with_config` is the shared tail (the
-- provider context, validate_config, the provider's open) that prepare
-- also uses for a config it has just built.
local providers = require("juju.providers")
local context = require("juju.context")
local config = require("juju.environs.config")
local configstore = require("juju.environs.configstore")

local M = {}

--- The provider of an environment, or nil, Juju's message. With ctx, its
--- operations go through ctx.hooks.op (fault injection, observation).
function M.provider_for(home, name, type_name, ctx)
  local p, err = providers.load(home, type_name, { log = ctx and ctx:log_for("juju.environs") })
  if p and ctx and ctx.hooks and ctx.hooks.op then p = providers.instrument(p, ctx.hooks.op) end
  if not p then
    if err:match("^no registered provider") then
      return nil, string.format("environment %q has an unknown provider type %q\n"
        .. "Use one of: %s, or put a %s.lua (or %s/init.lua) provider script in %s/providers.",
        name, tostring(type_name), table.concat(providers.names(home), ", "), tostring(type_name),
        tostring(type_name), home)
    end
    return nil, err
  end
  return p
end

--- Opens environment `name` with an already built cfg: makes the provider
--- context, runs validate_config, then the provider's open. Returns
--- {provider, env, cfg, ctx} or nil, message.
function M.with_config(ctx, home, name, provider, cfg, opts)
  opts = opts or {}
  local pc = context.provider(ctx, { home = home, env_name = name, cfg = cfg, provider_name = provider.name,
    journal = opts.journal })
  if provider.validate_config then
    local valid, verr = provider.validate_config(pc, cfg)
    if not valid then return nil, string.format("invalid %q provider configuration: %s", provider.name, tostring(verr)) end
    if valid ~= cfg then
      cfg = valid
      pc.cfg = context.read_only(cfg)
    end
  end
  local env, oerr = provider.open(pc, pc.cfg)
  if not env then return nil, oerr end
  pc._open_storage = function() return provider.storage(env) end
  return { provider = provider, env = env, cfg = cfg, ctx = pc }
end

--- Opens a prepared environment (one with a .jenv). opts: store (an open
--- configstore), info (the .jenv already read). Returns {provider, env,
--- cfg, ctx, info, store} or nil, message, code.
function M.open(ctx, home, name, opts)
  opts = opts or {}
  local store = opts.store
  if not store then
    local serr
    store, serr = configstore.open(ctx, home)
    if not store then return nil, serr end
  end
  local info = opts.info
  if not info then
    local rerr, code
    info, rerr, code = store:read(name)
    if not info then return nil, rerr, code end
  end
  if info.empty or type(info["bootstrap-config"]) ~= "table" then
    return nil, string.format("environment has no bootstrap configuration data (%s)\n"
      .. "Remove it with: juju destroy-environment --force %s", store:path(name), name), "NO_CONFIG"
  end
  local bc = info["bootstrap-config"]
  local provider, perr = M.provider_for(home, name, bc.type, ctx)
  if not provider then return nil, perr, "PROVIDER" end
  local cfg, err = config.from_prepared(ctx, bc, { provider = provider, file = info.path })
  if not cfg then return nil, string.format("cannot parse bootstrap config: %s", err), "CONFIG" end
  config.register_secrets(ctx, cfg, provider)
  ctx:add_secret(info.password)
  local o, oerr = M.with_config(ctx, home, name, provider, cfg, opts)
  if not o then return nil, oerr, "OPEN" end
  o.info, o.store = info, store
  return o
end

--- Picks the environment name (spec step 1): the flag, JUJU_ENV, the
--- current-environment file or the default; nil, message when none.
function M.environment_name(ctx, home, flag)
  local environments = require("juju.environs.environments")
  local envs, err, code = environments.read(home)
  -- 1.25 reported a broken environments.yaml as such (environs.ReadEnvirons).
  if not envs and code ~= "ENOENT" then
    return nil, string.format("cannot parse %q: %s", home .. "/environments.yaml", err)
  end
  local name = environments.choose(ctx, home, flag, envs)
  if not name then return nil, "the name of the environment must be specified" end
  local ok, nerr = require("juju.environs.configstore").check_name(name)
  if not ok then return nil, nerr end
  return name
end

return M
