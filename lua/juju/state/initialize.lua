-- juju.state.initialize: the documents `jujud bootstrap-state` creates in
-- the state store (spec 2.15 and step 12), machine 0's presence heartbeat,
-- and the agent state `juju status` derives from it.
--
-- Juju writes the bootstrap documents in one mgo/txn transaction and a
-- second run fails with "already initialized", so a bootstrap-state that
-- died half-way leaves a database nobody can finish (W15). Here every
-- document is written with store:ensure, in the spec's order: a re-run
-- inserts exactly the documents a failed run did not get to, and leaves
-- every document already there untouched. The documents hold their final
-- content (constraints set, serving info filled in, machine 0 voting)
-- rather than Juju's insert-then-update sequence, so there is nothing to
-- half-apply. Field names are the lower-cased Go names of 2.15.
local yaml = require("juju.yaml")

local M = {}

M.OWNER = "admin@local"
M.BOOTSTRAP_NONCE = "user-admin:bootstrap"
M.DEFAULT_STALE_AFTER = 30

-- state.MachineJob values as stored in machines.jobs.
M.JOB_CODES = { JobHostUnits = 1, JobManageEnviron = 2, JobManageNetworking = 3 }

-- Constraint names (juju.constraints) -> constraintsDoc fields.
local CONSTRAINT_FIELDS = {
  arch = "arch", container = "container", ["cpu-cores"] = "cpucores", ["cpu-power"] = "cpupower",
  ["instance-type"] = "instancetype", mem = "mem", ["root-disk"] = "rootdisk", tags = "tags",
  spaces = "spaces", networks = "networks",
}
local NUMERIC_CONSTRAINTS = { cpucores = true, cpupower = true, mem = true, rootdisk = true }
local LIST_CONSTRAINTS = { tags = true, spaces = true, networks = true }

-- Hardware characteristics (--hardware) -> instanceData fields.
local HARDWARE_FIELDS = {
  arch = "arch", mem = "mem", ["root-disk"] = "rootdisk", ["cpu-cores"] = "cpucores",
  ["cpu-power"] = "cpupower", tags = "tags", ["availability-zone"] = "availzone",
}

local FULLWIDTH_DOT, FULLWIDTH_DOLLAR = "\u{FF0E}", "\u{FF04}"

local function bad_params(fmt, ...)
  return nil, "cannot initialize state: " .. string.format(fmt, ...), "EINVAL"
end

