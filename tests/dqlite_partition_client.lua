-- tests/dqlite_partition_client.lua: a client of the Dqlite state store for
-- the partition spec, run inside one of its network namespaces (so it sees
-- only what that namespace reaches). Prints one JSON line: the outcome.
--   juju lua tests/dqlite_partition_client.lua PEMDIR SERVERS OP ARGS...
-- PEMDIR: ca.pem, cert.pem, key.pem (a certificate of the test CA);
-- SERVERS: comma-separated addresses the client may use. OPs:
--   write COLL PREFIX N FAILOVER_MS  the store (juju.state.dqlite) inserts
--       PREFIX001..PREFIXN, stopping at the first failure:
--       {ok, acked = {ids}, code, message, ms, leader}
--   read COLL                        the store's find: {ok, ids, code, message}
--   leader                           connect_leader: {ok, leader, members, code, message}
--   elect OLD T0 TIMEOUT COLL ID     waits for a leader other than OLD among
--       SERVERS, then for a store insert of ID to succeed; times are ms since
--       T0 (the caller's sys.monotonic(), the same clock system-wide):
--       {ok, leader, elected_ms, written_ms, code, message}
--   raw COLL ID TIMEOUT_MS           the wire client alone, on SERVERS' one
--       node, not looking for the leader: open + INSERT:
--       {ok, stage, code, message, ms}
--   knows                            that one node's idea of the leader:
--       {ok, leader, code, message}
local dqlite = require("juju.dqlite")
local fs = require("juju.fs")
local json = require("juju.json")
local state = require("juju.state")
local sys = require("juju.sys")

local pems, servers_arg, op = ...
local args = table.pack(select(4, ...))
assert(op, "usage: dqlite_partition_client.lua PEMDIR SERVERS OP ARGS...")

local function read(name) return assert(fs.read_file(pems .. "/" .. name)) end
local tls = { ca = read("ca.pem"), cert = read("cert.pem"), key = read("key.pem"), server_name = "juju-dqlite" }
local servers = {}
for a in servers_arg:gmatch("[^,]+") do servers[#servers + 1] = a end

local function emit(t)
  io.stdout:write(assert(json.encode(t)), "\n")
  io.stdout:flush()
end

local function ms_since(t0) return math.floor((sys.monotonic() - t0) * 1000 + 0.5) end

local function open_store(failover_ms)
  return state.open("dqlite", { servers = servers, tls = tls, database = "juju", timeout = 5000,
    failover_timeout = failover_ms })
end

local ops = {}

function ops.write(coll, prefix, n, failover_ms)
  local t0 = sys.monotonic()
  local acked = json.array({})
  local st, err, code = open_store(math.tointeger(tonumber(failover_ms)))
  if not st then
    return { ok = false, stage = "open", acked = acked, code = code, message = err, ms = ms_since(t0) }
  end
  for i = 1, math.tointeger(tonumber(n)) do
    local id = string.format("%s%03d", prefix, i)
    local ok, ierr, icode = st:insert(coll, { _id = id, n = i })
    if not ok then
      st:close()
      return { ok = false, stage = "insert", acked = acked, code = icode, message = ierr, ms = ms_since(t0) }
    end
    acked[#acked + 1] = id
  end
  local _, leader = st:servers()
  st:close()
  return { ok = true, acked = acked, leader = leader, ms = ms_since(t0) }
end

function ops.read(coll)
  local st, err, code = open_store(10000)
  if not st then return { ok = false, code = code, message = err } end
  local docs, ferr, fcode = st:find(coll)
  st:close()
  if not docs then return { ok = false, code = fcode, message = ferr } end
  local ids = json.array({})
  for i, d in ipairs(docs) do ids[i] = d._id end
  return { ok = true, ids = ids }
end

function ops.leader()
  local c, at, code = dqlite.connect_leader(servers, { tls = tls, timeout = 2000 })
  if not c then return { ok = false, code = code, message = at } end
  local members, merr, mcode = c:cluster()
  c:close()
  if not members then return { ok = false, code = mcode, message = merr } end
  return { ok = true, leader = at, members = members }
end

function ops.elect(old, t0, timeout, coll, id)
  t0 = tonumber(t0)
  local deadline = sys.monotonic() + tonumber(timeout)
  local leader, elected_ms, last, last_code
  repeat
    local c, at, code = dqlite.connect_leader(servers, { tls = tls, timeout = 1000 })
    if c then
      c:close()
      if at ~= old then leader, elected_ms = at, ms_since(t0) end
      last, last_code = "the leader is still " .. tostring(at), "OLD"
    else
      last, last_code = at, code
    end
    if not leader then sys.sleep(0.05) end
  until leader or sys.monotonic() > deadline
  if not leader then return { ok = false, stage = "elect", code = last_code, message = last } end
  local left = math.max(1000, math.floor((deadline - sys.monotonic()) * 1000))
  local st, err, code = open_store(left)
  if not st then return { ok = false, stage = "open", leader = leader, elected_ms = elected_ms, code = code, message = err } end
  local ok, ierr, icode = st:insert(coll, { _id = id })
  local _, at = st:servers()
  st:close()
  if not ok then
    return { ok = false, stage = "insert", leader = leader, elected_ms = elected_ms, code = icode, message = ierr }
  end
  return { ok = true, leader = at, elected_ms = elected_ms, written_ms = ms_since(t0) }
end

function ops.raw(coll, id, timeout_ms)
  local t0 = sys.monotonic()
  local c, err, code = dqlite.connect(servers[1], { tls = tls, timeout = math.tointeger(tonumber(timeout_ms)) })
  if not c then return { ok = false, stage = "connect", code = code, message = err, ms = ms_since(t0) } end
  local ok, oerr, ocode = c:open("juju")
  if not ok then
    c:close()
    return { ok = false, stage = "open", code = ocode, message = oerr, ms = ms_since(t0) }
  end
  local n, xerr, xcode = c:exec("INSERT INTO docs(coll, id, doc) VALUES (?, ?, ?)",
    { coll, id, assert(json.encode({ _id = id })) })
  c:close()
  if not n then return { ok = false, stage = "exec", code = xcode, message = xerr, ms = ms_since(t0) } end
  return { ok = true, ms = ms_since(t0) }
end

function ops.knows()
  local c, err, code = dqlite.connect(servers[1], { tls = tls, timeout = 2000 })
  if not c then return { ok = false, code = code, message = err } end
  local l, lerr, lcode = c:leader()
  c:close()
  if l == nil then return { ok = false, code = lcode, message = lerr } end
  return { ok = true, leader = l and l.address or false }
end

local fn = ops[op]
if not fn then error("unknown op " .. tostring(op)) end
emit(fn(table.unpack(args, 1, args.n)))
