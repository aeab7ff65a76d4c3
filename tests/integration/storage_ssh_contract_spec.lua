-- storage_ssh_contract_spec.lua: the storage behaviour suite
-- (tests/spec/storage_contract.lua) on the SSH backend (juju.sshstorage,
-- the manual provider's environ storage) against a real sshd in a private
-- namespace: once logged in as root, once as a user going through sudo.
local sshd = require("juju.testing.sshd")
local ssh = require("juju.ssh")
local http = require("juju.http")
local shell = require("juju.shell")
local sshstorage = require("juju.sshstorage")

local available, why = sshd.available()
assert(available, "storage over SSH needs the harness sshd: " .. tostring(why))

local server = assert(sshd.start { address_index = 51 })
teardown(function() server.stop() end)

-- How machine 0 reads a file:// URL: the path on the host, as root (the
-- phase-2 script runs as root; objects are root's 0600 files).
local function fetcher(session, sudo)
  return function(url)
    local path = http.url_unescape(assert(url:match("^file://(/.*)$"), "not a file URL: " .. url))
    local r, msg = session:exec((sudo and "sudo -n " or "") .. "cat -- " .. shell.quote(path), { timeout = 30 })
    if not r then return nil, msg end
    if r.code ~= 0 then return nil, r.stderr end
    return r.stdout
  end
end

local function suite(kind, connect_opts, sudo)
  local session
  local function get_session()
    if not session then session = assert(ssh.connect(connect_opts)) end
    return session
  end
  require("spec.storage_contract").run(describe, it, assert, function(name)
    return sshstorage.new { root = "/var/lib/juju/" .. name, sudo = sudo, session = function() return get_session() end }
  end, { kind = kind, fetch = function(url) return fetcher(get_session(), sudo)(url) end })
end

suite("ssh (root)", server.connect_opts(), false)

assert(server.add_user("ubuntu"))
local r = assert(server.run({ "/bin/sh", "-c",
  "echo 'ubuntu ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/90-juju-test && chmod 0440 /etc/sudoers.d/90-juju-test" }))
assert(r.code == 0, r.stderr)
suite("ssh (sudo)", server.connect_opts { user = "ubuntu" }, true)
