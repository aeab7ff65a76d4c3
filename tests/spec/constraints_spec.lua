local constraints = require("juju.constraints")

describe("juju.constraints", function()
  it("parses every key with units and lists", function()
    local c = assert(constraints.parse("arch=amd64 cpu-cores=2 cpu-power=100 mem=4G root-disk=8192 "
      .. "tags=a,b instance-type=m1.small container=lxc networks=net1,^net2 spaces=db"))
    assert.are.equal("amd64", c.arch)
    assert.are.equal(2, c["cpu-cores"])
    assert.are.equal(4096, c.mem)
    assert.are.equal(8192, c["root-disk"])
    assert.are.same({ "a", "b" }, c.tags)
    assert.are.same({ "net1", "^net2" }, c.networks)
  end)

  it("rounds fractional sizes up to whole megabytes", function()
    assert.are.equal(1536, constraints.parse("mem=1.5G").mem)
    assert.are.equal(2, constraints.parse("mem=1.2").mem)
    assert.are.equal(1024 * 1024, constraints.parse("root-disk=1T")["root-disk"])
  end)

  it("formats canonically", function()
    local c = assert(constraints.parse("mem=2G arch=amd64 cpu-cores=4"))
    assert.are.equal("arch=amd64 cpu-cores=4 mem=2048M", constraints.format(c))
    assert.are.equal("", constraints.format({}))
  end)

  it("rejects bad input with Juju's messages", function()
    local cases = {
      { "bad=wrong", 'unknown constraint "bad"' },
      { "mem", 'malformed constraint "mem"' },
      { "mem=lots", 'bad "mem" constraint: must be a non-negative float with optional M/G/T/P suffix' },
      { "cpu-cores=-1", 'bad "cpu-cores" constraint: must be a non-negative integer' },
      { "arch=sparc", 'bad "arch" constraint: "sparc" not recognized' },
      { "container=docker", 'bad "container" constraint: invalid container type "docker"' },
      { "mem=1G mem=2G", 'bad "mem" constraint: already set' },
      { "mem=5555555555555555555P", 'bad "mem" constraint: value too large' },
    }
    for _, case in ipairs(cases) do
      local c, err = constraints.parse(case[1])
      assert.is_nil(c, case[1])
      assert.are.equal(case[2], err)
    end
  end)

  it("validates conflicts, vocabularies and unsupported keys", function()
    local spec = { conflicts = { { "instance-type", { "mem", "cpu-cores" } } },
      vocab = { arch = { "amd64" } }, unsupported = { "tags" } }
    local ok, err = constraints.validate(constraints.parse("instance-type=m1 mem=1G"), spec)
    assert.is_nil(ok)
    assert.are.equal('ambiguous constraints: "instance-type" overlaps with "mem"', err)
    ok, err = constraints.validate(constraints.parse("arch=i386"), spec)
    assert.is_nil(ok)
    assert.matches("invalid constraint value: arch=i386", err)
    local unsupported = constraints.validate(constraints.parse("tags=x mem=1G"), spec)
    assert.are.same({ "tags" }, unsupported)
  end)
end)
