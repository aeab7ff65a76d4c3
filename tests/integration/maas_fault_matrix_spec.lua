-- maas_fault_matrix_spec.lua (#integration): the cloud fault matrix of
-- tests/cloudmatrix.lua on the maas provider, against the MAAS test server
-- (tests/servers/maas; tests/clouds/maas.lua): every MAAS API call (nodes
-- and files) of a clean bootstrap + destroy-environment, read from the
-- server's /_test/calls, x {error, throttled, timeout, reset, SIGINT}, with
-- the built `juju` as a subprocess. The server on 127.0.0.34, test hosts
-- 127.0.0.35..39.
require("cloudmatrix").run({ describe = describe, it = it, setup = setup, teardown = teardown, assert = assert },
  require("clouds.maas"), { address_base = 34, request_timeout = 2 })
