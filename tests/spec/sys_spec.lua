-- sys_spec.lua: the juju.sys binding (host identity, clocks, signals and
-- child processes without a shell).
local sys = require("juju.sys")
local fs = require("juju.fs")

describe("juju.sys", function()
  after_each(function()
    collectgarbage()
    collectgarbage()
  end)

  describe("identity", function()
    it("reports process ids", function()
      assert.is_true(math.type(sys.getpid()) == "integer" and sys.getpid() > 1)
      assert.is_true(sys.getppid() >= 0)
      assert.are.equal(sys.getuid(), fs.stat("/proc/self").uid)
      assert.is_true(math.type(sys.geteuid()) == "integer")
    end)

    it("reports user, home and host names", function()
      local user = sys.username()
      assert.is_string(user)
      assert.is_true(#user > 0)
      assert.are.equal("/", sys.home_dir():sub(1, 1))
      assert.are.equal(sys.uname().nodename, sys.hostname())
    end)

    it("uname has the five fields", function()
      local u = sys.uname()
      for _, k in ipairs({ "sysname", "nodename", "release", "version", "machine" }) do
        assert.is_string(u[k])
      end
      assert.are.equal("Linux", u.sysname)
    end)
  end)

  describe("arch", function()
    it("maps uname machines to Juju names", function()
      local cases = {
        x86_64 = "amd64", amd64 = "amd64", i386 = "i386", i486 = "i386", i586 = "i386",
        i686 = "i386", aarch64 = "arm64", arm64 = "arm64", armv7l = "armhf", armv6l = "armhf",
        armhf = "armhf", ppc64le = "ppc64el", ppc64el = "ppc64el", s390x = "s390x",
      }
      for machine, want in pairs(cases) do
        assert.are.equal(want, sys.arch(machine))
      end
    end)

    it("defaults to this machine and rejects unknown ones", function()
      assert.are.equal(sys.arch(sys.uname().machine), sys.arch())
      local v, msg, code = sys.arch("mips")
      assert.is_nil(v)
      assert.are.equal("UNSUPPORTED", code)
      assert.truthy(msg:find("mips", 1, true))
      assert.has_error(function() sys.arch({}) end)
    end)
  end)

  describe("os_release", function()
    it("parses quotes and escapes", function()
      local dir = assert(fs.mkdtemp("/tmp/juju-sys-spec-"))
      local path = dir .. "/os-release"
      assert(fs.write_atomic(path, table.concat({
        "# comment",
        'NAME="Ubuntu"',
        "VERSION='14.04.5 LTS, Trusty Tahr'",
        "ID=ubuntu",
        [[PRETTY_NAME="a \"quoted\" \$word \\ here"]],
        [[PLAIN=foo\ bar]],
        "garbage line",
        "",
      }, "\n")))
      local r = sys.os_release(path)
      assert(fs.remove_tree(dir))
      assert.are.same({
        NAME = "Ubuntu",
        VERSION = "14.04.5 LTS, Trusty Tahr",
        ID = "ubuntu",
        PRETTY_NAME = 'a "quoted" $word \\ here',
        PLAIN = "foo bar",
      }, r)
    end)

    it("parse_os_release parses text from elsewhere", function()
      assert.are.same({ ID = "ubuntu", VERSION_ID = "14.04", NAME = "it's" },
        sys.parse_os_release('ID=ubuntu\r\nVERSION_ID="14.04"\nNAME=it\\\'s\n#x=1\n'))
      assert.are.same({}, sys.parse_os_release(""))
      assert.has_error(function() sys.parse_os_release() end)
    end)

    it("reads the host's file by default and reports a missing one", function()
      assert.is_string(sys.os_release().ID)
      local v, _, code = sys.os_release("/nonexistent/os-release")
      assert.is_nil(v)
      assert.are.equal("ENOENT", code)
    end)
  end)

  describe("environment", function()
    it("gets, sets and unsets variables", function()
      assert.is_true(sys.setenv("JUJU_SPEC_VAR", "v1"))
      assert.are.equal("v1", sys.getenv("JUJU_SPEC_VAR"))
      assert.are.equal("v1", sys.environ().JUJU_SPEC_VAR)
      assert.is_true(sys.setenv("JUJU_SPEC_VAR", nil))
      assert.is_nil(sys.getenv("JUJU_SPEC_VAR"))
      assert.is_nil(sys.environ().JUJU_SPEC_VAR)
      assert.are.equal(os.getenv("PATH"), sys.environ().PATH)
    end)

    it("raises on bad names", function()
      assert.has_error(function() sys.setenv("A=B", "x") end)
      assert.has_error(function() sys.setenv("", "x") end)
      assert.has_error(function() sys.setenv("X", {}) end)
      assert.has_error(function() sys.getenv() end)
    end)
  end)

  describe("clocks", function()
    it("time is wall clock, monotonic advances across sleep", function()
      assert.is_true(math.abs(sys.time() - os.time()) < 5)
      local t0 = sys.monotonic()
      assert.is_true(sys.sleep(0.05))
      local dt = sys.monotonic() - t0
      assert.is_true(dt >= 0.049 and dt < 5)
      assert.has_error(function() sys.sleep(-1) end)
      assert.has_error(function() sys.sleep("x") end)
    end)

    it("isatty answers for a descriptor", function()
      assert.is_boolean(sys.isatty(0))
      assert.is_false(sys.isatty(999))
      assert.has_error(function() sys.isatty("x") end)
    end)
  end)

  describe("signals", function()
    it("records arrivals instead of dying, and clears them", function()
      local w = assert(sys.signals({ "USR1", "SIGUSR2" }))
      assert.is_nil(w:pending())
      assert.is_true(sys.raise("USR2"))
      assert.is_true(sys.kill(sys.getpid(), "USR1"))
      assert.are.equal("USR1", w:pending())
      assert.are.equal("USR2", w:pending())
      assert.is_nil(w:pending())
      assert.is_true(w:close())
      assert.is_true(w:close())
    end)

    it("lets sleep return INTERRUPTED when a watched signal arrives", function()
      local w <close> = assert(sys.signals({ "USR1" }))
      local killer <close> = assert(sys.spawn({ "sh", "-c", "sleep 0.1; kill -USR1 " .. sys.getpid() }))
      local t0 = sys.monotonic()
      local ok, why = sys.sleep(10)
      assert.is_false(ok)
      assert.are.equal("INTERRUPTED", why)
      assert.is_true(sys.monotonic() - t0 < 5)
      assert.are.equal("USR1", w:pending())
      assert.are.equal(0, killer:wait(5))
    end)

    it("rejects use of a closed watch", function()
      local w = assert(sys.signals({ "HUP" }))
      w:close()
      assert.has_error(function() w:pending() end, "attempt to use a closed signal watch")
      assert.truthy(tostring(w):find("closed", 1, true))
    end)

    it("restores the previous disposition at the end of a <close> scope", function()
      -- in a child juju process: TERM is recorded while watched, and kills
      -- the process again once the watch is closed
      local dir = assert(fs.mkdtemp("/tmp/juju-sys-spec-"))
      local script = dir .. "/watch.lua"
      assert(fs.write_atomic(script, [[
        local sys = require("juju.sys")
        do
          local w <close> = assert(sys.signals({ "TERM" }))
          assert(sys.raise("TERM"))
          io.stdout:write(tostring(w:pending()), "\n")
        end
        io.stdout:flush()
        sys.raise("TERM")
        io.stdout:write("survived\n")
      ]]))
      local exe = assert(fs.readlink("/proc/self/exe"))
      local r = assert(sys.run({ exe, "lua", script }))
      assert(fs.remove_tree(dir))
      assert.are.equal("TERM\n", r.stdout)
      assert.are.equal("TERM", r.signal)
    end)

    it("raises on misuse", function()
      assert.has_error(function() sys.signals() end)
      assert.has_error(function() sys.signals({}) end)
      assert.has_error(function() sys.signals({ "NOPE" }) end)
      assert.has_error(function() sys.signals({ "KILL" }) end)
      assert.has_error(function() sys.kill("x") end)
      assert.has_error(function() sys.kill(1, "NOPE") end)
      assert.has_error(function() sys.raise() end)
    end)

    it("kill reports a missing process", function()
      local p = assert(sys.spawn({ "true" }))
      local pid = p:pid()
      assert.are.equal(0, p:wait())
      p:close()
      local ok, _, code = sys.kill(pid, 0)
      assert.is_nil(ok)
      assert.are.equal("ENOENT", code)
    end)
  end)

  describe("run", function()
    it("collects exit code, stdout and stderr", function()
      local r = assert(sys.run({ "sh", "-c", "echo out; echo err >&2; exit 3" }))
      assert.are.same({ code = 3, stdout = "out\n", stderr = "err\n" }, r)
    end)

    it("never involves a shell", function()
      local r = assert(sys.run({ "printf", "%s", "$(id); `id` 'x' \"y\"" }))
      assert.are.equal("$(id); `id` 'x' \"y\"", r.stdout)
    end)

    it("reports the terminating signal", function()
      local r = assert(sys.run({ "sh", "-c", "kill -TERM $$" }))
      assert.are.equal("TERM", r.signal)
      assert.are.equal(143, r.code)
    end)

    it("feeds stdin and handles output larger than a pipe", function()
      local data = string.rep("juju!", 200000)
      local r = assert(sys.run({ "sh", "-c", "tee /dev/stderr" }, { stdin = data }))
      assert.are.equal(0, r.code)
      assert.are.equal(#data, #r.stdout)
      assert.is_true(r.stdout == data)
      assert.is_true(r.stderr == data)
    end)

    it("applies env, cwd, and output destinations", function()
      local r = assert(sys.run({ "env" }, { env = { FOO = "bar" } }))
      assert.are.equal("FOO=bar\n", r.stdout)
      r = assert(sys.run({ "pwd" }, { cwd = "/tmp" }))
      assert.are.equal("/tmp\n", r.stdout)
      local dir = assert(fs.mkdtemp("/tmp/juju-sys-spec-"))
      local log = dir .. "/out.log"
      for _ = 1, 2 do
        r = assert(sys.run({ "sh", "-c", "echo line; echo noise >&2" },
          { stdout = log, stderr = "null" }))
        assert.are.equal("", r.stdout)
        assert.are.equal("", r.stderr)
      end
      assert.are.equal("line\nline\n", fs.read_file(log))
      assert.are.equal(tonumber("600", 8), fs.stat(log).mode)
      assert(fs.remove_tree(dir))
    end)

    it("reports spawn failures as nil, msg, code", function()
      local v, msg, code = sys.run({ "juju-no-such-program-xyz" })
      assert.is_nil(v)
      assert.are.equal("ENOENT", code)
      assert.truthy(msg:find("juju-no-such-program-xyz", 1, true))
      v, msg, code = sys.run({ "pwd" }, { cwd = "/nonexistent-dir" })
      assert.is_nil(v)
      assert.are.equal("ENOENT", code)
      assert.truthy(msg:find("chdir", 1, true))
    end)

    it("kills the child when the timeout runs out", function()
      local t0 = sys.monotonic()
      local v, msg, code = sys.run({ "sleep", "30" }, { timeout = 0.2 })
      assert.is_nil(v)
      assert.are.equal("TIMEOUT", code)
      assert.truthy(msg:find("sleep", 1, true))
      assert.is_true(sys.monotonic() - t0 < 5)
    end)

    it("raises on misuse", function()
      assert.has_error(function() sys.run() end)
      assert.has_error(function() sys.run("echo hi") end)
      assert.has_error(function() sys.run({}) end)
      assert.has_error(function() sys.run({ "echo", 1 }) end)
      assert.has_error(function() sys.run({ "echo" }, { bogus = 1 }) end)
      assert.has_error(function() sys.run({ "echo" }, { env = "x" }) end)
      assert.has_error(function() sys.run({ "echo" }, { env = { ["A=B"] = "x" } }) end)
      assert.has_error(function() sys.run({ "echo" }, { stdout = 1 }) end)
      assert.has_error(function() sys.run({ "echo" }, { timeout = -1 }) end)
      assert.has_error(function() sys.spawn({ "echo" }, { timeout = 1 }) end)
    end)
  end)

  describe("spawn", function()
    it("waits with a timeout, kills, and reports the signal", function()
      local p = assert(sys.spawn({ "sleep", "30" }))
      assert.is_true(p:pid() > 0)
      local v, _, code = p:wait(0.1)
      assert.is_nil(v)
      assert.are.equal("TIMEOUT", code)
      assert.is_true(p:kill())
      local status, sig = p:wait()
      assert.are.equal(143, status)
      assert.are.equal("TERM", sig)
      assert.is_true(p:kill()) -- already reaped: nothing to do
      p:close()
    end)

    it("read_all collects both streams, then wait gives the code", function()
      local p <close> = assert(sys.spawn({ "sh", "-c", "cat; echo e >&2; exit 5" }, { stdin = "in" }))
      local out, err = p:read_all()
      assert.are.equal("in", out)
      assert.are.equal("e\n", err)
      local status, sig = p:wait(10)
      assert.are.equal(5, status)
      assert.is_nil(sig)
    end)

    it("close kills and reaps a running child", function()
      local p = assert(sys.spawn({ "sleep", "30" }))
      local pid = p:pid()
      assert.is_true(p:close())
      assert.is_true(p:close())
      local ok, _, code = sys.kill(pid, 0)
      assert.is_nil(ok)
      assert.are.equal("ENOENT", code)
    end)

    it("is closed at the end of a <close> scope", function()
      local pid
      do
        local p <close> = assert(sys.spawn({ "sleep", "30" }, { stdout = "null" }))
        pid = p:pid()
      end
      assert.is_nil(sys.kill(pid, 0))
    end)

    it("rejects use of a closed process", function()
      local p = assert(sys.spawn({ "true" }))
      p:close()
      assert.has_error(function() p:pid() end, "attempt to use a closed process")
      assert.has_error(function() p:wait() end)
      assert.has_error(function() p:read_all() end)
      assert.has_error(function() p:kill() end)
      assert.truthy(tostring(p):find("closed", 1, true))
    end)

    it("raises on bad method arguments", function()
      local p <close> = assert(sys.spawn({ "true" }))
      assert.has_error(function() p:wait(-1) end)
      assert.has_error(function() p:wait("x") end)
      assert.has_error(function() p:kill("NOPE") end)
    end)
  end)
end)
