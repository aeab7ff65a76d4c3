/* test_sqlite.c: core/sqlite against real database files in a temp dir. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "sqlite.h"

static char dir[64];

static const char *path_of(const char *name)
{
    static char buf[256];
    snprintf(buf, sizeof buf, "%s/%s", dir, name);
    return buf;
}

static jj_sqlite *open_new(const char *name)
{
    jj_sqlite *db = NULL;
    jj_error err;
    int rc = jj_sqlite_open(path_of(name), JJ_SQLITE_CREATE, 1000, &db, &err);
    CHECK_INT(rc, 0);
    if (rc)
        fprintf(stderr, "open: %s\n", err.message);
    return db;
}

/* Runs a one-row, one-column integer query. */
static long long scalar(jj_sqlite *db, const char *sql)
{
    jj_sqlite_stmt *st = NULL;
    jj_error err;
    long long v = -999;
    if (jj_sqlite_prepare(db, sql, strlen(sql), &st, NULL, &err) != 0)
        return v;
    if (jj_sqlite_step(st, &err) == JJ_SQLITE_ROW)
        v = jj_sqlite_column_int(st, 0);
    jj_sqlite_finalize(st);
    return v;
}

static void test_open_creates_0600(void)
{
    mode_t old = umask(0);
    jj_sqlite *db = open_new("a.db");
    umask(old);
    struct stat sb;
    CHECK_INT(stat(path_of("a.db"), &sb), 0);
    CHECK_INT(sb.st_mode & 0777, 0600);
    jj_error err;
    CHECK_INT(jj_sqlite_exec(db, "PRAGMA journal_mode=WAL; CREATE TABLE t(x)", NULL, &err), 0);
    CHECK_INT(jj_sqlite_exec(db, "INSERT INTO t VALUES (1)", NULL, &err), 0);
    /* The WAL file takes the database's mode, not the umask's. */
    CHECK_INT(stat(path_of("a.db-wal"), &sb), 0);
    CHECK_INT(sb.st_mode & 0777, 0600);
    CHECK_STR(jj_sqlite_path(db), path_of("a.db"));
    jj_sqlite_close(db);
}

static void test_open_keeps_existing_mode(void)
{
    int fd = open(path_of("b.db"), O_CREAT | O_WRONLY, 0640);
    CHECK(fd >= 0);
    close(fd);
    chmod(path_of("b.db"), 0640);
    jj_sqlite *db = open_new("b.db");
    CHECK(db != NULL);
    jj_sqlite_close(db);
    struct stat sb;
    CHECK_INT(stat(path_of("b.db"), &sb), 0);
    CHECK_INT(sb.st_mode & 0777, 0640);
}

static void test_open_errors(void)
{
    jj_sqlite *db = (jj_sqlite *)1;
    jj_error err;
    CHECK_INT(jj_sqlite_open(path_of("missing.db"), 0, 0, &db, &err), JJ_ENOENT);
    CHECK(db == NULL);
    CHECK(strstr(err.message, "missing.db") != NULL);
    CHECK(access(path_of("missing.db"), F_OK) != 0);
    CHECK_INT(jj_sqlite_open(path_of("missing.db"), 0, 0, &db, NULL), JJ_ENOENT);
    CHECK_INT(jj_sqlite_open(path_of("nodir/x.db"), JJ_SQLITE_CREATE, 0, &db, NULL), JJ_ENOENT);
    CHECK_INT(jj_sqlite_open(path_of("nodir/x.db"), JJ_SQLITE_CREATE, 0, &db, &err), JJ_ENOENT);
    CHECK_INT(jj_sqlite_open(path_of("x.db"), JJ_SQLITE_CREATE | JJ_SQLITE_READONLY, 0, &db, &err),
              JJ_EINVAL);
    CHECK_INT(jj_sqlite_open("", JJ_SQLITE_CREATE, 0, &db, &err), JJ_EINVAL);
    CHECK_INT(jj_sqlite_open(path_of("x.db"), JJ_SQLITE_CREATE, -1, &db, &err), JJ_EINVAL);
    CHECK(access(path_of("x.db"), F_OK) != 0);

    /* Not a database: refused at open, and the file is left alone. */
    FILE *f = fopen(path_of("junk.db"), "w");
    CHECK(f != NULL);
    fputs("this is not an sqlite database, just some text long enough to look", f);
    fclose(f);
    CHECK_INT(jj_sqlite_open(path_of("junk.db"), JJ_SQLITE_CREATE, 0, &db, &err), JJ_ECORRUPT);
    CHECK_INT(err.lib_code, 26); /* SQLITE_NOTADB */
    CHECK(strstr(err.message, "sqlite open") != NULL);
    CHECK(access(path_of("junk.db"), F_OK) == 0);
}

