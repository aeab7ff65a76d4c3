-- tests/clouds/azure.lua: the emulated Azure cloud of the command-level
-- specs and benches, behind the interface of every emulated cloud (its
-- description: tests/clouds/ec2.lua's header), on the Service Management
-- API test server (tests/servers/azure-mgmt: TLS with the management
-- certificate, bodies read by python3-azure, its /_test/ control API) and
-- azurite's blob service (environ storage) it starts.
--
--   local c = require("clouds.azure").start { address_base = 85, cloud_init = "emulated" }
--
-- The management server and azurite listen on 127.0.0.<address_base>; roles
-- that are real test hosts take 127.0.0.<base+1>..<base+host_slots>, and
-- without hosts the server's pool 127.0.8.<base+1>..<base+host_slots>
-- (nobody listens there). Keys of calls() are the server's templates,
-- "METHOD /services/hostedservices/{svc}/deployments/{dep}", "GET
-- /operations/{id}"; storage_calls() are azurite's access log lines under
-- the environment's container: "PUT container", "GET provider-state",
-- "PUT tools/...". Faults: error = one 400 BadRequest with a message (a POST
-- or PUT is never retried on it), throttled = one 503 ServerBusy (Azure
-- refuses a throttled call before acting: waited out, for any call),
-- timeout/hold = no answer for opts.seconds then a reset, reset = every
-- call of key reset.
-- c.secrets: every line of the management certificate's private key and
-- the storage account key (azurite's account gets a random key per start).
local instance = require("juju.testing.instance")
local http = require("juju.http")
local json = require("juju.json")
local shell = require("juju.shell")
local xml = require("juju.xml")
local fs = require("juju.fs")
local crypto = require("juju.crypto")
local sign = require("juju.cloud.sign.azure")
local blob = require("juju.cloud.storage.azure")
local h = require("helpers")
local fake = require("servers.azure-mgmt.fake")
local azurite = require("servers.azure-blob.azurite")

local M = { name = "azure" }

local IMAGE = "b39f27a8b8c64d52b05eac6a62ebad85__Ubuntu-14_04_3-LTS-amd64-server-20150908-en-us-30GB"
local LOCATION = "West US"
local HOST_SLOTS = 4

M.kinds = { "error", "throttled", "timeout", "reset", "hold" }

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

--- opts: address_base (required), host_slots (default 4), cloud_init, work.
-- The subscription's network configuration as the cloud starts: someone
-- else's network, which every bootstrap, failure and destroy must keep
-- byte for byte (leftovers() reports any change).
M.FOREIGN_NETWORK = '<?xml version="1.0" encoding="utf-8"?>\n'
  .. '<NetworkConfiguration xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
  .. 'xmlns="http://schemas.microsoft.com/ServiceHosting/2011/07/NetworkConfiguration">\n'
  .. '  <VirtualNetworkConfiguration>\n    <Dns />\n    <VirtualNetworkSites>\n'
  .. '      <VirtualNetworkSite name="payroll-net" Location="West US">\n'
  .. '        <AddressSpace>\n          <AddressPrefix>172.16.0.0/12</AddressPrefix>\n        </AddressSpace>\n'
  .. '        <Subnets><Subnet name="db"><AddressPrefix>172.16.1.0/24</AddressPrefix></Subnet></Subnets>\n'
  .. '      </VirtualNetworkSite>\n    </VirtualNetworkSites>\n  </VirtualNetworkConfiguration>\n'
  .. '</NetworkConfiguration>\n'

function M.start(opts)
  opts = opts or {}
  local base = opts.address_base
  assert(math.type(base) == "integer", "clouds.azure.start: address_base required")
  local slots = opts.host_slots or HOST_SLOTS
  assert(base + slots <= 254, "clouds.azure.start: address_base + host_slots beyond 127.0.0.254")
  local self = setmetatable({ name = M.name, env_type = "azure", kinds = M.kinds, slot = 0, host_slots = slots },
    Cloud)
  self.work = opts.work or h.tmpdir("juju-cloud-azure-")
  self.state_dir = self.work .. "/hosts"
  assert(fs.mkdir_p(self.state_dir, tonumber("700", 8)))
  assert(fs.mkdir_p(self.work .. "/certs", tonumber("700", 8)))
  self.pool = {}
  for i = base + 1, base + slots do self.pool[#self.pool + 1] = "127.0.8." .. i end
  local host = "127.0.0." .. base
  -- a key of its own (azurite's well-known one is on other servers' command lines)
  self.az = azurite.start { host = host, key = crypto.base64(assert(crypto.random_bytes(64))) }
  local p = instance.programs(self.state_dir)
  self.fake = fake.start { host = host, dir = self.work .. "/certs", storage_key = self.az.key,
    launcher = write_launcher(self.work, p.launcher, slots), terminator = p.terminator,
    env = { INSTANCE_ADDRESS_BASE = tostring(base), INSTANCE_OWNER_PID = p.env.INSTANCE_OWNER_PID,
      INSTANCE_CLOUD_INIT = opts.cloud_init or "" } }
  self.secrets = { ["storage account key"] = self.az.key }
  local key = assert(self.fake.pem:match("%-%-%-%-%-BEGIN [%u ]*PRIVATE KEY%-%-%-%-%-\n(.-)%-%-%-%-%-END"),
    "clouds.azure: no private key in the management PEM")
  local n = 0
  for l in key:gmatch("[^\n]+") do
    n = n + 1
    self.secrets["management key line " .. n] = l
  end
  assert(n > 3, "clouds.azure: the management key has too few lines")
  self.fake:netconf(M.FOREIGN_NETWORK)
  self:hosts(false)
  return self
end

function Cloud:environment(extra)
  local s, az = self.fake, self.az
  local attrs = { type = "azure", location = LOCATION, ["management-subscription-id"] = s.subscription,
    ["management-certificate-path"] = s.cert_file, ["storage-account-name"] = az.account,
    ["force-image-name"] = IMAGE, ["management-endpoint"] = s.endpoint, ["storage-endpoint"] = az.endpoint,
    ["cloud-ca-bundle-path"] = s.ca_file, ["default-series"] = "bookworm", ["state-store"] = "sqlite",
    ["bootstrap-timeout"] = 300 }
  for k, v in pairs(extra or {}) do attrs[k] = v end
  return attrs
end

function Cloud:calls()
  local out = {}
  for _, c in ipairs(self.fake:calls()) do
    local status = math.type(c.status) and not c.pending and c.status or nil
    out[#out + 1] = { key = c.key, status = status, code = status, faulted = type(c.fault) == "string",
      pending = c.pending == true, throttled = status == 503 or status == 429 }
  end
  return out
end

--- azurite's access log since clear_calls, for the environment containers
--- (juju-*): "PUT container", "GET provider-state", "PUT tools/...".
function Cloud:storage_calls()
  local text = (fs.read_file(self.az.server.log) or ""):sub((self.storage_mark or 0) + 1)
  local out = {}
  for method, path, status in text:gmatch('"(%u+) (/%S+) HTTP/[%d.]+" (%d+)') do
    local container, inner = path:gsub("%?.*$", ""):match("^/[^/]+/(juju%-[^/]+)/?(.*)$")
    if container then
      local what = inner == "" and "container" or http.url_unescape(inner):gsub("^(tools/).*", "%1...")
      out[#out + 1] = { key = method .. " " .. what, status = tonumber(status), bucket = container }
    end
  end
  return out
end

function Cloud:clear_calls()
  self.fake:clear_calls()
  self.storage_mark = #(fs.read_file(self.az.server.log) or "")
end
function Cloud:clear_faults() self.fake:clear_faults() end

local function error_message(key) return "matrix fault in " .. key end

function Cloud:inject(key, kind, opts)
  opts = opts or {}
  local f
  if kind == "error" then
    f = { op = key, kind = "error", status = 400, code = "BadRequest", message = error_message(key), count = 1 }
  elseif kind == "throttled" then
    f = { op = key, kind = "throttle", count = opts.count or 1 }
  elseif kind == "timeout" or kind == "hold" then
    f = { op = key, kind = "delay", seconds = opts.seconds or 10, reset = true, count = 1 }
  elseif kind == "reset" then
    f = { op = key, kind = "reset", count = -1 }
  else
    error("clouds.azure: unknown fault kind " .. tostring(kind), 2)
  end
  if opts.skip then f.skip = opts.skip end
  self.fake:fault(f)
end

-- "GET /services/hostedservices/{svc}/deployments/{dep}" -> "GET", {"/services/hostedservices/",
-- "/deployments/"}: what the provider's line shows of the call (its real path holds the names).
local function call_words(key)
  local method, path = key:match("^(%u+) (.*)$")
  local pieces = {}
  for piece in (path .. "{}"):gmatch("([^{}]*){[^}]*}") do
    if piece ~= "" then pieces[#pieces + 1] = piece end
  end
  return method, pieces
end

--- What the user's one error line must say for a fault of kind at key.
function M.fault_text(kind, key)
  if kind == "hold" then return { "interrupted" } end
  local method, pieces = call_words(key)
  local want = { "azure: " .. method .. " https://" }
  for _, p in ipairs(pieces) do want[#want + 1] = p end
  if kind == "error" then want[#want + 1] = "400 Bad Request: BadRequest: " .. error_message(key)
  elseif kind == "timeout" then want[#want + 1] = "within the request's deadline of"
  elseif kind == "reset" then want[#want + 1] = "reset"
  else error("clouds.azure: unknown fault kind " .. tostring(kind), 2) end
  return want
end
Cloud.fault_text = function(_, kind, key) return M.fault_text(kind, key) end

--- on: roles are real test hosts, each hosted bootstrap at the next
--- address of the range; off: roles take the pool's addresses.
function Cloud:hosts(on)
  if on then
    h.write(self.work .. "/launch-slot", tostring(self.slot % self.host_slots) .. "\n")
    self.slot = self.slot + 1
    self.fake:control("config", { launcher = true })
  else
    self.fake:control("config", { launcher = false, address_pool = self.pool })
  end
end

function Cloud:settle()
  assert(self.fake:settle(60), "the management server did not settle")
end

-- A SharedKey-signed request to azurite (the store module has no container listing).
local function blob_request(az, method, query)
  local req = { method = method, url = az.endpoint .. "/" .. query, headers = {} }
  sign.sign(req, { account = az.account, key = assert(crypto.unbase64(az.key)),
    now = os.time() })
  local r, msg = http.request { url = req.url, method = method, headers = req.headers, timeout = 30 }
  assert(r, "azurite " .. query .. ": " .. tostring(msg))
  assert(r.status == 200, "azurite " .. query .. ": HTTP " .. r.status .. " " .. tostring(r.body))
  return r.body
end

local function containers(az)
  local root = assert(xml.decode(blob_request(az, "GET", "?comp=list"), "azurite containers"))
  local out = {}
  local function walk(e)
    for _, c in ipairs(e.children or {}) do
      if c.name == "Container" then
        for _, n in ipairs(c.children or {}) do
          if n.name == "Name" then out[#out + 1] = n.text end
        end
      else
        walk(c)
      end
    end
  end
  walk(root)
  return out
end

local function store(az, container)
  return assert(blob.new { account = az.account, key = az.key, container = container, endpoint = az.endpoint,
    create = false })
end

--- What is left, from the emulators' own state: affinity groups, cloud
--- services, deployments, virtual networks, containers and their blobs.
function Cloud:leftovers()
  self:settle()
  local l = self.fake:leftovers()
  local groups = { { "affinity-group", l.affinity_groups }, { "cloud-service", l.hosted_services },
    { "deployment", l.deployments }, { "network", l.networks }, { "container", {} } }
  for _, name in ipairs(containers(self.az)) do
    table.insert(groups[5][2], name)
    for _, b in ipairs(assert(store(self.az, name):list())) do
      groups[#groups + 1] = { "blob", { name .. "/" .. b } }
    end
  end
  local doc = self:state().netconf
  if doc ~= M.FOREIGN_NETWORK then
    groups[#groups + 1] = { "network document", { "changed: the foreign network is not kept byte for byte" } }
  end
  return require("clouds.common").labelled(groups)
end

function Cloud:host_records() return require("clouds.common").host_records(self.state_dir) end
function Cloud:state() return self.fake:state() end

--- The roles not deleted: {id=, user_data=, pid=}.
function Cloud:machines()
  local out = {}
  local st = self:state()
  for svc, s in pairs(st.services) do
    for _, d in pairs(s.deployments) do
      local id = svc .. "-" .. d.role
      local text = fs.read_file(self.state_dir .. "/" .. id .. ".json")
      local rec = text and json.decode(text)
      out[#out + 1] = { id = id, user_data = d.user_data, pid = rec and rec.sshd_pid }
    end
  end
  return out
end

--- Every blob azurite holds, copied into work/stored/<container>/<name> (0600): their paths.
function Cloud:stored_files()
  local root = self.work .. "/stored"
  fs.remove_tree(root)
  local out = {}
  for _, name in ipairs(containers(self.az)) do
    local st = store(self.az, name)
    for _, b in ipairs(assert(st:list())) do
      local path = root .. "/" .. name .. "/" .. b
      h.write(path, assert(st:get(b)), tonumber("600", 8))
      out[#out + 1] = path
    end
  end
  table.sort(out)
  return out
end

function Cloud:stop()
  self.fake:stop()
  self.az.server:stop()
  instance.terminate_all(self.state_dir)
end

return M
