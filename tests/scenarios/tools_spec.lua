-- Tools for machine 0: lookup through simplestreams, upload of locally
-- built tools, and what the rendered user-data and script look like.
local testing = require("juju.testing")
local fs = require("juju.fs")
local sys = require("juju.sys")
local tools = require("juju.tools")
local crypto = require("juju.crypto")
local version = require("juju.version")
local simplestreams = require("juju.simplestreams")

local function scenario(attrs, files)
  local env = { type = "dummy" }
  for k, v in pairs(attrs or {}) do env[k] = v end
  return testing.new { environments = { dummyenv = env }, default = "dummyenv", files = files }
end

-- A simplestreams tree with one fake tools tarball for the host.
local function metadata_tree(dir, number)
  local series = version.host_series(sys)
  local arch = sys.arch()
  local tarball_dir = dir .. "/tools/released"
  assert(fs.mkdir_p(tarball_dir, "0755"))
  local src = dir .. "/jujud"
  assert(fs.write_atomic(src, "#!/bin/sh\necho fake\n", "0755"))
  local name = string.format("juju-%s-%s-%s.tgz", number, series, arch)
  local info = assert(tools.build_tarball(tarball_dir .. "/" .. name, { { src = src, name = "jujud" } }))
  assert(simplestreams.write_metadata(dir, { released = { {
    release = series, version = number, arch = arch, size = info.size, sha256 = info.sha256,
    path = "released/" .. name, ftype = "tar.gz",
  } } }, { "released" }, { updated = 0 }))
  return info, series, arch
end

describe("tools for machine 0", function()
  local s
  after_each(function()
    if s then s:close() end
    s = nil
    collectgarbage()
  end)

  it("uses tools found through --metadata-source, without building any", function()
    s = scenario()
    local number = tostring(version.current)
    local info = metadata_tree(s.root .. "/meta", number)
    local r = s:juju("bootstrap", "--metadata-source", s.root .. "/meta")
    assert.are.equal(0, r.code, r.stderr)
    assert.is_nil(r.stderr:find("Building tools", 1, true))
    local script = s:script("dummyenv")
    assert.is_truthy(script:find(info.sha256, 1, true))
    assert.is_truthy(script:find("file://" .. s.root .. "/meta/tools/released/", 1, true))
  end)

  it("finds tools through agent-metadata-url", function()
    s = scenario()
    local number = tostring(version.current)
    metadata_tree(s.root .. "/meta", number)
    s = (function(old)
      local n = scenario({ ["agent-metadata-url"] = "file://" .. old.root .. "/meta/tools" })
      n.keep_old = old
      return n
    end)(s)
    local r = s:juju("bootstrap")
    assert.are.equal(0, r.code, r.stderr)
    assert.is_nil(r.stderr:find("Building tools", 1, true))
    s.keep_old:close()
  end)

  it("refuses a requested version that no source has", function()
    s = scenario()
    metadata_tree(s.root .. "/meta", tostring(version.current))
    local v = version.current
    local wanted = string.format("%d.%d.%d", v.major, v.minor, v.patch + 7)
    local r = s:juju("--show-log", "bootstrap", "--metadata-source", s.root .. "/meta", "--agent-version", wanted)
    assert.are.equal(1, r.code)
    assert.matches("Juju cannot bootstrap because no tools are available for your environment", r.stderr)
    assert.matches('step "find%-tools"', r.stderr)
    assert.is_nil(s:jenv("dummyenv"))
  end)

  it("uploads a tarball with jujud, the engine's modules and the provider scripts used", function()
    local custom = fs.read_file(require("juju_site").providers_dir .. "/dummy.lua")
      .. "\n-- custom copy marker\n"
    s = scenario({}, { ["providers/dummy.lua"] = custom })
    local r = s:juju("bootstrap", "--upload-tools")
    assert.are.equal(0, r.code, r.stderr)
    local binary = r.stderr:match("Building tools to upload %(([^)]+)%)")
    assert.is_string(binary)
    local v = version.current
    assert.matches(string.format("^%d%%.%d%%.%d%%.%d%%-", v.major, v.minor, v.patch, v.build + 1), binary)
    local world = s:world("dummyenv")
    local path = world .. "/storage/tools/released/juju-" .. binary .. ".tgz"
    local names = {}
    for _, m in ipairs(assert(tools.list_tarball(path))) do names[m.name] = m end
    for _, want in ipairs({ "jujud", "FORCE-VERSION", "share/lua/5.4/juju/cli.lua", "share/lua/5.4/juju_site.lua",
      "lib/lua/5.4/juju/yaml.so", "share/juju/providers/dummy.lua" }) do
      assert.is_table(names[want], want .. " missing from the tools tarball")
    end
    assert.are.equal(tonumber("755", 8), names.jujud.mode)
    local out = s.root .. "/x"
    assert(tools.extract_tarball(path, out))
    assert.matches("custom copy marker", fs.read_file(out .. "/share/juju/providers/dummy.lua"))
    assert.are.equal(binary:match("^([^-]+)"), fs.read_file(out .. "/FORCE-VERSION"))
    -- The sha256 in the script is the uploaded tarball's.
    local sha = crypto.sha256_file(path)
    assert.is_truthy(s:script("dummyenv"):find(sha, 1, true))
    -- Unpacked tools run: jujud reports the forced version.
    local res = sys.run({ out .. "/jujud", "version" }, {})
    assert.are.equal(0, res.code, res.stderr)
    assert.are.equal(binary .. "\n", res.stdout)
  end)

  it("renders user-data that passes cloud-init schema and a script that passes bash -n and shellcheck", function()
    s = scenario()
    assert.are.equal(0, s:juju("bootstrap").code, s.last.stderr)
    local ud = s.root .. "/userdata.yaml"
    assert(fs.write_atomic(ud, s:userdata("dummyenv")))
    local r = sys.run({ "cloud-init", "schema", "--config-file", ud }, {})
    assert.are.equal(0, r.code, r.stdout .. r.stderr)
    assert.matches("Valid cloud%-config", r.stdout .. r.stderr)
    local script = s.root .. "/script.sh"
    assert(fs.write_atomic(script, s:script("dummyenv")))
    r = sys.run({ "bash", "-n", script }, {})
    assert.are.equal(0, r.code, r.stderr)
    r = sys.run({ "shellcheck", "-s", "bash", "-S", "warning", script }, {})
    assert.are.equal(0, r.code, r.stdout)
  end)

  it("uses a fresh random nonce per bootstrap, the same in both phases", function()
    s = scenario()
    assert.are.equal(0, s:juju("bootstrap").code, s.last.stderr)
    local ud1 = s:userdata("dummyenv")
    local nonce1 = ud1:match("(user%-admin:bootstrap:%x+)")
    assert.is_string(nonce1)
    assert.is_truthy(s:script("dummyenv"):find(nonce1, 1, true))
    assert.are.equal(0, s:juju("destroy-environment", "-y", "dummyenv").code)
    assert.are.equal(0, s:juju("bootstrap").code, s.last.stderr)
    local nonce2 = s:userdata("dummyenv"):match("(user%-admin:bootstrap:%x+)")
    assert.are_not.equal(nonce1, nonce2)
  end)
end)
