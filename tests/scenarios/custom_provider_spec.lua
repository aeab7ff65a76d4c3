-- A provider written against providers/CONTRACT.md alone: a pretend cloud
-- whose instances are directories. Its phase 2 runs here (the real
-- production script and machine agent, with every path in the instance's
-- directory), so it turns package installation off, as CONTRACT.md says.
-- It bootstraps, shows status and destroys with no rebuild of the engine.
local testing = require("juju.testing")
local fs = require("juju.fs")
local sys = require("juju.sys")
local yaml = require("juju.yaml")

local DIRCLOUD = [==[
local fs = require("juju.fs")
local sys = require("juju.sys")
local storage = require("juju.storage")
local common = require("juju.provider_common")

local P = {
  name = "dircloud", api_version = 2, default_state_store = "sqlite", public_tools = false,
  description = "a pretend cloud: every instance is a directory",
  config = { fields = { ["cloud-dir"] = { type = "string", required = true, description = "the cloud" } } },
}

function P.prepare_for_bootstrap(_, cfg)
  -- Phase 2 runs on the operator's machine: no package changes.
  cfg["enable-os-refresh-update"], cfg["enable-os-upgrade"], cfg["enable-package-install"] = false, false, false
  return cfg
end
function P.open(ctx, cfg) return { ctx = ctx, cfg = cfg, dir = cfg["cloud-dir"] } end
function P.storage(env) return storage.open_dir(env.dir .. "/storage") end
function P.state_server_instances(env)
  if not fs.exists(env.dir .. "/storage/provider-state") then return nil, "not bootstrapped", "NOT_BOOTSTRAPPED" end
  return common.state_server_instances(P.storage(env))
end

local function idir(env, name) return env.dir .. "/instances/" .. name end

function P.instance_defaults(env)
  local d = idir(env, "juju-" .. env.cfg.uuid .. "-machine-0")
  return { data_dir = d .. "/var/lib/juju", log_dir = d .. "/var/log/juju", agent_start = "supervised",
    cloud_init_output_log = d .. "/cloud-init-output.log", service_name = "dircloud-" .. env.cfg.uuid,
    agent_env = { PROVIDER_TYPE = "dircloud" } }
end

function P.start_instance(env, params)
  local d = idir(env, params.name)
  assert(fs.mkdir_p(d, tonumber("755", 8)))
  assert(fs.write_atomic(d .. "/user-data", params.userdata))
  return { id = params.name, status = "running", addresses = { common.address("127.0.0.1", "machine-local") },
    hardware = { arch = params.tools[1].arch, mem = 512, ["cpu-cores"] = 1 } }
end

function P.finalize(env, inst, params)
  local r = sys.run({ "bash", "-s" }, { stdin = params.script, env = env.ctx.environ, timeout = 300 })
  if not r then return nil, "cannot run the script" end
  if r.code ~= 0 then return nil, "the script failed: " .. (r.stderr or ""):sub(-400) end
  return fs.exists(idir(env, inst.id) .. "/var/lib/juju/state.db") or nil, "no state database"
end

function P.state_info(env)
  return { kind = "sqlite", path = idir(env, "juju-" .. env.cfg.uuid .. "-machine-0") .. "/var/lib/juju/state.db" }
end

function P.all_instances(env)
  local out = {}
  for _, n in ipairs(fs.list(env.dir .. "/instances") or {}) do out[#out + 1] = { id = n, name = n } end
  return out
end

-- Stops the instance's agent (its restart loop's process group first).
function P.release(env, resource)
  if resource.kind ~= "instance" then return true end
  local d = idir(env, resource.id)
  for _, f in ipairs({ d .. "/var/lib/juju/init/dircloud-" .. env.cfg.uuid .. "/dircloud-" .. env.cfg.uuid .. ".pid",
    d .. "/var/lib/juju/agents/machine-0/jujud.pid" }) do
    local pid = math.tointeger(tonumber((fs.read_file(f) or ""):match("%d+") or ""))
    if pid and pid > 1 then sys.kill(-pid, "KILL"); sys.kill(pid, "KILL") end
  end
  return fs.remove_tree(d)
end

function P.destroy(env)
  for _, inst in ipairs(P.all_instances(env)) do P.release(env, { kind = "instance", id = inst.id }) end
  return fs.remove_tree(env.dir)
end

return P
]==]

describe("a provider written from CONTRACT.md", function()
  it("bootstraps a directory cloud, shows machine 0 started and destroys it", function()
    local s <close> = testing.new {
      files = { ["providers/dircloud.lua"] = DIRCLOUD }, real_clock = true, env = { JUJU_AGENT_HEARTBEAT = "1" },
      environments = { dc = { type = "dircloud", ["cloud-dir"] = "${root}/cloud" } }, default = "dc",
    }
    local r = s:juju("bootstrap", "--debug")
    assert.are.equal(0, r.code, r.stderr)
    assert.matches('provider "dircloud" loaded from .*providers/dircloud%.lua', r.stderr)
    local uuid = s:jenv("dc")["environ-uuid"]
    local name = "juju-" .. uuid .. "-machine-0"
    assert.are.same({ name }, s:instances("dc"))
    assert.matches("^#cloud%-config\n", s:userdata("dc"))
    assert.are.equal(s:userdata("dc"), fs.read_file(s.root .. "/cloud/instances/" .. name .. "/user-data"))
    assert.matches("^#!/bin/bash", s:script("dc"))
    local started
    for _ = 1, 100 do
      local st = s:juju("status")
      assert.are.equal(0, st.code, st.stderr)
      local m = yaml.decode(st.stdout).machines["0"]
      if m and m["agent-state"] == "started" then started = m; break end
      sys.sleep(0.1)
    end
    assert.is_table(started, "machine 0 never started")
    assert.are.equal(name, started["instance-id"])
    assert.are.equal(0, s:juju("destroy-environment", "-y", "dc").code, s.last.stderr)
    assert.is_false(fs.exists(s.root .. "/cloud"))
    assert.is_nil(s:jenv("dc"))
  end)

  it("s:close() destroys what the scenario bootstrapped and stops its agent", function()
    local s = testing.new {
      files = { ["providers/dircloud.lua"] = DIRCLOUD }, real_clock = true, env = { JUJU_AGENT_HEARTBEAT = "1" },
      environments = { dc = { type = "dircloud", ["cloud-dir"] = "${root}/cloud" } }, default = "dc",
    }
    assert.are.equal(0, s:juju("bootstrap").code, s.last.stderr)
    local name = "juju-" .. s:jenv("dc")["environ-uuid"] .. "-machine-0"
    local pid_file = s.root .. "/cloud/instances/" .. name .. "/var/lib/juju/agents/machine-0/jujud.pid"
    local pid
    for _ = 1, 100 do
      pid = math.tointeger(tonumber((fs.read_file(pid_file) or ""):match("%d+") or ""))
      if pid then break end
      sys.sleep(0.1)
    end
    assert.is_number(pid, "the agent never wrote its pid")
    assert.is_truthy(sys.kill(pid, 0))
    local root = s.root
    s:close()
    local alive = true
    for _ = 1, 50 do
      alive = sys.kill(pid, 0)
      if not alive then break end
      sys.sleep(0.1)
    end
    assert.is_falsy(alive)
    assert.is_false(fs.exists(root))
  end)
end)
