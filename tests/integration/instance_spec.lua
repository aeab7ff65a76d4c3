-- instance_spec.lua (#integration): emulated instances as real test hosts
-- (juju.testing.instance). A host launched from the phase-1 user-data Juju
-- renders (cloudinit.userdata) serves the generated host key, lets `ubuntu`
-- in with the environment's key and passwordless sudo, has run runcmd (the
-- nonce file, the output log); bad user-data fails clearly; the launcher and
-- terminator programs work as the EC2 fake runs them, and through the fake
-- itself; nothing is left behind.
local instance = require("juju.testing.instance")
local server = require("juju.testing.server")
local cloudinit = require("juju.cloudinit")
local instancecfg = require("juju.instancecfg")
local provider_common = require("juju.provider_common")
local ssh = require("juju.ssh")
local crypto = require("juju.crypto")
local gzip = require("juju.gzip")
local json = require("juju.json")
local xml = require("juju.xml")
local http = require("juju.http")
local proc = require("juju.proc")
local fs = require("juju.fs")
local sys = require("juju.sys")
local h = require("helpers")

local PYTHON = "/usr/bin/python3"
local CLOUD_INIT = "/usr/bin/cloud-init"
local EC2_DIR = h.source_dir .. "/tests/servers/ec2"
-- Addresses 127.0.0.140.. (port 22 each): this spec's own.
local BASE = 140

local CA_CERT, CA_KEY = crypto.new_ca("instance-spec")

local function new_userdata(user_pub, host_keys)
  local cfg = {
    name = "inst", type = "ec2", uuid = "5b1c1d2e-9b8f-4e3d-a2c1-0f9e8d7c6b5a",
    ["admin-secret"] = "admin-secret-" .. crypto.hex(crypto.random_bytes(4)), ["ca-cert"] = CA_CERT,
    ["ca-private-key"] = CA_KEY, ["agent-version"] = "1.25.0", ["state-port"] = 37017, ["api-port"] = 17070,
    ["authorized-keys"] = user_pub .. "\n", ["ssl-hostname-verification"] = true,
  }
  local icfg = instancecfg.new_bootstrap(cfg, { series = "bookworm" })
  icfg = assert(instancecfg.finish(icfg, cfg, { instance_id = "i-spec", hardware = { arch = "amd64" },
    tools = { version = "1.25.0-bookworm-amd64", url = "https://example.com/t.tgz", sha256 = crypto.sha256("t"),
      size = 1 } }))
  return assert(cloudinit.userdata(icfg, { host_keys = host_keys })), icfg
end

local function listening(address, port)
  return proc.wait_port(address, port or 22, 0.3) == true
end

