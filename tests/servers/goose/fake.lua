-- servers.goose.fake: starts the goose OpenStack double (main.go beside this
-- file) for the keystone and Swift specs, once per spec file, and talks to
-- its test-only endpoints.
--
--   local fake = require("servers.goose.fake")
--   local s = fake.start("127.0.0.21", "keystone")
--   s.v2, s.v3            -- auth URLs (.../v2.0, .../v3)
--   s:stats()             -- {auth_v2_password=n, auth_v3=n, swift=n, ...}
--   s:revoke()            -- new tokens; old ones now get 401
--   s:config{ttl=, reject=true|false, fault="badjson"|"notoken"|"500"|"", list_cap=n}
local server = require("juju.testing.server")
local http = require("juju.http")
local json = require("juju.json")

local M = {}

-- Test credentials (not real secrets, but the specs check that none of them
-- reaches an error message).
M.CREDS = {
  username = "fred", password = "pw-Sup3rS3cret-1", tenant_name = "juju-project",
  domain_name = "juju-domain", access_key = "AKIA-fred", secret_key = "sk-Sup3rS3cret-2",
}

local Fake = {}
Fake.__index = Fake

local function call(self, method, path)
  local r, msg = http.request { url = self.url .. path, method = method, retries = 0, timeout = 10 }
  assert(r, msg)
  return assert(json.decode(r.body))
end

function Fake:stats()
  local t = call(self, "GET", "/_test/stats")
  return setmetatable(t, { __index = function() return 0 end })
end

function Fake:revoke() return call(self, "POST", "/_test/revoke") end

function Fake:config(c)
  local q = {}
  if c.ttl then q[#q + 1] = "ttl=" .. c.ttl end
  if c.reject ~= nil then q[#q + 1] = "reject=" .. (c.reject and "1" or "0") end
  if c.fault then q[#q + 1] = "fault=" .. c.fault end
  if c.list_cap then q[#q + 1] = "list_cap=" .. c.list_cap end
  return call(self, "POST", "/_test/config?" .. table.concat(q, "&"))
end

function Fake:stop() return self.server:stop() end

--- Builds and starts the fake on host; raises (failing the spec) when it
--- cannot be built or started. tag names this spec's copy of the binary:
--- specs run in parallel, and one must not rewrite the file another runs.
function M.start(host, tag)
  local src = (os.getenv("JUJU_TEST_SOURCE_DIR") or ".") .. "/tests/servers/goose"
  local bin = assert(server.go_build("goose-fake-" .. assert(tag, "fake.start: tag required"), src))
  local c = M.CREDS
  local s = assert(server.start {
    name = "goose-fake", host = host,
    argv = { bin, "-addr", "{host}:{port}" },
    env = { GOOSE_USER = c.username, GOOSE_PASSWORD = c.password, GOOSE_TENANT = c.tenant_name,
            GOOSE_DOMAIN = c.domain_name, GOOSE_ACCESS_KEY = c.access_key, GOOSE_SECRET_KEY = c.secret_key },
  })
  return setmetatable({ server = s, url = s.url, v2 = s.url .. "/v2.0", v3 = s.url .. "/v3" }, Fake)
end

return M
