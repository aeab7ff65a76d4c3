/* config.c: the juju.config module, schemas over Lua tables of attributes.
 *
 *   config.schema(fields)                 -> Schema
 *   Schema:merge(fields_or_schema)        -> Schema | nil, msg, "CONFIG"
 *   Schema:coerce(attrs [, opts])         -> attrs, warnings | nil, msg, "CONFIG"
 *   Schema:check_change(old, new)         -> true | nil, msg, "CONFIG"
 *   Schema:secrets(), Schema:fields()     -> sorted arrays of names
 *   Schema:field(name)                    -> definition table | nil
 *   Schema:close() (also __close, __gc)
 *
 * Attribute tables are converted to core/yaml trees (keeping the positions
 * from a yaml.decode marks table, so errors point into environments.yaml)
 * and back. yaml.null and the sequence marking are juju.yaml's: this module
 * requires it and shares its sentinel and its "juju.yaml.array" metatable.
 * C-side trees live in a scratch userdata while Lua code can raise.
 */
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "config.h"
#include "yaml.h"

#define SCHEMA_MT "juju.config.Schema"
#define SCRATCH_MT "juju.config.Scratch"
#define ARRAY_MT "juju.yaml.array"

/* Registry key (by address) of juju.yaml's null sentinel for this state. */
static const char null_key = 0;

static inline void push_null(lua_State *L)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &null_key);
}

static inline int is_null(lua_State *L, int idx)
{
    if (lua_type(L, idx) != LUA_TLIGHTUSERDATA)
        return 0;
    push_null(L);
    int same = lua_rawequal(L, idx < 0 ? idx - 1 : idx, -1);
    lua_pop(L, 1);
    return same;
}

/* --- scratch ---------------------------------------------------------------- */

#define SCRATCH_SLOTS 4

typedef struct scratch {
    jj_yaml_node *nodes[SCRATCH_SLOTS];
    jj_config_warnings warnings;
} scratch;

static int scratch_gc(lua_State *L)
{
    scratch *s = luaL_checkudata(L, 1, SCRATCH_MT);
    for (int i = 0; i < SCRATCH_SLOTS; i++) {
        jj_yaml_free(s->nodes[i]);
        s->nodes[i] = NULL;
    }
    jj_config_warnings_free(&s->warnings);
    return 0;
}

static scratch *push_scratch(lua_State *L)
{
    scratch *s = lua_newuserdatauv(L, sizeof *s, 0);
    memset(s, 0, sizeof *s);
    luaL_setmetatable(L, SCRATCH_MT);
    return s;
}

/* --- Lua -> nodes --------------------------------------------------------------- */

typedef struct converter {
    int marks;    /* stack index of a yaml.decode marks table, or 0 */
    int visiting; /* stack index of the set of tables being converted */
    int depth;
} converter;

static int is_marked_array(lua_State *L, int idx)
{
    if (!lua_getmetatable(L, idx))
        return 0;
    luaL_getmetatable(L, ARRAY_MT);
    int same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return same;
}

static int is_proper_array(lua_State *L, int idx)
{
    lua_Integer count = 0, max = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1) {
            lua_pop(L, 1);
            return 0;
        }
        if (lua_tointeger(L, -1) > max)
            max = lua_tointeger(L, -1);
        count++;
    }
    return count > 0 && max == count;
}

/* A position from a yaml.decode marks entry, and the source text of a
 * number or boolean when the entry has one. */
typedef struct place {
    jj_yaml_mark mark;
    const char *text; /* kept alive by the marks table */
    size_t len;
} place;

static place read_place(lua_State *L, int idx)
{
    place p = {{0, 0}, NULL, 0};
    if (!lua_istable(L, idx))
        return p;
    idx = lua_absindex(L, idx);
    lua_getfield(L, idx, "line");
    lua_getfield(L, idx, "column");
    if (lua_isinteger(L, -2) && lua_isinteger(L, -1)) {
        p.mark.line = (int)lua_tointeger(L, -2);
        p.mark.column = (int)lua_tointeger(L, -1);
    }
    lua_pop(L, 2);
    if (lua_getfield(L, idx, "text") == LUA_TSTRING)
        p.text = lua_tolstring(L, -1, &p.len);
    lua_pop(L, 1);
    return p;
}