describe("juju.testing.instance #integration", function()
  local work, key_file, user_pub, host_keys, userdata, icfg, state_dir
  local hosts = {}
  local n = 0

  local function next_index()
    n = n + 1
    return BASE + n
  end

  local function launch(data, extra)
    local opts = { user_data = data, address_index = next_index(), name = "spec-host" }
    for k, v in pairs(extra or {}) do opts[k] = v end
    local host, err = instance.launch(opts)
    if host then hosts[#hosts + 1] = host end
    return host, err, opts.address_index
  end

  local function connect(host, extra)
    local o = { host = host.address, port = host.port, user = "ubuntu", private_key_file = key_file,
      host_key = host.host_key_pub, connect_timeout = 10, timeout = 30 }
    for k, v in pairs(extra or {}) do
      if v == false then o[k] = nil else o[k] = v end
    end
    return ssh.connect(o)
  end

  setup(function()
    work = h.tmpdir("juju-instance-spec-")
    state_dir = work .. "/instances"
    local pem
    pem, user_pub = crypto.ssh_keygen_ed25519("spec-user")
    key_file = work .. "/id_ed25519"
    h.write(key_file, pem, "0600")
    host_keys = provider_common.new_host_keys()
    userdata, icfg = new_userdata(user_pub, host_keys)
  end)

  teardown(function()
    for _, host in ipairs(hosts) do host.stop() end
    instance.terminate_all(state_dir)
    server.stop_all()
    h.cleanup()
  end)

  it("renders user-data that Debian's cloud-init accepts (its own schema validator)", function()
    assert.is_true(fs.exists(CLOUD_INIT), CLOUD_INIT .. " missing: run scripts/install-deps.sh")
    h.write(work .. "/user-data", userdata, "0600")
    local r = assert(sys.run({ CLOUD_INIT, "schema", "--config-file", work .. "/user-data" }, { timeout = 60 }))
    assert.are.equal(0, r.code, r.stdout .. r.stderr)
    assert.matches("Valid cloud%-config", r.stdout)
    -- and it holds the host key this spec expects the host to serve
    assert.is_truthy(userdata:find(host_keys.ed25519.public, 1, true))
  end)

  it("serves the user-data's host key to ubuntu, who has the environment's key and passwordless sudo", function()
    local host = assert(launch(userdata))
    assert.are.equal("cloud-init", host.cloud_init)
    assert.are.equal(22, host.port)
    assert.are.equal(host_keys.ed25519.public, host.host_key_pub)
    local s = assert(connect(host))
    local r = assert(s:exec("id -un; cat /var/lib/juju/nonce.txt; sudo -n true && echo sudo-ok"))
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal("ubuntu\n" .. icfg.nonce .. "\nsudo-ok\n", r.stdout)
    -- runcmd ran as root, in order, its output in the cloud-init output log
    r = assert(s:exec("sudo -n cat " .. icfg.cloud_init_output_log))
    assert.are.equal(0, r.code, r.stderr)
    assert.matches("systemctl enable", r.stdout)
    assert.is_truthy(r.stdout:find("juju-clean-shutdown.service", 1, true))
    local unit = assert(host.run({ "/bin/cat", cloudinit.CLEAN_SHUTDOWN_PATH }))
    assert.are.equal(cloudinit.CLEAN_SHUTDOWN_UNIT, unit.stdout:sub(1, #cloudinit.CLEAN_SHUTDOWN_UNIT))
    assert.are.equal(r.stdout, assert(host.output_log()))
    s:close()
    -- pinning another key is refused
    local _, other = crypto.ssh_keygen_ed25519("other")
    local bad, msg, code = connect(host, { host_key = other })
    assert.is_nil(bad)
    assert.are.equal("SSH_HOSTKEY", code, msg)
    -- the key is ubuntu's; root's (disable_root, cloud-init's default) only
    -- says to log in as ubuntu
    r = assert(host.run({ "/bin/cat", "/root/.ssh/authorized_keys" }))
    assert.are.equal(0, r.code, r.stderr)
    assert.is_truthy(r.stdout:find([[Please login as the user \"ubuntu\" rather than the user \"root\"]], 1, true),
      r.stdout)
    assert.is_truthy(r.stdout:find(user_pub:match("^%S+ %S+"), 1, true))
    -- the host is a fresh Debian 12 image, not the build machine
    r = assert(host.run({ "/bin/sh", "-c", ". /etc/os-release; echo $VERSION_CODENAME; ls /usr/lib/*/liblua5.4.so.0" }))
    assert.matches("^bookworm\n", r.stdout)
    assert.are_not.equal(0, r.code)
    host.stop()
    assert.is_false(listening(host.address))
    assert.is_false(fs.exists(host.server.root))
  end)

  it("takes gzip'd user-data as it is", function()
    local host = assert(launch(gzip.gzip(userdata), { cloud_init = "emulated" }))
    local s = assert(connect(host))
    local r = assert(s:exec("cat /var/lib/juju/nonce.txt"))
    assert.are.equal(icfg.nonce .. "\n", r.stdout)
    s:close()
    host.stop()
  end)

  local function files_userdata()
    return table.concat({
      "#cloud-config",
      "bootcmd:",
      "- echo booted > /run/bootcmd-ran",
      "write_files:",
      "- path: /etc/spec/plain.txt",
      "  content: hello",
      "  permissions: '0640'",
      "- path: /etc/spec/b64.txt",
      "  encoding: b64",
      "  content: " .. crypto.base64("decoded\n"),
      "- path: /home/ubuntu/late.txt",
      "  content: late",
      "  owner: ubuntu:ubuntu",
      "  defer: true",
      "packages: [curl, [jq, '1.6']]",
      "package_update: true",
      "ssh_authorized_keys:",
      "- " .. user_pub,
      "output: {all: '>> /var/log/spec-output.log'}",
      "runcmd:",
      "- [sh, -c, 'echo \"runcmd as $(id -un)\"']",
      "- cat /run/bootcmd-ran",
      "",
    }, "\n")
  end

  local FILES_CHECK = "cat /etc/spec/plain.txt; echo; stat -c %a /etc/spec/plain.txt; cat /etc/spec/b64.txt;"
    .. " stat -c %U /home/ubuntu/late.txt; cat /home/ubuntu/late.txt; echo"

  it("applies bootcmd and write_files, records packages, keeps ssh_authorized_keys (emulated cloud-init)", function()
    local host = assert(launch(files_userdata(), { cloud_init = "emulated" }))
    assert.are.equal("emulated", host.cloud_init)
    local r = assert(host.run({ "/bin/sh", "-c", FILES_CHECK .. "; cat /var/log/spec-output.log" }))
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal("hello\n640\ndecoded\nubuntu\nlate\nruncmd as root\nbooted\n", r.stdout)
    assert.are.same({ "curl", "jq=1.6" }, host.recorded.packages)
    assert.is_true(host.recorded.package_update)
    assert.matches("recorded, not applied", assert(fs.read_file(host.log)))
    -- no ssh_keys: a generated host key, still served
    assert.are_not.equal(host_keys.ed25519.public, host.host_key_pub)
    local s = assert(connect(host))
    s:close()
    host.stop()
  end)

  it("applies the same user-data with Debian's cloud-init, packages recorded but not installed", function()
    local host = assert(launch(files_userdata()))
    assert.are.equal("cloud-init", host.cloud_init)
    local r = assert(host.run({ "/bin/sh", "-c", FILES_CHECK }))
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal("hello\n640\ndecoded\nubuntu\nlate\n", r.stdout)
    local out = assert(host.run({ "/bin/cat", "/var/log/spec-output.log" })).stdout
    assert.matches("runcmd as root\nbooted\n", out)
    assert.matches("Cloud%-init v%. %S+ finished", out)
    assert.are.same({ "curl", "jq=1.6" }, host.recorded.packages)
    r = assert(host.run({ "/bin/sh", "-c", "dpkg -s jq curl" }))
    assert.are_not.equal(0, r.code)
    local s = assert(connect(host))
    s:close()
    host.stop()
  end)

  it("refuses user-data that is not cloud-config, malformed or with unsupported keys, naming the problem", function()
    local cases = {
      { "#!/bin/sh\necho hi\n", "a script %(#!%), not #cloud%-config" },
      { "", "empty" },
      { "#cloud-config\nruncmd: [unclosed\n", "not valid YAML: user%-data:%d+" },
      { "#cloud-config\nusers: [default]\n", 'cloud%-config key "users" is not supported' },
      { "#cloud-config\nruncmd: echo hi\n", "runcmd: expected a list" },
      { "#cloud-config\nssh_keys: {dsa_private: x, dsa_public: y}\n", "ssh_keys.dsa_private is not supported" },
      { "#cloud-config\nwrite_files: [{path: /x, encoding: zip}]\n", 'encoding: unsupported "zip"' },
      { "\31\139garbage", "gzip'd but cannot be decompressed" },
    }
    for _, c in ipairs(cases) do
      local host, err, index = launch(c[1])
      assert.is_nil(host, c[2])
      assert.matches(c[2], err)
      assert.is_false(listening("127.0.0." .. index))
    end
    -- a failing runcmd fails the launch with its output; the key never shows
    local bad, subs = userdata:gsub("runcmd:\n%- set %-xe\n",
      "runcmd:\n- set -xe\n- echo before-failure\n- 'false'\n- echo after-failure\n", 1)
    assert.are.equal(1, subs)
    for _, mode in ipairs { "emulated", "cloud-init" } do
      local host, err, index = launch(bad, { cloud_init = mode })
      assert.is_nil(host)
      assert.matches(mode == "emulated" and "runcmd failed %(exit 1%)" or "cloud%-init failed %(exit 1%)", err)
      assert.matches("before%-failure", err)
      assert.is_nil(err:find("after-failure", 1, true))
      assert.is_nil(err:find(host_keys.ed25519.private, 1, true))
      assert.is_nil(err:find("PRIVATE KEY", 1, true))
      assert.is_false(listening("127.0.0." .. index))
    end
  end)

  local function run_launcher(id, user_data_file, index, extra_env)
    local env = sys.environ()
    env.INSTANCE_ID, env.USER_DATA_FILE, env.INSTANCE_INDEX = id, user_data_file, tostring(index)
    env.INSTANCE_ADDRESS_BASE = tostring(BASE)
    for k, v in pairs(extra_env or {}) do env[k] = v end
    local p = instance.programs(state_dir)
    return assert(sys.run(p.launcher_argv, { env = env, timeout = 120 }))
  end

  it("launch.lua prints the address and leaves the host running; terminate.lua stops it all", function()
    local ud_file = work .. "/ud-launcher"
    h.write(ud_file, gzip.gzip(userdata), "0600")
    n = n + 1
    local r = run_launcher("i-launcher1", ud_file, n)
    assert.are.equal(0, r.code, r.stderr)
    local address = "127.0.0." .. (BASE + n)
    assert.are.equal(address .. "\n", r.stdout)
    -- the launcher has exited; the host lives on in its holder
    local rec = assert(json.decode(assert(fs.read_file(state_dir .. "/i-launcher1.json"))))
    assert.is_true(proc.alive(rec.holder_pid))
    assert.is_true(proc.alive(rec.sshd_pid))
    local s = assert(connect({ address = address, port = 22, host_key_pub = host_keys.ed25519.public }))
    local out = assert(s:exec("cat /var/lib/juju/nonce.txt"))
    assert.are.equal(icfg.nonce .. "\n", out.stdout)
    -- something started over SSH that would outlive sshd
    assert(s:exec("sudo -n setsid sleep 600 < /dev/null > /dev/null 2>&1 &"))
    s:close()
    local env = sys.environ()
    env.INSTANCE_ID, env.INSTANCE_ADDRESS = "i-launcher1", address
    r = assert(sys.run(instance.programs(state_dir).terminator_argv, { env = env, timeout = 60 }))
    assert.are.equal(0, r.code, r.stderr)
    assert.is_false(proc.alive(rec.holder_pid))
    assert.is_false(proc.alive(rec.sshd_pid))
    local left = {}
    for _, p in ipairs(fs.list("/proc")) do
      -- (the namespace's id may be reused by then: its root names the host)
      local lr = p:match("^%d+$") and fs.readlink("/proc/" .. p .. "/root")
      if lr and lr:sub(1, #rec.root + 1) == rec.root .. "/" then left[#left + 1] = p end
    end
    assert.are.same({}, left)
    assert.is_false(fs.exists(rec.root))
    assert.is_false(listening(address))
    assert.are.same({}, fs.list(state_dir))
    -- terminating again is fine
    r = assert(sys.run(instance.programs(state_dir).terminator_argv, { env = env, timeout = 60 }))
    assert.are.equal(0, r.code, r.stderr)
  end)

  it("a launched host stops by itself when the process that owns it is gone", function()
    local ud_file = work .. "/ud-owner"
    h.write(ud_file, userdata, "0600")
    local owner = assert(sys.spawn({ "/bin/sleep", "600" }, { stdin = "null", stdout = "null", stderr = "null" }))
    n = n + 1
    local r = run_launcher("i-owned", ud_file, n, { INSTANCE_OWNER_PID = tostring(owner:pid()) })
    assert.are.equal(0, r.code, r.stderr)
    local rec = assert(json.decode(assert(fs.read_file(state_dir .. "/i-owned.json"))))
    assert.is_true(proc.alive(rec.sshd_pid))
    owner:close()
    local deadline = sys.monotonic() + 20
    while proc.alive(rec.holder_pid) and sys.monotonic() < deadline do sys.sleep(0.1) end
    assert.is_false(proc.alive(rec.holder_pid))
    assert.is_false(proc.alive(rec.sshd_pid))
    assert.is_false(fs.exists(rec.root))
    assert.is_false(listening(rec.address))
    assert(instance.terminate(state_dir, "i-owned"))
    assert.are.same({}, fs.list(state_dir))
  end)

  it("launch.lua fails with the reason on stderr and leaves nothing", function()
    local ud_file = work .. "/ud-bad"
    h.write(ud_file, "#cloud-config\nusers: [default]\n", "0600")
    n = n + 1
    local r = run_launcher("i-bad", ud_file, n)
    assert.are.equal(1, r.code)
    assert.are.equal("", r.stdout)
    assert.matches('cloud%-config key "users" is not supported', r.stderr)
    assert.is_false(fs.exists(state_dir .. "/i-bad.pid"))
    assert.is_false(listening("127.0.0." .. (BASE + n)))
  end)

  it("is what the EC2 fake starts: RunInstances -> running at the host's address -> SSH with the pinned key",
    function()
      local access, secret = "AKIDINSTANCESPEC", "instance/Spec+" .. crypto.hex(crypto.random_bytes(6))
      local fake_cfg = work .. "/fake.json"
      h.write(fake_cfg, assert(json.encode({ credentials = { [access] = secret }, region = "us-east-1" })), "0600")
      local creds = work .. "/creds.json"
      h.write(creds, assert(json.encode({ access_key = access, secret_key = secret, region = "us-east-1" })), "0600")
      local p = instance.programs(state_dir)
      -- the fake counts instances from 1: this spec's next addresses
      local base = BASE + n
      n = n + 1
      local fake = assert(server.start {
        name = "ec2fake",
        argv = { PYTHON, EC2_DIR .. "/ec2fake.py", "--host", "{host}", "--port", "{port}", "--dir", "{dir}",
          "--config", fake_cfg, "--launcher", p.launcher, "--terminator", p.terminator },
        env = { INSTANCE_ADDRESS_BASE = tostring(base), INSTANCE_OWNER_PID = p.env.INSTANCE_OWNER_PID },
      })
      local boto = assert(server.start {
        name = "botoclient", argv = { PYTHON, EC2_DIR .. "/botoclient.py", "serve", "{host}", "{port}", fake.url, creds },
      })
      local function post(url, body)
        local r, msg, _, resp = http.request { url = url, method = "POST", retries = 0, timeout = 300,
          body = assert(json.encode(body)), headers = { ["Content-Type"] = "application/json" } }
        r = r or resp
        assert(r, msg)
        return assert(json.decode(r.body)), r.status
      end
      -- RunInstances as the provider sends it: gzip'd user-data, a ClientToken,
      -- signed (by botocore's SigV4 signer) and sent with juju.http
      local form = {}
      local params = { Action = "RunInstances", Version = "2014-10-01", ImageId = "ami-26745463", MinCount = "1",
        MaxCount = "1", InstanceType = "m3.medium", ClientToken = "instance-spec-1",
        UserData = crypto.base64(gzip.gzip(userdata)) }
      local keys = {}
      for k in pairs(params) do keys[#keys + 1] = k end
      table.sort(keys)
      for _, k in ipairs(keys) do form[#form + 1] = http.url_escape(k) .. "=" .. http.url_escape(params[k]) end
      local req = { method = "POST", url = fake.url .. "/", body = table.concat(form, "&"),
        headers = { ["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8" } }
      req.headers = post(boto.url .. "/sign", { request = req })
      local r = assert(http.request { url = req.url, method = "POST", headers = req.headers, body = req.body,
        retries = 0 })
      assert.are.equal(200, r.status, r.body)
      local root = assert(xml.decode(r.body, "RunInstances"))
      local id
      for _, e in ipairs(root.children) do
        if e.name == "instancesSet" then
          for _, f in ipairs(e.children[1].children) do
            if f.name == "instanceId" then id = f.text end
          end
        end
      end
      assert.is_string(id)
      -- DescribeInstances through botocore's client until running (the fake
      -- ticks per call; settle waits for the launcher's answer)
      local settled = assert(json.decode(assert(http.request { url = fake.url .. "/_admin/settle?timeout=60",
        timeout = 90 }).body))
      assert.is_true(settled.settled, json.encode(settled))
      local inst
      for _ = 1, 5 do
        local out = post(boto.url .. "/call", { operation = "describe_instances", params = { InstanceIds = { id } } })
        inst = out.Reservations[1].Instances[1]
        if inst.State.Name ~= "pending" then break end
      end
      assert.are.equal("running", inst.State.Name)
      assert.are.equal("127.0.0." .. (base + 1), inst.PrivateIpAddress)
      local s = assert(connect({ address = inst.PublicIpAddress or inst.PrivateIpAddress, port = 22,
        host_key_pub = host_keys.ed25519.public }))
      local out = assert(s:exec("cat /var/lib/juju/nonce.txt; sudo -n true && echo root-ok"))
      assert.are.equal(icfg.nonce .. "\nroot-ok\n", out.stdout)
      s:close()
      local rec = assert(json.decode(assert(fs.read_file(state_dir .. "/" .. id .. ".json"))))
      -- TerminateInstances runs the terminator: the host is gone
      post(boto.url .. "/call", { operation = "terminate_instances", params = { InstanceIds = { id } } })
      settled = assert(json.decode(assert(http.request { url = fake.url .. "/_admin/settle?timeout=60",
        timeout = 90 }).body))
      assert.is_true(settled.settled, json.encode(settled))
      for _ = 1, 5 do
        local o = post(boto.url .. "/call", { operation = "describe_instances", params = { InstanceIds = { id } } })
        inst = o.Reservations[1].Instances[1]
        if inst.State.Name ~= "shutting-down" then break end
      end
      assert.are.equal("terminated", inst.State.Name)
      assert.is_false(proc.alive(rec.holder_pid))
      assert.is_false(proc.alive(rec.sshd_pid))
      assert.is_false(fs.exists(rec.root))
      assert.is_false(listening(rec.address))
      local left = assert(json.decode(assert(http.request { url = fake.url .. "/_admin/leftovers" }).body))
      assert.are.same({}, left.instances)
    end)

  it("leaves no host, process or directory behind", function()
    local records = {}
    for _, host in ipairs(hosts) do
      records[#records + 1] = { pid = host.server.pid, root = host.server.root, address = host.address }
      host.stop()
    end
    server.stop_all()
    assert(instance.terminate_all(state_dir))
    -- (no port checks here: other suites may use these addresses by now;
    -- each test checked its own host's port right after stopping it)
    for _, rec in ipairs(records) do
      assert.is_false(proc.alive(rec.pid))
      assert.is_false(fs.exists(rec.root))
    end
    assert.is_false(fs.exists(state_dir))
    local holders = {}
    for _, p in ipairs(fs.list("/proc")) do
      local cmd = p:match("^%d+$") and fs.read_file("/proc/" .. p .. "/cmdline")
      if cmd and cmd:find("tests/servers/instance/hold.lua\0" .. state_dir, 1, true) then holders[#holders + 1] = p end
    end
    assert.are.same({}, holders)
  end)
end)

-- A "cloud" whose instances are juju.testing.instance hosts (fresh Debian 12
-- image, the phase-1 user-data applied): the whole path of a cloud
-- bootstrap runs on it, SSH finalizer with the pinned host key, nonce,
-- phase 2 as ubuntu through sudo, jujud bootstrap-state, the machine agent,
-- `juju status`, destroy-environment.
local INSTCLOUD = [[
local storage = require("juju.storage")
local common = require("juju.provider_common")
local fs = require("juju.fs")
local instance = require("juju.testing.instance")
local sshinit = require("juju.sshinit")
local state_dump = require("juju.agent.state_dump")
local REG = require("instcloud.registry")
local P = { name = "instcloud", api_version = 2, public_tools = false, default_state_store = "sqlite",
  config = { fields = { ["world-dir"] = { type = "string", required = true } } } }
function P.prepare_for_bootstrap(_, cfg) return cfg end
function P.open(ctx, cfg) return { ctx = ctx, cfg = cfg, dir = cfg["world-dir"] } end
function P.storage(env) return storage.open_dir(env.dir .. "/storage") end
function P.state_server_instances(env) return common.state_server_instances(P.storage(env)) end
function P.start_instance(env, params)
  assert(fs.mkdir_p(env.dir, "0700"))
  REG.userdata = params.userdata
  local host, err = instance.launch { user_data = params.userdata, address_index = REG.index, name = "inst-0" }
  if not host then return nil, err end
  REG.host = host
  return { id = "inst-0", addresses = { common.address(host.address, "public") }, ssh_port = host.port,
    hardware = { arch = params.tools[1].arch } }
end
-- machine 0's documents over SSH as ubuntu, the host key pinned: the one
-- machine 0 made at the end of bootstrap (issue 14.14), else the generated one
function P.state_dump(env)
  if not REG.host then return nil, "no instance" end
  local pin = env.cfg["bootstrap-host-key"]
  if type(pin) ~= "string" or pin == "" then pin = REG.host.host_key_pub end
  local target = sshinit.target(env.ctx, env.cfg, { host = REG.host.address, host_key = pin })
  local session, err, code = sshinit.connect(target)
  if not session then return nil, err, code end
  local doc, derr = sshinit.state_dump_session(session)
  session:close()
  return doc, derr
end
function P.wait_agent(env)
  return env.ctx:wait("for the machine agent's first heartbeat", 60, function()
    local doc, err = P.state_dump(env)
    if not doc then return nil, err end
    local st = state_dump.machine_status(doc, "0")
    if st and st.agent_state == "started" then return true end
    return nil, "machine 0's agent is " .. (st and st.agent_state or "unknown")
  end)
end
local function stop()
  if REG.host then REG.host.stop() end
  REG.host = nil
  return true
end
function P.release() return stop() end
function P.destroy(env)
  stop()
  return fs.remove_tree(env.dir)
end
return P
]]

describe("a cloud bootstrap on a juju.testing.instance host #integration", function()
  local testing = require("juju.testing")
  local yaml = require("juju.yaml")
  local authkeys = require("juju.environs.authkeys")
  local REG, s
  before_each(function()
    REG = { index = BASE + 40 }
    package.loaded["instcloud.registry"] = REG
  end)
  after_each(function()
    if s then
      s:juju("destroy-environment", "-y", "--force", "c")
      s:close()
    end
    if REG.host then REG.host.stop() end
    s = nil
    package.loaded["instcloud.registry"] = nil
  end)

  it("bootstraps, `juju status` shows machine 0 started, destroy-environment stops the host", function()
    s = testing.new { files = { ["providers/instcloud.lua"] = INSTCLOUD }, real_clock = true,
      env = { JUJU_AGENT_HEARTBEAT = "1" } }
    assert(fs.write_atomic(s.home .. "/environments.yaml", yaml.encode({ default = "c", environments = { c = {
      type = "instcloud", ["world-dir"] = s.root .. "/world", ["state-store"] = "sqlite",
      ["enable-os-refresh-update"] = false, ["enable-os-upgrade"] = false, ["enable-package-install"] = false,
      ["bootstrap-timeout"] = 120, ["bootstrap-retry-delay"] = 1 } } })))
    assert(authkeys.ensure_client_key(s.home))
    local r = s:juju("bootstrap")
    assert.are.equal(0, r.code, r.stderr)
    assert.is_truthy(r.stderr:find("Bootstrap complete", 1, true) or r.stderr:find("Bootstrap agent installed", 1, true),
      r.stderr)
    assert.is_truthy(r.stderr:find("Attempting to connect to " .. REG.host.address .. ":22", 1, true), r.stderr)
    local host = REG.host
    r = s:juju("status", "-e", "c")
    assert.are.equal(0, r.code, r.stderr)
    local m = yaml.decode(r.stdout).machines["0"]
    assert.are.equal("started", m["agent-state"], r.stdout)
    assert.are.equal("bookworm", m.series)
    -- phase 2 ran on the host, its output after phase 1's in the one log
    local log = assert(host.output_log())
    assert.is_truthy(log:find("systemctl enable", 1, true))
    assert.is_truthy(log:find("state server (sqlite) ready", 1, true), log)
    r = s:juju("destroy-environment", "-y", "c")
    assert.are.equal(0, r.code, r.stderr)
    assert.is_nil(REG.host)
    assert.is_false(proc.alive(host.server.pid))
    assert.is_false(listening(host.address))
  end)
end)
