-- juju.environs.config: building an environment's configuration (spec 3.1):
-- deprecated keys, file-backed keys, the schema engine, then the rules that
-- look at more than one key. Two modes: "defaults" for environments.yaml
-- entries, "nodefaults" for .jenv bootstrap-config and the node's payload.
local config = require("juju.config")
local crypto = require("juju.crypto")
local fs = require("juju.fs")
local log = require("juju.log")
local yaml = require("juju.yaml")
local version = require("juju.version")
local schema_data = require("juju.environs.schema")
local authkeys = require("juju.environs.authkeys")
local configstore = require("juju.environs.configstore")

local M = {}

local core_schema

function M.core_schema()
  if not core_schema then core_schema = config.schema(schema_data.fields) end
  return core_schema
end

--- The schema of an environment: core fields plus the provider's.
function M.schema_for(provider)
  if not provider then return M.core_schema() end
  if not provider._schema then
    local s, err = M.core_schema():merge((provider.config and provider.config.fields) or {})
    if not s then return nil, string.format("provider %q: %s", provider.name, err) end
    provider._schema = s
  end
  return provider._schema
end

local function present(v) return v ~= nil and v ~= yaml.null end

-- Deprecated and renamed keys (spec 3.1 rule 11, step 4.4).
local function translate_deprecated(ctx, attrs)
  local lg = ctx:log_for("juju.environs.config")
  for old, new in pairs(schema_data.renamed) do
    if present(attrs[old]) then
      if not present(attrs[new]) then
        attrs[new] = attrs[old]
        lg:warningf("Config attribute %q is deprecated: use %q instead (update your environments.yaml).", old, new)
      end
    end
  end
  if attrs.type == "null" then attrs.type = "manual" end
  if present(attrs["provisioner-safe-mode"]) and not present(attrs["provisioner-harvest-mode"]) then
    attrs["provisioner-harvest-mode"] = attrs["provisioner-safe-mode"] == true and "destroyed" or "all"
  end
  for _, k in ipairs({ "block-destroy-environment", "block-remove-object", "block-all-changes" }) do
    if attrs[k] == true then
      lg:warningf("%s is deprecated and ignored; use juju block commands instead", k)
    end
    attrs[k] = nil
  end
  if attrs["firewall-mode"] == "" then attrs["firewall-mode"] = nil end
end

--- Where Juju 1.25 read a *-path key from: ~ expanded, and a relative
--- path taken relative to $JUJU_HOME (not the working directory).
function M.resolve_path(ctx, home, path)
  local p = ctx:expand_home(path)
  if p:sub(1, 1) ~= "/" and home then p = home .. "/" .. p end
  return p
end

-- Reads a key file; a missing one is named by its resolved path, as Go's
-- "open <path>: ..." did.
local function read_key_file(ctx, path, home)
  local p = M.resolve_path(ctx, home, path)
  local text, err = fs.read_file(p, { max_size = 1024 * 1024 })
  if not text then return nil, err end
  if text:match("^%s*$") then return nil, string.format("file %q is empty", p) end
  return text
end

-- ca-cert / ca-private-key from *-path keys (which win over the attribute,
-- as in 1.25) or JUJU_HOME/NAME-cert.pem.
local function load_ca_files(ctx, home, attrs)
  for _, key in ipairs({ "ca-cert", "ca-private-key" }) do
    local path = attrs[key .. "-path"]
    if present(path) and path ~= "" then
      local text, err = read_key_file(ctx, path, home)
      if not text then return nil, err end
      attrs[key] = text
    elseif (not present(attrs[key]) or attrs[key] == "") and home and attrs.name then
      local file = home .. "/" .. attrs.name .. (key == "ca-cert" and "-cert.pem" or "-private-key.pem")
      if fs.exists(file) then
        local text, err = read_key_file(ctx, file, home)
        if not text then return nil, err end
        attrs[key] = text
      end
    end
    attrs[key .. "-path"] = nil
  end
  return true
end

local function derive_logging_config(ctx, attrs)
  local lc = attrs["logging-config"]
  if not present(lc) or lc == "" then
    lc = ctx:getenv("JUJU_LOGGING_CONFIG") or "<root>=WARNING"
  end
  local parsed, err = log.parse_config(lc)
  if not parsed then return nil, err end
  if not parsed.unit then parsed.unit = log.levels.DEBUG end
  attrs["logging-config"] = log.format_config(parsed)
  return true
end

