/* yaml.c: the YAML document model (see yaml.h).
 *
 * Parsing consumes libyaml events and builds the tree directly; resolution
 * of plain scalars follows gopkg.in/yaml.v2 because the files we read were
 * written for Juju 1.x, which read them with that library. Emission feeds
 * libyaml's emitter and picks each string's style so the text reads back as
 * the same value.
 */
/* <yaml.h> first: it reaches libyaml's header directly or via ours (see the
 * end of core/yaml.h); "yaml.h" then makes sure ours is in. */
#define JJ_YAML_IMPLEMENTATION
#include <yaml.h>

#include "yaml.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct jj_yaml_node {
    jj_yaml_type type;
    jj_yaml_mark mark;
    union {
        int boolean;
        int64_t integer;
        double real;
    } v;
    char *text; /* scalars only, NUL-terminated */
    size_t len;
    size_t count, cap;
    jj_yaml_node **items; /* sequence items, or mapping values */
    jj_yaml_node **keys;  /* mapping keys */
};

/* --- construction -------------------------------------------------------- */

static jj_yaml_node *node_alloc(jj_yaml_type type)
{
    jj_yaml_node *n = calloc(1, sizeof *n);
    if (n)
        n->type = type;
    return n;
}

static int set_text(jj_yaml_node *n, const char *s, size_t len)
{
    char *t = malloc(len + 1);
    if (!t)
        return JJ_ENOMEM;
    if (len)
        memcpy(t, s, len);
    t[len] = '\0';
    free(n->text);
    n->text = t;
    n->len = len;
    return 0;
}

static jj_yaml_node *scalar_with_text(jj_yaml_type type, const char *s, size_t len)
{
    jj_yaml_node *n = node_alloc(type);
    if (n && set_text(n, s, len) != 0) {
        free(n);
        return NULL;
    }
    return n;
}

/* Shortest text that reads back as the same double, and reads back as a
 * float rather than an int ("1" would become an int, so it is "1.0"). */
static void format_float(double d, char *buf, size_t size)
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

jj_yaml_node *jj_yaml_new_null(void)
{
    return scalar_with_text(JJ_YAML_NULL, "null", 4);
}

jj_yaml_node *jj_yaml_new_bool(int value)
{
    jj_yaml_node *n = value ? scalar_with_text(JJ_YAML_BOOL, "true", 4)
                            : scalar_with_text(JJ_YAML_BOOL, "false", 5);
    if (n)
        n->v.boolean = value ? 1 : 0;
    return n;
}

jj_yaml_node *jj_yaml_new_int(int64_t value)
{
    char buf[32];
    int len = snprintf(buf, sizeof buf, "%" PRId64, value);
    jj_yaml_node *n = scalar_with_text(JJ_YAML_INT, buf, (size_t)len);
    if (n)
        n->v.integer = value;
    return n;
}

jj_yaml_node *jj_yaml_new_float(double value)
{
    char buf[48];
    format_float(value, buf, sizeof buf);
    jj_yaml_node *n = scalar_with_text(JJ_YAML_FLOAT, buf, strlen(buf));
    if (n)
        n->v.real = value;
    return n;
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
    for (size_t i = 0; i < n->count; i++) {
        jj_yaml_free(n->items[i]);
        if (n->keys)
            jj_yaml_free(n->keys[i]);
    }
    free(n->items);
    free(n->keys);
    free(n->text);
    free(n);
}

jj_yaml_node *jj_yaml_copy(const jj_yaml_node *src)
{
    if (!src)
        return NULL;
    jj_yaml_node *n = node_alloc(src->type);
    if (!n)
        return NULL;
    n->mark = src->mark;
    n->v = src->v;
    if (src->text && set_text(n, src->text, src->len) != 0)
        goto fail;
    if (src->count) {
        n->items = calloc(src->count, sizeof *n->items);
        if (!n->items)
            goto fail;
        if (src->type == JJ_YAML_MAP) {
            n->keys = calloc(src->count, sizeof *n->keys);
            if (!n->keys)
                goto fail;
        }
        n->cap = src->count;
        for (size_t i = 0; i < src->count; i++) {
            n->items[i] = jj_yaml_copy(src->items[i]);
            if (n->keys)
                n->keys[i] = jj_yaml_copy(src->keys[i]);
            n->count = i + 1;
            if (!n->items[i] || (n->keys && !n->keys[i]))
                goto fail;
        }
    }
    return n;
fail:
    jj_yaml_free(n);
    return NULL;
}

