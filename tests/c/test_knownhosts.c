/* test_knownhosts.c: core/knownhosts: the known_hosts format and the
 * host-key policy, with no connection (and no libssh2). */
#include "check.h"
#include "crypto.h"
#include "fs.h"
#include "knownhosts.h"
#include "ssh_test_helpers.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- known_hosts ---------------------------------------------------------------- */

static void test_parse_patterns(void)
{
    char *k1 = new_pub(), *k2 = new_pub();
    char text[2048];
    snprintf(text, sizeof text,
             "# comment\r\n\n  web1.example.com,10.0.0.1 %s\n*.example.com,!bad.example.com %s x\n"
             "[10.0.0.1]:2222 %s\n",
             k1, k2, k2);
    jj_known_host *e = NULL;
    size_t n = 0;
    jj_error err;
    CHECK_INT(jj_knownhosts_parse(text, strlen(text), "kh", "Web1.Example.com", 22, &e, &n,
                                  &err),
              0);
    CHECK_INT(n, 2);
    if (n == 2) {
        CHECK_INT(e[0].lineno, 3);
        CHECK_INT(e[1].lineno, 4);
        CHECK(e[0].marker == NULL);
        CHECK(strncmp(e[0].key, k1, strlen(e[0].key)) == 0);
        CHECK(strchr(e[1].key, ' ') == strrchr(e[1].key, ' ')); /* no comment kept */
        CHECK(contains(e[1].line, " x"));
    }
    jj_knownhosts_free(e, n);
    CHECK_INT(jj_knownhosts_parse(text, strlen(text), "kh", "bad.example.com", 22, &e, &n,
                                  &err),
              0);
    CHECK_INT(n, 0);
    jj_knownhosts_free(e, n);
    CHECK_INT(jj_knownhosts_parse(text, strlen(text), "kh", "10.0.0.1", 2222, &e, &n, &err),
              0);
    CHECK_INT(n, 1);
    if (n == 1)
        CHECK_INT(e[0].lineno, 5);
    jj_knownhosts_free(e, n);
    CHECK_INT(jj_knownhosts_parse(text, strlen(text), "kh", NULL, 22, &e, &n, &err), 0);
    CHECK_INT(n, 3);
    jj_knownhosts_free(e, n);
    free(k1);
    free(k2);
}

static void test_parse_hashed_and_markers(void)
{
    char *k = new_pub();
    unsigned char salt[20], mac[EVP_MAX_MD_SIZE];
    unsigned int mlen = 0;
    for (int i = 0; i < 20; i++)
        salt[i] = (unsigned char)(i * 7 + 1);
    const char *name = "[h.example]:2200";
    HMAC(EVP_sha1(), salt, 20, (const unsigned char *)name, strlen(name), mac, &mlen);
    char s64[64], h64[64], text[1024];
    jj_base64_encode(salt, 20, s64);
    jj_base64_encode(mac, mlen, h64);
    snprintf(text, sizeof text, "|1|%s|%s %s\n@revoked old %s\n@cert-authority *.ca %s\n", s64,
             h64, k, k, k);
    jj_known_host *e = NULL;
    size_t n = 0;
    jj_error err;
    CHECK_INT(jj_knownhosts_parse(text, strlen(text), "kh", "H.example", 2200, &e, &n, &err),
              0);
    CHECK_INT(n, 1);
    jj_knownhosts_free(e, n);
    CHECK_INT(jj_knownhosts_parse(text, strlen(text), "kh", "h.example", 22, &e, &n, &err),
              0);
    CHECK_INT(n, 0);
    jj_knownhosts_free(e, n);
    CHECK_INT(jj_knownhosts_parse(text, strlen(text), "kh", "old", 22, &e, &n, &err), 0);
    CHECK_INT(n, 1);
    if (n == 1)
        CHECK_STR(e[0].marker, "revoked");
    jj_knownhosts_free(e, n);
    CHECK_INT(jj_knownhosts_parse(text, strlen(text), "kh", "x.ca", 22, &e, &n, &err), 0);
    CHECK_INT(n, 1);
    if (n == 1)
        CHECK_STR(e[0].marker, "cert-authority");
    jj_knownhosts_free(e, n);
    free(k);
}

