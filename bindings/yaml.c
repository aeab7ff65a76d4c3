/* yaml.c: the juju.yaml module, Lua values <-> core/yaml documents.
 *
 *   yaml.decode(text [, source [, opts]]) -> value [, marks] | nil, msg, "YAML_PARSE"
 *     marks[table] = {__self = {line=, column=}, [key] = {line=, column= [, text=]}}
 *   yaml.encode(value [, opts])           -> text | nil, msg, "YAML_EMIT"
 *   yaml.null, yaml.array(t), yaml.ordered(t, keys), yaml.is_array(t)
 *
 * Mappings become tables, sequences tables marked with the shared metatable
 * "juju.yaml.array" (so an empty list stays a list), null the light userdata
 * yaml.null (so `key:` is visible in a table). Trees and emitted text live in
 * a scratch userdata while Lua values are built, so a Lua error (out of
 * memory) frees them through __gc instead of leaking.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "yaml.h"

#define ARRAY_MT "juju.yaml.array"
#define SCRATCH_MT "juju.yaml.Scratch"
#define ORDER_FIELD "__yaml_order"

/* yaml.null: the address is the identity; nothing is ever stored there. */
static const char null_sentinel = 0;

static inline void push_null(lua_State *L)
{
    lua_pushlightuserdata(L, (void *)&null_sentinel);
}

static inline int is_null(lua_State *L, int idx)
{
    return lua_type(L, idx) == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == &null_sentinel;
}

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

/* --- marking --------------------------------------------------------------- */

static inline int is_marked_array(lua_State *L, int idx)
{
    if (!lua_getmetatable(L, idx))
        return 0;
    luaL_getmetatable(L, ARRAY_MT);
    int same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return same;
}

/* A non-empty table whose keys are exactly 1..n. */
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

static inline int encodes_as_sequence(lua_State *L, int idx)
{
    return is_marked_array(L, idx) || is_proper_array(L, idx);
}

/* --- decode ---------------------------------------------------------------- */

typedef struct decoder {
    int marks; /* stack index of the marks table, 0 when not wanted */
    const char *source;
    jj_error err;
} decoder;

static void push_mark(lua_State *L, jj_yaml_mark m)
{
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, m.line);
    lua_setfield(L, -2, "line");
    lua_pushinteger(L, m.column);
    lua_setfield(L, -2, "column");
}

/* Numbers and booleans lose their spelling in Lua (14.10 is 14.1, yes is
 * true); the mark keeps it as `text` so juju.config can use what was
 * written when a string is wanted. */
static void push_source_text(lua_State *L, const jj_yaml_node *n)
{
    jj_yaml_type type = jj_yaml_type_of(n);
    if (type != JJ_YAML_INT && type != JJ_YAML_FLOAT && type != JJ_YAML_BOOL)
        return;
    size_t len;
    const char *text = jj_yaml_text(n, &len);
    lua_pushlstring(L, text, len);
    lua_setfield(L, -2, "text");
}

static void push_scalar(lua_State *L, const jj_yaml_node *n)
{
    size_t len;
    const char *text;
    switch (jj_yaml_type_of(n)) {
    case JJ_YAML_BOOL: lua_pushboolean(L, jj_yaml_bool(n)); break;
    case JJ_YAML_INT: lua_pushinteger(L, (lua_Integer)jj_yaml_int(n)); break;
    case JJ_YAML_FLOAT: lua_pushnumber(L, (lua_Number)jj_yaml_float(n)); break;
    case JJ_YAML_STRING:
        text = jj_yaml_text(n, &len);
        lua_pushlstring(L, text ? text : "", len);
        break;
    default: push_null(L); break;
    }
}

/* A key usable in a Lua table: NaN cannot be one, so it stays text. */
static void push_key(lua_State *L, const jj_yaml_node *k)
{
    if (jj_yaml_type_of(k) == JJ_YAML_FLOAT && jj_yaml_float(k) != jj_yaml_float(k)) {
        size_t len;
        const char *text = jj_yaml_text(k, &len);
        lua_pushlstring(L, text, len);
        return;
    }
    push_scalar(L, k);
}

