-- servers.dqlite.fake: go-dqlite nodes (tests/servers/dqlite, built with cgo
-- against libdqlite) for the specs: one node, a cluster, and the test
-- certificates made by this project's own crypto.
--
--   local dq = require("servers.dqlite.fake")
--   local certs = dq.certs(dir, { "127.0.0.230" })  -- ca, ca_key, cert, key (PEM) and *_file paths
--   local n = dq.start { tag = "x", host = "127.0.0.230", tls = certs, join = { addr, ... } }
--   n.address, n.pid, n.id, n:kill() (SIGKILL), n:freeze() / n:thaw() (SIGSTOP/CONT), n:stop(),
--   n:restart() (same address and data; needs data_dir)
--   local nodes = dq.cluster { tag = "x", n = 3, hosts = {...}, tls = certs }
--   dq.shell(node_or_address, certs, database, sql) -- the go-dqlite shell's answer (text)
local control = require("servers.control")
local crypto = require("juju.crypto")
local dqlite = require("juju.dqlite")
local fs = require("juju.fs")
local sys = require("juju.sys")

local M = {}

local Node = {}
Node.__index = Node

function Node:kill()
  if self.server.stopped then return end
  sys.kill(self.pid, "KILL")
  self.server:stop()
end

function Node:freeze() assert(sys.kill(self.pid, "STOP")) end
function Node:thaw() assert(sys.kill(self.pid, "CONT")) end
function Node:stop()
  if self.frozen then self:thaw() end
  return self.server:stop()
end
function Node:log_text() return self.server:log_text() end

--- Starts the node again after kill or stop: same address, same data (only
--- for a node started with opts.data_dir: the default data dir goes with
--- the server). Returns the node (the same table, new pid).
function Node:restart()
  assert(self.opts.data_dir, "dqlite node: restart needs a node started with data_dir")
  local o = {}
  for k, v in pairs(self.opts) do o[k] = v end
  o.port, o.join = self.port, nil -- the data dir knows the cluster
  local again = M.start(o)
  self.server, self.pid, self.frozen = again.server, again.pid, false
  return self
end

local function write(path, text)
  assert(fs.write_atomic(path, text, "0600"))
  return path
end

--- A CA and one certificate for every node and client (names juju-dqlite,
--- the hosts given, as a juju environment's server certificate has), written
--- into dir: ca.pem, cert.pem, key.pem and chain.pem (cert then CA: what the
--- go-dqlite shell's -c wants, since it uses the file as the CA pool too).
function M.certs(dir, hosts)
  local ca, ca_key = assert(crypto.new_ca("dqlite-test"))
  local names = { "juju-dqlite" }
  for _, h in ipairs(hosts or {}) do names[#names + 1] = h end
  local cert, key = assert(crypto.new_server_cert(ca, ca_key, { hostnames = names }))
  return {
    ca = ca, ca_key = ca_key, cert = cert, key = key,
    ca_file = write(dir .. "/ca.pem", ca), cert_file = write(dir .. "/cert.pem", cert),
    key_file = write(dir .. "/key.pem", key), chain_file = write(dir .. "/chain.pem", cert .. ca),
  }
end

--- The opts.tls juju.dqlite.connect takes for certs.
function M.client_tls(certs)
  return { ca = certs.ca, cert = certs.cert, key = certs.key, server_name = "juju-dqlite" }
end

--- Starts one node (opts: tag, host, port, join = {addresses}, tls = certs,
--- data_dir: kept after stop, for restart); returns it once it printed its
--- ready line (joined, when join).
function M.start(opts)
  local host = assert(opts.host, "dqlite.start: host required")
  local tls = opts.tls
  local s = control.start {
    src = "dqlite", bin = "dqlite-node", tag = opts.tag, name = "dqlite-" .. host, host = host,
    port = opts.port, cgo = true, data_dir = opts.data_dir, ready_timeout = 90,
    flags = {
      { "join", opts.join and table.concat(opts.join, ",") or nil },
      { "cert", tls and tls.cert_file }, { "key", tls and tls.key_file }, { "ca", tls and tls.ca_file },
    },
    ready = function(srv) return srv:log_text():find("ready id=", 1, true) ~= nil end,
  }
  -- the uint64 id as juju.dqlite gives it: the same 64 bits in a Lua integer
  local id = 0
  for d in s:log_text():match("ready id=(%d+)"):gmatch("%d") do id = id * 10 + math.tointeger(tonumber(d)) end
  return setmetatable({ server = s, pid = s.pid, host = host, port = s.port, id = id, opts = opts,
    address = string.format("%s:%d", host, s.port) }, Node)
end

--- n nodes (default 3) on hosts[i] (default 127.0.0.23i), the first
--- bootstrapping, the others joining it; returns them once the go-dqlite
--- app made them all voters (raises after 60 s). opts.data_dir: a directory
--- under which node i keeps its data in node<i> (so nodes can restart).
function M.cluster(opts)
  local nodes = {}
  local n = opts.n or 3
  for i = 1, n do
    local host = (opts.hosts or {})[i] or string.format("127.0.0.%d", 229 + i)
    nodes[i] = M.start { tag = opts.tag, host = host, tls = opts.tls, join = i > 1 and { nodes[1].address } or nil,
      data_dir = opts.data_dir and string.format("%s/node%d", opts.data_dir, i) or nil }
  end
  local addresses = {}
  for i, node in ipairs(nodes) do addresses[i] = node.address end
  local tls = opts.tls and M.client_tls(opts.tls)
  local deadline = sys.monotonic() + 60
  local last
  repeat
    local c <close>, err = dqlite.connect_leader(addresses, { tls = tls, timeout = 2000 })
    if c then
      local members = c:cluster()
      local voters = 0
      for _, m in ipairs(members or {}) do
        if m.role == "voter" then voters = voters + 1 end
      end
      if voters == n then return nodes end
      last = string.format("%d of %d voters", voters, n)
    else
      last = err
    end
    sys.sleep(0.2)
  until sys.monotonic() > deadline
  for _, node in ipairs(nodes) do node:stop() end
  error("dqlite cluster did not form: " .. tostring(last), 2)
end

--- Runs the go-dqlite shell (/usr/bin/dqlite) against address (a node, a
--- list of nodes or "a,b,c": the shell looks for the leader among them) and returns its output, or raises with its stderr.
function M.shell(address, certs, database, sql)
  if type(address) == "table" then
    if address.address then
      address = address.address
    else
      local list = {}
      for i, a in ipairs(address) do list[i] = type(a) == "table" and a.address or a end
      address = table.concat(list, ",")
    end
  end
  local argv = { "/usr/bin/dqlite", "-s", address }
  if certs then
    argv[#argv + 1] = "-c"; argv[#argv + 1] = certs.chain_file
    argv[#argv + 1] = "-k"; argv[#argv + 1] = certs.key_file
  end
  argv[#argv + 1] = database
  argv[#argv + 1] = sql
  local r = assert(sys.run(argv, { timeout = 30 }))
  if r.code ~= 0 then error("dqlite shell: " .. r.stderr .. r.stdout, 2) end
  return r.stdout
end

return M
