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
local http = require("juju.http")
local control = require("servers.control")

local M = {}

-- Test credentials (not real secrets, but the specs check that none of them
-- reaches an error message).
M.CREDS = {
  username = "fred", password = "pw-Sup3rS3cret-1", tenant_name = "juju-project",
  domain_name = "juju-domain", access_key = "AKIA-fred", secret_key = "sk-Sup3rS3cret-2",
}

local Fake = control.methods({})
Fake.__index = Fake
local call = control.call

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

function Fake:pending_faults() return call(self, "GET", "/_test/faults").faults end

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

--- Builds and starts the fake on host; raises (failing the spec) when it
--- cannot be built or started. tag names this spec's copy of the binary:
--- specs run in parallel, and one must not rewrite the file another runs.
function M.start(host, tag, opts)
  opts = opts or {}
  local c = M.CREDS
  local s = control.start { src = "goose", bin = "goose-fake", tag = tag, name = "goose-fake", host = host,
    data_dir = opts.dir,
    flags = { { "launcher", opts.launcher }, { "terminator", opts.terminator },
      { "images", opts.images and table.concat(opts.images, ",") }, { "address-pool", opts.address_pool },
      { "floating-pool", opts.floating_pool }, { "nat-ports", opts.nat_ports and table.concat(opts.nat_ports, ",") },
      { "build-gets", opts.build_gets }, { "streams", opts.streams and true or nil } },
    env = { GOOSE_USER = c.username, GOOSE_PASSWORD = c.password, GOOSE_TENANT = c.tenant_name,
      GOOSE_DOMAIN = c.domain_name, GOOSE_ACCESS_KEY = c.access_key, GOOSE_SECRET_KEY = c.secret_key },
    extra_env = opts.env }
  return setmetatable({ server = s, url = s.url, v2 = s.url .. "/v2.0", v3 = s.url .. "/v3" }, Fake)
end

return M