/* Pushes the Lua value of n; returns 0 or a JJ_E* code with d->err set. */
static int push_node(lua_State *L, decoder *d, const jj_yaml_node *n)
{
    luaL_checkstack(L, 8, "yaml document nested too deeply");
    jj_yaml_type type = jj_yaml_type_of(n);
    if (type != JJ_YAML_SEQ && type != JJ_YAML_MAP) {
        push_scalar(L, n);
        return 0;
    }
    size_t count = jj_yaml_count(n);
    int seq = type == JJ_YAML_SEQ;
    lua_createtable(L, seq ? (int)count : 0, seq ? 0 : (int)count);
    int t = lua_gettop(L);
    if (seq)
        luaL_setmetatable(L, ARRAY_MT);
    int entry = 0;
    if (d->marks) {
        lua_createtable(L, 0, (int)count + 1);
        entry = lua_gettop(L);
        push_mark(L, jj_yaml_mark_of(n));
        lua_setfield(L, entry, "__self");
        lua_pushvalue(L, t);
        lua_pushvalue(L, entry);
        lua_rawset(L, d->marks);
    }
    for (size_t i = 0; i < count; i++) {
        const jj_yaml_node *value = seq ? jj_yaml_seq_at(n, i) : jj_yaml_map_value_at(n, i);
        if (seq) {
            lua_pushinteger(L, (lua_Integer)i + 1);
        } else {
            const jj_yaml_node *key = jj_yaml_map_key_at(n, i);
            push_key(L, key);
            if (lua_rawget(L, t) != LUA_TNIL) {
                /* 1 and 1.0, distinct in YAML, are one Lua key */
                jj_yaml_mark m = jj_yaml_mark_of(key);
                jj_error_set(&d->err, JJ_EYAML_PARSE, "mapping key %s collides with another key",
                             jj_yaml_text(key, NULL));
                jj_error_at(&d->err, d->source, m.line, m.column);
                return JJ_EYAML_PARSE;
            }
            lua_pop(L, 1);
            push_key(L, key);
        }
        int kidx = lua_gettop(L);
        int rc = push_node(L, d, value);
        if (rc)
            return rc;
        if (entry) {
            lua_pushvalue(L, kidx);
            push_mark(L, jj_yaml_mark_of(value));
            push_source_text(L, value);
            lua_rawset(L, entry);
        }
        lua_rawset(L, t);
    }
    if (entry)
        lua_pop(L, 1);
    return 0;
}

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

    scratch *s = push_scratch(L);
    decoder d;
    d.marks = 0;
    d.source = source;
    jj_error_clear(&d.err);
    int rc = jj_yaml_parse(text, len, source, &limits, &s->node, &d.err);
    if (rc)
        return jj_push_error(L, &d.err);
    if (want_marks) {
        lua_newtable(L);
        d.marks = lua_gettop(L);
    }
    rc = push_node(L, &d, s->node);
    if (rc)
        return jj_push_error(L, &d.err);
    jj_yaml_free(s->node);
    s->node = NULL;
    if (want_marks) {
        lua_pushvalue(L, d.marks);
        return 2;
    }
    return 1;
}

/* --- encode ---------------------------------------------------------------- */

typedef struct encoder {
    scratch *s;
    int visiting; /* stack index of the set of tables being encoded */
    int depth;
    jj_error err;
} encoder;

static int encode_fail(encoder *e, const char *fmt, const char *what)
{
    return jj_error_set(&e->err, JJ_EYAML_EMIT, fmt, what);
}

