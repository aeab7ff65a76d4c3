-- maas_provider_spec.lua: the maas provider (providers/maas) through its
-- contract operations against the MAAS test server (tests/servers/maas:
-- gomaasapi's TestServer, OAuth PLAINTEXT checked, the node life cycle
-- driven by the wrapper), started once for this file without a launcher:
-- a started node is Deployed after one deployment_status query, with a
-- TEST-NET address. Config errors name their key; the credential check;
-- acquire (constraints and placement in the form), start (series, gzip'd
-- user-data), the wait for Deployed; no matching node; Failed deployment;
-- every call start_instance makes x {error, reset, throttling, timeout};
-- release through the journal and destroy by agent name; nothing left.
local providers = require("juju.providers")
local release_journal = require("juju.environs.teardown").run
local gzip = require("juju.gzip")
local fake = require("servers.maas.fake")
local h = require("helpers")
local ph = require("provider_harness")

local s = fake.start("127.0.0.1", "provider", { nodes = 3 })
local provider = assert(providers.load(nil, "maas"))
local work = h.tmpdir("juju-maas-provider-spec-")

local harness = ph.new {
  provider = provider, name = "maas", prefix = "maasspec", home = work, series = "trusty",
  uuid = function(env) return env.cfg.uuid end,
  config = function()
    return { ["maas-server"] = s.server_url, ["maas-oauth"] = fake.OAUTH, ["bootstrap-timeout"] = 600 }
  end,
}
local environment, opened, start = harness.environment, harness.opened, harness.start
local HOST_PUB, USERDATA = ph.HOST_PUB, ph.USERDATA

local function node_state(sid)
  for _, n in ipairs(s:state().nodes) do if n.system_id == sid then return n end end
end

