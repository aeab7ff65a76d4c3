-- Issue 14.6: environment names are not paths. Juju's rule (environs/config:
-- "environment name contains unsafe characters") is applied before any file
-- named after the environment is touched, by every command.
local fs = require("juju.fs")
local h = require("helpers")

-- A test root with its env; with entries (environments.yaml's indented
-- text, default "e" when it defines e), JUJU_HOME gets an environments.yaml.
local function home(entries)
  local root = h.tmpdir()
  local env = h.env(root)
  if entries then
    h.write(env.JUJU_HOME .. "/environments.yaml",
      h.environments_yaml(entries:match("^  e:\n") and "e" or nil, entries))
  end
  return root, env
end
local DUMMY = "  e:\n    type: dummy\n"

describe("environment names that are paths", function()
  after_each(function() h.cleanup(); collectgarbage() end)

  local function setup()
    local root, env = home(DUMMY)
    -- Files a traversal would reach: they must survive and nothing may appear beside them.
    h.write(root .. "/x.jenv", "user's file\n")
    h.write(root .. "/juju/x.jenv", "user's file too\n")
    return root, env
  end

  local function listing(dir)
    local out = {}
    local function walk(d, prefix)
      for _, n in ipairs(assert(fs.list(d))) do
        local p = d .. "/" .. n
        out[#out + 1] = prefix .. n
        if fs.lstat(p).type == "dir" then walk(p, prefix .. n .. "/") end
      end
    end
    walk(dir, "")
    table.sort(out)
    return table.concat(out, "\n")
  end

  for _, case in ipairs({
    { "destroy-environment -y", { "destroy-environment", "-y", "../../x" } },
    { "destroy-environment -y -e", { "destroy-environment", "-y", "-e", "../x" } },
    { "destroy-environment --force", { "destroy-environment", "-y", "--force", "../../x" } },
    { "bootstrap -e", { "bootstrap", "-e", "../../x" } },
    { "status -e", { "status", "-e", "../x" } },
    { "JUJU_ENV", { "status" }, { JUJU_ENV = "..\\x" } },
  }) do
    it(case[1] .. " refuses the name and touches no file", function()
      local root, env = setup()
      for k, v in pairs(case[3] or {}) do env[k] = v end
      local before = listing(root)
      local code, out, err = h.juju(env, case[2])
      assert.are.equal(1, code, err)
      assert.are.equal("", out)
      assert.matches("environment name contains unsafe characters: \"%.%.[/\\]+", err)
      assert.are.equal(before, listing(root))
      assert.are.equal("user's file\n", h.read(root .. "/x.jenv"))
      assert.are.equal("user's file too\n", h.read(root .. "/juju/x.jenv"))
    end)
  end

  -- Issue 14.12: no <env>.bootstrap.lock for names that exist nowhere.
  it("bootstrap of an environment that exists nowhere leaves no lock file", function()
    local root, env = setup()
    local before = listing(root)
    -- The real executable: what an in-process run releases at its end, a
    -- process that exits keeps on disk.
    local r = assert(h.juju_exe_run(env, { "bootstrap", "-e", "nosuch" }, { timeout = 60 }))
    assert.are.equal(1, r.code)
    assert.matches('environment "nosuch" not found in .*environments%.yaml', r.stderr)
    assert.is_nil(r.stderr:find("bootstrap.lock", 1, true))
    assert.is_false(fs.exists(env.JUJU_HOME .. "/environments/nosuch.bootstrap.lock"))
    assert.are.equal(before, (listing(root):gsub("\njuju/environments/env%.lock", ""):gsub("\njuju/environments$", "")))
  end)

  it("a plain name still works", function()
    local _, env = setup()
    local code, _, err = h.juju(env, { "destroy-environment", "-y", "e" })
    assert.are.equal(1, code)
    assert.matches('environment "e" not found', err)
  end)
end)

-- Issue 14.12: a nonexistent JUJU_HOME is reported, not created.
describe("a JUJU_HOME that does not exist", function()
  after_each(function() h.cleanup(); collectgarbage() end)

  for _, args in ipairs({
    { "destroy-environment", "-y", "e" }, { "destroy-environment", "-y", "--force", "e" },
    { "status" }, { "status", "-e", "e" }, { "bootstrap" }, { "bootstrap", "-e", "e" },
    { "switch", "-l" }, { "switch", "e" },
  }) do
    it("is not created by juju " .. table.concat(args, " "), function()
      local _, env = home()
      assert.is_false(fs.exists(env.JUJU_HOME))
      local r = assert(h.juju_exe_run(env, args, { timeout = 60 }))
      assert.is_false(fs.exists(env.JUJU_HOME), r.stderr)
      if args[1] ~= "switch" or args[2] ~= "-l" then
        assert.are.equal(1, r.code, r.stderr)
        assert.matches("^ERROR ", r.stderr)
      end
    end)
  end
end)

-- Issue 14.13: the --log-file this run creates is 0600.
describe("--log-file", function()
  after_each(function() h.cleanup(); collectgarbage() end)

  it("is created 0600; an existing file keeps its owner's mode", function()
    local root, env = home(DUMMY)
    local path = root .. "/new.log"
    local r = assert(h.juju_exe_run(env, { "status", "--debug", "--log-file", path }, { timeout = 60 }))
    assert.are.equal(1, r.code)
    assert.are.equal("0600", string.format("%04o", fs.stat(path).mode))
    assert.matches("running juju", h.read(path))
    local mine = root .. "/mine.log"
    h.write(mine, "kept\n", tonumber("640", 8))
    assert(fs.chmod(mine, tonumber("640", 8)))
    r = assert(h.juju_exe_run(env, { "status", "--log-file", mine }, { timeout = 60 }))
    assert.are.equal(1, r.code)
    assert.are.equal("0640", string.format("%04o", fs.stat(mine).mode))
    assert.matches("^kept\n", h.read(mine))
  end)
end)

-- Issue 14.10: "being bootstrapped by another juju process" only when it is.
describe("the bootstrap lock", function()
  after_each(function() h.cleanup(); collectgarbage() end)

  it("reports a name too long for a file as such, not as another bootstrap", function()
    local long = string.rep("n", 250)
    local _, env = home("  " .. long .. ":\n    type: dummy\n")
    local code, _, err = h.juju(env, { "bootstrap", "-e", long })
    assert.are.equal(1, code)
    assert.matches('cannot take the bootstrap lock of environment "n+": .*[Ff]ile name too long', err)
    assert.is_nil(err:find("being bootstrapped", 1, true))
  end)

  it("still names the holder when another bootstrap holds it", function()
    local _, env = home(DUMMY)
    assert(fs.mkdir_p(env.JUJU_HOME .. "/environments", tonumber("700", 8)))
    local held = assert(fs.lock(env.JUJU_HOME .. "/environments/e.bootstrap.lock",
      { message = "pid: 4242, operation: bootstrap" }))
    local r = assert(h.juju_exe_run(env, { "bootstrap" }, { timeout = 60 }))
    held:release()
    assert.are.equal(1, r.code)
    assert.matches('environment "e" is being bootstrapped by another juju process %(pid: 4242, operation: bootstrap%)', r.stderr)
  end)

  -- Issue 14.4: destroy-environment during a bootstrap used to exit 0 and
  -- leave a "bootstrapped" .jenv for an instance that no longer existed.
  it("keeps destroy-environment out while a bootstrap runs, and bootstrap out while a destroy runs", function()
    local _, env = home(DUMMY)
    local code, _, err = h.juju(env, { "bootstrap" })
    assert.are.equal(0, code, err)
    local jenv = env.JUJU_HOME .. "/environments/e.jenv"
    local before = h.read(jenv)
    local lock_path = env.JUJU_HOME .. "/environments/e.bootstrap.lock"
    local held = assert(fs.lock(lock_path, { message = "pid: 4242, operation: bootstrap" }))
    local r = assert(h.juju_exe_run(env, { "destroy-environment", "-y", "e" }, { timeout = 60 }))
    assert.are.equal(1, r.code)
    assert.matches('environment "e" is being bootstrapped by another juju process %(pid: 4242, operation: bootstrap%)', r.stderr)
    assert.are.equal(before, h.read(jenv))
    held:release()
    held = assert(fs.lock(lock_path, { message = "pid: 4343, operation: destroy-environment" }))
    r = assert(h.juju_exe_run(env, { "bootstrap" }, { timeout = 60 }))
    held:release()
    assert.are.equal(1, r.code)
    assert.matches('environment "e" is being destroyed by another juju process %(pid: 4343', r.stderr)
    assert.are.equal(before, h.read(jenv))
  end)

  -- Issue 14.12: the lock file goes with the environment.
  it("is removed by destroy-environment and by a failed bootstrap that removed the .jenv", function()
    local _, env = home(DUMMY)
    local lock_path = env.JUJU_HOME .. "/environments/e.bootstrap.lock"
    local code, _, err = h.juju(env, { "bootstrap" })
    assert.are.equal(0, code, err)
    assert.is_true(fs.exists(lock_path))
    code, _, err = h.juju(env, { "destroy-environment", "-y", "e" })
    assert.are.equal(0, code, err)
    assert.is_false(fs.exists(env.JUJU_HOME .. "/environments/e.jenv"))
    assert.is_false(fs.exists(lock_path))
    -- A bootstrap that fails after prepare destroys its new .jenv and the lock.
    local _, env2 = home("  e:\n    type: dummy\n    broken: Bootstrap\n")
    code = h.juju(env2, { "bootstrap" })
    assert.are.equal(1, code)
    assert.is_false(fs.exists(env2.JUJU_HOME .. "/environments/e.jenv"))
    assert.is_false(fs.exists(env2.JUJU_HOME .. "/environments/e.bootstrap.lock"))
  end)
end)

-- Issue 14.7: files the user names are read only when regular and bounded:
-- /dev/zero does not grow until memory runs out, a FIFO does not hang.
describe("unbounded reads", function()
  after_each(function() h.cleanup(); collectgarbage() end)

  local function fifo(path)
    local r = assert(require("juju.sys").run({ "mkfifo", path }, { timeout = 10 }))
    assert.are.equal(0, r.code, r.stderr)
  end

  for _, key in ipairs({ "ca-cert-path", "ca-private-key-path", "authorized-keys-path" }) do
    for _, target in ipairs({ "/dev/zero", "FIFO" }) do
      it(key .. " at " .. target .. " is an error naming it", function()
        local root = h.tmpdir()
        local path = target == "FIFO" and root .. "/fifo" or target
        if target == "FIFO" then fifo(path) end
        local _, env = home(DUMMY .. string.format("    %s: %s\n", key, path))
        local r = assert(h.juju_exe_run(env, { "bootstrap" }, { timeout = 60 }))
        assert.are.equal(1, r.code)
        assert.matches("read " .. path:gsub("%p", "%%%0") .. ": not a regular file", r.stderr)
      end)
    end
  end

  it("environments.yaml and a .jenv as FIFOs are errors, not hangs", function()
    local _, env = home()
    assert(fs.mkdir_p(env.JUJU_HOME .. "/environments", tonumber("700", 8)))
    fifo(env.JUJU_HOME .. "/environments.yaml")
    local r = assert(h.juju_exe_run(env, { "status" }, { timeout = 60 }))
    assert.are.equal(1, r.code)
    assert.matches('cannot parse ".*environments%.yaml": read .*: not a regular file', r.stderr)
    assert(fs.remove(env.JUJU_HOME .. "/environments.yaml"))
    h.write(env.JUJU_HOME .. "/environments.yaml", h.environments_yaml("e", DUMMY))
    fifo(env.JUJU_HOME .. "/environments/e.jenv")
    r = assert(h.juju_exe_run(env, { "bootstrap" }, { timeout = 60 }))
    assert.are.equal(1, r.code)
    assert.matches('error reading environment info ".*e%.jenv": read .*: not a regular file', r.stderr)
  end)
end)

-- Issue 14.12: tools build directories follow TMPDIR, and those of a
-- bootstrap killed with SIGKILL are swept by the next one.
describe("temporary tools directories", function()
  after_each(function() h.cleanup(); collectgarbage() end)

  it("live under TMPDIR, and a dead process's are swept", function()
    local sys = require("juju.sys")
    local root, env = home(DUMMY)
    local tmp = root .. "/tmp"
    assert(fs.mkdir_p(tmp, "0700"))
    env.TMPDIR = tmp
    local dead = assert(sys.spawn({ "true" }, {}))
    dead:wait(10)
    local dead_pid = dead:pid()
    dead:close()
    local live = assert(sys.spawn({ "sleep", "60" }, {}))
    finally(function() live:kill("KILL"); live:wait(10); live:close() end)
    for _, n in ipairs({ "juju-tools-" .. dead_pid .. "-AbC123", "juju-tools-" .. live:pid() .. "-XyZ789",
      "juju-tools-notapid", "unrelated" }) do
      assert(fs.mkdir_p(tmp .. "/" .. n .. "/x", "0700"))
    end
    local code, out, err = h.juju(env, { "bootstrap", "--upload-tools" })
    assert.are.equal(0, code, err)
    assert.matches("Building tools to upload", out .. err)
    assert.are.same({ "juju-tools-" .. live:pid() .. "-XyZ789", "juju-tools-notapid", "unrelated" }, fs.list(tmp))
  end)

  it("a bootstrap whose tarball is in the cache makes none (issue 17.4), and still sweeps", function()
    local agenttools = require("juju.agenttools")
    local root, env = home(DUMMY)
    local tmp = root .. "/tmp"
    assert(fs.mkdir_p(tmp, "0700"))
    env.TMPDIR = tmp
    local made = 0
    local orig = agenttools.tmpdir
    agenttools.tmpdir = function(...) made = made + 1; return orig(...) end
    finally(function() agenttools.tmpdir = orig end)
    local code, _, err = h.juju(env, { "bootstrap", "--upload-tools" })
    assert.are.equal(0, code, err)
    assert.are.equal(0, h.juju(env, { "destroy-environment", "-y", "e" }))
    made = 0
    -- a dead process's directory (pid 2^22 + 1 is above any pid_max)
    assert(fs.mkdir_p(tmp .. "/juju-tools-4194305-Dead01/x", "0700"))
    code, _, err = h.juju(env, { "bootstrap", "--upload-tools" })
    assert.are.equal(0, code, err)
    assert.are.equal(0, made)
    assert.are.same({}, fs.list(tmp))
  end)
end)
