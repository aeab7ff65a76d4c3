-- The docs name real things: every scenario call in docs/scenarios.md
-- exists, and providers/CONTRACT.md's operation table is the contract's
-- list (juju.providers.OPERATIONS), no more, no less.
local h = require("helpers")
local providers = require("juju.providers")
local testing = require("juju.testing")

describe("documentation", function()
  after_each(function() h.cleanup(); collectgarbage() end)

  it("docs/scenarios.md documents scenario calls that exist", function()
    local text = h.read(h.source_dir .. "/docs/scenarios.md")
    local s <close> = testing.new {}
    local n = 0
    for name in text:gmatch("`s:([%w_]+)%(") do
      n = n + 1
      assert.is_function(s[name], "docs/scenarios.md mentions s:" .. name .. " which does not exist")
    end
    assert.is_true(n >= 15)
  end)

  it("providers/CONTRACT.md lists exactly the contract's operations, with the right required column", function()
    local text = h.read(h.source_dir .. "/providers/CONTRACT.md")
    local section = assert(text:match("## Operations(.-)\n## "))
    local documented = {}
    for name, req in section:gmatch("\n| `([%w_]+)` | (%a+) |") do documented[name] = req end
    for _, op in ipairs(providers.OPERATIONS) do
      assert.are.equal(op.required and "yes" or "no", documented[op.name], "CONTRACT.md: operation " .. op.name)
      documented[op.name] = nil
    end
    assert.are.same({}, documented)
    assert.matches("api_version = 2", h.read(h.source_dir .. "/README.md"))
  end)
end)
