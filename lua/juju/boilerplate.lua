-- juju.boilerplate: the environments.yaml that `juju init` writes: one
-- entry for each provider this engine has (built in, or a user's in
-- $JUJU_HOME/providers), the provider's own `boilerplate` string when it
-- carries one. The default is 1.25's (amazon) once ec2 exists.
local providers = require("juju.providers")

local M = {}

M.HEADER = [[
# Juju environments: each entry under "environments" names one environment
# and says which provider runs it ("type"). Values in <brackets> must be
# filled in; commented lines show optional settings with sample values.
#
# Which environment a command uses, in descending order of precedence:
#  1. the -e/--environment option, e.g. juju bootstrap -e myenv
#  2. the JUJU_ENV environment variable
#  3. the environment chosen with: juju switch myenv
#  4. the "default" below
#
# Settings every environment understands include default-series,
# admin-secret (generated when absent), authorized-keys-path,
# agent-metadata-url, agent-stream, bootstrap-timeout (seconds),
# enable-os-refresh-update and enable-os-upgrade.

default: %s

environments:
]]

M.ENTRIES = {}

M.ENTRIES["local"] = [[
# This machine is machine 0: no cloud account needed.
local:
    type: local

    # root-dir holds the state, storage and logs of the environment.
    # The default is $JUJU_HOME/<environment name>.
    #
    # root-dir: ~/.juju/local

    # state-store is the database of the state server: sqlite (the
    # default here) or mongodb (needs a mongod on this machine).
    #
    # state-store: sqlite

    # Refreshing and upgrading packages makes a local bootstrap slow;
    # they are off unless you turn them on.
    #
    # enable-os-refresh-update: false
    # enable-os-upgrade: false
]]

M.ENTRIES.manual = [[
# An existing machine reached over SSH becomes machine 0.
manual:
    type: manual
    # bootstrap-host is the machine to bootstrap, optionally with a port
    # (host:port).
    bootstrap-host: somehost.example.com

    # bootstrap-user is the user to log in as; it defaults to the
    # current user. It needs passwordless sudo on the host.
    #
    # bootstrap-user: ubuntu

    # The host's SSH key is checked on every connection: bootstrap-host-key
    # is its public key line (e.g. /etc/ssh/ssh_host_ed25519_key.pub);
    # without it the key must already be in
    # $JUJU_HOME/environments/<name>.known_hosts, or ssh-trust-on-first-use
    # set to true lets the first connection learn it.
    #
    # bootstrap-host-key: ssh-ed25519 AAAA... root@somehost
    # ssh-trust-on-first-use: false

    # enable-os-refresh-update: true
    # enable-os-upgrade: false
]]

M.ENTRIES.ec2 = [[
# Amazon Web Services.
amazon:
    type: ec2

    # region is the EC2 region; the default is us-east-1.
    #
    # region: us-east-1

    # access-key and secret-key default to the environment variables
    # AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
    #
    # access-key: <secret>
    # secret-key: <secret>

    # agent-stream picks the simplestreams stream of the tools.
    #
    # agent-stream: released
]]

M.ENTRIES.openstack = [[
# An OpenStack cloud (Keystone, Nova, Swift).
openstack:
    type: openstack

    # auth-url is the Keystone endpoint; defaults to $OS_AUTH_URL.
    #
    # auth-url: https://keystone.example.com:5000/v2.0/

    # region defaults to $OS_REGION_NAME; tenant-name to $OS_TENANT_NAME.
    #
    # region: <your region>
    # tenant-name: <your tenant name>

    # domain-name is the Keystone v3 domain of the user and the project
    # (auth-url ending in /v3); Keystone v2 has none.
    #
    # domain-name: Default

    # auth-mode is userpass (username, password; default $OS_USERNAME and
    # $OS_PASSWORD) or keypair (access-key, secret-key).
    #
    # auth-mode: userpass
    # username: <your username>
    # password: <secret>

    # use-floating-ip: false
]]

