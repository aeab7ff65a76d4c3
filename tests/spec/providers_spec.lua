local providers = require("juju.providers")
local h = require("helpers")

local good = [[
local P = { name = "%s", api_version = 2, config = { fields = {} } }
function P.prepare_for_bootstrap(_, cfg) return cfg end
function P.open(_, cfg) return { cfg = cfg, marker = "%s" } end
function P.state_server_instances() return nil, "no", "NOT_BOOTSTRAPPED" end
function P.start_instance() return nil, "no" end
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
    assert.are.equal(2, p.api_version)
  end)

  describe("bytecode of built-in scripts (JUJU_HOME/cache/bytecode)", function()
    local fs = require("juju.fs")
    local function touch(path, when) assert(os.execute(string.format("touch -d @%s '%s'", when, path))) end

    it("a built-in provider runs from the cache the next time, and the same", function()
      local home = h.tmpdir()
      local a = assert(providers.load(home, "dummy"))
      local cache = home .. "/" .. providers.BYTECODE_DIR .. "/dummy.lua"
      local text = h.read(cache)
      assert.matches("^juju%-provider%-bytecode ", text)
      assert.are.equal("\27Lua", text:sub(#text:match("^[^\n]*\n") + 1, #text:match("^[^\n]*\n") + 4))
      local b = assert(providers.load(home, "dummy"))
      assert.are.equal(a.path, b.path)
      assert.are.equal(debug.getinfo(a.open, "S").source, debug.getinfo(b.open, "S").source)
      assert.are.equal(debug.getinfo(a.open, "S").linedefined, debug.getinfo(b.open, "S").linedefined)
    end)

    it("uses the bytecode while the script is unchanged and its text once it is edited", function()
      local dir = h.tmpdir()
      local script, cache = dir .. "/p.lua", dir .. "/cache/p.lua"
      h.write(script, "return 'one'\n")
      touch(script, "1000000000")
      assert.are.equal("one", assert(providers.load_chunk(script, {}, cache))())
      assert.is_true(fs.exists(cache))
      -- same size and mtime, other text: the cache is what runs
      h.write(script, "return 'two'\n")
      touch(script, "1000000000")
      assert.are.equal("one", assert(providers.load_chunk(script, {}, cache))())
      -- appended to (a scenario extending a built-in script): the text runs, the cache follows
      local f = assert(io.open(script, "a"))
      f:write("-- more\n")
      f:close()
      assert.are.equal("two", assert(providers.load_chunk(script, {}, cache))())
      assert.are.equal("two", assert(providers.load_chunk(script, {}, cache))())
      -- a torn cache is compiled again
      local full = h.read(cache)
      h.write(cache, full:sub(1, #full - 10))
      assert.are.equal("two", assert(providers.load_chunk(script, {}, cache))())
    end)

    it("errors from the bytecode name the script's file and line", function()
      local dir = h.tmpdir()
      local script, cache = dir .. "/p.lua", dir .. "/cache/p.lua"
      h.write(script, "local x = 1\n\nerror('on line 3')\n")
      for _ = 1, 2 do
        local ok, err = pcall(assert(providers.load_chunk(script, setmetatable({}, { __index = _G }), cache)))
        assert.is_false(ok)
        assert.are.equal(script .. ":3: on line 3", err)
      end
      assert.is_true(fs.exists(cache))
    end)

    it("$JUJU_HOME/providers scripts are loaded as text, never cached", function()
      local home = h.tmpdir()
      h.write(home .. "/providers/mycloud.lua", string.format(good, "mycloud", "mine"))
      assert(providers.load(home, "mycloud"))
      assert.is_nil(fs.list(home .. "/" .. providers.BYTECODE_DIR))
    end)
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
    h.write(home .. "/providers/half.lua", [[return { name = "half", api_version = 2, config = { fields = {} },
      prepare_for_bootstrap = function() end }]])
    local p, err = providers.load(home, "half")
    assert.is_nil(p)
    assert.matches('provider "half" %(.*half%.lua%): missing required operation "open"', err)
    h.write(home .. "/providers/wrongname.lua", string.format(good, "other", "x"))
    p, err = providers.load(home, "wrongname")
    assert.is_nil(p)
    assert.matches('field "name" must be "wrongname"', err)
    h.write(home .. "/providers/oldapi.lua", (string.format(good, "oldapi", "x"):gsub("api_version = 2", "api_version = 0")))
    p, err = providers.load(home, "oldapi")
    assert.is_nil(p)
    assert.matches('"api_version" must be 2', err)
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

  -- Section 3 of issue 9: every misspelling is refused at load, naming the
  -- provider, its file and the key, with the nearest valid name.
  local function with(name, edit)
    local home = h.tmpdir()
    local text = edit(string.format(good, name, "x"))
    h.write(home .. "/providers/" .. name .. ".lua", text)
    return providers.load(home, name)
  end

  it("refuses a misspelt config field key (secert, requird)", function()
    local p, err = with("sec", function(t)
      return (t:gsub("config = { fields = {} }", 'config = { fields = { ["api-key"] = { type = "string", secert = true } } }'))
    end)
    assert.is_nil(p)
    assert.matches('provider "sec" %(.*sec%.lua%): config field "api%-key": unknown key "secert" %(did you mean secret%?%)', err)
    p, err = with("req", function(t)
      return (t:gsub("config = { fields = {} }", 'config = { fields = { region = { type = "string", requird = true } } }'))
    end)
    assert.is_nil(p)
    assert.matches('provider "req" %(.*req%.lua%): config field "region": unknown key "requird" %(did you mean required%?%)', err)
  end)

  it("refuses misspelt and version-1 operations (destory, stop_instance)", function()
    local p, err = with("des", function(t) return t .. "" end)
    assert.is_truthy(p, err)
    p, err = with("des2", function(t) return (t:gsub("function P.destroy%(%)", "function P.destory()")) end)
    assert.is_nil(p)
    assert.matches('provider "des2" %(.*des2%.lua%): unknown key "destory" %(did you mean destroy%?%)', err)
    p, err = with("stop", function(t) return (t:gsub("return P\n", "function P.stop_instance() end\nreturn P\n")) end)
    assert.is_nil(p)
    assert.matches('provider "stop" %(.*stop%.lua%): unknown key "stop_instance" %(did you mean stop_instances%? '
      .. 'it is not in contract version 2: .*release', err)
  end)

  it("refuses a declared field with a bad value (default_state_store = postgres) or type", function()
    local p, err = with("pg", function(t) return (t:gsub("api_version = 2,", 'api_version = 2, default_state_store = "postgres",')) end)
    assert.is_nil(p)
    assert.matches('provider "pg" %(.*pg%.lua%): field "default_state_store" must be "sqlite", "mongodb" or "dqlite", got "postgres"', err)
    p, err = with("ty", function(t)
      return (t:gsub("config = { fields = {} }", 'config = { fields = { region = { type = "strng" } } }'))
    end)
    assert.is_nil(p)
    assert.matches('provider "ty" %(.*ty%.lua%): config field "region": type "strng" is not one of .* %(did you mean string%?%)', err)
    p, err = with("ty2", function(t)
      return (t:gsub("config = { fields = {} }", 'config = { fields = { region = { type = "string", required = "yes" } } }'))
    end)
    assert.is_nil(p)
    assert.matches('provider "ty2" %(.*ty2%.lua%): config field "region": key "required" must be a boolean, got string', err)
    p, err = with("ty3", function(t) return (t:gsub("api_version = 2,", "api_version = 2, description = 7,")) end)
    assert.is_nil(p)
    assert.matches('provider "ty3" %(.*ty3%.lua%): field "description" must be a string, got number', err)
    p, err = with("ty4", function(t) return (t:gsub("api_version = 2,", "api_version = 2, descripton = 'x',")) end)
    assert.is_nil(p)
    assert.matches('unknown key "descripton" %(did you mean description%?%)', err)
  end)

  it("tells a version-1 script what changed", function()
    local p, err = with("old", function(t) return (t:gsub("api_version = 2", "api_version = 1")) end)
    assert.is_nil(p)
    assert.matches('provider "old" %(.*old%.lua%) is written for provider contract version 1', err)
    assert.matches("start_instance", err)
    assert.matches("release", err)
  end)

  it("loads a folder provider NAME/init.lua with private modules, and lists what exists", function()
    local home = h.tmpdir()
    h.write(home .. "/providers/folder/init.lua", (string.format(good, "folder", "x"):gsub("local P = ",
      'local helper = require("folder.helper")\nlocal P = '):gsub('marker = "x"', "marker = helper.mark")))
    h.write(home .. "/providers/folder/helper.lua", 'return { mark = "from-helper" }')
    local logged = {}
    local p = assert(providers.load(home, "folder", { log = { debugf = function(_, fmt, ...)
      logged[#logged + 1] = string.format(fmt, ...) end } }))
    assert.are.equal("from-helper", p.open(nil, {}).marker)
    assert.are.equal(home .. "/providers/folder/init.lua", p.path)
    assert.matches('provider "folder" loaded from .*folder/init%.lua', logged[1])
    local names = providers.names(home)
    assert.is_truthy(table.concat(names, " "):find("folder", 1, true))
    assert.is_truthy(table.concat(names, " "):find("dummy", 1, true))
    assert.is_truthy(table.concat(names, " "):find("ec2", 1, true))
    assert.is_truthy(table.concat(names, " "):find("joyent", 1, true))
    assert.is_truthy(table.concat(names, " "):find("azure", 1, true))
    for _, e in ipairs(providers.list(home)) do
      if e.name == "dummy" then assert.matches("test provider", e.description) end
    end
  end)

  it("names only providers that exist for an unknown type", function()
    local envopen = require("juju.environs.open")
    local p, err = envopen.provider_for(h.tmpdir(), "e", "nosuch")
    assert.is_nil(p)
    assert.matches("Use one of: azure, dummy, ec2, joyent, local, maas, manual, openstack", err)
  end)
end)
