-- azure_fault_matrix_spec.lua (#integration): the cloud fault matrix of
-- tests/cloudmatrix.lua on the azure provider, against the Service
-- Management API test server and azurite (tests/servers/azure-mgmt,
-- tests/servers/azure-blob; tests/clouds/azure.lua): every management API
-- call of a clean bootstrap + destroy-environment, read from the server's
-- /_test/calls, x {error, throttled, timeout, reset, SIGINT}, with the built
-- `juju` as a subprocess. The servers on 127.0.0.85, test hosts
-- 127.0.0.86..89, pool addresses 127.0.8.86..89.
require("cloudmatrix").run({ describe = describe, it = it, setup = setup, teardown = teardown, assert = assert },
  require("clouds.azure"), { address_base = 85, request_timeout = 2 })
