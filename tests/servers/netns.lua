-- servers.netns: a private network for the partition specs. Everything is
-- built inside one network (and private mount) namespace of its own, the
-- "parent", so the host's interfaces, routes, /run/netns and firewall are
-- never touched: in the parent a bridge with SUBNET.254/24, and n child
-- namespaces, each joined to the bridge by a veth pair and holding SUBNET.i
-- on its eth0. Cutting child i sets its bridge-side veth down (the child
-- sees NO-CARRIER: its packets go nowhere, nobody reaches it); healing sets
-- it up again.
--
--   local netns = require("servers.netns")
--   netns.check_tools()                       -- raises naming the package of a missing tool
--   local net = netns.new { n = 3, dir = tmp } -- subnet "10.231.0" by default
--   net.hosts[i]                              -- "10.231.0.i"
--   net:spawn(i, argv, opts)                  -- sys.spawn inside child i (nil: the parent)
--   net:run(i, argv, opts)                    -- sys.run likewise
--   net:cut(i), net:heal(i)
--   net:close()                               -- idempotent; kills what net:spawn started too
--
-- Namespaces are entered with nsenter on /proc/PID/ns/* of holder processes
-- (no `ip netns`, which needs a writable /run/netns). Every process started
-- here carries PR_SET_PDEATHSIG (setpriv --pdeathsig KILL), so a test
-- process that dies without close() takes the namespaces and nodes with it.
-- nsenter --mount resets the working directory to /: pass absolute paths.
local fs = require("juju.fs")
local sys = require("juju.sys")

local M = {}

-- tool -> Debian package.
local TOOLS = {
  { "ip", "iproute2" }, { "unshare", "util-linux" }, { "nsenter", "util-linux" }, { "setpriv", "util-linux" },
}

local function program(name)
  for _, dir in ipairs { "/usr/sbin", "/usr/bin", "/sbin", "/bin" } do
    if fs.exists(dir .. "/" .. name) then return dir .. "/" .. name end
  end
  return nil
end

--- Raises unless root and ip, unshare, nsenter and setpriv are installed
--- (a missing tool fails the spec: the message names the package).
function M.check_tools()
  if sys.geteuid() ~= 0 then error("servers.netns: network namespaces need root", 2) end
  for _, t in ipairs(TOOLS) do
    if not program(t[1]) then
      error(string.format("servers.netns: %s not found: install the Debian package %s", t[1], t[2]), 2)
    end
  end
end

-- Run by `sh -c` in the parent namespace: $1 the state dir, $2 the number
-- of children, $3 the subnet's first three octets, $4 setpriv, $5 ip.
-- Writes "$1/children" ("i pid" lines) and then "$1/ready" (holding the
-- parent's pid); waits for its sleeping children, one per child namespace.
local PARENT_SCRIPT = [[
set -eu
dir=$1 n=$2 subnet=$3 setpriv=$4 ip=$5
"$ip" link set lo up
"$ip" link add jjbr0 type bridge
"$ip" addr add "$subnet.254/24" dev jjbr0
"$ip" link set jjbr0 up
self=$(readlink /proc/$$/ns/net)
: > "$dir/children"
i=1
while [ "$i" -le "$n" ]; do
  "$setpriv" --pdeathsig KILL unshare --net sleep 86400 &
  pid=$!
  tries=0
  while [ "$(readlink "/proc/$pid/ns/net")" = "$self" ]; do
    tries=$((tries + 1))
    [ "$tries" -lt 500 ] || { echo "child namespace $i did not appear" >&2; exit 1; }
    sleep 0.01
  done
  "$ip" link add "jjvh$i" type veth peer name "jjvn$i" netns "$pid"
  "$ip" link set "jjvh$i" master jjbr0
  "$ip" link set "jjvh$i" up
  nsenter "--net=/proc/$pid/ns/net" sh -c "set -e
    '$ip' link set lo up
    '$ip' link set jjvn$i name eth0
    '$ip' addr add $subnet.$i/24 dev eth0
    '$ip' link set eth0 up"
  echo "$i $pid" >> "$dir/children"
  i=$((i + 1))
done
echo "$$" > "$dir/ready.tmp"
mv "$dir/ready.tmp" "$dir/ready"
wait
]]

local Net = {}
Net.__index = Net

-- Whether pid is a live process (not a zombie) running cmd (a substring of
-- its command line).
local function running(pid, cmd)
  local stat = fs.read_file("/proc/" .. pid .. "/stat")
  if not stat or stat:match("^%d+ %b() ([ZX])") then return false end
  return not cmd or (fs.read_file("/proc/" .. pid .. "/cmdline") or ""):find(cmd, 1, true) ~= nil
end

local function read_pid(text) return text and math.tointeger(tonumber(text:match("%d+"))) end

--- Builds the topology: opts.n children (default 3), opts.dir (required: an
--- existing directory for the holder's files), opts.subnet (default
--- "10.231.0"). Raises when it cannot.
function M.new(opts)
  M.check_tools()
  local n, dir = opts.n or 3, assert(opts.dir, "servers.netns: opts.dir required")
  local subnet = opts.subnet or "10.231.0"
  local state = dir .. "/netns"
  assert(fs.mkdir_p(state, tonumber("700", 8)))
  local log = state .. "/parent.log"
  local proc = assert(sys.spawn({ program("setpriv"), "--pdeathsig", "KILL",
    program("unshare"), "--net", "--mount", "--propagation", "private", "--fork", "--kill-child=KILL",
    "/bin/sh", "-c", PARENT_SCRIPT, "sh", state, tostring(n), subnet, program("setpriv"), program("ip") },
    { stdin = "null", stdout = log, stderr = log }))
  local self = setmetatable({ proc = proc, dir = state, n = n, subnet = subnet, hosts = {}, children = {},
    spawned = {} }, Net)
  local deadline = sys.monotonic() + 20
  while not fs.exists(state .. "/ready") do
    if proc:wait(0) or sys.monotonic() > deadline then
      local why = fs.read_file(log) or ""
      self:close()
      error("servers.netns: the namespaces were not built: " .. why, 2)
    end
    sys.sleep(0.02)
  end
  self.parent = read_pid(fs.read_file(state .. "/ready"))
  for line in assert(fs.read_file(state .. "/children")):gmatch("[^\n]+") do
    local i, pid = line:match("^(%d+) (%d+)$")
    self.children[math.tointeger(tonumber(i))] = math.tointeger(tonumber(pid))
  end
  for i = 1, n do
    assert(self.children[i], "servers.netns: child " .. i .. " missing")
    self.hosts[i] = subnet .. "." .. i
  end
  self.bridge = subnet .. ".254"
  return self
end

-- The nsenter prefix for child i (nil: the parent).
function Net:enter(i)
  local net = i and self.children[i] or self.parent
  return { program("setpriv"), "--pdeathsig", "KILL", program("nsenter"),
    "--net=/proc/" .. net .. "/ns/net", "--mount=/proc/" .. self.parent .. "/ns/mnt", "--" }
end

local function joined(prefix, argv)
  local out = {}
  for _, a in ipairs(prefix) do out[#out + 1] = a end
  for _, a in ipairs(argv) do out[#out + 1] = a end
  return out
end

--- sys.spawn of argv inside child i (nil: the parent namespace). The
--- process is killed by close() if still running.
function Net:spawn(i, argv, opts)
  local p, err, code = sys.spawn(joined(self:enter(i), argv), opts)
  if p then self.spawned[#self.spawned + 1] = p end
  return p, err, code
end

--- sys.run of argv inside child i (nil: the parent namespace).
function Net:run(i, argv, opts)
  return sys.run(joined(self:enter(i), argv), opts or { timeout = 30 })
end

local function link(self, i, state)
  local r = assert(self:run(nil, { program("ip"), "link", "set", "jjvh" .. i, state }))
  if r.code ~= 0 then error("servers.netns: ip link set jjvh" .. i .. " " .. state .. ": " .. r.stderr, 3) end
end

--- Cuts child i off the bridge (its veth link down).
function Net:cut(i) link(self, i, "down") end

--- Joins child i to the bridge again.
function Net:heal(i) link(self, i, "up") end

--- Kills every process spawned here and the namespaces' holders; idempotent.
function Net:close()
  for _, p in ipairs(self.spawned) do
    if not p:wait(0) then
      p:kill("CONT")
      p:kill("KILL")
      p:wait(5)
    end
    p:close()
  end
  self.spawned = {}
  if self.proc then
    -- unshare --kill-child takes the parent shell down, whose sleeping
    -- children die with it (their PR_SET_PDEATHSIG).
    self.proc:kill("KILL")
    self.proc:wait(5)
    self.proc:close()
    self.proc = nil
    local deadline = sys.monotonic() + 5
    for _, pid in pairs(self.children) do
      while running(pid, "sleep") and sys.monotonic() < deadline do sys.sleep(0.02) end
      if running(pid, "sleep") then sys.kill(pid, "KILL") end
    end
  end
  return true
end

--- Whether any of the namespaces' holder processes is still alive.
function Net:alive()
  if self.parent and running(self.parent, "jjbr0") then return true end
  for _, pid in pairs(self.children) do if running(pid, "sleep") then return true end end
  return false
end

return M
