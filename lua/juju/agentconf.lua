-- juju.agentconf: the machine agent's agent.conf in Juju's format 1.18
-- (spec 2.12): "# format 1.18" then a YAML mapping whose keys follow the Go
-- serialisation struct. render builds machine 0's file from a finished
-- instance config; parse reads any format-1.18 file back.
local yaml = require("juju.yaml")
local instancecfg = require("juju.instancecfg")

local M = {}

M.FORMAT_LINE = "# format 1.18"

-- format_1_18Serialization field order (juju 1.25 agent/format-1.18.go).
M.KEYS = {
  "tag", "datadir", "logdir", "nonce", "jobs", "upgradedToVersion",
  "cacert", "stateaddresses", "statepassword",
  "environment", "apiaddresses", "apipassword",
  "oldpassword", "values",
  "stateservercert", "stateserverkey", "caprivatekey", "apiport", "stateport",
  "sharedsecret", "systemidentity", "prefer-ipv6",
}
local LIST_KEYS = { jobs = true, stateaddresses = true, apiaddresses = true }

local function host_port(icfg, port)
  return (icfg.prefer_ipv6 and "[::1]" or "localhost") .. ":" .. tostring(port)
end

--- The agent config record of a finished bootstrap instance config: a
--- table keyed like the file. Raises on a config that finish did not complete.
function M.from_instance_config(icfg)
  local ssi, api, mongo = icfg.state_serving_info, icfg.api_info, icfg.mongo_info
  if type(ssi) ~= "table" or type(api) ~= "table" or type(mongo) ~= "table" then
    error("agentconf: the instance config is not finished (no serving/API/state info)", 2)
  end
  local number = instancecfg.tools_number(icfg)
  if not number then error("agentconf: the instance config has no valid tools version", 2) end
  local values = {}
  for k, v in pairs(icfg.agent_env or {}) do values[k] = tostring(v) end
  values.AGENT_SERVICE_NAME = icfg.service_name
  local conf = {
    tag = instancecfg.machine_tag(icfg),
    datadir = icfg.data_dir,
    logdir = icfg.log_dir,
    nonce = icfg.nonce,
    jobs = #(icfg.jobs or {}) > 0 and icfg.jobs or nil,
    upgradedToVersion = number,
    cacert = mongo.ca_cert,
    stateaddresses = { host_port(icfg, ssi.state_port) },
    environment = api.environ_tag,
    apiaddresses = { host_port(icfg, ssi.api_port) },
    -- No agent password yet: bootstrap-state sets statepassword and
    -- apipassword; until then the agent logs in with the admin hash.
    oldpassword = api.password,
    values = values,
    stateservercert = ssi.cert,
    stateserverkey = ssi.private_key,
    caprivatekey = ssi.ca_private_key,
    apiport = ssi.api_port,
    stateport = ssi.state_port,
    sharedsecret = ssi.shared_secret,
    systemidentity = ssi.system_identity,
    ["prefer-ipv6"] = icfg.prefer_ipv6 == true or nil,
  }
  return conf
end

local function omitted(k, v)
  if v == nil or v == yaml.null then return true end
  -- Go's omitempty; the fields without it are always written.
  if k == "prefer-ipv6" then return v ~= true end
  if v == "" or v == 0 then
    return k ~= "tag" and k ~= "datadir" and k ~= "logdir" and k ~= "nonce" and k ~= "cacert"
      and k ~= "oldpassword" and k ~= "upgradedToVersion"
  end
  if type(v) == "table" and LIST_KEYS[k] and #v == 0 then return true end
  return false
end

--- The file text of an agent config record (as from_instance_config or
--- parse return it). Keys in Juju's order; unknown keys follow, sorted.
function M.format(conf)
  if type(conf) ~= "table" then error("agentconf.format: table expected", 2) end
  local out, order, known = {}, {}, {}
  for _, k in ipairs(M.KEYS) do
    known[k] = true
    local v = conf[k]
    if k == "values" and (v == nil or v == yaml.null) then v = {} end
    if not omitted(k, v) then
      if LIST_KEYS[k] then
        local list = {}
        for i, x in ipairs(v) do list[i] = x end
        v = yaml.array(list)
      elseif k == "values" then
        local m = {}
        for vk, vv in pairs(v) do m[vk] = tostring(vv) end
        v = m
      end
      out[k] = v
      order[#order + 1] = k
    end
  end
  local extra = {}
  for k in pairs(conf) do
    if not known[k] then extra[#extra + 1] = k end
  end
  table.sort(extra, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(extra) do
    out[k] = conf[k]
    order[#order + 1] = k
  end
  local text = assert(yaml.encode(yaml.ordered(out, order)))
  return M.FORMAT_LINE .. "\n" .. text
end

--- render(icfg): machine 0's agent.conf text for a finished instance config.
--- An agent config record (from parse, recognised by its `tag`) is
--- formatted as it is, so render(parse(text)) round-trips.
function M.render(x)
  if type(x) ~= "table" then error("agentconf.render: table expected", 2) end
  if x.machine_id == nil and type(x.tag) == "string" then return M.format(x) end
  return M.format(M.from_instance_config(x))
end

--- Parses agent.conf text of format 1.18; returns the record (keys as in
--- the file) or nil, message.
function M.parse(text)
  if type(text) ~= "string" then error("agentconf.parse: string expected", 2) end
  local first, rest = text:match("^([^\n]*)\n?(.*)$")
  if first ~= M.FORMAT_LINE then
    return nil, string.format("cannot parse agent config: unsupported format line %q (want %q)", first or "", M.FORMAT_LINE)
  end
  local doc, err = yaml.decode(rest, "agent.conf")
  if doc == nil then return nil, "cannot parse agent config: " .. tostring(err) end
  if type(doc) ~= "table" or yaml.is_array(doc) then
    return nil, "cannot parse agent config: not a mapping"
  end
  if type(doc.tag) ~= "string" or doc.tag == "" then
    return nil, "cannot parse agent config: tag not found in configuration"
  end
  return doc
end

return M
