-- `cmake --install` puts the engine where a stock lua5.4 finds it, and the
-- installed juju runs from its prefix.
local fs = require("juju.fs")
local sys = require("juju.sys")
local h = require("helpers")

local MODULES = { "yaml", "json", "crypto", "config", "fs", "sys", "http", "storage", "tools" }

-- Sanitized modules can only load into a stock interpreter with the
-- sanitizer runtimes preloaded.
local function preload_for(so)
  local r = sys.run({ "ldd", so }, {})
  local libs = {}
  for name, path in (r.stdout or ""):gmatch("(lib%w+san)%.so[%.%d]* => (%S+)") do
    if name == "libasan" or name == "libubsan" then libs[#libs + 1] = path end
  end
  return table.concat(libs, " ")
end

describe("installation", function()
  after_each(function() h.cleanup(); collectgarbage() end)

  it("installs modules, scripts and providers where lua5.4 and juju find them", function()
    local prefix = h.tmpdir("juju-install-")
    local r = sys.run({ "cmake", "--install", h.build_dir, "--prefix", prefix }, {})
    assert.are.equal(0, r.code, r.stderr)
    for _, m in ipairs(MODULES) do
      assert.is_true(fs.exists(prefix .. "/lib/lua/5.4/juju/" .. m .. ".so"), m)
    end
    assert.is_true(fs.exists(prefix .. "/share/lua/5.4/juju/cli.lua"))
    assert.is_true(fs.exists(prefix .. "/share/juju/providers/dummy.lua"))

    -- The installed juju runs without the build tree.
    local env = { PATH = os.getenv("PATH"), HOME = prefix, ASAN_OPTIONS = "detect_leaks=0" }
    r = sys.run({ prefix .. "/bin/juju", "version" }, { env = env })
    assert.are.equal(0, r.code, r.stderr)
    assert.matches("^%d+%.%d+%.%d+%-", r.stdout)

    -- A stock lua5.4 loads every module with the install paths on its search path.
    local code = {}
    for _, m in ipairs(MODULES) do code[#code + 1] = string.format("assert(require('juju.%s'))", m) end
    code[#code + 1] = "assert(require('juju.constraints').parse('mem=1G').mem == 1024)"
    code[#code + 1] = string.format("assert(require('juju_site').providers_dir == %q)", prefix .. "/share/juju/providers")
    code[#code + 1] = "assert(require('juju.providers').load(nil, 'dummy'))"
    code[#code + 1] = "io.write('ok')"
    local lua_env = {
      PATH = os.getenv("PATH"), ASAN_OPTIONS = "detect_leaks=0",
      LUA_PATH_5_4 = prefix .. "/share/lua/5.4/?.lua;" .. prefix .. "/share/lua/5.4/?/init.lua;;",
      LUA_CPATH_5_4 = prefix .. "/lib/lua/5.4/?.so;;",
      LD_PRELOAD = preload_for(prefix .. "/lib/lua/5.4/juju/yaml.so"),
    }
    r = sys.run({ "lua5.4", "-e", table.concat(code, "; ") }, { env = lua_env })
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal("ok", r.stdout)

    -- One core library, found through RUNPATH $ORIGIN: no absolute path to
    -- the build tree or the prefix in any binary.
    assert.is_true(fs.exists(prefix .. "/lib/libjujucore.so"))
    for _, bin in ipairs({ prefix .. "/bin/juju", prefix .. "/bin/jujud", prefix .. "/lib/lua/5.4/juju/ssh.so" }) do
      r = sys.run({ "readelf", "-d", bin }, {})
      assert.are.equal(0, r.code, r.stderr)
      local runpath = r.stdout:match("RUNPATH%)%s+Library runpath: %[([^%]]*)%]")
      assert.is_truthy(runpath and runpath:match("^%$ORIGIN/"), bin)
      assert.is_nil(r.stdout:find("RPATH)", 1, true), bin)
    end

    -- A moved install still runs: everything is found relative to itself.
    local moved = h.tmpdir("juju-moved-") .. "/prefix"
    assert(fs.rename(prefix, moved))
    r = sys.run({ moved .. "/bin/juju", "version" }, { env = env })
    assert.are.equal(0, r.code, r.stderr)
    lua_env.LUA_PATH_5_4 = moved .. "/share/lua/5.4/?.lua;;"
    lua_env.LUA_CPATH_5_4 = moved .. "/lib/lua/5.4/?.so;;"
    r = sys.run({ "lua5.4", "-e", "assert(require('juju.ssh')); assert(require('juju.sys')); io.write('ok')" },
      { env = lua_env })
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal("ok", r.stdout)
  end)
end)
