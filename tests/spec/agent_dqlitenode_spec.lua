-- agent_dqlitenode_spec.lua: state-store: dqlite from the environment
-- config to agent.conf: the schema (dqlite-port), the instance config's
-- agent values and certificate name, and juju.agent.dqlitenode (the node's
-- address, its options, the store's servers). The node itself is
-- dqlitenode_spec's; the whole path is integration/local_dqlite_spec's.
local context = require("juju.context")
local crypto = require("juju.crypto")
local environments = require("juju.environs.environments")
local config = require("juju.environs.config")
local instancecfg = require("juju.instancecfg")
local agentconf = require("juju.agentconf")
local dqlite_agent = require("juju.agent.dqlitenode")
local h = require("helpers")

local function build(text)
  local home = h.tmpdir()
  local ctx = context.new { env = { HOME = home .. "/user", JUJU_HOME = home },
    stdout = function() end, stderr = function() end }
  local envs = assert(environments.parse(text, "environments.yaml"))
  local attrs, marks = envs:attrs("e")
  return config.from_environments(ctx, attrs, marks, { file = "environments.yaml", home = home })
end

local CA_CERT, CA_KEY = crypto.new_ca("test")

local function finished(extra)
  local cfg = {
    name = "test", type = "ec2", uuid = "7d2e6c1a-9b8f-4e3d-a2c1-0f9e8d7c6b5a",
    ["admin-secret"] = "admin-secret-value", ["ca-cert"] = CA_CERT, ["ca-private-key"] = CA_KEY,
    ["agent-version"] = "1.25.0", ["authorized-keys"] = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA user@host\n",
    ["state-port"] = 37017, ["api-port"] = 17070,
  }
  for k, v in pairs(extra or {}) do cfg[k] = v end
  local icfg = instancecfg.new_bootstrap(cfg, { series = "trusty" })
  return instancecfg.finish(icfg, cfg, { tools = { version = "1.25.0-trusty-amd64",
    url = "https://example.com/t.tgz", sha256 = string.rep("ab", 32), size = 1 }, instance_id = "i-0" })
end

describe("state-store: dqlite", function()
  after_each(function() h.cleanup(); collectgarbage() end)

  it("is a state store of the schema, with dqlite-port defaulting to 17666", function()
    local cfg = assert(build("environments:\n  e:\n    type: local\n    state-store: dqlite\n"))
    assert.are.equal("dqlite", cfg["state-store"])
    assert.are.equal(17666, cfg["dqlite-port"])
    cfg = assert(build("environments:\n  e:\n    type: local\n    state-store: dqlite\n    dqlite-port: 18000\n"))
    assert.are.equal(18000, cfg["dqlite-port"])
    local bad, err = build("environments:\n  e:\n    type: local\n    state-store: dqlight\n")
    assert.is_nil(bad)
    assert.matches("state%-store", err)
    bad, err = build("environments:\n  e:\n    type: local\n    dqlite-port: many\n")
    assert.is_nil(bad)
    assert.matches("dqlite%-port", err)
  end)

  it("puts what jujud needs into the instance config and a server certificate naming juju-dqlite", function()
    local icfg = assert(finished({ ["state-store"] = "dqlite", ["dqlite-port"] = 18001 }))
    assert.are.equal("dqlite", icfg.state_store)
    assert.are.equal("dqlite", icfg.agent_env.STATE_STORE)
    assert.are.equal("1", icfg.agent_env.DQLITE_NODE_ID)
    assert.are.equal("18001", icfg.agent_env.DQLITE_PORT)
    assert.is_true(instancecfg.verify(icfg))
    local sans = assert(crypto.cert_info(icfg.state_serving_info.cert)).sans
    local names = {}
    for _, n in ipairs(sans) do names[n] = true end
    assert.is_true(names["juju-dqlite"])
    local conf = agentconf.from_instance_config(icfg)
    assert.are.equal("18001", conf.values.DQLITE_PORT)
    -- The default port when the config has none.
    assert.are.equal("17666", assert(finished({ ["state-store"] = "dqlite" })).agent_env.DQLITE_PORT)
    -- Other stores carry no dqlite values.
    assert.is_nil(assert(finished({ ["state-store"] = "sqlite" })).agent_env.DQLITE_NODE_ID)
    local none, err = finished({ ["state-store"] = "dqlite", ["dqlite-port"] = 70000 })
    assert.is_nil(none)
    assert.matches("dqlite%-port", err)
  end)

  describe("juju.agent.dqlitenode", function()
    local function conf(values)
      return { cacert = "CA", stateservercert = "CERT", stateserverkey = "KEY", values = values }
    end

    it("picks the machine's cloud-local address, then a public one, then loopback", function()
      assert.are.equal("10.0.0.5:17666", dqlite_agent.choose_address({ "127.0.0.1", "54.1.2.3", "10.0.0.5" }, 17666))
      assert.are.equal("54.1.2.3:1", dqlite_agent.choose_address({ "127.0.0.1", "54.1.2.3" }, 1))
      assert.are.equal("127.0.0.1:2", dqlite_agent.choose_address({ "127.0.0.1" }, 2))
      assert.are.equal("127.0.0.1:3", dqlite_agent.choose_address({}, 3))
      assert.are.equal("[2001:db8::1]:4", dqlite_agent.choose_address({ "2001:db8::1" }, 4))
    end)

    it("records the node's address and the servers, and builds TLS-only node options", function()
      local c = conf({ STATE_STORE = "dqlite", DQLITE_NODE_ID = "1", DQLITE_PORT = "17666", DQLITE_PLAIN = "true" })
      assert.is_true(dqlite_agent.is_dqlite(c))
      assert.is_true(dqlite_agent.record_address(c, { "10.1.2.3" }))
      assert.are.equal("10.1.2.3:17666", c.values.DQLITE_ADDRESS)
      assert.are.equal("10.1.2.3:17666", c.values.DQLITE_SERVERS)
      local o = assert(dqlite_agent.node_options("/var/lib/juju", c))
      assert.are.same({ id = 1, address = "10.1.2.3:17666", dir = "/var/lib/juju/dqlite",
        tls = { ca = "CA", cert = "CERT", key = "KEY" } }, o)
      assert.is_nil(o.plain) -- whatever agent.conf says: the test-only mode is never reachable
      c.values.DQLITE_SERVERS = "10.1.2.3:17666, 10.1.2.4:17666,10.1.2.5:17666"
      assert.are.same({ "10.1.2.3:17666", "10.1.2.4:17666", "10.1.2.5:17666" }, dqlite_agent.servers(c))
      local so = assert(dqlite_agent.client_store_options(c))
      assert.are.equal("dqlite", so.kind)
      assert.are.equal("juju-dqlite", so.tls.server_name)
    end)

    it("says what is missing from agent.conf", function()
      local ok, err = dqlite_agent.record_address(conf({ STATE_STORE = "dqlite" }), {})
      assert.is_nil(ok)
      assert.matches("DQLITE_PORT", err)
      local o, oerr = dqlite_agent.node_options("/d", conf({ DQLITE_ADDRESS = "10.0.0.1:1" }))
      assert.is_nil(o)
      assert.matches("DQLITE_NODE_ID", oerr)
      local c = conf({ DQLITE_NODE_ID = "1", DQLITE_ADDRESS = "10.0.0.1:1" })
      c.stateserverkey = nil
      o, oerr = dqlite_agent.node_options("/d", c)
      assert.is_nil(o)
      assert.matches("state server certificate and key", oerr)
      local n, nerr, ncode = dqlite_agent.start("/d", conf({ DQLITE_NODE_ID = "1" }))
      assert.is_nil(n)
      assert.matches("DQLITE_ADDRESS", nerr)
      assert.are.equal("EINVAL", ncode)
    end)
  end)
end)
