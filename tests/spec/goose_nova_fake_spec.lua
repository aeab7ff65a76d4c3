-- goose_nova_fake_spec.lua: the goose OpenStack fake's compute side
-- (tests/servers/goose, README.md) as a cloud whose servers are test hosts:
-- BUILD -> ACTIVE with the launcher's address, launcher failure -> ERROR,
-- deletion lasting until the terminator exits, the real API's lower-case
-- keys, image/flavor/user_data refusals, floating IPs as NAT to a real
-- sshd, injected faults, the journal, state and leftovers, and the
-- terminator run for every server left when the fake exits.
-- Addresses: the fake on 127.0.0.180, hosts 127.0.0.181-199, floating IPs
-- 127.0.4.180-199.
local fake = require("servers.goose.fake")
local keystone = require("juju.cloud.keystone")
local http = require("juju.http")
local json = require("juju.json")
local fs = require("juju.fs")
local instance = require("juju.testing.instance")
local sys = require("juju.sys")
local crypto = require("juju.crypto")

local C = fake.CREDS
local IMAGE = "img-trusty-amd64"

describe("goose Nova fake", function()
  local s, ks, token, nova_url, work, state_dir

  -- A launcher that prints 127.0.0.<180 + index> (nothing listens there),
  -- fails for servers named *-fail*, and launches a real test host
  -- (juju.testing.instance, at 127.0.0.199) for servers named *-real*.
  local function write_programs()
    local p = instance.programs(state_dir)
    local launcher = work .. "/launcher.sh"
    assert(fs.write_atomic(launcher, table.concat({
      "case \"$INSTANCE_NAME\" in",
      "*-fail*) echo 'no capacity here' >&2; exit 3;;",
      "*-real*) INSTANCE_INDEX=19 exec " .. p.launcher .. ";;",
      "esac",
      -- the copy first: the fake counts the launcher settled once it printed
      "cp \"$USER_DATA_FILE\" " .. work .. "/launched-$INSTANCE_ID",
      "echo 127.0.0.$((180 + INSTANCE_INDEX % 19))",
    }, "\n") .. "\n"))
    local terminator = work .. "/terminator.sh"
    assert(fs.write_atomic(terminator, table.concat({
      "echo \"$INSTANCE_ID $INSTANCE_ADDRESS\" >> " .. work .. "/terminated",
      "case \"$INSTANCE_NAME\" in *-real*) exec " .. p.terminator .. ";; esac",
    }, "\n") .. "\n"))
    return "/bin/sh " .. launcher, "/bin/sh " .. terminator, p.env
  end

  setup(function()
    work = assert(fs.mkdtemp((os.getenv("TMPDIR") or "/tmp") .. "/goose-nova-spec-"))
    state_dir = work .. "/instances"
    local launcher, terminator, env = write_programs()
    s = fake.start("127.0.0.180", "novafake", {
      launcher = launcher, terminator = terminator, images = { IMAGE }, floating_pool = "127.0.4.180-199",
      nat_ports = { 22 }, streams = true,
      env = { INSTANCE_ADDRESS_BASE = "180", INSTANCE_OWNER_PID = env.INSTANCE_OWNER_PID },
    })
    ks = assert(keystone.new { auth_url = s.v2, username = C.username, password = C.password,
                               tenant_name = C.tenant_name, region = "RegionOne" })
    token = assert(ks:token())
    nova_url = assert(ks:endpoint("compute"))
  end)
  teardown(function()
    if s then s:stop() end
    if state_dir then instance.terminate_all(state_dir) end
    if work then fs.remove_tree(work) end
  end)
  before_each(function()
    s:clear_faults()
    s:config { build_gets = 1, delete_gets = 0, launcher = true, group_in_use = true }
  end)

  -- A compute request: status, decoded body (or the raw text), headers.
  local function nova(method, path, body, opts)
    opts = opts or {}
    local r, msg, code, resp = http.request { url = nova_url .. path, method = method, retries = 0,
      timeout = opts.timeout or 20, body = body and assert(json.encode(body)) or nil,
      headers = { ["X-Auth-Token"] = token, ["Content-Type"] = body and "application/json" or nil } }
    r = r or resp
    if not r then return nil, msg, code end
    local doc = r.body ~= "" and json.decode(r.body) or nil
    return r.status, doc or r.body, r.headers
  end

  local function create(name, extra)
    local srv = { name = name, imageRef = IMAGE, flavorRef = "1",
                  metadata = { ["juju-env-uuid"] = "uuid-1", Name = name } }
    for k, v in pairs(extra or {}) do srv[k] = v end
    local status, doc = nova("POST", "/servers", { server = srv })
    assert.are.equal(202, status, json.encode(doc))
    return doc.server.id
  end

  local function get(id)
    local status, doc = nova("GET", "/servers/" .. id)
    return status, doc and doc.server
  end

  local function delete_and_wait(id)
    assert.are.equal(204, (nova("DELETE", "/servers/" .. id)))
    assert.is_true(s:settle(60))
    local status = get(id)
    assert.are.equal(404, status)
  end

  it("a server is BUILD without addresses until its launcher printed one, then ACTIVE with it", function()
    local id = create("juju-env-machine-0", { user_data = "I2Nsb3VkLWNvbmZpZwo=" })
    local status, srv = get(id)
    assert.are.equal(200, status)
    assert.are.equal("BUILD", srv.status)
    assert.are.same({}, srv.addresses)
    assert.is_true(s:settle(30))
    srv = select(2, get(id))
    assert.are.equal("ACTIVE", srv.status)
    local addr = srv.addresses.private[1]
    assert.matches("^127%.0%.0%.18%d$", addr.addr)
    assert.are.equal("fixed", addr["OS-EXT-IPS:type"])
    assert.are.equal(4, addr.version)
    -- the real API's keys, the user's metadata keys untouched
    assert.are.equal(id, srv.id)
    assert.are.equal("juju-env-machine-0", srv.name)
    assert.are.equal("juju-env-machine-0", srv.metadata.Name)
    assert.is_nil(srv.Status)
    assert.are.equal("1", srv.flavor.id)
    -- state: user_data stored as sent, metadata kept
    local st = s:state()
    local rec
    for _, r in ipairs(st.servers) do if r.id == id then rec = r end end
    assert.are.equal("answered", rec.launcher)
    assert.are.equal("#cloud-config\n", s:user_data(id))
    assert.are.equal(14, rec.user_data_size)
    assert.are.equal("uuid-1", rec.metadata["juju-env-uuid"])
    assert.are.equal("#cloud-config\n", fs.read_file(work .. "/launched-" .. id))
    -- detail lists it the same way
    local _, list = nova("GET", "/servers/detail")
    local found
    for _, x in ipairs(list.servers) do if x.id == id then found = x end end
    assert.are.equal("ACTIVE", found.status)
    delete_and_wait(id)
  end)

  it("deleting runs the terminator; the server is ACTIVE/deleting until it exits, then 404 and no leftovers", function()
    local id = create("juju-env-machine-1")
    assert.are.equal("BUILD", select(2, get(id)).status)
    assert.is_true(s:settle(30))
    local _, srv = get(id)
    local addr = srv.addresses.private[1].addr
    assert.are.equal(204, (nova("DELETE", "/servers/" .. id)))
    assert.is_true(s:settle(30))
    assert.are.equal(404, (get(id)))
    assert.matches(id .. " " .. addr:gsub("%.", "%%."), fs.read_file(work .. "/terminated"))
    local left = s:leftovers()
    assert.are.same({}, left.servers)
  end)

  it("a launcher that fails sends the server to ERROR with a fault", function()
    local id = create("juju-env-fail-0")
    assert.is_true(s:settle(30))
    local _, srv = get(id)
    assert.are.equal("ERROR", srv.status)
    assert.are.equal(500, srv.fault.code)
    assert.matches("no capacity here", srv.fault.message)
    delete_and_wait(id)
  end)

  it("refuses an unknown image, an unknown flavor and bad user_data (Nova's 400s)", function()
    local status, doc = nova("POST", "/servers", { server = { name = "x", imageRef = "nope", flavorRef = "1" } })
    assert.are.equal(400, status)
    assert.are.equal("Can not find requested image", doc.badRequest.message)
    status, doc = nova("POST", "/servers", { server = { name = "x", imageRef = IMAGE, flavorRef = "99" } })
    assert.are.equal(400, status)
    assert.are.equal("Flavor 99 could not be found.", doc.badRequest.message)
    status, doc = nova("POST", "/servers", { server = { name = "x", imageRef = IMAGE, flavorRef = "1",
                                                       user_data = "***not base64***" } })
    assert.are.equal(400, status)
    assert.are.equal("Userdata content cannot be decoded", doc.badRequest.message)
    assert.are.equal(404, (nova("GET", "/images/nope")))
    local _, img = nova("GET", "/images/" .. IMAGE)
    assert.are.equal(IMAGE, img.image.id)
    assert.are.same({}, s:leftovers().servers)
  end)

  it("injected faults: a status with Nova's body, overLimit with Retry-After, reset, drop_response, delay", function()
    s:faults { op = "GET /servers/detail", status = 500 }
    local status, doc = nova("GET", "/servers/detail")
    assert.are.equal(500, status)
    assert.are.equal(500, doc.computeFault.code)
    assert.are.equal(200, (nova("GET", "/servers/detail")))
    s:faults { op = "GET /flavors/detail", status = 413, retry_after = 2 }
    local hdrs
    status, doc, hdrs = nova("GET", "/flavors/detail")
    assert.are.equal(413, status)
    assert.is_table(doc.overLimit)
    assert.are.equal("2", hdrs["retry-after"])
    s:faults { op = "POST /os-security-groups", reset = true }
    local ok, msg = nova("POST", "/os-security-groups", { security_group = { name = "g-reset", description = "d" } })
    assert.is_nil(ok)
    assert.is_string(msg)
    s:faults { op = "POST /os-security-groups", drop_response = true }
    ok = nova("POST", "/os-security-groups", { security_group = { name = "g-drop", description = "d" } })
    assert.is_nil(ok)
    assert.are.same({ "g-drop" }, s:leftovers().security_groups)
    s:faults { op = "GET /os-security-groups", delay = 3 }
    ok = nova("GET", "/os-security-groups", nil, { timeout = 1 })
    assert.is_nil(ok)
    local _, groups = nova("GET", "/os-security-groups")
    for _, g in ipairs(groups.security_groups) do
      if g.name == "g-drop" then assert.are.equal(202, (nova("DELETE", "/os-security-groups/" .. g.id))) end
    end
    assert.are.same({}, s:leftovers().security_groups)
    -- the journal names the template and the fault, never the token
    local calls = s:calls("compute")
    local seen = {}
    for _, c in ipairs(calls) do seen[c.method .. " " .. c.path .. " " .. (c.fault or "")] = c.status end
    assert.are.equal(500, seen["GET /servers/detail status"])
    assert.are.equal(202, seen["DELETE /os-security-groups/{id} "])
    assert.is_not_nil(seen["POST /os-security-groups reset"])
    assert.is_nil(json.encode(calls):find(token, 1, true))
  end)

  it("refuses deleting a security group a server still uses; state shows groups with rules", function()
    local _, g = nova("POST", "/os-security-groups", { security_group = { name = "juju-env", description = "juju group" } })
    local gid = g.security_group.id
    local status, rule = nova("POST", "/os-security-group-rules", { security_group_rule = {
      parent_group_id = gid, ip_protocol = "tcp", from_port = 22, to_port = 22, cidr = "0.0.0.0/0" } })
    assert.are.equal(200, status, json.encode(rule))
    local id = create("juju-env-machine-2", { security_groups = { { name = "juju-env" } } })
    local doc
    status, doc = nova("DELETE", "/os-security-groups/" .. gid)
    assert.are.equal(400, status)
    assert.are.equal("Security group is still in use", doc.badRequest.message)
    local st = s:state()
    local found
    for _, sg in ipairs(st.security_groups) do if sg.name == "juju-env" then found = sg end end
    assert.are.equal(22, found.rules[1].from_port)
    assert.are.equal("tcp", found.rules[1].ip_protocol)
    delete_and_wait(id)
    assert.are.equal(202, (nova("DELETE", "/os-security-groups/" .. gid)))
    assert.are.same({}, s:leftovers().security_groups)
  end)

  it("registers product-streams and juju-tools; imagemetadata is readable without a token", function()
    local streams = assert(ks:endpoint("product-streams"))
    assert.are.equal(s.url .. "/swift/v1/imagemetadata", streams)
    assert.are.equal(s.url .. "/swift/v1", assert(ks:endpoint("juju-tools")))
    local put = assert(http.request { url = streams .. "/streams/v1/index.json", method = "PUT", body = "{}",
                                      headers = { ["X-Auth-Token"] = token }, retries = 0 })
    assert.are.equal(201, put.status)
    local r = assert(http.request { url = streams .. "/streams/v1/index.json", retries = 0 })
    assert.are.equal("{}", r.body)
    local _, _, _, refused = http.request { url = s.url .. "/swift/v1", retries = 0 }
    assert.are.equal(401, refused.status)
    -- the fixture's container is not a leftover
    assert.are.same({}, s:leftovers().containers)
    assert.are.equal(0, s:leftovers().objects)
  end)

  -- The SSH banner at ip:22 (nil and why when nothing answers).
  local function banner(ip)
    local r = assert(sys.run({ "/usr/bin/python3", "-c",
      "import socket,sys\ns=socket.create_connection((sys.argv[1],22),5)\ns.settimeout(5)\n"
        .. "sys.stdout.write(s.recv(64).decode())", ip }, { timeout = 20 }))
    if r.code ~= 0 then return nil, r.stderr end
    return r.stdout
  end

  it("a real test host: ACTIVE with its sshd's address, a floating IP NATs to it, delete terminates it", function()
    local id = create("juju-env-real-0", { user_data = assert(crypto.base64("#cloud-config\nruncmd:\n  - echo hi\n")) })
    local srv = select(2, get(id))
    assert.are.equal("BUILD", srv.status)
    local _, fip = nova("POST", "/os-floating-ips", {})
    local ip = fip.floating_ip.ip
    assert.matches("^127%.0%.4%.1[89]%d$", ip)
    -- no fixed address yet: Nova cannot associate
    local status, doc = nova("POST", "/servers/" .. id .. "/action", { addFloatingIp = { address = ip } })
    assert.are.equal(400, status, json.encode(doc))
    assert.is_true(s:settle(180))
    srv = select(2, get(id))
    assert.are.equal("ACTIVE", srv.status, json.encode(srv))
    assert.are.equal("127.0.0.199", srv.addresses.private[1].addr)
    assert.matches("^SSH%-2%.0%-", assert(banner("127.0.0.199")))
    assert.are.equal(202, (nova("POST", "/servers/" .. id .. "/action", { addFloatingIp = { address = ip } })))
    srv = select(2, get(id))
    assert.are.equal(ip, srv.addresses.private[2].addr)
    assert.are.equal("floating", srv.addresses.private[2]["OS-EXT-IPS:type"])
    local _, list = nova("GET", "/os-floating-ips")
    assert.are.equal(id, list.floating_ips[1].instance_id)
    assert.are.equal("127.0.0.199", list.floating_ips[1].fixed_ip)
    assert.matches("^SSH%-2%.0%-", assert(banner(ip)))
    -- disassociated: nothing listens on the floating IP any more
    assert.are.equal(202, (nova("POST", "/servers/" .. id .. "/action", { removeFloatingIp = { address = ip } })))
    assert.is_nil((banner(ip)))
    assert.are.equal(202, (nova("POST", "/servers/" .. id .. "/action", { addFloatingIp = { address = ip } })))
    assert.matches("^SSH%-2%.0%-", assert(banner(ip)))
    delete_and_wait(id)
    assert.is_nil((banner("127.0.0.199")))
    assert.is_nil((banner(ip)))
    assert.are.same({ ip }, s:leftovers().floating_ips)
    assert.are.equal(202, (nova("DELETE", "/os-floating-ips/" .. fip.floating_ip.id)))
    local left = s:leftovers()
    assert.are.same({}, left.floating_ips)
    assert.are.same({}, left.servers)
  end)

  it("on exit (SIGTERM) the fake runs the terminator of every server left", function()
    local id = create("juju-env-machine-9")
    assert.is_true(s:settle(30))
    s:stop()
    s = nil
    local log = fs.read_file(work .. "/terminated") or ""
    assert.matches("\n" .. id .. " 127%.0%.0%.%d+\n", "\n" .. log)
  end)
end)
