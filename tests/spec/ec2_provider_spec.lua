-- ec2_provider_spec.lua: the ec2 provider (providers/ec2) through its
-- contract operations, against the EC2 fake (tests/servers/ec2: botocore's
-- model and SigV4 signer check every request) and s3rver behind s3check
-- (botocore re-signs every S3 request), both started once for this file.
-- The fake runs without a launcher: instances take addresses from its pool,
-- so everything up to "running with an address" is tested here; the SSH
-- finalizer on a real test host is not (it needs the instance launcher).
local server = require("juju.testing.server")
local testing = require("juju.testing")
local context = require("juju.context")
local providers = require("juju.providers")
local release_journal = require("juju.environs.teardown").run
local common = require("juju.provider_common")
local constraints = require("juju.constraints")
local http = require("juju.http")
local json = require("juju.json")
local gzip = require("juju.gzip")
local crypto = require("juju.crypto")
local sys = require("juju.sys")
local fs = require("juju.fs")
local h = require("helpers")
local ph = require("provider_harness")
local ec2_cloud = require("clouds.ec2") -- its image metadata

local PYTHON = "/usr/bin/python3"
local ACCESS = "S3RVER" -- s3rver checks the access key (only); s3check and the fake check the secret
local SECRET = "ec2/Provider+Secret" .. crypto.hex(crypto.random_bytes(6))
local REGION = "us-east-1"
local CANNED = h.shared_dir .. "/conformance/simplestreams/juju-1.25-testing-canned"

local function npm_root()
  local r = sys.run({ "npm", "root", "-g" }, { timeout = 30 })
  assert(r and r.code == 0, "npm root -g failed: is npm installed? run scripts/install-deps.sh")
  return (r.stdout:gsub("%s+$", ""))
end

local work = h.tmpdir("juju-ec2-provider-spec-")
h.write(work .. "/fake.json", assert(json.encode { credentials = { [ACCESS] = SECRET }, region = REGION,
  pending_describes = 1 }))
-- The conformance image metadata as an image-metadata-url directory.
assert(fs.mkdir_p(work .. "/images/streams/v1", tonumber("700", 8)))
for _, f in ipairs({ "index.json", "image_metadata.json" }) do
  h.write(work .. "/images/streams/v1/" .. f, h.read(CANNED .. "/streams__v1__" .. f))
end

local NODE_PATH = npm_root()
local S3RVER_JS = NODE_PATH .. "/s3rver/bin/s3rver.js"
assert(fs.exists(S3RVER_JS), S3RVER_JS .. " not found: run scripts/install-deps.sh")
local fake = assert(server.start {
  name = "ec2fake",
  argv = { PYTHON, h.source_dir .. "/tests/servers/ec2/ec2fake.py", "--host", "{host}", "--port", "{port}",
    "--dir", "{dir}", "--config", work .. "/fake.json" },
})
local s3rver = assert(server.start {
  name = "s3rver",
  argv = { "node", S3RVER_JS, "--address", "{host}", "--port", "{port}", "--directory", "{dir}", "--silent" },
  env = { NODE_PATH = NODE_PATH },
})
local checker = assert(server.start {
  name = "s3check",
  argv = { PYTHON, h.source_dir .. "/tests/servers/s3check/s3check.py", "--listen", "{host}:{port}",
    "--upstream", s3rver.url, "--access-key", ACCESS, "--region", REGION },
  env = { S3CHECK_SECRET_KEY = SECRET },
})

local function admin(method, path, body)
  local r, msg = http.request { url = fake.url:gsub("/$", "") .. path, method = method, retries = 0,
    body = body and assert(json.encode(body)) or nil,
    headers = body and { ["Content-Type"] = "application/json" } or nil }
  assert(r, msg)
  return r.body:sub(1, 1) == "{" and assert(json.decode(r.body)) or r.body
end

local function calls(action)
  return admin("GET", "/_admin/calls" .. (action and ("?action=" .. action) or "")).calls
end

local function no_secret(msg)
  assert.is_string(msg)
  assert.is_nil(msg:find(SECRET, 1, true), "secret in: " .. msg)
  assert.is_nil(msg:find("wrong-secret-9", 1, true), "wrong secret in: " .. msg)
end

