-- state_dqlite_spec.lua: the state-store contract on the dqlite store over a
-- TLS cluster of three go-dqlite nodes (127.0.0.230-.232, free ports), plus
-- what only the dqlite store does: its members, its table as the go-dqlite
-- shell sees it, and failover: kill -9 the leader during a stream of writes,
-- and every acknowledged write is still there.
local state = require("juju.state")
local json = require("juju.json")
local yaml = require("juju.yaml")
local sys = require("juju.sys")
local server = require("juju.testing.server")
local helpers = require("helpers")
local contract = require("spec.state_contract")
local fake = require("servers.dqlite.fake")

describe("juju.state.dqlite", function()
  local dir, certs, nodes, addresses, ctls

  setup(function()
    dir = helpers.tmpdir("juju-state-dqlite-")
    local hosts = { "127.0.0.230", "127.0.0.231", "127.0.0.232" }
    certs = fake.certs(dir, hosts)
    ctls = fake.client_tls(certs)
    nodes = fake.cluster { tag = "state", tls = certs, hosts = hosts, data_dir = dir .. "/nodes" }
    addresses = {}
    for i, n in ipairs(nodes) do addresses[i] = n.address end
  end)
  teardown(function()
    for _, n in ipairs(nodes or {}) do n:stop() end
    helpers.cleanup()
  end)
  after_each(function()
    collectgarbage()
    collectgarbage()
  end)

  local function open_store(name)
    return assert(state.open("dqlite", { servers = addresses, tls = ctls, database = name }))
  end

  contract.run(describe, it, assert, open_store)

  describe("cluster", function()
    it("lists its members with the leader marked, and its servers", function()
      local s <close> = open_store("members")
      local members = assert(s:members())
      assert.are.equal(3, #members)
      local leaders, seen = {}, {}
      for _, m in ipairs(members) do
        assert.are.equal("voter", m.role)
        assert.is_number(m.id)
        seen[m.address] = true
        if m.leader then leaders[#leaders + 1] = m.address end
      end
      for _, a in ipairs(addresses) do assert.is_true(seen[a], a) end
      local list, leader = s:servers()
      assert.are.same(addresses, list)
      assert.are.same({ leader }, leaders)
    end)

    it("keeps documents as JSON in docs(coll, id, doc), as the go-dqlite shell reads them", function()
      local s <close> = open_store("layout")
      local doc = { _id = "u:0", jobs = yaml.array({ 2, 1 }), hasvote = true, n = yaml.null }
      assert.is_true(s:insert("machines", doc))
      local out = fake.shell(addresses, certs, "layout", "SELECT coll, id, doc FROM docs")
      assert.matches("machines|u:0|" .. json.encode(doc), out, 1, true)
      assert.matches('{"_id":"u:0","hasvote":true,"jobs":[2,1],"n":null}', out, 1, true)
    end)

    it("fails to open with NOLEADER when no server answers, and raises without servers", function()
      local dead = string.format("127.0.0.232:%d", server.free_port("127.0.0.232"))
      local t0 = sys.monotonic()
      local s, msg, code = state.open("dqlite", { servers = { dead }, tls = ctls, failover_timeout = 500 })
      assert.is_nil(s)
      assert.are.equal("NOLEADER", code)
      assert.matches(dead, msg, 1, true)
      assert.is_true(sys.monotonic() - t0 < 5)
      assert.has_error(function() state.open("dqlite", {}) end)
      assert.has_error(function() state.open("dqlite", { servers = { 7 } }) end)
    end)

    it("waits out other connections' transactions: concurrent writers never fail with database is locked", function()
      local script = dir .. "/writer.lua"
      helpers.write(script, [[
local state = require("juju.state")
local json = require("juju.json")
local cfg = json.decode(io.open(arg[1]):read("a"))
local s = assert(state.open("dqlite", { servers = cfg.servers, tls = cfg.tls, database = "busy" }))
local failed = 0
for i = 1, 60 do
  local ok, err = s:upsert("presence", "m#" .. arg[2], { n = i })
  if not ok then failed = failed + 1; io.stderr:write(tostring(err), "\n") end
  ok, err = s:upsert("shared", "counter", { last = arg[2] .. ":" .. i })
  if not ok then failed = failed + 1; io.stderr:write(tostring(err), "\n") end
end
s:close()
io.write(failed, "\n")
os.exit(failed == 0 and 0 or 1)
]])
      local cfgfile = dir .. "/writer.json"
      helpers.write(cfgfile, json.encode({ servers = addresses, tls = ctls }))
      local exe = os.getenv("JUJU_TEST_BUILD_DIR") .. "/bin/juju"
      local procs = {}
      for w = 1, 4 do
        procs[w] = assert(sys.spawn({ exe, "lua", script, cfgfile, tostring(w) }))
      end
      for w, p in ipairs(procs) do
        local out, err = p:read_all(120)
        local code = p:wait(10)
        assert.are.equal(0, code, string.format("writer %d: %s %s", w, tostring(out), tostring(err)))
      end
      local st <close> = open_store("busy")
      assert.are.equal(4, st:count("presence"))
      for w = 1, 4 do assert.are.equal(60, assert(st:get("presence", "m#" .. w)).n) end
    end)

    it("raises when used after close", function()
      local s = open_store("closing")
      s:close()
      s:close()
      assert.has_error(function() s:get("c", "x") end)
      assert.are.equal("dqlite", s:kind())
    end)
  end)

  -- Last: it kills a node of the cluster.
  describe("failover", function()
    it("finds the new leader when the leader is killed during writes, and loses no acknowledged write", function()
      local s <close> = open_store("failover")
      local _, leader = s:servers()
      assert.is_string(leader)
      local acked, failed = {}, {}
      local killed_at, killed
      local t_kill, t_first_after
      for i = 1, 120 do
        if i == 41 then
          for _, n in ipairs(nodes) do
            if n.address == leader then
              n:kill()
              killed_at, killed = n.address, n
            end
          end
          t_kill = sys.monotonic()
        end
        local id = string.format("w:%03d", i)
        local ok1, m1 = s:insert("writes", { _id = id, i = i })
        local ok2, m2 = s:upsert("heartbeat", "agent", { n = i })
        if ok1 and ok2 then
          acked[#acked + 1] = id
          if t_kill and not t_first_after then t_first_after = sys.monotonic() end
        else
          failed[#failed + 1] = id .. ": " .. tostring(m1 or m2)
        end
      end
      assert.are.equal(leader, killed_at)
      assert.are.same({}, failed)
      assert.are.equal(120, #acked)
      local _, new_leader = s:servers()
      assert.is_string(new_leader)
      assert.are_not.equal(leader, new_leader)
      -- every acknowledged write is there, through the store ...
      local got = {}
      for _, d in ipairs(assert(s:find("writes"))) do got[#got + 1] = d._id end
      assert.are.same(acked, got)
      assert.are.same({ _id = "agent", n = 120 }, s:get("heartbeat", "agent"))
      -- ... and through the go-dqlite shell on the surviving nodes
      local alive = {}
      for _, a in ipairs(addresses) do
        if a ~= leader then alive[#alive + 1] = a end
      end
      local out = fake.shell(alive, certs, "failover", "SELECT count(*) FROM docs WHERE coll = 'writes'")
      assert.matches("^120%s", out)
      -- the members now say who leads
      local members = assert(s:members())
      local leaders = {}
      for _, m in ipairs(members) do
        if m.leader then leaders[#leaders + 1] = m.address end
      end
      assert.are.same({ new_leader }, leaders)
      print(string.format("dqlite failover: leader killed -> first acknowledged write in %.2f s",
        t_first_after - t_kill))
      -- the killed node comes back with its data and follows the new leader
      killed:restart()
      local dqlite = require("juju.dqlite")
      local deadline = sys.monotonic() + 30
      local seen
      repeat
        local c <close> = dqlite.connect(killed.address, { tls = ctls, timeout = 2000 })
        local l = c and c:leader()
        seen = l and l.address
        if seen == new_leader then break end
        sys.sleep(0.2)
      until sys.monotonic() > deadline
      assert.are.equal(new_leader, seen)
      assert.is_true(s:insert("writes", { _id = "w:after-restart" }))
      assert.are.equal(121, s:count("writes"))
    end)
  end)
end)
