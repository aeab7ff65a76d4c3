/* dqlite.c: Dqlite's wire protocol (version 1) over TCP or mutual TLS.
 *
 * A message is an 8-byte header (uint32 body words, uint8 type, uint8
 * schema, uint16 extra; little endian) and a body of words * 8 bytes.
 * Integers are little endian, strings NUL-terminated and padded to a word,
 * blobs a uint64 length and the bytes padded to a word. Every length read
 * from the wire is checked against what is left of the body before use.
 */
#include "dqlite.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define PROTOCOL_VERSION 1
#define WORD 8
#define MAX_BODY (256u * 1024 * 1024) /* an answer larger than this is PROTO */
#define DEFAULT_SERVER_NAME "juju-dqlite"

enum {
    REQ_LEADER = 0, REQ_CLIENT = 1, REQ_OPEN = 3, REQ_PREPARE = 4, REQ_EXEC = 5,
    REQ_QUERY = 6, REQ_FINALIZE = 7, REQ_EXEC_SQL = 8, REQ_QUERY_SQL = 9,
    REQ_ADD = 12, REQ_ASSIGN = 13, REQ_REMOVE = 14, REQ_CLUSTER = 16,
};
enum {
    RES_FAILURE = 0, RES_NODE = 1, RES_WELCOME = 2, RES_NODES = 3, RES_DB = 4,
    RES_STMT = 5, RES_RESULT = 6, RES_ROWS = 7, RES_EMPTY = 8,
};

/* SQLite codes the server sends back. */
#define SQLITE_BUSY_ 5
#define SQLITE_LOCKED_ 6
#define SQLITE_CONSTRAINT_ 19
#define SQLITE_CONSTRAINT_PRIMARYKEY_ (19 | (6 << 8))
#define SQLITE_CONSTRAINT_UNIQUE_ (19 | (8 << 8))
#define SQLITE_IOERR_NOT_LEADER_ (10 | (40 << 8))
#define SQLITE_IOERR_LEADERSHIP_LOST_ (10 | (41 << 8))

struct jj_dqlite {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    int timeout_ms;
    int broken;     /* a message was cut: the stream is out of step */
    int has_db;
    uint32_t db;
    char address[256];
    uint8_t *out; /* request being built */
    size_t out_len, out_cap;
    uint8_t *in; /* last response body */
    size_t in_len, in_cap;
    int in_type;
};

/* --- time ------------------------------------------------------------------ */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int remaining_ms(int64_t deadline)
{
    int64_t left = deadline - now_ms();
    return left < 0 ? 0 : (int)left;
}

/* OpenSSL writes to the socket without MSG_NOSIGNAL: a peer that went away
 * would raise SIGPIPE and kill a program that did not ignore it. SIGPIPE is
 * blocked (for this thread) around TLS calls, and one it raised meanwhile is
 * consumed unless it was blocked already. */
static void pipe_block(sigset_t *old)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, old);
}

static void pipe_unblock(const sigset_t *old)
{
    if (!sigismember(old, SIGPIPE)) {
        sigset_t set, pending;
        sigemptyset(&set);
        sigaddset(&set, SIGPIPE);
        if (sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE)) {
            struct timespec zero = {0, 0};
            sigtimedwait(&set, NULL, &zero);
        }
    }
    pthread_sigmask(SIG_SETMASK, old, NULL);
}

/* --- errors ---------------------------------------------------------------- */

static int fail(jj_error *err, int code, const jj_dqlite *c, const char *what, const char *fmt,
                ...) __attribute__((format(printf, 5, 6)));
