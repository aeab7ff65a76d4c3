-- servers.cloudapi.fake: starts the CloudAPI fake (main.go beside this file,
-- README.md) and the Manta fake (tests/servers/manta/server.js) for one
-- test account with a fresh RSA key, and talks to the CloudAPI fake's
-- /_test/ endpoints.
--
--   local fake = require("servers.cloudapi.fake")
--   local j = fake.start("127.0.0.90", "joyentspec" [, opts])
--   -- opts: launcher, terminator (instance.programs(dir)), env ({NAME=v}:
--   -- INSTANCE_ADDRESS_BASE, INSTANCE_OWNER_PID), address_pool, build_gets,
--   -- key_type ("rsa" (default), "ecdsa", "ed25519"), key_bits
--   j.sdc_url, j.manta_url, j.user, j.key_id, j.key_path, j.key_pem (the
--   private key's text, for the secret checks), j.dir
--   j:state(), j:leftovers(), j:calls(), j:clear_calls(), j:faults(t),
--   j:clear_faults(), j:config{build_gets=, launcher=, address_pool=},
--   j:settle([timeout]), j:user_data(id), j:manta_files() (every object
--   stored: {path -> content}), j:stop()
local server = require("juju.testing.server")
local http = require("juju.http")
local json = require("juju.json")
local fs = require("juju.fs")
local sign = require("juju.sign")
local manta_harness = require("servers.manta.harness")

local M = {}

M.USER = "jjuser"

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

function Fake:state() return call(self, "GET", "/_test/state") end
function Fake:leftovers() return call(self, "GET", "/_test/leftovers") end
function Fake:calls() return call(self, "GET", "/_test/calls").calls end
function Fake:clear_calls() return call(self, "DELETE", "/_test/calls") end
function Fake:faults(t) return call(self, "POST", "/_test/faults", t).ids end
function Fake:clear_faults() return call(self, "DELETE", "/_test/faults") end
--- sigcheck.js's verdict alone on a request ({method, url (path), headers}).
function Fake:sigcheck(req) return call(self, "POST", "/_test/sigcheck", req) end

function Fake:config(c)
  local q = {}
  if c.build_gets then q[#q + 1] = "build_gets=" .. c.build_gets end
  if c.launcher ~= nil then q[#q + 1] = "launcher=" .. (c.launcher and "1" or "0") end
  if c.address_pool then q[#q + 1] = "address_pool=" .. http.url_escape(c.address_pool) end
  return call(self, "POST", "/_test/config?" .. table.concat(q, "&"))
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

--- Every object the Manta fake holds: {["/user/stor/dir/name"] = content}.
function Fake:manta_files()
  local out = {}
  local root = self.manta.dir .. "/data/stor"
  local function walk(dir, rel)
    for _, n in ipairs(assert(fs.list(dir))) do
      local p = dir .. "/" .. n
      local st = fs.stat(p)
      if st and st.type == "dir" then walk(p, rel .. "/" .. n)
      elseif st then out["/" .. self.user .. "/stor" .. rel .. "/" .. n] = fs.read_file(p) end
    end
  end
  if fs.exists(root) then walk(root, "") end
  return out
end

function Fake:stop()
  self.cloudapi:stop()
  self.manta:stop()
end

--- Builds and starts both fakes on host (CloudAPI) and host (Manta, its
--- own port); raises when either cannot start. tag names this spec's copy
--- of the binary.
function M.start(host, tag, opts)
  opts = opts or {}
  local src = (os.getenv("JUJU_TEST_SOURCE_DIR") or ".") .. "/tests/servers/cloudapi"
  local bin = assert(server.go_build("cloudapi-fake-" .. assert(tag, "fake.start: tag required"), src))
  local dir = assert(fs.mkdtemp((os.getenv("TMPDIR") or "/tmp") .. "/juju-cloudapi-" .. tag .. "-"))
  local key_type = opts.key_type or "rsa"
  local key_path = manta_harness.keygen(dir, "id_" .. key_type, key_type,
    opts.key_bits or (key_type == "rsa" and 2048 or nil))
  local key = assert(sign.load_key_file(key_path))
  local fp = key:fingerprint_md5()
  assert(fs.write_atomic(dir .. "/user.pub", key:public_line(M.USER)))
  key:close()
  -- the key id goes in the environment (sdc-key-id is secret to the
  -- provider; the secrets audit reads every command line on the machine)
  local argv = { bin, "-addr", "{host}:{port}", "-dir", "{dir}", "-user", M.USER,
    "-public-key", dir .. "/user.pub", "-checker", src .. "/sigcheck.js" }
  local function flag(name, v) if v ~= nil then argv[#argv + 1] = "-" .. name; argv[#argv + 1] = tostring(v) end end
  flag("launcher", opts.launcher)
  flag("terminator", opts.terminator)
  flag("address-pool", opts.address_pool)
  flag("build-gets", opts.build_gets)
  local env = { NODE_PATH = manta_harness.node_path(), CLOUDAPI_KEY_ID = fp }
  for k, v in pairs(opts.env or {}) do env[k] = v end
  local c = assert(server.start { name = "cloudapi-fake", host = host, argv = argv, env = env })
  local m = assert(server.start { name = "manta", host = host,
    argv = { "node", manta_harness.dir .. "/server.js", "--host", "{host}", "--port", "{port}", "--dir", "{dir}",
      "--user", M.USER, "--public-key", dir .. "/user.pub" },
    env = { NODE_PATH = manta_harness.node_path(), MANTA_KEY_ID = "/" .. M.USER .. "/keys/" .. fp } })
  return setmetatable({ cloudapi = c, manta = m, url = c.url, sdc_url = c.url, manta_url = m.url, user = M.USER,
    key_id = fp, key_path = key_path, key_pem = fs.read_file(key_path), dir = dir }, Fake)
end

return M
