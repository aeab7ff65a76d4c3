-- juju.bootstrap: the client side of `juju bootstrap`, as one table of steps
-- (spec steps 4-15). Every step has a stable ID and one function named after
-- it; progress output, timings, fault injection, the benchmarks and the fault
-- matrix all read M.STEPS.
--
-- The engine owns the sequence: it builds machine 0's instance config and
-- renders its user-data once, calls the provider's start_instance with
-- them (contract v2, providers/CONTRACT.md), renders the phase-2 script
-- once and runs it through the provider's finalize or the SSH finalizer.
-- Providers get a narrow context (juju.context.provider), never this run.
--
-- After prepare, any failure or SIGINT/SIGTERM/SIGHUP destroys what this bootstrap
-- created (unless --keep-broken). Every resource is in the journal
-- (juju.journal) before it is created (an intent under a client-chosen
-- name) and again the moment its ID is known.
local fs = require("juju.fs")
local sys = require("juju.sys")
local yaml = require("juju.yaml")
local version = require("juju.version")
local constraints = require("juju.constraints")
local journal = require("juju.journal")
local agenttools = require("juju.agenttools")
local instancecfg = require("juju.instancecfg")
local cloudinit = require("juju.cloudinit")
local crypto = require("juju.crypto")
local context = require("juju.context")
local providers = require("juju.providers")
local common = require("juju.provider_common")
-- The SSH finalizer only for providers without their own finalize.
local sshinit = require("juju.lazy")("juju.sshinit")
local teardown = require("juju.environs.teardown")
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
  local st, err = self.pc:storage()
  if not st then error(failure("cannot open environment storage: " .. tostring(err)), 0) end
  return st
end

-- Raises a Failure when SIGINT/SIGTERM/SIGHUP arrived.
function Run:check_interrupt()
  local sig = self.signals and self.signals:pending()
  if sig then
    self.interrupted = sig
    self.ctx:infof("Interrupt signalled: waiting for bootstrap to exit")
    error(failure("interrupted", { code = "INTERRUPTED" }), 0)
  end
end

--- Go-style durations: 10m0s, 1.5s, 250ms.
M.duration = context.duration

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
  -- The provider's context: this run's journal, interrupts and deadlines.
  local pc = p.ctx
  pc.journal, pc.heartbeat = b.journal, b.heartbeat
  pc._check_interrupt = function() b:check_interrupt() end
  b.pc = pc
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
  -- Storage must be writable before anything is launched. The proof is
  -- the object start-instance rewrites anyway: provider-state with no
  -- instances yet (journaled first, then written), instead of a
  -- bootstrap-verify object written and removed again.
  local storage = b:storage()
  local jok, jerr = b.journal:record("storage", common.PROVIDER_STATE)
  if not jok then return nil, jerr end
  local ok, err = common.write_state_instances(storage, {})
  if not ok then return nil, "provider storage is not writable: " .. tostring(err) end
  local spec = b.provider.constraints
  if b.provider.constraints_validator then
    local v, verr = b:op("constraints_validator")
    if not v then return nil, "cannot validate constraints: " .. tostring(verr) end
    spec = v
  end
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
  local series_ok, series_err = agenttools.check_series(b, available)
  if not series_ok then return nil, series_err end
  b.available, b.tools_origin = available, how
  if not b.cfg["agent-version"] then
    b.cfg["agent-version"] = tostring(b.params.requested_version or version.current)
  end
  return true
end

-- Address scopes and types of an Instance (CONTRACT.md).
M.ADDRESS_SCOPES = { public = true, ["cloud-local"] = true, ["machine-local"] = true }
M.ADDRESS_TYPES = { ipv4 = true, ipv6 = true, hostname = true }

--- Checks an Instance returned by start_instance: true or nil, message.
function M.check_instance(provider_name, inst)
  local function bad(fmt, ...)
    return nil, string.format("provider %q: start_instance returned a bad Instance: " .. fmt, provider_name, ...)
  end
  if type(inst) ~= "table" then return bad("a table expected, got %s", type(inst)) end
  if type(inst.id) ~= "string" or inst.id == "" then return bad("\"id\" must be a non-empty string") end
  if inst.addresses ~= nil and type(inst.addresses) ~= "table" then return bad("\"addresses\" must be a list") end
  for i, a in ipairs(inst.addresses or {}) do
    if type(a) ~= "table" or type(a.value) ~= "string" then
      return bad("addresses[%d] must be {value=, type=, scope=}, got %s", i, type(a) == "table" and "no value" or type(a))
    end
    if not M.ADDRESS_TYPES[a.type] then return bad("addresses[%d].type must be ipv4, ipv6 or hostname", i) end
    if not M.ADDRESS_SCOPES[a.scope] then
      return bad("addresses[%d].scope must be public, cloud-local or machine-local", i)
    end
  end
  if inst.ssh_port ~= nil and math.type(inst.ssh_port) ~= "integer" then return bad("\"ssh_port\" must be an integer") end
  if inst.hardware ~= nil and type(inst.hardware) ~= "table" then return bad("\"hardware\" must be a table") end
  return true
