-- juju.series: which series this client can make agent tools for, and the
-- init system of a series (as Juju 1.25's `service` package chose). Checked
-- before anything is launched: tools built here carry this machine's
-- libraries (agenttools.build), so they run on this machine's series only,
-- and the phase-1/phase-2 scripts are rendered for systemd only.
local version = require("juju.version")

local M = {}

-- Ubuntu before vivid booted with upstart (Juju 1.25 service.VersionInitSystem).
local UPSTART = { precise = true, quantal = true, raring = true, saucy = true, trusty = true, utopic = true }

--- The init system of a series: "systemd", "upstart", "windows" or nil for
--- an unknown series.
function M.init_system(series)
  if UPSTART[series] then return "upstart" end
  local os_name = version.series_os(series)
  if os_name == "windows" then return "windows" end
  if os_name then return "systemd" end
  return nil
end

--- Whether machine 0 may run `series` (nil, message if not). host_series is
--- this client's series; built = true when the tools are to be built here
--- (no prepackaged tools of that series were found).
function M.check(series, host_series, built)
  local init = M.init_system(series)
  if not init then
    return nil, string.format("unknown series %q: set default-series to a known series (this client is %s)",
      tostring(series), host_series)
  end
  if init ~= "systemd" then
    return nil, string.format("series %q boots with %s; this engine renders machine 0's services for systemd only"
      .. " (set default-series: %s, or use a %s host)", series, init, host_series, host_series)
  end
  if built and series ~= host_series then
    return nil, string.format("cannot bootstrap a %q machine with tools built on this %q client: tools built here"
      .. " carry this machine's libraries and run on %q only (set default-series: %s, bootstrap from a %s client,"
      .. " or point agent-metadata-url at prepackaged %s tools)", series, host_series, host_series,
      host_series, series, series)
  end
  return true
end

return M
