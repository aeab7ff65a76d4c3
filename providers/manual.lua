-- providers/manual.lua: an existing machine, reached over SSH, becomes
-- machine 0 (Juju's manual provider; docs/manual.md). Nothing is launched:
-- the bootstrap logs in as bootstrap-user (root, or a user with
-- passwordless sudo), refuses a machine that already runs agents, detects
-- its series and hardware, sets up the `ubuntu` user (passwordless sudo,
-- the environment's authorized keys), and the SSH finalizer
-- (juju.sshinit) runs the phase-2 script as root over the same session.
-- One connection serves the whole bootstrap (env.session, closed when the
-- agent is up, by destroy, or by a broken exec), and each step's remote work is one
-- script: check-bootstrapped's probe also detects series and hardware,
-- the first storage write claims the host in the same command, and
-- start-instance claims and sets up the ubuntu user and nonce in one.
--
-- The host key is checked on every connection: bootstrap-host-key (a
-- public key line) when set, else $JUJU_HOME/environments/<env>.known_hosts,
-- which only learns a key when ssh-trust-on-first-use is true.
--
-- Everything the bootstrap creates on the host is written down there first
-- (<data-dir>/manual-provisioning.txt: the environment's UUID and what did
-- not exist before), so destroy removes exactly that and leaves the machine
-- as it was; a machine claimed by another environment is never touched.
-- Environ storage is <data-dir>/storage on the host (juju.sshstorage).
local sys = require("juju.sys")
local crypto = require("juju.lazy")("juju.crypto")
local shell = require("juju.shell")
local version = require("juju.version")
local common = require("juju.provider_common")
local sshinit = require("juju.lazy")("juju.sshinit")
local sshstorage = require("juju.lazy")("juju.sshstorage")
local state_dump = require("juju.lazy")("juju.agent.state_dump")

local P = {
  name = "manual",
  api_version = 2,
  description = "an existing machine reached over SSH becomes machine 0",
  default_state_store = "mongodb",
  -- The engine publishes no tools: they are built here and uploaded by SFTP
  -- (agent-metadata-url still works for prepackaged ones).
  public_tools = false,
  config = {
    fields = {
      ["bootstrap-host"] = { type = "string", description = "the machine to bootstrap: host, host:port or [v6]:port" },
      ["bootstrap-user"] = { type = "string",
        description = "user to log in as (default: the current user); root, or a user with passwordless sudo" },
      ["storage-listen-ip"] = { type = "string", allow_empty = true,
        description = "kept for compatibility: environ storage is reached over SSH" },
      ["storage-port"] = { type = "int", default = 8040, description = "kept for compatibility" },
      ["storage-auth-key"] = { type = "string", secret = true, description = "generated at prepare" },
      ["use-sshstorage"] = { type = "bool", description = "environ storage over SSH (always true)" },
    },
  },
}

P.DATA_DIR = "/var/lib/juju"
P.LOG_DIR = "/var/log/juju"
P.RECORD = P.DATA_DIR .. "/manual-provisioning.txt"
P.SUDOERS = "/etc/sudoers.d/90-juju-ubuntu"
P.UBUNTU = "ubuntu"
P.DESTROY_CONNECT_TIMEOUT = 60

-- Configs prepared in this process: their environments' hosts are known
-- to be untouched until this process touches them (see destroy).
local fresh = {}

local function present(v) return type(v) == "string" and v ~= "" end

local function check_config(cfg)
  if not present(cfg["bootstrap-host"]) then return nil, "bootstrap-host must be specified" end
  local host, err = sshinit.parse_host(cfg["bootstrap-host"])
  if not host then return nil, "bootstrap-host: " .. err end
  if cfg["use-sshstorage"] == false then
    return nil, "use-sshstorage must not be set to false: environ storage is always reached over SSH"
  end
  local key = cfg["bootstrap-host-key"]
  if present(key) and not crypto.ssh_parse_public(key) then
    return nil, "bootstrap-host-key: not a public key line (\"ssh-ed25519 AAAA... comment\")"
  end
  return true
end

function P.prepare_for_bootstrap(_, cfg)
  local ok, err = check_config(cfg)
  if not ok then return nil, err end
  if not present(cfg["bootstrap-user"]) then cfg["bootstrap-user"] = sys.username() end
  cfg["use-sshstorage"] = true
  if not present(cfg["storage-auth-key"]) then cfg["storage-auth-key"] = crypto.uuid4() end
  -- Juju's manual defaults: refresh the package lists, but do not upgrade
  -- someone's existing machine unless asked.
  if cfg["enable-os-refresh-update"] == nil then cfg["enable-os-refresh-update"] = true end
  if cfg["enable-os-upgrade"] == nil then cfg["enable-os-upgrade"] = false end
  fresh[cfg.uuid] = true
  return cfg
end

function P.validate_config(_, cfg)
  local ok, err = check_config(cfg)
  if not ok then return nil, err end
  return cfg
end

function P.open(ctx, cfg)
  local ok, err = check_config(cfg)
  if not ok then return nil, err end
  local host, port = sshinit.parse_host(cfg["bootstrap-host"])
  return {
    ctx = ctx, cfg = cfg, host = host, port = port or sshinit.DEFAULT_PORT,
    user = present(cfg["bootstrap-user"]) and cfg["bootstrap-user"] or sys.username(),
    uuid = cfg.uuid, fresh = fresh[cfg.uuid] == true, touched = false,
  }
end

-- ---------------------------------------------------------------- SSH --

local function instance_id(env) return "manual:" .. env.host end

local function forget_session(env)
  if env.session then env.session:close() end
  env.session = nil
end

-- The session as bootstrap-user, opened once and reused: waits for the
-- host up to `timeout` (default bootstrap-timeout), but gives up at once on
-- a refused key or a host key that does not match.
local function admin_session(env, w, timeout, quiet)
  if env.session then return env.session end
  local cfg = env.cfg
  local target = sshinit.target(env.ctx, cfg, { user = env.user, port = env.port })
  local s, err, code = sshinit.wait_for_ssh(w or env.ctx, {
    target = target, addresses = function() return { env.host } end, say_waiting = false, quiet = quiet,
    timeout = timeout or cfg["bootstrap-timeout"] or 600, retry_delay = cfg["bootstrap-retry-delay"] or 5,
    addresses_delay = math.huge, retry_auth = false,
  })
  if not s then return nil, err, code end
  env.session = s
  return s
end

-- Runs a bash script (on stdin) as root on the host: {code, stdout, stderr}.
local function root_exec(env, script, opts)
  opts = opts or {}
  local s, err, code = admin_session(env, opts.run, opts.timeout, opts.quiet)
  if not s then return nil, err, code end
  local cmd = env.user == "root" and "/bin/bash -s" or "sudo -n /bin/bash -s"
  local r, eerr, ecode = s:exec(cmd, { stdin = script, timeout = opts.exec_timeout or 300 })
  if not r then
    forget_session(env)
    return nil, string.format("%s@%s: %s", env.user, sshinit.hostport(env.host, env.port), tostring(eerr)), ecode
  end
  if r.code == 1 and r.stderr:find("sudo: a password is required", 1, true) then
    return nil, string.format("%s on %s has no passwordless sudo (the manual provider needs root or "
      .. "passwordless sudo for bootstrap-user)", env.user, env.host), "SSH_AUTH"
  end
  return r
end

local function script_failure(what, r)
  local msg = (r.stderr .. r.stdout):gsub("%s+$", "")
  return nil, string.format("%s (exit %d): %s", what, r.code, msg)
end

-- --------------------------------------------------------- host scripts --

-- The owner of the host: the environment UUID in the record, "" if none.
local OWNER = [==[
owner=
if [ -f "$rec" ]; then owner=$(sed -n 's/^env-uuid=//p' "$rec" | head -n 1); fi
]==]

local function header(env)
  return table.concat({
    "set -e",
    shell.assign("d", P.DATA_DIR),
    shell.assign("rec", P.RECORD),
    shell.assign("uuid", env.uuid),
    OWNER,
  }, "\n")
end

-- What the host says about itself: whether it runs agents, and whose.
local PROBE = [==[
if [ -d "$d/agents" ]; then echo "agents ${owner:-unknown}"; elif [ -n "$owner" ]; then echo "claimed $owner"; else echo "free"; fi
]==]

-- The series and hardware detection (DETECT, below) rides along: it reads
-- only, and start-instance needs it (one exec, not two).
local DETECT

-- So does the listing of environ storage (find-tools reads it: one exec
-- less), after a marker line; not printed when it cannot be read.
local LISTING_MARK = "juju-storage-listing"
local LIST_STORAGE = [==[
if [ ! -e "$d/storage" ]; then echo juju-storage-listing
elif listing=$(cd "$d/storage" && find . -type f ! -name '*.tmp.*' -print); then
  echo juju-storage-listing; [ -z "$listing" ] || printf '%s
' "$listing"
fi
]==]

local function probe(env, opts)
  local r, err, code = root_exec(env, header(env) .. PROBE .. "(\n" .. DETECT .. ") || true\n" .. LIST_STORAGE, opts)
  if not r then return nil, err, code end
  if r.code ~= 0 then return script_failure("cannot check the state of " .. env.host, r) end
  local kind, owner = r.stdout:match("^(%S+)[ \t]*(%S*)")
  if not kind then return nil, string.format("unexpected output: %q", r.stdout) end
  local rest = r.stdout:match("^[^\n]*\n(.*)$") or ""
  local at = rest:find(LISTING_MARK .. "\n", 1, true)
  local detection, listing = rest, nil
  if at then detection, listing = rest:sub(1, at - 1), rest:sub(at + #LISTING_MARK + 1) end
  env.detection = detection
  if listing and kind ~= "agents" then
    local names = {}
    for line in listing:gmatch("[^\n]+") do names[#names + 1] = (line:gsub("^%./", "")) end
    P.storage(env):prime_listing(names)
  end
  return kind, owner
end

local function provisioned_message(env, owner)
  if owner == env.uuid then return nil end
  return string.format("machine is already provisioned: %s runs the agents of %s", env.host,
    owner == "unknown" and "another juju environment" or ("environment " .. owner))
end

-- Claims the host for this environment before its first change: records
-- the UUID and what did not exist yet. Idempotent; refuses a machine that
-- runs agents or is claimed by another environment.
local CLAIM = [==[
if [ -d "$d/agents" ] && [ "$owner" != "$uuid" ]; then echo "provisioned ${owner:-unknown}"; exit 0; fi
if [ -n "$owner" ] && [ "$owner" != "$uuid" ]; then echo "claimed $owner"; exit 0; fi
if [ -z "$owner" ]; then
  created_data=no; [ -e "$d" ] || created_data=yes
  created_log=no; [ -e "$log" ] || created_log=yes
  mongodb_default=no; [ -e /etc/default/mongodb ] || mongodb_default=yes
  mkdir -p "$d"
  # The record is root's alone (issue 14.13): it names what to undo.
  umask 077
  printf 'env-uuid=%s\ncreated-data-dir=%s\ncreated-log-dir=%s\ncreated-etc-default-mongodb=%s\n' \
    "$uuid" "$created_data" "$created_log" "$mongodb_default" > "$rec.tmp"
  umask 022
  mv -f "$rec.tmp" "$rec"
fi
echo ok
]==]

local function claim_script(env)
  return header(env) .. shell.assign("log", P.LOG_DIR) .. "\n" .. CLAIM
end

-- Reads the claim's answer (the first line of r.stdout): true or nil, message, code.
local function claim_result(env, r)
  local kind, owner = r.stdout:match("^(%S+)[ \t]*(%S*)")
  if kind == "provisioned" then return nil, provisioned_message(env, owner), "PROVISIONED" end
  if kind == "claimed" then
    return nil, string.format("%s is being bootstrapped by, or was left by, environment %s: destroy that "
      .. "environment first", env.host, owner), "PROVISIONED"
  end
  if kind ~= "ok" then
    if r.code ~= 0 then return script_failure("cannot claim " .. env.host, r) end
    return nil, string.format("cannot claim %s: unexpected output: %q", env.host, r.stdout)
  end
  env.claimed, env.touched = true, true
  return true
end

local function claim(env, opts)
  if env.claimed then return true end
  local r, err, code = root_exec(env, claim_script(env), opts)
  if not r then return nil, err, code end
  if r.code ~= 0 then return script_failure("cannot claim " .. env.host, r) end
  return claim_result(env, r)
end

-- The ubuntu user (spec 5, "Init ubuntu user"): created when missing, with
-- passwordless sudo and the environment's authorized keys; sudo installed
-- where missing. Every change is recorded for destroy.
local INIT_UBUNTU = [==[
record() { printf '%s\n' "$1" >> "$rec"; }
if ! command -v sudo > /dev/null 2>&1; then
  if ! command -v apt-get > /dev/null 2>&1; then echo "sudo is not installed and there is no apt-get to install it" >&2; exit 1; fi
  echo "installing sudo" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q sudo >&2
  record installed-sudo=yes
fi
if ! id "$user" > /dev/null 2>&1; then
  # "*": no password, but not a locked account (sshd refuses locked ones without PAM).
  useradd -m -s /bin/bash -p '*' "$user"
  record created-user=yes
fi
if [ ! -e "$sudoers" ] && ! sudo -l -U "$user" 2>/dev/null | grep -q 'NOPASSWD: ALL'; then
  (umask 0077; tmp=$(mktemp); printf '%s ALL=(ALL) NOPASSWD:ALL\n' "$user" > "$tmp"; install -m 0440 "$tmp" "$sudoers"; rm -f "$tmp")
  record created-sudoers=yes
fi
home=$(getent passwd "$user" | cut -d: -f6)
if [ ! -d "$home/.ssh" ]; then install -d -m 0700 -o "$user" -g "$(id -gn "$user")" "$home/.ssh"; record "created-ssh-dir=$home/.ssh"; fi
keys="$home/.ssh/authorized_keys"
if [ ! -e "$keys" ]; then (umask 077; : > "$keys"); chown "$user:$(id -gn "$user")" "$keys"; record "created-keys-file=$keys"; fi
while IFS= read -r key; do
  [ -n "$key" ] || continue
  if ! grep -qxF -- "$key" "$keys"; then printf '%s\n' "$key" >> "$keys"; record "added-key=$key"; fi
done << 'JUJU_KEYS_EOF'
]==]

local function authorized_key_lines(cfg)
  local out = {}
  for line in (cfg["authorized-keys"] or ""):gmatch("[^\n]+") do
    line = line:gsub("^%s+", ""):gsub("%s+$", "")
    if line ~= "" and not line:match("^#") and not line:find("JUJU_KEYS_EOF", 1, true) then out[#out + 1] = line end
  end
  return out
end

-- start-instance's one script: refuses a host that runs agents, claims it
-- (unless a storage write already did), sets up the ubuntu user and the
-- nonce. Each part says it is done on stdout ("claim ok", "user ok"), so a
-- failure names the part that failed.
local function claim_and_init_ubuntu(env, run)
  local keys = authorized_key_lines(env.cfg)
  local script = table.concat({
    header(env), shell.assign("log", P.LOG_DIR), shell.assign("user", P.UBUNTU), shell.assign("sudoers", P.SUDOERS),
    'if [ -d "$d/agents" ]; then echo "provisioned ${owner:-unknown}"; exit 0; fi',
    env.claimed and "echo ok" or CLAIM,
    INIT_UBUNTU, table.concat(keys, "\n"), "JUJU_KEYS_EOF",
    -- The nonce file, as phase-1 cloud-init would have left it (W1).
    "install -D -m 644 /dev/null " .. shell.quote(P.DATA_DIR .. "/nonce.txt"),
    "printf '%s\\n' " .. shell.quote(env.nonce) .. " > " .. shell.quote(P.DATA_DIR .. "/nonce.txt"),
    "echo user-ok",
  }, "\n") .. "\n"
  local r, err, code = root_exec(env, script, { run = run })
  if not r then return nil, err, code end
  local first = r.stdout:match("^[^\n]*") or ""
  if first:match("^provisioned") then
    local owner = first:match("^provisioned (%S+)")
    return nil, provisioned_message(env, owner) or "machine is already provisioned"
  end
  local ok, cerr, ccode = claim_result(env, r)
  if not ok then return nil, cerr, ccode end
  if r.code ~= 0 or not r.stdout:find("\nuser%-ok\n") then
    return script_failure("initializing ubuntu user on " .. env.host, r)
  end
  return true
end

-- Series and hardware (spec 5, DetectSeriesAndHardwareCharacteristics),
-- with /etc/os-release where lsb_release is missing.
DETECT = [==[
series=
if command -v lsb_release > /dev/null 2>&1; then series=$(lsb_release -cs 2> /dev/null || true); fi
if [ -z "$series" ] || [ "$series" = "n/a" ]; then
  if [ -r /etc/os-release ]; then series=$(. /etc/os-release; echo "${VERSION_CODENAME:-${UBUNTU_CODENAME:-}}"); fi
fi
echo "series=$series"
echo "machine=$(uname -m)"
echo "mem-kb=$(sed -n 's/^MemTotal:[[:space:]]*\([0-9]*\).*/\1/p' /proc/meminfo)"
echo "cores=$( (nproc || grep -c '^processor' /proc/cpuinfo) 2> /dev/null)"
]==]

--- Parses the detection output: {series=, arch=, hardware=} or nil, message.
local function parse_detection(text)
  local facts = {}
  for k, v in text:gmatch("([%w-]+)=([^\n]*)") do facts[k] = v end
  local series = facts.series
  if not series or series == "" then return nil, "cannot detect the series of the machine" end
  if not version.series_os(series) then return nil, string.format("unknown series %q", series) end
  local arch = sys.arch(facts.machine or "")
  if not arch or arch == "UNSUPPORTED" then
    return nil, string.format("unsupported architecture %q", tostring(facts.machine))
  end
  local hw = { arch = arch }
  local kb = tonumber(facts["mem-kb"] or "")
  if kb then hw.mem = math.floor(kb / 1024) end
  local cores = math.tointeger(tonumber(facts.cores or ""))
  hw["cpu-cores"] = (cores and cores > 0) and cores or 1
  return { series = series, arch = arch, hardware = hw }
end

-- The facts the last probe read (its detection part), else detected now.
local function detect(env, run)
  local text = env.detection
  env.detection = nil
  if not text then
    local r, err, code = root_exec(env, DETECT, { run = run })
    if not r then return nil, err, code end
    if r.code ~= 0 then return script_failure("cannot detect series and hardware of " .. env.host, r) end
    text = r.stdout
  end
  local facts, perr = parse_detection(text)
  if not facts then return nil, "cannot detect series and hardware of " .. env.host .. ": " .. perr end
  return facts
end

-- ------------------------------------------------------------ contract --

function P.storage(env)
  if not env.storage then
    env.storage = sshstorage.new {
      root = P.DATA_DIR .. "/storage", sudo = env.user ~= "root",
      session = function() return admin_session(env) end,
      before_write = function() return claim(env) end,
      -- The first write claims the host in the same command.
      write_prelude = function()
        if env.claimed then return nil end
        return claim_script(env), function(r) return claim_result(env, r) end
      end,
      on_broken = function() forget_session(env) end,
    }
  end
  return env.storage
end

--- Bootstrapped means: the host runs agents, and they are this
--- environment's. Another environment's machine is refused here, before
--- anything is written to it.
function P.state_server_instances(env)
  local kind, owner = probe(env)
  if not kind then return nil, owner end
  if kind == "agents" then
    if owner == env.uuid then return { instance_id(env) } end
    return nil, provisioned_message(env, owner), "PROVISIONED"
  end
  return nil, "environment is not bootstrapped", "NOT_BOOTSTRAPPED"
end

function P.instance_defaults(env)
  return {
    instance_id = instance_id(env), data_dir = P.DATA_DIR, log_dir = P.LOG_DIR,
    -- Inside the log directory, so destroy takes it with it.
    cloud_init_output_log = P.LOG_DIR .. "/cloud-init-output.log",
  }
end

--- "Starts" the existing machine: checks it is free, detects its series
--- and hardware, claims it and sets up the ubuntu user with the engine's
--- nonce.
function P.start_instance(env, params)
  if params.machine_id ~= nil and params.machine_id ~= "0" then
    -- juju ensure-availability: this provider manages one host.
    return nil, string.format("the manual provider manages one host (bootstrap-host %s): state servers on other "
      .. "hosts are not supported yet; use state-store: dqlite on the local provider or a cloud for "
      .. "ensure-availability", env.host), "UNSUPPORTED"
  end
  local w = env.ctx
  local _, err, code = admin_session(env, w)
  if err then return nil, err, code end
  -- check-bootstrapped's probe read the host (under the environment lock);
  -- the script below refuses agents again before it changes anything.
  if not env.detection then
    local kind, owner = probe(env, { run = w })
    if not kind then return nil, owner end
    if kind == "agents" then return nil, provisioned_message(env, owner) or "machine is already provisioned" end
  end
  local facts, derr = detect(env, w)
  if not facts then return nil, derr end
  local have_tools = false
  for _, t in ipairs(params.tools or {}) do
    if t.series == facts.series and t.arch == facts.arch then have_tools = true end
  end
  if not have_tools then
    return nil, string.format("no matching tools available for %s (%s/%s)", env.host, facts.series, facts.arch)
  end
  env.nonce = params.instance_config.nonce
  local ok, cerr, ccode = claim_and_init_ubuntu(env, w)
  if not ok then return nil, cerr, ccode end
  return { id = instance_id(env), status = "running", series = facts.series, ssh_port = env.port,
    -- The address the operator gave: reachable from this client.
    addresses = { common.address(env.host, "public") }, hardware = facts.hardware }
end

--- Phase 2 over SSH as ubuntu; the host key is the machine's own
--- (bootstrap-host-key or known_hosts), not a generated one.
local AFTER_SCRIPT = [[for i in $(seq 100); do out=$(%s < /dev/null) && case "$out" in *':m#0'*) break;; esac; ]]
  .. [[sleep 0.1; done; printf '%%s
' "$out"]]

--- It runs over the bootstrap-user session the earlier steps used (one
--- connection for the whole bootstrap; root or sudo -n, as every step),
--- the nonce checked in the same exec as the script.
function P.finalize(env, inst, params)
  local icfg = params.instance_config
  local storage_prefix = P.storage(env):url("")
  local session, err, code = admin_session(env)
  if not session then return nil, err, code end
  local ok, ferr, fcode = sshinit.finish(env.ctx, inst, icfg, params.script, {
    user = env.user, port = env.port, session = session, address = env.host,
    -- Tools uploaded to environ storage are already on the host.
    tools_on_host = icfg.tools.url:sub(1, #storage_prefix) == storage_prefix,
    -- wait-agent's first heartbeat read, in the script's exec: once the
    -- dump has machine 0's presence (up to 10 s on the host; wait-agent
    -- judges it and polls on when it is not fresh yet).
    after = AFTER_SCRIPT:format(sshinit.state_dump_command(P.DATA_DIR)),
  })
  if not ok and (fcode == "SSH" or fcode == "TIMEOUT") then forget_session(env) end
  if ok then env.dump_after_script = ferr end
  return ok, not ok and ferr or nil, fcode
end

--- Machine 0's status documents, read over SSH by the shared
--- sshinit.state_dump (`jujud state-dump`, read-only).
function P.state_dump(env)
  return sshinit.state_dump(function(script)
    return root_exec(env, script,
      { timeout = math.min(env.cfg["bootstrap-timeout"] or 600, P.DESTROY_CONNECT_TIMEOUT), quiet = true })
  end, P.DATA_DIR)
end

--- Waits until machine 0's agent has a fresh heartbeat (read over SSH).
function P.wait_agent(env)
  local timeout = env.cfg["bootstrap-timeout"] or 600
  return env.ctx:wait("for the machine agent's first heartbeat", timeout, function()
    local doc, err
    local first = env.dump_after_script
    env.dump_after_script = nil
    if first then
      -- Read right after phase 2, in its exec: no round trip.
      doc, err = sshinit.state_dump(function() return first end, P.DATA_DIR)
    else
      doc, err = P.state_dump(env)
    end
    if not doc then return nil, err end
    local st = state_dump.machine_status(doc, "0")
    if st and st.agent_state == "started" then
      -- The bootstrap's last remote step: its session is closed here (a
      -- failure closes it in destroy, a broken exec at once).
      forget_session(env)
      return true
    end
    return nil, string.format("machine 0's agent is %s", st and st.agent_state or "unknown")
  end, 1)
end

-- Stops what the bootstrap started and removes what it created, as
-- recorded; refuses (prints "foreign") a host that is not ours.
local DESTROY = [==[
set +e
if [ "$owner" != "$uuid" ]; then echo "foreign ${owner:-none}"; exit 0; fi
val() { sed -n "s/^$1=//p" "$rec" | head -n 1; }
# The bootstrap script, if a dropped connection left it running.
if [ -f "$d/bootstrap-script.pgid" ]; then
  pg=$(cat "$d/bootstrap-script.pgid")
  case "$pg" in ''|*[!0-9]*) ;; *) [ "$pg" -gt 1 ] && kill -KILL -- "-$pg" 2> /dev/null ;; esac
fi
# The agent and juju-db: systemd units, or the supervised processes.
if [ -d /run/systemd/system ]; then
  for unit in jujud-machine-0 juju-db; do
    if systemctl cat "$unit.service" > /dev/null 2>&1; then systemctl disable --now "$unit.service" > /dev/null 2>&1; fi
  done
fi
pids=
for f in "$d"/init/*/*.pid; do
  [ -f "$f" ] || continue
  p=$(cat "$f"); case "$p" in ''|*[!0-9]*) continue ;; esac
  kill -TERM -- "-$p" 2> /dev/null; kill -TERM "$p" 2> /dev/null; pids="$pids $p"
done
for f in "$d"/agents/*/jujud.pid "$d"/juju-db.pid; do
  [ -f "$f" ] || continue
  p=$(cat "$f" | tr -dc 0-9); [ -n "$p" ] || continue
  kill -TERM "$p" 2> /dev/null; pids="$pids $p"
done
for _ in $(seq 50); do
  alive=
  for p in $pids; do kill -0 "$p" 2> /dev/null && alive=yes; done
  [ -z "$alive" ] && break
  sleep 0.1
done
for p in $pids; do kill -KILL -- "-$p" 2> /dev/null; kill -KILL "$p" 2> /dev/null; done
for unit in /etc/systemd/system/jujud-machine-0.service /etc/systemd/system/juju-db.service; do
  if [ -L "$unit" ] || [ -f "$unit" ]; then rm -f "$unit"; [ -d /run/systemd/system ] && systemctl daemon-reload; fi
done
if [ "$(val created-etc-default-mongodb)" = yes ] && [ "$(cat /etc/default/mongodb 2> /dev/null)" = ENABLE_MONGODB=no ]; then
  rm -f /etc/default/mongodb
fi
# The ubuntu user, its keys and sudo, as far as the bootstrap made them.
[ "$(val created-sudoers)" = yes ] && rm -f "$sudoers"
if [ "$(val created-user)" = yes ]; then
  userdel -f -r "$user" > /dev/null 2>&1 || userdel -f "$user"
else
  keys=$(val created-keys-file)
  if [ -n "$keys" ]; then rm -f "$keys"; else
    home=$(getent passwd "$user" | cut -d: -f6)
    if [ -n "$home" ] && [ -f "$home/.ssh/authorized_keys" ]; then
      sed -n 's/^added-key=//p' "$rec" > "$d/.keys-added"
      grep -vxF -f "$d/.keys-added" "$home/.ssh/authorized_keys" > "$d/.keys-kept"
      cat "$d/.keys-kept" > "$home/.ssh/authorized_keys"
    fi
  fi
  sshdir=$(val created-ssh-dir); [ -n "$sshdir" ] && rmdir "$sshdir" 2> /dev/null
fi
if [ "$(val installed-sudo)" = yes ] && command -v apt-get > /dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive SUDO_FORCE_REMOVE=yes apt-get purge -y -q sudo > /dev/null 2>&1
fi
# The log and data directories (their contents; the directories themselves
# only when the bootstrap created them).
created_log=$(val created-log-dir); created_data=$(val created-data-dir)
if [ -d "$log" ]; then find "$log" -mindepth 1 -delete; [ "$created_log" = yes ] && rmdir "$log"; fi
find "$d" -mindepth 1 -delete
[ "$created_data" = yes ] && rmdir "$d"
echo destroyed
]==]

--- The destroy script for environment uuid (bench/manual.lua runs it
--- through OpenSSH as destroy's floor).
local function destroy_script(uuid)
  return table.concat({ header({ uuid = uuid }), shell.assign("log", P.LOG_DIR), shell.assign("user", P.UBUNTU),
    shell.assign("sudoers", P.SUDOERS), DESTROY }, "\n")
end

--- Stops machine 0's agent and juju-db and removes everything the
--- bootstrap created on the host (as recorded there). Host-key records are
--- the engine's: destroy-environment drops what it learned, a failed
--- bootstrap keeps them (issue 14.3). A host this process never touched during a
--- failed bootstrap is left alone without connecting.
--- The one resource is the host: releasing it undoes the bootstrap there.
function P.release(env, resource)
  if resource.kind == "instance" then return P.destroy(env) end
  return true
end

-- Environ storage is <data-dir>/storage on the host: destroy removes it.
P.destroy_removes_storage = true

function P.destroy(env)
  local lg = env.ctx:log_for("juju.provider.manual")
  if env.fresh and not env.touched or env.destroyed then
    -- Never touched, or already undone by this env's release of the
    -- instance (the teardown then destroys): nothing to connect for.
    forget_session(env)
    return true
  end
  local r, err, code = root_exec(env, destroy_script(env.uuid), {
    timeout = math.min(env.cfg["bootstrap-timeout"] or 600, P.DESTROY_CONNECT_TIMEOUT), exec_timeout = 120,
  })
  forget_session(env)
  if not r then return nil, err, code end
  local out = r.stdout:gsub("%s+$", "")
  local last = out:match("([^\n]*)$")
  if r.code ~= 0 or not last:match("^destroyed") and not last:match("^foreign") then
    return script_failure("cannot clean up " .. env.host, r)
  end
  local owner = last:match("^foreign (%S+)")
  if owner and owner ~= "none" then
    lg:warningf("%s belongs to environment %s: left as it is", env.host, owner)
  end
  env.claimed, env.touched, env.destroyed = false, false, true
  return true
end

P.internal = { parse_detection = parse_detection, destroy_script = destroy_script }

return P
