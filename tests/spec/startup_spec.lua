-- Start-up loads only what a command uses (issue 17.4): `juju version` and
-- `juju help` (which loads every provider script to list it) never load the
-- bindings of libcurl, libssh2, expat, libmongoc, libsqlite3 or libarchive.
-- Counted, not timed (bench/run.lua times it): each command runs through
-- juju.cli in a fresh `juju lua` process that then reports package.loaded.
local h = require("helpers")
local json = require("juju.json")

local HEAVY = { "juju.http", "juju.ssh", "juju.xml", "juju.mongo", "juju.sqlite", "juju.tools", "juju.dqlite",
  "juju.dqlitenode" }

local function loaded_after(args, env)
  local root = h.tmpdir()
  env = env or h.env(root)
  local script = root .. "/probe.lua"
  h.write(script, [[
local out = io.stdout
io.stdout = io.open("/dev/null", "w")
local code = require("juju.cli").main({ ]] .. table.concat((function()
    local q = {}
    for i, a in ipairs(args) do q[i] = string.format("%q", a) end
    return q
  end)(), ", ") .. [[ })
local names = {}
for name in pairs(package.loaded) do if name:match("^juju") then names[#names + 1] = name end end
table.sort(names)
out:write(require("juju.json").encode({ code = code, loaded = names }), "\n")
]])
  local r = assert(h.juju_exe_run(env, { "lua", script }))
  assert.are.equal(0, r.code, r.stderr)
  local res = assert(json.decode(r.stdout:match("[^\n]*\n?$")))
  local set = {}
  for _, n in ipairs(res.loaded) do set[n] = true end
  return res.code, set
end

describe("start-up", function()
  after_each(function() h.cleanup(); collectgarbage() end)

  for _, args in ipairs({ { "version" }, { "help" }, { "help", "commands" }, { "help", "ec2-provider" } }) do
    it("juju " .. table.concat(args, " ") .. " loads no binding it does not use", function()
      local code, set = loaded_after(args)
      assert.are.equal(0, code)
      -- the probe sees the command's modules: it ran
      assert.is_true(set["juju.commands." .. args[1]])
      for _, m in ipairs(HEAVY) do assert.is_nil(set[m], m .. " was loaded by juju " .. table.concat(args, " ")) end
    end)
  end

  it("juju help with its provider cache built runs no provider script and loads no other command", function()
    local root = h.tmpdir()
    local env = h.env(root)
    assert(require("juju.fs").mkdir_p(env.JUJU_HOME, tonumber("700", 8)))
    local _, first = loaded_after({ "help" }, env) -- builds $JUJU_HOME/cache/providers
    assert.is_true(first["juju.providers"])
    for _, args in ipairs({ { "help" }, { "help", "commands" }, { "help", "topics" } }) do
      local code, set = loaded_after(args, env)
      assert.are.equal(0, code)
      assert.is_nil(set["juju.providers"], "juju.providers loaded by juju " .. table.concat(args, " "))
      for name in pairs(set) do
        local cmd = name:match("^juju%.commands%.(.+)$")
        -- juju.commands.lua: the probe runs under `juju lua`
        assert.is_true(cmd == nil or cmd == "help" or cmd == "lua", name .. " loaded by juju " .. table.concat(args, " "))
      end
    end
  end)

  it("a dummy bootstrap loads neither the SSH finalizer nor the bindings it does not use", function()
    local root = h.tmpdir()
    local env = h.juju_user_env(root)
    h.write_environments(env, "e", { type = "dummy" })
    local code, set = loaded_after({ "bootstrap", "-e", "e" }, env)
    assert.are.equal(0, code)
    assert.is_true(set["juju.bootstrap"])
    for _, m in ipairs({ "juju.sshinit", "juju.cloud.api", "juju.ssh", "juju.http", "juju.xml", "juju.mongo",
      "juju.sqlite" }) do
      assert.is_nil(set[m], m .. " was loaded by a dummy bootstrap")
    end
  end)

  it("juju version loads neither juju.fs nor the modules it does not use", function()
    local code, set = loaded_after({ "version" })
    assert.are.equal(0, code)
    for _, m in ipairs({ "juju.fs", "juju.json", "juju.yaml", "juju.wait", "juju.providers", "juju.provider_list" }) do
      assert.is_nil(set[m], m .. " was loaded by juju version")
    end
  end)

  it("the commands' summaries in juju.cli are their modules' own purpose and aliases", function()
    local cli = require("juju.cli")
    local names = {}
    for name in pairs(cli.SUMMARIES) do names[#names + 1] = name end
    table.sort(names)
    assert.are.same(cli.COMMANDS, names)
    for _, name in ipairs(cli.COMMANDS) do
      local cmd = assert(cli.load_command(name))
      assert.are.equal(name, cmd.name)
      assert.are.equal(cmd.purpose, cli.SUMMARIES[name].purpose, name)
      assert.are.same(cmd.aliases, cli.SUMMARIES[name].aliases, name)
      for _, a in ipairs(cmd.aliases or {}) do assert.are.equal(cmd, cli.load_command(a)) end
    end
  end)

  it("cmake/luac.lua precompiles a module to bytecode that errors with the source's file and line", function()
    local sys = require("juju.sys")
    local dir = h.tmpdir()
    local src, out = dir .. "/m.lua", dir .. "/out/m.lua"
    h.write(src, "local M = {}\nfunction M.twice(x) return 2 * x end\n\nfunction M.fail() error('on line 4') end\nreturn M\n")
    assert(require("juju.fs").mkdir_p(dir .. "/out", tonumber("700", 8)))
    local r = assert(sys.run({ "lua5.4", h.source_dir .. "/cmake/luac.lua", src, out, "/where/m.lua" }, { timeout = 30 }))
    assert.are.equal(0, r.code, r.stderr)
    local text = h.read(out)
    assert.are.equal("\27Lua", text:sub(1, 4))
    assert.is_nil(load(text, "m", "t")) -- not source any more
    local m = assert(load(text, "m", "b"))()
    assert.are.equal(42, m.twice(21))
    local ok, err = pcall(m.fail)
    assert.is_false(ok)
    assert.are.equal("/where/m.lua:4: on line 4", err)
  end)

  it("the base bindings are built into juju and jujud: no dlopen of their modules, no heavy library", function()
    local sys = require("juju.sys")
    local heavy = { "libcurl", "libmongoc", "libssh2", "libarchive", "libsqlite3", "libexpat", "libcrypto", "libdqlite" }
    for _, exe in ipairs({ "juju", "jujud" }) do
      local r = assert(sys.run({ "ldd", h.build_dir .. "/bin/" .. exe }, { timeout = 30 }))
      assert.are.equal(0, r.code, r.stderr)
      assert.matches("libjujucore%.so", r.stdout)
      if not r.stdout:find("libasan", 1, true) then -- the sanitizer build links every library (cmd/CMakeLists.txt)
        for _, lib in ipairs(heavy) do
          assert.is_nil(r.stdout:find(lib, 1, true), exe .. " needs " .. lib .. ":\n" .. r.stdout)
        end
      end
    end
    local root = h.tmpdir()
    local script = root .. "/maps.lua"
    h.write(script, [[
local out = {}
for _, m in ipairs({ "sys", "fs", "yaml", "json", "config" }) do
  local builtin = package.preload["juju." .. m] ~= nil
  assert(require("juju." .. m))
  local maps = assert(io.open("/proc/self/maps")):read("a")
  out[#out + 1] = m .. "=" .. tostring(builtin) .. "/" .. tostring(maps:find("/juju/" .. m .. ".so", 1, true) ~= nil)
end
-- one null and one array metatable for yaml and json, as with the modules
local y, j = require("juju.yaml"), require("juju.json")
out[#out + 1] = tostring(y.null == j.null and y.is_array(j.array({})))
io.write(table.concat(out, " "), "\n")
]])
    local r = assert(h.juju_exe_run(h.env(root), { "lua", script }))
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal("sys=true/false fs=true/false yaml=true/false json=true/false config=true/false true\n", r.stdout)
  end)

  it("the base bindings map no heavy library: the core is split by dependency", function()
    local sys = require("juju.sys")
    local dir = h.build_dir .. "/lib/lua/5.4/juju/"
    local heavy = { "libcurl", "libmongoc", "libssh2", "libarchive", "libsqlite3", "libexpat", "libcrypto", "libdqlite" }
    for _, m in ipairs({ "fs", "sys", "json", "yaml", "config", "proc", "gzip" }) do
      local r = assert(sys.run({ "ldd", dir .. m .. ".so" }, { timeout = 30 }))
      assert.are.equal(0, r.code, r.stderr)
      assert.matches("libjujucore%.so", r.stdout)
      for _, lib in ipairs(heavy) do
        assert.is_nil(r.stdout:find(lib, 1, true), m .. ".so needs " .. lib .. ":\n" .. r.stdout)
      end
    end
    -- and the split libraries are where the heavy ones are
    local r = assert(sys.run({ "ldd", dir .. "http.so" }, { timeout = 30 }))
    assert.matches("libjujucore_http%.so", r.stdout)
    assert.matches("libcurl", r.stdout)
  end)

  it("only juju.dqlitenode (jujud on a state server) maps libdqlite; the wire client does not", function()
    local sys = require("juju.sys")
    local dir = h.build_dir .. "/lib/lua/5.4/juju/"
    local node = assert(sys.run({ "ldd", dir .. "dqlitenode.so" }, { timeout = 30 }))
    assert.are.equal(0, node.code, node.stderr)
    assert.matches("libjujucore_dqlitenode%.so", node.stdout)
    assert.matches("libdqlite", node.stdout)
    for _, m in ipairs({ "dqlite", "sqlite", "crypto" }) do
      local r = assert(sys.run({ "ldd", dir .. m .. ".so" }, { timeout = 30 }))
      assert.are.equal(0, r.code, r.stderr)
      assert.is_nil(r.stdout:find("libdqlite", 1, true), m .. ".so needs libdqlite:\n" .. r.stdout)
    end
  end)

  it("a module behind juju.lazy loads at its first use, once", function()
    local lazy = require("juju.lazy")
    local name = "spec_lazy_probe_" .. tostring(os.time())
    local loads = 0
    package.preload[name] = function() loads = loads + 1; return { answer = 42 } end
    local p = lazy(name)
    assert.are.equal(0, loads)
    assert.are.equal(42, p.answer)
    assert.are.equal(42, p.answer)
    assert.are.equal(1, loads)
    assert.are.equal(package.loaded[name], lazy.force(p))
    assert.has_error(function() p.answer = 1 end)
    -- an already loaded module is given as it is
    assert.are.equal(package.loaded[name], lazy(name))
    package.loaded[name], package.preload[name] = nil, nil
  end)
end)
