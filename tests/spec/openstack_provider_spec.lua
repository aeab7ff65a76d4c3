-- openstack_provider_spec.lua: the openstack provider (providers/openstack)
-- through its contract operations, against the goose fake
-- (tests/servers/goose: goose's Keystone v2/v3, Nova and Swift test
-- services, with our Nova additions), started once for this file on
-- 127.0.0.71 without a launcher: servers take addresses from a pool nobody
-- listens on, so everything up to "ACTIVE with an address" is tested here;
-- tests/integration/openstack_bootstrap_spec.lua runs the rest on real hosts.
local fake = require("servers.goose.fake")
local providers = require("juju.providers")
local release_journal = require("juju.environs.teardown").run
local gzip = require("juju.gzip")
local imagemeta = require("imagemeta")
local h = require("helpers")
local ph = require("provider_harness")

local C = fake.CREDS
local IMAGE = "img-bookworm-amd64"
local REGION = "RegionOne"

local work = h.tmpdir("juju-openstack-provider-spec-")
local s = fake.start("127.0.0.71", "osprovider", { images = { IMAGE }, address_pool = "127.0.102.1-254",
  floating_pool = "127.0.4.71-79", streams = true })
local provider = assert(providers.load(nil, "openstack"))

local function metadata_for(auth_url, name)
  return imagemeta.write(work .. "/" .. name, { region = REGION, endpoint = auth_url,
    images = { { id = IMAGE, series = "bookworm", arch = "amd64" } } })
end
local IMAGES_V3 = metadata_for(s.v3, "img-v3")
local IMAGES_V2 = metadata_for(s.v2, "img-v2")

local function no_secret(msg)
  assert.is_string(msg)
  for _, k in ipairs({ "password", "secret_key" }) do
    assert.is_nil(msg:find(C[k], 1, true), k .. " in: " .. msg)
  end
  assert.is_nil(msg:find("wrong-Passw0rd-9", 1, true), "wrong password in: " .. msg)
end

local harness = ph.new {
  provider = provider, name = "openstack", prefix = "os", home = work, series = "bookworm", state_tag = true,
  keep_false = { ["use-floating-ip"] = true, ["use-default-secgroup"] = true },
  config = function()
    return { region = REGION, ["auth-url"] = s.v3, username = C.username, password = C.password,
      ["tenant-name"] = C.tenant_name, ["domain-name"] = C.domain_name, ["image-metadata-url"] = IMAGES_V3,
      ["image-stream"] = "released", ["api-port"] = 17070, ["bootstrap-timeout"] = 600,
      ["use-floating-ip"] = false, ["use-default-secgroup"] = false }
  end,
}
local environment, opened, start, start_params = harness.environment, harness.opened, harness.start,
  harness.start_params
local HOST_PUB, USERDATA = ph.HOST_PUB, ph.USERDATA