/* Pushes marks[t] (the per-table entry) or nil. */
static void push_marks_entry(lua_State *L, converter *c, int t)
{
    if (!c->marks) {
        lua_pushnil(L);
        return;
    }
    lua_pushvalue(L, t);
    lua_rawget(L, c->marks);
}

static jj_yaml_node *scalar_node(lua_State *L, int idx)
{
    size_t len;
    const char *s;
    switch (lua_type(L, idx)) {
    case LUA_TBOOLEAN: return jj_yaml_new_bool(lua_toboolean(L, idx));
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            return jj_yaml_new_int((int64_t)lua_tointeger(L, idx));
        return jj_yaml_new_float((double)lua_tonumber(L, idx));
    case LUA_TSTRING:
        s = lua_tolstring(L, idx, &len);
        return jj_yaml_new_stringn(s, len);
    default: return jj_yaml_new_null();
    }
}

static void convert_into(lua_State *L, int idx, converter *c, jj_yaml_node **root,
                         jj_yaml_node *parent, int kidx, place at);

typedef struct key_ref {
    int is_string;
    int is_int;
    lua_Integer i;
    lua_Number n;
    const char *s; /* a key of the table being converted */
    size_t len;
} key_ref;

static int compare_keys(const void *pa, const void *pb)
{
    const key_ref *a = pa, *b = pb;
    if (a->is_string != b->is_string)
        return a->is_string ? 1 : -1;
    if (a->is_string) {
        size_t m = a->len < b->len ? a->len : b->len;
        int r = memcmp(a->s, b->s, m);
        return r ? r : (a->len < b->len ? -1 : a->len > b->len);
    }
    if (a->is_int && b->is_int)
        return a->i < b->i ? -1 : a->i > b->i;
    return a->n < b->n ? -1 : a->n > b->n;
}

/* Fills map from table t: keys sorted (numbers, then strings) so that the
 * first error reported does not depend on hash order. */
static void fill_map(lua_State *L, int t, converter *c, jj_yaml_node *map, int entry)
{
    size_t n = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
            luaL_error(L, "config keys must be strings or numbers, got %s", luaL_typename(L, -1));
        n++;
    }
    key_ref *keys = lua_newuserdatauv(L, (n ? n : 1) * sizeof *keys, 0);
    size_t k = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        key_ref *r = &keys[k++];
        memset(r, 0, sizeof *r);
        if (lua_type(L, -1) == LUA_TSTRING) {
            r->is_string = 1;
            r->s = lua_tolstring(L, -1, &r->len);
        } else {
            r->is_int = lua_isinteger(L, -1);
            r->i = lua_tointeger(L, -1);
            r->n = lua_tonumber(L, -1);
        }
    }
    qsort(keys, n, sizeof *keys, compare_keys);
    for (size_t i = 0; i < n; i++) {
        const key_ref *r = &keys[i];
        if (r->is_string)
            lua_pushlstring(L, r->s, r->len);
        else if (r->is_int)
            lua_pushinteger(L, r->i);
        else
            lua_pushnumber(L, r->n);
        int kidx = lua_gettop(L);
        place at = {{0, 0}, NULL, 0};
        if (entry) {
            lua_pushvalue(L, kidx);
            lua_rawget(L, entry);
        } else {
            lua_pushnil(L);
        }
        at = read_place(L, -1); /* the entry stays on the stack for at.text */
        lua_pushvalue(L, kidx);
        lua_rawget(L, t);
        convert_into(L, lua_gettop(L), c, NULL, map, kidx, at);
        lua_pop(L, 3);
    }
    lua_pop(L, 1); /* keys */
}

