-- juju.sshstorage: environ storage as a directory on a host, read and
-- written over SSH (the manual provider's storage, /var/lib/juju/storage on
-- machine 0, as Juju's sshstorage). Objects are root-owned 0600 files;
-- small writes go through `cat` on stdin, files by SFTP (put_file), so a
-- tools tarball never passes through a shell command line or a script.
--
-- The object has the methods of every environ storage backend (put,
-- put_file, get, get_to_file, exists, size, list, remove, remove_all, url,
-- close: tests/spec/storage_contract.lua) plus path and root_dir, with the
-- same error contract: nil, message, code ("ENOENT", "EISDIR", "EINVAL",
-- "SSH", ...). Methods of a closed storage raise.
local crypto = require("juju.crypto")
local shell = require("juju.shell")
local storage = require("juju.storage")

local M = {}

M.DEFAULT_ROOT = "/var/lib/juju/storage"
M.TIMEOUT = 120 -- seconds for one storage command

local Storage = {}
Storage.__index = Storage

-- Exit codes of the remote snippets.
local MISSING, IS_DIR = 3, 4

local function check_open(self)
  if self.closed then error("sshstorage: the storage is closed", 3) end
end

local function object_path(self, name)
  check_open(self)
  local ok, err, code = storage.check_name(name)
  if not ok then return nil, err, code end
  return self.root .. "/" .. name
end

local function session_of(self)
  local s, err, code = self.session()
  if not s then return nil, "environ storage on the host: " .. tostring(err), code or "SSH" end
  return s
end

-- Runs a bash snippet as root (sudo -n for other users), with stdin.
function Storage:run(snippet, stdin)
  check_open(self)
  local s, err, code = session_of(self)
  if not s then return nil, err, code end
  local cmd = "/bin/bash -c " .. shell.quote("set -e; " .. snippet)
  if self.sudo then cmd = "sudo -n " .. cmd end
  local r, eerr, ecode = s:exec(cmd, { stdin = stdin or "", timeout = self.timeout })
  if not r then
    if self.on_broken then self.on_broken() end
    return nil, "environ storage on the host: " .. tostring(eerr), ecode
  end
  return r
end

local function failed(what, name, r)
  if r.code == MISSING then return nil, string.format("%s: object %q not found", what, name), "ENOENT" end
  if r.code == IS_DIR then return nil, string.format("%s: %q is a directory (a prefix)", what, name), "EISDIR" end
  local msg = (r.stderr ~= "" and r.stderr or r.stdout):gsub("%s+$", "")
  if msg:find("a password is required", 1, true) then msg = msg .. " (the bootstrap user needs passwordless sudo)" end
  return nil, string.format("%s %q: exit %d: %s", what, name, r.code, msg), "EIO"
end

-- The listing snapshot (prime_listing): a set of names kept up to date by
-- this storage's own writes, dropped by any write whose outcome is unknown.
local function snapshot_add(self, name) if self.listing then self.listing[name] = true end end
local function snapshot_drop(self) self.listing = nil end

--- Primes list() with the names a script just read on the host (one exec
--- saved): valid while this storage is the only writer (the environment's
--- lock and the host's claim); its own writes keep it current.
function Storage:prime_listing(names)
  check_open(self)
  local set = {}
  for _, n in ipairs(names) do set[n] = true end
  self.listing = set
end

local function before_write(self)
  if self.before_write then return self.before_write() end
  return true
end

-- Runs a write snippet, with the owner's write prelude (opts.write_prelude)
-- in the same command when one is due: one exec, not two. The prelude
-- runs first in the same shell (an `exit` in it stops the write: a refusal
-- is printed and exits 0); its check reads the output. Returns r (the write's result) or nil, msg, code.
function Storage:run_write(snippet, stdin)
  local prelude, check
  if self.write_prelude then prelude, check = self.write_prelude() end
  if not prelude then
    local ok, berr, bcode = before_write(self)
    if not ok then return nil, berr, bcode end
    return self:run(snippet, stdin)
  end
  local r, rerr, rcode = self:run(prelude .. "\n" .. snippet, stdin)
  if not r then return nil, rerr, rcode end
  local ok, cerr, ccode = check(r)
  if not ok then return nil, cerr, ccode end
  return r
end

--- Writes data to object name (atomically: temp file, rename).
function Storage:put(name, data)
  if type(data) ~= "string" then error("sshstorage put: data must be a string", 2) end
  local p, err, code = object_path(self, name)
  if not p then return nil, err, code end
  local q = shell.quote(p)
  local r, rerr, rcode = self:run_write("umask 077; [ ! -d " .. q .. " ] || exit " .. IS_DIR .. "; mkdir -p -- \"$(dirname "
    .. q .. ")\"; cat > " .. q .. ".tmp.$$; mv -f -- " .. q .. ".tmp.$$ " .. q, data)
  if not r then snapshot_drop(self); return nil, rerr, rcode end
  if r.code ~= 0 then snapshot_drop(self); return failed("cannot write", name, r) end
  snapshot_add(self, name)
  return true
end

--- Uploads the file at src as object name by SFTP; returns size, sha256.
function Storage:put_file(name, src)
  local p, err, code = object_path(self, name)
  if not p then return nil, err, code end
  local sha, size, hcode = crypto.sha256_file(src)
  if not sha then return nil, size, hcode end
  local q = shell.quote(p)
  local prelude = self.write_prelude and self.write_prelude()
  local r, rerr, rcode
  if self.sudo or prelude then
    r, rerr, rcode = self:run_write("umask 077; mkdir -p -- \"$(dirname " .. q .. ")\"")
    if not r then return nil, rerr, rcode end
    if r.code ~= 0 then return failed("cannot write", name, r) end
  else
    -- As root with nothing due first: the upload makes the directories
    -- itself over SFTP (no remote command).
    local ok, berr, bcode = before_write(self)
    if not ok then return nil, berr, bcode end
  end
  local s, serr, scode = session_of(self)
  if not s then return nil, serr, scode end
  local dest = p
  if self.sudo then
    -- SFTP writes as the login user: into its home first, then into place as root.
    local home = s:exec("printf '%s' \"$HOME\"", { timeout = self.timeout })
    if not home or home.code ~= 0 or not home.stdout:match("^/") then
      return nil, "cannot write " .. name .. ": cannot find the login user's home directory", "EIO"
    end
    dest = string.format("%s/.juju-storage-upload-%s", home.stdout, crypto.hex(crypto.random_bytes(6)))
  end
  local sent, uerr, ucode = s:upload(src, dest, { mode = "0600", parents = (not self.sudo) and "0700" or nil })
  if not sent then
    snapshot_drop(self)
    if self.on_broken then self.on_broken() end
    return nil, string.format("cannot upload %s to %s: %s", src, name, tostring(uerr)), ucode
  end
  if self.sudo then
    r, rerr, rcode = self:run("install -m 0600 -- " .. shell.quote(dest) .. " " .. q .. "; rm -f -- "
      .. shell.quote(dest))
    if not r then snapshot_drop(self); return nil, rerr, rcode end
    if r.code ~= 0 then snapshot_drop(self); return failed("cannot write", name, r) end
  end
  if sent ~= size then
    snapshot_drop(self)
    return nil, string.format("cannot upload %s to %s: sent %d of %d bytes", src, name, sent, size), "EIO"
  end
  snapshot_add(self, name)
  return size, sha
end

--- The content of object name.
function Storage:get(name)
  local p, err, code = object_path(self, name)
  if not p then return nil, err, code end
  local q = shell.quote(p)
  local r, rerr, rcode = self:run("[ ! -d " .. q .. " ] || exit " .. IS_DIR .. "; [ -f " .. q .. " ] || exit "
    .. MISSING .. "; cat -- " .. q)
  if not r then return nil, rerr, rcode end
  if r.code ~= 0 then return failed("cannot read", name, r) end
  return r.stdout
end

--- The size in bytes of object name.
function Storage:size(name)
  local p, err, code = object_path(self, name)
  if not p then return nil, err, code end
  local q = shell.quote(p)
  local r, rerr, rcode = self:run("[ ! -d " .. q .. " ] || exit " .. IS_DIR .. "; [ -f " .. q .. " ] || exit "
    .. MISSING .. "; stat -c %s -- " .. q)
  if not r then return nil, rerr, rcode end
  if r.code ~= 0 then return failed("cannot stat", name, r) end
  return math.tointeger(tonumber(r.stdout:match("%d+")))
end

--- Downloads object name into the local file dst by SFTP (streamed;
--- written 0600 through a temp file, so a failure leaves no dst).
--- Returns the size. A sudo login user gets a copy in its home first, as
--- objects are root's 0600 files.
function Storage:get_to_file(name, dst)
  local p, err, code = object_path(self, name)
  if not p then return nil, err, code end
  local q = shell.quote(p)
  local src = p
  local snippet = "[ ! -d " .. q .. " ] || exit " .. IS_DIR .. "; [ -f " .. q .. " ] || exit " .. MISSING
  local tmp
  if self.sudo then
    tmp = ".juju-storage-download-" .. crypto.hex(crypto.random_bytes(6))
    snippet = snippet .. '; h=$(getent passwd "$SUDO_USER" | cut -d: -f6); install -m 0600 -o "$SUDO_USER" -- '
      .. q .. ' "$h/' .. tmp .. '"; printf %s "$h/' .. tmp .. '"'
  end
  local r, rerr, rcode = self:run(snippet)
  if not r then return nil, rerr, rcode end
  if r.code ~= 0 then return failed("cannot read", name, r) end
  if tmp then src = r.stdout end
  local s, serr, scode = session_of(self)
  if not s then return nil, serr, scode end
  local got, derr, dcode = s:download(src, dst, { mode = "0600" })
  if tmp then s:exec("rm -f -- " .. shell.quote(src), { timeout = self.timeout }) end
  if not got then
    if self.on_broken and dcode ~= "ENOENT" then self.on_broken() end
    return nil, string.format("cannot download %s to %s: %s", name, dst, tostring(derr)), dcode
  end
  return got
end

--- Whether object name exists (false on any failure).
function Storage:exists(name)
  local p = object_path(self, name)
  if not p then return false end
  local r = self:run("[ -f " .. shell.quote(p) .. " ]")
  return r ~= nil and r.code == 0
end

--- Sorted names of all objects whose names start with prefix.
function Storage:list(prefix)
  prefix = prefix or ""
  check_open(self)
  if self.listing then
    local out = {}
    for n in pairs(self.listing) do
      if n:sub(1, #prefix) == prefix then out[#out + 1] = n end
    end
    table.sort(out)
    return out
  end
  local q = shell.quote(self.root)
  local r, rerr, rcode = self:run("[ -d " .. q .. " ] || exit 0; cd -- " .. q
    .. " && find . -type f ! -name '*.tmp.*' -print")
  if not r then return nil, rerr, rcode end
  if r.code ~= 0 then return failed("cannot list", prefix, r) end
  local out = {}
  for line in r.stdout:gmatch("[^\n]+") do
    local n = line:gsub("^%./", "")
    if n:sub(1, #prefix) == prefix then out[#out + 1] = n end
  end
  table.sort(out)
  return out
end

--- Removes object name (fine when missing).
function Storage:remove(name)
  local p, err, code = object_path(self, name)
  if not p then return nil, err, code end
  local q = shell.quote(p)
  local r, rerr, rcode = self:run("[ ! -d " .. q .. " ] || exit " .. IS_DIR .. "; rm -f -- " .. q)
  if not r then snapshot_drop(self); return nil, rerr, rcode end
  if r.code ~= 0 then snapshot_drop(self); return failed("cannot remove", name, r) end
  if self.listing then self.listing[name] = nil end
  return true
end

--- Removes every object and the root directory.
function Storage:remove_all()
  local r, rerr, rcode = self:run("rm -rf -- " .. shell.quote(self.root))
  if not r then snapshot_drop(self); return nil, rerr, rcode end
  if r.code ~= 0 then snapshot_drop(self); return failed("cannot remove", self.root, r) end
  if self.listing then self.listing = {} end
  return true
end

local function url_escape(s)
  return (s:gsub("[^%w%-%._~/]", function(c) return string.format("%%%02X", c:byte()) end))
end

--- "file://<root>/<name>": a path on the host, where the phase-2 script
--- finds the object (tools put here need no upload). It never expires, so
--- opts.expires is accepted and ignored. url("") is the root's URL.
function Storage:url(name, opts)
  local _ = opts
  check_open(self)
  if name == "" then return "file://" .. url_escape(self.root .. "/") end
  local p, err, code = object_path(self, name)
  if not p then return nil, err, code end
  return "file://" .. url_escape(p)
end

--- Marks the storage closed (the session is the caller's); later calls raise.
function Storage:close()
  self.closed = true
  return true
end

--- The object's path on the host.
function Storage:path(name) return self.root .. "/" .. name end

--- The storage root on the host.
function Storage:root_dir() return self.root end

--- A storage object. opts: session (function() -> session | nil, msg,
--- code; called for every operation, so it may connect lazily), root
--- (M.DEFAULT_ROOT), sudo (true when the login user is not root),
--- before_write (function() -> true | nil, msg, code: runs before any
--- write), write_prelude (function() -> snippet, check | nil: a snippet run
--- as root in the same command just before a write, when one is due, and
--- check(r) -> true | nil, msg, code reading its output; it replaces
--- before_write for that write), on_broken (called when the session fails), timeout (M.TIMEOUT).
function M.new(opts)
  if type(opts) ~= "table" or type(opts.session) ~= "function" then
    error("sshstorage.new: opts.session (a function returning a session) is required", 2)
  end
  local root = opts.root or M.DEFAULT_ROOT
  if type(root) ~= "string" or not root:match("^/") then error("sshstorage.new: root must be an absolute path", 2) end
  return setmetatable({
    session = opts.session, root = root:gsub("/+$", ""), sudo = opts.sudo == true,
    before_write = opts.before_write, write_prelude = opts.write_prelude, on_broken = opts.on_broken, timeout = opts.timeout or M.TIMEOUT,
  }, Storage)
end

return M
