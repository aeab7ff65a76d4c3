/* test_mongo.c: BSON conversion both ways, error mapping, client set-up
 * and the "server unreachable" path (no server needed). */
#include "check.h"
#include "mongo.h"

#include <bson/bson.h>
#include <mongoc/mongoc.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static jj_yaml_node *map_with(const char *key, jj_yaml_node *value)
{
    jj_yaml_node *m = jj_yaml_new_map();
    jj_error err;
    jj_yaml_map_set(m, key, value, &err);
    return m;
}

static void put(jj_yaml_node *m, const char *key, jj_yaml_node *value)
{
    jj_error err;
    CHECK_INT(jj_yaml_map_set(m, key, value, &err), 0);
}

static void test_encode_exact_bytes(void)
{
    /* {a: 1} is the canonical 12-byte document with an int32. */
    jj_yaml_node *doc = map_with("a", jj_yaml_new_int(1));
    uint8_t *out = NULL;
    size_t len = 0;
    jj_error err;
    CHECK_INT(jj_mongo_bson_encode(doc, &out, &len, &err), 0);
    static const uint8_t want[] = {12, 0, 0, 0, 0x10, 'a', 0, 1, 0, 0, 0, 0};
    CHECK_INT(len, sizeof want);
    CHECK(out && memcmp(out, want, sizeof want) == 0);
    free(out);
    jj_yaml_free(doc);
}

static void test_encode_types_and_order(void)
{
    jj_yaml_node *doc = jj_yaml_new_map();
    put(doc, "replSetInitiate", jj_yaml_new_string("first"));
    put(doc, "small", jj_yaml_new_int(-7));
    put(doc, "big", jj_yaml_new_int(INT64_C(1) << 40));
    put(doc, "edge", jj_yaml_new_int(INT32_MAX));
    put(doc, "edge2", jj_yaml_new_int((int64_t)INT32_MAX + 1));
    put(doc, "pi", jj_yaml_new_float(3.5));
    put(doc, "yes", jj_yaml_new_bool(1));
    put(doc, "nothing", jj_yaml_new_null());
    put(doc, "bytes", jj_yaml_new_stringn("\xff\xfe", 2));
    put(doc, "nul", jj_yaml_new_stringn("a\0b", 3));
    jj_yaml_node *seq = jj_yaml_new_seq();
    jj_error err;
    jj_yaml_seq_append(seq, jj_yaml_new_string("x"), &err);
    jj_yaml_seq_append(seq, map_with("k", jj_yaml_new_string("v")), &err);
    put(doc, "list", seq);
    put(doc, "empty", jj_yaml_new_seq());
    put(doc, "aardvark", jj_yaml_new_int(0)); /* stays last: no sorting */

    uint8_t *out = NULL;
    size_t len = 0;
    CHECK_INT(jj_mongo_bson_encode(doc, &out, &len, &err), 0);
    bson_t b;
    CHECK(bson_init_static(&b, out, len));
    bson_iter_t it;
    CHECK(bson_iter_init(&it, &b));
    static const char *const keys[] = {"replSetInitiate", "small", "big", "edge", "edge2", "pi",
                                       "yes", "nothing", "bytes", "nul", "list", "empty",
                                       "aardvark"};
    static const bson_type_t types[] = {BSON_TYPE_UTF8,   BSON_TYPE_INT32,  BSON_TYPE_INT64,
                                        BSON_TYPE_INT32,  BSON_TYPE_INT64,  BSON_TYPE_DOUBLE,
                                        BSON_TYPE_BOOL,   BSON_TYPE_NULL,   BSON_TYPE_BINARY,
                                        BSON_TYPE_BINARY, BSON_TYPE_ARRAY,  BSON_TYPE_ARRAY,
                                        BSON_TYPE_INT32};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        CHECK(bson_iter_next(&it));
        CHECK_STR(bson_iter_key(&it), keys[i]);
        CHECK_INT(bson_iter_type(&it), types[i]);
    }
    CHECK(!bson_iter_next(&it));
    bson_iter_t f;
    CHECK(bson_iter_init(&it, &b) && bson_iter_find_descendant(&it, "list.1.k", &f));
    CHECK_STR(bson_iter_utf8(&f, NULL), "v");
    CHECK(bson_iter_init(&it, &b) && bson_iter_find_descendant(&it, "big", &f));
    CHECK_INT(bson_iter_int64(&f), INT64_C(1) << 40);

    /* And back: the same tree. */
    jj_yaml_node *back = NULL;
    CHECK_INT(jj_mongo_bson_decode(out, len, &back, &err), 0);
    CHECK(jj_yaml_equal(doc, back));
    CHECK_STR(jj_yaml_text(jj_yaml_map_key_at(back, 0), NULL), "replSetInitiate");
    size_t blen = 0;
    const char *bytes = jj_yaml_text(jj_yaml_map_get(back, "nul"), &blen);
    CHECK_INT(blen, 3);
    CHECK(bytes && memcmp(bytes, "a\0b", 3) == 0);
    jj_yaml_free(back);
    free(out);
    jj_yaml_free(doc);
}

