-- bench/ha.lua [--quick] [--no-ensure]: the highly available Dqlite state
-- (issue 18, "Measured"). Run under the juju of the tree to measure:
--   BENCH_BUILD_DIR=$PWD/build-bench build-bench/bin/juju lua bench/ha.lua
-- 1. the state's heartbeat upsert (juju.state.initialize.heartbeat, as
--    jujud machine does it) through juju.state: plain SQLite
--    (juju.state.sqlite, the floor) and Dqlite on 1 and 3 nodes of this
--    project (juju.dqlitenode, mutual TLS, each node a process of its own:
--    bench/ha_node.lua on 127.0.0.24x), all on the same temp filesystem;
--    one sequential client, then a few concurrent client processes
--    (bench/ha_client.lua);
-- 2. failover: SIGKILL of the leader's process -> the first successful
--    heartbeat through juju.state.dqlite; then the killed node restarted ->
--    the first write that needs its vote (the other follower SIGSTOPped);
-- 3. `juju ensure-availability -n 3` end to end on the local provider
--    (state-store: dqlite) next to its `juju bootstrap`.
-- Prints Markdown tables and writes bench/ha-results.json and bench/ha.md
-- (not with --quick). Not run by CI;
-- nothing here is asserted on time.
local here = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = here .. "/?.lua;" .. here .. "/../tests/?.lua;" .. package.path

local lib = require("lib")
local fs = require("juju.fs")
local sys = require("juju.sys")
local json = require("juju.json")
local state = require("juju.state")
local initialize = require("juju.state.initialize")
local dqlite = require("juju.dqlite")
local server = require("juju.testing.server")

local QUICK, ENSURE = false, true
for _, a in ipairs(arg) do
  if a == "--quick" then QUICK = true elseif a == "--no-ensure" then ENSURE = false end
end
local SEQ_N = QUICK and 100 or 1000        -- sequential heartbeats per backend
local CONC = { 4 }                          -- concurrent client processes
local CONC_S = QUICK and 2 or 5             -- seconds each concurrent run lasts
local FAILOVERS = QUICK and 2 or 5
local ENSURES = QUICK and 1 or 3

local ROOT = fs.realpath(here .. "/..")
local JUJU = fs.realpath("/proc/self/exe")
local SCRATCH = assert(fs.mkdtemp("/tmp/juju-bench-ha-"))
local UUID = "bench-ha-0000-0000-0000-000000000000"
local HOSTS = { "127.0.0.241", "127.0.0.242", "127.0.0.243" }
local CHILD_ENV = { PATH = os.getenv("PATH"), LUA_PATH = os.getenv("LUA_PATH"), LUA_CPATH = os.getenv("LUA_CPATH") }

local function env_with(k, v)
  local e = {}
  for a, b in pairs(CHILD_ENV) do e[a] = b end
  e[k] = v
  return e
end

local function wait_for(what, timeout, fn)
  local deadline = sys.monotonic() + timeout
  repeat
    local v = fn()
    if v then return v end
    sys.sleep(0.02)
  until sys.monotonic() > deadline
  error("bench/ha: timed out waiting for " .. what, 2)
end

-- The disk under SCRATCH: filesystem type, device, mount options.
local function disk()
  local r = sys.run({ "df", "--output=source,fstype", SCRATCH })
  local src, fstype = (r and r.stdout or ""):match("\n(%S+)%s+(%S+)")
  local opts = ""
  for line in (fs.read_file("/proc/mounts") or ""):gmatch("[^\n]+") do
    local dev, mnt, typ, o = line:match("^(%S+) (%S+) (%S+) (%S+)")
    if dev == src and mnt == "/" and typ == fstype then opts = o end
  end
  return string.format("%s (%s, %s)", SCRATCH:match("^(/[^/]+)"), tostring(fstype), tostring(src)) ..
    (opts ~= "" and (", mount options " .. opts) or "")
end

