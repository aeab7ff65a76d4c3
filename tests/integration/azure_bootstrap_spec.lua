-- azure_bootstrap_spec.lua (#integration): `juju bootstrap --upload-tools`
-- of an azure environment end to end against the Service Management API
-- test server (tests/servers/azure-mgmt on 127.0.0.50: TLS with a test CA,
-- the management certificate required, request bodies checked by
-- python3-azure's azure.servicemanagement) and azurite (environ storage),
-- the deployment's role a real test host (juju.testing.instance on
-- 127.0.0.51..): affinity group -> virtual network (read-modify-write of a
-- network configuration holding a foreign network) -> cloud service ->
-- deployment -> SSH with the pinned host key -> phase 2 -> machine agent
-- -> `juju status` shows machine 0 started -> `juju destroy-environment -y`
-- leaves nothing but the foreign network, byte for byte. No secret anywhere.
local fake = require("servers.azure-mgmt.fake")
local azurite = require("servers.azure-blob.azurite")
local instance = require("juju.testing.instance")
local json = require("juju.json")
local yaml = require("juju.yaml")
local sys = require("juju.sys")
local fs = require("juju.fs")
local blob = require("juju.cloud.storage.azure")
local h = require("helpers")

local IMAGE = "b39f27a8b8c64d52b05eac6a62ebad85__Ubuntu-14_04_3-LTS-amd64-server-20150908-en-us-30GB"
-- the subscription's network document holds someone else's network
local FOREIGN = require("clouds.azure").FOREIGN_NETWORK

describe("azure bootstrap end to end #integration", function()
  local work, state_dir, s, az

  setup(function()
    work = h.tmpdir("juju-azure-e2e-")
    state_dir = work .. "/hosts"
    assert(fs.mkdir_p(state_dir, tonumber("700", 8)))
    assert(fs.mkdir_p(work .. "/certs", tonumber("700", 8)))
    az = azurite.start()
    local p = instance.programs(state_dir)
    s = fake.start { host = "127.0.0.50", dir = work .. "/certs", launcher = p.launcher, terminator = p.terminator,
      storage_key = az.key, env = { INSTANCE_ADDRESS_BASE = "50", INSTANCE_OWNER_PID = p.env.INSTANCE_OWNER_PID } }
  end)

  teardown(function()
    if s then s:stop() end
    instance.terminate_all(state_dir)
    h.cleanup()
  end)

  local function new_environment(name, attrs)
    local home = h.tmpdir("juju-azure-e2e-home-")
    local env = h.env(home, { ASAN_OPTIONS = os.getenv("ASAN_OPTIONS") })
    assert(fs.mkdir_p(env.JUJU_HOME, tonumber("700", 8)))
    assert(fs.mkdir_p(env.HOME .. "/.ssh", tonumber("700", 8)))
    local kg = sys.run({ "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", env.HOME .. "/.ssh/id_ed25519" }, {})
    assert.are.equal(0, kg.code, kg.stderr)
    local e = { type = "azure", location = "West US", ["management-subscription-id"] = s.subscription,
      ["management-certificate-path"] = s.cert_file, ["storage-account-name"] = az.account,
      ["force-image-name"] = IMAGE, ["management-endpoint"] = s.endpoint, ["storage-endpoint"] = az.endpoint,
      ["cloud-ca-bundle-path"] = s.ca_file, ["default-series"] = "bookworm", ["state-store"] = "sqlite",
      ["bootstrap-timeout"] = 300 }
    for k, v in pairs(attrs or {}) do if v == false then e[k] = nil else e[k] = v end end
    h.write(env.JUJU_HOME .. "/environments.yaml",
      assert(yaml.encode { default = name, environments = { [name] = e } }))
    return env, home
  end

  local function key_body()
    local pem = h.read(s.cert_file)
    return assert(pem:match("PRIVATE KEY%-%-%-%-%-\n([^\n]+)"))
  end

  local function no_secret(text, what)
    assert.is_nil(text:find(key_body(), 1, true), "the management key in " .. what)
    assert.is_nil(text:find(az.key, 1, true), "the storage key in " .. what)
  end

  it("bootstraps (affinity group, vnet next to a foreign network, cloud service, deployment), status shows "
    .. "machine 0 started, destroy-environment leaves the foreign network byte for byte and nothing else", function()
    s:netconf(FOREIGN)
    local env = new_environment("aze2e")
    s:clear_calls()
    local code, out, err = h.juju(env, { "bootstrap", "--upload-tools", "--debug" })
    assert.are.equal(0, code, err)
    assert.matches("Bootstrap complete", err)
    assert.matches("azure: POST https://127%.0%.0%.50:%d+/" .. s.subscription:gsub("%-", "%%-") .. "/affinitygroups", err)
    assert.matches("Creating affinity group juju%-aze2e%-ag in West US", err)
    local all_output = out .. err

    local st = s:state()
    assert.is_not_nil(st.affinity_groups["juju-aze2e-ag"])
    -- the foreign network kept byte for byte, ours added
    assert.is_truthy(st.netconf:find('name="juju-aze2e-vnet" Location="West US"', 1, true))
    assert.are.equal(FOREIGN, (st.netconf:gsub('<VirtualNetworkSite name="juju%-aze2e%-vnet".-</VirtualNetworkSite>', "")))
    local svc_name, svc = next(st.services)
    assert.matches("^juju%-aze2e%-[a-z0-9]+$", svc_name)
    assert.are.equal("juju-aze2e-ag", svc.affinity_group)
    assert.are.equal("juju-state-server", svc.label)
    local _, dep = next(svc.deployments)
    assert.are.equal(IMAGE, dep.image)
    assert.are.equal("ubuntu", dep.user_name)
    assert.are.equal("juju-aze2e-vnet", dep.virtual_network)
    local ports = {}
    for _, e in ipairs(dep.endpoints) do ports[e.name] = e.port end
    assert.are.same({ sshport = 22, apiport = 17070 }, ports)
    assert.matches("^#cloud%-config", dep.user_data)
    no_secret(dep.user_data, "user-data")
    assert.matches("connect to 127%.0%.0%.5%d:22", err)

    -- operations polled, versions sent; API calls per bootstrap (bench material)
    local counts, polled = {}, 0
    for _, c in ipairs(s:calls()) do
      assert.is_string(c["x-ms-version"], c.path)
      local k = c.method .. " " .. c.path:gsub("/operations/%x+$", "/operations/<id>"):gsub("juju%-aze2e%-%w+", "<svc>")
      counts[k] = (counts[k] or 0) + 1
      if c.path:match("^/operations/") then polled = polled + 1 end
    end
    assert.is_true(polled >= 3)
    io.stderr:write("azure bootstrap API calls: ", json.encode(counts), "\n")

    assert.matches("Rotated machine 0's SSH host key", err)

    -- no secret in environ storage
    local st_blob = assert(blob.new { account = az.account, key = az.key, container = "juju-aze2e-private",
      endpoint = az.endpoint })
    local names = assert(st_blob:list())
    assert.is_true(#names >= 2) -- provider-state, tools, bootstrap-host-key
    for _, n in ipairs(names) do no_secret(assert(st_blob:get(n)), "blob " .. n) end

    -- nor on machine 0 (searched in the test host's own mount namespace)
    local hosts = assert(fs.list(state_dir))
    local rec
    for _, f in ipairs(hosts) do
      if f:match("%.json$") then rec = assert(json.decode(h.read(state_dir .. "/" .. f))) end
    end
    assert.is_table(rec, "no test host record")
    local r = sys.run({ "nsenter", "--target", tostring(rec.sshd_pid), "--mount", "--root", "--", "grep", "-rlF",
      key_body(), "/etc", "/var/lib/juju", "/var/lib/cloud", "/home" }, { timeout = 60 })
    assert.are.equal(1, r.code, "the management key is on machine 0 in: " .. r.stdout .. r.stderr)

    code, out, err = h.juju(env, { "status" })
    assert.are.equal(0, code, err)
    all_output = all_output .. out .. err
    local doc = assert(yaml.decode(out))
    assert.are.equal("started", doc.machines["0"]["agent-state"])
    assert.matches("^" .. svc_name:gsub("%-", "%%-") .. "%-juju", doc.machines["0"]["instance-id"])

    code, out, err = h.juju(env, { "destroy-environment", "-y", "aze2e" })
    assert.are.equal(0, code, err)
    all_output = all_output .. out .. err
    assert.is_true(s:settle(60))
    assert.are.same({ affinity_groups = {}, hosted_services = {}, deployments = {}, networks = {} }, s:leftovers())
    assert.are.equal(FOREIGN, s:state().netconf)
    for _, hst in ipairs(s:state().hosts) do assert.is_truthy(hst.terminate and hst.terminate.done, hst.id) end
    no_secret(all_output, "the output")
  end)

  it("a failed deployment: one line naming the step, the journal leaves nothing, the foreign network unchanged",
    function()
    s:netconf(FOREIGN)
    local env = new_environment("azfail")
    s:fault { match = "POST /services/hostedservices/", kind = "error", status = 500, code = "InternalError" }
    local code, out, err = h.juju(env, { "bootstrap", "--upload-tools" })
    s:clear_faults()
    assert.are.equal(1, code)
    assert.matches("cannot create deployment juju%-azfail%-%w+%-v2", err)
    assert.is_true(s:settle(60))
    assert.are.same({ affinity_groups = {}, hosted_services = {}, deployments = {}, networks = {} }, s:leftovers())
    assert.are.equal(FOREIGN, s:state().netconf)
    no_secret(out .. err, "the output")
  end)
end)