static void fill_seq(lua_State *L, int t, converter *c, jj_yaml_node *seq, int entry)
{
    lua_Integer n = (lua_Integer)lua_rawlen(L, t);
    for (lua_Integer i = 1; i <= n; i++) {
        if (entry)
            lua_rawgeti(L, entry, i);
        else
            lua_pushnil(L);
        place at = read_place(L, -1);
        lua_rawgeti(L, t, i);
        convert_into(L, lua_gettop(L), c, NULL, seq, 0, at);
        lua_pop(L, 2);
    }
}

/* The node for a scalar, spelt as in its source when the marks say how
 * (so `default-series: 14.10` stays "14.10" as a string) and the value was
 * not changed since it was decoded. */
static jj_yaml_node *scalar_node_as_written(lua_State *L, int idx, const place *at)
{
    int type = lua_type(L, idx);
    if (!at->text || (type != LUA_TNUMBER && type != LUA_TBOOLEAN))
        return scalar_node(L, idx);
    jj_yaml_node *n = jj_yaml_new_plain(at->text, at->len);
    int same = 0;
    switch (jj_yaml_type_of(n)) {
    case JJ_YAML_BOOL: same = type == LUA_TBOOLEAN && lua_toboolean(L, idx) == jj_yaml_bool(n); break;
    case JJ_YAML_INT:
        same = lua_isinteger(L, idx) && lua_tointeger(L, idx) == (lua_Integer)jj_yaml_int(n);
        break;
    case JJ_YAML_FLOAT:
        same = type == LUA_TNUMBER && !lua_isinteger(L, idx) &&
               lua_tonumber(L, idx) == (lua_Number)jj_yaml_float(n);
        break;
    default: break;
    }
    if (same)
        return n;
    jj_yaml_free(n);
    return scalar_node(L, idx);
}

static inline int is_convertible(lua_State *L, int idx)
{
    int type = lua_type(L, idx);
    return type == LUA_TTABLE || type == LUA_TNIL || type == LUA_TBOOLEAN ||
           type == LUA_TNUMBER || type == LUA_TSTRING || is_null(L, idx);
}

/* Converts the value at idx and attaches it (as *root, or to parent, under
 * the key at kidx for a mapping) before filling it: no node is ever held
 * only by C while Lua code can raise, so the scratch owning root/parent
 * frees everything. Misuse (functions, cycles) raises. */
static void convert_into(lua_State *L, int idx, converter *c, jj_yaml_node **root,
                         jj_yaml_node *parent, int kidx, place at)
{
    jj_yaml_mark mark = at.mark;
    luaL_checkstack(L, 10, "config value nested too deeply");
    if (!is_convertible(L, idx))
        luaL_error(L, "cannot use a %s as a config value", luaL_typename(L, idx));
    int is_table = lua_istable(L, idx);
    int entry = 0;
    if (is_table) {
        if (c->depth >= JJ_YAML_DEFAULT_MAX_DEPTH)
            luaL_error(L, "config value nested more than %d levels deep", JJ_YAML_DEFAULT_MAX_DEPTH);
        lua_pushvalue(L, idx);
        if (lua_rawget(L, c->visiting) != LUA_TNIL)
            luaL_error(L, "config value contains itself");
        lua_pop(L, 1);
        push_marks_entry(L, c, idx);
        entry = lua_istable(L, -1) ? lua_gettop(L) : 0;
        if (entry && mark.line == 0) {
            lua_getfield(L, entry, "__self");
            mark = read_place(L, -1).mark;
            lua_pop(L, 1);
        }
    }
    int seq = is_table && (is_marked_array(L, idx) || is_proper_array(L, idx));
    jj_yaml_node *n = !is_table ? scalar_node_as_written(L, idx, &at)
                                : seq ? jj_yaml_new_seq() : jj_yaml_new_map();
    jj_yaml_set_mark(n, mark.line, mark.column);
    int rc = n ? 0 : JJ_ENOMEM;
    if (n && root) {
        *root = n;
    } else if (n && kidx) {
        jj_yaml_node *key = lua_type(L, kidx) == LUA_TSTRING ? scalar_node(L, kidx)
                          : lua_isinteger(L, kidx) ? jj_yaml_new_int((int64_t)lua_tointeger(L, kidx))
                                                   : jj_yaml_new_float((double)lua_tonumber(L, kidx));
        rc = key ? jj_yaml_map_put(parent, key, n, NULL) : JJ_ENOMEM;
        if (!key)
            jj_yaml_free(n);
    } else if (n) {
        rc = jj_yaml_seq_append(parent, n, NULL);
    }
    if (rc)
        luaL_error(L, "not enough memory");
    if (!is_table)
        return;
    lua_pushvalue(L, idx);
    lua_pushboolean(L, 1);
    lua_rawset(L, c->visiting);
    c->depth++;
    if (seq)
        fill_seq(L, idx, c, n, entry);
    else
        fill_map(L, idx, c, n, entry);
    c->depth--;
    lua_pushvalue(L, idx);
    lua_pushnil(L);
    lua_rawset(L, c->visiting);
    lua_pop(L, 1); /* marks entry or nil */
}

