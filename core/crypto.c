/* crypto.c: the engine's cryptography on OpenSSL 3 (see crypto.h).
 *
 * Sections: OpenSSL error capture, random, encodings, digests, passwords,
 * UUIDs, X.509 (CA, server certificate, inspection), SSH wire format
 * helpers, SSH keys. Every buffer that held key material or a password
 * is wiped with OPENSSL_cleanse before it is freed or goes out of scope.
 */
#include "crypto.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* ---- OpenSSL errors ---- */

/* Moves the OpenSSL error queue into err: the earliest queued error (the
 * root cause) becomes lib_code and its reason follows `what`. The queue is
 * left empty so a later failure is not blamed on this one. */
static int ossl_fail(jj_error *err, int code, const char *what)
{
    unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (e == 0)
        return jj_error_set(err, code, "%s", what);
    const char *reason = ERR_reason_error_string(e);
    if (reason)
        return jj_error_set_lib(err, code, (long)e, "%s: %s", what, reason);
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    return jj_error_set_lib(err, code, (long)e, "%s: %s", what, buf);
}

void jj_secret_free(char *secret)
{
    if (!secret)
        return;
    OPENSSL_cleanse(secret, strlen(secret));
    free(secret);
}

static char *dup_range(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    memcpy(out, s, n);
    out[n] = '\0';
    return out;
}

/* ---- random ---- */

int jj_random_bytes(void *buf, size_t n, jj_error *err)
{
    unsigned char *p = buf;
    while (n > 0) {
        int chunk = n > (size_t)INT_MAX ? INT_MAX : (int)n;
        if (RAND_bytes(p, chunk) != 1)
            return ossl_fail(err, JJ_ECRYPTO, "random number generator failed");
        p += chunk;
        n -= (size_t)chunk;
    }
    return 0;
}

/* ---- encodings ---- */

static const char hex_digits[] = "0123456789abcdef";
static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void jj_hex_encode(const void *in, size_t n, char *out)
{
    const unsigned char *p = in;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex_digits[p[i] >> 4];
        out[2 * i + 1] = hex_digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static inline int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int jj_hex_decode(const char *in, size_t len, unsigned char *out, size_t *out_len, jj_error *err)
{
    if (len % 2)
        return jj_error_set(err, JJ_EINVAL, "invalid hex: odd length %zu", len);
    for (size_t i = 0; i < len; i += 2) {
        int hi = hex_value((unsigned char)in[i]), lo = hex_value((unsigned char)in[i + 1]);
        if (hi < 0 || lo < 0)
            return jj_error_set(err, JJ_EINVAL, "invalid hex: bad character at offset %zu",
                                hi < 0 ? i : i + 1);
        out[i / 2] = (unsigned char)(hi << 4 | lo);
    }
    *out_len = len / 2;
    return 0;
}

size_t jj_base64_encoded_size(size_t n)
{
    return (n + 2) / 3 * 4 + 1;
}

/* Encodes without the NUL; returns the number of characters written. */
static size_t base64_encode_raw(const unsigned char *p, size_t n, char *out, bool pad)
{
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = b64_alphabet[v >> 18 & 63];
        out[o++] = b64_alphabet[v >> 12 & 63];
        out[o++] = b64_alphabet[v >> 6 & 63];
        out[o++] = b64_alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        out[o++] = b64_alphabet[v >> 18 & 63];
        out[o++] = b64_alphabet[v >> 12 & 63];
        if (pad) {
            out[o++] = '=';
            out[o++] = '=';
        }
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        out[o++] = b64_alphabet[v >> 18 & 63];
        out[o++] = b64_alphabet[v >> 12 & 63];
        out[o++] = b64_alphabet[v >> 6 & 63];
        if (pad)
            out[o++] = '=';
    }
    return o;
}

void jj_base64_encode(const void *in, size_t n, char *out)
{
    out[base64_encode_raw(in, n, out, true)] = '\0';
}

size_t jj_base64_decoded_max(size_t len)
{
    return len / 4 * 3 + 3;
}

static inline int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

static inline bool is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

int jj_base64_decode(const char *in, size_t len, unsigned char *out, size_t *out_len,
                     jj_error *err)
{
    uint32_t acc = 0;
    size_t chars = 0, pads = 0, o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (is_space(c))
            continue;
        if (c == '=') {
            pads++;
            continue;
        }
        int v = b64_value(c);
        if (v < 0)
            return jj_error_set(err, JJ_EINVAL, "invalid base64: bad character at offset %zu", i);
        if (pads)
            return jj_error_set(err, JJ_EINVAL, "invalid base64: data after padding");
        acc = acc << 6 | (uint32_t)v;
        if (++chars % 4 == 0) {
            out[o++] = (unsigned char)(acc >> 16);
            out[o++] = (unsigned char)(acc >> 8);
            out[o++] = (unsigned char)acc;
            acc = 0;
        }
    }
    size_t rest = chars % 4;
    if (rest == 1)
        return jj_error_set(err, JJ_EINVAL, "invalid base64: truncated input");
    if (pads && (rest == 0 || pads > 2 || (rest + pads) % 4 != 0))
        return jj_error_set(err, JJ_EINVAL, "invalid base64: bad padding");
    if (rest == 2) {
        if (acc & 0xf)
            return jj_error_set(err, JJ_EINVAL, "invalid base64: non-zero trailing bits");
        out[o++] = (unsigned char)(acc >> 4);
    } else if (rest == 3) {
        if (acc & 0x3)
            return jj_error_set(err, JJ_EINVAL, "invalid base64: non-zero trailing bits");
        out[o++] = (unsigned char)(acc >> 10);
        out[o++] = (unsigned char)(acc >> 2);
    }
    *out_len = o;
    return 0;
}

/* ---- digests ---- */

static const EVP_MD *digest_md(jj_digest_alg alg)
{
    return alg == JJ_DIGEST_SHA512 ? EVP_sha512() : EVP_sha256();
}

size_t jj_digest_size(jj_digest_alg alg)
{
    return alg == JJ_DIGEST_SHA512 ? 64 : 32;
}

int jj_digest(jj_digest_alg alg, const void *data, size_t n, unsigned char *md, jj_error *err)
{
    if (EVP_Digest(data, n, md, NULL, digest_md(alg), NULL) != 1)
        return ossl_fail(err, JJ_ECRYPTO, "digest failed");
    return 0;
}

struct jj_hasher {
    EVP_MD_CTX *ctx;
    jj_digest_alg alg;
};

int jj_hasher_new(jj_digest_alg alg, jj_hasher **out, jj_error *err)
{
    jj_hasher *h = calloc(1, sizeof *h);
    if (!h)
        return jj_error_set(err, JJ_ENOMEM, "out of memory");
    h->alg = alg;
    h->ctx = EVP_MD_CTX_new();
    if (!h->ctx || EVP_DigestInit_ex(h->ctx, digest_md(alg), NULL) != 1) {
        jj_hasher_free(h);
        return ossl_fail(err, JJ_ECRYPTO, "cannot start digest");
    }
    *out = h;
    return 0;
}

int jj_hasher_update(jj_hasher *h, const void *data, size_t n, jj_error *err)
{
    if (EVP_DigestUpdate(h->ctx, data, n) != 1)
        return ossl_fail(err, JJ_ECRYPTO, "digest update failed");
    return 0;
}

int jj_hasher_final(const jj_hasher *h, unsigned char *md, jj_error *err)
{
    /* Finish a copy so the stream can go on after a digest is read. */
    EVP_MD_CTX *copy = EVP_MD_CTX_new();
    int ok = copy && EVP_MD_CTX_copy_ex(copy, h->ctx) == 1 &&
             EVP_DigestFinal_ex(copy, md, NULL) == 1;
    EVP_MD_CTX_free(copy);
    return ok ? 0 : ossl_fail(err, JJ_ECRYPTO, "digest failed");
}

size_t jj_hasher_size(const jj_hasher *h)
{
    return jj_digest_size(h->alg);
}