static int grow(jj_yaml_node *n)
{
    if (n->count < n->cap)
        return 0;
    size_t cap = n->cap ? n->cap * 2 : 4;
    jj_yaml_node **items = realloc(n->items, cap * sizeof *items);
    if (!items)
        return JJ_ENOMEM;
    n->items = items;
    if (n->type == JJ_YAML_MAP) {
        jj_yaml_node **keys = realloc(n->keys, cap * sizeof *keys);
        if (!keys)
            return JJ_ENOMEM;
        n->keys = keys;
    }
    n->cap = cap;
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
    seq->items[seq->count++] = item;
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

static long find_key_node(const jj_yaml_node *map, const jj_yaml_node *key)
{
    for (size_t i = 0; i < map->count; i++)
        if (scalar_equal(map->keys[i], key))
            return (long)i;
    return -1;
}

/* Appends without looking for an equal key; takes key and value. */
static int map_append(jj_yaml_node *map, jj_yaml_node *key, jj_yaml_node *value)
{
    if (grow(map) != 0)
        return JJ_ENOMEM;
    map->keys[map->count] = key;
    map->items[map->count] = value;
    map->count++;
    return 0;
}

int jj_yaml_map_put(jj_yaml_node *map, jj_yaml_node *key, jj_yaml_node *value, jj_error *err)
{
    if (!map || map->type != JJ_YAML_MAP || !key || !value || key->type == JJ_YAML_SEQ ||
        key->type == JJ_YAML_MAP) {
        jj_yaml_free(key);
        jj_yaml_free(value);
        return jj_error_set(err, JJ_EINVAL, "yaml: map_put needs a mapping, a scalar key and a value");
    }
    long at = find_key_node(map, key);
    if (at >= 0) {
        jj_yaml_free(key);
        jj_yaml_free(map->items[at]);
        map->items[at] = value;
        return 0;
    }
    if (map_append(map, key, value) != 0) {
        jj_yaml_free(key);
        jj_yaml_free(value);
        return jj_error_set(err, JJ_ENOMEM, "yaml: out of memory");
    }
    return 0;
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
    for (size_t i = 0; i < map->count; i++) {
        const jj_yaml_node *k = map->keys[i];
        if (k->text && k->len == len && memcmp(k->text, key, len) == 0)
            return (long)i;
    }
    return -1;
}

int jj_yaml_map_delete(jj_yaml_node *map, const char *key)
{
    long at = find_key_text(map, key);
    if (at < 0)
        return 0;
    jj_yaml_free(map->keys[at]);
    jj_yaml_free(map->items[at]);
    size_t rest = map->count - (size_t)at - 1;
    memmove(map->keys + at, map->keys + at + 1, rest * sizeof *map->keys);
    memmove(map->items + at, map->items + at + 1, rest * sizeof *map->items);
    map->count--;
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
    if (!n || !n->text) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = n->len;
    return n->text;
}

size_t jj_yaml_count(const jj_yaml_node *n)
{
    return n && (n->type == JJ_YAML_SEQ || n->type == JJ_YAML_MAP) ? n->count : 0;
}

jj_yaml_node *jj_yaml_seq_at(const jj_yaml_node *n, size_t i)
{
    return n && n->type == JJ_YAML_SEQ && i < n->count ? n->items[i] : NULL;
}

jj_yaml_node *jj_yaml_map_key_at(const jj_yaml_node *n, size_t i)
{
    return n && n->type == JJ_YAML_MAP && i < n->count ? n->keys[i] : NULL;
}

jj_yaml_node *jj_yaml_map_value_at(const jj_yaml_node *n, size_t i)
{
    return n && n->type == JJ_YAML_MAP && i < n->count ? n->items[i] : NULL;
}

jj_yaml_node *jj_yaml_map_get(const jj_yaml_node *map, const char *key)
{
    long at = find_key_text(map, key);
    return at < 0 ? NULL : map->items[at];
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
        if (a->count != b->count)
            return 0;
        for (size_t i = 0; i < a->count; i++)
            if (!jj_yaml_equal(a->items[i], b->items[i]))
                return 0;
        return 1;
    }
    if (a->type == JJ_YAML_MAP) {
        if (a->count != b->count)
            return 0;
        for (size_t i = 0; i < a->count; i++) {
            long j = find_key_node(b, a->keys[i]);
            if (j < 0 || !jj_yaml_equal(a->items[i], b->items[j]))
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

jj_yaml_node *jj_yaml_new_plain(const char *text, size_t len)
{
    jj_yaml_node *n = scalar_with_text(JJ_YAML_STRING, text ? text : "", text ? len : 0);
    if (n)
        resolve_plain(n);
    return n;
}

/* --- parsing ------------------------------------------------------------- */

#define YAML_TAG_PREFIX "tag:yaml.org,2002:"

typedef struct anchor {
    char *name;
    jj_yaml_node *node; /* borrowed from the tree (or the detached list) */
    int complete;
} anchor;

/* Open-addressing set of a mapping's key indexes, so duplicate checks and
 * merges stay linear on large (hostile) mappings. */
typedef struct keyset {
    size_t *slots; /* index + 1, 0 = empty */
    size_t cap;
    size_t used;
} keyset;

typedef struct frame {
    jj_yaml_node *node; /* collection being filled; owned by its parent */
    jj_yaml_node *key;  /* mapping key waiting for its value; owned here */
    int key_is_merge;
    long anchor;        /* index in anchors completed at the end, or -1 */
    keyset keys;
    jj_yaml_node **merges; /* borrowed merge sources (`<<`), applied at the end */
    size_t nmerges, capmerges;
} frame;

typedef struct parse_ctx {
    const char *source;
    jj_error *err;
    size_t nodes, max_nodes;
    size_t max_depth;
    frame *stack;
    size_t depth, capstack;
    anchor *anchors;
    size_t nanchors, capanchors;
    jj_yaml_node **detached; /* merge sources not in the tree, freed at the end */
    size_t ndetached, capdetached;
    jj_yaml_node *root;
    int have_root;
} parse_ctx;

static int parse_fail(parse_ctx *c, jj_yaml_mark mark, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int parse_fail(parse_ctx *c, jj_yaml_mark mark, const char *fmt, ...)
{
    char msg[JJ_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    jj_error_set(c->err, JJ_EYAML_PARSE, "%s", msg);
    jj_error_at(c->err, c->source, mark.line, mark.column);
    return JJ_EYAML_PARSE;
}

static int oom(parse_ctx *c)
{
    jj_error_set(c->err, JJ_ENOMEM, "yaml: out of memory");
    jj_error_at(c->err, c->source, 0, 0);
    return JJ_ENOMEM;
}

static jj_yaml_mark to_mark(yaml_mark_t m)
{
    jj_yaml_mark mark = {(int)m.line + 1, (int)m.column + 1};
    return mark;
}

static int grow_array(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 8;
    while (ncap < need)
        ncap *= 2;
    void *p = realloc(*arr, ncap * elem);
    if (!p)
        return JJ_ENOMEM;
    *arr = p;
    *cap = ncap;
    return 0;
}

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
    return h;
}

static long keyset_find(const keyset *ks, const jj_yaml_node *map, const jj_yaml_node *key)
{
    if (!ks->cap)
        return -1;
    for (size_t i = key_hash(key) & (ks->cap - 1);; i = (i + 1) & (ks->cap - 1)) {
        size_t s = ks->slots[i];
        if (!s)
            return -1;
        if (scalar_equal(map->keys[s - 1], key))
            return (long)(s - 1);
    }
}

static void keyset_insert(keyset *ks, const jj_yaml_node *map, size_t index)
{
    size_t i = key_hash(map->keys[index]) & (ks->cap - 1);
    while (ks->slots[i])
        i = (i + 1) & (ks->cap - 1);
    ks->slots[i] = index + 1;
}

/* Records that map->keys[index] is present. */
static int keyset_add(keyset *ks, const jj_yaml_node *map, size_t index)
{
    if ((ks->used + 1) * 2 > ks->cap) {
        size_t ncap = ks->cap ? ks->cap * 2 : 16;
        size_t *slots = calloc(ncap, sizeof *slots);
        if (!slots)
            return JJ_ENOMEM;
        free(ks->slots);
        ks->slots = slots;
        ks->cap = ncap;
        for (size_t i = 0; i < index; i++)
            keyset_insert(ks, map, i);
    }
    keyset_insert(ks, map, index);
    ks->used = index + 1;
    return 0;
}

/* Size and height of a subtree, to bound alias expansion before copying. */
static void measure(const jj_yaml_node *n, size_t *size, size_t *height)
{
    *size = 1;
    *height = 0;
    if (n->type != JJ_YAML_SEQ && n->type != JJ_YAML_MAP)
        return;
    size_t tallest = 0;
    for (size_t i = 0; i < n->count; i++) {
        size_t s, h;
        measure(n->items[i], &s, &h);
        *size += s;
        if (h > tallest)
            tallest = h;
        if (n->keys)
            *size += 1;
    }
    *height = tallest + 1;
}

/* A copy of n for use at the current depth, within the node budget. */
static int counted_copy(parse_ctx *c, const jj_yaml_node *n, jj_yaml_mark at, jj_yaml_node **out)
{
    size_t size, height;
    measure(n, &size, &height);
    if (size > c->max_nodes - c->nodes)
        return parse_fail(c, at, "document has more than %zu nodes (alias expansion?)",
                          c->max_nodes);
    if (c->depth + height > c->max_depth)
        return parse_fail(c, at, "document nested more than %zu levels deep", c->max_depth);
    *out = jj_yaml_copy(n);
    if (!*out)
        return oom(c);
    c->nodes += size;
    return 0;
}

static int count_node(parse_ctx *c, jj_yaml_mark at)
{
    if (c->nodes >= c->max_nodes)
        return parse_fail(c, at, "document has more than %zu nodes (alias expansion?)",
                          c->max_nodes);
    c->nodes++;
    return 0;
}

static int add_merge(parse_ctx *c, frame *f, jj_yaml_node *source, jj_yaml_mark at)
{
    if (source->type != JJ_YAML_MAP && source->type != JJ_YAML_SEQ)
        return parse_fail(c, at, "map merge requires map or sequence of maps as the value");
    if (grow_array((void **)&f->merges, &f->capmerges, f->nmerges + 1, sizeof *f->merges))
        return oom(c);
    f->merges[f->nmerges++] = source;
    return 0;
}

static int detach(parse_ctx *c, jj_yaml_node *n)
{
    if (grow_array((void **)&c->detached, &c->capdetached, c->ndetached + 1, sizeof *c->detached)) {
        jj_yaml_free(n);
        return oom(c);
    }
    c->detached[c->ndetached++] = n;
    return 0;
}

static void describe_key(const jj_yaml_node *k, char *buf, size_t size)
{
    if (k->type == JJ_YAML_STRING)
        snprintf(buf, size, "\"%.*s\"", (int)(k->len > 200 ? 200 : k->len), k->text);
    else
        snprintf(buf, size, "%.*s", (int)(k->len > 200 ? 200 : k->len), k->text);
}

/* Places a finished scalar, an alias copy or a just-started collection in
 * its parent (or as the root). Takes ownership of n. */
static int attach(parse_ctx *c, jj_yaml_node *n, int is_merge_key)
{
    if (c->depth == 0) {
        c->root = n;
        c->have_root = 1;
        return 0;
    }
    frame *f = &c->stack[c->depth - 1];
    if (f->node->type == JJ_YAML_SEQ) {
        if (grow(f->node) != 0) {
            jj_yaml_free(n);
            return oom(c);
        }
        f->node->items[f->node->count++] = n;
        return 0;
    }
    if (!f->key) {
        if (n->type == JJ_YAML_SEQ || n->type == JJ_YAML_MAP) {
            jj_yaml_mark at = n->mark;
            jj_yaml_free(n);
            return parse_fail(c, at, "mapping keys must be scalars");
        }
        f->key = n;
        f->key_is_merge = is_merge_key;
        return 0;
    }
    jj_yaml_node *key = f->key;
    f->key = NULL;
    if (f->key_is_merge) {
        /* kept, not freed: an anchor may name the `<<` key itself */
        int rc = detach(c, key);
        if (rc) {
            jj_yaml_free(n);
            return rc;
        }
        rc = detach(c, n);
        return rc ? rc : add_merge(c, f, n, n->mark);
    }
    long prev = keyset_find(&f->keys, f->node, key);
    if (prev >= 0) {
        char what[256];
        describe_key(key, what, sizeof what);
        jj_yaml_mark at = key->mark;
        int line = f->node->keys[prev]->mark.line;
        jj_yaml_free(key);
        jj_yaml_free(n);
        return parse_fail(c, at, "mapping key %s already defined at line %d", what, line);
    }
    if (map_append(f->node, key, n) != 0) {
        jj_yaml_free(key);
        jj_yaml_free(n);
        return oom(c);
    }
    if (keyset_add(&f->keys, f->node, f->node->count - 1) != 0)
        return oom(c);
    return 0;
}

static long find_anchor(parse_ctx *c, const char *name)
{
    for (size_t i = c->nanchors; i-- > 0;)
        if (strcmp(c->anchors[i].name, name) == 0)
            return (long)i;
    return -1;
}

static int add_anchor(parse_ctx *c, const yaml_char_t *name, jj_yaml_node *n, int complete, long *index)
{
    if (!name)
        return 0;
    if (grow_array((void **)&c->anchors, &c->capanchors, c->nanchors + 1, sizeof *c->anchors))
        return oom(c);
    char *copy = strdup((const char *)name);
    if (!copy)
        return oom(c);
    c->anchors[c->nanchors].name = copy;
    c->anchors[c->nanchors].node = n;
    c->anchors[c->nanchors].complete = complete;
    if (index)
        *index = (long)c->nanchors;
    c->nanchors++;
    return 0;
}

static int on_alias(parse_ctx *c, const yaml_event_t *ev)
{
    jj_yaml_mark at = to_mark(ev->start_mark);
    const char *name = (const char *)ev->data.alias.anchor;
    long i = find_anchor(c, name);
    if (i < 0)
        return parse_fail(c, at, "unknown anchor \"%s\" referenced", name);
    if (!c->anchors[i].complete)
        return parse_fail(c, at, "anchor \"%s\" value contains itself", name);
    jj_yaml_node *target = c->anchors[i].node;
    /* A merge needs only to read the anchored mapping: no copy. */
    if (c->depth > 0) {
        frame *f = &c->stack[c->depth - 1];
        if (f->node->type == JJ_YAML_MAP && f->key && f->key_is_merge) {
            jj_yaml_node *key = f->key;
            f->key = NULL;
            int rc = detach(c, key); /* an anchor may name it */
            return rc ? rc : add_merge(c, f, target, at);
        }
    }
    jj_yaml_node *copy;
    int rc = counted_copy(c, target, at, &copy);
    if (rc)
        return rc;
    copy->mark = at;
    return attach(c, copy, 0);
}

static int tag_is(const yaml_char_t *tag, const char *name)
{
    size_t plen = sizeof YAML_TAG_PREFIX - 1;
    return tag && strncmp((const char *)tag, YAML_TAG_PREFIX, plen) == 0 &&
           strcmp((const char *)tag + plen, name) == 0;
}

/* Applies an explicit !!tag to a scalar; plain resolution already done for
 * plain scalars, so typed tags only check and convert. */
static int apply_tag(parse_ctx *c, jj_yaml_node *n, const yaml_char_t *tag, int plain)
{
    const char *want = NULL;
    if (strcmp((const char *)tag, "!") == 0 || tag_is(tag, "str") || tag_is(tag, "binary") ||
        tag_is(tag, "timestamp")) {
        n->type = JJ_YAML_STRING;
        return 0;
    }
    if (tag_is(tag, "int"))
        want = "int";
    else if (tag_is(tag, "float"))
        want = "float";
    else if (tag_is(tag, "bool"))
        want = "bool";
    else if (tag_is(tag, "null"))
        want = "null";
    if (!want) {
        /* Unknown and local tags are ignored, as yaml.v2 does. */
        if (plain)
            resolve_plain(n);
        return 0;
    }
    resolve_plain(n);
    if (strcmp(want, "float") == 0 && n->type == JJ_YAML_INT) {
        n->v.real = (double)n->v.integer;
        n->type = JJ_YAML_FLOAT;
    }
    if (strcmp(jj_yaml_type_name(n->type), want) != 0)
        return parse_fail(c, n->mark, "cannot decode \"%.*s\" as a !!%s",
                          (int)(n->len > 200 ? 200 : n->len), n->text, want);
    return 0;
}

static int on_scalar(parse_ctx *c, const yaml_event_t *ev)
{
    jj_yaml_mark at = to_mark(ev->start_mark);
    int rc = count_node(c, at);
    if (rc)
        return rc;
    const char *value = (const char *)ev->data.scalar.value;
    jj_yaml_node *n = scalar_with_text(JJ_YAML_STRING, value, ev->data.scalar.length);
    if (!n)
        return oom(c);
    n->mark = at;
    const yaml_char_t *tag = ev->data.scalar.tag;
    int plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    int is_merge = plain && (!tag || tag_is(tag, "merge")) && n->len == 2 &&
                   memcmp(n->text, "<<", 2) == 0;
    if (tag)
        rc = apply_tag(c, n, tag, plain);
    else if (plain)
        resolve_plain(n);
    if (rc) {
        jj_yaml_free(n);
        return rc;
    }
    rc = add_anchor(c, ev->data.scalar.anchor, n, 1, NULL);
    if (rc) {
        jj_yaml_free(n);
        return rc;
    }
    return attach(c, n, is_merge);
}

static int on_start(parse_ctx *c, const yaml_event_t *ev, jj_yaml_type type)
{
    jj_yaml_mark at = to_mark(ev->start_mark);
    if (c->depth + 1 > c->max_depth)
        return parse_fail(c, at, "document nested more than %zu levels deep", c->max_depth);
    int rc = count_node(c, at);
    if (rc)
        return rc;
    jj_yaml_node *n = node_alloc(type);
    if (!n)
        return oom(c);
    n->mark = at;
    if (grow_array((void **)&c->stack, &c->capstack, c->depth + 1, sizeof *c->stack)) {
        jj_yaml_free(n);
        return oom(c);
    }
    const yaml_char_t *anchor_name = type == JJ_YAML_MAP ? ev->data.mapping_start.anchor
                                                         : ev->data.sequence_start.anchor;
    rc = attach(c, n, 0);
    if (rc)
        return rc;
    frame *f = &c->stack[c->depth++];
    memset(f, 0, sizeof *f);
    f->node = n;
    f->anchor = -1;
    return add_anchor(c, anchor_name, n, 0, &f->anchor);
}

/* Adds the pairs of the `<<` sources that the mapping does not define. */
static int apply_merges(parse_ctx *c, frame *f)
{
    for (size_t m = 0; m < f->nmerges; m++) {
        jj_yaml_node *src = f->merges[m];
        size_t nsrc = src->type == JJ_YAML_MAP ? 1 : src->count;
        for (size_t s = 0; s < nsrc; s++) {
            const jj_yaml_node *part = src->type == JJ_YAML_MAP ? src : src->items[s];
            if (part->type != JJ_YAML_MAP)
                return parse_fail(c, part->mark,
                                  "map merge requires map or sequence of maps as the value");
            for (size_t i = 0; i < part->count; i++) {
                if (keyset_find(&f->keys, f->node, part->keys[i]) >= 0)
                    continue;
                jj_yaml_node *k, *v;
                int rc = counted_copy(c, part->keys[i], part->keys[i]->mark, &k);
                if (rc)
                    return rc;
                rc = counted_copy(c, part->items[i], part->items[i]->mark, &v);
                if (rc) {
                    jj_yaml_free(k);
                    return rc;
                }
                if (map_append(f->node, k, v) != 0) {
                    jj_yaml_free(k);
                    jj_yaml_free(v);
                    return oom(c);
                }
                if (keyset_add(&f->keys, f->node, f->node->count - 1) != 0)
                    return oom(c);
            }
        }
    }
    return 0;
}

static void frame_release(frame *f)
{
    jj_yaml_free(f->key);
    f->key = NULL;
    free(f->keys.slots);
    f->keys.slots = NULL;
    free(f->merges);
    f->merges = NULL;
}

static int on_end(parse_ctx *c)
{
    frame *f = &c->stack[c->depth - 1];
    int rc = 0;
    if (f->node->type == JJ_YAML_MAP)
        rc = apply_merges(c, f);
    if (!rc && f->anchor >= 0)
        c->anchors[f->anchor].complete = 1;
    frame_release(f);
    c->depth--;
    return rc;
}

/* Line and column of a byte offset, for reader errors that have no mark. */
static jj_yaml_mark offset_mark(const char *buf, size_t len, size_t offset)
{
    jj_yaml_mark m = {1, 1};
    for (size_t i = 0; i < offset && i < len; i++) {
        if (buf[i] == '\n') {
            m.line++;
            m.column = 1;
        } else {
            m.column++;
        }
    }
    return m;
}

static int parser_error(parse_ctx *c, const yaml_parser_t *p, const char *buf, size_t len)
{
    if (p->error == YAML_MEMORY_ERROR)
        return oom(c);
    const char *problem = p->problem ? p->problem : "unknown problem";
    if (p->error == YAML_READER_ERROR) {
        jj_yaml_mark at = offset_mark(buf, len, p->problem_offset);
        if (p->problem_value != -1)
            return parse_fail(c, at, "%s (byte #x%02X)", problem, (unsigned)p->problem_value);
        return parse_fail(c, at, "%s", problem);
    }
    jj_yaml_mark at = to_mark(p->problem_mark);
    if (p->context) {
        jj_yaml_mark cm = to_mark(p->context_mark);
        return parse_fail(c, at, "%s %s (line %d, column %d)", problem, p->context, cm.line,
                          cm.column);
    }
    return parse_fail(c, at, "%s", problem);
}

static void ctx_release(parse_ctx *c)
{
    for (size_t i = 0; i < c->depth; i++)
        frame_release(&c->stack[i]);
    free(c->stack);
    for (size_t i = 0; i < c->nanchors; i++)
        free(c->anchors[i].name);
    free(c->anchors);
    for (size_t i = 0; i < c->ndetached; i++)
        jj_yaml_free(c->detached[i]);
    free(c->detached);
}

int jj_yaml_parse(const char *buf, size_t len, const char *source, const jj_yaml_limits *limits,
                  jj_yaml_node **out, jj_error *err)
{
    *out = NULL;
    parse_ctx c;
    memset(&c, 0, sizeof c);
    c.source = source;
    c.err = err;
    c.max_nodes = limits && limits->max_nodes ? limits->max_nodes : JJ_YAML_DEFAULT_MAX_NODES;
    c.max_depth = (size_t)(limits && limits->max_depth > 0 ? limits->max_depth
                                                            : JJ_YAML_DEFAULT_MAX_DEPTH);
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        return oom(&c);
    yaml_parser_set_input_string(&parser, (const unsigned char *)(buf ? buf : ""), buf ? len : 0);

    int rc = 0, done = 0;
    while (!done && !rc) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            rc = parser_error(&c, &parser, buf, len);
            break;
        }
        switch (ev.type) {
        case YAML_DOCUMENT_END_EVENT:
        case YAML_STREAM_END_EVENT: done = 1; break;
        case YAML_ALIAS_EVENT: rc = on_alias(&c, &ev); break;
        case YAML_SCALAR_EVENT: rc = on_scalar(&c, &ev); break;
        case YAML_SEQUENCE_START_EVENT: rc = on_start(&c, &ev, JJ_YAML_SEQ); break;
        case YAML_MAPPING_START_EVENT: rc = on_start(&c, &ev, JJ_YAML_MAP); break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT: rc = on_end(&c); break;
        default: break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    ctx_release(&c);
    if (!rc && !c.have_root) {
        c.root = jj_yaml_new_null();
        if (!c.root)
            rc = oom(&c);
    }
    if (rc) {
        jj_yaml_free(c.root);
        return rc;
    }
    *out = c.root;
    return 0;
}

/* --- emitting ------------------------------------------------------------ */

typedef struct outbuf {
    char *data;
    size_t len, cap;
} outbuf;

static int write_handler(void *data, unsigned char *buffer, size_t size)
{
    outbuf *o = data;
    if (grow_array((void **)&o->data, &o->cap, o->len + size + 1, 1))
        return 0;
    memcpy(o->data + o->len, buffer, size);
    o->len += size;
    o->data[o->len] = '\0';
    return 1;
}

static int valid_utf8(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char b = s[i];
        size_t n = b < 0x80 ? 1 : (b & 0xE0) == 0xC0 ? 2 : (b & 0xF0) == 0xE0 ? 3
                                : (b & 0xF8) == 0xF0 ? 4 : 0;
        if (!n || i + n > len)
            return 0;
        uint32_t cp = n == 1 ? b : n == 2 ? (b & 0x1Fu) : n == 3 ? (b & 0x0Fu) : (b & 0x07u);
        for (size_t k = 1; k < n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3Fu);
        }
        if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += n;
    }
    return 1;
}

/* Whether s can be written unquoted and read back as the same string: no
 * indicator at the start, no ": " or " #", no edge spaces, printable ASCII
 * controls excluded, and plain resolution gives a string. */
static int plain_safe(const char *s, size_t len)
{
    if (len == 0 || s[0] == ' ' || s[len - 1] == ' ' || s[len - 1] == ':')
        return 0;
    if (strchr(",[]{}#&*!|>'\"%@`", s[0]))
        return 0;
    if (strchr("-?:", s[0]) && (len == 1 || s[1] == ' '))
        return 0;
    if (len >= 3 && (memcmp(s, "---", 3) == 0 || memcmp(s, "...", 3) == 0))
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7F)
            return 0;
        if (i + 1 < len && ((s[i] == ':' && s[i + 1] == ' ') || (s[i] == ' ' && s[i + 1] == '#')))
            return 0;
    }
    if (len == 2 && memcmp(s, "<<", 2) == 0)
        return 0;
    jj_yaml_node probe = {.type = JJ_YAML_STRING, .text = (char *)s, .len = len};
    resolve_plain(&probe);
    return probe.type == JJ_YAML_STRING;
}

