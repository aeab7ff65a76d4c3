-- Specs for juju.gzip: deterministic gzip of strings that gzip -dc reads,
-- gunzip with its size limit, and the refusals.
local gzip = require("juju.gzip")

local function sh_read(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  assert(p:close(), "command failed: " .. cmd)
  return out
end

describe("juju.gzip", function()
  after_each(function()
    collectgarbage()
    collectgarbage()
  end)

  it("compresses so that gzip -dc gives the input back", function()
    local ud = "#cloud-config\n" .. string.rep("runcmd: [echo hello]\n", 500)
    local z = gzip.gzip(ud)
    assert.is_true(#z < #ud / 10)
    local path = os.tmpname()
    local f = assert(io.open(path, "wb"))
    f:write(z)
    f:close()
    local back = sh_read("gzip -dc '" .. path .. "'")
    os.remove(path)
    assert.are.equal(ud, back)
  end)

  it("is deterministic, at every level", function()
    for level = 0, 9 do
      assert.are.equal(gzip.gzip("same input", level), gzip.gzip("same input", level))
      assert.are.equal("same input", gzip.gunzip(gzip.gzip("same input", level)))
    end
    assert.are.equal(gzip.gzip("x"), gzip.gzip("x", gzip.DEFAULT_LEVEL))
    assert.are.equal("\31\139\8\0\0\0\0\0", gzip.gzip("x"):sub(1, 8))
    assert.has_error(function() gzip.gzip("x", 10) end)
  end)

  it("reads what gzip(1) writes and stops at max_size", function()
    local z = sh_read("printf 'abcdefghij' | gzip -c")
    assert.are.equal("abcdefghij", gzip.gunzip(z))
    assert.are.equal("abcdefghij", gzip.gunzip(z, 10))
    local v, msg, code = gzip.gunzip(z, 9)
    assert.is_nil(v)
    assert.are.equal("ERANGE", code)
    assert.matches("limit of 9 bytes", msg)
  end)

  it("reports corrupt and truncated data", function()
    local z = gzip.gzip(string.rep("data", 100))
    local v, msg, code = gzip.gunzip(z:sub(1, -3))
    assert.is_nil(v)
    assert.are.equal("CORRUPT", code)
    assert.matches("truncated", msg)
    v, msg, code = gzip.gunzip("plain text")
    assert.is_nil(v)
    assert.are.equal("CORRUPT", code)
    assert.matches("not gzip", msg)
  end)
end)
