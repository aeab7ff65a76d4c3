-- juju.cloud.keystone: OpenStack identity (Keystone v2.0 and v3) for the
-- openstack provider and the Swift store. It authenticates, caches the token
-- until shortly before it expires, re-authenticates once on a 401, and finds
-- service endpoints in the catalog by type, region and endpoint type.
--
--   local ks = assert(keystone.new{ auth_url = "https://keystone:5000/v3",
--       username = u, password = p, tenant_name = "proj", domain_name = "default",
--       region = "RegionOne" })
--   local url = assert(ks:endpoint("object-store"))
--   local c = api.new{ name = "swift", endpoint = url, sign = function(req) ks:sign(req) end }
--   local resp, msg, code = ks:request(c, { method = "GET", path = "/c" })
--
-- The version comes from the auth URL's path (.../v2.0 or .../v3), as goose
-- and Juju chose it: v2 POSTs <auth-url>/tokens (passwordCredentials or
-- apiAccessKeyCredentials, tenantName); v3 POSTs <auth-url>/auth/tokens
-- (method password, user with domain, project scope with domain) and reads
-- the token from the X-Subject-Token header; auth_mode "legacy" (pre-Keystone
-- v1.0) GETs the auth URL with X-Auth-User/X-Auth-Key and takes X-Auth-Token,
-- X-Server-Management-Url (compute) and X-Storage-Url (object-store) from the
-- 204. Passwords, secret keys and
-- tokens never appear in a message.
local api = require("juju.cloud.api")
local http = require("juju.lazy")("juju.http")
local json = require("juju.json")
local sys = require("juju.sys")

local M = {}

local Keystone = {}
Keystone.__index = Keystone

-- Re-authenticate this many seconds before the token's expiry.
M.EXPIRY_MARGIN = 60

-- endpoint_type spellings (v2 names, v3 interfaces) -> v3 interface name.
local INTERFACES = {
  publicURL = "public", internalURL = "internal", adminURL = "admin",
  public = "public", internal = "internal", admin = "admin",
}

local function nonempty(s) return type(s) == "string" and s ~= "" end

