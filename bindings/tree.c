/* tree.c: Lua values <-> core/doc trees (see tree.h).
 * Binds core/doc.h (with bindings/yaml.c), for juju.yaml, json, mongo, config.
 */
#include "tree.h"

#include <stdarg.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCRATCH_MT "juju.tree.Scratch"

/* --- the shared values ----------------------------------------------------- */

void jj_tree_require_yaml(lua_State *L)
{
    lua_getglobal(L, "require");
    lua_pushliteral(L, "juju.yaml");
    lua_call(L, 1, 1);
    luaL_checktype(L, -1, LUA_TTABLE);
    lua_pop(L, 1);
    if (lua_getfield(L, LUA_REGISTRYINDEX, JJ_TREE_NULL_KEY) != LUA_TLIGHTUSERDATA)
        luaL_error(L, "juju.yaml has no null sentinel");
    lua_pop(L, 1);
}

void jj_tree_push_null(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, JJ_TREE_NULL_KEY);
}

int jj_tree_is_null(lua_State *L, int idx)
{
    if (lua_type(L, idx) != LUA_TLIGHTUSERDATA)
        return 0;
    idx = lua_absindex(L, idx);
    jj_tree_push_null(L);
    int same = lua_rawequal(L, idx, -1);
    lua_pop(L, 1);
    return same;
}

