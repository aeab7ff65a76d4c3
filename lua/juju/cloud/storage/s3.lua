-- juju.cloud.storage.s3: environ storage in an S3 bucket (the ec2
-- provider's storage), over juju.cloud.api with SigV4 (service "s3").
--
--   local st = s3.new{ endpoint = "https://s3.amazonaws.com", region = "us-east-1",
--                      bucket = "juju-abc", access_key = ..., secret_key = ...,
--                      path_style = true, http = {ca_file = ...}, create = true }
--
-- The object has the methods of every environ storage backend (put,
-- put_file, get, get_to_file, exists, size, list, remove, remove_all, url,
-- close: tests/spec/storage_contract.lua) with the same error contract:
-- a missing object is nil, msg, "ENOENT"; a bad name "EINVAL"; refused
-- credentials "AUTH" (the message names access-key/secret-key and the
-- endpoint, never the secret or a signature); a refused request time
-- "CLOCK" (the message says to check the clock); a malformed listing
-- "CORRUPT"; the api client's codes otherwise. Uploads carry Content-MD5
-- and a signed payload hash (put_file hashes the file first, streamed:
-- two passes over it, constant memory); downloads to a file stream.
local api = require("juju.cloud.api")
local sigv4 = require("juju.cloud.sign.sigv4")
local crypto = require("juju.crypto")
local mac = require("juju.mac")
local xml = require("juju.lazy")("juju.xml")
local fs = require("juju.fs")
local storage = require("juju.storage")

local M = {}

M.DEFAULT_EXPIRES = 3600 -- seconds a url() stays valid unless told
M.PAGE_SIZE = 1000 -- max-keys of one ListObjects page (S3's own maximum)

local Store = {}
Store.__index = Store

-- S3 error codes -> stable codes (the status code is the fallback).
local S3_CODES = {
  NoSuchKey = "NOT_FOUND", NoSuchBucket = "NOT_FOUND",
  SignatureDoesNotMatch = "AUTH", InvalidAccessKeyId = "AUTH", AccessDenied = "AUTH",
  RequestTimeTooSkewed = "CLOCK", ExpiredToken = "AUTH", InvalidToken = "AUTH",
  SlowDown = "THROTTLED", ServiceUnavailable = "THROTTLED",
  BucketAlreadyOwnedByYou = "CONFLICT", BucketAlreadyExists = "CONFLICT", BucketNotEmpty = "CONFLICT",
  OperationAborted = "CONFLICT",
}

local function child(el, name)
  for _, c in ipairs(el.children or {}) do
    if c.name == name then return c end
  end
end

local function child_text(el, name)
  local c = child(el, name)
  return c and c.text or nil
end

-- The S3 error body's Code and Message only (S3 also sends
-- SignatureProvided, StringToSign and CanonicalRequest: never copied).
local function parse_error(resp)
  local body = resp.body
  if type(body) ~= "string" or body == "" then return nil, nil end
  local root = xml.decode(body, "s3 error body")
  if not root or root.name ~= "Error" then return nil, nil end
  local code, msg = child_text(root, "Code"), child_text(root, "Message")
  if not code then return nil, nil end
  local text = code .. (msg and msg ~= "" and (": " .. msg) or "")
  return S3_CODES[code] or nil, text, code
end

local function s3_code_of(resp)
  if not resp then return nil end
  local _, _, code = parse_error(resp)
  return code
end

local function check_open(self)
  if self.closed then error("s3 storage: the storage is closed", 3) end
end

local function required(opts, key)
  local v = opts[key]
  if type(v) ~= "string" or v == "" then error("s3.new: " .. key .. " required", 3) end
  return v
end

--- true, or nil and why the bucket name breaks S3's rules (3..63
--- characters of a-z, 0-9, '.', '-'; starting and ending with a letter or
--- digit; not an IP address).
function M.check_bucket_name(name)
  local function bad(why)
    return nil, string.format("bad S3 bucket name %q: %s (control-bucket in the environment configuration)", name, why)
  end
  if #name < 3 or #name > 63 then return bad("must be 3 to 63 characters") end
  if not name:match("^[a-z0-9][a-z0-9.-]*[a-z0-9]$") then
    return bad("only lower-case letters, digits, '.' and '-', starting and ending with a letter or digit")
  end
  if name:find("..", 1, true) then return bad("two adjacent periods") end
  if name:match("^%d+%.%d+%.%d+%.%d+$") then return bad("looks like an IP address") end
  return true
