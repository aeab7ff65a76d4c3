-- bench/storage_s3_child.lua: one put_file or get_to_file with
-- juju.cloud.storage.s3 in a process of its own, so its peak memory
-- belongs to the transfer alone. Run by bench/storage_s3.lua as
--   juju lua bench/storage_s3_child.lua put|get NAME PATH
-- with S3_ENDPOINT and S3_SECRET in the environment (s3rver's test keys).
local s3 = require("juju.cloud.storage.s3")

local mode, name, path = table.unpack(arg, 1, 3)
local st = assert(s3.new{ endpoint = assert(os.getenv("S3_ENDPOINT")), region = "us-east-1", bucket = "bench",
  access_key = "S3RVER", secret_key = assert(os.getenv("S3_SECRET")), create = false })
if mode == "put" then
  assert(st:put_file(name, path))
elseif mode == "get" then
  assert(st:get_to_file(name, path))
else
  error("usage: storage_s3_child.lua put|get NAME PATH")
end
st:close()
return 0
