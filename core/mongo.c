/* mongo.c: MongoDB commands over libmongoc with jj_yaml_node documents
 * (see mongo.h). */
#include "mongo.h"

#include <limits.h>
#include <mongoc/mongoc.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct jj_mongo_client {
    mongoc_client_t *client;
};

/* Server codes that mean "a unique index already holds this key". */
static inline int is_duplicate_key(uint32_t code)
{
    return code == 11000 || code == 11001 || code == 12582;
}

/* ---- errors ----------------------------------------------------------------- */

int jj_mongo_map_error(uint32_t domain, uint32_t code, const char *message, const char *what,
                       jj_error *err)
{
    const char *msg = message && *message ? message : "unknown error";
    what = what ? what : "mongo";
    switch (domain) {
    case MONGOC_ERROR_SERVER_SELECTION:
    case MONGOC_ERROR_STREAM:
        return jj_error_set_lib(err, JJ_ETIMEOUT, code, "%s: server unreachable or not answering: %s",
                                what, msg);
    case MONGOC_ERROR_CLIENT:
        if (code == MONGOC_ERROR_CLIENT_AUTHENTICATE)
            return jj_error_set_lib(err, JJ_EMONGO, code, "%s: authentication failed: %s", what,
                                    msg);
        return jj_error_set_lib(err, JJ_EMONGO, code, "%s: %s", what, msg);
    case MONGOC_ERROR_SASL:
    case MONGOC_ERROR_SCRAM:
        return jj_error_set_lib(err, JJ_EMONGO, code, "%s: authentication failed: %s", what, msg);
    case MONGOC_ERROR_BSON:
        return jj_error_set_lib(err, JJ_EINVAL, code, "%s: %s", what, msg);
    case MONGOC_ERROR_COMMAND:
        if (code == MONGOC_ERROR_COMMAND_INVALID_ARG)
            return jj_error_set_lib(err, JJ_EINVAL, code, "%s: %s", what, msg);
        break;
    case MONGOC_ERROR_SERVER:
    case MONGOC_ERROR_WRITE_CONCERN:
    case MONGOC_ERROR_QUERY:
        if (is_duplicate_key(code))
            return jj_error_set_lib(err, JJ_EEXIST, code, "%s: %s (code %u)", what, msg,
                                    (unsigned)code);
        if (code == 18) /* AuthenticationFailed, when the server says it itself */
            return jj_error_set_lib(err, JJ_EMONGO, code,
                                    "%s: authentication failed: %s (code %u)", what, msg,
                                    (unsigned)code);
        return jj_error_set_lib(err, JJ_EMONGO, code, "%s: %s (code %u)", what, msg,
                                (unsigned)code);
    default: break;
    }
    return jj_error_set_lib(err, JJ_EMONGO, code, "%s: %s", what, msg);
}

static int map_bson_error(const bson_error_t *e, const char *what, jj_error *err)
{
    return jj_mongo_map_error(e->domain, e->code, e->message, what, err);
}

/* ---- tree -> BSON ---------------------------------------------------------- */

static int too_big(jj_error *err)
{
    return jj_error_set(err, JJ_ERANGE, "document exceeds the BSON size limit");
}

static int append_node(bson_t *b, const char *key, int keylen, const jj_yaml_node *n, int depth,
                       jj_error *err);

static int append_map(bson_t *b, const jj_yaml_node *map, int depth, jj_error *err)
{
    size_t count = jj_yaml_count(map);
    for (size_t i = 0; i < count; i++) {
        const jj_yaml_node *k = jj_yaml_map_key_at(map, i);
        size_t klen = 0;
        const char *text = jj_yaml_text(k, &klen);
        if (!text)
            return jj_error_set(err, JJ_EINVAL, "a document key must be a scalar");
        if (memchr(text, '\0', klen) || klen > INT_MAX)
            return jj_error_set(err, JJ_EINVAL, "a document key must not hold a NUL byte");
        int rc = append_node(b, text, (int)klen, jj_yaml_map_value_at(map, i), depth, err);
        if (rc)
            return rc;
    }
    return 0;
}

