-- state_initialize_spec.lua: the bootstrap documents of spec 2.15 on the
-- sqlite store, their idempotent re-creation (W15), the CA key rule (W3),
-- and the agent state derived from presence heartbeats.
local state = require("juju.state")
local initialize = require("juju.state.initialize")
local yaml = require("juju.yaml")
local helpers = require("helpers")

local UUID = "7d2e6c1a-9b8f-4e3d-a2c1-0f9e8d7c6b5a"
local NOW = 1446000000
local FW_DOT, FW_DOLLAR = "\u{FF0E}", "\u{FF04}"

local COLLECTIONS = { "constraints", "settings", "stateServers", "environments", "userenvname", "envusers",
  "users", "sequence", "machines", "instanceData", "statuses", "toolsmetadata", "presence" }

local function params(overrides)
  local p = {
    env_uuid = UUID, env_name = "amazon",
    config = {
      name = "amazon", type = "ec2", uuid = UUID, ["api-port"] = 17070, ["admin-secret"] = "",
      ["authorized-keys"] = "ssh-rsa AAAA juju-client-key\n", ["prefer-ipv6"] = false,
      ["odd.key$"] = "v", nested = { ["a.b"] = { ["c$"] = 1 } }, list = yaml.array({ "x.y" }),
    },
    admin_password_hash = "admin-hash",
    machine = {
      series = "trusty", instance_id = "i-0123", jobs = { "JobManageEnviron", "JobHostUnits" },
      addresses = {
        { value = "127.0.0.1", type = "ipv4", scope = "local-machine" },
        { value = "ec2-54-1-2-3.compute-1.amazonaws.com", type = "hostname", scope = "public" },
        { value = "10.0.0.5", type = "ipv4", scope = "local-cloud" },
        { value = "54.1.2.3", type = "ipv4", scope = "public" },
      },
      hardware = { arch = "amd64", mem = 3840, ["root-disk"] = 8192, ["cpu-cores"] = 1, ["cpu-power"] = 100,
        tags = { "a", "b" }, ["availability-zone"] = "us-east-1a" },
    },
    constraints = { mem = 2048, ["cpu-cores"] = 2, tags = { "x" }, arch = "" },
    api_port = 17070, state_port = 37017,
    serving_info = { cert = "CERT PEM", private_key = "KEY PEM", ca_private_key = "CA KEY PEM",
      shared_secret = "SHARED", system_identity = "IDENTITY PEM" },
    machine_password_hash = "agent-hash",
    tools = {
      { version = "1.25.0-trusty-amd64", size = 1234, sha256 = "abc", path = "tools/1.25.0-trusty-amd64-abc" },
      { version = "1.25.0-precise-amd64", size = 1234, sha256 = "abc" },
    },
    now = NOW,
  }
  for k, v in pairs(overrides or {}) do p[k] = v end
  return p
end

