-- juju.bootstrap: the client side of `juju bootstrap`, as one table of steps
-- (spec steps 4-15). Every step has a stable ID and one function named after
-- it; progress output, timings, fault injection, the benchmarks and the fault
-- matrix all read M.STEPS.
--
-- After prepare, any failure or SIGINT/SIGTERM destroys what this bootstrap
-- created (unless --keep-broken). Every created resource is in the journal
-- (juju.journal) the moment its ID is known.
local fs = require("juju.fs")
local sys = require("juju.sys")
local yaml = require("juju.yaml")
local version = require("juju.version")
local constraints = require("juju.constraints")
local journal = require("juju.journal")
local agenttools = require("juju.agenttools")
local instancecfg = require("juju.instancecfg")
local cloudinit = require("juju.cloudinit")
local prepare = require("juju.environs.prepare")
local envconfig = require("juju.environs.config")
local configstore = require("juju.environs.configstore")

local M = {}

M.ALREADY_BOOTSTRAPPED_WARNING = "This juju environment is already bootstrapped. If you want to start a new Juju\n"
  .. "environment, first run juju destroy-environment to clean up, or switch to an\n"
  .. "alternative environment."
M.KEEP_BROKEN_WARNING = "bootstrap failed but --keep-broken was specified so environment is not being destroyed.\n"
  .. "When you are finished diagnosing the problem, remember to run juju destroy-environment --force\n"
  .. "to clean up the environment."

local Run = {}
Run.__index = Run

-- Errors carry the step that failed; `fail` builds one.
local Failure = {}
Failure.__index = Failure
Failure.__tostring = function(f) return f.message end
local function failure(message, extra)
  local f = setmetatable({ message = message }, Failure)
  for k, v in pairs(extra or {}) do f[k] = v end
  return f
end

--- Calls provider operation `name` with env and args. The provider table
--- is instrumented (juju.providers.instrument) when faults are injected.
function Run:op(name, ...)
  local fn = self.provider[name]
  if type(fn) ~= "function" then
    return nil, string.format("provider %q does not implement %s", self.provider.name, name)
  end
  local res, err, code = fn(self.env, ...)
  self:check_interrupt()
  return res, err, code
end

--- The environment's storage; raises a Failure when it cannot be opened.
function Run:storage()
  if not self._storage then
    local st, err = self.provider.storage(self.env)
    if not st then error(failure("cannot open environment storage: " .. tostring(err)), 0) end
    self._storage = st
  end
  return self._storage
end

-- Raises a Failure when SIGINT/SIGTERM arrived.
function Run:check_interrupt()
  local sig = self.signals and self.signals:pending()
  if sig then
    self.interrupted = sig
    self.ctx:infof("Interrupt signalled: waiting for bootstrap to exit")
    error(failure("interrupted", { code = "INTERRUPTED" }), 0)
  end
end

--- Waits until poll() returns a value, calling it every interval seconds up
--- to timeout seconds, with a heartbeat line every `heartbeat` seconds that
--- shows the deadline. Returns poll's value, or nil, message, "TIMEOUT".
function Run:wait(what, timeout, interval, poll)
  local clock = self.ctx.clock
  local start = clock.monotonic()
  local next_beat = start + (self.heartbeat or 10)
  while true do
    local v, err = poll()
    if v then return v end
    local now = clock.monotonic()
    if now - start >= timeout then
      return nil, string.format("waited for %s %s%s", M.duration(timeout), what, err and (": " .. err) or ""), "TIMEOUT"
    end
    if now >= next_beat then
      self.ctx:infof("Still waiting %s (%s left)", what, M.duration(timeout - (now - start)))
      next_beat = now + (self.heartbeat or 10)
    end
    local slept, why = clock.sleep(math.min(interval, timeout - (now - start)))
    if slept == false and why == "INTERRUPTED" then self:check_interrupt() end
    self:check_interrupt()
  end
end

--- Go-style durations: 10m0s, 1.5s, 250ms.
function M.duration(s)
  if s < 1 then return string.format("%dms", math.floor(s * 1000 + 0.5)) end
  if s < 60 then
    if s == math.floor(s) then return string.format("%ds", s) end
    return string.format("%.1fs", s)
  end
  local m = math.floor(s / 60)
  return string.format("%dm%ds", m, math.floor(s - m * 60))
