/* xml.c: expat-based XML reader and a small writer (see xml.h). */
#include "xml.h"

#include <expat.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Names from expat in namespace mode are "uri\x01local": U+0001 cannot
 * appear in an XML 1.0 document, so it cannot be part of a URI. */
#define NS_SEP '\x01'
#define XML_NS_URI "http://www.w3.org/XML/1998/namespace"

static char *dup_n(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

static char *dup_s(const char *s)
{
    return s ? dup_n(s, strlen(s)) : NULL;
}

/* Splits an expat name into local name and namespace (both new strings). */
static int split_name(const char *qname, char **name, char **ns)
{
    const char *sep = strchr(qname, NS_SEP);
    *ns = NULL;
    if (sep) {
        *ns = dup_n(qname, (size_t)(sep - qname));
        *name = dup_s(sep + 1);
        if (!*ns || !*name) {
            free(*ns);
            free(*name);
            return JJ_ENOMEM;
        }
        return 0;
    }
    *name = dup_s(qname);
    return *name ? 0 : JJ_ENOMEM;
}

void jj_xml_free(jj_xml_node *node)
{
    if (!node)
        return;
    for (size_t i = 0; i < node->nchildren; i++)
        jj_xml_free(node->children[i]);
    free(node->children);
    for (size_t i = 0; i < node->nattrs; i++) {
        free(node->attrs[i].name);
        free(node->attrs[i].ns);
        free(node->attrs[i].value);
    }
    free(node->attrs);
    free(node->name);
    free(node->ns);
    free(node->text);
    free(node);
}

static jj_xml_node *new_node(void)
{
    jj_xml_node *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->text = calloc(1, 1);
    if (!n->text) {
        free(n);
        return NULL;
    }
    n->cap_text = 1;
    return n;
}

jj_xml_node *jj_xml_new_element(const char *name, const char *ns)
{
    if (!name || !*name)
        return NULL;
    jj_xml_node *n = new_node();
    if (!n)
        return NULL;
    n->name = dup_s(name);
    n->ns = ns ? dup_s(ns) : NULL;
    if (!n->name || (ns && !n->ns)) {
        jj_xml_free(n);
        return NULL;
    }
    return n;
}

int jj_xml_add_attr(jj_xml_node *el, const char *name, const char *ns, const char *value)
{
    jj_xml_attr *a = realloc(el->attrs, (el->nattrs + 1) * sizeof *a);
    if (!a)
        return JJ_ENOMEM;
    el->attrs = a;
    jj_xml_attr *at = &a[el->nattrs];
    at->name = dup_s(name);
    at->ns = ns ? dup_s(ns) : NULL;
    at->value = dup_s(value ? value : "");
    if (!at->name || !at->value || (ns && !at->ns)) {
        free(at->name);
        free(at->ns);
        free(at->value);
        return JJ_ENOMEM;
    }
    el->nattrs++;
    return 0;
}

int jj_xml_add_child(jj_xml_node *el, jj_xml_node *child)
{
    if (el->nchildren == el->cap_children) {
        size_t cap = el->cap_children ? el->cap_children * 2 : 4;
        jj_xml_node **c = realloc(el->children, cap * sizeof *c);
        if (!c) {
            jj_xml_free(child);
            return JJ_ENOMEM;
        }
        el->children = c;
        el->cap_children = cap;
    }
    el->children[el->nchildren++] = child;
    return 0;
}

int jj_xml_add_text(jj_xml_node *el, const char *text, size_t len)
{
    if (el->text_len + len + 1 > el->cap_text) {
        size_t cap = el->cap_text;
        while (cap < el->text_len + len + 1)
            cap = cap * 2 + 16;
        char *t = realloc(el->text, cap);
        if (!t)
            return JJ_ENOMEM;
        el->text = t;
        el->cap_text = cap;
    }
    memcpy(el->text + el->text_len, text, len);
    el->text_len += len;
    el->text[el->text_len] = '\0';
    return 0;
}

/* --- parsing ------------------------------------------------------------- */

typedef struct parse_ctx {
    XML_Parser p;
    jj_xml_node *root;
    jj_xml_node **stack;
    int depth, max_depth;
    size_t elements, max_elements;
    int failed;              /* our own error code, 0 if none */
    char why[160];           /* our own error message */
    long fail_line, fail_col;
} parse_ctx;

static void fail(parse_ctx *c, int code, const char *why)
{
    if (c->failed)
        return;
    c->failed = code;
    snprintf(c->why, sizeof c->why, "%s", why);
    c->fail_line = (long)XML_GetCurrentLineNumber(c->p);
    c->fail_col = (long)XML_GetCurrentColumnNumber(c->p) + 1;
    XML_StopParser(c->p, XML_FALSE);
}

static void XMLCALL on_start(void *ud, const XML_Char *qname, const XML_Char **atts)
{
    parse_ctx *c = ud;
    if (c->failed)
        return;
    if (c->depth >= c->max_depth) {
        fail(c, JJ_EINVAL, "elements nested too deeply");
        return;
    }
    if (++c->elements > c->max_elements) {
        fail(c, JJ_EINVAL, "too many elements");
        return;
    }
    jj_xml_node *n = new_node();
    if (!n || split_name(qname, &n->name, &n->ns) != 0) {
        jj_xml_free(n);
        fail(c, JJ_ENOMEM, "out of memory");
        return;
    }
    n->line = (int)XML_GetCurrentLineNumber(c->p);
    n->column = (int)XML_GetCurrentColumnNumber(c->p) + 1;
    if (c->depth == 0) {
        c->root = n;
    } else if (jj_xml_add_child(c->stack[c->depth - 1], n) != 0) {
        fail(c, JJ_ENOMEM, "out of memory");
        return;
    }
    c->stack[c->depth++] = n;
    for (size_t i = 0; atts[i]; i += 2) {
        char *name = NULL, *ns = NULL;
        if (split_name(atts[i], &name, &ns) != 0 ||
            jj_xml_add_attr(n, name, ns, atts[i + 1]) != 0) {
            free(name);
            free(ns);
            fail(c, JJ_ENOMEM, "out of memory");
            return;
        }
        free(name);
        free(ns);
    }
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
    (void)name;
    parse_ctx *c = ud;
    if (!c->failed && c->depth > 0)
        c->depth--;
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len)
{
    parse_ctx *c = ud;
    if (c->failed || c->depth == 0 || len <= 0)
        return;
    if (jj_xml_add_text(c->stack[c->depth - 1], s, (size_t)len) != 0)
        fail(c, JJ_ENOMEM, "out of memory");
}

static void XMLCALL on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
                               const XML_Char *pubid, int has_internal)
{
    (void)name, (void)sysid, (void)pubid, (void)has_internal;
    fail(ud, JJ_EINVAL, "a DOCTYPE is not allowed (no DTDs or entity declarations)");
}

