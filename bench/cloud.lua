-- bench/cloud.lua [--quick]: `juju bootstrap` of each emulated cloud
-- (tests/clouds/<name>.lua: the EC2 fake + s3rver behind s3check, ...),
-- as separate processes of the Release tree's juju. Run by bench/run.sh
-- after the other benchmarks (needs root: instances are test hosts).
--
-- For each cloud: the API calls of one bootstrap (and of destroy-
-- environment), by action, from the emulators' own journals, next to Juju
-- 1.25's sequence for the same bootstrap (data below, from
-- ../shared/spec/providers.md); and the wall time split by the bootstrap's
-- steps (its "step X: done in D" log lines). Prints Markdown tables and
-- writes bench/cloud-results.json; bench/cloud.md holds the latest run.
-- A new cloud is one more entry of CLOUDS (and its 1.25 sequence).
local here = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = here .. "/?.lua;" .. here .. "/../tests/?.lua;" .. package.path

local lib = require("lib")
local fs = require("juju.fs")
local sys = require("juju.sys")
local json = require("juju.json")
local yaml = require("juju.yaml")

local QUICK = arg[1] == "--quick"
local RUNS = QUICK and 1 or 5

if sys.geteuid() ~= 0 then
  io.stderr:write("bench/cloud: skipped (needs root: emulated instances are test hosts)\n")
  return 0
end

local ROOT = fs.realpath(here .. "/..")
local BUILD = assert(os.getenv("BENCH_BUILD_DIR"), "run me through bench/run.sh")
local JUJU = BUILD .. "/bin/juju"
sys.setenv("JUJU_EXE", JUJU) -- the instance launcher runs under this juju
sys.setenv("JUJU_TEST_BUILD_DIR", BUILD)
sys.setenv("JUJU_TEST_SOURCE_DIR", ROOT)
local h = require("helpers")

-- What Juju 1.25 sent for the same bootstrap (a fresh environment, no
-- groups yet, the instance running at the first poll), by call, with the
-- providers.md section each comes from. `per_poll`: once per address poll.
local JUJU_125 = {
  ec2 = {
    source = "../shared/spec/providers.md section 5.3 (ec2, call by call) and 1.3 (provider-state)",
    api = {
      { "DescribeAccountAttributes", 1, "5.3.1 prepare: verify credentials" },
      { "DescribeSecurityGroups", 1, "5.3.4.1 AllInstances: GroupName.1=juju-<env> (InvalidGroup.NotFound)" },
      { "DescribeAvailabilityZones", 1, "5.3.4.1 zone choice" },
      { "CreateSecurityGroup", 2, "5.3.4.4 juju-<env> and juju-<env>-0" },
      { "AuthorizeSecurityGroupIngress", 1, "5.3.4.4 juju-<env>'s rules (new group: nothing to diff)" },
      { "RunInstances", 1, "5.3.4.6 one zone, ClientToken" },
      { "CreateTags", 1, "5.3.4.7 Name + juju tags" },
      { "DescribeSecurityGroups", 1, "5.3.5 waitSSH Refresh (per poll)", per_poll = true },
      { "DescribeInstances", 1, "5.3.5 waitSSH Refresh (per poll)", per_poll = true },
    },
    storage = {
      { "GET provider-state", 2, "5.3.2 EnsureNotBootstrapped (404) + 5.3.4.8 AddStateInstance (404)" },
      { "PUT bucket", 1, "5.3.4.8 PUT bucket" },
      { "PUT provider-state", 1, "5.3.4.8 PUT provider-state" },
    },
  },
}

local CLOUDS = {
  { module = "clouds.ec2", address_base = 240, host_slots = 10 },
}

local SCRATCH = assert(fs.mkdtemp("/tmp/juju-bench-cloud-"))

local function parse_duration(d)
  local m, s = d:match("^(%d+)m([%d.]+)s$")
  if m then return tonumber(m) * 60 + tonumber(s) end
  local ms = d:match("^([%d.]+)ms$")
  if ms then return tonumber(ms) / 1000 end
  local us = d:match("^([%d.]+)[µu]s$")
  if us then return tonumber(us) / 1e6 end
  return tonumber(d:match("^([%d.]+)s$"))
end

