/* dqlite.c: the juju.dqlite module, a client of Dqlite's wire protocol.
 *
 *   dqlite.connect(address [, opts])         -> Conn | nil, msg, code
 *     opts.tls = {ca =, cert =, key = [, server_name = "juju-dqlite"]} (PEM;
 *     nil: plain TCP; cert and key may both be left out, for tests of a
 *     server that refuses clients without a certificate), opts.timeout = ms for the connect and each request
 *   dqlite.connect_leader(addresses [, opts]) -> Conn, leader_address | nil, msg, code
 *   Conn:leader()            -> {id =, address =} | false | nil, msg, code
 *   Conn:cluster()           -> {{id =, address =, role =}, ...} | nil, msg, code
 *   Conn:add(id, address) / Conn:assign(id, role) / Conn:remove(id) -> true | nil, msg, code
 *   Conn:open(name)          -> true | nil, msg, code
 *   Conn:exec(sql [, params])  -> rows_affected, last_insert_id | nil, msg, code
 *   Conn:query(sql [, params]) -> rows keyed by column name | nil, msg, code
 *   Conn:transaction(fn)     -> fn's results | nil, msg, code (as juju.sqlite)
 *   Conn:prepare(sql)        -> stmt_id, nparams | nil, msg, code
 *   Conn:exec_stmt(id [, params]) / Conn:query_stmt(id [, params]) / Conn:finalize(id)
 *   Conn:client([id])        -> true | nil, msg, code (REQUEST_CLIENT)
 *   Conn:address(), Conn:close() / __close / __gc
 *
 * Values cross as juju.sqlite's: SQL NULL is yaml.null (an upvalue of every
 * function), booleans are sent as dqlite booleans, strings as TEXT when they
 * are UTF-8 without NUL, as BLOB otherwise. A result set is held in an owned
 * box while it becomes Lua tables, so a Lua error (out of memory) leaks
 * nothing. Node ids are Lua integers (the uint64 bits).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "dqlite.h"
#include "options.h"

#define CONN_MT "juju.dqlite.Conn"
#define NULL_UPVALUE lua_upvalueindex(1)
#define DEFAULT_TIMEOUT_MS 5000

typedef struct conn_ud {
    jj_dqlite *c; /* NULL once closed */
} conn_ud;

static conn_ud *check_conn(lua_State *L, int idx)
{
    conn_ud *u = luaL_checkudata(L, idx, CONN_MT);
    if (!u->c)
        luaL_argerror(L, idx, "connection is closed");
    return u;
}

static int conn_close(lua_State *L)
{
    conn_ud *u = luaL_checkudata(L, 1, CONN_MT);
    jj_dqlite_close(u->c);
    u->c = NULL;
    return 0;
}

static int conn_tostring(lua_State *L)
{
    conn_ud *u = luaL_checkudata(L, 1, CONN_MT);
    if (u->c)
        lua_pushfstring(L, CONN_MT " (%s)", jj_dqlite_address(u->c));
    else
        lua_pushliteral(L, CONN_MT " (closed)");
    return 1;
}

static int l_address(lua_State *L)
{
    lua_pushstring(L, jj_dqlite_address(check_conn(L, 1)->c));
    return 1;
}

/* --- options ---------------------------------------------------------------- */

typedef struct conn_opts {
    jj_dqlite_tls tls;
    int use_tls;
    int timeout_ms;
} conn_opts;

