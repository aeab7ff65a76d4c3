-- juju.testing.server: the launcher every cloud emulator spec uses.
local server = require("juju.testing.server")
local fs = require("juju.fs")
local http = require("juju.http")
local proc = require("juju.proc")

describe("juju.testing.server", function()
  teardown(server.stop_all)

  it("starts a server on the asked loopback address, serves, and stops it", function()
    local s = assert(server.start {
      name = "py http", host = "127.0.0.7",
      argv = { "python3", "-m", "http.server", "--bind", "{host}", "{port}" },
    })
    assert.are.equal("127.0.0.7", s.host)
    assert.are.equal("http://127.0.0.7:" .. s.port, s.url)
    local r = assert(http.get(s.url .. "/", { retries = 0 }))
    assert.are.equal(200, r.status)
    assert.is_true(proc.alive(s.pid))
    assert.is_true(s:stop())
    assert.is_false(proc.alive(s.pid))
    assert.is_false(fs.exists(s.dir))
    assert.is_true(s:stop()) -- twice is fine
  end)

  it("substitutes {dir} and gives the server a private 0700 directory", function()
    local s = assert(server.start {
      argv = { "python3", "-m", "http.server", "--bind", "{host}", "--directory", "{dir}", "{port}" },
    })
    assert.are.equal("0700", string.format("%04o", fs.stat(s.dir).mode & 511))
    assert(fs.write_atomic(s.dir .. "/probe.txt", "hello", 420))
    assert.are.equal("hello", assert(http.get(s.url .. "/probe.txt", { retries = 0 })).body)
    s:stop()
  end)

  it("fails, naming the program and install-deps, when the program is missing", function()
    local s, msg, code = server.start { name = "emu", argv = { "no-such-emulator-xyz" } }
    assert.is_nil(s)
    assert.are.equal("ENOENT", code)
    assert.matches('emu: program "no%-such%-emulator%-xyz" not found; run scripts/install%-deps%.sh', msg)
  end)

  it("fails with the server's log when it exits before accepting connections", function()
    local s, msg, code = server.start {
      name = "dies",
      argv = { "sh", "-c", "echo boom-from-server; exit 3" },
    }
    assert.is_nil(s)
    assert.are.equal("TIMEOUT", code)
    assert.matches("^dies exited before accepting connections; its log:", msg)
    assert.matches("boom%-from%-server", msg)
  end)

  it("times out, naming host, port and limit, when the port never opens", function()
    local s, msg, code = server.start { name = "mute", ready_timeout = 0.3, argv = { "sleep", "30" } }
    assert.is_nil(s)
    assert.are.equal("TIMEOUT", code)
    assert.matches("^mute did not accept connections on 127%.0%.0%.1:%d+ within 0%.3s", msg)
  end)
end)
