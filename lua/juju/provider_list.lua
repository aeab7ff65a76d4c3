-- juju.provider_list: which providers exist and their one-line
-- descriptions, without running every script on each `juju help`
-- (issue 17.4).
--
-- The descriptions of the providers that load are kept in
-- $JUJU_HOME/cache/providers, each under a stamp of its script (size
-- and mtime of NAME.lua, or of every .lua file in a NAME/ folder) and the
-- engine's version. A script whose stamp changed is loaded again in full
-- and the cache rewritten; a script that does not load is never cached, so
-- it is loaded (and its error reported) on every listing, as before.
local site = require("juju_site")
local fs = require("juju.fs")

local M = {}

-- Providers for tests only: never offered to operators.
M.HIDDEN = { dummy = true }

M.CACHE_FILE = "cache/providers"

--- The folders searched for provider scripts: $JUJU_HOME/providers, then
--- the built-in folder.
function M.search_dirs(home)
  local dirs = {}
  if home then dirs[#dirs + 1] = home .. "/providers" end
  dirs[#dirs + 1] = site.providers_dir
  return dirs
end

--- Where the script of provider `name` is (NAME.lua, else NAME/init.lua,
--- in $JUJU_HOME/providers then the built-in folder), or nil.
function M.find(home, name)
  for _, d in ipairs(M.search_dirs(home)) do
    for _, p in ipairs({ d .. "/" .. name .. ".lua", d .. "/" .. name .. "/init.lua" }) do
      if fs.exists(p) then return p end
    end
  end
  return nil
end

--- Every provider script that exists: {{name=, path=}...} sorted by name;
--- a user's provider hides a built-in one of the same name.
function M.scripts(home)
  local seen, out = {}, {}
  for _, d in ipairs(M.search_dirs(home)) do
    local names = fs.list(d) or {}
    local files = {}
    for _, f in ipairs(names) do files[f] = true end
    for _, f in ipairs(names) do
      local name = f:match("^([%w_-]+)%.lua$")
      local path = name and d .. "/" .. f
      if not name and f:match("^[%w_-]+$") and not files[f .. ".lua"] and fs.exists(d .. "/" .. f .. "/init.lua") then
        name, path = f, d .. "/" .. f .. "/init.lua"
      end
      -- The first folder that has it wins, NAME.lua before NAME/init.lua:
      -- the path M.find gives, without searching again.
      if name and not seen[name] then
        seen[name] = true
        out[#out + 1] = { name = name, path = path }
      end
    end
  end
  table.sort(out, function(a, b) return a.name < b.name end)
  return out
end

local function file_stamp(path)
  local st = fs.stat(path)
  if not st then return "missing" end
  return string.format("%d:%.17g", st.size, st.mtime)
end

--- The stamp of a provider script: it changes whenever the script (or, for
--- a NAME/init.lua folder, any .lua file in the folder and its NAME
--- subfolders) is edited. A folder's stamp is one C call (fs.tree_stamp):
--- "rel=SIZE:SEC.NSEC;..." sorted by path.
function M.stamp(path)
  local dir = path:match("^(.*)/init%.lua$")
  if not dir then return file_stamp(path) end
  return (fs.tree_stamp(dir, ".lua"))
end

local function cache_path(home) return home and home .. "/" .. M.CACHE_FILE end

-- The cache file: a header line "juju-provider-list <engine version>",
-- then one line per provider that loads: path, stamp, name and
-- description, tab-separated, with backslash, tab and newline escaped.
-- (Plain lines, not a Lua chunk: reading them costs less than compiling.)
local HEADER = "juju-provider-list "
local ESC = { ["\\"] = "\\\\", ["\t"] = "\\t", ["\n"] = "\\n" }
local UNESC = { ["\\"] = "\\", t = "\t", n = "\n" }

local function escape(v) return (tostring(v):gsub("[\\\t\n]", ESC)) end
local function unescape(v)
  if not v:find("\\", 1, true) then return v end
  return (v:gsub("\\(.)", UNESC))
end

-- The tab-separated fields of a line, or nil when it has not exactly n.
local function fields(line, n)
  local out, i = {}, 1
  for k = 1, n - 1 do
    local j = line:find("\t", i, true)
    if not j then return nil end
    out[k], i = unescape(line:sub(i, j - 1)), j + 1
  end
  if line:find("\t", i, true) then return nil end
  out[n] = unescape(line:sub(i))
  return out
end

-- The cache: {version=, entries = {[path] = {stamp=, name=, description=}}}
-- or an empty one when missing, unreadable or from another engine version.
local function read_cache(home)
  local empty = { version = site.version, entries = {} }
  local path = cache_path(home)
  local text = path and fs.read_file(path)
  if not text or text:sub(1, #HEADER + #site.version + 1) ~= HEADER .. site.version .. "\n" then return empty end
  local entries = {}
  local i = #HEADER + #site.version + 2
  while i <= #text do
    local j = text:find("\n", i, true)
    if not j then return empty end
    local f = fields(text:sub(i, j - 1), 4)
    if not f then return empty end
    entries[f[1]] = { stamp = f[2], name = f[3], description = f[4] }
    i = j + 1
  end
  return { version = site.version, entries = entries }
end

local function write_cache(home, doc)
  local path = cache_path(home)
  if not path or not fs.exists(home) then return end
  local keys = {}
  for k in pairs(doc.entries) do keys[#keys + 1] = k end
  table.sort(keys)
  local out = { HEADER .. doc.version .. "\n" }
  for _, k in ipairs(keys) do
    local e = doc.entries[k]
    out[#out + 1] = table.concat({ escape(k), escape(e.stamp), escape(e.name), escape(e.description) }, "\t") .. "\n"
  end
  -- A cache: a failed write only costs the next listing a full load.
  if fs.mkdir_p(home .. "/cache", tonumber("700", 8)) then
    fs.write_atomic(path, table.concat(out), tonumber("600", 8))
  end
end

--- Every provider that exists, as providers.list gives them but without
--- the boilerplate: {{name=, path=, description=, error=}...} sorted by
--- name. Scripts unchanged since the last listing are not run.
function M.list(home)
  local cache = read_cache(home)
  local fresh, dirty = {}, false
  local out = {}
  for _, s in ipairs(M.scripts(home)) do
    local stamp = M.stamp(s.path)
    local hit = cache.entries[s.path]
    if hit and hit.stamp == stamp and hit.name == s.name then
      fresh[s.path] = hit
      out[#out + 1] = { name = s.name, path = s.path, description = hit.description }
    else
      local p, err = require("juju.providers").load(home, s.name)
      local desc = p and p.description or ""
      out[#out + 1] = { name = s.name, path = p and p.path or s.path, description = desc, error = err }
      if p then
        fresh[s.path] = { stamp = stamp, name = s.name, description = desc }
        dirty = true
      end
    end
  end
  -- Entries of folders this engine does not search (another build tree
  -- sharing the JUJU_HOME) are kept; those of its own that are gone are not.
  local dirs = M.search_dirs(home)
  for k, e in pairs(cache.entries) do
    if not fresh[k] then
      local foreign = true
      for _, d in ipairs(dirs) do
        if k:sub(1, #d + 1) == d .. "/" then foreign = false end
      end
      if foreign then fresh[k] = e else dirty = true end
    end
  end
  if dirty then write_cache(home, { version = site.version, entries = fresh }) end
  return out
end

--- The providers offered to operators: those that load, without the
--- test-only ones, as {{name=, description=}...} sorted by name.
function M.available(home)
  local out = {}
  for _, e in ipairs(M.list(home)) do
    if not e.error and not M.HIDDEN[e.name] then out[#out + 1] = { name = e.name, description = e.description } end
  end
  return out
end

return M
