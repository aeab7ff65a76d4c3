-- tools_spec.lua: the juju.tools binding: tools tarballs checked against
-- the system tar/sha256sum/stat, a 50 MB streaming round trip, and safe
-- extraction of hostile tarballs made with Python's tarfile.
local tools = require("juju.tools")
local fs = require("juju.fs")
local crypto = require("juju.crypto")
local sys = require("juju.sys")

local function octal(s) return math.tointeger(tonumber(s, 8)) end

local function run(argv)
  local r = assert(sys.run(argv, { timeout = 60 }))
  assert(r.code == 0, table.concat(argv, " ") .. ": " .. tostring(r.stderr))
  return r.stdout
end

-- Writes a tarball with one member of each hostile kind (plus a good file
-- first, which must not be left behind either).
local HOSTILE_PY = [[
import io, sys, tarfile
out, kind = sys.argv[1], sys.argv[2]
with tarfile.open(out, "w:gz") as t:
    good = tarfile.TarInfo("good")
    good.size = 4
    t.addfile(good, io.BytesIO(b"good"))
    m = tarfile.TarInfo({"dotdot": "../x", "deep": "a/../../x", "abs": "/tmp/juju-spec-abs-x",
                         "symlink": "lnk", "hardlink": "hard", "device": "dev",
                         "fifo": "fifo"}[kind])
    if kind == "symlink":
        m.type, m.linkname = tarfile.SYMTYPE, "/etc"
    elif kind == "hardlink":
        m.type, m.linkname = tarfile.LNKTYPE, "good"
    elif kind == "device":
        m.type, m.devmajor, m.devminor = tarfile.CHRTYPE, 1, 3
    elif kind == "fifo":
        m.type = tarfile.FIFOTYPE
    if m.type == tarfile.REGTYPE:
        m.size = 4
        t.addfile(m, io.BytesIO(b"evil"))
    else:
        t.addfile(m)
]]

local NO_TRAILER_PY = [[
import sys, zlib
data = open(sys.argv[1], "rb").read()
d = zlib.decompressobj(31)
d.decompress(data)
assert d.eof and not d.unused_data, "bytes after the gzip stream"
assert data[4:8] == b"\0\0\0\0", "gzip header carries a timestamp"
]]

