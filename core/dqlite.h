/* dqlite.h: a client for Dqlite's wire protocol (version 1).
 *
 * One jj_dqlite is one connection to one Dqlite node over TCP, optionally
 * mutual TLS (OpenSSL: the client presents cert+key, verifies the server
 * against the given CA and checks the server name). Requests are strictly
 * sequential, as the protocol wants. Every request is bounded by the
 * connection's timeout; a timeout, an I/O failure or a malformed answer in
 * the middle of a message leaves the connection broken (later requests fail
 * with JJ_EIO without touching the socket).
 *
 * Codes: JJ_ECONNECT (cannot reach the address), JJ_ETLS (handshake,
 * verification, an alert from the peer), JJ_ETIMEOUT, JJ_EPROTO (a length,
 * type or layout from the wire that does not fit), JJ_ENOTLEADER
 * (SQLITE_IOERR_NOT_LEADER or SQLITE_IOERR_LEADERSHIP_LOST), JJ_EEXIST (a
 * UNIQUE or PRIMARY KEY constraint), JJ_EBUSY (SQLITE_BUSY/SQLITE_LOCKED),
 * JJ_EDQLITE (any other failure response: lib_code is the server's code, the
 * message its text). Messages start with "dqlite ADDRESS: REQUEST: ".
 *
 * A connection belongs to one thread at a time. No global state: OpenSSL's
 * own initialisation is implicit (OpenSSL >= 1.1).
 */
#ifndef JUJU_CORE_DQLITE_H
#define JUJU_CORE_DQLITE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef struct jj_dqlite jj_dqlite;

/* PEM texts (NUL-terminated), borrowed for the duration of the connect. */
typedef struct jj_dqlite_tls {
    const char *ca;          /* CA certificate(s) the server must chain to */
    const char *cert;        /* client certificate (chain: leaf first); NULL: none */
    const char *key;         /* its private key (NULL exactly when cert is) */
    const char *server_name; /* name (DNS or IP) to verify; NULL: "juju-dqlite" */
} jj_dqlite_tls;

/* Node roles, as on the wire. */
enum { JJ_DQLITE_VOTER = 0, JJ_DQLITE_STANDBY = 1, JJ_DQLITE_SPARE = 2 };

/* Value types, as on the wire. */
enum {
    JJ_DQLITE_INTEGER = 1,
    JJ_DQLITE_FLOAT = 2,
    JJ_DQLITE_TEXT = 3,
    JJ_DQLITE_BLOB = 4,
    JJ_DQLITE_NULL = 5,
    JJ_DQLITE_UNIXTIME = 9, /* integer seconds since the epoch */
    JJ_DQLITE_ISO8601 = 10, /* text */
    JJ_DQLITE_BOOLEAN = 11, /* integer 0/1 */
};

/* A parameter or a column value. For TEXT, BLOB and ISO8601, s/len hold the
 * bytes (in a result set: owned by it, NUL-terminated). */
typedef struct jj_dqlite_value {
    int type;
    int64_t i; /* INTEGER, UNIXTIME, BOOLEAN */
    double f;  /* FLOAT */
    const char *s;
    size_t len;
} jj_dqlite_value;

typedef struct jj_dqlite_node {
    uint64_t id;
    char *address; /* owned by the array */
    int role;      /* JJ_DQLITE_VOTER ... */
} jj_dqlite_node;

/* A whole result set: rows[r * ncols + c]. Free with jj_dqlite_rows_free. */
typedef struct jj_dqlite_rows {
    size_t ncols;
    char **names; /* ncols column names */
    size_t nrows;
    jj_dqlite_value *values;
    size_t cap; /* allocated values */
} jj_dqlite_rows;

/* Most parameters one request carries (the protocol's one-byte count). */
#define JJ_DQLITE_MAX_PARAMS 255

/* Connects to address ("host:port", "[v6]:port"), over mutual TLS when tls is
 * not NULL, does the protocol handshake and one REQUEST_LEADER as a probe
 * (so a refused client certificate or a peer that is not Dqlite fails here).
 * timeout_ms (> 0) bounds the connect and then every request. On success
 * *out receives a connection the caller owns (jj_dqlite_close). */
