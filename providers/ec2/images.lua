-- ec2.images: the machine image for a series, arch and region from
-- simplestreams image metadata ("image-ids" data, spec 1.4): sources
-- image-metadata-url then cloud-images.ubuntu.com, each through
-- streams/v1/index2.json then streams/v1/index.json, the index entry whose
-- clouds list names this region and endpoint, and the products file's
-- items (region, endpoint, root_store, virt inherited from version,
-- product and file; crsn aliases resolved). Newest version first; ssd
-- before ebs root stores, as Juju's ec2 provider preferred.
--
-- Only unsigned .json is read (as juju.simplestreams reads tools): this
-- engine carries no OpenPGP verifier, where Juju's ec2 provider asked for
-- signed image metadata only.
local json = require("juju.json")
local fs = require("juju.fs")
local http = require("juju.http")
local version = require("juju.version")

local M = {}

M.DEFAULT_SOURCE = "http://cloud-images.ubuntu.com/releases"
M.INDEXES = { "streams/v1/index2.json", "streams/v1/index.json" }
local MAX_SIZE = 64 * 1024 * 1024

--- The sources for cfg: image-metadata-url first, then the public one
--- (`.../<stream>` for a stream other than released).
function M.sources(cfg)
  local out = {}
  local url = cfg["image-metadata-url"]
  if type(url) == "string" and url ~= "" then
    if url:sub(1, 1) == "/" then url = "file://" .. url:gsub("/+$", "") .. "/images" end
    out[#out + 1] = url
  end
  local stream = cfg["image-stream"]
  if type(stream) ~= "string" or stream == "" or stream == "released" then
    out[#out + 1] = M.DEFAULT_SOURCE
  else
    out[#out + 1] = "http://cloud-images.ubuntu.com/" .. stream
  end
  return out
end

local function join(base, path)
  return (base:gsub("/+$", "")) .. "/" .. path
end

-- The document at url, decoded: doc, or nil, message (nil, nil: absent).
local function fetch(url, http_opts)
  local text
  if url:match("^file://") then
    text = fs.read_file(url:sub(8))
    if not text then return nil, nil end
  else
    local o = { retries = 1, max_size = MAX_SIZE, timeout = 60 }
    for k, v in pairs(http_opts or {}) do o[k] = v end
    local r, msg, _, resp = http.get(url, o)
    if not r then
      if resp and resp.status == 404 then return nil, nil end
      return nil, msg
    end
    text = r.body
  end
  local doc, err = json.decode(text)
  if type(doc) ~= "table" then return nil, string.format("%s: not JSON: %s", url, tostring(err)) end
  return doc
end

local function product_id(stream, series, arch)
  local v, err = version.series_version(series)
  if not v then return nil, err end
  local s = (stream == nil or stream == "" or stream == "released") and "" or ("." .. stream)
  return "com.ubuntu.cloud" .. s .. ":server:" .. v .. ":" .. arch
end

local function has_cloud(clouds, want)
  if type(clouds) ~= "table" or #clouds == 0 then return true end
  for _, c in ipairs(clouds) do
    if type(c) == "table" and c.region == want.region and c.endpoint == want.endpoint then return true end
  end
  return false
end

local function lists(products, ids)
  for _, p in ipairs(type(products) == "table" and products or {}) do
    if ids[p] then return true end
  end
  return false
end

local function sorted_desc(t)
  local keys = {}
  for k in pairs(type(t) == "table" and t or {}) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return a > b end)
  return keys
end

local ATTRS = { "region", "endpoint", "root_store", "virt", "crsn" }

-- Items of the products document for the wanted product ids and cloud.
local function collect(doc, ids, want, out)
  local aliases = type(doc._aliases) == "table" and doc._aliases.crsn or {}
  for pid, product in pairs(type(doc.products) == "table" and doc.products or {}) do
    if ids[pid] and type(product) == "table" then
      for _, vkey in ipairs(sorted_desc(product.versions)) do
        local ver = product.versions[vkey]
        for _, ikey in ipairs(sorted_desc(type(ver) == "table" and ver.items or nil)) do
          local item = ver.items[ikey]
          if type(item) == "table" and type(item.id) == "string" then
            local rec = { id = item.id, version = vkey, arch = ids[pid] }
            for _, a in ipairs(ATTRS) do
              rec[a] = item[a] or ver[a] or product[a] or doc[a]
            end
            local alias = rec.crsn and type(aliases) == "table" and aliases[rec.crsn]
            if type(alias) == "table" then
              rec.region, rec.endpoint = alias.region or rec.region, alias.endpoint or rec.endpoint
            end
            if rec.region == want.region and rec.endpoint == want.endpoint then out[#out + 1] = rec end
          end
        end
      end
    end
  end
end

local STORE_RANK = { ssd = 1, ebs = 2 }

--- Images for {series=, arches={...}, region=, endpoint=, stream=} from
--- sources: a list of {id, arch, virt, root_store, version}, best first,
--- or nil, message (naming the series, arches and region when none match).
function M.find(sources, want, http_opts)
  local ids = {}
  for _, arch in ipairs(want.arches) do
    local pid, err = product_id(want.stream, want.series, arch)
    if not pid then return nil, err end
    ids[pid] = arch
  end
  local out, errors = {}, {}
  for _, src in ipairs(sources) do
    for _, ipath in ipairs(M.INDEXES) do
      local index, ierr = fetch(join(src, ipath), http_opts)
      if ierr then errors[#errors + 1] = ierr end
      if index and type(index.index) == "table" then
        for _, key in ipairs(sorted_desc(index.index)) do
          local e = index.index[key]
          if type(e) == "table" and e.datatype == "image-ids" and type(e.path) == "string"
            and has_cloud(e.clouds, want) and lists(e.products, ids) then
            local doc, perr = fetch(join(src, e.path), http_opts)
            if perr then errors[#errors + 1] = perr end
            if doc then collect(doc, ids, want, out) end
          end
        end
        break
      end
    end
    if #out > 0 then break end
  end
  if #out == 0 then
    local msg = string.format("no %q images in %s with arches [%s]", want.series, want.region,
      table.concat(want.arches, " "))
    if #errors > 0 then msg = msg .. " (" .. table.concat(errors, "; ") .. ")" end
    return nil, msg
  end
  table.sort(out, function(a, b)
    local ra, rb = STORE_RANK[a.root_store] or 3, STORE_RANK[b.root_store] or 3
    if ra ~= rb then return ra < rb end
    if a.version ~= b.version then return a.version > b.version end
    return a.id < b.id
  end)
  -- Juju's ec2 provider uses the best root store present only.
  local best = STORE_RANK[out[1].root_store] or 3
  local kept = {}
  for _, r in ipairs(out) do
    if (STORE_RANK[r.root_store] or 3) == best then kept[#kept + 1] = r end
  end
  return kept
end

return M
