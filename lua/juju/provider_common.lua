-- juju.provider_common: the common provider bootstrap (spec step 8), which
-- most providers use from their `bootstrap` operation: choose the series,
-- build machine 0's instance config, start the instance through the
-- provider's start_instance, record it in provider-state, and hand back a
-- finalizer that installs the agent (steps 10-11).
--
-- Host keys (W2): every bootstrap generates an ed25519 host key pair and
-- hands it to start_instance (params.host_keys = {ed25519 = {private=,
-- public=}}), which puts it into the phase-1 cloud-config
-- (cloudinit.userdata(icfg, {host_keys = ...})); the SSH finalizer
-- (juju.sshinit, the default `finish`) then accepts only that key.
local yaml = require("juju.yaml")
local sys = require("juju.sys")
local crypto = require("juju.crypto")
local version = require("juju.version")
local instancecfg = require("juju.instancecfg")
local sshinit = require("juju.sshinit")

local M = {}

M.PROVIDER_STATE = "provider-state"

--- The series of machine 0: default-series, else the series of the
--- available tools that matches this client, else the latest LTS.
function M.preferred_series(cfg, available)
  local s = cfg["default-series"]
  if s and s ~= "" then return s end
  local host = version.host_series(sys)
  for _, t in ipairs(available or {}) do
    if t.series == host then return host end
  end
  for _, t in ipairs(available or {}) do
    if t.series == version.latest_lts() then return t.series end
  end
  return (available and available[1] and available[1].series) or version.latest_lts()
end

--- Reads provider-state from storage: ids or nil, message, code.
function M.state_server_instances(storage)
  local text, err, code = storage:get(M.PROVIDER_STATE)
  if not text then
    if code == "ENOENT" then return nil, "environment is not bootstrapped", "NOT_BOOTSTRAPPED" end
    return nil, string.format("error reading %q: %s", M.PROVIDER_STATE, err)
  end
  local doc, perr = yaml.decode(text, M.PROVIDER_STATE)
  if doc == nil then return nil, string.format("error unmarshalling %q: %s", M.PROVIDER_STATE, perr) end
  local ids = type(doc) == "table" and doc["state-instances"] or nil
  if type(ids) ~= "table" or #ids == 0 then return nil, "instances not found", "NO_INSTANCES" end
  return ids
end

--- Adds an instance id to provider-state (read-modify-write; the bootstrap
--- lock serialises writers).
function M.record_state_instance(storage, id)
  local ids = M.state_server_instances(storage) or {}
  ids[#ids + 1] = id
  local text = yaml.encode(yaml.ordered({ ["state-instances"] = yaml.array(ids) }, { "state-instances" }))
  local ok, err = storage:put(M.PROVIDER_STATE, text)
  if not ok then return nil, "cannot record state instance-id: " .. err end
  return true
end

--- The parameters of machine 0's instance config: the provider's overrides
--- (hooks.instance_params: data_dir, service_name, switches...) over the
--- defaults, with the provider's default state store.
function M.instance_params(b, hooks, series)
  local p = { series = series, constraints = b.constraints, state_store = b.provider.default_state_store }
  for k, v in pairs(hooks.instance_params or {}) do p[k] = v end
  return p
end

--- A fresh ed25519 host key pair for machine 0, registered as a secret of
--- the run (its private half travels only in the phase-1 user-data):
--- {ed25519 = {private=, public=}}.
function M.new_host_keys(ctx)
  local pem, pub = crypto.ssh_keygen_ed25519("juju-bootstrap-host-key")
  if ctx and ctx.add_secret then ctx:add_secret(pem) end
  return { ed25519 = { private = pem, public = pub } }
end

--- The default finish: the SSH finalizer as user "ubuntu", accepting only
--- the host key generated for this bootstrap.
function M.ssh_finish(b, inst, icfg, script, extra)
  return sshinit.finish(b, inst, icfg, script, { host_key = extra and extra.host_key })
end

--- The common Bootstrap. b is the orchestrator's run (ctx, cfg, env,
--- provider, journal, op, params); hooks.finish(b, instance, icfg, script,
--- {host_key=}) installs the agent; without one the SSH finalizer
--- (M.ssh_finish) does, pinning the generated host key.
--- Returns {arch=, series=, instance=, hardware=, finalize=} or nil, message.
function M.bootstrap(b, hooks)
  local cfg = b.cfg
  local series = M.preferred_series(cfg, b.available)
  local tools = {}
  for _, t in ipairs(b.available) do if t.series == series then tools[#tools + 1] = t end end
  if #tools == 0 then return nil, "no matching tools available" end
  local iparams = M.instance_params(b, hooks, series)
  local icfg, ierr = instancecfg.new_bootstrap(cfg, iparams)
  if not icfg then return nil, ierr end
  local host_keys = M.new_host_keys(b.ctx)
  b.ctx:infof("Launching instance")
  local started, err = b:op("start_instance", {
    constraints = b.constraints, tools = tools, instance_config = icfg, placement = b.params.placement,
    host_keys = host_keys,
  })
  if not started then return nil, "cannot start bootstrap instance: " .. tostring(err) end
  local inst = started.instance
  local ok, jerr = b.journal:record({ kind = "instance", id = inst.id })
  if not ok then return nil, jerr end
  b.ctx:infof(" - %s", inst.id)
  local storage = b:storage()
  ok, err = M.record_state_instance(storage, inst.id)
  if not ok then return nil, err end
  ok, jerr = b.journal:record({ kind = "storage", id = M.PROVIDER_STATE })
  if not ok then return nil, jerr end
  local hw = started.hardware or {}
  local arch = hw.arch or tools[1].arch
  return {
    arch = arch, series = series, instance = inst, hardware = hw, nonce = icfg.nonce,
    instance_params = iparams,
    host_key = host_keys.ed25519.public,
    finalize = function(fb, ficfg, script)
      return (hooks.finish or M.ssh_finish)(fb, inst, ficfg, script, { host_key = host_keys.ed25519.public })
    end,
  }
end

return M
