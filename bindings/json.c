/* json.c: the juju.json module, Lua values <-> JSON text via core/json.
 *
 *   json.decode(text [, source])  -> value | nil, "source:line:col: msg", "EINVAL"
 *   json.encode(value [, opts])   -> text  | nil, msg, "EINVAL"   (opts.indent)
 *   json.null, json.array(t), json.ordered(t, keys), json.is_array(t)
 *
 * Values look exactly like juju.yaml's: arrays carry the shared metatable
 * "juju.yaml.array", null is juju.yaml's light userdata sentinel, key order
 * comes from the metatable's __yaml_order. yaml.null is an address inside
 * yaml.so, so this module takes the value from juju.yaml when it opens and
 * keeps it as an upvalue (and in the registry under "juju.null", where any
 * later module can find the same value). Trees and text live in a scratch
 * userdata while Lua values are built, so a Lua error frees them via __gc.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "json.h"

#define ARRAY_MT "juju.yaml.array"
#define SCRATCH_MT "juju.json.Scratch"
#define ORDER_FIELD "__yaml_order"
#define NULL_KEY "juju.null"
#define NULL_UPVALUE lua_upvalueindex(1)

/* --- scratch: owns C memory while Lua values are being made -------------- */

typedef struct scratch {
    jj_yaml_node *node;
    char *text;
} scratch;

static int scratch_gc(lua_State *L)
{
    scratch *s = luaL_checkudata(L, 1, SCRATCH_MT);
    jj_yaml_free(s->node);
    s->node = NULL;
    free(s->text);
    s->text = NULL;
    return 0;
}

static scratch *push_scratch(lua_State *L)
{
    scratch *s = lua_newuserdatauv(L, sizeof *s, 0);
    s->node = NULL;
    s->text = NULL;
    luaL_setmetatable(L, SCRATCH_MT);
    return s;
}

static inline int is_null(lua_State *L, int idx)
{
    return lua_type(L, idx) == LUA_TLIGHTUSERDATA && lua_rawequal(L, idx, NULL_UPVALUE);
}

/* --- arrays ---------------------------------------------------------------- */

static inline int is_marked_array(lua_State *L, int idx)
{
    if (!lua_getmetatable(L, idx))
        return 0;
    luaL_getmetatable(L, ARRAY_MT);
    int same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return same;
}

/* A non-empty table whose keys are exactly 1..n (as juju.yaml decides). */
static int is_proper_array(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
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
    return count > 0 && max == count;
}

/* --- decode ---------------------------------------------------------------- */

static void push_node(lua_State *L, const jj_yaml_node *n)
{
    size_t len;
    const char *text;
    luaL_checkstack(L, 6, "json document nested too deeply");
    switch (jj_yaml_type_of(n)) {
    case JJ_YAML_BOOL: lua_pushboolean(L, jj_yaml_bool(n)); return;
    case JJ_YAML_INT: lua_pushinteger(L, (lua_Integer)jj_yaml_int(n)); return;
    case JJ_YAML_FLOAT: lua_pushnumber(L, (lua_Number)jj_yaml_float(n)); return;
    case JJ_YAML_STRING:
        text = jj_yaml_text(n, &len);
        lua_pushlstring(L, text ? text : "", text ? len : 0);
        return;
    case JJ_YAML_NULL: lua_pushvalue(L, NULL_UPVALUE); return;
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
            /* JSON keys are strings: distinct texts are distinct Lua keys. */
            text = jj_yaml_text(jj_yaml_map_key_at(n, i), &len);
            lua_pushlstring(L, text ? text : "", text ? len : 0);
            push_node(L, jj_yaml_map_value_at(n, i));
            lua_rawset(L, -3);
        }
    }
}

static int l_decode(lua_State *L)
{
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    const char *source = luaL_optstring(L, 2, "json");
    scratch *s = push_scratch(L);
    jj_error err;
    if (jj_json_parse(text, len, source, &s->node, &err) != 0)
        return jj_push_error(L, &err);
    push_node(L, s->node);
    jj_yaml_free(s->node);
    s->node = NULL;
    return 1;
}

/* --- encode ---------------------------------------------------------------- */

typedef struct encoder {
    scratch *s;
    int visiting; /* stack index of the set of tables being encoded */
    int depth;
    jj_error err;
} encoder;

typedef struct key_slot {
    const char *s;   /* a string key's text (the table keeps it alive), or NULL */
    size_t len;
    char num[24];    /* integer keys as decimal text, as Go writes int map keys */
    lua_Integer order; /* position in __yaml_order, or LUA_MAXINTEGER */
    lua_Integer index; /* enumeration position, to fetch the value again */
} key_slot;

/* The key's text; never stored as a pointer into num, which qsort moves. */
static inline const char *key_text(const key_slot *k)
{
    return k->s ? k->s : k->num;
}

