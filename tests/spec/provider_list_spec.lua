-- juju.provider_list (issue 17.4): `juju help` lists the providers from a
-- cache of their descriptions instead of running every script. What it
-- lists must be what loading every script gives (providers.list), for a
-- user's provider too; an edited script is read again; a broken one is
-- reported with the same error on every listing; the cache spares the
-- scripts that did not change.
local fs = require("juju.fs")
local providers = require("juju.providers")
local plist = require("juju.provider_list")
local h = require("helpers")

local function script(name, desc, extra)
  return string.format([[
local P = { name = %q, api_version = 2, description = %q, config = { fields = {} } }
for _, op in ipairs({ "prepare_for_bootstrap", "open", "state_server_instances", "start_instance", "destroy",
  "storage" }) do
  P[op] = function() return nil, "not here" end
end
%s
return P
]], name, desc, extra or "")
end

-- A script that appends a line to `counter` each time it runs.
local function counting(name, desc, counter)
  return script(name, desc, string.format('local f = io.open(%q, "a"); f:write("ran\\n"); f:close()', counter))
end

local function runs(counter)
  local n = 0
  for _ in (fs.read_file(counter) or ""):gmatch("ran\n") do n = n + 1 end
  return n
end

local function by_name(list)
  local out = {}
  for _, e in ipairs(list) do out[e.name] = e end
  return out
end

-- providers.list without the boilerplate: what provider_list.list must give.
local function full_listing(home)
  local out = {}
  for _, e in ipairs(providers.list(home)) do
    out[#out + 1] = { name = e.name, path = e.path, description = e.description, error = e.error }
  end
  return out
end

-- Sets a file's mtime to a fixed past time (an edit that keeps the size
-- must still be seen even within the same second).
local function touch_past(path)
  assert(os.execute(string.format("touch -d '2001-02-03 04:05:06' %q", path)))
end

