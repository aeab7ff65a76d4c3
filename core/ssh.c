/* ssh.c: the SSH client (see ssh.h): non-blocking libssh2 sessions for
 * exec and SFTP; the host-key policy they apply is core/knownhosts.c. */
#include "ssh.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libssh2.h>
#include <libssh2_sftp.h>
#include <openssl/crypto.h>

#include "fs.h"
#include "sys.h"

#define IO_CHUNK (32 * 1024)        /* exec reads and stdin chunks */
#define SFTP_CHUNK (1024 * 1024)    /* toolchain.md: large SFTP writes are fast */
#define CLOSE_GRACE 3.0             /* seconds to close a channel after an abort */
#define KEEPALIVE_MISSES 3          /* like OpenSSH's ServerAliveCountMax */
#define HOSTPORT_MAX JJ_KNOWNHOSTS_NAME_MAX

/* ---- small helpers ---------------------------------------------------------- */

static inline double now(void)
{
    return jj_sys_monotonic();
}

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_status; /* written once, under init_once */

static void init_libssh2(void)
{
    init_status = libssh2_init(0);
}

int jj_ssh_global_init(jj_error *err)
{
    pthread_once(&init_once, init_libssh2);
    if (init_status != 0)
        return jj_error_set_lib(err, JJ_ESSH, init_status, "cannot initialise libssh2");
    return 0;
}

/* ---- sessions -------------------------------------------------------------------- */

struct jj_ssh_session {
    LIBSSH2_SESSION *ssh;
    LIBSSH2_SFTP *sftp; /* started on first use */
    int fd;
    char hostport[HOSTPORT_MAX];
    char *user;
    double timeout;
    int keepalive;
    int established;    /* authenticated: keepalives may be sent */
    int broken;         /* a step was abandoned half-way: libssh2's state is unknown */
    double last_rx;     /* when the server was last heard from */
    jj_sys_cancel_scope cancel; /* of the current call (its token is borrowed for it) */
    LIBSSH2_SFTP_HANDLE *orphan; /* left open by the call that broke the session */
    jj_ssh_host_key hk;
};

void jj_ssh_connect_opts_init(jj_ssh_connect_opts *o)
{
    memset(o, 0, sizeof *o);
    o->port = 22;
    o->connect_timeout = 30;
    o->timeout = 60;
    o->keepalive = 30;
}

const jj_ssh_host_key *jj_ssh_session_host_key(const jj_ssh_session *s)
{
    return &s->hk;
}

/* Fills err from libssh2's last error: "<what>: <libssh2 message>". */
static int ssh_fail(jj_ssh_session *s, int code, int rc, jj_error *err, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int ssh_fail(jj_ssh_session *s, int code, int rc, jj_error *err, const char *fmt, ...)
{
    char what[JJ_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    char *msg = NULL;
    int mlen = 0;
    if (s->ssh)
        libssh2_session_last_error(s->ssh, &msg, &mlen, 0);
    if (msg && *msg)
        return jj_error_set_lib(err, code, rc, "%s: %s", what, msg);
    return jj_error_set_lib(err, code, rc, "%s: libssh2 error %d", what, rc);
}

/* A keepalive, but only when it cannot be left half-sent (libssh2 builds it
 * in a stack buffer it could not resend): nothing else pending and room in
 * the socket buffer. */
static void send_keepalive(jj_ssh_session *s)
{
    if (libssh2_session_block_directions(s->ssh) & LIBSSH2_SESSION_BLOCK_OUTBOUND)
        return;
    struct pollfd pfd = {.fd = s->fd, .events = POLLOUT};
    if (poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLOUT))
        return;
    int next = 0;
    libssh2_keepalive_send(s->ssh, &next);
}

typedef enum {
    WAIT_STEP,   /* a protocol step: bounded by s->timeout without readiness */
    WAIT_OUTPUT  /* a command's output: bounded by keepalive answers instead */
} wait_kind;

/* Waits until the socket can serve what libssh2 last blocked on, the
 * absolute deadline (0 = none) passes, or the kind's own bound runs out.
 * `what` names the step for the timeout message. */
static int wait_socket(jj_ssh_session *s, double deadline, wait_kind kind, const char *what,
                       jj_error *err)
{
    double start = now();
    int dirs = libssh2_session_block_directions(s->ssh);
    short events = 0;
    if (dirs & LIBSSH2_SESSION_BLOCK_INBOUND)
        events |= POLLIN;
    if (dirs & LIBSSH2_SESSION_BLOCK_OUTBOUND)
        events |= POLLOUT;
    if (!events)
        events = POLLIN;
    int live = kind == WAIT_OUTPUT && s->established && s->keepalive > 0 && (events & POLLIN);
    double limit = deadline;
    int step_limited = 0;
    if (!live && s->timeout > 0 && (limit <= 0 || start + s->timeout < limit)) {
        limit = start + s->timeout;
        step_limited = 1;
    }
    for (;;) {
        double t = now();
        int crc = jj_sys_cancel_check(&s->cancel, what, err);
        if (crc)
            return crc;
        if (limit > 0 && t >= limit) {
            if (step_limited)
                return jj_error_set(err, JJ_ETIMEOUT, "%s timed out (no progress for %g s)", what,
                                    s->timeout);
            return jj_error_set(err, JJ_ETIMEOUT, "%s timed out", what);
        }
        if (live && t - s->last_rx > KEEPALIVE_MISSES * s->keepalive + 1)
            return jj_error_set(err, JJ_ETIMEOUT,
                                "%s: no answer from %s to %d keepalives in %d s; the connection "
                                "is presumed dead",
                                what, s->hostport, KEEPALIVE_MISSES,
                                KEEPALIVE_MISSES * s->keepalive);
        if (s->established && s->keepalive > 0)
            send_keepalive(s);
        /* Short slices: a cancel request that is not a signal does not
         * interrupt poll. */
        double slice = JJ_SYS_CANCEL_SLICE;
        if (limit > 0 && limit - t < slice)
            slice = limit - t;
        struct pollfd pfd = {.fd = s->fd, .events = events};
        int rc = poll(&pfd, 1, (int)(slice * 1000) + 1);
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            return jj_error_errno(err, errno, "%s: poll", what);
        }
        if (rc > 0) {
            if (pfd.revents & (POLLIN | POLLERR | POLLHUP))
                s->last_rx = now();
            return 0;
        }
    }
}

static int check_usable(jj_ssh_session *s, const jj_sys_cancel *cancel, jj_error *err)
{
    jj_sys_cancel_begin(&s->cancel, cancel);
    if (s->broken)
        return jj_error_set(err, JJ_ESSH,
                            "the session to %s is unusable after an abandoned operation; "
                            "connect again",
                            s->hostport);
    return 0;
}

