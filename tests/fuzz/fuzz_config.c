/* fuzz_config.c: libFuzzer target for the config schema engine (core/config.c).
 *
 * The input is one environment's attributes as YAML. They are coerced with a
 * schema built here from a few core fields of bootstrap.md 3.2 (one of each
 * type and flag), in both modes. Any input must coerce or fail cleanly with
 * JJ_ECONFIG and a message; whatever coerces must survive the .jenv round
 * trip: emitted as YAML, read back and coerced again WITHOUT defaults, it is
 * the same mapping, and comparing it with itself finds no immutable change.
 *
 *   CC=clang cmake -S . -B build-fuzz -DJUJU_FUZZ=ON && cmake --build build-fuzz --target fuzz_config
 *   build-fuzz/tests/fuzz/fuzz_config tests/fuzz/corpus/config
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "yaml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const jj_error *err)
{
    fprintf(stderr, "fuzz_config: %s: %s\n", what, err ? err->message : "");
    abort();
}

/* Owns the schema it returns (or aborts: a bad built-in schema is a bug). */
static jj_config_schema *core_schema(void)
{
    static const char *const firewall[] = {"instance", "global", "none", "", NULL};
    jj_config_schema *s = jj_config_schema_new();
    jj_yaml_node *instance = jj_yaml_new_string("instance");
    jj_yaml_node *yes = jj_yaml_new_bool(1);
    jj_yaml_node *no = jj_yaml_new_bool(0);
    jj_yaml_node *api = jj_yaml_new_int(17070);
    jj_yaml_node *empty = jj_yaml_new_string("");
    jj_yaml_node *timeout = jj_yaml_new_plain("600", 3);
    if (!s || !instance || !yes || !no || !api || !empty || !timeout)
        fail("out of memory building the schema", NULL);
    const jj_config_field fields[] = {
        {"name", JJ_CONFIG_STRING, NULL, NULL, NULL, JJ_CONFIG_REQUIRED | JJ_CONFIG_IMMUTABLE, NULL, NULL},
        {"type", JJ_CONFIG_STRING, NULL, NULL, NULL, JJ_CONFIG_REQUIRED | JJ_CONFIG_IMMUTABLE, NULL, NULL},
        {"uuid", JJ_CONFIG_STRING, NULL, NULL, NULL, JJ_CONFIG_IMMUTABLE, NULL, NULL},
        {"admin-secret", JJ_CONFIG_STRING, NULL, empty, empty, JJ_CONFIG_SECRET | JJ_CONFIG_ALLOW_EMPTY,
         NULL, NULL},
        {"default-series", JJ_CONFIG_STRING, NULL, empty, empty, JJ_CONFIG_ALLOW_EMPTY, NULL, NULL},
        {"firewall-mode", JJ_CONFIG_STRING, firewall, instance, NULL,
         JJ_CONFIG_REQUIRED | JJ_CONFIG_IMMUTABLE, NULL, NULL},
        {"ssl-hostname-verification", JJ_CONFIG_BOOL, NULL, yes, NULL, JJ_CONFIG_REQUIRED, NULL, NULL},
        {"proxy-ssh", JJ_CONFIG_BOOL, NULL, yes, no, 0, NULL, NULL},
        {"api-port", JJ_CONFIG_INT, NULL, api, api, JJ_CONFIG_IMMUTABLE, NULL, NULL},
        {"bootstrap-timeout", JJ_CONFIG_INT, NULL, timeout, NULL, 0, NULL, NULL},
        {"resource-tags", JJ_CONFIG_ATTRS, NULL, NULL, NULL, 0, NULL, NULL},
        {"apt-mirrors", JJ_CONFIG_LIST, NULL, NULL, NULL, JJ_CONFIG_ALLOW_EMPTY, NULL, NULL},
    };
    jj_error err;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (jj_config_schema_add(s, &fields[i], &err) != 0)
            fail(fields[i].name, &err);
    jj_yaml_free(instance);
    jj_yaml_free(yes);
    jj_yaml_free(no);
    jj_yaml_free(api);
    jj_yaml_free(empty);
    jj_yaml_free(timeout);
    return s;
}

static void expect_clean_failure(int rc, const jj_error *err)
{
    if (rc == JJ_ENOMEM)
        return;
    if (rc != JJ_ECONFIG || err->code != JJ_ECONFIG || err->message[0] == '\0')
        fail("coercion failed without JJ_ECONFIG and a message", err);
}

/* The .jenv round trip of a coerced mapping: emit, parse, coerce without
 * defaults; must give an equal mapping. */
static void check_round_trip(const jj_config_schema *s, const jj_yaml_node *coerced)
{
    jj_error err;
    char *text = NULL;
    size_t len = 0;
    int rc = jj_yaml_emit(coerced, &text, &len, &err);
    if (rc == JJ_EYAML_EMIT || rc == JJ_ENOMEM)
        return; /* e.g. invalid UTF-8 in a value: the emitter refuses it */
    if (rc != 0)
        fail("emit", &err);
    jj_yaml_node *reread = NULL;
    jj_yaml_limits big = {.max_nodes = 1000000, .max_depth = 300};
    if (jj_yaml_parse(text, len, "jenv", &big, &reread, &err) != 0)
        fail("emitted coerced config does not parse", &err);
    jj_config_opts opts = {JJ_CONFIG_NO_DEFAULTS, "fuzz", "jenv", 1};
    jj_yaml_node *again = NULL;
    if (jj_config_coerce(s, reread, &opts, &again, NULL, &err) != 0)
        fail("coerced config does not coerce again", &err);
    if (!jj_yaml_equal(coerced, again))
        fail("coercion is not idempotent across the .jenv round trip", NULL);
    if (jj_config_check_change(s, coerced, again, &err) != 0)
        fail("an unchanged config reports an immutable change", &err);
    jj_yaml_free(again);
    jj_yaml_free(reread);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    jj_yaml_limits limits = {.max_nodes = 20000, .max_depth = 64};
    jj_yaml_node *attrs = NULL;
    jj_error err;
    if (jj_yaml_parse((const char *)data, size, "environments.yaml", &limits, &attrs, &err) != 0)
        return 0;
    jj_config_schema *s = core_schema();
    const jj_config_mode modes[] = {JJ_CONFIG_WITH_DEFAULTS, JJ_CONFIG_NO_DEFAULTS};
    for (size_t m = 0; m < 2; m++) {
        jj_config_opts opts = {modes[m], "fuzz", "environments.yaml", 1};
        jj_config_warnings warnings = {0};
        jj_yaml_node *out = NULL;
        int rc = jj_config_coerce(s, attrs, &opts, &out, &warnings, &err);
        if (rc != 0) {
            expect_clean_failure(rc, &err);
        } else {
            if (jj_yaml_type_of(out) != JJ_YAML_MAP)
                fail("coercion returned something other than a mapping", NULL);
            for (size_t i = 0; i < warnings.count; i++)
                if (!warnings.items[i] || warnings.items[i][0] == '\0')
                    fail("empty warning", NULL);
            check_round_trip(s, out);
        }
        jj_config_warnings_free(&warnings);
        jj_yaml_free(out);
    }
    jj_config_schema_free(s);
    jj_yaml_free(attrs);
    return 0;
}
