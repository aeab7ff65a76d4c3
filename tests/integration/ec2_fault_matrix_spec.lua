-- ec2_fault_matrix_spec.lua (#integration): the cloud fault matrix of
-- tests/cloudmatrix.lua on the ec2 provider, against the EC2 fake
-- (tests/servers/ec2) and s3rver behind s3check (tests/clouds/ec2.lua):
-- every EC2 call of a clean bootstrap + destroy-environment, read from the
-- fake's /_admin/calls, x {error, throttled, timeout, reset, SIGINT}, with
-- the built `juju` as a subprocess. Test hosts 127.0.0.221..250.
require("cloudmatrix").run({ describe = describe, it = it, setup = setup, teardown = teardown, assert = assert },
  require("clouds.ec2"), { address_base = 220, request_timeout = 2 })