/* Non-blocking TCP connect to host:port within deadline. */
static int tcp_connect(jj_ssh_session *s, const char *host, int port, double deadline,
                       double connect_timeout, jj_error *err)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    char ports[16];
    snprintf(ports, sizeof ports, "%d", port);
    int g = getaddrinfo(host, ports, &hints, &res);
    if (g)
        return jj_error_set_lib(err, JJ_ESSH, g, "cannot resolve %s: %s", host, gai_strerror(g));
    int last_errno = ECONNREFUSED, timed_out = 0, interrupted = 0;
    char what[HOSTPORT_MAX + 32];
    snprintf(what, sizeof what, "connecting to %s", s->hostport);
    for (struct addrinfo *ai = res; ai && s->fd < 0 && !timed_out && !interrupted;
         ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                        ai->ai_protocol);
        if (fd < 0) {
            last_errno = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            s->fd = fd;
            break;
        }
        if (errno != EINPROGRESS) {
            last_errno = errno;
            close(fd);
            continue;
        }
        for (;;) {
            double t = now();
            if (jj_sys_cancel_check(&s->cancel, what, err)) {
                interrupted = 1;
                break;
            }
            if (deadline > 0 && t >= deadline) {
                timed_out = 1;
                break;
            }
            double slice = JJ_SYS_CANCEL_SLICE;
            if (deadline > 0 && deadline - t < slice)
                slice = deadline - t;
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            int rc = poll(&pfd, 1, (int)(slice * 1000) + 1);
            if (rc < 0 && errno != EINTR) {
                last_errno = errno;
                break;
            }
            if (rc > 0) {
                int soerr = 0;
                socklen_t sl = sizeof soerr;
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
                    soerr = errno;
                if (soerr == 0)
                    s->fd = fd;
                else
                    last_errno = soerr;
                break;
            }
        }
        if (s->fd != fd)
            close(fd);
    }
    freeaddrinfo(res);
    if (s->fd >= 0) {
        int one = 1;
        setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        return 0;
    }
    if (interrupted)
        return JJ_EINTERRUPTED; /* err filled by jj_sys_cancel_check */
    if (timed_out)
        return jj_error_set(err, JJ_ETIMEOUT, "connecting to %s timed out after %g s",
                            s->hostport, connect_timeout);
    return jj_error_set_lib(err, JJ_ESSH, last_errno, "cannot connect to %s: %s", s->hostport,
                            strerror(last_errno));
}

/* The type and fingerprint of the user's key, for messages; reading the
 * private key also reports a missing or unreadable file before any network
 * traffic. The private key text is wiped. */
static int describe_user_key(const jj_ssh_connect_opts *o, char *type, size_t type_size,
                             char fp[JJ_SSH_FP_SHA256_SIZE], jj_error *err)
{
    snprintf(type, type_size, "unknown");
    snprintf(fp, JJ_SSH_FP_SHA256_SIZE, "SHA256:?");
    char *text = NULL, *line = NULL;
    size_t len = 0;
    int rc = jj_fs_read_file(o->private_key_file, &text, &len, err);
    if (rc) {
        jj_error_prefix(err, "cannot read private key");
        return rc;
    }
    if (jj_ssh_public_from_private(text, len, &line, NULL) != 0)
        line = NULL;
    OPENSSL_cleanse(text, len);
    free(text);
    if (!line && o->public_key_file) {
        if (jj_fs_read_file(o->public_key_file, &text, &len, NULL) == 0) {
            text[strcspn(text, "\r\n")] = '\0';
            line = text;
        }
    }
    if (line) {
        snprintf(type, type_size, "%.*s", (int)strcspn(line, " \t"), line);
        jj_knownhosts_fingerprint(line, fp);
        free(line);
    }
    return 0;
}

/* Appends name (len bytes) to the comma-separated list out unless present. */
static void append_name(char *out, size_t size, size_t *used, const char *name, size_t len)
{
    if (len == 0)
        return;
    for (const char *q = out; *q;) {
        size_t ql = strcspn(q, ",");
        if (ql == len && memcmp(q, name, len) == 0)
            return;
        q += ql + (q[ql] == ',');
    }
    if (*used + len + 2 >= size)
        return;
    if (*used)
        out[(*used)++] = ',';
    memcpy(out + *used, name, len);
    *used += len;
    out[*used] = '\0';
}

static void append_names(char *out, size_t size, size_t *used, const char *list)
{
    for (const char *p = list; *p;) {
        size_t l = strcspn(p, ",");
        append_name(out, size, used, p, l);
        p += l + (p[l] == ',');
    }
}

/* The host key algorithm list: the caller's, or the default with the types
 * we expect (pinned, or recorded in known_hosts) moved to the front, so a
 * server offering several keys presents the one we can check. */
static int hostkey_prefs(const jj_ssh_connect_opts *o, char *out, size_t size, jj_error *err)
{
    if (o->hostkey_prefs) {
        if (strlen(o->hostkey_prefs) >= size)
            return jj_error_set(err, JJ_EINVAL, "hostkey_prefs too long");
        snprintf(out, size, "%s", o->hostkey_prefs);
        return 0;
    }
    char types[512] = "";
    size_t tl = 0;
    jj_known_host *ents = NULL;
    size_t n = 0;
    if (o->host_key) {
        tl = strcspn(o->host_key, " \t");
        if (tl >= sizeof types)
            tl = 0;
        memcpy(types, o->host_key, tl);
        types[tl] = '\0';
    } else if (o->known_hosts) {
        int rc = jj_knownhosts_lookup(o->known_hosts, o->host, o->port, &ents, &n, err);
        if (rc)
            return rc;
        for (size_t i = 0; i < n; i++) {
            if (ents[i].marker)
                continue;
            size_t kl = strcspn(ents[i].key, " ");
            if (tl + kl + 2 >= sizeof types)
                break;
            if (tl)
                types[tl++] = ',';
            memcpy(types + tl, ents[i].key, kl);
            tl += kl;
            types[tl] = '\0';
        }
        jj_knownhosts_free(ents, n);
    }
    /* The expected types first (an RSA key may be signed three ways), then
     * the defaults; duplicates are dropped. */
    out[0] = '\0';
    size_t used = 0;
    for (const char *p = types; *p;) {
        size_t l = strcspn(p, ",");
        if (l == 7 && memcmp(p, "ssh-rsa", 7) == 0)
            append_names(out, size, &used, "rsa-sha2-512,rsa-sha2-256,ssh-rsa");
        else
            append_name(out, size, &used, p, l);
        p += l + (p[l] == ',');
    }
    append_names(out, size, &used, JJ_SSH_DEFAULT_HOSTKEY_PREFS);
    return 0;
}

/* Hands libssh2 the algorithms of prefs it supports, in order. (Passing
 * unsupported names is not only pointless: libssh2 1.10 removes them from
 * the list with an overlapping memcpy.) */
static int set_hostkey_prefs(jj_ssh_session *s, const char *prefs, jj_error *err)
{
    const char **algs = NULL;
    int n = libssh2_session_supported_algs(s->ssh, LIBSSH2_METHOD_HOSTKEY, &algs);
    if (n <= 0)
        return ssh_fail(s, JJ_ESSH, n, err, "cannot list libssh2's host key algorithms");
    char out[512];
    size_t used = 0;
    out[0] = '\0';
    for (const char *p = prefs; *p;) {
        size_t l = strcspn(p, ",");
        for (int i = 0; i < n; i++) {
            if (strlen(algs[i]) == l && memcmp(algs[i], p, l) == 0 && used + l + 2 < sizeof out) {
                if (used)
                    out[used++] = ',';
                memcpy(out + used, p, l);
                used += l;
                out[used] = '\0';
                break;
            }
        }
        p += l + (p[l] == ',');
    }
    libssh2_free(s->ssh, (void *)algs);
    if (!used)
        return jj_error_set(err, JJ_EINVAL, "no host key algorithm libssh2 supports in '%s'",
                            prefs);
    int rc = libssh2_session_method_pref(s->ssh, LIBSSH2_METHOD_HOSTKEY, out);
    if (rc)
        return ssh_fail(s, JJ_EINVAL, rc, err, "cannot set host key algorithms '%s'", out);
    return 0;
}

