-- state_contract.lua: the behaviour every juju.state store must have,
-- as busted tests that any store's spec registers:
--
--   require("spec.state_contract").run(describe, it, assert, open_store)
--
-- open_store(name) -> store [, path]: opens the store called name (the same
-- name opens the same database again, a new name an empty one); path, when
-- the store lives in a file, lets the contract check the file's mode.
local yaml = require("juju.yaml")
local fs = require("juju.fs")

local M = {}

function M.run(describe, it, assert, open_store)
  local counter = 0
  local function fresh_name()
    counter = counter + 1
    return string.format("contract-%d-%d", os.time(), counter)
  end

  -- Runs fn(store, name, path) with a fresh store, closing it afterwards
  -- even when an assertion fails.
  local function with_store(fn)
    local name = fresh_name()
    local store, path = open_store(name)
    assert.is_not_nil(store, path)
    local ok, err = pcall(fn, store, name, path)
    store:close()
    if not ok then error(err, 0) end
  end

  local function expect_error(want_code, r, msg, code)
    assert.is_nil(r)
    assert.is_string(msg)
    assert.are.equal(want_code, code)
  end

  describe("state store contract", function()
    it("names its kind", function()
      with_store(function(s)
        local kind = s:kind()
        assert.is_true(kind == "sqlite" or kind == "dqlite" or kind == "mongodb")
      end)
    end)

    it("inserts, gets, and refuses a duplicate _id with EEXIST", function()
      with_store(function(s)
        assert.is_true(s:insert("machines", { _id = "u:0", series = "trusty", life = 0 }))
        assert.are.same({ _id = "u:0", series = "trusty", life = 0 }, s:get("machines", "u:0"))
        expect_error("EEXIST", s:insert("machines", { _id = "u:0", series = "xenial" }))
        assert.are.same({ _id = "u:0", series = "trusty", life = 0 }, s:get("machines", "u:0"))
        assert.are.equal(1, s:count("machines"))
      end)
    end)

    it("keeps collections apart and reports a missing document with ENOENT", function()
      with_store(function(s)
        assert.is_true(s:insert("users", { _id = "admin", name = "admin" }))
        expect_error("ENOENT", s:get("users", "nobody"))
        expect_error("ENOENT", s:get("machines", "admin"))
        assert.is_true(s:insert("machines", { _id = "admin", other = true }))
        assert.are.same({ _id = "admin", name = "admin" }, s:get("users", "admin"))
        assert.are.same({ _id = "admin", other = true }, s:get("machines", "admin"))
      end)
    end)

    it("ensure inserts once and leaves an existing document untouched", function()
      with_store(function(s)
        assert.are.equal("inserted", s:ensure("settings", { _id = "u:e", a = 1 }))
        assert.are.equal("exists", s:ensure("settings", { _id = "u:e", a = 2, b = 3 }))
        assert.are.equal("exists", s:ensure("settings", { _id = "u:e" }))
        assert.are.same({ _id = "u:e", a = 1 }, s:get("settings", "u:e"))
        assert.are.equal(1, s:count("settings"))
      end)
    end)

    it("finds documents sorted by _id, filtered by top-level equality", function()
      with_store(function(s)
        local ids = { "u:10", "u:2", "u:1", "a", "u:b", "Z" }
        for i, id in ipairs(ids) do
          assert.is_true(s:insert("machines", {
            _id = id, series = (i % 2 == 0) and "trusty" or "precise", n = i,
            tags = yaml.array({ "t" .. (i % 3) }),
          }))
        end
        assert.is_true(s:insert("other", { _id = "b", series = "trusty" }))
        local all = s:find("machines")
        local got = {}
        for _, d in ipairs(all) do got[#got + 1] = d._id end
        assert.are.same({ "Z", "a", "u:1", "u:10", "u:2", "u:b" }, got)
        assert.are.same({ _id = "u:2", series = "trusty", n = 2, tags = { "t2" } }, all[5])

        got = {}
        for _, d in ipairs(s:find("machines", { series = "trusty" })) do got[#got + 1] = d._id end
        assert.are.same({ "Z", "a", "u:2" }, got)
        local one = s:find("machines", { series = "trusty", n = 6 })
        assert.are.equal(1, #one)
        assert.are.equal("Z", one[1]._id)
        local by_array = s:find("machines", { tags = yaml.array({ "t0" }) })
        assert.are.equal(2, #by_array)
        assert.are.equal("Z", by_array[1]._id)
        assert.are.equal("u:1", by_array[2]._id)
        assert.are.same({}, s:find("machines", { series = "xenial" }))
        assert.are.same({}, s:find("machines", { nosuchfield = 1 }))
        assert.are.same({}, s:find("empty"))
        assert.are.equal(6, #s:find("machines", {}))
      end)
    end)

    it("update sets top-level fields, removes null ones, and needs the document", function()
      with_store(function(s)
        assert.is_true(s:insert("machines", { _id = "u:0", a = 1, b = { c = 2 }, keep = "yes" }))
        assert.is_true(s:update("machines", "u:0", { a = 5, b = { d = 3 }, gone = yaml.null, new = "x" }))
        assert.are.same({ _id = "u:0", a = 5, b = { d = 3 }, keep = "yes", new = "x" }, s:get("machines", "u:0"))
        assert.is_true(s:update("machines", "u:0", { keep = yaml.null }))
        assert.are.same({ _id = "u:0", a = 5, b = { d = 3 }, new = "x" }, s:get("machines", "u:0"))
        expect_error("ENOENT", s:update("machines", "u:1", { a = 1 }))
        expect_error("ENOENT", s:get("machines", "u:1"))
        assert.are.equal(1, s:count("machines"))
      end)
    end)

    it("upsert inserts when absent and updates when present", function()
      with_store(function(s)
        assert.is_true(s:upsert("presence", "u:m#0", { machine = "0", time = 100, skip = yaml.null }))
        assert.are.same({ _id = "u:m#0", machine = "0", time = 100 }, s:get("presence", "u:m#0"))
        assert.is_true(s:upsert("presence", "u:m#0", { time = 130, pid = 42 }))
        assert.are.same({ _id = "u:m#0", machine = "0", time = 130, pid = 42 }, s:get("presence", "u:m#0"))
        assert.are.equal(1, s:count("presence"))
      end)
    end)

    it("removes documents, missing ones included, and counts per collection", function()
      with_store(function(s)
        for i = 1, 3 do assert.is_true(s:insert("a", { _id = tostring(i) })) end
        assert.is_true(s:insert("b", { _id = "1" }))
        assert.are.equal(3, s:count("a"))
        assert.are.equal(1, s:count("b"))
        assert.are.equal(0, s:count("c"))
        assert.is_true(s:remove("a", "2"))
        assert.is_true(s:remove("a", "2"))
        assert.is_true(s:remove("c", "nothing"))
        assert.are.equal(2, s:count("a"))
        assert.are.equal(1, s:count("b"))
        expect_error("ENOENT", s:get("a", "2"))
        assert.are.equal("math.integer", "math." .. math.type(s:count("a")))
      end)
    end)

    it("round-trips nested tables, arrays, integers, floats, booleans and null", function()
      with_store(function(s)
        local doc = {
          _id = "u:weird id/with:chars#0 é",
          int = 9007199254740993, neg = -17, zero = 0, max = math.maxinteger,
          float = 0.5, tiny = -1.25e-10,
          yes = true, no = false, none = yaml.null,
          text = "quote \" backslash \\ newline \n tab \t <&> ünï©ødé",
          empty_text = "",
          list = yaml.array({ 1, "two", { three = 3 }, yaml.array({ 4 }), yaml.null }),
          empty_list = yaml.array(),
          empty_map = {},
          nested = { a = { b = { c = { d = "deep" } } }, ["key.with.dots"] = 1 },
        }
        assert.is_true(s:insert("docs", doc))
        local got = assert(s:get("docs", doc._id))
        assert.are.same(doc, got)
        assert.are.equal("integer", math.type(got.int))
        assert.are.equal(9007199254740993, got.int)
        assert.are.equal("integer", math.type(got.max))
        assert.are.equal("float", math.type(got.float))
        assert.are.equal(yaml.null, got.none)
        assert.is_true(yaml.is_array(got.list))
        assert.is_true(yaml.is_array(got.list[4]))
        assert.is_true(yaml.is_array(got.empty_list))
        assert.is_false(yaml.is_array(got.empty_map))
        assert.are.equal(yaml.null, got.list[5])
        assert.are.same(got, s:find("docs")[1])
      end)
    end)

    it("lets two stores on one database see each other's writes", function()
      with_store(function(a, name)
        local b = open_store(name)
        local ok, err = pcall(function()
          assert.is_true(a:insert("machines", { _id = "u:0", v = 1 }))
          assert.are.same({ _id = "u:0", v = 1 }, b:get("machines", "u:0"))
          assert.is_true(b:update("machines", "u:0", { v = 2 }))
          assert.are.same({ _id = "u:0", v = 2 }, a:get("machines", "u:0"))
          expect_error("EEXIST", b:insert("machines", { _id = "u:0" }))
          assert.are.equal("exists", b:ensure("machines", { _id = "u:0" }))
          assert.is_true(b:remove("machines", "u:0"))
          assert.are.equal(0, a:count("machines"))
        end)
        b:close()
        if not ok then error(err, 0) end
      end)
    end)

    it("keeps its file private (0600)", function()
      with_store(function(s, _, path)
        assert.is_true(s:insert("users", { _id = "admin", passwordhash = "secret" }))
        if path then
          local st = assert(fs.stat(path))
          assert.are.equal(tonumber("600", 8), st.mode & tonumber("777", 8))
        end
      end)
    end)

    it("raises on misuse and closes idempotently", function()
      local s = open_store(fresh_name())
      assert.has_error(function() s:insert("c", { name = "no id" }) end)
      assert.has_error(function() s:insert("c", { _id = 7 }) end)
      assert.has_error(function() s:insert("c", "doc") end)
      assert.has_error(function() s:ensure("c", {}) end)
      assert.has_error(function() s:get("c", 7) end)
      assert.has_error(function() s:insert(nil, { _id = "x" }) end)
      assert.has_error(function() s:update("c", "x", "fields") end)
      assert.has_error(function() s:insert("c", { _id = "x", f = print }) end)
      assert.are.equal(0, s:count("c"))
      s:close()
      s:close()
    end)
  end)
end

return M
