-- tests/helpers.lua: shared helpers for the busted specs.
local fs = require("juju.fs")
local sys = require("juju.sys")
local context = require("juju.context")
local cli = require("juju.cli")
local yaml = require("juju.yaml")
local instance = require("juju.testing.instance")

local M = {}

M.build_dir = os.getenv("JUJU_TEST_BUILD_DIR") or "build"
M.source_dir = os.getenv("JUJU_TEST_SOURCE_DIR") or "."
M.shared_dir = os.getenv("JUJU_TEST_SHARED") or (M.source_dir .. "/../shared")
M.juju_exe = M.build_dir .. "/bin/juju"

--- A fresh temporary directory, removed by M.cleanup().
local made = {}
function M.tmpdir(prefix)
  local d = assert(fs.mkdtemp("/tmp/" .. (prefix or "juju-test-")))
  made[#made + 1] = d
  return d
end

function M.cleanup()
  for _, d in ipairs(made) do fs.remove_tree(d) end
  made = {}
end

function M.write(path, text, mode)
  local dir = path:match("^(.*)/[^/]*$")
  if dir then assert(fs.mkdir_p(dir, tonumber("700", 8))) end
  assert(fs.write_atomic(path, text, mode or tonumber("600", 8)))
end

function M.read(path) return assert(fs.read_file(path)) end

--- An isolated environment table: HOME and JUJU_HOME under a temp dir.
function M.env(home, extra)
  local env = { HOME = home .. "/user", JUJU_HOME = home .. "/juju", PATH = os.getenv("PATH") }
  assert(fs.mkdir_p(env.HOME, tonumber("700", 8)))
  for k, v in pairs(extra or {}) do env[k] = v end
  return env
end

--- A user for the juju executable: M.env(home, extra) with the sanitizer
--- options passed through, JUJU_HOME made, and a fresh ed25519 key in
--- ~/.ssh (the key bootstrap authorizes on machine 0). Raises when
--- ssh-keygen fails.
function M.juju_user_env(home, extra)
  local vars = { ASAN_OPTIONS = os.getenv("ASAN_OPTIONS"), UBSAN_OPTIONS = os.getenv("UBSAN_OPTIONS") }
  for k, v in pairs(extra or {}) do vars[k] = v end
  local env = M.env(home, vars)
  assert(fs.mkdir_p(env.JUJU_HOME, tonumber("700", 8)))
  assert(fs.mkdir_p(env.HOME .. "/.ssh", tonumber("700", 8)))
  local kg = sys.run({ "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", env.HOME .. "/.ssh/id_ed25519" }, {})
  assert(kg and kg.code == 0, "ssh-keygen failed: " .. tostring(kg and kg.stderr))
  return env
end

--- A work directory (M.tmpdir(prefix)) with hosts/ for juju.testing.instance:
--- work, that state directory, and its programs (the launcher and the
--- terminator a fake runs).
function M.test_hosts(prefix)
  local work = M.tmpdir(prefix)
  local state_dir = work .. "/hosts"
  assert(fs.mkdir_p(state_dir, tonumber("700", 8)))
  return work, state_dir, instance.programs(state_dir)
end

--- The teardown of a spec with test hosts: stops the fake s (when it was
--- started), terminates every host left under state_dir, removes the
--- temporary directories.
function M.stop_test_hosts(s, state_dir)
  if s then s:stop() end
  instance.terminate_all(state_dir)
  M.cleanup()
end

--- `juju status` in env (luassert): it succeeds and shows machine 0
--- started, as instance_id when given. Returns its output (stdout then
--- stderr).
function M.assert_machine0_started(env, instance_id)
  local luassert = require("luassert") -- here: not every user of this file runs under busted
  local code, out, err = M.juju(env, { "status" })
  luassert.are.equal(0, code, err)
  local doc = assert(yaml.decode(out))
  luassert.are.equal("started", doc.machines["0"]["agent-state"])
  if instance_id ~= nil then luassert.are.equal(instance_id, doc.machines["0"]["instance-id"]) end
  return out .. err
end

--- Writes env's $JUJU_HOME/environments.yaml: the one environment name
--- (the default) with the attributes attrs.
function M.write_environments(env, name, attrs)
  M.write(env.JUJU_HOME .. "/environments.yaml",
    assert(yaml.encode { default = name, environments = { [name] = attrs } }))
end

--- Runs `juju args...` in-process; returns code, stdout, stderr.
function M.juju(env, args, stdin_text)
  local out, err = {}, {}
  local stdin = nil
  if stdin_text then
    local path = os.tmpname()
    local f = assert(io.open(path, "w")); f:write(stdin_text); f:close()
    stdin = assert(io.open(path, "r"))
    os.remove(path)
  end
  local ctx = context.new {
    env = env,
    stdout = function(s) out[#out + 1] = s end,
    stderr = function(s) err[#err + 1] = s end,
    stdin = stdin,
  }
  local code = cli.run(ctx, args)
  if stdin then stdin:close() end
  return code, table.concat(out), table.concat(err)
end

--- Runs the built juju executable (a separate process); returns result of sys.run.
function M.juju_exe_run(env, args, opts)
  local argv = { M.juju_exe }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  opts = opts or {}
  opts.env = env
  return sys.run(argv, opts)
end

--- A minimal environments.yaml with the given entries text (already indented).
function M.environments_yaml(default, entries)
  return (default and ("default: " .. default .. "\n") or "") .. "environments:\n" .. entries
end

return M