/* "<type> <base64>" of the server's host key. */
static int presented_key(jj_ssh_session *s, char **line, jj_error *err)
{
    size_t klen = 0;
    int ktype = 0;
    const char *k = libssh2_session_hostkey(s->ssh, &klen, &ktype);
    if (!k || klen < 4)
        return ssh_fail(s, JJ_ESSH, 0, err, "no host key from %s", s->hostport);
    const unsigned char *b = (const unsigned char *)k;
    size_t tl = ((size_t)b[0] << 24) | ((size_t)b[1] << 16) | ((size_t)b[2] << 8) | b[3];
    if (tl == 0 || tl > 63 || tl > klen - 4)
        return jj_error_set(err, JJ_ESSH, "malformed host key from %s", s->hostport);
    size_t cap = tl + 1 + jj_base64_encoded_size(klen);
    char *out = malloc(cap);
    if (!out)
        return jj_error_set(err, JJ_ENOMEM, "out of memory");
    memcpy(out, k + 4, tl);
    out[tl] = ' ';
    jj_base64_encode(k, klen, out + tl + 1);
    *line = out;
    return 0;
}

static int verify_host(jj_ssh_session *s, const jj_ssh_connect_opts *o, jj_error *err)
{
    char *line = NULL;
    int rc = presented_key(s, &line, err);
    if (rc)
        return rc;
    jj_knownhosts_check c = {
        .host = o->host,
        .port = o->port,
        .presented = line,
        .pinned = o->host_key,
        .known_hosts = o->known_hosts,
        .trust_on_first_use = o->trust_on_first_use,
    };
    rc = jj_knownhosts_check_host_key(&c, &s->hk.verified, err);
    if (rc) {
        free(line);
        return rc;
    }
    s->hk.line = line;
    snprintf(s->hk.type, sizeof s->hk.type, "%.*s", (int)strcspn(line, " "), line);
    jj_knownhosts_fingerprint(line, s->hk.fingerprint);
    return 0;
}

static int has_method(const char *list, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = list; *p;) {
        size_t l = strcspn(p, ",");
        if (l == nl && memcmp(p, name, nl) == 0)
            return 1;
        p += l + (p[l] == ',');
    }
    return 0;
}

static int authenticate(jj_ssh_session *s, const jj_ssh_connect_opts *o, double deadline,
                        const char *key_type, const char *key_fp, jj_error *err)
{
    char what[HOSTPORT_MAX + 200];
    snprintf(what, sizeof what, "authentication as %s on %s", o->user, s->hostport);
    unsigned ulen = (unsigned)strlen(o->user);
    char *list;
    while (!(list = libssh2_userauth_list(s->ssh, o->user, ulen))) {
        if (libssh2_userauth_authenticated(s->ssh))
            return 0; /* the server accepted "none" */
        int e = libssh2_session_last_errno(s->ssh);
        if (e != LIBSSH2_ERROR_EAGAIN)
            return ssh_fail(s, JJ_ESSH, e, err, "%s failed", what);
        int rc = wait_socket(s, deadline, WAIT_STEP, what, err);
        if (rc)
            return rc;
    }
    if (!has_method(list, "publickey"))
        return jj_error_set(err, JJ_ESSH_AUTH,
                            "%s failed: the server does not accept public keys for %s (it offers: "
                            "%s)",
                            what, o->user, *list ? list : "nothing");
    int rc;
    while ((rc = libssh2_userauth_publickey_fromfile_ex(s->ssh, o->user, ulen,
                                                         o->public_key_file,
                                                         o->private_key_file, NULL)) ==
           LIBSSH2_ERROR_EAGAIN) {
        int wrc = wait_socket(s, deadline, WAIT_STEP, what, err);
        if (wrc)
            return wrc;
    }
    if (rc == 0)
        return 0;
    if (rc == LIBSSH2_ERROR_FILE)
        return ssh_fail(s, JJ_ESSH_AUTH, rc, err, "%s failed: cannot use the private key %s",
                        what, o->private_key_file);
    if (rc == LIBSSH2_ERROR_AUTHENTICATION_FAILED || rc == LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED) {
        int rsa = strcmp(key_type, "ssh-rsa") == 0;
        return jj_error_set_lib(
            err, JJ_ESSH_AUTH, rc,
            "%s failed: the server refused the %s key %s (%s)%s", what, key_type, key_fp,
            o->private_key_file,
            rsa ? "; libssh2 1.10 signs RSA keys only with SHA-1 (ssh-rsa), which OpenSSH 8.8 "
                  "and later refuse by default: use an ed25519 or ECDSA key"
                : "; is its public key in the user's authorized_keys?");
    }
    return ssh_fail(s, JJ_ESSH, rc, err, "%s failed", what);
}

int jj_ssh_connect(const jj_ssh_connect_opts *o, jj_ssh_session **out, jj_error *err)
{
    *out = NULL;
    if (!o->host || !*o->host || !o->user || !*o->user || !o->private_key_file)
        return jj_error_set(err, JJ_EINVAL, "host, user and private_key_file are required");
    if (o->port < 1 || o->port > 65535)
        return jj_error_set(err, JJ_EINVAL, "invalid port %d", o->port);
    if (!(o->connect_timeout >= 0) || !(o->timeout >= 0) || o->keepalive < 0)
        return jj_error_set(err, JJ_EINVAL, "timeouts must not be negative");
    if (o->trust_on_first_use && !o->known_hosts && !o->host_key)
        return jj_error_set(err, JJ_EINVAL, "trust_on_first_use needs a known_hosts file");
    int rc = jj_ssh_global_init(err);
    if (rc)
        return rc;
    jj_ssh_session *s = calloc(1, sizeof *s);
    if (!s)
        return jj_error_set(err, JJ_ENOMEM, "out of memory");
    s->fd = -1;
    s->timeout = o->timeout;
    s->keepalive = o->keepalive;
    jj_sys_cancel_begin(&s->cancel, o->cancel);
    jj_knownhosts_hostport(s->hostport, sizeof s->hostport, o->host, o->port);
    s->user = strndup(o->user, strlen(o->user));
    if (!s->user) {
        jj_ssh_close(s);
        return jj_error_set(err, JJ_ENOMEM, "out of memory");
    }
    double deadline = o->connect_timeout > 0 ? now() + o->connect_timeout : 0;
    char key_type[64], key_fp[JJ_SSH_FP_SHA256_SIZE], prefs[512];
    char what[HOSTPORT_MAX + 80];
    snprintf(what, sizeof what, "SSH handshake with %s", s->hostport);
    rc = describe_user_key(o, key_type, sizeof key_type, key_fp, err);
    if (!rc)
        rc = hostkey_prefs(o, prefs, sizeof prefs, err);
    if (!rc)
        rc = tcp_connect(s, o->host, o->port, deadline, o->connect_timeout, err);
    if (!rc) {
        s->ssh = libssh2_session_init_ex(NULL, NULL, NULL, s);
        if (!s->ssh)
            rc = jj_error_set(err, JJ_ENOMEM, "cannot create an SSH session");
    }
    if (!rc) {
        libssh2_session_set_blocking(s->ssh, 0);
        rc = set_hostkey_prefs(s, prefs, err);
    }
    if (!rc) {
        int hrc;
        while ((hrc = libssh2_session_handshake(s->ssh, s->fd)) == LIBSSH2_ERROR_EAGAIN) {
            rc = wait_socket(s, deadline, WAIT_STEP, what, err);
            if (rc)
                break;
        }
        if (!rc && hrc)
            rc = ssh_fail(s, JJ_ESSH, hrc, err, "%s failed", what);
    }
    if (!rc)
        rc = verify_host(s, o, err);
    if (!rc)
        rc = authenticate(s, o, deadline, key_type, key_fp, err);
    if (rc) {
        jj_ssh_close(s);
        return rc;
    }
    s->established = 1;
    s->last_rx = now();
    if (s->keepalive > 0)
        libssh2_keepalive_config(s->ssh, 1, (unsigned)s->keepalive);
    *out = s;
    return 0;
}