static int append_seq(bson_t *b, const jj_yaml_node *seq, int depth, jj_error *err)
{
    size_t count = jj_yaml_count(seq);
    if (count > UINT32_MAX)
        return too_big(err);
    for (size_t i = 0; i < count; i++) {
        char buf[16];
        const char *k;
        size_t klen = bson_uint32_to_string((uint32_t)i, &k, buf, sizeof buf);
        int rc = append_node(b, k, (int)klen, jj_yaml_seq_at(seq, i), depth, err);
        if (rc)
            return rc;
    }
    return 0;
}

static int append_node(bson_t *b, const char *key, int keylen, const jj_yaml_node *n, int depth,
                       jj_error *err)
{
    if (depth > JJ_MONGO_MAX_DEPTH)
        return jj_error_set(err, JJ_EINVAL, "document nested deeper than %d levels",
                            JJ_MONGO_MAX_DEPTH);
    bool ok = true;
    size_t len = 0;
    const char *s;
    bson_t child;
    int rc = 0;
    switch (jj_yaml_type_of(n)) {
    case JJ_YAML_NULL: ok = bson_append_null(b, key, keylen); break;
    case JJ_YAML_BOOL: ok = bson_append_bool(b, key, keylen, jj_yaml_bool(n) != 0); break;
    case JJ_YAML_INT: {
        int64_t v = jj_yaml_int(n);
        if (v >= INT32_MIN && v <= INT32_MAX)
            ok = bson_append_int32(b, key, keylen, (int32_t)v);
        else
            ok = bson_append_int64(b, key, keylen, v);
        break;
    }
    case JJ_YAML_FLOAT: ok = bson_append_double(b, key, keylen, jj_yaml_float(n)); break;
    case JJ_YAML_STRING:
        s = jj_yaml_text(n, &len);
        if (!s)
            s = "";
        if (len > INT_MAX)
            return too_big(err);
        if (bson_utf8_validate(s, len, false))
            ok = bson_append_utf8(b, key, keylen, s, (int)len);
        else
            ok = bson_append_binary(b, key, keylen, BSON_SUBTYPE_BINARY, (const uint8_t *)s,
                                    (uint32_t)len);
        break;
    case JJ_YAML_SEQ:
        if (!bson_append_array_begin(b, key, keylen, &child))
            return too_big(err);
        rc = append_seq(&child, n, depth + 1, err);
        ok = bson_append_array_end(b, &child);
        break;
    case JJ_YAML_MAP:
        if (!bson_append_document_begin(b, key, keylen, &child))
            return too_big(err);
        rc = append_map(&child, n, depth + 1, err);
        ok = bson_append_document_end(b, &child);
        break;
    }
    if (rc)
        return rc;
    return ok ? 0 : too_big(err);
}

/* Builds b (initialised here; the caller destroys it) from a mapping, or
 * an empty document when doc is NULL. */
static int to_bson(const jj_yaml_node *doc, bson_t *b, const char *what, jj_error *err)
{
    bson_init(b);
    if (!doc)
        return 0;
    if (jj_yaml_type_of(doc) != JJ_YAML_MAP)
        return jj_error_set(err, JJ_EINVAL, "%s must be a mapping, not %s", what,
                            jj_yaml_type_name(jj_yaml_type_of(doc)));
    int rc = append_map(b, doc, 1, err);
    if (rc)
        jj_error_prefix(err, "%s", what);
    return rc;
}

/* Appends a mapping (or {} for NULL) as a sub-document of b. */
static int append_doc(bson_t *b, const char *key, const jj_yaml_node *doc, const char *what,
                      jj_error *err)
{
    if (doc && jj_yaml_type_of(doc) != JJ_YAML_MAP)
        return jj_error_set(err, JJ_EINVAL, "%s must be a mapping, not %s", what,
                            jj_yaml_type_name(jj_yaml_type_of(doc)));
    bson_t child;
    if (!bson_append_document_begin(b, key, -1, &child))
        return too_big(err);
    int rc = doc ? append_map(&child, doc, 2, err) : 0;
    if (!bson_append_document_end(b, &child) && !rc)
        rc = too_big(err);
    if (rc)
        jj_error_prefix(err, "%s", what);
    return rc;
}

