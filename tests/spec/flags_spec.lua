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

  it("renders usage as Juju 1.25's gnuflag did: sorted, aliases together, quoted string defaults", function()
    local u = set():usage()
    assert.is_truthy(u:find('-e, --environment (= "")\n    ', 1, true), u)
    assert.is_truthy(u:find("--upload-tools  (= false)\n    ", 1, true), u)
    local order = {}
    for line in u:gmatch("[^\n]+") do
      if not line:match("^    ") then order[#order + 1] = line:match("^%-%-?([%w-]+)") end
    end
    local sorted = table.move(order, 1, #order, 1, {})
    table.sort(sorted)
    assert.are.same(sorted, order)
  end)
end)
