-- juju.cloud.api: the one HTTP client every cloud provider and object store
-- talks through. It builds the URL, signs every attempt and every redirect
-- afresh (sign is called again before each one), retries only what is safe,
-- honours throttling with capped, jittered backoff on an injected clock,
-- maps a failed response to a stable code with the cloud's own message
-- kept, and keeps credentials out of every message and log line.
--
--   local c = api.new{ name = "s3", endpoint = "https://s3.amazonaws.com",
--                      sign = function(req) ... end, errors = "s3" }
--   local resp, msg, code, resp2 = c:request{ method = "PUT", path = "/b/k",
--       query = {acl = ""}, headers = {...}, body = data, idempotent = true }
--
-- req (given to sign): method, url (with the query string), path, query
-- (the table), headers (name -> value; sign adds to it), body (string or
-- nil), body_file (path or nil), body_sha256 (hex, when the caller knows it),
-- attempt (1, 2, ...), redirects (how many were followed to get here).
-- Responses: {status, headers (lower-case names), body, size, body_sha256,
-- attempts}. Failures: nil, message, code, response; codes NOT_FOUND, AUTH,
-- THROTTLED, CONFLICT, QUOTA, INVALID, CLOCK (the cloud rejected the
-- request's time), HTTP (other statuses) and the transport's own
-- (HTTP_TIMEOUT, INTERRUPTED, EIO, ...). response.cloud_code is the cloud's
-- own error code when its error body named one.
--
-- Retries: a call is retried only when r.idempotent or r.client_token (a
-- call carrying a client token, such as EC2's ClientToken, which the cloud
-- de-duplicates). What is retried: THROTTLED answers (HTTP 429/503, EC2
-- RequestLimitExceeded/Throttling, ...), other 5xx, and transport failures
-- (connection, truncated response, an attempt's timeout). The pause is the
-- answer's Retry-After (seconds or an HTTP-date) when it has one, else
-- min(cap, base * 2^(n-1)) scaled by a random factor in [1 - jitter, 1].
-- No pause starts that would overrun the request's deadline.
local http = require("juju.lazy")("juju.http")
local json = require("juju.json")
local log = require("juju.log")
local xml = require("juju.lazy")("juju.xml")

local M = {}

local Client = {}
Client.__index = Client

M.DEFAULT_ATTEMPTS = 3
M.DEFAULT_DEADLINE = 300
M.BACKOFF_BASE = 1
M.BACKOFF_CAP = 20
M.BACKOFF_JITTER = 0.5
M.MAX_REDIRECTS = 5

-- Status -> stable code, when the cloud's error body does not say better.
local STATUS_CODES = {
  [400] = "INVALID", [401] = "AUTH", [403] = "AUTH", [404] = "NOT_FOUND",
  [409] = "CONFLICT", [410] = "NOT_FOUND", [412] = "CONFLICT", [413] = "QUOTA",
  [429] = "THROTTLED", [503] = "THROTTLED",
}

M.STABLE_CODES = { NOT_FOUND = true, AUTH = true, THROTTLED = true, CONFLICT = true, QUOTA = true,
                   INVALID = true, CLOCK = true, HTTP = true }

function M.status_code(status)
  return STATUS_CODES[status] or "HTTP"
end

-- The clouds' own error codes (EC2, S3, Azure, OpenStack, Joyent) -> stable
-- codes. Codes not listed go through the suffix rules of M.map_cloud_code.
local CLOUD_CODES = {
  NoSuchKey = "NOT_FOUND", NoSuchBucket = "NOT_FOUND", NoSuchUpload = "NOT_FOUND",
  NotFound = "NOT_FOUND", ResourceNotFound = "NOT_FOUND", BlobNotFound = "NOT_FOUND",
  ContainerNotFound = "NOT_FOUND", itemNotFound = "NOT_FOUND", NoSuchEntity = "NOT_FOUND",
  AuthFailure = "AUTH", InvalidAccessKeyId = "AUTH", SignatureDoesNotMatch = "AUTH",
  AccessDenied = "AUTH", UnauthorizedOperation = "AUTH", InvalidClientTokenId = "AUTH",
  AuthenticationFailed = "AUTH", InvalidCredentials = "AUTH", NotAuthorized = "AUTH",
  Unauthorized = "AUTH", unauthorized = "AUTH", Forbidden = "AUTH", forbidden = "AUTH",
  InvalidSecurity = "AUTH", MissingAuthenticationToken = "AUTH", AuthorizationFailure = "AUTH",
  InvalidAuthenticationInfo = "AUTH", InsufficientAccountPermissions = "AUTH",
  InvalidSignatureException = "AUTH", IncompleteSignature = "AUTH",
  RequestLimitExceeded = "THROTTLED", Throttling = "THROTTLED", ThrottlingException = "THROTTLED",
  SlowDown = "THROTTLED", ServerBusy = "THROTTLED", RequestThrottled = "THROTTLED",
  TooManyRequests = "THROTTLED", overLimit = "THROTTLED", RequestThrottledException = "THROTTLED",
  BucketAlreadyExists = "CONFLICT", BucketAlreadyOwnedByYou = "CONFLICT",
  ContainerAlreadyExists = "CONFLICT", BlobAlreadyExists = "CONFLICT", Conflict = "CONFLICT",
  conflictingRequest = "CONFLICT", OperationAborted = "CONFLICT", IncorrectState = "CONFLICT",
  IncorrectInstanceState = "CONFLICT", ConflictError = "CONFLICT", ResourceExists = "CONFLICT",
  InstanceLimitExceeded = "QUOTA", TooManyBuckets = "QUOTA", QuotaExceeded = "QUOTA",
  InsufficientInstanceCapacity = "QUOTA", InsufficientCapacity = "QUOTA",
  QuotaExceededError = "QUOTA", ResourceQuotaExceeded = "QUOTA",
  badRequest = "INVALID", BadRequest = "INVALID", MalformedXML = "INVALID",
  MissingParameter = "INVALID", ValidationError = "INVALID", MissingParameterError = "INVALID",
  MissingRequiredHeader = "INVALID", UnknownParameter = "INVALID",
  RequestTimeTooSkewed = "CLOCK", RequestExpired = "CLOCK", RequestTimeTooSkewedError = "CLOCK",
}

-- A cloud message that says the request's time is off (the signature is
-- then refused under an AUTH-looking code: S3's "Request has expired",
-- SigV4's "Signature expired: ... is now earlier than ...", Azure's
-- "Request date header too old"). An expired *token* is not the clock.
local CLOCK_PHRASES = { "signature expired", "request has expired", "request expired", "too old",
                        "skew", "not yet current", "request time" }
local function says_clock(msg)
  local m = (msg or ""):lower()
  for _, p in ipairs(CLOCK_PHRASES) do
    if m:find(p, 1, true) then return true end
  end
  return false
end

-- Codes under which clouds report a request time they refuse.
local CLOCK_PRONE = { SignatureDoesNotMatch = true, AuthFailure = true, InvalidSignatureException = true,
                      AuthenticationFailed = true, AccessDenied = true }

--- The stable code for a cloud error code (and its message), or nil.
function M.map_cloud_code(code, msg)
  if type(code) ~= "string" or code == "" then return nil end
  local stable = CLOUD_CODES[code]
  if not stable then
    if code:find("NotFound$") then stable = "NOT_FOUND"
    elseif code:find("%.Duplicate$") or code:find("AlreadyExists$") or code:find("InUse$") then stable = "CONFLICT"
    elseif code:find("LimitExceeded$") then stable = "QUOTA"
    elseif code:find("%.Malformed$") or code:find("^Invalid") then stable = "INVALID"
    end
  end
  if stable == "AUTH" and CLOCK_PRONE[code] and says_clock(msg) then stable = "CLOCK" end
  return stable
end

-- ---- error bodies ----------------------------------------------------------

local function trim(s)
  if type(s) ~= "string" then return nil end
  s = s:gsub("%s+", " "):match("^%s*(.-)%s*$")
  return s ~= "" and s or nil
end

local function snippet(body)
  local s = trim((body or ""):gsub("[%z\1-\31\127]", " "))
  if not s then return nil end
  return #s > 200 and s:sub(1, 200) .. "..." or s
end

local function child_text(e, name)
  for _, c in ipairs(e.children or {}) do
    if c.name == name then return trim(c.text) end
  end
end

local function find_element(e, name, depth)
  if e.name == name then return e end
  if depth > 4 then return nil end
  for _, c in ipairs(e.children or {}) do
    local f = find_element(c, name, depth + 1)
    if f then return f end
  end
end

--- EC2 (<Response><Errors><Error>), S3 and Azure (<Error>) error documents:
--- code, message; nil when body is not such a document.
function M.parse_xml_error(body)
  local root = xml.decode(body, "error body", { max_size = 1 << 20, max_depth = 32 })
  if type(root) ~= "table" then return nil end
  local e = find_element(root, "Error", 0)
  if not e then return nil end
  local code, msg = child_text(e, "Code"), child_text(e, "Message")
  if not code and not msg then return nil end
  return code, msg
end

--- OpenStack ({"itemNotFound": {"message": ..}}, {"error": {"message": ..,
--- "title": ..}}), Joyent ({"code": .., "message": ..}) and Azure ARM
--- ({"error": {"code": .., "message": ..}}) JSON errors: code, message.
function M.parse_json_error(body)
  local v = json.decode(body, "error body")
  if type(v) ~= "table" then return nil end
  if type(v.message) == "string" and (type(v.code) == "string" or v.code == nil) then
    return trim(v.code), trim(v.message)
  end
  if type(v.error) == "table" then
    local e = v.error
    local code = type(e.code) == "string" and e.code or (type(e.title) == "string" and e.title or nil)
    return trim(code), trim(type(e.message) == "string" and e.message or nil)
  end
  if type(v.error) == "string" then
    return nil, trim(v.error .. (type(v.error_description) == "string" and ": " .. v.error_description or ""))
  end
  for k, t in pairs(v) do
    if type(k) == "string" and type(t) == "table" and type(t.message) == "string" then
      return k, trim(t.message)
    end
  end
  return nil
end

--- MAAS and other plain-text errors: the text is the message.
function M.parse_text_error(body)
  if (body or ""):find("^%s*<") then -- an HTML page: its text
    body = body:gsub("<[^>]*>", " ")
  end
  return nil, snippet(body)
end

--- Any of the above, chosen by the body's first character: code, message,
--- and a note when the body claimed a format but did not parse.
function M.parse_error(resp)
  local body = resp and resp.body or ""
  body = body:gsub("^\239\187\191", "") -- a UTF-8 BOM (Azure sends one)
  local first = body:match("^%s*(.)")
  if not first then return nil, nil end
  if first == "<" then
    local code, msg = M.parse_xml_error(body)
    if code or msg then return code, msg end
    if body:find("^%s*<%?xml") or not body:lower():find("<html", 1, true) then
      return nil, "unparseable XML error body: " .. snippet(body)
    end
    return M.parse_text_error(body)
  elseif first == "{" or first == "[" then
    local code, msg = M.parse_json_error(body)
    if code or msg then return code, msg end
    return nil, "unparseable JSON error body: " .. snippet(body)
  end
  return M.parse_text_error(body)
end

-- The per-cloud parsers (errors = "ec2" ...): each reads its own dialect and
-- falls back to the others (a proxy or load balancer answers in its own).
M.errors = {
  auto = M.parse_error, ec2 = M.parse_error, s3 = M.parse_error, azure = M.parse_error,
  openstack = M.parse_error, joyent = M.parse_error, maas = M.parse_error,
}

--- The stable code and the cloud's code and message for a failed response.
--- parser: function(resp) -> code (cloud's or stable), message.
function M.classify(resp, parser)
  local ok, code, msg = pcall(parser or M.parse_error, resp)
  if not ok then code, msg = nil, nil end
  local stable
  if M.STABLE_CODES[code] then stable = code else stable = M.map_cloud_code(code, msg) end
  if not stable then stable = M.status_code(resp.status) end
  if stable == "AUTH" and says_clock(msg) then stable = "CLOCK" end
  return stable, (not M.STABLE_CODES[code]) and code or nil, msg
end

-- ---- redaction -----------------------------------------------------------------

-- Headers whose values are credentials.
local SECRET_HEADERS = {
  authorization = true, ["proxy-authorization"] = true, ["x-auth-token"] = true,
  ["x-subject-token"] = true, ["x-amz-security-token"] = true, ["x-auth-key"] = true,
  ["x-storage-token"] = true, cookie = true, ["set-cookie"] = true,
  ["x-ms-copy-source-authorization"] = true,
}
M.SECRET_HEADERS = SECRET_HEADERS

-- Query/attribute names whose values are signatures or credentials.
local SECRET_PARAMS = {
  sig = true, signature = true, ["x-amz-signature"] = true, ["x-amz-credential"] = true,
  ["x-amz-security-token"] = true, temp_url_sig = true, oauth_signature = true,
  oauth_token = true, password = true, token = true, access_token = true, secret = true,
}

local function redact_params(s)
  s = s:gsub("([%w_%-]+)=\"([^\"]*)\"", function(name, v)
    if SECRET_PARAMS[name:lower()] and v ~= "" then return name .. "=\"REDACTED\"" end
  end)
  return (s:gsub("([%w_%-]+)=([^&%s\"'<>,;]+)", function(name, v)
    if SECRET_PARAMS[name:lower()] and v ~= "REDACTED" and v ~= "\"REDACTED\"" then
      return name .. "=REDACTED"
    end
  end))
end

-- "Name: value" of a credential header, anywhere in s: the value is
-- replaced up to the end of its line (a value may hold commas and spaces),
-- or up to the next ", Name: " of a one-line header list.
local function redact_header_lines(s)
  for name in pairs(SECRET_HEADERS) do
    local lower, i = s:lower(), 1
    while true do
      local a, b = lower:find(name .. ":", i, true)
      if not a then break end
      if a == 1 or not lower:sub(a - 1, a - 1):match("[%w%-]") then
        local ws, val = s:sub(b + 1):match("^([ \t]*)([^\r\n]*)")
        local cut = val:find(", [%w%-]+: ") -- the next header of a one-line list
        if cut then val = val:sub(1, cut - 1) end
        if val ~= "" and val ~= "REDACTED" then
          s = s:sub(1, b) .. ws .. "REDACTED" .. s:sub(b + 1 + #ws + #val)
          lower = s:lower()
        end
      end
      i = b + 1
    end
  end
  return s
end

--- s with the client's secrets, credential header lines and signature
--- values replaced.
function Client:redact(s)
  s = tostring(s)
  if not self.all_secrets then
    local all = {}
    for _, v in ipairs(self.secrets) do all[#all + 1] = v end
    for _, v in ipairs(self.learned_list) do all[#all + 1] = v end
    table.sort(all, function(a, b) return #a > #b end)
    self.all_secrets = all
  end
  s = log.redact(self.all_secrets, s)
  s = redact_header_lines(s)
  return redact_params(s)
end

-- Remembers credential header values (a signer's Authorization, a token)
-- so an error body echoing them is redacted too. Bounded.
function Client:_learn(v)
  if #v < 6 or self.learned[v] then return end
  self.learned[v] = true
  local list = self.learned_list
  list[#list + 1] = v
  if #list > 64 then self.learned[table.remove(list, 1)] = nil end
  self.all_secrets = nil
end

function Client:_learn_secrets(headers)
  for k, v in pairs(headers or {}) do
    if type(k) == "string" and SECRET_HEADERS[k:lower()] and type(v) == "string" then
      self:_learn(v)
      -- Also the credential part of "Scheme credential".
      local cred = v:match("^%S+%s+(%S+)$")
      if cred then self:_learn(cred) end
    end
  end
end

-- ---- the client --------------------------------------------------------------

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

local function nonempty(v)
  if type(v) == "string" and v:match("%S") then return v end
  return nil
end

--- juju.http options from an environment config: http-proxy, https-proxy
--- and no-proxy (when any is set they are authoritative for the cloud API
--- calls; when none is, libcurl reads http_proxy, https_proxy and no_proxy
--- from the process environment), cloud-ca-bundle-path (CA certificates
--- trusted for the cloud's endpoints instead of the system's; else
--- $SSL_CERT_FILE when set), ssl-hostname-verification (false: no TLS
--- verification) and cloud-request-timeout (seconds: the deadline of each
--- attempt of a request; the client's own deadline still bounds the whole
--- request). getenv defaults to os.getenv.
function M.http_options(cfg, getenv)
  cfg = cfg or {}
  getenv = getenv or os.getenv
  local o = {}
  local hp, hsp, np = nonempty(cfg["http-proxy"]), nonempty(cfg["https-proxy"]), nonempty(cfg["no-proxy"])
  if hp or hsp or np then
    o.proxy = { http = hp, https = hsp, no_proxy = np }
  end
  o.ca_file = nonempty(cfg["cloud-ca-bundle-path"]) or nonempty(getenv("SSL_CERT_FILE"))
  if cfg["ssl-hostname-verification"] == false then o.insecure = true end
  local t = tonumber(cfg["cloud-request-timeout"])
  if t and t > 0 then o.deadline = t end
  return o
end

local function default_clock()
  local sys = require("juju.sys")
  return { monotonic = sys.monotonic, sleep = sys.sleep, time = sys.time }
end

--- opts: name (for messages), endpoint (base URL), sign (function(req)),
--- errors (function(resp) -> code|nil, message|nil, or the name of a
--- parser in M.errors; default M.parse_error), http (extra juju.http
--- options: proxy, ca_file, client_cert, timeout, ...; see http_options),
--- cancel, attempts (default 3), deadline (seconds per request, retries
--- included; default 300), clock ({monotonic=, sleep=, time=}; default
--- juju.sys), random (function() -> [0, 1)), backoff ({base=, cap=,
--- jitter=}), log (a logger with :debugf/:infof), secrets (strings never
--- to appear in messages or logs), credential_keys (the config keys of the
--- credentials, named when the cloud refuses them).
function M.new(opts)
  assert(type(opts) == "table" and type(opts.endpoint) == "string", "api.new: endpoint required")
  local errors = opts.errors
  if type(errors) == "string" then
    errors = M.errors[errors] or error("api.new: unknown error parser " .. errors, 2)
  end
  local secrets = {}
  for _, s in ipairs(opts.secrets or {}) do
    if type(s) == "string" and s ~= "" then secrets[#secrets + 1] = s end
  end
  table.sort(secrets, function(a, b) return #a > #b end)
  local backoff = opts.backoff or {}
  return setmetatable({
    name = opts.name or "api", endpoint = opts.endpoint:gsub("/+$", ""),
    sign = opts.sign, errors = errors, http_opts = opts.http or {},
    cancel = opts.cancel, attempts = opts.attempts or M.DEFAULT_ATTEMPTS,
    deadline = opts.deadline or M.DEFAULT_DEADLINE,
    clock = opts.clock or default_clock(), random = opts.random or math.random,
    backoff_base = backoff.base or M.BACKOFF_BASE, backoff_cap = backoff.cap or M.BACKOFF_CAP,
    backoff_jitter = backoff.jitter or M.BACKOFF_JITTER,
    log = opts.log, secrets = secrets, learned = {}, learned_list = {},
    credential_keys = opts.credential_keys,
  }, Client)
end

local function copy(t)
  local o = {}
  for k, v in pairs(t or {}) do o[k] = v end
  return o
end

function Client:_debugf(fmt, ...)
  if self.log and self.log.debugf then self.log:debugf("%s", self:redact(string.format(fmt, ...))) end
end

function Client:_infof(fmt, ...)
  if self.log and self.log.infof then self.log:infof("%s", self:redact(string.format(fmt, ...))) end
end

local function header_list(h)
  local names = {}
  for k in pairs(h or {}) do names[#names + 1] = k end
  table.sort(names)
  local out = {}
  for _, k in ipairs(names) do
    local v = h[k]
    if SECRET_HEADERS[tostring(k):lower()] then v = "REDACTED" end
    out[#out + 1] = string.format("%s: %s", k, tostring(v))
  end
  return table.concat(out, ", ")
end

--- Pause before attempt n + 1 with no Retry-After: capped exponential, jittered down.
function Client:backoff_delay(n)
  local d = math.min(self.backoff_cap, self.backoff_base * 2 ^ (n - 1))
  return d * (1 - self.backoff_jitter * self.random())
end

local MONTHS = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8, Sep = 9,
                 Oct = 10, Nov = 11, Dec = 12 }

-- Days since 1970-01-01 of a civil date (proleptic Gregorian).
local function days_from_civil(y, m, d)
  y = m <= 2 and y - 1 or y
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local doy = (153 * (m + (m > 2 and -3 or 9)) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

--- Seconds since the epoch of an RFC 7231 IMF-fixdate ("Sun, 06 Nov 1994
--- 08:49:37 GMT"), or nil.
function M.parse_http_date(s)
  local d, mon, y, hh, mm, ss = tostring(s):match("^%a+, (%d%d?) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT$")
  if not d or not MONTHS[mon] then return nil end
  return days_from_civil(tonumber(y), MONTHS[mon], tonumber(d)) * 86400 + tonumber(hh) * 3600
    + tonumber(mm) * 60 + tonumber(ss)
end

--- The pause a Retry-After value asks for (seconds, >= 0), or nil.
function Client:retry_after(value)
  if type(value) ~= "string" then return nil end
  local n = value:match("^%s*(%d+)%s*$")
  if n then return tonumber(n) end
  local at = M.parse_http_date(value:match("^%s*(.-)%s*$"))
  if not at then return nil end
  local now = self.clock.time and self.clock.time() or os.time()
  return math.max(0, at - now)
end

local function build_url(self, r)
  local qs = M.query_string(r.query)
  local url = r.url or (self.endpoint .. (r.path or "/"))
  if qs ~= "" then url = url .. (url:find("?", 1, true) and "&" or "?") .. qs end
  return url
end

function Client:_failure(req, eresp)
  local stable, cloud_code, cmsg = M.classify(eresp, self.errors)
  eresp.cloud_code = cloud_code
  local detail = string.format("%d %s", eresp.status, eresp.reason or "")
  detail = detail:gsub("%s+$", "")
  if cloud_code then detail = detail .. ": " .. cloud_code end
  if cmsg and cmsg ~= "" then detail = detail .. ": " .. cmsg end
  local where = string.format("%s %s", req.method, http.safe_url(req.url))
  local msg
  if stable == "CLOCK" then
    msg = string.format("%s: %s rejected the request's time (%s: %s); check this machine's clock: "
      .. "it must be within a few minutes of the real time (see date -u; enable NTP)",
      self.name, self.endpoint, where, detail)
  elseif stable == "AUTH" and (eresp.status == 401 or eresp.status == 403 or cloud_code) then
    local keys = self.credential_keys
    local what = keys and #keys > 0 and ("check the environment's " .. table.concat(keys, ", ")
      .. (#keys > 1 and " settings" or " setting")) or "check the environment's credentials"
    msg = string.format("%s: the credentials were refused by %s (%s: %s); %s",
      self.name, self.endpoint, where, detail, what)
  else
    msg = string.format("%s: %s: %s", self.name, where, detail)
  end
  return nil, self:redact(msg), stable, eresp
end

-- One attempt: sign, send, classify. Returns resp or nil, msg, code, resp.
function Client:_attempt(r, attempt, redirects, left)
  local req = {
    method = r.method or (r.multipart and "POST") or "GET", url = build_url(self, r), path = r.path,
    query = r.query, headers = copy(r.headers), body = r.body, body_file = r.body_file,
    body_sha256 = r.body_sha256, attempt = attempt, redirects = redirects,
  }
  if self.sign then self.sign(req) end
  self:_learn_secrets(req.headers)
  local o = copy(self.http_opts)
  o.url, o.method, o.headers = req.url, req.method, req.headers
  o.body, o.body_file, o.to_file, o.multipart = req.body, req.body_file, r.to_file, r.multipart
  o.on_data = r.on_data
  o.retries = 0
  o.follow_redirects = false
  o.cancel = o.cancel or self.cancel
  local cap = math.max(0.001, left)
  o.deadline = o.deadline and math.min(o.deadline, cap) or cap
  self:_debugf("%s: %s %s (attempt %d); headers: %s", self.name, req.method, req.url, attempt,
    header_list(req.headers))
  local resp, msg, code, eresp = http.request(o)
  if resp then
    self:_debugf("%s: %s %s: %d %s", self.name, req.method, req.url, resp.status, resp.reason or "")
    if r.body_sha256 and resp.body_sha256 and resp.body_sha256 ~= r.body_sha256:lower() then
      return nil, self:redact(string.format("%s: %s %s: the body sent (sha256 %s) is not the one signed "
        .. "(sha256 %s); was the file changed during the upload?", self.name, req.method, http.safe_url(req.url),
        resp.body_sha256, r.body_sha256)), "ECHECKSUM", resp
    end
    return resp, nil, nil, nil, req
  end
  if not eresp then
    self:_debugf("%s: %s %s: %s", self.name, req.method, req.url, msg)
    return nil, self:redact(self.name .. ": " .. msg), code
  end
  self:_debugf("%s: %s %s: %d %s", self.name, req.method, req.url, eresp.status, eresp.reason or "")
  local m2, c2
  resp, m2, c2, eresp = self:_failure(req, eresp)
  return resp, m2, c2, eresp
end

local REDIRECT = { [301] = true, [302] = true, [303] = true, [307] = true, [308] = true }

-- The request to send after a redirect to location (relative or absolute).
local function redirected(self, r, req, resp)
  local loc = resp.headers and resp.headers.location
  if not loc then return nil end
  if not loc:find("^%a[%w+.-]*://") then
    local base = req.url:match("^(%a[%w+.-]*://[^/?#]+)")
    if loc:sub(1, 1) ~= "/" then
      loc = req.url:gsub("[?#].*$", ""):gsub("[^/]*$", "") .. loc
    else
      loc = base .. loc
    end
  end
  if not loc:find("^https?://") then return nil end
  local n = copy(r)
  local parts = http.parse_url(loc)
  n.url = loc
  n.path = parts and parts.path or r.path
  n.query = nil
  n.headers = copy(r.headers)
  if resp.status == 303 then
    n.method, n.body, n.body_file, n.multipart, n.body_sha256 = "GET", nil, nil, nil, nil
  end
  self:_infof("%s: %s %s redirected (%d) to %s", self.name, req.method, req.url, resp.status, loc)
  return n
end

local function retryable(code, eresp)
  if code == "THROTTLED" then return true end
  if eresp then return eresp.status >= 500 end
  return code == "HTTP" or code == "HTTP_TIMEOUT"
end

--- Sends r (method, path or url, query, headers, body / body_file /
--- multipart, body_sha256, to_file, on_data, idempotent, client_token,
--- deadline). See the header for retries.
function Client:request(r)
  local safe = r.idempotent or r.client_token
  local tries = safe and self.attempts or 1
  local clock = self.clock
  local t0 = clock.monotonic()
  local deadline = r.deadline or self.deadline
  local attempt, redirects = 0, 0
  local cur = r
  while true do
    attempt = attempt + 1
    local left = deadline - (clock.monotonic() - t0)
    local resp, msg, code, eresp, req = self:_attempt(cur, attempt, redirects, left)
    if resp and REDIRECT[resp.status] then
      local n = redirects < M.MAX_REDIRECTS and redirected(self, cur, req, resp)
      if not n then
        return nil, self:redact(string.format("%s: %s %s: %d %s: %s", self.name, req.method,
          http.safe_url(req.url), resp.status, resp.reason or "", redirects < M.MAX_REDIRECTS
            and "a redirect without a usable Location" or "too many redirects")), "HTTP", resp
      end
      cur, redirects, attempt = n, redirects + 1, attempt - 1
    elseif resp then
      resp.attempts = attempt
      return resp
    else
      if code == "INTERRUPTED" or not retryable(code, eresp) then return nil, msg, code, eresp end
      -- The attempt ran until the request's deadline: nothing is left for another.
      if code == "HTTP_TIMEOUT" and msg:find("deadline", 1, true) then return nil, msg, code end
      if not safe then
        if code == "THROTTLED" then
          msg = msg .. "; not retried: the call is neither idempotent nor carries a client token"
        end
        return nil, msg, code, eresp
      end
      if attempt >= tries then
        return nil, string.format("%s (gave up after %d attempts)", msg, attempt), code, eresp
      end
      local ra = eresp and self:retry_after(eresp.headers and eresp.headers["retry-after"])
      local pause = ra or self:backoff_delay(attempt)
      left = deadline - (clock.monotonic() - t0)
      if pause >= left then
        return nil, string.format("%s (gave up after %d attempts: %s of %s would pass the request's "
          .. "deadline of %s s)", msg, attempt, ra and "the Retry-After" or "a pause",
          string.format("%.3g s", pause), deadline), code, eresp
      end
      self:_infof("%s; retrying in %.3g s (attempt %d of %d)", msg, pause, attempt + 1, tries)
      local ok, why = clock.sleep(pause, self.cancel)
      if ok == false then
        return nil, string.format("%s: interrupted while waiting to retry (%s)", self.name, tostring(why)),
          "INTERRUPTED"
      end
    end
  end
end

return M
