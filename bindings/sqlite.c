/* sqlite.c: the juju.sqlite module, SQLite databases for the state store.
 *
 *   sqlite.open(path [, opts])     -> Db | nil, msg, code
 *   Db:exec(sql [, params])        -> changes | nil, msg, code
 *   Db:query(sql [, params])       -> rows | nil, msg, code
 *   Db:transaction(fn)             -> fn's results | nil, msg, code
 *   Db:in_transaction()            -> boolean
 *   Db:close() / __close / __gc
 *
 * Values cross as juju.yaml's value model: SQL NULL is yaml.null (kept as
 * an upvalue of every function, taken from juju.yaml when the module opens).
 * Statements being run live in a scratch userdata whose __gc finalizes
 * them, so a Lua error while binding or building rows (a bad parameter,
 * out of memory) leaks nothing. fn of Db:transaction runs under lua_pcall
 * between BEGIN and COMMIT, never inside an SQLite callback.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "options.h"
#include "sqlite.h"

#define DB_MT "juju.sqlite.Db"
#define STMT_MT "juju.sqlite.Statement"
#define NULL_UPVALUE lua_upvalueindex(1)
#define DEFAULT_BUSY_TIMEOUT_MS 5000

typedef struct db_ud {
    jj_sqlite *db; /* NULL once closed */
} db_ud;

typedef struct stmt_ud {
    jj_sqlite_stmt *st; /* NULL once finalized */
} stmt_ud;

/* --- userdata ------------------------------------------------------------- */

static db_ud *check_db_ud(lua_State *L, int idx)
{
    db_ud *u = luaL_checkudata(L, idx, DB_MT);
    if (!u->db)
        luaL_argerror(L, idx, "database is closed");
    return u;
}

static int db_close(lua_State *L)
{
    db_ud *u = luaL_checkudata(L, 1, DB_MT);
    jj_sqlite_close(u->db);
    u->db = NULL;
    return 0;
}

static int db_tostring(lua_State *L)
{
    db_ud *u = luaL_checkudata(L, 1, DB_MT);
    if (u->db)
        lua_pushfstring(L, DB_MT " (%s)", jj_sqlite_path(u->db));
    else
        lua_pushliteral(L, DB_MT " (closed)");
    return 1;
}

static int stmt_gc(lua_State *L)
{
    stmt_ud *s = luaL_checkudata(L, 1, STMT_MT);
    jj_sqlite_finalize(s->st);
    s->st = NULL;
    return 0;
}

/* Pushes an empty statement holder (index returned). */
static stmt_ud *push_stmt(lua_State *L)
{
    stmt_ud *s = lua_newuserdatauv(L, sizeof *s, 0);
    s->st = NULL;
    luaL_setmetatable(L, STMT_MT);
    return s;
}

/* --- values ---------------------------------------------------------------- */

static inline int is_null(lua_State *L, int idx)
{
    return lua_isnoneornil(L, idx) ||
           (lua_type(L, idx) == LUA_TLIGHTUSERDATA && lua_rawequal(L, idx, NULL_UPVALUE));
}

/* Binds the value at idx to parameter i; what names the parameter in errors. */
static int bind_value(lua_State *L, jj_sqlite_stmt *st, int i, int idx, const char *what,
                      jj_error *err)
{
    size_t len;
    const char *s;
    switch (lua_type(L, idx)) {
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            return jj_sqlite_bind_int(st, i, (int64_t)lua_tointeger(L, idx), err);
        return jj_sqlite_bind_double(st, i, (double)lua_tonumber(L, idx), err);
    case LUA_TSTRING:
        s = lua_tolstring(L, idx, &len);
        if (jj_is_text((const unsigned char *)s, len))
            return jj_sqlite_bind_text(st, i, s, len, err);
        return jj_sqlite_bind_blob(st, i, s, len, err);
    case LUA_TBOOLEAN: return jj_sqlite_bind_int(st, i, lua_toboolean(L, idx) ? 1 : 0, err);
    default:
        if (is_null(L, idx))
            return jj_sqlite_bind_null(st, i, err);
        return luaL_error(L, "sqlite parameter %s: cannot bind a %s", what, luaL_typename(L, idx));
    }
}

/* Binds st's parameters from the table at pidx (or NULL for all when pidx
 * is 0): "?" and "?NNN" take params[index], ":name", "@name" and "$name"
 * take params.name; absent values bind NULL. */
