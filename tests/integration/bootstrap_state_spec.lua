-- `jujud bootstrap-state` on a real machine 0 (the local provider's):
-- safe to run twice, completes what a failed run left, clear errors.
local testing = require("juju.testing")
local fs = require("juju.fs")
local sys = require("juju.sys")
local yaml = require("juju.yaml")
local json = require("juju.json")
local state = require("juju.state")
local cloudinit = require("juju.cloudinit")

local COLLECTIONS = { "constraints", "settings", "stateServers", "environments", "userenvname", "envusers",
  "users", "sequence", "machines", "instanceData", "statuses", "toolsmetadata" }

-- Every document, as JSON; with `untimed`, creation times are left out
-- (a document made again by a later run gets that run's time).
local function dump(db, untimed)
  local st = assert(state.open("sqlite", { path = db }))
  local out = {}
  for _, c in ipairs(COLLECTIONS) do
    for _, d in ipairs(st:find(c)) do
      if untimed then d.datecreated, d.updated = nil, nil end
      out[c .. "/" .. d._id] = json.encode(d)
    end
  end
  st:close()
  return out
end

describe("jujud bootstrap-state", function()
  local s, root, jujud

  before_each(function()
    s = testing.new { environments = { loc = { type = "local" } }, default = "loc", real_clock = true }
    assert.are.equal(0, s:juju("bootstrap").code, s.last.stderr)
    root = s:jenv("loc")["bootstrap-config"]["root-dir"]
    jujud = root .. "/tools/machine-0/jujud"
  end)

  after_each(function()
    s:juju("destroy-environment", "-y", "--force", "loc")
    s:close()
    collectgarbage()
  end)

  local function params_file(mode)
    local run = require("juju.bootstrap").last_run
    local path = root .. "/bootstrap-params"
    assert(fs.write_atomic(path, yaml.encode(cloudinit.bootstrap_params(run.icfg)), mode or "0600"))
    return path
  end

  local function run_bootstrap_state(extra)
    local argv = { jujud, "bootstrap-state", "--data-dir", root }
    for _, a in ipairs(extra or { "--params", params_file() }) do argv[#argv + 1] = a end
    return sys.run(argv, { env = { PATH = sys.getenv("PATH"), ASAN_OPTIONS = "detect_leaks=1" } })
  end

  it("changes nothing when run again", function()
    local before = dump(root .. "/state.db")
    local conf = fs.read_file(root .. "/agents/machine-0/agent.conf")
    local ident = fs.read_file(root .. "/system-identity")
    local r = run_bootstrap_state()
    assert.are.equal(0, r.code, r.stderr)
    assert.are.same(before, dump(root .. "/state.db"))
    assert.are.equal(conf, fs.read_file(root .. "/agents/machine-0/agent.conf"))
    assert.are.equal(ident, fs.read_file(root .. "/system-identity"))
  end)

  it("completes what a failed first run left", function()
    local before = dump(root .. "/state.db", true)
    local st = assert(state.open("sqlite", { path = root .. "/state.db" }))
    local uuid = s:jenv("loc")["environ-uuid"]
    assert(st:remove("machines", uuid .. ":0"))
    assert(st:remove("users", "admin"))
    assert(st:remove("toolsmetadata", st:find("toolsmetadata")[1]._id))
    st:close()
    local r = run_bootstrap_state()
    assert.are.equal(0, r.code, r.stderr)
    assert.are.same(before, dump(root .. "/state.db", true))
  end)

  it("stores machine 0, the admin user and the tools, cloned for every series of the OS", function()
    local st = assert(state.open("sqlite", { path = root .. "/state.db" }))
    local uuid = s:jenv("loc")["environ-uuid"]
    local m = assert(st:get("machines", uuid .. ":0"))
    assert.are.equal("0", m.machineid)
    assert.is_true(m.hasvote)
    assert.is_string(m.passwordhash)
    local crypto = require("juju.crypto")
    local secret = s:jenv("loc")["bootstrap-config"]["admin-secret"]
    assert.are.equal(crypto.user_password_hash(secret, crypto.COMPAT_SALT), st:get("users", "admin").passwordhash)
    local tools = st:find("toolsmetadata")
    local os_series = require("juju.version").os_series(require("juju.version").series_os(
      require("juju.version").host_series(sys)))
    assert.are.equal(#os_series, #tools)
    for _, t in ipairs(tools) do assert.is_true(fs.exists(root .. "/blobs/" .. t.path), t.path) end
    st:close()
  end)

  it("refuses a parameters file others can read, and a missing one", function()
    local r = run_bootstrap_state({ "--params", params_file("0644") })
    assert.are.equal(1, r.code)
    assert.matches("reading bootstrap parameters: .* has mode 644; it must be 0600", r.stderr)
    r = run_bootstrap_state({})
    assert.are.equal(2, r.code)
    assert.matches("%-%-params option must be set", r.stderr)
    r = run_bootstrap_state({ "--params", root .. "/nope" })
    assert.are.equal(1, r.code)
    assert.matches("does not exist", r.stderr)
  end)
end)
