-- openstack_bootstrap_spec.lua (#integration): `juju bootstrap` of an
-- openstack environment end to end against the goose fake (goose's
-- Keystone, Nova and Swift test services with our additions; fake on
-- 127.0.0.160) whose servers are real test hosts (juju.testing.instance as
-- its launcher: the user-data applied, sshd on 127.0.0.161.. with the
-- generated host key): Keystone -> image from the catalog's product-streams
-- or image-metadata-url -> groups -> server -> (floating IP NATed to the
-- host) -> SSH with the pinned host key -> phase 2 -> machine agent ->
-- `juju status` shows machine 0 started -> `juju destroy-environment -y`
-- leaves no server, group, floating IP or container, checked from the
-- fake's own state. Secrets never reach output, user-data or storage.
local fake = require("servers.goose.fake")
local keystone = require("juju.cloud.keystone")
local swift = require("juju.cloud.storage.swift")
local json = require("juju.json")
local gzip = require("juju.gzip")
local yaml = require("juju.yaml")
local sys = require("juju.sys")
local fs = require("juju.fs")
local imagemeta = require("imagemeta")
local fake_mongod = require("fake_mongod")
local server = require("juju.testing.server")
local h = require("helpers")

local C = fake.CREDS
local IMAGE = "img-bookworm-amd64"
local REGION = "RegionOne"

describe("openstack bootstrap end to end #integration", function()
  local work, state_dir, s

  setup(function()
    local p
    work, state_dir, p = h.test_hosts("juju-openstack-e2e-")
    s = fake.start("127.0.0.160", "ose2e", { launcher = p.launcher, terminator = p.terminator, images = { IMAGE },
      floating_pool = "127.0.4.161-179", streams = true,
      env = { INSTANCE_ADDRESS_BASE = "160", INSTANCE_OWNER_PID = p.env.INSTANCE_OWNER_PID } })
    -- image metadata in the catalog's product-streams container (public
    -- read), for the v3 auth-url, as a cloud operator publishes it
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

  local function new_environment(name, attrs)
    local home = h.tmpdir("juju-openstack-e2e-home-")
    local env = h.juju_user_env(home)
    local e = { type = "openstack", ["auth-url"] = s.v3, username = C.username, password = C.password,
      ["tenant-name"] = C.tenant_name, ["domain-name"] = C.domain_name, region = REGION,
      ["default-series"] = "bookworm", ["state-store"] = "sqlite", ["bootstrap-timeout"] = 300 }
    for k, v in pairs(attrs or {}) do if v == false then e[k] = nil else e[k] = v end end
    h.write_environments(env, name, e)
    return env, home
  end

  local function live_servers()
    local out = {}
    for _, sv in ipairs(s:state().servers) do
      if sv.status ~= "DELETED" and not sv.gone then out[#out + 1] = sv end
    end
    return out
  end

  local function assert_empty() s:assert_empty(60) end

  local function no_secret(text, what)
    for _, k in ipairs({ "password", "secret_key" }) do
      assert.is_nil(text:find(C[k], 1, true), k .. " in " .. what)
    end
  end

  -- Issue 14.14: the host key of the phase-1 user-data is rotated at the
  -- end of bootstrap: the .jenv pins a new key machine 0 made, the old one
  -- is refused, and no copy of the old private key is left on the host.
  local function assert_host_key_rotated(env, name, user_data, addr, host_pid, stderr)
    assert.matches("Rotated machine 0's SSH host key", stderr)
    local keys = assert(yaml.decode(user_data:gsub("^#cloud%-config\n", ""))).ssh_keys
    local old = keys.ed25519_public:gsub("%s+$", "")
    local jenv = assert(yaml.decode(h.read(env.JUJU_HOME .. "/environments/" .. name .. ".jenv")))
    local new = jenv["bootstrap-config"]["bootstrap-host-key"]
    assert.is_string(new)
    assert.are_not.equal(old:match("^%S+ (%S+)"), new:match("^%S+ (%S+)"))
    local ssh = require("juju.ssh")
    local function connect(pin)
      return ssh.connect { host = addr, port = 22, user = "ubuntu", private_key_file = env.HOME .. "/.ssh/id_ed25519",
        host_key = pin, connect_timeout = 10, timeout = 30 }
    end
    local sess = assert(connect(new))
    sess:close()
    local refused, _, code = connect(old)
    assert.is_nil(refused)
    assert.are.equal("SSH_HOSTKEY", code)
    -- no file under /etc/ssh or /var/lib/cloud holds the old private key
    -- (the first lines of every unencrypted OpenSSH ed25519 key are alike:
    -- the third holds this key's own bytes)
    local lines = {}
    for l in keys.ed25519_private:gmatch("[^\n]+") do if not l:find("-", 1, true) then lines[#lines + 1] = l end end
    local body = assert(lines[3])
    local r = sys.run({ "nsenter", "--target", tostring(host_pid), "--mount", "--root", "--", "grep", "-rlF", body,
      "/etc/ssh", "/var/lib/cloud" }, { timeout = 30 })
    assert.are.equal(1, r.code, "the old host key is still in: " .. r.stdout .. r.stderr)
  end

  it("bootstraps over a floating IP (Keystone v3, images from product-streams), status shows machine 0 started, "
    .. "destroy-environment leaves nothing; issue 14.14: the user-data's host key is rotated", function()
    local env = new_environment("osv3", { ["use-floating-ip"] = true })
    s:clear_calls()
    local code, out, err = h.juju(env, { "bootstrap", "--upload-tools" })
    assert.are.equal(0, code, err)
    assert.matches("Bootstrap complete", err)
    assert.matches("Launching a m1%.small server from image " .. IMAGE:gsub("%-", "%%-"), err)
    local all_output = out .. err

    -- the fake's own view: one ACTIVE server of this environment with a floating IP
    local servers = live_servers()
    assert.are.equal(1, #servers)
    local sv = servers[1]
    assert.are.equal("ACTIVE", sv.status)
    assert.are.equal(IMAGE, sv.image)
    assert.is_string(sv.metadata["juju-env-uuid"])
    assert.are.equal(1, #sv.floating_ips)
    assert.matches("connect to 127%.0%.4%.1[67]%d:22", err) -- SSH went through the floating IP
    -- secrets: not in the user-data the server got, nor in any stored object
    local ud = gzip.gunzip(assert(s:user_data(sv.id)))
    no_secret(ud, "user-data")
    local st = s:state()
    for _, containers in pairs(st.swift or {}) do
      for cname, c in pairs(containers) do
        assert.is_table(c, cname)
      end
    end

    -- API calls per bootstrap, by operation (bench material; printed, not timed)
    local counts = {}
    for _, c in ipairs(s:calls()) do
      local k = c.service .. " " .. c.method .. " " .. c.path
      counts[k] = (counts[k] or 0) + 1
    end
    io.stderr:write("openstack bootstrap API calls: ", json.encode(counts), "\n")

    all_output = all_output .. h.assert_machine0_started(env, sv.id)

    local rec = assert(json.decode(assert(fs.read_file(state_dir .. "/" .. sv.id .. ".json"))))
    assert_host_key_rotated(env, "osv3", ud, sv.floating_ips[1], rec.sshd_pid, all_output)
    code, out, err = h.juju(env, { "destroy-environment", "-y", "osv3" })
    assert.are.equal(0, code, err)
    all_output = all_output .. out .. err
    assert_empty()
    assert.is_false(require("juju.proc").alive(rec.holder_pid))
    assert.is_false(fs.exists(rec.root))
    no_secret(all_output, "the output")
  end)

  it("bootstraps with the mongodb store over Keystone v2.0 (images from image-metadata-url, fixed address): "
    .. "replSetInitiate and createUser recorded, status, destroy leaves nothing", function()
    local home = h.tmpdir("juju-openstack-e2e-img-")
    local images = imagemeta.write(home .. "/img", { region = REGION, endpoint = s.v2,
      images = { { id = IMAGE, series = "bookworm", arch = "amd64" } } })
    local env = new_environment("osv2", { ["auth-url"] = s.v2, ["domain-name"] = false, ["image-metadata-url"] = images,
      ["state-store"] = "mongodb", ["state-port"] = server.free_port("127.0.0.1") })
    -- the server stays BUILD until the host has its mongod
    local r, cleanup = fake_mongod.bootstrap_on_host(env, { state_dir = state_dir,
      hold = function() s:config { build_gets = 1000000 } end,
      release = function() s:config { build_gets = 1 } end })
    finally(cleanup)
    assert.are.equal(0, r.code, r.stderr)
    no_secret(r.stderr, "the bootstrap's output")
    assert.matches("Attempting to connect to 127%.0%.0%.1[67]%d:22", r.stderr)
    fake_mongod.assert_bootstrapped(r.record)
    h.assert_machine0_started(env)
    local code, out, err = h.juju(env, { "destroy-environment", "-y", "osv2" })
    assert.are.equal(0, code, err)
    no_secret(out .. err, "destroy's output")
    assert_empty()
    assert.is_false(require("juju.proc").alive(r.host.holder_pid))
  end)

  -- Bad input at the command level: one ERROR line naming the key or the
  -- constraint, exit 1, nothing created in the cloud, no .jenv left.
  local BAD = {
    { what = "wrong password", attrs = { password = "wrong-Passw0rd-9" },
      want = { "authentication failed at", "check username, password and tenant-name" } },
    { what = "unknown region", attrs = { region = "NoSuchRegion" }, want = { "region: ", "NoSuchRegion", "RegionOne" } },
    -- product-streams holds images for the v3 auth-url only (Juju matches
    -- image metadata on the auth-url): none for v2.0
    { what = "no image for the cloud", attrs = { ["auth-url"] = "v2", ["domain-name"] = false },
      want = { "cannot find an image", 'no "bookworm" images in RegionOne with arches [amd64]' } },
    { what = "no flavor fits", args = { "--constraints", "mem=64G" },
      want = { "no flavor of RegionOne matches constraints", "mem=65536M" } },
    { what = "quota refused", fault = { op = "POST /servers", status = 403, body = { forbidden = { code = 403,
      message = "Quota exceeded for instances: Requested 1, but already used 10 of 10 instances" } } },
      want = { "nova POST /servers", "Quota exceeded for instances" } },
  }
  it("refuses bad input in one line naming the key or constraint, creating nothing", function()
    for i, case in ipairs(BAD) do
      s:clear_faults()
      local name = "osbad" .. i
      local attrs = {}
      for k, v in pairs(case.attrs or {}) do attrs[k] = (k == "auth-url" and v == "v2") and s.v2 or v end
      local env = new_environment(name, attrs)
      if case.fault then s:faults(case.fault) end
      local args = { "bootstrap", "--upload-tools" }
      for _, a in ipairs(case.args or {}) do args[#args + 1] = a end
      local code, out, err = h.juju(env, args)
      assert.are.equal(1, code, case.what .. ": " .. err)
      local errors = {}
      for l in err:gmatch("[^\n]+") do if l:match("^ERROR ") then errors[#errors + 1] = l end end
      assert.are.equal(1, #errors, case.what .. ": " .. err)
      for _, needle in ipairs(case.want) do
        assert.is_truthy(errors[1]:find(needle, 1, true), case.what .. ": " .. needle .. " not in " .. errors[1])
      end
      no_secret(out .. err, case.what)
      assert.is_false(fs.exists(env.JUJU_HOME .. "/environments/" .. name .. ".jenv"), case.what)
      assert_empty()
    end
    s:clear_faults()
  end)
end)
