-- juju.agent.machine: `jujud machine`, the minimal machine agent. It records
-- the machine's presence in the state store with a heartbeat every interval
-- (JUJU_AGENT_HEARTBEAT seconds, default 10) and stops cleanly on SIGTERM or
-- SIGINT, marking itself stopped.
local fs = require("juju.fs")
local sys = require("juju.sys")
local agentconf = require("juju.agentconf")
local state = require("juju.state")
local initialize = require("juju.state.initialize")
local dqlite_agent = require("juju.agent.dqlitenode")

local M = {}

function M.flags(fs_)
  fs_:add { names = { "machine-id" }, help = "the machine this agent runs" }
end

function M.validate(opts)
  if not opts["machine-id"] then return "--machine-id option must be set" end
  return nil
end

--- Opens the state store named in agent.conf. A dqlite state server runs
--- its node for the agent's whole life: store, nil, node (stop the node
--- after closing the store).
function M.open_store(data_dir, conf)
  local kind = conf.values and conf.values.STATE_STORE or "mongodb"
  if kind == "sqlite" then return state.open("sqlite", { path = data_dir .. "/state.db" }) end
  if kind == "dqlite" then
    local node, nerr = dqlite_agent.start(data_dir, conf)
    if not node then return nil, nerr end
    -- Another state server (juju ensure-availability) joins the cluster.
    local jok, jerr = dqlite_agent.join(conf)
    if not jok then
      node:stop()
      return nil, jerr
    end
    local store, serr = dqlite_agent.open_store(conf)
    if not store then
      node:stop()
      return nil, serr
    end
    return store, nil, node
  end
  return require("juju.mongod").agent_store(data_dir, conf)
end

function M.run(ctx, opts)
  local lg = ctx:log_for("juju.worker.machine")
  local data_dir, id = opts["data-dir"], opts["machine-id"]
  local tag = "machine-" .. id:gsub("/", "-")
  local conf_text, err = fs.read_file(data_dir .. "/agents/" .. tag .. "/agent.conf")
  if not conf_text then return nil, "cannot read agent configuration: " .. err end
  local conf, perr = agentconf.parse(conf_text)
  if not conf then return nil, "cannot read agent configuration: " .. perr end
  local env_uuid = (conf.environment or ""):match("^environment%-(.+)$")
  if not env_uuid then return nil, "agent configuration has no environment tag" end
  local interval = tonumber(ctx:getenv("JUJU_AGENT_HEARTBEAT") or "") or 10
  local signals = sys.signals({ "TERM", "INT" })
  local store, serr, node = M.open_store(data_dir, conf)
  if not store then signals:close(); return nil, "cannot open state: " .. serr end
  local pid_file = data_dir .. "/agents/" .. tag .. "/jujud.pid"
  fs.write_atomic(pid_file, tostring(sys.getpid()) .. "\n", tonumber("644", 8))
  lg:infof("machine agent for %s started (heartbeat every %ss)", tag, interval)
  local agent_version = require("juju.agent.version").binary()
  local result, rerr = true, nil
  local conf_path = data_dir .. "/agents/" .. tag .. "/agent.conf"
  local beats = 0
  while true do
    -- A Dqlite state server keeps agent.conf's server list as the cluster
    -- has it (ensure-availability adds nodes), so a restart finds a leader.
    if node and beats % 10 == 0 then
      local ok, cerr = dqlite_agent.refresh_servers(conf, conf_path, store)
      if not ok then lg:warningf("cannot refresh the state servers: %s", tostring(cerr)) end
    end
    beats = beats + 1
    local ok, herr = initialize.heartbeat(store, env_uuid, id, {
      pid = sys.getpid(), interval = interval, agent_version = agent_version, stopped = false,
      time = sys.time(),
    })
    if not ok then lg:errorf("cannot record heartbeat: %s", tostring(herr)) end
    local slept = sys.sleep(interval)
    local sig = signals:pending()
    if slept == false or sig then
      lg:infof("machine agent for %s stopping (%s)", tag, sig or "signal")
      initialize.heartbeat(store, env_uuid, id, { pid = sys.getpid(), interval = interval,
        agent_version = agent_version, stopped = true, time = sys.time() })
      break
    end
  end
  store:close()
  if node then node:stop() end
  signals:close()
  fs.remove(pid_file)
  return result, rerr
end

return M
