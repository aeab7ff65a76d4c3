-- bench/ha_node.lua: one Dqlite node of this project (juju.dqlitenode,
-- mutual TLS) in a process of its own, for bench/ha.lua. BENCH_HA_NODE
-- (JSON): id, address, dir, ca/cert/key (PEM files), join (addresses of
-- the cluster, for ids > 1: added as a spare then made a voter through the
-- leader, as juju.agent.dqlitenode.join does). Writes dir/../<id>.ready
-- once serving (and joined); stops on TERM/INT.
local dqlitenode = require("juju.dqlitenode")
local dqlite = require("juju.dqlite")
local json = require("juju.json")
local sys = require("juju.sys")
local fs = require("juju.fs")

local o = assert(json.decode(assert(os.getenv("BENCH_HA_NODE"), "BENCH_HA_NODE not set")))
local tls = { ca = assert(fs.read_file(o.ca)), cert = assert(fs.read_file(o.cert)), key = assert(fs.read_file(o.key)) }
local signals = sys.signals({ "TERM", "INT" })
local node = assert(dqlitenode.start { id = o.id, address = o.address, dir = o.dir, tls = tls })
if o.join and #o.join > 0 then
  local ctls = { ca = tls.ca, cert = tls.cert, key = tls.key, server_name = "juju-dqlite" }
  local deadline = sys.monotonic() + 60
  local last
  while true do
    local c, at = dqlite.connect_leader(o.join, { tls = ctls, timeout = 5000 })
    if c then
      local members, cerr = c:cluster()
      local me
      for _, m in ipairs(members or {}) do if m.id == o.id then me = m end end
      local ok, aerr = members ~= nil, cerr
      if ok and not me then ok, aerr = c:add(o.id, o.address) end
      if ok and (not me or me.role ~= "voter") then ok, aerr = c:assign(o.id, "voter") end
      c:close()
      if ok then break end
      last = aerr
    else
      last = at
    end
    if sys.monotonic() > deadline then error("node " .. o.id .. " cannot join: " .. tostring(last)) end
    sys.sleep(0.2)
  end
end
assert(fs.write_atomic(o.ready, "ready\n", "0644"))
while not signals:pending() do sys.sleep(0.5) end
node:stop()
signals:close()
