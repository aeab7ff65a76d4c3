-- Specs for juju.cloud.sign.sigv2 (EC2 Query API, HmacSHA256) over every
-- SigV2 vector in ../shared/conformance/signing/amz-sign-vectors.json
-- (go-amz's aws/sign_test.go): the added parameters, the exact string to
-- sign and the Signature.
local sigv2 = require("juju.cloud.sign.sigv2")
local fs = require("juju.fs")
local json = require("juju.json")

local SHARED = os.getenv("JUJU_TEST_SHARED") or ((os.getenv("JUJU_TEST_SOURCE_DIR") or ".") .. "/../shared")
local doc = assert(json.decode(assert(fs.read_file(SHARED .. "/conformance/signing/amz-sign-vectors.json"))))

describe("sigv2 over go-amz's vectors", function()
  it("finds the vectors", function() assert.is_true(#doc.sigv2_vectors >= 7) end)
  for _, v in ipairs(doc.sigv2_vectors) do
    it(v.test, function()
      local params, sts = sigv2.sign{ method = v.method, host = v.host, path = v.path,
        params = v.params_before_signing, access_key = v.access_key, secret_key = v.secret_key }
      assert.are.equal(v.string_to_sign, sts)
      assert.are.equal(v.expected_signature, params.Signature)
      for k, val in pairs(v.added_params) do assert.are.equal(val, params[k], k) end
      for k, val in pairs(v.params_before_signing) do assert.are.equal(val, params[k], k) end
    end)
  end
end)

describe("sigv2 details", function()
  it("does not change the caller's params and ignores a stale Signature", function()
    local p = { Action = "DescribeInstances", Signature = "old" }
    local out = sigv2.sign{ method = "GET", host = "h", path = "/", params = p, access_key = "a", secret_key = "s" }
    assert.are.equal("old", p.Signature)
    assert.is_nil(p.AWSAccessKeyId)
    assert.are_not.equal("old", out.Signature)
  end)

  it("the api signer rewrites the URL with Timestamp from its clock and the Signature", function()
    local sign = sigv2.signer{ access_key = "abc", secret_key = "123", clock = function() return 1325376000 end }
    local req = { method = "GET", url = "http://localhost:4444/services/Cloud?Action=RebootInstances" ..
      "&InstanceId.1=i-10a64379&Version=2011-12-15", headers = {} }
    sign(req)
    -- The same inputs as go-amz's TestSignatureWithEndpointPath.
    assert.truthy(req.url:find("Timestamp=2012-01-01T00%3A00%3A00Z", 1, true))
    assert.truthy(req.url:find("Signature=" .. sigv2.encode("gdG/vEm+c6ehhhfkrJy3+wuVzw/rzKR42TYelMwti7M="), 1, true))
    assert.truthy(req.url:find("^http://localhost:4444/services/Cloud%?AWSAccessKeyId=abc&"))
  end)

  it("raises on misuse", function()
    assert.has_error(function() sigv2.sign{ method = "GET", host = "h", access_key = "a" } end)
    assert.has_error(function() sigv2.signer{ access_key = "a" } end)
  end)
end)
