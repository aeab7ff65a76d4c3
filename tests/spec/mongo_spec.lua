-- mongo_spec.lua: juju.mongo, the libmongoc binding: document conversion,
-- key order, errors, object lifetime; the server is
-- tests/integration/mockupdb_server.py (plain TCP, no authentication).
local mongo = require("juju.mongo")
local yaml = require("juju.yaml")
local json = require("juju.json")
local proc = require("juju.proc")
local fs = require("juju.fs")
local sys = require("juju.sys")
local helpers = require("helpers")

local MOCK = assert(fs.realpath(helpers.source_dir .. "/tests/integration/mockupdb_server.py"))
local FAST = "connectTimeoutMS=2000&serverSelectionTimeoutMS=2000&socketTimeoutMS=5000"

-- Starts the mock on a port of its choosing; returns {uri, pid_file, record}.
local function start_mock(dir, env)
  local log, record = dir .. "/mock.log", dir .. "/mock.jsonl"
  local e = { PATH = os.getenv("PATH"), MOCKUPDB_RECORD = record }
  for k, v in pairs(env or {}) do e[k] = v end
  assert(proc.start_daemon({ "/usr/bin/python3", MOCK, "--port", "0" },
    { log_file = log, pid_file = dir .. "/mock.pid", env = e }))
  local port
  local deadline = sys.monotonic() + 15
  repeat
    port = fs.exists(log) and fs.read_file(log):match("listening on 127%.0%.0%.1:(%d+)")
    if not port then sys.sleep(0.05) end
  until port or sys.monotonic() > deadline
  assert(port, "mockupdb_server did not start: " .. (fs.exists(log) and fs.read_file(log) or ""))
  return {
    uri = string.format("mongodb://127.0.0.1:%s/?directConnection=true&%s", port, FAST),
    pid_file = dir .. "/mock.pid", record = record,
  }
end

