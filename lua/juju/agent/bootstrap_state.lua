-- juju.agent.bootstrap_state: `jujud bootstrap-state` (spec step 12) turns
-- this host into machine 0: system identity, shared secret, the state
-- server (SQLite file or mongod), the state documents, machine 0's agent
-- password, and the tools in the state's blob storage.
--
-- Safe to run twice (fixes W15): every step first looks for what an
-- earlier run made (keys, secret, documents, blobs) and keeps it, so a
-- second run completes what a failed first run left and changes nothing
-- that was done.
local fs = require("juju.fs")
local yaml = require("juju.yaml")
local json = require("juju.json")
local crypto = require("juju.crypto")
local version = require("juju.version")
local agentconf = require("juju.agentconf")
local constraints = require("juju.constraints")
local envconfig = require("juju.environs.config")
local state = require("juju.state")
local initialize = require("juju.state.initialize")
local dqlite_agent = require("juju.agent.dqlitenode")

local M = {}

local MODE_SECRET = tonumber("600", 8)

function M.flags(fs_)
  fs_:add { names = { "params" }, help = "the bootstrap parameters file (YAML, mode 0600)" }
end

function M.validate(opts)
  if not opts.params then return "--params option must be set" end
  return nil
end

local function fail(step, msg) return nil, string.format("%s: %s", step, msg) end

-- Reads and checks the parameters file written by the phase-2 script.
local function read_params(path)
  local st = fs.stat(path)
  if not st then return fail("reading bootstrap parameters", path .. " does not exist") end
  if st.mode & tonumber("077", 8) ~= 0 then
    return fail("reading bootstrap parameters", string.format("%s has mode %o; it must be 0600", path, st.mode))
  end
  local text, err = fs.read_file(path)
  if not text then return fail("reading bootstrap parameters", err) end
  local p, perr = yaml.decode(text, path)
  if type(p) ~= "table" then return fail("reading bootstrap parameters", perr or "not a mapping") end
  if type(p["env-config"]) ~= "table" then return fail("reading bootstrap parameters", "no env-config") end
  if type(p["instance-id"]) ~= "string" or p["instance-id"] == "" then
    return fail("reading bootstrap parameters", "no instance-id")
  end
  return p
end

-- The machine's SSH identity, made once (ed25519, 0600).
local function ensure_system_identity(data_dir)
  local path = data_dir .. "/system-identity"
  local pem = fs.read_file(path)
  if not pem then
    local pub
    pem, pub = crypto.ssh_keygen_ed25519("juju-system-key")
    local ok, err = fs.write_atomic(path, pem, MODE_SECRET)
    if not ok then return nil, "failed to write system identity: " .. err end
    return pem, pub
  end
  return pem, crypto.ssh_public_from_private(pem)
end

-- The mongo keyfile ("shared secret"), made once: base64 of 768 random bytes.
local function ensure_shared_secret(data_dir)
  local path = data_dir .. "/shared-secret"
  local s = fs.read_file(path)
  if s then return (s:gsub("%s+$", "")) end
  s = crypto.base64(crypto.random_bytes(768))
  local ok, err = fs.write_atomic(path, s, MODE_SECRET)
  if not ok then return nil, "cannot write shared secret: " .. err end
  return s
end

local function parse_hardware(text)
  local hw = {}
  for k, v in (text or ""):gmatch("([%w-]+)=(%S+)") do
    local n = v:match("^(%d+)M$") or v:match("^(%d+)$")
    hw[k] = n and math.tointeger(tonumber(n)) or v
  end
  return hw
end

local function address_type(a)
  if a:match("^%d+%.%d+%.%d+%.%d+$") then return "ipv4" end
  if a:find(":", 1, true) then return "ipv6" end
  return "hostname"
end

local function address_scope(a)
  if a == "localhost" or a:match("^127%.") or a == "::1" then return "local-machine" end
  if a:match("^10%.") or a:match("^192%.168%.") or a:match("^172%.1[6-9]%.") or a:match("^172%.2%d%.")
    or a:match("^172%.3[01]%.") then return "local-cloud" end
  return "public"
end

-- Starts node 1 of a new Dqlite cluster in <data-dir>/dqlite and opens the
-- store through it: store, nil, node (the caller stops the node after
-- closing the store) | nil, message.
local function open_dqlite_store(data_dir, conf)
  local node, nerr = dqlite_agent.start(data_dir, conf)
  if not node then return nil, nerr end
  local store, serr = dqlite_agent.open_store(conf)
  if not store then
    node:stop()
    return nil, serr
  end
  return store, nil, node
end

-- Opens the state store of kind, starting mongod or the dqlite node first
-- when needed.
local function open_store(ctx, kind, data_dir, conf, cfg, addresses)
  if kind == "sqlite" then
    return state.open("sqlite", { path = data_dir .. "/state.db" })
  end
  if kind == "dqlite" then return open_dqlite_store(data_dir, conf) end
  local mongod = require("juju.mongod")
  return mongod.bootstrap_store(ctx, {
    data_dir = data_dir, conf = conf, cfg = cfg, addresses = addresses,
  })
end

