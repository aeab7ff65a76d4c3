-- tests/cloudmatrix.lua: the cloud fault matrix at the command level, for
-- any emulated cloud of tests/clouds/ (one spec per cloud:
-- tests/integration/<cloud>_fault_matrix_spec.lua calls M.run).
--
-- The rows are the cloud API calls of one clean `juju bootstrap` plus
-- `juju destroy-environment`, read at run time from the emulator's own
-- call journal: a call the provider starts making gets a row by itself.
-- Each row is injected with every fault kind, and the built `juju`
-- executable runs as a subprocess (the CLI, not the Lua API):
--
--   error      the cloud refuses the call (its own error code and message)
--   throttled  the cloud says slow down once: retried, the bootstrap (or the
--              destroy) succeeds
--   timeout    no answer within the environment's cloud-request-timeout
--   reset      every attempt of the call is reset (the client's retries fail too)
--   SIGINT     the call is held by the emulator and juju gets SIGINT meanwhile
--
-- Every failing case: exit 1, one ERROR line naming the cloud's call and
-- its message (or "interrupted"), the failed step named in the log
-- (--show-log), no secret in the output, and nothing left in the emulators
-- (their own state, not the provider's view) -- or, when the fault also hit
-- the cleanup, a .jenv whose journal `juju destroy-environment -y` then
-- completes, leaving nothing. Calls made only by the cleanup (destroy's
-- TerminateInstances, DeleteSecurityGroup, ...) are reached through a
-- bootstrap that fails late (an error in the last call the bootstrap makes
-- first), so the fault hits the cleanup itself.
--
-- Throttling: one bootstrap with every bootstrap call throttled once, and
-- one destroy with every destroy call throttled once; each row's cell
-- checks, from the emulator's journal, that its call was answered "slow
-- down" and then succeeded. Faults before SSH run without test hosts (the
-- emulator's pool addresses); only the two successful bootstraps start one.
--
-- The matrix of outcomes is printed at the end; a missing cell fails.
local sys = require("juju.sys")
local fs = require("juju.fs")
local yaml = require("juju.yaml")
local h = require("helpers")

local M = {}

M.KINDS = { "error", "throttled", "timeout", "reset", "SIGINT" }
-- The fault kind the cloud module injects for each column.
local INJECT = { error = "error", throttled = "throttled", timeout = "timeout", reset = "reset", SIGINT = "hold" }
local ENV = "matrix"
local EXIT_WAIT = 120 -- s: a hung juju fails the case instead of the suite

-- A fresh JUJU_HOME with one environment; its tools cache is shared.
local function new_home(c, shared, extra)
  local root = h.tmpdir("juju-matrix-")
  local env = h.juju_user_env(root)
  h.write_environments(env, ENV, c:environment(extra))
  assert(fs.mkdir_p(env.JUJU_HOME .. "/cache", tonumber("700", 8)))
  assert(fs.symlink(shared, env.JUJU_HOME .. "/cache/tools"))
  return env
end

local function juju(env, args)
  local argv = { h.juju_exe }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  local r = assert(sys.run(argv, { env = env, timeout = 600, stdin = "null" }))
  return r
end

local function jenv_path(env) return env.JUJU_HOME .. "/environments/" .. ENV .. ".jenv" end

local function error_lines(stderr)
  local out = {}
  for l in stderr:gmatch("[^\n]+") do
    if l:match("^ERROR ") then out[#out + 1] = l end
  end
  return out
end

local function plain_find(text, needle) return text:find(needle, 1, true) ~= nil end

-- The distinct keys of calls, in the order of their first call.
local function distinct_keys(calls)
  local seen, keys = {}, {}
  for _, call in ipairs(calls) do
    if not seen[call.key] then
      seen[call.key] = true
      keys[#keys + 1] = call.key
    end
  end
  return keys
end

-- Runs juju bootstrap and sends SIGINT once the emulator holds a call of key.
local function bootstrap_interrupted(c, env, key, dir)
  local out, err = dir .. "/stdout", dir .. "/stderr"
  local p = assert(sys.spawn({ h.juju_exe, "--show-log", "bootstrap", "--upload-tools" },
    { env = env, stdin = "null", stdout = out, stderr = err }))
  local held = false
  local deadline = sys.monotonic() + EXIT_WAIT
  while not held and sys.monotonic() < deadline do
    for _, call in ipairs(c:calls()) do
      if call.key == key and call.pending then held = true end
    end
    if not held then
      if p:wait(0) then break end
      sys.sleep(0.05)
    end
  end
  if held then assert(p:kill("INT")) end
  local code, sig = p:wait(EXIT_WAIT)
  if code == "TIMEOUT" then p:kill("KILL"); p:wait(5) end
  p:close()
  return { code = code, signal = sig, stdout = fs.read_file(out) or "", stderr = fs.read_file(err) or "" }, held
end

--- Runs the matrix for cloud module cloud_mod (tests/clouds/<name>.lua).
--- bt: busted's {describe=, it=, setup=, teardown=, assert=}. opts:
--- address_base (the spec's host range), cloud_init ("emulated" default),
--- request_timeout (s, the timeout column's cloud-request-timeout; default
--- 2), hold (s the emulator holds a timed-out or interrupted call; default 6).
function M.run(bt, cloud_mod, opts)
  local describe, it, assert = bt.describe, bt.it, bt.assert
  opts = opts or {}
  local T = opts.request_timeout or 2
  local HOLD = opts.hold or (T + 4)
  local name = cloud_mod.name

  describe(name .. " fault matrix at the command level #integration", function()
    -- Collection time: the emulators start and one clean bootstrap +
    -- destroy-environment gives the rows (a failure here fails the file).
    local c = cloud_mod.start { address_base = opts.address_base, cloud_init = opts.cloud_init or "emulated" }
    local shared_tools = h.tmpdir("juju-matrix-tools-")
    local cells = {}
    local function record(row, kind, outcome) cells[row .. "|" .. kind] = outcome end

    local rows = {}
    local boot_keys, destroy_keys -- the distinct call keys of the clean runs
    local trigger
    do
      c:hosts(true)
      c:clear_calls()
      local env = new_home(c, shared_tools)
      local r = juju(env, { "bootstrap", "--upload-tools" })
      assert(r.code == 0, "the clean bootstrap failed:\n" .. r.stderr)
      local in_rows = {}
      -- a row per key not seen before, in the order of the calls
      local function add_rows(keys, phase)
        for _, key in ipairs(keys) do
          if not in_rows[key] then
            in_rows[key] = true
            rows[#rows + 1] = { key = key, phase = phase }
          end
        end
      end
      boot_keys = distinct_keys(c:calls())
      add_rows(boot_keys, "bootstrap")
      c:clear_calls()
      r = juju(env, { "destroy-environment", "-y", ENV })
      assert(r.code == 0, "the clean destroy-environment failed:\n" .. r.stderr)
      destroy_keys = distinct_keys(c:calls())
      add_rows(destroy_keys, "cleanup")
      local left = c:leftovers()
      assert(#left == 0, "the clean destroy-environment left: " .. table.concat(left, ", "))
      -- the last call the bootstrap makes first: an error there fails the
      -- bootstrap after everything was created, so the cleanup runs fully
      trigger = boot_keys[#boot_keys]
    end

    bt.teardown(function()
      c:stop()
      h.cleanup()
    end)

    -- After a failing command: nothing left, or a journal that
    -- destroy-environment completes. Returns the outcome's tail.
    local function check_clean(env)
      c:clear_faults()
      local left = c:leftovers()
      local jenv = fs.exists(jenv_path(env))
      local tail = "clean"
      if #left > 0 or jenv then
        assert.is_true(jenv, "left in the emulators with no .jenv to destroy: " .. table.concat(left, ", "))
        local d = juju(env, { "destroy-environment", "-y", ENV })
        assert.are.equal(0, d.code, d.stderr)
        tail = "destroy cleans"
      end
      assert.are.same({}, c:leftovers())
      assert.is_false(fs.exists(jenv_path(env)))
      return tail
    end

    local function no_secret(text)
      for label, secret in pairs(c.secrets) do
        assert.is_nil(text:find(secret, 1, true), label .. " in the output")
      end
    end

    it("has rows from the emulator's journal (bootstrap and destroy calls)", function()
      assert.is_true(#boot_keys >= 3, "too few bootstrap calls: " .. table.concat(boot_keys, " "))
      assert.is_true(#destroy_keys >= 1, "no destroy calls")
      io.stdout:write(string.format("\n%s matrix rows: bootstrap %s; destroy %s; late failure at %s\n", name,
        table.concat(boot_keys, " "), table.concat(destroy_keys, " "), trigger))
    end)

    for _, row in ipairs(rows) do
      for _, kind in ipairs(M.KINDS) do
        if kind ~= "throttled" then
          it(kind .. " in " .. row.key .. " (" .. row.phase .. ")", function()
            c:clear_faults()
            c:clear_calls()
            c:hosts(false)
            local env = new_home(c, shared_tools, kind == "timeout" and { ["cloud-request-timeout"] = T } or nil)
            if row.phase == "cleanup" then c:inject(trigger, "error") end
            c:inject(row.key, INJECT[kind], { seconds = HOLD })
            local r, held
            if kind == "SIGINT" then
              r, held = bootstrap_interrupted(c, env, row.key, h.tmpdir("juju-matrix-out-"))
              assert.is_true(held, "juju never made a held " .. row.key .. " call:\n" .. r.stderr)
            else
              r = juju(env, { "--show-log", "bootstrap", "--upload-tools" })
            end
            assert.are.equal(1, r.code, r.stderr)
            no_secret(r.stdout .. r.stderr)
            local errs = error_lines(r.stderr)
            assert.are.equal(1, #errs, "not one ERROR line:\n" .. r.stderr)
            -- the user's line names the call and the cloud's message
            -- (a fault in the cleanup: the line is the late failure's)
            local want = row.phase == "cleanup" and c:fault_text("error", trigger) or c:fault_text(INJECT[kind], row.key)
            for _, needle in ipairs(want) do
              assert.is_true(plain_find(errs[1], needle), string.format("%q not in the error line:\n%s", needle,
                r.stderr))
            end
            local step = r.stderr:match('bootstrap failed at step "([%w-]+)"')
            assert.is_string(step, "the failed step is not named:\n" .. r.stderr)
            -- the fault did hit the call
            local hit = false
            for _, call in ipairs(c:calls()) do
              if call.key == row.key and (call.faulted or call.pending) then hit = true end
            end
            assert.is_true(hit, "no " .. row.key .. " call met the fault")
            local tail = check_clean(env)
            record(row.key, kind, string.format("exit 1 @%s, %s", step, tail))
          end)
        end
      end
    end

    -- Each call answered "slow down" once, then retried: the command succeeds.
    local function assert_retried(keys, calls, what)
      for _, key in ipairs(keys) do
        local throttled, ok_after = false, false
        for _, call in ipairs(calls) do
          if call.key == key then
            if call.throttled then throttled = true
            -- answered after that, neither faulted nor a server error (Nova's
            -- GET /os-availability-zone succeeds with its 404: no zones)
            elseif throttled and not call.faulted and call.status and call.status < 500 then
              ok_after = true
            end
          end
        end
        assert.is_true(throttled and ok_after, key .. " was not throttled and then retried in " .. what)
      end
    end

    it("throttled: every call slowed down once, retried, bootstrap and destroy succeed", function()
      c:clear_faults()
      c:clear_calls()
      c:hosts(true)
      local env = new_home(c, shared_tools)
      for _, key in ipairs(boot_keys) do c:inject(key, "throttled") end
      local r = juju(env, { "bootstrap", "--upload-tools" })
      assert.are.equal(0, r.code, r.stderr)
      no_secret(r.stdout .. r.stderr)
      assert_retried(boot_keys, c:calls(), "bootstrap")
      r = juju(env, { "status" })
      assert.are.equal(0, r.code, r.stderr)
      local doc = assert(yaml.decode(r.stdout))
      assert.are.equal("started", doc.machines["0"]["agent-state"])
      c:clear_faults()
      c:clear_calls()
      for _, key in ipairs(destroy_keys) do c:inject(key, "throttled") end
      r = juju(env, { "destroy-environment", "-y", ENV })
      assert.are.equal(0, r.code, r.stderr)
      assert_retried(destroy_keys, c:calls(), "destroy-environment")
      c:clear_faults()
      assert.are.same({}, c:leftovers())
      for _, row in ipairs(rows) do
        record(row.key, "throttled", row.phase == "bootstrap" and "retried, bootstrap ok" or "retried, destroy ok")
      end
      c:hosts(false)
    end)

    it("has every cell of the matrix, printed as a table", function()
      local w = 28
      for _, row in ipairs(rows) do w = math.max(w, #row.key + 12) end
      local fmt = "%-" .. w .. "s" .. string.rep(" | %-34s", #M.KINDS)
      local lines = { string.format(fmt, "fault in", table.unpack(M.KINDS)) }
      local missing = {}
      for _, row in ipairs(rows) do
        local out = {}
        for i, kind in ipairs(M.KINDS) do
          local cell = cells[row.key .. "|" .. kind]
          if not cell then missing[#missing + 1] = row.key .. " / " .. kind end
          out[i] = cell or "MISSING"
        end
        lines[#lines + 1] = string.format(fmt, row.key .. " (" .. row.phase .. ")", table.unpack(out))
      end
      io.stdout:write("\n" .. name .. " fault matrix (juju bootstrap, the CLI):\n" .. table.concat(lines, "\n") .. "\n")
      assert.are.same({}, missing)
    end)
  end)
end

return M
