-- juju.provider_common: helpers the engine and providers share: machine
-- 0's series, provider-state (the state server instance ids in environ
-- storage), machine 0's generated host keys, typed addresses.
--
-- Host keys (W2): every bootstrap generates an ed25519 host key pair; the
-- engine renders it into the phase-1 user-data it hands start_instance,
-- and the SSH finalizer (juju.sshinit) then accepts only that key.
local yaml = require("juju.yaml")
local sys = require("juju.sys")
local crypto = require("juju.lazy")("juju.crypto")
local version = require("juju.version")

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
--- lock serialises writers). opts.known: the ids the caller knows are
--- recorded there (bootstrap: none), which saves the read.
function M.record_state_instance(storage, id, opts)
  local ids = opts and opts.known
  if ids then
    local copy = {}
    for i, v in ipairs(ids) do copy[i] = v end
    ids = copy
  else
    ids = M.state_server_instances(storage) or {}
  end
  ids[#ids + 1] = id
  local ok, err = M.write_state_instances(storage, ids)
  if not ok then return nil, "cannot record state instance-id: " .. err end
  return true
end

--- Writes provider-state with exactly the instance ids `ids`.
function M.write_state_instances(storage, ids)
  local text = yaml.encode(yaml.ordered({ ["state-instances"] = yaml.array(ids) }, { "state-instances" }))
  return storage:put(M.PROVIDER_STATE, text)
end

--- A fresh ed25519 host key pair for machine 0, registered as a secret of
--- the run (its private half travels only in the phase-1 user-data):
--- {ed25519 = {private=, public=}}.
function M.new_host_keys(ctx)
  local pem, pub = crypto.ssh_keygen_ed25519("juju-bootstrap-host-key")
  if ctx and ctx.add_secret then ctx:add_secret(pem) end
  return { ed25519 = { private = pem, public = pub } }
end

--- A typed address (CONTRACT.md): {value=, type=, scope=}. type is
--- "ipv4", "ipv6" or "hostname" (from the value's form); scope is given.
function M.address(value, scope)
  local t = "hostname"
  if value:match("^%d+%.%d+%.%d+%.%d+$") then t = "ipv4" elseif value:find(":", 1, true) then t = "ipv6" end
  return { value = value, type = t, scope = scope }
end

--- The address values of an Instance, public first, then cloud-local,
--- then machine-local (each in the provider's order).
function M.instance_addresses(inst)
  local out = {}
  for _, scope in ipairs({ "public", "cloud-local", "machine-local" }) do
    for _, a in ipairs(inst.addresses or {}) do
      if a.scope == scope then out[#out + 1] = a.value end
    end
  end
  return out
end

return M
