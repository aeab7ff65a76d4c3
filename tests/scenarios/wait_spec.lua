-- Waiting shows its deadline, and runs on the virtual clock.
local testing = require("juju.testing")

local PROVIDER = [[
local common = require("juju.provider_common")
local storage = require("juju.storage")
local fs = require("juju.fs")
local P = { name = "slowagent", api_version = 2, public_tools = false, config = { fields = {
  ["world-dir"] = { type = "string", required = true }, ["agent-after"] = { type = "int", default = 35 } } } }
function P.prepare_for_bootstrap(_, cfg) return cfg end
function P.open(ctx, cfg) return { ctx = ctx, cfg = cfg, dir = cfg["world-dir"] } end
function P.storage(env) return storage.open_dir(env.dir .. "/storage") end
function P.state_server_instances(env) return common.state_server_instances(P.storage(env)) end
function P.start_instance(_, params)
  return { id = "slow-0", addresses = { common.address("10.0.0.1", "cloud-local") },
    hardware = { arch = params.tools[1].arch } }
end
function P.finalize() return true end
function P.wait_agent(env)
  local clock = env.ctx.clock
  local start = clock.monotonic()
  env.polls = 0
  return env.ctx:wait("for the machine agent", 60, function()
    env.polls = env.polls + 1
    P.POLLS = env.polls
    if clock.monotonic() - start >= env.cfg["agent-after"] then return true end
    return nil, "no heartbeat yet"
  end, 5)
end
function P.destroy(env) return fs.remove_tree(env.dir) end
return P
]]

describe("waits", function()
  it("print a heartbeat with the time left, and time out naming what they waited for", function()
    -- The environments name directories inside the scenario, so they are
    -- written once the scenario exists.
    local s = testing.new { files = { ["providers/slowagent.lua"] = PROVIDER } }
    local yaml_text = string.format("environments:\n  slow:\n    type: slowagent\n    world-dir: %s/world\n"
      .. "  late:\n    type: slowagent\n    world-dir: %s/world2\n    agent-after: 500\n", s.root, s.root)
    assert(require("juju.fs").write_atomic(s.home .. "/environments.yaml", yaml_text))
    local t0 = s.clock.monotonic()
    local r = s:juju("bootstrap", "-e", "slow")
    assert.are.equal(0, r.code, r.stderr)
    assert.matches("Still waiting for the machine agent %(%d+s left%)", r.stderr)
    assert.is_true(s.clock.monotonic() - t0 >= 35)

    r = s:juju("--show-log", "bootstrap", "-e", "late")
    assert.are.equal(1, r.code)
    assert.matches("waited for 1m0s for the machine agent: no heartbeat yet", r.stderr)
    assert.matches('step "wait%-agent"', r.stderr)
    assert.is_nil(s:jenv("late"))
    s:close()
  end)

  it("a step timeout runs the provider's wait_agent against the virtual clock", function()
    local s <close> = testing.new { files = { ["providers/slowagent.lua"] = PROVIDER },
      environments = { slow = { type = "slowagent", ["world-dir"] = "${root}/world", ["agent-after"] = 900 } } }
    s:timeout_step("wait-agent", 30)
    local t0 = s.clock.monotonic()
    local r = s:juju("--show-log", "bootstrap", "-e", "slow")
    assert.are.equal(1, r.code)
    assert.matches('step "wait%-agent"', r.stderr)
    -- The provider's wait ran and gave up at the injected deadline.
    assert.matches("timed out after 30s %(injected%) while waiting for the machine agent", r.stderr)
    assert.is_true(s:operations_called()[#s:operations_called()] ~= nil)
    local called = false
    for _, op in ipairs(s:operations_called()) do called = called or op == "wait_agent" end
    assert.is_true(called)
    local spent = s.clock.monotonic() - t0
    assert.is_true(spent >= 30 and spent < 60, tostring(spent))
  end)
end)