-- Certificates: one CA, one certificate (juju-dqlite + the hosts) for every
-- node and client, as an environment's state servers have.
local dqfake = require("servers.dqlite.fake")
local CERTS = dqfake.certs(SCRATCH, HOSTS)
local CTLS = dqfake.client_tls(CERTS)

-- Nodes ---------------------------------------------------------------------
local Node = {}
Node.__index = Node

local function start_node(id, address, dir, join)
  local ready = string.format("%s/node-%d.ready", SCRATCH, id)
  fs.remove(ready)
  local spec = assert(json.encode({ id = id, address = address, dir = dir, ca = CERTS.ca_file,
    cert = CERTS.cert_file, key = CERTS.key_file, join = join, ready = ready }))
  local log = string.format("%s/node-%d.log", SCRATCH, id)
  local p = assert(sys.spawn({ JUJU, "lua", ROOT .. "/bench/ha_node.lua" },
    { env = env_with("BENCH_HA_NODE", spec), stdout = log, stderr = log }))
  local self = setmetatable({ id = id, address = address, dir = dir, join = join, proc = p, pid = p:pid() }, Node)
  local ok, err = pcall(wait_for, "node " .. id .. " at " .. address, 90, function()
    if fs.exists(ready) then return true end
    if sys.kill(self.pid, 0) == false then error("node " .. id .. " exited: " .. (fs.read_file(log) or "")) end
  end)
  if not ok then p:kill("KILL"); p:wait(); error(err, 0) end
  return self
end

function Node:kill()
  if not self.proc then return end
  self.proc:kill("KILL")
  self.proc:wait()
  self.proc = nil
end

function Node:stop()
  if not self.proc then return end
  self.proc:kill("TERM")
  local code = self.proc:wait(10)
  if code == nil then self.proc:kill("KILL"); self.proc:wait() end
  self.proc = nil
end

function Node:restart() return start_node(self.id, self.address, self.dir, nil) end

local function voters(addresses)
  local c <close> = dqlite.connect_leader(addresses, { tls = CTLS, timeout = 2000 })
  if not c then return 0 end
  local n = 0
  for _, m in ipairs(c:cluster() or {}) do if m.role == "voter" then n = n + 1 end end
  return n
end

local function cluster(n, tag)
  local port = server.free_port(HOSTS[1])
  local nodes, addresses = {}, {}
  for i = 1, n do
    local dir = string.format("%s/%s-node%d", SCRATCH, tag, i)
    addresses[i] = string.format("%s:%d", HOSTS[i], port)
    nodes[i] = start_node(i, addresses[i], dir, i > 1 and { addresses[1] } or nil)
  end
  wait_for(n .. " voters", 60, function() return voters(addresses) == n end)
  return nodes, addresses
end

local function stop_all(nodes) for _, nd in ipairs(nodes or {}) do nd:stop() end end

-- 1. Heartbeat writes ---------------------------------------------------------
local function beat(st, machine)
  return initialize.heartbeat(st, UUID, machine, { pid = sys.getpid(), interval = 10, agent_version = "bench",
    stopped = false, time = sys.time() })
end

local function sequential(kind, spec)
  local st = assert(state.open(kind, spec))
  for _ = 1, 20 do assert(beat(st, "0")) end -- warm-up
  local lat = {}
  local t0 = sys.monotonic()
  for i = 1, SEQ_N do
    local a = sys.monotonic()
    assert(beat(st, "0"))
    lat[i] = sys.monotonic() - a
  end
  local total = sys.monotonic() - t0
  st:close()
  return lat, SEQ_N / total
end

