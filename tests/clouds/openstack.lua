-- tests/clouds/openstack.lua: the emulated OpenStack cloud of the
-- command-level specs and benches, behind the interface of every emulated
-- cloud (its description: tests/clouds/ec2.lua's header), on the goose fake
-- (tests/servers/goose: Keystone v2/v3, Nova, Swift on one listener, its
-- /_test/ control API: faults, the call journal, state, leftovers, settle).
--
--   local c = require("clouds.openstack").start { address_base = 140, cloud_init = "emulated" }
--
-- start opts beyond ec2's: fake_host (default 127.0.0.<address_base>),
-- floating_pool (default 127.0.4.<base+1>-<base+host_slots>), identity
-- ("v3", the default, or "v2": which auth URL environment() gives).
--
-- Keys of calls() are the fake's journal templates, "METHOD /template"
-- ("POST /servers", "GET /servers/{id}"); storage_calls() keys are "METHOD
-- container", "METHOD provider-state", "METHOD tools/...". Faults: error =
-- one 400 badRequest (never retried), throttled = 429 overLimit with
-- Retry-After 1, timeout/hold = no answer for opts.seconds then a reset,
-- reset = every call of key reset.
local instance = require("juju.testing.instance")
local http = require("juju.http")
local json = require("juju.json")
local crypto = require("juju.crypto")
local shell = require("juju.shell")
local fs = require("juju.fs")
local h = require("helpers")
local common = require("clouds.common")
local fake = require("servers.goose.fake")

local M = { name = "openstack" }

local REGION = "RegionOne"
local IMAGE = "c7f0e2a4-bookworm-amd64"
-- Test hosts of one spec reuse this many addresses (address_base + 1..).
local HOST_SLOTS = 19
local NAT_PORTS = { 22, 17070, 37017 }

M.kinds = { "error", "throttled", "timeout", "reset", "hold" }

-- Image metadata for bookworm amd64 in RegionOne, once per auth URL: Juju's
-- openstack provider matches image metadata on {region, endpoint = auth-url},
-- so either identity version finds it.
local function image_metadata(dir, auth_urls)
  assert(fs.mkdir_p(dir .. "/streams/v1", tonumber("700", 8)))
  local index = {}
  for i, endpoint in ipairs(auth_urls) do
    local cloud = { region = REGION, endpoint = endpoint }
    local id = "com.ubuntu.cloud:released:openstack-" .. i
    local path = "streams/v1/openstack-" .. i .. ".json"
    index[id] = { datatype = "image-ids", format = "products:1.0", path = path, clouds = { cloud },
      products = { "com.ubuntu.cloud:server:bookworm:amd64" } }
    h.write(dir .. "/" .. path, assert(json.encode { format = "products:1.0", content_id = id,
      region = cloud.region, endpoint = cloud.endpoint, products = { ["com.ubuntu.cloud:server:bookworm:amd64"] = {
        arch = "amd64", release = "bookworm", versions = { ["20250101"] = { items = { a = { id = IMAGE } } } } } } }))
  end
  h.write(dir .. "/streams/v1/index.json", assert(json.encode { format = "index:1.0", index = index }))
end

-- The launcher the fake runs: the instance launcher with INSTANCE_INDEX set
-- to the next slot of the spec's range (the fake numbers servers over its
-- life), read from and advanced in slot_file.
local function write_launcher(work, launcher, slots)
  local slot_file = shell.quote(work .. "/launch-slot")
  local path = work .. "/launcher.sh"
  h.write(path, table.concat({
    "n=$(cat " .. slot_file .. " 2>/dev/null || echo 0)",
    "echo $(( (n + 1) % " .. slots .. " )) > " .. slot_file,
    "INSTANCE_INDEX=$(( n % " .. slots .. " + 1 )) exec " .. launcher,
  }, "\n") .. "\n", "0700")
  return "/bin/sh " .. shell.quote(path)
end

local Cloud = {}
Cloud.__index = Cloud

