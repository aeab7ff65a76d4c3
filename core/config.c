/* config.c: the environment configuration schema engine (see config.h).
 *
 * Messages follow Juju 1.x (juju/schema and environs/config) so that users
 * and scripts see familiar text: `expected number, got string("abc")`,
 * `empty name in environment configuration`, `cannot change x from a to b`.
 */
#include "config.h"

#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct field_store {
    jj_config_field pub; /* its pointers point at the copies below */
    char *name;
    char *description;
    char *group;
    char **values; /* NULL-terminated, or NULL */
    jj_yaml_node *default_value;
    jj_yaml_node *fillin;
} field_store;

struct jj_config_schema {
    field_store **fields; /* sorted by name */
    size_t count, cap;
};

/* Room for a "why" message before the environment prefix is added. */
#define WHY_MAX 768

const char *jj_config_type_name(jj_config_type type)
{
    static const char *const names[] = {"string", "bool", "int", "attrs", "list"};
    return (unsigned)type < sizeof names / sizeof names[0] ? names[type] : "unknown";
}

/* The type as juju/schema's messages name it: Int() says "number". */
static const char *juju_type_word(jj_config_type type)
{
    return type == JJ_CONFIG_INT ? "number" : jj_config_type_name(type);
}

/* --- describing values the way Go's %#v / %q did ---------------------------- */

static void append(char *buf, size_t size, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void append(char *buf, size_t size, size_t *n, const char *fmt, ...)
{
    if (*n >= size)
        return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(buf + *n, size - *n, fmt, ap);
    va_end(ap);
    if (w > 0)
        *n = *n + (size_t)w < size ? *n + (size_t)w : size - 1;
}

/* "text" with Go-style escapes, cut after 120 bytes. */
static void append_quoted(char *buf, size_t size, size_t *n, const char *s, size_t len)
{
    append(buf, size, n, "\"");
    for (size_t i = 0; i < len && i < 120; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': append(buf, size, n, "\\\""); break;
        case '\\': append(buf, size, n, "\\\\"); break;
        case '\n': append(buf, size, n, "\\n"); break;
        case '\t': append(buf, size, n, "\\t"); break;
        case '\r': append(buf, size, n, "\\r"); break;
        default:
            if (c < 0x20 || c == 0x7F)
                append(buf, size, n, "\\x%02x", c);
            else
                append(buf, size, n, "%c", c);
        }
    }
    append(buf, size, n, len > 120 ? "...\"" : "\"");
}

/* `string("abc")`, `int(42)`, `bool(true)`, `map`, `list`: what was given. */
static void describe_got(const jj_yaml_node *v, int secret, char *buf, size_t size)
{
    size_t n = 0, len;
    const char *text = jj_yaml_text(v, &len);
    buf[0] = '\0';
    switch (jj_yaml_type_of(v)) {
    case JJ_YAML_STRING:
        if (secret) {
            append(buf, size, &n, "string(<secret>)");
        } else {
            append(buf, size, &n, "string(");
            append_quoted(buf, size, &n, text, len);
            append(buf, size, &n, ")");
        }
        break;
    case JJ_YAML_INT: append(buf, size, &n, "int(%s)", secret ? "<secret>" : text); break;
    case JJ_YAML_FLOAT: append(buf, size, &n, "float64(%s)", secret ? "<secret>" : text); break;
    case JJ_YAML_BOOL: append(buf, size, &n, "bool(%s)", jj_yaml_bool(v) ? "true" : "false"); break;
    case JJ_YAML_MAP: append(buf, size, &n, "map"); break;
    case JJ_YAML_SEQ: append(buf, size, &n, "list"); break;
    default: append(buf, size, &n, "nothing"); break;
    }
}

