-- juju ensure-availability: the plan (Juju 1.25's rules), the member
-- status vocabulary, the command's bad input. The replicated stores are
-- exercised by tests/integration/ha_*_spec.lua.
local ha = require("juju.ha")
local h = require("helpers")

local function machine(id, jobs, life)
  return { machineid = id, jobs = jobs or { 1 }, life = life or 0 }
end

describe("juju.ha", function()
  after_each(function() h.cleanup() end)

  it("finds the state servers (JobManageEnviron, code 2) and the next machine number", function()
    local ids, next_id = ha.state_servers({ machine("0", { 1, 2 }), machine("1"), machine("10", { 2 }),
      machine("2", { 2 }), machine("3", { 2 }, 2) })
    assert.are.same({ "0", "2", "10" }, ids)
    assert.are.equal(11, next_id)
  end)

  it("plans as 1.25: -n 0 means at least 3 or what exists; new machines take the next numbers", function()
    assert.are.same({ "1", "2" }, ha.plan({ "0" }, 1, 0).added)
    assert.are.same({ "0" }, ha.plan({ "0" }, 1, 0).maintained)
    assert.are.same({ "4", "5" }, ha.plan({ "0" }, 4, 3).added)
    assert.are.same({}, ha.plan({ "0", "1", "2", "3", "4" }, 5, 0).added)
    assert.are.same({ "5", "6" }, ha.plan({ "0", "1", "2", "3", "4" }, 5, 7).added)
    assert.are.same({}, ha.plan({ "0" }, 1, 1).added)
  end)

  it("refuses an even or negative count with 1.25's message, and a reduction", function()
    for _, n in ipairs({ 2, 4, -1 }) do
      local p, err = ha.plan({ "0" }, 1, n)
      assert.is_nil(p)
      assert.are.equal("must specify a number of state servers odd and non-negative", err)
    end
    local p, err = ha.plan({ "0", "1", "2" }, 3, 1)
    assert.is_nil(p)
    assert.matches("cannot reduce state server count %(3 state servers, 1 asked for%)", err)
  end)

  it("names member status as 1.25's juju status does", function()
    assert.are.equal("has-vote", ha.member_status(true, { role = "voter" }))
    assert.are.equal("adding-vote", ha.member_status(true, { role = "spare" }))
    assert.are.equal("adding-vote", ha.member_status(true, { role = "standby" }))
    assert.are.equal("removing-vote", ha.member_status(false, { role = "voter" }))
    assert.are.equal("no-vote", ha.member_status(true, nil))
    assert.are.equal("no-vote", ha.member_status(false, { role = "spare" }))
  end)

  it("maps machines to Dqlite node ids (machine 0 is node 1, which bootstraps the cluster)", function()
    assert.are.equal(1, ha.node_id("0"))
    assert.are.equal(3, ha.node_id("2"))
    assert.has_error(function() ha.node_id("0/lxc/1") end)
  end)
end)

describe("juju ensure-availability", function()
  after_each(function() h.cleanup() end)

  local function env_with(yaml_text)
    local env = h.env(h.tmpdir())
    h.write(env.JUJU_HOME .. "/environments.yaml", yaml_text)
    return env
  end

  it("refuses an even -n before touching anything (exit 2, 1.25's message)", function()
    local env = env_with("environments:\n  d:\n    type: dummy\n")
    local code, _, err = h.juju(env, { "ensure-availability", "-n", "2" })
    assert.are.equal(2, code)
    assert.matches("error: must specify a number of state servers odd and non%-negative", err)
    code, _, err = h.juju(env, { "ensure-availability", "-n", "-3" })
    assert.are.equal(2, code)
    assert.matches("odd and non%-negative", err)
    code, _, err = h.juju(env, { "ensure-availability", "-n", "x" })
    assert.are.equal(2, code)
    assert.matches("invalid value \"x\" for flag %-n", err)
  end)

  it("refuses an environment that is not bootstrapped, naming it and what to run", function()
    local env = env_with("environments:\n  d:\n    type: dummy\n")
    local code, _, err = h.juju(env, { "ensure-availability", "-e", "d" })
    assert.are.equal(1, code)
    assert.matches("ERROR environment \"d\" is not bootstrapped", err)
    assert.matches("juju bootstrap %-e d", err)
    assert.is_nil(require("juju.fs").stat(env.JUJU_HOME .. "/environments/d.jenv"))
  end)

  it("refuses a SQLite environment: one file cannot be replicated", function()
    local env = env_with("environments:\n  d:\n    type: dummy\n    state-store: sqlite\n")
    local code, _, err = h.juju(env, { "bootstrap", "-e", "d" })
    assert.are.equal(0, code, err)
    code, _, err = h.juju(env, { "ensure-availability", "-e", "d" })
    assert.are.equal(1, code)
    assert.matches("state%-store: sqlite", err)
    assert.matches("needs state%-store: dqlite", err)
  end)

  it("formats the result as 1.25 (simple, yaml, json)", function()
    local cmd = require("juju.commands.ensure_availability")
    local r = { maintained = { "0" }, added = { "1", "2" }, removed = {}, promoted = {}, demoted = {} }
    assert.are.equal("maintaining machines: 0\nadding machines: 1, 2\n", cmd.format(r, "simple"))
    assert.are.equal("maintained: [\"0\"]\nadded: [\"1\", \"2\"]\n", cmd.format(r, "yaml"))
    assert.are.equal('{"added":["1","2"],"maintained":["0"]}\n', cmd.format(r, "json"))
  end)
end)

describe("juju.ha.mongodb", function()
  local hamongo = require("juju.ha.mongodb")
  local cfg = { ["admin-secret"] = "s3cret-admin", ["ca-cert"] = "CA", ["state-port"] = 37017, ["api-port"] = 17070,
    uuid = "u" }

  it("reaches the replica set through every state server with TLS, the password never in the URI", function()
    local spec = assert(hamongo.state_spec(cfg, { ["state-servers"] = { "10.0.0.1:17070", "[fd00::2]:17070" } }, "/ca.pem"))
    assert.matches("^mongodb://10%.0%.0%.1:37017,%[fd00::2%]:37017/%?replicaSet=juju&tls=true", spec.uri)
    assert.are.equal("admin", spec.username)
    assert.are.equal("/ca.pem", spec.tls.ca_file)
    assert.is_nil(spec.uri:find("s3cret", 1, true))
    assert.are_not.equal("s3cret-admin", spec.password)
    assert.are.equal(require("juju.crypto").user_password_hash("s3cret-admin", require("juju.crypto").COMPAT_SALT),
      spec.password)
    local none, err = hamongo.state_spec(cfg, { ["state-servers"] = {} }, "/ca.pem")
    assert.is_nil(none)
    assert.matches("no state servers", err)
  end)

  it("hands replicaset.ensure every state server wanting a vote, at the state port", function()
    local docs = {
      { machineid = "0", jobs = { 1, 2 }, addresses = { { value = "10.0.0.1" } } },
      { machineid = "1", jobs = { 1 }, addresses = { { value = "10.0.0.9" } } },
      { machineid = "2", jobs = { 2 }, addresses = { { value = "10.0.0.3" } } },
      { machineid = "3", jobs = { 2 }, novote = true, addresses = { { value = "10.0.0.4" } } },
    }
    local st = { find = function(_, coll) assert.are.equal("machines", coll) return docs end }
    assert.are.same({ { id = "0", address = "10.0.0.1:37017", wants_vote = true },
      { id = "2", address = "10.0.0.3:37017", wants_vote = true } }, hamongo.machines({ cfg = cfg }, st))
  end)
end)

describe("ensure-availability on the manual provider", function()
  it("is refused before anything is touched: the provider manages one host", function()
    local P = assert(loadfile(os.getenv("JUJU_TEST_SOURCE_DIR") .. "/providers/manual.lua"))()
    local inst, err, code = P.start_instance({ host = "10.0.0.5", ctx = {} }, { machine_id = "1", placement = "10.0.0.6" })
    assert.is_nil(inst)
    assert.are.equal("UNSUPPORTED", code)
    assert.matches("manages one host %(bootstrap%-host 10%.0%.0%.5%)", err)
  end)
end)
