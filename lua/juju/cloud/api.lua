-- juju.cloud.api: the one HTTP client every cloud provider and object store
-- talks through. It builds the URL, signs every attempt afresh (sign is
-- called again before each retry), retries only what is safe, and maps a
-- failed response to a stable code with the cloud's own message kept.
--
--   local c = api.new{ name = "s3", endpoint = "https://s3.amazonaws.com",
--                      sign = function(req) ... end, errors = parse_fn }
--   local resp, msg, code, resp2 = c:request{ method = "PUT", path = "/b/k",
--       query = {acl = ""}, headers = {...}, body = data, idempotent = true }
--
-- req (given to sign): method, url (with the query string), path, query
-- (the table), headers (name -> value; sign adds to it), body (string or
-- nil), body_file (path or nil), body_sha256 (hex, when the caller knows it).
-- Responses: {status, headers (lower-case names), body, size}. Failures:
-- nil, message, code, response; codes NOT_FOUND, AUTH, THROTTLED, CONFLICT,
-- QUOTA, INVALID, HTTP (other statuses) and the transport's own
-- (HTTP_TIMEOUT, INTERRUPTED, ...).
local http = require("juju.http")

local M = {}

local Client = {}
Client.__index = Client

-- Status -> stable code, before the cloud's error parser refines it.
local STATUS_CODES = {
  [400] = "INVALID", [401] = "AUTH", [403] = "AUTH", [404] = "NOT_FOUND",
  [409] = "CONFLICT", [410] = "NOT_FOUND", [412] = "CONFLICT", [413] = "QUOTA",
  [429] = "THROTTLED", [503] = "THROTTLED",
}

function M.status_code(status)
  return STATUS_CODES[status] or "HTTP"
end

--- The query string of q ({name = value | true | ""}), names sorted, each
--- part RFC 3986-escaped. A value of true or "" gives a bare name.
function M.query_string(q)
  if not q then return "" end
  local names = {}
  for k in pairs(q) do names[#names + 1] = k end
  table.sort(names)
  local parts = {}
  for _, k in ipairs(names) do
    local v = q[k]
    if v == true or v == "" then
      parts[#parts + 1] = http.url_escape(k)
    else
      parts[#parts + 1] = http.url_escape(k) .. "=" .. http.url_escape(tostring(v))
    end
  end
  return table.concat(parts, "&")
end

--- opts: name (for messages), endpoint (base URL, no trailing slash needed),
--- sign (function(req)), errors (function(resp) -> code|nil, message|nil),
--- http (extra juju.http options: proxy, ca_file, timeout, ...), cancel,
--- attempts (default 3).
function M.new(opts)
  assert(type(opts) == "table" and type(opts.endpoint) == "string", "api.new: endpoint required")
  return setmetatable({
    name = opts.name or "api", endpoint = opts.endpoint:gsub("/+$", ""),
    sign = opts.sign, errors = opts.errors, http_opts = opts.http or {},
    cancel = opts.cancel, attempts = opts.attempts or 3,
  }, Client)
end

local function copy(t)
  local o = {}
  for k, v in pairs(t or {}) do o[k] = v end
  return o
end

-- One attempt: sign, send, classify. Returns resp or nil, msg, code, resp.
function Client:_attempt(r)
  local qs = M.query_string(r.query)
  local url = r.url or (self.endpoint .. (r.path or "/"))
  if qs ~= "" then url = url .. (url:find("?", 1, true) and "&" or "?") .. qs end
  local req = {
    method = r.method or "GET", url = url, path = r.path, query = r.query,
    headers = copy(r.headers), body = r.body, body_file = r.body_file,
    body_sha256 = r.body_sha256,
  }
  if self.sign then self.sign(req) end
  local o = copy(self.http_opts)
  o.url, o.method, o.headers = req.url, req.method, req.headers
  o.body, o.body_file, o.to_file = req.body, req.body_file, r.to_file
  o.retries = 0
  o.cancel = o.cancel or self.cancel
  local resp, msg, code, eresp = http.request(o)
  if resp then return resp end
  if not eresp then return nil, msg, code end
  local scode = M.status_code(eresp.status)
  local cmsg
  if self.errors then
    local c2, m2 = self.errors(eresp)
    scode, cmsg = c2 or scode, m2
  end
  local what = string.format("%s: %s %s: %d %s", self.name, req.method, http.safe_url(req.url),
    eresp.status, eresp.reason or "")
  if cmsg and cmsg ~= "" then what = what .. ": " .. cmsg end
  return nil, what, scode, eresp
end

--- Sends r (method, path or url, query, headers, body / body_file,
--- body_sha256, to_file, idempotent). Retries transport failures and
--- throttling/5xx answers only when r.idempotent.
function Client:request(r)
  local tries = r.idempotent and self.attempts or 1
  local resp, msg, code, eresp
  for _ = 1, tries do
    resp, msg, code, eresp = self:_attempt(r)
    if resp then return resp end
    if code == "INTERRUPTED" then break end
    local retryable = code == "THROTTLED" or (eresp and eresp.status >= 500) or
      (not eresp and code ~= "EINVAL")
    if not retryable then break end
  end
  return nil, msg, code, eresp
end

return M
