-- bench/ha_client.lua: one concurrent heartbeat writer for bench/ha.lua.
-- BENCH_HA_CLIENT (JSON): kind ("sqlite" | "dqlite"), spec (state.open's
-- options), uuid, machine, start (sys.time() to begin at), duration (s),
-- out (file for the latencies, JSON array of seconds).
local state = require("juju.state")
local initialize = require("juju.state.initialize")
local json = require("juju.json")
local sys = require("juju.sys")
local fs = require("juju.fs")

local o = assert(json.decode(assert(os.getenv("BENCH_HA_CLIENT"), "BENCH_HA_CLIENT not set")))
local st = assert(state.open(o.kind, o.spec))
assert(initialize.heartbeat(st, o.uuid, o.machine, { pid = sys.getpid(), interval = 10, stopped = false }))
local wait = o.start - sys.time()
if wait > 0 then sys.sleep(wait) end
local lat = {}
local t_end = sys.monotonic() + o.duration
while sys.monotonic() < t_end do
  local t0 = sys.monotonic()
  assert(initialize.heartbeat(st, o.uuid, o.machine, { pid = sys.getpid(), interval = 10,
    agent_version = "bench", stopped = false, time = sys.time() }))
  lat[#lat + 1] = sys.monotonic() - t0
end
st:close()
assert(fs.write_atomic(o.out, assert(json.encode(lat)), "0644"))
