-- bench/storage_child.lua: one put_file or get_to_file with one environ
-- storage backend, in a process of its own so that its peak memory belongs
-- to the transfer alone. Run by bench/storage.lua as
--   juju lua bench/storage_child.lua put|get NAME PATH
-- with BENCH_STORE (JSON: {backend=, opts=}) in the environment: the
-- credentials of the loopback emulators never go on a command line.
local here = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = here .. "/?.lua;" .. package.path
local json = require("juju.json")
local open = require("storage_backends").open

local mode, name, path = table.unpack(arg, 1, 3)
local spec = assert(json.decode(assert(os.getenv("BENCH_STORE"), "BENCH_STORE not set")))
local st = assert(open(spec.backend, spec.opts))
if mode == "put" then
  assert(st:put_file(name, path))
elseif mode == "get" then
  assert(st:get_to_file(name, path))
else
  error("usage: storage_child.lua put|get NAME PATH")
end
st:close()
return 0
