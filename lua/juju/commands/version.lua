-- juju version: prints the client's binary version NUMBER-SERIES-ARCH, in
-- 1.25's output formats (smart, the default, yaml and json).
local sys = require("juju.sys")
local version = require("juju.version")

local M = { name = "version", purpose = "print the current version", args = "" }

local FORMATS = { smart = true, yaml = true, json = true }

function M.flags(fs)
  fs:add { names = { "format" }, default = "smart", help = "specify output format (json|smart|yaml)",
    parse = function(v)
      if FORMATS[v] then return v end
      return nil, string.format("unknown format %q", v)
    end }
  fs:add { names = { "o", "output" }, help = "specify an output file" }
end

function M.init(_, _, args)
  if #args > 0 then
    local q = {}
    for _, a in ipairs(args) do q[#q + 1] = string.format("%q", a) end
    return string.format("unrecognized args: [%s]", table.concat(q, " "))
  end
  return nil
end

--- The client's binary version (e.g. 1.26.0-bookworm-amd64).
function M.client_binary()
  local series = version.host_series(sys)
  local arch = sys.arch() or "unknown"
  return string.format("%s-%s-%s", tostring(version.current), series, arch)
end

function M.run(_, ctx, opts)
  local v = M.client_binary()
  local text = opts.format == "json" and (require("juju.json").encode(v) .. "\n") or (v .. "\n")
  if opts.output then
    local ok, err = require("juju.fs").write_atomic(opts.output, text, tonumber("644", 8))
    if not ok then return nil, err end
    return true
  end
  ctx:write_stdout(text)
  return true
end

return M
