-- storage_spec.lua: the juju.storage binding (environ storage, local
-- directory backend): name validation, atomic puts, streaming, listing,
-- URLs, removal and the Dir object's life cycle.
local storage = require("juju.storage")
local fs = require("juju.fs")
local crypto = require("juju.crypto")
local sys = require("juju.sys")

local function octal(s) return math.tointeger(tonumber(s, 8)) end

describe("juju.storage", function()
  local dir, st

  before_each(function()
    dir = assert(fs.mkdtemp("/tmp/juju-storage-spec-"))
    st = assert(storage.open_dir(dir .. "/stor"))
  end)

  after_each(function()
    if st then st:close() end
    if dir then assert(fs.remove_tree(dir)) end
    collectgarbage()
    collectgarbage()
  end)

  -- Everything under the storage root whose name marks a temp file.
  local function temp_files(root)
    local map, paths = assert(fs.tree_snapshot(root))
    local found = {}
    for _, p in ipairs(paths) do
      if p:find(".tmp-", 1, true) then found[#found + 1] = p .. " " .. map[p] end
    end
    return found
  end

  describe("open_dir", function()
    it("creates the root 0700 and reports it absolute", function()
      assert.are.equal(dir .. "/stor", st:root())
      assert.are.equal(octal("700"), fs.stat(dir .. "/stor").mode)
      local deep = assert(storage.open_dir(dir .. "/a/b/c", { mode = "0644", dir_mode = "0755" }))
      assert.are.equal(octal("700"), fs.stat(dir .. "/a/b/c").mode)
      assert.is_true(deep:put("x/y", "z"))
      assert.are.equal(octal("644"), fs.stat(dir .. "/a/b/c/x/y").mode)
      assert.are.equal(octal("755"), fs.stat(dir .. "/a/b/c/x").mode)
      deep:close()
    end)

    it("reports a file in the way", function()
      assert(fs.write_atomic(dir .. "/file", "x"))
      local s, msg, code = storage.open_dir(dir .. "/file")
      assert.is_nil(s)
      assert.are.equal("ENOTDIR", code)
      assert.truthy(msg:find(dir .. "/file", 1, true))
    end)

    it("raises on misuse", function()
      assert.has_error(function() storage.open_dir() end)
      assert.has_error(function() storage.open_dir(dir, 5) end)
      assert.has_error(function() storage.open_dir(dir, { mode = "9" }) end)
      assert.has_error(function() storage.open_dir(dir, { mode = octal("10000") }) end)
      assert.has_error(function() storage.open_dir(dir .. "\0x") end)
    end)

    it("is a juju.storage.Dir with close, __close and __gc sharing one cleanup", function()
      local s = assert(storage.open_dir(dir .. "/s2"))
      assert.are.equal("juju.storage.Dir", getmetatable(s).__name)
      assert.truthy(tostring(s):find(dir .. "/s2", 1, true))
      s:close()
      s:close() -- idempotent
      assert.truthy(tostring(s):find("closed", 1, true))
      local ok, err = pcall(s.get, s, "x")
      assert.is_false(ok)
      assert.truthy(err:find("storage Dir is closed", 1, true))
      assert.has_error(function() s:root() end)
      do
        local t <close> = assert(storage.open_dir(dir .. "/s3"))
        assert.is_true(t:put("a", "b"))
      end
      assert.are.equal("b", fs.read_file(dir .. "/s3/a"))
      assert.has_error(function() st.get(nil, "x") end)
    end)
  end)

  describe("check_name", function()
    it("accepts relative object names", function()
      for _, n in ipairs({ "provider-state", "tools/released/juju-1.25.0-trusty-amd64.tgz",
                           ".hidden", "a..b", "a b" }) do
        assert.is_true(storage.check_name(n), n)
      end
    end)

    it("rejects bad names with EINVAL naming them", function()
      for _, n in ipairs({ "", "/abs", "a//b", "a/", "./a", "a/./b", "..", "a/../b", "a\\b", "a\0b" }) do
        local ok, msg, code = storage.check_name(n)
        assert.is_nil(ok, n)
        assert.are.equal("EINVAL", code)
        assert.truthy(msg:find('"' .. n:gsub("%z.*", "") , 1, true), msg)
      end
    end)

    it("is applied by every method taking a name", function()
      local calls = {
        function() return st:put("../x", "d") end,
        function() return st:put_file("/abs", dir .. "/none") end,
        function() return st:get("a//b") end,
        function() return st:get_to_file("./x", dir .. "/out") end,
        function() return st:exists("..") end,
        function() return st:size("a/") end,
        function() return st:remove("a/../../x") end,
        function() return st:url("a\\b") end,
        function() return st:path("") end,
      }
      for i, f in ipairs(calls) do
        local v, msg, code = f()
        assert.is_nil(v, i)
        assert.are.equal("EINVAL", code, i)
        assert.truthy(msg:find("invalid storage name", 1, true), i)
      end
      assert.is_false(fs.exists(dir .. "/x"))
      assert.is_false(fs.exists(dir .. "/out"))
    end)
  end)

  describe("put and get", function()
    it("round-trips bytes, default mode 0600, explicit modes exact", function()
      local old = fs.umask(octal("277"))
      assert.is_true(st:put("provider-state", "state-instances:\n- i-0abc\n"))
      assert.is_true(st:put("tools/released/t.tgz", "a\0b", "0644"))
      assert.is_true(st:put("bin", "x", octal("640")))
      fs.umask(old)
      assert.are.equal("state-instances:\n- i-0abc\n", st:get("provider-state"))
      assert.are.equal("a\0b", st:get("tools/released/t.tgz"))
      assert.are.equal(octal("600"), fs.stat(dir .. "/stor/provider-state").mode)
      assert.are.equal(octal("644"), fs.stat(dir .. "/stor/tools/released/t.tgz").mode)
      assert.are.equal(octal("640"), fs.stat(dir .. "/stor/bin").mode)
      assert.are.equal(octal("700"), fs.stat(dir .. "/stor/tools/released").mode)
    end)

    it("replaces atomically and leaves no temp files", function()
      for i = 1, 5 do assert.is_true(st:put("provider-state", "v" .. i)) end
      assert.are.equal("v5", st:get("provider-state"))
      assert.are.same({}, temp_files(dir))
    end)

    it("failed puts leave neither object nor temp file", function()
      assert.is_true(st:put("tools/a", "x"))
      local ok, msg, code = st:put("tools", "x")
      assert.is_nil(ok)
      assert.are.equal("EISDIR", code)
      assert.truthy(msg:find("put tools", 1, true))
      ok, msg, code = st:put("tools/a/b", "x")
      assert.truthy(msg:find("tools/a/b", 1, true))
      assert.is_nil(ok)
      assert.are.equal("ENOTDIR", code)
      assert.are.same({}, temp_files(dir))
      assert.are.same({ "tools/a" }, st:list())
    end)

    it("get reports ENOENT and EISDIR", function()
      local v, msg, code = st:get("provider-state")
      assert.is_nil(v)
      assert.are.equal("ENOENT", code)
      assert.truthy(msg:find("provider-state", 1, true))
      assert(st:put("tools/x", "1"))
      v, msg, code = st:get("tools")
      assert.truthy(msg:find("get tools", 1, true))
      assert.is_nil(v)
      assert.are.equal("EISDIR", code)
      v, msg, code = st:get("tools/x/y")
      assert.truthy(msg:find("tools/x/y", 1, true))
      assert.is_nil(v)
      assert.are.equal("ENOENT", code)
    end)

    it("raises on misuse", function()
      assert.has_error(function() st:put("a") end)
      assert.has_error(function() st:put("a", {}) end)
      assert.has_error(function() st:put("a", "b", "0x") end)
      assert.has_error(function() st:put(1 == 1, "b") end)
      assert.has_error(function() st:get() end)
    end)
  end)

  describe("put_file and get_to_file", function()
    local function make_file(path, n)
      local chunk = crypto.random_bytes(65536)
      local parts = {}
      for i = 1, n // 65536 do parts[i] = chunk end
      parts[#parts + 1] = chunk:sub(1, n % 65536)
      assert(fs.write_atomic(path, table.concat(parts)))
    end

    it("streams a file in and out with size and sha256", function()
      local src = dir .. "/src.bin"
      make_file(src, 3 * 65536 + 123)
      local want = assert(crypto.sha256_file(src))
      local size, sha = st:put_file("tools/released/juju.tgz", src, "0644")
      assert.are.equal(3 * 65536 + 123, size)
      assert.are.equal(want, sha)
      assert.are.equal(octal("644"), fs.stat(dir .. "/stor/tools/released/juju.tgz").mode)
      local r = assert(sys.run({ "sha256sum", dir .. "/stor/tools/released/juju.tgz" }))
      assert.are.equal(want, r.stdout:match("^(%x+)"))
      assert.are.equal(size, st:get_to_file("tools/released/juju.tgz", dir .. "/out.bin"))
      assert.are.equal(want, (crypto.sha256_file(dir .. "/out.bin")))
      assert.are.equal(octal("644"), fs.stat(dir .. "/out.bin").mode) -- the stored mode
      assert.are.equal(size, st:get_to_file("tools/released/juju.tgz", dir .. "/o2", "0600"))
      assert.are.equal(octal("600"), fs.stat(dir .. "/o2").mode)
      assert.are.same({}, temp_files(dir))
    end)

    it("put_file_link stores by hard link when the modes agree, else copies", function()
      local src = dir .. "/cached.tgz"
      make_file(src, 65536 + 9)
      assert(fs.chmod(src, octal("644")))
      local want = assert(crypto.sha256_file(src))
      local size, sha, linked = st:put_file_link("tools/t.tgz", src, octal("644"))
      assert.are.same({ 65536 + 9, want, true }, { size, sha, linked })
      local links = assert(sys.run({ "stat", "-c", "%h %i", src, dir .. "/stor/tools/t.tgz" }))
      local a, b = links.stdout:match("^(.-)\n(.-)\n$")
      assert.are.equal("2", a:match("^(%d+)"))
      assert.are.equal(a, b)
      -- With the caller's digest the linked file is not read: that digest comes back.
      local claimed = string.rep("ab", 32)
      size, sha, linked = st:put_file_link("tools/t2.tgz", src, octal("644"), claimed)
      assert.are.same({ 65536 + 9, claimed, true }, { size, sha, linked })
      assert.has_error(function() st:put_file_link("tools/t3.tgz", src, octal("644"), "short") end)
      size, sha, linked = st:put_file_link("private", src)
      assert.are.same({ 65536 + 9, want, false }, { size, sha, linked })
      assert.are.equal(octal("600"), fs.stat(dir .. "/stor/private").mode)
      local none, msg, code = st:put_file_link("x", dir .. "/nonexistent", octal("644"))
      assert.is_nil(none)
      assert.are.equal("ENOENT", code)
      assert.truthy(msg:find("nonexistent", 1, true))
      assert.are.same({}, temp_files(dir))
    end)

    it("reports missing sources and objects, leaving nothing", function()
      local size, msg, code = st:put_file("x", dir .. "/nonexistent")
      assert.is_nil(size)
      assert.are.equal("ENOENT", code)
      assert.truthy(msg:find(dir .. "/nonexistent", 1, true))
      assert.is_false(st:exists("x"))
      size, msg, code = st:put_file("x", dir)
      assert.truthy(msg:find(dir, 1, true))
      assert.is_nil(size)
      assert.are.equal("EISDIR", code)
      size, msg, code = st:get_to_file("missing", dir .. "/out")
      assert.truthy(msg:find("missing", 1, true))
      assert.is_nil(size)
      assert.are.equal("ENOENT", code)
      assert.is_false(fs.exists(dir .. "/out"))
      assert(st:put("obj", "data"))
      size, msg, code = st:get_to_file("obj", dir .. "/no/such/dir/out")
      assert.truthy(msg:find(dir .. "/no/such/dir/", 1, true))
      assert.is_nil(size)
      assert.are.equal("ENOENT", code)
      assert.are.same({}, temp_files(dir))
      assert.has_error(function() st:put_file("x") end)
      assert.has_error(function() st:get_to_file("x", dir .. "/a\0b") end)
    end)
  end)

  describe("exists and size", function()
    it("tell objects from prefixes and missing names", function()
      assert(st:put("tools/a.tgz", "12345"))
      assert.is_true(st:exists("tools/a.tgz"))
      assert.is_false(st:exists("tools"))
      assert.is_false(st:exists("nothing"))
      assert.is_false(st:exists("tools/a.tgz/x"))
      assert.are.equal(5, st:size("tools/a.tgz"))
      local v, msg, code = st:size("nothing")
      assert.is_nil(v)
      assert.are.equal("ENOENT", code)
      assert.truthy(msg:find("nothing", 1, true))
      v, msg, code = st:size("tools")
      assert.truthy(msg:find("tools", 1, true))
      assert.is_nil(v)
      assert.are.equal("EISDIR", code)
    end)
  end)

  describe("list", function()
    before_each(function()
      for _, n in ipairs({ "tools/streams/v1/index.json", "provider-state", "tools-x",
                           "tools/released/juju-1.25.0-trusty-amd64.tgz",
                           "tools/releases/juju-1.24.7-trusty-amd64.tgz", "b" }) do
        assert(st:put(n, n))
      end
    end)

    it("lists every object, recursively and sorted", function()
      assert.are.same({
        "b", "provider-state", "tools-x",
        "tools/released/juju-1.25.0-trusty-amd64.tgz",
        "tools/releases/juju-1.24.7-trusty-amd64.tgz",
        "tools/streams/v1/index.json",
      }, st:list())
    end)

    it("filters by prefix", function()
      assert.are.same({
        "tools/released/juju-1.25.0-trusty-amd64.tgz",
        "tools/releases/juju-1.24.7-trusty-amd64.tgz",
        "tools/streams/v1/index.json",
      }, st:list("tools/"))
      assert.are.equal(4, #st:list("tools"))
      assert.are.same({ "tools/released/juju-1.25.0-trusty-amd64.tgz" }, st:list("tools/released"))
      assert.are.same({ "tools/streams/v1/index.json" }, st:list("tools/streams/v1/index.json"))
      assert.are.same({}, st:list("zzz"))
      assert.are.same({}, st:list("b\0"))
      assert.are.equal(6, #st:list(""))
      assert.has_error(function() st:list({}) end)
    end)

    it("skips temp files, symlinks and empty directories", function()
      assert(fs.write_atomic(dir .. "/stor/tools/.x.tgz.tmp-AbCdEf", "partial"))
      assert(fs.symlink(dir .. "/stor/b", dir .. "/stor/link"))
      assert(fs.symlink(dir .. "/stor/tools", dir .. "/stor/dirlink"))
      assert(fs.mkdir_p(dir .. "/stor/empty/dir"))
      assert.are.equal(6, #st:list())
    end)
  end)

  describe("remove and remove_all", function()
    it("remove deletes one object; missing is fine", function()
      assert(st:put("a/b", "x"))
      assert(st:put("c", "y"))
      assert.is_true(st:remove("a/b"))
      assert.is_false(st:exists("a/b"))
      assert.is_true(st:remove("a/b"))
      assert.is_true(st:remove("never/there"))
      assert.are.same({ "c" }, st:list())
      local ok, _, code = st:remove("a")
      assert.is_nil(ok)
      assert.are.equal("EISDIR", code)
    end)

    it("remove_all removes everything, the root included; puts recreate it", function()
      assert(st:put("a/b/c", "x"))
      assert(st:put("d", "y"))
      assert.is_true(st:remove_all())
      assert.is_false(fs.exists(dir .. "/stor"))
      assert.are.same({}, st:list())
      assert.is_false(st:exists("d"))
      assert.is_true(st:remove_all())
      assert.is_true(st:put("provider-state", ""))
      assert.are.equal(octal("700"), fs.stat(dir .. "/stor").mode)
      assert.are.same({ "provider-state" }, st:list())
      assert.are.equal("", st:get("provider-state"))
    end)
  end)

  describe("url and path", function()
    it("give the file path and a percent-encoded file:// URL", function()
      assert.are.equal(dir .. "/stor/tools/a.tgz", st:path("tools/a.tgz"))
      assert.are.equal("file://" .. dir .. "/stor/tools/released/juju-1.25.0-trusty-amd64.tgz",
        st:url("tools/released/juju-1.25.0-trusty-amd64.tgz"))
      assert.are.equal("file://" .. dir .. "/stor/a%20b/c%25d%23e%3F%C3%A9~",
        st:url("a b/c%d#e?\xc3\xa9~"))
    end)
  end)
end)
