/* tree.h: Lua values <-> core/doc trees, shared by juju.yaml, juju.json,
 * juju.mongo and juju.config (compiled into each of those modules; no
 * state of its own: everything per Lua state lives in that state's
 * registry).
 *
 * The Lua shape of a document is one for all four modules:
 *   - mappings are tables; sequences are tables carrying the metatable
 *     JJ_TREE_ARRAY_MT (so an empty list stays a list), and a non-empty
 *     table whose keys are exactly 1..n is a sequence too;
 *   - null is juju.yaml's light userdata `yaml.null` (so `key:` shows in a
 *     table), kept in the registry under JJ_TREE_NULL_KEY;
 *   - a table's key order comes from its metatable's __yaml_order array
 *     (juju.yaml.ordered); the other keys follow in a fixed order.
 *
 * C trees under construction must be reachable from a Lua userdata (a
 * jj_tree_scratch slot) before they are filled: any Lua call may raise
 * (out of memory), and the scratch's __gc then frees the partial tree.
 */
#ifndef JUJU_BINDINGS_TREE_H
#define JUJU_BINDINGS_TREE_H

#include <lauxlib.h>
#include <lua.h>

#include "doc.h"
#include "error.h"

#define JJ_TREE_ARRAY_MT "juju.yaml.array"
#define JJ_TREE_ORDER_FIELD "__yaml_order"
#define JJ_TREE_NULL_KEY "juju.null"

/* Each module has its own copy of these functions (RTLD_LOCAL modules). */
#define JJ_TREE_API __attribute__((visibility("hidden")))

/* --- the shared values ----------------------------------------------------- */

/* For every module but juju.yaml: loads juju.yaml (which owns null and the
 * array metatable) so both exist in this state. May raise. */
JJ_TREE_API void jj_tree_require_yaml(lua_State *L);
JJ_TREE_API void jj_tree_push_null(lua_State *L);
JJ_TREE_API int jj_tree_is_null(lua_State *L, int idx);
/* Whether the table at idx carries the array metatable. */
JJ_TREE_API int jj_tree_is_marked_array(lua_State *L, int idx);
/* Whether the table at idx is marked, or non-empty with keys exactly 1..n. */
JJ_TREE_API int jj_tree_is_sequence(lua_State *L, int idx);

/* --- scratch: C trees owned by a Lua userdata ------------------------------- */

#define JJ_TREE_SCRATCH_SLOTS 4

typedef struct jj_tree_scratch {
    jj_yaml_node *node[JJ_TREE_SCRATCH_SLOTS];
    char *text; /* emitted text (malloc'ed) */
} jj_tree_scratch;

/* Pushes an empty scratch whose __gc frees its trees and text. May raise. */
JJ_TREE_API jj_tree_scratch *jj_tree_push_scratch(lua_State *L);
/* Frees everything the scratch holds now (it stays usable). */
JJ_TREE_API void jj_tree_scratch_clear(jj_tree_scratch *s);

/* --- tree -> Lua -------------------------------------------------------------- */

typedef struct jj_tree_decoding {
    int text_keys;      /* keys become their text (JSON, BSON) instead of typed values */
    int marks;          /* stack index of a table to fill with positions, or 0:
                         * marks[t] = {__self = {line=, column=},
                         *             [key] = {line=, column= [, text=]}} */
    const char *source; /* names the input in errors */
    int code;           /* error code for keys that collide in Lua (1 and 1.0) */
} jj_tree_decoding;

/* Pushes the Lua value of n. Returns 0, or how->code with err set (the
 * stack is then left as it was, plus garbage the caller drops with the
 * rest of its frame). May raise (memory, nesting beyond the C stack). */
JJ_TREE_API int jj_tree_push(lua_State *L, const jj_yaml_node *n, const jj_tree_decoding *how,
                             jj_error *err);

/* --- Lua -> tree -------------------------------------------------------------- */

/* Kinds of Lua keys a mapping may have. */
enum {
    JJ_TREE_KEY_STRING = 1,
    JJ_TREE_KEY_INTEGER = 2,
    JJ_TREE_KEY_FLOAT = 4,
    JJ_TREE_KEY_BOOLEAN = 8,
    JJ_TREE_KEY_NULL = 16,
};

typedef struct jj_tree_encoding {
    unsigned keys;     /* JJ_TREE_KEY_* kinds accepted as mapping keys */
    int text_keys;     /* keys become strings (integers in decimal), ordered by their
                        * bytes; two keys with one text are an error. Otherwise keys
                        * keep their type, ordered numbers, strings, booleans, null. */
    int id_first;      /* with text_keys: "_id" before the other keys (BSON) */
    int no_nul_keys;   /* string keys may not hold NUL bytes (BSON) */
    int no_holes;      /* nil inside a sequence is an error (else it is null) */
    int max_depth;     /* tables nested deeper are an error */
    int marks;         /* stack index of a yaml.decode marks table or 0: positions
                        * are copied to the nodes, and numbers and booleans keep
                        * their source text when unchanged (14.10 stays "14.10") */
    int code;          /* error code of every failure but memory */
    const char *what;  /* prefixes messages ("cmd: ..."), or NULL */
    const char *noun;  /* "mapping", "object", "document": "cannot encode an object key ..." */
} jj_tree_encoding;

/* Converts the value at idx into a new tree stored in *root, which must be
 * a scratch slot (see above). Keys are placed in __yaml_order first (first
 * mention wins, absent keys skipped), the rest in the order `how` says.
 * Returns 0, or how->code (JJ_ENOMEM for memory) with err set: a value of
 * a type the document cannot hold, a key of a kind not in how->keys, a
 * table that contains itself, nesting beyond how->max_depth. */
JJ_TREE_API int jj_tree_encode(lua_State *L, int idx, const jj_tree_encoding *how,
                               jj_yaml_node **root, jj_error *err);

#endif
