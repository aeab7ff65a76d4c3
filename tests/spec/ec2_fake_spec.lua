-- The offline EC2 fake (tests/servers/ec2), checked by clients this project
-- did not write: botocore's own EC2 client runs the provider's whole sequence
-- (its XML parser proves the answers' shapes), and botocore's SigV4 signer
-- signs the raw requests this spec sends with juju.http to prove what the
-- fake refuses (wrong secret, tampering, stale dates, unknown parameters),
-- its faults, its journal, and its launcher (instances as real hosts).
local server = require("juju.testing.server")
local http = require("juju.http")
local json = require("juju.json")
local yaml = require("juju.yaml")
local xml = require("juju.xml")
local gzip = require("juju.gzip")
local crypto = require("juju.crypto")
local fs = require("juju.fs")
local sys = require("juju.sys")
local h = require("helpers")

local PYTHON = "/usr/bin/python3"
local DIR = h.source_dir .. "/tests/servers/ec2"
local ACCESS = "AKIDEC2FAKESPEC"
local SECRET = "ec2fake/Spec+Secret" .. crypto.hex(crypto.random_bytes(6))
local REGION = "us-east-1"

describe("the EC2 fake", function()
  local s, work, creds, records

  local function write_json(path, value)
    h.write(path, assert(json.encode(value)))
  end

  local function admin(method, path, body)
    local r, msg = http.request { url = s.url .. path, method = method, retries = 0,
      body = body and assert(json.encode(body)) or nil,
      headers = body and { ["Content-Type"] = "application/json" } or nil }
    assert(r, msg)
    return r.body:sub(1, 1) == "{" and assert(json.decode(r.body)) or r.body
  end

  -- The independent client (botoclient.py serve): botocore's EC2 client
  -- and signer in one process for the whole spec.
  local boto_url
  local function botoclient(path, body)
    local r, msg, _, resp = http.request { url = boto_url .. path, method = "POST", retries = 0, timeout = 300,
      body = assert(json.encode(body or {})), headers = { ["Content-Type"] = "application/json" } }
    r = r or resp
    assert(r, msg)
    local out = assert(json.decode(r.body))
    assert(r.status == 200, out.error)
    return out
  end

  -- Form-encodes params (sorted, so the request is reproducible).
  local function form(params)
    local keys = {}
    for k in pairs(params) do keys[#keys + 1] = k end
    table.sort(keys)
    local out = {}
    for _, k in ipairs(keys) do out[#out + 1] = http.url_escape(k) .. "=" .. http.url_escape(params[k]) end
    return table.concat(out, "&")
  end

  -- A request signed by botocore's SigV4Auth (with opts.secret instead of
  -- the real one, at opts.time instead of now). GET puts the params in the
  -- query, as Juju 1.25 did; POST in a form body, as botocore does.
  local function signed(params, opts)
    opts = opts or {}
    local method = opts.method or "POST"
    local q = form(params)
    local req = { method = method, url = s.url .. "/", body = "", time = opts.time,
      headers = { ["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8" } }
    if method == "GET" then
      req.url, req.headers = s.url .. "/?" .. q, {}
    else
      req.body = q
    end
    req.headers = botoclient("/sign", { request = req, secret = opts.secret, access_key = opts.access_key })
    return req
  end

  -- Sends a request as it is; returns status, the parsed XML root, the body.
  local function send(req)
    local r, msg, _, resp = http.request { url = req.url, method = req.method, headers = req.headers,
      body = req.method ~= "GET" and req.body or nil, retries = 0 }
    r = r or resp
    assert(r, msg)
    return r.status, assert(xml.decode(r.body, "EC2 answer")), r.body
  end

  local function call(params, opts)
    return send(signed(params, opts))
  end

  local function child(e, name)
    for _, c in ipairs(e.children) do
      if c.name == name then return c end
    end
  end

  local function find(e, path)
    for name in path:gmatch("[^/]+") do
      e = e and child(e, name)
    end
    return e
  end

  local function error_code(root)
    return (find(root, "Errors/Error/Code") or {}).text
  end

  setup(function()
    work = h.tmpdir("juju-ec2fake-spec-")
    records = work .. "/records"
    assert(fs.mkdir_p(records, tonumber("700", 8)))
    creds = work .. "/creds.json"
    write_json(creds, { access_key = ACCESS, secret_key = SECRET, region = REGION })
    write_json(work .. "/fake.json", { credentials = { [ACCESS] = SECRET }, region = REGION,
      pending_describes = 1 })
    -- The test launcher stands for the harness host: it records what it was
    -- given and answers the instance's address.
    h.write(work .. "/launch.sh", [[
set -e
if [ -e "$RECORD_DIR/fail-next" ]; then rm "$RECORD_DIR/fail-next"; echo "no host today" >&2; exit 3; fi
cp "$USER_DATA_FILE" "$RECORD_DIR/$INSTANCE_ID.user-data"
stat -c %a "$USER_DATA_FILE" > "$RECORD_DIR/$INSTANCE_ID.mode"
echo "$INSTANCE_INDEX" > "$RECORD_DIR/$INSTANCE_ID.index"
echo "127.0.0.$((20 + INSTANCE_INDEX))"
]])
    h.write(work .. "/terminate.sh", [[echo "$INSTANCE_ADDRESS" > "$RECORD_DIR/$INSTANCE_ID.terminated"
]])
    s = assert(server.start {
      name = "ec2fake",
      argv = { PYTHON, DIR .. "/ec2fake.py", "--host", "{host}", "--port", "{port}", "--dir", "{dir}",
        "--config", work .. "/fake.json",
        "--launcher", "/bin/sh " .. work .. "/launch.sh",
        "--terminator", "/bin/sh " .. work .. "/terminate.sh" },
      env = { RECORD_DIR = records },
    })
    local b = assert(server.start {
      name = "botoclient",
      argv = { PYTHON, DIR .. "/botoclient.py", "serve", "{host}", "{port}", s.url, creds },
    })
    boto_url = b.url
  end)

  teardown(function()
    server.stop_all()
    h.cleanup()
  end)

  before_each(function()
    admin("DELETE", "/_admin/faults")
  end)

  it("runs the provider's whole sequence through botocore's own EC2 client", function()
    local report = botoclient("/sequence")
    local failed = {}
    for _, c in ipairs(report.checks or {}) do
      if not c.ok then failed[#failed + 1] = c.name .. ": " .. assert(json.encode(c.detail)) end
    end
    assert.are.same({}, failed)
    assert.is_nil(report.error)
    assert.is_true(report.ok)
    -- The instance was a launched host: its address is the launcher's.
    local index = fs.read_file(records .. "/" .. report.instance_id .. ".index")
    assert.are.equal("127.0.0." .. (20 + tonumber(index)), report.address)
    -- The journal shows one RunInstances reservation for two calls.
    local calls = admin("GET", "/_admin/calls?action=RunInstances").calls
    assert.are.equal(2, #calls)
    assert.are.equal(calls[1].params.ClientToken, calls[2].params.ClientToken)
    local state = admin("GET", "/_admin/state")
    local started = 0
    for _, i in ipairs(state.instances) do
      if i.reservation == report.reservation_id then started = started + 1 end
    end
    assert.are.equal(1, started)
  end)

  it("answers a Juju-style signed GET in the 2014-10-01 namespace with a request id", function()
    local status, root = call({ Action = "DescribeAvailabilityZones", Version = "2014-10-01",
      ["Filter.1.Name"] = "region-name", ["Filter.1.Value.1"] = REGION }, { method = "GET" })
    assert.are.equal(200, status)
    assert.are.equal("DescribeAvailabilityZonesResponse", root.name)
    assert.are.equal("http://ec2.amazonaws.com/doc/2014-10-01/", root.ns)
    assert.matches("^%x+%-", find(root, "requestId").text)
    assert.are.equal("us-east-1a", find(root, "availabilityZoneInfo/item/zoneName").text)
  end)

  it("accepts Juju 1.25's parameter shapes (GET, 2014-10-01) for its bootstrap calls", function()
    local function get(params)
      params.Version = "2014-10-01"
      params.Timestamp = "2015-08-30T12:36:00Z"
      local status, root, body = call(params, { method = "GET" })
      assert(status == 200, body)
      return root
    end
    get { Action = "DescribeAccountAttributes" }
    local gid = find(get { Action = "CreateSecurityGroup", GroupName = "juju-j125",
      GroupDescription = "juju group" }, "groupId").text
    get { Action = "AuthorizeSecurityGroupIngress", GroupId = gid,
      ["IpPermissions.1.IpProtocol"] = "tcp", ["IpPermissions.1.FromPort"] = "22", ["IpPermissions.1.ToPort"] = "22",
      ["IpPermissions.1.IpRanges.1.CidrIp"] = "0.0.0.0/0",
      ["IpPermissions.2.IpProtocol"] = "udp", ["IpPermissions.2.FromPort"] = "0",
      ["IpPermissions.2.ToPort"] = "65535", ["IpPermissions.2.Groups.1.GroupId"] = gid }
    local groups = get { Action = "DescribeSecurityGroups", ["GroupName.1"] = "juju-j125" }
    assert.are.equal(gid, find(groups, "securityGroupInfo/item/groupId").text)
    local rules = {}
    for _, p in ipairs(find(groups, "securityGroupInfo/item/ipPermissions").children) do
      local src = find(p, "ipRanges/item/cidrIp") or find(p, "groups/item/groupId")
      rules[#rules + 1] = find(p, "ipProtocol").text .. " " .. find(p, "fromPort").text .. "-"
        .. find(p, "toPort").text .. " " .. src.text
    end
    assert.are.same({ "tcp 22-22 0.0.0.0/0", "udp 0-65535 " .. gid }, rules)
    local zones = get { Action = "DescribeAvailabilityZones", ["Filter.1.Name"] = "region-name",
      ["Filter.1.Value.1"] = REGION }
    local zone = find(zones, "availabilityZoneInfo/item/zoneName").text
    local run = get { Action = "RunInstances", ImageId = "ami-26745463", InstanceType = "m3.medium",
      MinCount = "1", MaxCount = "1", ["SecurityGroupId.1"] = gid, ClientToken = "juju125-token",
      ["Placement.AvailabilityZone"] = zone, UserData = crypto.base64(gzip.gzip("#cloud-config\n")),
      ["BlockDeviceMapping.1.DeviceName"] = "/dev/sda1", ["BlockDeviceMapping.1.Ebs.VolumeSize"] = "8",
      ["BlockDeviceMapping.2.DeviceName"] = "/dev/sdb", ["BlockDeviceMapping.2.VirtualName"] = "ephemeral0" }
    local id = find(run, "instancesSet/item/instanceId").text
    assert.are.equal(zone, find(run, "instancesSet/item/placement/availabilityZone").text)
    get { Action = "CreateTags", ["ResourceId.1"] = id, ["Tag.1.Key"] = "Name", ["Tag.1.Value"] = "juju-j125-machine-0" }
    admin("GET", "/_admin/settle?timeout=20")
    local item
    for _ = 1, 3 do
      item = find(get { Action = "DescribeInstances", ["Filter.1.Name"] = "instance-state-name",
        ["Filter.1.Value.1"] = "pending", ["Filter.1.Value.2"] = "running",
        ["Filter.2.Name"] = "instance.group-id", ["Filter.2.Value.1"] = gid,
        ["Filter.3.Name"] = "instance-id", ["Filter.3.Value.1"] = id }, "reservationSet/item/instancesSet/item")
      if find(item, "instanceState/name").text == "running" then break end
    end
    assert.are.equal("running", find(item, "instanceState/name").text)
    assert.truthy(find(item, "ipAddress").text:match("^127%."))
    assert.are.equal("juju-j125-machine-0", find(item, "tagSet/item/value").text)
    get { Action = "TerminateInstances", ["InstanceId.1"] = id }
  end)

  it("refuses a wrong secret with AuthFailure (401), naming no secret", function()
    local status, root, body = call({ Action = "DescribeAccountAttributes", Version = "2014-10-01" },
      { secret = "not-the-secret" })
    assert.are.equal(401, status)
    assert.are.equal("Response", root.name)
    assert.are.equal("AuthFailure", error_code(root))
    assert.truthy(find(root, "RequestID").text:match("%x"))
    assert.is_nil(body:find(SECRET, 1, true))
    assert.is_nil(body:find("not-the-secret", 1, true))
    assert.is_nil(s:log_text():find(SECRET, 1, true))
    admin("POST", "/_admin/config", { signature_error = "SignatureDoesNotMatch" })
    status, root = call({ Action = "DescribeRegions", Version = "2014-10-01" }, { secret = "not-the-secret" })
    admin("POST", "/_admin/config", { signature_error = "AuthFailure" })
    assert.are.equal(403, status)
    assert.are.equal("SignatureDoesNotMatch", error_code(root))
  end)

  it("refuses an unknown access key with AuthFailure", function()
    local status, root = call({ Action = "DescribeRegions", Version = "2014-10-01" },
      { access_key = "AKIDUNKNOWN", secret = SECRET })
    assert.are.equal(401, status)
    assert.are.equal("AuthFailure", error_code(root))
  end)

  it("refuses a signed request whose body or query was changed after signing", function()
    local req = signed({ Action = "DescribeInstances", Version = "2016-11-15", ["InstanceId.1"] = "i-1" })
    req.body = req.body:gsub("i%-1", "i-2")
    local status, root = send(req)
    assert.are.equal(401, status)
    assert.are.equal("AuthFailure", error_code(root))
    local get = signed({ Action = "DescribeRegions", Version = "2014-10-01" }, { method = "GET" })
    get.url = get.url .. "&RegionName.1=eu-west-1"
    status, root = send(get)
    assert.are.equal(401, status)
    assert.are.equal("AuthFailure", error_code(root))
    -- untampered, the same kind of request passes
    status = call({ Action = "DescribeRegions", Version = "2014-10-01" }, { method = "GET" })
    assert.are.equal(200, status)
  end)

  it("refuses a request signed more than 5 minutes ago with RequestExpired", function()
    local status, root = call({ Action = "DescribeRegions", Version = "2014-10-01" },
      { time = math.floor(sys.time()) - 600 })
    assert.are.equal(400, status)
    assert.are.equal("RequestExpired", error_code(root))
    status = call({ Action = "DescribeRegions", Version = "2014-10-01" }, { time = math.floor(sys.time()) - 60 })
    assert.are.equal(200, status)
  end)

  it("refuses parameters botocore's EC2 model does not have, and missing required ones", function()
    local status, root = call({ Action = "DescribeInstances", Version = "2014-10-01", InstanceIdd = "i-1" })
    assert.are.equal(400, status)
    assert.are.equal("UnknownParameter", error_code(root))
    assert.matches("InstanceIdd", find(root, "Errors/Error/Message").text)
    status, root = call({ Action = "CreateSecurityGroup", Version = "2014-10-01", GroupName = "juju-x" })
    assert.are.equal(400, status)
    assert.are.equal("MissingParameter", error_code(root))
    assert.matches("GroupDescription", find(root, "Errors/Error/Message").text)
    status, root = call({ Action = "RunInstances", Version = "2014-10-01", ImageId = "ami-26745463",
      MinCount = "one", MaxCount = "1" })
    assert.are.equal(400, status)
    assert.are.equal("InvalidParameterValue", error_code(root))
    status, root = call({ Action = "DescribeInstances", Version = "2014-10-01", ["Filter.1.Name"] = "bogus",
      ["Filter.1.Value.1"] = "x" })
    assert.are.equal(400, status)
    assert.are.equal("InvalidParameterValue", error_code(root))
    assert.matches("The filter 'bogus' is invalid", find(root, "Errors/Error/Message").text)
    status, root = call({ Action = "DescribeEverything", Version = "2014-10-01" })
    assert.are.equal(400, status)
    assert.are.equal("InvalidAction", error_code(root))
  end)

  it("throttles the next calls with RequestLimitExceeded (503), then succeeds", function()
    admin("POST", "/_admin/faults", { action = "DescribeAvailabilityZones", error = "RequestLimitExceeded", count = 2 })
    local params = { Action = "DescribeAvailabilityZones", Version = "2014-10-01" }
    for _ = 1, 2 do
      local status, root = call(params)
      assert.are.equal(503, status)
      assert.are.equal("RequestLimitExceeded", error_code(root))
    end
    assert.are.equal(200, (call(params)))
    local calls = admin("GET", "/_admin/calls?action=DescribeAvailabilityZones").calls
    local last = { calls[#calls - 2].code, calls[#calls - 1].code, calls[#calls].status }
    assert.are.same({ "RequestLimitExceeded", "RequestLimitExceeded", 200 }, last)
  end)

  it("fails the Nth call with a 500 and injects InsufficientInstanceCapacity into RunInstances", function()
    admin("POST", "/_admin/faults", { nth = 2, error = "InternalError" })
    local params = { Action = "DescribeRegions", Version = "2014-10-01" }
    assert.are.equal(200, (call(params)))
    local status, root = call(params)
    assert.are.equal(500, status)
    assert.are.equal("InternalError", error_code(root))
    assert.are.equal(200, (call(params)))
    admin("POST", "/_admin/faults", { action = "RunInstances", error = "InsufficientInstanceCapacity" })
    status, root = call({ Action = "RunInstances", Version = "2014-10-01", ImageId = "ami-26745463",
      MinCount = "1", MaxCount = "1", InstanceType = "m3.medium" })
    assert.are.equal(500, status)
    assert.are.equal("InsufficientInstanceCapacity", error_code(root))
  end)

  -- Describes until the instance leaves `from` (bounded in calls: the fake
  -- counts state changes in DescribeInstances calls, not in time).
  local function describe_until(id, from)
    local settled = admin("GET", "/_admin/settle?timeout=20")
    assert(settled.settled, "the fake's launchers did not answer: " .. assert(json.encode(settled)))
    local item
    for _ = 1, 5 do
      local status, root = call({ Action = "DescribeInstances", Version = "2014-10-01", ["InstanceId.1"] = id })
      assert.are.equal(200, status)
      item = find(root, "reservationSet/item/instancesSet/item")
      if find(item, "instanceState/name").text ~= from then return item end
    end
    return item
  end

  it("runs the launcher with the decoded user-data; the instance gets the launcher's address", function()
    local cloud_config = "#cloud-config\nruncmd:\n- echo launched-by-spec\n"
    local status, root = call({ Action = "RunInstances", Version = "2014-10-01", ImageId = "ami-26745463",
      MinCount = "1", MaxCount = "1", InstanceType = "m3.medium", ClientToken = "spec-launch-1",
      UserData = crypto.base64(gzip.gzip(cloud_config)) })
    assert.are.equal(200, status)
    local item = find(root, "instancesSet/item")
    local id = find(item, "instanceId").text
    assert.are.equal("pending", find(item, "instanceState/name").text)
    assert.is_nil(find(item, "privateIpAddress"))
    item = describe_until(id, "pending")
    assert.are.equal("running", find(item, "instanceState/name").text)
    local index = tonumber(fs.read_file(records .. "/" .. id .. ".index"))
    assert.are.equal("127.0.0." .. (20 + index), find(item, "privateIpAddress").text)
    assert.are.equal("127.0.0." .. (20 + index), find(item, "ipAddress").text)
    assert.are.equal(cloud_config, fs.read_file(records .. "/" .. id .. ".user-data"))
    assert.are.equal("600\n", fs.read_file(records .. "/" .. id .. ".mode"))
    assert.are.equal(cloud_config, admin("GET", "/_admin/user-data/" .. id))
    -- terminating runs the terminator, then the instance is terminated
    status = call({ Action = "TerminateInstances", Version = "2014-10-01", ["InstanceId.1"] = id })
    assert.are.equal(200, status)
    item = describe_until(id, "shutting-down")
    assert.are.equal("terminated", find(item, "instanceState/name").text)
    assert.are.equal("127.0.0." .. (20 + index) .. "\n", fs.read_file(records .. "/" .. id .. ".terminated"))
  end)

  it("refuses user-data over 16 KiB with InvalidParameterValue and starts nothing", function()
    local before = #admin("GET", "/_admin/state").instances
    local status, root = call({ Action = "RunInstances", Version = "2014-10-01", ImageId = "ami-26745463",
      MinCount = "1", MaxCount = "1", UserData = crypto.base64(crypto.random_bytes(16385)) })
    assert.are.equal(400, status)
    assert.are.equal("InvalidParameterValue", error_code(root))
    assert.are.equal(before, #admin("GET", "/_admin/state").instances)
  end)

  it("sends an instance to terminated instead of running when told to", function()
    admin("POST", "/_admin/faults", { fate = "terminated" })
    local status, root = call({ Action = "RunInstances", Version = "2014-10-01", ImageId = "ami-26745463",
      MinCount = "1", MaxCount = "1" })
    assert.are.equal(200, status)
    local id = find(root, "instancesSet/item/instanceId").text
    local item = describe_until(id, "pending")
    assert.are.equal("terminated", find(item, "instanceState/name").text)
    assert.are.equal("Server.InternalError", find(item, "stateReason/code").text)
  end)

  -- One call through botocore's client: the parsed answer (botocore's
  -- member names) or {Error = {Code, Message}}.
  local function boto(operation, params)
    return botoclient("/call", { operation = operation, params = params or {} })
  end

  it("retries a RunInstances whose answer was lost with the same ClientToken: one instance", function()
    admin("POST", "/_admin/faults", { action = "RunInstances", drop_response = true })
    local req = signed({ Action = "RunInstances", Version = "2014-10-01", ImageId = "ami-26745463",
      MinCount = "1", MaxCount = "1", ClientToken = "spec-dropped-1" })
    local r, _, code = http.request { url = req.url, method = "POST", headers = req.headers, body = req.body,
      retries = 0 }
    assert.is_nil(r)
    assert.is_not_nil(code)
    local status, root = send(req)
    assert.are.equal(200, status)
    local id = find(root, "instancesSet/item/instanceId").text
    local calls = admin("GET", "/_admin/calls?action=RunInstances").calls
    assert.are.equal("spec-dropped-1", calls[#calls - 1].params.ClientToken)
    assert.are.equal("spec-dropped-1", calls[#calls].params.ClientToken)
    assert.are.equal("(answer dropped)", calls[#calls - 1].code)
    -- the same token with other parameters is EC2's IdempotentParameterMismatch
    local other = boto("run_instances", { ImageId = "ami-26745463", MinCount = 1, MaxCount = 1,
      InstanceType = "m3.large", ClientToken = "spec-dropped-1" })
    assert.are.equal("IdempotentParameterMismatch", other.Error.Code)
    local mine = {}
    for _, i in ipairs(admin("GET", "/_admin/state").instances) do
      if i.client_token == "spec-dropped-1" then mine[#mine + 1] = i.id end
    end
    assert.are.same({ id }, mine)
  end)

  it("resets the connection without doing anything, and records the delayed call", function()
    admin("POST", "/_admin/faults", { action = "CreateSecurityGroup", reset = true })
    local params = { Action = "CreateSecurityGroup", Version = "2014-10-01", GroupName = "juju-reset",
      GroupDescription = "juju group" }
    local req = signed(params)
    local r, _, code = http.request { url = req.url, method = "POST", headers = req.headers, body = req.body,
      retries = 0 }
    assert.is_nil(r)
    assert.is_not_nil(code)
    assert.are.same({ Error = { Code = "InvalidGroup.NotFound",
      Message = "The security group 'juju-reset' does not exist" } },
      boto("describe_security_groups", { GroupNames = { "juju-reset" } }))
    admin("POST", "/_admin/faults", { action = "DescribeRegions", delay = 0.01 })
    assert.are.equal(200, (call({ Action = "DescribeRegions", Version = "2014-10-01" })))
    local calls = admin("GET", "/_admin/calls?action=DescribeRegions").calls
    assert.are.equal(1, #calls[#calls].faults)
  end)

  it("keeps EC2's group rules: revoke, DependencyViolation for a group another group's rule uses", function()
    local a = boto("create_security_group", { GroupName = "juju-rules", Description = "juju group" }).GroupId
    local b = boto("create_security_group", { GroupName = "juju-rules-0", Description = "juju group" }).GroupId
    local perm = { IpProtocol = "tcp", FromPort = 37017, ToPort = 37017, UserIdGroupPairs = { { GroupId = a } } }
    assert.is_true(boto("authorize_security_group_ingress", { GroupId = b, IpPermissions = { perm } }).Return)
    assert.are.equal("DependencyViolation", boto("delete_security_group", { GroupId = a }).Error.Code)
    assert.is_true(boto("revoke_security_group_ingress", { GroupId = b, IpPermissions = { perm } }).Return)
    assert.are.equal("InvalidPermission.NotFound",
      boto("revoke_security_group_ingress", { GroupId = b, IpPermissions = { perm } }).Error.Code)
    assert.is_nil(boto("delete_security_group", { GroupId = a }).Error)
    assert.is_nil(boto("delete_security_group", { GroupName = "juju-rules-0" }).Error)
  end)

  it("answers a default VPC, quotas and constrained zones as configured", function()
    admin("POST", "/_admin/config", { default_vpc = "vpc-0a1b2c3d", max_instances = 0,
      zones = { "us-east-1a", { name = "us-east-1b", state = "impaired" } } })
    local attrs = boto("describe_account_attributes", { AttributeNames = { "default-vpc" } })
    assert.are.equal("vpc-0a1b2c3d", attrs.AccountAttributes[1].AttributeValues[1].AttributeValue)
    local vpcs = boto("describe_vpcs", {}).Vpcs
    assert.are.equal(1, #vpcs)
    assert.is_true(vpcs[1].IsDefault)
    local subnets = boto("describe_subnets", { Filters = { { Name = "vpc-id", Values = { "vpc-0a1b2c3d" } } } })
    assert.are.equal(2, #subnets.Subnets)
    assert.is_true(subnets.Subnets[1].DefaultForAz)
    local quota = boto("run_instances", { ImageId = "ami-26745463", MinCount = 1, MaxCount = 1 })
    assert.are.equal("InstanceLimitExceeded", quota.Error.Code)
    admin("POST", "/_admin/config", { max_instances = 20 })
    local zoned = boto("run_instances", { ImageId = "ami-26745463", MinCount = 1, MaxCount = 1,
      Placement = { AvailabilityZone = "us-east-1b" } })
    assert.are.equal("InsufficientInstanceCapacity", zoned.Error.Code)
    assert.matches("Availability Zone", zoned.Error.Message)
    admin("POST", "/_admin/config", { default_vpc = yaml.null,
      zones = { "us-east-1a", "us-east-1b", "us-east-1c" } })
    assert.are.equal("none", boto("describe_account_attributes", {}).AccountAttributes[2].AttributeValues[1].AttributeValue)
  end)

  local function has(list, v)
    for _, x in ipairs(list) do
      if x == v then return true end
    end
  end

  it("lets a client wait for termination by retrying DeleteSecurityGroup", function()
    local g = boto("create_security_group", { GroupName = "juju-wait", Description = "juju group" }).GroupId
    local id = boto("run_instances", { ImageId = "ami-26745463", MinCount = 1, MaxCount = 1,
      SecurityGroupIds = { g } }).Instances[1].InstanceId
    assert.are.equal("running", find(describe_until(id, "pending"), "instanceState/name").text)
    local left = admin("GET", "/_admin/leftovers")
    assert.is_true(has(left.instances, id))
    assert.is_true(has(left.groups, "juju-wait"))
    boto("terminate_instances", { InstanceIds = { id } })
    admin("GET", "/_admin/settle?timeout=20")
    local codes = {}
    for _ = 1, 5 do
      local r = boto("delete_security_group", { GroupId = g })
      codes[#codes + 1] = r.Error and r.Error.Code or "deleted"
      if not r.Error then break end
    end
    assert.are.same({ "DependencyViolation", "deleted" }, codes)
    left = admin("GET", "/_admin/leftovers")
    assert.is_nil(has(left.instances, id))
    assert.is_nil(has(left.groups, "juju-wait"))
  end)

  it("without the launcher, gives instances addresses from the pool", function()
    admin("POST", "/_admin/config", { launcher = false, address_pool = { "127.0.100.7" } })
    local run = boto("run_instances", { ImageId = "ami-26745463", MinCount = 1, MaxCount = 1 })
    admin("POST", "/_admin/config", { launcher = true })
    local id = run.Instances[1].InstanceId
    local item = describe_until(id, "pending")
    assert.are.equal("running", find(item, "instanceState/name").text)
    assert.are.equal("127.0.100.7", find(item, "privateIpAddress").text)
    assert.is_false(fs.exists(records .. "/" .. id .. ".index"))
  end)

  it("sends an instance whose launcher fails to terminated, with the launcher's status", function()
    h.write(records .. "/fail-next", "")
    local id = boto("run_instances", { ImageId = "ami-26745463", MinCount = 1, MaxCount = 1 }).Instances[1].InstanceId
    local item = describe_until(id, "pending")
    assert.are.equal("terminated", find(item, "instanceState/name").text)
    assert.matches("launcher exited with status 3", find(item, "stateReason/message").text)
    local output
    for _, i in ipairs(admin("GET", "/_admin/state").instances) do
      if i.id == id then output = i.launcher.output end
    end
    assert.are.same({ "stderr: no host today" }, output)
  end)

  it("keeps secrets out of the journal", function()
    local calls = assert(json.encode(admin("GET", "/_admin/calls")))
    assert.is_nil(calls:find(SECRET, 1, true))
    assert.is_nil(calls:find("Signature=", 1, true))
    assert.matches("base64 characters", calls)
  end)

  -- Last: it stops the fake.
  it("runs the terminator for every launched host still up when it is stopped", function()
    local up = {}
    for _, i in ipairs(admin("GET", "/_admin/state").instances) do
      if i.launcher ~= yaml.null and i.state ~= "terminated" and i.state ~= "shutting-down" then up[#up + 1] = i end
    end
    assert.is_true(#up >= 1)
    assert.is_nil(s:log_text():find(SECRET, 1, true))
    assert.is_true(s:stop())
    for _, i in ipairs(up) do
      assert.are.equal(i.address .. "\n", fs.read_file(records .. "/" .. i.id .. ".terminated"))
    end
  end)
end)
