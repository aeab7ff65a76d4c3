-- servers.control: what the Go fakes' Lua sides (servers.goose.fake,
-- servers.maas.fake) do alike: build and start the fake (GOPATH mode,
-- server.go_build) and call its test-only /_test/ endpoints.
--
--   local control = require("servers.control")
--   local s = control.start { src = "goose", bin = "goose-fake", tag = tag, name = "goose-fake", host = host,
--     flags = { { "launcher", opts.launcher }, ... }, env = { ... }, extra_env = opts.env }
--   control.methods(Fake [, { empty_body = true }])
--     -- Fake gets state, leftovers, calls([service]), clear_calls, faults(t),
--     -- clear_faults, settle([timeout]), user_data(id), log_text, stop;
--     -- its objects hold url (the fake's base URL) and server.
--   control.call(self, method, path [, body [, timeout]]) -- the decoded JSON answer and the status
local server = require("juju.testing.server")
local http = require("juju.http")
local json = require("juju.json")

local M = {}

-- empty_body: a call without a body sends an empty one (but a GET), and an
-- empty answer is {}.
local function request(self, method, path, body, timeout, empty_body)
  local r, msg, _, resp = http.request { url = self.url .. path, method = method, retries = 0,
    timeout = timeout or 10,
    body = body and assert(json.encode(body)) or (empty_body and method ~= "GET" and "" or nil),
    headers = body and { ["Content-Type"] = "application/json" } or nil }
  r = r or resp
  assert(r, msg)
  if r.status >= 400 then error(path .. ": " .. r.status .. " " .. r.body, 3) end
  if empty_body and r.body == "" then return {}, r.status end
  return assert(json.decode(r.body)), r.status
end

--- A control call: raises on a transport error, a status of 400 or more,
--- or an answer that is not JSON.
function M.call(self, method, path, body, timeout)
  return request(self, method, path, body, timeout, self._empty_body)
end

--- Adds the control calls every Go fake answers alike to the class Fake.
function M.methods(Fake, opts)
  Fake._empty_body = (opts or {}).empty_body or false
  local call = M.call
  function Fake:state() return call(self, "GET", "/_test/state") end
  function Fake:leftovers() return call(self, "GET", "/_test/leftovers") end
  function Fake:calls(service)
    return call(self, "GET", "/_test/calls" .. (service and ("?service=" .. service) or "")).calls
  end
  function Fake:clear_calls() return call(self, "DELETE", "/_test/calls") end
  function Fake:faults(t) return call(self, "POST", "/_test/faults", t).ids end
  function Fake:clear_faults() return call(self, "DELETE", "/_test/faults") end

  --- true once every launcher answered and every terminator exited (at
  --- most timeout seconds, default 120); false and the fake's answer if not.
  function Fake:settle(timeout)
    timeout = timeout or 120
    local r, msg, _, resp = http.request { url = self.url .. "/_test/settle?timeout=" .. timeout, retries = 0,
      timeout = timeout + 10 }
    r = r or resp
    assert(r, msg)
    return r.status == 200, r.body
  end

  --- The user-data instance id was started with (as sent), nil if none.
  function Fake:user_data(id)
    local r, msg, _, resp = http.request { url = self.url .. "/_test/user-data/" .. id, retries = 0, timeout = 10 }
    r = r or resp
    assert(r, msg)
    return r.status == 200 and r.body or nil
  end

  function Fake:log_text() return self.server:log_text() end
  function Fake:stop() return self.server:stop() end
  return Fake
end

--- Builds tests/servers/SRC as BIN-TAG (tag names a spec's copy of the
--- binary: specs run in parallel, and one must not rewrite the file another
--- runs) and starts it on host with -addr, -dir (data_dir or the server's
--- own) and flags in order ({name, value}: left out when value is nil, a
--- bare -name when true); env and then extra_env are its environment.
--- o.cgo builds with cgo; o.port, o.ready and o.ready_timeout go to
--- server.start. Raises (failing the spec) when it cannot be built or started.
function M.start(o)
  local src = (os.getenv("JUJU_TEST_SOURCE_DIR") or ".") .. "/tests/servers/" .. o.src
  local bin = assert(server.go_build(o.bin .. "-" .. assert(o.tag, "fake.start: tag required"), src,
    { cgo = o.cgo }))
  local argv = { bin, "-addr", "{host}:{port}", "-dir", o.data_dir or "{dir}" }
  for _, f in ipairs(o.flags or {}) do
    local name, v = f[1], f[2]
    if v == true then
      argv[#argv + 1] = "-" .. name
    elseif v ~= nil then
      argv[#argv + 1] = "-" .. name; argv[#argv + 1] = tostring(v)
    end
  end
  local env = {}
  for k, v in pairs(o.env or {}) do env[k] = v end
  for k, v in pairs(o.extra_env or {}) do env[k] = v end
  return assert(server.start { name = o.name, host = o.host, port = o.port, argv = argv, env = env,
    ready = o.ready, ready_timeout = o.ready_timeout })
end

return M
