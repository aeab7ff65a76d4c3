-- Specs for juju.agentconf: agent.conf format 1.18 (spec 2.12) against
-- Juju's own samples (conformance/agent-conf).
local crypto = require("juju.crypto")
local fs = require("juju.fs")
local instancecfg = require("juju.instancecfg")
local agentconf = require("juju.agentconf")

local SHARED = os.getenv("JUJU_TEST_SHARED") or ((os.getenv("JUJU_TEST_SOURCE_DIR") or ".") .. "/../shared")
local SAMPLES = SHARED .. "/conformance/agent-conf/"
local STATE_SERVER = assert(fs.read_file(SAMPLES .. "format-1.18-state-server-sample.yaml"))
local NOT_STATE_SERVER = assert(fs.read_file(SAMPLES .. "format-1.18-non-state-server-sample.yaml"))

local CA_CERT, CA_KEY = crypto.new_ca("test")

local function bootstrap_icfg(params)
  local cfg = {
    name = "test", type = "ec2", uuid = "7d2e6c1a-9b8f-4e3d-a2c1-0f9e8d7c6b5a",
    ["admin-secret"] = "admin-secret-value", ["ca-cert"] = CA_CERT, ["ca-private-key"] = CA_KEY,
    ["agent-version"] = "1.25.0", ["authorized-keys"] = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA user@host\n",
    ["state-port"] = 37017, ["api-port"] = 17070,
  }
  local icfg = instancecfg.new_bootstrap(cfg, params)
  return assert(instancecfg.finish(icfg, cfg, { instance_id = "i-1", tools = {
    version = "1.25.0-trusty-amd64", url = "https://example.com/t.tgz", sha256 = string.rep("0", 64), size = 1 } }))
end

