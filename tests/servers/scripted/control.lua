-- servers.scripted.control: starts tests/servers/scripted/server.py and
-- drives it from a spec (require("servers.scripted.control"), busted's
-- --lpath includes tests/).
--
--   local scripted = require("servers.scripted.control")
--   local s = scripted.start{ host = "127.0.0.7" [, tls = {cert, key [, client_ca]}] }
--   s:script("/p", { {status = 503}, {status = 200, body = "ok"} })
--   s:requests()  -- what it received, oldest first
--   s:reset(); s:stop()
-- s.url is the base URL (https:// with tls). Control calls always use
-- plain http to s.control_url unless the server speaks TLS, then they use
-- the server's own certificate as CA.
local http = require("juju.http")
local json = require("juju.json")
local server = require("juju.testing.server")

local M = {}

local source_dir = os.getenv("JUJU_TEST_SOURCE_DIR") or "."
M.script_path = source_dir .. "/tests/servers/scripted/server.py"

local S = {}
S.__index = S

function S:_control(method, path, body)
  local o = { url = self.url .. path, method = method, body = body, deadline = 30 }
  if self.tls then
    o.ca_file = self.tls[1]
    o.client_cert = self.client_pem
  end
  local r, msg = http.request(o)
  if not r then error("scripted server control " .. path .. ": " .. msg .. "\n" .. self.s:log_text(), 2) end
  return json.decode(r.body)
end

--- Queues answers (tables as server.py's header describes) for path.
function S:script(path, responses)
  self:_control("POST", "/_script", assert(json.encode({ path = path, responses = json.array(responses) })))
end

function S:reset() self:_control("POST", "/_reset", "") end

function S:requests() return self:_control("GET", "/_requests") end

function S:stop() return self.s:stop() end

function S:log_text() return self.s:log_text() end

--- opts: host (default 127.0.0.1), tls = {cert_file, key_file [, client_ca_file]},
--- client_pem (cert+key PEM the control calls present when client_ca is set).
function M.start(opts)
  opts = opts or {}
  local argv = { "/usr/bin/python3", M.script_path, "--host", "{host}", "--port", "{port}" }
  if opts.tls then
    argv[#argv + 1] = "--tls"
    argv[#argv + 1] = opts.tls[1]
    argv[#argv + 1] = opts.tls[2]
    if opts.tls[3] then
      argv[#argv + 1] = "--client-ca"
      argv[#argv + 1] = opts.tls[3]
    end
  end
  local s, msg = server.start { name = opts.name or "scripted", argv = argv, host = opts.host }
  if not s then error(msg, 2) end
  local url = s.url
  if opts.tls then url = url:gsub("^http:", "https:") end
  return setmetatable({ s = s, url = url, host = s.host, port = s.port, tls = opts.tls,
                        client_pem = opts.client_pem }, S)
end

return M
