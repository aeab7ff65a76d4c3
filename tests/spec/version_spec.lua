local version = require("juju.version")
local sys = require("juju.sys")

describe("juju.version", function()
  it("parses the grammar of spec 2.6", function()
    local cases = {
      ["1.25.0"] = { 1, 25, "", 0, 0 }, ["1.25.0.1"] = { 1, 25, "", 0, 1 },
      ["1.25-beta1"] = { 1, 25, "beta", 1, 0 }, ["1.25-alpha1.2"] = { 1, 25, "alpha", 1, 2 },
    }
    for s, want in pairs(cases) do
      local v = assert(version.parse(s), s)
      assert.are.same(want, { v.major, v.minor, v.tag, v.patch, v.build }, s)
      assert.are.equal(s, tostring(v))
    end
    for _, bad in ipairs({ "1", "1.2", "a.b.c", "1.2.3.4.5", "1.2-3", "1234567890.1.1" }) do
      assert.is_nil(version.parse(bad), bad)
    end
  end)

  it("orders versions, tags before releases", function()
    local function v(s) return assert(version.parse(s)) end
    assert.is_true(v("1.25-beta1") < v("1.25.0"))
    assert.is_true(v("1.25.0") < v("1.25.0.1"))
    assert.is_true(v("1.9.9") < v("1.10.0"))
    assert.is_true(v("1.25.0") == v("1.25.0"))
  end)

  it("knows dev versions", function()
    assert.is_true(version.is_dev(version.parse("1.25-beta1")))
    assert.is_true(version.is_dev(version.parse("1.25.0.1")))
    assert.is_true(version.is_dev(version.parse("1.19.0")))
    assert.is_false(version.is_dev(version.parse("1.25.0")))
  end)

  it("parses binary versions", function()
    local b = assert(version.parse_binary("1.25.0-trusty-amd64"))
    assert.are.equal("trusty", b.series)
    assert.are.equal("amd64", b.arch)
    assert.are.equal("1.25.0-trusty-amd64", version.format_binary(b))
    assert.is_nil(version.parse_binary("1.25.0-trusty"))
  end)

  it("maps series to product versions and OSes", function()
    assert.are.equal("14.04", version.series_version("trusty"))
    assert.are.equal("bookworm", version.series_version("bookworm"))
    assert.are.equal("debian", version.series_os("bookworm"))
    assert.are.equal("ubuntu", version.series_os("trusty"))
    assert.is_nil(version.series_version("nosuch"))
  end)

  it("reads the host series from os-release", function()
    local series, os_name = version.host_series(sys)
    local rel = sys.os_release()
    assert.are.equal(rel.VERSION_CODENAME or rel.UBUNTU_CODENAME, series)
    assert.are.equal(rel.ID, os_name)
  end)
end)
