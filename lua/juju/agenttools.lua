-- juju.agenttools: finding, choosing and building the agent tools of
-- machine 0 (spec steps 7.6, 9; sections 2.6, 2.7).
local fs = require("juju.fs")
local http = require("juju.http")
local crypto = require("juju.crypto")
local sys = require("juju.sys")
local tools = require("juju.tools")
local site = require("juju_site")
local version = require("juju.version")
local simplestreams = require("juju.simplestreams")
local envconfig = require("juju.environs.config")

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
  local storage = b:storage()
  if storage:exists("tools/streams/v1/index2.json") or storage:exists("tools/streams/v1/index.json") then
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

--- A metadata fetcher honouring the environment's proxies and TLS setting.
function M.fetcher(cfg)
  local proxy
  if cfg["http-proxy"] or cfg["https-proxy"] or cfg["no-proxy"] then
    proxy = { http = cfg["http-proxy"], https = cfg["https-proxy"], no_proxy = cfg["no-proxy"] }
  end
  return function(url)
    local r, err, code = http.get(url, {
      retries = 2, connect_timeout = 30, idle_timeout = 60, max_size = 64 * 1024 * 1024,
      proxy = proxy, insecure = cfg["ssl-hostname-verification"] == false,
    })
    if not r then return nil, err, code end
    return r.body
  end
end

--- Host facts for locally built tools.
function M.host()
  local series, os_name = version.host_series(sys)
  return { series = series, os = os_name, arch = sys.arch() }
end

-- Locally buildable entries: every known series of the host's OS, host arch,
-- client version with build+1, no URL.
local function buildable(host)
  local out = {}
  local n = version.with_build(version.current, version.current.build + 1)
  local series_list = version.os_series(host.os)
  if #series_list == 0 then series_list = { host.series } end
  for _, s in ipairs(series_list) do
    out[#out + 1] = { version = tostring(n), series = s, arch = host.arch,
      binary = string.format("%s-%s-%s", tostring(n), s, host.arch) }
  end
  return out
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

local function add_tree(entries, src_dir, prefix, pattern)
  local names = fs.list(src_dir) or {}
  for _, n in ipairs(names) do
    local p = src_dir .. "/" .. n
    local st = fs.stat(p)
    if st and st.type == "dir" then
      add_tree(entries, p, prefix .. "/" .. n, pattern)
    elseif st and st.type == "file" and n:match(pattern) then
      entries[#entries + 1] = { src = p, name = prefix .. "/" .. n }
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

-- A cache key for the tarball of these entries: their names, modes and the
-- identity of each source (size and mtime, or the content of generated files).
local function cache_key(entries, generated)
  local parts = {}
  for _, e in ipairs(entries) do
    local st = fs.stat(e.src)
    local ident = generated[e.src] and crypto.sha256(generated[e.src])
      or string.format("%d:%s", st and st.size or -1, tostring(st and st.mtime))
    local src = generated[e.src] and "(generated)" or e.src
    parts[#parts + 1] = string.format("%s\t%s\t%s\t%s", e.name, tostring(e.mode), src, ident)
  end
  return crypto.sha256(table.concat(parts, "\n"))
end

--- Builds the tools tarball for `record` (a buildable record); returns
--- {path=, sha256=, size=} or nil, message. Tarballs are cached under
--- JUJU_HOME/cache/tools by a key over their inputs, so repeated bootstraps
--- with an unchanged engine do not compress the same files again.
function M.build(b, record, dir)
  local jujud = site.bin_dir .. "/jujud"
  if not fs.exists(jujud) then return nil, "cannot find jujud next to juju (" .. jujud .. ")" end
  local lua_root, so_dir = engine_parts()
  if not lua_root or not so_dir then return nil, "cannot find the engine's Lua and binding modules" end
  local generated = {}
  local entries = { { src = jujud, name = "jujud", mode = tonumber("755", 8) } }
  local force = dir .. "/FORCE-VERSION"
  generated[force] = record.version
  local ok, err = fs.write_atomic(force, record.version, tonumber("644", 8))
  if not ok then return nil, err end
  entries[#entries + 1] = { src = force, name = "FORCE-VERSION", mode = tonumber("644", 8) }
  local site_file = dir .. "/juju_site.lua"
  generated[site_file] = tools_site(record.version)
  ok, err = fs.write_atomic(site_file, generated[site_file], tonumber("644", 8))
  if not ok then return nil, err end
  entries[#entries + 1] = { src = site_file, name = "share/lua/5.4/juju_site.lua", mode = tonumber("644", 8) }
  add_tree(entries, lua_root .. "/juju", "share/lua/5.4/juju", "%.lua$")
  add_tree(entries, so_dir, "lib/lua/5.4/juju", "%.so$")
  -- The core library the modules (RUNPATH $ORIGIN/../../..) and jujud
  -- (RUNPATH $ORIGIN/lib) load.
  local core_lib = so_dir:gsub("/lua/5%.4/juju$", "") .. "/libjujucore.so"
  if not fs.exists(core_lib) then return nil, "cannot find the engine's core library (" .. core_lib .. ")" end
  entries[#entries + 1] = { src = core_lib, name = "lib/libjujucore.so", mode = tonumber("755", 8) }
  -- The provider scripts the environment uses, custom ones included.
  entries[#entries + 1] = { src = b.provider.path, name = "share/juju/providers/" .. b.provider.name .. ".lua",
    mode = tonumber("644", 8) }
  local level = b.params.gzip_level or 6
  local cache = b.home and (b.home .. "/cache/tools")
  local key = cache_key(entries, generated) .. "-" .. level
  if cache then
    local cached = string.format("%s/juju-%s-%s.tgz", cache, record.binary, key:sub(1, 16))
    local sum = fs.read_file(cached .. ".sha256")
    local st = fs.stat(cached)
    if sum and st and #sum >= 64 then
      return { path = cached, sha256 = sum:sub(1, 64), size = st.size, cached = true }
    end
    if fs.mkdir_p(cache, tonumber("700", 8)) then
      local res = tools.build_tarball(cached, entries, { level = level })
      if res and fs.write_atomic(cached .. ".sha256", res.sha256, tonumber("600", 8)) then
        return { path = cached, sha256 = res.sha256, size = res.size }
      end
    end
  end
  local out = string.format("%s/juju-%s.tgz", dir, record.binary)
  local res, terr = tools.build_tarball(out, entries, { level = level })
  if not res then return nil, terr end
  return { path = out, sha256 = res.sha256, size = res.size }
end

--- The storage name of a tools tarball (spec 2.6).
function M.storage_name(stream, binary)
  return string.format("tools/%s/juju-%s.tgz", stream, binary)
end

--- The stream tools are stored under.
function M.stream(cfg) return envconfig.get(cfg, "agent-stream") end

return M
