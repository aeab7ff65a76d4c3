-- bench/storage_s3.lua [--quick]: the S3 environ storage
-- (juju.cloud.storage.s3) against npm s3rver on loopback: put_file and
-- get_to_file of one object, each in a process of its own under
-- /usr/bin/time (peak memory), next to the floor measured in the same run:
-- curl 7.88's own SigV4 (--aws-sigv4) uploading and downloading the same
-- object. The two sides are interleaved. Run under the juju of the tree to
-- measure (Release: bench/run.sh's build-bench):
--   build-bench/bin/juju lua bench/storage_s3.lua
-- Prints a Markdown table and writes bench/storage-s3-results.json.
local here = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = here .. "/?.lua;" .. package.path

local lib = require("lib")
local fs = require("juju.fs")
local sys = require("juju.sys")
local json = require("juju.json")
local crypto = require("juju.crypto")
local server = require("juju.testing.server")

local QUICK = arg[1] == "--quick"
local N = QUICK and 2 or 5
local MIB = 1024 * 1024
local SIZES = QUICK and { 16 } or { 16, 128 }
local ACCESS, SECRET, REGION = "S3RVER", "S3RVER", "us-east-1" -- s3rver's fixed test credentials

local ROOT = fs.realpath(here .. "/..")
local JUJU = fs.realpath("/proc/self/exe")
local SCRATCH = assert(fs.mkdtemp("/tmp/juju-bench-s3-"))
local npm = assert(sys.run({ "npm", "root", "-g" }))
local NODE_PATH = npm.stdout:gsub("%s+$", "")

local s3rver = assert(server.start {
  name = "s3rver", host = "127.0.0.5",
  argv = { "node", NODE_PATH .. "/s3rver/bin/s3rver.js", "--address", "{host}", "--port", "{port}",
           "--directory", "{dir}", "--silent" },
  env = { NODE_PATH = NODE_PATH },
})

local ok, err = pcall(function()
  local s3 = require("juju.cloud.storage.s3")
  local st = assert(s3.new{ endpoint = s3rver.url, region = REGION, bucket = "bench", access_key = ACCESS,
    secret_key = SECRET })
  -- curl reads the credentials from a config file, not its command line.
  local curlrc = SCRATCH .. "/curlrc"
  -- curl 7.88 neither hashes the payload nor sends x-amz-content-sha256
  -- itself: it signs UNSIGNED-PAYLOAD (juju hashes the file first).
  local rc = 'user = "%s:%s"\naws-sigv4 = "aws:amz:%s:s3"\n' ..
    'header = "x-amz-content-sha256: UNSIGNED-PAYLOAD"\nsilent\nshow-error\nfail\n'
  assert(fs.write_atomic(curlrc, string.format(rc, ACCESS, SECRET, REGION), "0600"))
  local child_env = { PATH = os.getenv("PATH"), S3_ENDPOINT = s3rver.url, S3_SECRET = SECRET,
    LUA_PATH = os.getenv("LUA_PATH") }

  local results, rows = { machine = lib.machine(), rows = {} }, {}
  for _, mib in ipairs(SIZES) do
    local src = SCRATCH .. "/src"
    local chunk = crypto.random_bytes(MIB)
    local f = assert(io.open(src, "wb"))
    for _ = 1, mib do f:write(chunk) end
    f:close()
    local want = crypto.sha256_file(src)
    local name = string.format("tools/juju-%dm.tgz", mib)
    local url = s3rver.url .. "/bench/" .. name
    local dst = SCRATCH .. "/dst"
    local put_argv, put_rss = lib.with_maxrss({ JUJU, "lua", ROOT .. "/bench/storage_s3_child.lua", "put", name, src },
      SCRATCH)
    local get_argv, get_rss = lib.with_maxrss({ JUJU, "lua", ROOT .. "/bench/storage_s3_child.lua", "get", name, dst },
      SCRATCH)
    local cput_argv, cput_rss = lib.with_maxrss({ "curl", "-K", curlrc, "-T", src, url .. "-curl" }, SCRATCH)
    local cget_argv, cget_rss = lib.with_maxrss({ "curl", "-K", curlrc, "-o", dst, url .. "-curl" }, SCRATCH)
    local rss = { {}, {}, {}, {} }
    local function after(i, fn) return function() rss[i][#rss[i] + 1] = fn() end end
    local times = { {}, {}, {}, {} }
    local cmds = {
      { argv = put_argv, rss = after(1, put_rss) }, { argv = cput_argv, rss = after(2, cput_rss) },
      { argv = get_argv, rss = after(3, get_rss) }, { argv = cget_argv, rss = after(4, cget_rss) },
    }
    for round = 0, N do
      for i, c in ipairs(cmds) do
        if i == 3 or i == 4 then fs.remove(dst) end
        local dt = lib.run(c.argv, { env = child_env, timeout = 600 })
        c.rss()
        if i == 3 or i == 4 then assert(crypto.sha256_file(dst) == want, "downloaded bytes differ") end
        if round > 0 then times[i][#times[i] + 1] = dt end
      end
    end
    local labels = {
      string.format("s3 put_file %d MiB (juju.cloud.storage.s3, own process)", mib),
      string.format("curl -T %d MiB (--aws-sigv4), the floor", mib),
      string.format("s3 get_to_file %d MiB (own process)", mib),
      string.format("curl -o %d MiB (--aws-sigv4), the floor", mib),
    }
    for i = 1, 4 do
      local s = lib.summary(times[i])
      s.name = labels[i]
      s.peak_rss_kib = math.max(table.unpack(rss[i]))
      s.mib_per_s = mib / s.median
      results.rows[#results.rows + 1] = s
      local floor = (i % 2 == 1) and lib.summary(times[i + 1]).median or nil
      rows[#rows + 1] = { labels[i], tostring(s.n), lib.fmt_seconds(s.median),
        string.format("%s .. %s", lib.fmt_seconds(s.min), lib.fmt_seconds(s.max)),
        string.format("%.0f MiB/s", s.mib_per_s),
        floor and string.format("%.2f", s.median / floor) or "",
        lib.fmt_kib(s.peak_rss_kib) }
    end
    st:remove(name)
    st:remove(name .. "-curl")
  end
  st:remove_all()
  lib.print_table({ "benchmark", "n", "median", "min .. max", "throughput", "ratio to curl", "peak RSS" }, rows)
  assert(fs.write_atomic(ROOT .. "/bench/storage-s3-results.json", assert(json.encode(results, { indent = 2 })) .. "\n",
    "0644"))
end)
server.stop_all()
fs.remove_tree(SCRATCH)
if not ok then error(err, 0) end
return 0
