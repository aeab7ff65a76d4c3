-- series_spec.lua: the series rules (juju.series): tools built on this
-- client are for its series; upstart series are refused; both before
-- anything is launched (a bootstrap with default-series: trusty).
local series = require("juju.series")
local testing = require("juju.testing")
local version = require("juju.version")
local sys = require("juju.sys")

local HOST = version.host_series(sys)

describe("juju.series", function()
  it("knows the init system of a series as Juju 1.25 did", function()
    assert.are.equal("upstart", series.init_system("trusty"))
    assert.are.equal("upstart", series.init_system("precise"))
    assert.are.equal("systemd", series.init_system("xenial"))
    assert.are.equal("systemd", series.init_system("vivid"))
    assert.are.equal("systemd", series.init_system("bookworm"))
    assert.are.equal("systemd", series.init_system("centos7"))
    assert.are.equal("windows", series.init_system("win2012r2"))
    assert.is_nil(series.init_system("nosuchseries"))
  end)

  it("accepts the client's own series for built tools, and other systemd series only for prepackaged tools", function()
    assert.is_true(series.check("bookworm", "bookworm", true))
    assert.is_true(series.check("jammy", "bookworm", false))
    local ok, err = series.check("jammy", "bookworm", true)
    assert.is_nil(ok)
    assert.matches('cannot bootstrap a "jammy" machine with tools built on this "bookworm" client', err)
    assert.matches("default%-series: bookworm", err)
  end)

  it("refuses upstart and unknown series whatever the tools", function()
    local ok, err = series.check("trusty", "bookworm", false)
    assert.is_nil(ok)
    assert.matches('series "trusty" boots with upstart', err)
    assert.matches("systemd only", err)
    ok, err = series.check("nosuchseries", "bookworm", true)
    assert.is_nil(ok)
    assert.matches('unknown series "nosuchseries"', err)
  end)
end)

describe("bootstrap with another series", function()
  local s
  after_each(function()
    if s then s:close() end
    s = nil
  end)

  local function bootstrap_fails(default_series)
    s = testing.new { environments = { d = { type = "dummy", ["default-series"] = default_series } }, default = "d" }
    local r = s:juju("bootstrap")
    assert.are.equal(1, r.code)
    -- Refused before the provider launched anything.
    assert.is_nil(r.stderr:find("Starting new instance", 1, true), r.stderr)
    for _, op in ipairs(s:ops()) do assert.are_not.equal("bootstrap", op.op) end
    assert.is_nil(s:jenv("d"))
    return r.stderr
  end

  it("says an Ubuntu trusty host is out of reach before launching, not late with no matching tools", function()
    local err = bootstrap_fails("trusty")
    assert.matches('series "trusty" boots with upstart', err)
    assert.is_nil(err:find("no matching tools", 1, true))
  end)

  it("says tools built here are for " .. HOST .. " only", function()
    local other = HOST == "bookworm" and "jammy" or "bookworm"
    local err = bootstrap_fails(other)
    assert.matches("tools built on this", err)
    assert.matches("default%-series: " .. HOST, err)
  end)

  it("bootstraps the client's own series", function()
    s = testing.new { environments = { d = { type = "dummy", ["default-series"] = HOST } }, default = "d" }
    local r = s:juju("bootstrap")
    assert.are.equal(0, r.code, r.stderr)
    -- (The provider's log does show a launch: the checks above can fail.)
    local launched = false
    for _, op in ipairs(s:ops()) do launched = launched or op.op == "start_instance" end
    assert.is_true(launched)
  end)
end)