int jj_mongo_bson_encode(const jj_yaml_node *doc, uint8_t **out, size_t *len, jj_error *err)
{
    if (!doc)
        return jj_error_set(err, JJ_EINVAL, "document must be a mapping, not nothing");
    bson_t b;
    int rc = to_bson(doc, &b, "document", err);
    if (!rc) {
        *out = malloc(b.len);
        if (!*out) {
            rc = jj_error_set(err, JJ_ENOMEM, "out of memory");
        } else {
            memcpy(*out, bson_get_data(&b), b.len);
            *len = b.len;
        }
    }
    bson_destroy(&b);
    return rc;
}

/* ---- BSON -> tree ---------------------------------------------------------- */

static int nomem(jj_error *err)
{
    return jj_error_set(err, JJ_ENOMEM, "out of memory");
}

static int decode_doc(bson_iter_t *it, int is_array, int depth, jj_yaml_node **out, jj_error *err);

static int decode_value(bson_iter_t *it, int depth, jj_yaml_node **out, jj_error *err)
{
    uint32_t len = 0;
    const char *s = NULL;
    jj_yaml_node *n = NULL;
    switch (bson_iter_type(it)) {
    case BSON_TYPE_DOUBLE: n = jj_yaml_new_float(bson_iter_double(it)); break;
    case BSON_TYPE_UTF8:
        s = bson_iter_utf8(it, &len);
        n = jj_yaml_new_stringn(s, len);
        break;
    case BSON_TYPE_SYMBOL:
        s = bson_iter_symbol(it, &len);
        n = jj_yaml_new_stringn(s, len);
        break;
    case BSON_TYPE_CODE:
        s = bson_iter_code(it, &len);
        n = jj_yaml_new_stringn(s, len);
        break;
    case BSON_TYPE_CODEWSCOPE: {
        uint32_t scope_len;
        const uint8_t *scope;
        s = bson_iter_codewscope(it, &len, &scope_len, &scope);
        n = jj_yaml_new_stringn(s, len);
        break;
    }
    case BSON_TYPE_DOCUMENT:
    case BSON_TYPE_ARRAY: {
        bson_iter_t child;
        if (!bson_iter_recurse(it, &child))
            return jj_error_set(err, JJ_ECORRUPT, "malformed BSON sub-document");
        return decode_doc(&child, bson_iter_type(it) == BSON_TYPE_ARRAY, depth + 1, out, err);
    }
    case BSON_TYPE_BINARY: {
        bson_subtype_t sub;
        const uint8_t *data;
        bson_iter_binary(it, &sub, &len, &data);
        n = jj_yaml_new_stringn((const char *)data, len);
        break;
    }
    case BSON_TYPE_OID: {
        char hex[25];
        bson_oid_to_string(bson_iter_oid(it), hex);
        n = jj_yaml_new_string(hex);
        break;
    }
    case BSON_TYPE_BOOL: n = jj_yaml_new_bool(bson_iter_bool(it)); break;
    case BSON_TYPE_DATE_TIME: n = jj_yaml_new_int(bson_iter_date_time(it)); break;
    case BSON_TYPE_REGEX: {
        const char *options = NULL;
        const char *re = bson_iter_regex(it, &options);
        size_t need = strlen(re) + strlen(options ? options : "") + 3;
        char *text = malloc(need);
        if (!text)
            return nomem(err);
        snprintf(text, need, "/%s/%s", re, options ? options : "");
        n = jj_yaml_new_string(text);
        free(text);
        break;
    }
    case BSON_TYPE_INT32: n = jj_yaml_new_int(bson_iter_int32(it)); break;
    case BSON_TYPE_INT64: n = jj_yaml_new_int(bson_iter_int64(it)); break;
    case BSON_TYPE_TIMESTAMP: {
        uint32_t t, i;
        bson_iter_timestamp(it, &t, &i);
        n = jj_yaml_new_map();
        if (n && (jj_yaml_map_set(n, "t", jj_yaml_new_int(t), err) != 0 ||
                  jj_yaml_map_set(n, "i", jj_yaml_new_int(i), err) != 0)) {
            jj_yaml_free(n);
            return nomem(err);
        }
        break;
    }
    case BSON_TYPE_DECIMAL128: {
        bson_decimal128_t d;
        char text[BSON_DECIMAL128_STRING];
        bson_iter_decimal128(it, &d);
        bson_decimal128_to_string(&d, text);
        n = jj_yaml_new_string(text);
        break;
    }
    default: n = jj_yaml_new_null(); break;
    }
    if (!n)
        return nomem(err);
    *out = n;
    return 0;
}