/* Reads opts at idx (0: none). The strings stay on the stack (kept alive). */
static void read_opts(lua_State *L, int idx, conn_opts *o)
{
    static const char *const known[] = {"tls", "timeout", NULL};
    static const char *const tls_known[] = { "ca", "cert", "key", "server_name", NULL };
    memset(o, 0, sizeof *o);
    o->timeout_ms = DEFAULT_TIMEOUT_MS;
    if (!idx)
        return;
    luaL_checktype(L, idx, LUA_TTABLE);
    jj_opt_check_names(L, idx, known, "dqlite.connect");
    o->timeout_ms = (int)jj_opt_integer(L, idx, "timeout", DEFAULT_TIMEOUT_MS, 1, INT32_MAX);
    int t = jj_opt_get(L, idx, "tls");
    if (t == LUA_TNIL)
        return;
    if (t != LUA_TTABLE)
        jj_opt_bad(L, "tls", "table");
    int ti = lua_gettop(L);
    jj_opt_check_names(L, ti, tls_known, "dqlite.connect tls");
    o->tls.ca = jj_opt_string(L, ti, "ca", NULL);
    o->tls.cert = jj_opt_string(L, ti, "cert", NULL);
    o->tls.key = jj_opt_string(L, ti, "key", NULL);
    o->tls.server_name = jj_opt_string(L, ti, "server_name", NULL);
    if (!o->tls.ca || !o->tls.cert != !o->tls.key)
        luaL_error(L, "dqlite.connect: opts.tls needs ca, and cert with key (PEM)");
    o->use_tls = 1;
}

static conn_ud *push_conn(lua_State *L)
{
    conn_ud *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->c = NULL;
    luaL_setmetatable(L, CONN_MT);
    return u;
}

static int l_connect(lua_State *L)
{
    const char *address = luaL_checkstring(L, 1);
    conn_opts o;
    read_opts(L, lua_isnoneornil(L, 2) ? 0 : 2, &o);
    conn_ud *u = push_conn(L);
    jj_error err;
    if (jj_dqlite_connect(address, o.use_tls ? &o.tls : NULL, o.timeout_ms, &u->c, &err))
        return jj_push_error(L, &err);
    return 1;
}

/* Connects to address and asks it for the leader: 1 when it is the leader
 * (the Conn pushed), 0 when it names another (*other, malloc'd, may be NULL),
 * -1 on failure (err filled). */
static int try_leader(lua_State *L, const char *address, const conn_opts *o, char **other,
                      jj_error *err)
{
    *other = NULL;
    conn_ud *u = push_conn(L);
    if (jj_dqlite_connect(address, o->use_tls ? &o->tls : NULL, o->timeout_ms, &u->c, err)) {
        lua_pop(L, 1);
        return -1;
    }
    uint64_t id;
    char *leader = NULL;
    if (jj_dqlite_leader(u->c, &id, &leader, err)) {
        lua_pop(L, 1); /* its __gc closes it */
        return -1;
    }
    if (leader && strcmp(leader, address) == 0) {
        free(leader);
        return 1;
    }
    jj_dqlite_close(u->c);
    u->c = NULL;
    lua_pop(L, 1);
    *other = leader;
    return 0;
}

static int l_connect_leader(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    conn_opts o;
    read_opts(L, lua_isnoneornil(L, 2) ? 0 : 2, &o);
    lua_Integer n = luaL_len(L, 1);
    luaL_Buffer why;
    luaL_buffinit(L, &why); /* left on the stack: nothing pushed below is left */
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, 1, i);
        const char *address = lua_tostring(L, -1);
        if (!address)
            return luaL_error(L, "dqlite.connect_leader: addresses[%d] is not a string", (int)i);
        lua_pop(L, 1); /* still referenced by the table */
        jj_error err;
        char *other = NULL;
        int r = try_leader(L, address, &o, &other, &err);
        if (r == 1) {
            lua_pushstring(L, address);
            return 2;
        }
        if (r == 0 && other) {
            /* follow the hint once: the named leader may not be in the list */
            char *again = NULL;
            int r2 = try_leader(L, other, &o, &again, &err);
            free(again);
            if (r2 == 1) {
                lua_pushstring(L, other);
                free(other);
                return 2;
            }
            lua_pushfstring(L, "; %s names %s, which %s", address, other,
                            r2 < 0 ? err.message : "does not lead");
            free(other);
        } else if (r == 0) {
            lua_pushfstring(L, "; %s knows no leader", address);
        } else {
            lua_pushfstring(L, "; %s", err.message);
        }
        luaL_addvalue(&why);
    }
    luaL_pushresult(&why);
    const char *text = lua_tostring(L, -1);
    lua_pushnil(L);
    lua_pushfstring(L, "dqlite: no leader among %d servers%s", (int)n, *text ? text + 1 : "");
    lua_pushliteral(L, "NOLEADER");
    return 3;
}

