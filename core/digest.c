/* digest.c: digests, PBKDF2 and Juju password hashes (see digest.h). */
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
        return jj_crypto_fail(err, JJ_ECRYPTO, "digest failed");
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
        return jj_crypto_fail(err, JJ_ECRYPTO, "cannot start digest");
    }
    *out = h;
    return 0;
}

int jj_hasher_update(jj_hasher *h, const void *data, size_t n, jj_error *err)
{
    if (EVP_DigestUpdate(h->ctx, data, n) != 1)
        return jj_crypto_fail(err, JJ_ECRYPTO, "digest update failed");
    return 0;
}

int jj_hasher_final(const jj_hasher *h, unsigned char *md, jj_error *err)
{
    /* Finish a copy so the stream can go on after a digest is read. */
    EVP_MD_CTX *copy = EVP_MD_CTX_new();
    int ok = copy && EVP_MD_CTX_copy_ex(copy, h->ctx) == 1 &&
             EVP_DigestFinal_ex(copy, md, NULL) == 1;
    EVP_MD_CTX_free(copy);
    return ok ? 0 : jj_crypto_fail(err, JJ_ECRYPTO, "digest failed");
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
        rc = jj_crypto_fail(err, JJ_ECRYPTO, "cannot start digest");
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
            rc = jj_crypto_fail(err, JJ_ECRYPTO, "digest update failed");
            goto out;
        }
        total += (uint64_t)n;
    }
    if (EVP_DigestFinal_ex(ctx, md, NULL) != 1) {
        rc = jj_crypto_fail(err, JJ_ECRYPTO, "digest failed");
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
        return jj_crypto_fail(err, JJ_ECRYPTO, "pbkdf2 failed");
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

