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
local sys = require("juju.sys")
local crypto = require("juju.crypto")
local state = require("juju.state")
local journal = require("juju.journal")
local initialize = require("juju.state.initialize")

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
  local addrs = require("juju.bootstrap").instance_addresses(inst)
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

-- Takes a machine that did not join out again: its node from the cluster,
-- its instance through the provider, its documents; what cannot be undone
-- stays in the journal for destroy-environment.
local function undo(b, st, machine_id, node_id, uuid)
  local problems = {}
  local members = st:members()
  if member_of(members, node_id) then
    local ok, err = st:remove_member(node_id)
    if not ok then problems[#problems + 1] = "cannot remove node " .. node_id .. " from the cluster: " .. tostring(err) end
  end
  for _, r in ipairs(b.journal:resources("instance")) do
    if r.machine == machine_id then
      local ok, res, err = pcall(b.provider.release, b.env, r)
      if ok and res then
        b.journal:forget("instance", r.id or r.name)
      else
        problems[#problems + 1] = string.format("cannot release instance %s: %s", tostring(r.id or r.name),
          tostring(ok and err or res))
      end
    end
  end
  for _, coll in ipairs({ "machines", "instanceData", "constraints", "statuses" }) do
    local key = (coll == "machines" or coll == "instanceData") and (uuid .. ":" .. machine_id) or (uuid .. ":m#" .. machine_id)
    st:remove(coll, key)
  end
  st:remove("presence", uuid .. ":m#" .. machine_id)
  if #problems > 0 then return nil, table.concat(problems, "; ") end
  return true
end

--- Adds state server machine_id: start, install, join, vote. Returns true
--- or nil, message (after undoing what it did).
function M.add_state_server(ctx, o, st, machine_id, opts)
  local bootstrap = require("juju.bootstrap")
  local cfg = o.cfg
  if opts.series then
    local c = {}
    for k, v in pairs(cfg) do c[k] = v end
    c["default-series"] = opts.series
    cfg = c
  end
  local b = bootstrap.new_run(ctx, o.home, cfg.name, o.store, { constraints = opts.constraints or {},
    placement = opts.placement })
  b.provider, b.env, b.cfg, b.info, b.pc = o.provider, o.env, cfg, o.info, o.ctx
  b.journal = journal.open(o.store, cfg.name, o.info)
  b.pc.journal = b.journal
  b.machine_id, b.join = machine_id, true
  b.signals = sys.signals({ "INT", "TERM", "HUP" })
  if o.provider.force_upload_tools then b.params.upload_tools = true end
  local uuid = cfg.uuid
  local node_id = require("juju.ha").node_id(machine_id)
  local function step(id, fn, what)
    local ok, res, err = pcall(bootstrap.run_step, b, { id = id, fn = fn, what = what })
    if not ok then return nil, type(res) == "table" and res.message or tostring(res) end
    if not res then return nil, err end
    return true
  end
  local function finish(ok, err)
    for _, d in ipairs(b.tmpdirs) do require("juju.fs").remove_tree(d) end
    b.signals:close()
    return ok, err
  end
  local s = bootstrap.steps
  local ok, err = step("find-tools", s.find_tools, "looking for agent tools")
  if not ok then return finish(nil, err) end
  ok, err = step("start-instance", s.start_instance, "starting machine " .. machine_id)
  if not ok then
    local _, uerr = undo(b, st, machine_id, node_id, uuid)
    return finish(nil, err .. (uerr and ("; " .. uerr) or ""))
  end
  local function failed(msg)
    local _, uerr = undo(b, st, machine_id, node_id, uuid)
    return finish(nil, msg .. (uerr and ("; and undoing it: " .. uerr) or ""))
  end
  local inst = b.instance
  local address, aerr = M.node_address(o, inst, machine_id)
  if not address then return failed("cannot choose the state server address: " .. tostring(aerr)) end
  -- The documents first: the agent's heartbeat and status find its machine.
  local docs, derr = initialize.state_server_documents({
    env_uuid = uuid, now = sys.time(), constraints = opts.constraints or {},
    machine = { id = machine_id, series = b.series, nonce = b.icfg.nonce, jobs = require("juju.ha").STATE_JOBS,
      addresses = bootstrap.instance_addresses(inst), instance_id = inst.id, hardware = inst.hardware or {},
      hasvote = false },
  })
  if not docs then return failed(derr) end
  for _, e in ipairs(docs) do
    local r, ierr = st:ensure(e[1], e[2])
    if not r then return failed("cannot record machine " .. machine_id .. ": " .. tostring(ierr)) end
  end
  local env_vars = b.icfg.agent_env
  env_vars.STATE_STORE = "dqlite"
  env_vars.DQLITE_NODE_ID = tostring(node_id)
  env_vars.DQLITE_ADDRESS = address
  env_vars.DQLITE_CLUSTER = table.concat(st:servers(), ",")
  ok, err = step("select-tools", s.select_tools, "selecting agent tools for machine " .. machine_id)
  if not ok then return failed(err) end
  ok, err = step("finalize", s.finalize, "installing the state server agent on machine " .. machine_id)
  if not ok then return failed(err) end
  local timeout = tonumber(cfg["bootstrap-timeout"]) or 600
  ok, err = o.ctx:wait(string.format("for machine %s to join the state servers as a voter", machine_id), timeout,
    function()
      local members, merr = st:members()
      if not members then return nil, "cannot read the cluster: " .. tostring(merr) end
      local m = member_of(members, node_id)
      if not m then return nil, "node " .. node_id .. " is not a member yet" end
      if m.role ~= "voter" then return nil, "node " .. node_id .. " is a " .. tostring(m.role) .. ", not a voter yet" end
      return true
    end, 0.2)
  if not ok then return failed(err) end
  local uok, uerr = st:update("machines", uuid .. ":" .. machine_id, { hasvote = true })
  if not uok then return failed(uerr) end
  ctx:infof("machine %s is a state server (Dqlite node %d at %s)", machine_id, node_id, address)
  return finish(true)
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
