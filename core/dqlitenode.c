/* dqlitenode.c: a libdqlite node behind a mutual-TLS proxy thread (see
 * dqlitenode.h for the shape). The proxy is one poll(2) loop over the
 * listener, a wake pipe and every relayed connection; OpenSSL runs
 * non-blocking there. Outbound peer connections are opened (TCP + TLS
 * handshake, blocking with a deadline) in libdqlite's connect callback and
 * then handed to the loop through a mutex-guarded queue.
 */
#include "dqlitenode.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "fs.h"
#include "libdqlite_node_api.h" /* libdqlite's <dqlite.h> (see core/CMakeLists.txt) */

#define RAFT_NOCONNECTION_RC 16 /* raft.h's RAFT_NOCONNECTION */
#define RELAY_BUF 16384
#define DIAL_TIMEOUT_MS 5000
#define ACCEPT_HANDSHAKE_MS 10000

/* The TLS 1.2 suites go-dqlite offers (internal/protocol/dial.go). */
static const char TLS12_CIPHERS[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-AES256-SHA:ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES256-SHA:"
    "ECDHE-RSA-AES128-SHA";

typedef struct relay {
    struct relay *next;
    int tcp;          /* the TLS side */
    int local;        /* the node's side; -1 until an accepted handshake is done */
    SSL *ssl;
    int accepted;     /* 1: a client or peer dialled us; 0: we dialled a peer */
    int handshaking;
    int hwant, rwant, wwant; /* SSL_ERROR_WANT_* of the last handshake/read/write */
    int remote_eof, local_eof, dead, shut;
    long long deadline_ms; /* for an accepted handshake */
    size_t rlen, wlen;
    unsigned char r[RELAY_BUF]; /* remote -> local */
    unsigned char w[RELAY_BUF]; /* local -> remote */
} relay;

struct jj_dqlitenode {
    uint64_t id;
    char *address;
    char *dir;
    char bind[64];       /* "@juju-dqlite-..." abstract socket of the node */
    int plain;
    dqlite_node *node;   /* NULL once destroyed */
    int running;
    SSL_CTX *server_ctx;
    SSL_CTX *client_ctx;
    int listen_fd;
    int wake[2];
    pthread_t thread;
    int thread_started;
    pthread_mutex_t mu;  /* guards pending and stopping */
    relay *pending;      /* dialled relays waiting to join the loop */
    int stopping;
    relay *relays;       /* owned by the proxy thread */
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* --- addresses ------------------------------------------------------------- */

/* Splits "host:port" / "[v6]:port" into host and port buffers. */
static int split_address(const char *address, char *host, size_t hostsz, char *port, size_t portsz)
{
    const char *colon;
    const char *h = address;
    size_t hl;
    if (address[0] == '[') {
        const char *end = strchr(address, ']');
        if (!end || end[1] != ':')
            return -1;
        h = address + 1;
        hl = (size_t)(end - h);
        colon = end + 1;
    } else {
        colon = strrchr(address, ':');
        if (!colon || strchr(address, ':') != colon)
            return -1;
        hl = (size_t)(colon - address);
    }
    size_t pl = strlen(colon + 1);
    if (hl == 0 || hl >= hostsz || pl == 0 || pl >= portsz)
        return -1;
    for (size_t i = 0; i < pl; i++)
        if (colon[1 + i] < '0' || colon[1 + i] > '9')
            return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    memcpy(port, colon + 1, pl + 1);
    return 0;
}

static int resolve(const char *address, struct addrinfo **res, jj_error *err)
{
    char host[256], port[16];
    if (split_address(address, host, sizeof host, port, sizeof port) < 0)
        return jj_error_set(err, JJ_EINVAL, "dqlite node: address %s is not host:port", address);
    struct addrinfo hints = {0};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int rc = getaddrinfo(host, port, &hints, res);
    if (rc != 0)
        return jj_error_set_lib(err, JJ_EINVAL, rc, "dqlite node: cannot resolve %s: %s", address,
                                gai_strerror(rc));
    return 0;
}

static int listen_tcp(const char *address, int *out, jj_error *err)
{
    struct addrinfo *res;
    int rc = resolve(address, &res, err);
    if (rc < 0)
        return rc;
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        freeaddrinfo(res);
        return jj_error_errno(err, errno, "dqlite node %s: socket", address);
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, res->ai_addr, res->ai_addrlen) < 0) {
        int e = errno;
        freeaddrinfo(res);
        close(fd);
        if (e == EADDRINUSE)
            return jj_error_set_lib(err, JJ_EIO, e,
                                    "dqlite node %s: the address is already in use (another "
                                    "process or dqlite node listens there: stop it, or choose "
                                    "another dqlite-port)",
                                    address);
        if (e == EADDRNOTAVAIL)
            return jj_error_set_lib(err, JJ_EIO, e,
                                    "dqlite node %s: no interface of this host has that address "
                                    "(check the node address)",
                                    address);
        return jj_error_errno(err, e, "dqlite node %s: bind", address);
    }
    freeaddrinfo(res);
    if (listen(fd, 128) < 0) {
        int e = errno;
        close(fd);
        return jj_error_errno(err, e, "dqlite node %s: listen", address);
    }
    *out = fd;
    return 0;
}

