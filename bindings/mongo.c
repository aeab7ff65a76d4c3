/* mongo.c: Lua binding of core/mongo (module `juju.mongo`).
 *
 *   mongo.client(uri [, opts]) -> Client | nil, msg, code
 *       opts: app_name, username, password, auth_source,
 *             tls = true | {ca_file=, cert_key_file=, allow_invalid_hostnames=}
 *   Client:command(db, cmd)                      -> reply
 *   Client:insert(db, coll, doc)                 -> true
 *   Client:find_one(db, coll [, filter])         -> doc | nil, msg, "ENOENT"
 *   Client:find(db, coll [, filter [, opts]])    -> array of docs (opts: sort, projection, limit)
 *   Client:update(db, coll, filter, update [, {upsert=, multi=}])
 *                                                -> {matched=, modified=, upserted=}
 *   Client:remove(db, coll [, filter])           -> number removed
 *   Client:close() / __close / __gc
 * Failures return nil, msg, code ("MONGO", "EEXIST", "TIMEOUT", "EINVAL" ...)
 * and, when the server gave one, its numeric error code as a fourth value.
 *
 * Documents are Lua tables shaped like juju.yaml's: arrays carry the
 * "juju.yaml.array" metatable (a table with keys exactly 1..n is an array
 * too), yaml.null is BSON null, and a table's __yaml_order (juju.yaml.
 * ordered) fixes its key order; other keys follow, "_id" first, then in
 * byte order, so the BSON is deterministic. A command with more than one
 * key must say its order (the command name has to come first): a table
 * without __yaml_order is then refused. Integers that fit become int32,
 * others int64 (see core/mongo.h for every type).
 *
 * C trees are attached to a scratch userdata before they are filled, so a
 * Lua error in the middle (a bad value, memory) frees them through __gc.
 */
#include <dlfcn.h>
#include <mongoc/mongoc.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "mongo.h"
#include "options.h"
#include "tree.h"

#define CLIENT_MT "juju.mongo.Client"

int luaopen_juju_mongo(lua_State *L);

typedef struct lua_client {
    jj_mongo_client *c; /* NULL once closed */
} lua_client;

/* ---- Lua <-> tree (bindings/tree.c) ------------------------------------- */

static inline void raise_nomem(lua_State *L)
{
    luaL_error(L, "mongo: out of memory");
}

/* Converts the table at arg into a mapping held in slot `slot` of s: keys
 * in __yaml_order first, then "_id", then the rest by their bytes, so the
 * BSON is deterministic. Misuse raises naming the argument. */
static jj_yaml_node *check_doc(lua_State *L, int arg, jj_tree_scratch *s, int slot,
                               const char *what)
{
    luaL_checktype(L, arg, LUA_TTABLE);
    if (jj_tree_is_sequence(L, arg))
        luaL_argerror(L, arg, lua_pushfstring(L, "%s must be a document, not an array", what));
    jj_tree_encoding how = {
        .keys = JJ_TREE_KEY_STRING | JJ_TREE_KEY_INTEGER,
        .text_keys = 1,
        .id_first = 1,
        .no_nul_keys = 1,
        .no_holes = 1,
        .max_depth = JJ_MONGO_MAX_DEPTH,
        .code = JJ_EINVAL,
        .what = what,
        .noun = "document",
    };
    jj_error err;
    int rc = jj_tree_encode(L, arg, &how, &s->node[slot], &err);
    if (rc == JJ_ENOMEM)
        raise_nomem(L);
    if (rc)
        luaL_argerror(L, arg, lua_pushstring(L, err.message));
    return s->node[slot];
}

static jj_yaml_node *opt_doc(lua_State *L, int arg, jj_tree_scratch *s, int slot, const char *what)
{
    return lua_isnoneornil(L, arg) ? NULL : check_doc(L, arg, s, slot, what);
}

static void push_node(lua_State *L, const jj_yaml_node *n)
{
    jj_tree_decoding how = {1, 0, "mongo", JJ_EMONGO};
    jj_error err;
    if (jj_tree_push(L, n, &how, &err)) /* text keys never collide */
        luaL_error(L, "%s", err.message);
}

/* nil, msg, code [, server code] */
static int push_failure(lua_State *L, const jj_error *err)
{
    int n = jj_push_error(L, err);
    if ((err->code == JJ_EMONGO || err->code == JJ_EEXIST) && err->lib_code) {
        lua_pushinteger(L, (lua_Integer)err->lib_code);
        n++;
    }
    return n;
}

/* ---- client ------------------------------------------------------------------ */

static lua_client *check_client(lua_State *L)
{
    lua_client *lc = luaL_checkudata(L, 1, CLIENT_MT);
    if (!lc->c)
        luaL_argerror(L, 1, "mongo client is closed");
    return lc;
}

static int client_cleanup(lua_State *L)
{
    lua_client *lc = luaL_checkudata(L, 1, CLIENT_MT);
    jj_mongo_client_free(lc->c);
    lc->c = NULL;
    return 0;
}

