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

#define CLIENT_MT "juju.mongo.Client"
#define SCRATCH_MT "juju.mongo.Scratch"
#define ARRAY_MT "juju.yaml.array"
#define ORDER_FIELD "__yaml_order"
#define NULL_KEY "juju.null"
#define NULL_UPVALUE lua_upvalueindex(1)
#define SCRATCH_SLOTS 4

int luaopen_juju_mongo(lua_State *L);

typedef struct lua_client {
    jj_mongo_client *c; /* NULL once closed */
} lua_client;

/* ---- scratch: owns C trees while Lua values are converted ------------- */

typedef struct scratch {
    jj_yaml_node *n[SCRATCH_SLOTS];
} scratch;

static int scratch_gc(lua_State *L)
{
    scratch *s = luaL_checkudata(L, 1, SCRATCH_MT);
    for (int i = 0; i < SCRATCH_SLOTS; i++) {
        jj_yaml_free(s->n[i]);
        s->n[i] = NULL;
    }
    return 0;
}

static scratch *push_scratch(lua_State *L)
{
    scratch *s = lua_newuserdatauv(L, sizeof *s, 0);
    memset(s, 0, sizeof *s);
    luaL_setmetatable(L, SCRATCH_MT);
    return s;
}

static inline void raise_nomem(lua_State *L)
{
    luaL_error(L, "mongo: out of memory");
}

/* ---- Lua -> tree ---------------------------------------------------------- */

static inline int is_null(lua_State *L, int idx)
{
    return lua_type(L, idx) == LUA_TLIGHTUSERDATA && lua_rawequal(L, idx, NULL_UPVALUE);
}

static int is_marked_array(lua_State *L, int idx)
{
    if (!lua_getmetatable(L, idx))
        return 0;
    luaL_getmetatable(L, ARRAY_MT);
    int same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return same;
}

/* Number of elements when the table's keys are exactly 1..n (n > 0), else 0. */
static lua_Integer proper_array_len(lua_State *L, int idx)
{
    lua_Integer count = 0, max = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1) {
            lua_pop(L, 1);
            return 0;
        }
        lua_Integer k = lua_tointeger(L, -1);
        if (k > max)
            max = k;
        count++;
    }
    return count > 0 && max == count ? count : 0;
}

typedef struct conv {
    const char *what; /* "cmd", "doc", "filter" ...: names the argument in errors */
    int arg;          /* its argument position */
} conv;

static void fill(lua_State *L, int idx, jj_yaml_node *container, const conv *cv, int depth);

/* A new tree node for the Lua value at idx; containers come back empty
 * (the caller attaches them first, then fills them). */
static jj_yaml_node *leaf_or_container(lua_State *L, int idx, const conv *cv, int *is_table)
{
    *is_table = 0;
    switch (lua_type(L, idx)) {
    case LUA_TBOOLEAN: return jj_yaml_new_bool(lua_toboolean(L, idx));
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            return jj_yaml_new_int((int64_t)lua_tointeger(L, idx));
        return jj_yaml_new_float((double)lua_tonumber(L, idx));
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        return jj_yaml_new_stringn(s, len);
    }
    case LUA_TTABLE:
        *is_table = 1;
        return is_marked_array(L, idx) || proper_array_len(L, idx) ? jj_yaml_new_seq()
                                                                   : jj_yaml_new_map();
    default:
        if (is_null(L, idx))
            return jj_yaml_new_null();
        luaL_argerror(L, cv->arg, lua_pushfstring(L, "%s: cannot convert a %s to BSON", cv->what,
                                                  luaL_typename(L, idx)));
        return NULL;
    }
}

/* Appends the value at idx to container (under key when it is a map). */
static void attach(lua_State *L, int idx, jj_yaml_node *container, const char *key,
                   const conv *cv, int depth)
{
    int is_table;
    jj_yaml_node *n = leaf_or_container(L, idx, cv, &is_table);
    if (!n)
        raise_nomem(L);
    jj_error err;
    int rc = key ? jj_yaml_map_set(container, key, n, &err) : jj_yaml_seq_append(container, n, &err);
    if (rc)
        raise_nomem(L); /* n was taken (and freed) by the container */
    if (is_table)
        fill(L, idx, n, cv, depth + 1);
}

