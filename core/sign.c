/* sign.c: private keys (PEM and openssh-key-v1), signatures, public blobs
 * and fingerprints over OpenSSL 3 (see sign.h). */
#include "sign.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define OPENSSH_BEGIN "-----BEGIN OPENSSH PRIVATE KEY-----"
#define OPENSSH_END "-----END OPENSSH PRIVATE KEY-----"
#define MAX_KEY_FILE (1u << 20)

struct jj_sign_key {
    EVP_PKEY *pkey;
    jj_sign_key_type type;
    int bits;
    int curve_bytes; /* ECDSA: bytes per coordinate */
    const char *curve, *ssh_type, *ssh_curve;
};

static int ossl_fail(jj_error *err, int code, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    char buf[256] = "unknown error";
    if (e)
        ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    return jj_error_set_lib(err, code, (long)e, "%s: %s", what, buf);
}

void jj_sign_key_free(jj_sign_key *k)
{
    if (!k)
        return;
    EVP_PKEY_free(k->pkey);
    free(k);
}

/* Fills the descriptive fields from the EVP_PKEY; takes pkey. */
static int wrap_key(EVP_PKEY *pkey, const char *src, jj_sign_key **out, jj_error *err)
{
    jj_sign_key *k = calloc(1, sizeof *k);
    if (!k) {
        EVP_PKEY_free(pkey);
        return jj_error_set(err, JJ_ENOMEM, "key: out of memory");
    }
    k->pkey = pkey;
    k->bits = EVP_PKEY_get_bits(pkey);
    switch (EVP_PKEY_get_base_id(pkey)) {
    case EVP_PKEY_RSA:
        k->type = JJ_SIGN_RSA;
        k->ssh_type = "ssh-rsa";
        break;
    case EVP_PKEY_ED25519:
        k->type = JJ_SIGN_ED25519;
        k->ssh_type = "ssh-ed25519";
        break;
    case EVP_PKEY_EC: {
        char group[64] = "";
        size_t glen = 0;
        EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                       &glen);
        k->type = JJ_SIGN_ECDSA;
        if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0) {
            k->curve = "P-256", k->ssh_type = "ecdsa-sha2-nistp256", k->ssh_curve = "nistp256";
            k->curve_bytes = 32;
        } else if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0) {
            k->curve = "P-384", k->ssh_type = "ecdsa-sha2-nistp384", k->ssh_curve = "nistp384";
            k->curve_bytes = 48;
        } else if (strcmp(group, "secp521r1") == 0 || strcmp(group, "P-521") == 0) {
            k->curve = "P-521", k->ssh_type = "ecdsa-sha2-nistp521", k->ssh_curve = "nistp521";
            k->curve_bytes = 66;
        } else {
            jj_sign_key_free(k);
            return jj_error_set(err, JJ_EUNSUPPORTED,
                                "%s: ECDSA curve '%s' is not supported (P-256, P-384, P-521)", src,
                                group);
        }
        break;
    }
    default:
        jj_sign_key_free(k);
        return jj_error_set(err, JJ_EUNSUPPORTED,
                            "%s: unsupported key type (RSA, ECDSA or ed25519 expected)", src);
    }
    *out = k;
    return 0;
}

/* --- openssh-key-v1 -------------------------------------------------------- */

typedef struct reader {
    const unsigned char *p;
    size_t left;
} reader;

static int rd_u32(reader *r, uint32_t *v)
{
    if (r->left < 4)
        return -1;
    *v = ((uint32_t)r->p[0] << 24) | ((uint32_t)r->p[1] << 16) | ((uint32_t)r->p[2] << 8) |
         r->p[3];
    r->p += 4;
    r->left -= 4;
    return 0;
}

static int rd_string(reader *r, const unsigned char **s, size_t *len)
{
    uint32_t n;
    if (rd_u32(r, &n) != 0 || n > r->left)
        return -1;
    *s = r->p;
    *len = n;
    r->p += n;
    r->left -= n;
    return 0;
}

static int str_is(const unsigned char *s, size_t len, const char *want)
{
    return len == strlen(want) && memcmp(s, want, len) == 0;
}

/* An SSH mpint (positive only) as a BIGNUM, or NULL. Private values go
 * into secure BIGNUMs, so OSSL_PARAM_BLD copies them to the secure heap. */
