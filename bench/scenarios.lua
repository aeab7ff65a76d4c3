-- bench/scenarios.lua N: N dummy bootstraps, each followed by a destroy, in
-- this one Lua process through the scenario API (juju.testing), all in one
-- scenario (one JUJU_HOME, as an operator has; a warm-up pair first builds
-- the tools tarball into the client's cache). Prints JSON: per-iteration seconds, the orchestrator's
-- step times (from its "step <id>: done in <d>" log lines), the durable
-- writes of one bootstrap and of one destroy, and the memory
-- (Lua heap after a full collection, and VmRSS) after the first and the last.
local testing = require("juju.testing")
local json = require("juju.json")
local sys = require("juju.sys")
local fs = require("juju.fs")

local n = math.tointeger(tonumber(arg[1] or "")) or 200

-- Durable writes per pair, counted by wrapping juju.fs's writers (every
-- module calls them through the one module table): .jenv creates and
-- rewrites, and all atomic writes. The journal's saves are its rewrites.
local counts = { jenv_create = 0, jenv_write = 0, write_atomic = 0, create_exclusive = 0 }
local real_write_atomic, real_create_exclusive = fs.write_atomic, fs.create_exclusive
fs.write_atomic = function(path, ...)
  counts.write_atomic = counts.write_atomic + 1
  if type(path) == "string" and path:match("%.jenv$") then counts.jenv_write = counts.jenv_write + 1 end
  return real_write_atomic(path, ...)
end
fs.create_exclusive = function(path, ...)
  counts.create_exclusive = counts.create_exclusive + 1
  if type(path) == "string" and path:match("%.jenv$") then counts.jenv_create = counts.jenv_create + 1 end
  return real_create_exclusive(path, ...)
end
local function snapshot()
  local c = {}
  for k, v in pairs(counts) do c[k] = v end
  return c
end
local function diff(a, b)
  local d = {}
  for k, v in pairs(b) do d[k] = v - a[k] end
  return d
end

local function rss_kib()
  local text = fs.read_file("/proc/self/status") or ""
  return tonumber(text:match("VmRSS:%s*(%d+)"))
end

local function memory()
  collectgarbage("collect")
  return { lua_kib = math.floor(collectgarbage("count")), rss_kib = rss_kib() }
end

-- Step times in milliseconds, in arrays sized before the memory baseline is
-- taken, so this script's own bookkeeping does not show up as growth.
local steps, step_order = {}, json.array()

local function ms(d)
  local m, sec = d:match("^(%d+)m(%d+)s$")
  if m then return (tonumber(m) * 60 + tonumber(sec)) * 1000 end
  local v = d:match("^([%d.]+)ms$")
  if v then return tonumber(v) end
  return tonumber(d:match("^([%d.]+)s$")) * 1000
end

local s = testing.new { environments = { bench = { type = "dummy" } }, default = "bench", real_clock = true }

local per_bootstrap, per_destroy -- the counts of the first counted pair

local function one(i)
  local c0 = snapshot()
  local r = s:juju("bootstrap", "-e", "bench", "--show-log", "--logging-config", "juju.environs.bootstrap=INFO")
  if r.code ~= 0 then error("bootstrap failed: " .. r.stderr) end
  local c1 = snapshot()
  for id, d in r.stderr:gmatch("step (%S+): done in (%S+)") do
    if not steps[id] then
      steps[id] = json.array()
      for j = 1, n do steps[id][j] = 0 end
      step_order[#step_order + 1] = id
    end
    steps[id][i] = ms(d)
  end
  r = s:juju("destroy-environment", "-y", "bench")
  if r.code ~= 0 then error("destroy-environment failed: " .. r.stderr) end
  if i == 1 then per_bootstrap, per_destroy = diff(c0, c1), diff(c1, snapshot()) end
end

-- The warm-up pair (not counted).
assert(s:juju("bootstrap", "-e", "bench").code == 0, s.last.stderr)
assert(s:juju("destroy-environment", "-y", "bench").code == 0, s.last.stderr)

local times, first = json.array(), nil
for i = 1, n do times[i] = 0.0 end
for i = 1, n do
  local t0 = sys.monotonic()
  one(i)
  times[i] = sys.monotonic() - t0
  if i == 1 then first = memory() end
end
local last = memory()
s:close()
io.stdout:write(json.encode { n = n, times = times, first = first, last = last,
  steps_ms = steps, step_order = step_order, writes_bootstrap = per_bootstrap, writes_destroy = per_destroy }, "\n")
return 0
