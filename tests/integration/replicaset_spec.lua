-- replicaset_spec.lua (#integration): juju.replicaset, the mongodb path of
-- ensure-availability, as wire conversations with scripted MockupDB
-- servers (tests/integration/mockupdb_script.py).
--
-- tests/integration/replicaset_golden.txt holds one section per case:
--   == <case>                          the case (a function below)
--   @ <server> <hello fields JSON>     a server and what its isMaster says
--   > <server> <db> <command JSON>     a command the client must send
--   < <reply JSON>                     the server's scripted reply to it
-- The "<" lines are the servers' scripts (in order, per server); the whole
-- conversation recorded by the servers (handshakes, ping and endSessions
-- left out; the driver's own fields $db, lsid ... removed) must equal the
-- ">" and "<" lines. ${PORT:<server>} stands for a server's port.
local replicaset = require("juju.replicaset")
local mongo = require("juju.mongo")
local json = require("juju.json")
local proc = require("juju.proc")
local fs = require("juju.fs")
local sys = require("juju.sys")
local testing = require("juju.testing")
local helpers = require("helpers")

local SOURCE = assert(fs.realpath(helpers.source_dir))
local MOCK = SOURCE .. "/tests/integration/mockupdb_script.py"
local GOLDEN = SOURCE .. "/tests/integration/replicaset_golden.txt"
local FAST = "connectTimeoutMS=2000&serverSelectionTimeoutMS=3000&socketTimeoutMS=5000"

local MACHINES = {
  { id = "0", address = "10.0.0.1:37017", wants_vote = true },
  { id = "1", address = "10.0.0.2:37017", wants_vote = true },
  { id = "2", address = "10.0.0.3:37017", wants_vote = true },
}

local function free_port()
  local r = assert(sys.run({ "/usr/bin/python3", "-c",
    "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])" }))
  return assert(math.tointeger(tonumber(r.stdout)))
end

-- The golden file: case name -> {servers = {name, hello}, lines = {...}}.
local function read_golden()
  local cases, order, cur = {}, {}, nil
  for line in io.lines(GOLDEN) do
    local name = line:match("^== (.+)$")
    if name then
      cur = { name = name, servers = {}, lines = {} }
      cases[name] = cur
      order[#order + 1] = name
    elseif line:match("^@ ") then
      local server, hello = line:match("^@ (%S+) (.+)$")
      cur.servers[#cur.servers + 1] = { name = server, hello = hello }
    elseif line:match("^[<>] ") then
      cur.lines[#cur.lines + 1] = line
    end
  end
  return cases, order
end

local function substitute(text, ports)
  return (text:gsub("%${PORT:(%w+)}", function(s) return tostring(assert(ports[s], s)) end))
end

-- Starts the case's servers; returns {ports=, uri(name), record=, stop()}.
local function start_servers(case, dir)
  local ports, pids = {}, {}
  for _, s in ipairs(case.servers) do ports[s.name] = free_port() end
  local record = dir .. "/record.jsonl"
  local replies, last, hello = {}, nil, false
  for _, s in ipairs(case.servers) do replies[s.name] = {} end
  for _, line in ipairs(case.lines) do
    local server, cmd = line:match("^> (%S+) %S+ {\"(%w+)\"")
    if server then
      -- isMaster is answered from the server's "@" line, not its script.
      last, hello = server, cmd == "isMaster" or cmd == "hello"
    elseif not hello then
      local list = assert(replies[last], "a reply before any command in " .. case.name)
      list[#list + 1] = substitute(line:sub(3), ports)
    end
  end
  for _, s in ipairs(case.servers) do
    local script = string.format('{"label":%s,"hello":%s,"replies":[%s]}', json.encode(s.name),
      substitute(s.hello, ports), table.concat(replies[s.name], ","))
    local path = string.format("%s/%s.json", dir, s.name)
    helpers.write(path, script)
    local log, pid_file = dir .. "/" .. s.name .. ".log", dir .. "/" .. s.name .. ".pid"
    assert(proc.start_daemon({ "/usr/bin/python3", MOCK, "--port", tostring(ports[s.name]), "--script", path,
      "--record", record }, { log_file = log, pid_file = pid_file, env = { PATH = os.getenv("PATH") } }))
    pids[#pids + 1] = pid_file
    local deadline = sys.monotonic() + 15
    while not (fs.exists(log) and fs.read_file(log):find("listening", 1, true)) do
      assert(sys.monotonic() < deadline, "mockupdb_script did not start: " .. (fs.read_file(log) or ""))
      sys.sleep(0.05)
    end
  end
  return {
    ports = ports, record = record,
    uri = function(name)
      return string.format("mongodb://127.0.0.1:%d/?directConnection=true&%s", ports[name], FAST)
    end,
    stop = function()
      for _, p in ipairs(pids) do proc.stop(p, { timeout = 5 }) end
    end,
  }
end

-- The recorded conversation as golden lines, ports put back as placeholders.
local function conversation(servers)
  local lines = {}
  if not fs.exists(servers.record) then return lines end
  local back = {}
  for name, port in pairs(servers.ports) do back[tostring(port)] = name end
  local function unsubstitute(text)
    return (text:gsub("127%.0%.0%.1:(%d+)", function(p)
      return back[p] and ("127.0.0.1:${PORT:" .. back[p] .. "}") or nil
    end))
  end
  for line in io.lines(servers.record) do
    local r = assert(json.decode(line))
    if not r.handshake then
      -- The documents are re-read from the line itself, keeping key order.
      local cmd = assert(line:match('"cmd":(.*),"reply":'))
      local reply = assert(line:match('"reply":(.*)}$'))
      lines[#lines + 1] = unsubstitute(string.format("> %s %s %s", r.label, r.db, cmd))
      lines[#lines + 1] = unsubstitute("< " .. reply)
    end
  end
  return lines
end

local function compare(got, want)
  for i = 1, math.max(#got, #want) do
    if got[i] ~= want[i] then
      return nil, string.format("line %d of the conversation:\nexpected %s\n     got %s", i,
        want[i] or "nothing more", got[i] or "nothing more")
    end
  end
  return true
end

-- Runs one golden case: fn(servers, clients) -> the case's own checks.
local function run_case(name, fn)
  local cases = read_golden()
  local case = assert(cases[name], "no golden section " .. name)
  local dir = helpers.tmpdir("juju-rs-")
  local servers = start_servers(case, dir)
  local clients = {}
  local function client(server)
    local c = assert(mongo.client(servers.uri(server)))
    clients[#clients + 1] = c
    return c
  end
  local ok, err = pcall(fn, servers, client)
  for _, c in ipairs(clients) do c:close() end
  servers.stop()
  local same, diff = compare(conversation(servers), case.lines)
  if not ok then error(err, 0) end
  assert(same, diff)
end

describe("juju.replicaset #integration", function()
  teardown(function() helpers.cleanup() end)
  after_each(function()
    collectgarbage()
    collectgarbage()
  end)

  it("has every golden section covered by a case", function()
    local _, order = read_golden()
    assert.are.same({ "grow 1 to 3", "reconfig refused", "not master", "member never secondary", "reconfig busy",
      "config from local.system.replset", "connection dropped by reconfig", "initiate", "set" }, order)
  end)

  it("grows the set from 1 to 3: new members without a vote, votes once SECONDARY", function()
    run_case("grow 1 to 3", function(_, client)
      local clock = testing.virtual_clock()
      local said = {}
      local r, msg = replicaset.ensure(client("primary"), MACHINES, {
        clock = clock, say = function(l) said[#said + 1] = l end,
      })
      assert.is_table(r, msg)
      assert.are.same({ ["0"] = true, ["1"] = true, ["2"] = true }, r.voting)
      assert.are.equal(4, r.config.version)
      assert.are.equal(1, clock.monotonic()) -- one poll interval: STARTUP2, then SECONDARY
    end)
  end)

  it("reports a reconfiguration the server refuses, naming replSetReconfig and the server's errmsg", function()
    run_case("reconfig refused", function(_, client)
      local r, msg, code, server_code = replicaset.ensure(client("primary"), MACHINES,
        { clock = testing.virtual_clock() })
      assert.is_nil(r)
      assert.matches("replSetReconfig (version 2, adding 10.0.0.2:37017 (machine 1), 10.0.0.3:37017 (machine 2)) refused",
        msg, 1, true)
      assert.matches("member 10.0.0.3:37017 cannot be reached", msg, 1, true)
      assert.are.equal("MONGO", code)
      assert.are.equal(103, server_code)
    end)
  end)

  it("moves to the primary named by isMaster when the server is not the primary", function()
    run_case("not master", function(servers, client)
      local connected = {}
      local r, msg = replicaset.ensure(client("secondary"), MACHINES, {
        clock = testing.virtual_clock(),
        connect = function(address)
          connected[#connected + 1] = address
          assert.are.equal("127.0.0.1:" .. servers.ports.primary, address)
          return client("primary")
        end,
      })
      assert.is_table(r, msg)
      assert.are.same({ "127.0.0.1:" .. servers.ports.primary }, connected)
      assert.are.same({ ["0"] = true, ["1"] = true, ["2"] = true }, r.voting)
    end)
  end)

  it("gives up on a member that never reaches SECONDARY, names it and removes the new members", function()
    run_case("member never secondary", function(_, client)
      local clock = testing.virtual_clock()
      local r, msg, code = replicaset.ensure(client("primary"), MACHINES, { clock = clock, timeout = 20 })
      assert.is_nil(r)
      assert.are.equal("TIMEOUT", code)
      assert.matches("replica set member 10.0.0.3:37017 (machine 2) (STARTUP2) never reached SECONDARY (waited 20s)",
        msg, 1, true)
      assert.are.equal(20, clock.monotonic())
    end)
  end)
  it("retries a reconfiguration while the server is busy with an earlier one", function()
    run_case("reconfig busy", function(_, client)
      local clock = testing.virtual_clock()
      local r, msg = replicaset.ensure(client("primary"), MACHINES, { clock = clock })
      assert.is_table(r, msg)
      assert.are.equal(4, r.config.version)
      assert.are.equal(2, clock.monotonic()) -- 1 s before the retry, 1 s between the status polls
    end)
  end)

  it("reads the config from local.system.replset where replSetGetConfig does not exist", function()
    run_case("config from local.system.replset", function(_, client)
      local cfg, msg = replicaset.current_config(client("primary"))
      assert.is_table(cfg, msg)
      assert.are.equal(5, cfg.version)
      assert.are.equal("10.0.0.1:37017", cfg.members[1].host)
    end)
  end)
  it("takes a reconfig that dropped the connection as applied when the config has its version", function()
    run_case("connection dropped by reconfig", function(_, client)
      local r, msg = replicaset.ensure(client("primary"), MACHINES, { clock = testing.virtual_clock() })
      assert.is_table(r, msg)
      assert.are.equal(4, r.config.version)
      assert.are.same({ ["0"] = true, ["1"] = true, ["2"] = true }, r.voting)
    end)
  end)

  it("initiates a one-member set, retrying while mongod cannot reach itself", function()
    run_case("initiate", function(_, client)
      local clock = testing.virtual_clock()
      local ok, msg = replicaset.initiate(client("primary"), {
        address = "10.0.0.1:37017", tags = { ["juju-machine-id"] = "0" }, clock = clock,
      })
      assert.is_true(ok, msg)
      assert.is_true(math.abs(clock.monotonic() - 0.6) < 1e-9) -- 0.1 s, then 0.5 s
    end)
  end)
  it("sets the members: ids kept by host, new ones after the highest given or present (Juju's findMaxId), version + 1", function()
    run_case("set", function(_, client)
      local ok, msg = replicaset.set(client("primary"), {
        { host = "10.0.0.9:37017", priority = 1.0, tags = { ["juju-machine-id"] = "5" }, votes = 1 },
        { _id = 9, host = "10.0.0.2:37017", arbiterOnly = false, buildIndexes = true, hidden = false, priority = 1.0,
          tags = { ["juju-machine-id"] = "1" }, secondaryDelaySecs = 0, votes = 1 },
      })
      assert.is_true(ok, msg)
    end)
  end)
end)