/* A node for the value at idx: scalars complete, tables as an empty
 * collection that fill_table completes once it is attached. */
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
            return encode_fail(e, "cannot encode a %s", "light userdata");
        *out = jj_yaml_new_null();
        break;
    case LUA_TTABLE:
        *out = encodes_as_sequence(L, idx) ? jj_yaml_new_seq() : jj_yaml_new_map();
        break;
    default:
        return encode_fail(e, "cannot encode a %s", luaL_typename(L, idx));
    }
    if (!*out)
        return jj_error_set(&e->err, JJ_ENOMEM, "yaml: out of memory");
    return 0;
}

static int encode_into(lua_State *L, int idx, encoder *e, jj_yaml_node *parent, jj_yaml_node *key);

typedef struct key_slot {
    int kind;          /* 0 number, 1 string, 2 boolean, 3 null */
    int is_int;
    lua_Integer i;
    lua_Number n;
    const char *s;     /* points into a key of the table being encoded */
    size_t len;
    lua_Integer order; /* position in __yaml_order, or LUA_MAXINTEGER */
} key_slot;

static int compare_keys(const void *pa, const void *pb)
{
    const key_slot *a = pa, *b = pb;
    if (a->order != b->order)
        return a->order < b->order ? -1 : 1;
    if (a->kind != b->kind)
        return a->kind < b->kind ? -1 : 1;
    switch (a->kind) {
    case 0:
        if (a->is_int && b->is_int)
            return a->i < b->i ? -1 : a->i > b->i;
        return a->n < b->n ? -1 : a->n > b->n;
    case 1: {
        size_t m = a->len < b->len ? a->len : b->len;
        int c = memcmp(a->s, b->s, m);
        return c ? c : (a->len < b->len ? -1 : a->len > b->len);
    }
    case 2: return (int)a->i - (int)b->i;
    default: return 0;
    }
}

static void push_slot_key(lua_State *L, const key_slot *k)
{
    switch (k->kind) {
    case 0:
        if (k->is_int)
            lua_pushinteger(L, k->i);
        else
            lua_pushnumber(L, k->n);
        break;
    case 1: lua_pushlstring(L, k->s, k->len); break;
    case 2: lua_pushboolean(L, (int)k->i); break;
    default: push_null(L); break;
    }
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
    size_t k = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        key_slot *slot = &keys[k++];
        memset(slot, 0, sizeof *slot);
        switch (lua_type(L, -1)) {
        case LUA_TNUMBER:
            slot->kind = 0;
            slot->is_int = lua_isinteger(L, -1);
            slot->i = lua_tointeger(L, -1);
            slot->n = lua_tonumber(L, -1);
            break;
        case LUA_TSTRING:
            slot->kind = 1;
            slot->s = lua_tolstring(L, -1, &slot->len); /* no conversion: it is a string */
            break;
        case LUA_TBOOLEAN:
            slot->kind = 2;
            slot->i = lua_toboolean(L, -1);
            break;
        default:
            if (!is_null(L, -1)) {
                encode_fail(e, "cannot encode a mapping key of type %s", luaL_typename(L, -1));
                lua_pop(L, 1);
                return JJ_EYAML_EMIT;
            }
            slot->kind = 3;
            break;
        }
        slot->order = LUA_MAXINTEGER;
        if (!lua_isnil(L, order)) {
            lua_pushvalue(L, -1);
            if (lua_rawget(L, order) == LUA_TNUMBER)
                slot->order = lua_tointeger(L, -1);
            lua_pop(L, 1);
        }
    }
    qsort(keys, n, sizeof *keys, compare_keys);
    for (size_t i = 0; i < n; i++) {
        jj_yaml_node *key = NULL;
        switch (keys[i].kind) {
        case 0:
            key = keys[i].is_int ? jj_yaml_new_int((int64_t)keys[i].i)
                                 : jj_yaml_new_float((double)keys[i].n);
            break;
        case 1: key = jj_yaml_new_stringn(keys[i].s, keys[i].len); break;
        case 2: key = jj_yaml_new_bool((int)keys[i].i); break;
        default: key = jj_yaml_new_null(); break;
        }
        if (!key)
            return jj_error_set(&e->err, JJ_ENOMEM, "yaml: out of memory");
        push_slot_key(L, &keys[i]);
        lua_rawget(L, t);
        int rc = encode_into(L, lua_gettop(L), e, map, key);
        lua_pop(L, 1);
        if (rc)
            return rc;
    }
    lua_pop(L, 2); /* keys, order */
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

