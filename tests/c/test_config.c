/* test_config.c: the configuration schema engine (core/config.c). */
#include "check.h"
#include "config.h"

#include <stdlib.h>
#include <string.h>

static jj_yaml_node *yaml(const char *text)
{
    jj_error err;
    jj_yaml_node *n = NULL;
    int rc = jj_yaml_parse(text, strlen(text), "environments.yaml", NULL, &n, &err);
    if (rc)
        fprintf(stderr, "bad test yaml: %s\n", err.message);
    return n;
}

/* A slice of the core schema of bootstrap.md 3.2, plus one of each type. */
static jj_config_schema *core_schema(void)
{
    static const char *const firewall[] = {"instance", "global", "none", "", NULL};
    jj_config_schema *s = jj_config_schema_new();
    jj_error err;
    jj_yaml_node *instance = jj_yaml_new_string("instance");
    jj_yaml_node *no = jj_yaml_new_bool(0);
    jj_yaml_node *yes = jj_yaml_new_bool(1);
    jj_yaml_node *api = jj_yaml_new_int(17070);
    jj_yaml_node *empty = jj_yaml_new_string("");
    jj_yaml_node *timeout = jj_yaml_new_plain("600", 3);
    jj_config_field fields[] = {
        {"name", JJ_CONFIG_STRING, NULL, NULL, NULL, JJ_CONFIG_REQUIRED | JJ_CONFIG_IMMUTABLE,
         "environment name", "environ"},
        {"type", JJ_CONFIG_STRING, NULL, NULL, NULL, JJ_CONFIG_REQUIRED | JJ_CONFIG_IMMUTABLE,
         "provider type", "environ"},
        {"uuid", JJ_CONFIG_STRING, NULL, NULL, NULL, JJ_CONFIG_IMMUTABLE, NULL, "juju"},
        {"admin-secret", JJ_CONFIG_STRING, NULL, empty, empty,
         JJ_CONFIG_SECRET | JJ_CONFIG_ALLOW_EMPTY, "password", "environ"},
        {"ca-private-key", JJ_CONFIG_STRING, NULL, empty, empty,
         JJ_CONFIG_SECRET | JJ_CONFIG_ALLOW_EMPTY, NULL, NULL},
        {"default-series", JJ_CONFIG_STRING, NULL, empty, empty, JJ_CONFIG_ALLOW_EMPTY, NULL, NULL},
        {"firewall-mode", JJ_CONFIG_STRING, firewall, instance, NULL,
         JJ_CONFIG_REQUIRED | JJ_CONFIG_IMMUTABLE, NULL, NULL},
        {"development", JJ_CONFIG_BOOL, NULL, no, NULL, JJ_CONFIG_REQUIRED, NULL, NULL},
        {"ssl-hostname-verification", JJ_CONFIG_BOOL, NULL, yes, NULL, JJ_CONFIG_REQUIRED, NULL, NULL},
        {"proxy-ssh", JJ_CONFIG_BOOL, NULL, yes, no, 0, NULL, NULL},
        {"api-port", JJ_CONFIG_INT, NULL, api, api, JJ_CONFIG_IMMUTABLE, NULL, NULL},
        {"bootstrap-timeout", JJ_CONFIG_INT, NULL, timeout, NULL, JJ_CONFIG_IMMUTABLE, NULL, NULL},
        {"lxc-default-mtu", JJ_CONFIG_INT, NULL, NULL, NULL, JJ_CONFIG_IMMUTABLE, NULL, NULL},
        {"resource-tags", JJ_CONFIG_ATTRS, NULL, NULL, NULL, 0, NULL, NULL},
        {"allowed", JJ_CONFIG_LIST, NULL, NULL, NULL, 0, NULL, NULL},
        {"maybe-empty-list", JJ_CONFIG_LIST, NULL, NULL, NULL, JJ_CONFIG_ALLOW_EMPTY, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        int rc = jj_config_schema_add(s, &fields[i], &err);
        if (rc)
            fprintf(stderr, "schema_add(%s): %s\n", fields[i].name, err.message);
        CHECK_INT(rc, 0);
    }
    jj_yaml_free(instance);
    jj_yaml_free(no);
    jj_yaml_free(yes);
    jj_yaml_free(api);
    jj_yaml_free(empty);
    jj_yaml_free(timeout);
    return s;
}

/* Coerces text (one environment's attributes) and returns the error code. */
static int coerce(const jj_config_schema *s, const char *text, jj_config_mode mode,
                  jj_yaml_node **out, jj_error *err)
{
    jj_yaml_node *attrs = yaml(text);
    jj_config_opts opts = {mode, "amazon", "environments.yaml", 0};
    int rc = jj_config_coerce(s, attrs, &opts, out, NULL, err);
    jj_yaml_free(attrs);
    return rc;
}

static const char *const BASE = "name: amazon\ntype: ec2\n";

static char *with_base(const char *extra)
{
    size_t n = strlen(BASE) + strlen(extra) + 1;
    char *s = malloc(n);
    snprintf(s, n, "%s%s", BASE, extra);
    return s;
}

static jj_yaml_node *coerce_ok(const jj_config_schema *s, const char *extra, jj_config_mode mode)
{
    char *text = with_base(extra);
    jj_error err;
    jj_yaml_node *out = NULL;
    int rc = coerce(s, text, mode, &out, &err);
    if (rc)
        fprintf(stderr, "  unexpected: %s:%d:%d: %s\n", err.file, err.line, err.column, err.message);
    CHECK_INT(rc, 0);
    free(text);
    return out;
}

static int coerce_fail(const jj_config_schema *s, const char *extra, jj_error *err)
{
    char *text = with_base(extra);
    jj_yaml_node *out = NULL;
    int rc = coerce(s, text, JJ_CONFIG_WITH_DEFAULTS, &out, err);
    CHECK(out == NULL);
    free(text);
    return rc;
}

static void test_defaults_mode_fills_defaults(void)
{
    jj_config_schema *s = core_schema();
    jj_yaml_node *out = coerce_ok(s, "", JJ_CONFIG_WITH_DEFAULTS);
    CHECK_STR(jj_yaml_map_get_string(out, "firewall-mode"), "instance");
    CHECK_INT(jj_yaml_type_of(jj_yaml_map_get(out, "development")), JJ_YAML_BOOL);
    CHECK_INT(jj_yaml_bool(jj_yaml_map_get(out, "development")), 0);
    CHECK_INT(jj_yaml_bool(jj_yaml_map_get(out, "ssl-hostname-verification")), 1);
    CHECK_INT(jj_yaml_bool(jj_yaml_map_get(out, "proxy-ssh")), 1);
    CHECK_INT(jj_yaml_int(jj_yaml_map_get(out, "api-port")), 17070);
    CHECK_INT(jj_yaml_int(jj_yaml_map_get(out, "bootstrap-timeout")), 600);
    CHECK_STR(jj_yaml_map_get_string(out, "admin-secret"), "");
    CHECK(jj_yaml_map_get(out, "uuid") == NULL);
    CHECK(jj_yaml_map_get(out, "lxc-default-mtu") == NULL);
    /* given keys first, in input order, then defaults by name */
    CHECK_STR(jj_yaml_text(jj_yaml_map_key_at(out, 0), NULL), "name");
    CHECK_STR(jj_yaml_text(jj_yaml_map_key_at(out, 1), NULL), "type");
    CHECK_STR(jj_yaml_text(jj_yaml_map_key_at(out, 2), NULL), "admin-secret");
    CHECK_STR(jj_yaml_text(jj_yaml_map_key_at(out, 3), NULL), "api-port");
    jj_yaml_free(out);
    jj_config_schema_free(s);
}

static void test_nodefaults_mode_uses_fillin_and_requires(void)
{
    jj_config_schema *s = core_schema();
    jj_yaml_node *out = coerce_ok(s, "firewall-mode: global\ndevelopment: false\n"
                                     "ssl-hostname-verification: true\n",
                                  JJ_CONFIG_NO_DEFAULTS);
    CHECK_INT(jj_yaml_bool(jj_yaml_map_get(out, "proxy-ssh")), 0); /* fill-in, not default */
    CHECK_INT(jj_yaml_int(jj_yaml_map_get(out, "api-port")), 17070);
    CHECK(jj_yaml_map_get(out, "bootstrap-timeout") == NULL); /* default only */
    CHECK_STR(jj_yaml_map_get_string(out, "default-series"), "");
    jj_yaml_free(out);

    jj_error err;
    jj_yaml_node *attrs = yaml("env:\n  name: x\n  type: ec2\n  development: false\n"
                               "  ssl-hostname-verification: true\n");
    jj_config_opts opts = {JJ_CONFIG_NO_DEFAULTS, "x", "environments.yaml", 0};
    CHECK_INT(jj_config_coerce(s, jj_yaml_map_get(attrs, "env"), &opts, &out, NULL, &err), JJ_ECONFIG);
    CHECK_STR(err.message, "environment \"x\": firewall-mode: expected string, got nothing");
    CHECK_STR(err.file, "environments.yaml");
    CHECK_INT(err.line, 2); /* where the environment's mapping starts */
    CHECK_INT(err.column, 3);
    jj_yaml_free(attrs);
    jj_config_schema_free(s);
}

static void test_null_counts_as_absent(void)
{
    jj_config_schema *s = core_schema();
    jj_yaml_node *out = coerce_ok(s, "api-port:\nuuid: ~\n", JJ_CONFIG_WITH_DEFAULTS);
    CHECK_INT(jj_yaml_int(jj_yaml_map_get(out, "api-port")), 17070);
    CHECK(jj_yaml_map_get(out, "uuid") == NULL);
    jj_yaml_free(out);

    jj_error err;
    jj_yaml_node *none = NULL;
    CHECK_INT(coerce(s, "name: a\ntype:\n", JJ_CONFIG_WITH_DEFAULTS, &none, &err), JJ_ECONFIG);
    CHECK_STR(err.message, "environment \"amazon\": type: expected string, got nothing");
    CHECK_INT(err.line, 2); /* the empty value of `type:` */
    jj_config_schema_free(s);
}

static void test_string_coercion(void)
{
    jj_config_schema *s = core_schema();
    jj_yaml_node *out = coerce_ok(s, "default-series: 14.04\nuuid: 12\nadmin-secret: yes\n"
                                     "ca-private-key: 1.10\n",
                                  JJ_CONFIG_WITH_DEFAULTS);
    CHECK_STR(jj_yaml_map_get_string(out, "default-series"), "14.04");
    CHECK_STR(jj_yaml_map_get_string(out, "uuid"), "12");
    CHECK_STR(jj_yaml_map_get_string(out, "admin-secret"), "yes");
    CHECK_STR(jj_yaml_map_get_string(out, "ca-private-key"), "1.10"); /* source text kept */
    jj_yaml_free(out);

    jj_error err;
    CHECK_INT(coerce_fail(s, "uuid: [a]\n", &err), JJ_ECONFIG);
    CHECK_STR(err.message, "environment \"amazon\": uuid: expected string, got list");
    CHECK_INT(err.line, 3);
    CHECK_INT(err.column, 7);
    jj_config_schema_free(s);
}

static void test_bool_coercion(void)
{
    jj_config_schema *s = core_schema();
    jj_yaml_node *out = coerce_ok(s, "development: \"true\"\nproxy-ssh: \"false\"\n"
                                     "ssl-hostname-verification: off\n",
                                  JJ_CONFIG_WITH_DEFAULTS);
    CHECK_INT(jj_yaml_type_of(jj_yaml_map_get(out, "development")), JJ_YAML_BOOL);
    CHECK_INT(jj_yaml_bool(jj_yaml_map_get(out, "development")), 1);
    CHECK_INT(jj_yaml_bool(jj_yaml_map_get(out, "proxy-ssh")), 0);
    CHECK_INT(jj_yaml_bool(jj_yaml_map_get(out, "ssl-hostname-verification")), 0);
    jj_yaml_free(out);

    jj_error err;
    CHECK_INT(coerce_fail(s, "development: maybe\n", &err), JJ_ECONFIG);
    CHECK_STR(err.message, "environment \"amazon\": development: expected bool, got string(\"maybe\")");
    CHECK_INT(err.line, 3);
    CHECK_INT(err.column, 14);
    CHECK_INT(coerce_fail(s, "development: 1\n", &err), JJ_ECONFIG);
    CHECK_STR(err.message, "environment \"amazon\": development: expected bool, got int(1)");
    jj_config_schema_free(s);
}

static void test_int_coercion(void)
{
    jj_config_schema *s = core_schema();
    jj_yaml_node *out = coerce_ok(s, "api-port: \"17071\"\nbootstrap-timeout: 900.0\n"
                                     "lxc-default-mtu: 0x10\n",
                                  JJ_CONFIG_WITH_DEFAULTS);
    CHECK_INT(jj_yaml_type_of(jj_yaml_map_get(out, "api-port")), JJ_YAML_INT);
    CHECK_INT(jj_yaml_int(jj_yaml_map_get(out, "api-port")), 17071);
    CHECK_INT(jj_yaml_int(jj_yaml_map_get(out, "bootstrap-timeout")), 900);
    CHECK_INT(jj_yaml_int(jj_yaml_map_get(out, "lxc-default-mtu")), 16);
    jj_yaml_free(out);
    out = coerce_ok(s, "api-port: \"1e3\"\n", JJ_CONFIG_WITH_DEFAULTS);
    CHECK_INT(jj_yaml_int(jj_yaml_map_get(out, "api-port")), 1000);
    jj_yaml_free(out);

    jj_error err;
    CHECK_INT(coerce_fail(s, "api-port: abc\n", &err), JJ_ECONFIG);
    CHECK_STR(err.message, "environment \"amazon\": api-port: expected number, got string(\"abc\")");
    CHECK_STR(err.file, "environments.yaml");
    CHECK_INT(err.line, 3);
    CHECK_INT(err.column, 11);
    CHECK_INT(coerce_fail(s, "api-port: 1.5\n", &err), JJ_ECONFIG);
    CHECK_STR(err.message, "environment \"amazon\": api-port: expected number, got float64(1.5)");
    CHECK_INT(coerce_fail(s, "api-port: true\n", &err), JJ_ECONFIG);
    CHECK_STR(err.message, "environment \"amazon\": api-port: expected number, got bool(true)");
    CHECK_INT(coerce_fail(s, "api-port: {a: 1}\n", &err), JJ_ECONFIG);
    CHECK_STR(err.message, "environment \"amazon\": api-port: expected number, got map");
    CHECK_INT(coerce_fail(s, "api-port: \"a\\\"b\\n\"\n", &err), JJ_ECONFIG);
    CHECK_STR(err.message, "environment \"amazon\": api-port: expected number, got string(\"a\\\"b\\n\")");
    jj_config_schema_free(s);
}

static void test_attrs_coercion(void)
{
    jj_config_schema *s = core_schema();
    const char *good[] = {
        "resource-tags: {team: db, cost: 12, empty: }\n",
        "resource-tags: \"team=db cost=12  empty=\"\n",
        "resource-tags: [team=db, cost=12, empty=]\n",
    };
    for (size_t i = 0; i < 3; i++) {
        jj_yaml_node *out = coerce_ok(s, good[i], JJ_CONFIG_WITH_DEFAULTS);
        const jj_yaml_node *tags = jj_yaml_map_get(out, "resource-tags");
        CHECK_INT(jj_yaml_type_of(tags), JJ_YAML_MAP);
        CHECK_INT(jj_yaml_count(tags), 3);
        CHECK_STR(jj_yaml_map_get_string(tags, "team"), "db");
        CHECK_STR(jj_yaml_map_get_string(tags, "cost"), "12"); /* stringified */
        CHECK_STR(jj_yaml_map_get_string(tags, "empty"), "");
        CHECK_STR(jj_yaml_text(jj_yaml_map_key_at(tags, 0), NULL), "team");
        jj_yaml_free(out);
    }
    jj_error err;
    CHECK_INT(coerce_fail(s, "resource-tags: \"a=1 oops\"\n", &err), JJ_ECONFIG);
    CHECK_STR(err.message, "environment \"amazon\": resource-tags: expected \"key=value\", got \"oops\"");
    CHECK_INT(coerce_fail(s, "resource-tags: [a=1, =2]\n", &err), JJ_ECONFIG);
    CHECK_STR(err.message, "environment \"amazon\": resource-tags: expected \"key=value\", got \"=2\"");
    CHECK_INT(err.line, 3);
    CHECK_INT(err.column, 22);
    CHECK_INT(coerce_fail(s, "resource-tags: a=1 a=2\n", &err), JJ_ECONFIG);
    CHECK_STR(err.message, "environment \"amazon\": resource-tags: key \"a\" specified more than once");
    CHECK_INT(coerce_fail(s, "resource-tags:\n  a: [1]\n", &err), JJ_ECONFIG);
    CHECK_STR(err.message, "environment \"amazon\": resource-tags.a: expected string, got list");
    CHECK_INT(err.line, 4);
    CHECK_INT(coerce_fail(s, "resource-tags: 7\n", &err), JJ_ECONFIG);
    CHECK_STR(err.message, "environment \"amazon\": resource-tags: expected attrs, got int(7)");
    CHECK_INT(coerce_fail(s, "resource-tags: {}\n", &err), JJ_ECONFIG);
    CHECK_STR(err.message, "environment \"amazon\": empty resource-tags in environment configuration");
    jj_config_schema_free(s);
}

static void test_list_coercion(void)
{
    jj_config_schema *s = core_schema();
    const char *good[] = {"allowed: [a, b, 3]\n", "allowed: \"a, b ,3\"\n", "allowed: a,,b,3,\n"};
    for (size_t i = 0; i < 3; i++) {
        jj_yaml_node *out = coerce_ok(s, good[i], JJ_CONFIG_WITH_DEFAULTS);
        const jj_yaml_node *list = jj_yaml_map_get(out, "allowed");
        CHECK_INT(jj_yaml_type_of(list), JJ_YAML_SEQ);
        CHECK_INT(jj_yaml_count(list), 3);
        CHECK_STR(jj_yaml_text(jj_yaml_seq_at(list, 0), NULL), "a");
        CHECK_STR(jj_yaml_text(jj_yaml_seq_at(list, 1), NULL), "b");
        CHECK_INT(jj_yaml_type_of(jj_yaml_seq_at(list, 2)), JJ_YAML_STRING);
        CHECK_STR(jj_yaml_text(jj_yaml_seq_at(list, 2), NULL), "3");
        jj_yaml_free(out);
    }
    jj_error err;
    CHECK_INT(coerce_fail(s, "allowed: {a: b}\n", &err), JJ_ECONFIG);
    CHECK_STR(err.message, "environment \"amazon\": allowed: expected list, got map");
    CHECK_INT(coerce_fail(s, "allowed: [a, [b]]\n", &err), JJ_ECONFIG);
    CHECK_STR(err.message, "environment \"amazon\": allowed[1]: expected string, got list");
    CHECK_INT(err.column, 14);
    CHECK_INT(coerce_fail(s, "allowed: []\n", &err), JJ_ECONFIG);
    CHECK_STR(err.message, "environment \"amazon\": empty allowed in environment configuration");
    jj_yaml_node *out = coerce_ok(s, "maybe-empty-list: \"\"\n", JJ_CONFIG_WITH_DEFAULTS);
    CHECK_INT(jj_yaml_count(jj_yaml_map_get(out, "maybe-empty-list")), 0);
    CHECK_INT(jj_yaml_type_of(jj_yaml_map_get(out, "maybe-empty-list")), JJ_YAML_SEQ);
    jj_yaml_free(out);
    jj_config_schema_free(s);
}

static void test_enum_check(void)
{
    jj_config_schema *s = core_schema();
    jj_yaml_node *out = coerce_ok(s, "firewall-mode: global\n", JJ_CONFIG_WITH_DEFAULTS);
    CHECK_STR(jj_yaml_map_get_string(out, "firewall-mode"), "global");
    jj_yaml_free(out);
    jj_error err;
    CHECK_INT(coerce_fail(s, "firewall-mode: bogus\n", &err), JJ_ECONFIG);
    CHECK_STR(err.message,
              "environment \"amazon\": firewall-mode: expected one of [instance global none ], got \"bogus\"");
    CHECK_INT(err.line, 3);
    CHECK_INT(err.column, 16);
    /* "" is an allowed value, but the field may not be empty */
    CHECK_INT(coerce_fail(s, "firewall-mode: \"\"\n", &err), JJ_ECONFIG);
    CHECK_STR(err.message, "environment \"amazon\": empty firewall-mode in environment configuration");
    jj_config_schema_free(s);
}

static void test_empty_check(void)
{
    jj_config_schema *s = core_schema();
    jj_error err;
    jj_yaml_node *out = NULL;
    CHECK_INT(coerce(s, "name: \"\"\ntype: ec2\n", JJ_CONFIG_WITH_DEFAULTS, &out, &err), JJ_ECONFIG);
    CHECK_STR(err.message, "environment \"amazon\": empty name in environment configuration");
    CHECK_INT(err.line, 1);
    CHECK_INT(err.column, 7);
    /* integers equal to 0 count as empty (Juju bug 1224492, kept) */
    CHECK_INT(coerce_fail(s, "lxc-default-mtu: 0\n", &err), JJ_ECONFIG);
    CHECK_STR(err.message, "environment \"amazon\": empty lxc-default-mtu in environment configuration");
    /* allow_empty fields and booleans are never empty */
    out = coerce_ok(s, "admin-secret: \"\"\ndevelopment: false\n", JJ_CONFIG_WITH_DEFAULTS);
    CHECK_STR(jj_yaml_map_get_string(out, "admin-secret"), "");
    jj_yaml_free(out);
    jj_config_schema_free(s);
}

static void test_unknown_keys_and_warnings(void)
{
    jj_config_schema *s = core_schema();
    jj_yaml_node *attrs = yaml("name: a\ntype: ec2\nregion: us-east-1\naccess-key: [x]\nzone:\n");
    jj_config_opts opts = {JJ_CONFIG_WITH_DEFAULTS, "a", "f", 1};
    jj_yaml_node *out = NULL;
    jj_config_warnings w;
    jj_error err;
    CHECK_INT(jj_config_coerce(s, attrs, &opts, &out, &w, &err), 0);
    CHECK_STR(jj_yaml_map_get_string(out, "region"), "us-east-1");
    CHECK_INT(jj_yaml_type_of(jj_yaml_map_get(out, "access-key")), JJ_YAML_SEQ);
    CHECK(jj_yaml_map_get(out, "zone") != NULL);
    CHECK_INT(w.count, 3);
    if (w.count == 3) {
        CHECK_STR(w.items[0], "unknown config field \"region\"");
        CHECK_STR(w.items[1], "unknown config field \"access-key\"");
        CHECK_STR(w.items[2], "unknown config field \"zone\"");
    }
    jj_config_warnings_free(&w);
    jj_yaml_free(out);
    opts.warn_unknown = 0;
    CHECK_INT(jj_config_coerce(s, attrs, &opts, &out, &w, &err), 0);
    CHECK_INT(w.count, 0);
    jj_config_warnings_free(&w);
    jj_yaml_free(out);
    /* the input is not modified */
    CHECK_INT(jj_yaml_count(attrs), 5);
    CHECK(jj_yaml_map_get(attrs, "firewall-mode") == NULL);
    jj_yaml_free(attrs);
    jj_config_schema_free(s);
}

static void test_messages_without_env_and_file(void)
{
    jj_config_schema *s = core_schema();
    jj_yaml_node *attrs = jj_yaml_new_map();
    jj_error err;
    jj_yaml_map_set(attrs, "name", jj_yaml_new_string("a"), &err);
    jj_yaml_map_set(attrs, "type", jj_yaml_new_string("ec2"), &err);
    jj_yaml_map_set(attrs, "api-port", jj_yaml_new_string("x"), &err);
    jj_yaml_node *out = NULL;
    CHECK_INT(jj_config_coerce(s, attrs, NULL, &out, NULL, &err), JJ_ECONFIG);
    CHECK_STR(err.message, "api-port: expected number, got string(\"x\")");
    CHECK_INT(err.line, 0);
    CHECK_STR(err.file, "");
    jj_yaml_free(attrs);

    /* null and non-mapping inputs */
    jj_yaml_node *null = jj_yaml_new_null();
    CHECK_INT(jj_config_coerce(s, null, NULL, &out, NULL, &err), JJ_ECONFIG);
    CHECK_STR(err.message, "name: expected string, got nothing");
    jj_yaml_free(null);
    jj_yaml_node *str = jj_yaml_new_string("x");
    CHECK_INT(jj_config_coerce(s, str, NULL, &out, NULL, &err), JJ_ECONFIG);
    CHECK_STR(err.message, "expected map, got string(\"x\")");
    jj_yaml_free(str);
    jj_config_schema_free(s);
}

static void test_secret_values_stay_out_of_messages(void)
{
    jj_config_schema *s = core_schema();
    jj_error err;
    CHECK_INT(coerce_fail(s, "admin-secret: [hunter2]\n", &err), JJ_ECONFIG);
    CHECK(strstr(err.message, "hunter2") == NULL);
    jj_config_schema_free(s);
}

static void test_check_change(void)
{
    jj_config_schema *s = core_schema();
    jj_error err;
    jj_yaml_node *old = yaml("name: a\ntype: ec2\napi-port: 17070\ndevelopment: false\n");
    jj_yaml_node *same = yaml("type: ec2\nname: a\napi-port: 17070\ndevelopment: true\nuuid: u-1\n");
    jj_yaml_node *renamed = yaml("name: b\ntype: ec2\napi-port: 17070\n");
    jj_yaml_node *port = yaml("name: a\ntype: ec2\napi-port: 17071\n");
    jj_yaml_node *dropped = yaml("name: a\ntype: ec2\n");
    CHECK_INT(jj_config_check_change(s, old, same, &err), 0); /* mutable + absent->present */
    CHECK_INT(jj_config_check_change(s, old, renamed, &err), JJ_ECONFIG);
    CHECK_STR(err.message, "cannot change name from \"a\" to \"b\"");
    CHECK_INT(jj_config_check_change(s, old, port, &err), JJ_ECONFIG);
    CHECK_STR(err.message, "cannot change api-port from 17070 to 17071");
    CHECK_INT(jj_config_check_change(s, old, dropped, &err), JJ_ECONFIG);
    CHECK_STR(err.message, "cannot change api-port from 17070 to <nil>");
    jj_yaml_free(old);
    jj_yaml_free(same);
    jj_yaml_free(renamed);
    jj_yaml_free(port);
    jj_yaml_free(dropped);
    jj_config_schema_free(s);
}

static void test_schema_queries(void)
{
    jj_config_schema *s = core_schema();
    CHECK_INT(jj_config_schema_count(s), 16);
    CHECK_STR(jj_config_schema_at(s, 0)->name, "admin-secret");
    for (size_t i = 1; i < jj_config_schema_count(s); i++)
        CHECK(strcmp(jj_config_schema_at(s, i - 1)->name, jj_config_schema_at(s, i)->name) < 0);
    const jj_config_field *f = jj_config_schema_find(s, "firewall-mode");
    CHECK(f != NULL);
    CHECK_STR(f->values[0], "instance");
    CHECK_STR(f->values[3], "");
    CHECK(f->values[4] == NULL);
    CHECK_STR(jj_yaml_text(f->default_value, NULL), "instance");
    f = jj_config_schema_find(s, "bootstrap-timeout");
    CHECK_INT(jj_yaml_type_of(f->default_value), JJ_YAML_INT); /* the default was coerced */
    CHECK_STR(jj_config_schema_find(s, "name")->description, "environment name");
    CHECK_STR(jj_config_schema_find(s, "uuid")->group, "juju");
    CHECK(jj_config_schema_find(s, "nope") == NULL);
    const char *names[4];
    CHECK_INT(jj_config_schema_secrets(s, names, 4), 2);
    CHECK_STR(names[0], "admin-secret");
    CHECK_STR(names[1], "ca-private-key");
    CHECK_INT(jj_config_schema_secrets(s, NULL, 0), 2);
    jj_config_schema_free(s);
}

static void test_schema_add_rejects_bad_fields(void)
{
    jj_config_schema *s = jj_config_schema_new();
    jj_error err;
    jj_config_field f = {"port", JJ_CONFIG_INT, NULL, NULL, NULL, 0, NULL, NULL};
    CHECK_INT(jj_config_schema_add(s, &f, &err), 0);
    CHECK_INT(jj_config_schema_add(s, &f, &err), JJ_EINVAL);
    CHECK(strstr(err.message, "defined twice") != NULL);
    jj_yaml_node *bad = jj_yaml_new_string("eighty");
    jj_config_field g = {"other-port", JJ_CONFIG_INT, NULL, bad, NULL, 0, NULL, NULL};
    CHECK_INT(jj_config_schema_add(s, &g, &err), JJ_EINVAL);
    CHECK_STR(err.message, "config field other-port: bad default: other-port: expected number, got string(\"eighty\")");
    jj_yaml_free(bad);
    static const char *const modes[] = {"a", "b", NULL};
    jj_yaml_node *c = jj_yaml_new_string("c");
    jj_config_field h = {"mode", JJ_CONFIG_STRING, modes, NULL, c, 0, NULL, NULL};
    CHECK_INT(jj_config_schema_add(s, &h, &err), JJ_EINVAL);
    jj_yaml_free(c);
    jj_config_field nameless = {NULL, JJ_CONFIG_STRING, NULL, NULL, NULL, 0, NULL, NULL};
    CHECK_INT(jj_config_schema_add(s, &nameless, &err), JJ_EINVAL);
    jj_config_field badtype = {"t", (jj_config_type)42, NULL, NULL, NULL, 0, NULL, NULL};
    CHECK_INT(jj_config_schema_add(s, &badtype, &err), JJ_EINVAL);
    CHECK_INT(jj_config_schema_count(s), 1);
    jj_config_schema_free(s);
}

static void test_merge(void)
{
    jj_config_schema *core = core_schema();
    jj_config_schema *ec2 = jj_config_schema_new();
    jj_error err;
    jj_yaml_node *region = jj_yaml_new_string("us-east-1");
    jj_config_field fields[] = {
        {"region", JJ_CONFIG_STRING, NULL, region, NULL, 0, NULL, NULL},
        {"secret-key", JJ_CONFIG_STRING, NULL, NULL, NULL, JJ_CONFIG_SECRET, NULL, NULL},
        {"development", JJ_CONFIG_BOOL, NULL, NULL, NULL, 0, "redefined", NULL},
    };
    for (size_t i = 0; i < 3; i++)
        CHECK_INT(jj_config_schema_add(ec2, &fields[i], &err), 0);
    jj_yaml_free(region);
    jj_config_schema *m = NULL;
    CHECK_INT(jj_config_schema_merge(core, ec2, &m, &err), 0);
    CHECK_INT(jj_config_schema_count(m), 18);
    CHECK_STR(jj_config_schema_find(m, "development")->description, "redefined");
    CHECK_STR(jj_yaml_text(jj_config_schema_find(m, "region")->default_value, NULL), "us-east-1");
    const char *names[4];
    CHECK_INT(jj_config_schema_secrets(m, names, 4), 3);
    CHECK_STR(names[2], "secret-key");
    jj_yaml_node *out = coerce_ok(m, "", JJ_CONFIG_WITH_DEFAULTS);
    CHECK_STR(jj_yaml_map_get_string(out, "region"), "us-east-1");
    jj_yaml_free(out);
    jj_config_schema_free(m);

    jj_config_schema *clash = jj_config_schema_new();
    jj_config_field api = {"api-port", JJ_CONFIG_STRING, NULL, NULL, NULL, 0, NULL, NULL};
    CHECK_INT(jj_config_schema_add(clash, &api, &err), 0);
    m = (jj_config_schema *)1;
    CHECK_INT(jj_config_schema_merge(core, clash, &m, &err), JJ_ECONFIG);
    CHECK(m == NULL);
    CHECK_STR(err.message, "config field \"api-port\" defined as int and as string");
    jj_config_schema_free(clash);
    jj_config_schema_free(ec2);
    jj_config_schema_free(core);
}

static void test_positions_in_a_real_environments_file(void)
{
    jj_config_schema *s = core_schema();
    const char *text = "default: amazon\n"
                       "environments:\n"
                       "  amazon:\n"
                       "    type: ec2\n"
                       "    bootstrap-timeout: soon\n";
    jj_yaml_node *doc = yaml(text);
    const jj_yaml_node *env = jj_yaml_map_get(jj_yaml_map_get(doc, "environments"), "amazon");
    jj_yaml_node *attrs = jj_yaml_copy(env);
    jj_error err;
    jj_yaml_map_set(attrs, "name", jj_yaml_new_string("amazon"), &err);
    jj_config_opts opts = {JJ_CONFIG_WITH_DEFAULTS, "amazon", "/home/u/.juju/environments.yaml", 0};
    jj_yaml_node *out = NULL;
    CHECK_INT(jj_config_coerce(s, attrs, &opts, &out, NULL, &err), JJ_ECONFIG);
    CHECK_STR(err.message,
              "environment \"amazon\": bootstrap-timeout: expected number, got string(\"soon\")");
    CHECK_STR(err.file, "/home/u/.juju/environments.yaml");
    CHECK_INT(err.line, 5);
    CHECK_INT(err.column, 24);
    /* coerced output keeps the positions of the values it came from */
    jj_yaml_map_set(attrs, "bootstrap-timeout", jj_yaml_new_int(60), &err);
    CHECK_INT(jj_config_coerce(s, attrs, &opts, &out, NULL, &err), 0);
    CHECK_INT(jj_yaml_mark_of(jj_yaml_map_get(out, "type")).line, 4);
    CHECK_INT(jj_yaml_mark_of(jj_yaml_map_get(out, "type")).column, 11);
    jj_yaml_free(out);
    jj_yaml_free(attrs);
    jj_yaml_free(doc);
    jj_config_schema_free(s);
}

int main(void)
{
    RUN(test_defaults_mode_fills_defaults);
    RUN(test_nodefaults_mode_uses_fillin_and_requires);
    RUN(test_null_counts_as_absent);
    RUN(test_string_coercion);
    RUN(test_bool_coercion);
    RUN(test_int_coercion);
    RUN(test_attrs_coercion);
    RUN(test_list_coercion);
    RUN(test_enum_check);
    RUN(test_empty_check);
    RUN(test_unknown_keys_and_warnings);
    RUN(test_messages_without_env_and_file);
    RUN(test_secret_values_stay_out_of_messages);
    RUN(test_check_change);
    RUN(test_schema_queries);
    RUN(test_schema_add_rejects_bad_fields);
    RUN(test_merge);
    RUN(test_positions_in_a_real_environments_file);
    return check_summary();
}