static int decode_doc(bson_iter_t *it, int is_array, int depth, jj_yaml_node **out, jj_error *err)
{
    if (depth > JJ_MONGO_MAX_DEPTH)
        return jj_error_set(err, JJ_ECORRUPT, "BSON nested deeper than %d levels",
                            JJ_MONGO_MAX_DEPTH);
    jj_yaml_node *n = is_array ? jj_yaml_new_seq() : jj_yaml_new_map();
    if (!n)
        return nomem(err);
    while (bson_iter_next(it)) {
        jj_yaml_node *v = NULL;
        int rc = decode_value(it, depth, &v, err);
        if (!rc)
            rc = is_array ? jj_yaml_seq_append(n, v, err)
                          : jj_yaml_map_set(n, bson_iter_key(it), v, err);
        if (rc) {
            jj_yaml_free(n);
            return rc;
        }
    }
    *out = n;
    return 0;
}

static int from_bson(const bson_t *b, jj_yaml_node **out, jj_error *err)
{
    bson_iter_t it;
    if (!bson_iter_init(&it, b))
        return jj_error_set(err, JJ_ECORRUPT, "malformed BSON document");
    return decode_doc(&it, 0, 1, out, err);
}

int jj_mongo_bson_decode(const uint8_t *data, size_t len, jj_yaml_node **out, jj_error *err)
{
    bson_t b;
    size_t off = 0;
    if (!data || !bson_init_static(&b, data, len))
        return jj_error_set(err, JJ_ECORRUPT, "malformed BSON: bad length header");
    if (!bson_validate(&b, BSON_VALIDATE_NONE, &off))
        return jj_error_set(err, JJ_ECORRUPT, "malformed BSON at offset %zu", off);
    return from_bson(&b, out, err);
}

/* ---- client ------------------------------------------------------------------ */

static void drop_log(mongoc_log_level_t level, const char *domain, const char *message, void *ud)
{
    (void)level;
    (void)domain;
    (void)message;
    (void)ud;
}

static void default_timeout(mongoc_uri_t *u, const char *option, int32_t ms)
{
    if (!mongoc_uri_has_option(u, option))
        mongoc_uri_set_option_as_int32(u, option, ms);
}

static void free_uri(mongoc_uri_t *u)
{
    const char *pw = mongoc_uri_get_password(u);
    if (pw) /* our own object: wipe the copy before it goes back to the heap */
        OPENSSL_cleanse((void *)pw, strlen(pw));
    mongoc_uri_destroy(u);
}

