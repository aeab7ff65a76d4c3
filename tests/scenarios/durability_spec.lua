-- Regression specs for issue 17's durable-write fixes (counts, never
-- times): the .jenv is rewritten only at the journal's durable points, no
-- file of the tools build directory is written durably, the library
-- closure is not asked of ldd again, and the dummy's storage holds the
-- cached tools tarball by a hard link.
local testing = require("juju.testing")
local fs = require("juju.fs")
local sys = require("juju.sys")
local agenttools = require("juju.agenttools")

local function new_scenario()
  return testing.new { environments = { dummyenv = { type = "dummy" } }, default = "dummyenv" }
end

-- Every fs.write_atomic / fs.create_exclusive path while fn runs (all
-- modules call them through the one juju.fs table).
local function durable_writes(fn)
  local paths = {}
  local wa, ce = fs.write_atomic, fs.create_exclusive
  fs.write_atomic = function(path, ...)
    paths[#paths + 1] = { op = "write_atomic", path = path }
    return wa(path, ...)
  end
  fs.create_exclusive = function(path, ...)
    paths[#paths + 1] = { op = "create_exclusive", path = path }
    return ce(path, ...)
  end
  local ok, err = pcall(fn)
  fs.write_atomic, fs.create_exclusive = wa, ce
  if not ok then error(err, 0) end
  return paths
end

local function count(paths, op, pattern)
  local n = 0
  for _, p in ipairs(paths) do
    if p.op == op and p.path:match(pattern) then n = n + 1 end
  end
  return n
end

describe("durable writes of a bootstrap", function()
  local s
  after_each(function()
    if s then s:close() end
    s = nil
    collectgarbage()
  end)

  it("creates the .jenv once and rewrites it at the journal's six durable points; destroy twice", function()
    s = new_scenario()
    local r
    local boot = durable_writes(function() r = s:juju("bootstrap") end)
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal(1, count(boot, "create_exclusive", "/dummyenv%.jenv$"))
    -- provider-state journaled, instance intent, instance + phase, tools
    -- object, endpoints + agent-installed, bootstrapped.
    assert.are.equal(6, count(boot, "write_atomic", "/dummyenv%.jenv$"))
    assert.are.equal("bootstrapped", s:jenv("dummyenv")["bootstrap-journal"].phase)
    local destroy = durable_writes(function() r = s:juju("destroy-environment", "-y", "dummyenv") end)
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal(2, count(destroy, "write_atomic", "/dummyenv%.jenv$"))
    assert.is_nil(s:jenv("dummyenv"))
  end)

  it("a warm pair writes durably only the .jenv: not the dummy's emulated cloud, not an unchanged current-environment", function()
    s = new_scenario()
    assert.are.equal(0, s:juju("bootstrap").code, s.last.stderr)
    assert.are.equal(0, s:juju("destroy-environment", "-y", "dummyenv").code, s.last.stderr)
    -- Every writer, with its options (durable unless durable = false).
    local writes = {}
    local wa, ce, ap = fs.write_atomic, fs.create_exclusive, fs.append_sync
    local function wrap(op, real)
      return function(path, data, mode, opts)
        writes[#writes + 1] = { op = op, path = path, durable = not (type(opts) == "table" and opts.durable == false) }
        return real(path, data, mode, opts)
      end
    end
    fs.write_atomic, fs.create_exclusive, fs.append_sync =
      wrap("write_atomic", wa), wrap("create_exclusive", ce), wrap("append_sync", ap)
    local ok, err = pcall(function()
      assert.are.equal(0, s:juju("bootstrap").code, s.last.stderr)
      assert.are.equal(0, s:juju("destroy-environment", "-y", "dummyenv").code, s.last.stderr)
    end)
    fs.write_atomic, fs.create_exclusive, fs.append_sync = wa, ce, ap
    if not ok then error(err, 0) end
    local durable, world = {}, 0
    for _, w in ipairs(writes) do
      if w.durable then durable[#durable + 1] = w.op .. " " .. w.path:gsub("^.*/", "") end
      if w.path:find("/dummy/", 1, true) then
        world = world + 1
        assert.is_false(w.durable, "durable write into the dummy's world: " .. w.path)
      end
    end
    assert.is_true(world >= 3, "the dummy wrote its instance, user-data and script")
    -- 1 create + 6 rewrites at bootstrap, 2 at destroy: nothing else.
    local expected = { "create_exclusive dummyenv.jenv" }
    for _ = 1, 8 do expected[#expected + 1] = "write_atomic dummyenv.jenv" end
    assert.are.same(expected, durable)
    assert.are.equal("dummyenv\n", fs.read_file(s.home .. "/current-environment"))
  end)

  it("writes nothing durably in the tools build directory, and reuses the closure on disk", function()
    agenttools.forget_built()
    s = new_scenario()
    local ldd_runs = 0
    local real_closure = agenttools.library_closure
    agenttools.library_closure = function(...)
      ldd_runs = ldd_runs + 1
      return real_closure(...)
    end
    local ok, err = pcall(function()
      local r
      local boot = durable_writes(function() r = s:juju("bootstrap") end)
      assert.are.equal(0, r.code, r.stderr)
      assert.are.equal(1, ldd_runs)
      local tmp = "^" .. agenttools.tmp_root():gsub("%p", "%%%0") .. "/juju%-tools%-"
      assert.are.equal(0, count(boot, "write_atomic", tmp))
      -- The cache got the tarball and its closure file.
      assert.is_true(count(boot, "write_atomic", "/cache/tools/closure%-%x+$") == 1)
      assert.are.equal(0, s:juju("destroy-environment", "-y", "dummyenv").code)
      -- A new process (no memo) finds the closure in the cache: no ldd.
      agenttools.forget_built()
      assert.are.equal(0, s:juju("bootstrap").code, s.last.stderr)
      assert.are.equal(1, ldd_runs)
    end)
    agenttools.library_closure = real_closure
    if not ok then error(err, 0) end
  end)

  it("stores the cached tools tarball in the dummy's storage by a hard link", function()
    s = new_scenario()
    assert.are.equal(0, s:juju("bootstrap").code, s.last.stderr)
    local world = s:world("dummyenv")
    local objects = {}
    for _, n in ipairs(fs.list(world .. "/storage/tools/released") or {}) do
      if n:match("%.tgz$") then objects[#objects + 1] = world .. "/storage/tools/released/" .. n end
    end
    assert.are.equal(1, #objects)
    local cached = {}
    for _, n in ipairs(fs.list(s.home .. "/cache/tools") or {}) do
      if n:match("%.tgz$") then cached[#cached + 1] = s.home .. "/cache/tools/" .. n end
    end
    assert.are.equal(1, #cached)
    local r = assert(sys.run({ "stat", "-c", "%i", objects[1], cached[1] }))
    local a, b = r.stdout:match("^(%d+)\n(%d+)\n$")
    assert.is_string(a)
    assert.are.equal(a, b)
  end)
end)
