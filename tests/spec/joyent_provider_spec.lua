-- joyent_provider_spec.lua: the joyent provider (providers/joyent) through
-- its contract operations, against the CloudAPI fake (tests/servers/cloudapi:
-- gosdc's localservices/cloudapi with every HTTP Signature checked by Go
-- and by npm http-signature) and the Manta fake (tests/servers/manta),
-- started once for this file on 127.0.0.81 without a launcher: machines take
-- addresses from a pool nobody listens on, so everything up to "running
-- with an address" is tested here; tests/integration/joyent_bootstrap_spec.lua
-- runs the rest on real hosts.
local fake = require("servers.cloudapi.fake")
local testing = require("juju.testing")
local context = require("juju.context")
local journal = require("juju.journal")
local providers = require("juju.providers")
local release_journal = require("juju.environs.teardown").run
local crypto = require("juju.crypto")
local http = require("juju.http")
local fs = require("juju.fs")
local sign = require("juju.sign")
local manta_harness = require("servers.manta.harness")
local imagemeta = require("imagemeta")
local h = require("helpers")

local IMAGE = "11223344-0a0a-ff99-11bb-0a1b2c3d4e5f" -- one of gosdc's images
local REGION = "some-region" -- sdc-url on a loopback address

local work = h.tmpdir("juju-joyent-provider-spec-")
local j = fake.start("127.0.0.81", "joyentprovider", { address_pool = "127.0.103.1-254" })
local provider = assert(providers.load(nil, "joyent"))
local IMAGES = imagemeta.write(work .. "/img", { region = REGION, endpoint = j.sdc_url,
  images = { { id = IMAGE, series = "bookworm", arch = "amd64" } } })
local other_key = manta_harness.keygen(work, "id_other", "rsa", 2048)

teardown(function()
  j:stop()
  h.cleanup()
end)