static BIGNUM *rd_mpint_x(reader *r, int secret)
{
    const unsigned char *s;
    size_t len;
    if (rd_string(r, &s, &len) != 0 || (len > 0 && (s[0] & 0x80)) || len > 2048)
        return NULL;
    BIGNUM *bn = secret ? BN_secure_new() : BN_new();
    if (bn && !BN_bin2bn(s, (int)len, bn)) {
        BN_free(bn);
        return NULL;
    }
    return bn;
}

static BIGNUM *rd_mpint(reader *r)
{
    return rd_mpint_x(r, 0);
}

static BIGNUM *rd_secret(reader *r)
{
    return rd_mpint_x(r, 1);
}

static int fromdata(const char *type, OSSL_PARAM_BLD *bld, EVP_PKEY **out)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    int ok = params && ctx && EVP_PKEY_fromdata_init(ctx) == 1 &&
             EVP_PKEY_fromdata(ctx, out, EVP_PKEY_KEYPAIR, params) == 1;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params); /* secure BNs sit in the secure heap, cleared when freed */
    return ok ? 0 : -1;
}

static int openssh_rsa(reader *r, EVP_PKEY **out)
{
    BIGNUM *n = rd_mpint(r), *e = rd_mpint(r), *d = rd_secret(r), *iqmp = rd_secret(r),
           *p = rd_secret(r), *q = rd_secret(r);
    BIGNUM *dmp1 = BN_secure_new(), *dmq1 = BN_secure_new(), *t = BN_secure_new();
    BN_CTX *bc = BN_CTX_new();
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    int rc = -1;
    if (n && e && d && iqmp && p && q && dmp1 && dmq1 && t && bc && bld && !BN_is_zero(p) &&
        !BN_is_zero(q) && BN_sub(t, p, BN_value_one()) && BN_mod(dmp1, d, t, bc) &&
        BN_sub(t, q, BN_value_one()) && BN_mod(dmq1, d, t, bc) &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_D, d) &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_FACTOR1, p) &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_FACTOR2, q) &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_EXPONENT1, dmp1) &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_EXPONENT2, dmq1) &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_COEFFICIENT1, iqmp))
        rc = fromdata("RSA", bld, out);
    OSSL_PARAM_BLD_free(bld);
    BN_CTX_free(bc);
    BN_free(n);
    BN_free(e);
    BN_clear_free(d);
    BN_clear_free(iqmp);
    BN_clear_free(p);
    BN_clear_free(q);
    BN_clear_free(dmp1);
    BN_clear_free(dmq1);
    BN_clear_free(t);
    return rc;
}

static int openssh_ecdsa(reader *r, const unsigned char *type, size_t type_len, EVP_PKEY **out)
{
    const char *group = NULL;
    if (str_is(type, type_len, "ecdsa-sha2-nistp256"))
        group = "prime256v1";
    else if (str_is(type, type_len, "ecdsa-sha2-nistp384"))
        group = "secp384r1";
    else if (str_is(type, type_len, "ecdsa-sha2-nistp521"))
        group = "secp521r1";
    const unsigned char *curve, *q;
    size_t curve_len, q_len;
    if (!group || rd_string(r, &curve, &curve_len) != 0 || rd_string(r, &q, &q_len) != 0 ||
        curve_len != 8 || memcmp(curve, type + 11, 8) != 0)
        return -1;
    BIGNUM *d = rd_secret(r);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    int rc = -1;
    if (d && bld &&
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, q, q_len) &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, d))
        rc = fromdata("EC", bld, out);
    OSSL_PARAM_BLD_free(bld);
    BN_clear_free(d);
    return rc;
}

static int openssh_ed25519(reader *r, EVP_PKEY **out)
{
    const unsigned char *pub, *priv;
    size_t pub_len, priv_len;
    if (rd_string(r, &pub, &pub_len) != 0 || rd_string(r, &priv, &priv_len) != 0 ||
        pub_len != 32 || priv_len != 64 || memcmp(priv + 32, pub, 32) != 0)
        return -1;
    *out = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, priv, 32);
    return *out ? 0 : -1;
}