static void XMLCALL on_entity_decl(void *ud, const XML_Char *name, int is_param,
                                   const XML_Char *value, int value_len, const XML_Char *base,
                                   const XML_Char *sysid, const XML_Char *pubid,
                                   const XML_Char *notation)
{
    (void)name, (void)is_param, (void)value, (void)value_len, (void)base, (void)sysid,
        (void)pubid, (void)notation;
    fail(ud, JJ_EINVAL, "entity declarations are not allowed");
}

int jj_xml_parse(const char *buf, size_t len, const char *source, const jj_xml_limits *limits,
                 jj_xml_node **out, jj_error *err)
{
    jj_error_clear(err);
    *out = NULL;
    size_t max_size = limits && limits->max_size ? limits->max_size : JJ_XML_DEFAULT_MAX_SIZE;
    int max_depth = limits && limits->max_depth > 0 ? limits->max_depth : JJ_XML_DEFAULT_MAX_DEPTH;
    size_t max_el = limits && limits->max_elements ? limits->max_elements
                                                    : JJ_XML_DEFAULT_MAX_ELEMENTS;
    if (len > max_size || len > INT_MAX) {
        jj_error_set(err, JJ_ERANGE, "XML document of %zu bytes is larger than the limit of %zu",
                     len, max_size);
        jj_error_at(err, source ? source : "xml", 0, 0);
        return JJ_ERANGE;
    }
    parse_ctx c;
    memset(&c, 0, sizeof c);
    c.max_depth = max_depth;
    c.max_elements = max_el;
    c.stack = calloc((size_t)max_depth, sizeof *c.stack);
    c.p = c.stack ? XML_ParserCreateNS("UTF-8", NS_SEP) : NULL;
    if (!c.p) {
        free(c.stack);
        return jj_error_set(err, JJ_ENOMEM, "XML parser: out of memory");
    }
    XML_SetUserData(c.p, &c);
    XML_SetElementHandler(c.p, on_start, on_end);
    XML_SetCharacterDataHandler(c.p, on_text);
    XML_SetStartDoctypeDeclHandler(c.p, on_doctype);
    XML_SetEntityDeclHandler(c.p, on_entity_decl);
    XML_SetParamEntityParsing(c.p, XML_PARAM_ENTITY_PARSING_NEVER);
    enum XML_Status st = XML_Parse(c.p, buf, (int)len, XML_TRUE);
    int rc = 0;
    if (c.failed) {
        rc = c.failed;
        jj_error_set(err, rc, "%s", c.why);
        jj_error_at(err, source ? source : "xml", (int)c.fail_line, (int)c.fail_col);
    } else if (st != XML_STATUS_OK || !c.root) {
        long line = (long)XML_GetCurrentLineNumber(c.p);
        long col = (long)XML_GetCurrentColumnNumber(c.p) + 1;
        enum XML_Error code = XML_GetErrorCode(c.p);
        const char *why = c.root || code != XML_ERROR_NONE ? XML_ErrorString(code)
                                                           : "no root element";
        rc = code == XML_ERROR_NO_MEMORY ? JJ_ENOMEM : JJ_EINVAL;
        jj_error_set_lib(err, rc, (long)code, "%s", why ? why : "malformed XML");
        jj_error_at(err, source ? source : "xml", (int)line, (int)col);
    }
    XML_ParserFree(c.p);
    free(c.stack);
    if (rc != 0) {
        jj_xml_free(c.root);
        return rc;
    }
    *out = c.root;
    return 0;
}

