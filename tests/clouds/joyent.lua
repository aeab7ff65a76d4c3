-- tests/clouds/joyent.lua: the emulated Joyent cloud of the command-level
-- specs and benches, behind the interface of every emulated cloud (its
-- description: tests/clouds/ec2.lua's header), on the CloudAPI fake
-- (tests/servers/cloudapi: gosdc's model, both HTTP Signature checks, its
-- /_test/ control API) and the Manta fake (tests/servers/manta) it starts.
--
--   local c = require("clouds.joyent").start { address_base = 40, cloud_init = "emulated" }
--
-- The fakes listen on 127.0.0.<address_base>; machines that are real test
-- hosts take 127.0.0.<base+1>..<base+host_slots>, and without hosts the
-- fake's pool 127.0.7.<base+1>..<base+host_slots> (nobody listens there).
-- Keys of calls() are the fake's templates, "METHOD /{user}/machines/{id}";
-- storage_calls() are the Manta fake's requests under the control directory,
-- "METHOD provider-state", "PUT tools/...", "PUT directory" (the control
-- directory itself). Faults: error = one 400 InvalidArgument
-- (a POST is never retried on it), throttled = 429 (retried: CloudAPI
-- refuses a rate-limited call before acting), timeout/hold = no answer for
-- opts.seconds then a reset, reset = every call of key reset.
-- c.secrets: every line of the account's private key and its key id (the
-- provider treats sdc-key-id and manta-key-id as secret).
local instance = require("juju.testing.instance")
local json = require("juju.json")
local shell = require("juju.shell")
local fs = require("juju.fs")
local h = require("helpers")
local imagemeta = require("imagemeta")
local fake = require("servers.cloudapi.fake")

local M = { name = "joyent" }

