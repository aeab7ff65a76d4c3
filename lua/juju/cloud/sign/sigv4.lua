-- juju.cloud.sign.sigv4: AWS Signature Version 4 (EC2 query API, S3),
-- header signing and presigned query URLs. Pure functions: the time is
-- passed in (epoch seconds or "YYYYMMDDTHHMMSSZ"); nothing here reads a
-- clock, a file or the network. The steps are AWS's own:
--
--   canonical_request(r [, opts]) -> creq, signed_headers
--   string_to_sign(amz_date, scope, creq) -> sts
--   signing_key(secret, date8, region, service) -> raw key
--   sign(r, creds) -> r (Authorization, X-Amz-Date, Host, and for S3
--                        x-amz-content-sha256 added to r.headers)
--   presign(creds) -> URL with X-Amz-* query parameters and X-Amz-Signature
--   signer(creds) -> function(req) for juju.cloud.api (creds.clock gives
--                    the time of each attempt)
--
-- r: method, url (absolute) or path + query (a raw query string or a table
-- {name = value|true}), headers (name -> value, or a list of {name, value}
-- when a name repeats), body, payload_hash (hex sha256 or
-- "UNSIGNED-PAYLOAD"). creds: access_key, secret_key, region, service,
-- time, token (session token, optional).
local mac = require("juju.mac")
local crypto = require("juju.crypto")

local M = {}

M.ALGORITHM = "AWS4-HMAC-SHA256"
M.UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
M.EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

--- RFC 3986 encoding of every byte outside the unreserved set; with
--- keep_slash, '/' stays as it is (paths).
function M.uri_encode(s, keep_slash)
  local pattern = keep_slash and "[^%w%-%._~/]" or "[^%w%-%._~]"
  return (s:gsub(pattern, function(c) return string.format("%%%02X", c:byte()) end))
end

-- Percent-decoding; a '%' not followed by two hex digits stays literal.
-- In queries '+' is a space (form encoding, as AWS and botocore read it).
local function uri_decode(s, plus_is_space)
  if plus_is_space then s = s:gsub("+", " ") end
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

--- The amz date ("20150830T123600Z") of t: epoch seconds or such a string.
function M.amz_date(t)
  if type(t) == "string" then
    if not t:match("^%d%d%d%d%d%d%d%dT%d%d%d%d%d%dZ$") then
      error("sigv4: bad time " .. string.format("%q", t) .. " (want YYYYMMDDTHHMMSSZ)", 2)
    end
    return t
  end
  if math.type(t) ~= "integer" and type(t) ~= "number" then error("sigv4: time required", 2) end
  return os.date("!%Y%m%dT%H%M%SZ", math.floor(t))
end

