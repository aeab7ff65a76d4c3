-- bench/storage.lua [--quick] [backend ...]: every environ storage backend
-- against its loopback emulator: put_file and get_to_file of one object,
-- each in a process of its own (bench/storage_child.lua: process start and
-- module loading are counted, as a user's juju pays them) under
-- /usr/bin/time (peak memory), interleaved with the floor measured in the
-- same run: curl moving the same object with the same credentials
-- (bench/storage_backends.lua says how). S3 has its own, older table
-- (bench/storage_s3.lua). Run under the juju of the tree to measure:
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
if #wanted == 0 then wanted = { "dir", "azure", "swift", "manta", "maas" } end
local N = QUICK and 2 or 5
local MIB = 1024 * 1024
local SIZE = QUICK and 8 or 64

local ROOT = fs.realpath(ROOT_GUESS)
local JUJU = fs.realpath("/proc/self/exe")
local SCRATCH = assert(fs.mkdtemp("/tmp/juju-bench-storage-"))
-- The Go fakes build into the bench tree; the servers' own files into SCRATCH.
sys.setenv("JUJU_TEST_SOURCE_DIR", ROOT)
sys.setenv("JUJU_TEST_BUILD_DIR", os.getenv("BENCH_BUILD_DIR") or (ROOT .. "/build-bench"))

local ok, err = pcall(function()
  local src = SCRATCH .. "/src"
  local chunk = crypto.random_bytes(MIB)
  local f = assert(io.open(src, "wb"))
  for _ = 1, SIZE do f:write(chunk) end
  f:close()
  local want = crypto.sha256_file(src)
  local dst = SCRATCH .. "/dst"
  local results, rows = { machine = lib.machine(), size_mib = SIZE, rows = {} }, {}
  for _, b in ipairs(wanted) do
    local be = backends.backends[b]
    if not be then
      io.stderr:write("bench/storage: no backend ", b, " here (yet); skipped\n")
    else
      local opts = be.start(SCRATCH)
      local st = assert(backends.open(b, opts))
      local name = string.format("tools/juju-%dm.tgz", SIZE)
      -- The container exists and the object too before timing (the
      -- download floors of Manta and MAAS fetch its url()).
      assert(st:put_file(name, src))
      local env = { PATH = os.getenv("PATH"), LUA_PATH = os.getenv("LUA_PATH"),
        BENCH_STORE = assert(json.encode({ backend = b, opts = opts })) }
      local child = ROOT .. "/bench/storage_child.lua"
      local put_for, get_for = be.curl(opts, SCRATCH .. "/curl-" .. b, name, st)
      local put_argv, put_rss = lib.with_maxrss({ JUJU, "lua", child, "put", name, src }, SCRATCH)
      local get_argv, get_rss = lib.with_maxrss({ JUJU, "lua", child, "get", name, dst }, SCRATCH)
      local cput_argv, cput_rss = lib.with_maxrss(put_for(src), SCRATCH)
      local cget_argv, cget_rss = lib.with_maxrss(get_for(dst), SCRATCH)
      local rss, times = { {}, {}, {}, {} }, { {}, {}, {}, {} }
      local cmds = { { put_argv, put_rss }, { cput_argv, cput_rss }, { get_argv, get_rss }, { cget_argv, cget_rss } }
      for round = 0, N do
        for i, c in ipairs(cmds) do
          if i >= 3 then fs.remove(dst) end
          local dt = lib.run(c[1], { env = env, timeout = 600 })
          rss[i][#rss[i] + 1] = c[2]()
          if i >= 3 then assert(crypto.sha256_file(dst) == want, b .. ": downloaded bytes differ") end
          if round > 0 then times[i][#times[i] + 1] = dt end
        end
      end
      local labels = {
        string.format("%s put_file %d MiB", be.label, SIZE), string.format("  %s upload, the floor", be.floor),
        string.format("%s get_to_file %d MiB", be.label, SIZE), string.format("  %s download, the floor", be.floor),
      }
      for i = 1, 4 do
        local s = lib.summary(times[i])
        s.name, s.backend = labels[i], b
        s.peak_rss_kib = math.max(table.unpack(rss[i]))
        s.mib_per_s = SIZE / s.median
        results.rows[#results.rows + 1] = s
        local floor = (i % 2 == 1) and lib.summary(times[i + 1]).median or nil
        rows[#rows + 1] = { labels[i], tostring(s.n), lib.fmt_seconds(s.median),
          string.format("%s .. %s", lib.fmt_seconds(s.min), lib.fmt_seconds(s.max)),
          string.format("%.0f MiB/s", s.mib_per_s), floor and string.format("%.2f", s.median / floor) or "",
          lib.fmt_kib(s.peak_rss_kib) }
      end
      st:remove_all()
      st:close()
      server.stop_all()
    end
  end
  lib.print_table({ "benchmark", "n", "median", "min .. max", "throughput", "ratio to floor", "peak RSS" }, rows)
  assert(fs.write_atomic(ROOT .. "/bench/storage-results.json", assert(json.encode(results, { indent = 2 })) .. "\n",
    "0644"))
end)
server.stop_all()
fs.remove_tree(SCRATCH)
if not ok then error(err, 0) end
return 0
