-- juju.testing.instance: an emulated cloud's instance as a real test host.
-- launch{user_data = ...} starts a juju.testing.sshd host (its own mount
-- namespace and sshd on 127.0.0.N, by default port 22) on a fresh Debian 12
-- image (scripts/fresh-root.sh with M.IMAGE_PACKAGES: openssh-server, sudo,
-- systemd for systemctl, cloud-init) and applies the #cloud-config there.
--
-- cloud_init = "cloud-init" (the default on the image): Debian's cloud-init
-- 22.4 itself runs in the host: the user-data through DataSourceNone, the
-- default user set to Ubuntu's (`ubuntu`, NOPASSWD sudo, Ubuntu's groups),
-- its init, config and final stages as at boot; `locale: false` (minbase
-- has no locales) and the final stage without package-update-upgrade-install
-- (no network: packages are recorded, never installed). The sshd serves the
-- user-data's ssh_keys (checked equal to what cloud-init wrote to /etc/ssh).
-- Harness deviation: the sshd runs without PAM, so ubuntu's locked "!"
-- password becomes "*" (no password, not locked) after the init stage.
-- ~4.5 s a host.
--
-- cloud_init = "emulated": the same keys applied by this module (~0.35 s):
--   ssh_keys             the sshd's host keys (<type>_private/_public; ed25519,
--                        ecdsa, rsa); an ecdsa key is generated when none is given
--   ssh_authorized_keys  ~ubuntu/.ssh/authorized_keys (0600)
--   (default user)       `ubuntu`, bash, Ubuntu's groups that exist;
--                        passwordless sudo in /etc/sudoers.d/90-cloud-init-users
--   bootcmd              run first (init stage), output to output.init/all
--   write_files          path, content, encoding (b64, gzip, gz+b64), owner,
--                        permissions, append, defer (after the user exists)
--   packages, package_update, package_upgrade   recorded in host.recorded
--   runcmd               one script, /var/lib/cloud/instance/scripts/runcmd, run
--                        as root by /bin/sh -e (cloud-init adds no -e; Juju's
--                        runcmd starts with `set -xe` anyway), stdout and stderr
--                        to output.final/all ("| cmd", ">> file", "> file", "file")
--   (root keeps no keys: cloud-init's disable_root message is not emulated)
--
-- In both modes any other key is an error naming it (never silently
-- ignored; cloud-init itself would only warn), as is user-data that is not
-- #cloud-config or not valid YAML; a failing stage or runcmd fails the
-- launch with its output. user_data may be gzip'd.
--
--   local host = assert(instance.launch { user_data = text, address_index = 40 })
--   -- host.address, host.port, host.host_key_pub, host.run(argv), host.log
--   host.stop()
local fs = require("juju.fs")
local sys = require("juju.sys")
local yaml = require("juju.yaml")
local gzip = require("juju.gzip")
local crypto = require("juju.crypto")
local shell = require("juju.shell")
local json = require("juju.json")
local proc = require("juju.proc")
local sshd = require("juju.testing.sshd")

local M = {}

M.USER = "ubuntu"
M.USER_GROUPS = { "adm", "audio", "cdrom", "dialout", "dip", "floppy", "lxd", "netdev", "plugdev", "sudo", "video" }
M.SUDOERS_FILE = "/etc/sudoers.d/90-cloud-init-users"
M.RUNCMD_SCRIPT = "/var/lib/cloud/instance/scripts/runcmd"
M.IMAGE_PACKAGES = "openssh-server,sudo,systemd,cloud-init"
M.CLOUD_INIT_CFG = "/etc/cloud/cloud.cfg.d/99-juju-testing.cfg"
-- Debian's cloud_final_modules without package-update-upgrade-install
-- (no network on test hosts: packages are recorded, never installed).
M.FINAL_MODULES = { "fan", "landscape", "lxd", "write-files-deferred", "puppet", "chef", "mcollective",
  "salt-minion", "reset_rmc", "refresh_rmc_and_interface", "rightscale_userdata", "scripts-vendor",
  "scripts-per-once", "scripts-per-boot", "scripts-per-instance", "scripts-user", "ssh-authkey-fingerprints",
  "keys-to-console", "install-hotplug", "phone-home", "final-message", "power-state-change" }
M.DEFAULT_OUTPUT_LOG = "/var/log/cloud-init-output.log"

local SUPPORTED = {
  output = true, runcmd = true, bootcmd = true, write_files = true, ssh_authorized_keys = true,
  ssh_keys = true, packages = true, package_update = true, package_upgrade = true,
}
local KEY_TYPES = { ed25519 = true, ecdsa = true, rsa = true }

-- ---------------------------------------------------------------------------
-- parsing

local function is_list(v)
  if type(v) ~= "table" then return false end
  local n = 0
  for _ in pairs(v) do n = n + 1 end
  return n == #v
end

local function string_list(v, what)
  if not is_list(v) then return nil, what .. ": expected a list" end
  for i, s in ipairs(v) do
    if type(s) ~= "string" then return nil, string.format("%s[%d]: expected a string", what, i) end
  end
  return v
end

-- A runcmd/bootcmd item as a shell line: a string as it is, a list as its
-- words quoted (cloud-init's shellify).
local function command_lines(v, what)
  if not is_list(v) then return nil, what .. ": expected a list" end
  local lines = {}
  for i, item in ipairs(v) do
    if type(item) == "string" then
      lines[i] = item
    elseif is_list(item) and #item > 0 then
      local words = {}
      for j, w in ipairs(item) do
        if type(w) ~= "string" and type(w) ~= "number" then
          return nil, string.format("%s[%d][%d]: expected a string", what, i, j)
        end
        words[j] = shell.quote(tostring(w))
      end
      lines[i] = table.concat(words, " ")
    else
      return nil, string.format("%s[%d]: expected a string or a list of strings", what, i)
    end
  end
  return lines
end

-- output.<stage> or output.all as a shell redirection of a command's
-- stdout and stderr.
local function redirection(spec, what)
  if spec == nil then return "" end
  if is_list(spec) then
    if #spec == 1 or (#spec == 2 and (spec[2] == "&1" or spec[2] == spec[1])) then
      spec = spec[1]
    else
      return nil, what .. ": separate stdout and stderr targets are not supported"
    end
  end
  if type(spec) ~= "string" then return nil, what .. ": expected a string" end
  spec = spec:gsub("^%s+", ""):gsub("%s+$", "")
  if spec:sub(1, 1) == "|" then
    local cmd = spec:sub(2):gsub("^%s+", "")
    if cmd == "" then return nil, what .. ": empty pipe command" end
    return "2>&1 | " .. cmd
  end
  local op, path = spec:match("^(>>?)%s*(.+)$")
  if not op then op, path = ">>", spec end
  if path:sub(1, 1) ~= "/" then return nil, what .. ": " .. path .. " is not an absolute path" end
  return op .. " " .. shell.quote(path) .. " 2>&1"
end

local function output_target(output, stage)
  if output == nil then return nil end
  local spec = output[stage]
  if spec == nil then spec, stage = output.all, "all" end
  return redirection(spec, "output." .. stage)
end

local function write_file_entries(v)
  if not is_list(v) then return nil, "write_files: expected a list" end
  local out = {}
  for i, e in ipairs(v) do
    local what = string.format("write_files[%d]", i)
    if type(e) ~= "table" or is_list(e) then return nil, what .. ": expected a mapping" end
    for k in pairs(e) do
      if not ({ path = true, content = true, encoding = true, owner = true, permissions = true, append = true,
        defer = true, source = false })[k] then
        return nil, string.format("%s: unsupported key %q", what, tostring(k))
      end
    end
    if type(e.path) ~= "string" or e.path:sub(1, 1) ~= "/" then return nil, what .. ".path: expected an absolute path" end
    local content = e.content
    if content == nil then content = "" end
    if type(content) ~= "string" then return nil, what .. ".content: expected a string" end
    local enc = e.encoding or "text/plain"
    if enc == "b64" or enc == "base64" or enc == "gz+b64" or enc == "gzip+base64" or enc == "gz+base64"
      or enc == "gzip+b64" then
      local raw = crypto.unbase64((content:gsub("%s", "")))
      if not raw then return nil, what .. ".content: not valid base64" end
      content = raw
    elseif not (enc == "text/plain" or enc == "gz" or enc == "gzip") then
      return nil, string.format("%s.encoding: unsupported %q", what, tostring(enc))
    end
    if enc:match("^gz") then
      local raw, err = gzip.gunzip(content)
      if not raw then return nil, what .. ".content: not valid gzip: " .. tostring(err) end
      content = raw
    end
    local perm = e.permissions or "0644"
    if math.type(perm) == "integer" then perm = string.format("%o", perm) end
    if type(perm) ~= "string" or not perm:match("^0?o?[0-7]+$") then
      return nil, what .. ".permissions: expected an octal mode"
    end
    perm = perm:gsub("^0?o?", "")
    local owner = e.owner or "root:root"
    if type(owner) ~= "string" or not owner:match("^[%w_.-]+:?[%w_.-]*$") then
      return nil, what .. ".owner: expected user[:group]"
    end
    out[#out + 1] = { path = e.path, content = content, mode = perm, owner = owner, append = e.append == true,
      defer = e.defer == true }
  end
  return out
end

--- Parses user-data (gzip'd or not) as cloud-init would: the cloud-config
--- table with the values launch applies, or nil and a message naming the
--- problem (never quoting the user-data: it holds a private host key).
function M.parse(user_data)
  if type(user_data) ~= "string" then return nil, "user-data: expected a string" end
  local text = user_data
  if text:sub(1, 2) == "\31\139" then
    local raw, err = gzip.gunzip(text)
    if not raw then return nil, "user-data: gzip'd but cannot be decompressed: " .. tostring(err) end
    text = raw
  end
  local first = text:match("^([^\n]*)") or ""
  first = first:gsub("\r$", "")
  if first ~= "#cloud-config" then
    local kind = "not #cloud-config"
    if text == "" then
      kind = "empty"
    elseif first:sub(1, 2) == "#!" then
      kind = "a script (#!), not #cloud-config"
    elseif first:match("^Content%-Type:") or first:match("^MIME%-Version:") then
      kind = "MIME multi-part, not #cloud-config"
    elseif first:sub(1, 1) == "#" then
      kind = string.format("%q, not #cloud-config", first:sub(1, 30))
    end
    return nil, "user-data is " .. kind .. ": only #cloud-config user-data is supported"
  end
  local doc, err = yaml.decode(text, "user-data")
  if doc == nil then return nil, "user-data is not valid YAML: " .. tostring(err) end
  if doc == yaml.null then doc = {} end
  if type(doc) ~= "table" or (is_list(doc) and next(doc) ~= nil) then
    return nil, "user-data: the #cloud-config document is not a mapping"
  end
  local keys = {}
  for k in pairs(doc) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  for _, k in ipairs(keys) do
    if not SUPPORTED[k] then
      return nil, string.format("user-data: cloud-config key %q is not supported by juju.testing.instance", k)
    end
  end
  local cfg = { doc = doc, recorded = {} }
  local e
  if doc.output ~= nil then
    if type(doc.output) ~= "table" or is_list(doc.output) then return nil, "user-data: output: expected a mapping" end
    for k in pairs(doc.output) do
      if not ({ all = true, init = true, config = true, final = true })[k] then
        return nil, string.format("user-data: output.%s is not supported", tostring(k))
      end
    end
  end
  cfg.runcmd_redirect, e = output_target(doc.output, "final")
  if e then return nil, "user-data: " .. e end
  cfg.bootcmd_redirect, e = output_target(doc.output, "init")
  if e then return nil, "user-data: " .. e end
  local all = doc.output and (doc.output.final or doc.output.all)
  if type(all) == "string" then
    cfg.output_log = all:match("^|%s*tee%s+%-a%s+'([^']+)'%s*$") or all:match("^|%s*tee%s+%-a%s+(%S+)%s*$")
      or all:match("^>>?%s*(/%S+)$") or all:match("^(/%S+)$")
  end
  if doc.runcmd ~= nil then
    cfg.runcmd, e = command_lines(doc.runcmd, "runcmd")
    if not cfg.runcmd then return nil, "user-data: " .. e end
  end
  if doc.bootcmd ~= nil then
    cfg.bootcmd, e = command_lines(doc.bootcmd, "bootcmd")
    if not cfg.bootcmd then return nil, "user-data: " .. e end
  end
  if doc.ssh_authorized_keys ~= nil then
    cfg.authorized_keys, e = string_list(doc.ssh_authorized_keys, "ssh_authorized_keys")
    if not cfg.authorized_keys then return nil, "user-data: " .. e end
  end
  if doc.ssh_keys ~= nil then
    if type(doc.ssh_keys) ~= "table" or is_list(doc.ssh_keys) then return nil, "user-data: ssh_keys: expected a mapping" end
    cfg.host_keys = {}
    local names = {}
    for k in pairs(doc.ssh_keys) do names[#names + 1] = tostring(k) end
    table.sort(names)
    for _, k in ipairs(names) do
      local v = doc.ssh_keys[k]
      local t, part = k:match("^(%w+)_(%w+)$")
      if not t or not KEY_TYPES[t] or (part ~= "private" and part ~= "public") then
        return nil, string.format("user-data: ssh_keys.%s is not supported (<ed25519|ecdsa|rsa>_<private|public>)", k)
      end
      if type(v) ~= "string" then return nil, string.format("user-data: ssh_keys.%s: expected a string", k) end
      cfg.host_keys[t] = cfg.host_keys[t] or {}
      cfg.host_keys[t][part] = v
    end
    for _, t in ipairs { "ed25519", "ecdsa", "rsa" } do
      local pair = cfg.host_keys[t]
      if pair == nil then goto next_type end
      if not pair.private or not pair.public then
        return nil, string.format("user-data: ssh_keys: %s_private and %s_public go together", t, t)
      end
      if not pair.public:match("^%S+ %S+") or not crypto.ssh_fingerprint((pair.public:gsub("%s+$", ""))) then
        return nil, string.format("user-data: ssh_keys.%s_public is not an OpenSSH public key line", t)
      end
      if not pair.private:find("-----BEGIN ", 1, true) then
        return nil, string.format("user-data: ssh_keys.%s_private is not a PEM private key", t)
      end
      ::next_type::
    end
  end
  if doc.write_files ~= nil then
    cfg.write_files, e = write_file_entries(doc.write_files)
    if not cfg.write_files then return nil, "user-data: " .. e end
  end
  if doc.packages ~= nil then
    local pk = {}
    if not is_list(doc.packages) then return nil, "user-data: packages: expected a list" end
    for i, p in ipairs(doc.packages) do
      if type(p) == "string" then
        pk[i] = p
      elseif is_list(p) and #p == 2 then
        pk[i] = tostring(p[1]) .. "=" .. tostring(p[2])
      else
        return nil, string.format("user-data: packages[%d]: expected a name or [name, version]", i)
      end
    end
    cfg.recorded.packages = pk
  end
  for _, k in ipairs { "package_update", "package_upgrade" } do
    if doc[k] ~= nil then
      if type(doc[k]) ~= "boolean" then return nil, "user-data: " .. k .. ": expected true or false" end
      cfg.recorded[k] = doc[k]
    end
  end
  return cfg
end

-- ---------------------------------------------------------------------------
-- the image

local image_root_path

--- The image's root: scripts/fresh-root.sh's minimal Debian 12 with
--- M.IMAGE_PACKAGES (built once, cached beside the fresh root): its path,
--- or nil and why not.
function M.image_root()
  if image_root_path then return image_root_path end
  local src = debug.getinfo(1, "S").source:match("^@(.*)$")
  local real = src and fs.realpath(src)
  local top = real and real:match("^(.*)/lua/juju/testing/instance%.lua$")
  local script = top and (top .. "/scripts/fresh-root.sh")
  if not script or not fs.exists(script) then return nil, "cannot find scripts/fresh-root.sh" end
  local env = sys.environ()
  env.JUJU_FRESH_ROOT_PACKAGES = M.IMAGE_PACKAGES
  local r, err = sys.run({ "/bin/bash", script }, { timeout = 900, env = env })
  if not r then return nil, "scripts/fresh-root.sh: " .. tostring(err) end
  if r.code ~= 0 then return nil, "scripts/fresh-root.sh failed (exit " .. r.code .. "): " .. r.stderr end
  local path = r.stdout:match("(/%S+)%s*$")
  if not path or not fs.exists(path .. "/usr/sbin/sshd") or not fs.exists(path .. "/usr/bin/systemctl")
    or not fs.exists(path .. "/usr/bin/cloud-init") then
    return nil, "scripts/fresh-root.sh gave no root with sshd, systemctl and cloud-init: " .. r.stdout
  end
  image_root_path = path
  return path
end

-- ---------------------------------------------------------------------------
-- applying

local function append_log(host, text)
  fs.append_sync(host.log, text, "0600")
end

-- Runs a shell script inside the host as root; returns the result or nil, msg.
local function run_script(host, what, script, timeout)
  local r, err = host.server.run({ "/bin/bash", "-c", script }, { timeout = timeout or 120 })
  if not r then return nil, what .. ": " .. tostring(err) end
  append_log(host, r.stdout .. r.stderr)
  if r.code ~= 0 then
    return nil, string.format("%s failed (exit %d):\n%s%s", what, r.code, r.stdout, r.stderr)
  end
  return r
end

local function write_files(host, files, deferred)
  for i, f in ipairs(files or {}) do
    if f.defer == deferred then
      local staged = host.server.root .. "/write_file." .. i
      assert(fs.write_atomic(staged, f.content, "0600"))
      local q = shell.quote
      local ok, err = run_script(host, "write_files " .. f.path, table.concat({
        "set -eu",
        "mkdir -p -- \"$(dirname -- " .. q(f.path) .. ")\"",
        f.append and ("cat -- " .. q(staged) .. " >> " .. q(f.path)) or ("cat -- " .. q(staged) .. " > " .. q(f.path)),
        "chown -- " .. q(f.owner) .. " " .. q(f.path),
        "chmod -- " .. q(f.mode) .. " " .. q(f.path),
      }, "\n"))
      fs.remove(staged)
      if not ok then return nil, err end
    end
  end
  return true
end

local function create_user(host, keys)
  local q = shell.quote
  local u = M.USER
  local lines = {
    "set -eu",
    "groups=",
    "for g in " .. table.concat(M.USER_GROUPS, " ") .. "; do",
    "  if getent group \"$g\" > /dev/null; then groups=${groups:+$groups,}$g; fi",
    "done",
    -- "*": no password, yet not locked ("!" would be refused: UsePAM is off).
    "useradd -m -s /bin/bash -p '*' ${groups:+-G \"$groups\"} " .. u,
    "mkdir -p /etc/sudoers.d",
    "printf '%s\\n' '# Created by juju.testing.instance (as cloud-init does)' '' '# User rules for " .. u .. "' "
      .. q(u .. " ALL=(ALL) NOPASSWD:ALL") .. " > " .. M.SUDOERS_FILE,
    "chmod 0440 " .. M.SUDOERS_FILE,
    "install -d -m 0700 -o " .. u .. " -g " .. u .. " /home/" .. u .. "/.ssh",
    "printf '%s\\n' " .. (#keys > 0 and table.concat((function()
      local t = {}
      for i, k in ipairs(keys) do t[i] = q(k) end
      return t
    end)(), " ") or "''") .. " > /home/" .. u .. "/.ssh/authorized_keys",
    "chown " .. u .. ":" .. u .. " /home/" .. u .. "/.ssh/authorized_keys",
    "chmod 0600 /home/" .. u .. "/.ssh/authorized_keys",
    "visudo -c -q -f " .. M.SUDOERS_FILE,
  }
  return run_script(host, "creating user " .. u, table.concat(lines, "\n"))
end

local function run_commands(host, what, lines, redirect, path, timeout)
  if not lines or #lines == 0 then return true end
  local body = "#!/bin/sh\n" .. table.concat(lines, "\n") .. "\n"
  local staged = host.server.root .. "/" .. what .. ".sh"
  assert(fs.write_atomic(staged, body, "0700"))
  local q = shell.quote
  local ok, err = run_script(host, what, table.concat({
    "set -eu",
    "install -D -m 0700 -- " .. q(staged) .. " " .. q(path),
    "set -o pipefail",
    "{ /bin/sh -e " .. q(path) .. " < /dev/null; } " .. redirect,
  }, "\n"), timeout)
  fs.remove(staged)
  return ok, err
end

-- Debian's cloud-init 22.4 itself, in the host: the user-data through
-- DataSourceNone (userdata_raw), Ubuntu's default user, then its init,
-- config and final stages as at boot. Returns true or nil, msg.
local function run_cloud_init(host, text)
  local cfg = yaml.encode({
    datasource_list = yaml.array({ "None" }),
    datasource = { None = { userdata_raw = text } },
    system_info = { default_user = { name = M.USER, shell = "/bin/bash", lock_passwd = true,
      sudo = yaml.array({ "ALL=(ALL) NOPASSWD:ALL" }), groups = yaml.array(M.USER_GROUPS),
      gecos = "Ubuntu" } },
    -- minbase has no locales package: cc_locale would fail
    locale = false,
    cloud_final_modules = yaml.array(M.FINAL_MODULES),
  })
  local staged = host.server.root .. "/cloud-init.cfg"
  assert(fs.write_atomic(staged, cfg, "0600"))
  local q = shell.quote
  local ok, err = run_script(host, "cloud-init", table.concat({
    "set -eu",
    "install -m 0600 -- " .. q(staged) .. " " .. M.CLOUD_INIT_CFG,
    "cloud-init init",
    -- The harness's sshd runs without PAM, where a locked ("!") password
    -- refuses every login: "*" is "no password" without the lock.
    "if [ \"$(getent shadow " .. M.USER .. " | cut -d: -f2 | cut -c1)\" = '!' ]; then usermod -p '*' " .. M.USER .. "; fi",
    "cloud-init modules --mode config",
    "cloud-init modules --mode final",
  }, "\n"), 600)
  fs.remove(staged)
  if not ok then return nil, err end
  local r, serr = host.server.run({ "cloud-init", "status", "--long" }, { timeout = 60 })
  if not r then return nil, "cloud-init status: " .. tostring(serr) end
  append_log(host, r.stdout)
  if not r.stdout:match("status: done") then
    return nil, "cloud-init did not finish cleanly:\n" .. r.stdout .. r.stderr
  end
  return true
end

local function method(t, fn)
  return function(first, ...)
    if first == t then return fn(...) end
    return fn(first, ...)
  end
end

--- Launches a host. opts: user_data (text, gzip'd or not; required),
--- address_index (N of 127.0.0.N; required), ssh_port (default 22),
--- fresh (true (default): the image root; false: the build machine's root
--- through overlays (juju.testing.sshd's default mode); a path: that root),
--- cloud_init ("cloud-init", the default when the root has it, or
--- "emulated"), name (for messages), runcmd_timeout (s, default 300).
--- Returns the host, or nil and a message naming the problem:
---   host.address, host.host (both "127.0.0.N"), host.port, host.host_key_pub
---   (the served ed25519 key line), host.host_keys ({type = line}),
---   host.stop(), host.run(argv [, opts]) (inside the host, as root:
---   sys.run's result), host.log (this side's launch log: every step's
---   output, runcmd's console output), host.output_log() (the output.all
---   target inside the host), host.recorded (packages, package_update,
---   package_upgrade: not installed), host.server (the juju.testing.sshd
---   server), host.pids(), host.cloud_init (the mode used).
function M.launch(opts)
  if type(opts) ~= "table" then error("instance.launch: options table expected", 2) end
  local name = opts.name or "instance"
  local n = opts.address_index
  if math.type(n) ~= "integer" or n < 1 or n > 254 then error("instance.launch: address_index must be 1..254", 2) end
  local mode = opts.cloud_init
  if mode ~= nil and mode ~= "cloud-init" and mode ~= "emulated" then
    error("instance.launch: cloud_init must be \"cloud-init\" or \"emulated\"", 2)
  end
  local cfg, perr = M.parse(opts.user_data)
  if not cfg then return nil, name .. ": " .. perr end
  local fresh = opts.fresh
  if fresh == nil or fresh == true then
    local root, rerr = M.image_root()
    if not root then return nil, name .. ": " .. rerr end
    fresh = root
  elseif fresh == false then
    fresh = nil
  end
  if mode == nil then
    mode = (fresh and fs.exists(fresh .. "/usr/bin/cloud-init")) and "cloud-init" or "emulated"
  elseif mode == "cloud-init" and not (fresh and fs.exists(fresh .. "/usr/bin/cloud-init")) then
    return nil, name .. ": cloud_init = \"cloud-init\" needs a root with /usr/bin/cloud-init"
  end
  local port = opts.ssh_port or 22
  local server, serr = sshd.start {
    address_index = n, port = port ~= 0 and port or nil, fresh = fresh, host_keys = cfg.host_keys,
    host_key_types = { "ed25519", "ecdsa" },
    -- cloud-init's sshd reads each user's own keys.
    sshd_config = { "AuthorizedKeysFile .ssh/authorized_keys" },
  }
  if not server then
    local hint = ""
    if port == 22 and tostring(serr):find("Address already in use", 1, true) then
      hint = " (something else listens on port 22 of 127.0.0." .. n .. " or of 0.0.0.0: pick another address_index,"
        .. " or pass ssh_port = 0 for a free port)"
    end
    return nil, name .. ": cannot start the host's sshd on 127.0.0." .. n .. ":" .. port .. hint .. ": " .. tostring(serr)
  end
  if not server.host_keys.ecdsa and not server.host_keys.ed25519 then
    server.stop()
    return nil, name .. ": no host key"
  end
  local host = {
    name = name, server = server, address = server.host, host = server.host, port = server.port,
    host_key_pub = server.host_keys.ed25519 or server.host_key_pub, host_keys = server.host_keys,
    log = server.root .. "/instance.log", recorded = cfg.recorded,
    output_log_path = cfg.output_log or M.DEFAULT_OUTPUT_LOG,
  }
  host.stop = method(host, function() return server.stop() end)
  host.run = method(host, function(argv, run_opts) return server.run(argv, run_opts) end)
  host.pids = method(host, function() return server.pids() end)
  host.output_log = method(host, function()
    local r, err = server.run({ "/bin/cat", "--", host.output_log_path })
    if not r then return nil, err end
    if r.code ~= 0 then return nil, host.output_log_path .. ": " .. r.stderr end
    return r.stdout
  end)

  local function fail(err)
    server.stop()
    return nil, name .. ": " .. err
  end
  local rec = {}
  for _, k in ipairs { "package_update", "package_upgrade" } do
    if cfg.recorded[k] ~= nil then rec[#rec + 1] = k .. "=" .. tostring(cfg.recorded[k]) end
  end
  if cfg.recorded.packages then rec[#rec + 1] = "packages=" .. table.concat(cfg.recorded.packages, ",") end
  if #rec > 0 then append_log(host, "recorded, not applied (no network on test hosts): " .. table.concat(rec, " ") .. "\n") end
  host.cloud_init = mode
  local ok, err
  if mode == "cloud-init" then
    local text = opts.user_data
    if text:sub(1, 2) == "\31\139" then text = assert(gzip.gunzip(text)) end
    ok, err = run_cloud_init(host, text)
    if not ok then return fail(err) end
    -- the host keys cloud-init wrote are the ones served
    for t, line in pairs(cfg.host_keys or {}) do
      local r = server.run({ "/bin/cat", "/etc/ssh/ssh_host_" .. t .. "_key.pub" })
      if not r or r.stdout:gsub("%s+$", "") ~= line.public:gsub("%s+$", "") then
        return fail("cloud-init wrote another " .. t .. " host key than the user-data's")
      end
    end
    return host
  end
  ok, err = run_commands(host, "bootcmd", cfg.bootcmd, cfg.bootcmd_redirect or "", "/var/lib/cloud/instance/boothooks/bootcmd")
  if not ok then return fail(err) end
  ok, err = write_files(host, cfg.write_files, false)
  if not ok then return fail(err) end
  ok, err = create_user(host, cfg.authorized_keys or {})
  if not ok then return fail(err) end
  ok, err = run_commands(host, "runcmd", cfg.runcmd, cfg.runcmd_redirect or "", M.RUNCMD_SCRIPT, opts.runcmd_timeout or 300)
  if not ok then return fail(err) end
  ok, err = write_files(host, cfg.write_files, true)
  if not ok then return fail(err) end
  return host
end

-- ---------------------------------------------------------------------------
-- hosts that outlive their launcher (the emulators' --launcher/--terminator)
--
-- A launched host lives in a holder daemon (`juju lua
-- tests/servers/instance/hold.lua STATE_DIR ID`: double fork + setsid, not
-- the launcher's child), which launches it, writes STATE_DIR/ID.json and
-- keeps it until SIGTERM (or its max lifetime). The host's sshd dies with
-- the holder (the harness's pdeathsig), and the terminator also kills what
-- is left in the host's mount namespace and removes its files.

local SOURCE_TOP = (function()
  local src = debug.getinfo(1, "S").source:match("^@(.*)$")
  local real = src and fs.realpath(src)
  return real and real:match("^(.*)/lua/juju/testing/instance%.lua$")
end)()

M.DEFAULT_ADDRESS_BASE = 20
M.DEFAULT_MAX_LIFETIME = 3600

local function juju_exe()
  return os.getenv("JUJU_EXE") or fs.readlink("/proc/self/exe")
end

local function check_id(id)
  if type(id) ~= "string" or not id:match("^[%w._-]+$") then
    return nil, "INSTANCE_ID " .. string.format("%q", tostring(id)) .. " is not a plain name"
  end
  return id
end

--- The launcher and terminator programs for state_dir: `launcher`,
--- `terminator` (one shell-quoted string each: what ec2fake.py's
--- --launcher/--terminator take), `launcher_argv`, `terminator_argv`, and
--- `env` (INSTANCE_OWNER_PID = this process: add it to the emulator's
--- environment so hosts stop if this process dies before its teardown).
function M.programs(state_dir)
  local exe = juju_exe()
  local launch = { exe, "lua", SOURCE_TOP .. "/tests/servers/instance/launch.lua", state_dir }
  local term = { exe, "lua", SOURCE_TOP .. "/tests/servers/instance/terminate.lua", state_dir }
  local function line(argv)
    local t = {}
    for i, a in ipairs(argv) do t[i] = shell.quote(a) end
    return table.concat(t, " ")
  end
  return { launcher = line(launch), terminator = line(term), launcher_argv = launch, terminator_argv = term,
    -- for the emulator's environment: hosts stop when this process is gone
    env = { INSTANCE_OWNER_PID = tostring(sys.getpid()) } }
end

local function read_record(state_dir, id)
  local text = fs.read_file(state_dir .. "/" .. id .. ".json")
  return text and json.decode(text, id .. ".json") or nil
end

--- The holder's body (hold.lua): launches the host from the environment
--- (USER_DATA_FILE, INSTANCE_INDEX, INSTANCE_ADDRESS_BASE, INSTANCE_SSH_PORT,
--- INSTANCE_MAX_LIFETIME (s, default 3600), INSTANCE_OWNER_PID (stop when
--- that process is gone), INSTANCE_CLOUD_INIT ("cloud-init" or "emulated";
--- unset: launch's default)), records it, holds it until SIGTERM/SIGINT/SIGHUP.
--- Returns the exit status.
function M.hold(state_dir, id)
  local watch = sys.signals({ "TERM", "INT", "HUP" })
  local ok, err = check_id(id)
  local function failed(msg)
    fs.write_atomic(state_dir .. "/" .. tostring(id) .. ".failed", msg .. "\n", "0600")
    io.stderr:write(msg, "\n")
    return 1
  end
  if not ok then return failed(err) end
  local file = os.getenv("USER_DATA_FILE")
  if not file or file == "" then return failed("USER_DATA_FILE is not set") end
  local data, rerr = fs.read_file(file)
  if not data then return failed("cannot read USER_DATA_FILE: " .. tostring(rerr)) end
  local index = tonumber(os.getenv("INSTANCE_INDEX") or "")
  local base = tonumber(os.getenv("INSTANCE_ADDRESS_BASE") or "") or M.DEFAULT_ADDRESS_BASE
  if not index then return failed("INSTANCE_INDEX is not set") end
  local n = math.tointeger(base + index)
  if not n or n < 1 or n > 254 then return failed("INSTANCE_ADDRESS_BASE + INSTANCE_INDEX = " .. tostring(base + index)
    .. ": not 1..254") end
  local port = math.tointeger(tonumber(os.getenv("INSTANCE_SSH_PORT") or "22"))
  local t0 = sys.monotonic()
  local mode = os.getenv("INSTANCE_CLOUD_INIT")
  if mode == "" then mode = nil end
  if mode and mode ~= "cloud-init" and mode ~= "emulated" then
    return failed("INSTANCE_CLOUD_INIT=" .. mode .. ": must be cloud-init or emulated")
  end
  local host, lerr = M.launch { user_data = data, address_index = n, ssh_port = port, name = id, cloud_init = mode }
  if not host then return failed(lerr) end
  local rec = {
    id = id, address = host.address, ssh_port = host.port, host_key_pub = host.host_key_pub,
    holder_pid = sys.getpid(), sshd_pid = host.server.pid,
    mount_ns = fs.readlink("/proc/" .. host.server.pid .. "/ns/mnt"),
    root = host.server.root, log = host.log, launch_seconds = sys.monotonic() - t0,
  }
  assert(fs.write_atomic(state_dir .. "/" .. id .. ".json", assert(json.encode(rec)), "0600"))
  local deadline = sys.monotonic() + (tonumber(os.getenv("INSTANCE_MAX_LIFETIME") or "") or M.DEFAULT_MAX_LIFETIME)
  local owner = math.tointeger(tonumber(os.getenv("INSTANCE_OWNER_PID") or ""))
  while sys.monotonic() < deadline do
    local slept = sys.sleep(math.max(0.1, math.min(1, deadline - sys.monotonic())), watch)
    if not slept or watch:pending() then break end
    -- The spec that owns the host is gone (killed before its teardown).
    if owner and not proc.alive(owner) then break end
  end
  host.stop()
  fs.remove(state_dir .. "/" .. id .. ".json")
  watch:close()
  return 0
end

--- The launcher's body (launch.lua): starts the holder for INSTANCE_ID,
--- waits for its record; returns the address, or nil and why (the holder's
--- message). opts.timeout (s, default 120).
function M.start_holder(state_dir, id, opts)
  opts = opts or {}
  local ok, err = check_id(id)
  if not ok then return nil, err end
  if not fs.exists(state_dir) then
    local made, merr = fs.mkdir_p(state_dir, "0700")
    if not made then return nil, "cannot create " .. state_dir .. ": " .. tostring(merr) end
  end
  local base = state_dir .. "/" .. id
  for _, ext in ipairs { ".json", ".failed" } do fs.remove(base .. ext) end
  local pid, derr = proc.start_daemon({ juju_exe(), "lua", SOURCE_TOP .. "/tests/servers/instance/hold.lua",
    state_dir, id }, { log_file = base .. ".log", pid_file = base .. ".pid", env = sys.environ() })
  if not pid then return nil, "cannot start the holder: " .. tostring(derr) end
  local deadline = sys.monotonic() + (opts.timeout or 120)
  while sys.monotonic() < deadline do
    local rec = fs.exists(base .. ".json") and read_record(state_dir, id)
    if rec then return rec.address, rec end
    if fs.exists(base .. ".failed") or not proc.alive(pid) then
      sys.sleep(0.05)
      local why = fs.read_file(base .. ".failed") or fs.read_file(base .. ".log") or "no message"
      proc.stop(base .. ".pid", { timeout = 1 })
      return nil, (why:gsub("%s+$", ""))
    end
    sys.sleep(0.02)
  end
  proc.stop(base .. ".pid", { timeout = 5 })
  return nil, "the host did not come up within " .. (opts.timeout or 120) .. " s: "
    .. (fs.read_file(base .. ".log") or "")
end

-- Pids left of a host: in its mount namespace (a /proc/PID/ns/mnt link
-- text) AND chrooted in its own root (under its private directory, a
-- mkdtemp name). Namespace ids are reused once a namespace is gone: the id
-- alone could name another suite's fresh sshd.
local function pids_in(ns, root)
  local out = {}
  if not ns or not root then return out end
  for _, p in ipairs(fs.list("/proc") or {}) do
    if p:match("^%d+$") and fs.readlink("/proc/" .. p .. "/ns/mnt") == ns then
      local r = fs.readlink("/proc/" .. p .. "/root")
      if r and r:sub(1, #root + 1) == root .. "/" then out[#out + 1] = tonumber(p) end
    end
  end
  return out
end

--- The terminator's body: stops instance id's holder (and so its host),
--- kills whatever is left in the host's namespace, removes its files and
--- records. A host that is not there is success. Returns true or nil, msg.
function M.terminate(state_dir, id)
  local ok, err = check_id(id)
  if not ok then return nil, err end
  local base = state_dir .. "/" .. id
  local rec = read_record(state_dir, id)
  local stopped, serr = proc.stop(base .. ".pid", { timeout = 15 })
  if rec then
    local deadline = sys.monotonic() + 5
    local left = pids_in(rec.mount_ns, rec.root)
    while #left > 0 and sys.monotonic() < deadline do
      for _, p in ipairs(left) do sys.kill(p, "KILL") end
      sys.sleep(0.05)
      left = pids_in(rec.mount_ns, rec.root)
    end
    if #left > 0 then return nil, id .. ": processes left in the host's namespace: " .. table.concat(left, " ") end
    if rec.root and rec.root:match("^/tmp/juju%-sshd%-") then fs.remove_tree(rec.root) end
  end
  for _, ext in ipairs { ".json", ".failed", ".log", ".pid" } do fs.remove(base .. ext) end
  if not stopped then return nil, id .. ": " .. tostring(serr) end
  return true
end

--- Terminates every host recorded in state_dir (a spec's teardown), then
--- removes state_dir. Returns true or nil and the failures.
function M.terminate_all(state_dir)
  local failures = {}
  local ids = {}
  for _, f in ipairs(fs.list(state_dir) or {}) do
    local id = f:match("^(.+)%.pid$") or f:match("^(.+)%.json$")
    if id and not ids[id] then
      ids[id] = true
      local ok, err = M.terminate(state_dir, id)
      if not ok then failures[#failures + 1] = err end
    end
  end
  fs.remove_tree(state_dir)
  if #failures > 0 then return nil, table.concat(failures, "; ") end
  return true
end

return M
