-- juju.environs.configstore: the .jenv store (spec 2.2, 2.3; users-and-cli 2.8).
--
-- JUJU_HOME/environments/NAME.jenv, mode 0600 in a 0700 directory; created
-- exclusively (a concurrent prepare gets "environment info already exists"),
-- rewritten atomically (write, fsync, rename), always under env.lock. The
-- lock is an flock, so it dies with its holder (no lock breaking needed).
local fs = require("juju.fs")
local sys = require("juju.sys")
local yaml = require("juju.yaml")

local M = {}

local MODE_FILE = tonumber("600", 8)
local MODE_DIR = tonumber("700", 8)
M.LOCK_TIMEOUT = 5
-- A .jenv is a few KiB: a larger one, a FIFO or a device is refused, not read forever.
M.MAX_SIZE = 16 * 1024 * 1024

local Store = {}
Store.__index = Store

--- Opens the store under home. Nothing is created until something is
--- written (create, write, lock, ensure_dir): reading a store that does not
--- exist must not create JUJU_HOME.
function M.open(ctx, home)
  local dir = home .. "/environments"
  local st = fs.stat(dir)
  if st and st.mode ~= MODE_DIR then
    ctx:log_for("juju.environs.configstore"):warningf("permission of %q is %q", dir, string.format("%o", st.mode))
  end
  return setmetatable({ ctx = ctx, home = home, dir = dir }, Store)
end

--- Creates JUJU_HOME and environments/ (0700) when missing; true or nil, message.
function Store:ensure_dir()
  local ok, err = fs.mkdir_p(self.dir, MODE_DIR)
  if not ok then
    return nil, string.format("cannot create environment info directory: %s\nCheck that JUJU_HOME (%s) is writable.",
      err, self.home)
  end
  return true
end

--- Juju's environment name rule (environs/config: "environment name contains
--- unsafe characters"), checked before any file named after the environment
--- is touched: no "/" or "\\" (so no "../x" outside JUJU_HOME), no NUL, not
--- empty. Returns true or nil, message, "EINVAL".
function M.check_name(name)
  if type(name) ~= "string" or name == "" then
    return nil, "the name of the environment must be specified", "EINVAL"
  end
  if name:find("[/\\%z]") then
    return nil, string.format("environment name contains unsafe characters: %q", name), "EINVAL"
  end
  return true
end

-- NAME's file in the store with suffix (".jenv", ".bootstrap.lock"); raises
-- for a name check_name refuses (callers check it first).
function Store:file(name, suffix)
  local ok, err = M.check_name(name)
  if not ok then error(err, 2) end
  return self.dir .. "/" .. name .. suffix
end

function Store:path(name) return self:file(name, ".jenv") end

--- Takes env.lock for op ("reading", "writing", "destroying"); returns a
--- lock to close (usable as `local l <close> = store:lock("writing")`).
function Store:lock(op)
  local okd, derr = self:ensure_dir()
  if not okd then return nil, derr end
  local l, err = fs.lock(self.dir .. "/env.lock", {
    timeout = M.LOCK_TIMEOUT,
    message = string.format("pid: %d, operation: %s", sys.getpid(), op),
  })
  if not l then return nil, "cannot lock the environment info store: " .. err end
  return l
end

--- The per-environment operation lock (NAME.bootstrap.lock, kept under
--- its Juju 1.25 name): bootstrap and destroy-environment both hold it, so
--- neither runs while the other does (issue 14.4). op is "bootstrap" or
--- "destroy-environment". Never waits. Returns the lock, or nil, message,
--- code: LOCKED names the holder's pid and operation; any other failure
--- (a full disk, a long name) is reported as what it is.
function Store:env_lock(name, op)
  local okd, derr = self:ensure_dir()
  if not okd then return nil, derr end
  local path = self:file(name, ".bootstrap.lock")
  local lock, lerr, lcode = fs.lock(path, {
    timeout = 0, message = string.format("pid: %d, operation: %s", sys.getpid(), op),
  })
  if lock then return lock end
  if lcode ~= "LOCKED" then
    return nil, string.format("cannot take the %s lock of environment %q: %s", op, name, tostring(lerr)), lcode
  end
  local holder = fs.lock_holder(path) or lerr
  local doing = holder:find("operation: destroy-environment", 1, true) and "destroyed" or "bootstrapped"
  return nil, string.format("environment %q is being %s by another juju process (%s)", name, doing, holder), "LOCKED"
end

local order = { "user", "password", "environ-uuid", "server-uuid", "state-servers",
  "server-hostnames", "ca-cert", "bootstrap-config", "bootstrap-journal" }

local function encode(info)
  local doc = {}
  for _, k in ipairs(order) do doc[k] = info[k] end
  if doc["environ-uuid"] == "" then doc["environ-uuid"] = nil end
  doc["state-servers"] = yaml.array(doc["state-servers"] or {})
  if doc["server-hostnames"] and #doc["server-hostnames"] == 0 then doc["server-hostnames"] = nil end
  if doc["bootstrap-config"] and next(doc["bootstrap-config"]) == nil then doc["bootstrap-config"] = nil end
  yaml.ordered(doc, order)
  return yaml.encode(doc)
end

--- Reads NAME.jenv: info table, or nil, message, code ("ENOENT" when absent,
--- "CORRUPT" when unreadable).
function Store:read(name)
  local okn, nerr, ncode = M.check_name(name)
  if not okn then return nil, nerr, ncode end
  local path = self:path(name)
  local text, err, code = fs.read_file(path, { max_size = M.MAX_SIZE })
  if not text then
    if code == "ENOENT" then return nil, err, code end
    return nil, string.format("error reading environment info %q: %s", path, err), code
  end
  if text:match("^%s*$") then return { empty = true, path = path } end
  local doc, perr = yaml.decode(text, path)
  if doc == nil or type(doc) ~= "table" then
    return nil, string.format("error reading environment info %q: %s\n"
      .. "The file is corrupt: remove it (juju destroy-environment --force %s) and bootstrap again.",
      path, perr or "not a mapping", name), "CORRUPT"
  end
  doc.path = path
  return doc
end

function Store:exists(name) return M.check_name(name) and fs.exists(self:path(name)) or false end

--- Creates NAME.jenv exclusively; "environment info already exists" (code
--- "EEXIST") if it appeared meanwhile.
function Store:create(name, info)
  local okn, nerr, ncode = M.check_name(name)
  if not okn then return nil, nerr, ncode end
  local okd, derr = self:ensure_dir()
  if not okd then return nil, derr end
  local ok, err, code = fs.create_exclusive(self:path(name), encode(info), MODE_FILE)
  if not ok then
    if code == "EEXIST" then return nil, "environment info already exists", code end
    return nil, string.format("cannot create environment info %q: %s", name, err), code
  end
  return true
end

--- Rewrites NAME.jenv atomically.
function Store:write(name, info)
  local okn, nerr, ncode = M.check_name(name)
  if not okn then return nil, nerr, ncode end
  local okd, derr = self:ensure_dir()
  if not okd then return nil, derr end
  local ok, err, code = fs.write_atomic(self:path(name), encode(info), MODE_FILE)
  if not ok then return nil, string.format("cannot write environment info %q: %s", name, err), code end
  return true
end

function Store:remove(name)
  local okn, nerr, ncode = M.check_name(name)
  if not okn then return nil, nerr, ncode end
  local ok, err, code = fs.remove(self:path(name))
  if not ok and code ~= "ENOENT" then return nil, err, code end
  return true
end

return M
