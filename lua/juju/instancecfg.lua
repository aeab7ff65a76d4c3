-- juju.instancecfg: the instance ("machine") configuration of the bootstrap
-- machine (spec 2.8): what the provider and the cloud-init renderer need to
-- know about machine 0. new_bootstrap builds it from the environment config
-- (NewBootstrapInstanceConfig + PopulateInstanceConfig), finish adds the
-- secrets phase 2 needs (FinishInstanceConfig, spec step 10.2) and verify is
-- the last check before anything is rendered.
local crypto = require("juju.crypto")
local yaml = require("juju.yaml")
local constraints = require("juju.constraints")
local version = require("juju.version")

local M = {}

M.BOOTSTRAP_NONCE_PREFIX = "user-admin:bootstrap"
M.DEFAULT_JOBS = { "JobManageEnviron", "JobHostUnits" }
-- Juju 1.25's package list minus cpu-checker (KVM support only, x86-only
-- in Debian); see docs/cloudinit.md.
M.DEFAULT_PACKAGES = { "curl", "bridge-utils", "rsyslog-gnutls", "cloud-utils", "cloud-image-utils", "tmux" }

local function present(v) return v ~= nil and v ~= yaml.null end

local function str(cfg, key)
  local v = cfg[key]
  if type(v) == "string" then return v end
  return nil
end

-- Boolean switches whose accessor default is true (spec 3.2).
local function switch(cfg, key)
  local v = cfg[key]
  if v == nil or v == yaml.null then return true end
  return v == true
end

local function copy(v)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = copy(x) end
  return setmetatable(out, getmetatable(v))
end

local function add_scheme_if_missing(scheme, url)
  if url ~= "" and not url:find("://", 1, true) then return scheme .. "://" .. url end
  return url
end

-- resource-tags is an attrs value: a map, "k=v k2=v2" or a list of "k=v".
local function resource_tags(v)
  local out = {}
  if type(v) == "string" then
    for item in v:gmatch("%S+") do
      local k, x = item:match("^([^=]+)=(.*)$")
      if k then out[k] = x end
    end
  elseif type(v) == "table" then
    if yaml.is_array(v) or #v > 0 then
      for _, item in ipairs(v) do
        local k, x = tostring(item):match("^([^=]+)=(.*)$")
        if k then out[k] = x end
      end
    else
      for k, x in pairs(v) do out[tostring(k)] = tostring(x) end
    end
  end
  return out
end

-- The client-side settings that every machine gets (PopulateInstanceConfig).
local function populate(icfg, cfg)
  icfg.authorized_keys = str(cfg, "authorized-keys") or ""
  icfg.agent_env.PROVIDER_TYPE = str(cfg, "type") or ""
  icfg.agent_env.CONTAINER_TYPE = ""
  icfg.disable_ssl_hostname_verification = cfg["ssl-hostname-verification"] == false
  icfg.proxy = {
    http = str(cfg, "http-proxy") or "", https = str(cfg, "https-proxy") or "",
    ftp = str(cfg, "ftp-proxy") or "", no_proxy = str(cfg, "no-proxy") or "",
  }
  local function apt(key, fallback, scheme)
    local v = str(cfg, key)
    if not v or v == "" then v = str(cfg, fallback) or "" end
    return add_scheme_if_missing(scheme, v)
  end
  icfg.apt_proxy = {
    http = apt("apt-http-proxy", "http-proxy", "http"),
    https = apt("apt-https-proxy", "https-proxy", "https"),
    ftp = apt("apt-ftp-proxy", "ftp-proxy", "ftp"),
  }
  icfg.apt_mirror = str(cfg, "apt-mirror") or ""
  icfg.prefer_ipv6 = cfg["prefer-ipv6"] == true
end

local function pick(params, key, default)
  local v = params[key]
  if v == nil then return default end
  return v
end