/* A value as Go's %#v showed it in "cannot change" messages. */
static void describe_value(const jj_yaml_node *v, int secret, char *buf, size_t size, size_t *n)
{
    size_t len;
    const char *text = jj_yaml_text(v, &len);
    if (!v || jj_yaml_type_of(v) == JJ_YAML_NULL) {
        append(buf, size, n, "<nil>");
        return;
    }
    if (secret) {
        append(buf, size, n, "<secret>");
        return;
    }
    switch (jj_yaml_type_of(v)) {
    case JJ_YAML_STRING: append_quoted(buf, size, n, text, len); break;
    case JJ_YAML_BOOL: append(buf, size, n, "%s", jj_yaml_bool(v) ? "true" : "false"); break;
    case JJ_YAML_SEQ:
        append(buf, size, n, "[");
        for (size_t i = 0; i < jj_yaml_count(v); i++) {
            append(buf, size, n, i ? " " : "");
            describe_value(jj_yaml_seq_at(v, i), 0, buf, size, n);
        }
        append(buf, size, n, "]");
        break;
    case JJ_YAML_MAP:
        append(buf, size, n, "map[");
        for (size_t i = 0; i < jj_yaml_count(v); i++) {
            append(buf, size, n, i ? " " : "");
            describe_value(jj_yaml_map_key_at(v, i), 0, buf, size, n);
            append(buf, size, n, ":");
            describe_value(jj_yaml_map_value_at(v, i), 0, buf, size, n);
        }
        append(buf, size, n, "]");
        break;
    default: append(buf, size, n, "%s", text ? text : ""); break;
    }
}

/* --- coercion of one value ------------------------------------------------- */

typedef struct coercion {
    const jj_config_field *field;
    char why[WHY_MAX];     /* "<key>: expected number, got ..." when it fails */
    jj_yaml_mark at;       /* where the failing part is */
} coercion;

static int why(coercion *c, const jj_yaml_node *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int why(coercion *c, const jj_yaml_node *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->why, sizeof c->why, fmt, ap);
    va_end(ap);
    jj_yaml_mark m = jj_yaml_mark_of(at);
    if (m.line > 0)
        c->at = m;
    return JJ_ECONFIG;
}

static int wrong_type(coercion *c, const jj_yaml_node *v, const char *path_suffix, const char *want)
{
    char got[256];
    describe_got(v, (c->field->flags & JJ_CONFIG_SECRET) != 0, got, sizeof got);
    return why(c, v, "%s%s: expected %s, got %s", c->field->name, path_suffix, want, got);
}

static int is_scalar(const jj_yaml_node *v)
{
    jj_yaml_type t = jj_yaml_type_of(v);
    return t == JJ_YAML_STRING || t == JJ_YAML_INT || t == JJ_YAML_FLOAT || t == JJ_YAML_BOOL;
}

static jj_yaml_node *text_of(const jj_yaml_node *v)
{
    size_t len;
    const char *text = jj_yaml_text(v, &len);
    return jj_yaml_new_stringn(text ? text : "", len);
}

/* Checked without libm: jujucore does not link it. */
static int is_integral(double d)
{
    return d > -9.2e18 && d < 9.2e18 && (double)(int64_t)d == d;
}

static int as_int(coercion *c, const jj_yaml_node *v, jj_yaml_node **out)
{
    const jj_yaml_node *num = v;
    jj_yaml_node *parsed = NULL;
    if (jj_yaml_type_of(v) == JJ_YAML_STRING) {
        size_t len;
        const char *text = jj_yaml_text(v, &len);
        parsed = jj_yaml_new_plain(text, len);
        if (!parsed)
            return JJ_ENOMEM;
        num = parsed;
    }
    int rc = 0;
    if (jj_yaml_type_of(num) == JJ_YAML_INT) {
        *out = jj_yaml_new_int(jj_yaml_int(num));
    } else if (jj_yaml_type_of(num) == JJ_YAML_FLOAT && is_integral(jj_yaml_float(num))) {
        *out = jj_yaml_new_int((int64_t)jj_yaml_float(num));
    } else {
        rc = wrong_type(c, v, "", "number");
    }
    jj_yaml_free(parsed);
    if (!rc && !*out)
        rc = JJ_ENOMEM;
    return rc;
}