static void test_readonly(void)
{
    jj_sqlite *db = open_new("ro.db");
    jj_error err;
    CHECK_INT(jj_sqlite_exec(db, "CREATE TABLE t(x); INSERT INTO t VALUES (7)", NULL, &err), 0);
    jj_sqlite_close(db);
    db = NULL;
    CHECK_INT(jj_sqlite_open(path_of("ro.db"), JJ_SQLITE_READONLY, 0, &db, &err), 0);
    CHECK_INT(scalar(db, "SELECT x FROM t"), 7);
    CHECK_INT(jj_sqlite_exec(db, "INSERT INTO t VALUES (8)", NULL, &err), JJ_EACCES);
    CHECK_INT(err.lib_code & 0xff, 8); /* SQLITE_READONLY */
    jj_sqlite_close(db);
}

static void test_exec_and_changes(void)
{
    jj_sqlite *db = open_new("exec.db");
    jj_error err;
    int64_t changes = -1;
    CHECK_INT(jj_sqlite_exec(db, "CREATE TABLE t(x INTEGER)", &changes, &err), 0);
    CHECK_INT(changes, 0);
    CHECK_INT(jj_sqlite_exec(db, "INSERT INTO t VALUES (1),(2),(3); UPDATE t SET x = x + 1 WHERE x > 1",
                             &changes, &err),
              0);
    CHECK_INT(changes, 5);
    CHECK_INT(jj_sqlite_total_changes(db), 5);
    CHECK_INT(jj_sqlite_exec(db, "SELEC 1", &changes, &err), JJ_ESQLITE);
    CHECK(strstr(err.message, "sqlite exec") != NULL);
    CHECK(strstr(err.message, "syntax error") != NULL);
    CHECK_INT(err.lib_code, 1); /* SQLITE_ERROR */
    jj_sqlite_close(db);
}