static int bind_params(lua_State *L, jj_sqlite_stmt *st, int pidx, jj_error *err)
{
    int n = jj_sqlite_param_count(st);
    for (int i = 1; i <= n; i++) {
        const char *name = jj_sqlite_param_name(st, i);
        if (!pidx) {
            lua_pushnil(L);
        } else if (!name || name[0] == '?') {
            lua_rawgeti(L, pidx, i);
        } else {
            lua_pushstring(L, name + 1);
            lua_rawget(L, pidx);
        }
        char what[32];
        if (name) {
            lua_pushstring(L, name);
        } else {
            snprintf(what, sizeof what, "#%d", i);
            lua_pushstring(L, what);
        }
        int rc = bind_value(L, st, i, -2, lua_tostring(L, -1), err);
        lua_pop(L, 2);
        if (rc)
            return rc;
    }
    return 0;
}

/* Pushes column i of the current row. */
static void push_column(lua_State *L, jj_sqlite_stmt *st, int i)
{
    size_t len;
    const void *p;
    switch (jj_sqlite_column_type(st, i)) {
    case JJ_SQLITE_INTEGER: lua_pushinteger(L, (lua_Integer)jj_sqlite_column_int(st, i)); return;
    case JJ_SQLITE_FLOAT: lua_pushnumber(L, (lua_Number)jj_sqlite_column_double(st, i)); return;
    case JJ_SQLITE_TEXT:
    case JJ_SQLITE_BLOB:
        p = jj_sqlite_column_bytes(st, i, &len);
        lua_pushlstring(L, p, len);
        return;
    default: lua_pushvalue(L, NULL_UPVALUE); return;
    }
}

/* --- statements ------------------------------------------------------------ */

static inline int is_no_statement(const jj_error *err)
{
    return err->code == JJ_EINVAL && err->lib_code == 0;
}

/* Prepares the one statement of the string at index 2 into a holder pushed
 * on the stack and binds the parameters at index 3. Returns 0, or fills err
 * (the holder is still pushed). More than one statement raises. */
static int prepare_one(lua_State *L, jj_sqlite *db, const char *fn, jj_error *err)
{
    size_t len, used;
    const char *sql = luaL_checklstring(L, 2, &len);
    int pidx = 0;
    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        pidx = 3;
    }
    stmt_ud *s = push_stmt(L);
    /* From the connection's cache: a query run again is not compiled again. */
    int rc = jj_sqlite_prepare_cached(db, sql, len, &s->st, &used, err);
    if (rc)
        return rc;
    if (used < len) {
        stmt_ud *rest = push_stmt(L);
        rc = jj_sqlite_prepare(db, sql + used, len - used, &rest->st, NULL, err);
        lua_pop(L, 1); /* its __gc finalizes whatever it holds */
        if (rc == 0)
            return luaL_error(L, "%s: one statement at a time (the text holds more)", fn);
        if (!is_no_statement(err))
            return rc;
        jj_error_clear(err);
    }
    rc = bind_params(L, s->st, pidx, err);
    if (rc) { /* give it back now, not at the next collection */
        jj_sqlite_finalize(s->st);
        s->st = NULL;
    }
    return rc;
}

static int l_exec(lua_State *L)
{
    db_ud *u = check_db_ud(L, 1);
    const char *sql = luaL_checkstring(L, 2);
    jj_error err;
    if (lua_isnoneornil(L, 3)) {
        int64_t changes = 0;
        if (jj_sqlite_exec(u->db, sql, &changes, &err))
            return jj_push_error(L, &err);
        lua_pushinteger(L, (lua_Integer)changes);
        return 1;
    }
    if (prepare_one(L, u->db, "exec", &err))
        return jj_push_error(L, &err);
    stmt_ud *s = luaL_checkudata(L, -1, STMT_MT);
    int64_t before = jj_sqlite_total_changes(u->db);
    int rc;
    while ((rc = jj_sqlite_step(s->st, &err)) == JJ_SQLITE_ROW) {
    }
    jj_sqlite_finalize(s->st);
    s->st = NULL;
    if (rc < 0)
        return jj_push_error(L, &err);
    lua_pushinteger(L, (lua_Integer)(jj_sqlite_total_changes(u->db) - before));
    return 1;
}

static int l_query(lua_State *L)
{
    db_ud *u = check_db_ud(L, 1);
    jj_error err;
    if (prepare_one(L, u->db, "query", &err))
        return jj_push_error(L, &err);
    stmt_ud *s = luaL_checkudata(L, -1, STMT_MT);
    lua_newtable(L);
    int rows = lua_gettop(L);
    int ncol = jj_sqlite_column_count(s->st);
    lua_Integer n = 0;
    int rc;
    while ((rc = jj_sqlite_step(s->st, &err)) == JJ_SQLITE_ROW) {
        lua_createtable(L, 0, ncol);
        for (int i = 0; i < ncol; i++) {
            push_column(L, s->st, i);
            lua_setfield(L, -2, jj_sqlite_column_name(s->st, i));
        }
        lua_rawseti(L, rows, ++n);
    }
    jj_sqlite_finalize(s->st);
    s->st = NULL;
    if (rc < 0)
        return jj_push_error(L, &err);
    return 1;
}