static int wait_fd(int fd, short events, long long deadline)
{
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0)
            return -1;
        struct pollfd p = {.fd = fd, .events = events};
        int rc = poll(&p, 1, (int)left);
        if (rc > 0)
            return 0;
        if (rc < 0 && errno != EINTR)
            return -1;
    }
}

/* Connects to address before deadline; the socket is left non-blocking. */
static int dial_tcp(const char *address, long long deadline)
{
    struct addrinfo *res;
    if (resolve(address, &res, NULL) < 0)
        return -1;
    int fd = -1;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (errno != EINPROGRESS || wait_fd(fd, POLLOUT, deadline) < 0 ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr != 0)
            close_fd(&fd);
    }
    freeaddrinfo(res);
    if (fd >= 0) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        /* Dead peers are noticed in seconds, as go-dqlite's setKeepalive. */
        int idle = 3, cnt = 3;
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &idle, sizeof idle);
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
    }
    return fd;
}

/* Connects to the node's abstract unix socket (blocking connect; it is in
 * this process, so it answers at once), then makes it non-blocking. */
static int dial_node(const jj_dqlitenode *n)
{
    struct sockaddr_un sa = {0};
    sa.sun_family = AF_UNIX;
    size_t len = strlen(n->bind); /* "@name": '@' becomes the leading NUL */
    memcpy(sa.sun_path, n->bind, len);
    sa.sun_path[0] = '\0';
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) <
            0 ||
        set_nonblock(fd) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* --- TLS material ---------------------------------------------------------- */

static int crypto_error(jj_error *err, const char *what, const char *address)
{
    unsigned long e = ERR_peek_last_error();
    char buf[256] = "";
    if (e)
        ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    return jj_error_set_lib(err, JJ_ECRYPTO, (long)e, "dqlite node %s: %s%s%s", address, what,
                            buf[0] ? ": " : "", buf);
}

