-- bench/lib.lua: helpers for the benchmarks: robust statistics, timing of
-- functions and child processes, peak memory, the machine description, and
-- the table printer. Loaded by bench/run.lua under `juju lua`.
local sys = require("juju.sys")
local fs = require("juju.fs")

local M = {}

--- Summary of a sample: n, median, q1, q3 (IQR ends), min, max.
function M.summary(xs)
  local s = {}
  for i, x in ipairs(xs) do s[i] = x end
  table.sort(s)
  local n = #s
  assert(n > 0, "empty sample")
  -- Linear interpolation between order statistics (type 7, as R and numpy).
  local function q(p)
    local h = (n - 1) * p + 1
    local lo = math.floor(h)
    local hi = math.min(lo + 1, n)
    return s[lo] + (h - lo) * (s[hi] - s[lo])
  end
  return { n = n, median = q(0.5), q1 = q(0.25), q3 = q(0.75), min = s[1], max = s[n] }
end

--- Times fn() n times after `warmup` untimed calls; returns the seconds.
function M.time_fn(n, fn, warmup)
  for _ = 1, warmup or 1 do fn() end
  local out = {}
  for i = 1, n do
    local t0 = sys.monotonic()
    fn()
    out[i] = sys.monotonic() - t0
  end
  return out
end

--- Runs argv once; returns seconds, result. Raises when it fails, so a
--- broken command never turns into a fast one.
function M.run(argv, opts)
  local t0 = sys.monotonic()
  local r, err = sys.run(argv, opts)
  local dt = sys.monotonic() - t0
  if not r then error(string.format("cannot run %s: %s", argv[1], tostring(err)), 2) end
  if r.code ~= 0 then
    error(string.format("%s exited %s: %s", table.concat(argv, " "), tostring(r.code or r.signal),
      (r.stderr or ""):sub(1, 2000)), 2)
  end
  return dt, r
end

--- Runs each of several commands n times, interleaved (a, b, a, b, ...) so
--- drift in the machine hits all of them alike. cmds: array of
--- {argv=, opts=, before=function() end}; returns an array of time arrays.
function M.run_interleaved(n, cmds, warmup)
  local times = {}
  for i = 1, #cmds do times[i] = {} end
  for round = 1, (warmup or 1) + n do
    for i, c in ipairs(cmds) do
      if c.before then c.before() end
      local dt = M.run(c.argv, c.opts)
      if round > (warmup or 1) then times[i][#times[i] + 1] = dt end
    end
  end
  return times
end

--- argv run under /usr/bin/time: returns the argv and a function giving the
--- peak resident set (KiB) of the last run.
local maxrss_files = 0
function M.with_maxrss(argv, scratch)
  maxrss_files = maxrss_files + 1
  local out = string.format("%s/maxrss-%d", scratch, maxrss_files)
  local wrapped = { "/usr/bin/time", "-f", "%M", "-o", out }
  for _, a in ipairs(argv) do wrapped[#wrapped + 1] = a end
  return wrapped, function()
    local text = assert(fs.read_file(out))
    return assert(tonumber(text:match("(%d+)%s*$")), "no maxrss in " .. text)
  end
end

--- A field of /proc/<pid>/status in KiB (VmRSS, VmHWM), or nil.
function M.proc_status_kib(field, pid)
  local text = fs.read_file("/proc/" .. (pid or "self") .. "/status")
  return text and tonumber(text:match(field .. ":%s*(%d+)"))
end

--- The machine the numbers come from.
function M.machine()
  local cpu = fs.read_file("/proc/cpuinfo") or ""
  local mem = fs.read_file("/proc/meminfo") or ""
  local u = sys.uname()
  local r = sys.run({ "nproc" })
  return {
    nproc = r and tonumber(r.stdout) or nil,
    cpu = cpu:match("model name%s*:%s*([^\n]+)") or "unknown",
    cpu_mhz = tonumber(cpu:match("cpu MHz%s*:%s*([%d.]+)")),
    mem_total_mib = math.floor((tonumber(mem:match("MemTotal:%s*(%d+)")) or 0) / 1024),
    kernel = u.sysname .. " " .. u.release .. " " .. u.machine,
    date = os.date("!%Y-%m-%d %H:%M UTC"),
  }
end

--- Human units: seconds to "12.3 ms", bytes to "4.0 MiB".
function M.fmt_seconds(s)
  if s >= 1 then return string.format("%.2f s", s) end
  if s >= 1e-3 then return string.format("%.1f ms", s * 1e3) end
  return string.format("%.0f us", s * 1e6)
end

function M.fmt_kib(k)
  if k >= 1024 * 1024 then return string.format("%.1f GiB", k / 1024 / 1024) end
  if k >= 1024 then return string.format("%.1f MiB", k / 1024) end
  return string.format("%d KiB", k)
end

--- Prints rows (arrays of strings) as a Markdown table.
function M.print_table(header, rows, out)
  out = out or io.stdout
  local widths = {}
  for i, h in ipairs(header) do widths[i] = #h end
  for _, row in ipairs(rows) do
    for i, c in ipairs(row) do widths[i] = math.max(widths[i] or 0, #c) end
  end
  local function line(cells)
    local parts = {}
    for i = 1, #header do parts[i] = cells[i] .. string.rep(" ", widths[i] - #cells[i]) end
    out:write("| ", table.concat(parts, " | "), " |\n")
  end
  line(header)
  local dashes = {}
  for i = 1, #header do dashes[i] = string.rep("-", widths[i]) end
  line(dashes)
  for _, row in ipairs(rows) do line(row) end
end

return M
