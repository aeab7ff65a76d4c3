/* test_json.c: core/json parsing (errors with positions, escapes,
 * surrogates, big numbers, duplicate keys, depth) and Go-exact emission. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "json.h"

static jj_yaml_node *parse_ok(const char *text)
{
    jj_yaml_node *n = NULL;
    jj_error err;
    int rc = jj_json_parse(text, strlen(text), "t.json", &n, &err);
    if (rc != 0)
        fprintf(stderr, "unexpected parse failure of %s: %s\n", text, err.message);
    CHECK_INT(rc, 0);
    return n;
}

/* Parses text expecting failure; checks message, line and column. */
static void parse_fails(const char *text, size_t len, const char *message, int line, int column)
{
    jj_yaml_node *n = (jj_yaml_node *)1;
    jj_error err;
    int rc = jj_json_parse(text, len, "bad.json", &n, &err);
    CHECK_INT(rc, JJ_EINVAL);
    CHECK(n == NULL);
    CHECK_STR(err.message, message);
    CHECK_STR(err.file, "bad.json");
    CHECK_INT(err.line, line);
    CHECK_INT(err.column, column);
}

static char *emit(const jj_yaml_node *n, int indent)
{
    char *out = NULL;
    size_t len = 0;
    jj_error err;
    int rc = jj_json_emit(n, indent, &out, &len, &err);
    CHECK_INT(rc, 0);
    if (out)
        CHECK_INT(len, strlen(out));
    return out;
}

/* parse(text) then emit compact must give expect. */
static void roundtrip(const char *text, const char *expect)
{
    jj_yaml_node *n = parse_ok(text);
    char *out = emit(n, 0);
    CHECK_STR(out, expect);
    free(out);
    jj_yaml_free(n);
}

static void test_scalars(void)
{
    jj_yaml_node *n = parse_ok(" true ");
    CHECK_INT(jj_yaml_type_of(n), JJ_YAML_BOOL);
    CHECK_INT(jj_yaml_bool(n), 1);
    jj_yaml_free(n);
    n = parse_ok("null");
    CHECK_INT(jj_yaml_type_of(n), JJ_YAML_NULL);
    jj_yaml_free(n);
    n = parse_ok("-12");
    CHECK_INT(jj_yaml_type_of(n), JJ_YAML_INT);
    CHECK_INT(jj_yaml_int(n), -12);
    jj_yaml_free(n);
    n = parse_ok("1.5e2");
    CHECK_INT(jj_yaml_type_of(n), JJ_YAML_FLOAT);
    CHECK(jj_yaml_float(n) == 150.0);
    jj_yaml_free(n);
    n = parse_ok("-0");
    CHECK_INT(jj_yaml_type_of(n), JJ_YAML_FLOAT);
    CHECK(signbit(jj_yaml_float(n)));
    jj_yaml_free(n);
}

static void test_big_integers(void)
{
    jj_yaml_node *n = parse_ok("9223372036854775807");
    CHECK_INT(jj_yaml_type_of(n), JJ_YAML_INT);
    CHECK(jj_yaml_int(n) == INT64_MAX);
    jj_yaml_free(n);
    n = parse_ok("-9223372036854775808");
    CHECK_INT(jj_yaml_type_of(n), JJ_YAML_INT);
    CHECK(jj_yaml_int(n) == INT64_MIN);
    jj_yaml_free(n);
    n = parse_ok("9223372036854775808"); /* one past: a float */
    CHECK_INT(jj_yaml_type_of(n), JJ_YAML_FLOAT);
    CHECK(jj_yaml_float(n) == 9223372036854775808.0);
    jj_yaml_free(n);
    roundtrip("{\"size\":9223372036854775807}", "{\"size\":9223372036854775807}");
    parse_fails("[1e400]", 7, "number 1e400 is out of range", 1, 2);
}

