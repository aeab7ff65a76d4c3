-- bench/run.lua [--quick]: the engine's benchmarks. Run through bench/run.sh,
-- which builds the Release tree and starts this under its `juju lua`.
--
-- Every number is a median over many runs with its spread (IQR and
-- min..max); every comparison is a ratio of medians measured in the same
-- run, interleaved with its baseline. Prints Markdown tables and writes
-- bench/results.json. The aims are printed next to the results, not
-- asserted: this is a measuring instrument, not a test.
local here = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = here .. "/?.lua;" .. package.path

local lib = require("lib")
local fs = require("juju.fs")
local sys = require("juju.sys")
local json = require("juju.json")
local crypto = require("juju.crypto")

-- --quick: fewer repetitions; --startup: only the start-up rows (cold
-- start, dummy bootstrap processes, their fsyncs and the crypto they are
-- compared with), written to bench/results-startup.json.
local QUICK, STARTUP = false, false
for _, a in ipairs(arg) do
  if a == "--quick" then QUICK = true elseif a == "--startup" then STARTUP = true end
end
local function runs(full, quick) return QUICK and quick or full end

local ROOT = fs.realpath(here .. "/..")
local BUILD = assert(os.getenv("BENCH_BUILD_DIR"), "run me through bench/run.sh")
local JUJU = BUILD .. "/bin/juju"
local SCRATCH = assert(fs.mkdtemp("/tmp/juju-bench-"))
local MB = 1024 * 1024

local results, rows, aims = {}, {}, {}

local function pct(x) return string.format("%.2fx", x) end

-- Records one measured thing; `times` in seconds.
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
    baseline and pct(r.median / baseline.median) or "",
    r.maxrss_kib and lib.fmt_kib(r.maxrss_kib) or "",
    note or "",
  }
end

