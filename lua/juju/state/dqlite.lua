-- juju.state.dqlite: the state store in a Dqlite cluster (SQLite replicated
-- with Raft), with the interface of juju.state and the table of
-- juju.state.sqlite: docs(coll, id, doc), doc the document as JSON.
--
--   state.open("dqlite", { servers = {"10.0.0.1:17666", ...}, tls = {ca =, cert =, key =},
--     database = "juju", timeout = 5000, failover_timeout = 20000 })
--
-- Every statement goes to the leader (juju.dqlite.connect_leader over the
-- servers). When the connection is lost or the node stops leading (codes
-- NOTLEADER, EIO, TIMEOUT, CONNECT, PROTO), the store looks for the new
-- leader for up to failover_timeout ms and then: a read is run again; a
-- write whose outcome is unknown is run again only when running it twice is
-- the same as once (upsert, update, remove, ensure); an insert is re-checked
-- (the document is there as sent: it was ours, true; there but different:
-- EEXIST; absent: inserted again). Codes: EEXIST, ENOENT, TIMEOUT (a
-- request or a lock wait ran out), NOLEADER (no leader within
-- failover_timeout), DQLITE (anything else).
local dqlite = require("juju.lazy")("juju.dqlite")
local json = require("juju.json")
local sys = require("juju.sys")
local state = require("juju.state")

local M = {}

local Store = {}
Store.__index = Store

local SCHEMA = "CREATE TABLE IF NOT EXISTS docs(coll TEXT, id TEXT, doc TEXT NOT NULL, PRIMARY KEY (coll, id))"
local SELECT_ONE = "SELECT doc FROM docs WHERE coll = ? AND id = ?"
local INSERT = "INSERT INTO docs(coll, id, doc) VALUES (?, ?, ?)"
local UPDATE = "UPDATE docs SET doc = ? WHERE coll = ? AND id = ?"

-- Failures that say the connection, not the statement, went wrong.
local LOST = { NOTLEADER = true, EIO = true, TIMEOUT = true, CONNECT = true, PROTO = true }

local function fail(what, coll, id, msg, code)
  if code == "BUSY" then code = "TIMEOUT" end
  if code ~= "TIMEOUT" and code ~= "EEXIST" and code ~= "ENOENT" and code ~= "NOLEADER" then code = "DQLITE" end
  local where = id and string.format("%s/%s", coll, id) or coll
  return nil, string.format("state (dqlite): cannot %s %s: %s", what, where, tostring(msg)), code
end

local function not_found(coll, id)
  return nil, string.format("state (dqlite): %s/%s not found", coll, id), "ENOENT"
end

local function encode(value)
  local text, err = json.encode(value)
  if not text then error("state (dqlite): cannot store document: " .. tostring(err), 3) end
  return text
end

local function decode(text, coll, id)
  local doc, err = json.decode(text, coll .. "/" .. id)
  if doc == nil then return fail("read", coll, id, err, "DQLITE") end
  return doc
end

local function check_open(self)
  if self.closed then error("state (dqlite): store is closed", 3) end
end

local function drop(self)
  local c = rawget(self, "conn")
  self.conn, self.leader = nil, nil
  if c then c:close() end
end

