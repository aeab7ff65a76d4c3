-- state_sqlite_spec.lua: the state-store contract on the sqlite store, plus
-- what only the sqlite store does (its table, WAL, lock timeouts), and
-- state.open's choice of store.
local state = require("juju.state")
local sqlite = require("juju.sqlite")
local json = require("juju.json")
local yaml = require("juju.yaml")
local helpers = require("helpers")
local contract = require("spec.state_contract")

describe("juju.state.sqlite", function()
  local dir

  setup(function() dir = helpers.tmpdir("juju-state-") end)
  teardown(function() helpers.cleanup() end)
  after_each(function()
    collectgarbage()
    collectgarbage()
  end)

  local function open_store(name)
    local path = dir .. "/" .. name .. ".db"
    return assert(state.open("sqlite", { path = path })), path
  end

  contract.run(describe, it, assert, open_store)

  describe("storage", function()
    it("keeps documents as JSON in docs(coll, id, doc) in WAL mode", function()
      local s, path = open_store("layout")
      local doc = { _id = "u:0", jobs = yaml.array({ 2, 1 }), hasvote = true, n = yaml.null }
      assert.is_true(s:insert("machines", doc))
      s:close()
      local db <close> = assert(sqlite.open(path, { readonly = true }))
      assert.are.same({ { coll = "machines", id = "u:0", doc = json.encode(doc) } },
        db:query("SELECT coll, id, doc FROM docs"))
      assert.are.equal('{"_id":"u:0","hasvote":true,"jobs":[2,1],"n":null}', db:query("SELECT doc FROM docs")[1].doc)
      assert.are.same({ { journal_mode = "wal" } }, db:query("PRAGMA journal_mode"))
    end)

    it("reports TIMEOUT when another connection holds the write lock", function()
      local path = dir .. "/locked.db"
      local s = assert(state.open("sqlite", { path = path, busy_timeout = 20 }))
      local db <close> = assert(sqlite.open(path))
      local r, msg, code
      db:transaction(function(d)
        d:exec([[INSERT INTO docs VALUES ('c', 'x', '{"_id":"x"}')]])
        r, msg, code = s:insert("c", { _id = "y" })
      end)
      assert.is_nil(r)
      assert.are.equal("TIMEOUT", code)
      assert.matches("cannot insert c/y", msg, 1, true)
      -- the store still reads while the other connection writes, and
      -- sees the committed row afterwards
      assert.are.same({ _id = "x" }, s:get("c", "x"))
      r, msg, code = nil, nil, nil
      db:transaction(function()
        r, msg, code = s:update("c", "x", { a = 1 })
      end)
      assert.is_nil(r)
      assert.are.equal("TIMEOUT", code)
      assert.matches("cannot update c/x", msg, 1, true)
      assert.are.same({ _id = "x" }, s:get("c", "x"))
      s:close()
    end)

    it("opens with a missing parent as an error and raises without a path", function()
      local s, msg, code = state.open("sqlite", { path = dir .. "/no/such/dir/state.db" })
      assert.is_nil(s)
      assert.are.equal("ENOENT", code)
      assert.matches("no/such/dir/state.db", msg, 1, true)
      assert.has_error(function() state.open("sqlite", {}) end)
      assert.has_error(function() state.open("sqlite") end)
    end)

    it("raises when used after close, and closes through <close> and __gc", function()
      local s = open_store("closing")
      s:close()
      assert.has_error(function() s:get("c", "x") end)
      assert.has_error(function() s:count("c") end)
      assert.are.equal("sqlite", s:kind())
      do
        local scoped <close> = open_store("closing")
        assert.are.equal(0, scoped:count("c"))
      end
      open_store("closing") -- dropped: __gc closes it
      collectgarbage()
    end)
  end)

  describe("state.open", function()
    local saved = {}
    before_each(function()
      saved.path, saved.cpath = package.path, package.cpath
      saved.loaded, saved.preload = package.loaded["juju.state.mongodb"], package.preload["juju.state.mongodb"]
      package.loaded["juju.state.mongodb"] = nil
    end)
    after_each(function()
      package.path, package.cpath = saved.path, saved.cpath
      package.loaded["juju.state.mongodb"], package.preload["juju.state.mongodb"] = saved.loaded, saved.preload
    end)

    it("says mongodb is unavailable when its module is missing", function()
      package.path, package.cpath = "", ""
      package.preload["juju.state.mongodb"] = nil
      local s, msg, code = state.open("mongodb", { uri = "mongodb://127.0.0.1:1" })
      assert.is_nil(s)
      assert.are.equal('state store "mongodb" is not available', msg)
      assert.are.equal("UNSUPPORTED", code)
    end)

    it("says why when the mongodb module cannot load", function()
      package.preload["juju.state.mongodb"] = function() error("libmongoc is missing") end
      local s, msg, code = state.open("mongodb", {})
      assert.is_nil(s)
      assert.matches('state store "mongodb" is not available: .*libmongoc is missing', msg)
      assert.are.equal("UNSUPPORTED", code)
    end)

    it("hands opts to the mongodb module's open", function()
      local seen
      package.preload["juju.state.mongodb"] = function()
        return { open = function(opts) seen = opts; return "a store" end }
      end
      local opts = { uri = "mongodb://x" }
      assert.are.equal("a store", state.open("mongodb", opts))
      assert.are.equal(opts, seen)
    end)

    it("raises on an unknown kind or bad opts", function()
      assert.has_error(function() state.open("postgres", {}) end)
      assert.has_error(function() state.open(nil, {}) end)
      assert.has_error(function() state.open("sqlite", "path") end)
    end)
  end)
end)