int jj_dqlite_connect(const char *address, const jj_dqlite_tls *tls, int timeout_ms,
                      jj_dqlite **out, jj_error *err);

/* Closes c (its database and statements go with it). c may be NULL. */
void jj_dqlite_close(jj_dqlite *c);

/* The address c was connected to (owned by c). */
const char *jj_dqlite_address(const jj_dqlite *c);

/* REQUEST_LEADER: *id and *address (malloc'd, the caller frees) of the leader
 * this node knows; *id 0 and *address NULL when it knows none. */
int jj_dqlite_leader(jj_dqlite *c, uint64_t *id, char **address, jj_error *err);

/* REQUEST_CLIENT: registers the client (id 0 is fine). */
int jj_dqlite_client(jj_dqlite *c, uint64_t id, jj_error *err);

/* REQUEST_CLUSTER (format 1, with roles). *nodes (free with
 * jj_dqlite_nodes_free) and *n receive the cluster's configuration. */
int jj_dqlite_cluster(jj_dqlite *c, jj_dqlite_node **nodes, size_t *n, jj_error *err);
void jj_dqlite_nodes_free(jj_dqlite_node *nodes, size_t n);

/* REQUEST_ADD (as a spare), REQUEST_ASSIGN, REQUEST_REMOVE: to the leader. */
int jj_dqlite_add(jj_dqlite *c, uint64_t id, const char *address, jj_error *err);
int jj_dqlite_assign(jj_dqlite *c, uint64_t id, int role, jj_error *err);
int jj_dqlite_remove(jj_dqlite *c, uint64_t id, jj_error *err);

/* REQUEST_OPEN: opens database name on c (once per connection). */
int jj_dqlite_open(jj_dqlite *c, const char *name, jj_error *err);

/* EXEC_SQL: runs sql (every statement in it) with the n parameters
 * (n <= JJ_DQLITE_MAX_PARAMS; those of the last statement). last_id and
 * changes (may be NULL) receive the result. */
int jj_dqlite_exec_sql(jj_dqlite *c, const char *sql, const jj_dqlite_value *params, size_t n,
                       uint64_t *last_id, uint64_t *changes, jj_error *err);

/* QUERY_SQL: runs one query, collecting every batch of rows into *rows
 * (zeroed first; the caller frees it with jj_dqlite_rows_free, also on
 * failure). */
int jj_dqlite_query_sql(jj_dqlite *c, const char *sql, const jj_dqlite_value *params, size_t n,
                        jj_dqlite_rows *rows, jj_error *err);

/* PREPARE / EXEC / QUERY / FINALIZE on a statement id. *nparams (may be NULL)
 * receives the statement's parameter count. */
int jj_dqlite_prepare(jj_dqlite *c, const char *sql, uint32_t *stmt, uint64_t *nparams,
                      jj_error *err);
int jj_dqlite_exec(jj_dqlite *c, uint32_t stmt, const jj_dqlite_value *params, size_t n,
                   uint64_t *last_id, uint64_t *changes, jj_error *err);
int jj_dqlite_query(jj_dqlite *c, uint32_t stmt, const jj_dqlite_value *params, size_t n,
                    jj_dqlite_rows *rows, jj_error *err);
int jj_dqlite_finalize(jj_dqlite *c, uint32_t stmt, jj_error *err);

void jj_dqlite_rows_free(jj_dqlite_rows *rows);

/* --- decoders, public for the fuzzer (tests/fuzz/fuzz_dqlite.c) ----------
 * body[0..len) is one response body of the given type (len a multiple of 8
 * on the wire, but any length is checked). Each returns 0, JJ_EPROTO for a
 * body that does not fit, or the failure's code for a FAILURE response. */

/* ROWS: appends the batch to rows (names must match an earlier batch's);
 * *more is 1 when the batch ended with the "more batches follow" marker. */
int jj_dqlite_decode_rows(const uint8_t *body, size_t len, jj_dqlite_rows *rows, int *more,
                          jj_error *err);
/* NODES (format 1). */
int jj_dqlite_decode_nodes(const uint8_t *body, size_t len, jj_dqlite_node **nodes, size_t *n,
                           jj_error *err);
/* FAILURE: fills err with the mapped code and the server's text. */
int jj_dqlite_decode_failure(const uint8_t *body, size_t len, jj_error *err);

#endif