-- The documents spec 2.15 (and the brief) call for, written out by hand.
local function expected_docs()
  local addr = {
    { value = "127.0.0.1", addresstype = "ipv4", networkscope = "local-machine" },
    { value = "ec2-54-1-2-3.compute-1.amazonaws.com", addresstype = "hostname", networkscope = "public" },
    { value = "10.0.0.5", addresstype = "ipv4", networkscope = "local-cloud" },
    { value = "54.1.2.3", addresstype = "ipv4", networkscope = "public" },
  }
  local host_ports = {}
  for i, a in ipairs(addr) do
    host_ports[i] = { value = a.value, addresstype = a.addresstype, networkscope = a.networkscope, port = 17070 }
  end
  local cons = { ["env-uuid"] = UUID, mem = 2048, cpucores = 2, tags = { "x" }, arch = "" }
  local function with_id(id, t)
    local out = { _id = id }
    for k, v in pairs(t) do out[k] = v end
    return out
  end
  return {
    ["constraints/" .. UUID .. ":e"] = with_id(UUID .. ":e", cons),
    ["settings/" .. UUID .. ":e"] = {
      _id = UUID .. ":e", ["env-uuid"] = UUID, name = "amazon", type = "ec2", uuid = UUID,
      ["api-port"] = 17070, ["admin-secret"] = "", ["authorized-keys"] = "ssh-rsa AAAA juju-client-key\n",
      ["prefer-ipv6"] = false, ["odd" .. FW_DOT .. "key" .. FW_DOLLAR] = "v",
      nested = { ["a" .. FW_DOT .. "b"] = { ["c" .. FW_DOLLAR] = 1 } }, list = { "x.y" },
    },
    ["environments/" .. UUID] = { _id = UUID, name = "amazon", life = 0, owner = "admin@local", ["server-uuid"] = UUID },
    ["userenvname/admin@local:amazon"] = { _id = "admin@local:amazon" },
    ["envusers/" .. UUID .. ":admin@local"] = {
      _id = UUID .. ":admin@local", ["env-uuid"] = UUID, user = "admin@local", displayname = "admin",
      createdby = "admin@local", datecreated = NOW,
    },
    ["users/admin"] = {
      _id = "admin", name = "admin", displayname = "admin", deactivated = false, passwordhash = "admin-hash",
      passwordsalt = "", createdby = "admin", datecreated = NOW,
    },
    ["stateServers/e"] = { _id = "e", ["env-uuid"] = UUID, machineids = { "0" }, votingmachineids = { "0" } },
    ["stateServers/apiHostPorts"] = { _id = "apiHostPorts", apihostports = { host_ports } },
    ["stateServers/stateServingInfo"] = {
      _id = "stateServingInfo", apiport = 17070, stateport = 37017, cert = "CERT PEM", privatekey = "KEY PEM",
      sharedsecret = "SHARED", systemidentity = "IDENTITY PEM",
    },
    ["stateServers/hostedEnvironCount"] = { _id = "hostedEnvironCount", refcount = 0 },
    ["sequence/" .. UUID .. ":machine"] = { _id = UUID .. ":machine", ["env-uuid"] = UUID, name = "machine", counter = 1 },
    ["machines/" .. UUID .. ":0"] = {
      _id = UUID .. ":0", machineid = "0", ["env-uuid"] = UUID, nonce = "user-admin:bootstrap", series = "trusty",
      containertype = "", life = 0, jobs = { 2, 1 }, novote = false, hasvote = true, clean = true,
      addresses = addr, preferredpublicaddress = addr[4], preferredprivateaddress = addr[3],
      passwordhash = "agent-hash",
    },
    ["instanceData/" .. UUID .. ":0"] = {
      _id = UUID .. ":0", machineid = "0", ["env-uuid"] = UUID, instanceid = "i-0123", arch = "amd64", mem = 3840,
      rootdisk = 8192, cpucores = 1, cpupower = 100, tags = { "a", "b" }, availzone = "us-east-1a",
    },
    ["constraints/" .. UUID .. ":m#0"] = with_id(UUID .. ":m#0", cons),
    ["statuses/" .. UUID .. ":m#0"] = {
      _id = UUID .. ":m#0", ["env-uuid"] = UUID, status = "pending", statusinfo = "", updated = NOW * 1000000000,
    },
    ["toolsmetadata/1.25.0-trusty-amd64"] = {
      _id = "1.25.0-trusty-amd64", version = "1.25.0-trusty-amd64", size = 1234, sha256 = "abc",
      path = "tools/1.25.0-trusty-amd64-abc",
    },
    ["toolsmetadata/1.25.0-precise-amd64"] = {
      _id = "1.25.0-precise-amd64", version = "1.25.0-precise-amd64", size = 1234, sha256 = "abc",
      path = "tools/1.25.0-precise-amd64-abc",
    },
  }
end

