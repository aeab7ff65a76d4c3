-- ec2.query: the EC2 Query API over juju.cloud.api: GET with every
-- parameter in the query string (as Juju 1.25's amz.v3 did), SigV4 for
-- service "ec2", XML answers parsed with juju.xml. A failed call returns
-- nil, message, code (juju.cloud.api's stable codes) and the EC2 error
-- code ("InvalidGroup.Duplicate") as a fourth value, for the callers that
-- branch on it. Throttling (RequestLimitExceeded) is waited out here with
-- juju.wait on the provider's clock, on top of whatever the client retries.
local api = require("juju.lazy")("juju.cloud.api")
local sigv4 = require("juju.lazy")("juju.cloud.sign.sigv4")
local xml = require("juju.lazy")("juju.xml")
local wait = require("juju.wait")

local M = {}

M.VERSION = "2016-11-15" -- TagSpecification (tags at creation) needs it
M.THROTTLE_TIMEOUT = 300

-- EC2 error code -> stable code (what is not here keeps the status's).
local CODES = {
  AuthFailure = "AUTH", SignatureDoesNotMatch = "AUTH", InvalidClientTokenId = "AUTH",
  UnauthorizedOperation = "AUTH", OptInRequired = "AUTH", Blocked = "AUTH",
  RequestLimitExceeded = "THROTTLED", Throttling = "THROTTLED",
  InsufficientInstanceCapacity = "QUOTA", InstanceLimitExceeded = "QUOTA",
  InsufficientFreeAddressesInSubnet = "QUOTA",
  DependencyViolation = "CONFLICT", IdempotentParameterMismatch = "CONFLICT",
}

function M.child(e, name)
  for _, c in ipairs(e and e.children or {}) do
    if c.name == name then return c end
  end
end

--- The element at a slash-separated path below e, or nil.
function M.find(e, path)
  for name in path:gmatch("[^/]+") do e = M.child(e, name) end
  return e
end

--- The text at path below e ("" and missing are nil).
function M.text(e, path)
  local x = M.find(e, path)
  local t = x and x.text
  if t == nil or t == "" then return nil end
  return t
end

--- The <item> children of the element at path.
function M.items(e, path)
  local set = M.find(e, path)
  local out = {}
  for _, c in ipairs(set and set.children or {}) do
    if c.name == "item" then out[#out + 1] = c end
  end
  return out
end

--- code, message of an EC2 error body (nil when it is not one).
function M.error_of(body)
  if type(body) ~= "string" or body == "" then return nil end
  local root = xml.decode(body, "EC2 error")
  if not root then return nil end
  local err = M.find(root, "Errors/Error")
  if not err then return nil end
  return M.text(err, "Code"), M.text(err, "Message")
end

--- The client's message without the request's query string (it carries
--- the parameters: the user-data, which holds machine 0's host key) and
--- with the action named: "ec2 RunInstances: GET http://host/: 500 ...".
function M.clean_message(action, msg)
  msg = tostring(msg or ""):gsub("%?Action=[^%s]*[^%s:]", ""):gsub("^ec2: ", "")
  return "ec2 " .. action .. ": " .. msg
end

local Client = {}
Client.__index = Client

--- opts: endpoint, region, access_key, secret_key, clock (the provider's:
--- throttling waits), http, cancel, say (function(line)).
function M.new(opts)
  local creds = { access_key = opts.access_key, secret_key = opts.secret_key, region = opts.region,
    service = "ec2", clock = os.time }
  local self = setmetatable({ endpoint = opts.endpoint, clock = opts.clock, say = opts.say,
    check_interrupt = opts.check_interrupt }, Client)
  self.api = api.new {
    name = "ec2", endpoint = opts.endpoint, sign = sigv4.signer(creds), http = opts.http, cancel = opts.cancel,
    -- understood by the richer juju.cloud.api (issue 10), ignored by main's
    clock = opts.clock, secrets = { opts.secret_key }, credential_keys = { "access-key", "secret-key" },
    errors = function(resp)
      local code, msg = M.error_of(resp.body)
      if not code then return nil, nil end
      return CODES[code] or (code:match("%.NotFound$") and "NOT_FOUND")
        or (code:match("%.Duplicate$") and "CONFLICT") or nil, code .. ": " .. (msg or "")
    end,
  }
  return self
end

-- One call as the client makes it (its retries included).
function Client:_once(action, params)
  local q = { Action = action, Version = M.VERSION }
  for k, v in pairs(params or {}) do q[k] = tostring(v) end
  local resp, msg, code, eresp = self.api:request { method = "GET", path = "/", query = q, idempotent = true,
    client_token = q.ClientToken }
  if not resp then
    local ec2code = eresp and M.error_of(eresp.body)
    return nil, M.clean_message(action, msg), code, ec2code
  end
  local root, perr = xml.decode(resp.body, "EC2 " .. action .. " answer")
  if not root then return nil, string.format("ec2: %s: malformed answer: %s", action, perr), "HTTP" end
  return root
end

--- Calls action with params (wire names -> values): the answer's root
--- element, or nil, message, code, ec2_code.
function Client:call(action, params)
  local ec2code, code
  local root, msg, c = wait.poll {
    what = "for EC2 " .. action .. " (throttled)", timeout = M.THROTTLE_TIMEOUT,
    interval = 1, backoff = 2, max_interval = 30, jitter = 0.2, clock = self.clock, say = self.say,
    check_interrupt = self.check_interrupt,
    poll = function()
      local r, m, cc, e = self:_once(action, params)
      if r then return r end
      code, ec2code = cc, e
      if cc == "THROTTLED" then return nil, m end
      return false, m, cc
    end,
  }
  if root then return root end
  return nil, msg, c or code, ec2code
end

--- Adds EC2's list parameters: prefix.1, prefix.2, ... = values.
function M.list(params, prefix, values)
  for i, v in ipairs(values) do params[prefix .. "." .. i] = v end
  return params
end

--- Adds Filter.N.Name / Filter.N.Value.M from {{name, {values}}...}.
function M.filters(params, filters)
  for i, f in ipairs(filters) do
    params["Filter." .. i .. ".Name"] = f[1]
    for j, v in ipairs(f[2]) do params["Filter." .. i .. ".Value." .. j] = v end
  end
  return params
end

return M
