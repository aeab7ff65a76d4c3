-- juju switch [NAME] (alias env): show or change the current environment.
local fs = require("juju.fs")
local environments = require("juju.environs.environments")

local M = {
  name = "switch",
  args = "[environment name]",
  purpose = "show or change the default juju environment name",
  aliases = { "env" },
  doc = "Without arguments, prints the current environment. With a name, makes it current.\n"
    .. "The environment can be overridden with JUJU_ENV or -e on each command.",
}

function M.flags(fs_)
  fs_:add { names = { "l", "list" }, kind = "bool", help = "list the environment names" }
end

function M.init(_, opts, args)
  if #args > 1 then
    local q = {}
    for i = 2, #args do q[#q + 1] = string.format("%q", args[i]) end
    return string.format("unrecognized args: [%s]", table.concat(q, " "))
  end
  if opts.list and args[1] then return "cannot switch and list at the same time" end
  return nil
end

-- Every name: environments.yaml entries plus prepared .jenv files.
local function all_names(home)
  local seen, out = {}, {}
  local envs, err, code = environments.read(home)
  if not envs and code ~= "ENOENT" then return nil, err end
  for _, n in ipairs(envs and envs:names() or {}) do seen[n] = true; out[#out + 1] = n end
  for _, f in ipairs(fs.list(home .. "/environments") or {}) do
    local n = f:match("^(.+)%.jenv$")
    if n and not seen[n] then seen[n] = true; out[#out + 1] = n end
  end
  table.sort(out)
  return out, envs
end

function M.run(_, ctx, opts, args)
  local home, herr = ctx:juju_home()
  if not home then return nil, herr end
  local current = environments.read_current(home)
  local juju_env = ctx:getenv("JUJU_ENV")
  if opts.list then
    -- 1.25 printed bare names, one a line, for `for e in $(juju switch -l)`.
    local names, envs = all_names(home)
    if not names then return nil, envs end
    for _, n in ipairs(names) do ctx:printf("%s", n) end
    return true
  end
  local name = args[1]
  if not name then
    local shown = juju_env or current
    if not shown then
      local envs = environments.read(home)
      shown = envs and environments.choose(ctx, home, nil, envs)
    end
    if not shown then return nil, "no currently specified environment" end
    ctx:printf("%s", shown)
    return true
  end
  if juju_env then
    return nil, string.format("cannot switch when JUJU_ENV is overriding the environment (set to %q)", juju_env)
  end
  local names, envs = all_names(home)
  if not names then return nil, envs end
  local known = false
  for _, n in ipairs(names) do if n == name then known = true end end
  if not known then return nil, string.format("%q is not a name of an existing defined environment", name) end
  local old = current or (envs and envs.default)
  local ok, err = environments.write_current(home, name)
  if not ok then return nil, err end
  if old then ctx:infof("%s -> %s", old, name) else ctx:infof("-> %s", name) end
  return true
end

return M
