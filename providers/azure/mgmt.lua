-- providers/azure/mgmt.lua: the Service Management API calls of the azure
-- provider (providers.md 7.2) through juju.cloud.api: TLS client
-- certificate (the management certificate, PEM in memory), x-ms-version
-- per call, XML bodies in the windowsazure namespace, and asynchronous
-- operations (202 + x-ms-request-id) polled on the provider's clock until
-- Succeeded or Failed.
local api = require("juju.cloud.api")
local cloud = require("juju.cloud.provider")
local xml = require("juju.lazy")("juju.xml")

local M = {}

M.NS = "http://schemas.microsoft.com/windowsazure"
M.VERSION = "2013-10-01"
M.OPERATION_VERSION = "2009-10-01"
M.OPERATION_TIMEOUT = 20 * 60 -- Juju: 20 minutes
M.THROTTLE_TIMEOUT = 300

local Client = {}
Client.__index = Client

--- opts: endpoint (management endpoint), subscription, certificate (PEM
--- with certificate and key), http (juju.http options), clock, log, ctx.
function M.new(opts)
  local http_opts = {}
  for k, v in pairs(opts.http or {}) do http_opts[k] = v end
  http_opts.client_cert = opts.certificate
  local self = setmetatable({ ctx = opts.ctx }, Client)
  self.api = api.new { name = "azure", endpoint = opts.endpoint:gsub("/+$", "") .. "/" .. opts.subscription,
    http = http_opts, clock = opts.clock, log = opts.log,
    credential_keys = { "management-certificate", "management-subscription-id" } }
  return self
end

--- The child element of e named name, and its text.
function M.child(e, name)
  for _, c in ipairs(e and e.children or {}) do if c.name == name then return c end end
end
function M.text(e, name)
  local c = M.child(e, name)
  return c and c.text and c.text:match("^%s*(.-)%s*$") or nil
end
function M.children(e, name)
  local out = {}
  for _, c in ipairs(e and e.children or {}) do if c.name == name then out[#out + 1] = c end end
  return out
end

--- One call: o = {body=, version=, ctype=, headers=, idempotent=}.
--- Returns the response or nil, message, code, response. A throttled
--- answer (503 ServerBusy: the API refuses the call before acting on it)
--- is waited out here for any call, a POST or PUT too; juju.cloud.api
--- retries the idempotent ones' other failures.
function Client:call(method, path, o)
  o = o or {}
  local headers = { ["x-ms-version"] = o.version or M.VERSION }
  if o.body then headers["Content-Type"] = o.ctype or "application/xml" end
  for k, v in pairs(o.headers or {}) do headers[k] = v end
  local req = { method = method, path = path, body = o.body, headers = headers,
    idempotent = o.idempotent or method == "GET" or method == "DELETE" }
  if req.idempotent or not self.ctx then return self.api:request(req) end
  local last_code, last_resp
  local got, msg, code = cloud.poll({ ctx = self.ctx }, { what = "for azure " .. method .. " " .. path
    .. " (server busy)", timeout = M.THROTTLE_TIMEOUT, interval = 1, max_interval = 30,
    poll = function()
      local resp, m, c, r = self.api:request(req)
      if resp then return resp end
      last_code, last_resp = c, r
      if c == "THROTTLED" then return nil, m end
      return false, m, c
    end })
  if got then return got end
  return nil, msg, code or last_code, last_resp
end

--- A GET whose answer is an XML document: the root element.
function Client:get_xml(path, o)
  local resp, msg, code, eresp = self:call("GET", path, o)
  if not resp then return nil, msg, code, eresp end
  local root, xerr = xml.decode(resp.body or "", "azure " .. path)
  if not root then return nil, xerr, "INVALID" end
  return root, resp
end

--- Waits for an asynchronous operation (x-ms-request-id of a 202) to end:
--- true, or nil, message (Operation/Error/Code: Message), code.
function Client:wait_operation(env, id, what)
  return cloud.poll(env, { what = what, timeout = M.OPERATION_TIMEOUT, interval = 1, max_interval = 10,
    poll = function()
      local op, msg, code = self:get_xml("/operations/" .. id, { version = M.OPERATION_VERSION })
      if not op then
        -- as gwacl: a failed status read ends the wait (juju.cloud.api
        -- already retried it); only "server busy" is waited out
        if code == "THROTTLED" then return nil, msg end
        return false, msg, code
      end
      local status = M.text(op, "Status")
      if status == "Succeeded" then return true end
      if status == "Failed" then
        local e = M.child(op, "Error")
        return false, string.format("%s (%s, HTTP %s)", M.text(e, "Message") or "operation failed",
          M.text(e, "Code") or "no code", M.text(op, "HttpStatusCode") or "?"), "ASYNC"
      end
      return nil, "operation " .. id .. " is " .. tostring(status)
    end })
end

--- call + wait_operation when the answer is 202.
function Client:call_async(env, method, path, o, what)
  local resp, msg, code, eresp = self:call(method, path, o)
  if not resp then return nil, msg, code, eresp end
  if resp.status == 202 then
    local id = resp.headers["x-ms-request-id"]
    if not id then return nil, what .. ": 202 without x-ms-request-id", "INVALID" end
    local ok, werr, wcode = self:wait_operation(env, id, what)
    if not ok then return nil, werr, wcode end
  end
  return resp
end

--- An XML document in the windowsazure namespace from a list of
--- {name, text} / {name, {children}} pairs (order kept: the API is
--- order-sensitive).
function M.doc(root, items)
  local function build(list)
    local out = {}
    for _, it in ipairs(list) do
      local name, v = it[1], it[2]
      if v ~= nil then
        if type(v) == "table" then
          out[#out + 1] = { name = name, children = build(v) }
        else
          out[#out + 1] = { name = name, text = tostring(v) }
        end
      end
    end
    return out
  end
  return assert(xml.encode({ name = root, attrs = { xmlns = M.NS }, children = build(items) }, { declaration = false }))
end

return M
