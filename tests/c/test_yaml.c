/* test_yaml.c: the YAML document model (core/yaml.c). */
#include "check.h"
#include "yaml.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static jj_yaml_node *parse_ok(const char *text)
{
    jj_error err;
    jj_yaml_node *n = NULL;
    int rc = jj_yaml_parse(text, strlen(text), "t.yaml", NULL, &n, &err);
    if (rc != 0)
        fprintf(stderr, "unexpected parse error: %s:%d:%d: %s\n", err.file, err.line, err.column,
                err.message);
    CHECK_INT(rc, 0);
    return n;
}

static int parse_err(const char *text, jj_error *err)
{
    jj_yaml_node *n = NULL;
    int rc = jj_yaml_parse(text, strlen(text), "bad.yaml", NULL, &n, err);
    CHECK(n == NULL);
    return rc;
}

static char *emit_ok(const jj_yaml_node *n)
{
    jj_error err;
    char *out = NULL;
    size_t len = 0;
    int rc = jj_yaml_emit(n, &out, &len, &err);
    CHECK_INT(rc, 0);
    if (out)
        CHECK_INT(len, strlen(out));
    return out;
}

/* --- scalar resolution -------------------------------------------------- */

typedef struct {
    const char *text;
    jj_yaml_type type;
    int64_t i;   /* int value, or bool */
    double f;
} resolution;

static void test_plain_resolution_table(void)
{
    static const resolution table[] = {
        {"~", JJ_YAML_NULL, 0, 0}, {"null", JJ_YAML_NULL, 0, 0}, {"Null", JJ_YAML_NULL, 0, 0},
        {"NULL", JJ_YAML_NULL, 0, 0}, {"", JJ_YAML_NULL, 0, 0},
        {"nULL", JJ_YAML_STRING, 0, 0},
        {"y", JJ_YAML_BOOL, 1, 0}, {"Y", JJ_YAML_BOOL, 1, 0}, {"yes", JJ_YAML_BOOL, 1, 0},
        {"Yes", JJ_YAML_BOOL, 1, 0}, {"YES", JJ_YAML_BOOL, 1, 0}, {"true", JJ_YAML_BOOL, 1, 0},
        {"True", JJ_YAML_BOOL, 1, 0}, {"TRUE", JJ_YAML_BOOL, 1, 0}, {"on", JJ_YAML_BOOL, 1, 0},
        {"On", JJ_YAML_BOOL, 1, 0}, {"ON", JJ_YAML_BOOL, 1, 0},
        {"n", JJ_YAML_BOOL, 0, 0}, {"N", JJ_YAML_BOOL, 0, 0}, {"no", JJ_YAML_BOOL, 0, 0},
        {"No", JJ_YAML_BOOL, 0, 0}, {"NO", JJ_YAML_BOOL, 0, 0}, {"false", JJ_YAML_BOOL, 0, 0},
        {"False", JJ_YAML_BOOL, 0, 0}, {"FALSE", JJ_YAML_BOOL, 0, 0}, {"off", JJ_YAML_BOOL, 0, 0},
        {"Off", JJ_YAML_BOOL, 0, 0}, {"OFF", JJ_YAML_BOOL, 0, 0},
        {"yEs", JJ_YAML_STRING, 0, 0}, {"tRUE", JJ_YAML_STRING, 0, 0},
        {"0", JJ_YAML_INT, 0, 0}, {"12", JJ_YAML_INT, 12, 0}, {"-12", JJ_YAML_INT, -12, 0},
        {"+12", JJ_YAML_INT, 12, 0}, {"1_000", JJ_YAML_INT, 1000, 0},
        {"0x1F", JJ_YAML_INT, 31, 0}, {"0X1f", JJ_YAML_INT, 31, 0}, {"-0x10", JJ_YAML_INT, -16, 0},
        {"0o17", JJ_YAML_INT, 15, 0}, {"0755", JJ_YAML_INT, 493, 0}, {"0b101", JJ_YAML_INT, 5, 0},
        {"9223372036854775807", JJ_YAML_INT, INT64_MAX, 0},
        {"-9223372036854775808", JJ_YAML_INT, INT64_MIN, 0},
        {"9223372036854775808", JJ_YAML_FLOAT, 0, 9223372036854775808.0},
        {"0x", JJ_YAML_STRING, 0, 0}, {"0xZZ", JJ_YAML_STRING, 0, 0},
        {"08", JJ_YAML_FLOAT, 0, 8.0}, /* not octal, but yaml.v2's float pattern */
        {"1.5", JJ_YAML_FLOAT, 0, 1.5}, {"-1.5", JJ_YAML_FLOAT, 0, -1.5},
        {"14.04", JJ_YAML_FLOAT, 0, 14.04}, {".5", JJ_YAML_FLOAT, 0, 0.5},
        {"1.", JJ_YAML_FLOAT, 0, 1.0}, {"1e3", JJ_YAML_FLOAT, 0, 1000.0},
        {"1.5E-2", JJ_YAML_FLOAT, 0, 0.015}, {"1_000.5", JJ_YAML_FLOAT, 0, 1000.5},
        {".", JJ_YAML_STRING, 0, 0}, {"1e", JJ_YAML_STRING, 0, 0}, {"1.2.3", JJ_YAML_STRING, 0, 0},
        {"12abc", JJ_YAML_STRING, 0, 0}, {"-", JJ_YAML_STRING, 0, 0},
        {"1.25.0", JJ_YAML_STRING, 0, 0}, {"10.0.0.5", JJ_YAML_STRING, 0, 0},
        {"2015-10-22", JJ_YAML_STRING, 0, 0}, {"ec2", JJ_YAML_STRING, 0, 0},
        {"<root>=WARNING", JJ_YAML_STRING, 0, 0},
    };
    for (size_t k = 0; k < sizeof table / sizeof table[0]; k++) {
        const resolution *r = &table[k];
        jj_yaml_node *n = jj_yaml_new_plain(r->text, strlen(r->text));
        CHECK(n != NULL);
        if (jj_yaml_type_of(n) != r->type)
            fprintf(stderr, "  resolving \"%s\": got %s, want %s\n", r->text,
                    jj_yaml_type_name(jj_yaml_type_of(n)), jj_yaml_type_name(r->type));
        CHECK_INT(jj_yaml_type_of(n), r->type);
        if (r->type == JJ_YAML_INT)
            CHECK_INT(jj_yaml_int(n), r->i);
        if (r->type == JJ_YAML_BOOL)
            CHECK_INT(jj_yaml_bool(n), r->i);
        if (r->type == JJ_YAML_FLOAT)
            CHECK(jj_yaml_float(n) == r->f);
        /* the source text is kept whatever the type */
        CHECK_STR(jj_yaml_text(n, NULL), r->text);
        jj_yaml_free(n);
    }
}