describe("provider listing", function()
  after_each(function() h.cleanup(); collectgarbage() end)

  it("lists what loading every script gives, with or without the cache", function()
    local home = h.tmpdir()
    h.write(home .. "/providers/mycloud.lua", script("mycloud", "my own cloud"))
    h.write(home .. "/providers/broken.lua", "return { name = 'broken', api_version = 2 ")
    h.write(home .. "/providers/folder/init.lua", script("folder", "a folder provider",
      'P.HELPER = require("folder.helper")'))
    h.write(home .. "/providers/folder/helper.lua", "return 1")
    local want = full_listing(home)
    assert.is_nil(fs.read_file(home .. "/" .. plist.CACHE_FILE))
    assert.are.same(want, plist.list(home)) -- builds the cache
    assert.is_truthy(fs.read_file(home .. "/" .. plist.CACHE_FILE))
    assert.are.same(want, plist.list(home)) -- from the cache
    local got = by_name(plist.list(home))
    assert.are.equal("my own cloud", got.mycloud.description)
    assert.are.equal("a folder provider", got.folder.description)
    assert.matches('provider "broken": cannot load', got.broken.error)
    assert.is_truthy(got.ec2 and got.manual and got["local"])
  end)

  it("does not run an unchanged script again, and runs an edited one", function()
    local home = h.tmpdir()
    local counter = home .. "/ran"
    local path = home .. "/providers/mycloud.lua"
    h.write(path, counting("mycloud", "first words", counter))
    assert.are.equal("first words", by_name(plist.list(home)).mycloud.description)
    assert.are.equal(1, runs(counter))
    assert.are.equal("first words", by_name(plist.list(home)).mycloud.description)
    assert.are.equal(1, runs(counter))
    -- same size, other text and mtime
    h.write(path, counting("mycloud", "other words", counter))
    touch_past(path)
    assert.are.equal("other words", by_name(plist.list(home)).mycloud.description)
    assert.are.equal(2, runs(counter))
    -- a folder provider is read again when one of its private modules changes
    h.write(home .. "/providers/deep/init.lua", script("deep", "deep one", 'P.DESC = require("deep.words")'))
    h.write(home .. "/providers/deep/words.lua", "return 'x'")
    assert.is_nil(by_name(plist.list(home)).deep.error)
    h.write(home .. "/providers/deep/words.lua", "error('now broken')")
    local e = by_name(plist.list(home)).deep
    assert.matches("now broken", e.error)
    assert.are.equal(by_name(full_listing(home)).deep.error, e.error)
  end)

  it("reports a broken script on every listing, also one that loaded before", function()
    local home = h.tmpdir()
    local path = home .. "/providers/mycloud.lua"
    h.write(path, script("mycloud", "works"))
    assert.is_nil(by_name(plist.list(home)).mycloud.error)
    h.write(path, script("mycloud", "works", "error('broken on purpose')"))
    local want = by_name(full_listing(home)).mycloud.error
    assert.matches("broken on purpose", want)
    for _ = 1, 2 do
      local e = by_name(plist.list(home)).mycloud
      assert.are.equal(want, e.error)
      assert.are.equal("", e.description)
    end
    -- and fixed again, it is listed again
    h.write(path, script("mycloud", "fixed"))
    touch_past(path)
    assert.are.equal("fixed", by_name(plist.list(home)).mycloud.description)
  end)

  it("a user's provider added after the cache was built is listed; a removed one is not", function()
    local home = h.tmpdir()
    assert.is_nil(by_name(plist.list(home)).later)
    h.write(home .. "/providers/later.lua", script("later", "added later"))
    assert.are.equal("added later", by_name(plist.list(home)).later.description)
    assert(fs.remove(home .. "/providers/later.lua"))
    assert.is_nil(by_name(plist.list(home)).later)
  end)

  it("keeps the entries of another tree's providers in a shared JUJU_HOME", function()
    local home = h.tmpdir()
    plist.list(home)
    local file = home .. "/" .. plist.CACHE_FILE
    local other = "/elsewhere/share/juju/providers/ec2/init.lua\tx\tec2\tanother tree's ec2\n"
    h.write(file, h.read(file) .. other)
    plist.list(home)
    assert.is_truthy(h.read(file):find(other, 1, true))
  end)

  it("a cache from another engine version or unreadable is rebuilt", function()
    local home = h.tmpdir()
    local counter = home .. "/ran"
    h.write(home .. "/providers/mycloud.lua", counting("mycloud", "mine", counter))
    h.write(home .. "/" .. plist.CACHE_FILE, "this is not Lua (")
    assert.are.equal("mine", by_name(plist.list(home)).mycloud.description)
    assert.are.equal(1, runs(counter))
    local text = h.read(home .. "/" .. plist.CACHE_FILE)
    h.write(home .. "/" .. plist.CACHE_FILE, (text:gsub("^juju%-provider%-list [^\n]*", "juju-provider-list 0.0.1")))
    plist.list(home)
    assert.are.equal(2, runs(counter))
    plist.list(home)
    assert.are.equal(2, runs(counter))
  end)

  it("keeps any description and path as they are", function()
    local home = h.tmpdir() .. "/a\tb\\c"
    local counter = home .. "/ran"
    local odd = "tab\there, back\\slash \\t, new\nline"
    h.write(home .. "/providers/odd.lua", counting("odd", odd, counter))
    assert.are.equal(odd, by_name(plist.list(home)).odd.description)
    local e = by_name(plist.list(home)).odd
    assert.are.equal(1, runs(counter)) -- the second from the cache
    assert.are.equal(odd, e.description)
    assert.are.equal(home .. "/providers/odd.lua", e.path)
  end)

  it("juju help prints the same text from the cache as from the scripts", function()
    local root = h.tmpdir()
    local env = h.env(root)
    assert(fs.mkdir_p(env.JUJU_HOME, tonumber("700", 8)))
    h.write(env.JUJU_HOME .. "/providers/mycloud.lua", script("mycloud", "my own cloud, reached by magic"))
    h.write(env.JUJU_HOME .. "/providers/broken.lua", "return {")
    for _, topic in ipairs({ "topics", "providers" }) do
      fs.remove(env.JUJU_HOME .. "/" .. plist.CACHE_FILE)
      local c1, first = h.juju(env, { "help", topic })
      local c2, second = h.juju(env, { "help", topic })
      assert.are.equal(0, c1)
      assert.are.equal(0, c2)
      assert.are.equal(first, second)
      assert.matches("mycloud", second)
      assert.is_nil(second:find("broken", 1, true))
      assert.is_nil(second:find("dummy", 1, true))
    end
    local _, basics = h.juju(env, { "help" })
    assert.matches("juju help mycloud%-provider +my own cloud, reached by magic\n", basics)
    assert.matches("juju help ec2%-provider +Amazon EC2", basics)
  end)
end)