/* Converts the value at idx into scratch slot `slot`. marks: stack index of
 * a marks table or 0. */
static void to_scratch(lua_State *L, int idx, scratch *s, int slot, int marks)
{
    idx = lua_absindex(L, idx);
    converter c = {marks, 0, 0};
    lua_newtable(L);
    c.visiting = lua_gettop(L);
    place none = {{0, 0}, NULL, 0};
    convert_into(L, idx, &c, &s->nodes[slot], NULL, 0, none);
    lua_pop(L, 1);
}

/* --- nodes -> Lua --------------------------------------------------------------- */

static void push_node(lua_State *L, const jj_yaml_node *n)
{
    luaL_checkstack(L, 6, "config value nested too deeply");
    size_t len;
    const char *text;
    switch (jj_yaml_type_of(n)) {
    case JJ_YAML_BOOL: lua_pushboolean(L, jj_yaml_bool(n)); return;
    case JJ_YAML_INT: lua_pushinteger(L, (lua_Integer)jj_yaml_int(n)); return;
    case JJ_YAML_FLOAT: lua_pushnumber(L, (lua_Number)jj_yaml_float(n)); return;
    case JJ_YAML_STRING:
        text = jj_yaml_text(n, &len);
        lua_pushlstring(L, text ? text : "", len);
        return;
    case JJ_YAML_SEQ:
        lua_createtable(L, (int)jj_yaml_count(n), 0);
        luaL_setmetatable(L, ARRAY_MT);
        for (size_t i = 0; i < jj_yaml_count(n); i++) {
            push_node(L, jj_yaml_seq_at(n, i));
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        return;
    case JJ_YAML_MAP:
        lua_createtable(L, 0, (int)jj_yaml_count(n));
        for (size_t i = 0; i < jj_yaml_count(n); i++) {
            const jj_yaml_node *k = jj_yaml_map_key_at(n, i);
            if (jj_yaml_type_of(k) == JJ_YAML_NULL) {
                push_null(L);
            } else {
                push_node(L, k);
            }
            push_node(L, jj_yaml_map_value_at(n, i));
            lua_rawset(L, -3);
        }
        return;
    default: push_null(L); return;
    }
}

/* --- Schema userdata ------------------------------------------------------------ */

typedef struct schema_ud {
    jj_config_schema *schema;
} schema_ud;

static int schema_close(lua_State *L)
{
    schema_ud *u = luaL_checkudata(L, 1, SCHEMA_MT);
    jj_config_schema_free(u->schema);
    u->schema = NULL;
    return 0;
}

static jj_config_schema *check_schema(lua_State *L, int idx)
{
    schema_ud *u = luaL_checkudata(L, idx, SCHEMA_MT);
    if (!u->schema)
        luaL_error(L, "attempt to use a closed schema");
    return u->schema;
}

/* A new Schema userdata holding nothing yet; it owns whatever is stored. */
static schema_ud *push_schema(lua_State *L)
{
    schema_ud *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->schema = NULL;
    luaL_setmetatable(L, SCHEMA_MT);
    return u;
}

/* In jj_config_type order. */
static const char *const TYPE_NAMES[] = {
    "string", "bool", "int", "attrs", "list", NULL,
};

static int flag_field(lua_State *L, int spec, const char *field, const char *name)
{
    int t = lua_getfield(L, spec, field);
    if (t != LUA_TNIL && t != LUA_TBOOLEAN)
        luaL_error(L, "config field '%s': '%s' must be a boolean", name, field);
    int on = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return on;
}

/* Leaves the string on the stack, which keeps the returned pointer valid. */
static const char *string_field(lua_State *L, int spec, const char *field, const char *name)
{
    int t = lua_getfield(L, spec, field);
    if (t != LUA_TNIL && t != LUA_TSTRING)
        luaL_error(L, "config field '%s': '%s' must be a string", name, field);
    return lua_tostring(L, -1);
}

/* Adds the field described by the table at spec to schema. Raises on a bad
 * description; the strings used stay referenced by spec meanwhile. */
static void add_field(lua_State *L, jj_config_schema *schema, const char *name, int spec)
{
    if (!lua_istable(L, spec))
        luaL_error(L, "config field '%s': definition must be a table", name);
    int top = lua_gettop(L);
    jj_config_field f;
    memset(&f, 0, sizeof f);
    f.name = name;
    lua_getfield(L, spec, "type");
    const char *type = lua_tostring(L, -1);
    int found = -1;
    for (int i = 0; type && lua_type(L, -1) == LUA_TSTRING && TYPE_NAMES[i]; i++)
        if (strcmp(TYPE_NAMES[i], type) == 0)
            found = i;
    if (found < 0)
        luaL_error(L, "config field '%s': type must be one of string, bool, int, attrs, list", name);
    lua_pop(L, 1);
    f.type = (jj_config_type)found;
    f.flags = (flag_field(L, spec, "required", name) ? JJ_CONFIG_REQUIRED : 0) |
              (flag_field(L, spec, "secret", name) ? JJ_CONFIG_SECRET : 0) |
              (flag_field(L, spec, "immutable", name) ? JJ_CONFIG_IMMUTABLE : 0) |
              (flag_field(L, spec, "allow_empty", name) ? JJ_CONFIG_ALLOW_EMPTY : 0);
    f.description = string_field(L, spec, "description", name);
    f.group = string_field(L, spec, "group", name);

    scratch *s = push_scratch(L);
    int t = lua_getfield(L, spec, "values");
    if (t != LUA_TNIL) {
        if (t != LUA_TTABLE)
            luaL_error(L, "config field '%s': values must be an array of strings", name);
        int vals = lua_gettop(L);
        size_t n = (size_t)lua_rawlen(L, vals);
        const char **values = lua_newuserdatauv(L, (n + 1) * sizeof *values, 0);
        for (size_t i = 0; i < n; i++) {
            if (lua_rawgeti(L, vals, (lua_Integer)i + 1) != LUA_TSTRING)
                luaL_error(L, "config field '%s': values must be an array of strings", name);
            values[i] = lua_tostring(L, -1); /* the values table keeps it alive */
            lua_pop(L, 1);
        }
        values[n] = NULL;
        f.values = values;
    }
    lua_getfield(L, spec, "default");
    to_scratch(L, -1, s, 0, 0);
    lua_getfield(L, spec, "fillin");
    to_scratch(L, -1, s, 1, 0);
    f.default_value = s->nodes[0];
    f.fillin = s->nodes[1];
    jj_error err;
    int rc = jj_config_schema_add(schema, &f, &err);
    if (rc)
        luaL_error(L, "%s", err.message);
    lua_settop(L, top);
}

/* Builds a schema from a fields table at idx into a new Schema userdata,
 * left on the stack. */
static jj_config_schema *push_schema_from(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    luaL_checktype(L, idx, LUA_TTABLE);
    schema_ud *u = push_schema(L);
    u->schema = jj_config_schema_new();
    if (!u->schema)
        luaL_error(L, "not enough memory");
    int top = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_error(L, "config field names must be strings");
        add_field(L, u->schema, lua_tostring(L, -2), lua_gettop(L));
        lua_settop(L, top + 1); /* keep the key for lua_next */
    }
    return u->schema;
}

