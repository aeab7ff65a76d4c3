-- wait_spec.lua: juju.wait, the one poller (backoff, jitter, heartbeats with
-- the time left, interruption, the engine's deadline) on the virtual clock.
local wait = require("juju.wait")
local testing = require("juju.testing")

local function recorder(clock)
  local sleeps, lines = {}, {}
  local inner = clock.sleep
  clock.sleep = function(s) sleeps[#sleeps + 1] = s; inner(s) end
  return sleeps, lines, function(line) lines[#lines + 1] = line end
end

describe("juju.wait", function()
  it("returns the first true value and polls at once", function()
    local clock = testing.virtual_clock()
    local sleeps = recorder(clock)
    local n = 0
    local v = wait.poll { timeout = 10, clock = clock, poll = function() n = n + 1; return n == 3 and "ok" end }
    assert.are.equal("ok", v)
    assert.are.equal(3, n)
    assert.are.same({ 1, 1 }, sleeps)
  end)

  it("backs off exponentially up to the cap", function()
    local clock = testing.virtual_clock()
    local sleeps = recorder(clock)
    local v, msg, code = wait.poll { what = "for it", timeout = 100, clock = clock, interval = 1, backoff = 2,
      max_interval = 10, poll = function() return nil, "not yet" end }
    assert.is_nil(v)
    assert.are.equal("TIMEOUT", code)
    assert.are.equal("waited for 1m40s for it: not yet", msg)
    assert.are.same({ 1, 2, 4, 8, 10, 10 }, { table.unpack(sleeps, 1, 6) })
    local total = 0
    for _, s in ipairs(sleeps) do total = total + s end
    assert.are.equal(100, total) -- the last pause is cut to the time left
  end)

  it("spreads pauses by the jitter fraction", function()
    local lo = wait.delay(3, { interval = 1, backoff = 2, jitter = 0.5, random = function() return 0 end })
    local hi = wait.delay(3, { interval = 1, backoff = 2, jitter = 0.5, random = function() return 0.999999 end })
    assert.are.equal(2, lo)
    assert.is_true(hi > 5.99 and hi <= 6)
    for _ = 1, 100 do
      local d = wait.delay(10, { interval = 1, backoff = 2, max_interval = 30, jitter = 0.2 })
      assert.is_true(d >= 24 and d <= 36, tostring(d))
    end
  end)

  it("says how long is left, with the last error, every heartbeat", function()
    local clock = testing.virtual_clock()
    local _, lines, say = recorder(clock)
    wait.poll { what = "for instance i-1 to be running", timeout = 60, clock = clock, interval = 5,
      heartbeat = 20, say = say, poll = function() return nil, "state is pending" end }
    assert.are.same({
      "Still waiting for instance i-1 to be running (40s left): state is pending",
      "Still waiting for instance i-1 to be running (20s left): state is pending",
    }, lines)
  end)

  it("stops at once on false, message, code", function()
    local clock = testing.virtual_clock()
    local n = 0
    local v, msg, code = wait.poll { timeout = 60, clock = clock, poll = function()
      n = n + 1
      if n == 2 then return false, "instance i-1 terminated", "GONE" end
      return false -- a bare false keeps waiting
    end }
    assert.is_nil(v)
    assert.are.equal("instance i-1 terminated", msg)
    assert.are.equal("GONE", code)
    assert.are.equal(2, n)
  end)

  it("ends with INTERRUPTED when the cancel token has a signal", function()
    local clock = testing.virtual_clock()
    local n = 0
    local token = { pending = function() return n >= 2 and "SIGINT" or nil end }
    local v, msg, code = wait.poll { what = "for SSH", timeout = 600, clock = clock, cancel = token,
      poll = function() n = n + 1 end }
    assert.is_nil(v)
    assert.are.equal("INTERRUPTED", code)
    assert.matches("interrupted %(SIGINT%) while waiting for SSH", msg)
    assert.is_true(clock.monotonic() < 5)
  end)

  it("lets check_interrupt raise, as the engine's does", function()
    local clock = testing.virtual_clock()
    assert.has_error(function()
      wait.poll { timeout = 60, clock = clock, poll = function() end,
        check_interrupt = function() error("interrupted") end }
    end, "interrupted")
  end)

  it("gives up at the engine's deadline with its reason", function()
    local clock = testing.virtual_clock()
    local v, msg, code, st = wait.poll { what = "for SSH", timeout = 600, clock = clock,
      deadline = { at = clock.monotonic() + 30, reason = "step wait-ssh timed out (injected)" },
      poll = function() return nil, "refused" end }
    assert.is_nil(v)
    assert.are.equal("TIMEOUT", code)
    assert.are.equal("step wait-ssh timed out (injected) while waiting for SSH", msg)
    assert.are.equal("refused", st.last_error)
    assert.is_true(clock.monotonic() <= 31)
  end)

  it("refuses a call without timeout or poll", function()
    assert.has_error(function() wait.poll { poll = function() end } end)
    assert.has_error(function() wait.poll { timeout = 1 } end)
  end)

  it("formats durations as Go does", function()
    assert.are.equal("250ms", wait.duration(0.25))
    assert.are.equal("1.5s", wait.duration(1.5))
    assert.are.equal("10m0s", wait.duration(600))
  end)
end)