/* --- membership ------------------------------------------------------------- */

static const char *const role_names[] = { "voter", "standby", "spare", NULL };

static void free_nodes_box(void *p, size_t n)
{
    jj_dqlite_nodes_free(p, n);
}

static int l_leader(lua_State *L)
{
    conn_ud *u = check_conn(L, 1);
    uint64_t id;
    char *address;
    jj_error err;
    if (jj_dqlite_leader(u->c, &id, &address, &err))
        return jj_push_error(L, &err);
    if (!address) {
        lua_pushboolean(L, 0);
        return 1;
    }
    lua_pushstring(L, address); /* may raise: copy first, then free */
    free(address);
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, (lua_Integer)id);
    lua_setfield(L, -2, "id");
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "address");
    return 1;
}

static int l_cluster(lua_State *L)
{
    conn_ud *u = check_conn(L, 1);
    jj_owned *box = jj_push_owned(L, free_nodes_box);
    jj_dqlite_node *nodes;
    size_t n;
    jj_error err;
    if (jj_dqlite_cluster(u->c, &nodes, &n, &err))
        return jj_push_error(L, &err);
    box->p = nodes;
    box->n = n;
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_createtable(L, 0, 3);
        lua_pushinteger(L, (lua_Integer)nodes[i].id);
        lua_setfield(L, -2, "id");
        lua_pushstring(L, nodes[i].address);
        lua_setfield(L, -2, "address");
        lua_pushstring(L, role_names[nodes[i].role]);
        lua_setfield(L, -2, "role");
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    jj_owned_release(box);
    return 1;
}

static uint64_t check_id(lua_State *L, int idx)
{
    lua_Integer id = luaL_checkinteger(L, idx);
    if (id == 0)
        luaL_argerror(L, idx, "node id 0 is not a node");
    return (uint64_t)id;
}

