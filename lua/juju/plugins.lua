-- juju.plugins: Juju 1.25's plugins: an executable juju-NAME anywhere on
-- PATH is run for `juju NAME ...` with JUJU_HOME and JUJU_ENV set, and
-- listed by `juju help plugins` with the first line of `juju-NAME --description`.
local fs = require("juju.fs")
local sys = require("juju.sys")

local M = {}

M.TOPIC = "Juju Plugins\n\n"
  .. "Plugins are implemented as stand-alone executable files somewhere in the user's PATH.\n"
  .. "The executable command must be of the format juju-<plugin name>.\n\n"

local function path_dirs(ctx)
  local out = {}
  for d in (ctx:getenv("PATH") or ""):gmatch("[^:]+") do out[#out + 1] = d end
  return out
end

local function executable(path)
  local st = fs.stat(path)
  return st and st.type ~= "directory" and (st.mode & tonumber("111", 8)) ~= 0
end

--- The path of the plugin for `juju name`, or nil.
function M.find(ctx, name)
  if name:find("/", 1, true) or name:sub(1, 1) == "-" then return nil end
  for _, d in ipairs(path_dirs(ctx)) do
    local p = d .. "/juju-" .. name
    if executable(p) then return p end
  end
  return nil
end

--- Every plugin on PATH (the first of each name), sorted: {name=, path=}.
function M.list(ctx)
  local seen, out = {}, {}
  for _, d in ipairs(path_dirs(ctx)) do
    for _, f in ipairs(fs.list(d) or {}) do
      local n = f:match("^juju%-(.+)$")
      if n and not seen[n] and executable(d .. "/" .. f) then
        seen[n] = true
        out[#out + 1] = { name = n, path = d .. "/" .. f }
      end
    end
  end
  table.sort(out, function(a, b) return a.name < b.name end)
  return out
end

local function child_env(ctx, extra)
  local env = {}
  for k, v in pairs(ctx.env) do env[k] = v end
  for k, v in pairs(extra) do env[k] = v end
  return env
end

--- The `juju help plugins` text.
function M.help_topic(ctx)
  local parts = { M.TOPIC }
  local found = M.list(ctx)
  if #found == 0 then return M.TOPIC .. "No plugins found.\n" end
  local longest = 0
  for _, p in ipairs(found) do longest = math.max(longest, #p.name) end
  for _, p in ipairs(found) do
    local r = sys.run({ p.path, "--description" }, { env = child_env(ctx, {}), stdin = "null", timeout = 10 })
    local desc
    if r and r.code == 0 then
      desc = (r.stdout or ""):match("^%s*([^\n]*)"):gsub("%s+$", "")
    else
      desc = string.format("error occurred running '%s --description'", p.path:match("[^/]*$"))
    end
    parts[#parts + 1] = string.format("%-" .. longest .. "s  %s\n", p.name, desc)
  end
  return table.concat(parts)
end

-- The environment the plugin is told about: -e/--environment among its
-- arguments (left in place, as 1.25 did), else the one a command would use.
local function environment_for(ctx, args)
  for i, a in ipairs(args) do
    if a == "-e" or a == "--environment" then return args[i + 1] end
    local v = a:match("^%-%-environment=(.*)$") or a:match("^%-e=(.*)$")
    if v then return v end
  end
  local home = ctx:juju_home()
  if not home then return "" end
  local environments = require("juju.environs.environments")
  local envs = environments.read(home)
  return environments.choose(ctx, home, nil, envs) or ""
end

--- Runs the plugin at path with args; returns its exit code.
function M.run(ctx, path, args)
  local argv = { path }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  local env = child_env(ctx, { JUJU_HOME = ctx:juju_home() or "", JUJU_ENV = environment_for(ctx, args) })
  -- The real process hands its terminal over; an in-process run (tests,
  -- scenarios) captures the output into its context.
  local inherit = ctx.program ~= nil
  local r, err = sys.run(argv, {
    env = env,
    stdin = inherit and "inherit" or "null",
    stdout = inherit and "inherit" or "pipe",
    stderr = inherit and "inherit" or "pipe",
  })
  if not r then
    ctx:write_stderr(string.format("ERROR cannot run %s: %s\n", path, tostring(err)))
    return 1
  end
  if not inherit then
    ctx:write_stdout(r.stdout or "")
    ctx:write_stderr(r.stderr or "")
  end
  if r.signal then return 1 end
  return r.code
end

return M
