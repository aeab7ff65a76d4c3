-- Whole bootstraps of the dummy provider, scripted with the scenario API.
local testing = require("juju.testing")
local fs = require("juju.fs")
local sys = require("juju.sys")
local yaml = require("juju.yaml")

local function new_scenario(attrs)
  local env = { type = "dummy" }
  for k, v in pairs(attrs or {}) do env[k] = v end
  return testing.new { environments = { dummyenv = env }, default = "dummyenv" }
end

local function lines(text)
  local out = {}
  for l in text:gmatch("[^\n]+") do out[#out + 1] = l end
  return out
end

describe("dummy bootstrap", function()
  local s
  after_each(function()
    if s then s:close() end
    s = nil
    collectgarbage()
  end)

  it("runs every step, refuses a second bootstrap, destroys, and bootstraps again", function()
    s = new_scenario()
    local r = s:juju("bootstrap", "-e", "dummyenv")
    assert.are.equal(0, r.code, r.stderr)
    local out = {}
    for _, l in ipairs(lines(r.stderr)) do
      if not l:match("^WARNING ") then out[#out + 1] = l end
    end
    assert.are.equal('Bootstrapping environment "dummyenv"', out[1])
    assert.are.equal("Starting new instance for initial state server", out[2])
    assert.are.equal("Launching instance", out[3])
    assert.are.equal(" - dummy-0", out[4])
    assert.matches("^Building tools to upload %(", out[5])
    assert.are.equal("Installing Juju agent on bootstrap instance", out[6])
    assert.are.equal("Bootstrap agent installed", out[7])
    assert.matches("^Bootstrap complete", out[#out])
    local jenv = s:jenv("dummyenv")
    assert.are.same({ "localhost:17070" }, jenv["state-servers"])
    assert.are.equal("bootstrapped", jenv["bootstrap-journal"].phase)
    local world = s:world("dummyenv")
    assert.are.same({ "dummy-0" }, s:instances(world))

    r = s:juju("bootstrap", "-e", "dummyenv")
    assert.are.equal(1, r.code)
    assert.matches("WARNING This juju environment is already bootstrapped", r.stderr)
    assert.matches("ERROR environment is already bootstrapped\n$", r.stderr)
    assert.are.same({ "dummy-0" }, s:instances(world))

    r = s:juju("destroy-environment", "-y", "dummyenv")
    assert.are.equal(0, r.code, r.stderr)
    assert.is_false(fs.exists(world))
    assert.is_nil(s:jenv("dummyenv"))

    r = s:juju("bootstrap", "-e", "dummyenv")
    assert.are.equal(0, r.code, r.stderr)
  end)

  it("passes constraints and placement to the provider and warns about unsupported ones", function()
    s = new_scenario()
    local seen
    s:on_op("start_instance", function(_, params) seen = params end)
    local r = s:juju("bootstrap", "--constraints", "mem=4G tags=db", "--to", "zone=a")
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal(4096, seen.constraints.mem)
    assert.are.equal("zone=a", seen.placement)
    assert.matches("WARNING unsupported constraints: tags", r.stderr)
    local ops = s:ops()
    local start
    for _, op in ipairs(ops) do if op.op == "start_instance" then start = op end end
    assert.are.equal("mem=4096M tags=db", start.args.constraints)
  end)

  it("rejects conflicting constraints before launching anything", function()
    s = new_scenario()
    local r = s:juju("bootstrap", "--constraints", "instance-type=big mem=4G")
    assert.are.equal(1, r.code)
    assert.matches('failed to bootstrap environment: ambiguous constraints: "instance%-type" overlaps with "mem"', r.stderr)
    for _, op in ipairs(s:ops()) do
      assert.are_not.equal("bootstrap", op.op)
      assert.are_not.equal("start_instance", op.op)
    end
  end)

  it("keeps the instance with --keep-broken", function()
    s = new_scenario()
    s:fail_step("finalize", "agent install blew up")
    local r = s:juju("bootstrap", "--keep-broken")
    assert.are.equal(1, r.code)
    assert.matches("bootstrap failed but %-%-keep%-broken was specified", r.stderr)
    assert.are.same({ "dummy-0" }, s:instances(s:world("dummyenv")))
    s:clear_faults()
    r = s:juju("destroy-environment", "-y", "--force", "dummyenv")
    assert.are.equal(0, r.code, r.stderr)
    assert.is_nil(s:jenv("dummyenv"))
  end)

  it("reports Juju's broken-method errors and cleans up", function()
    s = new_scenario { broken = "StartInstance" }
    local r = s:juju("bootstrap")
    assert.are.equal(1, r.code)
    assert.matches("cannot start bootstrap instance: dummy%.StartInstance is broken", r.stderr)
    assert.matches("Bootstrap failed, destroying environment", r.stderr)
    assert.is_nil(s:jenv("dummyenv"))
  end)

  it("refuses a bootstrap whose earlier run did not finish, and says what to do", function()
    s = new_scenario()
    s:fail_step("finalize", "boom")
    s:fail_op("release", "cannot stop")
    s:fail_op("destroy", "cannot destroy")
    local r = s:juju("bootstrap")
    assert.are.equal(1, r.code)
    assert.matches("cleanup was incomplete", r.stderr)
    s:clear_faults()
    r = s:juju("bootstrap")
    assert.are.equal(1, r.code)
    assert.matches('a previous bootstrap of "dummyenv" did not finish', r.stderr)
    assert.matches("juju destroy%-environment dummyenv", r.stderr)
    r = s:juju("destroy-environment", "-y", "dummyenv")
    assert.are.equal(0, r.code, r.stderr)
    assert.is_false(fs.exists(s.home .. "/dummy/" .. "x"))
    assert.are.same({}, fs.list(s.home .. "/dummy"))
  end)

  it("never shows a secret: output, provider-state, user-data, script command lines", function()
    s = new_scenario { ["admin-secret"] = "sekrit-admin-password-42", secret = "dummy-secret-value" }
    local r = s:juju("bootstrap", "--debug")
    assert.are.equal(0, r.code, r.stderr)
    local jenv = s:jenv("dummyenv")
    local bc = jenv["bootstrap-config"]
    local crypto = require("juju.crypto")
    local secrets = {
      bc["admin-secret"], bc.secret, bc["ca-private-key"],
      crypto.user_password_hash(bc["admin-secret"], crypto.COMPAT_SALT),
    }
    local world = s:world("dummyenv")
    local places = {
      stdout = r.stdout, stderr = r.stderr,
      ["provider-state"] = fs.read_file(world .. "/storage/provider-state"),
      userdata = s:userdata(world),
    }
    for where, text in pairs(places) do
      assert.is_string(text, where)
      for _, secret in ipairs(secrets) do
        assert.is_nil(text:find(secret, 1, true), where .. " holds a secret")
      end
    end
    -- The script carries secrets only inside heredoc bodies, never on a command line.
    local script = s:script(world)
    local in_heredoc, terminator = false, nil
    for line in script:gmatch("[^\n]*") do
      if in_heredoc then
        if line == terminator then in_heredoc = false end
      else
        for _, secret in ipairs(secrets) do
          assert.is_nil(line:find(secret, 1, true), "secret on a command line: " .. line:sub(1, 60))
        end
        local t = line:match("<<%s*'([%w_]+)'") or line:match('<<%s*"([%w_]+)"') or line:match("<<%s*([%w_]+)")
        if t then in_heredoc, terminator = true, t end
      end
    end
    assert.are.equal(tonumber("600", 8), fs.stat(world .. "/scripts/dummy-0").mode)
    assert.are.equal(tonumber("600", 8), fs.stat(s.home .. "/environments/dummyenv.jenv").mode)
  end)

  it("refuses a concurrent bootstrap of the same environment", function()
    s = new_scenario()
    assert(fs.mkdir_p(s.home .. "/environments", "0700"))
    local lock = assert(fs.lock(s.home .. "/environments/dummyenv.bootstrap.lock",
      { message = "pid: 4242, operation: bootstrap" }))
    local r = s:juju("bootstrap")
    lock:release()
    assert.are.equal(1, r.code)
    assert.matches('environment "dummyenv" is being bootstrapped by another juju process %(pid: 4242', r.stderr)
  end)

  it("survives SIGKILL after the instance started: destroy-environment removes it", function()
    s = new_scenario()
    local p = s:juju_process({ "bootstrap" }, { spawn = true, env = { JUJU_DUMMY_DELAY = "finalize=30" } })
    local world
    for _ = 1, 400 do
      local j = s:jenv("dummyenv")
      world = j and s:world("dummyenv")
      -- Until the instance is recorded with its id, not only intended: the
      -- intent is saved before the create call, the record after it returns.
      local rs = j and j["bootstrap-journal"] and j["bootstrap-journal"].resources
      if world and #s:instances(world) > 0 and rs and rs[2] and rs[2].id then break end
      sys.sleep(0.05)
    end
    assert.are.same({ "dummy-0" }, s:instances(world))
    p:kill("KILL")
    p:wait()
    local journal = s:jenv("dummyenv")["bootstrap-journal"]
    -- provider-state first (preflight writes it as the storage check), then the instance.
    local kinds = {}
    for _, r in ipairs(journal.resources) do kinds[#kinds + 1] = r.kind .. ":" .. tostring(r.id) end
    assert.are.same({ "storage:provider-state", "instance:dummy-0" }, { kinds[1], kinds[2] })
    local r = s:juju("destroy-environment", "-y", "dummyenv")
    assert.are.equal(0, r.code, r.stderr)
    assert.is_false(fs.exists(world))
    assert.is_nil(s:jenv("dummyenv"))
  end)

  it("interrupts cleanly on SIGINT during a step", function()
    s = new_scenario()
    s:interrupt_step("select-tools")
    local r = s:juju("bootstrap")
    assert.are.equal(1, r.code)
    assert.matches("Interrupt signalled: waiting for bootstrap to exit", r.stderr)
    assert.matches("ERROR failed to bootstrap environment: interrupted", r.stderr)
    assert.is_nil(s:jenv("dummyenv"))
  end)

  it("records what the dummy was asked to do", function()
    s = new_scenario()
    assert.are.equal(0, s:juju("bootstrap").code)
    local names = {}
    for _, op in ipairs(s:ops()) do names[#names + 1] = op.op end
    assert.are.same({ "instance_defaults", "start_instance", "finalize", "wait_agent" }, names)
    local ud = s:userdata(s:world("dummyenv"))
    assert.matches("^#cloud%-config\n", ud)
    local doc = yaml.decode(ud)
    assert.is_table(doc)
  end)
end)
