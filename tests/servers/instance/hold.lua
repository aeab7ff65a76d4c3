-- The holder daemon of one launched host (started by launch.lua, never by
-- hand): `juju lua hold.lua STATE_DIR ID`. See juju.testing.instance.
local instance = require("juju.testing.instance")
os.exit(instance.hold(arg[1], arg[2]))