static void test_strings_and_escapes(void)
{
    jj_yaml_node *n = parse_ok("\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u00e9\\u20AC\"");
    size_t len;
    const char *s = jj_yaml_text(n, &len);
    CHECK_STR(s, "a\"b\\c/d\b\f\n\r\t\xc3\xa9\xe2\x82\xac");
    jj_yaml_free(n);
    /* a surrogate pair is one 4-byte character */
    n = parse_ok("\"\\ud83d\\ude00\"");
    CHECK_STR(jj_yaml_text(n, &len), "\xf0\x9f\x98\x80");
    CHECK_INT(len, 4);
    jj_yaml_free(n);
    /* \u0000 is kept: strings carry their length */
    n = parse_ok("\"a\\u0000b\"");
    s = jj_yaml_text(n, &len);
    CHECK_INT(len, 3);
    CHECK(memcmp(s, "a\0b", 3) == 0);
    jj_yaml_free(n);
    /* raw UTF-8 passes through */
    n = parse_ok("\"\xe6\x97\xa5\xe6\x9c\xac\"");
    CHECK_STR(jj_yaml_text(n, NULL), "\xe6\x97\xa5\xe6\x9c\xac");
    jj_yaml_free(n);
}

static void test_string_errors(void)
{
    parse_fails("\"\\ud83d\"", 8, "invalid \\u escape: lone high surrogate", 1, 2);
    parse_fails("\"\\ud83dx\"", 9, "invalid \\u escape: lone high surrogate", 1, 2);
    parse_fails("\"\\ud83d\\u0041\"", 14, "invalid \\u escape: lone high surrogate", 1, 2);
    parse_fails("\"ab\\ude00\"", 10, "invalid \\u escape: lone low surrogate", 1, 4);
    parse_fails("\"\\u12g4\"", 8, "invalid character 'g' in \\u hexadecimal character escape", 1, 6);
    parse_fails("\"\\x\"", 4, "invalid character 'x' in string escape code", 1, 3);
    parse_fails("\"a\nb\"", 5, "invalid character '\\n' in string literal", 1, 3);
    parse_fails("\"a\x01\"", 4, "invalid character '\\x01' in string literal", 1, 3);
    parse_fails("\"\xff\"", 3, "invalid UTF-8 in string literal", 1, 2);
    parse_fails("\"\xc0\xaf\"", 4, "invalid UTF-8 in string literal", 1, 2);       /* overlong */
    parse_fails("\"\xed\xa0\x80\"", 5, "invalid UTF-8 in string literal", 1, 2);   /* surrogate */
    parse_fails("\"\xf4\x90\x80\x80\"", 6, "invalid UTF-8 in string literal", 1, 2); /* > U+10FFFF */
    parse_fails("\"abc", 4, "unexpected end of JSON input", 1, 5);
}

static void test_syntax_errors(void)
{
    parse_fails("", 0, "unexpected end of JSON input", 1, 1);
    parse_fails("  \n ", 4, "unexpected end of JSON input", 2, 2);
    parse_fails("{\n  \"a\": 1,\n  \"b\" 2\n}", 21, "invalid character '2' after object key", 3, 7);
    parse_fails("[1, 2,]", 7, "invalid character ']' looking for beginning of value", 1, 7);
    parse_fails("{\"a\":1,}", 8, "invalid character '}' looking for beginning of object key string", 1, 8);
    parse_fails("{\"a\":1 \"b\":2}", 13, "invalid character '\"' after object key:value pair", 1, 8);
    parse_fails("[1 2]", 5, "invalid character '2' after array element", 1, 4);
    parse_fails("01", 2, "invalid character '1' after top-level value", 1, 2);
    parse_fails("1 2", 3, "invalid character '2' after top-level value", 1, 3);
    parse_fails("-x", 2, "invalid character 'x' in numeric literal", 1, 2);
    parse_fails("1.e5", 4, "invalid character 'e' after decimal point in numeric literal", 1, 3);
    parse_fails("1e+", 3, "unexpected end of JSON input", 1, 4);
    parse_fails("1ex", 3, "invalid character 'x' in exponent of numeric literal", 1, 3);
    parse_fails("trUe", 4, "invalid character 'U' in literal true (expecting 'u')", 1, 3);
    parse_fails("nul", 3, "unexpected end of JSON input", 1, 4);
    parse_fails("{'a':1}", 7, "invalid character '\\'' looking for beginning of object key string", 1, 2);
    parse_fails("// c\n1", 6, "invalid character '/' looking for beginning of value", 1, 1);
    parse_fails("\xef\xbb\xbf{}", 5, "invalid character '\xef\xbb\xbf' looking for beginning of value", 1, 1);
    parse_fails("NaN", 3, "invalid character 'N' looking for beginning of value", 1, 1);
    /* columns count characters, not bytes */
    parse_fails("[\"\xc3\xa9\xc3\xa9\", x]", 11, "invalid character 'x' looking for beginning of value", 1, 8);
    /* a NUL byte inside the buffer is just a bad character */
    parse_fails("[1,\0]", 5, "invalid character '\\x00' looking for beginning of value", 1, 4);
}