--- opts: address_base (host N of 127.0.0.N is address_base + 1.., required),
--- host_slots (default 19), cloud_init ("emulated" or "cloud-init"), work
--- (a directory; default a fresh one), fake_host, floating_pool, identity.
function M.start(opts)
  opts = opts or {}
  local base = opts.address_base
  assert(math.type(base) == "integer", "clouds.openstack.start: address_base required")
  local slots = opts.host_slots or HOST_SLOTS
  assert(base + slots <= 254, "clouds.openstack.start: address_base + host_slots beyond 127.0.0.254")
  local self = setmetatable({ name = M.name, env_type = "openstack", kinds = M.kinds, slot = 0,
    host_slots = slots, identity = opts.identity or "v3" }, Cloud)
  assert(self.identity == "v3" or self.identity == "v2", "clouds.openstack.start: identity is v2 or v3")
  self.work = opts.work or h.tmpdir("juju-cloud-openstack-")
  self.secrets = { password = fake.CREDS.password, ["secret-key"] = fake.CREDS.secret_key }
  self.state_dir = self.work .. "/hosts"
  assert(fs.mkdir_p(self.state_dir, tonumber("700", 8)))
  self.host_range = string.format("127.0.0.%d-%d", base + 1, base + slots)
  local p = instance.programs(self.state_dir)
  self.fake = fake.start(opts.fake_host or ("127.0.0." .. base), "oscloud" .. base, {
    launcher = write_launcher(self.work, p.launcher, slots), terminator = p.terminator,
    images = { IMAGE }, address_pool = self.host_range,
    floating_pool = opts.floating_pool or string.format("127.0.4.%d-%d", base + 1, base + slots),
    nat_ports = NAT_PORTS, streams = true,
    env = { INSTANCE_ADDRESS_BASE = tostring(base), INSTANCE_OWNER_PID = p.env.INSTANCE_OWNER_PID,
      INSTANCE_CLOUD_INIT = opts.cloud_init or "" } })
  self.images = self.work .. "/img"
  image_metadata(self.images, { self.fake.v3, self.fake.v2 })
  self:hosts(false)
  return self
end

--- The attributes of a fresh environment (its own control container).
function Cloud:environment(extra)
  local C = fake.CREDS
  local attrs = {
    type = "openstack", ["auth-url"] = self.identity == "v2" and self.fake.v2 or self.fake.v3,
    username = C.username, password = C.password, ["tenant-name"] = C.tenant_name, region = REGION,
    ["control-bucket"] = "matrix-" .. crypto.hex(crypto.random_bytes(5)),
    ["image-metadata-url"] = "file://" .. self.images, ["default-series"] = "bookworm",
    ["state-store"] = "sqlite", ["bootstrap-timeout"] = 300,
  }
  -- Keystone v3 names the user's and the project's domain (new: Juju 1.25
  -- spoke v2 only)
  if self.identity == "v3" then attrs["domain-name"] = C.domain_name end
  for k, v in pairs(extra or {}) do attrs[k] = v end
  return attrs
end

local function status_of(c) return math.type(c.status) and c.status or nil end

--- The compute calls since clear_calls, from the fake's journal.
function Cloud:calls()
  local out = {}
  for _, c in ipairs(self.fake:calls("compute")) do
    local status = status_of(c)
    out[#out + 1] = { key = c.method .. " " .. c.path, status = status,
      faulted = type(c.fault) == "string" and c.fault ~= "", pending = c.pending == true,
      throttled = status == 429 or status == 413 }
  end
  return out
end

