/* test_sign.c: core/sign against the Joyent rsa-sha256 vectors (exact
 * PKCS#1 v1.5 signatures), OpenSSH-format keys from ssh-keygen (RSA,
 * ECDSA, ed25519: load, sign, verify, fingerprints), raw ECDSA, refusals. */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "json.h"
#include "sign.h"

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = '\0';
        if (len)
            *len = (size_t)n;
    }
    return buf;
}

static void test_joyent_vectors(void)
{
    const char *shared = getenv("JUJU_TEST_SHARED");
    char path[1024];
    snprintf(path, sizeof path, "%s/conformance/signing/joyent-httpsig-vectors.json",
             shared ? shared : "../shared");
    size_t len = 0;
    char *text = slurp(path, &len);
    CHECK(text != NULL);
    if (!text)
        return;
    jj_yaml_node *doc = NULL;
    jj_error err;
    CHECK_INT(jj_json_parse(text, len, path, &doc, &err), 0);
    const char *pem = jj_yaml_map_get_string(doc, "private_key_pem");
    jj_sign_key *k = NULL;
    CHECK_INT(jj_sign_key_load(pem, strlen(pem), "joyent", &k, &err), 0);
    jj_yaml_node *vs = jj_yaml_map_get(doc, "vectors");
    CHECK(jj_yaml_count(vs) >= 2);
    for (size_t i = 0; k && i < jj_yaml_count(vs); i++) {
        jj_yaml_node *v = jj_yaml_seq_at(vs, i);
        const char *str = jj_yaml_map_get_string(v, "signing_string");
        const char *want = jj_yaml_map_get_string(v, "expected_authorization");
        unsigned char *sig = NULL;
        size_t sig_len = 0;
        CHECK_INT(jj_sign(k, "sha256", JJ_SIGN_ECDSA_DER, str, strlen(str), &sig, &sig_len, &err),
                  0);
        CHECK_INT(sig_len, 256);
        unsigned char b64[400];
        EVP_EncodeBlock(b64, sig, (int)sig_len);
        if (!strstr(want, (char *)b64)) {
            fprintf(stderr, "  vector %zu: signature %s not in %s\n", i, b64, want);
            CHECK(0);
        }
        CHECK_INT(jj_sign_verify(k, "sha256", 0, str, strlen(str), sig, sig_len, &err), 1);
        sig[10] ^= 1;
        CHECK_INT(jj_sign_verify(k, "sha256", 0, str, strlen(str), sig, sig_len, &err), 0);
        free(sig);
    }
    jj_sign_key_info info;
    if (k) {
        jj_sign_key_info_get(k, &info);
        CHECK_STR(info.type_name, "rsa");
        CHECK_INT(info.bits, 2048);
    }
    jj_sign_key_free(k);
    jj_yaml_free(doc);
    free(text);
}

/* ssh-keygen writes a key of type/bits in OpenSSH format; loads it, checks
 * the fingerprint against ssh-keygen -l and a sign/verify round trip. */