-- Rules that span keys or need parsing (spec 3.1 rules 4-10).
local function validate(cfg)
  for _, k in ipairs({ "bootstrap-timeout", "bootstrap-retry-delay", "bootstrap-addresses-delay",
    "cloud-request-timeout" }) do
    local v = cfg[k]
    if math.type(v) == "integer" and v <= 0 then
      return nil, string.format("%s: must be a positive number of seconds, got %d", k, v)
    end
  end
  if cfg.name then
    local ok, err = configstore.check_name(cfg.name)
    if not ok then return nil, err end
  end
  if present(cfg["agent-version"]) and not version.parse(cfg["agent-version"]) then
    return nil, string.format("invalid agent version in environment configuration: %q", cfg["agent-version"])
  end
  -- 1.25's verifyKeyPair: a key needs its certificate (Go's tls.X509KeyPair
  -- message); a certificate alone must parse (juju/utils/cert.ParseCert).
  local cert, key = cfg["ca-cert"], cfg["ca-private-key"]
  local has_cert, has_key = present(cert) and cert ~= "", present(key) and key ~= ""
  if has_key and not has_cert then
    return nil, "bad CA certificate/key in configuration: crypto/tls: failed to find any PEM data in certificate input"
  end
  if has_cert then
    if not cert:find("-----BEGIN CERTIFICATE-----", 1, true) then
      return nil, "bad CA certificate/key in configuration: no certificates found"
    end
    if has_key then
      local ok, err = crypto.check_ca_pair(cert, key)
      if not ok then return nil, err end
    elseif not crypto.cert_info(cert) then
      return nil, "bad CA certificate/key in configuration: cannot parse ca-cert"
    end
  end
  if present(cfg.uuid) and not crypto.is_uuid(cfg.uuid) then
    return nil, string.format("uuid: expected uuid, got string(%q)", tostring(cfg.uuid))
  end
  if type(cfg["resource-tags"]) == "table" then
    for k in pairs(cfg["resource-tags"]) do
      if tostring(k):match("^juju%-") then
        return nil, string.format("validating resource tags: tag %q uses reserved prefix \"juju-\"", k)
      end
    end
  end
  if type(cfg["lxc-default-mtu"]) == "number" and cfg["lxc-default-mtu"] < 0 then
    return nil, string.format("lxc-default-mtu: expected positive integer, got %d", cfg["lxc-default-mtu"])
  end
  return true
end

-- Keys used before the schema's coerce (issue 14.9: `authorized-keys: 1` was
-- an internal error). They must be YAML strings: the schema's coerce would
-- turn a number into its text, and a number is no key or file name.
local PRE_SCHEMA_KEYS = { "authorized-keys", "authorized-keys-path", "ca-cert", "ca-cert-path",
  "ca-private-key", "ca-private-key-path" }
local function given(v)
  local t = math.type(v) or type(v)
  if t == "integer" then return string.format("int(%d)", v) end
  if t == "float" then return string.format("float64(%s)", tostring(v)) end
  if t == "boolean" then return string.format("bool(%s)", tostring(v)) end
  if t == "table" then return yaml.is_array(v) and "list" or "map" end
  return t
end
local function check_pre_schema(attrs, marks, file)
  for _, k in ipairs(PRE_SCHEMA_KEYS) do
    local v = attrs[k]
    if present(v) and type(v) ~= "string" then
      local m = marks and marks[attrs] and marks[attrs][k]
      local line, col = m and (m.line or m[1]), m and (m.column or m[2])
      local where = (file and line) and string.format("%s:%d:%d: ", file, line, col) or ""
      return nil, string.format("%s%s: expected string, got %s", where, k, given(v))
    end
  end
  return true
end