--- The instance config of machine 0 (spec 2.8, step 8.4). params (all
--- optional): series, nonce (reuse the phase-1 nonce), jobs, data_dir,
--- log_dir, cloud_init_output_log, service_name, instance_id, hardware,
--- constraints (table), agent_env (extra values), container_bridge,
--- state_store, debug, packages, enable_os_refresh_update,
--- enable_os_upgrade, enable_package_install (override the config).
--- machine_id and join = true: another state server (juju ensure-availability),
--- configured as machine 0 is but joining the state instead of creating it.
function M.new_bootstrap(cfg, params)
  if type(cfg) ~= "table" then error("instancecfg.new_bootstrap: config table expected", 2) end
  params = params or {}
  local series = params.series
  if series == nil and str(cfg, "default-series") ~= "" then series = str(cfg, "default-series") end
  local icfg = {
    bootstrap = true,
    join = params.join == true,
    machine_id = params.machine_id or "0",
    -- A fresh nonce per bootstrap (W1): the client checks it over SSH
    -- before sending any secret.
    nonce = params.nonce or ((params.join and ("machine-" .. tostring(params.machine_id)) or M.BOOTSTRAP_NONCE_PREFIX)
      .. ":" .. crypto.hex(crypto.random_bytes(8))),
    series = series,
    jobs = copy(params.jobs or M.DEFAULT_JOBS),
    data_dir = pick(params, "data_dir", "/var/lib/juju"),
    log_dir = pick(params, "log_dir", "/var/log/juju"),
    cloud_init_output_log = pick(params, "cloud_init_output_log", "/var/log/cloud-init-output.log"),
    service_name = pick(params, "service_name", "jujud-machine-" .. tostring(params.machine_id or "0")),
    instance_id = params.instance_id,
    hardware = copy(params.hardware),
    constraints = copy(params.constraints or {}),
    agent_env = { SECURE_STATESERVER_CONNECTION = "true" },
    enable_os_refresh_update = pick(params, "enable_os_refresh_update", switch(cfg, "enable-os-refresh-update")),
    enable_os_upgrade = pick(params, "enable_os_upgrade", switch(cfg, "enable-os-upgrade")),
    enable_package_install = pick(params, "enable_package_install", switch(cfg, "enable-package-install")),
    packages = copy(params.packages or M.DEFAULT_PACKAGES),
    tags = {},
    state_store = str(cfg, "state-store") or params.state_store or "mongodb",
    debug = params.debug == true,
  }
  for k, v in pairs(params.agent_env or {}) do icfg.agent_env[k] = v end
  if params.container_bridge then icfg.agent_env.LXC_BRIDGE = params.container_bridge end
  for k, v in pairs(resource_tags(cfg["resource-tags"])) do icfg.tags[k] = v end
  icfg.tags["juju-env-uuid"] = str(cfg, "uuid") or ""
  icfg.tags["juju-is-state"] = "true"
  populate(icfg, cfg)
  return icfg
end

local function has_job(icfg, job)
  for _, j in ipairs(icfg.jobs or {}) do if j == job then return true end end
  return false
end

local function fail(msg) return nil, "cannot complete machine configuration: " .. msg end

local STRIPPED = { "admin-secret", "ca-private-key" }

--- The environment config sent to machine 0: everything but the client's
--- secrets; it must name the agent version.
local function bootstrap_config(cfg, strip_keys)
  local out = copy(cfg)
  for _, k in ipairs(STRIPPED) do out[k] = nil end
  for _, k in ipairs(strip_keys or {}) do out[k] = nil end
  if not present(out["agent-version"]) or out["agent-version"] == "" then
    return nil, "environment configuration has no agent-version"
  end
  return out
end

