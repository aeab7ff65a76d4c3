-- azure_sign_spec.lua: juju.cloud.sign.azure. ../shared/conformance/signing
-- has no Azure vectors, so the strings-to-sign below are built by hand from
-- Microsoft's documented format ("Authorize with Shared Key", "Create a
-- service SAS") for fixed requests, the documented example included, and the
-- signatures were computed independently (Python hmac/hashlib/base64). Then
-- azurite 3.35.0, which verifies SharedKey and SAS itself, proves that what
-- the signer produces is accepted and that a tampered header, a wrong key,
-- no signature, a tampered or an expired SAS are refused with 403.
local azure = require("juju.cloud.sign.azure")
local azurite = require("servers.azure-blob.azurite")
local crypto = require("juju.crypto")
local http = require("juju.http")

local KEY = crypto.unbase64(azurite.KEY)
local DOC_TIME = 1435361952 -- Fri, 26 Jun 2015 23:39:12 GMT

describe("azure SharedKey strings to sign", function()
  it("formats dates as RFC 1123 and ISO 8601 UTC", function()
    assert.are.equal("Fri, 26 Jun 2015 23:39:12 GMT", azure.http_date(DOC_TIME))
    assert.are.equal("Thu, 01 Jan 1970 00:00:00 GMT", azure.http_date(0))
    assert.are.equal("2015-06-26T23:39:12Z", azure.iso8601(DOC_TIME))
  end)

  it("reproduces Microsoft's documented example (Get Container Metadata, 2015-02-21)", function()
    local req = { method = "GET",
      url = "https://myaccount.blob.core.windows.net/mycontainer?restype=container&comp=metadata&timeout=20",
      headers = { ["x-ms-version"] = "2015-02-21" } }
    local sts = azure.sign(req, { account = "myaccount", key = KEY, now = DOC_TIME })
    assert.are.equal("GET\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:Fri, 26 Jun 2015 23:39:12 GMT\n" ..
      "x-ms-version:2015-02-21\n/myaccount/mycontainer\ncomp:metadata\nrestype:container\ntimeout:20", sts)
    assert.are.equal("Fri, 26 Jun 2015 23:39:12 GMT", req.headers["x-ms-date"])
    -- HMAC-SHA256 of that string with the emulator's key, by Python.
    assert.are.equal("SharedKey myaccount:1u9lui2jDxj0+fpbHjQ5m5NnastJRSYM+PSmfi8TXx4=", req.headers.Authorization)
  end)

  it("canonicalizes the resource: sorted lower-case names, decoded and joined values", function()
    assert.are.equal("/myaccount/mycontainer\ncomp:list\ninclude:metadata,snapshots,uncommittedblobs\nrestype:container",
      azure.canonical_resource("myaccount", "https://myaccount.blob.core.windows.net/mycontainer?restype=container" ..
        "&comp=list&include=snapshots&include=metadata&include=uncommittedblobs"))
    assert.are.equal("/myaccount/c\ncomp:list\nmarker:a b/c\nprefix:tools/",
      azure.canonical_resource("myaccount", "http://h/c?Prefix=tools%2F&comp=list&marker=a%20b%2Fc"))
    assert.are.equal("/myaccount/", azure.canonical_resource("myaccount", "https://myaccount.blob.core.windows.net"))
    -- the emulator's path-style URL repeats the account (toolchain.md)
    assert.are.equal("/devstoreaccount1/devstoreaccount1/c/tools/a%20b",
      azure.canonical_resource("devstoreaccount1", "http://127.0.0.1:10000/devstoreaccount1/c/tools/a%20b"))
  end)

  it("uses the pre-2009-09-19 resource layout (only comp) for old versions", function()
    local url = "https://myaccount.blob.core.windows.net/mycontainer?restype=container&comp=metadata"
    assert.are.equal("/myaccount/mycontainer?comp=metadata", azure.canonical_resource("myaccount", url, "2009-07-17"))
    assert.are.equal("/myaccount/mycontainer\ncomp:metadata\nrestype:container",
      azure.canonical_resource("myaccount", url, "2009-09-19"))
  end)

  it("canonicalizes x-ms-* headers only, lower-cased, sorted, trimmed", function()
    assert.are.equal("x-ms-blob-type:BlockBlob\nx-ms-meta-a:one two\nx-ms-version:2019-12-12\n",
      azure.canonical_headers({ ["X-Ms-Version"] = "2019-12-12", ["x-ms-meta-a"] = "  one   two ",
        ["x-ms-blob-type"] = "BlockBlob", ["Content-Type"] = "text/plain", Host = "h" }))
  end)

  it("signs the standard headers in order, with Content-Length from a string body", function()
    local req = { method = "put", url = "https://acct.blob.core.windows.net/c/b",
      headers = { ["Content-Type"] = "text/plain", ["x-ms-blob-type"] = "BlockBlob",
        ["If-Match"] = "\"0x1\"", Range = "bytes=0-9", ["Content-MD5"] = "bWQ1", ["Content-Encoding"] = "gzip",
        ["Content-Language"] = "en", Date = "x", ["If-Modified-Since"] = "ims", ["If-None-Match"] = "inm",
        ["If-Unmodified-Since"] = "ius" },
      body = "hello world" }
    local sts = azure.sign(req, { account = "acct", key = KEY, now = DOC_TIME, version = "2019-12-12" })
    assert.are.equal("PUT\ngzip\nen\n11\nbWQ1\ntext/plain\nx\nims\n\"0x1\"\ninm\nius\nbytes=0-9\n" ..
      "x-ms-blob-type:BlockBlob\nx-ms-date:Fri, 26 Jun 2015 23:39:12 GMT\nx-ms-version:2019-12-12\n/acct/c/b", sts)
    assert.are.equal("11", req.headers["Content-Length"])
  end)

  it("applies the zero Content-Length rule by version, or as told", function()
    local function sts(version, rule)
      return azure.string_to_sign({ method = "PUT", url = "https://a.blob.core.windows.net/c?restype=container",
        headers = { ["Content-Length"] = "0", ["x-ms-version"] = version } }, "a", { zero_length = rule })
    end
    assert.are.equal("PUT\n\n\n0\n", sts("2012-02-12"):sub(1, 8))
    assert.are.equal("PUT\n\n\n0\n", sts("2014-02-14"):sub(1, 8))
    assert.are.equal("PUT\n\n\n\n\n", sts("2015-02-21"):sub(1, 8))
    assert.are.equal("PUT\n\n\n\n\n", sts("2012-02-12", "empty"):sub(1, 8))
    assert.are.equal("PUT\n\n\n0\n", sts("2019-12-12", "zero"):sub(1, 8))
    assert.has_error(function() sts("2019-12-12", "none") end)
  end)

  it("raises on misuse", function()
    assert.has_error(function() azure.sign({ url = "http://h/" }, { key = KEY, now = 1 }) end)
    assert.has_error(function() azure.sign({ url = "http://h/" }, { account = "a", now = 1 }) end)
    assert.has_error(function() azure.sign({ url = "http://h/" }, { account = "a", key = KEY }) end)
  end)
end)

