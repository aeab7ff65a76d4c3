-- boilerplate_spec.lua (#integration): issue 12's "the `juju init`
-- boilerplate bootstraps once filled in". `juju init` writes
-- environments.yaml in a fresh JUJU_HOME; for each entry the spec keeps
-- every key the boilerplate sets and changes only what a user fills in
-- (credentials, endpoints) plus what points at the emulated cloud
-- (TEST_ONLY below). Every filled-in key must already be in the entry's
-- text, set or as a `# key:` comment: a key the boilerplate does not
-- mention fails naming it. Then bootstrap --upload-tools, `juju status`
-- shows machine 0 started, destroy-environment leaves nothing.
-- Addresses: ec2 hosts .11, openstack fake .12 host .13, maas server .14
-- host .15, joyent fakes .16 host .17, the manual host .18, the azure
-- management server .19 its role .20 (tests/clouds/azure.lua was not
-- there yet: the servers of azure_bootstrap_spec.lua, started here).
local sshd = require("juju.testing.sshd")
local instance = require("juju.testing.instance")
local azure_mgmt = require("servers.azure-mgmt.fake")
local azurite = require("servers.azure-blob.azurite")
local authkeys = require("juju.environs.authkeys")
local yaml = require("juju.yaml")
local fs = require("juju.fs")
local h = require("helpers")

-- Keys that point the entry at this machine's emulators or keep the spec
-- fast; a user of a real cloud leaves them out.
local TEST_ONLY = {
  ["image-metadata-url"] = true, ["ec2-endpoint"] = true, ["s3-endpoint"] = true, ["control-bucket"] = true,
  ["default-series"] = true, ["state-store"] = true, ["bootstrap-timeout"] = true,
  ["bootstrap-retry-delay"] = true, ["enable-package-install"] = true,
  ["enable-os-refresh-update"] = true, ["enable-os-upgrade"] = true, type = true,
  ["management-endpoint"] = true, ["storage-endpoint"] = true, ["cloud-ca-bundle-path"] = true,
  ["force-image-name"] = true, -- the management server's image (the image lookup needs the real cloud's)
}

local AZURE_IMAGE = "b39f27a8b8c64d52b05eac6a62ebad85__Ubuntu-14_04_3-LTS-amd64-server-20150908-en-us-30GB"

-- A fresh JUJU_HOME after `juju init`: env, the file's text, its document.
local function init_home(prefix, extra_env)
  local env = h.juju_user_env(h.tmpdir(prefix), extra_env)
  local code, out, err = h.juju(env, { "init" })
  assert.are.equal(0, code, out .. err)
  local text = h.read(env.JUJU_HOME .. "/environments.yaml")
  return env, text, assert(yaml.decode(text))
end