static int compare_keys(const void *pa, const void *pb)
{
    const key_slot *a = pa, *b = pb;
    if (a->order != b->order)
        return a->order < b->order ? -1 : 1;
    size_t m = a->len < b->len ? a->len : b->len;
    int c = memcmp(key_text(a), key_text(b), m);
    return c ? c : (a->len < b->len ? -1 : a->len > b->len);
}

/* Pushes a table {key = position} from the metatable's __yaml_order, or nil. */
static void push_order_index(lua_State *L, int t)
{
    if (!lua_getmetatable(L, t)) {
        lua_pushnil(L);
        return;
    }
    lua_getfield(L, -1, ORDER_FIELD);
    lua_remove(L, -2);
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        lua_pushnil(L);
        return;
    }
    int order = lua_gettop(L);
    lua_newtable(L);
    lua_Integer n = (lua_Integer)lua_rawlen(L, order);
    for (lua_Integer i = n; i >= 1; i--) { /* backwards: the first mention wins */
        if (lua_rawgeti(L, order, i) == LUA_TNIL) {
            lua_pop(L, 1);
            continue;
        }
        lua_pushinteger(L, i);
        lua_rawset(L, -3);
    }
    lua_remove(L, order);
}

static int encode_into(lua_State *L, int idx, encoder *e, jj_yaml_node *parent, jj_yaml_node *key);

static int fail(encoder *e, const char *fmt, const char *what)
{
    return jj_error_set(&e->err, JJ_EINVAL, fmt, what);
}

/* Fills map from table t: keys in __yaml_order first, the rest sorted by
 * their bytes (Go sorts map keys). */
static int fill_map(lua_State *L, int t, encoder *e, jj_yaml_node *map)
{
    push_order_index(L, t);
    int order = lua_gettop(L);
    size_t n = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        n++;
    }
    key_slot *keys = lua_newuserdatauv(L, (n ? n : 1) * sizeof *keys, 0);
    lua_newtable(L); /* enumeration position -> key, to fetch values in sorted order */
    int by_index = lua_gettop(L);
    size_t k = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        key_slot *slot = &keys[k];
        memset(slot, 0, sizeof *slot);
        slot->index = (lua_Integer)k + 1;
        if (lua_type(L, -1) == LUA_TSTRING) {
            slot->s = lua_tolstring(L, -1, &slot->len); /* a string: no conversion */
        } else if (lua_isinteger(L, -1)) {
            snprintf(slot->num, sizeof slot->num, LUA_INTEGER_FMT, lua_tointeger(L, -1));
            slot->len = strlen(slot->num);
        } else {
            const char *what = lua_type(L, -1) == LUA_TNUMBER ? "non-integer number"
                                                              : luaL_typename(L, -1);
            lua_pop(L, 1);
            return fail(e, "cannot encode an object key of type %s", what);
        }
        slot->order = LUA_MAXINTEGER;
        if (!lua_isnil(L, order)) {
            lua_pushvalue(L, -1);
            if (lua_rawget(L, order) == LUA_TNUMBER)
                slot->order = lua_tointeger(L, -1);
            lua_pop(L, 1);
        }
        lua_pushvalue(L, -1);
        lua_rawseti(L, by_index, slot->index);
        k++;
    }
    qsort(keys, n, sizeof *keys, compare_keys);
    for (size_t i = 0; i < n; i++) {
        jj_yaml_node *key = jj_yaml_new_stringn(key_text(&keys[i]), keys[i].len);
        if (!key)
            return jj_error_set(&e->err, JJ_ENOMEM, "json: out of memory");
        lua_rawgeti(L, by_index, keys[i].index);
        lua_rawget(L, t);
        size_t before = jj_yaml_count(map);
        int rc = encode_into(L, lua_gettop(L), e, map, key);
        lua_pop(L, 1);
        if (rc)
            return rc;
        if (jj_yaml_count(map) == before) /* 2 and "2" are one JSON key */
            return fail(e, "cannot encode a table with two keys written \"%s\"", key_text(&keys[i]));
    }
    lua_pop(L, 3); /* by_index, keys, order */
    return 0;
}

static int fill_seq(lua_State *L, int t, encoder *e, jj_yaml_node *seq)
{
    lua_Integer n = (lua_Integer)lua_rawlen(L, t);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, t, i);
        int rc = encode_into(L, lua_gettop(L), e, seq, NULL);
        lua_pop(L, 1);
        if (rc)
            return rc;
    }
    return 0;
}

static int encode_table(lua_State *L, int t, encoder *e, jj_yaml_node *n)
{
    luaL_checkstack(L, 12, "table nested too deeply");
    if (e->depth >= JJ_JSON_MAX_DEPTH)
        return jj_error_set(&e->err, JJ_EINVAL, "table nested more than %d levels deep",
                            JJ_JSON_MAX_DEPTH);
    lua_pushvalue(L, t);
    if (lua_rawget(L, e->visiting) != LUA_TNIL) {
        lua_pop(L, 1);
        return jj_error_set(&e->err, JJ_EINVAL, "cannot encode a table that contains itself");
    }
    lua_pop(L, 1);
    lua_pushvalue(L, t);
    lua_pushboolean(L, 1);
    lua_rawset(L, e->visiting);
    e->depth++;
    int rc = jj_yaml_type_of(n) == JJ_YAML_SEQ ? fill_seq(L, t, e, n) : fill_map(L, t, e, n);
    e->depth--;
    lua_pushvalue(L, t);
    lua_pushnil(L);
    lua_rawset(L, e->visiting);
    return rc;
}

