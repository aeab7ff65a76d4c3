-- Specs for juju.instancecfg: the bootstrap instance config (spec 2.8),
-- FinishInstanceConfig (step 10.2) and verification.
local crypto = require("juju.crypto")
local yaml = require("juju.yaml")
local instancecfg = require("juju.instancecfg")

local CA_CERT, CA_KEY = crypto.new_ca("test")

local function base_config(extra)
  local cfg = {
    name = "test", type = "ec2", uuid = "7d2e6c1a-9b8f-4e3d-a2c1-0f9e8d7c6b5a",
    ["admin-secret"] = "admin-secret-value", ["ca-cert"] = CA_CERT, ["ca-private-key"] = CA_KEY,
    ["agent-version"] = "1.25.0", ["authorized-keys"] = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA user@host\n",
    ["state-port"] = 37017, ["api-port"] = 17070, ["ssl-hostname-verification"] = true,
    ["secret-key"] = "cloud-secret-value", ["access-key"] = "AKIAEXAMPLE",
  }
  for k, v in pairs(extra or {}) do cfg[k] = v end
  return cfg
end

local TOOLS = { version = "1.25.0-trusty-amd64", url = "https://example.com/tools/juju-1.25.0-trusty-amd64.tgz",
  sha256 = string.rep("ab", 32), size = 1234 }

local function finished(cfg_extra, params)
  local cfg = base_config(cfg_extra)
  local icfg = instancecfg.new_bootstrap(cfg, params or { series = "trusty" })
  return assert(instancecfg.finish(icfg, cfg, { tools = TOOLS, instance_id = "i-bootstrap" })), cfg
end

