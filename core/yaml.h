/* yaml.h: a small YAML document model over libyaml, with source positions.
 *
 * environments.yaml, .jenv files, agent.conf and the state documents are all
 * read into this one tree type, so every module reports problems as
 * "file:line:column" and every module writes YAML the same way.
 *
 * Scalars are resolved like Go's gopkg.in/yaml.v2 (YAML 1.1): plain `yes`,
 * `on`, `~`, `0755`, `0x1F`, `1_000`, `.inf` are typed, quoted and block
 * scalars are strings, explicit !!str !!int !!bool !!float !!null tags win.
 * Anchors and aliases are expanded into copies (bounded by a node limit),
 * `<<` merge keys are applied, duplicate keys are errors, and only the first
 * document of a stream is read.
 *
 * Ownership: a node owns its children. Every function returning a new node
 * gives it to the caller (free with jj_yaml_free). Nodes returned by the
 * accessors are borrowed from their parent.
 */
#ifndef JUJU_CORE_YAML_H
#define JUJU_CORE_YAML_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef enum jj_yaml_type {
    JJ_YAML_NULL,
    JJ_YAML_BOOL,
    JJ_YAML_INT,
    JJ_YAML_FLOAT,
    JJ_YAML_STRING,
    JJ_YAML_SEQ,
    JJ_YAML_MAP
} jj_yaml_type;

/* 1-based position of a node in its source; {0, 0} for built nodes. */
typedef struct jj_yaml_mark {
    int line;
    int column;
} jj_yaml_mark;

typedef struct jj_yaml_node jj_yaml_node;

/* Limits that keep hostile input (alias bombs, deep nesting) bounded. A zero
 * field means "use the default". */
typedef struct jj_yaml_limits {
    size_t max_nodes; /* nodes in the tree after alias expansion; default 100000 */
    int max_depth;    /* nesting of collections; default 256 */
} jj_yaml_limits;

#define JJ_YAML_DEFAULT_MAX_NODES 100000
#define JJ_YAML_DEFAULT_MAX_DEPTH 256

/* --- parsing and emitting ---------------------------------------------- */

/* Parses the first document of buf[0..len). source names the input in
 * errors (may be NULL); limits may be NULL. On success *out receives a new
 * tree the caller owns (a NULL-type node for an empty stream). On failure
 * returns JJ_EYAML_PARSE (or JJ_ENOMEM) with err->file = source and the
 * line/column of the problem. */
int jj_yaml_parse(const char *buf, size_t len, const char *source, const jj_yaml_limits *limits,
                  jj_yaml_node **out, jj_error *err);

/* Writes root as a block-style document (2-space indent, keys in stored
 * order, strings quoted when they would read back as another type,
 * multi-line strings as literal blocks). On success *out receives a
 * malloc'ed NUL-terminated text the caller frees, *out_len its length (may be
 * NULL). Fails with JJ_EYAML_EMIT (invalid UTF-8 in a string, nesting deeper
 * than JJ_YAML_DEFAULT_MAX_DEPTH) or JJ_ENOMEM. */
int jj_yaml_emit(const jj_yaml_node *root, char **out, size_t *out_len, jj_error *err);

/* --- construction (each returns a new node the caller owns, NULL when out
 * of memory) ----------------------------------------------------------- */

jj_yaml_node *jj_yaml_new_null(void);
jj_yaml_node *jj_yaml_new_bool(int value);
jj_yaml_node *jj_yaml_new_int(int64_t value);
jj_yaml_node *jj_yaml_new_float(double value);
jj_yaml_node *jj_yaml_new_string(const char *s);
jj_yaml_node *jj_yaml_new_stringn(const char *s, size_t len);
jj_yaml_node *jj_yaml_new_seq(void);
jj_yaml_node *jj_yaml_new_map(void);
/* A scalar resolved from plain (unquoted) text exactly as the parser would:
 * jj_yaml_new_plain("yes") is a bool, ("0x10") an int 16, ("14.04") a float
 * whose text stays "14.04". */
jj_yaml_node *jj_yaml_new_plain(const char *text, size_t len);
/* Deep copy, marks included. */
jj_yaml_node *jj_yaml_copy(const jj_yaml_node *node);

/* Frees node and all its children. NULL is fine. */
void jj_yaml_free(jj_yaml_node *node);

/* Appends item to seq. Takes ownership of item in all cases (it is freed on
 * failure). Returns 0, JJ_EINVAL (seq not a sequence) or JJ_ENOMEM. */
int jj_yaml_seq_append(jj_yaml_node *seq, jj_yaml_node *item, jj_error *err);

/* Sets map[key] = value: replaces the value of an existing key equal to key
 * in place (keeping its position in the order), else appends. Takes
 * ownership of value in all cases. */
int jj_yaml_map_set(jj_yaml_node *map, const char *key, jj_yaml_node *value, jj_error *err);

/* Like jj_yaml_map_set with a scalar key node (int, bool... keys). Takes
 * ownership of key and value in all cases; JJ_EINVAL if key is a collection. */
int jj_yaml_map_put(jj_yaml_node *map, jj_yaml_node *key, jj_yaml_node *value, jj_error *err);

/* Removes the pair whose scalar key text is key; returns 1 if one was
 * removed, 0 if none. */
int jj_yaml_map_delete(jj_yaml_node *map, const char *key);

/* Records a source position on a node (for trees built from other sources). */
void jj_yaml_set_mark(jj_yaml_node *node, int line, int column);

/* --- reading (all accept NULL and then return the neutral value) --------- */

jj_yaml_type jj_yaml_type_of(const jj_yaml_node *node);
const char *jj_yaml_type_name(jj_yaml_type type); /* "null", "bool", "int", "float", "string", "seq", "map" */
jj_yaml_mark jj_yaml_mark_of(const jj_yaml_node *node);
int jj_yaml_bool(const jj_yaml_node *node);
int64_t jj_yaml_int(const jj_yaml_node *node);
double jj_yaml_float(const jj_yaml_node *node);
/* Text of a scalar: the string value, or for other scalars the source text
 * as written ("14.04", "yes", "0x10") or a canonical form for built nodes.
 * NULL for collections. *len (optional) gets the length (strings may hold
 * NUL bytes). */
const char *jj_yaml_text(const jj_yaml_node *node, size_t *len);
/* Items of a sequence, pairs of a mapping, 0 for scalars. */
size_t jj_yaml_count(const jj_yaml_node *node);
jj_yaml_node *jj_yaml_seq_at(const jj_yaml_node *seq, size_t i);
jj_yaml_node *jj_yaml_map_key_at(const jj_yaml_node *map, size_t i);
jj_yaml_node *jj_yaml_map_value_at(const jj_yaml_node *map, size_t i);
/* The value whose scalar key has text key, or NULL. */
jj_yaml_node *jj_yaml_map_get(const jj_yaml_node *map, const char *key);
/* map[key] when it is a string, else NULL. */
const char *jj_yaml_map_get_string(const jj_yaml_node *map, const char *key);

/* Deep equality of type and value (mappings compared as unordered sets of
 * pairs; marks and source text are ignored). */
int jj_yaml_equal(const jj_yaml_node *a, const jj_yaml_node *b);

#endif

/* libyaml's header is also called yaml.h, and core/ is on the include path
 * ahead of it: core/yaml.c includes <yaml.h> with JJ_YAML_IMPLEMENTATION
 * defined and lands here, so pass it on to libyaml's. Nobody else sees it. */
#if defined(JJ_YAML_IMPLEMENTATION) && !defined(YAML_H)
#include_next <yaml.h>
#endif
