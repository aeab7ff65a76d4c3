/* x509.c: the environment CA, the state-server certificate, inspection (see x509.h). */
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
    return jj_crypto_dup_range(data ? data : "", (size_t)n);
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
        rc = jj_crypto_fail(err, JJ_ECRYPTO, "cannot encode certificate and key");
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
    return ok ? 0 : jj_crypto_fail(err, JJ_ECRYPTO, "cannot set serial number");
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
        return jj_crypto_fail(err, JJ_ECRYPTO, "cannot set validity");
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
        return jj_crypto_fail(err, JJ_ECRYPTO, "cannot set subject");
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
        return jj_crypto_fail(err, JJ_ECRYPTO, what);
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
        return jj_crypto_fail(err, JJ_ECRYPTO, "cannot sign certificate");
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
        rc = jj_crypto_fail(err, JJ_ECRYPTO, "cannot generate CA key");
        goto out;
    }
    if (!X509_set_version(x, X509_VERSION_3) || !X509_set_pubkey(x, key)) {
        rc = jj_crypto_fail(err, JJ_ECRYPTO, "cannot build CA certificate");
        goto out;
    }
    if ((rc = set_random_serial(x, err)) || (rc = set_validity(x, opts, err)) ||
        (rc = set_subject(x, cn, cn_len, err)))
        goto out;
    if (!X509_set_issuer_name(x, X509_get_subject_name(x))) {
        rc = jj_crypto_fail(err, JJ_ECRYPTO, "cannot set issuer");
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
        return jj_crypto_fail(err, JJ_ENOMEM, "cannot read certificate");
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
            rc = jj_crypto_fail(err, JJ_EINVAL, msg);
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
int jj_x509_read_private_key(const char *pem, size_t len, const char *what, EVP_PKEY **out,
                             jj_error *err)
{
    char msg[128];
    if (len > INT_MAX)
        return jj_error_set(err, JJ_EINVAL, "%s too large", what);
    ERR_clear_error();
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio)
        return jj_crypto_fail(err, JJ_ENOMEM, "cannot read private key");
    EVP_PKEY *key = PEM_read_bio_PrivateKey(bio, NULL, no_password, NULL);
    BIO_free(bio);
    if (!key) {
        if (has_substring(pem, len, "ENCRYPTED")) {
            snprintf(msg, sizeof msg, "cannot parse %s (encrypted keys are not supported)", what);
            return jj_crypto_fail(err, JJ_EINVAL, msg);
        }
        if (!has_substring(pem, len, "PRIVATE KEY-----")) {
            ERR_clear_error();
            return jj_error_set(err, JJ_EINVAL, "no %s found", what);
        }
        snprintf(msg, sizeof msg, "cannot parse %s", what);
        return jj_crypto_fail(err, JJ_EINVAL, msg);
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
    if ((rc = jj_x509_read_private_key(key_pem, key_len, "CA private key", &key, err)))
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
        return jj_crypto_fail(err, JJ_ENOMEM, "out of memory");
    }
    if (ip) {
        GENERAL_NAME_set0_value(g, GEN_IPADD, ip);
    } else {
        ASN1_IA5STRING *dns = ASN1_IA5STRING_new();
        if (!dns || !ASN1_STRING_set(dns, host, -1)) {
            ASN1_IA5STRING_free(dns);
            GENERAL_NAME_free(g);
            return jj_crypto_fail(err, JJ_ENOMEM, "out of memory");
        }
        GENERAL_NAME_set0_value(g, GEN_DNS, dns);
    }
    if (!sk_GENERAL_NAME_push(gens, g)) {
        GENERAL_NAME_free(g);
        return jj_crypto_fail(err, JJ_ENOMEM, "out of memory");
    }
    return 0;
}

static int add_sans(X509 *x, const jj_cert_opts *opts, jj_error *err)
{
    static const char *const fixed[] = {"*", "juju-apiserver", "juju-mongodb", "localhost"};
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    if (!gens)
        return jj_crypto_fail(err, JJ_ENOMEM, "out of memory");
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof fixed / sizeof fixed[0]; i++)
        rc = add_san(gens, fixed[i], err);
    for (size_t i = 0; rc == 0 && i < opts->n_hostnames; i++)
        rc = opts->hostnames[i] ? add_san(gens, opts->hostnames[i], err)
                                : jj_error_set(err, JJ_EINVAL, "hostname %zu is NULL", i + 1);
    if (rc == 0 && X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) != 1)
        rc = jj_crypto_fail(err, JJ_ECRYPTO, "cannot add subjectAltName extension");
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
        rc = jj_crypto_fail(err, JJ_ENOMEM, "out of memory");
        goto out;
    }
    if (ski) {
        if (!ASN1_STRING_set(akid->keyid, ASN1_STRING_get0_data(ski), ASN1_STRING_length(ski)))
            rc = jj_crypto_fail(err, JJ_ENOMEM, "out of memory");
    } else if (X509_pubkey_digest(ca, EVP_sha1(), md, &md_len) != 1 ||
               !ASN1_STRING_set(akid->keyid, md, (int)md_len)) {
        rc = jj_crypto_fail(err, JJ_ECRYPTO, "cannot compute authority key id");
    }
    if (rc == 0 &&
        X509_add1_ext_i2d(x, NID_authority_key_identifier, akid, 0, X509V3_ADD_DEFAULT) != 1)
        rc = jj_crypto_fail(err, JJ_ECRYPTO, "cannot add authorityKeyIdentifier extension");
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
        rc = jj_crypto_fail(err, JJ_ECRYPTO, "cannot generate server key");
        goto out;
    }
    if (!X509_set_version(x, X509_VERSION_3) || !X509_set_pubkey(x, key) ||
        !X509_set_issuer_name(x, X509_get_subject_name(ca))) {
        rc = jj_crypto_fail(err, JJ_ECRYPTO, "cannot build server certificate");
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
        *out = jj_crypto_dup_range((const char *)ASN1_STRING_get0_data(g->d.dNSName),
                         (size_t)ASN1_STRING_length(g->d.dNSName));
        return *out ? 0 : -1;
    }
    if (g->type == GEN_IPADD) {
        int n = ASN1_STRING_length(g->d.iPAddress);
        char text[INET6_ADDRSTRLEN];
        const unsigned char *addr = ASN1_STRING_get0_data(g->d.iPAddress);
        if ((n == 4 && inet_ntop(AF_INET, addr, text, sizeof text)) ||
            (n == 16 && inet_ntop(AF_INET6, addr, text, sizeof text))) {
            *out = jj_crypto_dup_range(text, strlen(text));
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
        rc = jj_crypto_fail(err, JJ_ENOMEM, "cannot describe certificate");
        goto out;
    }
    if (asn1_time_to_unix(X509_get0_notBefore(x), &info->not_before) ||
        asn1_time_to_unix(X509_get0_notAfter(x), &info->not_after)) {
        rc = jj_crypto_fail(err, JJ_EINVAL, "certificate has an invalid validity period");
        goto out;
    }
    if (X509_digest(x, EVP_sha256(), md, &md_len) != 1 || md_len != sizeof md) {
        rc = jj_crypto_fail(err, JJ_ECRYPTO, "cannot compute fingerprint");
        goto out;
    }
    jj_hex_encode_colons(md, sizeof md, true, info->fingerprint_sha256);
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