static int client_tostring(lua_State *L)
{
    lua_client *lc = luaL_checkudata(L, 1, CLIENT_MT);
    lua_pushstring(L, lc->c ? "juju.mongo.Client" : "juju.mongo.Client(closed)");
    return 1;
}

static const char *check_name(lua_State *L, int arg, const char *what)
{
    size_t len;
    const char *s = luaL_checklstring(L, arg, &len);
    luaL_argcheck(L, len > 0 && strlen(s) == len, arg,
                  lua_pushfstring(L, "%s must be a non-empty string", what));
    return s;
}

static int l_client(lua_State *L)
{
    static const char *const known[] = {
        "app_name", "username", "password", "auth_source", "tls", NULL,
    };
    static const char *const tls_known[] = {
        "ca_file", "cert_key_file", "allow_invalid_hostnames", NULL,
    };
    const char *uri = luaL_checkstring(L, 1);
    lua_settop(L, 2);
    jj_mongo_opts o;
    memset(&o, 0, sizeof o);
    if (!lua_isnil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        jj_opt_check_names(L, 2, known, NULL);
        o.app_name = jj_opt_string(L, 2, "app_name", NULL);
        o.username = jj_opt_string(L, 2, "username", NULL);
        o.password = jj_opt_string(L, 2, "password", NULL);
        o.auth_source = jj_opt_string(L, 2, "auth_source", NULL);
        int t = lua_getfield(L, 2, "tls");
        if (t == LUA_TBOOLEAN) {
            o.tls = lua_toboolean(L, -1);
        } else if (t == LUA_TTABLE) {
            int tls = lua_gettop(L);
            jj_opt_check_names(L, tls, tls_known, NULL);
            o.tls = 1;
            o.tls_ca_file = jj_opt_string(L, tls, "ca_file", NULL);
            o.tls_cert_key_file = jj_opt_string(L, tls, "cert_key_file", NULL);
            o.tls_allow_invalid_hostnames = jj_opt_boolean(L, tls, "allow_invalid_hostnames", 0);
        } else if (t != LUA_TNIL) {
            luaL_error(L, "bad option 'tls' (table or boolean expected, got %s)",
                       luaL_typename(L, -1));
        }
        /* the tls table stays on the stack: it anchors its strings */
    }
    lua_client *lc = lua_newuserdatauv(L, sizeof *lc, 0);
    lc->c = NULL;
    luaL_setmetatable(L, CLIENT_MT);
    jj_error err;
    if (jj_mongo_client_new(uri, &o, &lc->c, &err) != 0)
        return push_failure(L, &err);
    return 1;
}

static int client_close(lua_State *L)
{
    client_cleanup(L);
    return 0;
}

static int client_command(lua_State *L)
{
    lua_client *lc = check_client(L);
    const char *db = check_name(L, 2, "database");
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_settop(L, 3);
    /* A multi-key command without an order could put any key first. */
    lua_Integer keys = 0;
    lua_pushnil(L);
    while (lua_next(L, 3)) {
        lua_pop(L, 1);
        keys++;
    }
    luaL_argcheck(L, keys > 0, 3, "command must not be empty");
    if (keys > 1) {
        int ordered = 0;
        if (lua_getmetatable(L, 3)) {
            ordered = lua_getfield(L, -1, JJ_TREE_ORDER_FIELD) == LUA_TTABLE;
            lua_pop(L, 2);
        }
        luaL_argcheck(L, ordered, 3,
                      "a command with several keys needs a key order (juju.yaml.ordered), "
                      "command name first");
    }
    jj_tree_scratch *s = jj_tree_push_scratch(L);
    jj_yaml_node *cmd = check_doc(L, 3, s, 0, "command");
    jj_error err;
    if (jj_mongo_command(lc->c, db, cmd, &s->node[1], &err) != 0)
        return push_failure(L, &err);
    push_node(L, s->node[1]);
    return 1;
}

static int client_insert(lua_State *L)
{
    lua_client *lc = check_client(L);
    const char *db = check_name(L, 2, "database");
    const char *coll = check_name(L, 3, "collection");
    lua_settop(L, 4);
    jj_tree_scratch *s = jj_tree_push_scratch(L);
    jj_yaml_node *doc = check_doc(L, 4, s, 0, "document");
    jj_error err;
    if (jj_mongo_insert(lc->c, db, coll, doc, &err) != 0)
        return push_failure(L, &err);
    lua_pushboolean(L, 1);
    return 1;
}

static int client_find_one(lua_State *L)
{
    lua_client *lc = check_client(L);
    const char *db = check_name(L, 2, "database");
    const char *coll = check_name(L, 3, "collection");
    lua_settop(L, 4);
    jj_tree_scratch *s = jj_tree_push_scratch(L);
    jj_yaml_node *filter = opt_doc(L, 4, s, 0, "filter");
    jj_error err;
    if (jj_mongo_find_one(lc->c, db, coll, filter, &s->node[1], &err) != 0)
        return push_failure(L, &err);
    push_node(L, s->node[1]);
    return 1;
}