static void test_prepare_bind_columns(void)
{
    jj_sqlite *db = open_new("bind.db");
    jj_error err;
    CHECK_INT(jj_sqlite_exec(db, "CREATE TABLE t(i, f, s, b, n)", NULL, &err), 0);
    const char *ins = "INSERT INTO t VALUES (?, :f, @s, $b, ?5)";
    jj_sqlite_stmt *st = NULL;
    size_t used = 0;
    CHECK_INT(jj_sqlite_prepare(db, ins, strlen(ins), &st, &used, &err), 0);
    CHECK_INT(used, strlen(ins));
    CHECK_INT(jj_sqlite_param_count(st), 5);
    CHECK(jj_sqlite_param_name(st, 1) == NULL);
    CHECK_STR(jj_sqlite_param_name(st, 2), ":f");
    CHECK_STR(jj_sqlite_param_name(st, 3), "@s");
    CHECK_STR(jj_sqlite_param_name(st, 4), "$b");
    CHECK_STR(jj_sqlite_param_name(st, 5), "?5");
    CHECK_INT(jj_sqlite_bind_int(st, 1, INT64_MAX, &err), 0);
    CHECK_INT(jj_sqlite_bind_double(st, 2, 0.25, &err), 0);
    CHECK_INT(jj_sqlite_bind_text(st, 3, "h\xc3\xa9llo", 6, &err), 0);
    CHECK_INT(jj_sqlite_bind_blob(st, 4, "a\0b", 3, &err), 0);
    CHECK_INT(jj_sqlite_bind_null(st, 5, &err), 0);
    CHECK_INT(jj_sqlite_bind_int(st, 6, 1, &err), JJ_EINVAL); /* SQLITE_RANGE */
    CHECK_INT(err.lib_code, 25);
    CHECK_INT(jj_sqlite_step(st, &err), JJ_SQLITE_DONE);
    /* Reset clears the bindings: the second row is all NULL. */
    CHECK_INT(jj_sqlite_reset(st, &err), 0);
    CHECK_INT(jj_sqlite_step(st, &err), JJ_SQLITE_DONE);
    jj_sqlite_finalize(st);

    const char *sel = "SELECT i, f, s, b, n FROM t ORDER BY rowid";
    CHECK_INT(jj_sqlite_prepare(db, sel, strlen(sel), &st, NULL, &err), 0);
    CHECK_INT(jj_sqlite_column_count(st), 5);
    CHECK_STR(jj_sqlite_column_name(st, 2), "s");
    CHECK_INT(jj_sqlite_step(st, &err), JJ_SQLITE_ROW);
    CHECK_INT(jj_sqlite_column_type(st, 0), JJ_SQLITE_INTEGER);
    CHECK(jj_sqlite_column_int(st, 0) == INT64_MAX);
    CHECK_INT(jj_sqlite_column_type(st, 1), JJ_SQLITE_FLOAT);
    CHECK(jj_sqlite_column_double(st, 1) == 0.25);
    CHECK_INT(jj_sqlite_column_type(st, 2), JJ_SQLITE_TEXT);
    size_t len = 0;
    const char *text = jj_sqlite_column_bytes(st, 2, &len);
    CHECK_INT(len, 6);
    CHECK_STR(text, "h\xc3\xa9llo");
    CHECK_INT(jj_sqlite_column_type(st, 3), JJ_SQLITE_BLOB);
    const char *blob = jj_sqlite_column_bytes(st, 3, &len);
    CHECK_INT(len, 3);
    CHECK(memcmp(blob, "a\0b", 3) == 0);
    CHECK_INT(jj_sqlite_column_type(st, 4), JJ_SQLITE_NULL);
    CHECK_STR(jj_sqlite_column_bytes(st, 4, &len), "");
    CHECK_INT(len, 0);
    CHECK_INT(jj_sqlite_step(st, &err), JJ_SQLITE_ROW);
    CHECK_INT(jj_sqlite_column_type(st, 0), JJ_SQLITE_NULL);
    CHECK_INT(jj_sqlite_step(st, &err), JJ_SQLITE_DONE);
    jj_sqlite_finalize(st);
    jj_sqlite_close(db);
}

static void test_prepare_tail_and_errors(void)
{
    jj_sqlite *db = open_new("tail.db");
    jj_error err;
    const char *two = "SELECT 1; SELECT 2";
    jj_sqlite_stmt *st = NULL;
    size_t used = 0;
    CHECK_INT(jj_sqlite_prepare(db, two, strlen(two), &st, &used, &err), 0);
    CHECK_INT(used, 9);
    jj_sqlite_finalize(st);
    st = (jj_sqlite_stmt *)1;
    CHECK_INT(jj_sqlite_prepare(db, "  -- nothing\n", 13, &st, NULL, &err), JJ_EINVAL);
    CHECK(st == NULL);
    CHECK_INT(err.lib_code, 0);
    CHECK_INT(jj_sqlite_prepare(db, "SELECT * FROM nope", 18, &st, NULL, &err), JJ_ESQLITE);
    CHECK(strstr(err.message, "sqlite prepare: no such table: nope") != NULL);
    jj_sqlite_close(db);
}