static int load_tls(SSL_CTX *ctx, const jj_dqlitenode_opts *o, int server, jj_error *err)
{
    const char *a = o->address;
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
        !SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS))
        return crypto_error(err, "cannot configure TLS", a);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);

    /* Certificate: the leaf, then any chain. */
    BIO *bio = BIO_new_mem_buf(o->cert_pem, -1);
    X509 *leaf = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    if (!leaf) {
        BIO_free(bio);
        return crypto_error(err, "the certificate is not a PEM certificate (check the server "
                                 "certificate in the agent configuration)", a);
    }
    int ok = SSL_CTX_use_certificate(ctx, leaf);
    X509_free(leaf);
    X509 *extra;
    while (ok && (extra = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
        if (!SSL_CTX_add0_chain_cert(ctx, extra)) {
            X509_free(extra);
            ok = 0;
        }
    BIO_free(bio);
    ERR_clear_error(); /* the end of the PEM text */
    if (!ok)
        return crypto_error(err, "cannot use the certificate", a);

    bio = BIO_new_mem_buf(o->key_pem, -1);
    EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (!key)
        return crypto_error(err, "the private key is not a PEM private key (check the server "
                                 "key in the agent configuration)", a);
    ok = SSL_CTX_use_PrivateKey(ctx, key);
    EVP_PKEY_free(key);
    if (!ok || !SSL_CTX_check_private_key(ctx))
        return crypto_error(err, "the private key does not match the certificate", a);

    /* Trust: the CA only. */
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    bio = BIO_new_mem_buf(o->ca_pem, -1);
    int n_ca = 0;
    X509 *ca;
    while (bio && (ca = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        int added = X509_STORE_add_cert(store, ca);
        if (added && server)
            added = SSL_CTX_add_client_CA(ctx, ca);
        X509_free(ca);
        if (!added) {
            BIO_free(bio);
            return crypto_error(err, "cannot use the CA certificate", a);
        }
        n_ca++;
    }
    BIO_free(bio);
    ERR_clear_error();
    if (n_ca == 0)
        return jj_error_set(err, JJ_ECRYPTO,
                            "dqlite node %s: the CA certificate is not a PEM certificate", a);
    if (server)
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    else
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    return 0;
}

/* --- relays ---------------------------------------------------------------- */

static void relay_free(relay *r)
{
    if (!r)
        return;
    if (r->ssl) {
        if (!r->handshaking && !r->shut && !r->dead)
            SSL_shutdown(r->ssl);
        SSL_free(r->ssl);
    }
    close_fd(&r->tcp);
    close_fd(&r->local);
    OPENSSL_cleanse(r->r, sizeof r->r);
    OPENSSL_cleanse(r->w, sizeof r->w);
    free(r);
}

static relay *relay_new(int tcp, SSL *ssl, int local, int accepted)
{
    relay *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->tcp = tcp;
    r->ssl = ssl;
    r->local = local;
    r->accepted = accepted;
    return r;
}

static int ssl_want(SSL *ssl, int rc, int *want)
{
    int e = SSL_get_error(ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        *want = e;
        return 0;
    }
    ERR_clear_error();
    return e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && rc == 0) ? 1 : -1;
}

/* Moves bytes as far as they go without blocking; returns how many steps
 * made progress (0: nothing to do until poll says so). */
static int relay_pump(jj_dqlitenode *n, relay *r)
{
    int progress = 0;
    if (r->handshaking) {
        int rc = SSL_do_handshake(r->ssl);
        if (rc != 1) {
            if (ssl_want(r->ssl, rc, &r->hwant) != 0)
                r->dead = 1; /* refused: no certificate, another CA, bad TLS */
            return 0;
        }
        r->handshaking = 0;
        progress++;
        if (r->accepted && (r->local = dial_node(n)) < 0) {
            r->dead = 1;
            return 0;
        }
    }
    int step;
    do {
        step = 0;
        if (!r->remote_eof && r->rlen < sizeof r->r) {
            int rc = SSL_read(r->ssl, r->r + r->rlen, (int)(sizeof r->r - r->rlen));
            if (rc > 0) {
                r->rlen += (size_t)rc;
                r->rwant = 0;
                step++;
            } else {
                int s = ssl_want(r->ssl, rc, &r->rwant);
                if (s > 0)
                    r->remote_eof = 1;
                else if (s < 0)
                    r->dead = 1;
            }
        }
        if (r->rlen > 0 && !r->dead) {
            ssize_t w = send(r->local, r->r, r->rlen, MSG_NOSIGNAL);
            if (w > 0) {
                memmove(r->r, r->r + w, r->rlen - (size_t)w);
                r->rlen -= (size_t)w;
                step++;
            } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                r->dead = 1;
            }
        }
        if (!r->local_eof && r->wlen < sizeof r->w && !r->dead) {
            ssize_t got = read(r->local, r->w + r->wlen, sizeof r->w - r->wlen);
            if (got > 0) {
                r->wlen += (size_t)got;
                step++;
            } else if (got == 0) {
                r->local_eof = 1;
            } else if (errno != EAGAIN && errno != EINTR) {
                r->dead = 1;
            }
        }
        if (r->wlen > 0 && !r->dead) {
            int rc = SSL_write(r->ssl, r->w, (int)r->wlen);
            if (rc > 0) {
                memmove(r->w, r->w + rc, r->wlen - (size_t)rc);
                r->wlen -= (size_t)rc;
                r->wwant = 0;
                step++;
            } else if (ssl_want(r->ssl, rc, &r->wwant) != 0) {
                r->dead = 1;
            }
        }
        progress += step;
    } while (step && !r->dead);
    /* One side closed and what it sent is delivered: close both, so the
     * other side sees EOF (dqlite connections are not half-closed). */
    if ((r->remote_eof && r->rlen == 0) || r->dead)
        r->dead = 1;
    else if (r->local_eof && r->wlen == 0) {
        SSL_shutdown(r->ssl);
        r->shut = 1;
        r->dead = 1;
    }
    return progress;
}

