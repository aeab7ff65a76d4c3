-- openstack.nova: the Nova (compute v2) API over juju.cloud.api with a
-- Keystone token (juju.cloud.keystone: authenticated once, renewed before
-- it expires and once on a 401). Every call names its operation as a
-- path template ("POST /servers/{id}/action"): failures read
-- "nova POST /servers/{id}/action: <the client's message>", and the
-- emulator journals calls under the same names.
--
-- Safety of retries: GET and DELETE are idempotent and the client retries
-- them; a POST is sent once, except that an overLimit answer (HTTP 413 or
-- 429: Nova refuses a rate-limited request before acting on it) is waited
-- out here, on the provider's clock, for any call.
local api = require("juju.lazy")("juju.cloud.api")
local http = require("juju.lazy")("juju.http")
local json = require("juju.json")
local wait = require("juju.wait")

local M = {}

M.THROTTLE_TIMEOUT = 300

local Client = {}
Client.__index = Client

--- The client's message with the operation named first.
function M.clean_message(op, msg)
  return "nova " .. op .. ": " .. tostring(msg or ""):gsub("^nova: ", "")
end

--- opts: keystone (an authenticated-on-demand juju.cloud.keystone client),
--- endpoint (the compute URL from its catalog), http, cancel, clock (the
--- provider's), say (function(line)), check_interrupt, secrets.
function M.new(opts)
  local ks = opts.keystone
  local self = setmetatable({ ks = ks, endpoint = opts.endpoint, clock = opts.clock, say = opts.say,
    check_interrupt = opts.check_interrupt }, Client)
  self.api = api.new {
    name = "nova", endpoint = opts.endpoint, http = opts.http, cancel = opts.cancel, clock = opts.clock,
    sign = function(req) ks:sign(req) end, errors = "openstack", secrets = opts.secrets,
    credential_keys = opts.credential_keys,
  }
  return self
end

-- "/servers/{id}/action" with {id = "abc"} -> "/servers/abc/action".
local function expand(template, vars)
  return (template:gsub("{(%w+)}", function(k)
    local v = vars and vars[k]
    if v == nil then error("nova: no value for {" .. k .. "} in " .. template, 3) end
    return http.url_escape(tostring(v))
  end))
end

function Client:_once(method, template, vars, body, query)
  local op = method .. " " .. template
  local r = { method = method, path = expand(template, vars), query = query,
    idempotent = method == "GET" or method == "DELETE" or method == "HEAD",
    headers = { Accept = "application/json" } }
  if body ~= nil then
    r.body = assert(json.encode(body))
    r.headers["Content-Type"] = "application/json"
  end
  local resp, msg, code, eresp = self.ks:request(self.api, r)
  if not resp then
    return nil, M.clean_message(op, msg), code, eresp and eresp.cloud_code, eresp and eresp.status
  end
  if resp.body == nil or resp.body == "" then return {}, resp end
  local doc, derr = json.decode(resp.body, "nova " .. op .. " answer")
  if type(doc) ~= "table" then
    return nil, string.format("nova %s: malformed answer: %s", op, tostring(derr)), "HTTP"
  end
  return doc, resp
end

--- call(method, template, vars, body, query): the decoded answer ({} for
--- an empty body), or nil, message, code (juju.cloud.api's), Nova's error
--- name ("itemNotFound", "badRequest", ...), HTTP status.
function Client:call(method, template, vars, body, query)
  local cloud, status, code
  local doc, msg, c = wait.poll {
    what = "for nova " .. method .. " " .. template .. " (rate limited)", timeout = M.THROTTLE_TIMEOUT,
    interval = 1, backoff = 2, max_interval = 30, jitter = 0.2, clock = self.clock, say = self.say,
    check_interrupt = self.check_interrupt,
    poll = function()
      local d, m, cc, cl, st = self:_once(method, template, vars, body, query)
      if d then return d end
      code, cloud, status = cc, cl, st
      if cc == "THROTTLED" or status == 413 or status == 429 then return nil, m end
      return false, m, cc
    end,
  }
  if doc then return doc end
  return nil, msg, c or code, cloud, status
end

return M
