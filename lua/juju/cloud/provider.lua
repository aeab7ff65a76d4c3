-- juju.cloud.provider: what the cloud providers (ec2, openstack, ...)
-- share around the contract: the HTTP options of an environment, the
-- journal look-ups, waits on the provider's clock, the arches of a
-- start_instance, simplestreams image sources and fetches, and machine 0's
-- status documents over SSH with the right host key pinned.
local api = require("juju.lazy")("juju.cloud.api")
local http = require("juju.lazy")("juju.http")
local sshinit = require("juju.lazy")("juju.sshinit")
local state_dump_mod = require("juju.lazy")("juju.agent.state_dump")
local wait = require("juju.wait")

local M = {}

M.DEFAULT_IMAGE_SOURCE = "http://cloud-images.ubuntu.com/releases"
M.STATUS_CONNECT_TIMEOUT = 30
M.DATA_DIR = "/var/lib/juju"
M.UBUNTU = "ubuntu"
local MAX_METADATA = 64 * 1024 * 1024

local function present(v) return type(v) == "string" and v ~= "" end
M.present = present

--- Proxies, the CA bundle and the request deadline from the config
--- (juju.cloud.api.http_options), the process environment seen through
--- the provider context when there is one.
function M.http_options(cfg, ctx)
  return api.http_options(cfg, ctx and function(name) return ctx:getenv(name) end or nil)
end

--- The created journal resource of kind whose id or name is id_or_name.
function M.journaled(env, kind, id_or_name)
  for _, r in ipairs(env.ctx.journal:resources(kind)) do
    if r.state == "created" and (r.id == id_or_name or r.name == id_or_name) then return r end
  end
end

--- Any journal resource (intended or created) of kind named name.
function M.intended(env, kind, name)
  for _, r in ipairs(env.ctx.journal:resources(kind)) do
    if r.name == name or r.id == name then return r end
  end
end

--- juju.wait.poll on the provider's clock with its progress lines and
--- interrupts: o = {what=, timeout=, poll=} plus wait.poll's options
--- (default interval 1, backoff 1.5, at most 10 s apart).
function M.poll(env, o)
  local ctx = env.ctx
  return wait.poll {
    what = o.what, timeout = o.timeout, interval = o.interval or 1, backoff = o.backoff or 1.5,
    max_interval = o.max_interval or 10, jitter = o.jitter, clock = ctx.clock,
    say = function(line) ctx:infof("%s", line) end, check_interrupt = function() ctx:check_interrupt() end,
    poll = o.poll,
  }
end

--- The arches start_instance looks for: the arch constraint, else those of
--- the tools found, else amd64.
function M.arches(params)
  local c = params.constraints or {}
  if present(c.arch) then return { c.arch } end
  local seen, out = {}, {}
  for _, t in ipairs(params.tools or {}) do
    if t.arch and not seen[t.arch] then seen[t.arch] = true; out[#out + 1] = t.arch end
  end
  if #out == 0 then out = { "amd64" } end
  return out
end

--- Image metadata sources for cfg: image-metadata-url (a bare path means
--- its images/ directory), then extra (the cloud's own, e.g. a catalog
--- endpoint), then cloud-images.ubuntu.com (`/<image-stream>` for a stream
--- other than released). A list of URLs.
function M.image_sources(cfg, extra)
  local out = {}
  local url = cfg["image-metadata-url"]
  if present(url) then
    if url:sub(1, 1) == "/" then url = "file://" .. url:gsub("/+$", "") .. "/images" end
    out[#out + 1] = url
  end
  for _, u in ipairs(extra or {}) do out[#out + 1] = u end
  local stream = cfg["image-stream"]
  if not present(stream) or stream == "released" then
    out[#out + 1] = M.DEFAULT_IMAGE_SOURCE
  else
    out[#out + 1] = "http://cloud-images.ubuntu.com/" .. stream
  end
  return out
end

--- A simplestreams fetch function with the given juju.http options.
function M.fetcher(http_opts)
  return function(url)
    local o = { retries = 1, max_size = MAX_METADATA, timeout = 60 }
    for k, v in pairs(http_opts or {}) do o[k] = v end
    local r, msg, code = http.get(url, o)
    if not r then return nil, msg, code end
    return r.body
  end
end

--- The host key to pin for machine 0: the one it made at the end of
--- bootstrap (the .jenv's bootstrap-host-key), else the generated one the
--- provider kept on the instance (fallback: a bootstrap that stopped short).
function M.host_key(env, fallback)
  local pinned = env.cfg["bootstrap-host-key"]
  if present(pinned) then return pinned end
  return fallback
end

--- Machine 0's status documents (`jujud state-dump`) over SSH as ubuntu at
--- address, the host key pinned (M.host_key). Returns the document or nil,
--- message, code.
function M.state_dump(env, address, fallback_key)
  local target = sshinit.target(env.ctx, env.cfg, { user = M.UBUNTU, host_key = M.host_key(env, fallback_key) })
  local s, err, code = sshinit.connect(target, address, M.STATUS_CONNECT_TIMEOUT)
  if not s then return nil, err, code end
  local doc, derr, dcode = sshinit.state_dump_session(s, M.DATA_DIR)
  s:close()
  return doc, derr, dcode
end

--- Waits (ctx:wait, within bootstrap-timeout) until machine 0's agent
--- reports started, reading it with state_dump(env).
function M.wait_agent(env, state_dump)
  local timeout = tonumber(env.cfg["bootstrap-timeout"]) or 600
  return env.ctx:wait("for the machine agent's first heartbeat", timeout, function()
    local doc, err = state_dump(env)
    if not doc then return nil, err end
    local st = state_dump_mod.machine_status(doc, "0")
    if st and st.agent_state == "started" then return true end
    return nil, string.format("machine 0's agent is %s", st and st.agent_state or "unknown")
  end, 1)
end

--- The zones to try for a placement directive: `zone=<name>` (that zone
--- only, when it is one of zones) or none (every zone). Returns the list or
--- nil, message, "INVALID".
function M.placement_zones(zones, placement, region)
  if not present(placement) then return zones end
  local want = placement:match("^zone=(.+)$")
  if not want then return nil, string.format("unknown placement directive: %s", placement), "INVALID" end
  for _, z in ipairs(zones) do if z == want then return { z } end end
  return nil, string.format("availability zone %q is unavailable or not in %s", want, region), "INVALID"
end

--- Sorts groups (each with .name) longest name first: a machine's group
--- (juju-<env>-<n>) before the environment's (juju-<env>).
function M.machine_groups_first(groups)
  table.sort(groups, function(a, b) return #a.name > #b.name or (#a.name == #b.name and a.name < b.name) end)
  return groups
end

return M