local function aim(text, met, detail)
  aims[#aims + 1] = { aim = text, met = met, detail = detail }
end

local function env_for(home)
  return { HOME = home .. "/user", JUJU_HOME = home .. "/juju", PATH = sys.getenv("PATH") }
end

-- 1. Cold start -------------------------------------------------------------
-- Each command is spawned directly (no /usr/bin/time in between, which
-- would add its own exec to both sides and dilute the ratio), interleaved
-- with `/bin/true` as the floor of a spawn: the net ratio is
-- (juju - true) / (lua - true). Peak RSS comes from separate runs under
-- /usr/bin/time.
local function bench_cold_start()
  io.stderr:write("bench: cold start\n")
  local n = runs(50, 10)
  -- An operator's JUJU_HOME: the warm-up runs of `juju help` fill its
  -- cache of the providers' descriptions (cache/providers).
  local home = assert(fs.mkdtemp(SCRATCH .. "/home-"))
  assert(fs.mkdir_p(home .. "/user", "0700"))
  assert(fs.mkdir_p(home .. "/juju", "0700"))
  local opts = { env = env_for(home) }
  local cmds = {
    { name = "spawn floor (/bin/true)", argv = { "/bin/true" }, opts = opts },
    { name = "lua5.4 -e ''", argv = { "lua5.4", "-e", "" }, opts = opts },
    { name = "juju version", argv = { JUJU, "version" }, opts = opts },
    { name = "juju help", argv = { JUJU, "help" }, opts = opts },
    { name = "juju help commands", argv = { JUJU, "help", "commands" }, opts = opts },
  }
  local t = lib.run_interleaved(n, cmds, 3)
  assert(fs.exists(home .. "/juju/cache/providers"), "juju help wrote no provider cache")
  local out = {}
  for i, c in ipairs(cmds) do
    local argv, rss = lib.with_maxrss(c.argv, SCRATCH)
    lib.run(argv, opts)
    out[i] = record(c.name, t[i], { maxrss_kib = rss() })
  end
  local floor, lua = out[1], out[2]
  local function net(r) return (r.median - floor.median) / (lua.median - floor.median) end
  row(floor)
  row(lua, floor)
  for i = 3, #out do
    out[i].net_ratio = net(out[i])
    row(out[i], lua, string.format("net of the spawn: %.2fx", out[i].net_ratio))
  end
  -- The same commands' user-space instructions (valgrind's callgrind: the
  -- dynamic loader, Lua and the engine, not the kernel's exec): a count
  -- that other load on the machine does not move, beside the times.
  local counts = {}
  for i = 2, #cmds do
    local argv = { "valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null" }
    for _, a in ipairs(cmds[i].argv) do argv[#argv + 1] = a end
    local _, r = lib.run(argv, opts)
    counts[i] = assert(tonumber((r.stderr:match("Collected : ([%d,]+)") or ""):gsub(",", "") .. ""),
      "no instruction count from callgrind")
  end
  for i = 3, #cmds do
    rows[#rows + 1] = { cmds[i].name .. " (user-space instructions, callgrind)", "1",
      string.format("%.2fM", counts[i] / 1e6), "", "", string.format("lua5.4 -e '' (%.2fM)", counts[2] / 1e6),
      pct(counts[i] / counts[2]), "", "" }
    out[i].instructions = counts[i]
  end
  out[2].instructions = counts[2]
  aim("juju version within 3x of bare lua5.4 (net of the spawn)", out[3].net_ratio <= 3,
    string.format("%.2fx net, %s raw", out[3].net_ratio, pct(out[3].median / lua.median)))
  aim("juju help within 2x of bare lua5.4 (net of the spawn)", out[4].net_ratio <= 2,
    string.format("%.2fx net, %s raw (provider descriptions from JUJU_HOME/cache/providers)", out[4].net_ratio,
      pct(out[4].median / lua.median)))
  return out[3]
end

-- 2. Dummy bootstrap and destroy as separate processes ----------------------
local function parse_duration(d)
  local m, s = d:match("^(%d+)m(%d+)s$")
  if m then return tonumber(m) * 60 + tonumber(s) end
  local ms = d:match("^([%d.]+)ms$")
  if ms then return tonumber(ms) / 1000 end
  return tonumber(d:match("^([%d.]+)s$"))
end

local function collect_steps(text, steps, order)
  for id, d in text:gmatch("step (%S+): done in (%S+)") do
    if not steps[id] then steps[id] = {}; order[#order + 1] = id end
    steps[id][#steps[id] + 1] = assert(parse_duration(d), "bad duration " .. d)
  end
end

local function step_rows(title, steps, order, total)
  local out = {}
  for _, id in ipairs(order) do
    local s = lib.summary(steps[id])
    out[#out + 1] = { id, tostring(s.n), lib.fmt_seconds(s.median),
      lib.fmt_seconds(s.min) .. " .. " .. lib.fmt_seconds(s.max),
      string.format("%.0f%%", 100 * s.median / total) }
  end
  return { title = title, rows = out }
end

local FSYNC_PAYLOAD = string.rep("x", 1024)

local function bench_bootstrap_processes()
  io.stderr:write("bench: dummy bootstrap + destroy processes\n")
  local n = runs(30, 5)
  local boot, destroy, steps, order, probes, cryptos = {}, {}, {}, {}, {}, {}
  -- One JUJU_HOME, as an operator has: the first pair (not counted) also
  -- builds the tools tarball into the client's cache.
  local home = assert(fs.mkdtemp(SCRATCH .. "/home-"))
  assert(fs.mkdir_p(home .. "/user", "0700"))
  assert(fs.mkdir_p(home .. "/juju", "0700"))
  assert(fs.write_atomic(home .. "/juju/environments.yaml",
    "default: bench\nenvironments:\n  bench:\n    type: dummy\n"))
  local opts = { env = env_for(home) }
  for i = 0, n do
    local tb, r = lib.run({ JUJU, "bootstrap", "-e", "bench", "--show-log",
      "--logging-config", "juju.environs.bootstrap=INFO" }, opts)
    local td = lib.run({ JUJU, "destroy-environment", "-y", "bench" }, opts)
    if i > 0 then -- the first pair warms the page cache
      boot[#boot + 1], destroy[#destroy + 1] = tb, td
      collect_steps(r.stderr, steps, order)
      -- The fsync floor (2b) measured between the pairs, so a burst of
      -- other I/O on the machine hits both alike.
      for _ = 1, 2 do
        local t0 = sys.monotonic()
        assert(fs.write_atomic(home .. "/fsync-probe", FSYNC_PAYLOAD))
        probes[#probes + 1] = sys.monotonic() - t0
      end
      -- And its crypto floor (CA + server certificate + PBKDF2), likewise.
      local t0 = sys.monotonic()
      local ca_cert, ca_key = assert(crypto.new_ca("bench"))
      assert(crypto.new_server_cert(ca_cert, ca_key, { hostnames = { "localhost", "10.0.0.1" } }))
      assert(crypto.user_password_hash("correct horse battery staple", crypto.COMPAT_SALT))
      cryptos[#cryptos + 1] = sys.monotonic() - t0
    end
  end
  fs.remove_tree(home)
  local b = record("juju bootstrap (dummy, process)", boot)
  b.fsync_probes, b.crypto_floor = probes, lib.summary(cryptos).median
  local d = record("juju destroy-environment (dummy, process)", destroy)
  row(b)
  row(d)
  aim("dummy bootstrap under 100 ms", b.median < 0.1, lib.fmt_seconds(b.median))
  return step_rows("Bootstrap steps (separate `juju bootstrap` processes; log resolution 1 ms)",
    steps, order, b.median), b
end

-- 2b. Durable writes of a CLI bootstrap ------------------------------------
-- The fsyncs of one `juju bootstrap` process, counted with strace -f -y
-- (which names each descriptor's file): in a fresh JUJU_HOME (the tools
-- tarball is built into its cache) and warm (a JUJU_HOME whose cache has
-- it). Those on files in a juju-tools-* temporary directory are counted
-- apart: such a directory is removed when the bootstrap ends, so nothing
-- in it needs to survive a crash. The cost of one fsync is measured in the
-- same run: half an fs.write_atomic of 1 KiB (file + directory) beside the
-- homes.
local function new_home(parent)
  local home = assert(fs.mkdtemp(parent .. "/home-"))
  assert(fs.mkdir_p(home .. "/user", "0700"))
  assert(fs.mkdir_p(home .. "/juju", "0700"))
  assert(fs.write_atomic(home .. "/juju/environments.yaml",
    "default: bench\nenvironments:\n  bench:\n    type: dummy\n"))
  return home
end

local function count_fsyncs(home)
  local trace = SCRATCH .. "/strace.out"
  fs.remove(trace)
  lib.run({ "strace", "-f", "-y", "-qq", "-e", "trace=fsync,fdatasync", "-o", trace, JUJU, "bootstrap", "-e", "bench" },
    { env = env_for(home) })
  local total, tmp = 0, 0
  for line in (fs.read_file(trace) or ""):gmatch("[^\n]+") do
    local path = line:match("f[dat]*sync%(%d+<([^>]*)>")
    if path then
      total = total + 1
      if path:match("^/tmp/juju%-tools%-") then tmp = tmp + 1 end
    end
  end
  lib.run({ JUJU, "destroy-environment", "-y", "bench" }, { env = env_for(home) })
  return { total = total, temporary = tmp, necessary = total - tmp }
end

local cli_durability -- fsync counts and times, compared with the crypto below
local function bench_cli_durability(warm)
  io.stderr:write("bench: CLI bootstrap fsyncs, fresh and warm JUJU_HOME\n")
  local n = runs(15, 3)
  local fresh_times = {}
  for i = 0, n do
    local home = new_home(SCRATCH)
    local t = lib.run({ JUJU, "bootstrap", "-e", "bench" }, { env = env_for(home) })
    lib.run({ JUJU, "destroy-environment", "-y", "bench" }, { env = env_for(home) })
    if i > 0 then fresh_times[#fresh_times + 1] = t end
    fs.remove_tree(home)
  end
  local fresh = record("juju bootstrap (dummy, process, fresh JUJU_HOME)", fresh_times)
  row(fresh, warm, "builds the tools tarball into the new home's cache")
  local home = new_home(SCRATCH)
  local cold = count_fsyncs(home)
  local hot = count_fsyncs(home)
  fs.remove_tree(home)
  local wa = record("fs.write_atomic 1 KiB (write, fsync, rename, fsync dir)", warm.fsync_probes)
  warm.fsync_probes = nil -- summarised in wa; not a result of its own
  row(wa, nil, string.format("one fsync ~ %s (measured between the warm bootstraps above)",
    lib.fmt_seconds(wa.median / 2)))
  fresh.fsyncs, warm.fsyncs = cold, hot
  cli_durability = { fresh = fresh, warm = warm, fsync = wa.median / 2 }
  aim("no fsync of files in a temporary directory that is then removed (CLI bootstrap)",
    cold.temporary == 0 and hot.temporary == 0,
    string.format("fresh JUJU_HOME: %d of %d fsyncs; warm: %d of %d", cold.temporary, cold.total, hot.temporary,
      hot.total))
end

-- 3. Scenario throughput in one Lua process -------------------------------
local scenario_pair -- its record, compared with its unavoidable crypto below
local function bench_scenarios()
  io.stderr:write("bench: scenario throughput\n")
  local n = runs(200, 20)
  local _, r = lib.run({ JUJU, "lua", ROOT .. "/bench/scenarios.lua", tostring(n) })
  local out = assert(json.decode(r.stdout))
  local per = record("dummy bootstrap + destroy (one process, per pair)", out.times)
  scenario_pair = per
  local sum = 0
  for _, t in ipairs(out.times) do sum = sum + t end
  local rate = #out.times / sum
  per.per_second = rate
  per.memory_first, per.memory_last = out.first, out.last
  row(per, nil, string.format("%.1f/s; Lua heap %d -> %d KiB, RSS %s -> %s", rate,
    out.first.lua_kib, out.last.lua_kib, lib.fmt_kib(out.first.rss_kib), lib.fmt_kib(out.last.rss_kib)))
  aim(">= 100 dummy bootstraps/s in one process", rate >= 100, string.format("%.1f/s", rate))
  -- The journal's durable points: provider-state (journaled before preflight
  -- writes it), the instance's intent, its record, the tools object, the
  -- endpoints, bootstrapped; plus the .jenv's creation by prepare.
  local wb, wd = out.writes_bootstrap, out.writes_destroy
  per.writes_bootstrap, per.writes_destroy = wb, wd
  rows[#rows + 1] = { "durable writes per pair (one process)", "1", "", "", "", "", "", "",
    string.format("bootstrap: .jenv created %d, rewritten %d; %d atomic writes in all. destroy: .jenv rewritten %d",
      wb.jenv_create, wb.jenv_write, wb.write_atomic, wd.jenv_write) }
  aim(".jenv rewritten only at the journal's 6 durable points per bootstrap (and <= 2 per destroy)",
    wb.jenv_write <= 6 and wd.jenv_write <= 2,
    string.format("%d per bootstrap (+1 create), %d per destroy", wb.jenv_write, wd.jenv_write))
  local heap_growth = out.last.lua_kib - out.first.lua_kib
  local rss_growth = out.last.rss_kib - out.first.rss_kib
  aim("flat memory over the scenario run", heap_growth <= 64 and rss_growth <= 4096,
    string.format("Lua heap %+d KiB, RSS %+d KiB over %d pairs", heap_growth, rss_growth, n))
  local steps, order = {}, {}
  for _, id in ipairs(out.step_order) do
    order[#order + 1] = id
    steps[id] = {}
    for _, v in ipairs(out.steps_ms[id]) do steps[id][#steps[id] + 1] = v / 1000 end
  end
  return step_rows("Bootstrap steps (in one process, juju.testing with the real clock)", steps, order, per.median)
end

-- 4. Crypto ---------------------------------------------------------------
local function bench_crypto()
  io.stderr:write("bench: crypto\n")
  local n = runs(30, 5)
  local ca_cert, ca_key
  local ca = record("crypto.new_ca (ECDSA P-256)", lib.time_fn(n, function()
    ca_cert, ca_key = assert(crypto.new_ca("bench"))
  end))
  local cert = record("crypto.new_server_cert", lib.time_fn(n, function()
    assert(crypto.new_server_cert(ca_cert, ca_key, { hostnames = { "localhost", "10.0.0.1" } }))
  end))
  local pbkdf2 = record("crypto.user_password_hash (8192 its)", lib.time_fn(n, function()
    assert(crypto.user_password_hash("correct horse battery staple", crypto.COMPAT_SALT))
  end))
  row(ca)
  row(cert)
  row(pbkdf2)
  -- A bootstrap's unavoidable crypto: the CA, the server certificate and
  -- the admin password hash (PBKDF2, required by Juju's password scheme).
  local floor = ca.median + cert.median + pbkdf2.median
  if cli_durability then
    local c = cli_durability
    local necessary = c.warm.fsyncs.necessary
    -- The crypto measured between the warm bootstraps (the same load on
    -- the machine); the rows above are measured apart.
    local cfloor = c.warm.crypto_floor or floor
    local base = cfloor + necessary * c.fsync
    aim("a warm CLI bootstrap within 2x of its crypto + its necessary fsyncs", c.warm.median <= 2 * base,
      string.format("%s (%s; crypto %s + %d fsyncs outside temporary directories x %s); fresh JUJU_HOME %s, %d fsyncs",
        pct(c.warm.median / base), lib.fmt_seconds(c.warm.median), lib.fmt_seconds(cfloor), necessary,
        lib.fmt_seconds(c.fsync), lib.fmt_seconds(c.fresh.median), c.fresh.fsyncs.total))
  end
  if scenario_pair then
    local ratio = scenario_pair.median / floor
    aim("a bootstrap + destroy pair within 1.5x of its crypto (CA + server cert + PBKDF2)", ratio <= 1.5,
      string.format("%s (%s a pair, %s of crypto)", pct(ratio), lib.fmt_seconds(scenario_pair.median),
        lib.fmt_seconds(floor)))
  end
end

-- Payload files: half random bytes, half base64 text, so gzip has both
-- incompressible and compressible input, like binaries next to scripts.
local function make_payload(dir, total, parts)
  assert(fs.mkdir_p(dir, "0700"))
  local files = {}
  local each = total // parts
  for i = 1, parts do
    local path = string.format("%s/part%d.bin", dir, i)
    local cmd = (i % 2 == 1)
      and string.format("head -c %d /dev/urandom > %s", each, path)
      or string.format("head -c %d /dev/urandom | base64 -w 76 | head -c %d > %s", each, each, path)
    assert(os.execute(cmd))
    files[#files + 1] = path
  end
  return files
end

local function concat(a, b)
  local out = {}
  for _, x in ipairs(a) do out[#out + 1] = x end
  for _, x in ipairs(b) do out[#out + 1] = x end
  return out
end

-- Runs `ours` and `theirs` interleaved under /usr/bin/time; records both
-- with their peak RSS and returns them.
local function versus(n, ours_name, ours_argv, theirs_name, theirs_argv, before)
  local ours, ours_rss = lib.with_maxrss(ours_argv, SCRATCH)
  local theirs, theirs_rss = lib.with_maxrss(theirs_argv, SCRATCH)
  local t = lib.run_interleaved(n, { { argv = theirs, before = before }, { argv = ours, before = before } }, 1)
  -- The last run's peak stands for all: every run does the same work.
  local base = record(theirs_name, t[1], { maxrss_kib = theirs_rss() })
  local mine = record(ours_name, t[2], { maxrss_kib = ours_rss() })
  row(base)
  row(mine, base)
  return mine, base
end

-- 5. SHA-256 of large files -----------------------------------------------
local function bench_sha256(baseline_rss)
  io.stderr:write("bench: sha256\n")
  local small = make_payload(SCRATCH .. "/sha-10", 10 * MB, 1)[1]
  local big = make_payload(SCRATCH .. "/sha-100", 100 * MB, 1)[1]
  local s10 = versus(runs(15, 3), "crypto.sha256_file 10 MB (juju process)",
    { JUJU, "lua", ROOT .. "/bench/child.lua", "sha256", small }, "openssl dgst -sha256 10 MB", { "openssl", "dgst", "-sha256", small })
  local s100, b100 = versus(runs(9, 3), "crypto.sha256_file 100 MB (juju process)",
    { JUJU, "lua", ROOT .. "/bench/child.lua", "sha256", big }, "openssl dgst -sha256 100 MB", { "openssl", "dgst", "-sha256", big })
  local ratio = s100.median / b100.median
  aim("sha256_file within 1.1x of openssl dgst -sha256 (100 MB)", ratio <= 1.1, pct(ratio))
  aim("sha256_file memory flat in the size", s100.maxrss_kib - s10.maxrss_kib <= 1024,
    string.format("peak RSS %s at 10 MB, %s at 100 MB (juju version alone: %s)", lib.fmt_kib(s10.maxrss_kib),
      lib.fmt_kib(s100.maxrss_kib), lib.fmt_kib(baseline_rss)))
  fs.remove_tree(SCRATCH .. "/sha-10")
  fs.remove_tree(SCRATCH .. "/sha-100")
end

-- 6. Tools tarball build and upload ---------------------------------------
local function bench_tools(size_mb, n)
  io.stderr:write(string.format("bench: tools tarball and upload, %d MB\n", size_mb))
  local dir = SCRATCH .. "/payload-" .. size_mb
  local files = make_payload(dir, size_mb * MB, 4)
  local out_ours, out_tar = SCRATCH .. "/ours.tgz", SCRATCH .. "/tar.tgz"
  local tb, tt = versus(n, string.format("tools.build_tarball %d MB", size_mb),
    concat({ JUJU, "lua", ROOT .. "/bench/child.lua", "tarball", out_ours }, files),
    string.format("tar czf %d MB", size_mb),
    concat({ "tar", "czf", out_tar, "-C", dir }, (function()
      local names = {}
      for i, f in ipairs(files) do names[i] = f:match("[^/]+$") end
      return names
    end)()),
    function()
      fs.remove(out_ours)
      fs.remove(out_tar)
    end)
  local store, copy = SCRATCH .. "/storage", SCRATCH .. "/copy"
  local pu, cp = versus(n, string.format("storage Dir:put_file %d MB", size_mb),
    concat({ JUJU, "lua", ROOT .. "/bench/child.lua", "put", store }, files),
    -- The system tools with put_file's guarantees: a durable copy (fsync)
    -- and the SHA-256 of what was written.
    string.format("cp + openssl dgst + sync %d MB", size_mb),
    concat({ "sh", "-c", 'd=$1; shift; cp "$@" "$d" && openssl dgst -sha256 "$d"/* > /dev/null && sync "$d"/*', "sh",
      copy }, files),
    function()
      fs.remove_tree(store)
      fs.remove_tree(copy)
      assert(fs.mkdir_p(copy, "0700"))
    end)
  fs.remove_tree(dir)
  fs.remove_tree(store)
  fs.remove_tree(copy)
  fs.remove(out_ours)
  fs.remove(out_tar)
  return { tarball = tb, tar = tt, put = pu, cp = cp }
end

-- Main ---------------------------------------------------------------------
local machine = lib.machine()
local juju_version = bench_cold_start()
local process_steps, warm_bootstrap = bench_bootstrap_processes()
bench_cli_durability(warm_bootstrap)
local step_tables = { process_steps, not STARTUP and bench_scenarios() or nil }
bench_crypto()
if not STARTUP then
  bench_sha256(juju_version.maxrss_kib)
  local t10 = bench_tools(10, runs(11, 3))
  local t200 = bench_tools(200, runs(5, 2))
  for _, pair in ipairs({ { "tarball", "tar", "tools.build_tarball within 1.1x of tar czf" },
    { "put", "cp", "Dir:put_file within 1.1x of cp + openssl dgst + sync" } }) do
    local ratio = t200[pair[1]].median / t200[pair[2]].median
    aim(pair[3] .. " (200 MB)", ratio <= 1.1, string.format("%s at 200 MB, %s at 10 MB", pct(ratio),
      pct(t10[pair[1]].median / t10[pair[2]].median)))
    local grow = t200[pair[1]].maxrss_kib - t10[pair[1]].maxrss_kib
    aim(pair[1] == "tarball" and "build_tarball memory flat in the size" or "put_file memory flat in the size",
      grow <= 1024, string.format("peak RSS %s at 10 MB, %s at 200 MB", lib.fmt_kib(t10[pair[1]].maxrss_kib),
        lib.fmt_kib(t200[pair[1]].maxrss_kib)))
  end
  -- 7./8. Flat maps at 1k..100k keys, and status over 10,000 machines (bench/docs.lua)
  require("docs").run({ scratch = SCRATCH, runs = runs, record = record, row = row, aim = aim })
end
fs.remove_tree(SCRATCH)

local out = io.stdout
out:write(string.format("\nMachine: %s, %s CPUs (nproc), %d MiB RAM, %s; %s%s\n\n", machine.cpu,
  tostring(machine.nproc), machine.mem_total_mib, machine.kernel, machine.date, QUICK and " (--quick)" or ""))
lib.print_table({ "benchmark", "n", "median", "IQR", "min .. max", "compared with", "ratio", "peak RSS", "note" }, rows)
for _, t in ipairs(step_tables) do
  out:write("\n", t.title, "\n\n")
  lib.print_table({ "step", "n", "median", "min .. max", "share of median total" }, t.rows)
end
out:write("\nAims (printed, not asserted)\n\n")
local aim_rows = {}
for _, a in ipairs(aims) do aim_rows[#aim_rows + 1] = { a.aim, a.met and "met" or "MISSED", a.detail } end
lib.print_table({ "aim", "result", "measured" }, aim_rows)

local function clean(list)
  local arr = json.array()
  for i, x in ipairs(list) do arr[i] = x end
  return arr
end
local step_json = json.array()
for _, t in ipairs(step_tables) do
  local rws = json.array()
  for i, r in ipairs(t.rows) do
    rws[i] = { step = r[1], n = tonumber(r[2]), median = r[3], range = r[4], share = r[5] }
  end
  step_json[#step_json + 1] = { title = t.title, steps = rws }
end
local doc = json.ordered({ machine = machine, quick = QUICK, results = clean(results), steps = step_json,
  aims = clean(aims) }, { "machine", "quick", "results", "steps", "aims" })
local results_file = STARTUP and "bench/results-startup.json" or "bench/results.json"
assert(fs.write_atomic(ROOT .. "/" .. results_file, assert(json.encode(doc, { indent = 2 })) .. "\n", "0644"))
out:write("\nwrote ", results_file, "\n")
return 0
