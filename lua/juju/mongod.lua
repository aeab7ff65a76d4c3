-- juju.mongod: the state server's mongod ("juju-db"): its command line for
-- the installed version, the data directory, the service (a systemd unit,
-- or a daemon supervised through juju.proc where systemd does not run), the
-- replica set and the mongo users (spec 2.14, mongo.md sections 2-5).
--
-- The order of setup fixes W10: the replica set is initiated and the
-- `admin` user created over one unauthenticated connection (mongod's
-- localhost exception, needed because no user exists yet), which is closed
-- right after createUser; everything else connects as a user.
--
-- Every wait is bounded and runs on an injectable clock: opts.monotonic()
-- (seconds) and opts.sleep(seconds) default to juju.sys's.
local fs = require("juju.fs")
local sys = require("juju.sys")
local proc = require("juju.proc")
local mongo = require("juju.lazy")("juju.mongo")
local yaml = require("juju.yaml")

local M = {}

M.DEFAULT_PORT = 37017
M.SERVICE = "juju-db"
M.REPLICA_SET = "juju"
M.JUJU_MONGOD = "/usr/lib/juju/bin/mongod"
M.ADMIN_ROLES = { "dbAdminAnyDatabase", "userAdminAnyDatabase", "clusterAdmin", "readWriteAnyDatabase" }
M.MEMBER_TAG = "juju-machine-id"
M.DEFAULT_TIMEOUT = 120        -- seconds ensure_server waits for mongod to answer
M.DEFAULT_PRIMARY_TIMEOUT = 60 -- seconds initiate_replica_set waits for a primary (Juju: 60)

-- mongod's server error codes this module reacts to.
local NOT_YET_INITIALIZED, ALREADY_INITIALIZED, USER_EXISTS, UNAUTHORIZED = 94, 23, 51003, 13

local OCTAL_600, OCTAL_644, OCTAL_700, OCTAL_755 = tonumber("600", 8), tonumber("644", 8),
    tonumber("700", 8), tonumber("755", 8)
local MIB = 1024 * 1024

local function say(opts, fmt, ...)
  if opts and opts.log then opts.log(string.format(fmt, ...)) end
end

local function clock(opts)
  return (opts and opts.monotonic) or sys.monotonic, (opts and opts.sleep) or sys.sleep
end

-- sleep, turning an interruption into an error.
local function pause(sleep, seconds)
  local ok, why = sleep(seconds)
  if ok == false then return nil, "interrupted (" .. tostring(why) .. ")", "INTERRUPTED" end
  return true
end

--- Compares a version {major, minor, patch} with major.minor.
function M.at_least(v, major, minor)
  if v.major ~= major then return v.major > major end
  return (v.minor or 0) >= (minor or 0)
end

--- Parses "db version v4.4.6" (mongod --version) into {major, minor, patch}.
function M.parse_version(text)
  local a, b, c = tostring(text):match("db version v(%d+)%.(%d+)%.(%d+)")
  if not a then return nil end
  return { major = tonumber(a), minor = tonumber(b), patch = tonumber(c) }
end

--- Runs `mongod --version` (env: the environment to run it in, default
--- ours): {major, minor, patch} | nil, msg, code.
function M.version(mongod_path, env)
  if type(mongod_path) ~= "string" or mongod_path == "" then error("mongod.version: path required", 2) end
  local r, err, code = sys.run({ mongod_path, "--version" }, { timeout = 30, env = env })
  if not r then return nil, string.format("cannot run %s --version: %s", mongod_path, err), code end
  if r.code ~= 0 then
    return nil, string.format("%s --version exited %d: %s", mongod_path, r.code, r.stderr), "PROC"
  end
  local v = M.parse_version(r.stdout)
  if not v then
    return nil, string.format("%s --version: no \"db version vX.Y.Z\" in %q", mongod_path, r.stdout:sub(1, 200)),
      "EINVAL"
  end
  return v
end

--- The mongod binary: opts.mongod, else /usr/lib/juju/bin/mongod, else
--- mongod from PATH (opts.path or $PATH): path | nil, msg, "ENOENT".
function M.find_mongod(opts)
  opts = opts or {}
  if opts.mongod then return opts.mongod end
  if fs.exists(M.JUJU_MONGOD) then return M.JUJU_MONGOD end
  for dir in (opts.path or os.getenv("PATH") or ""):gmatch("[^:]+") do
    local candidate = dir .. "/mongod"
    local st = fs.stat(candidate)
    if st and st.type == "file" and st.mode & tonumber("111", 8) ~= 0 then return candidate end
  end
  return nil, "cannot find mongod: neither " .. M.JUJU_MONGOD .. " nor mongod on PATH", "ENOENT"