static void test_float_specials(void)
{
    const char *inf[] = {".inf", ".Inf", ".INF", "+.inf", "+.INF"};
    for (size_t i = 0; i < 5; i++) {
        jj_yaml_node *n = jj_yaml_new_plain(inf[i], strlen(inf[i]));
        CHECK_INT(jj_yaml_type_of(n), JJ_YAML_FLOAT);
        CHECK(isinf(jj_yaml_float(n)) && jj_yaml_float(n) > 0);
        jj_yaml_free(n);
    }
    jj_yaml_node *n = jj_yaml_new_plain("-.Inf", 5);
    CHECK(isinf(jj_yaml_float(n)) && jj_yaml_float(n) < 0);
    jj_yaml_free(n);
    n = jj_yaml_new_plain(".NaN", 4);
    CHECK_INT(jj_yaml_type_of(n), JJ_YAML_FLOAT);
    CHECK(isnan(jj_yaml_float(n)));
    jj_yaml_free(n);
    n = jj_yaml_new_plain(".nAn", 4);
    CHECK_INT(jj_yaml_type_of(n), JJ_YAML_STRING);
    jj_yaml_free(n);
}

static void test_quoted_and_block_are_strings(void)
{
    jj_yaml_node *doc = parse_ok("a: \"12\"\nb: 'true'\nc: |\n  yes\nd: >-\n  null\ne: ''\nf: 12\n");
    CHECK_INT(jj_yaml_type_of(jj_yaml_map_get(doc, "a")), JJ_YAML_STRING);
    CHECK_STR(jj_yaml_map_get_string(doc, "a"), "12");
    CHECK_STR(jj_yaml_map_get_string(doc, "b"), "true");
    CHECK_STR(jj_yaml_map_get_string(doc, "c"), "yes\n");
    CHECK_STR(jj_yaml_map_get_string(doc, "d"), "null");
    CHECK_STR(jj_yaml_map_get_string(doc, "e"), "");
    CHECK_INT(jj_yaml_type_of(jj_yaml_map_get(doc, "f")), JJ_YAML_INT);
    CHECK(jj_yaml_map_get_string(doc, "f") == NULL);
    jj_yaml_free(doc);
}

