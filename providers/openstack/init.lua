-- providers/openstack: OpenStack (Juju 1.25's openstack provider; docs/openstack.md).
-- Keystone v2.0 or v3 (juju.cloud.keystone: the version from auth-url's
-- path), Nova through openstack.nova (every call named by its path
-- template), environ storage in the Swift control container
-- (juju.cloud.storage.swift), the image from simplestreams (image-metadata-url,
-- the catalog's product-streams, cloud-images), the smallest fitting flavor
-- (openstack.flavors), the environment's security groups, one server
-- created with gzip'd user-data and metadata tags, an optional floating IP,
-- then the engine's SSH finalizer. Every resource is in the journal before
-- it is created; destroy also finds servers by their juju-env-uuid
-- metadata and groups by Juju's names.
local crypto = require("juju.lazy")("juju.crypto")
local gzip = require("juju.lazy")("juju.gzip")
local common = require("juju.provider_common")
local constraints_mod = require("juju.constraints")
local cloud = require("juju.cloud.provider")
local keystone = require("juju.lazy")("juju.cloud.keystone")
local swift = require("juju.lazy")("juju.cloud.storage.swift")
local simplestreams = require("juju.lazy")("juju.simplestreams")
local http = require("juju.lazy")("juju.http")
local nova = require("openstack.nova")
local flavors = require("openstack.flavors")

local P = {
  name = "openstack",
  api_version = 2,
  description = "OpenStack: Nova servers, security groups, floating IPs and a Swift control container",
  default_state_store = "mongodb",
  config = {
    fields = {
      ["auth-url"] = { type = "string", allow_empty = true, immutable = true,
        description = "the Keystone URL, ending in /v2.0 or /v3 (default $OS_AUTH_URL)" },
      ["auth-mode"] = { type = "string", default = "userpass", values = { "userpass", "keypair", "legacy" },
        description = "userpass (username, password), keypair (access-key, secret-key; Keystone v2.0) or legacy" },
      username = { type = "string", secret = true, allow_empty = true,
        description = "the OpenStack user (default $OS_USERNAME, then $NOVA_USERNAME)" },
      password = { type = "string", secret = true, allow_empty = true,
        description = "the user's password (default $OS_PASSWORD, then $NOVA_PASSWORD)" },
      ["tenant-name"] = { type = "string", secret = true, allow_empty = true,
        description = "the OpenStack project (tenant) name (default $OS_TENANT_NAME, $OS_PROJECT_NAME, $NOVA_PROJECT_ID)" },
      ["domain-name"] = { type = "string", allow_empty = true,
        description = "Keystone v3: the domain of the user and the project (default $OS_DOMAIN_NAME; else the default domain)" },
      ["user-domain-name"] = { type = "string", allow_empty = true,
        description = "Keystone v3: the user's domain, when it is not domain-name (default $OS_USER_DOMAIN_NAME)" },
      ["project-domain-name"] = { type = "string", allow_empty = true,
        description = "Keystone v3: the project's domain, when it is not domain-name (default $OS_PROJECT_DOMAIN_NAME)" },
      ["access-key"] = { type = "string", secret = true, allow_empty = true,
        description = "auth-mode keypair: the access key (default $OS_ACCESS_KEY, then $NOVA_API_KEY)" },
      ["secret-key"] = { type = "string", secret = true, allow_empty = true,
        description = "auth-mode keypair: the secret key (default $OS_SECRET_KEY, then $EC2_SECRET_KEYS)" },
      region = { type = "string", allow_empty = true, immutable = true,
        description = "the region of the service catalog (default $OS_REGION_NAME, then $NOVA_REGION)" },
      ["control-bucket"] = { type = "string", immutable = true, allow_empty = true,
        description = "the Swift container of the environment's storage (generated at prepare)" },
      ["use-floating-ip"] = { type = "bool", default = false,
        description = "give machine 0 a floating IP (allocated for it, released with it)" },
      ["use-default-secgroup"] = { type = "bool", default = false,
        description = "also put machines in the project's default security group" },
      network = { type = "string", allow_empty = true,
        description = "the network (label or UUID) machines attach to; default: the cloud's choice" },
      ["default-image-id"] = { type = "string", allow_empty = true, description = "deprecated and ignored" },
      ["default-instance-type"] = { type = "string", allow_empty = true, description = "deprecated and ignored" },
    },
  },
  constraints = {
    conflicts = { { "instance-type", { "mem", "cpu-cores", "root-disk" } } },
    unsupported = { "tags", "cpu-power" },
    vocab = { arch = { "amd64", "i386", "arm64", "armhf", "ppc64el" } },
  },
  internal = {},
}

P.GROUP_DESCRIPTION = "juju group"
-- Nova refuses user_data whose base64 is longer than this.
P.USER_DATA_LIMIT = 65535
P.GROUP_DELETE_TIMEOUT = 300
P.HOST_KEY_META = "juju-host-key"
P.FLOATING_ATTACH_TIMEOUT = 120
-- Nova's statuses of a server that exists (DELETED and SOFT_DELETED do not).
local GONE = { DELETED = true, SOFT_DELETED = true }

local present = cloud.present

-- ------------------------------------------------------------- config --

-- The config key, then the environment variables Juju read, first set wins.
local FALLBACKS = {
  ["auth-url"] = { "OS_AUTH_URL" },
  username = { "OS_USERNAME", "NOVA_USERNAME" },
  password = { "OS_PASSWORD", "NOVA_PASSWORD" },
  ["tenant-name"] = { "OS_TENANT_NAME", "OS_PROJECT_NAME", "NOVA_PROJECT_ID" },
  region = { "OS_REGION_NAME", "NOVA_REGION" },
  ["access-key"] = { "OS_ACCESS_KEY", "NOVA_API_KEY" },
  ["secret-key"] = { "OS_SECRET_KEY", "EC2_SECRET_KEYS" },
  ["domain-name"] = { "OS_DOMAIN_NAME" },
  ["user-domain-name"] = { "OS_USER_DOMAIN_NAME" },
  ["project-domain-name"] = { "OS_PROJECT_DOMAIN_NAME" },
}
local SECRET_KEYS = { password = true, ["secret-key"] = true, ["tenant-name"] = true, username = true,
  ["access-key"] = true }

--- The effective settings: cfg's, else the environment's (secret ones
--- registered for redaction). Returns settings, and the keys taken from the
--- environment.
local function settings(ctx, cfg)
  local s, from_env = {}, {}
  for key, vars in pairs(FALLBACKS) do
    if present(cfg[key]) then
      s[key] = cfg[key]
    else
      for _, var in ipairs(vars) do
        local v = ctx and ctx:getenv(var)
        if present(v) then
          s[key] = v
          from_env[key] = v
          if SECRET_KEYS[key] then ctx:add_secret(v) end
          break
        end
      end
    end
  end
  s["auth-mode"] = present(cfg["auth-mode"]) and cfg["auth-mode"] or "userpass"
  return s, from_env
end

local function check_url(v)
  local u = http.parse_url(v)
  return u and present(u.scheme) and present(u.host) and (u.scheme == "http" or u.scheme == "https")
end

local function check_config(ctx, cfg)
  local s = settings(ctx, cfg)
  if not present(s["auth-url"]) then
    return nil, "auth-url: required (the Keystone URL, e.g. https://keystone.example.com:5000/v3), or set $OS_AUTH_URL"
  end
  if not check_url(s["auth-url"]) then
    return nil, string.format("auth-url: %q must have a scheme and a host, e.g. https://keystone:5000/v3",
      http.safe_url(s["auth-url"]))
  end
  local mode = s["auth-mode"]
  if mode ~= "legacy" and not http.parse_url(s["auth-url"]).path:match("/v2%.0/?$")
    and not http.parse_url(s["auth-url"]).path:match("/v3/?$") then
    return nil, string.format("auth-url: %s must end with the Keystone version, /v2.0 or /v3",
      http.safe_url(s["auth-url"]))
  end
  if mode == "keypair" then
    if not (present(s["access-key"]) and present(s["secret-key"])) then
      return nil, string.format("%s: auth-mode keypair needs access-key and secret-key (or $OS_ACCESS_KEY and "
        .. "$OS_SECRET_KEY)", present(s["access-key"]) and "secret-key" or "access-key")
    end
  elseif not (present(s.username) and present(s.password)) then
    return nil, string.format("%s: auth-mode %s needs username and password (or $OS_USERNAME and $OS_PASSWORD)",
      present(s.username) and "password" or "username", mode)
  end
  if mode ~= "legacy" and not present(s["tenant-name"]) then
    return nil, "tenant-name: required (the OpenStack project name), or set $OS_TENANT_NAME"
  end
  if not present(s.region) then
    return nil, "region: required (a region of the cloud's service catalog, e.g. RegionOne), or set $OS_REGION_NAME"
  end
  local bucket = cfg["control-bucket"]
  if present(bucket) and (#bucket > 256 or bucket:find("/", 1, true)) then
    return nil, string.format("control-bucket: %q must be 1-256 characters without '/'", bucket)
  end
  return s
end

local http_options = cloud.http_options

local function new_keystone(ctx, cfg, s)
  return keystone.new {
    auth_url = s["auth-url"], auth_mode = s["auth-mode"], username = s.username, password = s.password,
    access_key = s["access-key"], secret_key = s["secret-key"], tenant_name = s["tenant-name"],
    domain_name = s["domain-name"], user_domain_name = s["user-domain-name"],
    project_domain_name = s["project-domain-name"], region = s.region, http = http_options(cfg, ctx),
    clock = ctx.clock,
  }
end

local function credential_keys(s)
  if s["auth-mode"] == "keypair" then return "access-key, secret-key and tenant-name" end
  return "username, password and tenant-name"
end

-- Authenticates, and checks the catalog offers compute and object-store in
-- the region (each failure one line naming the keys to check).
local function verify(ks, s)
  local ok, msg, code = ks:token()
  if not ok then
    if code == "AUTH" then
      return nil, string.format("authentication failed at %s: %s; check %s (use the OpenStack project name "
        .. "for tenant-name)", http.safe_url(s["auth-url"]), msg, credential_keys(s)), "AUTH"
    end
    return nil, string.format("cannot authenticate at %s: %s", http.safe_url(s["auth-url"]), msg), code
  end
  for _, service in ipairs({ "compute", "object-store" }) do
    local url, emsg, ecode = ks:endpoint(service)
    if not url then return nil, "region: " .. emsg, ecode end
  end
  return true
end

function P.prepare_for_bootstrap(ctx, cfg)
  local s, err = check_config(ctx, cfg)
  if not s then return nil, err end
  local _, from_env = settings(ctx, cfg)
  for k, v in pairs(from_env) do cfg[k] = v end
  if not present(cfg["auth-mode"]) then cfg["auth-mode"] = s["auth-mode"] end
  if not present(cfg["control-bucket"]) then cfg["control-bucket"] = (crypto.uuid4():gsub("-", "")) end
  local ks, kerr, kcode = new_keystone(ctx, cfg, s)
  if not ks then return nil, kerr, kcode end
  local ok, verr, vcode = verify(ks, s)
  if not ok then return nil, verr, vcode end
  return cfg
end

function P.validate_config(ctx, cfg)
  local s, err = check_config(ctx, cfg)
  if not s then return nil, err end
  for _, k in ipairs({ "default-image-id", "default-instance-type" }) do
    if present(cfg[k]) then
      ctx.log:warningf("Config attribute %q (%s) is deprecated and ignored; use constraints and image metadata", k,
        cfg[k])
    end
  end
  return cfg
end

function P.open(ctx, cfg)
  local s, err = check_config(ctx, cfg)
  if not s then return nil, err end
  if not present(cfg["control-bucket"]) then return nil, "control-bucket: not set (the environment is not prepared)" end
  local ks, kerr, kcode = new_keystone(ctx, cfg, s)
  if not ks then return nil, kerr, kcode end
  local env = { ctx = ctx, cfg = cfg, uuid = cfg.uuid, name = ctx.env_name or cfg.name, region = s.region,
    auth_url = s["auth-url"], ks = ks, container = cfg["control-bucket"], creds = credential_keys(s) }
  return env
end

-- The Nova client (the compute endpoint needs a token: made on first use).
local function compute(env)
  if env.nova then return env.nova end
  local url, msg, code = env.ks:endpoint("compute")
  if not url then
    if code == "AUTH" then
      return nil, string.format("authentication failed at %s: %s; check %s", http.safe_url(env.auth_url), msg,
        env.creds), code
    end
    return nil, msg, code
  end
  env.nova = nova.new { keystone = env.ks, endpoint = url, http = http_options(env.cfg, env.ctx),
    clock = env.ctx.clock, say = function(line) env.ctx:infof("%s", line) end,
    check_interrupt = function() env.ctx:check_interrupt() end }
  return env.nova
end

-- nova call with the client made on demand.
local function call(env, method, template, vars, body, query)
  local c, msg, code = compute(env)
  if not c then return nil, msg, code end
  return c:call(method, template, vars, body, query)
end

-- ------------------------------------------------------------ storage --

local journaled, intended = cloud.journaled, cloud.intended

local WRITES = { put = true, put_file = true }

function P.storage(env)
  if env.storage then return env.storage end
  local store, err = swift.new { keystone = env.ks, container = env.container, http = http_options(env.cfg, env.ctx),
    clock = env.ctx.clock }
  if not store then error("openstack storage: control-bucket: " .. tostring(err), 0) end
  env.store = store
  -- The first write journals the container, then creates it (Swift's PUT
  -- of a container is idempotent) and records it.
  env.storage = setmetatable({}, { __index = function(_, k)
    local f = store[k]
    if type(f) ~= "function" then return f end
    return function(_, ...)
      if WRITES[k] and not env.container_journaled then
        if not intended(env, "container", env.container) then
          local ok, jerr = env.ctx.journal:intent("container", env.container)
          if not ok then return nil, jerr end
        end
        local r1, r2, r3 = f(store, ...)
        if r1 and not journaled(env, "container", env.container) then
          local ok, jerr = env.ctx.journal:record("container", env.container, { name = env.container })
          if not ok then return nil, jerr end
        end
        if r1 then env.container_journaled = true end
        return r1, r2, r3
      end
      return f(store, ...)
    end
  end })
  return env.storage
end

function P.state_server_instances(env)
  return common.state_server_instances(P.storage(env))
end

--- Instance types are the cloud's flavors.
function P.constraints_validator(env)
  local list = env and env.flavor_list
  if not list then
    -- as Juju 1.25's ConstraintsValidator: no flavor list, no validation
    local doc, msg, code = call(env, "GET", "/flavors/detail")
    if not doc then return nil, msg, code end
    list = flavors.parse(doc)
    env.flavor_list = list
  end
  local names = {}
  for _, f in ipairs(list) do names[#names + 1] = f.name end
  local spec = {}
  for k, v in pairs(P.constraints) do spec[k] = v end
  spec.vocab = { arch = P.constraints.vocab.arch, ["instance-type"] = names }
  return spec
end

--- The catalog's juju-tools endpoint as an extra tools source (Juju 1.25's
--- "keystone catalog" source).
function P.tools_sources(env)
  local url = env.ks:endpoint("juju-tools")
  if not url then return {} end
  return { { url = url, description = "keystone catalog juju-tools" } }
end

-- ---------------------------------------------------- security groups --

local function list_groups(env)
  local doc, msg, code = call(env, "GET", "/os-security-groups")
  if not doc then return nil, msg, code end
  return type(doc.security_groups) == "table" and doc.security_groups or {}
end

local function group_named(groups, name)
  for _, g in ipairs(groups) do if g.name == name then return g end end
end

-- Juju's rules for the environment's group (setUpGroups): SSH and the API
-- from anywhere, everything from the environment's own machines.
local function env_rules(env)
  local api_port = tonumber(env.cfg["api-port"]) or 17070
  return {
    { proto = "tcp", from = 22, to = 22, cidr = "0.0.0.0/0" },
    { proto = "tcp", from = api_port, to = api_port, cidr = "0.0.0.0/0" },
    { proto = "tcp", from = 1, to = 65535, self = true },
    { proto = "udp", from = 1, to = 65535, self = true },
    { proto = "icmp", from = -1, to = -1, self = true },
  }
end

local function has_rule(g, r)
  for _, x in ipairs(type(g.rules) == "table" and g.rules or {}) do
    if x.ip_protocol == r.proto and tonumber(x.from_port) == r.from and tonumber(x.to_port) == r.to then
      local xg = type(x.group) == "table" and x.group.name
      local xc = type(x.ip_range) == "table" and x.ip_range.cidr
      if (r.self and xg == g.name) or (r.cidr and xc == r.cidr) then return true end
    end
  end
  return false
end

--- Ensures the group `name` (journaled, found or created) with at least
--- the rules `rules` (added where missing): the group document.
local function ensure_group(env, name, rules)
  local j = env.ctx.journal
  if not intended(env, "security-group", name) then
    local ok, err = j:intent("security-group", name)
    if not ok then return nil, err end
  end
  local groups, msg, code = list_groups(env)
  if not groups then return nil, "cannot list security groups: " .. msg, code end
  local g = group_named(groups, name)
  if not g then
    local doc
    doc, msg, code = call(env, "POST", "/os-security-groups",
      nil, { security_group = { name = name, description = P.GROUP_DESCRIPTION } })
    if not doc then return nil, string.format("cannot create security group %s: %s", name, msg), code end
    g = doc.security_group
    if type(g) ~= "table" or g.id == nil then
      return nil, string.format("cannot create security group %s: the answer has no id", name), "HTTP"
    end
    g.rules = g.rules or {}
  end
  local gid = tostring(g.id)
  if not journaled(env, "security-group", gid) then
    local ok, err = j:record("security-group", gid, { name = name })
    if not ok then return nil, err end
  end
  for _, r in ipairs(rules or {}) do
    if not has_rule(g, r) then
      local rule = { parent_group_id = g.id, ip_protocol = r.proto, from_port = r.from, to_port = r.to }
      if r.self then rule.group_id = g.id else rule.cidr = r.cidr end
      local doc
      doc, msg, code = call(env, "POST", "/os-security-group-rules", nil, { security_group_rule = rule })
      if not doc then return nil, string.format("cannot add a rule to security group %s: %s", name, msg), code end
    end
  end
  return g
end

local function delete_group(env, gid, name)
  return cloud.poll(env, {
    what = string.format("for security group %s to be deletable", name or gid), timeout = P.GROUP_DELETE_TIMEOUT,
    poll = function()
      local doc, msg, code, _, status = call(env, "DELETE", "/os-security-groups/{id}", { id = gid })
      if doc or code == "NOT_FOUND" then return true end
      -- "Security group is still in use": a server not yet gone uses it.
      if status == 400 and (msg or ""):lower():find("in use", 1, true) then return nil, msg end
      return false, string.format("cannot delete security group %s: %s", name or gid, msg), code
    end,
  })
end

-- ---------------------------------------------------------- instances --

local function server_addresses(server, floating)
  local out, seen = {}, {}
  local function add(ip, scope)
    if type(ip) == "string" and ip ~= "" and not seen[ip] then
      seen[ip] = true
      out[#out + 1] = common.address(ip, scope)
    end
  end
  if floating then add(floating, "public") end
  local nets = type(server.addresses) == "table" and server.addresses or {}
  local names = {}
  for n in pairs(nets) do names[#names + 1] = n end
  table.sort(names)
  for _, n in ipairs(names) do
    for _, a in ipairs(type(nets[n]) == "table" and nets[n] or {}) do
      if type(a) == "table" and a["OS-EXT-IPS:type"] == "floating" then add(a.addr, "public") end
    end
  end
  for _, n in ipairs(names) do
    for _, a in ipairs(type(nets[n]) == "table" and nets[n] or {}) do
      if type(a) == "table" and a["OS-EXT-IPS:type"] ~= "floating" then
        add(a.addr, n == "public" and "public" or "cloud-local")
      end
    end
  end
  return out
end

local function metadata(server)
  return type(server.metadata) == "table" and server.metadata or {}
end

local function instance_object(env, server, extra)
  local inst = { id = tostring(server.id), name = server.name, status = server.status,
    addresses = server_addresses(server, extra and extra.floating_ip), ssh_port = 22 }
  for k, v in pairs(extra or {}) do if k ~= "floating_ip" then inst[k] = v end end
  inst.refresh = function()
    local doc, msg, code = call(env, "GET", "/servers/{id}", { id = server.id })
    if not doc then return nil, msg, code end
    return instance_object(env, doc.server or {}, extra)
  end
  return inst
end

-- The environment's servers that exist (by their juju-env-uuid metadata).
local function env_servers(env, name)
  local doc, msg, code = call(env, "GET", "/servers/detail")
  if not doc then return nil, "cannot list servers: " .. msg, code end
  local out = {}
  for _, s in ipairs(type(doc.servers) == "table" and doc.servers or {}) do
    if metadata(s)["juju-env-uuid"] == env.uuid and not GONE[s.status] and (name == nil or s.name == name) then
      out[#out + 1] = s
    end
  end
  return out
end

local function available_zones(env)
  local doc, msg, code = call(env, "GET", "/os-availability-zone")
  if not doc then
    -- Nova without the extension (404 or 501): one unspecified zone.
    if code == "NOT_FOUND" or (msg or ""):find("501", 1, true) then return { false } end
    return nil, "cannot list availability zones: " .. msg, code
  end
  local zones = {}
  for _, z in ipairs(type(doc.availabilityZoneInfo) == "table" and doc.availabilityZoneInfo or {}) do
    if type(z) == "table" and type(z.zoneState) == "table" and z.zoneState.available and present(z.zoneName) then
      zones[#zones + 1] = z.zoneName
    end
  end
  table.sort(zones)
  if #zones == 0 then return { false } end
  return zones
end

local function choose_zones(env, placement)
  local zones, err, code = available_zones(env)
  if not zones then return nil, err, code end
  return cloud.placement_zones(zones, placement, env.region)
end

local UUID = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"

-- The network config: a UUID as is, a label resolved (exactly one match).
local function resolve_network(env)
  local want = env.cfg.network
  if not present(want) then return nil end
  if want:match(UUID) then return want end
  local doc, msg, code = call(env, "GET", "/os-networks")
  if not doc then return false, "network: cannot list networks: " .. msg, code end
  local found, labels = {}, {}
  for _, n in ipairs(type(doc.networks) == "table" and doc.networks or {}) do
    labels[#labels + 1] = tostring(n.label)
    if n.label == want or tostring(n.id) == want then found[#found + 1] = tostring(n.id) end
  end
  if #found == 1 then return found[1] end
  if #found == 0 then
    return false, string.format("network: no network labelled %q (the project has: %s)", want,
      #labels > 0 and table.concat(labels, ", ") or "none"), "NOT_FOUND"
  end
  return false, string.format("network: %d networks are labelled %q; give its UUID", #found, want), "INVALID"
end

local function user_data(text)
  local packed = crypto.base64(gzip.gzip(text))
  if #packed > P.USER_DATA_LIMIT then
    return nil, string.format("user-data is %d bytes gzip'd and base64-encoded, over Nova's %d-byte limit", #packed,
      P.USER_DATA_LIMIT), "INVALID"
  end
  return packed
end

local function server_metadata(env, params)
  local m = { ["juju-env-uuid"] = env.uuid }
  local hk = params.host_keys and params.host_keys.ed25519
  if hk and type(hk.public) == "string" then m[P.HOST_KEY_META] = (hk.public:gsub("%s+$", "")) end
  for k, v in pairs((params.instance_config or {}).tags or {}) do
    if type(k) == "string" and (type(v) == "string" or type(v) == "boolean") then m[k] = tostring(v) end
  end
  return m
end

-- Image metadata sources: image-metadata-url, the catalog's
-- product-streams, then cloud-images.ubuntu.com.
local function image_sources(env)
  local ps = env.ks:endpoint("product-streams")
  local out = {}
  for i, url in ipairs(cloud.image_sources(env.cfg, { ps })) do out[i] = { url = url } end
  return out
end

-- Picks image and flavor: {image=, flavor=} or nil, message naming the cause.
local function find_spec(env, params)
  local icfg = params.instance_config
  local imgs, err = simplestreams.find_images(image_sources(env), {
    series = icfg.series, arches = cloud.arches(params), region = env.region, endpoint = env.auth_url,
    stream = env.cfg["image-stream"] }, { fetch = cloud.fetcher(http_options(env.cfg, env.ctx)) })
  if not imgs then return nil, "cannot find an image: " .. err, "NOT_FOUND" end
  local list = env.flavor_list -- read by constraints_validator in this process
  if not list then
    local doc, msg, code = call(env, "GET", "/flavors/detail")
    if not doc then return nil, "cannot list flavors: " .. msg, code end
    list = flavors.parse(doc)
    env.flavor_list = list
  end
  local c = params.constraints or {}
  if present(c["instance-type"]) then
    local known = false
    for _, f in ipairs(list) do if f.name == c["instance-type"] then known = true end end
    if not known then
      return nil, string.format("invalid constraint value: instance-type=%s (the cloud's flavors: %s)",
        c["instance-type"], flavors.describe(list)), "INVALID"
    end
  end
  local f = flavors.choose(list, c)
  if not f then
    return nil, string.format("no flavor of %s matches constraints %q (flavors: %s)", env.region,
      constraints_mod.format(c), flavors.describe(list)), "INVALID"
  end
  return { image = imgs[1], flavor = f }
end

local function wait_active(env, id)
  local timeout = tonumber(env.cfg["bootstrap-timeout"]) or 600
  return cloud.poll(env, {
    what = "for server " .. id .. " to be ACTIVE with an address", timeout = timeout,
    poll = function()
      local doc, msg, code = call(env, "GET", "/servers/{id}", { id = id })
      if not doc then
        -- a server just created may not be listed yet (eventual consistency)
        if code == "NOT_FOUND" then return nil, msg end
        return false, string.format("cannot read the state of server %s: %s", id, msg), code
      end
      local s = doc.server or {}
      if s.status == "ACTIVE" and #server_addresses(s) > 0 then return s end
      if s.status == "ERROR" then
        local fault = type(s.fault) == "table" and s.fault.message or "no reason given"
        return false, string.format("server %s failed to start (ERROR): %s", id, tostring(fault)), "QUOTA"
      end
      if s.status ~= "BUILD" and s.status ~= "ACTIVE" then
        return false, string.format("server %s is %s", id, tostring(s.status)), "HTTP"
      end
      return nil, "server is " .. tostring(s.status)
    end,
  })
end

-- Allocates a floating IP for name (journaled before the allocation).
local function allocate_floating_ip(env, name)
  local j = env.ctx.journal
  local intent_name = "floating-ip for " .. name
  if not intended(env, "floating-ip", intent_name) then
    local ok, err = j:intent("floating-ip", intent_name)
    if not ok then return nil, err end
  end
  local doc, msg, code = call(env, "POST", "/os-floating-ips", nil, {})
  if not doc then return nil, "cannot allocate a floating IP: " .. msg, code end
  local fip = type(doc.floating_ip) == "table" and doc.floating_ip or {}
  if fip.id == nil or not present(fip.ip) then
    return nil, "cannot allocate a floating IP: the answer has no id or address", "HTTP"
  end
  local ok, err = j:record("floating-ip", tostring(fip.id), { name = intent_name, ip = fip.ip })
  if not ok then return nil, err end
  return fip
end

-- Associates ip with the server: retried while Nova says the instance has
-- no network information yet (a server still building).
local function associate(env, id, ip)
  return cloud.poll(env, {
    what = string.format("to associate floating IP %s with server %s", ip, id),
    timeout = P.FLOATING_ATTACH_TIMEOUT,
    poll = function()
      local doc, msg, code, _, status = call(env, "POST", "/servers/{id}/action", { id = id },
        { addFloatingIp = { address = ip } })
      if doc then return true end
      if status == 400 and (msg or ""):find("nw_info", 1, true) then return nil, msg end
      return false, string.format("cannot associate floating IP %s with server %s: %s", ip, id, msg), code
    end,
  })
end

-- POST /servers once per zone until one has room; after a lost answer the
-- server is looked up by its name (a retry never starts a second one).
local function create_server(env, params, body_of, zones)
  local failures = {}
  for _, z in ipairs(zones) do
    local doc, msg, code, _, status = call(env, "POST", "/servers", nil, body_of(z))
    if doc then
      local s = type(doc.server) == "table" and doc.server or {}
      if s.id == nil then return nil, "nova POST /servers: the answer has no server id", "HTTP" end
      return s, z
    end
    if code ~= "INVALID" and code ~= "AUTH" and code ~= "QUOTA" and code ~= "NOT_FOUND" then
      -- the request may have reached Nova: adopt the server if it exists
      local found = env_servers(env, params.name)
      if found and found[1] then return found[1], z end
      return nil, "cannot start server: " .. msg, code
    end
    if not (msg or ""):find("No valid host", 1, true) then return nil, "cannot start server: " .. msg, code end
    failures[#failures + 1] = string.format("%s: %s", z or "default zone", msg)
    local _ = status
  end
  return nil, string.format("cannot start server: no availability zone of %s has room (%s)", env.region,
    table.concat(failures, "; ")), "QUOTA"
end

function P.start_instance(env, params)
  local icfg = params.instance_config
  -- Everything that can be refused is checked before anything is created.
  local spec, err, code = find_spec(env, params)
  if not spec then return nil, err, code end
  local ud
  ud, err, code = user_data(params.userdata)
  if not ud then return nil, err, code end
  local network
  network, err, code = resolve_network(env)
  if network == false then return nil, err, code end
  local zones
  zones, err, code = choose_zones(env, params.placement)
  if not zones then return nil, err, code end
  local envg
  envg, err, code = ensure_group(env, "juju-" .. env.name, env_rules(env))
  if not envg then return nil, err, code end
  local machg
  machg, err, code = ensure_group(env, "juju-" .. env.name .. "-" .. tostring(icfg.machine_id or "0"), nil)
  if not machg then return nil, err, code end
  local groups = { { name = envg.name }, { name = machg.name } }
  if env.cfg["use-default-secgroup"] == true then groups[#groups + 1] = { name = "default" } end
  local meta = server_metadata(env, params)
  local function body_of(zone)
    local s = { name = params.name, flavorRef = spec.flavor.id, imageRef = spec.image.id, user_data = ud,
      security_groups = groups, metadata = meta }
    if network then s.networks = { { uuid = network } } end
    if zone then s.availability_zone = zone end
    return { server = s }
  end
  env.ctx:infof("Launching a %s server from image %s", spec.flavor.name, spec.image.id)
  local server, zone, ccode = create_server(env, params, body_of, zones)
  if not server then return nil, zone, ccode end
  local id = tostring(server.id)
  local ok
  local active
  active, err, code = wait_active(env, id)
  if not active then return nil, err, code end
  local fip
  if env.cfg["use-floating-ip"] == true then
    fip, err, code = allocate_floating_ip(env, params.name)
    if not fip then return nil, err, code end
    ok, err, code = associate(env, id, fip.ip)
    if not ok then return nil, err, code end
  end
  local f = spec.flavor
  return instance_object(env, active, { floating_ip = fip and fip.ip, hardware = { arch = spec.image.arch,
    mem = f.mem, ["cpu-cores"] = f.cpu_cores, ["root-disk"] = f.root_disk,
    ["availability-zone"] = zone or active["OS-EXT-AZ:availability_zone"] } })
end

-- Machine 0 as recorded in provider-state: its server document.
local function state_server(env)
  local ids, err, code = P.state_server_instances(env)
  if not ids then return nil, err, code end
  for _, id in ipairs(ids) do
    local doc = call(env, "GET", "/servers/{id}", { id = id })
    local s = doc and doc.server
    if s and s.status == "ACTIVE" and #server_addresses(s) > 0 then return s end
  end
  return nil, string.format("no state server instance of %s is running (%s)", env.name, table.concat(ids, ", ")),
    "UNAVAILABLE"
end

--- Machine 0's status documents over SSH as ubuntu, the host key pinned
--- to the one machine 0 made at the end of bootstrap (bootstrap-host-key),
--- else to the one generated for it (the server's juju-host-key metadata).
function P.state_dump(env)
  local s, err, code = state_server(env)
  if not s then return nil, err, code end
  return cloud.state_dump(env, server_addresses(s)[1].value, metadata(s)[P.HOST_KEY_META])
end

--- Waits until machine 0's agent reports (its heartbeat, read over SSH).
function P.wait_agent(env) return cloud.wait_agent(env, P.state_dump) end

function P.all_instances(env)
  local list, msg, code = env_servers(env)
  if not list then return nil, msg, code end
  local out = {}
  for _, s in ipairs(list) do out[#out + 1] = instance_object(env, s) end
  return out
end

local function delete_server(env, id)
  local doc, msg, code = call(env, "DELETE", "/servers/{id}", { id = id })
  if not doc and code ~= "NOT_FOUND" then return nil, string.format("cannot delete server %s: %s", id, msg), code end
  return true
end

local function servers_in_group(env, name)
  local list, msg, code = env_servers(env)
  if not list then return nil, msg, code end
  local out = {}
  for _, s in ipairs(list) do
    for _, g in ipairs(type(s.security_groups) == "table" and s.security_groups or {}) do
      if type(g) == "table" and g.name == name then out[#out + 1] = tostring(s.id) end
    end
  end
  return out
end

local function release_floating_ip(env, id)
  local doc, msg, code = call(env, "DELETE", "/os-floating-ips/{id}", { id = id })
  if not doc and code ~= "NOT_FOUND" then
    return nil, string.format("cannot release floating IP %s: %s", id, msg), code
  end
  return true
end

-- A group by id, or by name when the journal has only the intent.
local function release_group(env, r)
  local gid, name = r.id, r.name
  if not gid then
    local groups, msg, code = list_groups(env)
    if not groups then return nil, msg, code end
    local g = group_named(groups, name)
    if not g then return true end
    gid = tostring(g.id)
  end
  -- The engine journals machine 0's intent before start_instance makes
  -- the groups, so a reverse-order release reaches a group first: the
  -- environment's servers in it go first.
  local ids, msg, code = servers_in_group(env, name)
  if not ids then return nil, msg, code end
  for _, id in ipairs(ids) do
    local ok, err, c = delete_server(env, id)
    if not ok then return nil, err, c end
  end
  return delete_group(env, gid, name)
end

function P.release(env, r)
  if r.kind == "instance" then
    if r.id then return delete_server(env, r.id) end
    local list, msg, code = env_servers(env, r.name)
    if not list then return nil, msg, code end
    for _, s in ipairs(list) do
      local ok, err, c = delete_server(env, tostring(s.id))
      if not ok then return nil, err, c end
    end
    return true
  elseif r.kind == "security-group" then
    return release_group(env, r)
  elseif r.kind == "floating-ip" then
    -- An intent without an id: the allocation never answered. nova-network
    -- floating IPs carry no tags, so an address whose answer was lost
    -- cannot be told from the project's others: it is left alone.
    if not r.id then return true end
    return release_floating_ip(env, r.id)
  elseif r.kind == "container" then
    P.storage(env)
    return env.store:remove_all()
  end
  return nil, string.format("openstack: unknown resource kind %q", tostring(r.kind)), "INVALID"
end

-- Everything of the environment: its servers (by metadata) and the
-- floating IPs on them, its groups (by Juju's names), then the container.
function P.destroy(env)
  local list, err, code = env_servers(env)
  if not list then return nil, err, code end
  local ours = {}
  for _, s in ipairs(list) do ours[tostring(s.id)] = true end
  local fips = {}
  if next(ours) then
    local doc, msg, c = call(env, "GET", "/os-floating-ips")
    if not doc then return nil, "cannot list floating IPs: " .. msg, c end
    for _, f in ipairs(type(doc.floating_ips) == "table" and doc.floating_ips or {}) do
      if f.instance_id ~= nil and ours[tostring(f.instance_id)] then fips[#fips + 1] = tostring(f.id) end
    end
  end
  for _, s in ipairs(list) do
    local ok
    ok, err, code = delete_server(env, tostring(s.id))
    if not ok then return nil, err, code end
  end
  for _, id in ipairs(fips) do
    local ok
    ok, err, code = release_floating_ip(env, id)
    if not ok then return nil, err, code end
  end
  local groups
  groups, err, code = list_groups(env)
  if not groups then return nil, "cannot list security groups: " .. err, code end
  local prefix = "juju-" .. env.name
  local exact = "^" .. prefix:gsub("%p", "%%%0") .. "%-%d+$"
  local doomed = {}
  for _, g in ipairs(groups) do
    if g.name == prefix or (type(g.name) == "string" and g.name:match(exact)) then doomed[#doomed + 1] = g end
  end
  cloud.machine_groups_first(doomed)
  for _, g in ipairs(doomed) do
    local ok
    ok, err, code = delete_group(env, tostring(g.id), g.name)
    if not ok then return nil, err, code end
  end
  P.storage(env)
  local ok
  ok, err, code = env.store:remove_all()
  if not ok then return nil, "cannot remove the control container: " .. tostring(err), code end
  return true
end

-- For the provider's spec.
P.internal.ensure_group = ensure_group
P.internal.find_spec = find_spec
P.internal.user_data = user_data
P.internal.env_rules = env_rules
P.internal.server_addresses = server_addresses

return P