static void test_parse_errors(void)
{
    char *k = new_pub();
    char text[1024];
    jj_known_host *e = (jj_known_host *)1;
    size_t n = 99;
    jj_error err;
    snprintf(text, sizeof text, "a %s\n\nb ssh-ed25519\n", k);
    CHECK_INT(jj_knownhosts_parse(text, strlen(text), "file.kh", "a", 22, &e, &n, &err),
              JJ_ECORRUPT);
    CHECK(e == NULL);
    CHECK_INT(n, 0);
    CHECK_STR(err.file, "file.kh");
    CHECK_INT(err.line, 3);
    snprintf(text, sizeof text, "a %s\nb ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA\n", k);
    CHECK_INT(jj_knownhosts_parse(text, strlen(text), "f", NULL, 22, &e, &n, &err),
              JJ_ECORRUPT);
    CHECK_INT(err.line, 2);
    CHECK_INT(jj_knownhosts_parse("@bogus a b c\n", 13, "f", NULL, 22, &e, &n, &err),
              JJ_ECORRUPT);
    CHECK(contains(err.message, "unknown marker"));
    CHECK_INT(jj_knownhosts_parse("|1|abc a b\n", 11, "f", NULL, 22, &e, &n, &err),
              JJ_ECORRUPT);
    char nul[] = "a ssh-ed25519 A\0AAA\n";
    CHECK_INT(jj_knownhosts_parse(nul, sizeof nul - 1, "f", NULL, 22, &e, &n, &err),
              JJ_ECORRUPT);
    CHECK(contains(err.message, "NUL"));
    free(k);
}

static void test_add_and_lookup(void)
{
    char *k1 = new_pub(), *k2 = new_pub();
    jj_known_host *e = NULL;
    size_t n = 0;
    jj_error err;
    const char *f = P("env/ssh/known_hosts");
    CHECK_INT(jj_knownhosts_lookup(f, "h", 22, &e, &n, &err), 0);
    CHECK_INT(n, 0);
    CHECK_INT(jj_knownhosts_add(f, "H", 22, k1, &err), 0);
    CHECK_INT(jj_knownhosts_add(f, "h", 2022, k2, &err), 0);
    CHECK_INT(mode_of(f), 0600);
    CHECK_INT(mode_of(P("env/ssh")), 0700);
    CHECK_INT(jj_knownhosts_lookup(f, "h", 2022, &e, &n, &err), 0);
    CHECK_INT(n, 1);
    if (n == 1) {
        CHECK_INT(e[0].lineno, 2);
        CHECK(strncmp(e[0].line, "[h]:2022 ssh-ed25519 ", 21) == 0);
    }
    jj_knownhosts_free(e, n);
    CHECK_INT(jj_knownhosts_lookup(f, "h", 22, &e, &n, &err), 0);
    CHECK_INT(n, 1);
    jj_knownhosts_free(e, n);
    /* a file without a final newline gets one before the new entry */
    CHECK_INT(write_text(P("nonl"), "x ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl", 0600), 0);
    CHECK_INT(jj_knownhosts_add(P("nonl"), "y", 22, k1, &err), 0);
    CHECK_INT(jj_knownhosts_lookup(P("nonl"), "y", 22, &e, &n, &err), 0);
    CHECK_INT(n, 1);
    jj_knownhosts_free(e, n);
    CHECK_INT(jj_knownhosts_add(f, "bad host", 22, k1, &err), JJ_EINVAL);
    CHECK_INT(jj_knownhosts_add(f, "h", 0, k1, &err), JJ_EINVAL);
    CHECK_INT(jj_knownhosts_add(f, "h", 22, "ssh-ed25519 !!", &err), JJ_EINVAL);
    free(k1);
    free(k2);
}

/* ---- host key policy ------------------------------------------------------------ */