static void test_explicit_tags(void)
{
    jj_yaml_node *doc = parse_ok("a: !!str 12\nb: !!int \"12\"\nc: !!float 3\nd: !!bool \"yes\"\n"
                                 "e: !!null ''\nf: ! yes\ng: !local 7\n");
    CHECK_INT(jj_yaml_type_of(jj_yaml_map_get(doc, "a")), JJ_YAML_STRING);
    CHECK_INT(jj_yaml_type_of(jj_yaml_map_get(doc, "b")), JJ_YAML_INT);
    CHECK_INT(jj_yaml_int(jj_yaml_map_get(doc, "b")), 12);
    CHECK_INT(jj_yaml_type_of(jj_yaml_map_get(doc, "c")), JJ_YAML_FLOAT);
    CHECK(jj_yaml_float(jj_yaml_map_get(doc, "c")) == 3.0);
    CHECK_INT(jj_yaml_type_of(jj_yaml_map_get(doc, "d")), JJ_YAML_BOOL);
    CHECK_INT(jj_yaml_bool(jj_yaml_map_get(doc, "d")), 1);
    CHECK_INT(jj_yaml_type_of(jj_yaml_map_get(doc, "e")), JJ_YAML_NULL);
    CHECK_INT(jj_yaml_type_of(jj_yaml_map_get(doc, "f")), JJ_YAML_STRING);
    CHECK_INT(jj_yaml_type_of(jj_yaml_map_get(doc, "g")), JJ_YAML_INT);
    jj_yaml_free(doc);

    jj_error err;
    CHECK_INT(parse_err("x: 1\ny: !!int abc\n", &err), JJ_EYAML_PARSE);
    CHECK_INT(err.line, 2);
    CHECK_INT(err.column, 4);
    CHECK(strstr(err.message, "!!int") != NULL);
    CHECK(strstr(err.message, "abc") != NULL);
    CHECK_INT(parse_err("!!bool maybe\n", &err), JJ_EYAML_PARSE);
}

/* --- parsing ------------------------------------------------------------- */

static void test_structure_and_marks(void)
{
    jj_yaml_node *doc = parse_ok("# c\ndefault: amazon\nenvironments:\n  amazon:\n    type: ec2\n"
                                 "    region:\n  seq:\n  - a\n  - 2\n");
    CHECK_INT(jj_yaml_type_of(doc), JJ_YAML_MAP);
    CHECK_INT(jj_yaml_count(doc), 2);
    CHECK_STR(jj_yaml_text(jj_yaml_map_key_at(doc, 0), NULL), "default");
    CHECK_STR(jj_yaml_text(jj_yaml_map_key_at(doc, 1), NULL), "environments");
    CHECK_INT(jj_yaml_mark_of(doc).line, 2);
    CHECK_INT(jj_yaml_mark_of(doc).column, 1);
    const jj_yaml_node *def = jj_yaml_map_get(doc, "default");
    CHECK_INT(jj_yaml_mark_of(def).line, 2);
    CHECK_INT(jj_yaml_mark_of(def).column, 10);
    CHECK_INT(jj_yaml_mark_of(jj_yaml_map_key_at(doc, 1)).line, 3);
    const jj_yaml_node *envs = jj_yaml_map_get(doc, "environments");
    const jj_yaml_node *amazon = jj_yaml_map_get(envs, "amazon");
    CHECK_STR(jj_yaml_map_get_string(amazon, "type"), "ec2");
    const jj_yaml_node *type = jj_yaml_map_get(amazon, "type");
    CHECK_INT(jj_yaml_mark_of(type).line, 5);
    CHECK_INT(jj_yaml_mark_of(type).column, 11);
    const jj_yaml_node *region = jj_yaml_map_get(amazon, "region");
    CHECK(region != NULL);
    CHECK_INT(jj_yaml_type_of(region), JJ_YAML_NULL);
    CHECK(jj_yaml_map_get(amazon, "missing") == NULL);
    const jj_yaml_node *seq = jj_yaml_map_get(envs, "seq");
    CHECK_INT(jj_yaml_type_of(seq), JJ_YAML_SEQ);
    CHECK_INT(jj_yaml_count(seq), 2);
    CHECK_STR(jj_yaml_text(jj_yaml_seq_at(seq, 0), NULL), "a");
    CHECK_INT(jj_yaml_int(jj_yaml_seq_at(seq, 1)), 2);
    CHECK_INT(jj_yaml_mark_of(jj_yaml_seq_at(seq, 1)).line, 9);
    CHECK(jj_yaml_seq_at(seq, 2) == NULL);
    jj_yaml_free(doc);
}

static void test_empty_stream_and_documents(void)
{
    jj_yaml_node *n = parse_ok("");
    CHECK_INT(jj_yaml_type_of(n), JJ_YAML_NULL);
    jj_yaml_free(n);
    n = parse_ok("# only a comment\n");
    CHECK_INT(jj_yaml_type_of(n), JJ_YAML_NULL);
    jj_yaml_free(n);
    n = parse_ok("--- first\n--- [second\n");
    CHECK_STR(jj_yaml_text(n, NULL), "first");
    jj_yaml_free(n);
    n = parse_ok("~\n");
    CHECK_INT(jj_yaml_type_of(n), JJ_YAML_NULL);
    jj_yaml_free(n);
}

