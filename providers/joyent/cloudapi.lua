-- joyent.cloudapi: SmartDataCenter's CloudAPI over juju.cloud.api, every
-- request signed with the account's SSH key (juju.cloud.sign.httpsig, the
-- "cloudapi" form Juju 1.x sent: the signature of the Date header value,
-- keyId /<user>/keys/<sdc-key-id>) and X-Api-Version ~7.0. Every call
-- names its operation as a path template ("GET /{user}/machines/{id}"):
-- failures read "cloudapi GET /{user}/machines/{id}: <message>", and the
-- CloudAPI fake journals calls under the same names.
--
-- Safety of retries: GET, HEAD and DELETE are idempotent and the client
-- retries them; a POST is sent once, except that a throttled answer (429,
-- 503: CloudAPI refuses a rate-limited request before acting on it) is
-- waited out here, on the provider's clock, for any call.
local api = require("juju.lazy")("juju.cloud.api")
local http = require("juju.lazy")("juju.http")
local httpsig = require("juju.cloud.sign.httpsig")
local json = require("juju.json")
local wait = require("juju.wait")

local M = {}

M.API_VERSION = "~7.0"
M.THROTTLE_TIMEOUT = 300

local Client = {}
Client.__index = Client

--- opts: url (sdc-url), user (the account), key (a juju.sign.Key), key_id
--- (sdc-key-id, a fingerprint), algorithm, http (juju.http options),
--- clock, credential_keys (named when CloudAPI refuses the signature),
--- say (function(line): progress while throttled), check_interrupt.
function M.new(opts)
  local self = setmetatable({ user = opts.user, clock = opts.clock, say = opts.say,
    check_interrupt = opts.check_interrupt }, Client)
  local key_id = httpsig.key_id(opts.user, opts.key_id)
  self.api = api.new {
    name = "cloudapi", endpoint = opts.url, http = opts.http, clock = opts.clock, errors = "joyent",
    credential_keys = opts.credential_keys,
    sign = function(req)
      -- the wall clock: CloudAPI checks the Date against its own
      req.headers["Date"] = nil
      httpsig.sign(req, { key = opts.key, key_id = key_id, algorithm = opts.algorithm, now = os.time(),
        form = "cloudapi" })
    end,
  }
  return self
end

local function expand(self, template, vars)
  return (template:gsub("{(%w+)}", function(k)
    local v = k == "user" and self.user or (vars and vars[k])
    if v == nil then error("cloudapi: no value for {" .. k .. "} in " .. template, 3) end
    return http.url_escape(tostring(v))
  end))
end

function Client:_once(method, template, vars, body, query)
  local op = method .. " " .. template
  local r = { method = method, path = expand(self, template, vars), query = query,
    idempotent = method == "GET" or method == "HEAD" or method == "DELETE",
    headers = { Accept = "application/json", ["X-Api-Version"] = M.API_VERSION } }
  if body ~= nil then
    r.body = assert(json.encode(body))
    r.headers["Content-Type"] = "application/json"
  end
  local resp, msg, code, eresp = self.api:request(r)
  if not resp then
    return nil, "cloudapi " .. op .. ": " .. tostring(msg):gsub("^cloudapi: ", ""), code, eresp
  end
  if method == "HEAD" or resp.body == nil or resp.body == "" then return {}, resp end
  local doc, derr = json.decode(resp.body, "cloudapi " .. op .. " answer")
  if type(doc) ~= "table" then
    return nil, string.format("cloudapi %s: malformed answer: %s", op, tostring(derr)), "HTTP"
  end
  return doc, resp
end

--- call(method, template, vars, body, query): the decoded answer ({} for
--- an empty body) and the response, or nil, message, code, response.
function Client:call(method, template, vars, body, query)
  local last_resp, last_code
  local doc, msg, code = wait.poll {
    what = "for cloudapi " .. method .. " " .. template .. " (rate limited)", timeout = M.THROTTLE_TIMEOUT,
    interval = 1, backoff = 2, max_interval = 30, jitter = 0.2, clock = self.clock, say = self.say,
    check_interrupt = self.check_interrupt,
    poll = function()
      local d, m, c, r = self:_once(method, template, vars, body, query)
      if d then return { d, r } end
      last_resp, last_code = r, c
      if c == "THROTTLED" then return nil, m end
      return false, m, c
    end,
  }
  if doc then return doc[1], doc[2] end
  return nil, msg, code or last_code, last_resp
end

return M
