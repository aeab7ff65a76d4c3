-- juju.cli: the juju command line (placeholder during bring-up).
local M = {}

function M.main(argv)
  if argv[1] == "lua" then
    local script = argv[2]
    local a = { [0] = script, [-1] = argv[0] .. " lua" }
    for i = 3, #argv do a[i - 2] = argv[i] end
    _G.arg = a
    local chunk = assert(loadfile(script))
    chunk(table.unpack(a))
    return 0
  end
  return 0
end

return M