static void test_parse_error_positions(void)
{
    jj_error err;
    CHECK_INT(parse_err("a: 1\nb: [1, 2\nc: 3\n", &err), JJ_EYAML_PARSE);
    CHECK_STR(err.file, "bad.yaml");
    CHECK(err.line >= 2);
    CHECK(err.column > 0);
    CHECK(strlen(err.message) > 0);

    CHECK_INT(parse_err("a:\n  b: 1\n c: 2\n", &err), JJ_EYAML_PARSE);
    CHECK_INT(err.line, 3);
    /* libyaml's problem and its context both reach the message */
    CHECK(strstr(err.message, "did not find expected key") != NULL);
    CHECK(strstr(err.message, "while parsing a block mapping") != NULL);

    CHECK_INT(parse_err("a: \"unterminated\n", &err), JJ_EYAML_PARSE);
    CHECK(err.line >= 1);

    CHECK_INT(parse_err("a: 1\n\tb: 2\n", &err), JJ_EYAML_PARSE);
    CHECK_INT(err.line, 2);

    /* reader errors (bad UTF-8) are located too */
    CHECK_INT(parse_err("a: 1\nb: \xff\xfe\n", &err), JJ_EYAML_PARSE);
    CHECK_INT(err.line, 2);
    CHECK_INT(err.column, 4);

    CHECK_INT(parse_err("? [a, b]\n: c\n", &err), JJ_EYAML_PARSE);
    CHECK(strstr(err.message, "scalars") != NULL);
}

static void test_duplicate_keys(void)
{
    jj_error err;
    CHECK_INT(parse_err("a: 1\nb: 2\na: 3\n", &err), JJ_EYAML_PARSE);
    CHECK_STR(err.message, "mapping key \"a\" already defined at line 1");
    CHECK_INT(err.line, 3);
    CHECK_INT(err.column, 1);
    CHECK_STR(err.file, "bad.yaml");

    CHECK_INT(parse_err("x:\n  k: 1\n  k: 1\n", &err), JJ_EYAML_PARSE);
    CHECK_INT(err.line, 3);
    CHECK(strstr(err.message, "line 2") != NULL);

    /* keys compare by value: 1 and 0x1 are the same int; "1" is a string */
    CHECK_INT(parse_err("1: a\n0x1: b\n", &err), JJ_EYAML_PARSE);
    jj_yaml_node *n = parse_ok("1: a\n\"1\": b\n");
    CHECK_INT(jj_yaml_count(n), 2);
    jj_yaml_free(n);

    /* many keys: the hashed check still finds the late duplicate */
    char buf[64 * 1024];
    size_t len = 0;
    for (int i = 0; i < 2000; i++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "k%d: %d\n", i, i);
    snprintf(buf + len, sizeof buf - len, "k1234: again\n");
    CHECK_INT(parse_err(buf, &err), JJ_EYAML_PARSE);
    CHECK_INT(err.line, 2001);
    CHECK(strstr(err.message, "line 1235") != NULL);
}

static void test_anchors_and_aliases(void)
{
    jj_yaml_node *doc = parse_ok("base: &b {x: 1, y: [a, b]}\ncopy: *b\ns: &s hello\nt: *s\n");
    const jj_yaml_node *base = jj_yaml_map_get(doc, "base");
    const jj_yaml_node *copy = jj_yaml_map_get(doc, "copy");
    CHECK(base != copy);
    CHECK(jj_yaml_equal(base, copy));
    CHECK_INT(jj_yaml_mark_of(copy).line, 2);
    CHECK_STR(jj_yaml_map_get_string(doc, "t"), "hello");
    jj_yaml_free(doc);

    jj_error err;
    CHECK_INT(parse_err("a: *nope\n", &err), JJ_EYAML_PARSE);
    CHECK(strstr(err.message, "unknown anchor \"nope\"") != NULL);
    CHECK_INT(parse_err("a: &x [1, *x]\n", &err), JJ_EYAML_PARSE);
    CHECK(strstr(err.message, "contains itself") != NULL);
}