static int fail(jj_error *err, int code, const jj_dqlite *c, const char *what, const char *fmt,
                ...)
{
    char msg[JJ_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return jj_error_set(err, code, "dqlite %s: %s: %s", c->address, what, msg);
}

/* The queued OpenSSL errors as text (and cleared). */
static unsigned long ssl_errors(char *buf, size_t size)
{
    unsigned long first = 0, e;
    buf[0] = '\0';
    size_t n = 0;
    while ((e = ERR_get_error()) != 0) {
        if (!first)
            first = e;
        if (n + 2 < size) {
            if (n)
                buf[n++] = ';', buf[n++] = ' ';
            ERR_error_string_n(e, buf + n, size - n);
            n = strlen(buf);
        }
    }
    if (!buf[0])
        snprintf(buf, size, "unknown TLS error");
    return first;
}

static int map_server_code(uint64_t code)
{
    if (code == SQLITE_IOERR_NOT_LEADER_ || code == SQLITE_IOERR_LEADERSHIP_LOST_)
        return JJ_ENOTLEADER;
    if (code == SQLITE_CONSTRAINT_UNIQUE_ || code == SQLITE_CONSTRAINT_PRIMARYKEY_)
        return JJ_EEXIST;
    if ((code & 0xff) == SQLITE_BUSY_ || (code & 0xff) == SQLITE_LOCKED_)
        return JJ_EBUSY;
    return JJ_EDQLITE;
}

/* --- decoding -------------------------------------------------------------- */

typedef struct cursor {
    const uint8_t *p;
    size_t len, off;
} cursor;

static inline size_t left(const cursor *r)
{
    return r->len - r->off;
}

static inline uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static int get_u64(cursor *r, uint64_t *v)
{
    if (left(r) < 8)
        return -1;
    *v = le64(r->p + r->off);
    r->off += 8;
    return 0;
}

static int get_u32(cursor *r, uint32_t *v)
{
    if (left(r) < 4)
        return -1;
    const uint8_t *p = r->p + r->off;
    *v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    r->off += 4;
    return 0;
}

/* A NUL-terminated string padded to a word: *s points into the body. */
static int get_string(cursor *r, const char **s, size_t *len)
{
    const uint8_t *start = r->p + r->off;
    const uint8_t *nul = memchr(start, 0, left(r));
    if (!nul)
        return -1;
    size_t n = (size_t)(nul - start) + 1;
    size_t padded = (n + WORD - 1) / WORD * WORD;
    if (padded > left(r))
        return -1;
    *s = (const char *)start;
    if (len)
        *len = n - 1;
    r->off += padded;
    return 0;
}

static int get_blob(cursor *r, const char **s, size_t *len)
{
    uint64_t n;
    if (get_u64(r, &n) || n > left(r))
        return -1;
    uint64_t padded = (n + WORD - 1) / WORD * WORD;
    if (padded > left(r))
        return -1;
    *s = (const char *)(r->p + r->off);
    *len = (size_t)n;
    r->off += (size_t)padded;
    return 0;
}

static char *dup_bytes(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

int jj_dqlite_decode_failure(const uint8_t *body, size_t len, jj_error *err)
{
    cursor r = {body, len, 0};
    uint64_t code;
    const char *msg;
    if (get_u64(&r, &code) || get_string(&r, &msg, NULL))
        return jj_error_set(err, JJ_EPROTO, "malformed failure response");
    return jj_error_set_lib(err, map_server_code(code), (long)code, "%s (code %llu)", msg,
                            (unsigned long long)code);
}

void jj_dqlite_nodes_free(jj_dqlite_node *nodes, size_t n)
{
    if (!nodes)
        return;
    for (size_t i = 0; i < n; i++)
        free(nodes[i].address);
    free(nodes);
}

int jj_dqlite_decode_nodes(const uint8_t *body, size_t len, jj_dqlite_node **nodes, size_t *n,
                           jj_error *err)
{
    cursor r = {body, len, 0};
    uint64_t count;
    *nodes = NULL;
    *n = 0;
    /* each node takes at least 3 words */
    if (get_u64(&r, &count) || count > left(&r) / (3 * WORD))
        return jj_error_set(err, JJ_EPROTO, "malformed nodes response");
    jj_dqlite_node *out = calloc(count ? (size_t)count : 1, sizeof *out);
    if (!out)
        return jj_error_set(err, JJ_ENOMEM, "out of memory");
    for (size_t i = 0; i < count; i++) {
        const char *addr;
        size_t alen;
        uint64_t role;
        if (get_u64(&r, &out[i].id) || get_string(&r, &addr, &alen) || get_u64(&r, &role) ||
            role > JJ_DQLITE_SPARE) {
            jj_dqlite_nodes_free(out, i);
            return jj_error_set(err, JJ_EPROTO, "malformed nodes response (node %zu)", i);
        }
        out[i].role = (int)role;
        if (!(out[i].address = dup_bytes(addr, alen))) {
            jj_dqlite_nodes_free(out, i);
            return jj_error_set(err, JJ_ENOMEM, "out of memory");
        }
    }
    *nodes = out;
    *n = (size_t)count;
    return 0;
}

void jj_dqlite_rows_free(jj_dqlite_rows *rows)
{
    if (!rows)
        return;
    for (size_t i = 0; i < rows->ncols && rows->names; i++)
        free(rows->names[i]);
    free(rows->names);
    size_t nvalues = rows->nrows * rows->ncols;
    for (size_t i = 0; i < nvalues; i++)
        free((char *)rows->values[i].s);
    free(rows->values);
    memset(rows, 0, sizeof *rows);
}

static int is_marker(const cursor *r, uint8_t byte)
{
    if (left(r) < WORD)
        return 0;
    for (int i = 0; i < WORD; i++)
        if (r->p[r->off + i] != byte)
            return 0;
    return 1;
}

static int decode_value(cursor *r, int type, jj_dqlite_value *v)
{
    uint64_t u;
    const char *s = NULL;
    size_t n = 0;
    memset(v, 0, sizeof *v);
    v->type = type;
    switch (type) {
    case JJ_DQLITE_INTEGER:
    case JJ_DQLITE_UNIXTIME:
    case JJ_DQLITE_BOOLEAN:
        if (get_u64(r, &u))
            return -1;
        v->i = (int64_t)u;
        return 0;
    case JJ_DQLITE_FLOAT:
        if (get_u64(r, &u))
            return -1;
        memcpy(&v->f, &u, sizeof v->f);
        return 0;
    case JJ_DQLITE_NULL: return get_u64(r, &u);
    case JJ_DQLITE_TEXT:
    case JJ_DQLITE_ISO8601:
        if (get_string(r, &s, &n))
            return -1;
        break;
    case JJ_DQLITE_BLOB:
        if (get_blob(r, &s, &n))
            return -1;
        break;
    default: return -1;
    }
    if (!(v->s = dup_bytes(s, n)))
        return -2;
    v->len = n;
    return 0;
}

static int rows_reserve(jj_dqlite_rows *rows, size_t more)
{
    size_t need = rows->nrows * rows->ncols + more;
    if (need <= rows->cap)
        return 0;
    size_t cap = rows->cap ? rows->cap : 64;
    while (cap < need)
        cap *= 2;
    jj_dqlite_value *v = realloc(rows->values, cap * sizeof *v);
    if (!v)
        return -1;
    rows->values = v;
    rows->cap = cap;
    return 0;
}

int jj_dqlite_decode_rows(const uint8_t *body, size_t len, jj_dqlite_rows *rows, int *more,
                          jj_error *err)
{
    cursor r = {body, len, 0};
    uint64_t ncols;
    *more = 0;
    /* every column name takes at least a word */
    if (get_u64(&r, &ncols) || ncols > left(&r) / WORD)
        return jj_error_set(err, JJ_EPROTO, "malformed rows response (column count)");
    if (rows->names && ncols != rows->ncols)
        return jj_error_set(err, JJ_EPROTO, "rows batch has %llu columns, the first had %zu",
                            (unsigned long long)ncols, rows->ncols);
    if (!rows->names) {
        /* attached only once every name is read: a result set never has a
         * column without a name */
        char **names = calloc(ncols ? (size_t)ncols : 1, sizeof *names);
        if (!names)
            return jj_error_set(err, JJ_ENOMEM, "out of memory");
        for (size_t i = 0; i < ncols; i++) {
            const char *s;
            size_t n;
            int bad = get_string(&r, &s, &n);
            if (bad || !(names[i] = dup_bytes(s, n))) {
                for (size_t k = 0; k < i; k++)
                    free(names[k]);
                free(names);
                if (bad)
                    return jj_error_set(err, JJ_EPROTO, "malformed rows response (column %zu)", i);
                return jj_error_set(err, JJ_ENOMEM, "out of memory");
            }
        }
        rows->names = names;
        rows->ncols = (size_t)ncols;
    } else {
        for (size_t i = 0; i < ncols; i++) {
            const char *s;
            size_t n;
            if (get_string(&r, &s, &n))
                return jj_error_set(err, JJ_EPROTO, "malformed rows response (column %zu)", i);
        }
    }
    /* the row header: 4 bits of type per column, padded to a word */
    size_t header = (rows->ncols * 4 + 63) / 64 * WORD;
    uint8_t types[JJ_DQLITE_MAX_PARAMS * 8 + 16];
    for (;;) {
        if (is_marker(&r, 0xff))
            return 0;
        if (is_marker(&r, 0xee)) {
            *more = 1;
            return 0;
        }
        if (rows->ncols == 0 || header > left(&r))
            return jj_error_set(err, JJ_EPROTO, "malformed rows response (no end marker)");
        if (rows->ncols > sizeof types)
            return jj_error_set(err, JJ_EPROTO, "rows response with %zu columns", rows->ncols);
        for (size_t i = 0; i < rows->ncols; i++) {
            uint8_t b = r.p[r.off + i / 2];
            types[i] = (i % 2) ? (b >> 4) : (b & 0x0f);
        }
        r.off += header;
        if (rows_reserve(rows, rows->ncols))
            return jj_error_set(err, JJ_ENOMEM, "out of memory");
        jj_dqlite_value *row = rows->values + rows->nrows * rows->ncols;
        for (size_t i = 0; i < rows->ncols; i++) {
            int rc = decode_value(&r, types[i], &row[i]);
            if (rc) {
                for (size_t k = 0; k < i; k++)
                    free((char *)row[k].s);
                if (rc == -2)
                    return jj_error_set(err, JJ_ENOMEM, "out of memory");
                return jj_error_set(err, JJ_EPROTO, "malformed rows response (row %zu column %zu, type %d)",
                                    rows->nrows, i, types[i]);
            }
        }
        rows->nrows++;
    }
}

/* --- encoding -------------------------------------------------------------- */

/* realloc that wipes the old block (it may hold secrets). */
static uint8_t *grow(uint8_t *old, size_t used, size_t old_cap, size_t cap)
{
    uint8_t *p = malloc(cap);
    if (!p)
        return NULL;
    if (old) {
        memcpy(p, old, used);
        OPENSSL_cleanse(old, old_cap);
        free(old);
    }
    return p;
}

static int out_reserve(jj_dqlite *c, size_t n)
{
    if (c->out_len + n <= c->out_cap)
        return 0;
    size_t cap = c->out_cap ? c->out_cap : 512;
    while (cap < c->out_len + n)
        cap *= 2;
    uint8_t *p = grow(c->out, c->out_len, c->out_cap, cap);
    if (!p)
        return -1;
    c->out = p;
    c->out_cap = cap;
    return 0;
}

/* Starts a request: room for the header. */
static void begin(jj_dqlite *c)
{
    c->out_len = WORD;
}

static int put_u64(jj_dqlite *c, uint64_t v)
{
    if (out_reserve(c, 8))
        return -1;
    for (int i = 0; i < 8; i++)
        c->out[c->out_len++] = (uint8_t)(v >> (8 * i));
    return 0;
}

static int put_u32(jj_dqlite *c, uint32_t v)
{
    if (out_reserve(c, 4))
        return -1;
    for (int i = 0; i < 4; i++)
        c->out[c->out_len++] = (uint8_t)(v >> (8 * i));
    return 0;
}

static int put_u8(jj_dqlite *c, uint8_t v)
{
    if (out_reserve(c, 1))
        return -1;
    c->out[c->out_len++] = v;
    return 0;
}

static int pad(jj_dqlite *c)
{
    while (c->out_len % WORD)
        if (put_u8(c, 0))
            return -1;
    return 0;
}

static int put_bytes(jj_dqlite *c, const char *s, size_t n, int nul)
{
    if (out_reserve(c, n + 1))
        return -1;
    memcpy(c->out + c->out_len, s, n);
    c->out_len += n;
    if (nul)
        c->out[c->out_len++] = 0;
    return pad(c);
}

static int put_string(jj_dqlite *c, const char *s)
{
    return put_bytes(c, s, strlen(s), 1);
}

static int put_params(jj_dqlite *c, const jj_dqlite_value *v, size_t n)
{
    if (n == 0)
        return 0;
    size_t start = c->out_len;
    if (put_u8(c, (uint8_t)n))
        return -1;
    for (size_t i = 0; i < n; i++)
        if (put_u8(c, (uint8_t)v[i].type))
            return -1;
    (void)start;
    if (pad(c))
        return -1;
    for (size_t i = 0; i < n; i++) {
        int rc;
        switch (v[i].type) {
        case JJ_DQLITE_INTEGER:
        case JJ_DQLITE_BOOLEAN:
        case JJ_DQLITE_UNIXTIME: rc = put_u64(c, (uint64_t)v[i].i); break;
        case JJ_DQLITE_FLOAT: {
            uint64_t u;
            memcpy(&u, &v[i].f, sizeof u);
            rc = put_u64(c, u);
            break;
        }
        case JJ_DQLITE_NULL: rc = put_u64(c, 0); break;
        case JJ_DQLITE_BLOB: rc = put_u64(c, v[i].len) || put_bytes(c, v[i].s, v[i].len, 0); break;
        default: rc = put_bytes(c, v[i].s, v[i].len, 1); break; /* TEXT, ISO8601 */
        }
        if (rc)
            return -1;
    }
    return 0;
}

/* --- I/O ------------------------------------------------------------------- */

static int wait_fd(jj_dqlite *c, short events, int64_t deadline, const char *what, jj_error *err)
{
    for (;;) {
        int ms = remaining_ms(deadline);
        if (ms == 0)
            return fail(err, JJ_ETIMEOUT, c, what, "no answer within %d ms", c->timeout_ms);
        struct pollfd p = {c->fd, events, 0};
        int n = poll(&p, 1, ms);
        if (n > 0)
            return 0;
        if (n == 0)
            return fail(err, JJ_ETIMEOUT, c, what, "no answer within %d ms", c->timeout_ms);
        if (errno != EINTR)
            return fail(err, JJ_EIO, c, what, "poll: %s", strerror(errno));
    }
}

/* A TLS call that wants I/O: wait for it; otherwise the error. */
static int ssl_retry(jj_dqlite *c, int ret, int64_t deadline, const char *what, jj_error *err)
{
    char buf[512];
    int e = SSL_get_error(c->ssl, ret);
    if (e == SSL_ERROR_WANT_READ)
        return wait_fd(c, POLLIN, deadline, what, err);
    if (e == SSL_ERROR_WANT_WRITE)
        return wait_fd(c, POLLOUT, deadline, what, err);
    if (e == SSL_ERROR_ZERO_RETURN)
        return fail(err, JJ_EIO, c, what, "the server closed the connection");
    if (e == SSL_ERROR_SYSCALL) {
        int saved = errno;
        unsigned long lib = ssl_errors(buf, sizeof buf);
#ifdef SSL_R_UNEXPECTED_EOF_WHILE_READING
        /* (also reported through SSL_ERROR_SYSCALL: a killed leader) */
        if (ERR_GET_LIB(lib) == ERR_LIB_SSL && ERR_GET_REASON(lib) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
            return fail(err, JJ_EIO, c, what, "the server closed the connection");
#endif
        if (lib)
            return jj_error_set_lib(err, JJ_ETLS, (long)lib, "dqlite %s: %s: TLS: %s", c->address, what, buf);
        if (ret == 0 || saved == 0)
            return fail(err, JJ_EIO, c, what, "the server closed the connection");
        return fail(err, JJ_EIO, c, what, "%s", strerror(saved));
    }
    unsigned long lib = ssl_errors(buf, sizeof buf);
#ifdef SSL_R_UNEXPECTED_EOF_WHILE_READING
    /* OpenSSL 3 reports a peer that went away without close_notify (killed)
     * as a protocol error: to the caller it is a lost connection */
    if (ERR_GET_LIB(lib) == ERR_LIB_SSL && ERR_GET_REASON(lib) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
        return fail(err, JJ_EIO, c, what, "the server closed the connection");
#endif
    long vr = SSL_get_verify_result(c->ssl);
    if (vr != X509_V_OK)
        return jj_error_set_lib(err, JJ_ETLS, vr, "dqlite %s: %s: TLS: certificate verification failed: %s",
                                c->address, what, X509_verify_cert_error_string(vr));
    return jj_error_set_lib(err, JJ_ETLS, (long)lib, "dqlite %s: %s: TLS: %s", c->address, what, buf);
}

static int write_all_raw(jj_dqlite *c, const uint8_t *p, size_t n, int64_t deadline,
                         const char *what, jj_error *err)
{
    while (n > 0) {
        if (c->ssl) {
            ERR_clear_error();
            int chunk = n > (1 << 30) ? (1 << 30) : (int)n;
            int w = SSL_write(c->ssl, p, chunk);
            if (w > 0) {
                p += w, n -= (size_t)w;
                continue;
            }
            if (ssl_retry(c, w, deadline, what, err))
                return err->code;
            continue;
        }
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w, n -= (size_t)w;
            continue;
        }
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            if (wait_fd(c, POLLOUT, deadline, what, err))
                return err->code;
            continue;
        }
        return fail(err, JJ_EIO, c, what, "send: %s", strerror(errno));
    }
    return 0;
}

static int read_full_raw(jj_dqlite *c, uint8_t *p, size_t n, int64_t deadline,
                         const char *what, jj_error *err)
{
    while (n > 0) {
        if (c->ssl) {
            ERR_clear_error();
            int chunk = n > (1 << 30) ? (1 << 30) : (int)n;
            int r = SSL_read(c->ssl, p, chunk);
            if (r > 0) {
                p += r, n -= (size_t)r;
                continue;
            }
            if (ssl_retry(c, r, deadline, what, err))
                return err->code;
            continue;
        }
        ssize_t r = recv(c->fd, p, n, 0);
        if (r > 0) {
            p += r, n -= (size_t)r;
            continue;
        }
        if (r == 0)
            return fail(err, JJ_EIO, c, what, "the server closed the connection");
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            if (wait_fd(c, POLLIN, deadline, what, err))
                return err->code;
            continue;
        }
        return fail(err, JJ_EIO, c, what, "recv: %s", strerror(errno));
    }
    return 0;
}

static int write_all(jj_dqlite *c, const uint8_t *p, size_t n, int64_t deadline, const char *what,
                     jj_error *err)
{
    if (!c->ssl)
        return write_all_raw(c, p, n, deadline, what, err);
    sigset_t old;
    pipe_block(&old);
    int rc = write_all_raw(c, p, n, deadline, what, err);
    pipe_unblock(&old);
    return rc;
}

static int read_full(jj_dqlite *c, uint8_t *p, size_t n, int64_t deadline, const char *what,
                     jj_error *err)
{
    if (!c->ssl)
        return read_full_raw(c, p, n, deadline, what, err);
    sigset_t old;
    pipe_block(&old);
    int rc = read_full_raw(c, p, n, deadline, what, err);
    pipe_unblock(&old);
    return rc;
}

/* Sends the request built in c->out (begin + put_*) as type. */
static int send_request(jj_dqlite *c, int type, int64_t deadline, const char *what, jj_error *err)
{
    if (c->broken)
        return fail(err, JJ_EIO, c, what, "the connection is broken by an earlier failure");
    size_t body = c->out_len - WORD;
    uint32_t words = (uint32_t)(body / WORD);
    uint8_t *h = c->out;
    h[0] = (uint8_t)words, h[1] = (uint8_t)(words >> 8), h[2] = (uint8_t)(words >> 16),
    h[3] = (uint8_t)(words >> 24);
    h[4] = (uint8_t)type, h[5] = 0, h[6] = 0, h[7] = 0;
    int rc = write_all(c, c->out, c->out_len, deadline, what, err);
    if (rc)
        c->broken = 1;
    return rc;
}

/* Reads one response into c->in / c->in_type. */
static int recv_response(jj_dqlite *c, int64_t deadline, const char *what, jj_error *err)
{
    uint8_t h[WORD];
    int rc = read_full(c, h, sizeof h, deadline, what, err);
    if (rc) {
        c->broken = 1;
        return rc;
    }
    uint64_t words = (uint64_t)h[0] | (uint64_t)h[1] << 8 | (uint64_t)h[2] << 16 | (uint64_t)h[3] << 24;
    if (words * WORD > MAX_BODY) {
        c->broken = 1;
        return fail(err, JJ_EPROTO, c, what, "answer of %llu words is too large", (unsigned long long)words);
    }
    size_t n = (size_t)words * WORD;
    if (n > c->in_cap) {
        uint8_t *p = grow(c->in, 0, c->in_cap, n);
        if (!p) {
            c->broken = 1;
            return fail(err, JJ_ENOMEM, c, what, "out of memory");
        }
        c->in = p;
        c->in_cap = n;
    }
    rc = read_full(c, c->in, n, deadline, what, err);
    if (rc) {
        c->broken = 1;
        return rc;
    }
    c->in_len = n;
    c->in_type = h[4];
    return 0;
}

/* Sends the built request and reads its answer, which must be of type want
 * (a FAILURE becomes the error). */
static int call(jj_dqlite *c, int type, int want, const char *what, jj_error *err)
{
    int64_t deadline = now_ms() + c->timeout_ms;
    int rc = send_request(c, type, deadline, what, err);
    if (rc == 0)
        rc = recv_response(c, deadline, what, err);
    if (rc)
        return rc;
    if (c->in_type == RES_FAILURE) {
        jj_dqlite_decode_failure(c->in, c->in_len, err);
        jj_error_prefix(err, "dqlite %s: %s", c->address, what);
        return err->code;
    }
    if (c->in_type != want)
        return fail(err, JJ_EPROTO, c, what, "answer of type %d, expected %d", c->in_type, want);
    return 0;
}

static int nomem(jj_dqlite *c, const char *what, jj_error *err)
{
    return fail(err, JJ_ENOMEM, c, what, "out of memory");
}

static int malformed(jj_dqlite *c, const char *what, jj_error *err)
{
    return fail(err, JJ_EPROTO, c, what, "malformed answer (type %d, %zu bytes)", c->in_type, c->in_len);
}

/* --- connect --------------------------------------------------------------- */

/* Splits "host:port" / "[v6]:port". */
static int split_address(const char *address, char *host, size_t hsize, char *port, size_t psize)
{
    const char *colon;
    const char *h = address;
    size_t hlen;
    if (address[0] == '[') {
        const char *end = strchr(address, ']');
        if (!end || end[1] != ':')
            return -1;
        h = address + 1;
        hlen = (size_t)(end - h);
        colon = end + 1;
    } else {
        colon = strrchr(address, ':');
        if (!colon)
            return -1;
        hlen = (size_t)(colon - address);
    }
    if (hlen == 0 || hlen >= hsize || strlen(colon + 1) == 0 || strlen(colon + 1) >= psize)
        return -1;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    strcpy(port, colon + 1);
    for (const char *p = port; *p; p++)
        if (*p < '0' || *p > '9')
            return -1;
    return 0;
}

static int tcp_connect(jj_dqlite *c, int64_t deadline, jj_error *err)
{
    char host[256], port[16];
    if (split_address(c->address, host, sizeof host, port, sizeof port))
        return jj_error_set(err, JJ_EINVAL, "dqlite %s: not a host:port address", c->address);
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int g = getaddrinfo(host, port, &hints, &res);
    if (g)
        return fail(err, JJ_ECONNECT, c, "connect", "cannot resolve %s: %s", host, gai_strerror(g));
    int last = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0) {
            last = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 || errno == EINPROGRESS) {
            struct pollfd p = {fd, POLLOUT, 0};
            int n;
            do
                n = poll(&p, 1, remaining_ms(deadline));
            while (n < 0 && errno == EINTR);
            if (n == 0) {
                close(fd);
                freeaddrinfo(res);
                return fail(err, JJ_ETIMEOUT, c, "connect", "no connection within %d ms", c->timeout_ms);
            }
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            if (n > 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0) {
                int one = 1;
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                c->fd = fd;
                freeaddrinfo(res);
                return 0;
            }
            last = soerr ? soerr : errno;
        } else {
            last = errno;
        }
        close(fd);
    }
    freeaddrinfo(res);
    return jj_error_set_lib(err, JJ_ECONNECT, last, "dqlite %s: connect: %s", c->address,
                            strerror(last ? last : ECONNREFUSED));
}

