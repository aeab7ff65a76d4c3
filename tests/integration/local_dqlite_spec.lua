-- The local provider with `state-store: dqlite`, for real: machine 0 is this
-- machine; jujud bootstrap-state starts Dqlite node 1 in root-dir/dqlite,
-- writes the initial documents through it and stops it; the machine agent
-- runs the node and heartbeats through it; `juju status` reads it over
-- mutual TLS; the go-dqlite shell (an independent client) sees the same
-- documents; destroy-environment leaves nothing.
local testing = require("juju.testing")
local fs = require("juju.fs")
local sys = require("juju.sys")
local yaml = require("juju.yaml")
local agentconf = require("juju.agentconf")
local server = require("juju.testing.server")

local SHELL = "/usr/bin/dqlite"

local function processes_under(dir)
  local out = {}
  for _, pid in ipairs(fs.list("/proc") or {}) do
    if pid:match("^%d+$") then
      local cmd = fs.read_file("/proc/" .. pid .. "/cmdline")
      if cmd and cmd:find(dir, 1, true) then out[#out + 1] = pid end
    end
  end
  return out
end

-- Whether nobody listens on host:port (SO_REUSEADDR: closed connections in
-- TIME_WAIT do not count, a listener does).
local function port_free(host, port)
  local r = assert(sys.run({ "/usr/bin/python3", "-c",
    "import socket,sys\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
      .. "try:\n s.bind((sys.argv[1],int(sys.argv[2])))\nexcept OSError:\n sys.exit(1)",
    host, tostring(port) }, { timeout = 10 }))
  return r.code == 0
end

describe("local provider with state-store: dqlite", function()
  local s
  after_each(function()
    if s then
      s:juju("destroy-environment", "-y", "--force", "loc")
      s:close()
    end
    s = nil
    collectgarbage()
  end)

  it("bootstraps node 1, shows machine 0 started, keeps the state in Dqlite, destroys everything", function()
    assert(fs.exists(SHELL), SHELL .. " not found: run scripts/install-deps.sh (go-dqlite)")
    local port = server.free_port("127.0.0.1")
    s = testing.new { environments = { loc = { type = "local", ["state-store"] = "dqlite", ["dqlite-port"] = port } },
      default = "loc", real_clock = true, env = { JUJU_AGENT_HEARTBEAT = "1" } }
    local r = s:juju("bootstrap")
    assert.are.equal(0, r.code, r.stderr)
    assert.matches("Bootstrap complete", r.stderr)

    r = s:juju("status")
    assert.are.equal(0, r.code, r.stderr)
    local doc = yaml.decode(r.stdout)
    assert.are.equal("started", doc.machines["0"]["agent-state"], r.stdout)

    local root = s:jenv("loc")["bootstrap-config"]["root-dir"]
    local conf = assert(agentconf.parse(assert(fs.read_file(root .. "/agents/machine-0/agent.conf"))))
    assert.are.equal("dqlite", conf.values.STATE_STORE)
    assert.are.equal("1", conf.values.DQLITE_NODE_ID)
    assert.are.equal(tostring(port), conf.values.DQLITE_PORT)
    local addr = conf.values.DQLITE_ADDRESS
    assert.matches(":" .. port .. "$", addr)
    assert.are.equal(addr, conf.values.DQLITE_SERVERS)
    assert.are.equal(tonumber("700", 8), fs.stat(root .. "/dqlite").mode & tonumber("777", 8))
    assert.is_false(fs.exists(root .. "/state.db"))

    -- The go-dqlite shell, with a certificate the environment's CA signed
    -- (machine 0's own), reads the documents bootstrap-state wrote and the
    -- agent's heartbeat.
    local pki = s.root .. "/shell-pki"
    assert(fs.mkdir_p(pki, tonumber("700", 8)))
    assert(fs.write_atomic(pki .. "/chain.pem", conf.stateservercert .. conf.cacert, tonumber("600", 8)))
    assert(fs.write_atomic(pki .. "/key.pem", conf.stateserverkey, tonumber("600", 8)))
    local sr = assert(sys.run({ SHELL, "-s", addr, "-c", pki .. "/chain.pem", "-k", pki .. "/key.pem", "-f", "json",
      "juju", "SELECT coll, id, doc FROM docs WHERE coll = 'machines'" }, { timeout = 30 }))
    assert.are.equal(0, sr.code, sr.stderr)
    assert.matches('"machineid":"0"', sr.stdout:gsub("\\", ""), 1, true)
    local beats = function()
      local b = assert(sys.run({ SHELL, "-s", addr, "-c", pki .. "/chain.pem", "-k", pki .. "/key.pem", "-f", "json",
        "juju", "SELECT doc FROM docs WHERE coll = 'presence'" }, { timeout = 30 }))
      assert.are.equal(0, b.code, b.stderr)
      return b.stdout
    end
    local first = beats()
    sys.sleep(2.5)
    local second = beats()
    assert.are_not.equal(first, second, "the agent's heartbeat did not change in Dqlite")
    assert.matches("pid", second) -- a heartbeat document, read twice

    r = s:juju("destroy-environment", "-y", "loc")
    assert.are.equal(0, r.code, r.stderr)
    assert.is_false(fs.exists(root .. "/dqlite"))
    assert.is_false(fs.exists(root))
    assert.are.same({}, processes_under(root))
    assert.is_true(port_free("127.0.0.1", port), "the dqlite port is still bound after destroy")
  end)
end)
