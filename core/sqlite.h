/* sqlite.h: a thin, safe layer over libsqlite3 for the state store.
 *
 * The sqlite state store (lua/juju/state/sqlite.lua) keeps juju's state
 * documents in one file, `<data-dir>/state.db`, which holds secrets (the
 * serving info, password hashes): a database created here is therefore made
 * 0600 before SQLite ever touches it, and SQLite gives its -wal, -shm and
 * -journal files the same mode. Every failure comes back as a jj_error whose
 * message names the operation ("sqlite prepare: near \"x\": syntax error")
 * and whose lib_code is SQLite's extended result code.
 *
 * Codes: SQLITE_BUSY/SQLITE_LOCKED (the busy timeout ran out) -> JJ_ETIMEOUT;
 * a UNIQUE or PRIMARY KEY violation -> JJ_EEXIST; SQLITE_READONLY and
 * SQLITE_PERM -> JJ_EACCES; SQLITE_NOTADB/SQLITE_CORRUPT -> JJ_ECORRUPT;
 * SQLITE_NOMEM -> JJ_ENOMEM; SQLITE_RANGE/SQLITE_MISUSE -> JJ_EINVAL;
 * anything else -> JJ_ESQLITE.
 *
 * A connection and its statements belong to one thread at a time. Closing
 * a connection that still has statements is allowed: SQLite keeps it alive
 * until the last statement is finalized (sqlite3_close_v2).
 */
#ifndef JUJU_CORE_SQLITE_H
#define JUJU_CORE_SQLITE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef struct jj_sqlite jj_sqlite;
typedef struct jj_sqlite_stmt jj_sqlite_stmt;

/* Open flags. */
enum {
    JJ_SQLITE_CREATE = 1 << 0,   /* create the file (mode 0600) when absent */
    JJ_SQLITE_READONLY = 1 << 1, /* open read-only; excludes JJ_SQLITE_CREATE */
};

/* Column value types, as SQLite stores them. */
enum {
    JJ_SQLITE_INTEGER = 1,
    JJ_SQLITE_FLOAT = 2,
    JJ_SQLITE_TEXT = 3,
    JJ_SQLITE_BLOB = 4,
    JJ_SQLITE_NULL = 5,
};

/* jj_sqlite_step results besides errors. */
enum {
    JJ_SQLITE_DONE = 0,
    JJ_SQLITE_ROW = 1,
};

/* Opens the database file at path. With JJ_SQLITE_CREATE a missing file is
 * created with mode 0600 (whatever the umask; its parent must exist); an
 * existing file keeps its mode. Without it a missing file is JJ_ENOENT.
 * busy_timeout_ms (>= 0) bounds how long a statement waits for another
 * connection's lock before failing with JJ_ETIMEOUT. Foreign keys are
 * enforced. On success *out receives a connection the caller owns (free with
 * jj_sqlite_close). */
int jj_sqlite_open(const char *path, int flags, int busy_timeout_ms, jj_sqlite **out,
                   jj_error *err);

/* Closes db (an open transaction is rolled back). db may be NULL. Takes
 * ownership of db; statements still alive keep the connection until they
 * are finalized. */
void jj_sqlite_close(jj_sqlite *db);

/* The path db was opened with (owned by db). */
const char *jj_sqlite_path(const jj_sqlite *db);

/* Runs every statement in sql (no parameters, results are discarded). If
 * changes is not NULL it receives the number of rows inserted, updated or
 * deleted by those statements. */
int jj_sqlite_exec(jj_sqlite *db, const char *sql, int64_t *changes, jj_error *err);

/* Rows changed by every INSERT/UPDATE/DELETE since db was opened. */
int64_t jj_sqlite_total_changes(jj_sqlite *db);

/* Compiles the first statement of sql[0..len). *used (may be NULL)
 * receives the number of bytes consumed, so callers can detect or run the
 * rest. An sql without any statement (blank or comments only) is JJ_EINVAL.
 * On success *out receives a statement the caller owns (free with
 * jj_sqlite_finalize). */
