-- juju.agent.version: the machine agent's version, shared by `jujud
-- version` and the machine agent's heartbeat (so neither requires the
-- other).
local fs = require("juju.fs")
local sys = require("juju.sys")
local version = require("juju.version")

local M = {}

--- The agent's version number: FORCE-VERSION beside the executable (or in
--- the tools' top directory, the parent of their bin/), else the build's.
function M.number()
  local exe = fs.readlink("/proc/self/exe")
  local dir = exe and exe:match("^(.*)/[^/]*$")
  local forced = dir and (fs.read_file(dir .. "/FORCE-VERSION")
    or (dir:match("/bin$") and fs.read_file(dir:gsub("/bin$", "") .. "/FORCE-VERSION")))
  if forced then
    local n = version.parse((forced:gsub("%s+$", "")))
    if n then return n end
  end
  return version.current
end

--- "<number>-<series>-<arch>" of this host.
function M.binary()
  local series = version.host_series(sys)
  return string.format("%s-%s-%s", tostring(M.number()), series, sys.arch() or "unknown")
end

return M