static int load_tls(jj_dqlite *c, const jj_dqlite_tls *tls, jj_error *err)
{
    char buf[512];
    if (!tls->ca || !tls->cert != !tls->key)
        return jj_error_set(err, JJ_EINVAL, "dqlite %s: tls needs ca, and cert with key", c->address);
    ERR_clear_error();
    c->ctx = SSL_CTX_new(TLS_client_method());
    if (!c->ctx)
        goto ssl_fail;
    SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
    X509_STORE *store = SSL_CTX_get_cert_store(c->ctx);
    BIO *bio = BIO_new_mem_buf(tls->ca, -1);
    if (!bio)
        goto ssl_fail;
    int ncas = 0;
    X509 *x;
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        X509_STORE_add_cert(store, x);
        X509_free(x);
        ncas++;
    }
    BIO_free(bio);
    ERR_clear_error();
    if (ncas == 0)
        return jj_error_set(err, JJ_ETLS, "dqlite %s: tls.ca holds no PEM certificate", c->address);
    if (!tls->cert)
        goto no_client_cert;
    bio = BIO_new_mem_buf(tls->cert, -1);
    if (!bio)
        goto ssl_fail;
    x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    if (!x || SSL_CTX_use_certificate(c->ctx, x) != 1) {
        X509_free(x);
        BIO_free(bio);
        ssl_errors(buf, sizeof buf);
        return jj_error_set(err, JJ_ETLS, "dqlite %s: tls.cert: not a usable PEM certificate", c->address);
    }
    X509_free(x);
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (SSL_CTX_add_extra_chain_cert(c->ctx, x) != 1) { /* takes x on success */
            X509_free(x);
            break;
        }
    }
    BIO_free(bio);
    ERR_clear_error();
    bio = BIO_new_mem_buf(tls->key, -1);
    if (!bio)
        goto ssl_fail;
    EVP_PKEY *pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (!pkey || SSL_CTX_use_PrivateKey(c->ctx, pkey) != 1 || SSL_CTX_check_private_key(c->ctx) != 1) {
        EVP_PKEY_free(pkey);
        ssl_errors(buf, sizeof buf);
        return jj_error_set(err, JJ_ETLS, "dqlite %s: tls.key: not the PEM private key of tls.cert",
                            c->address);
    }
    EVP_PKEY_free(pkey);
