-- dqlite_client_spec.lua: juju.dqlite (core/dqlite.c) against go-dqlite
-- nodes (tests/servers/dqlite): one plain node, one TLS node, a TLS cluster
-- of three and a plain one, on 127.0.0.233-.239 with free ports; what it writes is
-- read back through the independent go-dqlite shell.
local dqlite = require("juju.dqlite")
local yaml = require("juju.yaml")
local sys = require("juju.sys")
local server = require("juju.testing.server")
local helpers = require("helpers")
local fake = require("servers.dqlite.fake")

local TAG = "client"

-- A one-connection TCP server (Python) that reads the handshake and the
-- leader request, then answers with the bytes in hex.
local function bad_server(host, answer_hex)
  local port = server.free_port(host)
  local script = [[
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1); print("listening", flush=True)
keep = []
while True:
    c, _ = s.accept()
    got = b""
    while len(got) < 24:
        d = c.recv(24 - len(got))
        if not d: break
        got += d
    if len(got) < 24:
        c.close()  # a port probe
        continue
    c.sendall(bytes.fromhex(sys.argv[3])); keep.append(c)
]]
  local p = assert(sys.spawn({ "/usr/bin/python3", "-c", script, host, tostring(port), answer_hex },
    {}))
  assert(require("juju.proc").wait_port(host, port, 10), "bad server did not listen")
  return p, string.format("%s:%d", host, port)
end

