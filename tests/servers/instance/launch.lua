-- The emulators' --launcher: `juju lua tests/servers/instance/launch.lua STATE_DIR`
-- with INSTANCE_ID, USER_DATA_FILE, INSTANCE_INDEX in the environment
-- (INSTANCE_ADDRESS_BASE, default 20: the host is 127.0.0.<base+index>;
-- INSTANCE_SSH_PORT, default 22). Launches the host in a detached holder
-- (juju.testing.instance), prints its address as the first stdout line once
-- the user-data is applied, and exits 0; on failure, exits 1 with the reason
-- on stderr. See README.md.
local instance = require("juju.testing.instance")
local state_dir = arg[1] or os.getenv("INSTANCE_STATE_DIR")
if not state_dir or state_dir == "" then
  io.stderr:write("launch.lua: usage: launch.lua STATE_DIR (or INSTANCE_STATE_DIR)\n")
  os.exit(2)
end
local address, why = instance.start_holder(state_dir, os.getenv("INSTANCE_ID"))
if not address then
  io.stderr:write("launch.lua: ", tostring(why), "\n")
  os.exit(1)
end
io.stdout:write(address, "\n")
io.stdout:flush()
os.exit(0)