static int emit_fail(yaml_emitter_t *em, jj_error *err)
{
    if (em->error == YAML_MEMORY_ERROR || em->error == YAML_WRITER_ERROR)
        return jj_error_set(err, JJ_ENOMEM, "yaml: out of memory while emitting");
    return jj_error_set(err, JJ_EYAML_EMIT, "yaml: %s", em->problem ? em->problem : "emitter error");
}

static int emit_scalar(yaml_emitter_t *em, const jj_yaml_node *n, jj_error *err)
{
    char canon[48];
    const char *text = n->text;
    size_t len = n->len;
    yaml_scalar_style_t style = YAML_PLAIN_SCALAR_STYLE;
    switch (n->type) {
    case JJ_YAML_NULL: text = "null"; len = 4; break;
    case JJ_YAML_BOOL: text = n->v.boolean ? "true" : "false"; len = strlen(text); break;
    case JJ_YAML_INT:
        len = (size_t)snprintf(canon, sizeof canon, "%" PRId64, n->v.integer);
        text = canon;
        break;
    case JJ_YAML_FLOAT:
        format_float(n->v.real, canon, sizeof canon);
        text = canon;
        len = strlen(canon);
        break;
    default:
        if (!text) {
            text = "";
            len = 0;
        }
        if (!valid_utf8((const unsigned char *)text, len))
            return jj_error_set(err, JJ_EYAML_EMIT, "yaml: string is not valid UTF-8");
        if (memchr(text, '\n', len))
            style = YAML_LITERAL_SCALAR_STYLE; /* libyaml falls back to quoting if it must */
        else if (!plain_safe(text, len))
            style = YAML_DOUBLE_QUOTED_SCALAR_STYLE;
        break;
    }
    yaml_event_t ev;
    if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)text, (int)len, 1, 1, style))
        return jj_error_set(err, JJ_ENOMEM, "yaml: out of memory while emitting");
    return yaml_emitter_emit(em, &ev) ? 0 : emit_fail(em, err);
}

