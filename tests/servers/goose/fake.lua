-- servers.goose.fake: starts the goose OpenStack double (main.go beside this
-- file; README.md) for the keystone, Swift and openstack specs, once per
-- spec file, and talks to its test-only endpoints.
--
--   local fake = require("servers.goose.fake")
--   local s = fake.start("127.0.0.21", "keystone" [, opts])
--   -- opts (all optional): launcher, terminator (shell command lines, e.g.
--   -- instance.programs(dir).launcher), dir (user-data files), env ({NAME=v}
--   -- added to the fake's environment, e.g. INSTANCE_ADDRESS_BASE),
--   -- images ({id, ...}), address_pool, floating_pool ("A.B.C.X-Y"),
--   -- nat_ports ({22, ...}), build_gets (n), streams (true: product-streams
--   -- and juju-tools in the catalog)
--   s.v2, s.v3            -- auth URLs (.../v2.0, .../v3)
--   s:stats()             -- {auth_v2_password=n, auth_v3=n, swift=n, ...}
--   s:revoke()            -- new tokens; old ones now get 401
--   s:config{ttl=, reject=true|false, fault="badjson"|"notoken"|"500"|"", list_cap=n,
--            build_gets=n, delete_gets=n, launcher=true|false, group_in_use=true|false,
--            images={ids} (replace), add_images={ids}, address_pool=, floating_pool=}
--   s:state()             -- /_test/state: servers, security_groups, floating_ips, images, swift
--   s:leftovers()         -- {servers, security_groups, floating_ips, containers, objects}
--   s:calls([service])    -- the journal: {{n, time, method, path, service, status, fault}, ...}
--   s:clear_calls()
--   s:faults(t)           -- one fault or a list ({op=, status=, ...}); returns the ids
--   s:pending_faults(), s:clear_faults()
--   s:settle([timeout])   -- true once every launcher answered and every terminator exited
--   s:user_data(id)       -- the user-data the server was created with (as sent)
--   s:assert_empty([settle_timeout]) -- busted asserts: no server, group, floating IP or container left
--   s:stop()              -- SIGTERM: the fake runs the terminator of every server left
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

local function call(self, method, path, body, timeout)
  local r, msg, _, resp = http.request { url = self.url .. path, method = method, retries = 0,
    timeout = timeout or 10, body = body and assert(json.encode(body)) or nil,
    headers = body and { ["Content-Type"] = "application/json" } or nil }
  r = r or resp
  assert(r, msg)
  local doc = assert(json.decode(r.body))
  if r.status >= 400 then error(path .. ": " .. r.status .. " " .. r.body, 2) end
  return doc, r.status
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
  for _, k in ipairs { "build_gets", "delete_gets", "address_pool", "floating_pool" } do
    if c[k] ~= nil then q[#q + 1] = k .. "=" .. http.url_escape(tostring(c[k])) end
  end
  for _, k in ipairs { "launcher", "group_in_use" } do
    if c[k] ~= nil then q[#q + 1] = k .. "=" .. (c[k] and "1" or "0") end
  end
  for _, k in ipairs { "images", "add_images" } do
    if c[k] ~= nil then q[#q + 1] = k .. "=" .. http.url_escape(table.concat(c[k], ",")) end
  end
  return call(self, "POST", "/_test/config?" .. table.concat(q, "&"))
end

function Fake:state() return call(self, "GET", "/_test/state") end
function Fake:leftovers() return call(self, "GET", "/_test/leftovers") end
function Fake:calls(service)
  return call(self, "GET", "/_test/calls" .. (service and ("?service=" .. service) or "")).calls
end
function Fake:clear_calls() return call(self, "DELETE", "/_test/calls") end
function Fake:faults(t) return call(self, "POST", "/_test/faults", t).ids end
function Fake:pending_faults() return call(self, "GET", "/_test/faults").faults end
function Fake:clear_faults() return call(self, "DELETE", "/_test/faults") end

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

--- Fails the spec (luassert) unless the fake holds no server,
--- security group, floating IP or container; with settle_timeout, first
--- unless every launcher and terminator finished within it.
function Fake:assert_empty(settle_timeout)
  local luassert = require("luassert") -- here: bench/ loads this file outside busted
  if settle_timeout then luassert.is_true(self:settle(settle_timeout)) end
  local left = self:leftovers()
  luassert.are.same({}, left.servers)
  luassert.are.same({}, left.security_groups)
  luassert.are.same({}, left.floating_ips)
  luassert.are.same({}, left.containers)
end

function Fake:stop() return self.server:stop() end

--- Builds and starts the fake on host; raises (failing the spec) when it
--- cannot be built or started. tag names this spec's copy of the binary:
--- specs run in parallel, and one must not rewrite the file another runs.
function M.start(host, tag, opts)
  opts = opts or {}
  local src = (os.getenv("JUJU_TEST_SOURCE_DIR") or ".") .. "/tests/servers/goose"
  local bin = assert(server.go_build("goose-fake-" .. assert(tag, "fake.start: tag required"), src))
  local c = M.CREDS
  local argv = { bin, "-addr", "{host}:{port}", "-dir", opts.dir or "{dir}" }
  local function flag(name, v) if v ~= nil then argv[#argv + 1] = "-" .. name; argv[#argv + 1] = tostring(v) end end
  flag("launcher", opts.launcher)
  flag("terminator", opts.terminator)
  flag("images", opts.images and table.concat(opts.images, ","))
  flag("address-pool", opts.address_pool)
  flag("floating-pool", opts.floating_pool)
  flag("nat-ports", opts.nat_ports and table.concat(opts.nat_ports, ","))
  flag("build-gets", opts.build_gets)
  if opts.streams then argv[#argv + 1] = "-streams" end
  local env = { GOOSE_USER = c.username, GOOSE_PASSWORD = c.password, GOOSE_TENANT = c.tenant_name,
                GOOSE_DOMAIN = c.domain_name, GOOSE_ACCESS_KEY = c.access_key, GOOSE_SECRET_KEY = c.secret_key }
  for k, v in pairs(opts.env or {}) do env[k] = v end
  local s = assert(server.start { name = "goose-fake", host = host, argv = argv, env = env })
  return setmetatable({ server = s, url = s.url, v2 = s.url .. "/v2.0", v3 = s.url .. "/v3" }, Fake)
end

return M