describe("azure service SAS", function()
  local EXPIRY = 1435740577 -- 2015-07-01T08:49:37Z
  it("builds the 2018-11-09 layout (sr and snapshot lines) for a blob", function()
    local q, sts = azure.sas({ account = "myaccount", key = KEY, container = "pictures", blob = "profile.jpg",
      expiry = EXPIRY, version = "2019-12-12" })
    assert.are.equal("r\n\n2015-07-01T08:49:37Z\n/blob/myaccount/pictures/profile.jpg\n\n\n\n2019-12-12\nb\n\n\n\n\n\n", sts)
    -- signature by Python's hmac over the same string
    assert.are.equal("sv=2019-12-12&sr=b&sp=r&se=2015-07-01T08%3A49%3A37Z&sig=" ..
      http.url_escape("TKbMEpRoBzmYQWE4f8fKEv0yKVhb1oE4CgNxtoYUkbY="), q)
  end)

  it("builds the 2015-04-05 and 2020-12-06 layouts", function()
    local _, old = azure.sas({ account = "a", key = KEY, container = "c", blob = "b/x", expiry = EXPIRY,
      start = EXPIRY - 60, version = "2015-04-05", protocol = "https" })
    assert.are.equal("r\n2015-07-01T08:48:37Z\n2015-07-01T08:49:37Z\n/blob/a/c/b/x\n\n\nhttps\n2015-04-05\n\n\n\n\n", old)
    local q, new = azure.sas({ account = "a", key = KEY, container = "c", blob = "b", expiry = EXPIRY,
      version = "2020-12-06" })
    assert.are.equal("r\n\n2015-07-01T08:49:37Z\n/blob/a/c/b\n\n\n\n2020-12-06\nb\n\n\n\n\n\n\n", new)
    assert.truthy(q:find("^sv=2020%-12%-06&sr=b&sp=r&se="))
    local _, cont = azure.sas({ account = "a", key = KEY, container = "c", expiry = EXPIRY, permissions = "rl" })
    assert.are.equal("rl\n\n2015-07-01T08:49:37Z\n/blob/a/c\n\n\n\n" .. azure.VERSION .. "\nc\n\n\n\n\n\n", cont)
  end)

  it("refuses versions before 2015-04-05 and misuse", function()
    assert.has_error(function()
      azure.sas({ account = "a", key = KEY, container = "c", blob = "b", expiry = 1, version = "2012-02-12" })
    end)
    assert.has_error(function() azure.sas({ account = "a", key = KEY, blob = "b", expiry = 1 }) end)
    assert.has_error(function() azure.sas({ account = "a", key = KEY, container = "c" }) end)
  end)
end)