static int apply_opts(mongoc_uri_t *u, const jj_mongo_opts *o, jj_error *err)
{
    if (o->username) {
        if (!mongoc_uri_set_username(u, o->username) ||
            (o->password && !mongoc_uri_set_password(u, o->password)))
            return jj_error_set(err, JJ_EINVAL, "invalid mongo credentials (not UTF-8?)");
        const char *src = o->auth_source ? o->auth_source : mongoc_uri_get_auth_source(u);
        if (!mongoc_uri_set_auth_source(u, src ? src : "admin"))
            return jj_error_set(err, JJ_EINVAL, "invalid mongo auth source");
    } else if (o->password) {
        return jj_error_set(err, JJ_EINVAL, "a mongo password needs a username");
    }
    int tls = o->tls || o->tls_ca_file || o->tls_cert_key_file || o->tls_allow_invalid_hostnames;
    if (tls) {
        bool ok = mongoc_uri_set_option_as_bool(u, MONGOC_URI_TLS, true);
        if (ok && o->tls_ca_file)
            ok = mongoc_uri_set_option_as_utf8(u, MONGOC_URI_TLSCAFILE, o->tls_ca_file);
        if (ok && o->tls_cert_key_file)
            ok = mongoc_uri_set_option_as_utf8(u, MONGOC_URI_TLSCERTIFICATEKEYFILE,
                                               o->tls_cert_key_file);
        if (ok && o->tls_allow_invalid_hostnames)
            ok = mongoc_uri_set_option_as_bool(u, MONGOC_URI_TLSALLOWINVALIDHOSTNAMES, true);
        if (!ok)
            return jj_error_set(err, JJ_EINVAL, "invalid mongo TLS options");
    }
    return 0;
}

int jj_mongo_client_new(const char *uri, const jj_mongo_opts *opts, jj_mongo_client **out,
                        jj_error *err)
{
    if (!uri || !out)
        return jj_error_set(err, JJ_EINVAL, "mongo client: no URI");
    mongoc_init();
    mongoc_log_set_handler(drop_log, NULL);
    bson_error_t e;
    mongoc_uri_t *u = mongoc_uri_new_with_error(uri, &e);
    if (!u)
        return jj_error_set(err, JJ_EINVAL, "invalid mongo URI: %s", e.message);
    default_timeout(u, MONGOC_URI_CONNECTTIMEOUTMS, JJ_MONGO_DEFAULT_CONNECT_TIMEOUT_MS);
    default_timeout(u, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, JJ_MONGO_DEFAULT_SELECTION_TIMEOUT_MS);
    default_timeout(u, MONGOC_URI_SOCKETTIMEOUTMS, JJ_MONGO_DEFAULT_SOCKET_TIMEOUT_MS);
    int rc = opts ? apply_opts(u, opts, err) : 0;
    if (rc) {
        free_uri(u);
        return rc;
    }
    jj_mongo_client *c = calloc(1, sizeof *c);
    if (!c) {
        free_uri(u);
        return nomem(err);
    }
    c->client = mongoc_client_new_from_uri_with_error(u, &e);
    free_uri(u);
    if (!c->client) {
        free(c);
        return jj_error_set(err, JJ_EINVAL, "mongo client: %s", e.message);
    }
    mongoc_client_set_error_api(c->client, MONGOC_ERROR_API_VERSION_2);
    if (opts && opts->app_name && !mongoc_client_set_appname(c->client, opts->app_name)) {
        jj_mongo_client_free(c);
        return jj_error_set(err, JJ_EINVAL, "invalid mongo application name (too long?)");
    }
    *out = c;
    return 0;
}

void jj_mongo_client_free(jj_mongo_client *c)
{
    if (!c)
        return;
    if (c->client)
        mongoc_client_destroy(c->client);
    free(c);
}

/* ---- commands ---------------------------------------------------------------- */

/* Sends cmd; on success *reply holds the reply (initialised in every case;
 * the caller destroys it). */
static int run(jj_mongo_client *c, const char *db, const bson_t *cmd, bson_t *reply,
               const char *what, jj_error *err)
{
    bson_error_t e;
    if (!mongoc_client_command_simple(c->client, db, cmd, NULL, reply, &e))
        return map_bson_error(&e, what, err);
    return 0;
}

static int check_args(jj_mongo_client *c, const char *db, const char *coll, jj_error *err)
{
    if (!c || !c->client)
        return jj_error_set(err, JJ_EINVAL, "mongo: client is closed");
    if (!db || !*db)
        return jj_error_set(err, JJ_EINVAL, "mongo: empty database name");
    if (coll && !*coll)
        return jj_error_set(err, JJ_EINVAL, "mongo: empty collection name");
    return 0;
}