--- Seconds since the epoch of an ISO 8601 UTC time as Keystone writes it
--- ("2026-12-03T07:49:09Z", "...09.123456Z", "...09+00:00", or with no zone,
--- taken as UTC). nil for anything else.
function M.parse_time(s)
  if type(s) ~= "string" then return nil end
  local y, mo, d, h, mi, sec, rest = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)[T ](%d%d):(%d%d):(%d%d)(.*)$")
  if not y then return nil end
  rest = rest:gsub("^%.%d+", "")
  local offset = 0
  if rest ~= "Z" and rest ~= "" then
    local sign, oh, om = rest:match("^([+-])(%d%d):?(%d%d)$")
    if not sign then return nil end
    offset = (tonumber(oh) * 3600 + tonumber(om) * 60) * (sign == "+" and 1 or -1)
  end
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  -- Days from the civil date (Howard Hinnant's algorithm), no local time zone.
  local yy = mo <= 2 and y - 1 or y
  local era = (yy >= 0 and yy or yy - 399) // 400
  local yoe = yy - era * 400
  local doy = (153 * (mo > 2 and mo - 3 or mo + 9) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  local days = era * 146097 + doe - 719468
  return days * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(sec) - offset
end

local MONTHS = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8, Sep = 9, Oct = 10,
                 Nov = 11, Dec = 12 }

--- Seconds since the epoch of an HTTP Date header (RFC 7231 IMF-fixdate,
--- "Thu, 03 Dec 2026 06:49:09 GMT"); nil for anything else.
function M.parse_http_date(s)
  if type(s) ~= "string" then return nil end
  local d, mon, y, hms = s:match("^%a+, (%d%d) (%a%a%a) (%d%d%d%d) (%d%d:%d%d:%d%d) GMT$")
  if not d or not MONTHS[mon] then return nil end
  return M.parse_time(string.format("%s-%02d-%sT%sZ", y, MONTHS[mon], d, hms))
end

-- The version from the auth URL's path: "2" (/v2.0), "3" (/v3) or nil.
local function version_of(path)
  path = (path or ""):gsub("/+$", "")
  if path:match("/v3$") then return "3" end
  if path:match("/v2%.0$") then return "2" end
end

-- Keystone's error body: {"error": {"message", "code", "title"}}.
local function keystone_errors(resp)
  local doc = json.decode(resp.body or "")
  if type(doc) == "table" and type(doc.error) == "table" and type(doc.error.message) == "string" then
    return nil, doc.error.message
  end
end

--- opts: auth_url, auth_mode ("userpass" default, or "keypair": v2 only),
--- username, password, access_key, secret_key, tenant_name (the project),
--- domain_name (v3: default for both) or user_domain_name /
--- project_domain_name, region, endpoint_type ("publicURL" default,
--- "internalURL", "adminURL", or the v3 names), http (juju.http options for
--- api.new: proxy, ca_file, timeout...), clock ({time=}), cancel, version
--- ("2"/"3", only when the path does not say).
--- Returns the client, or nil, message, "EINVAL" naming the config key.
function M.new(opts)
  if type(opts) ~= "table" then error("keystone.new: options table required", 2) end
  local function bad(msg) return nil, "keystone: " .. msg, "EINVAL" end
  if not nonempty(opts.auth_url) then return bad("auth-url is not set (e.g. https://keystone:5000/v3)") end
  local u = http.parse_url(opts.auth_url)
  if not u or not nonempty(u.scheme) or not nonempty(u.host) then
    return bad(string.format("auth-url %q must have a scheme and a host, e.g. https://keystone:5000/v2.0",
      http.safe_url(opts.auth_url)))
  end
  local mode = opts.auth_mode or "userpass"
  if mode ~= "userpass" and mode ~= "keypair" and mode ~= "legacy" then
    return bad(string.format("auth-mode %q is not supported (userpass, keypair or legacy)", tostring(mode)))
  end
  local version = version_of(u.path) or (opts.version and tostring(opts.version))
  if mode == "legacy" then
    version = "legacy"
  elseif version ~= "2" and version ~= "3" then
    return bad(string.format("auth-url %s must end with the Keystone version, /v2.0 or /v3", http.safe_url(opts.auth_url)))
  end
  if mode == "keypair" then
    if version == "3" then return bad("auth-mode keypair needs a Keystone v2.0 auth-url; Keystone v3 takes username and password") end
    if not nonempty(opts.access_key) or not nonempty(opts.secret_key) then
      return bad("auth-mode keypair needs access-key and secret-key")
    end
  elseif not nonempty(opts.username) or not nonempty(opts.password) then
    return bad("auth-mode " .. mode .. " needs username and password")
  end
  if mode ~= "legacy" and not nonempty(opts.tenant_name) then return bad("tenant-name (the OpenStack project name) is not set") end
  local etype = opts.endpoint_type or "publicURL"
  if not INTERFACES[etype] then
    return bad(string.format("endpoint type %q is not one of publicURL, internalURL, adminURL", tostring(etype)))
  end
  local auth_url = opts.auth_url:gsub("/+$", "")
  return setmetatable({
    auth_url = auth_url, version = version, mode = mode,
    creds = { username = opts.username, password = opts.password, access_key = opts.access_key,
              secret_key = opts.secret_key },
    tenant_name = opts.tenant_name,
    user_domain = opts.user_domain_name or opts.domain_name,
    project_domain = opts.project_domain_name or opts.domain_name,
    region = nonempty(opts.region) and opts.region or nil,
    interface = INTERFACES[etype],
    clock = opts.clock or { time = sys.time },
    client = api.new { name = "keystone", endpoint = auth_url, http = opts.http, cancel = opts.cancel,
                       errors = keystone_errors },
  }, Keystone)
end

-- The config keys of the credentials in use, for messages.
function Keystone:_credential_keys()
  if self.mode == "keypair" then return "access-key and secret-key" end
  return "username and password"
end

local function domain_ref(name)
  if nonempty(name) then return { name = name } end
  return { id = "default" }
end

function Keystone:_auth_request()
  if self.version == "3" then
    return "/auth/tokens", {
      auth = {
        identity = {
          methods = json.array { "password" },
          password = { user = { name = self.creds.username, password = self.creds.password,
                                domain = domain_ref(self.user_domain) } },
        },
        scope = { project = { name = self.tenant_name, domain = domain_ref(self.project_domain) } },
      },
    }
  end
  local auth = { tenantName = self.tenant_name }
  if self.mode == "keypair" then
    auth.apiAccessKeyCredentials = { accessKey = self.creds.access_key, secretKey = self.creds.secret_key }
  else
    auth.passwordCredentials = { username = self.creds.username, password = self.creds.password }
  end
  return "/tokens", { auth = auth }
end

-- Legacy auth: the token and the two service URLs from the 204's headers.
function Keystone:_authenticate_legacy(where)
  local resp, msg, code, eresp = self.client:request {
    method = "GET", url = self.auth_url, idempotent = true,
    headers = { ["X-Auth-User"] = self.creds.username, ["X-Auth-Key"] = self.creds.password },
  }
  if not resp then
    if eresp and (eresp.status == 401 or eresp.status == 403) then
      return nil, string.format("keystone: authentication failed (%s): check username and password", where), "AUTH", eresp
    end
    return nil, msg, code, eresp
  end
  local h = resp.headers
  local token = h["x-auth-token"]
  if not nonempty(token) then
    return nil, string.format("keystone: the answer from %s has no X-Auth-Token header", where), "HTTP"
  end
  local region = self.region or ""
  local function entry(t, url)
    if not nonempty(url) then return nil end
    return { type = t, name = t, endpoints = { { region = region, public = url, internal = url, admin = url } } }
  end
  local cat = {}
  cat[#cat + 1] = entry("compute", h["x-server-management-url"])
  cat[#cat + 1] = entry("object-store", h["x-storage-url"])
  self.token_id, self.expires, self.catalog_entries = token, math.huge, cat
  self.auth_count = (self.auth_count or 0) + 1
  return true
end

local function array(v) return type(v) == "table" and v or {} end
-- A catalog string, or nil (JSON null, numbers and objects are not names).
local function str(v) return type(v) == "string" and v or nil end

-- v2 serviceCatalog -> {type, name, endpoints = {{region, public, internal, admin}}}.
local function catalog_v2(cat)
  local out = {}
  for _, s in ipairs(array(cat)) do
    local eps = {}
    for _, e in ipairs(array(type(s) == "table" and (s.endpoints or s.Endpoints))) do
      if type(e) == "table" then
        eps[#eps + 1] = { region = str(e.region) or "", public = str(e.publicURL), internal = str(e.internalURL),
                          admin = str(e.adminURL) }
      end
    end
    if type(s) == "table" and str(s.type) then out[#out + 1] = { type = s.type, name = str(s.name), endpoints = eps } end
  end
  return out
end

-- v3 catalog (one entry per interface) -> the same shape, grouped by region.
local function catalog_v3(cat)
  local out = {}
  for _, s in ipairs(array(cat)) do
    local eps, by_region = {}, {}
    for _, e in ipairs(array(type(s) == "table" and s.endpoints)) do
      if type(e) == "table" then
        local region = str(e.region_id) or str(e.region) or ""
        local ep = by_region[region]
        if not ep then
          ep = { region = region }
          by_region[region] = ep
          eps[#eps + 1] = ep
        end
        local i = INTERFACES[str(e.interface) or ""]
        if i then ep[i] = str(e.url) end
      end
    end
    if type(s) == "table" and str(s.type) then out[#out + 1] = { type = s.type, name = str(s.name), endpoints = eps } end
  end
  return out
end

--- The normalised catalog of a token response's raw catalog (v2
--- access.serviceCatalog when version is "2", v3 token.catalog when "3").
function M.normalize_catalog(version, raw)
  if version == "3" then return catalog_v3(raw) end
  return catalog_v2(raw)
end

-- The token's expiry on our clock: its lifetime (expiry minus the issue
-- time, or minus the response's Date) from now, so a skew between our clock
-- (or a virtual one) and Keystone's neither keeps a dead token nor
-- re-authenticates on every call. A token without a readable expiry is used
-- until the cloud refuses it.
function Keystone:_local_expiry(expires, issued, date)
  local at = M.parse_time(expires)
  if not at then return math.huge end
  local server_now = M.parse_time(issued) or M.parse_http_date(date)
  if not server_now then return at end
  return self.clock.time() + (at - server_now)
end

--- Authenticates now (also when a token is cached). true, or nil, message,
--- code: AUTH for refused credentials, naming the config keys and the
--- auth-url; the transport's or the API's code otherwise.
function Keystone:authenticate()
  self.token_id, self.expires = nil, nil
  local where = string.format("%s at %s", self.version == "legacy" and "legacy auth" or
    ("Keystone v" .. (self.version == "2" and "2.0" or "3")), http.safe_url(self.auth_url))
  if self.version == "legacy" then return self:_authenticate_legacy(where) end
  local path, body = self:_auth_request()
  local text = assert(json.encode(body))
  local resp, msg, code, eresp = self.client:request {
    method = "POST", path = path, body = text, idempotent = true,
    headers = { ["Content-Type"] = "application/json", Accept = "application/json" },
  }
  if not resp then
    if eresp and (eresp.status == 401 or eresp.status == 403) then
      local cloud = select(2, keystone_errors(eresp))
      return nil, string.format(
        "keystone: authentication failed (%s%s): check %s, and tenant-name (the OpenStack project name)%s",
        where, cloud and (": " .. cloud) or "", self:_credential_keys(),
        self.version == "3" and ", domain-name" or ""), "AUTH", eresp
    end
    return nil, msg, code, eresp
  end
  local doc, jerr = json.decode(resp.body or "", "keystone token response")
  if type(doc) ~= "table" then
    return nil, string.format("keystone: malformed token response from %s: %s", where, tostring(jerr)), "HTTP"
  end
  local token, expires, issued, catalog
  if self.version == "3" then
    token = resp.headers["x-subject-token"]
    local t = type(doc.token) == "table" and doc.token or {}
    expires, issued = t.expires_at, t.issued_at
    catalog = catalog_v3(t.catalog)
    self.project_id = type(t.project) == "table" and t.project.id or nil
    self.user_id = type(t.user) == "table" and t.user.id or nil
  else
    local a = type(doc.access) == "table" and doc.access or {}
    local t = type(a.token) == "table" and a.token or {}
    token, expires, issued = t.id, t.expires, t.issued_at
    catalog = catalog_v2(a.serviceCatalog)
    self.project_id = type(t.tenant) == "table" and t.tenant.id or nil
    self.user_id = type(a.user) == "table" and a.user.id or nil
  end
  if not nonempty(token) then
    return nil, string.format("keystone: the token response from %s has no token (%s)", where,
      self.version == "3" and "X-Subject-Token header" or "access.token.id"), "HTTP"
  end
  self.token_id = token
  self.expires = self:_local_expiry(expires, issued, resp.headers.date)
  self.catalog_entries = catalog
  self.auth_count = (self.auth_count or 0) + 1
  return true
end

--- The current token, authenticating first when there is none or it expires
--- within EXPIRY_MARGIN seconds; or nil, message, code.
function Keystone:token()
  if not self.token_id or self.clock.time() >= self.expires - M.EXPIRY_MARGIN then
    local ok, msg, code = self:authenticate()
    if not ok then return nil, msg, code end
  end
  return self.token_id
end

--- Forgets the token (the next call authenticates again).
function Keystone:invalidate()
  self.token_id, self.expires = nil, nil
end

--- For api.new's sign: adds X-Auth-Token to req.headers (authenticating if
--- needed). When authentication fails the request goes without a token and
--- the failure is kept for request() to report.
function Keystone:sign(req)
  local t, msg, code = self:token()
  if t then
    req.headers["X-Auth-Token"] = t
    self.sign_error = nil
  else
    self.sign_error = { msg, code }
  end
end

--- Sends r through client (an api client whose sign calls ks:sign): makes
--- sure of a token first, and on a 401 re-authenticates once and resends;
--- a second 401 fails with AUTH. Returns as client:request.
function Keystone:request(client, r)
  local t, msg, code = self:token()
  if not t then return nil, msg, code end
  local resp, emsg, ecode, eresp = client:request(r)
  if resp or not (eresp and eresp.status == 401) then return resp, emsg, ecode, eresp end
  self:invalidate()
  t, msg, code = self:token()
  if not t then return nil, msg, code end
  resp, emsg, ecode, eresp = client:request(r)
  if resp then return resp end
  if eresp and eresp.status == 401 then
    return nil, emsg .. " (refused again after re-authenticating with " .. http.safe_url(self.auth_url) .. ")", "AUTH", eresp
  end
  return nil, emsg, ecode, eresp
end

--- The normalised catalog (authenticating if needed): a list of
--- {type, name, endpoints = {{region, public, internal, admin}}}.
function Keystone:catalog()
  if not self.catalog_entries then
    local ok, msg, code = self:token()
    if not ok then return nil, msg, code end
  end
  return self.catalog_entries
end

-- "compute (RegionOne), object-store (RegionOne, RegionTwo)".
local function describe_catalog(cat)
  local by_type, types = {}, {}
  for _, s in ipairs(cat) do
    local t = tostring(s.type)
    if not by_type[t] then
      by_type[t] = {}
      types[#types + 1] = t
    end
    for _, e in ipairs(s.endpoints) do by_type[t][#by_type[t] + 1] = e.region ~= "" and e.region or "no region" end
  end
  table.sort(types)
  local parts = {}
  for _, t in ipairs(types) do parts[#parts + 1] = t .. " (" .. table.concat(by_type[t], ", ") .. ")" end
  return #parts > 0 and table.concat(parts, ", ") or "nothing"
end

--- The URL of service_type's endpoint (no trailing slash) in the configured
--- region and endpoint type; opts may override region and endpoint_type. A
--- catalog region matches when the configured one equals it or ends with it
--- (az-1.region-a.geo-1 uses region-a.geo-1), as goose matched. Errors
--- (NOT_FOUND) name the service, the region and what the catalog has.
function Keystone:endpoint(service_type, opts)
  opts = opts or {}
  local cat, msg, code = self:catalog()
  if not cat then return nil, msg, code end
  local region = opts.region or self.region
  local interface = INTERFACES[opts.endpoint_type or ""] or self.interface
  local where = "the service catalog of " .. http.safe_url(self.auth_url)
  local eps = {}
  for _, s in ipairs(cat) do
    if s.type == service_type then
      for _, e in ipairs(s.endpoints) do eps[#eps + 1] = e end
    end
  end
  if #eps == 0 then
    return nil, string.format("keystone: %s has no %q service; it has: %s", where, service_type,
      describe_catalog(cat)), "NOT_FOUND"
  end
  local function regions()
    local r = {}
    for _, e in ipairs(eps) do r[#r + 1] = e.region ~= "" and e.region or "no region" end
    return table.concat(r, ", ")
  end
  local chosen
  if region then
    for _, e in ipairs(eps) do if e.region == region then chosen = e break end end
    if not chosen then
      for _, e in ipairs(eps) do
        if e.region ~= "" and #region > #e.region and region:sub(-#e.region) == e.region then chosen = e break end
      end
    end
    if not chosen then
      return nil, string.format("keystone: %s has no %q endpoint in region %q (check region); %s is in: %s; the catalog has: %s",
        where, service_type, region, service_type, regions(), describe_catalog(cat)), "NOT_FOUND"
    end
  elseif #eps == 1 then
    chosen = eps[1]
  else
    return nil, string.format("keystone: region is not set and %s offers %q in several regions: %s",
      where, service_type, regions()), "NOT_FOUND"
  end
  local url = chosen[interface]
  if not nonempty(url) then
    local have = {}
    for _, i in ipairs({ "public", "internal", "admin" }) do if nonempty(chosen[i]) then have[#have + 1] = i end end
    return nil, string.format("keystone: %s has no %s endpoint for %q in region %q (it has: %s)", where,
      interface, service_type, chosen.region, #have > 0 and table.concat(have, ", ") or "none"), "NOT_FOUND"
  end
  return (url:gsub("/+$", ""))
end

return M