end

--- The name the client chooses for machine 0's instance (recorded before
--- start_instance, so a crash in between leaves a findable instance).
function M.instance_name(cfg, machine_id)
  return string.format("juju-%s-machine-%s", tostring(cfg.uuid), machine_id or "0")
end

--- Step 8: build machine 0's instance config and user-data (once), and
--- let the provider launch it (phase 1). A run for another state server
--- (juju.ha: b.machine_id, b.join) launches that machine the same way.
function steps.start_instance(b)
  local cfg = b.cfg
  local machine_id = b.machine_id or "0"
  local series = common.preferred_series(cfg, b.available)
  local tools = {}
  for _, t in ipairs(b.available) do if t.series == series then tools[#tools + 1] = t end end
  if #tools == 0 then return nil, "no matching tools available" end
  local iparams = {}
  if b.provider.instance_defaults then
    local d, derr = b:op("instance_defaults", { machine_id = machine_id })
    if not d then return nil, "cannot get the instance defaults: " .. tostring(derr) end
    for k, v in pairs(d) do iparams[k] = v end
  end
  iparams.series, iparams.constraints = series, b.constraints
  iparams.state_store = providers.default_state_store(b.provider)
  if b.join then iparams.machine_id, iparams.join = machine_id, true end
  local icfg, ierr = instancecfg.new_bootstrap(cfg, iparams)
  if not icfg then return nil, ierr end
  icfg.agent_start = iparams.agent_start
  local host_keys = common.new_host_keys(b.ctx)
  local userdata, uerr = cloudinit.userdata(icfg, { host_keys = host_keys })
  if not userdata then return nil, uerr end
  b.icfg, b.userdata, b.host_keys = icfg, userdata, host_keys
  b.ctx:infof(b.join and ("Starting new instance for state server machine " .. machine_id)
    or "Starting new instance for initial state server")
  local name = M.instance_name(cfg, machine_id)
  local jok, jerr = b.journal:intent("instance", name)
  if not jok then return nil, jerr end
  b.ctx:infof("Launching instance")
  local inst, err = b:op("start_instance", {
    instance_config = icfg, userdata = userdata, tools = tools, constraints = b.constraints,
    placement = b.params.placement, host_keys = host_keys, name = name, machine_id = machine_id,
  })
  if not inst then
    return nil, string.format("cannot start %s instance: %s", b.join and ("machine " .. machine_id) or "bootstrap",
      tostring(err))
  end
  local iok, ierr2 = M.check_instance(b.provider.name, inst)
  if not iok then return nil, ierr2 end
  -- The instance and the phase it starts: one save.
  jok, jerr = b.journal:batch(function(j)
    j:record("instance", inst.id, { name = name, machine = machine_id })
    if b.join then return true end
    return j:mark_phase("instance-started")
  end)
  if not jok then return nil, jerr end
  b.instance = inst
  b.ctx:infof(" - %s", inst.id)
  -- provider-state (journaled by preflight, which wrote it with no
  -- instances: check-bootstrapped found none, under the environment lock).
  local ok, serr = common.record_state_instance(b:storage(), inst.id, { known = not b.join and {} or nil })
  if not ok then return nil, serr end
  local hw = inst.hardware or {}
  -- A provider that does not choose the machine (manual) reports its series.
  b.series = inst.series or series
  b.arch = hw.arch or tools[1].arch
  icfg.series = b.series
  return true
end

--- Step 9: choose the tools for the instance's arch and series; build and
--- upload them when they are not prepackaged.
function steps.select_tools(b)
  local chosen, newest = agenttools.select(b, b.available, b.arch, b.series)
  if not chosen then return nil, newest end
  if b.cfg["agent-version"] ~= newest and not b.params.requested_version then
    b.cfg["agent-version"] = newest
  end
  if not chosen.url then
    if not b.params.upload_tools then b.log:warningf("no prepackaged tools available") end
    b.ctx:infof("Building tools to upload (%s)", chosen.binary)
    -- A killed bootstrap's temporary directories are swept now; this one's
    -- is made only when the tarball is built (a warm JUJU_HOME has it in
    -- its cache).
    local function getenv(n) return b.ctx:getenv(n) end
    agenttools.sweep_tmpdirs(getenv)
    local function make_dir()
      local dir, derr = agenttools.tmpdir(getenv, { swept = true })
      if not dir then return nil, derr end
      b.tmpdirs[#b.tmpdirs + 1] = dir
      return dir
    end
    local built, berr = agenttools.build(b, chosen, make_dir)
    if not built then return nil, "cannot upload bootstrap tools: " .. berr end
    local name = agenttools.storage_name(agenttools.stream(b.cfg), chosen.binary)
    local storage = b:storage()
    -- (Recorded once: another state server re-uploads the same object.)
    local known = false
    for _, r in ipairs(b.journal:resources("storage")) do if r.id == name then known = true end end
    local ok, jerr = true, nil
    if not known then ok, jerr = b.journal:record("storage", name) end
    if not ok then return nil, jerr end
    local size, sha
    if storage.put_file_link then
      -- A directory backend stores the cached tarball (replaced by rename,
      -- never rewritten) by a hard link where it can: its own mode, 0644,
      -- and the digest the cache recorded (not read again).
      local st = fs.stat(built.path)
      size, sha = storage:put_file_link(name, built.path, st and st.mode, built.sha256)
    else
      size, sha = storage:put_file(name, built.path)
    end
    if not size then return nil, "cannot upload bootstrap tools: " .. tostring(sha) end
    chosen = { version = chosen.version, series = chosen.series, arch = chosen.arch, binary = chosen.binary,
      url = storage:url(name), sha256 = built.sha256, size = built.size, uploaded = true }
  end
  b.tools = chosen
  b.ctx:infof("Installing Juju agent on bootstrap instance")
  return true
end

--- The address values of an Instance, public first, then cloud-local,
--- then machine-local (each in the provider's order).
M.instance_addresses = common.instance_addresses

--- Step 10: finish machine 0's configuration, render the phase-2 script
--- (once), and install the agent (step 11): the provider's finalize, else
--- the SSH finalizer.
function steps.finalize(b)
  local cfg, inst, icfg = b.cfg, b.instance, b.icfg
  icfg.tools = { version = b.tools.binary, url = b.tools.url, sha256 = b.tools.sha256, size = b.tools.size }
  icfg.instance_id = inst.id
  icfg.hardware = inst.hardware or {}
  icfg.addresses = M.instance_addresses(inst)
  local finished, ferr = instancecfg.finish(icfg, cfg, { strip_keys = envconfig.secret_keys(b.provider) })
  if not finished then return nil, "cannot complete machine configuration: " .. ferr end
  local ok, verr = instancecfg.verify(finished)
  if not ok then return nil, verr end
  local host_key = b.host_keys.ed25519.public
  local script_opts, tools_file = {}, nil
  if not b.provider.finalize and finished.tools.url:match("^file://") then
    -- The SSH finalizer brings the tarball by SFTP to this path.
    tools_file = string.format("/var/tmp/juju-tools-%s-%s.tgz", finished.tools.version,
      crypto.hex(crypto.random_bytes(6)))
    script_opts.tools_file = tools_file
  end
  script_opts.join = b.join
  local script, serr = cloudinit.script(finished, script_opts)
  if not script then return nil, serr end
  b.script = script
  local fok, fin_err
  if b.provider.finalize then
    fok, fin_err = b:op("finalize", inst, { instance_config = finished, script = script, host_key = host_key })
  else
    fok, fin_err = sshinit.finish(b.pc, inst, finished, script, { host_key = host_key, tools_file = tools_file })
  end
  if not fok then return nil, fin_err end
  if b.join then
    b.ctx:infof("State server agent installed on machine %s", b.machine_id)
    return true
  end
  -- Saved by record-endpoints, which follows with nothing created between.
  b.journal:mark_phase("agent-installed")
  b.ctx:infof("Bootstrap agent installed")
  return true
end

--- Step 13.1: record machine 0's API addresses in the .jenv.
function steps.record_endpoints(b)
  local servers = {}
  if b.icfg and b.icfg.state_store == "dqlite" then
    -- A Dqlite environment's state servers are its nodes: what the client
    -- (juju status, ensure-availability) and the agents dial.
    local addr, err = require("juju.ha.dqlite").node_address({ provider = b.provider, env = b.env, cfg = b.cfg },
      b.instance, "0")
    if not addr then return nil, "cannot record the state server address: " .. tostring(err) end
    servers[1] = addr
  end
  for _, host in ipairs(#servers == 0 and M.instance_addresses(b.instance) or {}) do
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
    local ok, err = b:op("wait_agent", b.instance)
    if not ok then return nil, err end
  end
  return true
end

--- Step 13.3 (issue 14.14): the host key the engine generated went to the
--- cloud in the phase-1 user-data, where it stays readable (the metadata
--- service, cloud-init's copies). With the engine's SSH finalizer, machine
--- 0 now makes a new one over the session verified with the old key; the
--- new public key is pinned in the .jenv (bootstrap-host-key) and the old
--- one is refused from then on. Then the environment is bootstrapped.
function steps.rotate_host_key(b)
  if not b.provider.finalize and b.host_keys and b.host_keys.ed25519 then
    local new, err = sshinit.rotate_host_key(b.pc, b.instance, { host_key = b.host_keys.ed25519.public })
    if not new then return nil, err end
    -- saved with the phase, below (one durable write)
    b.info["bootstrap-config"]["bootstrap-host-key"] = new
    b.ctx:infof("Rotated machine 0's SSH host key (the key in the user-data is no longer accepted)")
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
  { id = "rotate-host-key", fn = steps.rotate_host_key, what = "rotating machine 0's SSH host key" },
}

--- The step functions by name (juju.ha runs start_instance, select_tools
--- and finalize for a new state server) and the runner with its hooks.
M.steps = steps

function M.step_ids()
  local out = {}
  for _, s in ipairs(M.STEPS) do out[#out + 1] = s.id end
  return out
end

-- ------------------------------------------------------------- cleanup --

-- Destroys what this run created: the journaled resources in reverse
-- order, then (a fresh environment) the provider's destroy. Returns true or
-- nil, message.
local function cleanup(b)
  local ctx = b.ctx
  if b.env then
    local ok, err = teardown.run(b.provider, b.env, b.pc, b.journal, { destroy = b.created_jenv })
    if not ok then
      ctx:log_for("juju.cmd.juju"):errorf("%s", err)
      return nil, err
    end
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
  local deadline
  if hooks.step then
    local ok, msg, code = hooks.step(step.id, "before", b)
    if ok == nil and msg then return nil, msg, code end
    -- {timeout = s}: the real step runs with a deadline on the run's clock;
    -- ctx:wait and the SSH wait give up at it.
    if type(ok) == "table" and ok.timeout then
      deadline = { at = clock.monotonic() + ok.timeout,
        reason = string.format("timed out after %s (injected)", M.duration(ok.timeout)) }
      if b.pc then b.pc._deadline = deadline end
    end
  end
  b:check_interrupt()
  local ok, err, code = step.fn(b)
  if b.pc then b.pc._deadline = nil end
  if deadline and ok then
    -- The step finished before its deadline: it "took" the whole timeout.
    if clock.monotonic() < deadline.at then clock.sleep(deadline.at - clock.monotonic()) end
    ok, err, code = nil, deadline.reason, "TIMEOUT"
  end
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
M.run_step = run_step

--- A run's state (the `b` every step takes): opts are the parsed flags
--- (constraints, placement, upload-tools, metadata-source, ...).
function M.new_run(ctx, home, name, store, opts)
  return setmetatable({
    ctx = ctx, home = home, name = name, store = store, opts = opts, timings = {}, tmpdirs = {},
    log = ctx:log_for("juju.environs.bootstrap"), constraints = opts.constraints or {},
    heartbeat = opts.heartbeat,
    params = {
      placement = opts.placement, upload_tools = opts["upload-tools"], requested_version = opts.requested_version,
      metadata_source = opts["metadata-source"], gzip_level = opts.gzip_level,
    },
    fetch = opts.fetch,
  }, Run)
end

--- Runs `juju bootstrap` for environment name. opts are the parsed flags.
--- Returns true, or nil, message (already formatted for "ERROR ...").
function M.run(ctx, home, name, opts)
  local okn, nerr = configstore.check_name(name)
  if not okn then return nil, nerr end
  local store, serr = configstore.open(ctx, home)
  if not store then return nil, serr end
  -- An environment that exists nowhere (no .jenv, not in a readable
  -- environments.yaml) gets no lock file: prepare reports it, nothing is left.
  -- The same goes for a missing JUJU_HOME or environments.yaml: nothing is created.
  if not store:exists(name) then
    local found, ferr, fcode = prepare.find_environment(home, name)
    -- The prepare step's own message.
    if not found and fcode == "ENOENT" then return nil, "there was an issue examining the environment: " .. ferr end
  end
  -- Only a held lock means another bootstrap or destroy (issue 14.10): a
  -- full disk, a long name or a vanished directory is reported as what it is.
  local lock, lerr = store:env_lock(name, "bootstrap")
  if not lock then return nil, lerr end
  local b = M.new_run(ctx, home, name, store, opts)
  if b.params.metadata_source then
    local real = fs.realpath(ctx:expand_home(b.params.metadata_source))
    if not real then
      lock:release()
      return nil, string.format("invalid --metadata-source %q: directory does not exist", b.params.metadata_source)
    end
    b.params.metadata_source = real
  end
  -- A closed terminal (HUP) cleans up like TERM (issue 14.8).
  b.signals = sys.signals({ "INT", "TERM", "HUP" })
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
  -- No .jenv (removed by the cleanup, or never written): the lock file goes
  -- too, so nothing is left for an environment that does not exist (14.12).
  if not store:exists(name) then lock:remove() else lock:release() end
  M.last_run = b
  if not result_ok then return nil, message end
  return true
end

return M
