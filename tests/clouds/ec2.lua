-- tests/clouds/ec2.lua: the emulated EC2 cloud of the command-level specs
-- and benches, behind one small interface that every emulated cloud
-- (tests/clouds/<name>.lua) offers, so tests/cloudmatrix.lua, the secrets
-- audit and bench/cloud.lua take a cloud as one more table entry:
--
--   local c = require("clouds.ec2").start { address_base = 220, cloud_init = "emulated" }
--   c.name, c.env_type, c.secrets ({label = value}), c.kinds (fault kinds it injects)
--   c:environment(extra_attrs) -> attrs (a table for environments.yaml) and the
--       names it creates (c:environment gives a fresh control-bucket each time)
--   c:calls()          -> { {key=, status=, code=, faulted=, pending= (not answered yet),
--       throttled= (answered "slow down")}, ... }: the API calls since clear_calls
--   c:storage_calls()  -> { {key= "PUT bucket" | "GET provider-state" | ..., status=}, ... } since clear_calls
--   c:clear_calls(), c:clear_faults()
--   c:inject(key, kind, opts) kinds: error (one refused call, the cloud's
--       own error, not retried), throttled (one RequestLimitExceeded),
--       timeout (no answer for opts.seconds, then a reset: nothing done),
--       reset (every call of key reset), hold (the call waits opts.seconds,
--       then a reset: the SIGINT cases signal juju meanwhile)
--   c.fault_text(kind, key) -> the strings the user's error line must hold
--   c:hosts(on)        instances become real test hosts (on) or take pool
--       addresses nobody listens on (off: faults that fail before SSH)
--   c:leftovers()      -> list of strings, read from the emulators' own state
--       (EC2 fake instances and groups, s3rver buckets): empty = nothing left
--   c:settle()         every launcher answered, every terminator exited
--   c:machines()       -> { {id=, user_data=, pid= (in the test host's mount namespace)}, ... }
--   c:stored_files()   -> paths of every object the object store holds (its own files)
--   c:stop()
--   M.image_metadata(dir)  writes the image metadata it serves (file://dir)
--
-- EC2 is tests/servers/ec2 (botocore's model and signer check every
-- request); S3 is s3rver behind s3check (botocore re-signs every request).
local server = require("juju.testing.server")
local instance = require("juju.testing.instance")
local http = require("juju.http")
local json = require("juju.json")
local crypto = require("juju.crypto")
local sys = require("juju.sys")
local fs = require("juju.fs")
local h = require("helpers")
local common = require("clouds.common")

local M = { name = "ec2" }

local PYTHON = "/usr/bin/python3"
local ACCESS = "S3RVER" -- s3rver checks the access key only; the fake and s3check check the secret
local REGION = "us-east-1"
local AMI = "ami-442ea674"
-- Test hosts of one spec reuse this many addresses (address_base + 1..).
local HOST_SLOTS = 30

M.kinds = { "error", "throttled", "timeout", "reset", "hold" }

local function npm_root()
  local r = sys.run({ "npm", "root", "-g" }, { timeout = 30 })
  assert(r and r.code == 0, "npm root -g failed: is npm installed? run scripts/install-deps.sh")
  return (r.stdout:gsub("%s+$", ""))
end

--- Writes simplestreams image metadata under dir (for image-metadata-url =
--- file://dir): bookworm (the engine renders systemd services only) in
--- us-east-1, for an image the fake knows. The EC2 specs use it too.
function M.image_metadata(dir)
  assert(fs.mkdir_p(dir .. "/streams/v1", tonumber("700", 8)))
  local cloud = { region = REGION, endpoint = "https://ec2.us-east-1.amazonaws.com" }
  h.write(dir .. "/streams/v1/index.json", assert(json.encode { format = "index:1.0", index = {
    ["com.ubuntu.cloud:released:aws"] = { datatype = "image-ids", format = "products:1.0",
      path = "streams/v1/aws.json", clouds = { cloud }, products = { "com.ubuntu.cloud:server:bookworm:amd64" } } } }))
  h.write(dir .. "/streams/v1/aws.json", assert(json.encode { format = "products:1.0",
    content_id = "com.ubuntu.cloud:released:aws", region = cloud.region, endpoint = cloud.endpoint,
    root_store = "ebs", virt = "hvm", products = { ["com.ubuntu.cloud:server:bookworm:amd64"] = {
      arch = "amd64", release = "bookworm", versions = { ["20250101"] = { items = { a = { id = AMI } } } } } } }))
end

local Cloud = {}
Cloud.__index = Cloud

--- opts: address_base (host N of 127.0.0.N is address_base + 1.., required),
--- host_slots (how many addresses from there the hosts reuse; default 30),
--- cloud_init ("emulated" or "cloud-init"; default the image's), work (a
--- directory; default a fresh one).
function M.start(opts)
  opts = opts or {}
  assert(math.type(opts.address_base) == "integer", "clouds.ec2.start: address_base required")
  local self = setmetatable({ name = M.name, env_type = "ec2", kinds = M.kinds, slot = 0,
    host_slots = opts.host_slots or HOST_SLOTS }, Cloud)
  self.work = opts.work or h.tmpdir("juju-cloud-ec2-")
  self.secret = "ec2/Matrix+Secret" .. crypto.hex(crypto.random_bytes(8))
  self.secrets = { ["secret-key"] = self.secret }
  self.state_dir = self.work .. "/hosts"
  assert(fs.mkdir_p(self.state_dir, tonumber("700", 8)))
  local p = instance.programs(self.state_dir)
  h.write(self.work .. "/fake.json", assert(json.encode { credentials = { [ACCESS] = self.secret }, region = REGION }),
    "0600")
  self.fake = assert(server.start { name = "ec2fake",
    argv = { PYTHON, h.source_dir .. "/tests/servers/ec2/ec2fake.py", "--host", "{host}", "--port", "{port}",
      "--dir", "{dir}", "--config", self.work .. "/fake.json", "--launcher", p.launcher, "--terminator", p.terminator },
    env = { INSTANCE_ADDRESS_BASE = tostring(opts.address_base), INSTANCE_OWNER_PID = p.env.INSTANCE_OWNER_PID,
      INSTANCE_CLOUD_INIT = opts.cloud_init or "" } })
  local node_path = npm_root()
  local s3rver_js = node_path .. "/s3rver/bin/s3rver.js"
  assert(fs.exists(s3rver_js), s3rver_js .. " not found: run scripts/install-deps.sh")
  self.s3rver = assert(server.start { name = "s3rver",
    argv = { "node", s3rver_js, "--address", "{host}", "--port", "{port}", "--directory", "{dir}", "--silent" },
    env = { NODE_PATH = node_path } })
  self.checker = assert(server.start { name = "s3check",
    argv = { PYTHON, h.source_dir .. "/tests/servers/s3check/s3check.py", "--listen", "{host}:{port}",
      "--upstream", self.s3rver.url, "--access-key", ACCESS, "--region", REGION },
    env = { S3CHECK_SECRET_KEY = self.secret } })
  self.images = self.work .. "/img"
  M.image_metadata(self.images)
  self:hosts(false)
  return self
end

function Cloud:admin(method, path, body)
  local r, msg = http.request { url = self.fake.url:gsub("/$", "") .. path, method = method, retries = 0,
    timeout = 120, body = body and assert(json.encode(body)) or nil,
    headers = body and { ["Content-Type"] = "application/json" } or nil }
  assert(r, msg)
  assert(r.status == 200, path .. ": " .. tostring(r.status) .. " " .. tostring(r.body))
  return r.body:sub(1, 1) == "{" and assert(json.decode(r.body)) or r.body
end

--- The attributes of a fresh environment (its own control bucket).
function Cloud:environment(extra)
  local attrs = {
    type = "ec2", ["access-key"] = ACCESS, ["secret-key"] = self.secret,
    ["ec2-endpoint"] = self.fake.url, ["s3-endpoint"] = self.checker.url,
    ["control-bucket"] = "matrix-" .. crypto.hex(crypto.random_bytes(5)),
    ["image-metadata-url"] = "file://" .. self.images, ["default-series"] = "bookworm",
    ["state-store"] = "sqlite", ["bootstrap-timeout"] = 300,
  }
  for k, v in pairs(extra or {}) do attrs[k] = v end
  return attrs
end

function Cloud:calls()
  local out = {}
  for _, c in ipairs(self:admin("GET", "/_admin/calls").calls) do
    local status = math.type(c.status) and c.status or nil
    local code = type(c.code) == "string" and c.code or nil
    out[#out + 1] = { key = c.action, status = status, code = code, faulted = type(c.faults) == "table",
      pending = status == nil and code == nil, throttled = code == "RequestLimitExceeded" }
  end
  return out
end

function Cloud:clear_calls()
  self:admin("DELETE", "/_admin/calls")
  self.storage_mark = #(fs.read_file(self.checker.log) or "")
end

--- The object-store requests since clear_calls, from s3check's own log
--- (every request it checked): {"PUT bucket", "GET provider-state", ...}.
function Cloud:storage_calls()
  local text = (fs.read_file(self.checker.log) or ""):sub((self.storage_mark or 0) + 1)
  local out = {}
  for method, path, status in text:gmatch('"(%u+) (%S+) HTTP/1%.%d" (%d+)') do
    if not path:find("^/__s3check/") then
      local bucket, key = path:match("^/([^/?]+)/?([^?]*)")
      local what = (key == nil or key == "") and "bucket" or key:gsub("^(tools/).*", "%1...")
      out[#out + 1] = { key = method .. " " .. what, status = tonumber(status), bucket = bucket }
    end
  end
  return out
end
function Cloud:clear_faults() self:admin("DELETE", "/_admin/faults") end

local ERROR_CODE = "InvalidParameterValue"
local function error_message(key) return "matrix fault in " .. key end

function Cloud:inject(key, kind, opts)
  opts = opts or {}
  local f
  if kind == "error" then
    f = { action = key, error = ERROR_CODE, message = error_message(key), count = 1 }
  elseif kind == "throttled" then
    f = { action = key, error = "RequestLimitExceeded", count = opts.count or 1 }
  elseif kind == "timeout" or kind == "hold" then
    f = { action = key, delay = opts.seconds or 10, reset = true, count = 1 }
  elseif kind == "reset" then
    f = { action = key, reset = true, count = -1 }
  else
    error("clouds.ec2: unknown fault kind " .. tostring(kind), 2)
  end
  if opts.skip then f.skip = opts.skip end
  self:admin("POST", "/_admin/faults", f)
end

--- What the user's one error line must say for a fault of kind at key.
function M.fault_text(kind, key)
  if kind == "error" then return { "ec2 " .. key, ERROR_CODE .. ": " .. error_message(key) } end
  if kind == "timeout" then return { "ec2 " .. key, "deadline of" } end
  if kind == "reset" then return { "ec2 " .. key, "reset" } end
  if kind == "hold" then return { "interrupted" } end
  error("clouds.ec2: unknown fault kind " .. tostring(kind), 2)
end
Cloud.fault_text = function(_, kind, key) return M.fault_text(kind, key) end

function Cloud:hosts(on)
  local cfg = { launcher = on }
  if on then
    -- each hosted bootstrap gets the next address of the spec's range
    cfg.launch_index = self.slot % self.host_slots
    self.slot = self.slot + 1
  end
  self:admin("POST", "/_admin/config", cfg)
end

function Cloud:settle()
  local s = self:admin("GET", "/_admin/settle?timeout=60")
  assert(s.settled, "the EC2 fake did not settle: " .. json.encode(s))
end

--- What is left in the emulators, from their own state: instances not
--- terminated and groups (EC2 fake), buckets (s3rver's directory).
function Cloud:leftovers()
  self:settle()
  local left = self:admin("GET", "/_admin/leftovers")
  local buckets = {}
  for _, b in ipairs(fs.list(self.s3rver.dir) or {}) do
    local st = fs.stat(self.s3rver.dir .. "/" .. b)
    if st and st.type == "dir" then buckets[#buckets + 1] = b end
  end
  return common.labelled { { "instance", left.instances }, { "security group", left.groups }, { "bucket", buckets } }
end

--- Host records of running test hosts (for "the host is gone" checks).
function Cloud:host_records() return common.host_records(self.state_dir) end

function Cloud:user_data(id) return self:admin("GET", "/_admin/user-data/" .. id) end

--- The instances not terminated: {id=, user_data= (as the instance got
--- it), pid= (a process in the test host's mount namespace, or nil)}.
function Cloud:machines()
  local ids = {}
  for _, i in ipairs(self:state().instances) do
    if i.state ~= "terminated" then ids[#ids + 1] = i.id end
  end
  return common.machines(self, ids)
end
function Cloud:state() return self:admin("GET", "/_admin/state") end

--- Every file the object store holds (path, content) for secret searches.
function Cloud:stored_files()
  local out = {}
  local function walk(dir)
    for _, n in ipairs(fs.list(dir) or {}) do
      local p = dir .. "/" .. n
      local st = fs.lstat(p)
      if st and st.type == "dir" then walk(p) elseif st and st.type == "file" then out[#out + 1] = p end
    end
  end
  walk(self.s3rver.dir)
  return out
end

function Cloud:stop()
  self.checker:stop()
  self.s3rver:stop()
  self.fake:stop()
  instance.terminate_all(self.state_dir)
end

return M