static void test_depth_limit(void)
{
    char deep[JJ_JSON_MAX_DEPTH * 2 + 2];
    for (int i = 0; i < JJ_JSON_MAX_DEPTH; i++) {
        deep[i] = '[';
        deep[JJ_JSON_MAX_DEPTH + i] = ']';
    }
    jj_yaml_node *n = NULL;
    jj_error err;
    CHECK_INT(jj_json_parse(deep, JJ_JSON_MAX_DEPTH * 2, NULL, &n, &err), 0);
    jj_yaml_free(n);
    char deeper[(JJ_JSON_MAX_DEPTH + 1) * 2];
    memset(deeper, '[', JJ_JSON_MAX_DEPTH + 1);
    memset(deeper + JJ_JSON_MAX_DEPTH + 1, ']', JJ_JSON_MAX_DEPTH + 1);
    n = NULL;
    CHECK_INT(jj_json_parse(deeper, sizeof deeper, NULL, &n, &err), JJ_EINVAL);
    CHECK(n == NULL);
    CHECK_STR(err.message, "exceeded max depth of 256");
    CHECK_INT(err.column, JJ_JSON_MAX_DEPTH + 1);
}

static void test_marks(void)
{
    jj_yaml_node *n = parse_ok("{\n  \"a\": [1,\n    \"x\"],\n  \"\xc3\xa9\": true}");
    jj_yaml_mark m = jj_yaml_mark_of(n);
    CHECK_INT(m.line, 1);
    CHECK_INT(m.column, 1);
    jj_yaml_node *a = jj_yaml_map_get(n, "a");
    CHECK_INT(jj_yaml_mark_of(a).line, 2);
    CHECK_INT(jj_yaml_mark_of(a).column, 8);
    CHECK_INT(jj_yaml_mark_of(jj_yaml_seq_at(a, 1)).line, 3);
    CHECK_INT(jj_yaml_mark_of(jj_yaml_seq_at(a, 1)).column, 5);
    CHECK_INT(jj_yaml_mark_of(jj_yaml_map_key_at(n, 1)).line, 4);
    CHECK_INT(jj_yaml_mark_of(jj_yaml_map_key_at(n, 1)).column, 3);
    CHECK_INT(jj_yaml_mark_of(jj_yaml_map_value_at(n, 1)).column, 8);
    jj_yaml_free(n);
}

static void test_duplicate_keys(void)
{
    jj_yaml_node *n = parse_ok("{\"a\":1,\"b\":2,\"a\":3}");
    CHECK_INT(jj_yaml_count(n), 2);
    CHECK_STR(jj_yaml_text(jj_yaml_map_key_at(n, 0), NULL), "a");
    CHECK_INT(jj_yaml_int(jj_yaml_map_value_at(n, 0)), 3);
    CHECK_STR(jj_yaml_text(jj_yaml_map_key_at(n, 1), NULL), "b");
    jj_yaml_free(n);
    /* keys differing only after a NUL are distinct */
    n = parse_ok("{\"a\\u0000x\":1,\"a\\u0000y\":2}");
    CHECK_INT(jj_yaml_count(n), 2);
    jj_yaml_free(n);
}

