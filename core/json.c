/* json.c: strict JSON reader and Go-compatible writer over jj_yaml_node.
 *
 * The reader is a recursive descent parser bounded by JJ_JSON_MAX_DEPTH;
 * its messages follow Go's encoding/json scanner so users who know Juju's
 * errors recognise them, with a position added. The writer reproduces Go's
 * Marshal/MarshalIndent output exactly, because juju 1.25 compares its
 * simplestreams product files byte for byte.
 */
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

/* --- UTF-8 ------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (n bytes available), or 0 when it
 * is invalid: the same acceptance rules as Go's utf8.DecodeRune (no overlong
 * forms, no surrogates, nothing above U+10FFFF). *cp gets the code point. */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char b = s[0];
    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) {
        len = 2;
        *cp = b & 0x1F;
    } else if (b >= 0xE0 && b <= 0xEF) {
        len = 3;
        *cp = b & 0x0F;
        if (b == 0xE0)
            lo = 0xA0;
        else if (b == 0xED)
            hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
        len = 4;
        *cp = b & 0x07;
        if (b == 0xF0)
            lo = 0x90;
        else if (b == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if (i > 1 && (s[i] & 0xC0) != 0x80)
            return 0;
        *cp = (*cp << 6) | (s[i] & 0x3F);
    }
    return len;
}

static size_t utf8_encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* --- growable text buffer ------------------------------------------------ */

typedef struct buffer {
    char *data;
    size_t len, cap;
    int failed; /* an allocation failed; everything after is dropped */
} buffer;