end

--- opts: endpoint, region, bucket, access_key, secret_key (required);
--- path_style (default true: endpoint/bucket/key; false: bucket.host/key),
--- http (juju.http options: proxy, ca_file, timeout...), create (default
--- true: make the bucket now, idempotently), clock (function -> epoch
--- seconds, default os.time), page_size (ListObjects max-keys), token.
function M.new(opts)
  assert(type(opts) == "table", "s3.new: options table required")
  local endpoint = required(opts, "endpoint"):gsub("/+$", "")
  local bucket = required(opts, "bucket")
  local self = setmetatable({
    endpoint = endpoint, region = required(opts, "region"), bucket = bucket,
    access_key = required(opts, "access_key"),
    path_style = opts.path_style ~= false, clock = opts.clock or os.time,
    page_size = opts.page_size or M.PAGE_SIZE,
  }, Store)
  local secret = required(opts, "secret_key")
  local scheme, host = endpoint:match("^(https?)://([^/]+)$")
  if not scheme then error("s3.new: endpoint must be http(s)://host[:port], got " .. endpoint, 2) end
  local ok_name, why = M.check_bucket_name(bucket)
  if not ok_name then return nil, why, "EINVAL" end
  if self.path_style then
    self.base = endpoint .. "/" .. sigv4.uri_encode(bucket)
  else
    self.base = scheme .. "://" .. bucket .. "." .. host
  end
  local creds = { access_key = self.access_key, secret_key = secret, region = self.region,
    service = "s3", token = opts.token, clock = self.clock }
  self.signer = sigv4.signer(creds)
  -- url() presigns with the same credentials; kept in a closure, not a field,
  -- so the secret is not one table lookup away in a debug dump of the store.
  self.presign = function(url, expires)
    return (sigv4.presign{ access_key = creds.access_key, secret_key = creds.secret_key,
      region = creds.region, service = "s3", token = creds.token, url = url,
      expires = expires, time = self.clock() })
  end
  self.client = api.new{ name = "s3", endpoint = self.base, sign = self.signer, http = opts.http,
    cancel = opts.cancel, errors = function(resp)
      local c, m = parse_error(resp)
      return c, m
    end }
  if opts.create ~= false then
    local ok, msg, code = self:create_bucket()
    if not ok then return nil, msg, code end
  end
  return self
end

-- One message for a failure: what we did, the endpoint, and what to do.
function Store:_fail(what, msg, code)
  local where = string.format("s3 bucket %q at %s", self.bucket, self.endpoint)
  if code == "CLOCK" then
    -- juju.cloud.api's code for a refused request time; its message says
    -- what to check.
    return nil, string.format("%s: %s: %s", where, what, tostring(msg)), "CLOCK"
  end
  if code == "AUTH" then
    local advice = "check access-key and secret-key in the environment configuration"
    return nil, string.format("%s: %s: credentials refused (%s); %s", where, what, tostring(msg), advice), "AUTH"
  end
  if code == "NOT_FOUND" then return nil, string.format("%s: %s: not found (%s)", where, what, tostring(msg)), "ENOENT" end
  return nil, string.format("%s: %s: %s", where, what, tostring(msg)), code
end

function Store:_request(r)
  r.idempotent = r.idempotent ~= false
  return self.client:request(r)
end

local function key_path(name)
  return "/" .. sigv4.uri_encode(name, true)
end

local function region_body(region)
  if region == "us-east-1" then return nil end
  local ns = "http://s3.amazonaws.com/doc/2006-03-01/"
  return assert(xml.encode({ name = "CreateBucketConfiguration", ns = ns,
    children = { { name = "LocationConstraint", ns = ns, text = region } } }, { declaration = true }))
end

