-- juju.cloud.sign.azure: Azure Storage request signing for the blob service:
-- SharedKey (the Authorization header) and a service SAS for one blob or
-- container (the query string of a URL fetchable without credentials).
-- Pure functions: the time is passed in, nothing reads the clock.
--
-- SharedKey string-to-sign (Microsoft, "Authorize with Shared Key", blob):
--   VERB \n Content-Encoding \n Content-Language \n Content-Length \n
--   Content-MD5 \n Content-Type \n Date \n If-Modified-Since \n If-Match \n
--   If-None-Match \n If-Unmodified-Since \n Range \n
--   CanonicalizedHeaders (x-ms-*: lower-cased, sorted, "name:value\n")
--   CanonicalizedResource ("/" account path, then "\nname:value" per query
--   parameter, names lower-cased and sorted, values decoded; before
--   x-ms-version 2009-09-19 only "?comp=value" followed the path).
--
-- The zero Content-Length rule: from x-ms-version 2015-02-21 a zero
-- Content-Length is signed as the empty string; up to 2014-02-14 real Azure
-- signs "0". The emulator (azurite 3.35.0) signs it empty for EVERY version,
-- so a client talking to azurite with an old x-ms-version must say
-- zero_length = "empty" (see ../shared/spec/toolchain.md).
--
-- The resource path is the request's path as sent (percent-encoded), so the
-- emulator's path-style URLs (http://host:port/devstoreaccount1/c/b) give
-- "/devstoreaccount1/devstoreaccount1/c/b" without a special case.
local crypto = require("juju.crypto")
local http = require("juju.lazy")("juju.http")
local mac = require("juju.mac")

local M = {}

--- The x-ms-version this project sends by default: after 2015-02-21, so real
--- Azure and azurite agree on the zero Content-Length rule; it has the SAS
--- layout with signedResource (sr) and blocks/blobs far above 4 MiB.
M.VERSION = "2019-12-12"

local WEEKDAYS = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" }
local MONTHS = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" }

--- RFC 1123 date ("Mon, 09 Sep 2011 23:36:00 GMT") of the epoch time t,
--- independent of the C locale.
function M.http_date(t)
  local d = os.date("!*t", math.floor(t))
  return string.format("%s, %02d %s %04d %02d:%02d:%02d GMT", WEEKDAYS[d.wday], d.day,
    MONTHS[d.month], d.year, d.hour, d.min, d.sec)
end

--- ISO 8601 UTC without fractions ("2011-09-09T23:36:00Z"), as SAS uses.
function M.iso8601(t)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t))
end

local function lower_headers(headers)
  local h = {}
  for k, v in pairs(headers or {}) do
    local name = k:lower()
    v = tostring(v)
    h[name] = h[name] and (h[name] .. "," .. v) or v
  end
  return h
end

-- The path and the raw query of url, both as sent.
local function split_url(url)
  local rest = url:match("^%a[%w+.-]*://[^/?#]*(.*)$") or url
  rest = rest:gsub("#.*$", "")
  local path, query = rest:match("^([^?]*)%??(.*)$")
  return path, query
end

