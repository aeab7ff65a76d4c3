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
#include "options.h"
#include "tree.h"
#include "yaml.h"

#define SCHEMA_MT "juju.config.Schema"
#define SCRATCH_MT "juju.config.Scratch"

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

/* --- Lua <-> nodes (bindings/tree.c) ------------------------------------------ */

/* Converts the value at idx into scratch slot `slot`. marks: stack index of
 * a yaml.decode marks table or 0 (positions then reach the core, so errors
 * point into environments.yaml). Keys are sorted (numbers, then strings)
 * so that the first error reported does not depend on hash order. Misuse
 * (functions, cycles) raises. */
static void to_scratch(lua_State *L, int idx, scratch *s, int slot, int marks)
{
    jj_tree_encoding how = {
        .keys = JJ_TREE_KEY_STRING | JJ_TREE_KEY_INTEGER | JJ_TREE_KEY_FLOAT,
        .max_depth = JJ_YAML_DEFAULT_MAX_DEPTH,
        .marks = marks,
        .code = JJ_EINVAL,
        .noun = "config",
    };
    jj_error err;
    int rc = jj_tree_encode(L, idx, &how, &s->nodes[slot], &err);
    if (rc == JJ_ENOMEM)
        luaL_error(L, "not enough memory");
    if (rc)
        luaL_error(L, "config value: %s", err.message);
}

static void push_node(lua_State *L, const jj_yaml_node *n)
{
    jj_tree_decoding how = {0, 0, "config", JJ_EINVAL};
    jj_error err;
    if (jj_tree_push(L, n, &how, &err))
        luaL_error(L, "%s", err.message);
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

static int m_coerce(lua_State *L)
{
    jj_config_schema *schema = check_schema(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    jj_config_opts opts = {JJ_CONFIG_WITH_DEFAULTS, NULL, NULL, 0};
    int marks = 0;
    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        opts.mode = check_mode(L, 3);
        opts.env = jj_opt_string(L, 3, "env", NULL); /* left on the stack: alive */
        opts.file = jj_opt_string(L, 3, "file", NULL);
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
    jj_tree_require_yaml(L);

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
