-- mongod_spec.lua (#integration): juju.mongod and the mongodb state store
-- against tests/integration/fake-mongod (mockupdb behind TLS, recording
-- every command), and against a real mongod when one is on PATH.
--
-- The bootstrap conversation (server, replica set, users, state documents)
-- must match tests/integration/mongo_golden.txt command for command.
local mongod = require("juju.mongod")
local proc = require("juju.proc")
local fs = require("juju.fs")
local sys = require("juju.sys")
local crypto = require("juju.crypto")
local json = require("juju.json")
local yaml = require("juju.yaml")
local state = require("juju.state")
local initialize = require("juju.state.initialize")
local helpers = require("helpers")
local contract = require("spec.state_contract")

local SOURCE = assert(fs.realpath(helpers.source_dir))
local FAKE = SOURCE .. "/tests/integration/fake-mongod"
local GOLDEN = SOURCE .. "/tests/integration/mongo_golden.txt"
local FAST = { connect_timeout_ms = 1000, selection_timeout_ms = 1000, socket_timeout_ms = 3000 }
local ADMIN_HASH = "d2VsbC1rbm93bi1oYXNo+/="
local MACHINE_PASSWORD = "machine-0-password-24chrs"
local UUID = "deadbeef-0bad-400d-8000-4b1d0d06f00d"
local HANDSHAKE = {
  ismaster = true, hello = true, saslstart = true, saslcontinue = true, ping = true,
  endsessions = true, buildinfo = true,
}
local OCTAL = function(s) return tonumber(s, 8) end

-- A free TCP port on 127.0.0.1 (asked of the kernel; tiny race accepted).
local function free_port()
  local r = assert(sys.run({ "/usr/bin/python3", "-c",
    "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])" }))
  return assert(math.tointeger(tonumber(r.stdout)))
end

-- Real time plus whatever the code under test "slept": waits cost nothing,
-- while time really spent (timeouts of a hanging server) still counts.
local function virtual_clock()
  local offset = 0
  return {
    monotonic = function() return sys.monotonic() + offset end,
    sleep = function(s)
      offset = offset + s
      return true
    end,
    slept = function() return offset end,
  }
end

local pki = {}
local function certificates()
  if not pki.cert then
    pki.ca_cert, pki.ca_key = assert(crypto.new_ca("golden"))
    pki.cert, pki.key = assert(crypto.new_server_cert(pki.ca_cert, pki.ca_key, { hostnames = { "localhost", "juju-mongodb" } }))
  end
  return pki
end

-- ensure_server/setup options for a fresh fake server under dir.
local function server_opts(dir, env, overrides)
  local p = certificates()
  local clock = virtual_clock()
  local e = {
    PATH = os.getenv("PATH"), MOCKUPDB_RECORD = dir .. "/record.jsonl",
    FAKE_MONGOD_ARGV_LOG = dir .. "/argv.log", FAKE_MONGOD_VERSION = "4.4.6",
  }
  for k, v in pairs(env or {}) do e[k] = v end
  local o = {
    data_dir = dir .. "/data", root = dir .. "/root", mongod = FAKE, port = free_port(),
    cert = p.cert, key = p.key, ca_cert = p.ca_cert, shared_secret = string.rep("c2hhcmVk", 128),
    oplog_size = 10, systemd = false, env = e, timeouts = FAST, timeout = 20,
    monotonic = clock.monotonic, sleep = clock.sleep, peer_host = "10.0.0.1",
    admin_password_hash = ADMIN_HASH, machine_password = MACHINE_PASSWORD, primary_timeout = 5,
  }
  for k, v in pairs(overrides or {}) do o[k] = v end
  return o, clock
end

local function stop_server(o)
  if o then proc.stop(o.data_dir .. "/juju-db.pid", { timeout = 5 }) end
end

local function mode(path)
  return fs.stat(path).mode & OCTAL("7777")
end

-- Invocations logged by fake-mongod: a list of argv lists.
local function invocations(o)
  local path = o.env.FAKE_MONGOD_ARGV_LOG
  local out, cur = {}, {}
  if not fs.exists(path) then return out end
  for line in io.lines(path) do
    if line == "" then
      out[#out + 1] = cur
      cur = {}
    else
      cur[#cur + 1] = line
    end
  end
  return out
end

-- The recorded requests; the conversation is their summaries without the
-- handshake and authentication traffic.
local function records(o)
  local out = {}
  for line in io.lines(o.env.MOCKUPDB_RECORD) do out[#out + 1] = assert(json.decode(line)) end
  return out
end

local function conversation(recs)
  local lines = {}
  for _, r in ipairs(recs) do
    if not HANDSHAKE[r.cmd:lower()] then lines[#lines + 1] = r.summary end
  end
  return lines
end

local function golden(port)
  local lines = {}
  for line in io.lines(GOLDEN) do
    if line ~= "" and not line:match("^#") then
      lines[#lines + 1] = (line:gsub("%${PORT}", tostring(port)):gsub("%${UUID}", UUID))
    end
  end
  return lines
end

-- true, or nil and where the two command lists first differ.
local function compare(got, want)
  for i = 1, math.max(#got, #want) do
    if got[i] ~= want[i] then
      return nil, string.format("command %d: expected %s, got %s", i,
        want[i] and string.format("%q", want[i]) or "nothing more",
        got[i] and string.format("%q", got[i]) or "nothing more")
    end
  end
  return true
end

local function bootstrap_params(o)
  local p = certificates()
  return {
    env_uuid = UUID, env_name = "golden", admin_password_hash = ADMIN_HASH,
    config = { name = "golden", type = "dummy", ["authorized-keys"] = "ssh-ed25519 AAAAC3 test" },
    machine = {
      series = "trusty", instance_id = "i-golden", jobs = { "JobManageEnviron", "JobHostUnits" },
      addresses = { { value = "10.0.0.1", type = "ipv4", scope = "local-cloud" } },
      hardware = { arch = "amd64", mem = 2048 },
    },
    serving_info = { cert = p.cert, private_key = p.key, shared_secret = o.shared_secret, system_identity = "identity" },
    api_port = 17070, state_port = o.port, now = 1446000000,
    tools = { { version = "1.25.11-trusty-amd64", size = 1234, sha256 = string.rep("a", 64) } },
  }
end

local function open_store(o, database)
  return state.open("mongodb", {
    uri = mongod.uri("127.0.0.1", o.port, FAST), tls = mongod.client_tls(o.data_dir),
    username = "admin", password = ADMIN_HASH, database = database,
  })
end

describe("juju.mongod #integration", function()
  local dir

  setup(function() dir = helpers.tmpdir("juju-mongod-") end)
  teardown(function() helpers.cleanup() end)
  after_each(function()
    collectgarbage()
    collectgarbage()
  end)

  describe("mongod command line", function()
    it("reads the version from mongod --version", function()
      assert.are.same({ major = 2, minor = 4, patch = 9 }, mongod.parse_version("db version v2.4.9\n"))
      assert.is_nil(mongod.parse_version("MongoDB shell version v4.4.6"))
      local saved = os.getenv("FAKE_MONGOD_VERSION")
      assert(sys.setenv("FAKE_MONGOD_VERSION", "3.6.8"))
      local v = mongod.version(FAKE)
      assert(sys.setenv("FAKE_MONGOD_VERSION", saved))
      assert.are.same({ major = 3, minor = 6, patch = 8 }, v)
      local none, msg = mongod.version("/nonexistent/mongod")
      assert.is_nil(none)
      assert.is_string(msg)
    end)

    it("is Juju's exact command line for mongod 2.4 (mongo.md section 3)", function()
      local argv = mongod.args({
        mongod = "/mgo/bin/mongod", version = { major = 2, minor = 4, patch = 9 }, data_dir = "/var/lib/juju",
        port = 12345, oplog_size = 10,
      })
      assert.are.equal("/mgo/bin/mongod --auth --dbpath /var/lib/juju/db --sslOnNormalPorts --sslPEMKeyFile "
        .. "/var/lib/juju/server.pem --sslPEMKeyPassword ignored --port 12345 --noprealloc --syslog --smallfiles "
        .. "--journal --keyFile /var/lib/juju/shared-secret --replSet juju --ipv6 --oplogSize 10",
        table.concat(argv, " "))
    end)

    it("follows the flags each mongod version accepts", function()
      local function line(major, minor, extra)
        local o = { mongod = "m", version = { major = major, minor = minor, patch = 0 }, data_dir = "/d",
          port = 37017, oplog_size = 512 }
        for k, v in pairs(extra or {}) do o[k] = v end
        return table.concat(mongod.args(o), " ")
      end
      assert.are.equal("m --auth --dbpath /d/db --sslMode requireSSL --sslPEMKeyFile /d/server.pem "
        .. "--sslPEMKeyPassword ignored --port 37017 --noprealloc --syslog --smallfiles --journal --keyFile "
        .. "/d/shared-secret --replSet juju --ipv6 --oplogSize 512", line(2, 6))
      assert.are.equal("m --auth --dbpath /d/db --sslMode requireSSL --sslPEMKeyFile /d/server.pem "
        .. "--sslPEMKeyPassword ignored --port 37017 --noprealloc --syslog --smallfiles --journal --keyFile "
        .. "/d/shared-secret --replSet juju --ipv6 --bind_ip_all --oplogSize 512", line(3, 6))
      assert.are.equal("m --auth --dbpath /d/db --tlsMode requireTLS --tlsCertificateKeyFile /d/server.pem "
        .. "--port 37017 --syslog --journal --keyFile /d/shared-secret --replSet juju --ipv6 --bind_ip_all "
        .. "--oplogSize 512", line(4, 2))
      assert.are.equal("m --auth --dbpath /d/db --tlsMode requireTLS --tlsCertificateKeyFile /d/server.pem "
        .. "--port 37017 --keyFile /d/shared-secret --replSet juju --ipv6 --bind_ip 127.0.0.1,10.0.0.1 "
        .. "--oplogSize 512", line(7, 0, { syslog = false, bind_ip = { "127.0.0.1", "10.0.0.1" } }))
      assert.is_true(mongod.needs_prealloc({ major = 3, minor = 0 }))
      assert.is_false(mongod.needs_prealloc({ major = 3, minor = 2 }))
    end)

    it("sizes the oplog as Juju does", function()
      assert.are.equal(1, mongod.oplog_size({ agent_env = { MONGO_OPLOG_SIZE = "1" } }))
      local n, msg, code = mongod.oplog_size({ agent_env = { MONGO_OPLOG_SIZE = "lots" } })
      assert.is_nil(n)
      assert.are.equal('invalid oplog size: "lots"', msg)
      assert.are.equal("EINVAL", code)
      assert.are.equal(48, mongod.oplog_size({ arch = "i386", free_kib = 1e9 }))
      assert.are.equal(512, mongod.oplog_size({ arch = "amd64", free_kib = 1024 * 1024 }))     -- 5% of 1 GiB
      assert.are.equal(800, mongod.oplog_size({ arch = "amd64", free_kib = 16000 * 1024 }))    -- 5% of 16000 MiB
      assert.are.equal(1024, mongod.oplog_size({ arch = "amd64", free_kib = 1024 * 1024 * 1024 }))
      local measured = assert(mongod.oplog_size({ arch = "amd64", db_dir = dir }))
      assert.is_true(measured >= 512 and measured <= 1024)
    end)

    it("splits oplog preallocation like Juju (remainder first, 4 KiB aligned)", function()
      local MiB = 1024 * 1024
      assert.are.same({ 512 * MiB, 512 * MiB }, mongod.oplog_file_sizes(1024 * MiB))
      assert.are.same({ MiB, 512 * MiB, 512 * MiB }, mongod.oplog_file_sizes(1025 * MiB))
      assert.are.same({ 4096, 512 * MiB, 512 * MiB }, mongod.oplog_file_sizes(1024 * MiB + 1))
      assert.are.same({}, mongod.oplog_file_sizes(0))
    end)

    it("builds the replica-set member in Juju's field order", function()
      assert.are.equal("::1:37017", mongod.member_host("[::1]", 37017))
      assert.are.equal('{"_id":"juju","version":1,"members":[{"_id":1,"host":"10.0.0.1:37017",'
        .. '"tags":{"juju-machine-id":"0"}}]}', json.encode(mongod.replica_set_config("10.0.0.1", 37017)))
      assert.are.equal("mongodb://[::1]:37017/?directConnection=true&connectTimeoutMS=5000&"
        .. "serverSelectionTimeoutMS=10000&socketTimeoutMS=60000", mongod.uri("::1", 37017))
    end)

    it("writes a systemd unit that systemd-analyze accepts", function()
      local argv = mongod.args({ mongod = FAKE, version = { major = 4, minor = 4, patch = 6 },
        data_dir = "/var/lib/juju dir", port = 37017, oplog_size = 100 })
      argv[#argv + 1] = "100%$"
      local unit = mongod.systemd_unit(argv)
      assert.matches("\nExecStart=" .. FAKE .. " --auth --dbpath \"/var/lib/juju dir/db\" ", unit, 1, true)
      assert.matches(' 100%%$$\n', unit, 1, true)
      assert.matches("\nLimitNOFILE=65000\nLimitNPROC=20000\n", unit, 1, true)
      if not fs.exists("/usr/bin/systemd-analyze") then
        pending("systemd-analyze not installed: unit not verified")
      end
      local path = dir .. "/juju-db.service"
      helpers.write(path, unit)
      local r = assert(sys.run({ "systemd-analyze", "verify", path }))
      assert.are.equal(0, r.code, r.stderr)
      assert.is_nil(r.stderr:find("ignoring", 1, true), r.stderr)
    end)
  end)

  describe("ensure_server with fake-mongod", function()
    it("lays out the data directory, preallocates for MMAPv1 and is idempotent", function()
      local d = helpers.tmpdir("juju-mongod-24-")
      local o = server_opts(d, { FAKE_MONGOD_VERSION = "2.4.9" }, { oplog_size = 1 })
      helpers.write(o.root .. "/etc/default/other", "x")
      local ok, err = mongod.ensure_server(o)
      finally(function() stop_server(o) end)
      assert.is_true(ok, err)
      local data = o.data_dir
      assert.are.equal(OCTAL("700"), mode(data .. "/db"))
      assert.are.equal(OCTAL("600"), mode(data .. "/server.pem"))
      assert.are.equal(o.cert .. "\n" .. o.key, fs.read_file(data .. "/server.pem"))
      assert.are.equal(OCTAL("600"), mode(data .. "/shared-secret"))
      assert.are.equal(o.shared_secret, fs.read_file(data .. "/shared-secret"))
      assert.are.equal(OCTAL("644"), mode(o.root .. "/etc/default/mongodb"))
      assert.are.equal("ENABLE_MONGODB=no\n", fs.read_file(o.root .. "/etc/default/mongodb"))
      for i = 0, 2 do
        local st = fs.stat(string.format("%s/db/journal/prealloc.%d", data, i))
        assert.are.equal(1024 * 1024, st.size)
      end
      assert.are.equal(1024 * 1024, fs.stat(data .. "/db/local.0").size)
      assert.is_false(fs.exists(data .. "/db/local.1"))
      local runs = invocations(o)
      assert.are.equal(1, #runs)
      local want = mongod.args({ mongod = FAKE, version = { major = 2, minor = 4, patch = 9 }, data_dir = data,
        port = o.port, oplog_size = 1, syslog = false })
      table.remove(want, 1)
      assert.are.same(want, runs[1])
      local pid = assert(proc.read_pid(data .. "/juju-db.pid"))

      -- Same definition, still running: left alone.
      assert.is_true(mongod.ensure_server(o))
      assert.are.equal(1, #invocations(o))
      assert.are.equal(pid, proc.read_pid(data .. "/juju-db.pid"))

      -- A changed definition replaces the server.
      o.oplog_size = 2
      assert.is_true(mongod.ensure_server(o))
      assert.are.equal(2, #invocations(o))
      assert.is_false(proc.alive(pid))
      assert.are_not.equal(pid, proc.read_pid(data .. "/juju-db.pid"))
      assert.are.equal("2", invocations(o)[2][#invocations(o)[2]])
    end)

    it("preallocates nothing for WiredTiger versions and keeps an existing /etc/default/mongodb", function()
      local d = helpers.tmpdir("juju-mongod-44-")
      local o = server_opts(d)
      helpers.write(o.root .. "/etc/default/mongodb", "ENABLE_MONGODB=yes # the admin's choice\n", OCTAL("644"))
      local ok, err = mongod.ensure_server(o)
      finally(function() stop_server(o) end)
      assert.is_true(ok, err)
      assert.is_false(fs.exists(o.data_dir .. "/db/journal"))
      assert.are.equal("ENABLE_MONGODB=yes # the admin's choice\n", fs.read_file(o.root .. "/etc/default/mongodb"))
      assert.are.same(mongod.args({ mongod = FAKE, version = { major = 4, minor = 4, patch = 6 }, data_dir = o.data_dir,
        port = o.port, oplog_size = 10, syslog = false }), { FAKE, table.unpack(invocations(o)[1]) })
    end)

    it("installs and starts a systemd unit through systemctl", function()
      local d = helpers.tmpdir("juju-mongod-sd-")
      local calls, pid_file, running = {}, d .. "/systemd-juju-db.pid", false
      local o
      o = server_opts(d, nil, {
        systemd = true,
        run = function(argv)
          calls[#calls + 1] = table.concat(argv, " ", 2)
          if argv[2] == "is-active" then return running or nil, "inactive", "PROC" end
          if argv[2] == "start" then
            -- Play systemd: run the unit's ExecStart.
            local unit = fs.read_file(o.root .. "/etc/systemd/system/juju-db.service")
            local words = {}
            for w in unit:match("\nExecStart=([^\n]*)"):gmatch("%S+") do words[#words + 1] = w end
            assert(proc.start_daemon(words, { env = o.env, pid_file = pid_file, log_file = d .. "/sd.log" }))
            running = true
          end
          return true
        end,
      })
      local ok, err = mongod.ensure_server(o)
      finally(function() proc.stop(pid_file, { timeout = 5 }) end)
      assert.is_true(ok, err)
      assert.are.same({ "is-active --quiet juju-db", "daemon-reload", "enable juju-db", "start juju-db" }, calls)
      local unit = fs.read_file(o.root .. "/etc/systemd/system/juju-db.service")
      assert.matches(" --syslog ", unit, 1, true)
      assert.are.equal(OCTAL("644"), mode(o.root .. "/etc/systemd/system/juju-db.service"))
      calls = {}
      assert.is_true(mongod.ensure_server(o))
      assert.are.same({ "is-active --quiet juju-db" }, calls)
    end)

    it("gives up on a server that never answers within the deadline", function()
      local d = helpers.tmpdir("juju-mongod-hang-")
      local o, clock = server_opts(d, { MOCKUPDB_FAIL = "hang" }, { timeout = 3 })
      local t0 = sys.monotonic()
      local ok, msg, code = mongod.ensure_server(o)
      stop_server(o)
      assert.is_nil(ok)
      assert.are.equal("TIMEOUT", code)
      assert.matches("juju-db did not answer on 127.0.0.1:" .. o.port .. " within 3s", msg, 1, true)
      assert.is_true(sys.monotonic() - t0 < 15)
      assert.is_true(clock.slept() > 0)
    end)

    it("fails fast when mongod exits", function()
      local d = helpers.tmpdir("juju-mongod-exit-")
      local o = server_opts(d, nil, { mongod = "/bin/false", version = { major = 4, minor = 4, patch = 6 }, timeout = 60 })
      local t0 = sys.monotonic()
      local ok, msg, code = mongod.ensure_server(o)
      assert.is_nil(ok)
      assert.are.equal("PROC", code)
      assert.matches("juju-db exited before answering", msg, 1, true)
      assert.is_true(sys.monotonic() - t0 < 10)
    end)
  end)

  describe("the bootstrap conversation", function()
    local o, recorded, result

    setup(function()
      o = server_opts(helpers.tmpdir("juju-mongod-golden-"))
      assert(mongod.setup(o))
      local store = assert(open_store(o))
      result = assert(initialize.initialize(store, bootstrap_params(o)))
      store:close()
      recorded = records(o)
    end)
    teardown(function() stop_server(o) end)

    it("matches mongo_golden.txt command for command", function()
      assert.are.equal(0, result.existing)
      assert.is_true(compare(conversation(recorded), golden(o.port)))
    end)

    it("fails the comparison when one insert is missing", function()
      local lines = conversation(recorded)
      local dropped
      for i, l in ipairs(lines) do
        if l:find("insert machines", 1, true) then
          dropped = table.remove(lines, i)
          break
        end
      end
      assert.is_string(dropped)
      local ok, msg = compare(lines, golden(o.port))
      assert.is_nil(ok)
      assert.matches(dropped, msg, 1, true)
    end)

    it("creates the admin user first and runs everything after it authenticated (W10)", function()
      local admin_at
      for i, r in ipairs(recorded) do
        if r.summary:find("createUser admin ", 1, true) then
          admin_at = i
          break
        end
      end
      assert.is_number(admin_at)
      local first_conn = recorded[admin_at].conn
      for i, r in ipairs(recorded) do
        if not HANDSHAKE[r.cmd:lower()] then
          if i <= admin_at then
            assert.are.equal(first_conn, r.conn, r.summary)
            assert.are.equal(json.null, r.auth, r.summary)
          else
            assert.are_not.equal(first_conn, r.conn, r.summary)
            assert.are.equal("admin", r.auth, r.summary)
          end
        end
      end
    end)

    it("stores the documents of section 2.15 with their content", function()
      local store <close> = assert(open_store(o))
      local machine = assert(store:get("machines", UUID .. ":0"))
      assert.are.equal("user-admin:bootstrap", machine.nonce)
      assert.are.same({ 2, 1 }, machine.jobs)
      assert.is_true(yaml.is_array(machine.jobs))
      assert.are.equal("admin", assert(store:get("users", "admin")).name)
      assert.are.equal(ADMIN_HASH, store:get("users", "admin").passwordhash)
      assert.are.equal(4, store:count("stateServers")) -- e, apiHostPorts, stateServingInfo, hostedEnvironCount
      assert.are.same({ "0" }, store:get("stateServers", "e").machineids)
    end)

    it("runs again without harm (W15): users updated, documents left alone", function()
      local before = #records(o)
      assert(mongod.setup(o))
      local store <close> = assert(open_store(o))
      local again = assert(initialize.initialize(store, bootstrap_params(o)))
      assert.are.equal(0, again.inserted)
      assert.are.equal(result.inserted, again.existing)
      local after = conversation({ table.unpack(records(o), before + 1) })
      local updates, inserts = {}, 0
      for _, l in ipairs(after) do
        assert.is_nil(l:find("replSetInitiate", 1, true))
        if l:find("updateUser", 1, true) then updates[#updates + 1] = l:match("updateUser (%S+)") end
        if l:find(" insert ", 1, true) then inserts = inserts + 1 end
      end
      -- The unauthenticated probe is refused (users exist), so it goes on as admin.
      assert.are.same({ "admin replSetGetStatus", "admin replSetGetStatus" }, { after[1], after[2] })
      assert.are.same({ "admin", "machine-0" }, updates)
      assert.are.equal(result.inserted, inserts) -- each refused as a duplicate
    end)

    describe("as the state store", function()
      contract.run(describe, it, assert, function(name)
        return assert(open_store(o, name))
      end)
    end)
  end)

  describe("failures", function()
    it("reports refused authentication clearly", function()
      local o = server_opts(helpers.tmpdir("juju-mongod-auth-"), { MOCKUPDB_FAIL = "auth" })
      local ok, msg, code = mongod.setup(o)
      local store, smsg, scode = open_store(o)
      stop_server(o)
      assert.is_nil(ok)
      assert.are.equal("MONGO", code)
      assert.matches('cannot create mongo user "machine%-0": .*authentication failed', msg)
      assert.is_nil(store)
      assert.are.equal("MONGO", scode)
      assert.matches("authentication failed", smsg, 1, true)
    end)

    it("reports a replica set that never gets a primary", function()
      local o, clock = server_opts(helpers.tmpdir("juju-mongod-noprimary-"), { MOCKUPDB_FAIL = "no_primary" })
      local t0 = sys.monotonic()
      local ok, msg, code = mongod.setup(o)
      stop_server(o)
      assert.is_nil(ok)
      assert.are.equal("TIMEOUT", code)
      assert.matches("no primary after 5s (last state: SECONDARY)", msg, 1, true)
      assert.is_true(clock.slept() >= 5)
      assert.is_true(sys.monotonic() - t0 < 10)
    end)

    it("bounds a server that stops answering after the handshake", function()
      local o = server_opts(helpers.tmpdir("juju-mongod-mute-"), { MOCKUPDB_FAIL = "hang_commands" })
      local t0 = sys.monotonic()
      local ok, msg, code = mongod.setup(o)
      stop_server(o)
      assert.is_nil(ok)
      assert.are.equal("TIMEOUT", code)
      assert.matches("cannot initiate replica set", msg, 1, true)
      assert.is_true(sys.monotonic() - t0 < 15)
    end)
  end)

  describe("agent glue", function()
    it("picks the cloud-local address as the replica-set peer", function()
      assert.are.equal("10.0.0.5", mongod.select_peer_address({ "127.0.0.1", "8.8.8.8", "10.0.0.5" }))
      assert.are.equal("8.8.8.8", mongod.select_peer_address({ "127.0.0.1", "8.8.8.8" }))
      assert.is_nil(mongod.select_peer_address({ "127.0.0.1", "::1" }))
    end)

    it("sets juju-db up from agent.conf and opens the stores of bootstrap-state and the agent", function()
      local d = helpers.tmpdir("juju-mongod-agent-")
      local o = server_opts(d)
      local p = certificates()
      local conf = {
        tag = "machine-0", stateport = o.port, stateservercert = p.cert, stateserverkey = p.key,
        cacert = p.ca_cert, sharedsecret = o.shared_secret, oldpassword = ADMIN_HASH, statepassword = MACHINE_PASSWORD,
      }
      local store, err = mongod.bootstrap_store(nil, {
        data_dir = o.data_dir, conf = conf, addresses = { "127.0.0.1", "10.0.0.9" }, mongod = FAKE,
        env = o.env, root = o.root, systemd = false, oplog_size = 10, timeouts = FAST, timeout = 20,
        monotonic = o.monotonic, sleep = o.sleep,
      })
      finally(function() stop_server(o) end)
      assert.is_not_nil(store, err)
      assert.is_true(store:insert("machines", { _id = "x:0" }))
      store:close()
      local agent = assert(mongod.agent_store(o.data_dir, conf))
      assert.are.same({ _id = "x:0" }, agent:get("machines", "x:0"))
      agent:close()
      local lines, auth_of_get = conversation(records(o)), nil
      for _, r in ipairs(records(o)) do
        if r.cmd == "find" then auth_of_get = r.auth end
      end
      assert.are.equal("admin replSetInitiate {\"_id\":\"juju\",\"version\":1,\"members\":[{\"_id\":1,"
        .. "\"host\":\"10.0.0.9:" .. o.port .. "\",\"tags\":{\"juju-machine-id\":\"0\"}}]}", lines[2])
      assert.are.equal("machine-0", auth_of_get)
      local missing = mongod.bootstrap_store(nil, { data_dir = o.data_dir, conf = { tag = "machine-0" } })
      assert.is_nil(missing)
    end)
  end)

  describe("a real mongod", function()
    it("runs the same set-up and state initialisation", function()
      local real
      for d in (os.getenv("PATH") or ""):gmatch("[^:]+") do
        if fs.exists(d .. "/mongod") then
          real = d .. "/mongod"
          break
        end
      end
      if not real then pending("real mongod not found on PATH: skipped") end
      local d = helpers.tmpdir("juju-mongod-real-")
      local o = server_opts(d, nil, { mongod = real, timeout = 120, primary_timeout = 60,
        timeouts = { connect_timeout_ms = 5000, selection_timeout_ms = 10000, socket_timeout_ms = 60000 },
        peer_host = "127.0.0.1", bind_ip = "127.0.0.1", monotonic = sys.monotonic, sleep = sys.sleep })
      o.env = nil
      local ok, err = mongod.setup(o)
      finally(function() stop_server(o) end)
      assert.is_true(ok, err)
      local store <close> = assert(open_store(o))
      local r = assert(initialize.initialize(store, bootstrap_params(o)))
      assert.are.equal(0, r.existing)
      assert.are.equal("user-admin:bootstrap", assert(store:get("machines", UUID .. ":0")).nonce)
    end)
  end)
end)
