/* doc.c: the document model (see doc.h): typed scalars, sequences, and
 * mappings in insertion order with a hash index over their keys.
 *
 * Plain-scalar resolution follows gopkg.in/yaml.v2 because the files we
 * read were written for Juju 1.x, which read them with that library.
 */
#include "doc.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a sequence or mapping has beyond a scalar's fields (a separate
 * allocation: a document is mostly scalars, and 48 bytes a scalar rather
 * than 112 halves the memory a large tree spreads over). */
typedef struct collection {
    size_t count, cap;
    jj_yaml_node **items; /* sequence items, or mapping values */
    jj_yaml_node **keys;  /* mapping keys */
    /* Mappings only: open-addressing index of key positions (see
     * index_insert), built by the first lookup once count exceeds
     * INDEX_MIN; icap is a power of two kept at least twice count.
     * nonstring counts keys that are not strings (text lookups must then
     * scan: int 1 has text "1"). */
    uint64_t *index;
    size_t icap;
    size_t indexed; /* keys[0 .. indexed) are in the index (see index_sync) */
    size_t nonstring;
} collection;

struct jj_yaml_node {
    jj_yaml_type type;
    unsigned char text_inline; /* text lives in this node's own allocation (not freed alone) */
    jj_yaml_mark mark;
    union {
        int boolean;
        int64_t integer;
        double real;
    } v;
    char *text; /* scalars only, NUL-terminated */
    size_t len;
    collection *c; /* sequences and mappings only (never NULL for them) */
};

static inline int is_collection(jj_yaml_type type)
{
    return type == JJ_YAML_SEQ || type == JJ_YAML_MAP;
}

/* Below this many keys a scan is as fast as hashing and costs no memory. */
#define INDEX_MIN 8

/* --- construction -------------------------------------------------------- */

static jj_yaml_node *node_alloc(jj_yaml_type type)
{
    jj_yaml_node *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->type = type;
    if (is_collection(type) && !(n->c = calloc(1, sizeof *n->c))) {
        free(n);
        return NULL;
    }
    return n;
}

static inline void free_text(jj_yaml_node *n)
{
    if (!n->text_inline)
        free(n->text);
    n->text = NULL;
    n->text_inline = 0;
}

static int set_text(jj_yaml_node *n, const char *s, size_t len)
{
    char *t = malloc(len + 1);
    if (!t)
        return JJ_ENOMEM;
    if (len)
        memcpy(t, s, len);
    t[len] = '\0';
    free_text(n);
    n->text = t;
    n->len = len;
    return 0;
}

/* A scalar and its text in one allocation: documents are mostly short
 * scalars, and one malloc a node instead of two halves the allocator's work
 * (building, then freeing, a tree of 100k keys). */
static jj_yaml_node *scalar_with_text(jj_yaml_type type, const char *s, size_t len)
{
    if (len > SIZE_MAX - sizeof(jj_yaml_node) - 1)
        return NULL;
    jj_yaml_node *n = malloc(sizeof *n + len + 1);
    if (!n)
        return NULL;
    memset(n, 0, sizeof *n);
    n->type = type;
    n->text = (char *)(n + 1);
    n->text_inline = 1;
    if (len)
        memcpy(n->text, s, len);
    n->text[len] = '\0';
    n->len = len;
    return n;
}

/* Shortest text that reads back as the same double, and reads back as a
 * float rather than an int ("1" would become an int, so it is "1.0"). */
