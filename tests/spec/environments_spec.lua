local fs = require("juju.fs")
local yaml = require("juju.yaml")
local environments = require("juju.environs.environments")
local config = require("juju.environs.config")
local context = require("juju.context")
local h = require("helpers")

local conformance = h.shared_dir .. "/conformance/environments"

-- Re-indents text by `by` spaces after removing its common indentation.
local function reindent(text, by)
  local common
  for line in text:gmatch("[^\n]*") do
    if line:match("%S") and not line:match("^%s*#") then
      local n = #line:match("^ *")
      if not common or n < common then common = n end
    end
  end
  common = common or 0
  local pad = string.rep(" ", by)
  local out = {}
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    if line:match("%S") then
      local lead = #line:match("^ *")
      out[#out + 1] = pad .. line:sub(math.min(lead, common) + 1)
    else
      out[#out + 1] = ""
    end
  end
  return table.concat(out, "\n") .. "\n"
end

-- Wraps a documentation fragment as a user would paste it into environments.yaml:
-- a fragment of environment entries goes under "environments:", a fragment of
-- keys inside one environment entry.
local function wrap(name, text)
  local doc = yaml.decode(text, name)
  local entries_fragment = type(doc) == "table" and doc.environments == nil and doc.type == nil
  if entries_fragment then
    for _, v in pairs(doc) do
      if type(v) ~= "table" then entries_fragment = false end
    end
  end
  if entries_fragment then return "environments:\n" .. reindent(text, 4) end
  local typeline = (type(doc) == "table" and doc.type) and "" or "        type: local\n"
  return "environments:\n    sample:\n" .. typeline .. reindent(text, 8)
end

local function silent_ctx(home)
  local err = {}
  local ctx = context.new { env = { HOME = home, JUJU_HOME = home }, stdout = function() end,
    stderr = function(s) err[#err + 1] = s end }
  return ctx, err
end

describe("environments.yaml", function()
  after_each(function() h.cleanup(); collectgarbage() end)

  it("loads every conformance example, whole or wrapped as a user would", function()
    local files = assert(fs.list(conformance))
    local loaded = 0
    for _, f in ipairs(files) do
      if f:match("%.yaml$") and not f:match("%.jenv%.yaml$") and f ~= "charms-environments.yaml" then
        local text = h.read(conformance .. "/" .. f)
        local doc = yaml.decode(text, f)
        if not (type(doc) == "table" and doc.environments) then text = wrap(f, text) end
        local envs, err = environments.parse(text, f)
        assert(envs, tostring(err))
        local names = envs:names()
        assert.is_true(#names > 0, f)
        -- `juju switch -l` lists exactly these names.
        local env = h.env(h.tmpdir())
        h.write(env.JUJU_HOME .. "/environments.yaml", text)
        local code, out, serr = h.juju(env, { "switch", "-l" })
        assert.are.equal(0, code, serr)
        assert.are.equal(table.concat(names, "\n"), (out:gsub(" %*", ""):gsub("\n$", "")), f)
        local home = h.tmpdir()
        local ctx = silent_ctx(home)
        for _, n in ipairs(names) do
          local attrs, marks = envs:attrs(n)
          local cfg, cerr = config.from_environments(ctx, attrs, marks, { file = f, home = home })
          assert(cfg, f .. ": " .. tostring(cerr))
          assert.are.equal(n, cfg.name)
          assert.is_string(cfg["logging-config"])
        end
        loaded = loaded + 1
      end
    end
    assert.is_true(loaded >= 28, "loaded " .. loaded)
  end)

  it("rejects the docs' elided example with the file and line", function()
    local text = h.read(conformance .. "/charms-environments.yaml")
    local envs, err = environments.parse(text, "charms-environments.yaml")
    assert.is_nil(envs)
    assert.matches("^charms%-environments%.yaml:%d+:%d+: ", err)
  end)

  it("reads the three juju init boilerplates with their default", function()
    for _, v in ipairs({ "1.24.7", "1.25.0", "1.25.11" }) do
      local envs = assert(environments.parse(h.read(conformance .. "/juju-init-" .. v .. ".yaml"), v))
      assert.are.equal("amazon", envs.default)
      assert.is_table(envs.entries["local"])
      assert.is_table(envs.entries.manual)
    end
  end)

  it("names the file, line and key of structural errors", function()
    local envs, err = environments.parse("default: nope\nenvironments:\n  a:\n    type: local\n", "e.yaml")
    assert.is_nil(envs)
    assert.are.equal('e.yaml:1:10: default environment "nope" does not exist', err)
    envs, err = environments.parse("environments:\n  a: 3\n", "e.yaml")
    assert.is_nil(envs)
    assert.matches('^e%.yaml:2:%d+: environment "a": expected a mapping of settings', err)
    envs, err = environments.parse("environments: [1, 2]\n", "e.yaml")
    assert.is_nil(envs)
    assert.matches("must be a mapping", err)
  end)

  it("chooses the environment with Juju's precedence", function()
    local home = h.tmpdir()
    local envs = assert(environments.parse("default: b\nenvironments:\n  a: {type: local}\n  b: {type: local}\n  c: {type: local}\n", "x"))
    local ctx = context.new { env = {} }
    assert.are.equal("b", environments.choose(ctx, home, nil, envs))
    assert(environments.write_current(home, "c"))
    assert.are.equal("c", environments.choose(ctx, home, nil, envs))
    ctx = context.new { env = { JUJU_ENV = "a" } }
    assert.are.equal("a", environments.choose(ctx, home, nil, envs))
    assert.are.equal("x", environments.choose(ctx, home, "x", envs))
    local only = assert(environments.parse("environments:\n  solo: {type: local}\n", "y"))
    assert.are.equal("solo", environments.choose(context.new { env = {} }, h.tmpdir(), nil, only))
    local two = assert(environments.parse("environments:\n  a: {type: local}\n  b: {type: local}\n", "z"))
    assert.is_nil(environments.choose(context.new { env = {} }, h.tmpdir(), nil, two))
  end)
end)