end

-- ---------------------------------------------------------------- steps --

local steps = {}

--- Step 4: prepare the environment (admin-secret, CA, UUID, .jenv).
function steps.prepare(b)
  local p, err = prepare.prepare(b.ctx, b.home, b.name)
  if not p then
    return nil, "there was an issue examining the environment: " .. err
  end
  b.provider, b.env, b.cfg, b.info, b.existed = p.provider, p.env, p.cfg, p.info, p.existed
  b.created_jenv = not p.existed
  b.journal = journal.open(b.store, b.name, b.info)
  return true
end

--- Step 5: refuse an environment that is bootstrapped, or whose earlier
--- bootstrap did not finish.
function steps.check_bootstrapped(b)
  local j = b.journal
  local phase = j:phase()
  if b.existed and phase ~= "prepared" and phase ~= "bootstrapped" and #j:resources() > 0 then
    b.keep = true
    return nil, string.format("a previous bootstrap of %q did not finish (phase %s, pid %s); "
      .. "its resources are recorded in %s.\nRun: juju destroy-environment %s", b.name, j:phase(),
      tostring(j.data.pid), b.store:path(b.name), b.name)
  end
  local ids, err, code = b:op("state_server_instances")
  if ids then
    b.keep = true
    b.ctx:log_for("juju.cmd.juju"):warningf("%s", M.ALREADY_BOOTSTRAPPED_WARNING)
    return nil, "environment is already bootstrapped", "ALREADY"
  end
  if code ~= "NOT_BOOTSTRAPPED" and code ~= "NO_INSTANCES" then
    return nil, "cannot determine if environment is already bootstrapped.: " .. tostring(err)
  end
  local ok, jerr = j:begin(b.ctx.clock.time())
  if not ok then return nil, jerr end
  return true
end

--- Step 7: sanity checks, storage writable, constraints.
function steps.preflight(b)
  local cfg = b.cfg
  if not cfg["admin-secret"] or cfg["admin-secret"] == "" then return nil, "environment configuration has no admin-secret" end
  local keys = 0
  for line in (cfg["authorized-keys"] or ""):gmatch("[^\n]+") do
    if not line:match("^%s*#") and line:match("%S") then keys = keys + 1 end
  end
  if keys == 0 then return nil, "environment configuration has no authorized-keys" end
  if not cfg["ca-cert"] or cfg["ca-cert"] == "" then return nil, "environment configuration has no ca-cert" end
  if not cfg["ca-private-key"] or cfg["ca-private-key"] == "" then
    return nil, "environment configuration has no ca-private-key"
  end
  -- Storage must be writable before anything is launched (bootstrap-verify).
  local storage = b:storage()
  local ok, err = storage:put("bootstrap-verify", "juju-core storage writing verified: ok\n")
  if not ok then return nil, "provider storage is not writable: " .. tostring(err) end
  storage:remove("bootstrap-verify")
  local spec = b.provider.constraints_validator and b.provider.constraints_validator(b.env) or b.provider.constraints
  local unsupported, cerr = constraints.validate(b.constraints, spec)
  if not unsupported then return nil, cerr end
  if #unsupported > 0 then
    b.log:warningf("unsupported constraints: %s", table.concat(unsupported, ","))
  end
  b.ctx:infof("Bootstrapping environment %q", b.name)
  return true
end

--- Step 7.6: the tools machine 0 may run.
function steps.find_tools(b)
  local available, how = agenttools.find_available(b)
  if not available then return nil, how end
  b.available, b.tools_origin = available, how
  if not b.cfg["agent-version"] then
    b.cfg["agent-version"] = tostring(b.params.requested_version or version.current)
  end
  return true
end

--- Step 8: the provider launches machine 0 (phase 1).
function steps.start_instance(b)
  b.ctx:infof("Starting new instance for initial state server")
  local res, err = b:op("bootstrap", {
    constraints = b.constraints, placement = b.params.placement, available_tools = b.available, run = b,
  })
  if not res then return nil, err end
  b.result = res
  local ok, jerr = b.journal:set_phase("instance-started")
  if not ok then return nil, jerr end
  return true
