-- juju.cloud.sign.oauth: MAAS's OAuth 1.0 PLAINTEXT (providers.md 9.2), as
-- gomaasapi sends it. The credential is the `maas-oauth` config value
-- "<consumer-key>:<token-key>:<token-secret>" (the consumer secret is
-- empty, so the signature is "&" .. token secret). Pure functions: the
-- timestamp and nonce are passed in.
--
--   local oauth = require("juju.cloud.sign.oauth")
--   local creds = assert(oauth.parse_key(cfg["maas-oauth"]))
--   oauth.sign(req, creds, { timestamp = os.time(), nonce = crypto.hex(crypto.random_bytes(16)) })
local http = require("juju.lazy")("juju.http")

local M = {}

local EXPECTED = '"<consumer-key>:<token-key>:<token-secret>"'

--- Splits a maas-oauth value into {consumer_key, token_key, token_secret},
--- or nil, message, "CONFIG". The message names the key and the expected
--- form, never the value (it holds the secret).
function M.parse_key(value, key_name)
  key_name = key_name or "maas-oauth"
  if type(value) ~= "string" then
    return nil, string.format("%s: expected a string of the form %s, got %s", key_name, EXPECTED, type(value)), "CONFIG"
  end
  local parts = {}
  for p in (value .. ":"):gmatch("([^:]*):") do parts[#parts + 1] = p end
  if #parts ~= 3 then
    return nil, string.format("%s: malformed value (%d part%s separated by ':'); expected %s, as MAAS shows it " ..
      "under the user's API keys", key_name, #parts, #parts == 1 and "" or "s", EXPECTED), "CONFIG"
  end
  local names = { "consumer key", "token key", "token secret" }
  for i = 1, 3 do
    if parts[i] == "" or parts[i]:find("[%s%c]") then
      return nil, string.format("%s: the %s (part %d) is empty or has spaces; expected %s", key_name, names[i], i,
        EXPECTED), "CONFIG"
    end
  end
  return { consumer_key = parts[1], token_key = parts[2], token_secret = parts[3] }
end

-- Go's url.QueryEscape: RFC 3986 unreserved kept, space as "+".
local function query_escape(s)
  return (http.url_escape(s):gsub("%%20", "+"))
end

--- The Authorization header value. opts: timestamp (unix seconds), nonce
--- (string; gomaasapi sends 32 hex digits).
function M.authorization(creds, opts)
  assert(type(creds) == "table" and creds.consumer_key and creds.token_key and creds.token_secret,
    "oauth.authorization: credentials from parse_key required")
  assert(type(opts) == "table" and opts.timestamp and opts.nonce, "oauth.authorization: timestamp and nonce required")
  local params = {
    { "realm", "MAAS API" },
    { "oauth_consumer_key", creds.consumer_key },
    { "oauth_token", creds.token_key },
    { "oauth_signature_method", "PLAINTEXT" },
    { "oauth_signature", "&" .. creds.token_secret },
    { "oauth_timestamp", string.format("%d", opts.timestamp) },
    { "oauth_nonce", opts.nonce },
    { "oauth_version", "1.0" },
  }
  local parts = {}
  for i, p in ipairs(params) do parts[i] = string.format('%s="%s"', p[1], query_escape(p[2])) end
  return "OAuth " .. table.concat(parts, ", ")
end

--- Sets req.headers.Authorization (the api client's sign hook); returns it.
function M.sign(req, creds, opts)
  req.headers = req.headers or {}
  local v = M.authorization(creds, opts)
  req.headers["Authorization"] = v
  return v
end

--- The API base URL: "<server>/api/<version>/" (server with or without a
--- trailing slash).
function M.api_url(server, version)
  return (server:gsub("/+$", "")) .. "/api/" .. (version or "1.0") .. "/"
end

return M