local function new_home(c, shared, n)
  local root = assert(fs.mkdtemp(SCRATCH .. "/home-" .. n .. "-"))
  local env = { HOME = root .. "/user", JUJU_HOME = root .. "/juju", PATH = sys.getenv("PATH") }
  assert(fs.mkdir_p(env.HOME .. "/.ssh", "0700"))
  assert(fs.mkdir_p(env.JUJU_HOME .. "/cache", "0700"))
  assert(fs.symlink(shared, env.JUJU_HOME .. "/cache/tools"))
  local kg = sys.run({ "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", env.HOME .. "/.ssh/id_ed25519" }, {})
  assert(kg.code == 0, kg.stderr)
  assert(fs.write_atomic(env.JUJU_HOME .. "/environments.yaml",
    assert(yaml.encode { default = "bench", environments = { bench = c:environment() } }), "0600"))
  return env
end

local function count_by_key(calls)
  local out = {}
  for _, call in ipairs(calls) do out[call.key] = (out[call.key] or 0) + 1 end
  return out
end

local function median_int(xs)
  if #xs == 0 then return 0 end
  local s = lib.summary(xs)
  return s.median
end

local function bench_cloud(entry)
  local c = require(entry.module).start { address_base = entry.address_base, host_slots = entry.host_slots,
    cloud_init = "emulated", work = assert(fs.mkdtemp(SCRATCH .. "/cloud-")) }
  local shared = assert(fs.mkdtemp(SCRATCH .. "/tools-"))
  local boot_t, destroy_t, steps, order = {}, {}, {}, {}
  local api, storage, dapi, dstorage, polls = {}, {}, {}, {}, {}
  for i = 0, RUNS do
    io.stderr:write(string.format("bench: %s bootstrap %d/%d\n", c.name, i, RUNS))
    local env = new_home(c, shared, i)
    c:hosts(true)
    c:clear_calls()
    local tb, r = lib.run({ JUJU, "bootstrap", "--upload-tools", "--show-log",
      "--logging-config", "juju.environs.bootstrap=INFO" }, { env = env })
    assert(r.code == 0, c.name .. " bootstrap failed:\n" .. r.stderr)
    local calls, scalls = c:calls(), c:storage_calls()
    c:clear_calls()
    local td, rd = lib.run({ JUJU, "destroy-environment", "-y", "bench" }, { env = env })
    assert(rd.code == 0, c.name .. " destroy-environment failed:\n" .. rd.stderr)
    local dcalls, dscalls = c:calls(), c:storage_calls()
    local left = c:leftovers()
    assert(#left == 0, c.name .. ": destroy-environment left " .. table.concat(left, ", "))
    if i > 0 then -- the first pair builds the tools tarball into the shared cache
      boot_t[#boot_t + 1], destroy_t[#destroy_t + 1] = tb, td
      for id, d in r.stderr:gmatch("step (%S+): done in (%S+)") do
        if not steps[id] then steps[id] = {}; order[#order + 1] = id end
        steps[id][#steps[id] + 1] = assert(parse_duration(d), "bad duration " .. d)
      end
      for _, pair in ipairs { { api, calls }, { storage, scalls }, { dapi, dcalls }, { dstorage, dscalls } } do
        for k, n in pairs(count_by_key(pair[2])) do
          pair[1][k] = pair[1][k] or {}
          table.insert(pair[1][k], n)
        end
      end
      polls[#polls + 1] = count_by_key(calls).DescribeInstances or 0
    end
  end
  c:stop()
  return { name = c.name, boot = lib.summary(boot_t), destroy = lib.summary(destroy_t), steps = steps,
    order = order, api = api, storage = storage, dapi = dapi, dstorage = dstorage, polls = polls }
end

local function ours(tbl, key)
  local xs = tbl[key]
  if not xs then return 0 end
  while #xs < RUNS do xs[#xs + 1] = 0 end
  return median_int(xs)
end

local function call_rows(ours_tbl, ref_list)
  -- one row per call name: ours (median over the runs) next to 1.25's
  local names, seen = {}, {}
  local ref_n, ref_note = {}, {}
  for _, e in ipairs(ref_list or {}) do
    if not seen[e[1]] then seen[e[1]] = true; names[#names + 1] = e[1] end
    ref_n[e[1]] = (ref_n[e[1]] or 0) + e[2]
    ref_note[e[1]] = (ref_note[e[1]] and ref_note[e[1]] .. "; " or "") .. e[3]
  end
  local extra = {}
  for k in pairs(ours_tbl) do if not seen[k] then extra[#extra + 1] = k end end
  table.sort(extra)
  for _, k in ipairs(extra) do names[#names + 1] = k end
  local rows, t_ours, t_ref = {}, 0, 0
  for _, k in ipairs(names) do
    local o = ours(ours_tbl, k)
    t_ours, t_ref = t_ours + o, t_ref + (ref_n[k] or 0)
    rows[#rows + 1] = { k, string.format("%g", o), ref_n[k] and tostring(ref_n[k]) or "-", ref_note[k] or "" }
  end
  rows[#rows + 1] = { "total", string.format("%g", t_ours), tostring(t_ref), "" }
  return rows
end

local machine = lib.machine()
local out = {}
local results = {}
local function say(s) out[#out + 1] = s; io.stdout:write(s, "\n") end
local function table_md(header, rows)
  local buf = {}
  lib.print_table(header, rows, { write = function(_, ...) for _, s in ipairs { ... } do buf[#buf + 1] = s end end })
  say(table.concat(buf):gsub("\n$", ""))
end

for _, entry in ipairs(CLOUDS) do
  local res = bench_cloud(entry)
  local ref = JUJU_125[res.name] or { api = {}, storage = {}, source = "(none recorded)" }
  say(string.format("\n### %s: API calls per bootstrap (median of %d runs) next to Juju 1.25\n", res.name, RUNS))
  say(string.format("Juju 1.25's sequence: %s; polls counted once (the instance is running at the first "
    .. "DescribeInstances here: ours polled %s times).\n", ref.source, table.concat((function()
      local t = {}
      for i, p in ipairs(res.polls) do t[i] = tostring(p) end
      return t
    end)(), "/")))
  local api_rows = call_rows(res.api, ref.api)
  table_md({ "cloud API call", "ours", "Juju 1.25", "1.25 source (providers.md)" }, api_rows)
  say("")
  local st_rows = call_rows(res.storage, ref.storage)
  table_md({ "object-store request", "ours", "Juju 1.25", "1.25 source (providers.md)" }, st_rows)
  say("")
  local d_rows = call_rows(res.dapi, {})
  local ds_rows = call_rows(res.dstorage, {})
  local nd = "Juju 1.25 (providers.md has no destroy sequence)"
  table_md({ "destroy-environment: cloud API call", "ours", nd, "" }, d_rows)
  say("")
  table_md({ "destroy-environment: object-store request", "ours", nd, "" }, ds_rows)
  say(string.format("\n### %s: wall time (n = %d, separate processes)\n", res.name, RUNS))
  local rows = {
    { "juju bootstrap", tostring(res.boot.n), lib.fmt_seconds(res.boot.median),
      lib.fmt_seconds(res.boot.min) .. " .. " .. lib.fmt_seconds(res.boot.max), "100%" },
  }
  for _, id in ipairs(res.order) do
    local s = lib.summary(res.steps[id])
    rows[#rows + 1] = { "step " .. id, tostring(s.n), lib.fmt_seconds(s.median),
      lib.fmt_seconds(s.min) .. " .. " .. lib.fmt_seconds(s.max),
      string.format("%.0f%%", 100 * s.median / res.boot.median) }
  end
  rows[#rows + 1] = { "juju destroy-environment", tostring(res.destroy.n), lib.fmt_seconds(res.destroy.median),
    lib.fmt_seconds(res.destroy.min) .. " .. " .. lib.fmt_seconds(res.destroy.max), "" }
  table_md({ "what", "n", "median", "min .. max", "share of bootstrap" }, rows)
  results[#results + 1] = { cloud = res.name, runs = RUNS, bootstrap = res.boot, destroy = res.destroy,
    steps = res.steps, step_order = res.order, api_calls = res.api, storage_requests = res.storage,
    destroy_api_calls = res.dapi, destroy_storage_requests = res.dstorage, juju_125 = ref }
end

local doc = json.ordered({ machine = machine, quick = QUICK, clouds = results }, { "machine", "quick", "clouds" })
assert(fs.write_atomic(ROOT .. "/bench/cloud-results.json", assert(json.encode(doc)) .. "\n", "0644"))
h.cleanup()
fs.remove_tree(SCRATCH)
io.stderr:write("bench/cloud: wrote bench/cloud-results.json\n")
return 0