static void test_merge_keys(void)
{
    jj_yaml_node *doc = parse_ok("defaults: &d\n  type: ec2\n  region: us-east-1\n"
                                 "other: &o {region: eu-west-1, zone: a}\n"
                                 "env:\n  <<: *d\n  region: ap-1\n"
                                 "both:\n  <<: [*o, *d]\n"
                                 "inline:\n  <<: {k: v}\n  j: w\n");
    const jj_yaml_node *env = jj_yaml_map_get(doc, "env");
    CHECK_STR(jj_yaml_map_get_string(env, "type"), "ec2");
    CHECK_STR(jj_yaml_map_get_string(env, "region"), "ap-1"); /* explicit key wins */
    CHECK(jj_yaml_map_get(env, "<<") == NULL);
    const jj_yaml_node *both = jj_yaml_map_get(doc, "both");
    CHECK_STR(jj_yaml_map_get_string(both, "region"), "eu-west-1"); /* earlier source wins */
    CHECK_STR(jj_yaml_map_get_string(both, "zone"), "a");
    CHECK_STR(jj_yaml_map_get_string(both, "type"), "ec2");
    const jj_yaml_node *in = jj_yaml_map_get(doc, "inline");
    CHECK_STR(jj_yaml_map_get_string(in, "k"), "v");
    CHECK_STR(jj_yaml_map_get_string(in, "j"), "w");
    jj_yaml_free(doc);

    /* a quoted "<<" is an ordinary key */
    doc = parse_ok("\"<<\": 1\n");
    CHECK_INT(jj_yaml_int(jj_yaml_map_get(doc, "<<")), 1);
    jj_yaml_free(doc);

    jj_error err;
    CHECK_INT(parse_err("a:\n  <<: 3\n", &err), JJ_EYAML_PARSE);
    CHECK(strstr(err.message, "merge") != NULL);
}

/* Found by fuzz_yaml: an anchor on a `<<` key outlived the key. */
static void test_anchor_on_merge_key(void)
{
    jj_yaml_node *doc = parse_ok("a: &a {x: 1}\nb:\n  &k <<: *a\nc: *k\nd:\n  &m <<: {y: 2}\ne: *m\n");
    CHECK_STR(jj_yaml_map_get_string(doc, "c"), "<<");
    CHECK_STR(jj_yaml_map_get_string(doc, "e"), "<<");
    CHECK_INT(jj_yaml_int(jj_yaml_map_get(jj_yaml_map_get(doc, "b"), "x")), 1);
    CHECK_INT(jj_yaml_int(jj_yaml_map_get(jj_yaml_map_get(doc, "d"), "y")), 2);
    jj_yaml_free(doc);
}

static void test_alias_bomb_is_bounded(void)
{
    const char *bomb = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
                       "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                       "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                       "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                       "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                       "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                       "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
                       "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
                       "i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]\n";
    jj_error err;
    CHECK_INT(parse_err(bomb, &err), JJ_EYAML_PARSE);
    CHECK(strstr(err.message, "more than 100000 nodes") != NULL);
    CHECK(err.line >= 5);

    /* a caller-chosen limit applies too */
    jj_yaml_limits small = {.max_nodes = 20};
    jj_yaml_node *n = NULL;
    const char *doc = "a: &a [1, 2, 3, 4, 5]\nb: *a\nc: *a\n";
    CHECK_INT(jj_yaml_parse(doc, strlen(doc), "s", &small, &n, &err), JJ_EYAML_PARSE);
    CHECK_INT(err.line, 3);
    small.max_nodes = 100;
    CHECK_INT(jj_yaml_parse(doc, strlen(doc), "s", &small, &n, &err), 0);
    jj_yaml_free(n);
}

static void test_depth_is_bounded(void)
{
    char deep[2048];
    size_t i = 0;
    for (; i < 300; i++)
        deep[i] = '[';
    deep[i] = '\0';
    jj_error err;
    CHECK_INT(parse_err(deep, &err), JJ_EYAML_PARSE);
    CHECK(strstr(err.message, "nested") != NULL);

    /* aliases cannot smuggle depth past the limit */
    jj_yaml_limits lim = {.max_depth = 4};
    jj_yaml_node *n = NULL;
    const char *doc = "a: &a [[[1]]]\nb: [*a]\n";
    CHECK_INT(jj_yaml_parse(doc, strlen(doc), "d", &lim, &n, &err), JJ_EYAML_PARSE);
    CHECK_INT(err.line, 2);
    lim.max_depth = 5;
    CHECK_INT(jj_yaml_parse(doc, strlen(doc), "d", &lim, &n, &err), 0);
    jj_yaml_free(n);
}

/* --- the published environments.yaml examples ------------------------------ */

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    *len = n;
    return buf;
}

