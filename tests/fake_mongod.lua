-- tests/fake_mongod.lua: what the specs read back from
-- tests/integration/fake-mongod's request record (MOCKUPDB_RECORD, one JSON
-- line per request), shared by the specs that bootstrap with the mongodb
-- store on a host.
local json = require("juju.json")
local luassert = require("luassert")

local M = {}

--- The summaries of the recorded requests, one a line, in their order.
function M.summaries(record)
  local commands = {}
  for line in io.lines(record) do
    local r = assert(json.decode(line))
    commands[#commands + 1] = r.summary or ""
  end
  return table.concat(commands, "\n")
end

--- Asserts that the record holds the bootstrap's state server setup: the
--- replica set initiated, the admin and machine-0 users created.
function M.assert_bootstrapped(record)
  local text = M.summaries(record)
  luassert.matches("replSetInitiate", text)
  luassert.matches("createUser admin", text)
  luassert.matches("createUser machine%-0", text)
end

return M
