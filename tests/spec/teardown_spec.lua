-- juju.environs.teardown: journaled resources released in reverse order,
-- each under pcall; intents found by name through all_instances; what
-- fails stays journaled.
local teardown = require("juju.environs.teardown")
local journal = require("juju.journal")
local context = require("juju.context")
local testing = require("juju.testing")

local function pc()
  local ctx = context.new { clock = testing.virtual_clock(), env = {}, stdout = function() end, stderr = function() end }
  return context.provider(ctx, { home = "/nonexistent", env_name = "t" })
end

describe("teardown", function()
  after_each(function() collectgarbage() end)

  it("releases in reverse order of creation, and one failure does not stop the others", function()
    local j = journal.memory()
    assert(j:record("security-group", "sg-1"))
    assert(j:record("floating-ip", "fip-1"))
    assert(j:record("network", "net-1"))
    local order = {}
    local provider = {
      release = function(_, r)
        order[#order + 1] = r.id
        if r.id == "fip-1" then error("cloud said no") end
        return true
      end,
      destroy = function() return true end,
    }
    local ok, err = teardown.run(provider, {}, pc(), j, {})
    assert.is_nil(ok)
    assert.matches("cannot release floating%-ip fip%-1: .*cloud said no", err)
    assert.are.same({ "net-1", "fip-1", "sg-1" }, order)
    local left = j:resources()
    assert.are.equal(1, #left)
    assert.are.equal("fip-1", left[1].id)
  end)

  it("leaves storage objects to a destroy that removes the storage (destroy_removes_storage), kept when it fails", function()
    for _, destroy_ok in ipairs({ true, false }) do
      local j = journal.memory()
      assert(j:record("storage", "provider-state"))
      assert(j:record("instance", "manual:h"))
      assert(j:record("storage", "tools/x.tgz"))
      local calls = {}
      local ctx = pc()
      ctx._storage = { remove = function(_, name) calls[#calls + 1] = "remove " .. name; return true end,
        exists = function() return true end }
      local provider = {
        destroy_removes_storage = true,
        release = function(_, r) calls[#calls + 1] = "release " .. r.id; return true end,
        destroy = function()
          calls[#calls + 1] = "destroy"
          if destroy_ok then return true end
          return nil, "host unreachable"
        end,
      }
      local ok, err = teardown.run(provider, {}, ctx, j, { destroy = true })
      assert.are.same({ "release manual:h", "destroy" }, calls)
      if destroy_ok then
        assert.is_true(ok)
        assert.are.same({}, j:resources())
      else
        assert.is_nil(ok)
        assert.matches("host unreachable", err)
        local left = {}
        for _, r in ipairs(j:resources()) do left[#left + 1] = r.kind .. " " .. r.id end
        assert.are.same({ "storage provider-state", "storage tools/x.tgz" }, left)
      end
    end
    -- Without destroy (a failed bootstrap of an existing .jenv), objects are removed one by one.
    local j = journal.memory()
    assert(j:record("storage", "provider-state"))
    local removed = {}
    local ctx = pc()
    ctx._storage = { remove = function(_, name) removed[#removed + 1] = name; return true end }
    assert(teardown.run({ destroy_removes_storage = true, destroy = function() return true end }, {}, ctx, j, {}))
    assert.are.same({ "provider-state" }, removed)
  end)

  it("finds an intent without an id by its name among all_instances, and releases untracked instances", function()
    local j = journal.memory()
    assert(j:intent("instance", "juju-u-machine-0"))
    local released = {}
    local provider = {
      all_instances = function()
        return { { id = "i-9", name = "juju-u-machine-0" }, { id = "i-stray", name = "other" } }
      end,
      release = function(_, r) released[#released + 1] = r.kind .. ":" .. r.id; return true end,
      destroy = function() return true end,
    }
    assert(teardown.run(provider, {}, pc(), j, {}))
    assert.are.same({ "instance:i-9", "instance:i-stray" }, released)
    assert.are.same({}, j:resources())
  end)

  it("forgets an intent that was never created, and empties the journal when destroy succeeds", function()
    local j = journal.memory()
    assert(j:intent("instance", "juju-u-machine-0"))
    assert(j:record("bucket", "b-1"))
    local provider = {
      all_instances = function() return {} end,
      release = function(_, r) if r.kind == "bucket" then return nil, "busy" end return true end,
      destroy = function() return true end,
    }
    assert(teardown.run(provider, {}, pc(), j, { destroy = true }))
    assert.are.same({}, j:resources())
  end)

  it("records the id over the intent of the same name", function()
    local j = journal.memory()
    assert(j:intent("instance", "n"))
    assert(j:record("instance", "i-1", { name = "n" }))
    local rs = j:resources("instance")
    assert.are.equal(1, #rs)
    assert.are.equal("i-1", rs[1].id)
    assert.are.equal("created", rs[1].state)
  end)
end)
