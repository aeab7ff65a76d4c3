/* sqlite.c: the thin libsqlite3 layer of the state store (see sqlite.h). */
#include "sqlite.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* One cached statement: its text (the key, with a hash for quick
 * comparison) and how many bytes of the text it consumed. */
typedef struct cache_entry {
    char *sql;
    size_t len, used;
    uint64_t hash;
    jj_sqlite_stmt *st;
} cache_entry;

struct jj_sqlite {
    sqlite3 *db;
    char *path;
    cache_entry cache[JJ_SQLITE_CACHE_MAX];
    size_t ncache, next_evict;
};

struct jj_sqlite_stmt {
    sqlite3_stmt *st;
    int cached; /* owned by its connection's cache (until orphaned) */
    int busy;   /* handed out and not yet given back */
};

static int code_for(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return JJ_ETIMEOUT;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH: return JJ_EACCES;
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT: return JJ_ECORRUPT;
    case SQLITE_NOMEM: return JJ_ENOMEM;
    case SQLITE_RANGE:
    case SQLITE_MISUSE:
    case SQLITE_TOOBIG: return JJ_EINVAL;
    case SQLITE_CONSTRAINT:
        if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE)
            return JJ_EEXIST;
        return JJ_ESQLITE;
    default: return JJ_ESQLITE;
    }
}

/* Fills err from rc and the connection's last message; returns the code. */
static int fail(jj_error *err, sqlite3 *db, int rc, const char *op)
{
    const char *msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    /* errmsg describes the connection's latest call, which is this one
     * unless rc came from elsewhere; fall back on the generic text then. */
    if (db && sqlite3_extended_errcode(db) != rc)
        msg = sqlite3_errstr(rc);
    return jj_error_set_lib(err, code_for(rc), rc, "sqlite %s: %s", op, msg);
}

/* Creates path with mode 0600 when absent. *created tells whether it did. */
static int create_private_file(const char *path, int *created, jj_error *err)
{
    *created = 0;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            return 0;
        return jj_error_errno(err, errno, "sqlite open: cannot create %s", path);
    }
    /* The umask can only remove bits from 0600, but make the mode exact. */
    if (fchmod(fd, 0600) != 0) {
        int e = errno;
        close(fd);
        unlink(path);
        return jj_error_errno(err, e, "sqlite open: cannot chmod %s", path);
    }
    close(fd);
    *created = 1;
    return 0;
}

int jj_sqlite_open(const char *path, int flags, int busy_timeout_ms, jj_sqlite **out,
                   jj_error *err)
{
    jj_error_clear(err);
    if (!out)
        return jj_error_set(err, JJ_EINVAL, "sqlite open: no output pointer");
    *out = NULL;
    if (!path || !*path)
        return jj_error_set(err, JJ_EINVAL, "sqlite open: empty path");
    if ((flags & JJ_SQLITE_CREATE) && (flags & JJ_SQLITE_READONLY))
        return jj_error_set(err, JJ_EINVAL, "sqlite open: create and readonly are exclusive");
    if (flags & ~(JJ_SQLITE_CREATE | JJ_SQLITE_READONLY))
        return jj_error_set(err, JJ_EINVAL, "sqlite open: unknown flags 0x%x", (unsigned)flags);
    if (busy_timeout_ms < 0)
        return jj_error_set(err, JJ_EINVAL, "sqlite open: negative busy timeout");

    int created = 0;
    if (flags & JJ_SQLITE_CREATE) {
        int crc = create_private_file(path, &created, err);
        if (crc)
            return crc;
    } else {
        struct stat sb;
        if (stat(path, &sb) != 0)
            return jj_error_errno(err, errno, "sqlite open: %s", path);
    }

    jj_sqlite *h = calloc(1, sizeof *h);
    char *copy = strdup(path);
    if (!h || !copy) {
        free(h);
        free(copy);
        if (created)
            unlink(path);
        return jj_error_set(err, JJ_ENOMEM, "sqlite open: out of memory");
    }
    h->path = copy;

    /* Never SQLITE_OPEN_CREATE: the file exists by now with the right mode,
     * and SQLite would otherwise create it with 0644. */
    int oflags = (flags & JJ_SQLITE_READONLY) ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
    oflags |= SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW;
    int rc = sqlite3_open_v2(path, &h->db, oflags, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_extended_result_codes(h->db, 1);
        rc = sqlite3_busy_timeout(h->db, busy_timeout_ms);
    }
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(h->db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL);
    /* Reading the schema catches "file is not a database" here, not at
     * the first query. */
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(h->db, "SELECT count(*) FROM sqlite_schema", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        char op[64 + JJ_ERROR_FILE_MAX];
        snprintf(op, sizeof op, "open %s", path);
        int code = fail(err, h->db, rc, op);
        sqlite3_close_v2(h->db);
        free(h->path);
        free(h);
        if (created)
            unlink(path);
        return code;
    }
    *out = h;
    return 0;
}

