-- The manual provider and `juju status` over a state dump, without a host:
-- configuration rules and defaults, series and hardware detection, the
-- status of a dump, `jujud state-dump` failures, and the dummy's host keys.
-- (Bootstraps against real sshd hosts: tests/integration/manual_spec.lua.)
local testing = require("juju.testing")
local providers = require("juju.providers")
local fs = require("juju.fs")
local sys = require("juju.sys")
local yaml = require("juju.yaml")
local json = require("juju.json")
local crypto = require("juju.crypto")
local state_dump = require("juju.agent.state_dump")
local helpers = require("helpers")

local function manual_scenario(attrs)
  local env = { type = "manual" }
  for k, v in pairs(attrs) do env[k] = v end
  return testing.new { environments = { man = env }, default = "man" }
end

describe("manual provider configuration", function()
  it("requires bootstrap-host", function()
    local s <close> = manual_scenario({})
    local r = s:juju("bootstrap")
    assert.are.equal(1, r.code)
    assert.matches("bootstrap%-host must be specified", r.stderr)
    assert.is_nil(s:jenv("man"))
  end)

  it("refuses use-sshstorage: false, a bad host and a bad pinned key", function()
    for _, case in ipairs({
      { attrs = { ["bootstrap-host"] = "10.0.0.1", ["use-sshstorage"] = false }, err = "use%-sshstorage must not be set to false" },
      { attrs = { ["bootstrap-host"] = "10.0.0.1:99999" }, err = "bootstrap%-host: invalid port" },
      { attrs = { ["bootstrap-host"] = "10.0.0.1", ["bootstrap-host-key"] = "not a key" }, err = "bootstrap%-host%-key: not a public key line" },
    }) do
      local s <close> = manual_scenario(case.attrs)
      local r = s:juju("bootstrap")
      assert.are.equal(1, r.code)
      assert.matches(case.err, r.stderr)
      assert.is_nil(s:jenv("man"))
    end
  end)

  it("fills Juju's defaults at prepare: bootstrap-user, storage-auth-key, OS refresh on, upgrade off", function()
    -- A host that never answers, and --keep-broken, to look at the .jenv.
    local s <close> = manual_scenario({ ["bootstrap-host"] = "127.0.0.1:1", ["bootstrap-timeout"] = 20 })
    local r = s:juju("bootstrap", "--keep-broken")
    assert.are.equal(1, r.code)
    assert.matches("waited for 20s without being able to connect", r.stderr)
    local bc = s:jenv("man")["bootstrap-config"]
    assert.are.equal(sys.username(), bc["bootstrap-user"])
    assert.is_true(crypto.is_uuid(bc["storage-auth-key"]))
    assert.is_true(bc["use-sshstorage"])
    assert.is_true(bc["enable-os-refresh-update"])
    assert.is_false(bc["enable-os-upgrade"])
    assert.are.equal(8040, bc["storage-port"])
    -- The auth key is a secret: never printed.
    assert.is_nil(r.stderr:find(bc["storage-auth-key"], 1, true))
    -- The host cannot be reached to clean it: --force removes the .jenv.
    r = s:juju("destroy-environment", "-y", "man")
    assert.are.equal(1, r.code)
    assert.matches("Use %-%-force", r.stderr)
    assert.are.equal(0, s:juju("destroy-environment", "-y", "--force", "man").code)
    assert.is_nil(s:jenv("man"))
  end)

  it("keeps explicit OS switches and the type: null alias", function()
    local s <close> = testing.new { environments = { man = { type = "null", ["bootstrap-host"] = "127.0.0.1:1",
      ["bootstrap-timeout"] = 5, ["enable-os-upgrade"] = true, ["enable-os-refresh-update"] = false } } }
    assert.are.equal(1, s:juju("bootstrap", "-e", "man", "--keep-broken").code)
    local bc = s:jenv("man")["bootstrap-config"]
    assert.are.equal("manual", bc.type)
    assert.is_true(bc["enable-os-upgrade"])
    assert.is_false(bc["enable-os-refresh-update"])
    assert.are.equal(0, s:juju("destroy-environment", "-y", "--force", "man").code)
  end)
end)

describe("manual series and hardware detection", function()
  local P = assert(providers.load(nil, "manual"))
  it("reads lsb_release / os-release, uname -m, MemTotal and nproc", function()
    local f = assert(P.internal.parse_detection("series=bookworm\nmachine=x86_64\nmem-kb=2048000\ncores=4\n"))
    assert.are.same({ series = "bookworm", arch = "amd64", hardware = { arch = "amd64", mem = 2000, ["cpu-cores"] = 4 } }, f)
    f = assert(P.internal.parse_detection("series=trusty\nmachine=aarch64\nmem-kb=\ncores=\n"))
    assert.are.same({ arch = "arm64", ["cpu-cores"] = 1 }, f.hardware)
  end)
  it("refuses what it cannot use", function()
    assert.matches("cannot detect the series", select(2, P.internal.parse_detection("series=\nmachine=x86_64\n")))
    assert.matches('unknown series "plan9"', select(2, P.internal.parse_detection("series=plan9\nmachine=x86_64\n")))
    assert.matches("unsupported architecture", select(2, P.internal.parse_detection("series=trusty\nmachine=vax\n")))
  end)
end)