/* The I/O of a session given up on: sends vanish, receives see a reset
 * connection. libssh2 1.10 frees an SFTP handle only once its close request
 * has been "sent", and otherwise waits on the network in its cleanup; with
 * these it runs that cleanup at once, and nothing reaches the server. */
static ssize_t sink_send(libssh2_socket_t fd, const void *buf, size_t len, int flags,
                         void **abstract)
{
    (void)fd;
    (void)buf;
    (void)flags;
    (void)abstract;
    return (ssize_t)len;
}

static ssize_t sink_recv(libssh2_socket_t fd, void *buf, size_t len, int flags,
                         void **abstract)
{
    (void)fd;
    (void)buf;
    (void)len;
    (void)flags;
    (void)abstract;
    return -ECONNRESET;
}

void jj_ssh_close(jj_ssh_session *s)
{
    if (!s)
        return;
    if (s->ssh) {
        /* Blocking with libssh2's own short timeout: closing must not hang on
         * a dead server, and must not leave the server's side dangling on a
         * live one. */
        libssh2_session_set_blocking(s->ssh, 1);
        libssh2_session_set_timeout(s->ssh, 2000);
        if (s->broken) {
            /* libssh2's state is unknown: say nothing more to the server. */
            if (s->fd >= 0)
                shutdown(s->fd, SHUT_RDWR);
            libssh2_session_callback_set(s->ssh, LIBSSH2_CALLBACK_SEND, (void *)sink_send);
            libssh2_session_callback_set(s->ssh, LIBSSH2_CALLBACK_RECV, (void *)sink_recv);
            if (s->orphan)
                libssh2_sftp_close_handle(s->orphan);
        }
        if (s->sftp)
            libssh2_sftp_shutdown(s->sftp); /* frees it, even when the socket is gone */
        if (s->established && !s->broken)
            libssh2_session_disconnect(s->ssh, "closed by client");
        /* Channels abandoned after a timeout still wait for the server's
         * CLOSE, which comes only when their command ends: with the socket
         * shut, libssh2 frees them at once instead of waiting. */
        if (s->fd >= 0)
            shutdown(s->fd, SHUT_RDWR);
        libssh2_session_free(s->ssh);
    }
    if (s->fd >= 0)
        close(s->fd);
    free(s->hk.line);
    free(s->user);
    free(s);
}

/* ---- exec ------------------------------------------------------------------------- */

void jj_ssh_exec_opts_init(jj_ssh_exec_opts *o)
{
    memset(o, 0, sizeof *o);
    o->collect = 1;
}

void jj_ssh_exec_result_init(jj_ssh_exec_result *r)
{
    memset(r, 0, sizeof *r);
}

void jj_ssh_exec_result_free(jj_ssh_exec_result *r)
{
    /* Output can carry secrets (a script printing agent.conf): wipe it. */
    if (r->out)
        OPENSSL_cleanse(r->out, r->out_cap);
    if (r->err)
        OPENSSL_cleanse(r->err, r->err_cap);
    free(r->out);
    free(r->err);
    jj_ssh_exec_result_init(r);
}

typedef enum { OP_NONE, OP_READ_OUT, OP_READ_ERR, OP_WRITE } exec_op;

typedef struct exec_state {
    jj_ssh_session *s;
    LIBSSH2_CHANNEL *ch;
    const jj_ssh_exec_opts *o;
    jj_ssh_exec_result *r;
    int in_fd;            /* stdin_file, or -1 */
    const char *in_ptr;   /* the chunk being written: unchanged while a write is pending */
    size_t in_len;
    size_t mem_off;       /* next offset in stdin_data */
    int in_done;          /* the stdin source is exhausted */
    int eof_sent;
    int aborted;          /* the output callback asked to stop */
    int discard;          /* deliver nothing more (aborting) */
    exec_op pending;      /* call that left a packet half-sent: repeat it first */
    char in_buf[IO_CHUNK];
    char buf[IO_CHUNK];
} exec_state;

static int buf_append(char **data, size_t *len, size_t *cap, const char *p, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap : 4096;
        while (c < *len + n + 1)
            c *= 2;
        char *d = malloc(c); /* not realloc: the old copy is wiped first */
        if (!d)
            return JJ_ENOMEM;
        if (*data) {
            memcpy(d, *data, *len);
            OPENSSL_cleanse(*data, *cap);
            free(*data);
        }
        *data = d;
        *cap = c;
    }
    memcpy(*data + *len, p, n);
    *len += n;
    (*data)[*len] = '\0';
    return 0;
}

/* After a call returned EAGAIN: when libssh2 is left with a half-sent
 * packet, nothing but this same call may run next. */
static void note_pending(exec_state *st, exec_op op)
{
    if (libssh2_session_block_directions(st->s->ssh) & LIBSSH2_SESSION_BLOCK_OUTBOUND)
        st->pending = op;
}

/* > 0 progress, 0 none, < 0 a libssh2 error or JJ_ENOMEM (*is_jj set). */
static int exec_read(exec_state *st, exec_op op, int *is_jj)
{
    int stream = op == OP_READ_OUT ? 0 : SSH_EXTENDED_DATA_STDERR;
    ssize_t n = libssh2_channel_read_ex(st->ch, stream, st->buf, sizeof st->buf);
    if (n == LIBSSH2_ERROR_EAGAIN) {
        note_pending(st, op);
        return 0;
    }
    if (n <= 0)
        return (int)n;
    st->s->last_rx = now();
    if (st->discard)
        return 1;
    int which = op == OP_READ_OUT ? JJ_SSH_STDOUT : JJ_SSH_STDERR;
    if (st->o->collect) {
        int rc = which == JJ_SSH_STDOUT
                     ? buf_append(&st->r->out, &st->r->out_len, &st->r->out_cap, st->buf, (size_t)n)
                     : buf_append(&st->r->err, &st->r->err_len, &st->r->err_cap, st->buf, (size_t)n);
        if (rc) {
            *is_jj = 1;
            return rc;
        }
    }
    if (st->o->on_output && st->o->on_output(st->o->ud, which, st->buf, (size_t)n) != 0)
        st->aborted = 1;
    return 1;
}