int jj_mongo_command(jj_mongo_client *c, const char *db, const jj_yaml_node *cmd,
                     jj_yaml_node **reply, jj_error *err)
{
    int rc = check_args(c, db, NULL, err);
    if (rc)
        return rc;
    if (jj_yaml_type_of(cmd) != JJ_YAML_MAP || jj_yaml_count(cmd) == 0)
        return jj_error_set(err, JJ_EINVAL, "mongo command must be a non-empty mapping");
    const char *name = jj_yaml_text(jj_yaml_map_key_at(cmd, 0), NULL);
    char what[160];
    snprintf(what, sizeof what, "%s on %s", name ? name : "command", db);
    bson_t b, r;
    rc = to_bson(cmd, &b, what, err);
    if (rc) {
        bson_destroy(&b);
        return rc;
    }
    rc = run(c, db, &b, &r, what, err);
    if (!rc)
        rc = from_bson(&r, reply, err);
    bson_destroy(&b);
    bson_destroy(&r);
    return rc;
}

/* Write commands answer ok: 1 even when a document was refused; the
 * refusal is in writeErrors / writeConcernError. */
static int check_write_reply(const bson_t *reply, const char *what, jj_error *err)
{
    bson_iter_t it, child;
    const char *keys[] = {"writeErrors.0", "writeConcernError"};
    for (int k = 0; k < 2; k++) {
        if (!bson_iter_init(&it, reply) || !bson_iter_find_descendant(&it, keys[k], &child) ||
            !BSON_ITER_HOLDS_DOCUMENT(&child))
            continue;
        bson_iter_t doc, field;
        uint32_t code = 0;
        const char *msg = "write refused";
        bson_iter_recurse(&child, &doc);
        field = doc;
        if (bson_iter_find(&field, "code") && BSON_ITER_HOLDS_NUMBER(&field))
            code = (uint32_t)bson_iter_as_int64(&field);
        field = doc;
        if (bson_iter_find(&field, "errmsg") && BSON_ITER_HOLDS_UTF8(&field))
            msg = bson_iter_utf8(&field, NULL);
        return jj_mongo_map_error(k == 0 ? MONGOC_ERROR_SERVER : MONGOC_ERROR_WRITE_CONCERN, code,
                                  msg, what, err);
    }
    return 0;
}

static int64_t reply_int(const bson_t *reply, const char *path)
{
    bson_iter_t it, f;
    if (bson_iter_init(&it, reply) && bson_iter_find_descendant(&it, path, &f) &&
        BSON_ITER_HOLDS_NUMBER(&f))
        return bson_iter_as_int64(&f);
    return 0;
}

static void describe(char *what, size_t size, const char *op, const char *db, const char *coll)
{
    snprintf(what, size, "%s %s.%s", op, db, coll);
}

int jj_mongo_insert(jj_mongo_client *c, const char *db, const char *coll, const jj_yaml_node *doc,
                    jj_error *err)
{
    int rc = check_args(c, db, coll, err);
    if (rc)
        return rc;
    if (!doc)
        return jj_error_set(err, JJ_EINVAL, "insert: no document");
    char what[256];
    describe(what, sizeof what, "insert", db, coll);
    bson_t cmd, docs, r;
    bson_init(&cmd);
    bson_init(&r);
    bool ok = BSON_APPEND_UTF8(&cmd, "insert", coll) &&
              BSON_APPEND_ARRAY_BEGIN(&cmd, "documents", &docs);
    if (!ok) {
        rc = too_big(err);
    } else {
        rc = append_doc(&docs, "0", doc, "document", err);
        if (!bson_append_array_end(&cmd, &docs) && !rc)
            rc = too_big(err);
    }
    if (!rc && !BSON_APPEND_BOOL(&cmd, "ordered", true))
        rc = too_big(err);
    if (!rc) {
        bson_destroy(&r);
        rc = run(c, db, &cmd, &r, what, err);
    }
    if (!rc)
        rc = check_write_reply(&r, what, err);
    bson_destroy(&cmd);
    bson_destroy(&r);
    return rc;
}

