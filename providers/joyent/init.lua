-- providers/joyent: Joyent SmartDataCenter (Juju 1.24's joyent provider;
-- docs/joyent.md). CloudAPI through joyent.cloudapi (HTTP Signature with
-- the account's SSH key, every call named by its path template), environ
-- storage in Manta under /<manta-user>/stor/<control-dir>
-- (juju.cloud.storage.manta), the image from simplestreams (cloud spec
-- {region, sdc-url}; image-metadata-url first), the smallest fitting
-- package (joyent.packages), one machine created with plain-YAML
-- cloud-init user-data and juju tags, then the engine's SSH finalizer.
--
-- CVE-2015-1316: the private key signs requests on this machine only. It is
-- a secret field (stripped from what machine 0 gets), never read into the
-- config from private-key-path, and never put into user-data, metadata,
-- tags, storage, provider-state, messages or command lines.
local crypto = require("juju.lazy")("juju.crypto")
local common = require("juju.provider_common")
local cloud = require("juju.cloud.provider")
local constraints_mod = require("juju.constraints")
local manta = require("juju.lazy")("juju.cloud.storage.manta")
local sign = require("juju.lazy")("juju.sign")
local simplestreams = require("juju.lazy")("juju.simplestreams")
local http = require("juju.lazy")("juju.http")
local httpsig = require("juju.cloud.sign.httpsig")
local cloudapi = require("joyent.cloudapi")
local packages = require("joyent.packages")

local P = {
  name = "joyent",
  api_version = 2,
  description = "Joyent SmartDataCenter: CloudAPI machines and a Manta control directory",
  default_state_store = "mongodb",
  config = {
    fields = {
      ["sdc-user"] = { type = "string", secret = true, allow_empty = true,
        description = "the CloudAPI account (default $SDC_ACCOUNT)" },
      ["sdc-key-id"] = { type = "string", secret = true, allow_empty = true,
        description = "the fingerprint of the account's SSH key CloudAPI knows (default $SDC_KEY_ID)" },
      ["sdc-url"] = { type = "string", allow_empty = true, immutable = true,
        description = "the CloudAPI URL (default $SDC_URL, then https://us-west-1.api.joyentcloud.com)" },
      ["manta-user"] = { type = "string", secret = true, allow_empty = true,
        description = "the Manta account (default $MANTA_USER)" },
      ["manta-key-id"] = { type = "string", secret = true, allow_empty = true,
        description = "the fingerprint of the account's SSH key Manta knows (default $MANTA_KEY_ID)" },
      ["manta-url"] = { type = "string", allow_empty = true, immutable = true,
        description = "the Manta URL (default $MANTA_URL, then https://us-east.manta.joyent.com)" },
      ["private-key-path"] = { type = "string", allow_empty = true, immutable = true,
        description = "the SSH private key that signs requests (default $MANTA_PRIVATE_KEY_FILE)" },
      ["private-key"] = { type = "string", secret = true, allow_empty = true, immutable = true,
        description = "the private key itself, instead of private-key-path" },
      algorithm = { type = "string", allow_empty = true, immutable = true,
        values = { "", "rsa-sha1", "rsa-sha256", "rsa-sha512", "ecdsa-sha256", "ecdsa-sha384", "ecdsa-sha512",
          "ed25519-sha512" },
        description = "the HTTP Signature algorithm (default by the key: rsa-sha256, ecdsa-sha256/384/512 "
          .. "by curve, ed25519-sha512)" },
      ["control-dir"] = { type = "string", allow_empty = true, immutable = true,
        description = "the Manta directory of the environment's storage (generated at prepare)" },
    },
  },
  constraints = {
    conflicts = { { "instance-type", { "mem", "cpu-cores", "root-disk" } } },
    unsupported = { "tags", "cpu-power" },
    vocab = { arch = { "amd64" } },
  },
  internal = {},
}

P.DEFAULT_SDC_URL = "https://us-west-1.api.joyentcloud.com"
P.DEFAULT_MANTA_URL = "https://us-east.manta.joyent.com"
-- The tag holding machine 0's generated SSH host key (public half), so a
-- later `juju status` of a bootstrap that stopped short still pins it.
P.HOST_KEY_TAG = "juju-host-key"
P.STOP_TIMEOUT = 300
P.CREDENTIAL_KEYS = { "sdc-user", "sdc-key-id", "private-key-path (or private-key)" }
-- CloudAPI states of a machine that is starting or up (a failed one still
-- exists and is released, but is never waited for).
local ALIVE = { provisioning = true, running = true, stopping = true, stopped = true, offline = true }
local function exists(state) return type(state) == "string" and state ~= "deleted" end

local present = cloud.present

-- ------------------------------------------------------------- config --

local FALLBACKS = {
  ["sdc-user"] = "SDC_ACCOUNT", ["sdc-key-id"] = "SDC_KEY_ID", ["sdc-url"] = "SDC_URL",
  ["manta-user"] = "MANTA_USER", ["manta-key-id"] = "MANTA_KEY_ID", ["manta-url"] = "MANTA_URL",
  ["private-key-path"] = "MANTA_PRIVATE_KEY_FILE",
}
local SECRET = { ["sdc-user"] = true, ["sdc-key-id"] = true, ["manta-user"] = true, ["manta-key-id"] = true }
local DEFAULTS = { ["sdc-url"] = P.DEFAULT_SDC_URL, ["manta-url"] = P.DEFAULT_MANTA_URL }

--- The effective settings (cfg's, else the environment's, else the
--- defaults) and the keys taken from the environment.
local function settings(ctx, cfg)
  local s, from_env = {}, {}
  for key, var in pairs(FALLBACKS) do
    if present(cfg[key]) then
      s[key] = cfg[key]
    else
      local v = ctx and ctx:getenv(var)
      if present(v) then
        s[key] = v
        from_env[key] = v
        if SECRET[key] then ctx:add_secret(v) end
      else
        s[key] = DEFAULTS[key]
      end
    end
  end
  s["private-key"] = present(cfg["private-key"]) and cfg["private-key"] or nil
  s.algorithm = present(cfg.algorithm) and cfg.algorithm or nil
  return s, from_env
end

local function check_url(key, v)
  local u = http.parse_url(v)
  if not (u and present(u.host) and (u.scheme == "http" or u.scheme == "https")) then
    return nil, string.format("%s: %q must be an http(s) URL with a host, e.g. %s", key, http.safe_url(v),
      DEFAULTS[key])
  end
  return true
end

local function check_config(ctx, cfg)
  local s = settings(ctx, cfg)
  for _, k in ipairs({ "sdc-user", "sdc-key-id", "manta-user", "manta-key-id" }) do
    if not present(s[k]) then
      return nil, string.format("%s: required, or set $%s", k, FALLBACKS[k])
    end
  end
  for _, k in ipairs({ "sdc-url", "manta-url" }) do
    local ok, err = check_url(k, s[k])
    if not ok then return nil, err end
  end
  if not present(s["private-key"]) and not present(s["private-key-path"]) then
    return nil, "private-key-path: required (the SSH private key CloudAPI and Manta know), or set "
      .. "$MANTA_PRIVATE_KEY_FILE, or give private-key"
  end
  local dir = cfg["control-dir"]
  if present(dir) and (dir:find("/", 1, true) or dir == "." or dir == "..") then
    return nil, string.format("control-dir: %q must be one path component", dir)
  end
  return s
end

--- The signing key: private-key's text, else the file at private-key-path
--- (the messages name the key, never its content); fills s.algorithm
--- from the key when it is not set, and checks the two fit.
local function load_key(ctx, s)
  local k, msg, code, which
  if present(s["private-key"]) then
    which = "private-key"
    k, msg, code = sign.load_key(s["private-key"], "private-key")
  else
    which = "private-key-path"
    k, msg, code = sign.load_key_file(ctx:expand_home(s["private-key-path"]))
  end
  if not k then return nil, which .. ": " .. msg, code end
  local kind = k:info().type
  if not s.algorithm then s.algorithm = httpsig.default_algorithm(k) end
  if s.algorithm:match("^(%w+)%-") ~= kind then
    k:close()
    return nil, string.format("algorithm: %s does not fit the %s key of %s", s.algorithm, kind, which), "INVALID"
  end
  return k
end

--- The region of sdc-url: its first DNS label, "some-region" for a
--- loopback address (Juju's test hook).
local function region_of(url)
  local host = (http.parse_url(url) or {}).host or ""
  if host == "localhost" or host:match("^127%.") then return "some-region" end
  return host:match("^([^.]+)") or host
end

local http_options = cloud.http_options

local function new_client(ctx, cfg, s, key)
  return cloudapi.new { url = s["sdc-url"], user = s["sdc-user"], key = key, key_id = s["sdc-key-id"],
    algorithm = s.algorithm, http = http_options(cfg, ctx), clock = ctx.clock,
    credential_keys = P.CREDENTIAL_KEYS, say = function(line) ctx:infof("%s", line) end,
    check_interrupt = function() ctx:check_interrupt() end }
end

-- CountMachines (HEAD /<user>/machines): refused credentials are one line
-- naming the keys to check.
local function verify(client, s)
  local doc, msg, code = client:call("HEAD", "/{user}/machines")
  if doc then return true end
  if code == "AUTH" then
    -- the message already names the keys to check (P.CREDENTIAL_KEYS)
    return nil, string.format("authentication failed at %s: %s", http.safe_url(s["sdc-url"]), msg), "AUTH"
  end
  return nil, string.format("cannot reach CloudAPI at %s: %s", http.safe_url(s["sdc-url"]), msg), code
end

function P.prepare_for_bootstrap(ctx, cfg)
  local s, err = check_config(ctx, cfg)
  if not s then return nil, err end
  local _, from_env = settings(ctx, cfg)
  for k, v in pairs(from_env) do cfg[k] = v end
  for k, v in pairs(DEFAULTS) do if not present(cfg[k]) then cfg[k] = v end end
  if not present(cfg["control-dir"]) then cfg["control-dir"] = (crypto.uuid4():gsub("-", "")) end
  local key, kerr, kcode = load_key(ctx, s)
  if not key then return nil, kerr, kcode end
  local ok, verr, vcode = verify(new_client(ctx, cfg, s, key), s)
  key:close()
  if not ok then return nil, verr, vcode end
  return cfg
end

function P.validate_config(ctx, cfg)
  local s, err = check_config(ctx, cfg)
  if not s then return nil, err end
  return cfg
end

function P.open(ctx, cfg)
  local s, err = check_config(ctx, cfg)
  if not s then return nil, err end
  if not present(cfg["control-dir"]) then return nil, "control-dir: not set (the environment is not prepared)" end
  local key, kerr, kcode = load_key(ctx, s)
  if not key then return nil, kerr, kcode end
  return { ctx = ctx, cfg = cfg, uuid = cfg.uuid, name = ctx.env_name or cfg.name, s = s, key = key,
    region = region_of(s["sdc-url"]), client = new_client(ctx, cfg, s, key) }
end

local function call(env, ...)
  return env.client:call(...)
end

-- ------------------------------------------------------------ storage --

function P.storage(env)
  if env.storage then return env.storage end
  local store, err = manta.new { url = env.s["manta-url"], user = env.s["manta-user"], key = env.key,
    key_id = env.s["manta-key-id"], root = "stor/" .. env.cfg["control-dir"], algorithm = env.s.algorithm,
    http = http_options(env.cfg, env.ctx) }
  if not store then error("joyent storage: " .. tostring(err), 0) end
  env.storage = store
  return store
end

function P.state_server_instances(env)
  return common.state_server_instances(P.storage(env))
end

-- The account's packages (read once per process).
local function package_list(env)
  if env.package_list then return env.package_list end
  local doc, msg, code = call(env, "GET", "/{user}/packages")
  if not doc then return nil, "cannot list packages: " .. msg, code end
  env.package_list = packages.parse(doc)
  return env.package_list
end

--- Instance types are the account's packages. A failed package list
--- fails the validation (as Juju 1.25's ConstraintsValidator), so the
--- bootstrap stops at the call that failed instead of reading it again.
function P.constraints_validator(env)
  if not env then return P.constraints end
  local list, msg, code = package_list(env)
  if not list then return nil, msg, code end
  local names = {}
  for _, p in ipairs(list) do names[#names + 1] = p.name end
  return { conflicts = P.constraints.conflicts, unsupported = P.constraints.unsupported,
    vocab = { arch = { "amd64" }, ["instance-type"] = names } }
end

-- ---------------------------------------------------------- instances --

--- Typed addresses of a machine: primaryIp public first, the other ips
--- cloud-local.
local function machine_addresses(m)
  local out, seen = {}, {}
  if present(m.primaryIp) then
    seen[m.primaryIp] = true
    out[1] = common.address(m.primaryIp, "public")
  end
  for _, ip in ipairs(type(m.ips) == "table" and m.ips or {}) do
    if present(ip) and not seen[ip] then
      seen[ip] = true
      out[#out + 1] = common.address(ip, "cloud-local")
    end
  end
  return out
end

local function tags_of(m) return type(m.tags) == "table" and m.tags or {} end

local function instance_object(env, m, hardware)
  local inst = { id = tostring(m.id), name = m.name, status = m.state, addresses = machine_addresses(m),
    ssh_port = 22, hardware = hardware }
  inst.refresh = function()
    local doc, msg, code = call(env, "GET", "/{user}/machines/{id}", { id = m.id })
    if not doc then return nil, msg, code end
    return instance_object(env, doc, hardware)
  end
  return inst
end

-- The environment's machines that exist, failed ones included (by their
-- juju-env-uuid tag).
local function env_machines(env, name)
  local doc, msg, code = call(env, "GET", "/{user}/machines", nil, nil, { ["tag.juju-env-uuid"] = env.uuid })
  if not doc then return nil, "cannot list machines: " .. msg, code end
  local out = {}
  for _, m in ipairs(doc) do
    if type(m) == "table" and tags_of(m)["juju-env-uuid"] == env.uuid and exists(m.state)
      and (name == nil or m.name == name) then
      out[#out + 1] = m
    end
  end
  return out
end

local function image_sources(env)
  local out = {}
  for i, url in ipairs(cloud.image_sources(env.cfg)) do out[i] = { url = url } end
  return out
end

-- Picks image and package: {image=, package=} or nil, message naming the cause.
local function find_spec(env, params)
  local c = params.constraints or {}
  if present(c.arch) and c.arch ~= "amd64" then
    return nil, string.format("invalid constraint value: arch=%s (Joyent machines are amd64)", c.arch), "INVALID"
  end
  local imgs, err = simplestreams.find_images(image_sources(env), {
    series = params.instance_config.series, arches = { "amd64" }, region = env.region,
    endpoint = env.s["sdc-url"], stream = env.cfg["image-stream"] },
    { fetch = cloud.fetcher(http_options(env.cfg, env.ctx)) })
  if not imgs then return nil, "cannot find an image: " .. err, "NOT_FOUND" end
  local list, msg, code = package_list(env)
  if not list then return nil, msg, code end
  if present(c["instance-type"]) then
    local known = false
    for _, p in ipairs(list) do if p.name == c["instance-type"] then known = true end end
    if not known then
      return nil, string.format("invalid constraint value: instance-type=%s (the account's packages: %s)",
        c["instance-type"], packages.describe(list)), "INVALID"
    end
  end
  local p = packages.choose(list, c)
  if not p then
    return nil, string.format("no package of %s matches constraints %q (packages: %s)", env.region,
      constraints_mod.format(c), packages.describe(list)), "INVALID"
  end
  return { image = imgs[1], package = p }
end

-- The POST /<user>/machines body: metadata and tags flattened with their
-- prefixes, as CloudAPI takes them.
local function machine_body(env, params, spec)
  local b = { name = params.name, package = spec.package.name, image = spec.image.id, firewall_enabled = false,
    ["metadata.cloud-init:user-data"] = params.userdata, ["tag.group"] = "juju", ["tag.env"] = env.name,
    ["tag.juju-env-uuid"] = env.uuid }
  for k, v in pairs((params.instance_config or {}).tags or {}) do
    if type(k) == "string" and (type(v) == "string" or type(v) == "boolean") then b["tag." .. k] = tostring(v) end
  end
  local hk = params.host_keys and params.host_keys.ed25519
  if hk and type(hk.public) == "string" then b["tag." .. P.HOST_KEY_TAG] = (hk.public:gsub("%s+$", "")) end
  return b
end

local function wait_running(env, id)
  local timeout = tonumber(env.cfg["bootstrap-timeout"]) or 600
  return cloud.poll(env, {
    what = "for machine " .. id .. " to be running with an address", timeout = timeout,
    poll = function()
      local m, msg, code = call(env, "GET", "/{user}/machines/{id}", { id = id })
      if not m then
        if code == "NOT_FOUND" then return nil, msg end
        return false, string.format("cannot read the state of machine %s: %s", id, msg), code
      end
      if m.state == "running" and #machine_addresses(m) > 0 then return m end
      if m.state == "failed" or not ALIVE[m.state] then
        return false, string.format("machine %s failed to start (state %s)", id, tostring(m.state)), "HTTP"
      end
      return nil, "machine is " .. tostring(m.state)
    end,
  })
end

function P.start_instance(env, params)
  -- Everything that can be refused is checked before anything is created.
  local spec, err, code = find_spec(env, params)
  if not spec then return nil, err, code end
  env.ctx:infof("Launching a %s machine from image %s", spec.package.name, spec.image.id)
  local m, resp
  m, err, code, resp = call(env, "POST", "/{user}/machines", nil, machine_body(env, params, spec))
  if not m then
    if resp == nil or (resp.status or 0) >= 500 then
      -- the request may have reached CloudAPI: adopt the machine if it exists
      local found = env_machines(env, params.name)
      if found and found[1] then m = found[1] end
    end
    if not m then return nil, "cannot start machine: " .. err, code end
  end
  if m.id == nil then return nil, "cloudapi POST /{user}/machines: the answer has no machine id", "HTTP" end
  local running
  running, err, code = wait_running(env, tostring(m.id))
  if not running then return nil, err, code end
  local p = spec.package
  return instance_object(env, running, { arch = "amd64", mem = p.mem, ["cpu-cores"] = p.cpu_cores,
    ["root-disk"] = tonumber(running.disk) or p.root_disk })
end

-- Machine 0 as recorded in provider-state: its machine document.
local function state_server(env)
  local ids, err, code = P.state_server_instances(env)
  if not ids then return nil, err, code end
  for _, id in ipairs(ids) do
    local m = call(env, "GET", "/{user}/machines/{id}", { id = id })
    if m and m.state == "running" and #machine_addresses(m) > 0 then return m end
  end
  return nil, string.format("no state server instance of %s is running (%s)", env.name, table.concat(ids, ", ")),
    "UNAVAILABLE"
end

--- Machine 0's status documents over SSH as ubuntu, the host key pinned
--- to the one machine 0 made at the end of bootstrap (bootstrap-host-key),
--- else to the one generated for it (the machine's juju-host-key tag).
function P.state_dump(env)
  local m, err, code = state_server(env)
  if not m then return nil, err, code end
  return cloud.state_dump(env, machine_addresses(m)[1].value, tags_of(m)[P.HOST_KEY_TAG])
end

--- Waits until machine 0's agent reports (its heartbeat, read over SSH).
function P.wait_agent(env) return cloud.wait_agent(env, P.state_dump) end

function P.all_instances(env)
  local list, msg, code = env_machines(env)
  if not list then return nil, msg, code end
  local out = {}
  for _, m in ipairs(list) do out[#out + 1] = instance_object(env, m) end
  return out
end

--- Stops the machine (CloudAPI, as gosdc's double, deletes stopped
--- machines only), waits until it is stopped, then deletes it; a machine
--- already gone (404, 410) is done.
local function delete_machine(env, id)
  local function gone(code) return code == "NOT_FOUND" end
  local m, msg, code = call(env, "GET", "/{user}/machines/{id}", { id = id })
  if not m then
    if gone(code) then return true end
    return nil, string.format("cannot delete machine %s: %s", id, msg), code
  end
  if m.state ~= "stopped" then
    local ok
    ok, msg, code = call(env, "POST", "/{user}/machines/{id}", { id = id }, nil, { action = "stop" })
    if not ok and gone(code) then return true end
    if not ok and code ~= "CONFLICT" then
      return nil, string.format("cannot stop machine %s: %s", id, msg), code
    end
    local stopped
    stopped, msg, code = cloud.poll(env, {
      what = "for machine " .. id .. " to stop", timeout = P.STOP_TIMEOUT,
      poll = function()
        local d, e, c = call(env, "GET", "/{user}/machines/{id}", { id = id })
        if not d then
          if gone(c) then return "gone" end
          return false, e, c
        end
        if d.state == "stopped" then return "stopped" end
        return nil, "machine is " .. tostring(d.state)
      end,
    })
    if not stopped then return nil, string.format("cannot stop machine %s: %s", id, msg), code end
    if stopped == "gone" then return true end
  end
  local ok
  ok, msg, code = call(env, "DELETE", "/{user}/machines/{id}", { id = id })
  if not ok and not gone(code) then return nil, string.format("cannot delete machine %s: %s", id, msg), code end
  return true
end

function P.release(env, r)
  if r.kind == "instance" then
    if r.id then return delete_machine(env, r.id) end
    local list, msg, code = env_machines(env, r.name)
    if not list then return nil, msg, code end
    for _, m in ipairs(list) do
      local ok, err, c = delete_machine(env, tostring(m.id))
      if not ok then return nil, err, c end
    end
    return true
  end
  return nil, string.format("joyent: unknown resource kind %q", tostring(r.kind)), "INVALID"
end

-- Everything of the environment: its machines (by tag), then the control
-- directory.
function P.destroy(env)
  local list, err, code = env_machines(env)
  if not list then return nil, err, code end
  for _, m in ipairs(list) do
    local ok
    ok, err, code = delete_machine(env, tostring(m.id))
    if not ok then return nil, err, code end
  end
  local ok
  ok, err, code = P.storage(env):remove_all()
  if not ok then return nil, "cannot remove the control directory: " .. tostring(err), code end
  return true
end

-- For the provider's spec.
P.internal.find_spec = find_spec
P.internal.machine_body = machine_body
P.internal.machine_addresses = machine_addresses
P.internal.region_of = region_of

return P