/* Base64 body between the markers (whitespace ignored) into a new buffer. */
static int b64_body(const char *s, size_t len, unsigned char **out, size_t *out_len)
{
    char *clean = malloc(len + 1);
    unsigned char *bin = malloc(len + 3);
    size_t n = 0;
    if (!clean || !bin) {
        free(clean);
        free(bin);
        return JJ_ENOMEM;
    }
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\n' && s[i] != '\r' && s[i] != '\t')
            clean[n++] = s[i];
    int rc = 0;
    int dec = n % 4 == 0 ? EVP_DecodeBlock(bin, (unsigned char *)clean, (int)n) : -1;
    if (dec < 0) {
        rc = JJ_EINVAL;
    } else {
        size_t pad = 0;
        while (pad < 2 && n > pad && clean[n - 1 - pad] == '=')
            pad++;
        *out_len = (size_t)dec - pad;
    }
    OPENSSL_cleanse(clean, n);
    free(clean);
    if (rc != 0) {
        OPENSSL_cleanse(bin, len + 3);
        free(bin);
        return rc;
    }
    *out = bin;
    return 0;
}

static int load_openssh(const char *text, size_t len, const char *src, EVP_PKEY **out,
                        jj_error *err)
{
    const char *b = memmem(text, len, OPENSSH_BEGIN, strlen(OPENSSH_BEGIN));
    const char *body = b + strlen(OPENSSH_BEGIN);
    const char *e = memmem(body, len - (size_t)(body - text), OPENSSH_END, strlen(OPENSSH_END));
    if (!e)
        return jj_error_set(err, JJ_EINVAL, "%s: OpenSSH private key without its END line", src);
    unsigned char *bin = NULL;
    size_t bin_len = 0;
    int rc = b64_body(body, (size_t)(e - body), &bin, &bin_len);
    if (rc == JJ_ENOMEM)
        return jj_error_set(err, rc, "%s: out of memory", src);
    if (rc != 0)
        return jj_error_set(err, JJ_EINVAL, "%s: OpenSSH private key: bad base64", src);
    reader r = {bin, bin_len};
    const unsigned char *cipher, *kdf, *kdfopts, *pub, *priv, *type;
    size_t cipher_len, kdf_len, kdfopts_len, pub_len, priv_len, type_len;
    uint32_t nkeys, check1, check2;
    const char *why = NULL;
    int unknown_type = 0;
    static const char magic[] = "openssh-key-v1";
    if (bin_len < sizeof magic || memcmp(bin, magic, sizeof magic) != 0) {
        why = "not an openssh-key-v1 key";
    } else {
        r.p += sizeof magic;
        r.left -= sizeof magic;
        if (rd_string(&r, &cipher, &cipher_len) || rd_string(&r, &kdf, &kdf_len) ||
            rd_string(&r, &kdfopts, &kdfopts_len) || rd_u32(&r, &nkeys))
            why = "truncated header";
        else if (!str_is(cipher, cipher_len, "none") || !str_is(kdf, kdf_len, "none"))
            rc = JJ_EUNSUPPORTED;
        else if (nkeys != 1)
            why = "more than one key";
        else if (rd_string(&r, &pub, &pub_len) || rd_string(&r, &priv, &priv_len))
            why = "truncated";
    }
    if (!why && rc == 0) {
        reader pr = {priv, priv_len};
        if (rd_u32(&pr, &check1) || rd_u32(&pr, &check2) || check1 != check2)
            why = "check bytes differ (corrupt, or encrypted)";
        else if (rd_string(&pr, &type, &type_len))
            why = "truncated private section";
        else if (str_is(type, type_len, "ssh-rsa"))
            why = openssh_rsa(&pr, out) ? "bad RSA key" : NULL;
        else if (str_is(type, type_len, "ssh-ed25519"))
            why = openssh_ed25519(&pr, out) ? "bad ed25519 key" : NULL;
        else if (type_len > 11 && memcmp(type, "ecdsa-sha2-", 11) == 0)
            why = openssh_ecdsa(&pr, type, type_len, out) ? "bad or unsupported ECDSA key" : NULL;
        else
            unknown_type = 1;
    }
    OPENSSL_cleanse(bin, bin_len);
    free(bin);
    ERR_clear_error();
    if (rc == JJ_EUNSUPPORTED)
        return jj_error_set(err, JJ_EUNSUPPORTED,
                            "%s: the OpenSSH private key is encrypted; use an unencrypted key "
                            "file for this environment (ssh-keygen -p changes the passphrase)",
                            src);
    if (unknown_type)
        return jj_error_set(err, JJ_EUNSUPPORTED,
                            "%s: unsupported OpenSSH key type (RSA, ECDSA or ed25519 expected)",
                            src);
    if (why)
        return jj_error_set(err, JJ_EINVAL, "%s: malformed OpenSSH private key: %s", src, why);
    return 0;
}

/* --- loading ------------------------------------------------------------- */

static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag;
    *(int *)u = 1;
    return -1;
}

