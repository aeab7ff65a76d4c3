/* json.c: the juju.json module, Lua values <-> JSON text via core/json.
 *
 *   json.decode(text [, source])  -> value | nil, "source:line:col: msg", "EINVAL"
 *   json.encode(value [, opts])   -> text  | nil, msg, "EINVAL"   (opts.indent)
 *   json.null, json.array(t), json.ordered(t, keys), json.is_array(t)
 *
 * Values look exactly like juju.yaml's: arrays carry the shared metatable
 * "juju.yaml.array", null is juju.yaml's light userdata sentinel, key order
 * comes from the metatable's __yaml_order. juju.yaml owns them (it is loaded
 * first); the conversion is bindings/tree.c, shared with juju.yaml.
 */
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "json.h"
#include "tree.h"

static int l_decode(lua_State *L)
{
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    const char *source = luaL_optstring(L, 2, "json");
    jj_tree_scratch *s = jj_tree_push_scratch(L);
    jj_error err;
    if (jj_json_parse(text, len, source, &s->node[0], &err) != 0)
        return jj_push_error(L, &err);
    /* JSON keys are strings: distinct texts are distinct Lua keys. */
    jj_tree_decoding how = {1, 0, source, JJ_EINVAL};
    if (jj_tree_push(L, s->node[0], &how, &err))
        return jj_push_error(L, &err);
    jj_tree_scratch_clear(s);
    return 1;
}

static int l_encode(lua_State *L)
{
    luaL_checkany(L, 1);
    int indent = 0;
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        lua_getfield(L, 2, "indent");
        if (!lua_isnil(L, -1)) {
            if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0 || lua_tointeger(L, -1) > 16)
                return luaL_error(L, "bad option 'indent' (integer 0..16 expected)");
            indent = (int)lua_tointeger(L, -1);
        }
        lua_pop(L, 1);
    }
    lua_settop(L, 2);
    /* Keys in __yaml_order first, the rest sorted by their bytes (Go sorts
     * map keys); integer keys written in decimal, as Go writes int keys. */
    static const jj_tree_encoding how = {
        .keys = JJ_TREE_KEY_STRING | JJ_TREE_KEY_INTEGER,
        .text_keys = 1,
        .max_depth = JJ_JSON_MAX_DEPTH,
        .code = JJ_EINVAL,
        .noun = "object",
    };
    jj_tree_scratch *s = jj_tree_push_scratch(L);
    jj_error err;
    jj_error_clear(&err);
    if (jj_tree_encode(L, 1, &how, &s->node[0], &err))
        return jj_push_error(L, &err);
    size_t len;
    if (jj_json_emit(s->node[0], indent, &s->text, &len, &err) != 0)
        return jj_push_error(L, &err);
    lua_pushlstring(L, s->text, len);
    jj_tree_scratch_clear(s);
    return 1;
}

int luaopen_juju_json(lua_State *L);
int luaopen_juju_json(lua_State *L)
{
    /* juju.yaml owns null and the array metatable: load it first. */
    jj_tree_require_yaml(L);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "juju.yaml");
    lua_call(L, 1, 1);
    int yaml = lua_gettop(L);

    static const luaL_Reg funcs[] = {{"decode", l_decode}, {"encode", l_encode}, {NULL, NULL}};
    luaL_newlib(L, funcs);
    int module = lua_gettop(L);
    jj_tree_push_null(L);
    lua_setfield(L, module, "null");
    static const char *const aliases[] = {"array", "ordered", "is_array", NULL};
    for (int i = 0; aliases[i]; i++) {
        lua_getfield(L, yaml, aliases[i]);
        luaL_checktype(L, -1, LUA_TFUNCTION);
        lua_setfield(L, module, aliases[i]);
    }
    return 1;
}