-- Lines of the private key's body: none may appear anywhere.
local KEY_LINES = {}
for l in j.key_pem:gmatch("[^\n]+") do
  if not l:find("-----", 1, true) then KEY_LINES[#KEY_LINES + 1] = l end
end
assert(#KEY_LINES > 3)

local function no_key(text, what)
  assert.is_string(text, what)
  for _, l in ipairs(KEY_LINES) do
    assert.is_nil(text:find(l, 1, true), "a line of the private key in " .. what)
  end
  assert.is_nil(text:find("PRIVATE KEY", 1, true), "a private key in " .. what)
end

local counter = 0
local function environment(extra, env_vars)
  counter = counter + 1
  local name = "jy" .. counter
  local cfg = { name = name, type = "joyent", uuid = crypto.uuid4(), ["sdc-user"] = j.user,
    ["sdc-key-id"] = j.key_id, ["sdc-url"] = j.sdc_url, ["manta-user"] = j.user, ["manta-key-id"] = j.key_id,
    ["manta-url"] = j.manta_url, ["private-key-path"] = j.key_path, algorithm = "rsa-sha256",
    ["image-metadata-url"] = IMAGES, ["image-stream"] = "released", ["bootstrap-timeout"] = 600 }
  for k, v in pairs(extra or {}) do if v == false then cfg[k] = nil else cfg[k] = v end end
  local lines = {}
  local ctx = context.new { clock = testing.virtual_clock(), env = env_vars or {},
    stdout = function() end, stderr = function(x) lines[#lines + 1] = x end }
  local jr = journal.memory()
  local pc = context.provider(ctx, { home = work, env_name = name, cfg = cfg, provider_name = "joyent", journal = jr })
  return cfg, pc, jr, lines
end

local function opened(extra, env_vars)
  local cfg, pc, jr, lines = environment(extra, env_vars)
  cfg = assert(provider.prepare_for_bootstrap(pc, cfg))
  local env = assert(provider.open(pc, cfg))
  pc._open_storage = function() return provider.storage(env) end
  return env, pc, jr, cfg, lines
end

local HOST_PUB = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPHJ2k7Zd7p3zLKwZ0mG7lJmD3nJ7jL7mH3r1nJ8aP0m host"
local USERDATA = "#cloud-config\nruncmd:\n- echo hello\n"

local function start_params(env, extra)
  local p = {
    instance_config = { series = "bookworm", machine_id = "0", nonce = "user-admin:bootstrap",
      tags = { ["juju-env-uuid"] = env.uuid, ["juju-is-state"] = "true" } },
    userdata = USERDATA, tools = { { version = "1.25.6", series = "bookworm", arch = "amd64" } },
    constraints = {}, name = "juju-" .. env.uuid .. "-machine-0",
    host_keys = { ed25519 = { public = HOST_PUB } },
  }
  for k, v in pairs(extra or {}) do p[k] = v end
  return p
end

-- What the engine does around start_instance: the intent first.
local function start(env, jr, extra)
  local params = start_params(env, extra)
  assert(jr:intent("instance", params.name))
  local inst, err, code = provider.start_instance(env, params)
  if inst then assert(jr:record("instance", inst.id, { name = params.name })) end
  return inst, err, code
end

local function machines_of(env)
  local out = {}
  for _, m in ipairs(j:state().machines) do
    if (m.tags or {})["juju-env-uuid"] == env.uuid and not m.deleted then out[#out + 1] = m end
  end
  return out
end

local function count_calls(op)
  local n = 0
  for _, c in ipairs(j:calls()) do if c.method .. " " .. c.path == op then n = n + 1 end end
  return n
end

describe("joyent provider", function()
  after_each(function() collectgarbage() end)

  it("loads under contract v2 with its config keys", function()
    assert.are.equal("joyent", provider.name)
    assert.are.equal(2, provider.api_version)
    for _, k in ipairs({ "sdc-user", "sdc-key-id", "sdc-url", "manta-user", "manta-key-id", "manta-url",
      "private-key-path", "private-key", "algorithm", "control-dir" }) do
      assert.is_table(provider.config.fields[k], k)
    end
    assert.is_true(provider.config.fields["private-key"].secret)
    assert.is_true(provider.config.fields["sdc-key-id"].secret)
  end)

  it("juju init's entry names real keys, and prepares once they are filled in", function()
    local text = require("juju.boilerplate").ENTRIES.joyent
    local yaml = require("juju.yaml")
    -- uncomment the "# key: value" lines, as a user filling it in would
    local filled = text:gsub("\n    # ([%w-]+): [^\n]*", "\n    %1: X")
    local entry = assert(yaml.decode(filled)).joyent
    assert.are.equal("joyent", entry.type)
    local keys = {}
    for k in pairs(entry) do
      if k ~= "type" then
        keys[#keys + 1] = k
        assert.is_table(provider.config.fields[k], "boilerplate key " .. k)
      end
    end
    table.sort(keys)
    assert.are.same({ "manta-key-id", "manta-url", "manta-user", "private-key-path", "sdc-key-id", "sdc-url",
      "sdc-user" }, keys)
    local values = { ["sdc-user"] = j.user, ["sdc-key-id"] = j.key_id, ["sdc-url"] = j.sdc_url,
      ["manta-user"] = j.user, ["manta-key-id"] = j.key_id, ["manta-url"] = j.manta_url,
      ["private-key-path"] = j.key_path }
    local attrs = {}
    for _, k in ipairs(keys) do attrs[k] = values[k] end
    local cfg, pc = environment(attrs)
    assert(provider.prepare_for_bootstrap(pc, cfg))
  end)

  it("names the missing or bad key in one line", function()
    local cases = {
      { { ["sdc-user"] = false }, "sdc-user: required, or set $SDC_ACCOUNT" },
      { { ["sdc-key-id"] = false }, "sdc-key-id: required, or set $SDC_KEY_ID" },
      { { ["manta-user"] = false }, "manta-user: required, or set $MANTA_USER" },
      { { ["manta-key-id"] = false }, "manta-key-id: required, or set $MANTA_KEY_ID" },
      { { ["private-key-path"] = false }, "private-key-path: required" },
      { { ["sdc-url"] = "ftp://x" }, "sdc-url: " },
      { { ["manta-url"] = "nohost" }, "manta-url: " },
      { { ["control-dir"] = "a/b" }, "control-dir: " },
      { { ["private-key-path"] = work .. "/missing" }, "private-key-path: " },
      { { ["private-key-path"] = false, ["private-key"] = "not a key" }, "private-key: " },
      { { algorithm = "ecdsa-sha256" }, "algorithm: ecdsa-sha256 does not fit the rsa key of private-key-path" },
    }
    for _, c in ipairs(cases) do
      local cfg, pc = environment(c[1])
      local ok, err = provider.prepare_for_bootstrap(pc, cfg)
      assert.is_nil(ok, c[2])
      assert.is_truthy(err:find(c[2], 1, true), c[2] .. " not in: " .. tostring(err))
      assert.is_nil(err:find("\n", 1, true))
    end
  end)

  it("takes the credentials from the environment (providers.md 8.1) and generates control-dir", function()
    local cfg, pc = environment({ ["sdc-user"] = false, ["sdc-key-id"] = false, ["sdc-url"] = false,
      ["manta-user"] = false, ["manta-key-id"] = false, ["manta-url"] = false, ["private-key-path"] = false },
      { SDC_ACCOUNT = j.user, SDC_KEY_ID = j.key_id, SDC_URL = j.sdc_url, MANTA_USER = j.user,
        MANTA_KEY_ID = j.key_id, MANTA_URL = j.manta_url, MANTA_PRIVATE_KEY_FILE = j.key_path })
    local out = assert(provider.prepare_for_bootstrap(pc, cfg))
    assert.are.equal(j.sdc_url, out["sdc-url"])
    assert.are.equal(j.user, out["sdc-user"])
    assert.are.equal(j.key_path, out["private-key-path"])
    assert.matches("^%x+$", out["control-dir"])
    assert.are.equal(32, #out["control-dir"])
    -- the key's text is never copied into the config
    assert.is_nil(out["private-key"])
  end)

  it("verifies the credentials at prepare: HEAD /{user}/machines, a refused key named in one line", function()
    j:clear_calls()
    local cfg, pc = environment()
    assert(provider.prepare_for_bootstrap(pc, cfg))
    assert.are.equal(1, count_calls("HEAD /{user}/machines"))
    for _, c in ipairs(j:calls()) do assert.are.equal("checked", c.auth) end
    -- another key under the same key id: the signature does not verify
    local cfg2, pc2 = environment({ ["private-key-path"] = other_key })
    local ok, err, code = provider.prepare_for_bootstrap(pc2, cfg2)
    assert.is_nil(ok)
    assert.are.equal("AUTH", code, err)
    assert.matches("authentication failed at " .. j.sdc_url:gsub("%p", "%%%0"), err)
    assert.is_truthy(err:find("sdc-key-id", 1, true), err)
    assert.is_truthy(err:find("private-key", 1, true), err)
    no_key(err, "the message")
    no_key(err, "the message")
    local refused = j:calls()[#j:calls()]
    assert.are.equal(401, refused.status)
    assert.matches("^refused", refused.auth)
    -- an unknown key id
    local cfg3, pc3 = environment({ ["sdc-key-id"] = "00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff" })
    local ok3, err3, code3 = provider.prepare_for_bootstrap(pc3, cfg3)
    assert.is_nil(ok3)
    assert.are.equal("AUTH", code3, err3)
  end)

  it("the fake refuses unsigned and wrongly signed requests (the check can fail), in both checkers", function()
    local r, _, _, resp = http.get(j.sdc_url .. "/" .. j.user .. "/machines", { timeout = 10, retries = 0 })
    r = r or resp
    assert.are.equal(401, r.status)
    assert.matches("InvalidCredentials", r.body)
    -- a good signature of another Date: the Go check refuses it
    local httpsig = require("juju.cloud.sign.httpsig")
    local key = assert(sign.load_key_file(j.key_path))
    local req = { method = "GET", url = j.sdc_url .. "/" .. j.user .. "/machines", headers = {} }
    httpsig.sign(req, { key = key, key_id = httpsig.key_id(j.user, j.key_id), now = os.time(), form = "cloudapi" })
    local good = assert(http.request { url = req.url, headers = req.headers, timeout = 10, retries = 0 })
    assert.are.equal(200, good.status)
    req.headers.Date = httpsig.http_date(os.time() - 5)
    local r2, _, _, resp2 = http.request { url = req.url, headers = req.headers, timeout = 10, retries = 0 }
    r2 = r2 or resp2
    assert.are.equal(401, r2.status)
    -- the draft-cavage form (signature="..." over "date: ...") goes through
    -- http-signature's own parser and verifier
    local req3 = { method = "GET", url = j.sdc_url .. "/" .. j.user .. "/packages", headers = {} }
    httpsig.sign(req3, { key = key, key_id = httpsig.key_id(j.user, j.key_id), now = os.time() })
    local r3 = assert(http.request { url = req3.url, headers = req3.headers, timeout = 10, retries = 0 })
    assert.are.equal(200, r3.status)
    -- sigcheck.js alone (npm http-signature + sshpk): good, then tampered
    local function verdict(headers, path)
      return j:sigcheck { method = "GET", url = path or ("/" .. j.user .. "/machines"),
        headers = { date = headers.Date, authorization = headers.Authorization } }
    end
    local fresh = { method = "GET", url = j.sdc_url .. "/" .. j.user .. "/machines", headers = {} }
    httpsig.sign(fresh, { key = key, key_id = httpsig.key_id(j.user, j.key_id), now = os.time(), form = "cloudapi" })
    local v = verdict(fresh.headers)
    assert.is_true(v.ok, v.reason)
    assert.are.equal("sdc", v.form)
    local tampered = { Date = httpsig.http_date(os.time() - 7), Authorization = fresh.headers.Authorization }
    assert.is_false(verdict(tampered).ok)
    local wrong_id = { Date = fresh.headers.Date,
      Authorization = fresh.headers.Authorization:gsub("/keys/[^\"]+", "/keys/00:11") }
    assert.is_false(verdict(wrong_id).ok)
    assert.is_true(verdict(req3.headers, "/" .. j.user .. "/packages").ok)
    key:close()
  end)

  it("signs with ECDSA (P-256, P-384) and ed25519 keys too, CloudAPI and Manta, both checkers", function()
    for i, kt in ipairs({ { "ecdsa", 256, "ecdsa-sha256" }, { "ecdsa", 384, "ecdsa-sha384" },
      { "ed25519", nil, "ed25519-sha512" } }) do
      local f = fake.start("127.0.0." .. (81 + i), "joyent" .. kt[1] .. (kt[2] or ""), { key_type = kt[1],
        key_bits = kt[2], address_pool = "127.0.10" .. (4 + i) .. ".1-254" })
      local cfg, pc = environment({ ["sdc-key-id"] = f.key_id, ["sdc-url"] = f.sdc_url, ["manta-key-id"] = f.key_id,
        ["manta-url"] = f.manta_url, ["private-key-path"] = f.key_path, algorithm = false })
      cfg = assert(provider.prepare_for_bootstrap(pc, cfg))
      local env = assert(provider.open(pc, cfg))
      assert.are.equal(kt[3], env.s.algorithm)
      local st = provider.storage(env)
      assert(st:put("provider-state", "state-instances: []\n"))
      assert.are.equal("state-instances: []\n", st:get("provider-state"))
      assert.are.same({ "provider-state" }, st:list())
      assert.are.equal(4, #assert(provider.constraints_validator(env)).vocab["instance-type"])
      local calls = f:calls()
      assert.is_true(#calls >= 2)
      for _, c in ipairs(calls) do assert.are.equal("checked", c.auth, c.method .. " " .. c.path) end
      assert(st:remove_all())
      -- an RSA key under this key id is refused
      local cfg2, pc2 = environment({ ["sdc-key-id"] = f.key_id, ["sdc-url"] = f.sdc_url, algorithm = false })
      local ok, err, code = provider.prepare_for_bootstrap(pc2, cfg2)
      assert.is_nil(ok, kt[3])
      assert.are.equal("AUTH", code, err)
      f:stop()
    end
  end)

  it("picks the package for constraints from GET /{user}/packages", function()
    local env = opened()
    local function pick(c)
      local spec, err = provider.internal.find_spec(env, start_params(env, { constraints = c }))
      return spec and spec.package.name, err
    end
    assert.are.equal("Small", pick({})) -- the smallest with >= 1 GiB
    assert.are.equal("Micro", pick({ mem = 256 }))
    assert.are.equal("Medium", pick({ mem = 2048 }))
    assert.are.equal("Medium", pick({ ["cpu-cores"] = 2 }))
    assert.are.equal("Large", pick({ ["instance-type"] = "Large" }))
    local _, err = pick({ ["instance-type"] = "Huge" })
    assert.matches("instance%-type=Huge", err)
    assert.matches("Micro %(512 MiB, 1 core%)", err)
    _, err = pick({ mem = 65536 })
    assert.matches("no package of some%-region matches constraints", err)
    _, err = pick({ arch = "arm64" })
    assert.matches("arch=arm64", err)
    local v = provider.constraints_validator(env)
    assert.are.same({ "Micro", "Small", "Medium", "Large" }, v.vocab["instance-type"])
  end)

  it("finds the image for {region, sdc-url} and fails naming the series when there is none", function()
    local env = opened()
    local spec = assert(provider.internal.find_spec(env, start_params(env)))
    assert.are.equal(IMAGE, spec.image.id)
    local p = start_params(env)
    p.instance_config = { series = "trusty", tags = {} }
    local none, err = provider.internal.find_spec(env, p)
    assert.is_nil(none)
    assert.matches('cannot find an image: no "trusty" images in some%-region', err)
    -- metadata for another sdc-url does not match
    local other = imagemeta.write(work .. "/img-other", { region = REGION, endpoint = "http://127.0.0.1:1",
      images = { { id = IMAGE, series = "bookworm", arch = "amd64" } } })
    local env2 = opened({ ["image-metadata-url"] = other })
    local none2, err2 = provider.internal.find_spec(env2, start_params(env2))
    assert.is_nil(none2)
    assert.matches("cannot find an image", err2)
  end)

  it("starts a machine with plain user-data, juju tags, its name, no firewall; running with primaryIp public",
    function()
    local env, _, jr = opened()
    j:clear_calls()
    local inst = assert(start(env, jr))
    local ms = machines_of(env)
    assert.are.equal(1, #ms)
    local m = ms[1]
    assert.are.equal(inst.id, m.id)
    assert.are.equal("juju-" .. env.uuid .. "-machine-0", m.name)
    assert.are.equal("running", m.state)
    assert.are.equal("Small", m.package)
    assert.are.equal(IMAGE, m.image)
    assert.is_false(m.firewall_enabled)
    assert.are.equal("juju", m.tags.group)
    assert.are.equal(env.name, m.tags.env)
    assert.are.equal("true", m.tags["juju-is-state"])
    assert.are.equal(HOST_PUB, m.tags["juju-host-key"])
    assert.are.same({ "cloud-init:user-data" }, m.metadata_keys)
    assert.are.equal(USERDATA, j:user_data(m.id)) -- as sent: plain YAML, not gzip'd
    assert.are.equal("public", inst.addresses[1].scope)
    assert.are.equal("ipv4", inst.addresses[1].type)
    assert.are.equal(m.address, inst.addresses[1].value)
    assert.are.same({ arch = "amd64", mem = 1024, ["cpu-cores"] = 1, ["root-disk"] = 16384 }, inst.hardware)
    assert.are.equal(1, count_calls("POST /{user}/machines"))
    assert.is_true(count_calls("GET /{user}/machines/{id}") >= 1)
    local again = assert(inst.refresh())
    assert.are.equal("running", again.status)
    -- all_instances finds it by its tag
    local all = assert(provider.all_instances(env))
    assert.are.equal(1, #all)
    assert.are.equal(inst.id, all[1].id)
    assert(release_journal(provider, env, env.ctx, jr, {}))
    assert.are.same({}, machines_of(env))
  end)

  it("releases by the journal: stop, then delete (gosdc's rule); an intent without an id by its name", function()
    local env, pc, jr = opened()
    local inst = assert(start(env, jr))
    j:clear_calls()
    assert(release_journal(provider, env, pc, jr, {}))
    assert.are.same({}, machines_of(env))
    assert.are.equal(1, count_calls("POST /{user}/machines/{id}")) -- ?action=stop
    assert.are.equal(1, count_calls("DELETE /{user}/machines/{id}"))
    local seen = false
    for _, m in ipairs(j:state().machines) do if m.id == inst.id then seen = m.deleted end end
    assert.is_true(seen)
    -- a machine created whose id never reached the journal: found by name
    local env2, pc2, jr2 = opened()
    local params = start_params(env2)
    assert(jr2:intent("instance", params.name))
    assert(provider.start_instance(env2, params))
    assert.are.equal(1, #machines_of(env2))
    assert(release_journal(provider, env2, pc2, jr2, {}))
    assert.are.same({}, machines_of(env2))
  end)

  it("a refused create leaves nothing; a CloudAPI fault is one line naming the call", function()
    local env, pc, jr = opened()
    j:faults({ op = "POST /{user}/machines", status = 409, code = "QuotaExceeded",
      message = "quota exceeded: 2 of 2 machines" })
    local inst, err = start(env, jr)
    assert.is_nil(inst)
    assert.matches("cloudapi POST /{user}/machines", err, 1, true)
    assert.matches("quota exceeded", err)
    assert(release_journal(provider, env, pc, jr, {}))
    assert.are.same({}, machines_of(env))
    j:clear_faults()
  end)

  it("adopts the machine by its name when the POST's answer is lost (never a second machine)", function()
    local env, pc, jr = opened()
    j:faults({ op = "POST /{user}/machines", status = 500, code = "InternalError", message = "lost", after = true })
    local inst = assert(start(env, jr))
    local ms = machines_of(env)
    assert.are.equal(1, #ms)
    assert.are.equal(ms[1].id, inst.id)
    -- a 500 before CloudAPI acted: nothing to adopt, one line naming the call
    j:faults({ op = "POST /{user}/machines", status = 500, code = "InternalError", message = "boom" })
    local none, err = start(env, jr, { name = "juju-" .. env.uuid .. "-machine-1" })
    assert.is_nil(none)
    assert.is_truthy(err:find("cloudapi POST /{user}/machines", 1, true), err)
    assert.are.equal(1, #machines_of(env))
    assert(release_journal(provider, env, pc, jr, {}))
    assert.are.same({}, machines_of(env))
  end)

  it("waits out a throttled POST (CloudAPI acted on nothing), fails a reset or timed-out call naming it", function()
    local env, pc, jr = opened()
    j:clear_calls()
    j:faults({ op = "POST /{user}/machines", status = 429, code = "RequestThrottled", message = "slow down" })
    local inst = assert(start(env, jr))
    assert.are.equal(2, count_calls("POST /{user}/machines"))
    assert.are.equal(1, #machines_of(env))
    assert(release_journal(provider, env, pc, jr, {}))
    -- every attempt of a GET reset: the client's retries fail too
    local env2 = opened()
    j:faults({ op = "GET /{user}/packages", reset = true, count = -1 })
    local none, err = provider.internal.find_spec(env2, start_params(env2))
    j:clear_faults()
    assert.is_nil(none)
    assert.is_truthy(err:find("cloudapi GET /{user}/packages", 1, true), err)
    assert.matches("reset", err)
    -- no answer within cloud-request-timeout
    local cfg3, pc3 = environment({ ["cloud-request-timeout"] = 1 })
    j:faults({ op = "HEAD /{user}/machines", delay = 2, reset = true, count = -1 })
    local ok3, err3, code3 = provider.prepare_for_bootstrap(pc3, cfg3)
    j:clear_faults()
    assert.is_nil(ok3)
    assert.is_truthy(err3:find("cloudapi HEAD /{user}/machines", 1, true), err3)
    assert.are.equal("HTTP_TIMEOUT", code3, err3)
    local _ = inst
  end)

  it("gives up at once on a failed machine, and at bootstrap-timeout on one that stays provisioning", function()
    local env, pc, jr = opened()
    j:config { address_pool = "none" }
    local inst, err = start(env, jr)
    j:config { address_pool = "127.0.104.1-254" }
    assert.is_nil(inst)
    assert.matches("machine %S+ failed to start %(state failed%)", err)
    assert(release_journal(provider, env, pc, jr, {}))
    assert.are.same({}, machines_of(env))
    local env2, pc2, jr2 = opened({ ["bootstrap-timeout"] = 60 })
    j:config { build_gets = 1000000 }
    local inst2, err2, code2 = start(env2, jr2)
    j:config { build_gets = 1 }
    assert.is_nil(inst2)
    assert.are.equal("TIMEOUT", code2, err2)
    assert.matches("to be running with an address", err2)
    assert(release_journal(provider, env2, pc2, jr2, {}))
    assert.are.same({}, machines_of(env2))
  end)

  it("destroy finds the environment's machines by tag and removes the control directory", function()
    local env, _, jr = opened()
    assert(start(env, jr))
    assert(start(env, jr, { name = "juju-" .. env.uuid .. "-machine-1" }))
    local other = opened()
    local keep = assert(start(other, journal.memory()))
    local st = provider.storage(env)
    assert(st:put("provider-state", "state-instances: []\n"))
    assert(st:put("tools/x.tgz", "data"))
    assert.are.equal(2, #machines_of(env))
    assert(provider.destroy(env))
    assert.are.same({}, machines_of(env))
    assert.are.same({}, st:list())
    for path in pairs(j:manta_files()) do
      assert.is_nil(path:find(env.cfg["control-dir"], 1, true), path)
    end
    -- the other environment's machine is untouched
    local left = machines_of(other)
    assert.are.equal(1, #left)
    assert.are.equal(keep.id, left[1].id)
    assert(provider.destroy(other))
    assert.are.same({}, j:leftovers().machines)
  end)

  it("keeps the private key out of every request body, the user-data and every stored object", function()
    local env, _, jr = opened()
    local inst = assert(start(env, jr, { userdata = "#cloud-config\nruncmd:\n- echo hi\n" }))
    local st = provider.storage(env)
    assert(st:put("provider-state", "state-instances: [" .. inst.id .. "]\n"))
    no_key(j:user_data(inst.id), "the user-data")
    local body = require("juju.json").encode(provider.internal.machine_body(env, start_params(env),
      { package = { name = "Small" }, image = { id = IMAGE } }))
    no_key(body, "the POST body")
    for path, content in pairs(j:manta_files()) do no_key(content, path) end
    for _, m in ipairs(j:state().machines) do
      for _, v in pairs(m.tags or {}) do no_key(v, "a tag") end
    end
    -- state_server_instances reads provider-state back
    assert.are.same({ inst.id }, assert(provider.state_server_instances(env)))
    assert(provider.destroy(env))
    assert.are.same({}, machines_of(env))
    assert.is_true(fs.exists(j.key_path))
  end)
end)
