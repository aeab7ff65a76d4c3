-- bench/manual.lua [--quick]: the manual provider against a loopback
-- harness host (juju.testing.sshd; needs root). Run by bench/run.sh after
-- the other benchmarks, under the Release tree's `juju lua`.
--
--   1. wall time of `juju bootstrap` (a separate process, sqlite store, no
--      package work) on a fresh host, next to the floor measured in the same
--      run with OpenSSH: `scp` of the same tools tarball plus
--      `ssh root@host 'bash -s' < script` of the same phase-2 script;
--      once with a fresh JUJU_HOME (the tools tarball packed: item 4's
--      cost, which the floor does not pay) and once with the tarball in
--      JUJU_HOME/cache/tools (what the SSH path itself costs);
--   2. `juju destroy-environment` of that bootstrap, next to the same
--      destroy script run with `ssh root@host 'bash -s'` on a host juju
--      bootstrapped;
--   3. SFTP upload of a 100 MB file with juju.ssh against OpenSSH `scp`.
-- Every command runs under /usr/bin/time for its peak memory (VmHWM); the
-- two sides are interleaved. Prints Markdown tables and writes
-- bench/manual-results.json.
local here = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = here .. "/?.lua;" .. package.path

local lib = require("lib")
local fs = require("juju.fs")
local sys = require("juju.sys")
local json = require("juju.json")
local yaml = require("juju.yaml")
local cloudinit = require("juju.cloudinit")
local testing = require("juju.testing")
local sshd = require("juju.testing.sshd")
local authkeys = require("juju.environs.authkeys")

local QUICK = arg[1] == "--quick"
local function runs(full, quick) return QUICK and quick or full end

local ok, why = sshd.available()
if not ok then
  io.stderr:write("bench/manual: skipped (" .. why .. ")\n")
  return 0
end

local ROOT = fs.realpath(here .. "/..")
local BUILD = assert(os.getenv("BENCH_BUILD_DIR"), "run me through bench/run.sh")
local JUJU = BUILD .. "/bin/juju"
local SCRATCH = assert(fs.mkdtemp("/tmp/juju-bench-manual-"))
local MB = 1024 * 1024
local ADDRESS = 60

local results, rows, aims = {}, {}, {}