no_client_cert:
    c->ssl = SSL_new(c->ctx);
    if (!c->ssl)
        goto ssl_fail;
    const char *name = tls->server_name ? tls->server_name : DEFAULT_SERVER_NAME;
    unsigned char ip[16];
    X509_VERIFY_PARAM *param = SSL_get0_param(c->ssl);
    if (inet_pton(AF_INET, name, ip) == 1 || inet_pton(AF_INET6, name, ip) == 1) {
        if (X509_VERIFY_PARAM_set1_ip_asc(param, name) != 1)
            goto ssl_fail;
    } else {
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (SSL_set1_host(c->ssl, name) != 1 || SSL_set_tlsext_host_name(c->ssl, name) != 1)
            goto ssl_fail;
    }
    return 0;
ssl_fail:;
    unsigned long lib = ssl_errors(buf, sizeof buf);
    return jj_error_set_lib(err, JJ_ETLS, (long)lib, "dqlite %s: TLS setup: %s", c->address, buf);
}

static int tls_handshake(jj_dqlite *c, int64_t deadline, jj_error *err)
{
    if (SSL_set_fd(c->ssl, c->fd) != 1)
        return fail(err, JJ_ETLS, c, "TLS handshake", "cannot attach the socket");
    sigset_t old;
    pipe_block(&old);
    int rc = 0;
    for (;;) {
        ERR_clear_error();
        int r = SSL_connect(c->ssl);
        if (r == 1)
            break;
        if (ssl_retry(c, r, deadline, "TLS handshake", err)) {
            if (err->code == JJ_EIO)
                err->code = JJ_ETLS; /* closed during the handshake: refused */
            rc = err->code;
            break;
        }
    }
    pipe_unblock(&old);
    return rc;
}

