/* test_doc.c: the document model (core/doc.c): mappings keep insertion
 * order and refuse or replace equal keys at every size, across the point
 * where the hash index takes over from the scan and across its regrowth. */
#include "check.h"
#include "doc.h"
#include "json.h"
#include "yaml.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BIG 100000

static jj_yaml_node *key_n(size_t i)
{
    char buf[32];
    snprintf(buf, sizeof buf, "k%zu", i);
    return jj_yaml_new_string(buf);
}

/* n string keys k0..k(n-1), values their index. */
static jj_yaml_node *build(size_t n)
{
    jj_yaml_node *map = jj_yaml_new_map();
    jj_error err;
    for (size_t i = 0; i < n; i++)
        CHECK_INT(jj_yaml_map_put(map, key_n(i), jj_yaml_new_int((int64_t)i), &err), 0);
    return map;
}

static int in_order(const jj_yaml_node *map, size_t n)
{
    if (jj_yaml_count(map) != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char buf[32];
        snprintf(buf, sizeof buf, "k%zu", i);
        if (strcmp(jj_yaml_text(jj_yaml_map_key_at(map, i), NULL), buf) != 0)
            return 0;
    }
    return 1;
}

static void test_put_keeps_order_and_replaces_in_place(void)
{
    static const size_t sizes[] = {1, 8, 9, 17, 1000, BIG};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        jj_yaml_node *map = build(n);
        CHECK(in_order(map, n));
        jj_error err;
        /* every key again: no new pair, the value replaced where it stood */
        for (size_t i = 0; i < n; i++)
            CHECK_INT(jj_yaml_map_put(map, key_n(i), jj_yaml_new_int(-(int64_t)i), &err), 0);
        CHECK(in_order(map, n));
        CHECK_INT(jj_yaml_int(jj_yaml_map_value_at(map, n - 1)), -(int64_t)(n - 1));
        char last[32];
        snprintf(last, sizeof last, "k%zu", n - 1);
        CHECK_INT(jj_yaml_int(jj_yaml_map_get(map, last)), -(int64_t)(n - 1));
        CHECK(jj_yaml_map_get(map, "absent") == NULL);
        jj_yaml_free(map);
    }
}

static void test_add_refuses_duplicates_at_size(void)
{
    jj_yaml_node *map = jj_yaml_new_map();
    jj_error err;
    for (size_t i = 0; i < BIG; i++)
        CHECK_INT(jj_yaml_map_add(map, key_n(i), jj_yaml_new_null(), &err), 0);
    size_t refused = 0;
    for (size_t i = 0; i < BIG; i += 997)
        refused += jj_yaml_map_add(map, key_n(i), jj_yaml_new_null(), &err) == JJ_EEXIST;
    CHECK_INT(refused, (BIG + 996) / 997);
    CHECK_INT(jj_yaml_count(map), BIG);
    CHECK(in_order(map, BIG));
    jj_yaml_node *k = key_n(54321);
    CHECK_INT(jj_yaml_map_find(map, k), 54321);
    jj_yaml_free(k);
    jj_yaml_free(map);
}

/* Keys compare by type and value: int 1, float 1.0, string "1" and true
 * are four keys; -0.0 is 0.0 and every NaN is one key. */
static void test_key_identity_by_type_and_value(void)
{
    jj_yaml_node *map = jj_yaml_new_map();
    jj_error err;
    for (int i = 0; i < 20; i++) /* past the index threshold */
        CHECK_INT(jj_yaml_map_put(map, jj_yaml_new_int(1000 + i), jj_yaml_new_null(), &err), 0);
    CHECK_INT(jj_yaml_map_add(map, jj_yaml_new_int(1), jj_yaml_new_null(), &err), 0);
    CHECK_INT(jj_yaml_map_add(map, jj_yaml_new_float(1.0), jj_yaml_new_null(), &err), 0);
    CHECK_INT(jj_yaml_map_add(map, jj_yaml_new_string("1"), jj_yaml_new_null(), &err), 0);
    CHECK_INT(jj_yaml_map_add(map, jj_yaml_new_bool(1), jj_yaml_new_null(), &err), 0);
    CHECK_INT(jj_yaml_map_add(map, jj_yaml_new_float(0.0), jj_yaml_new_null(), &err), 0);
    CHECK_INT(jj_yaml_map_add(map, jj_yaml_new_float(-0.0), jj_yaml_new_null(), &err), JJ_EEXIST);
    CHECK_INT(jj_yaml_map_add(map, jj_yaml_new_float(NAN), jj_yaml_new_null(), &err), 0);
    CHECK_INT(jj_yaml_map_add(map, jj_yaml_new_float(-NAN), jj_yaml_new_null(), &err), JJ_EEXIST);
    CHECK_INT(jj_yaml_count(map), 26);
    /* a text lookup finds the first key written "1": the int, as before */
    jj_yaml_node *one = jj_yaml_map_get(map, "1");
    CHECK(one == jj_yaml_map_value_at(map, 20));
    jj_yaml_free(map);
}

