-- tests/fake_mongod.lua: what the specs read back from
-- tests/integration/fake-mongod's request record (MOCKUPDB_RECORD, one JSON
-- line per request), shared by the specs that bootstrap with the mongodb
-- store on a host.
local json = require("juju.json")
local luassert = require("luassert")

local M = {}

--- The summaries of the recorded requests, one a line, in their order.
function M.summaries(record)
  local commands = {}
  for line in io.lines(record) do
    local r = assert(json.decode(line))
    commands[#commands + 1] = r.summary or ""
  end
  return table.concat(commands, "\n")
end

--- Asserts that the record holds the bootstrap's state server setup: the
--- replica set initiated, the admin and machine-0 users created.
function M.assert_bootstrapped(record)
  local text = M.summaries(record)
  luassert.matches("replSetInitiate", text)
  luassert.matches("createUser admin", text)
  luassert.matches("createUser machine%-0", text)
end

-- mongod as machine 0 sees it: /usr/lib/juju/bin/mongod in the host runs
-- tests/integration/fake-mongod (mockupdb: python3-mockupdb is on this
-- machine, not in the host's image) in this process's mount namespace,
-- with the TLS key copied to a directory both sides see (the host
-- server's own directory, bind-mounted at the same path inside).
function M.host_wrapper(shared, record)
  local sys = require("juju.sys")
  local h = require("helpers")
  return table.concat({
    "#!/bin/sh",
    "# installed by tests/fake_mongod.lua: fake-mongod outside the host's mount namespace",
    "set -eu",
    "shared=" .. shared,
    "pem_next=",
    "for a do",
    "  shift",
    "  if [ -n \"$pem_next\" ]; then cp \"$a\" \"$shared/server.pem\"; a=\"$shared/server.pem\"; pem_next=; fi",
    "  case \"$a\" in --tlsCertificateKeyFile|--sslPEMKeyFile) pem_next=1 ;; esac",
    "  set -- \"$@\" \"$a\"",
    "done",
    "[ \"${1:-}\" = --version ] || echo $$ > \"$shared/mongod.pid\"",
    "exec nsenter --mount=/proc/" .. sys.getpid() .. "/ns/mnt -- env MOCKUPDB_RECORD=" .. record
      .. " " .. h.source_dir .. "/tests/integration/fake-mongod \"$@\"",
  }, "\n") .. "\n"
end

--- Runs `juju bootstrap --upload-tools` (env) while the cloud keeps the new
--- instance from being reported ready (opts.hold() before, opts.release()
--- once the host has its mongod): waits for the new test host record in
--- opts.state_dir, installs host_wrapper as its /usr/lib/juju/bin/mongod,
--- releases, and waits for juju. Returns {code=, stderr=, record= (the
--- fake mongod's request record), host= (the host record)} and a cleanup
--- function (kills the fake mongod, which lives outside the host).
function M.bootstrap_on_host(env, opts)
  local sys = require("juju.sys")
  local fs = require("juju.fs")
  local h = require("helpers")
  local before = {}
  for _, f in ipairs(fs.list(opts.state_dir) or {}) do before[f] = true end
  opts.hold()
  local out_dir = h.tmpdir("juju-fake-mongod-")
  local record = out_dir .. "/record.jsonl"
  local p = assert(sys.spawn({ h.juju_exe, "bootstrap", "--upload-tools" },
    { env = env, stdin = "null", stdout = out_dir .. "/stdout", stderr = out_dir .. "/stderr" }))
  local pid_file
  local function cleanup()
    opts.release()
    p:close()
    local pid = pid_file and tonumber((fs.read_file(pid_file) or ""):match("%d+"))
    if pid and require("juju.proc").alive(pid) then sys.run({ "kill", tostring(pid) }, {}) end
  end
  local rec
  local deadline = sys.monotonic() + 180
  while not rec and sys.monotonic() < deadline do
    for _, f in ipairs(fs.list(opts.state_dir) or {}) do
      if f:match("%.json$") and not before[f] then
        rec = json.decode(fs.read_file(opts.state_dir .. "/" .. f) or "")
      end
    end
    if not rec then
      luassert.is_nil(p:wait(0), "juju exited before its instance host started:\n"
        .. (fs.read_file(out_dir .. "/stderr") or ""))
      sys.sleep(0.05)
    end
  end
  luassert.is_table(rec, "no instance host within 180 s")
  local shared = rec.root .. "/mongod"
  assert(fs.mkdir_p(shared, tonumber("700", 8)))
  pid_file = shared .. "/mongod.pid"
  local inst = sys.run({ "nsenter", "--target", tostring(rec.sshd_pid), "--mount", "--root", "--wd", "--",
    "/bin/sh", "-c", "mkdir -p /usr/lib/juju/bin && cat > /usr/lib/juju/bin/mongod && chmod 755 /usr/lib/juju/bin/mongod" },
    { stdin = M.host_wrapper(shared, record), timeout = 60 })
  luassert.are.equal(0, inst.code, inst.stderr)
  opts.release()
  local code = p:wait(300)
  return { code = code, stderr = fs.read_file(out_dir .. "/stderr") or "", record = record, host = rec }, cleanup
end

return M