static int buf_reserve(buffer *b, size_t more)
{
    if (b->failed)
        return -1;
    if (more <= b->cap - b->len)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < more) {
        if (cap > SIZE_MAX / 2) {
            b->failed = 1;
            return -1;
        }
        cap *= 2;
    }
    char *data = realloc(b->data, cap);
    if (!data) {
        b->failed = 1;
        return -1;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

static void buf_add(buffer *b, const char *s, size_t n)
{
    if (n && buf_reserve(b, n) == 0) {
        memcpy(b->data + b->len, s, n);
        b->len += n;
    }
}

static void buf_addc(buffer *b, char c)
{
    if (buf_reserve(b, 1) == 0)
        b->data[b->len++] = c;
}

static inline void buf_adds(buffer *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

/* --- parser -------------------------------------------------------------- */

typedef struct parser {
    const unsigned char *p, *end;
    const char *source;
    jj_error *err;
    int line;
    /* Column cache: columns are counted in characters, and positions only
     * move forward, so counting from the last asked position keeps marking
     * every node linear in the input. */
    const unsigned char *col_pos;
    int col;
    buffer str; /* scratch for strings with escapes, reused */
} parser;

static int column_at(parser *ps, const unsigned char *q)
{
    if (q < ps->col_pos) /* not expected; recount from the line start */
        return ps->col;
    for (const unsigned char *r = ps->col_pos; r < q; r++)
        if ((*r & 0xC0) != 0x80)
            ps->col++;
    ps->col_pos = q;
    return ps->col;
}

static void mark(parser *ps, jj_yaml_node *n, const unsigned char *at)
{
    jj_yaml_set_mark(n, ps->line, column_at(ps, at));
}

/* The offending byte as Go's scanner quotes it: 'x', '\n', '\x01', or the
 * whole character when a valid multi-byte one starts there. */
static void quote_char(const unsigned char *at, const unsigned char *end, char *out, size_t size)
{
    unsigned char c = *at;
    uint32_t cp;
    size_t n;
    if (c == '\'')
        snprintf(out, size, "'\\''");
    else if (c == '\n')
        snprintf(out, size, "'\\n'");
    else if (c == '\r')
        snprintf(out, size, "'\\r'");
    else if (c == '\t')
        snprintf(out, size, "'\\t'");
    else if (c >= 0x20 && c < 0x7F)
        snprintf(out, size, "'%c'", c);
    else if (c >= 0x80 && (n = utf8_decode(at, (size_t)(end - at), &cp)) > 0)
        snprintf(out, size, "'%.*s'", (int)n, (const char *)at);
    else
        snprintf(out, size, "'\\x%02x'", c);
}

static int fail_at(parser *ps, const unsigned char *at, const char *fmt, const char *arg)
{
    int column = column_at(ps, at);
    jj_error_set(ps->err, JJ_EINVAL, fmt, arg);
    jj_error_at(ps->err, ps->source, ps->line, column);
    return JJ_EINVAL;
}

static int fail_eof(parser *ps)
{
    return fail_at(ps, ps->end, "%s", "unexpected end of JSON input");
}

/* "invalid character 'x' <context>", or the end-of-input error at the end. */
static int fail_char(parser *ps, const unsigned char *at, const char *context)
{
    if (at >= ps->end)
        return fail_eof(ps);
    char q[16], msg[128];
    quote_char(at, ps->end, q, sizeof q);
    snprintf(msg, sizeof msg, "invalid character %s %s", q, context);
    return fail_at(ps, at, "%s", msg);
}

static int oom(parser *ps)
{
    return jj_error_set(ps->err, JJ_ENOMEM, "json: out of memory");
}

static void skip_ws(parser *ps)
{
    while (ps->p < ps->end) {
        unsigned char c = *ps->p;
        if (c == '\n') {
            ps->line++;
            ps->p++;
            ps->col_pos = ps->p;
            ps->col = 1;
        } else if (c == ' ' || c == '\t' || c == '\r') {
            ps->p++;
        } else {
            break;
        }
    }
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Reads the 4 hex digits after "\u" at ps->p. */
static int read_hex4(parser *ps, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        if (ps->p >= ps->end)
            return fail_eof(ps);
        int h = hex_value(*ps->p);
        if (h < 0)
            return fail_char(ps, ps->p, "in \\u hexadecimal character escape");
        v = (v << 4) | (uint32_t)h;
        ps->p++;
    }
    *out = v;
    return 0;
}

/* An escape after the backslash at ps->p - 1; appends its UTF-8 to ps->str. */
static int read_escape(parser *ps)
{
    const unsigned char *start = ps->p - 1;
    if (ps->p >= ps->end)
        return fail_eof(ps);
    unsigned char c = *ps->p++;
    switch (c) {
    case '"': buf_addc(&ps->str, '"'); return 0;
    case '\\': buf_addc(&ps->str, '\\'); return 0;
    case '/': buf_addc(&ps->str, '/'); return 0;
    case 'b': buf_addc(&ps->str, '\b'); return 0;
    case 'f': buf_addc(&ps->str, '\f'); return 0;
    case 'n': buf_addc(&ps->str, '\n'); return 0;
    case 'r': buf_addc(&ps->str, '\r'); return 0;
    case 't': buf_addc(&ps->str, '\t'); return 0;
    case 'u': break;
    default: return fail_char(ps, ps->p - 1, "in string escape code");
    }
    uint32_t cp;
    int rc = read_hex4(ps, &cp);
    if (rc)
        return rc;
    if (cp >= 0xDC00 && cp <= 0xDFFF)
        return fail_at(ps, start, "%s", "invalid \\u escape: lone low surrogate");
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        /* A high surrogate is only meaningful followed by "\u" + a low one. */
        if (ps->end - ps->p < 2 || ps->p[0] != '\\' || ps->p[1] != 'u')
            return fail_at(ps, start, "%s", "invalid \\u escape: lone high surrogate");
        ps->p += 2;
        uint32_t low;
        rc = read_hex4(ps, &low);
        if (rc)
            return rc;
        if (low < 0xDC00 || low > 0xDFFF)
            return fail_at(ps, start, "%s", "invalid \\u escape: lone high surrogate");
        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    }
    char utf8[4];
    buf_add(&ps->str, utf8, utf8_encode(cp, utf8));
    return 0;
}

/* A string starting at the quote at ps->p; *out gets a new string node. */
static int parse_string(parser *ps, jj_yaml_node **out)
{
    const unsigned char *quote = ps->p++;
    const unsigned char *run = ps->p; /* start of bytes not yet copied */
    ps->str.len = 0;
    int escaped = 0;
    for (;;) {
        if (ps->p >= ps->end)
            return fail_eof(ps);
        unsigned char c = *ps->p;
        if (c == '"')
            break;
        if (c == '\\') {
            buf_add(&ps->str, (const char *)run, (size_t)(ps->p - run));
            ps->p++;
            int rc = read_escape(ps);
            if (rc)
                return rc;
            run = ps->p;
            escaped = 1;
        } else if (c < 0x20) {
            return fail_char(ps, ps->p, "in string literal");
        } else if (c < 0x80) {
            ps->p++;
        } else {
            uint32_t cp;
            size_t n = utf8_decode(ps->p, (size_t)(ps->end - ps->p), &cp);
            if (!n)
                return fail_at(ps, ps->p, "%s", "invalid UTF-8 in string literal");
            ps->p += n;
        }
    }
    jj_yaml_node *n;
    if (escaped) {
        buf_add(&ps->str, (const char *)run, (size_t)(ps->p - run));
        if (ps->str.failed)
            return oom(ps);
        n = jj_yaml_new_stringn(ps->str.data, ps->str.len);
    } else {
        n = jj_yaml_new_stringn((const char *)run, (size_t)(ps->p - run));
    }
    if (!n)
        return oom(ps);
    mark(ps, n, quote);
    ps->p++; /* closing quote */
    *out = n;
    return 0;
}

static inline int is_digit(const unsigned char *p, const unsigned char *end)
{
    return p < end && *p >= '0' && *p <= '9';
}

/* Exact int64 value of an optionally signed digit run, or -1 if it does
 * not fit. */
static int digits_to_int64(const unsigned char *s, const unsigned char *e, int64_t *out)
{
    int neg = *s == '-';
    if (neg)
        s++;
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t v = 0;
    for (; s < e; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (limit - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (neg)
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    else
        *out = (int64_t)v;
    return 0;
}

/* strtod on a copy, with the locale's decimal point put in: C's strtod
 * honours LC_NUMERIC, JSON never does. */
static int text_to_double(const unsigned char *s, size_t len, double *out)
{
    const char *point = localeconv()->decimal_point;
    size_t plen = point && *point ? strlen(point) : 1;
    char small[128];
    size_t need = len * plen + 1;
    char *copy = need <= sizeof small ? small : malloc(need);
    if (!copy)
        return JJ_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.' && point && *point) {
            memcpy(copy + k, point, plen);
            k += plen;
        } else {
            copy[k++] = (char)s[i];
        }
    }
    copy[k] = '\0';
    *out = strtod(copy, NULL);
    if (copy != small)
        free(copy);
    return 0;
}

static int parse_number(parser *ps, jj_yaml_node **out)
{
    const unsigned char *start = ps->p, *end = ps->end;
    int is_float = 0;
    if (*ps->p == '-')
        ps->p++;
    if (!is_digit(ps->p, end))
        return fail_char(ps, ps->p, "in numeric literal");
    if (*ps->p == '0') {
        ps->p++;
    } else {
        while (is_digit(ps->p, end))
            ps->p++;
    }
    if (ps->p < end && *ps->p == '.') {
        is_float = 1;
        ps->p++;
        if (!is_digit(ps->p, end))
            return fail_char(ps, ps->p, "after decimal point in numeric literal");
        while (is_digit(ps->p, end))
            ps->p++;
    }
    if (ps->p < end && (*ps->p == 'e' || *ps->p == 'E')) {
        is_float = 1;
        ps->p++;
        if (ps->p < end && (*ps->p == '+' || *ps->p == '-'))
            ps->p++;
        if (!is_digit(ps->p, end))
            return fail_char(ps, ps->p, "in exponent of numeric literal");
        while (is_digit(ps->p, end))
            ps->p++;
    }
    size_t len = (size_t)(ps->p - start);
    int64_t i;
    /* "-0" stays a float so its sign survives. */
    int negative_zero = len == 2 && start[0] == '-' && start[1] == '0';
    jj_yaml_node *n;
    if (!is_float && !negative_zero && digits_to_int64(start, ps->p, &i) == 0) {
        n = jj_yaml_new_int(i);
    } else {
        double d;
        if (text_to_double(start, len, &d) != 0)
            return oom(ps);
        if (isinf(d)) {
            char shown[48];
            snprintf(shown, sizeof shown, "%.*s%s", len > 32 ? 32 : (int)len, (const char *)start,
                     len > 32 ? "..." : "");
            return fail_at(ps, start, "number %s is out of range", shown);
        }
        n = jj_yaml_new_float(d);
    }
    if (!n)
        return oom(ps);
    mark(ps, n, start);
    *out = n;
    return 0;
}

static int parse_literal(parser *ps, jj_yaml_node **out)
{
    const unsigned char *start = ps->p;
    const char *word = *start == 't' ? "true" : *start == 'f' ? "false" : "null";
    size_t wlen = strlen(word);
    for (size_t i = 1; i < wlen; i++) {
        const unsigned char *at = start + i;
        if (at >= ps->end)
            return fail_eof(ps);
        if (*at != (unsigned char)word[i]) {
            char context[64];
            snprintf(context, sizeof context, "in literal %s (expecting '%c')", word, word[i]);
            return fail_char(ps, at, context);
        }
    }
    ps->p = start + wlen;
    jj_yaml_node *n = *start == 'n' ? jj_yaml_new_null() : jj_yaml_new_bool(*start == 't');
    if (!n)
        return oom(ps);
    mark(ps, n, start);
    *out = n;
    return 0;
}

static int parse_value(parser *ps, int depth, jj_yaml_node **out);

static int enter(parser *ps, int depth)
{
    if (depth >= JJ_JSON_MAX_DEPTH) {
        char msg[64];
        snprintf(msg, sizeof msg, "exceeded max depth of %d", JJ_JSON_MAX_DEPTH);
        return fail_at(ps, ps->p, "%s", msg);
    }
    return 0;
}

static int parse_array(parser *ps, int depth, jj_yaml_node **out)
{
    int rc = enter(ps, depth);
    if (rc)
        return rc;
    jj_yaml_node *seq = jj_yaml_new_seq();
    if (!seq)
        return oom(ps);
    mark(ps, seq, ps->p);
    *out = seq; /* the caller frees it on failure */
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ']') {
        ps->p++;
        return 0;
    }
    for (;;) {
        jj_yaml_node *item = NULL;
        rc = parse_value(ps, depth + 1, &item);
        if (rc) {
            jj_yaml_free(item);
            return rc;
        }
        if (jj_yaml_seq_append(seq, item, ps->err) != 0)
            return oom(ps);
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == ']') {
            ps->p++;
            return 0;
        }
        return fail_char(ps, ps->p, "after array element");
    }
}

