-- azure_provider_spec.lua: the azure provider (providers/azure) through its
-- contract operations against the Service Management API test server
-- (tests/servers/azure-mgmt: client certificate required, bodies checked
-- by python3-azure's azure.servicemanagement), without a launcher (a
-- deployment's role has no address) and azurite for the environ storage.
-- Config errors name their key; a bad certificate file; a certificate the
-- subscription does not know; an unknown location; the network document
-- keeps a pre-seeded foreign network byte for byte after a success and
-- after a failure; a concurrent change to it is detected and not
-- overwritten; the affinity group and the vnet are undone by the journal,
-- also when only one exists; destroy without the journal; nothing left.
local testing = require("juju.testing")
local context = require("juju.context")
local journal = require("juju.journal")
local providers = require("juju.providers")
local release_journal = require("juju.environs.teardown").run
local crypto = require("juju.crypto")
local fs = require("juju.fs")
local fake = require("servers.azure-mgmt.fake")
local azurite = require("servers.azure-blob.azurite")
local h = require("helpers")

local work = h.tmpdir("juju-azure-provider-spec-")
assert(fs.mkdir_p(work .. "/certs", tonumber("700", 8)))
local az = azurite.start()
local s = fake.start { host = "127.0.0.1", dir = work .. "/certs", storage_key = az.key }
local provider = assert(providers.load(nil, "azure"))

local FOREIGN = '<?xml version="1.0" encoding="utf-8"?>\n'
  .. '<NetworkConfiguration xmlns="http://schemas.microsoft.com/ServiceHosting/2011/07/NetworkConfiguration">\n'
  .. '  <VirtualNetworkConfiguration>\n    <VirtualNetworkSites>\n'
  .. '      <VirtualNetworkSite name="payroll-net" Location="West US">'
  .. '<AddressSpace><AddressPrefix>172.16.0.0/12</AddressPrefix></AddressSpace></VirtualNetworkSite>\n'
  .. '    </VirtualNetworkSites>\n  </VirtualNetworkConfiguration>\n</NetworkConfiguration>\n'

-- A line of the management key's body: never in a message.
local KEY_LINE = assert(h.read(s.cert_file):match("PRIVATE KEY%-%-%-%-%-\n([^\n]+)"))

local counter = 0
local function environment(extra)
  counter = counter + 1
  local name = "azspec" .. counter
  local cfg = { name = name, type = "azure", uuid = crypto.uuid4(), location = "West US",
    ["management-subscription-id"] = s.subscription, ["management-certificate-path"] = s.cert_file,
    ["storage-account-name"] = az.account, ["storage-endpoint"] = az.endpoint, ["management-endpoint"] = s.endpoint,
    ["cloud-ca-bundle-path"] = s.ca_file, ["force-image-name"] = "ubuntu-image", ["bootstrap-timeout"] = 600 }
  for k, v in pairs(extra or {}) do
    if v == false then cfg[k] = nil else cfg[k] = v end
  end
  local lines = {}
  local ctx = context.new { clock = testing.virtual_clock(), env = {},
    stdout = function() end, stderr = function(l) lines[#lines + 1] = l end }
  local j = journal.memory()
  local pc = context.provider(ctx, { home = work, env_name = name, cfg = cfg, provider_name = "azure", journal = j })
  return cfg, pc, j, lines
end

local function opened(extra)
  local cfg, pc, j, lines = environment(extra)
  cfg = assert(provider.prepare_for_bootstrap(pc, cfg))
  local env = assert(provider.open(pc, cfg))
  pc._open_storage = function() return provider.storage(env) end
  return env, pc, j, cfg, lines
end

local function start(env, j)
  local name = "juju-" .. env.cfg.uuid .. "-machine-0"
  assert(j:intent("instance", name))
  local inst, err, code = provider.start_instance(env, {
    instance_config = { series = "trusty", machine_id = "0", nonce = "n", tags = { ["juju-env-uuid"] = env.cfg.uuid } },
    userdata = "#cloud-config\nruncmd:\n- echo hello\n", tools = { { version = "1.25.6", series = "trusty",
      arch = "amd64" } }, constraints = {}, name = name,
    host_keys = { ed25519 = { public = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPHJ2k7Zd7p3zLKwZ0mG7lJmD3nJ7jL7mH3r1nJ8aP0m" } } })
  if inst then assert(j:record("instance", inst.id, { name = name })) end
  return inst, err, code
end

local EMPTY = { affinity_groups = {}, hosted_services = {}, deployments = {}, networks = {} }

local function strip_ours(doc, env)
  return (doc:gsub('<VirtualNetworkSite name="' .. env.vnet:gsub("%-", "%%-") .. '".-</VirtualNetworkSite>', ""))
end

local function kinds(j)
  local out = {}
  for _, k in ipairs({ "affinity-group", "virtual-network", "cloud-service" }) do
    for _, r in ipairs(j:resources(k)) do out[#out + 1] = k .. ":" .. r.state end
  end
  return out
end

describe("azure provider", function()
  before_each(function()
    s:reset()
    s:netconf(FOREIGN)
  end)

  describe("config", function()
    local function refused(extra, pattern)
      local cfg, pc = environment(extra)
      local ok, err = provider.prepare_for_bootstrap(pc, cfg)
      assert.is_nil(ok)
      assert.matches(pattern, err)
      assert.is_nil(err:find(KEY_LINE, 1, true))
      assert.is_nil(err:find("\n", 1, true), "one line")
      assert.are.same(EMPTY, s:leftovers())
    end

    it("names the missing key, with Juju's location message", function()
      refused({ location = false }, "^location: environment has no location; you need to set one%. E%.g%. 'West US'")
      refused({ ["management-subscription-id"] = false }, "^management%-subscription%-id: must be set")
      refused({ ["storage-account-name"] = false }, "^storage%-account%-name: must be set")
      refused({ ["storage-account-name"] = "Bad_Name" }, "^storage%-account%-name: \"Bad_Name\" is not")
      refused({ ["management-certificate-path"] = false }, "^management%-certificate%-path: must be set")
    end)

    it("refuses a bad certificate file: missing, not PEM, no key", function()
      refused({ ["management-certificate-path"] = work .. "/nosuch.pem" }, "^management%-certificate%-path: cannot read")
      h.write(work .. "/junk.pem", "hello\n")
      refused({ ["management-certificate-path"] = work .. "/junk.pem" }, "not a PEM certificate")
      h.write(work .. "/nokey.pem", h.read(s.certs.management:gsub("%.pem$", ".crt")))
      refused({ ["management-certificate-path"] = work .. "/nokey.pem" }, "holds no private key")
    end)

    it("reads the certificate file into management-certificate and clears the path", function()
      local cfg, pc = environment()
      cfg = assert(provider.prepare_for_bootstrap(pc, cfg))
      assert.are.equal(h.read(s.cert_file), cfg["management-certificate"])
      assert.are.equal("", cfg["management-certificate-path"])
    end)

    it("refuses a certificate or subscription the server does not know: one line naming the keys", function()
      local keys = "check the environment's management%-certificate, management%-subscription%-id settings"
      refused({ ["management-certificate-path"] = s.certs.stranger }, "ForbiddenError.*" .. keys)
      refused({ ["management-subscription-id"] = "0000-wrong" }, "not associated with the management certificate.*"
        .. keys)
      -- a certificate the TLS layer refuses outright: a line naming the call
      local other = fake.make_management_cert(work .. "/other")
      refused({ ["management-certificate-path"] = other }, "^cannot list the subscription's locations: ")
    end)

    it("refuses an unknown location, naming the known ones", function()
      refused({ location = "Moon North" }, '^location: unknown location "Moon North" %(the subscription has: West US, East US%)')
    end)
  end)

  it("juju init's entry names real config keys and prepares once filled in", function()
    local yaml = require("juju.yaml")
    local entry = assert(yaml.decode(require("juju.boilerplate").ENTRIES.azure)).azure
    assert.are.equal("azure", entry.type)
    local keys = {}
    for k in pairs(entry) do
      if k ~= "type" then
        keys[#keys + 1] = k
        assert.is_table(provider.config.fields[k], "boilerplate key " .. k)
      end
    end
    table.sort(keys)
    assert.are.same({ "location", "management-certificate-path", "management-subscription-id",
      "storage-account-name" }, keys)
    local cfg, pc = environment()
    for _, k in ipairs(keys) do assert.is_not_nil(cfg[k], k) end
    assert(provider.prepare_for_bootstrap(pc, cfg))
  end)

  it("bootstraps: affinity group, vnet beside the foreign network (byte for byte), cloud service, deployment; "
    .. "the journal releases all of it", function()
    local env, pc, j = opened()
    local inst = assert(start(env, j))
    local st = s:state()
    assert.is_table(st.affinity_groups[env.ag])
    assert.are.equal(FOREIGN, strip_ours(st.netconf, env))
    assert.are_not.equal(FOREIGN, st.netconf)
    local svc = provider.internal.service_of(inst.id)
    assert.is_table(st.services[svc])
    assert.are.same({ "affinity-group:created", "virtual-network:created", "cloud-service:created" }, kinds(j))
    local all = assert(provider.all_instances(env))
    assert.are.equal(1, #all)
    assert.are.equal(inst.id, all[1].id)
    s:clear_calls()
    assert(release_journal(provider, env, pc, j, {}))
    -- x-ms-version per call (providers.md 7.2)
    local versions = {}
    for _, c in ipairs(s:calls()) do
      versions[c.method .. " " .. (c.path:match("^/operations/") and "/operations/<id>"
        or c.path:match("^/services/hostedservices/[^/]+$") and "/services/hostedservices/<svc>" or c.path)] =
        c["x-ms-version"]
    end
    assert.are.equal("2010-10-28", versions["DELETE /services/hostedservices/<svc>"])
    assert.are.equal("2009-10-01", versions["GET /operations/<id>"])
    assert.are.equal("2013-10-01", versions["PUT /services/networking/media"])
    assert.are.equal("2013-10-01", versions["DELETE /affinitygroups/" .. env.ag])
    assert.are.same(EMPTY, s:leftovers())
    assert.are.equal(FOREIGN, s:state().netconf)
  end)

  it("a failure after the vnet (cloud service refused) is undone by the journal; the foreign network unchanged",
    function()
    local env, pc, j = opened()
    s:fault { match = "POST /services/hostedservices", kind = "error", status = 500 }
    local inst, err = start(env, j)
    assert.is_nil(inst)
    assert.matches("cannot create cloud service", err)
    assert(release_journal(provider, env, pc, j, {}))
    assert.are.same(EMPTY, s:leftovers())
    assert.are.equal(FOREIGN, s:state().netconf)
  end)

  it("only the affinity group made (the network PUT refused): the journal removes it", function()
    local env, pc, j = opened()
    s:fault { match = "PUT /services/networking/media", kind = "error", status = 400, code = "BadRequest" }
    local inst, err = start(env, j)
    assert.is_nil(inst)
    assert.matches("cannot add virtual network", err)
    assert.are.same({ "affinity-group:created", "virtual-network:intended" }, kinds(j))
    assert.are.same({ env.ag }, s:leftovers().affinity_groups)
    assert(release_journal(provider, env, pc, j, {}))
    assert.are.same(EMPTY, s:leftovers())
    assert.are.equal(FOREIGN, s:state().netconf)
  end)

  it("only the vnet left (the group deleted by hand): the journal removes the vnet", function()
    local env, pc, j = opened()
    s:fault { match = "POST /services/hostedservices", kind = "error", status = 500 }
    assert.is_nil(start(env, j))
    -- someone removed the group; the release of the group tolerates it
    local c = env.mgmt
    assert(c:call("DELETE", "/affinitygroups/" .. env.ag))
    assert.are.same({}, s:leftovers().affinity_groups)
    assert.are.same({ env.vnet }, s:leftovers().networks)
    assert(release_journal(provider, env, pc, j, {}))
    assert.are.same(EMPTY, s:leftovers())
    assert.are.equal(FOREIGN, s:state().netconf)
  end)

  it("retries the vnet's removal while Azure says it is currently in use (Juju: 30 s)", function()
    local env, pc, j = opened()
    s:fault { match = "POST /services/hostedservices", kind = "error", status = 500 }
    assert.is_nil(start(env, j))
    s:fault { match = "PUT /services/networking/media", kind = "error", status = 400, code = "BadRequest", count = 2,
      message = "The virtual network " .. env.vnet .. " is currently in use." }
    assert(release_journal(provider, env, pc, j, {}))
    assert.are.same(EMPTY, s:leftovers())
    assert.are.equal(FOREIGN, s:state().netconf)
    -- and gives up after the wait with the cause named
    local env2, pc2, j2 = opened()
    s:fault { match = "POST /services/hostedservices", kind = "error", status = 500 }
    assert.is_nil(start(env2, j2))
    s:fault { match = "PUT /services/networking/media", kind = "error", status = 400, code = "BadRequest",
      count = 1000, message = "The virtual network " .. env2.vnet .. " is currently in use." }
    local ok, err = release_journal(provider, env2, pc2, j2, {})
    assert.is_nil(ok)
    assert.matches("currently in use", err)
    s:clear_faults()
    assert(release_journal(provider, env2, pc2, j2, {}))
    assert.are.same(EMPTY, s:leftovers())
  end)

  it("detects a concurrent change of the network configuration and keeps it (If-Match 412, edit redone)", function()
    local env, pc, j = opened()
    local theirs = FOREIGN:gsub("</VirtualNetworkSites>", '<VirtualNetworkSite name="hr-net" Location="East US">'
      .. '<AddressSpace><AddressPrefix>192.168.0.0/16</AddressPrefix></AddressSpace></VirtualNetworkSite>'
      .. "</VirtualNetworkSites>")
    s:race(theirs)
    s:clear_calls()
    assert(start(env, j))
    local puts = 0
    for _, c in ipairs(s:calls()) do if c.method == "PUT" then puts = puts + 1 end end
    assert.are.equal(2, puts)
    assert.are.equal(theirs, strip_ours(s:state().netconf, env))
    assert(release_journal(provider, env, pc, j, {}))
    assert.are.same(EMPTY, s:leftovers())
    assert.are.equal(theirs, s:state().netconf)
  end)

  -- Every call start_instance makes x {error, throttled, reset, timeout}: the
  -- bootstrap either completes (a retried GET/DELETE) or fails with the
  -- call named; either way the journal release leaves nothing and the
  -- foreign network byte for byte.
  describe("fault matrix", function()
    local CALLS = { "GET /services/storageservices", "POST /affinitygroups", "GET /services/networking/media",
      "PUT /services/networking/media", "GET /operations/", "GET /services/hostedservices/operations/isavailable",
      "POST /services/hostedservices", "/deployments" }
    for _, call in ipairs(CALLS) do
      for _, kind in ipairs({ "error", "throttle", "reset", "delay" }) do
        it(call .. " x " .. kind, function()
          -- delay: the answer comes after the attempt's deadline (a timeout)
          local env, pc, j = opened(kind == "delay" and { ["cloud-request-timeout"] = 1 } or nil)
          s:fault { match = call, kind = kind, status = 500, count = 1, seconds = 2 }
          s:clear_calls()
          local inst, err = start(env, j)
          local hit = false
          for _, c in ipairs(s:calls()) do hit = hit or (c.method .. " " .. c.path):find(call, 1, true) ~= nil end
          assert.is_true(hit, call .. " was never called")
          -- An attempt that runs past cloud-request-timeout is not retried
          -- (juju.cloud.api: the deadline is spent; the operation poll ends
          -- too, as gwacl's); "server busy" is waited out for any call.
          local goes_on = (call:match("^GET") and kind ~= "delay") or kind == "throttle"
          if goes_on then
            -- reads are retried: the bootstrap goes on
            assert.is_table(inst, err)
          else
            -- a create is not repeated blindly: the step fails, named
            assert.is_nil(inst)
            assert.matches("^cannot ", err)
            assert.is_nil(err:find(KEY_LINE, 1, true))
          end
          s:clear_faults()
          -- a create whose answer timed out is still done by the server,
          -- late: the journal's intent (by name) must release it then
          if kind == "delay" then require("juju.sys").sleep(1.5) end
          assert(release_journal(provider, env, pc, j, {}))
          assert.are.same(EMPTY, s:leftovers())
          assert.are.equal(FOREIGN, s:state().netconf)
        end)
      end
    end
  end)

  it("detects a change between its read and its re-read of the network configuration and redoes the edit",
    function()
    local env, pc, j = opened()
    local theirs = FOREIGN:gsub("</VirtualNetworkSites>", '<VirtualNetworkSite name="ops-net" Location="West US">'
      .. '<AddressSpace><AddressPrefix>192.168.0.0/16</AddressPrefix></AddressSpace></VirtualNetworkSite>'
      .. "</VirtualNetworkSites>")
    s:race(theirs, "get")
    s:clear_calls()
    assert(start(env, j))
    local gets, puts = 0, 0
    for _, c in ipairs(s:calls()) do
      if c.path == "/services/networking/media" then
        if c.method == "GET" then gets = gets + 1 elseif c.method == "PUT" then puts = puts + 1 end
      end
    end
    assert.are.equal(4, gets) -- read, re-read (changed), read, re-read
    assert.are.equal(1, puts)
    assert.are.equal(theirs, strip_ours(s:state().netconf, env))
    assert(release_journal(provider, env, pc, j, {}))
    assert.are.same(EMPTY, s:leftovers())
    assert.are.equal(theirs, s:state().netconf)
  end)

  it("destroy without the journal removes the cloud service, vnet, group and the container", function()
    local env = opened()
    local _, _, j = environment()
    assert(start(env, j))
    assert(provider.storage(env):put("x", "y"))
    local env2 = assert(provider.open(env.ctx, env.cfg))
    assert(provider.destroy(env2))
    assert.are.same(EMPTY, s:leftovers())
    assert.are.equal(FOREIGN, s:state().netconf)
    assert.are.same({}, assert(provider.storage(env2):list()))
  end)

  it("without any network configuration: creates the document, and destroy of a fresh environment is a no-op",
    function()
    s:netconf(nil)
    local env = opened()
    assert(provider.destroy(env))
    assert.is_not_string(s:state().netconf) -- still none (JSON null)
    local env2, pc2, j2 = opened()
    assert(start(env2, j2))
    assert.matches('^<NetworkConfiguration xmlns="http://schemas.microsoft.com/ServiceHosting/2011/07/'
      .. 'NetworkConfiguration"><VirtualNetworkConfiguration><VirtualNetworkSites><VirtualNetworkSite name="'
      .. env2.vnet:gsub("%-", "%%-") .. '"', s:state().netconf)
    assert(release_journal(provider, env2, pc2, j2, {}))
    assert.are.same(EMPTY, s:leftovers())
  end)

  it("the server's SDK check refuses a body the SDK writes differently (elements out of order)", function()
    local env = opened()
    local resp, err = env.mgmt:call("POST", "/affinitygroups", { body = '<CreateAffinityGroup xmlns="'
      .. "http://schemas.microsoft.com/windowsazure\"><Label>eA==</Label><Name>x</Name><Location>West US</Location>"
      .. "</CreateAffinityGroup>" })
    assert.is_nil(resp)
    assert.matches("azure.servicemanagement", err)
    assert.are.same(EMPTY, s:leftovers())
  end)
end)