/* Key text for a map key at idx: strings as they are, integers in decimal. */
static const char *key_text(lua_State *L, int idx, const conv *cv)
{
    if (lua_type(L, idx) == LUA_TSTRING) {
        size_t len;
        const char *k = lua_tolstring(L, idx, &len);
        if (strlen(k) != len)
            luaL_argerror(L, cv->arg, lua_pushfstring(L, "%s: a key holds a NUL byte", cv->what));
        return k;
    }
    if (lua_isinteger(L, idx))
        return lua_pushfstring(L, "%I", lua_tointeger(L, idx)); /* left on the stack */
    luaL_argerror(L, cv->arg, lua_pushfstring(L, "%s: keys must be strings or integers, not %s",
                                              cv->what, luaL_typename(L, idx)));
    return NULL;
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Pushes a sequence of the table's keys in document order: the ones named
 * by __yaml_order first, then "_id", then the rest in byte order. */
static void push_key_order(lua_State *L, int t, const conv *cv)
{
    lua_newtable(L);
    int out = lua_gettop(L);
    lua_newtable(L);
    int seen = lua_gettop(L);
    lua_Integer n = 0;
    if (lua_getmetatable(L, t)) {
        if (lua_getfield(L, -1, ORDER_FIELD) == LUA_TTABLE) {
            int order = lua_gettop(L);
            lua_Integer len = (lua_Integer)lua_rawlen(L, order);
            for (lua_Integer i = 1; i <= len; i++) {
                lua_rawgeti(L, order, i);
                lua_pushvalue(L, -1);
                int present = lua_rawget(L, t) != LUA_TNIL;
                lua_pop(L, 1);
                lua_pushvalue(L, -1);
                int dup = lua_rawget(L, seen) != LUA_TNIL;
                lua_pop(L, 1);
                if (present && !dup) {
                    lua_pushvalue(L, -1);
                    lua_pushboolean(L, 1);
                    lua_rawset(L, seen);
                    lua_rawseti(L, out, ++n);
                } else {
                    lua_pop(L, 1);
                }
            }
        }
        lua_pop(L, 2);
    }
    /* The rest: their texts sorted (C strings anchored as keys of by_text,
     * which maps each text back to the original key). */
    size_t rest = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        if (lua_rawget(L, seen) == LUA_TNIL)
            rest++;
        lua_pop(L, 1);
    }
    if (rest) {
        const char **keys = lua_newuserdatauv(L, rest * sizeof *keys, 0);
        lua_newtable(L);
        int by_text = lua_gettop(L);
        size_t k = 0;
        lua_pushnil(L);
        while (lua_next(L, t)) {
            lua_pop(L, 1);
            int key = lua_gettop(L);
            lua_pushvalue(L, key);
            int done = lua_rawget(L, seen) != LUA_TNIL;
            lua_pop(L, 1);
            if (done)
                continue;
            lua_pushstring(L, key_text(L, key, cv));
            int text = lua_gettop(L);
            lua_pushvalue(L, text);
            if (lua_rawget(L, by_text) != LUA_TNIL)
                luaL_argerror(L, cv->arg, lua_pushfstring(L, "%s: two keys read '%s'", cv->what,
                                                          lua_tostring(L, text)));
            lua_pop(L, 1);
            lua_pushvalue(L, text);
            lua_pushvalue(L, key);
            lua_rawset(L, by_text);
            if (k < rest)
                keys[k++] = lua_tostring(L, text);
            lua_settop(L, key);
        }
        qsort(keys, k, sizeof *keys, compare_strings);
        for (int pass = 0; pass < 2; pass++) {
            for (size_t i = 0; i < k; i++) {
                if ((strcmp(keys[i], "_id") == 0) != (pass == 0))
                    continue;
                lua_getfield(L, by_text, keys[i]);
                lua_rawseti(L, out, ++n);
            }
        }
        lua_pop(L, 2);
    }
    lua_pop(L, 1); /* seen */
}

static void fill(lua_State *L, int idx, jj_yaml_node *container, const conv *cv, int depth)
{
    if (depth > JJ_MONGO_MAX_DEPTH)
        luaL_argerror(L, cv->arg,
                      lua_pushfstring(L, "%s: nested deeper than %d levels (a cycle?)", cv->what,
                                      JJ_MONGO_MAX_DEPTH));
    luaL_checkstack(L, 12, "document nested too deeply");
    idx = lua_absindex(L, idx);
    if (jj_yaml_type_of(container) == JJ_YAML_SEQ) {
        lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
        for (lua_Integer i = 1; i <= n; i++) {
            lua_rawgeti(L, idx, i);
            if (lua_isnil(L, -1))
                luaL_argerror(L, cv->arg,
                              lua_pushfstring(L, "%s: array has a hole at %I", cv->what, i));
            attach(L, lua_gettop(L), container, NULL, cv, depth);
            lua_pop(L, 1);
        }
        return;
    }
    push_key_order(L, idx, cv);
    int order = lua_gettop(L);
    lua_Integer n = (lua_Integer)lua_rawlen(L, order);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, order, i);
        int key = lua_gettop(L);
        const char *text = key_text(L, key, cv); /* may push a string: anchored */
        lua_pushvalue(L, key);
        lua_rawget(L, idx);
        attach(L, lua_gettop(L), container, text, cv, depth);
        lua_settop(L, order);
    }
    lua_pop(L, 1);
}

