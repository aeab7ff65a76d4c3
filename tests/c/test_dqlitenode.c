/* test_dqlitenode.c: core/dqlitenode, a libdqlite node behind mutual TLS:
 * option checks, clear errors (bad PEM, key mismatch, port in use, dir not
 * writable), and the TLS listener's verdict on clients with this CA's
 * certificate, another CA's and none (OpenSSL's client, handshake only). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "check.h"
#include "crypto.h"
#include "dqlitenode.h"
#include "fs.h"
#include "x509.h"

static char dir[64];

typedef struct pki {
    char *ca, *ca_key, *cert, *key;
} pki;

static void pki_make(pki *p, const char *name)
{
    jj_error err;
    jj_cert_opts o;
    jj_cert_opts_init(&o);
    static const char *const names[] = {JJ_DQLITENODE_SERVER_NAME};
    o.hostnames = names;
    o.n_hostnames = 1;
    memset(p, 0, sizeof *p);
    CHECK_INT(jj_new_ca(name, NULL, &p->ca, &p->ca_key, &err), 0);
    CHECK_INT(jj_new_server_cert(p->ca, strlen(p->ca), p->ca_key, strlen(p->ca_key), &o, &p->cert,
                                 &p->key, &err),
              0);
}

static void pki_free(pki *p)
{
    free(p->ca);
    free(p->cert);
    jj_secret_free(p->ca_key);
    jj_secret_free(p->key);
}

/* A free port on 127.0.0.250 (asked of the kernel). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.250", &sa.sin_addr);
    socklen_t len = sizeof sa;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

static jj_dqlitenode_opts opts_for(const pki *p, const char *address, const char *sub)
{
    static char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, sub);
    jj_dqlitenode_opts o = {.id = 1, .address = address, .dir = path};
    if (p) {
        o.ca_pem = p->ca;
        o.cert_pem = p->cert;
        o.key_pem = p->key;
    }
    return o;
}

static int use_pem(SSL_CTX *ctx, const char *cert, const char *key)
{
    BIO *b = BIO_new_mem_buf(cert, -1);
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    b = BIO_new_mem_buf(key, -1);
    EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    BIO_free(b);
    int ok = x && k && SSL_CTX_use_certificate(ctx, x) && SSL_CTX_use_PrivateKey(ctx, k);
    X509_free(x);
    EVP_PKEY_free(k);
    return ok;
}

/* 1 when a TLS client (trusting trust_ca, presenting cert/key when given)
 * completes a handshake with the node and the node answers; 0 when refused.
 * With TLS 1.3 a refused client certificate shows on the first read. */
static int tls_client_accepted(int port, const char *trust_ca, const char *cert, const char *key)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    BIO *b = BIO_new_mem_buf(trust_ca, -1);
    X509 *ca = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), ca);
    X509_free(ca);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (cert)
        CHECK(use_pem(ctx, cert, key));
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    inet_pton(AF_INET, "127.0.0.250", &sa.sin_addr);
    int accepted = 0;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
        SSL *ssl = SSL_new(ctx);
        SSL_set_fd(ssl, fd);
        SSL_set1_host(ssl, JJ_DQLITENODE_SERVER_NAME);
        if (SSL_connect(ssl) == 1) {
            /* dqlite's handshake: the protocol version (1) as uint64 LE,
             * then a LEADER request (8-byte header, 8 bytes of body). */
            static const unsigned char hello[] = {1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0,
                                                  0, 0, 0, 0, 0, 0, 0, 0, 0};
            unsigned char reply[8];
            if (SSL_write(ssl, hello, sizeof hello) == (int)sizeof hello &&
                SSL_read(ssl, reply, sizeof reply) > 0)
                accepted = 1;
        }
        SSL_free(ssl);
    }
    close(fd);
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return accepted;
}

