local providers = require("juju.providers")
local h = require("helpers")

local good = [[
local P = { name = "%s", api_version = 1, config = { fields = {} } }
function P.prepare_for_bootstrap(_, cfg) return cfg end
function P.open(_, cfg) return { cfg = cfg, marker = "%s" } end
function P.state_server_instances() return nil, "no", "NOT_BOOTSTRAPPED" end
function P.bootstrap() return nil, "no" end
function P.destroy() return true end
function P.storage() return {} end
leaked_global = true
return P
]]

describe("provider loading", function()
  after_each(function() h.cleanup(); collectgarbage() end)

  it("loads the built-in dummy provider and checks it", function()
    local p = assert(providers.load(nil, "dummy"))
    assert.are.equal("dummy", p.name)
    assert.are.equal(1, p.api_version)
  end)

  it("finds $JUJU_HOME/providers/NAME.lua first, in its own _ENV", function()
    local home = h.tmpdir()
    h.write(home .. "/providers/dummy.lua", string.format(good, "dummy", "custom"))
    h.write(home .. "/providers/mycloud.lua", string.format(good, "mycloud", "mine"))
    local p = assert(providers.load(home, "dummy"))
    assert.are.equal("custom", p.open(nil, {}).marker)
    assert.are.equal(home .. "/providers/dummy.lua", p.path)
    assert.are.equal("mine", assert(providers.load(home, "mycloud")).open(nil, {}).marker)
    assert.is_nil(rawget(_G, "leaked_global"))
  end)

  it("names the provider, file and missing field", function()
    local home = h.tmpdir()
    h.write(home .. "/providers/half.lua", [[return { name = "half", api_version = 1, config = { fields = {} },
      prepare_for_bootstrap = function() end }]])
    local p, err = providers.load(home, "half")
    assert.is_nil(p)
    assert.matches('provider "half" %(.*half%.lua%): missing required operation "open"', err)
    h.write(home .. "/providers/wrongname.lua", string.format(good, "other", "x"))
    p, err = providers.load(home, "wrongname")
    assert.is_nil(p)
    assert.matches('field "name" must be "wrongname"', err)
    h.write(home .. "/providers/oldapi.lua", (string.format(good, "oldapi", "x"):gsub("api_version = 1", "api_version = 0")))
    p, err = providers.load(home, "oldapi")
    assert.is_nil(p)
    assert.matches('"api_version" must be 1', err)
    h.write(home .. "/providers/syntax.lua", "return {")
    p, err = providers.load(home, "syntax")
    assert.is_nil(p)
    assert.matches('provider "syntax": cannot load', err)
  end)

  it("refuses unknown types and odd names", function()
    local p, err = providers.load(nil, "nosuch")
    assert.is_nil(p)
    assert.matches('no registered provider for "nosuch"', err)
    p, err = providers.load(nil, "../etc/passwd")
    assert.is_nil(p)
    assert.matches("no registered provider", err)
  end)

  it("lists every contract operation with its doc", function()
    local required = 0
    for _, op in ipairs(providers.OPERATIONS) do
      assert.is_string(op.doc)
      if op.required then required = required + 1 end
    end
    assert.is_true(required >= 6)
  end)
end)
