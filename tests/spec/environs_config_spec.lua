local context = require("juju.context")
local crypto = require("juju.crypto")
local yaml = require("juju.yaml")
local environments = require("juju.environs.environments")
local config = require("juju.environs.config")
local providers = require("juju.providers")
local h = require("helpers")

local function build(text, opts)
  opts = opts or {}
  local home = opts.home or h.tmpdir()
  local errs = {}
  local ctx = context.new { env = opts.env or { HOME = home .. "/user", JUJU_HOME = home },
    stdout = function() end, stderr = function(s) errs[#errs + 1] = s end }
  local envs = assert(environments.parse(text, "environments.yaml"))
  local attrs, marks = envs:attrs(opts.name or "e")
  local cfg, err = config.from_environments(ctx, attrs, marks, {
    file = "environments.yaml", home = home, provider = opts.provider, with_keys = opts.with_keys })
  return cfg, err, table.concat(errs)
end

describe("environment configuration", function()
  after_each(function() h.cleanup(); collectgarbage() end)

  it("fills the core defaults of spec 3.2", function()
    local cfg = assert(build("environments:\n  e:\n    type: local\n"))
    assert.are.equal("instance", cfg["firewall-mode"])
    assert.are.equal(37017, cfg["state-port"])
    assert.are.equal(17070, cfg["api-port"])
    assert.are.equal(6514, cfg["syslog-port"])
    assert.are.equal(600, cfg["bootstrap-timeout"])
    assert.are.equal(5, cfg["bootstrap-retry-delay"])
    assert.are.equal(10, cfg["bootstrap-addresses-delay"])
    assert.is_false(cfg.development)
    assert.is_true(cfg["ssl-hostname-verification"])
    assert.are.equal("", cfg["admin-secret"])
    assert.are.equal("<root>=WARNING;unit=DEBUG", cfg["logging-config"])
    assert.are.equal("released", config.get(cfg, "agent-stream"))
    assert.is_true(config.get(cfg, "enable-os-upgrade"))
  end)

  it("translates deprecated keys with a warning", function()
    local cfg, _, errs = build("environments:\n  e:\n    type: null\n    tools-metadata-url: http://x/tools\n"
      .. "    provisioner-safe-mode: true\n    block-destroy-environment: true\n")
    assert.are.equal("manual", cfg.type)
    assert.are.equal("http://x/tools", cfg["agent-metadata-url"])
    assert.are.equal("destroyed", cfg["provisioner-harvest-mode"])
    assert.is_nil(cfg["block-destroy-environment"])
    assert.matches('WARNING Config attribute "tools%-metadata%-url" is deprecated', errs)
    assert.matches("block%-destroy%-environment is deprecated and ignored", errs)
  end)

  it("derives logging-config from JUJU_LOGGING_CONFIG and keeps a unit level", function()
    local home = h.tmpdir()
    local cfg = assert(build("environments:\n  e:\n    type: local\n",
      { home = home, env = { JUJU_HOME = home, JUJU_LOGGING_CONFIG = "juju=INFO" } }))
    assert.are.equal("<root>=WARNING;juju=INFO;unit=DEBUG", cfg["logging-config"])
    cfg = assert(build("environments:\n  e:\n    type: local\n    logging-config: '<root>=ERROR;unit=INFO'\n"))
    assert.are.equal("<root>=ERROR;unit=INFO", cfg["logging-config"])
  end)

  it("enforces the rules of spec 3.1 with Juju's messages", function()
    local cases = {
      { "    storage-default-block-source: ebs\n", 'attribute "storage%-default%-block%-source" is not allowed in bootstrap configurations' },
      { "    uuid: not-a-uuid\n", 'uuid: expected uuid, got string%("not%-a%-uuid"%)' },
      { "    resource-tags: juju-env=1\n", 'tag "juju%-env" uses reserved prefix "juju%-"' },
      { "    agent-version: one\n", 'invalid agent version in environment configuration: "one"' },
      { "    firewall-mode: bogus\n", "expected one of" },
      { "    state-port: 0\n", "empty state%-port in environment configuration" },
      { "    default-series: ''\n    image-stream: ''\n    api-port: abc\n", "expected number" },
    }
    for _, c in ipairs(cases) do
      local cfg, err = build("environments:\n  e:\n    type: local\n" .. c[1])
      assert.is_nil(cfg, c[1])
      assert.matches(c[2], err, 1)
    end
    local cfg, err = build("environments:\n  'a/b':\n    type: local\n", { name = "a/b" })
    assert.is_nil(cfg)
    assert.matches("environment name contains unsafe characters", err)
  end)

  it("accepts resource-tags in all three forms", function()
    for _, form in ipairs({ "a=1 b=2", "\n      a: 1\n      b: 2", "\n      - a=1\n      - b=2" }) do
      local cfg = assert(build("environments:\n  e:\n    type: local\n    resource-tags: " .. form .. "\n"))
      assert.are.same({ a = "1", b = "2" }, cfg["resource-tags"])
    end
  end)

  it("loads the CA from the *-path keys and checks the pair", function()
    local home = h.tmpdir()
    local cert, key = crypto.new_ca("x")
    h.write(home .. "/ca.pem", cert)
    h.write(home .. "/ca.key", key)
    local cfg = assert(build(string.format("environments:\n  e:\n    type: local\n    ca-cert-path: %s/ca.pem\n"
      .. "    ca-private-key-path: %s/ca.key\n", home, home), { home = home }))
    assert.are.equal(cert, cfg["ca-cert"])
    assert.is_nil(cfg["ca-cert-path"])
    local _, other = crypto.new_ca("y")
    h.write(home .. "/other.key", other)
    local bad, err = build(string.format("environments:\n  e:\n    type: local\n    ca-cert-path: %s/ca.pem\n"
      .. "    ca-private-key-path: %s/other.key\n", home, home), { home = home })
    assert.is_nil(bad)
    assert.matches("bad CA certificate/key in configuration", err)
    h.write(home .. "/empty.pem", "\n")
    bad, err = build(string.format("environments:\n  e:\n    type: local\n    ca-cert-path: %s/empty.pem\n", home), { home = home })
    assert.is_nil(bad)
    assert.matches('file ".*empty%.pem" is empty', err)
  end)

  it("discovers authorized keys: client key first, then the user's", function()
    local home = h.tmpdir()
    h.write(home .. "/user/.ssh/id_rsa.pub", "ssh-rsa AAAAuser user@laptop\n")
    local cfg = assert(build("environments:\n  e:\n    type: local\n", { home = home, with_keys = true }))
    local lines = {}
    for l in cfg["authorized-keys"]:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.are.equal(2, #lines)
    assert.matches("^ssh%-ed25519 .* juju%-client%-key$", lines[1])
    assert.are.equal("ssh-rsa AAAAuser user@laptop", lines[2])
    local bad, err = build("environments:\n  e:\n    type: local\n    authorized-keys-path: ~/.ssh/missing.pub\n",
      { home = home, with_keys = true })
    assert.is_nil(bad)
    assert.matches("missing%.pub", err)
  end)

  -- Issue 14.5 (the CVE-2015-1316 class): a private key given as authorized keys
  -- never reaches machine 0 or the .jenv.
  it("refuses a private key given as authorized-keys-path or authorized-keys", function()
    local home = h.tmpdir()
    local blocks = {
      "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
      "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\n",
      "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI\n-----END PRIVATE KEY-----\n",
      "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHDBOBgkqhkiG9w0B\n-----END ENCRYPTED PRIVATE KEY-----\n",
      "PuTTY-User-Key-File-2: ssh-rsa\nEncryption: none\n",
    }
    for i, block in ipairs(blocks) do
      -- A public line beside it does not make it acceptable.
      h.write(home .. "/user/.ssh/key" .. i, "ssh-ed25519 AAAApub u@h\n" .. block)
      local bad, err, log = build(string.format("environments:\n  e:\n    type: local\n    authorized-keys-path: ~/.ssh/key%d\n", i),
        { home = home, with_keys = true })
      assert.is_nil(bad, block)
      assert.matches('authorized%-keys%-path ".*/%.ssh/key' .. i .. '" holds a private key; it must hold public key lines only', err)
      assert.is_nil(err:find("AAAA", 1, true))
      assert.is_nil(log:find("BEGIN", 1, true))
    end
    local bad, err = build("environments:\n  e:\n    type: local\n    authorized-keys: |\n"
      .. "      -----BEGIN EC PRIVATE KEY-----\n      MHcCAQEEIBx\n      -----END EC PRIVATE KEY-----\n",
      { home = home, with_keys = true })
    assert.is_nil(bad)
    assert.matches("^authorized%-keys holds a private key", err)
    -- The user's default identity files are checked too.
    h.write(home .. "/user/.ssh/id_ed25519.pub", blocks[1])
    bad, err = build("environments:\n  e:\n    type: local\n", { home = home, with_keys = true })
    assert.is_nil(bad)
    assert.matches('default public key file ".*id_ed25519%.pub" holds a private key', err)
    -- A real public key still passes.
    h.write(home .. "/user/.ssh/id_ed25519.pub", "ssh-ed25519 AAAAok u@h\n")
    local cfg = assert(build("environments:\n  e:\n    type: local\n", { home = home, with_keys = true }))
    assert.matches("ssh%-ed25519 AAAAok u@h", cfg["authorized-keys"])
  end)

  -- Issue 14.9: wrong-typed values of the keys read before the schema, and
  -- negative durations, are config errors with the position, not internal errors.
  it("type-checks the file and key attributes, and the bootstrap durations", function()
    local cases = {
      { "authorized-keys: 1", "4:22: authorized-keys: expected string, got int(1)" },
      { "ca-cert-path: 5", "4:19: ca-cert-path: expected string, got int(5)" },
      { "authorized-keys-path: true", "4:27: authorized-keys-path: expected string, got bool(true)" },
      { "ca-private-key-path: [a]", "4:26: ca-private-key-path: expected string, got list" },
      { "ca-cert: {a: 1}", "4:14: ca-cert: expected string, got map" },
      { "ca-private-key: 1.5", "4:21: ca-private-key: expected string, got float64(1.5)" },
      { "bootstrap-timeout: -5", "bootstrap-timeout: must be a positive number of seconds, got -5" },
      { "bootstrap-addresses-delay: -1", "bootstrap-addresses-delay: must be a positive number of seconds, got -1" },
    }
    for _, c in ipairs(cases) do
      local bad, err = build("environments:\n  e:\n    type: local\n    " .. c[1] .. "\n", { with_keys = true })
      assert.is_nil(bad, c[1])
      assert.is_string(err, c[1])
      assert.is_nil(err:find("%.lua:%d"), err)
      assert.are.equal(c[2], err:match("^environments%.yaml:(.*)$") or err, c[1])
    end
  end)

  it("builds a prepared config without defaults and requires authorized-keys", function()
    local provider = assert(providers.load(nil, "dummy"))
    local ctx = context.new { env = {} }
    local base = { name = "e", type = "dummy", ["firewall-mode"] = "instance", development = false,
      ["ssl-hostname-verification"] = true }
    local cfg, err = config.from_prepared(ctx, base, { provider = provider })
    assert.is_nil(cfg)
    assert.are.equal("authorized-keys missing from environment configuration", err)
    base["authorized-keys"] = "ssh-ed25519 AAAA k"
    cfg = assert(config.from_prepared(ctx, base, { provider = provider }))
    assert.are.equal(37017, cfg["state-port"])
    assert.is_nil(cfg["bootstrap-timeout"])
    local with_path = {}
    for k, v in pairs(base) do with_path[k] = v end
    with_path["ca-cert-path"] = "/x"
    cfg, err = config.from_prepared(ctx, with_path, { provider = provider })
    assert.is_nil(cfg)
    assert.matches('attribute "ca%-cert%-path" is not allowed in configuration', err)
    base.type = nil
    cfg, err = config.from_prepared(ctx, base, { provider = provider })
    assert.is_nil(cfg)
    assert.matches("type: expected string, got nothing", err)
  end)

  it("lists core and provider secrets", function()
    local provider = assert(providers.load(nil, "dummy"))
    local secrets = config.secret_keys(provider)
    local set = {}
    for _, k in ipairs(secrets) do set[k] = true end
    assert.is_true(set["admin-secret"])
    assert.is_true(set["ca-private-key"])
    assert.is_true(set.secret)
    assert.is_nil(set.name)
  end)

  it("keeps unknown keys and null values out of the way", function()
    local cfg = assert(build("environments:\n  e:\n    type: local\n    default-series:\n    custom: 1\n"))
    assert.are.equal("", cfg["default-series"])
    assert.are.equal(1, cfg.custom)
    assert.are_not.equal(yaml.null, cfg["default-series"])
  end)
end)
