-- Specs for the juju.config binding: schemas, coercion of every type in both
-- modes, messages with file:line:col from yaml marks, changes, merging.
local yaml = require("juju.yaml")
local config = require("juju.config")

local function core_fields()
  return {
    name = { type = "string", required = true, immutable = true, description = "environment name",
      group = "environ" },
    type = { type = "string", required = true, immutable = true },
    uuid = { type = "string", immutable = true, group = "juju" },
    ["admin-secret"] = { type = "string", default = "", fillin = "", secret = true, allow_empty = true },
    ["default-series"] = { type = "string", default = "", fillin = "", allow_empty = true },
    ["firewall-mode"] = { type = "string", values = { "instance", "global", "none", "" },
      default = "instance", required = true, immutable = true },
    development = { type = "bool", default = false, required = true },
    ["proxy-ssh"] = { type = "bool", default = true, fillin = false },
    ["api-port"] = { type = "int", default = 17070, fillin = 17070, immutable = true },
    ["bootstrap-timeout"] = { type = "int", default = "600" },
    ["lxc-default-mtu"] = { type = "int" },
    ["resource-tags"] = { type = "attrs" },
    allowed = { type = "list" },
  }
end

local function base(extra)
  local t = { name = "amazon", type = "ec2" }
  for k, v in pairs(extra or {}) do t[k] = v end
  return t
end

