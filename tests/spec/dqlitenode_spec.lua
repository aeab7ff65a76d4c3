-- dqlitenode_spec.lua: juju.dqlitenode, a libdqlite node inside this process
-- behind mutual TLS. Checked with clients that are not this project's: the
-- go-dqlite `dqlite` shell (over TLS) and `dqlite-demo` (a go-dqlite node
-- joining a plain test-only node); the three-node cluster runs one node per
-- process (tests/dqlitenode_child.lua) so the leader can be killed with -9.
-- Hosts 127.0.0.240-.250, ports asked of the kernel.
local dqlitenode = require("juju.dqlitenode")
local dqlite = require("juju.dqlite")
local crypto = require("juju.crypto")
local fs = require("juju.fs")
local sys = require("juju.sys")
local server = require("juju.testing.server")
local helpers = require("helpers")

local SHELL = "/usr/bin/dqlite"
local DEMO = "/usr/bin/dqlite-demo"

local function address(host) return host .. ":" .. server.free_port(host) end

local function wait_for(pred, seconds)
  local deadline = sys.monotonic() + (seconds or 20)
  repeat
    local v = pred()
    if v then return v end
    sys.sleep(0.1)
  until sys.monotonic() > deadline
  return nil
end

-- The environment's CA and a certificate it signed naming juju-dqlite (the
-- name nodes verify; also the first DNS name, which the Go shell verifies).
local function new_pki(dir, ca_name)
  local ca, ca_key = assert(crypto.new_ca(ca_name))
  local cert, key = assert(crypto.new_server_cert(ca, ca_key, { hostnames = { "juju-dqlite", "localhost" } }))
  assert(fs.mkdir_p(dir, tonumber("700", 8)))
  helpers.write(dir .. "/ca.pem", ca)
  helpers.write(dir .. "/cert.pem", cert)
  helpers.write(dir .. "/key.pem", key)
  -- The Go shell loads -c as its key pair and as its CA pool.
  helpers.write(dir .. "/chain.pem", cert .. ca)
  return { ca = ca, cert = cert, key = key, dir = dir }
end

