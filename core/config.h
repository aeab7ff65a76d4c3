/* config.h: the environment configuration schema engine.
 *
 * Which attributes an environment has, their types, defaults and flags are
 * data (the core table of bootstrap.md section 3.2 and each provider's
 * additions, written in Lua); this engine applies such a schema to a YAML
 * mapping of attributes: fills defaults or fill-in values, coerces types the
 * way Juju 1.x's schema package did, checks enumerations, emptiness and
 * required fields, and reports problems with the environment name, the key
 * and the position of the offending value in its file.
 *
 * Ownership: a schema owns copies of everything given to it. Coercion
 * returns a new mapping and new warning strings, both the caller's.
 */
#ifndef JUJU_CORE_CONFIG_H
#define JUJU_CORE_CONFIG_H

#include <stddef.h>

#include "error.h"
#include "yaml.h"

typedef enum jj_config_type {
    JJ_CONFIG_STRING, /* any scalar, kept as its text */
    JJ_CONFIG_BOOL,   /* bool, or the strings "true" / "false" */
    JJ_CONFIG_INT,    /* int, integral float, or numeric string */
    JJ_CONFIG_ATTRS,  /* string map: mapping, "k=v k2=v2", or sequence of "k=v" */
    JJ_CONFIG_LIST    /* sequence of strings, or "a,b,c" */
} jj_config_type;

enum {
    JJ_CONFIG_REQUIRED = 1u << 0,
    JJ_CONFIG_SECRET = 1u << 1,
    JJ_CONFIG_IMMUTABLE = 1u << 2,
    JJ_CONFIG_ALLOW_EMPTY = 1u << 3
};

/* One field. Given to jj_config_schema_add it is only read (the schema
 * copies it); returned by the schema it is borrowed from the schema. */
typedef struct jj_config_field {
    const char *name;
    jj_config_type type;
    const char *const *values;          /* allowed values, NULL-terminated; NULL: any */
    const jj_yaml_node *default_value;  /* used WITH_DEFAULTS when absent; may be NULL */
    const jj_yaml_node *fillin;         /* used NO_DEFAULTS when absent; may be NULL */
    unsigned flags;                     /* JJ_CONFIG_REQUIRED | ... */
    const char *description;            /* may be NULL */
    const char *group;                  /* may be NULL */
} jj_config_field;

typedef struct jj_config_schema jj_config_schema;

typedef enum jj_config_mode {
    JJ_CONFIG_WITH_DEFAULTS, /* parsing an environments.yaml entry */
    JJ_CONFIG_NO_DEFAULTS    /* a .jenv bootstrap-config, the node's --env-config */
} jj_config_mode;

typedef struct jj_config_opts {
    jj_config_mode mode;
    const char *env;  /* environment name for messages; may be NULL */
    const char *file; /* source the attribute marks refer to; may be NULL */
    int warn_unknown; /* report keys the schema does not know */
} jj_config_opts;

typedef struct jj_config_warnings {
    char **items; /* malloc'ed strings */
    size_t count;
} jj_config_warnings;

/* A new empty schema the caller owns (free with jj_config_schema_free), or
 * NULL when out of memory. */
jj_config_schema *jj_config_schema_new(void);
void jj_config_schema_free(jj_config_schema *schema);

/* Adds a copy of field. Its default and fill-in are coerced to the field's
 * type here, so a bad default is caught when the schema is made. JJ_EINVAL
 * for a nameless, unknown-typed or already defined field or a default that
 * does not fit. */
int jj_config_schema_add(jj_config_schema *schema, const jj_config_field *field, jj_error *err);

/* Fields sorted by name; the pointers are borrowed from the schema. */
size_t jj_config_schema_count(const jj_config_schema *schema);
const jj_config_field *jj_config_schema_at(const jj_config_schema *schema, size_t i);
const jj_config_field *jj_config_schema_find(const jj_config_schema *schema, const char *name);

/* *out receives a new schema (the caller's) holding the fields of a and b;
 * a field of b replaces a's field of the same name and type. A name defined
 * in both with different types is JJ_ECONFIG. */
int jj_config_schema_merge(const jj_config_schema *a, const jj_config_schema *b,
                           jj_config_schema **out, jj_error *err);

/* Names of the secret fields, sorted: fills names[0..cap) with borrowed
 * pointers and returns how many there are in all. */
size_t jj_config_schema_secrets(const jj_config_schema *schema, const char **names, size_t cap);

const char *jj_config_type_name(jj_config_type type); /* "string", "bool", "int", "attrs", "list" */

/* Applies the schema to attrs (a mapping; null counts as empty). On success
 * *out receives a new mapping the caller owns: present keys in input order
 * (unknown keys copied unchanged), then defaulted fields by name. When
 * warnings is not NULL it receives new strings the caller frees with
 * jj_config_warnings_free. On failure JJ_ECONFIG with
 * `environment "<env>": <key>: <problem>` and err->file/line/column from
 * the value's mark (the mapping's for missing fields). */
int jj_config_coerce(const jj_config_schema *schema, const jj_yaml_node *attrs,
                     const jj_config_opts *opts, jj_yaml_node **out, jj_config_warnings *warnings,
                     jj_error *err);

void jj_config_warnings_free(jj_config_warnings *warnings);

/* For every immutable field present in old_attrs: JJ_ECONFIG
 * `cannot change <key> from <old> to <new>` if new_attrs lacks it or holds
 * a different value. Absent in old and present in new is allowed. */
int jj_config_check_change(const jj_config_schema *schema, const jj_yaml_node *old_attrs,
                           const jj_yaml_node *new_attrs, jj_error *err);

#endif