static int client_find(lua_State *L)
{
    static const char *const known[] = {
        "sort", "projection", "limit", NULL,
    };
    lua_client *lc = check_client(L);
    const char *db = check_name(L, 2, "database");
    const char *coll = check_name(L, 3, "collection");
    lua_settop(L, 5);
    jj_tree_scratch *s = jj_tree_push_scratch(L);
    jj_yaml_node *filter = opt_doc(L, 4, s, 0, "filter");
    jj_mongo_find_opts fo = {NULL, NULL, 0};
    if (!lua_isnil(L, 5)) {
        luaL_checktype(L, 5, LUA_TTABLE);
        jj_opt_check_names(L, 5, known, NULL);
        if (lua_getfield(L, 5, "sort") != LUA_TNIL) {
            luaL_argcheck(L, lua_istable(L, -1), 5, "sort must be a document");
            fo.sort = check_doc(L, lua_gettop(L), s, 1, "sort");
        }
        if (lua_getfield(L, 5, "projection") != LUA_TNIL) {
            luaL_argcheck(L, lua_istable(L, -1), 5, "projection must be a document");
            fo.projection = check_doc(L, lua_gettop(L), s, 2, "projection");
        }
        if (lua_getfield(L, 5, "limit") != LUA_TNIL) {
            luaL_argcheck(L, lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 0, 5,
                          "limit must be a non-negative integer");
            fo.limit = (int64_t)lua_tointeger(L, -1);
        }
    }
    jj_error err;
    if (jj_mongo_find(lc->c, db, coll, filter, &fo, &s->node[3], &err) != 0)
        return push_failure(L, &err);
    push_node(L, s->node[3]);
    return 1;
}

static int client_update(lua_State *L)
{
    static const char *const known[] = {
        "upsert", "multi", NULL,
    };
    lua_client *lc = check_client(L);
    const char *db = check_name(L, 2, "database");
    const char *coll = check_name(L, 3, "collection");
    lua_settop(L, 6);
    jj_tree_scratch *s = jj_tree_push_scratch(L);
    jj_yaml_node *filter = check_doc(L, 4, s, 0, "filter");
    jj_yaml_node *update = check_doc(L, 5, s, 1, "update");
    unsigned flags = 0;
    if (!lua_isnil(L, 6)) {
        luaL_checktype(L, 6, LUA_TTABLE);
        jj_opt_check_names(L, 6, known, NULL);
        if (jj_opt_boolean(L, 6, "upsert", 0))
            flags |= JJ_MONGO_UPSERT;
        if (jj_opt_boolean(L, 6, "multi", 0))
            flags |= JJ_MONGO_MULTI;
    }
    jj_mongo_update_result res = {0, 0, 0};
    jj_error err;
    if (jj_mongo_update(lc->c, db, coll, filter, update, flags, &res, &err) != 0)
        return push_failure(L, &err);
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, (lua_Integer)res.matched);
    lua_setfield(L, -2, "matched");
    lua_pushinteger(L, (lua_Integer)res.modified);
    lua_setfield(L, -2, "modified");
    lua_pushinteger(L, (lua_Integer)res.upserted);
    lua_setfield(L, -2, "upserted");
    return 1;
}

static int client_remove(lua_State *L)
{
    lua_client *lc = check_client(L);
    const char *db = check_name(L, 2, "database");
    const char *coll = check_name(L, 3, "collection");
    lua_settop(L, 4);
    jj_tree_scratch *s = jj_tree_push_scratch(L);
    jj_yaml_node *filter = opt_doc(L, 4, s, 0, "filter");
    int64_t removed = 0;
    jj_error err;
    if (jj_mongo_remove(lc->c, db, coll, filter, &removed, &err) != 0)
        return push_failure(L, &err);
    lua_pushinteger(L, (lua_Integer)removed);
    return 1;
}

/* libmongoc keeps process-wide state for as long as the process lives
 * (mongoc_init's globals, the SCRAM key cache). When lua_close unloads this
 * module, libmongoc would be unloaded with it and that memory orphaned; it
 * is pinned instead (RTLD_NODELETE), which also makes a later reload in
 * another Lua state find libmongoc initialised, as it promises. */
static void pin_libmongoc(void)
{
    Dl_info info;
    if (dladdr((void *)mongoc_init, &info) && info.dli_fname)
        dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
}

int luaopen_juju_mongo(lua_State *L)
{
    pin_libmongoc();
    /* juju.yaml owns null and the array metatable: load it first. */
    jj_tree_require_yaml(L);

    static const luaL_Reg methods[] = {
        {"command", client_command}, {"insert", client_insert}, {"find_one", client_find_one},
        {"find", client_find},       {"update", client_update}, {"remove", client_remove},
        {"close", client_close},     {NULL, NULL},
    };
    static const luaL_Reg meta[] = {
        {"__close", client_cleanup},
        {"__gc", client_cleanup},
        {"__tostring", client_tostring},
        {NULL, NULL},
    };
    jj_new_class(L, CLIENT_MT, methods, meta);

    static const luaL_Reg funcs[] = {{"client", l_client}, {NULL, NULL}};
    luaL_newlib(L, funcs);
    jj_tree_push_null(L);
    lua_setfield(L, -2, "null");
    return 1;
}