/* --- writing ------------------------------------------------------------- */

typedef struct buf {
    char *p;
    size_t len, cap;
    int oom;
} buf;

static void put(buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void puts_(buf *b, const char *s)
{
    put(b, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at s (XML 1.0 Char production), 0 if
 * invalid or not an XML character. */
static size_t xml_char_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80)
        return (c >= 0x20 || c == '\t' || c == '\n' || c == '\r') ? 1 : 0;
    size_t need;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < need)
        return 0;
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((need == 3 && cp < 0x800) || (need == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    if ((cp >= 0xD800 && cp <= 0xDFFF) || cp == 0xFFFE || cp == 0xFFFF)
        return 0;
    return need;
}

static int escape_into(buf *b, const char *s, size_t len, int attr)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t k = xml_char_len(u + i, len - i);
        if (k == 0)
            return -1;
        const char *rep = NULL;
        switch (u[i]) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = attr ? "&quot;" : NULL; break;
        case '\t': rep = attr ? "&#9;" : NULL; break;
        case '\n': rep = attr ? "&#10;" : NULL; break;
        case '\r': rep = "&#13;"; break;
        default: break;
        }
        if (rep)
            puts_(b, rep);
        else
            put(b, s + i, k);
        i += k;
    }
    return 0;
}

int jj_xml_escape(const char *s, size_t len, int attr, char **out, size_t *out_len,
                  jj_error *err)
{
    jj_error_clear(err);
    buf b = {0};
    put(&b, "", 0);
    if (escape_into(&b, s, len, attr) != 0) {
        free(b.p);
        return jj_error_set(err, JJ_EINVAL,
                            "XML cannot carry this text (invalid UTF-8 or a control character)");
    }
    if (b.oom) {
        free(b.p);
        return jj_error_set(err, JJ_ENOMEM, "XML escape: out of memory");
    }
    *out = b.p;
    if (out_len)
        *out_len = b.len;
    return 0;
}

/* An XML Name, restricted to ASCII NameChars plus any non-ASCII UTF-8
 * (names come from our own request shapes). No ':' in local names. */
static int valid_name(const char *s)
{
    if (!s || !*s)
        return 0;
    const unsigned char *u = (const unsigned char *)s;
    if (!(u[0] >= 0x80 || u[0] == '_' || ((u[0] | 0x20) >= 'a' && (u[0] | 0x20) <= 'z')))
        return 0;
    for (; *u; u++) {
        if (*u >= 0x80 || *u == '_' || *u == '-' || *u == '.' || (*u >= '0' && *u <= '9') ||
            ((*u | 0x20) >= 'a' && (*u | 0x20) <= 'z'))
            continue;
        return 0;
    }
    return 1;
}