static int emit_node(yaml_emitter_t *em, const jj_yaml_node *n, int depth, jj_error *err)
{
    if (depth > JJ_YAML_DEFAULT_MAX_DEPTH)
        return jj_error_set(err, JJ_EYAML_EMIT, "yaml: tree nested more than %d levels deep",
                            JJ_YAML_DEFAULT_MAX_DEPTH);
    yaml_event_t ev;
    int ok;
    if (n->type == JJ_YAML_SEQ) {
        ok = yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE);
    } else if (n->type == JJ_YAML_MAP) {
        ok = yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE);
    } else {
        return emit_scalar(em, n, err);
    }
    if (!ok)
        return jj_error_set(err, JJ_ENOMEM, "yaml: out of memory while emitting");
    if (!yaml_emitter_emit(em, &ev))
        return emit_fail(em, err);
    for (size_t i = 0; i < n->count; i++) {
        int rc = n->keys ? emit_node(em, n->keys[i], depth + 1, err) : 0;
        if (!rc)
            rc = emit_node(em, n->items[i], depth + 1, err);
        if (rc)
            return rc;
    }
    if (n->type == JJ_YAML_SEQ)
        ok = yaml_sequence_end_event_initialize(&ev);
    else
        ok = yaml_mapping_end_event_initialize(&ev);
    if (!ok)
        return jj_error_set(err, JJ_ENOMEM, "yaml: out of memory while emitting");
    return yaml_emitter_emit(em, &ev) ? 0 : emit_fail(em, err);
}