--- Builds the configuration of an environments.yaml entry (defaults mode).
--- attrs/marks come from Environs:attrs (attrs is modified). opts: provider
--- (loaded provider or nil), file (source name), home (JUJU_HOME),
--- with_keys (discover authorized-keys, which may create the client key).
--- Returns cfg, warnings, or nil, message.
function M.from_environments(ctx, attrs, marks, opts)
  opts = opts or {}
  local name = attrs.name
  if not present(name) or name == "" then return nil, "empty name in environment configuration" end
  if not present(attrs.type) then return nil, string.format("environment %q has no type", name) end
  if present(attrs["storage-default-block-source"]) then
    return nil, string.format("attribute %q is not allowed in bootstrap configurations", "storage-default-block-source")
  end
  translate_deprecated(ctx, attrs)
  -- Juju printed config errors without naming the environment; the name
  -- goes to the log (--show-log) instead.
  local function failed(msg)
    ctx:log_for("juju.environs.config"):infof("environment %q: %s", name, tostring(msg))
    return nil, msg
  end
  -- The keys read before the schema applies (files and keys) are
  -- type-checked first, with the schema's own message and position.
  local pre_ok, pre_err = check_pre_schema(attrs, marks, opts.file)
  if not pre_ok then return failed(pre_err) end
  local ok, err = load_ca_files(ctx, opts.home, attrs)
  if not ok then return failed(err) end
  if opts.with_keys then
    local priv, perr = authkeys.ensure_client_key(opts.home)
    if not priv then return failed(perr) end
    local keys, kerr = authkeys.discover(ctx, opts.home, present(attrs["authorized-keys"]) and attrs["authorized-keys"] or nil,
      present(attrs["authorized-keys-path"]) and ctx:expand_home(attrs["authorized-keys-path"]) or nil)
    if not keys then return failed(kerr) end
    attrs["authorized-keys"] = keys
  end
  attrs["authorized-keys-path"] = nil
  local schema, serr = M.schema_for(opts.provider)
  if not schema then return nil, serr end
  local cfg, warnings = schema:coerce(attrs, {
    mode = "defaults", file = opts.file, marks = marks, unknown = opts.provider ~= nil,
  })
  if not cfg then return failed(warnings) end
  ok, err = derive_logging_config(ctx, cfg)
  if not ok then return failed(err) end
  ok, err = validate(cfg)
  if not ok then return failed(err) end
  return cfg, warnings
end

--- Builds a configuration from a prepared bootstrap-config (no defaults).
function M.from_prepared(_, attrs, opts)
  opts = opts or {}
  for _, k in ipairs({ "authorized-keys-path", "ca-cert-path", "ca-private-key-path" }) do
    if present(attrs[k]) then return nil, string.format("attribute %q is not allowed in configuration", k) end
  end
  local schema, serr = M.schema_for(opts.provider)
  if not schema then return nil, serr end
  local cfg, err = schema:coerce(attrs, { mode = "nodefaults", file = opts.file })
  if not cfg then return nil, err end
  if not present(cfg["authorized-keys"]) then
    return nil, "authorized-keys missing from environment configuration"
  end
  local ok, verr = validate(cfg)
  if not ok then return nil, verr end
  if opts.old then
    ok, verr = M.validate_change(cfg, opts.old)
    if not ok then return nil, verr end
  end
  return cfg
end

-- Go's %#v of a config value, for "cannot change" messages.
local function go_repr(v)
  if type(v) == "string" then return string.format("%q", v) end
  if v == nil or v == yaml.null then return "<nil>" end
  return tostring(v)
end

--- Juju's Validate(cfg, old): immutable attributes keep their value, and
--- an agent-version once set is never cleared. Returns true or nil, message.
function M.validate_change(cfg, old)
  if present(old["agent-version"]) and not present(cfg["agent-version"]) then
    return nil, "cannot clear agent-version"
  end
  local names = {}
  for name, def in pairs(schema_data.fields) do
    if def.immutable then names[#names + 1] = name end
  end
  table.sort(names)
  for _, name in ipairs(names) do
    local a, b = old[name], cfg[name]
    if present(a) and a ~= b then
      return nil, string.format("cannot change %s from %s to %s", name, go_repr(a), go_repr(b))
    end
  end
  return true
end

--- The secret attribute names of an environment (core and provider).
function M.secret_keys(provider)
  local s = M.schema_for(provider)
  return s and s:secrets() or {}
end

--- Registers every secret value of cfg for redaction in ctx.
function M.register_secrets(ctx, cfg, provider)
  for _, k in ipairs(M.secret_keys(provider)) do
    if type(cfg[k]) == "string" then ctx:add_secret(cfg[k]) end
  end
end

--- Accessor-level defaults (not stored) (spec 3.2).
function M.get(cfg, key)
  local v = cfg[key]
  if v ~= nil and v ~= yaml.null then return v end
  local defaults = {
    ["agent-stream"] = "released", ["image-stream"] = "released",
    ["provisioner-harvest-mode"] = "destroyed", ["enable-os-refresh-update"] = true,
    ["enable-os-upgrade"] = true, ["enable-package-install"] = true, ["lxc-default-mtu"] = 0,
    ["proxy-ssh"] = false,
  }
  return defaults[key]
end

return M