static void test_encode_rejects(void)
{
    uint8_t *out = NULL;
    size_t len = 0;
    jj_error err;
    jj_yaml_node *s = jj_yaml_new_string("x");
    CHECK_INT(jj_mongo_bson_encode(s, &out, &len, &err), JJ_EINVAL);
    jj_yaml_free(s);
    CHECK_INT(jj_mongo_bson_encode(NULL, &out, &len, &err), JJ_EINVAL);

    jj_yaml_node *bad_key = jj_yaml_new_map();
    jj_yaml_map_put(bad_key, jj_yaml_new_stringn("a\0b", 3), jj_yaml_new_int(1), &err);
    CHECK_INT(jj_mongo_bson_encode(bad_key, &out, &len, &err), JJ_EINVAL);
    jj_yaml_free(bad_key);

    jj_yaml_node *deep = jj_yaml_new_int(1);
    for (int i = 0; i < JJ_MONGO_MAX_DEPTH + 5; i++)
        deep = map_with("d", deep);
    CHECK_INT(jj_mongo_bson_encode(deep, &out, &len, &err), JJ_EINVAL);
    CHECK(strstr(err.message, "nested") != NULL);
    jj_yaml_free(deep);

    /* Non-string scalar keys use their text. */
    jj_yaml_node *int_key = jj_yaml_new_map();
    jj_yaml_map_put(int_key, jj_yaml_new_int(5), jj_yaml_new_bool(0), &err);
    CHECK_INT(jj_mongo_bson_encode(int_key, &out, &len, &err), 0);
    jj_yaml_node *back = NULL;
    CHECK_INT(jj_mongo_bson_decode(out, len, &back, &err), 0);
    CHECK(jj_yaml_map_get(back, "5") != NULL);
    jj_yaml_free(back);
    free(out);
    jj_yaml_free(int_key);
}

static void test_decode_server_types(void)
{
    bson_t b = BSON_INITIALIZER;
    bson_oid_t oid;
    bson_oid_init_from_string(&oid, "5f1e2d3c4b5a69788796a5b4");
    BSON_APPEND_OID(&b, "_id", &oid);
    BSON_APPEND_DATE_TIME(&b, "when", INT64_C(1446000000123));
    BSON_APPEND_TIMESTAMP(&b, "ts", 1446000000, 7);
    BSON_APPEND_REGEX(&b, "re", "^juju", "i");
    BSON_APPEND_UNDEFINED(&b, "undef");
    BSON_APPEND_MAXKEY(&b, "max");
    bson_decimal128_t d;
    bson_decimal128_from_string("1.5", &d);
    BSON_APPEND_DECIMAL128(&b, "dec", &d);
    BSON_APPEND_CODE(&b, "code", "function(){}");
    BSON_APPEND_SYMBOL(&b, "sym", "s");
    jj_yaml_node *n = NULL;
    jj_error err;
    CHECK_INT(jj_mongo_bson_decode(bson_get_data(&b), b.len, &n, &err), 0);
    CHECK_STR(jj_yaml_map_get_string(n, "_id"), "5f1e2d3c4b5a69788796a5b4");
    CHECK_INT(jj_yaml_int(jj_yaml_map_get(n, "when")), INT64_C(1446000000123));
    jj_yaml_node *ts = jj_yaml_map_get(n, "ts");
    CHECK_INT(jj_yaml_int(jj_yaml_map_get(ts, "t")), 1446000000);
    CHECK_INT(jj_yaml_int(jj_yaml_map_get(ts, "i")), 7);
    CHECK_STR(jj_yaml_map_get_string(n, "re"), "/^juju/i");
    CHECK_INT(jj_yaml_type_of(jj_yaml_map_get(n, "undef")), JJ_YAML_NULL);
    CHECK_INT(jj_yaml_type_of(jj_yaml_map_get(n, "max")), JJ_YAML_NULL);
    CHECK_STR(jj_yaml_map_get_string(n, "dec"), "1.5");
    CHECK_STR(jj_yaml_map_get_string(n, "code"), "function(){}");
    CHECK_STR(jj_yaml_map_get_string(n, "sym"), "s");
    jj_yaml_free(n);
    bson_destroy(&b);
}