/* A node for the value at idx: scalars complete, tables as an empty
 * collection that encode_table fills once it is attached. */
static int make_node(lua_State *L, int idx, encoder *e, jj_yaml_node **out)
{
    size_t len;
    const char *str;
    *out = NULL;
    switch (lua_type(L, idx)) {
    case LUA_TNIL: *out = jj_yaml_new_null(); break;
    case LUA_TBOOLEAN: *out = jj_yaml_new_bool(lua_toboolean(L, idx)); break;
    case LUA_TNUMBER:
        *out = lua_isinteger(L, idx) ? jj_yaml_new_int((int64_t)lua_tointeger(L, idx))
                                     : jj_yaml_new_float((double)lua_tonumber(L, idx));
        break;
    case LUA_TSTRING:
        str = lua_tolstring(L, idx, &len);
        *out = jj_yaml_new_stringn(str, len);
        break;
    case LUA_TLIGHTUSERDATA:
        if (!is_null(L, idx))
            return fail(e, "cannot encode a %s", "light userdata");
        *out = jj_yaml_new_null();
        break;
    case LUA_TTABLE:
        *out = is_marked_array(L, idx) || is_proper_array(L, idx) ? jj_yaml_new_seq()
                                                                  : jj_yaml_new_map();
        break;
    default: return fail(e, "cannot encode a %s", luaL_typename(L, idx));
    }
    if (!*out)
        return jj_error_set(&e->err, JJ_ENOMEM, "json: out of memory");
    return 0;
}

/* Converts the value at idx and attaches it to parent (under key, which is
 * taken over) or as the root, before filling it: a Lua error at any point
 * leaves every node reachable from the scratch. */
static int encode_into(lua_State *L, int idx, encoder *e, jj_yaml_node *parent, jj_yaml_node *key)
{
    jj_yaml_node *n;
    int rc = make_node(L, idx, e, &n);
    if (rc) {
        jj_yaml_free(key);
        return rc;
    }
    if (!parent)
        e->s->node = n;
    else if (key)
        rc = jj_yaml_map_put(parent, key, n, &e->err); /* fill_map spots a repeated key */
    else
        rc = jj_yaml_seq_append(parent, n, &e->err);
    if (rc)
        return rc;
    jj_yaml_type type = jj_yaml_type_of(n);
    if (type == JJ_YAML_SEQ || type == JJ_YAML_MAP)
        return encode_table(L, idx, e, n);
    return 0;
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
    scratch *s = push_scratch(L);
    encoder e;
    e.s = s;
    e.depth = 0;
    jj_error_clear(&e.err);
    lua_newtable(L);
    e.visiting = lua_gettop(L);
    int rc = encode_into(L, 1, &e, NULL, NULL);
    if (rc)
        return jj_push_error(L, &e.err);
    size_t len;
    if (jj_json_emit(s->node, indent, &s->text, &len, &e.err) != 0)
        return jj_push_error(L, &e.err);
    lua_pushlstring(L, s->text, len);
    free(s->text);
    s->text = NULL;
    jj_yaml_free(s->node);
    s->node = NULL;
    return 1;
}

/* Pushes the null sentinel shared with juju.yaml. */
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

int luaopen_juju_json(lua_State *L);
int luaopen_juju_json(lua_State *L)
{
    static const luaL_Reg scratch_meta[] = {{"__gc", scratch_gc}, {NULL, NULL}};
    jj_new_class(L, SCRATCH_MT, NULL, scratch_meta);

    /* juju.yaml owns null and the array metatable: load it first. */
    lua_getglobal(L, "require");
    lua_pushliteral(L, "juju.yaml");
    lua_call(L, 1, 1);
    int yaml = lua_gettop(L);
    luaL_checktype(L, yaml, LUA_TTABLE);

    static const luaL_Reg funcs[] = {{"decode", l_decode}, {"encode", l_encode}, {NULL, NULL}};
    luaL_newlibtable(L, funcs);
    int module = lua_gettop(L);
    push_shared_null(L, yaml);
    luaL_setfuncs(L, funcs, 1);
    push_shared_null(L, yaml);
    lua_setfield(L, module, "null");
    static const char *const aliases[] = {"array", "ordered", "is_array", NULL};
    for (int i = 0; aliases[i]; i++) {
        lua_getfield(L, yaml, aliases[i]);
        luaL_checktype(L, -1, LUA_TFUNCTION);
        lua_setfield(L, module, aliases[i]);
    }
    return 1;
}
