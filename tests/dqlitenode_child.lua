-- tests/dqlitenode_child.lua: one juju.dqlitenode in a process of its own,
-- for the specs that kill a node (kill -9) or run several.
--   juju lua tests/dqlitenode_child.lua ID ADDRESS DIR PEMDIR|plain
-- PEMDIR holds ca.pem, cert.pem and key.pem. Prints "ready" (or the start
-- error and exits 1); on SIGTERM stops the node, prints "stopped", exits 0.
local dqlitenode = require("juju.dqlitenode")
local sys = require("juju.sys")

local id, address, dir, pems = ...
local function read(p)
  local f = assert(io.open(p, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local watch = assert(sys.signals({ "TERM", "INT" }))
local opts = { id = assert(math.tointeger(tonumber(id))), address = address, dir = dir }
if pems == "plain" then
  opts.plain = true
else
  opts.tls = { ca = read(pems .. "/ca.pem"), cert = read(pems .. "/cert.pem"), key = read(pems .. "/key.pem") }
end
local node, err, code = dqlitenode.start(opts)
if not node then
  io.stdout:write("error ", tostring(code), " ", tostring(err), "\n")
  io.stdout:flush()
  os.exit(1)
end
io.stdout:write("ready\n")
io.stdout:flush()
while not watch:pending() do sys.sleep(0.05) end
assert(node:stop())
io.stdout:write("stopped\n")
io.stdout:flush()
