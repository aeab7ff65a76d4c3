-- bench/manual_child.lua: one SFTP upload with juju.ssh in a process of its
-- own, so its peak memory (VmHWM) belongs to the upload alone. Run by
-- bench/manual.lua as
--   juju lua bench/manual_child.lua upload HOST PORT KEY HOSTKEY_LINE SRC REMOTE
local ssh = require("juju.ssh")

local mode, host, port, key, host_key, src, remote = table.unpack(arg, 1, 7)
if mode ~= "upload" then error("usage: manual_child.lua upload HOST PORT KEY HOSTKEY SRC REMOTE") end
local s <close> = assert(ssh.connect { host = host, port = tonumber(port), user = "root", private_key_file = key,
  host_key = host_key })
assert(s:upload(src, remote, { mode = "0600" }))
return 0
