-- Specs for juju.cloudinit (phase-1 user data, phase-2 script) and
-- juju.shell. The rendered texts are checked by the real tools (cloud-init
-- schema, bash -n, shellcheck) and the script is run once for real in a
-- sandbox with a fake jujud.
local crypto = require("juju.crypto")
local fs = require("juju.fs")
local sys = require("juju.sys")
local yaml = require("juju.yaml")
local shell = require("juju.shell")
local instancecfg = require("juju.instancecfg")
local agentconf = require("juju.agentconf")
local cloudinit = require("juju.cloudinit")

local CA_CERT, CA_KEY = crypto.new_ca("test")
local ADMIN_SECRET = "admin-secret-Xq9f3e"
local CLOUD_SECRET = "cloud-secret-Zr7u2w"
local ADMIN_HASH = crypto.user_password_hash(ADMIN_SECRET, crypto.COMPAT_SALT)

local HTTP_TOOLS = {
  version = "1.25.0-trusty-amd64",
  url = "https://streams.example.com/juju/tools/releases/juju-1.25.0-trusty-amd64.tgz",
  sha256 = crypto.sha256("tools"), size = 5,
}

local function config(extra)
  local cfg = {
    name = "test", type = "ec2", uuid = "7d2e6c1a-9b8f-4e3d-a2c1-0f9e8d7c6b5a",
    ["admin-secret"] = ADMIN_SECRET, ["ca-cert"] = CA_CERT, ["ca-private-key"] = CA_KEY,
    ["agent-version"] = "1.25.0", ["state-port"] = 37017, ["api-port"] = 17070,
    ["authorized-keys"] = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJqz user@laptop\nssh-rsa AAAAB3NzaC1yc2E\n",
    ["ssl-hostname-verification"] = true, ["secret-key"] = CLOUD_SECRET, ["access-key"] = "AKIAEXAMPLE",
  }
  for k, v in pairs(extra or {}) do cfg[k] = v end
  return cfg
end

local function bootstrap(cfg_extra, params, tools)
  local cfg = config(cfg_extra)
  local icfg = instancecfg.new_bootstrap(cfg, params or { series = "trusty", constraints = { mem = 2048 } })
  return assert(instancecfg.finish(icfg, cfg, { tools = tools or HTTP_TOOLS, instance_id = "i-bootstrap",
    hardware = { arch = "amd64", mem = 3840 } }))
end

