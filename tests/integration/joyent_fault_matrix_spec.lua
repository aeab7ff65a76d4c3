-- joyent_fault_matrix_spec.lua (#integration): the cloud fault matrix of
-- tests/cloudmatrix.lua on the joyent provider, against the CloudAPI fake
-- and the Manta fake (tests/servers/cloudapi; tests/clouds/joyent.lua):
-- every CloudAPI call of a clean bootstrap + destroy-environment, read from
-- the fake's /_test/calls, x {error, throttled, timeout, reset, SIGINT},
-- with the built `juju` as a subprocess. The fakes on 127.0.0.40, test
-- hosts 127.0.0.41..45, pool addresses (no hosts) 127.0.7.41..45.
require("cloudmatrix").run({ describe = describe, it = it, setup = setup, teardown = teardown, assert = assert },
  require("clouds.joyent"), { address_base = 40, request_timeout = 2 })