M.ENTRIES.azure = [[
# Microsoft Azure (service management API).
azure:
    type: azure

    # location is where instances start, e.g. West US, North Europe.
    #
    location: West US

    # The management subscription and certificate of your account.
    #
    management-subscription-id: 00000000-0000-0000-0000-000000000000
    management-certificate-path: /home/me/azure.pem

    # storage-account-name is the storage account for the environment.
    #
    storage-account-name: abcdefghijkl
]]

M.ENTRIES.joyent = [[
# Joyent public cloud (CloudAPI and Manta).
joyent:
    type: joyent

    # sdc-user and sdc-key-id identify you to CloudAPI; they default to
    # $SDC_ACCOUNT and $SDC_KEY_ID (the key id is the key's MD5
    # fingerprint, aa:bb:...).
    #
    # sdc-user: <secret>
    # sdc-key-id: <secret>

    # sdc-url defaults to $SDC_URL, then the us-west-1 CloudAPI endpoint.
    #
    # sdc-url: https://us-west-1.api.joyentcloud.com

    # manta-user and manta-key-id identify you to Manta, where the
    # environment's storage lives; they default to $MANTA_USER and
    # $MANTA_KEY_ID. manta-url defaults to $MANTA_URL, then us-east.
    #
    # manta-user: <secret>
    # manta-key-id: <secret>
    # manta-url: https://us-east.manta.joyent.com

    # private-key-path is the key that signs requests (default
    # $MANTA_PRIVATE_KEY_FILE); it never leaves this machine.
    #
    # private-key-path: ~/.ssh/id_rsa
]]

M.ENTRIES.maas = [[
# A MAAS cluster (API 1.0).
maas:
    type: maas

    # maas-server is the MAAS API URL.
    #
    maas-server: 'http://192.168.1.1/MAAS'

    # maas-oauth is the API key from the MAAS preferences page.
    #
    maas-oauth: '<add your OAuth credentials from MAAS here>'
]]

M.ORDER = { "local", "manual", "ec2", "openstack", "azure", "joyent", "maas" }

-- Providers for tests only: never offered to operators.
local HIDDEN = require("juju.provider_list").HIDDEN

--- Every provider this engine can load for JUJU_HOME home, sorted, as
--- {name=, description=, boilerplate=}: providers.list (the built-in
--- directory and $JUJU_HOME/providers) without the test-only ones and
--- those that fail to load.
function M.available_providers(home)
  local out = {}
  for _, e in ipairs(providers.list(home)) do
    if not e.error and not HIDDEN[e.name] then
      out[#out + 1] = { name = e.name, description = e.description, boilerplate = e.boilerplate }
    end
  end
  return out
end

local function indent(text)
  return (text:gsub("([^\n]*)\n", function(line)
    if line == "" then return "\n" end
    return "    " .. line .. "\n"
  end))
end

-- The environment name an entry defines: its first unindented key.
local function entry_name(text)
  for line in text:gmatch("[^\n]+") do
    local n = line:match("^([%w_-]+):")
    if n then return n end
  end
  return nil
end

--- The whole file for the given providers (as available_providers returns).
function M.render(list)
  local rank = {}
  for i, n in ipairs(M.ORDER) do rank[n] = i end
  local sorted = table.move(list, 1, #list, 1, {})
  table.sort(sorted, function(a, b)
    local ra, rb = rank[a.name] or math.huge, rank[b.name] or math.huge
    if ra ~= rb then return ra < rb end
    return a.name < b.name
  end)
  local parts, entries, has = {}, {}, {}
  for _, p in ipairs(sorted) do
    local text = p.boilerplate or M.ENTRIES[p.name]
      or string.format("# %s\n%s:\n    type: %s\n", p.description or ("the " .. p.name .. " provider"), p.name, p.name)
    if text:sub(-1) ~= "\n" then text = text .. "\n" end
    entries[#entries + 1] = indent(text)
    has[p.name] = entry_name(text) or p.name
  end
  local default = has.ec2 or has["local"] or (sorted[1] and has[sorted[1].name]) or "local"
  parts[1] = string.format(M.HEADER, default)
  for _, e in ipairs(entries) do parts[#parts + 1] = e end
  return table.concat(parts, "\n")
end

return M
