local fs = require("juju.fs")
local sys = require("juju.sys")
local context = require("juju.context")
local configstore = require("juju.environs.configstore")
local h = require("helpers")

local function info(secret)
  return { user = "admin", password = secret, ["environ-uuid"] = "7d2e6c1a-9b8f-4e3d-a2c1-0f9e8d7c6b5a",
    ["state-servers"] = {}, ["ca-cert"] = "CERT\n", ["bootstrap-config"] = { name = "e", type = "dummy" } }
end

describe("the .jenv store", function()
  local home, store
  before_each(function()
    home = h.tmpdir()
    store = assert(configstore.open(context.new { env = {} }, home))
  end)
  after_each(function() h.cleanup(); collectgarbage() end)

  it("creates environments/ 0700 and .jenv 0600 with Juju's field order", function()
    assert(store:create("e", info("secret-1")))
    assert.are.equal(tonumber("700", 8), fs.stat(home .. "/environments").mode)
    assert.are.equal(tonumber("600", 8), fs.stat(store:path("e")).mode)
    local text = h.read(store:path("e"))
    local keys = {}
    for k in text:gmatch("\n?([%w-]+):") do keys[#keys + 1] = k end
    assert.are.same({ "user", "password", "environ-uuid", "state-servers", "ca-cert", "bootstrap-config" },
      { keys[1], keys[2], keys[3], keys[4], keys[5], keys[6] })
    assert.matches("state%-servers: %[%]", text)
    local back = assert(store:read("e"))
    assert.are.equal("secret-1", back.password)
    assert.are.equal("dummy", back["bootstrap-config"].type)
  end)

  it("never overwrites on create", function()
    assert(store:create("e", info("first")))
    local ok, err, code = store:create("e", info("second"))
    assert.is_nil(ok)
    assert.are.equal("environment info already exists", err)
    assert.are.equal("EEXIST", code)
    assert.are.equal("first", store:read("e").password)
  end)

  it("rewrites atomically, leaving no temporary files", function()
    assert(store:create("e", info("first")))
    local i = info("second")
    i["state-servers"] = { "10.0.0.1:17070" }
    assert(store:write("e", i))
    assert.are.same({ "e.jenv" }, (function()
      local out = {}
      for _, n in ipairs(fs.list(home .. "/environments")) do if n ~= "env.lock" then out[#out + 1] = n end end
      return out
    end)())
    assert.are.same({ "10.0.0.1:17070" }, store:read("e")["state-servers"])
  end)

  it("reports a corrupt .jenv with its path and the way out", function()
    h.write(store:path("bad"), "user: [unclosed\n")
    local r, err, code = store:read("bad")
    assert.is_nil(r)
    assert.are.equal("CORRUPT", code)
    assert.matches("error reading environment info", err)
    assert.matches("bad%.jenv:%d+:%d+", err)
    assert.matches("destroy%-environment %-%-force bad", err)
  end)

  it("treats an empty .jenv as prepared without bootstrap config", function()
    h.write(store:path("empty"), "")
    assert.is_true(store:read("empty").empty)
  end)

  it("reads the .jenv published in the Juju docs", function()
    local text = h.read(h.shared_dir .. "/conformance/environments/juju-multiuser-environments-fred-local.jenv.yaml")
    h.write(store:path("fred"), text)
    local r = assert(store:read("fred"))
    assert.are.equal("fred", r.user)
    assert.is_string(r["ca-cert"])
    assert.is_table(r["state-servers"])
  end)

  it("serialises writers with env.lock and names the holder", function()
    local l = assert(store:lock("writing"))
    -- A second process cannot take the lock while we hold it.
    local script = h.tmpdir() .. "/lock.lua"
    h.write(script, string.format([[
      local fs = require("juju.fs")
      local l, err = fs.lock(%q, { timeout = 0 })
      io.write(l and "got" or err)
    ]], home .. "/environments/env.lock"))
    local r = sys.run({ h.juju_exe, "lua", script }, {})
    assert.matches("held by pid: " .. sys.getpid() .. ", operation: writing", r.stdout)
    l:release()
    r = sys.run({ h.juju_exe, "lua", script }, {})
    assert.are.equal("got", r.stdout)
  end)
end)