void jj_hasher_free(jj_hasher *h)
{
    if (!h)
        return;
    EVP_MD_CTX_free(h->ctx);
    free(h);
}

#define FILE_CHUNK (64 * 1024)

int jj_sha256_file(const char *path, unsigned char md[32], uint64_t *size, jj_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return jj_error_errno(err, errno, "cannot open %s", path);
    unsigned char *buf = malloc(FILE_CHUNK);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int rc = 0;
    uint64_t total = 0;
    if (!buf || !ctx) {
        rc = jj_error_set(err, JJ_ENOMEM, "out of memory");
        goto out;
    }
    if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        rc = ossl_fail(err, JJ_ECRYPTO, "cannot start digest");
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, buf, FILE_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = jj_error_errno(err, errno, "cannot read %s", path);
            goto out;
        }
        if (n == 0)
            break;
        if (EVP_DigestUpdate(ctx, buf, (size_t)n) != 1) {
            rc = ossl_fail(err, JJ_ECRYPTO, "digest update failed");
            goto out;
        }
        total += (uint64_t)n;
    }
    if (EVP_DigestFinal_ex(ctx, md, NULL) != 1) {
        rc = ossl_fail(err, JJ_ECRYPTO, "digest failed");
        goto out;
    }
    *size = total;
out:
    EVP_MD_CTX_free(ctx);
    free(buf);
    close(fd);
    return rc;
}

/* ---- passwords ---- */

const unsigned char jj_compat_salt[4] = {0x75, 0x82, 0x81, 0xca};

int jj_pbkdf2_sha512(const void *password, size_t password_len, const void *salt,
                     size_t salt_len, unsigned iterations, unsigned char *out, size_t keylen,
                     jj_error *err)
{
    if (iterations < 1 || iterations > INT_MAX || keylen < 1 || keylen > INT_MAX ||
        password_len > INT_MAX || salt_len > INT_MAX)
        return jj_error_set(err, JJ_EINVAL, "pbkdf2: argument out of range");
    if (PKCS5_PBKDF2_HMAC(password, (int)password_len, salt, (int)salt_len, (int)iterations,
                          EVP_sha512(), (int)keylen, out) != 1)
        return ossl_fail(err, JJ_ECRYPTO, "pbkdf2 failed");
    return 0;
}

int jj_user_password_hash(const void *password, size_t password_len, const void *salt,
                          size_t salt_len, char out[JJ_PASSWORD_SIZE], jj_error *err)
{
    unsigned char key[JJ_PASSWORD_HASH_BYTES];
    int rc = jj_pbkdf2_sha512(password, password_len, salt, salt_len,
                              JJ_PASSWORD_HASH_ITERATIONS, key, sizeof key, err);
    if (rc == 0)
        jj_base64_encode(key, sizeof key, out);
    OPENSSL_cleanse(key, sizeof key);
    return rc;
}

int jj_agent_password_hash(const void *password, size_t password_len,
                           char out[JJ_PASSWORD_SIZE], jj_error *err)
{
    unsigned char md[64];
    int rc = jj_digest(JJ_DIGEST_SHA512, password, password_len, md, err);
    if (rc == 0)
        jj_base64_encode(md, JJ_PASSWORD_HASH_BYTES, out);
    OPENSSL_cleanse(md, sizeof md);
    return rc;
}

int jj_random_password(char out[JJ_PASSWORD_SIZE], jj_error *err)
{
    unsigned char raw[JJ_PASSWORD_HASH_BYTES];
    int rc = jj_random_bytes(raw, sizeof raw, err);
    if (rc == 0)
        jj_base64_encode(raw, sizeof raw, out);
    OPENSSL_cleanse(raw, sizeof raw);
    return rc;
}

int jj_admin_secret(char out[JJ_ADMIN_SECRET_SIZE], jj_error *err)
{
    unsigned char raw[16];
    int rc = jj_random_bytes(raw, sizeof raw, err);
    if (rc == 0)
        jj_hex_encode(raw, sizeof raw, out);
    OPENSSL_cleanse(raw, sizeof raw);
    return rc;
}

/* ---- UUIDs ---- */

int jj_uuid4(char out[JJ_UUID_SIZE], jj_error *err)
{
    unsigned char b[16];
    int rc = jj_random_bytes(b, sizeof b, err);
    if (rc)
        return rc;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* variant 10xx (RFC 4122) */
    char hex[33];
    jj_hex_encode(b, sizeof b, hex);
    size_t o = 0;
    for (int i = 0; i < 32; i++) {
        if (i == 8 || i == 12 || i == 16 || i == 20)
            out[o++] = '-';
        out[o++] = hex[i];
    }
    out[o] = '\0';
    return 0;
}

bool jj_is_uuid(const char *s, size_t len)
{
    if (len != 36)
        return false;
    for (size_t i = 0; i < len; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : hex_value((unsigned char)s[i]) < 0)
            return false;
    }
    return true;
}

/* ---- X.509 ---- */

int jj_key_type_from_name(const char *name, jj_key_type *out, jj_error *err)
{
    static const struct {
        const char *name;
        jj_key_type type;
    } names[] = {
        {"ecdsa-p256", JJ_KEY_ECDSA_P256},
        {"rsa2048", JJ_KEY_RSA2048},
        {"rsa3072", JJ_KEY_RSA3072},
        {"ed25519", JJ_KEY_ED25519},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(name, names[i].name) == 0) {
            *out = names[i].type;
            return 0;
        }
    }
    return jj_error_set(err, JJ_EINVAL,
                        "unknown key type \"%s\" (want ecdsa-p256, rsa2048, rsa3072 or ed25519)",
                        name);
}

void jj_cert_opts_init(jj_cert_opts *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->key = JJ_KEY_ECDSA_P256;
    opts->years = 10;
}

static int check_opts(const jj_cert_opts *opts, jj_error *err)
{
    if (opts->years < 1 || opts->years > 1000)
        return jj_error_set(err, JJ_EINVAL, "certificate validity of %d years is out of range",
                            opts->years);
    if ((unsigned)opts->key > JJ_KEY_ED25519)
        return jj_error_set(err, JJ_EINVAL, "unknown key type %d", (int)opts->key);
    if (opts->n_hostnames && !opts->hostnames)
        return jj_error_set(err, JJ_EINVAL, "hostnames missing");
    return 0;
}

static EVP_PKEY *generate_key(jj_key_type type)
{
    switch (type) {
    case JJ_KEY_RSA2048:
        return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    case JJ_KEY_RSA3072:
        return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
    case JJ_KEY_ED25519:
        return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    case JJ_KEY_ECDSA_P256:
    default:
        return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    }
}

/* Ed25519/Ed448 sign the message itself: no separate digest. */
static const EVP_MD *signing_md(EVP_PKEY *key)
{
    int id = EVP_PKEY_get_base_id(key);
    return id == EVP_PKEY_ED25519 || id == EVP_PKEY_ED448 ? NULL : EVP_sha256();
}

/* Reads the whole of a memory BIO as a new NUL-terminated string. The BIO
 * is a secure-memory one when it held a key, and is wiped by OpenSSL. */
static char *bio_to_string(BIO *bio)
{
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    if (n < 0)
        return NULL;
    return dup_range(data ? data : "", (size_t)n);
}

static int write_cert_and_key(X509 *x, EVP_PKEY *key, char **cert_pem, char **key_pem,
                              jj_error *err)
{
    BIO *cb = BIO_new(BIO_s_mem());
    BIO *kb = BIO_new(BIO_s_secmem());
    int rc = 0;
    char *c = NULL, *k = NULL;
    if (!cb || !kb || PEM_write_bio_X509(cb, x) != 1 ||
        PEM_write_bio_PrivateKey(kb, key, NULL, NULL, 0, NULL, NULL) != 1) {
        rc = ossl_fail(err, JJ_ECRYPTO, "cannot encode certificate and key");
        goto out;
    }
    c = bio_to_string(cb);
    k = bio_to_string(kb);
    if (!c || !k) {
        free(c);
        jj_secret_free(k);
        rc = jj_error_set(err, JJ_ENOMEM, "out of memory");
        goto out;
    }
    *cert_pem = c;
    *key_pem = k;
out:
    BIO_free(cb);
    BIO_free(kb);
    return rc;
}