static int push_ok(lua_State *L, int rc, jj_error *err)
{
    if (rc)
        return jj_push_error(L, err);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_add(lua_State *L)
{
    conn_ud *u = check_conn(L, 1);
    uint64_t id = check_id(L, 2);
    const char *address = luaL_checkstring(L, 3);
    jj_error err;
    return push_ok(L, jj_dqlite_add(u->c, id, address, &err), &err);
}

static int l_assign(lua_State *L)
{
    conn_ud *u = check_conn(L, 1);
    uint64_t id = check_id(L, 2);
    int role = luaL_checkoption(L, 3, NULL, role_names);
    jj_error err;
    return push_ok(L, jj_dqlite_assign(u->c, id, role, &err), &err);
}

static int l_remove(lua_State *L)
{
    conn_ud *u = check_conn(L, 1);
    uint64_t id = check_id(L, 2);
    jj_error err;
    return push_ok(L, jj_dqlite_remove(u->c, id, &err), &err);
}

static int l_open(lua_State *L)
{
    conn_ud *u = check_conn(L, 1);
    const char *name = luaL_checkstring(L, 2);
    jj_error err;
    return push_ok(L, jj_dqlite_open(u->c, name, &err), &err);
}

/* --- SQL ------------------------------------------------------------------- */

static inline int is_null(lua_State *L, int idx)
{
    return lua_isnoneornil(L, idx) ||
           (lua_type(L, idx) == LUA_TLIGHTUSERDATA && lua_rawequal(L, idx, NULL_UPVALUE));
}

/* Fills v[0..n) from the array at pidx (0: none); strings stay in the table
 * (the caller keeps it on the stack). Returns n. Misuse raises. */
static size_t read_params(lua_State *L, int pidx, jj_dqlite_value *v)
{
    if (!pidx)
        return 0;
    luaL_checktype(L, pidx, LUA_TTABLE);
    /* the largest index present, so that nil holes bind NULL */
    lua_Integer n = 0;
    lua_pushnil(L);
    while (lua_next(L, pidx)) {
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1)
            luaL_error(L, "dqlite: params must be an array (key %s)", luaL_tolstring(L, -1, NULL));
        if (lua_tointeger(L, -1) > n)
            n = lua_tointeger(L, -1);
    }
    if (n > JJ_DQLITE_MAX_PARAMS)
        luaL_error(L, "dqlite: %d parameters (at most %d)", (int)n, JJ_DQLITE_MAX_PARAMS);
    for (lua_Integer i = 1; i <= n; i++) {
        jj_dqlite_value *x = &v[i - 1];
        memset(x, 0, sizeof *x);
        int t = lua_rawgeti(L, pidx, i);
        switch (t) {
        case LUA_TNUMBER:
            if (lua_isinteger(L, -1)) {
                x->type = JJ_DQLITE_INTEGER;
                x->i = (int64_t)lua_tointeger(L, -1);
            } else {
                x->type = JJ_DQLITE_FLOAT;
                x->f = (double)lua_tonumber(L, -1);
            }
            break;
        case LUA_TBOOLEAN:
            x->type = JJ_DQLITE_BOOLEAN;
            x->i = lua_toboolean(L, -1);
            break;
        case LUA_TSTRING:
            x->s = lua_tolstring(L, -1, &x->len);
            x->type = jj_is_text((const unsigned char *)x->s, x->len) ? JJ_DQLITE_TEXT : JJ_DQLITE_BLOB;
            break;
        default:
            if (!is_null(L, -1))
                luaL_error(L, "dqlite parameter #%d: cannot bind a %s", (int)i, luaL_typename(L, -1));
            x->type = JJ_DQLITE_NULL;
        }
        lua_pop(L, 1); /* the string stays in the table */
    }
    return (size_t)n;
}

static int l_exec(lua_State *L)
{
    conn_ud *u = check_conn(L, 1);
    const char *sql = luaL_checkstring(L, 2);
    jj_dqlite_value params[JJ_DQLITE_MAX_PARAMS];
    size_t n = read_params(L, lua_isnoneornil(L, 3) ? 0 : 3, params);
    uint64_t last_id = 0, changes = 0;
    jj_error err;
    if (jj_dqlite_exec_sql(u->c, sql, params, n, &last_id, &changes, &err))
        return jj_push_error(L, &err);
    lua_pushinteger(L, (lua_Integer)changes);
    lua_pushinteger(L, (lua_Integer)last_id);
    return 2;
}

static void free_rows_box(void *p, size_t n)
{
    (void)n;
    jj_dqlite_rows_free(p);
    free(p);
}

static void push_value(lua_State *L, const jj_dqlite_value *v)
{
    switch (v->type) {
    case JJ_DQLITE_INTEGER:
    case JJ_DQLITE_UNIXTIME: lua_pushinteger(L, (lua_Integer)v->i); return;
    case JJ_DQLITE_BOOLEAN: lua_pushboolean(L, v->i != 0); return;
    case JJ_DQLITE_FLOAT: lua_pushnumber(L, (lua_Number)v->f); return;
    case JJ_DQLITE_ISO8601:
        if (v->len == 0) {
            lua_pushvalue(L, NULL_UPVALUE);
            return;
        }
        lua_pushlstring(L, v->s, v->len);
        return;
    case JJ_DQLITE_TEXT:
    case JJ_DQLITE_BLOB: lua_pushlstring(L, v->s ? v->s : "", v->len); return;
    default: lua_pushvalue(L, NULL_UPVALUE); return;
    }
}

static int push_rows(lua_State *L, jj_owned *box);
static jj_owned *push_rows_box(lua_State *L);

