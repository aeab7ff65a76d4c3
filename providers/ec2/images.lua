-- ec2.images: the machine image for a series, arch and region from
-- simplestreams image metadata ("image-ids" data, spec 1.4, read by
-- juju.simplestreams.find_images): sources image-metadata-url then
-- cloud-images.ubuntu.com. Newest version first; ssd before ebs root
-- stores, as Juju's ec2 provider preferred.
--
-- Only unsigned .json is read (as juju.simplestreams reads tools): this
-- engine carries no OpenPGP verifier, where Juju's ec2 provider asked for
-- signed image metadata only.
local cloud = require("juju.cloud.provider")
local simplestreams = require("juju.lazy")("juju.simplestreams")

local M = {}

M.DEFAULT_SOURCE = cloud.DEFAULT_IMAGE_SOURCE

--- The sources for cfg: image-metadata-url first, then the public one
--- (`.../<stream>` for a stream other than released).
function M.sources(cfg) return cloud.image_sources(cfg) end

local STORE_RANK = { ssd = 1, ebs = 2 }

--- Images for {series=, arches={...}, region=, endpoint=, stream=} from
--- sources (juju.simplestreams.find_images): a list of {id, arch, virt,
--- root_store, version}, best first, or nil, message (naming the series,
--- arches and region when none match).
function M.find(sources, want, http_opts)
  local list = {}
  for i, url in ipairs(sources) do list[i] = { url = url } end
  local out, err = simplestreams.find_images(list, want, { fetch = cloud.fetcher(http_opts) })
  if not out then return nil, err end
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
