-- bench/child.lua: one operation in a process of its own, so its peak
-- memory (VmHWM) belongs to that operation alone. Run by bench/run.lua as
--   juju lua bench/child.lua tarball OUT SRC...     tools.build_tarball
--   juju lua bench/child.lua put DIR SRC...          storage Dir:put_file
--   juju lua bench/child.lua sha256 PATH             crypto.sha256_file
local tools = require("juju.tools")
local storage = require("juju.storage")
local crypto = require("juju.crypto")

local mode = arg[1]
if mode == "tarball" then
  local entries = {}
  for i = 3, #arg do
    entries[#entries + 1] = { src = arg[i], name = arg[i]:match("[^/]+$") }
  end
  assert(tools.build_tarball(arg[2], entries))
elseif mode == "put" then
  local dir <close> = assert(storage.open_dir(arg[2]))
  for i = 3, #arg do assert(dir:put_file(arg[i]:match("[^/]+$"), arg[i])) end
elseif mode == "sha256" then
  io.stdout:write(assert(crypto.sha256_file(arg[2])), "\n")
else
  error("usage: child.lua tarball|put|sha256 ...")
end
return 0