static int as_bool(coercion *c, const jj_yaml_node *v, jj_yaml_node **out)
{
    const char *text = jj_yaml_text(v, NULL);
    if (jj_yaml_type_of(v) == JJ_YAML_BOOL)
        *out = jj_yaml_new_bool(jj_yaml_bool(v));
    else if (jj_yaml_type_of(v) == JJ_YAML_STRING && strcmp(text, "true") == 0)
        *out = jj_yaml_new_bool(1);
    else if (jj_yaml_type_of(v) == JJ_YAML_STRING && strcmp(text, "false") == 0)
        *out = jj_yaml_new_bool(0);
    else
        return wrong_type(c, v, "", "bool");
    return *out ? 0 : JJ_ENOMEM;
}

/* Adds "k=v" to map; the item it came from is `at` (for positions). */
static int add_key_value(coercion *c, jj_yaml_node *map, const char *s, size_t len,
                         const jj_yaml_node *at)
{
    const char *eq = memchr(s, '=', len);
    if (!eq || eq == s) {
        char quoted[200];
        size_t n = 0;
        append_quoted(quoted, sizeof quoted, &n, s, len);
        return why(c, at, "%s: expected \"key=value\", got %s", c->field->name, quoted);
    }
    size_t klen = (size_t)(eq - s);
    char *key = strndup(s, klen);
    if (!key)
        return JJ_ENOMEM;
    if (jj_yaml_map_get(map, key)) {
        int rc = why(c, at, "%s: key \"%s\" specified more than once", c->field->name, key);
        free(key);
        return rc;
    }
    jj_yaml_node *value = jj_yaml_new_stringn(eq + 1, len - klen - 1);
    int rc = value ? jj_yaml_map_set(map, key, value, NULL) : JJ_ENOMEM;
    free(key);
    return rc;
}

static int is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v';
}

static int fill_attrs(coercion *c, const jj_yaml_node *v, jj_yaml_node *map)
{
    size_t len;
    const char *text;
    switch (jj_yaml_type_of(v)) {
    case JJ_YAML_MAP:
        for (size_t i = 0; i < jj_yaml_count(v); i++) {
            const jj_yaml_node *key = jj_yaml_map_key_at(v, i);
            const jj_yaml_node *val = jj_yaml_map_value_at(v, i);
            jj_yaml_node *s;
            if (jj_yaml_type_of(val) == JJ_YAML_NULL) {
                s = jj_yaml_new_string("");
            } else if (is_scalar(val)) {
                s = text_of(val);
            } else {
                char suffix[160];
                snprintf(suffix, sizeof suffix, ".%s", jj_yaml_text(key, NULL));
                return wrong_type(c, val, suffix, "string");
            }
            if (!s)
                return JJ_ENOMEM;
            jj_yaml_set_mark(s, jj_yaml_mark_of(val).line, jj_yaml_mark_of(val).column);
            int rc = jj_yaml_map_set(map, jj_yaml_text(key, NULL), s, NULL);
            if (rc)
                return rc;
        }
        return 0;
    case JJ_YAML_STRING:
        text = jj_yaml_text(v, &len);
        for (size_t i = 0; i < len;) {
            while (i < len && is_space(text[i]))
                i++;
            size_t start = i;
            while (i < len && !is_space(text[i]))
                i++;
            if (i > start) {
                int rc = add_key_value(c, map, text + start, i - start, v);
                if (rc)
                    return rc;
            }
        }
        return 0;
    case JJ_YAML_SEQ:
        for (size_t i = 0; i < jj_yaml_count(v); i++) {
            const jj_yaml_node *item = jj_yaml_seq_at(v, i);
            if (!is_scalar(item)) {
                char suffix[32];
                snprintf(suffix, sizeof suffix, "[%zu]", i);
                return wrong_type(c, item, suffix, "string");
            }
            text = jj_yaml_text(item, &len);
            int rc = add_key_value(c, map, text, len, item);
            if (rc)
                return rc;
        }
        return 0;
    default:
        return wrong_type(c, v, "", "attrs");
    }
}