describe("azure signatures against azurite", function()
  local az = azurite.start()
  teardown(function() az.server:stop() end)
  local container = "signspec"
  local base = az.endpoint .. "/" .. container

  -- Sends a request signed at the real time (the emulator checks nothing
  -- about the date, but real Azure allows 15 minutes of skew).
  local function send(req, opts)
    opts = opts or {}
    req.headers = req.headers or {}
    if opts.sign ~= false then
      azure.sign(req, { account = az.account, key = opts.key or KEY, now = os.time(),
        version = opts.version, zero_length = opts.zero_length })
    end
    if opts.tamper then opts.tamper(req.headers) end
    local r, msg, code, eresp = http.request({ url = req.url, method = req.method, headers = req.headers,
      body = req.body, retries = 0, timeout = 30 })
    if r then return r.status, r end
    if eresp then return eresp.status, eresp, msg end
    error(("%s %s: %s (%s)"):format(req.method, req.url, msg, code))
  end

  it("accepts a signed zero-length PUT (create container) and signed blob calls", function()
    assert.are.equal(201, (send({ method = "PUT", url = base .. "?restype=container",
      headers = { ["Content-Length"] = "0" } })))
    assert.are.equal(201, (send({ method = "PUT", url = base .. "/dir/blob.txt", body = "hello",
      headers = { ["x-ms-blob-type"] = "BlockBlob", ["Content-Type"] = "text/plain" } })))
    local st, r = send({ method = "GET", url = base .. "/dir/blob.txt" })
    assert.are.equal(200, st)
    assert.are.equal("hello", r.body)
    st, r = send({ method = "GET", url = base .. "?restype=container&comp=list&prefix=dir%2F&maxresults=5" })
    assert.are.equal(200, st)
    assert.truthy(r.body:find("<Name>dir/blob.txt</Name>", 1, true))
  end)

  it("refuses a request with one header changed after signing", function()
    local st, r = send({ method = "GET", url = base .. "/dir/blob.txt", headers = { ["x-ms-client-request-id"] = "one" } },
      { tamper = function(h) h["x-ms-client-request-id"] = "two" end })
    assert.are.equal(403, st)
    assert.are.equal("AuthorizationFailure", r.headers["x-ms-error-code"])
    st = send({ method = "PUT", url = base .. "/dir/blob.txt", body = "hello",
      headers = { ["x-ms-blob-type"] = "BlockBlob", ["Content-Type"] = "text/plain" } },
      { tamper = function(h) h["Content-Type"] = "text/html" end })
    assert.are.equal(403, st)
  end)

  it("refuses a wrong key and an anonymous request", function()
    local wrong = crypto.random_bytes(64)
    assert.are.equal(403, (send({ method = "GET", url = base .. "/dir/blob.txt" }, { key = wrong })))
    assert.are.equal(403, (send({ method = "GET", url = base .. "/dir/blob.txt" }, { sign = false })))
    assert.are.equal(403, (send({ method = "GET", url = base .. "?restype=container&comp=list" }, { sign = false })))
  end)

  it("shows azurite's zero Content-Length rule: empty for every version", function()
    -- 2012-02-12 is gwacl's version: real Azure signs "0" there, azurite "".
    assert.are.equal(403, (send({ method = "PUT", url = az.endpoint .. "/zerolen1?restype=container",
      headers = { ["Content-Length"] = "0" } }, { version = "2012-02-12" })))
    assert.are.equal(201, (send({ method = "PUT", url = az.endpoint .. "/zerolen1?restype=container",
      headers = { ["Content-Length"] = "0" } }, { version = "2012-02-12", zero_length = "empty" })))
    assert.are.equal(202, (send({ method = "DELETE", url = az.endpoint .. "/zerolen1?restype=container" })))
  end)

  it("accepts a SAS in each layout, and refuses a tampered or expired one", function()
    for _, v in ipairs({ "2015-04-05", "2018-11-09", "2019-12-12", "2020-12-06", "2025-11-05" }) do
      local q = azure.sas({ account = az.account, key = KEY, container = container, blob = "dir/blob.txt",
        expiry = os.time() + 600, version = v })
      local r, msg = http.get(base .. "/dir/blob.txt?" .. q, { retries = 0 })
      assert.is_table(r, v .. ": " .. tostring(msg))
      assert.are.equal("hello", r.body)
    end
    local q = azure.sas({ account = az.account, key = KEY, container = container, blob = "dir/blob.txt",
      expiry = os.time() + 600 })
    local r, _, _, eresp = http.get(base .. "/dir/blob.txt?" .. q:gsub("sp=r", "sp=rw"), { retries = 0 })
    assert.is_nil(r)
    assert.are.equal(403, eresp.status)
    -- the SAS names the blob: another blob with it is refused
    r, _, _, eresp = http.get(base .. "/dir/other.txt?" .. q, { retries = 0 })
    assert.is_nil(r)
    assert.are.equal(403, eresp.status)
    local expired = azure.sas({ account = az.account, key = KEY, container = container, blob = "dir/blob.txt",
      expiry = os.time() - 3600 })
    r, _, _, eresp = http.get(base .. "/dir/blob.txt?" .. expired, { retries = 0 })
    assert.is_nil(r)
    assert.are.equal(403, eresp.status)
    local wrong = azure.sas({ account = az.account, key = crypto.random_bytes(64), container = container,
      blob = "dir/blob.txt", expiry = os.time() + 600 })
    r, _, _, eresp = http.get(base .. "/dir/blob.txt?" .. wrong, { retries = 0 })
    assert.is_nil(r)
    assert.are.equal(403, eresp.status)
  end)
end)
