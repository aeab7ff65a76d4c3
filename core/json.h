/* json.h: strict RFC 8259 JSON over the yaml document model.
 *
 * Simplestreams metadata, downloaded-tools.txt and the cloud APIs speak
 * JSON; reading it into the same jj_yaml_node tree as YAML lets every module
 * walk one tree type and report "file:line:column".
 *
 * Parsing is strict: no comments, no trailing commas, no BOM, no leading
 * zeros; strings must be valid UTF-8 without raw control characters, \u
 * escapes are decoded (surrogate pairs joined, a lone surrogate is an
 * error). Integers that fit in int64 stay JJ_YAML_INT, other numbers become
 * JJ_YAML_FLOAT (finite only). Duplicate object keys: the last value wins at
 * the position of the first occurrence, as Go's encoding/json keeps it.
 * Nesting deeper than JJ_JSON_MAX_DEPTH is refused, so memory and recursion
 * are bounded by the input size.
 *
 * Emitting follows Go's json.Marshal / json.MarshalIndent(v, "", indent)
 * byte for byte (juju's metadata files are compared byte-exact): keys in
 * stored order, Go's string escaping, floats in Go's shortest form.
 */
#ifndef JUJU_CORE_JSON_H
#define JUJU_CORE_JSON_H

#include <stddef.h>

#include "error.h"
#include "doc.h"

#define JJ_JSON_MAX_DEPTH 256

/* Parses one JSON value from buf[0..len) (surrounding whitespace allowed).
 * source names the input in errors (may be NULL). On success *out receives
 * a new tree the caller owns (free with jj_yaml_free); nodes carry 1-based
 * line/column marks (columns count characters). On failure returns
 * JJ_EINVAL with err->file = source and the line/column of the offending
 * character, and a Go-style message ("invalid character 'x' looking for
 * beginning of value", "unexpected end of JSON input"), or JJ_ENOMEM. */
int jj_json_parse(const char *buf, size_t len, const char *source, jj_yaml_node **out,
                  jj_error *err);

/* Writes node as JSON: compact when indent is 0, else pretty with indent
 * spaces per level (MarshalIndent with prefix ""; no trailing newline).
 * Strings are escaped as Go does (\" \\ \n \r \t, \u00XX for other control
 * characters, \u003c \u003e \u0026 for < > &, \u2028 \u2029; invalid UTF-8
 * becomes \ufffd); mapping keys that are not strings are written as their
 * scalar text. On success *out receives a malloc'ed NUL-terminated text the
 * caller frees, *out_len (may be NULL) its length. Fails with JJ_EINVAL (NaN
 * or infinity, a collection as a key, indent outside 0..16, nesting deeper
 * than JJ_JSON_MAX_DEPTH) or JJ_ENOMEM. */
int jj_json_emit(const jj_yaml_node *node, int indent, char **out, size_t *out_len,
                 jj_error *err);

#endif