static void test_emit_compact(void)
{
    roundtrip("{ \"b\" : [ 1 , 2 , {} , [] ], \"a\" : null, \"c\": false }",
              "{\"b\":[1,2,{},[]],\"a\":null,\"c\":false}");
    roundtrip("\"<a href='x'>&amp;</a>\"", "\"\\u003ca href='x'\\u003e\\u0026amp;\\u003c/a\\u003e\"");
    roundtrip("\"q\\\"b\\\\s\\/ \\b\\f\\n\\r\\t\\u0001\\u001f\\u007f\"",
              "\"q\\\"b\\\\s/ \\u0008\\u000c\\n\\r\\t\\u0001\\u001f\x7f\"");
    roundtrip("\"\\u2028\\u2029\xc3\xa9\\ud83d\\ude00\"", "\"\\u2028\\u2029\xc3\xa9\xf0\x9f\x98\x80\"");
    roundtrip("[]", "[]");
    roundtrip("{}", "{}");
    /* invalid UTF-8 in a built string is replaced as Go does */
    jj_yaml_node *s = jj_yaml_new_stringn("a\xff\xe2\x82z", 5);
    char *out = emit(s, 0);
    CHECK_STR(out, "\"a\\ufffd\\ufffd\\ufffdz\"");
    free(out);
    jj_yaml_free(s);
}

static void check_float(double d, const char *expect)
{
    jj_yaml_node *n = jj_yaml_new_float(d);
    char *out = emit(n, 0);
    CHECK_STR(out, expect);
    free(out);
    jj_yaml_free(n);
}

static void test_emit_floats(void)
{
    /* Expected strings are what Go's json.Marshal(float64) prints. */
    check_float(1.5, "1.5");
    check_float(3.0, "3");
    check_float(-0.0, "-0");
    check_float(0.0, "0");
    check_float(0.1, "0.1");
    check_float(0.1 + 0.2, "0.30000000000000004");
    check_float(1e20, "100000000000000000000");
    check_float(1e21, "1e+21");
    check_float(1.5e300, "1.5e+300");
    check_float(0.000001, "0.000001");
    check_float(0.0000001, "1e-7");
    check_float(1.25e-8, "1.25e-8");
    check_float(1e-10, "1e-10");
    check_float(123456789.125, "123456789.125");
    check_float(5e-324, "5e-324");
    check_float(1.7976931348623157e308, "1.7976931348623157e+308");
    check_float(-2.5, "-2.5");
    check_float(9223372036854775808.0, "9223372036854776000"); /* shortest digits, zero-padded */

    jj_error err;
    char *out = (char *)1;
    jj_yaml_node *n = jj_yaml_new_float(NAN);
    CHECK_INT(jj_json_emit(n, 0, &out, NULL, &err), JJ_EINVAL);
    CHECK(out == NULL);
    CHECK_STR(err.message, "json: unsupported value: NaN");
    jj_yaml_free(n);
    n = jj_yaml_new_float(-INFINITY);
    CHECK_INT(jj_json_emit(n, 0, &out, NULL, &err), JJ_EINVAL);
    CHECK_STR(err.message, "json: unsupported value: -Inf");
    jj_yaml_free(n);
}

static void test_emit_indent(void)
{
    jj_yaml_node *n = parse_ok("{\"products\":{\"p\":{\"v\":[1,\"x\"],\"e\":{},\"a\":[]}},\"n\":null}");
    char *out = emit(n, 4);
    CHECK_STR(out, "{\n"
                   "    \"products\": {\n"
                   "        \"p\": {\n"
                   "            \"v\": [\n"
                   "                1,\n"
                   "                \"x\"\n"
                   "            ],\n"
                   "            \"e\": {},\n"
                   "            \"a\": []\n"
                   "        }\n"
                   "    },\n"
                   "    \"n\": null\n"
                   "}");
    free(out);
    out = emit(n, 2);
    CHECK(strncmp(out, "{\n  \"products\": {\n    \"p\"", 25) == 0);
    free(out);
    jj_error err;
    CHECK_INT(jj_json_emit(n, -1, &out, NULL, &err), JJ_EINVAL);
    CHECK_INT(jj_json_emit(n, 17, &out, NULL, &err), JJ_EINVAL);
    jj_yaml_free(n);
}