static inline int is_failure(lua_State *L, int idx)
{
    return lua_isnil(L, idx) || (lua_isboolean(L, idx) && !lua_toboolean(L, idx));
}

static int l_transaction(lua_State *L)
{
    db_ud *u = check_db_ud(L, 1);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_settop(L, 2);
    jj_error err;
    if (jj_sqlite_begin(u->db, &err))
        return jj_push_error(L, &err);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 1);
    int status = lua_pcall(L, 1, LUA_MULTRET, 0);
    int nres = lua_gettop(L) - 2;
    if (!u->db) {
        /* Closing the connection rolled the transaction back already. */
        if (status != LUA_OK)
            return lua_error(L);
        return luaL_error(L, "transaction: the database was closed inside the transaction");
    }
    if (status != LUA_OK) {
        jj_error ignored;
        jj_sqlite_rollback(u->db, &ignored);
        return lua_error(L); /* the original error object, unchanged */
    }
    if (nres > 0 && is_failure(L, 3)) {
        if (jj_sqlite_rollback(u->db, &err))
            return jj_push_error(L, &err);
        return nres;
    }
    if (jj_sqlite_commit(u->db, &err)) {
        jj_error ignored;
        jj_sqlite_rollback(u->db, &ignored);
        return jj_push_error(L, &err);
    }
    if (nres == 0) {
        lua_pushboolean(L, 1);
        return 1;
    }
    return nres;
}

static int l_in_transaction(lua_State *L)
{
    db_ud *u = check_db_ud(L, 1);
    lua_pushboolean(L, jj_sqlite_in_transaction(u->db));
    return 1;
}

/* --- open ------------------------------------------------------------------ */

static int l_open(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    int readonly = 0, create = 1;
    lua_Integer timeout = DEFAULT_BUSY_TIMEOUT_MS;
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        readonly = jj_opt_boolean(L, 2, "readonly", 0);
        create = jj_opt_boolean(L, 2, "create", !readonly);
        timeout = jj_opt_integer(L, 2, "busy_timeout", timeout, 0, INT32_MAX); /* ms */
        if (readonly && create)
            luaL_argerror(L, 2, "opts.readonly and opts.create exclude each other");
    }
    if (!*path)
        luaL_argerror(L, 1, "empty path");
    db_ud *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->db = NULL;
    luaL_setmetatable(L, DB_MT);
    int flags = (create ? JJ_SQLITE_CREATE : 0) | (readonly ? JJ_SQLITE_READONLY : 0);
    jj_error err;
    if (jj_sqlite_open(path, flags, (int)timeout, &u->db, &err))
        return jj_push_error(L, &err);
    return 1;
}

/* --- module ---------------------------------------------------------------- */

int luaopen_juju_sqlite(lua_State *L);
int luaopen_juju_sqlite(lua_State *L)
{
    static const luaL_Reg db_methods[] = {
        {"exec", l_exec},
        {"query", l_query},
        {"transaction", l_transaction},
        {"in_transaction", l_in_transaction},
        {"close", db_close},
        {NULL, NULL},
    };
    static const luaL_Reg db_meta[] = {
        {"__gc", db_close},
        {"__close", db_close},
        {"__tostring", db_tostring},
        {NULL, NULL},
    };
    static const luaL_Reg stmt_meta[] = {{"__gc", stmt_gc}, {NULL, NULL}};
    static const luaL_Reg funcs[] = {{"open", l_open}, {NULL, NULL}};

    /* juju.yaml owns the null sentinel: load it first. */
    lua_getglobal(L, "require");
    lua_pushliteral(L, "juju.yaml");
    lua_call(L, 1, 1);
    luaL_checktype(L, -1, LUA_TTABLE);
    lua_getfield(L, -1, "null");
    if (lua_type(L, -1) != LUA_TLIGHTUSERDATA)
        return luaL_error(L, "juju.yaml has no null sentinel");
    int null = lua_gettop(L);

    jj_new_class(L, STMT_MT, NULL, stmt_meta);
    luaL_newmetatable(L, DB_MT);
    lua_pushvalue(L, null);
    luaL_setfuncs(L, db_meta, 1);
    lua_newtable(L);
    lua_pushvalue(L, null);
    luaL_setfuncs(L, db_methods, 1);
    lua_setfield(L, -2, "__index");
    lua_pushliteral(L, DB_MT);
    lua_setfield(L, -2, "__name");
    lua_pop(L, 1);

    luaL_newlibtable(L, funcs);
    lua_pushvalue(L, null);
    luaL_setfuncs(L, funcs, 1);
    lua_pushvalue(L, null);
    lua_setfield(L, -2, "null");
    return 1;
}