static void test_conformance_environments(void)
{
    const char *shared = getenv("JUJU_TEST_SHARED");
    CHECK(shared != NULL);
    if (!shared)
        return;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/conformance/environments", shared);
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    if (!d)
        return;
    int parsed = 0, refused = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t nl = strlen(e->d_name);
        if (nl < 5 || strcmp(e->d_name + nl - 5, ".yaml") != 0)
            continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t len = 0;
        char *text = slurp(path, &len);
        CHECK(text != NULL);
        if (!text)
            continue;
        jj_error err;
        jj_yaml_node *n = NULL;
        int rc = jj_yaml_parse(text, len, e->d_name, NULL, &n, &err);
        if (strcmp(e->d_name, "charms-environments.yaml") == 0) {
            CHECK_INT(rc, JJ_EYAML_PARSE);
            CHECK(err.line > 0);
            CHECK_STR(err.file, "charms-environments.yaml");
            refused++;
        } else {
            if (rc != 0)
                fprintf(stderr, "  %s:%d:%d: %s\n", err.file, err.line, err.column, err.message);
            CHECK_INT(rc, 0);
            /* every parsed file survives emit and re-parse unchanged */
            char *out = rc == 0 ? emit_ok(n) : NULL;
            if (out) {
                jj_yaml_node *again = NULL;
                CHECK_INT(jj_yaml_parse(out, strlen(out), "emitted", NULL, &again, &err), 0);
                CHECK(jj_yaml_equal(n, again));
                jj_yaml_free(again);
                free(out);
            }
            parsed++;
        }
        jj_yaml_free(n);
        free(text);
    }
    closedir(d);
    CHECK(parsed >= 25);
    CHECK_INT(refused, 1);
}

static void test_juju_init_boilerplate(void)
{
    const char *shared = getenv("JUJU_TEST_SHARED");
    if (!shared)
        return;
    char path[1024];
    snprintf(path, sizeof path, "%s/conformance/environments/juju-init-1.25.0.yaml", shared);
    size_t len;
    char *text = slurp(path, &len);
    CHECK(text != NULL);
    if (!text)
        return;
    jj_error err;
    jj_yaml_node *doc = NULL;
    CHECK_INT(jj_yaml_parse(text, len, path, NULL, &doc, &err), 0);
    CHECK_STR(jj_yaml_map_get_string(doc, "default"), "amazon");
    const jj_yaml_node *envs = jj_yaml_map_get(doc, "environments");
    CHECK_INT(jj_yaml_count(envs), 11);
    CHECK_STR(jj_yaml_map_get_string(jj_yaml_map_get(envs, "manual"), "type"), "manual");
    CHECK_STR(jj_yaml_map_get_string(jj_yaml_map_get(envs, "vmware"), "type"), "vsphere");
    jj_yaml_free(doc);
    free(text);
}

/* --- building and emitting ------------------------------------------------ */

static void test_build_and_emit(void)
{
    jj_error err;
    jj_yaml_node *root = jj_yaml_new_map();
    CHECK_INT(jj_yaml_map_set(root, "user", jj_yaml_new_string("admin"), &err), 0);
    CHECK_INT(jj_yaml_map_set(root, "password", jj_yaml_new_string("true"), &err), 0);
    jj_yaml_node *servers = jj_yaml_new_seq();
    CHECK_INT(jj_yaml_seq_append(servers, jj_yaml_new_string("10.0.0.1:17070"), &err), 0);
    CHECK_INT(jj_yaml_map_set(root, "state-servers", servers, &err), 0);
    CHECK_INT(jj_yaml_map_set(root, "empty-list", jj_yaml_new_seq(), &err), 0);
    CHECK_INT(jj_yaml_map_set(root, "ca-cert", jj_yaml_new_string("-----BEGIN-----\nabc\n"), &err), 0);
    jj_yaml_node *cfg = jj_yaml_new_map();
    CHECK_INT(jj_yaml_map_set(cfg, "api-port", jj_yaml_new_int(17070), &err), 0);
    CHECK_INT(jj_yaml_map_set(cfg, "development", jj_yaml_new_bool(0), &err), 0);
    CHECK_INT(jj_yaml_map_set(cfg, "default-series", jj_yaml_new_string(""), &err), 0);
    CHECK_INT(jj_yaml_map_set(cfg, "ratio", jj_yaml_new_float(2), &err), 0);
    CHECK_INT(jj_yaml_map_set(cfg, "nothing", jj_yaml_new_null(), &err), 0);
    CHECK_INT(jj_yaml_map_set(cfg, "no-newline", jj_yaml_new_string("a\nb"), &err), 0);
    CHECK_INT(jj_yaml_map_set(root, "bootstrap-config", cfg, &err), 0);
    CHECK_INT(jj_yaml_map_set(root, "empty-map", jj_yaml_new_map(), &err), 0);
    /* replacing keeps the key's place */
    CHECK_INT(jj_yaml_map_set(root, "user", jj_yaml_new_string("bob"), &err), 0);

    char *out = emit_ok(root);
    CHECK_STR(out, "user: bob\n"
                   "password: \"true\"\n"
                   "state-servers:\n"
                   "- 10.0.0.1:17070\n"
                   "empty-list: []\n"
                   "ca-cert: |\n"
                   "  -----BEGIN-----\n"
                   "  abc\n"
                   "bootstrap-config:\n"
                   "  api-port: 17070\n"
                   "  development: false\n"
                   "  default-series: \"\"\n"
                   "  ratio: 2.0\n"
                   "  nothing: null\n"
                   "  no-newline: |-\n"
                   "    a\n"
                   "    b\n"
                   "empty-map: {}\n");
    jj_yaml_node *again = NULL;
    CHECK_INT(jj_yaml_parse(out, strlen(out), "x", NULL, &again, &err), 0);
    CHECK(jj_yaml_equal(root, again));
    jj_yaml_free(again);
    free(out);

    CHECK_INT(jj_yaml_map_delete(root, "password"), 1);
    CHECK_INT(jj_yaml_map_delete(root, "password"), 0);
    CHECK(jj_yaml_map_get(root, "password") == NULL);
    CHECK_STR(jj_yaml_text(jj_yaml_map_key_at(root, 1), NULL), "state-servers");
    jj_yaml_free(root);
}

