-- servers/manta/harness.lua: what the Joyent specs share: node with the
-- global npm modules (http-signature, sshpk), ssh-keygen keys in a temp
-- dir, the independent verifier (verify.js) and the Manta fake (server.js).
local fs = require("juju.fs")
local json = require("juju.json")
local sys = require("juju.sys")

local M = {}

local SRC = os.getenv("JUJU_TEST_SOURCE_DIR") or "."
M.dir = SRC .. "/tests/servers/manta"

local node_path
-- NODE_PATH for the global npm modules (`npm root -g`), checked to hold
-- http-signature and sshpk: a missing one is an error naming install-deps.
function M.node_path()
  if node_path then return node_path end
  local r = sys.run({ "npm", "root", "-g" }, { timeout = 60 })
  local root = r and r.code == 0 and r.stdout:gsub("%s+$", "") or "/usr/lib/node_modules"
  for _, m in ipairs({ "http-signature", "sshpk" }) do
    if not fs.exists(root .. "/" .. m .. "/package.json") then
      error("npm module " .. m .. " not found under " .. root .. "; run scripts/install-deps.sh", 2)
    end
  end
  node_path = root
  return root
end

function M.env()
  return { PATH = os.getenv("PATH") or "/usr/bin:/bin", NODE_PATH = M.node_path() }
end

-- Generates a key with ssh-keygen (type "rsa", "ecdsa", "ed25519"; bits)
-- at dir/name in OpenSSH format; returns the private path and the public line.
function M.keygen(dir, name, type, bits)
  local path = dir .. "/" .. name
  local argv = { "ssh-keygen", "-q", "-t", type, "-N", "", "-C", name, "-f", path }
  if bits then table.insert(argv, 2, "-b") table.insert(argv, 3, tostring(bits)) end
  local r = assert(sys.run(argv, { timeout = 60 }))
  assert(r.code == 0, "ssh-keygen failed: " .. r.stderr)
  return path, (fs.read_file(path .. ".pub"):gsub("%s+$", ""))
end

-- Runs verify.js over requests ({method, url, headers, key_id}) against
-- public_key; returns the array of {ok, code, reason, signing_string}.
function M.verify(public_key, requests, clock_skew)
  local doc = assert(json.encode({
    public_key = public_key, clock_skew = clock_skew or 1e10, requests = json.array(requests) }))
  local r = assert(sys.run({ "node", M.dir .. "/verify.js" }, { stdin = doc, env = M.env(), timeout = 60 }))
  assert(r.code == 0, "verify.js failed: " .. r.stderr)
  return assert(json.decode(r.stdout, "verify.js"))
end

return M