--- Creates the bucket; an existing bucket of ours is fine.
function Store:create_bucket()
  check_open(self)
  local body = region_body(self.region)
  local resp, msg, code, eresp = self:_request{ method = "PUT", path = "", body = body }
  if resp then
    self.need_bucket = false
    return true
  end
  local s3code = s3_code_of(eresp)
  if s3code == "BucketAlreadyOwnedByYou" then
    self.need_bucket = false
    return true
  end
  -- Some servers (s3rver, Ceph's older releases) answer BucketAlreadyExists
  -- for a bucket of ours: it is ours when our credentials may HEAD it (S3
  -- answers 403 for somebody else's).
  if s3code == "BucketAlreadyExists" and self:_request{ method = "HEAD", path = "" } then
    self.need_bucket = false
    return true
  end
  return self:_fail("create bucket", msg, code)
end

-- A write that meets NoSuchBucket (the bucket went with remove_all, or
-- someone removed it) creates the bucket and tries once more.
function Store:_write(what, r)
  if self.need_bucket then
    local ok, msg, code = self:create_bucket()
    if not ok then return nil, msg, code end
  end
  local resp, msg, code, eresp = self:_request(r)
  if not resp and s3_code_of(eresp) == "NoSuchBucket" then
    local ok, cmsg, ccode = self:create_bucket()
    if not ok then return nil, cmsg, ccode end
    resp, msg, code = self:_request(r)
  end
  if not resp then return self:_fail(what, msg, code) end
  return resp
end

local function checked(self, name)
  check_open(self)
  local ok, msg, code = storage.check_name(name)
  if not ok then return nil, msg, code end
  return key_path(name)
end

function Store:put(name, data)
  local path, msg, code = checked(self, name)
  if not path then return nil, msg, code end
  if type(data) ~= "string" then error("s3 storage: put: data must be a string", 2) end
  local resp, wmsg, wcode = self:_write(string.format("put %q", name), {
    method = "PUT", path = path, body = data,
    headers = { ["Content-MD5"] = crypto.base64(mac.digest("md5", data)),
                ["Content-Type"] = "application/octet-stream" },
  })
  if not resp then return nil, wmsg, wcode end
  return true
end

-- The file's sha256 (hex) and MD5 (raw) in one streamed pass, and its
-- size; or nil, message, code.
local function hash_file(path)
  local f, err = io.open(path, "rb")
  if not f then
    local st = fs.stat(path)
    return nil, tostring(err), st and "EACCES" or "ENOENT"
  end
  local sha <close> = mac.new("sha256")
  local md5 <close> = mac.new("md5")
  local size = 0
  while true do
    local chunk, rerr = f:read(65536)
    if not chunk then
      if rerr then
        f:close()
        return nil, path .. ": " .. tostring(rerr), "EIO"
      end
      break
    end
    sha:update(chunk)
    md5:update(chunk)
    size = size + #chunk
  end
  f:close()
  return sha:hexdigest(), md5:digest(), size
end

--- Streams the file (body_file) with its sha256 as the signed payload hash
--- and its MD5 as Content-MD5, both computed first in one streamed pass.
function Store:put_file(name, src)
  local path, msg, code = checked(self, name)
  if not path then return nil, msg, code end
  local sha, md5, size = hash_file(src)
  if not sha then return nil, string.format("s3 storage: put_file %q: %s", name, md5), size end
  local resp, wmsg, wcode = self:_write(string.format("put_file %q", name), {
    method = "PUT", path = path, body_file = src, body_sha256 = sha,
    headers = { ["Content-MD5"] = crypto.base64(md5), ["Content-Type"] = "application/octet-stream" },
  })
  if not resp then return nil, wmsg, wcode end
  return size
end

function Store:get(name)
  local path, msg, code = checked(self, name)
  if not path then return nil, msg, code end
  local resp, rmsg, rcode = self:_request{ method = "GET", path = path }
  if not resp then return self:_fail(string.format("get %q", name), rmsg, rcode) end
  return resp.body
end

--- Streams the object into dst (juju.http writes a temp file beside it and
--- renames it into place only when the download is complete).
function Store:get_to_file(name, dst)
  local path, msg, code = checked(self, name)
  if not path then return nil, msg, code end
  local resp, rmsg, rcode = self:_request{ method = "GET", path = path, to_file = dst }
  if not resp then return self:_fail(string.format("get %q", name), rmsg, rcode) end
  if resp.size then return resp.size end
  local st = assert(fs.stat(dst))
  return st.size
end

function Store:_head(name)
  local path, msg, code = checked(self, name)
  if not path then return nil, msg, code end
  local resp, hmsg, hcode = self:_request{ method = "HEAD", path = path }
  if not resp then return self:_fail(string.format("head %q", name), hmsg, hcode) end
  return resp
end

function Store:exists(name)
  local resp, msg, code = self:_head(name)
  if resp then return true end
  if code == "ENOENT" then return false end
  return nil, msg, code
end

function Store:size(name)
  local resp, msg, code = self:_head(name)
  if not resp then return nil, msg, code end
  local n = tonumber(resp.headers["content-length"])
  if not n then
    return nil, string.format("s3 bucket %q at %s: head %q: no Content-Length", self.bucket, self.endpoint, name), "CORRUPT"
  end
  return math.tointeger(n)
end

-- One ListObjects page: keys, truncated, next marker; or nil, msg, code.
function Store:_list_page(prefix, marker)
  local query = { ["max-keys"] = tostring(self.page_size) }
  if prefix and prefix ~= "" then query.prefix = prefix end
  if marker then query.marker = marker end
  local resp, msg, code, eresp = self:_request{ method = "GET", path = "", query = query }
  if not resp then
    if s3_code_of(eresp) == "NoSuchBucket" then return {}, false end
    return self:_fail("list", msg, code)
  end
  local where = string.format("s3 bucket %q at %s: list: ", self.bucket, self.endpoint)
  local root, xerr = xml.decode(resp.body or "", "ListObjects response")
  if not root then return nil, where .. "malformed response: " .. tostring(xerr), "CORRUPT" end
  if root.name ~= "ListBucketResult" then
    return nil, where .. "malformed response: root element " .. tostring(root.name) .. ", not ListBucketResult", "CORRUPT"
  end
  local keys = {}
  for _, c in ipairs(root.children or {}) do
    if c.name == "Contents" then
      local k = child_text(c, "Key")
      if not k then return nil, where .. "malformed response: Contents without Key", "CORRUPT" end
      keys[#keys + 1] = k
    end
  end
  local truncated = child_text(root, "IsTruncated") == "true"
  local next_marker = child_text(root, "NextMarker")
  if next_marker == "" then next_marker = nil end
  if truncated and not next_marker then next_marker = keys[#keys] end
  if truncated and (not next_marker or next_marker == marker) then
    return nil, where .. "malformed response: truncated listing without a new marker", "CORRUPT"
  end
  return keys, truncated, next_marker
end

function Store:list(prefix)
  check_open(self)
  if prefix ~= nil and type(prefix) ~= "string" then error("s3 storage: list: prefix must be a string", 2) end
  local names, marker = {}, nil
  repeat
    local keys, truncated, next_marker = self:_list_page(prefix, marker)
    if not keys then return nil, truncated, next_marker end
    for _, k in ipairs(keys) do names[#names + 1] = k end
    marker = next_marker
  until not truncated
  table.sort(names)
  return names
end

function Store:remove(name)
  local path, msg, code = checked(self, name)
  if not path then return nil, msg, code end
  local resp, rmsg, rcode = self:_request{ method = "DELETE", path = path }
  if resp or rcode == "NOT_FOUND" then return true end
  return self:_fail(string.format("remove %q", name), rmsg, rcode)
end

--- Every object, then the bucket itself. The storage can be written
--- again: the next write creates the bucket.
function Store:remove_all()
  check_open(self)
  local names, msg, code = self:list()
  if not names then return nil, msg, code end
  for _, n in ipairs(names) do
    local resp, rmsg, rcode = self:_request{ method = "DELETE", path = key_path(n) }
    if not resp and rcode ~= "NOT_FOUND" then return self:_fail(string.format("remove %q", n), rmsg, rcode) end
  end
  local resp, bmsg, bcode = self:_request{ method = "DELETE", path = "" }
  if not resp and bcode ~= "NOT_FOUND" then return self:_fail("remove bucket", bmsg, bcode) end
  self.need_bucket = true
  return true
end

--- A SigV4 presigned GET, valid for opts.expires seconds (default
--- M.DEFAULT_EXPIRES, at most 7 days as S3 allows).
function Store:url(name, opts)
  local path, msg, code = checked(self, name)
  if not path then return nil, msg, code end
  local expires = (opts and opts.expires) or M.DEFAULT_EXPIRES
  if math.tointeger(expires) == nil or expires < 1 or expires > 604800 then
    return nil, string.format("s3 storage: url %q: expires must be 1..604800 seconds, got %s", name,
      tostring(expires)), "EINVAL"
  end
  return self.presign(self.base .. path, math.tointeger(expires))
end

function Store:close()
  self.closed = true
  return true
end

return M
