-- providers/azure: Azure's Service Management API ("classic"), as Juju
-- 1.25's azure provider (docs/azure.md, providers.md 7). Before machine 0:
-- the affinity group juju-<env>-ag in the location, then the virtual
-- network juju-<env>-vnet (10.0.0.0/8) added to the subscription's network
-- configuration by read-modify-write (azure.netconf: other networks kept
-- byte for byte, a concurrent change detected and the edit redone on the
-- fresh document). Both are journal resources (intent first). Then a cloud
-- service juju-<env>-<random>, a deployment with one role (custom data =
-- base64(gzip(user-data)), endpoints sshport 22 and apiport), polled
-- through x-ms-request-id; addresses are the deployment's public VIP and
-- the role's IP. Environ storage: the blob container juju-<env>-private
-- of storage-account-name, its key read through the management API.
local crypto = require("juju.lazy")("juju.crypto")
local gzip = require("juju.lazy")("juju.gzip")
local fs = require("juju.fs")
local common = require("juju.provider_common")
local cloud = require("juju.cloud.provider")
local blob = require("juju.lazy")("juju.cloud.storage.azure")
local mgmt = require("azure.mgmt")
local netconf = require("azure.netconf")

local P = {
  name = "azure",
  api_version = 2,
  description = "Azure Service Management API: affinity group, virtual network, cloud service; blob storage",
  default_state_store = "mongodb",
  config = {
    fields = {
      location = { type = "string", allow_empty = true, immutable = true,
        description = "the Azure location, e.g. West US" },
      ["management-subscription-id"] = { type = "string", allow_empty = true,
        description = "the subscription id of the management API" },
      ["management-certificate-path"] = { type = "string", allow_empty = true,
        description = "a PEM file with the management certificate and its key (read, then removed from the config)" },
      ["management-certificate"] = { type = "string", allow_empty = true, secret = true,
        description = "the management certificate and its key, PEM" },
      ["storage-account-name"] = { type = "string", allow_empty = true, immutable = true,
        description = "an existing storage account for the environment's storage" },
      ["force-image-name"] = { type = "string", allow_empty = true,
        description = "the OS image to start (skips image selection)" },
      ["availability-sets-enabled"] = { type = "bool", default = false, immutable = true,
        description = "group units' machines into one cloud service" },
      ["management-endpoint"] = { type = "string", default = "https://management.core.windows.net",
        description = "the management API's URL (tests)" },
      ["storage-endpoint"] = { type = "string", allow_empty = true,
        description = "the blob service URL of the storage account (default https://<account>.blob.core.windows.net)" },
    },
  },
  constraints = { unsupported = { "cpu-power", "tags" } },
  internal = {},
}

P.DEFAULT_ROLE_SIZE = "Small"
P.HOST_KEY_FILE = "bootstrap-host-key"
P.SERVICE_LABEL = "juju-state-server"
P.STORAGE_KEYS_VERSION = "2009-10-01"
P.DELETE_SERVICE_VERSION = "2010-10-28"
P.SERVICE_NAME_TRIES = 10
P.VNET_IN_USE_WAIT = 30
P.MISSING_LOCATION = "environment has no location; you need to set one. E.g. 'West US'"

local present = cloud.present

-- ------------------------------------------------------------- config --

local function read_certificate(ctx, cfg)
  local pem = cfg["management-certificate"]
  local path = cfg["management-certificate-path"]
  if not present(pem) and present(path) then
    local text, err = fs.read_file(ctx:expand_home(path))
    if not text then
      return nil, string.format("management-certificate-path: cannot read %s: %s", path, tostring(err))
    end
    pem = text
  end
  if not present(pem) then
    return nil, "management-certificate-path: must be set (or management-certificate): the PEM file with the "
      .. "subscription's management certificate and its private key"
  end
  local which = present(cfg["management-certificate"]) and "management-certificate"
    or "management-certificate-path (" .. tostring(path) .. ")"
  if not pem:find("-----BEGIN CERTIFICATE-----", 1, true) then
    return nil, which .. ": not a PEM certificate (no BEGIN CERTIFICATE block)"
  end
  if not pem:find("-----BEGIN [%u ]*PRIVATE KEY-----") then
    return nil, which .. ": the PEM holds no private key (the management certificate needs its key)"
  end
  ctx:add_secret(pem:match("%-%-%-%-%-BEGIN [%u ]*PRIVATE KEY%-%-%-%-%-.-%-%-%-%-%-END [%u ]*PRIVATE KEY%-%-%-%-%-"))
  return pem
