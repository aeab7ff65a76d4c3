/* mongo.h: a small MongoDB client over libmongoc, speaking jj_yaml_node.
 *
 * The state server's database is MongoDB (Juju's own layout: database
 * "juju", the collections of spec 2.15). Documents cross this API as the
 * core's one tree type (yaml.h), so callers never see libbson: a mapping is
 * a BSON document with its keys in stored order (a command's name must be
 * its first key), a sequence a BSON array. Scalars map as follows.
 *
 *   tree -> BSON: null -> null; bool -> bool; int -> int32 when it fits
 *   (servers want `1`, `limit: 0` ... as int32), else int64; float ->
 *   double; string -> UTF-8 string, or binary (subtype 0) when the bytes
 *   are not valid UTF-8 or hold a NUL; mapping keys use their scalar text.
 *
 *   BSON -> tree: double -> float; int32/int64 -> int; string, symbol,
 *   JavaScript code -> string; binary -> string (the bytes); ObjectId ->
 *   24 lower-case hex digits; bool -> bool; datetime -> int (ms since the
 *   epoch); timestamp -> {t: seconds, i: increment}; decimal128 -> string;
 *   regex -> "/pattern/options"; null, undefined, minKey, maxKey, DBPointer
 *   -> null.
 *
 * Every operation is a database command sent with mongoc_client_command_
 * simple (insert/update/delete/find/getMore included), so what goes on the
 * wire is exactly the document built here and a test server sees one
 * command per call.
 *
 * Process-wide libmongoc state: libmongoc needs mongoc_init() once per
 * process; jj_mongo_client_new calls it every time (libmongoc guards it
 * with its own once-flag) and never calls mongoc_cleanup (other clients may
 * still live; the OS reclaims at exit). It also replaces libmongoc's log
 * handler, which would print to stderr, with one that drops messages: the
 * core never prints, and every failure reaches the caller as a jj_error.
 *
 * Errors: JJ_EMONGO for anything the server refused (lib_code = the server's
 * error code, message = its errmsg) and for authentication failures;
 * JJ_EEXIST for duplicate-key write errors (lib_code 11000); JJ_ETIMEOUT
 * when no server could be selected or the connection failed or timed out
 * (libmongoc does not tell a socket timeout from a reset); JJ_EINVAL for a
 * bad URI or document; JJ_ENOENT from jj_mongo_find_one when nothing
 * matches.
 *
 * Secrets: the password is copied into libmongoc's URI objects; the one we
 * build is wiped before it is freed, the copy the client keeps (and
 * libmongoc's SCRAM key cache) cannot be wiped from here.
 */
#ifndef JUJU_CORE_MONGO_H
#define JUJU_CORE_MONGO_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "yaml.h"

/* Timeouts applied when the URI does not set them, so that no call can
 * block for libmongoc's 5-minute socket default. */
#define JJ_MONGO_DEFAULT_CONNECT_TIMEOUT_MS 10000
#define JJ_MONGO_DEFAULT_SELECTION_TIMEOUT_MS 30000
#define JJ_MONGO_DEFAULT_SOCKET_TIMEOUT_MS 60000

/* Nesting limit of documents in both directions (servers allow 100). */
#define JJ_MONGO_MAX_DEPTH 128

typedef struct jj_mongo_client jj_mongo_client;

typedef struct jj_mongo_opts {
    const char *app_name;    /* handshake application name; NULL: none */
    const char *username;    /* NULL: whatever the URI says */
    const char *password;    /* with username; secret */
    const char *auth_source; /* NULL: the URI's, else "admin" */
    int tls;                 /* non-zero: TLS (implied by the tls_* fields) */
    const char *tls_ca_file;       /* PEM CA bundle the server must chain to */
    const char *tls_cert_key_file; /* client certificate + key (PEM) */
    int tls_allow_invalid_hostnames; /* Juju's certificates name no host (W5) */
} jj_mongo_opts;