static short tcp_events(const relay *r)
{
    if (r->handshaking)
        return r->hwant == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN;
    short ev = 0;
    if ((!r->remote_eof && r->rlen < sizeof r->r && r->rwant != SSL_ERROR_WANT_WRITE) ||
        r->wwant == SSL_ERROR_WANT_READ)
        ev |= POLLIN;
    if (r->rwant == SSL_ERROR_WANT_WRITE || (r->wlen > 0 && r->wwant == SSL_ERROR_WANT_WRITE))
        ev |= POLLOUT;
    return ev;
}

static short local_events(const relay *r)
{
    short ev = 0;
    if (!r->local_eof && r->wlen < sizeof r->w)
        ev |= POLLIN;
    if (r->rlen > 0)
        ev |= POLLOUT;
    return ev;
}

static void accept_clients(jj_dqlitenode *n)
{
    for (;;) {
        int fd = accept4(n->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0)
            return; /* EAGAIN, or out of fds: try again on the next wake */
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        SSL *ssl = SSL_new(n->server_ctx);
        relay *r = ssl ? relay_new(fd, ssl, -1, 1) : NULL;
        if (!r || !SSL_set_fd(ssl, fd)) {
            if (r)
                relay_free(r);
            else {
                SSL_free(ssl);
                close(fd);
            }
            ERR_clear_error();
            continue;
        }
        SSL_set_accept_state(ssl);
        r->handshaking = 1;
        r->hwant = SSL_ERROR_WANT_READ;
        r->deadline_ms = now_ms() + ACCEPT_HANDSHAKE_MS;
        r->next = n->relays;
        n->relays = r;
    }
}

static void *proxy_main(void *arg)
{
    jj_dqlitenode *n = arg;
    struct pollfd *pfd = NULL;
    relay **owner = NULL; /* owner[i]: the relay of pfd[i], NULL for wake/listener */
    size_t cap = 0;
    for (;;) {
        pthread_mutex_lock(&n->mu);
        int stopping = n->stopping;
        while (n->pending) {
            relay *r = n->pending;
            n->pending = r->next;
            r->next = n->relays;
            n->relays = r;
        }
        pthread_mutex_unlock(&n->mu);
        if (stopping)
            break;

        size_t want = 2;
        for (relay *r = n->relays; r; r = r->next)
            want += 2;
        if (want > cap) {
            struct pollfd *np = realloc(pfd, want * sizeof *np);
            if (np)
                pfd = np;
            relay **no = np ? realloc(owner, want * sizeof *no) : NULL;
            if (!np || !no) {
                /* Out of memory: wait and retry rather than spin. */
                poll(NULL, 0, 100);
                continue;
            }
            owner = no;
            cap = want;
        }
        size_t k = 0;
        pfd[k] = (struct pollfd){.fd = n->wake[0], .events = POLLIN};
        owner[k++] = NULL;
        pfd[k] = (struct pollfd){.fd = n->listen_fd, .events = POLLIN};
        owner[k++] = NULL;
        long long now = now_ms(), next_deadline = now + 1000;
        for (relay *r = n->relays; r; r = r->next) {
            pfd[k] = (struct pollfd){.fd = r->tcp, .events = tcp_events(r)};
            owner[k++] = r;
            if (r->local >= 0) {
                pfd[k] = (struct pollfd){.fd = r->local, .events = local_events(r)};
                owner[k++] = r;
            }
            if (r->handshaking && r->deadline_ms && r->deadline_ms < next_deadline)
                next_deadline = r->deadline_ms;
        }
        int timeout = (int)(next_deadline - now);
        int rc = poll(pfd, k, timeout < 0 ? 0 : timeout);
        if (rc < 0 && errno != EINTR)
            continue;
        if (rc > 0) {
            if (pfd[0].revents) {
                char buf[64];
                while (read(n->wake[0], buf, sizeof buf) > 0) {
                }
            }
            for (size_t i = 2; i < k; i++) {
                relay *r = owner[i];
                if (!pfd[i].revents || r->dead)
                    continue;
                int moved = relay_pump(n, r);
                if (!moved && (pfd[i].revents & (POLLERR | POLLHUP | POLLNVAL)))
                    r->dead = 1;
            }
            if (pfd[1].revents & POLLIN)
                accept_clients(n);
        }
        now = now_ms();
        for (relay **pp = &n->relays; *pp;) {
            relay *r = *pp;
            if (r->handshaking && r->deadline_ms && r->deadline_ms <= now)
                r->dead = 1;
            if (r->dead) {
                *pp = r->next;
                relay_free(r);
            } else {
                pp = &r->next;
            }
        }
    }
    while (n->relays) {
        relay *r = n->relays;
        n->relays = r->next;
        relay_free(r);
    }
    free(pfd);
    free(owner);
    return NULL;
}

