-- juju.ha.dqlite: ensure-availability on a Dqlite state store. Every state
-- server runs a Dqlite node inside its machine agent (node id = machine
-- number + 1); a new one joins by itself (its agent adds its node to the
-- cluster through the leader and asks for a vote); this client starts the
-- machine, waits for the vote on the run's clock, and takes a machine that
-- did not get it out again (cluster membership, instance, documents).
--
-- The client reaches the cluster with mutual TLS like every node: its
-- certificate is made for this process from the environment's CA (the
-- .jenv holds the CA key), kept in memory only.
local yaml = require("juju.yaml")
local crypto = require("juju.crypto")
local state = require("juju.state")
local journal = require("juju.journal")

local M = {}

M.NODE_NAME = "juju-dqlite"
M.DEFAULT_PORT = 17666

local client_certs = {}

--- TLS material for a client of the environment's cluster: {ca=, cert=,
--- key=, server_name=}, or nil, message.
function M.client_tls(cfg)
  local ca, ca_key = cfg["ca-cert"], cfg["ca-private-key"]
  if type(ca) ~= "string" or ca == "" or type(ca_key) ~= "string" or ca_key == "" then
    return nil, "the environment configuration has no ca-cert and ca-private-key to reach its state servers with"
  end
  local cached = client_certs[ca]
  if not cached then
    local cert, key = crypto.new_server_cert(ca, ca_key, { hostnames = { M.NODE_NAME } })
    if not cert then return nil, "cannot make a client certificate: " .. tostring(key) end
    cached = { ca = ca, cert = cert, key = key, server_name = M.NODE_NAME }
    client_certs[ca] = cached
  end
  return cached
end

--- The state servers of a bootstrapped environment (.jenv state-servers).
function M.servers(info)
  local out = {}
  for _, s in ipairs(info["state-servers"] or {}) do out[#out + 1] = tostring(s) end
  return out
end

--- The store spec juju.state opens for this client.
function M.state_spec(cfg, info)
  local tls, err = M.client_tls(cfg)
  if not tls then return nil, err end
  return { kind = "dqlite", servers = M.servers(info), tls = tls, database = "juju" }
end

function M.open_state(_, o)
  local spec, err = M.state_spec(o.cfg, o.info)
  if not spec then return nil, err end
  return state.open("dqlite", spec)
end

--- The address machine_id's node listens on: the provider's
--- state_server_address(env, instance, machine_id) when it has one, else
--- the instance's first address at dqlite-port.
function M.node_address(o, inst, machine_id)
  if o.provider.state_server_address then
    return o.provider.state_server_address(o.env, inst, machine_id)
  end
  local addrs = require("juju.provider_common").instance_addresses(inst)
  if #addrs == 0 then return nil, "the instance has no address" end
  local port = math.tointeger(o.cfg["dqlite-port"]) or M.DEFAULT_PORT
  local host = addrs[1]
  return string.format(host:find(":", 1, true) and "[%s]:%d" or "%s:%d", host, port)
end

local function member_of(members, node_id)
  for _, m in ipairs(members or {}) do
    if m.id == node_id then return m end
  end
  return nil
end

--- The agent values of a new state server: its node id, address and the
--- cluster to join.
function M.agent_env(o, st, machine_id, inst)
  local address, err = M.node_address(o, inst, machine_id)
  if not address then return nil, "cannot choose the state server address: " .. tostring(err) end
  local servers = st:servers()
  servers[#servers + 1] = address
  return {
    STATE_STORE = "dqlite", DQLITE_NODE_ID = tostring(require("juju.ha").node_id(machine_id)),
    DQLITE_ADDRESS = address, DQLITE_SERVERS = table.concat(servers, ","),
    DQLITE_PORT = address:match(":(%d+)$"),
  }
end

local function wait_member(o, st, machine_id, timeout, what, want_voter)
  local node_id = require("juju.ha").node_id(machine_id)
  return o.ctx:wait(string.format(what, machine_id), timeout, function()
    local members, merr = st:members()
    if not members then return nil, "cannot read the cluster: " .. tostring(merr) end
    local m = member_of(members, node_id)
    if not m then return nil, "node " .. node_id .. " is not a member yet" end
    if want_voter and m.role ~= "voter" then
      return nil, "node " .. node_id .. " is a " .. tostring(m.role) .. ", not a voter yet"
    end
    return true
  end, 0.2)
end

--- Waits (on the run's clock) until machine_id's agent has added its node
--- to the cluster (without a vote: juju.agent.dqlitenode.join).
function M.wait_joined(o, st, machine_id, timeout)
  return wait_member(o, st, machine_id, timeout, "for machine %s's node to join the cluster", false)
end

--- Whether machine_id's node votes.
function M.is_voter(_, st, machine_id)
  local m = member_of(st:members(), require("juju.ha").node_id(machine_id))
  return m ~= nil and m.role == "voter"
end

local function leader_conn(o, st)
  local tls, terr = M.client_tls(o.cfg)
  if not tls then return nil, terr end
  local c, at, code = require("juju.dqlite").connect_leader(st:servers(), { tls = tls, timeout = 5000 })
  if not c then return nil, string.format("%s (%s)", tostring(at), tostring(code)) end
  return c
end

--- Gives machine_id's node the vote (through the leader) and waits until
--- the cluster has it as a voter.
function M.promote(o, st, machine_id, timeout)
  local node_id = require("juju.ha").node_id(machine_id)
  local c, err = leader_conn(o, st)
  if not c then return nil, string.format("cannot give node %d a vote: %s", node_id, err) end
  local ok, aerr = c:assign(node_id, "voter")
  c:close()
  if not ok then return nil, string.format("cannot give node %d a vote: %s", node_id, tostring(aerr)) end
  return wait_member(o, st, machine_id, timeout, "for machine %s's node to vote", true)
end

--- Takes machine_id's node out of the cluster when it is in it (through
--- the leader).
function M.leave(o, st, machine_id)
  local node_id = require("juju.ha").node_id(machine_id)
  local members = st:members()
  if not member_of(members, node_id) then return true end
  local c, err = leader_conn(o, st)
  if not c then return nil, string.format("cannot remove node %d from the cluster: %s", node_id, err) end
  local ok, rerr = c:remove(node_id)
  c:close()
  if not ok then return nil, string.format("cannot remove node %d from the cluster: %s", node_id, tostring(rerr)) end
  return true
end

--- Records the state servers as the cluster has them: the .jenv's
--- state-servers (what the client and agents dial) and the stateServers
--- documents.
function M.record_servers(_, o, st)
  local members, err = st:members()
  if not members then return nil, "cannot read the cluster: " .. tostring(err) end
  local addrs, voting, ids = yaml.array(), yaml.array(), yaml.array()
  table.sort(members, function(a, b) return a.id < b.id end)
  for _, m in ipairs(members) do
    addrs[#addrs + 1] = m.address
    ids[#ids + 1] = tostring(m.id - 1)
    if m.role == "voter" then voting[#voting + 1] = tostring(m.id - 1) end
  end
  local ok, uerr = st:update("stateServers", "e", { machineids = ids, votingmachineids = voting })
  if not ok then return nil, uerr end
  o.info["state-servers"] = addrs
  local j = journal.open(o.store, o.cfg.name, o.info)
  return j:save()
end

return M