describe("juju.config", function()
  local schema

  before_each(function()
    schema = config.schema(core_fields())
  end)

  after_each(function()
    schema = nil
    collectgarbage()
    collectgarbage()
  end)

  describe("schema", function()
    it("lists fields and secrets sorted", function()
      local names = schema:fields()
      assert.are.equal(13, #names)
      for i = 2, #names do assert.is_true(names[i - 1] < names[i]) end
      assert.are.same({ "admin-secret" }, schema:secrets())
    end)

    it("describes a field", function()
      local f = schema:field("firewall-mode")
      assert.are.equal("firewall-mode", f.name)
      assert.are.equal("string", f.type)
      assert.are.same({ "instance", "global", "none", "" }, f.values)
      assert.are.equal("instance", f.default)
      assert.is_nil(f.fillin)
      assert.is_true(f.required)
      assert.is_true(f.immutable)
      assert.is_false(f.secret)
      assert.is_false(f.allow_empty)
      assert.are.equal("environment name", schema:field("name").description)
      assert.are.equal("juju", schema:field("uuid").group)
      -- defaults are stored coerced to the field's type
      assert.are.equal(600, schema:field("bootstrap-timeout").default)
      assert.is_nil(schema:field("nope"))
    end)

    it("raises on a bad field definition", function()
      assert.has_error(function() config.schema({ x = { type = "float" } }) end)
      assert.has_error(function() config.schema({ x = {} }) end)
      assert.has_error(function() config.schema({ x = "string" }) end)
      assert.has_error(function() config.schema({ [1] = { type = "int" } }) end)
      assert.has_error(function() config.schema({ x = { type = "int", required = "yes" } }) end)
      assert.has_error(function() config.schema({ x = { type = "int", values = "a b" } }) end)
      assert.has_error(function() config.schema({ x = { type = "int", description = 5 } }) end)
      assert.has_error(function() config.schema({ x = { type = "int", default = "eighty" } }) end,
        'config field x: bad default: x: expected number, got string("eighty")')
      assert.has_error(function() config.schema({ x = { type = "string", values = { "a" }, default = "b" } }) end)
      assert.has_error(function() config.schema({ x = { type = "string", default = print } }) end)
      assert.has_error(function() config.schema("x") end)
    end)

    it("closes once, and refuses use after close", function()
      local s = config.schema({ a = { type = "int" } })
      s:close()
      s:close()
      assert.has_error(function() s:fields() end, "attempt to use a closed schema")
      assert.matches("closed", tostring(s))
      do
        local t <close> = config.schema({ a = { type = "int" } })
        assert.are.same({ "a" }, t:fields())
      end
    end)
  end)

  describe("merge", function()
    it("adds provider fields from a table or a schema", function()
      local ec2 = { region = { type = "string", default = "us-east-1" },
        ["secret-key"] = { type = "string", secret = true },
        development = { type = "bool", description = "redefined" } }
      local merged = assert(schema:merge(ec2))
      assert.are.equal(15, #merged:fields())
      assert.are.same({ "admin-secret", "secret-key" }, merged:secrets())
      assert.are.equal("redefined", merged:field("development").description)
      local again = assert(schema:merge(config.schema(ec2)))
      assert.are.same(merged:fields(), again:fields())
      -- the original is untouched
      assert.are.equal(13, #schema:fields())
      local out = assert(merged:coerce(base()))
      assert.are.equal("us-east-1", out.region)
    end)

    it("fails on a key redefined with another type", function()
      local s, msg, code = schema:merge({ ["api-port"] = { type = "string" } })
      assert.is_nil(s)
      assert.are.equal("CONFIG", code)
      assert.are.equal('config field "api-port" defined as int and as string', msg)
      assert.has_error(function() schema:merge(5) end)
    end)
  end)

  describe("coerce", function()
    it("fills defaults in defaults mode", function()
      local out, warnings = assert(schema:coerce(base()))
      assert.are.equal("instance", out["firewall-mode"])
      assert.are.equal(false, out.development)
      assert.are.equal(true, out["proxy-ssh"])
      assert.are.equal(17070, out["api-port"])
      assert.are.equal(600, out["bootstrap-timeout"])
      assert.are.equal("", out["admin-secret"])
      assert.is_nil(out.uuid)
      assert.are.same({}, warnings)
    end)

    it("uses fill-in values and requires fields in nodefaults mode", function()
      local out = assert(schema:coerce(base({ ["firewall-mode"] = "global", development = true }),
        { mode = "nodefaults" }))
      assert.are.equal(false, out["proxy-ssh"])
      assert.are.equal(17070, out["api-port"])
      assert.is_nil(out["bootstrap-timeout"])
      local v, msg, code = schema:coerce(base({ development = true }), { mode = "nodefaults", env = "amazon" })
      assert.is_nil(v)
      assert.are.equal("CONFIG", code)
      assert.are.equal('environment "amazon": firewall-mode: expected string, got nothing', msg)
      assert.has_error(function() schema:coerce(base(), { mode = "sometimes" }) end)
    end)

    it("treats yaml.null as absent and leaves the input alone", function()
      local attrs = base({ ["api-port"] = yaml.null, uuid = yaml.null })
      local out = assert(schema:coerce(attrs))
      assert.are.equal(17070, out["api-port"])
      assert.is_nil(out.uuid)
      assert.are.equal(yaml.null, attrs["api-port"])
      assert.is_nil(attrs["firewall-mode"])
      local v, msg = schema:coerce({ name = "a", type = yaml.null })
      assert.is_nil(v)
      assert.are.equal("type: expected string, got nothing", msg)
    end)

    it("coerces strings generously", function()
      local out = assert(schema:coerce(base({ ["default-series"] = 14.04, uuid = 12, ["admin-secret"] = true })))
      assert.are.equal("14.04", out["default-series"])
      assert.are.equal("12", out.uuid)
      assert.are.equal("true", out["admin-secret"])
      local v, msg = schema:coerce(base({ uuid = { "a" } }))
      assert.is_nil(v)
      assert.are.equal("uuid: expected string, got list", msg)
    end)

    it("keeps the source text of YAML numbers for strings when given marks", function()
      local doc, marks = yaml.decode("name: a\ntype: ec2\ndefault-series: 14.10\nuuid: 0x1F\n"
        .. "admin-secret: yes\n", "e.yaml", { marks = true })
      local out = assert(schema:coerce(doc, { marks = marks }))
      assert.are.equal("14.10", out["default-series"])
      assert.are.equal("0x1F", out.uuid)
      assert.are.equal("yes", out["admin-secret"])
      -- without marks only the Lua value is known
      out = assert(schema:coerce(doc))
      assert.are.equal("14.1", out["default-series"])
      assert.are.equal("31", out.uuid)
      -- a value changed after decoding is not spelt the old way
      doc["default-series"] = 15.04
      out = assert(schema:coerce(doc, { marks = marks }))
      assert.are.equal("15.04", out["default-series"])
    end)

    it("coerces bools", function()
      local out = assert(schema:coerce(base({ development = "true", ["proxy-ssh"] = "false" })))
      assert.are.equal(true, out.development)
      assert.are.equal(false, out["proxy-ssh"])
      local v, msg, code = schema:coerce(base({ development = "maybe" }), { env = "amazon" })
      assert.is_nil(v)
      assert.are.equal("CONFIG", code)
      assert.are.equal('environment "amazon": development: expected bool, got string("maybe")', msg)
      v, msg = schema:coerce(base({ development = 1 }))
      assert.is_nil(v)
      assert.are.equal("development: expected bool, got int(1)", msg)
    end)

    it("coerces ints", function()
      local out = assert(schema:coerce(base({ ["api-port"] = "17071", ["bootstrap-timeout"] = 900.0,
        ["lxc-default-mtu"] = "0x10" })))
      assert.are.equal(17071, out["api-port"])
      assert.are.equal("integer", math.type(out["api-port"]))
      assert.are.equal(900, out["bootstrap-timeout"])
      assert.are.equal("integer", math.type(out["bootstrap-timeout"]))
      assert.are.equal(16, out["lxc-default-mtu"])
      local cases = {
        { "abc", 'api-port: expected number, got string("abc")' },
        { 1.5, "api-port: expected number, got float64(1.5)" },
        { true, "api-port: expected number, got bool(true)" },
        { { a = 1 }, "api-port: expected number, got map" },
      }
      for _, c in ipairs(cases) do
        local v, msg, code = schema:coerce(base({ ["api-port"] = c[1] }))
        assert.is_nil(v)
        assert.are.equal("CONFIG", code)
        assert.are.equal(c[2], msg)
      end
    end)

    it("coerces attrs from a map, a k=v string or a k=v list", function()
      for _, given in ipairs({ { team = "db", cost = 12 }, "team=db  cost=12", { "team=db", "cost=12" } }) do
        local out = assert(schema:coerce(base({ ["resource-tags"] = given })))
        assert.are.same({ team = "db", cost = "12" }, out["resource-tags"])
        assert.is_false(yaml.is_array(out["resource-tags"]))
      end
      local v, msg = schema:coerce(base({ ["resource-tags"] = "a=1 oops" }))
      assert.is_nil(v)
      assert.are.equal('resource-tags: expected "key=value", got "oops"', msg)
      v, msg = schema:coerce(base({ ["resource-tags"] = "a=1 a=2" }))
      assert.is_nil(v)
      assert.are.equal('resource-tags: key "a" specified more than once', msg)
      v, msg = schema:coerce(base({ ["resource-tags"] = { a = { 1 } } }))
      assert.is_nil(v)
      assert.are.equal("resource-tags.a: expected string, got list", msg)
      v, msg = schema:coerce(base({ ["resource-tags"] = 7 }))
      assert.is_nil(v)
      assert.are.equal("resource-tags: expected attrs, got int(7)", msg)
    end)

    it("coerces lists from a sequence or a comma-separated string", function()
      for _, given in ipairs({ { "a", "b", 3 }, "a, b ,3", yaml.array({ "a", "b", "3" }) }) do
        local out = assert(schema:coerce(base({ allowed = given })))
        assert.are.same({ "a", "b", "3" }, out.allowed)
        assert.is_true(yaml.is_array(out.allowed))
      end
      local v, msg = schema:coerce(base({ allowed = { a = "b" } }))
      assert.is_nil(v)
      assert.are.equal("allowed: expected list, got map", msg)
      v, msg = schema:coerce(base({ allowed = { "a", { "b" } } }))
      assert.is_nil(v)
      assert.are.equal("allowed[1]: expected string, got list", msg)
    end)

    it("checks enumerations", function()
      local out = assert(schema:coerce(base({ ["firewall-mode"] = "global" })))
      assert.are.equal("global", out["firewall-mode"])
      local v, msg = schema:coerce(base({ ["firewall-mode"] = "bogus" }), { env = "e" })
      assert.is_nil(v)
      assert.are.equal('environment "e": firewall-mode: expected one of [instance global none ], got "bogus"', msg)
    end)

    it("rejects empty values unless allowed", function()
      local cases = {
        { { name = "" }, "empty name in environment configuration" },
        { { ["lxc-default-mtu"] = 0 }, "empty lxc-default-mtu in environment configuration" },
        { { allowed = yaml.array() }, "empty allowed in environment configuration" },
        { { ["resource-tags"] = {} }, "empty resource-tags in environment configuration" },
        { { ["firewall-mode"] = "" }, "empty firewall-mode in environment configuration" },
      }
      for _, c in ipairs(cases) do
        local v, msg = schema:coerce(base(c[1]), { env = "amazon" })
        assert.is_nil(v)
        assert.are.equal('environment "amazon": ' .. c[2], msg)
      end
      local out = assert(schema:coerce(base({ ["admin-secret"] = "", development = false })))
      assert.are.equal("", out["admin-secret"])
    end)

    it("copies unknown keys and warns about them when asked", function()
      local out, warnings = assert(schema:coerce(base({ region = "us-east-1", extra = { 1, 2 } }),
        { unknown = true }))
      assert.are.equal("us-east-1", out.region)
      assert.are.same({ 1, 2 }, out.extra)
      assert.are.same({ 'unknown config field "extra"', 'unknown config field "region"' }, warnings)
      local _, none = assert(schema:coerce(base({ region = "x" })))
      assert.are.same({}, none)
    end)

    it("reports file:line:col from yaml marks", function()
      local text = table.concat({
        "default: amazon",
        "environments:",
        "  amazon:",
        "    type: ec2",
        "    bootstrap-timeout: soon",
        "    allowed: [a, [b]]",
        "",
      }, "\n")
      local doc, marks = assert(yaml.decode(text, "environments.yaml", { marks = true }))
      local env = doc.environments.amazon
      env.name = "amazon"
      local opts = { env = "amazon", file = "/home/u/.juju/environments.yaml", marks = marks }
      local v, msg, code = schema:coerce(env, opts)
      assert.is_nil(v)
      assert.are.equal("CONFIG", code)
      assert.are.equal('/home/u/.juju/environments.yaml:6:18: environment "amazon": allowed[1]: '
        .. "expected string, got list", msg)
      env.allowed = nil
      v, msg = schema:coerce(env, opts)
      assert.is_nil(v)
      assert.are.equal('/home/u/.juju/environments.yaml:5:24: environment "amazon": bootstrap-timeout: '
        .. 'expected number, got string("soon")', msg)
      -- a missing required field points at the environment's mapping
      env["bootstrap-timeout"] = nil
      env.type = nil
      v, msg = schema:coerce(env, opts)
      assert.is_nil(v)
      assert.are.equal('/home/u/.juju/environments.yaml:4:5: environment "amazon": type: '
        .. "expected string, got nothing", msg)
      -- without a file name there is no position
      v, msg = schema:coerce(env, { env = "amazon", marks = marks })
      assert.is_nil(v)
      assert.are.equal('environment "amazon": type: expected string, got nothing', msg)
    end)

    it("raises on misuse", function()
      assert.has_error(function() schema:coerce("name: x") end)
      assert.has_error(function() schema:coerce(base(), 5) end)
      assert.has_error(function() schema:coerce(base(), { env = 5 }) end)
      assert.has_error(function() schema:coerce(base(), { marks = "x" }) end)
      assert.has_error(function() schema:coerce(base({ extra = print })) end)
      assert.has_error(function() schema:coerce(base({ [true] = 1 })) end)
      local cyclic = {}
      cyclic.self = cyclic
      assert.has_error(function() schema:coerce(base({ extra = cyclic })) end)
    end)
  end)

  describe("check_change", function()
    it("refuses changes to immutable fields", function()
      local old = { name = "a", type = "ec2", ["api-port"] = 17070, development = false }
      assert.is_true(schema:check_change(old, { name = "a", type = "ec2", ["api-port"] = 17070,
        development = true, uuid = "u-1" }))
      local ok, msg, code = schema:check_change(old, { name = "b", type = "ec2", ["api-port"] = 17070 })
      assert.is_nil(ok)
      assert.are.equal("CONFIG", code)
      assert.are.equal('cannot change name from "a" to "b"', msg)
      ok, msg = schema:check_change(old, { name = "a", type = "ec2", ["api-port"] = 17071 })
      assert.is_nil(ok)
      assert.are.equal("cannot change api-port from 17070 to 17071", msg)
      ok, msg = schema:check_change(old, { name = "a", type = "ec2" })
      assert.is_nil(ok)
      assert.are.equal("cannot change api-port from 17070 to <nil>", msg)
      assert.has_error(function() schema:check_change(old) end)
    end)
  end)
end)