--- FinishInstanceConfig for bootstrap (spec step 10.2). opts (optional):
--- tools ({version, url, sha256, size}), instance_id, hardware, strip_keys
--- (more config keys never to send to the machine), hostnames (extra SANs of
--- the state-server certificate), cert_opts (passed to new_server_cert).
--- Returns icfg (completed in place) or nil, message.
function M.finish(icfg, cfg, opts)
  if type(icfg) ~= "table" or type(cfg) ~= "table" then error("instancecfg.finish: tables expected", 2) end
  opts = opts or {}
  if opts.tools then icfg.tools = copy(opts.tools) end
  if opts.instance_id then icfg.instance_id = opts.instance_id end
  if opts.hardware then icfg.hardware = copy(opts.hardware) end
  populate(icfg, cfg)
  if icfg.authorized_keys == "" then return fail("environment configuration has no authorized-keys") end
  if has_job(icfg, "JobManageEnviron") then
    icfg.agent_env.NUMA_CTL_PREFERENCE = tostring(cfg["set-numa-control-policy"] == true)
  end
  if not icfg.bootstrap then return icfg end
  if icfg.api_info or icfg.mongo_info then return fail("machine configuration already has api/state info") end
  local ca_cert = str(cfg, "ca-cert")
  if not ca_cert or ca_cert == "" then return fail("environment configuration has no ca-cert") end
  local secret = str(cfg, "admin-secret")
  if not secret or secret == "" then return fail("environment configuration has no admin-secret") end
  local uuid = str(cfg, "uuid")
  if not uuid or uuid == "" then return fail("config missing environment uuid") end
  local ca_key = str(cfg, "ca-private-key")
  if not ca_key or ca_key == "" then return fail("environment configuration has no ca-private-key") end
  local env_config, cerr = bootstrap_config(cfg, opts.strip_keys)
  if not env_config then return fail(cerr) end
  if type(icfg.tools) ~= "table" then return fail("machine configuration has no tools") end

  local hash = crypto.user_password_hash(secret, crypto.COMPAT_SALT)
  -- The API and mongo clients name the server "juju-apiserver" and
  -- "juju-mongodb"; Juju relied on the wildcard CN, we list them as SANs.
  -- Dqlite peers and clients verify "juju-dqlite" (core/dqlitenode.h).
  local hostnames = { "localhost", "juju-apiserver", "juju-mongodb", "juju-dqlite" }
  for _, h in ipairs(opts.hostnames or {}) do hostnames[#hostnames + 1] = h end
  local cert_opts = copy(opts.cert_opts or {})
  cert_opts.hostnames = hostnames
  local cert, key_or_err = crypto.new_server_cert(ca_cert, ca_key, cert_opts)
  if not cert then return fail("cannot generate state server certificate: " .. tostring(key_or_err)) end

  icfg.api_info = { password = hash, ca_cert = ca_cert, environ_tag = "environment-" .. uuid }
  icfg.mongo_info = { password = hash, ca_cert = ca_cert }
  icfg.state_serving_info = {
    state_port = cfg["state-port"], api_port = cfg["api-port"],
    cert = cert, private_key = key_or_err, ca_private_key = ca_key,
  }
  icfg.config = env_config
  if icfg.state_store == "dqlite" then
    -- What jujud needs to run the node (juju.agent.dqlitenode): machine 0
    -- is node 1, which bootstraps the cluster; bootstrap-state adds the
    -- node's address (the machine's, known there) and the server list.
    local port = cfg["dqlite-port"] or 17666
    if math.type(port) ~= "integer" or port < 1 or port > 65535 then
      return fail("dqlite-port must be a port number, got " .. tostring(port))
    end
    -- Another state server (juju.ha) gets its node id, address and the
    -- servers to join from the client; machine n is node n + 1.
    icfg.agent_env.STATE_STORE = "dqlite"
    icfg.agent_env.DQLITE_NODE_ID = icfg.agent_env.DQLITE_NODE_ID or tostring(math.tointeger(tonumber(icfg.machine_id)) + 1)
    icfg.agent_env.DQLITE_PORT = icfg.agent_env.DQLITE_PORT or tostring(port)
  end
  return icfg
end

local function bad(msg) return nil, "invalid machine configuration: " .. msg end

local function empty(v) return v == nil or v == yaml.null or v == "" end