/* Converts the table at arg into a mapping held in slot `slot` of s. */
static jj_yaml_node *check_doc(lua_State *L, int arg, scratch *s, int slot, const char *what)
{
    luaL_checktype(L, arg, LUA_TTABLE);
    if (is_marked_array(L, arg) || proper_array_len(L, arg))
        luaL_argerror(L, arg, lua_pushfstring(L, "%s must be a document, not an array", what));
    s->n[slot] = jj_yaml_new_map();
    if (!s->n[slot])
        raise_nomem(L);
    conv cv = {what, arg};
    fill(L, arg, s->n[slot], &cv, 1);
    return s->n[slot];
}

static jj_yaml_node *opt_doc(lua_State *L, int arg, scratch *s, int slot, const char *what)
{
    return lua_isnoneornil(L, arg) ? NULL : check_doc(L, arg, s, slot, what);
}

/* ---- tree -> Lua ----------------------------------------------------------- */

static void push_node(lua_State *L, const jj_yaml_node *n)
{
    luaL_checkstack(L, 6, "mongo document nested too deeply");
    size_t len;
    const char *text;
    switch (jj_yaml_type_of(n)) {
    case JJ_YAML_NULL: lua_pushvalue(L, NULL_UPVALUE); return;
    case JJ_YAML_BOOL: lua_pushboolean(L, jj_yaml_bool(n)); return;
    case JJ_YAML_INT: lua_pushinteger(L, (lua_Integer)jj_yaml_int(n)); return;
    case JJ_YAML_FLOAT: lua_pushnumber(L, (lua_Number)jj_yaml_float(n)); return;
    case JJ_YAML_STRING:
        text = jj_yaml_text(n, &len);
        lua_pushlstring(L, text ? text : "", text ? len : 0);
        return;
    case JJ_YAML_SEQ:
    case JJ_YAML_MAP: break;
    }
    size_t count = jj_yaml_count(n);
    int seq = jj_yaml_type_of(n) == JJ_YAML_SEQ;
    lua_createtable(L, seq ? (int)count : 0, seq ? 0 : (int)count);
    if (seq)
        luaL_setmetatable(L, ARRAY_MT);
    for (size_t i = 0; i < count; i++) {
        if (seq) {
            push_node(L, jj_yaml_seq_at(n, i));
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        } else {
            text = jj_yaml_text(jj_yaml_map_key_at(n, i), &len);
            lua_pushlstring(L, text ? text : "", text ? len : 0);
            push_node(L, jj_yaml_map_value_at(n, i));
            lua_rawset(L, -3);
        }
    }
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

static void check_option_names(lua_State *L, int idx, const char *const *known)
{
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        int ok = 0;
        for (int i = 0; k && known[i]; i++)
            ok |= strcmp(k, known[i]) == 0;
        if (!ok)
            luaL_error(L, "unknown option '%s'", k ? k : luaL_typename(L, -1));
    }
}

static const char *opt_string(lua_State *L, int idx, const char *field)
{
    int t = lua_getfield(L, idx, field);
    if (t != LUA_TNIL && t != LUA_TSTRING)
        luaL_error(L, "bad option '%s' (string expected, got %s)", field, luaL_typename(L, -1));
    const char *v = lua_tostring(L, -1);
    lua_pop(L, 1); /* anchored by the options table */
    return v;
}

static int opt_bool(lua_State *L, int idx, const char *field)
{
    int t = lua_getfield(L, idx, field);
    if (t != LUA_TNIL && t != LUA_TBOOLEAN)
        luaL_error(L, "bad option '%s' (boolean expected, got %s)", field, luaL_typename(L, -1));
    int v = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
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
        check_option_names(L, 2, known);
        o.app_name = opt_string(L, 2, "app_name");
        o.username = opt_string(L, 2, "username");
        o.password = opt_string(L, 2, "password");
        o.auth_source = opt_string(L, 2, "auth_source");
        int t = lua_getfield(L, 2, "tls");
        if (t == LUA_TBOOLEAN) {
            o.tls = lua_toboolean(L, -1);
        } else if (t == LUA_TTABLE) {
            int tls = lua_gettop(L);
            check_option_names(L, tls, tls_known);
            o.tls = 1;
            o.tls_ca_file = opt_string(L, tls, "ca_file");
            o.tls_cert_key_file = opt_string(L, tls, "cert_key_file");
            o.tls_allow_invalid_hostnames = opt_bool(L, tls, "allow_invalid_hostnames");
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
            ordered = lua_getfield(L, -1, ORDER_FIELD) == LUA_TTABLE;
            lua_pop(L, 2);
        }
        luaL_argcheck(L, ordered, 3,
                      "a command with several keys needs a key order (juju.yaml.ordered), "
                      "command name first");
    }
    scratch *s = push_scratch(L);
    jj_yaml_node *cmd = check_doc(L, 3, s, 0, "command");
    jj_error err;
    if (jj_mongo_command(lc->c, db, cmd, &s->n[1], &err) != 0)
        return push_failure(L, &err);
    push_node(L, s->n[1]);
    return 1;
}