static void test_constraint_codes(void)
{
    jj_sqlite *db = open_new("uniq.db");
    jj_error err;
    CHECK_INT(jj_sqlite_exec(db, "CREATE TABLE t(a TEXT, b TEXT, c NOT NULL, PRIMARY KEY (a, b))",
                             NULL, &err),
              0);
    CHECK_INT(jj_sqlite_exec(db, "INSERT INTO t VALUES ('x', 'y', 1)", NULL, &err), 0);
    const char *dup = "INSERT INTO t VALUES ('x', 'y', 2)";
    jj_sqlite_stmt *st = NULL;
    CHECK_INT(jj_sqlite_prepare(db, dup, strlen(dup), &st, NULL, &err), 0);
    CHECK_INT(jj_sqlite_step(st, &err), JJ_EEXIST);
    CHECK(strstr(err.message, "sqlite step: UNIQUE constraint failed") != NULL);
    CHECK_INT(err.lib_code, 1555); /* SQLITE_CONSTRAINT_PRIMARYKEY */
    jj_sqlite_finalize(st);
    CHECK_INT(jj_sqlite_exec(db, "INSERT INTO t VALUES ('x', 'z', NULL)", NULL, &err), JJ_ESQLITE);
    CHECK_INT(err.lib_code, 1299); /* SQLITE_CONSTRAINT_NOTNULL */
    jj_sqlite_close(db);
}

static void test_transactions(void)
{
    jj_sqlite *db = open_new("tx.db");
    jj_error err;
    CHECK_INT(jj_sqlite_exec(db, "CREATE TABLE t(x)", NULL, &err), 0);
    CHECK(!jj_sqlite_in_transaction(db));
    CHECK_INT(jj_sqlite_begin(db, &err), 0);
    CHECK(jj_sqlite_in_transaction(db));
    CHECK_INT(jj_sqlite_begin(db, &err), JJ_ESQLITE);
    CHECK(strstr(err.message, "sqlite begin") != NULL);
    CHECK_INT(jj_sqlite_exec(db, "INSERT INTO t VALUES (1)", NULL, &err), 0);
    CHECK_INT(jj_sqlite_rollback(db, &err), 0);
    CHECK(!jj_sqlite_in_transaction(db));
    CHECK_INT(scalar(db, "SELECT count(*) FROM t"), 0);
    CHECK_INT(jj_sqlite_rollback(db, &err), 0); /* nothing open: a no-op */
    CHECK_INT(jj_sqlite_commit(db, &err), JJ_ESQLITE);
    CHECK(strstr(err.message, "sqlite commit") != NULL);

    CHECK_INT(jj_sqlite_begin(db, &err), 0);
    CHECK_INT(jj_sqlite_exec(db, "INSERT INTO t VALUES (2)", NULL, &err), 0);
    CHECK_INT(jj_sqlite_commit(db, &err), 0);
    CHECK_INT(scalar(db, "SELECT sum(x) FROM t"), 2);
    jj_sqlite_close(db);
}

static void test_busy_timeout(void)
{
    jj_sqlite *a = open_new("busy.db");
    jj_error err;
    CHECK_INT(jj_sqlite_exec(a, "PRAGMA journal_mode=WAL; CREATE TABLE t(x)", NULL, &err), 0);
    jj_sqlite *b = NULL;
    CHECK_INT(jj_sqlite_open(path_of("busy.db"), JJ_SQLITE_CREATE, 50, &b, &err), 0);
    CHECK_INT(jj_sqlite_begin(a, &err), 0);
    CHECK_INT(jj_sqlite_exec(a, "INSERT INTO t VALUES (1)", NULL, &err), 0);
    /* b waits about 50 ms for a's write lock, then gives up. */
    CHECK_INT(jj_sqlite_begin(b, &err), JJ_ETIMEOUT);
    CHECK_INT(err.lib_code & 0xff, 5); /* SQLITE_BUSY */
    CHECK(strstr(err.message, "locked") != NULL);
    /* WAL readers are not blocked and see only committed rows. */
    CHECK_INT(scalar(b, "SELECT count(*) FROM t"), 0);
    CHECK_INT(jj_sqlite_commit(a, &err), 0);
    CHECK_INT(scalar(b, "SELECT count(*) FROM t"), 1);
    CHECK_INT(jj_sqlite_begin(b, &err), 0);
    CHECK_INT(jj_sqlite_commit(b, &err), 0);
    jj_sqlite_close(b);
    jj_sqlite_close(a);
}

