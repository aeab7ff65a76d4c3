-- A network partition of a three-node Dqlite cluster, for real: three
-- nodes of this project (juju.dqlitenode, mutual TLS with certificates of
-- one test CA, started and joined by juju.agent.dqlitenode as jujud does:
-- tests/dqlite_agent_node.lua), each a process in a network namespace of its
-- own (servers.netns: 10.231.0.1-3 behind a bridge at 10.231.0.254, all
-- inside a private parent namespace, so the host's network is untouched).
-- One node is cut off by setting its veth link down, first a follower,
-- then (in a cluster of its own) the leader: the majority keeps serving
-- (a new leader within a measured time when the leader was cut), a client
-- inside the minority's namespace that reaches only the cut-off node is
-- refused (NOTLEADER, NOLEADER or TIMEOUT: never a success, and its write is
-- nowhere afterwards); healed, the node catches up, shown by a write that
-- needs it (the other follower frozen), and the go-dqlite shell, an
-- independent client, reads everything back. Clients are
-- tests/dqlite_partition_client.lua processes inside the namespaces.
local crypto = require("juju.crypto")
local fs = require("juju.fs")
local json = require("juju.json")
local sys = require("juju.sys")
local helpers = require("helpers")
local netns = require("servers.netns")

local SHELL = "/usr/bin/dqlite"
local PORT = 17666
local CODES = { NOTLEADER = true, NOLEADER = true, TIMEOUT = true }

local function abs(path) return assert(fs.realpath(path), path) end

local JUJU = abs(helpers.juju_exe)
local NODE = abs(helpers.source_dir .. "/tests/dqlite_agent_node.lua")
local CLIENT = abs(helpers.source_dir .. "/tests/dqlite_partition_client.lua")

local function say(fmt, ...)
  io.stderr:write("[partition] ", string.format(fmt, ...), "\n")
end

-- The host's own links, to show that nothing here changed them.
local function host_links()
  local r = assert(sys.run({ "ip", "-o", "link", "show" }, { timeout = 10 }))
  assert.are.equal(0, r.code, r.stderr)
  local names = {}
  for name in r.stdout:gmatch("%d+: ([^:@]+)[:@]") do names[#names + 1] = name end
  table.sort(names)
  return table.concat(names, " ")
end

local function write_pems(dir, ca, cert, key)
  assert(fs.mkdir_p(dir, tonumber("700", 8)))
  helpers.write(dir .. "/ca.pem", ca)
  helpers.write(dir .. "/cert.pem", cert)
  helpers.write(dir .. "/key.pem", key)
  -- The go-dqlite shell loads -c as its key pair and as its CA pool.
  helpers.write(dir .. "/chain.pem", cert .. ca)
  return dir
end

-- One CA; a certificate per node (juju-dqlite and its address) and one for
-- the clients (juju-dqlite: the name every side verifies).
local function make_pki(dir, hosts)
  local ca, ca_key = assert(crypto.new_ca("juju-partition-test"))
  local pki = { nodes = {} }
  for i, h in ipairs(hosts) do
    local cert, key = assert(crypto.new_server_cert(ca, ca_key, { hostnames = { "juju-dqlite", h } }))
    pki.nodes[i] = write_pems(dir .. "/node" .. i, ca, cert, key)
  end
  local cert, key = assert(crypto.new_server_cert(ca, ca_key, { hostnames = { "juju-dqlite" } }))
  pki.client = write_pems(dir .. "/client", ca, cert, key)
  return pki
end

local function wait_for(what, seconds, fn)
  local deadline = sys.monotonic() + seconds
  local last
  repeat
    local ok, v, why = pcall(fn)
    if ok and v then return v end
    last = ok and why or v
    sys.sleep(0.1)
  until sys.monotonic() > deadline
  error(string.format("timed out after %ds waiting for %s: %s", seconds, what, tostring(last)), 2)
end

local function last_json(text)
  local line
  for l in text:gmatch("[^\n]+") do if l:match("^%s*{") then line = l end end
  return line and json.decode(line)
end

describe("Dqlite partition (three namespaced nodes, link down)", function()
  local tmp, net, pki, addrs, procs, logs
  local links_before

  local function node_index(address)
    for i, a in ipairs(addrs) do if a == address then return i end end
    return nil
  end

  -- Runs the client inside namespace i (nil: the parent) on servers; its
  -- JSON answer.
  local function client(i, servers, op, ...)
    local argv = { JUJU, "lua", CLIENT, pki.client, table.concat(servers, ","), op, ... }
    local r = assert(net:run(i, argv, { timeout = 90 }))
    local out = last_json(r.stdout)
    assert(r.code == 0 and out, string.format("client %s in ns %s: exit %s\n%s%s", op, tostring(i), tostring(r.code),
      r.stdout, r.stderr))
    return out
  end

  -- The same, started now and answered by the returned function.
  local function client_async(i, servers, op, ...)
    local out = string.format("%s/client-%s-%d.out", tmp, op, sys.monotonic() * 1000 // 1)
    local p = assert(net:spawn(i, { JUJU, "lua", CLIENT, pki.client, table.concat(servers, ","), op, ... },
      { stdout = out, stderr = out .. ".err" }))
    return function()
      local code = p:wait(90)
      local text = fs.read_file(out) or ""
      local res = last_json(text)
      assert(code == 0 and res, string.format("client %s in ns %s: exit %s\n%s%s", op, tostring(i), tostring(code),
        text, fs.read_file(out .. ".err") or ""))
      return res
    end
  end

  local function shell(servers, sql)
    local r = assert(net:run(nil, { SHELL, "-s", table.concat(servers, ","), "-c", pki.client .. "/chain.pem",
      "-k", pki.client .. "/key.pem", "juju", sql }, { timeout = 60 }))
    assert.are.equal(0, r.code, "dqlite shell: " .. r.stderr .. r.stdout)
    return r.stdout
  end

  local function start_node(i)
    logs[i] = string.format("%s/node%d.log", tmp, i)
    procs[i] = assert(net:spawn(i, { JUJU, "lua", NODE, tostring(i), addrs[i], table.concat(addrs, ","),
      string.format("%s/data%d", tmp, i), pki.nodes[i] }, { stdout = logs[i], stderr = logs[i] }))
  end

  local function log_of(i) return fs.read_file(logs[i]) or "" end

  local function leader_now()
    local r = wait_for("a leader", 30, function()
      local l = client(nil, addrs, "leader")
      return l.ok and l, l.message
    end)
    return r.leader, r
  end

  local function others(...)
    local skip, out = {}, {}
    for _, i in ipairs({ ... }) do skip[i] = true end
    for i = 1, 3 do if not skip[i] then out[#out + 1] = i end end
    return out
  end

  local function addresses(list)
    local out = {}
    for k, i in ipairs(list) do out[k] = addrs[i] end
    return out
  end

  -- The ids in the docs table, read by the go-dqlite shell.
  local function shell_ids(coll)
    local seen = {}
    for line in shell(addrs, "SELECT id FROM docs WHERE coll = '" .. coll .. "' ORDER BY id"):gmatch("[^\n]+") do
      seen[line:match("^%s*(.-)%s*$")] = true
    end
    return seen
  end

  -- A refusal the partition explains: not a success, and not SQLITE_BUSY
  -- (the store reports that as TIMEOUT too: a concurrent writer on a
  -- reachable leader, which a partition that did not happen also gives).
  local function assert_refused(res, who)
    assert.is_false(res.ok, who .. " succeeded in the minority: " .. json.encode(res))
    assert.is_true(CODES[res.code] == true, who .. ": code " .. tostring(res.code) .. " " .. tostring(res.message))
    assert.is_nil(tostring(res.message):find("database is locked", 1, true), who .. ": " .. tostring(res.message))
  end

  -- Before the cut, the same client in node i's namespace writes through
  -- it: what the minority is refused afterwards is the partition's doing.
  local function control_write(i)
    local c = client(i, { addrs[i] }, "write", "part", "ctl" .. i .. "-", "1", "10000")
    assert.is_true(c.ok, "before the cut, the store through node " .. i .. " failed: " .. json.encode(c))
    return c.acked
  end

  -- The minority's writes, answered later: the store given only node i
  -- (started now), then the wire client's INSERT on the node itself. One
  -- after the other: a write pending on a stale leader holds the database's
  -- write lock, and the second would only see BUSY.
  local function minority_writes(i, tag)
    local store = client_async(i, { addrs[i] }, "write", "part", tag .. "-store", "3", "8000")
    return function()
      local s = store()
      local r = client(i, { addrs[i] }, "raw", "part", tag .. "-raw", "10000")
      say("minority (node %d, own namespace) store: %s after %d ms at %s: %s", i, tostring(s.code), s.ms or -1,
        tostring(s.stage), tostring(s.message))
      say("minority (node %d, own namespace) wire client, then: %s after %d ms at %s: %s", i, tostring(r.code),
        r.ms or -1, tostring(r.stage), tostring(r.message))
      assert_refused(s, "the store's insert through node " .. i)
      assert.are.same({}, s.acked)
      assert_refused(r, "the wire client's INSERT on node " .. i)
      return s, r
    end
  end

  -- Waits until node i, seen from its own namespace, knows a leader and
  -- reaches it (through the healed link, or itself); returns its address.
  local function wait_rejoined(i, t_heal)
    local l = wait_for("node " .. i .. " to know a reachable leader after the heal", 60, function()
      local k = client(i, { addrs[i] }, "knows")
      if not (k.ok and k.leader) then return nil, json.encode(k) end
      local via = client(i, { addrs[i] }, "leader")
      return via.ok and via.leader, json.encode(via)
    end)
    say("node %d rejoined %.1f s after the heal (leader %s)", i, sys.monotonic() - t_heal, l)
    return l
  end

  -- With one majority follower frozen (SIGSTOP), a write needs the healed
  -- node i's vote: it succeeds only when i holds the whole log.
  local function write_needing(i, prefix)
    local leader = leader_now()
    local li = node_index(leader)
    local frozen
    for _, k in ipairs(others(i, li)) do frozen = frozen or k end
    assert.is_number(frozen, "no follower to freeze besides node " .. i)
    assert(procs[frozen]:kill("STOP"))
    local ok, res = pcall(client, nil, addrs, "write", "part", prefix, "5", "20000")
    assert(procs[frozen]:kill("CONT"))
    assert(ok, res)
    assert.is_true(res.ok, "with node " .. frozen .. " frozen, a write needing node " .. i .. " failed: "
      .. json.encode(res))
    say("with node %d frozen, 5 writes through leader %s needing node %d took %d ms", frozen, tostring(res.leader), i,
      res.ms)
    return res.acked
  end

  before_each(function()
    netns.check_tools()
    assert(fs.exists(SHELL), SHELL .. " not found: install the Debian package go-dqlite")
    links_before = host_links()
    tmp = abs(helpers.tmpdir("juju-dqlite-partition-"))
    net = netns.new { n = 3, dir = tmp }
    addrs, procs, logs = {}, {}, {}
    for i = 1, 3 do addrs[i] = net.hosts[i] .. ":" .. PORT end
    pki = make_pki(tmp .. "/pki", net.hosts)
    local t0 = sys.monotonic()
    -- Node 1 bootstraps; 2 and 3 join through it (spare, then voter).
    for i = 1, 3 do start_node(i) end
    for i = 1, 3 do
      wait_for("node " .. i .. " to be ready", 60, function()
        if procs[i]:wait(0) then error("node " .. i .. " exited:\n" .. log_of(i)) end
        return log_of(i):find("ready id=", 1, true), log_of(i)
      end)
    end
    local l = wait_for("three voters", 30, function()
      local r = client(nil, addrs, "leader")
      local v = 0
      for _, m in ipairs(r.members or {}) do if m.role == "voter" then v = v + 1 end end
      return v == 3 and r, json.encode(r)
    end)
    say("three voters in %.1f s; leader %s", sys.monotonic() - t0, l.leader)
  end)

  after_each(function()
    if net then
      for i = 1, 3 do
        local p = procs and procs[i]
        if p and not p:wait(0) then
          p:kill("CONT")
          p:kill("TERM")
          p:wait(10)
        end
      end
      net:close()
      assert.is_false(net:alive(), "a namespace holder outlived the test")
    end
    net = nil
    if tmp then
      local left = {}
      for _, pid in ipairs(fs.list("/proc") or {}) do
        local cmd = pid:match("^%d+$") and fs.read_file("/proc/" .. pid .. "/cmdline")
        if cmd and cmd:find(tmp, 1, true) then left[#left + 1] = pid end
      end
      helpers.cleanup()
      tmp = nil
      assert.are.same({}, left, "processes left running")
      assert.are.equal(links_before, host_links(), "the host's links changed")
    end
    collectgarbage()
  end)

  it("with all three up: writes from the parent and from every node's namespace, read back", function()
    local w = client(nil, addrs, "write", "part", "all", "5", "20000")
    assert.is_true(w.ok, json.encode(w))
    assert.are.equal(5, #w.acked)
    -- Each namespace reaches the leader through the bridge, via its own node.
    for i = 1, 3 do
      local wi = client(i, { addrs[i] }, "write", "part", "ns" .. i .. "-", "2", "10000")
      assert.is_true(wi.ok, "from namespace " .. i .. ": " .. json.encode(wi))
    end
    local r = client(nil, addrs, "read", "part")
    assert.is_true(r.ok, json.encode(r))
    assert.are.same({ "all001", "all002", "all003", "all004", "all005", "ns1-001", "ns1-002", "ns2-001",
      "ns2-002", "ns3-001", "ns3-002" }, r.ids)
    local seen = shell_ids("part")
    for _, id in ipairs(r.ids) do assert.is_true(seen[id], id .. " not seen by the go-dqlite shell") end
  end)

  it("cut off a follower: the majority serves, the follower refuses writes; healed, it catches up", function()
    local before = client(nil, addrs, "write", "part", "pre", "3", "20000")
    assert.is_true(before.ok, json.encode(before))
    local leader = leader_now()
    local li = node_index(leader)
    local f = others(li)[1]
    local ctl = control_write(f)
    net:cut(f)
    local t_cut = sys.monotonic()
    say("cut off follower node %d (leader node %d)", f, li)
    local majority = addresses(others(f))
    local w = client(nil, majority, "write", "part", "maj", "10", "20000")
    assert.is_true(w.ok, "the majority did not serve: " .. json.encode(w))
    say("majority: 10 writes in %d ms, %.1f s after the cut", w.ms, sys.monotonic() - t_cut)
    assert.are.equal(leader, w.leader, "the leader changed although only a follower was cut off")
    -- After the majority's writes, not beside them (no writer to be BUSY with).
    local _, raw = minority_writes(f, "min")()
    -- The follower answers the wire client at once: it is not the leader.
    assert.are.equal("NOTLEADER", raw.code)

    net:heal(f)
    local t_heal = sys.monotonic()
    wait_rejoined(f, t_heal)
    local healed = write_needing(f, "heal")

    local seen = shell_ids("part")
    for _, list in ipairs({ before.acked, ctl, w.acked, healed }) do
      for _, id in ipairs(list) do assert.is_true(seen[id], id .. " was acknowledged but the shell does not see it") end
    end
    for id in pairs(seen) do assert.is_nil(id:match("^min"), id .. ", written in the minority, is in the cluster") end
  end)

  it("cut off the leader: the majority elects a new one, the old leader refuses writes; healed, it catches up", function()
    local before = client(nil, addrs, "write", "part", "pre", "3", "20000")
    assert.is_true(before.ok, json.encode(before))
    local old = leader_now()
    local li = node_index(old)
    local ctl = control_write(li)
    local t_cut = sys.monotonic()
    net:cut(li)
    say("cut off the leader, node %d", li)
    local minority = minority_writes(li, "min")
    local majority = addresses(others(li))
    local e = client(nil, majority, "elect", old, string.format("%.6f", t_cut), "30", "part", "first")
    assert.is_true(e.ok, "the majority did not elect a leader and take a write: " .. json.encode(e))
    say("new leader %s elected %d ms after the cut; first write acknowledged at %d ms", e.leader, e.elected_ms,
      e.written_ms)
    assert.is_true(e.elected_ms < 20000, "election took " .. e.elected_ms .. " ms")
    assert.are_not.equal(old, e.leader)
    local w = client(nil, majority, "write", "part", "maj", "10", "20000")
    assert.is_true(w.ok, "the majority did not serve: " .. json.encode(w))
    minority()
    -- Cut off, the old leader stepped down (it cannot reach a majority).
    local k = client(li, { addrs[li] }, "knows")
    say("the cut-off old leader's view of the leader: %s", json.encode(k))
    assert.are_not.equal(old, k.leader, "the cut-off node still calls itself the leader")

    net:heal(li)
    local t_heal = sys.monotonic()
    wait_rejoined(li, t_heal)
    local healed = write_needing(li, "heal")

    local seen = shell_ids("part")
    for _, list in ipairs({ before.acked, ctl, { "first" }, w.acked, healed }) do
      for _, id in ipairs(list) do assert.is_true(seen[id], id .. " was acknowledged but the shell does not see it") end
    end
    for id in pairs(seen) do assert.is_nil(id:match("^min"), id .. ", written in the minority, is in the cluster") end
  end)
end)
