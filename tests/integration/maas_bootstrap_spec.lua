-- maas_bootstrap_spec.lua (#integration): `juju bootstrap` of a maas
-- environment end to end against the MAAS test server (gomaasapi's
-- TestServer behind tests/servers/maas, OAuth PLAINTEXT checked, on
-- 127.0.0.100) whose node is a real test host (juju.testing.instance as
-- its launcher: the user-data applied, sshd on 127.0.0.101.. with the
-- generated host key): get_config -> acquire -> start -> Deployed -> SSH
-- with the pinned host key -> phase 2 -> machine agent -> `juju status`
-- shows machine 0 started (the host key read back from the MAAS file) ->
-- `juju destroy-environment -y` releases the node (its host terminated)
-- and removes every file, checked from the server's own /_test/leftovers.
-- The token secret never reaches output, user-data, storage or machine 0.
-- Then the failures, one line each and nothing left: a failed deployment,
-- no node matching the constraints, SIGINT while the node deploys, wrong
-- credentials.
local fake = require("servers.maas.fake")
local maas_storage = require("juju.cloud.storage.maas")
local json = require("juju.json")
local gzip = require("juju.gzip")
local sys = require("juju.sys")
local fs = require("juju.fs")
local h = require("helpers")

describe("maas bootstrap end to end #integration", function()
  local state_dir, s

  setup(function()
    local _, p
    _, state_dir, p = h.test_hosts("juju-maas-e2e-")
    s = fake.start("127.0.0.100", "maase2e", { nodes = 2, launcher = p.launcher, terminator = p.terminator,
      env = { INSTANCE_ADDRESS_BASE = "100", INSTANCE_OWNER_PID = p.env.INSTANCE_OWNER_PID } })
  end)

  teardown(function() h.stop_test_hosts(s, state_dir) end)

  local function new_environment(name, attrs)
    local home = h.tmpdir("juju-maas-e2e-home-")
    local env = h.juju_user_env(home)
    local e = { type = "maas", ["maas-server"] = s.server_url, ["maas-oauth"] = fake.OAUTH,
      ["default-series"] = "bookworm", ["state-store"] = "sqlite", ["bootstrap-timeout"] = 300 }
    for k, v in pairs(attrs or {}) do e[k] = v end
    h.write_environments(env, name, e)
    return env, home
  end

  local function no_secret(text, what)
    assert.is_nil(text:find(fake.SECRET, 1, true), "the maas-oauth token secret in " .. what)
  end

  it("bootstraps a node, status shows machine 0 started, destroy-environment leaves nothing", function()
    local env = new_environment("maase2e")
    s:clear_calls()
    local code, out, err = h.juju(env, { "bootstrap", "--upload-tools" })
    assert.are.equal(0, code, err)
    assert.matches("Bootstrap complete", err)
    local all_output = out .. err

    -- the server's own view: one Deployed node for this environment's agent name
    local st = s:state()
    local deployed = {}
    for _, n in ipairs(st.nodes) do if n.status == "Deployed" then deployed[#deployed + 1] = n end end
    assert.are.equal(1, #deployed)
    local node = deployed[1]
    assert.are.equal("bookworm", node.distro_series)
    assert.matches("^127%.0%.0%.1%d%d$", node.address)
    assert.matches("connect to " .. node.address:gsub("%.", "%%.") .. ":22", err)
    local agent = node.agent_name
    assert.matches("^%x+%-", agent)
    -- secrets: not in the user-data the node got, nor in any file
    local ud = gzip.gunzip(assert(s:user_data(node.system_id)))
    assert.matches("^#cloud%-config", ud)
    no_secret(ud, "user-data")
    local files = st.files
    assert.is_true(#files >= 3, json.encode(files))
    local mine = 0
    for _, f in ipairs(files) do
      if f:sub(1, #agent + 1) == agent .. "-" then mine = mine + 1 end
    end
    assert.are.equal(#files, mine, "every file under the agent name's prefix: " .. json.encode(files))
    local store = assert(maas_storage.new { server = s.server_url, oauth = fake.OAUTH, prefix = "" })
    for _, f in ipairs(files) do no_secret(assert(store:get(f)), "the file " .. f) end
    assert.are.equal(assert(store:get(agent .. "-bootstrap-host-key")):match("^ssh%-ed25519 %S+"),
      (assert(json.decode(assert(fs.read_file(state_dir .. "/" .. node.system_id .. ".json")))).host_key_pub or "")
        :match("^ssh%-ed25519 %S+"))

    -- API calls per bootstrap, by operation (bench material; printed, not timed)
    local counts = {}
    for _, c in ipairs(s:calls()) do
      local k = c.method .. " " .. c.path .. (c.op ~= "" and ("?op=" .. c.op) or "")
      counts[k] = (counts[k] or 0) + 1
    end
    io.stderr:write("maas bootstrap API calls: ", json.encode(counts), "\n")
    assert.are.equal(1, counts["POST nodes/?op=acquire"])
    assert.are.equal(1, counts["POST nodes/{id}/?op=start"])

    all_output = all_output .. h.assert_machine0_started(env, "/MAAS/api/1.0/nodes/" .. node.system_id .. "/")

    local rec = assert(json.decode(assert(fs.read_file(state_dir .. "/" .. node.system_id .. ".json"))))
    -- nor on machine 0 (inside its mount namespace): its agent's files,
    -- cloud-init's copy of the user-data, its logs; the secret on stdin
    local dirs = "/var/lib/juju /var/lib/cloud /var/log"
    local found = sys.run({ "nsenter", "--target", tostring(rec.sshd_pid), "--mount", "--root", "--wd", "--",
      "/bin/sh", "-c", "find " .. dirs .. " -type f | wc -l; grep -rlF -f - " .. dirs .. " || true; echo ---; "
        -- the search can find: the bootstrap nonce is in the data dir
        .. "grep -rlF user-admin:bootstrap /var/lib/juju" },
      { stdin = fake.SECRET .. "\n", timeout = 60 })
    assert.are.equal(0, found.code, found.stderr)
    local count, hits, canary = found.stdout:match("^%s*(%d+)\n(.-)%-%-%-\n(.*)$")
    assert.is_true(tonumber(count) > 10, "searched only " .. tostring(count) .. " files of machine 0")
    assert.are.equal("", hits, "the token secret on machine 0 in: " .. tostring(hits))
    assert.matches("/var/lib/juju/nonce%.txt", canary)
    code, out, err = h.juju(env, { "destroy-environment", "-y", "maase2e" })
    assert.are.equal(0, code, err)
    all_output = all_output .. out .. err
    assert.is_true(s:settle(60))
    local left = s:leftovers()
    assert.are.same({}, left.nodes)
    assert.are.same({}, left.files)
    -- the host is gone with its node
    assert.is_false(require("juju.proc").alive(rec.holder_pid))
    assert.is_false(fs.exists(rec.root))
    no_secret(all_output, "the output")
    no_secret(s:log_text(), "the server's log")
  end)

  local function assert_nothing_left()
    assert.is_true(s:settle(60))
    local left = s:leftovers()
    assert.are.same({}, left.nodes)
    assert.are.same({}, left.files)
  end

  it("fails in one clear line when the node's deployment fails, and the node is released", function()
    local env = new_environment("maasfail")
    s:config { fail_deploy = 1 }
    local code, out, err = h.juju(env, { "bootstrap", "--upload-tools" })
    s:config { fail_deploy = 0 }
    assert.are.equal(1, code, err)
    assert.matches("failed to deploy %(MAAS: Failed deployment%)", err)
    assert.matches("Bootstrap failed, destroying environment", err)
    assert_nothing_left()
    local released = 0
    for _, n in ipairs(s:state().nodes) do released = released + n.releases end
    assert.is_true(released >= 2) -- this node, and the first case's
    no_secret(out .. err, "the output")
  end)

  it("says in one line that no node matches the constraints, and creates nothing", function()
    local env = new_environment("maasnomatch")
    local code, out, err = h.juju(env, { "bootstrap", "--upload-tools", "--constraints", "mem=64G cpu-cores=16" })
    assert.are.equal(1, code, err)
    assert.matches('no node available matches constraints "cpu%-cores=16 mem=65536M"', err)
    assert_nothing_left()
    no_secret(out .. err, "the output")
  end)

  it("SIGINT while the node deploys: exits 1 saying interrupted, the node released, nothing left", function()
    local env = new_environment("maasint")
    s:config { launcher = 0, deploy_polls = 1000000 }
    finally(function() s:config { launcher = 1, deploy_polls = 1 } end)
    local dir = h.tmpdir("juju-maas-int-")
    local p = assert(sys.spawn({ h.juju_exe, "bootstrap", "--upload-tools" },
      { env = env, stdin = "null", stdout = dir .. "/stdout", stderr = dir .. "/stderr" }))
    finally(function() p:close() end)
    local deadline = sys.monotonic() + 120
    local deploying
    repeat
      for _, n in ipairs(s:state().nodes) do if n.status == "Deploying" then deploying = n end end
      assert.is_nil(p:wait(0), "juju exited before the node deployed:\n" .. (fs.read_file(dir .. "/stderr") or ""))
      if not deploying then sys.sleep(0.1) end
    until deploying or sys.monotonic() > deadline
    assert.is_table(deploying, "no node deploying within 120 s")
    sys.sleep(0.5)
    assert(p:kill("INT"))
    local code = p:wait(60)
    local stderr = fs.read_file(dir .. "/stderr") or ""
    assert.are.equal(1, code, stderr)
    assert.matches("ERROR [^\n]*interrupted", stderr)
    assert_nothing_left()
    for _, n in ipairs(s:state().nodes) do
      if n.system_id == deploying.system_id then assert.are.equal("Ready", n.status) end
    end
    assert.is_false(fs.exists(env.JUJU_HOME .. "/environments/maasint.jenv"), "the .jenv was left behind")
    no_secret(stderr, "the output")
  end)

  it("refuses wrong credentials at prepare in one line naming maas-oauth, creating nothing", function()
    local env = new_environment("maasauth", { ["maas-oauth"] = "maasConsumerKey:maasTokenKey:wrongSecret-7" })
    local code, out, err = h.juju(env, { "bootstrap", "--upload-tools" })
    assert.are.equal(1, code, err)
    assert.matches("refused the credentials %(authentication failed%): check maas%-oauth", err)
    assert.is_nil((out .. err):find("wrongSecret-7", 1, true))
    assert_nothing_left()
  end)
end)
