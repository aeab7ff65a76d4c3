-- servers/azure-blob/azurite.lua: starts npm azurite 3.35.0's blob service
-- (installed by scripts/install-deps.sh) on loopback for the Azure specs,
-- once per spec file. It checks SharedKey and SAS signatures (tampered,
-- wrong-key and anonymous requests get 403). Telemetry is off (nothing
-- leaves the machine) and it writes only into the server's private dir.
--
--   local azurite = require("servers.azure-blob.azurite")
--   local az = azurite.start()   -- raises with the log when it cannot start
--   -- az.server (juju.testing.server), az.endpoint, az.account, az.key (base64)
local server = require("juju.testing.server")

local M = {}

-- The emulator's well-known development account (Microsoft publishes it;
-- azurite's default when AZURITE_ACCOUNTS is unset). Not a secret.
M.ACCOUNT = "devstoreaccount1"
M.KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

--- opts: host (default 127.0.0.1), debug (true: the emulator logs every
--- string-to-sign to {dir}/debug.log), key (the account's key, base64,
--- through AZURITE_ACCOUNTS in the environment; default M.KEY).
function M.start(opts)
  opts = opts or {}
  local argv = { "azurite-blob", "--blobHost", "{host}", "--blobPort", "{port}",
    "--location", "{dir}/data", "--disableTelemetry", "--disableProductStyleUrl" }
  if opts.debug then
    argv[#argv + 1] = "--debug"
    argv[#argv + 1] = "{dir}/debug.log"
  end
  local env = opts.key and { AZURITE_ACCOUNTS = M.ACCOUNT .. ":" .. opts.key } or nil
  local s = assert(server.start { name = "azurite", argv = argv, host = opts.host or "127.0.0.1", env = env })
  return { server = s, account = M.ACCOUNT, key = opts.key or M.KEY,
    endpoint = s.url .. "/" .. M.ACCOUNT, debug_log = s.dir .. "/debug.log" }
end

return M
