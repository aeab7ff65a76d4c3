-- juju.testing.server: starts a test server (an emulator, a fake cloud API, a
-- checking proxy) as a daemon on a loopback address, waits until it accepts
-- connections, and stops it. One place for what every cloud spec needs:
--
--   local server = require("juju.testing.server")
--   local s = assert(server.start {
--     name = "s3rver",                        -- for messages and file names
--     argv = { "node", S3RVER, "--address", "{host}", "--port", "{port}", "--directory", "{dir}/data" },
--     host = "127.0.0.5",                     -- default 127.0.0.1
--   })
--   -- s.host, s.port, s.url ("http://host:port"), s.dir (private, 0700), s.log, s.pid
--   ...
--   s:stop()                                   -- also at busted's end: see M.stop_all
--
-- "{host}", "{port}" and "{dir}" in argv and env values are replaced. A port
-- of 0 (the default) picks a free one. A missing program is an error naming
-- it and scripts/install-deps.sh: tests that cannot find their server fail.
local fs = require("juju.fs")
local proc = require("juju.proc")
local sys = require("juju.sys")

local M = {}

local PYTHON = "/usr/bin/python3"
local running = {}

-- A port nobody listens on at host (bound and released by Python).
function M.free_port(host)
  local r = assert(sys.run({ PYTHON, "-c",
    "import socket,sys\ns=socket.socket()\ns.bind((sys.argv[1],0))\nprint(s.getsockname()[1])", host },
    { timeout = 10 }))
  local port = r.code == 0 and tonumber(r.stdout:match("%d+"))
  if not port then error("cannot pick a free port on " .. host .. ": " .. tostring(r.stderr), 2) end
  return port
end

local function subst(s, vars)
  return (s:gsub("{(%a+)}", function(k) return vars[k] end))
end

local function find_program(p)
  if p:find("/", 1, true) then return fs.exists(p) and p or nil end
  for d in (os.getenv("PATH") or "/usr/bin:/bin"):gmatch("[^:]+") do
    if fs.exists(d .. "/" .. p) then return d .. "/" .. p end
  end
end

local Server = {}
Server.__index = Server

function Server:stop()
  if self.stopped then return true end
  self.stopped = true
  running[self] = nil
  local ok, msg = proc.stop(self.pid_file, { timeout = 5 })
  fs.remove_tree(self.dir)
  return ok, msg
end

-- The server's log so far (for assertion messages).
function Server:log_text()
  return fs.exists(self.log) and fs.read_file(self.log) or ""
end

-- opts: name, argv, host, port, env ({NAME=value}, added to PATH/HOME), cwd,
-- ready_timeout (s, default 30), ready (function(s) -> bool: an extra readiness
-- check after the port accepts, e.g. an HTTP probe).
function M.start(opts)
  assert(type(opts.argv) == "table" and opts.argv[1], "server.start: argv required")
  local name = opts.name or opts.argv[1]:match("[^/]*$")
  local program = find_program(opts.argv[1])
  if not program then
    return nil, string.format("%s: program %q not found; run scripts/install-deps.sh", name, opts.argv[1]), "ENOENT"
  end
  local host = opts.host or "127.0.0.1"
  local port = (opts.port and opts.port ~= 0) and opts.port or M.free_port(host)
  local dir = assert(fs.mkdtemp((os.getenv("TMPDIR") or "/tmp") .. "/juju-server-" .. name:gsub("[^%w]", "_") .. "-"))
  local vars = { host = host, port = tostring(port), dir = dir }
  local argv = {}
  for i, a in ipairs(opts.argv) do argv[i] = subst(a, vars) end
  argv[1] = program
  local env = { PATH = os.getenv("PATH") or "/usr/bin:/bin", HOME = dir }
  for k, v in pairs(opts.env or {}) do env[k] = subst(v, vars) end
  local s = setmetatable({
    name = name, host = host, port = port, dir = dir,
    url = string.format("http://%s:%d", host, port),
    log = dir .. "/server.log", pid_file = dir .. "/server.pid",
  }, Server)
  local pid, msg = proc.start_daemon(argv, {
    log_file = s.log, pid_file = s.pid_file, env = env, cwd = opts.cwd or dir })
  if not pid then
    fs.remove_tree(dir)
    return nil, name .. ": " .. msg, "ENOENT"
  end
  s.pid = pid
  running[s] = true
  local timeout = opts.ready_timeout or 30
  local deadline = sys.monotonic() + timeout
  local why
  repeat
    if not proc.alive(pid) then why = "exited before accepting connections" break end
    if proc.wait_port(host, port, 0.2) and (not opts.ready or opts.ready(s)) then break end
    if sys.monotonic() > deadline then
      why = string.format("did not accept connections on %s:%d within %gs", host, port, timeout)
      break
    end
    sys.sleep(0.05)
  until false
  if why then
    local log = s:log_text()
    s:stop()
    return nil, string.format("%s %s; its log:\n%s", name, why, log), "TIMEOUT"
  end
  return s
end

-- Builds the Go program in src_dir (a main package; tests/servers/NAME) in
-- GOPATH mode against Debian's Go libraries (/usr/share/gocode), as
-- ../shared/spec/toolchain.md describes, into the build tree:
-- $JUJU_TEST_BUILD_DIR/gofakes/NAME (cache beside it, nothing outside).
-- opts.cgo: build with cgo (a fake that links a C library, e.g. go-dqlite's
-- libdqlite). Returns the binary's path, or nil, message, code (ENOENT: no go).
function M.go_build(name, src_dir, opts)
  local cgo = opts and opts.cgo
  local build = os.getenv("JUJU_TEST_BUILD_DIR") or error("go_build: JUJU_TEST_BUILD_DIR is not set", 2)
  if not find_program("go") then
    return nil, name .. ": program \"go\" not found; run scripts/install-deps.sh", "ENOENT"
  end
  local out_dir = build .. "/gofakes"
  assert(fs.mkdir_p(out_dir .. "/cache"))
  assert(fs.mkdir_p(out_dir .. "/gopath"))
  local bin = out_dir .. "/" .. name
  local r, msg = sys.run({ find_program("go"), "build", "-o", bin, "." }, {
    cwd = src_dir, timeout = 300,
    env = { PATH = os.getenv("PATH") or "/usr/bin:/bin", HOME = out_dir, GO111MODULE = "off",
            GOPATH = out_dir .. "/gopath:/usr/share/gocode", GOCACHE = out_dir .. "/cache",
            CGO_ENABLED = cgo and "1" or "0",
            -- Debian's go-dqlite asks for -Wl,-z,now, which go refuses by default
            CGO_LDFLAGS_ALLOW = cgo and "-Wl,-z,now" or nil },
  })
  if not r then return nil, name .. ": go build: " .. tostring(msg), "EIO" end
  if r.code ~= 0 then
    return nil, string.format("%s: go build in %s failed:\n%s%s", name, src_dir, r.stdout, r.stderr), "EIO"
  end
  return bin
end

-- Stops every server this process started (specs call it in teardown; it
-- also runs when the Lua state closes).
function M.stop_all()
  local list = {}
  for s in pairs(running) do list[#list + 1] = s end
  for _, s in ipairs(list) do s:stop() end
end

M._guard = setmetatable({}, { __gc = function() M.stop_all() end })

return M
