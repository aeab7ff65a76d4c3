local fs = require("juju.fs")
local yaml = require("juju.yaml")
local crypto = require("juju.crypto")
local sys = require("juju.sys")
local h = require("helpers")

local DUMMY = "environments:\n  dummyenv:\n    type: dummy\n"

local function setup(yaml_text)
  local root = h.tmpdir()
  local env = h.env(root)
  if yaml_text then h.write(env.JUJU_HOME .. "/environments.yaml", yaml_text) end
  return env
end

describe("juju CLI", function()
  after_each(function() h.cleanup(); collectgarbage() end)

  describe("version and help", function()
    it("prints the binary version", function()
      local code, out = h.juju(setup(), { "version" })
      assert.are.equal(0, code)
      local series = require("juju.version").host_series(sys)
      assert.are.equal(string.format("%s-%s-%s\n", tostring(require("juju.version").current), series, sys.arch()), out)
    end)

    it("prints help and command help with exit 0", function()
      local code, out = h.juju(setup(), { "help" })
      assert.are.equal(0, code)
      assert.matches("bootstrap%s+start up an environment from scratch", out)
      code, out = h.juju(setup(), { "bootstrap", "--help" })
      assert.are.equal(0, code)
      assert.matches("usage: juju bootstrap", out)
      assert.matches("%-%-keep%-broken", out)
      code, out = h.juju(setup(), { "help", "switch" })
      assert.are.equal(0, code)
      assert.matches("usage: juju switch", out)
    end)

    it("exits 2 on unknown commands and flags", function()
      local code, _, err = h.juju(setup(), { "frobnicate" })
      assert.are.equal(1, code)
      assert.are.equal("ERROR unrecognized command: juju frobnicate\n", err)
      code, _, err = h.juju(setup(), { "version", "--bogus" })
      assert.are.equal(2, code)
      assert.are.equal("error: flag provided but not defined: --bogus\n", err)
      code, _, err = h.juju(setup(), { "version", "-v", "-q" })
      assert.are.equal(2, code)
      assert.matches('"verbose" and "quiet" flags clash', err)
    end)

    it("runs as a real process with the same exit codes", function()
      local env = setup()
      local r = h.juju_exe_run(env, { "version" })
      assert.are.equal(0, r.code)
      r = h.juju_exe_run(env, { "bootstrap", "--bogus" })
      assert.are.equal(2, r.code)
      assert.matches("flag provided but not defined", r.stderr)
    end)
  end)

  describe("init", function()
    it("writes the boilerplate 0600 in a 0700 JUJU_HOME, defaulting to amazon (ec2 exists)", function()
      local env = setup()
      local code, out = h.juju(env, { "init" })
      assert.are.equal(0, code)
      local path = env.JUJU_HOME .. "/environments.yaml"
      assert.matches("A boilerplate environment configuration file has been written to " .. path:gsub("%p", "%%%0"), out)
      assert.are.equal(tonumber("600", 8), fs.stat(path).mode)
      assert.are.equal(tonumber("700", 8), fs.stat(env.JUJU_HOME).mode)
      local doc = assert(yaml.decode(h.read(path), path))
      assert.are.equal("amazon", doc.default)
      local types = {}
      for _, e in pairs(doc.environments) do types[#types + 1] = e.type end
      table.sort(types)
      assert.are.same({ "azure", "ec2", "joyent", "local", "maas", "manual", "openstack" }, types)
    end)

    it("refuses to overwrite without -f, and --show writes nothing", function()
      local env = setup("environments: {mine: {type: local}}\n")
      local code, out = h.juju(env, { "init" })
      assert.are.equal(1, code)
      assert.matches("A juju environment configuration already exists", out)
      assert.matches("mine", h.read(env.JUJU_HOME .. "/environments.yaml"))
      code = h.juju(env, { "init", "-f" })
      assert.are.equal(0, code)
      assert.is_nil(h.read(env.JUJU_HOME .. "/environments.yaml"):find("mine:", 1, true))
      local env2 = setup()
      code, out = h.juju(env2, { "init", "--show" })
      assert.are.equal(0, code)
      assert.matches("default: amazon", out)
      assert.is_false(fs.exists(env2.JUJU_HOME .. "/environments.yaml"))
    end)
  end)

  describe("switch", function()
    local yml = "default: b\nenvironments:\n  a: {type: local}\n  b: {type: dummy}\n"
    it("shows, sets and lists", function()
      local env = setup(yml)
      local code, out = h.juju(env, { "switch" })
      assert.are.equal(0, code)
      assert.are.equal("b\n", out)
      local err
      code, out, err = h.juju(env, { "switch", "a" })
      assert.are.equal(0, code)
      assert.are.equal("", out)
      assert.are.equal("b -> a\n", err)
      code, out = h.juju(env, { "switch", "-l" })
      assert.are.equal(0, code)
      assert.are.equal("a\nb\n", out)
    end)

    it("refuses unknown names, JUJU_ENV overrides and list+switch", function()
      local env = setup(yml)
      local code, _, err = h.juju(env, { "switch", "zzz" })
      assert.are.equal(1, code)
      assert.are.equal('ERROR "zzz" is not a name of an existing defined environment\n', err)
      env.JUJU_ENV = "a"
      code, _, err = h.juju(env, { "switch", "b" })
      assert.are.equal(1, code)
      assert.matches('cannot switch when JUJU_ENV is overriding the environment %(set to "a"%)', err)
      code, _, err = h.juju(env, { "switch", "-l", "a" })
      assert.are.equal(2, code)
      assert.matches("cannot switch and list at the same time", err)
    end)

    it("lists nothing, successfully, when there is no environments.yaml", function()
      local code, out, err = h.juju(setup(), { "switch", "-l" })
      assert.are.equal(0, code)
      assert.are.equal("", out)
      assert.are.equal("", err)
    end)
  end)

  describe("bootstrap flag validation", function()
    local cases = {
      { { "--upload-series", "trusty" }, "--upload-series requires --upload-tools" },
      { { "--series", "trusty" }, "--series requires --upload-tools" },
      { { "--upload-tools", "--series", "trusty", "--upload-series", "precise" }, "--upload-series and --series can't be used together" },
      { { "--upload-tools", "--agent-version", "1.26.0" }, "--agent-version and --upload-tools can't be used together" },
      { { "--no-auto-upgrade", "--agent-version", "1.26.0" }, "--agent-version and --no-auto-upgrade can't be used together" },
      { { "--to", "lxc:0" }, 'unsupported bootstrap placement directive "lxc:0"' },
      { { "--agent-version", "bogus" }, 'invalid version "bogus"' },
      { { "--agent-version", "2.0.0" }, "requested agent version major.minor mismatch" },
      { { "anything", "else" }, 'unrecognized args: ["anything" "else"]' },
      { { "--constraints", "bad=wrong" }, 'invalid value "bad=wrong" for flag --constraints: unknown constraint "bad"' },
      { { "--upload-tools", "--series", "1bad1" }, 'invalid value "1bad1" for flag --series: invalid series name "1bad1"' },
    }
    for _, case in ipairs(cases) do
      it("rejects " .. table.concat(case[1], " "), function()
        local args = { "bootstrap" }
        for _, a in ipairs(case[1]) do args[#args + 1] = a end
        local code, _, err = h.juju(setup(DUMMY), args)
        assert.are.equal(2, code)
        assert.are.equal("error: " .. case[2] .. "\n", err)
      end)
    end

    it("accepts a full binary agent version of the client's series", function()
      local v = tostring(require("juju.version").current)
      local code, _, err = h.juju(setup(DUMMY), { "bootstrap", "--agent-version", v .. "-trusty-amd64" })
      assert.are_not.equal(2, code, err)
    end)
  end)

  describe("bootstrap environment selection and prepare", function()
    it("uses ~/.juju when JUJU_HOME is not set", function()
      local env = setup()
      env.JUJU_HOME = nil
      h.write(env.HOME .. "/.juju/environments.yaml", DUMMY)
      local code, out = h.juju(env, { "switch" })
      assert.are.equal(0, code)
      assert.are.equal("dummyenv\n", out)
      env.HOME = nil
      local hcode, _, herr = h.juju(env, { "switch" })
      assert.are.equal(1, hcode)
      assert.matches("cannot determine juju home, required environment variables are not set", herr)
    end)

    it("needs an environment name", function()
      local code, _, err = h.juju(setup(), { "bootstrap" })
      assert.are.equal(1, code)
      assert.are.equal("ERROR the name of the environment must be specified\n", err)
    end)

    it("prepares a .jenv with generated secrets, CA and UUID, and the client key", function()
      local env = setup(DUMMY)
      h.juju(env, { "bootstrap", "-e", "dummyenv" })
      local jenv = env.JUJU_HOME .. "/environments/dummyenv.jenv"
      assert.are.equal(tonumber("600", 8), fs.stat(jenv).mode)
      assert.are.equal(tonumber("700", 8), fs.stat(env.JUJU_HOME .. "/environments").mode)
      local info = assert(yaml.decode(h.read(jenv), jenv))
      local bc = info["bootstrap-config"]
      assert.are.equal("admin", info.user)
      assert.matches("^%x+$", bc["admin-secret"])
      assert.are.equal(32, #bc["admin-secret"])
      assert.are.equal(bc["admin-secret"], info.password)
      assert.is_true(crypto.is_uuid(bc.uuid))
      assert.are.equal(bc.uuid, info["environ-uuid"])
      assert(crypto.check_ca_pair(bc["ca-cert"], bc["ca-private-key"]))
      assert.are.equal(info["ca-cert"], bc["ca-cert"])
      assert.matches('juju%-generated CA for environment \\?"dummyenv\\?"', crypto.cert_info(bc["ca-cert"]).subject)
      local key = env.JUJU_HOME .. "/ssh/juju_id_ed25519"
      assert.are.equal(tonumber("600", 8), fs.stat(key).mode)
      local pub = h.read(key .. ".pub"):gsub("%s+$", "")
      assert.is_truthy(bc["authorized-keys"]:find(pub, 1, true))
      assert.are.equal("<root>=WARNING;unit=DEBUG", bc["logging-config"])
      assert.are.equal(17070, bc["api-port"])
    end)

    it("keeps an existing .jenv's secrets and warns that environments.yaml is ignored", function()
      local env = setup(DUMMY)
      h.juju(env, { "bootstrap", "-e", "dummyenv" })
      local jenv = env.JUJU_HOME .. "/environments/dummyenv.jenv"
      local first = h.read(jenv)
      local _, _, err = h.juju(env, { "bootstrap", "-e", "dummyenv" })
      assert.matches('WARNING ignoring environments.yaml: using bootstrap config in file "' .. jenv:gsub("%p", "%%%0") .. '"', err)
      assert.are.equal(first, h.read(jenv))
    end)

    it("uses the user's NAME-cert.pem and NAME-private-key.pem", function()
      local env = setup(DUMMY)
      local cert, key = crypto.new_ca("users-own")
      h.write(env.JUJU_HOME .. "/dummyenv-cert.pem", cert)
      h.write(env.JUJU_HOME .. "/dummyenv-private-key.pem", key)
      h.juju(env, { "bootstrap", "-e", "dummyenv" })
      local info = yaml.decode(h.read(env.JUJU_HOME .. "/environments/dummyenv.jenv"))
      assert.are.equal(cert, info["ca-cert"])
    end)

    it("keeps an existing Juju 1.x juju_id_rsa.pub in authorized-keys", function()
      local env = setup(DUMMY)
      h.write(env.JUJU_HOME .. "/ssh/juju_id_rsa", "not used for login\n")
      h.write(env.JUJU_HOME .. "/ssh/juju_id_rsa.pub", "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC juju-client-key\n")
      h.juju(env, { "bootstrap", "-e", "dummyenv" })
      local bc = yaml.decode(h.read(env.JUJU_HOME .. "/environments/dummyenv.jenv"))["bootstrap-config"]
      assert.matches("ssh%-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC juju%-client%-key", bc["authorized-keys"])
      assert.matches("ssh%-ed25519 ", bc["authorized-keys"])
    end)

    it("never prints the admin-secret or the CA key, even with --debug", function()
      local env = setup("environments:\n  dummyenv:\n    type: dummy\n    admin-secret: verysecretpassword1\n")
      local _, out, err = h.juju(env, { "bootstrap", "-e", "dummyenv", "--debug" })
      local bc = yaml.decode(h.read(env.JUJU_HOME .. "/environments/dummyenv.jenv"))["bootstrap-config"]
      for _, s in ipairs({ "verysecretpassword1", bc["ca-private-key"], "pork" }) do
        assert.is_nil(out:find(s, 1, true))
        assert.is_nil(err:find(s, 1, true))
      end
    end)
  end)

  describe("bad input", function()
    it("names file, line and column of malformed YAML", function()
      local env = setup("environments:\n  a:\n    type: dummy\n   bad: [\n")
      local code, _, err = h.juju(env, { "bootstrap", "-e", "a" })
      assert.are.equal(1, code)
      assert.matches("environments%.yaml:%d+:%d+: ", err)
      assert.is_false(fs.exists(env.JUJU_HOME .. "/environments/a.jenv"))
    end)

    it("names the key, its line and the type for a wrong type", function()
      local env = setup("environments:\n  a:\n    type: dummy\n    api-port: lots\n")
      local code, _, err = h.juju(env, { "bootstrap", "-e", "a" })
      assert.are.equal(1, code)
      assert.matches("environments%.yaml:4:15: ", err)
      assert.matches("api%-port", err)
      assert.matches("expected number", err)
      assert.is_false(fs.exists(env.JUJU_HOME .. "/environments/a.jenv"))
    end)

    it("reports an unknown provider type only when the environment is used", function()
      local env = setup("default: good\nenvironments:\n  good: {type: dummy}\n  odd: {type: cloudyclouds}\n")
      local code, out = h.juju(env, { "switch", "-l" })
      assert.are.equal(0, code)
      assert.matches("odd", out)
      local err
      code, out, err = h.juju(env, { "bootstrap", "-e", "odd" })
      assert.are.equal(1, code)
      assert.are.equal("", out)
      assert.matches('environment "odd" has an unknown provider type "cloudyclouds"', err)
    end)

    it("reports a missing type", function()
      local env = setup("environments:\n  a:\n    region: x\n")
      local code, _, err = h.juju(env, { "bootstrap", "-e", "a" })
      assert.are.equal(1, code)
      assert.matches('environment "a" has no type', err)
    end)

    it("warns about unknown keys and goes on", function()
      local env = setup("environments:\n  a:\n    type: dummy\n    flavour: strawberry\n")
      local _, _, err = h.juju(env, { "bootstrap", "-e", "a" })
      assert.matches('WARNING unknown config field "flavour"', err)
      assert.is_true(fs.exists(env.JUJU_HOME .. "/environments/a.jenv"))
    end)

    it("explains a corrupt .jenv", function()
      local env = setup(DUMMY)
      h.write(env.JUJU_HOME .. "/environments/dummyenv.jenv", "user: [\n")
      local code, _, err = h.juju(env, { "bootstrap", "-e", "dummyenv" })
      assert.are.equal(1, code)
      assert.matches("dummyenv%.jenv:%d+:%d+", err)
      assert.matches("destroy%-environment %-%-force dummyenv", err)
    end)

    it("explains an unwritable JUJU_HOME", function()
      local env = setup()
      h.write(env.HOME .. "/afile", "x")
      env.JUJU_HOME = env.HOME .. "/afile/juju"
      local code, _, err = h.juju(env, { "bootstrap", "-e", "x" })
      assert.are.equal(1, code)
      assert.matches("afile", err)
      local env2 = setup(DUMMY)
      h.write(env2.JUJU_HOME .. "/environments", "a file where a directory should be")
      code, _, err = h.juju(env2, { "bootstrap", "-e", "dummyenv" })
      assert.are.equal(1, code)
      assert.matches("JUJU_HOME", err)
    end)

    it("gives a concurrent prepare 'environment info already exists'", function()
      local env = setup("environments:\n  race:\n    type: racer\n")
      -- A provider whose prepare hook lets a rival prepare win the race.
      h.write(env.JUJU_HOME .. "/providers/racer.lua", [[
        local fs = require("juju.fs")
        local P = { name = "racer", api_version = 2, config = { fields = {} } }
        function P.prepare_for_bootstrap(ctx, cfg)
          fs.create_exclusive(ctx:juju_home() .. "/environments/race.jenv", "user: rival\n")
          return cfg
        end
        function P.open(_, cfg) return { cfg = cfg } end
        function P.state_server_instances() return nil, "not bootstrapped", "NOT_BOOTSTRAPPED" end
        function P.start_instance() return nil, "no" end
        function P.destroy() return true end
        function P.storage() return {} end
        return P
      ]])
      local code, _, err = h.juju(env, { "bootstrap", "-e", "race" })
      assert.are.equal(1, code)
      assert.matches("environment info already exists", err)
      assert.are.equal("user: rival\n", h.read(env.JUJU_HOME .. "/environments/race.jenv"))
    end)
  end)

  describe("destroy-environment", function()
    it("needs a name", function()
      local code, _, err = h.juju(setup(DUMMY), { "destroy-environment" })
      assert.are.equal(2, code)
      assert.are.equal("error: no environment specified\n", err)
    end)

    it("asks, and aborts unless told yes", function()
      local env = setup(DUMMY)
      h.juju(env, { "bootstrap", "-e", "dummyenv" })
      local code, out, err = h.juju(env, { "destroy-environment", "dummyenv" }, "n\n")
      assert.are.equal(1, code)
      assert.matches('WARNING! this command will destroy the "dummyenv" environment %(type: dummy%)', out)
      assert.matches("environment destruction aborted", err)
      assert.is_true(fs.exists(env.JUJU_HOME .. "/environments/dummyenv.jenv"))
      code = h.juju(env, { "destroy-environment", "dummyenv" }, "y\n")
      assert.are.equal(0, code)
      assert.is_false(fs.exists(env.JUJU_HOME .. "/environments/dummyenv.jenv"))
    end)

    it("destroys through the provider, and --force gets past a broken one", function()
      local env = setup("environments:\n  dummyenv:\n    type: dummy\n    broken: Destroy\n")
      h.juju(env, { "bootstrap", "-e", "dummyenv" })
      local code, _, err = h.juju(env, { "destroy-environment", "-y", "dummyenv" })
      assert.are.equal(1, code)
      assert.matches("dummy%.Destroy is broken", err)
      assert.is_true(fs.exists(env.JUJU_HOME .. "/environments/dummyenv.jenv"))
      code = h.juju(env, { "destroy-environment", "-y", "--force", "dummyenv" })
      assert.are.equal(0, code)
      assert.is_false(fs.exists(env.JUJU_HOME .. "/environments/dummyenv.jenv"))
    end)

    it("says when there is nothing to destroy", function()
      local code, _, err = h.juju(setup(DUMMY), { "destroy-environment", "-y", "dummyenv" })
      assert.are.equal(1, code)
      assert.are.equal('ERROR cannot read environment info: environment "dummyenv" not found\n', err)
      code, _, err = h.juju(setup(DUMMY), { "destroy-environment", "-y", "--force", "dummyenv" })
      assert.are.equal(1, code)
      assert.are.equal('ERROR cannot read environment info: environment "dummyenv" not found\n', err)
    end)
  end)
end)