static void check_generated(const char *dir, const char *type, int bits, const char *curve)
{
    char path[512], cmd[1400], line[512];
    snprintf(path, sizeof path, "%s/%s%d", dir, type, bits);
    snprintf(cmd, sizeof cmd, "ssh-keygen -q -t %s -b %d -N '' -C t -f '%s'", type, bits, path);
    CHECK_INT(system(cmd), 0);
    jj_sign_key *k = NULL;
    jj_error err;
    int rc = jj_sign_key_load_file(path, &k, &err);
    CHECK_INT(rc, 0);
    if (rc != 0) {
        fprintf(stderr, "  %s: %s\n", path, err.message);
        return;
    }
    jj_sign_key_info info;
    jj_sign_key_info_get(k, &info);
    CHECK_STR(info.type_name, type);
    CHECK_INT(info.bits, bits);
    if (curve)
        CHECK_STR(info.curve, curve);
    char md5[JJ_SIGN_FP_MD5_SIZE], sha[JJ_SIGN_FP_SHA256_SIZE];
    CHECK_INT(jj_sign_fingerprint_md5(k, md5, &err), 0);
    CHECK_INT(jj_sign_fingerprint_sha256(k, sha, &err), 0);
    snprintf(cmd, sizeof cmd, "ssh-keygen -l -E md5 -f '%s.pub'", path);
    FILE *p = popen(cmd, "r");
    CHECK(p && fgets(line, sizeof line, p) && strstr(line, md5));
    if (p)
        pclose(p);
    snprintf(cmd, sizeof cmd, "ssh-keygen -l -f '%s.pub'", path);
    p = popen(cmd, "r");
    CHECK(p && fgets(line, sizeof line, p) && strstr(line, sha));
    if (p)
        pclose(p);
    const char *msg = "date: Mon, 14 Oct 2013 18:49:29 GMT";
    for (int form = 0; form < 2; form++) {
        unsigned char *sig = NULL;
        size_t len = 0;
        CHECK_INT(jj_sign(k, "sha256", form, msg, strlen(msg), &sig, &len, &err), 0);
        if (form == JJ_SIGN_ECDSA_RAW && curve)
            CHECK_INT(len, bits == 521 ? 132 : bits / 4);
        CHECK_INT(jj_sign_verify(k, "sha256", form, msg, strlen(msg), sig, len, &err), 1);
        CHECK_INT(jj_sign_verify(k, "sha256", form, "x", 1, sig, len, &err), 0);
        free(sig);
    }
    unsigned char *blob = NULL;
    size_t blob_len = 0;
    CHECK_INT(jj_sign_public_blob(k, &blob, &blob_len, &err), 0);
    CHECK(blob_len > 4 && memcmp(blob + 4, info.ssh_type, strlen(info.ssh_type)) == 0);
    free(blob);
    char *pem = NULL;
    CHECK_INT(jj_sign_public_pem(k, &pem, &err), 0);
    CHECK(pem && strstr(pem, "-----BEGIN PUBLIC KEY-----") == pem);
    free(pem);
    jj_sign_key_free(k);
}

static void test_openssh_keys(void)
{
    char dir[] = "/tmp/test_sign_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    check_generated(dir, "rsa", 2048, NULL);
    check_generated(dir, "ecdsa", 256, "P-256");
    check_generated(dir, "ecdsa", 384, "P-384");
    check_generated(dir, "ecdsa", 521, "P-521");
    check_generated(dir, "ed25519", 256, NULL);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ssh-keygen -q -t rsa -b 2048 -N pass -f '%s/enc'", dir);
    CHECK_INT(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s/enc", dir);
    jj_sign_key *k = NULL;
    jj_error err;
    CHECK_INT(jj_sign_key_load_file(cmd, &k, &err), JJ_EUNSUPPORTED);
    CHECK(strstr(err.message, "encrypted") != NULL);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK_INT(system(cmd), 0);
}

static void test_bad_input(void)
{
    jj_sign_key *k = NULL;
    jj_error err;
    CHECK_INT(jj_sign_key_load("junk", 4, "cfg", &k, &err), JJ_EINVAL);
    CHECK(strstr(err.message, "cfg: not a private key") == err.message);
    const char *t = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU=\n"
                    "-----END OPENSSH PRIVATE KEY-----\n";
    CHECK_INT(jj_sign_key_load(t, strlen(t), NULL, &k, &err), JJ_EINVAL);
    CHECK(strstr(err.message, "malformed OpenSSH private key") != NULL);
    const char *noend = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n";
    CHECK_INT(jj_sign_key_load(noend, strlen(noend), NULL, &k, &err), JJ_EINVAL);
    CHECK_INT(jj_sign_key_load_file("/nonexistent/key", &k, &err), JJ_ENOENT);
    CHECK(k == NULL);
}

int main(void)
{
    RUN(test_joyent_vectors);
    RUN(test_openssh_keys);
    RUN(test_bad_input);
    return check_summary();
}