end

--- Step 9: choose the tools for the instance's arch and series; build and
--- upload them when they are not prepackaged.
function steps.select_tools(b)
  local chosen, newest = agenttools.select(b, b.available, b.result.arch, b.result.series)
  if not chosen then return nil, newest end
  if b.cfg["agent-version"] ~= newest and not b.params.requested_version then
    b.cfg["agent-version"] = newest
  end
  if not chosen.url then
    if not b.params.upload_tools then b.log:warningf("no prepackaged tools available") end
    b.ctx:infof("Building tools to upload (%s)", chosen.binary)
    local dir, derr = fs.mkdtemp("/tmp/juju-tools-")
    if not dir then return nil, "cannot upload bootstrap tools: " .. derr end
    b.tmpdirs[#b.tmpdirs + 1] = dir
    local built, berr = agenttools.build(b, chosen, dir)
    if not built then return nil, "cannot upload bootstrap tools: " .. berr end
    local name = agenttools.storage_name(agenttools.stream(b.cfg), chosen.binary)
    local storage = b:storage()
    local size, sha = storage:put_file(name, built.path)
    if not size then return nil, "cannot upload bootstrap tools: " .. tostring(sha) end
    local ok, jerr = b.journal:record({ kind = "storage", id = name })
    if not ok then return nil, jerr end
    chosen = { version = chosen.version, series = chosen.series, arch = chosen.arch, binary = chosen.binary,
      url = storage:url(name), sha256 = built.sha256, size = built.size, uploaded = true }
  end
  b.tools = chosen
  b.ctx:infof("Installing Juju agent on bootstrap instance")
  return true
end

--- Step 10: finish machine 0's configuration, render the phase-2 script,
--- and let the provider's finalizer install the agent (step 11).
function steps.finalize(b)
  local cfg = b.cfg
  local iparams = {}
  for k, v in pairs(b.result.instance_params or {}) do iparams[k] = v end
  iparams.series, iparams.constraints, iparams.nonce = b.result.series, b.constraints, b.result.nonce
  local icfg, err = instancecfg.new_bootstrap(cfg, iparams)
  if not icfg then return nil, err end
  icfg.agent_start = iparams.agent_start
  icfg.tools = { version = b.tools.binary, url = b.tools.url, sha256 = b.tools.sha256, size = b.tools.size }
  icfg.instance_id = b.result.instance.id
  icfg.hardware = b.result.hardware
  icfg.addresses = M.instance_addresses(b.result.instance)
  local finished, ferr = instancecfg.finish(icfg, cfg, { strip_keys = envconfig.secret_keys(b.provider) })
  if not finished then return nil, "cannot complete machine configuration: " .. ferr end
  local ok, verr = instancecfg.verify(finished)
  if not ok then return nil, verr end
  local script = cloudinit.script(finished, {})
  b.icfg, b.script = finished, script
  local fok, fin_err = b.result.finalize(b, finished, script)
  if not fok then return nil, fin_err end
  local jok, jerr = b.journal:set_phase("agent-installed")
  if not jok then return nil, jerr end
  b.ctx:infof("Bootstrap agent installed")
  return true
end

--- The addresses of an instance (a list, or a method returning one).
function M.instance_addresses(inst)
  local addrs = {}
  if type(inst.addresses) == "function" then addrs = inst:addresses() or {}
  elseif type(inst.addresses) == "table" then addrs = inst.addresses end
  local out = {}
  for _, a in ipairs(addrs) do out[#out + 1] = type(a) == "table" and a.value or a end
  return out
end

--- Step 13.1: record machine 0's API addresses in the .jenv.
function steps.record_endpoints(b)
  local addrs = M.instance_addresses(b.result.instance)
  local servers = {}
  for _, a in ipairs(addrs) do
    local host = type(a) == "table" and a.value or a
    servers[#servers + 1] = string.format(host:find(":", 1, true) and "[%s]:%d" or "%s:%d", host, b.cfg["api-port"])
  end
  b.info["state-servers"] = yaml.array(servers)
  local bc = b.info["bootstrap-config"]
  bc["agent-version"] = b.cfg["agent-version"]
  return b.journal:save()
end

--- Step 13.2: wait until machine 0's agent reports (providers that run one).
function steps.wait_agent(b)
  if b.provider.wait_agent then
    local ok, err = b:op("wait_agent", b)
    if not ok then return nil, err end
  end
  local ok, err = b.journal:set_phase("bootstrapped")
  if not ok then return nil, err end
  return true
end

-- The step table. `message` is Juju's wording of the step for errors.
M.STEPS = {
  { id = "prepare", fn = steps.prepare, what = "preparing the environment" },
  { id = "check-bootstrapped", fn = steps.check_bootstrapped, what = "checking whether the environment is bootstrapped" },
  { id = "preflight", fn = steps.preflight, what = "checking the environment configuration" },
  { id = "find-tools", fn = steps.find_tools, what = "looking for agent tools" },
  { id = "start-instance", fn = steps.start_instance, what = "starting the bootstrap instance" },
  { id = "select-tools", fn = steps.select_tools, what = "selecting and uploading agent tools" },
  { id = "finalize", fn = steps.finalize, what = "installing the agent on the bootstrap instance" },
  { id = "record-endpoints", fn = steps.record_endpoints, what = "recording the API endpoints" },
  { id = "wait-agent", fn = steps.wait_agent, what = "waiting for the agent" },
}

function M.step_ids()
  local out = {}
  for _, s in ipairs(M.STEPS) do out[#out + 1] = s.id end
  return out
end

-- ------------------------------------------------------------- cleanup --

-- Destroys what this run created; returns true or nil, message.
local function cleanup(b)
  local ctx = b.ctx
  local problems = {}
  if b.env then
    local j = b.journal
    local insts = {}
    for _, r in ipairs(j and j:resources("instance") or {}) do insts[#insts + 1] = r.id end
    if #insts > 0 and b.provider.stop_instances then
      ctx:infof("Stopping instance...")
      local ok, err = b.provider.stop_instances(b.env, insts)
      if ok then
        for _, id in ipairs(insts) do j:forget("instance", id) end
      else
        problems[#problems + 1] = "cannot stop instances: " .. tostring(err)
      end
    end
    local storage = b._storage or (b.provider.storage and b.provider.storage(b.env))
    for _, r in ipairs(j and j:resources("storage") or {}) do
      local ok, err = storage:remove(r.id)
      if ok then j:forget("storage", r.id) else problems[#problems + 1] = tostring(err) end
    end
    if b.created_jenv then
      local ok, err = b.provider.destroy(b.env)
      if ok then
        if j then j.data.resources = yaml.array({}) end
      else
        problems[#problems + 1] = "the environment could not be destroyed: " .. tostring(err)
      end
    end
  end
  if #problems > 0 then
    for _, p in ipairs(problems) do ctx:log_for("juju.cmd.juju"):errorf("%s", p) end
    return nil, table.concat(problems, "; ")
  end
  if b.created_jenv then
    local lock = b.store:lock("destroying")
    local ok, err = b.store:remove(b.name)
    if lock then lock:release() end
    if not ok then
      ctx:log_for("juju.cmd.juju"):errorf("the environment jenv file could not be cleaned up: %s", tostring(err))
      return nil, err
    end
  elseif b.journal then
    b.journal.data.phase = "prepared"
    b.journal:save()
  end
  return true
end

-- --------------------------------------------------------------- runner --

local function run_step(b, step)
  local hooks = b.ctx.hooks
  local clock = b.ctx.clock
  local t0 = clock.monotonic()
  b.log:debugf("step %s: start", step.id)
  if hooks.step then
    local ok, msg, code = hooks.step(step.id, "before", b)
    if ok == nil and msg then return nil, msg, code end
  end
  b:check_interrupt()
  local ok, err, code = step.fn(b)
  b:check_interrupt()
  if ok and hooks.step then
    local hok, msg, hcode = hooks.step(step.id, "after", b)
    if hok == nil and msg then ok, err, code = nil, msg, hcode end
    b:check_interrupt()
  end
  local elapsed = clock.monotonic() - t0
  b.timings[#b.timings + 1] = { id = step.id, seconds = elapsed }
  b.log:infof("step %s: %s in %s", step.id, ok and "done" or "failed", M.duration(elapsed))
  -- Slow steps (and every step with -v) report their time on the progress stream.
  if ok and (elapsed >= 1 or b.ctx.verbose) then b.ctx:infof("(%s took %s)", step.what, M.duration(elapsed)) end
  return ok, err, code
end

--- Runs `juju bootstrap` for environment name. opts are the parsed flags.
--- Returns true, or nil, message (already formatted for "ERROR ...").
function M.run(ctx, home, name, opts)
  local store, serr = configstore.open(ctx, home)
  if not store then return nil, serr end
  local lock, lerr = fs.lock(store.dir .. "/" .. name .. ".bootstrap.lock", {
    timeout = 0, message = string.format("pid: %d, operation: bootstrap", sys.getpid()),
  })
  if not lock then
    local holder = fs.lock_holder(store.dir .. "/" .. name .. ".bootstrap.lock")
    return nil, string.format("environment %q is being bootstrapped by another juju process (%s)", name,
      holder or lerr)
  end
  local cons = opts.constraints or {}
  local b = setmetatable({
    ctx = ctx, home = home, name = name, store = store, opts = opts, timings = {}, tmpdirs = {},
    log = ctx:log_for("juju.environs.bootstrap"), constraints = cons,
    heartbeat = opts.heartbeat,
    params = {
      placement = opts.placement, upload_tools = opts["upload-tools"], requested_version = opts.requested_version,
      metadata_source = opts["metadata-source"], gzip_level = opts.gzip_level,
    },
    fetch = opts.fetch,
  }, Run)
  if b.params.metadata_source then
    local real = fs.realpath(ctx:expand_home(b.params.metadata_source))
    if not real then
      lock:release()
      return nil, string.format("invalid --metadata-source %q: directory does not exist", b.params.metadata_source)
    end
    b.params.metadata_source = real
  end
  b.signals = sys.signals({ "INT", "TERM" })
  local t0 = ctx.clock.monotonic()
  local failed_step, err_msg, err_code
  for _, step in ipairs(M.STEPS) do
    local ok, res, err, code = pcall(run_step, b, step)
    if not ok then
      -- A raised Failure (interrupt) or a bug: both fail the step.
      err, code = getmetatable(res) == Failure and res.message or tostring(res), type(res) == "table" and res.code or nil
      if getmetatable(res) ~= Failure then
        b.log:debugf("%s", debug.traceback())
      end
      res = nil
    end
    if not res then
      failed_step, err_msg, err_code = step, err or "unknown error", code
      break
    end
    -- Local providers force uploading (spec step 6).
    if step.id == "prepare" and b.provider.force_upload_tools then b.params.upload_tools = true end
  end
  local result_ok = failed_step == nil
  local message
  if not result_ok then
    if err_code == "ALREADY" or (b.keep and failed_step.id == "check-bootstrapped") then
      message = err_msg
    else
      if failed_step.id == "prepare" then
        message = err_msg
      else
        message = string.format("failed to bootstrap environment: %s", err_msg)
      end
      b.log:infof("bootstrap failed at step %q: %s", failed_step.id, failed_step.what)
    end
    if not b.keep and (failed_step.id ~= "prepare" or b.created_jenv) then
      if opts["keep-broken"] then
        ctx:log_for("juju.cmd.juju"):warningf("%s", M.KEEP_BROKEN_WARNING)
      else
        ctx:infof(b.created_jenv and "Bootstrap failed, destroying environment" or "Bootstrap failed, cleaning up the environment.")
        local cok, cerr = cleanup(b)
        if not cok then
          message = message .. "\ncleanup was incomplete (" .. cerr .. "); what is left is recorded in "
            .. store:path(name) .. ": run juju destroy-environment " .. name
        end
      end
    end
  else
    if opts.on_bootstrapped then opts.on_bootstrapped() end
    b.log:infof("bootstrap took %s", M.duration(ctx.clock.monotonic() - t0))
    ctx:infof("Bootstrap complete")
  end
  for _, d in ipairs(b.tmpdirs) do fs.remove_tree(d) end
  b.signals:close()
  lock:release()
  M.last_run = b
  if not result_ok then return nil, message end
  return true
end

return M
