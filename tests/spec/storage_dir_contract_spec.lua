-- storage_dir_contract_spec.lua: the storage behaviour suite on the local
-- directory backend (juju.storage.open_dir).
local storage = require("juju.storage")
local fs = require("juju.fs")

local root = assert(fs.mkdtemp((os.getenv("TMPDIR") or "/tmp") .. "/juju-dir-contract-"))
teardown(function() fs.remove_tree(root) end)

require("spec.storage_contract").run(describe, it, assert, function(name)
  return storage.open_dir(root .. "/" .. name)
end, { kind = "directory" })

-- The same contract without fsyncs (the dummy provider's emulated cloud).
require("spec.storage_contract").run(describe, it, assert, function(name)
  return storage.open_dir(root .. "/nondurable-" .. name, { durable = false })
end, { kind = "directory (durable = false)" })