static int emit_document(yaml_emitter_t *em, const jj_yaml_node *root, jj_error *err)
{
    yaml_event_t ev;
    if (!yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING))
        return jj_error_set(err, JJ_ENOMEM, "yaml: out of memory while emitting");
    if (!yaml_emitter_emit(em, &ev))
        return emit_fail(em, err);
    if (!yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1))
        return jj_error_set(err, JJ_ENOMEM, "yaml: out of memory while emitting");
    if (!yaml_emitter_emit(em, &ev))
        return emit_fail(em, err);
    int rc = emit_node(em, root, 0, err);
    if (rc)
        return rc;
    if (!yaml_document_end_event_initialize(&ev, 1))
        return jj_error_set(err, JJ_ENOMEM, "yaml: out of memory while emitting");
    if (!yaml_emitter_emit(em, &ev))
        return emit_fail(em, err);
    if (!yaml_stream_end_event_initialize(&ev))
        return jj_error_set(err, JJ_ENOMEM, "yaml: out of memory while emitting");
    if (!yaml_emitter_emit(em, &ev))
        return emit_fail(em, err);
    return yaml_emitter_flush(em) ? 0 : emit_fail(em, err);
}

int jj_yaml_emit(const jj_yaml_node *root, char **out, size_t *out_len, jj_error *err)
{
    *out = NULL;
    if (out_len)
        *out_len = 0;
    if (!root)
        return jj_error_set(err, JJ_EINVAL, "yaml: nothing to emit");
    yaml_emitter_t em;
    if (!yaml_emitter_initialize(&em))
        return jj_error_set(err, JJ_ENOMEM, "yaml: out of memory while emitting");
    outbuf o = {NULL, 0, 0};
    yaml_emitter_set_output(&em, write_handler, &o);
    yaml_emitter_set_indent(&em, 2);
    yaml_emitter_set_width(&em, -1);
    yaml_emitter_set_unicode(&em, 1);
    yaml_emitter_set_break(&em, YAML_LN_BREAK);
    int rc = emit_document(&em, root, err);
    yaml_emitter_delete(&em);
    if (rc) {
        free(o.data);
        return rc;
    }
    if (!o.data) {
        o.data = calloc(1, 1);
        if (!o.data)
            return jj_error_set(err, JJ_ENOMEM, "yaml: out of memory while emitting");
    }
    *out = o.data;
    if (out_len)
        *out_len = o.len;
    return 0;
}