typedef struct emit_ctx {
    buf b;
    jj_error *err;
    int rc;
} emit_ctx;

static int emit_fail(emit_ctx *e, const jj_xml_node *n, const char *what)
{
    if (!e->rc)
        e->rc = jj_error_set(e->err, JJ_EINVAL, "XML element <%s>: %s", n->name ? n->name : "?",
                             what);
    return e->rc;
}

static int emit_node(emit_ctx *e, const jj_xml_node *n, const char *parent_ns, int depth)
{
    if (depth > JJ_XML_DEFAULT_MAX_DEPTH)
        return emit_fail(e, n, "nested too deeply");
    if (!valid_name(n->name))
        return emit_fail(e, n, "not a valid element name");
    buf *b = &e->b;
    /* An element in the XML namespace (<xml:x>) keeps the predeclared
     * prefix: binding that namespace to the default (or any other prefix)
     * is an error, and the default namespace in scope stays the parent's. */
    int xml_elem = n->ns && strcmp(n->ns, XML_NS_URI) == 0;
    put(b, "<", 1);
    if (xml_elem)
        put(b, "xml:", 4);
    puts_(b, n->name);
    const char *ns = xml_elem ? (parent_ns ? parent_ns : "") : (n->ns ? n->ns : "");
    const char *pns = parent_ns ? parent_ns : "";
    if (strcmp(ns, pns) != 0) {
        puts_(b, " xmlns=\"");
        if (escape_into(b, ns, strlen(ns), 1) != 0)
            return emit_fail(e, n, "namespace URI XML cannot carry");
        put(b, "\"", 1);
    }
    int prefix = 0;
    for (size_t i = 0; i < n->nattrs; i++) {
        const jj_xml_attr *a = &n->attrs[i];
        if (!valid_name(a->name))
            return emit_fail(e, n, "not a valid attribute name");
        char pfx[32] = "";
        if (a->ns && strcmp(a->ns, XML_NS_URI) == 0) {
            strcpy(pfx, "xml"); /* bound by definition; declaring it is an error */
        } else if (a->ns && *a->ns) {
            snprintf(pfx, sizeof pfx, "ns%d", ++prefix);
            put(b, " xmlns:", 7);
            puts_(b, pfx);
            put(b, "=\"", 2);
            if (escape_into(b, a->ns, strlen(a->ns), 1) != 0)
                return emit_fail(e, n, "namespace URI XML cannot carry");
            put(b, "\"", 1);
        }
        put(b, " ", 1);
        if (*pfx) {
            puts_(b, pfx);
            put(b, ":", 1);
        }
        puts_(b, a->name);
        put(b, "=\"", 2);
        if (escape_into(b, a->value, strlen(a->value), 1) != 0)
            return emit_fail(e, n, "attribute value XML cannot carry");
        put(b, "\"", 1);
    }
    if (n->text_len == 0 && n->nchildren == 0) {
        put(b, "/>", 2);
        return 0;
    }
    put(b, ">", 1);
    if (n->text_len && escape_into(b, n->text, n->text_len, 0) != 0)
        return emit_fail(e, n, "text XML cannot carry (invalid UTF-8 or a control character)");
    for (size_t i = 0; i < n->nchildren; i++)
        if (emit_node(e, n->children[i], ns, depth + 1) != 0)
            return e->rc;
    put(b, "</", 2);
    if (xml_elem)
        put(b, "xml:", 4);
    puts_(b, n->name);
    put(b, ">", 1);
    return 0;
}

int jj_xml_emit(const jj_xml_node *root, int declaration, char **out, size_t *out_len,
                jj_error *err)
{
    jj_error_clear(err);
    emit_ctx e = {.err = err};
    put(&e.b, "", 0);
    if (declaration)
        puts_(&e.b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    if (emit_node(&e, root, NULL, 1) != 0) {
        free(e.b.p);
        return e.rc;
    }
    if (e.b.oom) {
        free(e.b.p);
        return jj_error_set(err, JJ_ENOMEM, "XML emit: out of memory");
    }
    *out = e.b.p;
    if (out_len)
        *out_len = e.b.len;
    return 0;
}
