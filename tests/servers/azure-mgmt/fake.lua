-- servers/azure-mgmt/fake.lua: starts the Service Management API test
-- server (mgmt.py) for the azure specs: a test CA and a server
-- certificate for the host (openssl), a self-signed management
-- certificate (certificate + key in one PEM, as Azure's), and the /_test/
-- control API over the same client certificate.
--
--   local fake = require("servers.azure-mgmt.fake")
--   local s = fake.start { host = "127.0.0.50", launcher = ..., terminator = ..., env = {...},
--                          storage_key = az.key }
--   s.endpoint, s.ca_file, s.cert_file (management PEM), s.subscription,
--   s.certs.stranger (a certificate the TLS layer takes and the subscription does not know)
--   s:leftovers(), s:state(), s:calls(), s:fault{...}, s:netconf(doc), s:race(doc), s:settle()
local server = require("juju.testing.server")
local http = require("juju.http")
local json = require("juju.json")
local sys = require("juju.sys")
local fs = require("juju.fs")

local M = {}

M.SUBSCRIPTION = "5e6a1c2b-0000-4000-8000-000000000001"
local PYTHON = "/usr/bin/python3"
-- absolute: the server runs in its own directory (bench loads this file by a relative path)
local HERE = assert(fs.realpath((debug.getinfo(1, "S").source:sub(2):match("^(.*)/[^/]*$")) or "."))

local function openssl(args)
  local argv = { "openssl" }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  local r = assert(sys.run(argv, { timeout = 60 }))
  assert(r.code == 0, "openssl " .. table.concat(args, " ") .. ": " .. tostring(r.stderr))
end

local function h_write(path, text)
  assert(fs.write_atomic(path, text, tonumber("600", 8)))
end

--- Makes dir/ca.pem, dir/server.pem + server.key (for host), and
--- dir/management.pem (self-signed client certificate and key).
function M.make_certs(dir, host)
  openssl { "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", dir .. "/ca.key", "-out", dir .. "/ca.pem",
    "-days", "2", "-subj", "/CN=juju azure test CA" }
  openssl { "req", "-newkey", "rsa:2048", "-nodes", "-keyout", dir .. "/server.key", "-out", dir .. "/server.csr",
    "-subj", "/CN=" .. host }
  h_write(dir .. "/ext.cnf", "subjectAltName=IP:" .. host .. ",DNS:localhost\n")
  openssl { "x509", "-req", "-in", dir .. "/server.csr", "-CA", dir .. "/ca.pem", "-CAkey", dir .. "/ca.key",
    "-CAcreateserial", "-out", dir .. "/server.pem", "-days", "2", "-extfile", dir .. "/ext.cnf" }
  M.make_management_cert(dir .. "/management")
  -- a certificate the TLS layer accepts but the subscription does not
  -- know: the real API answers it with 403 ForbiddenError
  M.make_management_cert(dir .. "/stranger")
  return { ca = dir .. "/ca.pem", server_cert = dir .. "/server.pem", server_key = dir .. "/server.key",
    management = dir .. "/management.pem", stranger = dir .. "/stranger.pem" }
end

--- base.pem: a self-signed certificate followed by its key.
function M.make_management_cert(base)
  openssl { "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", base .. ".key", "-out", base .. ".crt",
    "-days", "2", "-subj", "/CN=juju azure management" }
  h_write(base .. ".pem", assert(fs.read_file(base .. ".crt")) .. assert(fs.read_file(base .. ".key")))
  return base .. ".pem"
end

local Fake = {}
Fake.__index = Fake

function Fake:control(what, body)
  local r, msg = http.request { url = self.endpoint .. "/_test/" .. what, method = "POST",
    body = json.encode(body or {}), ca_file = self.ca_file, client_cert = self.pem, timeout = 60,
    headers = { ["Content-Type"] = "application/json" } }
  assert(r, "azure-mgmt /_test/" .. what .. ": " .. tostring(msg))
  assert(r.status == 200, "azure-mgmt /_test/" .. what .. ": HTTP " .. r.status .. " " .. tostring(r.body))
  return json.decode(r.body)
end
function Fake:leftovers() return self:control("leftovers") end
function Fake:state() return self:control("state") end
function Fake:calls() return self:control("calls") end
function Fake:clear_calls() return self:control("clear_calls") end
function Fake:fault(f) return self:control("fault", f) end
function Fake:clear_faults() return self:control("clear_faults") end
function Fake:netconf(doc) return self:control("netconf", { doc = doc }) end
function Fake:race(doc, at) return self:control("race", { doc = doc, at = at }) end
function Fake:reset() return self:control("reset") end
function Fake:settle(t) return self:control("settle", { timeout = t or 30 }).settled end
function Fake:stop() return self.server:stop() end

--- opts: host, dir (for the certificates), launcher, terminator (shell
--- lines), env, storage_key, locations.
function M.start(opts)
  local host = opts.host or "127.0.0.1"
  local certs = M.make_certs(opts.dir, host)
  local argv = { PYTHON, HERE .. "/mgmt.py", "--host", "{host}", "--port", "{port}", "--dir", "{dir}",
    "--subscription", M.SUBSCRIPTION, "--server-cert", certs.server_cert, "--server-key", certs.server_key,
    "--client-cert", certs.management, "--trust", certs.stranger }
  if opts.launcher then
    argv[#argv + 1] = "--launcher"; argv[#argv + 1] = opts.launcher
    argv[#argv + 1] = "--terminator"; argv[#argv + 1] = opts.terminator
  end
  for _, l in ipairs(opts.locations or {}) do argv[#argv + 1] = "--location"; argv[#argv + 1] = l end
  -- the storage key through the environment: command lines are readable by every user
  local env = { AZURE_MGMT_STORAGE_KEY = opts.storage_key or "" }
  for k, v in pairs(opts.env or {}) do env[k] = v end
  local s = assert(server.start { name = "azure-mgmt", argv = argv, host = host, env = env })
  return setmetatable({ server = s, endpoint = "https://" .. host .. ":" .. s.port, ca_file = certs.ca,
    cert_file = certs.management, pem = assert(fs.read_file(certs.management)), subscription = M.SUBSCRIPTION,
    certs = certs }, Fake)
end

return M