static int set_random_serial(X509 *x, jj_error *err)
{
    unsigned char b[16];
    bool zero;
    do {
        int rc = jj_random_bytes(b, sizeof b, err);
        if (rc)
            return rc;
        b[0] &= 0x7f; /* positive, at most 127 bits */
        zero = true;
        for (size_t i = 0; i < sizeof b; i++)
            zero = zero && b[i] == 0;
    } while (zero);
    BIGNUM *bn = BN_bin2bn(b, sizeof b, NULL);
    int ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
    BN_free(bn);
    return ok ? 0 : ossl_fail(err, JJ_ECRYPTO, "cannot set serial number");
}

/* now-7d .. now+years, calendar years as Go's AddDate counts them. The week
 * back tolerates machines whose clock is behind the client's. */
static int set_validity(X509 *x, const jj_cert_opts *opts, jj_error *err)
{
    time_t now = opts->now_set ? (time_t)opts->now : time(NULL);
    struct tm tm;
    if (!gmtime_r(&now, &tm))
        return jj_error_set(err, JJ_EINVAL, "time out of range");
    tm.tm_year += opts->years;
    time_t end = timegm(&tm);
    if (!ASN1_TIME_adj(X509_getm_notBefore(x), now, -7, 0) ||
        !ASN1_TIME_set(X509_getm_notAfter(x), end))
        return ossl_fail(err, JJ_ECRYPTO, "cannot set validity");
    return 0;
}

/* O=juju, CN=<cn>, in the order Go encodes them. UTF8String without
 * OpenSSL's 64-character ub-common-name limit: Juju never had one, and an
 * environment name may be long. */
static int set_subject(X509 *x, const char *cn, size_t cn_len, jj_error *err)
{
    X509_NAME *name = X509_get_subject_name(x);
    if (cn_len > INT_MAX ||
        !X509_NAME_add_entry_by_NID(name, NID_organizationName, V_ASN1_UTF8STRING,
                                    (const unsigned char *)"juju", -1, -1, 0) ||
        !X509_NAME_add_entry_by_NID(name, NID_commonName, V_ASN1_UTF8STRING,
                                    (const unsigned char *)cn, (int)cn_len, -1, 0))
        return ossl_fail(err, JJ_ECRYPTO, "cannot set subject");
    return 0;
}

static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value, jj_error *err)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    int ok = ext && X509_add_ext(x, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    if (!ok) {
        char what[128];
        snprintf(what, sizeof what, "cannot add %s extension", OBJ_nid2sn(nid));
        return ossl_fail(err, JJ_ECRYPTO, what);
    }
    return 0;
}

/* Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF)
 * without control characters: what may go into a certificate name. */
static bool is_printable_utf8(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f)
                return false;
            i++;
            continue;
        }
        size_t len;
        unsigned cp, min;
        if ((c & 0xe0) == 0xc0) {
            len = 2, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (n - i < len)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (p[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ||
            (cp >= 0x80 && cp < 0xa0))
            return false;
        i += len;
    }
    return true;
}

static int sign_cert(X509 *x, EVP_PKEY *signer, jj_error *err)
{
    if (X509_sign(x, signer, signing_md(signer)) <= 0)
        return ossl_fail(err, JJ_ECRYPTO, "cannot sign certificate");
    return 0;
}

int jj_new_ca(const char *env_name, const jj_cert_opts *opts_in, char **cert_pem, char **key_pem,
              jj_error *err)
{
    jj_cert_opts defaults;
    jj_cert_opts_init(&defaults);
    const jj_cert_opts *opts = opts_in ? opts_in : &defaults;
    int rc = check_opts(opts, err);
    if (rc)
        return rc;
    size_t name_len = strlen(env_name);
    if (name_len == 0 || !is_printable_utf8(env_name, name_len))
        return jj_error_set(err, JJ_EINVAL,
                            "environment name must be non-empty printable UTF-8");
    static const char prefix[] = "juju-generated CA for environment \"";
    size_t cn_len = sizeof prefix - 1 + name_len + 1;
    char *cn = malloc(cn_len + 1);
    if (!cn)
        return jj_error_set(err, JJ_ENOMEM, "out of memory");
    snprintf(cn, cn_len + 1, "%s%s\"", prefix, env_name);

    ERR_clear_error();
    EVP_PKEY *key = generate_key(opts->key);
    X509 *x = X509_new();
    if (!key || !x) {
        rc = ossl_fail(err, JJ_ECRYPTO, "cannot generate CA key");
        goto out;
    }
    if (!X509_set_version(x, X509_VERSION_3) || !X509_set_pubkey(x, key)) {
        rc = ossl_fail(err, JJ_ECRYPTO, "cannot build CA certificate");
        goto out;
    }
    if ((rc = set_random_serial(x, err)) || (rc = set_validity(x, opts, err)) ||
        (rc = set_subject(x, cn, cn_len, err)))
        goto out;
    if (!X509_set_issuer_name(x, X509_get_subject_name(x))) {
        rc = ossl_fail(err, JJ_ECRYPTO, "cannot set issuer");
        goto out;
    }
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    if ((rc = add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE", err)) ||
        (rc = add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature",
                      err)) ||
        (rc = add_ext(x, &ctx, NID_subject_key_identifier, "hash", err)) ||
        (rc = sign_cert(x, key, err)) ||
        (rc = write_cert_and_key(x, key, cert_pem, key_pem, err)))
        goto out;
out:
    X509_free(x);
    EVP_PKEY_free(key);
    free(cn);
    return rc;
}

/* Encrypted keys would make OpenSSL prompt on the terminal; refuse them. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1;
}

static bool has_substring(const char *s, size_t n, const char *needle)
{
    size_t m = strlen(needle);
    for (size_t i = 0; i + m <= n; i++)
        if (memcmp(s + i, needle, m) == 0)
            return true;
    return false;
}

/* Reads the single certificate of a PEM: JJ_EINVAL when there is none,
 * more than one (with Juju's message) or it does not parse. On success the
 * caller owns *out (X509_free). */
static int read_one_cert(const char *pem, size_t len, const char *what, bool allow_more, X509 **out,
                         jj_error *err)
{
    if (len > INT_MAX)
        return jj_error_set(err, JJ_EINVAL, "%s too large", what);
    ERR_clear_error();
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio)
        return ossl_fail(err, JJ_ENOMEM, "cannot read certificate");
    X509 *first = PEM_read_bio_X509(bio, NULL, no_password, NULL);
    int rc = 0;
    if (!first) {
        unsigned long e = ERR_peek_last_error();
        if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
            ERR_clear_error();
            rc = jj_error_set(err, JJ_EINVAL, "no %s found", what);
        } else {
            char msg[128];
            snprintf(msg, sizeof msg, "cannot parse %s", what);
            rc = ossl_fail(err, JJ_EINVAL, msg);
        }
        goto out;
    }
    if (!allow_more) {
        X509 *second = PEM_read_bio_X509(bio, NULL, no_password, NULL);
        unsigned long e = ERR_peek_last_error();
        bool clean_end = ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
        ERR_clear_error();
        /* A second block that fails to parse still makes more than one. */
        if (second || !clean_end) {
            X509_free(second);
            rc = jj_error_set(err, JJ_EINVAL, "more than one certificate for CA");
            goto out;
        }
    }
    *out = first;
    first = NULL;
out:
    X509_free(first);
    BIO_free(bio);
    return rc;
}

/* Parses the first private key of a PEM (PKCS#1, SEC1 or PKCS#8, not
 * encrypted). On success the caller owns *out (EVP_PKEY_free). */
