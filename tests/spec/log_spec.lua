local log = require("juju.log")

describe("juju.log", function()
  it("parses and formats logging configs", function()
    local cfg = assert(log.parse_config("<root>=INFO; juju.environs=DEBUG;unit=warning"))
    assert.are.equal(log.levels.INFO, cfg["<root>"])
    assert.are.equal(log.levels.DEBUG, cfg["juju.environs"])
    assert.are.equal("<root>=INFO;juju.environs=DEBUG;unit=WARNING", log.format_config(cfg))
    local bad, err = log.parse_config("juju=LOUD")
    assert.is_nil(bad)
    assert.matches("unknown severity level", err)
    assert.is_nil((log.parse_config("juju")))
  end)

  it("filters by the most specific module prefix", function()
    local lines = {}
    local lg = log.new(function(l) lines[#lines + 1] = l end,
      { config = log.parse_config("<root>=ERROR;juju.environs=DEBUG"), show_log = true })
    lg:module("juju.environs.config"):debugf("shown %d", 1)
    lg:module("juju.cmd"):warningf("hidden")
    lg:module("juju.cmd"):errorf("shown too")
    assert.are.equal(2, #lines)
    assert.matches("DEBUG juju%.environs%.config .* shown 1\n$", lines[1])
    assert.matches("ERROR juju%.cmd .* shown too\n$", lines[2])
  end)

  it("prints only warnings and errors, without a timestamp, when the log is not shown", function()
    local lines = {}
    local lg = log.new(function(l) lines[#lines + 1] = l end, { config = log.parse_config("<root>=DEBUG") })
    lg:module("juju"):debugf("not shown")
    lg:module("juju"):warningf("careful")
    assert.are.same({ "WARNING careful\n" }, lines)
  end)

  it("writes the full format with show_log", function()
    local lines = {}
    local lg = log.new(function(l) lines[#lines + 1] = l end,
      { config = log.parse_config("<root>=DEBUG"), show_log = true, clock = function() return 0 end })
    lg:module("juju.cmd"):infof("running juju")
    assert.matches("^1970%-01%-01 00:00:00 INFO juju%.cmd [%w_]+%.lua:%d+ running juju\n$", lines[1])
  end)

  it("redacts secrets and private keys", function()
    local s = log.redact({ "s3cr3t-value" }, "password s3cr3t-value and s3cr3t-value\n"
      .. "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    assert.is_nil(s:find("s3cr3t", 1, true))
    assert.is_nil(s:find("AAAA", 1, true))
    assert.matches("%[redacted%] and %[redacted%]", s)
  end)
end)