static int l_query(lua_State *L)
{
    conn_ud *u = check_conn(L, 1);
    const char *sql = luaL_checkstring(L, 2);
    jj_dqlite_value params[JJ_DQLITE_MAX_PARAMS];
    size_t n = read_params(L, lua_isnoneornil(L, 3) ? 0 : 3, params);
    jj_owned *box = push_rows_box(L);
    jj_error err;
    if (jj_dqlite_query_sql(u->c, sql, params, n, box->p, &err))
        return jj_push_error(L, &err); /* the box frees what was read */
    return push_rows(L, box);
}

/* Pushes rows (held by box) as Lua tables and releases them. */
static int push_rows(lua_State *L, jj_owned *box)
{
    jj_dqlite_rows *rows = box->p;
    lua_createtable(L, rows->nrows > INT32_MAX ? INT32_MAX : (int)rows->nrows, 0);
    for (size_t r = 0; r < rows->nrows; r++) {
        lua_createtable(L, 0, (int)rows->ncols);
        for (size_t c = 0; c < rows->ncols; c++) {
            push_value(L, &rows->values[r * rows->ncols + c]);
            lua_setfield(L, -2, rows->names[c]);
        }
        lua_rawseti(L, -2, (lua_Integer)r + 1);
    }
    jj_owned_release(box);
    return 1;
}

static jj_owned *push_rows_box(lua_State *L)
{
    jj_owned *box = jj_push_owned(L, free_rows_box);
    if (!(box->p = calloc(1, sizeof(jj_dqlite_rows))))
        luaL_error(L, "out of memory");
    return box;
}

static uint32_t check_stmt(lua_State *L, int idx)
{
    lua_Integer id = luaL_checkinteger(L, idx);
    luaL_argcheck(L, id >= 0 && id <= UINT32_MAX, idx, "not a statement id");
    return (uint32_t)id;
}

/* The statement requests, for callers that run one text many times. */
static int l_prepare(lua_State *L)
{
    conn_ud *u = check_conn(L, 1);
    const char *sql = luaL_checkstring(L, 2);
    uint32_t stmt;
    uint64_t nparams;
    jj_error err;
    if (jj_dqlite_prepare(u->c, sql, &stmt, &nparams, &err))
        return jj_push_error(L, &err);
    lua_pushinteger(L, (lua_Integer)stmt);
    lua_pushinteger(L, (lua_Integer)nparams);
    return 2;
}

static int l_exec_stmt(lua_State *L)
{
    conn_ud *u = check_conn(L, 1);
    uint32_t stmt = check_stmt(L, 2);
    jj_dqlite_value params[JJ_DQLITE_MAX_PARAMS];
    size_t n = read_params(L, lua_isnoneornil(L, 3) ? 0 : 3, params);
    uint64_t last_id = 0, changes = 0;
    jj_error err;
    if (jj_dqlite_exec(u->c, stmt, params, n, &last_id, &changes, &err))
        return jj_push_error(L, &err);
    lua_pushinteger(L, (lua_Integer)changes);
    lua_pushinteger(L, (lua_Integer)last_id);
    return 2;
}

static int l_query_stmt(lua_State *L)
{
    conn_ud *u = check_conn(L, 1);
    uint32_t stmt = check_stmt(L, 2);
    jj_dqlite_value params[JJ_DQLITE_MAX_PARAMS];
    size_t n = read_params(L, lua_isnoneornil(L, 3) ? 0 : 3, params);
    jj_owned *box = push_rows_box(L);
    jj_error err;
    if (jj_dqlite_query(u->c, stmt, params, n, box->p, &err))
        return jj_push_error(L, &err);
    return push_rows(L, box);
}

static int l_finalize(lua_State *L)
{
    conn_ud *u = check_conn(L, 1);
    uint32_t stmt = check_stmt(L, 2);
    jj_error err;
    return push_ok(L, jj_dqlite_finalize(u->c, stmt, &err), &err);
}

