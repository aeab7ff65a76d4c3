/* test_mac.c: core/mac digests and HMACs against RFC vectors (RFC 1321,
 * RFC 2202, RFC 4231), streaming against one-shot, files, bad names. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "mac.h"

static void hex(const unsigned char *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
    out[2 * n] = '\0';
}

static const char *one(const char *alg, const char *key, const char *data)
{
    static char h[2 * JJ_MAC_MAX_SIZE + 1];
    jj_mac_hash hash;
    jj_error err;
    unsigned char out[JJ_MAC_MAX_SIZE];
    size_t len = 0;
    if (jj_mac_hash_from_name(alg, &hash, &err) != 0 ||
        jj_mac_oneshot(hash, key, key ? strlen(key) : 0, data, strlen(data), out, &len, &err) != 0)
        return "error";
    hex(out, len, h);
    return h;
}

static void test_digests(void)
{
    CHECK_STR(one("md5", NULL, ""), "d41d8cd98f00b204e9800998ecf8427e");
    CHECK_STR(one("MD5", NULL, "abc"), "900150983cd24fb0d6963f7d28e17f72");
    CHECK_STR(one("sha1", NULL, "abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
    CHECK_STR(one("SHA-256", NULL, ""),
              "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK_STR(one("sha384", NULL, "abc"),
              "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed"
              "8086072ba1e7cc2358baeca134c825a7");
    CHECK_STR(one("sha512", NULL, "abc"),
              "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
              "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
}

static void test_hmacs(void)
{
    /* RFC 4231 test case 2 and RFC 2202 test case 2 */
    CHECK_STR(one("sha256", "Jefe", "what do ya want for nothing?"),
              "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    CHECK_STR(one("sha512", "Jefe", "what do ya want for nothing?"),
              "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"
              "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737");
    CHECK_STR(one("sha1", "Jefe", "what do ya want for nothing?"),
              "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
    CHECK_STR(one("md5", "Jefe", "what do ya want for nothing?"),
              "750c783e6ab0b503eaa86e310a5db738");
    /* an empty key is an HMAC, not a digest */
    CHECK_STR(one("sha256", "", ""),
              "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

static void test_streaming(void)
{
    jj_mac *m = NULL;
    jj_error err;
    CHECK_INT(jj_mac_new(JJ_MAC_SHA256, "Jefe", 4, &m, &err), 0);
    if (!m)
        return;
    const char *msg = "what do ya want for nothing?";
    for (const char *p = msg; *p; p++)
        CHECK_INT(jj_mac_update(m, p, 1, &err), 0);
    unsigned char out[JJ_MAC_MAX_SIZE];
    size_t len = 0;
    char h[2 * JJ_MAC_MAX_SIZE + 1];
    CHECK_INT(jj_mac_final(m, out, &len, &err), 0);
    CHECK_INT(len, 32);
    hex(out, len, h);
    CHECK_STR(h, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    /* final does not end the stream: the same object continues */
    CHECK_INT(jj_mac_final(m, out, &len, &err), 0);
    hex(out, len, h);
    CHECK_STR(h, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    jj_mac_free(m);
    CHECK_INT(jj_mac_size(JJ_MAC_MD5), 16);
    CHECK_INT(jj_mac_size(JJ_MAC_SHA512), 64);
}

static void test_file(void)
{
    char path[] = "/tmp/test_mac_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    /* 200000 bytes: more than one 64 KiB read */
    char *big = malloc(200000);
    memset(big, 'a', 200000);
    CHECK(write(fd, big, 200000) == 200000);
    close(fd);
    unsigned char a[JJ_MAC_MAX_SIZE], b[JJ_MAC_MAX_SIZE];
    size_t la = 0, lb = 0;
    uint64_t size = 0;
    jj_error err;
    CHECK_INT(jj_mac_file(JJ_MAC_MD5, NULL, 0, path, a, &la, &size, &err), 0);
    CHECK_INT(size, 200000);
    CHECK_INT(jj_mac_oneshot(JJ_MAC_MD5, NULL, 0, big, 200000, b, &lb, &err), 0);
    CHECK(la == 16 && memcmp(a, b, 16) == 0);
    CHECK_INT(jj_mac_file(JJ_MAC_SHA256, "k", 1, path, a, &la, NULL, &err), 0);
    CHECK_INT(jj_mac_oneshot(JJ_MAC_SHA256, "k", 1, big, 200000, b, &lb, &err), 0);
    CHECK(la == 32 && memcmp(a, b, 32) == 0);
    unlink(path);
    free(big);
    CHECK_INT(jj_mac_file(JJ_MAC_MD5, NULL, 0, path, a, &la, NULL, &err), JJ_ENOENT);
    CHECK(strstr(err.message, path) != NULL);
}

static void test_bad_name(void)
{
    jj_mac_hash h;
    jj_error err;
    CHECK_INT(jj_mac_hash_from_name("sha3", &h, &err), JJ_EINVAL);
    CHECK(strstr(err.message, "'sha3'") != NULL);
    CHECK_INT(jj_mac_hash_from_name("sha256-is-long", &h, &err), JJ_EINVAL);
}

int main(void)
{
    RUN(test_digests);
    RUN(test_hmacs);
    RUN(test_streaming);
    RUN(test_file);
    RUN(test_bad_name);
    return check_summary();
}
