-- juju lua SCRIPT [ARGS...]: runs a Lua 5.4 script with every engine module
-- available and `arg` set as the standalone interpreter sets it, so
-- `juju lua "$(command -v busted)" ...` runs busted inside the engine.
return {
  name = "lua",
  args = "SCRIPT [ARGS...]",
  purpose = "run a Lua script with the engine's modules (scenarios, tests)",
  raw_args = true,
  run = function(_, ctx, args)
    local script = args[1]
    if not script then
      ctx:write_stderr("error: usage: juju lua SCRIPT [ARGS...]\n")
      return 2
    end
    local a = { [-1] = (ctx.program or "juju") .. " lua", [0] = script }
    for i = 2, #args do a[i - 1] = args[i] end
    _G.arg = a
    local chunk, err = loadfile(script)
    if not chunk then
      ctx:write_stderr("ERROR cannot load script: " .. err .. "\n")
      return 1
    end
    local ok, res = xpcall(chunk, debug.traceback, table.unpack(a, 1, #a))
    if not ok then
      ctx:write_stderr("ERROR " .. tostring(res) .. "\n")
      return 1
    end
    return math.type(res) == "integer" and res or 0
  end,
}
