-- The README's examples are code: they are extracted and run here.
local providers = require("juju.providers")
local yaml = require("juju.yaml")
local h = require("helpers")

local function readme_block(marker)
  local text = h.read(h.source_dir .. "/README.md")
  for block in text:gmatch("```lua\n(.-)```") do
    if block:find(marker, 1, true) then return block end
  end
  error("no README block with " .. marker)
end

describe("README examples", function()
  after_each(function() h.cleanup(); collectgarbage() end)

  it("the scenario script runs under juju lua", function()
    local dir = h.tmpdir()
    h.write(dir .. "/my_scenario.lua", readme_block("my_scenario.lua"))
    local r = require("juju.sys").run({ h.juju_exe, "lua", dir .. "/my_scenario.lua" }, {})
    assert.are.equal(0, r.code, r.stderr)
    assert.matches("^steps: prepare check%-bootstrapped preflight", r.stdout)
  end)

  it("the provider script loads, passes the contract and prepares an environment", function()
    local root = h.tmpdir()
    local env = h.env(root)
    h.write(env.JUJU_HOME .. "/providers/example.lua", readme_block("providers/example.lua"))
    local p = assert(providers.load(env.JUJU_HOME, "example"))
    assert.are.equal("example", p.name)
    h.write(env.JUJU_HOME .. "/environments.yaml", string.format(
      "environments:\n  ex:\n    type: example\n    world-dir: %s/world\n    token: tok-123456789\n", root))
    local code, out, err = h.juju(env, { "bootstrap", "-e", "ex", "--debug" })
    assert.are.equal(0, code, err)
    local info = assert(yaml.decode(h.read(env.JUJU_HOME .. "/environments/ex.jenv")))
    assert.are.equal(root .. "/world", info["bootstrap-config"]["world-dir"])
    assert.are.same({ "127.0.0.1:17070" }, info["state-servers"])
    assert.matches("^#!/bin/bash", h.read(root .. "/world/instances/example-0/install.sh"))
    assert.is_nil((out .. err):find("tok-123456789", 1, true))
    local dcode, _, derr = h.juju(env, { "destroy-environment", "-y", "ex" })
    assert.are.equal(0, dcode, derr)
    assert.is_false(require("juju.fs").exists(root .. "/world"))
  end)
end)