local provider = assert(providers.load(nil, "ec2"))

local harness = ph.new {
  provider = provider, name = "ec2", prefix = "spec", home = work, series = "precise", state_tag = true,
  keep_false = { ["ssl-hostname-verification"] = true },
  config = function()
    return { region = REGION, ["access-key"] = ACCESS, ["secret-key"] = SECRET, ["ec2-endpoint"] = fake.url,
      ["s3-endpoint"] = checker.url, ["image-metadata-url"] = "file://" .. work .. "/images",
      ["image-stream"] = "released", ["api-port"] = 17070, ["bootstrap-timeout"] = 600 }
  end,
}
local environment, opened, start, start_params = harness.environment, harness.opened, harness.start,
  harness.start_params
local HOST_PUB, USERDATA = ph.HOST_PUB, ph.USERDATA

local function state_of(id)
  for _, i in ipairs(admin("GET", "/_admin/state").instances) do
    if i.id == id then return i end
  end
end

local function groups_named(name)
  local out = {}
  for _, g in ipairs(admin("GET", "/_admin/state").groups) do
    if g.GroupName == name then out[#out + 1] = g end
  end
  return out
end

local function alive(env)
  local n = 0
  for _, i in ipairs(admin("GET", "/_admin/state").instances) do
    if i.tags["juju-env-uuid"] == env.uuid and i.state ~= "terminated" then n = n + 1 end
  end
  return n
end

describe("the ec2 provider", function()
  teardown(function()
    server.stop_all()
    h.cleanup()
  end)

  before_each(function()
    admin("DELETE", "/_admin/faults")
  end)

  after_each(function() collectgarbage() end)

  describe("config", function()
    it("refuses an unknown region, naming the key and the known regions", function()
      local cfg, pc = environment { region = "xx-nowhere-1", ["ec2-endpoint"] = false }
      local ok, err = provider.prepare_for_bootstrap(pc, cfg)
      assert.is_nil(ok)
      assert.matches('^region: invalid region name "xx%-nowhere%-1"', err)
      assert.matches("us%-east%-1", err)
      assert.is_nil(provider.validate_config(pc, cfg))
    end)

    it("takes any region name when both endpoints are given (private regions, tests)", function()
      local cfg, pc = environment { region = "xx-nowhere-1" }
      assert(provider.validate_config(pc, cfg))
    end)

    it("refuses endpoint overrides that are not URLs, naming the key", function()
      for _, key in ipairs({ "ec2-endpoint", "s3-endpoint" }) do
        local cfg, pc = environment { [key] = "ftp://x/y z" }
        local ok, err = provider.validate_config(pc, cfg)
        assert.is_nil(ok)
        assert.matches("^" .. key:gsub("%-", "%%-") .. ": ", err)
      end
    end)

    it("refuses a bad control-bucket and disabled ssl-hostname-verification, naming the key", function()
      local cfg, pc = environment { ["control-bucket"] = "Bad_Bucket" }
      local _, err = provider.validate_config(pc, cfg)
      assert.matches("^control%-bucket: ", err)
      cfg, pc = environment { ["ssl-hostname-verification"] = false }
      _, err = provider.validate_config(pc, cfg)
      assert.matches("^ssl%-hostname%-verification: ", err)
    end)

    it("needs credentials: a missing pair names access-key, never the secret", function()
      local cfg, pc = environment { ["access-key"] = false, ["secret-key"] = false }
      local ok, err = provider.prepare_for_bootstrap(pc, cfg)
      assert.is_nil(ok)
      assert.matches("^access%-key: environment has no access%-key or secret%-key", err)
      cfg, pc = environment { ["secret-key"] = false }
      ok, err = provider.open(pc, cfg)
      assert.is_nil(ok)
      assert.matches("^secret%-key: ", err)
      no_secret(err)
    end)

    it("falls back to AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, then EC2_ACCESS_KEY/EC2_SECRET_KEY", function()
      for _, vars in ipairs({
        { AWS_ACCESS_KEY_ID = ACCESS, AWS_SECRET_ACCESS_KEY = SECRET, EC2_ACCESS_KEY = "nope", EC2_SECRET_KEY = "nope" },
        { EC2_ACCESS_KEY = ACCESS, EC2_SECRET_KEY = SECRET },
      }) do
        local cfg, pc = environment({ ["access-key"] = false, ["secret-key"] = false }, vars)
        local out = assert(provider.prepare_for_bootstrap(pc, cfg))
        assert.are.equal(ACCESS, out["access-key"])
        assert.are.equal(SECRET, out["secret-key"])
      end
    end)

    it("generates control-bucket at prepare (32 hex digits) and keeps a given one", function()
      local cfg, pc = environment()
      local out = assert(provider.prepare_for_bootstrap(pc, cfg))
      assert.matches("^%x+$", out["control-bucket"])
      assert.are.equal(32, #out["control-bucket"])
      cfg, pc = environment { ["control-bucket"] = "my-own-bucket" }
      out = assert(provider.prepare_for_bootstrap(pc, cfg))
      assert.are.equal("my-own-bucket", out["control-bucket"])
    end)

    it("declares the secrets as secret, and region and control-bucket immutable", function()
      local f = provider.config.fields
      assert.is_true(f["secret-key"].secret)
      assert.is_true(f["access-key"].secret)
      assert.is_true(f.region.immutable)
      assert.is_true(f["control-bucket"].immutable)
      assert.are.equal("us-east-1", f.region.default)
    end)
  end)

  describe("prepare's credential check", function()
    it("makes one cheap call (DescribeAccountAttributes), signed as botocore signs", function()
      admin("DELETE", "/_admin/calls")
      local cfg, pc = environment()
      assert(provider.prepare_for_bootstrap(pc, cfg))
      local all = calls()
      assert.are.equal(1, #all)
      assert.are.equal("DescribeAccountAttributes", all[1].action)
      assert.is_true(all[1].authenticated)
      assert.are.equal(200, all[1].status)
    end)

    it("turns a wrong secret into one AUTH line naming secret-key and the endpoint", function()
      local cfg, pc = environment { ["secret-key"] = "wrong-secret-9" }
      local ok, err, code = provider.prepare_for_bootstrap(pc, cfg)
      assert.is_nil(ok)
      assert.are.equal("AUTH", code)
      assert.matches("secret%-key", err)
      assert.is_truthy(err:find(fake.url:gsub("/$", ""), 1, true), err)
      assert.matches("AuthFailure", err)
      assert.is_nil(err:find("\n", 1, true))
      no_secret(err)
    end)
  end)

  describe("bootstrap operations", function()
    it("chooses the conformance data's image for the region and the cheapest fitting type", function()
      local env = opened()
      local spec = assert(provider.internal.find_spec(env, start_params(env)))
      -- precise/amd64 in us-east-1: the ebs hvm image (ssd, then ebs, as Juju)
      assert.are.equal("ami-442ea674", spec.image.id)
      -- no t1/t2 (cpu-power >= 100), no pv-only m1.small for an hvm image
      assert.are.equal("m3.medium", spec.type.name)
      spec = assert(provider.internal.find_spec(env, start_params(env, { constraints = assert(constraints.parse(
        "mem=7G cpu-cores=2")) })))
      assert.are.equal("m3.large", spec.type.name)
      spec = assert(provider.internal.find_spec(env, start_params(env, { constraints = assert(constraints.parse(
        "instance-type=c3.xlarge")) })))
      assert.are.equal("c3.xlarge", spec.type.name)
    end)

    it("says clearly when no image or no instance type fits", function()
      local env = opened()
      local _, err = provider.internal.find_spec(env, start_params(env, {
        instance_config = { series = "trusty", machine_id = "0", nonce = "n", tags = {} } }))
      assert.matches('no "trusty" images in us%-east%-1 with arches %[amd64%]', err)
      _, err = provider.internal.find_spec(env, start_params(env, { constraints = assert(constraints.parse("mem=900G")) }))
      assert.matches('no instance type in us%-east%-1 matches constraints "mem=921600M"', err)
      _, err = provider.internal.find_spec(env, start_params(env, {
        constraints = assert(constraints.parse("instance-type=z9.huge")) }))
      assert.matches("instance%-type=z9%.huge", err)
    end)

    it("refuses a missing image, an unfitting constraint or an unknown zone before creating anything", function()
      for _, extra in ipairs({
        { instance_config = { series = "trusty", machine_id = "0", nonce = "n", tags = {} } },
        { constraints = assert(constraints.parse("mem=900G")) },
        { placement = "zone=us-east-1z" },
      }) do
        local env, _, j = opened()
        admin("DELETE", "/_admin/calls")
        local inst, err = start(env, j, extra)
        assert.is_nil(inst)
        assert.is_string(err)
        no_secret(err)
        assert.are.same({ "instance" }, (function()
          local kinds = {}
          for _, r in ipairs(j:resources()) do kinds[#kinds + 1] = r.kind end
          return kinds
        end)())
        assert.are.equal(0, #calls("CreateSecurityGroup"))
        assert.are.equal(0, #calls("RunInstances"))
        assert.is_false(fs.exists(s3rver.dir .. "/" .. env.bucket))
      end
    end)

    it("refuses user-data over EC2's 16 KiB limit after gzip", function()
      local ud = assert(provider.internal.user_data(USERDATA))
      assert.are.equal(USERDATA, gzip.gunzip(crypto.unbase64(ud)))
      local _, err = provider.internal.user_data(crypto.random_bytes(20000))
      assert.matches("over EC2's 16384%-byte limit", err)
    end)

    it("creates the security groups idempotently with Juju's ingress rules", function()
      local env, _, j = opened()
      local name = "juju-" .. env.name
      local g1 = assert(provider.internal.ensure_group(env, name,
        function(gid) return provider.internal.env_rules(env, gid) end))
      admin("DELETE", "/_admin/calls")
      local g2 = assert(provider.internal.ensure_group(env, name,
        function(gid) return provider.internal.env_rules(env, gid) end))
      assert.are.equal(g1.id, g2.id)
      local gs = groups_named(name)
      assert.are.equal(1, #gs)
      assert.are.equal(5, #gs[1].Rules)
      -- the second time: Duplicate, then no rule added or removed
      assert.are.equal(0, #calls("AuthorizeSecurityGroupIngress"))
      assert.are.equal(0, #calls("RevokeSecurityGroupIngress"))
      local created = calls("CreateSecurityGroup")
      assert.are.equal(1, #created)
      assert.are.equal("InvalidGroup.Duplicate", created[1].code)
      -- journaled once, by id and name
      local rs = j:resources("security-group")
      assert.are.equal(1, #rs)
      assert.are.same({ g1.id, name, "created" }, { rs[1].id, rs[1].name, rs[1].state })
      assert(provider.destroy(env))
      assert.are.equal(0, #groups_named(name))
    end)

    it("starts the instance: tagged at creation, gzip'd user-data, running with a typed address", function()
      local env, pc, j = opened()
      admin("DELETE", "/_admin/calls")
      local inst = assert(start(env, j))
      assert.matches("^i%-", inst.id)
      assert.are.equal("running", inst.status)
      assert.are.equal("ipv4", inst.addresses[1].type)
      assert.are.equal("public", inst.addresses[1].scope)
      assert.matches("^127%.", inst.addresses[1].value)
      assert.are.equal(22, inst.ssh_port)
      assert.are.same({ arch = "amd64", mem = 3840, ["cpu-cores"] = 1, ["cpu-power"] = 300, ["root-disk"] = 8192,
        ["availability-zone"] = "us-east-1a" }, inst.hardware)
      local st = assert(state_of(inst.id))
      assert.are.equal("ami-442ea674", st.image_id)
      assert.are.equal("m3.medium", st.type)
      assert.are.equal("juju-" .. env.uuid .. "-machine-0", st.tags.Name)
      assert.are.equal(env.uuid, st.tags["juju-env-uuid"])
      assert.are.equal("true", st.tags["juju-is-state"])
      -- the generated host key's public half, for a later status to pin
      assert.are.equal(HOST_PUB, st.tags["juju-host-key"])
      assert.are.equal(USERDATA, admin("GET", "/_admin/user-data/" .. inst.id))
      -- tags came with RunInstances, not a CreateTags on the instance afterwards
      local run = calls("RunInstances")
      assert.are.equal(1, #run)
      assert.are.equal("instance", run[1].params["TagSpecification.1.ResourceType"])
      for _, c in ipairs(calls("CreateTags")) do assert.is_nil(c.params["ResourceId.1"]:match("^i%-")) end
      -- polled until running: pending first
      assert.is_true(#calls("DescribeInstances") >= 2)
      -- the engine's intent (with our ClientToken), then the bucket and the groups
      local kinds = {}
      for _, r in ipairs(j:resources()) do kinds[#kinds + 1] = r.kind end
      assert.are.same({ "instance", "bucket", "security-group", "security-group" }, { kinds[1], kinds[2], kinds[3],
        kinds[4] })
      local ir = j:resources("instance")[1]
      assert.matches("^" .. ir.client_token, st.client_token)
      -- a refresh gives the same instance
      local again = assert(inst.refresh())
      assert.are.equal(inst.id, again.id)
      -- provider-state, as the engine writes it, is read back
      assert.are.equal("NOT_BOOTSTRAPPED", select(3, provider.state_server_instances(env)))
      assert(common.record_state_instance(assert(pc:storage()), inst.id))
      assert.are.same({ inst.id }, assert(provider.state_server_instances(env)))
      -- status reads machine 0 over SSH at its address: no host behind the
      -- fake's pool address here, so a clear connection error
      local doc, serr = provider.state_dump(env)
      assert.is_nil(doc)
      assert.is_truthy(serr:find(inst.addresses[1].value, 1, true), serr)
      -- destroy leaves nothing of this environment
      assert(provider.destroy(env))
      assert.are.equal(0, alive(env))
      assert.are.equal("terminated", state_of(inst.id).state)
      assert.are.equal(0, #groups_named("juju-" .. env.name))
      assert.are.equal(0, #groups_named("juju-" .. env.name .. "-0"))
      assert.are.equal("NOT_BOOTSTRAPPED", select(3, provider.state_server_instances(env)))
      local left = admin("GET", "/_admin/leftovers")
      assert.are.same({}, left.instances)
      assert.are.same({}, left.groups)
    end)

    it("never starts a second instance when RunInstances' answer is lost (ClientToken)", function()
      local env, _, j = opened()
      admin("DELETE", "/_admin/calls")
      admin("POST", "/_admin/faults", { action = "RunInstances", drop_response = true })
      local inst = assert(start(env, j))
      local run = calls("RunInstances")
      assert.are.equal(2, #run)
      assert.are.equal(run[1].params.ClientToken, run[2].params.ClientToken)
      assert.are.equal(1, alive(env))
      assert.are.equal(state_of(inst.id).reservation, admin("GET", "/_admin/state").client_tokens[run[1].params.ClientToken])
      assert(provider.destroy(env))
      assert.are.equal(0, alive(env))
    end)

    it("waits out throttling (RequestLimitExceeded) on the provider's clock", function()
      local env, _, j, _, lines = opened()
      admin("POST", "/_admin/faults", { action = "DescribeInstances", error = "RequestLimitExceeded", count = 7 })
      admin("POST", "/_admin/faults", { action = "CreateSecurityGroup", error = "RequestLimitExceeded", count = 4 })
      admin("DELETE", "/_admin/calls")
      local inst = assert(start(env, j))
      assert.are.equal("running", inst.status)
      assert.are.same({}, admin("GET", "/_admin/faults").faults)
      local throttled = 0
      for _, c in ipairs(calls()) do if c.code == "RequestLimitExceeded" then throttled = throttled + 1 end end
      assert.are.equal(11, throttled)
      assert(provider.destroy(env))
      assert.are.equal(0, alive(env))
      for _, l in ipairs(lines) do no_secret(l) end
    end)

    it("makes InsufficientInstanceCapacity in every zone one clear error, and the journal cleans up", function()
      local env, pc, j = opened()
      admin("POST", "/_admin/faults", { action = "RunInstances", error = "InsufficientInstanceCapacity", count = -1 })
      local inst, err, code = start(env, j)
      assert.is_nil(inst)
      assert.are.equal("QUOTA", code)
      assert.matches("^cannot run instances: no availability zone of us%-east%-1 could start a m3%.medium", err)
      assert.matches("us%-east%-1a: InsufficientInstanceCapacity", err)
      assert.matches("us%-east%-1c: InsufficientInstanceCapacity", err)
      assert.is_nil(err:find("\n", 1, true))
      no_secret(err)
      assert.are.equal(0, alive(env))
      admin("DELETE", "/_admin/faults")
      -- what the engine does with a failed bootstrap: release the journal
      assert(release_journal(provider, env, pc, j, {}))
      assert.are.same({}, j:resources())
      assert.are.equal(0, #groups_named("juju-" .. env.name))
      assert.are.equal(0, #groups_named("juju-" .. env.name .. "-0"))
    end)

    it("gives a quota error from RunInstances (InstanceLimitExceeded) as one line", function()
      local env, pc, j = opened()
      admin("POST", "/_admin/faults", { action = "RunInstances", error = "InstanceLimitExceeded" })
      local inst, err, code = start(env, j)
      assert.is_nil(inst)
      assert.are.equal("QUOTA", code)
      assert.matches("^cannot run instances: .*InstanceLimitExceeded", err)
      assert.are.equal(0, alive(env))
      admin("DELETE", "/_admin/faults")
      assert(release_journal(provider, env, pc, j, { destroy = true }))
    end)

    it("fails at once when the instance dies while pending", function()
      local env, pc, j = opened()
      admin("POST", "/_admin/faults", { fate = "terminated" })
      local inst, err = start(env, j)
      assert.is_nil(inst)
      assert.matches("is terminated", err)
      assert(release_journal(provider, env, pc, j, { destroy = true }))
      assert.are.equal(0, #groups_named("juju-" .. env.name))
    end)
  end)

  describe("faults in each call start_instance makes", function()
    local ACTIONS = { "DescribeAvailabilityZones", "CreateSecurityGroup", "DescribeSecurityGroups", "CreateTags",
      "AuthorizeSecurityGroupIngress", "RunInstances", "DescribeInstances" }
    local FAULTS = {
      { "an error", { error = "InternalError", count = -1 } },
      { "a connection reset", { reset = true, count = -1 } },
      { "throttling", { error = "RequestLimitExceeded", count = 3 } },
    }
    for _, action in ipairs(ACTIONS) do
      for _, f in ipairs(FAULTS) do
        it(action .. " meeting " .. f[1] .. ": started, or one clear line and nothing left", function()
          local env, pc, j = opened()
          local fault = { action = action }
          for k, v in pairs(f[2]) do fault[k] = v end
          admin("POST", "/_admin/faults", fault)
          local inst, err = start(env, j)
          admin("DELETE", "/_admin/faults")
          if f[1] == "throttling" then
            assert(inst, err)
          elseif not inst then
            assert.is_truthy(err:find("ec2 " .. action .. ": ", 1, true), err)
            assert.is_nil(err:find("\n", 1, true))
            -- the request's parameters (the user-data holds the host key) stay out
            assert.is_nil(err:find("UserData", 1, true), err)
            assert.is_nil(err:find("Action=", 1, true), err)
            no_secret(err)
          end
          assert(release_journal(provider, env, pc, j, { destroy = true }))
          assert.are.equal(0, alive(env))
          assert.are.equal(0, #groups_named("juju-" .. env.name))
          assert.are.equal(0, #groups_named("juju-" .. env.name .. "-0"))
        end)
      end
    end

    it("never sends the secret: no request parameter carries it", function()
      for _, c in ipairs(calls()) do
        for k, v in pairs(c.params or {}) do no_secret(tostring(k) .. "=" .. tostring(v)) end
      end
    end)
  end)

  describe("release and destroy", function()
    it("releases the journal in reverse order, terminating a group's instances before deleting it", function()
      local env, pc, j = opened()
      local inst = assert(start(env, j))
      assert(pc:storage():put("provider-state", "state-instances: [" .. inst.id .. "]\n"))
      assert(j:record("storage", "provider-state"))
      admin("DELETE", "/_admin/calls")
      assert(release_journal(provider, env, pc, j, {}))
      assert.are.same({}, j:resources())
      -- the instance is terminated before its groups are deleted
      local order = {}
      for _, c in ipairs(calls()) do
        if c.action == "TerminateInstances" or (c.action == "DeleteSecurityGroup" and c.status == 200) then
          if order[#order] ~= c.action then order[#order + 1] = c.action end
        end
      end
      assert.are.equal("TerminateInstances", order[1])
      assert.are.equal("DeleteSecurityGroup", order[2])
      local deleted = 0
      for _, c in ipairs(calls("DeleteSecurityGroup")) do if c.status == 200 then deleted = deleted + 1 end end
      assert.are.equal(2, deleted)
      -- DependencyViolation while the instance shut down was retried
      local dv = 0
      for _, c in ipairs(calls("DeleteSecurityGroup")) do if c.code == "DependencyViolation" then dv = dv + 1 end end
      assert.is_true(dv >= 1)
      assert.are.equal(0, alive(env))
      assert.are.equal("NOT_BOOTSTRAPPED", select(3, provider.state_server_instances(env)))
    end)

    it("destroy finds instances and groups by their juju-env-uuid tag when the journal is lost", function()
      local env, _, j, cfg = opened()
      local inst = assert(start(env, j))
      -- a new process with an empty journal
      local _, pc2 = environment()
      local env2 = assert(provider.open(pc2, cfg))
      env2.name = env.name
      assert.are.equal(1, #assert(provider.all_instances(env2)))
      assert.are.equal(inst.id, provider.all_instances(env2)[1].id)
      assert(provider.destroy(env2))
      assert.are.equal(0, alive(env))
      assert.are.equal(0, #groups_named("juju-" .. env.name))
      assert.are.equal(0, #groups_named("juju-" .. env.name .. "-0"))
    end)

    it("releases an instance intent without an id by its Name tag", function()
      local env, pc, j = opened()
      harness.start_unrecorded(env, j)
      assert(release_journal(provider, env, pc, j, {}))
      assert.are.equal(0, alive(env))
      assert.are.same({}, j:resources())
    end)

    it("juju bootstrap runs every step up to SSH; the failed finalize leaves nothing behind", function()
      -- No host behind the fake's addresses (no instance launcher yet): the
      -- SSH finalizer cannot connect, so the engine releases the journal.
      local home = h.tmpdir()
      local env = h.env(home, {})
      assert(fs.mkdir_p(env.JUJU_HOME, tonumber("700", 8)))
      ec2_cloud.image_metadata(home .. "/img")
      local key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPHJ2k7Zd7p3zLKwZ0mG7lJmD3nJ7jL7mH3r1nJ8aP0m spec"
      local bucket = "ec2-cli-spec-" .. crypto.hex(crypto.random_bytes(4))
      h.write(env.JUJU_HOME .. "/environments.yaml", h.environments_yaml("amazon", string.format([[
  amazon:
    type: ec2
    access-key: %s
    secret-key: %s
    ec2-endpoint: %s
    s3-endpoint: %s
    control-bucket: %s
    image-metadata-url: file://%s/img
    default-series: bookworm
    bootstrap-timeout: 30
    authorized-keys: %s
]], ACCESS, SECRET, fake.url, checker.url, bucket, home, key)))
      admin("DELETE", "/_admin/calls")
      local out, errs = {}, {}
      local ctx = context.new { env = env, clock = testing.virtual_clock(),
        stdout = function(x) out[#out + 1] = x end, stderr = function(x) errs[#errs + 1] = x end }
      local code = require("juju.cli").run(ctx, { "bootstrap", "--upload-tools" })
      local stderr = table.concat(errs)
      assert.are.equal(1, code, stderr)
      assert.matches("Launching a m3%.medium instance from ami%-442ea674", stderr)
      assert.matches("Installing Juju agent on bootstrap instance", stderr)
      assert.matches("Attempting to connect to 127%.0%.100%.%d+:22", stderr)
      assert.matches("Bootstrap failed, destroying environment", stderr)
      assert.matches("without being able to connect", stderr)
      no_secret(stderr .. table.concat(out))
      assert.are.equal(1, #calls("RunInstances"))
      local left = admin("GET", "/_admin/leftovers")
      assert.are.same({}, left.instances)
      assert.are.same({}, left.groups)
      assert.is_false(fs.exists(s3rver.dir .. "/" .. bucket))
    end)

    it("leaves nothing in the emulator after all of the above", function()
      local left = admin("GET", "/_admin/leftovers")
      assert.are.same({}, left.instances)
      assert.are.same({}, left.groups)
    end)
  end)
end)
