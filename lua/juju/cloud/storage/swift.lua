-- juju.cloud.storage.swift: environ storage in an OpenStack Swift container
-- (the openstack provider's control-bucket), behind the one storage
-- interface (tests/spec/storage_contract.lua).
--
--   local st = assert(swift.new{ keystone = ks, container = cfg["control-bucket"] })
--   st:put("provider-state", text); st:put_file("tools/x.tgz", path)
--   local url = st:url("tools/x.tgz", { expires = 3600 })  -- a temp URL
--
-- Requests: PUT <object-store>/<container> (created on the first write, 201
-- or 202), PUT/GET/HEAD/DELETE <object-store>/<container>/<name>, listings
-- GET <container>?format=json&prefix=&limit=&marker= page by page. url()
-- gives a Swift temp URL (tempurl middleware: temp_url_sig = hex
-- HMAC-SHA1(key, "GET\n<expires>\n<path>") under the account's
-- X-Account-Meta-Temp-URL-Key, set to a random key when the account has
-- none), not Juju 1.x's world-readable container.
local api = require("juju.cloud.api")
local crypto = require("juju.crypto")
local fs = require("juju.fs")
local http = require("juju.lazy")("juju.http")
local json = require("juju.json")
local mac = require("juju.mac")
local storage = require("juju.storage")
local sys = require("juju.sys")

local M = {}

local Swift = {}
Swift.__index = Swift

M.PAGE_SIZE = 1000
M.DEFAULT_URL_EXPIRES = 86400

-- The first line of Swift's (HTML or plain) error body, tags stripped.
local function swift_errors(resp)
  local text = (resp.body or ""):gsub("<[^>]*>", " "):gsub("%s+", " "):gsub("^ ", ""):gsub(" $", "")
  if text ~= "" then return nil, text:sub(1, 200) end
end

-- Each /-separated part escaped, the slashes kept.
local function escape_path(name)
  return (name:gsub("[^/]+", function(part) return http.url_escape(part) end))
end

--- opts: keystone (a juju.cloud.keystone client; the object-store endpoint
--- comes from its catalog, region and endpoint_type as it is configured or
--- as opts.region / opts.endpoint_type say) or endpoint (the storage URL)
--- with token; container; http (juju.http options); cancel; page_size
--- (listing page, default 1000); clock ({time=}, for temp URL expiry);
--- create (default true: the container is made on the first write; false:
--- it must exist, and writes to a missing one fail with NOT_FOUND).
--- Returns the store, or nil, message, code.
function M.new(opts)
  if type(opts) ~= "table" then error("swift.new: options table required", 2) end
  local c = opts.container
  if type(c) ~= "string" or c == "" or c:find("/", 1, true) or #c > 256 then
    return nil, string.format("swift: container name %q must be 1-256 characters without '/'", tostring(c)), "EINVAL"
  end
  local endpoint, sign
  local ks = opts.keystone
  if ks then
    local url, msg, code = ks:endpoint("object-store", { region = opts.region, endpoint_type = opts.endpoint_type })
    if not url then return nil, msg, code end
    endpoint = url
    sign = function(req) ks:sign(req) end
  else
    if type(opts.endpoint) ~= "string" or type(opts.token) ~= "string" then
      error("swift.new: keystone, or endpoint and token, required", 2)
    end
    endpoint = opts.endpoint:gsub("/+$", "")
    local token = opts.token
    sign = function(req) req.headers["X-Auth-Token"] = token end
  end
  local u = http.parse_url(endpoint)
  if not u or not u.host then
    return nil, string.format("swift: object-store endpoint %q is not a URL", http.safe_url(endpoint)), "EINVAL"
  end
  return setmetatable({
    ks = ks, container = c, endpoint = endpoint,
    account_path = http.url_unescape((u.path or ""):gsub("/+$", "")),
    client = api.new { name = "swift", endpoint = endpoint, sign = sign, errors = swift_errors,
                       http = opts.http, cancel = opts.cancel },
    page_size = opts.page_size or M.PAGE_SIZE, create = opts.create ~= false,
    clock = opts.clock or { time = sys.time },
  }, Swift)
end

function Swift:_check()
  if self.closed then error("swift storage: used after close", 3) end
end

function Swift:_request(r)
  if self.ks then return self.ks:request(self.client, r) end
  return self.client:request(r)
end

function Swift:_object_path(name)
  return "/" .. http.url_escape(self.container) .. "/" .. escape_path(name)
end

-- Creates the container once (PUT is idempotent: 201 new, 202 existing).
function Swift:_ensure_container(again)
  if (self.container_ready and not again) or not self.create then return true end
  local resp, msg, code = self:_request { method = "PUT", path = "/" .. http.url_escape(self.container),
                                          idempotent = true }
  if not resp then return nil, "swift: creating container " .. self.container .. ": " .. msg, code end
  self.container_ready = true
  return true
end

local function enoent(msg, code)
  if code == "NOT_FOUND" then return nil, msg, "ENOENT" end
  return nil, msg, code
end

-- PUTs an object (body or body_file), creating the container first, and
-- again if it went away meanwhile.
function Swift:_put(name, r)
  local ok, msg, code = storage.check_name(name)
  if not ok then return nil, msg, code end
  ok, msg, code = self:_ensure_container()
  if not ok then return nil, msg, code end
  r.method, r.path, r.idempotent = "PUT", self:_object_path(name), true
  local resp, emsg, ecode = self:_request(r)
  if not resp and ecode == "NOT_FOUND" and self.create then
    ok, msg, code = self:_ensure_container(true)
    if not ok then return nil, msg, code end
    resp, emsg, ecode = self:_request(r)
  end
  if not resp then return nil, emsg, ecode end
  return resp
end

--- put(name, data) -> true. Swift checks the ETag (MD5) it is sent.
function Swift:put(name, data)
  self:_check()
  if type(data) ~= "string" then error("swift put: data must be a string", 2) end
  local resp, msg, code = self:_put(name, {
    body = data,
    headers = { ["Content-Type"] = "application/octet-stream", ETag = crypto.hex(mac.digest("md5", data)) },
  })
  if not resp then return nil, msg, code end
  return true
end

--- put_file(name, path) -> size, streamed from the file (and hashed for the
--- ETag in a first streamed pass).
function Swift:put_file(name, path)
  self:_check()
  local md5, size, fcode = mac.file("md5", path)
  if not md5 then return nil, "swift put_file " .. tostring(name) .. ": " .. size, fcode end
  local resp, msg, code = self:_put(name, {
    body_file = path,
    headers = { ["Content-Type"] = "application/octet-stream", ETag = crypto.hex(md5) },
  })
  if not resp then return nil, msg, code end
  return size
end

function Swift:get(name)
  self:_check()
  local ok, msg, code = storage.check_name(name)
  if not ok then return nil, msg, code end
  local resp, emsg, ecode = self:_request { method = "GET", path = self:_object_path(name), idempotent = true }
  if not resp then return enoent(emsg, ecode) end
  return resp.body
end

--- get_to_file(name, path) -> size, streamed; the file appears only when
--- the whole object arrived.
function Swift:get_to_file(name, path)
  self:_check()
  local ok, msg, code = storage.check_name(name)
  if not ok then return nil, msg, code end
  local resp, emsg, ecode = self:_request { method = "GET", path = self:_object_path(name), to_file = path,
                                            idempotent = true }
  if not resp then return enoent(emsg, ecode) end
  return resp.size or assert(fs.stat(path)).size
end

function Swift:_head(name)
  local ok, msg, code = storage.check_name(name)
  if not ok then return nil, msg, code end
  return self:_request { method = "HEAD", path = self:_object_path(name), idempotent = true }
end

function Swift:exists(name)
  self:_check()
  local resp, msg, code = self:_head(name)
  if resp then return true end
  if code == "NOT_FOUND" then return false end
  return nil, msg, code
end

function Swift:size(name)
  self:_check()
  local resp, msg, code = self:_head(name)
  if not resp then return enoent(msg, code) end
  local n = tonumber(resp.headers["content-length"])
  if not n then
    return nil, "swift: HEAD " .. self.container .. "/" .. name .. ": no Content-Length in the answer", "HTTP"
  end
  return math.tointeger(n) or n
end

--- list([prefix]) -> sorted names, every page (marker = the last name),
--- until an empty one.
function Swift:list(prefix)
  self:_check()
  local names, marker = {}, nil
  repeat
    local q = { format = "json", limit = self.page_size, prefix = (prefix ~= "" and prefix) or nil, marker = marker }
    local resp, msg, code = self:_request { method = "GET", path = "/" .. http.url_escape(self.container),
                                            query = q, idempotent = true }
    if not resp then
      if code == "NOT_FOUND" then break end -- no container yet: nothing stored
      return nil, msg, code
    end
    local page, jerr = json.decode(resp.status == 204 and "[]" or resp.body, "swift listing of " .. self.container)
    if type(page) ~= "table" then return nil, "swift: " .. tostring(jerr), "HTTP" end
    for _, item in ipairs(page) do
      if type(item) == "table" and type(item.name) == "string" then names[#names + 1] = item.name end
    end
    marker = page[#page] and page[#page].name
    -- Until an empty page: a cloud may cap a page below page_size (Swift's
    -- container_listing_limit), so a short page is not the end.
  until not marker
  table.sort(names)
  return names
end

function Swift:remove(name)
  self:_check()
  local ok, msg, code = storage.check_name(name)
  if not ok then return nil, msg, code end
  local resp, emsg, ecode = self:_request { method = "DELETE", path = self:_object_path(name), idempotent = true }
  if resp or ecode == "NOT_FOUND" then return true end
  return nil, emsg, ecode
end

--- remove_all(): every object, then the container (Swift refuses to delete
--- a non-empty one: 409, tried again after another sweep).
function Swift:remove_all()
  self:_check()
  local msg, code
  for _ = 1, 3 do
    local names
    names, msg, code = self:list()
    if not names then return nil, msg, code end
    for _, n in ipairs(names) do
      local ok, rmsg, rcode = self:remove(n)
      if not ok then return nil, rmsg, rcode end
    end
    local resp
    resp, msg, code = self:_request { method = "DELETE", path = "/" .. http.url_escape(self.container),
                                      idempotent = true }
    if resp or code == "NOT_FOUND" then
      self.container_ready = false
      return true
    end
    if code ~= "CONFLICT" then break end
  end
  return nil, msg, code
end

-- The account's temp URL key: read once (HEAD account), or set to a random
-- one when it has none.
function Swift:_temp_url_key()
  if self.temp_key then return self.temp_key end
  local resp, msg, code = self:_request { method = "HEAD", url = self.endpoint, idempotent = true }
  if not resp then return nil, "swift: reading the account's temp URL key: " .. msg, code end
  local key = resp.headers["x-account-meta-temp-url-key"]
  if not key or key == "" then
    key = crypto.hex(crypto.random_bytes(16))
    resp, msg, code = self:_request { method = "POST", url = self.endpoint, idempotent = true,
                                      headers = { ["X-Account-Meta-Temp-URL-Key"] = key } }
    if not resp then return nil, "swift: setting the account's temp URL key: " .. msg, code end
  end
  self.temp_key = key
  return key
end

--- url(name [, {expires = seconds}]) -> a temp URL machine 0 can GET
--- without a token, valid for expires seconds (default a day).
function Swift:url(name, opts)
  self:_check()
  local ok, msg, code = storage.check_name(name)
  if not ok then return nil, msg, code end
  local key
  key, msg, code = self:_temp_url_key()
  if not key then return nil, msg, code end
  local expires = math.floor(self.clock.time()) + math.floor((opts and opts.expires) or M.DEFAULT_URL_EXPIRES)
  local path = self.account_path .. "/" .. self.container .. "/" .. name
  local sig = crypto.hex(mac.hmac("sha1", key, "GET\n" .. expires .. "\n" .. path))
  return string.format("%s%s?temp_url_sig=%s&temp_url_expires=%d", self.endpoint, self:_object_path(name),
    sig, expires)
end

function Swift:close()
  self.closed = true
end

return M