static void test_strings_that_need_quotes_round_trip(void)
{
    static const char *const tricky[] = {
        "true", "True", "yes", "no", "on", "OFF", "y", "n", "12", "-1", "0x10", "0755", "1.5",
        "1e3", ".inf", ".nan", "null", "Null", "~", "", " lead", "trail ", "a: b", "a #b",
        "#c", "- x", "-", "?", ":", "key:", "[x]", "{x}", "*a", "&a", "!t", "|", ">", "'q'",
        "\"dq\"", "%p", "@a", "`b", "<<", "---", "...", "tab\there", "nul\x01", "\xc3\xa9t\xc3\xa9",
        "  \n  indented first line\n", "trailing space \nnext\n", "x\n\n\n", "\n", "a,b",
        "http://example.com:8080/path?q=1#frag", "<root>=WARNING;unit=DEBUG", "ssh-rsa AAAA x@y",
        "C:\\path", "back\\slash", "14.04", "1_000",
    };
    for (size_t i = 0; i < sizeof tricky / sizeof tricky[0]; i++) {
        jj_error err;
        jj_yaml_node *map = jj_yaml_new_map();
        jj_yaml_map_set(map, tricky[i], jj_yaml_new_string(tricky[i]), &err);
        jj_yaml_node *seq = jj_yaml_new_seq();
        jj_yaml_seq_append(seq, jj_yaml_new_string(tricky[i]), &err);
        jj_yaml_map_set(map, "in-seq", seq, &err);
        char *out = emit_ok(map);
        jj_yaml_node *back = NULL;
        int rc = out ? jj_yaml_parse(out, strlen(out), "rt", NULL, &back, &err) : -1;
        if (rc != 0 || !jj_yaml_equal(map, back))
            fprintf(stderr, "  round trip of \"%s\" failed: %s\n", tricky[i], out ? out : "");
        CHECK_INT(rc, 0);
        CHECK(jj_yaml_equal(map, back));
        jj_yaml_free(back);
        jj_yaml_free(map);
        free(out);
    }
}

static void test_scalar_types_round_trip(void)
{
    jj_error err;
    jj_yaml_node *seq = jj_yaml_new_seq();
    jj_yaml_seq_append(seq, jj_yaml_new_int(INT64_MIN), &err);
    jj_yaml_seq_append(seq, jj_yaml_new_int(INT64_MAX), &err);
    jj_yaml_seq_append(seq, jj_yaml_new_float(0.1), &err);
    jj_yaml_seq_append(seq, jj_yaml_new_float(-0.0), &err);
    jj_yaml_seq_append(seq, jj_yaml_new_float(1e300), &err);
    jj_yaml_seq_append(seq, jj_yaml_new_float(1.0 / 3.0), &err);
    jj_yaml_seq_append(seq, jj_yaml_new_float(INFINITY), &err);
    jj_yaml_seq_append(seq, jj_yaml_new_float(-INFINITY), &err);
    jj_yaml_seq_append(seq, jj_yaml_new_float(NAN), &err);
    jj_yaml_seq_append(seq, jj_yaml_new_bool(1), &err);
    jj_yaml_seq_append(seq, jj_yaml_new_null(), &err);
    jj_yaml_seq_append(seq, jj_yaml_new_stringn("a\0b", 3), &err);
    char *out = emit_ok(seq);
    jj_yaml_node *back = NULL;
    CHECK_INT(jj_yaml_parse(out, strlen(out), "rt", NULL, &back, &err), 0);
    CHECK(jj_yaml_equal(seq, back));
    size_t len;
    const char *s = jj_yaml_text(jj_yaml_seq_at(back, 11), &len);
    CHECK_INT(len, 3);
    CHECK(s && memcmp(s, "a\0b", 3) == 0);
    CHECK(strstr(out, "- 0.1\n") != NULL);
    CHECK(strstr(out, "- .inf\n- -.inf\n- .nan\n") != NULL);
    jj_yaml_free(back);
    jj_yaml_free(seq);
    free(out);

    /* keys that are not strings keep their types */
    jj_yaml_node *doc = parse_ok("1: one\ntrue: yes\n~: nothing\n1.5: x\n");
    out = emit_ok(doc);
    CHECK_STR(out, "1: one\ntrue: true\nnull: nothing\n1.5: x\n");
    jj_yaml_node *again = NULL;
    CHECK_INT(jj_yaml_parse(out, strlen(out), "rt", NULL, &again, &err), 0);
    CHECK(jj_yaml_equal(doc, again));
    CHECK(jj_yaml_map_get(doc, "1") != NULL); /* looked up by text */
    jj_yaml_free(again);
    jj_yaml_free(doc);
    free(out);
}