void jj_yaml_format_float(double d, char *buf, size_t size)
{
    if (isnan(d)) {
        snprintf(buf, size, ".nan");
        return;
    }
    if (isinf(d)) {
        snprintf(buf, size, d < 0 ? "-.inf" : ".inf");
        return;
    }
    if (d > -1e15 && d < 1e15 && (double)(int64_t)d == d) { /* integral: no exponent */
        snprintf(buf, size, "%.1f", d);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    if (!strpbrk(buf, ".eE")) {
        size_t n = strlen(buf);
        if (n + 3 <= size)
            memcpy(buf + n, ".0", 3);
    }
}

/* Built null, bool, int and float scalars get no text: their canonical
 * text is made from the value when first asked for (node_text), so
 * building large documents costs no formatting nobody reads. */
jj_yaml_node *jj_yaml_new_null(void)
{
    return node_alloc(JJ_YAML_NULL);
}

jj_yaml_node *jj_yaml_new_bool(int value)
{
    jj_yaml_node *n = node_alloc(JJ_YAML_BOOL);
    if (n)
        n->v.boolean = value ? 1 : 0;
    return n;
}

jj_yaml_node *jj_yaml_new_int(int64_t value)
{
    jj_yaml_node *n = node_alloc(JJ_YAML_INT);
    if (n)
        n->v.integer = value;
    return n;
}

jj_yaml_node *jj_yaml_new_float(double value)
{
    jj_yaml_node *n = node_alloc(JJ_YAML_FLOAT);
    if (n)
        n->v.real = value;
    return n;
}

/* The text of a scalar: as written or built, else canonical from its value
 * (made once and kept: the node is logically unchanged). NULL for
 * collections, and when there is no memory for the text. */
static const char *node_text(const jj_yaml_node *cn, size_t *len)
{
    jj_yaml_node *n = (jj_yaml_node *)cn;
    if (!n->text) {
        char buf[48];
        switch (n->type) {
        case JJ_YAML_NULL: *len = 4; return "null";
        case JJ_YAML_BOOL:
            *len = n->v.boolean ? 4 : 5;
            return n->v.boolean ? "true" : "false";
        case JJ_YAML_INT: snprintf(buf, sizeof buf, "%" PRId64, n->v.integer); break;
        case JJ_YAML_FLOAT: jj_yaml_format_float(n->v.real, buf, sizeof buf); break;
        default: *len = 0; return NULL;
        }
        if (set_text(n, buf, strlen(buf)) != 0) {
            *len = 0;
            return NULL;
        }
    }
    *len = n->len;
    return n->text;
}

jj_yaml_node *jj_yaml_new_stringn(const char *s, size_t len)
{
    return scalar_with_text(JJ_YAML_STRING, s ? s : "", s ? len : 0);
}

jj_yaml_node *jj_yaml_new_string(const char *s)
{
    return jj_yaml_new_stringn(s, s ? strlen(s) : 0);
}

jj_yaml_node *jj_yaml_new_seq(void)
{
    return node_alloc(JJ_YAML_SEQ);
}

jj_yaml_node *jj_yaml_new_map(void)
{
    return node_alloc(JJ_YAML_MAP);
}

void jj_yaml_free(jj_yaml_node *n)
{
    if (!n)
        return;
    if (is_collection(n->type)) {
        for (size_t i = 0; i < n->c->count; i++) {
            jj_yaml_free(n->c->items[i]);
            if (n->c->keys)
                jj_yaml_free(n->c->keys[i]);
        }
        free(n->c->items);
        free(n->c->keys);
        free(n->c->index);
        free(n->c);
    }
    free_text(n);
    free(n);
}

jj_yaml_node *jj_yaml_copy(const jj_yaml_node *src)
{
    if (!src)
        return NULL;
    jj_yaml_node *n = src->text ? scalar_with_text(src->type, src->text, src->len) : node_alloc(src->type);
    if (!n)
        return NULL;
    n->mark = src->mark;
    n->v = src->v;
    if (is_collection(src->type) && src->c->count) {
        n->c->items = calloc(src->c->count, sizeof *n->c->items);
        if (!n->c->items)
            goto fail;
        if (src->type == JJ_YAML_MAP) {
            n->c->keys = calloc(src->c->count, sizeof *n->c->keys);
            if (!n->c->keys)
                goto fail;
        }
        n->c->cap = src->c->count;
        for (size_t i = 0; i < src->c->count; i++) {
            n->c->items[i] = jj_yaml_copy(src->c->items[i]);
            if (n->c->keys)
                n->c->keys[i] = jj_yaml_copy(src->c->keys[i]);
            n->c->count = i + 1;
            if (!n->c->items[i] || (n->c->keys && !n->c->keys[i]))
                goto fail;
        }
        n->c->nonstring = src->c->nonstring; /* the index is built by the first lookup */
    }
    return n;
fail:
    jj_yaml_free(n);
    return NULL;
}

/* Sets the capacity of items (and keys) to cap >= count. */
static int set_capacity(jj_yaml_node *n, size_t cap)
{
    if (cap > SIZE_MAX / sizeof(jj_yaml_node *))
        return JJ_ENOMEM;
    jj_yaml_node **items = realloc(n->c->items, cap * sizeof *items);
    if (!items)
        return JJ_ENOMEM;
    n->c->items = items;
    if (n->type == JJ_YAML_MAP) {
        jj_yaml_node **keys = realloc(n->c->keys, cap * sizeof *keys);
        if (!keys)
            return JJ_ENOMEM;
        n->c->keys = keys;
    }
    n->c->cap = cap;
    return 0;
}

static int grow(jj_yaml_node *n)
{
    if (n->c->count < n->c->cap)
        return 0;
    return set_capacity(n, n->c->cap ? n->c->cap * 2 : 4);
}

int jj_yaml_reserve(jj_yaml_node *n, size_t count, jj_error *err)
{
    if (!n || (n->type != JJ_YAML_SEQ && n->type != JJ_YAML_MAP))
        return jj_error_set(err, JJ_EINVAL, "yaml: reserve needs a sequence or a mapping");
    if (count > n->c->cap && set_capacity(n, count) != 0)
        return jj_error_set(err, JJ_ENOMEM, "yaml: out of memory");
    return 0;
}

int jj_yaml_seq_append(jj_yaml_node *seq, jj_yaml_node *item, jj_error *err)
{
    if (!seq || seq->type != JJ_YAML_SEQ || !item) {
        jj_yaml_free(item);
        return jj_error_set(err, JJ_EINVAL, "yaml: append needs a sequence and an item");
    }
    if (grow(seq) != 0) {
        jj_yaml_free(item);
        return jj_error_set(err, JJ_ENOMEM, "yaml: out of memory");
    }
    seq->c->items[seq->c->count++] = item;
    return 0;
}

static int scalar_equal(const jj_yaml_node *a, const jj_yaml_node *b)
{
    if (a->type != b->type)
        return 0;
    switch (a->type) {
    case JJ_YAML_NULL: return 1;
    case JJ_YAML_BOOL: return a->v.boolean == b->v.boolean;
    case JJ_YAML_INT: return a->v.integer == b->v.integer;
    case JJ_YAML_FLOAT:
        return a->v.real == b->v.real || (isnan(a->v.real) && isnan(b->v.real));
    case JJ_YAML_STRING: return a->len == b->len && memcmp(a->text, b->text, a->len) == 0;
    default: return 0;
    }
}

/* FNV-1a over the key's type and value: equal keys (scalar_equal) hash
 * alike (-0.0 as 0.0, every NaN as one NaN). */
static uint64_t key_hash(const jj_yaml_node *k)
{
    uint64_t h = 1469598103934665603ULL;
    const unsigned char *p = NULL;
    size_t len = 0;
    double real;
    switch (k->type) {
    case JJ_YAML_BOOL: p = (const unsigned char *)&k->v.boolean; len = sizeof k->v.boolean; break;
    case JJ_YAML_INT: p = (const unsigned char *)&k->v.integer; len = sizeof k->v.integer; break;
    case JJ_YAML_FLOAT:
        real = isnan(k->v.real) ? NAN : (k->v.real == 0 ? 0.0 : k->v.real);
        p = (const unsigned char *)&real;
        len = sizeof real;
        break;
    case JJ_YAML_STRING: p = (const unsigned char *)k->text; len = k->len; break;
    default: break;
    }
    h = (h ^ (unsigned)k->type) * 1099511628211ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    /* FNV alone spreads keys that differ in their last bytes ("key1",
     * "key2"...) poorly: mix (MurmurHash3's finalizer) so the high half,
     * which picks the slot (SLOT_HOME), spreads and probing stays short. */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

/* An index slot: the key's position + 1 in the low 32 bits (0 = empty),
 * its hash's high 32 bits above. The slot a key goes to comes from those
 * same high bits, so a probe compares hashes before it touches a key (the
 * keys of a large map are all over memory) and growing the index moves
 * slots without hashing any key again. */
#define SLOT_POS(s) ((size_t)((s) & 0xffffffffu))
#define SLOT_TAG(h) ((uint64_t)(h) & 0xffffffff00000000ull)
#define SLOT_HOME(s, mask) ((size_t)((s) >> 32) & (mask))
/* Positions must fit the slot; larger maps (never seen) are scanned. */
#define INDEX_MAX 0x7ffffffeu

static void index_put(uint64_t *index, size_t mask, uint64_t slot)
{
    size_t i = SLOT_HOME(slot, mask);
    while (index[i])
        i = (i + 1) & mask;
    index[i] = slot;
}

static void index_insert(jj_yaml_node *map, size_t pos)
{
    uint64_t h = key_hash(map->c->keys[pos]);
    index_put(map->c->index, map->c->icap - 1, SLOT_TAG(h) | (uint64_t)(pos + 1));
}

static void index_drop(jj_yaml_node *map)
{
    free(map->c->index);
    map->c->index = NULL;
    map->c->icap = 0;
    map->c->indexed = 0;
}

/* Brings the index up to date with the keys (building or enlarging it as
 * needed). The index is a cache: appending a key does not touch it, the
 * first lookup after indexes what was appended, so a mapping built and
 * then only walked (an encoder's) never has one. Returns 1 when the index
 * can be used, 0 when the map is to be scanned (small, or no memory). */
static int index_sync(jj_yaml_node *map)
{
    collection *c = map->c;
    if (c->count <= INDEX_MIN || c->count > INDEX_MAX)
        return 0;
    if (!c->index || c->count * 2 > c->icap) {
        size_t cap = 32;
        while (cap < c->count * 2)
            cap *= 2;
        uint64_t *index = calloc(cap, sizeof *index);
        if (!index)
            return 0; /* the old index (if any) stays valid for what it covers */
        for (size_t i = 0; i < c->icap; i++) /* moved by their tags: no key read */
            if (c->index[i])
                index_put(index, cap - 1, c->index[i]);
        free(c->index);
        c->index = index;
        c->icap = cap;
    }
    for (; c->indexed < c->count; c->indexed++)
        index_insert(map, c->indexed);
    return 1;
}

static long find_key_node(const jj_yaml_node *cmap, const jj_yaml_node *key)
{
    jj_yaml_node *map = (jj_yaml_node *)cmap; /* the index is a cache (see index_sync) */
    if (index_sync(map)) {
        size_t mask = map->c->icap - 1;
        uint64_t tag = SLOT_TAG(key_hash(key));
        for (size_t i = SLOT_HOME(tag, mask);; i = (i + 1) & mask) {
            uint64_t s = map->c->index[i];
            if (!s)
                return -1;
            if (SLOT_TAG(s) == tag && scalar_equal(map->c->keys[SLOT_POS(s) - 1], key))
                return (long)(SLOT_POS(s) - 1);
        }
    }
    for (size_t i = 0; i < map->c->count; i++)
        if (scalar_equal(map->c->keys[i], key))
            return (long)i;
    return -1;
}

/* Appends without looking for an equal key; takes key and value. */
static int map_append(jj_yaml_node *map, jj_yaml_node *key, jj_yaml_node *value)
{
    if (grow(map) != 0)
        return JJ_ENOMEM;
    map->c->keys[map->c->count] = key;
    map->c->items[map->c->count] = value;
    map->c->count++;
    if (key->type != JJ_YAML_STRING)
        map->c->nonstring++;
    return 0;
}

static inline int bad_pair(const jj_yaml_node *map, const jj_yaml_node *key,
                           const jj_yaml_node *value)
{
    return !map || map->type != JJ_YAML_MAP || !key || !value || key->type == JJ_YAML_SEQ ||
           key->type == JJ_YAML_MAP;
}

int jj_yaml_map_put(jj_yaml_node *map, jj_yaml_node *key, jj_yaml_node *value, jj_error *err)
{
    if (bad_pair(map, key, value)) {
        jj_yaml_free(key);
        jj_yaml_free(value);
        return jj_error_set(err, JJ_EINVAL, "yaml: map_put needs a mapping, a scalar key and a value");
    }
    long at = find_key_node(map, key);
    if (at >= 0) {
        jj_yaml_free(key);
        jj_yaml_free(map->c->items[at]);
        map->c->items[at] = value;
        return 0;
    }
    if (map_append(map, key, value) != 0) {
        jj_yaml_free(key);
        jj_yaml_free(value);
        return jj_error_set(err, JJ_ENOMEM, "yaml: out of memory");
    }
    return 0;
}

int jj_yaml_map_add(jj_yaml_node *map, jj_yaml_node *key, jj_yaml_node *value, jj_error *err)
{
    if (bad_pair(map, key, value)) {
        jj_yaml_free(key);
        jj_yaml_free(value);
        return jj_error_set(err, JJ_EINVAL, "yaml: map_add needs a mapping, a scalar key and a value");
    }
    if (find_key_node(map, key) >= 0) {
        jj_yaml_free(key);
        jj_yaml_free(value);
        return jj_error_set(err, JJ_EEXIST, "yaml: mapping key already present");
    }
    if (map_append(map, key, value) != 0) {
        jj_yaml_free(key);
        jj_yaml_free(value);
        return jj_error_set(err, JJ_ENOMEM, "yaml: out of memory");
    }
    return 0;
}

int jj_yaml_map_append(jj_yaml_node *map, jj_yaml_node *key, jj_yaml_node *value, jj_error *err)
{
    if (bad_pair(map, key, value)) {
        jj_yaml_free(key);
        jj_yaml_free(value);
        return jj_error_set(err, JJ_EINVAL, "yaml: map_append needs a mapping, a scalar key and a value");
    }
    if (map_append(map, key, value) != 0) {
        jj_yaml_free(key);
        jj_yaml_free(value);
        return jj_error_set(err, JJ_ENOMEM, "yaml: out of memory");
    }
    return 0;
}

long jj_yaml_map_find(const jj_yaml_node *map, const jj_yaml_node *key)
{
    if (!map || map->type != JJ_YAML_MAP || !key)
        return -1;
    return find_key_node(map, key);
}

int jj_yaml_map_set(jj_yaml_node *map, const char *key, jj_yaml_node *value, jj_error *err)
{
    if (!key) {
        jj_yaml_free(value);
        return jj_error_set(err, JJ_EINVAL, "yaml: map_set needs a key");
    }
    jj_yaml_node *k = jj_yaml_new_string(key);
    if (!k) {
        jj_yaml_free(value);
        return jj_error_set(err, JJ_ENOMEM, "yaml: out of memory");
    }
    return jj_yaml_map_put(map, k, value, err);
}

static long find_key_text(const jj_yaml_node *map, const char *key)
{
    if (!map || map->type != JJ_YAML_MAP || !key)
        return -1;
    size_t len = strlen(key);
    if (map->c->nonstring == 0 && index_sync((jj_yaml_node *)map)) {
        jj_yaml_node probe;
        memset(&probe, 0, sizeof probe);
        probe.type = JJ_YAML_STRING;
        probe.text = (char *)key; /* read only: never freed */
        probe.len = len;
        return find_key_node(map, &probe);
    }
    for (size_t i = 0; i < map->c->count; i++) {
        const jj_yaml_node *k = map->c->keys[i];
        size_t klen;
        const char *ktext = node_text(k, &klen);
        if (ktext && klen == len && memcmp(ktext, key, len) == 0)
            return (long)i;
    }
    return -1;
}

int jj_yaml_map_delete(jj_yaml_node *map, const char *key)
{
    long at = find_key_text(map, key);
    if (at < 0)
        return 0;
    if (map->c->keys[at]->type != JJ_YAML_STRING)
        map->c->nonstring--;
    jj_yaml_free(map->c->keys[at]);
    jj_yaml_free(map->c->items[at]);
    size_t rest = map->c->count - (size_t)at - 1;
    memmove(map->c->keys + at, map->c->keys + at + 1, rest * sizeof *map->c->keys);
    memmove(map->c->items + at, map->c->items + at + 1, rest * sizeof *map->c->items);
    map->c->count--;
    index_drop(map); /* positions moved: the next lookup indexes afresh */
    return 1;
}

void jj_yaml_set_mark(jj_yaml_node *n, int line, int column)
{
    if (n) {
        n->mark.line = line;
        n->mark.column = column;
    }
}

/* --- reading ------------------------------------------------------------- */

jj_yaml_type jj_yaml_type_of(const jj_yaml_node *n)
{
    return n ? n->type : JJ_YAML_NULL;
}

const char *jj_yaml_type_name(jj_yaml_type type)
{
    static const char *const names[] = {"null", "bool", "int", "float", "string", "seq", "map"};
    return (unsigned)type < sizeof names / sizeof names[0] ? names[type] : "unknown";
}

jj_yaml_mark jj_yaml_mark_of(const jj_yaml_node *n)
{
    jj_yaml_mark none = {0, 0};
    return n ? n->mark : none;
}

int jj_yaml_bool(const jj_yaml_node *n)
{
    return n && n->type == JJ_YAML_BOOL ? n->v.boolean : 0;
}

int64_t jj_yaml_int(const jj_yaml_node *n)
{
    return n && n->type == JJ_YAML_INT ? n->v.integer : 0;
}

double jj_yaml_float(const jj_yaml_node *n)
{
    if (n && n->type == JJ_YAML_FLOAT)
        return n->v.real;
    if (n && n->type == JJ_YAML_INT)
        return (double)n->v.integer;
    return 0.0;
}

const char *jj_yaml_text(const jj_yaml_node *n, size_t *len)
{
    size_t l = 0;
    const char *t = n ? node_text(n, &l) : NULL;
    if (len)
        *len = l;
    return t;
}

size_t jj_yaml_count(const jj_yaml_node *n)
{
    return n && (n->type == JJ_YAML_SEQ || n->type == JJ_YAML_MAP) ? n->c->count : 0;
}

jj_yaml_node *jj_yaml_seq_at(const jj_yaml_node *n, size_t i)
{
    return n && n->type == JJ_YAML_SEQ && i < n->c->count ? n->c->items[i] : NULL;
}

jj_yaml_node *jj_yaml_map_key_at(const jj_yaml_node *n, size_t i)
{
    return n && n->type == JJ_YAML_MAP && i < n->c->count ? n->c->keys[i] : NULL;
}

jj_yaml_node *jj_yaml_map_value_at(const jj_yaml_node *n, size_t i)
{
    return n && n->type == JJ_YAML_MAP && i < n->c->count ? n->c->items[i] : NULL;
}

jj_yaml_node *jj_yaml_map_get(const jj_yaml_node *map, const char *key)
{
    long at = find_key_text(map, key);
    return at < 0 ? NULL : map->c->items[at];
}

const char *jj_yaml_map_get_string(const jj_yaml_node *map, const char *key)
{
    const jj_yaml_node *v = jj_yaml_map_get(map, key);
    return v && v->type == JJ_YAML_STRING ? v->text : NULL;
}

int jj_yaml_equal(const jj_yaml_node *a, const jj_yaml_node *b)
{
    if (!a || !b)
        return a == b;
    if (a->type != b->type)
        return 0;
    if (a->type == JJ_YAML_SEQ) {
        if (a->c->count != b->c->count)
            return 0;
        for (size_t i = 0; i < a->c->count; i++)
            if (!jj_yaml_equal(a->c->items[i], b->c->items[i]))
                return 0;
        return 1;
    }
    if (a->type == JJ_YAML_MAP) {
        if (a->c->count != b->c->count)
            return 0;
        for (size_t i = 0; i < a->c->count; i++) {
            long j = find_key_node(b, a->c->keys[i]);
            if (j < 0 || !jj_yaml_equal(a->c->items[i], b->c->items[j]))
                return 0;
        }
        return 1;
    }
    return scalar_equal(a, b);
}

/* --- scalar resolution (gopkg.in/yaml.v2 resolve.go, YAML 1.1) ----------- */

static int text_in(const char *s, size_t len, const char *const *list)
{
    for (; *list; list++)
        if (strlen(*list) == len && memcmp(*list, s, len) == 0)
            return 1;
    return 0;
}

/* Copies s without '_' (yaml.v2 drops them before parsing numbers). */
static int strip_underscores(const char *s, size_t len, char *buf, size_t size)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '_')
            continue;
        if (s[i] == '\0' || n + 1 >= size)
            return 0;
        buf[n++] = s[i];
    }
    buf[n] = '\0';
    return 1;
}