static void wake_proxy(jj_dqlitenode *n)
{
    ssize_t w = write(n->wake[1], "x", 1);
    (void)w; /* a full pipe already wakes the loop */
}

/* libdqlite's connect function: TLS to the peer, verified against the CA
 * and the name juju-dqlite; libdqlite gets one end of a socketpair. Runs on
 * a libdqlite thread. */
static int connect_peer(void *arg, const char *address, int *fd)
{
    jj_dqlitenode *n = arg;
    long long deadline = now_ms() + DIAL_TIMEOUT_MS;
    int tcp = dial_tcp(address, deadline);
    if (tcp < 0)
        return RAFT_NOCONNECTION_RC;
    SSL *ssl = SSL_new(n->client_ctx);
    if (!ssl || !SSL_set_fd(ssl, tcp) || !SSL_set1_host(ssl, JJ_DQLITENODE_SERVER_NAME) ||
        !SSL_set_tlsext_host_name(ssl, JJ_DQLITENODE_SERVER_NAME))
        goto fail;
    SSL_set_connect_state(ssl);
    /* A peer that hangs up mid-handshake must not SIGPIPE the process (a
     * program that does not ignore it): blocked on this thread, any
     * SIGPIPE the handshake raised is taken back before unblocking. */
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    int shaken = 0;
    for (;;) {
        int rc = SSL_do_handshake(ssl);
        if (rc == 1) {
            shaken = 1;
            break;
        }
        int want = 0;
        if (ssl_want(ssl, rc, &want) != 0 ||
            wait_fd(tcp, want == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN, deadline) < 0)
            break;
    }
    if (!sigismember(&old, SIGPIPE)) {
        struct timespec zero = {0, 0};
        sigset_t pending;
        sigpending(&pending);
        if (sigismember(&pending, SIGPIPE))
            sigtimedwait(&pipe_set, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!shaken)
        goto fail;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        goto fail;
    if (set_nonblock(sv[0]) < 0) {
        close(sv[0]);
        close(sv[1]);
        goto fail;
    }
    relay *r = relay_new(tcp, ssl, sv[0], 0);
    if (!r) {
        close(sv[0]);
        close(sv[1]);
        goto fail;
    }
    pthread_mutex_lock(&n->mu);
    int stopping = n->stopping;
    if (!stopping) {
        r->next = n->pending;
        n->pending = r;
    }
    pthread_mutex_unlock(&n->mu);
    if (stopping) {
        relay_free(r);
        close(sv[1]);
        return RAFT_NOCONNECTION_RC;
    }
    wake_proxy(n);
    *fd = sv[1];
    return 0;
fail:
    ERR_clear_error();
    SSL_free(ssl);
    close(tcp);
    return RAFT_NOCONNECTION_RC;
}

/* --- the node -------------------------------------------------------------- */

static int prepare_dir(const char *dir, jj_error *err)
{
    jj_error e2;
    jj_error_clear(&e2);
    if (jj_fs_mkdir_p(dir, 0700, &e2) < 0)
        return jj_error_set_lib(err, e2.code, e2.lib_code,
                                "dqlite node: cannot create the data dir %s (%s): create it, "
                                "writable by this agent, or choose another data-dir",
                                dir, e2.message);
    /* Probe: root ignores mode bits, a read-only mount does not. */
    char probe[4096];
    if (snprintf(probe, sizeof probe, "%s/.juju-write-probe-%ld", dir, (long)getpid()) >=
        (int)sizeof probe)
        return jj_error_set(err, JJ_EINVAL, "dqlite node: data dir path too long");
    int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        return jj_error_set_lib(err, jj_error_from_errno(e), e,
                                "dqlite node: the data dir %s is not writable (%s): make it "
                                "writable by this agent, or choose another data-dir",
                                dir, strerror(e));
    }
    close(fd);
    unlink(probe);
    return 0;
}