static int append_string(jj_yaml_node *seq, const char *s, size_t len, jj_yaml_mark at)
{
    jj_yaml_node *item = jj_yaml_new_stringn(s, len);
    if (!item)
        return JJ_ENOMEM;
    jj_yaml_set_mark(item, at.line, at.column);
    return jj_yaml_seq_append(seq, item, NULL);
}

static int fill_list(coercion *c, const jj_yaml_node *v, jj_yaml_node *seq)
{
    size_t len;
    const char *text;
    if (jj_yaml_type_of(v) == JJ_YAML_SEQ) {
        for (size_t i = 0; i < jj_yaml_count(v); i++) {
            const jj_yaml_node *item = jj_yaml_seq_at(v, i);
            if (!is_scalar(item)) {
                char suffix[32];
                snprintf(suffix, sizeof suffix, "[%zu]", i);
                return wrong_type(c, item, suffix, "string");
            }
            text = jj_yaml_text(item, &len);
            int rc = append_string(seq, text, len, jj_yaml_mark_of(item));
            if (rc)
                return rc;
        }
        return 0;
    }
    if (jj_yaml_type_of(v) != JJ_YAML_STRING)
        return wrong_type(c, v, "", "list");
    text = jj_yaml_text(v, &len);
    for (size_t i = 0; i <= len;) {
        size_t start = i;
        while (i < len && text[i] != ',')
            i++;
        size_t end = i;
        while (start < end && is_space(text[start]))
            start++;
        while (end > start && is_space(text[end - 1]))
            end--;
        if (end > start) {
            int rc = append_string(seq, text + start, end - start, jj_yaml_mark_of(v));
            if (rc)
                return rc;
        }
        i++;
    }
    return 0;
}

static int check_enum(coercion *c, const jj_yaml_node *value, const jj_yaml_node *given)
{
    const char *const *values = c->field->values;
    if (!values || !is_scalar(value))
        return 0;
    size_t len;
    const char *text = jj_yaml_text(value, &len);
    for (const char *const *v = values; *v; v++)
        if (strlen(*v) == len && memcmp(*v, text, len) == 0)
            return 0;
    char list[400];
    size_t n = 0;
    append(list, sizeof list, &n, "[");
    for (const char *const *v = values; *v; v++)
        append(list, sizeof list, &n, "%s%s", v == values ? "" : " ", *v);
    append(list, sizeof list, &n, "]");
    char got[200];
    n = 0;
    if (c->field->flags & JJ_CONFIG_SECRET)
        append(got, sizeof got, &n, "<secret>");
    else
        append_quoted(got, sizeof got, &n, text, len);
    return why(c, given, "%s: expected one of %s, got %s", c->field->name, list, got);
}

/* The field's value for v (non-null), marked with v's position. */
static int coerce_value(coercion *c, const jj_yaml_node *v, jj_yaml_node **out)
{
    *out = NULL;
    int rc = 0;
    switch (c->field->type) {
    case JJ_CONFIG_STRING:
        if (!is_scalar(v))
            return wrong_type(c, v, "", "string");
        *out = text_of(v);
        rc = *out ? 0 : JJ_ENOMEM;
        break;
    case JJ_CONFIG_BOOL: rc = as_bool(c, v, out); break;
    case JJ_CONFIG_INT: rc = as_int(c, v, out); break;
    case JJ_CONFIG_ATTRS:
        *out = jj_yaml_new_map();
        rc = *out ? fill_attrs(c, v, *out) : JJ_ENOMEM;
        break;
    case JJ_CONFIG_LIST:
        *out = jj_yaml_new_seq();
        rc = *out ? fill_list(c, v, *out) : JJ_ENOMEM;
        break;
    default: rc = why(c, v, "%s: field has no type", c->field->name); break;
    }
    if (!rc)
        rc = check_enum(c, *out, v);
    if (rc) {
        jj_yaml_free(*out);
        *out = NULL;
        return rc;
    }
    jj_yaml_mark m = jj_yaml_mark_of(v);
    jj_yaml_set_mark(*out, m.line, m.column);
    return 0;
}