describe("juju.instancecfg", function()
  after_each(function() collectgarbage() collectgarbage() end)

  describe("new_bootstrap", function()
    it("fills machine 0's defaults", function()
      local icfg = instancecfg.new_bootstrap(base_config(), { series = "trusty", constraints = { mem = 2048 } })
      assert.is_true(icfg.bootstrap)
      assert.are.equal("0", icfg.machine_id)
      assert.are.equal("trusty", icfg.series)
      assert.are.same({ "JobManageEnviron", "JobHostUnits" }, icfg.jobs)
      assert.are.equal("/var/lib/juju", icfg.data_dir)
      assert.are.equal("/var/log/juju", icfg.log_dir)
      assert.are.equal("/var/log/cloud-init-output.log", icfg.cloud_init_output_log)
      assert.are.equal("jujud-machine-0", icfg.service_name)
      assert.are.equal("true", icfg.agent_env.SECURE_STATESERVER_CONNECTION)
      assert.are.equal("ec2", icfg.agent_env.PROVIDER_TYPE)
      assert.are.equal("", icfg.agent_env.CONTAINER_TYPE)
      assert.are.same({ mem = 2048 }, icfg.constraints)
      assert.is_true(icfg.enable_os_refresh_update)
      assert.is_true(icfg.enable_os_upgrade)
      assert.is_true(icfg.enable_package_install)
      assert.are.equal("mongodb", icfg.state_store)
      assert.is_false(icfg.disable_ssl_hostname_verification)
      assert.is_false(icfg.prefer_ipv6)
      assert.are.equal(base_config()["authorized-keys"], icfg.authorized_keys)
      assert.are.same({ ["juju-env-uuid"] = "7d2e6c1a-9b8f-4e3d-a2c1-0f9e8d7c6b5a", ["juju-is-state"] = "true" }, icfg.tags)
    end)

    it("makes a random nonce per bootstrap", function()
      local a = instancecfg.new_bootstrap(base_config())
      local b = instancecfg.new_bootstrap(base_config())
      assert.matches("^user%-admin:bootstrap:%x+$", a.nonce)
      assert.are.equal(#"user-admin:bootstrap:" + 16, #a.nonce)
      assert.are_not.equal(a.nonce, b.nonce)
      assert.are_not.equal("user-admin:bootstrap", a.nonce)
      -- The finalizer rebuilds the config with the phase-1 nonce.
      assert.are.equal(a.nonce, instancecfg.new_bootstrap(base_config(), { nonce = a.nonce }).nonce)
    end)

    it("takes switches, proxies, mirror and tags from the config", function()
      local icfg = instancecfg.new_bootstrap(base_config {
        ["enable-os-refresh-update"] = false, ["enable-os-upgrade"] = false, ["enable-package-install"] = false,
        ["http-proxy"] = "http://user@10.0.0.1", ["https-proxy"] = "10.0.0.2:3128", ["no-proxy"] = "localhost,10.0.3.1",
        ["apt-ftp-proxy"] = "ftp.example.com", ["apt-mirror"] = "http://my.archive.ubuntu.com/ubuntu",
        ["ssl-hostname-verification"] = false, ["prefer-ipv6"] = true, ["state-store"] = "sqlite",
        ["resource-tags"] = "owner=me team=ops",
      })
      assert.is_false(icfg.enable_os_refresh_update)
      assert.is_false(icfg.enable_os_upgrade)
      assert.is_false(icfg.enable_package_install)
      assert.are.same({ http = "http://user@10.0.0.1", https = "10.0.0.2:3128", ftp = "", no_proxy = "localhost,10.0.3.1" },
        icfg.proxy)
      -- apt proxies fall back to the generic ones and gain a scheme.
      assert.are.same({ http = "http://user@10.0.0.1", https = "https://10.0.0.2:3128", ftp = "ftp://ftp.example.com" },
        icfg.apt_proxy)
      assert.are.equal("http://my.archive.ubuntu.com/ubuntu", icfg.apt_mirror)
      assert.is_true(icfg.disable_ssl_hostname_verification)
      assert.is_true(icfg.prefer_ipv6)
      assert.are.equal("sqlite", icfg.state_store)
      assert.are.equal("me", icfg.tags.owner)
      assert.are.equal("ops", icfg.tags.team)
      assert.are.equal("true", icfg.tags["juju-is-state"])
      local m = instancecfg.new_bootstrap(base_config { ["resource-tags"] = { a = "1" } })
      assert.are.equal("1", m.tags.a)
    end)

    it("lets a provider override dirs, service name, jobs and switches", function()
      local icfg = instancecfg.new_bootstrap(base_config(), {
        data_dir = "/home/u/.juju/local", log_dir = "/var/log/juju-u-local",
        cloud_init_output_log = "/home/u/.juju/local/cloud-init-output.log", service_name = "juju-agent-u-local",
        jobs = { "JobManageEnviron" }, instance_id = "localhost", hardware = { arch = "amd64" },
        enable_os_refresh_update = false, enable_os_upgrade = false, state_store = "sqlite",
        agent_env = { NAMESPACE = "u-local" }, container_bridge = "juju-br0",
      })
      assert.are.equal("/home/u/.juju/local", icfg.data_dir)
      assert.are.equal("/var/log/juju-u-local", icfg.log_dir)
      assert.are.equal("juju-agent-u-local", icfg.service_name)
      assert.are.same({ "JobManageEnviron" }, icfg.jobs)
      assert.are.equal("localhost", icfg.instance_id)
      assert.is_false(icfg.enable_os_refresh_update)
      assert.is_false(icfg.enable_os_upgrade)
      assert.is_true(icfg.enable_package_install)
      assert.are.equal("sqlite", icfg.state_store)
      assert.are.equal("u-local", icfg.agent_env.NAMESPACE)
      assert.are.equal("juju-br0", icfg.agent_env.LXC_BRIDGE)
    end)

    it("raises on misuse", function()
      assert.has_error(function() instancecfg.new_bootstrap(nil) end)
    end)
  end)

  describe("finish", function()
    it("adds passwords, certificates, serving info and the stripped config", function()
      local cfg = base_config { ["set-numa-control-policy"] = true }
      local icfg = instancecfg.new_bootstrap(cfg, { series = "trusty" })
      local out = assert(instancecfg.finish(icfg, cfg, {
        tools = TOOLS, instance_id = "i-bootstrap", hardware = { arch = "amd64", mem = 3840 },
        strip_keys = { "secret-key" }, hostnames = { "bootstrap.example.com" },
      }))
      assert.are.equal(icfg, out)
      local hash = crypto.user_password_hash("admin-secret-value", crypto.COMPAT_SALT)
      assert.are.equal(hash, icfg.api_info.password)
      assert.are.equal(hash, icfg.mongo_info.password)
      assert.are.equal(CA_CERT, icfg.api_info.ca_cert)
      assert.are.equal(CA_CERT, icfg.mongo_info.ca_cert)
      assert.are.equal("environment-7d2e6c1a-9b8f-4e3d-a2c1-0f9e8d7c6b5a", icfg.api_info.environ_tag)
      assert.is_nil(icfg.api_info.tag)
      local ssi = icfg.state_serving_info
      assert.are.equal(37017, ssi.state_port)
      assert.are.equal(17070, ssi.api_port)
      assert.are.equal(CA_KEY, ssi.ca_private_key)
      local info = assert(crypto.cert_info(ssi.cert))
      assert.is_false(info.is_ca)
      local sans = table.concat(info.sans, " ")
      assert.matches("juju%-apiserver", sans)
      assert.matches("juju%-mongodb", sans)
      assert.matches("bootstrap%.example%.com", sans)
      assert.matches("PRIVATE KEY", ssi.private_key)
      assert.are.equal("true", icfg.agent_env.NUMA_CTL_PREFERENCE)
      assert.are.equal("i-bootstrap", icfg.instance_id)
      assert.are.same({ arch = "amd64", mem = 3840 }, icfg.hardware)
      assert.are.same(TOOLS, icfg.tools)
      -- the env config: everything but the client's secrets and strip_keys
      assert.is_nil(icfg.config["admin-secret"])
      assert.is_nil(icfg.config["ca-private-key"])
      assert.is_nil(icfg.config["secret-key"])
      assert.are.equal("AKIAEXAMPLE", icfg.config["access-key"])
      assert.are.equal("1.25.0", icfg.config["agent-version"])
      assert.are.equal(CA_CERT, icfg.config["ca-cert"])
      -- a copy: the caller's config keeps its secrets
      assert.are.equal("admin-secret-value", cfg["admin-secret"])
      assert.are.equal("cloud-secret-value", cfg["secret-key"])
      assert.is_true(instancecfg.verify(icfg))
    end)

    it("reports every failure of step 10.2 with Juju's message", function()
      local prefix = "cannot complete machine configuration: "
      local cases = {
        { { ["authorized-keys"] = "" }, "environment configuration has no authorized-keys" },
        { { ["ca-cert"] = yaml.null }, "environment configuration has no ca-cert" },
        { { ["admin-secret"] = "" }, "environment configuration has no admin-secret" },
        { { uuid = yaml.null }, "config missing environment uuid" },
        { { ["ca-private-key"] = "" }, "environment configuration has no ca-private-key" },
        { { ["agent-version"] = yaml.null }, "environment configuration has no agent-version" },
      }
      for _, c in ipairs(cases) do
        local cfg = base_config(c[1])
        local icfg = instancecfg.new_bootstrap(cfg)
        local ok, err = instancecfg.finish(icfg, cfg, { tools = TOOLS })
        assert.is_nil(ok)
        assert.are.equal(prefix .. c[2], err)
      end
      local cfg = base_config()
      local icfg = instancecfg.new_bootstrap(cfg)
      local ok, err = instancecfg.finish(icfg, cfg, {})
      assert.is_nil(ok)
      assert.are.equal(prefix .. "machine configuration has no tools", err)

      icfg = assert(instancecfg.finish(icfg, cfg, { tools = TOOLS }))
      ok, err = instancecfg.finish(icfg, cfg, { tools = TOOLS })
      assert.is_nil(ok)
      assert.are.equal(prefix .. "machine configuration already has api/state info", err)

      local other_ca, other_key = crypto.new_ca("other")
      assert.truthy(other_ca)
      cfg = base_config { ["ca-private-key"] = "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n" }
      ok, err = instancecfg.finish(instancecfg.new_bootstrap(cfg), cfg, { tools = TOOLS })
      assert.is_nil(ok)
      assert.matches("^cannot complete machine configuration: cannot generate state server certificate: ", err)
      cfg = base_config { ["ca-private-key"] = other_key }
      ok, err = instancecfg.finish(instancecfg.new_bootstrap(cfg), cfg, { tools = TOOLS })
      assert.is_nil(ok)
      assert.matches("cannot generate state server certificate", err)
    end)
  end)

  describe("verify", function()
    it("accepts a finished bootstrap config", function()
      assert.is_true(instancecfg.verify((finished())))
    end)

    it("rejects each missing field with spec 2.8's message", function()
      local cases = {
        { function(c) c.machine_id = "x" end, "invalid machine id" },
        { function(c) c.data_dir = "" end, "missing var directory" },
        { function(c) c.log_dir = nil end, "missing log directory" },
        { function(c) c.jobs = {} end, "missing machine jobs" },
        { function(c) c.cloud_init_output_log = "" end, "missing cloud-init output log path" },
        { function(c) c.tools = nil end, "missing tools" },
        { function(c) c.tools.url = "" end, "missing tools URL" },
        { function(c) c.mongo_info = nil end, "missing state info" },
        { function(c) c.mongo_info.ca_cert = "" end, "missing CA certificate" },
        { function(c) c.api_info = nil end, "missing API info" },
        { function(c) c.api_info.environ_tag = nil end, "missing environment tag" },
        { function(c) c.api_info.ca_cert = nil end, "missing API CA certificate" },
        { function(c) c.service_name = "" end, "missing machine agent service name" },
        { function(c) c.config = nil end, "missing environment configuration" },
        { function(c) c.mongo_info.tag = "machine-0" end, "entity tag must be nil when starting a state server" },
        { function(c) c.api_info.tag = "machine-0" end, "entity tag must be nil when starting a state server" },
        { function(c) c.state_serving_info = nil end, "missing state serving info" },
        { function(c) c.state_serving_info.cert = "" end, "missing state server certificate" },
        { function(c) c.state_serving_info.private_key = nil end, "missing state server private key" },
        { function(c) c.state_serving_info.ca_private_key = "" end, "missing ca cert private key" },
        { function(c) c.state_serving_info.state_port = nil end, "missing state port" },
        { function(c) c.state_serving_info.api_port = 0 end, "missing API port" },
        { function(c) c.instance_id = nil end, "missing instance-id" },
        { function(c) c.nonce = "" end, "missing machine nonce" },
        -- the engine's own checks
        { function(c) c.tools.sha256 = "" end, "missing tools SHA-256" },
        { function(c) c.tools.sha256 = "1234" end, "missing tools SHA-256" },
        { function(c) c.tools.url = "ftp://x/t.tgz" end, 'unsupported tools URL "ftp://x/t.tgz"' },
        { function(c) c.tools.version = "1.25.0" end, 'invalid tools version "1.25.0"' },
        { function(c) c.data_dir = "/var/lib/ju ju" end, 'unsafe var directory "/var/lib/ju ju"' },
        { function(c) c.log_dir = "relative" end, 'unsafe log directory "relative"' },
        { function(c) c.service_name = "a b" end, 'unsafe machine agent service name "a b"' },
        { function(c) c.state_store = "postgres" end, 'unknown state store "postgres"' },
        { function(c) c.bootstrap = false end, "only bootstrap (state server) configurations are supported" },
      }
      for _, case in ipairs(cases) do
        local icfg = finished()
        case[1](icfg)
        local ok, err = instancecfg.verify(icfg)
        assert.is_nil(ok)
        assert.are.equal("invalid machine configuration: " .. case[2], err)
      end
    end)

    it("knows machine ids", function()
      for _, id in ipairs({ "0", "12", "2/lxc/1", "3/kvm/0/lxc/7" }) do
        assert.is_true(instancecfg.valid_machine_id(id), id)
      end
      for _, id in ipairs({ "", "01", "-1", "a", "2/lxc", "2/LXC/1", "2/lxc/01", "0 " }) do
        assert.is_false(instancecfg.valid_machine_id(id), id)
      end
      assert.is_false(instancecfg.valid_machine_id(0))
    end)
  end)

  it("names the machine tag and the tools number", function()
    local icfg = finished()
    assert.are.equal("machine-0", instancecfg.machine_tag(icfg))
    assert.are.equal("machine-2-lxc-1", instancecfg.machine_tag({ machine_id = "2/lxc/1" }))
    assert.are.equal("1.25.0", instancecfg.tools_number(icfg))
  end)

  it("formats hardware and constraints as Juju prints them", function()
    assert.are.equal("arch=amd64 cpu-cores=1 mem=3840M root-disk=8192M tags=a,b availability-zone=us-east-1a",
      instancecfg.format_hardware({ arch = "amd64", ["cpu-cores"] = 1, mem = 3840, root_disk = 8192,
        tags = { "a", "b" }, availability_zone = "us-east-1a" }))
    assert.are.equal("", instancecfg.format_hardware(nil))
    assert.are.equal("arch=arm64", instancecfg.format_hardware("arch=arm64"))
    assert.are.equal("mem=2048M", instancecfg.format_constraints({ constraints = { mem = 2048 } }))
    assert.are.equal("", instancecfg.format_constraints({}))
  end)
end)
