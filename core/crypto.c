/* crypto.c: the base the crypto modules share (see crypto.h): OpenSSL
 * error capture, secret wiping, random bytes, UUIDs, constant-time
 * comparison. Every buffer that held key material or a password is wiped
 * with OPENSSL_cleanse before it is freed or goes out of scope.
 */
#include "crypto.h"

#include <arpa/inet.h>
#include <ctype.h>
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
int jj_crypto_fail(jj_error *err, int code, const char *what)
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

char *jj_crypto_dup_range(const char *s, size_t n)
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
            return jj_crypto_fail(err, JJ_ECRYPTO, "random number generator failed");
        p += chunk;
        n -= (size_t)chunk;
    }
    return 0;
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
        if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
            return false;
    }
    return true;
}

/* ---- misc ---- */

bool jj_constant_time_equal(const void *a, size_t a_len, const void *b, size_t b_len)
{
    if (a_len != b_len)
        return false;
    return a_len == 0 || CRYPTO_memcmp(a, b, a_len) == 0;
}
