-- juju.simplestreams: Juju tools metadata in simplestreams format (spec 2.7).
--
-- Reading (find_tools) walks the data sources in order, each through
-- streams/v1/index2.json then the legacy streams/v1/index.json, an optional
-- mirror, and the products file, and returns the matching tools records.
-- Writing (marshal, write_metadata) produces the files `juju metadata
-- generate-tools` wrote in juju 1.25, byte for byte.
--
-- Only unsigned metadata (.json) is read: juju verified the clear-signed
-- .sjson variants with Canonical's "Juju Tools" OpenPGP key compiled into
-- the client, and this engine carries no OpenPGP verifier or key. Tools
-- lookups never required signatures, so skipping .sjson loses no source that
-- also publishes .json (streams.canonical.com publishes both).
local json = require("juju.json")
local version = require("juju.version")

local M = {}

M.INDEX_PATH = "streams/v1/index2.json"
M.LEGACY_INDEX_PATH = "streams/v1/index.json"
M.MIRRORS_PATH = "streams/v1/mirrors.json"
M.INDEX_FORMAT = "index:1.0"
M.PRODUCTS_FORMAT = "products:1.0"
M.MIRRORS_FORMAT = "mirrors:1.0"
M.DATATYPE = "content-download"
-- The 2013 layout named the tools content "com.ubuntu.juju:tools".
M.LEGACY_CONTENT_ID = "com.ubuntu.juju:tools"

-- Metadata files larger than this are refused by the default fetcher.
local MAX_METADATA_SIZE = 64 * 1024 * 1024

-- Key order of the written files (Go struct field order in juju 1.25).
local INDICES_ORDER = { "index", "updated", "format" }
local INDEX_ENTRY_ORDER = { "updated", "format", "datatype", "path", "products" }
local PRODUCTS_ORDER = { "products", "updated", "format", "content_id" }
local CATALOG_ORDER = { "version", "arch", "versions" }
local ITEM_ORDER = { "release", "version", "arch", "size", "path", "ftype", "sha256" }

--- "com.ubuntu.juju:<stream>:tools"
function M.content_id(stream)
  return "com.ubuntu.juju:" .. stream .. ":tools"
end

--- "com.ubuntu.juju:<series-version>:<arch>", or nil, message for an unknown series.
function M.product_id(series, arch)
  local v, err = version.series_version(series)
  if not v then return nil, err end
  return "com.ubuntu.juju:" .. v .. ":" .. arch
end

--- "streams/v1/com.ubuntu.juju-<stream>-tools.json"
function M.products_path(stream)
  return "streams/v1/com.ubuntu.juju-" .. stream .. "-tools.json"
end

-- ---------------------------------------------------------------------------
-- Small helpers

local function url_join(base, path)
  if base:sub(-1) == "/" then return base .. path end
  return base .. "/" .. path
end

local function as_object(v)
  if type(v) == "table" and not json.is_array(v) then return v end
  return nil
end

local function as_array(v)
  if type(v) == "table" and (json.is_array(v) or next(v) == nil) then return v end
  return nil
end