static int parse_object(parser *ps, int depth, jj_yaml_node **out)
{
    int rc = enter(ps, depth);
    if (rc)
        return rc;
    jj_yaml_node *map = jj_yaml_new_map();
    if (!map)
        return oom(ps);
    mark(ps, map, ps->p);
    *out = map; /* the caller frees it on failure */
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == '}') {
        ps->p++;
        return 0;
    }
    for (;;) {
        if (ps->p >= ps->end || *ps->p != '"')
            return fail_char(ps, ps->p, "looking for beginning of object key string");
        jj_yaml_node *key = NULL, *value = NULL;
        rc = parse_string(ps, &key);
        if (rc)
            return rc;
        skip_ws(ps);
        if (ps->p >= ps->end || *ps->p != ':') {
            jj_yaml_free(key);
            return fail_char(ps, ps->p, "after object key");
        }
        ps->p++;
        rc = parse_value(ps, depth + 1, &value);
        if (rc) {
            jj_yaml_free(key);
            jj_yaml_free(value);
            return rc;
        }
        /* Replaces an earlier equal key in place: last value, first position. */
        if (jj_yaml_map_put(map, key, value, ps->err) != 0)
            return oom(ps);
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            skip_ws(ps);
            continue;
        }
        if (ps->p < ps->end && *ps->p == '}') {
            ps->p++;
            return 0;
        }
        return fail_char(ps, ps->p, "after object key:value pair");
    }
}