static int client_insert(lua_State *L)
{
    lua_client *lc = check_client(L);
    const char *db = check_name(L, 2, "database");
    const char *coll = check_name(L, 3, "collection");
    lua_settop(L, 4);
    scratch *s = push_scratch(L);
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
    scratch *s = push_scratch(L);
    jj_yaml_node *filter = opt_doc(L, 4, s, 0, "filter");
    jj_error err;
    if (jj_mongo_find_one(lc->c, db, coll, filter, &s->n[1], &err) != 0)
        return push_failure(L, &err);
    push_node(L, s->n[1]);
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
    scratch *s = push_scratch(L);
    jj_yaml_node *filter = opt_doc(L, 4, s, 0, "filter");
    jj_mongo_find_opts fo = {NULL, NULL, 0};
    if (!lua_isnil(L, 5)) {
        luaL_checktype(L, 5, LUA_TTABLE);
        check_option_names(L, 5, known);
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
    if (jj_mongo_find(lc->c, db, coll, filter, &fo, &s->n[3], &err) != 0)
        return push_failure(L, &err);
    push_node(L, s->n[3]);
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
    scratch *s = push_scratch(L);
    jj_yaml_node *filter = check_doc(L, 4, s, 0, "filter");
    jj_yaml_node *update = check_doc(L, 5, s, 1, "update");
    unsigned flags = 0;
    if (!lua_isnil(L, 6)) {
        luaL_checktype(L, 6, LUA_TTABLE);
        check_option_names(L, 6, known);
        if (opt_bool(L, 6, "upsert"))
            flags |= JJ_MONGO_UPSERT;
        if (opt_bool(L, 6, "multi"))
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
    scratch *s = push_scratch(L);
    jj_yaml_node *filter = opt_doc(L, 4, s, 0, "filter");
    int64_t removed = 0;
    jj_error err;
    if (jj_mongo_remove(lc->c, db, coll, filter, &removed, &err) != 0)
        return push_failure(L, &err);
    lua_pushinteger(L, (lua_Integer)removed);
    return 1;
}

/* Pushes the null sentinel shared with juju.yaml (see bindings/json.c). */
static void push_shared_null(lua_State *L, int yaml)
{
    if (lua_getfield(L, LUA_REGISTRYINDEX, NULL_KEY) == LUA_TLIGHTUSERDATA)
        return;
    lua_pop(L, 1);
    lua_getfield(L, yaml, "null");
    if (lua_type(L, -1) != LUA_TLIGHTUSERDATA)
        luaL_error(L, "juju.yaml has no null sentinel");
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, NULL_KEY);
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
    static const luaL_Reg scratch_meta[] = {{"__gc", scratch_gc}, {NULL, NULL}};
    jj_new_class(L, SCRATCH_MT, NULL, scratch_meta);

    /* juju.yaml owns null and the array metatable: load it first. */
    lua_getglobal(L, "require");
    lua_pushliteral(L, "juju.yaml");
    lua_call(L, 1, 1);
    int yaml = lua_gettop(L);
    luaL_checktype(L, yaml, LUA_TTABLE);

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
    /* Methods and metamethods share the null upvalue. */
    luaL_newmetatable(L, CLIENT_MT);
    push_shared_null(L, yaml);
    luaL_setfuncs(L, meta, 1);
    luaL_newlibtable(L, methods);
    push_shared_null(L, yaml);
    luaL_setfuncs(L, methods, 1);
    lua_setfield(L, -2, "__index");
    lua_pushliteral(L, CLIENT_MT);
    lua_setfield(L, -2, "__name");
    lua_pop(L, 1);

    static const luaL_Reg funcs[] = {{"client", l_client}, {NULL, NULL}};
    luaL_newlibtable(L, funcs);
    push_shared_null(L, yaml);
    luaL_setfuncs(L, funcs, 1);
    push_shared_null(L, yaml);
    lua_setfield(L, -2, "null");
    return 1;
}
