-- juju ensure-availability for real: the local provider with state-store:
-- dqlite grows from one state server to three machine agents on this host
-- (root-dir/machines/<n>), each running a Dqlite node over mutual TLS that
-- joined the cluster by itself. Then the leader's jujud is killed with
-- SIGKILL in the middle of a stream of writes: every acknowledged write is
-- still there (read back with the go-dqlite shell, an independent client),
-- the other agents' heartbeats go on, `juju status` answers; the killed
-- agent comes back (its restart loop) and catches up: with a third node
-- frozen, new writes need it. Destroy leaves no process, port or directory.
local testing = require("juju.testing")
local fs = require("juju.fs")
local sys = require("juju.sys")
local yaml = require("juju.yaml")
local json = require("juju.json")
local state = require("juju.state")
local agentconf = require("juju.agentconf")
local server = require("juju.testing.server")
local hadq = require("juju.ha.dqlite")

local SHELL = "/usr/bin/dqlite"

local function port_free(host, port)
  local r = assert(sys.run({ "/usr/bin/python3", "-c",
    "import socket,sys\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
      .. "try:\n s.bind((sys.argv[1],int(sys.argv[2])))\nexcept OSError:\n sys.exit(1)",
    host, tostring(port) }, { timeout = 10 }))
  return r.code == 0
end

-- A base port with base .. base+2 free (machine n listens on base + n).
local function free_ports()
  for _ = 1, 50 do
    local p = server.free_port("127.0.0.1")
    if p < 65000 and port_free("127.0.0.1", p + 1) and port_free("127.0.0.1", p + 2) then return p end
  end
  error("no three consecutive free ports on 127.0.0.1")
end