static void test_emit_errors(void)
{
    jj_error err;
    char *out = (char *)1;
    jj_yaml_node *bad = jj_yaml_new_string("\xff\xfe");
    CHECK_INT(jj_yaml_emit(bad, &out, NULL, &err), JJ_EYAML_EMIT);
    CHECK(out == NULL);
    CHECK(strstr(err.message, "UTF-8") != NULL);
    jj_yaml_free(bad);

    jj_yaml_node *root = jj_yaml_new_seq(), *cur = root;
    for (int i = 0; i < JJ_YAML_DEFAULT_MAX_DEPTH + 5; i++) {
        jj_yaml_node *next = jj_yaml_new_seq();
        jj_yaml_seq_append(cur, next, &err);
        cur = next;
    }
    CHECK_INT(jj_yaml_emit(root, &out, NULL, &err), JJ_EYAML_EMIT);
    jj_yaml_free(root);

    CHECK_INT(jj_yaml_emit(NULL, &out, NULL, &err), JJ_EINVAL);
}

static void test_builder_misuse(void)
{
    jj_error err;
    jj_yaml_node *s = jj_yaml_new_string("x");
    CHECK_INT(jj_yaml_seq_append(s, jj_yaml_new_int(1), &err), JJ_EINVAL);
    CHECK_INT(jj_yaml_map_set(s, "k", jj_yaml_new_int(1), &err), JJ_EINVAL);
    jj_yaml_node *m = jj_yaml_new_map();
    CHECK_INT(jj_yaml_map_put(m, jj_yaml_new_seq(), jj_yaml_new_int(1), &err), JJ_EINVAL);
    CHECK_INT(jj_yaml_map_put(m, jj_yaml_new_int(7), jj_yaml_new_int(1), &err), 0);
    CHECK_INT(jj_yaml_map_put(m, jj_yaml_new_int(7), jj_yaml_new_int(2), &err), 0);
    CHECK_INT(jj_yaml_count(m), 1);
    CHECK_INT(jj_yaml_int(jj_yaml_map_get(m, "7")), 2);
    CHECK_INT(jj_yaml_count(s), 0);
    CHECK(jj_yaml_text(m, NULL) == NULL);
    jj_yaml_set_mark(s, 4, 2);
    jj_yaml_node *c = jj_yaml_copy(s);
    CHECK_INT(jj_yaml_mark_of(c).line, 4);
    CHECK_INT(jj_yaml_mark_of(c).column, 2);
    jj_yaml_free(c);
    jj_yaml_free(s);
    jj_yaml_free(m);
    jj_yaml_free(NULL);
}

int main(void)
{
    RUN(test_plain_resolution_table);
    RUN(test_float_specials);
    RUN(test_quoted_and_block_are_strings);
    RUN(test_explicit_tags);
    RUN(test_structure_and_marks);
    RUN(test_empty_stream_and_documents);
    RUN(test_parse_error_positions);
    RUN(test_duplicate_keys);
    RUN(test_anchors_and_aliases);
    RUN(test_merge_keys);
    RUN(test_anchor_on_merge_key);
    RUN(test_alias_bomb_is_bounded);
    RUN(test_depth_is_bounded);
    RUN(test_conformance_environments);
    RUN(test_juju_init_boilerplate);
    RUN(test_build_and_emit);
    RUN(test_strings_that_need_quotes_round_trip);
    RUN(test_scalar_types_round_trip);
    RUN(test_emit_errors);
    RUN(test_builder_misuse);
    return check_summary();
}