int jj_sign_key_load(const char *text, size_t len, const char *source, jj_sign_key **out,
                     jj_error *err)
{
    jj_error_clear(err);
    *out = NULL;
    const char *src = source ? source : "private key";
    EVP_PKEY *pkey = NULL;
    if (memmem(text, len, OPENSSH_BEGIN, strlen(OPENSSH_BEGIN))) {
        int rc = load_openssh(text, len, src, &pkey, err);
        if (rc != 0)
            return rc;
        return wrap_key(pkey, src, out, err);
    }
    if (!memmem(text, len, "-----BEGIN ", 11))
        return jj_error_set(err, JJ_EINVAL,
                            "%s: not a private key (PEM or OpenSSH \"-----BEGIN ...\" expected)",
                            src);
    if (len > INT32_MAX)
        return jj_error_set(err, JJ_EINVAL, "%s: too large", src);
    BIO *bio = BIO_new_mem_buf(text, (int)len);
    if (!bio)
        return jj_error_set(err, JJ_ENOMEM, "%s: out of memory", src);
    int asked = 0;
    pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, &asked);
    BIO_free(bio);
    if (!pkey) {
        if (asked) {
            ERR_clear_error();
            return jj_error_set(err, JJ_EUNSUPPORTED,
                                "%s: the private key is encrypted; use an unencrypted key file",
                                src);
        }
        char what[600];
        snprintf(what, sizeof what, "%s: cannot read the private key", src);
        return ossl_fail(err, JJ_EINVAL, what);
    }
    return wrap_key(pkey, src, out, err);
}

int jj_sign_key_load_file(const char *path, jj_sign_key **out, jj_error *err)
{
    jj_error_clear(err);
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return jj_error_errno(err, errno, "cannot open key file %s", path);
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t)MAX_KEY_FILE) {
        close(fd);
        return jj_error_set(err, JJ_EINVAL, "key file %s is not a regular file under 1 MiB",
                            path);
    }
    size_t cap = (size_t)st.st_size + 1, n = 0;
    char *buf = malloc(cap);
    if (!buf) {
        close(fd);
        return jj_error_set(err, JJ_ENOMEM, "key file %s: out of memory", path);
    }
    int rc = 0;
    while (n < cap - 1) {
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = jj_error_errno(err, errno, "cannot read key file %s", path);
            break;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    if (rc == 0)
        rc = jj_sign_key_load(buf, n, path, out, err);
    OPENSSL_cleanse(buf, cap);
    free(buf);
    return rc;
}

void jj_sign_key_info_get(const jj_sign_key *k, jj_sign_key_info *info)
{
    static const char *const names[] = {"rsa", "ecdsa", "ed25519"};
    info->type = k->type;
    info->type_name = names[k->type];
    info->ssh_type = k->ssh_type;
    info->curve = k->curve;
    info->bits = k->bits;
}

/* --- signing --------------------------------------------------------------- */

static int pick_md(const jj_sign_key *k, const char *hash, const EVP_MD **md, jj_error *err)
{
    *md = NULL;
    if (k->type == JJ_SIGN_ED25519)
        return 0;
    const char *h = hash ? hash : "sha256";
    if (strcmp(h, "sha1") == 0)
        *md = EVP_sha1();
    else if (strcmp(h, "sha256") == 0)
        *md = EVP_sha256();
    else if (strcmp(h, "sha384") == 0)
        *md = EVP_sha384();
    else if (strcmp(h, "sha512") == 0)
        *md = EVP_sha512();
    else
        return jj_error_set(err, JJ_EINVAL,
                            "unknown signature hash '%s' (sha1, sha256, sha384 or sha512)", h);
    return 0;
}

static int der_to_raw(const jj_sign_key *k, const unsigned char *der, size_t der_len,
                      unsigned char **raw, size_t *raw_len)
{
    const unsigned char *p = der;
    ECDSA_SIG *s = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    if (!s)
        return -1;
    size_t half = (size_t)k->curve_bytes;
    unsigned char *out = malloc(2 * half);
    int ok = out && BN_bn2binpad(ECDSA_SIG_get0_r(s), out, (int)half) == (int)half &&
             BN_bn2binpad(ECDSA_SIG_get0_s(s), out + half, (int)half) == (int)half;
    ECDSA_SIG_free(s);
    if (!ok) {
        free(out);
        return -1;
    }
    *raw = out;
    *raw_len = 2 * half;
    return 0;
}