local function list_of(v)
  if type(v) == "string" then
    local out = yaml.array()
    for item in v:gmatch("[^,]+") do out[#out + 1] = item end
    return out
  end
  local out = yaml.array()
  for i, item in ipairs(v) do out[i] = item end
  return out
end

--- Settings keys as mongo can hold them: "." and "$" become U+FF0E and
--- U+FF04, in nested mappings too (Juju's copyMap; sequences are kept).
function M.escape_keys(t)
  local out = {}
  for k, v in pairs(t) do
    if type(k) == "string" then
      k = k:gsub("%.", FULLWIDTH_DOT):gsub("%$", FULLWIDTH_DOLLAR)
    end
    if type(v) == "table" and not yaml.is_array(v) then v = M.escape_keys(v) end
    out[k] = v
  end
  return out
end

--- A constraintsDoc for the environment or a machine.
function M.constraints_doc(id, env_uuid, cons)
  local doc = { _id = id, ["env-uuid"] = env_uuid }
  for name, value in pairs(cons or {}) do
    local field = CONSTRAINT_FIELDS[name]
    if not field then return nil, string.format("unknown constraint %q", tostring(name)) end
    if LIST_CONSTRAINTS[field] then
      value = list_of(value == "" and {} or value)
    elseif NUMERIC_CONSTRAINTS[field] and value == "" then
      value = 0 -- Go stores an explicitly empty number as a pointer to 0
    end
    doc[field] = value
  end
  return doc
end

local function address_doc(a)
  local doc = { value = a.value, addresstype = a.type }
  if a.network_name and a.network_name ~= "" then doc.networkname = a.network_name end
  if a.scope and a.scope ~= "" then doc.networkscope = a.scope end
  return doc
end

-- network.SelectPublicAddress / SelectInternalAddress: an address of the
-- exact scope first, else a fallback scope; IPv4, then hostnames, then
-- IPv6 (IPv6 first with prefer_ipv6). Machine-local addresses never qualify.
local PUBLIC = { exact = { public = true }, fallback = { ["local-cloud"] = true, [""] = true } }
local INTERNAL = { exact = { ["local-cloud"] = true }, fallback = { public = true, [""] = true } }

local function select_address(addresses, want, prefer_ipv6)
  local type_order = prefer_ipv6 and { "ipv6", "ipv4", "hostname" } or { "ipv4", "hostname", "ipv6" }
  for _, scopes in ipairs({ want.exact, want.fallback }) do
    for _, t in ipairs(type_order) do
      for _, a in ipairs(addresses) do
        if a.type == t and scopes[a.scope or ""] then return address_doc(a) end
      end
    end
  end
  return nil
end

local function check_params(p)
  if type(p) ~= "table" then return bad_params("params must be a table") end
  for _, k in ipairs({ "env_uuid", "env_name", "admin_password_hash" }) do
    if type(p[k]) ~= "string" or p[k] == "" then return bad_params("params.%s is required", k) end
  end
  for _, k in ipairs({ "config", "machine", "serving_info" }) do
    if type(p[k]) ~= "table" then return bad_params("params.%s must be a table", k) end
  end
  for _, k in ipairs({ "api_port", "state_port", "now" }) do
    if math.type(p[k]) ~= "integer" then return bad_params("params.%s must be an integer", k) end
  end
  local m = p.machine
  for _, k in ipairs({ "series", "instance_id" }) do
    if type(m[k]) ~= "string" or m[k] == "" then return bad_params("params.machine.%s is required", k) end
  end
  if type(m.jobs) ~= "table" or #m.jobs == 0 then return bad_params("params.machine.jobs is required") end
  for _, job in ipairs(m.jobs) do
    if not M.JOB_CODES[job] then return bad_params("unknown machine job %q", tostring(job)) end
  end
  for _, k in ipairs({ "cert", "private_key", "shared_secret", "system_identity" }) do
    if type(p.serving_info[k]) ~= "string" then return bad_params("params.serving_info.%s is required", k) end
  end
  for i, t in ipairs(p.tools or {}) do
    if type(t.version) ~= "string" or type(t.sha256) ~= "string" or math.type(t.size) ~= "integer" then
      return bad_params("params.tools[%d] needs version, size and sha256", i)
    end
  end
  return true
end

local function machine_docs(p, docs)
  local uuid, m = p.env_uuid, p.machine
  local mid = m.id or "0"
  local local_id = uuid .. ":" .. mid
  local addresses = yaml.array()
  for _, a in ipairs(m.addresses or {}) do addresses[#addresses + 1] = address_doc(a) end
  local jobs = yaml.array()
  for _, job in ipairs(m.jobs) do jobs[#jobs + 1] = M.JOB_CODES[job] end

  if mid == "0" then
    docs[#docs + 1] = { "sequence", { _id = uuid .. ":machine", ["env-uuid"] = uuid, name = "machine", counter = 1 } }
  end
  docs[#docs + 1] = { "machines", {
    _id = local_id, machineid = mid, ["env-uuid"] = uuid, nonce = m.nonce or M.BOOTSTRAP_NONCE,
    series = m.series, containertype = "", life = 0, jobs = jobs, novote = false,
    -- Juju adds machine 0 with hasvote false and sets it at the very end of
    -- bootstrap-state; written once here, it is true from the start.
    hasvote = m.hasvote ~= false, clean = true, addresses = addresses,
    preferredpublicaddress = select_address(m.addresses or {}, PUBLIC, p.prefer_ipv6),
    preferredprivateaddress = select_address(m.addresses or {}, INTERNAL, p.prefer_ipv6),
    passwordhash = p.machine_password_hash or "",
  } }
  local instance = { _id = local_id, machineid = mid, ["env-uuid"] = uuid, instanceid = m.instance_id }
  for name, value in pairs(m.hardware or {}) do
    local field = HARDWARE_FIELDS[name]
    if not field then return bad_params("unknown hardware characteristic %q", tostring(name)) end
    if field == "tags" then value = list_of(value) end
    instance[field] = value
  end
  docs[#docs + 1] = { "instanceData", instance }
  local cons, err = M.constraints_doc(uuid .. ":m#" .. mid, uuid, p.constraints)
  if not cons then return bad_params("%s", err) end
  docs[#docs + 1] = { "constraints", cons }
  docs[#docs + 1] = { "statuses", {
    _id = uuid .. ":m#" .. mid, ["env-uuid"] = uuid, status = "pending", statusinfo = "",
    updated = p.now * 1000000000,
  } }
  return true
end

--- The documents of bootstrap in creation order, as an array of
--- {collection, document}; or nil, message, "EINVAL" for bad params.
function M.documents(p)
  local ok, err, code = check_params(p)
  if not ok then return nil, err, code end
  local uuid, name, now = p.env_uuid, p.env_name, p.now
  local docs = {}
  local env_cons, cerr = M.constraints_doc(uuid .. ":e", uuid, p.constraints)
  if not env_cons then return bad_params("%s", cerr) end
  docs[#docs + 1] = { "constraints", env_cons }

  local settings = M.escape_keys(p.config)
  settings._id, settings["env-uuid"] = uuid .. ":e", uuid
  docs[#docs + 1] = { "settings", settings }
  docs[#docs + 1] = { "environments", { _id = uuid, name = name, life = 0, owner = M.OWNER, ["server-uuid"] = uuid } }
  docs[#docs + 1] = { "userenvname", { _id = M.OWNER .. ":" .. name } }
  docs[#docs + 1] = { "envusers", {
    _id = uuid .. ":" .. M.OWNER, ["env-uuid"] = uuid, user = M.OWNER, displayname = "admin",
    createdby = M.OWNER, datecreated = now,
  } }
  docs[#docs + 1] = { "users", {
    _id = "admin", name = "admin", displayname = "admin", deactivated = false,
    passwordhash = p.admin_password_hash, passwordsalt = "", createdby = "admin", datecreated = now,
  } }
  docs[#docs + 1] = { "stateServers", {
    _id = "e", ["env-uuid"] = uuid, machineids = yaml.array({ "0" }), votingmachineids = yaml.array({ "0" }),
  } }

  local host_ports = yaml.array()
  for _, a in ipairs(p.machine.addresses or {}) do
    local hp = address_doc(a)
    hp.port = p.api_port
    host_ports[#host_ports + 1] = hp
  end
  docs[#docs + 1] = { "stateServers", { _id = "apiHostPorts", apihostports = yaml.array({ host_ports }) } }

  local si = p.serving_info
  local serving = {
    _id = "stateServingInfo", apiport = p.api_port, stateport = p.state_port, cert = si.cert,
    privatekey = si.private_key, sharedsecret = si.shared_secret, systemidentity = si.system_identity,
  }
  -- W3: Juju stores the CA private key in the state database, where anyone
  -- with database read access can take it. It is left out unless the
  -- caller asks for it explicitly with params.store_ca_key = true.
  if p.store_ca_key == true and si.ca_private_key then serving.caprivatekey = si.ca_private_key end
  docs[#docs + 1] = { "stateServers", serving }
  docs[#docs + 1] = { "stateServers", { _id = "hostedEnvironCount", refcount = 0 } }

  local mok, merr, mcode = machine_docs(p, docs)
  if not mok then return nil, merr, mcode end

  for _, t in ipairs(p.tools or {}) do
    docs[#docs + 1] = { "toolsmetadata", {
      _id = t.version, version = t.version, size = t.size, sha256 = t.sha256,
      path = t.path or string.format("tools/%s-%s", t.version, t.sha256),
    } }
  end
  return docs
end

--- The documents of another state server (juju ensure-availability):
--- p = {env_uuid=, now=, constraints=, machine = {id=, series=, nonce=,
--- jobs=, addresses=, instance_id=, hardware=, hasvote=}}. Returns the
--- {collection, document} array or nil, message, "EINVAL".
function M.state_server_documents(p)
  if type(p) ~= "table" or type(p.machine) ~= "table" or type(p.machine.id) ~= "string" then
    return bad_params("state server documents need machine.id")
  end
  local docs = {}
  local ok, err, code = machine_docs(p, docs)
  if not ok then return nil, err, code end
  return docs
end

--- Creates the bootstrap documents that are missing; returns
--- {inserted = n, existing = n} or nil, message, code.
function M.initialize(store, params)
  local docs, err, code = M.documents(params)
  if not docs then return nil, err, code end
  local result = { inserted = 0, existing = 0 }
  for _, entry in ipairs(docs) do
    local coll, doc = entry[1], entry[2]
    local r, serr, scode = store:ensure(coll, doc)
    if not r then
      return nil, string.format("cannot initialize state: %s/%s: %s", coll, doc._id, tostring(serr)), scode
    end
    if r == "inserted" then result.inserted = result.inserted + 1 else result.existing = result.existing + 1 end
  end
  return result
end

local function presence_id(env_uuid, machine_id)
  return string.format("%s:m#%s", env_uuid, machine_id)
end

--- Records machine_id's agent as alive: upserts its presence document
--- {_id = "<uuid>:m#<id>", machine = id, time = fields.time or now, ...fields}.
function M.heartbeat(store, env_uuid, machine_id, fields)
  if type(env_uuid) ~= "string" or type(machine_id) ~= "string" then
    error("heartbeat: env_uuid and machine_id must be strings", 2)
  end
  local doc = { machine = machine_id }
  for k, v in pairs(fields or {}) do doc[k] = v end
  if doc.time == nil then doc.time = os.time() end
  return store:upsert("presence", presence_id(env_uuid, machine_id), doc)
end

--- The agent state of a machine from its documents as read (machine_doc,
--- instance_doc and beat, its presence heartbeat, each nil when absent),
--- judged at `now`: what machine_status returns, for callers that hold the
--- documents already (juju status reads each collection once).
function M.status_of(machine_id, machine_doc, instance_doc, beat, now, stale_after)
  local status = { machine = machine_id, agent_state = "pending" }
  if machine_doc then status.series = machine_doc.series end
  if instance_doc then status.instance_id = instance_doc.instanceid end
  if not beat then return status end
  status.pid, status.agent_version = beat.pid, beat.agent_version
  if type(beat.time) ~= "number" then
    status.agent_state = "down"
    return status
  end
  status.heartbeat, status.age = beat.time, now - beat.time
  if beat.stopped == true or status.age >= stale_after then
    status.agent_state = "down"
  else
    status.agent_state = "started"
  end
  return status
end

--- The agent state of a machine from its presence heartbeat: "started"
--- when the last heartbeat is younger than stale_after seconds (default
--- 30), "down" when older or when the agent said it stopped, "pending" when
--- it never beat. Returns {agent_state, machine, heartbeat, age, pid,
--- agent_version, instance_id, series} (fields known so far) or nil, msg, code.
function M.machine_status(store, env_uuid, machine_id, now, stale_after)
  if type(env_uuid) ~= "string" or type(machine_id) ~= "string" then
    error("machine_status: env_uuid and machine_id must be strings", 2)
  end
  local local_id = env_uuid .. ":" .. machine_id
  local docs = {}
  for _, coll in ipairs({ "machines", "instanceData", "presence" }) do
    local doc, err, code = store:get(coll, coll == "presence" and presence_id(env_uuid, machine_id) or local_id)
    if not doc and code ~= "ENOENT" then return nil, err, code end
    docs[coll] = doc
  end
  return M.status_of(machine_id, docs.machines, docs.instanceData, docs.presence, now or os.time(),
    stale_after or M.DEFAULT_STALE_AFTER)
end

return M
