/* test_crypto.c: CTest suite for core/crypto.
 *
 * Known-answer vectors (RFC 4648, FIPS 180-2, PBKDF2-HMAC-SHA512 as printed
 * by `openssl kdf`, an ssh-keygen fingerprint) plus structural checks of
 * everything random: certificates are verified with X509_verify_cert and
 * inspected through OpenSSL, the OpenSSH key blob is taken apart by hand.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "check.h"
#include "crypto.h"

/* ---- helpers ---- */

static X509 *parse_cert(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    return x;
}

static EVP_PKEY *parse_key(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    BIO_free(b);
    return k;
}

/* X509_verify_cert of leaf against ca as the only trust anchor. */
static int verify_against(const char *ca_pem, const char *leaf_pem)
{
    X509 *ca = parse_cert(ca_pem), *leaf = parse_cert(leaf_pem);
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int ok = -1;
    if (ca && leaf && store && ctx && X509_STORE_add_cert(store, ca) == 1 &&
        X509_STORE_CTX_init(ctx, store, leaf, NULL) == 1) {
        X509_VERIFY_PARAM_set_purpose(X509_STORE_CTX_get0_param(ctx), X509_PURPOSE_SSL_SERVER);
        ok = X509_verify_cert(ctx);
        if (ok != 1)
            fprintf(stderr, "verify: %s\n",
                    X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
    }
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    X509_free(ca);
    X509_free(leaf);
    return ok;
}

static bool has_san(const jj_cert_info *info, const char *want)
{
    for (size_t i = 0; i < info->n_sans; i++)
        if (strcmp(info->sans[i], want) == 0)
            return true;
    return false;
}

static char *concat(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    char *out = malloc(na + nb + 1);
    memcpy(out, a, na);
    memcpy(out + na, b, nb + 1);
    return out;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Reads one SSH string at *off; returns its length or -1. */
static long ssh_string(const unsigned char *p, size_t len, size_t *off, const unsigned char **s)
{
    if (len - *off < 4)
        return -1;
    uint32_t n = be32(p + *off);
    if (len - *off - 4 < n)
        return -1;
    *s = p + *off + 4;
    *off += 4 + n;
    return (long)n;
}

/* ---- encodings ---- */

static void test_hex(void)
{
    char out[64];
    jj_hex_encode("\x00\x01\xab\xff", 4, out);
    CHECK_STR(out, "0001abff");
    jj_hex_encode("", 0, out);
    CHECK_STR(out, "");

    unsigned char raw[32];
    size_t n = 0;
    jj_error err;
    CHECK_INT(jj_hex_decode("0001ABff", 8, raw, &n, &err), 0);
    CHECK_INT(n, 4);
    CHECK(memcmp(raw, "\x00\x01\xab\xff", 4) == 0);
    CHECK_INT(jj_hex_decode("abc", 3, raw, &n, &err), JJ_EINVAL);
    CHECK_INT(jj_hex_decode("zz", 2, raw, &n, &err), JJ_EINVAL);
    CHECK(strstr(err.message, "hex") != NULL);

    /* round trip of every byte value */
    unsigned char all[256], back[256];
    char hex[513];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    jj_hex_encode(all, sizeof all, hex);
    CHECK_INT(jj_hex_decode(hex, 512, back, &n, &err), 0);
    CHECK_INT(n, 256);
    CHECK(memcmp(all, back, 256) == 0);
}

static void test_base64_vectors(void)
{
    static const char *const vectors[][2] = {
        {"", ""},          {"f", "Zg=="},         {"fo", "Zm8="},
        {"foo", "Zm9v"},   {"foob", "Zm9vYg=="},  {"fooba", "Zm9vYmE="},
        {"foobar", "Zm9vYmFy"},
    };
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        const char *plain = vectors[i][0], *enc = vectors[i][1];
        char out[32];
        CHECK_INT(jj_base64_encoded_size(strlen(plain)), strlen(enc) + 1);
        jj_base64_encode(plain, strlen(plain), out);
        CHECK_STR(out, enc);

        unsigned char dec[32];
        size_t n = 99;
        jj_error err;
        CHECK_INT(jj_base64_decode(enc, strlen(enc), dec, &n, &err), 0);
        CHECK_INT(n, strlen(plain));
        CHECK(memcmp(dec, plain, n) == 0);

        /* without padding */
        size_t unpadded = strcspn(enc, "=");
        CHECK_INT(jj_base64_decode(enc, unpadded, dec, &n, &err), 0);
        CHECK_INT(n, strlen(plain));
        CHECK(memcmp(dec, plain, n) == 0);
    }
}

static void test_base64_decode_edges(void)
{
    unsigned char dec[64];
    size_t n = 0;
    jj_error err;
    const char *wrapped = "Zm9v\nYmFy\r\n Zm9v\tYg==\n";
    CHECK_INT(jj_base64_decode(wrapped, strlen(wrapped), dec, &n, &err), 0);
    CHECK_INT(n, 10);
    CHECK(memcmp(dec, "foobarfoob", 10) == 0);

    static const char *const bad[] = {"Z", "Zg=", "Zg===", "Zm9v!", "Zg==Zg==", "Zh==",
                                      "=Zg", "Zm9=", "Zm9vY"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = jj_base64_decode(bad[i], strlen(bad[i]), dec, &n, &err);
        if (rc != JJ_EINVAL)
            fprintf(stderr, "accepted bad base64 \"%s\"\n", bad[i]);
        CHECK_INT(rc, JJ_EINVAL);
    }

    unsigned char all[256], big[400];
    char enc[400];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)(255 - i);
    for (size_t len = 0; len <= 256; len += 37) {
        jj_base64_encode(all, len, enc);
        CHECK_INT(strlen(enc), jj_base64_encoded_size(len) - 1);
        CHECK_INT(jj_base64_decode(enc, strlen(enc), big, &n, &err), 0);
        CHECK_INT(n, len);
        CHECK(memcmp(big, all, len) == 0);
    }
}

