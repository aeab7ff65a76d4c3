-- juju.environs.authkeys: the client SSH identity and authorized-keys
-- discovery (spec 3.3, 4.2).
--
-- The engine authenticates with an ed25519 key, $JUJU_HOME/ssh/juju_id_ed25519,
-- generated on first use (libssh2 1.10 cannot sign with RSA-SHA2). An existing
-- Juju 1.x juju_id_rsa.pub is still put in authorized-keys.
local crypto = require("juju.crypto")
local fs = require("juju.fs")

local M = {}

M.CLIENT_KEY = "juju_id_ed25519"
-- Key files are small: a larger one, a FIFO or a device (/dev/zero) is refused.
local KEY_MAX = 1024 * 1024

local function trim(s) return (s:gsub("^%s+", ""):gsub("%s+$", "")) end

--- Ensures the client key pair exists; returns private path, public line.
function M.ensure_client_key(home)
  local dir = home .. "/ssh"
  local ok, err = fs.mkdir_p(dir, tonumber("700", 8))
  if not ok then return nil, "cannot load ssh client keys: " .. err end
  local priv = dir .. "/" .. M.CLIENT_KEY
  local pub = priv .. ".pub"
  if fs.exists(priv) and fs.exists(pub) then
    local line = fs.read_file(pub, { max_size = KEY_MAX })
    if line then return priv, trim(line) end
  end
  local pem, line = crypto.ssh_keygen_ed25519("juju-client-key")
  local wrote, werr = fs.write_atomic(priv, pem, tonumber("600", 8))
  if not wrote then return nil, "cannot load ssh client keys: " .. werr end
  wrote, werr = fs.write_atomic(pub, line .. "\n", tonumber("644", 8))
  if not wrote then return nil, "cannot load ssh client keys: " .. werr end
  return priv, line
end

--- Public lines of every client key in JUJU_HOME/ssh whose private half exists.
function M.client_public_keys(home)
  local dir = home .. "/ssh"
  local names = fs.list(dir) or {}
  local out = {}
  for _, n in ipairs(names) do
    local base = n:match("^(.*)%.pub$")
    if base and fs.exists(dir .. "/" .. base) then
      local text = fs.read_file(dir .. "/" .. n, { max_size = KEY_MAX })
      if text and trim(text) ~= "" then out[#out + 1] = trim(text) end
    end
  end
  return out
end

local function add_unique(list, seen, text)
  for line in text:gmatch("[^\n]+") do
    line = trim(line)
    if line ~= "" and not line:match("^#") and not seen[line] then
      seen[line] = true
      list[#list + 1] = line
    end
  end
end

-- Whether text carries private-key material: any PEM or OpenSSH private key
-- block (RSA, EC, DSA, PKCS#8, encrypted, OPENSSH) or a PuTTY key file.
-- Such text must never reach machine 0 or the .jenv (the CVE-2015-1316 class).
local function holds_private_key(text)
  return text:find("-----BEGIN[ %u%d]*PRIVATE KEY-----") ~= nil
    or text:find("PuTTY-User-Key-File-", 1, true) ~= nil
end
M.holds_private_key = holds_private_key

--- Builds authorized-keys: the client keys, then the given keys text or the
--- files of authorized-keys-path (or the user's default identities).
--- Unlike Juju 1.x the client key is always included, since the engine logs
--- in with it. Returns the text (newline-terminated lines) or nil, message.
function M.discover(ctx, home, explicit, path)
  local list, seen = {}, {}
  for _, line in ipairs(M.client_public_keys(home)) do add_unique(list, seen, line) end
  local user_found = false
  if explicit and trim(explicit) ~= "" then
    if holds_private_key(explicit) then
      return nil, "authorized-keys holds a private key; it must hold public key lines only "
        .. "(`ssh-keygen -y -f PRIVATE-KEY` prints one); nothing was written"
    end
    add_unique(list, seen, explicit)
    user_found = true
  else
    local files
    if path and path ~= "" then
      files = { path }
    else
      files = { "id_ed25519.pub", "id_ecdsa.pub", "id_dsa.pub", "id_rsa.pub", "identity.pub" }
    end
    for _, file in ipairs(files) do
      local p = ctx:expand_home(file)
      if not p:match("^/") then p = ctx:expand_home("~/.ssh/" .. p) end
      local text, err, code = fs.read_file(p, { max_size = KEY_MAX })
      if text and holds_private_key(text) then
        return nil, string.format("%s %q holds a private key; it must hold public key lines only "
          .. "(`ssh-keygen -y -f PRIVATE-KEY` prints one); nothing was written",
          (path and path ~= "") and "authorized-keys-path" or "default public key file", p)
      elseif text then
        add_unique(list, seen, text)
        user_found = true
      elseif code ~= "ENOENT" then
        return nil, err
      elseif path and path ~= "" then
        return nil, string.format("cannot read authorized-keys-path %q: %s", path, err)
      end
    end
  end
  if #list == 0 then return nil, "no public ssh keys found" end
  return table.concat(list, "\n") .. "\n", user_found
end

return M
