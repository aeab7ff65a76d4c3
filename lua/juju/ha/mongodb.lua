-- juju.ha.mongodb: ensure-availability on a MongoDB state store, as Juju
-- 1.x's peergrouper did it through the replica set (juju.replicaset): a
-- new state server's agent starts mongod as a member of the set "juju";
-- this client adds it without a vote, gives it one when it is SECONDARY
-- (keeping the number of voters odd), and removes it again when it never
-- gets there. The client reaches mongod on the state servers' state-port
-- with TLS (the environment's CA) as the admin user.
local crypto = require("juju.crypto")
local state = require("juju.state")
local replicaset = require("juju.replicaset")
local journal = require("juju.journal")

local M = {}

M.DEFAULT_PORT = 37017

local function state_port(cfg) return math.tointeger(cfg["state-port"]) or M.DEFAULT_PORT end

local function hosts_of(info)
  local out = {}
  for _, s in ipairs(info["state-servers"] or {}) do
    local host = tostring(s):match("^%[(.+)%]:%d+$") or tostring(s):match("^(.+):%d+$") or tostring(s)
    out[#out + 1] = host
  end
  return out
end

-- The CA certificate as a file for libmongoc (public data: kept in the
-- cache under its digest).
local function ca_file(o)
  local fs = require("juju.fs")
  local pem = o.cfg["ca-cert"]
  local path = string.format("%s/cache/ca-%s.pem", o.home, crypto.sha256(pem):sub(1, 16))
  if not fs.exists(path) then
    fs.mkdir_p(o.home .. "/cache", tonumber("700", 8))
    local ok, err = fs.write_atomic(path, pem, tonumber("644", 8))
    if not ok then return nil, err end
  end
  return path
end

local function hostport(host, port) return string.format(host:find(":", 1, true) and "[%s]:%d" or "%s:%d", host, port) end

--- The store spec of the state's replica set for this client.
function M.state_spec(cfg, info, ca)
  local secret = cfg["admin-secret"]
  if type(secret) ~= "string" or secret == "" then return nil, "the environment configuration has no admin-secret" end
  local seeds = {}
  for _, h in ipairs(hosts_of(info)) do seeds[#seeds + 1] = hostport(h, state_port(cfg)) end
  if #seeds == 0 then return nil, "the environment has no state servers" end
  return {
    uri = string.format("mongodb://%s/?replicaSet=%s&tls=true&connectTimeoutMS=5000&serverSelectionTimeoutMS=10000",
      table.concat(seeds, ","), replicaset.NAME),
    tls = { ca_file = ca }, username = "admin", password = crypto.user_password_hash(secret, crypto.COMPAT_SALT),
    database = "juju",
  }
end

function M.open_state(_, o)
  local ca, cerr = ca_file(o)
  if not ca then return nil, "cannot write the CA certificate for the mongo client: " .. tostring(cerr) end
  local spec, err = M.state_spec(o.cfg, o.info, ca)
  if not spec then return nil, err end
  return state.open("mongodb", spec)
end

local function member_address(o, inst)
  local addrs = require("juju.provider_common").instance_addresses(inst)
  if #addrs == 0 then return nil, "the instance has no address" end
  return hostport(addrs[1], state_port(o.cfg))
end

-- The state servers as replicaset.ensure wants them: every machine that
-- manages the environment, with its address and wanting a vote.
function M.machines(o, st, extra)
  local ha = require("juju.ha")
  local out = {}
  for _, m in ipairs(st:find("machines") or {}) do
    if ha.manages(m) and m.novote ~= true then
      local a = m.addresses and m.addresses[1]
      local host = a and (a.value or a)
      if host then out[#out + 1] = { id = m.machineid, address = hostport(host, state_port(o.cfg)), wants_vote = true } end
    end
  end
  for _, e in ipairs(extra or {}) do out[#out + 1] = e end
  return out
end

function M.agent_env(o, _, _, inst)
  local address, err = member_address(o, inst)
  if not address then return nil, err end
  return { STATE_STORE = "mongodb", REPLICA_SET = replicaset.NAME, STATE_ADDRESS = address }
end

--- Gives the new member its place and vote: replicaset.ensure waits for it
--- to become SECONDARY and removes it again when it does not.
function M.wait_joined(o, st, _, timeout)
  local r, err = replicaset.ensure(st.client, M.machines(o, st), {
    clock = o.ctx.clock, timeout = timeout, say = function(...) o.ctx:infof(...) end,
    connect = function(address)
      return require("juju.mongo").client(string.format("mongodb://%s/?directConnection=true", address),
        { tls = { ca_file = ca_file(o) }, username = "admin",
          password = crypto.user_password_hash(o.cfg["admin-secret"], crypto.COMPAT_SALT) })
    end,
  })
  if not r then return nil, err end
  return true
end

--- The votes come with the replica set's own plan (wait_joined).
function M.promote() return true end

function M.leave(o, st, machine_id)
  local doc = st:get("machines", o.cfg.uuid .. ":" .. machine_id)
  local a = doc and doc.addresses and doc.addresses[1]
  if not a then return true end
  return replicaset.remove(st.client, { hostport(a.value or a, state_port(o.cfg)) })
end

--- The .jenv's state-servers (API addresses) and the stateServers document.
function M.record_servers(_, o, st)
  local ids, voting, addrs = {}, {}, {}
  for _, m in ipairs(M.machines(o, st)) do
    ids[#ids + 1] = m.id
    voting[#voting + 1] = m.id
    local host = m.address:match("^%[(.+)%]:%d+$") or m.address:match("^(.+):%d+$")
    addrs[#addrs + 1] = hostport(host, math.tointeger(o.cfg["api-port"]) or 17070)
  end
  local yaml = require("juju.yaml")
  local ok, err = st:update("stateServers", "e", { machineids = yaml.array(ids), votingmachineids = yaml.array(voting) })
  if not ok then return nil, err end
  o.info["state-servers"] = yaml.array(addrs)
  return journal.open(o.store, o.cfg.name, o.info):save()
end

return M