int jj_dqlite_connect(const char *address, const jj_dqlite_tls *tls, int timeout_ms,
                      jj_dqlite **out, jj_error *err)
{
    *out = NULL;
    if (!address || strlen(address) >= sizeof ((jj_dqlite *)0)->address || timeout_ms <= 0)
        return jj_error_set(err, JJ_EINVAL, "dqlite connect: bad address or timeout");
    jj_dqlite *c = calloc(1, sizeof *c);
    if (!c)
        return jj_error_set(err, JJ_ENOMEM, "out of memory");
    c->fd = -1;
    c->timeout_ms = timeout_ms;
    snprintf(c->address, sizeof c->address, "%s", address);
    int64_t deadline = now_ms() + timeout_ms;
    int rc = 0;
    if (tls && (rc = load_tls(c, tls, err)) != 0)
        goto out;
    if ((rc = tcp_connect(c, deadline, err)) != 0)
        goto out;
    if (c->ssl && (rc = tls_handshake(c, deadline, err)) != 0)
        goto out;
    begin(c);
    c->out_len = 0;
    if (put_u64(c, PROTOCOL_VERSION)) {
        rc = nomem(c, "handshake", err);
        goto out;
    }
    if ((rc = write_all(c, c->out, c->out_len, deadline, "handshake", err)) != 0)
        goto out;
    uint64_t id;
    char *leader = NULL;
    if ((rc = jj_dqlite_leader(c, &id, &leader, err)) != 0) {
        if (c->ssl && rc == JJ_EIO)
            err->code = JJ_ETLS; /* a TLS 1.3 server refuses our certificate after the handshake */
        goto out;
    }
    free(leader);
out:
    if (rc) {
        jj_dqlite_close(c);
        return rc;
    }
    *out = c;
    return 0;
}