static void test_options_and_errors(void)
{
    pki a, other;
    pki_make(&a, "dqlitenode-test");
    pki_make(&other, "another");
    jj_dqlitenode *n = NULL;
    jj_error err;
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.250:%d", free_port());

    jj_dqlitenode_opts o = opts_for(NULL, addr, "no-tls");
    CHECK_INT(jj_dqlitenode_start(&o, &n, &err), JJ_EINVAL);
    CHECK(n == NULL);
    CHECK(strstr(err.message, "TLS needs") != NULL);

    o = opts_for(&a, "no-port", "bad-addr");
    CHECK_INT(jj_dqlitenode_start(&o, &n, &err), JJ_EINVAL);
    CHECK(strstr(err.message, "no-port") != NULL);

    o = opts_for(&a, addr, "bad-key");
    o.key_pem = "not a key";
    CHECK_INT(jj_dqlitenode_start(&o, &n, &err), JJ_ECRYPTO);
    CHECK(strstr(err.message, "private key") != NULL);
    CHECK(strstr(err.message, addr) != NULL);

    o = opts_for(&a, addr, "mismatch");
    o.key_pem = other.key;
    CHECK_INT(jj_dqlitenode_start(&o, &n, &err), JJ_ECRYPTO);
    CHECK(strstr(err.message, "does not match") != NULL);

    o = opts_for(&a, addr, "bad-ca");
    o.ca_pem = "garbage";
    CHECK_INT(jj_dqlitenode_start(&o, &n, &err), JJ_ECRYPTO);
    CHECK(strstr(err.message, "CA certificate") != NULL);

    o = opts_for(&a, addr, "x");
    o.dir = "/sys/kernel"; /* refuses new files even to root */
    CHECK_INT(jj_dqlitenode_start(&o, &n, &err), JJ_EACCES);
    CHECK(strstr(err.message, "/sys/kernel") != NULL);
    CHECK(strstr(err.message, "not writable") != NULL);

    /* The port taken by someone else. */
    int busy = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.250", &sa.sin_addr);
    socklen_t len = sizeof sa;
    CHECK_INT(bind(busy, (struct sockaddr *)&sa, sizeof sa), 0);
    CHECK_INT(listen(busy, 1), 0);
    getsockname(busy, (struct sockaddr *)&sa, &len);
    char busy_addr[64];
    snprintf(busy_addr, sizeof busy_addr, "127.0.0.250:%d", ntohs(sa.sin_port));
    o = opts_for(&a, busy_addr, "busy");
    CHECK_INT(jj_dqlitenode_start(&o, &n, &err), JJ_EIO);
    CHECK_INT(err.lib_code, EADDRINUSE);
    CHECK(strstr(err.message, busy_addr) != NULL);
    CHECK(strstr(err.message, "already in use") != NULL);
    close(busy);
    pki_free(&a);
    pki_free(&other);
}

static void test_tls_verdicts(void)
{
    pki a, other;
    pki_make(&a, "dqlitenode-test");
    pki_make(&other, "another");
    int port = free_port();
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.250:%d", port);
    jj_dqlitenode *n = NULL;
    jj_error err;
    jj_dqlitenode_opts o = opts_for(&a, addr, "tls");
    CHECK_INT(jj_dqlitenode_start(&o, &n, &err), 0);
    if (!n) {
        fprintf(stderr, "start: %s\n", err.message);
        pki_free(&a);
        pki_free(&other);
        return;
    }
    CHECK(jj_dqlitenode_running(n));
    CHECK_INT(jj_dqlitenode_id(n), 1);
    CHECK_STR(jj_dqlitenode_address(n), addr);
    CHECK_INT(tls_client_accepted(port, a.ca, a.cert, a.key), 1);
    CHECK_INT(tls_client_accepted(port, a.ca, NULL, NULL), 0);
    CHECK_INT(tls_client_accepted(port, a.ca, other.cert, other.key), 0);
    /* Still serving after the refusals. */
    CHECK_INT(tls_client_accepted(port, a.ca, a.cert, a.key), 1);
    CHECK_INT(jj_dqlitenode_stop(n, &err), 0);
    CHECK(!jj_dqlitenode_running(n));
    CHECK_INT(jj_dqlitenode_stop(n, &err), 0); /* idempotent */
    CHECK_INT(tls_client_accepted(port, a.ca, a.cert, a.key), 0);
    jj_dqlitenode_free(n);

    /* Restart on the same dir and port. */
    CHECK_INT(jj_dqlitenode_start(&o, &n, &err), 0);
    CHECK_INT(tls_client_accepted(port, a.ca, a.cert, a.key), 1);
    jj_dqlitenode_free(n);
    jj_dqlitenode_free(NULL);
    pki_free(&a);
    pki_free(&other);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/juju-test-dqlitenode-XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    RUN(test_options_and_errors);
    RUN(test_tls_verdicts);
    jj_error err;
    jj_fs_remove_tree(dir, &err);
    return check_summary();
}