static int is_empty(const jj_yaml_node *v)
{
    switch (jj_yaml_type_of(v)) {
    case JJ_YAML_STRING: {
        size_t len;
        jj_yaml_text(v, &len);
        return len == 0;
    }
    case JJ_YAML_INT: return jj_yaml_int(v) == 0;
    case JJ_YAML_SEQ:
    case JJ_YAML_MAP: return jj_yaml_count(v) == 0;
    default: return 0;
    }
}

/* --- schemas ----------------------------------------------------------------- */

jj_config_schema *jj_config_schema_new(void)
{
    return calloc(1, sizeof(jj_config_schema));
}

static void store_free(field_store *s)
{
    if (!s)
        return;
    free(s->name);
    free(s->description);
    free(s->group);
    if (s->values)
        for (char **v = s->values; *v; v++)
            free(*v);
    free(s->values);
    jj_yaml_free(s->default_value);
    jj_yaml_free(s->fillin);
    free(s);
}

void jj_config_schema_free(jj_config_schema *schema)
{
    if (!schema)
        return;
    for (size_t i = 0; i < schema->count; i++)
        store_free(schema->fields[i]);
    free(schema->fields);
    free(schema);
}

static char *dup_or_null(const char *s, int *failed)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *failed = 1;
    return d;
}

/* The schema-side copy of a default or fill-in: coerced, or NULL for none. */
static int coerce_default(const jj_config_field *f, const jj_yaml_node *v, const char *what,
                          jj_yaml_node **out, jj_error *err)
{
    *out = NULL;
    if (!v || jj_yaml_type_of(v) == JJ_YAML_NULL)
        return 0;
    coercion c;
    memset(&c, 0, sizeof c);
    c.field = f;
    int rc = coerce_value(&c, v, out);
    if (rc == JJ_ENOMEM)
        return jj_error_set(err, JJ_ENOMEM, "config: out of memory");
    if (rc)
        return jj_error_set(err, JJ_EINVAL, "config field %s: bad %s: %s", f->name, what, c.why);
    return 0;
}

/* *out receives the schema's own copy of f. */
static int store_new(const jj_config_field *f, field_store **out, jj_error *err)
{
    *out = NULL;
    field_store *s = calloc(1, sizeof *s);
    if (!s)
        return jj_error_set(err, JJ_ENOMEM, "config: out of memory");
    int failed = 0;
    s->name = dup_or_null(f->name, &failed);
    s->description = dup_or_null(f->description, &failed);
    s->group = dup_or_null(f->group, &failed);
    if (f->values) {
        size_t n = 0;
        while (f->values[n])
            n++;
        s->values = calloc(n + 1, sizeof *s->values);
        failed |= !s->values;
        for (size_t i = 0; s->values && i < n; i++)
            s->values[i] = dup_or_null(f->values[i], &failed);
    }
    if (failed) {
        store_free(s);
        return jj_error_set(err, JJ_ENOMEM, "config: out of memory");
    }
    s->pub = *f;
    s->pub.name = s->name;
    s->pub.description = s->description;
    s->pub.group = s->group;
    s->pub.values = (const char *const *)s->values;
    s->pub.default_value = NULL;
    s->pub.fillin = NULL;
    int rc = coerce_default(&s->pub, f->default_value, "default", &s->default_value, err);
    if (!rc)
        rc = coerce_default(&s->pub, f->fillin, "fill-in value", &s->fillin, err);
    if (rc) {
        store_free(s);
        return rc;
    }
    s->pub.default_value = s->default_value;
    s->pub.fillin = s->fillin;
    *out = s;
    return 0;
}