void jj_dqlite_close(jj_dqlite *c)
{
    if (!c)
        return;
    if (c->ssl) {
        if (!c->broken && c->fd >= 0) {
            sigset_t old;
            pipe_block(&old);
            SSL_shutdown(c->ssl); /* non-blocking: best effort */
            pipe_unblock(&old);
            ERR_clear_error(); /* leave no failure of ours to the next OpenSSL user */
        }
        SSL_free(c->ssl);
    }
    SSL_CTX_free(c->ctx);
    if (c->fd >= 0)
        close(c->fd);
    /* requests and answers carry documents (password hashes, keys) */
    if (c->out)
        OPENSSL_cleanse(c->out, c->out_cap);
    free(c->out);
    if (c->in)
        OPENSSL_cleanse(c->in, c->in_cap);
    free(c->in);
    free(c);
}

const char *jj_dqlite_address(const jj_dqlite *c)
{
    return c->address;
}

/* --- requests -------------------------------------------------------------- */

int jj_dqlite_leader(jj_dqlite *c, uint64_t *id, char **address, jj_error *err)
{
    *id = 0;
    *address = NULL;
    begin(c);
    if (put_u64(c, 0))
        return nomem(c, "leader", err);
    int rc = call(c, REQ_LEADER, RES_NODE, "leader", err);
    if (rc)
        return rc;
    cursor r = {c->in, c->in_len, 0};
    const char *s;
    size_t n;
    if (get_u64(&r, id) || get_string(&r, &s, &n))
        return malformed(c, "leader", err);
    if (*id == 0 && n == 0)
        return 0;
    if (!(*address = dup_bytes(s, n)))
        return nomem(c, "leader", err);
    return 0;
}