local function sorted_keys(t, descending)
  local keys = {}
  for k in pairs(t) do
    if type(k) == "string" then keys[#keys + 1] = k end
  end
  if descending then
    table.sort(keys, function(a, b) return a > b end)
  else
    table.sort(keys)
  end
  return keys
end

local function set_of(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

local DAYS = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" }
local MONTHS = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" }

--- Go's time.RFC1123Z of a Unix time in UTC ("Thu, 01 Jan 1970 00:00:00 +0000"),
--- with English names whatever the C locale says.
function M.rfc1123z(t)
  local d = os.date("!*t", t)
  return string.format("%s, %02d %s %04d %02d:%02d:%02d +0000", DAYS[d.wday], d.day, MONTHS[d.month],
    d.year, d.hour, d.min, d.sec)
end

-- ---------------------------------------------------------------------------
-- Fetching

local function file_url_path(url)
  local path = url:match("^file://(/.*)$")
  if not path then return nil end
  return (path:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- The default fetcher: juju.http when it is available (http, https and
-- file URLs), else file:// URLs only, read with juju.fs.
local function default_fetcher(opts)
  local have_http, http = pcall(require, "juju.http")
  if have_http and type(http) == "table" and http.get then
    return function(url)
      local resp, err, code = http.get(url, {
        retries = 2, insecure = opts.insecure and true or nil, max_size = MAX_METADATA_SIZE,
      })
      if not resp then return nil, err, code end
      if resp.status and resp.status >= 400 then
        return nil, string.format("GET %s: HTTP status %d", url, resp.status),
          (resp.status == 404 or resp.status == 410) and "ENOENT" or "EHTTP"
      end
      return resp.body or ""
    end
  end
  local fs = require("juju.fs")
  return function(url)
    local path = file_url_path(url)
    if not path then
      return nil, string.format("cannot fetch %s: no HTTP support in this build", url), "EUNSUPPORTED"
    end
    return fs.read_file(path)
  end
end

-- Fetches url and decodes it as a JSON object; nil, message, code on failure
-- (the fetcher's code, "ENOENT" for a missing file, "EINVAL" for bad JSON).
local function fetch_json(fetch, url)
  local text, err, code = fetch(url)
  if type(text) ~= "string" then
    return nil, err or string.format("cannot read %s", url), code or "EIO"
  end
  local doc, jerr = json.decode(text, url)
  if doc == nil then return nil, "invalid JSON in " .. tostring(jerr), "EINVAL" end
  if not as_object(doc) then
    return nil, string.format("invalid metadata in %s: expected a JSON object", url), "EINVAL"
  end
  return doc
end

-- ---------------------------------------------------------------------------
-- Reading: index, mirrors, products

-- Whether a list of {region=, endpoint=} names the wanted cloud; endpoints
-- compare with or without a trailing "/".
local function has_cloud(clouds, want)
  local function norm(e)
    e = type(e) == "string" and e or ""
    if e:sub(-1) ~= "/" then e = e .. "/" end
    return e
  end
  for _, c in ipairs(as_array(clouds) or {}) do
    if type(c) == "table" and (c.region or "") == (want.region or "") and norm(c.endpoint) == norm(want.endpoint) then
      return true
    end
  end
  return false
end

local function lists_any(products, wanted)
  for _, p in ipairs(as_array(products) or {}) do
    if wanted[p] then return true end
  end
  return false
end

-- Picks the index entry of the wanted content: right content id, datatype
-- and format, the wanted cloud if any, at least one wanted product.
local function select_index_entry(index, index_url, want)
  local entries = as_object(index.index)
  if not entries then
    return nil, string.format("invalid metadata in %s: no \"index\" object", index_url), "EINVAL"
  end
  local ids = { M.content_id(want.stream) }
  if want.stream == "released" then ids[2] = M.LEGACY_CONTENT_ID end
  local candidates = {}
  for _, id in ipairs(ids) do
    local e = as_object(entries[id])
    if e and e.datatype == M.DATATYPE and (e.format == nil or e.format == M.PRODUCTS_FORMAT) then
      candidates[#candidates + 1] = e
    end
  end
  if #candidates == 0 then
    -- Juju 1.25's text first (simplestreams' GetProductsPath: errors.NotFoundf("%q data")),
    -- then what was looked for and where.
    return nil, string.format("%q data not found (index %s has no %q entry)", M.DATATYPE, index_url, ids[1]),
      "ENOENT"
  end
  if want.region or want.endpoint then
    local in_cloud = {}
    for _, e in ipairs(candidates) do
      if type(e.clouds) ~= "table" or next(e.clouds) == nil or has_cloud(e.clouds, want) then in_cloud[#in_cloud + 1] = e end
    end
    if #in_cloud == 0 then
      return nil, string.format("index %s has no tools data for region %q endpoint %q", index_url,
        want.region or "", want.endpoint or ""), "ENOENT"
    end
    candidates = in_cloud
  end
  for _, e in ipairs(candidates) do
    if lists_any(e.products, want.product_ids) and type(e.path) == "string" then return e end
  end
  return nil, string.format("index %s lists none of the wanted products (%s)", index_url,
    table.concat(want.product_list, ", ")), "ENOENT"
end

-- Follows streams/v1/mirrors.json to a mirror of the wanted content for the
-- wanted cloud; returns {base=, path=} or nil (no usable mirror is not an
-- error: the source's own products file is used).
local function find_mirror(fetch, base, want)
  local refs_doc = fetch_json(fetch, url_join(base, M.MIRRORS_PATH))
  local refs = refs_doc and as_object(refs_doc.mirrors)
  local list = refs and as_array(refs[M.content_id(want.stream)])
  if not list then return nil end
  local ref
  for _, r in ipairs(list) do
    if as_object(r) and r.datatype == M.DATATYPE and has_cloud(r.clouds, want) then ref = r; break end
  end
  if not ref then -- a mirror reference for no cloud in particular
    for _, r in ipairs(list) do
      if as_object(r) and (type(r.clouds) ~= "table" or next(r.clouds) == nil) then ref = r; break end
    end
  end
  if not ref or type(ref.path) ~= "string" then return nil end
  local mirrors_doc = fetch_json(fetch, url_join(base, ref.path))
  if not mirrors_doc or (mirrors_doc.format ~= nil and mirrors_doc.format ~= M.MIRRORS_FORMAT) then return nil end
  local infos = as_object(mirrors_doc.mirrors)
  for _, info in ipairs(infos and as_array(infos[M.content_id(want.stream)]) or {}) do
    if as_object(info) and type(info.mirror) == "string" and type(info.path) == "string"
      and has_cloud(info.clouds, want) then
      return { base = info.mirror, path = info.path }
    end
  end
  return nil
end

-- An item attribute (release, version, arch) the item may leave to its
-- version collection or product (simplestreams denormalisation).
local function inherited(field, item, ...)
  if item[field] ~= nil then return item[field] end
  for i = 1, select("#", ...) do
    local parent = select(i, ...)
    if parent[field] ~= nil then return parent[field] end
  end
  return nil
end

local function item_matches(rec, number, want)
  if not want.series_set[rec.series] or not want.arch_set[rec.arch] then return false end
  if want.version then return version.compare(number, want.version) == 0 end
  if number.major ~= want.major then return false end
  return want.minor == -1 or number.minor == want.minor
end

-- Adds the matching items of a products document to out; a binary version
-- already collected is kept (newer collections are read first).
local function collect_tools(doc, products_url, base, want, out, seen)
  if doc.format ~= M.PRODUCTS_FORMAT then
    return nil, string.format("unexpected products file format %q, expected %q at URL %q",
      tostring(doc.format), M.PRODUCTS_FORMAT, products_url), "EINVAL"
  end
  local products = as_object(doc.products)
  if not products then
    return nil, string.format("invalid metadata in %s: no \"products\" object", products_url), "EINVAL"
  end
  local any_product = false
  for _, pid in ipairs(want.product_list) do
    local catalog = as_object(products[pid])
    if catalog then
      any_product = true
      local versions = as_object(catalog.versions) or {}
      for _, vkey in ipairs(sorted_keys(versions, true)) do
        local coll = as_object(versions[vkey])
        local items = coll and as_object(coll.items) or {}
        for _, item_id in ipairs(sorted_keys(items)) do
          local item = as_object(items[item_id])
          if item then
            local rec = {
              version = inherited("version", item, coll, catalog),
              series = inherited("release", item, coll, catalog),
              arch = inherited("arch", item, coll, catalog),
              path = item.path,
            }
            local number = type(rec.version) == "string" and version.parse(rec.version)
            if number and type(rec.series) == "string" and type(rec.arch) == "string"
              and type(rec.path) == "string" and item_matches(rec, number, want) then
              rec.binary = string.format("%s-%s-%s", rec.version, rec.series, rec.arch)
              if not seen[rec.binary] then
                seen[rec.binary] = true
                rec.url = url_join(base, rec.path)
                rec.size = math.tointeger(item.size) or 0
                rec.sha256 = type(item.sha256) == "string" and item.sha256 or ""
                rec.ftype = item.ftype
                out[#out + 1] = rec
              end
            end
          end
        end
      end
    end
  end
  if not any_product then
    return nil, string.format("products file %s has none of the wanted products (%s)", products_url,
      table.concat(want.product_list, ", ")), "ENOENT"
  end
  return out
end

-- A source's index (index2, then legacy): index, index_url, or nil,
-- message, code; what names the metadata in messages ("tools", "image").
local function load_index(fetch, base, what)
  local index, index_url, err, code
  for _, path in ipairs({ M.INDEX_PATH, M.LEGACY_INDEX_PATH }) do
    index_url = url_join(base, path)
    index, err, code = fetch_json(fetch, index_url)
    -- Only a missing (or forbidden) index2 falls back to the legacy index.
    if index or (code ~= "ENOENT" and code ~= "EACCES") then break end
  end
  if not index then
    if code == "ENOENT" or code == "EACCES" then
      return nil, string.format("no %s metadata index at %s or %s", what, url_join(base, M.INDEX_PATH),
        url_join(base, M.LEGACY_INDEX_PATH)), "ENOENT"
    end
    return nil, err, code
  end
  if index.format ~= M.INDEX_FORMAT then
    return nil, string.format("unexpected index file format %q, expected %q at URL %q",
      tostring(index.format), M.INDEX_FORMAT, index_url), "EINVAL"
  end
  return index, index_url
end

-- One data source: index (index2, then legacy), mirror, products file.
local function search_source(source, want, fetch)
  local base = source.url
  local index, index_url, err = load_index(fetch, base, "tools")
  if not index then return nil, index_url, err end
  local code
  -- Mirrors are chosen by cloud, so without a region or endpoint none can match.
  local mirror = (want.region or want.endpoint) and find_mirror(fetch, base, want) or nil
  local products_base, products_path
  if mirror then
    products_base, products_path = mirror.base, mirror.path
  else
    local entry
    entry, err, code = select_index_entry(index, index_url, want)
    if not entry then return nil, err, code end
    products_base, products_path = base, entry.path
  end
  local products_url = url_join(products_base, products_path)
  local doc
  doc, err, code = fetch_json(fetch, products_url)
  if not doc then
    return nil, string.format("cannot read the products file named by %s: %s", index_url, tostring(err)), code
  end
  return collect_tools(doc, products_url, products_base, want, {}, {})
end

local function all_known_series()
  local out = {}
  for _, os_name in ipairs({ "ubuntu", "windows", "centos", "arch", "debian" }) do
    for _, s in ipairs(version.os_series(os_name)) do out[#out + 1] = s end
  end
  return out
end

local function string_list(v, what, default)
  if v == nil then return default end
  if type(v) == "string" then return { v } end
  if type(v) ~= "table" then error(string.format("bad constraint %s (list of strings expected)", what), 3) end
  for _, s in ipairs(v) do
    if type(s) ~= "string" then error(string.format("bad constraint %s (list of strings expected)", what), 3) end
  end
  return v
end

-- Normalises the caller's constraint into what the matchers use.
local function make_want(constraint, opts)
  local want = {
    stream = constraint.stream or "released",
    region = opts.region, endpoint = opts.endpoint,
    minor = constraint.minor or -1,
  }
  if type(want.stream) ~= "string" or want.stream == "" then error("bad constraint stream (string expected)", 3) end
  if constraint.version ~= nil then
    local n = type(constraint.version) == "table" and constraint.version or version.parse(constraint.version)
    if not n then error(string.format("bad constraint version %q", tostring(constraint.version)), 3) end
    want.version = n
  else
    want.major = math.tointeger(constraint.major)
    if not want.major then error("bad constraint: major (integer) or version required", 3) end
    if not math.tointeger(want.minor) then error("bad constraint minor (integer expected)", 3) end
  end
  local series = string_list(constraint.series, "series", nil) or all_known_series()
  local arches = string_list(constraint.arches, "arches", nil) or version.arches
  want.series_set, want.arch_set = set_of(series), set_of(arches)
  want.product_list, want.product_ids = {}, {}
  for _, s in ipairs(series) do
    for _, a in ipairs(arches) do
      local pid = M.product_id(s, a) -- unknown series simply have no product
      if pid and not want.product_ids[pid] then
        want.product_ids[pid] = true
        want.product_list[#want.product_list + 1] = pid
      end
    end
  end
  return want
end

local function describe_want(want)
  local v
  if want.version then
    v = tostring(want.version)
  elseif want.minor == -1 then
    v = want.major .. ".*"
  else
    v = want.major .. "." .. want.minor .. ".*"
  end
  return string.format("version %s in stream %q", v, want.stream)
end

--- Finds tools in simplestreams metadata.
--- sources: array of {url=, description=}, tried in order; the first that
---   yields matching tools wins.
--- constraint: {stream=, major=, minor= (-1 any), version= (exact),
---   series= (list; default all known), arches= (list; default all supported)}.
--- opts: fetch = function(url) -> text | nil, msg, code ("ENOENT" when
---   missing); region=, endpoint= (cloud filtering and mirrors); insecure=.
--- Returns records {version, series, arch, url, size, sha256, binary, path,
--- ftype} sorted by binary, or nil, message, code ("ENOENT" when nothing
--- matched anywhere, else the first other failure's code).
function M.find_tools(sources, constraint, opts)
  if type(sources) ~= "table" then error("bad argument #1 to 'find_tools' (table of sources expected)", 2) end
  if type(constraint) ~= "table" then error("bad argument #2 to 'find_tools' (constraint table expected)", 2) end
  opts = opts or {}
  if type(opts) ~= "table" then error("bad argument #3 to 'find_tools' (table expected)", 2) end
  if opts.fetch ~= nil and type(opts.fetch) ~= "function" then error("bad option fetch (function expected)", 2) end
  for i, s in ipairs(sources) do
    if type(s) ~= "table" or type(s.url) ~= "string" or s.url == "" then
      error(string.format("bad source #%d (table with a url expected)", i), 2)
    end
  end
  local want = make_want(constraint, opts)
  local fetch = opts.fetch or default_fetcher(opts)
  local reasons, hard_code = {}, nil
  for _, source in ipairs(sources) do
    local found, err, code = search_source(source, want, fetch)
    if found and #found > 0 then
      table.sort(found, function(a, b) return a.binary < b.binary end)
      return found
    end
    if not found then
      if code ~= "ENOENT" and not hard_code then hard_code = code or "EIO" end
    else
      err = "no matching tools in " .. source.url
    end
    reasons[#reasons + 1] = string.format("%s: %s", source.description or source.url, err)
  end
  if #sources == 0 then reasons[1] = "no tools sources" end
  return nil, string.format("no tools metadata found for %s: %s", describe_want(want), table.concat(reasons, "; ")),
    hard_code or "ENOENT"
end

-- ---------------------------------------------------------------------------
-- Image metadata ("image-ids")

M.IMAGE_DATATYPE = "image-ids"

--- The image product id: "com.ubuntu.cloud[.<stream>]:server:<version>:<arch>".
function M.image_product_id(stream, series, arch)
  local v, err = version.series_version(series)
  if not v then return nil, err end
  local s = (stream == nil or stream == "" or stream == "released") and "" or ("." .. stream)
  return "com.ubuntu.cloud" .. s .. ":server:" .. v .. ":" .. arch
end

local IMAGE_ATTRS = { "region", "endpoint", "root_store", "virt", "crsn" }

-- The items of an image products document for the wanted product ids
-- (id -> arch) in the wanted cloud; region, endpoint, root_store, virt are
-- inherited from version, product and document, crsn aliases resolved.
local function collect_images(doc, ids, want, out)
  local aliases = as_object(doc._aliases) and as_object(doc._aliases.crsn) or {}
  for pid, product in pairs(as_object(doc.products) or {}) do
    if ids[pid] and as_object(product) then
      local versions = as_object(product.versions) or {}
      for _, vkey in ipairs(sorted_keys(versions, true)) do
        local coll = as_object(versions[vkey]) or {}
        local items = as_object(coll.items) or {}
        for _, ikey in ipairs(sorted_keys(items, true)) do
          local item = as_object(items[ikey])
          if item and type(item.id) == "string" then
            local rec = { id = item.id, version = vkey, arch = ids[pid] }
            for _, a in ipairs(IMAGE_ATTRS) do rec[a] = inherited(a, item, coll, product, doc) end
            local alias = rec.crsn and as_object(aliases[rec.crsn])
            if alias then rec.region, rec.endpoint = alias.region or rec.region, alias.endpoint or rec.endpoint end
            if has_cloud({ rec }, want) then out[#out + 1] = rec end
          end
        end
      end
    end
  end
end

--- Finds machine images in simplestreams image metadata.
--- sources: array of {url=}, tried in order; the first with matching
---   images wins. want: {series=, arches= (list), region=, endpoint=,
---   stream=}. opts: fetch (as find_tools), insecure.
--- Every index entry of datatype image-ids for the cloud (or for no cloud in
--- particular) that lists a wanted product is read. Returns records {id,
--- arch, version, region, endpoint, root_store, virt}, newest version
--- first, or nil, message (naming the series, arches and region), code.
function M.find_images(sources, want, opts)
  opts = opts or {}
  local ids = {}
  for _, arch in ipairs(want.arches) do
    local pid, err = M.image_product_id(want.stream, want.series, arch)
    if not pid then return nil, err, "EINVAL" end
    ids[pid] = arch
  end
  local fetch = opts.fetch or default_fetcher(opts)
  local out, errors = {}, {}
  for _, source in ipairs(sources) do
    local index, index_url, code = load_index(fetch, source.url, "image")
    if not index and code ~= "ENOENT" then errors[#errors + 1] = index_url end
    local entries = index and as_object(index.index) or {}
    for _, key in ipairs(sorted_keys(entries, true)) do
      local e = as_object(entries[key])
      local clouds = e and as_array(e.clouds)
      if e and e.datatype == M.IMAGE_DATATYPE and type(e.path) == "string"
        and (not clouds or #clouds == 0 or has_cloud(clouds, want)) and lists_any(e.products, ids) then
        local doc, perr, pcode = fetch_json(fetch, url_join(source.url, e.path))
        if doc then collect_images(doc, ids, want, out) elseif pcode ~= "ENOENT" then errors[#errors + 1] = perr end
      end
    end
    if #out > 0 then break end
  end
  if #out == 0 then
    local msg = string.format("no %q images in %s with arches [%s]", want.series, tostring(want.region),
      table.concat(want.arches, " "))
    if #errors > 0 then msg = msg .. " (" .. table.concat(errors, "; ") .. ")" end
    return nil, msg, #errors > 0 and "EIO" or "ENOENT"
  end
  table.sort(out, function(a, b)
    if a.version ~= b.version then return a.version > b.version end
    return a.id < b.id
  end)
  return out
end

-- ---------------------------------------------------------------------------
-- Writing

local function product_files(stream, records, stamp, vkey)
  local products, ids, seen_ids = {}, {}, {}
  for _, r in ipairs(records) do
    local release = r.release or r.series
    local pid = type(release) == "string" and type(r.arch) == "string" and M.product_id(release, r.arch)
    if pid then -- records of unknown series are dropped, as juju did
      if not seen_ids[pid] then
        seen_ids[pid] = true
        ids[#ids + 1] = pid
      end
      local item = json.ordered({
        release = release, version = r.version, arch = r.arch,
        size = math.tointeger(r.size) or 0, path = r.path or "",
        ftype = r.ftype or "tar.gz", sha256 = r.sha256 or "",
      }, ITEM_ORDER)
      local item_id = string.format("%s-%s-%s", r.version, release, r.arch)
      local catalog = products[pid]
      if catalog then
        catalog.versions[vkey].items[item_id] = item
      else
        -- A product's version and arch come from its first record.
        products[pid] = json.ordered({
          version = r.version ~= "" and r.version or nil, arch = r.arch ~= "" and r.arch or nil,
          versions = { [vkey] = { items = { [item_id] = item } } },
        }, CATALOG_ORDER)
      end
    end
  end
  table.sort(ids)
  local doc = json.ordered({
    products = products, updated = stamp, format = M.PRODUCTS_FORMAT, content_id = M.content_id(stream),
  }, PRODUCTS_ORDER)
  return doc, ids
end

--- The metadata files for metadata = {stream = {record, ...}}; records are
--- {release (or series), version, arch, size, path, ftype, sha256}. The
--- index lists every stream; product files are made for the streams listed
--- in `streams` (default: all). updated_unix defaults to now. Returns a table
--- path -> text, paths relative to the tools base ("streams/v1/...").
function M.marshal(metadata, streams, updated_unix)
  if type(metadata) ~= "table" then error("bad argument #1 to 'marshal' (table of stream -> records expected)", 2) end
  for stream, records in pairs(metadata) do
    if type(stream) ~= "string" or type(records) ~= "table" then
      error("bad argument #1 to 'marshal' (table of stream -> records expected)", 2)
    end
  end
  updated_unix = updated_unix or os.time()
  local stamp = M.rfc1123z(updated_unix)
  local vkey = os.date("!%Y%m%d", updated_unix)
  local wanted = streams and set_of(streams) or nil
  local files, index, legacy = {}, {}, nil
  for _, stream in ipairs(sorted_keys(metadata)) do
    local doc, ids = product_files(stream, metadata[stream], stamp, vkey)
    local entry = json.ordered({
      updated = stamp, format = M.PRODUCTS_FORMAT, datatype = M.DATATYPE,
      path = M.products_path(stream), products = json.array(ids),
    }, INDEX_ENTRY_ORDER)
    index[M.content_id(stream)] = entry
    if stream == "released" then legacy = { [M.content_id(stream)] = entry } end
    if not wanted or wanted[stream] then
      files[M.products_path(stream)] = assert(json.encode(doc, { indent = 4 }))
    end
  end
  local function indices(entries)
    return json.ordered({ index = entries, updated = stamp, format = M.INDEX_FORMAT }, INDICES_ORDER)
  end
  files[M.INDEX_PATH] = assert(json.encode(indices(index), { indent = 4 }))
  if legacy then files[M.LEGACY_INDEX_PATH] = assert(json.encode(indices(legacy), { indent = 4 })) end
  return files
end

--- Writes the metadata files under tools/ of a storage (an object with
--- :put(name, data)) or of a local directory (DIR/tools/streams/v1/...,
--- which find_tools reads back as the source file://DIR/tools). Product
--- files go first, so a reader never sees an index naming a missing file.
--- opts.updated: Unix time to stamp (default now). Returns the written names.
function M.write_metadata(storage_or_dir, metadata, streams, opts)
  opts = opts or {}
  local put
  if type(storage_or_dir) == "string" then
    local fs = require("juju.fs")
    put = function(name, data)
      local path = storage_or_dir .. "/" .. name
      local ok, err, code = fs.mkdir_p(path:match("^(.*)/[^/]*$"), tonumber("755", 8))
      if not ok then return nil, err, code end
      return fs.write_atomic(path, data, tonumber("644", 8))
    end
  elseif (type(storage_or_dir) == "table" or type(storage_or_dir) == "userdata") and storage_or_dir.put then
    put = function(name, data) return storage_or_dir:put(name, data) end
  else
    error("bad argument #1 to 'write_metadata' (directory or storage expected)", 2)
  end
  local files = M.marshal(metadata, streams, opts.updated)
  local names = {}
  for name in pairs(files) do
    if name ~= M.INDEX_PATH and name ~= M.LEGACY_INDEX_PATH then names[#names + 1] = name end
  end
  table.sort(names)
  names[#names + 1] = M.INDEX_PATH
  if files[M.LEGACY_INDEX_PATH] then names[#names + 1] = M.LEGACY_INDEX_PATH end
  local written = {}
  for _, name in ipairs(names) do
    local target = "tools/" .. name
    local ok, err, code = put(target, files[name])
    if not ok then
      return nil, string.format("cannot write tools metadata %s: %s", target, tostring(err)), code or "EIO"
    end
    written[#written + 1] = target
  end
  return written
end

return M