/* Frees the cache; statements still handed out become ordinary ones that
 * jj_sqlite_finalize frees (sqlite3_close_v2 keeps the connection until
 * they are). */
static void cache_clear(jj_sqlite *db)
{
    for (size_t i = 0; i < db->ncache; i++) {
        cache_entry *e = &db->cache[i];
        if (e->st->busy) {
            e->st->cached = 0;
        } else {
            sqlite3_finalize(e->st->st);
            free(e->st);
        }
        free(e->sql);
    }
    db->ncache = 0;
}

void jj_sqlite_close(jj_sqlite *db)
{
    if (!db)
        return;
    cache_clear(db);
    sqlite3_close_v2(db->db);
    free(db->path);
    free(db);
}

const char *jj_sqlite_path(const jj_sqlite *db)
{
    return db ? db->path : NULL;
}

int64_t jj_sqlite_total_changes(jj_sqlite *db)
{
    return db ? (int64_t)sqlite3_total_changes64(db->db) : 0;
}

int jj_sqlite_exec(jj_sqlite *db, const char *sql, int64_t *changes, jj_error *err)
{
    jj_error_clear(err);
    if (changes)
        *changes = 0;
    if (!db || !sql)
        return jj_error_set(err, JJ_EINVAL, "sqlite exec: no database or statement");
    sqlite3_int64 before = sqlite3_total_changes64(db->db);
    int rc = sqlite3_exec(db->db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return fail(err, db->db, rc, "exec");
    if (changes)
        *changes = (int64_t)(sqlite3_total_changes64(db->db) - before);
    return 0;
}

int jj_sqlite_prepare(jj_sqlite *db, const char *sql, size_t len, jj_sqlite_stmt **out,
                      size_t *used, jj_error *err)
{
    jj_error_clear(err);
    if (used)
        *used = 0;
    if (!out)
        return jj_error_set(err, JJ_EINVAL, "sqlite prepare: no output pointer");
    *out = NULL;
    if (!db || !sql)
        return jj_error_set(err, JJ_EINVAL, "sqlite prepare: no database or statement");
    if (len > INT_MAX)
        return jj_error_set(err, JJ_EINVAL, "sqlite prepare: statement too long");
    jj_sqlite_stmt *s = calloc(1, sizeof *s);
    if (!s)
        return jj_error_set(err, JJ_ENOMEM, "sqlite prepare: out of memory");
    const char *tail = NULL;
    int rc = sqlite3_prepare_v2(db->db, sql, (int)len, &s->st, &tail);
    if (rc != SQLITE_OK) {
        free(s);
        return fail(err, db->db, rc, "prepare");
    }
    if (!s->st) {
        free(s);
        return jj_error_set(err, JJ_EINVAL, "sqlite prepare: no statement in the text");
    }
    if (used)
        *used = tail ? (size_t)(tail - sql) : len;
    *out = s;
    return 0;
}

void jj_sqlite_finalize(jj_sqlite_stmt *st)
{
    if (!st)
        return;
    if (st->cached) {
        sqlite3_reset(st->st);
        sqlite3_clear_bindings(st->st);
        st->busy = 0;
        return;
    }
    sqlite3_finalize(st->st);
    free(st);
}

static uint64_t text_hash(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

int jj_sqlite_prepare_cached(jj_sqlite *db, const char *sql, size_t len, jj_sqlite_stmt **out,
                             size_t *used, jj_error *err)
{
    if (!db || !sql || !out)
        return jj_sqlite_prepare(db, sql, len, out, used, err);
    uint64_t hash = text_hash(sql, len);
    for (size_t i = 0; i < db->ncache; i++) {
        cache_entry *e = &db->cache[i];
        if (e->hash != hash || e->len != len || memcmp(e->sql, sql, len) != 0)
            continue;
        if (e->st->busy) /* in use further up the stack: not twice */
            return jj_sqlite_prepare(db, sql, len, out, used, err);
        jj_error_clear(err);
        e->st->busy = 1;
        *out = e->st;
        if (used)
            *used = e->used;
        return 0;
    }
    size_t consumed = 0;
    jj_sqlite_stmt *st;
    int rc = jj_sqlite_prepare(db, sql, len, &st, &consumed, err);
    if (rc)
        return rc;
    if (used)
        *used = consumed;
    *out = st;
    char *key = malloc(len ? len : 1);
    if (!key)
        return 0; /* uncached, still usable */
    memcpy(key, sql, len);
    cache_entry *e = NULL;
    if (db->ncache < JJ_SQLITE_CACHE_MAX) {
        e = &db->cache[db->ncache++];
    } else { /* full: replace one that is not in use, round robin */
        for (size_t tries = 0; tries < JJ_SQLITE_CACHE_MAX && !e; tries++) {
            cache_entry *c = &db->cache[db->next_evict];
            db->next_evict = (db->next_evict + 1) % JJ_SQLITE_CACHE_MAX;
            if (!c->st->busy) {
                sqlite3_finalize(c->st->st);
                free(c->st);
                free(c->sql);
                e = c;
            }
        }
        if (!e) {
            free(key);
            return 0;
        }
    }
    e->sql = key;
    e->len = len;
    e->used = consumed;
    e->hash = hash;
    e->st = st;
    st->cached = 1;
    st->busy = 1;
    return 0;
}

int jj_sqlite_reset(jj_sqlite_stmt *st, jj_error *err)
{
    jj_error_clear(err);
    if (!st)
        return jj_error_set(err, JJ_EINVAL, "sqlite reset: no statement");
    /* sqlite3_reset repeats the last step's error, which was reported then. */
    sqlite3_reset(st->st);
    sqlite3_clear_bindings(st->st);
    return 0;
}

int jj_sqlite_param_count(jj_sqlite_stmt *st)
{
    return st ? sqlite3_bind_parameter_count(st->st) : 0;
}

const char *jj_sqlite_param_name(jj_sqlite_stmt *st, int i)
{
    return st ? sqlite3_bind_parameter_name(st->st, i) : NULL;
}

static inline int bound(jj_sqlite_stmt *st, int rc, jj_error *err)
{
    return rc == SQLITE_OK ? 0 : fail(err, sqlite3_db_handle(st->st), rc, "bind");
}

int jj_sqlite_bind_null(jj_sqlite_stmt *st, int i, jj_error *err)
{
    jj_error_clear(err);
    if (!st)
        return jj_error_set(err, JJ_EINVAL, "sqlite bind: no statement");
    return bound(st, sqlite3_bind_null(st->st, i), err);
}

int jj_sqlite_bind_int(jj_sqlite_stmt *st, int i, int64_t v, jj_error *err)
{
    jj_error_clear(err);
    if (!st)
        return jj_error_set(err, JJ_EINVAL, "sqlite bind: no statement");
    return bound(st, sqlite3_bind_int64(st->st, i, (sqlite3_int64)v), err);
}

int jj_sqlite_bind_double(jj_sqlite_stmt *st, int i, double v, jj_error *err)
{
    jj_error_clear(err);
    if (!st)
        return jj_error_set(err, JJ_EINVAL, "sqlite bind: no statement");
    return bound(st, sqlite3_bind_double(st->st, i, v), err);
}

int jj_sqlite_bind_text(jj_sqlite_stmt *st, int i, const char *s, size_t len, jj_error *err)
{
    jj_error_clear(err);
    if (!st || (!s && len))
        return jj_error_set(err, JJ_EINVAL, "sqlite bind: no statement or text");
    return bound(st, sqlite3_bind_text64(st->st, i, s ? s : "", len, SQLITE_TRANSIENT, SQLITE_UTF8),
                 err);
}

int jj_sqlite_bind_blob(jj_sqlite_stmt *st, int i, const void *p, size_t len, jj_error *err)
{
    jj_error_clear(err);
    if (!st || (!p && len))
        return jj_error_set(err, JJ_EINVAL, "sqlite bind: no statement or blob");
    /* A NULL pointer would bind SQL NULL; an empty blob is still a blob. */
    return bound(st, sqlite3_bind_blob64(st->st, i, p ? p : "", len, SQLITE_TRANSIENT), err);
}

int jj_sqlite_step(jj_sqlite_stmt *st, jj_error *err)
{
    jj_error_clear(err);
    if (!st)
        return jj_error_set(err, JJ_EINVAL, "sqlite step: no statement");
    int rc = sqlite3_step(st->st);
    if (rc == SQLITE_ROW)
        return JJ_SQLITE_ROW;
    if (rc == SQLITE_DONE)
        return JJ_SQLITE_DONE;
    return fail(err, sqlite3_db_handle(st->st), rc, "step");
}

int jj_sqlite_column_count(jj_sqlite_stmt *st)
{
    return st ? sqlite3_column_count(st->st) : 0;
}

const char *jj_sqlite_column_name(jj_sqlite_stmt *st, int i)
{
    const char *name = st ? sqlite3_column_name(st->st, i) : NULL;
    return name ? name : "";
}

int jj_sqlite_column_type(jj_sqlite_stmt *st, int i)
{
    switch (st ? sqlite3_column_type(st->st, i) : SQLITE_NULL) {
    case SQLITE_INTEGER: return JJ_SQLITE_INTEGER;
    case SQLITE_FLOAT: return JJ_SQLITE_FLOAT;
    case SQLITE_TEXT: return JJ_SQLITE_TEXT;
    case SQLITE_BLOB: return JJ_SQLITE_BLOB;
    default: return JJ_SQLITE_NULL;
    }
}

int64_t jj_sqlite_column_int(jj_sqlite_stmt *st, int i)
{
    return st ? (int64_t)sqlite3_column_int64(st->st, i) : 0;
}

double jj_sqlite_column_double(jj_sqlite_stmt *st, int i)
{
    return st ? sqlite3_column_double(st->st, i) : 0.0;
}

const void *jj_sqlite_column_bytes(jj_sqlite_stmt *st, int i, size_t *len)
{
    const void *p = NULL;
    size_t n = 0;
    if (st) {
        /* Ask for the pointer first: it fixes the representation that
         * sqlite3_column_bytes then measures. */
        if (sqlite3_column_type(st->st, i) == SQLITE_BLOB)
            p = sqlite3_column_blob(st->st, i);
        else
            p = sqlite3_column_text(st->st, i);
        n = (size_t)sqlite3_column_bytes(st->st, i);
    }
    if (len)
        *len = p ? n : 0;
    return p ? p : "";
}

static int run_simple(jj_sqlite *db, const char *sql, const char *op, jj_error *err)
{
    jj_error_clear(err);
    if (!db)
        return jj_error_set(err, JJ_EINVAL, "sqlite %s: no database", op);
    int rc = sqlite3_exec(db->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : fail(err, db->db, rc, op);
}

int jj_sqlite_begin(jj_sqlite *db, jj_error *err)
{
    return run_simple(db, "BEGIN IMMEDIATE", "begin", err);
}

int jj_sqlite_commit(jj_sqlite *db, jj_error *err)
{
    return run_simple(db, "COMMIT", "commit", err);
}

int jj_sqlite_rollback(jj_sqlite *db, jj_error *err)
{
    if (db && sqlite3_get_autocommit(db->db)) {
        jj_error_clear(err);
        return 0;
    }
    return run_simple(db, "ROLLBACK", "rollback", err);
}

int jj_sqlite_in_transaction(jj_sqlite *db)
{
    return db ? !sqlite3_get_autocommit(db->db) : 0;
}
