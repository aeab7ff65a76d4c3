-- tests/dqlite_agent_node.lua: one Dqlite node of this project in a process
-- of its own, started and joined as a state server's jujud does it
-- (juju.agent.dqlitenode.start and .join from agent.conf values), for the
-- specs that partition or freeze nodes.
--   juju lua tests/dqlite_agent_node.lua ID ADDRESS SERVERS DATADIR PEMDIR
-- SERVERS: every node's address, comma-separated (DQLITE_SERVERS). PEMDIR
-- holds ca.pem, cert.pem and key.pem (this node's certificate). Node 1
-- bootstraps the cluster; the others join it through the leader as a
-- spare (juju.agent.dqlitenode.join) and are then given the vote through
-- the leader, as juju ensure-availability's vote step does. Prints "ready id=ID address=ADDRESS" (or "error ..." and
-- exits 1); on SIGTERM stops the node, prints "stopped" and exits 0.
local agentnode = require("juju.agent.dqlitenode")
local fs = require("juju.fs")
local sys = require("juju.sys")

local id, address, servers, data_dir, pems = ...
assert(pems, "usage: dqlite_agent_node.lua ID ADDRESS SERVERS DATADIR PEMDIR")

local function say(text)
  io.stdout:write(text, "\n")
  io.stdout:flush()
end

local function read(name) return assert(fs.read_file(pems .. "/" .. name)) end

local watch = assert(sys.signals({ "TERM", "INT" }))
local conf = {
  cacert = read("ca.pem"), stateservercert = read("cert.pem"), stateserverkey = read("key.pem"),
  values = {
    STATE_STORE = "dqlite", DQLITE_NODE_ID = id, DQLITE_ADDRESS = address, DQLITE_SERVERS = servers,
    DQLITE_PORT = address:match(":(%d+)$"),
  },
}
local node, err = agentnode.start(data_dir, conf)
if not node then
  say("error " .. tostring(err))
  os.exit(1)
end
local ok, jerr = agentnode.join(conf, 60)
if not ok then
  node:stop()
  say("error " .. tostring(jerr))
  os.exit(1)
end
if id ~= "1" then
  local dqlite = require("juju.dqlite")
  local ctls = { ca = conf.cacert, cert = conf.stateservercert, key = conf.stateserverkey, server_name = "juju-dqlite" }
  local list = {}
  for a in servers:gmatch("[^,]+") do if a ~= address then list[#list + 1] = a end end
  local deadline, last = sys.monotonic() + 60, nil
  local voted = false
  repeat
    local c, at = dqlite.connect_leader(list, { tls = ctls, timeout = 5000 })
    if c then
      local aok, aerr = c:assign(math.tointeger(tonumber(id)), "voter")
      c:close()
      if aok then voted = true else last = aerr end
    else
      last = at
    end
    if not voted then sys.sleep(0.2) end
  until voted or sys.monotonic() > deadline
  if not voted then
    node:stop()
    say("error cannot get a vote: " .. tostring(last))
    os.exit(1)
  end
end
say(string.format("ready id=%s address=%s", id, address))
while not watch:pending() do sys.sleep(0.05) end
assert(node:stop())
say("stopped")
