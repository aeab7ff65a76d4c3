-- state_dqlite_retry_spec.lua: the dqlite store's failover rules, pinned on
-- a scripted juju.dqlite (statements run on a real SQLite file through
-- juju.sqlite, with faults injected before or after a statement applies):
-- a read is retried on the new leader, an idempotent write is run again, an
-- insert whose answer was lost is re-checked, a statement's own failure is
-- never retried, and no leader at all is NOLEADER.
local sqlite = require("juju.sqlite")
local json = require("juju.json")
local helpers = require("helpers")

describe("juju.state.dqlite failover rules", function()
  local dir, db, faults, connects, leaders_down, store_mod
  local saved = {}

  -- One fault: {op = "exec"|"query", when = "before"|"after", code =, hook = fn}.
  local function take_fault(op)
    local f = faults[1]
    if f and f.op == op then
      table.remove(faults, 1)
      return f
    end
  end

  local Conn = {}
  Conn.__index = Conn
  function Conn.open() return true end
  function Conn:close() self.closed = true end
  function Conn.cluster()
    return { { id = 1, address = "n1:1", role = "voter" }, { id = 2, address = "n2:1", role = "voter" } }
  end
  function Conn:transaction(fn)
    return db:transaction(function() return fn(self) end)
  end
  local function run(self, op, sql, params)
    assert(not self.closed, "statement on a closed connection")
    local f = take_fault(op)
    if f and f.when == "before" then
      if f.hook then f.hook() end
      return nil, "dqlite " .. self.at .. ": " .. op .. ": injected", f.code
    end
    local r, msg, code
    if op == "exec" then
      r, msg, code = db:exec(sql, params)
    else
      r, msg, code = db:query(sql, params)
    end
    if f then return nil, "dqlite " .. self.at .. ": " .. op .. ": injected after", f.code end
    if r == nil then return nil, msg, code end
    if op == "exec" then return r, 0 end
    return r
  end
  function Conn:exec(sql, params) return run(self, "exec", sql, params) end
  function Conn:query(sql, params) return run(self, "query", sql, params) end

  local fake = {
    null = require("juju.yaml").null,
    connect_leader = function(servers)
      connects = connects + 1
      if leaders_down > 0 then
        leaders_down = leaders_down - 1
        return nil, "dqlite: no leader among " .. #servers .. " servers", "NOLEADER"
      end
      local at = servers[(connects - 1) % #servers + 1]
      return setmetatable({ at = at }, Conn), at
    end,
  }

  setup(function()
    dir = helpers.tmpdir("juju-state-dqlite-retry-")
    saved.dqlite, saved.store = package.loaded["juju.dqlite"], package.loaded["juju.state.dqlite"]
    package.loaded["juju.dqlite"] = fake
    package.loaded["juju.state.dqlite"] = nil
    store_mod = require("juju.state.dqlite")
  end)
  teardown(function()
    package.loaded["juju.dqlite"], package.loaded["juju.state.dqlite"] = saved.dqlite, saved.store
    if db then db:close() end
    helpers.cleanup()
  end)

  local n = 0
  before_each(function()
    n = n + 1
    if db then db:close() end
    db = assert(sqlite.open(dir .. "/db" .. n .. ".db"))
    faults, connects, leaders_down = {}, 0, 0
  end)

  local function open()
    return assert(store_mod.open({ servers = { "n1:1", "n2:1" }, failover_timeout = 2000 }))
  end

  local function rows()
    return db:query("SELECT coll, id, doc FROM docs ORDER BY id")
  end

  it("an insert whose answer was lost after it applied is ours: true, once", function()
    local s <close> = open()
    faults = { { op = "exec", when = "after", code = "EIO" } }
    assert.is_true(s:insert("c", { _id = "x", v = 1 }))
    assert.are.equal(2, connects)
    assert.are.same({ { coll = "c", id = "x", doc = json.encode({ _id = "x", v = 1 }) } }, rows())
    local _, leader = s:servers()
    assert.are.equal("n2:1", leader)
  end)

  it("an insert lost before it applied is inserted on the new leader", function()
    local s <close> = open()
    faults = { { op = "exec", when = "before", code = "NOTLEADER" } }
    assert.is_true(s:insert("c", { _id = "y", v = 2 }))
    assert.are.equal(1, #rows())
  end)

  it("an insert lost while another writer took the id is EEXIST, and the other document stays", function()
    local s <close> = open()
    faults = { { op = "exec", when = "before", code = "TIMEOUT", hook = function()
      assert(db:exec([[INSERT INTO docs VALUES ('c', 'z', '{"_id":"z","other":true}')]]))
    end } }
    local r, msg, code = s:insert("c", { _id = "z", v = 3 })
    assert.is_nil(r)
    assert.are.equal("EEXIST", code)
    assert.matches("cannot insert c/z: document already exists", msg, 1, true)
    assert.are.equal('{"_id":"z","other":true}', rows()[1].doc)
  end)

  it("a read that meets a follower is retried on the new leader", function()
    local s <close> = open()
    assert.is_true(s:insert("c", { _id = "r", v = 4 }))
    faults = { { op = "query", when = "before", code = "NOTLEADER" } }
    assert.are.same({ _id = "r", v = 4 }, s:get("c", "r"))
    assert.are.equal(2, connects)
  end)

  it("an update whose answer was lost is run again (idempotent)", function()
    local s <close> = open()
    assert.is_true(s:insert("c", { _id = "u", v = 1 }))
    faults = { { op = "exec", when = "after", code = "EIO" } }
    assert.is_true(s:update("c", "u", { v = 2 }))
    assert.are.same({ _id = "u", v = 2 }, s:get("c", "u"))
    faults = { { op = "exec", when = "after", code = "EIO" } }
    assert.is_true(s:remove("c", "u"))
    assert.are.equal(0, s:count("c"))
  end)

  it("never retries a statement's own failure", function()
    local s <close> = open()
    faults = { { op = "query", when = "before", code = "DQLITE" } }
    local r, _, code = s:get("c", "x")
    assert.is_nil(r)
    assert.are.equal("DQLITE", code)
    assert.are.equal(1, connects)
  end)

  it("waits for a leader, and gives up with NOLEADER after failover_timeout", function()
    leaders_down = 3
    local s <close> = open()
    assert.are.equal(4, connects)
    assert.is_true(s:insert("c", { _id = "w" }))
    faults = { { op = "query", when = "before", code = "EIO" } }
    leaders_down = 1000
    local r, msg, code = s:count("c")
    assert.is_nil(r)
    assert.are.equal("NOLEADER", code)
    assert.matches("no leader", msg, 1, true)
    local members, _, mcode = s:members()
    assert.is_nil(members)
    assert.are.equal("NOLEADER", mcode)
  end)

  it("marks the leader among the members", function()
    local s <close> = open()
    local members = assert(s:members())
    assert.are.same({ { id = 1, address = "n1:1", role = "voter", leader = true },
      { id = 2, address = "n2:1", role = "voter", leader = false } }, members)
  end)
end)