static int read_private_key(const char *pem, size_t len, const char *what, EVP_PKEY **out,
                            jj_error *err)
{
    char msg[128];
    if (len > INT_MAX)
        return jj_error_set(err, JJ_EINVAL, "%s too large", what);
    ERR_clear_error();
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio)
        return ossl_fail(err, JJ_ENOMEM, "cannot read private key");
    EVP_PKEY *key = PEM_read_bio_PrivateKey(bio, NULL, no_password, NULL);
    BIO_free(bio);
    if (!key) {
        if (has_substring(pem, len, "ENCRYPTED")) {
            snprintf(msg, sizeof msg, "cannot parse %s (encrypted keys are not supported)", what);
            return ossl_fail(err, JJ_EINVAL, msg);
        }
        if (!has_substring(pem, len, "PRIVATE KEY-----")) {
            ERR_clear_error();
            return jj_error_set(err, JJ_EINVAL, "no %s found", what);
        }
        snprintf(msg, sizeof msg, "cannot parse %s", what);
        return ossl_fail(err, JJ_EINVAL, msg);
    }
    *out = key;
    return 0;
}

static bool cert_is_ca(X509 *x)
{
    /* X509_get_extension_flags computes the cached flags; EXFLAG_CA is set
     * only by a basicConstraints extension saying CA:TRUE (Go's
     * BasicConstraintsValid && IsCA). */
    uint32_t flags = X509_get_extension_flags(x);
    return (flags & EXFLAG_INVALID) == 0 && (flags & EXFLAG_BCONS) && (flags & EXFLAG_CA);
}

/* The CA checks shared by jj_check_ca_pair and jj_new_server_cert. On
 * success the caller owns *ca_out and *key_out. */
static int load_ca_pair(const char *cert_pem, size_t cert_len, const char *key_pem,
                        size_t key_len, X509 **ca_out, EVP_PKEY **key_out, jj_error *err)
{
    X509 *ca = NULL;
    EVP_PKEY *key = NULL;
    int rc = read_one_cert(cert_pem, cert_len, "CA certificate", false, &ca, err);
    if (rc)
        return rc;
    if (!cert_is_ca(ca)) {
        rc = jj_error_set(err, JJ_EINVAL, "CA certificate is not a valid CA");
        goto fail;
    }
    if ((rc = read_private_key(key_pem, key_len, "CA private key", &key, err)))
        goto fail;
    int id = EVP_PKEY_get_base_id(key);
    if (id != EVP_PKEY_RSA && id != EVP_PKEY_EC && id != EVP_PKEY_ED25519) {
        rc = jj_error_set(err, JJ_EINVAL, "CA private key has unsupported type %s",
                          OBJ_nid2sn(id));
        goto fail;
    }
    EVP_PKEY *pub = X509_get0_pubkey(ca);
    if (!pub || EVP_PKEY_eq(pub, key) != 1) {
        ERR_clear_error();
        rc = jj_error_set(err, JJ_EINVAL, "CA private key does not match CA certificate");
        goto fail;
    }
    *ca_out = ca;
    *key_out = key;
    return 0;
fail:
    X509_free(ca);
    EVP_PKEY_free(key);
    return rc;
}

int jj_check_ca_pair(const char *cert_pem, size_t cert_len, const char *key_pem, size_t key_len,
                     jj_error *err)
{
    X509 *ca = NULL;
    EVP_PKEY *key = NULL;
    int rc = load_ca_pair(cert_pem, cert_len, key_pem, key_len, &ca, &key, err);
    if (rc) {
        jj_error_prefix(err, "bad CA certificate/key in configuration");
        return rc;
    }
    X509_free(ca);
    EVP_PKEY_free(key);
    return 0;
}

/* Hostnames that may go into a dNSName SAN: letters, digits, '-', '.', '_'
 * and the '*' of wildcards. */
static bool is_dns_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '.' || c == '_' || c == '*';
        if (!ok)
            return false;
    }
    return true;
}

/* Appends one SAN, skipping exact duplicates. Takes no ownership of host. */
static int add_san(GENERAL_NAMES *gens, const char *host, jj_error *err)
{
    ASN1_OCTET_STRING *ip = a2i_IPADDRESS(host);
    ERR_clear_error(); /* a non-IP is not an error: it is a DNS name */
    if (!ip && !is_dns_name(host))
        return jj_error_set(err, JJ_EINVAL, "invalid hostname \"%s\"", host);
    for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
        GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        bool dup = ip ? g->type == GEN_IPADD && ASN1_STRING_cmp(g->d.iPAddress, ip) == 0
                      : g->type == GEN_DNS && (size_t)ASN1_STRING_length(g->d.dNSName) ==
                                                      strlen(host) &&
                            OPENSSL_strncasecmp((const char *)ASN1_STRING_get0_data(
                                                    g->d.dNSName),
                                                host, strlen(host)) == 0;
        if (dup) {
            ASN1_OCTET_STRING_free(ip);
            return 0;
        }
    }
    GENERAL_NAME *g = GENERAL_NAME_new();
    if (!g) {
        ASN1_OCTET_STRING_free(ip);
        return ossl_fail(err, JJ_ENOMEM, "out of memory");
    }
    if (ip) {
        GENERAL_NAME_set0_value(g, GEN_IPADD, ip);
    } else {
        ASN1_IA5STRING *dns = ASN1_IA5STRING_new();
        if (!dns || !ASN1_STRING_set(dns, host, -1)) {
            ASN1_IA5STRING_free(dns);
            GENERAL_NAME_free(g);
            return ossl_fail(err, JJ_ENOMEM, "out of memory");
        }
        GENERAL_NAME_set0_value(g, GEN_DNS, dns);
    }
    if (!sk_GENERAL_NAME_push(gens, g)) {
        GENERAL_NAME_free(g);
        return ossl_fail(err, JJ_ENOMEM, "out of memory");
    }
    return 0;
}

static int add_sans(X509 *x, const jj_cert_opts *opts, jj_error *err)
{
    static const char *const fixed[] = {"*", "juju-apiserver", "juju-mongodb", "localhost"};
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    if (!gens)
        return ossl_fail(err, JJ_ENOMEM, "out of memory");
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof fixed / sizeof fixed[0]; i++)
        rc = add_san(gens, fixed[i], err);
    for (size_t i = 0; rc == 0 && i < opts->n_hostnames; i++)
        rc = opts->hostnames[i] ? add_san(gens, opts->hostnames[i], err)
                                : jj_error_set(err, JJ_EINVAL, "hostname %zu is NULL", i + 1);
    if (rc == 0 && X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) != 1)
        rc = ossl_fail(err, JJ_ECRYPTO, "cannot add subjectAltName extension");
    GENERAL_NAMES_free(gens);
    return rc;
}

/* The authority key id is the CA's subject key id, or the SHA-1 of its
 * public key when a user-supplied CA has none (what "hash" would give). */
static int add_authority_key_id(X509 *x, X509 *ca, jj_error *err)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(ca);
    AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
    int rc = 0;
    if (!akid || !(akid->keyid = ASN1_OCTET_STRING_new())) {
        rc = ossl_fail(err, JJ_ENOMEM, "out of memory");
        goto out;
    }
    if (ski) {
        if (!ASN1_STRING_set(akid->keyid, ASN1_STRING_get0_data(ski), ASN1_STRING_length(ski)))
            rc = ossl_fail(err, JJ_ENOMEM, "out of memory");
    } else if (X509_pubkey_digest(ca, EVP_sha1(), md, &md_len) != 1 ||
               !ASN1_STRING_set(akid->keyid, md, (int)md_len)) {
        rc = ossl_fail(err, JJ_ECRYPTO, "cannot compute authority key id");
    }
    if (rc == 0 &&
        X509_add1_ext_i2d(x, NID_authority_key_identifier, akid, 0, X509V3_ADD_DEFAULT) != 1)
        rc = ossl_fail(err, JJ_ECRYPTO, "cannot add authorityKeyIdentifier extension");