static int parse_value(parser *ps, int depth, jj_yaml_node **out)
{
    *out = NULL;
    skip_ws(ps);
    if (ps->p >= ps->end)
        return fail_eof(ps);
    switch (*ps->p) {
    case '{': return parse_object(ps, depth, out);
    case '[': return parse_array(ps, depth, out);
    case '"': return parse_string(ps, out);
    case 't':
    case 'f':
    case 'n': return parse_literal(ps, out);
    default:
        if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9'))
            return parse_number(ps, out);
        return fail_char(ps, ps->p, "looking for beginning of value");
    }
}

int jj_json_parse(const char *buf, size_t len, const char *source, jj_yaml_node **out,
                  jj_error *err)
{
    jj_error_clear(err);
    if (!out)
        return jj_error_set(err, JJ_EINVAL, "json: parse needs an output pointer");
    *out = NULL;
    if (!buf && len)
        return jj_error_set(err, JJ_EINVAL, "json: parse needs a buffer");
    static const unsigned char empty[1] = {0};
    parser ps;
    memset(&ps, 0, sizeof ps);
    ps.p = buf ? (const unsigned char *)buf : empty;
    ps.end = ps.p + len;
    ps.source = source;
    ps.err = err;
    ps.line = 1;
    ps.col_pos = ps.p;
    ps.col = 1;
    jj_yaml_node *root = NULL;
    int rc = parse_value(&ps, 0, &root);
    if (rc == 0) {
        skip_ws(&ps);
        if (ps.p < ps.end)
            rc = fail_char(&ps, ps.p, "after top-level value");
    }
    free(ps.str.data);
    if (rc) {
        jj_yaml_free(root);
        if (rc == JJ_ENOMEM)
            jj_error_at(err, source, 0, 0);
        return rc;
    }
    *out = root;
    return 0;
}