/* Feeds stdin, then sends EOF. Return values as exec_read. */
static int exec_write(exec_state *st, int *is_jj)
{
    if (st->eof_sent)
        return 0;
    if (st->in_len == 0 && !st->in_done) {
        if (st->in_fd >= 0) {
            ssize_t n;
            do
                n = read(st->in_fd, st->in_buf, sizeof st->in_buf);
            while (n < 0 && errno == EINTR);
            if (n < 0) {
                *is_jj = 1;
                return jj_error_from_errno(errno);
            }
            st->in_ptr = st->in_buf;
            st->in_len = (size_t)n;
            st->in_done = n == 0;
        } else if (st->o->stdin_data && st->mem_off < st->o->stdin_len) {
            size_t left = st->o->stdin_len - st->mem_off;
            st->in_ptr = st->o->stdin_data + st->mem_off;
            st->in_len = left < 8 * IO_CHUNK ? left : 8 * IO_CHUNK;
            st->mem_off += st->in_len;
        } else {
            st->in_done = 1;
        }
    }
    if (st->in_len > 0) {
        ssize_t n = libssh2_channel_write_ex(st->ch, 0, st->in_ptr, st->in_len);
        if (n == LIBSSH2_ERROR_EAGAIN) {
            note_pending(st, OP_WRITE);
            return 0;
        }
        if (n == LIBSSH2_ERROR_CHANNEL_EOF_SENT || n == LIBSSH2_ERROR_CHANNEL_CLOSED) {
            /* The command is gone or closed its input: the rest is not wanted. */
            st->in_len = 0;
            st->in_done = st->eof_sent = 1;
            return 0;
        }
        if (n < 0)
            return (int)n;
        st->in_ptr += n;
        st->in_len -= (size_t)n;
        return 1;
    }
    int rc = libssh2_channel_send_eof(st->ch);
    if (rc == LIBSSH2_ERROR_EAGAIN) {
        note_pending(st, OP_WRITE);
        return 0;
    }
    st->eof_sent = 1; /* an error here means the channel is already closing */
    return rc == 0;
}

static int exec_op_run(exec_state *st, exec_op op, int *is_jj)
{
    return op == OP_WRITE ? exec_write(st, is_jj) : exec_read(st, op, is_jj);
}

/* Leaves the channel after a timeout or an abort: finishes a half-sent
 * packet, then sends our CLOSE without waiting for the server's, which
 * OpenSSH only sends once the command has exited (and libssh2 1.10 cannot
 * ask it to signal the command). sshd then stops forwarding the command's
 * output, and the command runs on until it ends or writes. A channel still
 * waiting for the server's CLOSE is freed with the session. If even sending
 * the CLOSE cannot be done by deadline, the session is marked broken. */
static void exec_abandon(exec_state *st, double deadline)
{
    jj_ssh_session *s = st->s;
    jj_error ignored;
    st->discard = 1;
    /* Closing is bounded by deadline; after an interruption it must still
     * run, so only a signal arriving from now on cuts it short. */
    jj_sys_cancel_begin(&s->cancel, NULL);
    while (st->pending != OP_NONE) {
        exec_op op = st->pending;
        st->pending = OP_NONE;
        int is_jj = 0;
        if (exec_op_run(st, op, &is_jj) < 0 && !is_jj)
            break;
        if (st->pending != OP_NONE && wait_socket(s, deadline, WAIT_STEP, "closing", &ignored)) {
            s->broken = 1;
            return;
        }
    }
    int rc;
    while ((rc = libssh2_channel_close(st->ch)) == LIBSSH2_ERROR_EAGAIN) {
        if (!(libssh2_session_block_directions(s->ssh) & LIBSSH2_SESSION_BLOCK_OUTBOUND)) {
            st->ch = NULL; /* CLOSE sent; libssh2 keeps the channel until the session ends */
            return;
        }
        if (wait_socket(s, deadline, WAIT_STEP, "closing", &ignored)) {
            s->broken = 1;
            return;
        }
    }
    /* Closed locally: freeing waits for nothing more. */
    while ((rc = libssh2_channel_free(st->ch)) == LIBSSH2_ERROR_EAGAIN)
        if (wait_socket(s, deadline, WAIT_STEP, "closing", &ignored)) {
            s->broken = 1;
            return;
        }
    st->ch = NULL;
}

/* Waits for the server's close, reads the exit status and frees the channel. */
static int exec_finish(exec_state *st, double deadline, const char *what, jj_error *err)
{
    jj_ssh_session *s = st->s;
    int rc;
    while ((rc = libssh2_channel_close(st->ch)) == LIBSSH2_ERROR_EAGAIN)
        if ((rc = wait_socket(s, deadline, WAIT_STEP, what, err)) != 0)
            return rc;
    while ((rc = libssh2_channel_wait_closed(st->ch)) == LIBSSH2_ERROR_EAGAIN)
        if ((rc = wait_socket(s, deadline, WAIT_STEP, what, err)) != 0)
            return rc;
    st->r->code = libssh2_channel_get_exit_status(st->ch);
    char *sig = NULL;
    size_t siglen = 0;
    libssh2_channel_get_exit_signal(st->ch, &sig, &siglen, NULL, NULL, NULL, NULL);
    if (sig && siglen) {
        snprintf(st->r->signal, sizeof st->r->signal, "%.*s", (int)siglen, sig);
        int signo = jj_sys_signal_number(st->r->signal);
        st->r->code = 128 + (signo > 0 ? signo : 127);
    }
    if (sig)
        libssh2_free(s->ssh, sig);
    while ((rc = libssh2_channel_free(st->ch)) == LIBSSH2_ERROR_EAGAIN)
        if ((rc = wait_socket(s, deadline, WAIT_STEP, what, err)) != 0)
            return rc;
    st->ch = NULL;
    return 0;
}

static int exec_stream(exec_state *st, double deadline, const char *what, jj_error *err)
{
    jj_ssh_session *s = st->s;
    static const exec_op order[] = {OP_READ_OUT, OP_READ_ERR, OP_WRITE};
    for (;;) {
        int progress = 0, rc = 0, is_jj = 0;
        if (st->pending != OP_NONE) {
            exec_op op = st->pending;
            st->pending = OP_NONE;
            rc = exec_op_run(st, op, &is_jj);
            progress = rc > 0;
        } else {
            for (size_t i = 0; i < 3 && rc >= 0 && !st->aborted && st->pending == OP_NONE; i++) {
                rc = exec_op_run(st, order[i], &is_jj);
                progress |= rc > 0;
            }
        }
        if (rc < 0) {
            if (is_jj)
                return jj_error_set(err, rc, "%s: %s", what,
                                    rc == JJ_ENOMEM ? "out of memory" : "cannot read stdin_file");
            return ssh_fail(s, JJ_ESSH, rc, err, "%s failed", what);
        }
        if (st->aborted)
            return jj_error_set(err, JJ_EINTERRUPTED, "%s: aborted by the output callback", what);
        if (st->pending != OP_NONE) {
            /* The server must drain what we sent: a protocol step. */
            if ((rc = wait_socket(s, deadline, WAIT_STEP, what, err)) != 0)
                return rc;
            continue;
        }
        if (!progress && libssh2_channel_eof(st->ch))
            return 0;
        if (deadline > 0 && now() >= deadline)
            return jj_error_set(err, JJ_ETIMEOUT, "%s timed out after %g s", what, st->o->timeout);
        if (!progress && (rc = wait_socket(s, deadline, WAIT_OUTPUT, what, err)) != 0) {
            if (rc == JJ_ETIMEOUT && deadline > 0 && now() >= deadline)
                return jj_error_set(err, JJ_ETIMEOUT, "%s timed out after %g s", what,
                                    st->o->timeout);
            return rc;
        }
    }
}