int jj_mongo_update(jj_mongo_client *c, const char *db, const char *coll,
                    const jj_yaml_node *filter, const jj_yaml_node *update, unsigned flags,
                    jj_mongo_update_result *res, jj_error *err)
{
    int rc = check_args(c, db, coll, err);
    if (rc)
        return rc;
    if (!update)
        return jj_error_set(err, JJ_EINVAL, "update: no update document");
    char what[256];
    describe(what, sizeof what, "update", db, coll);
    bson_t cmd, updates, one, r;
    bson_init(&cmd);
    bson_init(&r);
    if (!BSON_APPEND_UTF8(&cmd, "update", coll) ||
        !BSON_APPEND_ARRAY_BEGIN(&cmd, "updates", &updates)) {
        rc = too_big(err);
    } else {
        if (!BSON_APPEND_DOCUMENT_BEGIN(&updates, "0", &one)) {
            rc = too_big(err);
        } else {
            rc = append_doc(&one, "q", filter, "filter", err);
            if (!rc)
                rc = append_doc(&one, "u", update, "update", err);
            if (!rc && (!BSON_APPEND_BOOL(&one, "upsert", (flags & JJ_MONGO_UPSERT) != 0) ||
                        !BSON_APPEND_BOOL(&one, "multi", (flags & JJ_MONGO_MULTI) != 0)))
                rc = too_big(err);
            if (!bson_append_document_end(&updates, &one) && !rc)
                rc = too_big(err);
        }
        if (!bson_append_array_end(&cmd, &updates) && !rc)
            rc = too_big(err);
    }
    if (!rc && !BSON_APPEND_BOOL(&cmd, "ordered", true))
        rc = too_big(err);
    if (!rc) {
        bson_destroy(&r);
        rc = run(c, db, &cmd, &r, what, err);
    }
    if (!rc)
        rc = check_write_reply(&r, what, err);
    if (!rc && res) {
        bson_iter_t it, up;
        int64_t upserted = 0;
        if (bson_iter_init_find(&it, &r, "upserted") && BSON_ITER_HOLDS_ARRAY(&it) &&
            bson_iter_recurse(&it, &up)) {
            while (bson_iter_next(&up))
                upserted++;
        }
        res->upserted = upserted;
        res->matched = reply_int(&r, "n") - upserted;
        res->modified = reply_int(&r, "nModified");
    }
    bson_destroy(&cmd);
    bson_destroy(&r);
    return rc;
}

int jj_mongo_remove(jj_mongo_client *c, const char *db, const char *coll,
                    const jj_yaml_node *filter, int64_t *removed, jj_error *err)
{
    int rc = check_args(c, db, coll, err);
    if (rc)
        return rc;
    char what[256];
    describe(what, sizeof what, "delete", db, coll);
    bson_t cmd, deletes, one, r;
    bson_init(&cmd);
    bson_init(&r);
    if (!BSON_APPEND_UTF8(&cmd, "delete", coll) ||
        !BSON_APPEND_ARRAY_BEGIN(&cmd, "deletes", &deletes)) {
        rc = too_big(err);
    } else {
        if (!BSON_APPEND_DOCUMENT_BEGIN(&deletes, "0", &one)) {
            rc = too_big(err);
        } else {
            rc = append_doc(&one, "q", filter, "filter", err);
            if (!rc && !BSON_APPEND_INT32(&one, "limit", 0))
                rc = too_big(err);
            if (!bson_append_document_end(&deletes, &one) && !rc)
                rc = too_big(err);
        }
        if (!bson_append_array_end(&cmd, &deletes) && !rc)
            rc = too_big(err);
    }
    if (!rc && !BSON_APPEND_BOOL(&cmd, "ordered", true))
        rc = too_big(err);
    if (!rc) {
        bson_destroy(&r);
        rc = run(c, db, &cmd, &r, what, err);
    }
    if (!rc)
        rc = check_write_reply(&r, what, err);
    if (!rc && removed)
        *removed = reply_int(&r, "n");
    bson_destroy(&cmd);
    bson_destroy(&r);
    return rc;
}

/* Appends the documents of reply.cursor.<batch> to seq and returns the
 * cursor id in *id (0 when exhausted). */
