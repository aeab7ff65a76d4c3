-- juju ensure-availability: makes N state servers available (Juju 1.25's
-- command: -n, --series, --constraints, --format simple|yaml|json), on a
-- replicated state store (state-store: dqlite or mongodb). The work is in
-- juju.availability.
local constraints = require("juju.constraints")
local envopen = require("juju.environs.open")

local M = {
  name = "ensure-availability",
  args = "[options]",
  purpose = "ensure the availability of Juju state servers",
  doc = [[
To ensure availability of deployed services, the Juju infrastructure
must itself be highly available.  Ensure-availability must be called
to ensure that the specified number of state servers are made available.

An odd number of state servers is required.

Examples:
 juju ensure-availability
     Ensure that the system is still in highly available mode. If
     there is only 1 state server running, this will ensure there
     are 3 running. If you have previously requested more than 3,
     then that number will be ensured.
 juju ensure-availability -n 5 --series=trusty
     Ensure that 5 state servers are available, with newly created
     state server machines having the "trusty" series.
 juju ensure-availability -n 7 --constraints mem=8G
     Ensure that 7 state servers are available, with newly created
     state server machines having the default series, and at least
     8GB RAM.
 juju ensure-availability -n 3 --to 10.0.0.5,10.0.0.6
     (manual environments) the new state servers are these hosts.

The environment's state store must be replicated: state-store: dqlite
(Raft) or mongodb (a replica set). A new state server that does not join
within bootstrap-timeout is removed again, with its machine.]],
}

M.FORMATS = { simple = true, yaml = true, json = true }

function M.flags(fs)
  fs:add { names = { "e", "environment" }, help = "juju environment to operate in" }
  fs:add { names = { "n" }, kind = "int", default = 0, help = "number of state servers to make available" }
  fs:add { names = { "series" }, help = "the charm series" }
  fs:add { names = { "constraints" }, help = "additional machine constraints", parse = constraints.parse }
  fs:add { names = { "to" }, help = "the hosts (manual) or placements of the new state servers, comma-separated" }
  fs:add { names = { "format" }, default = "simple", help = "specify output format (json|simple|yaml)",
    parse = function(v)
      if M.FORMATS[v] then return v end
      return nil, string.format("unknown format %q", v)
    end }
  fs:add { names = { "o", "output" }, help = "specify an output file" }
end

M.ODD_MESSAGE = "must specify a number of state servers odd and non-negative"

function M.init(_, opts, args)
  if opts.n < 0 or (opts.n % 2 ~= 1 and opts.n ~= 0) then return M.ODD_MESSAGE end
  if #args > 0 then return string.format("unrecognized args: [%q]", args[1]) end
  if opts.to then
    local hosts = {}
    for h in opts.to:gmatch("[^,]+") do hosts[#hosts + 1] = h end
    if #hosts == 0 then return "--to needs at least one host" end
    opts.to = hosts
  end
  return nil
end

--- Juju 1.25's "simple" format of the result.
function M.format_simple(r)
  local out = {}
  for _, item in ipairs({ { "maintaining machines: %s\n", r.maintained }, { "adding machines: %s\n", r.added },
    { "removing machines %s\n", r.removed }, { "promoting machines %s\n", r.promoted },
    { "demoting machines %s\n", r.demoted } }) do
    if item[2] and #item[2] > 0 then out[#out + 1] = string.format(item[1], table.concat(item[2], ", ")) end
  end
  return table.concat(out)
end

-- yaml and json as 1.25's availabilityInfo: omitempty lists, YAML in flow
-- style (machine ids are number-like strings, so Go quotes them).
function M.format(r, how)
  if how == "simple" then return M.format_simple(r) end
  local keys = {}
  for _, k in ipairs({ "maintained", "removed", "added", "promoted", "demoted" }) do
    if r[k] and #r[k] > 0 then keys[#keys + 1] = k end
  end
  if how == "json" then
    local json, yaml = require("juju.json"), require("juju.yaml")
    local doc = {}
    for _, k in ipairs(keys) do doc[k] = yaml.array(r[k]) end
    return json.encode(doc) .. "\n"
  end
  local lines = {}
  for _, k in ipairs(keys) do
    local q = {}
    for i, id in ipairs(r[k]) do q[i] = string.format("%q", id) end
    lines[#lines + 1] = string.format("%s: [%s]\n", k, table.concat(q, ", "))
  end
  return table.concat(lines)
end

function M.run(_, ctx, opts)
  local home, herr = ctx:juju_home()
  if not home then return nil, herr end
  local name, nerr = envopen.environment_name(ctx, home, opts.environment)
  if not name then return nil, nerr end
  local result, err = require("juju.availability").ensure(ctx, home, name, {
    n = opts.n, series = opts.series, constraints = opts.constraints, to = opts.to,
  })
  if not result then return nil, err end
  local text = M.format(result, opts.format)
  if opts.output then
    local ok, werr = require("juju.fs").write_atomic(opts.output, text, tonumber("644", 8))
    if not ok then return nil, werr end
    return true
  end
  ctx:write_stdout(text)
  return true
end

return M