-- The lines of entry name in the boilerplate text: from its "    name:"
-- line to the next entry's.
local function entry_text(text, name)
  local lines, inside = {}, false
  for line in text:gmatch("[^\n]*") do
    local n = line:match("^    ([%w_-]+):%s*$")
    if n then inside = (n == name) end
    if inside then lines[#lines + 1] = line end
  end
  assert(#lines > 0, "the boilerplate has no entry " .. name)
  return table.concat(lines, "\n")
end

-- Keys the entry mentions, set ("key: v") or commented ("# key: v").
local function mentioned_keys(section)
  local keys = {}
  for line in section:gmatch("[^\n]+") do
    local k = line:match("^%s+#?%s*([%w-]+):")
    if k then keys[k] = true end
  end
  return keys
end

-- The entry's attributes as the boilerplate sets them, filled with fill:
-- fails naming a key of fill (other than TEST_ONLY) the entry does not
-- mention.
local function fill_in(text, doc, name, fill)
  local base = doc.environments[name]
  assert.is_table(base, "juju init wrote no " .. name .. " entry")
  local mentioned = mentioned_keys(entry_text(text, name))
  local missing = {}
  for k in pairs(fill) do
    if not TEST_ONLY[k] and not mentioned[k] then missing[#missing + 1] = k end
  end
  table.sort(missing)
  assert.are.same({}, missing, "keys a user fills in that the " .. name .. " boilerplate does not mention")
  assert.are.equal(fill.type, base.type)
  local attrs = {}
  for k, v in pairs(base) do attrs[k] = v end
  for k, v in pairs(fill) do attrs[k] = v end
  return attrs
end

-- Writes the whole file back with entry name filled in.
local function write_back(env, doc, name, attrs)
  doc.environments[name] = attrs
  h.write(env.JUJU_HOME .. "/environments.yaml", assert(yaml.encode(doc)), "0600")
end

local function bootstrap_status_destroy(env, name)
  local code, out, err = h.juju(env, { "bootstrap", "--upload-tools", "-e", name })
  assert.are.equal(0, code, out .. err)
  assert.matches("Bootstrap complete", err)
  code, out, err = h.juju(env, { "status", "-e", name })
  assert.are.equal(0, code, err)
  local doc = assert(yaml.decode(out))
  assert.are.equal(name, doc.environment)
  assert.are.equal("started", doc.machines["0"]["agent-state"])
  code, out, err = h.juju(env, { "destroy-environment", "-y", name })
  assert.are.equal(0, code, out .. err)
end

describe("juju init's boilerplate, filled in, bootstraps #integration", function()
  local cloud
  after_each(function()
    if cloud then cloud:stop() end
    cloud = nil
    h.cleanup()
    collectgarbage()
  end)

  local CLOUDS = {
    { module = "clouds.ec2", entry = "amazon", address_base = 10 },
    { module = "clouds.openstack", entry = "openstack", address_base = 12 },
    { module = "clouds.maas", entry = "maas", address_base = 14 },
    { module = "clouds.joyent", entry = "joyent", address_base = 16 },
  }
  for _, spec in ipairs(CLOUDS) do
    it(spec.entry .. " (" .. spec.module .. ")", function()
      cloud = require(spec.module).start { address_base = spec.address_base, host_slots = 1 }
      local env, text, doc = init_home("juju-boiler-" .. spec.entry .. "-")
      write_back(env, doc, spec.entry, fill_in(text, doc, spec.entry, cloud:environment()))
      cloud:hosts(true)
      bootstrap_status_destroy(env, spec.entry)
      assert.are.same({}, cloud:leftovers())
    end)
  end

  it("azure (the azure management server and azurite)", function()
    local work = h.tmpdir("juju-boiler-azure-")
    local state_dir = work .. "/hosts"
    assert(fs.mkdir_p(state_dir, tonumber("700", 8)))
    assert(fs.mkdir_p(work .. "/certs", tonumber("700", 8)))
    local az = azurite.start()
    local p = instance.programs(state_dir)
    local s = azure_mgmt.start { host = "127.0.0.19", dir = work .. "/certs", launcher = p.launcher,
      terminator = p.terminator, storage_key = az.key,
      env = { INSTANCE_ADDRESS_BASE = "19", INSTANCE_OWNER_PID = p.env.INSTANCE_OWNER_PID } }
    local ok, err = pcall(function()
      local env, text, doc = init_home("juju-boiler-azure-home-")
      write_back(env, doc, "azure", fill_in(text, doc, "azure", {
        type = "azure", location = "West US", ["management-subscription-id"] = s.subscription,
        ["management-certificate-path"] = s.cert_file, ["storage-account-name"] = az.account,
        ["force-image-name"] = AZURE_IMAGE, ["management-endpoint"] = s.endpoint, ["storage-endpoint"] = az.endpoint,
        ["cloud-ca-bundle-path"] = s.ca_file, ["default-series"] = "bookworm", ["state-store"] = "sqlite",
        ["bootstrap-timeout"] = 300 }))
      bootstrap_status_destroy(env, "azure")
      assert.is_true(s:settle(60))
      assert.are.same({ affinity_groups = {}, hosted_services = {}, deployments = {}, networks = {} }, s:leftovers())
      for _, hst in ipairs(s:state().hosts) do assert.is_truthy(hst.terminate and hst.terminate.done, hst.id) end
    end)
    s:stop()
    az.server:stop()
    instance.terminate_all(state_dir)
    assert(ok, err)
  end)

  it("local, root-dir in a temp dir", function()
    local env, text, doc = init_home("juju-boiler-local-", { JUJU_AGENT_HEARTBEAT = "1" })
    local root = h.tmpdir("juju-boiler-local-root-") .. "/env"
    write_back(env, doc, "local", fill_in(text, doc, "local", { type = "local", ["root-dir"] = root }))
    bootstrap_status_destroy(env, "local")
    assert.is_false(fs.exists(root))
  end)

  it("manual, bootstrap-host a fresh Debian 12 host", function()
    local server = assert(sshd.start { address_index = 18, fresh = true })
    local ok, err = pcall(function()
      local env, text, doc = init_home("juju-boiler-manual-", { JUJU_AGENT_HEARTBEAT = "1" })
      assert(fs.copy_file(server.user_key.private, env.HOME .. "/.ssh/id_ed25519", "0600"))
      local _, pub = assert(authkeys.ensure_client_key(env.JUJU_HOME))
      assert(server.authorize(pub))
      write_back(env, doc, "manual", fill_in(text, doc, "manual", {
        type = "manual", ["bootstrap-host"] = server.host .. ":" .. server.port, ["bootstrap-user"] = "root",
        ["bootstrap-host-key"] = server.host_key_pub, ["state-store"] = "sqlite",
        ["enable-os-refresh-update"] = false, ["enable-os-upgrade"] = false, ["enable-package-install"] = false,
        ["bootstrap-timeout"] = 120, ["bootstrap-retry-delay"] = 1 }))
      bootstrap_status_destroy(env, "manual")
    end)
    server.stop()
    assert(ok, err)
  end)
end)