static int take_batch(const bson_t *reply, const char *batch, jj_yaml_node *seq, int64_t *id,
                      const char *what, jj_error *err)
{
    char path[32];
    bson_iter_t it, f, docs;
    snprintf(path, sizeof path, "cursor.%s", batch);
    if (!bson_iter_init(&it, reply) || !bson_iter_find_descendant(&it, path, &f) ||
        !BSON_ITER_HOLDS_ARRAY(&f) || !bson_iter_recurse(&f, &docs))
        return jj_error_set(err, JJ_EMONGO, "%s: reply has no cursor.%s", what, batch);
    while (bson_iter_next(&docs)) {
        if (!BSON_ITER_HOLDS_DOCUMENT(&docs))
            return jj_error_set(err, JJ_EMONGO, "%s: cursor returned a non-document", what);
        jj_yaml_node *d = NULL;
        int rc = decode_value(&docs, 1, &d, err);
        if (!rc)
            rc = jj_yaml_seq_append(seq, d, err);
        if (rc)
            return rc;
    }
    *id = reply_int(reply, "cursor.id");
    return 0;
}

int jj_mongo_find(jj_mongo_client *c, const char *db, const char *coll, const jj_yaml_node *filter,
                  const jj_mongo_find_opts *fo, jj_yaml_node **docs, jj_error *err)
{
    int rc = check_args(c, db, coll, err);
    if (rc)
        return rc;
    char what[256];
    describe(what, sizeof what, "find", db, coll);
    bson_t cmd, r;
    bson_init(&cmd);
    bson_init(&r);
    if (!BSON_APPEND_UTF8(&cmd, "find", coll))
        rc = too_big(err);
    if (!rc)
        rc = append_doc(&cmd, "filter", filter, "filter", err);
    if (!rc && fo && fo->sort)
        rc = append_doc(&cmd, "sort", fo->sort, "sort", err);
    if (!rc && fo && fo->projection)
        rc = append_doc(&cmd, "projection", fo->projection, "projection", err);
    if (!rc && fo && fo->limit > 0 && !BSON_APPEND_INT64(&cmd, "limit", fo->limit))
        rc = too_big(err);
    if (!rc && fo && fo->limit == 1 && !BSON_APPEND_BOOL(&cmd, "singleBatch", true))
        rc = too_big(err);
    jj_yaml_node *seq = NULL;
    if (!rc && !(seq = jj_yaml_new_seq()))
        rc = nomem(err);
    int64_t id = 0;
    if (!rc) {
        bson_destroy(&r);
        rc = run(c, db, &cmd, &r, what, err);
        if (!rc)
            rc = take_batch(&r, "firstBatch", seq, &id, what, err);
    }
    while (!rc && id != 0) {
        bson_t more;
        bson_init(&more);
        if (!BSON_APPEND_INT64(&more, "getMore", id) ||
            !BSON_APPEND_UTF8(&more, "collection", coll)) {
            rc = too_big(err);
        } else {
            bson_destroy(&r);
            rc = run(c, db, &more, &r, what, err);
            if (!rc)
                rc = take_batch(&r, "nextBatch", seq, &id, what, err);
        }
        bson_destroy(&more);
    }
    bson_destroy(&cmd);
    bson_destroy(&r);
    if (rc) {
        jj_yaml_free(seq);
        return rc;
    }
    *docs = seq;
    return 0;
}

int jj_mongo_find_one(jj_mongo_client *c, const char *db, const char *coll,
                      const jj_yaml_node *filter, jj_yaml_node **doc, jj_error *err)
{
    jj_mongo_find_opts fo = {NULL, NULL, 1};
    jj_yaml_node *seq = NULL;
    int rc = jj_mongo_find(c, db, coll, filter, &fo, &seq, err);
    if (rc)
        return rc;
    if (jj_yaml_count(seq) == 0) {
        jj_yaml_free(seq);
        return jj_error_set(err, JJ_ENOENT, "find %s.%s: no document matches", db, coll);
    }
    *doc = jj_yaml_copy(jj_yaml_seq_at(seq, 0));
    jj_yaml_free(seq);
    return *doc ? 0 : nomem(err);
}