/* Index of name, or where it would go (with *found = 0). */
static size_t locate(const jj_config_schema *schema, const char *name, int *found)
{
    size_t lo = 0, hi = schema->count;
    *found = 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(schema->fields[mid]->name, name);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Inserts or (replace != 0) replaces; takes s. */
static int insert_store(jj_config_schema *schema, field_store *s, int replace, jj_error *err)
{
    int found;
    size_t at = locate(schema, s->name, &found);
    if (found) {
        if (!replace) {
            jj_error_set(err, JJ_EINVAL, "config field %s defined twice", s->name);
            store_free(s);
            return JJ_EINVAL;
        }
        store_free(schema->fields[at]);
        schema->fields[at] = s;
        return 0;
    }
    if (schema->count == schema->cap) {
        size_t cap = schema->cap ? schema->cap * 2 : 16;
        field_store **fields = realloc(schema->fields, cap * sizeof *fields);
        if (!fields) {
            store_free(s);
            return jj_error_set(err, JJ_ENOMEM, "config: out of memory");
        }
        schema->fields = fields;
        schema->cap = cap;
    }
    memmove(schema->fields + at + 1, schema->fields + at,
            (schema->count - at) * sizeof *schema->fields);
    schema->fields[at] = s;
    schema->count++;
    return 0;
}

int jj_config_schema_add(jj_config_schema *schema, const jj_config_field *field, jj_error *err)
{
    if (!schema || !field || !field->name || !field->name[0])
        return jj_error_set(err, JJ_EINVAL, "config field needs a name");
    if ((unsigned)field->type > JJ_CONFIG_LIST)
        return jj_error_set(err, JJ_EINVAL, "config field %s: unknown type %d", field->name,
                            (int)field->type);
    field_store *s;
    int rc = store_new(field, &s, err);
    return rc ? rc : insert_store(schema, s, 0, err);
}

size_t jj_config_schema_count(const jj_config_schema *schema)
{
    return schema ? schema->count : 0;
}

const jj_config_field *jj_config_schema_at(const jj_config_schema *schema, size_t i)
{
    return schema && i < schema->count ? &schema->fields[i]->pub : NULL;
}

const jj_config_field *jj_config_schema_find(const jj_config_schema *schema, const char *name)
{
    if (!schema || !name)
        return NULL;
    int found;
    size_t at = locate(schema, name, &found);
    return found ? &schema->fields[at]->pub : NULL;
}

int jj_config_schema_merge(const jj_config_schema *a, const jj_config_schema *b,
                           jj_config_schema **out, jj_error *err)
{
    *out = NULL;
    for (size_t i = 0; b && i < b->count; i++) {
        const jj_config_field *fb = &b->fields[i]->pub;
        const jj_config_field *fa = jj_config_schema_find(a, fb->name);
        if (fa && fa->type != fb->type)
            return jj_error_set(err, JJ_ECONFIG, "config field \"%s\" defined as %s and as %s",
                                fb->name, jj_config_type_name(fa->type),
                                jj_config_type_name(fb->type));
    }
    jj_config_schema *m = jj_config_schema_new();
    if (!m)
        return jj_error_set(err, JJ_ENOMEM, "config: out of memory");
    const jj_config_schema *parts[2] = {a, b};
    for (int p = 0; p < 2; p++) {
        for (size_t i = 0; parts[p] && i < parts[p]->count; i++) {
            field_store *s;
            int rc = store_new(&parts[p]->fields[i]->pub, &s, err);
            if (!rc)
                rc = insert_store(m, s, 1, err);
            if (rc) {
                jj_config_schema_free(m);
                return rc;
            }
        }
    }
    *out = m;
    return 0;
}

size_t jj_config_schema_secrets(const jj_config_schema *schema, const char **names, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; schema && i < schema->count; i++) {
        if (!(schema->fields[i]->pub.flags & JJ_CONFIG_SECRET))
            continue;
        if (names && n < cap)
            names[n] = schema->fields[i]->name;
        n++;
    }
    return n;
}

/* --- coercing a whole mapping ------------------------------------------------ */

static int fail(jj_error *err, const jj_config_opts *o, jj_yaml_mark at, int code, const char *msg)
{
    if (o->env)
        jj_error_set(err, code, "environment \"%s\": %s", o->env, msg);
    else
        jj_error_set(err, code, "%s", msg);
    if (at.line > 0)
        jj_error_at(err, o->file, at.line, at.column);
    return code;
}

