-- openstack_fault_matrix_spec.lua (#integration): the cloud fault matrix of
-- tests/cloudmatrix.lua on the openstack provider, against the goose fake
-- (tests/servers/goose; tests/clouds/openstack.lua): every Nova call of a
-- clean bootstrap + destroy-environment, read from the fake's /_test/calls,
-- x {error, throttled, timeout, reset, SIGINT}, with the built `juju` as a
-- subprocess. The fake on 127.0.0.120, test hosts 127.0.0.121..139,
-- floating IPs 127.0.4.121..139 (127.0.0.140.. are instance_spec's hosts).
require("cloudmatrix").run({ describe = describe, it = it, setup = setup, teardown = teardown, assert = assert },
  require("clouds.openstack"), { address_base = 120, request_timeout = 2 })