static int l_client(lua_State *L)
{
    conn_ud *u = check_conn(L, 1);
    lua_Integer id = luaL_optinteger(L, 2, 0);
    jj_error err;
    return push_ok(L, jj_dqlite_client(u->c, (uint64_t)id, &err), &err);
}

static inline int is_failure(lua_State *L, int idx)
{
    return lua_isnil(L, idx) || (lua_isboolean(L, idx) && !lua_toboolean(L, idx));
}

static int exec_plain(conn_ud *u, const char *sql, jj_error *err)
{
    return jj_dqlite_exec_sql(u->c, sql, NULL, 0, NULL, NULL, err);
}

static int l_transaction(lua_State *L)
{
    conn_ud *u = check_conn(L, 1);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_settop(L, 2);
    jj_error err;
    if (exec_plain(u, "BEGIN", &err))
        return jj_push_error(L, &err);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 1);
    int status = lua_pcall(L, 1, LUA_MULTRET, 0);
    int nres = lua_gettop(L) - 2;
    if (!u->c) {
        if (status != LUA_OK)
            return lua_error(L);
        return luaL_error(L, "transaction: the connection was closed inside the transaction");
    }
    jj_error ignored;
    if (status != LUA_OK) {
        exec_plain(u, "ROLLBACK", &ignored);
        return lua_error(L);
    }
    if (nres > 0 && is_failure(L, 3)) {
        exec_plain(u, "ROLLBACK", &ignored);
        return nres;
    }
    if (exec_plain(u, "COMMIT", &err)) {
        exec_plain(u, "ROLLBACK", &ignored);
        return jj_push_error(L, &err);
    }
    if (nres == 0) {
        lua_pushboolean(L, 1);
        return 1;
    }
    return nres;
}

/* --- module ------------------------------------------------------------------ */

int luaopen_juju_dqlite(lua_State *L);
int luaopen_juju_dqlite(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"leader", l_leader},
        {"cluster", l_cluster},
        {"add", l_add},
        {"assign", l_assign},
        {"remove", l_remove},
        {"open", l_open},
        {"exec", l_exec},
        {"query", l_query},
        {"transaction", l_transaction},
        {"prepare", l_prepare},
        {"exec_stmt", l_exec_stmt},
        {"query_stmt", l_query_stmt},
        {"finalize", l_finalize},
        {"client", l_client},
        {"address", l_address},
        {"close", conn_close},
        {NULL, NULL},
    };
    static const luaL_Reg meta[] = {
        {"__gc", conn_close},
        {"__close", conn_close},
        {"__tostring", conn_tostring},
        {NULL, NULL},
    };
    static const luaL_Reg funcs[] = {
        {"connect", l_connect},
        {"connect_leader", l_connect_leader},
        {NULL, NULL},
    };

    /* juju.yaml owns the null sentinel: load it first. */
    lua_getglobal(L, "require");
    lua_pushliteral(L, "juju.yaml");
    lua_call(L, 1, 1);
    luaL_checktype(L, -1, LUA_TTABLE);
    lua_getfield(L, -1, "null");
    if (lua_type(L, -1) != LUA_TLIGHTUSERDATA)
        return luaL_error(L, "juju.yaml has no null sentinel");
    int null = lua_gettop(L);

    luaL_newmetatable(L, CONN_MT);
    lua_pushvalue(L, null);
    luaL_setfuncs(L, meta, 1);
    lua_newtable(L);
    lua_pushvalue(L, null);
    luaL_setfuncs(L, methods, 1);
    lua_setfield(L, -2, "__index");
    lua_pushliteral(L, CONN_MT);
    lua_setfield(L, -2, "__name");
    lua_pop(L, 1);

    luaL_newlibtable(L, funcs);
    lua_pushvalue(L, null);
    luaL_setfuncs(L, funcs, 1);
    lua_pushvalue(L, null);
    lua_setfield(L, -2, "null");
    return 1;
}