end

local function is_32bit(arch)
  return arch == "i386" or arch == "armhf" or arch == "arm"
end

--- Free space (KiB) of the file system holding dir, from `df -P -k`
--- (Juju reads the 4th column of `df`).
function M.free_kib(dir)
  local r, err, code = sys.run({ "df", "-P", "-k", dir }, { timeout = 30 })
  if not r then return nil, "cannot run df: " .. tostring(err), code end
  local second = select(2, r.stdout:match("([^\n]*)\n([^\n]*)"))
  local avail = second and select(4, second:match("^(%S+)%s+(%S+)%s+(%S+)%s+(%S+)"))
  if r.code ~= 0 or not tonumber(avail) then
    return nil, string.format("cannot read free space of %s from df: %s%s", dir, r.stdout, r.stderr), "PROC"
  end
  return math.tointeger(tonumber(avail))
end

--- The oplog size in MB (Juju's rule): the agent env MONGO_OPLOG_SIZE when
--- set; 48 on 32-bit hosts; else 5% of the free space of opts.db_dir
--- clamped to [512, 1024]. opts: agent_env, arch (default sys.arch()),
--- free_kib (default: df of db_dir).
function M.oplog_size(opts)
  opts = opts or {}
  local env = opts.agent_env or {}
  local setting = env.MONGO_OPLOG_SIZE
  if setting ~= nil and setting ~= "" then
    local n = math.tointeger(tonumber(setting))
    if not n or n <= 0 then return nil, string.format("invalid oplog size: %q", tostring(setting)), "EINVAL" end
    return n
  end
  if is_32bit(opts.arch or sys.arch()) then return 48 end
  local free = opts.free_kib
  if not free then
    local err, code
    free, err, code = M.free_kib(opts.db_dir or ".")
    if not free then return nil, err, code end
  end
  local size = (free // 1024) * 5 // 100
  return math.max(512, math.min(1024, size))
end

local function push(t, ...)
  for _, v in ipairs({ ... }) do t[#t + 1] = v end
end

--- The mongod argv for the installed version (mongo.md section 3 is the
--- < 2.6 form, byte for byte apart from shell quoting). opts: mongod,
--- version {major, minor, patch}, data_dir, port, oplog_size, syslog
--- (default true), bind_ip (a list or comma string; default: all
--- interfaces, spelled --bind_ip_all from 3.6 where mongod's default became
--- localhost only).
--- Version rules: TLS flags --sslOnNormalPorts before 2.6 (deprecated in
--- 2.6), --sslMode requireSSL from 2.6, --tlsMode requireTLS from 4.2 (the
--- ssl names were deprecated then); --noprealloc and --smallfiles until
--- 4.1 (4.2 removed MMAPv1 and refuses them); --journal until 6.0 (6.1
--- removed it: journaling is always on).
function M.args(opts)
  for _, k in ipairs({ "mongod", "data_dir", "version", "oplog_size" }) do
    if opts[k] == nil then error("mongod.args: opts." .. k .. " is required", 2) end
  end
  local v, dir = opts.version, opts.data_dir
  local pem = dir .. "/server.pem"
  local argv = { opts.mongod, "--auth", "--dbpath", dir .. "/db" }
  if M.at_least(v, 4, 2) then
    push(argv, "--tlsMode", "requireTLS", "--tlsCertificateKeyFile", pem)
  elseif M.at_least(v, 2, 6) then
    push(argv, "--sslMode", "requireSSL", "--sslPEMKeyFile", pem, "--sslPEMKeyPassword", "ignored")
  else
    push(argv, "--sslOnNormalPorts", "--sslPEMKeyFile", pem, "--sslPEMKeyPassword", "ignored")
  end
  push(argv, "--port", tostring(opts.port or M.DEFAULT_PORT))
  local mmapv1_flags = not M.at_least(v, 4, 2)
  if mmapv1_flags then push(argv, "--noprealloc") end
  if opts.syslog ~= false then push(argv, "--syslog") end
  if mmapv1_flags then push(argv, "--smallfiles") end
  if not M.at_least(v, 6, 1) then push(argv, "--journal") end
  push(argv, "--keyFile", dir .. "/shared-secret", "--replSet", M.REPLICA_SET, "--ipv6")
  if opts.bind_ip then
    local list = type(opts.bind_ip) == "table" and table.concat(opts.bind_ip, ",") or tostring(opts.bind_ip)
    push(argv, "--bind_ip", list)
  elseif M.at_least(v, 3, 6) then
    push(argv, "--bind_ip_all")
  end
  push(argv, "--oplogSize", tostring(opts.oplog_size))
  return argv
end

--- Whether the version's default storage engine is MMAPv1 (before 3.2),
--- the only one that uses the journal and oplog preallocation files.
function M.needs_prealloc(v)
  return not M.at_least(v, 3, 2)
end

--- Sizes (bytes) of the oplog preallocation files local.0, local.1 ...
--- for size_bytes: the remainder of 512 MiB chunks first, rounded up to a
--- 4096 multiple, then whole 512 MiB chunks (Juju's preallocOplog).
function M.oplog_file_sizes(size_bytes)
  local chunk = 512 * MIB
  local sizes = {}
  local rest = size_bytes % chunk
  if rest > 0 then sizes[1] = (rest + 4095) // 4096 * 4096 end
  for _ = 1, size_bytes // chunk do sizes[#sizes + 1] = chunk end
  return sizes
end

-- Creates path with size zero bytes (mode 0700, as Juju does) unless it exists.
local function prealloc_file(path, size)
  if fs.exists(path) then return true end
  local f, err = io.open(path, "wb")
  if not f then return nil, err end
  local block = string.rep("\0", MIB)
  local left = size
  while left > 0 do
    local n = math.min(left, MIB)
    local ok, werr = f:write(n == MIB and block or block:sub(1, n))
    if not ok then
      f:close()
      return nil, werr
    end
    left = left - n
  end
  local ok, cerr = f:close()
  if not ok then return nil, cerr end
  return fs.chmod(path, OCTAL_700)
end

--- Journal and oplog preallocation for MMAPv1 versions (spec 2.14):
--- db/journal/prealloc.{0,1,2} of 1 MiB and db/local.N for the oplog.
function M.preallocate(db_dir, oplog_mb)
  local journal = db_dir .. "/journal"
  local ok, err = fs.mkdir_p(journal, OCTAL_700)
  if not ok then return nil, "error creating journal directories: " .. tostring(err), "EIO" end
  for i = 0, 2 do
    ok, err = prealloc_file(string.format("%s/prealloc.%d", journal, i), MIB)
    if not ok then return nil, "error creating journal directories: " .. tostring(err), "EIO" end
  end
  for i, size in ipairs(M.oplog_file_sizes(oplog_mb * MIB)) do
    ok, err = prealloc_file(string.format("%s/local.%d", db_dir, i - 1), size)
    if not ok then return nil, "error creating oplog files: " .. tostring(err), "EIO" end
  end
  return true
end

-- systemd's ExecStart word quoting: % and $ are specifier/variable
-- characters even inside quotes, so they are always doubled.
local function systemd_word(s)
  s = s:gsub("%%", "%%%%"):gsub("%$", "$$")
  if s ~= "" and not s:find("[%s\"'\\;]") then return s end
  return '"' .. s:gsub("\\", "\\\\"):gsub('"', '\\"') .. '"'
end

--- The systemd unit for argv (Juju's juju-db service: description, limits,
--- restart on failure, 300 s timeout).
function M.systemd_unit(argv)
  local words = {}
  for i, a in ipairs(argv) do words[i] = systemd_word(a) end
  return table.concat({
    "[Unit]",
    "Description=juju state database",
    "After=syslog.target",
    "After=network.target",
    "After=systemd-user-sessions.service",
    "",
    "[Service]",
    "LimitNOFILE=65000",
    "LimitNPROC=20000",
    "ExecStart=" .. table.concat(words, " "),
    "Restart=on-failure",
    "TimeoutSec=300",
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  }, "\n")
end

--- mongodb:// URI for a direct connection to host:port with bounded
--- timeouts (opts.connect_timeout_ms, selection_timeout_ms,
--- socket_timeout_ms; defaults 5000, 10000, 60000).
function M.uri(host, port, opts)
  opts = opts or {}
  if host:find(":", 1, true) and not host:find("^%[") then host = "[" .. host .. "]" end
  return string.format(
    "mongodb://%s:%d/?directConnection=true&connectTimeoutMS=%d&serverSelectionTimeoutMS=%d&socketTimeoutMS=%d",
    host, port, opts.connect_timeout_ms or 5000, opts.selection_timeout_ms or 10000,
    opts.socket_timeout_ms or 60000)
end

--- TLS options for our own connections to the local mongod: the CA file
--- written by ensure_server; the server certificate names no usable host
--- (W5), so only the chain is verified.
function M.client_tls(data_dir)
  return { ca_file = data_dir .. "/ca-cert.pem", allow_invalid_hostnames = true }
end

--- A client for the local mongod of opts (data_dir, port, host default
--- 127.0.0.1, timeouts as M.uri); creds {username, password} optional.
function M.connect(opts, creds)
  creds = creds or {}
  return mongo.client(M.uri(opts.host or "127.0.0.1", opts.port or M.DEFAULT_PORT, opts.timeouts), {
    tls = M.client_tls(opts.data_dir), app_name = "juju-bootstrap",
    username = creds.username, password = creds.password, auth_source = creds.username and "admin" or nil,
  })
end

-- ---- the service --------------------------------------------------------------

local function run_command(opts, argv)
  if opts.run then return opts.run(argv) end
  local r, err, code = sys.run(argv, { timeout = 120 })
  if not r then return nil, err, code end
  if r.code ~= 0 then
    return nil, string.format("%s exited %d: %s", table.concat(argv, " "), r.code, r.stderr), "PROC"
  end
  return true
end

local function read_or_nil(path)
  if not fs.exists(path) then return nil end
  return fs.read_file(path)
end

-- Two ways to run juju-db with one shape: definition (text compared for
-- idempotency), running(), stop(), install(), start().
local function systemd_service(opts, name, argv)
  local unit = (opts.root or "") .. "/etc/systemd/system/" .. name .. ".service"
  local svc = { kind = "systemd", definition = M.systemd_unit(argv), path = unit }
  function svc.installed() return read_or_nil(unit) end
  function svc.running() return run_command(opts, { "systemctl", "is-active", "--quiet", name }) == true end
  function svc.stop() return run_command(opts, { "systemctl", "stop", name }) end
  function svc.install()
    local ok, err, code = fs.mkdir_p(unit:match("^(.*)/"), OCTAL_755)
    if ok then ok, err, code = fs.write_atomic(unit, svc.definition, OCTAL_644) end
    if ok then ok, err, code = run_command(opts, { "systemctl", "daemon-reload" }) end
    if ok then ok, err, code = run_command(opts, { "systemctl", "enable", name }) end
    return ok, err, code
  end
  function svc.start() return run_command(opts, { "systemctl", "start", name }) end
  function svc.alive() return true end
  return svc
end

local function supervised_service(opts, name, argv)
  local dir = opts.data_dir
  local pid_file = dir .. "/" .. name .. ".pid"
  local def_file = dir .. "/" .. name .. ".argv"
  local log_file = opts.log_file or dir .. "/" .. name .. ".log"
  local svc = { kind = "supervised", definition = table.concat(argv, "\n") .. "\n", path = def_file,
    pid_file = pid_file, log_file = log_file }
  local function pid()
    local p = proc.read_pid(pid_file)
    if p and proc.alive(p) then return p end
    return nil
  end
  function svc.installed() return read_or_nil(def_file) end
  function svc.running() return pid() ~= nil end
  function svc.stop() return proc.stop(pid_file, { timeout = opts.stop_timeout or 30 }) end
  function svc.install() return fs.write_atomic(def_file, svc.definition, OCTAL_600) end
  function svc.start()
    local p, err, code = proc.start_daemon(argv, { log_file = log_file, pid_file = pid_file, env = opts.env, cwd = dir })
    if not p then return nil, err, code end
    svc.pid = p
    return true
  end
  function svc.alive() return pid() ~= nil end
  return svc
end

local function write_private(path, text, what)
  local ok, err, code = fs.write_atomic(path, text, OCTAL_600)
  if not ok then return nil, string.format("cannot write %s: %s", what, tostring(err)), code end
  return true
end

-- Waits until mongod accepts TCP connections and answers isMaster over TLS,
-- looking in between whether it is still alive. A fresh client per attempt:
-- libmongoc's single-threaded clients refuse to retry a server for 5 s
-- after a failure.
local function wait_ready(opts, svc, deadline, monotonic, sleep)
  local host, port = opts.host or "127.0.0.1", opts.port or M.DEFAULT_PORT
  local last
  while true do
    local left = deadline - monotonic()
    local listening, err = proc.wait_port(host, port, math.max(0, math.min(0.5, left)))
    if listening then
      local c, cerr, ccode = M.connect(opts)
      if not c then return nil, cerr, ccode end
      local reply, perr = c:command("admin", { isMaster = 1 })
      c:close()
      if reply then return true end
      last = perr
    else
      last = err
    end
    if monotonic() >= deadline or not svc.alive() then break end
    local ok, pmsg, pcode = pause(sleep, opts.poll_interval or 0.25)
    if not ok then return nil, pmsg, pcode end
  end
  local hint = svc.kind == "supervised" and string.format(" (log: %s)", svc.log_file) or ""
  if not svc.alive() then
    return nil, string.format("juju-db exited before answering on %s:%d%s", host, port, hint), "PROC"
  end
  return nil, string.format("juju-db did not answer on %s:%d within %gs: %s%s", host, port,
    opts.timeout or M.DEFAULT_TIMEOUT, tostring(last), hint), "TIMEOUT"
end

--- Makes sure mongod runs as juju-db with the current definition and
--- answers (spec 2.14). opts:
---   data_dir (required), port (37017), cert, key, shared_secret,
---   ca_cert (PEM of the CA that signed cert; written to data_dir/ca-cert.pem
---   for our own clients, which libmongoc reads from a file) - all required;
---   mongod (path), version (else `mongod --version`), oplog_size (else
---   M.oplog_size with agent_env/arch), bind_ip, namespace (service
---   juju-db-<namespace>), root ("" - prefix of /etc paths, for tests),
---   systemd (true/false; default: whether /run/systemd/system exists),
---   run(argv) (systemctl runner), env (daemon environment), log_file,
---   host (127.0.0.1), timeouts (M.uri), timeout (seconds, 120),
---   monotonic, sleep, log(msg).
--- Idempotent: a running server with the same definition is left alone;
--- a stopped one is started; a different one is stopped and replaced.
--- Returns true | nil, msg, code.
function M.ensure_server(opts)
  if type(opts) ~= "table" then error("mongod.ensure_server: opts required", 2) end
  for _, k in ipairs({ "data_dir", "cert", "key", "shared_secret", "ca_cert" }) do
    if type(opts[k]) ~= "string" or opts[k] == "" then error("mongod.ensure_server: opts." .. k .. " is required", 2) end
  end
  local monotonic, sleep = clock(opts)
  local deadline = monotonic() + (opts.timeout or M.DEFAULT_TIMEOUT)
  local dir = opts.data_dir
  local db_dir = dir .. "/db"

  local mongod, err, code = M.find_mongod(opts)
  if not mongod then return nil, err, code end
  local version = opts.version
  if not version then
    version, err, code = M.version(mongod, opts.env)
    if not version then return nil, err, code end
  end

  local ok
  ok, err, code = fs.mkdir_p(db_dir, OCTAL_700)
  if ok then ok, err, code = fs.chmod(db_dir, OCTAL_700) end
  if not ok then return nil, "cannot create mongo database directory: " .. tostring(err), code end
  ok, err, code = write_private(dir .. "/server.pem", opts.cert .. "\n" .. opts.key, "SSL key")
  if not ok then return nil, err, code end
  ok, err, code = write_private(dir .. "/shared-secret", opts.shared_secret, "mongod shared secret")
  if not ok then return nil, err, code end
  ok, err, code = fs.write_atomic(dir .. "/ca-cert.pem", opts.ca_cert, OCTAL_644)
  if not ok then return nil, "cannot write CA certificate: " .. tostring(err), code end

  -- Keep the distribution's own mongodb job from starting a second mongod.
  local default_file = (opts.root or "") .. "/etc/default/mongodb"
  if not fs.exists(default_file) then
    ok, err, code = fs.mkdir_p(default_file:match("^(.*)/"), OCTAL_755)
    if ok then ok, err, code = fs.write_atomic(default_file, "ENABLE_MONGODB=no\n", OCTAL_644) end
    if not ok then return nil, "cannot write " .. default_file .. ": " .. tostring(err), code end
  end

  local oplog = opts.oplog_size
  if not oplog then
    oplog, err, code = M.oplog_size({ agent_env = opts.agent_env, arch = opts.arch, db_dir = db_dir })
    if not oplog then return nil, err, code end
  end
  local use_systemd = opts.systemd
  if use_systemd == nil then use_systemd = fs.exists("/run/systemd/system") end
  local argv = M.args({
    mongod = mongod, version = version, data_dir = dir, port = opts.port, oplog_size = oplog,
    bind_ip = opts.bind_ip, syslog = use_systemd,
  })
  local name = opts.namespace and (M.SERVICE .. "-" .. opts.namespace) or M.SERVICE
  local svc = (use_systemd and systemd_service or supervised_service)(opts, name, argv)

  if svc.installed() == svc.definition and svc.running() then
    say(opts, "%s already running (mongod %d.%d.%d)", name, version.major, version.minor, version.patch)
  else
    if svc.installed() == svc.definition then
      say(opts, "starting %s", name)
    else
      if svc.running() then
        say(opts, "stopping %s to change its definition", name)
        ok, err, code = svc.stop()
        if not ok then return nil, "failed to stop mongo: " .. tostring(err), code end
      end
      if M.needs_prealloc(version) then
        ok, err, code = M.preallocate(db_dir, oplog)
        if not ok then return nil, err, code end
      end
      ok, err, code = svc.install()
      if not ok then return nil, "cannot install " .. name .. ": " .. tostring(err), code end
      say(opts, "starting %s (mongod %d.%d.%d, %s)", name, version.major, version.minor, version.patch, svc.kind)
    end
    ok, err, code = svc.start()
    if not ok then return nil, "cannot start " .. name .. ": " .. tostring(err), code end
  end
  return wait_ready(opts, svc, deadline, monotonic, sleep)
end

-- ---- replica set ------------------------------------------------------------

--- The replica-set member address: host:port with IPv6 brackets removed
--- (Juju's form: "[::1]" -> "::1:37017").
function M.member_host(host, port)
  return (host:gsub("^%[(.*)%]$", "%1")) .. ":" .. tostring(port)
end

--- The replSetInitiate document (BSON field order of Juju's Go structs).
function M.replica_set_config(host, port, machine_id)
  local member = yaml.ordered({
    _id = 1, host = M.member_host(host, port), tags = { [M.MEMBER_TAG] = machine_id or "0" },
  }, { "_id", "host", "tags" })
  return yaml.ordered({ _id = M.REPLICA_SET, version = 1, members = yaml.array({ member }) },
    { "_id", "version", "members" })
end

local function primary_of(status)
  if status.myState == 1 then return true end
  for _, m in ipairs(status.members or {}) do
    if m.stateStr == "PRIMARY" or m.state == 1 then return true end
  end
  return false
end

local function state_of(status)
  local states = {}
  for _, m in ipairs(status.members or {}) do states[#states + 1] = tostring(m.stateStr or m.state) end
  return #states > 0 and table.concat(states, ",") or "no members"
end

--- Initiates the one-member replica set "juju" unless replSetGetStatus
--- shows a configuration, then waits for a primary. opts: host (the peer
--- address, required), port (37017), machine_id ("0"), timeout (seconds to
--- wait for a primary, 60), interval (0.5), monotonic, sleep, log.
--- Returns true | nil, msg, code ("TIMEOUT": "no primary after Ns") [, the
--- server's error code when replSetGetStatus was refused].
function M.initiate_replica_set(client, opts)
  if type(opts) ~= "table" or type(opts.host) ~= "string" or opts.host == "" then
    error("mongod.initiate_replica_set: opts.host (the peer address) is required", 2)
  end
  local monotonic, sleep = clock(opts)
  local timeout = opts.timeout or M.DEFAULT_PRIMARY_TIMEOUT
  local deadline = monotonic() + timeout
  local status, msg, code, server_code = client:command("admin", { replSetGetStatus = 1 })
  if status then
    say(opts, "replica set already initiated")
  elseif server_code ~= NOT_YET_INITIALIZED then
    return nil, "cannot initiate replica set: " .. tostring(msg), code, server_code
  else
    local config = M.replica_set_config(opts.host, opts.port or M.DEFAULT_PORT, opts.machine_id)
    say(opts, "initiating replica set %s with member %s", M.REPLICA_SET, config.members[1].host)
    -- mongod refuses while it cannot yet reach itself at the member address;
    -- Juju retries that 10 times, 100 ms apart.
    for attempt = 1, 10 do
      local r
      r, msg, code, server_code = client:command("admin", { replSetInitiate = config })
      if r or server_code == ALREADY_INITIALIZED then break end
      if attempt == 10 or not tostring(msg):find("all members and seeds must be reachable", 1, true) then
        return nil, "cannot initiate replica set: " .. tostring(msg), code
      end
      local ok, perr, pcode = pause(sleep, 0.1)
      if not ok then return nil, perr, pcode end
    end
  end
  local last
  while true do
    status, msg = client:command("admin", { replSetGetStatus = 1 })
    if status then
      if primary_of(status) then return true end
      last = state_of(status)
    else
      last = tostring(msg)
    end
    if monotonic() >= deadline then break end
    local ok, perr, pcode = pause(sleep, opts.interval or 0.5)
    if not ok then return nil, perr, pcode end
  end
  return nil, string.format("cannot initiate replica set: no primary after %gs (last state: %s)", timeout, last),
    "TIMEOUT"
end

-- ---- users ----------------------------------------------------------------------

--- Creates (or, when it exists, updates) user `name` in the admin database
--- with password and roles (default M.ADMIN_ROLES): true | nil, msg, code.
function M.create_user(client, name, password, roles)
  if type(name) ~= "string" or name == "" or type(password) ~= "string" then
    error("mongod.create_user: name and password must be strings", 2)
  end
  local list = yaml.array()
  for i, r in ipairs(roles or M.ADMIN_ROLES) do list[i] = r end
  local reply, msg, code, server_code = client:command("admin",
    yaml.ordered({ createUser = name, pwd = password, roles = list }, { "createUser", "pwd", "roles" }))
  if not reply and server_code == USER_EXISTS then
    reply, msg, code = client:command("admin",
      yaml.ordered({ updateUser = name, pwd = password, roles = list }, { "updateUser", "pwd", "roles" }))
  end
  if not reply then return nil, string.format("cannot create mongo user %q: %s", name, tostring(msg)), code end
  return true
end

--- The mongo `admin` user, whose password is the admin-secret hash (W4,
--- as Juju). Call it on the connection that initiated the replica set,
--- before anything else connects (W10).
function M.create_admin_user(client, password_hash)
  if type(password_hash) ~= "string" or password_hash == "" then
    error("mongod.create_admin_user: password_hash required", 2)
  end
  local ok, msg, code = M.create_user(client, "admin", password_hash, M.ADMIN_ROLES)
  if not ok then return nil, "failed to initialize mongo admin user: " .. tostring(msg), code end
  return true
end

--- The whole server set-up in the order that closes W10: ensure_server
--- (opts as there), then over one unauthenticated connection initiate the
--- replica set (opts.peer_host, opts.machine_id, opts.primary_timeout) and
--- create `admin` (opts.admin_password_hash), close it, and as admin create
--- the machine's user (opts.machine_password, when given: "machine-<id>").
--- Returns true | nil, msg, code.
function M.setup(opts)
  if type(opts) ~= "table" or type(opts.admin_password_hash) ~= "string" or type(opts.peer_host) ~= "string" then
    error("mongod.setup: opts.admin_password_hash and opts.peer_host are required", 2)
  end
  local ok, err, code = M.ensure_server(opts)
  if not ok then return nil, err, code end
  local c
  c, err, code = M.connect(opts)
  if not c then return nil, err, code end
  local initiate_opts = {
    host = opts.peer_host, port = opts.port, machine_id = opts.machine_id, timeout = opts.primary_timeout,
    monotonic = opts.monotonic, sleep = opts.sleep, log = opts.log,
  }
  local server_code
  ok, err, code, server_code = M.initiate_replica_set(c, initiate_opts)
  if not ok and server_code == UNAUTHORIZED then
    -- A re-run (W15) finds users already there: the localhost exception is
    -- gone, and a previous run got past createUser admin, so go on as admin.
    c:close()
    c, err, code = M.connect(opts, { username = "admin", password = opts.admin_password_hash })
    if not c then return nil, err, code end
    ok, err, code = M.initiate_replica_set(c, initiate_opts)
  end
  if ok then
    say(opts, "creating mongo user admin")
    ok, err, code = M.create_admin_user(c, opts.admin_password_hash)
  end
  c:close()
  if not ok then return nil, err, code end
  if opts.machine_password then
    local name = "machine-" .. (opts.machine_id or "0")
    c, err, code = M.connect(opts, { username = "admin", password = opts.admin_password_hash })
    if not c then return nil, err, code end
    say(opts, "creating mongo user %s", name)
    ok, err, code = M.create_user(c, name, opts.machine_password, M.ADMIN_ROLES)
    c:close()
    if not ok then return nil, err, code end
  end
  return true
end

-- ---- agent glue: juju.agent.bootstrap_state and juju.agent.machine ----------

local function conf_server_opts(data_dir, conf, extra)
  local o = {
    data_dir = data_dir, port = math.tointeger(tonumber(conf.stateport)) or M.DEFAULT_PORT,
    cert = conf.stateservercert, key = conf.stateserverkey, ca_cert = conf.cacert,
    shared_secret = conf.sharedsecret,
  }
  for k, v in pairs(extra or {}) do
    if o[k] == nil then o[k] = v end
  end
  return o
end

local function is_cloud_local(a)
  return a:match("^10%.") or a:match("^192%.168%.") or a:match("^172%.1[6-9]%.") or a:match("^172%.2%d%.")
    or a:match("^172%.3[01]%.")
end

--- The replica-set peer address among addresses (strings): the first
--- cloud-local IPv4 address, else the first that is not machine-local, else nil.
function M.select_peer_address(addresses)
  for _, a in ipairs(addresses or {}) do
    if is_cloud_local(a) then return a end
  end
  for _, a in ipairs(addresses or {}) do
    if not (a == "localhost" or a:match("^127%.") or a == "::1") then return a end
  end
  return nil
end

local function store_for(data_dir, port, username, password)
  return require("juju.state").open("mongodb", {
    uri = M.uri("127.0.0.1", port), tls = M.client_tls(data_dir), username = username, password = password,
  })
end

--- For `jujud bootstrap-state`: M.setup from machine 0's agent.conf
--- (o.conf: stateport, stateservercert, stateserverkey, cacert,
--- sharedsecret, oldpassword = the admin password hash, statepassword =
--- machine 0's password, tag) in o.data_dir, then the state store
--- authenticated as admin. The peer address is o.peer_host, else
--- M.select_peer_address(o.addresses), else 127.0.0.1 (logged: a
--- one-machine set only). Other ensure_server options may be given in o.
--- Returns store | nil, msg, code.
function M.bootstrap_store(ctx, o)
  local conf = o.conf or {}
  for _, k in ipairs({ "stateservercert", "stateserverkey", "cacert", "sharedsecret", "oldpassword" }) do
    if type(conf[k]) ~= "string" or conf[k] == "" then
      return nil, "agent configuration has no " .. k .. " for the state server", "EINVAL"
    end
  end
  local lg = ctx and ctx.log_for and ctx:log_for("juju.mongo")
  local extra = {}
  for k, v in pairs(o) do
    if k ~= "conf" and k ~= "cfg" and k ~= "addresses" then extra[k] = v end
  end
  local opts = conf_server_opts(o.data_dir, conf, extra)
  opts.admin_password_hash = conf.oldpassword
  opts.machine_password = conf.statepassword
  opts.machine_id = (tostring(conf.tag or "machine-0"):match("^machine%-(.+)$") or "0"):gsub("%-", "/")
  opts.peer_host = o.peer_host or M.select_peer_address(o.addresses)
  if not opts.peer_host then
    opts.peer_host = "127.0.0.1"
    if lg then lg:warningf("no peer address given: the replica set member is 127.0.0.1:%d", opts.port) end
  end
  if lg and not opts.log then opts.log = function(msg) lg:infof("%s", msg) end end
  local ok, err, code = M.setup(opts)
  if not ok then return nil, err, code end
  return store_for(opts.data_dir, opts.port, "admin", conf.oldpassword)
end

--- For the machine agent: the state store on the local juju-db,
--- authenticated as the agent's own user (conf.tag, conf.statepassword).
function M.agent_store(data_dir, conf)
  if type(conf) ~= "table" or type(conf.tag) ~= "string" or type(conf.statepassword) ~= "string" then
    return nil, "agent configuration has no tag or state password", "EINVAL"
  end
  return store_for(data_dir, math.tointeger(tonumber(conf.stateport)) or M.DEFAULT_PORT, conf.tag, conf.statepassword)
end

return M