/* raw r||s -> DER; -1 on a wrong length. */
static int raw_to_der(const jj_sign_key *k, const unsigned char *raw, size_t raw_len,
                      unsigned char **der, size_t *der_len)
{
    size_t half = (size_t)k->curve_bytes;
    if (raw_len != 2 * half)
        return -1;
    ECDSA_SIG *s = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, (int)half, NULL), *sv = BN_bin2bn(raw + half, (int)half, NULL);
    if (!s || !r || !sv || ECDSA_SIG_set0(s, r, sv) != 1) {
        ECDSA_SIG_free(s);
        BN_free(r);
        BN_free(sv);
        return -1;
    }
    unsigned char *out = NULL;
    int n = i2d_ECDSA_SIG(s, &out);
    ECDSA_SIG_free(s);
    if (n <= 0)
        return -1;
    *der = out; /* OPENSSL_malloc'ed: freed with OPENSSL_free */
    *der_len = (size_t)n;
    return 0;
}

int jj_sign(const jj_sign_key *k, const char *hash, int ecdsa_form, const void *data, size_t n,
            unsigned char **sig, size_t *sig_len, jj_error *err)
{
    jj_error_clear(err);
    *sig = NULL;
    const EVP_MD *md;
    if (pick_md(k, hash, &md, err) != 0)
        return err->code;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t len = 0;
    unsigned char *out = NULL;
    int ok = ctx && EVP_DigestSignInit(ctx, NULL, md, NULL, k->pkey) == 1 &&
             EVP_DigestSign(ctx, NULL, &len, data, n) == 1 && (out = malloc(len ? len : 1)) &&
             EVP_DigestSign(ctx, out, &len, data, n) == 1;
    EVP_MD_CTX_free(ctx);
    if (!ok) {
        free(out);
        return ossl_fail(err, JJ_ECRYPTO, "sign");
    }
    if (k->type == JJ_SIGN_ECDSA && ecdsa_form == JJ_SIGN_ECDSA_RAW) {
        unsigned char *raw = NULL;
        size_t raw_len = 0;
        int rc = der_to_raw(k, out, len, &raw, &raw_len);
        free(out);
        if (rc != 0)
            return ossl_fail(err, JJ_ECRYPTO, "sign: ECDSA signature conversion");
        out = raw;
        len = raw_len;
    }
    *sig = out;
    *sig_len = len;
    return 0;
}

