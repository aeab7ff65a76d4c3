-- openstack_fault_matrix_spec.lua (#integration): the cloud fault matrix of
-- tests/cloudmatrix.lua on the openstack provider, against the goose fake
-- (tests/servers/goose; tests/clouds/openstack.lua): every Nova call of a
-- clean bootstrap + destroy-environment, read from the fake's /_test/calls,
-- x {error, throttled, timeout, reset, SIGINT}, with the built `juju` as a
-- subprocess. The fake on 127.0.0.140, test hosts 127.0.0.141..159,
-- floating IPs 127.0.4.141..159.
require("cloudmatrix").run({ describe = describe, it = it, setup = setup, teardown = teardown, assert = assert },
  require("clouds.openstack"), { address_base = 140, request_timeout = 2 })
