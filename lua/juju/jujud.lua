-- juju.jujud: the machine agent's command line. `jujud version` prints the
-- binary version; a FORCE-VERSION file beside the executable overrides the
-- number, as uploaded tools require (spec 2.6). bootstrap-state and machine
-- come with the state-server work.
local fs = require("juju.fs")
local version = require("juju.version")

local M = {}

--- The agent's version number: FORCE-VERSION beside the executable, else the build's.
function M.version_number()
  local exe = fs.readlink("/proc/self/exe")
  local dir = exe and exe:match("^(.*)/[^/]*$")
  local forced = dir and fs.read_file(dir .. "/FORCE-VERSION")
  if forced then
    local n = version.parse((forced:gsub("%s+$", "")))
    if n then return n end
  end
  return version.current
end

function M.main(argv)
  local cmd = argv[1]
  if cmd == "version" or cmd == "--version" then
    local sys = require("juju.sys")
    local series = version.host_series(sys)
    io.stdout:write(string.format("%s-%s-%s\n", tostring(M.version_number()), series, sys.arch() or "unknown"))
    return 0
  end
  io.stderr:write(string.format("error: unrecognized command: jujud %s\n", tostring(cmd)))
  return 2
end

return M