local function count_keys(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

-- Every document of every collection, keyed "coll/id".
local function dump(store)
  local out = {}
  for _, coll in ipairs(COLLECTIONS) do
    for _, doc in ipairs(assert(store:find(coll))) do out[coll .. "/" .. doc._id] = doc end
  end
  return out
end

describe("juju.state.initialize", function()
  local dir, store, n

  before_each(function()
    dir = helpers.tmpdir("juju-init-")
    n = (n or 0) + 1
    store = assert(state.open("sqlite", { path = dir .. "/state" .. n .. ".db" }))
  end)
  after_each(function()
    store:close()
    helpers.cleanup()
    collectgarbage()
  end)

  it("creates exactly the documents of spec 2.15", function()
    local res = assert(initialize.initialize(store, params()))
    local want = expected_docs()
    assert.are.same({ inserted = count_keys(want), existing = 0 }, res)
    assert.are.equal(17, res.inserted)
    local got = dump(store)
    for key, doc in pairs(want) do
      assert.are.same(doc, got[key], key)
    end
    assert.are.same(want, got)
    -- types that matter to Go readers
    local m = got["machines/" .. UUID .. ":0"]
    assert.are.equal("integer", math.type(m.jobs[1]))
    assert.is_true(yaml.is_array(m.jobs))
    assert.is_true(yaml.is_array(got["stateServers/e"].machineids))
    assert.is_true(yaml.is_array(got["stateServers/apiHostPorts"].apihostports[1]))
    assert.are.equal("integer", math.type(got["statuses/" .. UUID .. ":m#0"].updated))
  end)

  it("leaves the CA private key out unless store_ca_key is set (W3)", function()
    assert(initialize.initialize(store, params()))
    local info = assert(store:get("stateServers", "stateServingInfo"))
    assert.is_nil(info.caprivatekey)
    store:close()
    store = assert(state.open("sqlite", { path = dir .. "/with-ca.db" }))
    assert(initialize.initialize(store, params({ store_ca_key = true })))
    info = assert(store:get("stateServers", "stateServingInfo"))
    assert.are.equal("CA KEY PEM", info.caprivatekey)
  end)

  it("inserts nothing and changes nothing when run again", function()
    assert(initialize.initialize(store, params()))
    local before = dump(store)
    local res = assert(initialize.initialize(store, params({ now = NOW + 3600, admin_password_hash = "other" })))
    assert.are.same({ inserted = 0, existing = 17 }, res)
    assert.are.same(before, dump(store))
  end)

  it("completes what a failed first run left, and only that (W15)", function()
    assert(initialize.initialize(store, params()))
    local complete = dump(store)
    local lost = { { "machines", UUID .. ":0" }, { "stateServers", "stateServingInfo" },
      { "toolsmetadata", "1.25.0-precise-amd64" }, { "settings", UUID .. ":e" }, { "statuses", UUID .. ":m#0" } }
    for _, l in ipairs(lost) do assert.is_true(store:remove(l[1], l[2])) end
    -- a document the agent changed since stays as the agent left it
    assert.is_true(store:update("environments", UUID, { life = 1 }))
    local res = assert(initialize.initialize(store, params()))
    assert.are.same({ inserted = #lost, existing = 17 - #lost }, res)
    local got = dump(store)
    assert.are.equal(1, got["environments/" .. UUID].life)
    got["environments/" .. UUID].life = 0
    assert.are.same(complete, got)
  end)

  it("stops at the first store failure with the document's name", function()
    local written = {}
    local failing = {
      ensure = function(_, coll, doc)
        if coll == "users" then return nil, "disk full", "SQLITE" end
        written[#written + 1] = coll .. "/" .. doc._id
        return "inserted"
      end,
    }
    local r, msg, code = initialize.initialize(failing, params())
    assert.is_nil(r)
    assert.are.equal("SQLITE", code)
    assert.are.equal("cannot initialize state: users/admin: disk full", msg)
    assert.are.same({ "constraints/" .. UUID .. ":e", "settings/" .. UUID .. ":e", "environments/" .. UUID,
      "userenvname/admin@local:amazon", "envusers/" .. UUID .. ":admin@local" }, written)
  end)

  it("refuses bad parameters before writing anything", function()
    local cases = {
      params({ env_uuid = "" }),
      params({ config = "x" }),
      params({ now = 1.5 }),
      params({ machine = { series = "trusty", instance_id = "i-1", jobs = { "JobFly" } } }),
      params({ machine = { series = "trusty", instance_id = "i-1", jobs = { "JobHostUnits" },
        hardware = { wings = 2 } } }),
      params({ constraints = { colour = "red" } }),
      params({ serving_info = { cert = "c" } }),
      params({ tools = { { version = "1.25.0-trusty-amd64" } } }),
    }
    for i, p in ipairs(cases) do
      local r, msg, code = initialize.initialize(store, p)
      assert.is_nil(r, "case " .. i)
      assert.are.equal("EINVAL", code, "case " .. i)
      assert.matches("^cannot initialize state: ", msg)
    end
    assert.are.same({}, dump(store))
  end)

  it("picks IPv6 addresses first with prefer_ipv6, and hostnames before IPv6 otherwise", function()
    local machine = params().machine
    machine.addresses = {
      { value = "2001:db8::1", type = "ipv6", scope = "public" },
      { value = "host.example.com", type = "hostname", scope = "public" },
      { value = "fd00::5", type = "ipv6", scope = "local-cloud" },
    }
    local docs = assert(initialize.documents(params({ machine = machine })))
    local m
    for _, e in ipairs(docs) do if e[1] == "machines" then m = e[2] end end
    assert.are.equal("host.example.com", m.preferredpublicaddress.value)
    assert.are.equal("fd00::5", m.preferredprivateaddress.value)
    docs = assert(initialize.documents(params({ machine = machine, prefer_ipv6 = true })))
    for _, e in ipairs(docs) do if e[1] == "machines" then m = e[2] end end
    assert.are.equal("2001:db8::1", m.preferredpublicaddress.value)
    machine.addresses = { { value = "127.0.0.1", type = "ipv4", scope = "local-machine" } }
    docs = assert(initialize.documents(params({ machine = machine })))
    for _, e in ipairs(docs) do if e[1] == "machines" then m = e[2] end end
    assert.is_nil(m.preferredpublicaddress)
    assert.is_nil(m.preferredprivateaddress)
  end)

  describe("presence", function()
    it("moves a machine from pending to started to down", function()
      assert(initialize.initialize(store, params()))
      local st = assert(initialize.machine_status(store, UUID, "0", NOW))
      assert.are.equal("pending", st.agent_state)
      assert.are.equal("i-0123", st.instance_id)
      assert.are.equal("trusty", st.series)

      assert.is_true(initialize.heartbeat(store, UUID, "0", { time = NOW + 100, pid = 4242, agent_version = "1.25.0" }))
      assert.are.same({ _id = UUID .. ":m#0", machine = "0", time = NOW + 100, pid = 4242, agent_version = "1.25.0" },
        store:get("presence", UUID .. ":m#0"))
      st = assert(initialize.machine_status(store, UUID, "0", NOW + 110))
      assert.are.equal("started", st.agent_state)
      assert.are.equal(10, st.age)
      assert.are.equal(4242, st.pid)
      assert.are.equal("1.25.0", st.agent_version)
      assert.are.equal(NOW + 100, st.heartbeat)
      assert.are.equal("started", initialize.machine_status(store, UUID, "0", NOW + 129).agent_state)
      assert.are.equal("down", initialize.machine_status(store, UUID, "0", NOW + 130).agent_state)
      assert.are.equal("started", initialize.machine_status(store, UUID, "0", NOW + 130, 60).agent_state)
      assert.are.equal("down", initialize.machine_status(store, UUID, "0", NOW + 500).agent_state)

      assert.is_true(initialize.heartbeat(store, UUID, "0", { time = NOW + 500 }))
      st = initialize.machine_status(store, UUID, "0", NOW + 501)
      assert.are.equal("started", st.agent_state)
      assert.are.equal(4242, st.pid) -- kept from the earlier beat
      assert.are.equal(1, store:count("presence"))

      assert.is_true(initialize.heartbeat(store, UUID, "0", { time = NOW + 502, stopped = true }))
      assert.are.equal("down", initialize.machine_status(store, UUID, "0", NOW + 503).agent_state)
    end)

    it("keeps machines and environments apart", function()
      assert.is_true(initialize.heartbeat(store, UUID, "0", { time = NOW }))
      assert.are.equal("pending", initialize.machine_status(store, UUID, "1", NOW).agent_state)
      assert.are.equal("pending", initialize.machine_status(store, "other-uuid", "0", NOW).agent_state)
      assert.are.equal("started", initialize.machine_status(store, UUID, "0", NOW).agent_state)
    end)

    it("passes store failures on and raises on misuse", function()
      local broken = { get = function() return nil, "gone", "SQLITE" end }
      local r, msg, code = initialize.machine_status(broken, UUID, "0", NOW)
      assert.is_nil(r)
      assert.are.equal("gone", msg)
      assert.are.equal("SQLITE", code)
      assert.has_error(function() initialize.machine_status(store, UUID, 0, NOW) end)
      assert.has_error(function() initialize.heartbeat(store, nil, "0", {}) end)
    end)
  end)
end)