local function processes_under(dir)
  local out = {}
  for _, pid in ipairs(fs.list("/proc") or {}) do
    if pid:match("^%d+$") then
      local cmd = fs.read_file("/proc/" .. pid .. "/cmdline")
      if cmd and cmd:find(dir, 1, true) then out[#out + 1] = pid end
    end
  end
  return out
end

local function wait_for(what, timeout, fn)
  local deadline = sys.monotonic() + timeout
  local last
  repeat
    local ok, v = pcall(fn)
    if ok and v then return v end
    last = ok and "not yet" or v
    sys.sleep(0.2)
  until sys.monotonic() > deadline
  error(string.format("timed out after %ds waiting for %s: %s", timeout, what, tostring(last)))
end

describe("juju ensure-availability (local provider, state-store: dqlite)", function()
  local s
  after_each(function()
    if s then
      s:juju("destroy-environment", "-y", "--force", "loc")
      s:close()
    end
    s = nil
    collectgarbage()
  end)

  it("grows to three voters, survives kill -9 of the leader mid-writes, and the killed node catches up", function()
    assert(fs.exists(SHELL), SHELL .. " not found: run scripts/install-deps.sh (go-dqlite)")
    local port = free_ports()
    s = testing.new { environments = { loc = { type = "local", ["state-store"] = "dqlite", ["dqlite-port"] = port } },
      default = "loc", real_clock = true, env = { JUJU_AGENT_HEARTBEAT = "1" } }
    local r = s:juju("bootstrap")
    assert.are.equal(0, r.code, r.stderr)

    r = s:juju("ensure-availability", "-n", "3")
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal("maintaining machines: 0\nadding machines: 1, 2\n", r.stdout)

    local jenv = s:jenv("loc")
    local root = jenv["bootstrap-config"]["root-dir"]
    local addrs = {}
    for n = 0, 2 do addrs[n] = "127.0.0.1:" .. (port + n) end
    assert.are.same({ addrs[0], addrs[1], addrs[2] }, jenv["state-servers"])
    local function data_dir(n) return n == 0 and root or (root .. "/machines/" .. n) end
    for n = 1, 2 do
      local conf = assert(agentconf.parse(assert(fs.read_file(data_dir(n) .. "/agents/machine-" .. n .. "/agent.conf"))))
      assert.are.equal(tostring(n + 1), conf.values.DQLITE_NODE_ID)
      assert.are.equal(addrs[n], conf.values.DQLITE_ADDRESS)
      assert.matches(addrs[0], conf.values.DQLITE_SERVERS, 1, true)
    end

    -- Machine 0's agent learns the new servers from the cluster (its agent.conf).
    wait_for("machine 0's agent.conf to list the three servers", 30, function()
      local c = agentconf.parse(fs.read_file(root .. "/agents/machine-0/agent.conf"))
      local want = { addrs[0], addrs[1], addrs[2] }
      table.sort(want)
      return c and c.values.DQLITE_SERVERS == table.concat(want, ",")
    end)
    assert.are.equal(tonumber("600", 8), fs.stat(root .. "/agents/machine-0/agent.conf").mode & tonumber("777", 8))

    r = s:juju("status", "--format", "yaml")
    assert.are.equal(0, r.code, r.stderr)
    local doc = yaml.decode(r.stdout)
    for n = 0, 2 do
      local m = doc.machines[tostring(n)]
      assert.is_table(m, r.stdout)
      assert.are.equal("started", m["agent-state"], r.stdout)
      assert.are.equal("has-vote", m["state-server-member-status"], r.stdout)
    end

    -- The go-dqlite shell, with a certificate of the environment's CA.
    local conf0 = assert(agentconf.parse(assert(fs.read_file(root .. "/agents/machine-0/agent.conf"))))
    local pki = s.root .. "/shell-pki"
    assert(fs.mkdir_p(pki, tonumber("700", 8)))
    assert(fs.write_atomic(pki .. "/chain.pem", conf0.stateservercert .. conf0.cacert, tonumber("600", 8)))
    assert(fs.write_atomic(pki .. "/key.pem", conf0.stateserverkey, tonumber("600", 8)))
    local function shell(servers, sql)
      local sr = assert(sys.run({ SHELL, "-s", table.concat(servers, ","), "-c", pki .. "/chain.pem", "-k", pki .. "/key.pem",
        "-f", "json", "juju", sql }, { timeout = 60 }))
      assert.are.equal(0, sr.code, sr.stderr)
      return sr.stdout
    end
    local cluster = shell({ addrs[0] }, ".cluster")
    for n = 0, 2 do assert.matches(addrs[n], cluster, 1, true) end
    local _, voters = cluster:gsub('"Role":%s*0', "") -- go-dqlite's client.Voter
    assert.are.equal(3, voters, cluster)

    -- A stream of writes through the store (this client's own CA-signed
    -- certificate); the leader's agent is killed after the 40th.
    local spec = assert(hadq.state_spec(jenv["bootstrap-config"], jenv))
    local st = assert(state.open("dqlite", spec))
    local members = assert(st:members())
    local leader
    for _, m in ipairs(members) do if m.leader then leader = m end end
    assert.is_table(leader, "no leader among " .. json.encode(members))
    local killed = leader.id - 1
    local pid_file = data_dir(killed) .. "/agents/machine-" .. killed .. "/jujud.pid"
    local pid = math.tointeger(tonumber(assert(fs.read_file(pid_file)):match("%d+")))
    local acked, refused = {}, {}
    local t_kill
    for i = 1, 120 do
      local id = string.format("w%03d", i)
      local ok, werr = st:insert("hatest", { _id = id, n = i })
      if ok then acked[#acked + 1] = id else refused[#refused + 1] = id .. ": " .. tostring(werr) end
      if i == 40 then
        assert.is_true(sys.kill(pid, "KILL"))
        t_kill = sys.monotonic()
      end
    end
    assert.is_true(#acked >= 100, string.format("only %d of 120 writes were acknowledged; first refused: %s", #acked,
      tostring(refused[1])))
    -- juju status answers with the leader gone.
    r = s:juju("status", "--format", "yaml")
    assert.are.equal(0, r.code, r.stderr)
    local failover = sys.monotonic() - t_kill
    assert.is_true(failover < 60, "failover took " .. failover .. "s")
    -- Every acknowledged write, read by the independent client from the survivors.
    local survivors = {}
    for n = 0, 2 do if n ~= killed then survivors[#survivors + 1] = addrs[n] end end
    local rows = shell(survivors, "SELECT id FROM docs WHERE coll = 'hatest' ORDER BY id")
    local seen = {}
    for line in rows:gmatch("[^\n]+") do seen[line:match("^%s*(.-)%s*$")] = true end
    for _, id in ipairs(acked) do assert.is_true(seen[id], id .. " was acknowledged but is gone") end

    -- The other agents' heartbeats go on.
    local function beat_of(n)
      local b = st:get("presence", jenv["bootstrap-config"].uuid .. ":m#" .. n)
      return b and b.time
    end
    for n = 0, 2 do
      if n ~= killed then
        local before = beat_of(n)
        wait_for("machine " .. n .. "'s heartbeat after the kill", 30, function() return beat_of(n) ~= before end)
      end
    end

    -- The killed agent comes back (its restart loop) and catches up: with
    -- another follower frozen, a write needs the returned node's vote.
    wait_for("the killed agent to restart", 60, function()
      local text = fs.read_file(pid_file)
      local np = text and math.tointeger(tonumber(text:match("%d+")))
      return np and np ~= pid and sys.kill(np, 0)
    end)
    local before = beat_of(killed)
    wait_for("machine " .. killed .. "'s heartbeat after its restart", 60, function() return beat_of(killed) ~= before end)
    members = assert(st:members())
    local frozen
    for _, m in ipairs(members) do
      if not m.leader and m.id - 1 ~= killed then frozen = m.id - 1 end
    end
    assert.is_number(frozen)
    local fpid = math.tointeger(tonumber(assert(fs.read_file(data_dir(frozen) .. "/agents/machine-" .. frozen
      .. "/jujud.pid")):match("%d+")))
    assert.is_true(sys.kill(fpid, "STOP"))
    local ok, err = pcall(function()
      for i = 1, 10 do assert(st:insert("hatest", { _id = string.format("c%03d", i), n = i })) end
    end)
    sys.kill(fpid, "CONT")
    assert.is_true(ok, tostring(err))
    st:close()

    r = s:juju("destroy-environment", "-y", "loc")
    assert.are.equal(0, r.code, r.stderr)
    assert.is_false(fs.exists(root))
    assert.are.same({}, processes_under(root))
    for n = 0, 2 do assert.is_true(port_free("127.0.0.1", port + n), "port " .. (port + n) .. " still bound") end
  end)

  it("undoes a new state server at any failed or interrupted step, then still grows (fault matrix)", function()
    local port = free_ports()
    s = testing.new { environments = { loc = { type = "local", ["state-store"] = "dqlite", ["dqlite-port"] = port } },
      default = "loc", real_clock = true, env = { JUJU_AGENT_HEARTBEAT = "1" } }
    local r = s:juju("bootstrap")
    assert.are.equal(0, r.code, r.stderr)
    local jenv = s:jenv("loc")
    local root = jenv["bootstrap-config"]["root-dir"]
    local spec = assert(hadq.state_spec(jenv["bootstrap-config"], jenv))
    local function check_undone(label)
      local j = s:jenv("loc")
      assert.are.same({ "127.0.0.1:" .. port }, j["state-servers"], label)
      for _, res in ipairs(j["bootstrap-journal"].resources or {}) do
        assert.is_true(res.machine == nil or res.machine == "0", label .. ": journal keeps " .. json.encode(res))
      end
      for n = 1, 2 do
        assert.is_false(fs.exists(root .. "/machines/" .. n), label .. ": machine " .. n .. "'s directory is left")
        assert.is_true(port_free("127.0.0.1", port + n), label .. ": machine " .. n .. "'s node port is bound")
      end
      local st = assert(state.open("dqlite", spec))
      local members = assert(st:members())
      assert.are.equal(1, #members, label .. ": " .. json.encode(members))
      local machines = assert(st:find("machines"))
      st:close()
      assert.are.equal(1, #machines, label)
    end
    local cases = {}
    for _, id in ipairs(require("juju.availability").STEP_IDS) do
      cases[#cases + 1] = { id = id, apply = function() s:fail_step(id, "injected failure at " .. id) end,
        want = "injected failure at " .. id }
    end
    cases[#cases + 1] = { id = "finalize (SIGINT)", apply = function() s:interrupt_step("finalize", "INT") end,
      want = "interrupted" }
    for _, c in ipairs(cases) do
      s:clear_faults()
      c.apply()
      r = s:juju("ensure-availability", "-n", "3")
      assert.are.equal(1, r.code, c.id .. ": " .. r.stdout)
      assert.matches("cannot add state server machine 1", r.stderr, 1, true)
      assert.matches(c.want, r.stderr, 1, true)
      check_undone(c.id)
    end
    s:clear_faults()
    r = s:juju("ensure-availability")
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal("maintaining machines: 0\nadding machines: 1, 2\n", r.stdout)
  end)

  it("takes out a state server that cannot join, leaving no member, machine or process", function()
    local port = free_ports()
    s = testing.new { environments = { loc = { type = "local", ["state-store"] = "dqlite", ["dqlite-port"] = port,
      ["bootstrap-timeout"] = 20 } }, default = "loc", real_clock = true, env = { JUJU_AGENT_HEARTBEAT = "1" } }
    local r = s:juju("bootstrap")
    assert.are.equal(0, r.code, r.stderr)
    -- Machine 1's node address is taken by someone else: it cannot listen.
    local blocker = assert(sys.spawn({ "/usr/bin/python3", "-c",
      "import socket,time,sys\ns=socket.socket()\ns.bind(('127.0.0.1',int(sys.argv[1])))\ns.listen(1)\ntime.sleep(600)",
      tostring(port + 1) }))
    wait_for("the blocker to listen", 10, function() return not port_free("127.0.0.1", port + 1) end)
    r = s:juju("ensure-availability", "-n", "3")
    blocker:kill("KILL")
    blocker:wait()
    assert.are.equal(1, r.code, r.stdout)
    assert.matches("cannot add state server machine 1", r.stderr)
    local jenv = s:jenv("loc")
    local root = jenv["bootstrap-config"]["root-dir"]
    assert.are.same({ "127.0.0.1:" .. port }, jenv["state-servers"])
    assert.is_false(fs.exists(root .. "/machines/1"))
    local spec = assert(hadq.state_spec(jenv["bootstrap-config"], jenv))
    local st = assert(state.open("dqlite", spec))
    local members = assert(st:members())
    assert.are.equal(1, #members, json.encode(members))
    local machines = assert(st:find("machines"))
    assert.are.equal(1, #machines)
    st:close()
    r = s:juju("status", "--format", "yaml")
    assert.are.equal(0, r.code, r.stderr)
    assert.is_nil(yaml.decode(r.stdout).machines["1"])
  end)
end)