local function nodes_of(agent)
  local out = {}
  for _, n in ipairs(s:state().nodes) do if n.agent_name == agent then out[#out + 1] = n end end
  return out
end

local function no_secret(text)
  assert.is_string(text)
  assert.is_nil(text:find(fake.SECRET, 1, true), "the token secret in: " .. text)
end

describe("the maas provider", function()
  teardown(function()
    s:stop()
    h.cleanup()
  end)

  before_each(function() s:clear_faults() end)
  after_each(function() collectgarbage() end)

  describe("config", function()
    it("needs maas-server, a URL, naming the key", function()
      local cfg, pc = environment { ["maas-server"] = false }
      local ok, err = provider.prepare_for_bootstrap(pc, cfg)
      assert.is_nil(ok)
      assert.matches("^maas%-server: must be set", err)
      cfg, pc = environment { ["maas-server"] = "maas.example/MAAS" }
      ok, err = provider.validate_config(pc, cfg)
      assert.is_nil(ok)
      assert.matches('^maas%-server: malformed maas%-server URL "maas%.example/MAAS"', err)
    end)

    it("takes maas-oauth with exactly two colons, naming the key and never echoing it", function()
      for _, bad in ipairs({ "onlyOne:secretPartXYZ", "a:b:c:secretPartXYZ", "a::secretPartXYZ", "" }) do
        local cfg, pc = environment { ["maas-oauth"] = bad }
        local ok, err = provider.validate_config(pc, cfg)
        assert.is_nil(ok, bad)
        assert.matches("^maas%-oauth: ", err)
        assert.is_nil(err:find("secretPartXYZ", 1, true), err)
      end
      local cfg, pc = environment()
      assert(provider.validate_config(pc, cfg))
    end)

    it("generates maas-agent-name (a UUID) at prepare and refuses one set by hand, as Juju did", function()
      local cfg, pc = environment()
      cfg = assert(provider.prepare_for_bootstrap(pc, cfg))
      assert.matches("^%x+%-%x+%-4%x+%-%x+%-%x+$", cfg["maas-agent-name"])
      local cfg2, pc2 = environment { ["maas-agent-name"] = "mine" }
      local ok, err = provider.prepare_for_bootstrap(pc2, cfg2)
      assert.is_nil(ok)
      assert.are.equal("maas-agent-name is already set; this should not be set by hand", err)
      -- open needs a prepared environment
      local cfg3, pc3 = environment()
      local env, oerr = provider.open(pc3, cfg3)
      assert.is_nil(env)
      assert.matches("^maas%-agent%-name: not set", oerr)
    end)

    it("declares maas-oauth secret and maas-server, maas-agent-name immutable; cpu-power unsupported", function()
      local f = provider.config.fields
      assert.is_true(f["maas-oauth"].secret)
      assert.is_true(f["maas-server"].immutable)
      assert.is_true(f["maas-agent-name"].immutable)
      assert.is_nil(f["maas-server"].secret)
      assert.are.same({ "cpu-power", "instance-type" }, provider.constraints.unsupported)
    end)
  end)

  describe("credentials", function()
    it("checks them at prepare with one call (GET maas/?op=get_config)", function()
      s:clear_calls()
      local cfg, pc = environment()
      assert(provider.prepare_for_bootstrap(pc, cfg))
      local calls = s:calls()
      assert.are.equal(1, #calls)
      assert.are.same({ "GET", "maas/", "get_config", 200 }, { calls[1].method, calls[1].path, calls[1].op,
        calls[1].status })
    end)

    it("turns a refused key into one AUTH line naming maas-oauth, without the secret", function()
      for _, bad in ipairs({ "maasConsumerKey:maasTokenKey:wrongSecret-9", "other:maasTokenKey:" .. fake.SECRET }) do
        local cfg, pc = environment { ["maas-oauth"] = bad }
        local ok, err, code = provider.prepare_for_bootstrap(pc, cfg)
        assert.is_nil(ok)
        assert.are.equal("AUTH", code, err)
        assert.matches("authentication failed", err)
        assert.matches("maas%-oauth", err)
        assert.is_nil(err:find("\n", 1, true), err)
        no_secret(err)
        assert.is_nil(err:find("wrongSecret-9", 1, true), err)
      end
      no_secret(s:log_text())
    end)

    it("reports an unreachable server naming it", function()
      local cfg, pc = environment { ["maas-server"] = "http://127.0.0.1:1/MAAS" }
      local ok, err = provider.prepare_for_bootstrap(pc, cfg)
      assert.is_nil(ok)
      assert.matches("cannot verify the credentials at http://127%.0%.0%.1:1/MAAS", err)
    end)
  end)

  describe("start_instance", function()
    it("acquires for the agent name, starts with the series and gzip'd user-data, waits until Deployed", function()
      local env, pc, j = opened()
      s:clear_calls()
      local before = #s:state().acquires
      local inst = assert(start(env, j, { constraints = { arch = "amd64", ["cpu-cores"] = 2, mem = 2048 } }))
      local sid = inst.id:match("([^/]+)/$")
      assert.matches("^/MAAS/api/1%.0/nodes/node%-%d+/$", inst.id)
      -- the form of the acquire: agent name and constraints, as MAAS names them
      local form = s:state().acquires[before + 1]
      assert.are.same({ env.agent }, form.agent_name)
      assert.are.same({ "amd64" }, form.arch)
      assert.are.same({ "2" }, form.cpu_count)
      assert.are.same({ "2048" }, form.mem)
      -- the server's own view of the node
      local n = node_state(sid)
      assert.are.equal("Deployed", n.status)
      assert.are.equal(env.agent, n.agent_name)
      assert.are.equal("trusty", n.distro_series)
      assert.is_true(n.user_data_gzip)
      assert.are.equal(USERDATA, gzip.gunzip(assert(s:user_data(sid))))
      -- addresses: the node's ip_addresses, then its hostname
      assert.are.same({ { value = n.address, type = "ipv4", scope = "cloud-local" },
        { value = n.hostname, type = "hostname", scope = "cloud-local" } }, inst.addresses)
      assert.are.equal("amd64", inst.hardware.arch)
      assert.are.equal(4096, inst.hardware.mem)
      assert.are.equal(2, inst.hardware["cpu-cores"])
      assert.are.equal("default", inst.hardware["availability-zone"])
      -- a refresh reads the node again
      assert.are.same(inst.addresses, assert(inst.refresh()).addresses)
      -- the calls, in Juju's order
      local ops = {}
      for _, c in ipairs(s:calls()) do ops[#ops + 1] = c.method .. " " .. c.path .. (c.op ~= "" and ("?op=" .. c.op) or "") end
      local text = table.concat(ops, "\n")
      assert.matches("POST nodes/%?op=acquire\nPOST nodes/{id}/%?op=start\nGET nodes/%?op=deployment_status", text)
      -- the journal knows the node, and the host key's file
      local rs = j:resources("instance")
      assert.are.equal(1, #rs)
      assert.are.equal(inst.id, rs[1].id)
      assert.are.equal("created", rs[1].state)
      assert.are.equal(HOST_PUB .. "\n", provider.storage(env):get("bootstrap-host-key"))
      -- the file's MAAS name is under the agent name's prefix
      local mine = {}
      for _, f in ipairs(s:state().files) do
        if f:sub(1, #env.agent) == env.agent then mine[#mine + 1] = f end
      end
      assert.are.same({ env.agent .. "-bootstrap-host-key" }, mine)
      assert(release_journal(provider, env, pc, j, {}))
      assert.are.equal("Ready", node_state(sid).status)
      assert.are.equal("", node_state(sid).agent_name)
      assert.are.same({}, provider.storage(env):list())
    end)

    it("places a node by zone=, by hostname, and refuses an unknown directive before acquiring", function()
      local env, pc, j = opened()
      local z = s:add_nodes(1, { zone = "zone-b" })[1]
      local inst = assert(start(env, j, { placement = "zone=zone-b" }))
      assert.are.equal(z, inst.id:match("([^/]+)/$"))
      assert.are.equal("zone-b", inst.hardware["availability-zone"])
      assert(release_journal(provider, env, pc, j, {}))
      local env2, pc2, j2 = opened()
      local by_name = node_state(z).hostname
      inst = assert(start(env2, j2, { placement = by_name }))
      assert.are.equal(z, inst.id:match("([^/]+)/$"))
      assert(release_journal(provider, env2, pc2, j2, {}))
      local env3, pc3, j3 = opened()
      local before = #s:state().acquires
      local ok, err, code = start(env3, j3, { placement = "rack=r1" })
      assert.is_nil(ok)
      assert.are.equal("INVALID", code)
      assert.matches("unknown placement directive: rack=r1", err)
      assert.are.equal(before, #s:state().acquires)
      assert(release_journal(provider, env3, pc3, j3, {}))
      assert.are.same({}, s:leftovers().nodes)
    end)

    it("sends tags and ^tags as tags and not_tags, and gets the node that has them", function()
      local env, pc, j = opened()
      local both = s:add_nodes(1, { tags = "gpu,ssd" })[1]
      local gpu = s:add_nodes(1, { tags = "gpu" })[1]
      local before = #s:state().acquires
      local inst = assert(start(env, j, { constraints = { tags = { "gpu", "^ssd" } } }))
      local form = s:state().acquires[before + 1]
      assert.are.same({ "gpu" }, form.tags)
      assert.are.same({ "ssd" }, form.not_tags)
      assert.are.equal(gpu, inst.id:match("([^/]+)/$"))
      assert.are.same({ "gpu" }, inst.hardware.tags)
      assert(release_journal(provider, env, pc, j, {}))
      local env2, pc2, j2 = opened()
      inst = assert(start(env2, j2, { constraints = { tags = { "ssd" } } }))
      assert.are.equal(both, inst.id:match("([^/]+)/$"))
      assert(release_journal(provider, env2, pc2, j2, {}))
      assert.are.same({}, s:leftovers().nodes)
    end)

    it("says in one line that no node matches the constraints, and nothing is left", function()
      local env, pc, j = opened()
      local ok, err, code = start(env, j, { constraints = { mem = 65536, ["cpu-cores"] = 64 } })
      assert.is_nil(ok)
      assert.are.equal("QUOTA", code)
      assert.matches('no node available matches constraints "cpu%-cores=64 mem=65536M" %(MAAS: No available node matches '
        .. "constraints: arch=amd64, cpu_count=64, mem=65536; maas: POST http://[^ ]+/nodes/%?op=acquire%)$", err)
      assert.is_nil(err:find("\n", 1, true))
      assert.are.same({}, nodes_of(env.agent))
      assert(release_journal(provider, env, pc, j, {}))
      assert.are.same({}, s:leftovers().nodes)
    end)

    it("fails on Failed deployment and the journal releases the node", function()
      local env, pc, j = opened()
      s:config { fail_deploy = 1 }
      local ok, err, code = start(env, j)
      assert.is_nil(ok)
      assert.are.equal("DEPLOY", code)
      assert.matches("node node%-%d+ failed to deploy", err)
      assert.are.equal(1, #nodes_of(env.agent))
      -- the intent carries the node's id though start_instance failed
      local r = j:resources("instance")[1]
      assert.are.equal("intended", r.state)
      assert.matches("/nodes/node%-%d+/$", r.id)
      assert(release_journal(provider, env, pc, j, {}))
      assert.are.same({}, nodes_of(env.agent))
      assert.are.same({}, j:resources())
      assert.are.same({}, s:leftovers().nodes)
    end)

    it("a launcher that exits without an address is a Failed deployment (the server's own launcher path)", function()
      local s2 = fake.start("127.0.0.1", "provider-launcher", { nodes = 1, launcher = "false" })
      finally(function() s2:stop() end)
      local cfg, pc, j = environment { ["maas-server"] = s2.server_url }
      cfg = assert(provider.prepare_for_bootstrap(pc, cfg))
      local env = assert(provider.open(pc, cfg))
      pc._open_storage = function() return provider.storage(env) end
      local ok, err, code = start(env, j)
      assert.is_nil(ok)
      assert.are.equal("DEPLOY", code, err)
      assert.matches("failed to deploy", err)
      local n = s2:state().nodes[1]
      assert.are.equal("failed", n.launcher)
      assert.are.equal("Failed deployment", n.status)
      assert(release_journal(provider, env, pc, j, {}))
      assert.is_true(s2:settle(30))
      assert.are.same({}, s2:leftovers().nodes)
      assert.are.same({}, s2:leftovers().files)
    end)

    it("gives a failed start as one line, and the journal releases the acquired node", function()
      local env, pc, j = opened()
      s:faults { op = "POST nodes/{id}/?op=start", status = 500 }
      local ok, err = start(env, j)
      assert.is_nil(ok)
      assert.matches("cannot start node node%-%d+", err)
      assert.are.equal(1, #nodes_of(env.agent))
      assert(release_journal(provider, env, pc, j, {}))
      assert.are.same({}, nodes_of(env.agent))
      assert.are.same({}, s:leftovers().nodes)
    end)

    it("waits out a deployment that takes several polls, on the provider's clock", function()
      local env, pc, j = opened()
      s:config { deploy_polls = 4 }
      local inst = assert(start(env, j))
      s:config { deploy_polls = 1 }
      local n = node_state(inst.id:match("([^/]+)/$"))
      assert.are.equal(5, n.polls)
      assert(release_journal(provider, env, pc, j, {}))
    end)

    it("asks for the tools' architecture when they have one; refuses a node no tools fit, and releases it", function()
      local env, pc, j = opened()
      local arm = s:add_nodes(1, { arch = "arm64/generic" })[1]
      local before = #s:state().acquires
      local ok, err, code = start(env, j, { placement = node_state(arm).hostname })
      assert.is_nil(ok)
      assert.are.equal("QUOTA", code, err)
      assert.are.same({ "amd64" }, s:state().acquires[before + 1].arch)
      assert(release_journal(provider, env, pc, j, {}))
      -- tools of two architectures: no arch asked for, the node checked after
      local tools = { { version = "1.25.6", series = "trusty", arch = "amd64" },
        { version = "1.25.6", series = "trusty", arch = "ppc64el" } }
      ok, err = start(env, j, { placement = node_state(arm).hostname, tools = tools })
      assert.is_nil(ok)
      assert.is_nil(s:state().acquires[before + 2].arch)
      assert.matches("is arm64: no tools for it %(tools: amd64, ppc64el%)", err)
      assert(release_journal(provider, env, pc, j, {}))
      assert.are.equal("Ready", node_state(arm).status)
      assert.are.same({}, s:leftovers().nodes)
    end)
  end)

  describe("faults in each call start_instance makes", function()
    local OPS = { "POST files/?op=add", "POST nodes/?op=acquire", "POST nodes/{id}/?op=start",
      "GET nodes/?op=deployment_status", "GET nodes/?op=list" }
    local FAULTS = {
      { "an error", { status = 500, count = -1 } },
      { "a connection reset", { reset = true, count = -1 } },
      { "throttling", { status = 503, count = 2 } },
      { "a timeout", { delay = 1.5, count = 1 } },
    }
    for _, op in ipairs(OPS) do
      for _, f in ipairs(FAULTS) do
        it(op .. " meeting " .. f[1] .. ": started, or one clear line and nothing left", function()
          local env, pc, j = opened { ["cloud-request-timeout"] = 1 }
          local fault = { op = op }
          for k, v in pairs(f[2]) do fault[k] = v end
          s:faults(fault)
          local inst, err = start(env, j)
          s:clear_faults()
          if f[1] == "throttling" and op ~= "POST files/?op=add" then
            -- nothing done: GETs are retried, acquire and start tried again
            -- (MAAS file calls are not retried, as Juju's were not)
            assert(inst, err)
          elseif not inst then
            assert.is_string(err)
            assert.is_nil(err:find("\n", 1, true), err)
            -- the form (the user-data holds the host key) stays out
            assert.is_nil(err:find("user_data", 1, true), err)
            no_secret(err)
          end
          assert(release_journal(provider, env, pc, j, { destroy = true }))
          assert.are.same({}, nodes_of(env.agent))
          assert.are.same({}, s:leftovers().nodes)
          assert.are.same({}, provider.storage(env):list())
        end)
      end
    end
  end)

  describe("cleanup", function()
    it("all_instances lists only the environment's nodes (by agent name)", function()
      local env1, pc1, j1 = opened()
      local env2, pc2, j2 = opened()
      local a = assert(start(env1, j1))
      local b = assert(start(env2, j2))
      local l1 = assert(provider.all_instances(env1))
      assert.are.equal(1, #l1)
      assert.are.equal(a.id, l1[1].id)
      local l2 = assert(provider.all_instances(env2))
      assert.are.equal(1, #l2)
      assert.are.equal(b.id, l2[1].id)
      assert(release_journal(provider, env1, pc1, j1, {}))
      assert(release_journal(provider, env2, pc2, j2, {}))
      assert.are.same({}, s:leftovers().nodes)
    end)

    it("destroy finds the nodes by agent name when the journal is lost, and removes the files", function()
      local env, pc, j = opened()
      local inst = assert(start(env, j))
      assert(provider.storage(env):put("provider-state", "state-instances: [" .. inst.id .. "]\n"))
      assert(provider.destroy(env))
      assert.are.same({}, nodes_of(env.agent))
      assert.are.same({}, provider.storage(env):list())
      assert.are.same({}, s:leftovers().nodes)
      local _ = pc
    end)

    it("releases an intent without an id (acquire's answer lost) through the agent name's nodes", function()
      local env, pc, j = opened()
      local name = "juju-" .. env.cfg.uuid .. "-machine-0"
      assert(j:intent("instance", name))
      -- the acquire went through; its answer never reached the journal
      local node = assert(env.maas:call("POST", "nodes/", { op = "acquire", form = { agent_name = env.agent } }))
      assert.are.equal("Allocated", node_state(node.system_id).status)
      assert(release_journal(provider, env, pc, j, {}))
      assert.are.equal("Ready", node_state(node.system_id).status)
      assert.are.same({}, s:leftovers().nodes)
    end)

    it("never sends the token secret in a form, user-data or file, nor logs it", function()
      for _, n in ipairs(s:state().nodes) do
        if n.user_data_file ~= "" then no_secret(gzip.gunzip(assert(s:user_data(n.system_id)))) end
      end
      for _, f in ipairs(s:state().acquires) do
        for k, v in pairs(f) do no_secret(k .. "=" .. table.concat(v, ",")) end
      end
      no_secret(s:log_text())
    end)

    it("leaves nothing in the server after all of the above", function()
      assert.is_true(s:settle(30))
      local left = s:leftovers()
      assert.are.same({}, left.nodes)
      assert.are.same({}, left.files)
    end)
  end)
end)
