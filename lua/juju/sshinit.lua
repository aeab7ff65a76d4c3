-- juju.sshinit: the SSH finalizer (spec steps 10.4-11). It waits for machine
-- 0 to answer over SSH, checks its host key (W2) and its nonce (W1) before
-- anything secret is sent, brings file:// tools over SFTP instead of
-- embedding them in the script (W17), runs the phase-2 script as root with
-- its progress lines relayed as they arrive, and shows the tail of its
-- output when it fails.
--
-- provider_common uses finish() when a provider gives no finish of its own;
-- providers that talk SSH themselves (manual) share connect(),
-- wait_for_ssh() and run_script(). Every wait runs on the run's clock
-- (ctx.clock), so scenarios can use a virtual one.
local ssh = require("juju.lazy")("juju.ssh")
local fs = require("juju.fs")
local shell = require("juju.shell")
local crypto = require("juju.crypto")
local cloudinit = require("juju.cloudinit")
local wait = require("juju.wait")
local authkeys = require("juju.environs.authkeys")

local M = {}

M.DEFAULT_USER = "ubuntu"
M.DEFAULT_PORT = 22
M.CONNECT_TIMEOUT = 30    -- seconds for one connection attempt (TCP, handshake, auth)
M.SCRIPT_TIMEOUT = 3600   -- seconds the phase-2 script may run
M.HEARTBEAT = 30          -- seconds between "Still waiting" lines
M.TAIL_LINES = 25         -- lines of output shown when the script fails
local TAIL_BYTES = 64 * 1024

-- Errors worth another attempt while waiting: the host is still booting,
-- its keys or nonce are not in place yet, or it answered too slowly.
M.RETRY_CODES = { SSH = true, TIMEOUT = true, SSH_AUTH = true, NONCE = true }

local duration = require("juju.context").duration

--- "host" or "[v6]" with ":port" when not 22.
function M.hostport(host, port)
  local h = host:find(":", 1, true) and ("[" .. host .. "]") or host
  return string.format("%s:%d", h, port or M.DEFAULT_PORT)
end

--- Splits "host", "host:port", "[v6]" or "[v6]:port": host, port (nil when
--- absent), or nil, message.
function M.parse_host(text)
  if type(text) ~= "string" or text == "" then return nil, "empty host" end
  local v6, rest = text:match("^%[([^%]]+)%](.*)$")
  local host, port = v6, nil
  if v6 then
    if rest ~= "" then
      port = rest:match("^:(%d+)$")
      if not port then return nil, string.format("invalid host %q", text) end
    end
  else
    host, port = text:match("^([^:]+):(%d+)$")
    if not host then
      if text:find(":", 1, true) then
        if not text:find("^[%x:.]+$") then return nil, string.format("invalid host %q", text) end
        host = text -- a bare IPv6 address
      else
        host = text
      end
    end
  end
  if not host:match("^[%w._:%-]+$") then return nil, string.format("invalid host %q", text) end
  if port then
    port = math.tointeger(tonumber(port))
    if not port or port < 1 or port > 65535 then return nil, string.format("invalid port in %q", text) end
  end
  return host, port
end

--- The per-environment known_hosts file.
function M.known_hosts_path(home, env_name)
  return home .. "/environments/" .. env_name .. ".known_hosts"
end

--- Where the lines this engine added to known_hosts (trust on first use)
--- are recorded, so that destroy-environment removes exactly those.
function M.learned_path(home, env_name)
  return M.known_hosts_path(home, env_name) .. ".learned"
end

-- "name type base64" of a known_hosts line (nil for markers, comments).
local function entry_key(line)
  if line:match("^%s*#") or line:match("^%s*@") then return nil end
  local a, b, c = line:match("^%s*(%S+)%s+(%S+)%s+(%S+)")
  return a and (a .. " " .. b .. " " .. c) or nil
end

-- Records a key learned on first use (the session says "added").
local function record_learned(known_hosts, host, port, session)
  local ok, hk = pcall(session.host_key, session)
  if not ok or type(hk) ~= "table" or hk.verified ~= "added" or not known_hosts then return end
  local name = (port and port ~= 22) and string.format("[%s]:%d", host, port) or host
  local line = entry_key(name .. " " .. hk.line)
  if line then fs.append_sync(known_hosts .. ".learned", line .. "\n", "0600") end
end

