-- options_spec.lua: the option readers every binding shares (bindings/options.h):
-- one mode rule (0..07777, integer or octal digits) whether a mode is an
-- argument (juju.fs) or an option (juju.storage), and one message shape.
local fs = require("juju.fs")
local storage = require("juju.storage")
local sqlite = require("juju.sqlite")

local function octal(s) return math.tointeger(tonumber(s, 8)) end

describe("option readers", function()
  local dir

  before_each(function()
    dir = assert(fs.mkdtemp("/tmp/juju-options-spec-"))
  end)

  after_each(function()
    if dir then
      fs.chmod(dir, octal("700"))
      assert(fs.remove_tree(dir))
    end
    collectgarbage()
    collectgarbage()
  end)

  local function p(rel) return dir .. "/" .. rel end

  it("accepts every mode from 0 to 07777, as integer or octal string", function()
    assert.is_true(fs.write_atomic(p("f"), "x"))
    for _, m in ipairs({ 0, "0", "0000", octal("640"), "0640", "7777", octal("7777") }) do
      assert.is_true(fs.chmod(p("f"), m))
      local want = type(m) == "string" and octal(m) or m
      assert.are.equal(want, fs.stat(p("f")).mode & octal("7777"))
    end
  end)

  it("refuses modes outside 0..07777 and strings that are not octal", function()
    assert.is_true(fs.write_atomic(p("f"), "x"))
    for _, m in ipairs({ -1, octal("10000"), "10000", "8", "", "0x1ff", "64 0", 1.5, true }) do
      assert.has_error(function() fs.chmod(p("f"), m) end)
    end
  end)

  it("reads mode options with the same rule and names the option", function()
    local d = assert(storage.open_dir(p("s"), { mode = "0", dir_mode = octal("700") }))
    assert.is_truthy(d)
    assert.has_error(function() storage.open_dir(p("t"), { mode = "0999" }) end,
      "bad option 'mode' (mode 0..07777 as integer or octal string expected)")
    assert.has_error(function() storage.open_dir(p("t"), { dir_mode = octal("17777") }) end,
      "bad option 'dir_mode' (mode 0..07777 as integer or octal string expected)")
  end)

  it("reports a wrong option type with the option's name, the type wanted and the type given", function()
    assert.has_error(function() fs.lock(p("l"), { message = 42 }) end,
      "bad option 'message' (string expected, got number)")
    assert.has_error(function() fs.lock(p("l"), { timeout = "soon" }) end,
      "bad option 'timeout' (non-negative number of seconds expected, got string)")
    assert.has_error(function() sqlite.open(p("x.db"), { readonly = "yes" }) end,
      "bad option 'readonly' (boolean expected, got string)")
    assert.has_error(function() sqlite.open(p("x.db"), { busy_timeout = 1.5 }) end)
  end)
end)
