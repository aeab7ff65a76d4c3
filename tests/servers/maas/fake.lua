-- servers.maas.fake: starts the MAAS test server (main.go beside this file;
-- README.md) for the maas specs, once per spec file, and talks to its
-- /_test/ endpoints.
--
--   local fake = require("servers.maas.fake")
--   local s = fake.start("127.0.0.100", "maase2e" [, opts])
--   -- opts: nodes (n Ready nodes at start), launcher, terminator (command
--   -- lines, e.g. instance.programs(dir).launcher), env ({NAME=v} added to
--   -- the server's environment, e.g. INSTANCE_ADDRESS_BASE)
--   s.server_url           -- the maas-server value: http://host:port/MAAS
--   s:state(), s:leftovers(), s:calls(), s:clear_calls()
--   s:faults(t), s:clear_faults(), s:add_nodes(n [, {arch=, cpus=, mem=, zone=, tags=}])
--   s:config{deploy_polls=, fail_deploy=}, s:settle([timeout]), s:user_data(system_id)
--   s:stop()               -- SIGTERM: the server runs the terminator of every host left
local http = require("juju.http")
local control = require("servers.control")

local M = {}

-- Test credentials (not real; the specs check the secret part never
-- reaches a message, a log, user-data or storage).
M.OAUTH = "maasConsumerKey:maasTokenKey:maasTokenSecret-Sup3rS3cret"
M.SECRET = "maasTokenSecret-Sup3rS3cret"

local Fake = control.methods({}, { empty_body = true })
Fake.__index = Fake
local call = control.call

local function query(t)
  local q = {}
  for k, v in pairs(t or {}) do q[#q + 1] = k .. "=" .. http.url_escape(tostring(v)) end
  table.sort(q)
  return table.concat(q, "&")
end

function Fake:config(t) return call(self, "POST", "/_test/config?" .. query(t)) end

function Fake:add_nodes(n, o)
  local q = { count = n }
  for k, v in pairs(o or {}) do q[k] = v end
  return call(self, "POST", "/_test/nodes?" .. query(q)).ids
end

--- Builds and starts the server on host; raises (failing the spec) when it
--- cannot be built or started. tag names this spec's copy of the binary
--- (specs run in parallel; one must not rewrite the file another runs).
function M.start(host, tag, opts)
  opts = opts or {}
  local s = control.start { src = "maas", bin = "maas", tag = tag, name = "maas", host = host,
    flags = { { "nodes", opts.nodes }, { "launcher", opts.launcher }, { "terminator", opts.terminator } },
    env = { MAAS_TEST_OAUTH = M.OAUTH }, extra_env = opts.env }
  return setmetatable({ server = s, url = s.url, server_url = s.url .. "/MAAS" }, Fake)
end

return M