static int add_warning(jj_config_warnings *w, const char *key)
{
    if (!w)
        return 0;
    char **items = realloc(w->items, (w->count + 1) * sizeof *items);
    if (!items)
        return JJ_ENOMEM;
    w->items = items;
    size_t len = strlen(key) + sizeof "unknown config field \"\"";
    char *msg = malloc(len);
    if (!msg)
        return JJ_ENOMEM;
    snprintf(msg, len, "unknown config field \"%s\"", key);
    w->items[w->count++] = msg;
    return 0;
}

void jj_config_warnings_free(jj_config_warnings *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->count; i++)
        free(w->items[i]);
    free(w->items);
    w->items = NULL;
    w->count = 0;
}

/* Puts value under the field's name, keyed with key_mark. Takes value. */
static int put_field(jj_yaml_node *res, const char *name, jj_yaml_mark key_mark, jj_yaml_node *value)
{
    jj_yaml_node *key = jj_yaml_new_string(name);
    if (!key) {
        jj_yaml_free(value);
        return JJ_ENOMEM;
    }
    jj_yaml_set_mark(key, key_mark.line, key_mark.column);
    return jj_yaml_map_put(res, key, value, NULL);
}

static int empty_error(const jj_config_field *f, const jj_yaml_node *v, const jj_config_opts *o,
                       jj_error *err)
{
    char msg[WHY_MAX];
    snprintf(msg, sizeof msg, "empty %s in environment configuration", f->name);
    return fail(err, o, jj_yaml_mark_of(v), JJ_ECONFIG, msg);
}

static int coerce_present(const jj_config_schema *schema, const jj_yaml_node *attrs,
                          const jj_config_opts *o, jj_yaml_node *res, jj_config_warnings *w,
                          jj_error *err)
{
    for (size_t i = 0; i < jj_yaml_count(attrs); i++) {
        const jj_yaml_node *key = jj_yaml_map_key_at(attrs, i);
        const jj_yaml_node *val = jj_yaml_map_value_at(attrs, i);
        const char *name = jj_yaml_text(key, NULL);
        const jj_config_field *f = jj_config_schema_find(schema, name);
        int rc;
        if (!f) {
            jj_yaml_node *kc = jj_yaml_copy(key), *vc = jj_yaml_copy(val);
            if (kc && vc) {
                rc = jj_yaml_map_put(res, kc, vc, NULL);
            } else {
                jj_yaml_free(kc);
                jj_yaml_free(vc);
                rc = JJ_ENOMEM;
            }
            if (!rc && o->warn_unknown)
                rc = add_warning(w, name);
            if (rc)
                return fail(err, o, jj_yaml_mark_of(key), rc, "config: out of memory");
            continue;
        }
        if (jj_yaml_type_of(val) == JJ_YAML_NULL)
            continue; /* absent: defaults are the next pass's business */
        coercion c;
        memset(&c, 0, sizeof c);
        c.field = f;
        c.at = jj_yaml_mark_of(val);
        jj_yaml_node *v;
        rc = coerce_value(&c, val, &v);
        if (rc == JJ_ENOMEM)
            return fail(err, o, c.at, rc, "config: out of memory");
        if (rc)
            return fail(err, o, c.at, rc, c.why);
        if (!(f->flags & JJ_CONFIG_ALLOW_EMPTY) && is_empty(v)) {
            jj_yaml_free(v);
            return empty_error(f, val, o, err);
        }
        rc = put_field(res, f->name, jj_yaml_mark_of(key), v);
        if (rc)
            return fail(err, o, c.at, rc, "config: out of memory");
    }
    return 0;
}