end

local function check_settings(ctx, cfg)
  if not present(cfg.location) then return nil, "location: " .. P.MISSING_LOCATION end
  if not present(cfg["management-subscription-id"]) then
    return nil, "management-subscription-id: must be set to the subscription's id"
  end
  if not present(cfg["storage-account-name"]) then
    return nil, "storage-account-name: must be set to an existing storage account of the subscription"
  end
  if not cfg["storage-account-name"]:match("^[a-z0-9]+$") then
    return nil, string.format("storage-account-name: %q is not a storage account name (lower-case letters, digits)",
      cfg["storage-account-name"])
  end
  return read_certificate(ctx, cfg)
end

-- Juju: the file is read, then the path removed from the config.
local function check_config(ctx, cfg)
  local pem, err = check_settings(ctx, cfg)
  if not pem then return nil, err end
  cfg["management-certificate"] = pem
  cfg["management-certificate-path"] = ""
  return cfg
end

local function new_mgmt(ctx, cfg, pem)
  return mgmt.new { ctx = ctx, endpoint = cfg["management-endpoint"], subscription = cfg["management-subscription-id"],
    certificate = pem or cfg["management-certificate"], http = cloud.http_options(cfg, ctx), clock = ctx.clock,
    log = ctx.log }
end

local function check_location(c, location)
  local root, msg, code = c:get_xml("/locations")
  if not root then return nil, "cannot list the subscription's locations: " .. tostring(msg), code end
  local names = {}
  for _, l in ipairs(mgmt.children(root, "Location")) do
    local n = mgmt.text(l, "Name")
    if n == location then return true end
    names[#names + 1] = n
  end
  return nil, string.format("location: unknown location %q (the subscription has: %s)", location,
    table.concat(names, ", ")), "INVALID"
end

function P.prepare_for_bootstrap(ctx, cfg)
  local ok, err, code = check_config(ctx, cfg)
  if not ok then return nil, err, code end
  ok, err, code = check_location(new_mgmt(ctx, cfg), cfg.location)
  if not ok then return nil, err, code end
  return cfg
end

function P.validate_config(ctx, cfg)
  return check_config(ctx, cfg)
end

function P.open(ctx, cfg)
  local pem, err = check_settings(ctx, cfg)
  if not pem then return nil, err end
  local name = ctx.env_name or cfg.name
  return { ctx = ctx, cfg = cfg, name = name, prefix = "juju-" .. name .. "-",
    ag = "juju-" .. name .. "-ag", vnet = "juju-" .. name .. "-vnet", mgmt = new_mgmt(ctx, cfg, pem) }
end

-- -------------------------------------------------------------- storage --

local function storage_key(env)
  local root, msg, code = env.mgmt:get_xml("/services/storageservices/" .. env.cfg["storage-account-name"] .. "/keys",
    { version = P.STORAGE_KEYS_VERSION })
  if not root then return nil, "cannot read the storage account's keys: " .. tostring(msg), code end
  local keys = mgmt.child(root, "StorageServiceKeys")
  local key = mgmt.text(keys, "Primary") or mgmt.text(keys, "Secondary")
  if not present(key) then return nil, "the storage account has no key", "INVALID" end
  env.ctx:add_secret(key)
  return key
end

function P.storage(env)
  if env.storage then return env.storage end
  local key, err = storage_key(env)
  if not key then error("azure storage: " .. tostring(err), 0) end
  local st
  st, err = blob.new { account = env.cfg["storage-account-name"], key = key, container = "juju-" .. env.name:lower()
    .. "-private", endpoint = present(env.cfg["storage-endpoint"]) and env.cfg["storage-endpoint"] or nil,
    create = true, http = cloud.http_options(env.cfg, env.ctx) }
  if not st then error("azure storage: " .. tostring(err), 0) end
  env.storage = st
  return st
end

function P.state_server_instances(env)
  return common.state_server_instances(P.storage(env))
end

function P.constraints_validator(_) return P.constraints end

-- ------------------------------------------ affinity group and network --

local function describe(what, msg) return string.format("cannot %s: %s", what, tostring(msg)) end

local function create_affinity_group(env)
  local ok, err = cloud.intend(env, "affinity-group", env.ag)
  if not ok then return nil, err end
  env.ctx:infof("Creating affinity group %s in %s", env.ag, env.cfg.location)
  local resp, msg, code, eresp = env.mgmt:call("POST", "/affinitygroups", { body = mgmt.doc("CreateAffinityGroup", {
    { "Name", env.ag }, { "Label", crypto.base64(env.ag) }, { "Description", env.ag },
    { "Location", env.cfg.location } }) })
  -- Juju: 409 Conflict means the group exists: reuse it
  if not resp and not (eresp and eresp.status == 409) then
    return nil, describe("create affinity group " .. env.ag, msg), code
  end
  return cloud.record(env, "affinity-group", env.ag, { name = env.ag })
end

local function delete_affinity_group(env)
  local resp, msg, code = env.mgmt:call("DELETE", "/affinitygroups/" .. env.ag)
  if not resp and code ~= "NOT_FOUND" then return nil, describe("delete affinity group " .. env.ag, msg), code end
  return true
end

local function create_vnet(env)
  local ok, err = cloud.intend(env, "virtual-network", env.vnet)
  if not ok then return nil, err end
  env.ctx:infof("Adding virtual network %s (10.0.0.0/8) to the subscription's network configuration", env.vnet)
  local code
  ok, err, code = netconf.edit(env, function(doc) return netconf.add_site(doc, env.vnet, env.cfg.location) end)
  if not ok then return nil, describe("add virtual network " .. env.vnet, err), code end
  return cloud.record(env, "virtual-network", env.vnet, { name = env.vnet })
end

-- Juju retried the removal for 30 s while Azure said the network "is
-- currently in use" (a role being deleted still holds it).
local function delete_vnet(env)
  local ok, err, code = cloud.poll(env, { what = "for virtual network " .. env.vnet .. " to be free",
    timeout = P.VNET_IN_USE_WAIT, interval = 1, max_interval = 5, poll = function()
      local done, perr, pcode = netconf.edit(env, function(doc) return netconf.remove_site(doc, env.vnet) end)
      if done then return true end
      if tostring(perr):find("currently in use", 1, true) then return nil, perr end
      return false, perr, pcode
    end })
  if not ok then return nil, describe("remove virtual network " .. env.vnet, err), code end
  return true
end

-- ------------------------------------------------------------ instance --

local function random_name(n)
  local chars, out = "abcdefghijklmnopqrstuvwxyz0123456789", {}
  local bytes = crypto.random_bytes(n)
  for i = 1, n do
    local k = bytes:byte(i) % #chars + 1
    out[i] = chars:sub(k, k)
  end
  return table.concat(out)
end

local function delete_service(env, svc)
  local resp, msg, code = env.mgmt:call_async(env, "DELETE", "/services/hostedservices/" .. svc .. "?comp=media",
    { version = P.DELETE_SERVICE_VERSION }, "for cloud service " .. svc .. " to be deleted")
  if not resp and code ~= "NOT_FOUND" then return nil, describe("delete cloud service " .. svc, msg), code end
  return true
end

local function create_service(env)
  for _ = 1, P.SERVICE_NAME_TRIES do
    local svc = env.prefix .. random_name(10)
    local root, msg, code = env.mgmt:get_xml("/services/hostedservices/operations/isavailable/" .. svc)
    if not root then return nil, describe("check cloud service name " .. svc, msg), code end
    if mgmt.text(root, "Result") == "true" then
      local ok, err = cloud.intend(env, "cloud-service", svc)
      if not ok then return nil, err end
      env.ctx:infof("Creating cloud service %s", svc)
      local resp, cmsg, ccode = env.mgmt:call_async(env, "POST", "/services/hostedservices", {
        body = mgmt.doc("CreateHostedService", { { "ServiceName", svc }, { "Label", crypto.base64(P.SERVICE_LABEL) },
          { "AffinityGroup", env.ag } }) }, "for cloud service " .. svc)
      if not resp then return nil, describe("create cloud service " .. svc, cmsg), ccode end
      ok, err = cloud.record(env, "cloud-service", svc, { name = svc })
      if not ok then return nil, err end
      return svc
    end
  end
  return nil, "cannot find a free cloud service name after " .. P.SERVICE_NAME_TRIES .. " tries", "CONFLICT"
end

local function endpoint(name, port)
  return { "InputEndpoint", { { "LoadBalancedEndpointSetName", name }, { "LocalPort", port }, { "Name", name },
    { "Port", port }, { "LoadBalancerProbe", { { "Port", port }, { "Protocol", "TCP" } } }, { "Protocol", "tcp" } } }
end

local function deployment_doc(env, svc, role, params)
  local size = (params.constraints or {})["instance-type"]
  local image = env.cfg["force-image-name"]
  -- Azure wants a password even with password logins off: a random one,
  -- never shown
  local password = random_name(16) .. "A1!"
  env.ctx:add_secret(password)
  return mgmt.doc("Deployment", {
    { "Name", svc .. "-v2" }, { "DeploymentSlot", "Production" }, { "Label", svc },
    { "RoleList", { { "Role", {
      { "RoleName", role }, { "RoleType", "PersistentVMRole" },
      { "ConfigurationSets", {
        { "ConfigurationSet", { { "ConfigurationSetType", "LinuxProvisioningConfiguration" }, { "HostName", role },
          { "UserName", cloud.UBUNTU }, { "UserPassword", password },
          { "DisableSshPasswordAuthentication", "true" },
          { "CustomData", crypto.base64(gzip.gzip(params.userdata)) } } },
        { "ConfigurationSet", { { "ConfigurationSetType", "NetworkConfiguration" }, { "InputEndpoints", {
          endpoint("sshport", 22), endpoint("apiport", tonumber(env.cfg["api-port"]) or 17070) } } } },
      } },
      { "AvailabilitySetName", "juju" },
      { "OSVirtualHardDisk", { { "MediaLink", string.format("https://%s.blob.core.windows.net/vhds/%s.vhd",
        env.cfg["storage-account-name"], role) }, { "SourceImageName", image }, { "OS", "Linux" } } },
      { "RoleSize", present(size) and size or P.DEFAULT_ROLE_SIZE },
    } } } },
    { "VirtualNetworkName", env.vnet },
  })
end

local function instance_object(env, svc, dep)
  local out = {}
  local vips = mgmt.child(dep, "VirtualIPs")
  for _, v in ipairs(mgmt.children(vips, "VirtualIP")) do
    local a = mgmt.text(v, "Address")
    if present(a) then out[#out + 1] = common.address(a, "public") end
  end
  local port = 22
  local ri = mgmt.child(mgmt.child(dep, "RoleInstanceList"), "RoleInstance")
  if ri then
    local ip = mgmt.text(ri, "IPAddress")
    if present(ip) then out[#out + 1] = common.address(ip, "cloud-local") end
    for _, e in ipairs(mgmt.children(mgmt.child(ri, "InstanceEndpoints"), "InstanceEndpoint")) do
      if mgmt.text(e, "Name") == "sshport" then port = tonumber(mgmt.text(e, "PublicPort")) or 22 end
    end
  end
  local role = ri and mgmt.text(ri, "RoleName") or "?"
  return { id = svc .. "-" .. role, status = "running", addresses = out, ssh_port = port,
    hardware = { arch = "amd64" },
    refresh = function()
      local fresh, err, code = env.mgmt:get_xml("/services/hostedservices/" .. svc .. "/deployments/" .. svc .. "-v2")
      if not fresh then return nil, err, code end
      return instance_object(env, svc, fresh)
    end }
end

local function store_host_key(env, params)
  local hk = params.host_keys and params.host_keys.ed25519
  if not (hk and type(hk.public) == "string") then return true end
  local opened, st = pcall(P.storage, env)
  if not opened then return nil, "cannot store the bootstrap host key: " .. tostring(st) end
  local ok, err = env.ctx.journal:record("storage", P.HOST_KEY_FILE)
  if not ok then return nil, err end
  ok, err = st:put(P.HOST_KEY_FILE, (hk.public:gsub("%s+$", "")) .. "\n")
  if not ok then return nil, "cannot store the bootstrap host key: " .. tostring(err) end
  return true
end

function P.start_instance(env, params)
  if not present(env.cfg["force-image-name"]) then
    return nil, "force-image-name: must be set (this engine does not select Azure images from simplestreams yet)",
      "INVALID"
  end
  local ok, err, code = store_host_key(env, params)
  if not ok then return nil, err, code end
  ok, err, code = create_affinity_group(env)
  if not ok then return nil, err, code end
  ok, err, code = create_vnet(env)
  if not ok then return nil, err, code end
  local svc
  svc, err, code = create_service(env)
  if not svc then return nil, err, code end
  local role = "juju" .. random_name(12)
  env.ctx:infof("Creating deployment %s-v2 with role %s (%s)", svc, role, env.cfg["force-image-name"])
  local resp
  resp, err, code = env.mgmt:call_async(env, "POST", "/services/hostedservices/" .. svc .. "/deployments",
    { body = deployment_doc(env, svc, role, params) }, "for deployment " .. svc .. "-v2")
  if not resp then return nil, describe("create deployment " .. svc .. "-v2", err), code end
  local dep
  dep, err, code = env.mgmt:get_xml("/services/hostedservices/" .. svc .. "/deployments/" .. svc .. "-v2")
  if not dep then return nil, describe("read deployment " .. svc .. "-v2", err), code end
  return instance_object(env, svc, dep)
end

-- ------------------------------------------------------------- status --

local function service_of(id)
  return (tostring(id):match("^(.*)%-[^-]+$"))
end
P.internal.service_of = service_of

function P.state_dump(env)
  local ids, err, code = P.state_server_instances(env)
  if not ids then return nil, err, code end
  local svc = service_of(ids[1])
  local dep
  dep, err, code = env.mgmt:get_xml("/services/hostedservices/" .. svc .. "/deployments/" .. svc .. "-v2")
  if not dep then return nil, err, code end
  local inst = instance_object(env, svc, dep)
  local key = not present(env.cfg["bootstrap-host-key"]) and P.storage(env):get(P.HOST_KEY_FILE) or nil
  local addr = inst.addresses[1]
  if not addr then return nil, "machine 0 has no address", "NOT_FOUND" end
  return cloud.state_dump(env, addr.value, key and (key:gsub("%s+$", "")) or nil)
end

function P.wait_agent(env) return cloud.wait_agent(env, P.state_dump) end

-- ------------------------------------------------------------ cleanup --

function P.release(env, r)
  if r.kind == "instance" then
    local svc = r.id and service_of(r.id)
    if svc then return delete_service(env, svc) end
    return true -- no deployment without its cloud service: released with it
  elseif r.kind == "cloud-service" then
    return delete_service(env, r.id or r.name)
  elseif r.kind == "virtual-network" then
    return delete_vnet(env)
  elseif r.kind == "affinity-group" then
    return delete_affinity_group(env)
  end
  return nil, string.format("azure: unknown resource kind %q", tostring(r.kind)), "INVALID"
end

local function env_services(env)
  local root, msg, code = env.mgmt:get_xml("/services/hostedservices")
  if not root then return nil, describe("list cloud services", msg), code end
  local out = {}
  for _, s in ipairs(mgmt.children(root, "HostedService")) do
    local n = mgmt.text(s, "ServiceName")
    if n and n:sub(1, #env.prefix) == env.prefix then out[#out + 1] = n end
  end
  return out
end

--- The roles of the environment's cloud services (by name prefix), for
--- the engine's cleanup of an instance the journal lost.
function P.all_instances(env)
  local svcs, err, code = env_services(env)
  if not svcs then return nil, err, code end
  local out = {}
  for _, svc in ipairs(svcs) do
    local dep, derr, dcode = env.mgmt:get_xml("/services/hostedservices/" .. svc .. "/deployments/" .. svc .. "-v2")
    if dep then
      out[#out + 1] = instance_object(env, svc, dep)
    elseif dcode ~= "NOT_FOUND" then
      return nil, describe("read deployment " .. svc .. "-v2", derr), dcode
    end
  end
  return out
end

-- Everything of the environment: its cloud services (by name prefix), the
-- virtual network, the affinity group, then the blob container.
function P.destroy(env)
  local svcs, err, code = env_services(env)
  if not svcs then return nil, err, code end
  local ok
  for _, svc in ipairs(svcs) do
    ok, err, code = delete_service(env, svc)
    if not ok then return nil, err, code end
  end
  ok, err, code = delete_vnet(env)
  if not ok then return nil, err, code end
  ok, err, code = delete_affinity_group(env)
  if not ok then return nil, err, code end
  ok, err, code = P.storage(env):remove_all()
  if not ok then return nil, "cannot remove the environment's blob container: " .. tostring(err), code end
  return true
end

return P