static int l_schema(lua_State *L)
{
    push_schema_from(L, 1);
    return 1;
}

static int m_merge(lua_State *L)
{
    jj_config_schema *a = check_schema(L, 1);
    jj_config_schema *b;
    if (lua_istable(L, 2)) {
        b = push_schema_from(L, 2);
    } else {
        b = check_schema(L, 2);
    }
    schema_ud *u = push_schema(L);
    jj_error err;
    int rc = jj_config_schema_merge(a, b, &u->schema, &err);
    if (rc)
        return jj_push_error(L, &err);
    return 1;
}

static jj_config_mode check_mode(lua_State *L, int opts)
{
    lua_getfield(L, opts, "mode");
    static const char *const modes[] = {
        "defaults", "nodefaults", NULL,
    };
    int mode = lua_isnil(L, -1) ? 0 : luaL_checkoption(L, -1, NULL, modes);
    lua_pop(L, 1);
    return mode == 0 ? JJ_CONFIG_WITH_DEFAULTS : JJ_CONFIG_NO_DEFAULTS;
}

/* Leaves the string on the stack, which keeps the returned pointer valid. */
static const char *opt_string(lua_State *L, int opts, const char *field)
{
    int t = lua_getfield(L, opts, field);
    if (t != LUA_TNIL && t != LUA_TSTRING)
        luaL_error(L, "bad option '%s' (string expected, got %s)", field, lua_typename(L, t));
    return lua_tostring(L, -1);
}

