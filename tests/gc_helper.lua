-- tests/gc_helper.lua: a busted helper (--helper=tests/gc_helper.lua) that
-- runs the specs under an aggressive garbage collector, so a binding that
-- forgets to keep a Lua value alive, or whose __gc frees something still in
-- use, fails under ASan near the test that caused it instead of by chance.
--
-- The incremental collector starts a new cycle as soon as one ends (pause 0)
-- and does a lot of work per step (step multiplier 1000, the largest Lua
-- 5.4 keeps), and every test ends with two full collections (the second one
-- runs the finalizers of objects resurrected by the first). Warnings are
-- switched on so an error inside a __gc handler is printed, not dropped.
local busted = require("busted")

local M = {}

M.PAUSE = 0
M.STEPMUL = 1000

collectgarbage("incremental", M.PAUSE, M.STEPMUL)
warn("@on")

local function full_collect()
  collectgarbage("collect")
  collectgarbage("collect")
  return nil, true -- let the other subscribers run
end

busted.subscribe({ "test", "end" }, full_collect)
busted.subscribe({ "file", "end" }, full_collect)

return M
