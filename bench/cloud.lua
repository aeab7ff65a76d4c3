-- bench/cloud.lua [--quick] [CLOUD ...]: `juju bootstrap` of each emulated cloud (or those named)
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

local QUICK = false
local ONLY = nil
for _, a in ipairs(arg) do
  if a == "--quick" then QUICK = true
  else ONLY = ONLY or {}; ONLY[a] = true end
end
local RUNS = QUICK and 1 or 3

-- Juju's defaults: machine 0 runs apt-get update, upgrade and installs
-- its packages (the test host's image has no curl: without package work
-- the tools download fails), so finalize holds the host's apt time too.
local VARIANTS = {
  { label = "defaults", attrs = {} },
}

-- finalize, split by the progress lines machine 0's script prints
local PHASES = {
  { "finalize: address + SSH", "^Waiting for address", "^Logging to " },
  { "finalize: packages (apt on the host)", "^Running apt%-get update", "^Fetching tools" },
  { "finalize: tools, bootstrap-state, agent", "^Fetching tools", "^Bootstrap agent installed" },
}

-- Each stderr line with its arrival time (one python3, not a process a line).
local STAMP = "import sys,time\nfor l in sys.stdin: print('%.4f %s' % (time.monotonic(), l), end='', flush=True)"

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
    poll = "DescribeInstances",
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
  -- Keystone's POST tokens is no Nova call (the journal is Nova's and Swift's)
  openstack = {
    source = "../shared/spec/providers.md section 6.3 (openstack, call by call) and 6.4 (Swift)",
    poll = "GET /servers/{id}",
    api = {
      { "GET /flavors/detail", 1, "6.3.3 constraint validation: instance-type vocabulary" },
      { "GET /servers/detail", 1, "6.3.4.1 AllInstances: name=juju-<env>-machine-\\d*" },
      { "GET /os-availability-zone", 1, "6.3.4.1 zones (404: no zones, one unspecified)" },
      { "GET /flavors/detail", 1, "6.3.4.2 instance types" },
      { "GET /os-security-groups", 2, "6.3.4.6 find juju-<env>, then juju-<env>-0, by name" },
      { "POST /os-security-groups", 2, "6.3.4.6 juju-<env> and juju-<env>-0" },
      { "POST /os-security-group-rules", 5, "6.3.4.6 juju-<env>: tcp 22, api-port; tcp, udp, icmp from itself" },
      { "POST /servers", 1, "6.3.4.7 juju-<env>-machine-0" },
      { "GET /servers/{id}", 1, "6.3.4.8 details" },
      { "GET /servers/{id}", 1, "6.3.5 waitSSH Refresh (per poll)", per_poll = true },
      { "GET /os-floating-ips", 1, "6.3.5 waitSSH Refresh: floating-IP lookup (per poll)", per_poll = true },
    },
    storage = {
      { "GET provider-state", 2, "6.3.2 EnsureNotBootstrapped (404) + 6.3.4.10 AddStateInstance (404)" },
      { "PUT container", 1, "6.4 container create (first Put)" },
      { "POST container", 1, "6.4 X-Container-Read: .r:*,.rlistings" },
      { "PUT provider-state", 1, "6.3.4.10 AddStateInstance" },
    },
  },
  -- the files API is MAAS's object store (the storage table); 1.25 had no
  -- boot-images / networks emulation here: the rows are what providers.md lists
  maas = {
    source = "../shared/spec/providers.md section 9.3 (maas, call by call) and 9.4 (files)",
    poll = "GET nodes/?op=deployment_status",
    api = {
      { "GET maas/?op=get_config", 1, "9.3.1 prepare: verify credentials" },
      { "GET nodegroups/?op=list", 1, "9.3.3 constraint validation: architectures" },
      { "GET nodegroups/{id}/boot-images/", 1, "9.3.3 boot images of each node group (one)" },
      { "GET nodes/?op=list", 1, "9.3.4.1 AllInstances: agent_name=<uuid>" },
      { "GET zones/", 1, "9.3.4.1 zones" },
      { "POST nodes/?op=acquire", 1, "9.3.4.2 acquire" },
      { "GET nodes/{id}/?op=details", 1, "9.3.4.4 networking info (lshw/lldp)" },
      { "GET networks/", 1, "9.3.4.4 networks of the node (none listed: no list_connected_macs)" },
      { "POST nodes/{id}/?op=start", 1, "9.3.4.6 start with distro_series and user_data" },
      { "GET nodes/?op=deployment_status", 1, "9.3.5 wait for Deployed (per poll, every 10 s)", per_poll = true },
      { "GET nodes/?op=list", 1, "9.3.6 waitSSH Refresh: id=<system_id> (per poll)", per_poll = true },
    },
    storage = {
      { "GET files/{name}/", 2, "9.3.2 EnsureNotBootstrapped (404) + 9.3.4.7 AddStateInstance (404)" },
      { "POST files/?op=add", 1, "9.3.4.7 AddStateInstance: provider-state" },
    },
  },
  joyent = {
    source = "../shared/spec/providers.md section 8.3 (joyent, call by call) and 8.4 (Manta)",
    poll = "GET /{user}/machines/{id}",
    api = {
      { "HEAD /{user}/machines", 1, "8.3.1 prepare: verify credentials (CountMachines)" },
      { "GET /{user}/packages", 1, "8.3.3 constraint validation: instance-type vocabulary" },
      { "GET /{user}/machines", 1, "8.3 AllInstances: tag.group=juju&tag.env=<env>" },
      { "GET /{user}/packages", 1, "8.3.4.1 instance types" },
      { "POST /{user}/machines", 1, "8.3.4.4 create (201)" },
      { "GET /{user}/machines/{id}", 1, "8.3.4.5 poll until running (per poll, every second)", per_poll = true },
    },
    storage = {
      { "GET provider-state", 2, "8.3.2 EnsureNotBootstrapped (404) + 8.3.4.6 AddStateInstance (404)" },
      { "PUT directory", 1, "8.4 control directory (PUT type=directory)" },
      { "PUT provider-state", 1, "8.3.4.6 AddStateInstance" },
    },
  },
  -- Azure records no provider-state (7.4.9: state servers are found by
  -- the cloud service label); async operations are polled every 10 s
  azure = {
    source = "../shared/spec/providers.md section 7.3-7.4 (azure, call by call) and 7.5 (blob storage)",
    poll = "GET /operations/{id}",
    api = {
      { "POST /affinitygroups", 1, "7.3.1 create affinity group juju-<env>-ag" },
      { "GET /services/networking/media", 1, "7.3.3 read the network configuration (404: none yet)" },
      { "PUT /services/networking/media", 1, "7.3.3 the document with juju-<env>-vnet (async)" },
      { "GET /operations/{id}", 3, "7.2 async operations: vnet PUT, cloud service, deployment (per poll, every 10 s)",
        per_poll = true },
      { "GET /locations", 1, "7.4.3 role sizes of the location" },
      { "GET /services/storageservices/{account}/keys", 1, "7.5 the storage account key (lazily)" },
      { "GET /services/hostedservices/operations/isavailable/{svc}", 1, "7.4.6 cloud service name free?" },
      { "POST /services/hostedservices", 1, "7.4.6 CreateHostedService" },
      { "GET /services/hostedservices/{svc}", 1, "7.4.6 properties, embed-detail=true" },
      { "POST /services/hostedservices/{svc}/deployments", 1, "7.4.7 the deployment <svc>-v2 (async)" },
      { "GET /services/hostedservices/{svc}/deployments/{dep}", 1, "7.4.10 waitSSH Refresh (per poll)",
        per_poll = true },
    },
    storage = {
      { "PUT container", 1, "7.5 container juju-<env>-private" },
      { "PUT tools/...", 1, "7.5 tools upload (block blob; per block with blocklist)" },
    },
  },
}

