-- http_spec.lua: the juju.http binding against tests/integration/httpd.py
-- (a real HTTP server on loopback), with retries timed on a virtual clock.
local http = require("juju.http")
local json = require("juju.json")
local has_sys, sys = pcall(require, "juju.sys")
local has_crypto, crypto = pcall(require, "juju.crypto")

local source_dir = os.getenv("JUJU_TEST_SOURCE_DIR") or "."
local httpd = source_dir .. "/tests/integration/httpd.py"

local function sh_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function nap(seconds)
  if has_sys and sys.sleep then sys.sleep(seconds) else os.execute("sleep " .. seconds) end
end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function write(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

local function make_tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute("mkdir -m 700 " .. sh_quote(d)))
  return d
end

local function entries(dir)
  local p = assert(io.popen("ls -A " .. sh_quote(dir)))
  local names = {}
  for line in p:lines() do names[#names + 1] = line end
  p:close()
  table.sort(names)
  return names
end

-- The server's /file/<n> content: byte i is i % 251.
local block = {}
for i = 0, 250 do block[#block + 1] = string.char(i) end
block = table.concat(block)
local function pattern(n)
  return block:rep(n // 251 + 1):sub(1, n)
end

local function same_content(path, expected)
  if has_crypto and crypto.sha256_file and crypto.sha256 then
    local digest, size = crypto.sha256_file(path)
    return digest == crypto.sha256(expected) and size == #expected
  end
  return read(path) == expected
end

-- Starts httpd.py (extra args appended); returns a stop function and the port.
local function start_server(extra)
  local port_file = os.tmpname()
  os.remove(port_file)
  local argv = { "/usr/bin/python3", httpd, "--port-file", port_file }
  for _, a in ipairs(extra or {}) do argv[#argv + 1] = a end
  local stop
  if has_sys and sys.spawn then
    local proc = assert(sys.spawn(argv, { stdout = "null", stderr = "null" }))
    stop = function()
      proc:kill()
      proc:wait(10)
      proc:close()
    end
  else
    local quoted = {}
    for i, a in ipairs(argv) do quoted[i] = sh_quote(a) end
    local pidfile = port_file .. ".pid"
    os.execute("(" .. table.concat(quoted, " ") .. " >/dev/null 2>&1 & echo $! > "
      .. sh_quote(pidfile) .. ")")
    local pid = read(pidfile):match("%d+")
    os.remove(pidfile)
    stop = function() os.execute("kill " .. pid) end
  end
  for _ = 1, 400 do
    local text = read(port_file)
    local port = text and tonumber(text:match("^(%d+)\n"))
    if port then
      os.remove(port_file)
      return stop, port
    end
    nap(0.025)
  end
  stop()
  error("httpd.py did not start")
end

-- A fake sleep on a virtual clock: records the delays, never waits.
local function virtual_clock()
  local clock = { delays = {}, now = 0 }
  function clock.sleep(seconds)
    clock.delays[#clock.delays + 1] = seconds
    clock.now = clock.now + seconds
  end
  return clock
end

-- One field of httpd.py's flat JSON answers (string or integer value).
local function json_field(body, name)
  local key = '"' .. name:gsub("%p", "%%%0") .. '": '
  return body:match(key .. '"([^"]*)"') or body:match(key .. "(%d+)")
end

describe("juju.http", function()
  local stop_server, port, base, tmp

  setup(function()
    stop_server, port = start_server()
    base = "http://127.0.0.1:" .. port
    tmp = make_tmpdir()
  end)

  teardown(function()
    if stop_server then stop_server() end
    if tmp then os.execute("rm -rf " .. sh_quote(tmp)) end
  end)

  after_each(function()
    collectgarbage()
    collectgarbage()
  end)

  describe("request", function()
    it("returns status, headers, body, size, url, attempts and elapsed", function()
      local r = assert(http.request { url = base .. "/file/70000" })
      assert.are.equal(200, r.status)
      assert.are.equal("OK", r.reason)
      assert.are.equal("70000", r.headers["content-length"])
      assert.are.equal("application/octet-stream", r.headers["content-type"])
      assert.is_true(r.body == pattern(70000))
      assert.are.equal(70000, r.size)
      assert.are.equal(base .. "/file/70000", r.url)
      assert.are.equal(1, r.attempts)
      assert.is_true(r.elapsed > 0 and r.elapsed < 10)
    end)

    it("joins repeated response headers and lower-cases names", function()
      local r = assert(http.get(base .. "/echo"))
      assert.are.equal("a, b", r.headers["x-dup"])
      assert.is_nil(r.headers["X-Dup"])
    end)

    it("maps 404 and 410 to ENOENT and hands back the error response", function()
      local r, msg, code, resp = http.get(base .. "/status/404")
      assert.is_nil(r)
      assert.are.equal("GET " .. base .. "/status/404: 404 Not Found", msg)
      assert.are.equal("ENOENT", code)
      assert.are.equal(404, resp.status)
      assert.are.equal("status 404\n", resp.body)
      local _, msg410, code410 = http.get(base .. "/status/410")
      assert.are.equal("ENOENT", code410)
      assert.matches(": 410 Gone$", msg410)
    end)

    it("never retries other 4xx", function()
      local clock = virtual_clock()
      local r, msg, code, resp = http.get(base .. "/status/403",
        { retries = 5, sleep = clock.sleep })
      assert.is_nil(r)
      assert.are.equal("HTTP", code)
      assert.are.equal("GET " .. base .. "/status/403: 403 Forbidden", msg)
      assert.are.equal(1, resp.attempts)
      assert.are.same({}, clock.delays)
    end)

    it("retries 5xx with doubling delays on a virtual clock", function()
      local clock = virtual_clock()
      local r = assert(http.get(base .. "/flaky/3?t=double",
        { retries = 3, sleep = clock.sleep }))
      assert.are.equal(200, r.status)
      assert.are.equal("ok after 3\n", r.body)
      assert.are.equal(4, r.attempts)
      assert.are.same({ 1, 2, 4 }, clock.delays)
    end)

    it("starts from retry_delay and caps the delay at 30 seconds", function()
      local clock = virtual_clock()
      local r = assert(http.get(base .. "/flaky/4?t=cap",
        { retries = 4, retry_delay = 10, sleep = clock.sleep }))
      assert.are.equal(5, r.attempts)
      assert.are.same({ 10, 20, 30, 30 }, clock.delays)
    end)

    it("retries 429", function()
      local clock = virtual_clock()
      local r, msg, code, resp = http.get(base .. "/status/429",
        { retries = 2, sleep = clock.sleep })
      assert.is_nil(r)
      assert.are.equal("HTTP", code)
      assert.matches("429 Too Many Requests %(after 3 attempts%)$", msg)
      assert.are.equal(3, resp.attempts)
      assert.are.same({ 1, 2 }, clock.delays)
    end)

    it("reports exhausted retries as HTTP naming the attempts", function()
      local clock = virtual_clock()
      local r, msg, code = http.get(base .. "/flaky/9?t=exhaust",
        { retries = 2, sleep = clock.sleep })
      assert.is_nil(r)
      assert.are.equal("HTTP", code)
      assert.are.equal("GET " .. base .. "/flaky/9?t=exhaust: 503 Service Unavailable"
        .. " (after 3 attempts)", msg)
    end)

    it("retries a refused connection and reports curl's message as HTTP", function()
      local clock = virtual_clock()
      local r, msg, code = http.get("http://127.0.0.1:1/x", { retries = 1, sleep = clock.sleep })
      assert.is_nil(r)
      assert.are.equal("HTTP", code)
      assert.matches("^GET http://127%.0%.0%.1:1/x: .*[Cc]onnect", msg)
      assert.are.same({ 1 }, clock.delays)
    end)

    it("gives up on a stalled body after idle_timeout (HTTP_TIMEOUT)", function()
      local r, msg, code = http.get(base .. "/slow", { idle_timeout = 1 })
      assert.is_nil(r)
      assert.are.equal("HTTP_TIMEOUT", code)
      assert.matches("^GET " .. base:gsub("%p", "%%%0") .. "/slow: ", msg)
    end)

    it("retries an idle timeout like any timeout", function()
      local clock = virtual_clock()
      local _, _, code = http.get(base .. "/slow", { idle_timeout = 1, retries = 1,
        sleep = clock.sleep })
      assert.are.equal("HTTP_TIMEOUT", code)
      assert.are.same({ 1 }, clock.delays)
    end)

    it("gives up connecting after connect_timeout (HTTP_TIMEOUT)", function()
      local stop_hole, hole = start_server { "--blackhole" }
      local r, msg, code = http.get("http://127.0.0.1:" .. hole .. "/", { connect_timeout = 0.5 })
      stop_hole()
      assert.is_nil(r)
      assert.are.equal("HTTP_TIMEOUT", code)
      assert.matches("[Cc]onnect", msg)
    end)

    it("really sleeps between retries when no sleep function is given", function()
      local r = assert(http.get(base .. "/flaky/2?t=realsleep", { retries = 2, retry_delay = 0.1 }))
      assert.are.equal(3, r.attempts)
      assert.is_true(r.elapsed >= 0.3)
    end)

    it("enforces the total timeout", function()
      local r, _, code = http.get(base .. "/slow", { timeout = 0.5 })
      assert.is_nil(r)
      assert.are.equal("HTTP_TIMEOUT", code)
    end)

    it("streams to_file through a temp file renamed on success", function()
      local path = tmp .. "/tools.tgz"
      local r = assert(http.get(base .. "/file/2500000", { to_file = path }))
      assert.is_nil(r.body)
      assert.are.equal(2500000, r.size)
      assert.is_true(same_content(path, pattern(2500000)))
      assert.are.same({ "tools.tgz" }, entries(tmp))
      os.remove(path)
    end)

    it("leaves nothing behind when a to_file download fails", function()
      local path = tmp .. "/missing.tgz"
      local r, _, code = http.get(base .. "/status/404", { to_file = path })
      assert.is_nil(r)
      assert.are.equal("ENOENT", code)
      assert.are.same({}, entries(tmp))
      local clock = virtual_clock()
      local _, _, code2 = http.get(base .. "/slow", { to_file = path, idle_timeout = 1,
        retries = 1, sleep = clock.sleep })
      assert.are.equal("HTTP_TIMEOUT", code2)
      assert.are.same({}, entries(tmp))
    end)

    it("keeps an existing file when the download replacing it fails", function()
      local path = tmp .. "/keep"
      write(path, "old")
      assert.is_nil(http.get(base .. "/status/500", { to_file = path }))
      assert.are.equal("old", read(path))
      assert.are.same({ "keep" }, entries(tmp))
      os.remove(path)
    end)

    it("hands the body to on_data in chunks", function()
      local chunks = {}
      local r = assert(http.get(base .. "/file/600000", {
        on_data = function(chunk) chunks[#chunks + 1] = chunk end,
      }))
      assert.is_nil(r.body)
      assert.are.equal(600000, r.size)
      assert.is_true(#chunks > 1)
      assert.is_true(table.concat(chunks) == pattern(600000))
    end)

    it("stops with INTERRUPTED when on_data returns false", function()
      local calls = 0
      local r, msg, code = http.get(base .. "/file/600000", {
        retries = 3,
        on_data = function() calls = calls + 1; return false end,
      })
      assert.is_nil(r)
      assert.are.equal("INTERRUPTED", code)
      assert.matches("aborted", msg)
      assert.are.equal(1, calls)
    end)

    it("re-raises an error thrown inside on_data, value intact", function()
      local marker = { reason = "stop here" }
      local ok, e = pcall(http.get, base .. "/file/600000", {
        on_data = function() error(marker) end,
      })
      assert.is_false(ok)
      assert.are.equal(marker, e)
      local ok2, e2 = pcall(http.get, base .. "/file/10", {
        on_data = function() error("boom") end,
      })
      assert.is_false(ok2)
      assert.matches("boom", e2)
    end)

    it("re-raises an error thrown by the sleep function", function()
      local ok, e = pcall(http.get, base .. "/flaky/5?t=sleeperr", {
        retries = 3, sleep = function() error("no sleeping") end,
      })
      assert.is_false(ok)
      assert.matches("no sleeping", e)
    end)

    it("refuses bodies larger than max_size with ERANGE", function()
      assert(http.get(base .. "/file/1000", { max_size = 1000 }))
      local r, msg, code = http.get(base .. "/file/1001", { max_size = 1000 })
      assert.is_nil(r)
      assert.are.equal("ERANGE", code)
      assert.matches("max_size", msg)
      local _, _, code2 = http.get(base .. "/file/300000?chunked=1",
        { max_size = 1000, to_file = tmp .. "/big" })
      assert.are.equal("ERANGE", code2)
      assert.are.same({}, entries(tmp))
      assert(http.get(base .. "/file/1000?chunked=1", { max_size = 1000 }))
    end)

    it("reads file:// URLs and reports a missing file as ENOENT", function()
      local path = tmp .. "/index.json"
      write(path, '{"index":{}}')
      local r = assert(http.get("file://" .. path))
      assert.are.equal(200, r.status)
      assert.are.equal('{"index":{}}', r.body)
      local copy = tmp .. "/copy.json"
      assert(http.get("file://" .. path, { to_file = copy }))
      assert.are.equal('{"index":{}}', read(copy))
      os.remove(copy)
      os.remove(path)
      local r2, msg, code = http.get("file://" .. path)
      assert.is_nil(r2)
      assert.are.equal("ENOENT", code)
      assert.are.equal("GET file://" .. path .. ": No such file or directory", msg)
    end)

    it("sends HEAD and returns headers without a body", function()
      local r = assert(http.head(base .. "/file/777"))
      assert.are.equal(200, r.status)
      assert.are.equal("777", r.headers["content-length"])
      assert.are.equal("", r.body)
      assert.are.equal(0, r.size)
      local r2 = assert(http.request { url = base .. "/echo", method = "HEAD" })
      assert.are.equal(200, r2.status)
    end)

    it("uploads body_file with PUT, streamed", function()
      local path = tmp .. "/upload.bin"
      local data = pattern(1500000)
      write(path, data)
      local r = assert(http.request { url = base .. "/store/tools", method = "PUT",
        body_file = path })
      assert.are.equal(201, r.status)
      assert.are.equal("1500000", json_field(r.body, "size"))
      if has_crypto and crypto.sha256 then
        assert.are.equal(crypto.sha256(data), json_field(r.body, "sha256"))
      end
      local back = assert(http.get(base .. "/store/tools"))
      assert.is_true(back.body == data)
      os.remove(path)
      local _, msg, code = http.request { url = base .. "/store/x", method = "PUT",
        body_file = path }
      assert.are.equal("ENOENT", code)
      assert.matches("cannot open", msg)
    end)

    it("sends method, headers and body; false removes a default header", function()
      local r = assert(http.request {
        url = base .. "/echo", method = "POST", body = "a=1&b=\0",
        headers = { ["X-Amz-Date"] = "20150830T123600Z", ["Content-Type"] = "text/plain",
          Accept = false, ["X-Empty"] = "", ["X-Num"] = 42 },
        user_agent = "spec-agent",
      })
      local b = r.body
      assert.are.equal("POST", json_field(b, "method"))
      assert.are.equal("20150830T123600Z", json_field(b, "x-amz-date"))
      assert.are.equal("text/plain", json_field(b, "content-type"))
      assert.are.equal("", json_field(b, "x-empty"))
      assert.are.equal("42", json_field(b, "x-num"))
      assert.are.equal("spec-agent", json_field(b, "user-agent"))
      assert.are.equal("7", json_field(b, "body_size"))
      assert.is_nil(b:find('"accept"', 1, true))
      assert.is_nil(b:find('"expect"', 1, true))
      local d = assert(http.request { url = base .. "/echo", method = "DELETE" })
      assert.are.equal("DELETE", json_field(d.body, "method"))
      local g = assert(http.get(base .. "/echo"))
      assert.are.equal("juju-engine", json_field(g.body, "user-agent"))
    end)

    it("deletes stored objects", function()
      assert(http.request { url = base .. "/store/gone", method = "PUT", body = "x" })
      local r = assert(http.request { url = base .. "/store/gone", method = "DELETE" })
      assert.are.equal(204, r.status)
      local _, _, code = http.request { url = base .. "/store/gone", method = "DELETE" }
      assert.are.equal("ENOENT", code)
    end)

    it("follows redirects unless told not to, and never into file://", function()
      local r = assert(http.get(base .. "/redirect"))
      assert.are.equal(200, r.status)
      assert.are.equal(pattern(10), r.body)
      assert.are.equal(base .. "/file/10", r.url)
      local r2 = assert(http.get(base .. "/redirect", { follow_redirects = false }))
      assert.are.equal(302, r2.status)
      assert.are.equal("/file/10", r2.headers.location)
      local r3, _, code = http.get(base .. "/redirect-file")
      assert.is_nil(r3)
      assert.is_string(code)
    end)

    it("keeps credentials and header values out of messages", function()
      local url = "http://admin:hunter2@127.0.0.1:" .. port
        .. "/status/401?X-Amz-Signature=deadbeef&Action=Describe"
      local r, msg, code = http.get(url, { headers = { Authorization = "Bearer tok3n" } })
      assert.is_nil(r)
      assert.are.equal("HTTP", code)
      assert.are.equal("GET " .. base
        .. "/status/401?X-Amz-Signature=REDACTED&Action=Describe: 401 Unauthorized", msg)
      for _, secret in ipairs { "hunter2", "admin", "deadbeef", "tok3n" } do
        assert.is_nil(msg:find(secret, 1, true))
      end
    end)

    it("uses an explicit proxy and honours no_proxy", function()
      local r = assert(http.get("http://127.0.0.1:1/echo", { proxy = { http = base } }))
      assert.are.equal("http://127.0.0.1:1/echo", json_field(r.body, "path"))
      local r2 = assert(http.get(base .. "/echo",
        { proxy = { http = "http://127.0.0.1:1", no_proxy = "127.0.0.1" } }))
      assert.are.equal("/echo", json_field(r2.body, "path"))
      local _, _, code = http.get(base .. "/echo", { proxy = { http = "http://127.0.0.1:1" } })
      assert.are.equal("HTTP", code)
    end)

    if has_sys and sys.setenv and sys.getenv then
      it("falls back to the environment's proxy; proxy = false ignores it", function()
        local saved = sys.getenv("http_proxy")
        assert(sys.setenv("http_proxy", base))
        local ok, r = pcall(http.get, "http://127.0.0.1:1/echo")
        local ok2, r2, _, code2 = pcall(http.get, "http://127.0.0.1:1/echo", { proxy = false })
        sys.setenv("http_proxy", saved)
        assert.is_true(ok and ok2)
        assert.are.equal("http://127.0.0.1:1/echo", json_field(r.body, "path"))
        assert.is_nil(r2)
        assert.are.equal("HTTP", code2)
      end)
    end

    it("rejects a URL it cannot use with EINVAL", function()
      local r, msg, code = http.get("ftp://example.com/x")
      assert.is_nil(r)
      assert.are.equal("EINVAL", code)
      assert.matches("unsupported URL scheme", msg)
      local _, _, code2 = http.get("http://exa mple/")
      assert.are.equal("EINVAL", code2)
    end)
  end)

  describe("misuse", function()
    it("raises on bad options", function()
      assert.has_error(function() http.request() end)
      assert.has_error(function() http.request {} end, "bad option 'url' (string expected, got nil)")
      assert.has_error(function() http.request { url = base, bogus = 1 } end,
        "unknown request option 'bogus'")
      assert.has_error(function() http.request { url = base, method = "get" } end)
      assert.has_error(function() http.request { url = base, timeout = -1 } end)
      assert.has_error(function() http.request { url = base, retries = 1.5 } end)
      assert.has_error(function() http.request { url = base, max_size = "1" } end)
      assert.has_error(function() http.request { url = base, insecure = 1 } end)
      assert.has_error(function() http.request { url = base, on_data = "f" } end)
      assert.has_error(function() http.request { url = base, proxy = "http://p" } end)
      assert.has_error(function() http.request { url = base, proxy = { ftp = "x" } } end)
      assert.has_error(function() http.request { url = base, body = "a", body_file = "b" } end)
      assert.has_error(function()
        http.request { url = base, to_file = "a", on_data = function() end }
      end)
      assert.has_error(function() http.request { url = base, method = "HEAD", body = "x" } end)
      assert.has_error(function() http.get(base, { headers = { ["X-A"] = "a\r\nX-B: b" } }) end)
      assert.has_error(function() http.get(base, { headers = { ["Bad Name"] = "v" } }) end)
      assert.has_error(function() http.get(base, { headers = { ["X-A"] = true } }) end)
      assert.has_error(function() http.get(base, { headers = "X-A: b" }) end)
      assert.has_error(function() http.get(base, 5) end)
      assert.has_error(function() http.get(nil) end)
    end)
  end)

  describe("client", function()
    it("reuses one connection across requests", function()
      local c <close> = assert(http.client())
      local p1 = json_field(assert(c:get(base .. "/echo")).body, "client_port")
      local p2 = json_field(assert(c:request { url = base .. "/echo" }).body, "client_port")
      assert.is_not_nil(p1)
      assert.are.equal(p1, p2)
    end)

    it("applies its defaults, which a request can override", function()
      local clock = virtual_clock()
      local c = assert(http.client {
        headers = { ["X-Env"] = "one", ["X-Keep"] = "k" },
        user_agent = "client-agent", retries = 2, sleep = clock.sleep,
      })
      local r = assert(c:get(base .. "/echo", { headers = { ["x-env"] = "two" } }))
      assert.are.equal("two", json_field(r.body, "x-env"))
      assert.are.equal("k", json_field(r.body, "x-keep"))
      assert.are.equal("client-agent", json_field(r.body, "user-agent"))
      local r2 = assert(c:get(base .. "/flaky/2?t=client"))
      assert.are.equal(3, r2.attempts)
      assert.are.same({ 1, 2 }, clock.delays)
      local r3 = assert(c:head(base .. "/file/5", { user_agent = "other" }))
      assert.are.equal("5", r3.headers["content-length"])
      c:close()
    end)

    it("survives a Lua error raised inside on_data", function()
      local c = assert(http.client())
      local ok, e = pcall(c.get, c, base .. "/file/600000",
        { on_data = function() error("from on_data") end })
      assert.is_false(ok)
      assert.matches("from on_data", e)
      local r = assert(c:get(base .. "/file/100"))
      assert.is_true(r.body == pattern(100))
      local r2 = assert(c:get(base .. "/file/100", { to_file = tmp .. "/after" }))
      assert.are.equal(100, r2.size)
      os.remove(tmp .. "/after")
      c:close()
    end)

    it("refuses to be re-entered or closed from its own callback", function()
      local c = assert(http.client())
      local ok, e = pcall(c.get, c, base .. "/file/10",
        { on_data = function() c:get(base .. "/file/1") end })
      assert.is_false(ok)
      assert.matches("busy", e)
      local ok2, e2 = pcall(c.get, c, base .. "/file/10",
        { on_data = function() c:close() end })
      assert.is_false(ok2)
      assert.matches("running", e2)
      assert(c:get(base .. "/file/10"))
      c:close()
    end)

    it("closes idempotently and rejects use after close", function()
      local c = assert(http.client())
      assert.is_true(c:close())
      assert.is_true(c:close())
      assert.has_error(function() c:get(base .. "/file/1") end)
      assert.matches("closed", tostring(c))
      do
        local scoped <close> = assert(http.client())
        assert(scoped:get(base .. "/file/1"))
      end
    end)

    it("validates its defaults up front", function()
      assert.has_error(function() http.client { url = base } end,
        "unknown client option 'url'")
      assert.has_error(function() http.client { retries = "many" } end)
      assert.has_error(function() http.client { headers = { ["X"] = {} } } end)
      assert.has_error(function() http.client("x") end)
    end)
  end)

  describe("URL helpers", function()
    it("escapes all but the unreserved set, and back", function()
      assert.are.equal("a%20b%2Fc~d-e_f.g%25%C3%A9%00", http.url_escape("a b/c~d-e_f.g%é\0"))
      assert.are.equal("a b/c~d-e_f.g%é\0", http.url_unescape("a%20b%2Fc~d-e_f.g%25%C3%A9%00"))
      assert.are.equal("%zz+%4", http.url_unescape("%zz+%4"))
      local all = {}
      for i = 0, 255 do all[#all + 1] = string.char(i) end
      all = table.concat(all)
      assert.are.equal(all, http.url_unescape(http.url_escape(all)))
      assert.are.equal("", http.url_escape(""))
    end)

    it("parses URLs into their parts", function()
      local u = assert(http.parse_url("https://us%40r:p%3Ass@Host.example:8443/a%20b?x=1&y=2#f"))
      assert.are.same({ scheme = "https", host = "Host.example", port = 8443, path = "/a%20b",
        query = "x=1&y=2", fragment = "f", user = "us@r", password = "p:ss" }, u)
      local d = assert(http.parse_url("http://example.com"))
      assert.are.same({ scheme = "http", host = "example.com", port = 80, path = "/" }, d)
      local f = assert(http.parse_url("file:///var/lib/juju/tools"))
      assert.are.equal("/var/lib/juju/tools", f.path)
      assert.is_nil(f.port)
      local r, msg, code = http.parse_url("http://[::1")
      assert.is_nil(r)
      assert.are.equal("EINVAL", code)
      assert.matches("^invalid URL", msg)
    end)

    it("makes URLs safe for messages", function()
      assert.are.equal("https://h.example/a?sig=REDACTED&ok=1",
        http.safe_url("https://u:p@h.example/a?sig=x&ok=1"))
      assert.are.equal("http://plain/x?a=b", http.safe_url("http://plain/x?a=b"))
      assert.are.equal("<invalid URL>", http.safe_url("no url here"))
    end)
  end)

  describe("https", function()
    local stop_tls, tls_base, cert
    setup(function()
      local dir = make_tmpdir()
      cert = dir .. "/cert.pem"
      local key = dir .. "/key.pem"
      local ok = os.execute("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1"
        .. " -nodes -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1"
        .. " -keyout " .. sh_quote(key) .. " -out " .. sh_quote(cert) .. " >/dev/null 2>&1")
      assert(ok, "openssl could not make a test certificate")
      local p
      stop_tls, p = start_server { "--tls", cert, key }
      tls_base = "https://127.0.0.1:" .. p
    end)

    teardown(function()
      if stop_tls then stop_tls() end
      if cert then os.execute("rm -rf " .. sh_quote(cert:match("^(.*)/"))) end
    end)

    it("verifies the server certificate by default", function()
      local r, msg, code = http.get(tls_base .. "/file/10")
      assert.is_nil(r)
      assert.are.equal("HTTP", code)
      assert.matches("^GET " .. tls_base:gsub("%p", "%%%0") .. "/file/10: ", msg)
    end)

    it("trusts ca_file", function()
      local r = assert(http.get(tls_base .. "/file/10", { ca_file = cert }))
      assert.are.equal(pattern(10), r.body)
    end)

    it("skips verification when insecure", function()
      local r = assert(http.get(tls_base .. "/file/10", { insecure = true }))
      assert.are.equal(200, r.status)
    end)
  end)
end)

-- The request deadline, body digests, multipart uploads and TLS client
-- certificates, against the scripted server (tests/servers/scripted).
describe("juju.http against the scripted server", function()
  local scripted = require("servers.scripted.control")
  local fs = require("juju.fs")
  local s, dir

  setup(function()
    s = scripted.start { host = "127.0.0.21" }
    dir = assert(fs.mkdtemp((os.getenv("TMPDIR") or "/tmp") .. "/juju-http-spec-"))
  end)

  teardown(function()
    if s then s:stop() end
    if dir then fs.remove_tree(dir) end
  end)

  before_each(function() s:reset() end)

  after_each(function()
    collectgarbage()
    collectgarbage()
  end)

  local function big(n)
    local t = {}
    for i = 1, n // 16 + 1 do t[i] = string.format("%015d\n", i) end
    return table.concat(t):sub(1, n)
  end

  describe("deadline", function()
    it("gives HTTP_TIMEOUT naming the URL when the server stops answering", function()
      s:script("/hang", { { hang = true } })
      local r, msg, code = http.request { url = s.url .. "/hang", deadline = 1, retries = 3, retry_delay = 0.01 }
      assert.is_nil(r)
      assert.are.equal("HTTP_TIMEOUT", code)
      assert.matches("GET " .. (s.url .. "/hang"):gsub("%p", "%%%0") .. ": .*deadline of 1 seconds", msg)
    end)

    it("counts retry waits, stopping before a wait that would overrun it", function()
      s:script("/busy", { { status = 503, body = "busy" } })
      local clock = virtual_clock()
      local r, msg, code = http.request { url = s.url .. "/busy", retries = 10, retry_delay = 1,
        sleep = clock.sleep, deadline = 5 }
      assert.is_nil(r)
      assert.are.equal("HTTP_TIMEOUT", code)
      assert.are.same({ 1, 2 }, clock.delays)
      assert.matches("deadline of 5 seconds; the last attempt: .*503", msg)
      assert.are.equal(3, #s:requests())
    end)

    it("is always finite: a deadline of 0 is refused, a client default applies", function()
      assert.has_error(function() http.request { url = s.url .. "/x", deadline = 0 } end,
        "bad option 'deadline' (positive number of seconds expected)")
      s:script("/hang2", { { hang = true } })
      local c <close> = assert(http.client { deadline = 0.5 })
      local r, _, code = c:get(s.url .. "/hang2")
      assert.is_nil(r)
      assert.are.equal("HTTP_TIMEOUT", code)
    end)
  end)

  describe("body_sha256", function()
    it("is the digest of the body sent, from memory and from a file", function()
      local data = big(200000)
      local r = assert(http.request { url = s.url .. "/up", method = "PUT", body = data })
      assert.are.equal(crypto.sha256(data), r.body_sha256)
      local path = dir .. "/body"
      write(path, data .. "more")
      r = assert(http.request { url = s.url .. "/up", method = "PUT", body_file = path })
      assert.are.equal(crypto.sha256(data .. "more"), r.body_sha256)
      local seen = s:requests()
      assert.are.equal(seen[1].body_sha256, crypto.sha256(data))
      assert.are.equal(seen[2].body_sha256, r.body_sha256)
    end)

    it("covers only the last attempt's body, sent in full again after a retry", function()
      s:script("/flaky-up", { { status = 503 }, { status = 201 } })
      local path = dir .. "/retry-body"
      write(path, big(100000))
      local clock = virtual_clock()
      local r = assert(http.request { url = s.url .. "/flaky-up", method = "PUT", body_file = path,
        retries = 2, sleep = clock.sleep })
      assert.are.equal(2, r.attempts)
      assert.are.equal(crypto.sha256(big(100000)), r.body_sha256)
      local seen = s:requests()
      assert.are.equal(2, #seen)
      assert.are.equal(100000, seen[2].body_size)
    end)

    it("is absent without a body", function()
      local r = assert(http.get(s.url .. "/nobody"))
      assert.is_nil(r.body_sha256)
    end)

    it("makes a body file that changes during the request an error (EIO)", function()
      s:script("/changing", { { status = 503 }, { status = 201 } })
      local path = dir .. "/changing"
      write(path, big(5000))
      local r, msg, code = http.request { url = s.url .. "/changing", method = "PUT", body_file = path,
        retries = 2, sleep = function() write(path, big(7000)) end }
      assert.is_nil(r)
      assert.are.equal("EIO", code)
      assert.matches(path:gsub("%p", "%%%0") .. " changed while it was being sent", msg)
      assert.are.equal(1, #s:requests())
    end)
  end)

  describe("unfollowed redirects", function()
    it("never write a redirect's body to to_file or on_data", function()
      s:script("/moved", { { status = 302, headers = { Location = "/elsewhere" }, body = "redirect page" } })
      local path = dir .. "/kept"
      write(path, "old content")
      local r = assert(http.request { url = s.url .. "/moved", to_file = path, follow_redirects = false })
      assert.are.equal(302, r.status)
      assert.are.equal("/elsewhere", r.headers.location)
      assert.are.equal("old content", read(path))
      for _, e in ipairs(entries(dir)) do assert.is_nil(e:find("^kept%.part"), e) end
      local chunks = 0
      r = assert(http.request { url = s.url .. "/moved", follow_redirects = false,
        on_data = function() chunks = chunks + 1 end })
      assert.are.equal(302, r.status)
      assert.are.equal(0, chunks)
      r = assert(http.request { url = s.url .. "/moved", follow_redirects = false })
      assert.are.equal("redirect page", r.body)
      os.remove(path)
    end)
  end)

  describe("multipart", function()
    it("sends data and streamed file parts a MIME parser reads back", function()
      local path = dir .. "/upload.tgz"
      local content = big(300000)
      write(path, content)
      local r = assert(http.request { url = s.url .. "/_multipart", multipart = {
        { name = "op", data = "add" },
        { name = "filename", data = "tools/juju-1.25.tgz" },
        { name = "file", file = path, filename = "juju-1.25.tgz", content_type = "application/x-gzip" },
        { name = "raw", file = path },
      } })
      local parts = assert(json.decode(r.body)).parts
      assert.are.equal(4, #parts)
      assert.are.equal("op", parts[1].name)
      assert.are.equal("add", parts[1].text)
      assert.are.equal("tools/juju-1.25.tgz", parts[2].text)
      assert.are.equal("file", parts[3].name)
      assert.are.equal("juju-1.25.tgz", parts[3].filename)
      assert.are.equal("application/x-gzip", parts[3].content_type)
      assert.are.equal(300000, parts[3].size)
      assert.are.equal(crypto.sha256(content), parts[3].sha256)
      assert.are.equal("upload.tgz", parts[4].filename)
      assert.are.equal("application/octet-stream", parts[4].content_type)
      assert.are.equal(crypto.sha256(content), parts[4].sha256)
      assert.are.equal("POST", s:requests()[1].method)
    end)

    it("fails on a 500 in the middle of the upload, and a retry sends it whole", function()
      local path = dir .. "/mid.bin"
      local content = big(1000000)
      write(path, content)
      local parts = { { name = "file", file = path } }
      s:script("/_multipart", { { status = 500, fail_after = 65536, body = "boom" } })
      local r, msg, code = http.request { url = s.url .. "/_multipart", multipart = parts }
      assert.is_nil(r)
      assert.are.equal("HTTP", code)
      assert.matches("^POST " .. s.url:gsub("%p", "%%%0") .. "/_multipart: ", msg)
      s:reset()
      s:script("/_multipart", { { status = 500, fail_after = 65536, body = "boom" }, { builtin = true } })
      local clock = virtual_clock()
      r = assert(http.request { url = s.url .. "/_multipart", multipart = parts, retries = 1, sleep = clock.sleep })
      assert.are.equal(2, r.attempts)
      local got = assert(json.decode(r.body)).parts
      assert.are.equal(crypto.sha256(content), got[1].sha256)
    end)

    it("names a missing part file, and refuses malformed parts", function()
      local r, msg, code = http.request { url = s.url .. "/_multipart",
        multipart = { { name = "f", file = dir .. "/missing" } } }
      assert.is_nil(r)
      assert.are.equal("ENOENT", code)
      assert.matches("multipart file .*/missing", msg)
      assert.has_error(function()
        http.request { url = s.url .. "/x", multipart = { { name = "a" } } }
      end, "bad option 'multipart' (part 1 needs exactly one of data or file)")
      assert.has_error(function()
        http.request { url = s.url .. "/x", multipart = { { data = "a" } } }
      end, "bad option 'multipart' (part 1 needs a name)")
      assert.has_error(function()
        http.request { url = s.url .. "/x", body = "x", multipart = { { name = "a", data = "b" } } }
      end, "option 'multipart' excludes 'body' and 'body_file'")
      assert.has_error(function()
        http.request { url = s.url .. "/x", multipart = { { name = "a", data = "b", bogus = 1 } } }
      end)
      assert.are.equal(0, #s:requests())
    end)
  end)

  describe("TLS client certificates", function()
    local tls, ca, client_cert, client_key, combined, other_cert, other_key

    local function openssl(args)
      local ok = os.execute("cd " .. sh_quote(dir) .. " && openssl " .. args .. " >/dev/null 2>&1")
      assert(ok, "openssl " .. args .. " failed")
    end

    setup(function()
      local ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
      openssl("req -x509 " .. ec .. " -days 2 -subj /CN=test-ca -keyout ca.key -out ca.pem")
      openssl("req " .. ec .. " -subj /CN=127.0.0.22 -keyout srv.key -out srv.csr")
      write(dir .. "/srv.ext", "subjectAltName=IP:127.0.0.22\n")
      openssl("x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2"
        .. " -extfile srv.ext -out srv.pem")
      openssl("req " .. ec .. " -subj /CN=azure-management -keyout cli.key -out cli.csr")
      openssl("x509 -req -in cli.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -out cli.pem")
      openssl("req -x509 " .. ec .. " -days 2 -subj /CN=stranger -keyout other.key -out other.pem")
      ca = dir .. "/ca.pem"
      client_cert, client_key = read(dir .. "/cli.pem"), read(dir .. "/cli.key")
      other_cert, other_key = read(dir .. "/other.pem"), read(dir .. "/other.key")
      combined = client_cert .. client_key
      tls = scripted.start { host = "127.0.0.22", name = "scripted-tls",
        tls = { dir .. "/srv.pem", dir .. "/srv.key", ca }, client_pem = combined }
    end)

    teardown(function()
      if tls then tls:stop() end
    end)

    it("presents a certificate and key given in memory", function()
      local r = assert(http.request { url = tls.url .. "/_whoami", ca_file = ca,
        client_cert = client_cert, client_key = client_key })
      assert.are.equal("azure-management", json.decode(r.body).client_cn)
    end)

    it("reads the key from a combined PEM when client_key is absent", function()
      local c <close> = assert(http.client { ca_file = ca, client_cert = combined })
      local r = assert(c:get(tls.url .. "/_whoami"))
      assert.are.equal("azure-management", json.decode(r.body).client_cn)
    end)

    it("fails without a certificate, or with one the server does not trust, never quoting the key", function()
      local r, msg, code = http.request { url = tls.url .. "/_whoami", ca_file = ca }
      assert.is_nil(r)
      assert.are.equal("HTTP", code)
      assert.matches("^GET https://127%.0%.0%.22:%d+/_whoami: ", msg)
      r, msg, code = http.request { url = tls.url .. "/_whoami", ca_file = ca,
        client_cert = other_cert, client_key = other_key }
      assert.is_nil(r)
      assert.are.equal("HTTP", code)
      assert.is_nil(msg:find("PRIVATE KEY", 1, true))
      r, msg, code = http.request { url = tls.url .. "/_whoami", ca_file = ca,
        client_cert = "not a certificate", client_key = client_key }
      assert.is_nil(r)
      assert.are.equal("HTTP", code)
      assert.is_nil(msg:find(client_key:sub(40, 80), 1, true))
      assert.has_error(function() http.request { url = tls.url, client_key = client_key } end,
        "option 'client_key' needs 'client_cert'")
    end)
  end)
end)