int jj_ssh_exec(jj_ssh_session *s, const char *command, const jj_ssh_exec_opts *o,
                jj_ssh_exec_result *r, jj_error *err)
{
    jj_ssh_exec_result_free(r);
    jj_ssh_exec_opts defaults;
    if (!o) {
        jj_ssh_exec_opts_init(&defaults);
        o = &defaults;
    }
    int rc = check_usable(s, o->cancel, err);
    if (rc)
        return rc;
    if (!command)
        return jj_error_set(err, JJ_EINVAL, "command is required");
    if (!(o->timeout >= 0))
        return jj_error_set(err, JJ_EINVAL, "timeout must not be negative");
    exec_state *st = calloc(1, sizeof *st);
    if (!st)
        return jj_error_set(err, JJ_ENOMEM, "out of memory");
    st->s = s;
    st->o = o;
    st->r = r;
    st->in_fd = -1;
    if (o->stdin_file) {
        st->in_fd = open(o->stdin_file, O_RDONLY | O_CLOEXEC);
        if (st->in_fd < 0) {
            rc = jj_error_errno(err, errno, "cannot open stdin_file %s", o->stdin_file);
            free(st);
            return rc;
        }
    }
    char what[HOSTPORT_MAX + 64];
    snprintf(what, sizeof what, "command on %s", s->hostport);
    double start = now();
    double deadline = o->timeout > 0 ? start + o->timeout : 0;
    s->last_rx = start;

    while (!(st->ch = libssh2_channel_open_session(s->ssh))) {
        int e = libssh2_session_last_errno(s->ssh);
        if (e != LIBSSH2_ERROR_EAGAIN) {
            rc = ssh_fail(s, JJ_ESSH, e, err, "cannot open a channel to %s", s->hostport);
            goto done;
        }
        if ((rc = wait_socket(s, deadline, WAIT_STEP, what, err)) != 0) {
            s->broken = 1; /* libssh2 is mid-way through the open */
            goto done;
        }
    }
    int erc;
    while ((erc = libssh2_channel_exec(st->ch, command)) == LIBSSH2_ERROR_EAGAIN)
        if ((rc = wait_socket(s, deadline, WAIT_STEP, what, err)) != 0) {
            /* A request half-sent cannot be followed by our CLOSE. */
            if (libssh2_session_block_directions(s->ssh) & LIBSSH2_SESSION_BLOCK_OUTBOUND)
                s->broken = 1;
            goto done;
        }
    if (erc) {
        rc = ssh_fail(s, JJ_ESSH, erc, err, "cannot start the %s", what);
        goto done;
    }
    rc = exec_stream(st, deadline, what, err);
    if (!rc)
        rc = exec_finish(st, deadline, what, err);
done:
    if (st->ch && !s->broken) /* a broken session frees its channels at close */
        exec_abandon(st, now() + (s->timeout > 0 && s->timeout < CLOSE_GRACE ? s->timeout
                                                                              : CLOSE_GRACE));
    if (st->in_fd >= 0)
        close(st->in_fd);
    OPENSSL_cleanse(st, sizeof *st); /* stdin chunks: the phase-2 script carries keys */
    free(st);
    return rc;
}

/* ---- SFTP -------------------------------------------------------------------------- */

