-- juju.state.sqlite: the state store in one SQLite file (the default for
-- the local and dummy providers), with the interface of juju.state.
--
-- One table, docs(coll, id, doc), holds every collection; doc is the
-- document as JSON (juju.json: arrays stay arrays, integers stay integers,
-- null stays null). The file is created 0600 (it holds password hashes and
-- the serving keys) and runs in WAL mode, so readers never wait for the
-- writer and several stores (processes) can share it; writes wait up to
-- busy_timeout ms for the lock, then fail with "TIMEOUT".
local sqlite = require("juju.lazy")("juju.sqlite")
local json = require("juju.json")
local state = require("juju.state")

local M = {}

local Store = {}
Store.__index = Store

local SCHEMA = "CREATE TABLE IF NOT EXISTS docs(coll TEXT, id TEXT, doc TEXT NOT NULL, PRIMARY KEY (coll, id))"
local SELECT_ONE = "SELECT doc FROM docs WHERE coll = ? AND id = ?"
local INSERT = "INSERT INTO docs(coll, id, doc) VALUES (?, ?, ?)"
local UPDATE = "UPDATE docs SET doc = ? WHERE coll = ? AND id = ?"

-- The interface's codes: lock waits keep TIMEOUT, duplicate ids EEXIST,
-- every other database failure is SQLITE.
local function fail(what, coll, id, msg, code)
  if code ~= "TIMEOUT" and code ~= "EEXIST" and code ~= "ENOENT" then code = "SQLITE" end
  local where = id and string.format("%s/%s", coll, id) or coll
  return nil, string.format("state (sqlite): cannot %s %s: %s", what, where, tostring(msg)), code
end

local function not_found(coll, id)
  return nil, string.format("state (sqlite): %s/%s not found", coll, id), "ENOENT"
end

-- Raises at the store method's caller: an unencodable document is misuse.
local function encode(value)
  local text, err = json.encode(value)
  if not text then error("state (sqlite): cannot store document: " .. tostring(err), 3) end
  return text
end

-- The source names the document only in the message of a bad one (a find
-- over 10,000 documents makes no 10,000 names nobody reads).
local function decode(text, coll, id)
  local doc = json.decode(text, coll)
  if doc == nil then
    local _, err = json.decode(text, coll .. "/" .. id)
    return fail("read", coll, id, err, "SQLITE")
  end
  return doc
end

local function db_of(self)
  local db = rawget(self, "db")
  if not db then error("state (sqlite): store is closed", 3) end
  return db
end

function Store.kind()
  return "sqlite"
end

function Store:insert(coll, doc)
  local db = db_of(self)
  state.check_collection(coll)
  state.check_doc(doc)
  local n, err, code = db:exec(INSERT, { coll, doc._id, encode(doc) })
  if not n then
    if code == "EEXIST" then
      return nil, string.format("state (sqlite): cannot insert %s/%s: document already exists", coll, doc._id),
        "EEXIST"
    end
    return fail("insert", coll, doc._id, err, code)
  end
  return true
end

function Store:ensure(coll, doc)
  local db = db_of(self)
  state.check_collection(coll)
  state.check_doc(doc)
  local n, err, code = db:exec("INSERT INTO docs(coll, id, doc) VALUES (?, ?, ?) ON CONFLICT (coll, id) DO NOTHING",
    { coll, doc._id, encode(doc) })
  if not n then return fail("ensure", coll, doc._id, err, code) end
  return n == 1 and "inserted" or "exists"
end

function Store:get(coll, id)
  local db = db_of(self)
  state.check_collection(coll)
  state.check_id(id)
  local rows, err, code = db:query(SELECT_ONE, { coll, id })
  if not rows then return fail("get", coll, id, err, code) end
  if not rows[1] then return not_found(coll, id) end
  return decode(rows[1].doc, coll, id)
end

function Store:find(coll, filter)
  local db = db_of(self)
  state.check_collection(coll)
  if filter ~= nil and type(filter) ~= "table" then
    error("state (sqlite): find filter must be a table", 2)
  end
  local rows, err, code = db:query("SELECT id, doc FROM docs WHERE coll = ? ORDER BY id", { coll })
  if not rows then return fail("find in", coll, nil, err, code) end
  local out = {}
  for _, row in ipairs(rows) do
    local doc, derr, dcode = decode(row.doc, coll, row.id)
    if doc == nil then return nil, derr, dcode end
    if filter == nil or state.matches(doc, filter) then out[#out + 1] = doc end
  end
  return out
end

-- Reads, changes and writes one document inside one write transaction.
-- insert_missing: create {_id = id, ...fields} when absent (upsert).
local function set_fields(self, what, coll, id, fields, insert_missing)
  local db = db_of(self)
  state.check_collection(coll)
  state.check_id(id)
  state.check_fields(fields, id)
  encode(fields) -- raises here, at the caller, for values no document can hold
  local ok, err, code = db:transaction(function()
    local rows, qerr, qcode = db:query(SELECT_ONE, { coll, id })
    if not rows then return nil, qerr, qcode end
    if not rows[1] then
      if not insert_missing then return nil, "not found", "ENOENT" end
      local n, ierr, icode = db:exec(INSERT, { coll, id, encode(state.new_doc(id, fields)) })
      if not n then return nil, ierr, icode end
      return true
    end
    local doc, derr = json.decode(rows[1].doc, coll .. "/" .. id)
    if doc == nil then return nil, derr, "SQLITE" end
    local n, uerr, ucode = db:exec(UPDATE, { encode(state.apply_set(doc, fields)), coll, id })
    if not n then return nil, uerr, ucode end
    return true
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
  local db = db_of(self)
  state.check_collection(coll)
  state.check_id(id)
  local n, err, code = db:exec("DELETE FROM docs WHERE coll = ? AND id = ?", { coll, id })
  if not n then return fail("remove", coll, id, err, code) end
  return true
end

function Store:count(coll)
  local db = db_of(self)
  state.check_collection(coll)
  local rows, err, code = db:query("SELECT count(*) AS n FROM docs WHERE coll = ?", { coll })
  if not rows then return fail("count", coll, nil, err, code) end
  return rows[1].n
end

--- The file the store lives in.
function Store:path()
  db_of(self)
  return self.file
end

function Store:close()
  local db = rawget(self, "db")
  if db then
    self.db = nil
    db:close()
  end
end

Store.__close = Store.close
Store.__gc = Store.close
Store.__name = "juju.state.sqlite.Store"

--- Opens (creating when absent, mode 0600) the store in opts.path; the
--- parent directory must exist. opts.busy_timeout: ms to wait for a lock
--- (default 5000). Returns the store or nil, message, code.
function M.open(opts)
  if type(opts) ~= "table" or type(opts.path) ~= "string" or opts.path == "" then
    error("state (sqlite): opts.path (the database file) is required", 2)
  end
  local db, err, code = sqlite.open(opts.path, { busy_timeout = opts.busy_timeout or 5000 })
  if not db then return nil, string.format("state (sqlite): cannot open %s: %s", opts.path, err), code end
  local rows
  rows, err, code = db:query("PRAGMA journal_mode = WAL")
  if rows and rows[1].journal_mode ~= "wal" then
    rows, err, code = nil, "journal mode is " .. tostring(rows[1].journal_mode) .. ", not wal", "SQLITE"
  end
  if rows then
    rows, err, code = db:exec(SCHEMA)
  end
  if not rows then
    db:close()
    return fail("open", opts.path, nil, err, code)
  end
  return setmetatable({ db = db, file = opts.path }, Store)
end

return M
