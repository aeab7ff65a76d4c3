-- tests/provider_harness.lua: what the provider specs (ec2, openstack, maas)
-- do the same way around a cloud provider's contract operations: a fresh
-- environment and its provider context, the opened environment, the
-- start_instance parameters and the engine's intent-then-start.
local testing = require("juju.testing")
local context = require("juju.context")
local journal = require("juju.journal")
local crypto = require("juju.crypto")

local M = {}

M.HOST_PUB = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPHJ2k7Zd7p3zLKwZ0mG7lJmD3nJ7jL7mH3r1nJ8aP0m host"
M.USERDATA = "#cloud-config\nruncmd:\n- echo hello\n"

--- A harness for one provider. opts:
--   provider   the loaded provider module
--   name       the provider's name (the config's type)
--   prefix     the environments' name prefix (a counter follows)
--   home       the provider context's home directory
--   config     function(name) -> the base config (without name, type and uuid)
--   keep_false a set of keys whose false value is a value; any other key
--              given false in extra is removed from the config
--   series     the instance's series
--   uuid       function(env) -> the environment's uuid (default env.uuid)
--   state_tag  whether the instance carries juju-is-state
function M.new(opts)
  for _, k in ipairs({ "provider", "name", "prefix", "home", "config", "series" }) do
    if opts[k] == nil then error("provider_harness.new: missing " .. k, 2) end
  end
  local provider = opts.provider
  local keep_false = opts.keep_false or {}
  local uuid_of = opts.uuid or function(env) return env.uuid end
  local H = {}
  local counter = 0

  -- A fresh environment (its own name and uuid) and its provider context.
  function H.environment(extra, env_vars)
    counter = counter + 1
    local name = opts.prefix .. counter
    local cfg = opts.config(name)
    cfg.name, cfg.type, cfg.uuid = name, opts.name, crypto.uuid4()
    for k, v in pairs(extra or {}) do
      if v == false and not keep_false[k] then cfg[k] = nil else cfg[k] = v end
    end
    local lines = {}
    local ctx = context.new { clock = testing.virtual_clock(), env = env_vars or {},
      stdout = function() end, stderr = function(s) lines[#lines + 1] = s end }
    local j = journal.memory()
    local pc = context.provider(ctx, { home = opts.home, env_name = name, cfg = cfg, provider_name = opts.name,
      journal = j })
    return cfg, pc, j, lines
  end

  function H.opened(extra, env_vars)
    local cfg, pc, j, lines = H.environment(extra, env_vars)
    cfg = assert(provider.prepare_for_bootstrap(pc, cfg))
    local env = assert(provider.open(pc, cfg))
    pc._open_storage = function() return provider.storage(env) end
    return env, pc, j, cfg, lines
  end

  function H.start_params(env, extra)
    local uuid = uuid_of(env)
    local tags = { ["juju-env-uuid"] = uuid }
    if opts.state_tag then tags["juju-is-state"] = "true" end
    local p = {
      instance_config = { series = opts.series, machine_id = "0", nonce = "user-admin:bootstrap", tags = tags },
      userdata = M.USERDATA, tools = { { version = "1.25.6", series = opts.series, arch = "amd64" } },
      constraints = {}, name = "juju-" .. uuid .. "-machine-0",
      host_keys = { ed25519 = { public = M.HOST_PUB } },
    }
    for k, v in pairs(extra or {}) do p[k] = v end
    return p
  end

  local function intend(env, j, extra)
    local params = H.start_params(env, extra)
    assert(j:intent("instance", params.name))
    return params
  end

  -- What the engine does around start_instance: the intent first.
  function H.start(env, j, extra)
    local params = intend(env, j, extra)
    local inst, err, code = provider.start_instance(env, params)
    if inst then assert(j:record("instance", inst.id, { name = params.name })) end
    return inst, err, code
  end

  -- What the engine did when it "crashed" between starting the instance and
  -- recording its id: the intent only (by name); raises if the start fails.
  function H.start_unrecorded(env, j, extra)
    return assert(provider.start_instance(env, intend(env, j, extra)))
  end

  return H
end

return M
