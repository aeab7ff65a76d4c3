-- The emulators' --terminator: `juju lua tests/servers/instance/terminate.lua STATE_DIR`
-- with INSTANCE_ID in the environment (INSTANCE_ADDRESS is not needed).
-- Stops the host's holder, kills what is left in the host's namespace,
-- removes its files; exits 0 (also when the host is already gone), else 1.
local instance = require("juju.testing.instance")
local state_dir = arg[1] or os.getenv("INSTANCE_STATE_DIR")
if not state_dir or state_dir == "" then
  io.stderr:write("terminate.lua: usage: terminate.lua STATE_DIR (or INSTANCE_STATE_DIR)\n")
  os.exit(2)
end
local ok, err = instance.terminate(state_dir, os.getenv("INSTANCE_ID"))
if not ok then
  io.stderr:write("terminate.lua: ", tostring(err), "\n")
  os.exit(1)
end
os.exit(0)
