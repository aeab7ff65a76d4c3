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
local server = require("juju.testing.server")
local http = require("juju.http")
local json = require("juju.json")

local M = {}

-- Test credentials (not real; the specs check the secret part never
-- reaches a message, a log, user-data or storage).
M.OAUTH = "maasConsumerKey:maasTokenKey:maasTokenSecret-Sup3rS3cret"
M.SECRET = "maasTokenSecret-Sup3rS3cret"

local Fake = {}
Fake.__index = Fake

local function call(self, method, path, body, timeout)
  local r, msg, _, resp = http.request { url = self.url .. path, method = method, retries = 0,
    timeout = timeout or 10, body = body and assert(json.encode(body)) or (method ~= "GET" and "" or nil),
    headers = body and { ["Content-Type"] = "application/json" } or nil }
  r = r or resp
  assert(r, msg)
  if r.status >= 400 then error(path .. ": " .. r.status .. " " .. r.body, 2) end
  if r.body == "" then return {}, r.status end
  return assert(json.decode(r.body)), r.status
end

local function query(t)
  local q = {}
  for k, v in pairs(t or {}) do q[#q + 1] = k .. "=" .. http.url_escape(tostring(v)) end
  table.sort(q)
  return table.concat(q, "&")
end

function Fake:state() return call(self, "GET", "/_test/state") end
function Fake:leftovers() return call(self, "GET", "/_test/leftovers") end
function Fake:calls() return call(self, "GET", "/_test/calls").calls end
function Fake:clear_calls() return call(self, "DELETE", "/_test/calls") end
function Fake:faults(t) return call(self, "POST", "/_test/faults", t).ids end
function Fake:clear_faults() return call(self, "DELETE", "/_test/faults") end
function Fake:config(t) return call(self, "POST", "/_test/config?" .. query(t)) end

function Fake:add_nodes(n, o)
  local q = { count = n }
  for k, v in pairs(o or {}) do q[k] = v end
  return call(self, "POST", "/_test/nodes?" .. query(q)).ids
end

function Fake:settle(timeout)
  timeout = timeout or 120
  local r, msg, _, resp = http.request { url = self.url .. "/_test/settle?timeout=" .. timeout, retries = 0,
    timeout = timeout + 10 }
  r = r or resp
  assert(r, msg)
  return r.status == 200, r.body
end

function Fake:user_data(id)
  local r, msg, _, resp = http.request { url = self.url .. "/_test/user-data/" .. id, retries = 0, timeout = 10 }
  r = r or resp
  assert(r, msg)
  return r.status == 200 and r.body or nil
end

function Fake:log_text() return self.server:log_text() end
function Fake:stop() return self.server:stop() end

--- Builds and starts the server on host; raises (failing the spec) when it
--- cannot be built or started. tag names this spec's copy of the binary
--- (specs run in parallel; one must not rewrite the file another runs).
function M.start(host, tag, opts)
  opts = opts or {}
  local src = (os.getenv("JUJU_TEST_SOURCE_DIR") or ".") .. "/tests/servers/maas"
  local bin = assert(server.go_build("maas-" .. assert(tag, "fake.start: tag required"), src))
  local argv = { bin, "-addr", "{host}:{port}", "-dir", "{dir}" }
  local function flag(name, v) if v ~= nil then argv[#argv + 1] = "-" .. name; argv[#argv + 1] = tostring(v) end end
  flag("nodes", opts.nodes)
  flag("launcher", opts.launcher)
  flag("terminator", opts.terminator)
  local env = { MAAS_TEST_OAUTH = M.OAUTH }
  for k, v in pairs(opts.env or {}) do env[k] = v end
  local s = assert(server.start { name = "maas", host = host, argv = argv, env = env })
  return setmetatable({ server = s, url = s.url, server_url = s.url .. "/MAAS" }, Fake)
end

return M