int jj_tree_is_marked_array(lua_State *L, int idx)
{
    if (!lua_getmetatable(L, idx))
        return 0;
    luaL_getmetatable(L, JJ_TREE_ARRAY_MT);
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

int jj_tree_is_sequence(lua_State *L, int idx)
{
    return jj_tree_is_marked_array(L, idx) || is_proper_array(L, idx);
}

/* --- scratch ------------------------------------------------------------------ */

void jj_tree_scratch_clear(jj_tree_scratch *s)
{
    for (int i = 0; i < JJ_TREE_SCRATCH_SLOTS; i++) {
        jj_yaml_free(s->node[i]);
        s->node[i] = NULL;
    }
    free(s->text);
    s->text = NULL;
}

static int scratch_gc(lua_State *L)
{
    jj_tree_scratch_clear(luaL_checkudata(L, 1, SCRATCH_MT));
    return 0;
}

/* The metatable is shared by the modules of a state: modules are never
 * unloaded (-z nodelete), so whichever copy of scratch_gc it holds stays. */
jj_tree_scratch *jj_tree_push_scratch(lua_State *L)
{
    jj_tree_scratch *s = lua_newuserdatauv(L, sizeof *s, 0);
    memset(s, 0, sizeof *s);
    if (luaL_newmetatable(L, SCRATCH_MT)) {
        lua_pushcfunction(L, scratch_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    return s;
}

/* --- tree -> Lua ------------------------------------------------------------------ */

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
        lua_pushlstring(L, text ? text : "", text ? len : 0);
        break;
    default: jj_tree_push_null(L); break;
    }
}

/* A key usable in a Lua table: its text when asked, and for NaN (which
 * cannot be a key). */
static void push_key(lua_State *L, const jj_yaml_node *k, int text_keys)
{
    double d = jj_yaml_float(k);
    if (text_keys || (jj_yaml_type_of(k) == JJ_YAML_FLOAT && d != d)) {
        size_t len;
        const char *text = jj_yaml_text(k, &len);
        lua_pushlstring(L, text ? text : "", text ? len : 0);
        return;
    }
    push_scalar(L, k);
}

int jj_tree_push(lua_State *L, const jj_yaml_node *n, const jj_tree_decoding *how, jj_error *err)
{
    luaL_checkstack(L, 8, "document nested too deeply");
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
        luaL_setmetatable(L, JJ_TREE_ARRAY_MT);
    int entry = 0;
    if (how->marks) {
        lua_createtable(L, 0, (int)count + 1);
        entry = lua_gettop(L);
        push_mark(L, jj_yaml_mark_of(n));
        lua_setfield(L, entry, "__self");
        lua_pushvalue(L, t);
        lua_pushvalue(L, entry);
        lua_rawset(L, how->marks);
    }
    for (size_t i = 0; i < count; i++) {
        const jj_yaml_node *value = seq ? jj_yaml_seq_at(n, i) : jj_yaml_map_value_at(n, i);
        if (seq) {
            lua_pushinteger(L, (lua_Integer)i + 1);
        } else {
            const jj_yaml_node *key = jj_yaml_map_key_at(n, i);
            push_key(L, key, how->text_keys);
            if (!how->text_keys) { /* 1 and 1.0, distinct in YAML, are one Lua key */
                lua_pushvalue(L, -1);
                if (lua_rawget(L, t) != LUA_TNIL) {
                    jj_yaml_mark m = jj_yaml_mark_of(key);
                    jj_error_set(err, how->code, "mapping key %s collides with another key",
                                 jj_yaml_text(key, NULL));
                    jj_error_at(err, how->source, m.line, m.column);
                    return how->code;
                }
                lua_pop(L, 1);
            }
        }
        int kidx = lua_gettop(L);
        int rc = jj_tree_push(L, value, how, err);
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

/* --- Lua -> tree ------------------------------------------------------------------ */

typedef struct encoder {
    const jj_tree_encoding *how;
    int visiting; /* stack index of the set of tables being converted */
    int orders;   /* stack index of {[__yaml_order array] = {key = position}}: each
                   * array indexed once an encode (10,000 machines share one) */
    int depth;
    jj_error *err;
} encoder;

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

static int fail(encoder *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(encoder *e, const char *fmt, ...)
{
    char msg[JJ_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (e->how->what)
        return jj_error_set(e->err, e->how->code, "%s: %s", e->how->what, msg);
    return jj_error_set(e->err, e->how->code, "%s", msg);
}

static int nomem(encoder *e)
{
    return jj_error_set(e->err, JJ_ENOMEM, "out of memory");
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

typedef struct key_slot {
    int kind;          /* 0 number, 1 string, 2 boolean, 3 null (the typed order) */
    int is_int;
    lua_Integer i;
    lua_Number n;
    const char *s;     /* a string key's bytes (a key of the table: alive), or NULL */
    size_t len;        /* of the key's text (s or num) */
    char num[24];      /* with text_keys: an integer key in decimal */
    lua_Integer order; /* position in __yaml_order, or LUA_MAXINTEGER */
    int id;            /* with id_first: the key is "_id" */
    int text_keys;
    int value;         /* where fill_map keeps the key's value (1-based) */
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
    if (a->text_keys) {
        if (a->id != b->id)
            return a->id ? -1 : 1;
        size_t m = a->len < b->len ? a->len : b->len;
        int c = memcmp(key_text(a), key_text(b), m);
        return c ? c : (a->len < b->len ? -1 : a->len > b->len);
    }
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
    default: jj_tree_push_null(L); break;
    }
}

static jj_yaml_node *slot_key_node(const key_slot *k)
{
    if (k->text_keys)
        return jj_yaml_new_stringn(key_text(k), k->len);
    switch (k->kind) {
    case 0: return k->is_int ? jj_yaml_new_int((int64_t)k->i) : jj_yaml_new_float((double)k->n);
    case 1: return jj_yaml_new_stringn(k->s, k->len);
    case 2: return jj_yaml_new_bool((int)k->i);
    default: return jj_yaml_new_null();
    }
}

/* Fills slot from the key on top of the stack; 0 or an error. */
static int read_key(lua_State *L, encoder *e, key_slot *slot)
{
    const jj_tree_encoding *how = e->how;
    memset(slot, 0, sizeof *slot);
    slot->text_keys = how->text_keys;
    slot->order = LUA_MAXINTEGER;
    unsigned kind;
    switch (lua_type(L, -1)) {
    case LUA_TNUMBER:
        slot->kind = 0;
        slot->is_int = lua_isinteger(L, -1);
        slot->i = lua_tointeger(L, -1);
        slot->n = lua_tonumber(L, -1);
        kind = slot->is_int ? JJ_TREE_KEY_INTEGER : JJ_TREE_KEY_FLOAT;
        break;
    case LUA_TSTRING:
        slot->kind = 1;
        slot->s = lua_tolstring(L, -1, &slot->len); /* no conversion: it is a string */
        kind = JJ_TREE_KEY_STRING;
        break;
    case LUA_TBOOLEAN:
        slot->kind = 2;
        slot->i = lua_toboolean(L, -1);
        kind = JJ_TREE_KEY_BOOLEAN;
        break;
    default:
        slot->kind = 3;
        kind = jj_tree_is_null(L, -1) ? JJ_TREE_KEY_NULL : 0;
        break;
    }
    if (!(how->keys & kind)) {
        const char *what = lua_type(L, -1) == LUA_TNUMBER ? "non-integer number"
                                                          : luaL_typename(L, -1);
        const char *noun = how->noun ? how->noun : "mapping";
        return fail(e, "cannot encode %s %s key of type %s", strchr("aeiou", noun[0]) ? "an" : "a",
                    noun, what);
    }
    if (slot->kind == 1 && how->no_nul_keys && strlen(slot->s) != slot->len)
        return fail(e, "a key holds a NUL byte");
    if (how->text_keys && slot->kind == 0) {
        snprintf(slot->num, sizeof slot->num, LUA_INTEGER_FMT, slot->i);
        slot->len = strlen(slot->num);
    }
    slot->id = how->id_first && slot->len == 3 && memcmp(key_text(slot), "_id", 3) == 0;
    return 0;
}

/* Pushes a table {key = position} from the metatable's __yaml_order (the
 * first mention wins), or nil. Nothing runs Lua code during an encode, so
 * an order array cannot change while its index is cached in e->orders. */
static void push_order_index(lua_State *L, int t, encoder *e)
{
    if (!lua_getmetatable(L, t)) {
        lua_pushnil(L);
        return;
    }
    lua_getfield(L, -1, JJ_TREE_ORDER_FIELD);
    lua_remove(L, -2);
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        lua_pushnil(L);
        return;
    }
    int order = lua_gettop(L);
    lua_pushvalue(L, order);
    if (lua_rawget(L, e->orders) == LUA_TTABLE) {
        lua_remove(L, order);
        return;
    }
    lua_pop(L, 1);
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
    lua_pushvalue(L, order);
    lua_pushvalue(L, -2);
    lua_rawset(L, e->orders);
    lua_remove(L, order);
}

/* Sorting: each key gets a class (ordered, _id, number, string, boolean,
 * null: compare_keys' order of kinds) and, for text, its first 8 bytes as
 * a big-endian number and its length, so that most comparisons touch
 * neither the slots nor the key bytes (which lie all over memory in a
 * large table); equal prefixes of two keys longer than 8 bytes fall back
 * to compare_keys. */
typedef struct sort_entry {
    uint64_t prefix;      /* position in __yaml_order, or the text's first bytes */
    uint32_t cls;
    uint32_t short_text;  /* text keys of at most 8 bytes: the prefix is all of it */
    size_t len;
    const key_slot *slot;
} sort_entry;

enum { CLASS_ORDERED, CLASS_ID, CLASS_NUMBER, CLASS_TEXT, CLASS_BOOLEAN, CLASS_NULL };

static uint64_t text_prefix(const char *s, size_t len)
{
    uint64_t p = 0;
    for (size_t i = 0; i < 8; i++)
        p = (p << 8) | (i < len ? (unsigned char)s[i] : 0);
    return p;
}

static void set_entry(sort_entry *en, const key_slot *k)
{
    en->slot = k;
    en->prefix = 0;
    en->short_text = 0;
    en->len = k->len;
    if (k->order != LUA_MAXINTEGER) {
        en->cls = CLASS_ORDERED;
        en->prefix = (uint64_t)k->order; /* positions are >= 1 */
        return;
    }
    const char *text = NULL;
    if (k->text_keys) {
        en->cls = k->id ? CLASS_ID : CLASS_TEXT;
        text = k->id ? NULL : key_text(k);
    } else {
        static const uint32_t by_kind[] = {CLASS_NUMBER, CLASS_TEXT, CLASS_BOOLEAN, CLASS_NULL};
        en->cls = by_kind[k->kind & 3];
        text = k->kind == 1 ? k->s : NULL;
    }
    if (text) {
        en->prefix = text_prefix(text, k->len);
        en->short_text = k->len <= 8;
    }
}

static int compare_entries(const void *pa, const void *pb)
{
    const sort_entry *a = pa, *b = pb;
    if (a->cls != b->cls)
        return a->cls < b->cls ? -1 : 1;
    if (a->prefix != b->prefix)
        return a->prefix < b->prefix ? -1 : 1;
    /* One text within its prefix and the prefixes equal: the other starts
     * with it (zero padding), so the shorter is first, as memcmp-then-length. */
    if (a->cls == CLASS_TEXT && (a->short_text || b->short_text))
        return a->len < b->len ? -1 : a->len > b->len;
    return compare_keys(a->slot, b->slot);
}

static int encode_into(lua_State *L, int idx, encoder *e, jj_yaml_node **root,
                       jj_yaml_node *parent, jj_yaml_node *key, place at);

/* The place of entry[key at kidx] (entry 0: none); pushes one value (the
 * entry's element or nil) that keeps place.text alive. */
static place push_place(lua_State *L, int entry, int kidx)
{
    if (!entry) {
        lua_pushnil(L);
        place none = {{0, 0}, NULL, 0};
        return none;
    }
    lua_pushvalue(L, kidx);
    lua_rawget(L, entry);
    return read_place(L, -1);
}

/* A large map's sort buffer: malloc'ed and owned by a small userdata that
 * frees it (at once when done, or at collection after an error), so that
 * the megabytes a 100k-key map needs count as no Lua allocation and set
 * off no garbage collection work (which walks the whole heap). */
#define BUFFER_MT "juju.tree.Buffer"

static int buffer_gc(lua_State *L)
{
    void **box = luaL_checkudata(L, 1, BUFFER_MT);
    free(*box);
    *box = NULL;
    return 0;
}

/* Pushes the box; returns the buffer or NULL (out of memory). May raise. */
static void *push_buffer(lua_State *L, size_t size)
{
    void **box = lua_newuserdatauv(L, sizeof *box, 0);
    *box = NULL;
    if (luaL_newmetatable(L, BUFFER_MT)) {
        lua_pushcfunction(L, buffer_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    *box = malloc(size);
    return *box;
}

static void free_buffer(lua_State *L, int idx)
{
    void **box = lua_touserdata(L, idx);
    if (box) {
        free(*box);
        *box = NULL;
    }
}

/* Maps up to this size sort on the C stack (no userdata to collect). */
#define SMALL_MAP 8

static int fill_map(lua_State *L, int t, encoder *e, jj_yaml_node *map, int entry)
{
    push_order_index(L, t, e);
    int order = lua_gettop(L);
    size_t n = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        n++;
    }
    key_slot small_keys[SMALL_MAP];
    sort_entry small_sorted[SMALL_MAP];
    key_slot *keys = small_keys;
    sort_entry *sorted = small_sorted;
    /* The values are taken while walking the table, so each is fetched by
     * position afterwards instead of looked up again by its key: on the
     * stack for a small map, in an array for a large one. */
    int values = 0;
    if (n > SMALL_MAP) {
        if (n > SIZE_MAX / (sizeof *keys + sizeof *sorted) || n > INT_MAX)
            return nomem(e);
        keys = push_buffer(L, n * (sizeof *keys + sizeof *sorted));
        if (!keys)
            return nomem(e);
        sorted = (sort_entry *)(keys + n);
        lua_createtable(L, (int)n, 0);
        values = lua_gettop(L);
    } else {
        luaL_checkstack(L, SMALL_MAP + 8, "table nested too deeply");
    }
    int base = lua_gettop(L);
    if (jj_yaml_reserve(map, n, e->err) != 0)
        return nomem(e);
    size_t k = 0;
    int integer_keys = 0; /* with text_keys, 2 and "2" can only collide if there are any */
    lua_pushnil(L);
    while (lua_next(L, t)) {
        if (k == n) /* cannot happen: nothing changes the table meanwhile */
            return fail(e, "table changed while being encoded");
        key_slot *slot = &keys[k];
        lua_pushvalue(L, -2);
        int rc = read_key(L, e, slot);
        if (rc)
            return rc;
        if (!lua_isnil(L, order)) {
            lua_pushvalue(L, -1);
            if (lua_rawget(L, order) == LUA_TNUMBER)
                slot->order = lua_tointeger(L, -1);
            lua_pop(L, 1);
        }
        lua_pop(L, 1); /* the key's copy */
        slot->value = (int)k + 1;
        if (values)
            lua_rawseti(L, values, slot->value);
        else
            lua_insert(L, -2); /* below the key lua_next wants on top */
        integer_keys |= slot->kind == 0;
        set_entry(&sorted[k], slot);
        k++;
    }
    if (k != n)
        return fail(e, "table changed while being encoded");
    qsort(sorted, n, sizeof *sorted, compare_entries);
    place none = {{0, 0}, NULL, 0};
    for (size_t i = 0; i < n; i++) {
        const key_slot *ks = sorted[i].slot;
        jj_yaml_node *key = slot_key_node(ks);
        if (!key)
            return nomem(e);
        if (ks->text_keys && integer_keys && jj_yaml_map_find(map, key) >= 0) { /* 2 and "2" */
            jj_yaml_free(key);
            return fail(e, "cannot encode a table with two keys written \"%.*s\"",
                        (int)(ks->len > 200 ? 200 : ks->len), key_text(ks));
        }
        int top = lua_gettop(L);
        place at = none;
        if (entry) {
            push_slot_key(L, ks);
            at = push_place(L, entry, top + 1);
        }
        if (values)
            lua_rawgeti(L, values, ks->value);
        else
            lua_pushvalue(L, base + ks->value);
        int rc = encode_into(L, lua_gettop(L), e, NULL, map, key, at);
        lua_settop(L, top);
        if (rc)
            return rc;
    }
    if (n > SMALL_MAP)
        free_buffer(L, order + 1); /* the box pushed above */
    lua_settop(L, order - 1);
    return 0;
}

static int fill_seq(lua_State *L, int t, encoder *e, jj_yaml_node *seq, int entry)
{
    lua_Integer n = (lua_Integer)lua_rawlen(L, t);
    if (n > 0 && jj_yaml_reserve(seq, (size_t)n, e->err) != 0)
        return nomem(e);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_pushinteger(L, i);
        int kidx = lua_gettop(L);
        place at = push_place(L, entry, kidx);
        if (lua_rawgeti(L, t, i) == LUA_TNIL && e->how->no_holes) {
            return fail(e, "array has a hole at %lld", (long long)i);
        }
        int rc = encode_into(L, lua_gettop(L), e, NULL, seq, NULL, at);
        lua_settop(L, kidx - 1);
        if (rc)
            return rc;
    }
    return 0;
}

static int fill_table(lua_State *L, int t, encoder *e, jj_yaml_node *n, int entry)
{
    luaL_checkstack(L, 12, "table nested too deeply");
    if (e->depth >= e->how->max_depth) {
        return fail(e, "table nested more than %d levels deep", e->how->max_depth);
    }
    lua_pushvalue(L, t);
    if (lua_rawget(L, e->visiting) != LUA_TNIL) {
        lua_pop(L, 1);
        return fail(e, "cannot encode a table that contains itself");
    }
    lua_pop(L, 1);
    lua_pushvalue(L, t);
    lua_pushboolean(L, 1);
    lua_rawset(L, e->visiting);
    e->depth++;
    int rc = jj_yaml_type_of(n) == JJ_YAML_SEQ ? fill_seq(L, t, e, n, entry)
                                               : fill_map(L, t, e, n, entry);
    e->depth--;
    lua_pushvalue(L, t);
    lua_pushnil(L);
    lua_rawset(L, e->visiting);
    return rc;
}

/* A node for the value at idx: scalars complete, tables as an empty
 * collection that fill_table completes once it is attached. */
static int make_node(lua_State *L, int idx, encoder *e, const place *at, jj_yaml_node **out)
{
    *out = NULL;
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
    case LUA_TBOOLEAN:
    case LUA_TNUMBER:
    case LUA_TSTRING: *out = scalar_node_as_written(L, idx, at); break;
    case LUA_TLIGHTUSERDATA:
        if (!jj_tree_is_null(L, idx))
            return fail(e, "cannot encode a light userdata");
        *out = jj_yaml_new_null();
        break;
    case LUA_TTABLE:
        *out = jj_tree_is_sequence(L, idx) ? jj_yaml_new_seq() : jj_yaml_new_map();
        break;
    default: return fail(e, "cannot encode a %s", luaL_typename(L, idx));
    }
    return *out ? 0 : nomem(e);
}

/* Converts the value at idx and attaches it (as *root, or to parent, under
 * key, which is taken over) before filling it: a Lua error at any point
 * leaves every node reachable from the scratch that owns the root. */
static int encode_into(lua_State *L, int idx, encoder *e, jj_yaml_node **root,
                       jj_yaml_node *parent, jj_yaml_node *key, place at)
{
    jj_yaml_node *n;
    int rc = make_node(L, idx, e, &at, &n);
    if (rc) {
        jj_yaml_free(key);
        return rc;
    }
    int is_table = lua_istable(L, idx);
    int entry = 0;
    if (is_table && e->how->marks) {
        lua_pushvalue(L, idx);
        lua_rawget(L, e->how->marks);
        entry = lua_istable(L, -1) ? lua_gettop(L) : 0;
        if (entry && at.mark.line == 0) {
            lua_getfield(L, entry, "__self");
            at.mark = read_place(L, -1).mark;
            lua_pop(L, 1);
        }
    }
    jj_yaml_set_mark(n, at.mark.line, at.mark.column);
    if (root) {
        *root = n;
    } else if (key) {
        /* A table's keys are distinct Lua values, and distinct nodes but
         * for 2 and "2" as text, which fill_map looks for first. */
        rc = jj_yaml_map_append(parent, key, n, e->err);
    } else {
        rc = jj_yaml_seq_append(parent, n, e->err);
    }
    if (rc)
        return rc == JJ_ENOMEM ? nomem(e) : fail(e, "%s", e->err->message);
    return is_table ? fill_table(L, idx, e, n, entry) : 0;
}

int jj_tree_encode(lua_State *L, int idx, const jj_tree_encoding *how, jj_yaml_node **root,
                   jj_error *err)
{
    idx = lua_absindex(L, idx);
    int top = lua_gettop(L);
    encoder e = {how, 0, 0, 0, err};
    lua_newtable(L);
    e.visiting = lua_gettop(L);
    lua_newtable(L);
    e.orders = lua_gettop(L);
    place none = {{0, 0}, NULL, 0};
    int rc = encode_into(L, idx, &e, root, NULL, NULL, none);
    lua_settop(L, top);
    return rc;
}
