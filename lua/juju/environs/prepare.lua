-- juju.environs.prepare: choosing and preparing an environment (spec steps 3-4).
--
-- Prepare generates what the environment lacks (admin-secret, CA, UUID),
-- runs the provider's prepare hook, and writes the .jenv exclusively. A
-- second prepare that loses the race gets "environment info already exists".
local crypto = require("juju.crypto")
local yaml = require("juju.yaml")
local context = require("juju.context")
local environments = require("juju.environs.environments")
local config = require("juju.environs.config")
local configstore = require("juju.environs.configstore")
local envopen = require("juju.environs.open")

local M = {}

M.NO_ENVIRONMENTS_HELP = table.concat({
  "No juju environment configuration file exists.",
  "%s",
  "Please create a configuration by running:",
  "    juju init",
  "then edit the file to configure your juju environment.",
  "You can then re-run the command.",
}, "\n")

local function present(v) return v ~= nil and v ~= yaml.null and v ~= "" end

--- Reads environments.yaml; nil, message (with Juju's help text when absent).
function M.read_environments(home)
  local envs, err, code = environments.read(home)
  if not envs then
    if code == "ENOENT" then return nil, string.format(M.NO_ENVIRONMENTS_HELP, err), code end
    return nil, err, code
  end
  return envs
end

M.provider_for = envopen.provider_for

-- Opens an environment that already has a .jenv: its bootstrap-config wins.
local function open_prepared(ctx, home, store, name, info)
  if not info.empty and type(info["bootstrap-config"]) == "table" then
    ctx:log_for("juju.environs"):warningf("ignoring environments.yaml: using bootstrap config in file %q", info.path)
  end
  local o, err = envopen.open(ctx, home, name, { store = store, info = info })
  if not o then return nil, err end
  o.existed = true
  return o
end

--- The entry of environment `name` in environments.yaml: envs, attrs, marks,
--- or nil, message, code ("ENOENT" when the file or the entry is missing).
function M.find_environment(home, name)
  local envs, err, code = M.read_environments(home)
  if not envs then return nil, err, code end
  local attrs, marks = envs:attrs(name)
  if not attrs then return nil, string.format("environment %q not found in %s", name, envs.path), "ENOENT" end
  return envs, attrs, marks
end

--- Builds the configuration of environment `name` from environments.yaml
--- without preparing it: provider, cfg, or nil, message.
function M.config_for_name(ctx, home, name)
  local envs, attrs, marks = M.find_environment(home, name)
  if not envs then return nil, attrs end
  if not present(attrs.type) then
    return nil, string.format("%s: environment %q has no type", envs:where(name), name)
  end
  local provider, perr = M.provider_for(home, name, attrs.type == "null" and "manual" or attrs.type, ctx)
  if not provider then return nil, perr end
  local cfg, cerr = config.from_environments(ctx, attrs, marks, {
    provider = provider, file = envs.path, home = home, with_keys = true,
  })
  if not cfg then return nil, cerr end
  for _, w in ipairs(cerr or {}) do ctx:log_for("juju.environs.config"):warningf("%s", w) end
  config.register_secrets(ctx, cfg, provider)
  return provider, cfg
end

--- Prepares environment `name`: returns a table {provider, env, cfg, ctx
--- (the provider context), info, existed, store} or nil, message.
function M.prepare(ctx, home, name)
  local store, serr = configstore.open(ctx, home)
  if not store then return nil, serr end
  local info, rerr, rcode
  do
    local lock <close>, lerr = store:lock("reading")
    if not lock then return nil, lerr end
    info, rerr, rcode = store:read(name)
  end
  if info then return open_prepared(ctx, home, store, name, info) end
  if rcode ~= "ENOENT" then return nil, rerr end

  local provider, cfg = M.config_for_name(ctx, home, name)
  if not provider then return nil, cfg end
  if not present(cfg["admin-secret"]) then
    cfg["admin-secret"] = crypto.admin_secret()
    ctx:add_secret(cfg["admin-secret"])
  end
  if present(cfg["ca-cert"]) and not present(cfg["ca-private-key"]) then
    return nil, "cannot ensure CA certificate: environment configuration with a certificate but no CA private key"
  end
  if not present(cfg["ca-cert"]) then
    local cert, key = crypto.new_ca(name)
    if not cert then return nil, "cannot ensure CA certificate: " .. tostring(key) end
    cfg["ca-cert"], cfg["ca-private-key"] = cert, key
    ctx:add_secret(key)
  end
  if not present(cfg.uuid) then cfg.uuid = crypto.uuid4() end

  local pc = context.provider(ctx, { home = home, env_name = name, cfg = cfg, provider_name = provider.name })
  local prepared, perr = provider.prepare_for_bootstrap(pc, cfg)
  if not prepared then return nil, perr end
  cfg = prepared
  config.register_secrets(ctx, cfg, provider)
  local o, oerr = envopen.with_config(ctx, home, name, provider, cfg)
  if not o then return nil, oerr end
  cfg = o.cfg

  info = {
    user = "admin", password = cfg["admin-secret"], ["environ-uuid"] = cfg.uuid,
    ["state-servers"] = {}, ["ca-cert"] = cfg["ca-cert"], ["bootstrap-config"] = cfg,
  }
  do
    local lock <close>, lerr = store:lock("writing")
    if not lock then return nil, lerr end
    local ok, cerr = store:create(name, info)
    if not ok then return nil, cerr end
  end
  info.path = store:path(name)
  o.info, o.existed, o.store = info, false, store
  return o
end

return M