-- Runs the Go shell; returns its exit code and stdout (and stderr). A
-- shell that never gets an answer (it retries) is killed at the timeout:
-- code "TIMEOUT".
local function shell(servers, pki, sql, timeout)
  local argv = { SHELL, "-s", table.concat(servers, ","), "-f", "json" }
  if pki then
    for _, a in ipairs({ "-c", pki.dir .. "/chain.pem", "-k", pki.dir .. "/key.pem" }) do argv[#argv + 1] = a end
  end
  argv[#argv + 1] = "juju"
  argv[#argv + 1] = sql
  local r, msg, code = sys.run(argv, { timeout = timeout or 20 })
  if not r then
    assert(code == "TIMEOUT", msg)
    return "TIMEOUT", "", msg
  end
  return r.code, r.stdout, r.stderr
end

local function tls_of(pki) return { ca = pki.ca, cert = pki.cert, key = pki.key } end
local function client_tls(pki) return { ca = pki.ca, cert = pki.cert, key = pki.key, server_name = "juju-dqlite" } end

describe("juju.dqlitenode", function()
  local tmp, pki

  setup(function()
    assert(fs.exists(SHELL), SHELL .. " not found: run scripts/install-deps.sh (go-dqlite)")
    tmp = helpers.tmpdir("juju-dqlitenode-")
    pki = new_pki(tmp .. "/pki", "juju-dqlitenode-test-ca")
  end)
  teardown(function()
    server.stop_all()
    helpers.cleanup()
  end)
  after_each(function()
    collectgarbage()
    collectgarbage()
  end)

  it("serves the Go shell over mutual TLS: create, insert, select", function()
    local addr = address("127.0.0.240")
    local node <close> = assert(dqlitenode.start { id = 1, address = addr, dir = tmp .. "/one", tls = tls_of(pki) })
    assert.are.equal(1, node:id())
    assert.are.equal(addr, node:address())
    assert.are.equal(tmp .. "/one", node:dir())
    assert.are.equal(tonumber("700", 8), fs.stat(tmp .. "/one").mode & tonumber("777", 8))
    local code, _, err = shell({ addr }, pki, "CREATE TABLE t (n INTEGER, s TEXT)")
    assert.are.equal(0, code, err)
    code, _, err = shell({ addr }, pki, "INSERT INTO t VALUES (42, 'forty-two')")
    assert.are.equal(0, code, err)
    local out
    code, out, err = shell({ addr }, pki, "SELECT n, s FROM t")
    assert.are.equal(0, code, err)
    assert.matches("42", out)
    assert.matches("forty%-two", out)
    -- And this project's client agrees (leader is this node).
    local c <close> = assert(dqlite.connect(addr, { tls = client_tls(pki) }))
    local leader = assert(c:leader())
    assert.are.equal(1, leader.id)
    assert.are.equal(addr, leader.address)
    assert.is_true(node:stop())
    assert.is_true(node:stop()) -- idempotent
    assert.is_false(node:running())
    assert.has_error(function() node:address() end)
  end)

  it("refuses a client without a certificate and one whose certificate another CA signed", function()
    local addr = address("127.0.0.241")
    local node <close> = assert(dqlitenode.start { id = 1, address = addr, dir = tmp .. "/refuse", tls = tls_of(pki) })
    assert.is_true(node:running())
    local code, _, err = shell({ addr }, pki, "CREATE TABLE t (n INTEGER)")
    assert.are.equal(0, code, err)
    assert.are.equal(0, (shell({ addr }, pki, "INSERT INTO t VALUES (7)")))

    local other = new_pki(tmp .. "/other-pki", "another-ca")
    -- The Go shell never gets an answer (it retries until its timeout).
    local ocode, oout = shell({ addr }, other, "SELECT n FROM t", 5)
    assert.are.equal("TIMEOUT", ocode)
    assert.is_nil(oout:find("7", 1, true))
    local ncode, nout = shell({ addr }, nil, "SELECT n FROM t", 5)
    assert.are.equal("TIMEOUT", ncode)
    assert.is_nil(nout:find("7", 1, true))

    -- This project's client: plain TCP, another CA's certificate (both
    -- directions untrusted), and our CA but a certificate of another CA.
    local c, msg = dqlite.connect(addr, { timeout = 2000 })
    if c then c, msg = c:leader() end
    assert.is_nil(c, "a plain client got an answer")
    assert.is_string(msg)
    local oc, omsg = dqlite.connect(addr, { tls = client_tls(other), timeout = 2000 })
    if oc then oc, omsg = oc:leader() end
    assert.is_nil(oc, "a client of another CA got an answer")
    assert.is_string(omsg)
    local mixed = { ca = pki.ca, cert = other.cert, key = other.key, server_name = "juju-dqlite" }
    local mc, mmsg = dqlite.connect(addr, { tls = mixed, timeout = 2000 })
    if mc then mc, mmsg = mc:leader() end
    assert.is_nil(mc, "a client certificate of another CA was accepted")
    assert.is_string(mmsg)
    -- TLS trusting our CA but presenting no certificate at all (OpenSSL's
    -- client: juju.dqlite always presents one): the handshake is refused.
    local nr = assert(sys.run({ "/usr/bin/openssl", "s_client", "-connect", addr, "-CAfile", pki.dir .. "/ca.pem",
      "-verify_return_error", "-servername", "juju-dqlite", "-quiet" }, { stdin = "x", timeout = 10 }))
    assert.are_not.equal(0, nr.code)
    assert.matches("certificate required", nr.stderr)
    -- The node still serves good clients afterwards.
    local gcode, gout = shell({ addr }, pki, "SELECT n FROM t")
    assert.are.equal(0, gcode)
    assert.matches("7", gout)
  end)

  it("says which address is in use and which dir is not writable", function()
    local addr = address("127.0.0.242")
    local node <close> = assert(dqlitenode.start { id = 1, address = addr, dir = tmp .. "/busy1", tls = tls_of(pki) })
    assert.is_true(node:running())
    local n2, msg, code = dqlitenode.start { id = 1, address = addr, dir = tmp .. "/busy2", tls = tls_of(pki) }
    assert.is_nil(n2)
    assert.are.equal("EADDRINUSE", code)
    assert.matches(addr, msg, 1, true)
    assert.matches("already in use", msg, 1, true)
    assert.matches("dqlite%-port", msg)

    -- /sys refuses new files even to root.
    local n3, msg3, code3 = dqlitenode.start { id = 1, address = address("127.0.0.242"), dir = "/sys/kernel",
      tls = tls_of(pki) }
    assert.is_nil(n3)
    assert.are.equal("EACCES", code3)
    assert.matches("/sys/kernel", msg3, 1, true)
    assert.matches("not writable", msg3, 1, true)

    local n4, msg4, code4 = dqlitenode.start { id = 1, address = address("127.0.0.242"), dir = tmp .. "/badkey",
      tls = { ca = pki.ca, cert = pki.cert, key = "not a key" } }
    assert.is_nil(n4)
    assert.are.equal("CRYPTO", code4)
    assert.matches("private key", msg4, 1, true)
    local other = new_pki(tmp .. "/mismatch-pki", "mismatch-ca")
    local n5, msg5, code5 = dqlitenode.start { id = 1, address = address("127.0.0.242"), dir = tmp .. "/badpair",
      tls = { ca = pki.ca, cert = pki.cert, key = other.key } }
    assert.is_nil(n5)
    assert.are.equal("CRYPTO", code5)
    assert.matches("does not match", msg5, 1, true)
    -- A failed start leaves the port free: the first node still answers.
    assert.are.equal(0, (shell({ addr }, pki, "SELECT 1")))
    -- Misuse raises.
    assert.has_error(function() dqlitenode.start { id = 1, address = addr, dir = tmp .. "/x" } end)
    assert.has_error(function() dqlitenode.start { id = 0, address = addr, dir = tmp .. "/x", tls = tls_of(pki) } end)
    assert.has_error(function() dqlitenode.start { id = 1, address = addr, dir = tmp .. "/x", tls = tls_of(pki), bogus = 1 } end)
  end)

  it("keeps its data across a stop and a restart", function()
    local addr = address("127.0.0.243")
    local dir = tmp .. "/restart"
    local node = assert(dqlitenode.start { id = 1, address = addr, dir = dir, tls = tls_of(pki) })
    assert.are.equal(0, (shell({ addr }, pki, "CREATE TABLE kept (v TEXT)")))
    assert.are.equal(0, (shell({ addr }, pki, "INSERT INTO kept VALUES ('survives-restart')")))
    assert.is_true(node:stop())
    local refused = shell({ addr }, pki, "SELECT v FROM kept", 3)
    assert.are_not.equal(0, refused)
    node = assert(dqlitenode.start { id = 1, address = addr, dir = dir, tls = tls_of(pki) })
    local code, out, err = shell({ addr }, pki, "SELECT v FROM kept")
    assert.are.equal(0, code, err)
    assert.matches("survives%-restart", out)
    assert.is_true(node:stop())
  end)

  it("leaves no thread and no fd behind when stopped", function()
    local function counts() return #assert(fs.list("/proc/self/fd")), #assert(fs.list("/proc/self/task")) end
    local addr = address("127.0.0.246")
    local function cycle()
      local node = assert(dqlitenode.start { id = 1, address = addr, dir = tmp .. "/fds", tls = tls_of(pki) })
      -- A relayed client connection and a refused one while it runs.
      local c = assert(dqlite.connect(addr, { tls = client_tls(pki) }))
      assert(wait_for(function() return c:leader() end))
      local bad = dqlite.connect(addr, { timeout = 1000 })
      if bad then bad:leader() end
      local fds, threads = counts()
      assert.is_true(threads > 1) -- libdqlite's and the proxy's
      assert.is_true(node:stop())
      c:close()
      if bad then bad:close() end
      return fds
    end
    -- The first node in a process makes libuv's process-wide signal pipe
    -- pair (and, once libdqlite queues work, libuv's thread pool: 4 threads
    -- for the process's life); every later node leaves the counts as it
    -- found them.
    cycle()
    local fds0, threads0 = counts()
    local running_fds = cycle()
    assert.is_true(running_fds > fds0)
    local fds1, threads1 = counts()
    assert.are.equal(fds0, fds1)
    assert.are.equal(threads0, threads1)
  end)

  it("lets dqlite-demo (go-dqlite, plain) join a plain test-only node", function()
    assert(fs.exists(DEMO), DEMO .. " not found: run scripts/install-deps.sh (go-dqlite)")
    local addr = address("127.0.0.244")
    local node <close> = assert(dqlitenode.start { id = 1, address = addr, dir = tmp .. "/plain", plain = true })
    assert.is_true(node:running())
    local demo_db = address("127.0.0.245")
    local demo = assert(server.start { name = "dqlite-demo", host = "127.0.0.245",
      argv = { DEMO, "--api", "{host}:{port}", "--db", demo_db, "--join", addr, "--dir", tmp .. "/demo" } })
    local c <close> = assert(dqlite.connect(addr, { timeout = 3000 }))
    local members = wait_for(function()
      local m = c:cluster()
      if m and #m == 2 then return m end
    end, 30)
    assert.is_table(members, "dqlite-demo did not join; its log:\n" .. demo:log_text())
    local seen = {}
    for _, m in ipairs(members) do seen[m.address] = m end
    assert.are.equal(1, seen[addr].id)
    assert.are.equal("voter", seen[addr].role)
    assert.is_table(seen[demo_db], demo:log_text())
    demo:stop()
  end)

  it("is node 1 of a cluster that two go-dqlite app nodes join over TLS, and the cluster survives its kill -9", function()
    local dq = require("servers.dqlite.fake")
    local certs = dq.certs(helpers.tmpdir("juju-dqlitenode-mixed-"), { "127.0.0.247", "127.0.0.248", "127.0.0.249" })
    local pdir = tmp .. "/mixed-pki"
    assert(fs.mkdir_p(pdir, tonumber("700", 8)))
    helpers.write(pdir .. "/ca.pem", certs.ca)
    helpers.write(pdir .. "/cert.pem", certs.cert)
    helpers.write(pdir .. "/key.pem", certs.key)
    local child = helpers.source_dir .. "/tests/dqlitenode_child.lua"
    local function start_ours(port)
      return assert(server.start { name = "dqlitenode-mixed", host = "127.0.0.247", port = port,
        argv = { helpers.juju_exe, "lua", child, "1", "{host}:{port}", tmp .. "/mixed1", pdir } })
    end
    local ours = start_ours()
    local ours_addr = "127.0.0.247:" .. ours.port
    local go2 = dq.start { tag = "dqlitenode", host = "127.0.0.248", tls = certs, join = { ours_addr } }
    local go3 = dq.start { tag = "dqlitenode", host = "127.0.0.249", tls = certs, join = { ours_addr } }
    local all = { ours_addr, go2.address, go3.address }
    local ctls = dq.client_tls(certs)
    -- go-dqlite nodes promote themselves through the leader (ours).
    local members = wait_for(function()
      local c <close> = dqlite.connect_leader(all, { tls = ctls, timeout = 2000 })
      local m = c and c:cluster()
      if not m then return nil end
      local v = 0
      for _, x in ipairs(m) do if x.role == "voter" then v = v + 1 end end
      return v == 3 and m
    end, 60)
    assert.is_table(members, "no 3 voters; go node logs:\n" .. go2:log_text() .. go3:log_text())
    local c = assert(dqlite.connect(ours_addr, { tls = ctls }))
    local leader = assert(c:leader())
    c:close()
    assert.are.equal(1, leader.id)
    assert.are.equal(ours_addr, leader.address)

    assert.matches("^%s*$", dq.shell(all, certs, "mixed", "CREATE TABLE w (n INTEGER PRIMARY KEY)"))
    for n = 1, 10 do dq.shell(all, certs, "mixed", "INSERT INTO w VALUES (" .. n .. ")") end

    assert(sys.kill(ours.pid, "KILL"))
    ours.stopped = true
    local rest = { go2.address, go3.address }
    local new_leader = wait_for(function()
      local nc <close> = dqlite.connect_leader(rest, { tls = ctls, timeout = 1000 })
      local l = nc and nc:leader()
      return l and l.address ~= ours_addr and l
    end, 30)
    assert.is_table(new_leader, "the go-dqlite nodes elected no leader after our node was killed")
    assert.matches("10", dq.shell(rest, certs, "mixed", "SELECT count(*) FROM w"))
    dq.shell(rest, certs, "mixed", "INSERT INTO w VALUES (11)")

    -- Back with its data dir: it rejoins as node 1 and follows the new leader.
    ours = start_ours(tonumber(ours_addr:match(":(%d+)$")))
    local back = wait_for(function()
      local bc <close> = dqlite.connect(ours_addr, { tls = ctls, timeout = 1000 })
      local l = bc and bc:leader()
      return l and l.address == new_leader.address and l
    end, 30)
    assert.is_table(back, "the restarted node does not know the new leader; its log:\n" .. ours:log_text())
    assert.matches("11", dq.shell(all, certs, "mixed", "SELECT max(n) FROM w"))
    assert.is_true(ours:stop())
    go2:stop()
    go3:stop()
  end)

  describe("three nodes, one per process", function()
    local nodes, addrs = {}, {}
    local child = helpers.source_dir .. "/tests/dqlitenode_child.lua"

    local function start_child(i)
      local host = "127.0.0.24" .. (5 + i)
      local port = addrs[i] and addrs[i]:match(":(%d+)$")
      local s = assert(server.start { name = "dqlitenode-" .. i, host = host, port = port and tonumber(port),
        argv = { helpers.juju_exe, "lua", child, tostring(i), "{host}:{port}", tmp .. "/cluster" .. i, pki.dir } })
      addrs[i] = host .. ":" .. s.port
      nodes[i] = s
      return s
    end

    local function voters(c)
      local m = c:cluster()
      if not m then return 0 end
      local n = 0
      for _, x in ipairs(m) do if x.role == "voter" then n = n + 1 end end
      return n
    end

    it("elect, replicate, and survive a kill -9 of the leader", function()
      for i = 1, 3 do start_child(i) end
      local c = assert(dqlite.connect(addrs[1], { tls = client_tls(pki) }))
      assert(wait_for(function() return c:leader() end), nodes[1]:log_text())
      for i = 2, 3 do
        assert(c:add(i, addrs[i]))
        assert(c:assign(i, "voter"))
      end
      assert.are.equal(3, wait_for(function() local v = voters(c) return v == 3 and v end))
      c:close()

      assert.are.equal(0, (shell(addrs, pki, "CREATE TABLE beats (n INTEGER PRIMARY KEY)")))
      for n = 1, 20 do
        local code, _, err = shell(addrs, pki, "INSERT INTO beats VALUES (" .. n .. ")")
        assert.are.equal(0, code, err)
      end
      -- Every node has the rows (leader 1 ships them; read on the others
      -- once they are leaders below).

      local lc = assert(dqlite.connect_leader(addrs, { tls = client_tls(pki) }))
      local leader = assert(lc:leader())
      lc:close()
      local li
      for i = 1, 3 do if addrs[i] == leader.address then li = i end end
      assert.is_number(li)
      assert(sys.kill(nodes[li].pid, "KILL"))
      local rest = {}
      for i = 1, 3 do if i ~= li then rest[#rest + 1] = addrs[i] end end
      local t0 = sys.monotonic()
      local new_leader = wait_for(function()
        local nc = dqlite.connect_leader(rest, { tls = client_tls(pki), timeout = 1000 })
        if not nc then return nil end
        local l = nc:leader()
        nc:close()
        return l and l.address ~= leader.address and l
      end, 30)
      assert.is_table(new_leader, "no new leader after the kill")
      local failover = sys.monotonic() - t0
      assert.is_true(failover < 30)
      local code, out, err = shell(rest, pki, "SELECT count(*) AS c FROM beats")
      assert.are.equal(0, code, err)
      assert.matches("20", out)
      assert.are.equal(0, (shell(rest, pki, "INSERT INTO beats VALUES (21)")))
      code, out = shell(rest, pki, "SELECT max(n) AS m FROM beats")
      assert.are.equal(0, code)
      assert.matches("21", out)

      -- The killed node comes back and catches up.
      nodes[li].stopped = true
      start_child(li)
      local back = assert(wait_for(function()
        local bc = dqlite.connect(addrs[li], { tls = client_tls(pki), timeout = 1000 })
        if not bc then return nil end
        local m = bc:cluster()
        bc:close()
        return m and #m == 3 and m
      end, 30))
      assert.are.equal(3, #back)
      for i = 1, 3 do
        assert.is_true(nodes[i]:stop())
      end
    end)
  end)
end)