static void test_decode_corrupt(void)
{
    jj_yaml_node *n = NULL;
    jj_error err;
    static const uint8_t short_doc[] = {5, 0, 0};
    CHECK_INT(jj_mongo_bson_decode(short_doc, sizeof short_doc, &n, &err), JJ_ECORRUPT);
    /* Length header says 12 but the element claims a string running past
     * the end. */
    static const uint8_t bad[] = {16, 0, 0, 0, 0x02, 'a', 0, 100, 0, 0, 0, 'x', 'y', 0, 0, 0};
    CHECK_INT(jj_mongo_bson_decode(bad, sizeof bad, &n, &err), JJ_ECORRUPT);
    static const uint8_t wrong_len[] = {13, 0, 0, 0, 0x10, 'a', 0, 1, 0, 0, 0, 0};
    CHECK_INT(jj_mongo_bson_decode(wrong_len, sizeof wrong_len, &n, &err), JJ_ECORRUPT);
    CHECK_INT(jj_mongo_bson_decode(NULL, 0, &n, &err), JJ_ECORRUPT);
}

static void test_error_mapping(void)
{
    jj_error err;
    CHECK_INT(jj_mongo_map_error(MONGOC_ERROR_SERVER, 11000, "E11000 duplicate key", "insert juju.x",
                                 &err),
              JJ_EEXIST);
    CHECK_INT(err.lib_code, 11000);
    CHECK(strstr(err.message, "insert juju.x: E11000") == err.message);
    CHECK_INT(jj_mongo_map_error(MONGOC_ERROR_SERVER, 94, "no replset config has been received",
                                 "replSetGetStatus on admin", &err),
              JJ_EMONGO);
    CHECK_INT(err.lib_code, 94);
    CHECK(strstr(err.message, "no replset config") != NULL);
    CHECK(strstr(err.message, "(code 94)") != NULL);
    CHECK_INT(jj_mongo_map_error(MONGOC_ERROR_SERVER_SELECTION,
                                 MONGOC_ERROR_SERVER_SELECTION_FAILURE, "No suitable servers",
                                 "ping", &err),
              JJ_ETIMEOUT);
    CHECK_INT(jj_mongo_map_error(MONGOC_ERROR_STREAM, MONGOC_ERROR_STREAM_SOCKET,
                                 "socket error or timeout", "find", &err),
              JJ_ETIMEOUT);
    CHECK_INT(jj_mongo_map_error(MONGOC_ERROR_CLIENT, MONGOC_ERROR_CLIENT_AUTHENTICATE,
                                 "Authentication failed.", "ping", &err),
              JJ_EMONGO);
    CHECK(strstr(err.message, "authentication failed") != NULL);
    CHECK_INT(jj_mongo_map_error(MONGOC_ERROR_SERVER, 18, "Authentication failed.", "x", &err),
              JJ_EMONGO);
    CHECK(strstr(err.message, "authentication failed") != NULL);
    CHECK_INT(jj_mongo_map_error(MONGOC_ERROR_WRITE_CONCERN, 64, "waiting for replication",
                                 "insert", &err),
              JJ_EMONGO);
    CHECK_INT(jj_mongo_map_error(MONGOC_ERROR_BSON, MONGOC_ERROR_BSON_INVALID, "bad", "x", &err),
              JJ_EINVAL);
}

