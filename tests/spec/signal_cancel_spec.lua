-- signal_cancel_spec.lua: a signal watched through juju.sys stops the long
-- calls of juju.ssh and juju.http (issue 9, "one copy of the core in the
-- process"): a real SIGINT, sent by a helper process 1 s into the call, makes
-- it return nil, message, "INTERRUPTED" within 0.5 s of the signal. The
-- bound is a behaviour (the call notices the signal), not a benchmark: the
-- waits themselves would last 8 to 30 s. Also pins the explicit `cancel`
-- option: a signal of that watch already pending when the call starts stops
-- it at once and stays pending for the watch's owner.
-- Needs root (the real sshd runs in a mount namespace) and python3: a test
-- that cannot find its server fails.
local ssh = require("juju.ssh")
local http = require("juju.http")
local sys = require("juju.sys")
local fs = require("juju.fs")
local sshd = require("juju.testing.sshd")
local h = require("helpers")

local PYTHON = "/usr/bin/python3"
local BOUND = 0.5

-- A helper process that sends SIGINT to this process after `delay` seconds
-- and writes the CLOCK_MONOTONIC time of the kill (Python's time.monotonic
-- and sys.monotonic read the same clock) to a file.
local KILLER = [[
import os, signal, sys, time
pid, delay, out = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
time.sleep(delay)
t = time.monotonic()
with open(out + ".tmp", "w") as f:
    f.write(repr(t))
os.rename(out + ".tmp", out)
os.kill(pid, signal.SIGINT)
]]

local function start_killer(dir, delay)
  local stamp = dir .. "/sent-" .. tostring(sys.monotonic())
  local p = assert(sys.spawn({ PYTHON, "-c", KILLER, tostring(sys.getpid()), tostring(delay or 1), stamp },
    { stdin = "null", stdout = "null" }))
  return { proc = p, stamp = stamp }
end

-- Runs fn() with a killer armed; returns fn's results packed, the time from
-- the signal to fn's return, and fn's whole duration.
local function interrupted_call(dir, fn)
  local k = start_killer(dir, 1)
  local t0 = sys.monotonic()
  local res = table.pack(fn())
  local t1 = sys.monotonic()
  assert(k.proc:wait(10))
  k.proc:close()
  local stamp = fs.read_file(k.stamp)
  assert(stamp, "the killer did not send its signal")
  local sent = assert(tonumber(stamp))
  return res, t1 - sent, t1 - t0
end

local function assert_interrupted(res, after_signal, total, watch)
  assert.is_nil(res[1], "the call was not interrupted")
  assert.are.equal("INTERRUPTED", res[3], tostring(res[2]))
  assert.matches("interrupted", res[2])
  assert.is_true(after_signal >= 0, "returned before the signal: " .. after_signal)
  assert.is_true(after_signal < BOUND, string.format("returned %.3f s after SIGINT (bound %.1f s)",
    after_signal, BOUND))
  assert.is_true(total >= 0.9, "returned too early: " .. total)
  -- The signal is the watch's to report, whoever noticed it first.
  assert.are.equal("INT", watch:pending())
end

describe("a watched SIGINT interrupts", function()
  local dir, watch
  before_each(function()
    assert.is_true(fs.exists(PYTHON), PYTHON .. " is missing")
    dir = h.tmpdir("juju-cancel-")
    watch = assert(sys.signals({ "INT" }))
  end)
  after_each(function()
    if watch then watch:close() end
    watch = nil
    h.cleanup()
    collectgarbage()
  end)

  describe("juju.ssh", function()
    local ok, why = sshd.available()
    local key

    before_each(function()
      assert(ok, why)
      key = dir .. "/id"
      local pem = assert(require("juju.crypto").ssh_keygen_ed25519("cancel"))
      assert(fs.write_atomic(key, pem, tonumber("600", 8)))
    end)

    it("connect to a server that never speaks", function()
      local silent = assert(sshd.silent_server(nil, 60))
      local res, after, total = interrupted_call(dir, function()
        return ssh.connect({ host = silent.host, port = silent.port, user = "nobody",
          private_key_file = key, connect_timeout = 8, known_hosts = dir .. "/known_hosts",
          trust_on_first_use = true })
      end)
      silent.stop()
      assert_interrupted(res, after, total, watch)
      assert.matches("SSH handshake with " .. silent.host, res[2], 1, true)
    end)

    it("a long exec, with the watch as cancel", function()
      local server = assert(sshd.start { address_index = 53 })
      finally(function() server.stop() end)
      local s = assert(ssh.connect(server.connect_opts()))
      local res, after, total = interrupted_call(dir, function()
        return s:exec("sleep 30", { cancel = watch })
      end)
      assert_interrupted(res, after, total, watch)
      -- The session survives: the channel was closed, not the connection.
      local r = assert(s:exec("echo still here"))
      assert.are.equal("still here\n", r.stdout)
      s:close()
    end)
  end)

  describe("juju.http", function()
    local stop, base
    before_each(function()
      local port_file = dir .. "/port"
      local p = assert(sys.spawn({ PYTHON, h.source_dir .. "/tests/integration/httpd.py",
        "--port-file", port_file }, { stdin = "null", stdout = "null", stderr = "null" }))
      stop = function() p:kill(); p:wait(10); p:close() end
      local deadline = sys.monotonic() + 10
      local port
      while not port and sys.monotonic() < deadline do
        port = tonumber(fs.read_file(port_file) or "")
        if not port then sys.sleep(0.02) end
      end
      assert(port, "httpd.py did not start")
      base = "http://127.0.0.1:" .. port
    end)
    after_each(function() stop() end)

    it("a request to a server that stalls", function()
      local res, after, total = interrupted_call(dir, function()
        return http.get(base .. "/slow", { idle_timeout = 30 })
      end)
      assert_interrupted(res, after, total, watch)
      assert.matches("^GET " .. base:gsub("%p", "%%%0") .. "/slow: interrupted %(SIGINT%)", res[2])
    end)

    it("the backoff between retries, with the watch as cancel", function()
      local res, after, total = interrupted_call(dir, function()
        return http.get(base .. "/flaky/5?t=cancel", { retries = 3, retry_delay = 20, cancel = watch })
      end)
      assert_interrupted(res, after, total, watch)
      assert.matches("waiting to retry: interrupted (SIGINT)", res[2], 1, true)
    end)
  end)
end)

describe("the cancel option", function()
  local watch
  after_each(function()
    if watch then watch:close() end
    watch = nil
    collectgarbage()
  end)

  it("stops a call at once when its watch has a signal pending, and leaves it pending", function()
    watch = assert(sys.signals({ "USR1" }))
    assert(sys.raise("USR1"))
    -- Nothing listens on port 9 of 127.0.0.2: without the pending signal
    -- this would be refused or time out, never INTERRUPTED.
    local r, msg, code = http.get("http://127.0.0.2:9/x", { cancel = watch, connect_timeout = 5 })
    assert.is_nil(r)
    assert.are.equal("INTERRUPTED", code, msg)
    assert.matches("interrupted (SIGUSR1)", msg, 1, true)
    local ok, why = sys.sleep(5, watch)
    assert.are.equal(false, ok)
    assert.are.equal("INTERRUPTED", why)
    assert.are.equal("USR1", watch:pending())
    assert.is_nil(watch:pending())
  end)

  it("without the option, a signal that came before the call does not stop it", function()
    watch = assert(sys.signals({ "USR1" }))
    assert(sys.raise("USR1"))
    assert.is_true(sys.sleep(0.01))
    assert.are.equal("USR1", watch:pending())
  end)

  it("rejects what is not an open signal watch", function()
    assert.has_error(function() http.get("http://127.0.0.1:9/", { cancel = true }) end,
      "bad option 'cancel' (juju.sys.SignalWatch expected, got boolean)")
    local w = assert(sys.signals({ "USR2" }))
    w:close()
    assert.has_error(function() sys.sleep(0, w) end, "bad option 'cancel' (the signal watch is closed)")
    assert.has_error(function() ssh.connect({ host = "h", user = "u", private_key_file = "/nonexistent",
      cancel = {} }) end, "bad option 'cancel' (juju.sys.SignalWatch expected, got table)")
  end)
end)
