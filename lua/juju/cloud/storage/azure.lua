-- juju.cloud.storage.azure: environ storage in an Azure blob container
-- (providers.md 7.5), behind the one storage interface (docs/lua-api.md,
-- "Environ storage backends"; tests/spec/storage_contract.lua), over
-- juju.cloud.api with SharedKey on every attempt and a service SAS for url().
--
--   local st = assert(azure.new{ account = "acct", key = base64_key,
--     container = "juju-env-private", endpoint = "http://127.0.0.1:10000/devstoreaccount1" })
--
-- Objects are block blobs. put_file streams: up to block_size (4 MiB) one Put
-- Blob from the file (the core streams body_file); larger files go as Put
-- Block calls of block_size bytes each, read from the file one block at a
-- time (memory stays at one block), then one Put Block List.
-- Messages never hold the key or a SAS signature (api.lua redacts sig=).
local api = require("juju.cloud.api")
local sign = require("juju.cloud.sign.azure")
local crypto = require("juju.crypto")
local fs = require("juju.fs")
local http = require("juju.lazy")("juju.http")
local storage = require("juju.storage")
local xml = require("juju.lazy")("juju.xml")

local M = {}

local Store = {}
Store.__index = Store

M.BLOCK_SIZE = 4 * 1024 * 1024
--- url() validity when no expires is given: Juju 1.25's azure storage gave
--- its SAS URLs ten years.
M.URL_EXPIRES = 10 * 365 * 24 * 3600

-- Azure error codes (x-ms-error-code / <Error><Code>) -> stable codes.
local ERROR_CODES = {
  AuthenticationFailed = "AUTH", AuthorizationFailure = "AUTH",
  AuthorizationPermissionMismatch = "AUTH", InvalidAuthenticationInfo = "AUTH",
  AccountIsDisabled = "AUTH", InsufficientAccountPermissions = "AUTH",
  BlobNotFound = "NOT_FOUND", ContainerNotFound = "NOT_FOUND", ResourceNotFound = "NOT_FOUND",
  ContainerAlreadyExists = "CONFLICT", ContainerBeingDeleted = "CONFLICT", BlobAlreadyExists = "CONFLICT",
  LeaseIdMissing = "CONFLICT", ServerBusy = "THROTTLED", OperationTimedOut = "THROTTLED",
  InvalidBlockList = "INVALID", InvalidBlockId = "INVALID", RequestBodyTooLarge = "QUOTA",
  InvalidHeaderValue = "INVALID", InvalidQueryParameterValue = "INVALID",
}

-- AuthenticationErrorDetail phrases that mean the clocks disagree
-- ("Request date header too old: ...", SAS "not valid in the specified time frame").
local SKEW_PHRASES = { "date header too old", "in the future", "specified time frame" }

local function child(el, name)
  for _, c in ipairs(el and el.children or {}) do
    if c.name == name then return c end
  end
end

-- The Azure error code of a failed response (header first: HEAD has no body).
local function error_code(resp)
  local code = resp.headers and resp.headers["x-ms-error-code"]
  local root = resp.body and resp.body ~= "" and xml.decode(resp.body, "azure error body")
  if root and root.name == "Error" then
    code = code or (child(root, "Code") or {}).text
    return code, root
  end
  return code
end

