-- Specs for the juju.yaml binding: decode/encode, the null sentinel, array
-- marking, key order and marks.
local yaml = require("juju.yaml")

local function shared_dir()
  return os.getenv("JUJU_TEST_SHARED") or "../shared"
end

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

describe("juju.yaml", function()
  after_each(function()
    collectgarbage()
    collectgarbage()
  end)

  describe("decode", function()
    it("maps YAML 1.1 plain scalars like Go's yaml.v2", function()
      local cases = {
        { "~", yaml.null }, { "null", yaml.null }, { "NULL", yaml.null }, { "", yaml.null },
        { "yes", true }, { "No", false }, { "on", true }, { "OFF", false }, { "y", true },
        { "n", false }, { "True", true }, { "false", false },
        { "12", 12 }, { "-7", -7 }, { "+3", 3 }, { "1_000", 1000 }, { "0x1F", 31 },
        { "0o17", 15 }, { "0755", 493 },
        { "1.5", 1.5 }, { "1e3", 1000.0 }, { ".5", 0.5 },
        { ".inf", math.huge }, { "-.Inf", -math.huge },
        { "abc", "abc" }, { "1.2.3", "1.2.3" }, { "yEs", "yEs" }, { "10.0.0.5", "10.0.0.5" },
      }
      for _, c in ipairs(cases) do
        local v = yaml.decode("v: " .. c[1]).v
        assert.are.equal(c[2], v, "resolving " .. c[1])
        assert.are.equal(math.type(c[2]), math.type(v), "number kind of " .. c[1])
      end
      local nan = yaml.decode("v: .nan").v
      assert.is_true(nan ~= nan)
    end)

    it("keeps quoted and block scalars as strings", function()
      local v = yaml.decode("a: \"12\"\nb: 'yes'\nc: |\n  true\nd: !!str 1.5\n")
      assert.are.equal("12", v.a)
      assert.are.equal("yes", v.b)
      assert.are.equal("true\n", v.c)
      assert.are.equal("1.5", v.d)
    end)

    it("honours explicit tags", function()
      local v = yaml.decode("a: !!int \"7\"\nb: !!float 2\nc: !!bool 'on'\nd: !!null ''\n")
      assert.are.equal(7, v.a)
      assert.are.equal("float", math.type(v.b))
      assert.is_true(v.c)
      assert.are.equal(yaml.null, v.d)
      local bad, msg, code = yaml.decode("d: !!int x\n", "t.yaml")
      assert.is_nil(bad)
      assert.are.equal("YAML_PARSE", code)
      assert.matches("^t%.yaml:1:4: ", msg)
    end)

    it("returns yaml.null for empty values and empty streams", function()
      local v = yaml.decode("region:\nname: x\n")
      assert.are.equal(yaml.null, v.region)
      assert.are.equal("x", v.name)
      assert.are.equal(yaml.null, yaml.decode(""))
      assert.are.equal(yaml.null, yaml.decode("# nothing\n"))
      local list = yaml.decode("[1, ~, 3]")
      assert.are.equal(3, #list)
      assert.are.equal(yaml.null, list[2])
    end)

    it("marks sequences so they re-encode as sequences, even empty", function()
      local v = yaml.decode("a: []\nb: [1]\nc: {}\n")
      assert.is_true(yaml.is_array(v.a))
      assert.is_true(yaml.is_array(v.b))
      assert.is_false(yaml.is_array(v.c))
      assert.are.equal("a: []\nb:\n- 1\nc: {}\n", yaml.encode(v))
    end)

    it("reads only the first document", function()
      assert.are.equal("one", yaml.decode("--- one\n--- two\n"))
    end)

    it("expands aliases into copies and applies merge keys", function()
      local v = yaml.decode("base: &b {type: ec2, region: r1}\ncopy: *b\nenv:\n  <<: *b\n  region: r2\n")
      assert.are.same({ type = "ec2", region = "r1" }, v.copy)
      assert.are_not.equal(v.base, v.copy)
      assert.are.same({ type = "ec2", region = "r2" }, v.env)
    end)

    it("fails with source:line:col and YAML_PARSE", function()
      local v, msg, code = yaml.decode("a: 1\nb: [1, 2\n", "envs.yaml")
      assert.is_nil(v)
      assert.are.equal("YAML_PARSE", code)
      assert.matches("^envs%.yaml:%d+:%d+: ", msg)
    end)

    it("reports duplicate keys with both lines", function()
      local v, msg, code = yaml.decode("a: 1\nb: 2\na: 3\n", "dup.yaml")
      assert.is_nil(v)
      assert.are.equal("YAML_PARSE", code)
      assert.are.equal('dup.yaml:3:1: mapping key "a" already defined at line 1', msg)
    end)

    it("fails when two YAML keys are one Lua key", function()
      local v, msg, code = yaml.decode("1: a\n1.0: b\n", "k.yaml")
      assert.is_nil(v)
      assert.are.equal("YAML_PARSE", code)
      assert.matches("^k%.yaml:2:1: mapping key 1%.0 collides", msg)
    end)

    it("bounds alias bombs", function()
      local lines = { "a: &a [x, x, x, x, x, x, x, x, x, x]" }
      local prev = "a"
      for i, name in ipairs({ "b", "c", "d", "e", "f", "g", "h", "i" }) do
        lines[#lines + 1] = string.format("%s: &%s [%s]", name, name,
          string.rep("*" .. prev, 10, ", "))
        prev = name
        assert(i)
      end
      local v, msg, code = yaml.decode(table.concat(lines, "\n") .. "\n", "bomb.yaml")
      assert.is_nil(v)
      assert.are.equal("YAML_PARSE", code)
      assert.matches("more than 100000 nodes", msg)
      v, msg = yaml.decode("a: &a [1, 2, 3]\nb: *a\n", "s", { max_nodes = 8 })
      assert.is_nil(v)
      assert.matches("^s:2:", msg)
    end)

    it("rejects mistyped arguments by raising", function()
      assert.has_error(function() yaml.decode(nil) end)
      assert.has_error(function() yaml.decode("a: 1", "s", 5) end)
      assert.has_error(function() yaml.decode("a: 1", "s", { max_nodes = -1 }) end)
    end)

    it("parses every published environments.yaml example but the elided one", function()
      local dir = shared_dir() .. "/conformance/environments/"
      local names = {
        "config-aws.yaml", "config-azure.yaml", "config-gce.yaml", "config-general-1.yaml",
        "config-general-5.yaml", "config-joyent.yaml", "config-maas-1.yaml", "config-manual.yaml",
        "config-openstack.yaml", "howto-privatecloud.yaml", "juju-init-1.24.7.yaml",
        "juju-init-1.25.0.yaml", "juju-init-1.25.11.yaml",
        "juju-multiuser-environments-fred-local.jenv.yaml",
      }
      for _, name in ipairs(names) do
        local v, msg = yaml.decode(read_file(dir .. name), name)
        assert.is_not_nil(v, msg)
      end
      local envs = yaml.decode(read_file(dir .. "juju-init-1.25.0.yaml"))
      assert.are.equal("amazon", envs.default)
      assert.are.equal("manual", envs.environments.manual.type)
      local v, msg, code = yaml.decode(read_file(dir .. "charms-environments.yaml"),
        "charms-environments.yaml")
      assert.is_nil(v)
      assert.are.equal("YAML_PARSE", code)
      assert.matches("^charms%-environments%.yaml:%d+:%d+: ", msg)
    end)
  end)

  describe("marks", function()
    it("gives line and column of every value and of each collection", function()
      local text = "default: amazon\nenvironments:\n  amazon:\n    type: ec2\n    port: 17070\n"
        .. "  list:\n  - a\n  -   b\n"
      local v, marks = yaml.decode(text, "e.yaml", { marks = true })
      assert.are.same({ line = 1, column = 10 }, marks[v].default)
      assert.are.same({ line = 1, column = 1 }, marks[v].__self)
      local amazon = v.environments.amazon
      assert.are.same({ line = 4, column = 11 }, marks[amazon].type)
      assert.are.same({ line = 5, column = 11, text = "17070" }, marks[amazon].port)
      assert.are.same({ line = 4, column = 5 }, marks[amazon].__self)
      local list = v.environments.list
      assert.are.same({ line = 7, column = 5 }, marks[list][1])
      assert.are.same({ line = 8, column = 7 }, marks[list][2])
    end)

    it("records how numbers and booleans were spelt", function()
      local v, marks = yaml.decode("a: 14.10\nb: yes\nc: 0x1F\nd: text\ne: ~\n", "s", { marks = true })
      assert.are.equal(14.1, v.a)
      assert.are.equal("14.10", marks[v].a.text)
      assert.are.equal("yes", marks[v].b.text)
      assert.are.equal("0x1F", marks[v].c.text)
      assert.is_nil(marks[v].d.text)
      assert.is_nil(marks[v].e.text)
    end)

    it("is absent unless asked for", function()
      local v, marks = yaml.decode("a: 1\n")
      assert.are.equal(1, v.a)
      assert.is_nil(marks)
    end)
  end)

  describe("encode", function()
    it("writes block style with 2-space indented mappings", function()
      local doc = yaml.ordered({
        user = "admin",
        ["state-servers"] = yaml.array({ "10.0.0.1:17070" }),
        ["bootstrap-config"] = { ["api-port"] = 17070, development = false, name = "amazon" },
      }, { "user", "state-servers", "bootstrap-config" })
      assert.are.equal("user: admin\nstate-servers:\n- 10.0.0.1:17070\nbootstrap-config:\n"
        .. "  api-port: 17070\n  development: false\n  name: amazon\n", yaml.encode(doc))
    end)

    it("quotes strings that would read back as something else", function()
      local out = yaml.encode({ "true", "12", "", "null", "~", " x", "a: b", "yes", "1.5", "#c", "plain" })
      assert.are.equal('- "true"\n- "12"\n- ""\n- "null"\n- "~"\n- " x"\n- "a: b"\n- "yes"\n'
        .. '- "1.5"\n- "#c"\n- plain\n', out)
    end)

    it("writes multi-line strings as literal blocks", function()
      assert.are.equal("a: |\n  x\n  y\nb: |-\n  x\n  y\n", yaml.encode({ a = "x\ny\n", b = "x\ny" }))
    end)

    it("round-trips values", function()
      local values = {
        { a = 1, b = { "x", yaml.null, false }, c = { d = { e = 1.5 } } },
        yaml.array(), {}, "text", 42, -0.25, true, yaml.null,
        { ["true"] = "yes", ["12"] = "0x10", [""] = "", ["multi\nline"] = "a\n\nb\n" },
        { [1] = "one", [2] = "two", [4] = "four" },
      }
      for _, v in ipairs(values) do
        local text = assert(yaml.encode(v))
        assert.are.same(v, (yaml.decode(text)), text)
      end
      -- an empty unmarked table is a mapping, a marked one a sequence
      assert.are.equal("{}\n", yaml.encode({}))
      assert.are.equal("[]\n", yaml.encode(yaml.array()))
    end)

    it("sorts keys: __yaml_order first, then numbers, then strings", function()
      local t = yaml.ordered({ b = 1, a = 2, z = 3, [10] = 4, [2] = 5, y = 6 }, { "z", "y", "missing", "z" })
      assert.are.equal("z: 3\n\"y\": 6\n2: 5\n10: 4\na: 2\nb: 1\n", yaml.encode(t))
    end)

    it("treats proper non-empty arrays as sequences and holes as mappings", function()
      assert.is_true(yaml.is_array({ 1, 2 }))
      assert.is_false(yaml.is_array({ 1, nil, 3 }))
      assert.is_false(yaml.is_array({}))
      assert.is_false(yaml.is_array({ x = 1 }))
      assert.is_false(yaml.is_array("x"))
      assert.are.equal("1: a\n3: c\n", yaml.encode({ [1] = "a", [3] = "c" }))
    end)

    it("fails on cycles and unsupported types with YAML_EMIT", function()
      local t = { a = {} }
      t.a.back = t
      local v, msg, code = yaml.encode(t)
      assert.is_nil(v)
      assert.are.equal("YAML_EMIT", code)
      assert.matches("contains itself", msg)
      v, msg, code = yaml.encode({ f = print })
      assert.is_nil(v)
      assert.are.equal("YAML_EMIT", code)
      assert.matches("function", msg)
      v, msg, code = yaml.encode({ [{}] = 1 })
      assert.is_nil(v)
      assert.are.equal("YAML_EMIT", code)
      assert.matches("key of type table", msg)
      v, msg, code = yaml.encode({ s = "\255\254" })
      assert.is_nil(v)
      assert.are.equal("YAML_EMIT", code)
      assert.matches("UTF%-8", msg)
      v, msg, code = yaml.encode(coroutine.create(print))
      assert.is_nil(v)
      assert.are.equal("YAML_EMIT", code)
      assert.matches("thread", msg)
    end)

    it("allows shared (non-cyclic) subtables", function()
      local shared = { x = 1 }
      assert.are.equal("a:\n  x: 1\nb:\n  x: 1\n", yaml.encode({ a = shared, b = shared }))
    end)
  end)

  describe("array / ordered / null", function()
    it("array marks and returns its argument, or a new table", function()
      local t = {}
      assert.are.equal(t, yaml.array(t))
      assert.is_true(yaml.is_array(t))
      assert.are.equal(t, yaml.array(t)) -- idempotent
      local fresh = yaml.array()
      assert.is_true(yaml.is_array(fresh))
      assert.has_error(function() yaml.array(setmetatable({}, {})) end)
      assert.has_error(function() yaml.array(5) end)
    end)

    it("ordered sets __yaml_order on the metatable", function()
      local t = yaml.ordered({ b = 1, a = 2 }, { "b" })
      assert.are.same({ "b" }, getmetatable(t).__yaml_order)
      local mt = {}
      local u = setmetatable({}, mt)
      yaml.ordered(u, { "x" })
      assert.are.equal(mt, getmetatable(u))
      assert.has_error(function() yaml.ordered(yaml.array(), { "x" }) end)
      assert.has_error(function() yaml.ordered({}, "x") end)
    end)

    it("null is one light userdata shared by every decode", function()
      assert.are.equal("userdata", type(yaml.null))
      assert.are.equal(yaml.decode("~"), yaml.decode("null"))
      assert.are.equal("a: null\n", yaml.encode({ a = yaml.null }))
    end)
  end)
end)