local function aim(text, met, detail)
  aims[#aims + 1] = { aim = text, met = met, detail = detail }
end

-- Every host started, so that an error still stops them (their agents
-- would outlive this process otherwise).
local servers = {}
local function start_host()
  local server = assert(sshd.start { address_index = ADDRESS })
  servers[#servers + 1] = server
  return server
end

local function record(name, times, extra)
  local r = lib.summary(times)
  r.name = name
  for k, v in pairs(extra or {}) do r[k] = v end
  results[#results + 1] = r
  return r
end

local function row(r, baseline, note)
  rows[#rows + 1] = {
    r.name, tostring(r.n), lib.fmt_seconds(r.median),
    lib.fmt_seconds(r.q1) .. " .. " .. lib.fmt_seconds(r.q3),
    lib.fmt_seconds(r.min) .. " .. " .. lib.fmt_seconds(r.max),
    baseline and string.format("%s (%s)", baseline.name, lib.fmt_seconds(baseline.median)) or "",
    baseline and string.format("%.2fx", r.median / baseline.median) or "",
    r.maxrss_kib and lib.fmt_kib(r.maxrss_kib) or "",
    note or "",
  }
end

-- What a host's sshd saw (its log at LogLevel VERBOSE): connections
-- (accepted logins), commands run (execs) and SFTP sessions (uploads).
local function round_trips(server)
  local log = fs.read_file(server.log) or ""
  local function count(pattern)
    local n = 0
    for _ in log:gmatch(pattern) do n = n + 1 end
    return n
  end
  return { connections = count("Accepted publickey for "), execs = count("Starting session: command "),
    sftp = count("Starting session: subsystem 'sftp'") }
end

local function fmt_trips(t)
  return string.format("%d connections, %d execs, %d SFTP", t.connections, t.execs, t.sftp)
end

-- OpenSSH as the harness user (root), host key checking off: the floor.
local function openssh_opts(server)
  return { "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
    "-o", "BatchMode=yes", "-i", server.user_key.private }
end

local function argv(...)
  local out = {}
  for _, part in ipairs({ ... }) do
    if type(part) == "table" then for _, x in ipairs(part) do out[#out + 1] = x end else out[#out + 1] = part end
  end
  return out
end

local function environments_yaml(server)
  return yaml.encode({ default = "bench", environments = { bench = {
    type = "manual", ["bootstrap-host"] = server.host .. ":" .. server.port, ["bootstrap-user"] = "root",
    ["bootstrap-host-key"] = server.host_key_pub, ["state-store"] = "sqlite",
    ["enable-os-refresh-update"] = false, ["enable-os-upgrade"] = false, ["enable-package-install"] = false,
  } } })
end

-- A JUJU_HOME for the host, its client key authorized there.
local function scenario_for(server)
  local s = testing.new { real_clock = true }
  assert(fs.write_atomic(s.home .. "/environments.yaml", environments_yaml(server)))
  local _, pub = assert(authkeys.ensure_client_key(s.home))
  assert(server.authorize(pub))
  return s
end

-- The phase-2 script and the tools tarball of one real bootstrap, rendered
-- to take the tarball from root's home on the host (where scp puts it).
local function floor_inputs()
  local server = start_host()
  local s = scenario_for(server)
  local r = s:juju("bootstrap")
  assert(r.code == 0, r.stderr)
  local run = require("juju.bootstrap").last_run
  local script = assert(cloudinit.script(run.icfg, { tools_file = "/root/tools.tgz", agent_start = "supervised" }))
  -- The packed tarball, for the warm-cache rounds.
  assert(sys.run({ "cp", "-a", s.home .. "/cache/tools", SCRATCH .. "/tools-cache" }).code == 0)
  local tarball = SCRATCH .. "/tools.tgz"
  local remote = run.icfg.tools.url:match("^file://(.*)$")
  local dl = assert(sys.run(argv("scp", "-q", openssh_opts(server), "-P", tostring(server.port),
    "root@" .. server.host .. ":" .. remote, tarball), { timeout = 60 }))
  assert(dl.code == 0, dl.stderr)
  assert(fs.write_atomic(SCRATCH .. "/script.sh", script, "0600"))
  -- The scenario's close destroys the environment: while its host still
  -- answers (a stopped host costs destroy its whole connect timeout).
  s:close()
  server.stop()
  return SCRATCH .. "/script.sh", tarball, fs.stat(tarball).size
end

-- 1. Bootstrap against the floor --------------------------------------------
local manual_provider = dofile(ROOT .. "/providers/manual.lua")

local function bench_bootstrap()
  io.stderr:write("bench/manual: bootstrap vs OpenSSH floor\n")
  local n = runs(9, 2)
  local script, tarball, size = floor_inputs()
  local juju_times, warm_times, floor_times, juju_rss, floor_rss = {}, {}, {}, 0, 0
  local destroy_times, destroy_floor_times = {}, {}
  local juju_trips, floor_trips, destroy_trips, warm_trips
  local function juju_bootstrap(round, warm)
    -- juju bootstrap on a fresh host (a new namespace: nothing from before).
    local server = start_host()
    local s = scenario_for(server)
    if warm then
      assert(fs.mkdir_p(s.home .. "/cache", tonumber("700", 8)))
      assert(sys.run({ "cp", "-a", SCRATCH .. "/tools-cache", s.home .. "/cache/tools" }).code == 0)
    end
    local cmd, rss = lib.with_maxrss({ JUJU, "bootstrap" }, SCRATCH)
    local env = {}
    for k, v in pairs(s.env) do env[k] = v end
    local t = lib.run(cmd, { env = env, timeout = 300 })
    if round > 0 then (warm and warm_times or juju_times)[#(warm and warm_times or juju_times) + 1] = t end
    juju_rss = math.max(juju_rss, (rss()))
    local trips = round_trips(server)
    if warm then warm_trips = trips else juju_trips = trips end
    return server, s, env
  end
  for round = 0, n do
    local server, s, env = juju_bootstrap(round, false)
    -- Its destroy, through the CLI.
    local before = round_trips(server)
    local dt = lib.run({ JUJU, "destroy-environment", "-y", "bench" }, { env = env, timeout = 300 })
    local after = round_trips(server)
    destroy_trips = { connections = after.connections - before.connections, execs = after.execs - before.execs,
      sftp = after.sftp - before.sftp }
    if round > 0 then destroy_times[#destroy_times + 1] = dt end
    s:close()
    server.stop()
    -- With the tarball cached, and destroy's floor: the same destroy
    -- script through OpenSSH on that host.
    server, s = juju_bootstrap(round, true)
    local uuid = s:jenv("bench")["environ-uuid"]
    assert(fs.write_atomic(SCRATCH .. "/destroy.sh", manual_provider.internal.destroy_script(uuid), "0600"))
    local dsh = argv("sh", "-c", 'exec "$@" < ' .. SCRATCH .. "/destroy.sh", "ssh",
      "ssh", openssh_opts(server), "-p", tostring(server.port), "root@" .. server.host, "bash -s")
    dt = lib.run(dsh, { timeout = 300 })
    if round > 0 then destroy_floor_times[#destroy_floor_times + 1] = dt end
    s:close()
    server.stop()
    -- The floor: the same tarball and script through OpenSSH, as root.
    server = start_host()
    local target = "root@" .. server.host
    local scp, scp_rss = lib.with_maxrss(argv("scp", "-q", openssh_opts(server), "-P", tostring(server.port),
      tarball, target .. ":tools.tgz"), SCRATCH)
    local sh, sh_rss = lib.with_maxrss(argv("sh", "-c", 'exec "$@" < ' .. script, "ssh",
      "ssh", openssh_opts(server), "-p", tostring(server.port), target, "bash -s"), SCRATCH)
    local t0 = sys.monotonic()
    lib.run(scp, { timeout = 120 })
    lib.run(sh, { timeout = 300 })
    if round > 0 then floor_times[#floor_times + 1] = sys.monotonic() - t0 end
    floor_rss = math.max(floor_rss, (scp_rss()), (sh_rss()))
    floor_trips = round_trips(server)
    server.stop()
  end
  local floor = record("OpenSSH floor: scp tarball + ssh 'bash -s' < script", floor_times,
    { maxrss_kib = floor_rss, tarball_bytes = size, round_trips = floor_trips })
  local juju = record("juju bootstrap (manual, loopback host, sqlite), fresh JUJU_HOME", juju_times,
    { maxrss_kib = juju_rss, round_trips = juju_trips })
  local warm = record("juju bootstrap (manual), tools tarball cached", warm_times,
    { maxrss_kib = juju_rss, round_trips = warm_trips })
  row(floor, nil, string.format("tarball %.1f MB; %s", size / MB, fmt_trips(floor_trips)))
  row(juju, floor, "packs the tools tarball (the floor has it), then as below; " .. fmt_trips(juju_trips))
  row(warm, floor, "prepare, checks, ubuntu user, SFTP, agent heartbeat wait; " .. fmt_trips(warm_trips))
  local dfloor = record("OpenSSH floor: ssh 'bash -s' < the same destroy script", destroy_floor_times,
    { round_trips = { connections = 1, execs = 1, sftp = 0 } })
  local destroy = record("juju destroy-environment (manual)", destroy_times, { round_trips = destroy_trips })
  row(dfloor, nil, "1 connections, 1 execs, 0 SFTP")
  row(destroy, dfloor, fmt_trips(destroy_trips))
  local ratio = warm.median / floor.median
  aim("manual bootstrap (tarball cached) within 1.2x of the OpenSSH floor", ratio <= 1.2,
    string.format("%.2fx (%s vs %s)", ratio, lib.fmt_seconds(warm.median), lib.fmt_seconds(floor.median)))
  ratio = juju.median / floor.median
  aim("manual bootstrap (fresh JUJU_HOME) within 1.2x of the OpenSSH floor", ratio <= 1.2,
    string.format("%.2fx (%s vs %s)", ratio, lib.fmt_seconds(juju.median), lib.fmt_seconds(floor.median)))
  aim("manual bootstrap: one connection, one exec per phase (the floor: " .. fmt_trips(floor_trips) .. ")",
    juju_trips.connections <= 1 and juju_trips.execs <= 3, fmt_trips(juju_trips))
  ratio = destroy.median / dfloor.median
  aim("manual destroy-environment within 1.2x of its OpenSSH floor, one connection and one exec",
    ratio <= 1.2 and destroy_trips.connections <= 1 and destroy_trips.execs <= 1,
    string.format("%.2fx (%s vs %s); %s", ratio, lib.fmt_seconds(destroy.median), lib.fmt_seconds(dfloor.median),
      fmt_trips(destroy_trips)))
end

-- 2. SFTP upload against scp --------------------------------------------------
local function bench_upload()
  io.stderr:write("bench/manual: 100 MB upload, juju.ssh SFTP vs scp\n")
  local n = runs(7, 2)
  local file = SCRATCH .. "/payload-100M"
  assert(os.execute(string.format("head -c %d /dev/urandom > %s", 100 * MB, file)))
  local server = start_host()
  local ours, ours_rss = lib.with_maxrss({ JUJU, "lua", ROOT .. "/bench/manual_child.lua", "upload", server.host,
    tostring(server.port), server.user_key.private, server.host_key_pub, file, "/root/juju-upload.bin" }, SCRATCH)
  local theirs, theirs_rss = lib.with_maxrss(argv("scp", "-q", openssh_opts(server), "-P", tostring(server.port),
    file, "root@" .. server.host .. ":/root/scp-upload.bin"), SCRATCH)
  local function clean() server.run({ "rm", "-f", "/root/juju-upload.bin", "/root/scp-upload.bin" }) end
  local t = lib.run_interleaved(n, { { argv = theirs, before = clean }, { argv = ours, before = clean } }, 1)
  clean()
  server.stop()
  local scp = record("scp 100 MB (OpenSSH, SFTP mode)", t[1], { maxrss_kib = (theirs_rss()) })
  local sftp = record("juju.ssh upload 100 MB (SFTP, 1 MiB writes)", t[2], { maxrss_kib = (ours_rss()) })
  row(scp, nil, string.format("%.0f MB/s", 100 / scp.median))
  row(sftp, scp, string.format("%.0f MB/s", 100 / sftp.median))
  fs.remove(file)
end

local machine = lib.machine()
local done, err = xpcall(function()
  bench_bootstrap()
  bench_upload()
end, debug.traceback)
for _, server in ipairs(servers) do server.stop() end
fs.remove_tree(SCRATCH)
if not done then error(err, 0) end

io.stdout:write(string.format("\nManual provider (loopback harness host). Machine: %s, %s CPUs, %d MiB RAM, %s; %s%s\n\n",
  machine.cpu, tostring(machine.nproc), machine.mem_total_mib, machine.kernel, machine.date, QUICK and " (--quick)" or ""))
lib.print_table({ "benchmark", "n", "median", "IQR", "min .. max", "compared with", "ratio", "peak RSS", "note" }, rows)
io.stdout:write("\nAims (printed, not asserted)\n\n")
local aim_rows = {}
for _, a in ipairs(aims) do aim_rows[#aim_rows + 1] = { a.aim, a.met and "met" or "MISSED", a.detail } end
lib.print_table({ "aim", "result", "measured" }, aim_rows)
local list, aim_list = json.array(), json.array()
for i, r in ipairs(results) do list[i] = r end
for i, a in ipairs(aims) do aim_list[i] = a end
assert(fs.write_atomic(ROOT .. "/bench/manual-results.json",
  assert(json.encode(json.ordered({ machine = machine, quick = QUICK, results = list, aims = aim_list },
    { "machine", "quick", "results", "aims" }), { indent = 2 })) .. "\n", "0644"))
io.stdout:write("\nwrote bench/manual-results.json\n")
return 0