-- api.lua's errors hook: the stable code and "Code: first line of Message".
-- AuthenticationErrorDetail is left out (real Azure quotes the request's
-- signature in it) except for a hint when it is about the request's date.
local function parse_error(resp)
  local code, root = error_code(resp)
  if not code then return nil end
  local text = code
  local message = root and (child(root, "Message") or {}).text
  -- azurite repeats the message as the reason phrase, which api.lua shows
  local reason = (resp.reason or ""):gsub("%s+$", "")
  message = message and message:match("^[^\r\n]*") or ""
  if message ~= "" and (reason == "" or message:sub(1, #reason) ~= reason) then
    text = text .. ": " .. message
  end
  -- Only Azure's own skew phrases: a signature mismatch's detail quotes the
  -- string-to-sign, x-ms-date included, so "date" alone says nothing.
  local detail = root and (child(root, "AuthenticationErrorDetail") or {}).text or ""
  -- A refused date is juju.cloud.api's CLOCK (its message says what to
  -- check), with Azure's own detail: it names dates, never the MAC.
  for _, phrase in ipairs(SKEW_PHRASES) do
    if detail:lower():find(phrase, 1, true) then return "CLOCK", text .. ": " .. detail:match("^[^\r\n]*") end
  end
  return ERROR_CODES[code], text
end

local function valid_container(name)
  return type(name) == "string" and #name >= 3 and #name <= 63 and name:match("^[a-z0-9][a-z0-9-]*$")
    and not name:find("--", 1, true) and name:sub(-1) ~= "-"
end

--- opts: account, key (the account key, base64 as Azure shows it), container,
--- endpoint (default https://<account>.blob.core.windows.net; azurite:
--- http://127.0.0.1:PORT/devstoreaccount1), http (juju.http options: proxy,
--- ca_file, timeout ...), cancel, create (default true: make the container,
--- an existing one is fine), version (x-ms-version, default sign.VERSION),
--- zero_length (see juju.cloud.sign.azure; azurite with a version before
--- 2015-02-21 needs "empty"), block_size, page_size (List
--- Blobs maxresults), clock (function -> epoch seconds, default os.time),
--- account_key_name (how messages name the account setting, default
--- "storage-account-name"), key_hint (where the key came from, for messages).
--- Returns the store, or nil, message, code (EINVAL for bad options, AUTH
--- for a refused key, the api's codes otherwise).
function M.new(opts)
  if type(opts) ~= "table" then error("azure storage: options table required", 2) end
  local key_setting = opts.account_key_name or "storage-account-name"
  if type(opts.account) ~= "string" or not opts.account:match("^[a-z0-9]+$") then
    return nil, string.format("azure storage: %s %q is not a storage account name (lower-case letters and digits)",
      key_setting, tostring(opts.account)), "EINVAL"
  end
  local key = type(opts.key) == "string" and opts.key ~= "" and crypto.unbase64(opts.key)
  if not key or key == "" then
    return nil, string.format("azure storage: the access key of storage account %q is not valid base64", opts.account),
      "EINVAL"
  end
  if not valid_container(opts.container) then
    return nil, string.format("azure storage: %q is not a valid container name (3-63 lower-case letters, digits, " ..
      "single hyphens)", tostring(opts.container)), "EINVAL"
  end
  local endpoint = (opts.endpoint or ("https://" .. opts.account .. ".blob.core.windows.net")):gsub("/+$", "")
  local self = setmetatable({
    account = opts.account, container = opts.container, endpoint = endpoint,
    version = opts.version or sign.VERSION, zero_length = opts.zero_length,
    block_size = opts.block_size or M.BLOCK_SIZE, page_size = opts.page_size,
    clock = opts.clock or os.time, key_setting = key_setting, key_hint = opts.key_hint,
  }, Store)
  -- The decoded key lives only in this closure: not a field of the store,
  -- so no dump of the object shows it.
  local function sign_request(req)
    sign.sign(req, { account = self.account, key = key, now = self.clock(), version = self.version,
      zero_length = self.zero_length })
  end
  self.sas = function(blob, expiry)
    return sign.sas({ account = self.account, key = key, container = self.container, blob = blob,
      expiry = expiry, version = self.version >= "2015-04-05" and self.version or sign.VERSION })
  end
  self.client = api.new { name = "azure blob storage", endpoint = endpoint, sign = sign_request,
    errors = parse_error, http = opts.http, cancel = opts.cancel }
  if opts.create ~= false then
    local ok, msg, code = self:_ensure_container()
    if not ok then return nil, msg, code end
  end
  return self
end

function Store:_check()
  if self.closed then error("azure storage: used after close", 3) end
end

-- The request path of the container or of blob name (each segment escaped).
function Store:_path(name)
  local p = "/" .. self.container
  if name then
    p = p .. "/" .. name:gsub("[^/]+", function(seg) return http.url_escape(seg) end)
  end
  return p
end

-- A failed call's message, with what to check when the key was refused.
function Store:_fail(msg, code, eresp)
  if code == "AUTH" then
    msg = string.format("%s; check %s (%q) and that account's access key%s for %s", msg, self.key_setting,
      self.account, self.key_hint and (" (" .. self.key_hint .. ")") or "", self.endpoint)
  end
  return nil, msg, code, eresp
end

function Store:_request(r)
  local resp, msg, code, eresp = self.client:request(r)
  if resp then return resp end
  return self:_fail(msg, code, eresp)
end

function Store:_ensure_container()
  local resp, msg, code, eresp = self.client:request { method = "PUT", path = self:_path(),
    query = { restype = "container" }, headers = { ["Content-Length"] = "0" }, idempotent = true }
  if resp or (eresp and eresp.status == 409 and error_code(eresp) == "ContainerAlreadyExists") then
    return true
  end
  return self:_fail(msg, code, eresp)
end

local function missing(eresp)
  return eresp and eresp.status == 404
end

local function enoent(self, name, eresp)
  return nil, string.format("azure blob storage: %s/%s: object not found (%s)", self.container, name,
    error_code(eresp) or "404"), "ENOENT"
end

-- Sends a write; when the container is gone (removed by remove_all, or by
-- someone else) makes it again and sends the write once more.
function Store:_write(r)
  local resp, msg, code, eresp = self.client:request(r)
  if not resp and missing(eresp) and error_code(eresp) == "ContainerNotFound" then
    local ok, m2, c2 = self:_ensure_container()
    if not ok then return nil, m2, c2 end
    resp, msg, code, eresp = self.client:request(r)
  end
  if resp then return resp end
  return self:_fail(msg, code, eresp)
end

function Store:put(name, data)
  self:_check()
  local ok, msg, code = storage.check_name(name)
  if not ok then return nil, msg, code end
  if type(data) ~= "string" then error("azure storage: put: data must be a string", 2) end
  local resp, m2, c2 = self:_write { method = "PUT", path = self:_path(name), body = data,
    headers = { ["x-ms-blob-type"] = "BlockBlob", ["Content-Length"] = tostring(#data) }, idempotent = true }
  if not resp then return nil, m2, c2 end
  return true
end

-- Block ids: base64 of equal-length text, as Put Block requires.
local function block_id(i)
  return crypto.base64(string.format("juju-block-%08d", i))
end

function Store:_put_blocks(name, path, size)
  local f, err = io.open(path, "rb")
  if not f then return nil, "azure blob storage: put_file: " .. tostring(err), "EIO" end
  local ids = {}
  local i, sent = 0, 0
  while sent < size do
    i = i + 1
    local chunk = f:read(math.min(self.block_size, size - sent))
    if not chunk then
      f:close()
      return nil, string.format("azure blob storage: put_file: %s: short read at byte %d of %d", path, sent, size),
        "EIO"
    end
    ids[i] = block_id(i)
    local resp, msg, code = self:_write { method = "PUT", path = self:_path(name),
      query = { comp = "block", blockid = ids[i] }, body = chunk,
      headers = { ["Content-Length"] = tostring(#chunk) }, idempotent = true }
    if not resp then
      f:close()
      return nil, string.format("%s (put_file %s: block %d of %d; nothing was committed)", msg, name, i,
        (size + self.block_size - 1) // self.block_size), code
    end
    sent = sent + #chunk
  end
  f:close()
  local list = { name = "BlockList", children = {} }
  for k, id in ipairs(ids) do list.children[k] = { name = "Latest", text = id } end
  local body = assert(xml.encode(list, { declaration = true }))
  local resp, msg, code = self:_write { method = "PUT", path = self:_path(name), query = { comp = "blocklist" },
    body = body, headers = { ["Content-Type"] = "application/xml", ["Content-Length"] = tostring(#body) },
    idempotent = true }
  if not resp then return nil, msg, code end
  return true
end

--- put_file(name, path) -> size: one streamed Put Blob up to block_size,
--- Put Block + Put Block List above it.
function Store:put_file(name, path)
  self:_check()
  local ok, msg, code = storage.check_name(name)
  if not ok then return nil, msg, code end
  local st, serr, scode = fs.stat(path)
  if not st then return nil, serr, scode end
  if st.type ~= "file" then return nil, "azure blob storage: put_file: " .. path .. ": not a regular file", "EINVAL" end
  local size = st.size
  if size > self.block_size then
    local done, m2, c2 = self:_put_blocks(name, path, size)
    if not done then return nil, m2, c2 end
    return size
  end
  local resp, m2, c2 = self:_write { method = "PUT", path = self:_path(name), body_file = path,
    headers = { ["x-ms-blob-type"] = "BlockBlob", ["Content-Length"] = tostring(size) }, idempotent = true }
  if not resp then return nil, m2, c2 end
  return size
end

function Store:get(name)
  self:_check()
  local ok, msg, code = storage.check_name(name)
  if not ok then return nil, msg, code end
  local resp, m2, c2, eresp = self.client:request { method = "GET", path = self:_path(name), idempotent = true }
  if resp then return resp.body or "" end
  if missing(eresp) then return enoent(self, name, eresp) end
  return self:_fail(m2, c2, eresp)
end

function Store:get_to_file(name, path)
  self:_check()
  local ok, msg, code = storage.check_name(name)
  if not ok then return nil, msg, code end
  local resp, m2, c2, eresp = self.client:request { method = "GET", path = self:_path(name), to_file = path,
    idempotent = true }
  if resp then
    local st = fs.stat(path)
    return st and st.size or resp.size
  end
  if missing(eresp) then return enoent(self, name, eresp) end
  return self:_fail(m2, c2, eresp)
end

function Store:_head(name)
  local ok, msg, code = storage.check_name(name)
  if not ok then return nil, msg, code end
  local resp, m2, c2, eresp = self.client:request { method = "HEAD", path = self:_path(name), idempotent = true }
  if resp then return resp end
  if missing(eresp) then return enoent(self, name, eresp) end
  return self:_fail(m2, c2, eresp)
end

--- exists(name) -> boolean; a failure other than "not found" is nil, msg, code.
function Store:exists(name)
  self:_check()
  local resp, msg, code = self:_head(name)
  if resp then return true end
  if code == "ENOENT" then return false end
  return nil, msg, code
end

function Store:size(name)
  self:_check()
  local resp, msg, code = self:_head(name)
  if not resp then return nil, msg, code end
  return tonumber(resp.headers["content-length"]) or 0
end

--- list([prefix]) -> sorted names, following NextMarker page by page.
function Store:list(prefix)
  self:_check()
  local names, marker = {}, nil
  repeat
    local q = { restype = "container", comp = "list", prefix = prefix ~= "" and prefix or nil,
      marker = marker, maxresults = self.page_size }
    local resp, msg, code, eresp = self.client:request { method = "GET", path = self:_path(), query = q,
      idempotent = true }
    if not resp then
      if missing(eresp) and error_code(eresp) == "ContainerNotFound" then break end
      return self:_fail(msg, code, eresp)
    end
    local root, xerr = xml.decode(resp.body or "", "azure List Blobs response")
    if not root or root.name ~= "EnumerationResults" then
      return nil, "azure blob storage: list: " .. (xerr or "unexpected response (no EnumerationResults)"), "INVALID"
    end
    for _, b in ipairs((child(root, "Blobs") or {}).children or {}) do
      local n = b.name == "Blob" and child(b, "Name")
      if n then names[#names + 1] = n.text end
    end
    marker = (child(root, "NextMarker") or {}).text
    if marker == "" then marker = nil end
  until not marker
  table.sort(names)
  return names
end

function Store:remove(name)
  self:_check()
  local ok, msg, code = storage.check_name(name)
  if not ok then return nil, msg, code end
  local resp, m2, c2, eresp = self.client:request { method = "DELETE", path = self:_path(name), idempotent = true }
  if resp or missing(eresp) then return true end
  return self:_fail(m2, c2, eresp)
end

--- remove_all(): every blob, then the container itself (a later write makes
--- it again). A missing container is fine.
function Store:remove_all()
  self:_check()
  local names, msg, code = self:list()
  if not names then return nil, msg, code end
  for _, n in ipairs(names) do
    local ok, m2, c2 = self:remove(n)
    if not ok then return nil, m2, c2 end
  end
  local resp, m3, c3, eresp = self.client:request { method = "DELETE", path = self:_path(),
    query = { restype = "container" }, idempotent = true }
  if resp or missing(eresp) then return true end
  return self:_fail(m3, c3, eresp)
end

--- url(name [, {expires = seconds}]) -> a read-only SAS URL for the blob
--- (default validity M.URL_EXPIRES), signed with the store's x-ms-version,
--- or sign.VERSION when that is older than the SAS layouts (2015-04-05).
function Store:url(name, opts)
  self:_check()
  local ok, msg, code = storage.check_name(name)
  if not ok then return nil, msg, code end
  local expires = opts and opts.expires or M.URL_EXPIRES
  return self.endpoint .. self:_path(name) .. "?" .. self.sas(name, self.clock() + expires)
end

function Store:close()
  self.closed = true
  self.sas, self.client = nil, nil
  return true
end

return M
