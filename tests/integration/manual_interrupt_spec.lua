-- manual_interrupt_spec.lua (#integration): Ctrl-C (and a closed terminal:
-- SIGHUP) during the SSH wait of
-- a real `juju bootstrap` (the built executable, a separate process) of a
-- manual environment whose bootstrap-host accepts TCP and never speaks
-- (juju.testing.sshd's silent server). Before the core was one shared
-- library, SIGINT went unnoticed there until bootstrap-timeout. The fault
-- matrix case with a real signal: exit 1 at once, the error says
-- interrupted, no .jenv left behind.
local sshd = require("juju.testing.sshd")
local fs = require("juju.fs")
local sys = require("juju.sys")
local h = require("helpers")

local BOOTSTRAP_TIMEOUT = 120
-- "Promptly": the bootstrap notices the signal within the core's cancel
-- slice; this bound leaves room for the cleanup and a loaded machine, and
-- is far below both the bootstrap timeout and one SSH connect timeout.
local EXIT_BOUND = 5

local function environments(silent)
  return h.environments_yaml("man", table.concat({
    "  man:",
    "    type: manual",
    "    bootstrap-host: " .. silent.host .. ":" .. silent.port,
    "    bootstrap-user: root",
    "    state-store: sqlite",
    "    enable-os-refresh-update: false",
    "    enable-os-upgrade: false",
    "    enable-package-install: false",
    "    bootstrap-timeout: " .. BOOTSTRAP_TIMEOUT,
    "    bootstrap-retry-delay: 1",
    "",
  }, "\n"))
end

-- Waits (real time: the child is a real process) until path contains text.
local function wait_for_text(path, text, proc, timeout)
  local deadline = sys.monotonic() + timeout
  while sys.monotonic() < deadline do
    local s = fs.read_file(path) or ""
    if s:find(text, 1, true) then return true end
    if proc:wait(0) then return false, "juju exited before printing " .. text .. ":\n" .. s end
    sys.sleep(0.05)
  end
  return false, "no " .. text .. " within " .. timeout .. " s:\n" .. (fs.read_file(path) or "")
end

-- SIGHUP (the terminal closed) cleans up as SIGINT and SIGTERM do (14.8).
for _, sig in ipairs({ "INT", "HUP" }) do
describe("SIG" .. sig .. " during the SSH wait of a manual bootstrap #integration", function()
  after_each(function() h.cleanup(); collectgarbage() end)

  it("exits 1 at once, says interrupted and leaves no .jenv", function()
    local silent = assert(sshd.silent_server(nil, 3 * BOOTSTRAP_TIMEOUT))
    finally(function() silent.stop() end)
    local root = h.tmpdir("juju-interrupt-")
    local env = h.env(root, { ASAN_OPTIONS = os.getenv("ASAN_OPTIONS") })
    h.write(env.JUJU_HOME .. "/environments.yaml", environments(silent))
    local out, err = root .. "/stdout", root .. "/stderr"
    local proc = assert(sys.spawn({ h.juju_exe, "bootstrap" },
      { env = env, stdin = "null", stdout = out, stderr = err }))
    finally(function() proc:close() end)

    assert(wait_for_text(err, "Attempting to connect to " .. silent.host, proc, 60))
    -- Into the wait: the connect attempt is in progress when the signal comes.
    sys.sleep(1)
    assert.is_falsy(proc:wait(0), "juju exited before the signal")
    assert(proc:kill(sig))
    local sent = sys.monotonic()
    local code, signal = proc:wait(BOOTSTRAP_TIMEOUT)
    local took = sys.monotonic() - sent
    local stderr = fs.read_file(err) or ""

    assert.are.equal(1, code, "exit " .. tostring(code) .. " " .. tostring(signal) .. "\n" .. stderr)
    assert.is_nil(signal)
    assert.is_true(took < EXIT_BOUND, string.format("exited %.2f s after SIG%s:\n%s", took, sig, stderr))
    assert.matches("ERROR [^\n]*interrupted", stderr)
    assert.is_false(fs.exists(env.JUJU_HOME .. "/environments/man.jenv"), "the .jenv was left behind")
  end)
end)
end

-- Issue 14.8: `juju bootstrap | head -1` used to kill the bootstrap with
-- SIGPIPE, with no cleanup. A closed stdout now only stops the printing.
describe("a closed stdout and stderr #integration", function()
  after_each(function() h.cleanup(); collectgarbage() end)

  it("stops the printing, not the bootstrap", function()
    local root = h.tmpdir("juju-sigpipe-")
    local env = h.env(root, { ASAN_OPTIONS = os.getenv("ASAN_OPTIONS") })
    h.write(env.JUJU_HOME .. "/environments.yaml", h.environments_yaml("d", "  d:\n    type: dummy\n"))
    local log = root .. "/bootstrap.log"
    local script = 'set +e; "$0" --debug bootstrap --log-file "$1" 2>&1 | head -c 1 > /dev/null; echo "juju=${PIPESTATUS[0]}"'
    local r = assert(sys.run({ "/bin/bash", "-c", script, h.juju_exe, log }, { env = env, timeout = 120 }))
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal("juju=0\n", r.stdout, r.stderr)
    assert.is_true(fs.exists(env.JUJU_HOME .. "/environments/d.jenv"))
    -- The log file still has the whole run.
    assert.matches("bootstrap took", fs.read_file(log))
  end)
end)