local IMAGE = "11223344-0a0a-ff99-11bb-0a1b2c3d4e5f" -- one of gosdc's images
local REGION = "some-region" -- sdc-url on a loopback address (Juju's test hook)
local HOST_SLOTS = 5

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

--- opts: address_base (required), host_slots (default 5), cloud_init, work.
function M.start(opts)
  opts = opts or {}
  local base = opts.address_base
  assert(math.type(base) == "integer", "clouds.joyent.start: address_base required")
  local slots = opts.host_slots or HOST_SLOTS
  assert(base + slots <= 254, "clouds.joyent.start: address_base + host_slots beyond 127.0.0.254")
  local self = setmetatable({ name = M.name, env_type = "joyent", kinds = M.kinds, slot = 0, host_slots = slots },
    Cloud)
  self.work = opts.work or h.tmpdir("juju-cloud-joyent-")
  self.state_dir = self.work .. "/hosts"
  assert(fs.mkdir_p(self.state_dir, tonumber("700", 8)))
  self.pool = string.format("127.0.7.%d-%d", base + 1, base + slots)
  local p = instance.programs(self.state_dir)
  self.fake = fake.start("127.0.0." .. base, "joyentcloud" .. base, {
    launcher = write_launcher(self.work, p.launcher, slots), terminator = p.terminator,
    address_pool = self.pool,
    env = { INSTANCE_ADDRESS_BASE = tostring(base), INSTANCE_OWNER_PID = p.env.INSTANCE_OWNER_PID,
      INSTANCE_CLOUD_INIT = opts.cloud_init or "" } })
  self.secrets = { ["sdc-key-id"] = self.fake.key_id }
  local n = 0
  for l in self.fake.key_pem:gmatch("[^\n]+") do
    if not l:find("-----", 1, true) then
      n = n + 1
      self.secrets["private-key line " .. n] = l
    end
  end
  assert(n > 3, "clouds.joyent: the private key has too few lines")
  self.images = imagemeta.write(self.work .. "/img", { region = REGION, endpoint = self.fake.sdc_url,
    images = { { id = IMAGE, series = "bookworm", arch = "amd64" } } })
  self:hosts(false)
  return self
end

function Cloud:environment(extra)
  local j = self.fake
  local attrs = { type = "joyent", ["sdc-user"] = j.user, ["sdc-key-id"] = j.key_id, ["sdc-url"] = j.sdc_url,
    ["manta-user"] = j.user, ["manta-key-id"] = j.key_id, ["manta-url"] = j.manta_url,
    ["private-key-path"] = j.key_path, ["image-metadata-url"] = self.images, ["default-series"] = "bookworm",
    ["state-store"] = "sqlite", ["bootstrap-timeout"] = 300 }
  for k, v in pairs(extra or {}) do attrs[k] = v end
  return attrs
end

function Cloud:calls()
  local out = {}
  for _, c in ipairs(self.fake:calls()) do
    local status = math.type(c.status) and c.status ~= 0 and not c.pending and c.status or nil
    out[#out + 1] = { key = c.method .. " " .. c.path, status = status,
      faulted = type(c.fault) == "string" and c.fault ~= "" or c.fault == true, pending = c.pending == true,
      throttled = status == 429 or status == 503 }
  end
  return out
end

--- The Manta requests since clear_calls, from the Manta fake's own log.
function Cloud:storage_calls()
  local text = (fs.read_file(self.fake.manta.log) or ""):sub((self.storage_mark or 0) + 1)
  local out = {}
  for method, path, status in text:gmatch("(%u+) (/%S+) (%d+)") do
    -- /<user>/stor/<control-dir>[/<name>]: keyed by the name in the control
    -- directory ("directory" for itself, "tools/..." for the tarballs)
    local dir, inner = path:gsub("%?.*$", ""):match("^/[^/]+/stor/([^/]+)/?(.*)$")
    if dir then
      local what = inner == "" and "directory" or inner:gsub("^(tools/).*", "%1...")
      out[#out + 1] = { key = method .. " " .. what, status = tonumber(status), bucket = dir }
    end
  end
  return out
end

function Cloud:clear_calls()
  self.fake:clear_calls()
  self.storage_mark = #(fs.read_file(self.fake.manta.log) or "")
end
function Cloud:clear_faults() self.fake:clear_faults() end

local function error_message(key) return "matrix fault in " .. key end

function Cloud:inject(key, kind, opts)
  opts = opts or {}
  local f
  if kind == "error" then
    f = { op = key, status = 400, code = "InvalidArgument", message = error_message(key), count = 1 }
  elseif kind == "throttled" then
    f = { op = key, status = 429, code = "RequestThrottled", message = "slow down", count = opts.count or 1 }
  elseif kind == "timeout" or kind == "hold" then
    f = { op = key, delay = opts.seconds or 10, reset = true, count = 1 }
  elseif kind == "reset" then
    f = { op = key, reset = true, count = -1 }
  else
    error("clouds.joyent: unknown fault kind " .. tostring(kind), 2)
  end
  if opts.skip then f.skip = opts.skip end
  self.fake:faults(f)
end

--- What the user's one error line must say for a fault of kind at key.
function M.fault_text(kind, key)
  -- a HEAD's answer has no body: the line names the call and the status
  if kind == "error" then return { "cloudapi " .. key, key:find("^HEAD ") and "400 Bad Request" or error_message(key) } end
  if kind == "timeout" then return { "cloudapi " .. key, "deadline of" } end
  if kind == "reset" then return { "cloudapi " .. key, "reset" } end
  if kind == "hold" then return { "interrupted" } end
  error("clouds.joyent: unknown fault kind " .. tostring(kind), 2)
end
Cloud.fault_text = function(_, kind, key) return M.fault_text(kind, key) end

--- on: machines are real test hosts, each hosted bootstrap at the next
--- address of the range; off: machines take the pool's addresses.
function Cloud:hosts(on)
  if on then
    h.write(self.work .. "/launch-slot", tostring(self.slot % self.host_slots) .. "\n")
    self.slot = self.slot + 1
    self.fake:config { launcher = true }
  else
    self.fake:config { launcher = false, address_pool = self.pool }
  end
end

function Cloud:settle()
  local ok, body = self.fake:settle(60)
  assert(ok, "the CloudAPI fake did not settle: " .. tostring(body))
end

--- What is left, from the fakes' own state: machines not deleted, and
--- every object Manta holds.
function Cloud:leftovers()
  self:settle()
  local out = {}
  for _, id in ipairs(self.fake:leftovers().machines) do out[#out + 1] = "machine " .. id end
  for path in pairs(self.fake:manta_files()) do out[#out + 1] = "object " .. path end
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

--- The machines not deleted: {id=, user_data=, pid=}.
function Cloud:machines()
  local out = {}
  for _, m in ipairs(self:state().machines) do
    if not m.deleted and not m.gone then
      local text = fs.read_file(self.state_dir .. "/" .. m.id .. ".json")
      local rec = text and json.decode(text)
      out[#out + 1] = { id = m.id, user_data = self:user_data(m.id), pid = rec and rec.sshd_pid }
    end
  end
  return out
end

--- Every object Manta holds, copied into work/stored/... (0600): their paths.
function Cloud:stored_files()
  local root = self.work .. "/stored"
  fs.remove_tree(root)
  local out = {}
  for path, content in pairs(self.fake:manta_files()) do
    h.write(root .. path, content, tonumber("600", 8))
    out[#out + 1] = root .. path
  end
  table.sort(out)
  return out
end

function Cloud:stop()
  self.fake:stop()
  instance.terminate_all(self.state_dir)
end

return M