int jj_sign_verify(const jj_sign_key *k, const char *hash, int ecdsa_form, const void *data,
                   size_t n, const unsigned char *sig, size_t sig_len, jj_error *err)
{
    jj_error_clear(err);
    const EVP_MD *md;
    if (pick_md(k, hash, &md, err) != 0)
        return err->code;
    unsigned char *der = NULL;
    if (k->type == JJ_SIGN_ECDSA && ecdsa_form == JJ_SIGN_ECDSA_RAW) {
        size_t der_len = 0;
        if (raw_to_der(k, sig, sig_len, &der, &der_len) != 0) {
            ERR_clear_error();
            return 0;
        }
        sig = der;
        sig_len = der_len;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int rc = -1;
    if (ctx && EVP_DigestVerifyInit(ctx, NULL, md, NULL, k->pkey) == 1)
        rc = EVP_DigestVerify(ctx, sig, sig_len, data, n);
    EVP_MD_CTX_free(ctx);
    OPENSSL_free(der);
    if (rc == 1)
        return 1;
    ERR_clear_error();
    if (!ctx)
        return jj_error_set(err, JJ_ENOMEM, "verify: out of memory");
    return 0;
}

/* --- public parts ---------------------------------------------------------- */

typedef struct wbuf {
    unsigned char *p;
    size_t len, cap;
    int oom;
} wbuf;

static void w_bytes(wbuf *b, const void *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->len + n)
            cap *= 2;
        unsigned char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void w_string(wbuf *b, const void *s, size_t n)
{
    unsigned char h[4] = {(unsigned char)(n >> 24), (unsigned char)(n >> 16),
                          (unsigned char)(n >> 8), (unsigned char)n};
    w_bytes(b, h, 4);
    w_bytes(b, s, n);
}

static int w_mpint(wbuf *b, const BIGNUM *bn)
{
    int n = BN_num_bytes(bn);
    unsigned char *tmp = malloc((size_t)n + 1);
    if (!tmp)
        return -1;
    tmp[0] = 0;
    BN_bn2bin(bn, tmp + 1);
    /* a leading zero byte only when the top bit is set */
    int lead = (n > 0 && (tmp[1] & 0x80)) ? 0 : 1;
    w_string(b, tmp + lead, (size_t)n + 1 - (size_t)lead);
    free(tmp);
    return 0;
}

int jj_sign_public_blob(const jj_sign_key *k, unsigned char **out, size_t *out_len,
                        jj_error *err)
{
    jj_error_clear(err);
    wbuf b = {0};
    int ok = 1;
    w_string(&b, k->ssh_type, strlen(k->ssh_type));
    if (k->type == JJ_SIGN_RSA) {
        BIGNUM *n = NULL, *e = NULL;
        ok = EVP_PKEY_get_bn_param(k->pkey, OSSL_PKEY_PARAM_RSA_N, &n) == 1 &&
             EVP_PKEY_get_bn_param(k->pkey, OSSL_PKEY_PARAM_RSA_E, &e) == 1 &&
             w_mpint(&b, e) == 0 && w_mpint(&b, n) == 0;
        BN_free(n);
        BN_free(e);
    } else if (k->type == JJ_SIGN_ECDSA) {
        unsigned char q[256];
        size_t qlen = 0;
        ok = EVP_PKEY_get_octet_string_param(k->pkey, OSSL_PKEY_PARAM_PUB_KEY, q, sizeof q,
                                             &qlen) == 1;
        w_string(&b, k->ssh_curve, strlen(k->ssh_curve));
        w_string(&b, q, qlen);
    } else {
        unsigned char pub[32];
        size_t plen = sizeof pub;
        ok = EVP_PKEY_get_raw_public_key(k->pkey, pub, &plen) == 1;
        w_string(&b, pub, plen);
    }
    if (!ok || b.oom) {
        free(b.p);
        return b.oom ? jj_error_set(err, JJ_ENOMEM, "public key: out of memory")
                     : ossl_fail(err, JJ_ECRYPTO, "public key");
    }
    *out = b.p;
    *out_len = b.len;
    return 0;
}

int jj_sign_public_pem(const jj_sign_key *k, char **out, jj_error *err)
{
    jj_error_clear(err);
    BIO *bio = BIO_new(BIO_s_mem());
    if (!bio || PEM_write_bio_PUBKEY(bio, k->pkey) != 1) {
        BIO_free(bio);
        return ossl_fail(err, JJ_ECRYPTO, "public key PEM");
    }
    char *p = NULL;
    long n = BIO_get_mem_data(bio, &p);
    char *s = malloc((size_t)n + 1);
    if (s) {
        memcpy(s, p, (size_t)n);
        s[n] = '\0';
    }
    BIO_free(bio);
    if (!s)
        return jj_error_set(err, JJ_ENOMEM, "public key PEM: out of memory");
    *out = s;
    return 0;
}

int jj_sign_fingerprint_md5(const jj_sign_key *k, char out[JJ_SIGN_FP_MD5_SIZE], jj_error *err)
{
    unsigned char *blob = NULL, md[16];
    size_t len = 0;
    int rc = jj_sign_public_blob(k, &blob, &len, err);
    if (rc != 0)
        return rc;
    unsigned int mdlen = 0;
    int ok = EVP_Digest(blob, len, md, &mdlen, EVP_md5(), NULL) == 1;
    free(blob);
    if (!ok)
        return ossl_fail(err, JJ_ECRYPTO, "MD5 fingerprint");
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[3 * i] = digits[md[i] >> 4];
        out[3 * i + 1] = digits[md[i] & 15];
        out[3 * i + 2] = i < 15 ? ':' : '\0';
    }
    return 0;
}

int jj_sign_fingerprint_sha256(const jj_sign_key *k, char out[JJ_SIGN_FP_SHA256_SIZE],
                               jj_error *err)
{
    unsigned char *blob = NULL, md[32];
    size_t len = 0;
    int rc = jj_sign_public_blob(k, &blob, &len, err);
    if (rc != 0)
        return rc;
    unsigned int mdlen = 0;
    int ok = EVP_Digest(blob, len, md, &mdlen, EVP_sha256(), NULL) == 1;
    free(blob);
    if (!ok)
        return ossl_fail(err, JJ_ECRYPTO, "SHA256 fingerprint");
    unsigned char b64[48];
    EVP_EncodeBlock(b64, md, 32); /* 44 chars, the last one '=' */
    memcpy(out, "SHA256:", 7);
    memcpy(out + 7, b64, 43);
    out[50] = '\0';
    return 0;
}
