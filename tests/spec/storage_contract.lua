-- storage_contract.lua: the behaviour every environ storage backend must
-- have (directory, SSH, S3, Swift, Azure blob, Manta, MAAS files), as
-- busted tests that each backend's spec registers:
--
--   require("spec.storage_contract").run(describe, it, assert, open, opts)
--
-- open(name) -> storage: a fresh, empty storage (a new bucket, container,
-- directory or prefix) for name; the same name opens the same storage.
-- opts: kind (for the test names), fetch (function(url) -> data | nil, msg:
-- how machine 0 would fetch url() without credentials; default juju.http.get),
-- big (bytes of the streamed object, default 3 MiB).
--
-- The interface (docs/lua-api.md, "Environ storage backends"):
--   put(name, data) -> true          put_file(name, path) -> size
--   get(name) -> data                get_to_file(name, path) -> size
--   exists(name) -> bool             size(name) -> bytes
--   list([prefix]) -> sorted names   remove(name) -> true (also if missing)
--   remove_all() -> true             url(name [, {expires=s}]) -> URL
--   close()
-- Missing objects are nil, msg, "ENOENT"; bad names nil, msg, "EINVAL".
local fs = require("juju.fs")
local http = require("juju.http")
local crypto = require("juju.crypto")

local M = {}

local BAD_NAMES = { "", "/abs", "a/../b", "./a", "a//b", "a\0b", "a\\b", ".." }

function M.run(describe, it, assert, open, opts)
  opts = opts or {}
  local kind = opts.kind or "storage"
  local counter = 0
  local function fresh_name()
    counter = counter + 1
    return string.format("contract-%d-%d", os.time() % 100000, counter)
  end

  local function fetch(url)
    if opts.fetch then return opts.fetch(url) end
    local r, msg = http.get(url, { timeout = 30 })
    if not r then return nil, msg end
    return r.body
  end

  -- Runs fn(storage, tmpdir) on a fresh storage and a fresh local
  -- directory, emptying and closing both even when an assertion fails.
  local function with_storage(fn)
    local st = assert(open(fresh_name()))
    local tmp = assert(fs.mkdtemp((os.getenv("TMPDIR") or "/tmp") .. "/juju-storage-contract-"))
    local ok, err = pcall(fn, st, tmp)
    pcall(st.remove_all, st)
    st:close()
    fs.remove_tree(tmp)
    if not ok then error(err, 0) end
  end

  local function expect_error(want, r, msg, code)
    assert.is_nil(r, "expected an error " .. want)
    assert.is_string(msg)
    assert.are.equal(want, code, msg)
  end

  describe(kind .. " storage contract", function()
    it("puts and gets an object, and overwrites it", function()
      with_storage(function(st)
        assert.is_true(st:put("provider-state", "state-instances:\n- i-1\n"))
        assert.are.equal("state-instances:\n- i-1\n", st:get("provider-state"))
        assert.is_true(st:put("provider-state", "second"))
        assert.are.equal("second", st:get("provider-state"))
        assert.is_true(st:put("empty", ""))
        assert.are.equal("", st:get("empty"))
        assert.are.equal(0, st:size("empty"))
      end)
    end)

    it("keeps binary data and nested names", function()
      with_storage(function(st)
        local bin = "\0\1\2\255\n\r\0end"
        assert.is_true(st:put("tools/releases/juju-1.25.6-trusty-amd64.tgz", bin))
        assert.are.equal(bin, st:get("tools/releases/juju-1.25.6-trusty-amd64.tgz"))
        assert.are.equal(#bin, st:size("tools/releases/juju-1.25.6-trusty-amd64.tgz"))
        assert.is_true(st:exists("tools/releases/juju-1.25.6-trusty-amd64.tgz"))
        assert.is_false(st:exists("tools/releases"))
        assert.is_false(st:exists("tools"))
      end)
    end)

    it("reports a missing object with ENOENT", function()
      with_storage(function(st, tmp)
        expect_error("ENOENT", st:get("nothing-here"))
        expect_error("ENOENT", st:size("nothing-here"))
        expect_error("ENOENT", st:get_to_file("nothing-here", tmp .. "/never"))
        assert.is_false(fs.exists(tmp .. "/never"))
        assert.is_false(st:exists("nothing-here"))
      end)
    end)

    it("lists objects sorted, by prefix, recursively", function()
      with_storage(function(st)
        assert.are.same({}, st:list())
        for _, n in ipairs({ "tools/b", "provider-state", "tools/a", "tools/sub/c", "toolsx" }) do
          assert.is_true(st:put(n, n))
        end
        assert.are.same({ "provider-state", "tools/a", "tools/b", "tools/sub/c", "toolsx" }, st:list())
        assert.are.same({ "tools/a", "tools/b", "tools/sub/c" }, st:list("tools/"))
        assert.are.same({ "tools/a", "tools/b", "tools/sub/c", "toolsx" }, st:list("tools"))
        assert.are.same({}, st:list("zzz"))
      end)
    end)

    it("removes an object, and a missing one without error", function()
      with_storage(function(st)
        assert.is_true(st:put("a", "1"))
        assert.is_true(st:put("b", "2"))
        assert.is_true(st:remove("a"))
        assert.is_false(st:exists("a"))
        assert.is_true(st:remove("a"))
        assert.is_true(st:remove("never-was"))
        assert.are.same({ "b" }, st:list())
      end)
    end)

    it("removes everything with remove_all, and can be written again", function()
      with_storage(function(st)
        for _, n in ipairs({ "x", "y/z", "y/w/v" }) do assert.is_true(st:put(n, n)) end
        assert.is_true(st:remove_all())
        assert.are.same({}, st:list())
        assert.is_true(st:remove_all())
        assert.is_true(st:put("again", "yes"))
        assert.are.equal("yes", st:get("again"))
      end)
    end)

    it("refuses bad names with EINVAL and writes nothing", function()
      with_storage(function(st)
        for _, n in ipairs(BAD_NAMES) do
          expect_error("EINVAL", st:put(n, "x"))
          expect_error("EINVAL", st:get(n))
          expect_error("EINVAL", st:remove(n))
        end
        assert.are.same({}, st:list())
      end)
    end)

    it("streams a large object from and to a file with the same bytes", function()
      with_storage(function(st, dir)
        local big = opts.big or 3 * 1024 * 1024
        local chunk = crypto.random_bytes(4096)
        local src = dir .. "/big-src"
        assert(fs.write_atomic(src, string.rep(chunk, big // 4096)))
        local want = (crypto.sha256_file(src))
        local n = assert(st:put_file("tools/big.tgz", src))
        assert.are.equal(big, n)
        assert.are.equal(big, st:size("tools/big.tgz"))
        local dst = dir .. "/big-dst"
        assert.are.equal(big, assert(st:get_to_file("tools/big.tgz", dst)))
        assert.are.equal(want, (crypto.sha256_file(dst)))
        fs.remove(src)
        fs.remove(dst)
      end)
    end)

    it("gives a URL that fetches the object without credentials", function()
      with_storage(function(st)
        assert.is_true(st:put("tools/juju-1.25.6.sha256", "abc123\n"))
        local url = assert(st:url("tools/juju-1.25.6.sha256", { expires = 3600 }))
        assert.is_string(url)
        assert.are.equal("abc123\n", assert(fetch(url)))
      end)
    end)

    it("raises when used after close", function()
      local st = assert(open(fresh_name()))
      st:remove_all()
      st:close()
      assert.has_error(function() st:put("a", "b") end)
    end)
  end)
end

return M
