local flags = require("juju.flags")

describe("juju.flags", function()
  local function set()
    local fs = flags.new()
    fs:add { names = { "e", "environment" } }
    fs:add { names = { "upload-tools" }, kind = "bool" }
    fs:add { names = { "n" }, kind = "int", key = "count" }
    fs:add { names = { "constraints" }, parse = function(v)
      if v == "bad" then return nil, "unknown constraint \"bad\"" end
      return v
    end }
    return fs
  end

  it("parses long, short, = forms and interspersed arguments", function()
    local v, rest, given = set():parse({ "a", "-e", "x", "--upload-tools", "b", "--n=3", "--constraints=mem=2G" })
    assert.are.equal("x", v.environment)
    assert.is_true(v["upload-tools"])
    assert.are.equal(3, v.count)
    assert.are.equal("mem=2G", v.constraints)
    assert.are.same({ "a", "b" }, rest)
    assert.is_true(given.environment)
  end)

  it("stops at --", function()
    local v, rest = set():parse({ "--", "-e", "x" })
    assert.is_nil(v.environment)
    assert.are.same({ "-e", "x" }, rest)
  end)

  it("reports undefined flags and missing arguments as gnuflag does", function()
    local v, err = set():parse({ "--bogus" })
    assert.is_nil(v)
    assert.are.equal("flag provided but not defined: --bogus", err)
    v, err = set():parse({ "-e" })
    assert.is_nil(v)
    assert.are.equal("flag needs an argument: -e", err)
  end)

  it("wraps value errors with the flag name", function()
    local v, err = set():parse({ "--constraints", "bad" })
    assert.is_nil(v)
    assert.are.equal('invalid value "bad" for flag --constraints: unknown constraint "bad"', err)
    v, err = set():parse({ "--n=x" })
    assert.is_nil(v)
    assert.matches("invalid value \"x\" for flag %-%-n", err)
  end)

  it("accepts explicit boolean values and rejects others", function()
    local v = set():parse({ "--upload-tools=false" })
    assert.is_false(v["upload-tools"])
    local bad, err = set():parse({ "--upload-tools=maybe" })
    assert.is_nil(bad)
    assert.matches("invalid value", err)
  end)

  it("renders usage with every flag", function()
    local u = set():usage()
    assert.matches("%-e <value>, %-%-environment=<value>", u)
    assert.matches("%-%-upload%-tools", u)
  end)
end)
