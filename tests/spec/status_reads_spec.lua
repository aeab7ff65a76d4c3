-- status_reads_spec.lua: `juju status` over a large environment (issue 17
-- item 1) reads each collection once and prints exactly what the former
-- per-machine reads printed. The oracle below is that former code path
-- (five store lookups a machine, through the store's own get), kept here
-- so any change in what status shows, in key order or in formatting fails.
local state = require("juju.state")
local initialize = require("juju.state.initialize")
local status = require("juju.environs.status")
local statusformat = require("juju.statusformat")
local yaml = require("juju.yaml")
local json = require("juju.json")
local helpers = require("helpers")

local UUID = "3f0c9e2a-6b1d-4c7e-8a5f-2d9b0e1c7a64"
local NOW = 1446000000
local N = 600

-- Machines in every shape status distinguishes: with and without instance
-- data, hardware fields present, absent or null, heartbeats fresh, stale,
-- stopped, timeless or missing, addresses as documents or bare strings.
local function populate(st)
  assert(st.db:exec("BEGIN"))
  for i = 0, N - 1 do
    local id = tostring(i)
    local m = { _id = UUID .. ":" .. id, machineid = id, series = i % 3 == 0 and "trusty" or "precise" }
    if i % 7 ~= 3 then
      m.addresses = json.array({ i % 5 == 0 and ("10.1." .. (i // 250) .. "." .. (i % 250))
        or { value = "10.0." .. (i // 250) .. "." .. (i % 250 + 1), type = "ipv4" } })
    end
    if i % 11 == 4 then m.series = nil end
    assert(st:insert("machines", m))
    if i % 9 ~= 5 then
      local idata = { _id = UUID .. ":" .. id, instanceid = "i-" .. id, arch = "amd64", cpucores = i % 4 + 1,
        mem = 1024 * (i % 8 + 1), rootdisk = 8192 }
      if i % 6 == 1 then idata.cpupower = 100 + i end
      if i % 10 == 2 then idata.mem = json.null end
      if i % 13 == 6 then idata.arch = nil end
      assert(st:insert("instanceData", idata))
    end
    if i % 8 ~= 7 then
      local beat = { _id = UUID .. ":m#" .. id, time = NOW - (i % 50), interval = i % 4 == 0 and 1 or 10,
        pid = 1000 + i, agent_version = i % 17 == 0 and "devel" or "1.25." .. (i % 3) .. "-trusty-amd64" }
      if i % 19 == 8 then beat.stopped = true end
      if i % 23 == 9 then beat.time = "yesterday" end
      assert(st:insert("presence", beat))
    end
  end
  assert(st.db:exec("COMMIT"))
end

-- The former loop of juju.environs.status.collect: per machine, its
-- instance data and heartbeat, then initialize.machine_status's three reads.
local function per_document_machines(st, uuid, now)
  local machines = {}
  for _, m in ipairs(st:find("machines") or {}) do
    local id = m.machineid
    local idata = st:get("instanceData", uuid .. ":" .. id) or {}
    local beat = st:get("presence", uuid .. ":m#" .. id)
    local interval = beat and tonumber(beat.interval) or 10
    local s = initialize.machine_status(st, uuid, id, now, math.max(3 * interval, 3))
    local addrs = m.addresses or {}
    local hw = {}
    for _, k in ipairs({ "arch", "cpucores", "cpupower", "mem", "rootdisk" }) do
      local v = idata[k]
      if v ~= nil and v ~= yaml.null then
        local key = ({ cpucores = "cpu-cores", cpupower = "cpu-power", rootdisk = "root-disk" })[k] or k
        hw[#hw + 1] = string.format("%s=%s%s", key, tostring(v), (k == "mem" or k == "rootdisk") and "M" or "")
      end
    end
    local entry = {
      ["agent-state"] = s.agent_state,
      ["agent-version"] = s.agent_version and (s.agent_version:match("^([^-]+)") or s.agent_version),
      ["dns-name"] = addrs[1] and (addrs[1].value or addrs[1]) or nil,
      ["instance-id"] = idata.instanceid,
      series = m.series,
      hardware = #hw > 0 and table.concat(hw, " ") or nil,
    }
    machines[id] = yaml.ordered(entry, { "agent-state", "agent-version", "dns-name", "instance-id", "series", "hardware" })
  end
  return machines
end

local function document(machines)
  return statusformat.normalize({ environment = "big", machines = machines, services = {} }, "manual")
end

-- A store that counts the calls made on it.
local function counting(st)
  local calls = { find = 0, get = 0 }
  return setmetatable({}, { __index = function(_, name)
    local f = st[name]
    if type(f) ~= "function" then return f end
    return function(_, ...)
      calls[name] = (calls[name] or 0) + 1
      return f(st, ...)
    end
  end }), calls
end

describe("juju status over a large environment", function()
  local dir, st
  before_each(function()
    dir = helpers.tmpdir("status-reads")
    st = assert(state.open("sqlite", { path = dir .. "/state.db" }))
    populate(st)
  end)
  after_each(function()
    st:close()
    helpers.cleanup()
    collectgarbage()
  end)

  it("prints what the per-document reads printed, in every format", function()
    local old = document(per_document_machines(st, UUID, NOW))
    local new = document(assert(status.machines(st, UUID, NOW)))
    for _, fmt in ipairs({ "yaml", "json", "tabular", "summary" }) do
      local want, got = statusformat.format(old, fmt), statusformat.format(new, fmt)
      assert.are.equal(#want, #got, fmt .. " length")
      assert.are.equal(want, got, fmt)
    end
    -- The environment really has every shape in it.
    local text = statusformat.format(new, "yaml")
    for _, needle in ipairs({ "agent%-state: started", "agent%-state: down", "agent%-state: pending",
      "agent%-version: devel", "cpu%-power=", "hardware: cpu%-cores", "dns%-name: 10%.1%." }) do
      assert.is_truthy(text:find(needle), needle)
    end
    assert.are.equal(N, select(2, text:gsub("\n  \"%d+\":\n", "")))
  end)

  it("keeps the machines in yaml's key order and each machine's keys in 1.25's order", function()
    local text = statusformat.format(document(assert(status.machines(st, UUID, NOW))), "yaml")
    local ids = {}
    for id in text:gmatch("\n  \"(%d+)\":\n") do ids[#ids + 1] = id end
    assert.are.equal(N, #ids)
    local sorted = { table.unpack(ids) }
    table.sort(sorted) -- byte order, as the encoder sorts string keys
    assert.are.same(sorted, ids)
    assert.are.equal([[
  "1":
    agent-state: started
    agent-version: 1.25.1
    dns-name: 10.0.0.2
    instance-id: i-1
    series: precise
    hardware: arch=amd64 cpu-cores=2 cpu-power=101 mem=2048M root-disk=8192M
]], text:match("\n(  \"1\":\n.-\n)  \""))
  end)

  it("reads each collection once, whatever the number of machines", function()
    local counted, calls = counting(st)
    local machines = assert(status.machines(counted, UUID, NOW))
    assert.are.equal(3, calls.find)
    assert.are.equal(0, calls.get)
    assert.is_table(machines["599"])
  end)

  it("reports a collection it cannot read instead of printing no machines", function()
    local broken = setmetatable({}, { __index = st })
    function broken.find(_, coll)
      if coll == "presence" then return nil, "disk I/O error", "SQLITE" end
      return st:find(coll)
    end
    local machines, err = status.machines(broken, UUID, NOW)
    assert.is_nil(machines)
    assert.are.equal("cannot read presence: disk I/O error", err)
  end)
end)
