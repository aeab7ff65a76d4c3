-- clouds_openstack_spec.lua: tests/clouds/openstack.lua (the emulated
-- OpenStack cloud of the command-level specs) against its goose fake, with
-- direct Keystone, Nova and Swift calls (juju.cloud.keystone, juju.cloud.api,
-- juju.http): each fault kind does what the module's header says, a held
-- call is pending in calls() while held, leftovers come from the fake's own
-- state, environment() authenticates, the image metadata matches both auth
-- URLs, machines/stored_files/storage_calls read what the fake holds.
-- Addresses: the fake on 127.0.0.60, pool and floating IPs 127.0.[0|4].61-69
-- (no test hosts: hosts stay off).
local clouds = require("clouds.openstack")
local keystone = require("juju.cloud.keystone")
local api = require("juju.cloud.api")
local http = require("juju.http")
local json = require("juju.json")
local crypto = require("juju.crypto")
local simplestreams = require("juju.simplestreams")
local fs = require("juju.fs")
local sys = require("juju.sys")
local h = require("helpers")

local PYTHON = "/usr/bin/python3"

describe("clouds.openstack", function()
  local c, attrs, ks, nova, swift, nova_url

  local function ks_for(a, auth_url)
    return assert(keystone.new { auth_url = auth_url or a["auth-url"], username = a.username, password = a.password,
      tenant_name = a["tenant-name"], domain_name = a["domain-name"], region = a.region })
  end

  setup(function()
    c = clouds.start { address_base = 60, host_slots = 9 }
    attrs = c:environment()
    ks = ks_for(attrs)
    nova_url = assert(ks:endpoint("compute"))
    nova = api.new { name = "nova", endpoint = nova_url, sign = function(r) ks:sign(r) end, errors = "openstack" }
    swift = api.new { name = "swift", endpoint = assert(ks:endpoint("object-store")),
      sign = function(r) ks:sign(r) end, errors = "openstack" }
  end)
  teardown(function()
    if c then c:stop() end
    h.cleanup()
  end)
  before_each(function()
    c:clear_faults()
    c:clear_calls()
    c:hosts(false)
  end)
  after_each(function() collectgarbage() end)

  -- A compute call straight through juju.http (no retries): status, body,
  -- headers; or nil, message, code.
  local function raw(method, path, opts)
    opts = opts or {}
    local r, msg, code, resp = http.request { url = nova_url .. path, method = method, retries = 0,
      timeout = opts.timeout or 20, body = opts.body and assert(json.encode(opts.body)) or nil,
      headers = { ["X-Auth-Token"] = assert(ks:token()), ["Content-Type"] = opts.body and "application/json" or nil } }
    r = r or resp
    if not r then return nil, msg, code end
    return r.status, r.body, r.headers
  end

  local function calls_of(key)
    local out = {}
    for _, call in ipairs(c:calls()) do
      if call.key == key then out[#out + 1] = call end
    end
    return out
  end

  it("environment(): Keystone accepts its attributes; a fresh control bucket each time", function()
    assert.are.equal("openstack", attrs.type)
    assert.are.equal(c.fake.v3, attrs["auth-url"])
    assert.are.equal("RegionOne", attrs.region)
    assert.is_string(attrs["domain-name"])
    assert.matches("^matrix%-%x+$", attrs["control-bucket"])
    assert.are_not.equal(attrs["control-bucket"], c:environment()["control-bucket"])
    assert.are.equal(2, c:environment { ["control-bucket"] = 2 }["control-bucket"])
    assert.is_string(ks:token())
    -- the same credentials over v2 (a cloud started with identity = "v2" hands out that URL)
    assert.is_string(ks_for(attrs, c.fake.v2):token())
    -- the secrets are the credentials the fake checks: a wrong password is refused
    assert.are.equal(attrs.password, c.secrets.password)
    local bad = {}
    for k, v in pairs(attrs) do bad[k] = v end
    bad.password = attrs.password .. "-wrong"
    local tok, msg = ks_for(bad):token()
    assert.is_nil(tok)
    assert.is_nil(msg:find(attrs.password, 1, true))
  end)

  it("image metadata: bookworm amd64 in RegionOne for both auth URLs, no other cloud", function()
    local source = { { url = attrs["image-metadata-url"] } }
    for _, endpoint in ipairs { c.fake.v3, c.fake.v2 } do
      local imgs = assert(simplestreams.find_images(source, { series = "bookworm", arches = { "amd64" },
        region = "RegionOne", endpoint = endpoint, stream = "released" }))
      assert.are.equal(1, #imgs)
      assert.are.same(c:state().images, { imgs[1].id })
    end
    assert.is_nil(simplestreams.find_images(source, { series = "bookworm", arches = { "amd64" },
      region = "RegionTwo", endpoint = c.fake.v3, stream = "released" }))
  end)

  it("error: one 400 badRequest with the matrix message, not retried, then the call succeeds", function()
    local key = "GET /flavors/detail"
    c:inject(key, "error")
    local resp, msg, code = nova:request { method = "GET", path = "/flavors/detail", idempotent = true }
    assert.is_nil(resp)
    assert.are.equal("INVALID", code)
    for _, needle in ipairs(clouds.fault_text("error", key)) do
      if needle:find("^nova ") then needle = "nova: GET " end -- the provider names the call; this client its URL
      assert.is_truthy(msg:find(needle, 1, true), msg)
    end
    assert.is_truthy(msg:find("400", 1, true), msg)
    assert.is_truthy(msg:find("badRequest", 1, true), msg)
    local calls = calls_of(key)
    assert.are.equal(1, #calls)
    assert.are.equal(400, calls[1].status)
    assert.is_true(calls[1].faulted)
    assert.is_false(calls[1].pending)
    assert.is_false(calls[1].throttled)
    assert.are.equal(200, (raw("GET", "/flavors/detail")))
  end)

  it("throttled: one 429 overLimit with Retry-After 1, then success (a retrying client gets 200)", function()
    local key = "GET /servers/detail"
    c:inject(key, "throttled")
    local status, body, headers = raw("GET", "/servers/detail")
    assert.are.equal(429, status)
    assert.are.equal("1", headers["retry-after"])
    assert.is_table(assert(json.decode(body)).overLimit)
    assert.are.equal(200, (raw("GET", "/servers/detail")))
    c:inject(key, "throttled")
    local t0 = sys.monotonic()
    local resp = assert(nova:request { method = "GET", path = "/servers/detail", idempotent = true })
    assert.are.equal(200, resp.status)
    assert.are.equal(2, resp.attempts)
    assert.is_true(sys.monotonic() - t0 >= 0.9, "the client did not wait the Retry-After")
    local calls = calls_of(key)
    assert.are.equal(4, #calls)
    assert.are.same({ true, false, true, false }, { calls[1].throttled, calls[2].throttled, calls[3].throttled,
      calls[4].throttled })
    assert.are.same({ 429, 200, 429, 200 }, { calls[1].status, calls[2].status, calls[3].status, calls[4].status })
    -- count: that many throttled answers
    c:inject(key, "throttled", { count = 2 })
    assert.are.equal(429, (raw("GET", "/servers/detail")))
    assert.are.equal(429, (raw("GET", "/servers/detail")))
    assert.are.equal(200, (raw("GET", "/servers/detail")))
  end)

  it("reset: every call of the key reset until clear_faults; other calls pass", function()
    local key = "GET /os-security-groups"
    c:inject(key, "reset")
    for _ = 1, 2 do
      local status, msg = raw("GET", "/os-security-groups")
      assert.is_nil(status)
      assert.is_truthy(msg:lower():find("reset", 1, true), msg)
    end
    assert.are.equal(200, (raw("GET", "/flavors/detail")))
    local calls = calls_of(key)
    assert.are.equal(2, #calls)
    for _, call in ipairs(calls) do
      assert.is_true(call.faulted)
      assert.is_false(call.pending)
      assert.is_nil(call.status)
    end
    c:clear_faults()
    assert.are.equal(200, (raw("GET", "/os-security-groups")))
  end)

  it("timeout: no answer for the seconds given (the client times out), then a reset; skip lets calls through",
    function()
    local key = "GET /os-networks"
    c:inject(key, "timeout", { seconds = 2, skip = 1 })
    assert.are.equal(200, (raw("GET", "/os-networks")))
    local t0 = sys.monotonic()
    local status, msg, code = raw("GET", "/os-networks", { timeout = 0.5 })
    assert.is_nil(status)
    assert.are.equal("HTTP_TIMEOUT", code, msg)
    assert.is_true(sys.monotonic() - t0 < 1.5)
    -- without a client timeout: the fake answers nothing, then resets
    c:inject(key, "timeout", { seconds = 1 })
    t0 = sys.monotonic()
    status, msg = raw("GET", "/os-networks")
    assert.is_nil(status)
    assert.is_true(sys.monotonic() - t0 >= 0.9)
    assert.is_truthy(msg:lower():find("reset", 1, true) or msg:lower():find("empty", 1, true), msg)
    assert.are.equal(200, (raw("GET", "/os-networks")))
    local calls = calls_of(key)
    assert.are.equal(4, #calls)
    assert.are.same({ false, true, true, false }, { calls[1].faulted, calls[2].faulted, calls[3].faulted,
      calls[4].faulted })
  end)

  it("hold: the held call is pending in calls() while held, then reset", function()
    local key = "GET /os-floating-ips"
    c:inject(key, "hold", { seconds = 3 })
    -- the call in flight from another process (token and URL in a 0600 file)
    local args = h.tmpdir("juju-spec-hold-") .. "/args"
    h.write(args, nova_url .. "/os-floating-ips\n" .. assert(ks:token()) .. "\n")
    local p = assert(sys.spawn({ PYTHON, "-c", table.concat({
      "import sys, urllib.request",
      "url, token = open(sys.argv[1]).read().split('\\n')[:2]",
      "try:",
      "    urllib.request.urlopen(urllib.request.Request(url, headers={'X-Auth-Token': token}), timeout=30)",
      "    print('answered')",
      "except Exception as e:",
      "    print('failed', type(e).__name__)",
    }, "\n"), args }, { stdout = "null" }))
    local seen_pending = false
    local deadline = sys.monotonic() + 10
    while not seen_pending and sys.monotonic() < deadline do
      for _, call in ipairs(calls_of(key)) do
        if call.pending then
          seen_pending = true
          assert.is_nil(call.status)
          assert.is_true(call.faulted)
        end
      end
      if not seen_pending then sys.sleep(0.05) end
    end
    assert.is_true(seen_pending, "the held call never showed as pending")
    local code = p:wait(20)
    p:close()
    assert.are.equal(0, code)
    local calls = calls_of(key)
    assert.are.equal(1, #calls)
    assert.is_false(calls[1].pending)
    assert.is_nil(calls[1].status)
    assert.are.equal(200, (raw("GET", "/os-floating-ips")))
  end)

  it("leftovers: a created security group, a floating IP, a server and a container, then empty", function()
    assert.are.same({}, c:leftovers())
    local name = "juju-spec-" .. crypto.hex(crypto.random_bytes(3))
    local g = assert(nova:request { method = "POST", path = "/os-security-groups",
      headers = { ["Content-Type"] = "application/json" },
      body = assert(json.encode { security_group = { name = name, description = "juju group" } }) })
    local gid = assert(json.decode(g.body)).security_group.id
    assert.are.same({ "security group " .. name }, c:leftovers())
    local fip = assert(json.decode(assert(nova:request { method = "POST", path = "/os-floating-ips",
      headers = { ["Content-Type"] = "application/json" }, body = "{}" }).body)).floating_ip
    assert.matches("^127%.0%.4%.6%d$", fip.ip)
    assert.are.same({ "floating ip " .. fip.ip, "security group " .. name }, c:leftovers())
    assert(nova:request { method = "DELETE", path = "/os-security-groups/" .. gid })
    assert(nova:request { method = "DELETE", path = "/os-floating-ips/" .. fip.id })
    assert.are.same({}, c:leftovers())
  end)

  it("hosts(false): a server takes the range's first pool address; machines() lists it with its user-data",
    function()
    local ud = "#cloud-config\nruncmd: [true]\n"
    local r = assert(nova:request { method = "POST", path = "/servers", headers = { ["Content-Type"] = "application/json" },
      body = assert(json.encode { server = { name = "juju-spec-machine-0", imageRef = c:state().images[1],
        flavorRef = "1", user_data = crypto.base64(ud) } }) })
    local id = assert(json.decode(r.body)).server.id
    assert.are.same({ "server " .. id }, c:leftovers())
    assert.are.same({ "POST /servers" }, (function()
      local keys = {}
      for _, call in ipairs(c:calls()) do keys[#keys + 1] = call.key end
      return keys
    end)())
    raw("GET", "/servers/" .. id)
    local _, body = raw("GET", "/servers/" .. id)
    local srv = assert(json.decode(body)).server
    assert.are.equal("ACTIVE", srv.status)
    assert.are.equal("127.0.0.61", srv.addresses.private[1].addr)
    local ms = c:machines()
    assert.are.equal(1, #ms)
    assert.are.equal(id, ms[1].id)
    assert.are.equal(ud, ms[1].user_data)
    assert.is_nil(ms[1].pid) -- no test host behind a pool address
    assert.are.equal("GET /servers/{id}", c:calls()[2].key)
    assert(nova:request { method = "DELETE", path = "/servers/" .. id })
    assert.are.same({}, c:leftovers())
    assert.are.same({}, c:machines())
    -- hosts(false) again: the pool starts over
    c:hosts(false)
    r = assert(nova:request { method = "POST", path = "/servers", headers = { ["Content-Type"] = "application/json" },
      body = assert(json.encode { server = { name = "juju-spec-machine-1", imageRef = c:state().images[1],
        flavorRef = "1" } }) })
    id = assert(json.decode(r.body)).server.id
    raw("GET", "/servers/" .. id)
    srv = assert(json.decode((select(2, raw("GET", "/servers/" .. id))))).server
    assert.are.equal("127.0.0.61", srv.addresses.private[1].addr)
    assert(nova:request { method = "DELETE", path = "/servers/" .. id })
    assert.are.same({}, c:leftovers())
  end)

  it("hosts(true): the server is a real test host at the slot's address (slots wrap); machines() gives its pid",
    function()
    c.slot = c.host_slots -- the 10th hosted bootstrap of the range wraps to its first address
    c:hosts(true)
    local ud = "#cloud-config\nruncmd:\n- echo hosted > /root/hosted\n"
    local r = assert(nova:request { method = "POST", path = "/servers", headers = { ["Content-Type"] = "application/json" },
      body = assert(json.encode { server = { name = "juju-spec-machine-0", imageRef = c:state().images[1],
        flavorRef = "1", user_data = crypto.base64(ud) } }) })
    local id = assert(json.decode(r.body)).server.id
    finally(function() nova:request { method = "DELETE", path = "/servers/" .. id } end)
    c:settle()
    raw("GET", "/servers/" .. id)
    local srv = assert(json.decode((select(2, raw("GET", "/servers/" .. id))))).server
    assert.are.equal("ACTIVE", srv.status, json.encode(c:state().servers))
    assert.are.equal("127.0.0.61", srv.addresses.private[1].addr)
    local ms = c:machines()
    assert.are.equal(1, #ms)
    assert.is_number(ms[1].pid)
    assert.are.same({ id .. ".json" }, c:host_records())
    local cat = assert(sys.run({ "nsenter", "--target", tostring(ms[1].pid), "--mount", "--root", "--wd", "--", "cat",
      "/root/hosted" },
      { timeout = 30 }))
    assert.are.equal("hosted\n", cat.stdout)
    assert(nova:request { method = "DELETE", path = "/servers/" .. id })
    assert.are.same({}, c:leftovers())
    assert.are.same({}, c:host_records())
    assert.are.equal(c.host_slots + 1, c.slot)
  end)

  it("storage: storage_calls() keys, stored_files() holds each object's content, leftovers name them", function()
    local bucket = c:environment()["control-bucket"]
    assert(swift:request { method = "PUT", path = "/" .. bucket })
    assert(swift:request { method = "PUT", path = "/" .. bucket .. "/provider-state", body = "state-instances: [x]\n" })
    assert(swift:request { method = "PUT", path = "/" .. bucket .. "/tools/releases/juju-1.25.0-bookworm-amd64.tgz",
      body = "tgz" })
    assert(swift:request { method = "GET", path = "/" .. bucket .. "/provider-state" })
    local keys = {}
    for _, call in ipairs(c:storage_calls()) do
      keys[#keys + 1] = call.key .. " " .. tostring(call.status)
      assert.are.equal(bucket, call.bucket)
    end
    assert.are.same({ "PUT container 201", "PUT provider-state 201", "PUT tools/... 201", "GET provider-state 200" },
      keys)
    assert.are.same({}, c:calls()) -- compute calls only
    assert.are.same({ "container RegionOne/" .. bucket, "objects 2" }, c:leftovers())
    local files = c:stored_files()
    assert.are.equal(2, #files)
    local by_name = {}
    for _, f in ipairs(files) do
      by_name[f:match("[^/]+$")] = f
      assert.are.equal(0, fs.stat(f).mode & tonumber("077", 8))
    end
    assert.are.equal("state-instances: [x]\n", fs.read_file(by_name["provider-state"]))
    local suffix = "/RegionOne/" .. bucket .. "/provider-state"
    assert.are.equal(suffix, by_name["provider-state"]:sub(-#suffix))
    assert.are.equal("tgz", fs.read_file(by_name["juju-1.25.0-bookworm-amd64.tgz"]))
    for _, o in ipairs { "provider-state", "tools/releases/juju-1.25.0-bookworm-amd64.tgz" } do
      assert(swift:request { method = "DELETE", path = "/" .. bucket .. "/" .. o })
    end
    assert(swift:request { method = "DELETE", path = "/" .. bucket })
    assert.are.same({}, c:leftovers())
    assert.are.same({}, c:stored_files())
  end)

  it("fault_text: the strings of the provider's error line for each kind", function()
    assert.are.same({ "nova POST /servers", "matrix fault in POST /servers" }, c:fault_text("error", "POST /servers"))
    assert.are.same({ "nova GET /servers/{id}", "deadline of" }, clouds.fault_text("timeout", "GET /servers/{id}"))
    assert.are.same({ "nova POST /servers", "reset" }, clouds.fault_text("reset", "POST /servers"))
    assert.are.same({ "interrupted" }, clouds.fault_text("hold", "POST /servers"))
    assert.has_error(function() clouds.fault_text("boom", "POST /servers") end)
    assert.has_error(function() c:inject("POST /servers", "boom") end)
  end)
end)