/* Creates a client (no connection is made until the first call). opts may
 * be NULL. On success *out is a new client the caller owns (free with
 * jj_mongo_client_free). JJ_EINVAL for a malformed URI (the URI is not
 * echoed: it may hold a password) or a bad option. */
int jj_mongo_client_new(const char *uri, const jj_mongo_opts *opts, jj_mongo_client **out,
                        jj_error *err);

/* Closes the connections and frees the client. NULL is fine. */
void jj_mongo_client_free(jj_mongo_client *c);

/* Runs cmd (a mapping, command name first) against database db. On success
 * *reply is the server's reply document, owned by the caller. A reply with
 * ok: 0 is JJ_EMONGO "<command>: <errmsg>" with lib_code = its code. */
int jj_mongo_command(jj_mongo_client *c, const char *db, const jj_yaml_node *cmd,
                     jj_yaml_node **reply, jj_error *err);

/* Inserts one document. JJ_EEXIST when its _id (or another unique key) is
 * taken; other write errors are JJ_EMONGO. */
int jj_mongo_insert(jj_mongo_client *c, const char *db, const char *coll, const jj_yaml_node *doc,
                    jj_error *err);

typedef struct jj_mongo_find_opts {
    const jj_yaml_node *sort;       /* NULL: server order */
    const jj_yaml_node *projection; /* NULL: whole documents */
    int64_t limit;                  /* 0: no limit */
} jj_mongo_find_opts;

/* All documents matching filter (NULL: every document), following the
 * cursor to its end. On success *docs is a new sequence owned by the
 * caller. fo may be NULL. */
int jj_mongo_find(jj_mongo_client *c, const char *db, const char *coll, const jj_yaml_node *filter,
                  const jj_mongo_find_opts *fo, jj_yaml_node **docs, jj_error *err);

/* The first matching document (caller owns *doc), or JJ_ENOENT. */
int jj_mongo_find_one(jj_mongo_client *c, const char *db, const char *coll,
                      const jj_yaml_node *filter, jj_yaml_node **doc, jj_error *err);

#define JJ_MONGO_UPSERT 1u /* insert when nothing matches */
#define JJ_MONGO_MULTI 2u  /* update every match, not just the first */

typedef struct jj_mongo_update_result {
    int64_t matched;  /* documents that matched the filter */
    int64_t modified; /* of those, documents actually changed */
    int64_t upserted; /* 1 when an upsert inserted a document */
} jj_mongo_update_result;

/* Applies update (operators such as $set, or a replacement document) to
 * the documents matching filter. res may be NULL. */
int jj_mongo_update(jj_mongo_client *c, const char *db, const char *coll,
                    const jj_yaml_node *filter, const jj_yaml_node *update, unsigned flags,
                    jj_mongo_update_result *res, jj_error *err);

/* Deletes every document matching filter; *removed (may be NULL) gets the
 * count. */
int jj_mongo_remove(jj_mongo_client *c, const char *db, const char *coll,
                    const jj_yaml_node *filter, int64_t *removed, jj_error *err);

/* --- conversions and error mapping (pure; no server needed) ------------- */

/* Encodes a mapping as one BSON document. On success *out is a malloc'd
 * buffer of *len bytes the caller frees. JJ_EINVAL for a non-mapping, a key
 * holding NUL or nesting beyond JJ_MONGO_MAX_DEPTH; JJ_ERANGE when the
 * document exceeds BSON's size limit. */
int jj_mongo_bson_encode(const jj_yaml_node *doc, uint8_t **out, size_t *len, jj_error *err);

/* Decodes one BSON document of exactly len bytes. On success *out is a new
 * mapping the caller owns. JJ_ECORRUPT for malformed BSON. */
int jj_mongo_bson_decode(const uint8_t *data, size_t len, jj_yaml_node **out, jj_error *err);

/* Turns a libmongoc error (API version 2: domain, code, message) into a
 * jj_error as described at the top, prefixed with what ("insert juju.
 * machines"); returns the JJ_E* code. */
int jj_mongo_map_error(uint32_t domain, uint32_t code, const char *message, const char *what,
                       jj_error *err);

#endif