static void test_delete_keeps_lookups_right(void)
{
    jj_yaml_node *map = build(1000);
    for (size_t i = 0; i < 1000; i += 2) {
        char buf[32];
        snprintf(buf, sizeof buf, "k%zu", i);
        CHECK_INT(jj_yaml_map_delete(map, buf), 1);
    }
    CHECK_INT(jj_yaml_count(map), 500);
    CHECK_INT(jj_yaml_int(jj_yaml_map_get(map, "k999")), 999);
    CHECK(jj_yaml_map_get(map, "k998") == NULL);
    CHECK_STR(jj_yaml_text(jj_yaml_map_key_at(map, 0), NULL), "k1");
    jj_error err;
    CHECK_INT(jj_yaml_map_put(map, jj_yaml_new_string("k0"), jj_yaml_new_int(7), &err), 0);
    CHECK_STR(jj_yaml_text(jj_yaml_map_key_at(map, 500), NULL), "k0");
    jj_yaml_node *copy = jj_yaml_copy(map);
    CHECK(jj_yaml_equal(copy, map));
    CHECK_INT(jj_yaml_int(jj_yaml_map_get(copy, "k0")), 7);
    jj_yaml_free(copy);
    jj_yaml_free(map);
}

/* Appended (unchecked) keys are found by lookups made afterwards, however
 * appends and lookups interleave (the index is built and caught up lazily),
 * after a reserve, a copy and a delete; texts kept in the node survive the
 * lazily made text of a number key beside them. */
static void test_append_then_lookups_interleaved(void)
{
    jj_error err;
    jj_yaml_node *map = jj_yaml_new_map();
    CHECK_INT(jj_yaml_reserve(map, BIG / 2, &err), 0);
    for (size_t i = 0; i < BIG; i++) {
        CHECK_INT(jj_yaml_map_append(map, key_n(i), jj_yaml_new_int((int64_t)i), &err), 0);
        if (i % 997 == 0 || i < 40) { /* a lookup now and then: the index catches up */
            char buf[32];
            snprintf(buf, sizeof buf, "k%zu", i / 2);
            CHECK_INT(jj_yaml_int(jj_yaml_map_get(map, buf)), (int64_t)(i / 2));
            jj_yaml_node *probe = key_n(i);
            CHECK_INT(jj_yaml_map_find(map, probe), (long)i);
            jj_yaml_free(probe);
        }
    }
    CHECK(in_order(map, BIG));
    for (size_t i = 0; i < BIG; i += 4999) {
        jj_yaml_node *probe = key_n(i);
        CHECK_INT(jj_yaml_map_find(map, probe), (long)i);
        jj_yaml_free(probe);
    }
    jj_yaml_node *absent = jj_yaml_new_string("k-1");
    CHECK_INT(jj_yaml_map_find(map, absent), -1);
    jj_yaml_free(absent);
    /* An add after appends still refuses a key that was appended. */
    CHECK_INT(jj_yaml_map_add(map, key_n(BIG - 1), jj_yaml_new_null(), &err), JJ_EEXIST);
    jj_yaml_node *copy = jj_yaml_copy(map);
    CHECK(jj_yaml_equal(copy, map));
    CHECK_INT(jj_yaml_map_delete(copy, "k0"), 1);
    CHECK_INT(jj_yaml_int(jj_yaml_map_get(copy, "k1")), 1);
    CHECK_INT(jj_yaml_map_find(copy, jj_yaml_map_key_at(map, BIG - 1)), BIG - 2);
    jj_yaml_free(copy);
    CHECK_INT(jj_yaml_reserve(jj_yaml_map_value_at(map, 0), 4, &err), JJ_EINVAL);
    /* Non-string keys: text lookups scan, typed lookups still hash. */
    CHECK_INT(jj_yaml_map_append(map, jj_yaml_new_int(12345), jj_yaml_new_string("twelve"), &err), 0);
    CHECK_STR(jj_yaml_map_get_string(map, "12345"), "twelve");
    jj_yaml_node *ik = jj_yaml_new_int(12345);
    CHECK_INT(jj_yaml_map_find(map, ik), BIG);
    jj_yaml_free(ik);
    CHECK_STR(jj_yaml_text(jj_yaml_map_key_at(map, 7), NULL), "k7");
    jj_yaml_free(map);

    jj_yaml_node *seq = jj_yaml_new_seq();
    CHECK_INT(jj_yaml_reserve(seq, 3, &err), 0);
    for (int i = 0; i < 5; i++)
        CHECK_INT(jj_yaml_seq_append(seq, jj_yaml_new_stringn("ab\0c", 4), &err), 0);
    size_t len = 0;
    CHECK(memcmp(jj_yaml_text(jj_yaml_seq_at(seq, 4), &len), "ab\0c", 4) == 0);
    CHECK_INT(len, 4);
    jj_yaml_free(seq);
}

