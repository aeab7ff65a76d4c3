-- juju.wait: the one poller. Every wait of a bootstrap (an instance becoming
-- running, SSH answering on machine 0, the agent's first heartbeat, a cloud
-- operation completing) goes through wait.poll: capped exponential backoff
-- with jitter, "Still waiting" heartbeat lines that say how long is left, the
-- run's clock (the virtual clock in tests), interruption, and the engine's
-- step deadline.
--
--   local v, msg, code = wait.poll {
--     what = "for instance i-1 to be running", timeout = 600,
--     poll = function(st) ... end,  -- st: attempt, elapsed, left, last_error
--     clock = ctx.clock, say = function(line) ctx:infof("%s", line) end,
--   }
--
-- poll's answers: a true value ends the wait with it; nil, err keeps waiting
-- (err is kept as the last error and shown in heartbeats and the timeout
-- message); false, err, code stops at once with nil, err, code (a bare
-- false, with no message, keeps waiting).
local M = {}

M.HEARTBEAT = 10  -- seconds between "Still waiting" lines
M.MAX_INTERVAL = 30

--- Go-style durations: 10m0s, 1.5s, 250ms.
function M.duration(s)
  if s < 1 then return string.format("%dms", math.floor(s * 1000 + 0.5)) end
  if s < 60 then
    if s == math.floor(s) then return string.format("%ds", s) end
    return string.format("%.1fs", s)
  end
  local m = math.floor(s / 60)
  return string.format("%dm%ds", m, math.floor(s - m * 60))
end
local duration = M.duration

--- The pause before attempt n+1 (n >= 1): interval * backoff^(n-1), capped
--- at max_interval, then spread by +-jitter (a fraction) with random().
function M.delay(n, opts)
  local d = (opts.interval or 1) * (opts.backoff or 1) ^ (n - 1)
  d = math.min(d, opts.max_interval or M.MAX_INTERVAL)
  local j = opts.jitter or 0
  if j > 0 then
    local r = (opts.random or math.random)()
    d = d * (1 - j + 2 * j * r)
  end
  return d
end

--- Polls until poll answers (see the header). opts: what (the text after
--- "waiting"), timeout (seconds, required), poll (required), interval (1),
--- backoff (1: a constant interval), max_interval (30), jitter (0..1),
--- random (function() -> [0, 1)), clock ({monotonic=, sleep=}; default
--- juju.sys), say (function(line): heartbeats; none when nil), heartbeat
--- (seconds, M.HEARTBEAT), heartbeat_line (function(st) -> line: replaces
--- the default "Still waiting <what> (<left> left)[: <last error>]"), check_interrupt
--- (function(): raises, as the engine's does), cancel (a SignalWatch:
--- a pending signal ends the wait with INTERRUPTED), deadline ({at=
--- monotonic time, reason=}: the engine's step cut), next_pause (function(st,
--- pause) -> pause: lets the caller shorten a pause). Returns poll's value,
--- or nil, message, code ("TIMEOUT", "INTERRUPTED", or poll's own); a
--- TIMEOUT also returns the state (attempt, elapsed, last_error, cut: the
--- deadline's reason when the engine cut the wait).
function M.poll(opts)
  if type(opts) ~= "table" or type(opts.poll) ~= "function" or type(opts.timeout) ~= "number" then
    error("wait.poll{what=, timeout=, poll=}", 2)
  end
  local clock = opts.clock or require("juju.sys")
  local what = opts.what or "for the operation"
  local start = clock.monotonic()
  local timeout = opts.timeout
  local limit, cut = timeout, nil
  if opts.deadline then
    local left = opts.deadline.at - start
    if left < limit then limit, cut = math.max(left, 0), opts.deadline.reason end
  end
  local beat = opts.heartbeat or M.HEARTBEAT
  local next_beat = start + beat
  local st = { attempt = 0, elapsed = 0, left = limit, timeout = timeout, what = what }
  local function interrupted()
    if opts.check_interrupt then opts.check_interrupt() end
    local sig = opts.cancel and opts.cancel:pending()
    if sig then return nil, string.format("interrupted (%s) while waiting %s", tostring(sig), what), "INTERRUPTED" end
  end
  while true do
    st.attempt = st.attempt + 1
    st.elapsed = clock.monotonic() - start
    st.left = limit - st.elapsed
    local v, err, code = opts.poll(st)
    if v then return v end
    if v == false and err ~= nil then return nil, err, code end
    if err ~= nil then st.last_error = tostring(err) end
    local now = clock.monotonic()
    st.elapsed = now - start
    st.left = limit - st.elapsed
    if st.left <= 0 then
      st.cut = cut
      if cut then return nil, string.format("%s while waiting %s", cut, what), "TIMEOUT", st end
      return nil, string.format("waited for %s %s%s", duration(timeout), what,
        st.last_error and (": " .. st.last_error) or ""), "TIMEOUT", st
    end
    if opts.say and now >= next_beat then
      local line = opts.heartbeat_line and opts.heartbeat_line(st)
        or string.format("Still waiting %s (%s left)%s", what, duration(st.left),
          st.last_error and (": " .. st.last_error) or "")
      opts.say(line)
      next_beat = now + beat
    end
    local pause = math.min(M.delay(st.attempt, opts), st.left)
    if opts.next_pause then pause = opts.next_pause(st, pause) end
    local r, m, c = interrupted()
    if m then return r, m, c end
    clock.sleep(math.max(pause, 0))
    r, m, c = interrupted()
    if m then return r, m, c end
  end
end

return M
