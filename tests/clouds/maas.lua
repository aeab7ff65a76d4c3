-- tests/clouds/maas.lua: the emulated MAAS cloud of the command-level specs
-- and benches, behind the interface of every emulated cloud (its
-- description: tests/clouds/ec2.lua's header), on the MAAS test server
-- (tests/servers/maas: gomaasapi's test server with the node life cycle,
-- the files API as the object store, its /_test/ control API).
--
--   local c = require("clouds.maas").start { address_base = 34, cloud_init = "emulated" }
--
-- The server listens on 127.0.0.<address_base>; nodes that are real test
-- hosts take 127.0.0.<base+1>..<base+host_slots>. Keys of calls() are the
-- server's call names, "METHOD template?op=X" ("POST nodes/?op=acquire",
-- "GET nodes/?op=deployment_status"): every MAAS API call but the files
-- API's, MAAS's object store, which are storage_calls() (as ec2's S3 and
-- openstack's Swift calls are not rows of the matrix).
-- Faults: error = one 409 with the cloud's plain-text message (a 400 would be
-- "no deployment_status here" to the provider, as to Juju; acquire and
-- start are never retried on it), throttled = 429 with Retry-After 1,
-- timeout/hold = no answer for opts.seconds then a reset, reset = every
-- call of key reset. hosts(false): starts run no launcher and a node is
-- Deployed at a TEST-NET address after one deployment_status poll.
local instance = require("juju.testing.instance")
local json = require("juju.json")
local shell = require("juju.shell")
local fs = require("juju.fs")
local h = require("helpers")
local fake = require("servers.maas.fake")

local M = { name = "maas" }

local HOST_SLOTS = 5
local NODES = 3 -- Ready nodes: a bootstrap takes one, its cleanup releases it

M.kinds = { "error", "throttled", "timeout", "reset", "hold" }

-- The launcher the server runs: the instance launcher at the next slot of
-- the spec's range (the server numbers starts over its life).
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

--- opts: address_base (required), host_slots (default 5), cloud_init, work.
function M.start(opts)
  opts = opts or {}
  local base = opts.address_base
  assert(math.type(base) == "integer", "clouds.maas.start: address_base required")
  local slots = opts.host_slots or HOST_SLOTS
  assert(base + slots <= 254, "clouds.maas.start: address_base + host_slots beyond 127.0.0.254")
  local self = setmetatable({ name = M.name, env_type = "maas", kinds = M.kinds, slot = 0, host_slots = slots },
    Cloud)
  self.work = opts.work or h.tmpdir("juju-cloud-maas-")
  self.secrets = { ["maas-oauth"] = fake.SECRET }
  self.state_dir = self.work .. "/hosts"
  assert(fs.mkdir_p(self.state_dir, tonumber("700", 8)))
  local p = instance.programs(self.state_dir)
  self.fake = fake.start("127.0.0." .. base, "maascloud" .. base, { nodes = NODES,
    launcher = write_launcher(self.work, p.launcher, slots), terminator = p.terminator,
    env = { INSTANCE_ADDRESS_BASE = tostring(base), INSTANCE_OWNER_PID = p.env.INSTANCE_OWNER_PID,
      INSTANCE_CLOUD_INIT = opts.cloud_init or "" } })
  self:hosts(false)
  return self
end

function Cloud:environment(extra)
  local attrs = { type = "maas", ["maas-server"] = self.fake.server_url, ["maas-oauth"] = fake.OAUTH,
    ["default-series"] = "bookworm", ["state-store"] = "sqlite", ["bootstrap-timeout"] = 300 }
  for k, v in pairs(extra or {}) do attrs[k] = v end
  return attrs
end

local function key_of(c) return c.method .. " " .. c.path .. ((c.op or "") ~= "" and ("?op=" .. c.op) or "") end

function Cloud:calls()
  local out = {}
  for _, c in ipairs(self.fake:calls()) do
    if c.path:find("^files/") then goto continue end -- the object store: storage_calls
    local status = math.type(c.status) and c.status ~= 0 and c.status or nil
    out[#out + 1] = { key = key_of(c), status = status, faulted = c.fault == true, pending = c.pending == true,
      throttled = status == 429 or status == 503 }
    ::continue::
  end
  return out
end

