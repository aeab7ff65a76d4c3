/* sshkey.c: OpenSSH keys: wire format, generation, parsing, fingerprints (see sshkey.h). */
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


static inline bool is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
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
        rc = jj_crypto_fail(err, JJ_ECRYPTO, "cannot generate ed25519 key");
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
    char *c = comment_len ? jj_crypto_dup_range((const char *)comment, comment_len) : NULL;
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
            return jj_crypto_fail(err, JJ_EINVAL, "EC key has no named curve");
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
        return jj_crypto_fail(err, JJ_ECRYPTO, "cannot read public key");
    if (blob->failed)
        return jj_error_set(err, JJ_ENOMEM, "out of memory");
    return 0;
}

int jj_ssh_public_from_private(const char *pem, size_t len, char **out, jj_error *err)
{
    if (memmem(pem, len, OPENSSH_BEGIN, sizeof OPENSSH_BEGIN - 1))
        return openssh_public(pem, len, out, err);
    EVP_PKEY *key = NULL;
    int rc = jj_x509_read_private_key(pem, len, "private key", &key, err);
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
    out->type = jj_crypto_dup_range(line + t0, t1 - t0);
    out->comment = jj_crypto_dup_range(line + a, b - a);
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
        out[7 + jj_base64_encode_unpadded(md, sizeof md, out + 7)] = '\0';
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
        jj_hex_encode_colons(md, sizeof md, false, out);
    else
        rc = jj_crypto_fail(err, JJ_ECRYPTO, "md5 digest failed");
    jj_ssh_public_free(&pub);
    return rc;
}