static void test_close_with_live_statement(void)
{
    jj_sqlite *db = open_new("zombie.db");
    jj_sqlite_stmt *st = NULL;
    jj_error err;
    CHECK_INT(jj_sqlite_prepare(db, "SELECT 42", 9, &st, NULL, &err), 0);
    jj_sqlite_close(db); /* deferred until st goes */
    CHECK_INT(jj_sqlite_step(st, &err), JJ_SQLITE_ROW);
    CHECK_INT(jj_sqlite_column_int(st, 0), 42);
    jj_sqlite_finalize(st);
    jj_sqlite_close(NULL);
    jj_sqlite_finalize(NULL);
}

/* A text run again gets its compiled statement back, reset and unbound;
 * one still in use is not handed out twice; the cache is bounded and a
 * statement handed out may outlive its connection. */
static void test_statement_cache(void)
{
    jj_sqlite *db = open_new("cache.db");
    jj_error err;
    CHECK_INT(jj_sqlite_exec(db, "CREATE TABLE t (k INTEGER, v TEXT)", NULL, &err), 0);
    const char *sql = "SELECT v FROM t WHERE k = ?1";
    size_t used = 0;
    jj_sqlite_stmt *a = NULL, *b = NULL, *c = NULL;
    CHECK_INT(jj_sqlite_prepare_cached(db, sql, strlen(sql), &a, &used, &err), 0);
    CHECK_INT(used, strlen(sql));
    CHECK_INT(jj_sqlite_bind_int(a, 1, 7, &err), 0);
    CHECK_INT(jj_sqlite_prepare_cached(db, sql, strlen(sql), &b, NULL, &err), 0);
    CHECK(b != a); /* a is still in use */
    jj_sqlite_finalize(b);
    jj_sqlite_finalize(a);
    CHECK_INT(jj_sqlite_prepare_cached(db, sql, strlen(sql), &c, &used, &err), 0);
    CHECK(c == a);
    CHECK_INT(used, strlen(sql));
    CHECK_INT(jj_sqlite_step(c, &err), JJ_SQLITE_DONE); /* bindings were cleared: k = NULL */
    jj_sqlite_finalize(c);
    /* more texts than the cache holds: all still work, memory stays bounded */
    for (int i = 0; i < 3 * JJ_SQLITE_CACHE_MAX; i++) {
        char q[64];
        snprintf(q, sizeof q, "SELECT %d", i);
        jj_sqlite_stmt *st = NULL;
        CHECK_INT(jj_sqlite_prepare_cached(db, q, strlen(q), &st, NULL, &err), 0);
        CHECK_INT(jj_sqlite_step(st, &err), JJ_SQLITE_ROW);
        CHECK_INT(jj_sqlite_column_int(st, 0), i);
        jj_sqlite_finalize(st);
    }
    CHECK_INT(jj_sqlite_prepare_cached(db, sql, strlen(sql), &a, NULL, &err), 0);
    jj_sqlite_close(db); /* a is handed out: freed when given back */
    jj_sqlite_finalize(a);
}

static void remove_dir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/jj-sqlite-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_open_creates_0600);
    RUN(test_open_keeps_existing_mode);
    RUN(test_open_errors);
    RUN(test_readonly);
    RUN(test_exec_and_changes);
    RUN(test_prepare_bind_columns);
    RUN(test_prepare_tail_and_errors);
    RUN(test_constraint_codes);
    RUN(test_transactions);
    RUN(test_busy_timeout);
    RUN(test_close_with_live_statement);
    RUN(test_statement_cache);
    remove_dir();
    return check_summary();
}
