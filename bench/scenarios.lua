-- bench/scenarios.lua N: N dummy bootstraps, each followed by a destroy, in
-- this one Lua process through the scenario API (juju.testing), all in one
-- scenario (one JUJU_HOME, as an operator has; a warm-up pair first builds
-- the tools tarball into the client's cache). Prints JSON: per-iteration seconds, the orchestrator's
-- step times (from its "step <id>: done in <d>" log lines), and the memory
-- (Lua heap after a full collection, and VmRSS) after the first and the last.
local testing = require("juju.testing")
local json = require("juju.json")
local sys = require("juju.sys")
local fs = require("juju.fs")

local n = math.tointeger(tonumber(arg[1] or "")) or 200

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

local function one(i)
  local r = s:juju("bootstrap", "-e", "bench", "--show-log", "--logging-config", "juju.environs.bootstrap=INFO")
  if r.code ~= 0 then error("bootstrap failed: " .. r.stderr) end
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
  steps_ms = steps, step_order = step_order }, "\n")
return 0
