/* doc.h: the document model shared by YAML and JSON: scalars, sequences
 * and mappings with source positions.
 *
 * environments.yaml, .jenv files, agent.conf, simplestreams metadata and
 * the state documents are all read into this one tree type (by core/yaml
 * and core/json), so every module walks one tree and reports problems as
 * "file:line:column".
 *
 * Scalars are typed like Go's gopkg.in/yaml.v2 (YAML 1.1) types them:
 * jj_yaml_new_plain resolves plain text (`yes`, `~`, `0755`, `0x1F`,
 * `1_000`, `.inf`) into a typed scalar that keeps its text as written.
 *
 * Mappings keep their keys in insertion order and find keys in constant
 * time (a hash index, built by the first lookup once a mapping has more
 * than a few keys and kept up to date by the lookups after), so building
 * or reading a mapping of n keys is linear in n, and a mapping that is
 * built and then only walked (by an emitter) never pays for an index.
 * Because lookups update that cache, one tree is used by one thread at a
 * time, reads included.
 *
 * Ownership: a node owns its children. Every function returning a new node
 * gives it to the caller (free with jj_yaml_free). Nodes returned by the
 * accessors are borrowed from their parent.
 */
#ifndef JUJU_CORE_DOC_H
#define JUJU_CORE_DOC_H

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

/* Nesting bound shared by the parsers, the emitters and the bindings. */
#define JJ_YAML_DEFAULT_MAX_DEPTH 256

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
/* The type jj_yaml_new_plain would give text, without building a node. */
jj_yaml_type jj_yaml_resolve_plain(const char *text, size_t len);
/* Deep copy, marks included. */
jj_yaml_node *jj_yaml_copy(const jj_yaml_node *node);

/* Frees node and all its children. NULL is fine. */
void jj_yaml_free(jj_yaml_node *node);

/* Makes room for `count` items of a sequence or pairs of a mapping (and a
 * mapping's key index for them), so that filling it to that size allocates
 * nothing more. Returns 0, JJ_EINVAL (not a collection) or JJ_ENOMEM (the
 * node is unchanged and still usable). */
int jj_yaml_reserve(jj_yaml_node *node, size_t count, jj_error *err);

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

/* Appends the pair key: value when no equal key is present (parsers that
 * refuse duplicates). Takes ownership of key and value in all cases.
 * Returns 0, JJ_EEXIST (an equal key is present; nothing added), JJ_EINVAL
 * (not a mapping, or a collection as key) or JJ_ENOMEM. */
int jj_yaml_map_add(jj_yaml_node *map, jj_yaml_node *key, jj_yaml_node *value, jj_error *err);

/* Appends the pair key: value without looking for an equal key, for
 * builders whose keys are distinct by construction (the keys of a Lua
 * table): the caller's promise (with a repeated key, lookups find the
 * first). Takes ownership of key and value in all cases. Returns 0,
 * JJ_EINVAL (not a mapping, or a collection as key) or JJ_ENOMEM. */
int jj_yaml_map_append(jj_yaml_node *map, jj_yaml_node *key, jj_yaml_node *value, jj_error *err);

/* Position of the key equal to the scalar key (same type and value, as
 * map_put compares), or -1. */
long jj_yaml_map_find(const jj_yaml_node *map, const jj_yaml_node *key);

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


/* Turns an int scalar into a float of the same value, keeping its text (a
 * YAML !!float tag on "1"). Returns 0, or JJ_EINVAL for other nodes. */
int jj_yaml_to_float(jj_yaml_node *node);

/* Writes the text jj_yaml_new_float gives value (shortest round-trip form
 * that reads back as a float: "1.0", ".inf", ".nan") into buf. */
void jj_yaml_format_float(double value, char *buf, size_t size);

#endif
