-- ha_openstack_dqlite_spec.lua (#integration): `juju ensure-availability`
-- on a cloud: an openstack environment (the goose fake on 127.0.0.28,
-- servers as real test hosts from a fresh Debian root on 127.0.0.29..)
-- with state-store: dqlite. Machine 0 bootstraps node 1; the two new state
-- servers are Nova servers started through the provider with their own
-- user-data, installed over SSH (the join script), and their agents join
-- the cluster over mutual TLS on 127.0.0.29-31:17666. `juju status` shows
-- three voters; with machine 0's jujud killed (SIGKILL, inside its host)
-- status still answers from the other two; destroy-environment leaves the
-- fake empty (servers, groups, containers).
local fake = require("servers.goose.fake")
local keystone = require("juju.cloud.keystone")
local swift = require("juju.cloud.storage.swift")
local json = require("juju.json")
local yaml = require("juju.yaml")
local sys = require("juju.sys")
local fs = require("juju.fs")
local imagemeta = require("imagemeta")
local h = require("helpers")

local C = fake.CREDS
local IMAGE = "img-bookworm-amd64"
local REGION = "RegionOne"

describe("ensure-availability on openstack with state-store: dqlite #integration", function()
  local work, state_dir, s

  setup(function()
    local p
    work, state_dir, p = h.test_hosts("juju-ha-openstack-")
    s = fake.start("127.0.0.28", "haos", { launcher = p.launcher, terminator = p.terminator, images = { IMAGE },
      streams = true, env = { INSTANCE_ADDRESS_BASE = "28", INSTANCE_OWNER_PID = p.env.INSTANCE_OWNER_PID } })
    local dir = work .. "/ps"
    imagemeta.write(dir, { region = REGION, endpoint = s.v3, images = { { id = IMAGE, series = "bookworm",
      arch = "amd64" } } })
    local ks = assert(keystone.new { auth_url = s.v3, username = C.username, password = C.password,
      tenant_name = C.tenant_name, domain_name = C.domain_name, region = REGION })
    local st = assert(swift.new { keystone = ks, container = "imagemetadata", create = false })
    for _, f in ipairs({ "index.json", "images.json" }) do
      assert(st:put("streams/v1/" .. f, h.read(dir .. "/streams/v1/" .. f)))
    end
  end)

  teardown(function() h.stop_test_hosts(s, state_dir) end)

  local function live_servers()
    local out = {}
    for _, sv in ipairs(s:state().servers) do
      if sv.status ~= "DELETED" and not sv.gone then out[#out + 1] = sv end
    end
    return out
  end

  it("grows to three voters on three servers, status survives machine 0's agent killed, destroy leaves nothing",
    function()
      local home = h.tmpdir("juju-ha-openstack-home-")
      local env = h.juju_user_env(home)
      h.write_environments(env, "haos", { type = "openstack", ["auth-url"] = s.v3, username = C.username,
        password = C.password, ["tenant-name"] = C.tenant_name, ["domain-name"] = C.domain_name, region = REGION,
        ["default-series"] = "bookworm", ["state-store"] = "dqlite", ["bootstrap-timeout"] = 300 })
      local code, _, err = h.juju(env, { "bootstrap", "--upload-tools" })
      assert.are.equal(0, code, err)
      local out
      code, out, err = h.juju(env, { "ensure-availability", "-n", "3" })
      assert.are.equal(0, code, err)
      assert.are.equal("maintaining machines: 0\nadding machines: 1, 2\n", out)
      assert.is_nil(err:find(C.password, 1, true), "the password in ensure-availability's output")

      local servers = live_servers()
      assert.are.equal(3, #servers, json.encode(servers))
      local jenv = assert(yaml.decode(h.read(env.JUJU_HOME .. "/environments/haos.jenv")))
      assert.are.equal(3, #jenv["state-servers"], json.encode(jenv["state-servers"]))
      for _, a in ipairs(jenv["state-servers"]) do assert.matches("^127%.0%.0%.%d+:17666$", a) end

      code, out, err = h.juju(env, { "status", "--format", "yaml" })
      assert.are.equal(0, code, err)
      local doc = yaml.decode(out)
      local ids = {}
      for n = 0, 2 do
        local m = doc.machines[tostring(n)]
        assert.is_table(m, out)
        assert.are.equal("started", m["agent-state"], out)
        assert.are.equal("has-vote", m["state-server-member-status"], out)
        ids[m["instance-id"]] = true
      end
      local n_ids = 0
      for _ in pairs(ids) do n_ids = n_ids + 1 end
      assert.are.equal(3, n_ids, "three machines on three servers: " .. out)

      -- machine 0's agent killed inside its host: the other two keep the state
      local sv0 = doc.machines["0"]["instance-id"]
      local rec = assert(json.decode(assert(fs.read_file(state_dir .. "/" .. sv0 .. ".json"))))
      local r = assert(sys.run({ "nsenter", "--target", tostring(rec.sshd_pid), "--mount", "--root", "--", "sh", "-c",
        "kill -KILL $(cat /var/lib/juju/init/*/*.pid 2>/dev/null) $(cat /var/lib/juju/agents/machine-0/jujud.pid)" },
        { timeout = 30 }))
      assert.are.equal(0, r.code, r.stderr)
      code, out, err = h.juju(env, { "status", "--format", "yaml" })
      assert.are.equal(0, code, err)
      doc = yaml.decode(out)
      assert.are.equal("has-vote", doc.machines["1"]["state-server-member-status"], out)
      assert.are.equal("has-vote", doc.machines["2"]["state-server-member-status"], out)

      code, _, err = h.juju(env, { "destroy-environment", "-y", "haos" })
      assert.are.equal(0, code, err)
      s:assert_empty(60)
    end)
end)