local made = {}
local function tmpdir()
  local d = assert(fs.mkdtemp("/tmp/juju-cloudinit-"))
  made[#made + 1] = d
  return d
end

local function write(path, text, mode)
  assert(fs.write_atomic(path, text, mode or "0644"))
end

local function run(argv, opts)
  local opt = opts or {}
  opt.timeout = opt.timeout or 120
  return assert(sys.run(argv, opt))
end

local function assert_valid_cloud_config(text)
  local path = tmpdir() .. "/user-data"
  write(path, text)
  local r = run({ "cloud-init", "schema", "--config-file", path })
  assert.are.equal(0, r.code, r.stdout .. r.stderr)
  assert.matches("Valid cloud%-config", r.stdout .. r.stderr)
end

local function assert_clean_script(text)
  local path = tmpdir() .. "/script.sh"
  write(path, text)
  local r = run({ "bash", "-n", path })
  assert.are.equal(0, r.code, r.stderr)
  r = run({ "shellcheck", "-s", "bash", "-S", "warning", path })
  assert.are.equal(0, r.code, r.stdout .. r.stderr)
end

-- Splits a script into its command lines and its heredoc bodies.
local function split_heredocs(text)
  local commands, bodies = {}, {}
  local delim, body
  for line in text:gmatch("([^\n]*)\n") do
    if delim then
      if line == delim then
        bodies[#bodies + 1] = table.concat(body, "\n") .. "\n"
        delim = nil
      else
        body[#body + 1] = line
      end
    else
      commands[#commands + 1] = line
      delim = line:match("<< '([%w_]+)'$") or line:match("<< ([%w_]+)$")
      body = {}
    end
  end
  assert.is_nil(delim, "unterminated heredoc")
  return commands, bodies
end

-- The script without its variable lines and heredoc bodies.
local function skeleton(text)
  local commands = split_heredocs(text)
  local out = {}
  for _, l in ipairs(commands) do
    if not l:match("^[A-Z_]+='") then out[#out + 1] = l end
  end
  return table.concat(out, "\n")
end

local function find_plain(text, s) return text:find(s, 1, true) ~= nil end

describe("juju.shell", function()
  after_each(function() collectgarbage() collectgarbage() end)

  it("quotes POSIX-style", function()
    assert.are.equal("'abc'", shell.quote("abc"))
    assert.are.equal([['it'"'"'s']], shell.quote("it's"))
    assert.are.equal("''", shell.quote(""))
    assert.are.equal("'a' 'b c'", shell.join({ "a", "b c" }))
    assert.are.equal("X='$y'", shell.assign("X", "$y"))
    assert.has_error(function() shell.assign("1X", "v") end)
    assert.has_error(function() shell.quote(nil) end)
    local r = run({ "bash", "-c", "printf %s " .. shell.quote("a'b\"c$d`e\\f\ng") })
    assert.are.equal("a'b\"c$d`e\\f\ng", r.stdout)
  end)

  it("picks a heredoc terminator the body does not hold", function()
    assert.are.equal("EOF", shell.heredoc_delimiter("a\nb\n"))
    assert.are.equal("EOF_1", shell.heredoc_delimiter("a\nEOF\nb"))
    assert.are.equal("EOF_2", shell.heredoc_delimiter("EOF_1\nEOF\n"))
    local r = run({ "bash", "-c", shell.heredoc("cat", "x\nEOF\n$HOME `id`\n") })
    assert.are.equal("x\nEOF\n$HOME `id`\n", r.stdout)
  end)

  it("writes text files with Juju's idiom", function()
    assert.are.same({ "install -D -m 644 /dev/null '/a b'", "printf '%s\\n' 'x'\"'\"'y' > '/a b'" },
      shell.text_file("/a b", "x'y"))
  end)
end)

describe("juju.cloudinit", function()
  after_each(function() collectgarbage() collectgarbage() end)
  teardown(function()
    for _, d in ipairs(made) do fs.remove_tree(d) end
  end)

  describe("authorized keys", function()
    it("prefixes comments with Juju: and drops what is not a key", function()
      assert.are.same({
        "ssh-rsa AAAA Juju:user@host",
        "ssh-ed25519 BBBB Juju:sshkey",
        "ssh-rsa CCCC Juju:already",
        'command="ls" ssh-rsa DDDD Juju:opt user',
      }, cloudinit.juju_authorized_keys(
        "ssh-rsa AAAA user@host\n\n# a comment\nssh-ed25519 BBBB\r\n  ssh-rsa CCCC Juju:already  \n"
        .. 'command="ls" ssh-rsa DDDD opt user\nnot a key\nssh-rsa\n'))
      assert.are.same({}, cloudinit.juju_authorized_keys(nil))
    end)
  end)

  describe("userdata", function()
    it("renders a phase-1 cloud-config that cloud-init accepts", function()
      local icfg = bootstrap()
      local text = assert(cloudinit.userdata(icfg))
      assert.are.equal("#cloud-config\n", text:sub(1, 14))
      assert_valid_cloud_config(text)
      local doc = assert(yaml.decode(text))
      assert.are.same({ all = "| tee -a '/var/log/cloud-init-output.log'" }, doc.output)
      assert.are.same({ "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJqz Juju:user@laptop", "ssh-rsa AAAAB3NzaC1yc2E Juju:sshkey" },
        doc.ssh_authorized_keys)
      local rc = doc.runcmd
      assert.are.equal("set -xe", rc[1])
      assert.are.equal("install -D -m 644 /dev/null '/etc/systemd/system/juju-clean-shutdown.service'", rc[2])
      assert.matches("Stop all network interfaces on shutdown", rc[3])
      assert.are.equal("/bin/systemctl enable '/etc/systemd/system/juju-clean-shutdown.service'", rc[4])
      -- the nonce file is written last
      assert.are.equal("install -D -m 644 /dev/null '/var/lib/juju/nonce.txt'", rc[#rc - 1])
      assert.are.equal("printf '%s\\n' '" .. icfg.nonce .. "' > '/var/lib/juju/nonce.txt'", rc[#rc])
      assert.is_nil(doc.ssh_keys)
      assert.are.equal(text, cloudinit.userdata(icfg))
    end)

    it("pins the host key with ssh_keys when given", function()
      local priv, pub = crypto.ssh_keygen_ed25519("juju-bootstrap-host")
      local text = assert(cloudinit.userdata(bootstrap(), { host_keys = { ed25519 = { private = priv, public = pub } } }))
      assert_valid_cloud_config(text)
      local doc = assert(yaml.decode(text))
      assert.are.same({ ed25519_private = priv, ed25519_public = pub }, doc.ssh_keys)
      assert.has_error(function() cloudinit.userdata(bootstrap(), { host_keys = { ed25519 = { private = priv } } }) end)
    end)

    it("carries no secret", function()
      local icfg = bootstrap()
      local text = assert(cloudinit.userdata(icfg))
      for _, secret in ipairs({ ADMIN_SECRET, ADMIN_HASH, CA_KEY, icfg.state_serving_info.private_key, CLOUD_SECRET,
        CA_KEY:match("\n([^\n]+)\n"), "PRIVATE KEY", "oldpassword" }) do
        assert.is_false(find_plain(text, secret), "secret in user data: " .. secret)
      end
    end)

    it("follows the provider's paths and needs a nonce", function()
      local icfg = bootstrap(nil, { data_dir = "/home/u/.juju/local", cloud_init_output_log = "/home/u/.juju/local/ci.log" })
      local doc = assert(yaml.decode(assert(cloudinit.userdata(icfg))))
      assert.matches("'/home/u/.juju/local/nonce.txt'$", doc.runcmd[#doc.runcmd])
      assert.are.equal("| tee -a '/home/u/.juju/local/ci.log'", doc.output.all)
      icfg.nonce = nil
      local ok, err = cloudinit.userdata(icfg)
      assert.is_nil(ok)
      assert.are.equal("invalid machine configuration: missing nonce", err)
    end)
  end)

  describe("script", function()
    local variants = {
      { "published tools over https", nil, nil, HTTP_TOOLS },
      { "local file:// tools", nil, nil, { version = "1.25.0-trusty-amd64", url = "file:///tmp/juju-tools/tools/released/juju-1.25.0-trusty-amd64.tgz",
        sha256 = crypto.sha256("x"), size = 1 } },
      { "every switch off", { ["enable-os-refresh-update"] = false, ["enable-os-upgrade"] = false,
        ["enable-package-install"] = false } },
      { "proxies and an apt mirror", { ["http-proxy"] = "http://user:pw@10.0.0.1:3128", ["https-proxy"] = "10.0.0.1:3129",
        ["no-proxy"] = "localhost,10.0.3.1", ["apt-http-proxy"] = "http://10.0.3.1:3142",
        ["apt-mirror"] = "http://my.archive.ubuntu.com/ubuntu" } },
      { "ssl hostname verification off", { ["ssl-hostname-verification"] = false } },
    }
    for _, v in ipairs(variants) do
      it("passes bash -n and shellcheck: " .. v[1], function()
        local text = assert(cloudinit.script(bootstrap(v[2], v[3], v[4])))
        assert_clean_script(text)
      end)
    end

    it("announces Juju's progress messages in order on fd 9", function()
      local text = assert(cloudinit.script(bootstrap()))
      local expected = {
        [[echo "Logging to $CLOUD_INIT_OUTPUT_LOG on remote host" >&9]],
        "echo 'Running apt-get update' >&9", "echo 'Running apt-get upgrade' >&9",
        "echo 'Installing package: curl' >&9", "echo 'Installing package: bridge-utils' >&9",
        "echo 'Installing package: rsyslog-gnutls' >&9", "echo 'Installing package: cloud-utils' >&9",
        "echo 'Installing package: cloud-image-utils' >&9", "echo 'Installing package: tmux' >&9",
        [[echo "Fetching tools: curl -sSfw ]], "echo 'Bootstrapping Juju machine agent' >&9",
        [[echo "Starting Juju machine agent ($SERVICE_NAME)" >&9]],
      }
      local pos = 0
      for _, e in ipairs(expected) do
        local at = text:find(e, pos + 1, true)
        assert.is_not_nil(at, "missing or out of order: " .. e)
        pos = at
      end
      assert.is_false(find_plain(text, "cpu-checker"))
      assert.matches("\nset %-e\n", text)
      assert.are.equal("#!/bin/bash\n", text:sub(1, 12))
      assert.is_true(text:find("dump_file() {", 1, true) < text:find("\nset -e\n", 1, true))
    end)

    it("fetches published tools with curl and checks them with sha256sum -c", function()
      local text = assert(cloudinit.script(bootstrap()))
      assert.is_true(find_plain(text, "TOOLS_URL='" .. HTTP_TOOLS.url .. "'"))
      assert.is_true(find_plain(text, "TOOLS_SHA256='" .. HTTP_TOOLS.sha256 .. "'"))
      assert.is_true(find_plain(text, [[--retry 10 -o "$bin/tools.tar.gz" "$TOOLS_URL"]]))
      assert.is_true(find_plain(text, "sha256sum --check --status"))
      assert.is_false(find_plain(text, "--insecure"))
      assert.is_false(find_plain(text, "TOOLS_FILE"))
      assert.is_false(find_plain(text, "base64"))
      local insecure = assert(cloudinit.script(bootstrap { ["ssl-hostname-verification"] = false }))
      assert.is_true(find_plain(insecure, [[--retry 10 --insecure -o "$bin/tools.tar.gz" "$TOOLS_URL"]]))
    end)

    it("copies file:// tools from a path on the machine, never embedding them", function()
      local tools = { version = "1.25.0-trusty-amd64", url = "file:///tmp/juju%20tools/t.tgz", sha256 = crypto.sha256("x"), size = 1 }
      local text = assert(cloudinit.script(bootstrap(nil, nil, tools)))
      assert.is_true(find_plain(text, "TOOLS_FILE='/tmp/juju tools/t.tgz'"))
      assert.is_true(find_plain(text, [[cp -- "$TOOLS_FILE" "$bin/tools.tar.gz"]]))
      assert.is_false(find_plain(text, "curl -sSfw"))
      text = assert(cloudinit.script(bootstrap(nil, nil, tools), { tools_file = "/var/tmp/uploaded.tgz" }))
      assert.is_true(find_plain(text, "TOOLS_FILE='/var/tmp/uploaded.tgz'"))
      assert.is_true(find_plain(text, [["url":"file:///tmp/juju%20tools/t.tgz"]]))
    end)

    it("leaves out apt entirely when every switch is off", function()
      local text = assert(cloudinit.script(bootstrap { ["enable-os-refresh-update"] = false,
        ["enable-os-upgrade"] = false, ["enable-package-install"] = false }))
      assert.is_false(find_plain(text, "apt-get"))
      text = assert(cloudinit.script(bootstrap { ["enable-os-upgrade"] = false, ["enable-package-install"] = false }))
      assert.is_true(find_plain(text, "if command -v apt-get > /dev/null 2>&1; then"))
      assert.is_true(find_plain(text, "Running apt-get update"))
      assert.is_false(find_plain(text, "Running apt-get upgrade"))
      assert.is_false(find_plain(text, "Installing package"))
    end)

    it("writes proxies, the apt proxy file and the mirror", function()
      local text = assert(cloudinit.script(bootstrap { ["http-proxy"] = "http://user@10.0.0.1", ["no-proxy"] = "localhost,10.0.3.1",
        ["apt-mirror"] = "http://my.archive.ubuntu.com/ubuntu" }))
      assert.is_true(find_plain(text, "printf '%s\\n' 'Acquire::http::Proxy \"http://user@10.0.0.1\";' > /etc/apt/apt.conf.d/42-juju-proxy-settings"))
      for _, l in ipairs({ "export http_proxy='http://user@10.0.0.1'", "export HTTP_PROXY='http://user@10.0.0.1'",
        "export no_proxy='localhost,10.0.3.1'", "export NO_PROXY='localhost,10.0.3.1'" }) do
        assert.is_true(find_plain(text, "\n" .. l .. "\n"), l)
      end
      assert.is_true(find_plain(text, "echo 'Changing apt mirror to http://my.archive.ubuntu.com/ubuntu' >&9"))
      assert.is_true(find_plain(text, "new_mirror='http://my.archive.ubuntu.com/ubuntu'"))
      local plain = assert(cloudinit.script(bootstrap()))
      assert.is_false(find_plain(plain, "_proxy"))
      assert.is_false(find_plain(plain, "42-juju-proxy-settings"))
    end)

    it("keeps secrets off every command line and in 0600 heredocs", function()
      local icfg = bootstrap()
      local text = assert(cloudinit.script(icfg))
      local commands, bodies = split_heredocs(text)
      local secrets = { ADMIN_SECRET, ADMIN_HASH, CLOUD_SECRET, icfg.state_serving_info.private_key,
        icfg.state_serving_info.private_key:match("\n([^\n]+)\n"), CA_KEY, CA_KEY:match("\n([^\n]+)\n") }
      for _, line in ipairs(commands) do
        for _, s in ipairs(secrets) do
          assert.is_false(find_plain(line, s), "secret on a command line: " .. line)
        end
      end
      assert.is_false(find_plain(text, ADMIN_SECRET))
      assert.is_false(find_plain(text, "--env-config"))
      -- agent.conf travels in a quoted heredoc...
      local conf = assert(agentconf.parse(bodies[1]))
      assert.are.equal(ADMIN_HASH, conf.oldpassword)
      assert.are.equal(CA_KEY, conf.caprivatekey)
      assert.are.equal(agentconf.render(icfg), bodies[1])
      -- ...and so does the bootstrap-state payload, without the client's secrets.
      local params = assert(yaml.decode(bodies[2]))
      assert.are.equal(CLOUD_SECRET, params["env-config"]["secret-key"])
      assert.is_nil(params["env-config"]["admin-secret"])
      assert.is_nil(params["env-config"]["ca-private-key"])
      assert.are.equal("i-bootstrap", params["instance-id"])
      assert.are.equal("mem=2048M", params.constraints)
      assert.are.equal("arch=amd64 mem=3840M", params.hardware)
      assert.are.equal("mongodb", params["state-store"])
      assert.are.equal(4, #bodies) -- plus exec-start.sh and the unit file
      assert.is_true(find_plain(text, "cat > \"$agent_dir/agent.conf\" << 'EOF'\n# format 1.18\n"))
      assert.is_true(find_plain(text, "(\numask 077\ncat > \"$DATA_DIR/bootstrap-params\" << 'EOF'\n"))
      assert.is_true(find_plain(text, [[bootstrap-state --data-dir "$DATA_DIR" --params "$DATA_DIR/bootstrap-params" "$LOG_FLAG"]]))
    end)

    it("is deterministic", function()
      local icfg = bootstrap()
      assert.are.equal(assert(cloudinit.script(icfg)), assert(cloudinit.script(icfg)))
      assert.are.equal(assert(cloudinit.userdata(icfg)), assert(cloudinit.userdata(icfg)))
    end)

    it("differs for a local-provider layout only in variable lines and heredoc bodies", function()
      local a = assert(cloudinit.script(bootstrap()))
      local b = assert(cloudinit.script(bootstrap(nil, {
        data_dir = "/home/u/.juju/local", log_dir = "/var/log/juju-u-local",
        cloud_init_output_log = "/home/u/.juju/local/cloud-init-output.log", service_name = "juju-agent-u-local",
        jobs = { "JobManageEnviron" }, constraints = { mem = 2048 }, debug = true,
      })))
      assert.are_not.equal(a, b)
      assert.are.equal(skeleton(a), skeleton(b))
      assert.is_true(find_plain(b, "\nDATA_DIR='/home/u/.juju/local'\n"))
      assert.is_true(find_plain(b, "\nSERVICE_NAME='juju-agent-u-local'\n"))
      assert.is_true(find_plain(b, "\nLOG_FLAG='--debug'\n"))
      assert.is_false(find_plain(skeleton(b), "/home/u/"))
    end)

    it("refuses an unverified config and unknown start modes", function()
      local icfg = bootstrap()
      icfg.tools = nil
      local ok, err = cloudinit.script(icfg)
      assert.is_nil(ok)
      assert.are.equal("invalid machine configuration: missing tools", err)
      assert.has_error(function() cloudinit.script(bootstrap(), { agent_start = "upstart" }) end)
      assert.has_error(function() cloudinit.script(nil) end)
    end)
  end)

  describe("script run in a sandbox", function()
    -- A tools tarball holding a fake jujud that records how it was called.
    local function sandbox(tampered)
      local root = tmpdir()
      local record = root .. "/record"
      assert(fs.mkdir_p(root .. "/src", "0755"))
      write(root .. "/src/jujud", table.concat({
        "#!/bin/sh",
        "rec=" .. shell.quote(record),
        [[printf 'argv:' >> "$rec"; for a in "$@"; do printf ' %s' "$a" >> "$rec"; done; echo >> "$rec"]],
        [[if [ "$1" = bootstrap-state ]; then]],
        [[  p=; while [ $# -gt 0 ]; do if [ "$1" = --params ]; then p=$2; fi; shift; done]],
        [[  echo "params-mode: $(stat -c %a "$p")" >> "$rec"]],
        "  cat \"$p\" > " .. shell.quote(root .. "/params-copy"),
        "fi",
        "exit 0", "" }, "\n"), "0755")
      local r = run({ "tar", "czf", root .. "/tools.tgz", "-C", root .. "/src", "jujud" })
      assert.are.equal(0, r.code, r.stderr)
      local sha = assert(crypto.sha256_file(root .. "/tools.tgz"))
      if tampered then sha = crypto.sha256("something else") end
      local icfg = bootstrap({ ["enable-os-refresh-update"] = false, ["enable-os-upgrade"] = false,
        ["enable-package-install"] = false }, {
        data_dir = root .. "/data", log_dir = root .. "/log", cloud_init_output_log = root .. "/cloud-init-output.log",
        constraints = { mem = 2048 },
      }, { version = "1.25.0-trusty-amd64", url = "file://" .. root .. "/tools.tgz", sha256 = sha, size = 1 })
      local script = assert(cloudinit.script(icfg, { agent_start = "supervised" }))
      write(root .. "/script.sh", script, "0700")
      return root, icfg, record
    end

    local function read(path) return assert(fs.read_file(path)) end

    it("installs the agent, hands the params file over and starts the agent", function()
      local root, icfg, record = sandbox(false)
      local r = run({ "bash", root .. "/script.sh" })
      assert.are.equal(0, r.code, r.stderr)
      local err = r.stderr
      for _, m in ipairs({ "Logging to " .. root .. "/cloud-init-output.log on remote host\n", "Fetching tools: cp ",
        "Bootstrapping Juju machine agent\n", "Starting Juju machine agent (jujud-machine-0)\n" }) do
        assert.is_true(find_plain(err, m), m)
      end
      assert.is_false(find_plain(err, "Tools checksum mismatch"))
      local data = root .. "/data"
      local bin = data .. "/tools/1.25.0-trusty-amd64"
      -- the checksum passed: the tarball was unpacked, then removed
      assert.is_true(fs.exists(bin .. "/jujud"))
      assert.is_false(fs.exists(bin .. "/tools.tar.gz"))
      assert.are.equal(string.format('{"version":"1.25.0-trusty-amd64","url":"file://%s/tools.tgz","sha256":"%s","size":1}',
        root, icfg.tools.sha256), read(bin .. "/downloaded-tools.txt"))
      assert.are.equal("1.25.0-trusty-amd64", fs.readlink(data .. "/tools/machine-0"))
      -- agent.conf: 0600, exactly what was rendered
      local conf_path = data .. "/agents/machine-0/agent.conf"
      assert.are.equal(tonumber("600", 8), fs.stat(conf_path).mode)
      assert.are.equal(agentconf.render(icfg), read(conf_path))
      -- the params file was 0600, reached jujud, and is gone
      local rec = read(record)
      assert.is_true(find_plain(rec, string.format("argv: bootstrap-state --data-dir %s --params %s/bootstrap-params --show-log\n",
        data, data)), rec)
      assert.is_true(find_plain(rec, "params-mode: 600\n"), rec)
      assert.are.equal(assert(yaml.encode(cloudinit.bootstrap_params(icfg))), read(root .. "/params-copy"))
      assert.are.equal(CLOUD_SECRET, assert(yaml.decode(read(root .. "/params-copy")))["env-config"]["secret-key"])
      assert.is_false(fs.exists(data .. "/bootstrap-params"))
      -- the supervised agent: exec-start.sh runs jujud machine
      local init = data .. "/init/jujud-machine-0"
      assert.is_true(fs.exists(init .. "/jujud-machine-0.pid"))
      assert.matches("ExecStart=" .. init:gsub("%p", "%%%0") .. "/exec%-start%.sh\n", read(init .. "/jujud-machine-0.service"))
      local want = string.format("argv: machine --data-dir %s --machine-id 0 --show-log\n", data)
      local deadline = sys.monotonic() + 15
      while not find_plain(read(record), want) and sys.monotonic() < deadline do sys.sleep(0.1) end
      assert.is_true(find_plain(read(record), want), read(record))
      local pid = math.tointeger(tonumber(read(init .. "/jujud-machine-0.pid"):match("%d+")))
      pcall(sys.kill, pid)
      assert.are.equal(tonumber("600", 8), fs.stat(root .. "/log/machine-0.log").mode)
      assert.is_true(fs.exists(root .. "/cloud-init-output.log"))
    end)

    it("stops with 'Tools checksum mismatch' when the tarball does not match", function()
      local root, _, record = sandbox(true)
      local r = run({ "bash", root .. "/script.sh" })
      assert.are.equal(1, r.code)
      assert.is_true(find_plain(r.stderr, "Tools checksum mismatch\n"), r.stderr)
      assert.is_false(fs.exists(record))
      assert.is_false(fs.exists(root .. "/data/agents/machine-0/agent.conf"))
      assert.is_false(fs.exists(root .. "/data/tools/1.25.0-trusty-amd64/jujud"))
    end)
  end)
end)