-- A provider whose machine 0 is described by a canned state dump.
local DUMPED = [[
local fs = require("juju.fs")
local storage = require("juju.storage")
local common = require("juju.provider_common")
local P = { name = "dumped", api_version = 2, public_tools = false, default_state_store = "sqlite",
  config = { fields = { ["world-dir"] = { type = "string", required = true } } } }
function P.prepare_for_bootstrap(_, cfg) return cfg end
function P.open(ctx, cfg) return { ctx = ctx, cfg = cfg, dir = cfg["world-dir"] } end
function P.storage(env) return storage.open_dir(env.dir .. "/storage") end
function P.state_server_instances(env) return common.state_server_instances(P.storage(env)) end
function P.start_instance(_, params)
  return { id = "d-0", addresses = { common.address("10.1.2.3", "cloud-local") }, hardware = { arch = params.tools[1].arch } }
end
function P.finalize() return true end
function P.state_dump(env)
  local text = fs.read_file(env.dir .. "/dump.json")
  if not text then return nil, "no dump" end
  return require("juju.json").decode(text)
end
function P.destroy(env) return fs.remove_tree(env.dir) end
return P
]]

local function dump_of(uuid, beat)
  return {
    environment = uuid, store = "sqlite", now = 1000,
    machines = { { _id = uuid .. ":0", machineid = "0", series = "trusty",
      addresses = { { value = "10.1.2.3", type = "ipv4", scope = "local-cloud" } } } },
    instanceData = { { _id = uuid .. ":0", machineid = "0", instanceid = "d-0", arch = "amd64", mem = 2048, cpucores = 2 } },
    presence = beat and { { _id = uuid .. ":m#0", machine = "0", time = beat.time, interval = 10, stopped = beat.stopped,
      agent_version = "1.26.0-trusty-amd64", pid = 7 } } or {},
  }
end

describe("juju status from a provider's state dump", function()
  it("shows machine 0 started, down or pending by the reporting host's clock", function()
    local s <close> = testing.new { files = { ["providers/dumped.lua"] = DUMPED } }
    assert(fs.write_atomic(s.home .. "/environments.yaml", yaml.encode({ default = "d", environments = {
      d = { type = "dumped", ["world-dir"] = s.root .. "/world" } } })))
    assert.are.equal(0, s:juju("bootstrap").code, s.last.stderr)
    local uuid = s:jenv("d")["environ-uuid"]
    local function status_with(beat)
      assert(fs.write_atomic(s.root .. "/world/dump.json", json.encode(dump_of(uuid, beat))))
      local r = s:juju("status")
      assert.are.equal(0, r.code, r.stderr)
      return yaml.decode(r.stdout).machines["0"]
    end
    -- The dump's own clock decides (the client's clock here is virtual).
    local m = status_with({ time = 995 })
    assert.are.equal("started", m["agent-state"])
    assert.are.equal("1.26.0", m["agent-version"])
    assert.are.equal("10.1.2.3", m["dns-name"])
    assert.are.equal("d-0", m["instance-id"])
    assert.are.equal("arch=amd64 cpu-cores=2 mem=2048M", m.hardware)
    assert.are.equal("down", status_with({ time = 900 })["agent-state"])
    assert.are.equal("down", status_with({ time = 999, stopped = true })["agent-state"])
    assert.are.equal("pending", status_with(nil)["agent-state"])
    fs.remove(s.root .. "/world/dump.json")
    local r = s:juju("status")
    assert.are.equal(1, r.code)
    assert.matches("Unable to connect to environment \"d\".*no dump", r.stderr)
  end)

  it("reads machine status from a dump with state_dump.machine_status", function()
    local st = state_dump.machine_status(dump_of("u", { time = 990 }), "0")
    assert.are.equal("started", st.agent_state)
    assert.are.equal("trusty", st.series)
    assert.are.equal("d-0", st.instance_id)
    assert.are.equal("pending", state_dump.machine_status(dump_of("u", nil), "0").agent_state)
  end)
end)

describe("jujud state-dump", function()
  it("fails clearly without an agent configuration", function()
    local dir = helpers.tmpdir("juju-state-dump-")
    local r = assert(sys.run({ helpers.build_dir .. "/bin/jujud", "state-dump", "--data-dir", dir }, { timeout = 30 }))
    assert.are.equal(1, r.code)
    assert.matches("ERROR state%-dump: cannot read agent configuration", r.stderr)
    helpers.cleanup()
  end)
end)

describe("host keys for cloud providers", function()
  it("reach the dummy's phase-1 user-data, one fresh pair per bootstrap, never printed", function()
    local s <close> = testing.new { environments = { dummyenv = { type = "dummy" } }, default = "dummyenv" }
    local r = s:juju("bootstrap", "--debug")
    assert.are.equal(0, r.code, r.stderr)
    local ud = yaml.decode(s:userdata("dummyenv"))
    local keys = ud.ssh_keys
    assert.is_table(keys)
    assert.matches("^ssh%-ed25519 ", keys.ed25519_public)
    assert.matches("BEGIN OPENSSH PRIVATE KEY", keys.ed25519_private)
    assert.are.equal(keys.ed25519_public:match("^(%S+ %S+)"),
      crypto.ssh_public_from_private(keys.ed25519_private):match("^(%S+ %S+)"))
    assert.is_nil(r.stderr:find(keys.ed25519_private, 1, true))
    assert.is_nil(r.stdout:find(keys.ed25519_private, 1, true))
    assert.are.equal(0, s:juju("destroy-environment", "-y", "dummyenv").code)
    assert.are.equal(0, s:juju("bootstrap").code, s.last.stderr)
    assert.are_not.equal(keys.ed25519_public, yaml.decode(s:userdata("dummyenv")).ssh_keys.ed25519_public)
  end)
end)
