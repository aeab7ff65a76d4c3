-- proc_spec.lua: juju.proc, the supervised-daemon binding.
local proc = require("juju.proc")
local fs = require("juju.fs")
local sys = require("juju.sys")
local helpers = require("helpers")

local function wait_for(pred, seconds)
  local deadline = sys.monotonic() + (seconds or 10)
  while sys.monotonic() < deadline do
    if pred() then return true end
    sys.sleep(0.02)
  end
  return false
end

local function read(path)
  return fs.exists(path) and fs.read_file(path) or ""
end

-- A free TCP port on 127.0.0.1 (asked of the kernel; tiny race accepted).
local function free_port()
  local r = assert(sys.run({ "/usr/bin/python3", "-c",
    "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])" }))
  return assert(math.tointeger(tonumber(r.stdout)))
end

describe("juju.proc", function()
  local dir

  setup(function() dir = helpers.tmpdir("juju-proc-") end)
  teardown(function() helpers.cleanup() end)
  after_each(function()
    collectgarbage()
    collectgarbage()
  end)

  it("starts a detached daemon with its own log, environment and pid file, and stops it", function()
    local log, pid_file = dir .. "/d.log", dir .. "/d.pid"
    local pid = assert(proc.start_daemon({ "sh", "-c", 'echo "hello $GREETING"; pwd; exec sleep 30' }, {
      log_file = log, pid_file = pid_file, env = { GREETING = "daemon", PATH = "/usr/bin:/bin" }, cwd = dir,
    }))
    assert.is_true(math.type(pid) == "integer" and pid > 0)
    assert.is_true(proc.alive(pid))
    assert.are.equal(pid, proc.read_pid(pid_file))
    assert.is_true(wait_for(function() return read(log):find(dir, 1, true) ~= nil end))
    assert.are.equal("hello daemon\n" .. dir .. "\n", read(log))
    assert.are.equal(tonumber("600", 8), fs.stat(log).mode & tonumber("777", 8))
    assert.are.equal(tonumber("600", 8), fs.stat(pid_file).mode & tonumber("777", 8))

    assert.is_true(proc.stop(pid_file, { timeout = 5 }))
    assert.is_false(proc.alive(pid))
    assert.is_false(fs.exists(pid_file))
    -- Stopping what is gone is fine.
    assert.is_true(proc.stop(pid_file))
  end)

  it("stops by pid and escalates to SIGKILL after the timeout", function()
    local pid = assert(proc.start_daemon({ "sh", "-c", "trap '' TERM; exec sleep 30" }))
    sys.sleep(0.1)
    local t0 = sys.monotonic()
    assert.is_true(proc.stop(pid, { timeout = 0.2 }))
    assert.is_true(sys.monotonic() - t0 >= 0.2)
    assert.is_false(proc.alive(pid))
  end)

  it("reports a program that cannot start and writes no pid file", function()
    local pid_file = dir .. "/missing.pid"
    local pid, msg, code = proc.start_daemon({ "/nonexistent/mongod", "--port", "1" }, { pid_file = pid_file })
    assert.is_nil(pid)
    assert.are.equal("ENOENT", code)
    assert.matches("/nonexistent/mongod", msg, 1, true)
    assert.is_false(fs.exists(pid_file))
  end)

  it("reads pid files strictly", function()
    local p = dir .. "/x.pid"
    local pid, msg, code = proc.read_pid(p)
    assert.is_nil(pid)
    assert.are.equal("ENOENT", code)
    assert.is_string(msg)
    helpers.write(p, "4242\n")
    assert.are.equal(4242, proc.read_pid(p))
    helpers.write(p, "42x\n")
    local _
    pid, _, code = proc.read_pid(p)
    assert.is_nil(pid)
    assert.are.equal("CORRUPT", code)
  end)

  it("waits for a port within a bound", function()
    local port = free_port()
    local t0 = sys.monotonic()
    local ok, msg, code = proc.wait_port("127.0.0.1", port, 0.3)
    assert.is_nil(ok)
    assert.are.equal("TIMEOUT", code)
    assert.matches("127.0.0.1:" .. port, msg, 1, true)
    assert.is_true(sys.monotonic() - t0 < 3)

    local pid_file = dir .. "/listener.pid"
    assert(proc.start_daemon({ "/usr/bin/python3", "-c", string.format(
      "import socket, time\ntime.sleep(0.2)\ns = socket.socket()\ns.bind(('127.0.0.1', %d))\ns.listen(1)\ntime.sleep(30)",
      port) }, { pid_file = pid_file }))
    assert.is_true(proc.wait_port("127.0.0.1", port, 10))
    assert.is_true(proc.stop(pid_file, { timeout = 5 }))
  end)

  it("raises on misuse", function()
    assert.has_error(function() proc.start_daemon({}) end)
    assert.has_error(function() proc.start_daemon("sh") end)
    assert.has_error(function() proc.start_daemon({ "sh", 3 }) end)
    assert.has_error(function() proc.start_daemon({ "sh" }, { bogus = true }) end)
    assert.has_error(function() proc.start_daemon({ "sh" }, { env = { ["A=B"] = "x" } }) end)
    assert.has_error(function() proc.start_daemon({ "sh" }, { log_file = 5 }) end)
    assert.has_error(function() proc.alive(0) end)
    assert.has_error(function() proc.alive({}) end)
    assert.has_error(function() proc.stop({}) end)
    assert.has_error(function() proc.stop(1, { timeout = -1 }) end)
    assert.has_error(function() proc.stop(1, { wait = 1 }) end)
    assert.has_error(function() proc.wait_port("127.0.0.1", 0, 1) end)
    assert.has_error(function() proc.wait_port("127.0.0.1", 80, -1) end)
  end)
end)
