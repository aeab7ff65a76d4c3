-- juju.agent.dqlitenode: the Dqlite node a state server's jujud runs
-- (state-store: dqlite), and the store opened through it. agent.conf
-- carries what it needs in its values: STATE_STORE=dqlite, DQLITE_NODE_ID,
-- DQLITE_PORT (from the instance config), DQLITE_ADDRESS and DQLITE_SERVERS
-- (comma-separated; written by bootstrap-state). TLS is the state server's
-- certificate and key with the environment's CA, always: the node's
-- test-only plain mode is never reachable from agent.conf.
local sys = require("juju.sys")
local state = require("juju.state")
local dqlitenode = require("juju.lazy")("juju.dqlitenode")

local M = {}

M.SERVER_NAME = "juju-dqlite"
M.DATABASE = "juju"

local function values(conf) return conf.values or {} end

--- Whether agent.conf makes this agent a dqlite state server.
function M.is_dqlite(conf)
  return values(conf).STATE_STORE == "dqlite"
end

local function scope_rank(a)
  if a == "localhost" or a:match("^127%.") or a == "::1" then return 3 end
  if a:match("^10%.") or a:match("^192%.168%.") or a:match("^172%.1[6-9]%.") or a:match("^172%.2%d%.")
    or a:match("^172%.3[01]%.") then return 1 end
  return 2
end

--- The address peers and clients dial: the machine's cloud-local address
--- first, then a public one, then loopback (a single-host environment).
function M.choose_address(addresses, port)
  local best
  for _, a in ipairs(addresses or {}) do
    if type(a) == "string" and a ~= "" and (not best or scope_rank(a) < scope_rank(best)) then best = a end
  end
  best = best or "127.0.0.1"
  if best:find(":", 1, true) then best = "[" .. best .. "]" end
  return best .. ":" .. tostring(port)
end

--- Adds DQLITE_ADDRESS and DQLITE_SERVERS to agent.conf's values (in
--- place) from the machine's addresses. Returns true or nil, message.
function M.record_address(conf, addresses)
  local v = values(conf)
  local port = math.tointeger(tonumber(v.DQLITE_PORT or ""))
  if not port or port < 1 or port > 65535 then
    return nil, "agent configuration has no valid DQLITE_PORT (the instance config sets it for state-store: dqlite)"
  end
  v.DQLITE_ADDRESS = v.DQLITE_ADDRESS or M.choose_address(addresses, port)
  v.DQLITE_SERVERS = v.DQLITE_SERVERS or v.DQLITE_ADDRESS
  conf.values = v
  return true
end

local function tls(conf, what)
  if type(conf.cacert) ~= "string" or conf.cacert == "" then
    return nil, what .. ": agent configuration has no CA certificate (cacert)"
  end
  if type(conf.stateservercert) ~= "string" or type(conf.stateserverkey) ~= "string" then
    return nil, what .. ": agent configuration has no state server certificate and key; "
      .. "only a state server runs a dqlite node"
  end
  return { ca = conf.cacert, cert = conf.stateservercert, key = conf.stateserverkey }
end

--- The options of dqlitenode.start for this agent, or nil, message.
function M.node_options(data_dir, conf)
  local v = values(conf)
  local id = math.tointeger(tonumber(v.DQLITE_NODE_ID or ""))
  if not id or id < 1 then return nil, "agent configuration has no valid DQLITE_NODE_ID" end
  if type(v.DQLITE_ADDRESS) ~= "string" or v.DQLITE_ADDRESS == "" then
    return nil, "agent configuration has no DQLITE_ADDRESS (bootstrap-state records it)"
  end
  local t, err = tls(conf, "cannot start the dqlite node")
  if not t then return nil, err end
  return { id = id, address = v.DQLITE_ADDRESS, dir = data_dir .. "/dqlite", tls = t }
end

--- Starts this agent's node: node | nil, message, code.
function M.start(data_dir, conf)
  local opts, err = M.node_options(data_dir, conf)
  if not opts then return nil, err, "EINVAL" end
  local node, nerr, code = dqlitenode.start(opts)
  if not node then return nil, "cannot start the dqlite node: " .. tostring(nerr), code end
  return node
end