-- Connects to the leader and opens the database (creating the table),
-- trying for up to failover_timeout ms.
local function connect(self)
  local deadline = sys.monotonic() + self.failover_timeout / 1000
  local msg, code
  repeat
    local c, at, ccode = dqlite.connect_leader(self._servers, { tls = self.tls, timeout = self.timeout })
    if c then
      local ok, oerr, ocode = c:open(self.database)
      if ok then
        ok, oerr, ocode = c:exec(SCHEMA)
        -- (several stores opening at once: another one's CREATE holds it)
        local busy_until = sys.monotonic() + self.busy_timeout / 1000
        while not ok and ocode == "BUSY" and sys.monotonic() < busy_until do
          sys.sleep(0.002 + math.random() * 0.02)
          ok, oerr, ocode = c:exec(SCHEMA)
        end
      end
      if ok then
        self.conn, self.leader = c, at
        return c
      end
      c:close()
      at, ccode = oerr, ocode
    end
    msg, code = at, ccode
    if code ~= "NOLEADER" and not LOST[code] then break end
    sys.sleep(0.1)
  until sys.monotonic() >= deadline
  if LOST[code] then code = "NOLEADER" end
  return nil, msg, code
end

-- Runs op(conn) -> result... | nil, msg, code. When the connection is lost,
-- finds the leader again and, for kind "read" and "idempotent", runs op
-- again; for "insert", runs recheck(conn) (which decides or runs op again).
local function run(self, kind, op, recheck)
  local deadline = sys.monotonic() + self.failover_timeout / 1000
  local conn = rawget(self, "conn")
  local r
  repeat
    local msg, code
    if not conn then
      conn, msg, code = connect(self)
      if not conn then return nil, msg, code end
    end
    if r and kind == "insert" and r.lost then
      r = table.pack(recheck(conn))
    else
      r = table.pack(op(conn))
    end
    -- Another connection's transaction holds the database (several agents
    -- and clients write to one leader): wait a little and run op again,
    -- up to busy_timeout, as SQLite's own busy handler would.
    local busy_until = sys.monotonic() + self.busy_timeout / 1000
    while r[1] == nil and r[3] == "BUSY" and sys.monotonic() < busy_until do
      sys.sleep(0.002 + math.random() * 0.02)
      r = table.pack(op(conn))
    end
    if r[1] ~= nil or not LOST[r[3]] then return table.unpack(r, 1, r.n) end
    r.lost = true
    drop(self)
    conn = nil
    sys.sleep(0.05) -- a leader that just lost its lead may still say it leads
  until sys.monotonic() >= deadline
  -- Out of time with the leader lost (a deposed leader's NOTLEADER, a
  -- dropped connection): no leader within failover_timeout, as connect says.
  if r[3] ~= "TIMEOUT" then r[3] = "NOLEADER" end
  return table.unpack(r, 1, r.n)
end

function Store.kind()
  return "dqlite"
end

function Store:insert(coll, doc)
  check_open(self)
  state.check_collection(coll)
  state.check_doc(doc)
  local text = encode(doc)
  local function op(c)
    local n, err, code = c:exec(INSERT, { coll, doc._id, text })
    if not n then return nil, err, code end
    return true
  end
  local function recheck(c)
    local rows, err, code = c:query(SELECT_ONE, { coll, doc._id })
    if not rows then return nil, err, code end
    if not rows[1] then return op(c) end
    if rows[1].doc == text then return true end -- our write got through before the leader went
    return nil, "document already exists", "EEXIST"
  end
  local ok, err, code = run(self, "insert", op, recheck)
  if ok then return true end
  if code == "EEXIST" then
    return nil, string.format("state (dqlite): cannot insert %s/%s: document already exists", coll, doc._id), "EEXIST"
  end
  return fail("insert", coll, doc._id, err, code)
end

function Store:ensure(coll, doc)
  check_open(self)
  state.check_collection(coll)
  state.check_doc(doc)
  local text = encode(doc)
  local n, err, code = run(self, "idempotent", function(c)
    return c:exec("INSERT INTO docs(coll, id, doc) VALUES (?, ?, ?) ON CONFLICT (coll, id) DO NOTHING",
      { coll, doc._id, text })
  end)
  if not n then return fail("ensure", coll, doc._id, err, code) end
  return n == 1 and "inserted" or "exists"
end

function Store:get(coll, id)
  check_open(self)
  state.check_collection(coll)
  state.check_id(id)
  local rows, err, code = run(self, "read", function(c) return c:query(SELECT_ONE, { coll, id }) end)
  if not rows then return fail("get", coll, id, err, code) end
  if not rows[1] then return not_found(coll, id) end
  return decode(rows[1].doc, coll, id)
end