describe("juju.dqlite against go-dqlite", function()
  local dir, certs, plain, tlsnode, nodes, addresses, ctls, plain_nodes

  setup(function()
    dir = helpers.tmpdir("juju-dqlite-client-")
    certs = fake.certs(dir, { "127.0.0.233", "127.0.0.234", "127.0.0.235", "127.0.0.236", "127.0.0.237" })
    ctls = fake.client_tls(certs)
    plain = fake.start { tag = TAG, host = "127.0.0.233" }
    tlsnode = fake.start { tag = TAG, host = "127.0.0.237", tls = certs }
    nodes = fake.cluster { tag = TAG, tls = certs, hosts = { "127.0.0.234", "127.0.0.235", "127.0.0.236" } }
    addresses = {}
    for i, n in ipairs(nodes) do addresses[i] = n.address end
    plain_nodes = fake.cluster { tag = TAG, hosts = { "127.0.0.238", "127.0.0.239", "127.0.0.233" } }
  end)
  teardown(function()
    for _, n in ipairs(nodes or {}) do n:stop() end
    for _, n in ipairs(plain_nodes or {}) do n:stop() end
    if plain then plain:stop() end
    if tlsnode then tlsnode:stop() end
    helpers.cleanup()
  end)
  after_each(function()
    collectgarbage()
    collectgarbage()
  end)

  local function leader_and_followers()
    local c, leader = assert(dqlite.connect_leader(addresses, { tls = ctls }))
    c:close()
    local followers = {}
    for _, a in ipairs(addresses) do
      if a ~= leader then followers[#followers + 1] = a end
    end
    return leader, followers
  end

  describe("handshake and membership", function()
    it("connects in plain TCP and names the single node as its leader", function()
      local c <close> = assert(dqlite.connect(plain.address))
      assert.are.same({ id = plain.id, address = plain.address }, c:leader())
      assert.are.same({ { id = plain.id, address = plain.address, role = "voter" } }, c:cluster())
      assert.are.equal(plain.address, c:address())
    end)

    it("connects over mutual TLS and lists the cluster's three voters with their ids", function()
      local c <close> = assert(dqlite.connect(nodes[2].address, { tls = ctls }))
      local members = assert(c:cluster())
      table.sort(members, function(a, b) return a.address < b.address end)
      local want = {}
      for i, n in ipairs(nodes) do want[i] = { id = n.id, address = n.address, role = "voter" } end
      table.sort(want, function(a, b) return a.address < b.address end)
      assert.are.same(want, members)
      local l = assert(c:leader())
      assert.is_truthy(({ [nodes[1].address] = true, [nodes[2].address] = true, [nodes[3].address] = true })[l.address])
    end)

    it("works with a plain TCP cluster of three: leader, roles, a write on the leader, NOTLEADER elsewhere", function()
      local list = {}
      for i, n in ipairs(plain_nodes) do list[i] = n.address end
      local c <close>, leader = assert(dqlite.connect_leader(list))
      local voters = 0
      for _, m in ipairs(assert(c:cluster())) do
        if m.role == "voter" then voters = voters + 1 end
      end
      assert.are.equal(3, voters)
      assert(c:open("plain3"))
      assert(c:exec("CREATE TABLE IF NOT EXISTS t(v TEXT)"))
      assert.are.equal(1, c:exec("INSERT INTO t VALUES (?)", { "replicated" }))
      for _, a in ipairs(list) do
        if a ~= leader then
          local f <close> = assert(dqlite.connect(a))
          assert.are.equal(leader, f:leader().address)
          assert(f:open("plain3"))
          local r, _, code = f:exec("INSERT INTO t VALUES ('no')")
          assert.is_nil(r)
          assert.are.equal("NOTLEADER", code)
        end
      end
      assert.matches("replicated", fake.shell(list, nil, "plain3", "SELECT v FROM t"), 1, true)
    end)

    it("connect_leader finds the leader from a list that starts with a dead address and a follower", function()
      local leader, followers = leader_and_followers()
      local dead = string.format("127.0.0.236:%d", server.free_port("127.0.0.236"))
      local c, at = dqlite.connect_leader({ dead, followers[1] }, { tls = ctls, timeout = 2000 })
      assert.is_not_nil(c, at)
      assert.are.equal(leader, at)
      assert.are.equal(leader, c:leader().address)
      c:close()
      local none, msg, code = dqlite.connect_leader({ dead }, { tls = ctls, timeout = 1000 })
      assert.is_nil(none)
      assert.are.equal("NOLEADER", code)
      assert.matches(dead, msg, 1, true)
    end)

    it("adds a spare, assigns it a role and removes it, on the leader only", function()
      local leader, followers = leader_and_followers()
      local c <close> = assert(dqlite.connect(leader, { tls = ctls }))
      local fid = 4242
      assert.is_true(c:add(fid, "127.0.0.237:1"))
      local function role_of(id)
        for _, m in ipairs(assert(c:cluster())) do
          if m.id == id then return m.role end
        end
      end
      assert.are.equal("spare", role_of(fid))
      assert.is_true(c:assign(fid, "standby"))
      assert.are.equal("standby", role_of(fid))
      assert.is_true(c:assign(fid, "spare"))
      assert.is_true(c:remove(fid))
      assert.is_nil(role_of(fid))
      local f <close> = assert(dqlite.connect(followers[1], { tls = ctls }))
      local r, msg, code = f:add(fid + 1, "127.0.0.237:2")
      assert.is_nil(r)
      assert.are.equal("NOTLEADER", code)
      assert.matches("dqlite " .. followers[1] .. ": add", msg, 1, true)
      assert.has_error(function() c:assign(fid, "king") end)
      assert.has_error(function() c:remove(0) end)
    end)
  end)

  describe("SQL", function()
    it("stores and reads back every column type, with parameters, seen alike by the go-dqlite shell", function()
      local c <close> = assert(dqlite.connect(plain.address))
      assert.is_true(c:open("types"))
      assert(c:exec("CREATE TABLE t(i INTEGER, f REAL, s TEXT, b BLOB, n TEXT, flag BOOLEAN, at DATETIME)"))
      local n, last = c:exec("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?)",
        { -9007199254740993, 2.5, "héllo", "\0\1\255", yaml.null, true, "2024-05-06 07:08:09" })
      assert.are.equal(1, n)
      assert.are.equal(1, last)
      n, last = c:exec("INSERT INTO t(i, flag) VALUES (?, ?)", { math.maxinteger, false })
      assert.are.equal(1, n)
      assert.are.equal(2, last)
      local rows = assert(c:query("SELECT * FROM t ORDER BY rowid"))
      assert.are.equal(2, #rows)
      assert.are.same({ i = -9007199254740993, f = 2.5, s = "héllo", b = "\0\1\255", n = yaml.null, flag = true,
        at = rows[1].at }, rows[1])
      assert.matches("^2024%-05%-06[ T]07:08:09", rows[1].at)
      assert.are.equal(math.maxinteger, rows[2].i)
      assert.are.equal(false, rows[2].flag)
      assert.are.equal(yaml.null, rows[2].s)
      assert.are.equal(yaml.null, rows[2].at)
      assert.is_true(math.type(rows[1].i) == "integer" and math.type(rows[1].f) == "float")
      -- the same rows through the independent client
      local out = fake.shell(plain, nil, "types", "SELECT i, f, s, hex(b) FROM t ORDER BY rowid")
      assert.matches("-9007199254740993|2.5|héllo|0001FF", out, 1, true)
      assert.matches(tostring(math.maxinteger), out, 1, true)
      -- an empty result, a result without rows, and misuse
      assert.are.same({}, c:query("SELECT * FROM t WHERE i = ?", { 7 }))
      assert.has_error(function() c:query("SELECT ?", { {} }) end)
      assert.has_error(function() c:query("SELECT ?", { x = 1 }) end)
    end)

    it("reads a result of 10000 rows sent in several batches", function()
      local c <close> = assert(dqlite.connect(plain.address))
      assert(c:open("big"))
      local rows = assert(c:query([[WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 10000)
        SELECT x, printf('%090d', x) AS pad FROM n]]))
      assert.are.equal(10000, #rows)
      for i = 1, 10000, 997 do
        assert.are.equal(i, rows[i].x)
        assert.are.equal(string.format("%090d", i), rows[i].pad)
      end
      assert.are.equal(10000, rows[10000].x)
      -- the connection is still in step afterwards
      assert.are.same({ { one = 1 } }, c:query("SELECT 1 AS one"))
    end)

    it("runs prepared statements (PREPARE, EXEC, QUERY in batches, FINALIZE) and registers as a client", function()
      local c <close> = assert(dqlite.connect(plain.address))
      assert.is_true(c:client(7))
      assert(c:open("stmts"))
      assert(c:exec("CREATE TABLE p(a INTEGER, b TEXT)"))
      local ins, nparams = assert(c:prepare("INSERT INTO p VALUES (?, ?)"))
      assert.are.equal(2, nparams)
      for i = 1, 3000 do
        local n = c:exec_stmt(ins, { i, string.rep("x", i % 50) })
        assert.are.equal(1, n)
      end
      assert.is_true(c:finalize(ins))
      local sel = assert(c:prepare("SELECT a, b FROM p WHERE a > ? ORDER BY a"))
      local rows = assert(c:query_stmt(sel, { 10 }))
      assert.are.equal(2990, #rows)
      assert.are.same({ a = 3000, b = string.rep("x", 0) }, rows[2990])
      assert.are.same({ a = 11, b = string.rep("x", 11) }, rows[1])
      assert.are.equal(3, #assert(c:query_stmt(sel, { 2997 })))
      assert.is_true(c:finalize(sel))
      local r, _, code = c:query_stmt(sel, { 1 })
      assert.is_nil(r)
      assert.are.equal("DQLITE", code)
      r, _, code = c:prepare("SELEKT 1")
      assert.is_nil(r)
      assert.are.equal("DQLITE", code)
    end)

    it("commits and rolls back transactions; a duplicate key is EEXIST", function()
      local c <close> = assert(dqlite.connect(tlsnode.address, { tls = ctls }))
      assert(c:open("tx"))
      assert(c:exec("CREATE TABLE kv(k TEXT PRIMARY KEY, v INTEGER)"))
      assert.are.same({ "done" }, { c:transaction(function(t)
        assert(t:exec("INSERT INTO kv VALUES ('a', 1)"))
        assert(t:exec("INSERT INTO kv VALUES ('b', 2)"))
        return "done"
      end) })
      local r, msg = c:transaction(function(t)
        assert(t:exec("INSERT INTO kv VALUES ('c', 3)"))
        return nil, "changed my mind"
      end)
      assert.is_nil(r)
      assert.are.equal("changed my mind", msg)
      assert.has_error(function()
        c:transaction(function(t)
          assert(t:exec("INSERT INTO kv VALUES ('d', 4)"))
          error("boom")
        end)
      end, nil)
      assert.are.same({ { k = "a" }, { k = "b" } }, c:query("SELECT k FROM kv ORDER BY k"))
      local n, emsg, code = c:exec("INSERT INTO kv VALUES ('a', 9)")
      assert.is_nil(n)
      assert.are.equal("EEXIST", code)
      assert.matches("dqlite " .. tlsnode.address .. ": exec: UNIQUE constraint failed", emsg, 1, true)
      local bad, bmsg, bcode = c:exec("INSERT INTO nosuch VALUES (1)")
      assert.is_nil(bad)
      assert.are.equal("DQLITE", bcode)
      assert.matches("no such table", bmsg, 1, true)
      -- visible to the go-dqlite shell over TLS
      assert.matches("a|1\nb|2", fake.shell(tlsnode, certs, "tx", "SELECT k, v FROM kv ORDER BY k"), 1, true)
    end)

    it("writes through the leader of the cluster, and a follower answers NOTLEADER", function()
      local leader, followers = leader_and_followers()
      local c <close> = assert(dqlite.connect(leader, { tls = ctls }))
      assert(c:open("cluster"))
      assert(c:exec("CREATE TABLE IF NOT EXISTS w(x INTEGER)"))
      assert.are.equal(1, c:exec("INSERT INTO w VALUES (?)", { 77 }))
      local f <close> = assert(dqlite.connect(followers[1], { tls = ctls }))
      assert(f:open("cluster"))
      local r, msg, code = f:exec("INSERT INTO w VALUES (1)")
      assert.is_nil(r)
      assert.are.equal("NOTLEADER", code)
      assert.matches("dqlite " .. followers[1] .. ": exec", msg, 1, true)
      assert.matches("77", fake.shell(nodes, certs, "cluster", "SELECT x FROM w"), 1, true)
    end)
  end)

  describe("failures", function()
    it("refuses a server whose certificate another CA signed, and a wrong server name, with TLS", function()
      local other_ca, other_key = assert(require("juju.crypto").new_ca("other"))
      local c, msg, code = dqlite.connect(tlsnode.address, { tls = { ca = other_ca, cert = certs.cert, key = certs.key } })
      assert.is_nil(c)
      assert.are.equal("TLS", code)
      assert.matches("dqlite " .. tlsnode.address, msg, 1, true)
      assert.matches("verif", msg)
      c, msg, code = dqlite.connect(tlsnode.address, { tls = { ca = certs.ca, cert = certs.cert, key = certs.key,
        server_name = "not-juju" } })
      assert.is_nil(c)
      assert.are.equal("TLS", code, msg)
      -- an IP address is checked as one (the certificate names 127.0.0.237, not 10.9.9.9)
      local ok <close> = assert(dqlite.connect(tlsnode.address, { tls = { ca = certs.ca, cert = certs.cert,
        key = certs.key, server_name = "127.0.0.237" } }))
      assert.are.equal(tlsnode.address, ok:leader().address)
      c, msg, code = dqlite.connect(tlsnode.address, { tls = { ca = certs.ca, cert = certs.cert, key = certs.key,
        server_name = "10.9.9.9" } })
      assert.is_nil(c)
      assert.are.equal("TLS", code, msg)
      -- a client certificate of another CA, and none at all, are refused by the server
      local ocert, okey = assert(require("juju.crypto").new_server_cert(other_ca, other_key,
        { hostnames = { "juju-dqlite" } }))
      c, msg, code = dqlite.connect(tlsnode.address, { tls = { ca = certs.ca, cert = ocert, key = okey } })
      assert.is_nil(c)
      assert.are.equal("TLS", code, msg)
      c, msg, code = dqlite.connect(tlsnode.address, { tls = { ca = certs.ca } })
      assert.is_nil(c)
      assert.are.equal("TLS", code, msg)
      -- plain TCP to a TLS node is not Dqlite
      c, msg, code = dqlite.connect(tlsnode.address, { timeout = 1000 })
      assert.is_nil(c)
      assert.is_truthy(code == "EIO" or code == "PROTO" or code == "TIMEOUT", msg)
      assert.has_error(function() dqlite.connect(tlsnode.address, { tls = { ca = certs.ca, cert = certs.cert } }) end)
    end)

    it("reports a closed port as CONNECT naming the address", function()
      local addr = string.format("127.0.0.233:%d", server.free_port("127.0.0.233"))
      local c, msg, code = dqlite.connect(addr)
      assert.is_nil(c)
      assert.are.equal("CONNECT", code)
      assert.matches("dqlite " .. addr .. ": connect", msg, 1, true)
      c, msg, code = dqlite.connect("no-port")
      assert.is_nil(c)
      assert.are.equal("EINVAL", code)
      assert.matches("no-port", msg, 1, true)
    end)

    it("reports a server that stops answering as TIMEOUT within the timeout", function()
      local c <close> = assert(dqlite.connect(plain.address, { timeout = 500 }))
      plain:freeze()
      plain.frozen = true
      sys.sleep(0.2) -- the signal is delivered asynchronously
      local t0 = sys.monotonic()
      local r, msg, code = c:leader()
      local c2, msg2, code2 = dqlite.connect(plain.address, { timeout = 500 })
      plain:thaw()
      plain.frozen = false
      local took = sys.monotonic() - t0
      assert.is_nil(r)
      assert.are.equal("TIMEOUT", code)
      assert.matches("dqlite " .. plain.address .. ": leader", msg, 1, true)
      assert.is_nil(c2)
      assert.are.equal("TIMEOUT", code2, msg2)
      assert.is_true(took < 3, "took " .. took)
      -- the broken connection stays refused; a new one works
      local again, amsg, acode = c:leader()
      assert.is_nil(again)
      assert.are.equal("EIO", acode, amsg)
      local c3 <close> = assert(dqlite.connect(plain.address))
      assert.are.equal(plain.address, c3:leader().address)
    end)

    it("reports malformed answers as PROTO", function()
      -- a NODE answer whose address has no terminating NUL
      local p, addr = bad_server("127.0.0.233", "0200000001000000" .. "0100000000000000" .. "4141414141414141")
      local c, msg, code = dqlite.connect(addr)
      p:kill()
      p:wait()
      assert.is_nil(c)
      assert.are.equal("PROTO", code, msg)
      -- an answer that claims 32 GiB
      p, addr = bad_server("127.0.0.233", "ffffffff01000000")
      c, msg, code = dqlite.connect(addr)
      p:kill()
      p:wait()
      assert.is_nil(c)
      assert.are.equal("PROTO", code, msg)
      assert.matches("too large", msg, 1, true)
      -- an answer of the wrong type
      p, addr = bad_server("127.0.0.233", "0100000008000000" .. "0000000000000000")
      c, msg, code = dqlite.connect(addr)
      p:kill()
      p:wait()
      assert.is_nil(c)
      assert.are.equal("PROTO", code, msg)
    end)

    it("raises on a closed connection and closes through <close> and __gc", function()
      local c = assert(dqlite.connect(plain.address))
      c:close()
      c:close()
      assert.has_error(function() c:leader() end)
      assert.has_error(function() c:query("SELECT 1") end)
      assert.matches("closed", tostring(c))
      assert(dqlite.connect(plain.address)) -- dropped: __gc closes it
      collectgarbage()
      local q = assert(dqlite.connect(plain.address))
      local r, msg, code = q:exec("SELECT 1")
      assert.is_nil(r)
      assert.are.equal("EINVAL", code)
      assert.matches("open", msg)
      q:close()
    end)
  end)
end)
