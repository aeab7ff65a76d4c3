-- ec2_bootstrap_spec.lua (#integration): `juju bootstrap` of an ec2
-- environment end to end against the EC2 fake (botocore's model and signer
-- check every request) whose instances are real test hosts
-- (juju.testing.instance: the launcher applies the user-data, sshd on
-- 127.0.0.N with the generated host key), environ storage in s3rver behind
-- s3check: API calls -> user-data applied -> SSH with the pinned host key ->
-- phase 2 -> machine agent -> `juju status` shows machine 0 started ->
-- `juju destroy-environment -y` leaves no instance, group or bucket, checked
-- from the emulators' own state. Secrets never reach output, user-data or
-- storage. A second case uses the mongodb state store (the one a user gets)
-- through tests/integration/fake-mongod as the host's
-- /usr/lib/juju/bin/mongod; the first uses sqlite.
local server = require("juju.testing.server")
local http = require("juju.http")
local json = require("juju.json")
local crypto = require("juju.crypto")
local sys = require("juju.sys")
local fs = require("juju.fs")
local h = require("helpers")
local fake_mongod = require("fake_mongod")
local ec2_cloud = require("clouds.ec2") -- its image metadata

local PYTHON = "/usr/bin/python3"
local ACCESS = "S3RVER" -- s3rver checks the access key only; the fake and s3check check the secret
local SECRET = "ec2/E2E+Secret" .. crypto.hex(crypto.random_bytes(6))
local REGION = "us-east-1"
local ADDRESS_BASE = 200 -- this spec's hosts: 127.0.0.201..

local function npm_root()
  local r = sys.run({ "npm", "root", "-g" }, { timeout = 30 })
  assert(r and r.code == 0, "npm root -g failed: is npm installed? run scripts/install-deps.sh")
  return (r.stdout:gsub("%s+$", ""))
end

describe("ec2 bootstrap end to end #integration", function()
  local work, state_dir, fake, s3rver, checker

  local function admin(path, body)
    local r, msg = http.request { url = fake.url:gsub("/$", "") .. path, retries = 0, timeout = 120,
      method = body and "POST" or nil, body = body and assert(json.encode(body)) or nil,
      headers = body and { ["Content-Type"] = "application/json" } or nil }
    assert(r, msg)
    return r.body:sub(1, 1) == "{" and assert(json.decode(r.body)) or r.body
  end

  setup(function()
    local p
    work, state_dir, p = h.test_hosts("juju-ec2-e2e-")
    h.write(work .. "/fake.json", assert(json.encode { credentials = { [ACCESS] = SECRET }, region = REGION }), "0600")
    fake = assert(server.start { name = "ec2fake",
      argv = { PYTHON, h.source_dir .. "/tests/servers/ec2/ec2fake.py", "--host", "{host}", "--port", "{port}",
        "--dir", "{dir}", "--config", work .. "/fake.json", "--launcher", p.launcher, "--terminator", p.terminator },
      env = { INSTANCE_ADDRESS_BASE = tostring(ADDRESS_BASE), INSTANCE_OWNER_PID = p.env.INSTANCE_OWNER_PID } })
    local node_path = npm_root()
    local s3rver_js = node_path .. "/s3rver/bin/s3rver.js"
    assert(fs.exists(s3rver_js), s3rver_js .. " not found: run scripts/install-deps.sh")
    s3rver = assert(server.start { name = "s3rver",
      argv = { "node", s3rver_js, "--address", "{host}", "--port", "{port}", "--directory", "{dir}", "--silent" },
      env = { NODE_PATH = node_path } })
    checker = assert(server.start { name = "s3check",
      argv = { PYTHON, h.source_dir .. "/tests/servers/s3check/s3check.py", "--listen", "{host}:{port}",
        "--upstream", s3rver.url, "--access-key", ACCESS, "--region", REGION },
      env = { S3CHECK_SECRET_KEY = SECRET } })
  end)

  teardown(function()
    server.stop_all()
    h.cleanup()
  end)

  local function new_environment(store, extra_lines)
    local home = h.tmpdir("juju-ec2-e2e-home-")
    local env = h.juju_user_env(home)
    ec2_cloud.image_metadata(home .. "/img")
    local bucket = "ec2-e2e-" .. crypto.hex(crypto.random_bytes(4))
    h.write(env.JUJU_HOME .. "/environments.yaml", h.environments_yaml("amazon", string.format([[
  amazon:
    type: ec2
    access-key: %s
    secret-key: %s
    ec2-endpoint: %s
    s3-endpoint: %s
    control-bucket: %s
    image-metadata-url: file://%s/img
    default-series: bookworm
    state-store: %s
    bootstrap-timeout: 300
%s]], ACCESS, SECRET, fake.url, checker.url, bucket, home, store, extra_lines or "")))
    return env, bucket
  end

  it("bootstraps, shows machine 0 started, and destroy-environment leaves nothing", function()
    local env, bucket = new_environment("sqlite")

    local code, out, err = h.juju(env, { "bootstrap", "--upload-tools" })
    assert.are.equal(0, code, err)
    assert.matches("Bootstrap complete", err)
    local all_output = out .. err

    -- the emulator's own view: one running instance of this environment, its groups
    local st = admin("/_admin/state")
    local running = {}
    for _, i in ipairs(st.instances) do if i.state == "running" then running[#running + 1] = i end end
    assert.are.equal(1, #running)
    local inst = running[1]
    assert.are.equal("ami-442ea674", inst.image_id)
    assert.is_string(inst.tags["juju-env-uuid"])
    -- secrets: not in the user-data the instance got, nor in any storage object
    local ud = admin("/_admin/user-data/" .. inst.id)
    assert.is_nil(ud:find(SECRET, 1, true))
    for _, f in ipairs(fs.list(s3rver.dir .. "/" .. bucket) or {}) do
      local path = s3rver.dir .. "/" .. bucket .. "/" .. f
      if fs.stat(path) and fs.stat(path).type == "file" then
        assert.is_nil(assert(fs.read_file(path)):find(SECRET, 1, true), f)
      end
    end
    assert.is_true(fs.exists(s3rver.dir .. "/" .. bucket))

    -- API calls per bootstrap, by action (bench material; printed, not timed)
    local counts = {}
    for _, c in ipairs(admin("/_admin/calls").calls) do counts[c.action] = (counts[c.action] or 0) + 1 end
    io.stderr:write("ec2 bootstrap API calls: ", json.encode(counts), "\n")

    all_output = all_output .. h.assert_machine0_started(env, inst.id)

    local rec = assert(json.decode(assert(fs.read_file(state_dir .. "/" .. inst.id .. ".json"))))
    code, out, err = h.juju(env, { "destroy-environment", "-y", "amazon" })
    assert.are.equal(0, code, err)
    all_output = all_output .. out .. err
    local settled = admin("/_admin/settle?timeout=60")
    assert.is_true(settled.settled, json.encode(settled))
    local left = admin("/_admin/leftovers")
    assert.are.same({}, left.instances)
    assert.are.same({}, left.groups)
    assert.is_false(fs.exists(s3rver.dir .. "/" .. bucket))
    -- the host is gone with its instance
    assert.is_false(require("juju.proc").alive(rec.holder_pid))
    assert.is_false(fs.exists(rec.root))
    assert.is_nil(all_output:find(SECRET, 1, true))
  end)

  it("bootstraps with the mongodb store: fake mongod on the ec2 host, replSetInitiate and createUser recorded",
    function()
    local port = server.free_port("127.0.0.1")
    local env = new_environment("mongodb", "    state-port: " .. port .. "\n")
    -- the instance stays pending until the host has its mongod
    local r, cleanup = fake_mongod.bootstrap_on_host(env, { state_dir = state_dir,
      hold = function() admin("/_admin/config", { pending_describes = 1000000 }) end,
      release = function() admin("/_admin/config", { pending_describes = 1 }) end })
    finally(cleanup)
    local code, stderr, record, rec = r.code, r.stderr, r.record, r.host
    assert.are.equal(0, code, stderr)
    assert.is_nil(stderr:find(SECRET, 1, true))
    fake_mongod.assert_bootstrapped(record)
    h.assert_machine0_started(env)
    local c2, out, err = h.juju(env, { "destroy-environment", "-y", "amazon" })
    assert.are.equal(0, c2, err)
    assert.is_nil((out .. err):find(SECRET, 1, true))
    assert.is_true(admin("/_admin/settle?timeout=60").settled)
    local left = admin("/_admin/leftovers")
    assert.are.same({}, left.instances)
    assert.are.same({}, left.groups)
    assert.is_false(require("juju.proc").alive(rec.holder_pid))
  end)
end)