static int fill_table(lua_State *L, int t, encoder *e, jj_yaml_node *n)
{
    luaL_checkstack(L, 10, "table nested too deeply");
    if (e->depth >= JJ_YAML_DEFAULT_MAX_DEPTH)
        return jj_error_set(&e->err, JJ_EYAML_EMIT, "table nested more than %d levels deep",
                            JJ_YAML_DEFAULT_MAX_DEPTH);
    lua_pushvalue(L, t);
    if (lua_rawget(L, e->visiting) != LUA_TNIL) {
        lua_pop(L, 1);
        return jj_error_set(&e->err, JJ_EYAML_EMIT, "cannot encode a table that contains itself");
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
        rc = jj_yaml_map_put(parent, key, n, &e->err);
    else
        rc = jj_yaml_seq_append(parent, n, &e->err);
    if (rc)
        return rc;
    jj_yaml_type type = jj_yaml_type_of(n);
    if (type == JJ_YAML_SEQ || type == JJ_YAML_MAP)
        return fill_table(L, idx, e, n);
    return 0;
}

static int l_encode(lua_State *L)
{
    luaL_checkany(L, 1);
    if (!lua_isnoneornil(L, 2))
        luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    encoder e;
    e.depth = 0;
    jj_error_clear(&e.err);
    e.s = push_scratch(L);
    lua_newtable(L);
    e.visiting = lua_gettop(L);
    int rc = encode_into(L, 1, &e, NULL, NULL);
    if (rc)
        return jj_push_error(L, &e.err);
    size_t len;
    rc = jj_yaml_emit(e.s->node, &e.s->text, &len, &e.err);
    if (rc)
        return jj_push_error(L, &e.err);
    lua_pushlstring(L, e.s->text, len);
    free(e.s->text);
    e.s->text = NULL;
    jj_yaml_free(e.s->node);
    e.s->node = NULL;
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
        luaL_getmetatable(L, ARRAY_MT);
        luaL_argcheck(L, lua_rawequal(L, -1, -2), 1, "table already has a metatable");
        lua_pop(L, 2);
        return 1;
    }
    luaL_setmetatable(L, ARRAY_MT);
    return 1;
}

static int l_ordered(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    luaL_argcheck(L, !is_marked_array(L, 1), 1, "a sequence has no key order");
    if (!lua_getmetatable(L, 1)) {
        lua_createtable(L, 0, 1);
        lua_pushvalue(L, -1);
        lua_setmetatable(L, 1);
    }
    lua_pushvalue(L, 2);
    lua_setfield(L, -2, ORDER_FIELD);
    lua_settop(L, 1);
    return 1;
}

static int l_is_array(lua_State *L)
{
    lua_pushboolean(L, lua_istable(L, 1) && encodes_as_sequence(L, 1));
    return 1;
}

int luaopen_juju_yaml(lua_State *L);
int luaopen_juju_yaml(lua_State *L)
{
    static const luaL_Reg scratch_meta[] = {{"__gc", scratch_gc}, {NULL, NULL}};
    jj_new_class(L, SCRATCH_MT, NULL, scratch_meta);
    luaL_newmetatable(L, ARRAY_MT);
    lua_pop(L, 1);

    static const luaL_Reg funcs[] = {
        {"decode", l_decode},   {"encode", l_encode},     {"array", l_array},
        {"ordered", l_ordered}, {"is_array", l_is_array}, {NULL, NULL},
    };
    luaL_newlib(L, funcs);
    push_null(L);
    lua_setfield(L, -2, "null");
    return 1;
}
