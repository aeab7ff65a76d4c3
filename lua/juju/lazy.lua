-- juju.lazy: a module loaded on first use.
--
--   local http = require("juju.lazy")("juju.http")
--   http.request{...}   -- juju.http (and libcurl) is loaded here, once
--
-- The binding modules of libcurl, libssh2, libexpat, libmongoc, libsqlite3
-- and libarchive each map dozens of shared objects (libmongoc's initialiser
-- alone loads the SASL plugins, Kerberos and ICU); a command that never
-- makes a request, opens a connection or parses XML should not pay for them
-- (`juju help` lists the providers by loading their scripts, which name
-- these modules at the top). The proxy forwards reads of fields to the real
-- module; it is read-only, and `pairs` over it sees the module's fields
-- once loaded (use `lazy.force(proxy)` to get the module itself).
local M = {}

local real = setmetatable({}, { __mode = "k" })

local function load(proxy)
  local m = real[proxy]
  if m == nil then
    m = require(getmetatable(proxy).__name)
    real[proxy] = m
  end
  return m
end

--- The module itself behind a proxy (loading it), or the value unchanged.
function M.force(v)
  local mt = type(v) == "table" and getmetatable(v)
  if mt and mt.__lazy then return load(v) end
  return v
end

setmetatable(M, { __call = function(_, name)
  if package.loaded[name] ~= nil then return package.loaded[name] end
  return setmetatable({}, {
    __lazy = true,
    __name = name,
    __index = function(p, k) return load(p)[k] end,
    __newindex = function(_, k) error(string.format("%s is read-only here (setting %s)", name, tostring(k)), 2) end,
    __pairs = function(p) return next, load(p), nil end,
  })
end })

return M
