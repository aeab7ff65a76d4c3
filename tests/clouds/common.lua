-- tests/clouds/common.lua: what the emulated clouds (tests/clouds/ec2.lua,
-- tests/clouds/openstack.lua) do the same way around their test hosts and
-- their leftovers, whatever the emulator's own API.
local json = require("juju.json")
local fs = require("juju.fs")

local M = {}

--- "KIND NAME" for every NAME of each {KIND, {NAME, ...}} in groups, sorted
--- (the leftovers' form).
function M.labelled(groups)
  local out = {}
  for _, g in ipairs(groups) do
    for _, name in ipairs(g[2]) do out[#out + 1] = g[1] .. " " .. name end
  end
  table.sort(out)
  return out
end

--- Host records of running test hosts under state_dir (for "the host is
--- gone" checks).
function M.host_records(state_dir)
  local out = {}
  for _, f in ipairs(fs.list(state_dir) or {}) do
    if f:match("%.json$") then out[#out + 1] = f end
  end
  return out
end

--- The machines of cloud for ids (its instances still alive): {id=,
--- user_data= (cloud:user_data(id)), pid= (a process in the test host's
--- mount namespace, from its host record, or nil)}.
function M.machines(cloud, ids)
  local out = {}
  for _, id in ipairs(ids) do
    local text = fs.read_file(cloud.state_dir .. "/" .. id .. ".json")
    local rec = text and json.decode(text)
    out[#out + 1] = { id = id, user_data = cloud:user_data(id), pid = rec and rec.sshd_pid }
  end
  return out
end

return M