/* --- emitter ------------------------------------------------------------- */

typedef struct emitter {
    buffer out;
    int indent;
    jj_error *err;
} emitter;

static void emit_string(buffer *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    buf_addc(b, '"');
    const unsigned char *run = p;
    while (p < end) {
        unsigned char c = *p;
        const char *esc = NULL;
        char ubuf[7];
        size_t n = 1;
        if (c < 0x80) {
            if (c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&') {
                p++;
                continue;
            }
            switch (c) {
            case '"': esc = "\\\""; break;
            case '\\': esc = "\\\\"; break;
            case '\n': esc = "\\n"; break;
            case '\r': esc = "\\r"; break;
            case '\t': esc = "\\t"; break;
            default:
                /* Other controls and the HTML-sensitive <, >, &, as Go
                 * escapes them (juju 1.25's Go wrote \u0008, not \b). */
                memcpy(ubuf, "\\u00", 4);
                ubuf[4] = hex[c >> 4];
                ubuf[5] = hex[c & 0xF];
                ubuf[6] = '\0';
                esc = ubuf;
                break;
            }
        } else {
            uint32_t cp;
            n = utf8_decode(p, (size_t)(end - p), &cp);
            if (n == 0) {
                esc = "\\ufffd";
                n = 1;
            } else if (cp == 0x2028) {
                esc = "\\u2028";
            } else if (cp == 0x2029) {
                esc = "\\u2029";
            } else {
                p += n;
                continue;
            }
        }
        buf_add(b, (const char *)run, (size_t)(p - run));
        buf_adds(b, esc);
        p += n;
        run = p;
    }
    buf_add(b, (const char *)run, (size_t)(p - run));
    buf_addc(b, '"');
}

/* Go's float64 encoding: the shortest digits that read back as d, in %f
 * style for 1e-6 <= |d| < 1e21 and %e style (exponent without leading
 * zeros below 10, e.g. 1e-7, 1e+21) outside it. */
static void emit_float(buffer *b, double d)
{
    char tmp[64];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, d);
        if (strtod(tmp, NULL) == d)
            break;
    }
    /* tmp is [-]D[<point>DDD]e(+|-)XX in whatever the locale's point is. */
    char digits[24];
    size_t nd = 0;
    const char *q = tmp;
    int neg = 0;
    if (*q == '-') {
        neg = 1;
        q++;
    }
    for (; *q && *q != 'e'; q++)
        if (*q >= '0' && *q <= '9' && nd < sizeof digits - 1)
            digits[nd++] = *q;
    digits[nd] = '\0';
    int exp10 = *q == 'e' ? atoi(q + 1) : 0;
    if (neg)
        buf_addc(b, '-');
    double a = fabs(d);
    if (a != 0 && (a < 1e-6 || a >= 1e21)) {
        buf_addc(b, digits[0]);
        if (nd > 1) {
            buf_addc(b, '.');
            buf_add(b, digits + 1, nd - 1);
        }
        char e[16];
        int ae = exp10 < 0 ? -exp10 : exp10;
        snprintf(e, sizeof e, ae < 10 && exp10 > 0 ? "e%c0%d" : "e%c%d", exp10 < 0 ? '-' : '+',
                 ae);
        buf_adds(b, e);
        return;
    }
    int point = exp10 + 1; /* digits before the decimal point */
    if (d == 0) {
        buf_addc(b, '0');
    } else if (point <= 0) {
        buf_adds(b, "0.");
        for (int i = 0; i < -point; i++)
            buf_addc(b, '0');
        buf_add(b, digits, nd);
    } else if ((size_t)point >= nd) {
        buf_add(b, digits, nd);
        for (size_t i = nd; i < (size_t)point; i++)
            buf_addc(b, '0');
    } else {
        buf_add(b, digits, (size_t)point);
        buf_addc(b, '.');
        buf_add(b, digits + point, nd - (size_t)point);
    }
}

