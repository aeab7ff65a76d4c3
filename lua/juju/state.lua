-- juju.state: the state-store interface shared by the sqlite, dqlite and
-- mongodb stores (juju.state.sqlite, juju.state.dqlite, juju.state.mongodb),
-- and the document helpers they use so that they behave alike.
--
-- A store holds documents (Lua tables with a string `_id`) in named
-- collections and offers kind, insert, ensure, get, find, update, upsert,
-- remove, count and close. Operational failures return nil, message, code
-- with code one of "EEXIST", "ENOENT", "SQLITE", "DQLITE", "MONGO", "TIMEOUT"
-- (and the dqlite store's "NOLEADER");
-- misuse (a document without a string _id, a bad collection name) raises.
local yaml = require("juju.yaml")

local M = {}

-- kind -> module name; the module exports open(opts) -> store | nil, msg, code.
local backends = {
  sqlite = "juju.state.sqlite",
  dqlite = "juju.state.dqlite",
  mongodb = "juju.state.mongodb",
}

--- Opens a store: state.open("sqlite", {path = ...}),
--- state.open("dqlite", {servers = {...}, tls = ..., database = ...}) or
--- state.open("mongodb", {uri = ..., tls = ..., database = ...}).
function M.open(kind, opts)
  local modname = backends[kind]
  if not modname then
    error(string.format("unknown state store kind %q (want \"sqlite\", \"dqlite\" or \"mongodb\")", tostring(kind)), 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("state.open: opts must be a table", 2)
  end
  local ok, mod = pcall(require, modname)
  if not ok then
    if tostring(mod):find("module '" .. modname .. "' not found", 1, true) then
      return nil, string.format("state store %q is not available", kind), "UNSUPPORTED"
    end
    return nil, string.format("state store %q is not available: %s", kind, tostring(mod)), "UNSUPPORTED"
  end
  return mod.open(opts or {})
end

--- Raises (at the caller's caller) unless coll names a collection.
function M.check_collection(coll)
  if type(coll) ~= "string" or not coll:match("^[%w_.-]+$") then
    error(string.format("bad collection name %s", type(coll) == "string" and string.format("%q", coll)
      or tostring(coll)), 3)
  end
end

--- Raises (at the caller's caller) unless id is a document id.
function M.check_id(id)
  if type(id) ~= "string" then
    error(string.format("document _id must be a string, got %s", type(id)), 3)
  end
end

--- Raises unless doc is a document with a string _id.
function M.check_doc(doc)
  if type(doc) ~= "table" then
    error(string.format("document must be a table, got %s", type(doc)), 3)
  end
  if type(doc._id) ~= "string" then
    error(string.format("document _id must be a string, got %s", type(doc._id)), 3)
  end
end

--- Raises unless fields is a table of top-level fields to set.
function M.check_fields(fields, id)
  if type(fields) ~= "table" then
    error(string.format("fields must be a table, got %s", type(fields)), 3)
  end
  if fields._id ~= nil and fields._id ~= id then
    error("fields cannot change a document's _id", 3)
  end
  for k in pairs(fields) do
    if type(k) ~= "string" then error("field names must be strings", 3) end
  end
end

local function deep_equal(a, b)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" then return false end
  if yaml.is_array(a) ~= yaml.is_array(b) and (next(a) ~= nil or next(b) ~= nil) then
    return false
  end
  for k, v in pairs(a) do
    if not deep_equal(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end
M.deep_equal = deep_equal

--- Whether doc matches filter: equality on each top-level field (tables
--- compared deeply; yaml.null matches a null or absent field).
function M.matches(doc, filter)
  for k, want in pairs(filter or {}) do
    local have = doc[k]
    if want == yaml.null then
      if have ~= nil and have ~= yaml.null then return false end
    elseif not deep_equal(have, want) then
      return false
    end
  end
  return true
end

--- Applies a `$set` of top-level fields to doc in place (a field set to
--- yaml.null is removed); returns doc.
function M.apply_set(doc, fields)
  for k, v in pairs(fields) do
    if k ~= "_id" then
      if v == yaml.null then doc[k] = nil else doc[k] = v end
    end
  end
  return doc
end

--- The document an upsert inserts: {_id = id, ...fields} without null fields.
function M.new_doc(id, fields)
  return M.apply_set({ _id = id }, fields)
end

return M