--- The state servers' dqlite addresses from agent.conf.
function M.servers(conf)
  local v, out = values(conf), {}
  for a in (v.DQLITE_SERVERS or v.DQLITE_ADDRESS or ""):gmatch("[^,%s]+") do out[#out + 1] = a end
  return out
end

--- The state store a client on a state server's host opens (the local
--- provider's state_info): {kind = "dqlite", servers =, tls =, database =},
--- the machine's own certificate serving as the client's.
function M.client_store_options(conf)
  local t, err = tls(conf, "cannot reach the dqlite state store")
  if not t then return nil, err, "EINVAL" end
  t.server_name = M.SERVER_NAME
  local servers = M.servers(conf)
  if #servers == 0 then return nil, "agent configuration has no DQLITE_SERVERS", "EINVAL" end
  return { kind = "dqlite", servers = servers, tls = t, database = M.DATABASE }
end

local RETRY = { NOLEADER = true, CONNECT = true, TIMEOUT = true, NOTLEADER = true }

--- Rewrites agent.conf (conf, at path; 0600) when the cluster's members
--- differ from its DQLITE_SERVERS, and points the store at them. Returns
--- true (changed or not) or nil, message.
function M.refresh_servers(conf, path, store)
  local members, err = store:members()
  if not members then return nil, err end
  local addrs = {}
  for _, m in ipairs(members) do addrs[#addrs + 1] = m.address end
  table.sort(addrs)
  local want = table.concat(addrs, ",")
  local v = values(conf)
  if #addrs == 0 or v.DQLITE_SERVERS == want then return true end
  v.DQLITE_SERVERS = want
  conf.values = v
  if store.set_servers then store:set_servers(addrs) end
  local ok, werr = require("juju.fs").write_atomic(path, require("juju.agentconf").format(conf), tonumber("600", 8))
  if not ok then return nil, "cannot write " .. path .. ": " .. tostring(werr) end
  return true
end

--- Joins this agent's node to the cluster (every node but node 1, which
--- bootstrapped it): through the leader, found among the other servers, as
--- a spare. The vote is the client's to give (juju ensure-availability),
--- once every new state server is in, so a machine that fails before it is
--- removed without the cluster ever counting on it. A node that is a member
--- already (a restart) does nothing. Retries for up to wait seconds (default 60) while the leader
--- moves. Returns true or nil, message.
function M.join(conf, wait)
  local v = values(conf)
  local id = math.tointeger(tonumber(v.DQLITE_NODE_ID or ""))
  if id == 1 then return true end
  local t, err = tls(conf, "cannot join the dqlite cluster")
  if not t then return nil, err end
  t.server_name = M.SERVER_NAME
  local others = {}
  for _, a in ipairs(M.servers(conf)) do if a ~= v.DQLITE_ADDRESS then others[#others + 1] = a end end
  if #others == 0 then return nil, "cannot join the dqlite cluster: DQLITE_SERVERS names no other server" end
  local dqlite = require("juju.lazy")("juju.dqlite")
  local deadline = sys.monotonic() + (wait or 60)
  local last
  repeat
    local c, at, code = dqlite.connect_leader(others, { tls = t, timeout = 5000 })
    if c then
      local members, cerr = c:cluster()
      local me
      for _, m in ipairs(members or {}) do if m.id == id then me = m end end
      local ok, aerr = members ~= nil, cerr
      if ok and not me then ok, aerr = c:add(id, v.DQLITE_ADDRESS) end
      c:close()
      if ok then return true end
      last = aerr
    else
      last = string.format("%s (%s)", tostring(at), tostring(code))
    end
    sys.sleep(0.5)
  until sys.monotonic() >= deadline
  return nil, string.format("cannot join the dqlite cluster through %s as node %d at %s: %s",
    table.concat(others, ", "), id, tostring(v.DQLITE_ADDRESS), tostring(last))
end

--- Opens the dqlite state store through the servers in agent.conf,
--- retrying for up to wait seconds (default 30) while no leader answers (a
--- node just started elects itself within a second or two).
function M.open_store(conf, wait)
  local t, err = tls(conf, "cannot open the dqlite state store")
  if not t then return nil, err, "EINVAL" end
  t.server_name = M.SERVER_NAME
  local servers = M.servers(conf)
  if #servers == 0 then return nil, "agent configuration has no DQLITE_SERVERS", "EINVAL" end
  local deadline = sys.monotonic() + (wait or 30)
  while true do
    local store, serr, code = state.open("dqlite", { servers = servers, tls = t, database = M.DATABASE })
    if store then return store end
    if not RETRY[code] or sys.monotonic() > deadline then
      return nil, string.format("cannot open the dqlite state store (servers %s): %s",
        table.concat(servers, ", "), tostring(serr)), code
    end
    sys.sleep(0.2)
  end
end

return M
