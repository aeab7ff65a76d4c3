-- What a Juju 1.25 operator meets (issue 15): each case pins 1.25's exact
-- text or behaviour (cmd/juju, github.com/juju/cmd 1.25).
local fs = require("juju.fs")
local yaml = require("juju.yaml")
local h = require("helpers")

local TWO = "default: other\nenvironments:\n  dummyenv: {type: dummy}\n  other: {type: dummy}\n"

local function setup(yaml_text)
  local env = h.env(h.tmpdir())
  if yaml_text then h.write(env.JUJU_HOME .. "/environments.yaml", yaml_text) end
  return env
end

local function lines(s)
  local out = {}
  for l in s:gmatch("[^\n]+") do out[#out + 1] = l end
  return out
end

-- An executable juju-NAME in its own PATH directory.
local function plugin(env, name, script)
  local dir = h.tmpdir("juju-plugins-")
  h.write(dir .. "/juju-" .. name, "#!/bin/sh\n" .. script, tonumber("755", 8))
  env.PATH = dir .. ":" .. (env.PATH or "/usr/bin:/bin")
  return dir
end

describe("Juju 1.25 CLI (issue 15)", function()
  after_each(function() h.cleanup(); collectgarbage() end)

  describe("1. bootstrap makes the new environment current", function()
    it("writes current-environment and prints old -> new just before Bootstrap complete", function()
      local env = setup(TWO)
      local code, _, err = h.juju(env, { "bootstrap", "-e", "dummyenv" })
      assert.are.equal(0, code, err)
      assert.are.equal("dummyenv\n", h.read(env.JUJU_HOME .. "/current-environment"))
      local l = lines(err)
      assert.are.equal("other -> dummyenv", l[#l - 1])
      assert.are.equal("Bootstrap complete", l[#l])
      local scode, out = h.juju(env, { "switch" })
      assert.are.equal(0, scode)
      assert.are.equal("dummyenv\n", out)
    end)

    it("prints -> NAME when nothing was current, and NAME -> NAME when it already was", function()
      local env = setup("environments:\n  dummyenv: {type: dummy}\n  b: {type: dummy}\n")
      local _, _, err = h.juju(env, { "bootstrap", "-e", "dummyenv" })
      assert.is_truthy(err:find("\n-> dummyenv\nBootstrap complete\n", 1, true), err)
      h.juju(env, { "destroy-environment", "-y", "dummyenv" })
      _, _, err = h.juju(env, { "bootstrap" })
      assert.is_truthy(err:find("\ndummyenv -> dummyenv\nBootstrap complete\n", 1, true), err)
    end)

    it("leaves current-environment alone when bootstrap fails", function()
      local env = setup("default: other\nenvironments:\n  bad: {type: dummy, broken: Bootstrap}\n  other: {type: dummy}\n")
      local code = h.juju(env, { "bootstrap", "-e", "bad" })
      assert.are.equal(1, code)
      assert.is_false(fs.exists(env.JUJU_HOME .. "/current-environment"))
    end)
  end)

  describe("2. global flags before the command", function()
    it("accepts --debug, --show-log, -v and --logging-config in front of any command", function()
      local env = setup(TWO)
      for _, args in ipairs({
        { "--debug", "version" }, { "--show-log", "switch" }, { "-v", "version" },
        { "--logging-config", "<root>=INFO", "version" }, { "--logging-config=<root>=DEBUG", "switch" },
        { "-q", "switch", "-l" },
      }) do
        local code, out, err = h.juju(env, args)
        assert.are.equal(0, code, table.concat(args, " ") .. ": " .. err)
        assert.are_not.equal("", out)
      end
    end)

    it("still refuses a flag that is not global, as gnuflag did", function()
      local code, _, err = h.juju(setup(TWO), { "--upload-tools", "bootstrap" })
      assert.are.equal(2, code)
      assert.are.equal("error: flag provided but not defined: --upload-tools\n", err)
    end)

    it("juju --help and a bare juju show the basics", function()
      local code, out = h.juju(setup(), { "--help" })
      assert.are.equal(0, code)
      assert.matches("^Juju %-%- devops distilled\n", out)
      local code2, out2 = h.juju(setup(), {})
      assert.are.equal(0, code2)
      assert.are.equal(out, out2)
    end)
  end)

  describe("3. --show-log logs at INFO", function()
    it("shows running juju [...] and command finished; without it, nothing", function()
      local env = setup(TWO)
      local code, _, err = h.juju(env, { "--show-log", "switch" })
      assert.are.equal(0, code)
      local l = lines(err)
      assert.matches("^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d INFO juju%.cmd [%w_.]+:%d+ running juju %[%d+%.%d+%.%d+%-[%w]+%-[%w]+%]$", l[1])
      assert.matches(" INFO juju%.cmd [%w_.]+:%d+ command finished$", l[#l])
      local _, _, quiet = h.juju(env, { "switch" })
      assert.are.equal("", quiet)
      local _, _, verbose = h.juju(env, { "switch", "-v" })
      assert.matches("running juju %[", verbose)
    end)
  end)

  describe("5. juju switch -l", function()
    it("prints bare names, one a line", function()
      local env = setup(TWO)
      h.write(env.JUJU_HOME .. "/current-environment", "dummyenv\n")
      local code, out = h.juju(env, { "switch", "-l" })
      assert.are.equal(0, code)
      assert.are.equal("dummyenv\nother\n", out)
    end)

    it("prints nothing and exits 0 without environments.yaml", function()
      local code, out, err = h.juju(setup(), { "switch", "-l" })
      assert.are.equal(0, code)
      assert.are.equal("", out)
      assert.are.equal("", err)
    end)
  end)

  describe("6. a broken environments.yaml is reported as such", function()
    for _, cmd in ipairs({ "bootstrap", "status" }) do
      it(cmd .. " names the YAML error with file:line:col", function()
        local env = setup("environments:\n  a:\n    type: dummy\n   bad: [\n")
        local code, _, err = h.juju(env, { cmd })
        assert.are.equal(1, code)
        local path = env.JUJU_HOME .. "/environments.yaml"
        assert.are.equal(1, select(2, err:gsub("^ERROR cannot parse " .. string.format("%q", path):gsub("%p", "%%%0") .. ": ", "")))
        assert.matches("environments%.yaml:%d+:%d+: ", err)
        assert.is_nil(err:find("the name of the environment must be specified", 1, true))
      end)

      it(cmd .. " reports a default: naming no environment", function()
        local env = setup("default: zzz\nenvironments:\n  a: {type: dummy}\n")
        local code, _, err = h.juju(env, { cmd })
        assert.are.equal(1, code)
        local path = env.JUJU_HOME .. "/environments.yaml"
        assert.are.equal(string.format("ERROR cannot parse %q: %s:1:10: default environment \"zzz\" does not exist\n",
          path, path), err)
      end)
    end
  end)

  describe("7. plugins", function()
    it("runs juju-NAME from PATH with the arguments, JUJU_ENV and JUJU_HOME, passing its exit code", function()
      local env = setup(TWO)
      plugin(env, "foo", 'echo "args:$*"\necho "env:$JUJU_ENV home:$JUJU_HOME"\necho oops >&2\nexit 3\n')
      local code, out, err = h.juju(env, { "foo", "a", "--bar", "-e", "dummyenv" })
      assert.are.equal(3, code)
      assert.are.equal("args:a --bar -e dummyenv\nenv:dummyenv home:" .. env.JUJU_HOME .. "\n", out)
      assert.are.equal("oops\n", err)
      code, out = h.juju(env, { "foo" })
      assert.are.equal(3, code)
      assert.matches("env:other home:", out)
    end)

    it("lists plugins with their --description in juju help plugins", function()
      local env = setup(TWO)
      plugin(env, "foo", 'if [ "$1" = --description ]; then echo "frobs the environment"; fi\n')
      plugin(env, "longername", 'exit 1\n')
      local code, out = h.juju(env, { "help", "plugins" })
      assert.are.equal(0, code)
      assert.are.equal("Juju Plugins\n\n"
        .. "Plugins are implemented as stand-alone executable files somewhere in the user's PATH.\n"
        .. "The executable command must be of the format juju-<plugin name>.\n\n"
        .. "foo         frobs the environment\n"
        .. "longername  error occurred running 'juju-longername --description'\n", out)
    end)

    it("juju help NAME runs juju-NAME --help", function()
      local env = setup(TWO)
      plugin(env, "foo", 'echo "foo help: $1"\n')
      local code, out = h.juju(env, { "help", "foo" })
      assert.are.equal(0, code)
      assert.are.equal("foo help: --help\n", out)
    end)

    it("says ERROR unrecognized command: juju NAME, exit 1, for a truly unknown command", function()
      local code, out, err = h.juju(setup(TWO), { "nosuchthing", "x" })
      assert.are.equal(1, code)
      assert.are.equal("", out)
      assert.are.equal("ERROR unrecognized command: juju nosuchthing\n", err)
    end)
  end)

  describe("8. help", function()
    local USER_PROVIDER = [[
      local P = { name = "mycloud", api_version = 2, description = "my own cloud, reached by magic",
        boilerplate = "# My cloud.\nmine:\n    type: mycloud\n    region: north\n",
        config = { fields = { region = { type = "string", description = "where the machines are" } } } }
      for _, op in ipairs({ "prepare_for_bootstrap", "open", "state_server_instances", "start_instance", "destroy", "storage" }) do
        P[op] = function() return nil, "not here" end
      end
      return P
    ]]

    it("juju help topics lists 1.25's topics and one per provider", function()
      local env = setup()
      h.write(env.JUJU_HOME .. "/providers/mycloud.lua", USER_PROVIDER)
      local code, out = h.juju(env, { "help", "topics" })
      assert.are.equal(0, code)
      local names = {}
      for line in out:gmatch("[^\n]+") do names[#names + 1] = line:match("^(%S+)") end
      for _, t in ipairs({ "basics", "commands", "constraints", "global-options", "glossary", "placement",
        "plugins", "topics", "local-provider", "manual-provider", "mycloud-provider" }) do
        assert.is_truthy(out:find("\n" .. t:gsub("%p", "%%%0") .. " +%S") or out:find("^" .. t:gsub("%p", "%%%0") .. " +%S"), t)
      end
      local sorted = table.move(names, 1, #names, 1, {})
      table.sort(sorted)
      assert.are.same(sorted, names)
      assert.matches("\nmycloud%-provider +my own cloud, reached by magic\n", out)
    end)

    it("each topic prints; a provider's topic is its description and settings", function()
      local env = setup()
      h.write(env.JUJU_HOME .. "/providers/mycloud.lua", USER_PROVIDER)
      for _, t in ipairs({ "basics", "commands", "constraints", "global-options", "glossary", "placement", "plugins",
        "providers" }) do
        local code, out = h.juju(env, { "help", t })
        assert.are.equal(0, code, t)
        assert.is_true(#out > 40, t)
      end
      local _, out = h.juju(env, { "help", "mycloud-provider" })
      assert.matches("^The mycloud provider: my own cloud, reached by magic\n", out)
      assert.matches("\n  region\n      where the machines are\n", out)
      local _, basics = h.juju(env, { "help" })
      assert.matches("juju help mycloud%-provider +my own cloud, reached by magic", basics)
      local _, provs = h.juju(env, { "help", "providers" })
      assert.matches("\nmycloud +my own cloud, reached by magic\n", provs)
      local code, _, err = h.juju(env, { "help", "nonesuch" })
      assert.are.equal(1, code)
      assert.are.equal("ERROR unknown command or topic for nonesuch\n", err)
    end)

    it("global-options says they may appear in front of any command", function()
      local _, out = h.juju(setup(), { "help", "global-options" })
      assert.matches("These options may be used with any command, and may appear in front of any\ncommand%.", out)
      assert.is_truthy(out:find('--logging-config (= "")\n    specify log levels for modules\n', 1, true))
      assert.is_truthy(out:find("--show-log  (= false)\n    if set, write the log file to stderr\n", 1, true))
    end)

    it("help bootstrap lists only the command's flags, sorted, in 1.25's style", function()
      local code, out = h.juju(setup(), { "help", "bootstrap" })
      assert.are.equal(0, code)
      local opts = out:match("\noptions:\n(.-)\n\n")
      assert.are.equal(table.concat({
        '--agent-version (= "")', "    the version of tools to initially use for Juju agents",
        "--constraints  (= )", "    set environment constraints",
        '-e, --environment (= "")', "    juju environment to operate in",
        "--keep-broken  (= false)", "    do not destroy the environment if bootstrap fails",
        '--metadata-source (= "")', "    local path to use as tools and/or metadata source",
        "--no-auto-upgrade  (= false)", "    do not upgrade to newer tools on first bootstrap",
        "--series  (= )", "    see --upload-series (OBSOLETE)",
        '--to (= "")', "    a placement directive indicating an instance to bootstrap",
        "--upload-series  (= )", "    upload tools for supplied comma-separated series list (OBSOLETE)",
        "--upload-tools  (= false)", "    upload local version of tools before bootstrapping",
      }, "\n"), opts)
      assert.is_nil(out:find("--show-log", 1, true))
      assert.matches("^usage: juju bootstrap %[options%]\npurpose: start up an environment from scratch\n", out)
    end)

    it("juju init writes a user provider's own boilerplate", function()
      local env = setup()
      h.write(env.JUJU_HOME .. "/providers/mycloud.lua", USER_PROVIDER)
      local _, out = h.juju(env, { "init", "--show" })
      local doc = assert(yaml.decode(out))
      assert.are.same({ type = "mycloud", region = "north" }, doc.environments.mine)
      assert.matches("\n    # My cloud%.\n    mine:\n", out)
    end)
  end)

  describe("9. streams and refusals", function()
    it("juju init prints its messages on stdout", function()
      local env = setup()
      local code, out, err = h.juju(env, { "init" })
      assert.are.equal(0, code)
      assert.are.equal("", err)
      assert.are.equal(string.format("A boilerplate environment configuration file has been written to %s.\n"
        .. "Edit the file to configure your juju environment and run bootstrap.\n", env.JUJU_HOME .. "/environments.yaml"), out)
      code, out = h.juju(env, { "init" })
      assert.are.equal(1, code)
      assert.matches("^A juju environment configuration already exists%.\n", out)
    end)

    it("destroy-environment asks on stdout", function()
      local env = setup(TWO)
      h.juju(env, { "bootstrap", "-e", "dummyenv" })
      local code, out, err = h.juju(env, { "destroy-environment", "dummyenv" }, "no\n")
      assert.are.equal(1, code)
      assert.are.equal('WARNING! this command will destroy the "dummyenv" environment (type: dummy)\n'
        .. "This includes all machines, services, data and other resources.\n\nContinue [y/N]? ", out)
      assert.are.equal("ERROR environment destruction aborted\n", err)
    end)

    it("--format is shown as 1.25's cmd.Output showed it", function()
      local _, out = h.juju(setup(), { "help", "status" })
      assert.is_truthy(out:find("\n--format  (= yaml)\n    specify output format (json|line|oneline|short|summary|tabular|yaml)\n", 1, true), out)
      local _, vout = h.juju(setup(), { "version", "--help" })
      assert.is_truthy(vout:find("\n--format  (= smart)\n", 1, true), vout)
      assert.is_truthy(vout:find('\n-o, --output (= "")\n    specify an output file', 1, true), vout)
    end)

    it("juju version --format yaml|json", function()
      local env = setup()
      local _, smart = h.juju(env, { "version" })
      local code, y = h.juju(env, { "version", "--format", "yaml" })
      assert.are.equal(0, code)
      assert.are.equal(smart, y)
      assert.are.equal(smart:gsub("\n$", ""), yaml.decode(y))
      local jcode, j = h.juju(env, { "version", "--format=json" })
      assert.are.equal(0, jcode)
      assert.are.equal('"' .. smart:gsub("\n$", "") .. '"\n', j)
      local bcode, _, berr = h.juju(env, { "version", "--format", "xml" })
      assert.are.equal(2, bcode)
      assert.are.equal('error: invalid value "xml" for flag --format: unknown format "xml"\n', berr)
    end)

    it("destroy-environment -e X X is refused", function()
      for _, flag in ipairs({ "-e", "--environment" }) do
        local code, _, err = h.juju(setup(TWO), { "destroy-environment", flag, "dummyenv", "dummyenv", "--yes" })
        assert.are.equal(2, code)
        assert.are.equal("WARNING -e/--environment flag is deprecated in 1.18, please supply environment as a positional parameter\n"
          .. "error: you cannot supply both -e and the envname as a positional argument\n", err)
      end
    end)

    it("destroy-environment --force of an unprepared environment cannot read environment info", function()
      local code, _, err = h.juju(setup(TWO), { "destroy-environment", "--force", "-y", "other" })
      assert.are.equal(1, code)
      assert.are.equal('ERROR cannot read environment info: environment "other" not found\n', err)
    end)
  end)

  describe("10. messages kept exact", function()
    it("a failed bootstrap prints no (step ...) line; --show-log has it at INFO", function()
      local yml = "environments:\n  bad: {type: dummy, broken: Bootstrap}\n"
      local code, _, err = h.juju(setup(yml), { "bootstrap", "-e", "bad" })
      assert.are.equal(1, code)
      assert.is_nil(err:find("(step", 1, true), err)
      local l = lines(err)
      assert.matches("^ERROR failed to bootstrap environment: ", l[#l])
      local _, _, logged = h.juju(setup(yml), { "bootstrap", "-e", "bad", "--show-log" })
      assert.matches(' INFO juju%.environs%.bootstrap [%w_.]+:%d+ bootstrap failed at step "start%-instance"', logged)
    end)

    it("Bootstrap complete is 1.25's bare line; the timing is in the verbose log", function()
      local env = setup(TWO)
      local _, _, err = h.juju(env, { "bootstrap", "-e", "dummyenv" })
      local l = lines(err)
      assert.are.equal("Bootstrap complete", l[#l])
      h.juju(env, { "destroy-environment", "-y", "dummyenv" })
      _, _, err = h.juju(env, { "bootstrap", "-e", "dummyenv", "--show-log" })
      assert.matches(" INFO juju%.environs%.bootstrap [%w_.]+:%d+ bootstrap took [%d.]+m?s\n", err)
    end)

    it("juju init writes the providers this engine has, amazon the default once ec2 exists", function()
      local env = setup()
      local _, out = h.juju(env, { "init", "--show" })
      local doc = assert(yaml.decode(out))
      local types = {}
      for _, e in pairs(doc.environments) do types[#types + 1] = e.type end
      table.sort(types)
      assert.are.same({ "azure", "ec2", "joyent", "local", "maas", "manual", "openstack" }, types)
      assert.are.equal("amazon", doc.default)
      -- a user's ec2 script (found first) keeps it so
      h.write(env.JUJU_HOME .. "/providers/ec2.lua", [[
        local P = { name = "ec2", api_version = 2, description = "Amazon EC2", config = { fields = {} } }
        for _, op in ipairs({ "prepare_for_bootstrap", "open", "state_server_instances", "start_instance", "destroy", "storage" }) do
          P[op] = function() return nil, "not here" end
        end
        return P
      ]])
      _, out = h.juju(env, { "init", "--show" })
      doc = assert(yaml.decode(out))
      assert.are.equal("amazon", doc.default)
      assert.are.equal("ec2", doc.environments.amazon.type)
    end)
  end)
end)