/* Text of a flat object with n keys; key dup (if < n) is written twice. */
static char *flat_json(size_t n, size_t dup)
{
    size_t cap = n * 32 + 64, len = 0;
    char *s = malloc(cap);
    s[len++] = '{';
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(s + len, cap - len, "%s\"k%zu\":%zu", i ? "," : "", i, i);
    if (dup < n)
        len += (size_t)snprintf(s + len, cap - len, ",\"k%zu\":-1", dup);
    s[len++] = '}';
    s[len] = '\0';
    return s;
}

static void test_json_large_object_order_and_last_wins(void)
{
    char *text = flat_json(BIG, 4242);
    jj_yaml_node *root = NULL;
    jj_error err;
    CHECK_INT(jj_json_parse(text, strlen(text), "big.json", &root, &err), 0);
    CHECK(in_order(root, BIG));
    CHECK_INT(jj_yaml_int(jj_yaml_map_get(root, "k4242")), -1); /* at its first place */
    CHECK_INT(jj_yaml_int(jj_yaml_map_value_at(root, 4242)), -1);
    jj_yaml_free(root);
    free(text);
}

static void test_yaml_large_mapping_duplicate_is_an_error(void)
{
    size_t cap = (size_t)BIG * 24 + 64, len = 0;
    char *s = malloc(cap);
    for (size_t i = 0; i < BIG; i++)
        len += (size_t)snprintf(s + len, cap - len, "k%zu: %zu\n", i, i);
    jj_yaml_node *root = NULL;
    jj_error err;
    jj_yaml_limits limits = {BIG * 3, 0};
    CHECK_INT(jj_yaml_parse(s, len, "big.yaml", &limits, &root, &err), 0);
    CHECK(in_order(root, BIG));
    jj_yaml_free(root);
    root = NULL;
    snprintf(s + len, cap - len, "k77777: again\n");
    CHECK_INT(jj_yaml_parse(s, strlen(s), "big.yaml", &limits, &root, &err), JJ_EYAML_PARSE);
    CHECK(root == NULL);
    CHECK(strstr(err.message, "mapping key \"k77777\" already defined at line 77778") != NULL);
    CHECK_INT(err.line, BIG + 1);
    free(s);
}

int main(void)
{
    RUN(test_put_keeps_order_and_replaces_in_place);
    RUN(test_add_refuses_duplicates_at_size);
    RUN(test_key_identity_by_type_and_value);
    RUN(test_delete_keeps_lookups_right);
    RUN(test_append_then_lookups_interleaved);
    RUN(test_json_large_object_order_and_last_wins);
    RUN(test_yaml_large_mapping_duplicate_is_an_error);
    return check_summary();
}
