/* yaml.h: YAML text <-> the document model (core/doc.h), over libyaml.
 *
 * Scalars are resolved like Go's gopkg.in/yaml.v2 (YAML 1.1): plain `yes`,
 * `on`, `~`, `0755`, `0x1F`, `1_000`, `.inf` are typed, quoted and block
 * scalars are strings, explicit !!str !!int !!bool !!float !!null tags win.
 * Anchors and aliases are expanded into copies (bounded by a node limit),
 * `<<` merge keys are applied, duplicate keys are errors, and only the first
 * document of a stream is read.
 *
 * Ownership: as in doc.h (the parser gives the caller a new tree).
 */
#ifndef JUJU_CORE_YAML_H
#define JUJU_CORE_YAML_H

#include <stddef.h>
#include <stdint.h>

#include "doc.h"
#include "error.h"

/* Limits that keep hostile input (alias bombs, deep nesting) bounded. A zero
 * field means "use the default". */
typedef struct jj_yaml_limits {
    size_t max_nodes; /* nodes in the tree after alias expansion; default 100000 */
    int max_depth;    /* nesting of collections; default 256 */
} jj_yaml_limits;

#define JJ_YAML_DEFAULT_MAX_NODES 100000

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

#endif

/* libyaml's header is also called yaml.h, and core/ is on the include path
 * ahead of it: core/yaml.c includes <yaml.h> with JJ_YAML_IMPLEMENTATION
 * defined and lands here, so pass it on to libyaml's. Nobody else sees it. */
#if defined(JJ_YAML_IMPLEMENTATION) && !defined(YAML_H)
#include_next <yaml.h>
#endif