static void newline(emitter *e, int depth)
{
    buf_addc(&e->out, '\n');
    size_t n = (size_t)depth * (size_t)e->indent;
    if (buf_reserve(&e->out, n) == 0) {
        memset(e->out.data + e->out.len, ' ', n);
        e->out.len += n;
    }
}

static int emit_node(emitter *e, const jj_yaml_node *n, int depth);

static int emit_key(emitter *e, const jj_yaml_node *k)
{
    jj_yaml_type t = jj_yaml_type_of(k);
    if (t == JJ_YAML_SEQ || t == JJ_YAML_MAP)
        return jj_error_set(e->err, JJ_EINVAL, "json: unsupported %s as an object key",
                            jj_yaml_type_name(t));
    size_t len = 0;
    const char *text = jj_yaml_text(k, &len);
    emit_string(&e->out, text ? text : "", text ? len : 0);
    return 0;
}

static int emit_collection(emitter *e, const jj_yaml_node *n, int depth)
{
    int is_map = jj_yaml_type_of(n) == JJ_YAML_MAP;
    size_t count = jj_yaml_count(n);
    if (depth >= JJ_JSON_MAX_DEPTH)
        return jj_error_set(e->err, JJ_EINVAL, "json: nesting deeper than %d levels",
                            JJ_JSON_MAX_DEPTH);
    buf_addc(&e->out, is_map ? '{' : '[');
    for (size_t i = 0; i < count; i++) {
        if (i)
            buf_addc(&e->out, ',');
        if (e->indent)
            newline(e, depth + 1);
        int rc;
        if (is_map) {
            rc = emit_key(e, jj_yaml_map_key_at(n, i));
            if (rc)
                return rc;
            buf_add(&e->out, e->indent ? ": " : ":", e->indent ? 2 : 1);
            rc = emit_node(e, jj_yaml_map_value_at(n, i), depth + 1);
        } else {
            rc = emit_node(e, jj_yaml_seq_at(n, i), depth + 1);
        }
        if (rc)
            return rc;
    }
    if (e->indent && count)
        newline(e, depth);
    buf_addc(&e->out, is_map ? '}' : ']');
    return 0;
}

static int emit_node(emitter *e, const jj_yaml_node *n, int depth)
{
    size_t len;
    const char *text;
    double d;
    switch (jj_yaml_type_of(n)) {
    case JJ_YAML_NULL: buf_adds(&e->out, "null"); return 0;
    case JJ_YAML_BOOL: buf_adds(&e->out, jj_yaml_bool(n) ? "true" : "false"); return 0;
    case JJ_YAML_INT: {
        char num[32];
        snprintf(num, sizeof num, "%lld", (long long)jj_yaml_int(n));
        buf_adds(&e->out, num);
        return 0;
    }
    case JJ_YAML_FLOAT:
        d = jj_yaml_float(n);
        if (isnan(d) || isinf(d))
            return jj_error_set(e->err, JJ_EINVAL, "json: unsupported value: %s",
                                isnan(d) ? "NaN" : d > 0 ? "+Inf" : "-Inf");
        emit_float(&e->out, d);
        return 0;
    case JJ_YAML_STRING:
        text = jj_yaml_text(n, &len);
        emit_string(&e->out, text ? text : "", text ? len : 0);
        return 0;
    case JJ_YAML_SEQ:
    case JJ_YAML_MAP: return emit_collection(e, n, depth);
    }
    return jj_error_set(e->err, JJ_EINVAL, "json: unknown node type");
}

int jj_json_emit(const jj_yaml_node *node, int indent, char **out, size_t *out_len, jj_error *err)
{
    jj_error_clear(err);
    if (!out)
        return jj_error_set(err, JJ_EINVAL, "json: emit needs an output pointer");
    *out = NULL;
    if (out_len)
        *out_len = 0;
    if (indent < 0 || indent > 16)
        return jj_error_set(err, JJ_EINVAL, "json: indent %d is outside 0..16", indent);
    emitter e;
    memset(&e, 0, sizeof e);
    e.indent = indent;
    e.err = err;
    int rc = emit_node(&e, node, 0);
    buf_addc(&e.out, '\0');
    if (rc == 0 && e.out.failed)
        rc = jj_error_set(err, JJ_ENOMEM, "json: out of memory");
    if (rc) {
        free(e.out.data);
        return rc;
    }
    *out = e.out.data;
    if (out_len)
        *out_len = e.out.len - 1;
    return 0;
}
