/* test_dqlite.c: core/dqlite's response decoders on bodies built here
 * (rows of every type across batches, the end markers, nodes, failures and
 * their codes, and lengths that do not fit), and the client's refusals that
 * need no server: a bad address, a closed port, no database open. The
 * conversation with a real server is tests/spec/dqlite_client_spec.lua. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dqlite.h"

typedef struct body {
    uint8_t b[4096];
    size_t n;
} body;

static void u64(body *x, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        x->b[x->n++] = (uint8_t)(v >> (8 * i));
}

static void str(body *x, const char *s)
{
    size_t n = strlen(s) + 1;
    memcpy(x->b + x->n, s, n);
    x->n += n;
    while (x->n % 8)
        x->b[x->n++] = 0;
}

static void marker(body *x, uint8_t byte)
{
    memset(x->b + x->n, byte, 8);
    x->n += 8;
}

/* A row header of types (4 bits each), padded to a word. */
static void header(body *x, const int *types, int n)
{
    size_t words = ((size_t)n * 4 + 63) / 64;
    memset(x->b + x->n, 0, words * 8);
    for (int i = 0; i < n; i++)
        x->b[x->n + (size_t)i / 2] |= (uint8_t)(types[i] << ((i % 2) * 4));
    x->n += words * 8;
}

static void test_rows_all_types_in_two_batches(void)
{
    static const int types[] = {JJ_DQLITE_INTEGER, JJ_DQLITE_FLOAT,    JJ_DQLITE_TEXT,
                                JJ_DQLITE_BLOB,    JJ_DQLITE_NULL,     JJ_DQLITE_UNIXTIME,
                                JJ_DQLITE_ISO8601, JJ_DQLITE_BOOLEAN};
    const char *names[] = {"i", "f", "t", "b", "n", "u", "d", "ok"};
    body a = {.n = 0};
    u64(&a, 8);
    for (int i = 0; i < 8; i++)
        str(&a, names[i]);
    header(&a, types, 8);
    u64(&a, (uint64_t)-5);
    double f = 2.5;
    uint64_t fb;
    memcpy(&fb, &f, 8);
    u64(&a, fb);
    str(&a, "hello");
    u64(&a, 3);
    memcpy(a.b + a.n, "a\0b\0\0\0\0\0", 8);
    a.n += 8;
    u64(&a, 0);
    u64(&a, 1700000000);
    str(&a, "2024-01-02 03:04:05");
    u64(&a, 1);
    marker(&a, 0xee);

    jj_dqlite_rows rows;
    memset(&rows, 0, sizeof rows);
    jj_error err;
    int more = 0;
    CHECK_INT(jj_dqlite_decode_rows(a.b, a.n, &rows, &more, &err), 0);
    CHECK_INT(more, 1);
    CHECK_INT(rows.ncols, 8);
    CHECK_INT(rows.nrows, 1);
    CHECK_STR(rows.names[7], "ok");
    CHECK_INT(rows.values[0].i, -5);
    CHECK(rows.values[1].f == 2.5);
    CHECK_STR(rows.values[2].s, "hello");
    CHECK_INT(rows.values[3].len, 3);
    CHECK(memcmp(rows.values[3].s, "a\0b", 3) == 0);
    CHECK_INT(rows.values[4].type, JJ_DQLITE_NULL);
    CHECK_INT(rows.values[5].i, 1700000000);
    CHECK_STR(rows.values[6].s, "2024-01-02 03:04:05");
    CHECK_INT(rows.values[7].i, 1);

    /* the next batch repeats the names; two rows; done */
    body b = {.n = 0};
    u64(&b, 8);
    for (int i = 0; i < 8; i++)
        str(&b, names[i]);
    for (int r = 0; r < 2; r++) {
        static const int nulls[] = {5, 5, 5, 5, 5, 5, 5, 5};
        header(&b, nulls, 8);
        for (int i = 0; i < 8; i++)
            u64(&b, 0);
    }
    marker(&b, 0xff);
    CHECK_INT(jj_dqlite_decode_rows(b.b, b.n, &rows, &more, &err), 0);
    CHECK_INT(more, 0);
    CHECK_INT(rows.nrows, 3);
    CHECK_INT(rows.values[2 * 8 + 3].type, JJ_DQLITE_NULL);

    /* a batch with another column count is refused */
    body c = {.n = 0};
    u64(&c, 1);
    str(&c, "x");
    marker(&c, 0xff);
    CHECK_INT(jj_dqlite_decode_rows(c.b, c.n, &rows, &more, &err), JJ_EPROTO);
    jj_dqlite_rows_free(&rows);
    CHECK_INT(rows.nrows, 0);
}

static void expect_rows_proto(const body *x, const char *what)
{
    jj_dqlite_rows rows;
    memset(&rows, 0, sizeof rows);
    jj_error err;
    int more;
    int rc = jj_dqlite_decode_rows(x->b, x->n, &rows, &more, &err);
    if (rc != JJ_EPROTO)
        fprintf(stderr, "%s: rc %d\n", what, rc);
    CHECK_INT(rc, JJ_EPROTO);
    CHECK(strstr(err.message, "malformed") != NULL || strstr(err.message, "columns") != NULL);
    jj_dqlite_rows_free(&rows);
}