static char *dup_str(const char *s)
{
    size_t l = strlen(s) + 1;
    char *d = malloc(l);
    if (d)
        memcpy(d, s, l);
    return d;
}

static void release(jj_dqlitenode *n)
{
    if (n->node) {
        dqlite_node_destroy(n->node);
        n->node = NULL;
    }
    if (n->thread_started) {
        pthread_mutex_lock(&n->mu);
        n->stopping = 1;
        pthread_mutex_unlock(&n->mu);
        wake_proxy(n);
        pthread_join(n->thread, NULL);
        n->thread_started = 0;
    }
    while (n->pending) {
        relay *r = n->pending;
        n->pending = r->next;
        relay_free(r);
    }
    close_fd(&n->listen_fd);
    close_fd(&n->wake[0]);
    close_fd(&n->wake[1]);
    SSL_CTX_free(n->server_ctx);
    SSL_CTX_free(n->client_ctx);
    n->server_ctx = n->client_ctx = NULL;
    n->running = 0;
}

int jj_dqlitenode_start(const jj_dqlitenode_opts *o, jj_dqlitenode **out, jj_error *err)
{
    *out = NULL;
    if (!o || o->id == 0 || !o->address || !o->dir || !o->dir[0])
        return jj_error_set(err, JJ_EINVAL, "dqlite node: id (> 0), address and dir are required");
    if (!o->plain && (!o->ca_pem || !o->cert_pem || !o->key_pem))
        return jj_error_set(err, JJ_EINVAL,
                            "dqlite node %s: TLS needs the CA certificate, the node's "
                            "certificate and its key",
                            o->address);
    char host[256], port[16];
    if (split_address(o->address, host, sizeof host, port, sizeof port) < 0)
        return jj_error_set(err, JJ_EINVAL, "dqlite node: address %s is not host:port",
                            o->address);
    int rc = prepare_dir(o->dir, err);
    if (rc < 0)
        return rc;

    jj_dqlitenode *n = calloc(1, sizeof *n);
    if (!n)
        return jj_error_set(err, JJ_ENOMEM, "dqlite node: out of memory");
    n->listen_fd = n->wake[0] = n->wake[1] = -1;
    n->id = o->id;
    n->plain = o->plain;
    n->address = dup_str(o->address);
    n->dir = dup_str(o->dir);
    pthread_mutex_init(&n->mu, NULL);
    if (!n->address || !n->dir) {
        rc = jj_error_set(err, JJ_ENOMEM, "dqlite node: out of memory");
        goto fail;
    }

    if (!o->plain) {
        /* The node's socket: unique per process and node. */
        unsigned char rnd[6] = {0};
        int ufd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
        if (ufd >= 0) {
            ssize_t got = read(ufd, rnd, sizeof rnd);
            (void)got;
            close(ufd);
        }
        snprintf(n->bind, sizeof n->bind, "@juju-dqlite-%ld-%llu-%02x%02x%02x%02x%02x%02x",
                 (long)getpid(), (unsigned long long)o->id, rnd[0], rnd[1], rnd[2], rnd[3],
                 rnd[4], rnd[5]);
        n->server_ctx = SSL_CTX_new(TLS_server_method());
        n->client_ctx = SSL_CTX_new(TLS_client_method());
        if (!n->server_ctx || !n->client_ctx) {
            rc = crypto_error(err, "cannot create a TLS context", o->address);
            goto fail;
        }
        if ((rc = load_tls(n->server_ctx, o, 1, err)) < 0 ||
            (rc = load_tls(n->client_ctx, o, 0, err)) < 0)
            goto fail;
        if ((rc = listen_tcp(o->address, &n->listen_fd, err)) < 0)
            goto fail;
        if (pipe2(n->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
            rc = jj_error_errno(err, errno, "dqlite node %s: pipe", o->address);
            goto fail;
        }
    } else {
        snprintf(n->bind, sizeof n->bind, "%s", o->address);
    }

    int drc = dqlite_node_create(o->id, o->address, o->dir, &n->node);
    if (drc != 0) {
        rc = jj_error_set_lib(err, JJ_EIO, drc, "dqlite node %s: cannot create the node in %s: %s",
                              o->address, o->dir,
                              n->node ? dqlite_node_errmsg(n->node) : "out of memory");
        goto fail;
    }
    if ((drc = dqlite_node_set_bind_address(n->node, n->bind)) != 0) {
        rc = jj_error_set_lib(err, JJ_EIO, drc, "dqlite node %s: cannot bind %s: %s%s", o->address,
                              o->plain ? o->address : "its local socket",
                              dqlite_node_errmsg(n->node),
                              o->plain ? " (is the port in use? stop that process or choose "
                                         "another port)"
                                       : "");
        goto fail;
    }
    if (!o->plain && (drc = dqlite_node_set_connect_func(n->node, connect_peer, n)) != 0) {
        rc = jj_error_set_lib(err, JJ_EIO, drc, "dqlite node %s: connect function: %s", o->address,
                              dqlite_node_errmsg(n->node));
        goto fail;
    }
    if (!o->plain) {
        /* The proxy thread takes no signals: the program's handlers run on
         * its own threads, and SIGPIPE from a TLS write becomes EPIPE. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        drc = pthread_create(&n->thread, NULL, proxy_main, n);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (drc != 0) {
            rc = jj_error_errno(err, drc, "dqlite node %s: cannot start the TLS proxy", o->address);
            goto fail;
        }
        n->thread_started = 1;
    }
    if ((drc = dqlite_node_start(n->node)) != 0) {
        rc = jj_error_set_lib(err, JJ_EIO, drc, "dqlite node %s: cannot start (data dir %s): %s",
                              o->address, o->dir, dqlite_node_errmsg(n->node));
        goto fail;
    }
    n->running = 1;
    *out = n;
    return 0;
fail:
    jj_dqlitenode_free(n);
    return rc;
}

int jj_dqlitenode_stop(jj_dqlitenode *n, jj_error *err)
{
    if (!n || !n->running) {
        if (n)
            release(n);
        return 0;
    }
    int rc = 0;
    int drc = dqlite_node_stop(n->node);
    if (drc != 0)
        rc = jj_error_set_lib(err, JJ_EIO, drc, "dqlite node %s: stop: %s", n->address,
                              dqlite_node_errmsg(n->node));
    n->running = 0;
    release(n);
    return rc;
}

void jj_dqlitenode_free(jj_dqlitenode *n)
{
    if (!n)
        return;
    jj_dqlitenode_stop(n, NULL);
    pthread_mutex_destroy(&n->mu);
    free(n->address);
    free(n->dir);
    free(n);
}

uint64_t jj_dqlitenode_id(const jj_dqlitenode *n) { return n->id; }
const char *jj_dqlitenode_address(const jj_dqlitenode *n) { return n->address; }
const char *jj_dqlitenode_dir(const jj_dqlitenode *n) { return n->dir; }
int jj_dqlitenode_running(const jj_dqlitenode *n) { return n->running; }