describe("juju.tools", function()
  local dir

  before_each(function()
    dir = assert(fs.mkdtemp("/tmp/juju-tools-spec-"))
  end)

  after_each(function()
    if dir then assert(fs.remove_tree(dir)) end
    collectgarbage()
    collectgarbage()
  end)

  local function p(rel) return dir .. "/" .. rel end

  local function tool_files()
    assert(fs.write_atomic(p("jujud"), "#!/bin/sh\necho jujud\n", octal("700")))
    assert(fs.write_atomic(p("FORCE-VERSION"), "1.25.0.1", octal("600")))
    return {
      { src = p("jujud"), name = "jujud" },
      { src = p("FORCE-VERSION"), name = "FORCE-VERSION" },
    }
  end

  describe("build_tarball", function()
    it("writes a gzip'd tar as Juju's: root files, ubuntu owner, 0755/0644", function()
      local entries = tool_files()
      entries[3] = { src = p("FORCE-VERSION"), name = "extra/secret", mode = "0600" }
      entries[4] = { src = p("jujud"), name = "plain", mode = octal("640") }
      local r = assert(tools.build_tarball(p("tools.tgz"), entries))
      local listing = run({ "tar", "-tzvf", p("tools.tgz") })
      local lines = {}
      for line in listing:gmatch("[^\n]+") do lines[#lines + 1] = line end
      assert.are.equal(4, #lines)
      assert.truthy(lines[4]:match("^%-rw%-r%-%-%-%-%- ubuntu/ubuntu +21 .* plain$"), lines[4])
      assert.truthy(lines[1]:match("^%-rwxr%-xr%-x ubuntu/ubuntu +21 .* jujud$"), lines[1])
      assert.truthy(lines[2]:match("^%-rw%-r%-%-r%-%- ubuntu/ubuntu +8 .* FORCE%-VERSION$"), lines[2])
      assert.truthy(lines[3]:match("^%-rw%-%-%-%-%-%-%- ubuntu/ubuntu +8 .* extra/secret$"), lines[3])
      assert.falsy(listing:find("\nd", 1, true)) -- no directory entries
      local numeric = run({ "tar", "--numeric-owner", "-tzvf", p("tools.tgz") })
      assert.truthy(numeric:match("^%-rwxr%-xr%-x 0/0 "))
      -- sha256 and size of the compressed bytes, as the system tools see them
      assert.are.equal(run({ "sha256sum", p("tools.tgz") }):match("^(%x+)"), r.sha256)
      assert.are.equal(tonumber(run({ "stat", "-c", "%s", p("tools.tgz") })), r.size)
      assert.are.equal(octal("644"), fs.stat(p("tools.tgz")).mode)
      -- one gzip member and nothing after it: Go's gzip reader (jujud) reads
      -- trailing padding as a broken second member
      run({ "/usr/bin/python3", "-c", NO_TRAILER_PY, p("tools.tgz") })
      -- mtime from the file (whole seconds)
      local members = assert(tools.list_tarball(p("tools.tgz")))
      assert.are.equal(math.floor(fs.stat(p("jujud")).mtime), members[1].mtime)
    end)

    it("is deterministic and honours the gzip level", function()
      local text = {}
      for i = 1, 20000 do text[i] = ("line %d of a compressible file %d"):format(i, i % 13) end
      assert(fs.write_atomic(p("text"), table.concat(text, "\n")))
      local e = { { src = p("text"), name = "text" } }
      local a = assert(tools.build_tarball(p("a.tgz"), e))
      local b = assert(tools.build_tarball(p("b.tgz"), e, { level = 6 }))
      assert.are.same(a, b)
      local fast = assert(tools.build_tarball(p("c.tgz"), e, { level = 1 }))
      local best = assert(tools.build_tarball(p("d.tgz"), e, { level = 9 }))
      assert.is_true(best.size < fast.size)
      assert.are.equal(6, tools.DEFAULT_LEVEL)
    end)

    it("leaves no output and no temp file when a source is missing", function()
      local entries = tool_files()
      entries[#entries + 1] = { src = p("missing"), name = "missing" }
      local before = fs.list(dir)
      local r, msg, code = tools.build_tarball(p("tools.tgz"), entries)
      assert.is_nil(r)
      assert.are.equal("ENOENT", code)
      assert.truthy(msg:find(p("missing"), 1, true))
      assert.are.same(before, fs.list(dir))
      -- an existing output is left as it was
      assert(fs.write_atomic(p("tools.tgz"), "old"))
      assert.is_nil((tools.build_tarball(p("tools.tgz"), entries)))
      assert.are.equal("old", fs.read_file(p("tools.tgz")))
      r, msg, code = tools.build_tarball(p("no/such/dir/t.tgz"), tool_files())
      assert.truthy(msg:find(p("no/such/dir/t.tgz"), 1, true))
      assert.is_nil(r)
      assert.are.equal("ENOENT", code)
    end)

    it("rejects bad names, duplicates and directories", function()
      tool_files()
      for _, name in ipairs({ "", "/abs", "../x", "a/../b", "./a", "a//b", "a/" }) do
        local r, msg, code = tools.build_tarball(p("t.tgz"), { { src = p("jujud"), name = name } })
        assert.is_nil(r, name)
        assert.are.equal("EINVAL", code)
        assert.truthy(msg:find("tarball entry name", 1, true))
      end
      local r, msg, code = tools.build_tarball(p("t.tgz"), {
        { src = p("jujud"), name = "jujud" }, { src = p("FORCE-VERSION"), name = "jujud" } })
      assert.is_nil(r)
      assert.are.equal("EINVAL", code)
      assert.truthy(msg:find("duplicate", 1, true))
      r, msg, code = tools.build_tarball(p("t.tgz"), { { src = dir, name = "d" } })
      assert.truthy(msg:find(dir, 1, true))
      assert.is_nil(r)
      assert.are.equal("EISDIR", code)
      assert.is_false(fs.exists(p("t.tgz")))
    end)

    it("raises on misuse", function()
      tool_files()
      local ok = { src = p("jujud"), name = "jujud" }
      assert.has_error(function() tools.build_tarball(p("t.tgz")) end)
      assert.has_error(function() tools.build_tarball(p("t.tgz"), { "x" }) end)
      assert.has_error(function() tools.build_tarball(p("t.tgz"), { { src = p("jujud") } }) end)
      assert.has_error(function() tools.build_tarball(p("t.tgz"), { { name = "x" } }) end)
      assert.has_error(function() tools.build_tarball(p("t.tgz"), { { src = 1, name = "x" } }) end)
      assert.has_error(function()
        tools.build_tarball(p("t.tgz"), { { src = p("jujud"), name = "x", mode = "0789" } })
      end)
      assert.has_error(function()
        tools.build_tarball(p("t.tgz"), { { src = p("jujud"), name = "x", mode = 1.5 } })
      end)
      assert.has_error(function()
        tools.build_tarball(p("t.tgz"), { { src = p("jujud"), name = "x", mode = octal("10000") } })
      end)
      assert.has_error(function() tools.build_tarball(p("t.tgz"), { ok }, { level = 0 }) end)
      assert.has_error(function() tools.build_tarball(p("t.tgz"), { ok }, { level = 10 }) end)
      assert.has_error(function() tools.build_tarball(p("t.tgz"), { ok }, "fast") end)
      assert.is_false(fs.exists(p("t.tgz")))
    end)
  end)

  describe("list_tarball", function()
    it("describes each member", function()
      local entries = tool_files()
      assert(tools.build_tarball(p("t.tgz"), entries))
      local m = assert(tools.list_tarball(p("t.tgz")))
      assert.are.equal(2, #m)
      assert.are.equal("jujud", m[1].name)
      assert.are.equal("file", m[1].type)
      assert.are.equal(octal("755"), m[1].mode)
      assert.are.equal(21, m[1].size)
      assert.are.equal("ubuntu", m[1].uname)
      assert.are.equal("ubuntu", m[1].gname)
      assert.are.equal(0, m[1].uid)
      assert.are.equal(0, m[1].gid)
      assert.is_nil(m[1].target)
      assert.are.equal("FORCE-VERSION", m[2].name)
      assert.are.equal(octal("644"), m[2].mode)
    end)

    it("reports links, devices and directories by type", function()
      for kind, want in pairs({ symlink = "link", hardlink = "hardlink", device = "char",
                                fifo = "fifo" }) do
        run({ "/usr/bin/python3", "-c", HOSTILE_PY, p(kind .. ".tgz"), kind })
        local m = assert(tools.list_tarball(p(kind .. ".tgz")))
        assert.are.equal(want, m[2].type, kind)
      end
      local m = assert(tools.list_tarball(p("symlink.tgz")))
      assert.are.equal("/etc", m[2].target)
      assert(fs.mkdir_p(p("tree/d")))
      assert(fs.write_atomic(p("tree/d/f"), "x"))
      run({ "tar", "-C", p("tree"), "-czf", p("gnu.tgz"), "." })
      local names = {}
      for _, e in ipairs(assert(tools.list_tarball(p("gnu.tgz")))) do
        names[#names + 1] = e.name .. ":" .. e.type
      end
      assert.are.same({ "./:dir", "./d/:dir", "./d/f:file" }, names)
    end)

    it("reports missing and corrupt files", function()
      local m, msg, code = tools.list_tarball(p("missing.tgz"))
      assert.is_nil(m)
      assert.are.equal("ENOENT", code)
      assert.truthy(msg:find(p("missing.tgz"), 1, true))
      assert(fs.write_atomic(p("junk"), ("not a tarball "):rep(50)))
      m, msg, code = tools.list_tarball(p("junk"))
      assert.is_nil(m)
      assert.are.equal("CORRUPT", code)
      assert.truthy(msg:find(p("junk"), 1, true))
      assert.has_error(function() tools.list_tarball() end)
    end)
  end)

  describe("extract_tarball", function()
    it("extracts files with their modes, creating the destination", function()
      assert(tools.build_tarball(p("t.tgz"), tool_files()))
      local dest = p("1.25.0-trusty-amd64")
      local names = assert(tools.extract_tarball(p("t.tgz"), dest))
      assert.are.same({ "jujud", "FORCE-VERSION" }, names)
      assert.are.equal(octal("755"), fs.stat(dest).mode)
      assert.are.equal(octal("755"), fs.stat(dest .. "/jujud").mode)
      assert.are.equal(octal("644"), fs.stat(dest .. "/FORCE-VERSION").mode)
      assert.are.equal("1.25.0.1", fs.read_file(dest .. "/FORCE-VERSION"))
      assert.are.same({ "FORCE-VERSION", "jujud" }, fs.list(dest)) -- no temp dir left
    end)

    it("extracts GNU tar archives with ./ names and directories", function()
      assert(fs.mkdir_p(p("tree/bin")))
      assert(fs.write_atomic(p("tree/bin/jujud"), "j", octal("755")))
      run({ "tar", "-C", p("tree"), "-czf", p("gnu.tgz"), "." })
      assert(fs.mkdir(p("dest")))
      local names = assert(tools.extract_tarball(p("gnu.tgz"), p("dest")))
      assert.are.same({ "bin", "bin/jujud" }, names)
      assert.are.equal("j", fs.read_file(p("dest/bin/jujud")))
      assert.are.equal(octal("755"), fs.stat(p("dest/bin/jujud")).mode)
    end)

    it("round-trips a 50 MB file through a fixed buffer", function()
      local big = 50 * 1024 * 1024
      run({ "sh", "-c", ("head -c %d /dev/urandom > '%s' && chmod 755 '%s'"):format(big,
        p("jujud"), p("jujud")) })
      local want = assert(crypto.sha256_file(p("jujud")))
      local r = assert(tools.build_tarball(p("big.tgz"),
        { { src = p("jujud"), name = "jujud" } }, { level = 1 }))
      local sha, size = crypto.sha256_file(p("big.tgz"))
      assert.are.equal(sha, r.sha256)
      assert.are.equal(size, r.size)
      assert.is_true(r.size > big) -- random data does not compress
      assert.are.same({ "jujud" }, assert(tools.extract_tarball(p("big.tgz"), p("out"))))
      local got, got_size = crypto.sha256_file(p("out/jujud"))
      assert.are.equal(want, got)
      assert.are.equal(big, got_size)
      assert.are.equal(octal("755"), fs.stat(p("out/jujud")).mode)
    end)

    for _, kind in ipairs({ "dotdot", "deep", "abs", "symlink", "hardlink", "device", "fifo" }) do
      it("refuses a hostile tarball (" .. kind .. ") leaving nothing", function()
        run({ "/usr/bin/python3", "-c", HOSTILE_PY, p("evil.tgz"), kind })
        assert(fs.mkdir(p("dest")))
        assert(fs.write_atomic(p("dest/existing"), "e"))
        local before = fs.tree_snapshot(dir)
        local names, msg, code = tools.extract_tarball(p("evil.tgz"), p("dest"))
        assert.is_nil(names)
        assert.are.equal("EINVAL", code)
        assert.truthy(msg:find("refusing to extract", 1, true), msg)
        assert.truthy(msg:find(p("evil.tgz"), 1, true))
        local member = ({ dotdot = "../x", deep = "a/../../x", abs = "/tmp/juju-spec-abs-x",
                          symlink = "lnk", hardlink = "hard", device = "dev", fifo = "fifo" })[kind]
        assert.truthy(msg:find('"' .. member .. '"', 1, true), msg)
        assert.are.same(before, fs.tree_snapshot(dir))
        assert.is_false(fs.exists(p("x")))
        assert.is_false(fs.exists("/tmp/juju-spec-abs-x"))
        -- a destination created for the occasion is not left either
        assert.is_nil((tools.extract_tarball(p("evil.tgz"), p("fresh"))))
        assert.is_false(fs.exists(p("fresh")))
      end)
    end

    it("refuses to write through a symlinked directory in the destination", function()
      assert(fs.mkdir_p(p("tree/sub")))
      assert(fs.write_atomic(p("tree/sub/f"), "f"))
      run({ "tar", "-C", p("tree"), "-czf", p("t.tgz"), "sub/f" })
      assert(fs.mkdir(p("dest")))
      assert(fs.mkdir(p("elsewhere")))
      assert(fs.symlink(p("elsewhere"), p("dest/sub")))
      local names, _, code = tools.extract_tarball(p("t.tgz"), p("dest"))
      assert.is_nil(names)
      assert.are.equal("ENOTDIR", code)
      assert.are.same({}, fs.list(p("elsewhere")))
      assert.are.same({ "sub" }, fs.list(p("dest")))
    end)

    it("reports missing and corrupt tarballs without creating anything", function()
      local names, _, code = tools.extract_tarball(p("missing.tgz"), p("dest"))
      assert.is_nil(names)
      assert.are.equal("ENOENT", code)
      assert.is_false(fs.exists(p("dest")))
      assert(fs.write_atomic(p("junk"), ("junk"):rep(100)))
      names, _, code = tools.extract_tarball(p("junk"), p("dest"))
      assert.is_nil(names)
      assert.are.equal("CORRUPT", code)
      assert.is_false(fs.exists(p("dest")))
      assert(tools.build_tarball(p("t.tgz"), tool_files()))
      names, _, code = tools.extract_tarball(p("t.tgz"), p("no/parent"))
      assert.is_nil(names)
      assert.are.equal("ENOENT", code)
      assert.has_error(function() tools.extract_tarball(p("junk")) end)
    end)
  end)
end)
