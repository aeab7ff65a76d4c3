/* yaml.c: YAML text <-> the document model (see yaml.h, doc.h).
 *
 * Parsing consumes libyaml events and builds the tree directly. Emission
 * feeds libyaml's emitter and picks each string's style so the text reads
 * back as the same value.
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

/* --- parsing ------------------------------------------------------------- */

#define YAML_TAG_PREFIX "tag:yaml.org,2002:"

typedef struct anchor {
    char *name;
    jj_yaml_node *node; /* borrowed from the tree (or the detached list) */
    int complete;
} anchor;

typedef struct frame {
    jj_yaml_node *node; /* collection being filled; owned by its parent */
    jj_yaml_node *key;  /* mapping key waiting for its value; owned here */
    int key_is_merge;
    long anchor;        /* index in anchors completed at the end, or -1 */
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

/* Size and height of a subtree, to bound alias expansion before copying. */
static void measure(const jj_yaml_node *n, size_t *size, size_t *height)
{
    *size = 1;
    *height = 0;
    jj_yaml_type type = jj_yaml_type_of(n);
    if (type != JJ_YAML_SEQ && type != JJ_YAML_MAP)
        return;
    size_t tallest = 0;
    for (size_t i = 0; i < jj_yaml_count(n); i++) {
        size_t s, h;
        measure(type == JJ_YAML_SEQ ? jj_yaml_seq_at(n, i) : jj_yaml_map_value_at(n, i), &s, &h);
        *size += s;
        if (h > tallest)
            tallest = h;
        if (type == JJ_YAML_MAP)
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
    if (jj_yaml_type_of(source) != JJ_YAML_MAP && jj_yaml_type_of(source) != JJ_YAML_SEQ)
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
    size_t len;
    const char *text = jj_yaml_text(k, &len);
    if (jj_yaml_type_of(k) == JJ_YAML_STRING)
        snprintf(buf, size, "\"%.*s\"", (int)(len > 200 ? 200 : len), text);
    else
        snprintf(buf, size, "%.*s", (int)(len > 200 ? 200 : len), text);
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
    if (jj_yaml_type_of(f->node) == JJ_YAML_SEQ)
        return jj_yaml_seq_append(f->node, n, NULL) ? oom(c) : 0;
    if (!f->key) {
        if (jj_yaml_type_of(n) == JJ_YAML_SEQ || jj_yaml_type_of(n) == JJ_YAML_MAP) {
            jj_yaml_mark at = jj_yaml_mark_of(n);
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
        return rc ? rc : add_merge(c, f, n, jj_yaml_mark_of(n));
    }
    long prev = jj_yaml_map_find(f->node, key);
    if (prev >= 0) {
        char what[256];
        describe_key(key, what, sizeof what);
        jj_yaml_mark at = jj_yaml_mark_of(key);
        int line = jj_yaml_mark_of(jj_yaml_map_key_at(f->node, (size_t)prev)).line;
        jj_yaml_free(key);
        jj_yaml_free(n);
        return parse_fail(c, at, "mapping key %s already defined at line %d", what, line);
    }
    return jj_yaml_map_add(f->node, key, n, NULL) ? oom(c) : 0;
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
        if (jj_yaml_type_of(f->node) == JJ_YAML_MAP && f->key && f->key_is_merge) {
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
    jj_yaml_set_mark(copy, at.line, at.column);
    return attach(c, copy, 0);
}

static int tag_is(const yaml_char_t *tag, const char *name)
{
    size_t plen = sizeof YAML_TAG_PREFIX - 1;
    return tag && strncmp((const char *)tag, YAML_TAG_PREFIX, plen) == 0 &&
           strcmp((const char *)tag + plen, name) == 0;
}

/* The node for a scalar event: quoted and block scalars are strings, plain
 * ones resolved; an explicit !!tag wins (typed tags resolve the text and
 * must agree, unknown and local tags are ignored, as yaml.v2 does). */
static int scalar_node(parse_ctx *c, const char *text, size_t len, const yaml_char_t *tag,
                       int plain, jj_yaml_mark at, jj_yaml_node **out)
{
    const char *want = NULL;
    int resolve = plain;
    if (tag && (strcmp((const char *)tag, "!") == 0 || tag_is(tag, "str") ||
                tag_is(tag, "binary") || tag_is(tag, "timestamp"))) {
        resolve = 0;
    } else if (tag) {
        if (tag_is(tag, "int"))
            want = "int";
        else if (tag_is(tag, "float"))
            want = "float";
        else if (tag_is(tag, "bool"))
            want = "bool";
        else if (tag_is(tag, "null"))
            want = "null";
        if (want)
            resolve = 1;
    }
    jj_yaml_node *n = resolve ? jj_yaml_new_plain(text, len) : jj_yaml_new_stringn(text, len);
    if (!n)
        return oom(c);
    jj_yaml_set_mark(n, at.line, at.column);
    if (want && strcmp(want, "float") == 0)
        jj_yaml_to_float(n); /* an int becomes a float; anything else stays */
    if (want && strcmp(jj_yaml_type_name(jj_yaml_type_of(n)), want) != 0) {
        jj_yaml_free(n);
        return parse_fail(c, at, "cannot decode \"%.*s\" as a !!%s", (int)(len > 200 ? 200 : len),
                          text, want);
    }
    *out = n;
    return 0;
}

static int on_scalar(parse_ctx *c, const yaml_event_t *ev)
{
    jj_yaml_mark at = to_mark(ev->start_mark);
    int rc = count_node(c, at);
    if (rc)
        return rc;
    const char *value = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    const yaml_char_t *tag = ev->data.scalar.tag;
    int plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    int is_merge = plain && (!tag || tag_is(tag, "merge")) && len == 2 &&
                   memcmp(value, "<<", 2) == 0;
    jj_yaml_node *n = NULL;
    rc = scalar_node(c, value, len, tag, plain, at, &n);
    if (rc)
        return rc;
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
    jj_yaml_node *n = type == JJ_YAML_MAP ? jj_yaml_new_map() : jj_yaml_new_seq();
    if (!n)
        return oom(c);
    jj_yaml_set_mark(n, at.line, at.column);
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
        int single = jj_yaml_type_of(src) == JJ_YAML_MAP;
        size_t nsrc = single ? 1 : jj_yaml_count(src);
        for (size_t s = 0; s < nsrc; s++) {
            const jj_yaml_node *part = single ? src : jj_yaml_seq_at(src, s);
            if (jj_yaml_type_of(part) != JJ_YAML_MAP)
                return parse_fail(c, jj_yaml_mark_of(part),
                                  "map merge requires map or sequence of maps as the value");
            for (size_t i = 0; i < jj_yaml_count(part); i++) {
                const jj_yaml_node *pk = jj_yaml_map_key_at(part, i);
                const jj_yaml_node *pv = jj_yaml_map_value_at(part, i);
                if (jj_yaml_map_find(f->node, pk) >= 0)
                    continue;
                jj_yaml_node *k, *v;
                int rc = counted_copy(c, pk, jj_yaml_mark_of(pk), &k);
                if (rc)
                    return rc;
                rc = counted_copy(c, pv, jj_yaml_mark_of(pv), &v);
                if (rc) {
                    jj_yaml_free(k);
                    return rc;
                }
                if (jj_yaml_map_add(f->node, k, v, NULL) != 0)
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
    free(f->merges);
    f->merges = NULL;
}

static int on_end(parse_ctx *c)
{
    frame *f = &c->stack[c->depth - 1];
    int rc = 0;
    if (jj_yaml_type_of(f->node) == JJ_YAML_MAP)
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
    return jj_yaml_resolve_plain(s, len) == JJ_YAML_STRING;
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
    size_t len;
    const char *text = jj_yaml_text(n, &len);
    yaml_scalar_style_t style = YAML_PLAIN_SCALAR_STYLE;
    switch (jj_yaml_type_of(n)) {
    case JJ_YAML_NULL: text = "null"; len = 4; break;
    case JJ_YAML_BOOL: text = jj_yaml_bool(n) ? "true" : "false"; len = strlen(text); break;
    case JJ_YAML_INT:
        len = (size_t)snprintf(canon, sizeof canon, "%" PRId64, jj_yaml_int(n));
        text = canon;
        break;
    case JJ_YAML_FLOAT:
        jj_yaml_format_float(jj_yaml_float(n), canon, sizeof canon);
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
    jj_yaml_type type = jj_yaml_type_of(n);
    if (type == JJ_YAML_SEQ) {
        ok = yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE);
    } else if (type == JJ_YAML_MAP) {
        ok = yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE);
    } else {
        return emit_scalar(em, n, err);
    }
    if (!ok)
        return jj_error_set(err, JJ_ENOMEM, "yaml: out of memory while emitting");
    if (!yaml_emitter_emit(em, &ev))
        return emit_fail(em, err);
    for (size_t i = 0; i < jj_yaml_count(n); i++) {
        int rc = type == JJ_YAML_MAP ? emit_node(em, jj_yaml_map_key_at(n, i), depth + 1, err) : 0;
        if (!rc)
            rc = emit_node(em, type == JJ_YAML_MAP ? jj_yaml_map_value_at(n, i)
                                                   : jj_yaml_seq_at(n, i), depth + 1, err);
        if (rc)
            return rc;
    }
    if (type == JJ_YAML_SEQ)
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