-- Bench runs alone: its clouds may reuse the matrix specs' addresses.
local CLOUDS = {
  { module = "clouds.ec2", address_base = 240, host_slots = 10 },
  { module = "clouds.openstack", address_base = 80, host_slots = 10 },
  { module = "clouds.maas", address_base = 34, host_slots = 5 },
  { module = "clouds.joyent", address_base = 40, host_slots = 5 },
  { module = "clouds.azure", address_base = 10, host_slots = 3 },
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

local function new_home(c, shared, n, extra)
  local root = assert(fs.mkdtemp(SCRATCH .. "/home-" .. n .. "-"))
  local env = { HOME = root .. "/user", JUJU_HOME = root .. "/juju", PATH = sys.getenv("PATH") }
  assert(fs.mkdir_p(env.HOME .. "/.ssh", "0700"))
  assert(fs.mkdir_p(env.JUJU_HOME .. "/cache", "0700"))
  assert(fs.symlink(shared, env.JUJU_HOME .. "/cache/tools"))
  local kg = sys.run({ "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", env.HOME .. "/.ssh/id_ed25519" }, {})
  assert(kg.code == 0, kg.stderr)
  assert(fs.write_atomic(env.JUJU_HOME .. "/environments.yaml",
    assert(yaml.encode { default = "bench", environments = { bench = c:environment(extra) } }), "0600"))
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

-- juju bootstrap with each stderr line time-stamped: seconds, result, {phase = s}.
local function bootstrap_stamped(env)
  local t0 = sys.monotonic()
  local r = assert(sys.run({ "bash", "-c", 'set -o pipefail; "$@" 2>&1 >/dev/null | /usr/bin/python3 -u -c "$STAMP"',
    "bash", JUJU, "bootstrap", "--upload-tools", "--show-log", "--logging-config", "juju.environs.bootstrap=INFO" },
    { env = (function() local e = { STAMP = STAMP }; for k, v in pairs(env) do e[k] = v end; return e end)() }))
  local dt = sys.monotonic() - t0
  assert(r.code == 0, "bootstrap failed:\n" .. r.stdout)
  local lines = {}
  for t, text in r.stdout:gmatch("([%d.]+) ([^\n]*)") do lines[#lines + 1] = { tonumber(t), text } end
  local phases = {}
  for _, ph in ipairs(PHASES) do
    local a, b
    for _, l in ipairs(lines) do
      if not a and l[2]:match(ph[2]) then a = l[1] end
      if a and not b and l[2]:match(ph[3]) then b = l[1] end
    end
    if a and b then phases[ph[1]] = b - a end
  end
  r.stderr = r.stdout
  return dt, r, phases
end

local function bench_cloud(entry, variant)
  local c = require(entry.module).start { address_base = entry.address_base, host_slots = entry.host_slots,
    cloud_init = "emulated", work = assert(fs.mkdtemp(SCRATCH .. "/cloud-")) }
  local shared = assert(fs.mkdtemp(SCRATCH .. "/tools-"))
  local boot_t, destroy_t, steps, order = {}, {}, {}, {}
  local api, storage, dapi, dstorage, polls = {}, {}, {}, {}, {}
  for i = 0, RUNS do
    io.stderr:write(string.format("bench: %s (%s) bootstrap %d/%d\n", c.name, variant.label, i, RUNS))
    local env = new_home(c, shared, i, variant.attrs)
    c:hosts(true)
    c:clear_calls()
    local tb, r, phases = bootstrap_stamped(env)
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
      for _, ph in ipairs(PHASES) do
        local id = ph[1]
        if phases[id] then
          if not steps[id] then steps[id] = {}; order[#order + 1] = id end
          steps[id][#steps[id] + 1] = phases[id]
        end
      end
      for _, pair in ipairs { { api, calls }, { storage, scalls }, { dapi, dcalls }, { dstorage, dscalls } } do
        for k, n in pairs(count_by_key(pair[2])) do
          pair[1][k] = pair[1][k] or {}
          table.insert(pair[1][k], n)
        end
      end
      polls[#polls + 1] = count_by_key(calls)[(JUJU_125[c.name] or {}).poll or ""] or 0
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

local function wall_rows(res)
  local rows = {
    { "juju bootstrap", tostring(res.boot.n), lib.fmt_seconds(res.boot.median),
      lib.fmt_seconds(res.boot.min) .. " .. " .. lib.fmt_seconds(res.boot.max), "100%" },
  }
  local function add(label, xs)
    local s = lib.summary(xs)
    rows[#rows + 1] = { label, tostring(s.n), lib.fmt_seconds(s.median),
      lib.fmt_seconds(s.min) .. " .. " .. lib.fmt_seconds(s.max),
      string.format("%.0f%%", 100 * s.median / res.boot.median) }
  end
  for _, id in ipairs(res.order) do
    if not id:find("^finalize: ") then
      add("step " .. id, res.steps[id])
      if id == "finalize" then
        for _, ph in ipairs(PHASES) do
          if res.steps[ph[1]] then add("  " .. ph[1], res.steps[ph[1]]) end
        end
      end
    end
  end
  rows[#rows + 1] = { "juju destroy-environment", tostring(res.destroy.n), lib.fmt_seconds(res.destroy.median),
    lib.fmt_seconds(res.destroy.min) .. " .. " .. lib.fmt_seconds(res.destroy.max), "" }
  return rows
end

say(string.format("Machine: %s, %s CPUs, %d MiB RAM, %s; %s", machine.cpu, tostring(machine.nproc),
  machine.mem_total_mib, machine.kernel, machine.date))
for _, entry in ipairs(CLOUDS) do
  if ONLY and not ONLY[entry.module:match("[^.]+$")] then goto next_cloud end
  local runs = {}
  for i, variant in ipairs(VARIANTS) do runs[i] = bench_cloud(entry, variant) end
  local res = runs[1]
  local ref = JUJU_125[res.name] or { api = {}, storage = {}, source = "(none recorded)" }
  say(string.format("\n### %s: API calls per bootstrap (median of %d runs) next to Juju 1.25\n", res.name, RUNS))
  local polls = {}
  for i, p in ipairs(res.polls) do polls[i] = tostring(p) end
  say(string.format("Juju 1.25's sequence: %s; its address poll counted once (ours polled %s "
    .. "%s times: the instance is a test host that starts while we poll).\n", ref.source, ref.poll or "(none)",
    table.concat(polls, "/")))
  table_md({ "cloud API call", "ours", "Juju 1.25", "1.25 source (providers.md)" }, call_rows(res.api, ref.api))
  say("")
  table_md({ "object-store request", "ours", "Juju 1.25", "1.25 source (providers.md)" },
    call_rows(res.storage, ref.storage))
  say("")
  local nd = "Juju 1.25 (providers.md has no destroy sequence)"
  table_md({ "destroy-environment: cloud API call", "ours", nd, "" }, call_rows(res.dapi, {}))
  say("")
  table_md({ "destroy-environment: object-store request", "ours", nd, "" }, call_rows(res.dstorage, {}))
  for i, variant in ipairs(VARIANTS) do
    local r = runs[i]
    say(string.format("\n### %s, %s: wall time by step (n = %d, separate processes, Release build)\n", res.name,
      variant.label, RUNS))
    table_md({ "what", "n", "median", "min .. max", "share of bootstrap" }, wall_rows(r))
    results[#results + 1] = { cloud = r.name, variant = variant.label, runs = RUNS, bootstrap = r.boot,
      destroy = r.destroy, steps = r.steps, step_order = r.order, api_calls = r.api, storage_requests = r.storage,
      destroy_api_calls = r.dapi, destroy_storage_requests = r.dstorage, juju_125 = ref }
  end
  ::next_cloud::
end

local doc = json.ordered({ machine = machine, quick = QUICK, clouds = results }, { "machine", "quick", "clouds" })
assert(fs.write_atomic(ROOT .. "/bench/cloud-results.json", assert(json.encode(doc)) .. "\n", "0644"))
h.cleanup()
fs.remove_tree(SCRATCH)
io.stderr:write("bench/cloud: wrote bench/cloud-results.json\n")
return 0
