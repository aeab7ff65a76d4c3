-- juju.cloud.storage.maas: environ storage in MAAS's file store
-- (providers.md 9.4, /api/1.0/files/), behind the common storage interface
-- (docs/lua-api.md, "Environ storage backends"), every request signed with
-- OAuth 1.0 PLAINTEXT (juju.cloud.sign.oauth).
--
--   local maas = require("juju.cloud.storage.maas")
--   local st = assert(maas.new{ server = "http://maas.example/MAAS", oauth = cfg["maas-oauth"],
--                               prefix = agent_name .. "-", http = {proxy = ...} })
--
-- MAAS files are flat: a name is stored as the filename prefix .. name, so
-- nested names ("tools/releases/x.tgz") are filenames with slashes. Put is
-- POST files/?op=add, a multipart form with fields `filename` and `file`,
-- built here (the core's HTTP has no multipart option): put_file writes the
-- form to a temporary file (the source copied through in 64 KiB chunks) and
-- streams that, so memory stays flat. Get is files/?op=get&filename= (raw
-- content, streamed with to_file); list is files/?op=list&prefix=; remove is
-- DELETE files/<name>/; url is the file's anonymous op=get_by_key URL (its
-- anon_resource_uri, resolved against the server), which never expires.
-- MAAS file calls are not retried (as Juju's).
local api = require("juju.cloud.api")
local oauth = require("juju.cloud.sign.oauth")
local crypto = require("juju.crypto")
local fs = require("juju.fs")
local http = require("juju.lazy")("juju.http")
local json = require("juju.json")
local storage = require("juju.storage")

local M = {}

local CHUNK = 64 * 1024

-- The first line of a MAAS error body (plain text, or a Django page).
local function maas_error(resp)
  local body = resp.body or ""
  local line = body:match("^%s*([^\r\n]+)")
  if not line or line:find("<", 1, true) then return nil, nil end
  return nil, line:sub(1, 200)
end

local Store = {}
Store.__index = Store

--- opts: server (maas-server, e.g. "http://host/MAAS"), oauth (the
--- maas-oauth value, or parse_key's table), prefix (filename prefix, e.g.
--- "<maas-agent-name>-"), http (juju.http options), cancel, now (function
--- -> unix time), nonce (function -> string). Returns the store, or nil,
--- message, "CONFIG" for a malformed maas-oauth (never echoing it).
function M.new(opts)
  assert(type(opts) == "table" and type(opts.server) == "string", "maas.new: server required")
  local creds = opts.oauth
  if type(creds) ~= "table" then
    local c, msg, code = oauth.parse_key(creds, "maas-oauth")
    if not c then return nil, "maas: " .. msg, code end
    creds = c
  end
  local server = opts.server:gsub("/+$", "")
  local origin = server:match("^(%a[%w+.-]*://[^/?#]*)")
  assert(origin, "maas.new: server must be an absolute URL: " .. server)
  local self = setmetatable({
    server = server, origin = origin, prefix = opts.prefix or "",
    api_path = (oauth.api_url(server):sub(#origin + 1)),
  }, Store)
  local now = opts.now or os.time
  local nonce = opts.nonce or function() return crypto.hex(crypto.random_bytes(16)) end
  self.client = api.new {
    name = "maas", endpoint = origin, http = opts.http, cancel = opts.cancel, errors = maas_error,
    sign = function(req) oauth.sign(req, creds, { timestamp = now(), nonce = nonce() }) end,
  }
  return self
end

function Store:_check()
  if self.closed then error("maas storage: used after close", 3) end
end

function Store:_fail(msg, code)
  if code == "NOT_FOUND" then return nil, msg, "ENOENT" end
  if code == "AUTH" then
    return nil, string.format("%s; check maas-oauth (\"<consumer-key>:<token-key>:<token-secret>\" from the " ..
      "MAAS user's API keys) for %s", msg, self.server), "AUTH"
  end
  return nil, msg, code
end

function Store:_files(query)
  return self.client:request { method = "GET", path = self.api_path .. "files/", query = query }
end

local function part_header(boundary, name, filename)
  local h = "--" .. boundary .. "\r\nContent-Disposition: form-data; name=\"" .. name .. "\""
  if filename then
    h = h .. "; filename=\"" .. filename:gsub("[^%w._-]", "_") .. "\"\r\nContent-Type: application/octet-stream"
  end
  return h .. "\r\n\r\n"
end

-- The multipart form around the content: head, tail, boundary.
local function form(filename)
  local boundary = "juju-" .. crypto.hex(crypto.random_bytes(16))
  local head = part_header(boundary, "filename") .. filename .. "\r\n" ..
    part_header(boundary, "file", filename:match("[^/]*$"))
  return head, "\r\n--" .. boundary .. "--\r\n", boundary
end

function Store:_add(body, body_file, boundary)
  local resp, msg, code = self.client:request {
    method = "POST", path = self.api_path .. "files/", query = { op = "add" },
    headers = { ["Content-Type"] = "multipart/form-data; boundary=" .. boundary },
    body = body, body_file = body_file,
  }
  if not resp then return self:_fail(msg, code) end
  return true
end

--- put(name, data) -> true
function Store:put(name, data)
  self:_check()
  assert(type(data) == "string", "maas put: data must be a string")
  local ok, msg, code = storage.check_name(name)
  if not ok then return nil, msg, code end
  local head, tail, boundary = form(self.prefix .. name)
  return self:_add(head .. data .. tail, nil, boundary)
end

-- Writes head, the file at src, tail to dst in chunks; returns src's size.
local function write_form(dst, head, src, tail)
  local inp, err = io.open(src, "rb")
  if not inp then return nil, "maas put_file: " .. err, "ENOENT" end
  local out
  out, err = io.open(dst, "wb")
  if not out then inp:close() return nil, "maas put_file: " .. err, "EIO" end
  out:write(head)
  local size = 0
  while true do
    local chunk = inp:read(CHUNK)
    if not chunk then break end
    size = size + #chunk
    out:write(chunk)
  end
  out:write(tail)
  inp:close()
  local ok, werr = out:close()
  if not ok then return nil, "maas put_file: " .. tostring(werr), "EIO" end
  return size
end

local function temp_dir()
  return fs.mkdtemp((os.getenv("TMPDIR") or "/tmp") .. "/juju-maas-")
end

--- put_file(name, path) -> size; the form is staged in a temporary file.
function Store:put_file(name, path)
  self:_check()
  local ok, msg, code = storage.check_name(name)
  if not ok then return nil, msg, code end
  local st
  st, msg, code = fs.stat(path)
  if not st then return nil, msg, code end
  local dir
  dir, msg, code = temp_dir()
  if not dir then return nil, msg, code end
  local head, tail, boundary = form(self.prefix .. name)
  local size
  size, msg, code = write_form(dir .. "/form", head, path, tail)
  if size then
    ok, msg, code = self:_add(nil, dir .. "/form", boundary)
  end
  fs.remove_tree(dir)
  if not size or not ok then return nil, msg, code end
  return size
end

--- get(name) -> data
function Store:get(name)
  self:_check()
  local ok, msg, code = storage.check_name(name)
  if not ok then return nil, msg, code end
  local resp
  resp, msg, code = self:_files { op = "get", filename = self.prefix .. name }
  if not resp then return self:_fail(msg, code) end
  return resp.body
end

--- get_to_file(name, path) -> size, streamed (atomically).
function Store:get_to_file(name, path)
  self:_check()
  local ok, msg, code = storage.check_name(name)
  if not ok then return nil, msg, code end
  local resp
  resp, msg, code = self.client:request { method = "GET", path = self.api_path .. "files/",
    query = { op = "get", filename = self.prefix .. name }, to_file = path }
  if not resp then return self:_fail(msg, code) end
  local st = fs.stat(path)
  return st and st.size or resp.size
end

-- The listing entries whose filename starts with prefix .. p.
function Store:_list(p)
  local resp, msg, code = self:_files { op = "list", prefix = self.prefix .. p }
  if not resp then return self:_fail(msg, code) end
  local doc, jmsg = json.decode(resp.body, "maas files listing")
  if type(doc) ~= "table" then return nil, "maas: bad files listing: " .. tostring(jmsg), "INVALID" end
  return doc
end

-- The listing entry of exactly name, or nil, msg, code (ENOENT).
function Store:_entry(name)
  local ok, msg, code = storage.check_name(name)
  if not ok then return nil, msg, code end
  local entries
  entries, msg, code = self:_list(name)
  if not entries then return nil, msg, code end
  for _, e in ipairs(entries) do
    if e.filename == self.prefix .. name then return e end
  end
  return nil, "maas: file " .. self.prefix .. name .. " not found at " .. self.server, "ENOENT"
end

--- exists(name) -> boolean
function Store:exists(name)
  self:_check()
  local e, msg, code = self:_entry(name)
  if e then return true end
  if code == "ENOENT" then return false end
  return nil, msg, code
end

--- size(name) -> bytes. MAAS lists no sizes: the content is fetched into
--- a temporary file and measured (flat memory).
function Store:size(name)
  self:_check()
  local dir, msg, code = temp_dir()
  if not dir then return nil, msg, code end
  local n
  n, msg, code = self:get_to_file(name, dir .. "/content")
  fs.remove_tree(dir)
  return n, msg, code
end

--- list([prefix]) -> sorted names (the store's prefix removed).
function Store:list(prefix)
  self:_check()
  local entries, msg, code = self:_list(prefix or "")
  if not entries then return nil, msg, code end
  local names = {}
  for _, e in ipairs(entries) do
    if type(e.filename) == "string" and e.filename:sub(1, #self.prefix) == self.prefix then
      names[#names + 1] = e.filename:sub(#self.prefix + 1)
    end
  end
  table.sort(names)
  return names
end

function Store:_delete(filename)
  local resp, msg, code = self.client:request { method = "DELETE",
    path = self.api_path .. "files/" .. http.url_escape(filename) .. "/" }
  if not resp and code ~= "NOT_FOUND" then return self:_fail(msg, code) end
  return true
end

--- remove(name) -> true, also when missing.
function Store:remove(name)
  self:_check()
  local ok, msg, code = storage.check_name(name)
  if not ok then return nil, msg, code end
  return self:_delete(self.prefix .. name)
end

--- remove_all() -> true: every file with the store's prefix.
function Store:remove_all()
  self:_check()
  local names, msg, code = self:list()
  if not names then return nil, msg, code end
  for _, n in ipairs(names) do
    local ok
    ok, msg, code = self:_delete(self.prefix .. n)
    if not ok then return nil, msg, code end
  end
  return true
end

--- url(name) -> the anonymous get_by_key URL (MAAS keys do not expire;
--- opts.expires is accepted and has no effect).
function Store:url(name, _opts)
  self:_check()
  local e, msg, code = self:_entry(name)
  if not e then return nil, msg, code end
  local anon = e.anon_resource_uri
  if type(anon) ~= "string" or anon == "" then
    return nil, "maas: file " .. self.prefix .. name .. " has no anon_resource_uri (MAAS too old?)", "UNSUPPORTED"
  end
  if anon:match("^%a[%w+.-]*://") then return anon end
  if anon:sub(1, 1) == "/" then return self.origin .. anon end
  return self.origin .. self.api_path .. "files/" .. anon
end

--- close(): later calls raise.
function Store:close()
  self.closed = true
end

return M