--- CanonicalizedHeaders: every x-ms-* header, names lower-cased and sorted,
--- values with folded lines unfolded, runs of blanks made one space and the
--- ends trimmed, each as "name:value\n".
function M.canonical_headers(headers)
  local h = lower_headers(headers)
  local names = {}
  for name in pairs(h) do
    if name:sub(1, 5) == "x-ms-" then names[#names + 1] = name end
  end
  table.sort(names)
  local out = {}
  for i, name in ipairs(names) do
    local v = h[name]:gsub("\r?\n", " "):gsub("[ \t]+", " "):gsub("^ ", ""):gsub(" $", "")
    out[i] = name .. ":" .. v .. "\n"
  end
  return table.concat(out)
end

-- name -> sorted list of decoded values, from a raw query string.
local function query_params(query)
  local params = {}
  for part in (query or ""):gmatch("[^&]+") do
    local k, v = part:match("^([^=]*)=?(.*)$")
    k = http.url_unescape(k):lower()
    v = http.url_unescape(v)
    params[k] = params[k] or {}
    table.insert(params[k], v)
  end
  return params
end

--- CanonicalizedResource of url for account. version (the request's
--- x-ms-version) picks the layout: before 2009-09-19 only comp follows the path.
function M.canonical_resource(account, url, version)
  local path, query = split_url(url)
  if path == "" then path = "/" end
  local res = "/" .. account .. path
  local params = query_params(query)
  if version and version < "2009-09-19" then
    if params.comp then res = res .. "?comp=" .. params.comp[1] end
    return res
  end
  local names = {}
  for k in pairs(params) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do
    table.sort(params[k])
    res = res .. "\n" .. k .. ":" .. table.concat(params[k], ",")
  end
  return res
end

-- How a zero Content-Length is signed: "empty" or "zero" (a literal "0");
-- nil picks by version as real Azure does.
local function zero_length_text(rule, version)
  if rule == nil then rule = (version and version < "2015-02-21") and "zero" or "empty" end
  if rule == "empty" then return "" end
  if rule == "zero" then return "0" end
  error("azure sign: zero_length must be \"empty\" or \"zero\", got " .. tostring(rule), 3)
end

local STANDARD = { "content-encoding", "content-language", "content-length", "content-md5",
  "content-type", "date", "if-modified-since", "if-match", "if-none-match",
  "if-unmodified-since", "range" }

--- The SharedKey string-to-sign of req ({method, url, headers}) for account.
--- opts: zero_length ("empty" | "zero" | nil: by the request's x-ms-version).
function M.string_to_sign(req, account, opts)
  opts = opts or {}
  local h = lower_headers(req.headers)
  local version = h["x-ms-version"]
  local lines = { (req.method or "GET"):upper() }
  for _, name in ipairs(STANDARD) do
    local v = h[name] or ""
    if name == "content-length" and v == "0" then v = zero_length_text(opts.zero_length, version) end
    lines[#lines + 1] = v
  end
  return table.concat(lines, "\n") .. "\n" .. M.canonical_headers(req.headers) ..
    M.canonical_resource(account, req.url, version)
end

local function check_key(opts, what)
  if type(opts) ~= "table" or type(opts.account) ~= "string" or opts.account == "" then
    error(what .. ": account required", 3)
  end
  if type(opts.key) ~= "string" or opts.key == "" then error(what .. ": key (raw bytes) required", 3) end
end

--- Signs req in place ({method, url, headers, body}): adds x-ms-date (from
--- opts.now), x-ms-version (opts.version or M.VERSION, unless the request
--- has one), Content-Length for a string body when absent (a body_file's
--- length must already be in the headers) and Authorization. opts: account,
--- key (the DECODED account key), now (epoch seconds), version, zero_length.
--- Returns the string-to-sign (for diagnostics; it holds no secret).
function M.sign(req, opts)
  check_key(opts, "azure sign")
  if type(opts.now) ~= "number" then error("azure sign: now (epoch seconds) required", 2) end
  req.headers = req.headers or {}
  local h = lower_headers(req.headers)
  local function set(name, value)
    for k in pairs(req.headers) do
      if k:lower() == name:lower() then req.headers[k] = nil end
    end
    req.headers[name] = value
  end
  set("x-ms-date", M.http_date(opts.now))
  if not h["x-ms-version"] then set("x-ms-version", opts.version or M.VERSION) end
  if not h["content-length"] and type(req.body) == "string" and #req.body > 0 then
    set("Content-Length", tostring(#req.body))
  end
  local sts = M.string_to_sign(req, opts.account, opts)
  set("Authorization", "SharedKey " .. opts.account .. ":" ..
    crypto.base64(mac.hmac("sha256", opts.key, sts)))
  return sts
end

local SAS_FIELDS = { "sp", "st", "se", "resource", "si", "sip", "spr", "sv", "sr", "snapshot", "ses",
  "rscc", "rscd", "rsce", "rscl", "rsct" }

--- The service SAS string-to-sign for values v (sp, st, se, si, sip, spr,
--- sv, sr, snapshot, ses, rscc..rsct; strings) over "/blob/account/container[/blob]".
--- Layouts: 2015-04-05 (no sr/snapshot/ses), 2018-11-09 (adds sr, snapshot),
--- 2020-12-06 (adds ses). Earlier versions raise.
function M.sas_string_to_sign(v, account, container, blob)
  local version = v.sv or error("azure sas: sv required", 2)
  if version < "2015-04-05" then error("azure sas: version " .. version .. " is not supported (2015-04-05 or later)", 2) end
  local resource = "/blob/" .. account .. "/" .. container .. (blob and ("/" .. blob) or "")
  local lines = {}
  for _, f in ipairs(SAS_FIELDS) do
    local skip = ((f == "sr" or f == "snapshot") and version < "2018-11-09") or (f == "ses" and version < "2020-12-06")
    if not skip then lines[#lines + 1] = f == "resource" and resource or (v[f] or "") end
  end
  return table.concat(lines, "\n")
end

--- A service SAS query string for one blob (or the container when blob is
--- nil). opts: account, key (decoded), container, blob, expiry (epoch
--- seconds), start (epoch, optional), permissions (default "r"), version
--- (default M.VERSION), protocol (optional "https" / "https,http").
--- Returns the query ("sv=...&sr=b&sp=r&se=...&sig=...") and the string-to-sign.
function M.sas(opts)
  check_key(opts, "azure sas")
  if type(opts.container) ~= "string" or opts.container == "" then error("azure sas: container required", 2) end
  if type(opts.expiry) ~= "number" then error("azure sas: expiry (epoch seconds) required", 2) end
  local v = {
    sv = opts.version or M.VERSION, sr = opts.blob and "b" or "c", sp = opts.permissions or "r",
    st = opts.start and M.iso8601(opts.start) or nil, se = M.iso8601(opts.expiry), spr = opts.protocol,
  }
  local sts = M.sas_string_to_sign(v, opts.account, opts.container, opts.blob)
  local sig = crypto.base64(mac.hmac("sha256", opts.key, sts))
  local parts = {}
  for _, f in ipairs({ "sv", "sr", "sp", "st", "se", "spr" }) do
    if v[f] then parts[#parts + 1] = f .. "=" .. http.url_escape(v[f]) end
  end
  parts[#parts + 1] = "sig=" .. http.url_escape(sig)
  return table.concat(parts, "&"), sts
end

return M