static int fill_absent(const jj_config_schema *schema, const jj_yaml_node *attrs,
                       const jj_config_opts *o, jj_yaml_node *res, jj_error *err)
{
    for (size_t i = 0; i < schema->count; i++) {
        const jj_config_field *f = &schema->fields[i]->pub;
        if (jj_yaml_map_get(res, f->name))
            continue;
        /* a `key:` with no value still says where the key was written */
        const jj_yaml_node *given = jj_yaml_map_get(attrs, f->name);
        const jj_yaml_node *where = given ? given : attrs;
        const jj_yaml_node *src = o->mode == JJ_CONFIG_WITH_DEFAULTS ? f->default_value : f->fillin;
        if (!src) {
            if (!(f->flags & JJ_CONFIG_REQUIRED))
                continue;
            char msg[WHY_MAX];
            snprintf(msg, sizeof msg, "%s: expected %s, got nothing", f->name,
                     juju_type_word(f->type));
            return fail(err, o, jj_yaml_mark_of(where), JJ_ECONFIG, msg);
        }
        if (!(f->flags & JJ_CONFIG_ALLOW_EMPTY) && is_empty(src))
            return empty_error(f, where, o, err);
        jj_yaml_node *v = jj_yaml_copy(src);
        jj_yaml_mark none = {0, 0};
        int rc = v ? put_field(res, f->name, given ? jj_yaml_mark_of(given) : none, v) : JJ_ENOMEM;
        if (rc)
            return fail(err, o, none, rc, "config: out of memory");
    }
    return 0;
}

int jj_config_coerce(const jj_config_schema *schema, const jj_yaml_node *attrs,
                     const jj_config_opts *opts, jj_yaml_node **out, jj_config_warnings *warnings,
                     jj_error *err)
{
    static const jj_config_opts no_opts = {JJ_CONFIG_WITH_DEFAULTS, NULL, NULL, 0};
    const jj_config_opts *o = opts ? opts : &no_opts;
    *out = NULL;
    if (warnings) {
        warnings->items = NULL;
        warnings->count = 0;
    }
    if (!schema)
        return jj_error_set(err, JJ_EINVAL, "config: no schema");
    jj_yaml_type t = jj_yaml_type_of(attrs);
    if (t != JJ_YAML_MAP && t != JJ_YAML_NULL) {
        char got[256], msg[WHY_MAX];
        describe_got(attrs, 0, got, sizeof got);
        snprintf(msg, sizeof msg, "expected map, got %s", got);
        return fail(err, o, jj_yaml_mark_of(attrs), JJ_ECONFIG, msg);
    }
    jj_yaml_node *res = jj_yaml_new_map();
    if (!res)
        return jj_error_set(err, JJ_ENOMEM, "config: out of memory");
    jj_yaml_mark m = jj_yaml_mark_of(attrs);
    jj_yaml_set_mark(res, m.line, m.column);
    int rc = coerce_present(schema, attrs, o, res, warnings, err);
    if (!rc)
        rc = fill_absent(schema, attrs, o, res, err);
    if (rc) {
        jj_yaml_free(res);
        jj_config_warnings_free(warnings);
        return rc;
    }
    *out = res;
    return 0;
}

/* --- changes ------------------------------------------------------------------ */

static const jj_yaml_node *present(const jj_yaml_node *attrs, const char *name)
{
    const jj_yaml_node *v = jj_yaml_map_get(attrs, name);
    return v && jj_yaml_type_of(v) != JJ_YAML_NULL ? v : NULL;
}

int jj_config_check_change(const jj_config_schema *schema, const jj_yaml_node *old_attrs,
                           const jj_yaml_node *new_attrs, jj_error *err)
{
    for (size_t i = 0; schema && i < schema->count; i++) {
        const jj_config_field *f = &schema->fields[i]->pub;
        if (!(f->flags & JJ_CONFIG_IMMUTABLE))
            continue;
        const jj_yaml_node *was = present(old_attrs, f->name);
        const jj_yaml_node *now = present(new_attrs, f->name);
        if (!was || jj_yaml_equal(was, now))
            continue;
        char msg[WHY_MAX];
        size_t n = 0;
        int secret = (f->flags & JJ_CONFIG_SECRET) != 0;
        append(msg, sizeof msg, &n, "cannot change %s from ", f->name);
        describe_value(was, secret, msg, sizeof msg, &n);
        append(msg, sizeof msg, &n, " to ");
        describe_value(now, secret, msg, sizeof msg, &n);
        return jj_error_set(err, JJ_ECONFIG, "%s", msg);
    }
    return 0;
}