-- RFC 3986 remove_dot_segments plus collapsing empty segments (AWS's path
-- normalisation for every service except S3).
local function normalize_path(path)
  local out = {}
  local trailing = false
  for seg in path:gmatch("[^/]*") do
    trailing = false
    if seg == "" then
      trailing = true
    elseif seg == "." then
      trailing = true
    elseif seg == ".." then
      out[#out] = nil
      trailing = true
    else
      out[#out + 1] = seg
    end
  end
  local p = "/" .. table.concat(out, "/")
  if trailing and #out > 0 then p = p .. "/" end
  return p
end

--- The canonical URI of a path (raw or percent-encoded): decoded, then each
--- segment encoded once. normalize (every service but S3) removes dot
--- segments and empty segments first.
function M.canonical_uri(path, normalize)
  if path == nil or path == "" then path = "/" end
  local decoded = uri_decode(path, false)
  if normalize then decoded = normalize_path(decoded) end
  return M.uri_encode(decoded, true)
end

-- The query as a list of {name, value} decoded pairs.
local function query_pairs(q)
  local list = {}
  if type(q) == "string" then
    for part in q:gmatch("[^&]+") do
      local k, v = part:match("^([^=]*)=(.*)$")
      if not k then k, v = part, "" end
      list[#list + 1] = { uri_decode(k, true), uri_decode(v, true) }
    end
  elseif type(q) == "table" then
    if q[1] ~= nil then
      for _, p in ipairs(q) do list[#list + 1] = { p[1], p[2] } end
    else
      for k, v in pairs(q) do
        list[#list + 1] = { k, (v == true) and "" or tostring(v) }
      end
    end
  end
  return list
end

--- The canonical query string: every name and value encoded, sorted by
--- name, then value.
function M.canonical_query(q)
  local enc = {}
  for _, p in ipairs(query_pairs(q)) do
    enc[#enc + 1] = { M.uri_encode(p[1]), M.uri_encode(p[2]) }
  end
  table.sort(enc, function(a, b)
    if a[1] ~= b[1] then return a[1] < b[1] end
    return a[2] < b[2]
  end)
  local parts = {}
  for i, p in ipairs(enc) do parts[i] = p[1] .. "=" .. p[2] end
  return table.concat(parts, "&")
end

local function header_list(h)
  local list = {}
  if h == nil then return list end
  if h[1] ~= nil then
    for _, p in ipairs(h) do list[#list + 1] = { p[1], p[2] } end
  else
    for k, v in pairs(h) do list[#list + 1] = { k, v } end
  end
  return list
end

local function trim_value(v)
  return (tostring(v):gsub("^[ \t]+", ""):gsub("[ \t]+$", ""):gsub("[ \t]+", " "))
end

--- Canonical headers and the signed-headers list of headers (map or list
--- of pairs). Repeated names join their values with ',' in the order given
--- (sorted instead with opts.sort_values, the 2011 rule). opts.only (a set
--- of lower-case names) limits the signed headers.
function M.canonical_headers(headers, opts)
  opts = opts or {}
  local by_name, names = {}, {}
  for _, p in ipairs(header_list(headers)) do
    local n = p[1]:lower()
    if not opts.only or opts.only[n] then
      if not by_name[n] then
        by_name[n] = {}
        names[#names + 1] = n
      end
      local vals = by_name[n]
      vals[#vals + 1] = trim_value(p[2])
    end
  end
  table.sort(names)
  local lines = {}
  for i, n in ipairs(names) do
    local vals = by_name[n]
    if opts.sort_values then table.sort(vals) end
    lines[i] = n .. ":" .. table.concat(vals, ",") .. "\n"
  end
  return table.concat(lines), table.concat(names, ";")
end

-- path and raw query of an absolute URL or a path.
local function split_url(url)
  local rest = url:gsub("#.*$", "")
  local authority, path = rest:match("^%a[%w+.-]*://([^/?]*)(.*)$")
  if not authority then path = rest end
  local p, q = path:match("^([^?]*)%?(.*)$")
  if not p then p, q = path, nil end
  if p == "" then p = "/" end
  return authority and authority:gsub("^.*@", ""), p, q
end

-- The Host header value of an authority (host[:port]), default ports dropped.
local function host_of(url, authority)
  local scheme = url:match("^(%a[%w+.-]*)://") or "http"
  scheme = scheme:lower()
  local a = authority:lower()
  if (scheme == "http" and a:match(":80$")) or (scheme == "https" and a:match(":443$")) then
    a = a:gsub(":%d+$", "")
  end
  return a
end

--- The canonical request of r (see the header). opts: normalize (path
--- normalisation; default true unless opts.service == "s3"), sort_values,
--- only (signed header set). Returns creq, signed_headers.
function M.canonical_request(r, opts)
  opts = opts or {}
  local path, query = r.path, r.query
  if r.url then
    local _, p, q = split_url(r.url)
    path = p
    query = q
  end
  local normalize = opts.normalize
  if normalize == nil then normalize = opts.service ~= "s3" end
  local ch, signed = M.canonical_headers(r.headers, opts)
  local payload = r.payload_hash or crypto.sha256(r.body or "")
  local creq = table.concat({
    (r.method or "GET"):upper(),
    M.canonical_uri(path, normalize),
    M.canonical_query(query),
    ch,
    signed,
    payload,
  }, "\n")
  return creq, signed
end

--- The credential scope: date8/region/service/aws4_request.
function M.scope(amz_date, region, service)
  return amz_date:sub(1, 8) .. "/" .. region .. "/" .. service .. "/aws4_request"
end

function M.string_to_sign(amz_date, scope, creq)
  return table.concat({ M.ALGORITHM, amz_date, scope, crypto.sha256(creq) }, "\n")
end

--- kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" .. secret, date8), region), service), "aws4_request").
function M.signing_key(secret, date8, region, service)
  local k = mac.hmac("sha256", "AWS4" .. secret, date8)
  k = mac.hmac("sha256", k, region)
  k = mac.hmac("sha256", k, service)
  return mac.hmac("sha256", k, "aws4_request")
end

function M.signature(secret, amz_date, region, service, sts)
  local key = M.signing_key(secret, amz_date:sub(1, 8), region, service)
  return crypto.hex(mac.hmac("sha256", key, sts))
end

local function check_creds(c, what)
  for _, k in ipairs({ "access_key", "secret_key", "region", "service" }) do
    if type(c[k]) ~= "string" or c[k] == "" then
      error(string.format("sigv4.%s: %s required", what, k), 3)
    end
  end
end

local function find_header(headers, name)
  for _, p in ipairs(header_list(headers)) do
    if p[1]:lower() == name then return p[2] end
  end
end

local function set_header(headers, name, value)
  if headers[1] ~= nil then headers[#headers + 1] = { name, value } else headers[name] = value end
end

--- Signs r in place (header signing) and returns r plus the intermediate
--- values {creq, sts, signature, authorization}. creds: access_key,
--- secret_key, region, service, time (required), token; opts as
--- canonical_request plus add_date (default true: X-Amz-Date is added
--- unless present; false signs the request's own Date header, the 2011
--- suite's form). For S3 (service "s3") the payload hash is also sent as
--- x-amz-content-sha256 (UNSIGNED-PAYLOAD when r.payload_hash says so).
function M.sign(r, creds, opts)
  check_creds(creds, "sign")
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  o.service = o.service or creds.service
  opts = o
  r.headers = r.headers or {}
  local amz_date
  local existing = find_header(r.headers, "x-amz-date")
  if existing then
    amz_date = M.amz_date(trim_value(existing))
  else
    if creds.time == nil then error("sigv4.sign: time required", 2) end
    amz_date = M.amz_date(creds.time)
    if opts.add_date ~= false then set_header(r.headers, "X-Amz-Date", amz_date) end
  end
  if r.url and not find_header(r.headers, "host") then
    local authority = split_url(r.url)
    if authority then set_header(r.headers, "Host", host_of(r.url, authority)) end
  end
  if creds.token and not find_header(r.headers, "x-amz-security-token") then
    set_header(r.headers, "X-Amz-Security-Token", creds.token)
  end
  r.payload_hash = r.payload_hash or crypto.sha256(r.body or "")
  if opts.service == "s3" and not find_header(r.headers, "x-amz-content-sha256") then
    set_header(r.headers, "x-amz-content-sha256", r.payload_hash)
  end
  local creq, signed = M.canonical_request(r, opts)
  local scope = M.scope(amz_date, creds.region, creds.service)
  local sts = M.string_to_sign(amz_date, scope, creq)
  local sig = M.signature(creds.secret_key, amz_date, creds.region, creds.service, sts)
  local authz = string.format("%s Credential=%s/%s, SignedHeaders=%s, Signature=%s",
    M.ALGORITHM, creds.access_key, scope, signed, sig)
  set_header(r.headers, "Authorization", authz)
  return r, { creq = creq, sts = sts, signature = sig, authorization = authz, signed_headers = signed }
end

--- A presigned URL. creds: access_key, secret_key, region, service, time,
--- token, method (GET), url (absolute), expires (seconds, 1..604800),
--- payload_hash (default UNSIGNED-PAYLOAD for S3, the empty body's hash
--- otherwise). Only host is signed. Returns url, {creq, sts, signature}.
function M.presign(creds)
  check_creds(creds, "presign")
  if type(creds.url) ~= "string" then error("sigv4.presign: url required", 2) end
  local expires = math.tointeger(creds.expires)
  if not expires or expires < 1 or expires > 604800 then
    error("sigv4.presign: expires must be 1..604800 seconds", 2)
  end
  if creds.time == nil then error("sigv4.presign: time required", 2) end
  local amz_date = M.amz_date(creds.time)
  local authority, path, rawq = split_url(creds.url)
  if not authority then error("sigv4.presign: url must be absolute", 2) end
  local scope = M.scope(amz_date, creds.region, creds.service)
  local q = query_pairs(rawq or "")
  local function add(k, v) q[#q + 1] = { k, v } end
  add("X-Amz-Algorithm", M.ALGORITHM)
  add("X-Amz-Credential", creds.access_key .. "/" .. scope)
  add("X-Amz-Date", amz_date)
  add("X-Amz-Expires", tostring(expires))
  add("X-Amz-SignedHeaders", "host")
  if creds.token then add("X-Amz-Security-Token", creds.token) end
  local payload = creds.payload_hash or
    (creds.service == "s3" and M.UNSIGNED_PAYLOAD or M.EMPTY_SHA256)
  local host = host_of(creds.url, authority)
  local creq = M.canonical_request({
    method = creds.method or "GET", path = path, query = q,
    headers = { host = host }, payload_hash = payload,
  }, { service = creds.service })
  local sts = M.string_to_sign(amz_date, scope, creq)
  local sig = M.signature(creds.secret_key, amz_date, creds.region, creds.service, sts)
  add("X-Amz-Signature", sig)
  local base = creds.url:gsub("#.*$", ""):gsub("%?.*$", "")
  return base .. "?" .. M.canonical_query(q), { creq = creq, sts = sts, signature = sig }
end

--- A sign function for juju.cloud.api: signs each attempt at creds.clock()
--- (default os.time). The payload hash is req.body_sha256, else the sha256
--- of req.body; a body_file without body_sha256 is sent UNSIGNED-PAYLOAD
--- (S3 only; other services need the hash).
function M.signer(creds)
  check_creds(creds, "signer")
  local clock = creds.clock or os.time
  return function(req)
    local payload = req.body_sha256
    if not payload then
      if req.body_file then
        if creds.service ~= "s3" then
          error("sigv4.signer: body_file needs body_sha256 for service " .. creds.service, 2)
        end
        payload = M.UNSIGNED_PAYLOAD
      else
        payload = crypto.sha256(req.body or "")
      end
    end
    local r = { method = req.method, url = req.url, headers = req.headers, payload_hash = payload }
    M.sign(r, {
      access_key = creds.access_key, secret_key = creds.secret_key, region = creds.region,
      service = creds.service, token = creds.token, time = clock(),
    })
  end
end

return M
