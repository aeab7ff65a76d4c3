-- juju status in Juju 1.25's formats (issue 15 item 4), against the
-- expected texts of 1.25's cmd/juju status tests and its formatters.
local statusformat = require("juju.statusformat")
local yaml = require("juju.yaml")
local h = require("helpers")

local function local_doc()
  return statusformat.normalize({
    environment = "local",
    machines = { ["0"] = { ["agent-state"] = "started", ["agent-version"] = "1.25.0", ["dns-name"] = "10.0.3.1",
      ["instance-id"] = "localhost", series = "trusty", hardware = "arch=amd64 cpu-cores=4 mem=7948M" } },
    services = {},
  }, "local")
end

-- 1.25's TestStatusWithFormatSummary / Oneline world: three machines,
-- three exposed services, two units with a subordinate each.
local function world()
  local function m(addr) return { ["agent-state"] = "started", ["dns-name"] = addr, series = "quantal" } end
  local function u(addr, st, subs) return { ["public-address"] = addr, ["agent-state"] = st, subordinates = subs } end
  return {
    environment = "dummyenv",
    machines = { ["0"] = m("localhost"), ["1"] = m("localhost"), ["2"] = m("10.0.0.1") },
    services = {
      logging = { exposed = true, charm = "cs:quantal/logging-1" },
      mysql = { exposed = true, charm = "cs:quantal/mysql-1",
        units = { ["mysql/0"] = u("10.0.0.1", "active", { ["logging/1"] = u("10.0.0.1", "error") }) } },
      wordpress = { exposed = true, charm = "cs:quantal/wordpress-3",
        units = { ["wordpress/0"] = u("localhost", "active", { ["logging/0"] = u("localhost", "active") }) } },
    },
  }
end

describe("juju status formats (Juju 1.25)", function()
  after_each(function() h.cleanup(); collectgarbage() end)

  it("yaml: has-vote on machine 0, the local provider's dns-name localhost and no hardware", function()
    assert.are.equal([[
environment: local
machines:
  "0":
    agent-state: started
    agent-version: 1.25.0
    dns-name: localhost
    instance-id: localhost
    series: trusty
    state-server-member-status: has-vote
services: {}
]], statusformat.format(local_doc(), "yaml"))
  end)

  it("keeps the hardware line and the address for other providers", function()
    local doc = statusformat.normalize({ environment = "m", machines = { ["0"] = { ["dns-name"] = "10.1.1.1",
      hardware = "arch=amd64" } }, services = {} }, "manual")
    local back = yaml.decode(statusformat.format(doc, "yaml"))
    assert.are.equal("10.1.1.1", back.machines["0"]["dns-name"])
    assert.are.equal("arch=amd64", back.machines["0"].hardware)
    assert.are.equal("has-vote", back.machines["0"]["state-server-member-status"])
  end)

  it("tabular: 1.25's sections and columns, aligned as Go's tabwriter did", function()
    assert.are.equal("[Services] \n"
      .. "NAME       STATUS EXPOSED CHARM \n"
      .. "\n"
      .. "[Units] \n"
      .. "ID      STATE VERSION MACHINE PORTS PUBLIC-ADDRESS \n"
      .. "\n"
      .. "[Machines] \n"
      .. "ID         STATE   VERSION DNS       INS-ID    SERIES HARDWARE \n"
      .. "0          started 1.25.0  localhost localhost trusty          \n"
      .. "\n", statusformat.format(local_doc(), "tabular"))
  end)

  it("summary: 1.25's TestStatusWithFormatSummary text", function()
    assert.are.equal(
      "Running on subnets: 127.0.0.1/8, 10.0.0.1/8 \n"
      .. "Utilizing ports:                            \n"
      .. " # MACHINES: (3)\n"
      .. "    started:  3 \n"
      .. "            \n"
      .. "    # UNITS: (4)\n"
      .. "     active:  3 \n"
      .. "      error:  1 \n"
      .. "            \n"
      .. " # SERVICES:  (3)\n"
      .. "     logging  1/1 exposed\n"
      .. "       mysql  1/1 exposed\n"
      .. "   wordpress  1/1 exposed\n"
      .. "\n"
      , statusformat.format(world(), "summary"))
  end)

  it("oneline, short and line: units with their subordinates indented", function()
    local want = "\n- mysql/0: 10.0.0.1 (active)\n  - logging/1: 10.0.0.1 (error)\n"
      .. "- wordpress/0: localhost (active)\n  - logging/0: localhost (active)\n"
    for _, f in ipairs({ "oneline", "short", "line" }) do
      assert.are.equal(want, statusformat.format(world(), f))
    end
    assert.are.equal("", statusformat.format(local_doc(), "oneline"))
  end)

  it("json carries the same document", function()
    local j = statusformat.format(local_doc(), "json")
    assert.matches('"state%-server%-member%-status":"has%-vote"', j)
    assert.matches("\n$", j)
  end)

  describe("the command", function()
    local function setup()
      local env = h.env(h.tmpdir())
      h.write(env.JUJU_HOME .. "/environments.yaml", "environments:\n  dummyenv: {type: dummy}\n")
      return env
    end

    it("accepts every 1.25 format and --utc, and refuses others", function()
      for _, f in ipairs({ "yaml", "json", "tabular", "summary", "short", "line", "oneline" }) do
        local code, _, err = h.juju(setup(), { "status", "--format", f, "--utc" })
        assert.are.equal(1, code, f)
        assert.matches("^ERROR Unable to connect", err)
      end
      local code, _, err = h.juju(setup(), { "status", "--format", "xml" })
      assert.are.equal(2, code)
      assert.are.equal('error: invalid value "xml" for flag --format: unknown format "xml"\n', err)
    end)

    it("not bootstrapped: 1.25's connection error with Error details:", function()
      local env = setup()
      local code, out, err = h.juju(env, { "status" })
      assert.are.equal(1, code)
      assert.are.equal("", out)
      assert.are.equal('ERROR Unable to connect to environment "dummyenv".\n'
        .. "Please check your credentials or use 'juju bootstrap' to create a new environment.\n\n"
        .. "Error details:\n"
        .. 'environment "dummyenv" not found\n\n', err)
    end)

    it("prepared but not bootstrapped: Error details: environment is not bootstrapped", function()
      local env = h.env(h.tmpdir())
      h.write(env.JUJU_HOME .. "/environments.yaml", "environments:\n  bad: {type: dummy, broken: Bootstrap}\n")
      h.juju(env, { "bootstrap", "--keep-broken" })
      local code, _, err = h.juju(env, { "status" })
      assert.are.equal(1, code)
      assert.are.equal('ERROR Unable to connect to environment "bad".\n'
        .. "Please check your credentials or use 'juju bootstrap' to create a new environment.\n\n"
        .. "Error details:\nenvironment is not bootstrapped\n\n", err)
    end)
  end)
end)