static int m_coerce(lua_State *L)
{
    jj_config_schema *schema = check_schema(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    jj_config_opts opts = {JJ_CONFIG_WITH_DEFAULTS, NULL, NULL, 0};
    int marks = 0;
    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        opts.mode = check_mode(L, 3);
        opts.env = opt_string(L, 3, "env");
        opts.file = opt_string(L, 3, "file");
        lua_getfield(L, 3, "unknown");
        opts.warn_unknown = lua_toboolean(L, -1);
        lua_pop(L, 1);
        int t = lua_getfield(L, 3, "marks");
        if (t != LUA_TNIL && t != LUA_TTABLE)
            luaL_error(L, "bad option 'marks' (table expected, got %s)", lua_typename(L, t));
        marks = t == LUA_TTABLE ? lua_gettop(L) : 0;
        if (!marks)
            lua_pop(L, 1);
    }
    scratch *s = push_scratch(L);
    to_scratch(L, 2, s, 0, marks);
    jj_error err;
    int rc = jj_config_coerce(schema, s->nodes[0], &opts, &s->nodes[1], &s->warnings, &err);
    if (rc)
        return jj_push_error(L, &err);
    push_node(L, s->nodes[1]);
    lua_createtable(L, (int)s->warnings.count, 0);
    for (size_t i = 0; i < s->warnings.count; i++) {
        lua_pushstring(L, s->warnings.items[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 2;
}

static int m_check_change(lua_State *L)
{
    jj_config_schema *schema = check_schema(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    luaL_checktype(L, 3, LUA_TTABLE);
    scratch *s = push_scratch(L);
    to_scratch(L, 2, s, 0, 0);
    to_scratch(L, 3, s, 1, 0);
    jj_error err;
    if (jj_config_check_change(schema, s->nodes[0], s->nodes[1], &err))
        return jj_push_error(L, &err);
    lua_pushboolean(L, 1);
    return 1;
}

static int m_secrets(lua_State *L)
{
    jj_config_schema *schema = check_schema(L, 1);
    size_t n = jj_config_schema_secrets(schema, NULL, 0);
    const char **names = lua_newuserdatauv(L, (n ? n : 1) * sizeof *names, 0);
    jj_config_schema_secrets(schema, names, n);
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_pushstring(L, names[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

static int m_fields(lua_State *L)
{
    jj_config_schema *schema = check_schema(L, 1);
    size_t n = jj_config_schema_count(schema);
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_pushstring(L, jj_config_schema_at(schema, i)->name);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

static inline void set_flag(lua_State *L, const jj_config_field *f, unsigned flag, const char *name)
{
    lua_pushboolean(L, (f->flags & flag) != 0);
    lua_setfield(L, -2, name);
}

static int m_field(lua_State *L)
{
    jj_config_schema *schema = check_schema(L, 1);
    const jj_config_field *f = jj_config_schema_find(schema, luaL_checkstring(L, 2));
    if (!f) {
        lua_pushnil(L);
        return 1;
    }
    lua_createtable(L, 0, 11);
    lua_pushstring(L, f->name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, jj_config_type_name(f->type));
    lua_setfield(L, -2, "type");
    if (f->values) {
        lua_newtable(L);
        for (lua_Integer i = 0; f->values[i]; i++) {
            lua_pushstring(L, f->values[i]);
            lua_rawseti(L, -2, i + 1);
        }
        lua_setfield(L, -2, "values");
    }
    if (f->default_value) {
        push_node(L, f->default_value);
        lua_setfield(L, -2, "default");
    }
    if (f->fillin) {
        push_node(L, f->fillin);
        lua_setfield(L, -2, "fillin");
    }
    set_flag(L, f, JJ_CONFIG_REQUIRED, "required");
    set_flag(L, f, JJ_CONFIG_SECRET, "secret");
    set_flag(L, f, JJ_CONFIG_IMMUTABLE, "immutable");
    set_flag(L, f, JJ_CONFIG_ALLOW_EMPTY, "allow_empty");
    if (f->description) {
        lua_pushstring(L, f->description);
        lua_setfield(L, -2, "description");
    }
    if (f->group) {
        lua_pushstring(L, f->group);
        lua_setfield(L, -2, "group");
    }
    return 1;
}

static int schema_tostring(lua_State *L)
{
    schema_ud *u = luaL_checkudata(L, 1, SCHEMA_MT);
    if (u->schema)
        lua_pushfstring(L, "juju.config.Schema (%d fields)", (int)jj_config_schema_count(u->schema));
    else
        lua_pushliteral(L, "juju.config.Schema (closed)");
    return 1;
}

int luaopen_juju_config(lua_State *L);
int luaopen_juju_config(lua_State *L)
{
    /* juju.yaml owns the null sentinel and the sequence metatable */
    lua_getglobal(L, "require");
    lua_pushliteral(L, "juju.yaml");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "null");
    if (lua_type(L, -1) != LUA_TLIGHTUSERDATA)
        return luaL_error(L, "juju.config: juju.yaml has no null sentinel");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &null_key);
    lua_pop(L, 1);

    static const luaL_Reg scratch_meta[] = {{"__gc", scratch_gc}, {NULL, NULL}};
    jj_new_class(L, SCRATCH_MT, NULL, scratch_meta);
    static const luaL_Reg methods[] = {
        {"merge", m_merge},   {"coerce", m_coerce}, {"check_change", m_check_change},
        {"secrets", m_secrets}, {"fields", m_fields}, {"field", m_field},
        {"close", schema_close}, {NULL, NULL},
    };
    static const luaL_Reg meta[] = {
        {"__gc", schema_close}, {"__close", schema_close}, {"__tostring", schema_tostring},
        {NULL, NULL},
    };
    jj_new_class(L, SCHEMA_MT, methods, meta);

    static const luaL_Reg funcs[] = {{"schema", l_schema}, {NULL, NULL}};
    luaL_newlib(L, funcs);
    return 1;
}
