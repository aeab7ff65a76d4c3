-- host_leftovers_spec.lua: a juju process leaves nothing outside its
-- temporary places however it ends. libmongoc's counters file
-- (/dev/shm/mongoc-<pid>) used to stay behind whenever a process was
-- killed (every machine agent stopped by destroy-environment), and a later
-- process with the same pid printed "Falling back to malloc for counters".
local fs = require("juju.fs")
local sys = require("juju.sys")
local h = require("helpers")

describe("a killed juju process", function()
  after_each(function() h.cleanup(); collectgarbage() end)

  it("leaves no /dev/shm/mongoc-<pid> file", function()
    local dir = h.tmpdir()
    local script = dir .. "/sleeper.lua"
    h.write(script, 'require("juju.mongo"); io.stdout:write("up\\n"); io.stdout:flush(); require("juju.sys").sleep(60)\n')
    local out = dir .. "/out"
    local p = assert(sys.spawn({ h.juju_exe, "lua", script }, { stdout = out }))
    local deadline = sys.monotonic() + 30
    while (fs.read_file(out) or "") == "" and sys.monotonic() < deadline do sys.sleep(0.05) end
    assert.are.equal("up\n", fs.read_file(out))
    local shm = "/dev/shm/mongoc-" .. p:pid()
    assert.is_false(fs.exists(shm), shm .. " exists while the process runs")
    assert.is_true(p:kill("TERM"))
    p:wait(10)
    p:close()
    assert.is_false(fs.exists(shm))
  end)
end)
