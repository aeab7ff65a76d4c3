-- providers/maas: MAAS 1.x (Juju 1.25's maas provider; docs/maas.md,
-- providers.md 9). The API 1.0 through maas.client (OAuth 1.0 PLAINTEXT),
-- environ storage in MAAS files named "<maas-agent-name>-..."
-- (juju.cloud.storage.maas). Machine 0 is a node acquired for the
-- environment's agent name (arch, cpu_count, mem, tags from the
-- constraints, zone or node name from the placement), started with the
-- series and the base64 gzip'd user-data, waited for until Deployed; its
-- addresses are its ip_addresses, then its hostname. The node is in the
-- journal (its id on the engine's intent as soon as it is acquired)
-- and released on any failure; destroy releases every node of the agent
-- name. The generated SSH host key's public half is kept in the MAAS file
-- "<agent>-bootstrap-host-key" so that `juju status` pins it too.
local crypto = require("juju.lazy")("juju.crypto")
local gzip = require("juju.lazy")("juju.gzip")
local wait = require("juju.wait")
local common = require("juju.provider_common")
local sshinit = require("juju.lazy")("juju.sshinit")
local cloud = require("juju.cloud.provider")
local constraints_mod = require("juju.constraints")
local oauth = require("juju.cloud.sign.oauth")
local maas_storage = require("juju.lazy")("juju.cloud.storage.maas")
local client = require("maas.client")

local P = {
  name = "maas",
  api_version = 2,
  description = "MAAS 1.x: an acquired and deployed node, environ storage in MAAS files",
  default_state_store = "mongodb",
  config = {
    fields = {
      ["maas-server"] = { type = "string", allow_empty = true, immutable = true,
        description = "the MAAS server URL, e.g. http://maas.example/MAAS" },
      ["maas-oauth"] = { type = "string", secret = true, allow_empty = true,
        description = "the MAAS user's API key: <consumer-key>:<token-key>:<token-secret>" },
      ["maas-agent-name"] = { type = "string", allow_empty = true, immutable = true,
        description = "groups the environment's nodes and prefixes its files (generated at prepare)" },
    },
  },
  constraints = {
    unsupported = { "cpu-power", "instance-type" },
  },
  internal = {},
}

P.DATA_DIR = "/var/lib/juju"
P.UBUNTU = "ubuntu"
-- The storage file (under the agent-name prefix) holding machine 0's
-- generated SSH host key, public half, for a later `juju status`.
P.HOST_KEY_FILE = "bootstrap-host-key"
P.STATUS_CONNECT_TIMEOUT = 30
P.THROTTLED_ATTEMPTS = 4 -- acquire and start after a 429/503 (nothing done)
P.DEPLOY_POLL_MAX = 10 -- seconds between deployment_status queries at most (Juju: 10)
P.ERR_AGENT_NAME_SET = "maas-agent-name is already set; this should not be set by hand"

local function present(v) return type(v) == "string" and v ~= "" end

-- ------------------------------------------------------------- config --

local function check_config(cfg)
  local server = cfg["maas-server"]
  if not present(server) then
    return nil, "maas-server: must be set to the MAAS server URL (e.g. http://maas.example/MAAS)"
  end
  if not server:match("^https?://[^/?#%s]+") then
    return nil, string.format("maas-server: malformed maas-server URL %q (want http(s)://host[:port]/MAAS)", server)
  end
  if not present(cfg["maas-oauth"]) then
    return nil, "maas-oauth: must be set to the MAAS user's API key (<consumer-key>:<token-key>:<token-secret>)"
  end
  local creds, msg = oauth.parse_key(cfg["maas-oauth"], "maas-oauth")
  if not creds then return nil, msg end
  return creds
end

local http_options = cloud.http_options

local function new_client(ctx, cfg, creds)
  return client.new { server = cfg["maas-server"], creds = creds, http = http_options(cfg, ctx),
    clock = ctx.clock, log = ctx.log }
end

-- Juju's verifyCredentials: a cheap call that needs them.
local function verify_credentials(c, server)
  local doc, msg, code = c:call("GET", "maas/", { op = "get_config", query = { name = "maas_name" } })
  if doc ~= nil then return true end
  if code == "AUTH" then
    return nil, string.format("MAAS at %s refused the credentials (authentication failed): check maas-oauth", server),
      "AUTH"
  end
  return nil, string.format("cannot verify the credentials at %s: %s", server, msg), code
end

function P.prepare_for_bootstrap(ctx, cfg)
  local creds, err = check_config(cfg)
  if not creds then return nil, err end
  ctx:add_secret(creds.token_secret)
  if present(cfg["maas-agent-name"]) then return nil, P.ERR_AGENT_NAME_SET end
  local ok, verr, vcode = verify_credentials(new_client(ctx, cfg, creds), cfg["maas-server"])
  if not ok then return nil, verr, vcode end
  cfg["maas-agent-name"] = crypto.uuid4()
  return cfg
end

function P.validate_config(ctx, cfg)
  local creds, err = check_config(cfg)
  if not creds then return nil, err end
  ctx:add_secret(creds.token_secret)
  return cfg
end

function P.open(ctx, cfg)
  local creds, err = check_config(cfg)
  if not creds then return nil, err end
  ctx:add_secret(creds.token_secret)
  local agent = cfg["maas-agent-name"]
  if not present(agent) then return nil, "maas-agent-name: not set (the environment is not prepared)" end
  return {
    ctx = ctx, cfg = cfg, name = ctx.env_name or cfg.name, agent = agent, server = cfg["maas-server"],
    maas = new_client(ctx, cfg, creds),
    -- the credentials stay in the closure, not in a field
    open_store = function()
      return maas_storage.new { server = cfg["maas-server"], oauth = creds, prefix = agent .. "-",
        http = http_options(cfg, ctx) }
    end,
  }
end

function P.storage(env)
  if env.storage then return env.storage end
  local store, err = env.open_store()
  if not store then error("maas storage: " .. tostring(err), 0) end
  env.storage = store
  return store
end

function P.state_server_instances(env)
  return common.state_server_instances(P.storage(env))
end

function P.constraints_validator(_) return P.constraints end

-- -------------------------------------------------------------- nodes --

--- The system id of an instance id (the node's resource_uri, its last
--- path segment) or of a system id itself.
local function system_id(id)
  return (tostring(id):match("([^/]+)/*$"))
end
P.internal.system_id = system_id

local function zone_name(z)
  if type(z) == "table" then return z.name end
  return z
end

local function node_addresses(node)
  local out = {}
  for _, ip in ipairs(type(node.ip_addresses) == "table" and node.ip_addresses or {}) do
    if type(ip) == "string" and ip ~= "" then out[#out + 1] = common.address(ip, "cloud-local") end
  end
  -- after the addresses: a node's hostname resolves only through MAAS's DNS
  if present(node.hostname) then out[#out + 1] = common.address(node.hostname, "cloud-local") end
  return out
end

local function list_nodes(env, query)
  local q = { agent_name = env.agent }
  for k, v in pairs(query or {}) do q[k] = v end
  local doc, msg, code = env.maas:call("GET", "nodes/", { op = "list", query = q })
  if doc == nil then return nil, client.describe("list the nodes of " .. env.agent, msg), code end
  if type(doc) ~= "table" then return nil, "cannot list nodes: MAAS answered no JSON list", "INVALID" end
  local out = {}
  for _, n in ipairs(doc) do
    -- only this environment's: an older MAAS ignores agent_name
    if type(n) == "table" and n.agent_name == env.agent then out[#out + 1] = n end
  end
  return out
end

local function node_by_id(env, sid)
  local list, msg, code = list_nodes(env, { id = sid })
  if not list then return nil, msg, code end
  for _, n in ipairs(list) do if n.system_id == sid then return n end end
  return nil, string.format("node %s is not allocated to this environment (agent name %s)", sid, env.agent),
    "NOT_FOUND"
end

local function instance_object(env, node)
  local sid = node.system_id
  return {
    id = node.resource_uri or sid, status = "running", addresses = node_addresses(node), ssh_port = 22,
    hardware = { arch = type(node.architecture) == "string" and node.architecture:match("^[^/]+") or nil,
      mem = tonumber(node.memory), ["cpu-cores"] = tonumber(node.cpu_count),
      tags = type(node.tag_names) == "table" and node.tag_names or nil,
      ["availability-zone"] = zone_name(node.zone) },
    refresh = function()
      local fresh, err, code = node_by_id(env, sid)
      if not fresh then return nil, err, code end
      return instance_object(env, fresh)
    end,
  }
end

local function release_nodes(env, sids)
  if #sids == 0 then return true end
  local doc, msg, code, resp = env.maas:call("POST", "nodes/", { op = "release", form = { nodes = sids }, retry = true })
  if doc == nil then
    -- a node MAAS no longer knows, or no longer allocated, is released
    if code == "NOT_FOUND" or code == "CONFLICT" or (resp and resp.status == 400 and tostring(msg):find("Unknown node")) then
      return true
    end
    return nil, client.describe("release nodes " .. table.concat(sids, ", "), msg), code
  end
  return true
end

local function tools_arches(params)
  local out = {}
  for _, t in ipairs(params.tools or {}) do if t.arch then out[t.arch] = true end end
  return next(out) and out or nil
end

-- The acquire form of the constraints and placement, or nil, message.
local function acquire_form(env, params)
  local c = params.constraints or {}
  local f = { agent_name = env.agent }
  if present(c.arch) then
    f.arch = c.arch
  else
    -- tools of one architecture: only a node of it can run them
    local arches = tools_arches(params) or {}
    local only = next(arches)
    if only and next(arches, only) == nil then f.arch = only end
  end
  if c["cpu-cores"] and c["cpu-cores"] ~= "" then f.cpu_count = tostring(c["cpu-cores"]) end
  if c.mem and c.mem ~= "" then f.mem = tostring(math.ceil(tonumber(c.mem))) end
  if type(c.tags) == "table" and #c.tags > 0 then
    local tags, not_tags = {}, {}
    for _, t in ipairs(c.tags) do
      if t:sub(1, 1) == "^" then not_tags[#not_tags + 1] = t:sub(2) else tags[#tags + 1] = t end
    end
    if #tags > 0 then f.tags = table.concat(tags, ",") end
    if #not_tags > 0 then f.not_tags = table.concat(not_tags, ",") end
  end
  local placement = params.placement
  if present(placement) then
    local zone = placement:match("^zone=(.+)$")
    if zone then
      f.zone = zone
    elseif placement:find("=", 1, true) then
      return nil, string.format("unknown placement directive: %s", placement), "INVALID"
    else
      f.name = placement
    end
  end
  return f
end
P.internal.acquire_form = acquire_form

-- The engine's intent for machine 0 (its client-chosen name), or ours.
local function instance_intent(env, name)
  local j = env.ctx.journal
  local rs = j:resources("instance")
  for i = #rs, 1, -1 do
    if rs[i].name == name and rs[i].state == "intended" then return rs[i] end
  end
  local ok, err = j:intent("instance", name)
  if not ok then return nil, err end
  return instance_intent(env, name)
end

local function acquire(env, params, f)
  local intent, ierr = instance_intent(env, params.name)
  if not intent then return nil, ierr end
  local node, msg, code, resp = env.maas:call("POST", "nodes/", { op = "acquire", form = f,
    throttled_attempts = P.THROTTLED_ATTEMPTS })
  if node == nil then
    if code == "CONFLICT" then
      local cons = constraints_mod.format(params.constraints or {})
      local said = resp and (resp.body or ""):match("^%s*([^\r\n<]+)") or msg
      -- the line names the call too, as every other failure's does
      local call = tostring(msg):match("^(maas: %u+ %S+):") or "maas: POST nodes/?op=acquire"
      return nil, string.format("cannot acquire a node: no node available matches constraints %q%s%s (MAAS: %s; %s)",
        cons, f.zone and (" in zone " .. f.zone) or "", f.name and (" named " .. f.name) or "", tostring(said), call),
        "QUOTA"
    end
    return nil, client.describe("acquire a node", msg), code
  end
  if type(node) ~= "table" or not present(node.system_id) then
    return nil, "cannot acquire a node: MAAS answered no node", "INVALID"
  end
  -- The node is ours now: its id goes on the intent at once (still an
  -- intent: the engine completes it when start_instance returns), so a
  -- failure or an interrupt from here on releases this node.
  intent.id = node.resource_uri or node.system_id
  local ok, jerr = env.ctx.journal:save()
  if not ok then return nil, jerr end
  return node
end

local function user_data(text)
  return crypto.base64(gzip.gzip(text))
end
P.internal.user_data = user_data

local function deploy_status(env, sid)
  local doc, msg, code, resp = env.maas:call("GET", "nodes/", { op = "deployment_status", query = { nodes = sid } })
  if doc == nil then
    if resp and resp.status == 400 then return "unsupported" end
    return nil, msg, code
  end
  return type(doc) == "table" and doc[sid] or nil
end

local function wait_deployed(env, sid)
  local timeout = tonumber(env.cfg["bootstrap-timeout"]) or 600
  return wait.poll {
    what = "for node " .. sid .. " to be deployed", timeout = timeout,
    interval = 1, backoff = 1.5, max_interval = P.DEPLOY_POLL_MAX, clock = env.ctx.clock,
    say = function(line) env.ctx:infof("%s", line) end, check_interrupt = function() env.ctx:check_interrupt() end,
    poll = function()
      local st, msg, code = deploy_status(env, sid)
      if st == nil and msg then
        -- throttled: MAAS did nothing, ask again; any other failure ends
        -- the wait naming the call (Juju 1.25's waitForNodeDeployment
        -- returned the error; the client already retried the GET)
        if code == "THROTTLED" then return nil, msg end
        return false, string.format("cannot read the deployment status of node %s: %s", sid, msg), code
      end
      -- a MAAS without deployment_status (400): Juju skipped the wait
      if st == "Deployed" or st == "unsupported" then return true end
      if st == "Failed deployment" then
        return false, string.format("node %s failed to deploy (MAAS: Failed deployment)", sid), "DEPLOY"
      end
      return nil, "node is " .. tostring(st or "not listed")
    end,
  }
end

local function store_host_key(env, params)
  local hk = params.host_keys and params.host_keys.ed25519
  if not (hk and type(hk.public) == "string") then return true end
  local ok, err = env.ctx.journal:record("storage", P.HOST_KEY_FILE)
  if not ok then return nil, err end
  ok, err = P.storage(env):put(P.HOST_KEY_FILE, (hk.public:gsub("%s+$", "")) .. "\n")
  if not ok then return nil, "cannot store the bootstrap host key: " .. tostring(err) end
  return true
end

function P.start_instance(env, params)
  local icfg = params.instance_config
  -- Everything that can be refused is checked before anything is made.
  local form, err, code = acquire_form(env, params)
  if not form then return nil, err, code end
  local ok
  ok, err, code = store_host_key(env, params)
  if not ok then return nil, err, code end
  env.ctx:infof("Acquiring a node for %s", params.name)
  local node
  node, err, code = acquire(env, params, form)
  if not node then return nil, err, code end
  local sid = node.system_id
  local arch = type(node.architecture) == "string" and node.architecture:match("^[^/]+") or nil
  local arches = tools_arches(params)
  if arches and arch and not arches[arch] then
    local have = {}
    for a in pairs(arches) do have[#have + 1] = a end
    table.sort(have)
    return nil, string.format("node %s is %s: no tools for it (tools: %s); use --constraints arch=%s", sid, arch,
      table.concat(have, ", "), have[1]), "INVALID"
  end
  env.ctx:infof("Starting node %s (%s) with %s", sid, tostring(node.hostname), tostring(icfg.series))
  local started, msg
  started, msg, code = env.maas:call("POST", "nodes/" .. sid .. "/", { op = "start",
    form = { distro_series = icfg.series, user_data = user_data(params.userdata) },
    throttled_attempts = P.THROTTLED_ATTEMPTS })
  if started == nil then return nil, client.describe("start node " .. sid, msg), code end
  local done
  done, err, code = wait_deployed(env, sid)
  if not done then return nil, err, code end
  local fresh
  fresh, err, code = node_by_id(env, sid)
  if not fresh then return nil, err, code end
  return instance_object(env, fresh)
end

-- ------------------------------------------------------------- status --

local function state_server(env)
  local ids, err, code = P.state_server_instances(env)
  if not ids then return nil, err, code end
  local node
  for _, id in ipairs(ids) do
    node, err, code = node_by_id(env, system_id(id))
    if node then return node end
  end
  return nil, err, code
end

--- Machine 0's status documents over SSH as ubuntu, the host key pinned
--- to the one machine 0 made at the end of bootstrap (bootstrap-host-key),
--- else to the one generated for it (the bootstrap-host-key file).
function P.state_dump(env)
  local node, err, code = state_server(env)
  if not node then return nil, err, code end
  -- neither: no pin, the environment's known_hosts decides
  local key = not present(env.cfg["bootstrap-host-key"]) and P.storage(env):get(P.HOST_KEY_FILE) or nil
  local target = sshinit.target(env.ctx, env.cfg, { user = P.UBUNTU,
    host_key = cloud.host_key(env, key and (key:gsub("%s+$", "")) or nil) })
  local s, serr, scode
  for _, a in ipairs(node_addresses(node)) do
    s, serr, scode = sshinit.connect(target, a.value, P.STATUS_CONNECT_TIMEOUT)
    if s or scode == "SSH_HOSTKEY" then break end
  end
  if not s then return nil, serr or ("node " .. node.system_id .. " has no address"), scode end
  local doc, derr, dcode = sshinit.state_dump_session(s, P.DATA_DIR)
  s:close()
  return doc, derr, dcode
end

--- Waits until machine 0's agent reports (its heartbeat, read over SSH).
function P.wait_agent(env) return cloud.wait_agent(env, P.state_dump) end

-- ------------------------------------------------------------ cleanup --

function P.all_instances(env)
  local list, msg, code = list_nodes(env)
  if not list then return nil, msg, code end
  local out = {}
  for _, n in ipairs(list) do out[#out + 1] = instance_object(env, n) end
  return out
end

local function env_node_ids(env)
  local list, msg, code = list_nodes(env)
  if not list then return nil, msg, code end
  local sids = {}
  for _, n in ipairs(list) do sids[#sids + 1] = n.system_id end
  return sids
end

function P.release(env, r)
  if r.kind == "instance" then
    local sid = r.id and system_id(r.id)
    if sid then return release_nodes(env, { sid }) end
    -- an intent whose acquire answer was lost: the nodes of the agent name
    local sids, msg, code = env_node_ids(env)
    if not sids then return nil, msg, code end
    return release_nodes(env, sids)
  end
  return nil, string.format("maas: unknown resource kind %q", tostring(r.kind)), "INVALID"
end

-- Everything of the environment: its nodes (by agent name), then its files.
function P.destroy(env)
  local sids, err, code = env_node_ids(env)
  if not sids then return nil, err, code end
  local ok
  ok, err, code = release_nodes(env, sids)
  if not ok then return nil, err, code end
  ok, err, code = P.storage(env):remove_all()
  if not ok then return nil, "cannot remove the environment's MAAS files: " .. tostring(err), code end
  return true
end

return P
