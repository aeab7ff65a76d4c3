/* fuzz_payload.c: libFuzzer target for the bootstrap-state params file.
 *
 * `jujud bootstrap-state --params FILE` reads a YAML mapping written by the
 * client (lua/juju/cloudinit.lua bootstrap_params): env-config (mapping),
 * instance-id (string), optional hardware and constraints ("k=v ..."
 * strings), state-store ("mongodb" or "sqlite"). The file travels through
 * cloud-init to the machine, so the agent must treat it as untrusted input.
 *
 * Any input must parse or fail cleanly; a parsed tree is walked through
 * every accessor (types, counts, marks, key lookups must agree), checked
 * against the params shape the way the agent reads it, and deep-copied: the
 * copy equals the original, and stops being equal once a key is removed.
 *
 *   CC=clang cmake -S . -B build-fuzz -DJUJU_FUZZ=ON && cmake --build build-fuzz --target fuzz_payload
 *   build-fuzz/tests/fuzz/fuzz_payload tests/fuzz/corpus/payload
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "yaml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_payload: %s\n", what);
    abort();
}

static int is_scalar(jj_yaml_type t)
{
    return t != JJ_YAML_SEQ && t != JJ_YAML_MAP;
}

/* Visits node and its descendants; returns how many nodes there are. */
static size_t walk(const jj_yaml_node *node, int depth)
{
    if (depth > 64)
        fail("tree deeper than the parse limit");
    jj_yaml_type t = jj_yaml_type_of(node);
    const char *type_name = jj_yaml_type_name(t);
    if (!type_name || !*type_name)
        fail("type without a name");
    jj_yaml_mark mark = jj_yaml_mark_of(node);
    if (mark.line < 1 || mark.column < 1)
        fail("parsed node without a source position");
    size_t n = jj_yaml_count(node);
    if (is_scalar(t)) {
        size_t len = 0;
        const char *text = jj_yaml_text(node, &len);
        if (!text)
            fail("scalar without text");
        if (t != JJ_YAML_STRING && strlen(text) != len)
            fail("non-string scalar text with an embedded NUL");
        if (n != 0)
            fail("scalar with a count");
        return 1;
    }
    if (jj_yaml_text(node, NULL) != NULL)
        fail("collection with text");
    size_t total = 1;
    for (size_t i = 0; i < n; i++) {
        if (t == JJ_YAML_SEQ) {
            const jj_yaml_node *item = jj_yaml_seq_at(node, i);
            if (!item)
                fail("missing sequence item");
            total += walk(item, depth + 1);
            continue;
        }
        const jj_yaml_node *key = jj_yaml_map_key_at(node, i);
        const jj_yaml_node *value = jj_yaml_map_value_at(node, i);
        if (!key || !value)
            fail("missing mapping pair");
        if (!is_scalar(jj_yaml_type_of(key)))
            fail("collection as a mapping key");
        const char *k = jj_yaml_text(key, NULL);
        if (k && !jj_yaml_map_get(node, k))
            fail("map_get misses a key of its own mapping");
        total += walk(key, depth + 1) + walk(value, depth + 1);
    }
    if (jj_yaml_seq_at(node, n) || jj_yaml_map_key_at(node, n) || jj_yaml_map_value_at(node, n))
        fail("accessor past the end");
    return total;
}

/* "k=v k2=v2" as the agent splits hardware and constraints: every word
 * needs a key. Returns 1 when well formed. */
static int key_value_words(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && s[i] == ' ')
            i++;
        size_t start = i;
        int has_eq = 0;
        while (i < len && s[i] != ' ') {
            if (s[i] == '=' && i > start)
                has_eq = 1;
            i++;
        }
        if (i > start && !has_eq)
            return 0;
    }
    return 1;
}

/* Reads the params the way bootstrap-state does; returns 1 if acceptable. */
static int read_params(const jj_yaml_node *doc)
{
    if (jj_yaml_type_of(doc) != JJ_YAML_MAP)
        return 0;
    const jj_yaml_node *env = jj_yaml_map_get(doc, "env-config");
    if (jj_yaml_type_of(env) != JJ_YAML_MAP)
        return 0;
    const char *id = jj_yaml_map_get_string(doc, "instance-id");
    if (!id || !*id)
        return 0;
    if (jj_yaml_map_get_string(env, "name") == NULL || jj_yaml_map_get_string(env, "type") == NULL)
        return 0;
    const char *store = jj_yaml_map_get_string(doc, "state-store");
    if (store && strcmp(store, "mongodb") != 0 && strcmp(store, "sqlite") != 0)
        return 0;
    const char *optional[] = {"hardware", "constraints"};
    for (size_t i = 0; i < 2; i++) {
        const jj_yaml_node *v = jj_yaml_map_get(doc, optional[i]);
        if (!v)
            continue;
        size_t len = 0;
        const char *text = jj_yaml_type_of(v) == JJ_YAML_STRING ? jj_yaml_text(v, &len) : NULL;
        if (!text || !key_value_words(text, len))
            return 0;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    jj_yaml_limits limits = {.max_nodes = 20000, .max_depth = 64};
    jj_yaml_node *doc = NULL;
    jj_error err;
    int rc = jj_yaml_parse((const char *)data, size, "bootstrap-params", &limits, &doc, &err);
    if (rc != 0) {
        if (rc != JJ_EYAML_PARSE && rc != JJ_ENOMEM)
            fail("parse failed with an unexpected code");
        if (rc == JJ_EYAML_PARSE && err.message[0] == '\0')
            fail("parse error without a message");
        return 0;
    }
    if (jj_yaml_type_of(doc) != JJ_YAML_NULL || jj_yaml_mark_of(doc).line != 0) {
        size_t nodes = walk(doc, 0);
        if (nodes > limits.max_nodes)
            fail("more nodes than the limit");
    }
    jj_yaml_node *copy = jj_yaml_copy(doc);
    if (!copy)
        return jj_yaml_free(doc), 0;
    if (!jj_yaml_equal(doc, copy))
        fail("a deep copy differs from its original");
    if (read_params(doc)) {
        jj_yaml_node *env = jj_yaml_map_get(copy, "env-config");
        if (jj_yaml_map_delete(env, "name") != 1)
            fail("cannot delete a key that map_get_string found");
        if (jj_yaml_equal(doc, copy))
            fail("removing a key leaves the copy equal");
    }
    jj_yaml_free(copy);
    jj_yaml_free(doc);
    return 0;
}
