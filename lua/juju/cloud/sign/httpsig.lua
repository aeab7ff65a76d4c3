-- juju.cloud.sign.httpsig: Joyent's HTTP Signature (draft-cavage, as
-- CloudAPI and Manta use it) and Manta's signed URLs, signing with the
-- user's own SSH private key (a juju.sign.Key). Pure functions: the time is
-- passed in, nothing reads a clock.
--
--   local hs = require("juju.cloud.sign.httpsig")
--   hs.sign(req, { key = key, key_id = hs.key_id("user", key:fingerprint_md5()),
--                  now = os.time() })
--   -- req.headers.Date and req.headers.Authorization are set:
--   -- Signature keyId="/user/keys/aa:bb:..",algorithm="rsa-sha256",signature="..."
--
-- Algorithms: rsa-sha1/-sha256/-sha512, ecdsa-sha256/-sha384/-sha512 (DER
-- signatures), ed25519-sha512 (the key signs the string itself). The default
-- follows the key: rsa-sha256, ecdsa by curve (P-256 sha256, P-384 sha384,
-- P-521 sha512), ed25519-sha512. gosign's hash quirks (rsa-sha224 signing
-- with SHA-256, rsa-sha384 with SHA-512) are not reproduced: those names are
-- refused.
local crypto = require("juju.crypto")
local http = require("juju.lazy")("juju.http")

local M = {}

local HASHES = {
  ["rsa-sha1"] = "sha1", ["rsa-sha256"] = "sha256", ["rsa-sha512"] = "sha512",
  ["ecdsa-sha256"] = "sha256", ["ecdsa-sha384"] = "sha384", ["ecdsa-sha512"] = "sha512",
  ["ed25519-sha512"] = "sha512",
}

local CURVE_ALGORITHMS = { ["P-256"] = "ecdsa-sha256", ["P-384"] = "ecdsa-sha384", ["P-521"] = "ecdsa-sha512" }

local DAYS = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" }
local MONTHS = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" }

--- The RFC 1123 date of unix time t ("Mon, 14 Oct 2013 18:49:29 GMT"),
--- independent of the locale.
function M.http_date(t)
  local d = os.date("!*t", math.floor(t))
  return string.format("%s, %02d %s %04d %02d:%02d:%02d GMT", DAYS[d.wday], d.day,
    MONTHS[d.month], d.year, d.hour, d.min, d.sec)
end

--- "/<user>/keys/<fingerprint>": the keyId Joyent expects (the fingerprint
--- is the key's MD5 one, "aa:bb:...", as `Key:fingerprint_md5()` gives).
function M.key_id(user, fingerprint)
  return "/" .. user .. "/keys/" .. fingerprint
end

--- The algorithm name this key signs with by default.
function M.default_algorithm(key)
  local info = key:info()
  if info.type == "rsa" then return "rsa-sha256" end
  if info.type == "ed25519" then return "ed25519-sha512" end
  local alg = CURVE_ALGORITHMS[info.curve]
  if not alg then error("httpsig: no algorithm for curve " .. tostring(info.curve), 2) end
  return alg
end

-- The key type an algorithm needs ("rsa", "ecdsa", "ed25519").
local function check_algorithm(key, algorithm, level)
  local hash = HASHES[algorithm]
  if not hash then error("httpsig: unknown algorithm " .. tostring(algorithm), level + 1) end
  local want = algorithm:match("^(%w+)%-")
  local have = key:info().type
  if want ~= have then
    error(string.format("httpsig: algorithm %s needs an %s key, not %s", algorithm, want, have), level + 1)
  end
  return hash
end

--- The base64 signature of s with key under algorithm.
function M.sign_string(key, algorithm, s)
  local hash = check_algorithm(key, algorithm, 2)
  return crypto.base64(key:sign(s, { hash = hash }))
end

local function header_value(headers, name)
  local lname = name:lower()
  for k, v in pairs(headers) do
    if type(k) == "string" and k:lower() == lname then return tostring(v) end
  end
end

-- "host[:port]" and "/path?query" of an absolute URL.
local function split_url(url)
  local authority, target = url:match("^%a[%w+.-]*://([^/?#]*)([^#]*)")
  if not authority then error("httpsig: not an absolute URL: " .. tostring(url), 3) end
  authority = authority:gsub("^.*@", "")
  if target == "" then target = "/" elseif target:sub(1, 1) == "?" then target = "/" .. target end
  return authority, target
end

--- The string a request's signature covers: for each name in headers (in
--- order), "name: value" joined by "\n"; "(request-target)" is
--- "<method lower-case> <path?query>". req: method, url (absolute),
--- headers. A header not in req.headers raises.
function M.signing_string(req, headers)
  local lines = {}
  for i, h in ipairs(headers) do
    local lh = h:lower()
    if lh == "(request-target)" then
      local _, target = split_url(req.url)
      lines[i] = "(request-target): " .. (req.method or "GET"):lower() .. " " .. target
    else
      local v = header_value(req.headers or {}, lh)
      if not v then error("httpsig: header " .. h .. " to sign is not in the request", 2) end
      lines[i] = lh .. ": " .. v
    end
  end
  return table.concat(lines, "\n")
