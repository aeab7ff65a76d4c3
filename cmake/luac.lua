-- cmake/luac.lua SRC OUT CHUNKNAME: precompiles one engine module to Lua
-- bytecode (debug information kept: errors and tracebacks name the same
-- file and line as the source would). Run by the build with the lua5.4 the
-- engine links against (JUJU_PRECOMPILE_LUA, CMakeLists.txt).
local src, out, name = arg[1], arg[2], arg[3]
local f = assert(io.open(src, "rb"))
local text = f:read("a")
f:close()
local chunk = assert(load(text, "@" .. name, "t"))
local tmp = out .. ".tmp"
local o = assert(io.open(tmp, "wb"))
assert(o:write(string.dump(chunk)))
assert(o:close())
assert(os.rename(tmp, out))