/* ---- digests ---- */

static void digest_hex(jj_digest_alg alg, const char *s, char *out)
{
    unsigned char md[JJ_DIGEST_MAX];
    jj_error err;
    CHECK_INT(jj_digest(alg, s, strlen(s), md, &err), 0);
    jj_hex_encode(md, jj_digest_size(alg), out);
}

static void test_sha_vectors(void)
{
    char hex[129];
    digest_hex(JJ_DIGEST_SHA256, "abc", hex);
    CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    digest_hex(JJ_DIGEST_SHA256, "", hex);
    CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    digest_hex(JJ_DIGEST_SHA512, "abc", hex);
    CHECK_STR(hex, "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
                   "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
    digest_hex(JJ_DIGEST_SHA256, "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", hex);
    CHECK_STR(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void test_hasher_streaming(void)
{
    size_t total = 1000003;
    unsigned char *data = malloc(total);
    jj_error err;
    CHECK_INT(jj_random_bytes(data, total, &err), 0);
    for (int a = 0; a < 2; a++) {
        jj_digest_alg alg = a ? JJ_DIGEST_SHA512 : JJ_DIGEST_SHA256;
        unsigned char one[JJ_DIGEST_MAX], streamed[JJ_DIGEST_MAX], again[JJ_DIGEST_MAX];
        CHECK_INT(jj_digest(alg, data, total, one, &err), 0);
        jj_hasher *h = NULL;
        CHECK_INT(jj_hasher_new(alg, &h, &err), 0);
        CHECK_INT(jj_hasher_size(h), jj_digest_size(alg));
        size_t off = 0, step = 1;
        while (off < total) {
            size_t n = step < total - off ? step : total - off;
            CHECK_INT(jj_hasher_update(h, data + off, n, &err), 0);
            off += n;
            step = step * 3 + 1;
        }
        CHECK_INT(jj_hasher_final(h, streamed, &err), 0);
        CHECK_INT(jj_hasher_final(h, again, &err), 0);
        CHECK(memcmp(one, streamed, jj_digest_size(alg)) == 0);
        CHECK(memcmp(one, again, jj_digest_size(alg)) == 0);
        /* the stream goes on after a digest was read */
        CHECK_INT(jj_hasher_update(h, "x", 1, &err), 0);
        CHECK_INT(jj_hasher_final(h, again, &err), 0);
        CHECK(memcmp(one, again, jj_digest_size(alg)) != 0);
        jj_hasher_free(h);
    }
    free(data);
}

static void test_sha256_file(void)
{
    char path[] = "/tmp/jj-crypto-test-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    size_t total = 200000; /* spans several read chunks */
    unsigned char *data = malloc(total);
    jj_error err;
    CHECK_INT(jj_random_bytes(data, total, &err), 0);
    CHECK_INT(write(fd, data, total), total);
    close(fd);

    unsigned char want[32], got[32];
    uint64_t size = 0;
    CHECK_INT(jj_digest(JJ_DIGEST_SHA256, data, total, want, &err), 0);
    CHECK_INT(jj_sha256_file(path, got, &size, &err), 0);
    CHECK_INT(size, total);
    CHECK(memcmp(want, got, 32) == 0);
    unlink(path);
    free(data);

    CHECK_INT(jj_sha256_file(path, got, &size, &err), JJ_ENOENT);
    CHECK(strstr(err.message, path) != NULL);
    CHECK(jj_sha256_file("/tmp", got, &size, &err) < 0);
}

/* ---- passwords ---- */

static void test_pbkdf2_vectors(void)
{
    unsigned char out[64];
    char hex[129];
    jj_error err;
    CHECK_INT(jj_pbkdf2_sha512("password", 8, "salt", 4, 1, out, 64, &err), 0);
    jj_hex_encode(out, 64, hex);
    CHECK_STR(hex, "867f70cf1ade02cff3752599a3a53dc4af34c7a669815ae5d513554e1c8cf252"
                   "c02d470a285a0501bad999bfe943c08f050235d7d68b1da55e63f73b60a57fce");
    CHECK_INT(jj_pbkdf2_sha512("password", 8, "salt", 4, 2, out, 64, &err), 0);
    jj_hex_encode(out, 64, hex);
    CHECK_STR(hex, "e1d9c16aa681708a45f5c7c4e215ceb66e011a2e9f0040713f18aefdb866d53c"
                   "f76cab2868a39b9f7840edce4fef5a82be67335c77a6068e04112754f27ccf4e");
    CHECK_INT(jj_pbkdf2_sha512("password", 8, "salt", 4, 0, out, 64, &err), JJ_EINVAL);
}

static void test_juju_password_hashes(void)
{
    char hash[JJ_PASSWORD_SIZE];
    jj_error err;
    /* openssl kdf -keylen 18 -kdfopt digest:SHA512 -kdfopt pass:foo
     *   -kdfopt hexsalt:758281ca -kdfopt iter:8192 PBKDF2 */
    static const unsigned char want[18] = {0xD5, 0xAA, 0x9F, 0x61, 0x91, 0x54, 0x81, 0x04, 0x1D,
                                           0xF2, 0x4A, 0xE6, 0x21, 0x30, 0x15, 0x76, 0xCC, 0x3C};
    char want_b64[JJ_PASSWORD_SIZE];
    jj_base64_encode(want, sizeof want, want_b64);
    CHECK_INT(jj_user_password_hash("foo", 3, jj_compat_salt, JJ_COMPAT_SALT_LEN, hash, &err), 0);
    CHECK_STR(hash, want_b64);
    CHECK_INT(strlen(hash), 24);
    CHECK(strchr(hash, '=') == NULL);

    /* agent hash: first 18 bytes of SHA-512 */
    unsigned char md[64];
    char expect[JJ_PASSWORD_SIZE];
    CHECK_INT(jj_digest(JJ_DIGEST_SHA512, "secret-pw", 9, md, &err), 0);
    jj_base64_encode(md, 18, expect);
    CHECK_INT(jj_agent_password_hash("secret-pw", 9, hash, &err), 0);
    CHECK_STR(hash, expect);
    CHECK_INT(strlen(hash), 24);

    char p1[JJ_PASSWORD_SIZE], p2[JJ_PASSWORD_SIZE];
    CHECK_INT(jj_random_password(p1, &err), 0);
    CHECK_INT(jj_random_password(p2, &err), 0);
    CHECK_INT(strlen(p1), 24);
    CHECK(strcmp(p1, p2) != 0);
    unsigned char raw[32];
    size_t n = 0;
    CHECK_INT(jj_base64_decode(p1, 24, raw, &n, &err), 0);
    CHECK_INT(n, 18);

    char s1[JJ_ADMIN_SECRET_SIZE], s2[JJ_ADMIN_SECRET_SIZE];
    CHECK_INT(jj_admin_secret(s1, &err), 0);
    CHECK_INT(jj_admin_secret(s2, &err), 0);
    CHECK_INT(strlen(s1), 32);
    CHECK_INT(strspn(s1, "0123456789abcdef"), 32);
    CHECK(strcmp(s1, s2) != 0);
}

static void test_uuid(void)
{
    jj_error err;
    char prev[JJ_UUID_SIZE] = "";
    for (int i = 0; i < 50; i++) {
        char u[JJ_UUID_SIZE];
        CHECK_INT(jj_uuid4(u, &err), 0);
        CHECK_INT(strlen(u), 36);
        CHECK(u[8] == '-' && u[13] == '-' && u[18] == '-' && u[23] == '-');
        CHECK(u[14] == '4');                         /* version */
        CHECK(strchr("89ab", u[19]) != NULL);        /* variant 10xx */
        CHECK(jj_is_uuid(u, 36));
        for (int k = 0; k < 36; k++)
            CHECK(u[k] == '-' || strchr("0123456789abcdef", u[k]));
        CHECK(strcmp(u, prev) != 0);
        memcpy(prev, u, sizeof u);
    }
    CHECK(jj_is_uuid("6BA7B810-9DAD-11D1-80B4-00C04FD430C8", 36));
    CHECK(!jj_is_uuid("6ba7b810-9dad-11d1-80b4-00c04fd430c", 35));
    CHECK(!jj_is_uuid("6ba7b810-9dad-11d1-80b4x00c04fd430c8", 36));
    CHECK(!jj_is_uuid("6ba7b810-9dad-11d1-80b4-00c04fd430cg", 36));
    CHECK(!jj_is_uuid("", 0));
}

/* ---- X.509 ---- */

static void check_ca_cert(const char *pem, int64_t now, const char *key_type)
{
    jj_cert_info info;
    jj_error err;
    CHECK_INT(jj_cert_info_parse(pem, strlen(pem), &info, &err), 0);
    CHECK_STR(info.subject, "CN=juju-generated CA for environment \\\"testenv\\\",O=juju");
    CHECK_STR(info.issuer, info.subject);
    CHECK(info.is_ca);
    CHECK_STR(info.key_type, key_type);
    CHECK_INT(info.not_before, now - 7 * 86400);
    struct tm tm;
    time_t t = (time_t)now;
    gmtime_r(&t, &tm);
    tm.tm_year += 10;
    CHECK_INT(info.not_after, (int64_t)timegm(&tm));
    CHECK(strcmp(info.serial_hex, "0") != 0 && info.serial_hex[0] != '-');
    CHECK(strlen(info.serial_hex) <= 32);
    CHECK(strlen(info.serial_hex) == 32 ? strchr("01234567", info.serial_hex[0]) != NULL : 1);
    CHECK_INT(strlen(info.fingerprint_sha256), 95);
    jj_cert_info_free(&info);

    X509 *x = parse_cert(pem);
    CHECK(x != NULL);
    if (!x)
        return;
    uint32_t ku = X509_get_key_usage(x);
    CHECK(ku & KU_KEY_CERT_SIGN);
    CHECK(ku & KU_CRL_SIGN);
    CHECK(ku & KU_DIGITAL_SIGNATURE);
    CHECK(X509_get0_subject_key_id(x) != NULL);
    int crit = -1;
    BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
    CHECK(bc && bc->ca);
    CHECK_INT(crit, 1);
    BASIC_CONSTRAINTS_free(bc);
    if (strcmp(key_type, "ED25519") != 0)
        CHECK_INT(X509_get_signature_nid(x),
                  strcmp(key_type, "RSA") == 0 ? NID_sha256WithRSAEncryption
                                               : NID_ecdsa_with_SHA256);
    X509_free(x);
}

static void test_ca_and_server_cert(void)
{
    static const struct {
        jj_key_type type;
        const char *name;
    } kinds[] = {{JJ_KEY_ECDSA_P256, "EC"}, {JJ_KEY_RSA2048, "RSA"}, {JJ_KEY_ED25519, "ED25519"}};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        jj_cert_opts opts;
        jj_cert_opts_init(&opts);
        opts.key = kinds[k].type;
        opts.now_set = true;
        opts.now = 1700000000;
        char *ca = NULL, *ca_key = NULL, *srv = NULL, *srv_key = NULL;
        jj_error err;
        CHECK_INT(jj_new_ca("testenv", &opts, &ca, &ca_key, &err), 0);
        if (!ca)
            continue;
        CHECK(strstr(ca_key, "-----BEGIN PRIVATE KEY-----") == ca_key);
        check_ca_cert(ca, opts.now, kinds[k].name);
        CHECK_INT(jj_check_ca_pair(ca, strlen(ca), ca_key, strlen(ca_key), &err), 0);

        static const char *const hosts[] = {"10.1.2.3", "example.com", "::1", "localhost"};
        jj_cert_opts sopts;
        jj_cert_opts_init(&sopts);
        sopts.hostnames = hosts;
        sopts.n_hostnames = 4;
        CHECK_INT(jj_new_server_cert(ca, strlen(ca), ca_key, strlen(ca_key), &sopts, &srv,
                                     &srv_key, &err),
                  0);
        if (!srv) {
            fprintf(stderr, "new_server_cert: %s\n", err.message);
            free(ca);
            jj_secret_free(ca_key);
            continue;
        }
        CHECK_INT(verify_against(ca, srv), 1);

        jj_cert_info info;
        CHECK_INT(jj_cert_info_parse(srv, strlen(srv), &info, &err), 0);
        CHECK_STR(info.subject, "CN=*,O=juju");
        CHECK(!info.is_ca);
        CHECK_STR(info.key_type, "EC");
        CHECK_INT(info.key_bits, 256);
        CHECK_INT(info.n_sans, 7); /* localhost only once */
        CHECK(has_san(&info, "*") && has_san(&info, "juju-apiserver") &&
              has_san(&info, "juju-mongodb") && has_san(&info, "localhost") &&
              has_san(&info, "10.1.2.3") && has_san(&info, "example.com") &&
              has_san(&info, "::1"));
        time_t now = time(NULL);
        CHECK(info.not_before <= now - 7 * 86400 + 60 && info.not_before >= now - 7 * 86400 - 60);
        jj_cert_info_free(&info);

        X509 *x = parse_cert(srv);
        EVP_PKEY *sk = parse_key(srv_key);
        CHECK(x && sk && X509_check_private_key(x, sk) == 1);
        uint32_t ku = X509_get_key_usage(x);
        CHECK(ku & KU_DIGITAL_SIGNATURE);
        CHECK(ku & KU_KEY_AGREEMENT);
        CHECK(!(ku & KU_KEY_CERT_SIGN));
        uint32_t eku = X509_get_extended_key_usage(x);
        CHECK(eku & XKU_SSL_SERVER);
        CHECK(eku & XKU_SSL_CLIENT);
        CHECK(X509_get0_authority_key_id(x) != NULL);
        X509 *cax = parse_cert(ca);
        CHECK(cax && ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(x),
                                           X509_get0_subject_key_id(cax)) == 0);
        X509_free(cax);
        EVP_PKEY_free(sk);
        X509_free(x);

        /* the server cert is no CA: it cannot sign */
        char *bad = NULL, *bad_key = NULL;
        CHECK_INT(jj_new_server_cert(srv, strlen(srv), srv_key, strlen(srv_key), NULL, &bad,
                                     &bad_key, &err),
                  JJ_EINVAL);
        CHECK_STR(err.message, "CA certificate is not a valid CA");
        CHECK(bad == NULL && bad_key == NULL);

        free(ca);
        jj_secret_free(ca_key);
        free(srv);
        jj_secret_free(srv_key);
    }
}

static void test_rsa_server_key_usage(void)
{
    char *ca = NULL, *ca_key = NULL, *srv = NULL, *srv_key = NULL;
    jj_error err;
    CHECK_INT(jj_new_ca("e", NULL, &ca, &ca_key, &err), 0);
    jj_cert_opts opts;
    jj_cert_opts_init(&opts);
    opts.key = JJ_KEY_RSA2048;
    opts.years = 2;
    CHECK_INT(jj_new_server_cert(ca, strlen(ca), ca_key, strlen(ca_key), &opts, &srv, &srv_key,
                                 &err),
              0);
    if (srv) {
        CHECK_INT(verify_against(ca, srv), 1);
        X509 *x = parse_cert(srv);
        uint32_t ku = X509_get_key_usage(x);
        CHECK(ku & KU_KEY_ENCIPHERMENT);
        CHECK(!(ku & KU_KEY_AGREEMENT));
        jj_cert_info info;
        CHECK_INT(jj_cert_info_parse(srv, strlen(srv), &info, &err), 0);
        CHECK_STR(info.key_type, "RSA");
        CHECK_INT(info.key_bits, 2048);
        CHECK(info.not_after - info.not_before > 2 * 365 * 86400);
        CHECK(info.not_after - info.not_before < 3 * 365 * 86400);
        jj_cert_info_free(&info);
        X509_free(x);
    }
    free(ca);
    jj_secret_free(ca_key);
    free(srv);
    jj_secret_free(srv_key);
}

static void test_ca_pair_errors(void)
{
    char *ca1 = NULL, *key1 = NULL, *ca2 = NULL, *key2 = NULL, *srv = NULL, *srv_key = NULL;
    jj_error err;
    CHECK_INT(jj_new_ca("one", NULL, &ca1, &key1, &err), 0);
    CHECK_INT(jj_new_ca("two", NULL, &ca2, &key2, &err), 0);
    if (!ca1 || !ca2)
        return;

    /* key of another CA */
    CHECK_INT(jj_check_ca_pair(ca1, strlen(ca1), key2, strlen(key2), &err), JJ_EINVAL);
    CHECK(strncmp(err.message, "bad CA certificate/key in configuration: ", 41) == 0);
    CHECK(strstr(err.message, "does not match") != NULL);
    CHECK_INT(jj_new_server_cert(ca1, strlen(ca1), key2, strlen(key2), NULL, &srv, &srv_key,
                                 &err),
              JJ_EINVAL);
    CHECK(strstr(err.message, "does not match") != NULL);
    CHECK(srv == NULL);

    /* two certificates */
    char *both = concat(ca1, ca2);
    CHECK_INT(jj_check_ca_pair(both, strlen(both), key1, strlen(key1), &err), JJ_EINVAL);
    CHECK(strstr(err.message, "more than one certificate for CA") != NULL);
    CHECK_INT(jj_new_server_cert(both, strlen(both), key1, strlen(key1), NULL, &srv, &srv_key,
                                 &err),
              JJ_EINVAL);
    CHECK_STR(err.message, "more than one certificate for CA");
    free(both);

    /* garbage */
    CHECK_INT(jj_check_ca_pair("", 0, key1, strlen(key1), &err), JJ_EINVAL);
    CHECK_INT(jj_check_ca_pair(ca1, strlen(ca1), "nope", 4, &err), JJ_EINVAL);
    const char *broken = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    CHECK_INT(jj_check_ca_pair(broken, strlen(broken), key1, strlen(key1), &err), JJ_EINVAL);
    CHECK(err.lib_code != 0); /* OpenSSL's reason is kept */

    /* bad options */
    jj_cert_opts opts;
    jj_cert_opts_init(&opts);
    opts.years = 0;
    CHECK_INT(jj_new_ca("x", &opts, &ca2, &key2, &err), JJ_EINVAL);
    CHECK_INT(jj_new_ca("", NULL, &ca2, &key2, &err), JJ_EINVAL);
    CHECK_INT(jj_new_ca("bad\nname", NULL, &ca2, &key2, &err), JJ_EINVAL);
    static const char *const bad_hosts[] = {"has space"};
    jj_cert_opts_init(&opts);
    opts.hostnames = bad_hosts;
    opts.n_hostnames = 1;
    CHECK_INT(jj_new_server_cert(ca1, strlen(ca1), key1, strlen(key1), &opts, &srv, &srv_key,
                                 &err),
              JJ_EINVAL);
    jj_key_type kt;
    CHECK_INT(jj_key_type_from_name("dsa", &kt, &err), JJ_EINVAL);
    CHECK_INT(jj_key_type_from_name("rsa3072", &kt, &err), 0);
    CHECK_INT(kt, JJ_KEY_RSA3072);

    free(ca1);
    jj_secret_free(key1);
    free(ca2);
    jj_secret_free(key2);
}

static void test_long_env_name(void)
{
    /* Longer than OpenSSL's 64-character commonName bound. */
    const char *name = "a-rather-long-environment-name-that-juju-would-accept-anyway-123";
    char *ca = NULL, *key = NULL;
    jj_error err;
    CHECK_INT(jj_new_ca(name, NULL, &ca, &key, &err), 0);
    if (ca) {
        jj_cert_info info;
        CHECK_INT(jj_cert_info_parse(ca, strlen(ca), &info, &err), 0);
        CHECK(strstr(info.subject, name) != NULL);
        jj_cert_info_free(&info);
    }
    free(ca);
    jj_secret_free(key);
}

/* ---- SSH ---- */

static void test_ssh_keygen_blob(void)
{
    char *priv = NULL, *pub = NULL;
    jj_error err;
    CHECK_INT(jj_ssh_keygen_ed25519("juju-client-key", &priv, &pub, &err), 0);
    if (!priv)
        return;
    const char *begin = "-----BEGIN OPENSSH PRIVATE KEY-----\n";
    const char *end = "-----END OPENSSH PRIVATE KEY-----\n";
    CHECK(strncmp(priv, begin, strlen(begin)) == 0);
    CHECK(strlen(priv) > strlen(end) &&
          strcmp(priv + strlen(priv) - strlen(end), end) == 0);

    /* every body line 70 columns but the last */
    const char *body = priv + strlen(begin);
    const char *body_end = strstr(body, "-----END");
    for (const char *line = body; line < body_end;) {
        const char *nl = strchr(line, '\n');
        size_t n = (size_t)(nl - line);
        if (nl + 1 < body_end)
            CHECK_INT(n, 70);
        else
            CHECK(n > 0 && n <= 70);
        line = nl + 1;
    }

    size_t cap = jj_base64_decoded_max((size_t)(body_end - body)), len = 0;
    unsigned char *raw = malloc(cap);
    CHECK_INT(jj_base64_decode(body, (size_t)(body_end - body), raw, &len, &err), 0);
    CHECK(len > 15 && memcmp(raw, "openssh-key-v1\0", 15) == 0);
    size_t off = 15;
    const unsigned char *s, *pubblob, *sect;
    CHECK_INT(ssh_string(raw, len, &off, &s), 4);
    CHECK(memcmp(s, "none", 4) == 0); /* cipher */
    CHECK_INT(ssh_string(raw, len, &off, &s), 4);
    CHECK(memcmp(s, "none", 4) == 0); /* kdf */
    CHECK_INT(ssh_string(raw, len, &off, &s), 0); /* kdf options */
    CHECK(len - off >= 4 && be32(raw + off) == 1); /* one key */
    off += 4;
    long pubblob_len = ssh_string(raw, len, &off, &pubblob);
    CHECK_INT(pubblob_len, 51);
    long sect_len = ssh_string(raw, len, &off, &sect);
    CHECK_INT(off, len);
    CHECK(sect_len > 0 && sect_len % 8 == 0);
    if (pubblob_len != 51 || sect_len <= 0) {
        free(raw);
        return;
    }

    size_t p = 0;
    const unsigned char *key_pub;
    CHECK_INT(ssh_string(pubblob, 51, &p, &s), 11);
    CHECK(memcmp(s, "ssh-ed25519", 11) == 0);
    CHECK_INT(ssh_string(pubblob, 51, &p, &key_pub), 32);

    size_t q = 0, sl = (size_t)sect_len;
    CHECK(be32(sect) == be32(sect + 4)); /* check-ints equal */
    q = 8;
    CHECK_INT(ssh_string(sect, sl, &q, &s), 11);
    CHECK(memcmp(s, "ssh-ed25519", 11) == 0);
    CHECK_INT(ssh_string(sect, sl, &q, &s), 32);
    CHECK(memcmp(s, key_pub, 32) == 0);
    const unsigned char *sk;
    CHECK_INT(ssh_string(sect, sl, &q, &sk), 64);
    CHECK(memcmp(sk + 32, key_pub, 32) == 0); /* seed || public */
    CHECK_INT(ssh_string(sect, sl, &q, &s), 15);
    CHECK(memcmp(s, "juju-client-key", 15) == 0);
    for (unsigned char want = 1; q < sl; want++)
        CHECK_INT(sect[q++], want); /* padding 1, 2, 3 ... */

    /* the seed really generates the public key */
    EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, sk, 32);
    unsigned char derived[32];
    size_t dlen = sizeof derived;
    CHECK(k && EVP_PKEY_get_raw_public_key(k, derived, &dlen) == 1);
    CHECK(memcmp(derived, key_pub, 32) == 0);
    EVP_PKEY_free(k);

    /* the public line carries the same blob and the comment */
    char b64[80];
    jj_base64_encode(pubblob, 51, b64);
    char want_line[160];
    snprintf(want_line, sizeof want_line, "ssh-ed25519 %s juju-client-key", b64);
    CHECK_STR(pub, want_line);

    char *again = NULL;
    CHECK_INT(jj_ssh_public_from_private(priv, strlen(priv), &again, &err), 0);
    CHECK_STR(again, pub);
    free(again);

    /* a private key whose check-ints differ is corrupt */
    raw[off - (size_t)sect_len] ^= 1;
    char *tampered_b64 = malloc(jj_base64_encoded_size(len));
    jj_base64_encode(raw, len, tampered_b64);
    char *tampered = malloc(strlen(tampered_b64) + 100);
    sprintf(tampered, "%s%s\n%s", begin, tampered_b64, end);
    again = NULL;
    CHECK_INT(jj_ssh_public_from_private(tampered, strlen(tampered), &again, &err), JJ_EINVAL);
    CHECK(strstr(err.message, "check") != NULL);
    CHECK(again == NULL);
    free(tampered);
    free(tampered_b64);

    free(raw);
    jj_secret_free(priv);
    free(pub);

    /* no comment: the line ends after the key */
    CHECK_INT(jj_ssh_keygen_ed25519(NULL, &priv, &pub, &err), 0);
    CHECK(strchr(pub, ' ') == strrchr(pub, ' '));
    jj_secret_free(priv);
    free(pub);
    CHECK_INT(jj_ssh_keygen_ed25519("two\nlines", &priv, &pub, &err), JJ_EINVAL);
}

