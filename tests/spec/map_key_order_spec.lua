-- map_key_order_spec.lua: the order the encoders write a table's keys in
-- (Go's sorted map keys; issue 17 item 1 made the sort compare a 64-bit
-- prefix first): checked against a plain Lua model of the rule, on maps
-- large and small, with keys that share long prefixes, differ only after
-- their eighth byte, are prefixes of each other, or hold bytes >= 0x80.
local json = require("juju.json")
local yaml = require("juju.yaml")

-- Byte order, then length: the rule for text keys (memcmp, as Go's sort.Strings).
local function bytes_less(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = a:byte(i), b:byte(i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

local function random_keys(seed, n)
  local rng = seed
  local function rand(m)
    rng = (rng * 1103515245 + 12345) % 2147483648
    return rng % m
  end
  local stems = { "", "a", "key", "machine-", "5b2e7c1a-0d3f-4a8e-9c21-6f4b8d2e1a90:", "abcdefgh", "abcdefg" }
  local alphabet = "abcxyzABC019-_.:~"
  local keys, seen = {}, {}
  while #keys < n do
    local k = stems[rand(#stems) + 1]
    for _ = 1, rand(12) do
      if rand(10) == 0 then
        k = k .. string.char(0xc3, 0xa0 + rand(16)) -- é-like two-byte UTF-8 (bytes >= 0x80)
      else
        local c = rand(#alphabet) + 1
        k = k .. alphabet:sub(c, c)
      end
    end
    if not seen[k] then
      seen[k] = true
      keys[#keys + 1] = k
    end
  end
  return keys
end

-- The keys of a flat JSON object in the order written (keys here need no escapes).
local function json_key_order(text)
  local out = {}
  for k in text:gmatch('[{,]"([^"]*)":') do out[#out + 1] = k end
  return out
end

describe("map key order", function()
  after_each(function() collectgarbage() end)

  for _, n in ipairs({ 3, 8, 9, 200, 5000 }) do
    it("json: a map of " .. n .. " keys in byte order", function()
      local keys = random_keys(n * 7 + 1, n)
      local t = {}
      for i, k in ipairs(keys) do t[k] = i end
      local want = { table.unpack(keys) }
      table.sort(want, bytes_less)
      assert.are.same(want, json_key_order(assert(json.encode(t))))
    end)
  end

  it("json: __yaml_order first (first mention wins), integer keys by their decimal text", function()
    local t = { zeta = 1, alpha = 2, ["abcdefgh1"] = 3, ["abcdefgh0"] = 4, [10] = 5, [9] = 6, [100] = 7, ["10a"] = 8 }
    for i = 1, 30 do t["k" .. string.rep("x", i)] = i end
    json.ordered(t, { "zeta", "abcdefgh1", "zeta", "missing" })
    local got = json_key_order(assert(json.encode(t)))
    local rest = {}
    for k in pairs(t) do
      if k ~= "zeta" and k ~= "abcdefgh1" then rest[#rest + 1] = tostring(k) end
    end
    table.sort(rest, bytes_less)
    local want = { "zeta", "abcdefgh1", table.unpack(rest) }
    assert.are.same(want, got)
    assert.are.equal("10", got[3])
  end)

  it("json: an integer key and a string key with one text are refused, in any map size", function()
    for _, n in ipairs({ 2, 50 }) do
      local t = { [7] = "int" }
      t["7"] = "string"
      for i = 1, n do t["pad" .. i] = i end
      local text, err = json.encode(t)
      assert.is_nil(text)
      assert.matches('two keys written "7"', err)
    end
  end)

  it("yaml: numbers by value, then strings by bytes, then false, true; at every size", function()
    for _, pad in ipairs({ 0, 40 }) do
      local t = { [-5] = "n-5", [2.5] = "n2.5", [3] = "n3", [-0.5] = "n-0.5", [1e10] = "n1e10",
        ["b"] = "sb", ["a"] = "sa", ["abcdefghij"] = "sj", ["abcdefghi"] = "si", [true] = "bt", [false] = "bf" }
      for i = 1, pad do t[string.format("abcdefgh%03d", (i * 37) % 101)] = "p" .. i end
      local strings = {}
      for k in pairs(t) do
        if type(k) == "string" then strings[#strings + 1] = k end
      end
      table.sort(strings, bytes_less)
      local want = { "n-5", "n-0.5", "n2.5", "n3", "n1e10" }
      for _, k in ipairs(strings) do want[#want + 1] = t[k] end
      want[#want + 1] = "bf"
      want[#want + 1] = "bt"
      local got = {}
      for v in assert(yaml.encode(t)):gmatch(": ([%w%.%-]+)\n") do got[#got + 1] = v end
      assert.are.same(want, got)
    end
  end)

  it("a map that cannot be encoded fails the same at any size, and the next encode works", function()
    for _, n in ipairs({ 4, 5000 }) do
      local t = { bad = print, none = yaml.null }
      for i = 1, n do t["k" .. i] = i end
      local text, err = json.encode(t)
      assert.is_nil(text)
      assert.matches("cannot encode a function", err)
      assert.is_nil(yaml.encode({ outer = t }))
      t.bad = nil
      collectgarbage()
      local back = json.decode(assert(json.encode(t)))
      assert.are.equal(n, back["k" .. n])
      assert.are.equal(json.null, back.none)
      assert.matches("\nnone: null\n", assert(yaml.encode(t)))
    end
  end)

  it("yaml: a shared __yaml_order array orders every table that uses it", function()
    local order = { "c", "a" }
    local outer = {}
    for i = 1, 20 do
      outer["m" .. string.format("%02d", i)] = yaml.ordered({ a = i, b = i, c = i, d = i }, order)
    end
    local text = assert(yaml.encode(outer))
    local _, n = text:gsub("m%d%d:\n  c: %d+\n  a: %d+\n  b: %d+\n  d: %d+\n", "")
    assert.are.equal(20, n)
  end)
end)