int jj_dqlite_client(jj_dqlite *c, uint64_t id, jj_error *err)
{
    begin(c);
    if (put_u64(c, id))
        return nomem(c, "client", err);
    int rc = call(c, REQ_CLIENT, RES_WELCOME, "client", err);
    if (rc)
        return rc;
    cursor r = {c->in, c->in_len, 0};
    uint64_t hb;
    return get_u64(&r, &hb) ? malformed(c, "client", err) : 0;
}

int jj_dqlite_cluster(jj_dqlite *c, jj_dqlite_node **nodes, size_t *n, jj_error *err)
{
    *nodes = NULL;
    *n = 0;
    begin(c);
    if (put_u64(c, 1))
        return nomem(c, "cluster", err);
    int rc = call(c, REQ_CLUSTER, RES_NODES, "cluster", err);
    if (rc)
        return rc;
    rc = jj_dqlite_decode_nodes(c->in, c->in_len, nodes, n, err);
    if (rc)
        jj_error_prefix(err, "dqlite %s: cluster", c->address);
    return rc;
}

static int call_empty(jj_dqlite *c, int type, const char *what, jj_error *err)
{
    return call(c, type, RES_EMPTY, what, err);
}

int jj_dqlite_add(jj_dqlite *c, uint64_t id, const char *address, jj_error *err)
{
    begin(c);
    if (put_u64(c, id) || put_string(c, address))
        return nomem(c, "add", err);
    return call_empty(c, REQ_ADD, "add", err);
}

int jj_dqlite_assign(jj_dqlite *c, uint64_t id, int role, jj_error *err)
{
    begin(c);
    if (put_u64(c, id) || put_u64(c, (uint64_t)role))
        return nomem(c, "assign", err);
    return call_empty(c, REQ_ASSIGN, "assign", err);
}

int jj_dqlite_remove(jj_dqlite *c, uint64_t id, jj_error *err)
{
    begin(c);
    if (put_u64(c, id))
        return nomem(c, "remove", err);
    return call_empty(c, REQ_REMOVE, "remove", err);
}

int jj_dqlite_open(jj_dqlite *c, const char *name, jj_error *err)
{
    if (c->has_db)
        return fail(err, JJ_EINVAL, c, "open", "a database is open on this connection already");
    begin(c);
    if (put_string(c, name) || put_u64(c, 0) || put_string(c, ""))
        return nomem(c, "open", err);
    int rc = call(c, REQ_OPEN, RES_DB, "open", err);
    if (rc)
        return rc;
    cursor r = {c->in, c->in_len, 0};
    if (get_u32(&r, &c->db))
        return malformed(c, "open", err);
    c->has_db = 1;
    return 0;
}