out:
    AUTHORITY_KEYID_free(akid);
    return rc;
}

static const char *server_key_usage(EVP_PKEY *key)
{
    switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA:
        return "critical,digitalSignature,keyEncipherment";
    case EVP_PKEY_EC:
        return "critical,digitalSignature,keyAgreement";
    default:
        return "critical,digitalSignature";
    }
}

int jj_new_server_cert(const char *ca_cert_pem, size_t ca_cert_len, const char *ca_key_pem,
                       size_t ca_key_len, const jj_cert_opts *opts_in, char **cert_pem,
                       char **key_pem, jj_error *err)
{
    jj_cert_opts defaults;
    jj_cert_opts_init(&defaults);
    const jj_cert_opts *opts = opts_in ? opts_in : &defaults;
    int rc = check_opts(opts, err);
    if (rc)
        return rc;
    X509 *ca = NULL, *x = NULL;
    EVP_PKEY *ca_key = NULL, *key = NULL;
    if ((rc = load_ca_pair(ca_cert_pem, ca_cert_len, ca_key_pem, ca_key_len, &ca, &ca_key, err)))
        return rc;
    ERR_clear_error();
    key = generate_key(opts->key);
    x = X509_new();
    if (!key || !x) {
        rc = ossl_fail(err, JJ_ECRYPTO, "cannot generate server key");
        goto out;
    }
    if (!X509_set_version(x, X509_VERSION_3) || !X509_set_pubkey(x, key) ||
        !X509_set_issuer_name(x, X509_get_subject_name(ca))) {
        rc = ossl_fail(err, JJ_ECRYPTO, "cannot build server certificate");
        goto out;
    }
    if ((rc = set_random_serial(x, err)) || (rc = set_validity(x, opts, err)) ||
        (rc = set_subject(x, "*", 1, err)) || (rc = add_sans(x, opts, err)))
        goto out;
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, ca, x, NULL, NULL, 0);
    if ((rc = add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE", err)) ||
        (rc = add_ext(x, &ctx, NID_key_usage, server_key_usage(key), err)) ||
        (rc = add_ext(x, &ctx, NID_ext_key_usage, "serverAuth,clientAuth", err)) ||
        (rc = add_ext(x, &ctx, NID_subject_key_identifier, "hash", err)) ||
        (rc = add_authority_key_id(x, ca, err)) || (rc = sign_cert(x, ca_key, err)) ||
        (rc = write_cert_and_key(x, key, cert_pem, key_pem, err)))
        goto out;
out:
    X509_free(x);
    X509_free(ca);
    EVP_PKEY_free(key);
    EVP_PKEY_free(ca_key);
    return rc;
}

/* ---- certificate inspection ---- */

static char *name_to_string(const X509_NAME *name)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *out = NULL;
    if (bio && X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0)
        out = bio_to_string(bio);
    BIO_free(bio);
    return out;
}

static char *serial_to_hex(const ASN1_INTEGER *serial)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(serial, NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    BN_free(bn);
    if (!hex)
        return NULL;
    const char *digits = hex[0] == '-' ? hex + 1 : hex;
    while (digits[0] == '0' && digits[1])
        digits++;
    size_t n = strlen(digits);
    char *out = malloc(n + 2);
    if (out) {
        size_t o = 0;
        if (hex[0] == '-')
            out[o++] = '-';
        for (size_t i = 0; i < n; i++)
            out[o++] = (char)(digits[i] >= 'A' && digits[i] <= 'F' ? digits[i] - 'A' + 'a'
                                                                   : digits[i]);
        out[o] = '\0';
    }
    OPENSSL_free(hex);
    return out;
}

static int asn1_time_to_unix(const ASN1_TIME *t, int64_t *out)
{
    struct tm tm;
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
        return -1;
    *out = (int64_t)timegm(&tm);
    return 0;
}

static void colon_hex(const unsigned char *md, size_t n, bool upper, char *out)
{
    const char *digits = upper ? "0123456789ABCDEF" : hex_digits;
    for (size_t i = 0; i < n; i++) {
        out[3 * i] = digits[md[i] >> 4];
        out[3 * i + 1] = digits[md[i] & 15];
        out[3 * i + 2] = ':';
    }
    out[n ? 3 * n - 1 : 0] = '\0';
}

static const char *key_type_name(int id)
{
    switch (id) {
    case EVP_PKEY_EC: return "EC";
    case EVP_PKEY_RSA: return "RSA";
    case EVP_PKEY_RSA_PSS: return "RSA-PSS";
    case EVP_PKEY_ED25519: return "ED25519";
    case EVP_PKEY_ED448: return "ED448";
    case EVP_PKEY_DSA: return "DSA";
    default: return "UNKNOWN";
    }
}

/* The SAN as text: DNS names as they are, IP addresses in their usual
 * notation; other kinds are not reported (NULL, no error). */
static int san_to_string(const GENERAL_NAME *g, char **out)
{
    *out = NULL;
    if (g->type == GEN_DNS) {
        *out = dup_range((const char *)ASN1_STRING_get0_data(g->d.dNSName),
                         (size_t)ASN1_STRING_length(g->d.dNSName));
        return *out ? 0 : -1;
    }
    if (g->type == GEN_IPADD) {
        int n = ASN1_STRING_length(g->d.iPAddress);
        char text[INET6_ADDRSTRLEN];
        const unsigned char *addr = ASN1_STRING_get0_data(g->d.iPAddress);
        if ((n == 4 && inet_ntop(AF_INET, addr, text, sizeof text)) ||
            (n == 16 && inet_ntop(AF_INET6, addr, text, sizeof text))) {
            *out = dup_range(text, strlen(text));
            return *out ? 0 : -1;
        }
    }
    return 0;
}

static int collect_sans(X509 *x, jj_cert_info *info)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    if (!gens)
        return 0;
    int n = sk_GENERAL_NAME_num(gens), rc = 0;
    info->sans = calloc((size_t)(n > 0 ? n : 1), sizeof *info->sans);
    if (!info->sans)
        rc = -1;
    for (int i = 0; rc == 0 && i < n; i++) {
        char *s;
        rc = san_to_string(sk_GENERAL_NAME_value(gens, i), &s);
        if (rc == 0 && s)
            info->sans[info->n_sans++] = s;
    }
    GENERAL_NAMES_free(gens);
    return rc;
}

int jj_cert_info_parse(const char *pem, size_t len, jj_cert_info *info, jj_error *err)
{
    memset(info, 0, sizeof *info);
    X509 *x = NULL;
    int rc = read_one_cert(pem, len, "certificate", true, &x, err);
    if (rc)
        return rc;
    EVP_PKEY *pub = X509_get0_pubkey(x);
    unsigned char md[32];
    unsigned int md_len = 0;
    info->subject = name_to_string(X509_get_subject_name(x));
    info->issuer = name_to_string(X509_get_issuer_name(x));
    info->serial_hex = serial_to_hex(X509_get0_serialNumber(x));
    if (!info->subject || !info->issuer || !info->serial_hex || collect_sans(x, info) != 0) {
        rc = ossl_fail(err, JJ_ENOMEM, "cannot describe certificate");
        goto out;
    }
    if (asn1_time_to_unix(X509_get0_notBefore(x), &info->not_before) ||
        asn1_time_to_unix(X509_get0_notAfter(x), &info->not_after)) {
        rc = ossl_fail(err, JJ_EINVAL, "certificate has an invalid validity period");
        goto out;
    }
    if (X509_digest(x, EVP_sha256(), md, &md_len) != 1 || md_len != sizeof md) {
        rc = ossl_fail(err, JJ_ECRYPTO, "cannot compute fingerprint");
        goto out;
    }
    colon_hex(md, sizeof md, true, info->fingerprint_sha256);
    info->is_ca = cert_is_ca(x);
    snprintf(info->key_type, sizeof info->key_type, "%s",
             pub ? key_type_name(EVP_PKEY_get_base_id(pub)) : "UNKNOWN");
    info->key_bits = pub ? EVP_PKEY_get_bits(pub) : 0;
    ERR_clear_error();
out:
    X509_free(x);
    if (rc)
        jj_cert_info_free(info);
    return rc;
}

