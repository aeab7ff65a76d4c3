-- joyent_bootstrap_spec.lua (#integration): `juju bootstrap --upload-tools`
-- of a joyent environment end to end against the CloudAPI fake (gosdc's
-- localservices/cloudapi model, every HTTP Signature checked in Go and by
-- npm http-signature; on 127.0.0.90) and the Manta fake, whose machine is a
-- real test host (juju.testing.instance as its launcher: the user-data
-- applied by cloud-init, sshd on 127.0.0.91.. with the generated host key):
-- credentials checked -> image from image-metadata-url -> package -> machine
-- -> SSH with the pinned host key -> phase 2 -> machine agent -> `juju
-- status` shows machine 0 started -> `juju destroy-environment -y` leaves no
-- machine and no Manta object, checked from the fakes' own state. The
-- private key (CVE-2015-1316) reaches no output, no user-data, no stored
-- object and no file on machine 0.
local fake = require("servers.cloudapi.fake")
local instance = require("juju.testing.instance")
local json = require("juju.json")
local yaml = require("juju.yaml")
local sys = require("juju.sys")
local fs = require("juju.fs")
local imagemeta = require("imagemeta")
local h = require("helpers")

local IMAGE = "11223344-0a0a-ff99-11bb-0a1b2c3d4e5f" -- one of gosdc's images
local REGION = "some-region" -- sdc-url on a loopback address (Juju's test hook)

describe("joyent bootstrap end to end #integration", function()
  local work, state_dir, j, images, key_lines

  setup(function()
    work = h.tmpdir("juju-joyent-e2e-")
    state_dir = work .. "/hosts"
    assert(fs.mkdir_p(state_dir, tonumber("700", 8)))
    local p = instance.programs(state_dir)
    j = fake.start("127.0.0.90", "joyente2e", { launcher = p.launcher, terminator = p.terminator,
      env = { INSTANCE_ADDRESS_BASE = "90", INSTANCE_OWNER_PID = p.env.INSTANCE_OWNER_PID } })
    images = imagemeta.write(work .. "/img", { region = REGION, endpoint = j.sdc_url,
      images = { { id = IMAGE, series = "bookworm", arch = "amd64" } } })
    key_lines = {}
    for l in j.key_pem:gmatch("[^\n]+") do
      if not l:find("-----", 1, true) then key_lines[#key_lines + 1] = l end
    end
    assert(#key_lines > 3)
  end)

  teardown(function()
    if j then j:stop() end
    instance.terminate_all(state_dir)
    h.cleanup()
  end)

  local function no_secret(text, what)
    for _, l in ipairs(key_lines) do
      assert.is_nil(text:find(l, 1, true), "a line of the private key in " .. what)
    end
    assert.is_nil(text:find("BEGIN OPENSSH PRIVATE KEY", 1, true) and text:find(key_lines[2], 1, true),
      "the private key in " .. what)
  end

  local function new_environment(name, attrs)
    local home = h.tmpdir("juju-joyent-e2e-home-")
    local env = h.env(home, { ASAN_OPTIONS = os.getenv("ASAN_OPTIONS") })
    assert(fs.mkdir_p(env.JUJU_HOME, tonumber("700", 8)))
    assert(fs.mkdir_p(env.HOME .. "/.ssh", tonumber("700", 8)))
    local kg = sys.run({ "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", env.HOME .. "/.ssh/id_ed25519" }, {})
    assert.are.equal(0, kg.code, kg.stderr)
    local e = { type = "joyent", ["sdc-user"] = j.user, ["sdc-key-id"] = j.key_id, ["sdc-url"] = j.sdc_url,
      ["manta-user"] = j.user, ["manta-key-id"] = j.key_id, ["manta-url"] = j.manta_url,
      ["private-key-path"] = j.key_path, ["image-metadata-url"] = images, ["default-series"] = "bookworm",
      ["state-store"] = "sqlite", ["bootstrap-timeout"] = 300 }
    for k, v in pairs(attrs or {}) do if v == false then e[k] = nil else e[k] = v end end
    h.write(env.JUJU_HOME .. "/environments.yaml",
      assert(yaml.encode { default = name, environments = { [name] = e } }))
    return env, home
  end

  local function live_machines()
    local out = {}
    for _, m in ipairs(j:state().machines) do if not m.deleted then out[#out + 1] = m end end
    return out
  end

  local function assert_empty()
    assert.is_true(j:settle(60))
    assert.are.same({}, j:leftovers().machines)
    assert.are.same({}, j:manta_files())
  end

  it("bootstraps a real host, status shows machine 0 started, destroy-environment leaves nothing, the private "
    .. "key nowhere", function()
    local env = new_environment("jye2e")
    j:clear_calls()
    local code, out, err = h.juju(env, { "bootstrap", "--upload-tools" })
    assert.are.equal(0, code, err)
    assert.matches("Bootstrap complete", err)
    assert.matches("Launching a Small machine from image " .. IMAGE:gsub("%-", "%%-"), err)
    assert.matches("Attempting to connect to 127%.0%.0%.9%d:22", err)
    local all_output = out .. err

    -- the fake's own view: one running machine of this environment
    local ms = live_machines()
    assert.are.equal(1, #ms)
    local m = ms[1]
    assert.are.equal("running", m.state)
    assert.are.equal(IMAGE, m.image)
    assert.are.equal("juju", m.tags.group)
    assert.are.equal("jye2e", m.tags.env)
    assert.is_string(m.tags["juju-env-uuid"])
    assert.are.equal("answered", m.launcher)
    -- every CloudAPI call was signed and both checkers accepted it
    local counts = {}
    for _, c in ipairs(j:calls()) do
      assert.are.equal("checked", c.auth, c.method .. " " .. c.path)
      local k = c.method .. " " .. c.path
      counts[k] = (counts[k] or 0) + 1
    end
    assert.are.equal(1, counts["POST /{user}/machines"])
    io.stderr:write("joyent bootstrap CloudAPI calls: ", json.encode(counts), "\n")

    -- CVE-2015-1316: the user-data the machine got (plain YAML), every
    -- stored object, and every file of machine 0's root hold no line of the
    -- private key
    local ud = assert(j:user_data(m.id))
    assert.matches("^#cloud%-config", ud)
    no_secret(ud, "the user-data")
    local files = j:manta_files()
    assert.is_string(next(files))
    for path, content in pairs(files) do no_secret(content, path) end
    local rec = assert(json.decode(assert(fs.read_file(state_dir .. "/" .. m.id .. ".json"))))
    -- (inside the host's mount namespace, as its sshd sees the files)
    local function on_host(argv)
      local full = { "nsenter", "--target", tostring(rec.sshd_pid), "--mount", "--root", "--" }
      for _, a in ipairs(argv) do full[#full + 1] = a end
      return sys.run(full, { timeout = 60 })
    end
    local r = on_host({ "grep", "-rlF", key_lines[3], "/var/lib/juju", "/var/lib/cloud", "/etc", "/home",
      "/var/log", "/tmp" })
    assert.are.equal(1, r.code, "the private key is on machine 0 in: " .. r.stdout .. r.stderr)
    -- the search can find: machine 0 holds the agent's config
    local r2 = on_host({ "grep", "-rlF", m.tags["juju-env-uuid"], "/var/lib/juju" })
    assert.are.equal(0, r2.code, "no agent config on machine 0: " .. r2.stderr)

    -- issue 14.14: the user-data's host key was rotated at the end of
    -- bootstrap; the .jenv pins the new one, which status uses
    assert.matches("Rotated machine 0's SSH host key", all_output)
    local old = assert(yaml.decode(ud:gsub("^#cloud%-config\n", ""))).ssh_keys.ed25519_public
    local jenv = assert(yaml.decode(h.read(env.JUJU_HOME .. "/environments/jye2e.jenv")))
    local new = jenv["bootstrap-config"]["bootstrap-host-key"]
    assert.is_string(new)
    assert.are_not.equal(old:match("^%S+ (%S+)"), new:match("^%S+ (%S+)"))
    assert.are.equal(old:gsub("%s+$", ""), m.tags["juju-host-key"]) -- the generated key kept on the machine

    code, out, err = h.juju(env, { "status" })
    assert.are.equal(0, code, err)
    all_output = all_output .. out .. err
    local doc = assert(yaml.decode(out))
    assert.are.equal("started", doc.machines["0"]["agent-state"])
    assert.are.equal(m.id, doc.machines["0"]["instance-id"])

    -- provider-state in Manta: a second bootstrap is refused, creating nothing
    local code2, _, err2 = h.juju(env, { "bootstrap", "--upload-tools" })
    assert.are.equal(1, code2, err2)
    assert.matches("already bootstrapped", err2)
    assert.are.equal(1, #live_machines())

    code, out, err = h.juju(env, { "destroy-environment", "-y", "jye2e" })
    assert.are.equal(0, code, err)
    all_output = all_output .. out .. err
    assert_empty()
    assert.is_false(require("juju.proc").alive(rec.holder_pid))
    assert.is_false(fs.exists(rec.root))
    no_secret(all_output, "the output")
    -- the secret config values (the key ids, the accounts) are redacted too
    assert.is_nil(all_output:find(j.key_id, 1, true), "sdc-key-id in the output")
    assert.is_nil(all_output:find(j.user, 1, true), "sdc-user in the output")
  end)

  it("a bootstrap that fails after the machine runs (no SSH within bootstrap-timeout) removes the machine, "
    .. "provider-state and the control directory", function()
    j:config { launcher = false, address_pool = "127.0.106.1-9" } -- nobody listens there
    finally(function() j:config { launcher = true } end)
    local env = new_environment("jylate", { ["bootstrap-timeout"] = 8 })
    local code, out, err = h.juju(env, { "bootstrap", "--upload-tools" })
    assert.are.equal(1, code, err)
    local errors = {}
    for l in err:gmatch("[^\n]+") do if l:match("^ERROR ") then errors[#errors + 1] = l end end
    assert.are.equal(1, #errors, err)
    assert.matches("127%.0%.106%.%d", err)
    no_secret(out .. err, "the output")
    -- the machine was made (and provider-state written), then undone
    local made = 0
    for _, m in ipairs(j:state().machines) do
      if m.tags.env == "jylate" then
        made = made + 1
        assert.is_true(m.deleted, m.id)
      end
    end
    assert.are.equal(1, made)
    -- Manta's own log: provider-state was put, then deleted, and the directory
    local log = j.manta:log_text()
    assert.matches("PUT /" .. j.user .. "/stor/%x+/provider%-state 204", log)
    assert.matches("DELETE /" .. j.user .. "/stor/%x+/provider%-state 204", log)
    assert.matches("DELETE /" .. j.user .. "/stor/%x+ 204", log)
    assert_empty()
    assert.is_false(fs.exists(env.JUJU_HOME .. "/environments/jylate.jenv"))
  end)

  it("SIGINT while CloudAPI holds the machine's state poll: interrupted, the machine undone, nothing left",
    function()
    j:config { launcher = false, address_pool = "127.0.106.11-19" }
    finally(function() j:config { launcher = true }; j:clear_faults() end)
    local env = new_environment("jyint")
    j:clear_calls()
    j:faults({ op = "GET /{user}/machines/{id}", delay = 6, reset = true, count = 1 })
    local dir = h.tmpdir("juju-joyent-e2e-int-")
    local p = assert(sys.spawn({ h.juju_exe, "--show-log", "bootstrap", "--upload-tools" },
      { env = env, stdin = "null", stdout = dir .. "/stdout", stderr = dir .. "/stderr" }))
    local held = false
    local deadline = sys.monotonic() + 120
    while not held and sys.monotonic() < deadline do
      for _, c in ipairs(j:calls()) do
        if c.method == "GET" and c.path == "/{user}/machines/{id}" and c.pending then held = true end
      end
      if not held then
        if p:wait(0) then break end
        sys.sleep(0.05)
      end
    end
    assert.is_true(held, "the poll was never held")
    assert(p:kill("INT"))
    local code = p:wait(120)
    if code == "TIMEOUT" then p:kill("KILL"); p:wait(5) end
    p:close()
    local err = fs.read_file(dir .. "/stderr") or ""
    assert.are.equal(1, code, err)
    assert.matches("interrupted", err)
    no_secret(err .. (fs.read_file(dir .. "/stdout") or ""), "the output")
    local made = 0
    for _, m in ipairs(j:state().machines) do
      if m.tags.env == "jyint" then
        made = made + 1
        assert.is_true(m.deleted, m.id)
      end
    end
    assert.are.equal(1, made)
    assert_empty()
    assert.is_false(fs.exists(env.JUJU_HOME .. "/environments/jyint.jenv"))
  end)

  -- Bad input at the command level: one ERROR line naming the key or the
  -- constraint, exit 1, nothing created in the cloud, no .jenv left.
  it("refuses bad input in one line naming the key or constraint, creating nothing", function()
    local other = h.tmpdir("juju-joyent-e2e-key-") .. "/id_other"
    local kg = sys.run({ "ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", other }, {})
    assert.are.equal(0, kg.code, kg.stderr)
    local BAD = {
      { what = "another key", attrs = { ["private-key-path"] = other },
        want = { "authentication failed at", "sdc-key-id" } },
      { what = "no sdc-user", attrs = { ["sdc-user"] = false }, want = { "sdc-user: required" } },
      -- image metadata for another CloudAPI endpoint does not match sdc-url
      { what = "no image for the cloud", attrs = { ["image-metadata-url"] = imagemeta.write(work .. "/img-other",
        { region = REGION, endpoint = "http://127.0.0.1:1", images = { { id = IMAGE, series = "bookworm",
          arch = "amd64" } } }) },
        want = { "cannot find an image", 'no "bookworm" images in some-region' } },
      { what = "no package fits", args = { "--constraints", "mem=64G" },
        want = { "no package of some-region matches constraints", "mem=65536M" } },
    }
    for i, case in ipairs(BAD) do
      local name = "jybad" .. i
      local env = new_environment(name, case.attrs)
      local args = { "bootstrap", "--upload-tools" }
      for _, a in ipairs(case.args or {}) do args[#args + 1] = a end
      local code, out, err = h.juju(env, args)
      assert.are.equal(1, code, case.what .. ": " .. err)
      local errors = {}
      for l in err:gmatch("[^\n]+") do if l:match("^ERROR ") then errors[#errors + 1] = l end end
      assert.are.equal(1, #errors, case.what .. ": " .. err)
      for _, needle in ipairs(case.want) do
        assert.is_truthy(errors[1]:find(needle, 1, true), case.what .. ": " .. needle .. " not in " .. errors[1])
      end
      no_secret(out .. err, case.what)
      assert.is_nil((out .. err):find(j.user, 1, true), case.what .. ": sdc-user in the output")
      assert.is_nil((out .. err):find(j.key_id, 1, true), case.what .. ": sdc-key-id in the output")
      assert.is_false(fs.exists(env.JUJU_HOME .. "/environments/" .. name .. ".jenv"), case.what)
      assert_empty()
    end
  end)
end)
