-- Specs for juju.cloud.sign.oauth: MAAS OAuth 1.0 PLAINTEXT over
-- ../shared/conformance/signing/maas-oauth-plaintext.json (gomaasapi's
-- header shape, the worked example, the API URLs) and malformed maas-oauth
-- values, whose errors never echo the secret.
local oauth = require("juju.cloud.sign.oauth")
local json = require("juju.json")
local fs = require("juju.fs")

local SHARED = os.getenv("JUJU_TEST_SHARED") or ((os.getenv("JUJU_TEST_SOURCE_DIR") or ".") .. "/../shared")
local VECTORS = SHARED .. "/conformance/signing/maas-oauth-plaintext.json"
local doc = assert(json.decode(assert(fs.read_file(VECTORS)), VECTORS))

local function plain_find(s, sub) return s:find(sub, 1, true) ~= nil end

describe("juju.cloud.sign.oauth", function()
  it("parses the three parts of maas-oauth", function()
    local c = assert(oauth.parse_key(doc.worked_example_derived_by_collector.api_key))
    assert.are.same({ consumer_key = "consumerKey", token_key = "tokenKey", token_secret = "tokenSecret" }, c)
  end)

  it("builds gomaasapi's header for the worked example", function()
    local ex = doc.worked_example_derived_by_collector
    local c = assert(oauth.parse_key(ex.api_key))
    local req = { headers = {} }
    local h = oauth.sign(req, c, { timestamp = 1400000000, nonce = "0123456789abcdef0123456789abcdef" })
    assert.are.equal(h, req.headers.Authorization)
    assert.are.equal("OAuth ", h:sub(1, 6))
    for _, want in ipairs(ex.must_contain) do
      assert.is_true(plain_find(h, want), "header lacks " .. want .. ": " .. h)
    end
    for _, pat in ipairs(ex.must_match) do
      -- the vectors' regexes, in Lua pattern form
      local lpat = pat:gsub("%[0%-9%]%+", "%%d+"):gsub("%[0%-9a%-f%]{32}", string.rep("[0-9a-f]", 32))
      assert.matches(lpat, h)
    end
    -- every pair key="value", joined by ", ", the eight parameters gomaasapi sends
    local n = 0
    for k in h:sub(7):gmatch('([%w_]+)="[^"]*"') do
      n = n + 1
      assert.is_truthy(doc.authorization_header.params[k], k)
    end
    assert.are.equal(8, n)
    assert.are.equal('OAuth realm="MAAS+API", oauth_consumer_key="consumerKey", oauth_token="tokenKey", ' ..
      'oauth_signature_method="PLAINTEXT", oauth_signature="%26tokenSecret", oauth_timestamp="1400000000", ' ..
      'oauth_nonce="0123456789abcdef0123456789abcdef", oauth_version="1.0"', h)
  end)

  it("escapes values as Go's url.QueryEscape", function()
    local c = assert(oauth.parse_key("c/k+1:t=k:s&e/c"))
    local h = oauth.authorization(c, { timestamp = 1, nonce = "n" })
    assert.is_true(plain_find(h, 'oauth_consumer_key="c%2Fk%2B1"'), h)
    assert.is_true(plain_find(h, 'oauth_token="t%3Dk"'), h)
    assert.is_true(plain_find(h, 'oauth_signature="%26s%26e%2Fc"'), h)
  end)

  it("gives the API URL under the server", function()
    for _, v in ipairs(doc.api_url) do
      assert.are.equal(v.expected, oauth.api_url(v.base, v.version))
    end
  end)

  it("refuses malformed maas-oauth values naming the key and the form, not the secret", function()
    local SECRET = "Sup3rS3cretTokenValue"
    for _, bad in ipairs({ "consumer:" .. SECRET, "a:b:" .. SECRET .. ":d", SECRET, "", "a::" .. SECRET,
                           ":b:" .. SECRET, "a:b:", "a: b:" .. SECRET }) do
      local c, msg, code = oauth.parse_key(bad)
      assert.is_nil(c, bad)
      assert.are.equal("CONFIG", code)
      assert.matches("^maas%-oauth: ", msg)
      assert.is_true(plain_find(msg, '"<consumer-key>:<token-key>:<token-secret>"'), msg)
      assert.is_false(plain_find(msg, SECRET), msg)
    end
    local _, msg = oauth.parse_key(nil)
    assert.matches("maas%-oauth", msg)
  end)
end)