static int sftp_fail(jj_ssh_session *s, int rc, jj_error *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int sftp_fail(jj_ssh_session *s, int rc, jj_error *err, const char *fmt, ...)
{
    char what[JJ_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (rc != LIBSSH2_ERROR_SFTP_PROTOCOL || !s->sftp)
        return ssh_fail(s, JJ_ESSH, rc, err, "%s", what);
    unsigned long st = libssh2_sftp_last_error(s->sftp);
    static const char *const names[] = {
        "ok", "end of file", "no such file", "permission denied", "failure", "bad message",
        "no connection", "connection lost", "operation unsupported", "invalid handle",
        "no such path", "file already exists", "write protected", "no media",
        "no space on file system", "quota exceeded", "unknown principal", "lock conflict",
        "directory not empty", "not a directory", "invalid file name", "link loop",
    };
    int code = JJ_ESSH;
    if (st == LIBSSH2_FX_NO_SUCH_FILE || st == LIBSSH2_FX_NO_SUCH_PATH)
        code = JJ_ENOENT;
    else if (st == LIBSSH2_FX_PERMISSION_DENIED || st == LIBSSH2_FX_WRITE_PROTECT)
        code = JJ_EACCES;
    else if (st == LIBSSH2_FX_FILE_ALREADY_EXISTS)
        code = JJ_EEXIST;
    else if (st == LIBSSH2_FX_NOT_A_DIRECTORY)
        code = JJ_ENOTDIR;
    else if (st == LIBSSH2_FX_NO_SPACE_ON_FILESYSTEM || st == LIBSSH2_FX_QUOTA_EXCEEDED)
        code = JJ_EIO;
    const char *name = st < sizeof names / sizeof names[0] ? names[st] : "unknown status";
    return jj_error_set_lib(err, code, (long)st, "%s: %s (SFTP status %lu)", what, name, st);
}

static int sftp_start(jj_ssh_session *s, jj_error *err)
{
    if (s->sftp)
        return 0;
    char what[HOSTPORT_MAX + 32];
    snprintf(what, sizeof what, "starting SFTP on %s", s->hostport);
    while (!(s->sftp = libssh2_sftp_init(s->ssh))) {
        int e = libssh2_session_last_errno(s->ssh);
        if (e != LIBSSH2_ERROR_EAGAIN)
            return ssh_fail(s, JJ_ESSH, e, err, "%s", what);
        int rc = wait_socket(s, 0, WAIT_STEP, what, err);
        if (rc) {
            s->broken = 1;
            return rc;
        }
    }
    return 0;
}

/* The wait between two tries of an SFTP call that returned EAGAIN. If it
 * fails, libssh2 is left mid-request, so the session is marked broken:
 * callers tell their own libssh2 failures from this one by s->broken. */
static int sftp_wait(jj_ssh_session *s, const char *what, jj_error *err)
{
    int rc = wait_socket(s, 0, WAIT_STEP, what, err);
    if (rc)
        s->broken = 1;
    return rc;
}

static LIBSSH2_SFTP_HANDLE *sftp_open(jj_ssh_session *s, const char *path, unsigned long flags,
                                      long mode, const char *what, int *rc, jj_error *err)
{
    LIBSSH2_SFTP_HANDLE *h;
    while (!(h = libssh2_sftp_open_ex(s->sftp, path, (unsigned)strlen(path), flags, mode,
                                      LIBSSH2_SFTP_OPENFILE))) {
        int e = libssh2_session_last_errno(s->ssh);
        if (e != LIBSSH2_ERROR_EAGAIN) {
            *rc = sftp_fail(s, e, err, "cannot open %s on %s", path, s->hostport);
            return NULL;
        }
        *rc = wait_socket(s, 0, WAIT_STEP, what, err);
        if (*rc) {
            s->broken = 1;
            return NULL;
        }
    }
    *rc = 0;
    return h;
}

static void sftp_close_quietly(jj_ssh_session *s, LIBSSH2_SFTP_HANDLE *h)
{
    jj_error ignored;
    int rc;
    if (s->broken) {
        s->orphan = h; /* freed by jj_ssh_close, without the network */
        return;
    }
    while ((rc = libssh2_sftp_close_handle(h)) == LIBSSH2_ERROR_EAGAIN)
        if ((rc = sftp_wait(s, "closing a remote file", &ignored)) != 0)
            break;
}

static void sftp_unlink_quietly(jj_ssh_session *s, const char *path)
{
    jj_error ignored;
    int rc;
    if (s->broken)
        return;
    while ((rc = libssh2_sftp_unlink_ex(s->sftp, path, (unsigned)strlen(path))) == LIBSSH2_ERROR_EAGAIN)
        if ((rc = sftp_wait(s, "removing a remote file", &ignored)) != 0)
            break;
}

static int report_progress(const jj_ssh_transfer_opts *o, uint64_t done, int64_t total,
                           const char *what, jj_error *err)
{
    if (o && o->on_progress && o->on_progress(o->ud, done, total) != 0)
        return jj_error_set(err, JJ_EINTERRUPTED, "%s: aborted by the progress callback", what);
    return 0;
}

/* Writes buf fully, following libssh2's non-blocking contract: after EAGAIN
 * the same buffer again; after a partial write the rest of it. */
static int sftp_write_all(jj_ssh_session *s, LIBSSH2_SFTP_HANDLE *h, const char *buf, size_t len,
                          const char *what, jj_error *err)
{
    while (len > 0) {
        ssize_t n = libssh2_sftp_write(h, buf, len);
        if (n == LIBSSH2_ERROR_EAGAIN) {
            int rc = wait_socket(s, 0, WAIT_STEP, what, err);
            if (rc) {
                s->broken = 1;
                return rc;
            }
            continue;
        }
        if (n < 0)
            return sftp_fail(s, (int)n, err, "%s", what);
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* The outcome of an SFTP retry loop as a JJ code: a failed wait has
 * described itself and broken the session; a libssh2 failure is described
 * here. */
static int sftp_check(jj_ssh_session *s, int rc, const char *what, const char *step,
                      jj_error *err)
{
    if (rc == 0 || s->broken)
        return rc;
    return sftp_fail(s, rc, err, "%s: %s", what, step);
}

/* Moves tmp over remote_path. SFTP v3 renames (all libssh2 1.10 speaks)
 * refuse to overwrite, so an existing file is removed first. */
static int sftp_replace(jj_ssh_session *s, const char *tmp, const char *remote_path,
                        const char *what, jj_error *err)
{
    unsigned tl = (unsigned)strlen(tmp), rl = (unsigned)strlen(remote_path);
    long flags = LIBSSH2_SFTP_RENAME_OVERWRITE | LIBSSH2_SFTP_RENAME_ATOMIC |
                 LIBSSH2_SFTP_RENAME_NATIVE;
    int rc;
    for (int attempt = 0; attempt < 2; attempt++) {
        while ((rc = libssh2_sftp_rename_ex(s->sftp, tmp, tl, remote_path, rl, flags)) ==
               LIBSSH2_ERROR_EAGAIN)
            if ((rc = sftp_wait(s, what, err)) != 0)
                return rc;
        if (rc != LIBSSH2_ERROR_SFTP_PROTOCOL || attempt > 0)
            break;
        unsigned long fx = libssh2_sftp_last_error(s->sftp);
        if (fx != LIBSSH2_FX_FAILURE && fx != LIBSSH2_FX_FILE_ALREADY_EXISTS)
            break;
        while ((rc = libssh2_sftp_unlink_ex(s->sftp, remote_path, rl)) == LIBSSH2_ERROR_EAGAIN)
            if ((rc = sftp_wait(s, what, err)) != 0)
                return rc;
        if (rc)
            return sftp_check(s, rc, what, "cannot replace the existing file", err);
    }
    return sftp_check(s, rc, what, "cannot rename the temporary file into place", err);
}

/* mkdir -p of path's parent directories over SFTP, from the top, with mode
 * (the server's umask applies). A directory that exists, or one this user
 * may not make, is passed over: the open that follows reports what is
 * really wrong. Only a failed connection fails here. */
static int sftp_make_parents(jj_ssh_session *s, const char *path, long mode, const char *what,
                             jj_error *err)
{
    size_t len = strlen(path);
    char *dir = malloc(len + 1);
    if (!dir)
        return jj_error_set(err, JJ_ENOMEM, "out of memory");
    memcpy(dir, path, len + 1);
    int rc = 0;
    for (size_t i = 1; i < len && rc == 0; i++) {
        if (dir[i] != '/')
            continue;
        dir[i] = '\0';
        while ((rc = libssh2_sftp_mkdir_ex(s->sftp, dir, (unsigned)i, mode)) ==
               LIBSSH2_ERROR_EAGAIN)
            if ((rc = sftp_wait(s, what, err)) != 0)
                break;
        if (rc == LIBSSH2_ERROR_SFTP_PROTOCOL && !s->broken)
            rc = 0; /* exists, or not ours to make */
        else if (rc && !s->broken)
            rc = sftp_fail(s, rc, err, "%s: cannot make directory %s", what, dir);
        dir[i] = '/';
    }
    free(dir);
    return rc;
}

/* Streams fd into the open remote handle h in SFTP_CHUNK writes. */
static int sftp_send_file(jj_ssh_session *s, LIBSSH2_SFTP_HANDLE *h, int fd, int64_t total,
                          const jj_ssh_transfer_opts *o, uint64_t *done, const char *what,
                          jj_error *err)
{
    char *buf = malloc(SFTP_CHUNK);
    if (!buf)
        return jj_error_set(err, JJ_ENOMEM, "out of memory");
    int rc = report_progress(o, 0, total, what, err);
    while (!rc) {
        ssize_t n;
        do
            n = read(fd, buf, SFTP_CHUNK);
        while (n < 0 && errno == EINTR);
        if (n < 0)
            rc = jj_error_errno(err, errno, "%s: read", what);
        if (n <= 0)
            break;
        rc = sftp_write_all(s, h, buf, (size_t)n, what, err);
        if (!rc) {
            *done += (uint64_t)n;
            rc = report_progress(o, *done, total, what, err);
        }
    }
    OPENSSL_cleanse(buf, SFTP_CHUNK);
    free(buf);
    return rc;
}

int jj_ssh_upload(jj_ssh_session *s, const char *local_path, const char *remote_path,
                  const jj_ssh_transfer_opts *o, uint64_t *bytes, jj_error *err)
{
    if (bytes)
        *bytes = 0;
    int rc = check_usable(s, o ? o->cancel : NULL, err);
    if (rc)
        return rc;
    if (!local_path || !remote_path || !*remote_path)
        return jj_error_set(err, JJ_EINVAL, "local and remote paths are required");
    long mode = o && o->mode > 0 ? o->mode : 0644;
    if (mode > 07777)
        return jj_error_set(err, JJ_EINVAL, "invalid mode %lo", (unsigned long)mode);
    int fd = open(local_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return jj_error_errno(err, errno, "cannot open %s", local_path);
    struct stat st;
    if (fstat(fd, &st) != 0)
        rc = jj_error_errno(err, errno, "cannot stat %s", local_path);
    else if (!S_ISREG(st.st_mode))
        rc = jj_error_set(err, JJ_EISDIR, "%s is not a regular file", local_path);
    char what[HOSTPORT_MAX + 1100];
    snprintf(what, sizeof what, "uploading %s to %s:%s", local_path, s->hostport, remote_path);
    size_t tmp_len = strlen(remote_path) + 32;
    char *tmp = rc ? NULL : malloc(tmp_len);
    LIBSSH2_SFTP_HANDLE *h = NULL;
    int created = 0;
    uint64_t done = 0;
    if (!rc && !tmp)
        rc = jj_error_set(err, JJ_ENOMEM, "out of memory");
    if (!rc) {
        unsigned char rnd[6];
        char hex[13];
        rc = jj_random_bytes(rnd, sizeof rnd, err);
        jj_hex_encode(rnd, sizeof rnd, hex);
        snprintf(tmp, tmp_len, "%s.juju-upload-%s", remote_path, hex);
    }
    if (!rc)
        rc = sftp_start(s, err);
    if (!rc) {
        h = sftp_open(s, tmp, LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_EXCL, mode,
                      what, &rc, err);
        if (!h && rc && !s->broken && o && o->parents_mode > 0 &&
            libssh2_sftp_last_error(s->sftp) == LIBSSH2_FX_NO_SUCH_FILE) {
            /* A missing directory: make the parents, then try once more. */
            rc = sftp_make_parents(s, remote_path, o->parents_mode, what, err);
            if (!rc)
                h = sftp_open(s, tmp, LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_EXCL,
                              mode, what, &rc, err);
        }
        created = h != NULL;
    }
    if (!rc) {
        /* The server's umask applied to the create mode: set it exactly. */
        LIBSSH2_SFTP_ATTRIBUTES attrs;
        memset(&attrs, 0, sizeof attrs);
        attrs.flags = LIBSSH2_SFTP_ATTR_PERMISSIONS;
        attrs.permissions = (unsigned long)mode;
        while ((rc = libssh2_sftp_fsetstat(h, &attrs)) == LIBSSH2_ERROR_EAGAIN)
            if ((rc = sftp_wait(s, what, err)) != 0)
                break;
        rc = sftp_check(s, rc, what, "cannot set the mode", err);
    }
    if (!rc)
        rc = sftp_send_file(s, h, fd, (int64_t)st.st_size, o, &done, what, err);
    if (!rc) {
        while ((rc = libssh2_sftp_fsync(h)) == LIBSSH2_ERROR_EAGAIN)
            if ((rc = sftp_wait(s, what, err)) != 0)
                break;
        if (rc == LIBSSH2_ERROR_SFTP_PROTOCOL && !s->broken &&
            libssh2_sftp_last_error(s->sftp) == LIBSSH2_FX_OP_UNSUPPORTED)
            rc = 0; /* a server without fsync@openssh.com */
        rc = sftp_check(s, rc, what, "fsync", err);
    }
    if (!rc) {
        while ((rc = libssh2_sftp_close_handle(h)) == LIBSSH2_ERROR_EAGAIN)
            if ((rc = sftp_wait(s, what, err)) != 0)
                break;
        h = NULL;
        rc = sftp_check(s, rc, what, "close", err);
    }
    if (!rc)
        rc = sftp_replace(s, tmp, remote_path, what, err);
    if (!rc) {
        created = 0;
        if (bytes)
            *bytes = done;
    }
    if (h)
        sftp_close_quietly(s, h);
    if (created)
        sftp_unlink_quietly(s, tmp);
    close(fd);
    free(tmp);
    return rc;
}

/* Streams the open remote handle h into fd. */
static int sftp_receive_file(jj_ssh_session *s, LIBSSH2_SFTP_HANDLE *h, int fd, int64_t total,
                             const jj_ssh_transfer_opts *o, uint64_t *done, const char *what,
                             jj_error *err)
{
    char *buf = malloc(SFTP_CHUNK);
    if (!buf)
        return jj_error_set(err, JJ_ENOMEM, "out of memory");
    int rc = report_progress(o, 0, total, what, err);
    while (!rc) {
        ssize_t n = libssh2_sftp_read(h, buf, SFTP_CHUNK);
        if (n == LIBSSH2_ERROR_EAGAIN) {
            rc = sftp_wait(s, what, err);
            continue;
        }
        if (n < 0)
            rc = sftp_fail(s, (int)n, err, "%s", what);
        if (n <= 0)
            break;
        for (ssize_t off = 0; off < n && !rc;) {
            ssize_t w = write(fd, buf + off, (size_t)(n - off));
            if (w < 0 && errno != EINTR)
                rc = jj_error_errno(err, errno, "%s: write", what);
            off += w > 0 ? w : 0;
        }
        if (!rc) {
            *done += (uint64_t)n;
            rc = report_progress(o, *done, total, what, err);
        }
    }
    OPENSSL_cleanse(buf, SFTP_CHUNK);
    free(buf);
    return rc;
}

int jj_ssh_download(jj_ssh_session *s, const char *remote_path, const char *local_path,
                    const jj_ssh_transfer_opts *o, uint64_t *bytes, jj_error *err)
{
    if (bytes)
        *bytes = 0;
    int rc = check_usable(s, o ? o->cancel : NULL, err);
    if (rc)
        return rc;
    if (!local_path || !*local_path || !remote_path || !*remote_path)
        return jj_error_set(err, JJ_EINVAL, "local and remote paths are required");
    int mode = o && o->mode > 0 ? o->mode : 0600;
    if (mode > 07777)
        return jj_error_set(err, JJ_EINVAL, "invalid mode %o", (unsigned)mode);
    char what[HOSTPORT_MAX + 1100];
    snprintf(what, sizeof what, "downloading %s:%s to %s", s->hostport, remote_path, local_path);
    size_t tmp_len = strlen(local_path) + 16;
    char *tmp = malloc(tmp_len);
    LIBSSH2_SFTP_HANDLE *h = NULL;
    int fd = -1;
    uint64_t done = 0;
    int64_t total = -1;
    if (!tmp)
        return jj_error_set(err, JJ_ENOMEM, "out of memory");
    tmp[0] = '\0';
    rc = sftp_start(s, err);
    if (!rc)
        h = sftp_open(s, remote_path, LIBSSH2_FXF_READ, 0, what, &rc, err);
    if (!rc) {
        LIBSSH2_SFTP_ATTRIBUTES attrs;
        memset(&attrs, 0, sizeof attrs);
        while ((rc = libssh2_sftp_fstat(h, &attrs)) == LIBSSH2_ERROR_EAGAIN)
            if ((rc = sftp_wait(s, what, err)) != 0)
                break;
        rc = sftp_check(s, rc, what, "stat", err);
        if (!rc && (attrs.flags & LIBSSH2_SFTP_ATTR_SIZE))
            total = (int64_t)attrs.filesize;
    }
    if (!rc) {
        snprintf(tmp, tmp_len, "%s.part-XXXXXX", local_path);
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0) {
            rc = jj_error_errno(err, errno, "cannot create a temporary file beside %s",
                                local_path);
            tmp[0] = '\0';
        } else if (fchmod(fd, (mode_t)mode) != 0) {
            rc = jj_error_errno(err, errno, "cannot chmod %s", tmp);
        }
    }
    if (!rc)
        rc = sftp_receive_file(s, h, fd, total, o, &done, what, err);
    if (!rc && fsync(fd) != 0)
        rc = jj_error_errno(err, errno, "cannot fsync %s", tmp);
    if (fd >= 0 && close(fd) != 0 && !rc)
        rc = jj_error_errno(err, errno, "cannot close %s", tmp);
    if (!rc && rename(tmp, local_path) != 0)
        rc = jj_error_errno(err, errno, "cannot rename %s to %s", tmp, local_path);
    if (!rc) {
        tmp[0] = '\0';
        if (bytes)
            *bytes = done;
    }
    if (h)
        sftp_close_quietly(s, h);
    if (tmp[0])
        unlink(tmp);
    free(tmp);
    return rc;
}
