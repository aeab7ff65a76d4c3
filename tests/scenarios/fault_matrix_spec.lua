-- The fault matrix: every step of the orchestrator's step table and every
-- operation of the provider contract, enumerated at run time, gets an
-- error, a timeout and an interrupt injected. For each: exit 1, the error
-- names the step and the cause, and nothing created is left behind, which
-- is checked independently of the engine (a diff of the JUJU_HOME tree and
-- the dummy's directory).
local testing = require("juju.testing")
local fs = require("juju.fs")
local sys = require("juju.sys")

-- What a fault in each contract operation does to a dummy bootstrap. An
-- operation missing here fails the suite: a new operation needs a case.
local OP_CASES = {
  prepare_for_bootstrap = "fails-bootstrap",
  validate_config = "fails-bootstrap",
  open = "fails-bootstrap",
  storage = "fails-bootstrap",
  state_server_instances = "fails-bootstrap",
  constraints_validator = "fails-bootstrap",
  tools_sources = "tolerated",
  instance_defaults = "fails-bootstrap",
  start_instance = "fails-bootstrap",
  finalize = "fails-bootstrap",
  wait_agent = "fails-bootstrap",
  all_instances = "cleanup-tolerated",
  release = "cleanup-tolerated",
  destroy = "fails-cleanup",
  state_info = "fails-status",
  state_dump = "fails-status",
  -- called by record-endpoints of a state-store: dqlite environment
  state_server_address = "fails-bootstrap-dqlite",
}

local KINDS = { "error", "timeout", "interrupt" }

-- The matrix of outcomes, filled by the cases and printed at the end; a
-- missing cell fails the suite.
local cells = {}
local function record(row, kind, outcome) cells[row .. "|" .. kind] = outcome end

-- A scenario that has bootstrapped and destroyed once (so the client key and
-- lock files exist), and the snapshot of its JUJU_HOME then.
local function baseline(attrs)
  local e = { type = "dummy" }
  for k, v in pairs(attrs or {}) do e[k] = v end
  local s = testing.new { environments = { dummyenv = e }, default = "dummyenv" }
  assert(s:juju("bootstrap").code == 0, s.last.stderr)
  assert(s:juju("destroy-environment", "-y", "dummyenv").code == 0, s.last.stderr)
  return s, s:snapshot()
end

local function assert_nothing_left(s, snap)
  assert.are.same({}, testing.diff(snap, s:snapshot()))
  assert.are.same({}, fs.list(s.home .. "/dummy") or {})
end

local function inject(s, what, name, kind)
  local method = ({ error = "fail_", timeout = "timeout_", interrupt = "interrupt_" })[kind] .. what
  s[method](s, name)
end

describe("fault matrix", function()
  after_each(function() collectgarbage() end)

  it("has a case for every operation of the contract", function()
    for _, name in ipairs(testing.operation_names()) do
      assert.is_string(OP_CASES[name], "no fault case for provider operation " .. name)
    end
  end)

  for _, step in ipairs(testing.step_ids()) do
    for _, kind in ipairs(KINDS) do
      it(kind .. " at step " .. step, function()
        local s, snap = baseline()
        inject(s, "step", step, kind)
        -- The failed step is named in the log (--show-log), as issue 15 asks.
        local r = s:juju("--show-log", "bootstrap")
        assert.are.equal(1, r.code, r.stderr)
        assert.matches(string.format('bootstrap failed at step "%s"', step:gsub("%-", "%%-")), r.stderr)
        local cause = ({ error = "injected failure at " .. step, timeout = "timed out after 10m0s",
          interrupt = "interrupted" })[kind]
        assert.is_truthy(r.stderr:find(cause, 1, true), r.stderr)
        assert_nothing_left(s, snap)
        record("step " .. step, kind, "exit 1, named, clean")
        s:close()
      end)
    end
  end

  for _, op in ipairs(testing.operation_names()) do
    for _, kind in ipairs(KINDS) do
      it(kind .. " in operation " .. op, function()
        local case = OP_CASES[op]
        assert.is_string(case, "no fault case for " .. op)
        local s, snap
        if case == "fails-bootstrap-dqlite" then
          s, snap = baseline({ ["state-store"] = "dqlite" })
          case = "fails-bootstrap"
        else
          s, snap = baseline()
        end
        if case == "fails-bootstrap" then
          inject(s, "op", op, kind)
          local r = s:juju("--show-log", "bootstrap")
          assert.are.equal(1, r.code, r.stderr)
          assert.matches('bootstrap failed at step "[%w-]+"', r.stderr)
          local cause = ({ error = "injected failure in " .. op, timeout = "timed out after 10m0s",
            interrupt = "interrupted" })[kind]
          assert.is_truthy(r.stderr:find(cause, 1, true), r.stderr)
          assert_nothing_left(s, snap)
          record("op " .. op, kind, "exit 1, named, clean")
        elseif case == "fails-cleanup" then
          -- A late failure makes the cleanup call the operation.
          s:fail_step("finalize", "late failure")
          inject(s, "op", op, kind)
          local r = s:juju("bootstrap")
          assert.are.equal(1, r.code, r.stderr)
          assert.matches("late failure", r.stderr)
          if kind ~= "interrupt" then
            assert.matches("cleanup was incomplete", r.stderr)
            assert.is_table(s:jenv("dummyenv")["bootstrap-journal"])
            s:clear_faults()
            local d = s:juju("destroy-environment", "-y", "dummyenv")
            assert.are.equal(0, d.code, d.stderr)
          end
          assert_nothing_left(s, snap)
          record("op " .. op, kind, kind == "interrupt" and "exit 1, cleanup done" or "exit 1, leftovers journaled, destroy cleans")
        elseif case == "cleanup-tolerated" then
          -- The cleanup calls it; a failure there is logged, and the
          -- provider's destroy still removes everything.
          s:fail_step("finalize", "late failure")
          inject(s, "op", op, kind)
          local r = s:juju("bootstrap")
          assert.are.equal(1, r.code, r.stderr)
          assert.matches("late failure", r.stderr)
          local seen = false
          for _, called in ipairs(s:operations_called()) do seen = seen or called == op end
          assert.is_true(seen, op .. " was not called by the cleanup")
          assert_nothing_left(s, snap)
          record("op " .. op, kind, "exit 1, destroy cleans")
        elseif case == "tolerated" then
          -- Extra tools sources are optional: a failure is ignored, an
          -- interrupt still stops the bootstrap.
          inject(s, "op", op, kind)
          local r = s:juju("bootstrap")
          local seen = false
          for _, called in ipairs(s:operations_called()) do seen = seen or called == op end
          assert.is_true(seen, op .. " was not called")
          if kind == "interrupt" then
            assert.are.equal(1, r.code, r.stderr)
            assert.matches("interrupted", r.stderr)
            record("op " .. op, kind, "exit 1, named, clean")
          else
            assert.are.equal(0, r.code, r.stderr)
            assert.are.equal(0, s:juju("destroy-environment", "-y", "dummyenv").code)
            record("op " .. op, kind, "ignored: exit 0")
          end
          assert_nothing_left(s, snap)
        else
          -- juju status reads machine 0's state through it.
          assert.are.equal("fails-status", case)
          assert.are.equal(0, s:juju("bootstrap").code, s.last.stderr)
          inject(s, "op", op, kind)
          local watch = sys.signals({ "INT" })
          local r = s:juju("status")
          local sig = watch:pending()
          watch:close()
          local seen = false
          for _, called in ipairs(s:operations_called()) do seen = seen or called == op end
          assert.is_true(seen, op .. " was not called by juju status")
          if kind == "interrupt" then
            assert.are.equal("INT", sig)
            assert.are.equal(0, r.code, r.stderr)
            record("op " .. op, kind, "status exit 0 (no wait)")
          else
            assert.are.equal(1, r.code, r.stderr)
            local cause = ({ error = "injected failure in " .. op, timeout = "timed out after 10m0s" })[kind]
            assert.is_truthy(r.stderr:find(cause, 1, true), r.stderr)
            record("op " .. op, kind, "status exit 1, named")
          end
          s:clear_faults()
          assert.are.equal(0, s:juju("destroy-environment", "-y", "dummyenv").code)
          assert_nothing_left(s, snap)
        end
        s:close()
      end)
    end
  end

  it("has every cell of the matrix, printed as a table", function()
    local rows = {}
    for _, step in ipairs(testing.step_ids()) do rows[#rows + 1] = "step " .. step end
    for _, op in ipairs(testing.operation_names()) do rows[#rows + 1] = "op " .. op end
    local lines = { string.format("%-32s | %-24s | %-24s | %s", "fault at", "error", "timeout", "interrupt") }
    local missing = {}
    for _, row in ipairs(rows) do
      local out = {}
      for _, kind in ipairs(KINDS) do
        local c = cells[row .. "|" .. kind]
        if not c then missing[#missing + 1] = row .. " / " .. kind end
        out[#out + 1] = c or "MISSING"
      end
      lines[#lines + 1] = string.format("%-32s | %-24s | %-24s | %s", row, out[1], out[2], out[3])
    end
    io.stdout:write("\n" .. table.concat(lines, "\n") .. "\n")
    assert.are.same({}, missing)
  end)
end)