int jj_sqlite_prepare(jj_sqlite *db, const char *sql, size_t len, jj_sqlite_stmt **out,
                      size_t *used, jj_error *err);

/* Like jj_sqlite_prepare, from the connection's statement cache: the first
 * use of a text compiles it, later uses get the same compiled statement
 * back, reset and unbound (the cache keeps up to JJ_SQLITE_CACHE_MAX
 * texts). A statement of the cache that is still in use (not yet given
 * back) is not handed out twice: a fresh one is prepared instead. Give the
 * statement back with jj_sqlite_finalize, which returns it to the cache;
 * it may outlive jj_sqlite_close (it is then freed when given back). */
#define JJ_SQLITE_CACHE_MAX 64
int jj_sqlite_prepare_cached(jj_sqlite *db, const char *sql, size_t len, jj_sqlite_stmt **out,
                             size_t *used, jj_error *err);

/* Frees st, or gives a cached statement back to its cache. st may be NULL.
 * Takes ownership of st. */
void jj_sqlite_finalize(jj_sqlite_stmt *st);

/* Rewinds st so it can be stepped again and clears its bindings. */
int jj_sqlite_reset(jj_sqlite_stmt *st, jj_error *err);

/* Number of parameters (the largest index) of st. */
int jj_sqlite_param_count(jj_sqlite_stmt *st);

/* Name of parameter i (1-based) with its prefix (":name", "@name", "$name",
 * "?7"), or NULL for a plain "?". Owned by st. */
const char *jj_sqlite_param_name(jj_sqlite_stmt *st, int i);

/* Binds parameter i (1-based). Text and blobs are copied. */
int jj_sqlite_bind_null(jj_sqlite_stmt *st, int i, jj_error *err);
int jj_sqlite_bind_int(jj_sqlite_stmt *st, int i, int64_t v, jj_error *err);
int jj_sqlite_bind_double(jj_sqlite_stmt *st, int i, double v, jj_error *err);
int jj_sqlite_bind_text(jj_sqlite_stmt *st, int i, const char *s, size_t len, jj_error *err);
int jj_sqlite_bind_blob(jj_sqlite_stmt *st, int i, const void *p, size_t len, jj_error *err);

/* Runs st to its next row: JJ_SQLITE_ROW when a row is available through
 * the column functions, JJ_SQLITE_DONE when finished, or a negative code. */
int jj_sqlite_step(jj_sqlite_stmt *st, jj_error *err);

/* Result columns of st. Indexes are 0-based. Names and bytes are owned by
 * st and valid until the next step, reset or finalize. */
int jj_sqlite_column_count(jj_sqlite_stmt *st);
const char *jj_sqlite_column_name(jj_sqlite_stmt *st, int i);
int jj_sqlite_column_type(jj_sqlite_stmt *st, int i);
int64_t jj_sqlite_column_int(jj_sqlite_stmt *st, int i);
double jj_sqlite_column_double(jj_sqlite_stmt *st, int i);
/* Text or blob bytes; *len receives their length. Never NULL: an empty or
 * NULL value gives "" with length 0. Text is NUL-terminated. */
const void *jj_sqlite_column_bytes(jj_sqlite_stmt *st, int i, size_t *len);

/* BEGIN IMMEDIATE: takes the write lock now (waiting up to the busy
 * timeout), so a transaction never fails half-way on a lock upgrade. */
int jj_sqlite_begin(jj_sqlite *db, jj_error *err);
int jj_sqlite_commit(jj_sqlite *db, jj_error *err);
/* Rolls back; a no-op when no transaction is open. */
int jj_sqlite_rollback(jj_sqlite *db, jj_error *err);
/* Whether a transaction is open on db. */
int jj_sqlite_in_transaction(jj_sqlite *db);

#endif
