-- check-layering.lua: the architecture's "who may use whom", checked.
--   core/      includes no Lua header; core/knownhosts.* no libssh2;
--   bindings/  one file per core module, each defining luaopen_juju_<module>,
--              plus common.h, options.h, cancel.h and listed shared helpers;
--   providers/ never require another provider;
--   lua/juju/  never requires a provider script.
-- Run: lua5.4 scripts/check-layering.lua (from the repository root).
local failures = {}
local function fail(fmt, ...) failures[#failures + 1] = string.format(fmt, ...) end

local function lines_of(cmd)
  local p = assert(io.popen(cmd))
  local out = {}
  for l in p:lines() do out[#out + 1] = l end
  p:close()
  return out
end

local function read(path)
  local f = assert(io.open(path))
  local s = f:read("a")
  f:close()
  return s
end

for _, f in ipairs(lines_of("ls core/*.c core/*.h")) do
  local s = read(f)
  for h in s:gmatch('#%s*include%s*[<"]([^>"]+)[>"]') do
    if h:match("^lua") or h:match("lauxlib") or h:match("lualib") then
      fail("%s includes %s: the C core must stay free of Lua", f, h)
    end
  end
end

-- The host-key policy is not the libssh2 session (issue 9): it stays free
-- of libssh2, so it can be used and fuzzed without a connection.
for _, f in ipairs(lines_of("ls core/knownhosts.c core/knownhosts.h")) do
  if read(f):find('#%s*include%s*[<"]libssh2') then
    fail("%s includes libssh2: the host-key policy must not depend on the SSH session", f)
  end
end

-- bindings/: each X.c binds core module X (core/X.c, or core/X.h for a
-- module whose header gathers several files, as crypto.h does) and defines
-- luaopen_juju_X. The only other files are the shared helpers below (as
-- Knot Resolver's daemon/bindings/impl.h and luv's src/util.c): compiled
-- into the modules that use them, they open no module of their own.
local shared_helpers = {
  tree = "Lua <-> core/doc trees, for yaml, json, mongo and config",
}
local core_modules = {}
for _, f in ipairs(lines_of("ls core/*.c core/*.h")) do core_modules[f:match("core/(.-)%.[ch]$")] = true end
for _, f in ipairs(lines_of("ls bindings/*.c")) do
  local m = f:match("bindings/(.-)%.c$")
  if shared_helpers[m] then
    if read(f):find("luaopen_", 1, true) then fail("%s is a shared helper: it must not open a module", f) end
  else
    if not core_modules[m] then fail("%s binds no core module (no core/%s.c)", f, m) end
    if not read(f):find("luaopen_juju_" .. m, 1, true) then fail("%s does not define luaopen_juju_%s", f, m) end
  end
end
for _, f in ipairs(lines_of("ls bindings/*.h")) do
  local m = f:match("bindings/(.-)%.h$")
  if m ~= "common" and m ~= "options" and m ~= "cancel" and not shared_helpers[m] then
    fail("%s: bindings/ headers are common.h, options.h, cancel.h and the shared helpers' own", f)
  end
end

local provider_names = {}
for _, f in ipairs(lines_of("ls providers/*.lua")) do provider_names[f:match("providers/(.-)%.lua$")] = true end
local function check_requires(f, what)
  local s = read(f)
  for mod in s:gmatch('require%s*%(?%s*["\']([^"\']+)["\']') do
    local last = mod:match("([^.]+)$")
    if mod:match("^providers?%.") or (what == "provider" and provider_names[mod]) then
      fail("%s requires %s: %s", f, mod, what == "provider" and "providers never require each other" or
        "lua/juju must not depend on provider scripts")
    end
    local _ = last
  end
end
for _, f in ipairs(lines_of("ls providers/*.lua")) do check_requires(f, "provider") end
for _, f in ipairs(lines_of("find lua -name '*.lua'")) do check_requires(f, "library") end

-- Lua libraries never require commands, the bootstrap orchestrator or
-- jujud (the entry points sit on top of them, never below).
do
  local tops = { ["juju.cli"] = true, ["juju.bootstrap"] = true, ["juju.jujud"] = true }
  -- juju.availability (ensure-availability) runs the bootstrap's steps for
  -- each new state server: an orchestrator beside juju.bootstrap.
  local entry = { ["lua/juju/cli.lua"] = true, ["lua/juju/jujud.lua"] = true, ["lua/juju/bootstrap.lua"] = true,
    ["lua/juju/testing.lua"] = true, ["lua/juju/availability.lua"] = true }
  for _, f in ipairs(lines_of("find lua -name '*.lua' | sort")) do
    if not f:match("^lua/juju/commands/") and not entry[f] then
      for mod in read(f):gmatch('require%s*%(?%s*["\']([^"\']+)["\']') do
        if tops[mod] or mod:match("^juju%.commands%.") then
          fail("%s requires %s: libraries never require commands, bootstrap or jujud", f, mod)
        end
      end
    end
  end
end

if #failures > 0 then
  for _, m in ipairs(failures) do io.stderr:write("layering: " .. m .. "\n") end
  os.exit(1)
end
print("layering: ok")