-- The recorded requests (decoded JSON lines), optionally only command name.
local function recorded(mock, name)
  local out = {}
  for line in io.lines(mock.record) do
    local r = assert(json.decode(line))
    if not name or r.cmd == name then out[#out + 1] = { r = r, line = line } end
  end
  return out
end

-- Whether the keys appear in this order in the JSON text of a request.
local function in_order(text, keys)
  local last = 0
  for _, k in ipairs(keys) do
    local at = text:find('"' .. k .. '":', last + 1, true)
    if not at then return false end
    last = at
  end
  return true
end

describe("juju.mongo", function()
  local dir

  setup(function() dir = helpers.tmpdir("juju-mongo-") end)
  teardown(function() helpers.cleanup() end)
  after_each(function()
    collectgarbage()
    collectgarbage()
  end)

  it("shares juju.yaml's null", function()
    assert.are.equal(yaml.null, mongo.null)
  end)

  it("refuses a bad URI without echoing it", function()
    local c, msg, code = mongo.client("mongodb://user:pa55word@")
    assert.is_nil(c)
    assert.are.equal("EINVAL", code)
    assert.is_nil(msg:find("pa55word", 1, true))
    c, msg, code = mongo.client("http://example.com")
    assert.is_nil(c)
    assert.are.equal("EINVAL", code)
    assert.is_string(msg)
  end)

  it("reports an unreachable server as TIMEOUT, quickly and without raising", function()
    local c <close> = assert(mongo.client("mongodb://127.0.0.1:1/?connectTimeoutMS=300&serverSelectionTimeoutMS=300"))
    local t0 = sys.monotonic()
    local r, msg, code = c:command("admin", { ping = 1 })
    assert.is_nil(r)
    assert.are.equal("TIMEOUT", code)
    assert.matches("ping on admin", msg, 1, true)
    assert.is_true(sys.monotonic() - t0 < 5)
    r, msg, code = c:insert("juju", "machines", { _id = "0" })
    assert.is_nil(r)
    assert.are.equal("TIMEOUT", code)
    assert.matches("insert juju.machines", msg, 1, true)
  end)

  it("raises on misuse", function()
    assert.has_error(function() mongo.client() end)
    assert.has_error(function() mongo.client("mongodb://127.0.0.1:1/", { bogus = 1 }) end)
    assert.has_error(function() mongo.client("mongodb://127.0.0.1:1/", { tls = "yes" }) end)
    assert.has_error(function() mongo.client("mongodb://127.0.0.1:1/", { tls = { ca = "x" } }) end)
    assert.has_error(function() mongo.client("mongodb://127.0.0.1:1/", { username = 1 }) end)
    local c = assert(mongo.client("mongodb://127.0.0.1:1/?connectTimeoutMS=100"))
    -- A command with several keys must say which comes first.
    assert.has_error(function() c:command("admin", { createUser = "a", pwd = "b" }) end,
      "bad argument #2 to 'command' (a command with several keys needs a key order (juju.yaml.ordered), command name first)")
    assert.has_error(function() c:command("admin", {}) end)
    assert.has_error(function() c:command("", { ping = 1 }) end)
    assert.has_error(function() c:insert("juju", "m", { _id = "x", f = print }) end)
    assert.has_error(function() c:insert("juju", "m", yaml.array({ 1 })) end)
    assert.has_error(function() c:insert("juju", "m", { [1.5] = "float key", x = 1 }) end)
    assert.has_error(function() c:insert("juju", "m", { [1] = "a", ["1"] = "b", x = 1 }) end)
    assert.has_error(function() c:insert("juju", "m", { list = { 1, 2, nil, 4, n = 1 }, x = 1, [true] = 1 }) end)
    assert.has_error(function() c:find("juju", "m", {}, { bogus = 1 }) end)
    assert.has_error(function() c:find("juju", "m", {}, { limit = -1 }) end)
    assert.has_error(function() c:update("juju", "m", {}, {}, { upsert = "yes" }) end)
    local loop = {}
    loop.self = loop
    assert.has_error(function() c:insert("juju", "m", { _id = "l", loop = loop }) end)
    c:close()
    local ok, err = pcall(c.command, c, "admin", { ping = 1 })
    assert.is_false(ok)
    assert.matches("mongo client is closed", err, 1, true)
    c:close() -- idempotent
    assert.are.equal("juju.mongo.Client(closed)", tostring(c))
  end)

  it("cleans up through <close> and __gc", function()
    do
      local c <close> = assert(mongo.client("mongodb://127.0.0.1:1/"))
      assert.are.equal("juju.mongo.Client", tostring(c))
    end
    for _ = 1, 20 do assert(mongo.client("mongodb://127.0.0.1:1/")) end
    collectgarbage()
    collectgarbage()
  end)

  describe("against mockupdb", function()
    local mock, c

    setup(function()
      mock = start_mock(dir, { MOCKUPDB_BATCH = "2" })
      c = assert(mongo.client(mock.uri, { app_name = "mongo-spec" }))
    end)
    teardown(function()
      if c then c:close() end
      if mock then proc.stop(mock.pid_file, { timeout = 5 }) end
    end)

    it("sends command keys in the order given, and documents with _id first then sorted", function()
      local r = assert(c:command("admin", yaml.ordered({ replSetInitiate = yaml.ordered({
        _id = "juju", version = 1,
        members = yaml.array({ yaml.ordered({ _id = 1, host = "10.0.0.1:37017", tags = { ["juju-machine-id"] = "0" } },
          { "_id", "host", "tags" }) }),
      }, { "_id", "version", "members" }) }, { "replSetInitiate" })))
      assert.are.equal(1, r.ok)
      local sent = recorded(mock, "replSetInitiate")[1]
      assert.are.equal(
        'admin replSetInitiate {"_id":"juju","version":1,"members":[{"_id":1,"host":"10.0.0.1:37017",'
        .. '"tags":{"juju-machine-id":"0"}}]}', sent.r.summary)

      assert.is_true(c:insert("juju", "order", { zeta = 1, alpha = 2, _id = "o1", mid = 3 }))
      local ins = recorded(mock, "insert")
      assert.is_true(in_order(ins[#ins].line, { "_id", "alpha", "mid", "zeta" }))
      -- insert's own keys: command name first.
      assert.is_true(in_order(ins[#ins].line, { "insert", "documents", "ordered" }))
    end)

    it("round-trips every value type", function()
      local doc = {
        _id = "types", int = 9007199254740993, small = -17, zero = 0, max = math.maxinteger,
        float = 0.5, whole_float = 2.0, yes = true, no = false, none = yaml.null,
        text = "ünï©ødé \"quoted\"\n", bytes = "\0\255\254 binary", empty_text = "",
        list = yaml.array({ 1, "two", { three = 3 }, yaml.array({ 4 }), yaml.null }),
        proper = { "a", "b" }, empty_list = yaml.array(), empty_map = {},
        nested = { a = { b = { c = "deep" } }, ["dotted.key"] = 1, [7] = "int key" },
      }
      assert.is_true(c:insert("juju", "types", doc))
      local got = assert(c:find_one("juju", "types", { _id = "types" }))
      local want = {}
      for k, v in pairs(doc) do want[k] = v end
      want.nested = { a = { b = { c = "deep" } }, ["dotted.key"] = 1, ["7"] = "int key" }
      assert.are.same(want, got)
      assert.are.equal("integer", math.type(got.int))
      assert.are.equal("integer", math.type(got.max))
      assert.are.equal("float", math.type(got.whole_float))
      assert.are.equal(yaml.null, got.none)
      assert.are.equal(yaml.null, got.list[5])
      assert.is_true(yaml.is_array(got.list))
      assert.is_true(yaml.is_array(got.proper))
      assert.is_true(yaml.is_array(got.empty_list))
      assert.is_false(yaml.is_array(got.empty_map))
      assert.are.equal("\0\255\254 binary", got.bytes)
    end)

    it("follows cursors with getMore and applies sort and limit", function()
      for i = 1, 5 do assert.is_true(c:insert("juju", "many", { _id = "m" .. i, n = i })) end
      local docs = assert(c:find("juju", "many"))
      assert.are.equal(5, #docs)
      assert.is_true(yaml.is_array(docs))
      assert.is_true(#recorded(mock, "getMore") >= 2)
      docs = assert(c:find("juju", "many", {}, { sort = { n = -1 }, limit = 3 }))
      assert.are.same({ 5, 4, 3 }, { docs[1].n, docs[2].n, docs[3].n })
      assert.are.equal(3, #docs)
      docs = assert(c:find("juju", "many", { n = 2 }))
      assert.are.equal(1, #docs)
      assert.are.equal("m2", docs[1]._id)
      assert.are.same({}, setmetatable(assert(c:find("juju", "nothing-here")), nil))
    end)

    it("finds one document or reports ENOENT", function()
      assert.is_true(c:insert("juju", "one", { _id = "x", v = 1 }))
      assert.are.same({ _id = "x", v = 1 }, c:find_one("juju", "one", { _id = "x" }))
      assert.are.same({ _id = "x", v = 1 }, c:find_one("juju", "one"))
      local d, msg, code = c:find_one("juju", "one", { _id = "y" })
      assert.is_nil(d)
      assert.are.equal("ENOENT", code)
      assert.matches("no document matches", msg, 1, true)
    end)

    it("updates, upserts and removes, with counts", function()
      assert.is_true(c:insert("juju", "upd", { _id = "a", v = 1 }))
      assert.are.same({ matched = 1, modified = 1, upserted = 0 },
        c:update("juju", "upd", { _id = "a" }, { ["$set"] = { v = 2 } }))
      assert.are.same({ matched = 1, modified = 0, upserted = 0 },
        c:update("juju", "upd", { _id = "a" }, { ["$set"] = { v = 2 } }))
      assert.are.same({ matched = 0, modified = 0, upserted = 0 },
        c:update("juju", "upd", { _id = "zz" }, { ["$set"] = { v = 2 } }))
      assert.are.same({ matched = 0, modified = 0, upserted = 1 },
        c:update("juju", "upd", { _id = "b" }, { ["$set"] = { v = 3 } }, { upsert = true }))
      assert.are.same({ _id = "b", v = 3 }, c:find_one("juju", "upd", { _id = "b" }))
      assert.are.equal(1, c:remove("juju", "upd", { _id = "a" }))
      assert.are.equal(0, c:remove("juju", "upd", { _id = "a" }))
      assert.are.equal(1, c:command("juju", { count = "upd" }).n)
    end)

    it("maps a duplicate _id to EEXIST and server errors to MONGO, with the server's code", function()
      assert.is_true(c:insert("juju", "dup", { _id = "d" }))
      local r, msg, code, server_code = c:insert("juju", "dup", { _id = "d", other = true })
      assert.is_nil(r)
      assert.are.equal("EEXIST", code)
      assert.are.equal(11000, server_code)
      assert.matches("E11000 duplicate key", msg, 1, true)

      r, msg, code, server_code = c:command("admin", { noSuchCommand = 1 })
      assert.is_nil(r)
      assert.are.equal("MONGO", code)
      assert.are.equal(59, server_code)
      assert.matches("noSuchCommand on admin: no such command", msg, 1, true)

      r, msg, code = c:update("juju", "dup", { _id = "d" }, { ["$set"] = {} })
      assert.is_nil(r)
      assert.are.equal("MONGO", code)
      assert.matches("'$set' is empty", msg, 1, true)
    end)

    it("converts replies: nested documents as tables, arrays marked", function()
      local status = assert(c:command("admin", { replSetGetStatus = 1 }))
      assert.are.equal("juju", status.set)
      assert.is_true(yaml.is_array(status.members))
      assert.are.equal("PRIMARY", status.members[1].stateStr)
      assert.are.equal("integer", math.type(status.members[1].state))
    end)
  end)
end)
