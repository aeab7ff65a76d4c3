-- luacheck configuration: Lua 5.4, no globals.
std = "lua54"
max_line_length = 160
files["tests/spec/**/*_spec.lua"] = { std = "+busted" }
files["tests/integration/**/*_spec.lua"] = { std = "+busted" }
files["tests/scenarios/**/*_spec.lua"] = { std = "+busted" }
files["tests/spec/*_spec.lua"] = { std = "+busted" }
exclude_files = { "build*/**" }