local function concurrent(kind, spec, k)
  local procs, outs = {}, {}
  local start = sys.time() + 1.5 -- every client connected before the clock starts
  for i = 1, k do
    outs[i] = string.format("%s/conc-%s-%d-%d.json", SCRATCH, kind, k, i)
    fs.remove(outs[i])
    local o = assert(json.encode({ kind = kind, spec = spec, uuid = UUID, machine = tostring(i), start = start,
      duration = CONC_S, out = outs[i] }))
    procs[i] = assert(sys.spawn({ JUJU, "lua", ROOT .. "/bench/ha_client.lua" },
      { env = env_with("BENCH_HA_CLIENT", o), stdout = "null", stderr = SCRATCH .. "/client-" .. i .. ".err" }))
  end
  local lat, errors, first_error = {}, 0, nil
  for i, p in ipairs(procs) do
    local code = p:wait(CONC_S + 60)
    assert(code == 0, "heartbeat client " .. i .. " failed: " .. (fs.read_file(SCRATCH .. "/client-" .. i .. ".err") or ""))
    local r = assert(json.decode(assert(fs.read_file(outs[i]))))
    for _, x in ipairs(r.lat) do lat[#lat + 1] = x end
    errors = errors + r.errors
    first_error = first_error or r.first_error
  end
  return lat, #lat / CONC_S, errors, first_error
end

local function pct(xs, p)
  local s = {}
  for i, x in ipairs(xs) do s[i] = x end
  table.sort(s)
  return s[math.max(1, math.ceil(#s * p))]
end

local function bench_writes(results)
  local backends = {}
  local sqlite_dir = SCRATCH .. "/sqlite"
  assert(fs.mkdir_p(sqlite_dir, "0700"))
  backends[1] = { label = "SQLite (juju.state.sqlite, WAL)", kind = "sqlite",
    spec = { path = sqlite_dir .. "/state.db" } }
  local rows = {}
  local floor = {}
  for _, nn in ipairs({ 0, 1, 3 }) do
    local b, nodes = backends[1], nil
    if nn > 0 then
      local addresses
      nodes, addresses = cluster(nn, "w" .. nn)
      b = { label = string.format("Dqlite, %d node%s (TLS, own processes)", nn, nn > 1 and "s" or ""),
        kind = "dqlite", spec = { servers = addresses, tls = CTLS, database = "juju" } }
    end
    local ok, err = pcall(function()
      local slat, srate = sequential(b.kind, b.spec)
      local runs = { { "1 client, sequential", slat, srate } }
      for _, k in ipairs(CONC) do
        local lat, rate, errors, first_error = concurrent(b.kind, b.spec, k)
        runs[#runs + 1] = { string.format("%d client processes", k), lat, rate, errors, first_error }
      end
      for _, r in ipairs(runs) do
        local name, lat, rate, errors = r[1], r[2], r[3], r[4] or 0
        local p50, p99 = pct(lat, 0.5), pct(lat, 0.99)
        local f = floor[name]
        if nn == 0 then floor[name] = { rate = rate, p50 = p50 } end
        local row = { backend = b.label, clients = name, n = #lat, per_s = rate, p50 = p50, p99 = p99,
          max = pct(lat, 1), failed = errors, first_error = r[5] }
        results.writes[#results.writes + 1] = row
        rows[#rows + 1] = { b.label, name, tostring(#lat), string.format("%.0f/s", rate), lib.fmt_seconds(p50),
          lib.fmt_seconds(p99), lib.fmt_seconds(row.max), tostring(errors),
          f and string.format("%.0f/s, p50 %s (%.1fx the latency)", f.rate, lib.fmt_seconds(f.p50), p50 / f.p50)
            or "(the floor)" }
      end
    end)
    stop_all(nodes)
    if not ok then error(err, 0) end
  end
  return rows
end

-- 2. Failover -------------------------------------------------------------------
local function leader_of(st, nodes)
  for _, m in ipairs(assert(st:members())) do
    if m.leader then
      for _, nd in ipairs(nodes) do if nd.id == m.id then return nd end end
    end
  end
  error("no leader among the members")
end

local function bench_failover(results)
  local nodes, addresses = cluster(3, "fo")
  local ok, err = pcall(function()
    -- the store's defaults, as jujud opens it (timeout 5 s, failover_timeout 20 s)
    local st = assert(state.open("dqlite", { servers = addresses, tls = CTLS, database = "juju" }))
    for run = 1, FAILOVERS do
      io.stderr:write(string.format("bench/ha: failover %d/%d\n", run, FAILOVERS))
      assert(beat(st, "0"))
      local leader = leader_of(st, nodes)
      -- writes going on; the kill lands between two of them
      for _ = 1, 20 do assert(beat(st, "0")) end
      local t_kill = sys.monotonic()
      leader:kill()
      -- as jujud does: a failed heartbeat is logged and the next one tried
      local failed, first_err = 0, nil
      while true do
        local ok1, e1 = beat(st, "0")
        if ok1 then break end
        failed, first_err = failed + 1, first_err or tostring(e1)
        assert(sys.monotonic() - t_kill < 120, "no successful write 120 s after the kill: " .. tostring(e1))
      end
      local t_write = sys.monotonic()
      local new_leader = leader_of(st, nodes)
      -- the restarted node, back as a voter: a write with the other
      -- follower frozen needs its vote
      local t_restart = sys.monotonic()
      local back = leader:restart()
      local t_up = sys.monotonic()
      for i, nd in ipairs(nodes) do if nd == leader then nodes[i] = back end end
      local other
      for _, nd in ipairs(nodes) do if nd ~= back and nd ~= new_leader then other = nd end end
      assert(sys.kill(other.pid, "STOP"))
      local ok2, e2 = pcall(function()
        wait_for("a write with the restarted node's vote", 60, function()
          local c <close> = dqlite.connect_leader({ new_leader.address }, { tls = CTLS, timeout = 1000 })
          if not c or not c:open("juju") then return false end
          return c:exec("INSERT OR REPLACE INTO docs(coll, id, doc) VALUES ('bench', 'vote', '{}')") ~= nil
        end)
      end)
      local t_voter = sys.monotonic()
      sys.kill(other.pid, "CONT")
      assert(ok2, tostring(e2))
      local row = { failed_writes = failed, first_error = first_err, failover = t_write - t_kill,
        restart_process = t_up - t_restart, back_as_voter = t_voter - t_restart }
      results.failover[#results.failover + 1] = row
      -- let the cluster settle (the thawed node catches up) before the next kill
      wait_for("3 voters", 60, function() return voters(addresses) == 3 end)
      sys.sleep(1)
    end
    st:close()
  end)
  stop_all(nodes)
  if not ok then error(err, 0) end
  local fo, rp, bv, fw, errs = {}, {}, {}, {}, {}
  for i, r in ipairs(results.failover) do
    fo[i], rp[i], bv[i], fw[i] = r.failover, r.restart_process, r.back_as_voter, r.failed_writes
    if r.first_error then errs[r.first_error:gsub("127%.0%.0%.%d+:%d+", "ADDR")] = true end
  end
  local rows = {}
  local fws = lib.summary(fw)
  rows[1] = { "heartbeats that failed between the kill and the first success", tostring(fws.n),
    string.format("%g", fws.median), string.format("%g", fws.max), string.format("%g", fws.min) }
  for e in pairs(errs) do results.failover_errors = results.failover_errors or {}; table.insert(results.failover_errors, e) end
  for _, x in ipairs({
    { "leader SIGKILLed -> first successful heartbeat (juju.state.dqlite)", fo },
    { "killed node restarted -> its process serving (start-up)", rp },
    { "killed node restarted -> a write needing its vote succeeds", bv },
  }) do
    local s = lib.summary(x[2])
    rows[#rows + 1] = { x[1], tostring(s.n), lib.fmt_seconds(s.median), lib.fmt_seconds(s.max),
      lib.fmt_seconds(s.min) }
  end
  return rows
end

-- 3. ensure-availability ------------------------------------------------------------
local function parse_duration(d)
  local m, s = d:match("^(%d+)m([%d.]+)s$")
  if m then return tonumber(m) * 60 + tonumber(s) end
  local ms = d:match("^([%d.]+)ms$")
  if ms then return tonumber(ms) / 1000 end
  local us = d:match("^([%d.]+)[µu]s$")
  if us then return tonumber(us) / 1e6 end
  return tonumber(d:match("^([%d.]+)s$"))
end

local function steps_of(text)
  local sum, by = 0, {}
  for id, d in text:gmatch("step (%S+): done in (%S+)") do
    local v = assert(parse_duration(d), "bad duration " .. d)
    sum = sum + v
    by[id] = (by[id] or 0) + v
  end
  return sum, by
end

local function bench_ensure(results)
  local testing = require("juju.testing")
  local boot, ens, ens_steps, ens_wait, boot_steps, destroy = {}, {}, {}, {}, {}, {}
  local by_step = {}
  local attempts, failures = 0, {}
  local run = 0
  while run < ENSURES do
    attempts = attempts + 1
    assert(attempts <= 2 * ENSURES + 1, "ensure-availability failed " .. #failures .. " times: " ..
      table.concat(failures, "; "))
    run = run + 1
    io.stderr:write(string.format("bench/ha: bootstrap + ensure-availability %d/%d (attempt %d)\n", run, ENSURES,
      attempts))
    local base
    for _ = 1, 50 do
      base = server.free_port("127.0.0.1")
      if base < 65000 then break end
    end
    local s = testing.new { environments = { bha = { type = "local", ["state-store"] = "dqlite", ["dqlite-port"] = base } },
      default = "bha", real_clock = true } -- jujud's own heartbeat interval (10 s)
    local ok, err = pcall(function()
      local logargs = { "--show-log", "--logging-config", "<root>=INFO" }
      local t0 = sys.monotonic()
      local r = assert(s:juju_process({ "bootstrap", table.unpack(logargs) }, { exe = JUJU, timeout = 600 }))
      boot[run] = sys.monotonic() - t0
      assert(r.code == 0, "bootstrap failed: " .. r.stderr)
      boot_steps[run] = steps_of(r.stderr)
      t0 = sys.monotonic()
      r = assert(s:juju_process({ "ensure-availability", "-n", "3", table.unpack(logargs) },
        { exe = JUJU, timeout = 900 }))
      ens[run] = sys.monotonic() - t0
      if r.code ~= 0 then error({ ensure = (r.stderr:match("\nERROR ([^\n]*)") or r.stderr:sub(-300)) }) end
      local sum, by = steps_of(r.stderr)
      ens_steps[run], ens_wait[run] = sum, ens[run] - sum
      for id, v in pairs(by) do by_step[id] = by_step[id] or {}; table.insert(by_step[id], v) end
      t0 = sys.monotonic()
      r = assert(s:juju_process({ "destroy-environment", "-y", "bha" }, { exe = JUJU, timeout = 300 }))
      destroy[run] = sys.monotonic() - t0
      assert(r.code == 0, "destroy-environment failed: " .. r.stderr)
    end)
    if not ok then s:juju("destroy-environment", "-y", "--force", "bha") end
    s:close()
    if not ok and type(err) == "table" and err.ensure then
      -- counted and reported; the run is made again
      failures[#failures + 1] = err.ensure:gsub("127%.0%.0%.1:%d+", "127.0.0.1:PORT")
      io.stderr:write("bench/ha: ensure-availability failed: " .. err.ensure .. "\n")
      boot[run] = nil
      boot_steps[run] = nil
      run = run - 1
    elseif not ok then
      error(err, 0)
    end
  end
  results.ensure_attempts, results.ensure_failures = attempts, failures
  local rows = {}
  local function add(name, xs, note)
    local sm = lib.summary(xs)
    rows[#rows + 1] = { name, tostring(sm.n), lib.fmt_seconds(sm.median), lib.fmt_seconds(sm.min) .. " .. " ..
      lib.fmt_seconds(sm.max), note or "" }
    results.ensure[name] = sm
  end
  local bm = lib.summary(boot).median
  add("juju bootstrap (local, state-store: dqlite)", boot, "the floor: one state server")
  add("  its steps (summed from its log, ms resolution)", boot_steps)
  add("juju ensure-availability -n 3 (0 -> 3 voters)", ens, string.format("%.2fx the bootstrap", lib.summary(ens).median / bm))
  add("  machine starts + installs (its steps, 2 machines)", ens_steps, "find-tools, start-instance, select-tools, finalize")
  for _, id in ipairs({ "find-tools", "start-instance", "select-tools", "finalize" }) do
    if by_step[id] then add("    " .. id .. " (both machines)", by_step[id]) end
  end
  add("  the rest: waiting for the votes (agents start, join, vote)", ens_wait, "wall time minus the steps")
  add("juju destroy-environment (3 state servers)", destroy)
  rows[#rows + 1] = { "ensure-availability runs that failed (n: attempts)", tostring(attempts), tostring(#failures), "",
    #failures > 0 and ("first: " .. failures[1]) or "" }
  return rows
end

-- Main --------------------------------------------------------------------------------
local results = { machine = lib.machine(), disk = disk(), writes = {}, failover = {}, ensure = {},
  quick = QUICK }
local out = {}
local function say(s) io.stdout:write(s); out[#out + 1] = s end
local function tbl(header, rows)
  local buf = {}
  lib.print_table(header, rows, { write = function(_, ...) for _, x in ipairs({ ... }) do buf[#buf + 1] = x end end })
  say(table.concat(buf))
end

local m = results.machine
say(string.format("Machine: %s, %s CPUs (nproc, shared), %d MiB RAM, %s; %s\nDisk: %s\n\n", m.cpu, tostring(m.nproc),
  m.mem_total_mib, m.kernel, m.date, results.disk))

local ok, err = pcall(function()
  say("### Heartbeat upserts (juju.state.initialize.heartbeat)\n\n")
  tbl({ "store", "clients", "writes", "writes/s", "p50", "p99", "max", "failed", "floor: SQLite, same disk" }, bench_writes(results))
  say("\n### Failover (3 nodes, leader SIGKILLed)\n\n")
  tbl({ "event", "n", "median", "max", "min" }, bench_failover(results))
  if ENSURE then
    say("\n### juju ensure-availability -n 3 (local provider, state-store: dqlite)\n\n")
    tbl({ "command", "n", "median", "min .. max", "note" }, bench_ensure(results))
  end
end)
server.stop_all()
if ok and results.failover_errors then
  say("\nWhat the failed heartbeats after a kill answered: " .. table.concat(results.failover_errors, "; ") .. "\n")
end
if ok and not QUICK then
  local head = table.concat({
    "# Highly available state on Dqlite (bench/ha.lua)",
    "",
    "Generated by `BENCH_BUILD_DIR=$PWD/build-bench build-bench/bin/juju lua bench/ha.lua` after a Release",
    "build (`bash bench/run.sh` runs it too). Heartbeats are juju.state.initialize.heartbeat's upsert through",
    "juju.state, as `jujud machine` beats; the floor is plain SQLite (juju.state.sqlite, WAL) on the same",
    "filesystem. Dqlite nodes are this project's (juju.dqlitenode, mutual TLS), each in a process of its own",
    "(bench/ha_node.lua) on 127.0.0.241-243, so the leader's fsync and replication are real; concurrent",
    "clients are separate processes (bench/ha_client.lua), each upserting its own machine's document.",
    "Failover: the leader's process SIGKILLed between two heartbeats of a client with the store's default",
    "options; failed heartbeats are retried at once, as jujud logs one and beats again. \"Back as a voter\":",
    "the killed node restarted on its data dir, then the other follower SIGSTOPped, so that a write",
    "needs the restarted node's vote. ensure-availability: separate processes of the Release juju",
    "(local provider, state-store: dqlite, agents beating every 10 s as by default), steps from its `step X: done in D`",
    "log lines. Nothing is asserted on time; CI does not run it.",
    "",
    "The machine is shared (2 cores, other agents' builds and tests at the same time): every time is",
    "an upper bound.",
    "", "" }, "\n")
  assert(fs.write_atomic(ROOT .. "/bench/ha.md", head .. table.concat(out), "0644"))
end
if ok then
  assert(fs.write_atomic(ROOT .. "/bench/ha-results.json", assert(json.encode(results, { indent = 2 })) .. "\n", "0644"))
end
fs.remove_tree(SCRATCH)
if not ok then error(err, 0) end
return 0
