/* xml.h: XML documents for the cloud APIs (EC2, S3, Azure), over expat.
 *
 * A document is read into a small element tree: each element has its local
 * name, its namespace URI (NULL when none), its attributes (local name,
 * namespace URI, value, in document order), its child elements in order,
 * and its text: the concatenated character data directly inside it (CDATA
 * included, entities and character references decoded). Mixed content keeps
 * the text but not its position between child elements; the cloud APIs
 * never rely on it. Comments and processing instructions are dropped.
 *
 * Hostile input is bounded: a DOCTYPE is refused (no entity expansion, no
 * external fetches), the input size, the element nesting and the number of
 * elements are limited. Errors carry the 1-based line and column.
 *
 * The writer turns a tree back into text for request bodies: elements in
 * the default namespace of their parent need no declaration, a different
 * namespace is declared with xmlns="..." on the element, namespaced
 * attributes get generated prefixes (ns1, ns2 ...). Text and attribute
 * values are escaped (& < > " and, in attributes, tab/newline/CR as
 * character references); characters XML 1.0 cannot carry (control
 * characters, invalid UTF-8) are refused.
 *
 * Ownership: a node owns its children, attributes and strings. Functions
 * returning a new node give it to the caller (jj_xml_free).
 */
#ifndef JUJU_CORE_XML_H
#define JUJU_CORE_XML_H

#include <stddef.h>

#include "error.h"

#define JJ_XML_DEFAULT_MAX_SIZE (64u * 1024u * 1024u)
#define JJ_XML_DEFAULT_MAX_DEPTH 256
#define JJ_XML_DEFAULT_MAX_ELEMENTS 1000000u

/* Zero fields mean the defaults above. */
typedef struct jj_xml_limits {
    size_t max_size;     /* input bytes */
    int max_depth;       /* element nesting (the root is depth 1) */
    size_t max_elements; /* elements in the document */
} jj_xml_limits;

typedef struct jj_xml_attr {
    char *name;  /* local name */
    char *ns;    /* namespace URI, NULL when none */
    char *value;
} jj_xml_attr;

typedef struct jj_xml_node jj_xml_node;
struct jj_xml_node {
    char *name; /* local name */
    char *ns;   /* namespace URI, NULL when none */
    jj_xml_attr *attrs;
    size_t nattrs;
    jj_xml_node **children;
    size_t nchildren, cap_children;
    char *text; /* NUL-terminated; may contain no NUL (XML cannot) */
    size_t text_len, cap_text;
    int line, column; /* 1-based start of the element; 0 for built nodes */
};

/* Parses buf[0..len) as one XML document. source names the input in errors
 * (may be NULL); limits may be NULL. On success *out receives the root
 * element (the caller owns it). On failure returns JJ_EINVAL (malformed,
 * a DOCTYPE, too deep, too many elements), JJ_ERANGE (input larger than
 * max_size) or JJ_ENOMEM, with err->file = source ("xml" when NULL) and
 * the line/column; the message itself carries no position. */
int jj_xml_parse(const char *buf, size_t len, const char *source, const jj_xml_limits *limits,
                 jj_xml_node **out, jj_error *err);

/* Frees a node and everything under it. NULL is fine. */
void jj_xml_free(jj_xml_node *node);

/* --- building (for the writer) ------------------------------------------ */

/* A new element (name required, ns may be NULL); NULL when out of memory
 * or name is NULL/empty. */
jj_xml_node *jj_xml_new_element(const char *name, const char *ns);

/* Adds an attribute (copies the strings); ns may be NULL. 0 or JJ_ENOMEM. */
int jj_xml_add_attr(jj_xml_node *el, const char *name, const char *ns, const char *value);

/* Appends child to el; el takes ownership of child (also on failure: then
 * child is freed). 0 or JJ_ENOMEM. */
int jj_xml_add_child(jj_xml_node *el, jj_xml_node *child);

/* Appends text[0..len) to el's text. 0 or JJ_ENOMEM. */
int jj_xml_add_text(jj_xml_node *el, const char *text, size_t len);

/* Writes root as a document. With declaration non-zero it starts with
 * <?xml version="1.0" encoding="UTF-8"?>. Each element's text is written
 * before its children. Empty elements are written <a/>. On success *out
 * receives a malloc'ed NUL-terminated text the caller frees, *out_len (may
 * be NULL) its length. JJ_EINVAL names the element of a bad name or a
 * value XML cannot carry; JJ_ENOMEM. */
int jj_xml_emit(const jj_xml_node *root, int declaration, char **out, size_t *out_len,
                jj_error *err);

/* Escapes s[0..len) for text content (attr 0) or a double-quoted attribute
 * value (attr non-zero). *out receives a malloc'ed NUL-terminated string.
 * JJ_EINVAL for characters XML 1.0 cannot carry, JJ_ENOMEM. */
int jj_xml_escape(const char *s, size_t len, int attr, char **out, size_t *out_len,
                  jj_error *err);

#endif