static void test_rows_that_do_not_fit(void)
{
    body x = {.n = 0};
    u64(&x, 1000); /* more columns than the body holds */
    str(&x, "a");
    expect_rows_proto(&x, "column count");

    x.n = 0;
    u64(&x, 1);
    memcpy(x.b + x.n, "abcdefgh", 8); /* a name without its NUL */
    x.n += 8;
    expect_rows_proto(&x, "name");

    static const int text[] = {JJ_DQLITE_BLOB};
    x.n = 0;
    u64(&x, 1);
    str(&x, "b");
    header(&x, text, 1);
    u64(&x, 1u << 30); /* a blob longer than the body */
    marker(&x, 0xff);
    expect_rows_proto(&x, "blob length");

    static const int unknown[] = {7};
    x.n = 0;
    u64(&x, 1);
    str(&x, "u");
    header(&x, unknown, 1);
    u64(&x, 0);
    marker(&x, 0xff);
    expect_rows_proto(&x, "unknown type");

    static const int integer[] = {JJ_DQLITE_INTEGER};
    x.n = 0;
    u64(&x, 1);
    str(&x, "i");
    header(&x, integer, 1);
    u64(&x, 1); /* no end marker */
    expect_rows_proto(&x, "no marker");
}

static void test_nodes(void)
{
    body x = {.n = 0};
    u64(&x, 2);
    u64(&x, 1);
    str(&x, "127.0.0.1:17666");
    u64(&x, JJ_DQLITE_VOTER);
    u64(&x, UINT64_MAX);
    str(&x, "[::1]:9");
    u64(&x, JJ_DQLITE_SPARE);
    jj_dqlite_node *nodes;
    size_t n;
    jj_error err;
    CHECK_INT(jj_dqlite_decode_nodes(x.b, x.n, &nodes, &n, &err), 0);
    CHECK_INT(n, 2);
    CHECK_STR(nodes[0].address, "127.0.0.1:17666");
    CHECK(nodes[1].id == UINT64_MAX);
    CHECK_INT(nodes[1].role, JJ_DQLITE_SPARE);
    jj_dqlite_nodes_free(nodes, n);

    x.n = 0;
    u64(&x, 1);
    u64(&x, 1);
    str(&x, "a:1");
    u64(&x, 9); /* no such role */
    CHECK_INT(jj_dqlite_decode_nodes(x.b, x.n, &nodes, &n, &err), JJ_EPROTO);
    CHECK(nodes == NULL);
    x.n = 0;
    u64(&x, UINT64_MAX);
    CHECK_INT(jj_dqlite_decode_nodes(x.b, x.n, &nodes, &n, &err), JJ_EPROTO);
}

static void failure_is(uint64_t code, int want)
{
    body x = {.n = 0};
    u64(&x, code);
    str(&x, "the server says no");
    jj_error err;
    CHECK_INT(jj_dqlite_decode_failure(x.b, x.n, &err), want);
    CHECK_INT(err.lib_code, (long)code);
    CHECK(strstr(err.message, "the server says no") != NULL);
}

static void test_failures(void)
{
    failure_is(10 | (40 << 8), JJ_ENOTLEADER);
    failure_is(10 | (41 << 8), JJ_ENOTLEADER);
    failure_is(19 | (8 << 8), JJ_EEXIST);
    failure_is(19 | (6 << 8), JJ_EEXIST);
    failure_is(19, JJ_EDQLITE); /* a NOT NULL or CHECK constraint is not a duplicate */
    failure_is(5, JJ_EBUSY);
    failure_is(1, JJ_EDQLITE);
    uint8_t cut[8] = {1, 0, 0, 0, 0, 0, 0, 0};
    jj_error err;
    CHECK_INT(jj_dqlite_decode_failure(cut, sizeof cut, &err), JJ_EPROTO);
    CHECK_STR(jj_error_code_name(JJ_ENOTLEADER), "NOTLEADER");
    CHECK_STR(jj_error_code_name(JJ_ENOLEADER), "NOLEADER");
}

static void test_connect_refusals(void)
{
    jj_dqlite *c = (jj_dqlite *)1;
    jj_error err;
    CHECK_INT(jj_dqlite_connect("no-port", NULL, 1000, &c, &err), JJ_EINVAL);
    CHECK(c == NULL);
    CHECK_INT(jj_dqlite_connect("127.0.0.1:x", NULL, 1000, &c, &err), JJ_EINVAL);
    /* port 1 on loopback: nobody listens there in a test environment */
    CHECK_INT(jj_dqlite_connect("127.0.0.1:1", NULL, 1000, &c, &err), JJ_ECONNECT);
    CHECK(strstr(err.message, "dqlite 127.0.0.1:1: connect") != NULL);
    jj_dqlite_tls tls = {.ca = "not a certificate", .cert = NULL, .key = NULL, .server_name = NULL};
    CHECK_INT(jj_dqlite_connect("127.0.0.1:1", &tls, 1000, &c, &err), JJ_ETLS);
    tls.cert = "x";
    CHECK_INT(jj_dqlite_connect("127.0.0.1:1", &tls, 1000, &c, &err), JJ_EINVAL);
    jj_dqlite_close(NULL);
}

int main(void)
{
    RUN(test_rows_all_types_in_two_batches);
    RUN(test_rows_that_do_not_fit);
    RUN(test_nodes);
    RUN(test_failures);
    RUN(test_connect_refusals);
    return check_summary();
}