--- A machine id: "0", "12", "2/lxc/1".
function M.valid_machine_id(id)
  if type(id) ~= "string" then return false end
  local head, rest = id:match("^(%d+)(.*)$")
  if not head or id:match("^0%d") then return false end
  while rest ~= "" do
    local n, tail = rest:match("^/%l+/(%d+)(.*)$")
    if not n or (#n > 1 and n:sub(1, 1) == "0") then return false end
    rest = tail
  end
  return true
end

-- Paths land in shell words and systemd unit files: absolute and plain.
local function safe_path(p) return type(p) == "string" and p:match("^/[%w._/+:@,=-]*$") ~= nil end

local function valid_port(p) return math.type(p) == "integer" and p > 0 and p < 65536 end

--- The checks of spec 2.8 in Juju's order, plus the engine's own (tools
--- checksum and version, path characters, URL scheme). Returns true or nil,
--- "invalid machine configuration: <reason>".
function M.verify(icfg)
  if type(icfg) ~= "table" then error("instancecfg.verify: table expected", 2) end
  if not M.valid_machine_id(icfg.machine_id) then return bad("invalid machine id") end
  if empty(icfg.data_dir) then return bad("missing var directory") end
  if empty(icfg.log_dir) then return bad("missing log directory") end
  if type(icfg.jobs) ~= "table" or #icfg.jobs == 0 then return bad("missing machine jobs") end
  if empty(icfg.cloud_init_output_log) then return bad("missing cloud-init output log path") end
  for _, p in ipairs({ { icfg.data_dir, "var directory" }, { icfg.log_dir, "log directory" },
    { icfg.cloud_init_output_log, "cloud-init output log path" } }) do
    if not safe_path(p[1]) then return bad(string.format("unsafe %s %q", p[2], tostring(p[1]))) end
  end
  local tools = icfg.tools
  if type(tools) ~= "table" then return bad("missing tools") end
  if empty(tools.url) then return bad("missing tools URL") end
  if type(tools.url) ~= "string" or not (tools.url:match("^https?://") or tools.url:match("^file://")) then
    return bad(string.format("unsupported tools URL %q", tostring(tools.url)))
  end
  if not version.parse_binary(tools.version) or not tools.version:match("^[%w.+-]+$") then
    return bad(string.format("invalid tools version %q", tostring(tools.version)))
  end
  if type(tools.sha256) ~= "string" or not tools.sha256:match("^" .. string.rep("%x", 64) .. "$") then
    return bad("missing tools SHA-256")
  end
  local mongo, api = icfg.mongo_info, icfg.api_info
  if type(mongo) ~= "table" then return bad("missing state info") end
  if empty(mongo.ca_cert) then return bad("missing CA certificate") end
  if type(api) ~= "table" then return bad("missing API info") end
  if empty(api.environ_tag) then return bad("missing environment tag") end
  if empty(api.ca_cert) then return bad("missing API CA certificate") end
  if empty(icfg.service_name) then return bad("missing machine agent service name") end
  if not tostring(icfg.service_name):match("^[%w._-]+$") then
    return bad(string.format("unsafe machine agent service name %q", tostring(icfg.service_name)))
  end
  if not icfg.bootstrap then
    return bad("only bootstrap (state server) configurations are supported")
  end
  if type(icfg.config) ~= "table" then return bad("missing environment configuration") end
  if not empty(mongo.tag) or not empty(api.tag) then
    return bad("entity tag must be nil when starting a state server")
  end
  local ssi = icfg.state_serving_info
  if type(ssi) ~= "table" then return bad("missing state serving info") end
  if empty(ssi.cert) then return bad("missing state server certificate") end
  if empty(ssi.private_key) then return bad("missing state server private key") end
  if empty(ssi.ca_private_key) then return bad("missing ca cert private key") end
  if not valid_port(ssi.state_port) then return bad("missing state port") end
  if not valid_port(ssi.api_port) then return bad("missing API port") end
  if empty(icfg.instance_id) then return bad("missing instance-id") end
  if icfg.state_store ~= "mongodb" and icfg.state_store ~= "sqlite" and icfg.state_store ~= "dqlite" then
    return bad(string.format("unknown state store %q", tostring(icfg.state_store)))
  end
  if empty(icfg.nonce) then return bad("missing machine nonce") end
  return true
end

--- "machine-0", "machine-2-lxc-1".
function M.machine_tag(icfg) return "machine-" .. tostring(icfg.machine_id):gsub("/", "-") end

--- The tools version number ("1.25.0") of the binary version in icfg.tools.
function M.tools_number(icfg)
  local b = icfg.tools and version.parse_binary(icfg.tools.version)
  return b and tostring(b.number) or nil
end

local HARDWARE_KEYS = { "arch", "cpu-cores", "cpu-power", "mem", "root-disk", "tags", "availability-zone" }

--- Hardware characteristics as Juju prints them for --hardware
--- ("arch=amd64 cpu-cores=1 mem=3840M ..."); a string is returned as is.
function M.format_hardware(hw)
  if hw == nil then return "" end
  if type(hw) == "string" then return hw end
  local parts = {}
  for _, k in ipairs(HARDWARE_KEYS) do
    local v = hw[k]
    if v == nil then v = hw[(k:gsub("-", "_"))] end
    if v ~= nil then
      if type(v) == "table" then v = table.concat(v, ",")
      elseif k == "mem" or k == "root-disk" then v = tostring(v) .. "M" end
      parts[#parts + 1] = k .. "=" .. tostring(v)
    end
  end
  return table.concat(parts, " ")
end

--- The constraints text for bootstrap-state ("" when none).
function M.format_constraints(icfg)
  return constraints.format(icfg.constraints or {})
end

return M