function Store:find(coll, filter)
  check_open(self)
  state.check_collection(coll)
  if filter ~= nil and type(filter) ~= "table" then
    error("state (dqlite): find filter must be a table", 2)
  end
  local rows, err, code = run(self, "read", function(c)
    return c:query("SELECT id, doc FROM docs WHERE coll = ? ORDER BY id", { coll })
  end)
  if not rows then return fail("find in", coll, nil, err, code) end
  local out = {}
  for _, row in ipairs(rows) do
    local doc, derr, dcode = decode(row.doc, coll, row.id)
    if doc == nil then return nil, derr, dcode end
    if state.matches(doc, filter) then out[#out + 1] = doc end
  end
  return out
end

-- Reads, changes and writes one document in one transaction on the leader.
local function set_fields(self, what, coll, id, fields, insert_missing)
  check_open(self)
  state.check_collection(coll)
  state.check_id(id)
  state.check_fields(fields, id)
  encode(fields) -- raises here, at the caller, for values no document can hold
  local ok, err, code = run(self, "idempotent", function(c)
    return c:transaction(function()
      local rows, qerr, qcode = c:query(SELECT_ONE, { coll, id })
      if not rows then return nil, qerr, qcode end
      if not rows[1] then
        if not insert_missing then return nil, "not found", "ENOENT" end
        local n, ierr, icode = c:exec(INSERT, { coll, id, encode(state.new_doc(id, fields)) })
        if not n then return nil, ierr, icode end
        return true
      end
      local doc, derr = json.decode(rows[1].doc, coll .. "/" .. id)
      if doc == nil then return nil, derr, "DQLITE" end
      local n, uerr, ucode = c:exec(UPDATE, { encode(state.apply_set(doc, fields)), coll, id })
      if not n then return nil, uerr, ucode end
      return true
    end)
  end)
  if ok then return true end
  if code == "ENOENT" then return not_found(coll, id) end
  return fail(what, coll, id, err, code)
end

function Store:update(coll, id, fields)
  return set_fields(self, "update", coll, id, fields, false)
end

function Store:upsert(coll, id, fields)
  return set_fields(self, "upsert", coll, id, fields, true)
end

function Store:remove(coll, id)
  check_open(self)
  state.check_collection(coll)
  state.check_id(id)
  local n, err, code = run(self, "idempotent", function(c)
    return c:exec("DELETE FROM docs WHERE coll = ? AND id = ?", { coll, id })
  end)
  if not n then return fail("remove", coll, id, err, code) end
  return true
end

function Store:count(coll)
  check_open(self)
  state.check_collection(coll)
  local rows, err, code = run(self, "read", function(c)
    return c:query("SELECT count(*) AS n FROM docs WHERE coll = ?", { coll })
  end)
  if not rows then return fail("count", coll, nil, err, code) end
  return rows[1].n
end

--- The cluster as the leader knows it: {{id =, address =, role =, leader = bool}, ...}.
function Store:members()
  check_open(self)
  local members, err, code = run(self, "read", function(c) return c:cluster() end)
  if not members then return fail("list the members of", "the cluster", nil, err, code) end
  for _, m in ipairs(members) do m.leader = m.address == self.leader end
  return members
end

--- The servers the store was opened with (a copy), and the current leader's
--- address (nil when not connected).
function Store:servers()
  check_open(self)
  local out = {}
  for i, s in ipairs(self._servers) do out[i] = s end
  return out, rawget(self, "leader")
end

--- Replaces the servers the store looks for a leader among (the cluster
--- changed); the current connection is kept.
function Store:set_servers(list)
  check_open(self)
  if type(list) ~= "table" or #list == 0 then error("state (dqlite): set_servers needs host:port strings", 2) end
  local copy = {}
  for i, s in ipairs(list) do
    if type(s) ~= "string" then error("state (dqlite): set_servers needs host:port strings", 2) end
    copy[i] = s
  end
  self._servers = copy
end

function Store:close()
  if self.closed then return end
  self.closed = true
  drop(self)
end

Store.__close = Store.close
Store.__gc = Store.close
Store.__name = "juju.state.dqlite.Store"

--- Opens the store: finds the leader among opts.servers (a non-empty array
--- of "host:port"), opens opts.database (default "juju") and creates the
--- table. opts.tls: juju.dqlite's tls table (nil: plain TCP, tests only);
--- opts.timeout: ms per request (default 5000); opts.failover_timeout: ms to
--- look for a leader (default 20000); opts.busy_timeout: ms a write waits
--- for other connections' transactions (default 5000). Returns the store or nil, msg, code.
function M.open(opts)
  if type(opts) ~= "table" or type(opts.servers) ~= "table" or #opts.servers == 0 then
    error("state (dqlite): opts.servers (the cluster's addresses) is required", 2)
  end
  local servers = {}
  for i, s in ipairs(opts.servers) do
    if type(s) ~= "string" then error("state (dqlite): opts.servers must hold host:port strings", 2) end
    servers[i] = s
  end
  local self = setmetatable({
    _servers = servers, tls = opts.tls, database = opts.database or "juju",
    timeout = opts.timeout or 5000, failover_timeout = opts.failover_timeout or 20000,
    busy_timeout = opts.busy_timeout or 5000,
  }, Store)
  local c, err, code = connect(self)
  if not c then
    self.closed = true
    return fail("open", self.database, nil, err, code)
  end
  return self
end

return M