-- Top-level keys of a YAML mapping text, in order.
local function top_keys(text)
  local keys = {}
  for line in text:gmatch("[^\n]+") do
    local k = line:match("^([%w_-]+):")
    if k then keys[#keys + 1] = k end
  end
  return keys
end

local function index_of(list)
  local t = {}
  for i, k in ipairs(list) do t[k] = i end
  return t
end

describe("juju.agentconf", function()
  after_each(function() collectgarbage() collectgarbage() end)

  it("parses the state-server sample", function()
    local c = assert(agentconf.parse(STATE_SERVER))
    assert.are.equal("machine-0", c.tag)
    assert.are.equal("/home/user/.juju/local", c.datadir)
    assert.are.equal("user-admin:bootstrap", c.nonce)
    assert.are.same({ "JobManageEnviron" }, c.jobs)
    assert.are.equal("1.17.5.1", c.upgradedToVersion)
    assert.matches("^%-%-%-%-%-BEGIN CERTIFICATE%-%-%-%-%-\n", c.cacert)
    assert.are.same({ "localhost:37017" }, c.stateaddresses)
    assert.are.equal("NB5imrDaWCCRW/4akSSvUxhX", c.statepassword)
    assert.are.equal("oBlMbFUGvCb2PMFgYVzjS6GD", c.oldpassword)
    assert.are.equal("juju-agent-user-local", c.values.AGENT_SERVICE_NAME)
    assert.are.equal("", c.values.CONTAINER_TYPE)
    assert.matches("BEGIN RSA PRIVATE KEY", c.caprivatekey)
    assert.matches("BEGIN RSA PRIVATE KEY", c.stateserverkey)
    assert.are.equal(17070, c.apiport)
    assert.is_true(c["prefer-ipv6"])
  end)

  it("parses the non-state-server sample", function()
    local c = assert(agentconf.parse(NOT_STATE_SERVER))
    assert.are.equal("machine-1", c.tag)
    assert.are.equal("juju-db-user-local", c.values.MONGO_SERVICE_NAME)
    assert.is_nil(c.stateservercert)
    assert.is_nil(c.caprivatekey)
  end)

  it("rejects what is not format 1.18", function()
    local ok, err = agentconf.parse("tag: machine-0\n")
    assert.is_nil(ok)
    assert.matches("unsupported format line", err)
    ok, err = agentconf.parse("# format 1.16\ntag: machine-0\n")
    assert.is_nil(ok)
    assert.matches("unsupported format line", err)
    ok, err = agentconf.parse("# format 1.18\ntag: [unclosed\n")
    assert.is_nil(ok)
    assert.matches("^cannot parse agent config: ", err)
    ok, err = agentconf.parse("# format 1.18\n- a\n")
    assert.is_nil(ok)
    assert.matches("not a mapping", err)
    ok, err = agentconf.parse("# format 1.18\ndatadir: /x\n")
    assert.is_nil(ok)
    assert.matches("tag not found", err)
    assert.has_error(function() agentconf.parse(nil) end)
  end)

  it("renders machine 0's file from a finished instance config", function()
    local icfg = bootstrap_icfg()
    local text = agentconf.render(icfg)
    assert.are.equal("# format 1.18\n", text:sub(1, 14))
    local c = assert(agentconf.parse(text))
    assert.are.equal("machine-0", c.tag)
    assert.are.equal("/var/lib/juju", c.datadir)
    assert.are.equal("/var/log/juju", c.logdir)
    assert.are.equal(icfg.nonce, c.nonce)
    assert.are.same({ "JobManageEnviron", "JobHostUnits" }, c.jobs)
    assert.are.equal("1.25.0", c.upgradedToVersion)
    assert.are.equal(CA_CERT, c.cacert)
    assert.are.same({ "localhost:37017" }, c.stateaddresses)
    assert.are.same({ "localhost:17070" }, c.apiaddresses)
    assert.are.equal("environment-7d2e6c1a-9b8f-4e3d-a2c1-0f9e8d7c6b5a", c.environment)
    assert.are.equal(crypto.user_password_hash("admin-secret-value", crypto.COMPAT_SALT), c.oldpassword)
    assert.is_nil(c.statepassword)
    assert.is_nil(c.apipassword)
    assert.are.equal("jujud-machine-0", c.values.AGENT_SERVICE_NAME)
    assert.are.equal("ec2", c.values.PROVIDER_TYPE)
    assert.are.equal("true", c.values.SECURE_STATESERVER_CONNECTION)
    assert.are.equal("false", c.values.NUMA_CTL_PREFERENCE)
    assert.are.equal(icfg.state_serving_info.cert, c.stateservercert)
    assert.are.equal(icfg.state_serving_info.private_key, c.stateserverkey)
    assert.are.equal(CA_KEY, c.caprivatekey)
    assert.are.equal(17070, c.apiport)
    assert.are.equal(37017, c.stateport)
    assert.is_nil(c["prefer-ipv6"])
  end)

  it("writes the state-server sample's keys in its order", function()
    local sample_keys = top_keys(STATE_SERVER)
    local rendered = top_keys(agentconf.render(bootstrap_icfg()))
    local pos = index_of(rendered)
    -- Every sample key the bootstrap file has (no agent passwords yet,
    -- prefer-ipv6 only when set) appears, in the sample's order.
    local last = 0
    for _, k in ipairs(sample_keys) do
      if k ~= "statepassword" and k ~= "apipassword" and k ~= "prefer-ipv6" then
        assert.is_not_nil(pos[k], "missing key " .. k)
        assert.is_true(pos[k] > last, "key out of order: " .. k)
        last = pos[k]
      end
    end
    -- with prefer-ipv6 the flag comes last and the addresses are IPv6
    local v6 = agentconf.render(bootstrap_icfg())
    assert.is_nil(v6:find("prefer-ipv6", 1, true))
    local icfg = bootstrap_icfg()
    icfg.prefer_ipv6 = true
    local keys = top_keys(agentconf.render(icfg))
    assert.are.equal("prefer-ipv6", keys[#keys])
    local c = assert(agentconf.parse(agentconf.render(icfg)))
    assert.are.same({ "[::1]:37017" }, c.stateaddresses)
    assert.is_true(c["prefer-ipv6"])
  end)

  it("round-trips both samples key by key", function()
    for _, sample in ipairs({ STATE_SERVER, NOT_STATE_SERVER }) do
      local parsed = assert(agentconf.parse(sample))
      local again = agentconf.render(parsed)
      assert.are.same(parsed, assert(agentconf.parse(again)))
      assert.are.same(top_keys(sample), top_keys(again))
      assert.are.equal(again, agentconf.render(assert(agentconf.parse(again))))
    end
  end)

  it("keeps unknown keys after the known ones", function()
    local c = assert(agentconf.parse(NOT_STATE_SERVER))
    c.zzz = "extra"
    c.aaa = 1
    local keys = top_keys(agentconf.format(c))
    assert.are.equal("aaa", keys[#keys - 1])
    assert.are.equal("zzz", keys[#keys])
  end)

  it("refuses an unfinished instance config", function()
    local cfg = { uuid = "x", ["authorized-keys"] = "k" }
    assert.has_error(function() agentconf.render(instancecfg.new_bootstrap(cfg)) end)
  end)
end)
