-- juju.agenttools: finding, choosing and building the agent tools of
-- machine 0 (spec steps 7.6, 9; sections 2.6, 2.7).
local fs = require("juju.fs")
local http = require("juju.lazy")("juju.http")
local crypto = require("juju.crypto")
local sys = require("juju.sys")
local tools = require("juju.lazy")("juju.tools")
local site = require("juju_site")
local version = require("juju.version")
local simplestreams = require("juju.simplestreams")
local envconfig = require("juju.environs.config")
local series_rules = require("juju.series")

local M = {}

M.DEFAULT_SOURCE = "https://streams.canonical.com/juju/tools"
M.NO_TOOLS = "Juju cannot bootstrap because no tools are available for your environment.\n"
  .. "You may want to use the 'agent-metadata-url' configuration setting to specify the tools location."

--- The preferred stream (spec step 7.6).
function M.preferred_stream(cfg, requested)
  local s = cfg["agent-stream"]
  if s and s ~= "" and s ~= "released" then return s end
  if cfg.development then return "devel" end
  if version.is_dev(requested or version.current) then return "devel" end
  return "released"
end

--- The simplestreams sources, in order: agent-metadata-url, the provider's,
--- then the default public source or --metadata-source.
function M.sources(b)
  local out = {}
  local url = b.cfg["agent-metadata-url"]
  if url and url ~= "" then
    if url:match("^/") then url = "file://" .. url end
    out[#out + 1] = { url = url, description = "agent-metadata-url" }
  end
  -- Tools metadata previously put in environ storage (sync-tools, earlier uploads).
  -- One listing instead of an exists() per index name (each is a request,
  -- or an exec on a manual host); a failed listing counts as none.
  local storage = b:storage()
  local present = {}
  for _, n in ipairs(storage:list("tools/streams/v1/index") or {}) do present[n] = true end
  if present["tools/streams/v1/index2.json"] or present["tools/streams/v1/index.json"] then
    out[#out + 1] = { url = storage:url("tools"), description = "environ storage" }
  end
  if b.provider.tools_sources then
    for _, s in ipairs(b.provider.tools_sources(b.env) or {}) do out[#out + 1] = s end
  end
  if b.params.metadata_source then
    out[#out + 1] = { url = "file://" .. b.params.metadata_source .. "/tools", description = "bootstrap metadata" }
  elseif b.provider.public_tools ~= false then
    out[#out + 1] = { url = M.DEFAULT_SOURCE, description = "default simplestreams" }
  end
  return out
end

--- A metadata fetcher honouring the environment's proxies, CA bundle and
--- TLS setting: the same rule as every cloud API call (juju.cloud.api's
--- http_options: http-proxy, https-proxy, no-proxy, cloud-ca-bundle-path,
--- ssl-hostname-verification).
function M.fetcher(cfg)
  local base -- at the first fetch: a bootstrap that fetches nothing never loads juju.cloud.api
  return function(url)
    base = base or require("juju.cloud.api").http_options(cfg)
    local o = { retries = 2, connect_timeout = 30, idle_timeout = 60, max_size = 64 * 1024 * 1024 }
    for k, v in pairs(base) do o[k] = v end
    local r, err, code = http.get(url, o)
    if not r then return nil, err, code end
    return r.body
  end
end

--- Host facts for locally built tools.
function M.host()
  local series, os_name = version.host_series(sys)
  return { series = series, os = os_name, arch = sys.arch() }
end

-- Locally buildable entries: the host's own series (tools built here carry
-- this machine's libraries, so they are for its series only), host arch,
-- client version with build+1, no URL.
local function buildable(host)
  local n = version.with_build(version.current, version.current.build + 1)
  return { { version = tostring(n), series = host.series, arch = host.arch,
    binary = string.format("%s-%s-%s", tostring(n), host.series, host.arch) } }
end

--- Step 7.6: the tools machine 0 may use. Returns a list, or nil, message.
function M.find_available(b)
  local host = M.host()
  local cons_arch = b.constraints.arch
  local can_upload = (not cons_arch or cons_arch == "" or cons_arch == host.arch)
  if b.params.upload_tools then
    if not can_upload then
      return nil, string.format("cannot build tools for %q using a machine running on %q", cons_arch, host.arch)
    end
    return buildable(host), "upload"
  end
  local requested = b.params.requested_version or (b.cfg["agent-version"] and version.parse(b.cfg["agent-version"]))
  local stream = M.preferred_stream(b.cfg, requested)
  local want = {
    stream = stream, major = version.current.major, minor = version.current.minor,
    version = requested and tostring(requested) or nil,
    arches = (cons_arch and cons_arch ~= "") and { cons_arch } or nil,
  }
  local found, err, code = simplestreams.find_tools(M.sources(b), want, {
    fetch = b.fetch or M.fetcher(b.cfg), insecure = b.cfg["ssl-hostname-verification"] == false,
  })
  if not found and code ~= "ENOENT" then return nil, err end
  found = found or {}
  if #found == 0 and can_upload and not requested then
    -- This engine publishes no tools: fall back to building them, as Juju
    -- did for development clients (select_tools warns).
    return buildable(host), "upload"
  end
  if #found == 0 then return nil, M.NO_TOOLS end
  return found, "found"
end

--- Before anything is launched: the series machine 0 will run, when it is
--- already known (default-series), must be one these tools can serve.
--- Returns true or nil, message. (The manual provider detects its host's
--- series and refuses one without matching tools before changing the host.)
function M.check_series(b, available)
  local s = b.cfg["default-series"]
  if not s or s == "" then return true end
  local host = M.host()
  local built = true
  for _, t in ipairs(available or {}) do
    if t.url and t.series == s then built = false end
  end
  return series_rules.check(s, host.series, built)
end

--- Step 9: the tools of machine 0 for arch and series; returns the record.
function M.select(b, available, arch, series)
  local matching = {}
  for _, t in ipairs(available) do
    if t.arch == arch and t.series == series then matching[#matching + 1] = t end
  end
  if #matching == 0 then return nil, "no matching tools available" end
  local newest
  for _, t in ipairs(matching) do
    local v = version.parse(t.version)
    if not newest or version.parse(newest.version) < v then newest = t end
  end
  b.log:infof("newest version: %s", newest.version)
  local chosen = newest
  if not version.compatible(version.parse(newest.version), version.current) then
    for _, t in ipairs(matching) do
      if version.compatible(version.parse(t.version), version.current) then chosen = t end
    end
    if chosen == newest then
      b.log:infof("failed to find %s tools, will attempt to use %s", tostring(version.current), newest.version)
    end
  end
  b.log:infof("picked bootstrap tools version: %s", chosen.version)
  return chosen, newest.version
end

-- Where this engine's own parts are, to pack them.
local function engine_parts()
  local cli = package.searchpath("juju.cli", package.path)
  local lua_root = cli and cli:match("^(.*)/juju/cli%.lua$")
  local yaml_so = package.searchpath("juju.yaml", package.cpath)
  local so_dir = yaml_so and yaml_so:match("^(.*)/yaml%.so$")
  return lua_root, so_dir
end

--- Test code that stays out of the tools (names relative to lua/juju).
M.TEST_ONLY = { ["testing.lua"] = true, ["testing"] = true }

local function add_tree(entries, src_dir, prefix, pattern, skip, rel)
  local names = fs.list(src_dir) or {}
  table.sort(names)
  for _, n in ipairs(names) do
    local p = src_dir .. "/" .. n
    local r = rel and (rel .. "/" .. n) or n
    local st = not (skip and skip[r]) and fs.stat(p)
    if st and st.type == "dir" then
      add_tree(entries, p, prefix .. "/" .. n, pattern, skip, r)
    elseif st and st.type == "file" and n:match(pattern) then
      -- st: for cache_key, which would otherwise stat every file again.
      entries[#entries + 1] = { src = p, name = prefix .. "/" .. n, st = st }
    end
  end
end

-- juju_site.lua for the tools: paths relative to wherever they are unpacked.
local function tools_site(number)
  return table.concat({
    "-- juju_site for agent tools: everything is relative to the unpacked tools.",
    'local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."',
    'local prefix = here:gsub("/share/lua/5%.4$", "")',
    string.format('return { version = %q, providers_dir = prefix .. "/share/juju/providers", bin_dir = prefix }', number),
    "",
  }, "\n")
end

-- The glibc family: every Debian system has it, and it must be the host's own
-- (it matches the host's dynamic loader). Everything else jujud and the
-- binding modules load is carried in the tarball's lib/.
local GLIBC = { "ld-linux", "libc.so.", "libm.so.", "libmvec.so.", "libpthread.so.", "libdl.so.", "librt.so.",
  "libresolv.so.", "libutil.so.", "libanl.so.", "libnss_", "libBrokenLocale.so.", "libthread_db.so.", "libnsl.so.1" }

local function is_glibc(name)
  for _, p in ipairs(GLIBC) do
    if name:sub(1, #p) == p then return true end
  end
  return false
end
M.is_glibc = is_glibc

--- The shared libraries `files` (executables and modules) need, as ldd
--- resolves them on this machine, glibc excepted: a sorted list of
--- {name=, path=}, or nil and a message naming the file and library.
function M.library_closure(files)
  local seen, out = {}, {}
  for _, f in ipairs(files) do
    local r, err = sys.run({ "ldd", f }, { timeout = 30 })
    if not r then return nil, "cannot list the libraries of " .. f .. ": ldd: " .. tostring(err) end
    if r.code ~= 0 then return nil, "cannot list the libraries of " .. f .. ": ldd: " .. r.stderr .. r.stdout end
    for line in r.stdout:gmatch("[^\n]+") do
      local name, rest = line:match("^%s*(%S+)%s+=>%s+(.-)%s*$")
      if name and not is_glibc(name) and not seen[name] then
        if rest:match("^not found") then
          return nil, string.format("%s needs %s, which this machine does not have", f, name)
        end
        local path = rest:match("^(/%S+)")
        if path then
          seen[name] = true
          out[#out + 1] = { name = name, path = fs.realpath(path) or path }
        end
      end
    end
  end
  table.sort(out, function(a, b) return a.name < b.name end)
  return out
end

-- The tarball's top-level jujud: runs bin/jujud with the libraries the
-- tools carry. LD_LIBRARY_PATH (not the executable's RUNPATH) because Lua
-- modules are dlopen'd and resolve their own dependencies by their own
-- RUNPATH, never the executable's; jujud puts the caller's value back
-- (JUJU_TOOLS_LD_LIBRARY_PATH) so the commands it runs see the host's
-- libraries.
M.WRAPPER = [[
#!/bin/sh
# jujud of the agent tools (written by juju.agenttools): bin/jujud with lib/.
here=$(dirname "$(readlink -f "$0")")
if [ "${LD_LIBRARY_PATH+set}" = set ]; then
  JUJU_TOOLS_LD_LIBRARY_PATH="set:$LD_LIBRARY_PATH"
  LD_LIBRARY_PATH="$here/lib:$LD_LIBRARY_PATH"
else
  JUJU_TOOLS_LD_LIBRARY_PATH=unset
  LD_LIBRARY_PATH="$here/lib"
fi
export JUJU_TOOLS_LD_LIBRARY_PATH LD_LIBRARY_PATH
exec "$here/bin/jujud" "$@"
]]

-- A cache key for the tarball of these entries: their names, modes and the
-- identity of each source (size and mtime, or the content of generated files).
local function cache_key(entries, generated)
  local parts = {}
  for _, e in ipairs(entries) do
    local st = not generated[e.src] and (e.st or fs.stat(e.src))
    local ident = generated[e.src] and crypto.sha256(generated[e.src])
      or string.format("%d:%s", st and st.size or -1, tostring(st and st.mtime))
    local src = generated[e.src] and "(generated)" or e.src
    parts[#parts + 1] = string.format("%s\t%s\t%s\t%s", e.name, tostring(e.mode), src, ident)
  end
  return crypto.sha256(table.concat(parts, "\n"))
end

-- Within one process (several environments bootstrapped by one client, the
-- suite's in-process scenarios, each with its own JUJU_HOME) a tarball is
-- built once per key: a copy is kept in a private directory that the
-- sentinel's finalizer removes when the Lua state closes.
local memo = { tarballs = {}, closures = {} }

--- The directory for temporary files: $TMPDIR (getenv(name), default the
--- process environment) when it is an absolute, existing directory, else /tmp.
function M.tmp_root(getenv)
  local t = (getenv or sys.getenv)("TMPDIR")
  if t and t:match("^/") then
    t = t:gsub("/+$", "")
    if t == "" then return "/" end
    local st = fs.stat(t)
    if st and st.type == "dir" then return t end
  end
  return "/tmp"
end

-- Removes the juju-tools-<pid>-* directories under root of this user whose
-- process is gone (a bootstrap killed with SIGKILL leaves its own; 14.12).
local function sweep_tmpdirs(root)
  local me = sys.geteuid()
  for _, n in ipairs(fs.list(root) or {}) do
    local pid = math.tointeger(tonumber(n:match("^juju%-tools%-(%d+)%-") or ""))
    if pid and pid ~= sys.getpid() and not sys.kill(pid, 0) then
      local st = fs.lstat(root .. "/" .. n)
      if st and st.type == "dir" and st.uid == me then fs.remove_tree(root .. "/" .. n) end
    end
  end
end

--- A private directory for building a tools tarball under tmp_root(getenv),
--- named after this process (juju-tools-<pid>-*) so that a later call can
--- sweep it if this process is killed; the dead ones are swept first.
function M.tmpdir(getenv, opts)
  local root = M.tmp_root(getenv)
  if not (opts and opts.swept) then sweep_tmpdirs(root) end
  return fs.mkdtemp(string.format("%s/juju-tools-%d-", root, sys.getpid()))
end

--- Removes the temporary directories of dead processes (as M.tmpdir does
--- before it makes one).
function M.sweep_tmpdirs(getenv) sweep_tmpdirs(M.tmp_root(getenv)) end

local function memo_dir()
  if memo.dir then return memo.dir end
  -- Named after this process: a later bootstrap sweeps it if this one is
  -- killed before its finalizer runs (M.tmpdir sweeps it).
  local d = fs.mkdtemp(string.format("%s/juju-tools-%d-memo-", M.tmp_root(), sys.getpid()))
  if not d then return nil end
  memo.dir = d
  memo.sentinel = setmetatable({}, { __gc = function() fs.remove_tree(d) end })
  return d
end

local function remember(key, res, path)
  if memo.tarballs[key] then return end
  local d = memo_dir()
  if not d then return end
  local copy = d .. "/" .. key .. ".tgz"
  -- A second name for the file is enough (tarballs are replaced by rename,
  -- never rewritten in place); a copy only across filesystems.
  if fs.link(path, copy) or fs.copy_file(path, copy, "0600") then
    memo.tarballs[key] = { path = copy, sha256 = res.sha256, size = res.size }
  end
end

-- A tarball of this key built earlier in the process: its private copy
-- (the caller only reads it: bootstrap puts it into environ storage).
local function recall(key)
  local m = memo.tarballs[key]
  local st = m and fs.stat(m.path)
  if not (st and st.size == m.size) then
    memo.tarballs[key] = nil
    return nil
  end
  return { path = m.path, sha256 = m.sha256, size = m.size, cached = true }
end

--- Forgets the tarballs and library lists built so far in this process
--- (benchmarks of a cold build).
function M.forget_built()
  for _, m in pairs(memo.tarballs) do fs.remove(m.path) end
  memo.tarballs, memo.closures = {}, {}
end

-- What ldd's answer depends on besides the files themselves: the loader's
-- cache (rewritten by ldconfig whenever libraries are installed or removed)
-- and the search path of the environment.
local function loader_identity()
  local st = fs.stat("/etc/ld.so.cache")
  return string.format("ld.so.cache\t%d\t%s\nLD_LIBRARY_PATH\t%s", st and st.size or -1,
    tostring(st and st.mtime), tostring(sys.getenv("LD_LIBRARY_PATH")))
end

local function encode_closure(libs)
  local lines = {}
  for _, l in ipairs(libs) do lines[#lines + 1] = l.name .. "\t" .. l.path end
  return table.concat(lines, "\n") .. "\n"
end

-- A closure file written by encode_closure whose libraries are all still
-- there (nil otherwise: the caller asks ldd again).
local function decode_closure(text)
  local libs = {}
  for line in text:gmatch("[^\n]+") do
    local name, path = line:match("^([^\t]+)\t(/[^\t]+)$")
    if not name or not fs.exists(path) then return nil end
    libs[#libs + 1] = { name = name, path = path }
  end
  return libs
end

-- The library closure of files, once per process while they are unchanged,
-- and across processes through cache_dir (JUJU_HOME/cache/tools): a CLI
-- bootstrap would otherwise run ldd (a shell script and two loader runs)
-- for jujud and every binding module each time.
local function closure_cached(files, cache_dir)
  local parts = {}
  for _, f in ipairs(files) do
    local st = fs.stat(f)
    parts[#parts + 1] = string.format("%s\t%d\t%s", f, st and st.size or -1, tostring(st and st.mtime))
  end
  parts[#parts + 1] = loader_identity()
  local key = table.concat(parts, "\n")
  if memo.closures[key] then return memo.closures[key] end
  local file = cache_dir and string.format("%s/closure-%s", cache_dir, crypto.sha256(key):sub(1, 16))
  local text = file and fs.read_file(file)
  local libs = text and decode_closure(text)
  if libs then
    memo.closures[key] = libs
    return libs
  end
  local err
  libs, err = M.library_closure(files)
  if not libs then return nil, err end
  memo.closures[key] = libs
  -- Only a cache: a failed write costs the next bootstrap an ldd run.
  if file and fs.mkdir_p(cache_dir, tonumber("700", 8)) then
    fs.write_atomic(file, encode_closure(libs), tonumber("600", 8))
  end
  return libs
end

-- Writes the generated inputs of a tarball (path -> content) into the
-- build directory. Plain writes, no fsync: the directory is private, read
-- once by build_tarball and removed when the bootstrap ends; nothing in it
-- has to survive a crash.
-- The generated files' directory before it is made (see M.build).
local PENDING_DIR = "(tools directory)"

-- Moves the generated files (and the entries naming them) from
-- PENDING_DIR into dir; returns the new generated table.
local function relocate(entries, generated, dir)
  local moved = {}
  for path, content in pairs(generated) do moved[dir .. path:sub(#PENDING_DIR + 1)] = content end
  for _, e in ipairs(entries) do
    if generated[e.src] then e.src = dir .. e.src:sub(#PENDING_DIR + 1) end
  end
  return moved
end

local function write_generated(generated)
  for path, content in pairs(generated) do
    local f, err = io.open(path, "wb")
    if not f then return nil, "cannot write " .. path .. ": " .. tostring(err) end
    local ok, werr = f:write(content)
    f:close()
    if not ok then return nil, "cannot write " .. path .. ": " .. tostring(werr) end
  end
  return true
end

--- Builds the tools tarball for `record` (a buildable record); returns
--- {path=, sha256=, size=} or nil, message; path is read-only (it may be
--- the process's shared copy). Tarballs are cached under JUJU_HOME/cache/tools
--- by a key over their inputs, so repeated bootstraps with an unchanged
--- engine do not compress the same files again.
function M.build(b, record, dir_or_maker)
  -- A maker (a function returning the directory or nil, message) is called
  -- only when the tarball is built: a cached one needs no directory.
  local dir = type(dir_or_maker) == "string" and dir_or_maker or PENDING_DIR
  local jujud = site.bin_dir .. "/jujud"
  if not fs.exists(jujud) then return nil, "cannot find jujud next to juju (" .. jujud .. ")" end
  local lua_root, so_dir = engine_parts()
  if not lua_root or not so_dir then return nil, "cannot find the engine's Lua and binding modules" end
  local cache = b.home and (b.home .. "/cache/tools")
  local generated = {}
  local mods = {}
  for _, n in ipairs(fs.list(so_dir) or {}) do
    if n:match("%.so$") then mods[#mods + 1] = so_dir .. "/" .. n end
  end
  table.sort(mods)
  local closure_of = { jujud }
  for _, m in ipairs(mods) do closure_of[#closure_of + 1] = m end
  local libs, lerr = closure_cached(closure_of, cache)
  if not libs then return nil, lerr end
  -- The generated files are keyed by their content and written into dir
  -- only when the tarball is built.
  local wrapper = dir .. "/jujud.sh"
  generated[wrapper] = M.WRAPPER
  local entries = {
    { src = wrapper, name = "jujud", mode = tonumber("755", 8) },
    { src = jujud, name = "bin/jujud", mode = tonumber("755", 8) },
  }
  for _, l in ipairs(libs) do
    entries[#entries + 1] = { src = l.path, name = "lib/" .. l.name, mode = tonumber("644", 8) }
  end
  local force = dir .. "/FORCE-VERSION"
  generated[force] = record.version
  entries[#entries + 1] = { src = force, name = "FORCE-VERSION", mode = tonumber("644", 8) }
  local site_file = dir .. "/juju_site.lua"
  generated[site_file] = tools_site(record.version)
  entries[#entries + 1] = { src = site_file, name = "share/lua/5.4/juju_site.lua", mode = tonumber("644", 8) }
  add_tree(entries, lua_root .. "/juju", "share/lua/5.4/juju", "%.lua$", M.TEST_ONLY)
  add_tree(entries, so_dir, "lib/lua/5.4/juju", "%.so$")
  -- (The core library, lib/libjujucore.so, comes with the library closure.)
  -- The provider scripts the environment uses, custom ones included.
  entries[#entries + 1] = { src = b.provider.path, name = "share/juju/providers/" .. b.provider.name .. ".lua",
    mode = tonumber("644", 8) }
  -- Level 1: with the libraries inside, 6 costs 2.5 times the time for
  -- 7% less size (bench/tools-tarball.md).
  local level = b.params.gzip_level or 1
  local key = cache_key(entries, generated) .. "-" .. level
  local known = recall(key)
  if known then return known end
  local cached = cache and string.format("%s/juju-%s-%s.tgz", cache, record.binary, key:sub(1, 16))
  if cached then
    local sum = fs.read_file(cached .. ".sha256")
    local st = fs.stat(cached)
    if sum and st and #sum >= 64 then
      return { path = cached, sha256 = sum:sub(1, 64), size = st.size, cached = true }
    end
  end
  if dir == PENDING_DIR then
    local made, merr = dir_or_maker()
    if not made then return nil, tostring(merr) end
    dir, generated = made, relocate(entries, generated, made)
  end
  local wok, werr = write_generated(generated)
  if not wok then return nil, werr end
  if cached and fs.mkdir_p(cache, tonumber("700", 8)) then
    local res = tools.build_tarball(cached, entries, { level = level })
    if res and fs.write_atomic(cached .. ".sha256", res.sha256, tonumber("600", 8)) then
      remember(key, res, cached)
      return { path = cached, sha256 = res.sha256, size = res.size }
    end
  end
  local out = string.format("%s/juju-%s.tgz", dir, record.binary)
  local res, terr = tools.build_tarball(out, entries, { level = level })
  if not res then return nil, terr end
  remember(key, res, out)
  return { path = out, sha256 = res.sha256, size = res.size }
end

--- The storage name of a tools tarball (spec 2.6).
function M.storage_name(stream, binary)
  return string.format("tools/%s/juju-%s.tgz", stream, binary)
end

--- The stream tools are stored under.
function M.stream(cfg) return envconfig.get(cfg, "agent-stream") end

return M