void jj_cert_info_free(jj_cert_info *info)
{
    if (!info)
        return;
    free(info->subject);
    free(info->issuer);
    free(info->serial_hex);
    for (size_t i = 0; i < info->n_sans; i++)
        free(info->sans[i]);
    free(info->sans);
    memset(info, 0, sizeof *info);
}

/* ---- SSH wire format ---- */

/* A growing byte buffer that wipes whatever it held, since it carries
 * private keys. `failed` latches an allocation failure so builders can
 * check once at the end. */
typedef struct sshbuf {
    unsigned char *p;
    size_t len, cap;
    bool failed;
} sshbuf;

static void sb_free(sshbuf *b)
{
    if (b->p) {
        OPENSSL_cleanse(b->p, b->cap);
        free(b->p);
    }
    memset(b, 0, sizeof *b);
}

static void sb_put(sshbuf *b, const void *data, size_t n)
{
    if (b->failed)
        return;
    if (n > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < n) {
            if (cap > SIZE_MAX / 2) {
                b->failed = true;
                return;
            }
            cap *= 2;
        }
        /* Not realloc: the old block must be wiped before it is released. */
        unsigned char *p = malloc(cap);
        if (!p) {
            b->failed = true;
            return;
        }
        if (b->len)
            memcpy(p, b->p, b->len);
        if (b->p) {
            OPENSSL_cleanse(b->p, b->cap);
            free(b->p);
        }
        b->p = p;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void sb_u32(sshbuf *b, uint32_t v)
{
    unsigned char be[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                           (unsigned char)(v >> 8), (unsigned char)v};
    sb_put(b, be, 4);
}

static void sb_string(sshbuf *b, const void *data, size_t n)
{
    if (n > UINT32_MAX) {
        b->failed = true;
        return;
    }
    sb_u32(b, (uint32_t)n);
    sb_put(b, data, n);
}

static void sb_cstring(sshbuf *b, const char *s)
{
    sb_string(b, s, strlen(s));
}

typedef struct sshrd {
    const unsigned char *p;
    size_t len, off;
} sshrd;

static bool rd_u32(sshrd *r, uint32_t *v)
{
    if (r->len - r->off < 4)
        return false;
    const unsigned char *p = r->p + r->off;
    *v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    r->off += 4;
    return true;
}

static bool rd_string(sshrd *r, const unsigned char **s, size_t *n)
{
    uint32_t len;
    if (!rd_u32(r, &len) || r->len - r->off < len)
        return false;
    *s = r->p + r->off;
    *n = len;
    r->off += len;
    return true;
}

static bool rd_string_is(sshrd *r, const char *want)
{
    const unsigned char *s;
    size_t n;
    return rd_string(r, &s, &n) && n == strlen(want) && memcmp(s, want, n) == 0;
}

static inline bool rd_done(const sshrd *r)
{
    return r->off == r->len;
}

/* ---- SSH keys ---- */

#define OPENSSH_BEGIN "-----BEGIN OPENSSH PRIVATE KEY-----"
#define OPENSSH_END "-----END OPENSSH PRIVATE KEY-----"
#define OPENSSH_MAGIC "openssh-key-v1" /* followed by its NUL */
#define OPENSSH_WRAP 70

static bool comment_ok(const char *c)
{
    for (; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            return false;
    return true;
}

/* "<type> <base64 blob>[ <comment>]" as a new string (caller frees). */
static char *public_line(const char *type, size_t type_len, const unsigned char *blob,
                         size_t blob_len, const char *comment, size_t comment_len)
{
    size_t b64 = jj_base64_encoded_size(blob_len);
    size_t n = type_len + 1 + b64 + 1 + comment_len + 1;
    char *out = malloc(n);
    if (!out)
        return NULL;
    memcpy(out, type, type_len);
    out[type_len] = ' ';
    jj_base64_encode(blob, blob_len, out + type_len + 1);
    size_t o = strlen(out);
    if (comment_len) {
        out[o++] = ' ';
        memcpy(out + o, comment, comment_len);
        o += comment_len;
    }
    out[o] = '\0';
    return out;
}

/* The PEM armour around an openssh-key-v1 blob, base64 wrapped at 70
 * columns as ssh-keygen writes it. Caller owns the result (jj_secret_free). */
static char *openssh_armour(const sshbuf *blob)
{
    size_t b64_size = jj_base64_encoded_size(blob->len);
    char *b64 = malloc(b64_size);
    if (!b64)
        return NULL;
    jj_base64_encode(blob->p, blob->len, b64);
    size_t b64_len = b64_size - 1;
    size_t lines = (b64_len + OPENSSH_WRAP - 1) / OPENSSH_WRAP;
    size_t n = sizeof OPENSSH_BEGIN + b64_len + lines + sizeof OPENSSH_END + 1;
    char *out = malloc(n);
    if (out) {
        size_t o = 0;
        memcpy(out, OPENSSH_BEGIN "\n", sizeof OPENSSH_BEGIN);
        o += sizeof OPENSSH_BEGIN;
        for (size_t i = 0; i < b64_len; i += OPENSSH_WRAP) {
            size_t chunk = b64_len - i < OPENSSH_WRAP ? b64_len - i : OPENSSH_WRAP;
            memcpy(out + o, b64 + i, chunk);
            o += chunk;
            out[o++] = '\n';
        }
        memcpy(out + o, OPENSSH_END "\n", sizeof OPENSSH_END);
        o += sizeof OPENSSH_END;
        out[o] = '\0';
    }
    OPENSSL_cleanse(b64, b64_size);
    free(b64);
    return out;
}

int jj_ssh_keygen_ed25519(const char *comment, char **private_pem, char **public_line_out,
                          jj_error *err)
{
    if (!comment)
        comment = "";
    if (!comment_ok(comment))
        return jj_error_set(err, JJ_EINVAL, "ssh key comment must not contain control characters");
    unsigned char pub[32], seed[32], check[4];
    size_t pub_len = sizeof pub, seed_len = sizeof seed;
    sshbuf pubblob = {0}, priv = {0}, whole = {0};
    char *pem = NULL, *line = NULL;
    int rc = 0;
    ERR_clear_error();
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (!key || EVP_PKEY_get_raw_public_key(key, pub, &pub_len) != 1 ||
        EVP_PKEY_get_raw_private_key(key, seed, &seed_len) != 1 || pub_len != 32 ||
        seed_len != 32) {
        rc = ossl_fail(err, JJ_ECRYPTO, "cannot generate ed25519 key");
        goto out;
    }
    if ((rc = jj_random_bytes(check, sizeof check, err)))
        goto out;

    sb_cstring(&pubblob, "ssh-ed25519");
    sb_string(&pubblob, pub, sizeof pub);

    /* Private section: equal check-ints (they reveal a wrong passphrase
     * when encrypted), the key, its comment, then 1,2,3... up to the
     * cipher block size (8 for "none"). */
    sb_put(&priv, check, 4);
    sb_put(&priv, check, 4);
    sb_cstring(&priv, "ssh-ed25519");
    sb_string(&priv, pub, sizeof pub);
    sb_u32(&priv, 64);
    sb_put(&priv, seed, sizeof seed); /* OpenSSH keeps seed || public */
    sb_put(&priv, pub, sizeof pub);
    sb_cstring(&priv, comment);
    for (unsigned char pad = 1; priv.len % 8; pad++)
        sb_put(&priv, &pad, 1);

    sb_put(&whole, OPENSSH_MAGIC, sizeof OPENSSH_MAGIC);
    sb_cstring(&whole, "none"); /* cipher */
    sb_cstring(&whole, "none"); /* kdf */
    sb_string(&whole, "", 0);   /* kdf options */
    sb_u32(&whole, 1);          /* number of keys */
    sb_string(&whole, pubblob.p, pubblob.len);
    sb_string(&whole, priv.p, priv.len);

    if (pubblob.failed || priv.failed || whole.failed) {
        rc = jj_error_set(err, JJ_ENOMEM, "out of memory");
        goto out;
    }
    pem = openssh_armour(&whole);
    line = public_line("ssh-ed25519", 11, pubblob.p, pubblob.len, comment, strlen(comment));
    if (!pem || !line) {
        rc = jj_error_set(err, JJ_ENOMEM, "out of memory");
        goto out;
    }
    *private_pem = pem;
    *public_line_out = line;
    pem = line = NULL;
out:
    jj_secret_free(pem);
    free(line);
    sb_free(&pubblob);
    sb_free(&priv);
    sb_free(&whole);
    OPENSSL_cleanse(seed, sizeof seed);
    OPENSSL_cleanse(check, sizeof check);
    EVP_PKEY_free(key);
    return rc;
}

/* Number of strings after the key type in the private section of an
 * openssh-key-v1 key, or -1 when the layout is not known here. */
static int private_field_count(const unsigned char *type, size_t n)
{
    static const struct {
        const char *type;
        int fields;
    } layouts[] = {
        {"ssh-ed25519", 2},         /* public, seed||public */
        {"ssh-rsa", 6},             /* n, e, d, iqmp, p, q */
        {"ecdsa-sha2-nistp256", 3}, /* curve, point, scalar */
        {"ecdsa-sha2-nistp384", 3},
        {"ecdsa-sha2-nistp521", 3},
        {"ssh-dss", 5}, /* p, q, g, y, x */
    };
    for (size_t i = 0; i < sizeof layouts / sizeof layouts[0]; i++)
        if (strlen(layouts[i].type) == n && memcmp(layouts[i].type, type, n) == 0)
            return layouts[i].fields;
    return -1;
}

/* The comment of an unencrypted private section, or NULL/0 when there is
 * none to be had. JJ_EINVAL when the section is visibly corrupt. */
static int openssh_comment(const unsigned char *sect, size_t sect_len, const unsigned char *type,
                           size_t type_len, const unsigned char **comment, size_t *comment_len,
                           jj_error *err)
{
    sshrd r = {sect, sect_len, 0};
    uint32_t c1, c2;
    const unsigned char *s;
    size_t n;
    *comment = NULL;
    *comment_len = 0;
    if (!rd_u32(&r, &c1) || !rd_u32(&r, &c2) || c1 != c2)
        return jj_error_set(err, JJ_EINVAL, "corrupt OpenSSH private key: check bytes differ");
    if (!rd_string(&r, &s, &n) || n != type_len || memcmp(s, type, n) != 0)
        return jj_error_set(err, JJ_EINVAL,
                            "corrupt OpenSSH private key: private and public key types differ");
    int fields = private_field_count(type, type_len);
    if (fields < 0)
        return 0;
    for (int i = 0; i < fields; i++)
        if (!rd_string(&r, &s, &n))
            return jj_error_set(err, JJ_EINVAL, "corrupt OpenSSH private key: truncated");
    if (!rd_string(&r, comment, comment_len))
        return jj_error_set(err, JJ_EINVAL, "corrupt OpenSSH private key: truncated");
    for (unsigned char want = 1; r.off < r.len; want++)
        if (r.p[r.off++] != want)
            return jj_error_set(err, JJ_EINVAL, "corrupt OpenSSH private key: bad padding");
    return 0;
}

static int openssh_public(const char *pem, size_t len, char **out, jj_error *err)
{
    const char *begin = memmem(pem, len, OPENSSH_BEGIN, sizeof OPENSSH_BEGIN - 1);
    const char *body = begin + sizeof OPENSSH_BEGIN - 1;
    const char *end = memmem(body, len - (size_t)(body - pem), OPENSSH_END, sizeof OPENSSH_END - 1);
    if (!end)
        return jj_error_set(err, JJ_EINVAL, "OpenSSH private key has no end line");
    size_t body_len = (size_t)(end - body);
    size_t cap = jj_base64_decoded_max(body_len);
    unsigned char *raw = malloc(cap);
    if (!raw)
        return jj_error_set(err, JJ_ENOMEM, "out of memory");
    size_t raw_len = 0;
    int rc = jj_base64_decode(body, body_len, raw, &raw_len, err);
    if (rc) {
        jj_error_prefix(err, "OpenSSH private key");
        goto out;
    }
    sshrd r = {raw, raw_len, 0};
    const unsigned char *cipher, *kdf, *kdfopts, *blob, *sect, *type, *comment;
    size_t cipher_len, kdf_len, kdfopts_len, blob_len, sect_len, type_len, comment_len = 0;
    uint32_t nkeys;
    if (raw_len < sizeof OPENSSH_MAGIC || memcmp(raw, OPENSSH_MAGIC, sizeof OPENSSH_MAGIC) != 0) {
        rc = jj_error_set(err, JJ_EINVAL, "not an openssh-key-v1 private key");
        goto out;
    }
    r.off = sizeof OPENSSH_MAGIC;
    if (!rd_string(&r, &cipher, &cipher_len) || !rd_string(&r, &kdf, &kdf_len) ||
        !rd_string(&r, &kdfopts, &kdfopts_len) || !rd_u32(&r, &nkeys) || nkeys != 1 ||
        !rd_string(&r, &blob, &blob_len) || !rd_string(&r, &sect, &sect_len) || !rd_done(&r)) {
        rc = jj_error_set(err, JJ_EINVAL, "corrupt OpenSSH private key");
        goto out;
    }
    sshrd br = {blob, blob_len, 0};
    if (!rd_string(&br, &type, &type_len) || type_len == 0) {
        rc = jj_error_set(err, JJ_EINVAL, "corrupt OpenSSH private key: bad public key");
        goto out;
    }
    bool encrypted = !(cipher_len == 4 && memcmp(cipher, "none", 4) == 0);
    if (!encrypted &&
        (rc = openssh_comment(sect, sect_len, type, type_len, &comment, &comment_len, err)))
        goto out;
    char *c = comment_len ? dup_range((const char *)comment, comment_len) : NULL;
    if (c && !comment_ok(c)) /* a comment that would break the line is dropped */
        comment_len = 0;
    *out = public_line((const char *)type, type_len, blob, blob_len, c ? c : "", comment_len);
    free(c);
    if (!*out)
        rc = jj_error_set(err, JJ_ENOMEM, "out of memory");
out:
    OPENSSL_cleanse(raw, cap);
    free(raw);
    return rc;
}

static void sb_bignum(sshbuf *b, EVP_PKEY *key, const char *param, bool *ok)
{
    BIGNUM *bn = NULL;
    if (EVP_PKEY_get_bn_param(key, param, &bn) != 1) {
        *ok = false;
        return;
    }
    /* BN_bn2mpi writes a 4-byte length and a sign-padded big-endian value:
     * exactly an SSH mpint. */
    int n = BN_bn2mpi(bn, NULL);
    unsigned char *mpi = n > 0 ? malloc((size_t)n) : NULL;
    if (mpi && BN_bn2mpi(bn, mpi) == n)
        sb_put(b, mpi, (size_t)n);
    else
        *ok = false;
    free(mpi);
    BN_free(bn);
}

/* The SSH public key blob of an OpenSSL key (RSA, EC P-256/384/521,
 * ed25519). */
static int ssh_blob_of_key(EVP_PKEY *key, sshbuf *blob, const char **type, jj_error *err)
{
    bool ok = true;
    switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA:
        *type = "ssh-rsa";
        sb_cstring(blob, *type);
        sb_bignum(blob, key, OSSL_PKEY_PARAM_RSA_E, &ok);
        sb_bignum(blob, key, OSSL_PKEY_PARAM_RSA_N, &ok);
        break;
    case EVP_PKEY_ED25519: {
        unsigned char pub[32];
        size_t n = sizeof pub;
        ok = EVP_PKEY_get_raw_public_key(key, pub, &n) == 1 && n == 32;
        *type = "ssh-ed25519";
        sb_cstring(blob, *type);
        sb_string(blob, pub, sizeof pub);
        break;
    }
    case EVP_PKEY_EC: {
        char group[64];
        unsigned char point[133];
        size_t point_len = 0;
        const char *curve = NULL;
        if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                           NULL) != 1)
            return ossl_fail(err, JJ_EINVAL, "EC key has no named curve");
        if (strcmp(group, "prime256v1") == 0)
            *type = "ecdsa-sha2-nistp256", curve = "nistp256";
        else if (strcmp(group, "secp384r1") == 0)
            *type = "ecdsa-sha2-nistp384", curve = "nistp384";
        else if (strcmp(group, "secp521r1") == 0)
            *type = "ecdsa-sha2-nistp521", curve = "nistp521";
        else
            return jj_error_set(err, JJ_EINVAL, "EC curve %s has no SSH key type", group);
        /* SSH wants the uncompressed point whatever form the key was read in. */
        ok = EVP_PKEY_set_utf8_string_param(key, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                                            "uncompressed") == 1 &&
             EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point,
                                             &point_len) == 1;
        sb_cstring(blob, *type);
        sb_cstring(blob, curve);
        sb_string(blob, point, point_len);
        break;
    }
    default:
        return jj_error_set(err, JJ_EINVAL, "private key type %s has no SSH form",
                            OBJ_nid2sn(EVP_PKEY_get_base_id(key)));
    }
    if (!ok)
        return ossl_fail(err, JJ_ECRYPTO, "cannot read public key");
    if (blob->failed)
        return jj_error_set(err, JJ_ENOMEM, "out of memory");
    return 0;
}

