-- tools_tarball_spec.lua (#integration): what the agent tools tarball
-- carries (jujud, its shared libraries from the ldd closure of jujud and
-- every binding module, glibc excepted; the engine's Lua; no test code),
-- and that it runs on a fresh Debian 12 root that has none of the build's
-- libraries (juju.testing.sshd's fresh mode): ldd finds everything, `jujud
-- version` and `jujud bootstrap-state --help` run.
local sshd = require("juju.testing.sshd")
local agenttools = require("juju.agenttools")
local tools = require("juju.tools")
local fs = require("juju.fs")
local version = require("juju.version")
local site = require("juju_site")
local helpers = require("helpers")

-- Builds the tools tarball as a bootstrap with the manual provider would.
local function build_tarball(dir)
  local n = version.with_build(version.current, version.current.build + 1)
  local host = agenttools.host()
  local record = { version = tostring(n), series = host.series, arch = host.arch,
    binary = string.format("%s-%s-%s", tostring(n), host.series, host.arch) }
  local b = { provider = { name = "manual", path = site.providers_dir .. "/manual.lua" }, params = {} }
  local built = assert(agenttools.build(b, record, dir))
  return built, record
end

local function closure_of_build()
  local so_dir = package.searchpath("juju.yaml", package.cpath):match("^(.*)/yaml%.so$")
  local files = { site.bin_dir .. "/jujud" }
  for _, n in ipairs(fs.list(so_dir)) do
    if n:match("%.so$") then files[#files + 1] = so_dir .. "/" .. n end
  end
  return assert(agenttools.library_closure(files))
end

describe("the agent tools tarball #integration", function()
  local server
  after_each(function()
    if server then server.stop() end
    server = nil
    helpers.cleanup()
  end)

  it("carries jujud, its libraries and the engine, and no test code", function()
    local dir = helpers.tmpdir("juju-tools-spec-")
    local built = build_tarball(dir)
    local names = {}
    for _, m in ipairs(assert(tools.list_tarball(built.path))) do names[m.name] = m end
    for _, want in ipairs({ "jujud", "bin/jujud", "FORCE-VERSION", "lib/lua/5.4/juju/yaml.so",
      "lib/lua/5.4/juju/sqlite.so", "share/lua/5.4/juju/jujud.lua", "share/lua/5.4/juju_site.lua",
      "share/juju/providers/manual.lua", "lib/liblua5.4.so.0", "lib/libyaml-0.so.2", "lib/libssh2.so.1",
      "lib/libsqlite3.so.0", "lib/libcrypto.so.3", "lib/libjujucore.so" }) do
      assert.is_table(names[want], want .. " missing from the tools tarball")
    end
    assert.are.equal(tonumber("755", 8), names.jujud.mode)
    assert.are.equal(tonumber("755", 8), names["bin/jujud"].mode)
    -- Every library of the closure is there, under its soname.
    local closure = closure_of_build()
    assert.is_true(#closure >= 10)
    for _, l in ipairs(closure) do
      assert.is_table(names["lib/" .. l.name], l.name .. " (" .. l.path .. ") missing")
    end
    for name in pairs(names) do
      -- No glibc: the host's own must be used.
      local lib = name:match("^lib/([^/]+)$")
      if lib then assert.is_false(agenttools.is_glibc(lib), name) end
      -- No test code.
      assert.is_nil(name:match("juju/testing"), name)
      assert.is_nil(name:match("^tests/"), name)
      assert.is_nil(name:match("_spec%.lua$"), name)
    end
    assert.is_nil(names["lib/libc.so.6"])
    assert.is_nil(names["share/lua/5.4/juju/testing.lua"])
    assert.is_nil(names["share/lua/5.4/juju/testing/sshd.lua"])
  end)

  it("runs on a fresh Debian 12 root: ldd finds every library, jujud version and bootstrap-state --help run",
    function()
    server = assert(sshd.start { address_index = 62, fresh = true })
    local built, record = build_tarball(helpers.tmpdir("juju-tools-spec-"))
    -- The server's directory is bind-mounted at the same path inside the root.
    local tarball = server.root .. "/tools.tgz"
    assert(fs.copy_file(built.path, tarball, "0644"))
    local function inside(cmd)
      local r = assert(server.run({ "/bin/sh", "-c", cmd }))
      return r.code, r.stdout .. r.stderr
    end
    -- The root is fresh: Debian 12, none of the build's libraries.
    local code, out
    code, out = inside(". /etc/os-release; echo $VERSION_CODENAME; ls /usr/lib/*/liblua5.4.so.0 "
      .. "/usr/lib/*/libssh2.so.1 /usr/lib/*/libyaml-0.so.2 2>&1")
    assert.matches("^bookworm\n", out)
    assert.matches("No such file", out)
    assert.are_not.equal(0, code)
    assert.is_nil(out:find("liblua5.4.so.0\n", 1, true), out)
    code, out = inside("mkdir -p /opt/juju-tools && tar zxf " .. tarball .. " -C /opt/juju-tools && echo ok")
    assert.are.equal(0, code, out)
    -- Without the libraries it carries, jujud cannot start here (so the
    -- checks below can fail).
    code, out = inside("cp -a /opt/juju-tools /opt/juju-nolib && rm -f /opt/juju-nolib/lib/*.so* "
      .. "&& /opt/juju-nolib/jujud version; r=$?; rm -rf /opt/juju-nolib; exit $r")
    assert.are_not.equal(0, code)
    assert.matches("error while loading shared libraries", out)
    -- ldd with the tools' lib/: nothing missing, nothing from outside the
    -- root's /lib, /usr/lib or the tools.
    code, out = inside("cd /opt/juju-tools && LD_LIBRARY_PATH=/opt/juju-tools/lib ldd bin/jujud lib/lua/5.4/juju/*.so")
    assert.are.equal(0, code, out)
    assert.is_nil(out:find("not found", 1, true), out)
    assert.matches("liblua5%.4%.so%.0 => /opt/juju%-tools/lib/liblua5%.4%.so%.0", out)
    assert.matches("libc%.so%.6 => /lib/", out)
    code, out = inside("/opt/juju-tools/jujud version")
    assert.are.equal(0, code, out)
    assert.are.equal(record.binary .. "\n", out)
    code, out = inside("/opt/juju-tools/jujud bootstrap-state --help")
    assert.are.equal(0, code, out)
    assert.matches("bootstrap%-state", out)
    code, out = inside("rm -rf /opt/juju-tools && echo ok")
    assert.are.equal(0, code, out)
    assert.are.same({}, assert(server.root_changes()))
  end)
end)
