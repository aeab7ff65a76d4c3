/* dqlitenode.c: the juju.dqlitenode module, a Dqlite node inside this
 * process (core/dqlitenode.c: libdqlite behind a mutual-TLS proxy).
 *
 *   dqlitenode.start{ id =, address =, dir =, tls = {ca =, cert =, key =} }
 *                                      -> Node | nil, msg, code
 *   Node:id(), Node:address(), Node:dir(), Node:running()
 *   Node:stop()                        -> true | nil, msg, code (idempotent)
 *   __close / __gc                     stop and free
 *
 * `plain = true` instead of tls is for tests only (a node that dqlite-demo
 * can join without TLS); the agent never passes it. Codes: the core's
 * (EINVAL, EACCES, CRYPTO, EIO), and EADDRINUSE when the port is taken.
 * No Lua runs off the main thread: the node's threads never call back.
 */
#include <errno.h>
#include <stdint.h>

#include "common.h"
#include "dqlitenode.h"
#include "options.h"

#define NODE_MT "juju.dqlitenode.Node"

typedef struct node_ud {
    jj_dqlitenode *n; /* NULL once stopped */
    uint64_t id;
} node_ud;

static int push_node_error(lua_State *L, const jj_error *err)
{
    if (err->code == JJ_EIO && err->lib_code == EADDRINUSE) {
        lua_pushnil(L);
        lua_pushstring(L, err->message);
        lua_pushliteral(L, "EADDRINUSE");
        return 3;
    }
    return jj_push_error(L, err);
}

static node_ud *check_node(lua_State *L)
{
    node_ud *u = luaL_checkudata(L, 1, NODE_MT);
    if (!u->n)
        luaL_argerror(L, 1, "dqlite node is stopped");
    return u;
}

static int node_close(lua_State *L)
{
    node_ud *u = luaL_checkudata(L, 1, NODE_MT);
    jj_dqlitenode_free(u->n);
    u->n = NULL;
    return 0;
}

static int node_stop(lua_State *L)
{
    node_ud *u = luaL_checkudata(L, 1, NODE_MT);
    jj_error err;
    jj_error_clear(&err);
    int rc = jj_dqlitenode_stop(u->n, &err); /* NULL: already stopped */
    jj_dqlitenode_free(u->n);
    u->n = NULL;
    if (rc < 0)
        return push_node_error(L, &err);
    lua_pushboolean(L, 1);
    return 1;
}

static int node_id(lua_State *L)
{
    node_ud *u = luaL_checkudata(L, 1, NODE_MT);
    lua_pushinteger(L, (lua_Integer)u->id);
    return 1;
}

static int node_address(lua_State *L)
{
    lua_pushstring(L, jj_dqlitenode_address(check_node(L)->n));
    return 1;
}

static int node_dir(lua_State *L)
{
    lua_pushstring(L, jj_dqlitenode_dir(check_node(L)->n));
    return 1;
}

static int node_running(lua_State *L)
{
    node_ud *u = luaL_checkudata(L, 1, NODE_MT);
    lua_pushboolean(L, u->n && jj_dqlitenode_running(u->n));
    return 1;
}

static int node_tostring(lua_State *L)
{
    node_ud *u = luaL_checkudata(L, 1, NODE_MT);
    if (u->n)
        lua_pushfstring(L, NODE_MT " (%d %s)", (int)u->id, jj_dqlitenode_address(u->n));
    else
        lua_pushliteral(L, NODE_MT " (stopped)");
    return 1;
}

static int l_start(lua_State *L)
{
    static const char *const known[] = {"id", "address", "dir", "tls", "plain", NULL};
    static const char *const tls_known[] = {"ca", "cert", "key", NULL};
    luaL_checktype(L, 1, LUA_TTABLE);
    jj_opt_check_names(L, 1, known, "dqlitenode.start");
    jj_dqlitenode_opts o = {0};
    lua_Integer id = jj_opt_integer(L, 1, "id", 0, 1, INT64_MAX);
    if (id <= 0)
        return luaL_argerror(L, 1, "id (a positive integer) is required");
    o.id = (uint64_t)id;
    o.address = jj_opt_string(L, 1, "address", NULL);
    o.dir = jj_opt_string(L, 1, "dir", NULL);
    if (!o.address)
        return luaL_argerror(L, 1, "address is required");
    if (!o.dir)
        return luaL_argerror(L, 1, "dir is required");
    o.plain = jj_opt_boolean(L, 1, "plain", 0);
    int t = lua_getfield(L, 1, "tls");
    if (t == LUA_TTABLE) {
        int ti = lua_gettop(L);
        jj_opt_check_names(L, ti, tls_known, "dqlitenode.start tls");
        o.ca_pem = jj_opt_string(L, ti, "ca", NULL);
        o.cert_pem = jj_opt_string(L, ti, "cert", NULL);
        o.key_pem = jj_opt_string(L, ti, "key", NULL);
        if (!o.ca_pem || !o.cert_pem || !o.key_pem)
            return luaL_argerror(L, 1, "tls needs ca, cert and key (PEM strings)");
        if (o.plain)
            return luaL_argerror(L, 1, "tls and plain are exclusive");
    } else if (t != LUA_TNIL) {
        return luaL_argerror(L, 1, "tls must be a table");
    } else if (!o.plain) {
        return luaL_argerror(L, 1, "tls = {ca =, cert =, key =} is required");
    }
    /* tls stays on the stack (its strings are referenced) until start returns. */
    node_ud *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->n = NULL;
    u->id = o.id;
    luaL_setmetatable(L, NODE_MT);
    jj_error err;
    jj_error_clear(&err);
    if (jj_dqlitenode_start(&o, &u->n, &err) < 0)
        return push_node_error(L, &err);
    return 1;
}

int luaopen_juju_dqlitenode(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"id", node_id},
        {"address", node_address},
        {"dir", node_dir},
        {"running", node_running},
        {"stop", node_stop},
        {NULL, NULL},
    };
    static const luaL_Reg meta[] = {
        {"__gc", node_close},
        {"__close", node_close},
        {"__tostring", node_tostring},
        {NULL, NULL},
    };
    jj_new_class(L, NODE_MT, methods, meta);
    static const luaL_Reg funcs[] = {
        {"start", l_start},
        {NULL, NULL},
    };
    luaL_newlib(L, funcs);
    lua_pushliteral(L, JJ_DQLITENODE_SERVER_NAME);
    lua_setfield(L, -2, "server_name");
    return 1;
}