--- Removes from the environment's known_hosts exactly the lines it learned
--- on first use (destroy-environment only: a failed bootstrap keeps every
--- host-key record, issue 14.3). @revoked, @cert-authority, comments and
--- lines the user wrote stay; the file goes only when nothing is left.
--- Returns true or nil, message.
function M.forget_learned_host_keys(home, env_name)
  local kh, lp = M.known_hosts_path(home, env_name), M.learned_path(home, env_name)
  if not fs.exists(lp) then return true end
  local learned = {}
  for line in (fs.read_file(lp, { max_size = 1 << 20 }) or ""):gmatch("[^\n]+") do learned[line] = true end
  if fs.exists(kh) then
    local text, err = fs.read_file(kh, { max_size = 16 << 20 })
    if not text then return nil, err end
    local keep = {}
    for line in text:gmatch("[^\n]+") do
      local k = entry_key(line)
      if not (k and learned[k]) then keep[#keep + 1] = line end
    end
    local ok, werr
    if #keep == 0 then ok, werr = fs.remove(kh) else ok, werr = fs.write_atomic(kh, table.concat(keep, "\n") .. "\n", "0600") end
    if not ok then return nil, werr end
  end
  return fs.remove(lp)
end

--- The private keys offered when logging in, in order: the engine's client
--- key, then the user's own ed25519 and ECDSA keys (libssh2 1.10 cannot
--- sign with RSA-SHA2, so RSA keys are left out).
function M.identities(ctx, home)
  local out = {}
  local client = home .. "/ssh/" .. authkeys.CLIENT_KEY
  if fs.exists(client) then out[#out + 1] = client end
  local user_home = ctx:getenv("HOME")
  if user_home then
    for _, name in ipairs({ "id_ed25519", "id_ecdsa" }) do
      local p = user_home .. "/.ssh/" .. name
      if fs.exists(p) then out[#out + 1] = p end
    end
  end
  return out
end

--- How to log in and what host key to accept, from the environment
--- config: the pinned key (opts.host_key, else bootstrap-host-key), the
--- environment's known_hosts, trust on first use (ssh-trust-on-first-use)
--- and the identities. opts: host_key, user, port.
function M.target(ctx, cfg, opts)
  opts = opts or {}
  local home = assert(ctx:juju_home())
  local pin = opts.host_key
  if pin == nil and type(cfg["bootstrap-host-key"]) == "string" and cfg["bootstrap-host-key"] ~= "" then
    pin = cfg["bootstrap-host-key"]
  end
  return {
    user = opts.user or M.DEFAULT_USER,
    port = opts.port or M.DEFAULT_PORT,
    host = opts.host,
    host_key = pin,
    known_hosts = M.known_hosts_path(home, cfg.name),
    trust_on_first_use = cfg["ssh-trust-on-first-use"] == true,
    identities = M.identities(ctx, home),
    connect = opts.connect,
  }
end

local function who(target, host)
  return string.format("%s@%s", target.user, M.hostport(host or target.host, target.port))
end

--- Connects to target.host as target.user, offering each identity in turn
--- (one connection per key: libssh2 takes one key per attempt). Host-key
--- failures and anything but a refused key end the attempt at once.
--- Returns session or nil, message, code.
function M.connect(target, host, connect_timeout)
  host = host or target.host
  local connect = target.connect or ssh.connect
  if #target.identities == 0 then
    return nil, string.format("cannot log in to %s: no SSH identity (no %s, no ~/.ssh/id_ed25519 or id_ecdsa)",
      who(target, host), authkeys.CLIENT_KEY), "SSH_AUTH"
  end
  local refused = {}
  for _, key in ipairs(target.identities) do
    local s, err, code = connect({
      host = host, port = target.port, user = target.user, private_key_file = key,
      host_key = target.host_key, known_hosts = target.known_hosts,
      trust_on_first_use = target.trust_on_first_use,
      -- The connection may be cut short by the deadline; the session's
      -- later steps keep the normal per-step bound.
      connect_timeout = connect_timeout or M.CONNECT_TIMEOUT, timeout = M.CONNECT_TIMEOUT,
    })
    if s then
      record_learned(target.known_hosts, host, target.port, s)
      return s
    end
    if code ~= "SSH_AUTH" then return nil, err, code end
    refused[#refused + 1] = err
  end
  return nil, string.format("%s refused every key offered (%s): %s", who(target, host),
    table.concat(target.identities, ", "), refused[#refused]), "SSH_AUTH"
end

local function check_interrupt(w)
  if w.check_interrupt then w:check_interrupt() end
end

--- The nonce check (W1): <data_dir>/nonce.txt must hold exactly nonce. Run
--- as the logged-in user with the script on stdin. true or nil, message, "NONCE".
function M.check_nonce(session, data_dir, nonce)
  local script = table.concat({
    "noncefile=" .. shell.quote(data_dir .. "/nonce.txt"),
    'if [ ! -e "$noncefile" ]; then echo "$noncefile does not exist" >&2; exit 1; fi',
    'content=$(cat "$noncefile")',
    "if [ \"$content\" != " .. shell.quote(nonce) .. " ]; then",
    '  echo "$noncefile contents do not match machine nonce" >&2; exit 1',
    "fi",
  }, "\n") .. "\n"
  local r, err, code = session:exec("/bin/bash", { stdin = script, timeout = M.CONNECT_TIMEOUT })
  if not r then return nil, err, code end
  if r.code ~= 0 then
    local out = (r.stderr .. r.stdout):gsub("%s+$", "")
    return nil, out ~= "" and out or ("nonce check exited " .. r.code), "NONCE"
  end
  return true
end

-- Exit status of the nonce check run in front of the script (opts.nonce).
local NONCE_EXIT = 97

-- The nonce check (W1) as the first lines of the script fed to bash -s:
-- the same test as check_nonce, run as root in the script's own exec.
local function nonce_prelude(data_dir, nonce)
  return table.concat({
    "noncefile=" .. shell.quote(data_dir .. "/nonce.txt"),
    'if [ ! -e "$noncefile" ]; then echo "$noncefile does not exist"; exit ' .. NONCE_EXIT .. '; fi',
    "if [ \"$(cat \"$noncefile\")\" != " .. shell.quote(nonce) .. " ]; then",
    '  echo "$noncefile contents do not match machine nonce"; exit ' .. NONCE_EXIT,
    "fi",
    "unset noncefile",
  }, "\n") .. "\n"
end

--- Waits for a host that answers SSH (spec step 10.4, waitSSH). w is the
--- run (ctx, check_interrupt) or {ctx=}. opts: target (M.target), addresses
--- (function() -> list | nil, message: fatal), check (function(session,
--- address) -> true | nil, message, code), timeout (600), retry_delay (5),
--- addresses_delay (10), heartbeat (30), say_waiting (true: print "Waiting
--- for address"), quiet (no progress lines at all), retry_auth (true:
--- a refused key is retried, as keys may not be installed yet). Each round
--- tries every known address; addresses are re-read every addresses_delay.
--- Returns session, address or nil, message, code.
function M.wait_for_ssh(w, opts)
  local ctx = w.ctx or w
  local function say(...) if not opts.quiet then ctx:infof(...) end end
  local clock = ctx.clock
  local lg = ctx:log_for("juju.provider.common")
  local target = opts.target
  local timeout = opts.timeout or 600
  local refresh = opts.addresses_delay or 10
  local start = clock.monotonic()
  local next_refresh = start
  local known, order = {}, {}
  local attempts = 0
  if opts.say_waiting ~= false then say("Waiting for address") end
  -- One round: re-read the addresses when due, then try each known one.
  local function round(st)
    local now = clock.monotonic()
    if now >= next_refresh then
      local addrs, aerr = opts.addresses()
      if not addrs then return false, tostring(aerr), "ADDRESSES" end
      for _, a in ipairs(addrs) do
        if not known[a] then
          known[a] = true
          order[#order + 1] = a
          say("Attempting to connect to %s", M.hostport(a, target.port))
        end
      end
      next_refresh = now + refresh
    end
    local last_err
    for _, a in ipairs(order) do
      local left = st.left - (clock.monotonic() - now)
      if left <= 0 then break end
      attempts = attempts + 1
      local s, err, code = M.connect(target, a, math.min(M.CONNECT_TIMEOUT, math.max(left, 1)))
      if s and opts.check then
        local ok, cerr, ccode = opts.check(s, a)
        if not ok then
          s:close()
          s, err, code = nil, cerr, ccode or "NONCE"
        end
      end
      if s then return { session = s, address = a } end
      check_interrupt(w)
      if not M.RETRY_CODES[code] or (code == "SSH_AUTH" and opts.retry_auth == false) then
        return false, err, code
      end
      last_err = err
      lg:debugf("connection attempt %d to %s failed: %s", attempts, M.hostport(a, target.port), err)
    end
    return nil, last_err
  end
  local got, err, code, st = wait.poll {
    what = "for SSH", timeout = timeout, poll = round, clock = clock,
    interval = math.max(opts.retry_delay or 5, 0.01),
    heartbeat = opts.heartbeat or M.HEARTBEAT,
    deadline = w._deadline,
    say = not opts.quiet and function(line) ctx:infof("%s", line) end or nil,
    heartbeat_line = function(st)
      local where = #order > 0 and table.concat(order, ", ") or "an address"
      return string.format("Still waiting for SSH on %s (%s of %s; %d attempts%s)", where,
        duration(st.elapsed), duration(timeout), attempts, st.last_error and ("; last error: " .. st.last_error) or "")
    end,
    -- Without an address yet, look again as soon as a refresh is due.
    next_pause = function(_, pause)
      if #order == 0 then return math.min(pause, math.max(next_refresh - clock.monotonic(), 0.01)) end
      return pause
    end,
    check_interrupt = function() check_interrupt(w) end,
  }
  if got then return got.session, got.address end
  if code == "TIMEOUT" and not st.cut then
    -- Juju's own messages (waitSSH).
    if #order == 0 then
      return nil, string.format("waited for %s without getting any addresses", duration(timeout)), "TIMEOUT"
    end
    return nil, string.format("waited for %s without being able to connect%s", duration(timeout),
      st.last_error and (": " .. st.last_error) or ""), "TIMEOUT"
  end
  return nil, err, code
end

-- Keeps the last bytes of a stream (bounded memory whatever the output).
local function tail_buffer()
  local buf = ""
  return {
    add = function(chunk)
      buf = buf .. chunk
      if #buf > 2 * TAIL_BYTES then buf = buf:sub(-TAIL_BYTES) end
    end,
    lines = function(n)
      local lines = {}
      for l in (buf:sub(-TAIL_BYTES)):gmatch("[^\n]+") do lines[#lines + 1] = l end
      local first = math.max(1, #lines - n + 1)
      return table.concat(lines, "\n", first, #lines)
    end,
  }
end

--- The remote command that runs a script fed on stdin as root: fd 9 (the
--- script's progress channel) is the SSH stderr, everything else goes to
--- stdout (the failure dump), and the process group is recorded in
--- pid_file so that a destroy can stop a script orphaned by a dropped
--- connection. user ~= "root" runs it through `sudo -n`.
function M.root_command(user, pid_file, pause, after)
  local inner = {
    "exec 9>&2 2>&1",
    "mkdir -p " .. shell.quote(pid_file:match("^(.*)/[^/]*$") or "/"),
    "cut -d' ' -f5 /proc/$$/stat > " .. shell.quote(pid_file),
  }
  if pause and pause > 0 then
    inner[#inner + 1] = string.format("echo 'Pausing %d s before the bootstrap script (JUJU_SSHINIT_PAUSE)' >&9", pause)
    inner[#inner + 1] = string.format("sleep %d", pause)
  end
  inner[#inner + 1] = "/bin/bash -s"
  inner[#inner + 1] = "rc=$?"
  inner[#inner + 1] = "rm -f " .. shell.quote(pid_file)
  if after then
    -- after = {mark=, command=}: run when the script succeeded, its output
    -- after the mark line and its status on the last line.
    inner[#inner + 1] = "if [ $rc -eq 0 ]; then echo " .. shell.quote(after.mark) .. "; " .. after.command
      .. " < /dev/null; echo \"$?\"; fi"
  end
  inner[#inner + 1] = "exit $rc"
  local cmd = "/bin/bash -c " .. shell.quote(table.concat(inner, "; "))
  if user ~= "root" then cmd = "sudo -n " .. cmd end
  return cmd
end

--- Runs the phase-2 script as root over session, relaying its progress
--- lines (the script's fd 9) to the client's stderr as they arrive. opts:
--- user, host, port (for messages), data_dir (where the script's pid file
--- goes), log (the script's output log on the host, for messages), timeout
--- (M.SCRIPT_TIMEOUT), nonce (checked in <data_dir>/nonce.txt before the
--- script runs, in the same exec: code "NONCE" when it does not match),
--- after (a command run as root once the script succeeded, in the same
--- exec). Returns true[, {code=, stdout=} of after] or nil, message, code.
function M.run_script(w, session, script, opts)
  local ctx = w.ctx or w
  if opts.nonce then script = nonce_prelude(opts.data_dir or "/var/lib/juju", opts.nonce) .. script end
  local pending, last_progress = "", nil
  local function relay(chunk)
    pending = pending .. chunk
    while true do
      local line, rest = pending:match("^([^\n]*)\n(.*)$")
      if not line then break end
      pending = rest
      line = line:gsub("\r$", "")
      last_progress = line
      ctx:infof("%s", line)
    end
  end
  local out = tail_buffer()
  local pause = tonumber(ctx:getenv("JUJU_SSHINIT_PAUSE") or "")
  -- opts.after: its output is split off the script's at a random mark.
  local after, on_stdout = nil, out.add
  local after_out
  local pending_out = ""
  if opts.after then
    after = { mark = "juju-after-script-" .. crypto.hex(crypto.random_bytes(8)), command = opts.after }
    local parts = nil
    on_stdout = function(chunk)
      if parts then
        parts[#parts + 1] = chunk
        return
      end
      pending_out = pending_out .. chunk
      local i, j = pending_out:find(after.mark .. "\n", 1, true)
      if i then
        out.add(pending_out:sub(1, i - 1))
        parts = { pending_out:sub(j + 1) }
        after_out = parts
      elseif #pending_out > 4096 then
        out.add(pending_out:sub(1, -#after.mark - 2))
        pending_out = pending_out:sub(-#after.mark - 1)
      end
    end
  end
  local cmd = M.root_command(opts.user, (opts.data_dir or "/var/lib/juju") .. "/bootstrap-script.pgid", pause, after)
  local r, err, code = session:exec(cmd, {
    stdin = script, on_stderr = relay, on_stdout = on_stdout, collect = false,
    timeout = opts.timeout or M.SCRIPT_TIMEOUT,
  })
  if pending ~= "" then relay("\n") end
  -- Output held back while looking for the mark that never came.
  if not after_out and pending_out ~= "" then out.add(pending_out) end
  local where = string.format("%s@%s", opts.user, M.hostport(opts.host, opts.port))
  local tail = out.lines(M.TAIL_LINES)
  local function with_tail(msg)
    if last_progress then msg = msg .. "\nlast progress: " .. last_progress end
    if tail ~= "" then msg = msg .. "\nlast lines of its output:\n" .. tail end
    return msg
  end
  if not r then
    return nil, with_tail(string.format("lost the SSH connection to %s while the bootstrap script ran: %s",
      where, tostring(err))), code
  end
  if r.code == NONCE_EXIT and opts.nonce
    and (tail:find("machine nonce", 1, true) or tail:find("nonce.txt does not exist", 1, true)) then
    return nil, string.format("%s: %s", where, tail:match("([^\n]*nonce[^\n]*)$") or tail), "NONCE"
  end
  if r.code ~= 0 then
    local how = r.signal and ("killed by SIG" .. r.signal) or ("exit " .. r.code)
    if r.code == 1 and tail:find("sudo: a password is required", 1, true) then
      return nil, string.format("%s has no passwordless sudo: the bootstrap script must run as root", where), "SSH"
    end
    local msg = with_tail(string.format("the bootstrap script failed on %s (%s)", where, how))
    if opts.log then
      msg = msg .. string.format("\n(full log on the host: %s; run juju bootstrap with --keep-broken to keep the "
        .. "machine as it is for diagnosis)", opts.log)
    end
    return nil, msg, "SCRIPT"
  end
  if after_out then
    local text = table.concat(after_out)
    local body, status = text:match("^(.-)\n?(%d+)\n$")
    if body then return true, { code = math.tointeger(tonumber(status)), stdout = body, stderr = "" } end
  end
  return true
end

local function file_url_path(url)
  local p = url:match("^file://(/.*)$")
  if not p then return nil end
  return (p:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- Uploads the client's file:// tools tarball (SFTP, never through the
-- script: W17) to `remote` (the path the script was rendered with), else
-- into the login user's home; returns the remote path.
local function upload_tools(session, icfg, remote)
  local src = file_url_path(icfg.tools.url)
  if not src or not fs.exists(src) then
    return nil, string.format("cannot upload tools: %s is not a file on this machine", icfg.tools.url)
  end
  if remote then
    local sent, uerr = session:upload(src, remote, { mode = "0600" })
    if not sent then return nil, "cannot upload tools: " .. tostring(uerr) end
    return remote
  end
  local r, err = session:exec("printf '%s' \"$HOME\"", { timeout = M.CONNECT_TIMEOUT })
  if not r or r.code ~= 0 or not r.stdout:match("^/") then
    return nil, "cannot upload tools: cannot find the login user's home directory: " .. tostring(err or r.stderr)
  end
  remote = string.format("%s/juju-tools-%s-%s.tgz", r.stdout, icfg.tools.version,
    crypto.hex(crypto.random_bytes(4)))
  local sent, uerr = session:upload(src, remote, { mode = "0600" })
  if not sent then return nil, "cannot upload tools: " .. tostring(uerr) end
  return remote
end

-- The address values of an Instance (CONTRACT.md), public first, then
-- cloud-local, then machine-local; inst.refresh (optional) returns a fresh
-- Instance, for addresses that appear after start_instance.
local function instance_addresses(inst)
  if type(inst.refresh) == "function" then
    local fresh, err = inst.refresh()
    if not fresh then return nil, "refreshing addresses: " .. tostring(err) end
    inst = fresh
  end
  local out = {}
  for _, scope in ipairs({ "public", "cloud-local", "machine-local" }) do
    for _, a in ipairs(inst.addresses or {}) do
      if type(a) == "table" and a.scope == scope then out[#out + 1] = a.value end
    end
  end
  return out
end

--- The whole SSH finalizer: wait for the instance (its addresses, SSH,
--- the nonce), bring file:// tools over SFTP and render the script for
--- them, run it as root. w is the provider context (juju.context.provider:
--- cfg, clock, infof, check_interrupt); inst the Instance (id, typed
--- addresses, optional refresh and ssh_port); icfg the finished instance
--- config; script its phase-2 script. opts: user ("ubuntu"), port
--- (inst.ssh_port, else 22), host_key (pinned public key line; else
--- bootstrap-host-key), check_nonce (true), tools_file (where the script
--- expects a file:// tarball: it is uploaded there), tools_on_host (the
--- file:// URL is already a path on the host), addresses (function),
--- connect (ssh.connect replacement, for tests), say_waiting, session (an
--- open session whose host key was checked, logged in as opts.user, to
--- reuse: no new connection, the nonce checked in the script's exec, and
--- the session stays open for its owner), address (that session's host),
--- after (run_script's). Returns true[, after's result] or nil, message, code.
function M.finish(w, inst, icfg, script, opts)
  opts = opts or {}
  local cfg = w.cfg
  local target = M.target(w.ctx or w, cfg, { user = opts.user, port = opts.port or inst.ssh_port,
    host_key = opts.host_key, connect = opts.connect })
  local session, addr_or_err, code
  local borrowed = opts.session ~= nil
  if borrowed then
    session, addr_or_err = opts.session, opts.address
  else
    local check
    if opts.check_nonce ~= false then
      check = function(s) return M.check_nonce(s, icfg.data_dir, icfg.nonce) end
    end
    session, addr_or_err, code = M.wait_for_ssh(w, {
      target = target, check = check, say_waiting = opts.say_waiting,
      addresses = opts.addresses or function() return instance_addresses(inst) end,
      timeout = cfg["bootstrap-timeout"], retry_delay = cfg["bootstrap-retry-delay"],
      addresses_delay = cfg["bootstrap-addresses-delay"], retry_auth = opts.retry_auth,
    })
    if not session then return nil, addr_or_err, code end
  end
  local function done() if not borrowed then session:close() end end
  local addr = addr_or_err
  local remote_tools
  if icfg.tools.url:match("^file://") and not opts.tools_on_host then
    local err
    remote_tools, err = upload_tools(session, icfg, opts.tools_file)
    if not remote_tools then
      done()
      return nil, err
    end
    if not opts.tools_file then
      -- A caller that did not render the script for an upload path.
      local rerr
      script, rerr = cloudinit.script(icfg, { tools_file = remote_tools, agent_start = icfg.agent_start })
      if not script then
        done()
        return nil, rerr
      end
    end
  end
  local ok, err, ecode = M.run_script(w, session, script, {
    user = target.user, host = addr, port = target.port, data_dir = icfg.data_dir, log = icfg.cloud_init_output_log,
    nonce = borrowed and opts.check_nonce ~= false and icfg.nonce or nil, after = opts.after,
  })
  if remote_tools and ecode ~= "SSH" and ecode ~= "TIMEOUT" then
    session:exec("rm -f " .. shell.quote(remote_tools), { timeout = M.CONNECT_TIMEOUT })
  end
  done()
  if not ok then return nil, err, ecode end
  return true, err
end

-- Rotates the SSH host key the phase-1 user-data carried (issue 14.14):
-- run as root on machine 0 over the session verified with that key. It
-- finds the running sshd's own configuration (its listener's -f, else the
-- default), asks `sshd -T` for the host key files it serves, replaces the
-- one whose public half is the user-data's with a key made on the machine
-- (the private half never leaves it), overwrites any other copy of the old
-- key under /etc/ssh with the new one, removes cloud-init's stored copies
-- of the user-data that carried it (user-data.txt, .txt.i, cloud-config.txt,
-- obj.pkl of that instance only: nothing else on the machine is touched),
-- and prints the new public key. $1: the old key's base64 blob.
M.ROTATE_HOST_KEY_SCRIPT = [==[
set -eu
umask 077
old=$1
blob() { awk '{print $2; exit}' "$1" 2> /dev/null || true; }
pid=$$
cfg= listener=
while [ -n "$pid" ] && [ "$pid" -gt 1 ]; do
  cmd=$(tr '\000' ' ' < "/proc/$pid/cmdline" 2> /dev/null || true)
  case "$cmd" in
  *"[listener]"*|/usr/sbin/sshd\ *|sshd\ -*)
    listener=$pid
    cfg=$(printf '%s\n' "$cmd" | sed -n 's/.* -f \([^ ]*\).*/\1/p')
    break;;
  esac
  pid=$(awk '/^PPid:/ {print $2}' "/proc/$pid/status" 2> /dev/null || true)
done
[ -n "$listener" ] || { echo "no sshd listener above this session" >&2; exit 3; }
cfg=${cfg:-/etc/ssh/sshd_config}
target=
for k in $(/usr/sbin/sshd -T -f "$cfg" -C user=root,host=localhost,addr=127.0.0.1 2> /dev/null | awk '$1 == "hostkey" {print $2}'); do
  pub=$(ssh-keygen -y -f "$k" 2> /dev/null | awk '{print $2}' || true)
  if [ "$pub" = "$old" ]; then target=$k; fi
done
[ -n "$target" ] || { echo "the running sshd ($cfg) does not serve the user-data's host key" >&2; exit 4; }
rm -f "$target.juju-new" "$target.juju-new.pub"
ssh-keygen -q -t ed25519 -N '' -C "root@$(hostname)" -f "$target.juju-new"
chmod 0600 "$target.juju-new"
chmod 0644 "$target.juju-new.pub"
mv -f "$target.juju-new" "$target"
mv -f "$target.juju-new.pub" "$target.pub"
for k in /etc/ssh/ssh_host_ed25519_key; do
  if [ -f "$k" ] && [ "$k" != "$target" ] && [ "$(ssh-keygen -y -f "$k" 2> /dev/null | awk '{print $2}')" = "$old" ]; then
    cp -f "$target" "$k.juju-new" && mv -f "$k.juju-new" "$k"
    cp -f "$target.pub" "$k.pub.juju-new" && chmod 0644 "$k.pub.juju-new" && mv -f "$k.pub.juju-new" "$k.pub"
  fi
done
# cloud-init's copies, of the instance whose user-data carried the old key only
for d in /var/lib/cloud/instances/*; do
  [ -f "$d/user-data.txt" ] || continue
  if { cat "$d/user-data.txt"; gzip -dc "$d/user-data.txt" 2> /dev/null; } | grep -qF "$old"; then
    rm -f "$d/user-data.txt" "$d/user-data.txt.i" "$d/cloud-config.txt" "$d/obj.pkl"
  fi
done
echo "listener: $listener"
echo "new-host-key: $(cat "$target.pub")"
]==]

--- Rotates machine 0's host key after bootstrap: connects with the pinned
--- old key (opts.host_key) to the instance's addresses, runs
--- ROTATE_HOST_KEY_SCRIPT as root, then proves the change with two new
--- connections: pinned to the new key it is accepted, pinned to the old one
--- refused (after a SIGHUP to the listener when an sshd keeps keys loaded).
--- opts: host_key, user, port, addresses (function), connect, timeout.
--- Returns the new public key line, or nil, message, code.
function M.rotate_host_key(w, inst, opts)
  local cfg = w.cfg
  local ctx = w.ctx or w
  local old = opts.host_key
  local blob = type(old) == "string" and old:match("^%S+%s+(%S+)")
  if not blob then return nil, "rotate host key: no pinned host key to rotate", "INVALID" end
  local target = M.target(ctx, cfg, { user = opts.user, port = opts.port or inst.ssh_port, host_key = old,
    connect = opts.connect })
  local session, addr_or_err, code = M.wait_for_ssh(w, { target = target, quiet = true, say_waiting = false,
    addresses = opts.addresses or function() return instance_addresses(inst) end,
    timeout = opts.timeout or 120, retry_delay = cfg["bootstrap-retry-delay"] })
  if not session then return nil, "rotate host key: " .. tostring(addr_or_err), code end
  local addr = addr_or_err
  local r, err, ecode = session:exec("sudo -n /bin/bash -s -- " .. shell.quote(blob),
    { stdin = M.ROTATE_HOST_KEY_SCRIPT, timeout = M.CONNECT_TIMEOUT })
  session:close()
  if not r then return nil, "rotate host key: " .. tostring(err), ecode end
  local new = (r.stdout or ""):match("new%-host%-key: ([^\n]+)")
  local listener = (r.stdout or ""):match("listener: (%d+)")
  if r.code ~= 0 or not new then
    return nil, string.format("rotate host key on %s (exit %d): %s", addr, r.code,
      ((r.stderr or "") .. (r.stdout or "")):gsub("%s+$", "")), "SSH"
  end
  new = new:gsub("%s+$", "")
  -- The proof, from this side: the new key is served, the old one is not.
  local function accepted(pin)
    local t = M.target(ctx, cfg, { user = opts.user, port = target.port, host_key = pin, connect = opts.connect })
    local s2, e2, c2 = M.connect(t, addr, M.CONNECT_TIMEOUT)
    if s2 then s2:close(); return true end
    return false, e2, c2
  end
  local hupped = false
  local deadline = ctx.clock.monotonic() + 30
  while true do
    local new_ok, nerr, ncode = accepted(new)
    local old_ok, _, ocode = accepted(old)
    if new_ok and ocode == "SSH_HOSTKEY" then return new end
    if new_ok and old_ok and not hupped and listener then
      -- an sshd that keeps its keys loaded: reload it (sessions stay)
      local s3 = M.connect(M.target(ctx, cfg, { user = opts.user, port = target.port, host_key = new,
        connect = opts.connect }), addr, M.CONNECT_TIMEOUT)
      if s3 then
        s3:exec("sudo -n kill -HUP " .. listener, { timeout = M.CONNECT_TIMEOUT })
        s3:close()
      end
      hupped = true
    elseif ctx.clock.monotonic() >= deadline then
      if not new_ok then
        return nil, string.format("rotate host key: %s does not accept the new host key: %s", addr, tostring(nerr)),
          ncode
      end
      return nil, string.format("rotate host key: %s still accepts the user-data's host key", addr), "SSH"
    end
    ctx.clock.sleep(0.5)
  end
end

--- Machine 0's status documents over SSH, for any provider's state_dump:
--- runs `jujud state-dump` (read-only) as root through exec(script) ->
--- {code, stdout, stderr} | nil, message, code (a session's exec through
--- sudo, or the provider's own). Returns the decoded dump or nil, message.
--- The command that prints the state dump (no stdin).
function M.state_dump_command(data_dir)
  data_dir = data_dir or "/var/lib/juju"
  return string.format("%s/tools/machine-0/jujud state-dump --data-dir %s", shell.quote(data_dir), shell.quote(data_dir))
end

function M.state_dump(exec, data_dir)
  local r, err, code = exec("exec " .. M.state_dump_command(data_dir) .. " < /dev/null\n")
  if not r then return nil, err, code end
  if r.code ~= 0 then
    return nil, string.format("jujud state-dump (exit %d): %s", r.code, ((r.stderr or "") .. (r.stdout or "")):gsub("%s+$", ""))
  end
  local doc, jerr = require("juju.json").decode(r.stdout, "state-dump")
  if type(doc) ~= "table" then return nil, "jujud state-dump: " .. tostring(jerr) end
  return doc
end

--- state_dump over an SSH session as a user with passwordless sudo.
function M.state_dump_session(session, data_dir)
  return M.state_dump(function(script)
    return session:exec("sudo -n /bin/bash -s", { stdin = script, timeout = M.CONNECT_TIMEOUT })
  end, data_dir)
end

return M
