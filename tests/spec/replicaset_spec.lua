-- replicaset_spec.lua: juju.replicaset's pure parts: the peergrouper's
-- plan (odd number of voters, votes only for ready members, the primary
-- kept), state-server-member-status and ensure-availability's -n check.
-- The wire conversations are tests/integration/replicaset_spec.lua.
local replicaset = require("juju.replicaset")

local function machine(id, wants)
  return { id = id, address = string.format("10.0.0.%d:37017", tonumber(id) + 1), wants_vote = wants ~= false }
end

local function member(id, machine_id, votes)
  return {
    _id = id, host = string.format("10.0.0.%d:37017", tonumber(machine_id) + 1), priority = votes > 0 and 1.0 or 0.0,
    tags = { ["juju-machine-id"] = machine_id }, votes = votes,
  }
end

local function status(states)
  local members = {}
  for id, state in pairs(states) do
    members[#members + 1] = { id = id, healthy = state ~= 8, state = state, state_name = replicaset.STATES[state] }
  end
  return { name = "juju", members = members }
end

local function votes_of(plan)
  local out = {}
  for _, m in ipairs(plan.members) do out[m.tags["juju-machine-id"]] = m.votes end
  return out
end

describe("juju.replicaset", function()
  describe("state-server-member-status", function()
    it("is Juju's vocabulary for has/wants vote", function()
      assert.are.equal("has-vote", replicaset.member_status(true, true))
      assert.are.equal("removing-vote", replicaset.member_status(true, false))
      assert.are.equal("adding-vote", replicaset.member_status(false, true))
      assert.are.equal("no-vote", replicaset.member_status(false, false))
      assert.are.equal("adding-vote", replicaset.member_status({ _id = 2, host = "h", votes = 0 }, true))
      assert.are.equal("removing-vote", replicaset.member_status({ _id = 2, host = "h", votes = 1 }, false))
      assert.are.equal("has-vote", replicaset.member_status({ _id = 2, host = "h" }, true))
      assert.are.equal("adding-vote", replicaset.member_status(nil, true))
    end)
  end)

  describe("ensure-availability -n", function()
    it("refuses an even or negative count with 1.25's message", function()
      for _, n in ipairs({ 2, 4, -1, -3 }) do
        local ok, msg = replicaset.check_state_server_count(n)
        assert.is_nil(ok)
        assert.are.equal("must specify a number of state servers odd and non-negative", msg)
      end
      for _, n in ipairs({ 0, 1, 3, 5, 7 }) do assert.is_true(replicaset.check_state_server_count(n)) end
      assert.is_nil(replicaset.check_state_server_count(3.5))
    end)
  end)

  describe("plan", function()
    local one = { _id = "juju", version = 1, members = { member(1, "0", 1) } }

    it("adds new machines as non-voting members after the highest id", function()
      local p = assert(replicaset.plan({ machine("0"), machine("1"), machine("2") }, one, status({ [1] = 1 })))
      assert.is_true(p.changed)
      assert.are.same({ "1", "2" }, p.added)
      assert.are.same({ "1", "2" }, p.waiting)
      assert.are.same({ ["0"] = 1, ["1"] = 0, ["2"] = 0 }, votes_of(p))
      assert.are.same({ 1, 2, 3 }, { p.members[1]._id, p.members[2]._id, p.members[3]._id })
      assert.are.equal(0.0, p.members[2].priority)
      assert.are.same({ ["0"] = true, ["1"] = false, ["2"] = false }, p.voting)
    end)

    it("gives the votes once the members are SECONDARY, keeping the count odd", function()
      local cfg = { _id = "juju", version = 2, members = { member(1, "0", 1), member(2, "1", 0), member(3, "2", 0) } }
      local p = assert(replicaset.plan({ machine("0"), machine("1"), machine("2") }, cfg,
        status({ [1] = 1, [2] = 2, [3] = 2 })))
      assert.are.same({ "1", "2" }, p.votes_added)
      assert.are.same({ ["0"] = 1, ["1"] = 1, ["2"] = 1 }, votes_of(p))
      -- Only one ready: two voters would be even, so nobody gets a vote yet.
      p = assert(replicaset.plan({ machine("0"), machine("1"), machine("2") }, cfg,
        status({ [1] = 1, [2] = 2, [3] = 5 })))
      assert.is_false(p.changed)
      assert.are.same({}, p.votes_added)
      assert.are.same({ "2" }, p.waiting)
      assert.are.same({ ["0"] = 1, ["1"] = 0, ["2"] = 0 }, votes_of(p))
      -- An unhealthy SECONDARY is not ready either.
      local st = status({ [1] = 1, [2] = 2, [3] = 2 })
      for _, m in ipairs(st.members) do
        if m.id == 3 then m.healthy = false end
      end
      p = assert(replicaset.plan({ machine("0"), machine("1"), machine("2") }, cfg, st))
      assert.are.same({}, p.votes_added)
    end)

    it("is unchanged when the set already matches", function()
      local cfg = { _id = "juju", version = 4, members = { member(1, "0", 1), member(2, "1", 1), member(3, "2", 1) } }
      local p = assert(replicaset.plan({ machine("0"), machine("1"), machine("2") }, cfg,
        status({ [1] = 1, [2] = 2, [3] = 2 })))
      assert.is_false(p.changed)
      assert.are.same({}, p.waiting)
    end)

    it("takes a vote away from a non-primary to keep the count odd, never from the primary", function()
      local cfg = { _id = "juju", version = 4, members = { member(1, "0", 1), member(2, "1", 1), member(3, "2", 1) } }
      -- Machine 2 no longer wants its vote: 2 voters would be even, so one more goes.
      local p = assert(replicaset.plan({ machine("0"), machine("1"), machine("2", false) }, cfg,
        status({ [1] = 2, [2] = 1, [3] = 2 })))
      assert.are.same({ "2", "0" }, p.votes_removed)
      assert.are.same({ ["0"] = 0, ["1"] = 1, ["2"] = 0 }, votes_of(p))
      -- Nobody wants a vote: the primary keeps its own.
      p = assert(replicaset.plan({ machine("0", false), machine("1", false), machine("2", false) }, cfg,
        status({ [1] = 2, [2] = 1, [3] = 2 })))
      assert.are.same({ ["0"] = 0, ["1"] = 1, ["2"] = 0 }, votes_of(p))
    end)

    it("drops non-voting members of unknown machines and refuses voting ones", function()
      local cfg = { _id = "juju", version = 3, members = { member(1, "0", 1), member(2, "9", 0) } }
      local p = assert(replicaset.plan({ machine("0") }, cfg, status({ [1] = 1 })))
      assert.is_true(p.changed)
      assert.are.equal(1, #p.members)
      cfg.members[2] = member(2, "9", 1)
      local none, msg = replicaset.plan({ machine("0") }, cfg, status({ [1] = 1 }))
      assert.is_nil(none)
      assert.are.equal("voting non-machine member 10.0.0.10:37017 (machine 9) found in peer group", msg)
    end)

    it("moves a member to its machine's new address", function()
      local cfg = { _id = "juju", version = 1, members = { member(1, "0", 1) } }
      local p = assert(replicaset.plan({ { id = "0", address = "10.1.0.1:37017", wants_vote = true } }, cfg,
        status({ [1] = 1 })))
      assert.is_true(p.changed)
      assert.are.equal("10.1.0.1:37017", p.members[1].host)
    end)

    it("refuses more members than a replica set can have", function()
      local machines = {}
      for i = 0, 7 do machines[#machines + 1] = machine(tostring(i)) end
      local none, msg = replicaset.plan(machines, one, status({ [1] = 1 }))
      assert.is_nil(none)
      assert.matches("at most 7 members", msg, 1, true)
    end)
  end)

  describe("member documents", function()
    it("keep Juju's field order", function()
      local json = require("juju.json")
      local m = replicaset.member({ votes = 0, tags = { ["juju-machine-id"] = "1" }, host = "h:1", _id = 2, priority = 0.0 })
      assert.are.equal("float", math.type(m.priority)) -- a BSON double, as mongod keeps it
      assert.are.equal('{"_id":2,"host":"h:1","priority":0,"tags":{"juju-machine-id":"1"},"votes":0}', json.encode(m))
      assert.is_true(replicaset.is_voting({ host = "h" }))
      assert.is_false(replicaset.is_voting({ host = "h", votes = 0 }))
    end)
  end)
end)