static int need_db(jj_dqlite *c, const char *what, size_t nparams, jj_error *err)
{
    if (!c->has_db)
        return fail(err, JJ_EINVAL, c, what, "no database is open (call open first)");
    if (nparams > JJ_DQLITE_MAX_PARAMS)
        return fail(err, JJ_EINVAL, c, what, "%zu parameters (at most %d)", nparams, JJ_DQLITE_MAX_PARAMS);
    return 0;
}

static int read_result(jj_dqlite *c, const char *what, uint64_t *last_id, uint64_t *changes,
                       jj_error *err)
{
    cursor r = {c->in, c->in_len, 0};
    uint64_t id, n;
    if (get_u64(&r, &id) || get_u64(&r, &n))
        return malformed(c, what, err);
    if (last_id)
        *last_id = id;
    if (changes)
        *changes = n;
    return 0;
}

/* Reads the rows of the answer in c->in and every batch that follows. */
static int read_rows(jj_dqlite *c, const char *what, jj_dqlite_rows *rows, jj_error *err)
{
    int64_t deadline = now_ms() + c->timeout_ms;
    for (;;) {
        int more = 0;
        int rc = jj_dqlite_decode_rows(c->in, c->in_len, rows, &more, err);
        if (rc) {
            if (rc == JJ_EPROTO)
                c->broken = 1; /* later batches may still come */
            jj_error_prefix(err, "dqlite %s: %s", c->address, what);
            return rc;
        }
        if (!more)
            return 0;
        /* the next batch follows without a request; each gets its own time */
        deadline = now_ms() + c->timeout_ms;
        if ((rc = recv_response(c, deadline, what, err)) != 0)
            return rc;
        if (c->in_type == RES_FAILURE) {
            jj_dqlite_decode_failure(c->in, c->in_len, err);
            jj_error_prefix(err, "dqlite %s: %s", c->address, what);
            return err->code;
        }
        if (c->in_type != RES_ROWS) {
            c->broken = 1;
            return fail(err, JJ_EPROTO, c, what, "batch of type %d among rows", c->in_type);
        }
    }
}

int jj_dqlite_exec_sql(jj_dqlite *c, const char *sql, const jj_dqlite_value *params, size_t n,
                       uint64_t *last_id, uint64_t *changes, jj_error *err)
{
    int rc = need_db(c, "exec", n, err);
    if (rc)
        return rc;
    begin(c);
    if (put_u64(c, c->db) || put_string(c, sql) || put_params(c, params, n))
        return nomem(c, "exec", err);
    if ((rc = call(c, REQ_EXEC_SQL, RES_RESULT, "exec", err)) != 0)
        return rc;
    return read_result(c, "exec", last_id, changes, err);
}

int jj_dqlite_query_sql(jj_dqlite *c, const char *sql, const jj_dqlite_value *params, size_t n,
                        jj_dqlite_rows *rows, jj_error *err)
{
    memset(rows, 0, sizeof *rows);
    int rc = need_db(c, "query", n, err);
    if (rc)
        return rc;
    begin(c);
    if (put_u64(c, c->db) || put_string(c, sql) || put_params(c, params, n))
        return nomem(c, "query", err);
    if ((rc = call(c, REQ_QUERY_SQL, RES_ROWS, "query", err)) != 0)
        return rc;
    return read_rows(c, "query", rows, err);
}

int jj_dqlite_prepare(jj_dqlite *c, const char *sql, uint32_t *stmt, uint64_t *nparams,
                      jj_error *err)
{
    int rc = need_db(c, "prepare", 0, err);
    if (rc)
        return rc;
    begin(c);
    if (put_u64(c, c->db) || put_string(c, sql))
        return nomem(c, "prepare", err);
    if ((rc = call(c, REQ_PREPARE, RES_STMT, "prepare", err)) != 0)
        return rc;
    cursor r = {c->in, c->in_len, 0};
    uint32_t db;
    uint64_t np;
    if (get_u32(&r, &db) || get_u32(&r, stmt) || get_u64(&r, &np))
        return malformed(c, "prepare", err);
    if (nparams)
        *nparams = np;
    return 0;
}

int jj_dqlite_exec(jj_dqlite *c, uint32_t stmt, const jj_dqlite_value *params, size_t n,
                   uint64_t *last_id, uint64_t *changes, jj_error *err)
{
    int rc = need_db(c, "exec", n, err);
    if (rc)
        return rc;
    begin(c);
    if (put_u32(c, c->db) || put_u32(c, stmt) || put_params(c, params, n))
        return nomem(c, "exec", err);
    if (c->out_len == WORD && put_u64(c, 0)) /* a body is never empty */
        return nomem(c, "exec", err);
    if ((rc = call(c, REQ_EXEC, RES_RESULT, "exec", err)) != 0)
        return rc;
    return read_result(c, "exec", last_id, changes, err);
}

int jj_dqlite_query(jj_dqlite *c, uint32_t stmt, const jj_dqlite_value *params, size_t n,
                    jj_dqlite_rows *rows, jj_error *err)
{
    memset(rows, 0, sizeof *rows);
    int rc = need_db(c, "query", n, err);
    if (rc)
        return rc;
    begin(c);
    if (put_u32(c, c->db) || put_u32(c, stmt) || put_params(c, params, n))
        return nomem(c, "query", err);
    if ((rc = call(c, REQ_QUERY, RES_ROWS, "query", err)) != 0)
        return rc;
    return read_rows(c, "query", rows, err);
}

int jj_dqlite_finalize(jj_dqlite *c, uint32_t stmt, jj_error *err)
{
    int rc = need_db(c, "finalize", 0, err);
    if (rc)
        return rc;
    begin(c);
    if (put_u32(c, c->db) || put_u32(c, stmt))
        return nomem(c, "finalize", err);
    return call_empty(c, REQ_FINALIZE, "finalize", err);
}
