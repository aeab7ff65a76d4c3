-- juju.cloud.storage.manta: environ storage in Joyent's Manta object store
-- (providers.md 8.4), behind the common storage interface (docs/lua-api.md,
-- "Environ storage backends"). Every request carries an HTTP Signature made
-- with the user's SSH key (juju.cloud.sign.httpsig); url() gives a Manta
-- signed URL machine 0 can fetch without credentials.
--
--   local manta = require("juju.cloud.storage.manta")
--   local st = assert(manta.new{ url = "https://us-east.manta.joyent.com", user = "me",
--     key_file = "~/.ssh/id_rsa" (or key = pem_text), key_id = "aa:bb:..." (default: the
--     key's MD5 fingerprint), root = "stor/juju-myenv", http = {proxy = ...} })
--
-- Objects live under /<user>/<root>/<name>; Manta needs every parent
-- directory to exist, so a put that meets DirectoryDoesNotExist creates them
-- (PUT with Content-Type: application/json; type=directory, top down) and
-- tries once more. list walks the directories (one JSON entry per line,
-- paged with limit/marker); remove_all deletes depth-first, the root last.
local api = require("juju.cloud.api")
local httpsig = require("juju.cloud.sign.httpsig")
local fs = require("juju.fs")
local http = require("juju.lazy")("juju.http")
local json = require("juju.json")
local sign = require("juju.sign")
local storage = require("juju.storage")

local M = {}

local CREDENTIAL_KEYS = "manta-user, manta-key-id and private-key-path (or private-key)"
local DIR_TYPE = "application/json; type=directory"
local PAGE = 1024
local TEN_YEARS = 10 * 365 * 24 * 3600

-- Manta error codes (muskie's restCode) that mean a missing thing or bad
-- credentials; the rest keep the status's code.
local CODES = {
  ResourceNotFound = "NOT_FOUND", DirectoryDoesNotExist = "NOT_FOUND", ObjectNotFound = "NOT_FOUND",
  InvalidSignature = "AUTH", KeyDoesNotExist = "AUTH", AuthorizationFailed = "AUTH",
  AuthorizationRequired = "AUTH", AccountDoesNotExist = "AUTH", InvalidKeyId = "AUTH",
  InvalidQueryStringAuthentication = "AUTH", RequestExpired = "CLOCK", InvalidAlgorithm = "AUTH",
  DirectoryNotEmpty = "CONFLICT",
}

local function manta_error(resp)
  local doc = resp.body and resp.body ~= "" and json.decode(resp.body, "manta error")
  if type(doc) ~= "table" or type(doc.code) ~= "string" then return nil, nil end
  -- A refused Date (RequestExpired) is juju.cloud.api's CLOCK: its
  -- message already says to check this machine's clock.
  local msg = doc.code .. (type(doc.message) == "string" and (": " .. doc.message) or "")
  return CODES[doc.code], msg
end

local function error_code(eresp)
  local doc = eresp and eresp.body and json.decode(eresp.body, "manta error")
  return type(doc) == "table" and doc.code or nil
end

local function escape_path(name)
  local parts = {}
  for c in name:gmatch("[^/]+") do parts[#parts + 1] = http.url_escape(c) end
  return table.concat(parts, "/")
end

local Store = {}
Store.__index = Store

--- opts: url, user, key_file or key (PEM/OpenSSH text, or a juju.sign.Key),
--- key_id (fingerprint or "/user/keys/fp"; default the key's MD5
--- fingerprint), root (under /<user>/, default "stor/juju"), algorithm,
--- http (juju.http options), cancel, now (function -> unix time), attempts,
--- page_size (directory listing page, default 1024: Manta's maximum),
--- sign_headers (what each signature covers, default {"date"}; e.g.
--- {"(request-target)", "host", "date"}).
--- Returns the store, or nil, message, code (a key that does not load:
--- the message names private-key-path or private-key, never the key).
function M.new(opts)
  assert(type(opts) == "table", "manta.new: options table required")
  assert(type(opts.url) == "string" and type(opts.user) == "string" and opts.user ~= "",
    "manta.new: url and user required")
  local key, owned = opts.key, false
  if type(key) == "string" then
    local k, msg, code = sign.load_key(key, "private-key")
    if not k then return nil, "manta: private-key: " .. msg, code end
    key, owned = k, true
  elseif not key then
    assert(type(opts.key_file) == "string", "manta.new: key_file or key required")
    local k, msg, code = sign.load_key_file(opts.key_file)
    if not k then return nil, "manta: private-key-path: " .. msg, code end
    key, owned = k, true
  end
  local key_id = opts.key_id or key:fingerprint_md5()
  if key_id:sub(1, 1) ~= "/" then key_id = httpsig.key_id(opts.user, key_id) end
  local url = opts.url:gsub("/+$", "")
  local authority = url:match("^%a[%w+.-]*://([^/?#]*)")
  assert(authority, "manta.new: url must be absolute: " .. url)
  local root = (opts.root or "stor/juju"):gsub("^/+", ""):gsub("/+$", "")
  local self = setmetatable({
    endpoint = url, host = (authority:gsub("^.*@", "")), user = opts.user,
    page = opts.page_size or PAGE, key = key, owned = owned, sign_headers = opts.sign_headers,
    key_id = key_id, algorithm = opts.algorithm or httpsig.default_algorithm(key),
    now = opts.now or os.time, root_parts = {},
  }, Store)
  for c in root:gmatch("[^/]+") do self.root_parts[#self.root_parts + 1] = c end
  self.base = "/" .. http.url_escape(opts.user) .. "/" .. escape_path(root)
  self.client = api.new {
    name = "manta", endpoint = url, http = opts.http, cancel = opts.cancel, attempts = opts.attempts,
    errors = manta_error,
    sign = function(req)
      httpsig.sign(req, { key = self.key, key_id = self.key_id, algorithm = self.algorithm, now = self.now(),
                          headers = self.sign_headers })
    end,
  }
  return self
end

function Store:_check()
  if self.closed then error("manta storage: used after close", 3) end
end

-- The failure as the caller sees it: ENOENT for a missing thing, AUTH
-- naming the credential keys and the endpoint.
function Store:_fail(msg, code)
  if code == "NOT_FOUND" then return nil, msg, "ENOENT" end
  if code == "AUTH" then
    return nil, string.format("%s; check %s for %s", msg, CREDENTIAL_KEYS, self.endpoint), "AUTH"
  end
  return nil, msg, code
end

function Store:_path(name)
  return self.base .. "/" .. escape_path(name)
end

function Store:_request(r)
  r.idempotent = r.idempotent ~= false
  return self.client:request(r)
end

-- mkdir -p of the root and name's parent directories, top down.
function Store:_make_parents(name)
  local parts = {}
  for _, c in ipairs(self.root_parts) do parts[#parts + 1] = c end
  local comps = {}
  for c in name:gmatch("[^/]+") do comps[#comps + 1] = c end
  for i = 1, #comps - 1 do parts[#parts + 1] = comps[i] end
  local path = "/" .. http.url_escape(self.user)
  for i, c in ipairs(parts) do
    path = path .. "/" .. http.url_escape(c)
    if i > 1 or c ~= "stor" then
      local resp, msg, code = self:_request { method = "PUT", path = path,
        headers = { ["Content-Type"] = DIR_TYPE } }
      if not resp then return self:_fail(msg, code) end
    end
  end
  return true
end

function Store:_put(name, body, body_file)
  local ok, msg, code = storage.check_name(name)
  if not ok then return nil, msg, code end
  local r = { method = "PUT", path = self:_path(name), body = body, body_file = body_file,
              headers = { ["Content-Type"] = "application/octet-stream" } }
  local resp, eresp
  resp, msg, code, eresp = self:_request(r)
  if not resp and code == "NOT_FOUND" and error_code(eresp) == "DirectoryDoesNotExist" then
    ok, msg, code = self:_make_parents(name)
    if not ok then return nil, msg, code end
    resp, msg, code = self:_request(r)
  end
  if not resp then return self:_fail(msg, code) end
  return true
end

--- put(name, data) -> true
function Store:put(name, data)
  self:_check()
  assert(type(data) == "string", "manta put: data must be a string")
  return self:_put(name, data, nil)
end

--- put_file(name, path) -> size, streamed from the file.
function Store:put_file(name, path)
  self:_check()
  local st, msg, code = fs.stat(path)
  if not st then return nil, msg, code end
  local ok
  ok, msg, code = self:_put(name, nil, path)
  if not ok then return nil, msg, code end
  return st.size
end

local function is_directory(resp)
  return (resp.headers["content-type"] or ""):find("type=directory", 1, true) ~= nil
end

--- get(name) -> data
function Store:get(name)
  self:_check()
  local ok, msg, code = storage.check_name(name)
  if not ok then return nil, msg, code end
  local resp
  resp, msg, code = self:_request { method = "GET", path = self:_path(name) }
  if not resp then return self:_fail(msg, code) end
  if is_directory(resp) then return nil, "manta: " .. name .. " is a directory", "EISDIR" end
  return resp.body
end

--- get_to_file(name, path) -> size, streamed into the file (atomically).
function Store:get_to_file(name, path)
  self:_check()
  local ok, msg, code = storage.check_name(name)
  if not ok then return nil, msg, code end
  local resp
  resp, msg, code = self:_request { method = "GET", path = self:_path(name), to_file = path }
  if not resp then return self:_fail(msg, code) end
  if is_directory(resp) then
    fs.remove(path)
    return nil, "manta: " .. name .. " is a directory", "EISDIR"
  end
  local st = fs.stat(path)
  return st and st.size or resp.size
end

function Store:_head(name)
  local ok, msg, code = storage.check_name(name)
  if not ok then return nil, msg, code end
  local resp
  resp, msg, code = self:_request { method = "HEAD", path = self:_path(name) }
  if not resp then return self:_fail(msg, code) end
  return resp
end

--- exists(name) -> boolean (objects only)
function Store:exists(name)
  self:_check()
  local resp, msg, code = self:_head(name)
  if not resp then
    if code == "ENOENT" then return false end
    return nil, msg, code
  end
  return not is_directory(resp)
end

--- size(name) -> bytes
function Store:size(name)
  self:_check()
  local resp, msg, code = self:_head(name)
  if not resp then return nil, msg, code end
  if is_directory(resp) then return nil, "manta: " .. name .. " is a directory", "EISDIR" end
  return tonumber(resp.headers["content-length"])
end

-- The entries of the directory at path (all pages), or nil, msg, code.
function Store:_list_dir(path)
  local out, marker = {}, nil
  local before
  repeat
    before = #out
    local resp, msg, code = self:_request { method = "GET", path = path,
      query = { limit = self.page, marker = marker } }
    if not resp then return nil, msg, code end
    local lines = 0
    for line in resp.body:gmatch("[^\n]+") do
      lines = lines + 1
      local e, jmsg = json.decode(line, "manta listing of " .. path)
      if type(e) ~= "table" then return nil, "manta: bad directory listing: " .. tostring(jmsg), "INVALID" end
      -- Manta's page starts at the marker itself: skip it.
      if e.name ~= marker then out[#out + 1] = e end
    end
    marker = out[#out] and out[#out].name
  until lines < self.page or #out == before
  return out
end

-- Walks the tree under rel (a name prefix ending in "/" or ""), calling
-- fn(rel_name, entry, path) for every entry, children before their
-- directory when depth_first; descend(rel_dir) limits the walk.
function Store:_walk(path, rel, fn, descend, depth_first)
  local entries, msg, code = self:_list_dir(path)
  if not entries then return nil, msg, code end
  for _, e in ipairs(entries) do
    local name = rel .. e.name
    local epath = path .. "/" .. http.url_escape(e.name)
    if e.type == "directory" then
      if not descend or descend(name .. "/") then
        if not depth_first then fn(name, e, epath) end
        local ok
        ok, msg, code = self:_walk(epath, name .. "/", fn, descend, depth_first)
        -- a directory removed meanwhile is simply not there any more
        if not ok and code ~= "NOT_FOUND" then return nil, msg, code end
        if depth_first then
          ok, msg, code = fn(name, e, epath)
          if ok == nil and msg then return nil, msg, code end
        end
      end
    else
      local ok
      ok, msg, code = fn(name, e, epath)
      if ok == nil and msg then return nil, msg, code end
    end
  end
  return true
end

--- list([prefix]) -> sorted names of every object starting with prefix.
function Store:list(prefix)
  self:_check()
  prefix = prefix or ""
  local names = {}
  local ok, msg, code = self:_walk(self.base, "", function(name, e)
    if e.type ~= "directory" and name:sub(1, #prefix) == prefix then names[#names + 1] = name end
  end, function(dir)
    return dir:sub(1, #prefix) == prefix or prefix:sub(1, #dir) == dir
  end)
  if not ok then
    if code == "NOT_FOUND" then return {} end
    return self:_fail(msg, code)
  end
  table.sort(names)
  return names
end

--- remove(name) -> true, also when it is missing.
function Store:remove(name)
  self:_check()
  local ok, msg, code = storage.check_name(name)
  if not ok then return nil, msg, code end
  local resp, eresp
  resp, msg, code, eresp = self:_request { method = "DELETE", path = self:_path(name) }
  if not resp and error_code(eresp) == "DirectoryNotEmpty" then
    return nil, "manta: " .. name .. " is a directory", "EISDIR"
  end
  if not resp and code ~= "NOT_FOUND" then return self:_fail(msg, code) end
  return true
end

function Store:_delete(path)
  local resp, msg, code = self:_request { method = "DELETE", path = path }
  if not resp and code ~= "NOT_FOUND" then return nil, msg, code end
  return true
end

--- remove_all() -> true: every object and directory under the root, then
--- the root itself (never /<user>/stor).
function Store:remove_all()
  self:_check()
  local ok, msg, code = self:_walk(self.base, "", function(_, _, path) return self:_delete(path) end, nil, true)
  if not ok then
    if code == "NOT_FOUND" then return true end
    return self:_fail(msg, code)
  end
  if not (#self.root_parts == 1 and self.root_parts[1] == "stor") then
    ok, msg, code = self:_delete(self.base)
    if not ok then return self:_fail(msg, code) end
  end
  return true
end

--- url(name [, {expires = seconds}]) -> a signed URL (default 10 years, as
--- Juju's), fetchable without credentials until then.
function Store:url(name, opts)
  self:_check()
  local ok, msg, code = storage.check_name(name)
  if not ok then return nil, msg, code end
  local path = self:_path(name)
  local expires = self.now() + ((opts and opts.expires) or TEN_YEARS)
  local query = httpsig.presign { key = self.key, key_id = self.key_id, algorithm = self.algorithm,
    host = self.host, path = path, expires = expires }
  return self.endpoint .. path .. "?" .. query
end

--- close(): later calls raise; frees a key this store loaded.
function Store:close()
  if self.closed then return end
  self.closed = true
  if self.owned then self.key:close() end
end

return M