int jj_ssh_public_from_private(const char *pem, size_t len, char **out, jj_error *err)
{
    if (memmem(pem, len, OPENSSH_BEGIN, sizeof OPENSSH_BEGIN - 1))
        return openssh_public(pem, len, out, err);
    EVP_PKEY *key = NULL;
    int rc = read_private_key(pem, len, "private key", &key, err);
    if (rc)
        return rc;
    sshbuf blob = {0};
    const char *type = NULL;
    if ((rc = ssh_blob_of_key(key, &blob, &type, err)) == 0) {
        *out = public_line(type, strlen(type), blob.p, blob.len, "", 0);
        if (!*out)
            rc = jj_error_set(err, JJ_ENOMEM, "out of memory");
    }
    sb_free(&blob);
    EVP_PKEY_free(key);
    return rc;
}

/* Structure checks for the key types bootstrap meets. */
static bool blob_structure_ok(const char *type, const unsigned char *blob, size_t blob_len)
{
    sshrd r = {blob, blob_len, 0};
    const unsigned char *s;
    size_t n;
    if (!rd_string_is(&r, type))
        return false;
    if (strcmp(type, "ssh-ed25519") == 0)
        return rd_string(&r, &s, &n) && n == 32 && rd_done(&r);
    if (strcmp(type, "ssh-rsa") == 0)
        return rd_string(&r, &s, &n) && n > 0 && rd_string(&r, &s, &n) && n > 0 && rd_done(&r);
    static const struct {
        const char *type, *curve;
        size_t point;
    } curves[] = {
        {"ecdsa-sha2-nistp256", "nistp256", 65},
        {"ecdsa-sha2-nistp384", "nistp384", 97},
        {"ecdsa-sha2-nistp521", "nistp521", 133},
    };
    for (size_t i = 0; i < sizeof curves / sizeof curves[0]; i++)
        if (strcmp(type, curves[i].type) == 0)
            return rd_string_is(&r, curves[i].curve) && rd_string(&r, &s, &n) &&
                   n == curves[i].point && s[0] == 0x04 && rd_done(&r);
    return true;
}

