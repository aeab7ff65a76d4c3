-- providers/maas/client.lua: the MAAS 1.0 API calls the provider makes
-- (providers.md 9.3), through juju.cloud.api with OAuth 1.0 PLAINTEXT
-- (juju.cloud.sign.oauth). Operations are `op=` query parameters; POST
-- bodies are url-encoded forms; answers are JSON (a plain-text body on
-- failure, its first line kept as the message). Only GETs and release are
-- retried on any failure: a retried acquire or start whose first answer
-- was lost would take a second node or start one twice; those two are
-- retried only after a throttled answer (nothing was done).
local api = require("juju.cloud.api")
local oauth = require("juju.cloud.sign.oauth")
local crypto = require("juju.lazy")("juju.crypto")
local http = require("juju.lazy")("juju.http")
local json = require("juju.json")

local M = {}

-- The first line of a MAAS error body (plain text), never an HTML page.
local function maas_error(resp)
  local line = (resp.body or ""):match("^%s*([^\r\n]+)")
  if not line or line:find("<", 1, true) then return nil, nil end
  return nil, line:sub(1, 300)
end

-- An url-encoded form: {name = value | {values...}}, names sorted.
local function encode_form(fields)
  local names = {}
  for k in pairs(fields) do names[#names + 1] = k end
  table.sort(names)
  local parts = {}
  for _, k in ipairs(names) do
    local v = fields[k]
    for _, one in ipairs(type(v) == "table" and v or { v }) do
      parts[#parts + 1] = http.url_escape(k) .. "=" .. http.url_escape(tostring(one))
    end
  end
  return table.concat(parts, "&")
end
M.encode_form = encode_form

local Client = {}
Client.__index = Client

M.THROTTLE_PAUSE = 1 -- seconds before the second attempt of a throttled acquire or start; doubled after

--- opts: server (maas-server), creds (oauth.parse_key's table), http
--- (juju.http options), clock, cancel, log.
function M.new(opts)
  assert(type(opts) == "table" and type(opts.server) == "string" and type(opts.creds) == "table",
    "maas client: server and creds required")
  local server = opts.server:gsub("/+$", "")
  local origin = server:match("^(%a[%w+.-]*://[^/?#]*)")
  assert(origin, "maas client: server must be an absolute URL")
  local creds = opts.creds
  local self = setmetatable({ server = server, api_path = oauth.api_url(server):sub(#origin + 1),
    clock = opts.clock or { sleep = require("juju.sys").sleep } }, Client)
  self.api = api.new {
    name = "maas", endpoint = origin, http = opts.http, cancel = opts.cancel, errors = maas_error,
    clock = opts.clock, log = opts.log, secrets = { creds.token_secret }, credential_keys = { "maas-oauth" },
    sign = function(req)
      oauth.sign(req, creds, { timestamp = os.time(), nonce = crypto.hex(crypto.random_bytes(16)) })
    end,
  }
  return self
end

--- call(method, path, {op=, query=, form=, retry=, throttled_attempts=}) -> decoded JSON (or
--- the raw body when it is not JSON), or nil, message, code, response.
--- path is relative to the API root ("nodes/", "nodes/<id>/").
function Client:call(method, path, o)
  o = o or {}
  local query = {}
  for k, v in pairs(o.query or {}) do query[k] = v end
  query.op = o.op
  local req = { method = method, path = self.api_path .. path, query = query,
    idempotent = method == "GET" or o.retry == true }
  if o.form then
    req.body = encode_form(o.form)
    req.headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
  end
  -- A throttled answer (429/503) did nothing: acquire and start may try
  -- again (Juju retried them briefly); anything else is not retried here.
  local resp, msg, code, eresp
  local attempts = o.throttled_attempts or 1
  for attempt = 1, attempts do
    resp, msg, code, eresp = self.api:request(req)
    if resp or code ~= "THROTTLED" or attempt == attempts then break end
    self.clock.sleep(M.THROTTLE_PAUSE * 2 ^ (attempt - 1))
  end
  if not resp then return nil, msg, code, eresp end
  local body = resp.body or ""
  if body:match("^%s*[%[{\"n]") then
    local doc = json.decode(body, "MAAS " .. (o.op or path) .. " answer")
    if doc ~= nil then return doc end
  end
  return body
end

--- The message of a failure for the user: the call and MAAS's words.
function M.describe(what, msg)
  return string.format("cannot %s: %s", what, tostring(msg))
end

return M
