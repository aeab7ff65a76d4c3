/* mac.c: digests and HMACs over OpenSSL 3's EVP_MD and EVP_MAC (see mac.h). */
#include "mac.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

struct jj_mac {
    jj_mac_hash hash;
    EVP_MD_CTX *md;   /* plain digest */
    EVP_MAC_CTX *mac; /* HMAC */
};

static const char *const names[] = {"MD5", "SHA1", "SHA256", "SHA384", "SHA512"};
static const size_t sizes[] = {16, 20, 32, 48, 64};

static int ossl_fail(jj_error *err, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[256] = "unknown error";
    if (e)
        ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    return jj_error_set_lib(err, JJ_ECRYPTO, (long)e, "%s: %s", what, buf);
}

int jj_mac_hash_from_name(const char *name, jj_mac_hash *out, jj_error *err)
{
    char norm[16];
    size_t j = 0;
    for (const char *p = name ? name : ""; *p && j < sizeof norm - 1; p++)
        if (*p != '-')
            norm[j++] = *p;
    norm[j] = '\0';
    for (size_t i = 0; name && strlen(name) < sizeof norm && i < sizeof names / sizeof names[0];
         i++) {
        if (strcasecmp(norm, names[i]) == 0) {
            *out = (jj_mac_hash)i;
            return 0;
        }
    }
    return jj_error_set(err, JJ_EINVAL,
                        "unknown digest '%s' (md5, sha1, sha256, sha384 or sha512)",
                        name ? name : "(null)");
}

size_t jj_mac_size(jj_mac_hash hash)
{
    return (unsigned)hash < 5 ? sizes[hash] : 0;
}

void jj_mac_free(jj_mac *m)
{
    if (!m)
        return;
    EVP_MD_CTX_free(m->md);
    EVP_MAC_CTX_free(m->mac);
    free(m);
}

int jj_mac_new(jj_mac_hash hash, const void *key, size_t keylen, jj_mac **out, jj_error *err)
{
    jj_error_clear(err);
    *out = NULL;
    if ((unsigned)hash >= 5)
        return jj_error_set(err, JJ_EINVAL, "unknown digest %d", (int)hash);
    jj_mac *m = calloc(1, sizeof *m);
    if (!m)
        return jj_error_set(err, JJ_ENOMEM, "digest: out of memory");
    m->hash = hash;
    if (!key) {
        const EVP_MD *md = EVP_get_digestbyname(names[hash]);
        m->md = EVP_MD_CTX_new();
        if (!md || !m->md || EVP_DigestInit_ex(m->md, md, NULL) != 1) {
            jj_mac_free(m);
            return ossl_fail(err, "digest init");
        }
    } else {
        EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
        m->mac = mac ? EVP_MAC_CTX_new(mac) : NULL;
        EVP_MAC_free(mac); /* the context keeps its own reference */
        OSSL_PARAM params[] = {
            OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)names[hash], 0),
            OSSL_PARAM_construct_end()};
        static const unsigned char empty[1];
        if (!m->mac ||
            EVP_MAC_init(m->mac, keylen ? key : empty, keylen, params) != 1) {
            jj_mac_free(m);
            return ossl_fail(err, "HMAC init");
        }
    }
    *out = m;
    return 0;
}

int jj_mac_update(jj_mac *m, const void *data, size_t n, jj_error *err)
{
    if (n == 0)
        return 0;
    int ok = m->md ? EVP_DigestUpdate(m->md, data, n) : EVP_MAC_update(m->mac, data, n);
    return ok == 1 ? 0 : ossl_fail(err, "digest update");
}

int jj_mac_final(const jj_mac *m, unsigned char *out, size_t *out_len, jj_error *err)
{
    size_t len = 0;
    int ok = 0;
    if (m->md) {
        EVP_MD_CTX *copy = EVP_MD_CTX_new();
        unsigned int ulen = 0;
        ok = copy && EVP_MD_CTX_copy_ex(copy, m->md) == 1 &&
             EVP_DigestFinal_ex(copy, out, &ulen) == 1;
        len = ulen;
        EVP_MD_CTX_free(copy);
    } else {
        EVP_MAC_CTX *copy = EVP_MAC_CTX_dup(m->mac);
        ok = copy && EVP_MAC_final(copy, out, &len, JJ_MAC_MAX_SIZE) == 1;
        EVP_MAC_CTX_free(copy);
    }
    if (!ok)
        return ossl_fail(err, "digest final");
    if (out_len)
        *out_len = len;
    return 0;
}

int jj_mac_oneshot(jj_mac_hash hash, const void *key, size_t keylen, const void *data, size_t n,
                   unsigned char *out, size_t *out_len, jj_error *err)
{
    jj_mac *m = NULL;
    int rc = jj_mac_new(hash, key, keylen, &m, err);
    if (rc == 0)
        rc = jj_mac_update(m, data, n, err);
    if (rc == 0)
        rc = jj_mac_final(m, out, out_len, err);
    jj_mac_free(m);
    return rc;
}

int jj_mac_file(jj_mac_hash hash, const void *key, size_t keylen, const char *path,
                unsigned char *out, size_t *out_len, uint64_t *size, jj_error *err)
{
    jj_error_clear(err);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return jj_error_errno(err, errno, "cannot open %s", path);
    jj_mac *m = NULL;
    int rc = jj_mac_new(hash, key, keylen, &m, err);
    uint64_t total = 0;
    unsigned char *buf = rc == 0 ? malloc(65536) : NULL;
    if (rc == 0 && !buf)
        rc = jj_error_set(err, JJ_ENOMEM, "digest %s: out of memory", path);
    while (rc == 0) {
        ssize_t r = read(fd, buf, 65536);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = jj_error_errno(err, errno, "cannot read %s", path);
            break;
        }
        if (r == 0)
            break;
        total += (uint64_t)r;
        rc = jj_mac_update(m, buf, (size_t)r, err);
    }
    if (rc == 0)
        rc = jj_mac_final(m, out, out_len, err);
    if (rc == 0 && size)
        *size = total;
    free(buf);
    jj_mac_free(m);
    close(fd);
    return rc;
}
