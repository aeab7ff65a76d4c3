-- bench/storage.lua [--quick] [backend ...]: every environ storage backend
-- against its loopback emulator: put_file and get_to_file of one object,
-- each in a process of its own (bench/storage_child.lua: process start and
-- module loading are counted, as a user's juju pays them) under
-- /usr/bin/time (peak memory), interleaved with the floor measured in the
-- same run: curl moving the same object with the same credentials
-- (bench/storage_backends.lua says how), at two sizes so that the peak
-- memory shows whether it grows with the object. Run under the juju of the
-- tree to measure:
--   BENCH_BUILD_DIR=$PWD/build-bench build-bench/bin/juju lua bench/storage.lua
-- Prints a Markdown table and writes bench/storage-results.json.
local here = arg[0]:match("^(.*)/[^/]*$") or "."
local ROOT_GUESS = here .. "/.."
package.path = here .. "/?.lua;" .. ROOT_GUESS .. "/tests/?.lua;" .. package.path

local lib = require("lib")
local fs = require("juju.fs")
local sys = require("juju.sys")
local json = require("juju.json")
local crypto = require("juju.crypto")
local server = require("juju.testing.server")
local backends = require("storage_backends")

local QUICK, wanted = false, {}
for _, a in ipairs(arg) do
  if a == "--quick" then QUICK = true else wanted[#wanted + 1] = a end
end
if #wanted == 0 then wanted = { "dir", "s3", "azure", "swift", "manta", "maas" } end
local N = QUICK and 2 or 5
local MIB = 1024 * 1024
local SIZES = QUICK and { 8 } or { 16, 64 }

local ROOT = fs.realpath(ROOT_GUESS)
local JUJU = fs.realpath("/proc/self/exe")
local SCRATCH = assert(fs.mkdtemp("/tmp/juju-bench-storage-"))
-- The Go fakes build into the bench tree; the servers' own files into SCRATCH.
sys.setenv("JUJU_TEST_SOURCE_DIR", ROOT)
sys.setenv("JUJU_TEST_BUILD_DIR", os.getenv("BENCH_BUILD_DIR") or (ROOT .. "/build-bench"))

-- One backend at one size: put_file, its floor, get_to_file, its floor,
-- interleaved, N rounds after a warm-up. Appends to rows and results.
local function measure(b, be, opts, st, size, src, want, rows, results)
  local name = string.format("tools/juju-%dm.tgz", size)
  local dst = SCRATCH .. "/dst"
  -- The container exists and the object too before timing (the download
  -- floors of Manta and MAAS fetch its url()).
  assert(st:put_file(name, src))
  local env = { PATH = os.getenv("PATH"), LUA_PATH = os.getenv("LUA_PATH"),
    BENCH_STORE = assert(json.encode({ backend = b, opts = opts })) }
  local child = ROOT .. "/bench/storage_child.lua"
  local put_for, get_for = be.curl(opts, SCRATCH .. "/curl-" .. b .. "-" .. size, name, st)
  local cmds = {}
  for i, argv in ipairs({ { JUJU, "lua", child, "put", name, src }, put_for(src),
                          { JUJU, "lua", child, "get", name, dst }, get_for(dst) }) do
    local wrapped, rss = lib.with_maxrss(argv, SCRATCH)
    cmds[i] = { argv = wrapped, rss = rss, times = {}, peaks = {}, download = i >= 3 }
  end
  for round = 0, N do
    for _, c in ipairs(cmds) do
      if c.download then fs.remove(dst) end
      local dt = lib.run(c.argv, { env = env, timeout = 600 })
      c.peaks[#c.peaks + 1] = c.rss()
      if c.download then assert(crypto.sha256_file(dst) == want, b .. ": downloaded bytes differ") end
      if round > 0 then c.times[#c.times + 1] = dt end
    end
  end
  local labels = {
    string.format("%s put_file %d MiB", be.label, size), string.format("  %s upload, the floor", be.floor),
    string.format("%s get_to_file %d MiB", be.label, size), string.format("  %s download, the floor", be.floor),
  }
  for i, c in ipairs(cmds) do
    local s = lib.summary(c.times)
    s.name, s.backend, s.size_mib = labels[i], b, size
    s.peak_rss_kib = math.max(table.unpack(c.peaks))
    s.mib_per_s = size / s.median
    results.rows[#results.rows + 1] = s
    local floor = (i % 2 == 1) and lib.summary(cmds[i + 1].times).median or nil
    rows[#rows + 1] = { labels[i], tostring(s.n), lib.fmt_seconds(s.median),
      string.format("%s .. %s", lib.fmt_seconds(s.min), lib.fmt_seconds(s.max)),
      string.format("%.0f MiB/s", s.mib_per_s), floor and string.format("%.2f", s.median / floor) or "",
      lib.fmt_kib(s.peak_rss_kib) }
  end
end

local ok, err = pcall(function()
  local chunk = crypto.random_bytes(MIB)
  local srcs, wants = {}, {}
  for _, size in ipairs(SIZES) do
    srcs[size] = SCRATCH .. "/src-" .. size
    local f = assert(io.open(srcs[size], "wb"))
    for _ = 1, size do f:write(chunk) end
    f:close()
    wants[size] = crypto.sha256_file(srcs[size])
  end
  local results, rows = { machine = lib.machine(), sizes_mib = SIZES, rows = {} }, {}
  for _, b in ipairs(wanted) do
    local be = assert(backends.backends[b], "bench/storage: no backend " .. b)
    local opts = be.start(SCRATCH)
    local st = assert(backends.open(b, opts))
    for _, size in ipairs(SIZES) do measure(b, be, opts, st, size, srcs[size], wants[size], rows, results) end
    st:remove_all()
    st:close()
    server.stop_all()
  end
  lib.print_table({ "benchmark", "n", "median", "min .. max", "throughput", "ratio to floor", "peak RSS" }, rows)
  assert(fs.write_atomic(ROOT .. "/bench/storage-results.json", assert(json.encode(results, { indent = 2 })) .. "\n",
    "0644"))
end)
server.stop_all()
fs.remove_tree(SCRATCH)
if not ok then error(err, 0) end
return 0
