-- bench/storage_backends.lua: how bench/storage.lua starts each environ
-- storage backend's loopback emulator, opens the store (in the parent and in
-- bench/storage_child.lua, from the same plain options), and what the floor
-- is: curl moving the same object with the same credentials.
--
-- backend.start(scratch) -> opts (JSON-able) ; backend.curl(opts, scratch,
-- name) -> put_argv_for(src), get_argv_for(dst) ; M.open(backend, opts) ->
-- store.
local fs = require("juju.fs")
local crypto = require("juju.crypto")

local M = {}

local function curlrc(dir, lines)
  assert(fs.mkdir_p(dir, "0700"))
  local path = dir .. "/curlrc"
  local base = { "silent", "show-error", "fail" }
  for _, l in ipairs(lines) do base[#base + 1] = l end
  assert(fs.write_atomic(path, table.concat(base, "\n") .. "\n", "0600"))
  return path
end

M.backends = {}

M.backends.dir = {
  label = "directory (juju.storage.open_dir)",
  floor = "curl file://",
  start = function(scratch) return { root = scratch .. "/dir-store" } end,
  open = function(o) return require("juju.storage").open_dir(o.root) end,
  curl = function(o, scratch, name)
    local rc = curlrc(scratch, {})
    local url = "file://" .. o.root .. "/" .. name .. "-curl"
    assert(fs.mkdir_p((o.root .. "/" .. name):match("^(.*)/"), "0700"))
    return function(src) return { "curl", "-K", rc, "-T", src, url } end,
      function(dst) return { "curl", "-K", rc, "-o", dst, url } end
  end,
}

M.backends.s3 = {
  label = "s3 (juju.cloud.storage.s3, s3rver)",
  floor = "curl --aws-sigv4",
  start = function()
    local server = require("juju.testing.server")
    local npm = assert(require("juju.sys").run({ "npm", "root", "-g" }, { timeout = 60 }))
    local node_path = npm.stdout:gsub("%s+$", "")
    local s = assert(server.start { name = "s3rver", host = "127.0.0.5",
      argv = { "node", node_path .. "/s3rver/bin/s3rver.js", "--address", "{host}", "--port", "{port}",
               "--directory", "{dir}", "--silent" },
      env = { NODE_PATH = node_path } })
    -- s3rver's fixed test credentials.
    return { endpoint = s.url, region = "us-east-1", bucket = "bench", access_key = "S3RVER", secret_key = "S3RVER" }
  end,
  open = function(o) return require("juju.cloud.storage.s3").new(o) end,
  -- curl 7.88 signs with its own SigV4 but neither hashes the payload nor
  -- sends x-amz-content-sha256: it says UNSIGNED-PAYLOAD (juju hashes the
  -- file first).
  curl = function(o, scratch, name)
    local rc = curlrc(scratch, { string.format('user = "%s:%s"', o.access_key, o.secret_key),
      string.format('aws-sigv4 = "aws:amz:%s:s3"', o.region), 'header = "x-amz-content-sha256: UNSIGNED-PAYLOAD"',
      'url = "' .. o.endpoint .. "/" .. o.bucket .. "/" .. name .. '-curl"' })
    return function(src) return { "curl", "-K", rc, "-T", src } end,
      function(dst) return { "curl", "-K", rc, "-o", dst } end
  end,
}

M.backends.azure = {
  label = "azure blob (juju.cloud.storage.azure, azurite)",
  floor = "curl with a SAS URL",
  start = function()
    local az = require("servers.azure-blob.azurite").start()
    return { account = az.account, key = az.key, endpoint = az.endpoint, container = "bench" }
  end,
  open = function(o) return require("juju.cloud.storage.azure").new(o) end,
  curl = function(o, scratch, name)
    local sign = require("juju.cloud.sign.azure")
    local key = crypto.unbase64(o.key)
    local blob = name .. "-curl"
    local function sas(perm)
      return (sign.sas { account = o.account, key = key, container = o.container, blob = blob,
        expiry = os.time() + 3600, permissions = perm })
    end
    local url = o.endpoint .. "/" .. o.container .. "/" .. blob
    -- The URLs carry signatures: they go in curl's config file, not argv.
    local up = curlrc(scratch .. "/up", { 'header = "x-ms-blob-type: BlockBlob"', 'url = "' .. url .. "?" .. sas("cw") .. '"' })
    local down = curlrc(scratch .. "/down", { 'url = "' .. url .. "?" .. sas("r") .. '"' })
    return function(src) return { "curl", "-K", up, "-T", src } end,
      function(dst) return { "curl", "-K", down, "-o", dst } end
  end,
}

M.backends.swift = {
  label = "swift (juju.cloud.storage.swift, goose fake, keystone v3)",
  floor = "curl with the same token",
  start = function()
    local fake = require("servers.goose.fake")
    local s = fake.start("127.0.0.23", "bench")
    local c = fake.CREDS
    return { auth_url = s.v3, username = c.username, password = c.password, tenant_name = c.tenant_name,
      domain_name = c.domain_name, region = "RegionOne", container = "bench" }
  end,
  open = function(o)
    local ks = assert(require("juju.cloud.keystone").new { auth_url = o.auth_url, username = o.username,
      password = o.password, tenant_name = o.tenant_name, domain_name = o.domain_name, region = o.region })
    return require("juju.cloud.storage.swift").new { keystone = ks, container = o.container }
  end,
  curl = function(o, scratch, name)
    local ks = assert(require("juju.cloud.keystone").new { auth_url = o.auth_url, username = o.username,
      password = o.password, tenant_name = o.tenant_name, domain_name = o.domain_name, region = o.region })
    local token = assert(ks:token())
    local base = assert(ks:endpoint("object-store"))
    local url = base .. "/" .. o.container .. "/" .. name .. "-curl"
    local rc = curlrc(scratch, { 'header = "X-Auth-Token: ' .. token .. '"', 'url = "' .. url .. '"' })
    return function(src) return { "curl", "-K", rc, "-T", src } end,
      function(dst) return { "curl", "-K", rc, "-o", dst } end
  end,
}

M.backends.manta = {
  label = "manta (juju.cloud.storage.manta, node fake checking every signature)",
  floor = "curl, signed header / signed URL",
  start = function(scratch)
    local server = require("juju.testing.server")
    local harness = require("servers.manta.harness")
    local sign = require("juju.sign")
    local dir = scratch .. "/manta-keys"
    assert(fs.mkdir_p(dir, "0700"))
    local key_path = harness.keygen(dir, "id_rsa", "rsa", 2048)
    local key = assert(sign.load_key_file(key_path))
    local fp = key:fingerprint_md5()
    assert(fs.write_atomic(dir .. "/user.pub", key:public_line("bench")))
    key:close()
    local s = assert(server.start { name = "manta",
      argv = { "node", harness.dir .. "/server.js", "--host", "{host}", "--port", "{port}", "--dir", "{dir}",
        "--user", "bench", "--key-id", "/bench/keys/" .. fp, "--public-key", dir .. "/user.pub" },
      env = { NODE_PATH = harness.node_path() } })
    return { url = s.url, user = "bench", key_file = key_path, root = "stor/bench" }
  end,
  open = function(o) return require("juju.cloud.storage.manta").new(o) end,
  -- Upload: one PUT with a Date and Authorization made here (valid for
  -- Manta's 5 minutes); download: the object's signed URL.
  curl = function(o, scratch, name, st)
    local httpsig = require("juju.cloud.sign.httpsig")
    local key = assert(require("juju.sign").load_key_file(o.key_file))
    local url = o.url .. "/" .. o.user .. "/" .. o.root .. "/" .. name .. "-curl"
    local req = { method = "PUT", url = url, headers = {} }
    httpsig.sign(req, { key = key, key_id = httpsig.key_id(o.user, key:fingerprint_md5()), now = os.time() })
    key:close()
    local up = curlrc(scratch .. "/up", { 'header = "Date: ' .. req.headers.Date .. '"',
      'header = "Authorization: ' .. req.headers.Authorization:gsub('"', '\\"') .. '"', 'url = "' .. url .. '"' })
    local down = curlrc(scratch .. "/down", { 'url = "' .. assert(st:url(name, { expires = 3600 })) .. '"' })
    return function(src) return { "curl", "-K", up, "-T", src } end,
      function(dst) return { "curl", "-K", down, "-o", dst } end
  end,
}

M.backends.maas = {
  label = "maas files (juju.cloud.storage.maas, gomaasapi checking OAuth)",
  floor = "curl -F op=add / anonymous URL",
  start = function()
    local server = require("juju.testing.server")
    local root = os.getenv("JUJU_TEST_SOURCE_DIR")
    local bin = assert(server.go_build("maas-bench", root .. "/tests/servers/maas"))
    local oauth = "benchConsumer:benchToken:benchSecretXYZ"
    local s = assert(server.start { name = "maas", argv = { bin, "-addr", "{host}:{port}" },
      env = { MAAS_TEST_OAUTH = oauth } })
    return { server = s.url .. "/MAAS", oauth = oauth, prefix = "bench-" }
  end,
  open = function(o) return require("juju.cloud.storage.maas").new(o) end,
  curl = function(o, scratch, name, st)
    local oauth = require("juju.cloud.sign.oauth")
    local auth = oauth.authorization(assert(oauth.parse_key(o.oauth)),
      { timestamp = os.time(), nonce = crypto.hex(crypto.random_bytes(16)) })
    local up = curlrc(scratch .. "/up", { 'header = "Authorization: ' .. auth:gsub('"', '\\"') .. '"',
      'url = "' .. oauth.api_url(o.server) .. 'files/?op=add"', 'form = "filename=' .. o.prefix .. name .. '-curl"' })
    local down = curlrc(scratch .. "/down", { 'url = "' .. assert(st:url(name)) .. '"' })
    return function(src) return { "curl", "-K", up, "-F", "file=@" .. src } end,
      function(dst) return { "curl", "-K", down, "-o", dst } end
  end,
}

function M.open(backend, opts)
  return assert(M.backends[backend], "unknown backend " .. tostring(backend)).open(opts)
end

return M
