-- providers/ec2: Amazon EC2 (Juju 1.25's ec2 provider; docs/ec2.md). The
-- Query API through juju.cloud.api with SigV4 (ec2.query), environ storage
-- in the control bucket (juju.cloud.storage.s3), the image from
-- simplestreams (ec2.images), the cheapest fitting instance type of the
-- region (ec2.instancetypes), the environment's security groups, and one
-- RunInstances whose ClientToken is kept in the journal's intent so a
-- retried call never starts a second instance. Every resource is in the
-- journal before it is created; destroy also finds instances and groups by
-- their juju-env-uuid tag.
local crypto = require("juju.lazy")("juju.crypto")
local gzip = require("juju.lazy")("juju.gzip")
local common = require("juju.provider_common")
local constraints_mod = require("juju.constraints")
local cloud = require("juju.cloud.provider")
local s3 = require("juju.lazy")("juju.cloud.storage.s3")
local query = require("ec2.query")
local regions = require("ec2.regions")
local images = require("ec2.images")
local instancetypes = require("ec2.instancetypes")

local P = {
  name = "ec2",
  api_version = 2,
  description = "Amazon EC2: instances, security groups and an S3 control bucket",
  default_state_store = "mongodb",
  config = {
    fields = {
      ["access-key"] = { type = "string", secret = true, allow_empty = true,
        description = "the EC2 access key (default $AWS_ACCESS_KEY_ID, then $EC2_ACCESS_KEY)" },
      ["secret-key"] = { type = "string", secret = true, allow_empty = true,
        description = "the EC2 secret key (default $AWS_SECRET_ACCESS_KEY, then $EC2_SECRET_KEY)" },
      region = { type = "string", default = "us-east-1", immutable = true,
        description = "the EC2 region (us-east-1, eu-west-1, ...)" },
      ["control-bucket"] = { type = "string", immutable = true, allow_empty = true,
        description = "the S3 bucket of the environment's storage (generated at prepare)" },
      ["ec2-endpoint"] = { type = "string", allow_empty = true,
        description = "EC2 endpoint URL instead of the region's (private regions, tests)" },
      ["s3-endpoint"] = { type = "string", allow_empty = true,
        description = "S3 endpoint URL instead of the region's (private regions, tests)" },
    },
  },
  constraints = {
    conflicts = { { "instance-type", { "mem", "cpu-cores", "cpu-power" } } },
    unsupported = { "tags" },
  },
  internal = {},
}

P.GROUP_DESCRIPTION = "juju group"
P.USER_DATA_LIMIT = 16384
P.MIN_ROOT_DISK_GIB = 8
P.GROUP_DELETE_TIMEOUT = 300
P.STATES_ALIVE = { "pending", "running", "stopping", "stopped" }
-- The tag holding machine 0's generated SSH host key (public half), so a
-- later `juju status` pins it too.
P.HOST_KEY_TAG = "juju-host-key"

do
  local names = {}
  for _, t in ipairs(instancetypes.TYPES) do names[#names + 1] = t.name end
  P.constraints.vocab = { arch = { "amd64", "i386" }, ["instance-type"] = names }
end

local function present(v) return type(v) == "string" and v ~= "" end

-- ------------------------------------------------------------- config --

local function check_url(cfg, key)
  local v = cfg[key]
  if v == nil or v == "" then return true end
  if type(v) ~= "string" or not v:match("^https?://[%w%.%-%[%]:]+/?$") then
    return nil, string.format("%s: %q is not an endpoint URL (http(s)://host[:port])", key, tostring(v))
  end
  return true
end

local function check_config(cfg)
  local region = cfg.region
  if not present(region) then return nil, "region: must be set (e.g. us-east-1)" end
  for _, k in ipairs({ "ec2-endpoint", "s3-endpoint" }) do
    local ok, err = check_url(cfg, k)
    if not ok then return nil, err end
  end
  if not regions.REGIONS[region] and not (present(cfg["ec2-endpoint"]) and present(cfg["s3-endpoint"])) then
    return nil, string.format("region: invalid region name %q (known: %s; or set ec2-endpoint and s3-endpoint)",
      region, table.concat(regions.names(), ", "))
  end
  local bucket = cfg["control-bucket"]
  if present(bucket) then
    local ok, why = s3.check_bucket_name(bucket)
    if not ok then return nil, "control-bucket: " .. tostring(why) end
  end
  if cfg["ssl-hostname-verification"] == false then
    return nil, "ssl-hostname-verification: disabling ssh-hostname-verification is not supported"
  end
  return true
end

-- access-key and secret-key, from the config or (both) from the
-- environment as Juju did: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, then
-- EC2_ACCESS_KEY/EC2_SECRET_KEY.
local function credentials(ctx, cfg)
  local ak, sk = cfg["access-key"], cfg["secret-key"]
  if present(ak) and present(sk) then return ak, sk end
  for _, pair in ipairs({ { "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY" }, { "EC2_ACCESS_KEY", "EC2_SECRET_KEY" } }) do
    local a, s = ctx:getenv(pair[1]), ctx:getenv(pair[2])
    if present(a) and present(s) then
      ctx:add_secret(s)
      return a, s, true
    end
  end
  local missing = present(ak) and "secret-key" or "access-key"
  return nil, string.format("%s: environment has no access-key or secret-key (set both in environments.yaml, "
    .. "or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)", missing)
end

local function endpoints(cfg)
  local r = regions.REGIONS[cfg.region] or {}
  local ec2 = present(cfg["ec2-endpoint"]) and cfg["ec2-endpoint"] or r.ec2
  local s3e = present(cfg["s3-endpoint"]) and cfg["s3-endpoint"] or r.s3
  return (ec2:gsub("/+$", "")), (s3e:gsub("/+$", ""))
end

local http_options = cloud.http_options

local function client(ctx, cfg, ak, sk)
  local ec2 = endpoints(cfg)
  return query.new { endpoint = ec2, region = cfg.region, access_key = ak, secret_key = sk,
    clock = ctx.clock, http = http_options(cfg, ctx),
    say = function(line) ctx:infof("%s", line) end,
    check_interrupt = function() ctx:check_interrupt() end }, ec2
end

-- The cheap call Juju made at prepare (DescribeAccountAttributes): a
-- refused key is one line naming secret-key and the endpoint.
local function verify_credentials(c, endpoint)
  local root, msg, code, ec2code = c:call("DescribeAccountAttributes", {})
  if root then return true end
  if code == "AUTH" then
    return nil, string.format("EC2 at %s refused the credentials (%s): check access-key and secret-key",
      endpoint, tostring(ec2code or "AuthFailure")), "AUTH"
  end
  return nil, string.format("cannot verify the credentials at %s: %s", endpoint, msg), code
end

function P.prepare_for_bootstrap(ctx, cfg)
  local ok, err = check_config(cfg)
  if not ok then return nil, err end
  local ak, sk, from_env = credentials(ctx, cfg)
  if not ak then return nil, sk end
  if from_env then cfg["access-key"], cfg["secret-key"] = ak, sk end
  if not present(cfg["control-bucket"]) then
    cfg["control-bucket"] = (crypto.uuid4():gsub("-", ""))
  end
  local c, endpoint = client(ctx, cfg, ak, sk)
  local vok, verr, vcode = verify_credentials(c, endpoint)
  if not vok then return nil, verr, vcode end
  return cfg
end

function P.validate_config(ctx, cfg)
  local ok, err = check_config(cfg)
  if not ok then return nil, err end
  local _ = ctx
  return cfg
end

function P.open(ctx, cfg)
  local ok, err = check_config(cfg)
  if not ok then return nil, err end
  local ak, sk = credentials(ctx, cfg)
  if not ak then return nil, sk end
  if not present(cfg["control-bucket"]) then return nil, "control-bucket: not set (the environment is not prepared)" end
  local c, ec2 = client(ctx, cfg, ak, sk)
  local _, s3e = endpoints(cfg)
  return {
    ctx = ctx, cfg = cfg, uuid = cfg.uuid, name = ctx.env_name or cfg.name, region = cfg.region,
    ec2_endpoint = ec2, s3_endpoint = s3e, image_endpoint = (regions.REGIONS[cfg.region] or {}).ec2 or ec2,
    ec2 = c, bucket = cfg["control-bucket"],
    -- the credentials stay in closures, not fields (no secret in a dump of env)
    open_store = function()
      return s3.new { endpoint = s3e, region = cfg.region, bucket = cfg["control-bucket"], access_key = ak,
        secret_key = sk, create = false, http = http_options(cfg, ctx) }
    end,
  }
end

-- ------------------------------------------------------------ storage --

local journaled = cloud.journaled

-- The control bucket: journaled, then created (idempotent).
local function ensure_bucket(env)
  if env.bucket_ready then return true end
  local store = env.store
  if not journaled(env, "bucket", env.bucket) then
    local ok, err = env.ctx.journal:intent("bucket", env.bucket)
    if not ok then return nil, err end
  end
  local ok, err, code = store:create_bucket()
  if not ok then return nil, string.format("cannot create control-bucket %q: %s", env.bucket, err), code end
  if not journaled(env, "bucket", env.bucket) then
    local rok, rerr = env.ctx.journal:record("bucket", env.bucket, { name = env.bucket })
    if not rok then return nil, rerr end
  end
  env.bucket_ready = true
  return true
end

local WRITES = { put = true, put_file = true }

function P.storage(env)
  if env.storage then return env.storage end
  local store, err = env.open_store()
  if not store then error("ec2 storage: control-bucket: " .. tostring(err), 0) end
  env.store = store
  -- Writes journal and create the bucket first; everything else is the
  -- S3 store's own.
  env.storage = setmetatable({}, { __index = function(_, k)
    local f = store[k]
    if type(f) ~= "function" then return f end
    return function(_, ...)
      if WRITES[k] then
        local ok, berr, bcode = ensure_bucket(env)
        if not ok then return nil, berr, bcode end
      end
      return f(store, ...)
    end
  end })
  return env.storage
end

function P.state_server_instances(env)
  return common.state_server_instances(P.storage(env))
end

function P.constraints_validator(_) return P.constraints end

-- ---------------------------------------------------- security groups --

local function rule_key(r)
  return string.format("%s:%s:%s:%s", r.proto, r.from, r.to, r.cidr or r.group)
end

-- The rules of a DescribeSecurityGroups item.
local function parse_rules(item)
  local out = {}
  for _, p in ipairs(query.items(item, "ipPermissions")) do
    local base = { proto = query.text(p, "ipProtocol"), from = tonumber(query.text(p, "fromPort") or -1),
      to = tonumber(query.text(p, "toPort") or -1) }
    for _, g in ipairs(query.items(p, "groups")) do
      out[#out + 1] = { proto = base.proto, from = base.from, to = base.to, group = query.text(g, "groupId") }
    end
    for _, rng in ipairs(query.items(p, "ipRanges")) do
      out[#out + 1] = { proto = base.proto, from = base.from, to = base.to, cidr = query.text(rng, "cidrIp") }
    end
  end
  return out
end

local function permissions(params, rules)
  for i, r in ipairs(rules) do
    local p = "IpPermissions." .. i
    params[p .. ".IpProtocol"], params[p .. ".FromPort"], params[p .. ".ToPort"] = r.proto, r.from, r.to
    if r.cidr then params[p .. ".IpRanges.1.CidrIp"] = r.cidr else params[p .. ".Groups.1.GroupId"] = r.group end
  end
  return params
end

local function describe_groups(env, filters)
  local root, msg, code, ec2code = env.ec2:call("DescribeSecurityGroups", query.filters({}, filters))
  if not root then return nil, msg, code, ec2code end
  local out = {}
  for _, item in ipairs(query.items(root, "securityGroupInfo")) do
    local tags = {}
    for _, t in ipairs(query.items(item, "tagSet")) do tags[query.text(t, "key") or ""] = query.text(t, "value") or "" end
    out[#out + 1] = { id = query.text(item, "groupId"), name = query.text(item, "groupName"), item = item, tags = tags }
  end
  return out
end

-- Juju's rules for the environment's group (setUpGroups).
local function env_rules(env, gid)
  local api_port = tonumber(env.cfg["api-port"]) or 17070
  return {
    { proto = "tcp", from = 22, to = 22, cidr = "0.0.0.0/0" },
    { proto = "tcp", from = api_port, to = api_port, cidr = "0.0.0.0/0" },
    { proto = "tcp", from = 0, to = 65535, group = gid },
    { proto = "udp", from = 0, to = 65535, group = gid },
    { proto = "icmp", from = -1, to = -1, group = gid },
  }
end

-- Makes the rules of group gid exactly want (nil: leave them as they are).
local function sync_rules(env, g, want)
  if not want then return true end
  local have, wanted = {}, {}
  for _, r in ipairs(parse_rules(g.item)) do have[rule_key(r)] = r end
  local missing, extra = {}, {}
  for _, r in ipairs(want) do
    wanted[rule_key(r)] = true
    if not have[rule_key(r)] then missing[#missing + 1] = r end
  end
  for k, r in pairs(have) do if not wanted[k] then extra[#extra + 1] = r end end
  table.sort(extra, function(a, b) return rule_key(a) < rule_key(b) end)
  if #extra > 0 then
    local root, msg, code, ec2code = env.ec2:call("RevokeSecurityGroupIngress", permissions({ GroupId = g.id }, extra))
    if not root and ec2code ~= "InvalidPermission.NotFound" then
      return nil, string.format("cannot revoke security group %s rules: %s", g.name, msg), code
    end
  end
  if #missing > 0 then
    local root, msg, code, ec2code = env.ec2:call("AuthorizeSecurityGroupIngress",
      permissions({ GroupId = g.id }, missing))
    if not root and ec2code ~= "InvalidPermission.Duplicate" then
      return nil, string.format("cannot authorize security group %s rules: %s", g.name, msg), code
    end
  end
  return true
end

local function tag_resource(env, id, tags)
  local params = { ["ResourceId.1"] = id }
  local keys = {}
  for k in pairs(tags) do keys[#keys + 1] = k end
  table.sort(keys)
  for i, k in ipairs(keys) do params["Tag." .. i .. ".Key"], params["Tag." .. i .. ".Value"] = k, tags[k] end
  local root, msg, code = env.ec2:call("CreateTags", params)
  if not root then return nil, string.format("cannot tag %s: %s", id, msg), code end
  return true
end

--- Ensures the group `name` (journaled, created or found, tagged) with
--- rules (a function(gid) -> rules, or nil for none to manage): group.
local function ensure_group(env, name, rules_of)
  local j = env.ctx.journal
  if not journaled(env, "security-group", name) then
    local ok, err = j:intent("security-group", name)
    if not ok then return nil, err end
  end
  local gid
  local root, msg, code, ec2code = env.ec2:call("CreateSecurityGroup",
    { GroupName = name, GroupDescription = P.GROUP_DESCRIPTION })
  if root then
    gid = query.text(root, "groupId")
  elseif ec2code ~= "InvalidGroup.Duplicate" then
    return nil, string.format("cannot create security group %s: %s", name, msg), code
  end
  local found, ferr, fcode = describe_groups(env, { { "group-name", { name } } })
  if not found then return nil, string.format("cannot read security group %s: %s", name, ferr), fcode end
  local g = found[1]
  if not g then return nil, string.format("security group %s: created, but not found", name), "NOT_FOUND" end
  gid = gid or g.id
  g.id = gid
  if not journaled(env, "security-group", gid) then
    local ok, err = j:record("security-group", gid, { name = name })
    if not ok then return nil, err end
  end
  if g.tags["juju-env-uuid"] ~= env.uuid then
    local tok, terr, tcode = tag_resource(env, gid, { ["juju-env-uuid"] = env.uuid })
    if not tok then return nil, terr, tcode end
  end
  local sok, serr, scode = sync_rules(env, g, rules_of and rules_of(gid))
  if not sok then return nil, serr, scode end
  return g
end

local function delete_group(env, gid, name)
  return cloud.poll(env, {
    what = string.format("for security group %s to be deletable", name or gid), timeout = P.GROUP_DELETE_TIMEOUT,
    poll = function()
      local root, msg, code, ec2code = env.ec2:call("DeleteSecurityGroup", { GroupId = gid })
      if root or ec2code == "InvalidGroup.NotFound" then return true end
      if ec2code == "DependencyViolation" then return nil, msg end
      return false, string.format("cannot delete security group %s: %s", name or gid, msg), code
    end,
  })
end

-- ---------------------------------------------------------- instances --

local function parse_instance(item)
  local inst = {
    id = query.text(item, "instanceId"), status = query.text(item, "instanceState/name"),
    zone = query.text(item, "placement/availabilityZone"), type = query.text(item, "instanceType"),
    public = query.text(item, "ipAddress"), private = query.text(item, "privateIpAddress"),
    dns = query.text(item, "dnsName"), reason = query.text(item, "stateReason/message"), tags = {},
  }
  for _, t in ipairs(query.items(item, "tagSet")) do
    inst.tags[query.text(t, "key") or ""] = query.text(t, "value") or ""
  end
  inst.name = inst.tags.Name
  return inst
end

local function describe_instances(env, params)
  local root, msg, code, ec2code = env.ec2:call("DescribeInstances", params)
  if not root then return nil, msg, code, ec2code end
  local out = {}
  for _, r in ipairs(query.items(root, "reservationSet")) do
    for _, item in ipairs(query.items(r, "instancesSet")) do out[#out + 1] = parse_instance(item) end
  end
  return out
end

local function addresses(raw)
  local out = {}
  if raw.public then out[#out + 1] = common.address(raw.public, "public") end
  if raw.private and raw.private ~= raw.public then out[#out + 1] = common.address(raw.private, "cloud-local") end
  return out
end

local function instance_object(env, raw, extra)
  local inst = { id = raw.id, name = raw.name, status = raw.status, addresses = addresses(raw), ssh_port = 22 }
  for k, v in pairs(extra or {}) do inst[k] = v end
  inst.refresh = function()
    local list, msg, code = describe_instances(env, { ["InstanceId.1"] = raw.id })
    if not list then return nil, msg, code end
    if not list[1] then return nil, "instance " .. raw.id .. " not found", "NOT_FOUND" end
    return instance_object(env, list[1], extra)
  end
  return inst
end

local function available_zones(env)
  local root, msg, code = env.ec2:call("DescribeAvailabilityZones",
    query.filters({}, { { "region-name", { env.region } } }))
  if not root then return nil, "cannot list availability zones: " .. msg, code end
  local zones = {}
  for _, z in ipairs(query.items(root, "availabilityZoneInfo")) do
    if query.text(z, "zoneState") == "available" then zones[#zones + 1] = query.text(z, "zoneName") end
  end
  table.sort(zones)
  return zones
end

local function choose_zones(env, placement)
  local zones, err, code = available_zones(env)
  if not zones then return nil, err, code end
  if #zones == 0 and not present(placement) then
    return nil, "no availability zone of " .. env.region .. " is available", "QUOTA"
  end
  return cloud.placement_zones(zones, placement, env.region)
end

-- The ClientToken of the instance named `name`, kept in the journal's
-- intent for it (the engine's, or ours): the same token for every attempt
-- of this bootstrap, a new one for the next bootstrap.
local function client_token(env, name)
  local j = env.ctx.journal
  local rs = j:resources("instance")
  for i = #rs, 1, -1 do
    local r = rs[i]
    if r.name == name and r.state == "intended" then
      if not r.client_token then
        r.client_token = crypto.hex(crypto.random_bytes(16))
        local ok, err = j:save()
        if not ok then return nil, err end
      end
      return r.client_token
    end
  end
  local token = crypto.hex(crypto.random_bytes(16))
  local ok, err = j:intent("instance", name, { client_token = token })
  if not ok then return nil, err end
  return token
end

local ZONE_ERRORS = { InsufficientInstanceCapacity = true, Unsupported = true,
  VolumeTypeNotAvailableInZone = true, InvalidInput = true }

local function user_data(text)
  local packed = gzip.gzip(text)
  if #packed > P.USER_DATA_LIMIT then
    return nil, string.format("user-data is %d bytes gzip'd, over EC2's %d-byte limit", #packed, P.USER_DATA_LIMIT),
      "INVALID"
  end
  return crypto.base64(packed)
end

local function instance_tags(env, params)
  local tags = { Name = params.name, ["juju-env-uuid"] = env.uuid }
  local hk = params.host_keys and params.host_keys.ed25519
  if hk and type(hk.public) == "string" then tags[P.HOST_KEY_TAG] = (hk.public:gsub("%s+$", "")) end
  for k, v in pairs((params.instance_config or {}).tags or {}) do
    if type(k) == "string" and (type(v) == "string" or type(v) == "boolean") then tags[k] = tostring(v) end
  end
  return tags
end

local function run_params(env, spec, ud, gids, token, zone, tags, root_gib)
  local p = { ImageId = spec.image.id, InstanceType = spec.type.name, MinCount = 1, MaxCount = 1, UserData = ud,
    ClientToken = token, ["Placement.AvailabilityZone"] = zone,
    ["BlockDeviceMapping.1.DeviceName"] = "/dev/sda1", ["BlockDeviceMapping.1.Ebs.VolumeSize"] = root_gib,
    ["TagSpecification.1.ResourceType"] = "instance" }
  for i = 0, 3 do
    p["BlockDeviceMapping." .. (i + 2) .. ".DeviceName"] = "/dev/sd" .. string.char(98 + i)
    p["BlockDeviceMapping." .. (i + 2) .. ".VirtualName"] = "ephemeral" .. i
  end
  query.list(p, "SecurityGroupId", gids)
  local keys = {}
  for k in pairs(tags) do keys[#keys + 1] = k end
  table.sort(keys)
  for i, k in ipairs(keys) do
    p["TagSpecification.1.Tag." .. i .. ".Key"], p["TagSpecification.1.Tag." .. i .. ".Value"] = k, tags[k]
  end
  local _ = env
  return p
end

-- Picks image and instance type: spec or nil, message naming the cause.
local function find_spec(env, params)
  local icfg = params.instance_config
  local imgs, err = images.find(images.sources(env.cfg), {
    series = icfg.series, arches = cloud.arches(params), region = env.region, endpoint = env.image_endpoint,
    stream = env.cfg["image-stream"] }, http_options(env.cfg, env.ctx))
  if not imgs then return nil, "cannot find an image: " .. err, "NOT_FOUND" end
  local c = params.constraints or {}
  if present(c["instance-type"]) and not instancetypes.find(c["instance-type"]) then
    return nil, string.format("invalid constraint value: instance-type=%s (not an EC2 instance type Juju knows)",
      c["instance-type"]), "INVALID"
  end
  local spec = instancetypes.choose(env.region, c, imgs)
  if not spec then
    return nil, string.format("no instance type in %s matches constraints %q (images: %s)", env.region,
      constraints_mod.format(c), imgs[1].id .. " " .. tostring(imgs[1].virt)), "INVALID"
  end
  return spec
end

local function wait_running(env, id)
  local timeout = tonumber(env.cfg["bootstrap-timeout"]) or 600
  return cloud.poll(env, {
    what = "for instance " .. id .. " to be running with an address", timeout = timeout,
    poll = function()
      local list, msg, code, ec2code = describe_instances(env, { ["InstanceId.1"] = id })
      if not list then
        if ec2code == "InvalidInstanceID.NotFound" then return nil, msg end
        return false, string.format("cannot read the state of instance %s: %s", id, msg), code
      end
      local raw = list[1]
      if not raw then return nil, "instance not listed yet" end
      if raw.status == "running" and (raw.public or raw.private) then return raw end
      if raw.status ~= "pending" and raw.status ~= "running" then
        return false, string.format("instance %s is %s: %s", id, tostring(raw.status), raw.reason or "no reason given"),
          "QUOTA"
      end
      return nil, "instance is " .. tostring(raw.status)
    end,
  })
end

function P.start_instance(env, params)
  local icfg = params.instance_config
  -- Everything that can be refused is checked before anything is created.
  local spec, err, code = find_spec(env, params)
  if not spec then return nil, err, code end
  local ud
  ud, err, code = user_data(params.userdata)
  if not ud then return nil, err, code end
  local zones
  zones, err, code = choose_zones(env, params.placement)
  if not zones then return nil, err, code end
  P.storage(env)
  local ok
  ok, err, code = ensure_bucket(env)
  if not ok then return nil, err, code end
  local envg
  envg, err, code = ensure_group(env, "juju-" .. env.name, function(gid) return env_rules(env, gid) end)
  if not envg then return nil, err, code end
  local machg
  machg, err, code = ensure_group(env, "juju-" .. env.name .. "-" .. tostring(icfg.machine_id or "0"), nil)
  if not machg then return nil, err, code end
  local token
  token, err = client_token(env, params.name)
  if not token then return nil, err end
  local rd = tonumber((params.constraints or {})["root-disk"])
  local root_gib = math.max(P.MIN_ROOT_DISK_GIB, rd and math.ceil(rd / 1024) or 0)
  local tags = instance_tags(env, params)
  local failures, raw, zone = {}, nil, nil
  env.ctx:infof("Launching a %s instance from %s", spec.type.name, spec.image.id)
  for i, z in ipairs(zones) do
    local root, msg, c, ec2code = env.ec2:call("RunInstances",
      run_params(env, spec, ud, { envg.id, machg.id }, token .. "-" .. i, z, tags, root_gib))
    if root then
      raw = parse_instance(query.items(root, "instancesSet")[1])
      zone = z
      break
    end
    if not ZONE_ERRORS[ec2code or ""] then
      return nil, string.format("cannot run instances: %s", msg), c
    end
    failures[#failures + 1] = string.format("%s: %s", z, msg:match("(" .. ec2code .. ".*)$") or msg)
  end
  if not raw then
    return nil, string.format("cannot run instances: no availability zone of %s could start a %s (%s)",
      env.region, spec.type.name, table.concat(failures, "; ")), "QUOTA"
  end
  local running
  running, err, code = wait_running(env, raw.id)
  if not running then return nil, err, code end
  local t = spec.type
  return instance_object(env, running, { hardware = { arch = spec.image.arch, mem = t.mem,
    ["cpu-cores"] = t["cpu-cores"], ["cpu-power"] = t["cpu-power"], ["root-disk"] = root_gib * 1024,
    ["availability-zone"] = zone } })
end

-- Machine 0 as recorded in provider-state: its raw description.
local function state_server(env)
  local ids, err, code = P.state_server_instances(env)
  if not ids then return nil, err, code end
  local list, derr, dcode = describe_instances(env, query.list({}, "InstanceId", ids))
  if not list then return nil, derr, dcode end
  for _, raw in ipairs(list) do
    if raw.status == "running" and (raw.public or raw.private) then return raw end
  end
  return nil, string.format("no state server instance of %s is running (%s)", env.name, table.concat(ids, ", ")),
    "UNAVAILABLE"
end

--- Machine 0's status documents over SSH as ubuntu, the host key pinned
--- to the one machine 0 made at the end of bootstrap (bootstrap-host-key),
--- else to the one generated for it (the instance's juju-host-key tag).
function P.state_dump(env)
  local raw, err, code = state_server(env)
  if not raw then return nil, err, code end
  return cloud.state_dump(env, raw.public or raw.private, raw.tags[P.HOST_KEY_TAG])
end

--- Waits until machine 0's agent reports (its heartbeat, read over SSH).
function P.wait_agent(env) return cloud.wait_agent(env, P.state_dump) end

function P.all_instances(env)
  local list, msg, code = describe_instances(env, query.filters({}, {
    { "tag:juju-env-uuid", { env.uuid } }, { "instance-state-name", P.STATES_ALIVE } }))
  if not list then return nil, msg, code end
  local out = {}
  for _, raw in ipairs(list) do out[#out + 1] = instance_object(env, raw) end
  return out
end

local function terminate(env, ids)
  if #ids == 0 then return true end
  local root, msg, code, ec2code = env.ec2:call("TerminateInstances", query.list({}, "InstanceId", ids))
  if not root and ec2code ~= "InvalidInstanceID.NotFound" then
    return nil, "cannot terminate instances: " .. msg, code
  end
  return true
end

local function terminate_in_group(env, gid)
  local list, msg, code = describe_instances(env, query.filters({}, {
    { "instance.group-id", { gid } }, { "tag:juju-env-uuid", { env.uuid } },
    { "instance-state-name", P.STATES_ALIVE } }))
  if not list then return nil, msg, code end
  local ids = {}
  for _, raw in ipairs(list) do ids[#ids + 1] = raw.id end
  return terminate(env, ids)
end

function P.release(env, r)
  if r.kind == "instance" then
    if r.id then return terminate(env, { r.id }) end
    local list, msg, code = describe_instances(env, query.filters({}, {
      { "tag:Name", { r.name } }, { "tag:juju-env-uuid", { env.uuid } }, { "instance-state-name", P.STATES_ALIVE } }))
    if not list then return nil, msg, code end
    local ids = {}
    for _, raw in ipairs(list) do ids[#ids + 1] = raw.id end
    return terminate(env, ids)
  elseif r.kind == "security-group" then
    local gids = { r.id }
    if not r.id then
      local found, msg, code = describe_groups(env, { { "group-name", { r.name } } })
      if not found then return nil, msg, code end
      gids = {}
      for _, g in ipairs(found) do
        if g.tags["juju-env-uuid"] == nil or g.tags["juju-env-uuid"] == env.uuid then gids[#gids + 1] = g.id end
      end
    end
    for _, gid in ipairs(gids) do
      -- The engine journals machine 0's intent before start_instance makes
      -- the groups, so a reverse-order release reaches a group first: the
      -- environment's instances in it go first.
      local ok, err, c = terminate_in_group(env, gid)
      if ok then ok, err, c = delete_group(env, gid, r.name) end
      if not ok then return nil, err, c end
    end
    return true
  elseif r.kind == "bucket" then
    P.storage(env)
    return env.store:remove_all()
  end
  return nil, string.format("ec2: unknown resource kind %q", tostring(r.kind)), "INVALID"
end

-- Everything of the environment: its instances (by tag), its groups (by
-- tag, and by Juju's names when untagged), then the control bucket.
function P.destroy(env)
  local insts, err, code = P.all_instances(env)
  if not insts then return nil, err, code end
  local ids = {}
  for _, i in ipairs(insts) do ids[#ids + 1] = i.id end
  local ok
  ok, err, code = terminate(env, ids)
  if not ok then return nil, err, code end
  local groups = {}
  local tagged
  tagged, err, code = describe_groups(env, { { "tag:juju-env-uuid", { env.uuid } } })
  if not tagged then return nil, err, code end
  local prefix = "juju-" .. env.name
  local named
  named, err, code = describe_groups(env, { { "group-name", { prefix, prefix .. "-*" } } })
  if not named then return nil, err, code end
  local seen = {}
  local exact = "^" .. prefix:gsub("%p", "%%%0") .. "%-%d+$"
  for _, list in ipairs({ tagged, named }) do
    for _, g in ipairs(list) do
      local owner = g.tags["juju-env-uuid"]
      -- an untagged group is ours only under Juju's exact names
      local ours = owner == env.uuid or (owner == nil and (g.name == prefix or g.name:match(exact)))
      if not seen[g.id] and ours then
        seen[g.id] = true
        groups[#groups + 1] = g
      end
    end
  end
  cloud.machine_groups_first(groups)
  for _, g in ipairs(groups) do
    ok, err, code = delete_group(env, g.id, g.name)
    if not ok then return nil, err, code end
  end
  P.storage(env)
  ok, err, code = env.store:remove_all()
  if not ok then return nil, "cannot remove the control bucket: " .. tostring(err), code end
  return true
end

-- For the provider's spec: the steps start_instance is made of.
P.internal.ensure_group = ensure_group
P.internal.find_spec = find_spec
P.internal.user_data = user_data
P.internal.env_rules = env_rules

return P
