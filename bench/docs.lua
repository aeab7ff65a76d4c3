-- bench/docs.lua: documents at scale (issue 17 item 1).
--   * yaml.encode, json.encode and json.decode of a flat map at 1k, 10k and
--     100k keys, next to python3's json.dumps / json.loads of the same map
--     measured in the same run (the floor), and the cost per key at 100k
--     over the cost per key at 1k (1.0 is linear);
--   * the work of `juju status` over a state of 10,000 machines: the
--     command's own reads (juju.environs.status.machines) on a sqlite state
--     store and its formatting (statusformat), in one process, next to the
--     former per-document reads measured in the same run.
-- Used by bench/run.lua (M.run(ctx)); `juju lua bench/docs.lua [--quick]`
-- runs it alone and prints its rows.
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "bench"
package.path = here .. "/?.lua;" .. package.path

local lib = require("lib")
local fs = require("juju.fs")
local sys = require("juju.sys")
local json = require("juju.json")
local yaml = require("juju.yaml")

local M = {}

local function flat_map(n)
  local t = {}
  for i = 1, n do t["key" .. i] = i end
  return t
end

-- python3's json on the same shapes, timed inside python (no start-up):
-- {size = {dumps = seconds, loads = seconds}} medians of `reps` runs.
local function python_floor(sizes, reps)
  local script = [[
import json, sys, time
out = {}
for n, reps in json.loads(sys.argv[1]):
    d = {"key%d" % i: i for i in range(1, n + 1)}
    text = json.dumps(d)
    res = {}
    for name, fn in (("dumps", lambda: json.dumps(d)), ("loads", lambda: json.loads(text))):
        fn()
        ts = []
        for _ in range(reps):
            t0 = time.perf_counter(); fn(); ts.append(time.perf_counter() - t0)
        ts.sort()
        res[name] = ts[len(ts) // 2]
    out[str(n)] = res
print(json.dumps(out))
]]
  local spec = {}
  for i, n in ipairs(sizes) do spec[i] = { n, reps[i] } end
  local r, err = sys.run({ "python3", "-c", script, assert(json.encode(spec)) })
  if not r or r.code ~= 0 then
    error("bench: python3 (the floor) failed: " .. tostring(err or r.stderr), 0)
  end
  return assert(json.decode(r.stdout))
end

function M.bench_flat_maps(ctx)
  io.stderr:write("bench: flat maps (yaml/json encode, json decode)\n")
  local sizes = { 1000, 10000, 100000 }
  local reps = { ctx.runs(30, 5), ctx.runs(15, 3), ctx.runs(5, 2) }
  local floor = python_floor(sizes, reps)
  local per_key = {}
  for i, n in ipairs(sizes) do
    local t = flat_map(n)
    local text = assert(json.encode(t))
    local py = floor[tostring(n)]
    local dumps = ctx.record(string.format("python3 json.dumps (%dk keys)", n // 1000), { py.dumps })
    local loads = ctx.record(string.format("python3 json.loads (%dk keys)", n // 1000), { py.loads })
    local cases = {
      { "yaml.encode", function() assert(yaml.encode(t)) end, dumps },
      { "json.encode", function() assert(json.encode(t)) end, dumps },
      { "json.decode", function() assert(json.decode(text)) end, loads },
    }
    for _, c in ipairs(cases) do
      local r = ctx.record(string.format("%s flat map (%dk keys)", c[1], n // 1000),
        lib.time_fn(reps[i], c[2], 1))
      ctx.row(r, c[3], "floor: python3's json, same map, same run")
      per_key[c[1]] = per_key[c[1]] or {}
      per_key[c[1]][n] = r.median / n
    end
  end
  -- Linear: the cost per key at 100k over the cost per key at 1k, next to
  -- python's own growth over the same sizes (caches and allocators make
  -- neither exactly 1.0; quadratic would be about 100x).
  local py_growth = {
    dumps = (floor["100000"].dumps / 100000) / (floor["1000"].dumps / 1000),
    loads = (floor["100000"].loads / 100000) / (floor["1000"].loads / 1000),
  }
  for _, c in ipairs({ { "yaml.encode", "dumps" }, { "json.encode", "dumps" }, { "json.decode", "loads" } }) do
    local growth = per_key[c[1]][100000] / per_key[c[1]][1000]
    ctx.aim(c[1] .. " linear in the keys (per-key cost 1k -> 100k grows within 2x of python's " .. c[2] .. ")",
      growth <= 2 * py_growth[c[2]], string.format("%.2fx per key (python %.2fx)", growth, py_growth[c[2]]))
  end
end

-- A state store with n machines, as `juju status` finds it.
local function populate(path, uuid, n, now)
  local sqlite_state = require("juju.state.sqlite")
  local st = assert(sqlite_state.open({ path = path }))
  assert(st.db:exec("BEGIN"))
  for i = 0, n - 1 do
    local id = tostring(i)
    assert(st:insert("machines", { _id = uuid .. ":" .. id, machineid = id, series = "trusty",
      addresses = json.array({ { value = "10.0." .. (i // 250) .. "." .. (i % 250 + 1), type = "ipv4" } }) }))
    assert(st:insert("instanceData", { _id = uuid .. ":" .. id, instanceid = "i-" .. id, arch = "amd64",
      cpucores = 2, mem = 4096, rootdisk = 8192 }))
    assert(st:insert("presence", { _id = uuid .. ":m#" .. id, time = now - 1, interval = 10, pid = 1000 + i,
      agent_version = "1.18.4-trusty-amd64" }))
  end
  assert(st.db:exec("COMMIT"))
  st:close()
end

-- The former path of juju.environs.status (before issue 17): five store
-- lookups a machine (its instance data and heartbeat, then
-- initialize.machine_status's three), each one query. The comparison row.
local function per_document_reads(st, uuid, now)
  local initialize = require("juju.state.initialize")
  local n = 0
  for _, m in ipairs(st:find("machines") or {}) do
    local id = m.machineid
    st:get("instanceData", uuid .. ":" .. id)
    local beat = st:get("presence", uuid .. ":m#" .. id)
    local interval = beat and tonumber(beat.interval) or 10
    assert(initialize.machine_status(st, uuid, id, now, math.max(3 * interval, 3)))
    n = n + 1
  end
  return n
end

-- `juju status` over a state of 10,000 machines: the command's own code
-- (juju.environs.status.machines, statusformat.normalize and format) on an
-- open sqlite store, minus start-up and the configstore.
function M.bench_status(ctx)
  io.stderr:write("bench: status over 10,000 machines\n")
  local state = require("juju.state")
  local status = require("juju.environs.status")
  local statusformat = require("juju.statusformat")
  local n = 10000
  local uuid = "5b2e7c1a-0d3f-4a8e-9c21-6f4b8d2e1a90"
  local now = sys.time()
  local path = ctx.scratch .. "/status-state.db"
  populate(path, uuid, n, now)
  local reads, format, total = {}, {}, {}
  local text
  for i = 0, ctx.runs(7, 2) do
    local t0 = sys.monotonic()
    local st = assert(state.open("sqlite", { path = path }))
    local machines = assert(status.machines(st, uuid, now))
    st:close()
    local t1 = sys.monotonic()
    text = statusformat.format(statusformat.normalize({ environment = "bench", machines = machines, services = {} },
      "manual"), "yaml")
    local t2 = sys.monotonic()
    if i > 0 then
      reads[#reads + 1], format[#format + 1], total[#total + 1] = t1 - t0, t2 - t1, t2 - t0
    end
  end
  assert(select(2, text:gsub("agent%-state: started", "")) == n, "status saw every machine started")
  local former = {}
  for i = 0, ctx.runs(2, 1) do
    local t0 = sys.monotonic()
    local st = assert(state.open("sqlite", { path = path }))
    assert(per_document_reads(st, uuid, now) == n)
    st:close()
    if i > 0 then former[#former + 1] = sys.monotonic() - t0 end
  end
  local f = ctx.record("status reads, per document (the former path), 10,000 machines", former)
  local q = ctx.record("status reads (environs.status.machines), 10,000 machines", reads)
  local e = ctx.record("status normalize + yaml format, 10,000 machines", format)
  local t = ctx.record("status reads + formatting, 10,000 machines (sqlite state, in process)", total)
  ctx.row(f, nil, "5 queries a machine (50,001)")
  ctx.row(q, f, "one query a collection (3)")
  ctx.row(e)
  ctx.row(t, nil, "juju status minus start-up and the configstore; aim <= 0.5 s")
  ctx.aim("juju status at 10,000 machines <= 0.5 s (reads + formatting, in process)", t.median <= 0.5,
    lib.fmt_seconds(t.median))
  fs.remove(path)
end

-- A provider for the status process: providers/dummy.lua under another
-- name, with a state store (state_info names BENCH_STATE_DB) instead of
-- its state dump. Raises if dummy.lua no longer has the pieces replaced.
local function state_provider_source(root)
  local text = assert(fs.read_file(root .. "/providers/dummy.lua"))
  local n1, n2
  text, n1 = text:gsub('\n  name = "dummy",', '\n  name = "bigstate",', 1)
  text, n2 = text:gsub("\nfunction P%.state_info%(_%)\n.-\nend\n",
    '\nfunction P.state_info(_)\n  return { kind = "sqlite", path = os.getenv("BENCH_STATE_DB") }\nend\n', 1)
  assert(n1 == 1 and n2 == 1, "bench: providers/dummy.lua changed shape (name, state_info)")
  return text
end

-- `juju status` as the operator runs it: a process over an environment of
-- 10,000 machines (a bootstrapped dummy-like environment whose state store
-- is a sqlite file), next to `juju version` (start-up) interleaved.
function M.bench_status_process(ctx)
  io.stderr:write("bench: juju status process over 10,000 machines\n")
  local build = os.getenv("BENCH_BUILD_DIR") or "build-bench"
  local juju = build .. "/bin/juju"
  local root = (debug.getinfo(1, "S").source:match("^@(.*)/bench/[^/]*$")) or "."
  local home = assert(fs.mkdtemp(ctx.scratch .. "/status-home-"))
  assert(fs.mkdir_p(home .. "/user", "0700"))
  assert(fs.mkdir_p(home .. "/juju/providers", "0700"))
  assert(fs.write_atomic(home .. "/juju/providers/bigstate.lua", state_provider_source(root)))
  assert(fs.write_atomic(home .. "/juju/environments.yaml", "default: big\nenvironments:\n  big: {type: bigstate}\n"))
  local db = home .. "/state.db"
  local env = { HOME = home .. "/user", JUJU_HOME = home .. "/juju", PATH = sys.getenv("PATH"), BENCH_STATE_DB = db }
  lib.run({ juju, "bootstrap", "-e", "big" }, { env = env })
  local jenv = assert(yaml.decode(assert(fs.read_file(home .. "/juju/environments/big.jenv"))))
  local uuid = assert(jenv["bootstrap-config"].uuid, "bench: no uuid in big.jenv")
  -- Heartbeats a second old: the runs below end well within their 30 s.
  populate(db, uuid, 10000, sys.time())
  local times = lib.run_interleaved(ctx.runs(7, 2), {
    { argv = { juju, "status" }, opts = { env = env } },
    { argv = { juju, "version" }, opts = { env = env } },
  })
  local _, r = lib.run({ juju, "status" }, { env = env })
  assert(select(2, r.stdout:gsub("agent%-state: started", "")) == 10000, "bench: status saw every machine started")
  local v = ctx.record("juju version (start-up, same run as status)", times[2])
  local t = ctx.record("juju status, 10,000 machines (process, sqlite state)", times[1])
  ctx.row(v)
  ctx.row(t, v, "the command as run: start-up, configstore, 3 queries, 1.9 MB of yaml")
  ctx.aim("juju status at 10,000 machines <= 0.5 s (the process)", t.median <= 0.5, lib.fmt_seconds(t.median))
  fs.remove_tree(home)
end

function M.run(ctx)
  M.bench_flat_maps(ctx)
  M.bench_status(ctx)
  M.bench_status_process(ctx)
end

-- Alone: `juju lua bench/docs.lua [--quick]`.
if arg and arg[0] and arg[0]:match("docs%.lua$") then
  local quick = arg[1] == "--quick"
  local rows, aims = {}, {}
  local scratch = assert(fs.mkdtemp("/tmp/juju-bench-docs-"))
  local ctx = {
    scratch = scratch,
    runs = function(full, q) return quick and q or full end,
    record = function(name, times)
      local r = lib.summary(times)
      r.name = name
      return r
    end,
    row = function(r, base, note)
      rows[#rows + 1] = { r.name, tostring(r.n), lib.fmt_seconds(r.median),
        base and string.format("%s (%s)", base.name, lib.fmt_seconds(base.median)) or "",
        base and string.format("%.2fx", r.median / base.median) or "", note or "" }
    end,
    aim = function(text, met, detail) aims[#aims + 1] = { text, met and "met" or "MISSED", detail } end,
  }
  M.run(ctx)
  fs.remove_tree(scratch)
  lib.print_table({ "benchmark", "n", "median", "compared with", "ratio", "note" }, rows)
  io.stdout:write("\n")
  lib.print_table({ "aim", "result", "measured" }, aims)
end

return M
