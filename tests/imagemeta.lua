-- tests/imagemeta.lua: simplestreams image metadata for one cloud, written
-- as an image-metadata-url directory (streams/v1/index.json + products),
-- for the provider specs and the emulated clouds.
--
--   require("imagemeta").write(dir, { region = "RegionOne", endpoint = auth_url,
--     images = { { id = "img-1", series = "bookworm", arch = "amd64" } },
--     content = "com.ubuntu.cloud:released:openstack", root_store = "ebs", virt = "hvm" })
local json = require("juju.json")
local fs = require("juju.fs")

local M = {}

--- Writes dir/streams/v1/{index.json, images.json}; returns "file://" .. dir.
function M.write(dir, o)
  assert(fs.mkdir_p(dir .. "/streams/v1", tonumber("700", 8)))
  local content = o.content or "com.ubuntu.cloud:released:imagemetadata"
  local cloud = { region = o.region, endpoint = o.endpoint }
  local products, ids = {}, {}
  for _, img in ipairs(o.images) do
    local pid = "com.ubuntu.cloud:server:" .. img.series .. ":" .. img.arch
    if not products[pid] then
      products[pid] = { arch = img.arch, release = img.series, versions = {} }
      ids[#ids + 1] = pid
    end
    products[pid].versions[img.version or "20250101"] = { items = { [img.item or "a"] = { id = img.id } } }
  end
  table.sort(ids)
  assert(fs.write_atomic(dir .. "/streams/v1/index.json", assert(json.encode { format = "index:1.0", index = {
    [content] = { datatype = "image-ids", format = "products:1.0", path = "streams/v1/images.json",
      clouds = { cloud }, products = ids } } })))
  assert(fs.write_atomic(dir .. "/streams/v1/images.json", assert(json.encode { format = "products:1.0",
    content_id = content, region = o.region, endpoint = o.endpoint, root_store = o.root_store or "ebs",
    virt = o.virt or "hvm", products = products })))
  return "file://" .. dir
end

return M