--- The object-store calls since clear_calls: "PUT container", "GET
--- provider-state", "PUT tools/...", "HEAD account".
function Cloud:storage_calls()
  local out = {}
  for _, c in ipairs(self.fake:calls("object-store")) do
    local container, object = c.container or "", c.object or ""
    local what
    if container == "" then what = "account"
    elseif object == "" then what = "container"
    else what = object:gsub("^(tools/).*", "%1...") end
    out[#out + 1] = { key = c.method .. " " .. what, status = status_of(c), bucket = container ~= "" and container or nil }
  end
  return out
end

function Cloud:clear_calls() self.fake:clear_calls() end
function Cloud:clear_faults() self.fake:clear_faults() end

local function error_message(key) return "matrix fault in " .. key end

function Cloud:inject(key, kind, opts)
  opts = opts or {}
  local f
  if kind == "error" then
    f = { op = key, status = 400, body = { badRequest = { message = error_message(key), code = 400 } }, count = 1 }
  elseif kind == "throttled" then
    f = { op = key, status = 429, retry_after = 1, count = opts.count or 1 }
  elseif kind == "timeout" or kind == "hold" then
    f = { op = key, delay = opts.seconds or 10, reset = true, count = 1 }
  elseif kind == "reset" then
    f = { op = key, reset = true, count = -1 }
  else
    error("clouds.openstack: unknown fault kind " .. tostring(kind), 2)
  end
  if opts.skip then f.skip = opts.skip end
  self.fake:faults(f)
end

--- What the user's one error line must say for a fault of kind at key.
function M.fault_text(kind, key)
  if kind == "error" then return { "nova " .. key, error_message(key) } end
  if kind == "timeout" then return { "nova " .. key, "deadline of" } end
  if kind == "reset" then return { "nova " .. key, "reset" } end
  if kind == "hold" then return { "interrupted" } end
  error("clouds.openstack: unknown fault kind " .. tostring(kind), 2)
end
Cloud.fault_text = function(_, kind, key) return M.fault_text(kind, key) end

--- on: servers are real test hosts, each hosted bootstrap at the next
--- address of the range; off: servers take the range's addresses from the
--- fake's pool (nobody listens there), from its start again.
function Cloud:hosts(on)
  if on then
    h.write(self.work .. "/launch-slot", tostring(self.slot % self.host_slots) .. "\n")
    self.slot = self.slot + 1
    self.fake:config { launcher = true }
  else
    self.fake:config { launcher = false, address_pool = self.host_range }
  end
end

function Cloud:settle()
  local ok, body = self.fake:settle(60)
  assert(ok, "the goose fake did not settle: " .. tostring(body))
end

--- What is left in the fake, from its own state (servers not gone, groups
--- but default, allocated floating IPs, containers but the fixture's).
function Cloud:leftovers()
  self:settle()
  local left = self.fake:leftovers()
  return common.labelled { { "server", left.servers }, { "security group", left.security_groups },
    { "floating ip", left.floating_ips }, { "container", left.containers },
    { "objects", (left.objects or 0) > 0 and { left.objects } or {} } }
end

--- Host records of running test hosts (for "the host is gone" checks).
function Cloud:host_records() return common.host_records(self.state_dir) end

function Cloud:user_data(id) return self.fake:user_data(id) end
function Cloud:state() return self.fake:state() end

--- The servers not deleted: {id=, user_data= (as sent), pid= (a process in
--- the test host's mount namespace, or nil)}.
function Cloud:machines()
  local ids = {}
  for _, s in ipairs(self:state().servers) do
    if s.status ~= "DELETED" and s.gone ~= true then ids[#ids + 1] = s.id end
  end
  return common.machines(self, ids)
end

local function escape_path(p)
  local parts = {}
  for seg in p:gmatch("[^/]+") do parts[#parts + 1] = http.url_escape(seg) end
  return table.concat(parts, "/")
end

--- Every object Swift holds, copied out of the fake's memory into files
--- (0600) under work/stored/REGION/CONTAINER/OBJECT: their paths.
function Cloud:stored_files()
  local root = self.work .. "/stored"
  fs.remove_tree(root)
  local out = {}
  for region, containers in pairs(self:state().swift) do
    for container, c in pairs(containers) do
      for _, object in ipairs(c.objects) do
        local path = table.concat({ region, container, object }, "/")
        local r, msg, _, resp = http.request { url = self.fake.url .. "/_test/object/" .. escape_path(path),
          retries = 0, timeout = 120 }
        r = r or resp
        assert(r, msg)
        assert(r.status == 200, path .. ": " .. tostring(r.status) .. " " .. tostring(r.body))
        h.write(root .. "/" .. path, r.body, tonumber("600", 8))
        out[#out + 1] = root .. "/" .. path
      end
    end
  end
  table.sort(out)
  return out
end

function Cloud:stop()
  self.fake:stop()
  instance.terminate_all(self.state_dir)
end

return M