static int digit_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return 99;
}

/* Go's strconv.ParseInt(s, 0, 64): sign, 0x/0o/0b prefixes, leading-0 octal. */
static int parse_int(const char *s, size_t len, int64_t *out)
{
    char buf[96];
    if (!strip_underscores(s, len, buf, sizeof buf))
        return 0;
    const char *p = buf;
    int neg = 0;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    unsigned base = 10;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        base = 16;
        p += 2;
    } else if (p[0] == '0' && (p[1] == 'o' || p[1] == 'O')) {
        base = 8;
        p += 2;
    } else if (p[0] == '0' && (p[1] == 'b' || p[1] == 'B')) {
        base = 2;
        p += 2;
    } else if (p[0] == '0' && p[1]) {
        base = 8;
        p += 1;
    }
    if (!*p)
        return 0;
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t acc = 0;
    for (; *p; p++) {
        unsigned d = (unsigned)digit_value(*p);
        if (d >= base || acc > (limit - d) / base)
            return 0;
        acc = acc * base + d;
    }
    if (neg)
        *out = acc == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)acc;
    else
        *out = (int64_t)acc;
    return 1;
}

static size_t count_digits(const char *p)
{
    size_t n = 0;
    while (p[n] >= '0' && p[n] <= '9')
        n++;
    return n;
}

