-- juju.state.mongodb: the state store in MongoDB, Juju's own layout
-- (database "juju", one collection per name of spec 2.15), with the
-- interface of juju.state.
--
-- Each method is one command on the server: ensure is an insert whose
-- duplicate-key refusal (11000) means "exists"; update and upsert are
-- `$set` (and `$unset` for fields set to yaml.null) on {_id = id}; find
-- sorts by _id. Filters are MongoDB equality filters, so a scalar also
-- matches an array field holding it (the sqlite store compares whole
-- values); the contract's cases behave the same in both.
local mongo = require("juju.lazy")("juju.mongo")
local yaml = require("juju.yaml")
local state = require("juju.state")

local M = {}

local Store = {}
Store.__index = Store

-- The interface's codes: TIMEOUT, EEXIST and ENOENT pass through, every
-- other failure is MONGO.
local function fail(what, coll, id, msg, code)
  if code ~= "TIMEOUT" and code ~= "EEXIST" and code ~= "ENOENT" then code = "MONGO" end
  local where = id and string.format("%s/%s", coll, id) or coll
  return nil, string.format("state (mongodb): cannot %s %s: %s", what, where, tostring(msg)), code
end

local function not_found(coll, id)
  return nil, string.format("state (mongodb): %s/%s not found", coll, id), "ENOENT"
end

local function client_of(self)
  local c = rawget(self, "client")
  if not c then error("state (mongodb): store is closed", 3) end
  return c
end

-- Conversion errors (a function in a document ...) are raised by the
-- binding; re-raise them at the store method's caller.
local function call(method, c, ...)
  local ok, r, msg, code = pcall(method, c, ...)
  if not ok then error("state (mongodb): " .. tostring(r), 3) end
  return r, msg, code
end

function Store.kind()
  return "mongodb"
end

function Store:insert(coll, doc)
  local c = client_of(self)
  state.check_collection(coll)
  state.check_doc(doc)
  local ok, msg, code = call(c.insert, c, self.database, coll, doc)
  if not ok then
    if code == "EEXIST" then
      return nil, string.format("state (mongodb): cannot insert %s/%s: document already exists", coll, doc._id),
        "EEXIST"
    end
    return fail("insert", coll, doc._id, msg, code)
  end
  return true
end

function Store:ensure(coll, doc)
  local c = client_of(self)
  state.check_collection(coll)
  state.check_doc(doc)
  local ok, msg, code = call(c.insert, c, self.database, coll, doc)
  if ok then return "inserted" end
  if code == "EEXIST" then return "exists" end
  return fail("ensure", coll, doc._id, msg, code)
end

function Store:get(coll, id)
  local c = client_of(self)
  state.check_collection(coll)
  state.check_id(id)
  local doc, msg, code = c:find_one(self.database, coll, { _id = id })
  if doc then return doc end
  if code == "ENOENT" then return not_found(coll, id) end
  return fail("get", coll, id, msg, code)
end

function Store:find(coll, filter)
  local c = client_of(self)
  state.check_collection(coll)
  if filter ~= nil and type(filter) ~= "table" then
    error("state (mongodb): find filter must be a table", 2)
  end
  local docs, msg, code = call(c.find, c, self.database, coll, filter or {}, { sort = { _id = 1 } })
  if not docs then return fail("find in", coll, nil, msg, code) end
  return setmetatable(docs, nil) -- a plain list, as the sqlite store returns
end

-- {$set = non-null fields, $unset = null fields}, or nil when there is
-- nothing to change (mongod refuses an empty operator).
local function set_unset(fields)
  local set, unset = {}, {}
  for k, v in pairs(fields) do
    if k ~= "_id" then
      if v == yaml.null then unset[k] = "" else set[k] = v end
    end
  end
  local update = {}
  if next(set) then update["$set"] = set end
  if next(unset) then update["$unset"] = unset end
  if not next(update) then return nil end
  return update
end

local function set_fields(self, what, coll, id, fields, upsert)
  local c = client_of(self)
  state.check_collection(coll)
  state.check_id(id)
  state.check_fields(fields, id)
  local update = set_unset(fields)
  if not update then
    -- Nothing to set: an update only needs the document to exist, an
    -- upsert only needs it created.
    if upsert then
      local r, msg, code = self:ensure(coll, { _id = id })
      if not r then return nil, msg, code end
      return true
    end
    local doc, msg, code = self:get(coll, id)
    if not doc then return nil, msg, code end
    return true
  end
  local res, msg, code = call(c.update, c, self.database, coll, { _id = id }, update, { upsert = upsert })
  if not res then return fail(what, coll, id, msg, code) end
  if res.matched == 0 and res.upserted == 0 then return not_found(coll, id) end
  return true
end

function Store:update(coll, id, fields)
  return set_fields(self, "update", coll, id, fields, false)
end

function Store:upsert(coll, id, fields)
  return set_fields(self, "upsert", coll, id, fields, true)
end

function Store:remove(coll, id)
  local c = client_of(self)
  state.check_collection(coll)
  state.check_id(id)
  local n, msg, code = c:remove(self.database, coll, { _id = id })
  if not n then return fail("remove", coll, id, msg, code) end
  return true
end

function Store:count(coll)
  local c = client_of(self)
  state.check_collection(coll)
  local reply, msg, code = c:command(self.database, { count = coll })
  if not reply then return fail("count", coll, nil, msg, code) end
  return math.tointeger(reply.n) or 0
end

--- The database the store writes to.
function Store:database_name()
  client_of(self)
  return self.database
end

function Store:close()
  local c = rawget(self, "client")
  if c then
    self.client = nil
    c:close()
  end
end

Store.__close = Store.close
Store.__gc = Store.close
Store.__name = "juju.state.mongodb.Store"

local OPEN_OPTS = {
  uri = true, tls = true, database = true, username = true, password = true, auth_source = true,
  app_name = true,
}

--- Opens the store: opts.uri (mongodb://...; put connectTimeoutMS,
--- serverSelectionTimeoutMS and socketTimeoutMS in it), opts.tls
--- ({ca_file=, cert_key_file=, allow_invalid_hostnames=}), opts.database
--- (default "juju"), opts.username / opts.password / opts.auth_source
--- (default "admin") to authenticate. The server is pinged (and the
--- credentials checked) before the store is returned, so an unreachable or
--- refusing server fails here: nil, message, "TIMEOUT" | "MONGO".
function M.open(opts)
  if type(opts) ~= "table" or type(opts.uri) ~= "string" or opts.uri == "" then
    error("state (mongodb): opts.uri (a mongodb:// URI) is required", 2)
  end
  for k in pairs(opts) do
    if not OPEN_OPTS[k] then error(string.format("state (mongodb): unknown option %q", tostring(k)), 2) end
  end
  local database = opts.database or "juju"
  if type(database) ~= "string" or not database:match("^[%w_-]+$") then
    error("state (mongodb): bad database name " .. tostring(database), 2)
  end
  local c, msg, code = mongo.client(opts.uri, {
    tls = opts.tls, username = opts.username, password = opts.password,
    auth_source = opts.auth_source, app_name = opts.app_name or "juju-state",
  })
  if not c then return fail("open", database, nil, msg, code) end
  local reply
  reply, msg, code = c:command("admin", { ping = 1 })
  if not reply then
    c:close()
    return fail("open", database, nil, msg, code)
  end
  return setmetatable({ client = c, database = database }, Store)
end

return M