-- Copies the tools tarball into the state's blob storage, once per series
-- of the same OS when the tools were uploaded (spec step 12.10).
local function populate_tools(data_dir, running)
  local bin = data_dir .. "/tools/" .. running
  local rec_text = fs.read_file(bin .. "/downloaded-tools.txt")
  if not rec_text then return fail("populating tools", "no downloaded-tools.txt in " .. bin) end
  local rec, jerr = json.decode(rec_text, bin .. "/downloaded-tools.txt")
  if type(rec) ~= "table" then return fail("populating tools", tostring(jerr)) end
  local b = version.parse_binary(rec.version)
  if not b then return fail("populating tools", "invalid tools version " .. tostring(rec.version)) end
  local series_list = { b.series }
  if type(rec.url) == "string" and rec.url:match("^file://") then
    local os_name = version.series_os(b.series)
    if os_name then series_list = version.os_series(os_name) end
  end
  local tarball = bin .. "/tools.tar.gz"
  local out = {}
  for _, s in ipairs(series_list) do
    local binary = string.format("%s-%s-%s", tostring(b.number), s, b.arch)
    local path = string.format("tools/%s-%s", binary, rec.sha256 or "")
    local dst = data_dir .. "/blobs/" .. path
    if not fs.exists(dst) then
      local ok, err = fs.mkdir_p(data_dir .. "/blobs/tools", tonumber("700", 8))
      if not ok then return fail("populating tools", err) end
      if not fs.exists(tarball) then return fail("populating tools", "no tools.tar.gz in " .. bin) end
      ok, err = fs.copy_file(tarball, dst, tonumber("600", 8))
      if not ok then return fail("populating tools", err) end
    end
    out[#out + 1] = { version = binary, size = rec.size, sha256 = rec.sha256, path = path }
  end
  return out
end

function M.run(ctx, opts)
  local lg = ctx:log_for("juju.cmd.jujud")
  local data_dir = opts["data-dir"]
  local p, err = read_params(opts.params)
  if not p then return nil, err end
  local cfg, cerr = envconfig.from_prepared(ctx, p["env-config"], { file = opts.params })
  if not cfg then return fail("validating the environment configuration", cerr) end

  local conf_path = data_dir .. "/agents/machine-0/agent.conf"
  local conf_text, rerr = fs.read_file(conf_path)
  if not conf_text then return fail("reading agent configuration", rerr) end
  local conf, aerr = agentconf.parse(conf_text)
  if not conf then return fail("reading agent configuration", aerr) end
  if conf.tag ~= "machine-0" then
    return fail("reading agent configuration", "InitializeState not called with bootstrap machine's configuration")
  end
  if not conf.stateservercert or not conf.stateserverkey then
    return fail("reading agent configuration", "bootstrap machine config has no state serving info")
  end

  local identity, pub = ensure_system_identity(data_dir)
  if not identity then return fail("generating the system identity", pub) end
  local keys = cfg["authorized-keys"] or ""
  if not keys:find(pub, 1, true) then
    cfg["authorized-keys"] = keys:gsub("\n*$", "\n") .. pub .. "\n"
  end
  local secret, serr = ensure_shared_secret(data_dir)
  if not secret then return fail("generating the shared secret", serr) end

  local kind = p["state-store"] or "mongodb"
  conf.sharedsecret, conf.systemidentity = secret, identity
  conf.values = conf.values or {}
  conf.values.STATE_STORE = kind
  if kind == "dqlite" then
    local ok, derr = dqlite_agent.record_address(conf, p.addresses)
    if not ok then return fail("reading agent configuration", derr) end
  end
  -- The machine's agent password: made once, kept in agent.conf.
  local password = conf.statepassword or crypto.random_password()
  conf.statepassword, conf.apipassword = password, password
  local ok, werr = fs.write_atomic(conf_path, agentconf.format(conf), MODE_SECRET)
  if not ok then return fail("writing agent configuration", "cannot write agent config: " .. werr) end

  local store, oerr, node = open_store(ctx, kind, data_dir, conf, cfg, p.addresses)
  if not store then return fail("starting the state server", oerr) end
  -- The dqlite node (when there is one) stops after the store is closed.
  local function close_store()
    store:close()
    if node then node:stop() end
  end
  lg:infof("state server (%s) ready", kind)

  -- The tools this jujud runs from: the directory holding downloaded-tools.txt.
  local running
  for _, d in ipairs(fs.list(data_dir .. "/tools") or {}) do
    if fs.exists(data_dir .. "/tools/" .. d .. "/downloaded-tools.txt") and d ~= "machine-0" then running = d end
  end
  if not running then close_store(); return fail("populating tools", "no unpacked tools in " .. data_dir .. "/tools") end
  local tools, terr = populate_tools(data_dir, running)
  if not tools then close_store(); return nil, terr end

  local b = version.parse_binary(running)
  local addresses = {}
  for _, a in ipairs(p.addresses or {}) do
    addresses[#addresses + 1] = { value = a, type = address_type(a), scope = address_scope(a) }
  end
  local hw = parse_hardware(p.hardware)
  local cons = constraints.parse(p.constraints or "") or {}
  local env_uuid = cfg.uuid
  local res, ierr = initialize.initialize(store, {
    env_uuid = env_uuid, env_name = cfg.name, config = cfg,
    admin_password_hash = conf.oldpassword,
    machine = {
      series = b and b.series or version.host_series(require("juju.sys")), nonce = conf.nonce,
      instance_id = p["instance-id"], jobs = conf.jobs or { "JobManageEnviron", "JobHostUnits" },
      addresses = addresses, hardware = hw,
    },
    constraints = cons,
    api_port = conf.apiport, state_port = conf.stateport,
    serving_info = { cert = conf.stateservercert, private_key = conf.stateserverkey,
      ca_private_key = conf.caprivatekey, shared_secret = secret, system_identity = identity },
    machine_password_hash = crypto.agent_password_hash(password),
    tools = tools,
    now = math.floor(ctx.clock.time()),
  })
  close_store()
  if not res then return fail("initializing state", ierr) end
  lg:infof("state initialized: %d documents created, %d already present", res.inserted, res.existing)
  return true
end

return M