--- The files API calls since clear_calls: "POST add provider-state",
--- "GET get provider-state", "POST add tools/...", "GET list".
function Cloud:storage_calls()
  local out = {}
  for _, c in ipairs(self.fake:calls()) do
    if c.path:find("^files/") then
      out[#out + 1] = { key = key_of(c), status = math.type(c.status) and c.status or nil }
    end
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
    f = { op = key, status = 409, body = error_message(key), count = 1 }
  elseif kind == "throttled" then
    f = { op = key, status = 429, count = opts.count or 1 }
  elseif kind == "timeout" or kind == "hold" then
    f = { op = key, delay = opts.seconds or 10, reset = true, count = 1 }
  elseif kind == "reset" then
    f = { op = key, reset = true, count = -1 }
  else
    error("clouds.maas: unknown fault kind " .. tostring(kind), 2)
  end
  if opts.skip then f.skip = opts.skip end
  self.fake:faults(f)
end

-- How the provider's line names the call: "maas: POST http://HOST/MAAS/api/1.0/nodes/ID/?op=start"
-- (the real URL): the method, the template's pieces around its ids, the op.
local function call_named(key)
  local method, path = key:match("^(%u+) ([^?]*)")
  local out = { "maas: " .. method .. " " }
  for piece in ("/api/1.0/" .. path):gmatch("[^{}]+") do
    if not piece:match("^%l+$") then out[#out + 1] = piece end -- an id's name ({id}) is no piece
  end
  local op = key:match("%?op=(%w+)")
  if op then out[#out + 1] = "op=" .. op end
  return out
end

local function plus(list, ...)
  for _, v in ipairs({ ... }) do list[#list + 1] = v end
  return list
end

--- What the user's one error line must say for a fault of kind at key.
function M.fault_text(kind, key)
  if kind == "error" then return plus(call_named(key), error_message(key)) end
  if kind == "timeout" then return plus(call_named(key), "deadline of") end
  if kind == "reset" then return plus(call_named(key), "reset") end
  if kind == "hold" then return { "interrupted" } end
  error("clouds.maas: unknown fault kind " .. tostring(kind), 2)
end
Cloud.fault_text = function(_, kind, key) return M.fault_text(kind, key) end

--- on: nodes started are real test hosts, each hosted bootstrap at the
--- next address of the range; off: no launcher (a TEST-NET address).
function Cloud:hosts(on)
  if on then
    h.write(self.work .. "/launch-slot", tostring(self.slot % self.host_slots) .. "\n")
    self.slot = self.slot + 1
  end
  self.fake:config { launcher = on and 1 or 0 }
end

function Cloud:settle()
  local ok, body = self.fake:settle(60)
  assert(ok, "the MAAS server did not settle: " .. tostring(body))
end

--- What is left in the server, from its own state: nodes not Ready or
--- still owned, and files.
function Cloud:leftovers()
  self:settle()
  local left = self.fake:leftovers()
  local out = {}
  for _, id in ipairs(left.nodes) do out[#out + 1] = "node " .. id end
  for _, f in ipairs(left.files) do out[#out + 1] = "file " .. f end
  table.sort(out)
  return out
end

function Cloud:host_records()
  local out = {}
  for _, f in ipairs(fs.list(self.state_dir) or {}) do
    if f:match("%.json$") then out[#out + 1] = f end
  end
  return out
end

function Cloud:user_data(id) return self.fake:user_data(id) end
function Cloud:state() return self.fake:state() end

--- The nodes owned (allocated to an environment): {id=, user_data=, pid=}.
function Cloud:machines()
  local out = {}
  for _, n in ipairs(self:state().nodes) do
    if n.status ~= "Ready" then
      local text = fs.read_file(self.state_dir .. "/" .. n.system_id .. ".json")
      local rec = text and json.decode(text)
      out[#out + 1] = { id = n.system_id, user_data = self:user_data(n.system_id), pid = rec and rec.sshd_pid }
    end
  end
  return out
end

--- Every file the files API holds, fetched by key into work/stored/NAME (0600).
function Cloud:stored_files()
  local root = self.work .. "/stored"
  fs.remove_tree(root)
  local out = {}
  local http = require("juju.http")
  for _, f in ipairs(self:state().files or {}) do
    local r, msg, _, resp = http.request { url = self.fake.server_url .. "/api/1.0/files/?op=get&filename=" ..
      http.url_escape(f), retries = 0, timeout = 120, headers = { Authorization = self.oauth_header() } }
    r = r or resp
    assert(r, msg)
    assert(r.status == 200, f .. ": " .. tostring(r.status))
    h.write(root .. "/" .. f, r.body, tonumber("600", 8))
    out[#out + 1] = root .. "/" .. f
  end
  table.sort(out)
  return out
end

--- A PLAINTEXT OAuth header for the test credentials (stored_files' reads).
function Cloud.oauth_header()
  local consumer, token, secret = fake.OAUTH:match("^([^:]+):([^:]+):(.+)$")
  return string.format('OAuth oauth_version="1.0", oauth_signature_method="PLAINTEXT", oauth_consumer_key="%s", ' ..
    'oauth_token="%s", oauth_signature="%%26%s", oauth_nonce="%d", oauth_timestamp="%d"', consumer, token, secret,
    math.random(1, 1 << 30), os.time())
end

function Cloud:stop()
  self.fake:stop()
  instance.terminate_all(self.state_dir)
end

return M
