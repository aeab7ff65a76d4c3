/* yaml.c: the juju.yaml module, Lua values <-> core/yaml documents.
 *
 *   yaml.decode(text [, source [, opts]]) -> value [, marks] | nil, msg, "YAML_PARSE"
 *     marks[table] = {__self = {line=, column=}, [key] = {line=, column= [, text=]}}
 *   yaml.encode(value [, opts])           -> text | nil, msg, "YAML_EMIT"
 *   yaml.null, yaml.array(t), yaml.ordered(t, keys), yaml.is_array(t)
 *
 * Mappings become tables, sequences tables marked with the shared metatable
 * "juju.yaml.array" (so an empty list stays a list), null the light userdata
 * yaml.null (so `key:` is visible in a table). The conversion itself is
 * bindings/tree.c, shared with juju.json, juju.mongo and juju.config; this
 * module owns the null sentinel and the array metatable they all use.
 *
 * Binds core/yaml.h and core/doc.h (the document model, with bindings/tree.c).
 */
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "tree.h"
#include "yaml.h"

/* yaml.null: the address is the identity; nothing is ever stored there. */
static const char null_sentinel = 0;

static size_t opt_size_field(lua_State *L, int opts, const char *name)
{
    if (!opts)
        return 0;
    lua_getfield(L, opts, name);
    lua_Integer v = 0;
    if (!lua_isnil(L, -1)) {
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1)
            luaL_error(L, "bad option '%s' (positive integer expected)", name);
        v = lua_tointeger(L, -1);
    }
    lua_pop(L, 1);
    return (size_t)v;
}

static int l_decode(lua_State *L)
{
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    const char *source = luaL_optstring(L, 2, "yaml");
    int opts = 0;
    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        opts = 3;
    }
    int want_marks = 0;
    if (opts) {
        lua_getfield(L, opts, "marks");
        want_marks = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    jj_yaml_limits limits = {0, 0};
    limits.max_nodes = opt_size_field(L, opts, "max_nodes");
    size_t depth = opt_size_field(L, opts, "max_depth");
    limits.max_depth = depth > 100000 ? 100000 : (int)depth;

    jj_tree_scratch *s = jj_tree_push_scratch(L);
    jj_error err;
    jj_error_clear(&err);
    if (jj_yaml_parse(text, len, source, &limits, &s->node[0], &err))
        return jj_push_error(L, &err);
    jj_tree_decoding how = {0, 0, source, JJ_EYAML_PARSE};
    if (want_marks) {
        lua_newtable(L);
        how.marks = lua_gettop(L);
    }
    if (jj_tree_push(L, s->node[0], &how, &err))
        return jj_push_error(L, &err);
    jj_tree_scratch_clear(s);
    if (want_marks) {
        lua_pushvalue(L, how.marks);
        return 2;
    }
    return 1;
}

static int l_encode(lua_State *L)
{
    luaL_checkany(L, 1);
    if (!lua_isnoneornil(L, 2))
        luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    static const jj_tree_encoding how = {
        .keys = JJ_TREE_KEY_STRING | JJ_TREE_KEY_INTEGER | JJ_TREE_KEY_FLOAT |
                JJ_TREE_KEY_BOOLEAN | JJ_TREE_KEY_NULL,
        .max_depth = JJ_YAML_DEFAULT_MAX_DEPTH,
        .code = JJ_EYAML_EMIT,
        .noun = "mapping",
    };
    jj_tree_scratch *s = jj_tree_push_scratch(L);
    jj_error err;
    jj_error_clear(&err);
    if (jj_tree_encode(L, 1, &how, &s->node[0], &err))
        return jj_push_error(L, &err);
    size_t len;
    if (jj_yaml_emit(s->node[0], &s->text, &len, &err))
        return jj_push_error(L, &err);
    lua_pushlstring(L, s->text, len);
    jj_tree_scratch_clear(s);
    return 1;
}

/* --- marking helpers ------------------------------------------------------- */

static int l_array(lua_State *L)
{
    if (lua_isnoneornil(L, 1)) {
        lua_newtable(L);
    } else {
        luaL_checktype(L, 1, LUA_TTABLE);
        lua_settop(L, 1);
    }
    if (lua_getmetatable(L, 1)) {
        luaL_getmetatable(L, JJ_TREE_ARRAY_MT);
        luaL_argcheck(L, lua_rawequal(L, -1, -2), 1, "table already has a metatable");
        lua_pop(L, 2);
        return 1;
    }
    luaL_setmetatable(L, JJ_TREE_ARRAY_MT);
    return 1;
}

static int l_ordered(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    luaL_argcheck(L, !jj_tree_is_marked_array(L, 1), 1, "a sequence has no key order");
    if (!lua_getmetatable(L, 1)) {
        lua_createtable(L, 0, 1);
        lua_pushvalue(L, -1);
        lua_setmetatable(L, 1);
    }
    lua_pushvalue(L, 2);
    lua_setfield(L, -2, JJ_TREE_ORDER_FIELD);
    lua_settop(L, 1);
    return 1;
}

static int l_is_array(lua_State *L)
{
    lua_pushboolean(L, lua_istable(L, 1) && jj_tree_is_sequence(L, 1));
    return 1;
}

int luaopen_juju_yaml(lua_State *L);
int luaopen_juju_yaml(lua_State *L)
{
    luaL_newmetatable(L, JJ_TREE_ARRAY_MT);
    lua_pop(L, 1);
    lua_pushlightuserdata(L, (void *)&null_sentinel);
    lua_setfield(L, LUA_REGISTRYINDEX, JJ_TREE_NULL_KEY);

    static const luaL_Reg funcs[] = {
        {"decode", l_decode},   {"encode", l_encode},     {"array", l_array},
        {"ordered", l_ordered}, {"is_array", l_is_array}, {NULL, NULL},
    };
    luaL_newlib(L, funcs);
    jj_tree_push_null(L);
    lua_setfield(L, -2, "null");
    return 1;
}
