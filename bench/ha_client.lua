-- bench/ha_client.lua: one concurrent heartbeat writer for bench/ha.lua.
-- BENCH_HA_CLIENT (JSON): kind ("sqlite" | "dqlite"), spec (state.open's
-- options), uuid, machine, start (sys.time() to begin at), duration (s),
-- out (file for {lat = seconds of each acknowledged write, errors =,
-- first_error =}).
local state = require("juju.state")
local initialize = require("juju.state.initialize")
local json = require("juju.json")
local sys = require("juju.sys")
local fs = require("juju.fs")

local o = assert(json.decode(assert(os.getenv("BENCH_HA_CLIENT"), "BENCH_HA_CLIENT not set")))
local st = assert(state.open(o.kind, o.spec))
-- the first beat (creates the document), retried: the others start too
for try = 1, 50 do
  local ok, err = initialize.heartbeat(st, o.uuid, o.machine, { pid = sys.getpid(), interval = 10, stopped = false })
  if ok then break end
  if try == 50 then error(err) end
  sys.sleep(0.02)
end
local wait = o.start - sys.time()
if wait > 0 then sys.sleep(wait) end
local lat, errors, first_error = {}, 0, nil
local t_end = sys.monotonic() + o.duration
while sys.monotonic() < t_end do
  local t0 = sys.monotonic()
  local ok, err = initialize.heartbeat(st, o.uuid, o.machine, { pid = sys.getpid(), interval = 10,
    agent_version = "bench", stopped = false, time = sys.time() })
  if ok then
    lat[#lat + 1] = sys.monotonic() - t0
  else -- counted, as jujud logs it and beats again
    errors = errors + 1
    first_error = first_error or tostring(err)
  end
end
st:close()
assert(fs.write_atomic(o.out, assert(json.encode({ lat = lat, errors = errors, first_error = first_error })), "0644"))