static void test_emit_built_tree(void)
{
    /* Trees from YAML may have non-string keys: written as their text. */
    jj_error err;
    jj_yaml_node *m = jj_yaml_new_map();
    CHECK_INT(jj_yaml_map_put(m, jj_yaml_new_int(7), jj_yaml_new_string("seven"), &err), 0);
    CHECK_INT(jj_yaml_map_put(m, jj_yaml_new_bool(1), jj_yaml_new_int(-1), &err), 0);
    CHECK_INT(jj_yaml_map_set(m, "x", jj_yaml_new_seq(), &err), 0);
    char *out = emit(m, 0);
    CHECK_STR(out, "{\"7\":\"seven\",\"true\":-1,\"x\":[]}");
    free(out);
    jj_yaml_free(m);
    /* nesting beyond the limit is refused, not recursed into */
    jj_yaml_node *root = jj_yaml_new_seq(), *cur = root;
    for (int i = 0; i < JJ_JSON_MAX_DEPTH + 5; i++) {
        jj_yaml_node *next = jj_yaml_new_seq();
        CHECK_INT(jj_yaml_seq_append(cur, next, &err), 0);
        cur = next;
    }
    out = (char *)1;
    CHECK_INT(jj_json_emit(root, 0, &out, NULL, &err), JJ_EINVAL);
    CHECK(out == NULL);
    jj_yaml_free(root);
}

static void test_roundtrip_file(void)
{
    /* JUJU_TEST_SHARED under ctest; else the checkout's sibling shared/. */
    const char *shared = getenv("JUJU_TEST_SHARED");
    const char *source = getenv("JUJU_TEST_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s%s/conformance/simplestreams/juju-1.25-marshal-expected/"
             "com.ubuntu.juju-released-tools.json", shared ? shared : source ? source : "..",
             shared ? "" : source ? "/../shared" : "/shared");
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    if (!f)
        return;
    static char text[65536];
    size_t len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[len] = '\0';
    jj_yaml_node *n = NULL;
    jj_error err;
    CHECK_INT(jj_json_parse(text, len, path, &n, &err), 0);
    char *out = emit(n, 4);
    /* Go's MarshalIndent output re-emitted byte for byte */
    CHECK_STR(out, text);
    free(out);
    jj_yaml_free(n);
}

static void test_bad_arguments(void)
{
    jj_error err;
    CHECK_INT(jj_json_parse("1", 1, NULL, NULL, &err), JJ_EINVAL);
    jj_yaml_node *n = NULL;
    CHECK_INT(jj_json_parse(NULL, 3, NULL, &n, &err), JJ_EINVAL);
    CHECK_INT(jj_json_emit(NULL, 0, NULL, NULL, &err), JJ_EINVAL);
    char *out = NULL;
    CHECK_INT(jj_json_emit(NULL, 0, &out, NULL, &err), 0); /* NULL node is null */
    CHECK_STR(out, "null");
    free(out);
}

int main(void)
{
    RUN(test_scalars);
    RUN(test_big_integers);
    RUN(test_strings_and_escapes);
    RUN(test_string_errors);
    RUN(test_syntax_errors);
    RUN(test_depth_limit);
    RUN(test_marks);
    RUN(test_duplicate_keys);
    RUN(test_emit_compact);
    RUN(test_emit_floats);
    RUN(test_emit_indent);
    RUN(test_emit_built_tree);
    RUN(test_roundtrip_file);
    RUN(test_bad_arguments);
    return check_summary();
}
