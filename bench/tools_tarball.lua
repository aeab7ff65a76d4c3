-- bench/tools_tarball.lua [--quick]: the agent tools tarball that carries
-- its shared libraries (juju.agenttools.build): its size, how many
-- libraries it carries and how long a cold build (no cache) takes at gzip
-- levels 1 (the default) and 6, next to Juju 1.25's ~20 MB jujud tarball.
-- Run under the juju of the tree to measure (Release: bench/run.sh's
-- build-bench; the sanitizer build carries libasan and libubsan too):
--   build-bench/bin/juju lua bench/tools_tarball.lua
-- Prints a Markdown table and writes bench/tools-tarball-results.json.
local here = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = here .. "/?.lua;" .. package.path

local lib = require("lib")
local fs = require("juju.fs")

local json = require("juju.json")
local tools = require("juju.tools")
local agenttools = require("juju.agenttools")
local version = require("juju.version")
local site = require("juju_site")

local QUICK = arg[1] == "--quick"
local N = QUICK and 2 or 7

local host = agenttools.host()
local n = version.with_build(version.current, version.current.build + 1)
local record = { version = tostring(n), series = host.series, arch = host.arch,
  binary = string.format("%s-%s-%s", tostring(n), host.series, host.arch) }
local b = { provider = { name = "manual", path = site.providers_dir .. "/manual.lua" }, params = {} }

local rows, results = {}, { machine = lib.machine and lib.machine() or nil, rows = {} }
for _, level in ipairs({ 1, 6 }) do
  b.params.gzip_level = level
  local built, count, raw
  local times = lib.time_fn(N, function()
    agenttools.forget_built()
    local dir = assert(fs.mkdtemp("/tmp/juju-bench-tools-"))
    built = assert(agenttools.build(b, record, dir))
    local members = assert(tools.list_tarball(built.path))
    count, raw = 0, 0
    for _, m in ipairs(members) do
      raw = raw + (m.size or 0)
      if m.name:match("^lib/[^/]+$") then count = count + 1 end
    end
    fs.remove_tree(dir)
  end)
  local s = lib.summary(times)
  local row = { level = level, size = built.size, unpacked = raw, libraries = count,
    median_s = s.median, min_s = s.min, max_s = s.max, n = s.n }
  results.rows[#results.rows + 1] = row
  rows[#rows + 1] = string.format("| agent tools tarball, gzip %d | %d | %.1f MB | %.1f MB | %d | %.2f s (%.2f .. %.2f) |",
    level, s.n, built.size / 1e6, raw / 1e6, count, s.median, s.min, s.max)
end
rows[#rows + 1] = "| Juju 1.25 jujud tarball (static Go binary, for comparison) | | ~20 MB | | 0 | |"

print("| tarball | n | size | unpacked | libraries carried | cold build, median (min .. max) |")
print("| --- | --- | --- | --- | --- | --- |")
for _, r in ipairs(rows) do print(r) end
results.date = os.date("!%Y-%m-%d %H:%M UTC")
results.jujud = site.bin_dir .. "/jujud"
assert(fs.write_atomic(here .. "/tools-tarball-results.json", json.encode(results) .. "\n", "0644"))