static void test_client_new(void)
{
    jj_mongo_client *c = NULL;
    jj_error err;
    CHECK_INT(jj_mongo_client_new("http://nope", NULL, &c, &err), JJ_EINVAL);
    CHECK(c == NULL);
    /* The URI may hold a password: it is not echoed. */
    CHECK_INT(jj_mongo_client_new("mongodb://u:s3cret@", NULL, &c, &err), JJ_EINVAL);
    CHECK(strstr(err.message, "s3cret") == NULL);
    jj_mongo_opts pw_only = {.password = "x"};
    CHECK_INT(jj_mongo_client_new("mongodb://127.0.0.1:1/", &pw_only, &c, &err), JJ_EINVAL);
    char long_name[300];
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = 0;
    jj_mongo_opts long_app = {.app_name = long_name};
    CHECK_INT(jj_mongo_client_new("mongodb://127.0.0.1:1/", &long_app, &c, &err), JJ_EINVAL);
    jj_mongo_opts good = {.app_name = "juju-test", .username = "admin", .password = "pw",
                          .tls_ca_file = "/nonexistent/ca.pem", .tls_allow_invalid_hostnames = 1};
    CHECK_INT(jj_mongo_client_new("mongodb://127.0.0.1:1/", &good, &c, &err), 0);
    jj_mongo_client_free(c);
    jj_mongo_client_free(NULL);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Nobody listens on port 1: every operation fails fast as TIMEOUT. */
static void test_unreachable_server(void)
{
    jj_mongo_client *c = NULL;
    jj_error err;
    CHECK_INT(jj_mongo_client_new("mongodb://127.0.0.1:1/?connectTimeoutMS=300&"
                                  "serverSelectionTimeoutMS=300&socketTimeoutMS=300",
                                  NULL, &c, &err),
              0);
    jj_yaml_node *ping = map_with("ping", jj_yaml_new_int(1));
    jj_yaml_node *reply = NULL;
    double t0 = now();
    CHECK_INT(jj_mongo_command(c, "admin", ping, &reply, &err), JJ_ETIMEOUT);
    CHECK(now() - t0 < 5);
    CHECK(reply == NULL);
    CHECK(strstr(err.message, "ping on admin") == err.message);
    CHECK_INT(jj_mongo_insert(c, "juju", "machines", ping, &err), JJ_ETIMEOUT);
    CHECK(strstr(err.message, "insert juju.machines") == err.message);
    jj_yaml_node *docs = NULL;
    CHECK_INT(jj_mongo_find(c, "juju", "machines", NULL, NULL, &docs, &err), JJ_ETIMEOUT);
    CHECK_INT(jj_mongo_remove(c, "juju", "machines", NULL, NULL, &err), JJ_ETIMEOUT);
    CHECK_INT(jj_mongo_update(c, "juju", "machines", NULL, ping, JJ_MONGO_UPSERT, NULL, &err),
              JJ_ETIMEOUT);
    /* Argument checks come first. */
    CHECK_INT(jj_mongo_command(c, "", ping, &reply, &err), JJ_EINVAL);
    CHECK_INT(jj_mongo_insert(c, "juju", "", ping, &err), JJ_EINVAL);
    jj_yaml_node *empty = jj_yaml_new_map();
    CHECK_INT(jj_mongo_command(c, "admin", empty, &reply, &err), JJ_EINVAL);
    jj_yaml_node *not_map = jj_yaml_new_seq();
    CHECK_INT(jj_mongo_insert(c, "juju", "m", not_map, &err), JJ_EINVAL);
    CHECK_INT(jj_mongo_update(c, "juju", "m", not_map, ping, 0, NULL, &err), JJ_EINVAL);
    jj_yaml_free(not_map);
    jj_yaml_free(empty);
    jj_yaml_free(ping);
    jj_mongo_client_free(c);
}

int main(void)
{
    RUN(test_encode_exact_bytes);
    RUN(test_encode_types_and_order);
    RUN(test_encode_rejects);
    RUN(test_decode_server_types);
    RUN(test_decode_corrupt);
    RUN(test_error_mapping);
    RUN(test_client_new);
    RUN(test_unreachable_server);
    return check_summary();
}
