-- juju.cloud.sign.sigv2: AWS Signature Version 2 for the EC2 Query API
-- (HmacSHA256, SignatureVersion=2), as go-amz's aws.SignV2 does it. Pure
-- functions; the caller adds Timestamp (or Expires) to the parameters.
--
--   sign{method=, host=, path=, params={...}, access_key=, secret_key=}
--     -> params (AWSAccessKeyId, SignatureVersion, SignatureMethod and
--        Signature added), string_to_sign
--   signer{access_key=, secret_key=, clock=} -> function(req) for
--     juju.cloud.api (rewrites req.url with the signed query, Timestamp
--     added from the clock unless present)
local mac = require("juju.mac")
local crypto = require("juju.crypto")

local M = {}

-- RFC 3986 unreserved bytes stay; everything else is %XX (so a space is
-- %20, never '+').
local function encode(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end
M.encode = encode

local function decode(s)
  s = s:gsub("+", " ")
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

--- The canonical query of params ({name = value}): sorted by name,
--- names and values encoded.
function M.canonical_query(params)
  local names = {}
  for k in pairs(params) do names[#names + 1] = k end
  table.sort(names)
  local parts = {}
  for i, k in ipairs(names) do parts[i] = encode(k) .. "=" .. encode(params[k]) end
  return table.concat(parts, "&")
end

--- The canonical URI: '/' when empty, each segment encoded.
function M.canonical_uri(path)
  if path == nil or path == "" then return "/" end
  return (path:gsub("[^/]+", encode))
end

function M.string_to_sign(method, host, path, params)
  return table.concat({ method:upper(), host:lower(), M.canonical_uri(path), M.canonical_query(params) }, "\n")
end

--- Signs: returns a new params table with the SigV2 parameters and the
--- Signature, and the string to sign.
function M.sign(r)
  for _, k in ipairs({ "method", "host", "access_key", "secret_key" }) do
    if type(r[k]) ~= "string" or r[k] == "" then error("sigv2.sign: " .. k .. " required", 2) end
  end
  local p = {}
  for k, v in pairs(r.params or {}) do p[k] = tostring(v) end
  p.Signature = nil
  p.AWSAccessKeyId = r.access_key
  p.SignatureVersion = "2"
  p.SignatureMethod = "HmacSHA256"
  local sts = M.string_to_sign(r.method, r.host, r.path, p)
  p.Signature = crypto.base64(mac.hmac("sha256", r.secret_key, sts))
  return p, sts
end

--- The RFC 3339 UTC timestamp EC2 wants ("2012-01-01T00:00:00Z").
function M.timestamp(t)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t))
end

--- A sign function for juju.cloud.api: the query of req.url (GET) gets the
--- SigV2 parameters, a Timestamp at creds.clock() (default os.time) unless
--- it has one or an Expires, and the Signature.
function M.signer(creds)
  for _, k in ipairs({ "access_key", "secret_key" }) do
    if type(creds[k]) ~= "string" or creds[k] == "" then error("sigv2.signer: " .. k .. " required", 2) end
  end
  local clock = creds.clock or os.time
  return function(req)
    local scheme, authority, path, q = req.url:match("^(%a[%w+.-]*)://([^/?]*)([^?]*)%??(.*)$")
    if not scheme then error("sigv2: absolute URL required", 2) end
    authority = authority:gsub("^.*@", "")
    local params = {}
    for part in q:gmatch("[^&]+") do
      local k, v = part:match("^([^=]*)=(.*)$")
      if not k then k, v = part, "" end
      params[decode(k)] = decode(v)
    end
    if not params.Timestamp and not params.Expires then params.Timestamp = M.timestamp(clock()) end
    local signed = M.sign{ method = req.method or "GET", host = authority, path = path,
      params = params, access_key = creds.access_key, secret_key = creds.secret_key }
    req.url = scheme .. "://" .. authority .. (path == "" and "/" or path) .. "?" .. M.canonical_query(signed)
  end
end

return M