static void test_policy(void)
{
    char *pres = new_pub(), *other = new_pub();
    char fp_pres[JJ_SSH_FP_SHA256_SIZE], fp_other[JJ_SSH_FP_SHA256_SIZE];
    fingerprint(pres, fp_pres);
    fingerprint(other, fp_other);
    jj_knownhosts_verified how = 0;
    jj_error err;
    jj_knownhosts_check c = {.host = "10.9.9.9", .port = 2222, .presented = pres, .pinned = pres};
    CHECK_INT(jj_knownhosts_check_host_key(&c, &how, &err), 0);
    CHECK_INT(how, JJ_KNOWNHOSTS_VERIFIED_PINNED);
    CHECK_STR(jj_knownhosts_verified_name(how), "pinned");

    c.pinned = other;
    CHECK_INT(jj_knownhosts_check_host_key(&c, &how, &err), JJ_ESSH_HOSTKEY);
    CHECK(contains(err.message, "10.9.9.9:2222"));
    CHECK(contains(err.message, fp_pres));
    CHECK(contains(err.message, fp_other));

    c.pinned = NULL;
    CHECK_INT(jj_knownhosts_check_host_key(&c, &how, &err), JJ_ESSH_HOSTKEY); /* nothing to check against */

    const char *f = P("policy_kh");
    c.known_hosts = f;
    CHECK_INT(jj_knownhosts_check_host_key(&c, &how, &err), JJ_ESSH_HOSTKEY);
    CHECK(contains(err.message, fp_pres));
    CHECK(contains(err.message, "not known"));
    CHECK(!jj_fs_exists(f));

    c.trust_on_first_use = 1;
    CHECK_INT(jj_knownhosts_check_host_key(&c, &how, &err), 0);
    CHECK_INT(how, JJ_KNOWNHOSTS_VERIFIED_ADDED);
    c.trust_on_first_use = 0;
    CHECK_INT(jj_knownhosts_check_host_key(&c, &how, &err), 0);
    CHECK_INT(how, JJ_KNOWNHOSTS_VERIFIED_KNOWN);

    /* the same host now presents another key: refused even with TOFU */
    c.presented = other;
    c.trust_on_first_use = 1;
    CHECK_INT(jj_knownhosts_check_host_key(&c, &how, &err), JJ_ESSH_HOSTKEY);
    CHECK(contains(err.message, "CHANGED"));
    CHECK(contains(err.message, fp_pres));
    CHECK(contains(err.message, fp_other));
    CHECK(contains(err.message, "line 1"));

    CHECK_INT(write_text(P("revoked"), "", 0600), 0);
    char line[512];
    snprintf(line, sizeof line, "@revoked 10.9.9.9 %s\n", pres);
    CHECK_INT(write_text(P("revoked"), line, 0600), 0);
    jj_knownhosts_check r = {.host = "10.9.9.9", .port = 22, .presented = pres,
                           .known_hosts = P("revoked"), .trust_on_first_use = 1};
    CHECK_INT(jj_knownhosts_check_host_key(&r, &how, &err), JJ_ESSH_HOSTKEY);
    CHECK(contains(err.message, "@revoked"));

    jj_knownhosts_check bad = {.host = "h", .port = 22, .presented = "ssh-ed25519 xx"};
    CHECK_INT(jj_knownhosts_check_host_key(&bad, &how, &err), JJ_EINVAL);
    free(pres);
    free(other);
}

int main(void)
{
    char *d;
    jj_error err;
    if (jj_fs_mkdtemp("/tmp/juju-test-knownhosts-", &d, &err) != 0) {
        fprintf(stderr, "mkdtemp: %s\n", err.message);
        return 2;
    }
    snprintf(base, sizeof base, "%s", d);
    free(d);
    RUN(test_parse_patterns);
    RUN(test_parse_hashed_and_markers);
    RUN(test_parse_errors);
    RUN(test_add_and_lookup);
    RUN(test_policy);
    jj_fs_remove_tree(base, &err);
    return check_summary();
}