static void test_ssh_fingerprints(void)
{
    /* ssh-keygen -l -E sha256 / -E md5 of this key */
    const char *line = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICihq6H84DPRJAZ4cF/hWTA2y9TS5I7UHv7SJM7bX0Ot "
                       "my comment\n";
    char fp[JJ_SSH_FP_SHA256_SIZE], md5[JJ_SSH_FP_MD5_SIZE];
    jj_error err;
    CHECK_INT(jj_ssh_fingerprint_sha256(line, strlen(line), fp, &err), 0);
    CHECK_STR(fp, "SHA256:uf3X+/+07WE0q9I6ZGNsVM2/zyb/WYTh8kXJulNnMkc");
    CHECK_INT(jj_ssh_fingerprint_md5(line, strlen(line), md5, &err), 0);
    CHECK_STR(md5, "52:3a:61:97:e3:73:01:0b:c2:80:db:73:32:a0:9e:e9");

    jj_ssh_public pub;
    CHECK_INT(jj_ssh_parse_public(line, strlen(line), &pub, &err), 0);
    CHECK_STR(pub.type, "ssh-ed25519");
    CHECK_STR(pub.comment, "my comment");
    CHECK_INT(pub.blob_len, 51);
    jj_ssh_public_free(&pub);

    static const char *const bad[] = {
        "",
        "ssh-ed25519",
        "ssh-ed25519 !!!!",
        /* type inside the blob says ssh-ed25519 */
        "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAICihq6H84DPRJAZ4cF/hWTA2y9TS5I7UHv7SJM7bX0Ot",
        /* truncated ed25519 key */
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICihq6H84DPRJAZ4cF/hWTA2y9TS5I7UHv7SJM7bX0",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICihq6H84DPRJAZ4cF/hWTA2y9TS5I7UHv7SJM7bX0Ot\nx y",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = jj_ssh_fingerprint_sha256(bad[i], strlen(bad[i]), fp, &err);
        if (rc != JJ_EINVAL)
            fprintf(stderr, "accepted bad public key %zu\n", i);
        CHECK_INT(rc, JJ_EINVAL);
    }
}

static void test_constant_time_equal(void)
{
    CHECK(jj_constant_time_equal("abc", 3, "abc", 3));
    CHECK(!jj_constant_time_equal("abc", 3, "abd", 3));
    CHECK(!jj_constant_time_equal("abc", 3, "abcd", 4));
    CHECK(jj_constant_time_equal("", 0, "", 0));
}

int main(void)
{
    RUN(test_hex);
    RUN(test_base64_vectors);
    RUN(test_base64_decode_edges);
    RUN(test_sha_vectors);
    RUN(test_hasher_streaming);
    RUN(test_sha256_file);
    RUN(test_pbkdf2_vectors);
    RUN(test_juju_password_hashes);
    RUN(test_uuid);
    RUN(test_ca_and_server_cert);
    RUN(test_rsa_server_key_usage);
    RUN(test_ca_pair_errors);
    RUN(test_long_env_name);
    RUN(test_ssh_keygen_blob);
    RUN(test_ssh_fingerprints);
    RUN(test_constant_time_equal);
    return check_summary();
}
