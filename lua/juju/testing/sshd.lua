-- juju.testing.sshd: a real OpenSSH server for integration tests, started in
-- its own mount namespace so that what a test runs over SSH (the phase-2
-- script, useradd, sudoers edits, writes to /var/lib/juju) cannot touch the
-- machine the tests run on (toolchain.md, "A test host that cannot touch the
-- machine").
--
-- Private to the server and to every command run through it:
--   /etc /var /usr /root /run  copy-on-write overlays whose upper layer lives on a
--                              tmpfs: the real files show through, changes stay in
--                              the namespace (useradd, sudoers, apt state, /run/sshd)
--                              and vanish with it;
--   /home /var/lib/juju /var/log/juju  empty tmpfs mounts.
-- Shared with the machine:
--   /tmp (the server's own files live there: keys, config, log), /proc, /sys, /dev,
--   the network (the server listens on 127.0.0.N of the machine's loopback), the
--   process table (a `kill` run over SSH can reach any process) and everything else
--   under / (/opt, /srv, /mnt ...).
--
-- Fresh hosts (opts.fresh): the root is instead a minimal Debian 12 built by
-- scripts/fresh-root.sh (mmdebstrap minbase + openssh-server + sudo, cached
-- under /tmp/juju-fresh-root), seen through a copy-on-write overlay whose
-- upper layer vanishes with the namespace, with private /proc, /dev, /run
-- and /tmp; the root's own sshd runs chrooted in it. server.run runs inside
-- the root; server.root_changes() lists what differs from the cached root.
--
-- Needs root (mount namespaces) and /usr/sbin/sshd; M.available() says why not.
--
--   local server = assert(sshd.start { address_index = 2 })
--   local s = assert(ssh.connect(server.connect_opts()))
--   ...
--   server.stop()
local fs = require("juju.fs")
local sys = require("juju.sys")
local crypto = require("juju.crypto")

local M = {}

local SSHD = "/usr/sbin/sshd"
local PYTHON = "/usr/bin/python3"
local START_TIMEOUT = 10

-- The namespace set-up, run by `sh -c` inside `unshare --mount`: $1 is the
-- server's directory, $2 its sshd_config, $3 setpriv (or ""), which makes the
-- kernel kill sshd if the test process dies without calling stop(). sshd
-- ends up with this process's pid.
local NAMESPACE_SCRIPT = [[
set -eu
# The overlays' upper directories give the merged directories their modes:
# 0755 whatever the caller's umask (a daemon's 077 would lock users out of /).
umask 022
root=$1
config=$2
mount -t tmpfs -o mode=0700 juju-sshd "$root/ns"
for d in etc var usr root run; do
  [ -d "/$d" ] || continue
  mkdir "$root/ns/$d.upper" "$root/ns/$d.work"
  mount -t overlay "juju-sshd-$d" -o "lowerdir=/$d,upperdir=$root/ns/$d.upper,workdir=$root/ns/$d.work" "/$d"
done
mount -t tmpfs -o mode=0755 juju-sshd-home /home
# The build machine's own shell start-up (a developer's /root/.bashrc with
# pyenv or conda, which bash reads for every SSH command) is not the test
# host's: root starts from Debian's default, as on a fresh machine.
if [ -f /root/.bashrc ]; then cp /etc/skel/.bashrc /root/.bashrc 2> /dev/null || : > /root/.bashrc; fi
mkdir -p /var/lib/juju /var/log/juju
mount -t tmpfs -o mode=0755 juju-sshd-lib /var/lib/juju
mount -t tmpfs -o mode=0755 juju-sshd-log /var/log/juju
mkdir -p -m 0755 /run/sshd
if [ -n "$3" ]; then
  exec "$3" --pdeathsig KILL /usr/sbin/sshd -D -e -f "$config"
fi
exec /usr/sbin/sshd -D -e -f "$config"
]]

-- The same for a fresh host (opts.root): $4 is the cached root, seen
-- through a copy-on-write overlay whose upper layer is $1/ns/upper (on the
-- namespace's tmpfs, so it vanishes with it); /proc, /dev, and private
-- tmpfs /run and /tmp inside; the server's own directory bind-mounted at
-- the same path. sshd is the root's own, started chrooted.
local FRESH_SCRIPT = [[
set -eu
# The overlays' upper directories give the merged directories their modes:
# 0755 whatever the caller's umask (a daemon's 077 would lock users out of /).
umask 022
root=$1
config=$2
lower=$4
mount -t tmpfs -o mode=0700 juju-sshd "$root/ns"
mkdir "$root/ns/upper" "$root/ns/work" "$root/ns/merged"
m=$root/ns/merged
mount -t overlay juju-sshd-fresh -o "lowerdir=$lower,upperdir=$root/ns/upper,workdir=$root/ns/work" "$m"
mount -t proc juju-sshd-proc "$m/proc"
mount --rbind /dev "$m/dev"
mount -t tmpfs -o mode=0755 juju-sshd-run "$m/run"
mount -t tmpfs -o mode=1777 juju-sshd-tmp "$m/tmp"
mkdir -p "$m$root" "$m/run/sshd"
chmod 0755 "$m/run/sshd"
mount --bind "$root" "$m$root"
if [ -n "$3" ]; then
  exec "$3" --pdeathsig KILL chroot "$m" /usr/sbin/sshd -D -e -f "$config"
fi
exec chroot "$m" /usr/sbin/sshd -D -e -f "$config"
]]

local function program(name)
  for _, dir in ipairs { "/usr/bin", "/bin", "/usr/sbin", "/sbin" } do
    if fs.exists(dir .. "/" .. name) then return dir .. "/" .. name end
  end
  return nil
end

--- Whether a server can be started here: true, or false and the reason.
function M.available()
  if sys.geteuid() ~= 0 then return false, "needs root (mount namespaces)" end
  if not fs.exists(SSHD) then return false, SSHD .. " is not installed" end
  for _, p in ipairs { "unshare", "nsenter", "mount", "ssh-keygen" } do
    if not program(p) then return false, p .. " is not installed" end
  end
  return true
end

local function write_file(path, data, mode)
  assert(fs.write_atomic(path, data, mode or "0600"))
end

local function run_checked(argv, what)
  local r, msg = sys.run(argv, { timeout = 30 })
  if not r then return nil, what .. ": " .. tostring(msg) end
  if r.code ~= 0 then
    return nil, what .. " failed (exit " .. r.code .. "): " .. r.stderr .. r.stdout
  end
  return r
end

-- A port nobody listens on at host (bound and released by Python), or a
-- random one when Python is missing; a clash shows up as a failed start,
-- which start() retries.
local function pick_port(host)
  if fs.exists(PYTHON) then
    local r = sys.run({ PYTHON, "-c",
      "import socket,sys\ns=socket.socket()\ns.bind((sys.argv[1],0))\nprint(s.getsockname()[1])", host },
      { timeout = 10 })
    local port = r and r.code == 0 and tonumber(r.stdout:match("%d+"))
    if port then return port end
  end
  return math.random(20000, 60000)
end

local function make_keys(root, types, given)
  local keys = {}
  for _, t in ipairs(types) do
    local path = root .. "/ssh_host_" .. t .. "_key"
    local g = given and given[t]
    if g then
      write_file(path, g.private)
      write_file(path .. ".pub", g.public .. "\n", "0644")
      keys[t] = { path = path, public = (g.public:gsub("%s+$", "")) }
    elseif t == "ed25519" then
      local pem, pub = assert(crypto.ssh_keygen_ed25519("juju-test-host"))
      write_file(path, pem)
      write_file(path .. ".pub", pub .. "\n", "0644")
      keys[t] = { path = path, public = pub }
    else
      local bits = t == "ecdsa" and "256" or "3072"
      local ok, err = run_checked({ program("ssh-keygen"), "-q", "-t", t, "-b", bits, "-N", "", "-C",
        "juju-test-host", "-f", path }, "ssh-keygen -t " .. t)
      if not ok then return nil, err end
      keys[t] = { path = path, public = (assert(fs.read_file(path .. ".pub")):gsub("%s+$", "")) }
    end
  end
  return keys
end

local function sshd_config(s, keys, extra)
  -- sshd keeps the first value it reads for a keyword: extra lines go first.
  local lines = { "# written by juju.testing.sshd; never touches /etc/ssh" }
  if type(extra) == "string" then extra = { extra } end
  for _, l in ipairs(extra or {}) do lines[#lines + 1] = l end
  lines[#lines + 1] = "ListenAddress " .. s.host
  lines[#lines + 1] = "Port " .. s.port
  for _, t in ipairs(s.host_key_types) do lines[#lines + 1] = "HostKey " .. keys[t].path end
  for _, l in ipairs {
    "PidFile " .. s.root .. "/sshd.pid",
    "AuthorizedKeysFile " .. s.authorized_keys,
    "PermitRootLogin prohibit-password",
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    "UsePAM no",
    "StrictModes no",
    "UseDNS no",
    "PrintMotd no",
    "PrintLastLog no",
    "LogLevel VERBOSE",
    "MaxStartups 100",
    "MaxSessions 100",
    "Subsystem sftp internal-sftp",
  } do lines[#lines + 1] = l end
  return table.concat(lines, "\n") .. "\n"
end

-- Pids of the processes living in the mount namespace of pid.
local function namespace_pids(pid)
  local ns = fs.readlink("/proc/" .. pid .. "/ns/mnt")
  local out = {}
  if not ns then return out end
  for _, p in ipairs(fs.list("/proc") or {}) do
    if p:match("^%d+$") and fs.readlink("/proc/" .. p .. "/ns/mnt") == ns then out[#out + 1] = tonumber(p) end
  end
  return out
end

local function listening(s)
  local log = fs.read_file(s.log) or ""
  return log:find("Server listening on " .. s.host .. " port " .. s.port, 1, true) ~= nil
end

-- Starts sshd in its namespace and waits for it to listen: true, or nil, the
-- reason and whether another port might work.
local function launch(s)
  write_file(s.config, sshd_config(s, s.keys, s.extra_config), "0644")
  local proc, err = sys.spawn({ program("unshare"), "--mount", "--propagation", "private",
    "/bin/sh", "-c", s.fresh_root and FRESH_SCRIPT or NAMESPACE_SCRIPT, "sh", s.root, s.config,
    program("setpriv") or "", s.fresh_root or "" },
    { stdin = "null", stdout = s.log, stderr = s.log })
  if not proc then return nil, "cannot start sshd: " .. tostring(err) end
  s.process = proc
  s.pid = proc:pid()
  local deadline = sys.monotonic() + s.start_timeout
  while sys.monotonic() < deadline do
    if listening(s) then return true end
    local code = proc:wait(0)
    if code then
      proc:close()
      s.process = nil
      local log = fs.read_file(s.log) or ""
      local clash = log:find("Address already in use", 1, true) or log:find("Cannot bind any address", 1, true)
      return nil, "sshd exited with " .. code .. ":\n" .. log, clash
    end
    sys.sleep(0.02)
  end
  return nil, "sshd did not listen on " .. s.host .. ":" .. s.port .. " within " .. s.start_timeout
    .. " s:\n" .. (fs.read_file(s.log) or "")
end

-- What differs between an overlay upper layer ($1) and its lower ($2):
-- whiteouts (removed), new paths, and paths whose type, mode, owner, link
-- target or content differ.
local ROOT_DIFF_SCRIPT = [[
set -eu
upper=$1
lower=$2
cd "$upper"
find . -mindepth 1 | while IFS= read -r p; do
  rel=${p#.}
  if [ -c "$p" ] && [ "$(stat -c %t:%T "$p")" = 0:0 ]; then echo "$rel removed"; continue; fi
  if [ ! -e "$lower$rel" ] && [ ! -L "$lower$rel" ]; then echo "$rel created"; continue; fi
  a=$(stat -c '%F %a %u %g' "$p"); b=$(stat -c '%F %a %u %g' "$lower$rel")
  if [ "$a" != "$b" ]; then echo "$rel changed: $b -> $a"; continue; fi
  if [ -L "$p" ]; then
    [ "$(readlink "$p")" = "$(readlink "$lower$rel")" ] || echo "$rel link changed"
  elif [ -f "$p" ]; then
    cmp -s "$p" "$lower$rel" || echo "$rel content changed"
  fi
done
]]

-- Calls work both as server.f(...) and server:f(...).
local function method(s, fn)
  return function(first, ...)
    if first == s then return fn(...) end
    return fn(first, ...)
  end
end

local function stop(s)
  if s.stopped then return true end
  s.stopped = true
  if s.process then
    local pids = namespace_pids(s.pid)
    s.process:kill("TERM")
    s.process:wait(3)
    -- Sessions and whatever they started (a `sleep` left by a timed-out exec).
    local deadline = sys.monotonic() + 5
    repeat
      for _, p in ipairs(pids) do sys.kill(p, "KILL") end
      pids = namespace_pids(s.pid)
    until #pids == 0 or sys.monotonic() > deadline or s.process:wait(0)
    s.process:close()
    s.process = nil
  end
  if s.root then fs.remove_tree(s.root) end
  return true
end

-- scripts/fresh-root.sh of the source tree this file belongs to.
local function fresh_root_script()
  local src = debug.getinfo(1, "S").source:match("^@(.*)$")
  local real = src and fs.realpath(src)
  local top = real and real:match("^(.*)/lua/juju/testing/sshd%.lua$")
  return top and (top .. "/scripts/fresh-root.sh")
end

--- The cached minimal Debian 12 root of fresh hosts (built by
--- scripts/fresh-root.sh on first use: a minute or two, needs mmdebstrap and
--- the Debian archive): its path, or nil and why not.
function M.fresh_root()
  if M.fresh_root_path then return M.fresh_root_path end
  local script = fresh_root_script()
  if not script or not fs.exists(script) then return nil, "cannot find scripts/fresh-root.sh" end
  local r, err = sys.run({ "/bin/bash", script }, { timeout = 900 })
  if not r then return nil, "scripts/fresh-root.sh: " .. tostring(err) end
  if r.code ~= 0 then return nil, "scripts/fresh-root.sh failed (exit " .. r.code .. "): " .. r.stderr end
  local path = r.stdout:match("(/%S+)%s*$")
  if not path or not fs.exists(path .. "/usr/sbin/sshd") then
    return nil, "scripts/fresh-root.sh gave no root with /usr/sbin/sshd: " .. r.stdout
  end
  M.fresh_root_path = path
  return path
end

--- Starts a server. opts: address_index (N of 127.0.0.N, default 1), port
--- (default: a free one), host_key_types (default {"ed25519", "ecdsa"}),
--- authorized_keys (extra public key lines), sshd_config (extra lines),
--- start_timeout (s, default 10), fresh (true: the host's root is the
--- cached fresh Debian root of M.fresh_root(), or a root directory to use
--- instead; see FRESH_SCRIPT), host_keys ({type = {private = PEM, public =
--- line}}: served instead of generated ones, e.g. cloud-init's ssh_keys;
--- their types are added to host_key_types). Returns the server table (see the fields
--- below) or nil and a reason. Call server.stop() when done.
function M.start(opts)
  opts = opts or {}
  local ok, why = M.available()
  if not ok then return nil, why end
  local fresh_root
  if opts.fresh then
    local ferr
    if type(opts.fresh) == "string" then fresh_root = opts.fresh else fresh_root, ferr = M.fresh_root() end
    if not fresh_root then return nil, ferr end
    if not fs.exists(fresh_root .. "/usr/sbin/sshd") then return nil, fresh_root .. " has no /usr/sbin/sshd" end
  end
  local n = opts.address_index or 1
  if math.type(n) ~= "integer" or n < 1 or n > 254 then error("address_index must be 1..254", 2) end
  local types = opts.host_key_types or { "ed25519", "ecdsa" }
  if opts.host_keys then
    local seen = {}
    for _, t in ipairs(types) do seen[t] = true end
    types = { table.unpack(types) }
    for _, t in ipairs { "ed25519", "ecdsa", "rsa" } do
      local k = opts.host_keys[t]
      if k ~= nil then
        if type(k) ~= "table" or type(k.private) ~= "string" or type(k.public) ~= "string" then
          error("host_keys." .. t .. " must be {private=, public=}", 2)
        end
        if not seen[t] then types[#types + 1] = t end
      end
    end
    for t in pairs(opts.host_keys) do
      if t ~= "ed25519" and t ~= "ecdsa" and t ~= "rsa" then error("host_keys: unknown key type " .. tostring(t), 2) end
    end
  end
  local root = assert(fs.mkdtemp("/tmp/juju-sshd-"))
  local s = {
    host = "127.0.0." .. n,
    root = root,
    log = root .. "/sshd.log",
    config = root .. "/sshd_config",
    authorized_keys = root .. "/authorized_keys",
    host_key_types = types,
    extra_config = opts.sshd_config,
    start_timeout = opts.start_timeout or START_TIMEOUT,
    fresh_root = fresh_root,
  }
  -- sshd reads authorized_keys as the logging-in user: the directory must be
  -- traversable (the private keys inside stay 0600).
  assert(fs.chmod(root, "0755"))
  assert(fs.mkdir(root .. "/ns", "0700"))
  local keys, err = make_keys(root, s.host_key_types, opts.host_keys)
  if not keys then
    fs.remove_tree(root)
    return nil, err
  end
  s.keys = keys
  s.host_keys = {}
  for t, k in pairs(keys) do s.host_keys[t] = k.public end
  local main = keys.ed25519 or keys[s.host_key_types[1]]
  s.host_key_pub = main.public
  s.host_fingerprint = assert(crypto.ssh_fingerprint(main.public))

  local pem, pub = assert(crypto.ssh_keygen_ed25519("juju-test-user"))
  s.user_key = { private = root .. "/id_ed25519", public = pub }
  write_file(s.user_key.private, pem)
  write_file(s.user_key.private .. ".pub", pub .. "\n", "0644")
  local authorized = { pub }
  for _, l in ipairs(opts.authorized_keys or {}) do authorized[#authorized + 1] = l end
  write_file(s.authorized_keys, table.concat(authorized, "\n") .. "\n", "0644")

  local started, reason, clash
  for _ = 1, opts.port and 1 or 3 do
    s.port = opts.port or pick_port(s.host)
    started, reason, clash = launch(s)
    if started or not clash then break end
  end
  if not started then
    stop(s)
    return nil, reason
  end

  --- Stops sshd, kills everything left in its namespace, removes its files.
  s.stop = method(s, function() return stop(s) end)

  --- Runs argv inside the server's mount namespace (sees what SSH sessions
  --- see); returns sys.run's result.
  --- (A fresh host: inside its root, as its sessions are.)
  s.run = method(s, function(argv, run_opts)
    local full = { program("nsenter"), "--target", tostring(s.pid), "--mount" }
    if s.fresh_root then
      full[#full + 1] = "--root"
      full[#full + 1] = "--wd"
    end
    full[#full + 1] = "--"
    for _, a in ipairs(argv) do full[#full + 1] = a end
    return sys.run(full, run_opts or { timeout = 60 })
  end)

  if s.fresh_root then
    --- A fresh host's changes to its root: sorted lines "<path> <what>" for
    --- every path of the overlay's upper layer that differs from the cached
    --- root (a file created, changed or removed, a mode, owner or link
    --- changed); directories that were only copied up count as unchanged.
    --- An empty list means the root is as it was.
    s.root_changes = method(s, function()
      local r, rerr = sys.run({ program("nsenter"), "--target", tostring(s.pid), "--mount", "--",
        "/bin/sh", "-c", ROOT_DIFF_SCRIPT, "sh", s.root .. "/ns/upper", s.fresh_root }, { timeout = 60 })
      if not r then return nil, rerr end
      if r.code ~= 0 then return nil, "root diff failed (exit " .. r.code .. "): " .. r.stderr end
      local out = {}
      for line in r.stdout:gmatch("[^\n]+") do out[#out + 1] = line end
      table.sort(out)
      return out
    end)
  end

  --- Pids of every process in the server's namespace (sshd itself is
  --- server.pid): tests freeze sessions with them.
  s.pids = method(s, function() return namespace_pids(s.pid) end)

  --- Adds a public key line to the keys every user may log in with.
  s.authorize = method(s, function(line)
    return fs.append_sync(s.authorized_keys, line .. "\n", "0644")
  end)

  --- Creates a user inside the namespace that can log in with the server's
  --- authorized keys (password field "*": UsePAM is off, so a "!" locked
  --- account would be refused).
  s.add_user = method(s, function(name)
    local r, e = s.run({ "useradd", "-m", "-s", "/bin/bash", "-p", "*", name })
    if not r then return nil, e end
    if r.code ~= 0 then return nil, "useradd " .. name .. ": " .. r.stderr end
    return true
  end)

  --- Options for ssh.connect as root with the user key and the host key
  --- pinned; extra overrides them (host_key = false drops the pin).
  s.connect_opts = method(s, function(extra)
    local o = { host = s.host, port = s.port, user = "root", private_key_file = s.user_key.private,
      host_key = s.host_key_pub, connect_timeout = 10, timeout = 30 }
    for k, v in pairs(extra or {}) do
      if v == false then o[k] = nil else o[k] = v end
    end
    return o
  end)
  return s
end

-- Accepts connections and never says a word: an SSH client waits for the
-- server's banner until its own timeout.
local SILENT_SCRIPT = [[
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 0))
s.listen(16)
with open(sys.argv[2] + ".tmp", "w") as f:
    f.write(str(s.getsockname()[1]))
import os
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
held = []
deadline = time.time() + float(sys.argv[3])
s.settimeout(0.5)
while time.time() < deadline:
    try:
        held.append(s.accept()[0])
    except socket.timeout:
        pass
]]

--- A TCP server on host (default 127.0.0.1) that accepts and never speaks,
--- for connect timeouts: {host, port, stop} or nil, reason. It exits by
--- itself after `lifetime` seconds (default 120).
function M.silent_server(host, lifetime)
  if not fs.exists(PYTHON) then return nil, PYTHON .. " is not installed" end
  host = host or "127.0.0.1"
  local dir = assert(fs.mkdtemp("/tmp/juju-silent-"))
  local portfile = dir .. "/port"
  local proc, err = sys.spawn({ PYTHON, "-c", SILENT_SCRIPT, host, portfile, tostring(lifetime or 120) },
    { stdin = "null", stdout = "null", stderr = dir .. "/log" })
  if not proc then
    fs.remove_tree(dir)
    return nil, err
  end
  local deadline = sys.monotonic() + 10
  local port
  while not port and sys.monotonic() < deadline do
    port = tonumber(fs.read_file(portfile) or "")
    if not port then
      if proc:wait(0) then break end
      sys.sleep(0.02)
    end
  end
  local function stop_silent()
    proc:close()
    fs.remove_tree(dir)
    return true
  end
  if not port then
    local log = fs.read_file(dir .. "/log") or ""
    stop_silent()
    return nil, "silent server did not start: " .. log
  end
  return { host = host, port = port, stop = stop_silent }
end

return M