int jj_ssh_parse_public(const char *line, size_t len, jj_ssh_public *out, jj_error *err)
{
    memset(out, 0, sizeof *out);
    size_t a = 0, b = len;
    while (a < b && is_space((unsigned char)line[a]))
        a++;
    while (b > a && is_space((unsigned char)line[b - 1]))
        b--;
    if (memchr(line + a, '\n', b - a) || memchr(line + a, '\r', b - a) ||
        memchr(line + a, '\0', b - a))
        return jj_error_set(err, JJ_EINVAL, "invalid SSH public key: more than one line");
    size_t t0 = a;
    while (a < b && line[a] != ' ' && line[a] != '\t')
        a++;
    size_t t1 = a;
    while (a < b && (line[a] == ' ' || line[a] == '\t'))
        a++;
    size_t k0 = a;
    while (a < b && line[a] != ' ' && line[a] != '\t')
        a++;
    size_t k1 = a;
    while (a < b && (line[a] == ' ' || line[a] == '\t'))
        a++;
    if (t1 == t0 || k1 == k0)
        return jj_error_set(err, JJ_EINVAL, "invalid SSH public key: want \"<type> <base64>\"");
    for (size_t i = t0; i < t1; i++)
        if ((unsigned char)line[i] <= 0x20 || (unsigned char)line[i] >= 0x7f)
            return jj_error_set(err, JJ_EINVAL, "invalid SSH public key: bad key type");
    out->type = dup_range(line + t0, t1 - t0);
    out->comment = dup_range(line + a, b - a);
    out->blob = malloc(jj_base64_decoded_max(k1 - k0));
    if (!out->type || !out->comment || !out->blob) {
        jj_ssh_public_free(out);
        return jj_error_set(err, JJ_ENOMEM, "out of memory");
    }
    int rc = jj_base64_decode(line + k0, k1 - k0, out->blob, &out->blob_len, err);
    if (rc) {
        jj_error_prefix(err, "invalid SSH public key");
    } else if (!blob_structure_ok(out->type, out->blob, out->blob_len)) {
        rc = jj_error_set(err, JJ_EINVAL, "invalid SSH public key: malformed %s key", out->type);
    }
    if (rc)
        jj_ssh_public_free(out);
    return rc;
}

void jj_ssh_public_free(jj_ssh_public *pub)
{
    if (!pub)
        return;
    free(pub->type);
    free(pub->blob);
    free(pub->comment);
    memset(pub, 0, sizeof *pub);
}

int jj_ssh_fingerprint_sha256(const char *line, size_t len, char out[JJ_SSH_FP_SHA256_SIZE],
                              jj_error *err)
{
    jj_ssh_public pub;
    int rc = jj_ssh_parse_public(line, len, &pub, err);
    if (rc)
        return rc;
    unsigned char md[32];
    if ((rc = jj_digest(JJ_DIGEST_SHA256, pub.blob, pub.blob_len, md, err)) == 0) {
        memcpy(out, "SHA256:", 7);
        out[7 + base64_encode_raw(md, sizeof md, out + 7, false)] = '\0';
    }
    jj_ssh_public_free(&pub);
    return rc;
}

int jj_ssh_fingerprint_md5(const char *line, size_t len, char out[JJ_SSH_FP_MD5_SIZE],
                           jj_error *err)
{
    jj_ssh_public pub;
    int rc = jj_ssh_parse_public(line, len, &pub, err);
    if (rc)
        return rc;
    unsigned char md[16];
    if (EVP_Digest(pub.blob, pub.blob_len, md, NULL, EVP_md5(), NULL) == 1)
        colon_hex(md, sizeof md, false, out);
    else
        rc = ossl_fail(err, JJ_ECRYPTO, "md5 digest failed");
    jj_ssh_public_free(&pub);
    return rc;
}

/* ---- misc ---- */

bool jj_constant_time_equal(const void *a, size_t a_len, const void *b, size_t b_len)
{
    if (a_len != b_len)
        return false;
    return a_len == 0 || CRYPTO_memcmp(a, b, a_len) == 0;
}