local function servers_of(env)
  local out = {}
  for _, sv in ipairs(s:state().servers) do
    if (sv.metadata or {})["juju-env-uuid"] == env.uuid and sv.status ~= "DELETED" and not sv.gone then
      out[#out + 1] = sv
    end
  end
  return out
end

local function group(name)
  for _, g in ipairs(s:state().security_groups) do if g.name == name then return g end end
end

local function compute_calls(op)
  local n = 0
  for _, c in ipairs(s:calls("compute")) do if c.method .. " " .. c.path == op then n = n + 1 end end
  return n
end

local function assert_empty() s:assert_empty() end

describe("the openstack provider", function()
  teardown(function()
    s:stop()
    h.cleanup()
  end)

  before_each(function()
    s:clear_faults()
    s:config { build_gets = 1, delete_gets = 0, group_in_use = true }
  end)

  describe("config", function()
    it("needs auth-url, with a scheme, a host and the Keystone version, naming the key", function()
      local cfg, pc = environment { ["auth-url"] = false }
      local ok, err = provider.validate_config(pc, cfg)
      assert.is_nil(ok)
      assert.matches("^auth%-url: required", err)
      for _, bad in ipairs({ "keystone:5000/v3", "ftp://k/v3", "http://k:5000/" }) do
        cfg, pc = environment { ["auth-url"] = bad }
        ok, err = provider.validate_config(pc, cfg)
        assert.is_nil(ok, bad)
        assert.matches("^auth%-url: ", err)
      end
    end)

    it("needs username and password, tenant-name and region, each error naming its key", function()
      for key, want in pairs({ username = "^username: ", password = "^password: ", ["tenant-name"] = "^tenant%-name: ",
        region = "^region: " }) do
        local cfg, pc = environment { [key] = false }
        local ok, err = provider.validate_config(pc, cfg)
        assert.is_nil(ok, key)
        assert.matches(want, err)
        no_secret(err)
      end
      local cfg, pc = environment { ["auth-mode"] = "keypair" }
      local ok, err = provider.validate_config(pc, cfg)
      assert.is_nil(ok)
      assert.matches("^access%-key: auth%-mode keypair needs access%-key and secret%-key", err)
    end)

    it("falls back to the OS_* environment variables and writes them into the prepared config", function()
      local cfg, pc = environment({ username = false, password = false, ["tenant-name"] = false, region = false,
        ["auth-url"] = false }, { OS_USERNAME = C.username, OS_PASSWORD = C.password, OS_TENANT_NAME = C.tenant_name,
        OS_REGION_NAME = REGION, OS_AUTH_URL = s.v3, NOVA_PASSWORD = "nope" })
      local out = assert(provider.prepare_for_bootstrap(pc, cfg))
      assert.are.equal(C.password, out.password)
      assert.are.equal(s.v3, out["auth-url"])
      assert.are.equal(REGION, out.region)
      assert.matches("^%x+$", out["control-bucket"])
      assert.are.equal(32, #out["control-bucket"])
    end)

    it("prepares against Keystone v2.0 (userpass and keypair) and v3", function()
      for _, extra in ipairs({ { ["auth-url"] = s.v2, ["image-metadata-url"] = IMAGES_V2 },
        { ["auth-url"] = s.v2, ["auth-mode"] = "keypair", username = false, password = false,
          ["access-key"] = C.access_key, ["secret-key"] = C.secret_key },
        { ["auth-url"] = s.v3 } }) do
        local cfg, pc = environment(extra)
        assert(provider.prepare_for_bootstrap(pc, cfg))
      end
    end)

    it("refuses wrong credentials at prepare in one line naming the keys, never the secret", function()
      local cfg, pc = environment { password = "wrong-Passw0rd-9" }
      local ok, err, code = provider.prepare_for_bootstrap(pc, cfg)
      assert.is_nil(ok)
      assert.are.equal("AUTH", code)
      assert.matches("^authentication failed at ", err)
      assert.matches("check username, password and tenant%-name", err)
      assert.is_nil(err:find("\n", 1, true))
      no_secret(err)
    end)

    it("refuses a region the catalog does not have, naming region and the regions it has", function()
      local cfg, pc = environment { region = "NoSuchRegion" }
      local ok, err = provider.prepare_for_bootstrap(pc, cfg)
      assert.is_nil(ok)
      assert.matches("^region: ", err)
      assert.matches("NoSuchRegion", err)
      assert.matches("RegionOne", err)
    end)

    it("warns about the deprecated default-image-id and ignores it", function()
      local cfg, pc, _, lines = environment { ["default-image-id"] = "ami-old" }
      assert(provider.validate_config(pc, cfg))
      assert.matches("default%-image%-id.*deprecated and ignored", table.concat(lines))
    end)
  end)

  describe("start_instance", function()
    it("creates the groups with Juju's rules and one ACTIVE server with gzip'd user-data and metadata", function()
      local env, _, j = opened()
      local inst = assert(start(env, j))
      assert.are.equal("ACTIVE", inst.status)
      assert.are.equal("ipv4", inst.addresses[1].type)
      assert.matches("^127%.0%.102%.", inst.addresses[1].value)
      assert.are.equal("amd64", inst.hardware.arch)
      assert.are.equal(2048, inst.hardware.mem) -- m1.small: the smallest with >= 1 GiB
      local list = servers_of(env)
      assert.are.equal(1, #list)
      local sv = list[1]
      assert.are.equal(IMAGE, sv.image)
      assert.are.equal(HOST_PUB, sv.metadata["juju-host-key"])
      assert.are.equal("true", sv.metadata["juju-is-state"])
      assert.is_true(sv.user_data_gzip)
      assert.are.equal(USERDATA, gzip.gunzip(assert(s:user_data(sv.id))))
      table.sort(sv.security_groups)
      assert.are.same({ "juju-" .. env.name, "juju-" .. env.name .. "-0" }, sv.security_groups)
      local g = assert(group("juju-" .. env.name))
      local rules = {}
      for _, r in ipairs(g.rules) do
        rules[#rules + 1] = string.format("%s %s-%s %s", r.ip_protocol, r.from_port, r.to_port,
          type(r.ip_range) == "table" and r.ip_range.cidr or (type(r.group) == "table" and r.group.name))
      end
      table.sort(rules)
      local me = "juju-" .. env.name
      assert.are.same({ "icmp -1--1 " .. me, "tcp 1-65535 " .. me, "tcp 17070-17070 0.0.0.0/0",
        "tcp 22-22 0.0.0.0/0", "udp 1-65535 " .. me }, rules)
      assert.are.same({}, assert(group("juju-" .. env.name .. "-0")).rules)
      -- the journal: groups recorded with their ids
      local kinds = {}
      for _, r in ipairs(j:resources()) do kinds[#kinds + 1] = r.kind .. ":" .. r.state end
      assert.are.same({ "instance:created", "security-group:created", "security-group:created" }, kinds)
      assert(release_journal(provider, env, env.ctx, j, {}))
      assert.are.equal(0, #servers_of(env))
      assert.is_nil(group("juju-" .. env.name))
    end)

    it("reuses existing groups without adding their rules twice", function()
      local env, _, j = opened()
      assert(provider.internal.ensure_group(env, "juju-" .. env.name, provider.internal.env_rules(env)))
      s:clear_calls()
      assert(provider.internal.ensure_group(env, "juju-" .. env.name, provider.internal.env_rules(env)))
      assert.are.equal(0, compute_calls("POST /os-security-groups"))
      assert.are.equal(0, compute_calls("POST /os-security-group-rules"))
      assert.are.equal(5, #assert(group("juju-" .. env.name)).rules)
      assert(release_journal(provider, env, env.ctx, j, {}))
      assert.is_nil(group("juju-" .. env.name))
    end)

    it("chooses flavors by constraints, and refuses what no flavor fits before creating anything", function()
      local env, _, j = opened()
      local spec = assert(provider.internal.find_spec(env, start_params(env, { constraints = { mem = 3000 } })))
      assert.are.equal("m1.medium", spec.flavor.name)
      spec = assert(provider.internal.find_spec(env, start_params(env, { constraints = { ["instance-type"] = "m1.tiny" } })))
      assert.are.equal("m1.tiny", spec.flavor.name)
      local inst, err, code = start(env, j, { constraints = { mem = 65536 } })
      assert.is_nil(inst)
      assert.are.equal("INVALID", code)
      assert.matches('no flavor of RegionOne matches constraints "mem=65536M"', err)
      assert.matches("m1%.small %(2048 MiB", err)
      _, err, code = start(env, j, { constraints = { ["instance-type"] = "x9.huge" } })
      assert.are.equal("INVALID", code)
      assert.matches("instance%-type=x9%.huge", err)
      assert.are.equal(0, #servers_of(env))
      assert.is_nil(group("juju-" .. env.name))
    end)

    it("refuses a series without an image before creating anything, naming the series and region", function()
      local env, _, j = opened()
      local inst, err, code = start(env, j, { instance_config = { series = "trusty", machine_id = "0",
        tags = { ["juju-env-uuid"] = env.uuid } } })
      assert.is_nil(inst)
      assert.are.equal("NOT_FOUND", code)
      assert.matches('cannot find an image: no "trusty" images in RegionOne', err)
      assert.is_nil(group("juju-" .. env.name))
    end)

    it("reports a quota refusal of POST /servers with Nova's message; the journal release leaves nothing", function()
      local env, pc, j = opened()
      s:faults { op = "POST /servers", status = 403, body = { forbidden = { code = 403,
        message = "Quota exceeded for instances: Requested 1, but already used 10 of 10 instances" } } }
      local inst, err = start(env, j)
      assert.is_nil(inst)
      assert.matches("^cannot start server: nova POST /servers: ", err)
      assert.matches("Quota exceeded for instances", err)
      no_secret(err)
      assert(release_journal(provider, env, pc, j, {}))
      assert_empty()
    end)

    it("waits out a rate-limited POST /servers (overLimit) and starts one server", function()
      local env, pc, j = opened()
      s:clear_calls()
      s:faults { op = "POST /servers", status = 429, count = 2 }
      local inst = assert(start(env, j))
      assert.are.equal(1, #servers_of(env))
      assert.are.equal(3, compute_calls("POST /servers"))
      local _ = inst
      assert(release_journal(provider, env, pc, j, {}))
      assert.are.equal(0, #servers_of(env))
    end)

    it("adopts the server when the answer to POST /servers is lost: never a second one", function()
      local env, pc, j = opened()
      s:faults { op = "POST /servers", drop_response = true }
      local inst = assert(start(env, j))
      local list = servers_of(env)
      assert.are.equal(1, #list)
      assert.are.equal(list[1].id, inst.id)
      assert(release_journal(provider, env, pc, j, {}))
      assert.are.equal(0, #servers_of(env))
    end)

    it("fails on a server in ERROR with Nova's fault, and the release removes it", function()
      local env, pc, j = opened()
      s:config { address_pool = "" }
      local inst, err = start(env, j)
      s:config { address_pool = "127.0.102.1-254" }
      assert.is_nil(inst)
      assert.matches("failed to start %(ERROR%): .*No valid host was found", err)
      assert(release_journal(provider, env, pc, j, {}))
      assert_empty()
    end)

    it("with use-floating-ip: allocates, associates (public first) and releases the address", function()
      local env, pc, j = opened { ["use-floating-ip"] = true }
      local inst = assert(start(env, j))
      assert.are.equal("public", inst.addresses[1].scope)
      assert.matches("^127%.0%.4%.7%d$", inst.addresses[1].value)
      local fips = s:state().floating_ips
      assert.are.equal(1, #fips)
      assert.are.equal(inst.id, tostring(fips[1].instance_id))
      local kinds = {}
      for _, r in ipairs(j:resources()) do kinds[#kinds + 1] = r.kind end
      assert.are.equal("floating-ip", kinds[#kinds])
      assert(release_journal(provider, env, pc, j, {}))
      assert_empty()
    end)

    it("resolves a network label to its id and refuses an unknown one naming the key", function()
      local env, pc, j = opened { network = "net" }
      assert(start(env, j))
      assert(release_journal(provider, env, pc, j, {}))
      local env2, _, j2 = opened { network = "no-such-net" }
      local inst, err = start(env2, j2)
      assert.is_nil(inst)
      assert.matches('^network: no network labelled "no%-such%-net" %(the project has: net%)', err)
      assert.is_nil(group("juju-" .. env2.name))
    end)
  end)

  describe("destroy", function()
    it("finds servers by their juju-env-uuid metadata and groups by Juju's names when the journal is lost", function()
      local env, _, j, cfg = opened { ["use-floating-ip"] = true }
      local inst = assert(start(env, j))
      assert(provider.storage(env):put("provider-state", "state-instances:\n- '" .. inst.id .. "'\n"))
      local _, pc2 = environment()
      local env2 = assert(provider.open(pc2, cfg))
      env2.name = env.name
      local all = assert(provider.all_instances(env2))
      assert.are.equal(1, #all)
      assert.are.equal(inst.id, all[1].id)
      assert.are.same({ inst.id }, assert(provider.state_server_instances(env2)))
      assert(provider.destroy(env2))
      assert_empty()
    end)

    it("releases an instance intent without an id by its name", function()
      local env, pc, j = opened()
      harness.start_unrecorded(env, j)
      assert(release_journal(provider, env, pc, j, {}))
      assert_empty()
      assert.are.same({}, j:resources())
    end)
  end)

  it("leaves nothing in the emulator after all of the above", function()
    assert_empty()
  end)
end)