end

--- Signs req in place (the api client's sign hook calls this on every
--- attempt). opts: key (juju.sign.Key), key_id ("/user/keys/fp"),
--- algorithm (default by key), headers (names to sign, default {"date"};
--- "host" and "date" are added to the request when missing), now (unix
--- time for the Date header, needed when req has none), form ("manta",
--- default: signature="..." param; "cloudapi": the signature after the
--- params, as SmartDataCenter's CloudAPI takes it, signing the bare Date
--- value). Returns the Authorization value.
function M.sign(req, opts)
  assert(type(opts) == "table" and opts.key and opts.key_id, "httpsig.sign: key and key_id required")
  req.headers = req.headers or {}
  local algorithm = opts.algorithm or M.default_algorithm(opts.key)
  local headers = opts.headers or { "date" }
  if not header_value(req.headers, "date") then
    if not opts.now then error("httpsig.sign: the request has no Date and no now was given", 2) end
    req.headers["Date"] = M.http_date(opts.now)
  end
  for _, h in ipairs(headers) do
    if h:lower() == "host" and not header_value(req.headers, "host") then
      req.headers["Host"] = (split_url(req.url))
    end
  end
  local auth
  if opts.form == "cloudapi" then
    local sig = M.sign_string(opts.key, algorithm, header_value(req.headers, "date"))
    auth = string.format('Signature keyId="%s",algorithm="%s" %s', opts.key_id, algorithm, sig)
  else
    local sig = M.sign_string(opts.key, algorithm, M.signing_string(req, headers))
    local hparam = ""
    if not (#headers == 1 and headers[1]:lower() == "date") then
      local names = {}
      for i, h in ipairs(headers) do names[i] = h:lower() end
      hparam = string.format(',headers="%s"', table.concat(names, " "))
    end
    auth = string.format('Signature keyId="%s",algorithm="%s"%s,signature="%s"', opts.key_id,
      algorithm, hparam, sig)
  end
  req.headers["Authorization"] = auth
  return auth
end

--- A Manta signed URL's query string ("algorithm=..&expires=..&keyId=..&signature=.."),
--- fetchable without an Authorization header until `expires`. opts: key,
--- key_id, algorithm (default by key; sent upper-case, e.g. RSA-SHA256),
--- method (default GET), host ("host[:port]" as the client sends it), path
--- (URL-encoded, as sent), expires (unix time). The signature covers
--- "METHOD\nhost\npath\n<sorted, RFC 3986-escaped params but signature>",
--- as Manta's muskie checks it.
function M.presign(opts)
  assert(type(opts) == "table" and opts.key and opts.key_id and opts.host and opts.path and opts.expires,
    "httpsig.presign: key, key_id, host, path and expires required")
  local algorithm = opts.algorithm or M.default_algorithm(opts.key)
  check_algorithm(opts.key, algorithm, 2)
  local params = {
    algorithm = algorithm:upper(), expires = string.format("%d", opts.expires), keyId = opts.key_id,
  }
  local names = {}
  for k in pairs(params) do names[#names + 1] = k end
  table.sort(names)
  local parts = {}
  for i, k in ipairs(names) do parts[i] = http.url_escape(k) .. "=" .. http.url_escape(params[k]) end
  local query = table.concat(parts, "&")
  local s = string.format("%s\n%s\n%s\n%s", (opts.method or "GET"):upper(), opts.host, opts.path, query)
  local sig = M.sign_string(opts.key, algorithm, s)
  return query .. "&signature=" .. http.url_escape(sig)
end

return M
