-- manual_spec.lua (#integration): the manual provider against real sshd
-- hosts (juju.testing.sshd: a private mount namespace per host, so useradd,
-- sudoers and /var/lib/juju stay inside it). Bootstraps end to end with
-- the sqlite store and, once, with the mongodb store on the fake mongod;
-- `juju status` over SSH; destroy leaves the host as it was; every failure
-- names its step, cleans up and leaves neither a .jenv nor anything on the
-- host.
local testing = require("juju.testing")
local sshd = require("juju.testing.sshd")
local fs = require("juju.fs")
local sys = require("juju.sys")
local yaml = require("juju.yaml")
local crypto = require("juju.crypto")
local ssh = require("juju.ssh")
local authkeys = require("juju.environs.authkeys")
local sshstorage = require("juju.sshstorage")
local helpers = require("helpers")
local fake_mongod = require("fake_mongod")

local SOURCE = assert(fs.realpath(helpers.source_dir))
local available, why = sshd.available()

-- What "the host as it was" means: the private paths' trees and the
-- account databases.
local HOST_TREE = [[
find /var/lib/juju /var/log/juju /home /etc/sudoers.d \( -type f -printf '%p f %m %s\n' \) -o -printf '%p %y %m\n' | sort
echo ---
cat /etc/passwd /etc/group
]]

local function host_tree(server)
  local r = assert(server.run({ "sh", "-c", HOST_TREE }))
  assert.are.equal(0, r.code, r.stderr)
  return r.stdout
end

local function on_host(server, command)
  local r = assert(server.run({ "sh", "-c", command }))
  return r.code, r.stdout, r.stderr
end

local function free_port(host)
  local r = assert(sys.run({ "/usr/bin/python3", "-c",
    "import socket,sys; s=socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1])", host or "127.0.0.1" }))
  return assert(math.tointeger(tonumber(r.stdout)))
end

-- The environment of a harness host: root with the harness's user key,
-- the host key pinned, no package work, the sqlite store.
-- What the host's sshd saw so far (its log, LogLevel VERBOSE): logins and
-- commands run. A bootstrap's round trips are the difference.
local function round_trips(server)
  local log = fs.read_file(server.log) or ""
  local function count(pattern)
    local n = 0
    for _ in log:gmatch(pattern) do n = n + 1 end
    return n
  end
  return { connections = count("Accepted publickey for "), execs = count("Starting session: command "),
    sftp = count("Starting session: subsystem 'sftp'") }
end

-- Runs fn with every juju.ssh session's exec recorded (the command and
-- the start of its stdin): the in-process side of the sshd's count.
local function recording_execs(fn)
  local real, execs = ssh.connect, {}
  ssh.connect = function(o)
    local session, err, code = real(o)
    if not session then return session, err, code end
    return setmetatable({}, { __index = function(_, k)
      local f = session[k]
      if type(f) ~= "function" then return f end
      return function(_, ...)
        if k == "exec" then
          local cmd, opts = ...
          execs[#execs + 1] = cmd .. "\n" .. (type(opts) == "table" and type(opts.stdin) == "string" and opts.stdin or "")
        end
        return f(session, ...)
      end
    end })
  end
  local ok, res = pcall(fn)
  ssh.connect = real
  if not ok then error(res, 0) end
  return res, execs
end

local function manual_attrs(server, extra)
  local attrs = {
    type = "manual", ["bootstrap-host"] = server.host .. ":" .. server.port, ["bootstrap-user"] = "root",
    ["bootstrap-host-key"] = server.host_key_pub, ["state-store"] = "sqlite",
    ["enable-os-refresh-update"] = false, ["enable-os-upgrade"] = false, ["enable-package-install"] = false,
    ["bootstrap-timeout"] = 60, ["bootstrap-retry-delay"] = 1,
  }
  for k, v in pairs(extra or {}) do
    if v == yaml.null then attrs[k] = nil else attrs[k] = v end
  end
  return attrs
end

-- A scenario whose user has the harness's key as ~/.ssh/id_ed25519 and
-- whose client key (JUJU_HOME/ssh/juju_id_ed25519) the host accepts.
local function scenario(server, envs, opts)
  opts = opts or {}
  local s = testing.new {
    environments = envs, default = "man", real_clock = not opts.virtual_clock,
    env = { JUJU_AGENT_HEARTBEAT = "1" },
  }
  local home_ssh = s.root .. "/user/.ssh"
  if server and not opts.no_user_key then
    assert(fs.copy_file(server.user_key.private, home_ssh .. "/id_ed25519", "0600"))
    assert(fs.write_atomic(home_ssh .. "/id_ed25519.pub", server.user_key.public .. "\n", "0644"))
  end
  local _, pub = assert(authkeys.ensure_client_key(s.home))
  if server and not opts.no_client_key then assert(server.authorize(pub)) end
  return s
end

local function status(s, name)
  local r = s:juju("status", "-e", name or "man")
  assert.are.equal(0, r.code, r.stderr)
  return yaml.decode(r.stdout)
end

local function wait_for(fn, seconds)
  local deadline = sys.monotonic() + seconds
  while sys.monotonic() < deadline do
    if fn() then return true end
    sys.sleep(0.1)
  end
  return false
end

-- Command lines of the processes in the host's namespace (sshd excepted).
local function host_processes(server)
  local out = {}
  for _, pid in ipairs(server.pids()) do
    local cmd = fs.read_file("/proc/" .. pid .. "/cmdline")
    if cmd and pid ~= server.pid then
      cmd = cmd:gsub("%z", " ")
      if not cmd:match("^sshd") and not cmd:match("^/usr/sbin/sshd") then out[#out + 1] = cmd end
    end
  end
  return out
end

local function assert_no_jenv(s, name)
  assert.is_nil(s:jenv(name or "man"), "a .jenv was left behind")
end

local function pending_unless_available()
  if not available then
    pending("needs a harness sshd: " .. tostring(why))
    return true
  end
  return false
end

describe("manual provider #integration", function()
  local server, s

  after_each(function()
    if s then
      s:juju("destroy-environment", "-y", "--force", "man")
      s:close()
    end
    if server then server.stop() end
    s, server = nil, nil
    helpers.cleanup()
    collectgarbage()
  end)

  it("bootstraps a host end to end, shows it in status, refuses it twice, and destroy leaves it as it was", function()
    if pending_unless_available() then return end
    server = assert(sshd.start { address_index = 41 })
    local pristine = host_tree(server)
    s = scenario(server, {
      man = manual_attrs(server),
      other = manual_attrs(server),
    })
    local trips0 = round_trips(server)
    local r, execs = recording_execs(function() return s:juju("bootstrap") end)
    assert.are.equal(0, r.code, r.stderr)
    -- Issue 17.2: one connection for the whole bootstrap, one script per
    -- step (probe with detection and the storage listing, claim with the
    -- first storage write, claim with the ubuntu user, provider-state,
    -- phase 2 with the nonce check and the first heartbeat read) and one
    -- SFTP upload that makes its own directories. More is a regression of
    -- the batching. When the agent is slower than phase 2's wait for its
    -- presence, wait-agent polls on (1 s apart): those reads are counted
    -- apart, by the commands the client sent.
    local trips = round_trips(server)
    local polls = 0
    for _, cmd in ipairs(execs) do
      if cmd:match("^/bin/bash %-s\nexec [^\n]*jujud state%-dump") then polls = polls + 1 end
    end
    assert.are.equal(#execs, trips.execs - trips0.execs, "the sshd saw other commands than the client sent")
    assert.are.same({ connections = 1, execs = 5, sftp = 1 }, { connections = trips.connections - trips0.connections,
      execs = #execs - polls, sftp = trips.sftp - trips0.sftp })
    -- Juju's progress lines, with the script's own relayed from the host.
    for _, line in ipairs({
      "Bootstrapping environment \"man\"", "Starting new instance for initial state server",
      " - manual:" .. server.host, "Installing Juju agent on bootstrap instance",
      "Attempting to connect to " .. server.host .. ":" .. server.port,
      "Logging to /var/log/juju/cloud-init-output.log on remote host",
      "Bootstrapping Juju machine agent", "Starting Juju machine agent (jujud-machine-0)",
      "Bootstrap agent installed", "Bootstrap complete",
    }) do
      assert.is_truthy(r.stderr:find(line, 1, true), "missing progress line: " .. line .. "\n" .. r.stderr)
    end
    -- No package work was asked for, and none was done.
    assert.is_nil(r.stderr:find("Running apt-get", 1, true))
    assert.is_nil(r.stderr:find("Installing package", 1, true))

    -- juju status, over SSH (jujud state-dump).
    local doc = status(s)
    assert.are.equal("man", doc.environment)
    local m = doc.machines["0"]
    assert.are.equal("started", m["agent-state"])
    assert.are.equal("manual:" .. server.host, m["instance-id"])
    assert.are.equal(server.host, m["dns-name"])
    assert.are.equal(require("juju.version").host_series(sys), m.series)
    assert.matches("^arch=%w+ cpu%-cores=%d+ mem=%d+M$", m.hardware)

    -- The ubuntu user with passwordless sudo, the nonce, the record, storage.
    local code, out = on_host(server, "id ubuntu && stat -c '%a %U' /etc/sudoers.d/90-juju-ubuntu"
      .. " && cat /etc/sudoers.d/90-juju-ubuntu && cat /var/lib/juju/manual-provisioning.txt"
      .. " && ls /var/lib/juju/storage/tools/released/ && stat -c '%a' /var/lib/juju/agents/machine-0/agent.conf")
    assert.are.equal(0, code, out)
    assert.matches("440 root", out)
    assert.matches("ubuntu ALL=%(ALL%) NOPASSWD:ALL", out)
    assert.matches("env%-uuid=" .. s:jenv("man")["environ-uuid"]:gsub("%-", "%%-"), out)
    assert.matches("created%-user=yes", out)
    assert.matches("juju%-[%d.]+%-%w+%-%w+%.tgz", out)
    assert.matches("\n600\n$", out)
    -- Issue 14.13: the logs and the record are not world-readable.
    local _, modes = on_host(server, "stat -c '%n %a %U:%G' /var/log/juju/cloud-init-output.log"
      .. " /var/lib/juju/manual-provisioning.txt")
    assert.matches("/var/log/juju/cloud%-init%-output%.log 640 root:adm\n", modes)
    assert.matches("/var/lib/juju/manual%-provisioning%.txt 600 root:root\n", modes)
    -- Nothing was left in the login user's home and no script copy on disk.
    local _, listing = on_host(server, "ls -A /home/ubuntu; ls /var/lib/juju")
    assert.is_nil(listing:find("juju-tools-", 1, true), listing)
    assert.is_nil(listing:find("bootstrap-params", 1, true), listing)
    assert.is_nil(listing:find("bootstrap-script.pgid", 1, true), listing)

    -- The same environment again: already bootstrapped.
    r = s:juju("bootstrap")
    assert.are.equal(1, r.code)
    assert.matches("environment is already bootstrapped", r.stderr)
    -- Another environment on the same host: already provisioned, refused
    -- before anything is written; the first environment is unharmed.
    local before_other = host_tree(server)
    r = s:juju("--show-log", "bootstrap", "-e", "other")
    assert.are.equal(1, r.code)
    assert.matches("machine is already provisioned", r.stderr)
    assert.matches('step "check%-bootstrapped"', r.stderr)
    assert_no_jenv(s, "other")
    assert.are.equal(before_other, host_tree(server))
    assert.are.equal("started", status(s).machines["0"]["agent-state"])

    -- destroy-environment: the agent stopped, the host as it was, in one
    -- connection and one script (storage goes with the data directory).
    trips0 = round_trips(server)
    r = s:juju("destroy-environment", "-y", "man")
    assert.are.equal(0, r.code, r.stderr)
    trips = round_trips(server)
    assert.are.same({ connections = 1, execs = 1 },
      { connections = trips.connections - trips0.connections, execs = trips.execs - trips0.execs })
    assert_no_jenv(s)
    assert.are.equal(pristine, host_tree(server))
    assert.is_true(wait_for(function() return #host_processes(server) == 0 end, 10),
      table.concat(host_processes(server), "\n"))
    assert.is_false(fs.exists(s.home .. "/environments/man.known_hosts"))
  end)

  -- Issue 14.3: a failed bootstrap used to delete known_hosts, @revoked
  -- lines included, so a retry on first use accepted a changed key.
  it("keeps host-key records after a failed bootstrap; destroy drops only what it learned", function()
    if pending_unless_available() then return end
    server = assert(sshd.start { address_index = 52 })
    s = scenario(server, { man = manual_attrs(server, { ["bootstrap-host-key"] = yaml.null,
      ["ssh-trust-on-first-use"] = true }) })
    local kh = s.home .. "/environments/man.known_hosts"
    local _, revoked = crypto.ssh_keygen_ed25519("revoked")
    local _, other = crypto.ssh_keygen_ed25519("other")
    local users = string.format("@revoked * %s\n# my own notes\nother.example.com %s\n", revoked, other)
    assert(fs.mkdir_p(s.home .. "/environments", "0700"))
    assert(fs.write_atomic(kh, users, "0600"))
    -- A failing command in the script: the bootstrap fails after the key was learned.
    on_host(server, "touch /var/lib/juju/locks")
    local r = s:juju("bootstrap")
    assert.are.equal(1, r.code)
    assert.matches("the bootstrap script failed", r.stderr)
    local text = helpers.read(kh)
    assert.are.equal(users, text:sub(1, #users))
    local entries = {}
    for _, e in ipairs(assert(ssh.known_hosts_lookup(kh, server.host, server.port))) do
      if not e.marker then entries[#entries + 1] = e end
    end
    assert.are.equal(1, #entries)
    assert.are.equal(server.host_fingerprint, crypto.ssh_fingerprint(entries[1].key))
    -- The retry uses the key it learned; destroy leaves the user's lines only.
    on_host(server, "rm -f /var/lib/juju/locks")
    r = s:juju("bootstrap")
    assert.are.equal(0, r.code, r.stderr)
    r = s:juju("destroy-environment", "-y", "man")
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal(users, helpers.read(kh))
    assert.is_false(fs.exists(kh .. ".learned"))
  end)

  it("bootstraps with the mongodb store: fake mongod on the host, replSetInitiate and createUser recorded", function()
    if pending_unless_available() then return end
    server = assert(sshd.start { address_index = 42 })
    local pristine = host_tree(server)
    local record = helpers.tmpdir("juju-manual-mongo-") .. "/record.jsonl"
    -- mongod as the host sees it: /usr/lib/juju/bin/mongod (in the /usr overlay).
    local wrapper = table.concat({
      "#!/bin/sh",
      "export MOCKUPDB_RECORD=" .. record,
      "exec " .. SOURCE .. "/tests/integration/fake-mongod \"$@\"",
    }, "\n") .. "\n"
    local code, _, err = on_host(server, "mkdir -p /usr/lib/juju/bin && cat > /usr/lib/juju/bin/mongod << 'EOF'\n"
      .. wrapper .. "EOF\nchmod 755 /usr/lib/juju/bin/mongod")
    assert.are.equal(0, code, err)
    s = scenario(server, { man = manual_attrs(server, { ["state-store"] = "mongodb", ["state-port"] = free_port() }) })
    local r = s:juju("bootstrap")
    assert.are.equal(0, r.code, r.stderr)
    fake_mongod.assert_bootstrapped(record)
    assert.are.equal("started", status(s).machines["0"]["agent-state"])
    code = on_host(server, "test -f /etc/default/mongodb")
    assert.are.equal(0, code)
    r = s:juju("destroy-environment", "-y", "man")
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal(pristine, host_tree(server))
    assert.is_false((on_host(server, "test -e /etc/default/mongodb")) == 0)
    assert.is_true(wait_for(function() return #host_processes(server) == 0 end, 10),
      table.concat(host_processes(server), "\n"))
  end)

  it("logs in as a user with passwordless sudo (storage through sudo), or says it needs one", function()
    if pending_unless_available() then return end
    server = assert(sshd.start { address_index = 51 })
    assert(server.add_user("ops"))
    assert(server.add_user("plain"))
    local code, _, err = on_host(server, "printf 'ops ALL=(ALL) NOPASSWD:ALL\\n' > /etc/sudoers.d/ops"
      .. " && chmod 0440 /etc/sudoers.d/ops")
    assert.are.equal(0, code, err)
    local pristine = host_tree(server)
    s = scenario(server, {
      man = manual_attrs(server, { ["bootstrap-user"] = "ops" }),
      plain = manual_attrs(server, { ["bootstrap-user"] = "plain" }),
    })
    local r = s:juju("bootstrap", "-e", "plain")
    assert.are.equal(1, r.code)
    assert.matches("plain on " .. server.host:gsub("%.", "%%.") .. " has no passwordless sudo", r.stderr)
    assert_no_jenv(s, "plain")
    assert.are.equal(pristine, host_tree(server))
    r = s:juju("bootstrap")
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal("started", status(s).machines["0"]["agent-state"])
    -- The tools went through ops's home into root-owned storage.
    local out
    code, out = on_host(server, "stat -c '%U %a' /var/lib/juju/storage/tools/released/*.tgz; ls -A /home/ops")
    assert.are.equal(0, code)
    assert.matches("^root 600\n", out)
    assert.is_nil(out:find("juju-storage-upload", 1, true), out)
    r = s:juju("destroy-environment", "-y", "man")
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal(pristine, host_tree(server))
  end)

  it("installs sudo where it is missing, and removes it again on destroy", function()
    if pending_unless_available() then return end
    server = assert(sshd.start { address_index = 52 })
    -- No sudo on this host; an apt-get that "installs" and "purges" it offline.
    local fake_apt = "#!/bin/sh\necho \"apt-get $*\" >> /root/fake-apt.log\ncase \" $* \" in\n"
      .. "  *\" install \"*) mv /usr/bin/sudo.hidden /usr/bin/sudo ;;\n"
      .. "  *\" purge \"*) mv /usr/bin/sudo /usr/bin/sudo.hidden ;;\nesac\n"
    local code, _, err = on_host(server, "mv /usr/bin/sudo /usr/bin/sudo.hidden && mkdir -p /usr/local/sbin"
      .. " && cat > /usr/local/sbin/apt-get << 'EOF'\n" .. fake_apt .. "EOF\nchmod 755 /usr/local/sbin/apt-get")
    assert.are.equal(0, code, err)
    local pristine = host_tree(server)
    s = scenario(server, { man = manual_attrs(server) })
    local r = s:juju("bootstrap")
    assert.are.equal(0, r.code, r.stderr)
    local out
    code, out = on_host(server, "grep installed-sudo /var/lib/juju/manual-provisioning.txt && test -x /usr/bin/sudo")
    assert.are.equal(0, code, out)
    r = s:juju("destroy-environment", "-y", "man")
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal(pristine, host_tree(server))
    code, out = on_host(server, "test ! -e /usr/bin/sudo && cat /root/fake-apt.log")
    assert.are.equal(0, code, out)
    assert.matches("apt%-get install %-y %-q sudo\napt%-get purge %-y %-q sudo\n$", out)
  end)

  it("learns the host key on first use only when allowed, and refuses a changed one", function()
    if pending_unless_available() then return end
    server = assert(sshd.start { address_index = 43 })
    local pristine = host_tree(server)
    s = scenario(server, { man = manual_attrs(server, { ["bootstrap-host-key"] = yaml.null }) })
    -- Unknown key, no trust on first use: refused, nothing written anywhere.
    local r = s:juju("--show-log", "bootstrap")
    assert.are.equal(1, r.code)
    assert.matches("is not known", r.stderr)
    assert.is_truthy(r.stderr:find(server.host_fingerprint, 1, true), r.stderr)
    assert.matches('step "check%-bootstrapped"', r.stderr)
    assert_no_jenv(s)
    assert.are.equal(pristine, host_tree(server))

    -- Trust on first use: the key is recorded and used from then on.
    local yaml_text = yaml.encode({ default = "man", environments = {
      man = manual_attrs(server, { ["bootstrap-host-key"] = yaml.null, ["ssh-trust-on-first-use"] = true }) } })
    assert(fs.write_atomic(s.home .. "/environments.yaml", yaml_text))
    r = s:juju("bootstrap")
    assert.are.equal(0, r.code, r.stderr)
    local kh = s.home .. "/environments/man.known_hosts"
    local entries = assert(ssh.known_hosts_lookup(kh, server.host, server.port))
    assert.are.equal(1, #entries)
    assert.are.equal(server.host_fingerprint, crypto.ssh_fingerprint(entries[1].key))

    -- A changed key is always refused, showing both fingerprints.
    local _, other = crypto.ssh_keygen_ed25519("impostor")
    assert(fs.write_atomic(kh, string.format("[%s]:%d %s\n", server.host, server.port, other)))
    r = s:juju("status")
    assert.are.equal(1, r.code)
    assert.matches("HOST KEY CHANGED", r.stderr)
    assert.is_truthy(r.stderr:find(crypto.ssh_fingerprint(other), 1, true), r.stderr)
    assert.is_truthy(r.stderr:find(server.host_fingerprint, 1, true), r.stderr)
    -- Put the real key back and destroy.
    assert(fs.write_atomic(kh, string.format("[%s]:%d %s\n", server.host, server.port, server.host_key_pub)))
    r = s:juju("destroy-environment", "-y", "man")
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal(pristine, host_tree(server))
    assert.is_false(fs.exists(kh))
  end)

  describe("failures: named step, cleanup, no .jenv, the host as it was", function()
    it("a pinned host key that differs (both fingerprints shown)", function()
      if pending_unless_available() then return end
      server = assert(sshd.start { address_index = 44 })
      local pristine = host_tree(server)
      local _, wrong = crypto.ssh_keygen_ed25519("not-the-host")
      s = scenario(server, { man = manual_attrs(server, { ["bootstrap-host-key"] = wrong }) })
      local r = s:juju("--show-log", "bootstrap")
      assert.are.equal(1, r.code)
      assert.matches("HOST KEY MISMATCH", r.stderr)
      assert.is_truthy(r.stderr:find(crypto.ssh_fingerprint(wrong), 1, true), r.stderr)
      assert.is_truthy(r.stderr:find(server.host_fingerprint, 1, true), r.stderr)
      assert.matches('step "check%-bootstrapped"', r.stderr)
      assert.matches("Bootstrap failed, destroying environment", r.stderr)
      assert_no_jenv(s)
      assert.are.equal(pristine, host_tree(server))
    end)

    it("a refused user key", function()
      if pending_unless_available() then return end
      server = assert(sshd.start { address_index = 45 })
      local pristine = host_tree(server)
      s = scenario(server, { man = manual_attrs(server) }, { no_user_key = true, no_client_key = true })
      local t0 = sys.monotonic()
      local r = s:juju("--show-log", "bootstrap")
      assert.are.equal(1, r.code)
      assert.matches("root@" .. server.host:gsub("%.", "%%.") .. ":" .. server.port .. " refused every key offered",
        r.stderr)
      assert.matches('step "check%-bootstrapped"', r.stderr)
      assert.is_true(sys.monotonic() - t0 < 30, "a refused key must not be retried until the timeout")
      assert_no_jenv(s)
      assert.are.equal(pristine, host_tree(server))
    end)

    it("a host that is down (virtual clock)", function()
      local port = free_port("127.0.0.46")
      s = scenario(nil, { man = manual_attrs({ host = "127.0.0.46", port = port, host_key_pub = yaml.null },
        { ["bootstrap-timeout"] = 120, ["bootstrap-retry-delay"] = 5 }) }, { virtual_clock = true })
      local t0 = s.clock.monotonic()
      local r = s:juju("--show-log", "bootstrap")
      assert.are.equal(1, r.code)
      assert.matches("waited for 2m0s without being able to connect: .*127%.0%.0%.46:" .. port, r.stderr)
      assert.matches("Still waiting for SSH on 127%.0%.0%.46", r.stderr)
      assert.matches('step "check%-bootstrapped"', r.stderr)
      assert.is_true(s.clock.monotonic() - t0 >= 120)
      assert_no_jenv(s)
    end)

    it("SSH dropping while the script runs", function()
      if pending_unless_available() then return end
      server = assert(sshd.start { address_index = 47 })
      local pristine = host_tree(server)
      s = scenario(server, { man = manual_attrs(server) })
      -- The script pauses first (JUJU_SSHINIT_PAUSE); meanwhile the test
      -- kills the sshd processes serving it.
      local proc = assert(s:juju_process({ "--show-log", "bootstrap" }, { spawn = true, env = { JUJU_SSHINIT_PAUSE = "60" } }))
      local pgid
      assert.is_true(wait_for(function()
        local code, out = on_host(server, "cat /var/lib/juju/bootstrap-script.pgid 2> /dev/null")
        pgid = code == 0 and tonumber(out) or nil
        return pgid ~= nil
      end, 120), "the script never started")
      -- The script's session: its sshd parent and the privileged monitor above it.
      local function ppid(pid)
        local stat = fs.read_file("/proc/" .. pid .. "/stat") or ""
        return tonumber(stat:match("^%d+ %b() %S+ (%d+)"))
      end
      local session = ppid(pgid)
      local monitor = session and ppid(session)
      assert.is_number(session)
      assert.matches("sshd", fs.read_file("/proc/" .. session .. "/cmdline"))
      sys.kill(session, "KILL")
      if monitor and monitor ~= server.pid then sys.kill(monitor, "KILL") end
      local out, err = proc:read_all(120)
      local code = proc:wait(10)
      proc:close()
      assert.are.equal(1, code, tostring(out) .. tostring(err))
      -- Phase 2 runs over the bootstrap-user session (one connection).
      assert.matches("lost the SSH connection to root@" .. server.host:gsub("%.", "%%.") .. ":%d+", err)
      assert.matches('step "finalize"', err)
      assert.matches("Bootstrap failed, destroying environment", err)
      assert_no_jenv(s)
      assert.are.equal(pristine, host_tree(server))
      assert.is_true(wait_for(function() return #host_processes(server) == 0 end, 10),
        table.concat(host_processes(server), "\n"))
    end)

    it("a failing command in the script (its output tail shown)", function()
      if pending_unless_available() then return end
      server = assert(sshd.start { address_index = 48 })
      local pristine = host_tree(server)
      -- A file where the script makes a directory.
      on_host(server, "touch /var/lib/juju/locks")
      s = scenario(server, { man = manual_attrs(server) })
      local r = s:juju("--show-log", "bootstrap")
      assert.are.equal(1, r.code)
      assert.matches("the bootstrap script failed on root@" .. server.host:gsub("%.", "%%.") .. ":%d+ %(exit 1%)",
        r.stderr)
      assert.matches("last lines of its output:", r.stderr)
      assert.matches("/var/lib/juju/locks", r.stderr)
      assert.matches('step "finalize"', r.stderr)
      assert_no_jenv(s)
      assert.are.equal(pristine, host_tree(server))
    end)

    it("a tools checksum mismatch", function()
      if pending_unless_available() then return end
      server = assert(sshd.start { address_index = 49 })
      local pristine = host_tree(server)
      s = scenario(server, { man = manual_attrs(server) })
      -- After select-tools uploaded the tarball, before the script runs.
      s.faults["step:finalize"] = { kind = "call", when = "before", fn = function()
        local code, _, err = on_host(server, "for f in /var/lib/juju/storage/tools/*/*.tgz; do echo junk >> \"$f\"; done")
        assert(code == 0, err)
        return true
      end }
      local r = s:juju("--show-log", "bootstrap")
      assert.are.equal(1, r.code)
      assert.matches("Tools checksum mismatch", r.stderr)
      assert.matches('step "finalize"', r.stderr)
      assert_no_jenv(s)
      assert.are.equal(pristine, host_tree(server))
    end)
  end)

  it("keeps environ storage on the host (sshstorage over one session)", function()
    if pending_unless_available() then return end
    server = assert(sshd.start { address_index = 50 })
    local session = assert(ssh.connect(server.connect_opts()))
    local root = "/var/lib/juju/storage-test"
    local st = sshstorage.new { root = root, session = function() return session end }
    assert.is_true(st:put("a/b.txt", "hello\0world"))
    assert.are.equal("hello\0world", st:get("a/b.txt"))
    assert.is_true(st:exists("a/b.txt"))
    assert.is_false(st:exists("a"))
    local _, _, code = st:get("a")
    assert.are.equal("EISDIR", code)
    _, _, code = st:get("nope")
    assert.are.equal("ENOENT", code)
    _, _, code = st:put("../escape", "x")
    assert.are.equal("EINVAL", code)
    local dir = helpers.tmpdir("juju-sshstorage-")
    local big = dir .. "/big"
    assert(fs.write_atomic(big, string.rep("0123456789", 300000)))
    local size, sha = st:put_file("tools/big.tgz", big)
    assert.are.equal(3000000, size)
    assert.are.equal(crypto.sha256_file(big), sha)
    local c, out = on_host(server, "sha256sum " .. root .. "/tools/big.tgz; stat -c %a " .. root .. "/tools/big.tgz")
    assert.are.equal(0, c)
    assert.is_truthy(out:find(sha, 1, true))
    assert.matches("\n600\n", out)
    assert.are.same({ "a/b.txt", "tools/big.tgz" }, st:list())
    assert.are.same({ "tools/big.tgz" }, st:list("tools/"))
    assert.are.equal("file://" .. root .. "/a/b%20c", st:url("a/b c"))
    assert.is_true(st:remove("a/b.txt"))
    assert.is_true(st:remove("a/b.txt"))
    assert.is_false(st:exists("a/b.txt"))
    assert.is_true(st:remove_all())
    assert.are.same({}, st:list())
    session:close()
  end)
end)
