-- juju version: prints the client's binary version NUMBER-SERIES-ARCH.
local sys = require("juju.sys")
local version = require("juju.version")

local M = { name = "version", purpose = "print the current version", args = "" }

--- The client's binary version (e.g. 1.26.0-bookworm-amd64).
function M.client_binary()
  local series = version.host_series(sys)
  local arch = sys.arch() or "unknown"
  return string.format("%s-%s-%s", tostring(version.current), series, arch)
end

function M.run(_, ctx)
  ctx:printf("%s", M.client_binary())
  return true
end

return M