/* yaml.v2's yamlStyleFloat: ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$ */
static int parse_float(const char *s, size_t len, double *out)
{
    char buf[128];
    if (!strip_underscores(s, len, buf, sizeof buf))
        return 0;
    const char *p = buf;
    if (*p == '+' || *p == '-')
        p++;
    size_t whole = count_digits(p);
    p += whole;
    if (*p == '.') {
        p++;
        size_t frac = count_digits(p);
        if (!whole && !frac)
            return 0;
        p += frac;
    } else if (!whole) {
        return 0;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        size_t exp = count_digits(p);
        if (!exp)
            return 0;
        p += exp;
    }
    if (*p)
        return 0;
    *out = strtod(buf, NULL);
    return 1;
}

/* Sets n's type and value from its text as a plain scalar. */
static void resolve_plain(jj_yaml_node *n)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
    static const char *const trues[] = {"y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE",
                                        "on", "On", "ON", NULL};
    static const char *const falses[] = {"n", "N", "no", "No", "NO", "false", "False", "FALSE",
                                         "off", "Off", "OFF", NULL};
    static const char *const pos_inf[] = {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", NULL};
    static const char *const neg_inf[] = {"-.inf", "-.Inf", "-.INF", NULL};
    static const char *const nans[] = {".nan", ".NaN", ".NAN", NULL};
    const char *s = n->text;
    size_t len = n->len;

    n->type = JJ_YAML_STRING;
    if (text_in(s, len, nulls)) {
        n->type = JJ_YAML_NULL;
    } else if (text_in(s, len, trues) || text_in(s, len, falses)) {
        n->type = JJ_YAML_BOOL;
        n->v.boolean = text_in(s, len, trues);
    } else if (text_in(s, len, pos_inf) || text_in(s, len, neg_inf)) {
        n->type = JJ_YAML_FLOAT;
        n->v.real = s[0] == '-' ? -INFINITY : INFINITY;
    } else if (text_in(s, len, nans)) {
        n->type = JJ_YAML_FLOAT;
        n->v.real = NAN;
    } else if (len && strchr("+-.0123456789", s[0])) {
        if (parse_int(s, len, &n->v.integer))
            n->type = JJ_YAML_INT;
        else if (parse_float(s, len, &n->v.real))
            n->type = JJ_YAML_FLOAT;
    }
}

jj_yaml_type jj_yaml_resolve_plain(const char *text, size_t len)
{
    jj_yaml_node probe;
    memset(&probe, 0, sizeof probe);
    probe.type = JJ_YAML_STRING;
    probe.text = (char *)(text ? text : ""); /* read only */
    probe.len = text ? len : 0;
    resolve_plain(&probe);
    return probe.type;
}

jj_yaml_node *jj_yaml_new_plain(const char *text, size_t len)
{
    jj_yaml_node *n = scalar_with_text(JJ_YAML_STRING, text ? text : "", text ? len : 0);
    if (n)
        resolve_plain(n);
    return n;
}


int jj_yaml_to_float(jj_yaml_node *n)
{
    if (!n || n->type != JJ_YAML_INT)
        return JJ_EINVAL;
    n->v.real = (double)n->v.integer;
    n->type = JJ_YAML_FLOAT;
    return 0;
}
